"""Kubernetes' published API schemas, in the shape of its OpenAPI v3 documents.

minik writes no schema by hand. It takes Kubernetes' own definitions from the
PyPI package `kubernetes-validate`, which ships, per Kubernetes minor version,
the definitions of the published OpenAPI document (`v1.NN.0-local/_definitions.json`)
with their descriptions and `x-kubernetes-*` extensions (group-version-kind,
patch merge keys and strategies, list types); it is released with every
Kubernetes minor, and minik's `scripts/gen_schema.py` already reads it. None of the
packages considered ships `api/openapi-spec` itself: the official clients
(`kubernetes` on PyPI, `@kubernetes/client-node` on npm) ship generated code, npm's
`kubernetes-models` compiled validators, `kubernetes-types` TypeScript types.

The package turned the definitions into JSON Schema for its validator; `component`
turns each back into the form Kubernetes serves under `components.schemas`:
`"type": ["string", "null"]` becomes `"type": "string"`, references point at
`#/components/schemas/...`, a reference with a description of its own is wrapped
in `allOf` as kube-openapi writes it, and the `enum` of `apiVersion`/`kind` that the
package adds for validation is dropped. What the package left out (`default`
values, the descriptions of IntOrString and Quantity) is not made up.

The file is read on first use (kubectl asks for OpenAPI before its first apply or
explain), never at start-up: reading and converting take about 0.1 s, and the
package is located without importing it (its validator pulls in jsonschema).
"""

from __future__ import annotations

import functools
import importlib.util
import json
from pathlib import Path
from typing import Any

from minik import KUBERNETES_VERSION

PACKAGE = "kubernetes-validate"
REF_PREFIX = "#/components/schemas/"
Schema = dict[str, Any]


def _definitions_file() -> Path:
    spec = importlib.util.find_spec("kubernetes_validate")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError(f"the {PACKAGE} package is not installed")
    minor = ".".join(KUBERNETES_VERSION.split(".")[:2])
    return (Path(spec.submodule_search_locations[0]) / "kubernetes-json-schema"
            / f"{minor}.0-local" / "_definitions.json")


@functools.cache
def definitions() -> dict[str, Schema]:
    """Kubernetes' definitions of the served minor version, by their OpenAPI name
    (`io.k8s.api.core.v1.Pod`), in OpenAPI v3 form."""
    path = _definitions_file()
    try:
        raw: dict[str, Schema] = json.loads(path.read_text())["$defs"]
    except (OSError, ValueError, KeyError) as e:
        raise RuntimeError(f"cannot read Kubernetes' schemas from {path}: {e}") from e
    return {name: component(schema) for name, schema in raw.items()}


@functools.cache
def by_kind() -> dict[tuple[str, str, str], str]:
    """(group, version, kind) -> definition name, from `x-kubernetes-group-version-kind`.
    A definition shared by many group-versions (DeleteOptions, WatchEvent) is left out:
    it is no served kind of its own."""
    named: dict[tuple[str, str, str], str] = {}
    for name, schema in definitions().items():
        gvks = schema.get("x-kubernetes-group-version-kind", [])
        if len(gvks) == 1:
            gvk = gvks[0]
            named[(gvk["group"], gvk["version"], gvk["kind"])] = name
    return named


def closure(names: list[str]) -> dict[str, Schema]:
    """The named definitions and every definition they reference, transitively."""
    defs = definitions()
    found: dict[str, Schema] = {}
    pending = [n for n in names if n in defs]
    while pending:
        name = pending.pop()
        if name in found:
            continue
        found[name] = defs[name]
        pending.extend(r for r in _references(defs[name]) if r not in found and r in defs)
    return dict(sorted(found.items()))


def _references(node: object) -> list[str]:
    if isinstance(node, dict):
        refs = [node["$ref"].removeprefix(REF_PREFIX)] if "$ref" in node else []
        return refs + [r for value in node.values() for r in _references(value)]
    if isinstance(node, list):
        return [r for item in node for r in _references(item)]
    return []


def component(schema: Schema) -> Schema:
    """One definition of the package, in the form of Kubernetes' `components.schemas`."""
    out = _openapi(schema)
    for field in ("apiVersion", "kind"):
        out.get("properties", {}).get(field, {}).pop("enum", None)
    return out


def _openapi(node: Schema) -> Schema:
    out: Schema = {}
    for key, value in node.items():
        if key == "type" and isinstance(value, list):
            value = next(t for t in value if t != "null")
        elif key == "$ref":
            value = REF_PREFIX + value.removeprefix("#/$defs/")
        elif key == "properties":
            value = {name: _openapi(prop) for name, prop in value.items()}
        elif isinstance(value, dict) and key not in _EXTENSION_VALUES:
            value = _openapi(value)
        elif isinstance(value, list) and value and all(isinstance(v, dict) for v in value) \
                and key not in _EXTENSION_VALUES:
            value = [_openapi(v) for v in value]
        out[key] = value
    if "$ref" in out and len(out) > 1:
        out["allOf"] = [{"$ref": out.pop("$ref")}]
    return out


_EXTENSION_VALUES = frozenset({"x-kubernetes-group-version-kind", "x-kubernetes-unions"})
"""Keys whose values are data, not schemas."""
