"""The instance home is private: other local users can read neither the store
(every Secret) nor the keys, token, kubeconfig, logs or the agent's state."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from tests.e2e.cluster import Cluster

pytestmark = pytest.mark.e2e


def modes_open_to_others(home: Path) -> list[str]:
    """Every directory not 0700 and file not 0600 in the home, with its mode.

    The walk stops at the agent's directory: the pod volume directories below
    it keep the modes Kubernetes gives them (emptyDir 0777, `defaultMode`);
    the 0700 agent directory is what keeps other users out of them.
    """
    found: list[str] = []
    for dirpath, dirnames, filenames in os.walk(home):
        directory = Path(dirpath)
        if stat.S_IMODE(directory.stat().st_mode) != 0o700:
            found.append(f"{directory} {stat.S_IMODE(directory.stat().st_mode):o}")
        if directory == home / "agent":
            dirnames[:] = []
        for name in filenames:
            mode = stat.S_IMODE((directory / name).lstat().st_mode)
            if mode != 0o600:
                found.append(f"{directory / name} {mode:o}")
    return found


def write_secrets(cluster: Cluster, prefix: str, count: int = 5) -> None:
    for i in range(count):
        cluster.api.request("POST", "/api/v1/namespaces/default/secrets",
                            body={"metadata": {"name": f"{prefix}-{i}"},
                                  "stringData": {"password": "hunter2"}})


def assert_private_while_written(cluster: Cluster, prefix: str) -> None:
    write_secrets(cluster, prefix)
    assert (cluster.home / "store.db-wal").exists()
    assert (cluster.home / "store.db-shm").exists()
    assert (cluster.home / "agent").is_dir()
    assert modes_open_to_others(cluster.home) == []


def test_a_fresh_home_and_every_file_in_it_are_private_before_and_after_a_restart(
    crashable: Cluster,
) -> None:
    assert_private_while_written(crashable, "first")
    crashable.down()
    assert modes_open_to_others(crashable.home) == []
    crashable.restart()
    assert_private_while_written(crashable, "second")


def test_up_tightens_a_home_that_an_older_minik_left_readable_by_others(
    crashable: Cluster,
) -> None:
    write_secrets(crashable, "old")
    crashable.kill()
    for dirpath, _, filenames in os.walk(crashable.home):
        os.chmod(dirpath, 0o755)
        for name in filenames:
            os.chmod(Path(dirpath) / name, 0o644)
    assert (crashable.home / "store.db-wal").exists()

    up = crashable.minik("up", "-d", "--name", crashable.name, "--port", str(crashable.port))

    assert f"made {crashable.home} private" in up.stderr
    assert "store.db-wal" in up.stderr
    assert_private_while_written(crashable, "new")
    kept = crashable.api.request("GET", "/api/v1/namespaces/default/secrets/old-0")
    assert kept["metadata"]["name"] == "old-0"
