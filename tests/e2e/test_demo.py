"""`make demo` (scripts/demo.sh) waits for its rollout and shows the demo working,
on an instance of its own, named as asked, and leaves other instances alone."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.e2e.cluster import Cluster

pytestmark = pytest.mark.e2e

DEMO = Path(__file__).resolve().parents[2] / "scripts" / "demo.sh"


def run_demo(unstarted: Cluster) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HOME": str(unstarted.scratch), "MINIK_DEMO_NAME": unstarted.name,
           "MINIK_DEMO_HOME": str(unstarted.home), "MINIK_DEMO_PORT": str(unstarted.port)}
    return subprocess.run(["bash", str(DEMO)], capture_output=True, text=True, env=env,
                          timeout=240)


def test_the_demo_finishes_with_its_pods_running_and_answering(unstarted: Cluster) -> None:
    result = run_demo(unstarted)

    assert result.returncode == 0, result.stdout + result.stderr
    assert 'deployment "web" successfully rolled out' in result.stdout
    assert "over the pod network: v1" in result.stderr
    assert "through the Service's name and ClusterIP: v1" in result.stderr
    assert "through the LoadBalancer: v1" in result.stderr
    assert "curl http://127." in result.stdout
    assert "from ConfigMap web-config: hello from minik" in result.stderr
    assert f'instance "{unstarted.name}"' in result.stdout
    assert "redis-0 keeps its keys on claim data-redis-0, bound to pvc-" in result.stderr
    greeting = unstarted.kubectl("exec", "redis-0", "-n", "demo", "--", "redis-cli", "get",
                                 "greeting").stdout
    assert greeting == "hello from minik\n"
    pods = unstarted.api.request("GET", "/api/v1/namespaces/demo/pods")["items"]
    assert sorted((p["metadata"]["labels"]["app"], p["status"]["phase"]) for p in pods) == [
        ("redis", "Running"), ("web", "Running"), ("web", "Running")]


def test_the_demo_leaves_a_home_of_another_instance_alone(unstarted: Cluster) -> None:
    unstarted.home.mkdir(parents=True)
    (unstarted.home / "instance.json").write_text('{"name": "someone-else"}\n')

    result = run_demo(unstarted)

    assert result.returncode == 1
    assert "belongs to minik instance 'someone-else'" in result.stderr
    assert sorted(p.name for p in unstarted.home.iterdir()) == ["instance.json"]
