"""Reading and writing kubeconfig files.

`minik up` writes `$MINIK_HOME/kubeconfig` (mode 0600) naming the HTTPS
server, minik's CA and the bearer token, with a context called `minik`; the
real kubectl and minik's own client both read it. Only the parts of the
format minik uses are understood: clusters with `certificate-authority`(-data),
users with `token`, and the current context.
"""

from __future__ import annotations

import base64
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from minik.home import Home, write_private

CONTEXT = "minik"


def ensure_token(home: Home) -> str:
    """The instance's API token, created at first start and kept after."""
    if home.token.exists():
        token = home.token.read_text().strip()
        if token:
            return token
    token = secrets.token_urlsafe(32)
    write_private(home.token, token.encode())
    return token


def server_url(address: str, port: int) -> str:
    host = "127.0.0.1" if address in ("0.0.0.0", "") else address
    host = f"[{host}]" if ":" in host else host
    return f"https://{host}:{port}"


def write_kubeconfig(home: Home, *, server: str, token: str, name: str = CONTEXT) -> Path:
    ca = base64.b64encode(home.ca_cert.read_bytes()).decode()
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": name, "cluster": {"server": server,
                                                 "certificate-authority-data": ca}}],
        "users": [{"name": name, "user": {"token": token}}],
        "contexts": [{"name": CONTEXT, "context": {"cluster": name, "user": name,
                                                   "namespace": "default"}}],
        "current-context": CONTEXT,
        "preferences": {},
    }
    write_private(home.kubeconfig, yaml.safe_dump(config, sort_keys=False).encode())
    return home.kubeconfig


class KubeconfigError(Exception):
    """A kubeconfig that is missing or lacks what minik needs."""


@dataclass(frozen=True, slots=True)
class ClusterAccess:
    """What a client needs to reach the API: where, whom to trust, which token."""

    server: str
    ca_pem: bytes | None
    token: str | None
    namespace: str = "default"
    insecure: bool = False


def _named(items: list[dict[str, Any]], name: str, what: str, path: Path) -> dict[str, Any]:
    for item in items or []:
        if item.get("name") == name:
            return item.get(what) or {}
    raise KubeconfigError(f"{path}: no {what} named {name!r}")


def load_kubeconfig(path: Path, *, context: str | None = None) -> ClusterAccess:
    if not path.exists():
        raise KubeconfigError(f"{path}: no such kubeconfig (is minik up?)")
    config = yaml.safe_load(path.read_text()) or {}
    context_name = context or config.get("current-context")
    if not context_name:
        raise KubeconfigError(f"{path}: no current-context")
    ctx = _named(config.get("contexts", []), context_name, "context", path)
    cluster = _named(config.get("clusters", []), ctx.get("cluster", ""), "cluster", path)
    user = _named(config.get("users", []), ctx.get("user", ""), "user", path)
    ca_pem: bytes | None = None
    if cluster.get("certificate-authority-data"):
        ca_pem = base64.b64decode(cluster["certificate-authority-data"])
    elif cluster.get("certificate-authority"):
        ca_pem = (path.parent / cluster["certificate-authority"]).read_bytes()
    return ClusterAccess(
        server=str(cluster.get("server", "")).rstrip("/"),
        ca_pem=ca_pem,
        token=user.get("token"),
        namespace=ctx.get("namespace") or "default",
        insecure=bool(cluster.get("insecure-skip-tls-verify")),
    )
