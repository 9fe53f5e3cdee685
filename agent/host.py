"""Facts about this host that its Node object reports.

Small readers of `/proc`, `/etc` and the filesystem: CPU count, memory
(from /proc/meminfo), the size of the filesystem that holds a path (the
node's ephemeral storage), OS image (from /etc/os-release), kernel version,
architecture in Go's names (amd64, arm64), boot id and machine id; and the
node's resource usage (`node_cpu_seconds`, `node_memory_working_set`): the
node is this host, so its figures are the whole machine's, as the kubelet's
root cgroup is. Parsers
take text so that they are tested without the files; `gather` reads them
all into one `HostFacts`. A fact that cannot be read is empty or zero,
never an exception: a node must register even on an odd host.
"""

from __future__ import annotations

import os
import platform
import shutil
import socket
from dataclasses import dataclass
from pathlib import Path

MEMINFO = Path("/proc/meminfo")
STAT = Path("/proc/stat")
BUSY_FIELDS = (0, 1, 2, 5, 6, 7)
"""user, nice, system, irq, softirq, steal in /proc/stat's `cpu` line (idle and iowait are
not work; guest time is already counted in user)."""
OS_RELEASE = Path("/etc/os-release")
BOOT_ID = Path("/proc/sys/kernel/random/boot_id")
MACHINE_ID = Path("/etc/machine-id")
PRODUCT_UUID = Path("/sys/class/dmi/id/product_uuid")

GO_ARCH = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64",
           "armv7l": "arm", "armv6l": "arm", "i386": "386", "i686": "386",
           "ppc64le": "ppc64le", "s390x": "s390x", "riscv64": "riscv64"}
UNITS = {"kB": 1024, "B": 1}


@dataclass(frozen=True, slots=True)
class HostFacts:
    """What the node agent reports about its host in `Node.status`."""

    hostname: str
    cpus: int
    memory_bytes: int
    storage_bytes: int
    kernel_version: str
    os_image: str
    architecture: str
    operating_system: str = "linux"
    boot_id: str = ""
    machine_id: str = ""
    system_uuid: str = ""


def _read(path: Path) -> str:
    try:
        return path.read_text()
    except OSError:
        return ""


def parse_meminfo(text: str) -> dict[str, int]:
    """`/proc/meminfo` as bytes per field (`MemTotal: 16318480 kB` → 16710123520)."""
    fields: dict[str, int] = {}
    for line in text.splitlines():
        name, _, rest = line.partition(":")
        parts = rest.split()
        if parts and parts[0].isdigit():
            fields[name.strip()] = int(parts[0]) * UNITS.get(parts[1] if len(parts) > 1 else "B", 1)
    return fields


def memory_bytes(path: Path = MEMINFO) -> int:
    return parse_meminfo(_read(path)).get("MemTotal", 0)


def parse_cpu_seconds(text: str, ticks_per_second: int) -> float:
    """The CPU time all cores spent working, from `/proc/stat`'s first (`cpu`) line."""
    for line in text.splitlines():
        fields = line.split()
        if fields and fields[0] == "cpu":
            values = [int(v) for v in fields[1:] if v.isdigit()]
            return sum(values[i] for i in BUSY_FIELDS if i < len(values)) / ticks_per_second
    return 0.0


def node_cpu_seconds(path: Path = STAT) -> float:
    """Cumulative CPU time of the whole host, in core-seconds."""
    return parse_cpu_seconds(_read(path), os.sysconf("SC_CLK_TCK"))


def working_set(meminfo: dict[str, int]) -> int:
    """Memory in use that the kernel cannot simply drop: total less what is available
    (free memory plus reclaimable page cache), the host's analogue of a cgroup's usage
    less its inactive files."""
    return max(0, meminfo.get("MemTotal", 0) - meminfo.get("MemAvailable", 0))


def node_memory_working_set(path: Path = MEMINFO) -> int:
    return working_set(parse_meminfo(_read(path)))


def parse_os_release(text: str) -> dict[str, str]:
    """`KEY=value` lines, with shell quotes removed."""
    values: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.strip().partition("=")
        if sep and key and not key.startswith("#"):
            values[key] = value.strip().strip("'\"")
    return values


def os_image(path: Path = OS_RELEASE) -> str:
    release = parse_os_release(_read(path))
    return release.get("PRETTY_NAME") or release.get("NAME") or platform.system()


def architecture(machine: str | None = None) -> str:
    machine = (machine or platform.machine()).lower()
    return GO_ARCH.get(machine, machine)


def cpu_count() -> int:
    return os.cpu_count() or 1


def filesystem_bytes(path: str) -> int:
    """Total size of the filesystem holding `path`."""
    try:
        return shutil.disk_usage(path).total
    except OSError:
        return 0


def first_line(path: Path) -> str:
    lines = _read(path).strip().splitlines()
    return lines[0].strip() if lines else ""


def gather(storage_path: str = "/") -> HostFacts:
    """Read every fact of this host now."""
    return HostFacts(
        hostname=socket.gethostname(),
        cpus=cpu_count(),
        memory_bytes=memory_bytes(),
        storage_bytes=filesystem_bytes(storage_path),
        kernel_version=platform.release(),
        os_image=os_image(),
        architecture=architecture(),
        operating_system=platform.system().lower() or "linux",
        boot_id=first_line(BOOT_ID),
        machine_id=first_line(MACHINE_ID),
        system_uuid=first_line(PRODUCT_UUID),
    )
