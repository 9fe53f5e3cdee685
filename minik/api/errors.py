"""API errors as Kubernetes `metav1.Status` objects.

Every failure the API server reports is an `ApiError`: it carries the HTTP
code, the `reason` kubectl switches on, a message, and optional `details`
(with field-level `causes` for Invalid). As in Kubernetes, where details
are a pointer, no details (None) and empty details (`{}`, written as
`"details":{}`) differ. Handlers raise; one middleware
turns the exception into the Status body. The CLI parses the same body back
into an `ApiError` so that both sides share one vocabulary.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, TypedDict


class StatusCause(TypedDict, total=False):
    """metav1.StatusCause."""

    reason: str
    message: str
    field: str


class StatusDetails(TypedDict, total=False):
    """metav1.StatusDetails."""

    name: str
    group: str
    kind: str
    uid: str
    causes: list[StatusCause]
    retryAfterSeconds: int


class Status(TypedDict, total=False):
    """metav1.Status as a JSON object: what `status_body` builds, and what the error channel
    of an exec session carries."""

    kind: str
    apiVersion: str
    metadata: dict[str, Any]
    status: str
    message: str
    reason: str
    details: StatusDetails
    code: int


@dataclass(frozen=True, slots=True)
class Cause:
    """One field-level problem inside an Invalid Status."""

    field: str
    message: str
    reason: str = "FieldValueInvalid"

    def to_dict(self) -> dict[str, str]:
        return {"reason": self.reason, "message": self.message, "field": self.field}


@dataclass(slots=True)
class ApiError(Exception):
    """A request failure that the API answers with a `metav1.Status`."""

    code: int
    reason: str
    message: str
    details: dict[str, Any] | None = None

    def __str__(self) -> str:
        return self.message

    def status(self) -> dict[str, Any]:
        """The metav1.Status body, field for field as Kubernetes serialises it."""
        return status_body("Failure", message=self.message, reason=self.reason,
                           details=self.details, code=self.code)

    @classmethod
    def from_status(cls, body: dict[str, Any], *, code: int) -> ApiError:
        details = body.get("details")
        return cls(
            code=int(body.get("code") or code),
            reason=str(body.get("reason") or "Unknown"),
            message=str(body.get("message") or ""),
            details=dict(details) if isinstance(details, dict) else None,
        )

    @classmethod
    def from_response(cls, code: int, data: bytes, reason: str) -> ApiError:
        """The error an answer with status `code` and body `data` reports, as a client reads it.

        Its `metav1.Status` body when it has one; otherwise (a proxy's page, a
        server that crashed) its text, or the HTTP `reason`, as an InternalError.
        """
        try:
            body = json.loads(data)
        except ValueError:
            body = None
        if isinstance(body, dict) and body.get("kind") == "Status":
            return cls.from_status(body, code=code)
        text = data.decode(errors="replace").strip()
        return cls(code, "InternalError", text or reason)


STATUS_DETAIL_FIELDS = ("name", "group", "kind", "uid", "causes", "retryAfterSeconds")
CAUSE_FIELDS = ("reason", "message", "field")


def status_body(
    status: str, *, message: str = "", reason: str = "", details: dict[str, Any] | None = None,
    code: int = 0,
) -> dict[str, Any]:
    """A metav1.Status as Kubernetes' JSON serializer writes it.

    The keys follow the Go struct (`kind, apiVersion, metadata, status,
    message, reason, details, code`); every field but `metadata` is
    omitempty, and so is every field of `details` (an empty `group` names
    the core group by its absence); `details` is a pointer, so given, even
    empty, it is written. Clients compare these bodies byte for byte, so
    the order matters.
    """
    body: dict[str, Any] = {"kind": "Status", "apiVersion": "v1", "metadata": {}}
    fields: dict[str, Any] = {"status": status, "message": message, "reason": reason}
    body.update((k, v) for k, v in fields.items() if v)
    if details is not None:
        shown = {k: details.get(k) for k in STATUS_DETAIL_FIELDS}
        if shown["causes"]:
            shown["causes"] = [{k: c[k] for k in CAUSE_FIELDS if c.get(k)}
                               for c in shown["causes"]]
        body["details"] = {k: v for k, v in shown.items() if v}
    if code:
        body["code"] = code
    return body


def qualified(resource: str, group: str) -> str:
    """`deployments.apps` as Kubernetes names a resource in messages."""
    return f"{resource}.{group}" if group else resource


def not_found(resource: str, name: str, *, group: str = "") -> ApiError:
    return ApiError(
        404,
        "NotFound",
        f'{qualified(resource, group)} "{name}" not found',
        {"name": name, "group": group, "kind": resource},
    )


def path_not_found() -> ApiError:
    """Kubernetes' answer for a path it does not serve; its details are empty, not absent."""
    return ApiError(404, "NotFound", "the server could not find the requested resource", {})


