"""Request bodies are refused, warned about and accepted as the real API server does."""

from __future__ import annotations

import copy
import typing
from typing import Any

import pytest

from minik.api import defaults, errors, schema, validation
from minik.api.models.base import K8sModel
from minik.api.models.kinds import MODELS
from minik.api.resources import REGISTRY, ResourceType

POD_SPEC = {"containers": [{"name": "c", "image": "busybox:1.36"}]}
TEMPLATE = {"metadata": {"labels": {"app": "a"}}, "spec": POD_SPEC}
SELECTOR = {"matchLabels": {"app": "a"}}
CLAIM = {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}
MINIMAL: dict[str, dict[str, Any]] = {
    "Namespace": {},
    "Node": {},
    "Pod": {"spec": POD_SPEC},
    "ConfigMap": {"data": {"k": "v"}},
    "Secret": {"stringData": {"k": "v"}},
    "Service": {"spec": {"selector": {"app": "a"}, "ports": [{"port": 80}]}},
    "Endpoints": {"subsets": [{"addresses": [{"ip": "10.0.0.1"}], "ports": [{"port": 80}]}]},
    "Event": {"involvedObject": {"kind": "Pod", "name": "p", "namespace": "default"},
              "reason": "Started", "type": "Normal"},
    "ServiceAccount": {},
    "PersistentVolume": {"spec": {"capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce"],
                                  "hostPath": {"path": "/tmp/pv"}}},
    "PersistentVolumeClaim": {"spec": CLAIM},
    "Deployment": {"spec": {"selector": SELECTOR, "template": TEMPLATE}},
    "ReplicaSet": {"spec": {"selector": SELECTOR, "template": TEMPLATE}},
    "StatefulSet": {"spec": {"selector": SELECTOR, "serviceName": "s", "template": TEMPLATE,
                             "volumeClaimTemplates": [{"metadata": {"name": "data"},
                                                       "spec": CLAIM}]}},
    "DaemonSet": {"spec": {"selector": SELECTOR, "template": TEMPLATE}},
    "ControllerRevision": {"data": {"spec": {}}, "revision": 1},
    "Job": {"spec": {"template": {"spec": {**POD_SPEC, "restartPolicy": "Never"}}}},
    "CronJob": {"spec": {"schedule": "*/5 * * * *", "jobTemplate": {"spec": {"template": {
        "spec": {**POD_SPEC, "restartPolicy": "OnFailure"}}}}}},
    "EndpointSlice": {"addressType": "IPv4", "endpoints": [{"addresses": ["10.0.0.1"]}],
                      "ports": [{"port": 80}]},
    "StorageClass": {"provisioner": "minik.io/hostpath"},
    "Lease": {"spec": {"holderIdentity": "x", "leaseDurationSeconds": 15}},
    "HorizontalPodAutoscaler": {"spec": {"maxReplicas": 3, "scaleTargetRef": {
        "apiVersion": "apps/v1", "kind": "Deployment", "name": "d"}}},
}


def rt(kind: str) -> ResourceType:
    found = REGISTRY.resolve(kind)
    assert found is not None
    return found


def minimal(kind: str, name: str = "x") -> dict[str, Any]:
    t = rt(kind)
    meta = {"name": name, **({"namespace": "default"} if t.namespaced else {})}
    return {"apiVersion": t.api_version, "kind": kind, "metadata": meta,
            **copy.deepcopy(MINIMAL[kind])}


def deployment(**container: Any) -> dict[str, Any]:
    obj = minimal("Deployment", "web")
    obj["spec"]["template"]["spec"]["containers"][0].update(container)
    return obj


def invalid(kind: str, obj: dict[str, Any], old: dict[str, Any] | None = None) -> list[dict]:
    with pytest.raises(errors.ApiError) as caught:
        validation.validate(rt(kind), obj, old=old)
    assert caught.value.code == 422 and caught.value.reason == "Invalid"
    return caught.value.details["causes"]


