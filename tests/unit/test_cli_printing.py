"""Table layout and machine formats of the CLI, compared with kubectl's output."""

from __future__ import annotations

import json

import yaml

from minik.cli.printing import (
    TableOptions,
    TablePrinter,
    TabWriter,
    as_list,
    cell_text,
    format_labels,
    to_json,
    to_yaml,
)


def pod_table(*rows: tuple[list[object], dict[str, object]]) -> dict:
    columns = [("Name", 0, "name"), ("Ready", 0, ""), ("Status", 0, ""), ("Restarts", 0, ""),
               ("Age", 0, ""), ("IP", 1, ""), ("Node", 1, "")]
    return {
        "kind": "Table",
        "columnDefinitions": [{"name": n, "priority": p, "format": f, "type": "string"}
                              for n, p, f in columns],
        "rows": [{"cells": cells, "object": {"metadata": meta}} for cells, meta in rows],
    }


TABLE = pod_table(
    (["web-1", "1/1", "Running", 0, "5m", "10.0.0.5", "node-a"],
     {"name": "web-1", "namespace": "default", "labels": {"app": "web", "tier": "fe"}}),
    (["db-0", "0/1", "Pending", 12, "3h", "<none>", "<none>"],
     {"name": "db-0", "namespace": "data-store"}),
)


def render(options: TableOptions, table: dict = TABLE) -> str:
    return TabWriter(minwidth=6, padding=3).render(TablePrinter(options).lines(table))


def test_columns_are_padded_to_the_widest_cell_plus_three_spaces() -> None:
    assert render(TableOptions()) == (
        "NAME    READY   STATUS    RESTARTS   AGE\n"
        "web-1   1/1     Running   0          5m\n"
        "db-0    0/1     Pending   12         3h\n"
    )


def test_wide_output_adds_the_priority_one_columns() -> None:
    assert render(TableOptions(wide=True)).splitlines()[0] == (
        "NAME    READY   STATUS    RESTARTS   AGE   IP         NODE")


def test_all_namespaces_puts_the_namespace_column_first() -> None:
    assert render(TableOptions(with_namespace=True)) == (
        "NAMESPACE    NAME    READY   STATUS    RESTARTS   AGE\n"
        "default      web-1   1/1     Running   0          5m\n"
        "data-store   db-0    0/1     Pending   12         3h\n"
    )


def test_show_labels_adds_a_last_column_with_none_for_unlabelled_rows() -> None:
    lines = render(TableOptions(show_labels=True)).splitlines()
    assert lines[0].endswith("AGE   LABELS")
    assert lines[1].endswith("5m    app=web,tier=fe")
    assert lines[2].endswith("3h    <none>")


def test_label_columns_are_named_after_the_last_key_segment() -> None:
    printer = TablePrinter(TableOptions(label_columns=("app", "example.com/tier")))
    assert printer.header(TABLE)[-2:] == ["APP", "TIER"]
    assert printer.rows(TABLE)[0][-2:] == ["web", ""]


def test_kind_prefix_applies_to_the_name_column_only() -> None:
    rows = TablePrinter(TableOptions(kind_prefix="deployment.apps")).rows(TABLE)
    assert rows[0][:2] == ["deployment.apps/web-1", "1/1"]


def test_no_headers_and_empty_tables() -> None:
    assert render(TableOptions(no_headers=True)).startswith("web-1 ")
    assert TablePrinter(TableOptions()).lines(pod_table()) == []


def test_the_header_is_printed_once_per_printer() -> None:
    printer = TablePrinter(TableOptions())
    assert printer.lines(TABLE)[0][0] == "NAME"
    assert printer.lines(TABLE)[0][0] == "web-1"


def test_narrow_columns_are_at_least_six_wide() -> None:
    assert TabWriter(minwidth=6, padding=3).render([["A", "B"], ["x", "y"]]) == \
        "A     B\nx     y\n"


def test_remembered_widths_keep_watch_rows_aligned_with_earlier_rows() -> None:
    writer = TabWriter(minwidth=6, padding=3, remember=True)
    assert writer.render([["NAME", "AGE"], ["a-long-name", "1s"]]) == \
        "NAME          AGE\na-long-name   1s\n"
    assert writer.render([["b", "2s"]]) == "b             2s\n"


def test_describe_alignment_blocks_end_at_lines_without_tabs() -> None:
    text = ("Name:\tweb\nNamespace:\tdefault\nIPs:\n  IP:\t10.0.0.1\nControlled By:\tRS/x\n")
    assert TabWriter(minwidth=0, padding=2).render_text(text) == (
        "Name:       web\n"
        "Namespace:  default\n"
        "IPs:\n"
        "  IP:           10.0.0.1\n"
        "Controlled By:  RS/x\n"
    )


def test_inner_columns_align_only_across_adjacent_lines() -> None:
    text = ("Port:\t<unset>\t80/TCP\nNodePort:\thttp\t30080/TCP\nTargetPort:\t8080/TCP\n"
            "Port:\tx\t1/UDP\n")
    assert TabWriter(minwidth=0, padding=2).render_text(text) == (
        "Port:        <unset>  80/TCP\n"
        "NodePort:    http     30080/TCP\n"
        "TargetPort:  8080/TCP\n"
        "Port:        x  1/UDP\n"
    )


def test_cells_print_like_go_values() -> None:
    assert [cell_text(v) for v in (3, 2.0, 1.5, True, None, "x")] == \
        ["3", "2", "1.5", "true", "<nil>", "x"]
    assert format_labels({"b": "2", "a": "1"}) == "a=1,b=2"
    assert format_labels({}) == "<none>"


def test_yaml_sorts_keys_and_double_quotes_ambiguous_strings() -> None:
    text = to_yaml({"metadata": {"resourceVersion": "12", "name": "web", "x": "true",
                                 "empty": ""}, "apiVersion": "v1"})
    assert text == ('apiVersion: v1\nmetadata:\n  empty: ""\n  name: web\n'
                    '  resourceVersion: "12"\n  x: "true"\n')


def test_yaml_writes_multiline_strings_as_literal_blocks() -> None:
    text = to_yaml({"a": '{"k":"v"}\n', "items": [{"b": 1}]})
    assert text == 'a: |\n  {"k":"v"}\nitems:\n- b: 1\n'
    assert yaml.safe_load(text) == {"a": '{"k":"v"}\n', "items": [{"b": 1}]}


def test_json_is_indented_by_four_sorted_and_html_escaped() -> None:
    text = to_json({"b": "<x>&", "a": [1]})
    assert text == '{\n    "a": [\n        1\n    ],\n    "b": "\\u003cx\\u003e\\u0026"\n}\n'
    assert json.loads(text) == {"a": [1], "b": "<x>&"}


def test_several_objects_print_as_a_v1_list() -> None:
    assert as_list([{"kind": "Pod"}]) == {"apiVersion": "v1", "items": [{"kind": "Pod"}],
                                          "kind": "List", "metadata": {"resourceVersion": ""}}
