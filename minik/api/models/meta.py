"""Object metadata, owner references and label selectors (meta/v1).

Name rules differ per kind, so `metadata.name` and `generateName` are checked
in `validation.py`; everything else about metadata is checked here, for
top-level objects and pod templates alike.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any

from pydantic import model_validator

from minik.api import names
from minik.api.errors import Cause
from minik.api.models.base import (
    K8sModel,
    checked,
    forbidden,
    invalid,
    join,
    raise_any,
    required,
    too_long,
)


def label_causes(labels: Mapping[str, str]) -> list[Cause]:
    return [invalid("", bad, msg) for bad, msg in names.label_errors(labels)]


def annotation_causes(annotations: Mapping[str, str]) -> list[Cause]:
    causes = [invalid("", key, msg) for key, msg in names.annotation_errors(annotations)]
    if names.annotations_size(annotations) > names.TOTAL_ANNOTATION_SIZE_LIMIT:
        causes.append(too_long("", names.TOTAL_ANNOTATION_SIZE_LIMIT))
    return causes


def finalizer_causes(finalizers: list[str]) -> list[Cause]:
    return [invalid("", f, msg) for f in finalizers for msg in names.is_qualified_name(f)]


Labels = Annotated[dict[str, str], checked(label_causes)]
Annotations = Annotated[dict[str, str], checked(annotation_causes)]


class OwnerReference(K8sModel):
    api_version: str = ""
    kind: str = ""
    name: str = ""
    uid: str = ""
    controller: bool | None = None
    block_owner_deletion: bool | None = None

    @model_validator(mode="after")
    def _complete(self) -> OwnerReference:
        parts = (
            ("apiVersion", "version", self.api_version), ("kind", "kind", self.kind),
            ("name", "name", self.name), ("uid", "uid", self.uid),
        )
        raise_any(invalid(key, "", f"{word} must not be empty") for key, word, v in parts if not v)
        return self


def owner_reference_causes(refs: list[OwnerReference]) -> list[Cause]:
    controllers = [r for r in refs if r.controller]
    if len(controllers) < 2:
        return []
    listed = ", ".join(f"{r.kind}/{r.name}" for r in controllers)
    return [
        invalid("", [r.model_dump(by_alias=True, exclude_none=True) for r in refs],
                f'Only one reference can have Controller set to true. Found "true" in '
                f"references for {listed}")
    ]


class ObjectMeta(K8sModel):
    name: str | None = None
    generate_name: str | None = None
    namespace: str | None = None
    self_link: str | None = None
    uid: str | None = None
    resource_version: str | None = None
    generation: int | None = None
    creation_timestamp: str | None = None
    deletion_timestamp: str | None = None
    deletion_grace_period_seconds: int | None = None
    labels: Labels | None = None
    annotations: Annotations | None = None
    owner_references: Annotated[list[OwnerReference], checked(owner_reference_causes)] | None = (
        None
    )
    finalizers: Annotated[list[str], checked(finalizer_causes)] | None = None
    managed_fields: list[Any] | None = None


class K8sObject(K8sModel):
    """Fields every top-level object has."""

    api_version: str | None = None
    kind: str | None = None
    metadata: ObjectMeta | None = None


class StatusObject(K8sObject):
    """An object with a status: written by controllers, never checked here."""

    status: Any = None


SELECTOR_OPERATORS = ("In", "NotIn", "Exists", "DoesNotExist")


class LabelSelectorRequirement(K8sModel):
    key: Annotated[str, checked(lambda k: [invalid("", k, m) for m in names.is_qualified_name(k)])]
    operator: str
    values: list[str] | None = None

    @model_validator(mode="after")
    def _operator_fits_values(self) -> LabelSelectorRequirement:
        raise_any(requirement_causes(self.operator, self.values))
        return self


def requirement_causes(operator: str, values: list[str] | None) -> list[Cause]:
    if operator in ("In", "NotIn") and not values:
        return [required("values", "must be specified when `operator` is 'In' or 'NotIn'")]
    if operator in ("Exists", "DoesNotExist") and values:
        return [forbidden("values", "may not be specified when `operator` is 'Exists' or "
                                    "'DoesNotExist'")]
    if operator not in SELECTOR_OPERATORS:
        return [invalid("operator", operator, "not a valid selector operator")]
    return []


class LabelSelector(K8sModel):
    match_labels: Labels | None = None
    match_expressions: list[LabelSelectorRequirement] | None = None

    def is_empty(self) -> bool:
        return not self.match_labels and not self.match_expressions

    def matches(self, labels: Mapping[str, str]) -> bool:
        """Kubernetes' selector semantics; an empty selector matches everything."""
        if any(labels.get(k) != v for k, v in (self.match_labels or {}).items()):
            return False
        return all(_requirement_holds(r, labels) for r in self.match_expressions or ())


def _requirement_holds(req: LabelSelectorRequirement, labels: Mapping[str, str]) -> bool:
    present = req.key in labels
    if req.operator == "Exists":
        return present
    if req.operator == "DoesNotExist":
        return not present
    inside = present and labels[req.key] in (req.values or ())
    return inside if req.operator == "In" else not inside


def selector_template_causes(
    selector: LabelSelector | None, template_labels: Mapping[str, str] | None, template_path: str
) -> list[Cause]:
    """`selector` must match the template's labels (Deployment, ReplicaSet, ...)."""
    if selector is None or selector.is_empty():
        return []
    labels = template_labels or {}
    if selector.matches(labels):
        return []
    return [invalid(join(template_path, "metadata.labels"), labels,
                    "`selector` does not match template `labels`")]


