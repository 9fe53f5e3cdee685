"""The address checks of Endpoints and EndpointSlices (`ValidateNonSpecialIP` and friends).

An endpoint must be an address a proxy can forward to: a valid IP of the
slice's family, and never unspecified, loopback or link-local (Kubernetes
refuses those so that a Service cannot be pointed at the node itself).
"""

from __future__ import annotations

import ipaddress

from minik.api import names
from minik.api.errors import Cause
from minik.api.models.base import invalid

ANY_IP = "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)"


def _parse(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def non_special_ip_causes(path: str, text: str) -> list[Cause]:
    """`ValidateNonSpecialIP`."""
    ip = _parse(text)
    if ip is None:
        return [invalid(path, text, "must be a valid IP address")]
    causes = []
    if ip.is_unspecified:
        causes.append(invalid(path, text, f"may not be unspecified ({text})"))
    if ip.is_loopback:
        causes.append(invalid(path, text, "may not be in the loopback range "
                                          "(127.0.0.0/8, ::1/128)"))
    if ip.is_link_local and ip not in _LINK_LOCAL_MULTICAST:
        causes.append(invalid(path, text, "may not be in the link-local range "
                                          "(169.254.0.0/16, fe80::/10)"))
    if any(ip in net for net in _LINK_LOCAL_MULTICAST):
        causes.append(invalid(path, text, "may not be in the link-local multicast range "
                                          "(224.0.0.0/24, ff02::/10)"))
    return causes


_LINK_LOCAL_MULTICAST = (ipaddress.ip_network("224.0.0.0/24"),
                         ipaddress.ip_network("ff02::/16"))


def endpoint_ip_causes(path: str, text: str) -> list[Cause]:
    """An Endpoints address: any valid IP that is not special."""
    if _parse(text) is None:
        return [invalid(path, text, ANY_IP)]
    return non_special_ip_causes(path, text)


def slice_address_causes(path: str, text: str, address_type: str) -> list[Cause]:
    """An EndpointSlice address, checked by the slice's `addressType`."""
    if address_type in ("IPv4", "IPv6"):
        ip = _parse(text)
        if ip is None or ip.version != (4 if address_type == "IPv4" else 6):
            return [invalid(path, text, f"must be a valid {address_type} address")]
        return non_special_ip_causes(path, text)
    if address_type == "FQDN":
        messages = names.is_dns1123_subdomain(text.rstrip("."))
        if not messages and "." not in text.rstrip("."):
            messages = ["should be a domain with at least two segments separated by dots"]
        return [invalid(path, text, m) for m in messages]
    return []