def bad_request(kind: str, obj: dict[str, Any], **kw: Any) -> str:
    with pytest.raises(errors.ApiError) as caught:
        validation.validate(rt(kind), obj, **kw)
    assert caught.value.code == 400 and caught.value.reason == "BadRequest"
    return caught.value.message


def fields(causes: list[dict]) -> list[str]:
    return [c["field"] for c in causes]


@pytest.mark.parametrize("kind", sorted(MINIMAL))
def test_minimal_objects_of_every_kind_validate_without_warnings(kind: str) -> None:
    obj = minimal(kind)
    assert validation.validate(rt(kind), obj) == []
    assert validation.validate(rt(kind), defaults.apply_defaults(rt(kind), obj)) == []


def test_registry_kinds_all_have_a_schema_and_a_model() -> None:
    for t in REGISTRY:
        if "create" not in t.verbs:
            continue  # computed, never written (metrics.k8s.io): nothing to validate
        assert schema.type_name(t.api_version, t.kind), t.kind
        assert f"{t.api_version}/{t.kind}" in MODELS
    assert schema.type_name("autoscaling/v1", "Scale") == "V1Scale"
    assert schema.type_name("v1", "DeleteOptions") == "V1DeleteOptions"


def _nested_models(annotation: Any) -> list[type[K8sModel]]:
    if isinstance(annotation, type) and issubclass(annotation, K8sModel):
        return [annotation]
    return [m for arg in typing.get_args(annotation) for m in _nested_models(arg)]


def test_every_modelled_field_exists_in_the_kubernetes_schema() -> None:
    missing: list[str] = []

    def check(model: type[K8sModel], type_name: str, seen: set) -> None:
        if (model, type_name) in seen:
            return
        seen.add((model, type_name))
        known = schema.fields_of(type_name)
        for name, info in model.model_fields.items():
            alias = info.alias or name
            if alias not in known:
                missing.append(f"{type_name}.{alias}")
                continue
            for sub in _nested_models(info.annotation):
                check(sub, known[alias].strip("[]{}"), seen)

    seen: set = set()
    for key, model in MODELS.items():
        api_version, _, kind = key.rpartition("/")
        check(model, schema.type_name(api_version, kind) or "", seen)
    assert missing == []


def test_misspelt_container_field_is_a_strict_decoding_error_naming_its_path() -> None:
    message = bad_request("Deployment", deployment(imagee="nginx"))
    assert message == (
        'Deployment in version "v1" cannot be handled as a Deployment: strict decoding error: '
        'unknown field "spec.template.spec.containers[0].imagee"'
    )


def test_all_unknown_fields_are_listed_in_document_order() -> None:
    obj = deployment(imagee="nginx")
    obj["spec"]["replica"] = 2
    message = bad_request("Deployment", obj)
    assert message.endswith('unknown field "spec.template.spec.containers[0].imagee", '
                            'unknown field "spec.replica"')


def test_warn_mode_accepts_unknown_fields_with_warnings() -> None:
    warnings = validation.validate(rt("Deployment"), deployment(imagee="nginx"),
                                   field_validation="Warn")
    assert warnings == ['unknown field "spec.template.spec.containers[0].imagee"']


def test_absent_field_validation_means_warn_like_the_real_server() -> None:
    assert validation.validate(rt("ConfigMap"), {**minimal("ConfigMap"), "spec": {}},
                               field_validation="") == ['unknown field "spec"']


def test_ignore_mode_accepts_unknown_fields_silently() -> None:
    assert validation.validate(rt("Deployment"), deployment(imagee="x"),
                               field_validation="Ignore") == []


def test_unsupported_field_validation_value_is_a_bad_request() -> None:
    assert "fieldValidation" in bad_request("Pod", minimal("Pod"), field_validation="Loose")


