"""`minik get` and `minik delete` end to end against a fake client: requests and output."""

from __future__ import annotations

from typing import Any

import pytest
from click.testing import CliRunner

from minik.api.errors import ApiError, not_found
from minik.cli.context import CliContext
from minik.cli.get import ACCEPT_TABLE
from minik.cli.main import cli


def table(*names: str, namespace: str = "default") -> dict[str, Any]:
    return {"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": {"resourceVersion": "7"},
            "columnDefinitions": [{"name": "Name", "format": "name", "priority": 0},
                                  {"name": "Age", "format": "", "priority": 0}],
            "rows": [{"cells": [n, "1m"], "object": {"metadata": {
                "name": n, "namespace": namespace}}} for n in names]}


class FakeClient:
    def __init__(self, routes: dict[tuple[str, str], Any]) -> None:
        self.routes = routes
        self.requests: list[dict[str, Any]] = []
        self.warnings: list[str] = []

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        self.requests.append({"method": method, "path": path, **kwargs})
        answer = self.routes[(method, path)]
        if isinstance(answer, ApiError):
            raise answer
        return answer


@pytest.fixture
def run(monkeypatch: pytest.MonkeyPatch) -> Any:
    def invoke(routes: dict[tuple[str, str], Any], *args: str) -> tuple[Any, FakeClient]:
        client = FakeClient(routes)
        monkeypatch.setattr(CliContext, "client", lambda self: client)
        monkeypatch.setattr(CliContext, "namespace", property(lambda self: "default"))
        result = CliRunner().invoke(cli, list(args))
        return result, client

    return invoke


PODS = "/api/v1/namespaces/default/pods"
SVCS = "/api/v1/namespaces/default/services"


def test_listing_asks_for_a_table_in_chunks_of_500(run: Any) -> None:
    result, client = run({("GET", PODS): table("a", "b")}, "get", "pods", "-l", "app=web")
    assert result.exit_code == 0
    assert result.output == "NAME   AGE\na      1m\nb      1m\n"
    request = client.requests[0]
    assert request["accept"] == ACCEPT_TABLE
    assert request["params"] == {"labelSelector": "app=web", "limit": 500}


def test_several_types_print_kind_prefixed_tables_separated_by_a_blank_line(run: Any) -> None:
    result, _ = run({("GET", PODS): table("a"), ("GET", SVCS): table("s")}, "get", "po,svc")
    assert result.output == "NAME    AGE\npod/a   1m\n\nNAME        AGE\nservice/s   1m\n"


def test_empty_results_say_so_on_stderr(run: Any) -> None:
    result, _ = run({("GET", PODS): table()}, "get", "pods")
    assert result.exit_code == 0
    assert result.stdout == ""
    assert result.stderr == "No resources found in default namespace.\n"
    result, _ = run({("GET", "/api/v1/pods"): table()}, "get", "pods", "-A")
    assert result.stderr == "No resources found\n"


def test_missing_names_are_errors_after_the_found_ones(run: Any) -> None:
    result, _ = run({("GET", PODS + "/a"): table("a"),
                     ("GET", PODS + "/x"): not_found("pods", "x")}, "get", "pods", "x", "a")
    assert result.exit_code == 1
    assert result.stdout == "NAME   AGE\na      1m\n"
    assert result.stderr == 'Error from server (NotFound): pods "x" not found\n'


def test_ignore_not_found_exits_zero_silently(run: Any) -> None:
    result, _ = run({("GET", PODS + "/x"): not_found("pods", "x")},
                    "get", "pods", "x", "--ignore-not-found")
    assert (result.exit_code, result.output) == (0, "")


def test_one_named_object_prints_as_itself_in_yaml(run: Any) -> None:
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "a"}}
    result, client = run({("GET", PODS + "/a"): pod}, "get", "pod", "a", "-o", "yaml")
    assert result.output == "apiVersion: v1\nkind: Pod\nmetadata:\n  name: a\n"
    assert client.requests[0]["accept"] == "application/json"


def test_lists_print_as_a_list_with_kinds_filled_in(run: Any) -> None:
    listed = {"kind": "PodList", "apiVersion": "v1", "metadata": {"resourceVersion": "9"},
              "items": [{"metadata": {"name": "a"}}]}
    result, _ = run({("GET", PODS): listed}, "get", "pods", "-o",
                    "jsonpath={.kind} {.items[0].kind} {.items[0].metadata.name}")
    assert result.output == "List Pod a"


def test_names_across_all_namespaces_are_refused(run: Any) -> None:
    result, client = run({}, "get", "pods", "a", "-A")
    assert result.exit_code == 1
    assert "a resource cannot be retrieved by name across all namespaces" in result.stderr
    assert client.requests == []


def test_delete_sends_delete_options_and_waits_until_gone(run: Any) -> None:
    result, client = run({("DELETE", PODS + "/a"): {"metadata": {"uid": "u"}},
                          ("GET", PODS + "/a"): not_found("pods", "a")},
                         "delete", "pod", "a", "--cascade=foreground", "--grace-period=3")
    assert result.exit_code == 0
    assert result.stdout == 'pod "a" deleted\n'
    assert client.requests[0]["body"] == {"gracePeriodSeconds": 3,
                                          "propagationPolicy": "Foreground"}
    assert [r["method"] for r in client.requests] == ["DELETE", "GET"]


def test_delete_by_selector_lists_then_deletes_each(run: Any) -> None:
    listed = {"items": [{"metadata": {"name": "a", "namespace": "default"}},
                        {"metadata": {"name": "b", "namespace": "default"}}]}
    result, client = run({("GET", PODS): listed, ("DELETE", PODS + "/a"): {},
                          ("DELETE", PODS + "/b"): {}},
                         "delete", "pods", "-l", "app=web", "--wait=false")
    assert result.stdout == 'pod "a" deleted\npod "b" deleted\n'
    assert client.requests[0]["params"] == {"labelSelector": "app=web"}


def test_label_patches_only_the_changed_keys(run: Any) -> None:
    pod = {"metadata": {"name": "a", "labels": {"keep": "1", "old": "x"}}}
    result, client = run({("GET", PODS + "/a"): pod, ("PATCH", PODS + "/a"): pod},
                         "label", "pod", "a", "new=1", "old-")
    assert result.stdout == "pod/a labeled\n"
    patch = client.requests[1]
    assert patch["content_type"] == "application/merge-patch+json"
    assert patch["params"] == {"fieldManager": "kubectl-label"}
    assert patch["body"] == b'{"metadata":{"labels":{"new":"1","old":null}}}'
