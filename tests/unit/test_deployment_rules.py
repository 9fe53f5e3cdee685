"""Pure rules of the deployment controller: hashes, fenceposts, proportions, revisions, status."""

from __future__ import annotations

import datetime as dt
import string

import pytest

from minik.api import revisions
from minik.api.meta import find_condition
from minik.controllers.deployment import history, progress, sizes

T0 = dt.datetime(2030, 1, 1, tzinfo=dt.UTC)


def template(image: str = "web:v1", **container) -> dict:
    return {"metadata": {"labels": {"app": "web"}},
            "spec": {"containers": [{"name": "web", "image": image, **container}]}}


def go_reencoded(t: dict, pod_hash: str = "abc") -> dict:
    """What kubectl's `rollout undo` sends: nulls and empty structs spelt out."""
    return {"metadata": {"creationTimestamp": None,
                         "labels": {**t["metadata"]["labels"], revisions.HASH_LABEL: pod_hash}},
            "spec": {**t["spec"],
                     "containers": [{**c, "resources": {}} for c in t["spec"]["containers"]],
                     "securityContext": {}, "volumes": []}}


def deployment(replicas: int = 10, surge: int | str = 3, unavailable: int | str = 2, *,
               status_replicas: int = 0, strategy: str = "RollingUpdate", **spec) -> dict:
    rolling = {"maxSurge": surge, "maxUnavailable": unavailable}
    strat = {"type": strategy, **({"rollingUpdate": rolling} if strategy == "RollingUpdate"
                                  else {})}
    return {"metadata": {"name": "web", "namespace": "default", "generation": 1},
            "spec": {"replicas": replicas, "strategy": strat, "template": template(), **spec},
            "status": {"replicas": status_replicas}}


def rs(name: str, replicas: int, *, available: int | None = None, revision: int = 1,
       age: int = 0, max_replicas: int | None = None, desired: int | None = None,
       status_replicas: int | None = None, generation: int = 1, observed: int = 1) -> dict:
    notes = {revisions.REVISION: str(revision)}
    if max_replicas is not None:
        notes[sizes.MAX_REPLICAS] = str(max_replicas)
    if desired is not None:
        notes[sizes.DESIRED_REPLICAS] = str(desired)
    created = (T0 + dt.timedelta(seconds=age)).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {"metadata": {"name": name, "uid": name, "creationTimestamp": created,
                         "annotations": notes, "generation": generation},
            "spec": {"replicas": replicas, "template": template()},
            "status": {"replicas": replicas if status_replicas is None else status_replicas,
                       "availableReplicas": replicas if available is None else available,
                       "observedGeneration": observed}}


def sizes_by_name(plan: list[tuple[dict, int]]) -> dict[str, int]:
    return {r["metadata"]["name"]: size for r, size in plan}


# ------------------------------------------------------------------- hashing


def test_equal_templates_hash_equal_and_a_new_image_or_restart_hashes_differently():
    assert history.template_hash(template()) == history.template_hash(template())
    assert history.template_hash(template()) != history.template_hash(template("web:v2"))
    restarted = template()
    restarted["metadata"]["annotations"] = {
        "kubectl.kubernetes.io/restartedAt": "2030-01-01T00:00:00Z"}
    assert history.template_hash(restarted) != history.template_hash(template())
    assert not revisions.equal_ignore_hash(restarted, template())


def test_a_go_reencoded_template_with_the_hash_label_hashes_and_compares_equal():
    original = template(ports=[{"containerPort": 80}])
    undone = go_reencoded(original, "7d9c5")
    assert revisions.equal_ignore_hash(original, undone)
    assert history.template_hash(original) == history.template_hash(undone)


def test_quantities_compare_by_value_not_by_spelling():
    a = template(resources={"requests": {"cpu": "0.5", "memory": "1Gi"}})
    b = template(resources={"requests": {"cpu": "500m", "memory": "1024Mi"}})
    assert revisions.equal_ignore_hash(a, b)
    assert not revisions.equal_ignore_hash(a, template(resources={"requests": {"cpu": "1"}}))


