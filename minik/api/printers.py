"""Per-kind table printers: the columns and cells `kubectl get` shows.

kubectl has no printers of its own any more: it prints the cells of the
server's Table verbatim. So each kind here has one small function, registered
with its columns by `@printer`, that turns an object into finished cells,
following upstream `pkg/printers/internalversion/printers.go`. The server
prints wide (priority 1) cells too; kubectl drops them unless `-o wide`.
Where server-side defaulting would have filled a field (a Service's type, a
Deployment's replicas), a missing field prints as its Kubernetes default.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from minik.api.tables import (
    Column,
    bool_text,
    condition,
    condition_true,
    field,
    first_three,
    format_labels,
    format_selector,
    parse_time,
    since,
)

Cells = Callable[[dict[str, Any], datetime], list[Any]]


@dataclass(frozen=True, slots=True)
class Printer:
    columns: tuple[Column, ...]
    cells: Cells


def col(name: str, description: str, *, type: str = "string", wide: bool = False) -> Column:
    return Column(name, description, type, 1 if wide else 0)


NAME = col("Name", "Name must be unique within a namespace.")
AGE = col("Age", "CreationTimestamp is the server time when this object was created.")
CONTAINERS = col("Containers", "Names of each container in the template.", wide=True)
IMAGES = col("Images", "Images referenced by each container in the template.", wide=True)
SELECTOR = col("Selector", "Label selector of the pods this object manages.", wide=True)
PRINTERS: dict[str, Printer] = {}
DEFAULT = Printer((NAME, AGE), lambda obj, now: [_name(obj), _age(obj, now)])


def printer(kind: str, *columns: Column) -> Callable[[Cells], Cells]:
    """Register the cells function of `kind` together with its columns."""

    def register(cells: Cells) -> Cells:
        PRINTERS[kind] = Printer(columns, cells)
        return cells

    return register


def _name(obj: dict[str, Any]) -> str:
    return field(obj, "metadata.name", "")


def _age(obj: dict[str, Any], now: datetime) -> str:
    return since(field(obj, "metadata.creationTimestamp"), now)


def _containers(pod_spec: dict[str, Any] | None) -> list[str]:
    """The wide Containers and Images cells of a pod template."""
    containers = field(pod_spec, "containers", [])
    return [",".join(c.get("name", "") for c in containers),
            ",".join(c.get("image", "") for c in containers)]


def _template(spec: dict[str, Any], *, empty: str = "<none>") -> list[str]:
    """Containers, Images and Selector of a workload's `spec`."""
    return [*_containers(field(spec, "template.spec")),
            format_selector(spec.get("selector"), empty=empty)]


@dataclass
class _Tally:
    """Readiness and restarts of a pod's containers, as `printPod` accumulates them."""

    ready: int = 0
    restarts: int = 0
    last_restart: datetime | None = None
    sidecar_restarts: int = 0
    sidecar_last_restart: datetime | None = None

    def count(self, status: dict[str, Any], *, sidecar: bool = False) -> None:
        restarts = int(status.get("restartCount") or 0)
        finished = parse_time(field(status, "lastState.terminated.finishedAt"))
        self.restarts += restarts
        self.last_restart = _latest(self.last_restart, finished)
        if sidecar:
            self.sidecar_restarts += restarts
            self.sidecar_last_restart = _latest(self.sidecar_last_restart, finished)


def _latest(a: datetime | None, b: datetime | None) -> datetime | None:
    return max((t for t in (a, b) if t is not None), default=None)


def _terminated_reason(terminated: dict[str, Any]) -> str:
    if terminated.get("reason"):
        return terminated["reason"]
    if terminated.get("signal"):
        return f"Signal:{terminated['signal']}"
    return f"ExitCode:{terminated.get('exitCode', 0)}"


