"""Argument parsing and the pure rules of get, delete, label and describe."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from minik.api.errors import not_found
from minik.api.resources import REGISTRY
from minik.cli.delete import Victim, delete_options, grace_period, parse_duration, wait_gone
from minik.cli.describe import (
    Described,
    PrefixWriter,
    describe_events,
    describe_generic,
    human_duration,
    labels_multiline,
    smart_label,
)
from minik.cli.label import MapEdit, edit, outcome, parse_changes, split_args
from minik.cli.targets import Target, category, parse_args


def rt(name: str) -> Any:
    found = REGISTRY.resolve(name)
    assert found is not None
    return found


class TestTargets:
    def test_type_then_names(self) -> None:
        assert parse_args(["po", "a", "b"]) == [Target(rt("pods"), ("a", "b"))]

    def test_comma_separated_types_share_the_names(self) -> None:
        assert parse_args(["deploy,svc"]) == [Target(rt("deployments")), Target(rt("services"))]

    def test_slash_form_groups_consecutive_names_of_one_type(self) -> None:
        assert parse_args(["pod/a", "pod/b", "svc/c"]) == [
            Target(rt("pods"), ("a", "b")), Target(rt("services"), ("c",))]

    def test_mixing_forms_is_refused(self) -> None:
        with pytest.raises(SystemExit):
            parse_args(["pods", "pod/a"])

    def test_unknown_types_are_refused(self, capsys: pytest.CaptureFixture[str]) -> None:
        with pytest.raises(SystemExit):
            parse_args(["widgets"])
        assert 'the server doesn\'t have a resource type "widgets"' in capsys.readouterr().err

    def test_all_lists_workloads_in_discovery_order(self) -> None:
        workloads = [t.plural for t in category("all")]
        assert workloads[:3] == ["pods", "replicationcontrollers", "services"]
        assert workloads == [t.plural for t in REGISTRY if "all" in t.categories]


class TestDelete:
    def test_grace_period_rules_follow_kubectl(self) -> None:
        assert grace_period(-1, now=False, force=False) == -1
        assert grace_period(-1, now=True, force=False) == 1
        assert grace_period(0, now=False, force=False) == 1
        assert grace_period(-1, now=False, force=True) == 0
        assert grace_period(5, now=False, force=True) == 5

    def test_delete_options_body(self) -> None:
        assert delete_options("background", -1) == {"propagationPolicy": "Background"}
        assert delete_options("orphan", 0) == {"gracePeriodSeconds": 0,
                                               "propagationPolicy": "Orphan"}
        assert delete_options("foreground", 3)["propagationPolicy"] == "Foreground"

    def test_durations(self) -> None:
        assert parse_duration("0") == 0
        assert parse_duration("90s") == 90
        assert parse_duration("1m30s") == 90
        assert parse_duration("500ms") == 0.5

    def test_waiting_ends_at_not_found_or_a_new_uid(self) -> None:
        pods = rt("pods")
        answers: dict[str, list[Any]] = {
            "/api/v1/namespaces/d/pods/a": [{"metadata": {"uid": "1"}}, not_found("pods", "a")],
            "/api/v1/namespaces/d/pods/b": [{"metadata": {"uid": "new"}}],
        }

        class Client:
            def request(self, method: str, path: str, **_: Any) -> Any:
                answer = answers[path].pop(0)
                if isinstance(answer, Exception):
                    raise answer
                return answer

        left = wait_gone(Client(), [(Victim(pods, "d", "a"), "1"), (Victim(pods, "d", "b"), "2")],
                         10, sleep=lambda _: None)
        assert left == []

    def test_waiting_gives_up_at_the_deadline(self) -> None:
        now = [0.0]

        class Client:
            def request(self, method: str, path: str, **_: Any) -> Any:
                return {"metadata": {"uid": "1"}}

        def sleep(seconds: float) -> None:
            now[0] += seconds

        victim = Victim(rt("pods"), "d", "a")
        assert wait_gone(Client(), [(victim, "1")], 5, clock=lambda: now[0],
                         sleep=sleep) == [victim]
        assert 5 <= now[0] < 7


class TestLabel:
    def test_changes_follow_the_resources(self) -> None:
        assert split_args(("pods", "a", "x=1", "y-"), "label") == (["pods", "a"], ["x=1", "y-"])
        with pytest.raises(SystemExit):
            split_args(("pods", "x=1", "a"), "label")

    def test_existing_values_need_overwrite(self) -> None:
        change = parse_changes(["app=new", "old-"], field="labels", noun="label")
        with pytest.raises(ValueError, match=r"'app' already has a value \(web\), and "
                                             r"--overwrite is false"):
            edit({"app": "web", "old": "1"}, change, overwrite=False)
        assert edit({"app": "web", "old": "1"}, change, overwrite=True) == \
            {"app": "new", "old": None}

    def test_annotation_conflicts_are_worded_as_kubectl_words_them(self) -> None:
        change = parse_changes(["a=2"], field="annotations", noun="annotation")
        with pytest.raises(ValueError, match="--overwrite is false but found the following "
                                             r"declared annotation\(s\): 'a' already has"):
            edit({"a": "1"}, change, overwrite=False)

    def test_outcome_wording(self) -> None:
        labels = MapEdit("labels", "label", {}, ())
        assert outcome(labels, {}, overwrite=False) == "not labeled"
        assert outcome(labels, {"a": None}, overwrite=False) == "unlabeled"
        assert outcome(labels, {"a": None}, overwrite=True) == "labeled"
        assert outcome(labels, {"a": "1"}, overwrite=False) == "labeled"
        assert outcome(MapEdit("annotations", "annotation", {}, ()), {}, overwrite=False) == \
            "annotated"

    def test_bad_label_values_are_refused_before_any_request(self) -> None:
        with pytest.raises(SystemExit):
            parse_changes(["k=bad value"], field="labels", noun="label")
        assert parse_changes(["k=any value!"], field="annotations",
                             noun="annotation").set == {"k": "any value!"}


class TestDescribe:
    @pytest.mark.parametrize(("seconds", "text"), [
        (5, "5s"), (119, "119s"), (120, "2m"), (125, "2m5s"), (600, "10m"), (3 * 3600, "3h"),
        (3 * 3600 + 600, "3h10m"), (30 * 3600, "30h"), (50 * 3600, "2d2h"), (10 * 86400, "10d"),
        (800 * 86400, "2y70d")])
    def test_human_durations(self, seconds: int, text: str) -> None:
        assert human_duration(seconds) == text

    def test_smart_labels(self) -> None:
        assert [smart_label(f) for f in ("creationTimestamp", "apiVersion", "uid", "podIP",
                                         "app.kubernetes.io/name")] == [
            "Creation Timestamp", "API Version", "UID", "Pod IP", "app.kubernetes.io/name"]

    def test_labels_continue_under_the_first_value(self) -> None:
        w = PrefixWriter()
        labels_multiline(w, "Labels", {"b": "2", "a": "1"})
        w.write(0, "Annotations:\t<none>\n")
        assert w.render() == "Labels:       a=1\n              b=2\nAnnotations:  <none>\n"

    def test_events_table(self) -> None:
        now = datetime(2025, 1, 1, 0, 10, tzinfo=UTC)
        w = PrefixWriter()
        w.write(0, "Name:\tx\n")
        describe_events(w, [
            {"type": "Normal", "reason": "Pulled", "message": "ok", "count": 3,
             "firstTimestamp": "2025-01-01T00:00:00Z", "lastTimestamp": "2025-01-01T00:09:00Z",
             "source": {"component": "kubelet"}},
            {"type": "Normal", "reason": "Scheduled", "message": " assigned ",
             "firstTimestamp": "2025-01-01T00:00:00Z", "lastTimestamp": "2025-01-01T00:00:00Z",
             "source": {"component": "default-scheduler"}}], now)
        assert w.render() == (
            "Name:  x\n"
            "Events:\n"
            "  Type    Reason     Age                From               Message\n"
            "  ----    ------     ----               ----               -------\n"
            "  Normal  Scheduled  10m                default-scheduler  assigned\n"
            "  Normal  Pulled     60s (x3 over 10m)  kubelet            ok\n")

    def test_generic_description_prints_every_field(self) -> None:
        obj = {"apiVersion": "v1", "kind": "Endpoints",
               "metadata": {"name": "web", "namespace": "default", "uid": "u1",
                            "managedFields": [{}]},
               "subsets": [{"addresses": [{"ip": "10.0.0.1"}], "ports": [{"port": 80}]}]}
        d = Described(None, rt("endpoints"), obj, events=[])
        w = PrefixWriter()
        describe_generic(d, w)
        assert w.render() == (
            "Name:         web\n"
            "Namespace:    default\n"
            "Labels:       <none>\n"
            "Annotations:  <none>\n"
            "API Version:  v1\n"
            "Kind:         Endpoints\n"
            "Metadata:\n"
            "  UID:  u1\n"
            "Subsets:\n"
            "  Addresses:\n"
            "    Ip:  10.0.0.1\n"
            "  Ports:\n"
            "    Port:  80\n"
            "Events:    <none>\n")
