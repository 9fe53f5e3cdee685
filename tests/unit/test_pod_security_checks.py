"""The Pod Security Standards checks: each level's and version's verdicts, in Kubernetes' words."""

from __future__ import annotations

import pytest

from minik.api.podsecurity.evaluate import evaluate, forbidden_detail
from minik.api.podsecurity.policy import LATEST, LevelVersion, policy_from_labels

RESTRICTED_OK = {"allowPrivilegeEscalation": False, "runAsNonRoot": True,
                 "capabilities": {"drop": ["ALL"]}, "seccompProfile": {"type": "RuntimeDefault"}}


def pod(container: dict | None = None, *, annotations: dict | None = None, **spec: object):
    c = {"name": "c", "image": "minik/busybox:1.35", **(container or {})}
    return {"annotations": annotations or {}}, {"containers": [c], **spec}


def sc(**context: object) -> dict:
    return {"securityContext": context}


def detail(level: str, metadata_spec: tuple, minor: int = LATEST) -> str:
    return forbidden_detail(evaluate(LevelVersion(level, minor), *metadata_spec))


BASELINE_CASES = [
    ("a plain pod", pod(), ""),
    ("privileged", pod(sc(privileged=True)),
     'privileged (container "c" must not set securityContext.privileged=true)'),
    ("host namespaces", pod(hostNetwork=True, hostPID=True),
     "host namespaces (hostNetwork, hostPID)"),
    ("host ports", pod({"ports": [{"containerPort": 80, "hostPort": 8080}]}),
     'hostPort (container "c" uses hostPort 8080)'),
    ("non-default capabilities", pod(sc(capabilities={"add": ["NET_ADMIN", "CHOWN"]})),
     'non-default capabilities (container "c" must not include "NET_ADMIN" in '
     "securityContext.capabilities.add)"),
    ("hostPath volumes", pod(volumes=[{"name": "h", "hostPath": {"path": "/"}}]),
     'hostPath volumes (volume "h")'),
    ("AppArmor", pod(annotations={"container.apparmor.security.beta.kubernetes.io/c":
                                  "unconfined"}),
     'forbidden AppArmor profile (container.apparmor.security.beta.kubernetes.io/c='
     '"unconfined")'),
    ("SELinux", pod(sc(seLinuxOptions={"type": "spc_t", "user": "u"})),
     'seLinuxOptions (container "c" set forbidden securityContext.seLinuxOptions: '
     'type "spc_t"; user may not be set)'),
    ("procMount", pod(sc(procMount="Unmasked")),
     'procMount (container "c" must not set securityContext.procMount to "Unmasked")'),
    ("seccomp Unconfined", pod(securityContext={"seccompProfile": {"type": "Unconfined"}}),
     'seccompProfile (pod must not set securityContext.seccompProfile.type to "Unconfined")'),
    ("sysctls", pod(securityContext={"sysctls": [{"name": "kernel.msgmax", "value": "1"},
                                                 {"name": "net.ipv4.tcp_syncookies"}]}),
     "forbidden sysctls (kernel.msgmax)"),
    ("hostProcess", pod(sc(windowsOptions={"hostProcess": True})),
     'hostProcess (container "c" must not set securityContext.windowsOptions.hostProcess=true)'),
    ("probe host", pod({"livenessProbe": {"httpGet": {"host": "10.0.0.1", "port": 80}}}),
     'probe or lifecycle host (container "c" uses probe or lifecycle host "10.0.0.1")'),
]


@pytest.mark.parametrize(("case", "spec", "expected"), BASELINE_CASES,
                         ids=[c[0] for c in BASELINE_CASES])
def test_each_baseline_check_refuses_what_kubernetes_refuses(case, spec, expected):
    assert detail("baseline", spec) == expected


