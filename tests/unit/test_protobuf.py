"""Decoding kubectl's protobuf bodies into the dicts JSON would have carried.

Bodies are built here with a tiny encoder the way client-go writes them:
plain scalars always present (zero included), pointers only when set,
non-pointer messages always present (maybe empty).
"""

from __future__ import annotations

import pytest

from minik.api.errors import ApiError
from minik.api.protobuf import MAGIC, decode_object


def varint(value: int) -> bytes:
    value &= (1 << 64) - 1
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def num(field: int, value: int) -> bytes:
    return varint(field << 3) + varint(value)


def msg(field: int, *parts: bytes | str) -> bytes:
    payload = b"".join(p.encode() if isinstance(p, str) else p for p in parts)
    return varint(field << 3 | 2) + varint(len(payload)) + payload


def entry(field: int, key: str, value: bytes | str) -> bytes:
    return msg(field, msg(1, key), msg(2, value))


def body(api_version: str, kind: str, raw: bytes) -> bytes:
    return MAGIC + msg(1, msg(1, api_version), msg(2, kind)) + msg(2, raw) + msg(3, "") + msg(
        4, "")


def meta(name: str, *extra: bytes) -> bytes:
    """ObjectMeta as client-go sends it: empty strings, generation 0, empty creationTimestamp."""
    return msg(1, msg(1, name), msg(2, ""), msg(3, ""), msg(4, ""), msg(5, ""), msg(6, ""),
               num(7, 0), msg(8), *extra)


def test_a_configmap_keeps_its_data_and_drops_zero_values() -> None:
    raw = meta("settings", entry(11, "app", "web")) + entry(2, "mode", "fast") + entry(
        3, "blob", b"\x00\xff")
    obj = decode_object(body("v1", "ConfigMap", raw))
    assert obj == {"apiVersion": "v1", "kind": "ConfigMap",
                   "metadata": {"name": "settings", "labels": {"app": "web"}},
                   "data": {"mode": "fast"}, "binaryData": {"blob": "AP8="}}


def test_secret_bytes_become_base64() -> None:
    raw = meta("creds") + entry(2, "password", b"hunter2") + msg(3, "Opaque")
    obj = decode_object(body("v1", "Secret", raw))
    assert obj["data"] == {"password": "aHVudGVyMg=="} and obj["type"] == "Opaque"


def container(name: str, image: str, *extra: bytes) -> bytes:
    return msg(2, msg(1, name), msg(2, image), msg(5, ""), msg(8), msg(13, ""), msg(14, ""),
               num(16, 0), num(17, 0), num(18, 0), msg(20, ""), *extra)


def test_a_deployment_keeps_zero_replicas_and_its_pod_template() -> None:
    template = msg(3, meta("", entry(11, "app", "web")),
                   msg(2, container("web", "minik/web:v1", msg(3, "sleep"), msg(3, "60"),
                                    msg(6, msg(1, ""), num(2, 0), num(3, 8080), msg(4, "TCP"),
                                        msg(5, ""))),
                       msg(3, ""), msg(6, ""), num(11, 0)))
    spec = msg(2, num(1, 0), msg(2, entry(1, "app", "web")), template, msg(4, msg(1, "")),
               num(5, 0), num(7, 0))
    obj = decode_object(body("apps/v1", "Deployment", meta("web") + spec + msg(3, num(1, 0))))
    assert obj["spec"]["replicas"] == 0, "a pointer set to 0 is kept"
    assert obj["spec"]["selector"] == {"matchLabels": {"app": "web"}}
    assert obj["spec"]["strategy"] == {}
    pod = obj["spec"]["template"]
    assert pod["metadata"] == {"labels": {"app": "web"}}
    assert pod["spec"]["containers"] == [{
        "name": "web", "image": "minik/web:v1", "command": ["sleep", "60"],
        "ports": [{"containerPort": 8080, "protocol": "TCP"}], "resources": {}}]
    assert "status" not in obj


