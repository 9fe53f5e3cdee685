"""Authentication: who sent a request, as Kubernetes' authenticator chain says it.

Each authenticator maps a bearer token to a `UserInfo` or passes; the
chain asks them in order and the first answer wins:

- the instance's admin token (the kubeconfig's, also shown by the node
  agent and the node network process) is user `minik-admin` in the groups
  `system:masters` and `system:authenticated`;
- a service-account token (`serviceaccount_tokens`) whose ServiceAccount,
  and bound Pod or Secret, still exist with the uids it names (and were
  not marked for deletion more than a minute ago) is
  `system:serviceaccount:<ns>:<name>` in `system:serviceaccounts`,
  `system:serviceaccounts:<ns>` and `system:authenticated`; a pod-bound
  token also carries the pod's name and uid as `extra`.

The middleware stores the user under `USER_KEY` on the request, where
handlers and authorizers read it (`user_of`); a request no authenticator
accepts gets 401 Unauthorized. Impersonation headers are then applied
(`impersonation`).
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from aiohttp import web

from minik.api import errors
from minik.api.meta import parse_time
from minik.api.resources import PODS, SECRETS, SERVICEACCOUNTS, ResourceType
from minik.apiserver.serviceaccount_tokens import (
    API_AUDIENCES,
    BoundObject,
    TokenError,
    TokenSigner,
)
from minik.apiserver.storage import ObjectStorage

ADMIN_USER = "minik-admin"
MASTERS = "system:masters"
AUTHENTICATED = "system:authenticated"
SERVICE_ACCOUNTS = "system:serviceaccounts"
POD_NAME_EXTRA = "authentication.kubernetes.io/pod-name"
POD_UID_EXTRA = "authentication.kubernetes.io/pod-uid"
DELETION_LEEWAY = 60.0
"""Seconds a token outlives the deletionTimestamp of its account or bound object (go-jose's
`DefaultLeeway`, which Kubernetes' validator allows)."""


@dataclass(frozen=True, slots=True)
class UserInfo:
    """A user as authentication.k8s.io/v1 describes one."""

    name: str
    uid: str = ""
    groups: tuple[str, ...] = ()
    extra: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    def to_wire(self) -> dict[str, Any]:
        """The `UserInfo` of a TokenReview or SelfSubjectReview status."""
        wire: dict[str, Any] = {"username": self.name}
        if self.uid:
            wire["uid"] = self.uid
        if self.groups:
            wire["groups"] = list(self.groups)
        if self.extra:
            wire["extra"] = {k: list(v) for k, v in self.extra.items()}
        return wire


class Authenticator(Protocol):
    """Maps a bearer token to its user, or None when the token is not its kind."""

    async def authenticate(self, token: str) -> UserInfo | None: ...


ADMIN = UserInfo(ADMIN_USER, groups=(MASTERS, AUTHENTICATED))


class AdminToken:
    """The instance's own token: the administrator, a member of `system:masters`."""

    def __init__(self, token: str) -> None:
        self._token = token

    async def authenticate(self, token: str) -> UserInfo | None:
        return ADMIN if hmac.compare_digest(token.encode(), self._token.encode()) else None


def service_account_user(namespace: str, name: str, uid: str = "",
                         extra: Mapping[str, tuple[str, ...]] | None = None) -> UserInfo:
    return UserInfo(f"system:serviceaccount:{namespace}:{name}", uid,
                    (SERVICE_ACCOUNTS, f"{SERVICE_ACCOUNTS}:{namespace}", AUTHENTICATED),
                    dict(extra or {}))


class ServiceAccountTokens:
    """Service-account JWTs, valid while their account and bound object live."""

    def __init__(self, signer: TokenSigner, storage: ObjectStorage,
                 audiences: Sequence[str] = API_AUDIENCES) -> None:
        self.signer = signer
        self.storage = storage
        self.audiences = tuple(audiences)

    async def _uid(self, rt: ResourceType[Any], namespace: str, name: str) -> str | None:
        """The object's uid; None when it is gone, or was marked for deletion more than
        `DELETION_LEEWAY` ago (Kubernetes' validator counts it deleted then)."""
        try:
            obj = await self.storage.get(rt, namespace, name)
        except errors.ApiError:
            return None
        md = obj.get("metadata") or {}
        deleted = parse_time(md.get("deletionTimestamp"))
        if deleted is not None and deleted.timestamp() < self.signer.clock() - DELETION_LEEWAY:
            return None
        return str(md.get("uid", ""))

    async def authenticate(self, token: str) -> UserInfo | None:
        if token.count(".") != 2:
            return None
        try:
            claims = self.signer.verify(token, self.audiences)
        except TokenError:
            return None
        if await self._uid(SERVICEACCOUNTS, claims.namespace, claims.name) != claims.uid:
            return None
        extra: dict[str, tuple[str, ...]] = {}
        if claims.bound is not None:
            if not await self._bound_alive(claims.namespace, claims.bound):
                return None
            if claims.bound.kind == "Pod":
                extra = {POD_NAME_EXTRA: (claims.bound.name,), POD_UID_EXTRA: (claims.bound.uid,)}
        return service_account_user(claims.namespace, claims.name, claims.uid, extra)

    async def _bound_alive(self, namespace: str, bound: BoundObject) -> bool:
        rt = PODS if bound.kind == "Pod" else SECRETS
        return await self._uid(rt, namespace, bound.name) == bound.uid


class Chain:
    """Asks each authenticator in turn; the first that knows the token answers."""

    def __init__(self, *authenticators: Authenticator) -> None:
        self.authenticators = authenticators

    def for_audiences(self, audiences: Sequence[str]) -> Chain:
        """The same chain, its service-account tokens checked against `audiences` (a
        TokenReview's) instead of the API's."""
        return Chain(*(ServiceAccountTokens(a.signer, a.storage, audiences)
                       if isinstance(a, ServiceAccountTokens) else a
                       for a in self.authenticators))

    def audiences_of(self, token: str, requested: Sequence[str]) -> list[str]:
        """The requested audiences an authenticated token is good for (upstream's
        `Response.Audiences`): those a service-account token names, all for any other."""
        for authenticator in self.authenticators:
            if isinstance(authenticator, ServiceAccountTokens) and token.count(".") == 2:
                try:
                    claims = authenticator.signer.verify(token, requested)
                except TokenError:
                    continue
                return [audience for audience in requested if audience in claims.audiences]
        return list(requested)

    async def authenticate(self, token: str) -> UserInfo | None:
        for authenticator in self.authenticators:
            user = await authenticator.authenticate(token)
            if user is not None:
                return user
        return None


AUTHENTICATOR_KEY = web.AppKey("authenticator", Chain)
SIGNER_KEY = web.AppKey("token-signer", TokenSigner)
USER_KEY = web.RequestKey("user", UserInfo)


def user_of(request: web.Request) -> UserInfo:
    """The authenticated (or impersonated) user of a request."""
    return request[USER_KEY]


async def authenticate(request: web.Request) -> UserInfo:
    """The user the request's bearer token names; 401 when none does."""
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise errors.unauthorized()
    user = await request.app[AUTHENTICATOR_KEY].authenticate(token)
    if user is None:
        raise errors.unauthorized()
    return user
