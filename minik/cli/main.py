"""Entry point of the `minik` command: global options and the command list."""

from __future__ import annotations

import click

from minik.cli import global_options
from minik.cli.context import CliContext
from minik.cli.verbs import LazyGroup


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]},
             params=global_options.options(group=True))
@click.pass_context
def cli(ctx: click.Context) -> None:
    """minik: a small Kubernetes on Docker.

    The global options (--home, --kubeconfig, --context, -n) may also follow
    the command, as kubectl's do.
    """
    ctx.ensure_object(CliContext)


def main() -> None:
    cli(prog_name="minik")


if __name__ == "__main__":
    main()
