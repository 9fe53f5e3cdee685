"""Pod specs the node could not run are refused by the API (422 naming the field), for pods
and for the pod template of every workload kind alike."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from minik.api import errors, validation
from minik.api.resources import REGISTRY

CONTAINER = {"name": "c", "image": "minik/web:v1"}
VOLUMES = [{"name": "v", "emptyDir": {}}]
SELECTOR = {"matchLabels": {"app": "a"}}
TEMPLATED = {
    "Deployment": ("spec.template.spec", {"selector": SELECTOR}),
    "ReplicaSet": ("spec.template.spec", {"selector": SELECTOR}),
    "DaemonSet": ("spec.template.spec", {"selector": SELECTOR}),
    "StatefulSet": ("spec.template.spec", {"selector": SELECTOR, "serviceName": "s"}),
    "Job": ("spec.template.spec", {}),
    "CronJob": ("spec.jobTemplate.spec.template.spec", {"schedule": "* * * * *"}),
}


def pod_spec(container: dict[str, Any] | None = None, **spec: Any) -> dict[str, Any]:
    return {"containers": [{**CONTAINER, **(container or {})}], "volumes": VOLUMES, **spec}


def wrapped(kind: str, spec: dict[str, Any]) -> dict[str, Any]:
    rt = REGISTRY.resolve(kind)
    assert rt is not None
    obj = {"apiVersion": rt.api_version, "kind": kind,
           "metadata": {"name": "x", "namespace": "default"}}
    if kind == "Pod":
        return {**obj, "spec": spec}
    spec = copy.deepcopy(spec)
    if kind in ("Job", "CronJob"):
        spec["restartPolicy"] = "Never"
    template = {"metadata": {"labels": {"app": "a"}}, "spec": spec}
    if kind == "CronJob":
        return {**obj, "spec": {**TEMPLATED[kind][1], "jobTemplate": {"spec": {
            "template": template}}}}
    return {**obj, "spec": {**TEMPLATED[kind][1], "template": template}}


def causes(kind: str, spec: dict[str, Any]) -> list[tuple[str, str]]:
    rt = REGISTRY.resolve(kind)
    assert rt is not None
    with pytest.raises(errors.ApiError) as caught:
        validation.validate(rt, wrapped(kind, spec))
    assert caught.value.code == 422, caught.value.message
    return [(c["field"], c["message"]) for c in caught.value.details["causes"]]


REFUSED = [
    ("negative cpu request", pod_spec({"resources": {"requests": {"cpu": "-1"}}}),
     "containers[0].resources.requests[cpu]",
     'Invalid value: "-1": must be greater than or equal to 0'),
    ("negative memory limit", pod_spec({"resources": {"limits": {"memory": "-64Mi"}}}),
     "containers[0].resources.limits[memory]",
     'Invalid value: "-64Mi": must be greater than or equal to 0'),
    ("request over limit",
     pod_spec({"resources": {"requests": {"cpu": "2"}, "limits": {"cpu": "1"}}}),
     "containers[0].resources.requests[cpu]",
     'Invalid value: "2": must be less than or equal to cpu limit of 1'),
    ("unknown resource", pod_spec({"resources": {"requests": {"storage": "1Gi"}}}),
     "containers[0].resources.requests[storage]",
     'Invalid value: "storage": must be a standard resource for containers'),
    ("extended resource without a limit",
     pod_spec({"resources": {"requests": {"example.com/gpu": "1"}}}),
     "containers[0].resources.limits",
     "Required value: Limit must be set for non overcommitable resources"),
    ("fractional extended resource",
     pod_spec({"resources": {"limits": {"example.com/gpu": "500m"}}}),
     "containers[0].resources.limits[example.com/gpu]",
     'Invalid value: "500m": must be an integer'),
    ("absolute subPath",
     pod_spec({"volumeMounts": [{"name": "v", "mountPath": "/d", "subPath": "/etc"}]}),
     "containers[0].volumeMounts[0].subPath", 'Invalid value: "/etc": must be a relative path'),
    ("climbing subPath",
     pod_spec({"volumeMounts": [{"name": "v", "mountPath": "/d", "subPath": "a/../../x"}]}),
     "containers[0].volumeMounts[0].subPath",
     'Invalid value: "a/../../x": must not contain \'..\''),
    ("climbing subPathExpr",
     pod_spec({"volumeMounts": [{"name": "v", "mountPath": "/d", "subPathExpr": "../$(X)"}]}),
     "containers[0].volumeMounts[0].subPathExpr",
     'Invalid value: "../$(X)": must not contain \'..\''),
    ("subPath and subPathExpr",
     pod_spec({"volumeMounts": [{"name": "v", "mountPath": "/d", "subPath": "a",
                                 "subPathExpr": "b"}]}),
     "containers[0].volumeMounts[0].subPathExpr",
     'Invalid value: "b": subPathExpr and subPath are mutually exclusive'),
    ("mount path twice",
     pod_spec({"volumeMounts": [{"name": "v", "mountPath": "/d"},
                                {"name": "v", "mountPath": "/d"}]}),
     "containers[0].volumeMounts[1].mountPath", 'Invalid value: "/d": must be unique'),
    ("port name twice",
     pod_spec({"ports": [{"name": "web", "containerPort": 80},
                         {"name": "web", "containerPort": 81}]}),
     "containers[0].ports[1].name", 'Duplicate value: "web"'),
    ("host port twice", {"containers": [
        {**CONTAINER, "ports": [{"containerPort": 80, "hostPort": 8080}]},
        {**CONTAINER, "name": "d", "ports": [{"containerPort": 81, "hostPort": 8080}]}]},
     "containers[1].ports[0].hostPort", 'Duplicate value: "TCP//8080"'),
    ("remapped port on the host network",
     pod_spec({"ports": [{"containerPort": 80, "hostPort": 8080}]}, hostNetwork=True),
     "containers[0].ports[0].containerPort",
     "Invalid value: 80: must match `hostPort` when `hostNetwork` is true"),
    ("process namespace shared with the host's",
     pod_spec(hostPID=True, shareProcessNamespace=True),
     "securityContext.shareProcessNamespace",
     "Invalid value: true: ShareProcessNamespace and HostPID cannot both be enabled"),
    ("readiness probe with a grace period",
     pod_spec({"readinessProbe": {"exec": {"command": ["true"]},
                                  "terminationGracePeriodSeconds": 5}}),
     "containers[0].readinessProbe.terminationGracePeriodSeconds",
     "Invalid value: 5: must not be set for readinessProbes"),
    ("probe grace period of zero",
     pod_spec({"livenessProbe": {"exec": {"command": ["true"]},
                                 "terminationGracePeriodSeconds": 0}}),
     "containers[0].livenessProbe.terminationGracePeriodSeconds",
     "Invalid value: 0: must be greater than 0"),
    ("privileged without escalation",
     pod_spec({"securityContext": {"privileged": True, "allowPrivilegeEscalation": False}}),
     "containers[0].securityContext",
     'Invalid value: {"privileged":true,"allowPrivilegeEscalation":false}: cannot set '
     "`allowPrivilegeEscalation` to false and `privileged` to true"),
    ("bad nameserver", pod_spec(dnsConfig={"nameservers": ["10.0.0.300"]}),
     "dnsConfig.nameservers[0]",
     'Invalid value: "10.0.0.300": must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)'),
    ("too many nameservers",
     pod_spec(dnsConfig={"nameservers": ["1.1.1.1", "1.0.0.1", "8.8.8.8", "8.8.4.4"]}),
     "dnsConfig.nameservers",
     'Invalid value: ["1.1.1.1","1.0.0.1","8.8.8.8","8.8.4.4"]: must not have more than 3 '
     "nameservers"),
    ("bad search domain", pod_spec(dnsConfig={"searches": ["ok.example.", "Not_OK"]}),
     "dnsConfig.searches[1]", 'Invalid value: "Not_OK": a lowercase RFC 1123 subdomain'),
    ("dns option without a name", pod_spec(dnsConfig={"options": [{"value": "2"}]}),
     "dnsConfig.options[0]", "Required value: Option.Name must not be empty"),
    ("dnsPolicy None without config", pod_spec(dnsPolicy="None"),
     "dnsConfig", "Required value: must provide `dnsConfig` when `dnsPolicy` is None"),
    ("dnsPolicy None without nameservers",
     pod_spec(dnsPolicy="None", dnsConfig={"searches": ["a.b"]}),
     "dnsConfig.nameservers",
     "Required value: must provide at least one DNS nameserver when `dnsPolicy` is None"),
    ("host alias with a bad address", pod_spec(hostAliases=[{"ip": "localhost"}]),
     "hostAliases[0].ip",
     'Invalid value: "localhost": must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)'),
    ("host alias with a bad name",
     pod_spec(hostAliases=[{"ip": "10.0.0.1", "hostnames": ["ok", "under_score"]}]),
     "hostAliases[0].hostnames[1]", 'Invalid value: "under_score": a lowercase RFC 1123'),
    ("negative emptyDir size",
     pod_spec(volumes=[{"name": "v", "emptyDir": {"sizeLimit": "-1Gi"}}]),
     "volumes[0].emptyDir.sizeLimit",
     "Forbidden: SizeLimit field must be a valid resource quantity"),
]


@pytest.mark.parametrize("kind", ["Pod", *TEMPLATED])
@pytest.mark.parametrize(("what", "spec", "field", "message"), REFUSED,
                         ids=[case[0] for case in REFUSED])
def test_a_pod_spec_the_node_could_not_run_is_invalid(
    kind: str, what: str, spec: dict[str, Any], field: str, message: str
) -> None:
    prefix = TEMPLATED[kind][0] if kind in TEMPLATED else "spec"
    found = causes(kind, spec)
    assert [f for f, _ in found] == [f"{prefix}.{field}"], found
    assert found[0][1].startswith(message), found


def test_padded_images_are_refused_in_pods_but_not_in_templates() -> None:
    spec = pod_spec({"image": " minik/web:v1"})
    assert causes("Pod", spec) == [(
        "spec.containers[0].image",
        'Invalid value: " minik/web:v1": must not have leading or trailing whitespace')]
    rt = REGISTRY.resolve("Deployment")
    assert rt is not None
    validation.validate(rt, wrapped("Deployment", spec))


def test_valid_resources_mounts_and_dns_settings_pass() -> None:
    rt = REGISTRY.resolve("Pod")
    assert rt is not None
    spec = pod_spec(
        {"resources": {"requests": {"cpu": "100m", "memory": "64Mi", "example.com/gpu": "1",
                                    "hugepages-2Mi": "4Mi"},
                       "limits": {"cpu": "1", "example.com/gpu": "1", "hugepages-2Mi": "4Mi"}},
         "volumeMounts": [{"name": "v", "mountPath": "/d", "subPath": "a/b..c"},
                          {"name": "v", "mountPath": "/e", "subPathExpr": "$(POD)"}],
         "ports": [{"containerPort": 80, "hostPort": 80}]},
        hostNetwork=True, dnsPolicy="None",
        dnsConfig={"nameservers": ["10.96.0.10"], "searches": ["svc.cluster.local."],
                   "options": [{"name": "ndots", "value": "2"}]},
        hostAliases=[{"ip": "10.0.0.1", "hostnames": ["db.local"]}])
    warnings = validation.validate(rt, wrapped("Pod", spec))
    assert all(w.endswith("stored but not acted on by minik") for w in warnings), warnings
