"""Issue 14's budget: the live hub with the planner on, under 150 MB resident and 2 % of a core between re-plans.

Writes ``--days`` (default 28) of the virtual home's history with ``homegrid simulate`` (up to now), then starts
``homegrid serve`` on it with ``[planner] enabled = true`` and ``step_min = 5`` (a plan every 5 minutes, on each
step's start, for the next 24 h, against the virtual home's shipped time-of-use tariff, PSCo RE-TOU) and for
``--seconds`` (default 900) samples the process's resident set (VmRSS) and CPU time (utime + stime) from /proc once a
second. No dashboard is open: the hub polls the virtual home every 5 s, records, re-plans and carries the plans out.

The hub's log is read as it is written: each ``planner: plan N made`` line marks a re-plan. The CPU is reported
over the whole window and **between re-plans**: the window without the seconds from ``--replan-before`` before
each re-plan's log line to ``--replan-after`` after it (the build of the forecasts, the solve and the commands
fall inside). Each re-plan's own cost is the CPU time of its excluded seconds, less the idle rate over them.

    .venv/bin/python bench/bench_serve_planner.py                 # 15 minutes after a 28-day history
    .venv/bin/python bench/bench_serve_planner.py --seconds 120 --days 7
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import influx
from bench_serve import Sampler, start_serve, stop_serve
from budgets import limit
from common import child_env, homegrid_cmd, log, run_child

BUDGET_RSS_MB = limit("planner.serve_rss_mb")
BUDGET_CPU_PERCENT = limit("planner.serve_cpu_idle_percent")
STEP_MIN = 5
PLAN_MADE = re.compile(r"planner: plan (\d+) made \((\d+) steps, solved in (\d+) ms, forecasts in (\d+) ms")
CONFIG = f"""[planner]
enabled = true
step_min = {STEP_MIN}
"""


def _json(port: int, path: str) -> Any:
    import http.client

    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request("GET", path)
        return json.loads(conn.getresponse().read())
    finally:
        conn.close()


class LogWatch:
    """The hub's log file, read as it grows: the monotonic second each re-plan's line was first seen."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.offset = 0
        self.partial = b""
        self.plans: list[dict[str, float]] = []

    def read(self) -> None:
        try:
            with open(self.path, "rb") as f:
                f.seek(self.offset)
                data = f.read()
        except OSError:
            return
        self.offset += len(data)
        lines = (self.partial + data).split(b"\n")
        self.partial = lines.pop()
        now = time.monotonic()
        for line in lines:
            m = PLAN_MADE.search(line.decode(errors="replace"))
            if m:
                self.plans.append({"seen": now, "plan": int(m[1]), "steps": int(m[2]), "solve_ms": int(m[3]),
                                   "forecast_ms": int(m[4])})


def cpu_between_replans(cpu: list[tuple[float, float]], replans: list[float], before_s: float,
                        after_s: float) -> dict[str, Any]:
    """The CPU [% of one core] over the sampled intervals clear of every re-plan's window ``[seen - before_s,
    seen + after_s]``, and each re-plan's own CPU time above that idle rate [s].

    Parameters
    ----------
    cpu : list of (float, float)
        Samples: monotonic wall time [s], the process's CPU time [s].
    replans : list of float
        The monotonic times each re-plan was seen in the log [s].
    """
    w = np.array([s[0] for s in cpu])
    c = np.array([s[1] for s in cpu])
    dw, dc = np.diff(w), np.diff(c)
    mid_lo, mid_hi = w[:-1], w[1:]
    near = np.zeros(dw.size, dtype=bool)
    for r in replans:
        near |= (mid_hi > r - before_s) & (mid_lo < r + after_s)
    idle_rate = float(dc[~near].sum() / dw[~near].sum()) if (~near).any() else float("nan")
    costs = []
    for r in replans:
        inside = (mid_hi > r - before_s) & (mid_lo < r + after_s)
        if inside.any():
            costs.append(float(dc[inside].sum() - idle_rate * dw[inside].sum()))
    return {"cpu_idle_percent": 100.0 * idle_rate, "idle_seconds": float(dw[~near].sum()),
            "replan_window_seconds": float(dw[near].sum()), "replan_cpu_s": costs}


