"""`minik create -f FILE` and `minik create namespace|configmap|deployment|job|cronjob ...`.

`create -f` POSTs each manifest as it is (no last-applied annotation), so a
second run fails with AlreadyExists as kubectl's does. The generators build
the same objects `kubectl create <kind>` sends, with fieldManager
`kubectl-create`.
"""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import click

from minik.api.errors import ApiError
from minik.api.resources import REGISTRY, ResourceType
from minik.cli.apply import ApplyError, load_manifests, report_errors
from minik.cli.context import CliContext, fail, handle_errors, pass_context
from minik.cli.printing import object_name, to_json, to_yaml
from minik.cli.targets import no_mapping_error, object_namespace, parse_args, rt_for_object
from minik.client.paths import collection_path, object_path

FIELD_MANAGER = "kubectl-create"


def create_params(dry_run: str) -> dict[str, str]:
    params = {"fieldManager": FIELD_MANAGER, "fieldValidation": "Strict"}
    if dry_run == "server":
        params["dryRun"] = "All"
    return params


def _suffix(dry_run: str) -> str:
    return {"server": " (server dry run)", "client": " (dry run)"}.get(dry_run, "")


def post(ctx: CliContext, rt: ResourceType, obj: dict[str, Any], namespace: str | None,
         dry_run: str) -> dict[str, Any]:
    if dry_run == "client":
        return obj
    try:
        return ctx.client().request("POST", collection_path(rt, namespace),
                                    params=create_params(dry_run), body=obj)
    finally:
        ctx.flush_warnings()


def show(rt: ResourceType, obj: dict[str, Any], output: str | None, dry_run: str) -> None:
    if output == "yaml":
        click.echo(to_yaml(obj), nl=False)
    elif output == "json":
        click.echo(to_json(obj), nl=False)
    elif output == "name":
        click.echo(object_name(rt, obj))
    else:
        click.echo(f"{object_name(rt, obj)} created{_suffix(dry_run)}")


def create_from_files(ctx: CliContext, filenames: tuple[str, ...], recursive: bool,
                      output: str | None, dry_run: str) -> None:
    errors: list[ApplyError] = []
    default_ns = ctx.namespace
    for manifest in load_manifests(filenames, recursive, "create"):
        rt = rt_for_object(manifest.obj)
        if rt is None:
            errors.append(ApplyError(no_mapping_error(manifest.obj, manifest.source)))
            continue
        ns = object_namespace(rt, manifest.obj, default_ns)
        try:
            created = post(ctx, rt, manifest.obj, ns, dry_run)
        except ApiError as e:
            message = f'error when creating "{manifest.source}": {e.message}'
            errors.append(ApplyError(message, ApiError(e.code, e.reason, message, e.details)))
            continue
        show(rt, created, output, dry_run)
    report_errors(errors)


output_option = click.option("-o", "--output", type=click.Choice(["yaml", "json", "name"]),
                             help="Print the created object.")
dry_run_option = click.option("--dry-run", type=click.Choice(["none", "client", "server"]),
                              default="none", help="Only show what would be created.")


@click.group("create", invoke_without_command=True)
@click.option("-f", "--filename", "filenames", multiple=True,
              help="Files, directories or - (stdin) with the objects to create.")
@click.option("-R", "--recursive", is_flag=True, help="Read directories recursively.")
@output_option
@dry_run_option
@click.pass_context
def create(click_ctx: click.Context, filenames: tuple[str, ...], recursive: bool,
           output: str | None, dry_run: str) -> None:
    """Create objects from manifests, or one object of a given kind."""
    if click_ctx.invoked_subcommand is not None:
        return
    if not filenames:
        fail("error: must specify one of -f and -k")
    ctx = click_ctx.find_object(CliContext)
    assert ctx is not None, "the minik group always sets its context"
    handle_errors(create_from_files)(ctx, filenames, recursive, output, dry_run)


def _generated(ctx: CliContext, kind: str, obj: dict[str, Any], output: str | None,
               dry_run: str) -> None:
    rt = REGISTRY.resolve(kind)
    assert rt is not None
    ns = ctx.namespace if rt.namespaced else None
    if ns:
        obj["metadata"]["namespace"] = ns
    show(rt, post(ctx, rt, obj, ns, dry_run), output, dry_run)


