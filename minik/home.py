"""The layout of a minik instance's home directory.

`$MINIK_HOME` (default `~/.minik`) holds everything one instance keeps on
disk: the store, the CA and serving certificate, the API token, the
kubeconfig, the server's pid and log. Server and CLI both find files here,
so the names live in one place.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

DEFAULT_NAME = "minik"
DEFAULT_PORT = 6443


def default_home() -> Path:
    return Path(os.environ.get("MINIK_HOME") or Path.home() / ".minik")


@dataclass(frozen=True, slots=True)
class Home:
    """Paths inside one instance's home directory."""

    root: Path

    @classmethod
    def at(cls, root: str | Path | None) -> Home:
        return cls(Path(root).expanduser().resolve() if root else default_home())

    def ensure(self) -> Home:
        self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
        return self

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
        """Present when `minik down --purge` asked the server to remove its state too."""
        return self.root / "purge-requested"

    @property
    def agent_dir(self) -> Path:
        return self.root / "agent"

    @property
    def instance_file(self) -> Path:
        """JSON with the running server's name, address and port."""
        return self.root / "instance.json"


def write_private(path: Path, data: bytes) -> None:
    """Write a secret file readable only by its owner, replacing it atomically."""
    tmp = path.with_suffix(path.suffix + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)
