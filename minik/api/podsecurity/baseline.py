"""The baseline checks (`policy/check_*.go` of Kubernetes' pod-security-admission).

Each takes the pod's metadata and spec and answers None (allowed) or the
`Violation` with Kubernetes' reason and detail, word for word.
"""

from __future__ import annotations

from minik.api.podsecurity.visit import (
    JsonObject,
    Violation,
    containers,
    containers_phrase,
    join_quote,
    name_of,
    pluralize,
    quote,
    security_context,
    user_namespaced,
)

ALLOWED_CAPABILITIES = frozenset({
    "AUDIT_WRITE", "CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "KILL", "MKNOD",
    "NET_BIND_SERVICE", "SETFCAP", "SETGID", "SETPCAP", "SETUID", "SYS_CHROOT",
})
SAFE_SYSCTLS = frozenset({
    "kernel.shm_rmid_forced", "net.ipv4.ip_local_port_range", "net.ipv4.tcp_syncookies",
    "net.ipv4.ping_group_range", "net.ipv4.ip_unprivileged_port_start",
})
SELINUX_TYPES = frozenset({"", "container_t", "container_init_t", "container_kvm_t"})
APPARMOR_PREFIX = "container.apparmor.security.beta.kubernetes.io/"
SECCOMP_POD_ANNOTATION = "seccomp.security.alpha.kubernetes.io/pod"
SECCOMP_CONTAINER_PREFIX = "container.seccomp.security.alpha.kubernetes.io/"


def setters(pod_bad: bool, bad_containers: list[str]) -> str:
    """`pod`, `container "c"` or `pod and containers "a", "b"`."""
    parts = ["pod"] if pod_bad else []
    if bad_containers:
        parts.append(containers_phrase(bad_containers))
    return " and ".join(parts)


def app_armor_profile(metadata: JsonObject, spec: JsonObject) -> Violation | None:
    bad = sorted(
        f"{key}={quote(str(value))}"
        for key, value in (metadata.get("annotations") or {}).items()
        if key.startswith(APPARMOR_PREFIX)
        and not (not value or value == "runtime/default" or str(value).startswith("localhost/"))
    )
    if not bad:
        return None
    reason = pluralize("forbidden AppArmor profile", "forbidden AppArmor profiles", len(bad))
    return Violation(reason, ", ".join(bad))


def host_namespaces(metadata: JsonObject, spec: JsonObject) -> Violation | None:
    used = sorted(key for key in ("hostNetwork", "hostPID", "hostIPC") if spec.get(key) is True)
    return Violation("host namespaces", ", ".join(used)) if used else None


def host_ports(metadata: JsonObject, spec: JsonObject) -> Violation | None:
    bad: list[str] = []
    ports: set[str] = set()
    for container in containers(spec):
        used = [str(p["hostPort"]) for p in container.get("ports") or []
                if isinstance(p, dict) and p.get("hostPort")]
        if used:
            bad.append(name_of(container))
            ports.update(used)
    if not bad:
        return None
    return Violation("hostPort", (
        f'{containers_phrase(bad)} {pluralize("uses", "use", len(bad))} '
        f'{pluralize("hostPort", "hostPorts", len(ports))} {", ".join(sorted(ports))}'))


def _probe_hosts(handler: object) -> list[str]:
    if not isinstance(handler, dict):
        return []
    return [str(handler[kind]["host"]) for kind in ("httpGet", "tcpSocket")
            if isinstance(handler.get(kind), dict) and handler[kind].get("host")]


def host_probes_and_lifecycle(metadata: JsonObject, spec: JsonObject) -> Violation | None:
    bad: set[str] = set()
    hosts: set[str] = set()
    for container in containers(spec):
        lifecycle = container.get("lifecycle") or {}
        found = [host for probe in ("livenessProbe", "readinessProbe", "startupProbe")
                 for host in _probe_hosts(container.get(probe))]
        found += [host for hook in ("postStart", "preStop")
                  for host in _probe_hosts(lifecycle.get(hook))]
        if found:
            bad.add(name_of(container))
            hosts.update(found)
    if not bad:
        return None
    return Violation("probe or lifecycle host", (
        f'{containers_phrase(sorted(bad))} {pluralize("uses", "use", len(bad))} '
        f'{pluralize("probe or lifecycle host", "probe or lifecycle hosts", len(hosts))} '
        f'{join_quote(sorted(hosts))}'))


def privileged(metadata: JsonObject, spec: JsonObject) -> Violation | None:
    bad = [name_of(c) for c in containers(spec) if security_context(c).get("privileged") is True]
    if not bad:
        return None
    return Violation("privileged",
                     f"{containers_phrase(bad)} must not set securityContext.privileged=true")


def _proc_mount(spec: JsonObject, *, relax_user_namespaces: bool) -> Violation | None:
    if relax_user_namespaces and user_namespaced(spec):
        return None
    bad: list[str] = []
    types: set[str] = set()
    for container in containers(spec):
        mount = security_context(container).get("procMount")
        if mount is not None and mount != "Default":
            bad.append(name_of(container))
            types.add(str(mount))
    if not bad:
        return None
    return Violation("procMount", f"{containers_phrase(bad)} must not set "
                                  f"securityContext.procMount to {join_quote(sorted(types))}")


