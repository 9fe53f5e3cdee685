"""API discovery: /version, /api, /apis and the per-group-version lists.

kubectl prefers the aggregated format (`APIGroupDiscoveryList`), detected by
the response Content-Type only: `apidiscovery.k8s.io/v2` from kubectl 1.30,
`v2beta1` before; `negotiation` picks the one asked for. Other clients and
the fallback path use the legacy `APIVersions` / `APIGroupList` /
`APIResourceList` bodies. All are generated from the resource registry.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from minik import KUBERNETES_VERSION
from minik.api import errors
from minik.api.resources import REGISTRY, ResourceType
from minik.apiserver import negotiation
from minik.apiserver.responses import dumps, json_response


def version_info() -> dict[str, str]:
    major, minor = KUBERNETES_VERSION.lstrip("v").split(".")[:2]
    return {
        "major": major, "minor": minor, "gitVersion": f"{KUBERNETES_VERSION}+minik",
        "gitCommit": "minik", "gitTreeState": "clean", "buildDate": "2026-11-24T00:00:00Z",
        "goVersion": "go1.24.0", "compiler": "gc", "platform": "linux/amd64",
    }


def _gvk(group: str, version: str, kind: str) -> dict[str, str]:
    return {"group": group, "version": version, "kind": kind}


def _aggregated_resource(rt: ResourceType) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "resource": rt.plural,
        "responseKind": _gvk(rt.group, rt.version, rt.kind),
        "scope": "Namespaced" if rt.namespaced else "Cluster",
        "singularResource": rt.singular,
        "verbs": list(rt.verbs),
    }
    if rt.short_names:
        entry["shortNames"] = list(rt.short_names)
    if rt.categories:
        entry["categories"] = list(rt.categories)
    subs = [
        {"subresource": s.name, "responseKind": _gvk(s.group, s.version, s.kind),
         "verbs": list(s.verbs)}
        for s in rt.all_subresources()
    ]
    if subs:
        entry["subresources"] = subs
    return entry


def _aggregated_group(group: str, versions: list[str]) -> dict[str, Any]:
    item: dict[str, Any] = {"metadata": {"creationTimestamp": None}, "versions": []}
    if group:
        item["metadata"]["name"] = group
    for version in versions:
        item["versions"].append({
            "version": version,
            "freshness": "Current",
            "resources": [_aggregated_resource(rt)
                          for rt in REGISTRY.in_group_version(group, version)],
        })
    return item


def _aggregated(chosen: negotiation.Representation, *, core: bool) -> web.Response:
    """The aggregated document, in the apidiscovery.k8s.io version asked for (v2, v2beta1).

    Both versions have the same shape; only apiVersion and Content-Type tell them apart.
    """
    assert chosen.conversion is not None
    items = [_aggregated_group(g, v) for g, v in REGISTRY.groups() if (g == "") == core]
    body = {"kind": "APIGroupDiscoveryList",
            "apiVersion": f"{chosen.conversion.group}/{chosen.conversion.version}",
            "metadata": {}, "items": items}
    json_chosen = negotiation.Representation(negotiation.JSON, chosen.conversion)
    return web.Response(text=dumps(body), headers={"Content-Type": json_chosen.content_type()})


def _aggregation_asked(request: web.Request) -> negotiation.Representation | None:
    chosen = negotiation.representation(request)
    return chosen if chosen.conversion is not None else None


async def api_versions(request: web.Request) -> web.Response:
    if (chosen := _aggregation_asked(request)) is not None:
        return _aggregated(chosen, core=True)
    host = request.host
    return json_response({
        "kind": "APIVersions", "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": host}],
    })


def _group_entry(group: str, versions: list[str]) -> dict[str, Any]:
    listed = [{"groupVersion": f"{group}/{v}", "version": v} for v in versions]
    return {"name": group, "versions": listed, "preferredVersion": listed[0]}


async def api_groups(request: web.Request) -> web.Response:
    if (chosen := _aggregation_asked(request)) is not None:
        return _aggregated(chosen, core=False)
    groups = [_group_entry(g, v) for g, v in REGISTRY.groups() if g]
    return json_response({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})


async def api_group(request: web.Request) -> web.Response:
    group = request.match_info["group"]
    versions = dict(REGISTRY.groups()).get(group)
    if not versions:
        raise errors.path_not_found()
    return json_response({"kind": "APIGroup", "apiVersion": "v1", **_group_entry(group, versions)})


def _legacy_resources(rt: ResourceType) -> list[dict[str, Any]]:
    main: dict[str, Any] = {
        "name": rt.plural, "singularName": rt.singular, "namespaced": rt.namespaced,
        "kind": rt.kind, "verbs": list(rt.verbs),
    }
    if rt.short_names:
        main["shortNames"] = list(rt.short_names)
    if rt.categories:
        main["categories"] = list(rt.categories)
    subs = [
        {"name": f"{rt.plural}/{s.name}", "singularName": "", "namespaced": rt.namespaced,
         "kind": s.kind, "verbs": list(s.verbs),
         **({"group": s.group, "version": s.version} if s.group != rt.group else {})}
        for s in rt.all_subresources()
    ]
    return [main, *subs]


async def resource_list(request: web.Request) -> web.Response:
    group = request.match_info.get("group", "")
    version = request.match_info["version"]
    types = list(REGISTRY.in_group_version(group, version))
    if not types:
        raise errors.path_not_found()
    resources = [r for rt in types for r in _legacy_resources(rt)]
    group_version = f"{group}/{version}" if group else version
    return json_response({"kind": "APIResourceList", "apiVersion": "v1",
                          "groupVersion": group_version, "resources": resources})


async def version(request: web.Request) -> web.Response:
    return json_response(version_info())
