"""A CronJob's schedule: parsing, and the times a sync acts on.

Shaped like Kubernetes' `pkg/controller/cronjob/utils.go`. Schedules are
parsed by croniter (five fields, names, ranges, steps, and the descriptors
`@yearly`/`@annually`, `@monthly`, `@weekly`, `@daily`/`@midnight`,
`@hourly`); `@every <duration>`, which robfig/cron (Kubernetes' parser)
also accepts, is a constant delay from the last time. `spec.timeZone` is
an IANA name read with `zoneinfo`; a schedule written with `TZ=` or
`CRON_TZ=` is refused by the API and, if stored anyway, read in UTC with
an `UnsupportedSchedule` event, as Kubernetes' controller does.

`Schedule.next(t)` is robfig/cron's `Next`: the first activation strictly
after `t`, to the second. `most_recent_schedule_time` finds the latest
missed activation (counting roughly how many were missed, as Kubernetes
does, so that a clock decades off costs no CPU); `requeue_after` says when
the next one is due.
"""

from __future__ import annotations

import datetime as dt
import enum
import re
import zoneinfo
from dataclasses import dataclass

from croniter import CroniterBadDateError, CroniterError, croniter

NEXT_SCHEDULE_DELTA = 0.1
"""Seconds past a due time at which the sync is queued, as Kubernetes' nextScheduleDelta."""
MANY_MISSED = 100

_DURATION_PART = re.compile(r"([0-9]+(?:\.[0-9]+)?)(ns|us|µs|ms|s|m|h)")
_UNIT_SECONDS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0,
                 "h": 3600.0}


class ScheduleError(ValueError):
    """A schedule or time zone that cannot be read."""


class Missed(enum.Enum):
    NONE = "none"
    FEW = "few"
    MANY = "many"


def load_time_zone(name: str | None) -> dt.tzinfo:
    """The IANA zone `name` (UTC when unset), or ScheduleError naming it."""
    if not name:
        return dt.UTC
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError) as e:
        raise ScheduleError(f"unknown time zone {name}") from e


def _every(text: str) -> float:
    rest = text.removeprefix("@every").strip()
    parts = _DURATION_PART.findall(rest)
    if not parts or "".join(n + u for n, u in parts) != rest:
        raise ScheduleError(f"failed to parse duration {text}: invalid duration {rest!r}")
    seconds = sum(float(n) * _UNIT_SECONDS[u] for n, u in parts)
    return max(1.0, float(int(seconds)))


@dataclass(frozen=True)
class Schedule:
    """A parsed schedule in a time zone; `every` is set for `@every` schedules."""

    expression: str
    zone: dt.tzinfo
    every: float | None = None

    def next(self, after: dt.datetime) -> dt.datetime:
        """The first activation strictly after `after` (UTC), to the second."""
        start = after.astimezone(dt.UTC).replace(microsecond=0)
        if self.every is not None:
            return start + dt.timedelta(seconds=self.every)
        try:
            found: dt.datetime = croniter(self.expression, start.astimezone(self.zone)) \
                .get_next(dt.datetime)
        except CroniterBadDateError as e:
            raise ScheduleError(f"schedule {self.expression!r} never fires") from e
        return found.astimezone(dt.UTC)


def parse_schedule(schedule: str, time_zone: str | None) -> Schedule:
    """The schedule read in `time_zone`; ScheduleError when either cannot be read."""
    zone = load_time_zone(time_zone)
    text = schedule.strip()
    if text.startswith(("TZ=", "CRON_TZ=")):
        zone_spec, _, text = text.partition(" ")
        zone = load_time_zone(zone_spec.partition("=")[2])
        text = text.strip()
    if text.startswith("@every"):
        return Schedule(text, zone, every=_every(text))
    try:
        croniter(text)
    except (CroniterError, ValueError, KeyError) as e:
        raise ScheduleError(str(e) or f"unparseable schedule {text!r}") from e
    return Schedule(text, zone)


def most_recent_schedule_time(
    earliest: dt.datetime, now: dt.datetime, schedule: Schedule,
    starting_deadline_seconds: int | None = None,
) -> tuple[dt.datetime, dt.datetime | None, Missed]:
    """(earliest time considered, latest activation at or before `now` or None, how many missed).

    `earliest` is the last schedule time, else the CronJob's creation; with a
    starting deadline nothing older than `now - deadline` counts.
    """
    if starting_deadline_seconds is not None:
        earliest = max(earliest, now - dt.timedelta(seconds=starting_deadline_seconds))
    t1 = schedule.next(earliest)
    t2 = schedule.next(t1)
    if now < t1:
        return earliest, None, Missed.NONE
    if now < t2:
        return earliest, t1, Missed.NONE
    between = round((t2 - t1).total_seconds())
    if between < 1:
        raise ScheduleError("time difference between two schedules is less than 1 second")
    missed = int((now - t1).total_seconds()) // between + 1
    most_recent: dt.datetime | None = None
    t = schedule.next(t1 + dt.timedelta(seconds=(missed - 2) * between))
    while t <= now:
        most_recent = t
        t = schedule.next(t)
    count = Missed.MANY if missed > MANY_MISSED else Missed.FEW
    return earliest, most_recent, count


def requeue_after(earliest: dt.datetime, now: dt.datetime, schedule: Schedule) -> float:
    """Seconds until the sync after `now` is due (nextScheduleTimeDuration)."""
    try:
        start, most_recent, missed = most_recent_schedule_time(earliest, now, schedule)
    except ScheduleError:
        most_recent, missed, start = now, Missed.NONE, now
    if most_recent is None:
        most_recent = start if missed is Missed.NONE else now
    return (schedule.next(most_recent) - now).total_seconds() + NEXT_SCHEDULE_DELTA
