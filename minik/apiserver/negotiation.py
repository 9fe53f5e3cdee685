"""Content negotiation: the representation a client gets, chosen from its Accept header.

minik follows Kubernetes' apiserver (`negotiation.NegotiateMediaTypeOptions`)
clause by clause, for every endpoint that renders API objects:

- the Accept header's clauses are ordered as Go's goautoneg orders them:
  by quality, and concrete types before wildcards (an insertion sort, so
  otherwise the client's own order stands); the quality only orders: even
  `q=0` accepts;
- the first clause, in that order, that names a media type the endpoint
  produces wins (`type/*` and `*/*` match the first such type), provided
  its `as`, `g` and `v` parameters ask for a conversion the endpoint offers
  (a Table, an aggregated discovery document) or for none where the
  endpoint offers plain objects; `stream=watch` is JSON's only; other
  parameters (`charset`, `pretty`) do not matter;
- no Accept header at all means JSON; a header none of whose clauses is
  acceptable is answered 406 NotAcceptable, before the request does
  anything.

`/api` and `/apis` negotiate twice, as Kubernetes' discovery wrapper does:
the aggregated document (`apidiscovery.k8s.io` v2 or v2beta1) when any
clause asks for it, else the legacy `APIVersions`/`APIGroupList`.

minik produces JSON, and YAML where Kubernetes does (not for watch
streams); never protobuf. kubectl and client-go list
`application/vnd.kubernetes.protobuf` with JSON after it, and get JSON; a
client that accepts only protobuf gets 406. Handlers render JSON; a YAML
answer is the same body transcoded on its way out, at this one place, with
its keys sorted as Kubernetes' YAML serializer writes them. An error's
Status follows the Accept header too, negotiated as for plain objects (as
Kubernetes' `ErrorNegotiated` does), and is JSON when nothing fits.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field

import yaml
from aiohttp import web

from minik.api import errors
from minik.apiserver.routing import resource_request, verb

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
JSON = "application/json"
YAML = "application/yaml"
STREAMED_SUBRESOURCES = frozenset({"log", "exec", "attach", "portforward"})


@dataclass(frozen=True, slots=True)
class GroupVersionKind:
    """A group, version and kind a client asks the answer to be converted to (`as=`)."""

    group: str
    version: str
    kind: str


TABLE_V1 = GroupVersionKind("meta.k8s.io", "v1", "Table")
TABLE_V1BETA1 = GroupVersionKind("meta.k8s.io", "v1beta1", "Table")
DISCOVERY_V2 = GroupVersionKind("apidiscovery.k8s.io", "v2", "APIGroupDiscoveryList")
DISCOVERY_V2BETA1 = GroupVersionKind("apidiscovery.k8s.io", "v2beta1", "APIGroupDiscoveryList")


@dataclass(frozen=True, slots=True)
class Clause:
    """One media range of an Accept header, with its quality and parameters."""

    type: str
    subtype: str
    q: float = 1.0
    params: Mapping[str, str] = field(default_factory=dict)

    def specificity(self, media_type: str) -> int:
        """2 for the exact type, 1 for `type/*`, 0 for `*/*`, -1 when it does not match."""
        kind, _, sub = media_type.partition("/")
        if self.type == kind and self.subtype == sub:
            return 2
        if self.type == kind and self.subtype == "*":
            return 1
        if self.type == "*" and self.subtype == "*":
            return 0
        return -1

    @property
    def conversion(self) -> GroupVersionKind | None:
        if not {"as", "g", "v"} & self.params.keys():
            return None
        p = self.params
        return GroupVersionKind(p.get("g", ""), p.get("v", ""), p.get("as", ""))


def _precedes(a: Clause, b: Clause) -> bool:
    """goautoneg's order: higher quality first, then concrete before wildcard types."""
    if a.q > b.q:
        return True
    if a.type != "*" and b.type == "*":
        return True
    return a.subtype != "*" and b.subtype == "*"


