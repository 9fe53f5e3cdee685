"""The namespace labels that choose a Pod Security level and version, parsed as Kubernetes does.

`pod-security.kubernetes.io/{enforce,audit,warn}` name a level (`privileged`,
`baseline`, `restricted`) and the `-version` labels a version (`latest` or
`v1.N`). Unset means `privileged:latest`. An invalid enforce level is read as
`restricted` (fail closed) and an invalid version as `latest`, with an error
for each label that the namespace write turns into 422 (`PolicyToEvaluate`).
As in Kubernetes, warn follows an explicitly set, stricter enforce level
unless warn is set itself.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

PREFIX = "pod-security.kubernetes.io/"
MODES = ("enforce", "audit", "warn")
LEVELS = ("privileged", "baseline", "restricted")
LATEST = 10**6
"""`latest` as a minor version: newer than every real one."""

LEVEL_ERROR = "must be one of privileged, baseline, restricted"
VERSION_ERROR = 'must be "latest" or "v1.x"'
_VERSION = re.compile(r"v1\.(0|[1-9][0-9]*)")


@dataclass(frozen=True, slots=True)
class LevelVersion:
    """A level at a version: `minor` is the `v1.N` minor version, or `LATEST`."""

    level: str = "privileged"
    minor: int = LATEST

    def __str__(self) -> str:
        version = "latest" if self.minor == LATEST else f"v1.{self.minor}"
        return f"{self.level}:{version}"


@dataclass(frozen=True, slots=True)
class LabelError:
    """One invalid label: its key, its value and what is wrong."""

    key: str
    value: str
    message: str


@dataclass(frozen=True, slots=True)
class Policy:
    enforce: LevelVersion = LevelVersion()
    audit: LevelVersion = LevelVersion()
    warn: LevelVersion = LevelVersion()

    @property
    def all_privileged(self) -> bool:
        return all(lv.level == "privileged" for lv in (self.enforce, self.audit, self.warn))


def level_rank(level: str) -> int:
    return LEVELS.index(level)


def parse_level(value: str) -> tuple[str, str | None]:
    """The level, or `restricted` and an error."""
    if value in LEVELS:
        return value, None
    return "restricted", LEVEL_ERROR


def parse_version(value: str) -> tuple[int, str | None]:
    """The minor version (`LATEST` for latest), or `LATEST` and an error."""
    if value == "latest":
        return LATEST, None
    match = _VERSION.fullmatch(value)
    if match is None:
        return LATEST, VERSION_ERROR
    return int(match.group(1)), None


def policy_from_labels(labels: dict[str, str] | None) -> tuple[Policy, list[LabelError]]:
    """The policy a namespace's labels choose, and the labels that are invalid."""
    labels = labels or {}
    errors: list[LabelError] = []
    chosen: dict[str, LevelVersion] = {}
    explicit_levels: set[str] = set()
    explicit_versions: set[str] = set()
    for mode in MODES:
        level, minor = "privileged", LATEST
        level_key, version_key = PREFIX + mode, f"{PREFIX}{mode}-version"
        if level_key in labels:
            level, problem = parse_level(labels[level_key])
            if problem:
                errors.append(LabelError(level_key, labels[level_key], problem))
            else:
                explicit_levels.add(mode)
        if version_key in labels:
            minor, problem = parse_version(labels[version_key])
            explicit_versions.add(mode)
            if problem:
                errors.append(LabelError(version_key, labels[version_key], problem))
        chosen[mode] = LevelVersion(level, minor)
    enforce, warn = chosen["enforce"], chosen["warn"]
    if ("warn" not in explicit_levels and PREFIX + "warn" not in labels
            and "enforce" in explicit_levels
            and level_rank(enforce.level) > level_rank(warn.level)):
        minor = warn.minor if "warn" in explicit_versions else enforce.minor
        chosen["warn"] = LevelVersion(enforce.level, minor)
    return Policy(chosen["enforce"], chosen["audit"], chosen["warn"]), errors
