"""The commands of the minik CLI, loaded only when used.

Each verb lives in its own module and sends the requests kubectl sends for
it (see shared/reference/kubectl-wire.md). `LazyGroup` maps a command name
to `module:attribute` and imports it on first use, so `minik up` does not
pay for importing every verb. Every command it hands out takes the global
options too (`global_options.add_to`).
"""

from __future__ import annotations

import importlib

import click

from minik.cli import global_options

COMMANDS: dict[str, str] = {
    "up": "minik.cli.lifecycle:up",
    "down": "minik.cli.lifecycle:down",
    "status": "minik.cli.lifecycle:status",
    "kubeconfig": "minik.cli.lifecycle:kubeconfig",
    "version": "minik.cli.lifecycle:version",
    "get": "minik.cli.get:get",
    "describe": "minik.cli.describers:describe",
    "apply": "minik.cli.apply:apply",
    "create": "minik.cli.create:create",
    "delete": "minik.cli.delete:delete",
    "label": "minik.cli.label:label",
    "annotate": "minik.cli.label:annotate",
    "api-resources": "minik.cli.api_resources:api_resources",
    "logs": "minik.cli.logs:logs",
    "exec": "minik.cli.exec:exec_command",
    "port-forward": "minik.cli.portforward:port_forward",
    "scale": "minik.cli.rollout:scale",
    "expose": "minik.cli.expose:expose",
    "autoscale": "minik.cli.autoscale:autoscale",
    "set": "minik.cli.rollout:set_group",
    "rollout": "minik.cli.rollout:rollout",
    "dns": "minik.cli.dns:dns_command",
    "prometheus-config": "minik.cli.prometheus_config:prometheus_config_command",
    "dashboard": "minik.cli.dashboard:dashboard",
    "top": "minik.cli.top:top",
}


def load(name: str) -> click.Command:
    module, _, attribute = COMMANDS[name].partition(":")
    command = getattr(importlib.import_module(module), attribute)
    assert isinstance(command, click.Command)
    return command


class LazyGroup(click.Group):
    """A click group whose commands are imported when first looked up."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*COMMANDS, *super().list_commands(ctx)})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        command = load(cmd_name) if cmd_name in COMMANDS else super().get_command(ctx, cmd_name)
        return None if command is None else global_options.add_to(command)
