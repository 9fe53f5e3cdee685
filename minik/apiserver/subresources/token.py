"""`serviceaccounts/token`: the TokenRequest subresource (`kubectl create token`).

A POST of an authentication.k8s.io/v1 TokenRequest gets it back with
`status.token` and `status.expirationTimestamp`, as Kubernetes' token
REST does: `spec.audiences` defaults to the API's audiences,
`spec.expirationSeconds` to 3600 and may not be under 600 (422);
`spec.boundObjectRef` may name a Pod (running as the account, else 400) or
Secret of the account's namespace, which must exist (404) with the uid
given, if one is (409);
the token is then valid only while that object lives.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from minik.api import errors
from minik.api.errors import Cause
from minik.api.meta import format_time
from minik.api.resources import PODS, SECRETS, SERVICEACCOUNTS, ResourceType
from minik.apiserver.routing import ResourceRequest
from minik.apiserver.serviceaccount_admission import DEFAULT_SERVICE_ACCOUNT
from minik.apiserver.serviceaccount_tokens import (
    API_AUDIENCES,
    DEFAULT_EXPIRATION,
    MIN_EXPIRATION,
    BoundObject,
    TokenSigner,
)
from minik.apiserver.storage import ObjectStorage

GROUP_VERSION = "authentication.k8s.io/v1"
MAX_EXPIRATION = 1 << 32
BINDABLE: dict[str, ResourceType[Any]] = {"Pod": PODS, "Secret": SECRETS}


def _invalid(name: str, field: str, message: str, reason: str = "FieldValueInvalid"
             ) -> errors.ApiError:
    return errors.invalid("TokenRequest", name, [Cause(field, message, reason)],
                          group="authentication.k8s.io")


def _expiration(spec: dict[str, Any], name: str) -> int:
    seconds = spec.get("expirationSeconds", DEFAULT_EXPIRATION)
    if not isinstance(seconds, int) or isinstance(seconds, bool):
        raise _invalid(name, "spec.expirationSeconds",
                       f"Invalid value: {seconds!r}: must be an integer")
    if seconds < MIN_EXPIRATION:
        raise _invalid(name, "spec.expirationSeconds", f"Invalid value: {seconds}: may not "
                       "specify a duration less than 10 minutes")
    if seconds > MAX_EXPIRATION:
        raise _invalid(name, "spec.expirationSeconds", f"Invalid value: {seconds}: may not "
                       "specify a duration larger than 2^32 seconds")
    return seconds


async def _bound(storage: ObjectStorage, namespace: str, ref: dict[str, Any],
                 name: str) -> BoundObject:
    kind = ref.get("kind", "")
    rt = BINDABLE.get(kind)
    if rt is None:
        raise _invalid(name, "spec.boundObjectRef.kind", f'Unsupported value: "{kind}": '
                       'supported values: "Pod", "Secret"', "FieldValueNotSupported")
    obj = await storage.get(rt, namespace, str(ref.get("name", "")))
    if kind == "Pod" and ((obj.get("spec") or {}).get("serviceAccountName")
                          or DEFAULT_SERVICE_ACCOUNT) != name:
        raise errors.bad_request(f'cannot bind token for serviceaccount "{name}" to pod '
                                 "running with different serviceaccount name.")
    uid = str(obj["metadata"].get("uid", ""))
    wanted = ref.get("uid")
    if wanted and wanted != uid:
        raise errors.conflict(
            rt.plural, str(ref.get("name", "")),
            why=f"the UID in the bound object reference ({wanted}) does not match the UID "
                f"in record ({uid}). The object might have been deleted and then recreated")
    return BoundObject(kind, str(ref.get("name", "")), uid)


async def request_token(storage: ObjectStorage, signer: TokenSigner, target: ResourceRequest,
                        body: dict[str, Any]) -> dict[str, Any]:
    """The TokenRequest `body` answered with a token for the target ServiceAccount."""
    name = target.name or ""
    namespace = target.namespace or ""
    account = await storage.get(SERVICEACCOUNTS, namespace, name)
    spec = body.get("spec")
    if not isinstance(spec, dict):
        spec = {}
    seconds = _expiration(spec, name)
    audiences = spec.get("audiences") or list(API_AUDIENCES)
    if not isinstance(audiences, list) or not all(isinstance(a, str) for a in audiences):
        raise _invalid(name, "spec.audiences", "Invalid value: must be a list of strings")
    ref = spec.get("boundObjectRef")
    bound = await _bound(storage, namespace, ref, name) if isinstance(ref, dict) else None
    token, expires = signer.issue(namespace=namespace, name=name,
                                  uid=str(account["metadata"].get("uid", "")),
                                  audiences=audiences, seconds=seconds, bound=bound)
    metadata = {**(body.get("metadata") or {}), "name": name, "namespace": namespace,
                "creationTimestamp": None}
    return {"kind": "TokenRequest", "apiVersion": GROUP_VERSION, "metadata": metadata,
            "spec": {**spec, "audiences": audiences, "expirationSeconds": seconds},
            "status": {"token": token, "expirationTimestamp": format_time(
                dt.datetime.fromtimestamp(expires, dt.UTC))}}
