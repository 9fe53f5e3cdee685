"""Staged mounts and tree removal against real mount trees, in mount namespaces of their own.

A bind of a shared mount (systemd makes `/` shared) joins its peer group,
so what is unmounted in the copy can be unmounted in the original too.
Each check here runs as a script in a new mount namespace (`unshare -m`)
on a tmpfs it makes shared, standing for the host's `/`: whatever goes
wrong, the real host's mounts are never touched. The checks skip where
that is impossible (not root, no unshare, namespaces refused), saying why.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from agent.mounts import remove_tree

REPO = Path(__file__).resolve().parents[2]

PRELUDE = """
import ctypes, json, os, subprocess, sys, threading
from pathlib import Path
from agent.host_paths import open_host_path
from agent.mounts import MountInside, remove_tree
from agent.staging import Staging

R = Path(sys.argv[1])

def sh(command):
    subprocess.run(command, shell=True, check=True)

def mounted(path):
    return any(line.split()[4] == str(R / path) for line in open("/proc/self/mountinfo"))

sh(f"mount -t tmpfs top {R} && mount --make-shared {R}")
sh(f"mkdir {R}/host {R}/pods {R}/other && mount -t tmpfs hostfs {R}/host")
sh(f"mkdir -p {R}/host/sub/leaf && mount -t tmpfs leaf {R}/host/sub/leaf")
sh(f"echo precious > {R}/host/sub/leaf/data")
staging = Staging(R / "pods")
"""


@pytest.fixture(scope="module")
def namespaces() -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root: the checks mount tmpfs trees in a mount namespace of their own")
    if shutil.which("unshare") is None:
        pytest.skip("needs unshare(1) to make a mount namespace")
    probe = subprocess.run(["unshare", "-m", "true"], capture_output=True, text=True,
                           check=False)
    if probe.returncode != 0:
        pytest.skip(f"cannot make a mount namespace here: {probe.stderr.strip()}")


def in_namespace(tmp_path: Path, script: str) -> dict[str, Any]:
    """Run PRELUDE + `script` in a new mount namespace; what it printed last, as JSON."""
    root = tmp_path / "ns"
    root.mkdir()
    done = subprocess.run(["unshare", "-m", sys.executable, "-c", PRELUDE + script, str(root)],
                          capture_output=True, text=True, timeout=120, check=False,
                          env={**os.environ, "PYTHONPATH": str(REPO)})
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.splitlines()[-1])


def test_unstaging_a_copy_of_a_shared_tree_leaves_the_hosts_mounts_mounted(
        namespaces: None, tmp_path: Path) -> None:
    result = in_namespace(tmp_path, """
with open_host_path(str(R / "host")) as top:
    staged = Path(staging.stage("pod", "c", 0, top))
copied = mounted(staged.relative_to(R) / "sub" / "leaf")
print(json.dumps({"copied": copied, "unstaged": staging.unstage("pod"),
                  "host_leaf": mounted("host/sub/leaf"),
                  "data": (R / "host/sub/leaf/data").read_text(),
                  "left": sorted(os.listdir(R / "pods/pod"))}))
""")
    assert result == {"copied": True, "unstaged": True, "host_leaf": True,
                      "data": "precious\n", "left": []}


def test_staging_something_else_in_place_leaves_the_hosts_mounts_mounted(
        namespaces: None, tmp_path: Path) -> None:
    result = in_namespace(tmp_path, """
with open_host_path(str(R / "host")) as top:
    first = staging.stage("pod", "c", 0, top)
with open_host_path(str(R / "other")) as other:
    again = staging.stage("pod", "c", 0, other)
print(json.dumps({"same_path": first == again, "host_leaf": mounted("host/sub/leaf"),
                  "now": os.path.samefile(again, R / "other")}))
staging.unstage("pod")
""")
    assert result == {"same_path": True, "host_leaf": True, "now": True}


def test_a_peer_copy_left_by_an_older_agent_is_cut_off_before_it_is_unmounted(
        namespaces: None, tmp_path: Path) -> None:
    result = in_namespace(tmp_path, """
