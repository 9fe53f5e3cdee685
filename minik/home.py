"""The layout of a minik instance's home directory.

`$MINIK_HOME` (default `~/.minik`) holds everything one instance keeps on
disk: the store, the CA and serving certificate, the API token, the
kubeconfig, the server's pid and log. Server and CLI both find files here,
so the names live in one place.

The home holds every Secret (in the store) and the keys to the API, so it is
private to its owner: the directory and the agent's state directory are 0700,
minik's own files in it 0600. Files are created that way (`write_private`,
`open_private_log`, and the store creates its file 0600: SQLite gives the
`-wal`, `-shm` and `-journal` the mode of that file, also when it re-creates
them later), and
`make_private` tightens a home an older minik left readable by others. Pod
volume directories below the agent's directory keep the modes Kubernetes
gives them; the 0700 parents keep other users out, as /var/lib/kubelet does.
"""

from __future__ import annotations

import os
import signal
import stat
from dataclasses import dataclass
from pathlib import Path

DEFAULT_NAME = "minik"
DEFAULT_PORT = 6443
SERVER_MODULE = "minik.server"
"""`minik up` runs the server as `python -m minik.server --home DIR ...`: by that command line
the CLI tells its server from an unrelated process, and a node agent finds the homes of the
servers running on its host."""
PRIVATE_DIR = 0o700
PRIVATE_FILE = 0o600
STORE_SIDECARS = ("-wal", "-shm", "-journal", "-lock")


def default_home() -> Path:
    return Path(os.environ.get("MINIK_HOME") or Path.home() / ".minik")


PURGE_SIGNAL = signal.SIGUSR1
"""`minik down --purge` stops the server with this signal instead of SIGTERM: it stops and
removes its state too. Only the server's owner (or root) can send it; a file in the home
(which a pod given a hostPath there could plant) never asks for a purge."""


@dataclass(frozen=True, slots=True)
class Home:
    """Paths inside one instance's home directory."""

    root: Path

    @classmethod
    def at(cls, root: str | Path | None) -> Home:
        return cls(Path(root).expanduser().resolve() if root else default_home())

    def ensure(self) -> Home:
        self.root.mkdir(parents=True, exist_ok=True, mode=PRIVATE_DIR)
        return self

    def own_files(self) -> list[Path]:
        """Every file minik itself keeps here (the agent's directory aside)."""
        store = [self.store.with_name(self.store.name + suffix) for suffix in STORE_SIDECARS]
        return [self.store, *store, self.ca_cert, self.ca_key, self.server_cert,
                self.server_key, self.token, self.kubeconfig, self.pid_file, self.log_file,
                self.purge_request, self.instance_file, self.settings_file,
                self.service_account_key]

    def make_private(self) -> list[Path]:
        """Take other users' access away from the home, the agent's directory and
        minik's own files (a home made by an older minik); the paths it changed."""
        wanted = [(self.root, PRIVATE_DIR), (self.agent_dir, PRIVATE_DIR),
                  *((path, PRIVATE_FILE) for path in self.own_files())]
        changed: list[Path] = []
        for path, mode in wanted:
            try:
                st = os.lstat(path)
            except FileNotFoundError:
                continue
            kind_ok = stat.S_ISDIR(st.st_mode) if mode == PRIVATE_DIR else stat.S_ISREG(st.st_mode)
            if kind_ok and st.st_mode & 0o077:
                os.chmod(path, mode)
                changed.append(path)
        return changed

    def describe_tightened(self, paths: list[Path]) -> str:
        names = ", ".join("." if p == self.root else str(p.relative_to(self.root))
                          for p in paths)
        return (f"made {self.root} private: other users could read {names} "
                f"(now {PRIVATE_DIR:o} for directories, {PRIVATE_FILE:o} for files)")

    @property
    def store(self) -> Path:
        return self.root / "store.db"

    @property
    def ca_cert(self) -> Path:
        return self.root / "ca.crt"

    @property
    def ca_key(self) -> Path:
        return self.root / "ca.key"

    @property
    def server_cert(self) -> Path:
        return self.root / "server.crt"

    @property
    def server_key(self) -> Path:
        return self.root / "server.key"

    @property
    def token(self) -> Path:
        return self.root / "token"

    @property
    def service_account_key(self) -> Path:
        """The key that signs service-account tokens (`apiserver.serviceaccount_tokens`)."""
        return self.root / "sa.key"

    @property
    def kubeconfig(self) -> Path:
        return self.root / "kubeconfig"

    @property
    def pid_file(self) -> Path:
        return self.root / "server.pid"

    @property
    def log_file(self) -> Path:
        return self.root / "server.log"

    @property
    def purge_request(self) -> Path:
        """Where older minik versions asked for a purge; never read (see `PURGE_SIGNAL`),
        removed when a server starts."""
        return self.root / "purge-requested"

    @property
    def agent_dir(self) -> Path:
        return self.root / "agent"

    @property
    def node_network_file(self) -> Path:
        """JSON with the node network process's pid and metrics URL (`python -m cni`)."""
        return self.root / "node-network.json"

    @property
    def instance_file(self) -> Path:
        """JSON with the running server's name, address and port."""
        return self.root / "instance.json"

    @property
    def settings_file(self) -> Path:
        """JSON with the network settings chosen at the first start (`minik.server.settings`)."""
        return self.root / "settings.json"


def write_private(path: Path, data: bytes) -> None:
    """Write a file readable only by its owner, replacing it atomically."""
    tmp = path.with_suffix(path.suffix + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, PRIVATE_FILE)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.chmod(tmp, PRIVATE_FILE)
    os.replace(tmp, path)


def open_private_log(path: Path) -> int:
    """A file descriptor appending to `path`, created readable only by its owner."""
    return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, PRIVATE_FILE)
