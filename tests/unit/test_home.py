"""The instance home's files are created private, and an old, open home is tightened."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from minik.home import Home, open_private_log, write_private


def mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


@pytest.fixture(autouse=True)
def usual_umask() -> Iterator[None]:
    old = os.umask(0o022)
    yield
    os.umask(old)


def test_write_private_and_open_private_log_create_files_only_their_owner_can_read(
    tmp_path: Path,
) -> None:
    write_private(tmp_path / "token", b"secret")
    os.close(open_private_log(tmp_path / "server.log"))
    assert (mode(tmp_path / "token"), mode(tmp_path / "server.log")) == (0o600, 0o600)


def test_a_new_home_directory_is_private(tmp_path: Path) -> None:
    home = Home(tmp_path / "new").ensure()
    assert mode(home.root) == 0o700
    assert home.make_private() == []


def test_make_private_tightens_the_home_the_agent_directory_and_minik_files(
    tmp_path: Path,
) -> None:
    home = Home(tmp_path / "home")
    volume = home.agent_dir / "volumes" / "pods" / "uid" / "volumes" / "empty-dir" / "cache"
    volume.mkdir(parents=True)
    volume.chmod(0o777)
    for path in (home.store, home.root / "store.db-wal", home.log_file, home.kubeconfig):
        path.write_text("x")
        path.chmod(0o644)
    home.token.write_text("x")
    home.token.chmod(0o600)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.write_text("x")
    elsewhere.chmod(0o644)
    home.instance_file.symlink_to(elsewhere)
    for directory in (home.root, home.agent_dir):
        directory.chmod(0o755)

    changed = home.make_private()

    assert sorted(p.name for p in changed) == sorted(
        ["home", "agent", "store.db", "store.db-wal", "server.log", "kubeconfig"])
    assert (mode(home.root), mode(home.agent_dir)) == (0o700, 0o700)
    assert {mode(p) for p in (home.store, home.log_file, home.kubeconfig, home.token)} == {0o600}
    assert mode(volume) == 0o777
    assert mode(elsewhere) == 0o644
    assert home.make_private() == []
    note = home.describe_tightened(changed)
    assert note.startswith(f"made {home.root} private: other users could read .")
    assert "store.db-wal" in note
