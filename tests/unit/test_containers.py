"""Pod → container specs: which namespaces the sandbox and app containers get."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from agent.containers import (
    PodContext,
    PodSpecError,
    container_spec,
    pod_ip,
    sandbox_spec,
    start_failure_message,
)
from agent.podstate import PodRuntimeState
from agent.runtime import ContainerInfo
from agent.status import ProbeView, pod_status


def pod(**spec: Any) -> dict[str, Any]:
    container = {"name": "app", "image": "minik/busybox:1.35",
                 "ports": [{"containerPort": 8080}]}
    return {"metadata": {"name": "p", "namespace": "default", "uid": "u1"},
            "spec": {"containers": [container], **spec}, "status": {}}


def context(p: dict[str, Any]) -> PodContext:
    return PodContext("i", p, "minik-net", "minik/pause:1.0")


def app_spec(p: dict[str, Any]) -> Any:
    return container_spec(context(p), p["spec"]["containers"][0], sandbox_id="sb",
                          restart_count=0, env={}, mounts=[])


def test_a_pod_gets_its_own_namespaces_by_default() -> None:
    p = pod()
    sandbox = sandbox_spec(context(p), 0)
    assert (sandbox.network_mode, sandbox.ipc_mode, sandbox.pid_mode) == (
        "minik-net", "shareable", None)
    assert sandbox.hostname == "p"
    app = app_spec(p)
    assert (app.network_mode, app.ipc_mode, app.pid_mode) == (
        "container:sb", "container:sb", None)


def test_a_pod_with_a_subdomain_gets_its_fqdn_as_the_sandboxes_domain() -> None:
    sandbox = sandbox_spec(context(pod(hostname="db-0", subdomain="db")), 0)
    assert (sandbox.hostname, sandbox.domainname) == ("db-0", "db.default.svc.cluster.local")
    assert sandbox_spec(context(pod()), 0).domainname is None
    fqdn = sandbox_spec(context(pod(subdomain="db", setHostnameAsFQDN=True)), 0)
    assert (fqdn.hostname, fqdn.domainname) == ("p.db.default.svc.cluster.local", None)


def test_host_namespaces_are_the_sandboxes_and_the_containers_join_them() -> None:
    p = pod(hostNetwork=True, hostIPC=True, hostPID=True)
    p["spec"]["containers"][0]["ports"][0]["hostPort"] = 8080
    sandbox = sandbox_spec(context(p), 0)
    assert (sandbox.network_mode, sandbox.ipc_mode, sandbox.pid_mode) == ("host", "host", "host")
    assert sandbox.hostname is None, "a hostNetwork pod has the node's hostname"
    assert sandbox.published_ports == [], "its ports are the host's own"
    app = app_spec(p)
    assert (app.network_mode, app.ipc_mode, app.pid_mode) == (
        "container:sb", "container:sb", "host")


def test_a_shared_process_namespace_is_the_sandboxes() -> None:
    assert app_spec(pod(shareProcessNamespace=True)).pid_mode == "container:sb"
    assert sandbox_spec(context(pod(shareProcessNamespace=True)), 0).pid_mode is None


def test_what_docker_cannot_do_as_asked_is_refused() -> None:
    p = pod(hostNetwork=True)
    p["spec"]["containers"][0]["ports"][0]["hostPort"] = 9090
    with pytest.raises(PodSpecError, match=r"hostPort 9090 .* must equal its containerPort 8080"):
        sandbox_spec(context(p), 0)
    with pytest.raises(PodSpecError, match="shareProcessNamespace and hostPID"):
        sandbox_spec(context(pod(hostPID=True, shareProcessNamespace=True)), 0)


def test_a_host_network_pod_reports_the_nodes_address_as_its_ip() -> None:
    p = pod(hostNetwork=True)
    sandbox = ContainerInfo(id="sb", name="sb", labels={"minik.dev/sandbox": "true"},
                            image="minik/pause:1.0", image_id="", state="running")
    assert pod_ip(p, sandbox, "127.0.0.1") == "127.0.0.1"
    assert pod_ip(pod(), sandbox, "127.0.0.1") is None, "no address on the pod network yet"
    status = pod_status(p, PodRuntimeState("u1", sandboxes=[sandbox]), waiting={},
                        probes=ProbeView(), host_ip="127.0.0.1", now=dt.datetime.now(dt.UTC))
    assert status["podIP"] == "127.0.0.1" and status["podIPs"] == [{"ip": "127.0.0.1"}]


def test_a_privileged_start_the_engine_cannot_grant_says_why() -> None:
    error = "OCI runtime create failed: unable to apply caps: operation not permitted"
    privileged = {"name": "c", "securityContext": {"privileged": True}}
    assert start_failure_message(privileged, error).startswith(
        "privileged containers cannot run on this node")
    assert start_failure_message({"name": "c"}, error) == error


def test_the_pods_supplemental_groups_and_fs_group_are_the_containers_extra_groups() -> None:
    p = pod(securityContext={"runAsUser": 1000, "supplementalGroups": [3000, 4000],
                             "fsGroup": 2000})
    app = app_spec(p)
    assert app.user == "1000"
    assert app.group_add == ["3000", "4000", "2000"]
    assert app_spec(pod()).group_add == []
