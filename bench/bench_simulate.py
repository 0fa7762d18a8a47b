"""Budget 1: ``homegrid simulate`` of one year at 1-minute steps in under 10 s.

Runs ``homegrid simulate --start 2025-01-01 --days 365 --data-dir <tmp>`` as a
child process and reports its wall time, peak RSS and store size. The peer
figure: InfluxDB 1.6 storing the same rows (read back from the homegrid store) as
line protocol, plus Powerwall-Dashboard's downsampling of them, which is the work
that gives it the same charts and reports. (InfluxDB has no simulator, so the
ratio compares homegrid's simulate-and-store with InfluxDB's store alone.)

    .venv/bin/python bench/bench_simulate.py
    .venv/bin/python bench/bench_simulate.py --days 30 --no-influx
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import influx
from bench_queries import store_line_protocol, virtual_home_available
from budgets import limit
from common import MIB, child_env, command_figures, homegrid_cmd, log, ratio, run_child

BUDGET_S = limit("simulate.wall_s")


def run(days: float = 365, use_influx: bool = True, tmp_root: str | None = None, profile: Path | None = None,
        log=log) -> dict:
    res: dict = {"days": days, "budget_s": BUDGET_S}
    ok, why = virtual_home_available()
    if not ok:
        res["homegrid"] = {"skipped": why}
        log(f"simulate: skipped: {why}")
        return res
    tmp = Path(tempfile.mkdtemp(prefix="hg-simulate-", dir=tmp_root))
    try:
        data_dir = tmp / "data"
        cmd = homegrid_cmd("simulate", "--start", "2025-01-01", "--days", f"{days:g}", "--create",
                           "--data-dir", str(data_dir))
        if profile is not None:
            cmd = [sys.executable, "-m", "cProfile", "-o", str(profile), "-m", "homegrid.cli", *cmd[1:]]
        r = run_child(cmd, env=child_env(tmp))
        if r.returncode != 0:
            res["homegrid"] = {"error": f"exit {r.returncode}: {r.stderr[-2000:]}"}
            log(f"simulate: homegrid failed: {r.stderr[-2000:]}")
            return res
        res["homegrid"] = command_figures(r, data_dir / "homegrid.db")
        log(f"simulate: homegrid {r.wall_s:.1f} s, peak RSS {r.max_rss_kib / 1024:.0f} MiB, "
            f"{res['homegrid']['disk_bytes'] / MIB:.0f} MiB ({r.stdout.strip()})")
        skip = influx.skipped(use_influx, log)
        if skip:
            res["influx"] = skip
        else:
            lp = tmp / "readings.lp"
            lines, first_s, last_s = store_line_protocol(data_dir, lp)
            with influx.Influx(root=str(tmp)) as ix:
                ix.setup_powerwall()
                t0 = time.perf_counter()
                ix.write_file(lp)
                write_s = time.perf_counter() - t0
                t0 = time.perf_counter()
                ix.downsample(first_s, last_s + 1)
                down_s = time.perf_counter() - t0
            res["influx"] = {"lines": lines, "write_s": write_s, "downsample_s": down_s,
                             "store_s": write_s + down_s}
            log(f"simulate: influx stores the same {lines} rows in {write_s:.1f} s + {down_s:.1f} s downsampling")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    res["ratios"] = {"simulate_vs_influx_store": ratio(res["homegrid"].get("wall_s"),
                                                       res.get("influx", {}).get("store_s"))}
    return res


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--days", type=float, default=365)
    p.add_argument("--no-influx", action="store_true", help="skip the InfluxDB side")
    p.add_argument("--tmp", help="folder for the store (default the system temp folder)")
    p.add_argument("--profile", type=Path, help="run homegrid under cProfile, writing the stats here")
    args = p.parse_args(argv)
    print(json.dumps(run(args.days, not args.no_influx, args.tmp, args.profile), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