def test_valid_kubernetes_field_minik_does_not_act_on_is_kept_with_a_warning() -> None:
    obj = deployment()
    affinity = {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
        "nodeSelectorTerms": [{"matchExpressions": [
            {"key": "zone", "operator": "In", "values": ["a"]}]}]}}}
    obj["spec"]["template"]["spec"]["affinity"] = affinity
    before = copy.deepcopy(obj)
    warnings = validation.validate(rt("Deployment"), obj)
    assert warnings == ["spec.template.spec.affinity: stored but not acted on by minik"]
    assert obj == before


def test_metadata_status_labels_and_annotations_never_warn() -> None:
    obj = minimal("Pod")
    obj["metadata"].update(labels={"a": "b"}, annotations={"free.form/anything": "{}"},
                           managedFields=[{"manager": "kubectl", "fieldsV1": {"f:x": {}}}])
    obj["status"] = {"phase": "Running", "podIP": "10.0.0.2"}
    assert validation.validate(rt("Pod"), obj) == []


def test_missing_container_image_is_invalid_with_its_field_path() -> None:
    obj = deployment()
    del obj["spec"]["template"]["spec"]["containers"][0]["image"]
    with pytest.raises(errors.ApiError) as caught:
        validation.validate(rt("Deployment"), obj)
    assert caught.value.code == 422
    assert caught.value.details["causes"] == [{
        "reason": "FieldValueRequired", "message": "Required value",
        "field": "spec.template.spec.containers[0].image",
    }]
    assert caught.value.message == (
        'Deployment.apps "web" is invalid: spec.template.spec.containers[0].image: Required value'
    )


def test_bad_label_value_is_invalid() -> None:
    obj = minimal("ConfigMap")
    obj["metadata"]["labels"] = {"tier": "-front-"}
    (cause,) = invalid("ConfigMap", obj)
    assert cause["field"] == "metadata.labels"
    assert cause["message"].startswith('Invalid value: "-front-": a valid label must be')


def test_selector_must_match_template_labels() -> None:
    obj = deployment()
    obj["spec"]["template"]["metadata"]["labels"] = {"app": "other"}
    (cause,) = invalid("Deployment", obj)
    assert cause == {
        "reason": "FieldValueInvalid", "field": "spec.template.metadata.labels",
        "message": 'Invalid value: {"app":"other"}: `selector` does not match template `labels`',
    }


def test_set_based_selector_is_matched_too() -> None:
    obj = deployment()
    obj["spec"]["selector"] = {"matchExpressions": [
        {"key": "app", "operator": "In", "values": ["a", "b"]}]}
    assert validation.validate(rt("Deployment"), obj) == []
    obj["spec"]["selector"]["matchExpressions"][0]["operator"] = "NotIn"
    assert fields(invalid("Deployment", obj)) == ["spec.template.metadata.labels"]


def test_selector_is_required_and_may_not_be_empty() -> None:
    obj = deployment()
    del obj["spec"]["selector"]
    assert fields(invalid("Deployment", obj)) == ["spec.selector"]
    obj["spec"]["selector"] = {}
    (cause,) = invalid("Deployment", obj)
    assert cause["message"] == "Invalid value: {}: empty selector is invalid for deployment"


def test_replicas_may_not_be_negative() -> None:
    obj = deployment()
    obj["spec"]["replicas"] = -1
    (cause,) = invalid("Deployment", obj)
    assert cause["field"] == "spec.replicas"
    assert cause["message"] == "Invalid value: -1: must be greater than or equal to 0"


def test_restart_policy_is_an_enum() -> None:
    obj = minimal("Pod")
    obj["spec"]["restartPolicy"] = "Sometimes"
    (cause,) = invalid("Pod", obj)
    assert cause == {
        "reason": "FieldValueNotSupported", "field": "spec.restartPolicy",
        "message": 'Unsupported value: "Sometimes": supported values: "Always", "OnFailure", '
                   '"Never"',
    }


