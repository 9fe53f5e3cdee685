"""Every `minik ...` command line in README.md parses as the CLI accepts it: the
commands in its code blocks, and the inline ones with their placeholders filled."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from tests.unit.cliparse import parse

README = Path(__file__).resolve().parents[2] / "README.md"
PLACEHOLDERS = {"DIR": "/tmp/minik-home", "NAME": "demo", "PORT": "6443",
                "ADDR": "127.0.0.1", "S": "1"}
"""Sample values for the placeholders the README's inline synopses use."""


SHELL_OPERATORS = frozenset({">", ">>", "<", "|", "&&", "||", ";"})
"""Where a minik command's words end on a shell line (`minik prometheus-config > f`)."""


def _minik_argv(words: list[str]) -> list[str] | None:
    for i, word in enumerate(words):
        if word == "minik" or word.endswith("/minik"):
            rest = words[i + 1:]
            end = next((j for j, w in enumerate(rest) if w in SHELL_OPERATORS), len(rest))
            return rest[:end]
    return None


def code_block_commands(text: str) -> list[list[str]]:
    commands = []
    for block in re.findall(r"^```[a-z]*\n(.*?)^```", text, flags=re.M | re.S):
        for line in block.splitlines():
            argv = _minik_argv(shlex.split(line, comments=True))
            if argv is not None:
                commands.append(argv)
    return commands


def inline_commands(text: str) -> list[list[str]]:
    commands = []
    for span in re.findall(r"`(minik [^`]+)`", text):
        words = [PLACEHOLDERS.get(w, w) for w in shlex.split(re.sub(r"[\[\]]", "", span))]
        unknown = [w for w in words if re.fullmatch(r"[A-Z]+", w)]
        assert not unknown, f"give a sample value for {unknown} of README's `{span}`"
        commands.append(words[1:])
    return commands


TEXT = README.read_text()
COMMANDS = code_block_commands(TEXT) + inline_commands(TEXT)


def test_the_readme_shows_minik_commands_in_code_blocks_and_inline() -> None:
    assert ["up", "-d"] in code_block_commands(TEXT)
    assert any("--home" in argv for argv in inline_commands(TEXT))


@pytest.mark.parametrize("argv", COMMANDS, ids=[" ".join(a) for a in COMMANDS])
def test_a_readme_command_line_parses(argv: list[str]) -> None:
    names = parse(argv).command_path.split()[1:]
    assert names and all(name in argv for name in names)
