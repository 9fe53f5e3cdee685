"""The authentication API a client calls about itself, and the token issuer's discovery.

- `POST /apis/authentication.k8s.io/{v1,v1beta1,v1alpha1}/selfsubjectreviews`
  (`kubectl auth whoami`; kubectl 1.27 asks v1beta1, then v1alpha1) answers
  a SelfSubjectReview whose `status.userInfo` is the requester.
- `/.well-known/openid-configuration` and `/openid/v1/jwks`, as Kubernetes'
  service-account issuer discovery serves them, so that a relying party
  can verify minik's service-account tokens offline.
"""

from __future__ import annotations

from aiohttp import web

from minik.apiserver import responses
from minik.apiserver.authn import SIGNER_KEY, user_of
from minik.apiserver.serviceaccount_tokens import ALGORITHM, ISSUER

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
    app.router.add_get("/.well-known/openid-configuration", openid_configuration)
    app.router.add_get(JWKS_PATH, jwks)