def test_deployment_pods_must_restart_always() -> None:
    obj = deployment()
    obj["spec"]["template"]["spec"]["restartPolicy"] = "Never"
    (cause,) = invalid("Deployment", obj)
    assert cause["message"] == 'Unsupported value: "Never": supported values: "Always"'


def test_job_pods_must_restart_on_failure_or_never() -> None:
    obj = minimal("Job")
    del obj["spec"]["template"]["spec"]["restartPolicy"]
    (cause,) = invalid("Job", obj)
    assert cause["field"] == "spec.template.spec.restartPolicy"
    assert cause["message"] == 'Unsupported value: "Always": supported values: "OnFailure", "Never"'


def test_strategy_type_and_rolling_parameters_are_checked() -> None:
    obj = deployment()
    obj["spec"]["strategy"] = {"type": "Recreate", "rollingUpdate": {"maxSurge": 1}}
    assert fields(invalid("Deployment", obj)) == ["spec.strategy.rollingUpdate"]
    obj["spec"]["strategy"] = {"type": "RollingUpdate",
                               "rollingUpdate": {"maxSurge": 0, "maxUnavailable": "0%"}}
    assert fields(invalid("Deployment", obj)) == ["spec.strategy.rollingUpdate.maxUnavailable"]
    obj["spec"]["strategy"] = {"type": "Sideways"}
    assert fields(invalid("Deployment", obj)) == ["spec.strategy.type"]


def test_name_or_generate_name_is_required() -> None:
    obj = minimal("ConfigMap")
    del obj["metadata"]["name"]
    with pytest.raises(errors.ApiError) as caught:
        validation.validate(rt("ConfigMap"), obj)
    assert caught.value.details["causes"] == [{
        "reason": "FieldValueRequired", "field": "metadata.name",
        "message": "Required value: name or generateName is required",
    }]
    obj["metadata"]["generateName"] = "cfg-"
    assert validation.validate(rt("ConfigMap"), obj) == []


@pytest.mark.parametrize(("kind", "name", "ok"), [
    ("Pod", "web.v1", True), ("Pod", "Web", False), ("Service", "web.v1", False),
    ("Service", "1web", False), ("Namespace", "team-a", True), ("Namespace", "team.a", False),
    ("Deployment", "web.v1", True), ("CronJob", "c" * 53, False),
    ("StatefulSet", "db.v1", False), ("StatefulSet", "db-1", True),
])
def test_name_rules_follow_the_kind(kind: str, name: str, ok: bool) -> None:
    obj = minimal(kind, name)
    if ok:
        validation.validate(rt(kind), obj)
    else:
        assert fields(invalid(kind, obj)) == ["metadata.name"]


def test_names_are_checked_on_create_only() -> None:
    old = minimal("StatefulSet", "db.v1")
    assert validation.validate(rt("StatefulSet"), copy.deepcopy(old), old=old) == []


def test_null_required_field_is_a_required_value() -> None:
    (cause,) = invalid("Deployment", deployment(image=None))
    assert cause["field"] == "spec.template.spec.containers[0].image"
    assert cause["message"] == "Required value"


def test_cluster_scoped_objects_may_not_name_a_namespace() -> None:
    obj = minimal("Node")
    obj["metadata"]["namespace"] = "default"
    (cause,) = invalid("Node", obj)
    assert cause["message"] == "Forbidden: not allowed on this type"


def test_wrong_value_type_is_a_bad_request_in_go_words() -> None:
    obj = deployment()
    obj["spec"]["replicas"] = "three"
    assert bad_request("Deployment", obj) == (
        'Deployment in version "v1" cannot be handled as a Deployment: json: cannot unmarshal '
        "string into Go struct field DeploymentSpec.spec.replicas of type int32"
    )


