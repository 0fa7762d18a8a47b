"""Issue 10: the long fuzz run: each of the CI's fuzz tests with 100,000 cases.

The fuzz tests (``tests/test_fuzz_*.py``: the query parameters, the CSV reader, the device reply
parsers) run a few hundred hypothesis cases in CI; here each runs ``--examples`` (default 100,000)
with ``HOMEGRID_FUZZ_EXAMPLES``. A failure is hypothesis's shrunk example, printed by pytest.
Reports the cases, the wall time and the outcome of each file as a Markdown table
(``bench/out/fuzz.md``).

    .venv/bin/python bench/bench_fuzz.py                    # 100,000 cases a test
    .venv/bin/python bench/bench_fuzz.py --examples 5000    # a shorter look
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import OUT, PYTHON, REPO, log, machine


def run(examples: int = 100_000, files: list[Path] | None = None) -> dict[str, Any]:
    """Each fuzz test file under pytest with ``examples`` cases a test: wall time and outcome per file."""
    files = files or sorted((REPO / "tests").glob("test_fuzz_*.py"))
    env = {**os.environ, "HOMEGRID_FUZZ_EXAMPLES": str(examples)}
    res: dict[str, Any] = {"examples": examples, "files": [], "failed_files": 0}
    for f in files:
        t0 = time.perf_counter()
        run = subprocess.run([PYTHON, "-m", "pytest", str(f), "-q", "-p", "no:cacheprovider", "-x",
                              "--hypothesis-show-statistics"], cwd=REPO, env=env, capture_output=True, text=True)
        wall = time.perf_counter() - t0
        last = run.stdout.strip().splitlines()[-1] if run.stdout.strip() else run.stderr[-200:]
        res["failed_files"] += run.returncode != 0
        res["files"].append({"file": str(f.relative_to(REPO)), "wall_s": wall, "outcome": last,
                             "returncode": run.returncode})
        log(f"fuzz: {f.name}: {last} ({wall:.0f} s)")
        if run.returncode != 0:
            log(run.stdout[-5000:])
    return res


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--examples", type=int, default=100_000, help="hypothesis cases per fuzz test")
    p.add_argument("--out", type=Path, default=OUT / "fuzz.md")
    p.add_argument("files", nargs="*", help="fuzz test files (default tests/test_fuzz_*.py)")
    args = p.parse_args(argv)
    res = run(args.examples, [Path(f).resolve() for f in args.files])
    rows = [f"| `{x['file']}` | {args.examples:,} | {x['wall_s']:.0f} | {x['outcome']} |" for x in res["files"]]
    text = "\n".join([
        "### Issue 10: the long fuzz run (`bench/bench_fuzz.py`)", "",
        f"`.venv/bin/python bench/bench_fuzz.py --examples {args.examples}`; machine {machine()}.", "",
        "| fuzz test | cases per test | wall [s] | pytest |", "|---|---|---|---|", *rows])
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text + "\n")
    print(text)
    return 1 if res["failed_files"] else 0


if __name__ == "__main__":
    sys.exit(main())
