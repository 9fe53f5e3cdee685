"""`promtool check metrics` for the tests: every endpoint minik serves must pass it.

promtool exits non-zero on a parse error and on lint problems (a counter
without `_total`, a metric without HELP, ...); its report is the assertion's
message. It comes from Debian's `prometheus` package (`make tools`).
"""

from __future__ import annotations

import shutil
import subprocess


def check_metrics(text: str) -> None:
    """Assert that promtool accepts `text`, an answer in the text exposition format."""
    promtool = shutil.which("promtool")
    assert promtool, "promtool is installed by `make tools`"
    check = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True,
                           text=True, check=False)
    assert check.returncode == 0, check.stdout + check.stderr
