"""Generate `minik/api/schema.json`: the known fields of every served kind.

The real API server rejects fields that are not in the Kubernetes schema
(`fieldValidation=Strict`). minik takes that schema from the model classes
of the PyPI `kubernetes` client: each class carries `openapi_types`
(attribute -> type such as 'V1ObjectMeta', 'List[V1Container]',
'Dict[str, str]', 'object') and `attribute_map` (attribute -> JSON name).
They are read with `ast`, never imported, so the client and its
dependencies need not be installed.

The client's `int` does not say whether Kubernetes declares the field
int32 or int64, and a value that overflows it is a decode error (400). The
OpenAPI `format` of every integer comes from the JSON schemas that the PyPI
`kubernetes-validate` package ships, read in step with the client's models
from each served kind down; int64 fields get the ref `int64`.

Regenerate (both are dev-only tools, not dependencies of minik):

    .venv/bin/pip download --no-deps --dest /tmp/k8s kubernetes==37.0.2 \
        kubernetes-validate==1.37.0
    .venv/bin/python scripts/gen_schema.py /tmp/k8s/kubernetes-37.0.2-py2.py3-none-any.whl \
        /tmp/k8s/kubernetes_validate-1.37.0-py3-none-any.whl

The first argument may also be an unpacked or installed `kubernetes` package
directory, the second a `_definitions.json`. The committed file was
generated from kubernetes 37.0.2 (OpenAPI document release-1.37) and
kubernetes-validate 1.37.0 (its v1.37.0 schemas).

Output format (see `minik/api/schema.py`): `kinds` maps "apiVersion/Kind"
to a type name; `types` maps a type name to {json field: type ref}, where a
ref is a type name, a primitive (string, integer (int32), int64, boolean,
number, time, bytes, quantity, any), "[ref]" for a list or "{ref}" for a map with string
keys. `any` is IntOrString, RawExtension and other free-form values.
"""

from __future__ import annotations

import ast
import json
import re
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from minik.api.resources import REGISTRY  # noqa: E402

OUT = ROOT / "minik" / "api" / "schema.json"
MODELS_DIR = "kubernetes/client/models/"

PRIMITIVES = {
    "str": "string",
    "int": "integer",
    "bool": "boolean",
    "float": "number",
    "datetime": "time",
    "date": "time",
    "bytes": "bytes",
    "object": "any",
}

# resource.Quantity is a plain 'str' in the client, but YAML users write `cpu: 1`.
QUANTITY_FIELDS = {
    ("V1ResourceRequirements", "limits"),
    ("V1ResourceRequirements", "requests"),
    ("V1VolumeResourceRequirements", "limits"),
    ("V1VolumeResourceRequirements", "requests"),
    ("V1EmptyDirVolumeSource", "size_limit"),
    ("V1PersistentVolumeSpec", "capacity"),
    ("V1PersistentVolumeClaimStatus", "capacity"),
    ("V1PersistentVolumeClaimStatus", "allocated_resources"),
    ("V1NodeStatus", "capacity"),
    ("V1NodeStatus", "allocatable"),
    ("V1PodSpec", "overhead"),
    ("V1ContainerStatus", "allocated_resources"),
    ("V1PodStatus", "allocated_resources"),
    ("V1NodeAllocatableMappedResources", "quantity"),
    ("V1ResourceFieldSelector", "divisor"),
    ("V2MetricTarget", "average_value"),
    ("V2MetricTarget", "value"),
    ("V2MetricValueStatus", "average_value"),
    ("V2MetricValueStatus", "value"),
}

EXTRA_KINDS = {"v1/Status": "V1Status", "v1/DeleteOptions": "V1DeleteOptions"}
DEFINITIONS = "kubernetes_validate/kubernetes-json-schema/v{release}.0-local/_definitions.json"
RELEASE = "1.37"

Models = dict[str, tuple[dict[str, str], dict[str, str]]]
Definitions = dict[str, dict[str, Any]]


def model_sources(source: Path) -> Iterator[str]:
    if source.is_file():
        with zipfile.ZipFile(source) as wheel:
            for name in sorted(wheel.namelist()):
                if name.startswith(MODELS_DIR) and name.endswith(".py"):
                    yield wheel.read(name).decode()
        return
    models = source / "client" / "models"
    if not models.is_dir():
        models = source / MODELS_DIR
    for path in sorted(models.glob("*.py")):
        yield path.read_text()


def class_tables(text: str) -> Iterator[tuple[str, dict[str, str], dict[str, str]]]:
    for node in ast.parse(text).body:
        if not isinstance(node, ast.ClassDef):
            continue
        tables: dict[str, dict[str, str]] = {}
        for stmt in node.body:
            target = stmt.target if isinstance(stmt, ast.AnnAssign) else None
            if isinstance(stmt, ast.Assign) and len(stmt.targets) == 1:
                target = stmt.targets[0]
            if isinstance(target, ast.Name) and target.id in ("openapi_types", "attribute_map"):
                tables[target.id] = ast.literal_eval(stmt.value)  # type: ignore[arg-type]
        if len(tables) == 2:
            yield node.name, tables["openapi_types"], tables["attribute_map"]


def load_models(source: Path) -> Models:
    return {
        name: (types, attrs)
        for text in model_sources(source)
        for name, types, attrs in class_tables(text)
    }


def client_name(group: str, version: str, kind: str, known: set[str]) -> str | None:
    """`V1Deployment`, `V2HorizontalPodAutoscaler`, or `CoreV1Event` where names clash."""
    prefix = version[0].upper() + version[1:]
    group_word = (group.split(".")[0] or "core").capitalize()
    return next(
        (n for n in (f"{prefix}{kind}", f"{group_word}{prefix}{kind}") if n in known), None
    )


