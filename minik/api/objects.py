"""The shapes of the Kubernetes objects minik's components read, as TypedDicts.

Objects travel as decoded JSON. These TypedDicts name the parts that code
reads (metadata, owner references, conditions, the pod, node, namespace,
workload and event fields the controllers, the scheduler and the agent act
on), so that mypy refuses a misspelt key instead of letting it read as
missing. They describe, they do not validate: the API server validates with
the pydantic models in `minik.api.models`, and a field not listed here is
still kept and still reachable through `JsonObject`.

Every shape is `total=False`, as Kubernetes' fields are optional on the
wire (an object being built has no `uid` yet, a patch names a few fields);
`Required` marks what the API server refuses an object without. Each kind
extends `KubeObject`, so whatever takes a `KubeObject` (the accessors of
`minik.api.meta`, say) takes a `Pod` or a `Deployment` as well.

`JsonObject` is a decoded JSON object whose shape the code does not declare
(a request body before validation, a patch, a field minik passes through).

`ObjectT` stands for the shape of one resource's objects wherever code is
generic in it: `minik.api.resources.PODS` is a `ResourceType[Pod]`, so the
async client's answers for it and an informer of it hold `Pod`s;
`ObjectList[Pod]` is what a list of pods answers.
"""

from __future__ import annotations

from typing import Any, Generic, Literal, Required, TypedDict

from typing_extensions import TypeVar

JsonObject = dict[str, Any]
"""A decoded JSON object whose shape is not declared here; its values are any JSON."""

Quantity = str | int | float
"""A resource quantity as JSON carries it: `"250m"`, `"64Mi"`, `2`."""

ConditionStatus = Literal["True", "False", "Unknown"]


# ------------------------------------------------------------------ metadata


class OwnerReference(TypedDict, total=False):
    """`metav1.OwnerReference`: who owns an object, and whether as its controller."""

    apiVersion: Required[str]
    kind: Required[str]
    name: Required[str]
    uid: Required[str]
    controller: bool
    blockOwnerDeletion: bool


class ObjectMeta(TypedDict, total=False):
    """`metav1.ObjectMeta`; timestamps are RFC 3339 strings (`meta.parse_time` reads them)."""

    name: str
    generateName: str
    namespace: str
    uid: str
    resourceVersion: str
    generation: int
    creationTimestamp: str | None
    deletionTimestamp: str | None
    deletionGracePeriodSeconds: int | None
    labels: dict[str, str]
    annotations: dict[str, str]
    ownerReferences: list[OwnerReference]
    finalizers: list[str]
    managedFields: list[JsonObject]
    selfLink: str


class KubeObject(TypedDict, total=False):
    """Any Kubernetes object: what every kind has in common."""

    apiVersion: str
    kind: str
    metadata: ObjectMeta


AnyObject = KubeObject | JsonObject
"""What the accessors of `minik.api.meta` take: a typed object, or one just decoded."""

ObjectT = TypeVar("ObjectT", bound=AnyObject, default=JsonObject)
"""The shape of a resource's objects: a kind below, or `JsonObject` when not declared."""

ObjectT_co = TypeVar("ObjectT_co", bound=AnyObject, covariant=True, default=AnyObject)
"""The same, for what only names the shape (`ResourceType`): a `ResourceType[Pod]` is a
`ResourceType`, which says nothing about its objects but that they are objects."""

ListMeta = TypedDict("ListMeta", {
    "resourceVersion": str, "continue": str, "remainingItemCount": int,
}, total=False)
"""`metav1.ListMeta` (`continue` is a Python keyword, hence the functional form)."""


class ObjectList(TypedDict, Generic[ObjectT], total=False):
    """A list answer: `PodList` is `ObjectList[Pod]`."""

    apiVersion: str
    kind: str
    metadata: ListMeta
    items: Required[list[ObjectT]]


class ObjectReference(TypedDict, total=False):
    """`corev1.ObjectReference`: an Event's `involvedObject`, a Binding's `target`."""

    apiVersion: str
    kind: str
    namespace: str
    name: str
    uid: str
    resourceVersion: str
    fieldPath: str


class LabelSelectorRequirement(TypedDict, total=False):
    key: Required[str]
    operator: Required[str]
    values: list[str]


