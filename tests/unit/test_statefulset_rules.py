"""The StatefulSet controller's pure rules: identity, retention, rolling limits (its
revisions: test_history)."""

from __future__ import annotations

import pytest

from minik.controllers.history import revision_of
from minik.controllers.statefulset import identity, retention
from minik.controllers.statefulset.control import max_unavailable, placeholder

SET = {"apiVersion": "apps/v1", "kind": "StatefulSet",
       "metadata": {"name": "web", "namespace": "default", "uid": "set-uid",
                    "annotations": {"kubernetes.io/change-cause": "v1"}},
       "spec": {"replicas": 2, "serviceName": "nginx",
                "selector": {"matchLabels": {"app": "web"}},
                "template": {"metadata": {"labels": {"app": "web"}},
                             "spec": {"containers": [{"name": "c", "image": "minik/web:v1"}]}},
                "volumeClaimTemplates": [{"metadata": {"name": "www"}, "spec": {}}]}}


def a_pod(name: str, uid: str = "") -> dict:
    return {"metadata": {"name": name, "namespace": "default", "uid": uid}}


def test_a_pod_name_gives_its_set_and_ordinal():
    assert identity.parent_and_ordinal(a_pod("web-12")) == ("web", 12)
    assert identity.parent_and_ordinal(a_pod("my-web-0")) == ("my-web", 0)
    assert identity.parent_and_ordinal(a_pod("web")) == ("", -1)
    assert identity.parent_and_ordinal(a_pod("web-99999999999")) == ("", -1)


@pytest.mark.parametrize(("scaled", "deleted", "in_range", "removed"), [
    ("Retain", "Retain", [], []),
    ("Retain", "Delete", [("StatefulSet", "web")], [("StatefulSet", "web")]),
    ("Delete", "Retain", [], [("Pod", "web-5")]),
    ("Delete", "Delete", [("StatefulSet", "web")], [("Pod", "web-5")]),
])
def test_claim_owners_follow_the_retention_policy(scaled, deleted, in_range, removed):
    sts = {**SET, "spec": {**SET["spec"], "persistentVolumeClaimRetentionPolicy": {
        "whenScaled": scaled, "whenDeleted": deleted}}}
    claim: dict = {"metadata": {"name": "www-web-0"}}
    for pod, wanted in ((a_pod("web-0", "p0"), in_range), (a_pod("web-5", "p5"), removed)):
        refs = retention.updated_owner_refs(claim, sts, pod)
        assert [(r["kind"], r["name"]) for r in refs] == wanted
        updated = {"metadata": {"ownerReferences": refs}}
        assert retention.claim_owner_up_to_date(updated, sts, pod)
        assert retention.claim_owner_up_to_date(claim, sts, pod) == (wanted == [])


def test_a_claim_of_another_controller_loses_our_references_and_keeps_its_own():
    sts = {**SET, "spec": {**SET["spec"], "persistentVolumeClaimRetentionPolicy": {
        "whenScaled": "Retain", "whenDeleted": "Delete"}}}
    other = {"apiVersion": "v1", "kind": "Thing", "name": "x", "uid": "x", "controller": True}
    ours = {"apiVersion": "apps/v1", "kind": "StatefulSet", "name": "web", "uid": "set-uid",
            "controller": True}
    claim = {"metadata": {"ownerReferences": [other, ours]}}
    pod = a_pod("web-0", "p0")
    assert not retention.claim_owner_up_to_date(claim, sts, pod)
    assert retention.updated_owner_refs(claim, sts, pod) == [other]


def test_a_claim_owned_by_an_earlier_pod_of_the_name_is_stale_when_scaling_deletes():
    sts = {**SET, "spec": {**SET["spec"], "persistentVolumeClaimRetentionPolicy": {
        "whenScaled": "Delete"}}}
    claim = {"metadata": {"ownerReferences": [
        {"apiVersion": "v1", "kind": "Pod", "name": "web-1", "uid": "old", "controller": True}]}}
    assert retention.claim_is_stale(claim, sts, identity.new_pod(sts, 1, "r"))
    assert not retention.claim_is_stale(claim, SET, identity.new_pod(SET, 1, "r"))


def test_max_unavailable_rounds_down_but_is_at_least_one():
    def with_max(value, replicas=10):
        return {"spec": {"replicas": replicas, "updateStrategy": {
            "type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": value}}}}
    assert max_unavailable({"spec": {"replicas": 5}}) == 1
    assert max_unavailable(with_max(3)) == 3
    assert max_unavailable(with_max("25%")) == 2
    assert max_unavailable(with_max("5%")) == 1


def test_a_missing_pod_below_the_partition_is_made_at_the_current_revision():
    current = {**SET, "spec": {**SET["spec"], "updateStrategy": {
        "type": "RollingUpdate", "rollingUpdate": {"partition": 1}}}}
    assert revision_of(placeholder(current, current, "old", "new", 0)) == "old"
    assert revision_of(placeholder(current, current, "old", "new", 1)) == "new"
    on_delete = {**SET, "spec": {**SET["spec"], "updateStrategy": {"type": "OnDelete"}}}
    assert revision_of(placeholder(on_delete, on_delete, "old", "new", 0)) == "new"
