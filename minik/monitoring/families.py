"""Building blocks of kube-state-metrics' series: families, condition triples, resource units.

The rules are kube-state-metrics' own (`internal/store/utils.go`,
`pod.go`, `node.go`): a condition is three series, `true`, `false` and
`unknown`, exactly one of them 1; a resource quantity is reported in its
base unit with the unit as a label (`core` for CPU, `byte` for memory and
storage, hugepages and attachable volumes, `integer` for pods and extended
resources), its name sanitized into a label value (`ephemeral-storage` ->
`ephemeral_storage`); timestamps are Unix seconds.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from minik.api.meta import created_at, owner_references_of, parse_time
from minik.api.models.quantity import parse_quantity
from minik.api.objects import AnyObject, Condition, Quantity
from minik.monitoring.labels import sanitize_label_name

Family = GaugeMetricFamily | CounterMetricFamily

CONDITION_STATUSES = (("true", "True"), ("false", "False"), ("unknown", "Unknown"))
"""(label value, Kubernetes status) of the three series of one condition."""

BYTE_RESOURCES = frozenset({"memory", "storage", "ephemeral-storage"})
"""Resources counted in bytes besides hugepages and attachable volumes."""


def gauge(name: str, help_text: str, labels: Sequence[str]) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, help_text, labels=list(labels))


def counter(name: str, help_text: str, labels: Sequence[str]) -> CounterMetricFamily:
    return CounterMetricFamily(name, help_text, labels=list(labels))


def flag(value: bool) -> float:
    return 1.0 if value else 0.0


def add_condition(family: GaugeMetricFamily, labels: Sequence[str], status: str | None) -> None:
    """The three series of one condition's status: `labels` then the status label."""
    for value, wanted in CONDITION_STATUSES:
        family.add_metric([*labels, value], flag(status == wanted))


def add_conditions(family: GaugeMetricFamily, labels: Sequence[str],
                   conditions: Sequence[Condition] | None, type_: str) -> None:
    """A condition's three series for each condition of `type_` the object reports."""
    for condition in conditions or ():
        if condition.get("type") == type_:
            add_condition(family, labels, condition.get("status"))


def timestamp(text: str | None) -> float | None:
    moment = parse_time(text)
    return moment.timestamp() if moment is not None else None


def created(obj: AnyObject) -> float | None:
    moment = created_at(obj)
    return moment.timestamp() if moment is not None else None


def resource_unit(resource: str) -> str | None:
    """The unit kube-state-metrics reports `resource` in, or None when it reports it not."""
    if resource == "cpu":
        return "core"
    if (resource in BYTE_RESOURCES or resource.startswith("hugepages-")
            or resource.startswith("attachable-volumes-")):
        return "byte"
    if resource == "pods":
        return "integer"
    domain, slash, _ = resource.partition("/")
    if slash and not domain.endswith("kubernetes.io"):
        return "integer"
    return None


def resource_series(resources: Mapping[str, Quantity] | None) -> Iterator[tuple[str, str, float]]:
    """(resource label, unit, value in that unit) for each reportable resource quantity."""
    for resource, quantity in (resources or {}).items():
        unit = resource_unit(resource)
        if unit is None:
            continue
        try:
            value = parse_quantity(quantity)
        except ValueError:
            continue
        yield sanitize_label_name(resource), unit, float(value)


@dataclass(frozen=True)
class Field:
    """A series whose value is one number of the object: `section.key` (`spec.replicas`).

    `default` is the value when the field is absent (Go's zero value, as
    kube-state-metrics reads it), or None when kube-state-metrics then
    reports no series (an optional field such as `spec.parallelism`).
    """

    name: str
    help: str
    section: str
    key: str
    default: float | None = 0.0

    def value(self, obj: Mapping[str, object]) -> float | None:
        section = obj.get(self.section)
        found = section.get(self.key) if isinstance(section, Mapping) else None
        if isinstance(found, bool | int | float):
            return float(found)
        return self.default


def field_families(objects: Sequence[AnyObject], labels: Sequence[str],
                   label_values: Callable[[AnyObject], list[str]],
                   fields: Sequence[Field]) -> Iterator[GaugeMetricFamily]:
    """One family per field, one series per object that has (or defaults) the field."""
    keys = [label_values(obj) for obj in objects]
    for field in fields:
        family = gauge(field.name, field.help, labels)
        for obj, key in zip(objects, keys, strict=True):
            value = field.value(obj)
            if value is not None:
                family.add_metric(key, value)
        yield family


def created_family(objects: Sequence[AnyObject], labels: Sequence[str],
                   label_values: Callable[[AnyObject], list[str]],
                   prefix: str) -> GaugeMetricFamily:
    family = gauge(f"{prefix}_created", "Unix creation timestamp", labels)
    for obj in objects:
        if (value := created(obj)) is not None:
            family.add_metric(label_values(obj), value)
    return family


def owner_family(objects: Sequence[AnyObject], labels: Sequence[str],
            values: Callable[[AnyObject], list[str]], name: str, help_text: str) -> Family:
    """`<kind>_owner`: one series per owner reference, or one of `<none>` without any."""
    family = gauge(name, help_text, [*labels, "owner_kind", "owner_name", "owner_is_controller"])
    for obj in objects:
        refs = owner_references_of(obj)
        if not refs:
            family.add_metric([*values(obj), "<none>", "<none>", "<none>"], 1)
        for ref in refs:
            family.add_metric([*values(obj), ref.get("kind", ""), ref.get("name", ""),
                               str(bool(ref.get("controller"))).lower()], 1)
    return family
