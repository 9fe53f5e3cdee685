"""`minik apply -f`: kubectl's client-side apply, request for request.

For each object: GET it; when absent, POST it carrying the
`kubectl.kubernetes.io/last-applied-configuration` annotation; when present,
compute the three-way strategic merge patch between that annotation (what
was applied last), the new manifest and the live object, and PATCH only
what changed. A Conflict re-reads and retries, five times, like kubectl.
`Applier` holds that decision logic and talks to any object with a
`request` method, so it is tested without a server.
"""

from __future__ import annotations

import copy
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import click

from minik.api.errors import ApiError
from minik.api.resources import ResourceType
from minik.cli.context import CliContext, fail, handle_errors, pass_context, server_error_line
from minik.cli.manifests import Manifest, ManifestError, load
from minik.cli.printing import compact_json, object_name
from minik.cli.targets import no_mapping_error, object_namespace, rt_for_object
from minik.client.paths import collection_path, object_path

LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"
FIELD_MANAGER = "kubectl-client-side-apply"
SMP = "application/strategic-merge-patch+json"
APPLY_PATCH = "application/apply-patch+yaml"
MAX_PATCH_RETRIES = 5

Diff = Callable[..., dict[str, Any]]


class Client(Protocol):
    def request(self, method: str, path: str, *, params: Any = None, body: object = None,
                content_type: str = ..., accept: str = ..., timeout: float | None = ...,
                ) -> Any: ...


@dataclass(frozen=True)
class Applied:
    """The outcome of applying one object: `created`, `configured` or `unchanged`."""

    rt: ResourceType
    obj: dict[str, Any]
    action: str


class ApplyError(Exception):
    """A failure for one object, worded as kubectl words it."""

    def __init__(self, message: str, api_error: ApiError | None = None) -> None:
        super().__init__(message)
        self.api_error = api_error


def _default_diff(original: dict | None, modified: dict, current: dict, *, kind: str) -> dict:
    from minik.api.patch.three_way import create_strategic_merge_patch

    return create_strategic_merge_patch(original, modified, current, kind=kind)


def with_last_applied(obj: dict[str, Any]) -> dict[str, Any]:
    """The object as kubectl sends it: annotated with its own compact JSON + newline."""
    bare = copy.deepcopy(obj)
    meta = bare.setdefault("metadata", {})
    annotations = dict(meta.get("annotations") or {})
    annotations.pop(LAST_APPLIED, None)
    meta["annotations"] = annotations
    modified = copy.deepcopy(bare)
    modified["metadata"]["annotations"][LAST_APPLIED] = compact_json(bare) + "\n"
    return modified


def last_applied(live: dict[str, Any]) -> dict[str, Any] | None:
    text = ((live.get("metadata") or {}).get("annotations") or {}).get(LAST_APPLIED)
    if not text:
        return None
    try:
        value = json.loads(text)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def _described(rt: ResourceType, name: str, namespace: str | None) -> str:
    """kubectl's `resource.Info.String()`."""
    return (f'Resource: "{rt.group}/{rt.version}, Resource={rt.plural}", '
            f'GroupVersionKind: "{rt.group}/{rt.version}, Kind={rt.kind}"\n'
            f'Name: "{name}", Namespace: "{namespace or ""}"')


def _wrapped(error: ApiError, message: str) -> ApplyError:
    wrapped = ApiError(error.code, error.reason, message, error.details)
    return ApplyError(message, wrapped)


