"""Budget 3: with two years stored, chart and report queries under 20 ms median and 50 ms p95.

The store: ``homegrid simulate`` of two years at 1-minute steps (the virtual home),
or, when the virtual home is not available (or ``--source synthetic``), two years
of synthetic 1-minute readings written through ``Recorder.ingest_bulk``.

homegrid, in process (as the API calls them):
- ``day``:    ``Queries.series("minute", day)``  a local day at 1-minute points (1440 rows)
- ``month``:  ``Queries.series("hour", month)``  a local month of hours
- ``year``:   ``Queries.series("day", year)``    365 local days
- ``report``: ``Queries.report(first, last)``    a year-long energy report

InfluxDB 1.6 gets the same readings (read back from the homegrid store) in
``powerwall.raw.http`` and is queried two ways, over HTTP with the JSON parsed:
- ``raw``: InfluxQL over the raw readings: ``mean() GROUP BY time(1m)``; the
  month, year and report as ``integral()/3600`` of the power split into import
  and export parts (Powerwall-Dashboard's ``abs((1+x/abs(x))*x/2)``), grouped by
  ``time(1h)``, ``time(1d) tz('America/New_York')`` and over the whole year;
- ``pwd``: Powerwall-Dashboard's downsampled retention policies (filled from raw
  with its continuous queries' statements): ``autogen.http`` 1-minute means,
  ``kwh.http`` hourly kWh, ``daily.http`` daily kWh, the report as ``sum()`` of days.

Each query runs ``--repeats`` times (default 200, fewer when one kind would take
longer than ``--max-seconds``) over random days, months and year starts (same
for every system).

    .venv/bin/python bench/bench_queries.py                  # two years, 200 repeats
    .venv/bin/python bench/bench_queries.py --days 60 --repeats 50
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from calendar import monthrange
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

sys.path.insert(0, str(Path(__file__).resolve().parent))

import influx
import synth
from budgets import limit
from common import MIB, child_env, file_size, homegrid_cmd, log, percentiles, ratio, run_child

TZ = ZoneInfo("America/New_York")  # homegrid's default site zone, and the one used in InfluxQL
START = date(2024, 1, 1)
BUDGET_MEDIAN_MS = limit("queries.day.median_ms")
BUDGET_P95_MS = limit("queries.day.p95_ms")
KINDS = ("day", "month", "year", "report")


def virtual_home_available() -> tuple[bool, str]:
    try:
        from homegrid.devices.virtual import VirtualHome  # noqa: F401
    except ImportError as exc:
        return False, f"homegrid.devices.virtual.VirtualHome is not available ({exc})"
    return True, ""


# building the stores ------------------------------------------------------------------------


def build_homegrid(data_dir: Path, days: int, source: str, tmp: Path, log=log) -> dict:
    """Fill a store with ``days`` of 1-minute history; returns how (and how long it took)."""
    if source == "auto":
        source = "simulate" if virtual_home_available()[0] else "synthetic"
    t0 = time.perf_counter()
    if source == "simulate":
        r = run_child(homegrid_cmd("simulate", "--start", START.isoformat(), "--days", str(days),
                                   "--create", "--data-dir", str(data_dir)), env=child_env(tmp))
        if r.returncode != 0:
            raise RuntimeError(f"homegrid simulate failed: {r.stderr[-2000:]}")
        info = {"source": "simulate", "output": r.stdout.strip(), "peak_rss_mib": r.max_rss_kib / 1024}
    else:
        from homegrid.hub.recorder import Recorder
        from homegrid.hub.service import open_store
        from homegrid.readings import ReadingFrame

        store = open_store(data_dir, synchronous="NORMAL")
        rec = Recorder(store, TZ)
        start = datetime.combine(START, datetime.min.time(), tzinfo=TZ).astimezone(UTC)

        def frames():
            for t, cols in synth.chunks(start, days * 1440, 60, seed=2024):
                yield ReadingFrame(t * 1000, cols)

        res = rec.ingest_bulk(frames())
        store.checkpoint()
        store.close()
        info = {"source": "synthetic (Recorder.ingest_bulk)", "rows": res[0] if res else 0}
    info["build_s"] = time.perf_counter() - t0
    db = data_dir / "homegrid.db"
    info["disk_bytes"] = file_size(db, Path(f"{db}-wal"), Path(f"{db}-shm"))
    log(f"queries: homegrid store ({info['source']}) built in {info['build_s']:.1f} s, "
        f"{info['disk_bytes'] / MIB:.0f} MiB")
    return info


def store_line_protocol(data_dir: Path, out: Path) -> tuple[int, int, int]:
    """Write a homegrid store's raw readings as line protocol; returns (lines, first_s, last_s)."""
    from homegrid.hub.service import open_store

    store = open_store(data_dir)
    span = store.time_range()
    if span is None:
        raise RuntimeError("the homegrid store is empty")
    lines = 0
    with open(out, "wb") as f:
        t = span[0]
        while t <= span[1]:
            frame = store.read_readings(t, t + 31 * 86_400_000)
            t += 31 * 86_400_000
            if len(frame) == 0:
                continue
            arr = _frame_lines(frame)
            lines += len(arr)
            f.write(synth._lines_bytes(arr))
    store.close()
    return lines, span[0] // 1000, span[1] // 1000


