"""The dashboard's own formatting (homegrid/web/src/format.js), run through Node for the tests: what a figure
on the page must read is asked of the page's code, not of a copy of it in Python (tests/format_js.mjs)."""

from __future__ import annotations

import functools
import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

HARNESS = Path(__file__).with_name("format_js.mjs")


def run_format_js(calls: list[list[Any]]) -> list[Any]:
    """The results of ``[[function, *args], ...]`` made in order by format.js in one Node process."""
    node = shutil.which("node")
    assert node, "Node.js is needed to run homegrid/web/src/format.js (scripts/test installs Debian's nodejs)"
    out = subprocess.run([node, str(HARNESS)], input=json.dumps(calls), capture_output=True, text=True,
                         timeout=60, check=False)
    assert out.returncode == 0, out.stderr
    results: list[Any] = json.loads(out.stdout)
    return results


@functools.cache
def format_js(function: str, *args: Any) -> str:
    """``format.<function>(*args)`` as the page computes it: ``format_js("kw", 1520.0) == "1.5 kW"``."""
    shown = run_format_js([[function, *args]])[0]
    assert isinstance(shown, str), shown
    return shown
