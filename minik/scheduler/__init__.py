"""minik.scheduler: which node each pod runs on.

It owns the decision and nothing else: `Scheduler` watches pods and nodes
through the API and binds every pending pod to a Ready node that fits its
resource requests, node selector, taints and volumes (`pods/binding`), or marks it
`PodScheduled=False`/`Unschedulable` with a `FailedScheduling` event. The
fit rules are pure functions in `fit`, testable without a server. Starting
the containers of a bound pod is the node agent's business.
"""

from minik.scheduler.fit import NodeUsage, Resources, fit_error_message, fit_failures
from minik.scheduler.scheduler import Scheduler

__all__ = ["NodeUsage", "Resources", "Scheduler", "fit_error_message", "fit_failures"]
