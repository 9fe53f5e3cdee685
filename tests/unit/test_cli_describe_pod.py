"""`describe pod` against a golden output produced by kubectl 1.33 for the same pod."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from minik.api.resources import REGISTRY
from minik.cli.describe import Described, PrefixWriter
from minik.cli.describe_pod import describe_pod, describe_probe, qos_class

POD = {
    "apiVersion": "v1",
    "kind": "Pod",
    "metadata": {
        "labels": {
            "app": "snap"
        },
        "name": "snap",
        "namespace": "default",
        "ownerReferences": [
            {
                "apiVersion": "apps/v1",
                "controller": True,
                "kind": "ReplicaSet",
                "name": "snap-rs",
                "uid": "11111111-1111-1111-1111-111111111111"
            }
        ]
    },
    "spec": {
        "containers": [
            {
                "env": [
                    {
                        "name": "MODE",
                        "value": "prod"
                    }
                ],
                "image": "nginx:1.25",
                "imagePullPolicy": "IfNotPresent",
                "name": "web",
                "ports": [
                    {
                        "containerPort": 80,
                        "protocol": "TCP"
                    }
                ],
                "readinessProbe": {
                    "failureThreshold": 3,
                    "httpGet": {
                        "path": "/",
                        "port": 80,
                        "scheme": "HTTP"
                    },
                    "periodSeconds": 5,
                    "successThreshold": 1,
                    "timeoutSeconds": 1
                },
                "resources": {},
                "terminationMessagePath": "/dev/termination-log",
                "terminationMessagePolicy": "File",
                "volumeMounts": [
                    {
                        "mountPath": "/cache",
                        "name": "cache"
                    }
                ]
            }
        ],
        "dnsPolicy": "ClusterFirst",
        "enableServiceLinks": True,
        "nodeName": "node-a",
        "restartPolicy": "Always",
        "schedulerName": "default-scheduler",
        "securityContext": {},
        "serviceAccountName": "default",
        "terminationGracePeriodSeconds": 30,
        "tolerations": [
            {
                "effect": "NoExecute",
                "key": "node.kubernetes.io/not-ready",
                "operator": "Exists",
                "tolerationSeconds": 300
            }
        ],
        "volumes": [
            {
                "emptyDir": {},
                "name": "cache"
            }
        ]
    },
    "status": {
        "conditions": [
            {
                "status": "True",
                "type": "Ready"
            },
            {
                "status": "True",
                "type": "PodScheduled"
            }
        ],
        "containerStatuses": [
            {
                "containerID": "docker://bb",
                "image": "nginx:1.25",
                "imageID": "docker://sha256:aa",
                "name": "web",
                "ready": True,
                "restartCount": 1,
                "state": {
                    "running": {
                        "startedAt": "2025-01-01T00:00:05Z"
                    }
                }
            }
        ],
        "hostIP": "172.18.0.2",
        "phase": "Running",
        "podIP": "10.244.0.9",
        "podIPs": [
            {
                "ip": "10.244.0.9"
            }
        ],
        "qosClass": "BestEffort",
        "startTime": "2025-01-01T00:00:00Z"
    }
}

KUBECTL_OUTPUT = (
    'Name:             snap\n'
    'Namespace:        default\n'
    'Service Account:  default\n'
    'Node:             node-a/172.18.0.2\n'
    'Start Time:       Wed, 01 Jan 2025 00:00:00 +0000\n'
    'Labels:           app=snap\n'
    'Annotations:      <none>\n'
    'Status:           Running\n'
    'IP:               10.244.0.9\n'
    'IPs:\n'
    '  IP:           10.244.0.9\n'
    'Controlled By:  ReplicaSet/snap-rs\n'
    'Containers:\n'
    '  web:\n'
    '    Container ID:   docker://bb\n'
    '    Image:          nginx:1.25\n'
    '    Image ID:       docker://sha256:aa\n'
    '    Port:           80/TCP\n'
    '    Host Port:      0/TCP\n'
    '    State:          Running\n'
    '      Started:      Wed, 01 Jan 2025 00:00:05 +0000\n'
    '    Ready:          True\n'
    '    Restart Count:  1\n'
    '    Readiness:      http-get http://:80/ delay=0s timeout=1s period=5s #success=1 #failure=3\n'
    '    Environment:\n'
    '      MODE:  prod\n'
    '    Mounts:\n'
    '      /cache from cache (rw)\n'
    'Conditions:\n'
    '  Type           Status\n'
    '  Ready          True \n'
    '  PodScheduled   True \n'
    'Volumes:\n'
    '  cache:\n'
    "    Type:        EmptyDir (a temporary directory that shares a pod's lifetime)\n"
    '    Medium:      \n'
    '    SizeLimit:   <unset>\n'
    'QoS Class:       BestEffort\n'
    'Node-Selectors:  <none>\n'
    'Tolerations:     node.kubernetes.io/not-ready:NoExecute op=Exists for 300s\n'
    'Events:          <none>\n'
)


@pytest.fixture
def utc(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def test_pod_description_matches_kubectl_line_for_line(utc: None) -> None:
    rt = REGISTRY.resolve("pods")
    assert rt is not None
    w = PrefixWriter()
    describe_pod(Described(None, rt, POD, events=[]), w)
    assert w.render() == KUBECTL_OUTPUT


def test_probes_are_summarised_like_kubectl() -> None:
    assert describe_probe({"exec": {"command": ["cat", "/ok"]}, "periodSeconds": 10}) == \
        "exec [cat /ok] delay=0s timeout=0s period=10s #success=0 #failure=0"
    assert describe_probe({"tcpSocket": {"port": 6379}}).startswith("tcp-socket :6379 ")


def test_qos_classes() -> None:
    def pod(resources: dict) -> dict:
        return {"spec": {"containers": [{"resources": resources}]}}

    assert qos_class(pod({})) == "BestEffort"
    assert qos_class(pod({"limits": {"cpu": "1", "memory": "1Gi"}})) == "Guaranteed"
    assert qos_class(pod({"requests": {"cpu": "1"}})) == "Burstable"
