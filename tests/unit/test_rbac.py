"""RBAC: request attributes, rule matching, the authorizer's 403s, escalation prevention,
aggregation, the default policy and the authorization.k8s.io reviews."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from minik.api.resources import CLUSTERROLES
from minik.apiserver.app import READY_KEY, create_app
from minik.apiserver.authn import UserInfo
from minik.apiserver.metrics import ApiMetrics
from minik.apiserver.rbac.attributes import Attributes, request_attributes
from minik.apiserver.rbac.bootstrap import CLUSTER_ROLES, ensure_bootstrap_policy
from minik.apiserver.rbac.escalation import RBAC_ADMISSION
from minik.apiserver.rbac.rules import PolicyRule, allows, compact, uncovered
from minik.apiserver.server import bootstrap_namespaces
from minik.apiserver.storage import ObjectStorage
from minik.controllers.clusterroleaggregation import aggregated_rules
from minik.store import MemoryStore

TOKEN = "admin-token"
SA = "system:serviceaccount:default:default"
RBAC = "/apis/rbac.authorization.k8s.io/v1"
REVIEWS = "/apis/authorization.k8s.io/v1"
JANE = UserInfo("jane", groups=("devs", "system:authenticated"))


def attrs(method: str, path: str, **query: str) -> Attributes:
    return request_attributes(JANE, method, path, query)


@pytest.mark.parametrize(("method", "path", "query", "expected"), [
    ("GET", "/api/v1/namespaces/ns/pods", {}, ("list", "", "pods", "", "", "ns")),
    ("GET", "/api/v1/namespaces/ns/pods", {"watch": "true"},
     ("watch", "", "pods", "", "", "ns")),
    ("GET", "/api/v1/namespaces/ns/pods", {"fieldSelector": "metadata.name=web"},
     ("list", "", "pods", "", "web", "ns")),
    ("GET", "/api/v1/watch/namespaces/ns/pods", {}, ("watch", "", "pods", "", "", "ns")),
    ("POST", "/api/v1/namespaces/ns/pods/web/exec", {},
     ("create", "", "pods", "exec", "web", "ns")),
    ("DELETE", "/apis/apps/v1/namespaces/ns/deployments", {},
     ("deletecollection", "apps", "deployments", "", "", "ns")),
    ("PATCH", "/apis/apps/v1/namespaces/ns/deployments/d/scale", {},
     ("patch", "apps", "deployments", "scale", "d", "ns")),
    ("GET", "/api/v1/namespaces/ns", {}, ("get", "", "namespaces", "", "ns", "ns")),
    ("PUT", "/api/v1/namespaces/ns/finalize", {},
     ("update", "", "namespaces", "finalize", "ns", "ns")),
    ("GET", "/api/v1/nodes", {}, ("list", "", "nodes", "", "", "")),
])
def test_request_attributes_are_read_from_the_path_as_kubernetes_reads_them(
        method: str, path: str, query: dict[str, str], expected: tuple[str, ...]) -> None:
    got = request_attributes(JANE, method, path, query)
    assert got.resource_request
    assert (got.verb, got.api_group, got.resource, got.subresource, got.name,
            got.namespace) == expected


@pytest.mark.parametrize("path", ["/version", "/api", "/api/v1", "/apis", "/apis/apps/v1",
                                  "/openapi/v3/apis/apps/v1"])
def test_discovery_and_version_are_non_resource_requests(path: str) -> None:
    got = attrs("GET", path)
    assert not got.resource_request and got.verb == "get" and got.path == path


def rule(groups: list[str], resources: list[str], verbs: list[str],
         names: tuple[str, ...] = ()) -> PolicyRule:
    return PolicyRule(tuple(verbs), tuple(groups), tuple(resources), names)


def test_rules_match_verbs_groups_resources_and_names_with_wildcards() -> None:
    list_pods = attrs("GET", "/api/v1/namespaces/ns/pods")
    assert allows(rule([""], ["pods"], ["list"]), list_pods)
    assert allows(rule(["*"], ["*"], ["*"]), list_pods)
    assert not allows(rule(["apps"], ["pods"], ["list"]), list_pods)
    assert not allows(rule([""], ["pods"], ["get"]), list_pods)
    assert not allows(rule([""], ["pods"], ["list"], ("web",)), list_pods)
    scale = attrs("PUT", "/apis/apps/v1/namespaces/ns/deployments/d/scale")
    assert allows(rule(["apps"], ["*/scale"], ["update"]), scale)
    assert allows(rule(["apps"], ["deployments/scale"], ["update"], ("d",)), scale)
    assert not allows(rule(["apps"], ["deployments"], ["update"]), scale)


def test_non_resource_rules_match_exact_paths_and_star_suffixes() -> None:
    discovery = PolicyRule(("get",), non_resource_urls=("/apis/*", "/version"))
    assert allows(discovery, attrs("GET", "/apis/apps/v1"))
    assert allows(discovery, attrs("GET", "/version"))
    assert not allows(discovery, attrs("GET", "/version/x"))
    assert not allows(discovery, attrs("POST", "/version"))


def test_covering_breaks_rules_into_atoms_and_compacts_what_is_missing() -> None:
    held = [rule([""], ["pods"], ["get", "list"]), rule(["apps"], ["*/scale"], ["*"])]
    assert uncovered(held, [rule([""], ["pods"], ["get"])]) == []
    assert uncovered(held, [rule(["apps"], ["deployments/scale"], ["patch"])]) == []
    missing = uncovered(held, [rule(["", "apps"], ["pods", "secrets"], ["get", "watch"])])
    assert [r.compact_string() for r in compact(missing)] == [
        '{APIGroups:[""], Resources:["pods"], Verbs:["watch"]}',
        '{APIGroups:[""], Resources:["secrets"], Verbs:["get" "watch"]}',
        '{APIGroups:["apps"], Resources:["pods"], Verbs:["get" "watch"]}',
        '{APIGroups:["apps"], Resources:["secrets"], Verbs:["get" "watch"]}',
    ]


def test_an_aggregated_role_takes_the_rules_of_every_role_its_selectors_match_once() -> None:
    roles = {r["metadata"]["name"]: r for r in CLUSTER_ROLES}
    view = aggregated_rules(roles["view"], list(roles.values()))
    assert view == roles["system:aggregate-to-view"]["rules"]
    extra = {"metadata": {"name": "a-crd-viewer", "labels": {
        "rbac.authorization.k8s.io/aggregate-to-view": "true"}},
        "rules": [view[0], {"verbs": ["get"], "apiGroups": ["x.io"], "resources": ["widgets"]}]}
    grown = aggregated_rules(roles["view"], [*roles.values(), extra])
    assert grown == [view[0], extra["rules"][1], *view[1:]]


@pytest.fixture
async def api() -> AsyncIterator[TestClient]:
    storage = ObjectStorage(MemoryStore(), admission=RBAC_ADMISSION)
    await bootstrap_namespaces(storage)
    await ensure_bootstrap_policy(storage)
    for name in ("admin", "edit", "view"):  # as the aggregation controller would
        record = await storage.read(CLUSTERROLES, None, name)
        roles = [r.value for r in (await storage.list_records(CLUSTERROLES, None))[0]]
        await storage.store.update(CLUSTERROLES.key(None, name), {
            **record.value, "rules": aggregated_rules(record.value, roles)},
            expected_revision=record.revision)
    app = create_app(storage, token=TOKEN, metrics=ApiMetrics())
    app[READY_KEY].append(True)
    client = TestClient(TestServer(app), headers={"Authorization": f"Bearer {TOKEN}"})
    await client.start_server()
    yield client
    await client.close()


def acting_as(user: str, *groups: str) -> dict[str, Any]:
    return {"Impersonate-User": user, **({"Impersonate-Group": groups[0]} if groups else {})}


async def call(api: TestClient, method: str, path: str, body: Any = None,
               **headers: str) -> tuple[int, dict[str, Any]]:
    response = await api.request(method, path, json=body, headers=headers)
    return response.status, await response.json()


def binding(name: str, role: str, *, kind: str = "ClusterRole", user: str = "",
            account: str = "default") -> dict[str, Any]:
    subject = ({"kind": "User", "apiGroup": "rbac.authorization.k8s.io", "name": user} if user
               else {"kind": "ServiceAccount", "name": account, "namespace": "default"})
    return {"metadata": {"name": name}, "subjects": [subject],
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": kind, "name": role}}


async def test_the_default_cluster_roles_and_bindings_exist_with_their_autoupdate_mark(
        api: TestClient) -> None:
    _, roles = await call(api, "GET", f"{RBAC}/clusterroles")
    names = {r["metadata"]["name"] for r in roles["items"]}
    assert {"cluster-admin", "admin", "edit", "view", "system:discovery", "system:basic-user",
            "system:public-info-viewer"} <= names
    assert all(r["metadata"]["annotations"] == {
        "rbac.authorization.kubernetes.io/autoupdate": "true"} for r in roles["items"])
    _, masters = await call(api, "GET", f"{RBAC}/clusterrolebindings/cluster-admin")
    assert masters["subjects"] == [{"apiGroup": "rbac.authorization.k8s.io", "kind": "Group",
                                    "name": "system:masters"}]


async def test_a_denied_request_gets_kubernetes_forbidden_status(api: TestClient) -> None:
    status, body = await call(api, "GET", "/api/v1/namespaces/default/pods", **acting_as(SA))
    assert status == 403
    assert body == {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                    "message": f'pods is forbidden: User "{SA}" cannot list resource "pods" in '
                               'API group "" in the namespace "default"',
                    "reason": "Forbidden", "details": {"kind": "pods"}, "code": 403}
    status, body = await call(api, "GET", "/apis/apps/v1/namespaces/default/deployments/d/scale",
                              **acting_as("jane"))
    assert body["message"] == (
        'deployments.apps "d" is forbidden: User "jane" cannot get resource "deployments/scale" '
        'in API group "apps" in the namespace "default"')
    assert body["details"] == {"name": "d", "group": "apps", "kind": "deployments"}
    status, body = await call(api, "GET", "/api/v1/nodes", **acting_as("jane"))
    assert body["message"] == ('nodes is forbidden: User "jane" cannot list resource "nodes" '
                               'in API group "" at the cluster scope')
    status, body = await call(api, "GET", "/metrics", **acting_as("jane"))
    assert (status, body["message"], body["details"]) == (
        403, 'forbidden: User "jane" cannot get path "/metrics"', {})


async def test_every_authenticated_user_may_discover_the_api(api: TestClient) -> None:
    for path in ("/api", "/apis", "/api/v1", "/apis/apps/v1", "/version"):
        response = await api.get(path, headers=acting_as("jane"))
        assert response.status == 200, path


async def test_a_role_binding_grants_its_role_in_its_namespace_only(api: TestClient) -> None:
    status, _ = await call(api, "POST", f"{RBAC}/namespaces/default/rolebindings",
                           binding("sa-view", "view"))
    assert status == 201
    assert (await call(api, "GET", "/api/v1/namespaces/default/pods", **acting_as(SA)))[0] == 200
    assert (await call(api, "GET", "/api/v1/namespaces/kube-system/pods",
                       **acting_as(SA)))[0] == 403
    status, body = await call(api, "GET", "/api/v1/namespaces/default/secrets", **acting_as(SA))
    assert status == 403 and body["message"].startswith("secrets is forbidden")


async def test_a_binding_to_a_missing_role_is_the_reason_of_the_denial(api: TestClient) -> None:
    await call(api, "POST", f"{RBAC}/namespaces/default/rolebindings",
               binding("ghostly", "ghost", user="jane"))
    _, body = await call(api, "GET", "/api/v1/namespaces/default/pods", **acting_as("jane"))
    assert body["message"].endswith(
        ': RBAC: clusterrole.rbac.authorization.k8s.io "ghost" not found')


async def test_nobody_grants_permissions_they_do_not_hold(api: TestClient) -> None:
    roles = f"{RBAC}/namespaces/default/roles"
    await call(api, "POST", roles, {"metadata": {"name": "role-writer"}, "rules": [
        {"apiGroups": ["rbac.authorization.k8s.io"], "resources": ["roles", "rolebindings"],
         "verbs": ["create"]},
        {"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list"]}]})
    await call(api, "POST", f"{RBAC}/namespaces/default/rolebindings",
               binding("jane-writes", "role-writer", kind="Role", user="jane"))
    jane = acting_as("jane")
    held = {"metadata": {"name": "ok"}, "rules": [
        {"apiGroups": [""], "resources": ["pods"], "verbs": ["list"]}]}
    assert (await call(api, "POST", roles, held, **jane))[0] == 201
    more = {"metadata": {"name": "more"}, "rules": [
        {"apiGroups": [""], "resources": ["pods", "secrets"], "verbs": ["get", "delete"]}]}
    status, body = await call(api, "POST", roles, more, **jane)
    assert status == 403
    assert body["message"] == (
        'roles.rbac.authorization.k8s.io "more" is forbidden: user "jane" '
        '(groups=["system:authenticated"]) is attempting to grant RBAC permissions not '
        'currently held:\n{APIGroups:[""], Resources:["pods"], Verbs:["delete"]}\n'
        '{APIGroups:[""], Resources:["secrets"], Verbs:["get" "delete"]}')
    status, body = await call(api, "POST", f"{RBAC}/namespaces/default/rolebindings",
                              binding("jane-admin", "admin", user="jane"), **jane)
    assert status == 403 and "is attempting to grant RBAC permissions" in body["message"]
    await call(api, "POST", roles, {"metadata": {"name": "binder"}, "rules": [
        {"apiGroups": ["rbac.authorization.k8s.io"], "resources": ["clusterroles"],
         "verbs": ["bind"], "resourceNames": ["admin"]}]})
    await call(api, "POST", f"{RBAC}/namespaces/default/rolebindings",
               binding("jane-binds", "binder", kind="Role", user="jane"))
    status, _ = await call(api, "POST", f"{RBAC}/namespaces/default/rolebindings",
                           binding("jane-admin", "admin", user="jane"), **jane)
    assert status == 201


async def test_rbac_objects_are_validated_naming_the_field(api: TestClient) -> None:
    status, body = await call(api, "POST", f"{RBAC}/namespaces/default/rolebindings", {
        "metadata": {"name": "bad"}, "roleRef": {"apiGroup": "rbac.authorization.k8s.io",
                                                 "kind": "Secret", "name": "x"},
        "subjects": [{"kind": "ServiceAccount", "name": "default"}]})
    assert status == 422
    assert [c["field"] for c in body["details"]["causes"]] == ["roleRef.kind"]
    status, body = await call(api, "POST", f"{RBAC}/clusterroles", {
        "metadata": {"name": "bad"}, "rules": [{"apiGroups": [""], "resources": ["pods"]}]})
    assert status == 422 and body["details"]["causes"][0] == {
        "reason": "FieldValueRequired", "field": "rules[0].verbs",
        "message": "Required value: verbs must contain at least one value"}


def access_review(verb: str, resource: str, namespace: str = "default") -> dict[str, Any]:
    return {"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview",
            "spec": {"resourceAttributes": {"namespace": namespace, "verb": verb,
                                            "resource": resource}}}


async def test_a_self_subject_access_review_answers_can_i(api: TestClient) -> None:
    review = access_review("list", "secrets")
    status, body = await call(api, "POST", f"{REVIEWS}/selfsubjectaccessreviews", review,
                              **acting_as(SA))
    assert status == 201
    assert body == {**review, "metadata": {"creationTimestamp": None},
                    "status": {"allowed": False}}
    await call(api, "POST", f"{RBAC}/namespaces/default/rolebindings", binding("x", "edit"))
    status, body = await call(api, "POST", f"{REVIEWS}/selfsubjectaccessreviews", review,
                              **acting_as(SA))
    assert body["status"] == {"allowed": True, "reason": 'RBAC: allowed by RoleBinding '
                              '"default/x" of ClusterRole "edit" to ServiceAccount '
                              '"default/default"'}
    status, body = await call(api, "POST", f"{REVIEWS}/selfsubjectaccessreviews",
                              {"spec": {}}, **acting_as(SA))
    assert status == 422 and body["details"]["causes"][0]["field"] == "spec.resourceAttributes"


async def test_a_rules_review_lists_what_the_requester_may_do(api: TestClient) -> None:
    review = {"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectRulesReview",
              "spec": {"namespace": "default"}}
    status, body = await call(api, "POST", f"{REVIEWS}/selfsubjectrulesreviews", review,
                              **acting_as(SA))
    assert status == 201 and body["status"]["incomplete"] is False
    assert {"verbs": ["create"], "apiGroups": ["authorization.k8s.io"], "resources": [
        "selfsubjectaccessreviews", "selfsubjectrulesreviews"]} in body["status"]["resourceRules"]
    public = ["/healthz", "/livez", "/readyz", "/version", "/version/"]
    assert {"verbs": ["get"], "nonResourceURLs": public} in body["status"]["nonResourceRules"]


async def test_a_subject_access_review_asks_about_someone_else(api: TestClient) -> None:
    review = {"kind": "SubjectAccessReview", "apiVersion": "authorization.k8s.io/v1",
              "spec": {"user": "jane", "groups": ["system:masters"],
                       "resourceAttributes": {"verb": "delete", "resource": "nodes"}}}
    status, body = await call(api, "POST", f"{REVIEWS}/subjectaccessreviews", review)
    assert (status, body["status"]) == (201, {"allowed": True})
    status, body = await call(api, "POST", f"{REVIEWS}/subjectaccessreviews", review,
                              **acting_as("jane"))
    assert status == 403
    local = {**review, "kind": "LocalSubjectAccessReview", "spec": {
        "user": "jane", "resourceAttributes": {"verb": "get", "resource": "pods",
                                               "namespace": "other"}}}
    status, body = await call(api, "POST",
                              f"{REVIEWS}/namespaces/default/localsubjectaccessreviews", local)
    assert status == 400


async def robot_token(api: TestClient) -> dict[str, str]:
    """The Authorization header of a new ServiceAccount `robot` in `default`."""
    await call(api, "POST", "/api/v1/namespaces/default/serviceaccounts",
               {"metadata": {"name": "robot"}})
    _, answer = await call(api, "POST", "/api/v1/namespaces/default/serviceaccounts/robot/token",
                           {"kind": "TokenRequest", "apiVersion": "authentication.k8s.io/v1",
                            "spec": {}})
    return {"Authorization": f"Bearer {answer['status']['token']}"}


async def test_impersonation_is_allowed_by_the_impersonate_verb(api: TestClient) -> None:
    robot = await robot_token(api)
    assert (await call(api, "GET", "/api/v1/namespaces/default/pods", **robot))[0] == 403
    await call(api, "POST", f"{RBAC}/namespaces/default/rolebindings",
               binding("robot-edits", "edit", account="robot"))
    await call(api, "POST", f"{RBAC}/namespaces/default/rolebindings", binding("sa-view", "view"))
    status, _ = await call(api, "GET", "/api/v1/namespaces/default/pods",
                           **robot, **acting_as(SA))
    assert status == 200
    status, body = await call(api, "GET", "/api/v1/namespaces/default/pods",
                              **robot, **acting_as("jane"))
    assert status == 403 and body["message"] == (
        'users "jane" is forbidden: User "system:serviceaccount:default:robot" cannot '
        'impersonate resource "users" in API group "" at the cluster scope')


async def test_a_bindings_role_ref_cannot_change(api: TestClient) -> None:
    path = f"{RBAC}/namespaces/default/rolebindings"
    await call(api, "POST", path, binding("fixed", "view"))
    status, body = await call(api, "PATCH", f"{path}/fixed", {"roleRef": {
        "apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "edit"}},
        **{"Content-Type": "application/merge-patch+json"})
    assert status == 422 and body["details"]["causes"][0]["field"] == "roleRef"
    assert body["details"]["causes"][0]["message"].endswith(": cannot change roleRef")


async def test_the_monitoring_group_may_read_metrics(api: TestClient) -> None:
    response = await api.get("/metrics", headers=acting_as("prometheus", "system:monitoring"))
    assert response.status == 200
    assert (await api.get("/metrics", headers=acting_as("prometheus"))).status == 403


async def test_an_aggregation_rule_needs_cluster_admin_even_with_no_rules(
        api: TestClient) -> None:
    await call(api, "POST", f"{RBAC}/clusterroles", {"metadata": {"name": "role-maker"}, "rules": [
        {"apiGroups": ["rbac.authorization.k8s.io"], "resources": ["clusterroles"],
         "verbs": ["create", "update"]}]})
    await call(api, "POST", f"{RBAC}/clusterrolebindings",
               binding("jane-makes", "role-maker", user="jane"))
    gatherer = {"metadata": {"name": "gatherer"}, "rules": [], "aggregationRule": {
        "clusterRoleSelectors": [{"matchLabels": {
            "rbac.authorization.k8s.io/aggregate-to-admin": "true"}}]}}
    status, body = await call(api, "POST", f"{RBAC}/clusterroles", gatherer, **acting_as("jane"))
    assert (status, body["message"]) == (
        403, 'clusterroles.rbac.authorization.k8s.io "gatherer" is forbidden: '
             "must have cluster-admin privileges to use the aggregationRule")
    status, created = await call(api, "POST", f"{RBAC}/clusterroles", gatherer)
    assert status == 201
    created.pop("aggregationRule")
    status, _ = await call(api, "PUT", f"{RBAC}/clusterroles/gatherer", created,
                           **acting_as("jane"))
    assert status == 403


async def test_service_accounts_may_read_the_token_issuers_discovery(api: TestClient) -> None:
    for path in ("/.well-known/openid-configuration", "/openid/v1/jwks"):
        assert (await api.get(path, headers=acting_as(SA))).status == 200, path
        assert (await api.get(path, headers=acting_as("jane"))).status == 403, path


async def test_each_impersonated_extra_value_needs_its_own_permission(api: TestClient) -> None:
    robot = await robot_token(api)
    await call(api, "POST", f"{RBAC}/clusterroles", {"metadata": {"name": "as-anyone"}, "rules": [
        {"apiGroups": [""], "resources": ["users"], "verbs": ["impersonate"]}]})
    await call(api, "POST", f"{RBAC}/clusterrolebindings",
               binding("robot-as-anyone", "as-anyone", account="robot"))
    review = "/apis/authentication.k8s.io/v1/selfsubjectreviews"
    body = {"kind": "SelfSubjectReview", "apiVersion": "authentication.k8s.io/v1"}
    bob = {**robot, "Impersonate-User": "bob"}
    assert (await call(api, "POST", review, body, **bob))[0] == 201
    status, refused = await call(api, "POST", review, body, **bob,
                                 **{"Impersonate-Extra-Scopes": "admin"})
    assert (status, refused["message"]) == (403, (
        'userextras.authentication.k8s.io "admin" is forbidden: User '
        '"system:serviceaccount:default:robot" cannot impersonate resource "userextras/scopes" '
        'in API group "authentication.k8s.io" at the cluster scope'))
    await call(api, "POST", f"{RBAC}/clusterroles", {"metadata": {"name": "scopes"}, "rules": [
        {"apiGroups": ["authentication.k8s.io"], "resources": ["userextras/scopes"],
         "verbs": ["impersonate"], "resourceNames": ["admin"]}]})
    await call(api, "POST", f"{RBAC}/clusterrolebindings",
               binding("robot-scopes", "scopes", account="robot"))
    status, answer = await call(api, "POST", review, body, **bob,
                                **{"Impersonate-Extra-Scopes": "admin"})
    assert status == 201 and answer["status"]["userInfo"]["extra"] == {"scopes": ["admin"]}