def _init_reason(pod: dict[str, Any], sidecars: set[str], tally: _Tally) -> str | None:
    """The `Init:...` status while init containers run, else None."""
    count = len(field(pod, "spec.initContainers", []))
    for i, status in enumerate(field(pod, "status.initContainerStatuses", [])):
        sidecar = status.get("name") in sidecars
        tally.count(status, sidecar=sidecar)
        terminated = field(status, "state.terminated")
        waiting_reason = field(status, "state.waiting.reason", "")
        if terminated is not None and not terminated.get("exitCode"):
            continue
        if sidecar and status.get("started"):
            tally.ready += bool(status.get("ready"))
            continue
        if terminated is not None:
            return "Init:" + _terminated_reason(terminated)
        if waiting_reason and waiting_reason != "PodInitializing":
            return "Init:" + waiting_reason
        return f"Init:{i}/{count}"
    return None


def _containers_reason(pod: dict[str, Any], reason: str, tally: _Tally) -> str:
    """Waiting/terminated reasons of app containers; the first container's wins."""
    tally.restarts, tally.last_restart = tally.sidecar_restarts, tally.sidecar_last_restart
    has_running = False
    for status in reversed(field(pod, "status.containerStatuses", [])):
        tally.count(status)
        state = status.get("state") or {}
        if field(state, "waiting.reason"):
            reason = state["waiting"]["reason"]
        elif state.get("terminated") is not None:
            reason = _terminated_reason(state["terminated"])
        elif status.get("ready") and state.get("running") is not None:
            has_running = True
            tally.ready += 1
    if reason == "Completed" and has_running:
        return "Running" if condition_true(pod.get("status"), "Ready") else "NotReady"
    return reason


def _pod_reason(pod: dict[str, Any], tally: _Tally) -> str:
    """The STATUS column of a pod: phase, or the reason that best explains it."""
    status = pod.get("status") or {}
    sidecars = {c.get("name") for c in field(pod, "spec.initContainers", [])
                if c.get("restartPolicy") == "Always"}
    reason = status.get("reason") or status.get("phase") or ""
    if condition(status, "PodScheduled").get("reason") == "SchedulingGated":
        reason = "SchedulingGated"
    init_reason = _init_reason(pod, sidecars, tally)
    if init_reason is None or condition_true(status, "Initialized"):
        reason = _containers_reason(pod, init_reason or reason, tally)
    else:
        reason = init_reason
    if field(pod, "metadata.deletionTimestamp"):
        if status.get("reason") == "NodeLost":
            return "Unknown"
        if status.get("phase") not in ("Succeeded", "Failed"):
            return "Terminating"
    return reason


@printer(
    "Pod", NAME,
    col("Ready", "The aggregate readiness state of this pod for accepting traffic."),
    col("Status", "The aggregate status of the containers in this pod."),
    col("Restarts", "The number of times the containers in this pod have been restarted "
        "and when the last container in this pod has restarted."),
    AGE,
    col("IP", "IP address allocated to the pod.", wide=True),
    col("Node", "The node this pod is scheduled onto.", wide=True),
    col("Nominated Node", "The node the scheduler nominated for preemption.", wide=True),
    col("Readiness Gates", "Pod conditions evaluated for readiness.", wide=True),
)
def _pod(pod: dict[str, Any], now: datetime) -> list[Any]:
    spec, status = pod.get("spec") or {}, pod.get("status") or {}
    tally = _Tally()
    reason = _pod_reason(pod, tally)
    sidecars = sum(c.get("restartPolicy") == "Always" for c in spec.get("initContainers") or [])
    restarts = str(tally.restarts)
    if tally.restarts and tally.last_restart:
        restarts += f" ({since(tally.last_restart, now)} ago)"
    ips = status.get("podIPs") or []
    gates = spec.get("readinessGates") or []
    passed = sum(condition_true(status, g.get("conditionType", "")) for g in gates)
    return [
        _name(pod), f"{tally.ready}/{len(spec.get('containers') or []) + sidecars}", reason,
        restarts, _age(pod, now),
        (ips[0].get("ip") if ips else status.get("podIP")) or "<none>",
        spec.get("nodeName") or "<none>", status.get("nominatedNodeName") or "<none>",
        f"{passed}/{len(gates)}" if gates else "<none>",
    ]


