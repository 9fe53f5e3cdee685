"""The pod network's subnet: the first free /16 of a wide range, or the one asked for."""

from __future__ import annotations

import ipaddress

import pytest

from agent.fake_runtime import FakeRuntime
from agent.runtime import RuntimeFailure
from cni.network import DEFAULT_SUBNETS, ensure_pod_network, host_networks


async def test_an_instance_takes_the_first_subnet_no_other_network_holds() -> None:
    runtime = FakeRuntime()
    for n, subnet in enumerate(DEFAULT_SUBNETS[:12]):
        await runtime.ensure_network(f"stale-{n}", subnet=subnet, gateway=None, labels={})
    network = await ensure_pod_network(runtime, "late", host=[])
    assert network.subnet == "10.243.0.0/16"


def test_the_range_avoids_the_service_addresses() -> None:
    services = ipaddress.ip_network("10.96.0.0/12")
    assert not any(ipaddress.ip_network(s).overlaps(services) for s in DEFAULT_SUBNETS)


async def test_a_subnet_asked_for_and_taken_is_refused_naming_it() -> None:
    runtime = FakeRuntime()
    await runtime.ensure_network("other", subnet="10.50.0.0/16", gateway=None, labels={})
    with pytest.raises(RuntimeFailure, match=r"10\.50\.0\.0/16: Pool overlaps"):
        await ensure_pod_network(runtime, "mine", subnet="10.50.0.0/16", host=[])


async def test_a_subnet_holding_the_host_s_nameserver_is_never_taken() -> None:
    runtime = FakeRuntime()
    host = [ipaddress.IPv4Network("10.244.3.53/32")]
    network = await ensure_pod_network(runtime, "mine", host=host)
    assert network.subnet == "10.245.0.0/16"


async def test_a_subnet_asked_for_over_the_host_s_own_network_is_refused_naming_it() -> None:
    runtime = FakeRuntime()
    host = [ipaddress.IPv4Network("10.50.1.0/24")]
    with pytest.raises(RuntimeFailure, match=r"10\.50\.0\.0/16: the host reaches 10\.50\.1\.0/24"):
        await ensure_pod_network(runtime, "mine", subnet="10.50.0.0/16", host=host)
    assert runtime.networks == {}


def test_the_host_s_networks_are_its_own_routes_and_nameservers(tmp_path) -> None:
    routes = tmp_path / "route"
    routes.write_text(
        "Iface\tDestination\tGateway\tFlags\tRefCnt\tUse\tMetric\tMask\tMTU\tWindow\tIRTT\n"
        "eth0\t00000000\t010200C0\t0003\t0\t0\t0\t00000000\t0\t0\t0\n"
        "eth0\t000200C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n"
        "br-2bb7aa80\t0000F30A\t00000000\t0001\t0\t0\t0\t0000FFFF\t0\t0\t0\n"
        "docker0\t000011AC\t00000000\t0001\t0\t0\t0\t0000FFFF\t0\t0\t0\n")
    resolv = tmp_path / "resolv.conf"
    resolv.write_text("search example\nnameserver 10.255.255.53\nnameserver ::1\n")
    assert host_networks(routes, resolv) == [ipaddress.IPv4Network("192.0.2.0/24"),
                                             ipaddress.IPv4Network("10.255.255.53/32")]
