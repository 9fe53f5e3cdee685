"""Pods as real Docker containers, driven with the real kubectl."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.cluster import Cluster, eventually

pytestmark = pytest.mark.e2e

DOCKER = "/usr/bin/docker"


MINIK_UP_ARGS = ("--restart-backoff", "1")


def pod(cluster: Cluster, namespace: str, name: str) -> dict[str, Any]:
    return cluster.api.request("GET", f"/api/v1/namespaces/{namespace}/pods/{name}")


def phase(cluster: Cluster, namespace: str, name: str) -> str:
    return pod(cluster, namespace, name).get("status", {}).get("phase", "")


def container_state(cluster: Cluster, namespace: str, name: str, index: int = 0) -> dict:
    statuses = pod(cluster, namespace, name).get("status", {}).get("containerStatuses") or []
    return statuses[index] if len(statuses) > index else {}


def wait_running(cluster: Cluster, namespace: str, name: str, timeout: float = 30) -> None:
    eventually(lambda: phase(cluster, namespace, name) == "Running", timeout=timeout,
               what=f"pod {name} Running")


def docker(*args: str) -> str:
    return subprocess.run([DOCKER, *args], capture_output=True, text=True, check=True).stdout


def containers_of(cluster: Cluster, uid: str) -> list[dict[str, Any]]:
    out = docker("ps", "-a", "--filter", f"label=minik.dev/instance={cluster.name}",
                 "--filter", f"label=minik.dev/pod-uid={uid}", "--format", "{{json .}}")
    return [json.loads(line) for line in out.splitlines()]


def failed_mounts(cluster: Cluster, namespace: str, name: str) -> list[str]:
    """The messages of the pod's FailedMount events."""
    events = cluster.api.request("GET", f"/api/v1/namespaces/{namespace}/events")["items"]
    return [e["message"] for e in events
            if e["reason"] == "FailedMount" and e["involvedObject"]["name"] == name]


def apply(cluster: Cluster, manifest: Any, text: str) -> None:
    cluster.kubectl("apply", "-f", str(manifest(text, f"m{abs(hash(text))}.yaml")))


TWO_CONTAINERS = """\
apiVersion: v1
kind: Pod
metadata: {{name: duo, namespace: {ns}}}
spec:
  terminationGracePeriodSeconds: 1
  volumes:
  - {{name: shared, emptyDir: {{}}}}
  containers:
  - name: web
    image: minik/web:v1
    volumeMounts: [{{name: shared, mountPath: /shared}}]
  - name: client
    image: minik/busybox:1.35
    command: ["sh", "-c", "echo from-client > /data/note; sleep 3600"]
    volumeMounts: [{{name: shared, mountPath: /data}}]
"""


def test_containers_of_a_pod_share_localhost_and_an_empty_dir(
    cluster: Cluster, namespace: str, manifest
) -> None:
    apply(cluster, manifest, TWO_CONTAINERS.format(ns=namespace))
    wait_running(cluster, namespace, "duo")
    fetched = cluster.kubectl("exec", "duo", "-n", namespace, "-c", "client", "--",
                              "sh", "-c", "timeout 5 wget -q -O- http://localhost:8080/")
    assert fetched.stdout.strip() == "v1"
    note = eventually(lambda: cluster.kubectl("exec", "duo", "-n", namespace, "-c", "web", "--",
                                              "cat", "/shared/note", check=False).stdout.strip(),
                      what="shared file")
    assert note == "from-client"
    ip = pod(cluster, namespace, "duo")["status"]["podIP"]
    assert ip and ip.startswith("10.")


INIT = """\
apiVersion: v1
kind: Pod
metadata: {{name: initialised, namespace: {ns}}}
spec:
  terminationGracePeriodSeconds: 1
  volumes: [{{name: www, emptyDir: {{}}}}]
  initContainers:
  - name: render
    image: minik/busybox:1.35
    command: ["sh", "-c", "echo made-by-init > /www/index.html"]
    volumeMounts: [{{name: www, mountPath: /www}}]
  containers:
  - name: web
    image: minik/busybox:1.35
    command: ["httpd", "-f", "-p", "8080", "-h", "/www"]
    volumeMounts: [{{name: www, mountPath: /www}}]
"""


