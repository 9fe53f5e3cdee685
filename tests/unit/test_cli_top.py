"""`minik top`'s tables: kubectl's columns, rounding, sorting and tab-writer padding."""

from __future__ import annotations

from typing import Any

from minik.cli.top import mebibytes, millicores, node_table, pod_table


def pod(name: str, namespace: str = "default", **containers: tuple[str, str]) -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": namespace},
            "containers": [{"name": c, "usage": {"cpu": cpu, "memory": memory}}
                           for c, (cpu, memory) in containers.items()]}


def test_cpu_rounds_up_to_millicores_and_memory_down_to_mebibytes() -> None:
    assert millicores("199001n") == 1 and millicores("0") == 0 and millicores("2") == 2000
    assert mebibytes("1048575") == 0 and mebibytes("6Mi") == 6 and mebibytes("13688Ki") == 13


def test_pods_print_as_kubectl_top_pods_with_trailing_padding() -> None:
    table = pod_table([pod("idle", c=("0", "1234567")), pod("busy", c=("199832000n", "512Ki"))],
                      containers=False, with_namespace=False, sort_by=None, no_headers=False)
    assert table == ("NAME   CPU(cores)   MEMORY(bytes)   \n"
                     "busy   200m         0Mi             \n"
                     "idle   0m           1Mi             \n")


def test_sorting_by_cpu_puts_the_busiest_first_and_containers_get_their_own_lines() -> None:
    pods = [pod("a", "x", web=("5m", "10Mi")),
            pod("b", "y", web=("300m", "1Mi"), side=("1m", "2Mi"))]
    table = pod_table(pods, containers=True, with_namespace=True, sort_by="cpu",
                      no_headers=False)
    assert [line.split() for line in table.splitlines()] == [
        ["NAMESPACE", "POD", "NAME", "CPU(cores)", "MEMORY(bytes)"],
        ["y", "b", "web", "300m", "1Mi"], ["y", "b", "side", "1m", "2Mi"],
        ["x", "a", "web", "5m", "10Mi"]]
    by_memory = pod_table(pods, containers=False, with_namespace=False, sort_by="memory",
                          no_headers=True)
    assert [line.split()[0] for line in by_memory.splitlines()] == ["a", "b"]


def test_nodes_show_percentages_of_allocatable_and_unknown_without_metrics() -> None:
    metrics = [{"metadata": {"name": "n1"}, "usage": {"cpu": "250000000n", "memory": "1Gi"}}]
    available = {"n1": {"cpu": "2", "memory": "4Gi"}, "n2": {"cpu": "2", "memory": "4Gi"}}
    table = node_table(metrics, available, sort_by=None, no_headers=False)
    assert [line.split() for line in table.splitlines()] == [
        ["NAME", "CPU(cores)", "CPU(%)", "MEMORY(bytes)", "MEMORY(%)"],
        ["n1", "250m", "12%", "1024Mi", "25%"],
        ["n2", "<unknown>", "<unknown>", "<unknown>", "<unknown>"]]


def test_the_sum_goes_under_the_usage_columns_as_kubectl_prints_it() -> None:
    table = pod_table([pod("a", c=("100m", "10Mi")), pod("b", c=("199001n", "1Mi"))],
                      containers=False, with_namespace=False, sort_by=None, no_headers=False,
                      total=True)
    assert table == ("NAME   CPU(cores)   MEMORY(bytes)   \n"
                     "a      100m         10Mi            \n"
                     "b      1m           1Mi             \n"
                     "       ________     ________        \n"
                     "       101m         11Mi            \n")
