"""`rollout status` of a DaemonSet: kubectl's DaemonSetStatusViewer, line by line."""

from __future__ import annotations

import pytest

from minik.cli.rollout_revisions import daemon_set_status_message


def ds(generation: int = 2, strategy: str = "RollingUpdate", **status: int) -> dict:
    return {"metadata": {"name": "agent", "generation": generation},
            "spec": {"updateStrategy": {"type": strategy}},
            "status": {"observedGeneration": 2, "desiredNumberScheduled": 3, **status}}


@pytest.mark.parametrize(("obj", "line", "done"), [
    (ds(generation=3), "Waiting for daemon set spec update to be observed...", False),
    (ds(updatedNumberScheduled=1),
     'Waiting for daemon set "agent" rollout to finish: 1 out of 3 new pods have been '
     "updated...", False),
    (ds(updatedNumberScheduled=3, numberAvailable=2),
     'Waiting for daemon set "agent" rollout to finish: 2 of 3 updated pods are available...',
     False),
    (ds(updatedNumberScheduled=3, numberAvailable=3),
     'daemon set "agent" successfully rolled out', True),
])
def test_a_daemon_set_rollout_is_done_when_every_node_runs_an_available_updated_pod(
        obj: dict, line: str, done: bool):
    assert daemon_set_status_message(obj) == (line, done)


def test_rollout_status_refuses_an_on_delete_daemon_set(capsys: pytest.CaptureFixture[str]):
    with pytest.raises(SystemExit) as exit_info:
        daemon_set_status_message(ds(strategy="OnDelete"))
    assert exit_info.value.code == 1
    assert capsys.readouterr().err == \
        "error: rollout status is only available for RollingUpdate strategy type\n"
