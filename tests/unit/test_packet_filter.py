"""The e2e tests' judgement of an iptables-save change: Docker's rules for a known bridge
pass; anything else, or Docker's rules for a bridge of an engine told to write none, fails."""

from __future__ import annotations

import ipaddress
from collections import Counter

from tests.e2e.packet_filter import FilterState

SUBNET = ipaddress.IPv4Network("10.245.0.0/16")
BASE = ["ip filter :INPUT ACCEPT", "ip filter :FORWARD DROP", "ip filter :DOCKER -",
        "ip filter -A FORWARD -j DOCKER-USER", "ip nat :POSTROUTING ACCEPT"]
DOCKER_NETWORK = [
    "ip filter -A FORWARD -o br-0123456789ab -m conntrack --ctstate RELATED,ESTABLISHED "
    "-j ACCEPT",
    "ip filter -A FORWARD -o br-0123456789ab -j DOCKER",
    "ip filter -A FORWARD -i br-0123456789ab ! -o br-0123456789ab -j ACCEPT",
    "ip filter -A FORWARD -i br-0123456789ab -o br-0123456789ab -j ACCEPT",
    "ip filter -A DOCKER-ISOLATION-STAGE-1 -i br-0123456789ab ! -o br-0123456789ab "
    "-j DOCKER-ISOLATION-STAGE-2",
    "ip filter -A DOCKER-ISOLATION-STAGE-2 -o br-0123456789ab -j DROP",
    "ip nat -A POSTROUTING -s 10.245.0.0/16 ! -o br-0123456789ab -j MASQUERADE",
    "ip nat -A DOCKER -i br-0123456789ab -j RETURN",
]


def state(lines: list[str], bridges: dict[str, list[ipaddress.IPv4Network]]) -> FilterState:
    return FilterState(Counter(lines), bridges)


def test_dockers_rules_for_a_bridge_the_host_has_are_no_change() -> None:
    before = state(BASE, {})
    after = state(DOCKER_NETWORK + BASE, {"br-0123456789ab": [SUBNET]})
    assert before.changes(after) == []
    assert after.changes(before) == []


def test_a_rule_in_a_builtin_chain_that_docker_does_not_write_is_a_change() -> None:
    bridges = {"br-0123456789ab": [SUBNET]}
    before = state(BASE, bridges)
    dnat = "ip nat -A PREROUTING -d 10.96.0.10/32 -p tcp -j DNAT --to-destination 10.245.0.5"
    after = state([*BASE, dnat, "ip filter -A INPUT -i br-0123456789ab -j ACCEPT"], bridges)
    assert before.changes(after) == [f"+ {dnat}",
                                     "+ ip filter -A INPUT -i br-0123456789ab -j ACCEPT"]


def test_a_rule_in_dockers_chains_naming_no_docker_bridge_is_a_change() -> None:
    bridges = {"br-0123456789ab": [SUBNET]}
    rule = "ip nat -A DOCKER -d 10.96.0.10/32 -j DNAT --to-destination 10.245.0.5:80"
    assert state(BASE, bridges).changes(state([*BASE, rule], bridges)) == [f"+ {rule}"]
    eth = "ip filter -A DOCKER -i eth0 -j ACCEPT"
    assert state(BASE, bridges).changes(state([*BASE, eth], bridges)) == [f"+ {eth}"]


def test_a_removed_rule_is_a_change_unless_docker_wrote_it_for_its_bridge() -> None:
    bridges = {"br-0123456789ab": [SUBNET]}
    before = state([*BASE, *DOCKER_NETWORK], bridges)
    after = state(BASE[1:], {})
    assert before.changes(after) == ["- ip filter :INPUT ACCEPT"]


def test_rules_for_a_foreign_engines_bridge_are_changes() -> None:
    after = state(DOCKER_NETWORK + BASE, {"br-0123456789ab": [SUBNET]})
    changed = state(BASE, {}).changes(after, foreign={"br-0123456789ab"})
    assert changed == [f"+ {line}" for line in DOCKER_NETWORK]


def test_ip6tables_changes_are_always_changes() -> None:
    rule = "ip6 filter -A FORWARD -o br-0123456789ab -j DOCKER"
    assert state([], {"br-0123456789ab": []}).changes(
        state([rule], {"br-0123456789ab": []})) == [f"+ {rule}"]