def test_quantities_accept_numbers_and_reject_garbage() -> None:
    obj = deployment(resources={"limits": {"cpu": 1, "memory": "128Mi"}})
    assert validation.validate(rt("Deployment"), obj) == []
    obj = deployment(resources={"limits": {"memory": "lots"}})
    assert "quantities must match the regular expression" in bad_request("Deployment", obj)


def test_secret_data_must_be_base64() -> None:
    obj = minimal("Secret")
    obj["data"] = {"password": "not base64!"}
    assert bad_request("Secret", obj).endswith("illegal base64 data at input byte 3")


def test_body_of_another_kind_or_version_is_a_bad_request() -> None:
    obj = minimal("Deployment")
    obj["apiVersion"] = "v1"
    assert "does not match the expected API version (apps/v1)" in bad_request("Deployment", obj)
    obj = minimal("Pod")
    obj["kind"] = "Service"
    assert "kind in the data (Service)" in bad_request("Pod", obj)


def test_missing_api_version_and_kind_are_taken_from_the_endpoint() -> None:
    obj = minimal("Pod")
    del obj["apiVersion"], obj["kind"]
    assert validation.validate(rt("Pod"), obj) == []


def test_service_ports_are_checked() -> None:
    obj = minimal("Service")
    obj["spec"]["ports"] = [{"port": 0}, {"port": 80, "targetPort": "not_a_name"}]
    assert fields(invalid("Service", obj)) == [
        "spec.ports[0].port", "spec.ports[1].targetPort",
    ]
    obj["spec"]["ports"] = [{"port": 80}, {"port": 81}]
    assert fields(invalid("Service", obj)) == ["spec.ports[0].name", "spec.ports[1].name"]
    obj["spec"] = {"type": "Balanced", "ports": [{"port": 80}]}
    assert fields(invalid("Service", obj)) == ["spec.type"]


def test_service_fields_kubernetes_refuses_are_refused() -> None:
    cases: list[tuple[dict[str, Any], list[str]]] = [
        ({"ports": [{"name": "a", "port": 80}, {"name": "b", "port": 80}]}, ["spec.ports[1]"]),
        ({"clusterIP": "10.96.0.50", "clusterIPs": ["10.96.0.51"]}, ["spec.clusterIPs[0]"]),
        ({"sessionAffinityConfig": {"clientIP": {"timeoutSeconds": 10}}},
         ["spec.sessionAffinityConfig"]),
        ({"externalIPs": ["nope", "127.0.0.1"]}, ["spec.externalIPs[0]", "spec.externalIPs[1]"]),
        ({"type": "LoadBalancer", "loadBalancerSourceRanges": ["x"]},
         ["spec.LoadBalancerSourceRanges"]),
        ({"loadBalancerSourceRanges": ["10.0.0.0/8"]}, ["spec.LoadBalancerSourceRanges"]),
        ({"healthCheckNodePort": 30123}, ["spec.healthCheckNodePort"]),
        ({"ports": [{"port": 80, "appProtocol": "not valid!"}]}, ["spec.ports[0].appProtocol"]),
    ]
    for spec, refused in cases:
        obj = minimal("Service")
        obj["spec"].update(spec)
        assert fields(invalid("Service", obj)) == refused, spec


def test_service_fields_kubernetes_accepts_are_accepted() -> None:
    for spec in ({"ports": [{"name": "a", "port": 53}, {"name": "b", "port": 53,
                                                        "protocol": "UDP"}]},
                 {"clusterIP": "10.96.0.50", "clusterIPs": ["10.96.0.50"]},
                 {"sessionAffinity": "ClientIP",
                  "sessionAffinityConfig": {"clientIP": {"timeoutSeconds": 10}}},
                 {"type": "LoadBalancer", "loadBalancerSourceRanges": [" 10.0.0.0/8"],
                  "externalTrafficPolicy": "Local", "healthCheckNodePort": 30123,
                  "externalIPs": ["192.0.2.1"]},
                 {"ports": [{"port": 80, "appProtocol": "kubernetes.io/h2c"}]}):
        obj = minimal("Service")
        obj["spec"].update(spec)
        validation.validate(rt("Service"), obj)


