"""Budget 2: import a year of 1-second readings (31.5 M rows, 6 channels) in < 5 min and < 1 GiB.

homegrid: ``homegrid import FILE --data-dir DIR`` in a child process (wall time,
peak RSS of that process from ``wait4``, store size after the import's checkpoint).
InfluxDB 1.6: the same rows as line protocol POSTed to ``/write`` in batches of
5000 lines (precision=s, 2 connections), then the size of data + WAL once the
cache went to TSM files, and influxd's peak RSS. Optionally Powerwall-Dashboard's
downsampling (1-minute means, hourly and daily energy) over the first N days,
which is what homegrid's rollups correspond to.

    .venv/bin/python bench/bench_import.py                 # full size: 31,536,000 rows
    .venv/bin/python bench/bench_import.py --rows 1000000  # a quick run
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import influx
import synth
from budgets import limit
from common import DATA_CACHE, MIB, child_env, command_figures, homegrid_cmd, log, ratio, run_child

START = datetime(2025, 1, 1, tzinfo=UTC)
YEAR_ROWS = 365 * 86_400
BUDGET_S = limit("import.wall_s")
BUDGET_RSS_MIB = limit("import.peak_rss_mib")


def run(rows: int = YEAR_ROWS, use_influx: bool = True, downsample_days: float = 7.0,
        tmp_root: str | None = None, profile: Path | None = None, log=log) -> dict:
    t0 = time.perf_counter()
    csv_path = synth.cached(DATA_CACHE, "csv", START, rows, 1, 2025)
    log(f"import: CSV {csv_path} ({csv_path.stat().st_size / MIB:,.0f} MiB) ready in {time.perf_counter() - t0:.1f} s")
    res: dict = {"rows": rows, "csv_bytes": csv_path.stat().st_size, "budget_s": BUDGET_S,
                 "budget_rss_mib": BUDGET_RSS_MIB}
    tmp = Path(tempfile.mkdtemp(prefix="hg-import-", dir=tmp_root))
    try:
        data_dir = tmp / "data"
        cmd = homegrid_cmd("import", str(csv_path), "--create", "--data-dir", str(data_dir))
        if profile is not None:
            cmd = [sys.executable, "-m", "cProfile", "-o", str(profile), "-m", "homegrid.cli", *cmd[1:]]
        run_ = run_child(cmd, env=child_env(tmp))
        if run_.returncode != 0:
            res["homegrid"] = {"error": f"exit {run_.returncode}: {run_.stderr[-2000:]}"}
            log(f"import: homegrid failed: {run_.stderr[-2000:]}")
        else:
            res["homegrid"] = {**command_figures(run_, data_dir / "homegrid.db"), "rows_per_s": rows / run_.wall_s}
            log(f"import: homegrid {run_.wall_s:.1f} s, peak RSS {run_.max_rss_kib / 1024:.0f} MiB, "
                f"{res['homegrid']['disk_bytes'] / MIB:.0f} MiB on disk")
        shutil.rmtree(data_dir, ignore_errors=True)

        res["influx"] = influx.skipped(use_influx, log) or _influx(rows, downsample_days, tmp, log)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    h, i = res.get("homegrid", {}), res.get("influx", {})
    res["ratios"] = {
        "import_time": ratio(h.get("wall_s"), i.get("write_s")),
        "disk": ratio(h.get("disk_bytes"), i.get("disk_bytes")),
        "peak_rss": ratio(h.get("peak_rss_mib"), i.get("influxd_peak_rss_mib")),
    }
    return res


def _influx(rows: int, downsample_days: float, tmp: Path, log) -> dict:
    t0 = time.perf_counter()
    lp_path = synth.cached(DATA_CACHE, "lp", START, rows, 1, 2025)
    log(f"import: line protocol {lp_path} ready in {time.perf_counter() - t0:.1f} s")
    out: dict = {"lp_bytes": lp_path.stat().st_size}
    with influx.Influx(root=str(tmp)) as ix:
        ix.setup_powerwall()
        t0 = time.perf_counter()
        lines = ix.write_file(lp_path)
        out["write_s"] = time.perf_counter() - t0
        out["lines"] = lines
        out["rows_per_s"] = lines / out["write_s"]
        out["influxd_peak_rss_mib"] = influx.rss_kib(ix.pid)[1] / 1024
        log(f"import: influx write {out['write_s']:.1f} s ({out['rows_per_s']:,.0f} rows/s), "
            f"influxd peak RSS {out['influxd_peak_rss_mib']:.0f} MiB")
        out["wal_flush_wait_s"] = ix.wait_wal_flushed(timeout_s=180)
        size = ix.size()
        out["disk_bytes"] = size["data"] + size["wal"]
        out["disk_detail"] = size
        log(f"import: influx on disk {out['disk_bytes'] / MIB:.0f} MiB (after {out['wal_flush_wait_s']:.0f} s)")
        days = min(downsample_days, rows / 86_400)
        if days > 0:
            a = int(START.timestamp())
            t0 = time.perf_counter()
            ix.downsample(a, a + int(days * 86_400), chunk_days=7)
            dt = time.perf_counter() - t0
            out["downsample"] = {"days": days, "s": dt, "s_per_day": dt / days}
            log(f"import: influx downsampling of {days:g} days {dt:.1f} s ({dt / days:.2f} s per day)")
        out["influxd_peak_rss_mib_total"] = influx.rss_kib(ix.pid)[1] / 1024
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rows", type=int, default=YEAR_ROWS, help="rows at 1 s (default a year: 31,536,000)")
    p.add_argument("--no-influx", action="store_true", help="skip the InfluxDB side")
    p.add_argument("--downsample-days", type=float, default=7.0,
                   help="days of Powerwall-Dashboard downsampling to time in InfluxDB (0: none)")
    p.add_argument("--tmp", help="folder for the stores (default the system temp folder)")
    p.add_argument("--profile", type=Path, help="run homegrid under cProfile, writing the stats here")
    args = p.parse_args(argv)
    res = run(args.rows, not args.no_influx, args.downsample_days, args.tmp, args.profile)
    print(json.dumps(res, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
