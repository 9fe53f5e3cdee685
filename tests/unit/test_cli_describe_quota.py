"""`minik describe quota|limits` print what kubectl's describeQuota and describeLimitRange print."""

from __future__ import annotations

from minik.api.resources import LIMITRANGES, RESOURCEQUOTAS
from minik.cli.describe import Described, PrefixWriter
from minik.cli.describe_quota import describe_limit_range, describe_resource_quota

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