def _meta(name: str, labels: dict[str, str] | None = None) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "creationTimestamp": None}
    if labels:
        meta["labels"] = labels
    return meta


@create.command("namespace")
@click.argument("name")
@output_option
@dry_run_option
@pass_context
@handle_errors
def create_namespace(ctx: CliContext, name: str, output: str | None, dry_run: str) -> None:
    """Create a namespace."""
    obj = {"kind": "Namespace", "apiVersion": "v1", "metadata": _meta(name), "spec": {},
           "status": {}}
    _generated(ctx, "namespace", obj, output, dry_run)


def _pairs(literals: tuple[str, ...], files: tuple[str, ...], *, encode: bool) -> dict[str, str]:
    data: dict[str, str] = {}
    for literal in literals:
        key, sep, value = literal.partition("=")
        if not sep or not key:
            fail(f"error: invalid literal source {literal}, expected key=value")
        data[key] = base64.b64encode(value.encode()).decode() if encode else value
    for spec in files:
        key, sep, path = spec.partition("=")
        file = Path(path if sep else spec)
        try:
            content = file.read_bytes()
        except OSError as e:
            fail(f"error: error reading {file}: {e.strerror}")
        data[key if sep else file.name] = (base64.b64encode(content).decode() if encode
                                          else content.decode())
    return data


@create.command("configmap")
@click.argument("name")
@click.option("--from-literal", multiple=True, help="key=value")
@click.option("--from-file", multiple=True, help="[key=]path")
@output_option
@dry_run_option
@pass_context
@handle_errors
def create_configmap(ctx: CliContext, name: str, from_literal: tuple[str, ...],
                     from_file: tuple[str, ...], output: str | None, dry_run: str) -> None:
    """Create a config map from literals and files."""
    obj = {"kind": "ConfigMap", "apiVersion": "v1", "metadata": _meta(name),
           "data": _pairs(from_literal, from_file, encode=False)}
    _generated(ctx, "configmap", obj, output, dry_run)


@create.command("secret")
@click.argument("secret_type", type=click.Choice(["generic"]))
@click.argument("name")
@click.option("--from-literal", multiple=True, help="key=value")
@click.option("--from-file", multiple=True, help="[key=]path")
@click.option("--type", "type_", default="Opaque", help="Secret type.")
@output_option
@dry_run_option
@pass_context
@handle_errors
def create_secret(ctx: CliContext, secret_type: str, name: str, from_literal: tuple[str, ...],
                  from_file: tuple[str, ...], type_: str, output: str | None,
                  dry_run: str) -> None:
    """Create a generic secret from literals and files."""
    obj = {"kind": "Secret", "apiVersion": "v1", "metadata": _meta(name),
           "data": _pairs(from_literal, from_file, encode=True), "type": type_}
    _generated(ctx, "secret", obj, output, dry_run)


@create.command("deployment")
@click.argument("name")
@click.option("--image", multiple=True, required=True, help="Container image(s).")
@click.option("--replicas", type=int, default=1, show_default=True)
@click.option("--port", type=int, help="Container port to expose.")
@output_option
@dry_run_option
@pass_context
@handle_errors
def create_deployment(ctx: CliContext, name: str, image: tuple[str, ...], replicas: int,
                      port: int | None, output: str | None, dry_run: str) -> None:
    """Create a deployment running the given image(s)."""
    containers = []
    for img in image:
        container: dict[str, Any] = {"name": _container_name(img), "image": img,
                                     "resources": {}}
        if port is not None:
            container["ports"] = [{"containerPort": port}]
        containers.append(container)
    labels = {"app": name}
    obj = {"kind": "Deployment", "apiVersion": "apps/v1",
           "metadata": _meta(name, labels),
           "spec": {"replicas": replicas, "selector": {"matchLabels": labels},
                    "template": {"metadata": _meta_template(labels),
                                 "spec": {"containers": containers}},
                    "strategy": {}},
           "status": {}}
    _generated(ctx, "deployment", obj, output, dry_run)


def _meta_template(labels: dict[str, str]) -> dict[str, Any]:
    return {"creationTimestamp": None, "labels": labels}


def _container_name(image: str) -> str:
    base = image.rsplit("/", 1)[-1].split("@", 1)[0].split(":", 1)[0]
    return "".join(c if c.isalnum() or c == "-" else "-" for c in base.lower()) or "container"