@printer(
    "Deployment", NAME, col("Ready", "Number of the pod with ready state"),
    col("Up-to-date", "Total number of non-terminated pods with the desired template."),
    col("Available", "Total number of available pods."), AGE, CONTAINERS, IMAGES, SELECTOR,
)
def _deployment(obj: dict[str, Any], now: datetime) -> list[Any]:
    status = obj.get("status") or {}
    ready = f"{status.get('readyReplicas', 0)}/{field(obj, 'spec.replicas', 1)}"
    return [_name(obj), ready, status.get("updatedReplicas", 0),
            status.get("availableReplicas", 0), _age(obj, now),
            *_template(obj.get("spec") or {}, empty="")]


@printer(
    "ReplicaSet", NAME, col("Desired", "Number of desired pods.", type="integer"),
    col("Current", "Number of most recently observed pods.", type="integer"),
    col("Ready", "Number of ready pods.", type="integer"), AGE, CONTAINERS, IMAGES, SELECTOR,
)
def _replica_set(obj: dict[str, Any], now: datetime) -> list[Any]:
    status = obj.get("status") or {}
    return [_name(obj), field(obj, "spec.replicas", 1), status.get("replicas", 0),
            status.get("readyReplicas", 0), _age(obj, now),
            *_template(obj.get("spec") or {})]


@printer("StatefulSet", NAME, col("Ready", "Number of the pod with ready state"), AGE,
         CONTAINERS, IMAGES)
def _stateful_set(obj: dict[str, Any], now: datetime) -> list[Any]:
    ready = f"{field(obj, 'status.readyReplicas', 0)}/{field(obj, 'spec.replicas', 1)}"
    return [_name(obj), ready, _age(obj, now), *_containers(field(obj, "spec.template.spec"))]


@printer(
    "DaemonSet", NAME,
    *(col(n, f"{n} number of nodes running the daemon pod.", type="integer")
      for n in ("Desired", "Current", "Ready", "Up-to-date", "Available")),
    col("Node Selector", "Node labels the daemon pods are restricted to."),
    AGE, CONTAINERS, IMAGES, SELECTOR,
)
def _daemon_set(obj: dict[str, Any], now: datetime) -> list[Any]:
    fields = ("desiredNumberScheduled", "currentNumberScheduled", "numberReady",
              "updatedNumberScheduled", "numberAvailable")
    return [_name(obj), *(field(obj, f"status.{f}", 0) for f in fields),
            format_labels(field(obj, "spec.template.spec.nodeSelector")), _age(obj, now),
            *_template(obj.get("spec") or {})]


def _job_status(job: dict[str, Any]) -> str:
    status = job.get("status")
    if condition_true(status, "Complete"):
        return "Complete"
    if condition_true(status, "Failed"):
        return "Failed"
    if field(job, "metadata.deletionTimestamp"):
        return "Terminating"
    if condition_true(status, "Suspended"):
        return "Suspended"
    if condition_true(status, "FailureTarget"):
        return "FailureTarget"
    return "Running"


@printer(
    "Job", NAME, col("Status", "Status of the job."),
    col("Completions", "The number of pods which reached phase Succeeded."),
    col("Duration", "Time required to complete the job."), AGE, CONTAINERS, IMAGES, SELECTOR,
)
def _job(job: dict[str, Any], now: datetime) -> list[Any]:
    spec, status = job.get("spec") or {}, job.get("status") or {}
    succeeded = status.get("succeeded", 0)
    if spec.get("completions") is not None:
        completions = f"{succeeded}/{spec['completions']}"
    elif (spec.get("parallelism") or 0) > 1:
        completions = f"{succeeded}/1 of {spec['parallelism']}"
    else:
        completions = f"{succeeded}/1"
    start, end = parse_time(status.get("startTime")), parse_time(status.get("completionTime"))
    duration = "" if start is None else since(start, end or now)
    return [_name(job), _job_status(job), completions, duration, _age(job, now),
            *_template(spec)]


