"""Timestamps of a pod's way through the agent, for `bench/pod_startup.py`.

At DEBUG on this module's logger (the server turns it on with
`MINIK_DEBUG=agent.trace`) each step of a pod's sync is one log line,
`pod <namespace>/<name> <stage> at <unix time>`, so the bench can put the
agent's own view (informer saw the pod, sync began, containers asked for,
status written) between the API's and the engine's on one clock. Off, a
mark costs one level check.
"""

from __future__ import annotations

import logging
import time
from typing import Any

log = logging.getLogger(__name__)


def mark(pod: dict[str, Any], stage: str) -> None:
    if log.isEnabledFor(logging.DEBUG):
        md = pod["metadata"]
        log.debug("pod %s/%s %s at %.6f", md.get("namespace"), md["name"], stage, time.time())
