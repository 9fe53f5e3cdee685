"""ControllerRevision history as StatefulSets and DaemonSets keep it (controllers.history)."""

from __future__ import annotations

from minik.controllers import history
from minik.controllers.deployment.history import template_hash
from minik.controllers.history import DAEMONSET, STATEFULSET

TEMPLATE = {"metadata": {"labels": {"app": "web"}},
            "spec": {"containers": [{"name": "c", "image": "minik/web:v1"}]}}
SET = {"apiVersion": "apps/v1", "kind": "StatefulSet",
       "metadata": {"name": "web", "namespace": "default", "uid": "set-uid",
                    "annotations": {"kubernetes.io/change-cause": "v1"}},
       "spec": {"replicas": 2, "serviceName": "nginx",
                "selector": {"matchLabels": {"app": "web"}}, "template": TEMPLATE,
                "volumeClaimTemplates": [{"metadata": {"name": "www"}, "spec": {}}]}}
DS = {"apiVersion": "apps/v1", "kind": "DaemonSet",
      "metadata": {"name": "agent", "namespace": "default", "uid": "ds-uid"},
      "spec": {"selector": {"matchLabels": {"app": "web"}}, "template": TEMPLATE}}
V2 = {"metadata": {"labels": {"app": "web"}},
      "spec": {"containers": [{"name": "c", "image": "minik/web:v2"}]}}


def revisions(names: int) -> list[dict]:
    return [{"metadata": {"name": f"r{i}", "labels": {DAEMONSET.hash_label: f"h{i}"}},
             "revision": i} for i in range(1, names + 1)]


def test_revisions_of_equal_templates_have_equal_names_and_a_collision_renames():
    one = history.new_revision(SET, 1, 0, kind=STATEFULSET)
    assert one["metadata"]["name"] == \
        history.new_revision(SET, 7, 0, kind=STATEFULSET)["metadata"]["name"]
    assert one["metadata"]["name"].startswith("web-")
    assert one["metadata"]["labels"] == {"app": "web", STATEFULSET.hash_label:
                                         one["metadata"]["name"][len("web-"):]}
    assert one["metadata"]["annotations"] == {"kubernetes.io/change-cause": "v1"}
    assert one["metadata"]["ownerReferences"][0]["kind"] == "StatefulSet"
    assert one["data"]["spec"]["template"]["$patch"] == "replace"
    assert history.new_revision(SET, 1, 1, kind=STATEFULSET)["metadata"]["name"] != \
        one["metadata"]["name"]
    changed = {**SET, "spec": {**SET["spec"], "template": V2}}
    two = history.new_revision(changed, 2, 0, kind=STATEFULSET)
    assert not history.equal_revisions(one, two)
    assert history.apply_revision(changed, one)["spec"]["template"] == SET["spec"]["template"]


def test_a_daemon_set_revision_is_named_and_labelled_by_its_template_hash():
    one = history.new_revision(DS, 1, None, kind=DAEMONSET)
    hash_value = template_hash(TEMPLATE)
    assert one["metadata"]["name"] == f"agent-{hash_value}"
    assert one["metadata"]["labels"] == {"app": "web", "controller-revision-hash": hash_value}
    assert one["metadata"]["ownerReferences"][0]["kind"] == "DaemonSet"
    assert DAEMONSET.pod_key(one) == hash_value
    collided = history.renamed(one, DS, 1, kind=DAEMONSET)
    assert collided["metadata"]["name"] == f"agent-{template_hash(TEMPLATE, 1)}"
    assert collided["metadata"]["labels"]["controller-revision-hash"] == \
        template_hash(TEMPLATE, 1)


def test_pods_name_a_stateful_sets_revision_and_a_daemon_sets_hash():
    found = revisions(3)
    by_name = [{"metadata": {"labels": {"controller-revision-hash": "r1"}}}]
    by_hash = [{"metadata": {"labels": {"controller-revision-hash": "h2"}}}]
    assert history.live_revisions(STATEFULSET, found, by_name) == {"r1"}
    assert history.live_revisions(DAEMONSET, found, by_hash) == {"r2"}


def test_stateful_set_history_beyond_the_limit_counts_only_revisions_not_in_use():
    sts = {**SET, "spec": {**SET["spec"], "revisionHistoryLimit": 1}}
    gone = history.revisions_to_truncate(sts, revisions(5), {"r1", "r4"}, "r5",
                                         kind=STATEFULSET)
    assert [r["metadata"]["name"] for r in gone] == ["r2"]


def test_daemon_set_history_beyond_the_limit_counts_revisions_in_use_but_keeps_them():
    ds = {**DS, "spec": {**DS["spec"], "revisionHistoryLimit": 1}}
    gone = history.revisions_to_truncate(ds, revisions(5), {"r1"}, "r5", kind=DAEMONSET)
    assert [r["metadata"]["name"] for r in gone] == ["r2", "r3", "r4"]
    assert history.revisions_to_truncate(DS, revisions(5), set(), "r5", kind=DAEMONSET) == []
