"""Describing pods and pod templates: containers, probes, volumes, QoS.

Line for line the layout of kubectl's `describePod`, `describeContainers`,
`describeVolumes` and `DescribePodTemplate`, so that a pod, and the template
inside a Deployment, ReplicaSet or StatefulSet, read the same in minik and
in kubectl.
"""

from __future__ import annotations

from typing import Any

from minik.cli.describe import (
    Described,
    PrefixWriter,
    annotations_multiline,
    describe_events,
    labels_multiline,
    rfc1123z,
    since,
)

PROBES = (("livenessProbe", "Liveness"), ("readinessProbe", "Readiness"),
          ("startupProbe", "Startup"))


def ports_text(ports: list[dict[str, Any]], key: str) -> str:
    return ", ".join(f"{p.get(key, 0)}/{p.get('protocol', '')}" for p in ports)


def describe_probe(probe: dict[str, Any]) -> str:
    attrs = (f"delay={probe.get('initialDelaySeconds', 0)}s "
             f"timeout={probe.get('timeoutSeconds', 0)}s period={probe.get('periodSeconds', 0)}s "
             f"#success={probe.get('successThreshold', 0)} "
             f"#failure={probe.get('failureThreshold', 0)}")
    if "exec" in probe:
        return f"exec [{' '.join((probe['exec'] or {}).get('command') or [])}] {attrs}"
    if "httpGet" in probe:
        get = probe["httpGet"] or {}
        host, port = get.get("host", ""), get.get("port", "")
        hostport = f"{host}:{port}" if str(port) else host
        return f"http-get {str(get.get('scheme', 'HTTP')).lower()}://{hostport}" \
               f"{get.get('path', '')} {attrs}"
    if "tcpSocket" in probe:
        sock = probe["tcpSocket"] or {}
        return f"tcp-socket {sock.get('host', '')}:{sock.get('port', '')} {attrs}"
    if "grpc" in probe:
        grpc = probe["grpc"] or {}
        return f"grpc <pod>:{grpc.get('port', 0)} {grpc.get('service', '')} {attrs}"
    return f"unknown {attrs}"


def describe_state(w: PrefixWriter, title: str, state: dict[str, Any]) -> None:
    if "running" in state:
        w.write(2, f"{title}:\tRunning\n")
        w.write(3, f"Started:\t{rfc1123z((state['running'] or {}).get('startedAt'))}\n")
    elif "waiting" in state:
        w.write(2, f"{title}:\tWaiting\n")
        if (state["waiting"] or {}).get("reason"):
            w.write(3, f"Reason:\t{state['waiting']['reason']}\n")
    elif "terminated" in state:
        t = state["terminated"] or {}
        w.write(2, f"{title}:\tTerminated\n")
        if t.get("reason"):
            w.write(3, f"Reason:\t{t['reason']}\n")
        if t.get("message"):
            w.write(3, f"Message:\t{t['message']}\n")
        w.write(3, f"Exit Code:\t{t.get('exitCode', 0)}\n")
        if t.get("signal"):
            w.write(3, f"Signal:\t{t['signal']}\n")
        w.write(3, f"Started:\t{rfc1123z(t.get('startedAt'))}\n")
        w.write(3, f"Finished:\t{rfc1123z(t.get('finishedAt'))}\n")
    else:
        w.write(2, f"{title}:\tWaiting\n")


def describe_resources(w: PrefixWriter, resources: dict[str, Any], level: int) -> None:
    for key, title in (("limits", "Limits"), ("requests", "Requests")):
        values = resources.get(key) or {}
        if values:
            w.write(level, f"{title}:\n")
        for name in sorted(values):
            w.write(level + 1, f"{name}:\t{values[name]}\n")


FIELD_PATHS = {"metadata.name": ("metadata", "name"),
               "metadata.namespace": ("metadata", "namespace"),
               "metadata.uid": ("metadata", "uid"), "spec.nodeName": ("spec", "nodeName"),
               "spec.serviceAccountName": ("spec", "serviceAccountName"),
               "status.hostIP": ("status", "hostIP"), "status.podIP": ("status", "podIP")}


def field_value(pod: dict[str, Any] | None, path: str) -> str:
    """The value a pod's `fieldRef` resolves to, as kubectl shows it beside the path."""
    value: Any = pod
    for key in FIELD_PATHS.get(path, ()) if pod else ():
        value = (value or {}).get(key)
    return str(value) if pod and isinstance(value, str) else ""