class LabelSelectorSpec(TypedDict, total=False):
    """`metav1.LabelSelector` as JSON (the matcher is `minik.api.selectors.labels`)."""

    matchLabels: dict[str, str]
    matchExpressions: list[LabelSelectorRequirement]


# ---------------------------------------------------------------- conditions


class Condition(TypedDict, total=False):
    """What every kind's status condition has; the kinds add their own times."""

    type: Required[str]
    status: Required[ConditionStatus]
    reason: str
    message: str
    lastTransitionTime: str | None


class PodCondition(Condition, total=False):
    lastProbeTime: str | None


class NodeCondition(Condition, total=False):
    lastHeartbeatTime: str | None


class DeploymentCondition(Condition, total=False):
    lastUpdateTime: str | None


class StatusCondition(Condition, total=False):
    """`metav1.Condition`, the shared shape newer kinds use (a PodDisruptionBudget's)."""

    observedGeneration: int


# --------------------------------------------------------------------- pods


class ContainerPort(TypedDict, total=False):
    containerPort: Required[int]
    name: str
    protocol: str
    hostPort: int
    hostIP: str


class ResourceRequirements(TypedDict, total=False):
    requests: dict[str, Quantity]
    limits: dict[str, Quantity]


class Container(TypedDict, total=False):
    """The parts of `corev1.Container` that code reads; probes and env pass through."""

    name: Required[str]
    image: str
    imagePullPolicy: str
    command: list[str]
    args: list[str]
    workingDir: str
    env: list[JsonObject]
    ports: list[ContainerPort]
    resources: ResourceRequirements
    restartPolicy: str
    volumeMounts: list[JsonObject]
    livenessProbe: JsonObject
    readinessProbe: JsonObject
    startupProbe: JsonObject
    lifecycle: JsonObject
    envFrom: list[JsonObject]
    securityContext: JsonObject
    stdin: bool
    tty: bool


class Toleration(TypedDict, total=False):
    key: str
    operator: str
    value: str
    effect: str
    tolerationSeconds: int


class Taint(TypedDict, total=False):
    key: Required[str]
    value: str
    effect: Required[str]
    timeAdded: str


class NodeSelectorRequirement(TypedDict, total=False):
    key: Required[str]
    operator: Required[str]
    values: list[str]


class NodeSelectorTerm(TypedDict, total=False):
    matchExpressions: list[NodeSelectorRequirement]
    matchFields: list[NodeSelectorRequirement]


class NodeSelector(TypedDict, total=False):
    nodeSelectorTerms: Required[list[NodeSelectorTerm]]


class NodeAffinity(TypedDict, total=False):
    requiredDuringSchedulingIgnoredDuringExecution: NodeSelector
    preferredDuringSchedulingIgnoredDuringExecution: list[JsonObject]


class Affinity(TypedDict, total=False):
    """What the scheduler reads of `corev1.Affinity`; pod (anti-)affinity passes through."""

    nodeAffinity: NodeAffinity
    podAffinity: JsonObject
    podAntiAffinity: JsonObject


class PodSpec(TypedDict, total=False):
    containers: list[Container]
    initContainers: list[Container]
    nodeName: str
    nodeSelector: dict[str, str]
    schedulerName: str
    schedulingGates: list[JsonObject]
    restartPolicy: str
    terminationGracePeriodSeconds: int
    activeDeadlineSeconds: int
    serviceAccountName: str
    hostNetwork: bool
    hostPID: bool
    hostIPC: bool
    shareProcessNamespace: bool
    dnsPolicy: str
    dnsConfig: JsonObject
    securityContext: JsonObject
    ephemeralContainers: list[Container]
    hostname: str
    subdomain: str
    tolerations: list[Toleration]
    affinity: Affinity
    volumes: list[JsonObject]
    overhead: dict[str, Quantity]


class PodTemplateSpec(TypedDict, total=False):
    metadata: ObjectMeta
    spec: PodSpec


class ContainerStateWaiting(TypedDict, total=False):
    reason: str
    message: str


class ContainerStateRunning(TypedDict, total=False):
    startedAt: str | None


