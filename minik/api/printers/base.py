"""The registry of table printers and the cells every kind family shares.

`@printer` registers a kind's cells function with its columns in `PRINTERS`;
`DEFAULT` prints any other kind as Name and Age.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from minik.api.printers.formatting import Column, field, format_selector, since

Cells = Callable[[dict[str, Any], datetime], list[Any]]


@dataclass(frozen=True, slots=True)
class Printer:
    columns: tuple[Column, ...]
    cells: Cells


def col(name: str, description: str, *, type: str = "string", wide: bool = False) -> Column:
    return Column(name, description, type, 1 if wide else 0)


NAME = col("Name", "Name must be unique within a namespace.")
AGE = col("Age", "CreationTimestamp is the server time when this object was created.")
CONTAINERS = col("Containers", "Names of each container in the template.", wide=True)
IMAGES = col("Images", "Images referenced by each container in the template.", wide=True)
SELECTOR = col("Selector", "Label selector of the pods this object manages.", wide=True)
PRINTERS: dict[str, Printer] = {}
DEFAULT = Printer((NAME, AGE), lambda obj, now: [name_cell(obj), age_cell(obj, now)])


def printer(kind: str, *columns: Column) -> Callable[[Cells], Cells]:
    """Register the cells function of `kind` together with its columns."""

    def register(cells: Cells) -> Cells:
        PRINTERS[kind] = Printer(columns, cells)
        return cells

    return register


def name_cell(obj: dict[str, Any]) -> str:
    return str(field(obj, "metadata.name", ""))


def age_cell(obj: dict[str, Any], now: datetime) -> str:
    return since(field(obj, "metadata.creationTimestamp"), now)


def containers_cells(pod_spec: dict[str, Any] | None) -> list[str]:
    """The wide Containers and Images cells of a pod template."""
    containers = field(pod_spec, "containers", [])
    return [",".join(c.get("name", "") for c in containers),
            ",".join(c.get("image", "") for c in containers)]


def template_cells(spec: dict[str, Any], *, empty: str = "<none>") -> list[str]:
    """Containers, Images and Selector of a workload's `spec`."""
    return [*containers_cells(field(spec, "template.spec")),
            format_selector(spec.get("selector"), empty=empty)]
