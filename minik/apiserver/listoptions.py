"""The options of a list or watch request (metav1.ListOptions), checked before anything runs.

A list or watch request is parsed and validated here, before the store is
read or a watch response starts, so that a bad request gets Kubernetes'
answer up front rather than a 200 that fails midway:

- a parameter that does not decode (`limit=abc`) is 400 BadRequest, as
  Kubernetes' parameter codec answers;
- `ValidateListOptions`' rules (`resourceVersionMatch` without a
  `resourceVersion`, with `continue`, or on a watch; `sendInitialEvents`) are
  422 Invalid `ListOptions.meta.k8s.io`;
- a `resourceVersion` that is not a revision is refused as Kubernetes' storage
  refuses it: 422 Invalid from the watch cache, which serves watches and most
  lists, and 400 BadRequest ("invalid resource version") from the storage
  itself, which serves exact and paged reads.

resourceVersion semantics for a list, as Kubernetes documents them ("Semantics
for get and list"): unset is the newest state; `0` and `NotOlderThan` accept
any state at least that new - minik's store never lags, so the newest state,
or 504 "Too large resource version" for a revision the store has not reached;
`Exact` and the legacy paged read (a `limit` with a resourceVersion other than
`0`) read the state at exactly that revision (410 once compacted). A watch
starts after its resourceVersion; unset or `0` first sends the current objects
as ADDED events. `sendInitialEvents` (the WatchList feature) is refused as
Kubernetes refuses it with that feature gate off; clients then list and watch.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from minik.api import errors
from minik.api.models.base import go_quote
from minik.api.query import parse_bool, parse_optional_bool
from minik.apiserver.params import int64_query

EXACT = "Exact"
NOT_OLDER_THAN = "NotOlderThan"
MAX_REVISION = 2**64 - 1
_DIGITS = re.compile(r"[0-9]+")


def _forbidden(field: str, detail: str) -> errors.Cause:
    return errors.Cause(field, f"Forbidden: {detail}", "FieldValueForbidden")


def _not_supported(field: str, value: str, supported: tuple[str, ...]) -> errors.Cause:
    choices = ", ".join(go_quote(s) for s in supported)
    return errors.Cause(field, f"Unsupported value: {go_quote(value)}: supported values: {choices}",
                        "FieldValueNotSupported")


def _seconds(query: Mapping[str, str], name: str) -> float | None:
    text = query.get(name)
    if not text:
        return None
    try:
        return max(0.0, float(text))
    except ValueError as e:
        raise errors.bad_request(f"{name} must be a number: {text!r}") from e


def too_large(revision: int, current: int) -> errors.ApiError:
    """Kubernetes' answer to a read at a revision the store has not reached."""
    return errors.ApiError(
        504, "Timeout", f"Timeout: Too large resource version: {revision}, current: {current}",
        {"causes": [{"reason": "ResourceVersionTooLarge",
                     "message": "Too large resource version"}], "retryAfterSeconds": 1},
    )


@dataclass(frozen=True, slots=True)
class ListOptions:
    """A request's list or watch options, decoded and validated."""

    watch: bool = False
    resource_version: str = ""
    match: str = ""
    limit: int | None = None
    continue_token: str = ""
    timeout: float | None = None
    bookmarks: bool = False
    send_initial_events: bool | None = None

    @classmethod
    def parse(cls, query: Mapping[str, str]) -> ListOptions:
        limit = int64_query(query, "limit")
        options = cls(
            watch=parse_bool(query, "watch"),
            resource_version=query.get("resourceVersion", ""),
            match=query.get("resourceVersionMatch", ""),
            limit=limit if limit and limit > 0 else None,
            continue_token=query.get("continue", ""),
            timeout=_seconds(query, "timeoutSeconds"),
            bookmarks=parse_bool(query, "allowWatchBookmarks"),
            send_initial_events=parse_optional_bool(query, "sendInitialEvents"),
        )
        causes = options._watch_causes() if options.watch else options._list_causes()
        if causes:
            raise errors.invalid("ListOptions", "", causes, group="meta.k8s.io")
        options._check_revision()
        return options

    def _list_causes(self) -> list[errors.Cause]:
        causes: list[errors.Cause] = []
        if self.match:
            if not self.resource_version:
                causes.append(_forbidden("resourceVersionMatch", "resourceVersionMatch is "
                                         "forbidden unless resourceVersion is provided"))
            if self.continue_token:
                causes.append(_forbidden("resourceVersionMatch", "resourceVersionMatch is "
                                         "forbidden when continue is provided"))
            if self.match not in (EXACT, NOT_OLDER_THAN):
                causes.append(_not_supported("resourceVersionMatch", self.match,
                                             (EXACT, NOT_OLDER_THAN, "")))
            if self.match == EXACT and self.resource_version == "0":
                causes.append(_forbidden("resourceVersionMatch", 'resourceVersionMatch "exact" '
                                         'is forbidden for resourceVersion "0"'))
        if self.send_initial_events is not None:
            causes.append(_forbidden("sendInitialEvents", "sendInitialEvents is forbidden for "
                                     "list"))
        return causes

    def _watch_causes(self) -> list[errors.Cause]:
        causes: list[errors.Cause] = []
        if self.send_initial_events is not None:
            if self.match != NOT_OLDER_THAN:
                causes.append(_forbidden("resourceVersionMatch", "sendInitialEvents requires "
                                         f"setting resourceVersionMatch to {NOT_OLDER_THAN}"))
            causes.append(_forbidden("sendInitialEvents", "sendInitialEvents is forbidden for "
                                     "watch unless the WatchList feature gate is enabled"))
        if self.match:
            if self.send_initial_events is None:
                causes.append(_forbidden("resourceVersionMatch", "resourceVersionMatch is "
                                         "forbidden for watch unless sendInitialEvents is "
                                         "provided"))
            if self.match != NOT_OLDER_THAN:
                causes.append(_not_supported("resourceVersionMatch", self.match,
                                             (NOT_OLDER_THAN,)))
            if self.continue_token:
                causes.append(_forbidden("resourceVersionMatch", "resourceVersionMatch is "
                                         "forbidden when continue is provided"))
        return causes

    @property
    def exact(self) -> bool:
        """Whether a list reads exactly at its resourceVersion (from storage, not the cache)."""
        return self.match == EXACT or (
            not self.match and self.limit is not None
            and self.resource_version not in ("", "0"))

    def _check_revision(self) -> None:
        text = self.resource_version
        if self.continue_token and not self.watch and text not in ("", "0"):
            raise errors.bad_request(
                "specifying resource version is not allowed when using continue")
        if text in ("", "0") or (_DIGITS.fullmatch(text) and int(text) <= MAX_REVISION):
            return
        why = "invalid syntax" if not _DIGITS.fullmatch(text) else "value out of range"
        error = (f"resourceVersion: Invalid value: {go_quote(text)}: strconv.ParseUint: "
                 f"parsing {go_quote(text)}: {why}")
        if self.exact and not self.watch:
            raise errors.bad_request(f"invalid resource version: {error}")
        raise errors.ApiError(422, "Invalid", error)

    @property
    def revision(self) -> int | None:
        """The resourceVersion as a revision; None for unset and `0` (any, or now)."""
        text = self.resource_version
        return None if text in ("", "0") else int(text)
