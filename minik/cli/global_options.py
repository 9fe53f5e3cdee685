"""The global options, defined once and accepted on either side of the subcommand.

kubectl's global flags work anywhere on its command line (`kubectl -n x get
pods`, `kubectl get pods -n x`). minik's are `--home`, `--kubeconfig`,
`--context` and `-n/--namespace`: the `minik` group takes them before the
subcommand, and `add_to` gives every subcommand (and the subcommands of
`rollout`, `set`, `create`) the same options, so a verb never declares them
itself. Each one stores its value in the invocation's `CliContext` as it is
parsed; given twice, the later one wins, as with kubectl. Only the group's
`--home` reads `$MINIK_HOME`: an explicit `--home` before the subcommand is
not overridden by the environment after it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import click

from minik.cli.context import CliContext
from minik.home import Home

HOME_ENV = "MINIK_HOME"
_ADDED = "minik_global_options"


@dataclass(frozen=True, slots=True)
class GlobalOption:
    decls: tuple[str, ...]
    field: str
    """The `CliContext` attribute the value goes to."""
    help: str
    type: click.ParamType | None
    parse: Callable[[str], object]


OPTIONS = (
    GlobalOption(("--home",), "home", f"Instance home directory (default ${HOME_ENV}, "
                 "else ~/.minik).", click.Path(file_okay=False), Home.at),
    GlobalOption(("--kubeconfig",), "kubeconfig",
                 "Kubeconfig to use (default: the instance's own).",
                 click.Path(dir_okay=False), Path),
    GlobalOption(("--context",), "context", "Kubeconfig context to use.", None, str),
    GlobalOption(("-n", "--namespace"), "namespace_flag", "Namespace for this request.",
                 None, str),
)


def _store(option: GlobalOption) -> Callable[[click.Context, click.Parameter, str | None], None]:
    def callback(ctx: click.Context, param: click.Parameter, value: str | None) -> None:
        if value is not None:
            setattr(ctx.ensure_object(CliContext), option.field, option.parse(value))

    return callback


def options(*, group: bool) -> list[click.Parameter]:
    """The global options as click parameters; the group's `--home` reads $MINIK_HOME."""
    return [
        click.Option(list(o.decls), type=o.type, help=o.help, expose_value=False,
                     callback=_store(o), envvar=HOME_ENV if group and o.field == "home" else None,
                     show_envvar=group and o.field == "home")
        for o in OPTIONS
    ]


def add_to(command: click.Command) -> click.Command:
    """Give `command` (and, for a group, each of its subcommands) the global options."""
    if getattr(command, _ADDED, False):
        return command
    taken = {opt for param in command.params for opt in param.opts}
    clash = taken & {decl for o in OPTIONS for decl in o.decls}
    if clash:
        raise TypeError(f"command {command.name!r} declares global option(s) "
                        f"{', '.join(sorted(clash))} itself")
    command.params.extend(options(group=False))
    setattr(command, _ADDED, True)
    if isinstance(command, click.Group):
        for sub in command.commands.values():
            add_to(sub)
    return command
