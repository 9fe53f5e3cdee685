"""`minik wait`: block until objects meet a condition, as `kubectl wait` does.

`--for` is `condition=NAME[=VALUE]` (a `status.conditions` entry whose
status equals VALUE, `true` by default, compared case-insensitively; a
condition older than the object's generation does not count), `delete`,
or `jsonpath={EXPR}[=VALUE]` (EXPR yields one scalar equal to VALUE, or
anything at all without VALUE). The objects are named (`TYPE/NAME`,
`TYPE NAME...`) or selected (`TYPE -l SEL`, `TYPE --all`); each is read
and, while its condition is not met, watched through a `metadata.name`
field selector from the list's resourceVersion (re-listed if the watch
ends early), all under one deadline, `--timeout` (30 s; 0 checks once,
negative waits a week). Each met object prints `KIND.GROUP/NAME condition
met`; failures are collected and printed at the end, `error: ` prefixed
when there is only one, as kubectl prints them; the exit code is then 1.
"""

from __future__ import annotations

import contextlib
import math
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import click

from minik.api.errors import ApiError, not_found
from minik.api.resources import ResourceType
from minik.cli import jsonpath
from minik.cli.context import CliContext, fail, handle_errors, pass_context, server_error_line
from minik.cli.delete import parse_duration
from minik.cli.printing import object_name
from minik.cli.targets import parse_args
from minik.client.paths import collection_path, object_path
from minik.client.rest import RestClient

JsonObject = dict[str, Any]
WEEK = 168 * 3600.0
NO_NAME = "resource(s) were provided, but no name was specified"
NO_MATCH = "no matching resources found"


class WaitFailed(Exception):
    """One object's wait ended without the condition: kubectl's message for it."""


@dataclass(frozen=True)
class ConditionIs:
    """`condition=NAME[=VALUE]`."""

    name: str
    status: str

    def met(self, obj: JsonObject) -> bool:
        generation = (obj.get("metadata") or {}).get("generation")
        status = obj.get("status") or {}
        for condition in status.get("conditions") or []:
            if str(condition.get("type", "")).casefold() != self.name.casefold() or \
                    "status" not in condition:
                continue
            observed = condition.get("observedGeneration", status.get("observedGeneration"))
            if generation is not None and observed is not None and observed < generation:
                return False
            return str(condition["status"]).casefold() == self.status.casefold()
        return False


@dataclass(frozen=True)
class JsonPathIs:
    """`jsonpath={EXPR}[=VALUE]`: one scalar result, equal to VALUE if one is given."""

    expression: str
    value: str | None

    def met(self, obj: JsonObject) -> bool:
        results = jsonpath.evaluate(jsonpath.parse(self.expression)[0], obj)
        if not results:
            return False
        if len(results) > 1:
            raise WaitFailed("given jsonpath expression matches more than one value")
        if self.value is None:
            return True
        if isinstance(results[0], (dict, list)):
            raise WaitFailed("jsonpath leads to a nested object or list which is not supported")
        return jsonpath.format_value(results[0]).strip() == self.value.strip()


class Deleted:
    """`delete`: the object is gone (or was never there)."""

    def met(self, obj: JsonObject) -> bool:
        return False


Condition = ConditionIs | JsonPathIs | Deleted


def split_on_single_equals(text: str) -> list[str]:
    """kubectl's splitJSONPathInput: `=` separates, `==` stays in the expression."""
    parts, current, i = [], "", 0
    while i < len(text):
        if text.startswith("==", i):
            current, i = current + "==", i + 2
        elif text[i] == "=":
            parts.append(current)
            current, i = "", i + 1
        else:
            current, i = current + text[i], i + 1
    return [*parts, current]


def parse_for(text: str) -> Condition:
    """`--for` as kubectl's conditionFuncFor reads it; refused with kubectl's words."""
    if text.lower() == "delete":
        return Deleted()
    if text.startswith("condition="):
        name, _, status = text[len("condition="):].partition("=")
        return ConditionIs(name, status or "true")
    if text.startswith("jsonpath="):
        parts = split_on_single_equals(text[len("jsonpath="):])
        if len(parts) > 2:
            fail("error: jsonpath wait format must be --for=jsonpath='{.status.readyReplicas}'=3 "
                 "or --for=jsonpath='{.status.readyReplicas}'")
        if not parts[0]:
            fail("error: jsonpath expression cannot be empty")
        value = parts[1].strip("'\"") if len(parts) == 2 else None
        if value == "":
            fail("error: jsonpath wait has to have a value after equal sign, like "
                 "--for=jsonpath='{.status.readyReplicas}'=3")
        expression = jsonpath.relaxed(parts[0])
        try:
            jsonpath.parse(expression)
        except jsonpath.JsonPathError as e:
            fail(f"error: {e}")
        return JsonPathIs(expression, value)
    fail(f'error: unrecognized condition: "{text}"')


def timeout_seconds(text: str) -> float:
    return WEEK if text.startswith("-") else parse_duration(text)