def describe_env(w: PrefixWriter, container: dict[str, Any],
                 pod: dict[str, Any] | None = None) -> None:
    if container.get("envFrom"):
        w.write(2, "Environment Variables from:\n")
        for source in container["envFrom"]:
            ref, kind = ((source.get("configMapRef"), "ConfigMap") if source.get("configMapRef")
                         else (source.get("secretRef") or {}, "Secret"))
            optional = "true" if ref.get("optional") else "false"
            prefix = f" with prefix '{source['prefix']}'" if source.get("prefix") else ""
            w.write(3, f"{ref.get('name', '')}\t{kind}{prefix}\tOptional: {optional}\n")
    env = container.get("env") or []
    w.write(2, "Environment:\n" if env else "Environment:\t<none>\n")
    for var in env:
        w.write(3, _env_line(var, pod))


def _env_line(var: dict[str, Any], pod: dict[str, Any] | None) -> str:
    name, source = var.get("name", ""), var.get("valueFrom")
    if not source:
        first, *rest = str(var.get("value", "")).split("\n")
        return f"{name}:\t{first}\n" + "".join(f"      \t{line}\n" for line in rest)
    if "fieldRef" in source:
        ref = source["fieldRef"] or {}
        path = ref.get("fieldPath", "")
        return f"{name}:\t{field_value(pod, path)} ({ref.get('apiVersion', 'v1')}:{path})\n"
    if "resourceFieldRef" in source:
        return f"{name}:\t ({(source['resourceFieldRef'] or {}).get('resource', '')})\n"
    for key, words in (("secretKeyRef", "in secret"), ("configMapKeyRef", "of config map")):
        if key in source:
            ref = source[key] or {}
            optional = "true" if ref.get("optional") else "false"
            return (f"{name}:\t<set to the key '{ref.get('key', '')}' {words} "
                    f"'{ref.get('name', '')}'>\tOptional: {optional}\n")
    return f"{name}:\t\n"


def describe_mounts(w: PrefixWriter, container: dict[str, Any]) -> None:
    mounts = sorted(container.get("volumeMounts") or [], key=lambda m: m.get("mountPath", ""))
    w.write(2, "Mounts:\n" if mounts else "Mounts:\t<none>\n")
    for m in mounts:
        flags = ["ro" if m.get("readOnly") else "rw"]
        if m.get("subPath"):
            flags.append(f'path="{m["subPath"]}"')
        w.write(3, f"{m.get('mountPath', '')} from {m.get('name', '')} ({','.join(flags)})\n")


def describe_containers(w: PrefixWriter, label: str, containers: list[dict[str, Any]],
                        statuses: list[dict[str, Any]] | None, space: str = "",
                        pod: dict[str, Any] | None = None) -> None:
    by_name = {s.get("name"): s for s in statuses or []}
    w.write(0, f"{space}{label}:{'' if containers else ' <none>'}\n")
    for c in containers:
        status = by_name.get(c.get("name"))
        w.write(1, f"{' ' if space else ''}{c.get('name', '')}:\n")
        if status is not None:
            w.write(2, f"Container ID:\t{status.get('containerID', '')}\n")
        w.write(2, f"Image:\t{c.get('image', '')}\n")
        if status is not None:
            w.write(2, f"Image ID:\t{status.get('imageID', '')}\n")
        for key, title in (("containerPort", "Port"), ("hostPort", "Host Port")):
            text = ports_text(c.get("ports") or [], key)
            plural = "," in text
            w.write(2, f"{title.replace('Port', 'Ports') if plural else title}:\t"
                       f"{text or '<none>'}\n")
        for key, title in (("command", "Command"), ("args", "Args")):
            if c.get(key):
                w.write(2, f"{title}:\n")
                for part in c[key]:
                    for line in str(part).split("\n"):
                        w.write(3, f"{line}\n")
        if status is not None:
            describe_state(w, "State", status.get("state") or {})
            if (status.get("lastState") or {}).get("terminated"):
                describe_state(w, "Last State", status["lastState"])
            w.write(2, f"Ready:\t{'True' if status.get('ready') else 'False'}\n")
            w.write(2, f"Restart Count:\t{status.get('restartCount', 0)}\n")
        describe_resources(w, c.get("resources") or {}, 2)
        for key, title in PROBES:
            if c.get(key):
                w.write(2, f"{title}:\t{describe_probe(c[key])}\n")
        describe_env(w, c, pod)
        describe_mounts(w, c)