def test_an_init_container_prepares_what_the_app_serves(
    cluster: Cluster, namespace: str, manifest
) -> None:
    apply(cluster, manifest, INIT.format(ns=namespace))
    wait_running(cluster, namespace, "initialised")
    status = pod(cluster, namespace, "initialised")["status"]
    assert status["initContainerStatuses"][0]["state"]["terminated"]["reason"] == "Completed"
    served = cluster.kubectl("exec", "initialised", "-n", namespace, "--", "sh", "-c",
                             "timeout 5 wget -q -O- http://localhost:8080/index.html")
    assert served.stdout.strip() == "made-by-init"


CRASH = """\
apiVersion: v1
kind: Pod
metadata: {{name: crasher, namespace: {ns}}}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: c
    image: minik/busybox:1.35
    command: ["sh", "-c", "echo run-$(cat /proc/uptime | cut -d' ' -f1); exit 1"]
"""


def _restart_times(cluster: Cluster, namespace: str, name: str, count: int) -> list[float]:
    """When the restart count reached 1..count, polled through the API."""
    seen: dict[int, float] = {}
    deadline = time.monotonic() + 60
    while len(seen) < count and time.monotonic() < deadline:
        restarts = container_state(cluster, namespace, name).get("restartCount", 0)
        if restarts and restarts not in seen:
            seen[restarts] = time.monotonic()
        time.sleep(0.05)
    assert len(seen) >= count, f"only {sorted(seen)} restarts seen"
    return [seen[n] for n in sorted(seen)[:count]]


def test_a_crashing_container_backs_off_with_growing_delays(
    cluster: Cluster, namespace: str, manifest
) -> None:
    apply(cluster, manifest, CRASH.format(ns=namespace))
    times = _restart_times(cluster, namespace, "crasher", 4)
    early, late = times[1] - times[0], times[3] - times[2]
    assert late > early + 1.0, (early, late)
    status = container_state(cluster, namespace, "crasher")
    waiting = eventually(
        lambda: container_state(cluster, namespace, "crasher")["state"].get("waiting"),
        what="waiting in backoff")
    assert waiting["reason"] == "CrashLoopBackOff"
    assert status["lastState"]["terminated"]["exitCode"] == 1
    table = cluster.kubectl("get", "pod", "crasher", "-n", namespace).stdout
    assert "CrashLoopBackOff" in table or "Error" in table
    previous = cluster.kubectl("logs", "crasher", "-n", namespace, "--previous").stdout
    assert previous.startswith("run-")


def test_a_container_that_cannot_start_backs_off_like_a_crash(
    cluster: Cluster, namespace: str
) -> None:
    cluster.kubectl("run", "nobin", "-n", namespace, "--image=minik/busybox:1.35",
                    "--restart=Always", "--command", "--", "/nonexistent-binary")
    reasons: set[str] = set()
    seen: dict[int, float] = {}
    started = time.monotonic()
    while time.monotonic() - started < 14:
        status = container_state(cluster, namespace, "nobin")
        reasons.add(status.get("state", {}).get("waiting", {}).get("reason", ""))
        seen.setdefault(status.get("restartCount", 0), time.monotonic())
        time.sleep(0.05)
    assert {"RunContainerError", "CrashLoopBackOff"} <= reasons, reasons
    assert 3 <= max(seen) <= 6, f"base 1 s: starts at 0, 0, 1, 3, 7, 15 s, not {sorted(seen)}"
    assert seen[3] - seen[2] > seen[2] - seen[1] + 0.5, seen
    last = container_state(cluster, namespace, "nobin")["lastState"]["terminated"]
    assert last["reason"] == "StartError" and "/nonexistent-binary" in last["message"]
    events = cluster.kubectl("get", "events", "-n", namespace, "-o", "json")
    messages = [e["message"] for e in json.loads(events.stdout)["items"]
                if e["reason"] == "Failed"]
    assert any("/nonexistent-binary" in m for m in messages), messages


OOM = """\
apiVersion: v1
kind: Pod
metadata: {{name: hog, namespace: {ns}}}
spec:
  restartPolicy: Never
  containers:
  - name: c
    image: minik/busybox:1.35
    command: ["sh", "-c", "x=$(head -c 64m /dev/zero | tr '\\\\0' a); sleep 1"]
    resources: {{limits: {{memory: 8Mi}}}}
"""


def test_a_container_over_its_memory_limit_is_oom_killed(
    cluster: Cluster, namespace: str, manifest
) -> None:
    apply(cluster, manifest, OOM.format(ns=namespace))
    eventually(lambda: phase(cluster, namespace, "hog") == "Failed", timeout=30,
               what="hog Failed")
    terminated = container_state(cluster, namespace, "hog")["state"]["terminated"]
    assert terminated["reason"] == "OOMKilled" and terminated["exitCode"] == 137