def test_the_hash_is_a_short_safe_label_value_that_the_collision_count_changes():
    pod_hash = history.template_hash(template())
    assert 1 <= len(pod_hash) <= 10
    assert set(pod_hash) <= set("bcdfghjklmnpqrstvwxz2456789")
    assert not set(pod_hash) & set(string.ascii_uppercase)
    assert history.template_hash(template(), 0) != pod_hash
    assert history.template_hash(template(), 1) != history.template_hash(template(), 0)


def test_hashing_does_not_change_the_template():
    t = go_reencoded(template())
    before = repr(t)
    history.template_hash(t)
    revisions.normal_template(t)
    assert repr(t) == before


def test_the_new_replica_set_is_the_oldest_with_the_deployment_template():
    d = deployment()
    other = {**rs("b", 1, age=1), "spec": {"replicas": 1, "template": template("web:v2")}}
    first, second = rs("c", 0, age=2), rs("a", 0, age=3)
    assert history.find_new_replica_set(d, [second, other, first]) is first
    assert history.find_new_replica_set(d, [other]) is None


# ------------------------------------------------------------ surge, rounding


@pytest.mark.parametrize(("replicas", "surge", "unavailable", "expected"), [
    (10, "25%", "25%", (3, 2)),
    (3, "25%", "25%", (1, 0)),
    (4, "25%", "25%", (1, 1)),
    (1, "25%", "25%", (1, 0)),
    (5, "10%", "10%", (1, 0)),
    (10, 3, 2, (3, 2)),
    (3, 1, 0, (1, 0)),
    (3, 0, 1, (0, 1)),
    (2, "0%", "1%", (0, 1)),
    (0, "25%", "25%", (0, 1)),
    (10, "100%", "0%", (10, 0)),
])
def test_surge_rounds_up_unavailable_rounds_down_and_both_zero_allows_one(
        replicas, surge, unavailable, expected):
    assert sizes.resolve_fenceposts(surge, unavailable, replicas) == expected


def test_recreate_has_no_surge_and_no_unavailability_budget():
    d = deployment(strategy="Recreate")
    assert (sizes.max_surge(d), sizes.max_unavailable(d)) == (0, 0)


def test_max_unavailable_never_exceeds_the_replicas():
    assert sizes.max_unavailable(deployment(replicas=2, surge=0, unavailable=5)) == 2


def test_a_string_that_is_not_a_percentage_is_refused():
    with pytest.raises(ValueError, match="not a percentage"):
        sizes.int_or_percent("3", 10, round_up=True)


# --------------------------------------------------------------- rolling math


def test_the_new_replica_set_grows_only_within_max_surge():
    d = deployment(replicas=3, surge=1, unavailable=0)
    old, new = rs("old", 3), rs("new", 0)
    assert sizes.new_rs_new_replicas(d, [old, new], new) == 1
    assert sizes.new_rs_new_replicas(d, [rs("old", 2), rs("new", 1)], rs("new", 1)) == 2
    assert sizes.new_rs_new_replicas(d, [rs("old", 3), rs("new", 1)], rs("new", 1)) == 1
    recreate = deployment(replicas=3, strategy="Recreate")
    assert sizes.new_rs_new_replicas(recreate, [old, new], new) == 3


def test_old_replica_sets_shrink_only_as_far_as_availability_allows():
    d = deployment(replicas=3, surge=1, unavailable=0)
    waiting = rs("new", 1, available=0, age=1)
    assert sizes.old_scale_down(d, [rs("old", 3), waiting], [rs("old", 3)], waiting) == []
    ready = rs("new", 1, age=1)
    old = rs("old", 3)
    assert sizes_by_name(sizes.old_scale_down(d, [old, ready], [old], ready)) == {"old": 2}


def test_unhealthy_old_replicas_are_scaled_away_first_oldest_first():
    d = deployment(replicas=10, surge=3, unavailable=2)
    broken = rs("broken", 4, available=0, age=0)
    healthy = rs("healthy", 6, age=1)
    new = rs("new", 3, available=0, age=2)
    plan = sizes.old_scale_down(d, [broken, healthy, new], [broken, healthy], new)
    assert sizes_by_name(plan) == {"broken": 2}