class ContainerStateTerminated(TypedDict, total=False):
    exitCode: Required[int]
    signal: int
    reason: str
    message: str
    startedAt: str | None
    finishedAt: str | None
    containerID: str


class ContainerState(TypedDict, total=False):
    """At most one of the three is set; `{}` when nothing is known."""

    waiting: ContainerStateWaiting
    running: ContainerStateRunning
    terminated: ContainerStateTerminated


class ContainerStatus(TypedDict, total=False):
    name: Required[str]
    state: ContainerState
    lastState: ContainerState
    ready: bool
    started: bool
    restartCount: int
    image: str
    imageID: str
    containerID: str


class PodIP(TypedDict):
    ip: str


class HostIP(TypedDict):
    ip: str


class PodStatus(TypedDict, total=False):
    phase: str
    conditions: list[PodCondition]
    message: str
    reason: str
    hostIP: str
    hostIPs: list[HostIP]
    podIP: str
    podIPs: list[PodIP]
    startTime: str | None
    initContainerStatuses: list[ContainerStatus]
    containerStatuses: list[ContainerStatus]
    ephemeralContainerStatuses: list[ContainerStatus]
    qosClass: str
    nominatedNodeName: str


class Pod(KubeObject, total=False):
    spec: PodSpec
    status: PodStatus


class Binding(KubeObject, total=False):
    """What the scheduler posts to `pods/{name}/binding`."""

    target: ObjectReference


# -------------------------------------------------------------------- nodes


class NodeAddress(TypedDict):
    type: str
    address: str


class NodeSpec(TypedDict, total=False):
    unschedulable: bool
    taints: list[Taint]
    podCIDR: str


class NodeStatus(TypedDict, total=False):
    conditions: list[NodeCondition]
    addresses: list[NodeAddress]
    capacity: dict[str, Quantity]
    allocatable: dict[str, Quantity]
    nodeInfo: dict[str, str]
    daemonEndpoints: JsonObject


class Node(KubeObject, total=False):
    spec: NodeSpec
    status: NodeStatus


# --------------------------------------------------------------- namespaces


class NamespaceSpec(TypedDict, total=False):
    finalizers: list[str]


class NamespaceStatus(TypedDict, total=False):
    phase: str
    conditions: list[Condition]


class Namespace(KubeObject, total=False):
    spec: NamespaceSpec
    status: NamespaceStatus


# ---------------------------------------------------------------- workloads


class RollingUpdateDeployment(TypedDict, total=False):
    maxSurge: int | str
    maxUnavailable: int | str


class DeploymentStrategy(TypedDict, total=False):
    type: str
    rollingUpdate: RollingUpdateDeployment


class DeploymentSpec(TypedDict, total=False):
    replicas: int
    selector: LabelSelectorSpec
    template: PodTemplateSpec
    strategy: DeploymentStrategy
    minReadySeconds: int
    revisionHistoryLimit: int
    progressDeadlineSeconds: int
    paused: bool


class DeploymentStatus(TypedDict, total=False):
    observedGeneration: int
    replicas: int
    updatedReplicas: int
    readyReplicas: int
    availableReplicas: int
    unavailableReplicas: int
    conditions: list[DeploymentCondition]
    collisionCount: int


class Deployment(KubeObject, total=False):
    spec: DeploymentSpec
    status: DeploymentStatus


class ReplicaSetSpec(TypedDict, total=False):
    replicas: int
    selector: LabelSelectorSpec
    template: PodTemplateSpec
    minReadySeconds: int


class ReplicaSetStatus(TypedDict, total=False):
    """Also a ReplicationController's status: the two kinds count pods alike."""

    observedGeneration: int
    replicas: int
    fullyLabeledReplicas: int
    readyReplicas: int
    availableReplicas: int
    conditions: list[Condition]


class ReplicaSet(KubeObject, total=False):
    spec: ReplicaSetSpec
    status: ReplicaSetStatus


class ReplicationControllerSpec(TypedDict, total=False):
    """A ReplicationController's `selector` is a plain label map, not a LabelSelector."""

    replicas: int
    selector: dict[str, str]
    template: PodTemplateSpec
    minReadySeconds: int


class ReplicationController(KubeObject, total=False):
    spec: ReplicationControllerSpec
    status: ReplicaSetStatus


