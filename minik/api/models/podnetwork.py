"""A pod's network settings: DNS configuration, /etc/hosts entries and host ports.

The agent writes `dnsConfig` into the pod's resolv.conf, `hostAliases` into
its hosts file, and binds host ports on the node; checks follow
`validatePodDNSConfig`, `ValidateHostAliases`, `checkHostPortConflicts` and
`validateHostNetwork` in `pkg/apis/core/validation`, so an entry the node
could not use is a 422 naming it rather than a pod that fails to start.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Annotated

from pydantic import model_validator

from minik.api import names
from minik.api.errors import Cause
from minik.api.models.base import (
    K8sModel,
    checked,
    duplicate,
    invalid,
    raise_any,
    required,
)

if TYPE_CHECKING:
    from minik.api.models.container import Container

MAX_NAMESERVERS = 3
MAX_SEARCHES = 32
MAX_SEARCH_CHARS = 2048
IP_MESSAGE = "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)"


def ip_causes(value: str, path: str = "") -> list[Cause]:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return [invalid(path, value, IP_MESSAGE)]
    return []


def _hostname_causes(values: list[str]) -> list[Cause]:
    return [invalid(f"[{i}]", v, m) for i, v in enumerate(values)
            for m in names.is_dns1123_subdomain(v)]


class HostAlias(K8sModel):
    ip: Annotated[str, checked(ip_causes)]
    hostnames: Annotated[list[str], checked(_hostname_causes)] | None = None


class PodDNSConfigOption(K8sModel):
    name: str | None = None
    value: str | None = None


class PodDNSConfig(K8sModel):
    nameservers: list[str] | None = None
    searches: list[str] | None = None
    options: list[PodDNSConfigOption] | None = None

    @model_validator(mode="after")
    def _usable(self) -> PodDNSConfig:
        raise_any(self._causes())
        return self

    def _causes(self) -> Iterator[Cause]:
        servers, searches = self.nameservers or [], self.searches or []
        if len(servers) > MAX_NAMESERVERS:
            yield invalid("nameservers", servers,
                          f"must not have more than {MAX_NAMESERVERS} nameservers")
        for i, server in enumerate(servers):
            yield from ip_causes(server, f"nameservers[{i}]")
        if len(searches) > MAX_SEARCHES:
            yield invalid("searches", searches,
                          f"must not have more than {MAX_SEARCHES} search paths")
        if len(" ".join(searches)) > MAX_SEARCH_CHARS:
            yield invalid("searches", searches, f"must not have more than {MAX_SEARCH_CHARS} "
                                                "characters (including spaces) in the search list")
        for i, search in enumerate(searches):
            domain = search.removesuffix(".")  # a trailing dot is fine
            yield from (invalid(f"searches[{i}]", domain, m)
                        for m in names.is_dns1123_subdomain(domain))
        for i, option in enumerate(self.options or ()):
            if not option.name:
                yield required(f"options[{i}]", "Option.Name must not be empty")


def dns_policy_causes(policy: str | None, config: PodDNSConfig | None) -> list[Cause]:
    """`dnsPolicy: None` takes every resolver setting from `dnsConfig`, so it needs one."""
    if policy != "None":
        return []
    if config is None:
        return [required("dnsConfig", "must provide `dnsConfig` when `dnsPolicy` is None")]
    if not config.nameservers:
        return [required("dnsConfig.nameservers",
                         "must provide at least one DNS nameserver when `dnsPolicy` is None")]
    return []


def host_port_causes(containers: Iterable[Container], *, host_network: bool) -> list[Cause]:
    """One binding per host port, protocol and address; on the host network, no remapping."""
    causes: list[Cause] = []
    taken: set[str] = set()
    for ci, container in enumerate(containers):
        for pi, port in enumerate(container.ports or ()):
            path = f"containers[{ci}].ports[{pi}]"
            if host_network and port.host_port not in (None, port.container_port):
                causes.append(invalid(f"{path}.containerPort", port.container_port,
                                      "must match `hostPort` when `hostNetwork` is true"))
            if not port.host_port:
                continue
            binding = f"{port.protocol or 'TCP'}/{port.host_ip or ''}/{port.host_port}"
            if binding in taken:
                causes.append(duplicate(f"{path}.hostPort", binding))
            taken.add(binding)
    return causes
