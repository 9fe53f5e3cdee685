"""Timestamps of a pod's way through the agent, for `bench/pod_startup.py`.

At DEBUG on this module's logger (the server turns it on with
`MINIK_DEBUG=agent.trace`) each step of a pod's start is one log line,
`pod <namespace>/<name> <stage> at <unix time>`, which `parse` reads back,
so the bench can put the agent's own view (informer saw the pod, sync
began, containers asked for, status written) between the API's and the
engine's on one clock. That clock is the system's epoch time
(`time.time`), not the agent's `Clock`: the marks are compared with
timestamps other processes wrote, and a manual clock would make them
meaningless. Off, a mark costs one level check.
"""

from __future__ import annotations

import logging
import re
import time
from typing import NamedTuple

from minik.api.meta import name_of, namespace_of
from minik.api.objects import Pod

log = logging.getLogger(__name__)

_LINE = re.compile(r"pod (?P<namespace>[^/ ]*)/(?P<name>\S+) (?P<stage>\S+) at (?P<at>[0-9.]+)$")


class Mark(NamedTuple):
    namespace: str
    name: str
    stage: str
    at: float


def mark(pod: Pod, stage: str) -> None:
    if log.isEnabledFor(logging.DEBUG):
        log.debug("pod %s/%s %s at %.6f", namespace_of(pod) or "", name_of(pod), stage,
                  time.time())


def parse(line: str) -> Mark | None:
    """The mark a line of the server's log carries, if it is one of this module's."""
    if f"{__name__}:" not in line or not (match := _LINE.search(line)):
        return None
    return Mark(match["namespace"], match["name"], match["stage"], float(match["at"]))