PROBES = """\
apiVersion: v1
kind: Pod
metadata: {{name: probed, namespace: {ns}}}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: live
    image: minik/busybox:1.35
    command: ["sh", "-c", "touch /tmp/alive; sleep 3600"]
    livenessProbe:
      exec: {{command: ["cat", "/tmp/alive"]}}
      periodSeconds: 1
      failureThreshold: 2
  - name: ready
    image: minik/web:v1
    readinessProbe:
      httpGet: {{path: /ready.html, port: 8080}}
      periodSeconds: 1
      failureThreshold: 1
"""


def test_liveness_failure_restarts_and_readiness_failure_only_unreadies(
    cluster: Cluster, namespace: str, manifest
) -> None:
    apply(cluster, manifest, PROBES.format(ns=namespace))
    wait_running(cluster, namespace, "probed")
    statuses = {c["name"]: c for c in pod(cluster, namespace, "probed")["status"]
                ["containerStatuses"]}
    assert not statuses["ready"]["ready"]
    cluster.kubectl("exec", "probed", "-n", namespace, "-c", "ready", "--", "sh", "-c",
                    "echo ok > /www/ready.html")
    eventually(lambda: container_state(cluster, namespace, "probed", 1).get("ready"),
               what="ready after the page exists")
    cluster.kubectl("exec", "probed", "-n", namespace, "-c", "ready", "--",
                    "rm", "/www/ready.html")
    eventually(lambda: not container_state(cluster, namespace, "probed", 1).get("ready"),
               what="not ready after the page is gone")
    assert container_state(cluster, namespace, "probed", 1)["restartCount"] == 0
    cluster.kubectl("exec", "probed", "-n", namespace, "-c", "live", "--", "rm", "/tmp/alive")
    eventually(lambda: container_state(cluster, namespace, "probed", 0)["restartCount"] >= 1,
               timeout=30, what="liveness restart")
    reasons = {e["reason"] for e in cluster.api.request(
        "GET", f"/api/v1/namespaces/{namespace}/events")["items"]}
    assert {"Unhealthy", "Killing"} <= reasons


CONFIG = """\
apiVersion: v1
kind: ConfigMap
metadata: {{name: settings, namespace: {ns}}}
data: {{greeting: hello, app.conf: "v=1"}}
---
apiVersion: v1
kind: Secret
metadata: {{name: creds, namespace: {ns}}}
stringData: {{password: s3cret}}
---
apiVersion: v1
kind: Pod
metadata: {{name: configured, namespace: {ns}}}
spec:
  terminationGracePeriodSeconds: 1
  volumes:
  - {{name: conf, configMap: {{name: settings}}}}
  - {{name: sec, secret: {{secretName: creds, defaultMode: 0400}}}}
  containers:
  - name: c
    image: minik/busybox:1.35
    command: ["sleep", "3600"]
    env:
    - name: GREETING
      valueFrom: {{configMapKeyRef: {{name: settings, key: greeting}}}}
    envFrom:
    - secretRef: {{name: creds}}
    volumeMounts:
    - {{name: conf, mountPath: /etc/app}}
    - {{name: sec, mountPath: /etc/sec}}
"""


def test_configmaps_and_secrets_as_env_and_files_and_edits_reach_files(
    cluster: Cluster, namespace: str, manifest
) -> None:
    apply(cluster, manifest, CONFIG.format(ns=namespace))
    wait_running(cluster, namespace, "configured")

    def run(*cmd: str) -> str:
        return cluster.kubectl("exec", "configured", "-n", namespace, "--", *cmd).stdout.strip()

    assert run("sh", "-c", "echo $GREETING $password") == "hello s3cret"
    assert run("cat", "/etc/app/app.conf") == "v=1"
    assert run("cat", "/etc/sec/password") == "s3cret"
    assert run("stat", "-L", "-c", "%a", "/etc/sec/password") == "400"
    cluster.kubectl("patch", "configmap", "settings", "-n", namespace, "--type=merge",
                    "-p", '{"data":{"app.conf":"v=2"}}')
    eventually(lambda: run("cat", "/etc/app/app.conf") == "v=2", timeout=70,
               interval=1, what="configmap edit in the file")


