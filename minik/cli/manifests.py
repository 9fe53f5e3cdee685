"""Reading manifests for `apply`, `create` and `delete -f`.

`-f` takes files, directories (their `*.yaml`, `*.yml` and `*.json` files in
name order, subdirectories only with `--recursive`) and `-` for standard
input. Every file may hold several YAML documents; `List` kinds are
flattened into their items. Timestamps stay strings, as they do when
Kubernetes converts YAML to JSON, so that objects round-trip unchanged.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import yaml

MANIFEST_SUFFIXES = (".yaml", ".yml", ".json")
GO_YAML_WORDING = {
    "mapping values are not allowed here": "mapping values are not allowed in this context",
    "could not find expected ':'": "could not find expected ':'",
}


class ManifestError(Exception):
    """A manifest that cannot be read; the message is kubectl's."""


@dataclass(frozen=True)
class Manifest:
    """One object and the file it came from (`STDIN` for `-`)."""

    source: str
    obj: dict[str, Any]

    @property
    def kind(self) -> str:
        return str(self.obj.get("kind", ""))

    @property
    def api_version(self) -> str:
        return str(self.obj.get("apiVersion", ""))

    @property
    def name(self) -> str:
        return str((self.obj.get("metadata") or {}).get("name", ""))

    @property
    def namespace(self) -> str | None:
        return (self.obj.get("metadata") or {}).get("namespace") or None


class _Loader(yaml.SafeLoader):
    """SafeLoader without the timestamp type: dates stay strings."""


_Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def _files(path: str, *, recursive: bool) -> Iterator[tuple[str, Path]]:
    """(name as kubectl shows it, path) of every manifest file under `path`."""
    root = Path(path)
    if root.is_file():
        yield path, root
        return
    if not root.is_dir():
        raise ManifestError(f'the path "{path}" does not exist')
    for child in sorted(root.iterdir()):
        if child.is_dir():
            if recursive:
                yield from _files(str(child), recursive=True)
        elif child.suffix in MANIFEST_SUFFIXES:
            yield str(child), child


def parse_documents(text: str, source: str) -> list[Any]:
    """The non-empty YAML (or JSON) documents of one file."""
    try:
        return [doc for doc in yaml.load_all(text, Loader=_Loader) if doc is not None]
    except yaml.MarkedYAMLError as e:
        line = (e.problem_mark.line + 1) if e.problem_mark else 0
        problem = GO_YAML_WORDING.get(str(e.problem), str(e.problem))
        raise ManifestError(
            f"error parsing {source}: error converting YAML to JSON: yaml: line {line}: "
            f"{problem}"
        ) from e
    except yaml.YAMLError as e:
        raise ManifestError(f"error parsing {source}: {e}") from e


def flatten(doc: Any, source: str) -> Iterator[dict[str, Any]]:
    """An object, or the items of a `List` kind (recursively)."""
    if not isinstance(doc, dict):
        raise ManifestError(f'error validating "{source}": error validating data: '
                            "invalid object to validate")
    if str(doc.get("kind", "")).endswith("List") and isinstance(doc.get("items"), list):
        for item in doc["items"]:
            yield from flatten(item, source)
        return
    yield doc


def validate(obj: dict[str, Any], source: str) -> None:
    missing = [f"{field} not set" for field in ("apiVersion", "kind") if not obj.get(field)]
    if missing:
        detail = missing[0] if len(missing) == 1 else f"[{', '.join(missing)}]"
        raise ManifestError(
            f'error validating "{source}": error validating data: {detail}; if you choose to '
            "ignore these errors, turn validation off with --validate=false"
        )


def load_text(text: str, source: str) -> list[Manifest]:
    manifests = []
    for doc in parse_documents(text, source):
        for obj in flatten(doc, source):
            validate(obj, source)
            manifests.append(Manifest(source, obj))
    return manifests


def load(paths: Sequence[str], *, recursive: bool = False,
         stdin: TextIO | None = None) -> list[Manifest]:
    """Every object named by `-f` arguments, in order."""
    manifests: list[Manifest] = []
    for path in paths:
        if path == "-":
            manifests += load_text((stdin or sys.stdin).read(), "STDIN")
            continue
        for source, file in _files(path, recursive=recursive):
            try:
                text = file.read_text()
            except OSError as e:
                raise ManifestError(f"error reading {source}: {e.strerror}") from e
            manifests += load_text(text, source)
    return manifests
