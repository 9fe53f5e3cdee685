"""Service-account tokens: issued by TokenRequest, checked on every request, refused once
their ServiceAccount or bound pod is gone; whoami and impersonation."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from minik.apiserver.app import READY_KEY, create_app
from minik.apiserver.authn import POD_NAME_EXTRA, POD_UID_EXTRA
from minik.apiserver.metrics import ApiMetrics
from minik.apiserver.serviceaccount_tokens import (
    ISSUER,
    BoundObject,
    TokenError,
    TokenSigner,
    load_or_create_key,
    new_signing_key,
)
from minik.home import Home
from minik.machinery.clock import ManualClock
from tests.unit.apitest import bootstrapped

ADMIN = "admin-token"
SA = "/api/v1/namespaces/default/serviceaccounts"
PODS = "/api/v1/namespaces/default/pods"
WHOAMI = "/apis/authentication.k8s.io/v1/selfsubjectreviews"
REVIEW = {"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"}


def claims_of(token: str) -> dict[str, Any]:
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


def test_a_token_carries_kubernetes_bound_claims_and_verifies() -> None:
    clock = ManualClock(1_000_000.0)
    signer = TokenSigner(new_signing_key(), clock=clock.now)
    token, expires = signer.issue(namespace="ns", name="sa", uid="u1", audiences=[ISSUER],
                                  seconds=600, bound=BoundObject("Pod", "p", "pu"))
    claims = claims_of(token)
    assert claims["iss"] == ISSUER and claims["aud"] == [ISSUER]
    assert claims["sub"] == "system:serviceaccount:ns:sa"
    assert (claims["iat"], claims["nbf"], claims["exp"]) == (1_000_000, 1_000_000, expires)
    assert claims["kubernetes.io"] == {"namespace": "ns",
                                       "serviceaccount": {"name": "sa", "uid": "u1"},
                                       "pod": {"name": "p", "uid": "pu"}}
    verified = signer.verify(token)
    assert verified.username == "system:serviceaccount:ns:sa"
    assert verified.bound == BoundObject("Pod", "p", "pu")


def test_an_expired_token_is_refused() -> None:
    clock = ManualClock(1_000_000.0)
    signer = TokenSigner(new_signing_key(), clock=clock.now)
    token, _ = signer.issue(namespace="ns", name="sa", uid="u", audiences=[ISSUER], seconds=600)
    clock.advance(599)
    signer.verify(token)
    clock.advance(1)
    with pytest.raises(TokenError, match="expired"):
        signer.verify(token)


def test_a_token_for_another_audience_or_key_is_refused() -> None:
    signer = TokenSigner(new_signing_key())
    token, _ = signer.issue(namespace="ns", name="sa", uid="u", audiences=["vault"], seconds=600)
    with pytest.raises(TokenError, match="audience"):
        signer.verify(token)
    assert signer.verify(token, ["vault"]).name == "sa"
    with pytest.raises(TokenError):
        TokenSigner(new_signing_key()).verify(token, ["vault"])


def test_the_signing_key_is_private_and_kept(tmp_path) -> None:
    home = Home.at(tmp_path).ensure()
    first = load_or_create_key(home)
    assert home.service_account_key.stat().st_mode & 0o777 == 0o600
    assert load_or_create_key(home).private_numbers() == first.private_numbers()


@pytest.fixture
async def api():
    from aiohttp.test_utils import TestClient, TestServer

    storage = await bootstrapped()
    app = create_app(storage, token=ADMIN, metrics=ApiMetrics())
    app[READY_KEY].append(True)
    client = TestClient(TestServer(app))
    await client.start_server()
    yield client
    await client.close()


def admin() -> dict[str, str]:
    return {"Authorization": f"Bearer {ADMIN}"}


async def create(api, path: str, body: dict[str, Any]) -> dict[str, Any]:
    response = await api.post(path, json=body, headers=admin())
    assert response.status == 201, await response.text()
    return await response.json()


async def token_for(api, account: str, spec: dict[str, Any] | None = None) -> dict[str, Any]:
    response = await api.post(f"{SA}/{account}/token", headers=admin(), json={
        "apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": spec or {}})
    return {**(await response.json()), "code": response.status}


async def whoami(api, token: str, **headers: str) -> tuple[int, dict[str, Any]]:
    response = await api.post(WHOAMI, json=REVIEW,
                              headers={"Authorization": f"Bearer {token}", **headers})
    return response.status, await response.json()


POD = {"metadata": {"name": "p"},
       "spec": {"containers": [{"name": "c", "image": "minik/busybox:1.35"}]}}


async def test_whoami_names_the_admin_as_a_master(api) -> None:
    status, review = await whoami(api, ADMIN)
    assert status == 201
    assert review["kind"] == "SelfSubjectReview"
    assert review["status"]["userInfo"] == {
        "username": "minik-admin", "groups": ["system:masters", "system:authenticated"]}


async def test_a_requested_token_authenticates_as_its_service_account(api) -> None:
    sa = await create(api, SA, {"metadata": {"name": "robot"}})
    answer = await token_for(api, "robot")
    assert answer["code"] == 201 and answer["kind"] == "TokenRequest"
    assert answer["spec"]["expirationSeconds"] == 3600
    assert answer["status"]["expirationTimestamp"].endswith("Z")
    status, review = await whoami(api, answer["status"]["token"])
    assert status == 201
    assert review["status"]["userInfo"] == {
        "username": "system:serviceaccount:default:robot", "uid": sa["metadata"]["uid"],
        "groups": ["system:serviceaccounts", "system:serviceaccounts:default",
                   "system:authenticated"]}


async def test_a_token_request_under_ten_minutes_is_invalid(api) -> None:
    await create(api, SA, {"metadata": {"name": "robot"}})
    answer = await token_for(api, "robot", {"expirationSeconds": 60})
    assert answer["code"] == 422
    assert answer["details"]["causes"][0]["field"] == "spec.expirationSeconds"


async def test_a_token_for_another_audience_does_not_reach_the_api(api) -> None:
    await create(api, SA, {"metadata": {"name": "robot"}})
    answer = await token_for(api, "robot", {"audiences": ["vault"]})
    status, body = await whoami(api, answer["status"]["token"])
    assert (status, body["reason"]) == (401, "Unauthorized")


async def test_a_token_is_refused_once_its_service_account_is_deleted(api) -> None:
    await create(api, SA, {"metadata": {"name": "robot"}})
    token = (await token_for(api, "robot"))["status"]["token"]
    assert (await api.delete(f"{SA}/robot", headers=admin())).status == 200
    await create(api, SA, {"metadata": {"name": "robot"}})
    status, _ = await whoami(api, token)
    assert status == 401


ROBOT_POD = {**POD, "spec": {**POD["spec"], "serviceAccountName": "robot"}}


async def test_a_pod_bound_token_names_the_pod_and_dies_with_it(api) -> None:
    await create(api, SA, {"metadata": {"name": "robot"}})
    pod = await create(api, PODS, ROBOT_POD)
    uid = pod["metadata"]["uid"]
    answer = await token_for(api, "robot", {"boundObjectRef": {
        "kind": "Pod", "apiVersion": "v1", "name": "p", "uid": uid}})
    token = answer["status"]["token"]
    assert claims_of(token)["kubernetes.io"]["pod"] == {"name": "p", "uid": uid}
    status, review = await whoami(api, token)
    assert status == 201
    assert review["status"]["userInfo"]["extra"] == {POD_NAME_EXTRA: ["p"], POD_UID_EXTRA: [uid]}
    response = await api.delete(f"{PODS}/p?gracePeriodSeconds=0", headers=admin())
    assert response.status == 200
    status, _ = await whoami(api, token)
    assert status == 401


async def test_a_token_bound_to_a_missing_or_replaced_pod_is_not_issued(api) -> None:
    await create(api, SA, {"metadata": {"name": "robot"}})
    missing = await token_for(api, "robot", {"boundObjectRef": {"kind": "Pod", "name": "p"}})
    assert missing["code"] == 404
    await create(api, PODS, ROBOT_POD)
    stale = await token_for(api, "robot", {"boundObjectRef": {
        "kind": "Pod", "name": "p", "uid": "not-its-uid"}})
    assert stale["code"] == 409


async def test_a_token_is_bound_only_to_a_pod_running_as_its_service_account(api) -> None:
    await create(api, SA, {"metadata": {"name": "robot"}})
    await create(api, PODS, POD)
    answer = await token_for(api, "robot", {"boundObjectRef": {"kind": "Pod", "name": "p"}})
    assert (answer["code"], answer["reason"], answer["message"]) == (
        400, "BadRequest", 'cannot bind token for serviceaccount "robot" to pod running with '
                           "different serviceaccount name.")


async def test_a_master_may_impersonate_and_others_are_forbidden(api) -> None:
    status, review = await whoami(api, ADMIN, **{"Impersonate-User": "jane",
                                                 "Impersonate-Group": "devs"})
    assert status == 201
    assert review["status"]["userInfo"] == {"username": "jane",
                                            "groups": ["devs", "system:authenticated"]}
    await create(api, SA, {"metadata": {"name": "robot"}})
    token = (await token_for(api, "robot"))["status"]["token"]
    status, body = await whoami(api, token, **{"Impersonate-User": "jane"})
    assert status == 403
    assert body["message"] == ('users "jane" is forbidden: User '
                               '"system:serviceaccount:default:robot" cannot impersonate '
                               'resource "users" in API group "" at the cluster scope')


async def test_the_issuer_publishes_its_keys(api) -> None:
    config = await (await api.get("/.well-known/openid-configuration", headers=admin())).json()
    assert config["issuer"] == ISSUER
    keys = await (await api.get("/openid/v1/jwks", headers=admin())).json()
    assert keys["keys"][0]["alg"] == "ES256"


async def test_a_token_review_says_whom_a_token_authenticates_for_its_audiences(api) -> None:
    await create(api, SA, {"metadata": {"name": "robot"}})
    token = (await token_for(api, "robot", {"audiences": ["vault"]}))["status"]["token"]
    path = "/apis/authentication.k8s.io/v1/tokenreviews"

    async def review(spec: dict[str, Any]) -> dict[str, Any]:
        response = await api.post(path, headers=admin(), json={
            "apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview", "spec": spec})
        assert response.status == 201
        return (await response.json())["status"]

    accepted = await review({"token": token, "audiences": ["vault"]})
    assert accepted["authenticated"] is True and accepted["audiences"] == ["vault"]
    assert accepted["user"]["username"] == "system:serviceaccount:default:robot"
    narrowed = await review({"token": token, "audiences": ["other", "vault"]})
    assert narrowed["audiences"] == ["vault"]
    refused = await review({"token": token})
    assert "authenticated" not in refused and refused["error"] == "invalid bearer token"


async def test_a_token_dies_a_minute_after_its_bound_pod_is_marked_for_deletion() -> None:
    import datetime as dt

    from minik.api.meta import format_time
    from minik.api.resources import PODS as POD_TYPE
    from minik.api.resources import SERVICEACCOUNTS
    from minik.apiserver.authn import ServiceAccountTokens
    from minik.apiserver.storage import WriteOptions

    storage = await bootstrapped()
    account = (await storage.create(SERVICEACCOUNTS, "default", {"metadata": {"name": "robot"}},
                                    WriteOptions(trusted=True))).obj
    pod = (await storage.create(POD_TYPE, "default", ROBOT_POD, WriteOptions(trusted=True))).obj
    now = [1_800_000_000.0]
    signer = TokenSigner(new_signing_key(), clock=lambda: now[0])
    token, _ = signer.issue(namespace="default", name="robot", uid=account["metadata"]["uid"],
                            audiences=[ISSUER], seconds=3600,
                            bound=BoundObject("Pod", "p", pod["metadata"]["uid"]))
    tokens = ServiceAccountTokens(signer, storage)
    record = await storage.read(POD_TYPE, "default", "p")
    marked = {**record.value, "metadata": {
        **record.value["metadata"], "finalizers": ["example.com/hold"],
        "deletionTimestamp": format_time(dt.datetime.fromtimestamp(now[0], dt.UTC))}}
    await storage.store.update(record.key, marked, expected_revision=record.revision)
    now[0] += 60
    assert await tokens.authenticate(token) is not None
    now[0] += 1
    assert await tokens.authenticate(token) is None
