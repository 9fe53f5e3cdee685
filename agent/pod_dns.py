"""A pod's resolv.conf, formed as the kubelet forms it, and the file the agent keeps of it.

`pod_resolv_conf` is the kubelet's `GetPodDNS` (pkg/kubelet/network/dns):
`ClusterFirst` (the default) makes the cluster DNS the only nameserver,
searches `<ns>.svc.<zone> svc.<zone> <zone>` and then the host's search
domains, with `options ndots:5`; `ClusterFirst` on the host network falls
back to `Default`, while `ClusterFirstWithHostNet` keeps the cluster's;
`Default` is the host's resolv.conf as it is (nameservers, search,
options); `None` starts empty. A pod's `dnsConfig` is then merged in
(nameservers and searches appended without repeats, options by name, the
pod's winning), and the result cut to the kubelet's limits (3 nameservers,
32 search domains of at most 253 characters, 2048 characters in all).

Docker's user-defined networks give a container their embedded resolver
(127.0.0.11, no search list) and ignore what a pod asks for, so the agent
writes each pod's own file (`PodResolvConfs`, `<pods>/<uid>/resolv.conf`,
mode 0644 as the container runtimes write it, in their order: search,
nameserver, options) when it creates the sandbox, and binds it over
`/etc/resolv.conf` in the sandbox and every container of the pod
(`agent.containers`), read-only where the root filesystem is.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from dataclasses import dataclass, field
from pathlib import Path

from minik.api.meta import namespace_of, uid_of
from minik.api.objects import JsonObject, Pod

RESOLV_CONF = "resolv.conf"
HOST_RESOLV_CONF = Path("/etc/resolv.conf")
FILE_MODE = 0o644
NDOTS = "ndots:5"
MAX_NAMESERVERS = 3
MAX_SEARCHES = 32
MAX_SEARCH_CHARS = 2048
MAX_SEARCH_LENGTH = 253


@dataclass(frozen=True, slots=True)
class ResolvConf:
    nameservers: list[str] = field(default_factory=list)
    searches: list[str] = field(default_factory=list)
    options: list[str] = field(default_factory=list)

    def render(self) -> str:
        lines = []
        if self.searches:
            lines.append("search " + " ".join(self.searches))
        lines.extend(f"nameserver {server}" for server in self.nameservers)
        if self.options:
            lines.append("options " + " ".join(self.options))
        return "".join(f"{line}\n" for line in lines)


def parse_resolv_conf(text: str) -> ResolvConf:
    """The kubelet's `parseResolvConf`: nameservers accumulate, the last `search` and
    `options` lines win, search domains lose a trailing dot."""
    nameservers: list[str] = []
    searches: list[str] = []
    options: list[str] = []
    for line in text.splitlines():
        fields = line.strip().split()
        if not fields or fields[0].startswith("#"):
            continue
        if fields[0] == "nameserver" and len(fields) >= 2:
            nameservers.append(fields[1])
        elif fields[0] == "search":
            searches = [s.removesuffix(".") for s in fields[1:]]
        elif fields[0] == "options":
            options = fields[1:]
    return ResolvConf(nameservers, searches, options)


def _unique(values: list[str]) -> list[str]:
    return list(dict.fromkeys(values))


def _merge_options(existing: list[str], extra: list[JsonObject]) -> list[str]:
    merged: dict[str, str] = {}
    for option in existing:
        name, _, value = option.partition(":")
        merged[name] = value
    for given in extra:
        merged[str(given.get("name", ""))] = str(given.get("value") or "")
    return [f"{name}:{value}" if value else name for name, value in merged.items() if name]


def _fit_searches(searches: list[str]) -> list[str]:
    fitted = [s for s in searches[:MAX_SEARCHES] if len(s) <= MAX_SEARCH_LENGTH]
    while fitted and len(" ".join(fitted)) > MAX_SEARCH_CHARS:
        fitted.pop()
    return fitted


def dns_policy(pod: Pod) -> str:
    """The pod's `dnsPolicy` as the kubelet applies it: ClusterFirst on the host's network
    means Default."""
    spec = pod.get("spec") or {}
    policy: str = spec.get("dnsPolicy") or "ClusterFirst"
    if policy == "ClusterFirst" and spec.get("hostNetwork"):
        return "Default"
    return policy


def pod_resolv_conf(pod: Pod, *, cluster_dns: str | None, cluster_domain: str,
                    host: ResolvConf) -> ResolvConf:
    """What the pod's /etc/resolv.conf says; without a cluster DNS address ClusterFirst
    falls back to Default, as the kubelet's does."""
    policy = dns_policy(pod)
    conf = host
    if policy == "None":
        conf = ResolvConf()
    elif policy in ("ClusterFirst", "ClusterFirstWithHostNet") and cluster_dns:
        namespace = namespace_of(pod) or "default"
        cluster = [f"{namespace}.svc.{cluster_domain}", f"svc.{cluster_domain}", cluster_domain]
        conf = ResolvConf([cluster_dns], _unique([*cluster, *host.searches]), [NDOTS])
    extra = (pod.get("spec") or {}).get("dnsConfig")
    if extra:
        conf = ResolvConf(
            _unique([*conf.nameservers, *(extra.get("nameservers") or [])]),
            _unique([*conf.searches, *(extra.get("searches") or [])]),
            _merge_options(conf.options, extra.get("options") or []),
        )
    return ResolvConf(conf.nameservers[:MAX_NAMESERVERS], _fit_searches(conf.searches),
                      conf.options)


