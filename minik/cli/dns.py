"""`minik dns NAME`: ask the instance's cluster DNS, as a pod would, and print like `dig +short`.

The address is the one the server wrote in its instance file (the pod
network's gateway, `minik status` shows it). A name without a trailing dot
is looked up through a pod's search list in the namespace (`-n`, default
`default`) with `ndots:5`, so `minik dns web` finds
`web.default.svc.cluster.local`; `--type PTR` takes an IP address as `dig
-x` does. Each answer record's data is printed on a line of its own (a
CNAME's target, then the target's addresses); an unknown name exits 1 with
the response code on stderr.
"""

from __future__ import annotations

import ipaddress

import click
import dns.exception
import dns.name
import dns.rdatatype
import dns.resolver
import dns.reversename

from minik.api.names import CLUSTER_DOMAIN
from minik.cli.context import CliContext, fail, pass_context
from minik.cli.lifecycle import instance_info, running_pid

TIMEOUT = 5.0


def _question(name: str, rdtype: str) -> str:
    if rdtype == "PTR":
        try:
            return dns.reversename.from_address(str(ipaddress.ip_address(name))).to_text()
        except ValueError:
            return name
    return name


@click.command("dns")
@click.argument("name")
@click.option("-t", "--type", "rdtype", default="A", show_default=True,
              help="Record type: A, AAAA, SRV, PTR, CNAME, TXT, SOA, ...")
@pass_context
def dns_command(ctx: CliContext, name: str, rdtype: str) -> None:
    """Look NAME up in the cluster DNS and print the answers (like `dig +short`)."""
    if running_pid(ctx.home) is None:
        fail("minik is not running: start it with `minik up -d`")
    server = instance_info(ctx.home).get("dns")
    if not server:
        fail("this instance's cluster DNS address is not known yet (is its node Ready?)")
    rdtype = rdtype.upper()
    try:
        dns.rdatatype.from_text(rdtype)
    except dns.exception.DNSException:
        fail(f"unknown record type {rdtype!r}")
    namespace = ctx.namespace_flag or "default"
    resolver = dns.resolver.Resolver(configure=False)
    resolver.nameservers = [server]
    resolver.search = [dns.name.from_text(d) for d in (
        f"{namespace}.svc.{CLUSTER_DOMAIN}", f"svc.{CLUSTER_DOMAIN}", CLUSTER_DOMAIN)]
    resolver.ndots = 5
    resolver.lifetime = TIMEOUT
    try:
        answer = resolver.resolve(_question(name, rdtype), rdtype, search=True,
                                  raise_on_no_answer=False)
    except dns.resolver.NXDOMAIN:
        fail(f"{name}: NXDOMAIN (no such name)")
    except dns.exception.DNSException as e:
        fail(f"{name}: no answer from the cluster DNS at {server}: {e}")
    for rrset in answer.response.answer:
        for rdata in rrset:
            click.echo(rdata.to_text())
