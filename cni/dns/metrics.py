"""The cluster DNS server's Prometheus metrics (`minik_dns_*`).

Queries by question type and result (the response code, with `forwarded`
answers told apart by their `source`), and the latency of an answer from
the question's arrival to its reply. They live on the registry the node
network process serves (its default registry) or on a test's own.
"""

from __future__ import annotations

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram

LATENCY_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                   0.25, 0.5, 1, 2.5, 5)
TYPES = frozenset({"A", "AAAA", "SRV", "PTR", "CNAME", "TXT", "SOA", "NS", "MX", "ANY"})
"""Question types with a label of their own; the rest count as `other`, so that a client
cannot make up new series."""


class DnsMetrics:
    """Queries (`type`, `result`, `source`: cluster or upstream) and answer latency."""

    def __init__(self, registry: CollectorRegistry = REGISTRY) -> None:
        self.queries = Counter(
            "minik_dns_queries", "DNS questions answered, by type, response code and source.",
            ["type", "result", "source"], registry=registry,
        )
        self.latency = Histogram(
            "minik_dns_request_duration_seconds", "Time from a question to its answer.",
            ["source"], buckets=LATENCY_BUCKETS, registry=registry,
        )
        self.upstream_errors = Counter(
            "minik_dns_upstream_errors", "Upstream servers that did not answer a question.",
            ["upstream"], registry=registry,
        )

    def observe(self, qtype: str, result: str, source: str, seconds: float) -> None:
        self.queries.labels(type=qtype if qtype in TYPES else "other", result=result,
                            source=source).inc()
        self.latency.labels(source=source).observe(seconds)
