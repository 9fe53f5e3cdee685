"""Entry point of the `minik` command: global options and the command list."""

from __future__ import annotations

from pathlib import Path

import click

from minik.cli.context import CliContext
from minik.cli.verbs import LazyGroup
from minik.home import Home


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--home", type=click.Path(file_okay=False), envvar="MINIK_HOME",
              help="Instance home directory (default ~/.minik).")
@click.option("--kubeconfig", type=click.Path(dir_okay=False),
              help="Kubeconfig to use (default: the instance's own).")
@click.option("--context", "context_name", help="Kubeconfig context to use.")
@click.option("-n", "--namespace", help="Namespace for this request.")
@click.pass_context
def cli(ctx: click.Context, home: str | None, kubeconfig: str | None,
        context_name: str | None, namespace: str | None) -> None:
    """minik: a small Kubernetes on Docker."""
    ctx.obj = CliContext(
        home=Home.at(home),
        kubeconfig=Path(kubeconfig) if kubeconfig else None,
        context=context_name,
        namespace_flag=namespace,
    )



def main() -> None:
    cli(prog_name="minik")


if __name__ == "__main__":
    main()
