"""The resource metrics pipeline's pure parts: decoding, rates, and metrics-server's formats."""

from __future__ import annotations

import datetime as dt

import pytest

from minik.api.durations import format_duration, parse_duration
from minik.api.models.quantity import format_binary, format_nanos
from minik.api.resources import NODEMETRICS, PODMETRICS
from minik.apiserver.resourcemetrics.objects import pod_metrics
from minik.apiserver.resourcemetrics.samples import (
    ContainerKey,
    DecodeError,
    NodeScrape,
    Sample,
    decode,
)
from minik.apiserver.resourcemetrics.store import ContainerUsage, MetricsStore, Usage, rate
from minik.controllers.garbagecollector import collected_types

KEY = ContainerKey("default", "p", "c")
TEXT = """\
# TYPE container_cpu_usage_seconds_total counter
container_cpu_usage_seconds_total{container="c",namespace="default",pod="p"} 2.5 1700000000500
# TYPE container_memory_working_set_bytes gauge
container_memory_working_set_bytes{container="c",namespace="default",pod="p"} 1024 1700000000500
# TYPE container_start_time_seconds gauge
container_start_time_seconds{container="c",namespace="default",pod="p"} 1.6999e+09
container_cpu_usage_seconds_total{container="half",namespace="default",pod="p"} 1 1700000000500
# TYPE node_cpu_usage_seconds_total counter
node_cpu_usage_seconds_total 100.25 1700000001000
# TYPE node_memory_working_set_bytes gauge
node_memory_working_set_bytes 4096
"""


def sample(cpu: float, at: float, *, memory: int = 1 << 20, start: float | None = 1.0) -> Sample:
    return Sample(cpu, memory, at, at, start)


def test_decoding_keeps_each_series_time_and_drops_half_reported_containers() -> None:
    scrape = decode(TEXT, now=42.0)
    assert scrape.containers == {KEY: Sample(2.5, 1024, 1700000000.5, 1700000000.5, 1.6999e9)}
    assert scrape.node == Sample(100.25, 4096, 1700000001.0, 42.0, None)


def test_text_that_is_not_prometheus_is_a_decode_error() -> None:
    with pytest.raises(DecodeError):
        decode("<html>no</html>\n{", now=0)


def test_cpu_rate_is_growth_over_the_window_in_nanocores() -> None:
    usage = rate(sample(1.0, 100.0), sample(1.3, 102.0, memory=77))
    assert usage is not None
    assert (usage.cpu_nanocores, usage.memory_bytes, usage.window) == (150_000_000, 77, 2.0)


def test_no_rate_across_a_restart_or_a_counter_going_back() -> None:
    assert rate(sample(5.0, 100.0, start=1.0), sample(0.1, 110.0, start=105.0)) is None
    assert rate(sample(5.0, 100.0), sample(4.0, 110.0)) is None
    assert rate(None, sample(4.0, 110.0)) is None


def test_the_store_ignores_stale_samples_and_forgets_containers_that_went() -> None:
    store = MetricsStore()
    store.store("n1", NodeScrape(None, {KEY: sample(1.0, 100.0)}))
    assert store.pods() == {}
    store.store("n1", NodeScrape(None, {KEY: sample(2.0, 110.0)}))
    store.store("n1", NodeScrape(None, {KEY: sample(2.0, 110.0)}))  # nothing new
    [c] = store.pods()[("default", "p")]
    assert (c.name, c.usage.cpu_nanocores, c.usage.window) == ("c", 100_000_000, 10.0)
    store.store("n1", NodeScrape(None, {}))
    assert store.pods() == {}


def test_deleted_nodes_are_forgotten() -> None:
    store = MetricsStore()
    store.store("n1", NodeScrape(sample(1.0, 1.0), {}))
    store.store("n1", NodeScrape(sample(2.0, 2.0), {}))
    assert store.node("n1") is not None
    store.keep_nodes({"n2"})
    assert store.node("n1") is None