def served_kinds(known: set[str]) -> dict[str, str]:
    """Every kind a request body may carry: resources and the subresources the client has."""
    kinds = dict(EXTRA_KINDS)
    for rt in REGISTRY:
        if "create" not in rt.verbs:
            continue  # computed, never written (metrics.k8s.io): no body to check
        name = client_name(rt.group, rt.version, rt.kind, known)
        if name is None:
            raise SystemExit(f"no client model for {rt.api_version} {rt.kind}")
        kinds[f"{rt.api_version}/{rt.kind}"] = name
        for sub in rt.subresources:
            if sub_name := client_name(sub.group, sub.version, sub.kind, known):
                api_version = f"{sub.group}/{sub.version}" if sub.group else sub.version
                kinds[f"{api_version}/{sub.kind}"] = sub_name
    return kinds


def parse_ref(raw: str) -> tuple[str, list[str]]:
    """A client type string as a schema ref, and the model names it refers to."""
    raw = raw.strip()
    if m := re.fullmatch(r"(?:List|list)\[(.+)\]", raw):
        inner, names = parse_ref(m.group(1))
        return f"[{inner}]", names
    if m := re.fullmatch(r"(?:Dict\[str, (.+)\]|dict\(str, (.+)\))", raw):
        inner, names = parse_ref(m.group(1) or m.group(2))
        return "{" + inner + "}", names
    if raw in PRIMITIVES:
        return PRIMITIVES[raw], []
    return raw, [raw]


def quantity_ref(ref: str) -> str:
    return ref.replace("string", "quantity")


def load_definitions(source: Path) -> Definitions:
    if source.suffix == ".whl":
        with zipfile.ZipFile(source) as wheel:
            document = json.loads(wheel.read(DEFINITIONS.format(release=RELEASE)))
    else:
        document = json.loads(source.read_text())
    return document.get("$defs") or document["definitions"]


def _definition_of_kind(definitions: Definitions, api_version: str, kind: str) -> str:
    group, _, version = api_version.rpartition("/")
    for name, definition in definitions.items():
        for gvk in definition.get("x-kubernetes-group-version-kind", []):
            if (gvk["group"], gvk["version"], gvk["kind"]) == (group, version, kind):
                return name
    raise SystemExit(f"no schema definition for {api_version} {kind}")


def _target(prop: dict[str, Any]) -> tuple[str | None, dict[str, Any]]:
    """The definition a property refers to (through lists and maps), and its innermost schema."""
    while True:
        if "$ref" in prop:
            return prop["$ref"].rsplit("/", 1)[-1], prop
        if "allOf" in prop:
            prop = prop["allOf"][0]
        elif isinstance(prop.get("items"), dict):
            prop = prop["items"]
        elif isinstance(prop.get("additionalProperties"), dict):
            prop = prop["additionalProperties"]
        else:
            return None, prop


def int64_fields(models: Models, kinds: dict[str, str], definitions: Definitions) -> set[
    tuple[str, str]
]:
    """(client type, attribute) of every field whose integers Kubernetes declares int64."""
    found: set[tuple[str, str]] = set()
    seen: set[tuple[str, str]] = set()
    pending = [(client, _definition_of_kind(definitions, *key.rsplit("/", 1)))
               for key, client in kinds.items()]
    while pending:
        client, definition = pending.pop()
        if (client, definition) in seen or client not in models:
            continue
        seen.add((client, definition))
        openapi_types, attribute_map = models[client]
        properties = definitions[definition].get("properties", {})
        for attr, raw in openapi_types.items():
            prop = properties.get(attribute_map[attr])
            if prop is None:
                continue
            target, inner = _target(prop)
            if target is not None:
                pending.extend((name, target) for name in parse_ref(raw)[1])
            elif inner.get("format") == "int64":
                found.add((client, attr))
    return found


def build(models: Models, definitions: Definitions) -> dict[str, object]:
    for owner, attr in QUANTITY_FIELDS:
        if attr not in models.get(owner, ({}, {}))[0]:
            raise SystemExit(f"quantity field {owner}.{attr} is not in the client")
    kinds = served_kinds(set(models))
    wide = int64_fields(models, kinds, definitions)
    types: dict[str, dict[str, str]] = {}
    pending = sorted(set(kinds.values()))
    while pending:
        name = pending.pop()
        if name in types:
            continue
        openapi_types, attribute_map = models[name]
        fields: dict[str, str] = {}
        for attr, raw in openapi_types.items():
            ref, names = parse_ref(raw)
            if (name, attr) in QUANTITY_FIELDS:
                ref = quantity_ref(ref)
            if (name, attr) in wide:
                ref = ref.replace("integer", "int64")
            fields[attribute_map[attr]] = ref
            pending.extend(n for n in names if n not in types)
        types[name] = fields
    return {"kinds": kinds, "types": types}


def render(schema: dict[str, object]) -> str:
    """Compact JSON with one type per line, so that a regeneration diffs well."""

    def compact(value: object) -> str:
        return json.dumps(value, sort_keys=True, separators=(",", ":"))

    types = schema["types"]
    assert isinstance(types, dict)
    lines = ",\n".join(f"{compact(k)}:{compact(types[k])}" for k in sorted(types))
    return '{"kinds":' + compact(schema["kinds"]) + ',\n"types":{\n' + lines + "\n}}\n"


def main(argv: list[str]) -> int:
    if len(argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    schema = build(load_models(Path(argv[1])), load_definitions(Path(argv[2])))
    OUT.write_text(render(schema))
    types = schema["types"]
    assert isinstance(types, dict)
    print(f"wrote {OUT.relative_to(ROOT)}: {len(types)} types, {OUT.stat().st_size} bytes")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
