"""Whether a node is one a pod spec asks for and tolerates, as pure functions.

Kubernetes' `component-helpers/scheduling/corev1` (`nodeaffinity`,
`ToleratesTaint`): the scheduler filters nodes with them and the DaemonSet
controller decides with them which nodes run a daemon pod, so they live
with the API's types where both can reach them. A node selector term
matches when all its `matchExpressions` (on labels) and `matchFields` (only
`metadata.name`) hold; an empty term matches nothing; terms are ORed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from minik.api.meta import labels_of, name_of
from minik.api.objects import (
    Node,
    NodeSelectorRequirement,
    NodeSelectorTerm,
    PodSpec,
    Taint,
    Toleration,
)


def tolerates(toleration: Toleration, taint: Taint) -> bool:
    """Kubernetes' `Toleration.ToleratesTaint`."""
    if toleration.get("effect") and toleration["effect"] != taint.get("effect"):
        return False
    if toleration.get("key") and toleration["key"] != taint.get("key"):
        return False
    if toleration.get("operator") == "Exists":
        return True
    return (toleration.get("value") or "") == (taint.get("value") or "")


def tolerated(tolerations: Iterable[Toleration], taint: Taint) -> bool:
    return any(tolerates(t, taint) for t in tolerations)


def _expression_matches(expression: NodeSelectorRequirement, values: Mapping[str, str]) -> bool:
    key, operator = expression.get("key", ""), expression.get("operator")
    wanted = expression.get("values") or []
    actual = values.get(key)
    if operator == "In":
        return actual is not None and actual in wanted
    if operator == "NotIn":
        return actual not in wanted
    if operator == "Exists":
        return actual is not None
    if operator == "DoesNotExist":
        return actual is None
    if operator in ("Gt", "Lt") and actual is not None and len(wanted) == 1:
        try:
            left, right = int(actual), int(wanted[0])
        except ValueError:
            return False
        return left > right if operator == "Gt" else left < right
    return False


def _term_matches(term: NodeSelectorTerm, node: Node) -> bool:
    labels = labels_of(node)
    fields = {"metadata.name": name_of(node)}
    expressions = term.get("matchExpressions") or []
    field_expressions = term.get("matchFields") or []
    if not expressions and not field_expressions:
        return False
    return (all(_expression_matches(e, labels) for e in expressions)
            and all(_expression_matches(e, fields) for e in field_expressions))


def matches_node_selector_terms(terms: Iterable[NodeSelectorTerm], node: Node) -> bool:
    """A NodeSelector's terms are ORed: one must match the node."""
    return any(_term_matches(t, node) for t in terms)


def required_affinity_matches(spec: PodSpec, node: Node) -> bool:
    """`nodeSelector` labels all equal, and a required node affinity term (if any) matches
    (`GetRequiredNodeAffinity(pod).Match(node)`)."""
    labels = labels_of(node)
    if any(labels.get(k) != v for k, v in (spec.get("nodeSelector") or {}).items()):
        return False
    node_affinity = (spec.get("affinity") or {}).get("nodeAffinity") or {}
    required = node_affinity.get("requiredDuringSchedulingIgnoredDuringExecution")
    terms = required.get("nodeSelectorTerms") if required else None
    return terms is None or matches_node_selector_terms(terms, node)
