"""A host-wide registry of the address ranges minik instances have taken.

Several instances share one host (tests run many at once), and each needs
a service range (`--service-cidr`) and a loadbalancer range
(`--loadbalancer-range`) that no other instance uses: their addresses all
live on the host's `lo`. Docker arbitrates pod subnets; nothing arbitrates
these, so minik keeps a claim per range: a file in `claims_dir()`
(`/run/minik/claims`, or `$MINIK_CLAIMS_DIR`) named after the range, whose
content is the claiming instance's home. A range that overlaps another
home's claimed range is refused as well (a /12 over another's /16 would
hand out its addresses again). Claims are made under an `flock`
of the directory's lock file, so two instances starting at once never take
the same range.

A claim is stale, and may be taken over, when its home no longer exists or
no longer names that range in its settings (`Home.settings_file`, written
by `minik.server.settings`): an instance whose home was deleted without a
purge leaves no range taken for good. `/run` is a tmpfs, so after a reboot
every range is free again and a restarting instance simply claims its own
range anew. `minik down --purge` releases the instance's claims.
"""

from __future__ import annotations

import fcntl
import ipaddress
import json
import os
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

DEFAULT_CLAIMS_DIR = "/run/minik/claims"
SETTINGS_KEYS = {"service-cidr": "serviceCIDR", "loadbalancer-range": "loadBalancerRange"}


class ClaimError(Exception):
    """No range could be claimed; the message says which were tried."""


def claims_dir() -> Path:
    return Path(os.environ.get("MINIK_CLAIMS_DIR") or DEFAULT_CLAIMS_DIR)


def _file_name(kind: str, network: str) -> str:
    return f"{kind}-{network.replace('/', '_')}"


def candidates(first: str, within: str) -> Iterator[str]:
    """`first` and the networks of its size after it, up to the end of `within`."""
    start = ipaddress.ip_network(first)
    outer = ipaddress.ip_network(within)
    for subnet in outer.subnets(new_prefix=start.prefixlen):
        if int(subnet.network_address) >= int(start.network_address):
            yield str(subnet)


def _home_names(home: str, kind: str, network: str) -> bool:
    """The home at `home` still says it uses `network` for `kind`."""
    try:
        settings = json.loads((Path(home) / "settings.json").read_text())
    except (OSError, ValueError):
        return Path(home).is_dir()
    return bool(isinstance(settings, dict) and settings.get(SETTINGS_KEYS[kind]) == network)


class ClaimRegistry:
    """Claims of address ranges by minik homes, in one directory, under one lock."""

    def __init__(self, directory: Path | None = None, *,
                 home_names: Callable[[str, str, str], bool] = _home_names) -> None:
        self.directory = directory or claims_dir()
        self._home_names = home_names

    @contextmanager
    def _locked(self) -> Iterator[None]:
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o755)
        fd = os.open(self.directory / ".lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    def holder(self, kind: str, network: str) -> str | None:
        """The home holding a live claim on `network`, or None."""
        try:
            home = (self.directory / _file_name(kind, network)).read_text().strip()
        except OSError:
            return None
        return home if home and self._home_names(home, kind, network) else None

    def _conflict(self, kind: str, network: str, home: str) -> str | None:
        """Another home's live claim on a range overlapping `network`, or None."""
        wanted = ipaddress.ip_network(network)
        prefix = f"{kind}-"
        for path in sorted(self.directory.iterdir()):
            if not path.name.startswith(prefix) or path.name.endswith(".tmp"):
                continue
            try:
                held = ipaddress.ip_network(path.name[len(prefix):].replace("_", "/"))
            except ValueError:
                continue
            if held.version != wanted.version or not held.overlaps(wanted):
                continue
            holder = self.holder(kind, str(held))
            if holder not in (None, home):
                return holder
        return None

    def claim(self, kind: str, home: str, networks: Iterable[str]) -> str:
        """Claim the first of `networks` that no other home's range overlaps (one `home`
        holds already is fine); raise ClaimError."""
        tried: list[str] = []
        with self._locked():
            for network in networks:
                holder = self._conflict(kind, network, home)
                if holder is None:
                    self._write(kind, network, home)
                    return network
                tried.append(f"{network} (held by {holder})")
        raise ClaimError(f"no free {kind}: {', '.join(tried) or 'none to try'}")

    def _write(self, kind: str, network: str, home: str) -> None:
        path = self.directory / _file_name(kind, network)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(home + "\n")
        os.replace(tmp, path)

    def release(self, home: str) -> list[str]:
        """Drop every claim `home` holds; the claim files removed."""
        removed: list[str] = []
        if not self.directory.is_dir():
            return removed
        with self._locked():
            for path in sorted(self.directory.iterdir()):
                if path.name.startswith("."):
                    continue
                try:
                    holder = path.read_text().strip()
                except OSError:
                    continue
                if holder == home:
                    path.unlink(missing_ok=True)
                    removed.append(path.name)
        return removed
