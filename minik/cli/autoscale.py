"""`minik autoscale TYPE NAME`: an HPA for a scalable object, as `kubectl autoscale` makes it.

As `kubectl autoscale` (1.33, autoscaling/v2): the HPA is named after the
object unless `--name` is given, targets it by apiVersion, kind and name,
keeps between `--min` (unset: the server's default, 1) and `--max` replicas,
and, with `--cpu-percent`, a cpu Utilization metric (without it, the
server's default: 80%).
"""

from __future__ import annotations

from typing import Any

import click

from minik.api.resources import HORIZONTALPODAUTOSCALERS
from minik.cli.context import CliContext, fail, handle_errors, pass_context
from minik.cli.create import dry_run_option, output_option, post, show
from minik.cli.printing import object_name
from minik.cli.targets import parse_args
from minik.client.paths import object_path


def autoscaler_for(rt_api_version: str, kind: str, name: str, *, hpa_name: str,
                   minimum: int, maximum: int, cpu_percent: int) -> dict[str, Any]:
    """The HPA `kubectl autoscale` would create (createHorizontalPodAutoscalerV2)."""
    spec: dict[str, Any] = {
        "scaleTargetRef": {"apiVersion": rt_api_version, "kind": kind, "name": name},
        "maxReplicas": maximum,
    }
    if minimum > 0:
        spec["minReplicas"] = minimum
    if cpu_percent >= 0:
        spec["metrics"] = [{"type": "Resource", "resource": {"name": "cpu", "target": {
            "type": "Utilization", "averageUtilization": cpu_percent}}}]
    return {"kind": "HorizontalPodAutoscaler", "apiVersion": "autoscaling/v2",
            "metadata": {"name": hpa_name, "creationTimestamp": None}, "spec": spec,
            "status": {"currentMetrics": None, "desiredReplicas": 0}}


@click.command()
@click.argument("args", nargs=-1, required=True)
@click.option("--min", "minimum", type=int, default=-1,
              help="The lower limit for the number of pods; unset: the server's default.")
@click.option("--max", "maximum", type=int, default=-1, help="The upper limit for the number "
                                                              "of pods. Required.")
@click.option("--cpu-percent", type=int, default=-1,
              help="The target average CPU utilization, in percent of the pods' request.")
@click.option("--name", "hpa_name", help="The name of the new autoscaler.")
@output_option
@dry_run_option
@pass_context
@handle_errors
def autoscale(ctx: CliContext, args: tuple[str, ...], minimum: int, maximum: int,
              cpu_percent: int, hpa_name: str | None, output: str | None,
              dry_run: str) -> None:
    """Autoscale a Deployment, ReplicaSet, StatefulSet or ReplicationController."""
    if maximum < 1:
        fail(f"error: --max=MAXPODS is required and must be at least 1, max: {maximum}")
    if maximum < minimum:
        fail(f"error: --max=MAXPODS must be larger or equal to --min=MINPODS, max: {maximum}, "
             f"min: {minimum}")
    targets = parse_args(args)
    if len(targets) != 1 or len(targets[0].names) != 1:
        fail("error: autoscale needs exactly one resource, as <type>/<name> or <type> <name>")
    rt, name = targets[0].rt, targets[0].names[0]
    if rt.subresource("scale") is None:
        fail(f"error: cannot autoscale a {rt.kind}: no scale subresource")
    ctx.client().request("GET", object_path(rt, ctx.namespace, name))
    hpa = autoscaler_for(rt.api_version, rt.kind, name, hpa_name=hpa_name or name,
                         minimum=minimum, maximum=maximum, cpu_percent=cpu_percent)
    created = post(ctx, HORIZONTALPODAUTOSCALERS, hpa, ctx.namespace, dry_run)
    if output:
        show(HORIZONTALPODAUTOSCALERS, created, output, dry_run)
    else:
        click.echo(f"{object_name(HORIZONTALPODAUTOSCALERS, created)} autoscaled"
                   + {"server": " (server dry run)", "client": " (dry run)"}.get(dry_run, ""))
