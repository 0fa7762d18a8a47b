"""What one ``/api/v1`` reply costs the hub: the serve process's CPU per request, beside the wall-clock median (a
diagnostic, issue 15).

``homegrid serve`` on a data dir (a store made by ``homegrid simulate``), one keep-alive client asking each request
worked out again (``Cache-Control: no-cache``), as ``bench_store.py`` times it. The process's user + system time
over a loop, divided by its requests, is not charged for the time a busy host steals from the machine, so two
checkouts compared one after the other stay comparable when the wall clock does not. Another checkout's serve runs
from the same venv through ``PYTHONPATH`` (the bench's children inherit it)::

    .venv/bin/homegrid simulate --data-dir /tmp/y1 --create --start 2025-01-01 --days 365
    .venv/bin/python bench/diag_serve_cpu.py /tmp/y1 --label new
    PYTHONPATH=/path/to/old/checkout .venv/bin/python bench/diag_serve_cpu.py /tmp/y1 --label old

``--views charts`` (default): the day of minutes, the month of hours and the year of days the web app's charts
ask for, over every other day of the store's first year; ``--views year``: the year view's outages, report and
month bins; ``--views dayview``: the five requests the web app's day view makes (its minute chart, outages, report,
hourly bars and prices), over the same days.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

import influx
from bench_store import BAR_FIELDS, DAY_FIELDS, Hub


def per_request(hub: Hub, paths: list[str], warmup: int = 3) -> str:
    """The wall median and the serve process's and this client's CPU per request of ``paths``, as a line."""
    for path in paths[:warmup]:
        hub.get(path, fresh=True)
    walls = []
    served, asked = influx.cpu_seconds(hub.proc.pid), time.process_time()
    for path in paths:
        t0 = time.perf_counter()
        hub.get(path, fresh=True)
        walls.append(time.perf_counter() - t0)
    server = (influx.cpu_seconds(hub.proc.pid) - served) / len(paths) * 1e3
    client = (time.process_time() - asked) / len(paths) * 1e3
    return f"{statistics.median(walls) * 1e3:.2f} ms (server CPU {server:.2f}, client CPU {client:.2f})"


def views(kind: str, first: date) -> dict[str, list[str]]:
    """The requests timed, by name."""
    days = [first + timedelta(days=i) for i in range(5, 360, 2)]
    day, bars = "&fields=" + ",".join(DAY_FIELDS), "&fields=" + ",".join(BAR_FIELDS)
    year = f"from={first}&to={first + timedelta(days=364)}"
    if kind == "dayview":
        return {"minutes": [f"/api/v1/energy?from={d}&to={d}&step=minute{day}" for d in days],
                "outages": [f"/api/v1/outages?from={d}&to={d}" for d in days],
                "report": [f"/api/v1/report?from={d}&to={d}" for d in days],
                "hours": [f"/api/v1/energy?from={d}&to={d}&step=hour{bars}" for d in days],
                "prices": [f"/api/v1/prices?day={d}" for d in days]}
    if kind == "year":
        return {"outages": [f"/api/v1/outages?{year}"] * 15, "report": [f"/api/v1/report?{year}"] * 15,
                "bins": [f"/api/v1/energy?{year}&step=month{bars}"] * 15}
    return {"day": [f"/api/v1/energy?from={d}&to={d}&step=minute{day}" for d in days],
            "month": [f"/api/v1/energy?from={d.replace(day=1)}&to={d.replace(day=28)}&step=hour{bars}" for d in days],
            "year": [f"/api/v1/energy?{year}&step=day{bars}"] * 150}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("data_dir", type=Path, help="a store made by homegrid simulate")
    p.add_argument("--label", default="", help="printed before each line (old, new ...)")
    p.add_argument("--views", choices=("charts", "year", "dayview"), default="charts")
    p.add_argument("--first", type=date.fromisoformat, default=date(2025, 1, 1), help="the store's first day")
    args = p.parse_args(argv)
    hub = Hub(args.data_dir, Path(tempfile.mkdtemp(prefix="hg-serve-cpu-")))
    try:
        for name, paths in views(args.views, args.first).items():
            print(args.label, name, per_request(hub, paths), flush=True)
    finally:
        hub.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