@printer(
    "CronJob", NAME, col("Schedule", "The schedule in Cron format."),
    col("Timezone", "The time zone name for the given schedule."),
    col("Suspend", "Whether subsequent executions are suspended.", type="boolean"),
    col("Active", "Number of currently running jobs.", type="integer"),
    col("Last Schedule", "When the job was last successfully scheduled."),
    AGE, CONTAINERS, IMAGES, SELECTOR,
)
def _cron_job(obj: dict[str, Any], now: datetime) -> list[Any]:
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    last = status.get("lastScheduleTime")
    return [_name(obj), spec.get("schedule", ""), spec.get("timeZone") or "<none>",
            bool_text(spec.get("suspend")), len(status.get("active") or []),
            since(last, now) if last else "<none>", _age(obj, now),
            *_template(field(spec, "jobTemplate.spec", {}))]


def _service_port(port: dict[str, Any]) -> str:
    protocol = port.get("protocol") or "TCP"
    if port.get("nodePort"):
        return f"{port.get('port')}:{port['nodePort']}/{protocol}"
    return f"{port.get('port')}/{protocol}"


def _external_ip(svc: dict[str, Any]) -> str:
    spec = svc.get("spec") or {}
    external = spec.get("externalIPs") or []
    kind = spec.get("type") or "ClusterIP"
    if kind in ("ClusterIP", "NodePort"):
        return ",".join(external) or "<none>"
    if kind == "LoadBalancer":
        ingress = field(svc, "status.loadBalancer.ingress", [])
        balancers = sorted({i.get("ip") or i.get("hostname") for i in ingress} - {None, ""})
        return ",".join(balancers + external) or "<pending>"
    if kind == "ExternalName":
        return spec.get("externalName", "")
    return "<unknown>"


@printer(
    "Service", NAME, col("Type", "How the Service is exposed."),
    col("Cluster-IP", "The IP address of the service, allocated by the master."),
    col("External-IP", "IP addresses accepting traffic for the service from outside."),
    col("Port(s)", "The ports exposed by this service."), AGE,
    col("Selector", "Route service traffic to pods with labels matching this selector.",
        wide=True),
)
def _service(svc: dict[str, Any], now: datetime) -> list[Any]:
    spec = svc.get("spec") or {}
    cluster_ips = spec.get("clusterIPs") or [spec.get("clusterIP") or "<none>"]
    ports = ",".join(_service_port(p) for p in spec.get("ports") or []) or "<none>"
    return [_name(svc), spec.get("type") or "ClusterIP", cluster_ips[0], _external_ip(svc),
            ports, _age(svc, now), format_labels(spec.get("selector"))]


@printer("ConfigMap", NAME, col("Data", "Number of data and binaryData keys."), AGE)
def _config_map(obj: dict[str, Any], now: datetime) -> list[Any]:
    count = len(obj.get("data") or {}) + len(obj.get("binaryData") or {})
    return [_name(obj), count, _age(obj, now)]


@printer("Secret", NAME, col("Type", "Used to facilitate programmatic handling of secret data."),
         col("Data", "Number of data keys."), AGE)
def _secret(obj: dict[str, Any], now: datetime) -> list[Any]:
    return [_name(obj), obj.get("type") or "Opaque", len(obj.get("data") or {}), _age(obj, now)]


@printer("Namespace", NAME, col("Status", "The status of the namespace"), AGE)
def _namespace(obj: dict[str, Any], now: datetime) -> list[Any]:
    return [_name(obj), field(obj, "status.phase", "Active"), _age(obj, now)]


@printer("ServiceAccount", NAME, col("Secrets", "Number of secrets of this account."), AGE)
def _service_account(obj: dict[str, Any], now: datetime) -> list[Any]:
    return [_name(obj), len(obj.get("secrets") or []), _age(obj, now)]


@printer("Lease", NAME, col("Holder", "The identity of the holder of the lease."), AGE)
def _lease(obj: dict[str, Any], now: datetime) -> list[Any]:
    return [_name(obj), field(obj, "spec.holderIdentity", ""), _age(obj, now)]


