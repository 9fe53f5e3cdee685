"""RBAC with the real kubectl: `auth can-i` (yes/no, --as, --list), bindings that grant,
roles and bindings as `kubectl get` prints them, escalation refused, aggregation."""

from __future__ import annotations

import json

import pytest

from tests.e2e.cluster import Cluster, eventually

pytestmark = pytest.mark.e2e

KUBECTL_1_27 = "/usr/lib/google-cloud-sdk/bin/kubectl.1.27"


def kubectl_1_27(cluster: Cluster, *args: str, check: bool = True):  # type: ignore[no-untyped-def]
    return cluster.run([KUBECTL_1_27, "--kubeconfig", str(cluster.kubeconfig), *args],
                       check=check, input=None, timeout=60)


def test_can_i_says_no_until_a_binding_grants_edit(cluster: Cluster, namespace: str) -> None:
    account = f"--as=system:serviceaccount:{namespace}:default"
    ask = ("auth", "can-i", "list", "secrets", "-n", namespace, account)
    for answer in (cluster.kubectl(*ask, check=False), kubectl_1_27(cluster, *ask, check=False)):
        assert (answer.returncode, answer.stdout.strip()) == (1, "no")
    cluster.kubectl("create", "rolebinding", "x", "--clusterrole=edit",
                    f"--serviceaccount={namespace}:default", "-n", namespace)
    for answer in (cluster.kubectl(*ask, check=False), kubectl_1_27(cluster, *ask, check=False)):
        assert (answer.returncode, answer.stdout.strip()) == (0, "yes")
    other = cluster.kubectl("auth", "can-i", "list", "secrets", "-n", "default", account,
                            check=False)
    assert other.stdout.strip() == "no"
    assert cluster.kubectl("auth", "can-i", "create", "pods").stdout.strip() == "yes"


def test_can_i_list_shows_the_rules_of_the_subject(cluster: Cluster, namespace: str) -> None:
    account = f"--as=system:serviceaccount:{namespace}:default"
    before = cluster.kubectl("auth", "can-i", "--list", "-n", namespace, account).stdout
    header = before.splitlines()[0].split()
    assert header == ["Resources", "Non-Resource", "URLs", "Resource", "Names", "Verbs"]
    assert "selfsubjectaccessreviews.authorization.k8s.io" in before
    assert "[/version]" in before and "pods " not in before
    cluster.kubectl("create", "rolebinding", "view", "--clusterrole=view",
                    f"--serviceaccount={namespace}:default", "-n", namespace)
    after = cluster.kubectl("auth", "can-i", "--list", "-n", namespace, account).stdout
    pods = next(line for line in after.splitlines() if line.startswith("pods "))
    assert pods.split()[-3:] == ["[get", "list", "watch]"]
    older = kubectl_1_27(cluster, "auth", "can-i", "--list", "-n", namespace, account).stdout
    assert any(line.startswith("pods ") for line in older.splitlines())
    admin = cluster.kubectl("auth", "can-i", "--list").stdout
    assert any(line.split()[:1] == ["*.*"] for line in admin.splitlines())


def test_whoami_names_the_user_and_the_impersonated_one(cluster: Cluster) -> None:
    assert "minik-admin" in cluster.kubectl("auth", "whoami").stdout
    acting = cluster.kubectl("auth", "whoami", "--as=system:serviceaccount:default:default",
                             "-o", "json").stdout
    assert json.loads(acting)["status"]["userInfo"]["username"] == \
        "system:serviceaccount:default:default"


def test_roles_and_bindings_print_as_kubernetes_prints_them(cluster: Cluster,
                                                           namespace: str) -> None:
    cluster.kubectl("create", "role", "reader", "--verb=get,list", "--resource=pods",
                    "-n", namespace)
    cluster.kubectl("create", "rolebinding", "readers", "--role=reader", "--user=jane",
                    "--group=devs", f"--serviceaccount={namespace}:default", "-n", namespace)
    roles = cluster.kubectl("get", "roles", "-n", namespace).stdout.splitlines()
    assert roles[0].split() == ["NAME", "CREATED", "AT"]
    assert roles[1].split()[0] == "reader" and roles[1].split()[1].endswith("Z")
    wide = cluster.kubectl("get", "rolebindings", "readers", "-n", namespace,
                           "-o", "wide").stdout.splitlines()
    assert wide[0].split() == ["NAME", "ROLE", "AGE", "USERS", "GROUPS", "SERVICEACCOUNTS"]
    cells = wide[1].split()
    assert cells[:2] == ["readers", "Role/reader"]
    assert cells[3:] == ["jane", "devs", f"{namespace}/default"]
    role = json.loads(cluster.kubectl("get", "role", "reader", "-n", namespace,
                                      "-o", "json").stdout)
    assert role["rules"] == [{"verbs": ["get", "list"], "apiGroups": [""],
                              "resources": ["pods"]}]
    bad = {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
           "metadata": {"name": "bad"}, "subjects": [{"kind": "ServiceAccount", "name": "x"}],
           "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "r"}}
    refused = cluster.kubectl("apply", "-f", "-", input=json.dumps(bad), check=False)
    assert refused.returncode != 0
    assert ('The ClusterRoleBinding "bad" is invalid: \n'
            '* roleRef.kind: Unsupported value: "Role": supported values: "ClusterRole"\n'
            '* subjects[0].namespace: Required value\n') in refused.stderr


def test_a_namespace_admin_cannot_grant_what_they_do_not_hold(cluster: Cluster,
                                                              namespace: str) -> None:
    cluster.kubectl("create", "rolebinding", "boss", "--clusterrole=admin",
                    f"--serviceaccount={namespace}:default", "-n", namespace)
    token = cluster.kubectl("create", "token", "default", "-n", namespace).stdout.strip()
    allowed = cluster.kubectl("--token", token, "create", "rolebinding", "editors",
                              "--clusterrole=edit", "--user=jane", "-n", namespace)
    assert allowed.returncode == 0
    refused = cluster.kubectl("--token", token, "create", "rolebinding", "root",
                              "--clusterrole=cluster-admin", "--user=jane", "-n", namespace,
                              check=False)
    assert refused.returncode != 0
    assert ('rolebindings.rbac.authorization.k8s.io "root" is forbidden: user '
            f'"system:serviceaccount:{namespace}:default"') in refused.stderr
    assert "is attempting to grant RBAC permissions not currently held" in refused.stderr
    nodes = cluster.kubectl("--token", token, "get", "nodes", check=False)
    assert (f'nodes is forbidden: User "system:serviceaccount:{namespace}:default" cannot '
            'list resource "nodes" in API group "" at the cluster scope') in nodes.stderr


def test_a_cluster_role_labelled_to_aggregate_extends_view(cluster: Cluster) -> None:
    manifest = {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
                "metadata": {"name": "widget-viewer", "labels": {
                    "rbac.authorization.k8s.io/aggregate-to-view": "true"}},
                "rules": [{"apiGroups": ["example.com"], "resources": ["widgets"],
                           "verbs": ["get"]}]}
    cluster.kubectl("apply", "-f", "-", input=json.dumps(manifest))

    def aggregated(name: str) -> bool:
        role = json.loads(cluster.kubectl("get", "clusterrole", name, "-o", "json").stdout)
        return manifest["rules"][0] in (role.get("rules") or [])

    for name in ("view", "edit", "admin"):
        eventually(lambda name=name: aggregated(name), what=f"{name} aggregating widgets")
    cluster.kubectl("delete", "clusterrole", "widget-viewer")
    eventually(lambda: not aggregated("view"), what="view without widgets")
