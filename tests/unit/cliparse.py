"""Parse a minik command line exactly as `minik` does, without running the command."""

from __future__ import annotations

from unittest import mock

import click

from minik.cli.context import CliContext
from minik.cli.main import cli


def parse(argv: list[str]) -> click.Context:
    """The context of the innermost command `argv` names; click.UsageError if it is refused.

    Every group and command parses its arguments (and the global options
    store theirs) as in a real run; only the commands' own code is skipped.
    """
    invoked: list[click.Context] = []

    def record(self: click.Command, ctx: click.Context) -> None:
        invoked.append(ctx)

    with mock.patch.object(click.Command, "invoke", record):
        cli.main(argv, prog_name="minik", standalone_mode=False)
    return invoked[-1]


def settings(argv: list[str]) -> CliContext:
    """The global options `argv` resolves to."""
    return parse(argv).ensure_object(CliContext)