_ACCESS_MODES = {"ReadWriteOnce": "RWO", "ReadOnlyMany": "ROX", "ReadWriteMany": "RWX",
                 "ReadWriteOncePod": "RWOP"}


def _access_modes(modes: list[str] | None) -> str:
    return ",".join(short for mode, short in _ACCESS_MODES.items() if mode in (modes or []))


def _volume_class(obj: dict[str, Any]) -> str:
    beta = field(obj, "metadata.annotations", {}).get("volume.beta.kubernetes.io/storage-class")
    return beta if beta is not None else field(obj, "spec.storageClassName", "")


def _volume_phase(obj: dict[str, Any]) -> str:
    if field(obj, "metadata.deletionTimestamp"):
        return "Terminating"
    return field(obj, "status.phase", "")


@printer(
    "PersistentVolume", NAME, col("Capacity", "The capacity of the volume."),
    col("Access Modes", "The ways the volume can be mounted."),
    col("Reclaim Policy", "What happens to the volume when released from its claim."),
    col("Status", "The phase of the volume."), col("Claim", "The claim bound to the volume."),
    col("StorageClass", "StorageClass of the pv"),
    col("VolumeAttributesClass", "VolumeAttributesClass of the pv"),
    col("Reason", "Why the volume is in this phase."), AGE,
    col("VolumeMode", "Whether the volume is a filesystem or a raw block device.", wide=True),
)
def _persistent_volume(pv: dict[str, Any], now: datetime) -> list[Any]:
    spec = pv.get("spec") or {}
    claim = spec.get("claimRef")
    return [_name(pv), field(spec, "capacity.storage", "0"), _access_modes(spec.get("accessModes")),
            spec.get("persistentVolumeReclaimPolicy", ""), _volume_phase(pv),
            f"{claim.get('namespace', '')}/{claim.get('name', '')}" if claim else "",
            _volume_class(pv), spec.get("volumeAttributesClassName") or "<unset>",
            field(pv, "status.reason", ""), _age(pv, now), spec.get("volumeMode") or "<unset>"]


@printer(
    "PersistentVolumeClaim", NAME, col("Status", "The phase of the claim."),
    col("Volume", "The volume bound to the claim."), col("Capacity", "The bound capacity."),
    col("Access Modes", "The ways the bound volume can be mounted."),
    col("StorageClass", "StorageClass of the pvc"),
    col("VolumeAttributesClass", "VolumeAttributesClass of the pvc"), AGE,
    col("VolumeMode", "Whether the volume is a filesystem or a raw block device.", wide=True),
)
def _persistent_volume_claim(pvc: dict[str, Any], now: datetime) -> list[Any]:
    spec, status = pvc.get("spec") or {}, pvc.get("status") or {}
    bound = bool(spec.get("volumeName"))
    return [_name(pvc), _volume_phase(pvc), spec.get("volumeName", ""),
            field(status, "capacity.storage", "0") if bound else "",
            _access_modes(status.get("accessModes")) if bound else "",
            _volume_class(pvc), spec.get("volumeAttributesClassName") or "<unset>",
            _age(pvc, now), spec.get("volumeMode") or "<unset>"]


def _node_status(node: dict[str, Any]) -> str:
    ready = condition(node.get("status"), "Ready")
    states = [("Ready" if ready.get("status") == "True" else "NotReady") if ready else "Unknown"]
    if field(node, "spec.unschedulable"):
        states.append("SchedulingDisabled")
    return ",".join(states)


def _node_roles(node: dict[str, Any]) -> str:
    roles = set()
    for key, value in field(node, "metadata.labels", {}).items():
        if key.startswith("node-role.kubernetes.io/") and key != "node-role.kubernetes.io/":
            roles.add(key.removeprefix("node-role.kubernetes.io/"))
        elif key == "kubernetes.io/role" and value:
            roles.add(value)
    return ",".join(sorted(roles)) or "<none>"


def _node_address(node: dict[str, Any], kind: str) -> str:
    addresses = field(node, "status.addresses", [])
    return next((a.get("address", "") for a in addresses if a.get("type") == kind), "<none>")


