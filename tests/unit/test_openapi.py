"""OpenAPI documents: Kubernetes' schemas of the served kinds, under hash-named URLs."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from minik.api.resources import REGISTRY
from minik.api.schema import SCHEMA_PATH
from minik.apiserver import openapi, openapi_schemas
from minik.apiserver.server import bootstrap_namespaces
from minik.apiserver.storage import ObjectStorage
from minik.store import MemoryStore
from tests.unit.apitest import serving

PUBLISHED_ELSEWHERE = {"metrics.k8s.io"}
"""metrics-server's group: Kubernetes' documents do not carry it."""


def _document(key: str) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(openapi.documents()[key])
    return doc


def _resolve(schemas: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    """The schema a property stands for, through `$ref` or kube-openapi's `allOf` wrapper."""
    ref = node.get("$ref") or node.get("allOf", [{}])[0].get("$ref")
    return schemas[ref.removeprefix("#/components/schemas/")] if ref else node


def test_every_served_kind_has_its_schema_with_its_group_version_kind() -> None:
    for rt in REGISTRY.types:
        if rt.group in PUBLISHED_ELSEWHERE:
            continue
        key = f"apis/{rt.group}/{rt.version}" if rt.group else f"api/{rt.version}"
        schemas = _document(key)["components"]["schemas"]
        gvks = [gvk for schema in schemas.values()
                for gvk in schema.get("x-kubernetes-group-version-kind", [])]
        wanted = {"group": rt.group, "version": rt.version, "kind": rt.kind}
        assert wanted in gvks, rt.kind
        assert {**wanted, "kind": rt.kind + "List"} in gvks, rt.kind


def test_a_field_path_resolves_to_its_description_type_and_patch_strategy() -> None:
    schemas = _document("apis/apps/v1")["components"]["schemas"]
    node = schemas["io.k8s.api.apps.v1.Deployment"]
    for field in ("spec", "strategy", "rollingUpdate"):
        parent, node = node, _resolve(schemas, node["properties"][field])
    assert parent["properties"]["rollingUpdate"]["description"].startswith(
        "Rolling update config params.")
    assert node["type"] == "object" and "maxSurge" in node["properties"]
    pod = schemas["io.k8s.api.core.v1.PodSpec"]["properties"]
    assert pod["containers"]["x-kubernetes-patch-merge-key"] == "name"
    assert pod["containers"]["items"] == {
        "$ref": "#/components/schemas/io.k8s.api.core.v1.Container"}


def test_documents_are_in_openapi_form_not_the_package_s_json_schema() -> None:
    text = openapi.documents()["api/v1"]
    assert "#/$defs/" not in text and '"null"' not in text
    pod = json.loads(text)["components"]["schemas"]["io.k8s.api.core.v1.Pod"]
    assert pod["properties"]["apiVersion"] == {
        "description": pod["properties"]["apiVersion"]["description"], "type": "string"}
    assert pod["properties"]["metadata"]["allOf"] == [
        {"$ref": "#/components/schemas/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"}]


def test_a_document_holds_only_its_served_kinds_and_what_they_reference() -> None:
    schemas = _document("apis/autoscaling/v1")["components"]["schemas"]
    assert "io.k8s.api.autoscaling.v1.Scale" in schemas
    assert "io.k8s.api.autoscaling.v1.HorizontalPodAutoscaler" in schemas
    assert "io.k8s.api.autoscaling.v2.HorizontalPodAutoscaler" not in schemas
    assert openapi_schemas.closure(["no.such.Definition"]) == {}


async def test_the_index_names_each_document_by_the_hash_of_its_content() -> None:
    storage = ObjectStorage(MemoryStore())
    await bootstrap_namespaces(storage)
    async with serving(storage, "t") as api:
        index = await (await api.get("/openapi/v3")).json()
        url = index["paths"]["apis/batch/v1"]["serverRelativeURL"]
        response = await api.get(url)
        body = await response.read()
    assert url.endswith("?hash=" + hashlib.sha512(body).hexdigest()[:32].upper())
    assert response.headers["Cache-Control"] == "public, immutable"
    assert "io.k8s.api.batch.v1.CronJob" in json.loads(body)["components"]["schemas"]


def test_strict_validation_knows_every_field_the_documents_show() -> None:
    """`minik/api/schema.json` (the decoder's fields, from a newer client) may know more
    fields than v1.33, never fewer: no field `kubectl explain` shows is refused."""
    decoder = json.loads(SCHEMA_PATH.read_text())
    definitions = openapi_schemas.definitions()
    unknown: list[str] = []
    named = openapi_schemas.by_kind()
    pending = [(named[(rt.group, rt.version, rt.kind)],
                decoder["kinds"][f"{rt.api_version}/{rt.kind}"], rt.kind)
               for rt in REGISTRY.types if rt.group not in PUBLISHED_ELSEWHERE]
    seen: set[str] = set()
    while pending:
        name, type_name, path = pending.pop()
        if name in seen or type_name not in decoder["types"]:
            continue
        seen.add(name)
        fields = decoder["types"][type_name]
        for field, node in definitions[name].get("properties", {}).items():
            if field not in fields:
                unknown.append(f"{path}.{field}")
                continue
            inner = node.get("items") or node.get("additionalProperties") or node
            ref = inner.get("$ref") or inner.get("allOf", [{}])[0].get("$ref")
            if ref:
                pending.append((ref.removeprefix(openapi_schemas.REF_PREFIX),
                                fields[field].strip("[]{}"), f"{path}.{field}"))
    assert len(seen) > 150 and unknown == []
