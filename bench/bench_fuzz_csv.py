"""The long fuzz of the CSV reader: ``tests/test_fuzz_csv.py`` with 100,000 cases per test (CI runs 300).

Every case is a file of arbitrary bytes or of hostile rows (times from year 1 to 9999, 1e308, NaN
and infinity texts, quotes, fields over 1 kB, lines over 64 kB, repeated times); the reader must give
checked frames and problems, or a ``BadRow``, and nothing else. Prints the cases, the time and
pytest's verdict as JSON; exit code is pytest's. At 100,000 cases it takes about 2 hours on 2 cores.

    .venv/bin/python bench/bench_fuzz_csv.py                   # 100,000 cases per test
    .venv/bin/python bench/bench_fuzz_csv.py --examples 5000
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--examples", type=int, default=100_000, help="cases per fuzz test (default 100,000)")
    args = p.parse_args(argv)
    env = {**os.environ, "HOMEGRID_FUZZ_EXAMPLES": str(args.examples)}
    started = time.perf_counter()
    run = subprocess.run([sys.executable, "-m", "pytest", str(ROOT / "tests" / "test_fuzz_csv.py"), "-q",
                          "-p", "no:cacheprovider", "-x"], env=env, cwd=ROOT, check=False)
    print(json.dumps({"examples_per_test": args.examples, "seconds": round(time.perf_counter() - started, 1),
                      "passed": run.returncode == 0}))
    return run.returncode


if __name__ == "__main__":
    sys.exit(main())
