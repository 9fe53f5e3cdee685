"""Impersonation: `Impersonate-User`, `-Group`, `-Uid` and `-Extra-*` headers (`kubectl --as`).

As Kubernetes' impersonation filter: the request then acts as the user
the headers name. Groups, uid or extra without a user are refused (400).
An impersonated service account (`system:serviceaccount:<ns>:<name>`)
given no groups gets a service account's groups, and every impersonated
user but `system:anonymous` is in `system:authenticated`. Each user,
service account, group, uid and extra value named must be allowed by the
authorizer to the requester with the verb `impersonate` (on `users`,
`serviceaccounts` and `groups` of the core group, `uids` and
`userextras/<key>` of `authentication.k8s.io`; `system:masters` may do anything);
anyone else gets Kubernetes' 403 naming what they may not impersonate.
"""

from __future__ import annotations

from urllib.parse import unquote

from aiohttp import web

from minik.api import errors
from minik.apiserver.authn import AUTHENTICATED, UserInfo, service_account_user
from minik.apiserver.rbac.attributes import Attributes
from minik.apiserver.rbac.authorizer import AUTHORIZER_KEY, forbidden
from minik.apiserver.serviceaccount_tokens import SERVICE_ACCOUNT_PREFIX

USER = "Impersonate-User"
GROUP = "Impersonate-Group"
UID = "Impersonate-Uid"
EXTRA_PREFIX = "impersonate-extra-"
AUTHENTICATION = "authentication.k8s.io"
ANONYMOUS = "system:anonymous"


async def _check_allowed(request: web.Request, user: UserInfo, name: str, groups: list[str],
                         uid: str, extra: dict[str, tuple[str, ...]]) -> None:
    """As upstream's impersonation filter: the user (or service account), each group, each
    extra value (its key the subresource of `userextras`), the uid."""
    wanted: list[tuple[str, str, str, str, str]] = []
    if name.startswith(SERVICE_ACCOUNT_PREFIX) and name.count(":") == 3:
        namespace, account = name[len(SERVICE_ACCOUNT_PREFIX):].split(":")
        wanted.append(("", "serviceaccounts", "", account, namespace))
    else:
        wanted.append(("", "users", "", name, ""))
    wanted += [("", "groups", "", group, "") for group in groups]
    wanted += [(AUTHENTICATION, "userextras", key, value, "")
               for key, values in extra.items() for value in values]
    if uid:
        wanted.append((AUTHENTICATION, "uids", "", uid, ""))
    authorizer = request.app[AUTHORIZER_KEY]
    for group, resource, subresource, target, namespace in wanted:
        attrs = Attributes(user, "impersonate", True, group, "", resource, subresource, target,
                           namespace)
        decision = await authorizer.authorize(attrs)
        if not decision.allowed:
            raise forbidden(attrs, decision.reason)


async def impersonated(request: web.Request, user: UserInfo) -> UserInfo:
    """The user the request acts as: `user`, or the one its impersonation headers name."""
    headers = request.headers
    name = headers.get(USER, "")
    groups = headers.getall(GROUP, [])
    uid = headers.get(UID, "")
    extra: dict[str, tuple[str, ...]] = {}
    for header, value in headers.items():
        if header.lower().startswith(EXTRA_PREFIX):
            key = unquote(header[len(EXTRA_PREFIX):].lower())
            extra[key] = (*extra.get(key, ()), value)
    if not name:
        if groups or uid or extra:
            raise errors.bad_request("requested impersonation of groups, uid or extra "
                                     "without impersonating a user")
        return user
    await _check_allowed(request, user, name, groups, uid, extra)
    if name.startswith(SERVICE_ACCOUNT_PREFIX) and name.count(":") == 3 and not groups:
        namespace, account = name[len(SERVICE_ACCOUNT_PREFIX):].split(":")
        return service_account_user(namespace, account, uid, extra)
    if name != ANONYMOUS and AUTHENTICATED not in groups:
        groups.append(AUTHENTICATED)
    return UserInfo(name, uid, tuple(groups), extra)