@dataclass
class Waiter:
    """Waits for one condition on objects of one client, under one deadline."""

    client: RestClient
    condition: Condition
    deadline: float
    check_once: bool
    clock: Callable[[], float] = time.monotonic

    def wait(self, rt: ResourceType, namespace: str | None, obj: JsonObject) -> JsonObject:
        """The object in the state that met the condition; WaitFailed or ApiError if not."""
        name = obj["metadata"]["name"]
        ns = namespace if rt.namespaced else None
        deleting = isinstance(self.condition, Deleted)
        if self.check_once:
            current = self._get(rt, ns, name)
            if current is None and not deleting:
                raise not_found(rt.plural, name, group=rt.group)
            if current is None or self.condition.met(current):
                return current or obj
            raise WaitFailed(f"condition not met for {rt.plural}/{name}")
        while (remaining := self.deadline - self.clock()) > 0:
            listed = self.client.request("GET", collection_path(rt, ns),
                                         params={"fieldSelector": f"metadata.name={name}"})
            items = listed.get("items") or []
            if not items:
                if deleting:
                    return obj
                raise not_found(rt.plural, name, group=rt.group)
            obj = items[0]
            if self.condition.met(obj):
                return obj
            rv = str((listed.get("metadata") or {}).get("resourceVersion") or "0")
            met = self._watch(rt, ns, name, rv, remaining)
            if met is not None:
                return met
        raise WaitFailed(f"timed out waiting for the condition on {rt.plural}/{name}")

    def _get(self, rt: ResourceType, ns: str | None, name: str) -> JsonObject | None:
        try:
            found: JsonObject = self.client.request("GET", object_path(rt, ns, name))
        except ApiError as e:
            if e.code == 404:
                return None
            raise
        return found

    def _watch(self, rt: ResourceType, ns: str | None, name: str, rv: str,
               remaining: float) -> JsonObject | None:
        """Follow the object's changes until the condition or the end of the stream."""
        params = {"fieldSelector": f"metadata.name={name}", "resourceVersion": rv,
                  "watch": "true", "allowWatchBookmarks": "true",
                  "timeoutSeconds": max(1, math.ceil(remaining))}
        with contextlib.closing(self.client.watch(collection_path(rt, ns), params=params)) \
                as events:
            for event in events:
                kind, obj = event.get("type"), event.get("object") or {}
                if kind == "ERROR":
                    if obj.get("code") != 410:
                        click.echo("error: An error occurred while waiting for the condition "
                                   f"to be satisfied: {obj.get('message', '')}", err=True)
                    return None
                if kind == "DELETED" and isinstance(self.condition, Deleted):
                    return obj
                if kind in ("ADDED", "MODIFIED") and self.condition.met(obj):
                    return obj
                if self.clock() >= self.deadline:
                    return None
        return None


def _objects(client: RestClient, ctx: CliContext, args: tuple[str, ...], *, selector: str | None,
             all_: bool, all_namespaces: bool, deleting: bool, errors: list[str],
             ) -> list[tuple[ResourceType, str | None, JsonObject]]:
    """What kubectl's resource builder visits: named objects read, or a selection listed."""
    found: list[tuple[ResourceType, str | None, JsonObject]] = []
    namespace = None if all_namespaces else ctx.namespace
    for target in parse_args(args):
        rt = target.rt
        if not target.names:
            if not (selector or all_):
                fail(f"error: {NO_NAME}")
            params = {"labelSelector": selector} if selector else None
            listed = client.request("GET", collection_path(rt, namespace if rt.namespaced
                                                           else None), params=params)
            found += [(rt, item["metadata"].get("namespace"), item)
                      for item in listed.get("items") or []]
            continue
        for name in target.names:
            try:
                found.append((rt, ctx.namespace, client.request(
                    "GET", object_path(rt, ctx.namespace if rt.namespaced else None, name))))
            except ApiError as e:
                if not (deleting and e.code == 404):
                    errors.append(server_error_line(e))
    return found


@click.command("wait")
@click.argument("args", nargs=-1, required=True)
@click.option("--for", "for_", default="",
              help="delete | condition=NAME[=VALUE] | jsonpath='{EXPR}'[=VALUE]")
@click.option("--timeout", default="30s", show_default=True,
              help="How long to wait; 0 checks once, a negative value waits a week.")
@click.option("-l", "--selector", help="Label selector of the objects to wait for.")
@click.option("--all", "all_", is_flag=True, help="Wait for every object of the type.")
@click.option("-A", "--all-namespaces", is_flag=True, help="Select in every namespace.")
@pass_context
@handle_errors
def wait(ctx: CliContext, args: tuple[str, ...], for_: str, timeout: str, selector: str | None,
         all_: bool, all_namespaces: bool) -> None:
    """Wait for a condition on one or many objects (or for them to be deleted)."""
    condition = parse_for(for_)
    limit = timeout_seconds(timeout)
    client = ctx.client()
    errors: list[str] = []
    objects = _objects(client, ctx, args, selector=selector, all_=all_,
                       all_namespaces=all_namespaces, deleting=isinstance(condition, Deleted),
                       errors=errors)
    if not objects and not errors and not isinstance(condition, Deleted):
        fail(f"error: {NO_MATCH}")
    waiter = Waiter(client, condition, time.monotonic() + limit, check_once=limit == 0)
    for rt, namespace, obj in objects:
        try:
            met = waiter.wait(rt, namespace, obj)
        except WaitFailed as e:
            errors.append(str(e))
        except ApiError as e:
            errors.append(server_error_line(e))
        else:
            click.echo(f"{object_name(rt, met)} condition met")
    if len(errors) == 1:
        fail(errors[0])
    if errors:
        click.echo("\n".join(errors), err=True)
        sys.exit(1)