def test_logs_follow_and_exec_exit_codes(cluster: Cluster, namespace: str, manifest) -> None:
    apply(cluster, manifest, f"""\
apiVersion: v1
kind: Pod
metadata: {{name: talker, namespace: {namespace}}}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: c
    image: minik/busybox:1.35
    command: ["sh", "-c", "i=0; while true; do echo line-$i; i=$((i+1)); sleep 0.2; done"]
""")
    wait_running(cluster, namespace, "talker")
    follow = subprocess.Popen(
        [*_kubectl(cluster), "logs", "-f", "talker", "-n", namespace],
        stdout=subprocess.PIPE, text=True, env=cluster._env())
    try:
        lines = [follow.stdout.readline() for _ in range(8)]
        assert lines[0].startswith("line-") and lines[7].startswith("line-")
    finally:
        follow.kill()
        follow.wait()
    result = cluster.kubectl("exec", "talker", "-n", namespace, "--", "sh", "-c", "exit 3",
                             check=False)
    assert result.returncode == 3
    interactive = cluster.kubectl("exec", "-i", "talker", "-n", namespace, "--", "cat",
                                  input="through stdin\n")
    assert interactive.stdout == "through stdin\n"


def _kubectl(cluster: Cluster) -> list[str]:
    from tests.e2e.cluster import KUBECTL

    return [KUBECTL, "--kubeconfig", str(cluster.kubeconfig),
            "--cache-dir", str(cluster.scratch / "kube-cache")]


def test_deleting_a_pod_that_ignores_sigterm_waits_the_grace_period(
    cluster: Cluster, namespace: str, manifest
) -> None:
    apply(cluster, manifest, f"""\
apiVersion: v1
kind: Pod
metadata: {{name: stubborn, namespace: {namespace}}}
spec:
  terminationGracePeriodSeconds: 3
  containers:
  - {{name: c, image: "minik/busybox:1.35", command: ["sleep", "3600"]}}
""")
    wait_running(cluster, namespace, "stubborn")
    uid = pod(cluster, namespace, "stubborn")["metadata"]["uid"]
    started = time.monotonic()
    cluster.kubectl("delete", "pod", "stubborn", "-n", namespace)
    took = time.monotonic() - started
    assert 2.5 <= took <= 15, took
    assert containers_of(cluster, uid) == []


def test_image_pull_policies_report_kubernetes_reasons(
    cluster: Cluster, namespace: str, manifest
) -> None:
    apply(cluster, manifest, f"""\
apiVersion: v1
kind: Pod
metadata: {{name: never, namespace: {namespace}}}
spec:
  containers:
  - {{name: c, image: "minik/absent:1", imagePullPolicy: Never}}
---
apiVersion: v1
kind: Pod
metadata: {{name: unpullable, namespace: {namespace}}}
spec:
  containers:
  - {{name: c, image: "127.0.0.1:5999/nothing:1", imagePullPolicy: IfNotPresent}}
""")

    def reason(name: str) -> str:
        return container_state(cluster, namespace, name).get("state", {}).get(
            "waiting", {}).get("reason", "")

    eventually(lambda: reason("never") == "ErrImageNeverPull", what="ErrImageNeverPull")
    eventually(lambda: reason("unpullable") == "ImagePullBackOff", timeout=30,
               what="ImagePullBackOff")


HOST_PATHS = """\
apiVersion: v1
kind: Pod
metadata: {{name: hosted, namespace: {ns}}}
spec:
  terminationGracePeriodSeconds: 0
  volumes:
  - {{name: data, hostPath: {{path: {data}, type: Directory}}}}
  containers:
  - name: c
    image: minik/busybox:1.35
    command: ["sleep", "3600"]
    volumeMounts:
    - {{name: data, mountPath: /data}}
    - {{name: data, mountPath: /one, subPath: sub}}
---
apiVersion: v1
kind: Pod
metadata: {{name: greedy, namespace: {ns}}}
spec:
  terminationGracePeriodSeconds: 0
  volumes: [{{name: run, hostPath: {{path: /var/run}}}}]
  containers:
  - {{name: c, image: minik/busybox:1.35, command: ["sleep", "3600"],
      volumeMounts: [{{name: run, mountPath: /host-run}}]}}
"""


