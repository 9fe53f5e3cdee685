"""The JSONPath subset of `get -o jsonpath=` and `custom-columns`."""

from __future__ import annotations

import pytest

from minik.cli.jsonpath import JsonPathError, relaxed, render

PODS = {
    "kind": "List",
    "items": [
        {"metadata": {"name": "a", "labels": {"app.kubernetes.io/name": "web"}},
         "spec": {"containers": [{"image": "nginx"}, {"image": "redis"}]},
         "status": {"conditions": [{"type": "Ready", "status": "True"},
                                   {"type": "Scheduled", "status": "True"}],
                    "restarts": 2}},
        {"metadata": {"name": "b"}, "spec": {"containers": [{"image": "busybox"}]},
         "status": {"conditions": [{"type": "Ready", "status": "False"}]}},
    ],
}


@pytest.mark.parametrize(("template", "expected"), [
    ("{.kind}", "List"),
    ("{.items[*].metadata.name}", "a b"),
    ("{.items[0].metadata.name}", "a"),
    ("{.items[-1].metadata.name}", "b"),
    ("{.items[0:1].metadata.name}", "a"),
    ('{range .items[*]}{.metadata.name}{"\\n"}{end}', "a\nb\n"),
    ("{range .items[*]}{.metadata.name}:{.spec.containers[*].image};{end}",
     "a:nginx redis;b:busybox;"),
    ('{.items[*].status.conditions[?(@.type=="Ready")].status}', "True False"),
    ("{.items[0].metadata.labels.app\\.kubernetes\\.io/name}", "web"),
    ("{.items[0].metadata.labels['app.kubernetes.io/name']}", "web"),
    ("{.items[0].status.restarts}", "2"),
    ("{.items[1].metadata}", '{"name":"b"}'),
    ("{..image}", "nginx redis busybox"),
    ("name={.items[0].metadata.name} kind={$.kind}", "name=a kind=List"),
])
def test_templates_render_like_kubectl(template: str, expected: str) -> None:
    assert render(template, PODS) == expected


def test_missing_keys_print_nothing() -> None:
    assert render("[{.nope.deeper}]", PODS) == "[]"
    assert render("{.items[5].metadata.name}", PODS) == ""


def test_range_without_end_is_an_error() -> None:
    with pytest.raises(JsonPathError):
        render("{range .items[*]}{.metadata.name}", PODS)
    with pytest.raises(JsonPathError):
        render("{.items[*].metadata.name", PODS)


def test_relaxed_expressions_become_templates() -> None:
    assert relaxed(".metadata.name") == "{.metadata.name}"
    assert relaxed("metadata.name") == "{.metadata.name}"
    assert relaxed("{.metadata.name}") == "{.metadata.name}"