libc = ctypes.CDLL(None, use_errno=True)
target = R / "pods/pod/staged/c/0"
target.mkdir(parents=True)
assert libc.mount(str(R / "host").encode(), str(target).encode(), None, 0x1000 | 0x4000, None) == 0
print(json.dumps({"unstaged": staging.unstage("pod"), "host_leaf": mounted("host/sub/leaf")}))
""")
    assert result == {"unstaged": True, "host_leaf": True}


def test_a_staged_copy_sees_the_hosts_later_mounts_and_its_unmounts_stay_its_own(
        namespaces: None, tmp_path: Path) -> None:
    result = in_namespace(tmp_path, """
with open_host_path(str(R / "host")) as top:
    staged = Path(staging.stage("pod", "c", 0, top))
sh(f"mkdir {R}/host/later && mount -t tmpfs later {R}/host/later")
seen = mounted(staged.relative_to(R) / "later")
sh(f"umount {staged}/sub/leaf")
print(json.dumps({"seen": seen, "host_leaf": mounted("host/sub/leaf"),
                  "unstaged": staging.unstage("pod"), "host_later": mounted("host/later")}))
""")
    assert result == {"seen": True, "host_leaf": True, "unstaged": True, "host_later": True}


def test_links_swapped_into_the_hosts_tree_never_redirect_an_unmount(
        namespaces: None, tmp_path: Path) -> None:
    """A container with a writable hostPath renames a directory holding a mount and puts
    a link in its place, over and over, while the pod is staged and unstaged: nothing
    outside the staging directory is ever unmounted (the victim stands for the host's
    /mnt, reached through the link)."""
    result = in_namespace(tmp_path, """
sh(f"mkdir {R}/leaf && mount -t tmpfs victim {R}/leaf")
sub, aside = R / "host/sub", R / "host/aside"
stop = threading.Event()

def swap():
    while not stop.is_set():
        os.rename(sub, aside)
        os.symlink(str(R), sub)
        os.unlink(sub)
        os.rename(aside, sub)

swapper = threading.Thread(target=swap)
swapper.start()
attempts = 0
try:
    for attempts in range(1, 301):
        with open_host_path(str(R / "host")) as top:
            staging.stage("pod", "c", 0, top)
        staging.unstage("pod")
        if not mounted("leaf"):
            break
finally:
    stop.set()
    swapper.join()
print(json.dumps({"victim": mounted("leaf"), "attempts": attempts}))
""")
    assert result == {"victim": True, "attempts": 300}


def test_removing_a_tree_stops_at_a_mount_and_keeps_what_is_behind_it(
        namespaces: None, tmp_path: Path) -> None:
    result = in_namespace(tmp_path, """
tree = R / "pods/tree"
(tree / "a/b").mkdir(parents=True)
(tree / "a/file").write_text("x")
sh(f"mkdir {tree}/a/b/mnt && mount --bind {R}/host {tree}/a/b/mnt")
try:
    remove_tree(tree)
    stopped = None
except MountInside as e:
    stopped = str(e.path.relative_to(R))
print(json.dumps({"stopped": stopped, "data": (R / "host/sub/leaf/data").read_text(),
                  "still": mounted("pods/tree/a/b/mnt")}))
""")
    assert result == {"stopped": "pods/tree/a/b/mnt", "data": "precious\n", "still": True}


def test_removing_a_tree_removes_links_without_following_them(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "keep").write_text("keep")
    tree = tmp_path / "tree"
    (tree / "a" / "b").mkdir(parents=True)
    (tree / "a" / "b" / "f").write_text("x")
    os.symlink(outside, tree / "a" / "to-dir")
    os.symlink(outside / "keep", tree / "to-file")
    remove_tree(tree)
    assert not tree.exists()
    assert (outside / "keep").read_text() == "keep"
    remove_tree(tree)
    remove_tree(tmp_path / "no" / "such")
