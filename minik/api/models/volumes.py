"""Pod volumes the agent can provide (core/v1 Volume and its sources).

emptyDir, hostPath, configMap, secret, downwardAPI, projected and
persistentVolumeClaim are modelled; any other Kubernetes volume source is
kept, counts as the volume's one source, and is reported as not acted on.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field, model_validator

from minik.api.errors import Cause
from minik.api.models.base import (
    DNSLabel,
    K8sModel,
    NonNegative,
    Quantity,
    RequiredStr,
    checked,
    forbidden,
    invalid,
    one_of,
    raise_any,
    required,
)
from minik.api.models.quantity import parse_quantity

HOST_PATH_TYPES = (
    "", "DirectoryOrCreate", "Directory", "FileOrCreate", "File", "Socket", "CharDevice",
    "BlockDevice",
)


def file_mode(value: int) -> list[Cause]:
    if 0 <= value <= 0o777:
        return []
    return [invalid("", value, "must be a number between 0 and 0777 (octal), both inclusive")]


def relative_path(value: str) -> list[Cause]:
    """A file name inside a volume: relative, without '..' elements."""
    if not value:
        return [required()]
    return local_descending_path(value)


def local_descending_path(value: str, path: str = "") -> list[Cause]:
    """`validateLocalDescendingPath`: relative, and no '..' element to climb out with."""
    causes = []
    if value.startswith("/"):
        causes.append(invalid(path, value, "must be a relative path"))
    if ".." in value.split("/"):
        causes.append(invalid(path, value, "must not contain '..'"))
    return causes


Mode = Annotated[int, checked(file_mode)]
RelativePath = Annotated[str, checked(relative_path)]


class KeyToPath(K8sModel):
    key: RequiredStr
    path: RelativePath
    mode: Mode | None = None


class EmptyDirVolumeSource(K8sModel):
    medium: Annotated[str, one_of("", "Memory")] | None = None
    size_limit: Quantity | None = None

    @model_validator(mode="after")
    def _size(self) -> EmptyDirVolumeSource:
        if self.size_limit is not None and parse_quantity(self.size_limit) < 0:
            raise_any([forbidden("sizeLimit", "SizeLimit field must be a valid resource "
                                              "quantity")])
        return self


class HostPathVolumeSource(K8sModel):
    path: RequiredStr
    type: Annotated[str, one_of(*HOST_PATH_TYPES)] | None = None


class ConfigMapVolumeSource(K8sModel):
    name: str | None = None
    items: list[KeyToPath] | None = None
    default_mode: Mode | None = None
    optional: bool | None = None


class SecretVolumeSource(K8sModel):
    secret_name: str | None = None
    items: list[KeyToPath] | None = None
    default_mode: Mode | None = None
    optional: bool | None = None


class ObjectFieldSelector(K8sModel):
    api_version: str | None = None
    field_path: RequiredStr


class ResourceFieldSelector(K8sModel):
    container_name: str | None = None
    resource: RequiredStr
    divisor: Quantity | None = None


class DownwardAPIVolumeFile(K8sModel):
    path: RelativePath
    field_ref: ObjectFieldSelector | None = None
    resource_field_ref: ResourceFieldSelector | None = None
    mode: Mode | None = None

    @model_validator(mode="after")
    def _one_source(self) -> DownwardAPIVolumeFile:
        if self.field_ref is not None and self.resource_field_ref is not None:
            raise_any([invalid("", "resource", "fieldRef and resourceFieldRef can not be "
                                               "specified simultaneously")])
        if self.field_ref is None and self.resource_field_ref is None:
            raise_any([required("", "one of fieldRef and resourceFieldRef is required")])
        return self


class DownwardAPIVolumeSource(K8sModel):
    items: list[DownwardAPIVolumeFile] | None = None
    default_mode: Mode | None = None


class DownwardAPIProjection(K8sModel):
    items: list[DownwardAPIVolumeFile] | None = None


class ConfigMapProjection(K8sModel):
    name: str | None = None
    items: list[KeyToPath] | None = None
    optional: bool | None = None


class SecretProjection(K8sModel):
    name: str | None = None
    items: list[KeyToPath] | None = None
    optional: bool | None = None


class ServiceAccountTokenProjection(K8sModel):
    audience: str | None = None
    expiration_seconds: NonNegative | None = None
    path: RelativePath


class VolumeProjection(K8sModel):
    config_map: ConfigMapProjection | None = None
    secret: SecretProjection | None = None
    downward_api: DownwardAPIProjection | None = Field(None, alias="downwardAPI")
    service_account_token: ServiceAccountTokenProjection | None = None


class ProjectedVolumeSource(K8sModel):
    sources: list[VolumeProjection] | None = None
    default_mode: Mode | None = None


class PersistentVolumeClaimVolumeSource(K8sModel):
    claim_name: RequiredStr
    read_only: bool | None = None


class Volume(K8sModel):
    name: DNSLabel
    empty_dir: EmptyDirVolumeSource | None = None
    host_path: HostPathVolumeSource | None = None
    config_map: ConfigMapVolumeSource | None = None
    secret: SecretVolumeSource | None = None
    downward_api: DownwardAPIVolumeSource | None = Field(None, alias="downwardAPI")
    projected: ProjectedVolumeSource | None = None
    persistent_volume_claim: PersistentVolumeClaimVolumeSource | None = None

    @model_validator(mode="after")
    def _exactly_one_source(self) -> Volume:
        raise_any(source_count_causes(self.source_names()))
        return self

    def source_names(self) -> list[str]:
        """JSON names of every source set, modelled or not."""
        fields = type(self).model_fields
        declared = [
            f.alias or n for n, f in fields.items()
            if n != "name" and getattr(self, n) is not None
        ]
        extra: dict[str, Any] = self.model_extra or {}
        return declared + [k for k, v in extra.items() if v is not None]


def source_count_causes(sources: list[str]) -> list[Cause]:
    if not sources:
        return [required("", "must specify a volume type")]
    if len(sources) > 1:
        return [forbidden(sources[1], "may not specify more than 1 volume type")]
    return []
