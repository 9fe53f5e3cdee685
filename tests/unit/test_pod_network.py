"""The pod network's subnet: the first free /16 of a wide range, or the one asked for."""

from __future__ import annotations

import ipaddress

import pytest

from agent.fake_runtime import FakeRuntime
from agent.runtime import RuntimeFailure
from cni.network import DEFAULT_SUBNETS, ensure_pod_network


async def test_an_instance_takes_the_first_subnet_no_other_network_holds() -> None:
    runtime = FakeRuntime()
    for n, subnet in enumerate(DEFAULT_SUBNETS[:12]):
        await runtime.ensure_network(f"stale-{n}", subnet=subnet, gateway=None, labels={})
    network = await ensure_pod_network(runtime, "late")
    assert network.subnet == "10.243.0.0/16"


def test_the_range_avoids_the_service_addresses() -> None:
    services = ipaddress.ip_network("10.96.0.0/12")
    assert not any(ipaddress.ip_network(s).overlaps(services) for s in DEFAULT_SUBNETS)


async def test_a_subnet_asked_for_and_taken_is_refused_naming_it() -> None:
    runtime = FakeRuntime()
    await runtime.ensure_network("other", subnet="10.50.0.0/16", gateway=None, labels={})
    with pytest.raises(RuntimeFailure, match=r"10\.50\.0\.0/16: Pool overlaps"):
        await ensure_pod_network(runtime, "mine", subnet="10.50.0.0/16")