def _volume_lines(volume: dict[str, Any]) -> list[str]:
    def flag(source: dict[str, Any], key: str) -> str:
        return "true" if source.get(key) else "false"

    if "emptyDir" in volume:
        v = volume["emptyDir"] or {}
        return ["Type:\tEmptyDir (a temporary directory that shares a pod's lifetime)",
                f"    Medium:\t{v.get('medium', '')}",
                f"    SizeLimit:\t{v.get('sizeLimit') or '<unset>'}"]
    if "hostPath" in volume:
        v = volume["hostPath"] or {}
        return ["Type:\tHostPath (bare host directory volume)", f"    Path:\t{v.get('path', '')}",
                f"    HostPathType:\t{v.get('type') or '<none>'}"]
    if "configMap" in volume:
        v = volume["configMap"] or {}
        return ["Type:\tConfigMap (a volume populated by a ConfigMap)",
                f"    Name:\t{v.get('name', '')}", f"    Optional:\t{flag(v, 'optional')}"]
    if "secret" in volume:
        v = volume["secret"] or {}
        return ["Type:\tSecret (a volume populated by a Secret)",
                f"    SecretName:\t{v.get('secretName', '')}",
                f"    Optional:\t{flag(v, 'optional')}"]
    if "persistentVolumeClaim" in volume:
        v = volume["persistentVolumeClaim"] or {}
        return ["Type:\tPersistentVolumeClaim (a reference to a PersistentVolumeClaim in the "
                "same namespace)", f"    ClaimName:\t{v.get('claimName', '')}",
                f"    ReadOnly:\t{flag(v, 'readOnly')}"]
    if "downwardAPI" in volume:
        items = (volume["downwardAPI"] or {}).get("items") or []
        return ["Type:\tDownwardAPI (a volume populated by information about the pod)",
                "    Items:"] + [f"      {_downward_source(i)} -> {i.get('path', '')}"
                               for i in items]
    return ["<unknown>"]


def _downward_source(item: dict[str, Any]) -> str:
    if item.get("fieldRef"):
        return str(item["fieldRef"].get("fieldPath", ""))
    return str((item.get("resourceFieldRef") or {}).get("resource", ""))


def describe_volumes(w: PrefixWriter, volumes: list[dict[str, Any]], space: str = "") -> None:
    if not volumes:
        w.write(0, f"{space}Volumes:\t<none>\n")
        return
    w.write(0, f"{space}Volumes:\n")
    for volume in volumes:
        w.write(1, f"{' ' if space else ''}{volume.get('name', '')}:\n")
        first, *rest = _volume_lines(volume)
        w.write(2, first + "\n")
        for line in rest:
            w.write(0, line + "\n")


def tolerations_multiline(w: PrefixWriter, title: str, tolerations: list[dict[str, Any]],
                          indent: str = "") -> None:
    w.write(0, f"{indent}{title}:\t")
    if not tolerations:
        w.write(0, "<none>\n")
        return
    for i, t in enumerate(sorted(tolerations, key=lambda t: t.get("key", ""))):
        text = t.get("key", "")
        text += f"={t['value']}" if t.get("value") else ""
        text += f":{t['effect']}" if t.get("effect") else ""
        if t.get("operator") == "Exists" and not t.get("value"):
            text += " op=Exists" if t.get("key") or t.get("effect") else "op=Exists"
        if t.get("tolerationSeconds") is not None:
            text += f" for {t['tolerationSeconds']}s"
        w.write(0, (f"{indent}\t" if i else "") + text + "\n")


def qos_class(pod: dict[str, Any]) -> str:
    if (pod.get("status") or {}).get("qosClass"):
        return pod["status"]["qosClass"]
    containers = (pod.get("spec") or {}).get("containers") or []
    resources = [c.get("resources") or {} for c in containers]
    if not any(r.get("requests") or r.get("limits") for r in resources):
        return "BestEffort"
    for r in resources:
        limits, requests = r.get("limits") or {}, r.get("requests") or {}
        for name in ("cpu", "memory"):
            if name not in limits or requests.get(name, limits[name]) != limits[name]:
                return "Burstable"
    return "Guaranteed"