class RollingUpdateStatefulSetStrategy(TypedDict, total=False):
    partition: int
    maxUnavailable: int | str


class StatefulSetUpdateStrategy(TypedDict, total=False):
    type: str
    rollingUpdate: RollingUpdateStatefulSetStrategy


class StatefulSetRetentionPolicy(TypedDict, total=False):
    """`persistentVolumeClaimRetentionPolicy`: Retain or Delete, for each way a pod goes."""

    whenDeleted: str
    whenScaled: str


class StatefulSetOrdinals(TypedDict, total=False):
    start: int


class StatefulSetSpec(TypedDict, total=False):
    replicas: int
    selector: LabelSelectorSpec
    template: PodTemplateSpec
    volumeClaimTemplates: list[JsonObject]
    serviceName: str
    podManagementPolicy: str
    updateStrategy: StatefulSetUpdateStrategy
    revisionHistoryLimit: int
    minReadySeconds: int
    persistentVolumeClaimRetentionPolicy: StatefulSetRetentionPolicy
    ordinals: StatefulSetOrdinals


class StatefulSetStatus(TypedDict, total=False):
    observedGeneration: int
    replicas: int
    readyReplicas: int
    currentReplicas: int
    updatedReplicas: int
    availableReplicas: int
    currentRevision: str
    updateRevision: str
    collisionCount: int
    conditions: list[Condition]


class StatefulSet(KubeObject, total=False):
    spec: StatefulSetSpec
    status: StatefulSetStatus


class DaemonSetUpdateStrategy(TypedDict, total=False):
    type: str
    rollingUpdate: RollingUpdateDeployment


class DaemonSetSpec(TypedDict, total=False):
    selector: LabelSelectorSpec
    template: PodTemplateSpec
    updateStrategy: DaemonSetUpdateStrategy
    minReadySeconds: int
    revisionHistoryLimit: int


class DaemonSetStatus(TypedDict, total=False):
    currentNumberScheduled: int
    numberMisscheduled: int
    desiredNumberScheduled: int
    numberReady: int
    observedGeneration: int
    updatedNumberScheduled: int
    numberAvailable: int
    numberUnavailable: int
    collisionCount: int
    conditions: list[Condition]


class DaemonSet(KubeObject, total=False):
    spec: DaemonSetSpec
    status: DaemonSetStatus


class ControllerRevision(KubeObject, total=False):
    """A snapshot of a workload's state: a patch that restores a StatefulSet's or a
    DaemonSet's pod template."""

    data: JsonObject
    revision: int


# ------------------------------------------------------------------- events


class EventSource(TypedDict, total=False):
    component: str
    host: str


class Event(KubeObject, total=False):
    """`corev1.Event`, as the event recorder writes it and `kubectl get events` reads it."""

    involvedObject: Required[ObjectReference]
    reason: str
    message: str
    type: str
    count: int
    firstTimestamp: str | None
    lastTimestamp: str | None
    eventTime: str | None
    source: EventSource
    reportingComponent: str
    reportingInstance: str
    action: str
    related: ObjectReference
    series: JsonObject


# ---------------------------------------------------------- services and endpoints


class ServicePort(TypedDict, total=False):
    name: str
    protocol: str
    appProtocol: str
    port: Required[int]
    targetPort: int | str
    nodePort: int


class ServiceSpec(TypedDict, total=False):
    type: str
    selector: dict[str, str] | None
    ports: list[ServicePort]
    clusterIP: str
    clusterIPs: list[str]
    ipFamilies: list[str]
    externalName: str
    publishNotReadyAddresses: bool
    sessionAffinity: str
    sessionAffinityConfig: JsonObject
    internalTrafficPolicy: str
    externalTrafficPolicy: str
    ipFamilyPolicy: str
    allocateLoadBalancerNodePorts: bool
    healthCheckNodePort: int


class Service(KubeObject, total=False):
    spec: ServiceSpec
    status: JsonObject


class EndpointAddress(TypedDict, total=False):
    """`corev1.EndpointAddress`: one address of an Endpoints subset."""

    ip: Required[str]
    hostname: str
    nodeName: str
    targetRef: ObjectReference


