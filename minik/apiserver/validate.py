"""The API server's one door to `minik.api.validation`, which it imports on first use.

Importing the validation models takes a good part of a second on a busy
machine, and `minik up` serves the API before paying for it:
`server.start_components` imports `minik.api.validation` off the event loop
once the API answers, so that a first write seldom waits for it. Every module
of the API server validates through here, so these are its only imports
made inside functions.
"""

from __future__ import annotations

from typing import Any

from minik.api.resources import ResourceType


def validate(rt: ResourceType, obj: dict[str, Any], *, field_validation: str,
             old: dict[str, Any] | None = None, subresource: str | None = None) -> list[str]:
    """`minik.api.validation.validate`: raise for a body Kubernetes would refuse; warnings."""
    from minik.api import validation

    return validation.validate(rt, obj, field_validation=field_validation, old=old,
                               subresource=subresource)


def validate_body(api_version: str, kind: str, obj: dict[str, Any], *,
                  field_validation: str = "Strict") -> list[str]:
    """`minik.api.validation.validate_body`: a subresource's or an option's body."""
    from minik.api import validation

    return validation.validate_body(api_version, kind, obj, field_validation=field_validation)
