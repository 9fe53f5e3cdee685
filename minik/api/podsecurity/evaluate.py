"""Which checks a level and version run, in Kubernetes' order, and the messages they make.

The registry (`policy/registry.go`) runs the baseline checks, then either the
baseline checks that a restricted check replaces (`Overlap`, for a baseline
level) or the restricted checks; within each group checks run in the order
of their source files' names, as Go's `init` registers them. A version newer
than every check's minimum behaves as `latest`. `forbidden_detail` is
`AggregateCheckResult.ForbiddenDetail`: `reason (detail), reason (detail)`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from minik.api.podsecurity import baseline, restricted
from minik.api.podsecurity.policy import LevelVersion
from minik.api.podsecurity.visit import JsonObject, Violation

CheckFn = Callable[[JsonObject, JsonObject], Violation | None]


@dataclass(frozen=True, slots=True)
class Check:
    """A check's versions: (minimum minor version, function), oldest first."""

    id: str
    versions: tuple[tuple[int, CheckFn], ...]

    def at(self, minor: int) -> CheckFn | None:
        chosen = None
        for minimum, fn in self.versions:
            if minor >= minimum:
                chosen = fn
        return chosen


BASELINE = (
    Check("appArmorProfile", ((0, baseline.app_armor_profile),)),
    Check("hostNamespaces", ((0, baseline.host_namespaces),)),
    Check("hostPorts", ((0, baseline.host_ports),)),
    Check("hostProbesAndHostLifecycle", ((34, baseline.host_probes_and_lifecycle),)),
    Check("privileged", ((0, baseline.privileged),)),
    Check("procMount", ((0, baseline.proc_mount_1_0), (34, baseline.proc_mount_1_34))),
    Check("seLinuxOptions", ((0, baseline.se_linux_options),)),
    Check("sysctls", ((0, baseline.sysctls),)),
    Check("windowsHostProcess", ((0, baseline.windows_host_process),)),
)
OVERLAPPING_BASELINE = (
    Check("capabilities_baseline", ((0, baseline.capabilities_baseline),)),
    Check("hostPathVolumes", ((0, baseline.host_path_volumes),)),
    Check("seccompProfile_baseline", ((0, baseline.seccomp_baseline_1_0),
                                      (19, baseline.seccomp_baseline_1_19))),
)
"""Baseline checks that a restricted check covers: run for the baseline level only."""
RESTRICTED = (
    Check("allowPrivilegeEscalation", ((8, restricted.allow_privilege_escalation),)),
    Check("capabilities_restricted", ((22, restricted.capabilities_restricted),)),
    Check("restrictedVolumes", ((0, restricted.restricted_volumes),)),
    Check("runAsNonRoot", ((0, restricted.run_as_non_root_1_0),
                           (34, restricted.run_as_non_root_1_34))),
    Check("runAsUser", ((23, restricted.run_as_user),)),
    Check("seccompProfile_restricted", ((19, restricted.seccomp_restricted),)),
)


def evaluate(lv: LevelVersion, metadata: JsonObject, spec: JsonObject) -> list[Violation]:
    """The violations of a pod (metadata and spec) against a level at a version."""
    if lv.level == "privileged":
        return []
    checks = BASELINE + (OVERLAPPING_BASELINE if lv.level == "baseline" else RESTRICTED)
    found = []
    for check in checks:
        fn = check.at(lv.minor)
        if fn is not None and (violation := fn(metadata, spec)) is not None:
            found.append(violation)
    return found


def forbidden_detail(violations: list[Violation]) -> str:
    return ", ".join(f"{v.reason} ({v.detail})" if v.detail else v.reason for v in violations)


def forbidden_reason(violations: list[Violation]) -> str:
    return ", ".join(v.reason for v in violations)