def describe_template(w: PrefixWriter, template: dict[str, Any]) -> None:
    """kubectl's `DescribePodTemplate`."""
    w.write(0, "Pod Template:\n")
    meta, spec = template.get("metadata") or {}, template.get("spec") or {}
    labels_multiline(w, "  Labels", meta.get("labels"))
    if meta.get("annotations"):
        annotations_multiline(w, "  Annotations", meta["annotations"])
    if spec.get("serviceAccountName"):
        w.write(1, f"Service Account:\t{spec['serviceAccountName']}\n")
    if spec.get("initContainers"):
        describe_containers(w, "Init Containers", spec["initContainers"], None, "  ")
    describe_containers(w, "Containers", spec.get("containers") or [], None, "  ")
    describe_volumes(w, spec.get("volumes") or [], "  ")
    if spec.get("priorityClassName"):
        w.write(1, f"Priority Class Name:\t{spec['priorityClassName']}\n")
    labels_multiline(w, "  Node-Selectors", spec.get("nodeSelector"))
    tolerations_multiline(w, "  Tolerations", spec.get("tolerations") or [])


def controller_of(meta: dict[str, Any]) -> str:
    for ref in meta.get("ownerReferences") or []:
        if ref.get("controller"):
            return f"{ref.get('kind', '')}/{ref.get('name', '')}"
    return ""


def _pod_status_lines(d: Described, w: PrefixWriter) -> None:
    status, meta = d.obj.get("status") or {}, d.meta
    phase = status.get("phase", "")
    if meta.get("deletionTimestamp") and phase not in ("Failed", "Succeeded"):
        w.write(0, f"Status:\tTerminating (lasts {since(meta['deletionTimestamp'], d.now)})\n")
        w.write(0, f"Termination Grace Period:\t{meta.get('deletionGracePeriodSeconds', 0)}s\n")
    else:
        w.write(0, f"Status:\t{phase}\n")
    for key, title in (("reason", "Reason"), ("message", "Message")):
        if status.get(key):
            w.write(0, f"{title}:\t{status[key]}\n")
    w.write(0, f"IP:\t{status.get('podIP', '')}\n")
    ips = status.get("podIPs") or []
    w.write(0, "IPs:\n" if ips else "IPs:\t<none>\n")
    for ip in ips:
        w.write(1, f"IP:\t{ip.get('ip', '')}\n")


def describe_pod(d: Described, w: PrefixWriter) -> None:
    spec, status, meta = d.obj.get("spec") or {}, d.obj.get("status") or {}, d.meta
    w.write(0, f"Name:\t{meta.get('name', '')}\n")
    w.write(0, f"Namespace:\t{meta.get('namespace', '')}\n")
    if spec.get("priority") is not None:
        w.write(0, f"Priority:\t{spec['priority']}\n")
    for key, title in (("priorityClassName", "Priority Class Name"),
                       ("runtimeClassName", "Runtime Class Name"),
                       ("serviceAccountName", "Service Account")):
        if spec.get(key):
            w.write(0, f"{title}:\t{spec[key]}\n")
    node = spec.get("nodeName")
    w.write(0, f"Node:\t{node}/{status.get('hostIP', '')}\n" if node else "Node:\t<none>\n")
    if status.get("startTime"):
        w.write(0, f"Start Time:\t{rfc1123z(status['startTime'])}\n")
    labels_multiline(w, "Labels", meta.get("labels"))
    annotations_multiline(w, "Annotations", meta.get("annotations"))
    _pod_status_lines(d, w)
    if controller_of(meta):
        w.write(0, f"Controlled By:\t{controller_of(meta)}\n")
    if status.get("nominatedNodeName"):
        w.write(0, f"NominatedNodeName:\t{status['nominatedNodeName']}\n")
    if spec.get("initContainers"):
        describe_containers(w, "Init Containers", spec["initContainers"],
                            status.get("initContainerStatuses") or [], pod=d.obj)
    describe_containers(w, "Containers", spec.get("containers") or [],
                        status.get("containerStatuses") or [], pod=d.obj)
    conditions = status.get("conditions") or []
    if conditions:
        w.write(0, "Conditions:\n  Type\tStatus\n")
        for c in conditions:
            w.write(1, f"{c.get('type', '')} \t{c.get('status', '')} \n")
    describe_volumes(w, spec.get("volumes") or [])
    w.write(0, f"QoS Class:\t{qos_class(d.obj)}\n")
    labels_multiline(w, "Node-Selectors", spec.get("nodeSelector"))
    tolerations_multiline(w, "Tolerations", spec.get("tolerations") or [])
    describe_events(w, d.events or [], d.now)
