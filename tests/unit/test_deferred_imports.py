"""Imports inside functions: none in the API packages but the one that buys start-up time.

A function-local import is either start-up time bought on purpose or an
import cycle dodged; only the first is allowed, and only where a comment
says so.
"""

from __future__ import annotations

import ast
from pathlib import Path

import minik

ROOT = Path(minik.__file__).parent
ALLOWED = {
    # the validation models are imported on first use (see that module's docstring)
    "apiserver/validate.py": {"minik.api"},
}


def deferred_imports(path: Path) -> set[str]:
    """The modules a file imports inside its functions."""
    tree = ast.parse(path.read_text())
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            for inner in ast.walk(node):
                if isinstance(inner, ast.ImportFrom) and inner.module:
                    found.add(inner.module)
                elif isinstance(inner, ast.Import):
                    found.update(alias.name for alias in inner.names)
    return found


def test_the_api_packages_import_at_the_top_except_to_defer_validation() -> None:
    found = {}
    for package in ("api", "apiserver"):
        for path in sorted((ROOT / package).rglob("*.py")):
            name = str(path.relative_to(ROOT))
            deferred = deferred_imports(path) - ALLOWED.get(name, set())
            if deferred:
                found[name] = deferred
    assert found == {}


def test_the_get_and_describe_commands_import_at_the_top() -> None:
    for name in ("get.py", "getwatch.py", "describe.py", "describers.py"):
        assert deferred_imports(ROOT / "cli" / name) == set(), name