class Applier:
    """Client-side apply of one object at a time."""

    def __init__(self, client: Client, *, namespace: str, dry_run: str | None = None,
                 diff: Diff | None = None, sleep: Callable[[float], None] = time.sleep) -> None:
        self.client = client
        self.namespace = namespace
        self.dry_run = dry_run
        self.diff = diff or _default_diff
        self.sleep = sleep

    def _params(self) -> dict[str, str]:
        params = {"fieldManager": FIELD_MANAGER, "fieldValidation": "Strict"}
        if self.dry_run == "server":
            params["dryRun"] = "All"
        return params

    def prepare(self, manifest: Manifest) -> tuple[ResourceType, dict[str, Any]]:
        rt = rt_for_object(manifest.obj)
        if rt is None:
            raise ApplyError(no_mapping_error(manifest.obj, manifest.source))
        obj = copy.deepcopy(manifest.obj)
        namespace = object_namespace(rt, obj, self.namespace)
        if namespace:
            obj.setdefault("metadata", {})["namespace"] = namespace
        else:
            (obj.get("metadata") or {}).pop("namespace", None)
        return rt, obj

    def apply(self, manifest: Manifest) -> Applied:
        rt, obj = self.prepare(manifest)
        meta = obj.get("metadata") or {}
        name, namespace = meta.get("name", ""), meta.get("namespace")
        if not name:
            raise self._unnamed(rt, meta, manifest.source)
        modified = with_last_applied(obj)
        path = object_path(rt, namespace, name)
        live = self._get(rt, path, name, namespace, manifest.source)
        if live is None:
            return Applied(rt, self._create(rt, modified, namespace, manifest.source), "created")
        for attempt in range(MAX_PATCH_RETRIES + 1):
            patch = self._three_way(live, modified, rt, manifest.source)
            if not patch:
                return Applied(rt, live, "unchanged")
            try:
                return Applied(rt, self._patch(path, patch), "configured")
            except ApiError as e:
                if e.reason != "Conflict" or attempt == MAX_PATCH_RETRIES:
                    raise self._patch_error(e, patch, rt, name, namespace,
                                            manifest.source) from e
            if attempt >= 1:
                self.sleep(1.0)
            live = self._get(rt, path, name, namespace, manifest.source) or live
        raise AssertionError("unreachable")

    def apply_server_side(self, manifest: Manifest, *, manager: str = "kubectl",
                          force: bool = False) -> Applied:
        """One PATCH that creates or updates: `--server-side`."""
        rt, obj = self.prepare(manifest)
        meta = obj.get("metadata") or {}
        params = {"fieldManager": manager, "fieldValidation": "Strict",
                  "force": "true" if force else "false"}
        if self.dry_run == "server":
            params["dryRun"] = "All"
        path = object_path(rt, meta.get("namespace"), meta.get("name", ""))
        try:
            result = self.client.request("PATCH", path, params=params, body=obj,
                                         content_type=APPLY_PATCH)
        except ApiError as e:
            raise _wrapped(e, f'error when patching "{manifest.source}": {e.message}') from e
        return Applied(rt, result, "serverside-applied")

    def _three_way(self, live: dict[str, Any], modified: dict[str, Any], rt: ResourceType,
                   source: str) -> dict[str, Any]:
        try:
            return self.diff(last_applied(live), modified, live, kind=rt.kind)
        except ValueError as e:
            raise ApplyError(f'error when computing the patch for "{source}": {e}') from e

    @staticmethod
    def _unnamed(rt: ResourceType, meta: dict[str, Any], source: str) -> ApplyError:
        if meta.get("generateName"):
            return ApplyError(f"from {meta['generateName']}: cannot use generate name with "
                              "apply")
        return ApplyError("error when retrieving current configuration of:\n"
                          f"{_described(rt, '', meta.get('namespace'))}\nfrom server for: "
                          f'"{source}": resource name may not be empty')

    def _get(self, rt: ResourceType, path: str, name: str, namespace: str | None,
             source: str) -> dict[str, Any] | None:
        try:
            return self.client.request("GET", path)
        except ApiError as e:
            if e.code == 404:
                return None
            raise _wrapped(e, "error when retrieving current configuration of:\n"
                              f"{_described(rt, name, namespace)}\nfrom server for: "
                              f'"{source}": {e.message}') from e

    def _create(self, rt: ResourceType, modified: dict[str, Any], namespace: str | None,
                source: str) -> dict[str, Any]:
        if self.dry_run == "client":
            return modified
        try:
            return self.client.request("POST", collection_path(rt, namespace),
                                       params=self._params(), body=modified)
        except ApiError as e:
            raise _wrapped(e, f'error when creating "{source}": {e.message}') from e

    def _patch(self, path: str, patch: dict[str, Any]) -> dict[str, Any]:
        if self.dry_run == "client":
            return patch
        return self.client.request("PATCH", path, params=self._params(), body=patch,
                                   content_type=SMP)

    @staticmethod
    def _patch_error(e: ApiError, patch: dict[str, Any], rt: ResourceType, name: str,
                     namespace: str | None, source: str) -> ApplyError:
        return _wrapped(e, f"error when applying patch:\n{compact_json(patch)}\nto:\n"
                           f"{_described(rt, name, namespace)}\nfor: \"{source}\": "
                           f'error when patching "{source}": {e.message}')