def test_load_balancer_ingress_is_checked_as_kubernetes_checks_it() -> None:
    cases = [({"ip": "nope"}, ["status.loadBalancer.ingress[0].ip"]),
             ({"hostname": "1.2.3.4"}, ["status.loadBalancer.ingress[0].hostname"]),
             ({"hostname": "lb.example.com", "ipMode": "VIP"},
              ["status.loadBalancer.ingress[0].ipMode"]),
             ({"ip": "1.2.3.4", "ipMode": "Bogus"}, ["status.loadBalancer.ingress[0].ipMode"])]
    for ingress, refused in cases:
        obj = minimal("Service")
        obj["status"] = {"loadBalancer": {"ingress": [ingress]}}
        assert fields(invalid("Service", obj)) == refused, ingress
    obj = minimal("Service")
    obj["status"] = {"loadBalancer": {"ingress": [{"ip": "127.0.1.1", "ipMode": "VIP"},
                                                  {"hostname": "lb.example.com"}]}}
    validation.validate(rt("Service"), obj)


def test_a_load_balancer_ip_gets_the_vip_ip_mode_by_default() -> None:
    obj = minimal("Service")
    obj["status"] = {"loadBalancer": {"ingress": [{"ip": "127.0.1.1"}, {"hostname": "a.b"}]}}
    assert defaults.apply_defaults(rt("Service"), obj)["status"]["loadBalancer"]["ingress"] == [
        {"ip": "127.0.1.1", "ipMode": "VIP"}, {"hostname": "a.b"}]


def test_endpoint_node_names_must_be_node_names() -> None:
    endpoints = minimal("Endpoints")
    endpoints["subsets"][0]["addresses"][0]["nodeName"] = "Bad Node"
    assert fields(invalid("Endpoints", endpoints)) == ["subsets[0].addresses[0].nodeName"]
    eps = {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
           "metadata": {"name": "s", "namespace": "default"}, "addressType": "IPv4",
           "endpoints": [{"addresses": ["10.0.0.1"], "nodeName": "Bad Node"}]}
    assert fields(invalid("EndpointSlice", eps)) == ["endpoints[0].nodeName"]


def test_volume_mounts_must_name_a_volume_or_claim_template() -> None:
    obj = minimal("Pod")
    obj["spec"]["containers"][0]["volumeMounts"] = [{"name": "data", "mountPath": "/d"}]
    (cause,) = invalid("Pod", obj)
    assert cause == {"reason": "FieldValueNotFound", "message": 'Not found: "data"',
                     "field": "spec.containers[0].volumeMounts[0].name"}
    sts = minimal("StatefulSet")
    sts["spec"]["template"]["spec"]["containers"][0]["volumeMounts"] = [
        {"name": "data", "mountPath": "/d"}]
    assert validation.validate(rt("StatefulSet"), sts) == []


def test_container_names_must_be_unique() -> None:
    obj = minimal("Pod")
    obj["spec"]["containers"].append({"name": "c", "image": "busybox:1.36"})
    (cause,) = invalid("Pod", obj)
    assert cause["field"] == "spec.containers[1].name"
    assert cause["message"] == 'Duplicate value: "c"'


def test_probe_needs_exactly_one_handler() -> None:
    obj = minimal("Pod")
    obj["spec"]["containers"][0]["livenessProbe"] = {"periodSeconds": 5}
    (cause,) = invalid("Pod", obj)
    assert cause["field"] == "spec.containers[0].livenessProbe"
    assert cause["message"] == "Required value: must specify a handler type"


def test_requests_may_not_exceed_limits() -> None:
    obj = minimal("Pod")
    obj["spec"]["containers"][0]["resources"] = {"limits": {"cpu": "500m"},
                                                 "requests": {"cpu": "1"}}
    (cause,) = invalid("Pod", obj)
    assert cause["field"] == "spec.containers[0].resources.requests[cpu]"
    assert cause["message"] == 'Invalid value: "1": must be less than or equal to cpu limit of 500m'