def test_host_paths_reach_containers_as_staged_mounts_and_never_the_engine_socket(
    cluster: Cluster, namespace: str, manifest, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    (data / "sub").mkdir(parents=True)
    (data / "sub" / "note").write_text("from the host")
    apply(cluster, manifest, HOST_PATHS.format(ns=namespace, data=data))
    wait_running(cluster, namespace, "hosted")
    shown = cluster.kubectl("exec", "hosted", "-n", namespace, "--", "cat", "/data/sub/note",
                            "/one/note")
    assert shown.stdout == "from the host" * 2
    uid = pod(cluster, namespace, "hosted")["metadata"]["uid"]
    app = next(c for c in containers_of(cluster, uid) if "pause" not in c["Image"])
    sources = json.loads(docker("inspect", "--format", "{{json .Mounts}}", app["ID"]))
    staged = str(cluster.home / "agent")
    host_paths = [m for m in sources if m["Destination"] in ("/data", "/one")]
    assert [m["Source"].startswith(staged) for m in host_paths] == [True, True], sources
    events = eventually(lambda: failed_mounts(cluster, namespace, "greedy"),
                        what="the FailedMount of the pod that asks for /var/run")
    assert "mounting the Docker socket requires a privileged container" in events[0]
    assert container_state(cluster, namespace, "greedy")["state"]["waiting"]["reason"] == (
        "ContainerCreating")
    cluster.kubectl("delete", "pod", "hosted", "-n", namespace, "--wait")
    eventually(lambda: not any(f"/{uid}/staged/" in line
                               for line in Path("/proc/self/mountinfo").read_text().splitlines()),
               what="the staged mounts unmounted with the pod")
    assert (data / "sub" / "note").read_text() == "from the host"


PLANTER = """\
apiVersion: v1
kind: Pod
metadata: {{name: planter, namespace: {ns}}}
spec:
  terminationGracePeriodSeconds: 0
  volumes: [{{name: plant, hostPath: {{path: {path}, type: FileOrCreate}}}}]
  containers:
  - {{name: c, image: minik/busybox:1.35, command: ["sleep", "3600"],
      volumeMounts: [{{name: plant, mountPath: /plant}}]}}
"""


def test_an_unprivileged_host_path_creates_nothing_in_minik_s_home(
    cluster: Cluster, namespace: str, manifest
) -> None:
    planted = cluster.home / "purge-requested"
    apply(cluster, manifest, PLANTER.format(ns=namespace, path=planted))
    events = eventually(lambda: failed_mounts(cluster, namespace, "planter"),
                        what="the FailedMount of the pod that would plant a file in the home")
    assert "creating inside minik's home requires a privileged container" in events[0]
    assert not planted.exists()


def test_removed_containers_are_recreated(cluster: Cluster, namespace: str, manifest) -> None:
    apply(cluster, manifest, TWO_CONTAINERS.format(ns=namespace).replace("duo", "healer"))
    wait_running(cluster, namespace, "healer")
    uid = pod(cluster, namespace, "healer")["metadata"]["uid"]
    app = next(c for c in containers_of(cluster, uid) if "_web_" in c["Names"])
    docker("rm", "-f", app["ID"])
    eventually(lambda: any("_web_" in c["Names"] and c["State"] == "running"
                           and c["ID"] != app["ID"] for c in containers_of(cluster, uid)),
               what="web container recreated")
    sandbox = next(c for c in containers_of(cluster, uid) if "_POD_" in c["Names"])
    docker("rm", "-f", sandbox["ID"])

    def new_sandbox() -> bool:
        current = containers_of(cluster, uid)
        return any("_POD_" in c["Names"] and c["State"] == "running" and c["ID"] != sandbox["ID"]
                   for c in current) and sum(c["State"] == "running" for c in current) == 3

    eventually(new_sandbox, timeout=30, what="sandbox recreated")
    wait_running(cluster, namespace, "healer")


def test_a_crashed_minik_adopts_running_containers_without_restarts(
    tmp_path: Path, manifest
) -> None:
    c = Cluster.start(tmp_path)
    try:
        docs = "\n---\n".join(
            f"apiVersion: v1\nkind: Pod\nmetadata: {{name: p{i}}}\nspec:\n"
            f"  terminationGracePeriodSeconds: 1\n  containers:\n"
            f"  - {{name: c, image: 'minik/busybox:1.35', command: ['sleep', '3600']}}\n"
            for i in range(20))
        c.kubectl("apply", "-f", str(manifest(docs, "twenty.yaml")))
        eventually(lambda: _running_count(c) == 20, timeout=120, what="20 pods Running")
        before = sorted(docker("ps", "-q", "--no-trunc", "--filter",
                               f"label=minik.dev/instance={c.name}").split())
        ids_before = _container_ids(c)
        c.kill()
        c.restart()
        c.kubectl("apply", "-f", str(manifest(
            "apiVersion: v1\nkind: Pod\nmetadata: {name: late}\nspec:\n"
            "  terminationGracePeriodSeconds: 1\n  containers:\n"
            "  - {name: c, image: 'minik/busybox:1.35', command: ['sleep', '3600']}\n",
            "late.yaml")))
        wait_running(c, "default", "late", timeout=60)
        eventually(lambda: _running_count(c) == 21, timeout=60, what="21 pods Running")
        ids_after = _container_ids(c)
        assert all(ids_after["late"]) and ids_after.pop("late")
        assert ids_after == ids_before and all(all(ids) for ids in ids_after.values())
        after = sorted(docker("ps", "-aq", "--no-trunc", "--filter",
                              f"label=minik.dev/instance={c.name}").split())
        assert set(before) <= set(after) and len(after) == len(before) + 2
        pods = c.api.request("GET", "/api/v1/pods")["items"]
        restarts = [s["restartCount"] for p in pods if p["metadata"]["name"] != "late"
                    for s in p["status"]["containerStatuses"]]
        assert restarts == [0] * 20
    finally:
        c.stop()
    assert docker("ps", "-aq", "--filter", f"label=minik.dev/instance={c.name}").strip() == ""


def _container_ids(cluster: Cluster) -> dict[str, list[str]]:
    """The container IDs each pod's status reports, by pod name."""
    pods = cluster.api.request("GET", "/api/v1/pods")["items"]
    return {p["metadata"]["name"]: [s.get("containerID", "") for s in
                                    p.get("status", {}).get("containerStatuses") or []]
            for p in pods}


def _running_count(cluster: Cluster) -> int:
    pods = cluster.api.request("GET", "/api/v1/pods")["items"]
    return sum(1 for p in pods if p.get("status", {}).get("phase") == "Running")


def test_down_purge_leaves_nothing_behind(tmp_path: Path, manifest) -> None:
    data = tmp_path / "hostdata"
    data.mkdir()
    (data / "db").write_text("precious")
    c = Cluster.start(tmp_path)
    try:
        c.kubectl("apply", "-f", str(manifest(f"""\
apiVersion: v1
kind: Secret
metadata: {{name: s}}
stringData: {{k: v}}
---
apiVersion: v1
kind: Pod
metadata: {{name: mounted}}
spec:
  terminationGracePeriodSeconds: 1
  volumes:
  - {{name: sec, secret: {{secretName: s}}}}
  - {{name: mem, emptyDir: {{medium: Memory}}}}
  - {{name: host, hostPath: {{path: {data}}}}}
  containers:
  - name: c
    image: minik/busybox:1.35
    command: ["sleep", "3600"]
    volumeMounts: [{{name: sec, mountPath: /s}}, {{name: mem, mountPath: /m}},
                   {{name: host, mountPath: /h}}]
""", "purge.yaml")))
        eventually(lambda: _running_count(c) == 1, timeout=30, what="pod Running")
    finally:
        c.minik("down", "--purge")
    label = f"label=minik.dev/instance={c.name}"
    assert docker("ps", "-aq", "--filter", label).strip() == ""
    assert docker("network", "ls", "-q", "--filter", label).strip() == ""
    mounts = Path("/proc/mounts").read_text()
    assert str(c.home) not in mounts
    assert not (c.home / "store.db").exists() and not (c.home / "agent").exists()
    assert (data / "db").read_text() == "precious"


def test_a_purge_request_file_planted_in_the_home_purges_nothing(crashable: Cluster) -> None:
    (crashable.home / "purge-requested").write_text("purge\n")
    crashable.minik("down")
    assert (crashable.home / "store.db").exists()
    crashable.restart()


def test_down_purge_keeps_the_state_while_a_mount_minik_did_not_make_is_under_it(
    crashable: Cluster, tmp_path: Path
) -> None:
    data = tmp_path / "elsewhere"
    data.mkdir()
    (data / "keep").write_text("precious")
    target = crashable.home / "agent" / "someone-elses"
    target.mkdir(parents=True)
    if subprocess.run(["mount", "--bind", str(data), str(target)], check=False).returncode:
        pytest.skip("cannot bind-mount here (not root?)")
    try:
        down = crashable.minik("down", "--purge", check=False)
        assert down.returncode != 0 and "did not purge" in down.stderr, down.stderr
        assert (data / "keep").read_text() == "precious"
        assert (crashable.home / "store.db").exists()
        log = (crashable.home / "server.log").read_text()
        assert f"not removing {crashable.home / 'agent'}: mounts remain below it ({target})" in log
    finally:
        subprocess.run(["umount", "-l", str(target)], check=False)
    crashable.restart()
