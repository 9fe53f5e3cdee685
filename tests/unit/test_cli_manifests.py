"""Reading manifests from files, directories and stdin."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from minik.cli.manifests import ManifestError, load

CM = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\n"


def test_multi_document_files_yield_every_object_in_order(tmp_path: Path) -> None:
    path = tmp_path / "all.yaml"
    path.write_text(CM.format(name="a") + "---\n---\n" + CM.format(name="b"))
    assert [m.name for m in load([str(path)])] == ["a", "b"]
    assert {m.source for m in load([str(path)])} == {str(path)}


def test_lists_are_flattened(tmp_path: Path) -> None:
    path = tmp_path / "list.yaml"
    path.write_text("apiVersion: v1\nkind: List\nitems:\n"
                    "- {apiVersion: v1, kind: ConfigMap, metadata: {name: a}}\n"
                    "- {apiVersion: v1, kind: ConfigMapList, items: "
                    "[{apiVersion: v1, kind: ConfigMap, metadata: {name: b}}]}\n")
    assert [m.name for m in load([str(path)])] == ["a", "b"]


def test_directories_read_manifest_files_in_name_order(tmp_path: Path) -> None:
    (tmp_path / "b.yml").write_text(CM.format(name="second"))
    (tmp_path / "a.json").write_text(
        '{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "first"}}')
    (tmp_path / "notes.txt").write_text("not a manifest")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "c.yaml").write_text(CM.format(name="nested"))
    assert [m.name for m in load([str(tmp_path)])] == ["first", "second"]
    assert [m.name for m in load([str(tmp_path)], recursive=True)] == \
        ["first", "second", "nested"]


def test_dash_reads_standard_input() -> None:
    manifests = load(["-"], stdin=io.StringIO(CM.format(name="piped")))
    assert [(m.source, m.name) for m in manifests] == [("STDIN", "piped")]


def test_timestamps_and_numbers_keep_their_yaml_meaning(tmp_path: Path) -> None:
    path = tmp_path / "cm.yaml"
    path.write_text(CM.format(name="a") + "data:\n  day: 2024-01-01\n  n: '1'\n")
    assert load([str(path)])[0].obj["data"] == {"day": "2024-01-01", "n": "1"}


def test_bad_yaml_names_the_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n   bad: y\n")
    with pytest.raises(ManifestError) as e:
        load([str(path)])
    assert str(e.value) == (f"error parsing {path}: error converting YAML to JSON: yaml: line 5: "
                            "mapping values are not allowed in this context")


def test_missing_kind_or_api_version_fails_validation(tmp_path: Path) -> None:
    path = tmp_path / "nokind.yaml"
    path.write_text("metadata:\n  name: x\n")
    with pytest.raises(ManifestError, match=r"error validating data: \[apiVersion not set, "
                                            r"kind not set\]"):
        load([str(path)])


def test_a_missing_path_is_reported_as_kubectl_does(tmp_path: Path) -> None:
    with pytest.raises(ManifestError, match=r'the path "nope\.yaml" does not exist'):
        load(["nope.yaml"])
