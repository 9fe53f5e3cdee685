"""`minik describe`, and kubectl's describers for the kinds minik serves, keyed by kind.

Each writes the lines kubectl's `describe<Kind>` writes, fetching what it
fetches (a deployment's ReplicaSets, a controller's pods, a service's
endpoints, a node's pods and lease). Kinds not listed here fall back to the
generic describer in `describe`, where the writing conventions they all
share live.
"""

from __future__ import annotations

import base64
from typing import TYPE_CHECKING, Any

import click

from minik.api.errors import ApiError
from minik.api.resources import REGISTRY, ResourceType
from minik.cli.context import CliContext, fail, handle_errors, pass_context, server_error_line
from minik.cli.describe import (
    Described,
    Describer,
    PrefixWriter,
    annotations_multiline,
    describe_events,
    describe_generic,
    fetch_events,
    labels_multiline,
    rfc1123z,
)
from minik.cli.describe_autoscaling import describe_horizontal_pod_autoscaler
from minik.cli.describe_node import describe_node
from minik.cli.describe_pod import describe_pod
from minik.cli.describe_storage import (
    describe_persistent_volume,
    describe_persistent_volume_claim,
    describe_storage_class,
)
from minik.cli.describe_workloads import (
    describe_cron_job,
    describe_daemon_set,
    describe_deployment,
    describe_job,
    describe_replica_set,
    describe_replication_controller,
    describe_stateful_set,
    header,
)
from minik.cli.targets import Target, parse_args
from minik.client.paths import collection_path, object_path

if TYPE_CHECKING:
    from minik.client.rest import RestClient


def describe_service(d: Described, w: PrefixWriter) -> None:
    spec = d.get("spec", default={})
    header(d, w)
    labels_multiline(w, "Labels", d.meta.get("labels"))
    annotations_multiline(w, "Annotations", d.meta.get("annotations"))
    selector = spec.get("selector") or {}
    w.write(0, f"Selector:\t{','.join(f'{k}={v}' for k, v in sorted(selector.items()))}\n")
    w.write(0, f"Type:\t{spec.get('type', '')}\n")
    if spec.get("ipFamilyPolicy"):
        w.write(0, f"IP Family Policy:\t{spec['ipFamilyPolicy']}\n")
    w.write(0, f"IP Families:\t{','.join(spec.get('ipFamilies') or []) or '<none>'}\n")
    w.write(0, f"IP:\t{spec.get('clusterIP', '')}\n")
    w.write(0, f"IPs:\t{','.join(spec.get('clusterIPs') or []) or '<none>'}\n")
    if spec.get("externalIPs"):
        w.write(0, f"External IPs:\t{','.join(spec['externalIPs'])}\n")
    if spec.get("externalName"):
        w.write(0, f"External Name:\t{spec['externalName']}\n")
    endpoints = _endpoints(d)
    for port in spec.get("ports") or []:
        name, proto = port.get("name") or "<unset>", port.get("protocol", "")
        w.write(0, f"Port:\t{name}\t{port.get('port', 0)}/{proto}\n")
        w.write(0, f"TargetPort:\t{port.get('targetPort', 0)}/{proto}\n")
        if port.get("nodePort"):
            w.write(0, f"NodePort:\t{name}\t{port['nodePort']}/{proto}\n")
        w.write(0, f"Endpoints:\t{_endpoint_text(endpoints, port.get('name', ''))}\n")
    w.write(0, f"Session Affinity:\t{spec.get('sessionAffinity', '')}\n")
    for key, title in (("externalTrafficPolicy", "External Traffic Policy"),
                       ("internalTrafficPolicy", "Internal Traffic Policy")):
        if spec.get(key):
            w.write(0, f"{title}:\t{spec[key]}\n")
    describe_events(w, d.events or [], d.now)


def _endpoints(d: Described) -> list[tuple[str, str, int]]:
    """(port name, address, port) of ready endpoints: EndpointSlices as kubectl reads
    them, else the Endpoints object."""
    slices_rt, endpoints_rt = REGISTRY.get("endpointslices"), REGISTRY.get("endpoints")
    assert slices_rt is not None and endpoints_rt is not None
    namespace, name = d.meta.get("namespace"), d.meta.get("name", "")
    slices = d.list(slices_rt, namespace, labelSelector=f"kubernetes.io/service-name={name}")
    if slices:
        return [(p.get("name") or "", (e.get("addresses") or [""])[0], p.get("port") or 0)
                for s in slices for p in s.get("ports") or [] for e in s.get("endpoints") or []
                if (e.get("conditions") or {}).get("ready", True) is not False]
    try:
        endpoints = d.client.request("GET", object_path(endpoints_rt, namespace, name))
    except ApiError:
        return []
    return [(p.get("name") or "", a.get("ip", ""), p.get("port", 0))
            for subset in endpoints.get("subsets") or [] for p in subset.get("ports") or []
            for a in subset.get("addresses") or []]


