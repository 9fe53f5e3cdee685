"""The global options (--home, --kubeconfig, --context, -n) work on either side of the
subcommand, as kubectl's global flags do, and are defined once."""

from __future__ import annotations

from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from minik.cli import global_options
from minik.cli.main import cli
from minik.cli.verbs import COMMANDS, load
from tests.unit.cliparse import parse, settings


@pytest.fixture(autouse=True)
def no_home_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MINIK_HOME", raising=False)


@pytest.mark.parametrize("argv", [
    ["--home", "/srv/m", "up", "-d"],
    ["up", "-d", "--home", "/srv/m"],
    ["up", "--home", "/srv/m", "-d"],
    ["up", "--home=/srv/m", "-d"],
])
def test_home_is_accepted_before_or_after_the_subcommand(argv: list[str]) -> None:
    ctx = parse(argv)
    assert ctx.command.name == "up"
    assert ctx.params["detached"] is True
    assert settings(argv).home.root == Path("/srv/m")


@pytest.mark.parametrize("argv", [
    ["-n", "x", "get", "pods"],
    ["get", "pods", "-n", "x"],
    ["get", "-n", "x", "pods"],
    ["get", "pods", "--namespace=x"],
    ["rollout", "status", "deploy/web", "-n", "x"],
    ["rollout", "-n", "x", "status", "deploy/web"],
    ["set", "image", "deploy/web", "web=minik/web:v2", "-n", "x"],
    ["create", "configmap", "c", "--from-literal", "a=b", "-n", "x"],
    ["create", "-f", "m.yaml", "-n", "x"],
    ["logs", "p", "-n", "x"],
    ["exec", "p", "-n", "x", "--", "ls"],
])
def test_namespace_is_accepted_before_after_and_between_subcommands(argv: list[str]) -> None:
    assert settings(argv).namespace_flag == "x"


def test_options_mixed_on_both_sides_resolve_and_the_later_one_wins() -> None:
    argv = ["--home", "/a", "-n", "first", "--context", "c1", "get", "pods",
            "--kubeconfig", "/k/config", "--home", "/b", "-n", "second"]
    got = settings(argv)
    assert (got.home.root, got.kubeconfig, got.context, got.namespace_flag) == (
        Path("/b"), Path("/k/config"), "c1", "second")
    assert parse(argv).params["args"] == ("pods",)


def test_minik_home_from_the_environment_never_overrides_an_explicit_home(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("MINIK_HOME", "/from/env")
    assert settings(["up"]).home.root == Path("/from/env")
    assert settings(["--home", "/a", "up"]).home.root == Path("/a")
    assert settings(["up", "--home", "/a"]).home.root == Path("/a")


def test_what_follows_double_dash_in_exec_belongs_to_the_command() -> None:
    argv = ["exec", "p", "-n", "x", "--", "ls", "-n", "y", "--home", "z"]
    assert settings(argv).namespace_flag == "x"
    assert parse(argv).params["command"] == ("ls", "-n", "y", "--home", "z")


def _all_commands() -> list[click.Command]:
    found: list[click.Command] = []
    stack: list[click.Command] = [global_options.add_to(load(name)) for name in COMMANDS]
    while stack:
        command = stack.pop()
        found.append(command)
        if isinstance(command, click.Group):
            stack.extend(command.commands.values())
    return found


def test_every_command_takes_each_global_option_exactly_once() -> None:
    for command in _all_commands():
        opts = [opt for param in command.params for opt in param.opts]
        for option in global_options.OPTIONS:
            for decl in option.decls:
                assert opts.count(decl) == 1, (command.name, decl)


def test_a_command_that_declares_a_global_option_itself_is_refused() -> None:
    @click.command("own")
    @click.option("-n", "--namespace")
    def own(namespace: str | None) -> None:
        """A verb with its own -n."""

    with pytest.raises(TypeError, match="declares global option"):
        global_options.add_to(own)


def test_a_subcommand_uses_the_home_given_after_it(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["kubeconfig", "--home", str(tmp_path / "h")])
    assert result.exit_code == 1
    assert f"no kubeconfig at {tmp_path / 'h' / 'kubeconfig'}" in result.output


def test_a_subcommand_help_lists_the_global_options() -> None:
    result = CliRunner().invoke(cli, ["up", "--help"])
    assert result.exit_code == 0
    for decl in ("--home", "--kubeconfig", "--context", "--namespace"):
        assert decl in result.output


def test_an_unknown_option_is_still_refused() -> None:
    with pytest.raises(click.UsageError, match="No such option '--nope'"):
        parse(["get", "pods", "--nope"])