def _frame_lines(frame) -> pa.Array:
    parts: list = []
    any_value = np.zeros(len(frame), dtype=bool)
    # every column the store holds (the virtual home adds energy counters and grid status), so both
    # stores keep the same information; the six channels get Powerwall-Dashboard-like field names
    for name, col in frame.columns.items():
        field = synth.INFLUX_FIELDS.get(name, name)
        ok = ~np.isnan(col)
        any_value |= ok
        text = pc.binary_join_element_wise(f",{field}=", pc.cast(pa.array(col), pa.string()), "")
        parts.append(pc.if_else(pa.array(ok), text, ""))
    fields = pc.utf8_slice_codeunits(pc.binary_join_element_wise(*parts, ""), 1)
    lines = pc.binary_join_element_wise("http ", fields, " ", pc.cast(pa.array(frame.time_ms // 1000), pa.string()),
                                        "")
    return lines.filter(pa.array(any_value))


# the queries ---------------------------------------------------------------------------------


def _picks(first: date, last: date, n: int, seed: int = 7) -> dict[str, list]:
    """Random days, months and year starts fully inside ``[first, last]``."""
    rng = np.random.default_rng(seed)
    span = (last - first).days
    days = [first + timedelta(days=int(k)) for k in rng.integers(0, span + 1, n)]
    months = []
    m0 = date(first.year, first.month, 1) if first.day == 1 else _next_month(first)
    all_months = []
    m = m0
    while date(m.year, m.month, monthrange(m.year, m.month)[1]) <= last:
        all_months.append(m)
        m = _next_month(m)
    if all_months:
        months = [all_months[int(k)] for k in rng.integers(0, len(all_months), n)]
    year_span = span - 364
    years = [first + timedelta(days=int(k)) for k in rng.integers(0, year_span + 1, n)] if year_span >= 0 else []
    return {"day": days, "month": months, "year": years}


def _next_month(d: date) -> date:
    return date(d.year + (d.month == 12), d.month % 12 + 1, 1)


def _month_last(m: date) -> date:
    return date(m.year, m.month, monthrange(m.year, m.month)[1])


def _bounds(first: date, last: date) -> tuple[int, int]:
    from homegrid.timezones import local_day_bounds

    return local_day_bounds(first, TZ)[0], local_day_bounds(last, TZ)[1]


def _time(fn: Callable[[object], object], args: list, max_seconds: float, warmup: int = 3) -> dict:
    for a in args[:warmup]:
        fn(a)
    samples = []
    deadline = time.perf_counter() + max_seconds
    for a in args:
        t0 = time.perf_counter()
        fn(a)
        samples.append(time.perf_counter() - t0)
        if time.perf_counter() > deadline and len(samples) >= 10:
            break
    return percentiles(samples)


def homegrid_queries(data_dir: Path, picks: dict, max_seconds: float) -> dict:
    from homegrid.hub.queries import Queries
    from homegrid.hub.service import open_store

    store = open_store(data_dir)
    q = Queries(store, TZ)
    out = {}
    if picks["day"]:
        out["day"] = _time(lambda d: q.series("minute", *_bounds(d, d)), picks["day"], max_seconds)
    if picks["month"]:
        out["month"] = _time(lambda m: q.series("hour", *_bounds(m, _month_last(m))), picks["month"], max_seconds)
    if picks["year"]:
        out["year"] = _time(lambda y: q.series("day", *_bounds(y, y + timedelta(days=364))), picks["year"],
                            max_seconds)
        out["report"] = _time(lambda y: q.report(y, y + timedelta(days=364)), picks["year"], max_seconds)
    # sanity: row counts of one of each
    d = picks["day"][0]
    out["rows"] = {"day": len(q.series("minute", *_bounds(d, d))[0])}
    if picks["year"]:
        y = picks["year"][0]
        out["rows"]["year"] = len(q.series("day", *_bounds(y, y + timedelta(days=364)))[0])
        rep = q.report(y, y + timedelta(days=364))
        out["report_sample"] = {"from": rep["from"], "to": rep["to"], "energy_wh": rep["energy_wh"]}
    store.close()
    return out


_E = ("home", "solar", "from_pw", "to_pw", "from_grid", "to_grid", "ev")


def influx_queries(ix: influx.Influx, picks: dict, max_seconds: float,
                   variants: tuple[str, ...] = ("raw", "pwd")) -> dict:
    split = influx._SPLIT
    integ = ", ".join(f"integral({f})/3600 AS {f}" for f in _E)

    def w(a_ms: int, b_ms: int) -> str:
        return f"time >= {a_ms}ms AND time < {b_ms}ms"

    def raw_day(d: date) -> object:
        where = w(*_bounds(d, d))
        return ix.query("SELECT mean(solar), mean(home), mean(grid), mean(battery), mean(soc), mean(ev) "
                        f"FROM raw.http WHERE {where} GROUP BY time(1m)")

    def raw_integrals(a: date, b: date, group: str) -> object:
        where = w(*_bounds(a, b))
        return ix.query(f"SELECT {integ} FROM (SELECT {split} FROM raw.http WHERE {where}) WHERE {where}{group}")

    def pwd_day(d: date) -> object:
        return ix.query("SELECT home, solar, from_pw, to_pw, from_grid, to_grid, ev, percentage "
                        f"FROM autogen.http WHERE {w(*_bounds(d, d))}")

    def pwd_rows(rp: str, a: date, b: date) -> object:
        return ix.query(f"SELECT {', '.join(_E)} FROM {rp}.http WHERE {w(*_bounds(a, b))}")

    def pwd_report(a: date, b: date) -> object:
        return ix.query(f"SELECT {', '.join(f'sum({f}) AS {f}' for f in _E)} FROM daily.http "
                        f"WHERE {w(*_bounds(a, b))}")

    tzg = f" tz('{influx.TZ}')"
    year = timedelta(days=364)
    queries: dict[str, dict[str, tuple[str, Callable[[Any], object]]]] = {
        "raw": {"day": ("day", raw_day),
                "month": ("month", lambda m: raw_integrals(m, _month_last(m), " GROUP BY time(1h)" + tzg)),
                "year": ("year", lambda y: raw_integrals(y, y + year, " GROUP BY time(1d)" + tzg)),
                "report": ("year", lambda y: raw_integrals(y, y + year, ""))},
        "pwd": {"day": ("day", pwd_day),
                "month": ("month", lambda m: pwd_rows("kwh", m, _month_last(m))),
                "year": ("year", lambda y: pwd_rows("daily", y, y + year)),
                "report": ("year", lambda y: pwd_report(y, y + year))},
    }
    return {variant: {kind: _time(fn, picks[pick], max_seconds)
                      for kind, (pick, fn) in queries[variant].items() if picks[pick]}
            for variant in variants}


# the benchmark -------------------------------------------------------------------------------


def run(days: int = 730, repeats: int = 200, source: str = "auto", use_influx: bool = True,
        max_seconds: float = 30.0, tmp_root: str | None = None, log=log) -> dict:
    tmp = Path(tempfile.mkdtemp(prefix="hg-queries-", dir=tmp_root))
    res: dict = {"days": days, "repeats": repeats, "budget_median_ms": BUDGET_MEDIAN_MS,
                 "budget_p95_ms": BUDGET_P95_MS}
    try:
        data_dir = tmp / "data"
        res["store"] = build_homegrid(data_dir, days, source, tmp, log)
        # the store holds whole local days from START (simulate starts at local midnight)
        picks = _picks(START, START + timedelta(days=days - 1), repeats)
        res["homegrid"] = homegrid_queries(data_dir, picks, max_seconds)
        for k in KINDS:
            if k in res["homegrid"]:
                r = res["homegrid"][k]
                log(f"queries: homegrid {k:<6} median {r['median_ms']:.2f} ms, p95 {r['p95_ms']:.2f} ms (n={r['n']})")
        res["influx"] = influx.skipped(use_influx, log) or _influx_side(data_dir, tmp, picks, max_seconds, log)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    res["ratios"] = {}
    for variant in ("raw", "pwd"):
        iv = res.get("influx", {}).get("queries", {}).get(variant, {})
        for k in KINDS:
            h = res["homegrid"].get(k)
            if h and k in iv:
                res["ratios"][f"{k}_median_vs_{variant}"] = ratio(h["median_ms"], iv[k]["median_ms"])
                res["ratios"][f"{k}_p95_vs_{variant}"] = ratio(h["p95_ms"], iv[k]["p95_ms"])
    res["ratios"]["disk"] = ratio(res["store"]["disk_bytes"], res.get("influx", {}).get("disk_bytes"))
    return res


def _influx_side(data_dir: Path, tmp: Path, picks: dict, max_seconds: float, log) -> dict:
    lp = tmp / "readings.lp"
    t0 = time.perf_counter()
    lines, first_s, last_s = store_line_protocol(data_dir, lp)
    out: dict = {"lines": lines, "export_s": time.perf_counter() - t0}
    with influx.Influx(root=str(tmp)) as ix:
        ix.setup_powerwall()
        t0 = time.perf_counter()
        ix.write_file(lp)
        out["write_s"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        ix.downsample(first_s, last_s + 1)
        out["downsample_s"] = time.perf_counter() - t0
        log(f"queries: influx write {out['write_s']:.1f} s, downsampling {out['downsample_s']:.1f} s")
        out["wal_flush_wait_s"] = ix.wait_wal_flushed(timeout_s=120)
        size = ix.size()
        out["disk_bytes"] = size["data"] + size["wal"]
        out["disk_detail"] = size
        out["queries"] = influx_queries(ix, picks, max_seconds)
        out["influxd_peak_rss_mib"] = influx.rss_kib(ix.pid)[1] / 1024
    for variant in ("raw", "pwd"):
        for k in KINDS:
            r = out["queries"][variant].get(k)
            if r:
                log(f"queries: influx {variant} {k:<6} median {r['median_ms']:.2f} ms, p95 {r['p95_ms']:.2f} ms "
                    f"(n={r['n']})")
    lp.unlink(missing_ok=True)
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--days", type=int, default=730, help="days of 1-minute history (default 730)")
    p.add_argument("--repeats", type=int, default=200, help="runs of each query (default 200)")
    p.add_argument("--max-seconds", type=float, default=30.0,
                   help="stop a query kind after this long (at least 10 runs)")
    p.add_argument("--source", choices=("auto", "simulate", "synthetic"), default="auto",
                   help="simulate: homegrid simulate; synthetic: generated readings; auto: simulate if available")
    p.add_argument("--no-influx", action="store_true", help="skip the InfluxDB side")
    p.add_argument("--tmp", help="folder for the stores (default the system temp folder)")
    args = p.parse_args(argv)
    res = run(args.days, args.repeats, args.source, not args.no_influx, args.max_seconds, args.tmp)
    print(json.dumps(res, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