def test_inline_fields_and_int_or_string() -> None:
    probe = msg(10, msg(1, msg(2, msg(1, "/healthz"), msg(2, num(1, 1), num(2, 0),
                                                         msg(3, "http")))), num(4, 5))
    env = msg(7, msg(1, "PASSWORD"), msg(3, msg(4, msg(1, msg(1, "creds")), msg(2, "password"))))
    spec = msg(2, msg(3, meta(""), msg(2, container("web", "i:1", probe, env))))
    obj = decode_object(body("apps/v1", "Deployment", meta("web") + spec))
    c = obj["spec"]["template"]["spec"]["containers"][0]
    assert c["livenessProbe"] == {"httpGet": {"path": "/healthz", "port": "http"},
                                  "periodSeconds": 5}
    assert c["env"] == [{"name": "PASSWORD",
                         "valueFrom": {"secretKeyRef": {"name": "creds", "key": "password"}}}]


def test_a_service_port_with_a_numeric_target() -> None:
    port = msg(1, msg(1, "80-8080"), msg(2, "TCP"), num(3, 80), msg(4, num(1, 0), num(2, 8080),
                                                                    msg(3, "")), num(5, 0))
    raw = meta("web") + msg(2, port, entry(2, "app", "web"), msg(3, ""), msg(4, "ClusterIP"))
    obj = decode_object(body("v1", "Service", raw + msg(3, msg(1))))
    assert obj["spec"] == {"ports": [{"name": "80-8080", "protocol": "TCP", "port": 80,
                                      "targetPort": 8080}],
                           "selector": {"app": "web"}, "type": "ClusterIP"}


def test_negative_numbers_and_times() -> None:
    raw = meta("x", msg(9, num(1, 1_700_000_000)), num(10, 0)) + msg(2, msg(1, "kubernetes"))
    obj = decode_object(body("v1", "Namespace", raw))
    assert obj["metadata"]["deletionTimestamp"] == "2023-11-14T22:13:20Z"
    assert obj["metadata"]["deletionGracePeriodSeconds"] == 0
    assert obj["spec"] == {"finalizers": ["kubernetes"]}
    job = meta("j") + msg(2, num(3, -1), msg(6, meta(""), msg(2)))
    assert decode_object(body("batch/v1", "Job", job))["spec"]["activeDeadlineSeconds"] == -1


def test_an_unknown_field_with_a_value_is_refused_and_an_empty_one_skipped() -> None:
    empty_unknown = meta("a", msg(40, msg(1, ""), num(2, 0)))
    assert decode_object(body("v1", "ConfigMap", empty_unknown))["metadata"] == {"name": "a"}
    with pytest.raises(ApiError) as refused:
        decode_object(body("v1", "ConfigMap", meta("a", msg(40, "set"))))
    assert refused.value.code == 400 and "field 40 of meta.ObjectMeta" in refused.value.message


@pytest.mark.parametrize("data, code, words", [
    (b"not protobuf", 400, "magic"),
    (MAGIC + msg(1, msg(1, "v1"), msg(2, "ConfigMap")) + b"\x12\x05ab", 400, "truncated"),
    (body("rbac.authorization.k8s.io/v1", "Role", meta("r")), 415, "Role"),
])
def test_bad_bodies_are_named(data: bytes, code: int, words: str) -> None:
    with pytest.raises(ApiError) as error:
        decode_object(data)
    assert error.value.code == code and words in error.value.message


def test_kubectl_autoscale_hpas_decode_in_both_autoscaling_versions() -> None:
    ref = msg(1, msg(1, "Deployment"), msg(2, "web"), msg(3, "apps/v1"))
    v1 = decode_object(body("autoscaling/v1", "HorizontalPodAutoscaler", meta("web") + msg(
        2, ref, num(2, 1), num(3, 4), num(4, 50)) + msg(3, num(3, 0), num(4, 0))))
    assert v1["spec"] == {"scaleTargetRef": {"kind": "Deployment", "name": "web",
                                             "apiVersion": "apps/v1"},
                          "minReplicas": 1, "maxReplicas": 4, "targetCPUUtilizationPercentage": 50}
    target = msg(2, msg(1, "Utilization"), num(4, 70))
    v2 = decode_object(body("autoscaling/v2", "HorizontalPodAutoscaler", meta("web") + msg(
        2, ref, num(3, 3), msg(4, msg(1, "Resource"), msg(4, msg(1, "cpu"), target)))))
    assert v2["spec"] == {"scaleTargetRef": {"kind": "Deployment", "name": "web",
                                             "apiVersion": "apps/v1"},
                          "maxReplicas": 3, "metrics": [{"type": "Resource", "resource": {
                              "name": "cpu", "target": {"type": "Utilization",
                                                        "averageUtilization": 70}}}]}