class PodResolvConfs:
    """Each pod's resolv.conf, `<pods>/<uid>/resolv.conf`, formed from the host's."""

    def __init__(self, pods: Path, *, cluster_domain: str,
                 host_resolv_conf: Path = HOST_RESOLV_CONF) -> None:
        self.pods = pods
        self.cluster_domain = cluster_domain
        self.host_resolv_conf = host_resolv_conf
        self.cluster_dns: str | None = None
        """The cluster DNS address (the pod network's gateway), once the network is known."""

    def path(self, uid: str) -> Path:
        if not uid or "/" in uid or uid.startswith("."):
            raise ValueError(f'invalid pod uid "{uid}"')
        return self.pods / uid / RESOLV_CONF

    async def write(self, pod: Pod) -> Path:
        """Form the pod's file again and write it (atomically); OSError when it cannot."""
        return await asyncio.to_thread(self._write, pod)

    async def ensure(self, pod: Pod) -> Path:
        """The pod's file, written if it is not there (an app container of a sandbox
        made before an agent restart, or by an agent that wrote none)."""
        path = self.path(uid_of(pod))
        if await asyncio.to_thread(path.is_file):
            return path
        return await self.write(pod)

    def _write(self, pod: Pod) -> Path:
        try:
            host = parse_resolv_conf(self.host_resolv_conf.read_text(errors="replace"))
        except FileNotFoundError:
            host = ResolvConf()
        conf = pod_resolv_conf(pod, cluster_dns=self.cluster_dns,
                               cluster_domain=self.cluster_domain, host=host)
        path = self.path(uid_of(pod))
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_name(f".{RESOLV_CONF}.tmp")
        temporary.write_text(conf.render())
        os.chmod(temporary, FILE_MODE)
        os.replace(temporary, path)
        return path

    async def remove(self, uid: str) -> None:
        await asyncio.to_thread(self._remove, uid)

    def _remove(self, uid: str) -> None:
        self.path(uid).unlink(missing_ok=True)
        with contextlib.suppress(OSError):
            self.path(uid).parent.rmdir()

    def known_pods(self) -> set[str]:
        """Pod uids with a resolv.conf on disk (for cleanup after a restart)."""
        if not self.pods.is_dir():
            return set()
        return {d.name for d in self.pods.iterdir() if (d / RESOLV_CONF).is_file()}
