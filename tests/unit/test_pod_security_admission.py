"""The PodSecurity admission plugin: enforce refuses, warn warns, workloads only warn,
namespace labels are checked and tightening them names the pods it would refuse."""

from __future__ import annotations

import pytest

from minik.api.errors import ApiError
from minik.api.resources import DEPLOYMENTS, NAMESPACES, PODS
from minik.apiserver.podsecurity_admission import PodSecurityAdmission
from minik.apiserver.storage import ADMITTED_SUBRESOURCES, ObjectStorage, WriteOptions
from tests.unit.apitest import bootstrapped

PSA = "pod-security.kubernetes.io/"


def namespace(name: str, **labels: str) -> dict:
    return {"apiVersion": "v1", "kind": "Namespace",
            "metadata": {"name": name, "labels": {PSA + k.replace("_", "-"): v
                                                  for k, v in labels.items()}}}


def pod(name: str, *, privileged: bool = False) -> dict:
    container = {"name": "c", "image": "minik/busybox:1.35"}
    if privileged:
        container["securityContext"] = {"privileged": True}
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
            "spec": {"containers": [container]}}


async def storage_with(ns: dict) -> ObjectStorage:
    storage = await bootstrapped()
    await storage.create(NAMESPACES, None, ns, WriteOptions())
    return storage


async def test_enforce_refuses_a_violating_pod_with_kubernetes_message():
    storage = await storage_with(namespace("locked", enforce="baseline"))
    with pytest.raises(ApiError) as refused:
        await storage.create(PODS, "locked", pod("x", privileged=True), WriteOptions())
    assert refused.value.code == 403
    assert refused.value.message == (
        'pods "x" is forbidden: violates PodSecurity "baseline:latest": privileged '
        '(container "c" must not set securityContext.privileged=true)')
    assert refused.value.details == {"name": "x", "kind": "pods"}
    assert (await storage.create(PODS, "locked", pod("y"), WriteOptions())).created


async def test_warn_admits_a_violating_pod_with_a_warning():
    storage = await storage_with(namespace("open", warn="baseline", warn_version="v1.30"))
    result = await storage.create(PODS, "open", pod("x", privileged=True), WriteOptions())
    assert result.created
    assert result.warnings == [
        'would violate PodSecurity "baseline:v1.30": privileged (container "c" must not set '
        "securityContext.privileged=true)"]


async def test_a_dry_run_is_refused_as_a_real_create():
    storage = await storage_with(namespace("locked", enforce="restricted"))
    with pytest.raises(ApiError):
        await storage.create(PODS, "locked", pod("x"), WriteOptions(dry_run=True))


async def test_a_workload_with_a_violating_template_is_admitted_with_a_warning():
    storage = await storage_with(namespace("locked", enforce="baseline"))
    template = pod("t", privileged=True)
    deployment = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"},
                  "spec": {"selector": {"matchLabels": {"a": "b"}},
                           "template": {"metadata": {"labels": {"a": "b"}},
                                        "spec": template["spec"]}}}
    result = await storage.create(DEPLOYMENTS, "locked", deployment, WriteOptions())
    assert result.created
    assert result.warnings == [
        'would violate PodSecurity "baseline:latest": privileged (container "c" must not set '
        "securityContext.privileged=true)"]


async def test_invalid_labels_make_the_namespace_invalid():
    storage = await bootstrapped()
    with pytest.raises(ApiError) as refused:
        await storage.create(NAMESPACES, None, namespace("typo", enforce="strict"),
                             WriteOptions())
    assert refused.value.code == 422
    assert refused.value.message == (
        'Namespace "typo" is invalid: metadata.labels[pod-security.kubernetes.io/enforce]: '
        'Invalid value: "strict": must be one of privileged, baseline, restricted')
    assert refused.value.details["causes"][0]["field"] == (
        "metadata.labels[pod-security.kubernetes.io/enforce]")


async def test_tightening_enforce_warns_about_the_existing_pods_it_would_refuse():
    storage = await storage_with(namespace("open"))
    for name in ("b", "a", "c"):
        await storage.create(PODS, "open", pod(name, privileged=name != "c"), WriteOptions())
    labelled = namespace("open", enforce="baseline")
    result = await storage.mutate(NAMESPACES, None, "open",
                                  lambda current: {**current, "metadata": {
                                      **current["metadata"], **labelled["metadata"]}},
                                  WriteOptions())
    assert result.warnings == [
        'existing pods in namespace "open" violate the new PodSecurity enforce level '
        '"baseline:latest"',
        "a (and 1 other pod): privileged"]


async def test_a_pod_update_that_changes_no_checked_field_is_not_judged_again():
    storage = await storage_with(namespace("open"))
    await storage.create(PODS, "open", pod("x", privileged=True), WriteOptions())
    await storage.mutate(NAMESPACES, None, "open", lambda ns: {**ns, "metadata": {
        **ns["metadata"], "labels": {PSA + "enforce": "baseline"}}}, WriteOptions())
    relabelled = await storage.mutate(PODS, "open", "x", lambda p: {**p, "metadata": {
        **p["metadata"], "labels": {"k": "v"}}}, WriteOptions())
    assert relabelled.obj["metadata"]["labels"] == {"k": "v"}


async def test_audit_logs_the_audit_annotation_and_admits(caplog: pytest.LogCaptureFixture):
    storage = await storage_with(namespace("watched", audit="baseline"))
    with caplog.at_level("WARNING", logger="minik.audit"):
        result = await storage.create(PODS, "watched", pod("x", privileged=True), WriteOptions())
    assert result.created and result.warnings == []
    assert ('pod-security.kubernetes.io/audit-violations=would violate PodSecurity '
            '"baseline:latest": privileged') in caplog.text


async def test_an_ephemeral_container_is_judged_by_the_enforce_level():
    """The `ephemeralcontainers` subresource (kubectl debug) reaches the plugin as a pod
    update that adds the container: it is judged as a new pod would be."""
    storage = await storage_with(namespace("locked", enforce="baseline"))
    old = (await storage.create(PODS, "locked", pod("x"), WriteOptions())).obj
    debugger = {"name": "debugger", "image": "minik/busybox:1.35",
                "securityContext": {"privileged": True}}
    new = {**old, "spec": {**old["spec"], "ephemeralContainers": [debugger]}}
    with pytest.raises(ApiError) as refused:
        await PodSecurityAdmission().admit(storage.store, old, new)
    assert refused.value.message == (
        'pods "x" is forbidden: violates PodSecurity "baseline:latest": privileged '
        '(container "debugger" must not set securityContext.privileged=true)')
    assert "ephemeralcontainers" in ADMITTED_SUBRESOURCES


async def test_a_pod_is_judged_with_its_defaults_as_kubernetes_defaults_before_admission():
    storage = await storage_with(namespace("locked", enforce="baseline"))
    host = pod("h")
    host["spec"]["hostNetwork"] = True
    host["spec"]["containers"][0]["ports"] = [{"containerPort": 8080}]
    with pytest.raises(ApiError) as refused:
        await storage.create(PODS, "locked", host, WriteOptions())
    assert refused.value.message.endswith(
        'host namespaces (hostNetwork), hostPort (container "c" uses hostPort 8080)')