def _quality(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        return 0.0  # Go's ParseFloat error leaves a zero quality


def parse_accept(header: str) -> list[Clause]:
    """The clauses of an Accept header, in the order Kubernetes tries them."""
    clauses: list[Clause] = []
    for part in header.split(","):
        media_range, *raw_params = part.strip().split(";")
        kind, slash, sub = media_range.strip().partition("/")
        kind, sub = kind.strip(), sub.strip()
        if not slash:
            if kind != "*":
                continue
            sub = "*"
        q, params = 1.0, {}
        for raw in raw_params:
            name, eq, value = raw.partition("=")
            if not eq:
                continue
            if name.strip() == "q":
                q = _quality(value.strip())
            else:
                params[name.strip()] = value.strip()
        clause = Clause(kind, sub, q, params)
        at = len(clauses)
        while at > 0 and _precedes(clause, clauses[at - 1]):
            at -= 1
        clauses.insert(at, clause)
    return clauses


@dataclass(frozen=True, slots=True)
class Offer:
    """What one endpoint can answer: media types, server's preference first, and conversions."""

    media_types: tuple[str, ...]
    conversions: frozenset[GroupVersionKind] = frozenset()
    plain: bool = True

    def accepts(self, clause: Clause, media_type: str) -> bool:
        stream = clause.params.get("stream", "")
        if stream and (stream != "watch" or media_type != JSON):
            return False
        conversion = clause.conversion
        return self.plain if conversion is None else conversion in self.conversions


TABLES = frozenset({TABLE_V1, TABLE_V1BETA1})
RESOURCE = Offer((JSON, YAML), TABLES)
WATCH = Offer((JSON,), TABLES)
PLAIN = Offer((JSON, YAML))
AGGREGATED_DISCOVERY = Offer((JSON, YAML), frozenset({DISCOVERY_V2, DISCOVERY_V2BETA1}),
                             plain=False)


@dataclass(frozen=True, slots=True)
class Representation:
    """The negotiated answer: a media type and the conversion asked for, if any."""

    media_type: str = JSON
    conversion: GroupVersionKind | None = None

    @property
    def table(self) -> bool:
        return self.conversion is not None and self.conversion.kind == "Table"

    def content_type(self) -> str:
        """The media type, naming the conversion as Kubernetes does for discovery documents."""
        if self.conversion is None or self.table:
            return self.media_type
        c = self.conversion
        return f"{self.media_type};g={c.group};v={c.version};as={c.kind}"


def negotiate(header: str, offer: Offer) -> Representation | None:
    """The representation `offer` gives for an Accept header, or None if none is acceptable."""
    if not header.strip():
        return Representation(offer.media_types[0]) if offer.plain else None
    for clause in parse_accept(header):
        for media_type in offer.media_types:
            if clause.specificity(media_type) >= 0 and offer.accepts(clause, media_type):
                return Representation(media_type, clause.conversion)
    return None


def not_acceptable(offer: Offer) -> errors.ApiError:
    return errors.ApiError(406, "NotAcceptable",
                           "only the following media types are accepted: "
                           + ", ".join(offer.media_types))


KEY = web.RequestKey("representation", Representation)


def representation(request: web.Request) -> Representation:
    """The representation negotiated for this request (as a resource answer if not yet)."""
    chosen = request.get(KEY)
    if chosen is None:
        chosen = _negotiate(request, (RESOURCE,))
        request[KEY] = chosen
    return chosen


def _negotiate(request: web.Request, offers: tuple[Offer, ...]) -> Representation:
    header = request.headers.get("Accept", "")
    for offer in offers:
        chosen = negotiate(header, offer)
        if chosen is not None:
            return chosen
    raise not_acceptable(offers[-1])


def _offers(request: web.Request) -> tuple[Offer, ...]:
    """What the endpoint a request reaches can answer; nothing for unrendered endpoints."""
    info = request.match_info
    if request.path in ("/api", "/apis"):
        return AGGREGATED_DISCOVERY, PLAIN
    if "tail" in info:
        try:
            target = resource_request(request)
        except errors.ApiError:
            return ()  # the handler answers 404
        if target.subresource in STREAMED_SUBRESOURCES:
            return ()
        return (WATCH,) if verb(request, target) == "watch" else (RESOURCE,)
    if "version" in info or "group" in info:
        return (PLAIN,)
    return ()


@web.middleware
async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Negotiate before the handler runs; transcode its JSON answer when YAML was chosen."""
    offers = _offers(request)
    if offers:
        request[KEY] = _negotiate(request, offers)
    response = await handler(request)
    chosen: Representation | None = request.get(KEY)
    if chosen is not None and chosen.media_type == YAML:
        return _as_yaml(response, chosen)
    return response


def _as_yaml(response: web.StreamResponse, chosen: Representation) -> web.StreamResponse:
    as_yaml(response)
    if response.content_type == YAML and chosen.conversion is not None and not chosen.table:
        response.headers["Content-Type"] = chosen.content_type()
    return response


def as_yaml(response: web.StreamResponse) -> web.StreamResponse:
    """A whole JSON answer transcoded to YAML (keys sorted, as Kubernetes writes them)."""
    if not isinstance(response, web.Response) or response.content_type != JSON \
            or response.body is None:
        return response
    assert isinstance(response.body, bytes)
    text = yaml.safe_dump(json.loads(response.body), sort_keys=True, allow_unicode=True)
    response.text = text
    response.content_type = YAML
    return response


def error_media_type(request: web.Request) -> str:
    """The media type of an error's Status: as negotiated for a plain object, else JSON."""
    chosen = negotiate(request.headers.get("Accept", ""), PLAIN)
    return JSON if chosen is None else chosen.media_type
