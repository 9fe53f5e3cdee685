"""The authentication API a client calls about itself, and the token issuer's discovery.

- `POST /apis/authentication.k8s.io/{v1,v1beta1,v1alpha1}/selfsubjectreviews`
  (`kubectl auth whoami`; kubectl 1.27 asks v1beta1, then v1alpha1) answers
  a SelfSubjectReview whose `status.userInfo` is the requester.
- `POST /apis/authentication.k8s.io/v1/tokenreviews` says whom a token
  (`spec.token`) authenticates, for `spec.audiences` (the API's by default),
  as a webhook authenticator asks the API server; `status.audiences` are
  those of them the token is good for.
- `/.well-known/openid-configuration` and `/openid/v1/jwks`, as Kubernetes'
  service-account issuer discovery serves them, so that a relying party
  can verify minik's service-account tokens offline.
"""

from __future__ import annotations

from aiohttp import web

from minik.api import errors
from minik.api.decode import decode_body, require_object
from minik.apiserver import responses
from minik.apiserver.authn import AUTHENTICATOR_KEY, SIGNER_KEY, user_of
from minik.apiserver.serviceaccount_tokens import ALGORITHM, API_AUDIENCES, ISSUER

GROUP = "authentication.k8s.io"
VERSIONS = ("v1", "v1beta1", "v1alpha1")
JWKS_PATH = "/openid/v1/jwks"


async def self_subject_review(request: web.Request) -> web.Response:
    """The requester's user; the review's body says nothing more, so it is not read."""
    version = request.match_info["version"]
    review = {"kind": "SelfSubjectReview", "apiVersion": f"{GROUP}/{version}",
              "metadata": {"creationTimestamp": None},
              "status": {"userInfo": user_of(request).to_wire()}}
    return responses.json_response(review, status=201)


async def token_review(request: web.Request) -> web.Response:
    body = require_object(decode_body(await request.read(),
                                      request.headers.get("Content-Type", "application/json")))
    given = body.get("spec")
    spec: dict[str, object] = given if isinstance(given, dict) else {}
    token = spec.get("token") or ""
    audiences = spec.get("audiences") or list(API_AUDIENCES)
    if not isinstance(token, str) or not isinstance(audiences, list) or not all(
            isinstance(a, str) for a in audiences):
        raise errors.bad_request("spec.token must be a string and spec.audiences a list of "
                                 "strings")
    chain = request.app[AUTHENTICATOR_KEY].for_audiences(audiences)
    user = await chain.authenticate(token) if token else None
    status: dict[str, object] = (
        {"authenticated": True, "user": user.to_wire(),
         "audiences": chain.audiences_of(token, audiences)}
        if user is not None else {"user": {}, "error": "invalid bearer token"})
    review = {"kind": "TokenReview", "apiVersion": f"{GROUP}/v1",
              "metadata": {"creationTimestamp": None}, "spec": spec, "status": status}
    return responses.json_response(review, status=201)


async def openid_configuration(request: web.Request) -> web.Response:
    return responses.json_response({
        "issuer": ISSUER, "jwks_uri": f"{ISSUER}{JWKS_PATH}",
        "response_types_supported": ["id_token"], "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": [ALGORITHM]})


async def jwks(request: web.Request) -> web.Response:
    return responses.json_response(request.app[SIGNER_KEY].jwks())


def add_routes(app: web.Application) -> None:
    """Before the resource routes, which would otherwise claim these paths."""
    for version in VERSIONS:
        app.router.add_post(f"/apis/{GROUP}/{{version:{version}}}/selfsubjectreviews",
                            self_subject_review)
    app.router.add_post(f"/apis/{GROUP}/v1/tokenreviews", token_review)
    app.router.add_get("/.well-known/openid-configuration", openid_configuration)
    app.router.add_get(JWKS_PATH, jwks)
