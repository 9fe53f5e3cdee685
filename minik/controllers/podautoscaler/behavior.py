"""Stabilization and scaling policies: how far and how fast a proposal may move the target.

As Kubernetes' `horizontal.go` (`normalizeDesiredReplicas*`): the controller
remembers, per HPA, its recent unstabilized recommendations and the scale
events it made (in memory, as Kubernetes does: a restart forgets them).
Without `spec.behavior`, a scale down takes the highest recommendation of
the last 5 minutes and a scale up is capped at max(2 * current, 4). With
it, the scale-up window takes the lowest recent recommendation and the
scale-down window the highest; then the rules' policies (Pods or Percent
per `periodSeconds`, against the replicas at the start of the period, as
the scale events say) bound the change, `selectPolicy` choosing the policy
that allows the most (Max), the least (Min), or no change (Disabled).
Each step reports the reason and message of its AbleToScale or
ScalingLimited condition.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from minik.api.defaults import HPA_SCALE_DOWN, HPA_SCALE_UP

DOWNSCALE_STABILIZATION_SECONDS = 300.0

Rules = dict[str, Any]
"""One direction's HPAScalingRules (`stabilizationWindowSeconds`, `selectPolicy`, `policies`)."""


@dataclass(frozen=True, slots=True)
class Verdict:
    """A replica count and the reason and message of the condition that explains it."""

    replicas: int
    reason: str
    message: str


@dataclass(slots=True)
class _Recommendation:
    replicas: int
    at: float


@dataclass(slots=True)
class _ScaleEvent:
    change: int
    at: float
    outdated: bool = False


@dataclass(slots=True)
class History:
    """What one HPA's behavior needs to remember."""

    recommendations: list[_Recommendation] = field(default_factory=list)
    scale_up: list[_ScaleEvent] = field(default_factory=list)
    scale_down: list[_ScaleEvent] = field(default_factory=list)

    def initial(self, current: int, now: float) -> None:
        """The target's size as the first recommendation, as `recordInitialRecommendation`."""
        if not self.recommendations:
            self.recommendations.append(_Recommendation(current, now))

    def remember(self, replicas: int, now: float, obsolete_before: float) -> None:
        old = [r for r in self.recommendations if r.at < obsolete_before]
        if old:
            old[-1].replicas, old[-1].at = replicas, now
        else:
            self.recommendations.append(_Recommendation(replicas, now))

    def record_scale(self, behavior: dict[str, Any] | None, before: int, after: int,
                     now: float) -> None:
        """Remember a rescale for the rate policies (only with a behavior, as Kubernetes)."""
        if behavior is None:
            return
        up = after > before
        rules = _rules(behavior, up)
        events = self.scale_up if up else self.scale_down
        longest = max((p.get("periodSeconds", 0) for p in rules.get("policies") or []),
                      default=0)
        for event in events:
            event.outdated = event.outdated or event.at <= now - longest
        event = _ScaleEvent(abs(after - before), now)
        stale = next((i for i, e in enumerate(events) if e.outdated), None)
        if stale is None:
            events.append(event)
        else:
            events[stale] = event


def _rules(behavior: dict[str, Any], up: bool) -> Rules:
    given = behavior.get("scaleUp" if up else "scaleDown")
    default = HPA_SCALE_UP if up else HPA_SCALE_DOWN
    rules: Rules = dict(default)
    if isinstance(given, dict):
        rules.update({k: v for k, v in given.items() if v is not None})
    if not up and rules.get("stabilizationWindowSeconds") is None:
        rules["stabilizationWindowSeconds"] = DOWNSCALE_STABILIZATION_SECONDS
    return rules


def _changed_in_period(events: list[_ScaleEvent], period: float, now: float) -> int:
    return sum((e.change for e in events if e.at > now - period), 0)