def test_proportional_scaling_splits_new_replicas_by_size_as_kubernetes_documents():
    d = deployment(replicas=15, surge=3, unavailable=2)
    old = rs("old", 8, age=0, max_replicas=13)
    new = rs("new", 5, age=1, max_replicas=13)
    assert sizes_by_name(sizes.proportional_sizes(d, [old, new])) == {"old": 11, "new": 7}


def test_proportional_scaling_down_takes_from_the_larger_and_older_first():
    d = deployment(replicas=5, surge=1, unavailable=0)
    old = rs("old", 5, age=0, max_replicas=11)
    new = rs("new", 5, age=1, max_replicas=11)
    assert sizes_by_name(sizes.proportional_sizes(d, [new, old])) == {"old": 3, "new": 3}


def test_scaling_to_zero_empties_every_replica_set():
    d = deployment(replicas=0, surge=1, unavailable=0)
    plan = sizes.proportional_sizes(d, [rs("old", 4, max_replicas=6), rs("new", 2, age=1)])
    assert sizes_by_name(plan) == {"old": 0, "new": 0}


def test_a_scaling_event_is_an_active_replica_set_sized_for_another_deployment_size():
    d = deployment(replicas=5)
    assert sizes.is_scaling_event(d, [rs("a", 3, desired=3), None])
    assert not sizes.is_scaling_event(d, [rs("a", 5, desired=5), rs("b", 0, desired=3)])
    assert not sizes.is_scaling_event(d, [rs("a", 3)])


def test_the_only_active_replica_set_or_else_the_newest_takes_a_resize():
    old, new = rs("old", 0, age=0), rs("new", 0, age=1)
    assert sizes.find_active_or_latest(new, [old]) is new
    assert sizes.find_active_or_latest(None, [old, rs("later", 0, age=5)])["metadata"]["name"] \
        == "later"
    busy = rs("old", 2)
    assert sizes.find_active_or_latest(new, [busy]) is busy
    assert sizes.find_active_or_latest(rs("new", 1, age=1), [busy]) is None


# ---------------------------------------------------------------- revisions


def test_a_replica_set_rolled_back_to_gets_the_next_revision_and_keeps_its_old_one():
    d = deployment()
    d["metadata"]["annotations"] = {"kubernetes.io/change-cause": "undo",
                                    revisions.REVISION: "2", history.LAST_APPLIED: "{}"}
    old = rs("first", 0, revision=1)
    notes = history.new_rs_annotations(d, old, 3, exists=True)
    assert notes[revisions.REVISION] == "3"
    assert notes[history.REVISION_HISTORY] == "1"
    assert notes["kubernetes.io/change-cause"] == "undo"
    assert history.LAST_APPLIED not in notes
    again = {**old, "metadata": {**old["metadata"], "annotations": notes}}
    assert history.new_rs_annotations(d, again, 5, exists=True)[history.REVISION_HISTORY] == "1,3"


def test_a_revision_is_never_lowered_and_a_created_replica_set_records_its_sizes():
    d = deployment(replicas=10, surge=3)
    kept = history.new_rs_annotations(d, rs("a", 0, revision=7), 4, exists=True)
    assert kept[revisions.REVISION] == "7"
    created = history.new_rs_annotations(d, {"metadata": {}}, 1, exists=False)
    assert created == {revisions.REVISION: "1", sizes.DESIRED_REPLICAS: "10",
                       sizes.MAX_REPLICAS: "13"}
    assert history.max_revision([rs("a", 0, revision=2), rs("b", 0, revision=9)]) == 9


def test_old_replica_sets_beyond_the_history_limit_go_lowest_revision_first():
    d = deployment(revisionHistoryLimit=2)
    olds = [rs("r3", 0, revision=3, age=0), rs("r1", 0, revision=1, age=5),
            rs("r2", 0, revision=2, age=1), rs("r4", 0, revision=4, age=2)]
    assert [r["metadata"]["name"] for r in history.replica_sets_to_prune(d, olds)] == ["r1", "r2"]


