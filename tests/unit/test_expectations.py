"""ControllerExpectations: pending creates and deletes per controller key, with a TTL."""

from __future__ import annotations

from minik.controllers.expectations import EXPECTATIONS_TTL, ControllerExpectations
from minik.machinery.clock import ManualClock


def expectations() -> tuple[ControllerExpectations, ManualClock]:
    clock = ManualClock(start=1000.0)
    return ControllerExpectations(clock=clock), clock


def test_a_key_without_expectations_is_satisfied():
    exp, _ = expectations()
    assert exp.satisfied("default/web")
    assert exp.get("default/web") is None


def test_expected_creations_hold_the_key_until_every_one_is_observed():
    exp, _ = expectations()
    exp.expect_creations("default/web", 3)
    for _ in range(2):
        exp.creation_observed("default/web")
        assert not exp.satisfied("default/web")
    exp.creation_observed("default/web")
    assert exp.satisfied("default/web")


def test_observing_more_creations_than_expected_stays_satisfied():
    exp, _ = expectations()
    exp.expect_creations("default/web", 1)
    exp.creation_observed("default/web")
    exp.creation_observed("default/web")
    assert exp.satisfied("default/web")


def test_observations_for_a_key_with_no_record_are_ignored():
    exp, _ = expectations()
    exp.creation_observed("default/web")
    exp.deletion_observed("default/web", "default/web-abcde")
    assert exp.get("default/web") is None


def test_expectations_of_one_key_do_not_hold_another():
    exp, _ = expectations()
    exp.expect_creations("default/web", 2)
    assert exp.satisfied("default/api")
    assert exp.satisfied("other/web")


def test_a_deletion_counts_once_per_pod_even_when_seen_twice():
    exp, _ = expectations()
    exp.expect_deletions("default/web", ["default/web-a", "default/web-b"])
    exp.deletion_observed("default/web", "default/web-a")
    exp.deletion_observed("default/web", "default/web-a")
    assert not exp.satisfied("default/web")
    exp.deletion_observed("default/web", "default/web-b")
    assert exp.satisfied("default/web")


def test_the_deletion_of_a_pod_that_was_not_asked_for_does_not_count():
    exp, _ = expectations()
    exp.expect_deletions("default/web", ["default/web-a"])
    exp.deletion_observed("default/web", "default/web-z")
    assert not exp.satisfied("default/web")


def test_unfulfilled_expectations_expire_after_the_ttl():
    exp, clock = expectations()
    exp.expect_creations("default/web", 5)
    clock.advance(EXPECTATIONS_TTL)
    assert not exp.satisfied("default/web")
    clock.advance(0.001)
    assert exp.satisfied("default/web")


def test_new_expectations_replace_the_old_record_and_restart_the_ttl():
    exp, clock = expectations()
    exp.expect_creations("default/web", 5)
    clock.advance(EXPECTATIONS_TTL - 1)
    exp.expect_deletions("default/web", ["default/web-a"])
    clock.advance(2)
    record = exp.get("default/web")
    assert record is not None and (record.add, record.delete) == (0, 1)
    assert not exp.satisfied("default/web")


def test_forgetting_a_key_drops_what_it_waited_for():
    exp, _ = expectations()
    exp.expect_creations("default/web", 2)
    exp.forget("default/web")
    assert exp.satisfied("default/web")
    assert len(exp) == 0
