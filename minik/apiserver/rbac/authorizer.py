"""The authorization decision for every request, and Kubernetes' 403 when it is no.

As the API server's authorizer chain with `--authorization-mode=RBAC`:
members of `system:masters` may do anything (the privileged-group
authorizer in front of RBAC; minik's own components use the admin token,
which is such a member); anyone else may do what a rule they hold
allows (`resolver`). The middleware runs after authentication, on every
request but the public health checks, and refuses with Kubernetes'
Forbidden Status: `pods is forbidden: User "u" cannot list resource
"pods" in API group "" in the namespace "default"` (upstream's
`forbiddenMessage`), followed by `: RBAC: ...` when a binding's role is
missing. The requester is kept in `REQUESTER` while the request is
handled, for the admission that needs to know who writes (`escalation`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from dataclasses import dataclass

from aiohttp import web

from minik.api import errors
from minik.apiserver.authn import MASTERS, USER_KEY, UserInfo
from minik.apiserver.rbac.attributes import Attributes, request_attributes
from minik.apiserver.rbac.resolver import RuleResolver
from minik.apiserver.rbac.rules import allows
from minik.store.protocol import Store

REQUESTER: ContextVar[UserInfo | None] = ContextVar("requester", default=None)
"""The user whose request is being handled; None for the server's own writes."""

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass(frozen=True, slots=True)
class Decision:
    allowed: bool
    reason: str = ""


class Authorizer:
    """`system:masters`, then RBAC."""

    def __init__(self, store: Store) -> None:
        self.resolver = RuleResolver(store)

    async def authorize(self, attrs: Attributes) -> Decision:
        if MASTERS in attrs.user.groups:
            return Decision(True)
        found = await self.resolver.rules_for(attrs.user, attrs.namespace)
        for rule, source in zip(found.rules, found.sources, strict=True):
            if allows(rule, attrs):
                return Decision(True, f"RBAC: allowed by {source}")
        return Decision(False, f"RBAC: {', '.join(found.errors)}" if found.errors else "")


AUTHORIZER_KEY = web.AppKey("authorizer", Authorizer)


def forbidden_message(attrs: Attributes) -> str:
    """Upstream's `forbiddenMessage`."""
    user = attrs.user.name
    if not attrs.resource_request:
        return f'User "{user}" cannot {attrs.verb} path "{attrs.path}"'
    resource = attrs.resource + (f"/{attrs.subresource}" if attrs.subresource else "")
    scope = (f'in the namespace "{attrs.namespace}"' if attrs.namespace
             else "at the cluster scope")
    return (f'User "{user}" cannot {attrs.verb} resource "{resource}" '
            f'in API group "{attrs.api_group}" {scope}')


def forbidden(attrs: Attributes, reason: str = "") -> errors.ApiError:
    """The 403 a refused request gets, as upstream's `responsewriters.Forbidden`."""
    message = forbidden_message(attrs) + (f": {reason}" if reason else "")
    return errors.forbidden_for(attrs.resource, attrs.name, message, group=attrs.api_group)


@web.middleware
async def authorization_middleware(request: web.Request,
                                   handler: Handler) -> web.StreamResponse:
    """Authorize the authenticated user's request (public paths have none)."""
    user = request.get(USER_KEY)
    if user is None:
        return await handler(request)
    attrs = request_attributes(user, request.method, request.path, request.query)
    decision = await request.app[AUTHORIZER_KEY].authorize(attrs)
    if not decision.allowed:
        raise forbidden(attrs, decision.reason)
    token = REQUESTER.set(user)
    try:
        return await handler(request)
    finally:
        REQUESTER.reset(token)