def run(seconds: float = 900.0, days: float = 28.0, before_s: float = 20.0, after_s: float = 10.0,
        tmp_root: str | None = None, log=log) -> dict[str, Any]:
    res: dict[str, Any] = {"seconds": seconds, "history_days": days, "step_min": STEP_MIN,
                           "budget_rss_mb": BUDGET_RSS_MB, "budget_cpu_idle_percent": BUDGET_CPU_PERCENT,
                           "replan_window_s": [before_s, after_s]}
    tmp = Path(tempfile.mkdtemp(prefix="hg-serve-planner-", dir=tmp_root))
    hub = None
    try:
        cfg, data = tmp / "homegrid.toml", tmp / "data"
        cfg.write_text(CONFIG)
        start = (datetime.now(UTC) - timedelta(days=days)).date().isoformat()
        sim = run_child(homegrid_cmd("simulate", "--config", str(cfg), "--data-dir", str(data), "--create",
                                     "--start", start, "--days", str(days + 2)), env=child_env(tmp))
        if sim.returncode != 0:
            raise RuntimeError(f"homegrid simulate failed:\n{sim.stderr[-3000:]}")
        res["simulate"] = {"start": start, "wall_s": sim.wall_s, "peak_rss_mib": sim.max_rss_kib / 1024}
        log(f"serve-planner: simulated from {start} to now in {sim.wall_s:.1f} s")
        port = influx.free_port()
        serve_log = tmp / "serve.log"
        hub, res["ready_s"] = start_serve(["--config", str(cfg), "--data-dir", str(data)], port, tmp, serve_log, 300)
        watch = LogWatch(serve_log)
        sampler = Sampler(hub.pid)
        t_end = time.monotonic() + seconds
        while True:
            sampler.sample()
            watch.read()
            if time.monotonic() >= t_end:
                break
            time.sleep(max(0.0, min(1.0, t_end - time.monotonic())))
        if hub.poll() is not None:
            raise RuntimeError(f"homegrid serve ended early:\n{serve_log.read_text()[-3000:]}")
        out = sampler.summary()
        w0 = sampler.cpu[0][0]
        in_window = [p for p in watch.plans if p["seen"] >= w0]
        out.update(cpu_between_replans(sampler.cpu, [p["seen"] for p in in_window], before_s, after_s))
        out["replans"] = len(in_window)
        # the resident set once a minute [MB]: whether it settles or keeps growing with the re-plans
        out["rss_per_minute_mb"] = [round(kib * 1024 / 1e6, 1) for kib in sampler.rss_kib[::60]]
        out["plans_seen"] = [{k: (round(v - w0, 1) if k == "seen" else v) for k, v in p.items()} for p in watch.plans]
        commands = _json(port, "/api/v1/planner/commands")
        out["commands"] = [{k: c[k] for k in ("time", "device", "command", "outcome")} for c in commands["commands"]]
        out["planning"] = commands.get("planning")
        res["homegrid"] = out
        log(f"serve-planner: RSS max {out['rss_max_mb']:.1f} MB (peak incl. start {out['peak_rss_incl_startup_mb']:.1f}"
            f" MB), CPU {out['cpu_percent']:.2f} % over {out['seconds']:.0f} s, {out['cpu_idle_percent']:.2f} % "
            f"between {out['replans']} re-plans, {len(out['commands'])} commands")
    finally:
        stop_serve(hub)
        shutil.rmtree(tmp, ignore_errors=True)
    return res


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seconds", type=float, default=900.0, help="measuring window (default 900)")
    p.add_argument("--days", type=float, default=28.0, help="days of simulated history first (default 28)")
    p.add_argument("--replan-before", type=float, default=20.0,
                   help="seconds before a re-plan's log line left out of 'between re-plans' (default 20)")
    p.add_argument("--replan-after", type=float, default=10.0,
                   help="seconds after a re-plan's log line left out of 'between re-plans' (default 10)")
    p.add_argument("--tmp", help="folder for the store (default the system temp folder)")
    args = p.parse_args(argv)
    print(json.dumps(run(args.seconds, args.days, args.replan_before, args.replan_after, args.tmp), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