def policy_limit(current: int, events: list[_ScaleEvent], rules: Rules, now: float, *,
                 up: bool) -> int:
    """The most (scaling up) or fewest (down) replicas the policies allow now.

    Each policy counts from the replicas at the start of its period (the scale
    events of the period undone); `Max` picks the policy allowing the largest
    change, `Min` the smallest, `Disabled` allows none.
    """
    select = rules.get("selectPolicy") or "Max"
    if select == "Disabled":
        return current
    sign = 1 if up else -1
    proposals = []
    for policy in rules.get("policies") or []:
        start = current - sign * _changed_in_period(events, policy.get("periodSeconds", 0), now)
        value = int(policy.get("value", 0))
        if policy.get("type") == "Pods":
            proposals.append(start + sign * value)
        elif up:
            proposals.append(math.ceil(start * (1 + value / 100)))
        else:
            proposals.append(int(start * (1 - value / 100)))
    if not proposals:
        return current
    most_change = max if up else min
    least_change = min if up else max
    return least_change(proposals) if select == "Min" else most_change(proposals)


def within_range(desired: int) -> Verdict:
    return Verdict(desired, "DesiredWithinRange",
                   "the desired count is within the acceptable range")


_TOO_FEW = "the desired replica count is less than the minimum replica count"
_TOO_MANY = "the desired replica count is more than the maximum replica count"
_UP_RATE = "the desired replica count is increasing faster than the maximum scale rate"
_DOWN_RATE = "the desired replica count is decreasing faster than the maximum scale rate"


def stabilize_default(history: History, desired: int, now: float) -> Verdict:
    """Without a behavior: the highest recommendation of the downscale window."""
    cutoff = now - DOWNSCALE_STABILIZATION_SECONDS
    highest = max([desired, *(r.replicas for r in history.recommendations if r.at >= cutoff)])
    history.remember(desired, now, cutoff)
    if highest != desired:
        return Verdict(highest, "ScaleDownStabilized", "recent recommendations were higher "
                       "than current one, applying the highest recent recommendation")
    return Verdict(highest, "ReadyForNewScale", "recommended size matches current size")


def limit_default(current: int, desired: int, minimum: int, maximum: int) -> Verdict:
    """Without a behavior: min/max, and a scale up to at most max(2 * current, 4)."""
    up_limit = max(2 * current, 4)
    ceiling, reason, message = ((up_limit, "ScaleUpLimit", _UP_RATE) if maximum > up_limit
                                else (maximum, "TooManyReplicas", _TOO_MANY))
    floor = minimum if minimum else 1
    if desired < floor:
        return Verdict(floor, "TooFewReplicas", _TOO_FEW)
    if desired > ceiling:
        return Verdict(ceiling, reason, message)
    return within_range(desired)


def stabilize(history: History, behavior: dict[str, Any], current: int, desired: int,
              now: float) -> Verdict:
    """With a behavior: the scale-up and scale-down windows over recent recommendations."""
    up_window = float(_rules(behavior, True).get("stabilizationWindowSeconds") or 0)
    down_window = float(_rules(behavior, False).get("stabilizationWindowSeconds") or 0)
    up, down = desired, desired
    for r in history.recommendations:
        if r.at > now - up_window:
            up = min(up, r.replicas)
        if r.at > now - down_window:
            down = max(down, r.replicas)
    recommendation = min(max(current, up), down)
    history.remember(desired, now, now - max(up_window, down_window))
    if recommendation == desired:
        return Verdict(desired, "ReadyForNewScale", "recommended size matches current size")
    if desired >= current:
        return Verdict(recommendation, "ScaleUpStabilized", "recent recommendations were lower "
                       "than current one, applying the lowest recent recommendation")
    return Verdict(recommendation, "ScaleDownStabilized", "recent recommendations were higher "
                   "than current one, applying the highest recent recommendation")


def limit_rate(history: History, behavior: dict[str, Any], current: int, desired: int,
               minimum: int, maximum: int, now: float) -> Verdict:
    """With a behavior: min/max, and the policies' rate against the recent scale events."""
    if desired > current:
        limit = max(policy_limit(current, history.scale_up, _rules(behavior, True), now,
                                 up=True), current)
        ceiling, reason, message = ((limit, "ScaleUpLimit", _UP_RATE) if maximum > limit
                                    else (maximum, "TooManyReplicas", _TOO_MANY))
        if desired > ceiling:
            return Verdict(ceiling, reason, message)
    elif desired < current:
        limit = min(policy_limit(current, history.scale_down, _rules(behavior, False), now,
                                 up=False), current)
        floor, reason, message = ((limit, "ScaleDownLimit", _DOWN_RATE) if minimum < limit
                                  else (minimum, "TooFewReplicas", _TOO_FEW))
        if desired < floor:
            return Verdict(floor, reason, message)
    return within_range(desired)
