"""Boolean query parameters read as Kubernetes' query-parameter conversion reads them."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from multidict import MultiDict

from agent.exec_stream import StreamOptions
from agent.kubelet_server import LogOptions
from minik.api.query import parse_bool, parse_optional_bool


@pytest.mark.parametrize("value", ["1", "t", "T", "true", "True", "TRUE", "yes", ""])
def test_any_present_value_but_zero_or_false_is_true(value: str) -> None:
    assert parse_bool({"watch": value}, "watch") is True


@pytest.mark.parametrize("value", ["0", "false", "False", "FALSE", "fAlSe"])
def test_zero_and_false_in_any_case_are_false(value: str) -> None:
    assert parse_bool({"watch": value}, "watch") is False


def test_an_absent_parameter_is_false_or_unset() -> None:
    assert parse_bool({}, "watch") is False
    assert parse_optional_bool({}, "sendInitialEvents") is None
    assert parse_optional_bool({"sendInitialEvents": "False"}, "sendInitialEvents") is False


def test_the_first_of_repeated_values_counts() -> None:
    assert parse_bool(MultiDict([("follow", "false"), ("follow", "true")]), "follow") is False


def test_the_kubelet_api_reads_log_and_exec_options_the_same_way() -> None:
    logs = LogOptions.parse(MultiDict(follow="True", previous="FALSE", timestamps="1"),
                            now=datetime.now(UTC))
    assert (logs.follow, logs.previous, logs.timestamps) == (True, False, True)
    stream = StreamOptions.parse(MultiDict(command="ls", stdout="yes", stderr="False", tty="0"))
    assert (stream.stdout, stream.stderr, stream.tty, stream.stdin) == (True, False, False, False)