@printer(
    "Node", NAME, col("Status", "The status of the node"),
    col("Roles", "The roles of the node"), AGE, col("Version", "Kubelet Version."),
    col("Internal-IP", "The node's internal IP address.", wide=True),
    col("External-IP", "The node's external IP address.", wide=True),
    col("OS-Image", "OS Image reported by the node.", wide=True),
    col("Kernel-Version", "Kernel Version reported by the node.", wide=True),
    col("Container-Runtime", "Container runtime version reported by the node.", wide=True),
)
def _node(node: dict[str, Any], now: datetime) -> list[Any]:
    info = field(node, "status.nodeInfo", {})
    return [_name(node), _node_status(node), _node_roles(node), _age(node, now),
            info.get("kubeletVersion", ""), _node_address(node, "InternalIP"),
            _node_address(node, "ExternalIP"),
            *(info.get(k) or "<unknown>"
              for k in ("osImage", "kernelVersion", "containerRuntimeVersion"))]


@printer(
    "Event", col("Last Seen", "When the event was last observed."),
    col("Type", "Type of this event (Normal, Warning)."),
    col("Reason", "Why the action was taken."), col("Object", "The object this event is about."),
    col("Subobject", "The part of the object this event is about.", wide=True),
    col("Source", "The component reporting this event.", wide=True),
    col("Message", "A human-readable description of the event."),
    col("First Seen", "When the event was first observed.", wide=True),
    col("Count", "The number of times this event has occurred.", wide=True),
    col("Name", "Name must be unique within a namespace.", wide=True),
)
def _event(event: dict[str, Any], now: datetime) -> list[Any]:
    first = event.get("firstTimestamp") or event.get("eventTime")
    last, count = event.get("lastTimestamp") or first, event.get("count") or 1
    if event.get("series"):
        last, count = field(event, "series.lastObservedTime"), field(event, "series.count", 1)
    involved = event.get("involvedObject") or {}
    target = involved.get("kind", "").lower()
    if involved.get("name"):
        target += f"/{involved['name']}"
    source = field(event, "source.component") or event.get("reportingController", "")
    host = field(event, "source.host") or event.get("reportingInstance", "")
    return [since(last, now), event.get("type", ""), event.get("reason", ""), target,
            involved.get("fieldPath", ""), f"{source}, {host}" if host else source,
            (event.get("message") or "").strip(), since(first, now), count, _name(event)]


def _host_port(ip: str, port: Any) -> str:
    return f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}"


@printer("Endpoints", NAME, col("Endpoints", "The addresses and ports of the endpoints."), AGE)
def _endpoints(obj: dict[str, Any], now: datetime) -> list[Any]:
    subsets = obj.get("subsets") or []
    targets = []
    for subset in subsets:
        ips = [a.get("ip", "") for a in subset.get("addresses") or []]
        ports = [p.get("port") for p in subset.get("ports") or []]
        targets += [_host_port(ip, port) for port in ports for ip in ips] if ports else ips
    text = first_three(targets, empty="") if subsets else "<none>"
    return [_name(obj), text, _age(obj, now)]


@printer(
    "EndpointSlice", NAME, col("AddressType", "The type of address carried by this slice."),
    col("Ports", "The network ports exposed by each endpoint."),
    col("Endpoints", "The addresses of the endpoints."), AGE,
)
def _endpoint_slice(obj: dict[str, Any], now: datetime) -> list[Any]:
    ports = [str(p["port"]) if p.get("port") is not None else p.get("name") or "*"
             for p in obj.get("ports") or []]
    addresses = [a for e in obj.get("endpoints") or [] for a in e.get("addresses") or []]
    return [_name(obj), obj.get("addressType", ""), first_three(ports, empty="<unset>"),
            first_three(addresses, empty="<unset>"), _age(obj, now)]


