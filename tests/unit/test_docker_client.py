"""The Docker SDK clients minik builds: how they reach the engine."""

from __future__ import annotations

import pytest

from agent.docker_client import DockerClient


def test_the_engine_is_never_reached_through_the_proxy_environment(
        monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "all_proxy"):
        monkeypatch.setenv(name, "http://127.0.0.1:9")
    client = DockerClient("tcp://127.0.0.1:2375")
    for api in (client.api, client.stream_api):
        settings = api.merge_environment_settings("http://127.0.0.1:2375/_ping", {}, None,
                                                  None, None)
        assert settings["proxies"] == {}