@pytest.mark.parametrize(("nanocores", "text"), [
    (0, "0"), (4523124, "4523124n"), (5_000_000, "5m"), (1_500_000_000, "1500m"),
    (2_000_000_000, "2"), (12_000, "12u")])
def test_cpu_is_written_as_kubernetes_canonical_decimal_quantity(nanocores: int,
                                                                 text: str) -> None:
    assert format_nanos(nanocores) == text


@pytest.mark.parametrize(("size", "text"), [
    (0, "0"), (1000, "1000"), (13688 * 1024, "13688Ki"), (6 << 20, "6Mi"),
    (1234567, "1234567"), (3 << 30, "3Gi")])
def test_memory_is_written_as_kubernetes_canonical_binary_quantity(size: int, text: str) -> None:
    assert format_binary(size) == text


@pytest.mark.parametrize(("seconds", "text"), [
    (15.0, "15s"), (15.021, "15.021s"), (0.5, "500ms"), (60.5, "1m0.5s"), (3725, "1h2m5s")])
def test_window_is_a_go_duration(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text
    assert parse_duration(text) == pytest.approx(seconds)


def test_a_go_duration_is_parsed_strictly() -> None:
    assert parse_duration("0") == 0 and parse_duration("1h0m0s") == 3600
    for bad in ("", "5", "1x", "s", "1m 5s"):
        with pytest.raises(ValueError, match="invalid duration"):
            parse_duration(bad)


def test_computed_metrics_types_are_left_to_no_collector() -> None:
    assert not {NODEMETRICS.qualified_name, PODMETRICS.qualified_name} & {
        rt.qualified_name for rt in collected_types()}


def test_a_pod_is_served_only_when_each_of_its_containers_has_a_usage() -> None:
    """metrics-server's allContainersPresent: a partial pod would look idle to the HPA."""
    side = ContainerKey("default", "p", "side")
    store = MetricsStore()
    store.store("n1", NodeScrape(None, {KEY: sample(1.0, 100.0), side: sample(1.0, 100.0)}))
    store.store("n1", NodeScrape(None, {KEY: sample(2.0, 110.0),
                                        side: sample(0.1, 110.0, start=105.0)}))  # restarted
    assert store.pods() == {}
    store.store("n1", NodeScrape(None, {KEY: sample(3.0, 120.0),
                                        side: sample(0.2, 120.0, start=105.0)}))
    assert [c.name for c in store.pods()[("default", "p")]] == ["c", "side"]


def test_a_container_started_less_than_a_resolution_ago_has_a_rate_at_its_first_scrape() -> None:
    store = MetricsStore()
    store.store("n1", NodeScrape(None, {KEY: sample(1.5, 112.0, start=100.0)}), resolution=15.0)
    [c] = store.pods()[("default", "p")]
    assert (c.usage.cpu_nanocores, c.usage.window) == (125_000_000, 12.0)
    young = ContainerKey("default", "young", "c")
    old = ContainerKey("default", "old", "c")
    store.store("n1", NodeScrape(None, {young: sample(0.5, 105.0, start=100.0),
                                        old: sample(9.0, 200.0, start=100.0)}), resolution=15.0)
    assert store.pods() == {}  # 5 s is too short a life, 100 s had a scrape before


def test_a_pods_timestamp_and_window_are_its_earliest_containers() -> None:
    early = Usage(1, 1, 100.0, 10.0)
    late = Usage(1, 1, 102.0, 15.0)
    pod = {"metadata": {"name": "p", "namespace": "default"}}
    shown = pod_metrics(pod, [ContainerUsage("a", late), ContainerUsage("b", early)],
                        now=dt.datetime(2026, 1, 1, tzinfo=dt.UTC))
    assert (shown["timestamp"], shown["window"]) == ("1970-01-01T00:01:40Z", "10s")
