"""Impersonation: `Impersonate-User`, `-Group`, `-Uid` and `-Extra-*` headers (`kubectl --as`).

As Kubernetes' impersonation filter: the request then acts as the user
the headers name. Groups, uid or extra without a user are refused (400).
An impersonated service account (`system:serviceaccount:<ns>:<name>`)
given no groups gets a service account's groups, and every impersonated
user but `system:anonymous` is in `system:authenticated`. Until minik has
RBAC, only members of `system:masters` may impersonate; anyone else gets
Kubernetes' 403 naming what they may not impersonate.
"""

from __future__ import annotations

from urllib.parse import unquote

from aiohttp import web

from minik.api import errors
from minik.apiserver.authn import AUTHENTICATED, MASTERS, UserInfo, service_account_user
from minik.apiserver.serviceaccount_tokens import SERVICE_ACCOUNT_PREFIX

USER = "Impersonate-User"
GROUP = "Impersonate-Group"
UID = "Impersonate-Uid"
EXTRA_PREFIX = "impersonate-extra-"
ANONYMOUS = "system:anonymous"


def _refused(user: UserInfo, resource: str, name: str, namespace: str = "") -> errors.ApiError:
    scope = f'in the namespace "{namespace}"' if namespace else "at the cluster scope"
    return errors.forbidden(f'{resource} "{name}" is forbidden: User "{user.name}" cannot '
                            f'impersonate resource "{resource}" in API group "" {scope}')


def _check_allowed(user: UserInfo, name: str, groups: list[str]) -> None:
    if MASTERS in user.groups:
        return
    if name.startswith(SERVICE_ACCOUNT_PREFIX) and name.count(":") == 3:
        namespace, account = name[len(SERVICE_ACCOUNT_PREFIX):].split(":")
        raise _refused(user, "serviceaccounts", account, namespace)
    if name:
        raise _refused(user, "users", name)
    raise _refused(user, "groups", groups[0])


def impersonated(request: web.Request, user: UserInfo) -> UserInfo:
    """The user the request acts as: `user`, or the one its impersonation headers name."""
    headers = request.headers
    name = headers.get(USER, "")
    groups = headers.getall(GROUP, [])
    uid = headers.get(UID, "")
    extra: dict[str, tuple[str, ...]] = {}
    for header, value in headers.items():
        if header.lower().startswith(EXTRA_PREFIX):
            key = unquote(header[len(EXTRA_PREFIX):]).lower()
            extra[key] = (*extra.get(key, ()), value)
    if not name:
        if groups or uid or extra:
            raise errors.bad_request("requested impersonation of groups, uid or extra "
                                     "without impersonating a user")
        return user
    _check_allowed(user, name, groups)
    if name.startswith(SERVICE_ACCOUNT_PREFIX) and name.count(":") == 3 and not groups:
        namespace, account = name[len(SERVICE_ACCOUNT_PREFIX):].split(":")
        return service_account_user(namespace, account, uid, extra)
    if name != ANONYMOUS and AUTHENTICATED not in groups:
        groups.append(AUTHENTICATED)
    return UserInfo(name, uid, tuple(groups), extra)