def namespaces_first(manifests: list[Manifest]) -> list[Manifest]:
    """Namespaces before everything else; file order otherwise."""
    return sorted(manifests, key=lambda m: m.kind != "Namespace" or m.api_version != "v1")


def check_namespace(manifest: Manifest, explicit: str | None) -> None:
    if explicit and manifest.namespace and manifest.namespace != explicit:
        raise ApplyError(
            f'the namespace from the provided object "{manifest.namespace}" does not '
            f'match the namespace "{explicit}". You must pass \'--namespace='
            f"{manifest.namespace}' to perform this operation."
        )


def report_errors(errors: list[ApplyError]) -> None:
    """Print failures after the successes, as kubectl does; exit 1 if any."""
    if not errors:
        return
    for error in errors:
        if error.api_error is None:
            click.echo(f"error: {error}" if len(errors) == 1 else str(error), err=True)
        elif len(errors) == 1:
            click.echo(server_error_line(error.api_error), err=True)
        else:
            api = error.api_error
            click.echo(f"Error from server ({api.reason}): {api.message}", err=True)
    raise SystemExit(1)


def load_manifests(filenames: tuple[str, ...], recursive: bool, verb: str) -> list[Manifest]:
    if not filenames:
        fail("error: must specify one of -f and -k")
    try:
        manifests = load(filenames, recursive=recursive)
    except ManifestError as e:
        fail(f"error: {e}")
    if not manifests:
        fail(f"error: no objects passed to {verb}")
    return manifests


def _suffix(dry_run: str | None) -> str:
    return {"server": " (server dry run)", "client": " (dry run)"}.get(dry_run or "", "")


@click.command("apply")
@click.option("-f", "--filename", "filenames", multiple=True,
              help="Files, directories or - (stdin) with the objects to apply.")
@click.option("-R", "--recursive", is_flag=True, help="Read directories recursively.")
@click.option("--dry-run", type=click.Choice(["none", "client", "server"]), default="none",
              help="Only show what would happen.")
@click.option("-o", "--output", type=click.Choice(["name"]), help="Print only `kind/name`.")
@click.option("--server-side", is_flag=True, help="Let the server merge (server-side apply).")
@click.option("--force-conflicts", is_flag=True, help="Server-side: take over conflicting fields.")
@click.option("--field-manager", default=None, help="Name of the manager (server-side).")
@pass_context
@handle_errors
def apply(ctx: CliContext, filenames: tuple[str, ...], recursive: bool, dry_run: str,
          output: str | None, server_side: bool, force_conflicts: bool,
          field_manager: str | None) -> None:
    """Create or update objects from manifests (client-side apply)."""
    manifests = namespaces_first(load_manifests(filenames, recursive, "apply"))
    mode = None if dry_run == "none" else dry_run
    explicit = ctx.namespace_flag
    applier = Applier(ctx.client(), namespace=ctx.namespace, dry_run=mode)
    errors: list[ApplyError] = []
    unmapped = [ApplyError(no_mapping_error(m.obj, m.source)) for m in manifests
                if rt_for_object(m.obj) is None]
    for manifest in manifests:
        if rt_for_object(manifest.obj) is None:
            continue
        try:
            check_namespace(manifest, explicit)
            done = applier.apply_server_side(
                manifest, manager=field_manager or "kubectl", force=force_conflicts
            ) if server_side else applier.apply(manifest)
        except ApplyError as e:
            errors.append(e)
            continue
        finally:
            ctx.flush_warnings()
        name = object_name(done.rt, {"metadata": {"name": manifest.name}})
        click.echo(name if output == "name" else f"{name} {done.action}{_suffix(mode)}")
    report_errors(unmapped + errors)