def _endpoint_text(endpoints: list[tuple[str, str, int]], port_name: str) -> str:
    if not endpoints:
        return "<none>"
    found = [f"{address}:{port}" for name, address, port in endpoints if name == port_name]
    return ",".join(found[:3]) + (f" + {len(found) - 3} more..." if len(found) > 3 else "")


def describe_config_map(d: Described, w: PrefixWriter) -> None:
    header(d, w)
    labels_multiline(w, "Labels", d.meta.get("labels"))
    annotations_multiline(w, "Annotations", d.meta.get("annotations"))
    w.write(0, "\nData\n====\n")
    for key, value in sorted((d.obj.get("data") or {}).items()):
        w.write(0, f"{key}:\n----\n{value}\n\n")
    w.write(0, "\nBinaryData\n====\n")
    for key, value in sorted((d.obj.get("binaryData") or {}).items()):
        w.write(0, f"{key}: {len(base64.b64decode(value))} bytes\n")
    w.write(0, "\n")
    describe_events(w, d.events or [], d.now)


def describe_secret(d: Described, w: PrefixWriter) -> None:
    header(d, w)
    labels_multiline(w, "Labels", d.meta.get("labels"))
    annotations_multiline(w, "Annotations", d.meta.get("annotations"))
    w.write(0, f"\nType:\t{d.obj.get('type', '')}\n")
    w.write(0, "\nData\n====\n")
    for key, value in sorted((d.obj.get("data") or {}).items()):
        w.write(0, f"{key}:\t{len(base64.b64decode(value or ''))} bytes\n")


def describe_namespace(d: Described, w: PrefixWriter) -> None:
    w.write(0, f"Name:\t{d.meta.get('name', '')}\n")
    labels_multiline(w, "Labels", d.meta.get("labels"))
    annotations_multiline(w, "Annotations", d.meta.get("annotations"))
    w.write(0, f"Status:\t{d.get('status', 'phase', default='')}\n")
    conditions = d.get("status", "conditions", default=[]) or []
    if conditions:
        w.write(0, "Conditions:\n")
        w.write(1, "Type\tStatus\tLastTransitionTime\tReason\tMessage\n")
        w.write(1, "----\t------\t------------------\t------\t-------\n")
        for c in conditions:
            w.write(1, f"{c.get('type', '')}\t{c.get('status', '')}\t"
                       f"{rfc1123z(c.get('lastTransitionTime'))}\t{c.get('reason', '')}\t"
                       f"{c.get('message', '')}\n")


def describe_endpoints(d: Described, w: PrefixWriter) -> None:
    header(d, w)
    labels_multiline(w, "Labels", d.meta.get("labels"))
    annotations_multiline(w, "Annotations", d.meta.get("annotations"))
    w.write(0, "Subsets:\n")
    for subset in d.obj.get("subsets") or []:
        for key, title in (("addresses", "Addresses"), ("notReadyAddresses",
                                                        "NotReadyAddresses")):
            ips = ",".join(a.get("ip", "") for a in subset.get(key) or [])
            w.write(1, f"{title}:\t{ips or '<none>'}\n")
        if subset.get("ports"):
            w.write(1, "Ports:\n")
            w.write(2, "Name\tPort\tProtocol\n")
            w.write(2, "----\t----\t--------\n")
            for port in subset["ports"]:
                w.write(2, f"{port.get('name') or '<unset>'}\t{port.get('port', 0)}\t"
                           f"{port.get('protocol', '')}\n")
        w.write(0, "\n")
    describe_events(w, d.events or [], d.now)


