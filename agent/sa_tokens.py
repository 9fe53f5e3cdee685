"""Service-account tokens for pods' projected volumes, as the kubelet's token manager.

A projected volume's `serviceAccountToken` source is filled with a token
the agent requests through the TokenRequest API (`serviceaccounts/token`),
bound to the pod, for the source's audience (the API's when none) and
lifetime. A token is kept per pod, account, audience and lifetime, and
requested anew once 80% of its life has passed (the kubelet's rule), so the
volume's periodic refresh writes the new one before the old one expires;
a failed renewal keeps the old token and is retried at the next refresh.
Ages are measured on the agent's clock (a test's manual one).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from minik.api.errors import ApiError
from minik.api.meta import name_of, namespace_of, parse_time, uid_of
from minik.api.objects import JsonObject, Pod
from minik.api.resources import SERVICEACCOUNTS
from minik.client.aio import ApiUnavailable, AsyncClient
from minik.client.paths import object_path
from minik.machinery.clock import Clock

log = logging.getLogger(__name__)

DEFAULT_EXPIRATION = 3600
REFRESH_AT = 0.8
"""The share of a token's life after which it is renewed."""

TokenKey = tuple[str, str, str, str, int]


@dataclass(frozen=True, slots=True)
class Issued:
    token: str
    received: float
    lifetime: float


def token_sources(pod: Pod) -> list[JsonObject]:
    """The `serviceAccountToken` sources of the pod's projected volumes."""
    sources = []
    for volume in (pod.get("spec") or {}).get("volumes") or []:
        for part in (volume.get("projected") or {}).get("sources") or []:
            if part.get("serviceAccountToken") is not None:
                sources.append(part["serviceAccountToken"])
    return sources


def _key(pod: Pod, source: JsonObject) -> TokenKey:
    account = (pod.get("spec") or {}).get("serviceAccountName") or "default"
    return (uid_of(pod), namespace_of(pod) or "default", account,
            source.get("audience") or "",
            int(source.get("expirationSeconds") or DEFAULT_EXPIRATION))


class ServiceAccountTokens:
    """Requests, caches and renews the tokens of the pods on this node."""

    def __init__(self, client: AsyncClient, clock: Clock) -> None:
        self.client = client
        self.clock = clock
        self._issued: dict[TokenKey, Issued] = {}

    def _fresh(self, issued: Issued | None) -> bool:
        return issued is not None and \
            self.clock.now() < issued.received + REFRESH_AT * issued.lifetime

    async def ensure(self, pod: Pod) -> None:
        """Request the pod's tokens that are missing or past 80% of their life."""
        for source in token_sources(pod):
            key = _key(pod, source)
            if self._fresh(self._issued.get(key)):
                continue
            try:
                self._issued[key] = await self._request(pod, key)
            except (ApiError, ApiUnavailable) as e:
                log.warning("cannot get a service-account token for pod %s/%s: %s",
                            key[1], name_of(pod), e)

    async def _request(self, pod: Pod, key: TokenKey) -> Issued:
        _, namespace, account, audience, seconds = key
        spec: JsonObject = {"expirationSeconds": seconds,
                            "boundObjectRef": {"apiVersion": "v1", "kind": "Pod",
                                               "name": name_of(pod), "uid": uid_of(pod)}}
        if audience:
            spec["audiences"] = [audience]
        body = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": spec}
        path = object_path(SERVICEACCOUNTS, namespace, account, "token")
        answer = await self.client.request("POST", path, body=body)
        status = answer.get("status") or {}
        expires = parse_time(status.get("expirationTimestamp"))
        lifetime = (expires - self.clock.wall()).total_seconds() if expires else seconds
        return Issued(str(status.get("token", "")), self.clock.now(), max(lifetime, 0.0))

    def lookup(self, pod: Pod, source: JsonObject) -> str | None:
        """The pod's current token for `source`, once requested."""
        issued = self._issued.get(_key(pod, source))
        return issued.token if issued is not None else None

    def forget(self, pod_uid: str) -> None:
        for key in [k for k in self._issued if k[0] == pod_uid]:
            del self._issued[key]
