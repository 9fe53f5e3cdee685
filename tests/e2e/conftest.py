"""Fixtures: one real minik server per test module (or per test, to crash), a fresh
namespace per test."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.cluster import Cluster, eventually, free_port


@pytest.fixture(scope="module")
def cluster(request: pytest.FixtureRequest,
            tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """The module's server, started with the module's `MINIK_UP_ARGS` (extra `minik up`
    flags such as `--restart-backoff 1`), if it has any."""
    extra = tuple(getattr(request.module, "MINIK_UP_ARGS", ()))
    c = Cluster.start(tmp_path_factory.mktemp("minik"), extra=extra)
    try:
        yield c
    finally:
        c.stop()


@pytest.fixture
def crashable(tmp_path: Path) -> Iterator[Cluster]:
    """A server of the test's own, which the test may kill -9 and restart."""
    c = Cluster.start(tmp_path)
    try:
        yield c
    finally:
        c.stop()


@pytest.fixture
def unstarted(tmp_path: Path) -> Iterator[Cluster]:
    """The home, name and port of a server of the test's own, which the test starts itself."""
    c = Cluster(tmp_path / "home", f"e2e-{uuid.uuid4().hex[:8]}", free_port(),
                tmp_path / "scratch")
    c.scratch.mkdir(parents=True)
    try:
        yield c
    finally:
        c.stop()


@pytest.fixture
def namespace(cluster: Cluster) -> Iterator[str]:
    """A fresh namespace, once its `default` ServiceAccount exists (pods need it, as on
    Kubernetes, whose e2e framework waits for it too)."""
    name = f"t-{uuid.uuid4().hex[:8]}"
    cluster.api.request("POST", "/api/v1/namespaces", body={"metadata": {"name": name}})
    eventually(lambda: cluster.kubectl("get", "sa", "default", "-n", name,
                                       check=False).returncode == 0,
               what=f"the default ServiceAccount of {name}")
    yield name


SHIMMED = ("iptables", "ip6tables", "nft", "iptables-save", "iptables-restore")


@pytest.fixture
def shim(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """iptables, ip6tables and nft first on the PATH of minik (and of anything else the
    test starts after this fixture), recording every call in the returned file."""
    bin_dir, calls = tmp_path / "shim", tmp_path / "shim-calls"
    bin_dir.mkdir()
    for name in SHIMMED:
        path = bin_dir / name
        path.write_text(f"#!/bin/sh\necho \"{name} $*\" >> {calls}\nexit 1\n")
        path.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    return calls


@pytest.fixture
def manifest(tmp_path: Path):  # type: ignore[no-untyped-def]
    def write(text: str, name: str = "m.yaml") -> Path:
        path = tmp_path / name
        path.write_text(text)
        return path

    return write
