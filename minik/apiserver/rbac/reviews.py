"""authorization.k8s.io/v1: asking the authorizer, as `kubectl auth can-i` does.

- `selfsubjectaccessreviews`: may I do this (`kubectl auth can-i verb
  resource`); allowed to every authenticated user by `system:basic-user`.
- `selfsubjectrulesreviews`: what may I do in a namespace (`can-i --list`):
  the rules of the requester's bindings, split into resource and
  non-resource rules; a binding to a missing role makes it `incomplete`
  with an `evaluationError`.
- `subjectaccessreviews` and namespaced `localsubjectaccessreviews`: may
  this user or these groups do this (for administrators and delegating
  servers); a local review's attributes must be in its namespace.

Each answers the review it was sent with `status` filled (201), never
storing it; a review naming neither resource nor non-resource attributes
is refused with 422, as Kubernetes' validation words it.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from minik.api import errors
from minik.api.decode import decode_body, require_object
from minik.api.errors import Cause
from minik.api.models.base import invalid
from minik.apiserver import responses
from minik.apiserver.authn import UserInfo, user_of
from minik.apiserver.rbac.attributes import Attributes
from minik.apiserver.rbac.authorizer import AUTHORIZER_KEY
from minik.apiserver.rbac.rules import PolicyRule

GROUP = "authorization.k8s.io"
API_VERSION = f"{GROUP}/v1"
JsonObject = dict[str, Any]


async def _review(request: web.Request, kind: str) -> JsonObject:
    content_type = request.headers.get("Content-Type", "application/json")
    body = require_object(decode_body(await request.read(), content_type))
    if body.get("kind") not in (None, "", kind) or body.get("apiVersion") not in (
            None, "", API_VERSION):
        raise errors.bad_request(f"the body of the request must be a {API_VERSION} {kind}")
    spec = body.get("spec")
    if not isinstance(spec, dict):
        spec = {}
    return {"kind": kind, "apiVersion": API_VERSION,
            "metadata": {**(body.get("metadata") or {}), "creationTimestamp": None},
            "spec": spec}


def _attributes(user: UserInfo, spec: JsonObject, kind: str) -> Attributes:
    """The attributes a review's spec asks about; 422 unless exactly one kind is given."""
    resource, non_resource = spec.get("resourceAttributes"), spec.get("nonResourceAttributes")
    causes: list[Cause] = []
    if resource is not None and non_resource is not None:
        causes.append(invalid("spec.nonResourceAttributes", non_resource,
                              "cannot be specified in combination with resourceAttributes"))
    if resource is None and non_resource is None:
        causes.append(invalid("spec.resourceAttributes", None, "exactly one of "
                              "nonResourceAttributes or resourceAttributes must be specified"))
    if causes:
        raise errors.invalid(kind, "", causes, group=GROUP)
    if isinstance(non_resource, dict):
        return Attributes(user, str(non_resource.get("verb") or ""), resource_request=False,
                          path=str(non_resource.get("path") or ""))
    attrs = resource if isinstance(resource, dict) else {}
    group, version, plural, sub, name, namespace = (str(attrs.get(k) or "") for k in (
        "group", "version", "resource", "subresource", "name", "namespace"))
    return Attributes(user, str(attrs.get("verb") or ""), True, group, version, plural, sub,
                      name, namespace)


async def _answer(request: web.Request, review: JsonObject, attrs: Attributes) -> web.Response:
    decision = await request.app[AUTHORIZER_KEY].authorize(attrs)
    review["status"] = {"allowed": decision.allowed}
    if decision.reason:
        review["status"]["reason"] = decision.reason
    return responses.json_response(review, status=201)


async def self_subject_access_review(request: web.Request) -> web.Response:
    review = await _review(request, "SelfSubjectAccessReview")
    return await _answer(request, review, _attributes(user_of(request), review["spec"],
                                                      "SelfSubjectAccessReview"))


def _subject(spec: JsonObject, kind: str) -> UserInfo:
    """The user a (local) subject access review asks about."""
    name, groups = str(spec.get("user") or ""), [str(g) for g in spec.get("groups") or []]
    if not name and not groups:
        raise errors.invalid(kind, "", [invalid("spec.user", name, "at least one of user "
                                                "or group must be specified")], group=GROUP)
    extra = {str(k): tuple(v) for k, v in (spec.get("extra") or {}).items()}
    return UserInfo(name, str(spec.get("uid") or ""), tuple(groups), extra)


async def subject_access_review(request: web.Request) -> web.Response:
    review = await _review(request, "SubjectAccessReview")
    subject = _subject(review["spec"], "SubjectAccessReview")
    return await _answer(request, review, _attributes(subject, review["spec"],
                                                      "SubjectAccessReview"))


async def local_subject_access_review(request: web.Request) -> web.Response:
    kind = "LocalSubjectAccessReview"
    review = await _review(request, kind)
    namespace = request.match_info["namespace"]
    review["metadata"].setdefault("namespace", namespace)
    spec = review["spec"]
    if spec.get("nonResourceAttributes") is not None:
        raise errors.invalid(kind, "", [invalid(
            "spec.nonResourceAttributes", spec["nonResourceAttributes"],
            "disallowed on this kind of request")], group=GROUP)
    attrs = _attributes(_subject(spec, kind), spec, kind)
    if attrs.namespace != namespace:
        raise errors.bad_request(f"spec.resourceAttributes.namespace must match namespace: "
                                 f"{namespace}")
    return await _answer(request, review, attrs)


def _resource_rule(rule: PolicyRule) -> JsonObject:
    wire = {"verbs": list(rule.verbs), "apiGroups": list(rule.api_groups),
            "resources": list(rule.resources), "resourceNames": list(rule.resource_names)}
    return {k: v for k, v in wire.items() if v or k == "verbs"}


async def self_subject_rules_review(request: web.Request) -> web.Response:
    review = await _review(request, "SelfSubjectRulesReview")
    namespace = str(review["spec"].get("namespace") or "")
    found = await request.app[AUTHORIZER_KEY].resolver.rules_for(user_of(request), namespace)
    status: JsonObject = {
        "resourceRules": [_resource_rule(r) for r in found.rules if not r.non_resource_urls],
        "nonResourceRules": [{"verbs": list(r.verbs), "nonResourceURLs": list(r.non_resource_urls)}
                             for r in found.rules if r.non_resource_urls],
        "incomplete": bool(found.errors)}
    if found.errors:
        status["evaluationError"] = ", ".join(found.errors)
    review["status"] = status
    return responses.json_response(review, status=201)


def add_routes(app: web.Application) -> None:
    """Before the resource routes, which would otherwise claim these paths."""
    base = f"/apis/{API_VERSION}"
    app.router.add_post(f"{base}/selfsubjectaccessreviews", self_subject_access_review)
    app.router.add_post(f"{base}/selfsubjectrulesreviews", self_subject_rules_review)
    app.router.add_post(f"{base}/subjectaccessreviews", subject_access_review)
    app.router.add_post(f"{base}/namespaces/{{namespace}}/localsubjectaccessreviews",
                        local_subject_access_review)