def test_config_map_keys_must_be_valid() -> None:
    obj = minimal("ConfigMap")
    obj["data"] = {"a/b": "x"}
    assert fields(invalid("ConfigMap", obj)) == ["data[a/b]"]


def test_cronjob_schedule_must_parse() -> None:
    obj = minimal("CronJob")
    obj["spec"]["schedule"] = "every minute"
    (cause,) = invalid("CronJob", obj)
    assert cause["message"] == (
        'Invalid value: "every minute": expected exactly 5 fields, found 2: [every minute]'
    )
    obj["spec"]["schedule"] = "@hourly"
    assert validation.validate(rt("CronJob"), obj) == []


def test_claims_need_access_modes_and_a_storage_request() -> None:
    obj = minimal("PersistentVolumeClaim")
    obj["spec"] = {"accessModes": [], "resources": {}}
    assert fields(invalid("PersistentVolumeClaim", obj)) == ["spec.accessModes"]
    obj["spec"] = {"accessModes": ["ReadWriteOnce"]}
    assert fields(invalid("PersistentVolumeClaim", obj)) == ["spec.resources[storage]"]


def test_deployment_selector_is_immutable() -> None:
    old = defaults.apply_defaults(rt("Deployment"), deployment())
    new = copy.deepcopy(old)
    new["spec"]["selector"] = {"matchLabels": {"app": "a", "tier": "web"}}
    new["spec"]["template"]["metadata"]["labels"]["tier"] = "web"
    (cause,) = invalid("Deployment", new, old)
    assert cause["field"] == "spec.selector"
    assert cause["message"].endswith(": field is immutable")
    new = copy.deepcopy(old)
    new["spec"]["replicas"] = 5
    assert validation.validate(rt("Deployment"), new, old=old) == []


def test_update_of_an_object_stored_before_defaulting_is_not_refused() -> None:
    old = minimal("Pod")
    new = defaults.apply_defaults(rt("Pod"), old)
    new["metadata"]["labels"] = {"tier": "web"}
    assert validation.validate(rt("Pod"), new, old=old) == []


def test_service_cluster_ip_is_immutable_once_set() -> None:
    old = minimal("Service")
    old["spec"]["clusterIP"] = "10.96.0.10"
    new = copy.deepcopy(old)
    new["spec"]["clusterIP"] = "10.96.0.11"
    assert fields(invalid("Service", new, old)) == ["spec.clusterIP"]


def test_claim_spec_is_immutable_except_the_storage_request_of_a_bound_claim() -> None:
    old = defaults.apply_defaults(rt("PersistentVolumeClaim"), minimal("PersistentVolumeClaim"))
    grown = copy.deepcopy(old)
    grown["spec"]["resources"]["requests"]["storage"] = "2Gi"
    (cause,) = invalid("PersistentVolumeClaim", grown, old)
    assert cause["field"] == "spec" and cause["reason"] == "FieldValueForbidden"
    old["status"] = grown["status"] = {"phase": "Bound", "capacity": {"storage": "1Gi"}}
    assert validation.validate(rt("PersistentVolumeClaim"), grown, old=old) == []
    changed = copy.deepcopy(old)
    changed["spec"]["accessModes"] = ["ReadWriteMany"]
    (cause,) = invalid("PersistentVolumeClaim", changed, old)
    assert cause["field"] == "spec" and cause["reason"] == "FieldValueForbidden"