def describe_service_account(d: Described, w: PrefixWriter) -> None:
    header(d, w)
    labels_multiline(w, "Labels", d.meta.get("labels"))
    annotations_multiline(w, "Annotations", d.meta.get("annotations"))
    secrets_rt = REGISTRY.get("secrets")
    assert secrets_rt is not None
    secrets = d.list(secrets_rt, d.meta.get("namespace"))
    existing = {(s.get("metadata") or {}).get("name") for s in secrets}
    tokens = [(s.get("metadata") or {}).get("name", "") for s in secrets
              if s.get("type") == "kubernetes.io/service-account-token"
              and ((s.get("metadata") or {}).get("annotations") or {}).get(
                  "kubernetes.io/service-account.name") == d.meta.get("name")]
    sections = (("Image pull secrets:", [r.get("name", "") for r in
                                         d.obj.get("imagePullSecrets") or []]),
                ("Mountable secrets: ", [r.get("name", "") for r in d.obj.get("secrets") or []]),
                ("Tokens:            ", tokens))
    for title, names in sections:
        if not names:
            w.write(0, f"{title}\t<none>\n")
        for i, name in enumerate(names):
            missing = "" if name in existing else " (not found)"
            w.write(0, f"{title if i == 0 else ' ' * 19}\t{name}{missing}\n")
    describe_events(w, d.events or [], d.now)


DESCRIBERS: dict[str, Describer] = {
    "Pod": describe_pod,
    "Deployment": describe_deployment,
    "ReplicaSet": describe_replica_set,
    "ReplicationController": describe_replication_controller,
    "StatefulSet": describe_stateful_set,
    "DaemonSet": describe_daemon_set,
    "Job": describe_job,
    "CronJob": describe_cron_job,
    "Service": describe_service,
    "ConfigMap": describe_config_map,
    "Secret": describe_secret,
    "Namespace": describe_namespace,
    "Node": describe_node,
    "Endpoints": describe_endpoints,
    "ServiceAccount": describe_service_account,
    "PersistentVolume": describe_persistent_volume,
    "PersistentVolumeClaim": describe_persistent_volume_claim,
    "StorageClass": describe_storage_class,
    "HorizontalPodAutoscaler": describe_horizontal_pod_autoscaler,
}


def describer_for(rt: ResourceType) -> Describer:
    return DESCRIBERS.get(rt.kind, describe_generic)


def describe_object(client: RestClient, rt: ResourceType, obj: dict[str, Any]) -> str:
    d = Described(client, rt, obj)
    d.events = fetch_events(d)
    w = PrefixWriter()
    describer_for(rt)(d, w)
    return w.render()


def objects_for(client: RestClient, target: Target, namespace: str | None, selector: str | None
                ) -> tuple[list[dict[str, Any]], list[ApiError]]:
    rt, ns = target.rt, namespace if target.rt.namespaced else None
    if not target.names:
        params = {"labelSelector": selector} if selector else {}
        listed = client.request("GET", collection_path(rt, ns), params={**params, "limit": 500})
        return listed.get("items") or [], []
    found, errors = [], []
    for name in target.names:
        try:
            found.append(client.request("GET", object_path(rt, ns, name)))
        except ApiError as e:
            if e.code != 404:
                raise
            errors.append(e)
    return found, errors


def prefix_matches(client: RestClient, target: Target,
                   namespace: str | None) -> list[dict[str, Any]]:
    """`describe TYPE NAME` for a missing NAME: every object whose name starts with it."""
    ns = namespace if target.rt.namespaced else None
    listed = client.request("GET", collection_path(target.rt, ns), params={"limit": 500})
    return [item for item in listed.get("items") or []
            if (item.get("metadata") or {}).get("name", "").startswith(target.names[0])]


@click.command("describe")
@click.argument("args", nargs=-1)
@click.option("-A", "--all-namespaces", is_flag=True, help="In all namespaces.")
@click.option("-l", "--selector", help="Only objects matching this label selector.")
@pass_context
@handle_errors
def describe(ctx: CliContext, args: tuple[str, ...], all_namespaces: bool,
             selector: str | None) -> None:
    """Show details of a resource or group of resources."""
    targets = parse_args(args)
    if not targets:
        fail('error: You must specify the type of resource to describe. Use "minik '
             'api-resources" for a complete list of supported resources.')
    ns = None if all_namespaces else ctx.namespace
    client = ctx.client()
    texts: list[str] = []
    errors: list[ApiError] = []
    for target in targets:
        objects, missing = objects_for(client, target, ns, selector)
        if missing and len(args) == 2:
            matches = prefix_matches(client, target, ns)
            if matches:
                for obj in matches:
                    click.echo(describe_object(client, target.rt, obj))
                return
        errors += missing
        texts += [describe_object(client, target.rt, obj) for obj in objects]
    if texts:
        click.echo("\n\n".join(texts), nl=False)
    elif not errors:
        click.echo("No resources found" if ns is None else
                   f"No resources found in {ns} namespace.", err=True)
    for error in errors:
        click.echo(server_error_line(error), err=True)
    if errors:
        raise SystemExit(1)
