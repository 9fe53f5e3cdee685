"""`minik expose TYPE NAME`: a Service for an existing object, as `kubectl expose` makes it.

The Service takes its selector from the object (a Deployment's or
ReplicaSet's `matchLabels`, a ReplicationController's selector, a pod's
labels, another Service's selector) unless `--selector` is given, the
object's labels unless `--labels` is given, and its name unless `--name` is.
Without `--port` the ports come from the object (its containers' ports, or
the Service's ports), named `port-1`, `port-2`... when there are several. A
numeric `--target-port` is a number, any other a container port name; without
it each port targets its own number.
"""

from __future__ import annotations

from typing import Any

import click

from minik.api.resources import REGISTRY, ResourceType
from minik.cli.context import CliContext, fail, handle_errors, pass_context
from minik.cli.create import dry_run_option, output_option, post, show
from minik.cli.targets import parse_args
from minik.client.paths import object_path

EXPOSABLE = ("Deployment", "ReplicaSet", "ReplicationController", "Pod", "Service")
SERVICE_TYPES = ("ClusterIP", "NodePort", "LoadBalancer", "ExternalName")


def _pairs(text: str) -> dict[str, str]:
    pairs = {}
    for item in filter(None, text.split(",")):
        key, sep, value = item.partition("=")
        if not sep:
            fail(f"error: invalid label spec: {item}")
        pairs[key.strip()] = value.strip()
    return pairs


def selector_of(obj: dict[str, Any]) -> dict[str, str]:
    """`MapBasedSelectorForObject`: the label map whose pods the Service should reach."""
    kind, spec = obj.get("kind"), obj.get("spec") or {}
    if kind == "Pod":
        labels = (obj.get("metadata") or {}).get("labels") or {}
        if not labels:
            fail("error: the pod has no labels and cannot be exposed")
        return dict(labels)
    if kind in ("Service", "ReplicationController"):
        selector = spec.get("selector") or {}
        if not selector and kind == "Service":
            fail("error: the service has no pod selector set")
        return dict(selector)
    selector = spec.get("selector") or {}
    if selector.get("matchExpressions"):
        fail(f'error: couldn\'t convert expressions - "{selector["matchExpressions"]}" to '
             "map-based selector format")
    return dict(selector.get("matchLabels") or {})


def object_ports(obj: dict[str, Any]) -> list[tuple[int, str]]:
    """(port, protocol) the object exposes: its containers' ports or its Service ports."""
    spec = obj.get("spec") or {}
    if obj.get("kind") == "Service":
        return [(int(p["port"]), p.get("protocol") or "TCP") for p in spec.get("ports") or []]
    pod_spec = spec if obj.get("kind") == "Pod" else (spec.get("template") or {}).get("spec")
    return [(int(p["containerPort"]), p.get("protocol") or "TCP")
            for c in (pod_spec or {}).get("containers") or [] for p in c.get("ports") or []]


def service_for(obj: dict[str, Any], *, name: str, port: int | None, target_port: str | None,
                protocol: str | None, service_type: str | None, selector: str | None,
                labels: str | None) -> dict[str, Any]:
    """The Service `kubectl expose` would create for `obj`."""
    ports = [(port, protocol or "TCP")] if port is not None else object_ports(obj)
    if not ports:
        fail("error: couldn't find port via --port flag or introspection")
    target: int | str | None = None
    if target_port:
        target = int(target_port) if target_port.isdigit() else target_port
    service_ports = []
    for index, (number, port_protocol) in enumerate(ports, start=1):
        entry: dict[str, Any] = {"protocol": protocol or port_protocol, "port": number,
                                 "targetPort": number if target is None else target}
        if len(ports) > 1:
            entry["name"] = f"port-{index}"
        service_ports.append(entry)
    spec: dict[str, Any] = {"ports": service_ports,
                            "selector": _pairs(selector) if selector else selector_of(obj)}
    if service_type:
        spec["type"] = service_type
    metadata: dict[str, Any] = {"name": name, "creationTimestamp": None}
    object_labels = _pairs(labels) if labels else (obj.get("metadata") or {}).get("labels")
    if object_labels:
        metadata["labels"] = dict(object_labels)
    return {"kind": "Service", "apiVersion": "v1", "metadata": metadata, "spec": spec,
            "status": {"loadBalancer": {}}}


@click.command()
@click.argument("args", nargs=-1, required=True)
@click.option("--port", type=int, help="The port that the service should serve on.")
@click.option("--target-port", help="Name or number of the port on the pods to direct "
                                    "traffic to.")
@click.option("--protocol", type=click.Choice(["TCP", "UDP", "SCTP"]),
              help="The network protocol of the service.")
@click.option("--type", "service_type", type=click.Choice(SERVICE_TYPES),
              help="Type for this service.")
@click.option("--name", "service_name", help="The name of the new service.")
@click.option("--selector", help="A label selector (key=value,...) for the service.")
@click.option("-l", "--labels", help="Labels of the new service.")
@output_option
@dry_run_option
@pass_context
@handle_errors
def expose(ctx: CliContext, args: tuple[str, ...], port: int | None, target_port: str | None,
           protocol: str | None, service_type: str | None, service_name: str | None,
           selector: str | None, labels: str | None, output: str | None,
           dry_run: str) -> None:
    """Expose a Deployment, ReplicaSet, ReplicationController, pod or Service as a Service."""
    targets = parse_args(args)
    if len(targets) != 1 or len(targets[0].names) != 1:
        fail("error: expose needs exactly one resource, as <type>/<name> or <type> <name>")
    rt, name = targets[0].rt, targets[0].names[0]
    if rt.kind not in EXPOSABLE:
        fail(f"error: cannot expose a {rt.kind}")
    namespace = ctx.namespace
    obj = ctx.client().request("GET", object_path(rt, namespace, name))
    service = service_for(obj, name=service_name or name, port=port, target_port=target_port,
                          protocol=protocol, service_type=service_type, selector=selector,
                          labels=labels)
    service["metadata"]["namespace"] = namespace
    services: ResourceType = REGISTRY.get("services")
    created = post(ctx, services, service, namespace, dry_run)
    if output:
        show(services, created, output, dry_run)
    else:
        click.echo(f"service/{created['metadata']['name']} exposed"
                   + {"server": " (server dry run)", "client": " (dry run)"}.get(dry_run, ""))
