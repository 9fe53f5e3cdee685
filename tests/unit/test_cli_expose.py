"""`minik expose`: the Service built for an object, as `kubectl expose` builds it."""

from __future__ import annotations

import pytest

from minik.cli.expose import service_for

DEPLOYMENT = {
    "kind": "Deployment", "apiVersion": "apps/v1",
    "metadata": {"name": "web", "labels": {"app": "web", "team": "a"}},
    "spec": {"selector": {"matchLabels": {"app": "web"}}, "template": {"spec": {"containers": [
        {"name": "c", "ports": [{"containerPort": 8080}, {"containerPort": 53,
                                                            "protocol": "UDP"}]}]}}},
}


def expose(obj: dict, **flags: object) -> dict:
    defaults: dict = {"name": "web", "port": None, "target_port": None, "protocol": None,
                      "service_type": None, "selector": None, "labels": None}
    return service_for(obj, **{**defaults, **flags})


def test_a_deployment_is_exposed_with_its_selector_labels_and_the_ports_given():
    service = expose(DEPLOYMENT, port=80, target_port="8080", service_type="NodePort")
    assert service["metadata"] == {"name": "web", "creationTimestamp": None,
                                   "labels": {"app": "web", "team": "a"}}
    assert service["spec"] == {"ports": [{"protocol": "TCP", "port": 80, "targetPort": 8080}],
                               "selector": {"app": "web"}, "type": "NodePort"}


def test_without_a_port_the_containers_ports_are_exposed_and_named():
    assert expose(DEPLOYMENT)["spec"]["ports"] == [
        {"protocol": "TCP", "port": 8080, "targetPort": 8080, "name": "port-1"},
        {"protocol": "UDP", "port": 53, "targetPort": 53, "name": "port-2"}]


def test_a_named_target_port_stays_a_name_and_flags_override_selector_and_labels():
    service = expose(DEPLOYMENT, port=80, target_port="http", selector="tier=web",
                     labels="x=y", name="front")
    assert service["spec"]["ports"][0]["targetPort"] == "http"
    assert service["spec"]["selector"] == {"tier": "web"}
    assert service["metadata"]["labels"] == {"x": "y"}
    assert service["metadata"]["name"] == "front"


def test_a_pod_is_exposed_by_its_labels_and_an_object_without_ports_is_refused(capsys):
    pod = {"kind": "Pod", "metadata": {"name": "p", "labels": {"run": "p"}},
           "spec": {"containers": [{"name": "c"}]}}
    assert expose(pod, port=80)["spec"]["selector"] == {"run": "p"}
    with pytest.raises(SystemExit):
        expose(pod)
    assert "couldn't find port via --port flag or introspection" in capsys.readouterr().err


def test_a_selector_with_expressions_cannot_be_exposed(capsys):
    rs = {"kind": "ReplicaSet", "metadata": {"name": "r"}, "spec": {"selector": {
        "matchExpressions": [{"key": "a", "operator": "Exists"}]}}}
    with pytest.raises(SystemExit):
        expose(rs, port=80)
    assert "to map-based selector format" in capsys.readouterr().err
