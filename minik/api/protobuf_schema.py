"""Field numbers of the Kubernetes protobuf messages that `kubectl create` and `debug` send.

Numbers and kinds follow k8s.io/api (core/v1, apps/v1, batch/v1) and
k8s.io/apimachinery (meta/v1, runtime, intstr, resource) `generated.proto`,
v0.32. Names are the JSON names. A Go-embedded struct (`json:",inline"`)
is a field of its own in protobuf; `inline=True` merges it into the
parent, as JSON has it. `keep_zero=True` marks Go pointers: present on the
wire means set, even to 0, "" or false. Kinds: "string", "int", "bool",
"bytes" (base64 in JSON), "time", "intorstring", "quantity", "ignore"
(status and server-owned fields, dropped), or a message name.

Only what those commands can emit is described: a Pod template as
`create deployment|job|cronjob` builds it (containers with image, command,
ports, resources), and the Pods `kubectl debug` creates (`--copy-to`,
`node/<name>`: a copy of a pod's spec, host namespaces, a hostPath), not
the whole PodSpec. The access and disruption messages (`create pdb|token|
role...`, `drain`, `auth can-i`) are in `protobuf_access`, the
HorizontalPodAutoscaler in `protobuf_autoscaling`. The decoder refuses any
other field that carries a value, naming it.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Field:
    name: str
    kind: str = "string"
    repeated: bool = False
    map: str | None = None
    keep_zero: bool = False
    inline: bool = False


def s(name: str) -> Field:
    return Field(name)


def i(name: str) -> Field:
    return Field(name, "int")


def b(name: str) -> Field:
    return Field(name, "bool")


def ptr(field: Field) -> Field:
    """A Go pointer: kept at its zero value."""
    return Field(field.name, field.kind, keep_zero=True)


def m(name: str, kind: str) -> Field:
    return Field(name, kind)


def many(name: str, kind: str = "string") -> Field:
    return Field(name, kind, repeated=True)


def mapping(name: str, value: str = "string") -> Field:
    return Field(name, "map", map=value)


def inline(kind: str) -> Field:
    return Field("", kind, inline=True)


def ignore(name: str) -> Field:
    return Field(name, "ignore")


Schema = dict[int, Field]

META: dict[str, Schema] = {
    "meta.ObjectMeta": {
        1: s("name"), 2: s("generateName"), 3: s("namespace"), 4: s("selfLink"), 5: s("uid"),
        6: s("resourceVersion"), 7: i("generation"), 8: m("creationTimestamp", "time"),
        9: m("deletionTimestamp", "time"), 10: ptr(i("deletionGracePeriodSeconds")),
        11: mapping("labels"), 12: mapping("annotations"),
        13: many("ownerReferences", "meta.OwnerReference"), 14: many("finalizers"),
        17: ignore("managedFields"),
    },
    "meta.OwnerReference": {
        1: s("kind"), 3: s("name"), 4: s("uid"), 5: s("apiVersion"),
        6: ptr(b("controller")), 7: ptr(b("blockOwnerDeletion")),
    },
    "meta.LabelSelector": {
        1: mapping("matchLabels"), 2: many("matchExpressions", "meta.LabelSelectorRequirement"),
    },
    "meta.LabelSelectorRequirement": {1: s("key"), 2: s("operator"), 3: many("values")},
}

CORE: dict[str, Schema] = {
    "core.ConfigMap": {
        1: m("metadata", "meta.ObjectMeta"), 2: mapping("data"), 3: mapping("binaryData", "bytes"),
        4: ptr(b("immutable")),
    },
    "core.Secret": {
        1: m("metadata", "meta.ObjectMeta"), 2: mapping("data", "bytes"), 3: s("type"),
        4: mapping("stringData"), 5: ptr(b("immutable")),
    },
    "core.Namespace": {
        1: m("metadata", "meta.ObjectMeta"), 2: m("spec", "core.NamespaceSpec"),
        3: ignore("status"),
    },
    "core.NamespaceSpec": {1: many("finalizers")},
    "core.ServiceAccount": {
        1: m("metadata", "meta.ObjectMeta"), 2: many("secrets", "core.ObjectReference"),
        3: many("imagePullSecrets", "core.LocalObjectReference"),
        4: ptr(b("automountServiceAccountToken")),
    },
    "core.ObjectReference": {
        1: s("kind"), 2: s("namespace"), 3: s("name"), 4: s("uid"), 5: s("apiVersion"),
        6: s("resourceVersion"), 7: s("fieldPath"),
    },
    "core.LocalObjectReference": {1: s("name")},
    "core.Service": {
        1: m("metadata", "meta.ObjectMeta"), 2: m("spec", "core.ServiceSpec"),
        3: ignore("status"),
    },
    "core.ServiceSpec": {
        1: many("ports", "core.ServicePort"), 2: mapping("selector"), 3: s("clusterIP"),
        4: s("type"), 5: many("externalIPs"), 7: s("sessionAffinity"), 8: s("loadBalancerIP"),
        9: many("loadBalancerSourceRanges"), 10: s("externalName"),
        11: s("externalTrafficPolicy"), 12: i("healthCheckNodePort"),
        13: b("publishNotReadyAddresses"),
        14: m("sessionAffinityConfig", "core.SessionAffinityConfig"),
        17: ptr(s("ipFamilyPolicy")), 18: many("clusterIPs"), 19: many("ipFamilies"),
        20: ptr(b("allocateLoadBalancerNodePorts")), 21: ptr(s("loadBalancerClass")),
        22: ptr(s("internalTrafficPolicy")), 23: ptr(s("trafficDistribution")),
    },
    "core.ServicePort": {
        1: s("name"), 2: s("protocol"), 3: i("port"), 4: m("targetPort", "intorstring"),
        5: i("nodePort"), 6: ptr(s("appProtocol")),
    },
    "core.SessionAffinityConfig": {1: m("clientIP", "core.ClientIPConfig")},
    "core.ClientIPConfig": {1: ptr(i("timeoutSeconds"))},
}

POD: dict[str, Schema] = {
    "core.Pod": {
        1: m("metadata", "meta.ObjectMeta"), 2: m("spec", "core.PodSpec"), 3: ignore("status"),
    },
    "core.PodTemplateSpec": {1: m("metadata", "meta.ObjectMeta"), 2: m("spec", "core.PodSpec")},
    "core.PodSpec": {
        1: many("volumes", "core.Volume"), 2: many("containers", "core.Container"),
        3: s("restartPolicy"), 4: ptr(i("terminationGracePeriodSeconds")),
        5: ptr(i("activeDeadlineSeconds")), 6: s("dnsPolicy"), 7: mapping("nodeSelector"),
        8: s("serviceAccountName"), 9: s("serviceAccount"), 10: s("nodeName"),
        11: b("hostNetwork"), 12: b("hostPID"), 13: b("hostIPC"),
        14: m("securityContext", "core.PodSecurityContext"),
        15: many("imagePullSecrets", "core.LocalObjectReference"), 16: s("hostname"),
        17: s("subdomain"), 18: m("affinity", "core.Affinity"), 19: s("schedulerName"),
        20: many("initContainers", "core.Container"),
        21: ptr(b("automountServiceAccountToken")),
        22: many("tolerations", "core.Toleration"), 23: many("hostAliases", "core.HostAlias"),
        24: s("priorityClassName"), 25: ptr(i("priority")),
        26: m("dnsConfig", "core.PodDNSConfig"), 27: ptr(b("shareProcessNamespace")),
        28: many("readinessGates", "core.PodReadinessGate"), 29: ptr(s("runtimeClassName")),
        30: ptr(b("enableServiceLinks")), 31: ptr(s("preemptionPolicy")),
        32: mapping("overhead", "quantity"),
        33: many("topologySpreadConstraints", "core.TopologySpreadConstraint"),
        34: many("ephemeralContainers", "core.EphemeralContainer"),
        35: ptr(b("setHostnameAsFQDN")), 36: m("os", "core.PodOS"), 37: ptr(b("hostUsers")),
        38: many("schedulingGates", "core.PodSchedulingGate"),
    },
    "core.Container": {
        1: s("name"), 2: s("image"), 3: many("command"), 4: many("args"), 5: s("workingDir"),
        6: many("ports", "core.ContainerPort"), 7: many("env", "core.EnvVar"),
        8: m("resources", "core.ResourceRequirements"),
        9: many("volumeMounts", "core.VolumeMount"), 10: m("livenessProbe", "core.Probe"),
        11: m("readinessProbe", "core.Probe"), 12: m("lifecycle", "core.Lifecycle"),
        13: s("terminationMessagePath"), 14: s("imagePullPolicy"),
        15: m("securityContext", "core.SecurityContext"), 16: b("stdin"), 17: b("stdinOnce"),
        18: b("tty"), 19: many("envFrom", "core.EnvFromSource"),
        20: s("terminationMessagePolicy"), 22: m("startupProbe", "core.Probe"),
        23: many("resizePolicy", "core.ContainerResizePolicy"), 24: ptr(s("restartPolicy")),
    },
    "core.EphemeralContainer": {
        1: inline("core.Container"), 2: s("targetContainerName"),  # EphemeralContainerCommon
    },
    "core.ContainerPort": {
        1: s("name"), 2: i("hostPort"), 3: i("containerPort"), 4: s("protocol"), 5: s("hostIP"),
    },
    "core.ContainerResizePolicy": {1: s("resourceName"), 2: s("restartPolicy")},
    "core.ResourceRequirements": {
        1: mapping("limits", "quantity"), 2: mapping("requests", "quantity"),
    },
    "core.EnvVar": {1: s("name"), 2: s("value"), 3: m("valueFrom", "core.EnvVarSource")},
    "core.EnvVarSource": {
        1: m("fieldRef", "core.ObjectFieldSelector"),
        2: m("resourceFieldRef", "core.ResourceFieldSelector"),
        3: m("configMapKeyRef", "core.KeySelector"), 4: m("secretKeyRef", "core.KeySelector"),
    },
    "core.ObjectFieldSelector": {1: s("apiVersion"), 2: s("fieldPath")},
    "core.ResourceFieldSelector": {
        1: s("containerName"), 2: s("resource"), 3: m("divisor", "quantity"),
    },
    "core.KeySelector": {  # ConfigMapKeySelector and SecretKeySelector
        1: inline("core.LocalObjectReference"), 2: s("key"), 3: ptr(b("optional")),
    },
    "core.EnvFromSource": {
        1: s("prefix"), 2: m("configMapRef", "core.EnvSource"), 3: m("secretRef", "core.EnvSource"),
    },
    "core.EnvSource": {  # ConfigMapEnvSource and SecretEnvSource
        1: inline("core.LocalObjectReference"), 2: ptr(b("optional")),
    },
    "core.VolumeMount": {
        1: s("name"), 2: b("readOnly"), 3: s("mountPath"), 4: s("subPath"),
        5: ptr(s("mountPropagation")), 6: s("subPathExpr"), 7: ptr(s("recursiveReadOnly")),
    },
}

VOLUMES: dict[str, Schema] = {
    "core.Volume": {1: s("name"), 2: inline("core.VolumeSource")},
    "core.VolumeSource": {
        1: m("hostPath", "core.HostPathVolumeSource"),
        2: m("emptyDir", "core.EmptyDirVolumeSource"),
        6: m("secret", "core.SecretVolumeSource"),
        10: m("persistentVolumeClaim", "core.PersistentVolumeClaimVolumeSource"),
        16: m("downwardAPI", "core.DownwardAPIVolumeSource"),
        19: m("configMap", "core.ConfigMapVolumeSource"),
        26: m("projected", "core.ProjectedVolumeSource"),
    },
    "core.HostPathVolumeSource": {1: s("path"), 2: ptr(s("type"))},
    "core.EmptyDirVolumeSource": {1: s("medium"), 2: m("sizeLimit", "quantity")},
    "core.SecretVolumeSource": {
        1: s("secretName"), 2: many("items", "core.KeyToPath"), 3: ptr(i("defaultMode")),
        4: ptr(b("optional")),
    },
    "core.PersistentVolumeClaimVolumeSource": {1: s("claimName"), 2: b("readOnly")},
    "core.DownwardAPIVolumeSource": {
        1: many("items", "core.DownwardAPIVolumeFile"), 2: ptr(i("defaultMode")),
    },
    "core.DownwardAPIVolumeFile": {
        1: s("path"), 2: m("fieldRef", "core.ObjectFieldSelector"),
        3: m("resourceFieldRef", "core.ResourceFieldSelector"), 4: ptr(i("mode")),
    },
    "core.ConfigMapVolumeSource": {
        1: inline("core.LocalObjectReference"), 2: many("items", "core.KeyToPath"),
        3: ptr(i("defaultMode")), 4: ptr(b("optional")),
    },
    "core.KeyToPath": {1: s("key"), 2: s("path"), 3: ptr(i("mode"))},
    "core.ProjectedVolumeSource": {
        1: many("sources", "core.VolumeProjection"), 2: ptr(i("defaultMode")),
    },
    "core.VolumeProjection": {
        1: m("secret", "core.Projection"), 2: m("downwardAPI", "core.DownwardAPIProjection"),
        3: m("configMap", "core.Projection"),
        4: m("serviceAccountToken", "core.ServiceAccountTokenProjection"),
    },
    "core.Projection": {  # SecretProjection and ConfigMapProjection
        1: inline("core.LocalObjectReference"), 2: many("items", "core.KeyToPath"),
        4: ptr(b("optional")),
    },
    "core.DownwardAPIProjection": {1: many("items", "core.DownwardAPIVolumeFile")},
    "core.ServiceAccountTokenProjection": {
        1: s("audience"), 2: ptr(i("expirationSeconds")), 3: s("path"),
    },
}

PROBES: dict[str, Schema] = {
    "core.Probe": {
        1: inline("core.ProbeHandler"), 2: i("initialDelaySeconds"), 3: i("timeoutSeconds"),
        4: i("periodSeconds"), 5: i("successThreshold"), 6: i("failureThreshold"),
        7: ptr(i("terminationGracePeriodSeconds")),
    },
    "core.ProbeHandler": {
        1: m("exec", "core.ExecAction"), 2: m("httpGet", "core.HTTPGetAction"),
        3: m("tcpSocket", "core.TCPSocketAction"), 4: m("grpc", "core.GRPCAction"),
    },
    "core.Lifecycle": {
        1: m("postStart", "core.LifecycleHandler"), 2: m("preStop", "core.LifecycleHandler"),
    },
    "core.LifecycleHandler": {
        1: m("exec", "core.ExecAction"), 2: m("httpGet", "core.HTTPGetAction"),
        3: m("tcpSocket", "core.TCPSocketAction"), 4: m("sleep", "core.SleepAction"),
    },
    "core.ExecAction": {1: many("command")},
    "core.HTTPGetAction": {
        1: s("path"), 2: m("port", "intorstring"), 3: s("host"), 4: s("scheme"),
        5: many("httpHeaders", "core.HTTPHeader"),
    },
    "core.HTTPHeader": {1: s("name"), 2: s("value")},
    "core.TCPSocketAction": {1: m("port", "intorstring"), 2: s("host")},
    "core.GRPCAction": {1: i("port"), 2: ptr(s("service"))},
    "core.SleepAction": {1: i("seconds")},
}

SECURITY: dict[str, Schema] = {
    "core.SecurityContext": {
        1: m("capabilities", "core.Capabilities"), 2: ptr(b("privileged")),
        3: m("seLinuxOptions", "core.SELinuxOptions"), 4: ptr(i("runAsUser")),
        5: ptr(b("runAsNonRoot")), 6: ptr(b("readOnlyRootFilesystem")),
        7: ptr(b("allowPrivilegeEscalation")), 8: ptr(i("runAsGroup")),
        9: ptr(s("procMount")), 11: m("seccompProfile", "core.SeccompProfile"),
    },
    "core.PodSecurityContext": {
        1: m("seLinuxOptions", "core.SELinuxOptions"), 2: ptr(i("runAsUser")),
        3: ptr(b("runAsNonRoot")), 4: many("supplementalGroups", "int"), 5: ptr(i("fsGroup")),
        6: ptr(i("runAsGroup")), 7: many("sysctls", "core.Sysctl"),
        9: ptr(s("fsGroupChangePolicy")), 10: m("seccompProfile", "core.SeccompProfile"),
    },
    "core.Capabilities": {1: many("add"), 2: many("drop")},
    "core.SELinuxOptions": {1: s("user"), 2: s("role"), 3: s("type"), 4: s("level")},
    "core.SeccompProfile": {1: s("type"), 2: ptr(s("localhostProfile"))},
    "core.Sysctl": {1: s("name"), 2: s("value")},
}

SCHEDULING: dict[str, Schema] = {
    "core.Toleration": {
        1: s("key"), 2: s("operator"), 3: s("value"), 4: s("effect"),
        5: ptr(i("tolerationSeconds")),
    },
    "core.Affinity": {
        1: m("nodeAffinity", "core.NodeAffinity"), 2: m("podAffinity", "core.PodAffinity"),
        3: m("podAntiAffinity", "core.PodAffinity"),
    },
    "core.NodeAffinity": {
        1: m("requiredDuringSchedulingIgnoredDuringExecution", "core.NodeSelector"),
        2: many("preferredDuringSchedulingIgnoredDuringExecution",
                "core.PreferredSchedulingTerm"),
    },
    "core.NodeSelector": {1: many("nodeSelectorTerms", "core.NodeSelectorTerm")},
    "core.NodeSelectorTerm": {
        1: many("matchExpressions", "core.NodeSelectorRequirement"),
        2: many("matchFields", "core.NodeSelectorRequirement"),
    },
    "core.NodeSelectorRequirement": {1: s("key"), 2: s("operator"), 3: many("values")},
    "core.PreferredSchedulingTerm": {1: i("weight"), 2: m("preference", "core.NodeSelectorTerm")},
    "core.PodAffinity": {  # PodAffinity and PodAntiAffinity
        1: many("requiredDuringSchedulingIgnoredDuringExecution", "core.PodAffinityTerm"),
        2: many("preferredDuringSchedulingIgnoredDuringExecution",
                "core.WeightedPodAffinityTerm"),
    },
    "core.PodAffinityTerm": {
        1: m("labelSelector", "meta.LabelSelector"), 2: many("namespaces"),
        3: s("topologyKey"), 4: m("namespaceSelector", "meta.LabelSelector"),
        5: many("matchLabelKeys"), 6: many("mismatchLabelKeys"),
    },
    "core.WeightedPodAffinityTerm": {
        1: i("weight"), 2: m("podAffinityTerm", "core.PodAffinityTerm"),
    },
    "core.HostAlias": {1: s("ip"), 2: many("hostnames")},
    "core.PodDNSConfig": {
        1: many("nameservers"), 2: many("searches"), 3: many("options", "core.PodDNSConfigOption"),
    },
    "core.PodDNSConfigOption": {1: s("name"), 2: ptr(s("value"))},
    "core.PodReadinessGate": {1: s("conditionType")},
    "core.TopologySpreadConstraint": {
        1: i("maxSkew"), 2: s("topologyKey"), 3: s("whenUnsatisfiable"),
        4: m("labelSelector", "meta.LabelSelector"), 5: ptr(i("minDomains")),
        6: ptr(s("nodeAffinityPolicy")), 7: ptr(s("nodeTaintsPolicy")), 8: many("matchLabelKeys"),
    },
    "core.PodOS": {1: s("name")},
    "core.PodSchedulingGate": {1: s("name")},
}

WORKLOADS: dict[str, Schema] = {
    "apps.Deployment": {
        1: m("metadata", "meta.ObjectMeta"), 2: m("spec", "apps.DeploymentSpec"),
        3: ignore("status"),
    },
    "apps.DeploymentSpec": {
        1: ptr(i("replicas")), 2: m("selector", "meta.LabelSelector"),
        3: m("template", "core.PodTemplateSpec"), 4: m("strategy", "apps.DeploymentStrategy"),
        5: i("minReadySeconds"), 6: ptr(i("revisionHistoryLimit")), 7: b("paused"),
        9: ptr(i("progressDeadlineSeconds")),
    },
    "apps.DeploymentStrategy": {1: s("type"), 2: m("rollingUpdate", "apps.RollingUpdate")},
    "apps.RollingUpdate": {
        1: ptr(m("maxUnavailable", "intorstring")), 2: ptr(m("maxSurge", "intorstring")),
    },
    "batch.Job": {
        1: m("metadata", "meta.ObjectMeta"), 2: m("spec", "batch.JobSpec"), 3: ignore("status"),
    },
    "batch.JobSpec": {
        1: ptr(i("parallelism")), 2: ptr(i("completions")), 3: ptr(i("activeDeadlineSeconds")),
        4: m("selector", "meta.LabelSelector"), 5: ptr(b("manualSelector")),
        6: m("template", "core.PodTemplateSpec"), 7: ptr(i("backoffLimit")),
        8: ptr(i("ttlSecondsAfterFinished")), 9: ptr(s("completionMode")),
        10: ptr(b("suspend")), 12: ptr(i("backoffLimitPerIndex")),
        13: ptr(i("maxFailedIndexes")), 14: ptr(s("podReplacementPolicy")),
        15: ptr(s("managedBy")),
    },
    "batch.CronJob": {
        1: m("metadata", "meta.ObjectMeta"), 2: m("spec", "batch.CronJobSpec"),
        3: ignore("status"),
    },
    "batch.CronJobSpec": {
        1: s("schedule"), 2: ptr(i("startingDeadlineSeconds")), 3: s("concurrencyPolicy"),
        4: ptr(b("suspend")), 5: m("jobTemplate", "batch.JobTemplateSpec"),
        6: ptr(i("successfulJobsHistoryLimit")), 7: ptr(i("failedJobsHistoryLimit")),
        8: ptr(s("timeZone")),
    },
    "batch.JobTemplateSpec": {1: m("metadata", "meta.ObjectMeta"), 2: m("spec", "batch.JobSpec")},
}

MESSAGES: dict[str, Schema] = {
    **META, **CORE, **POD, **VOLUMES, **PROBES, **SECURITY, **SCHEDULING, **WORKLOADS,
}

ROOTS: dict[tuple[str, str], str] = {
    ("v1", "ConfigMap"): "core.ConfigMap",
    ("v1", "Secret"): "core.Secret",
    ("v1", "Namespace"): "core.Namespace",
    ("v1", "ServiceAccount"): "core.ServiceAccount",
    ("v1", "Service"): "core.Service",
    ("v1", "Pod"): "core.Pod",
    ("apps/v1", "Deployment"): "apps.Deployment",
    ("batch/v1", "Job"): "batch.Job",
    ("batch/v1", "CronJob"): "batch.CronJob",
}
