"""kubectl-like verbs of the minik CLI (get, apply, delete, ...).

Each verb lives in its own module and sends the requests kubectl sends for
it (see shared/reference/kubectl-wire.md); this module only collects them.
"""

from __future__ import annotations

import click

from minik.cli.api_resources import api_resources
from minik.cli.apply import apply
from minik.cli.create import create
from minik.cli.delete import delete
from minik.cli.describe import describe
from minik.cli.exec import exec_command
from minik.cli.get import get
from minik.cli.label import annotate, label
from minik.cli.logs import logs


def register(group: click.Group) -> None:
    """Add every resource verb to the top-level command group."""
    for command in (get, describe, apply, create, delete, label, annotate, api_resources, logs,
                    exec_command):
        group.add_command(command)
