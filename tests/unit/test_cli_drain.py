"""`minik drain` sorts a node's pods as kubectl's drain filters do."""

from __future__ import annotations

from typing import Any

from minik.api.errors import ApiError
from minik.cli.drain import DrainFlags, go_duration, plan_drain


class Daemonsets:
    """A client that knows one DaemonSet, `agent`."""

    def request(self, method: str, path: str, **_: Any) -> dict[str, Any]:
        if path.endswith("/daemonsets/agent"):
            return {"metadata": {"name": "agent"}}
        raise ApiError(404, "NotFound", "not found")


def pod(name: str, *, owner: str | None = None, phase: str = "Running",
        empty_dir: bool = False, mirror: bool = False) -> dict[str, Any]:
    md: dict[str, Any] = {"name": name, "namespace": "ns"}
    if owner:
        kind, _, owner_name = owner.partition("/")
        md["ownerReferences"] = [{"kind": kind, "name": owner_name, "controller": True}]
    if mirror:
        md["annotations"] = {"kubernetes.io/config.mirror": "x"}
    spec = {"volumes": [{"name": "scratch", "emptyDir": {}}]} if empty_dir else {}
    return {"metadata": md, "spec": spec, "status": {"phase": phase}}


def names(pods: list[dict[str, Any]]) -> list[str]:
    return [p["metadata"]["name"] for p in pods]


PODS = [pod("web", owner="ReplicaSet/web"), pod("ds", owner="DaemonSet/agent"),
        pod("lone"), pod("scratch", owner="ReplicaSet/web", empty_dir=True),
        pod("static", mirror=True), pod("done", phase="Succeeded")]


def test_without_flags_daemonset_local_storage_and_unmanaged_pods_are_refused_together():
    plan = plan_drain(Daemonsets(), PODS, DrainFlags())  # type: ignore[arg-type]
    assert plan.errors() == [
        "cannot delete DaemonSet-managed Pods (use --ignore-daemonsets to ignore): ns/ds",
        "cannot delete cannot delete Pods that declare no controller (use --force to "
        "override): ns/lone",
        "cannot delete Pods with local storage (use --delete-emptydir-data to override): "
        "ns/scratch"]


def test_with_every_flag_the_daemonset_and_mirror_pods_stay_and_the_rest_are_evicted():
    plan = plan_drain(Daemonsets(), PODS,  # type: ignore[arg-type]
                      DrainFlags(ignore_daemonsets=True, delete_emptydir_data=True, force=True))
    assert plan.errors() == []
    assert names(plan.evict) == ["web", "lone", "scratch", "done"]
    assert plan.warning_text() == (
        "ignoring DaemonSet-managed Pods: ns/ds; deleting Pods that declare no controller: "
        "ns/lone; deleting Pods with local storage: ns/scratch")


def test_a_pod_of_a_deleted_daemonset_is_evicted_with_force():
    orphan = pod("ghost", owner="DaemonSet/gone")
    plan = plan_drain(Daemonsets(), [orphan], DrainFlags(force=True))  # type: ignore[arg-type]
    assert names(plan.evict) == ["ghost"]


def test_timeouts_print_as_go_durations():
    assert [go_duration(s) for s in (5, 60, 90, 3723)] == ["5s", "1m0s", "1m30s", "1h2m3s"]