def _batch_pod_template(name: str, image: str, command: tuple[str, ...],
                        restart: str) -> dict[str, Any]:
    container: dict[str, Any] = {"name": name, "image": image}
    if command:
        container["command"] = list(command)
    container["resources"] = {}
    return {"metadata": {"creationTimestamp": None},
            "spec": {"containers": [container], "restartPolicy": restart}}


def _generated_batch(ctx: CliContext, kind: str, obj: dict[str, Any], output: str | None,
                     dry_run: str) -> None:
    """As `_generated`, with kubectl's `failed to create job: ...` wording of a refusal."""
    try:
        _generated(ctx, kind, obj, output, dry_run)
    except ApiError as e:
        fail(f"error: failed to create {kind}: {e.message}")


def job_from_cronjob(name: str, cronjob: dict[str, Any]) -> dict[str, Any]:
    """kubectl's createJobFromCronJob: the template's spec, annotated as a manual run."""
    template = (cronjob.get("spec") or {}).get("jobTemplate") or {}
    template_meta = template.get("metadata") or {}
    meta = cronjob["metadata"]
    job_meta: dict[str, Any] = {
        "name": name, "creationTimestamp": None,
        "annotations": {"cronjob.kubernetes.io/instantiate": "manual",
                        **(template_meta.get("annotations") or {})}}
    if template_meta.get("labels"):
        job_meta["labels"] = template_meta["labels"]
    job_meta["ownerReferences"] = [{"apiVersion": "batch/v1", "kind": "CronJob",
                                    "name": meta["name"], "uid": meta["uid"],
                                    "controller": True}]
    return {"kind": "Job", "apiVersion": "batch/v1", "metadata": job_meta,
            "spec": template.get("spec") or {}, "status": {}}


@create.command("job")
@click.argument("name")
@click.argument("command", nargs=-1)
@click.option("--image", help="Image of the job's container.")
@click.option("--from", "from_", help="TYPE/NAME to create the job from (cronjob/NAME).")
@output_option
@dry_run_option
@pass_context
@handle_errors
def create_job(ctx: CliContext, name: str, command: tuple[str, ...], image: str | None,
               from_: str | None, output: str | None, dry_run: str) -> None:
    """Create a job running IMAGE [-- COMMAND...], or from a cron job's template."""
    if bool(image) == bool(from_):
        fail("error: either --image or --from must be specified")
    if from_:
        if command:
            fail("error: cannot specify --from and command")
        [target] = parse_args([from_])
        rt = target.rt
        source = ctx.client().request("GET", object_path(rt, ctx.namespace, target.names[0]))
        if rt.kind != "CronJob":
            fail(f"error: unknown object type *{rt.version}.{rt.kind}")
        obj = job_from_cronjob(name, source)
    else:
        assert image is not None
        obj = {"kind": "Job", "apiVersion": "batch/v1", "metadata": _meta(name),
               "spec": {"template": _batch_pod_template(name, image, command, "Never")},
               "status": {}}
    _generated_batch(ctx, "job", obj, output, dry_run)


@create.command("cronjob")
@click.argument("name")
@click.argument("command", nargs=-1)
@click.option("--image", required=True, help="Image of the job's container.")
@click.option("--schedule", required=True, help="Cron schedule, e.g. '*/1 * * * *'.")
@click.option("--restart", default="OnFailure", show_default=True,
              help="The job pods' restartPolicy: OnFailure or Never.")
@output_option
@dry_run_option
@pass_context
@handle_errors
def create_cronjob(ctx: CliContext, name: str, command: tuple[str, ...], image: str,
                   schedule: str, restart: str, output: str | None, dry_run: str) -> None:
    """Create a cron job running IMAGE [-- COMMAND...] on SCHEDULE."""
    obj = {"kind": "CronJob", "apiVersion": "batch/v1", "metadata": _meta(name),
           "spec": {"schedule": schedule, "jobTemplate": {
               "metadata": _meta(name),
               "spec": {"template": _batch_pod_template(name, image, command, restart)}}},
           "status": {}}
    _generated_batch(ctx, "cronjob", obj, output, dry_run)


for _command, _alias in ((create_namespace, "ns"), (create_configmap, "cm"),
                         (create_deployment, "deploy"), (create_cronjob, "cj")):
    create.add_command(_command, _alias)
