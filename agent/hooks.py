"""Container lifecycle hooks: `postStart` after a container starts, `preStop` before it stops.

A hook is an `exec` in the container, an HTTP GET to it or a `sleep`, as in
the kubelet's `lifecycle/handlers.go`. An exec hook fails on a non-zero
exit; an HTTP hook fails only when no response comes back — like the
kubelet, it ignores the status code; a sleep fails when it is cut short.
`tcpSocket` is accepted by the API for compatibility but fails when run,
as in Kubernetes.

A failed `postStart` makes `post_start` return False and the pod worker
kills the container. `preStop` runs inside the termination grace period
and uses it up: `pre_stop` returns the seconds left for SIGTERM before
SIGKILL; the kubelet never grants less than `MIN_STOP_GRACE` (2 s) there,
which is the caller's to apply. A hook never outlives its timeout: what
the handler does not bound itself, `run_hook` cuts off. Events say only
"PostStartHook failed" / "PreStopHook failed", as the kubelet's do, so
a hook's output, which may hold secrets, never reaches the API; the full
message goes to the log.

A sleep hook waits, and `pre_stop` measures what its hook used of the
grace period, on the agent's `Clock`. The cutoff of a hook that outlives
its timeout bounds real I/O (an exec the engine holds up, an HTTP server
that never answers), so it runs on the event loop's time, as a probe
check's timeout does.
"""

from __future__ import annotations

import asyncio
import logging

from agent.events import EventSink
from agent.podspec import pod_ref
from agent.probe_checks import (
    CheckError,
    NoResponse,
    exec_output,
    exec_timed_out,
    http_get,
    http_headers,
    http_url,
)
from agent.runtime import ExecTimedOut, Runtime, RuntimeFailure
from minik.api.objects import Container, JsonObject, Pod
from minik.machinery.clock import Clock, sleep

log = logging.getLogger(__name__)

HOOK_USER_AGENT = "kube-lifecycle/minik"
POST_START_TIMEOUT = 120.0
MIN_STOP_GRACE = 2.0
CUTOFF_SLACK = 1.0


def failed(kind: str, what: str, container: Container, pod: Pod,
           error: str) -> str:
    return (f'{kind} lifecycle hook ({what}) for Container "{container.get("name")}" '
            f'in Pod "{pod_ref(pod)}" failed - error: {error}')


async def _exec(runtime: Runtime, pod: Pod, container: Container,
                container_id: str, command: list[str], timeout: float) -> str | None:
    what = f"[{' '.join(command)}]"
    try:
        result = await runtime.exec_run(container_id, command, timeout=timeout)
    except ExecTimedOut:
        return failed("Exec", what, container, pod, f'{exec_timed_out(command)}, message: ""')
    except RuntimeFailure as e:
        return failed("Exec", what, container, pod, f'{e}, message: ""')
    if result.exit_code == 0:
        return None
    error = (f"command '{' '.join(command)}' exited with {result.exit_code}, "
             f'message: "{exec_output(result.output)}"')
    return failed("Exec", what, container, pod, error)


async def _http(pod: Pod, container: Container, action: JsonObject,
                pod_ip: str | None, timeout: float) -> str | None:
    try:
        url = http_url(action, container, pod_ip)
        await http_get(url, http_headers(action, HOOK_USER_AGENT), timeout=timeout)
    except (CheckError, NoResponse) as e:
        return failed("HTTP", action.get("path") or "", container, pod, str(e))
    return None


async def _sleep(pod: Pod, container: Container, seconds: float,
                 timeout: float, clock: Clock) -> str | None:
    if seconds <= timeout:
        await sleep(clock, seconds)
        return None
    await sleep(clock, timeout)
    return failed("Sleep", f"{seconds:g}", container, pod,
                  "container terminated before sleep hook finished")


async def run_hook(runtime: Runtime, pod: Pod, container: Container,
                   container_id: str, hook: JsonObject, *, pod_ip: str | None,
                   timeout: float, clock: Clock) -> str | None:
    """Run one lifecycle handler; None on success, else the kubelet's failure message."""
    handler = _handler(runtime, pod, container, container_id, hook, pod_ip, timeout, clock)
    try:
        return await asyncio.wait_for(handler, timeout + CUTOFF_SLACK)
    except TimeoutError:
        return (f'lifecycle hook for Container "{container.get("name")}" in Pod '
                f'"{pod_ref(pod)}" did not finish within {timeout:g}s')


async def _handler(runtime: Runtime, pod: Pod, container: Container,
                   container_id: str, hook: JsonObject, pod_ip: str | None,
                   timeout: float, clock: Clock) -> str | None:
    if hook.get("exec") is not None:
        command = list(hook["exec"].get("command") or [])
        return await _exec(runtime, pod, container, container_id, command, timeout)
    if hook.get("httpGet") is not None:
        return await _http(pod, container, hook["httpGet"], pod_ip, timeout)
    if hook.get("sleep") is not None:
        seconds = float(hook["sleep"].get("seconds") or 0)
        return await _sleep(pod, container, seconds, timeout, clock)
    return f"Cannot run handler: invalid handler: {hook}"


def _hook(container: Container, name: str) -> JsonObject | None:
    return (container.get("lifecycle") or {}).get(name) or None


async def post_start(runtime: Runtime, pod: Pod, container: Container,
                     container_id: str, *, pod_ip: str | None, events: EventSink,
                     clock: Clock, timeout: float = POST_START_TIMEOUT) -> bool:
    """Run `lifecycle.postStart`, if any; False when it failed (kill the container)."""
    hook = _hook(container, "postStart")
    if hook is None:
        return True
    message = await run_hook(runtime, pod, container, container_id, hook,
                             pod_ip=pod_ip, timeout=timeout, clock=clock)
    if message is None:
        return True
    log.warning("PostStartHook failed: %s", message)
    events.record(pod, "Warning", "FailedPostStartHook", "PostStartHook failed")
    return False


async def pre_stop(runtime: Runtime, pod: Pod, container: Container,
                   container_id: str, *, pod_ip: str | None, events: EventSink,
                   grace: float, clock: Clock) -> float:
    """Run `lifecycle.preStop`, if any, within `grace` seconds; the seconds left."""
    hook = _hook(container, "preStop")
    if hook is None or grace <= 0:
        return max(grace, 0.0)
    started = clock.now()
    message = await run_hook(runtime, pod, container, container_id, hook,
                             pod_ip=pod_ip, timeout=grace, clock=clock)
    if message is not None:
        log.warning("PreStopHook failed: %s", message)
        events.record(pod, "Warning", "FailedPreStopHook", "PreStopHook failed")
    return max(0.0, grace - (clock.now() - started))