def test_a_bound_claim_cannot_shrink_below_its_capacity() -> None:
    old = defaults.apply_defaults(rt("PersistentVolumeClaim"), minimal("PersistentVolumeClaim"))
    old["status"] = {"phase": "Bound", "capacity": {"storage": "1Gi"}}
    shrunk = copy.deepcopy(old)
    shrunk["spec"]["resources"]["requests"]["storage"] = "512Mi"
    (cause,) = invalid("PersistentVolumeClaim", shrunk, old)
    assert cause["field"] == "spec.resources.requests.storage"
    assert cause["message"] == "Forbidden: field can not be less than status.capacity"


def test_job_template_is_immutable() -> None:
    old = defaults.apply_defaults(rt("Job"), minimal("Job"))
    new = copy.deepcopy(old)
    new["spec"]["template"]["spec"]["containers"][0]["image"] = "busybox:1.37"
    assert fields(invalid("Job", new, old)) == ["spec.template"]


def test_statefulset_only_some_spec_fields_may_change() -> None:
    old = defaults.apply_defaults(rt("StatefulSet"), minimal("StatefulSet"))
    scaled = copy.deepcopy(old)
    scaled["spec"]["replicas"] = 3
    assert validation.validate(rt("StatefulSet"), scaled, old=old) == []
    renamed = copy.deepcopy(old)
    renamed["spec"]["serviceName"] = "other"
    (cause,) = invalid("StatefulSet", renamed, old)
    assert cause["message"].startswith("Forbidden: updates to statefulset spec for fields other")


def test_immutable_config_map_keeps_its_data() -> None:
    old = {**minimal("ConfigMap"), "immutable": True}
    new = {**copy.deepcopy(old), "data": {"k": "changed"}}
    assert fields(invalid("ConfigMap", new, old)) == ["data"]


def test_pod_spec_may_change_only_images() -> None:
    old = defaults.apply_defaults(rt("Pod"), minimal("Pod"))
    new = copy.deepcopy(old)
    new["spec"]["containers"][0]["image"] = "busybox:1.37"
    assert validation.validate(rt("Pod"), new, old=old) == []
    new["spec"]["containers"][0]["command"] = ["sh"]
    assert fields(invalid("Pod", new, old)) == ["spec"]


def test_events_live_in_their_objects_namespace() -> None:
    event = minimal("Event")
    event["metadata"]["namespace"] = "other"
    assert fields(invalid("Event", event)) == ["involvedObject.namespace"]
    node_event = {**minimal("Event"), "involvedObject": {"kind": "Node", "name": "n1"}}
    assert validation.validate(rt("Event"), node_event) == []


def test_scale_and_delete_option_bodies_are_validated() -> None:
    scale = {"apiVersion": "autoscaling/v1", "kind": "Scale", "metadata": {"name": "web"},
             "spec": {"replicas": -2}}
    with pytest.raises(errors.ApiError) as caught:
        validation.validate_body("autoscaling/v1", "Scale", scale)
    assert caught.value.details["causes"][0]["field"] == "spec.replicas"
    options = {"propagationPolicy": "Sideways"}
    with pytest.raises(errors.ApiError) as caught:
        validation.validate_body("v1", "DeleteOptions", options)
    assert caught.value.details["causes"][0]["field"] == "propagationPolicy"
    assert validation.validate_body("v1", "DeleteOptions", {"propagationPolicy": "Orphan"}) == []


def test_unknown_fields_reports_kubernetes_paths() -> None:
    obj = {"spec": {"containers": [{"name": "a", "image": "b"}, {"nmae": "c"}],
                    "nodeSelector": {"any": "key"}, "volumes": [{"name": "v", "emptyDir": {
                        "sizeLimit": "1Gi", "medium2": ""}}]}}
    assert schema.inspect("V1Pod", obj).unknown == [
        "spec.containers[1].nmae", "spec.volumes[0].emptyDir.medium2",
    ]


def test_free_form_fields_accept_anything() -> None:
    revision = {**minimal("ControllerRevision"), "data": {"spec": {"whatever": [1, {"x": 2}]}}}
    assert validation.validate(rt("ControllerRevision"), revision) == []