class EndpointPort(TypedDict, total=False):
    """`corev1.EndpointPort`, and `discoveryv1.EndpointPort` (there `port` may be absent)."""

    name: str
    port: int
    protocol: str
    appProtocol: str


class EndpointSubset(TypedDict, total=False):
    addresses: list[EndpointAddress]
    notReadyAddresses: list[EndpointAddress]
    ports: list[EndpointPort]


class Endpoints(KubeObject, total=False):
    subsets: list[EndpointSubset]


class EndpointConditions(TypedDict, total=False):
    ready: bool
    serving: bool
    terminating: bool


class Endpoint(TypedDict, total=False):
    """`discoveryv1.Endpoint`: one endpoint of an EndpointSlice."""

    addresses: Required[list[str]]
    conditions: EndpointConditions
    hostname: str
    nodeName: str
    zone: str
    targetRef: ObjectReference


class EndpointSlice(KubeObject, total=False):
    addressType: Required[str]
    endpoints: list[Endpoint] | None
    ports: list[EndpointPort] | None


# ---------------------------------------------------------------- storage


class TopologySelectorLabelRequirement(TypedDict):
    key: str
    values: list[str]


class TopologySelectorTerm(TypedDict, total=False):
    matchLabelExpressions: list[TopologySelectorLabelRequirement]


class StorageClass(KubeObject, total=False):
    """`storagev1.StorageClass`: who provisions a class's volumes, and how they bind."""

    provisioner: Required[str]
    parameters: dict[str, str]
    reclaimPolicy: str
    volumeBindingMode: str
    allowVolumeExpansion: bool
    mountOptions: list[str]
    allowedTopologies: list[TopologySelectorTerm]


class TypedLocalObjectReference(TypedDict, total=False):
    apiGroup: str
    kind: str
    name: str


class PersistentVolumeClaimSpec(TypedDict, total=False):
    accessModes: list[str]
    resources: ResourceRequirements
    storageClassName: str
    volumeName: str
    volumeMode: str
    selector: LabelSelectorSpec
    dataSource: TypedLocalObjectReference
    volumeAttributesClassName: str


class PersistentVolumeClaimStatus(TypedDict, total=False):
    phase: str
    accessModes: list[str]
    capacity: dict[str, str]
    conditions: list[Condition]


class PersistentVolumeClaim(KubeObject, total=False):
    spec: PersistentVolumeClaimSpec
    status: PersistentVolumeClaimStatus


class PersistentVolumeSpec(TypedDict, total=False):
    """`corev1.PersistentVolumeSpec`; the volume source (`hostPath`, `local`, `csi`...) is
    one more key, read as JSON by whoever mounts it."""

    capacity: dict[str, str]
    accessModes: list[str]
    persistentVolumeReclaimPolicy: str
    storageClassName: str
    volumeMode: str
    claimRef: ObjectReference
    mountOptions: list[str]
    nodeAffinity: dict[str, NodeSelector]
    hostPath: JsonObject
    local: JsonObject
    csi: JsonObject


class PersistentVolumeStatus(TypedDict, total=False):
    phase: str
    message: str
    reason: str
    lastPhaseTransitionTime: str


class PersistentVolume(KubeObject, total=False):
    spec: PersistentVolumeSpec
    status: PersistentVolumeStatus


# ------------------------------------------------------------------- policy


class PodDisruptionBudgetSpec(TypedDict, total=False):
    """`policyv1.PodDisruptionBudgetSpec`: exactly one of the two budgets, each a count or a
    percentage."""

    minAvailable: int | str
    maxUnavailable: int | str
    selector: LabelSelectorSpec
    unhealthyPodEvictionPolicy: str


class PodDisruptionBudgetStatus(TypedDict, total=False):
    """What the disruption controller computes; `disruptedPods` maps a pod's name to the
    time the eviction API let it go, until the pod is seen deleted or the entry expires."""

    observedGeneration: int
    disruptedPods: dict[str, str]
    disruptionsAllowed: int
    currentHealthy: int
    desiredHealthy: int
    expectedPods: int
    conditions: list[StatusCondition]


class PodDisruptionBudget(KubeObject, total=False):
    spec: PodDisruptionBudgetSpec
    status: PodDisruptionBudgetStatus
