"""The cluster zone: what the DNS server answers for `cluster.local`, from Services and slices.

A `Zone` is an immutable snapshot built from the Services and
EndpointSlices in the informers' caches (`Zone.build`, a pure function, so
a missed event only delays and never corrupts), and answers one question
at a time (`Zone.lookup`), with the records of the Kubernetes DNS
specification (kubernetes/dns `docs/specification.md`) as CoreDNS's
`kubernetes` plugin gives them:

- `<svc>.<ns>.svc.<zone>`: A (AAAA) of the ClusterIPs; for a headless
  Service one per ready endpoint address (none ready: NXDOMAIN), and
  `<hostname>.<svc>.<ns>.svc.<zone>` per endpoint, its hostname being the
  endpoint's `hostname` or else its dashed IP (`10-244-0-5`); a CNAME to
  `spec.externalName` for an ExternalName Service.
- `_<port>._<proto>.<svc>.<ns>.svc.<zone>` SRV per named port (priority 0,
  weight 100 shared out evenly, as CoreDNS), the target the Service's name,
  or each endpoint's name (with the slice's port) when headless; an SRV
  question for the Service's own name answers every port.
- PTR for every ClusterIP and every headless endpoint address; a reverse
  name the zone does not know is not ours (forwarded, as CoreDNS's default
  `fallthrough in-addr.arpa ip6.arpa`).
- `<a>-<b>-<c>-<d>.<ns>.pod.<zone>` A (the specification's deprecated pod
  records, CoreDNS's `pods insecure`) and `dns-version.<zone>` TXT.
- A name in the zone with no record of the asked type (an existing name, or
  one above one, like `<ns>.svc.<zone>`) is NOERROR with no answer; any other
  name in the zone NXDOMAIN; both with the zone's SOA in the authority section.

Names compare case-insensitively. Every record has the TTL of CoreDNS's
plugin, 5 seconds.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass, field

import dns.name
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset
from dns.rdatatype import RdataType

from minik.api.meta import labels_of, name_of, namespace_of
from minik.api.objects import (
    Endpoint,
    EndpointPort,
    EndpointSlice,
    Service,
    ServicePort,
    ServiceSpec,
)

TTL = 5
SCHEMA_VERSION = "1.1.0"
SERVICE_NAME_LABEL = "kubernetes.io/service-name"
REVERSE_ZONES = ("in-addr.arpa", "ip6.arpa")
SOA_TIMES = (7200, 1800, 86400, TTL)
"""refresh, retry, expire and minimum of the zone's SOA (CoreDNS's)."""


@dataclass(slots=True)
class Records:
    """What one name of the zone holds."""

    addresses: list[str] = field(default_factory=list)
    cname: str | None = None
    srv: list[tuple[int, str]] = field(default_factory=list)
    """(port, target name) pairs."""


@dataclass(frozen=True, slots=True)
class Lookup:
    """The zone's answer to one question."""

    rcode: dns.rcode.Rcode
    answer: list[dns.rrset.RRset] = field(default_factory=list)
    authority: list[dns.rrset.RRset] = field(default_factory=list)
    additional: list[dns.rrset.RRset] = field(default_factory=list)
    chase: dns.name.Name | None = None
    """The CNAME target whose addresses the upstream should add (an ExternalName asked
    for A or AAAA)."""


def _text(name: dns.name.Name) -> str:
    return name.to_text(omit_final_dot=True).lower()


def _dashed(ip: str) -> str:
    return ip.replace(".", "-").replace(":", "-")


def _is_headless(spec: ServiceSpec) -> bool:
    return spec.get("clusterIP") == "None"


def _valid(ips: Iterable[str]) -> list[str]:
    """The addresses that are IPs (anything else in an object is skipped, never fatal)."""
    valid = []
    for ip in ips:
        try:
            valid.append(str(ipaddress.ip_address(ip)))
        except ValueError:
            continue
    return valid


def _cluster_ips(spec: ServiceSpec) -> list[str]:
    ips = spec.get("clusterIPs") or ([spec["clusterIP"]] if spec.get("clusterIP") else [])
    return _valid(ip for ip in ips if ip and ip != "None")