def test_replica_sets_with_pods_or_unobserved_changes_are_never_pruned():
    d = deployment(revisionHistoryLimit=0)
    olds = [rs("busy", 1, revision=1), rs("draining", 0, status_replicas=1, revision=2),
            rs("unseen", 0, generation=3, observed=2, revision=3), rs("done", 0, revision=4)]
    assert [r["metadata"]["name"] for r in history.replica_sets_to_prune(d, olds)] == ["done"]
    assert history.replica_sets_to_prune(deployment(), olds) == []


# ------------------------------------------------------------------- status


def test_status_counts_replicas_and_reports_minimum_availability():
    d = deployment(replicas=3, surge=1, unavailable=0)
    new = rs("new", 1, available=0, age=1)
    new["status"]["readyReplicas"] = 0
    old = rs("old", 3)
    old["status"]["readyReplicas"] = 3
    status = progress.calculate_status(d, [old, new], new, T0)
    assert {k: v for k, v in status.items() if k != "conditions"} == {
        "observedGeneration": 1, "replicas": 4, "updatedReplicas": 1, "readyReplicas": 3,
        "availableReplicas": 3, "unavailableReplicas": 1}
    available = find_condition(status.get("conditions"), progress.AVAILABLE)
    assert available["reason"] == progress.MIN_AVAILABLE
    thin = progress.calculate_status(d, [rs("old", 3, available=1)], None, T0)
    assert find_condition(thin.get("conditions"), progress.AVAILABLE)["status"] == "False"


def with_progress(d: dict, reason: str, at: dt.datetime, state: str = "True") -> dict:
    condition = progress.new_condition(progress.PROGRESSING, state, reason, "", at)
    d["status"]["conditions"] = [condition]
    return d


def test_a_rollout_without_progress_past_its_deadline_is_marked_exceeded():
    d = with_progress(deployment(replicas=2, surge=1, unavailable=0, progressDeadlineSeconds=10),
                      progress.RS_UPDATED, T0)
    old, new = rs("old", 2), rs("new", 1, available=0, age=1)
    d["status"] = {**progress.calculate_status(d, [old, new], new, T0),
                   "conditions": d["status"]["conditions"]}
    early = progress.rollout_status(d, [old, new], new, T0 + dt.timedelta(seconds=5))
    early_progress = find_condition(early.get("conditions"), progress.PROGRESSING)
    assert early_progress["reason"] == progress.RS_UPDATED
    assert progress.progress_check_after(d, early, T0 + dt.timedelta(seconds=5)) == 6.0
    late = progress.rollout_status(d, [old, new], new, T0 + dt.timedelta(seconds=11))
    condition = find_condition(late.get("conditions"), progress.PROGRESSING)
    assert (condition["status"], condition["reason"]) == ("False", progress.TIMED_OUT)
    assert condition["message"] == 'ReplicaSet "new" has timed out progressing.'


def test_progress_renews_the_deadline_and_completion_is_new_replica_set_available():
    d = with_progress(deployment(replicas=2, surge=1, unavailable=0, progressDeadlineSeconds=10),
                      progress.NEW_RS_CREATED, T0)
    d["status"].update(replicas=2, updatedReplicas=0, availableReplicas=2)
    old, new = rs("old", 2), rs("new", 1, age=1)
    later = T0 + dt.timedelta(seconds=30)
    moving = progress.rollout_status(d, [old, new], new, later)
    condition = find_condition(moving.get("conditions"), progress.PROGRESSING)
    assert (condition["reason"], condition["lastUpdateTime"]) == (
        progress.RS_UPDATED, "2030-01-01T00:00:30Z")
    assert condition["lastTransitionTime"] == "2030-01-01T00:00:00Z"
    done_new = rs("new", 2, age=1)
    done = progress.rollout_status(d, [rs("old", 0), done_new], done_new, later)
    done_progress = find_condition(done.get("conditions"), progress.PROGRESSING)
    assert done_progress["reason"] == progress.NEW_RS_AVAILABLE
    assert progress.progress_check_after(d, done, later) is None


def test_without_a_deadline_there_is_no_progressing_condition():
    d = with_progress(deployment(replicas=1, progressDeadlineSeconds=progress.NO_DEADLINE),
                      progress.RS_UPDATED, T0)
    status = progress.rollout_status(d, [rs("a", 1)], rs("a", 1), T0)
    assert find_condition(status.get("conditions"), progress.PROGRESSING) is None
