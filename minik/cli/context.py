"""What every CLI command shares: the instance home, kubeconfig, namespace, client."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import NoReturn, ParamSpec, TypeVar

import click

from minik.api.errors import ApiError
from minik.client.rest import ConnectionFailed, RestClient
from minik.home import Home
from minik.kubeconfig import KubeconfigError, load_kubeconfig


@dataclass
class CliContext:
    """Global options, resolved once per invocation (see `global_options`)."""

    home: Home = field(default_factory=lambda: Home.at(None))
    kubeconfig: Path | None = None
    context: str | None = None
    namespace_flag: str | None = None
    _client: RestClient | None = field(default=None, repr=False)

    @property
    def kubeconfig_path(self) -> Path:
        return self.kubeconfig or self.home.kubeconfig

    def client(self) -> RestClient:
        if self._client is None:
            try:
                access = load_kubeconfig(self.kubeconfig_path, context=self.context)
            except KubeconfigError as e:
                fail(str(e))
            self._client = RestClient(access)
        return self._client

    @property
    def namespace(self) -> str:
        if self.namespace_flag:
            return self.namespace_flag
        return self.client().access.namespace

    def flush_warnings(self) -> None:
        if self._client is not None:
            for warning in self._client.warnings:
                click.echo(f"Warning: {warning}", err=True)
            self._client.warnings.clear()


def fail(message: str, *, code: int = 1) -> NoReturn:
    click.echo(message if message.startswith("error") or message.startswith("Error")
               else f"error: {message}", err=True)
    sys.exit(code)


def server_error_line(error: ApiError) -> str:
    """`Error from server (NotFound): ...` as kubectl prints it."""
    details = error.details or {}
    if error.reason == "Invalid" and details.get("causes"):
        kind, name = details.get("kind", ""), details.get("name", "")
        causes = details["causes"]
        if len(causes) == 1:
            c = causes[0]
            return f'The {kind} "{name}" is invalid: {c.get("field")}: {c.get("message")}'
        lines = [f'The {kind} "{name}" is invalid: ']
        lines += [f'* {c.get("field")}: {c.get("message")}' for c in causes]
        return "\n".join(lines)
    if error.code == 401:
        return f"error: You must be logged in to the server ({error.message})"
    return f"Error from server ({error.reason}): {error.message}"


pass_context = click.make_pass_decorator(CliContext)
P = ParamSpec("P")
R = TypeVar("R")


def handle_errors(fn: Callable[P, R]) -> Callable[P, R]:
    """Turn API and connection errors into kubectl-style messages and exit 1."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        ctx = click.get_current_context().find_object(CliContext)
        try:
            return fn(*args, **kwargs)
        except ApiError as e:
            if ctx:
                ctx.flush_warnings()
            fail(server_error_line(e))
        except ConnectionFailed as e:
            fail(str(e))
        finally:
            if ctx:
                ctx.flush_warnings()

    return wrapper