def _ready(endpoint: Endpoint, publish_not_ready: bool) -> bool:
    """Ready unless the slice says not (an unset `ready` counts as ready)."""
    return publish_not_ready or (endpoint.get("conditions") or {}).get("ready") is not False


class Zone:
    """One snapshot of the cluster zone's records."""

    def __init__(self, domain: str) -> None:
        self.domain = domain.lower().rstrip(".")
        self.origin = dns.name.from_text(self.domain)
        self.names: dict[str, Records] = {}
        self.pointers: dict[str, str] = {}
        """Reverse name (`5.0.96.10.in-addr.arpa`) to the name it points at."""
        self._above: set[str] = set()

    @classmethod
    def build(cls, domain: str, services: Iterable[Service],
              slices: Iterable[EndpointSlice]) -> Zone:
        zone = cls(domain)
        by_service: dict[tuple[str, str], list[EndpointSlice]] = {}
        for eps in slices:
            service = labels_of(eps).get(SERVICE_NAME_LABEL)
            if service and eps.get("addressType", "IPv4") in ("IPv4", "IPv6"):
                by_service.setdefault((namespace_of(eps) or "", service), []).append(eps)
        for svc in services:
            namespace = namespace_of(svc) or "default"
            zone._add_service(svc, by_service.get((namespace, name_of(svc)), []))
        zone._index_above()
        return zone

    def _records(self, name: str) -> Records:
        return self.names.setdefault(name, Records())

    def _add_service(self, svc: Service, slices: list[EndpointSlice]) -> None:
        spec = svc.get("spec") or {}
        base = f"{name_of(svc)}.{namespace_of(svc) or 'default'}.svc.{self.domain}".lower()
        if spec.get("type") == "ExternalName":
            if spec.get("externalName"):
                self._records(base).cname = str(spec["externalName"]).rstrip(".").lower()
            return
        if _is_headless(spec):
            self._add_headless(base, slices, bool(spec.get("publishNotReadyAddresses")))
            return
        ips = _cluster_ips(spec)
        if not ips:
            return
        records = self._records(base)
        records.addresses.extend(ips)
        for ip in ips:
            self.pointers[_reverse(ip)] = base
        for port in spec.get("ports") or []:
            self._add_srv(base, port, int(port.get("port", 0)), base)

    def _add_headless(self, base: str, slices: list[EndpointSlice],
                      publish_not_ready: bool) -> None:
        for eps in slices:
            ports = eps.get("ports") or []
            for endpoint in eps.get("endpoints") or []:
                if not _ready(endpoint, publish_not_ready):
                    continue
                for ip in _valid(endpoint.get("addresses") or []):
                    host = str(endpoint.get("hostname") or _dashed(ip)).lower()
                    target = f"{host}.{base}"
                    self._records(base).addresses.append(ip)
                    self._records(target).addresses.append(ip)
                    self.pointers[_reverse(ip)] = target
                    for port in ports:
                        if port.get("port") is not None:
                            self._add_srv(base, port, int(port["port"]), target)

    def _add_srv(self, base: str, port: ServicePort | EndpointPort, number: int,
                 target: str) -> None:
        entry = (number, target)
        if entry not in self._records(base).srv:
            self._records(base).srv.append(entry)
        if port.get("name"):
            proto = str(port.get("protocol") or "TCP").lower()
            records = self._records(f"_{port['name']}._{proto}.{base}".lower())
            if entry not in records.srv:
                records.srv.append(entry)

    def _index_above(self) -> None:
        """Every name between an owner name and the zone apex exists (empty non-terminals)."""
        suffix = f".{self.domain}"
        for name in self.names:
            while name.endswith(suffix):
                name = name.split(".", 1)[1]
                self._above.add(name)
        self._above.update({self.domain, f"svc.{self.domain}", f"pod.{self.domain}"})

    def in_zone(self, qname: dns.name.Name) -> bool:
        return qname.is_subdomain(self.origin)

    def lookup(self, qname: dns.name.Name, qtype: RdataType) -> Lookup | None:
        """The answer for a question; None when the zone does not hold it (forward it)."""
        name = _text(qname)
        if name.endswith(REVERSE_ZONES):
            target = self.pointers.get(name)
            if target is None:
                return None
            if qtype in (RdataType.PTR, RdataType.ANY):
                return Lookup(dns.rcode.NOERROR, [self._rrset(qname, RdataType.PTR,
                                                              [f"{target}."])])
            return self._empty(dns.rcode.NOERROR)
        if not self.in_zone(qname):
            return None
        if name == f"dns-version.{self.domain}":
            if qtype == RdataType.TXT:
                return Lookup(dns.rcode.NOERROR, [self._rrset(qname, RdataType.TXT,
                                                              [f'"{SCHEMA_VERSION}"'])])
            return self._empty(dns.rcode.NOERROR)
        records = self.names.get(name) or self._pod_records(name)
        if records is None:
            if name in self._above:
                if name == self.domain and qtype == RdataType.SOA:
                    return Lookup(dns.rcode.NOERROR, [self._soa()])
                return self._empty(dns.rcode.NOERROR)
            return self._empty(dns.rcode.NXDOMAIN)
        return self._answer(qname, qtype, records)

    def _pod_records(self, name: str) -> Records | None:
        """`<a>-<b>-<c>-<d>.<ns>.pod.<zone>`: the address the name spells."""
        labels = name.split(".")
        if len(labels) < 3 or ".".join(labels[2:]) != f"pod.{self.domain}":
            return None
        try:
            ip = ipaddress.IPv4Address(labels[0].replace("-", "."))
        except ValueError:
            return None
        return Records(addresses=[str(ip)])

    def _answer(self, qname: dns.name.Name, qtype: RdataType, records: Records) -> Lookup:
        if records.cname is not None:
            target = dns.name.from_text(records.cname)
            answer = [self._rrset(qname, RdataType.CNAME, [f"{records.cname}."])]
            if qtype == RdataType.CNAME:
                return Lookup(dns.rcode.NOERROR, answer)
            return Lookup(dns.rcode.NOERROR, answer, chase=target)
        answer, additional = [], []
        for rdtype in (RdataType.A, RdataType.AAAA):
            if qtype in (rdtype, RdataType.ANY):
                addresses = [ip for ip in records.addresses if _rdtype_of(ip) == rdtype]
                if addresses:
                    answer.append(self._rrset(qname, rdtype, addresses))
        if qtype in (RdataType.SRV, RdataType.ANY) and records.srv:
            weight = 100 // len(records.srv)
            answer.append(self._rrset(qname, RdataType.SRV, [
                f"0 {weight} {port} {target}." for port, target in records.srv]))
            additional = self._targets({target for _, target in records.srv})
        if not answer:
            return self._empty(dns.rcode.NOERROR)
        return Lookup(dns.rcode.NOERROR, answer, additional=additional)

    def _targets(self, targets: set[str]) -> list[dns.rrset.RRset]:
        """The addresses of SRV targets, for the additional section."""
        found = []
        for target in sorted(targets):
            records = self.names.get(target)
            if records is None:
                continue
            for rdtype in (RdataType.A, RdataType.AAAA):
                addresses = [ip for ip in records.addresses if _rdtype_of(ip) == rdtype]
                if addresses:
                    found.append(self._rrset(dns.name.from_text(target), rdtype, addresses))
        return found

    def _empty(self, rcode: dns.rcode.Rcode) -> Lookup:
        return Lookup(rcode, authority=[self._soa()])

    def _soa(self) -> dns.rrset.RRset:
        refresh, retry, expire, minimum = SOA_TIMES
        return self._rrset(self.origin, RdataType.SOA, [
            f"ns.dns.{self.domain}. hostmaster.{self.domain}. 1 {refresh} {retry} "
            f"{expire} {minimum}"])

    @staticmethod
    def _rrset(name: dns.name.Name, rdtype: RdataType, values: list[str]) -> dns.rrset.RRset:
        return dns.rrset.from_text_list(name, TTL, dns.rdataclass.IN, rdtype, values)


def _rdtype_of(ip: str) -> RdataType:
    return RdataType.AAAA if ":" in ip else RdataType.A


def _reverse(ip: str) -> str:
    return ipaddress.ip_address(ip).reverse_pointer.lower()
