"""`minik api-resources`: the resource types the server serves, from discovery.

Reads the legacy discovery documents (`/api`, `/api/v1`, `/apis`, and the
preferred version of every group), skips subresources, and prints kubectl's
table: NAME, SHORTNAMES, APIVERSION, NAMESPACED, KIND (with `-o wide` also
VERBS and CATEGORIES), grouped by API group as kubectl sorts them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import click

from minik.cli.context import CliContext, handle_errors, pass_context
from minik.cli.printing import GET_MIN_WIDTH, GET_PADDING, TabWriter

if TYPE_CHECKING:
    from minik.client.rest import RestClient


@dataclass(frozen=True)
class ApiResource:
    """One discovered resource type."""

    group: str
    group_version: str
    info: dict[str, Any]

    @property
    def name(self) -> str:
        return str(self.info.get("name", ""))

    def row(self, wide: bool) -> list[str]:
        info = self.info
        cells = [self.name, ",".join(info.get("shortNames") or []), self.group_version,
                 "true" if info.get("namespaced") else "false", str(info.get("kind", ""))]
        if wide:
            cells += [",".join(info.get("verbs") or []),
                      ",".join(info.get("categories") or [])]
        return cells


def discover(client: RestClient) -> list[ApiResource]:
    """Every top-level resource of the preferred version of every group."""
    found: list[ApiResource] = []
    for version in (client.request("GET", "/api").get("versions") or []):
        found += _resources(client, "", version, f"/api/{version}")
    for group in client.request("GET", "/apis").get("groups") or []:
        preferred = (group.get("preferredVersion") or (group.get("versions") or [{}])[0])
        group_version = preferred.get("groupVersion", "")
        found += _resources(client, group.get("name", ""), group_version,
                            f"/apis/{group_version}")
    return found


def _resources(client: RestClient, group: str, group_version: str, path: str) -> list[ApiResource]:
    listing = client.request("GET", path)
    return [ApiResource(group, group_version, info) for info in listing.get("resources") or []
            if "/" not in info.get("name", "")]


def select(resources: list[ApiResource], *, namespaced: bool | None, api_group: str | None,
           verbs: tuple[str, ...], sort_by: str | None) -> list[ApiResource]:
    chosen = [r for r in resources
              if (namespaced is None or bool(r.info.get("namespaced")) == namespaced)
              and (api_group is None or r.group == api_group)
              and all(v in (r.info.get("verbs") or []) for v in verbs)]
    if sort_by == "name":
        return sorted(chosen, key=lambda r: r.name)
    if sort_by == "kind":
        return sorted(chosen, key=lambda r: str(r.info.get("kind", "")))
    return sorted(chosen, key=lambda r: (r.group, r.name))


def render(resources: list[ApiResource], *, output: str | None, no_headers: bool) -> str:
    if output == "name":
        return "".join(f"{r.name}.{r.group}\n" if r.group else f"{r.name}\n" for r in resources)
    wide = output == "wide"
    header = ["NAME", "SHORTNAMES", "APIVERSION", "NAMESPACED", "KIND"]
    header += ["VERBS", "CATEGORIES"] if wide else []
    lines = [] if no_headers else [header]
    lines += [r.row(wide) for r in resources]
    return TabWriter(minwidth=GET_MIN_WIDTH, padding=GET_PADDING).render(lines)


@click.command("api-resources")
@click.option("-o", "--output", type=click.Choice(["wide", "name"]), help="wide or name.")
@click.option("--namespaced", type=click.BOOL, default=None,
              help="Only namespaced (true) or cluster-scoped (false) resources.")
@click.option("--api-group", default=None, help="Only resources of this API group.")
@click.option("--verbs", multiple=True, help="Only resources supporting these verbs.")
@click.option("--sort-by", type=click.Choice(["name", "kind"]), help="Sort by name or kind.")
@click.option("--no-headers", is_flag=True, help="Omit the header line.")
@pass_context
@handle_errors
def api_resources(ctx: CliContext, output: str | None, namespaced: bool | None,
                  api_group: str | None, verbs: tuple[str, ...], sort_by: str | None,
                  no_headers: bool) -> None:
    """Print the supported API resources on the server."""
    chosen = select(discover(ctx.client()), namespaced=namespaced, api_group=api_group,
                    verbs=verbs, sort_by=sort_by)
    click.echo(render(chosen, output=output, no_headers=no_headers), nl=False)