def proc_mount_1_0(metadata: JsonObject, spec: JsonObject) -> Violation | None:
    return _proc_mount(spec, relax_user_namespaces=False)


def proc_mount_1_34(metadata: JsonObject, spec: JsonObject) -> Violation | None:
    return _proc_mount(spec, relax_user_namespaces=True)


def se_linux_options(metadata: JsonObject, spec: JsonObject) -> Violation | None:
    bad_types: set[str] = set()
    flags = {"user": False, "role": False}

    def valid(options: object) -> bool:
        if not isinstance(options, dict):
            return True
        ok = True
        if str(options.get("type") or "") not in SELINUX_TYPES:
            ok = False
            bad_types.add(str(options.get("type")))
        for key in flags:
            if options.get(key):
                ok, flags[key] = False, True
        return ok

    pod_bad = not valid(security_context(spec).get("seLinuxOptions"))
    bad = [name_of(c) for c in containers(spec)
           if not valid(security_context(c).get("seLinuxOptions"))]
    if not pod_bad and not bad:
        return None
    data: list[str] = []
    if bad_types:  # as Kubernetes: user and role are named only beside a bad type
        data.append(f'{pluralize("type", "types", len(bad_types))} '
                    f'{join_quote(sorted(bad_types))}')
        data += [f"{key} may not be set" for key, set_ in flags.items() if set_]
    return Violation("seLinuxOptions", f"{setters(pod_bad, bad)} set forbidden "
                                       f"securityContext.seLinuxOptions: {'; '.join(data)}")


def sysctls(metadata: JsonObject, spec: JsonObject) -> Violation | None:
    bad = [str(s.get("name")) for s in security_context(spec).get("sysctls") or []
           if isinstance(s, dict) and s.get("name") not in SAFE_SYSCTLS]
    return Violation("forbidden sysctls", ", ".join(bad)) if bad else None


def windows_host_process(metadata: JsonObject, spec: JsonObject) -> Violation | None:
    def host_process(obj: JsonObject) -> bool:
        options = security_context(obj).get("windowsOptions")
        return isinstance(options, dict) and options.get("hostProcess") is True

    bad = [name_of(c) for c in containers(spec) if host_process(c)]
    pod_bad = host_process(spec)
    if not pod_bad and not bad:
        return None
    return Violation("hostProcess", f"{setters(pod_bad, bad)} must not set "
                                    "securityContext.windowsOptions.hostProcess=true")


def capabilities_baseline(metadata: JsonObject, spec: JsonObject) -> Violation | None:
    bad: list[str] = []
    added: set[str] = set()
    for container in containers(spec):
        capabilities = security_context(container).get("capabilities") or {}
        extra = [str(c) for c in capabilities.get("add") or [] if c not in ALLOWED_CAPABILITIES]
        if extra:
            bad.append(name_of(container))
            added.update(extra)
    if not bad:
        return None
    return Violation("non-default capabilities", f"{containers_phrase(bad)} must not include "
                     f"{join_quote(sorted(added))} in securityContext.capabilities.add")


def host_path_volumes(metadata: JsonObject, spec: JsonObject) -> Violation | None:
    bad = [str(v.get("name")) for v in spec.get("volumes") or []
           if isinstance(v, dict) and v.get("hostPath") is not None]
    if not bad:
        return None
    return Violation("hostPath volumes",
                     f'{pluralize("volume", "volumes", len(bad))} {join_quote(bad)}')


def _seccomp_annotation_ok(value: str) -> bool:
    return value in ("runtime/default", "docker/default") or value.startswith("localhost/")


def seccomp_baseline_1_0(metadata: JsonObject, spec: JsonObject) -> Violation | None:
    annotations = metadata.get("annotations") or {}
    keys = [SECCOMP_POD_ANNOTATION] + [SECCOMP_CONTAINER_PREFIX + name_of(c)
                                       for c in containers(spec)]
    bad = sorted({f"{key}={quote(str(annotations[key]))}" for key in keys
                  if key in annotations and not _seccomp_annotation_ok(str(annotations[key]))})
    if not bad:
        return None
    noun = pluralize("annotation", "annotations", len(bad))
    return Violation("seccompProfile", f'forbidden {noun} {", ".join(bad)}')


def seccomp_type(obj: JsonObject) -> str | None:
    """The seccompProfile.type set on a pod or container, or None when unset."""
    profile = security_context(obj).get("seccompProfile")
    return str(profile.get("type")) if isinstance(profile, dict) else None


def seccomp_valid(kind: str | None) -> bool:
    return kind in ("RuntimeDefault", "Localhost")


def seccomp_baseline_1_19(metadata: JsonObject, spec: JsonObject) -> Violation | None:
    values: set[str] = set()
    pod_type = seccomp_type(spec)
    pod_bad = pod_type is not None and not seccomp_valid(pod_type)
    if pod_bad:
        values.add(str(pod_type))
    bad: list[str] = []
    for container in containers(spec):
        kind = seccomp_type(container)
        if kind is not None and not seccomp_valid(kind):
            bad.append(name_of(container))
            values.add(kind)
    if not pod_bad and not bad:
        return None
    return Violation("seccompProfile", f"{setters(pod_bad, bad)} must not set "
                     f"securityContext.seccompProfile.type to {join_quote(sorted(values))}")
