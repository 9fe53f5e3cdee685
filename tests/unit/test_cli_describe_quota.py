"""`minik describe quota|limits` print what kubectl's describeQuota and describeLimitRange
print, and `get` prints their server-side table columns."""

from __future__ import annotations

from datetime import UTC, datetime

from minik.api.printers import PRINTERS
from minik.api.resources import LIMITRANGES, NAMESPACES, RESOURCEQUOTAS
from minik.cli.describe import Described, PrefixWriter
from minik.cli.describe_quota import describe_limit_range, describe_resource_quota
from minik.cli.describers import describe_namespace

QUOTA_OUTPUT = """\
Name:          compute
Namespace:     default
Resource       Used  Hard
--------       ----  ----
limits.memory  0     1Gi
pods           2     2
requests.cpu   250m  1
"""

LIMITS_OUTPUT = """\
Name:       defaults
Namespace:  default
Type        Resource  Min   Max   Default Request  Default Limit  Max Limit/Request Ratio
----        --------  ---   ---   ---------------  -------------  -----------------------
Container   cpu       -     500m  100m             200m           -
Container   memory    16Mi  -     32Mi             64Mi           -
"""


def render(describer, rt, obj: dict) -> str:
    w = PrefixWriter()
    describer(Described(None, rt, obj, events=[]), w)  # type: ignore[arg-type]
    return w.render()


def test_a_quota_is_described_as_kubectl_does():
    quota = {"metadata": {"name": "compute", "namespace": "default"},
             "status": {"hard": {"pods": "2", "requests.cpu": "1", "limits.memory": "1Gi"},
                        "used": {"pods": "2", "requests.cpu": "250m"}}}
    assert render(describe_resource_quota, RESOURCEQUOTAS, quota) == QUOTA_OUTPUT


def test_a_limit_range_is_described_as_kubectl_does():
    limits = {"metadata": {"name": "defaults", "namespace": "default"},
              "spec": {"limits": [{"type": "Container", "max": {"cpu": "500m"},
                                   "min": {"memory": "16Mi"},
                                   "default": {"cpu": "200m", "memory": "64Mi"},
                                   "defaultRequest": {"cpu": "100m", "memory": "32Mi"}}]}}
    assert render(describe_limit_range, LIMITRANGES, limits) == LIMITS_OUTPUT


def test_get_prints_a_quota_s_requests_and_limits_and_a_range_s_creation_time():
    now = datetime(2026, 1, 1, 0, 5, tzinfo=UTC)
    quota = {"metadata": {"name": "q", "creationTimestamp": "2026-01-01T00:00:00Z"},
             "status": {"hard": {"pods": "2", "limits.cpu": "2", "requests.memory": "1Gi"},
                        "used": {"pods": "1", "limits.cpu": "500m"}}}
    printer = PRINTERS["ResourceQuota"]
    assert [c.name for c in printer.columns] == ["Name", "Age", "Request", "Limit"]
    assert printer.cells(quota, now) == ["q", "5m", "pods: 1/2, requests.memory: 0/1Gi",
                                         "limits.cpu: 500m/2"]
    limits = {"metadata": {"name": "l", "creationTimestamp": "2026-01-01T00:00:00Z"}}
    assert [c.name for c in PRINTERS["LimitRange"].columns] == ["Name", "Created At"]
    assert PRINTERS["LimitRange"].cells(limits, now) == ["l", "2026-01-01T00:00:00Z"]


class FakeClient:
    """Answers the lists `describe namespace` makes."""

    def __init__(self, items: dict[str, list[dict]]) -> None:
        self.items = items

    def request(self, method: str, path: str, **_: object) -> dict:
        return {"items": self.items.get(path.rsplit("/", 1)[-1], [])}


def test_describe_namespace_ends_with_its_quotas_and_limits_as_kubectl_does():
    namespace = {"metadata": {"name": "team", "labels": {"kubernetes.io/metadata.name": "team"}},
                 "status": {"phase": "Active"}}
    client = FakeClient({"resourcequotas": [{
        "metadata": {"name": "pods"}, "status": {"hard": {"pods": "2"}, "used": {"pods": "2"}}}]})
    w = PrefixWriter()
    described = Described(client, NAMESPACES, namespace, events=[])  # type: ignore[arg-type]
    describe_namespace(described, w)
    assert w.render() == (
        "Name:         team\n"
        "Labels:       kubernetes.io/metadata.name=team\n"
        "Annotations:  <none>\n"
        "Status:       Active\n"
        "\n"
        "Resource Quotas\n"
        "  Name:     pods\n"
        "  Resource  Used  Hard\n"
        "  --------  ---   ---\n"
        "  pods      2     2\n"
        "\n"
        "No LimitRange resource.\n")
