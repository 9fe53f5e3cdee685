"""The host's packet filter as `iptables-save` (and `ip6tables-save`) print it, and the one
kind of change to it an e2e test accepts: rules Docker writes for its bridge networks.

minik never writes a rule (issue 10). Its pods' network is a Docker bridge network, for
which the engine (started with its default `--iptables=true`) writes rules of fixed
shapes: in its own chains (`DOCKER`, `DOCKER-ISOLATION-STAGE-1/2`, `DOCKER-USER`), in
`FORWARD` for the bridge, and in `POSTROUTING` the `MASQUERADE` of the bridge's subnet.
`FilterState.changes` returns every line added or removed between two captures that is
not exactly such a rule for a Docker bridge the host had at either capture: the
instance's own, and those of other minik instances and benchmarks that come and go on
the shared engine meanwhile (tests run beside each other on one host). A rule that names
no Docker bridge, names another interface, or sits in any other chain or table is a
change; so is a rule for a bridge in `foreign` (the bridges of an engine that was told
to write no rules at all).

Lines are compared as a multiset per table, without comments and packet counters: the
engine inserts a new network's rules at the top of a chain, which reorders but does not
change the others.
"""

from __future__ import annotations

import ipaddress
import os
import re
import subprocess
from collections import Counter
from collections.abc import Collection, Iterable
from dataclasses import dataclass

from pyroute2 import IPRoute

SAVE_TOOLS = {"ip": "/usr/sbin/iptables-save", "ip6": "/usr/sbin/ip6tables-save"}

DOCKER_BRIDGE = re.compile(r"^(docker0|br-[0-9a-f]{12})$")

COUNTERS = re.compile(r"\s*\[\d+:\d+\]$")


def save(tool: str) -> list[str]:
    """One family's rules, normalised: `table line` for every chain and rule."""
    out = subprocess.run([tool], capture_output=True, text=True, check=True, timeout=30).stdout
    lines, table = [], ""
    for line in out.splitlines():
        if not line or line.startswith("#") or line == "COMMIT":
            continue
        if line.startswith("*"):
            table = line[1:]
            continue
        lines.append(f"{table} {COUNTERS.sub('', line)}")
    return lines


def docker_bridges() -> dict[str, list[ipaddress.IPv4Network]]:
    """The host's Docker bridges (`docker0`, `br-<network id>`) with their subnets."""
    found: dict[str, list[ipaddress.IPv4Network]] = {}
    with IPRoute() as ip:
        names = {}
        for link in ip.get_links():
            name = link.get_attr("IFLA_IFNAME")
            if DOCKER_BRIDGE.match(name or ""):
                names[link["index"]] = name
                found[name] = []
        for address in ip.get_addr(family=2):
            if address["index"] in names:
                found[names[address["index"]]].append(ipaddress.IPv4Network(
                    f"{address.get_attr('IFA_ADDRESS')}/{address['prefixlen']}", strict=False))
    return found


def docker_rules(bridge: str, subnets: Iterable[ipaddress.IPv4Network]) -> set[str]:
    """The rules of fixed text Docker writes outside its own chains for one bridge."""
    rules = {f"filter -A FORWARD -o {bridge} -m conntrack --ctstate RELATED,ESTABLISHED "
             "-j ACCEPT",
             f"filter -A FORWARD -o {bridge} -j DOCKER",
             f"filter -A FORWARD -i {bridge} ! -o {bridge} -j ACCEPT",
             f"filter -A FORWARD -i {bridge} -o {bridge} -j ACCEPT",
             f"filter -A FORWARD -i {bridge} -o {bridge} -j DROP"}
    rules |= {f"nat -A POSTROUTING -s {subnet} ! -o {bridge} -j MASQUERADE" for subnet in subnets}
    return rules


PUBLISHED_PORT_MASQUERADE = re.compile(
    r"^nat -A POSTROUTING -s (?P<ip>[\d.]+)/32 -d (?P=ip)/32 -p (?P<p>tcp|udp) -m (?P=p) "
    r"--dport \d+ -j MASQUERADE$")
"""What Docker adds to POSTROUTING for a container's published port (a pod's hostPort)."""

INTERFACES = re.compile(r"(?:^|\s)-[io] (\S+)")


@dataclass(frozen=True)
class FilterState:
    rules: Counter[str]
    bridges: dict[str, list[ipaddress.IPv4Network]]

    @classmethod
    def capture(cls) -> FilterState:
        """Every family's rules, and the Docker bridges the host had just before and just
        after reading them (a bridge created or removed meanwhile is known either way)."""
        bridges = docker_bridges()
        rules: Counter[str] = Counter()
        for family, tool in SAVE_TOOLS.items():
            if os.path.exists(tool):
                rules.update(f"{family} {line}" for line in save(tool))
        return cls(rules, {**bridges, **docker_bridges()})

    def changes(self, after: FilterState, *, foreign: Collection[str] = ()) -> list[str]:
        """Lines added (`+`) or removed (`-`) since this capture that Docker's rules for its
        bridges (those not in `foreign`) do not explain."""
        added = [("+", line, after.bridges) for line in (after.rules - self.rules).elements()]
        removed = [("-", line, self.bridges) for line in (self.rules - after.rules).elements()]
        return [f"{sign} {line}" for sign, line, bridges in (*removed, *added)
                if not explained(line, {b: s for b, s in bridges.items() if b not in foreign})]


def explained(line: str, bridges: dict[str, list[ipaddress.IPv4Network]]) -> bool:
    """Whether `line` (`family table rule`) is one Docker writes for one of `bridges`."""
    family, rest = line.split(" ", 1)
    if family != "ip":
        return False
    rule = rest.split(" ", 1)[1]
    if rule.startswith(":"):
        return rule.startswith(":DOCKER") and rule.endswith(" -")
    chain = rule.split()[1]
    if chain.startswith("DOCKER"):
        named = INTERFACES.findall(rule)
        return rule == f"-A {chain} -j RETURN" or (
            bool(named) and all(name in bridges for name in named))
    if any(rest in docker_rules(bridge, subnets) for bridge, subnets in bridges.items()):
        return True
    published = PUBLISHED_PORT_MASQUERADE.match(rest)
    return published is not None and any(
        ipaddress.IPv4Address(published["ip"]) in subnet
        for subnets in bridges.values() for subnet in subnets)
