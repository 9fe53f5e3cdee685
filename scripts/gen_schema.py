"""Generate `minik/api/schema.json`: the known fields of every served kind.

The real API server rejects fields that are not in the Kubernetes schema
(`fieldValidation=Strict`). minik takes that schema from the model classes
of the PyPI `kubernetes` client: each class carries `openapi_types`
(attribute -> type such as 'V1ObjectMeta', 'List[V1Container]',
'Dict[str, str]', 'object') and `attribute_map` (attribute -> JSON name).
They are read with `ast`, never imported, so the client and its
dependencies need not be installed.

Regenerate (the client is a dev-only tool, not a dependency of minik):

    .venv/bin/pip download --no-deps --dest /tmp/k8s kubernetes==37.0.2
    .venv/bin/python scripts/gen_schema.py /tmp/k8s/kubernetes-37.0.2-py2.py3-none-any.whl

The argument may also be an unpacked or installed `kubernetes` package
directory. The committed file was generated from kubernetes 37.0.2
(OpenAPI document release-1.37).

Output format (see `minik/api/schema.py`): `kinds` maps "apiVersion/Kind"
to a type name; `types` maps a type name to {json field: type ref}, where a
ref is a type name, a primitive (string, integer, boolean, number, time,
bytes, quantity, any), "[ref]" for a list or "{ref}" for a map with string
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


def load_models(source: Path) -> dict[str, tuple[dict[str, str], dict[str, str]]]:
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


def build(models: dict[str, tuple[dict[str, str], dict[str, str]]]) -> dict[str, object]:
    for owner, attr in QUANTITY_FIELDS:
        if attr not in models.get(owner, ({}, {}))[0]:
            raise SystemExit(f"quantity field {owner}.{attr} is not in the client")
    kinds = served_kinds(set(models))
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
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    schema = build(load_models(Path(argv[1])))
    OUT.write_text(render(schema))
    types = schema["types"]
    assert isinstance(types, dict)
    print(f"wrote {OUT.relative_to(ROOT)}: {len(types)} types, {OUT.stat().st_size} bytes")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