@printer(
    "ControllerRevision", NAME, col("Controller", "Controller of the object"),
    col("Revision", "The revision of the state this revision captures."), AGE,
)
def _controller_revision(obj: dict[str, Any], now: datetime) -> list[Any]:
    owners = field(obj, "metadata.ownerReferences", [])
    owner = next((o for o in owners if o.get("controller")), None)
    controller = "<none>"
    if owner:
        group = owner.get("apiVersion", "").rpartition("/")[0]
        kind = owner.get("kind", "") + (f".{group}" if group else "")
        controller = f"{kind.lower()}/{owner.get('name', '')}" if kind else owner.get("name", "")
    return [_name(obj), controller, obj.get("revision", 0), _age(obj, now)]


_DEFAULT_CLASS = ("storageclass.kubernetes.io/is-default-class",
                  "storageclass.beta.kubernetes.io/is-default-class")


@printer(
    "StorageClass", NAME, col("Provisioner", "The volume plugin that provisions volumes."),
    col("ReclaimPolicy", "Reclaim policy of provisioned volumes."),
    col("VolumeBindingMode", "When volumes are provisioned and bound."),
    col("AllowVolumeExpansion", "Whether claims of this class may be expanded."), AGE,
)
def _storage_class(obj: dict[str, Any], now: datetime) -> list[Any]:
    annotations = field(obj, "metadata.annotations", {})
    default = any(annotations.get(a) == "true" for a in _DEFAULT_CLASS)
    return [_name(obj) + (" (default)" if default else ""), obj.get("provisioner", ""),
            obj.get("reclaimPolicy") or "Delete", obj.get("volumeBindingMode") or "Immediate",
            bool(obj.get("allowVolumeExpansion")), _age(obj, now)]


_METRIC_FIELDS = {"Resource": "resource", "ContainerResource": "containerResource",
                  "Pods": "pods", "Object": "object", "External": "external"}


def _hpa_metric(spec: dict[str, Any], status: dict[str, Any]) -> str:
    key = _METRIC_FIELDS.get(spec.get("type", ""))
    if key is None:
        return "<unknown type>"
    source, target = spec.get(key) or {}, field(spec, f"{key}.target", {})
    current = field(status, f"{key}.current", {})
    if target.get("averageValue") is not None:
        value = f"{current.get('averageValue', '<unknown>')}/{target['averageValue']}"
        if key in ("object", "external"):
            value += " (avg)"
    elif key in ("resource", "containerResource"):
        used = current.get("averageUtilization")
        wanted = target.get("averageUtilization")
        value = (f"{'<unknown>' if used is None else f'{used}%'}/"
                 f"{'<auto>' if wanted is None else f'{wanted}%'}")
    else:
        value = f"{current.get('value', '<unknown>')}/{target.get('value', '<unknown>')}"
    return f"{source.get('name')}: {value}" if key in ("resource", "containerResource") else value


def _hpa_targets(hpa: dict[str, Any]) -> str:
    specs = field(hpa, "spec.metrics", [])
    statuses = field(hpa, "status.currentMetrics", [])
    if not specs:
        return "<none>"
    texts = [_hpa_metric(m, statuses[i] if i < len(statuses) else {}) for i, m in enumerate(specs)]
    shown = ", ".join(texts[:2])
    return f"{shown} + {len(texts) - 2} more..." if len(texts) > 2 else shown


@printer(
    "HorizontalPodAutoscaler", NAME, col("Reference", "The target scaled by this autoscaler."),
    col("Targets", "Current and target values of each metric."),
    col("MinPods", "The lower limit of replicas."), col("MaxPods", "The upper limit of replicas."),
    col("Replicas", "The current number of replicas."), AGE,
)
def _horizontal_pod_autoscaler(hpa: dict[str, Any], now: datetime) -> list[Any]:
    spec = hpa.get("spec") or {}
    ref = spec.get("scaleTargetRef") or {}
    minimum = spec.get("minReplicas")
    return [_name(hpa), f"{ref.get('kind', '')}/{ref.get('name', '')}", _hpa_targets(hpa),
            "<unset>" if minimum is None else str(minimum), spec.get("maxReplicas", 0),
            field(hpa, "status.currentReplicas", 0), _age(hpa, now)]