RESTRICTED_CASES = [
    ("a compliant pod", pod(sc(**RESTRICTED_OK)), ""),
    ("a compliant pod with pod-level settings",
     pod(sc(allowPrivilegeEscalation=False, capabilities={"drop": ["ALL"],
                                                          "add": ["NET_BIND_SERVICE"]}),
         securityContext={"runAsNonRoot": True, "seccompProfile": {"type": "Localhost"}}), ""),
    ("a plain pod", pod(),
     'allowPrivilegeEscalation != false (container "c" must set '
     "securityContext.allowPrivilegeEscalation=false), unrestricted capabilities (container "
     '"c" must set securityContext.capabilities.drop=["ALL"]), runAsNonRoot != true (pod or '
     'container "c" must set securityContext.runAsNonRoot=true), seccompProfile (pod or '
     'container "c" must set securityContext.seccompProfile.type to "RuntimeDefault" or '
     '"Localhost")'),
    ("capabilities added", pod(sc(**{**RESTRICTED_OK, "capabilities": {
        "drop": ["ALL"], "add": ["CHOWN"]}})),
     'unrestricted capabilities (container "c" must not include "CHOWN" in '
     "securityContext.capabilities.add)"),
    ("volume types", pod(sc(**RESTRICTED_OK), volumes=[
        {"name": "h", "hostPath": {"path": "/"}}, {"name": "e", "emptyDir": {}},
        {"name": "n", "nfs": {"server": "s", "path": "/"}}]),
     'restricted volume types (volumes ["h" "n"] have restricted types)'),
    ("runAsNonRoot false", pod(sc(**{**RESTRICTED_OK, "runAsNonRoot": False})),
     'runAsNonRoot != true (container "c" must not set securityContext.runAsNonRoot=false)'),
    ("runAsUser 0", pod(sc(**RESTRICTED_OK), securityContext={"runAsUser": 0}),
     "runAsUser=0 (pod must not set runAsUser=0)"),
    ("seccomp Unconfined", pod(sc(**{**RESTRICTED_OK, "seccompProfile": {
        "type": "Unconfined"}})),
     'seccompProfile (container "c" must not set securityContext.seccompProfile.type to '
     '"Unconfined")'),
]


@pytest.mark.parametrize(("case", "spec", "expected"), RESTRICTED_CASES,
                         ids=[c[0] for c in RESTRICTED_CASES])
def test_each_restricted_check_refuses_what_kubernetes_refuses(case, spec, expected):
    assert detail("restricted", spec) == expected


def test_baseline_checks_run_before_restricted_ones_in_a_restricted_verdict():
    assert detail("restricted", pod(sc(**{**RESTRICTED_OK, "privileged": True,
                                          "allowPrivilegeEscalation": True}))) == (
        'privileged (container "c" must not set securityContext.privileged=true), '
        'allowPrivilegeEscalation != false (container "c" must set '
        "securityContext.allowPrivilegeEscalation=false)")


def test_older_versions_run_only_the_checks_that_existed_then():
    plain = pod()
    assert "unrestricted capabilities" not in detail("restricted", plain, 21)
    assert "seccompProfile" not in detail("restricted", plain, 18)
    assert "allowPrivilegeEscalation" not in detail("restricted", plain, 7)
    probing = pod({"livenessProbe": {"tcpSocket": {"host": "h", "port": 1}}})
    assert detail("baseline", probing, 33) == ""
    assert detail("baseline", probing, 34) != ""
    annotated = pod(annotations={"seccomp.security.alpha.kubernetes.io/pod": "unconfined"})
    assert detail("baseline", annotated, 18) == (
        'seccompProfile (forbidden annotation seccomp.security.alpha.kubernetes.io/pod='
        '"unconfined")')
    assert detail("baseline", annotated, 19) == ""


def test_user_namespaced_pods_may_run_as_root_from_1_34():
    userns = pod(sc(**{k: v for k, v in RESTRICTED_OK.items() if k != "runAsNonRoot"}),
                 hostUsers=False)
    assert detail("restricted", userns) == ""
    assert "runAsNonRoot" in detail("restricted", userns, 33)


def test_privileged_allows_everything():
    assert detail("privileged", pod(sc(privileged=True), hostNetwork=True)) == ""


@pytest.mark.parametrize(("labels", "enforce", "warn", "problems"), [
    ({}, "privileged:latest", "privileged:latest", []),
    ({"pod-security.kubernetes.io/enforce": "restricted"}, "restricted:latest",
     "restricted:latest", []),
    ({"pod-security.kubernetes.io/enforce": "baseline",
      "pod-security.kubernetes.io/enforce-version": "v1.25"}, "baseline:v1.25",
     "baseline:v1.25", []),
    ({"pod-security.kubernetes.io/enforce": "baseline",
      "pod-security.kubernetes.io/warn": "restricted"}, "baseline:latest",
     "restricted:latest", []),
    ({"pod-security.kubernetes.io/enforce": "strict"}, "restricted:latest",
     "privileged:latest", ["must be one of privileged, baseline, restricted"]),
    ({"pod-security.kubernetes.io/warn-version": "1.25"}, "privileged:latest",
     "privileged:latest", ['must be "latest" or "v1.x"']),
])
def test_namespace_labels_choose_the_policy_as_kubernetes_reads_them(labels, enforce, warn,
                                                                     problems):
    policy, errors = policy_from_labels(labels)
    assert (str(policy.enforce), str(policy.warn)) == (enforce, warn)
    assert [e.message for e in errors] == problems
