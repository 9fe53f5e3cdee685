"""When a Job has finished: its `Complete` or `Failed` condition is True (`IsJobFinished`).

Read by the Job controller and by those that act on finished Jobs (CronJob, TTL
after finished).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from minik.api.objects import JsonObject


def finish_condition(job: Mapping[str, Any]) -> JsonObject | None:
    """The True `Complete` or `Failed` condition of a finished Job, else None."""
    conditions: list[JsonObject] = (job.get("status") or {}).get("conditions") or []
    for condition in conditions:
        if condition.get("type") in ("Complete", "Failed") and condition.get("status") == "True":
            return condition
    return None