def already_exists(resource: str, name: str, *, group: str = "") -> ApiError:
    return ApiError(
        409,
        "AlreadyExists",
        f'{qualified(resource, group)} "{name}" already exists',
        {"name": name, "group": group, "kind": resource},
    )


def conflict(resource: str, name: str, *, group: str = "", why: str = "") -> ApiError:
    why = why or (
        "the object has been modified; please apply your changes to the latest version "
        "and try again"
    )
    return ApiError(
        409,
        "Conflict",
        f'Operation cannot be fulfilled on {qualified(resource, group)} "{name}": {why}',
        {"name": name, "group": group, "kind": resource},
    )


def invalid(kind: str, name: str, causes: list[Cause], *, group: str = "") -> ApiError:
    summary = "; ".join(f"{c.field}: {c.message}" for c in causes) if causes else "invalid"
    return ApiError(
        422,
        "Invalid",
        f'{kind}{"." + group if group else ""} "{name}" is invalid: {summary}',
        {"name": name, "group": group, "kind": kind, "causes": [c.to_dict() for c in causes]},
    )


def bad_request(message: str) -> ApiError:
    return ApiError(400, "BadRequest", message)


def forbidden(message: str) -> ApiError:
    return ApiError(403, "Forbidden", message)


def forbidden_for(resource: str, name: str, why: str, *, group: str = "") -> ApiError:
    """Kubernetes' `NewForbidden`: the message names the resource (and object), if any."""
    if not resource:
        message = f"forbidden: {why}"
    elif not name:
        message = f"{qualified(resource, group)} is forbidden: {why}"
    else:
        message = f'{qualified(resource, group)} "{name}" is forbidden: {why}'
    return ApiError(403, "Forbidden", message, {"name": name, "group": group, "kind": resource})


def unauthorized(message: str = "Unauthorized") -> ApiError:
    return ApiError(401, "Unauthorized", message)


def method_not_allowed(message: str) -> ApiError:
    return ApiError(405, "MethodNotAllowed", message)


def method_not_served() -> ApiError:
    """Kubernetes' answer for a method no route of the path takes (empty details, as for a
    path it does not serve)."""
    return ApiError(405, "MethodNotAllowed",
                    "the server does not allow this method on the requested resource", {})


def gone(message: str) -> ApiError:
    return ApiError(410, "Expired", message)


def too_large(message: str) -> ApiError:
    return ApiError(413, "RequestEntityTooLarge", message)


def unsupported_media_type(message: str) -> ApiError:
    return ApiError(415, "UnsupportedMediaType", message)


def too_many_requests(message: str, *, retry_after: int = 0,
                      causes: list[StatusCause] | None = None) -> ApiError:
    """Kubernetes' NewTooManyRequests: 429, `details.retryAfterSeconds` when positive."""
    details: dict[str, Any] = {"retryAfterSeconds": retry_after}
    if causes:
        details["causes"] = causes
    return ApiError(429, "TooManyRequests", message, details)


def internal(message: str) -> ApiError:
    """Kubernetes' NewInternalError: the cause's message is repeated as the only cause."""
    return ApiError(500, "InternalError", f"Internal error occurred: {message}",
                    {"causes": [{"message": message}]})
