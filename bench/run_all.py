"""Run every benchmark, homegrid side by side with InfluxDB 1.6, and print the table.

Writes ``bench/out/results.json`` (everything measured) and ``bench/out/results.md``
(the table). At full size it takes about 30 minutes on 2 cores (fuzz apart).

    .venv/bin/python bench/run_all.py                 # full size
    .venv/bin/python bench/run_all.py --quick         # small sizes, about 7 minutes
    .venv/bin/python bench/run_all.py --only import,queries --no-influx
    .venv/bin/python bench/run_all.py --check --from bench/out/results.json   # judge a run already made
    .venv/bin/python bench/run_all.py --check         # full size; RESULTS.md's head section; exit 1 on a miss
    .venv/bin/python bench/run_all.py --only planner --planner-from bench/out/planner.json   # issue 14's figures

``--check`` judges every figure against ``budgets.BUDGETS`` (``check.py``), writes the head section of
``bench/RESULTS.md`` (between its markers; the hand-written history below stays) and exits 1 when a
binding budget is missed at the size it is stated for, or a bench failed. ``fuzz`` (100,000 cases a test,
hours) runs only when named in ``--only``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_bill
import bench_fuzz
import bench_gateways
import bench_import
import bench_load
import bench_outages
import bench_planner
import bench_queries
import bench_serve
import bench_serve_planner
import bench_simulate
import bench_store
import bench_web
import bench_web_money
import check
from budgets import limit
from budgets import text as budget_text
from common import BENCH, MIB, OUT, fmt, log, machine, ratio, verdict

BENCHES = ("simulate", "import", "queries", "serve", "gateways", "outages", "web", "load", "bill", "money")
#: run only when named in --only: 100,000 cases a test take hours; the planner's homegrid backtests take about
#: 20 minutes on 2 cores (its emhass rows are the runs kept in bench/out/planner/, made by bench_planner.py); the live
#: hub with the planner on is watched for 15 minutes (2 with --quick); the store at 1, 2, 5 and 10 years beside
#: InfluxDB and Parquet, and the 1-s import's bytes per row (issue 15), take over an hour
OPTIONAL = ("fuzz", "planner", "serve_planner", "store")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true",
                   help="small sizes: 30 simulated days, 1 M import rows, 400 query days, 30 s serve, "
                        "60 gateway polls, a 60 s fleet, 61 days of outages and bench_web.py --quick")
    p.add_argument("--only", default=",".join(BENCHES),
                   help=f"comma-separated subset of {','.join(BENCHES + OPTIONAL)} (default all but fuzz)")
    p.add_argument("--no-influx", action="store_true", help="skip the InfluxDB side everywhere")
    p.add_argument("--simulate-days", type=float)
    p.add_argument("--import-rows", type=int)
    p.add_argument("--downsample-days", type=float, help="days of InfluxDB downsampling timed in the import bench")
    p.add_argument("--query-days", type=int)
    p.add_argument("--query-repeats", type=int, default=200)
    p.add_argument("--serve-seconds", type=float)
    p.add_argument("--gateway-polls", type=int, help="readings committed in the poll-to-store latency run")
    p.add_argument("--gateway-interval", type=float, default=2.0, help="poll interval of the latency run [s]")
    p.add_argument("--fleet-gateways", type=int, default=200)
    p.add_argument("--fleet-seconds", type=float)
    p.add_argument("--outage-days", type=float, help="days of 400 outages/year simulated in the outage bench")
    p.add_argument("--load-seconds", type=float, help="each window of the load bench (default 30; 10 with --quick)")
    p.add_argument("--fuzz-examples", type=int, help="hypothesis cases a fuzz test (default 100,000; 1,000 quick)")
    p.add_argument("--store-years", help="sizes of the store bench in years (default 1,2,5,10; 0.1 with --quick)")
    p.add_argument("--store-import-rows", type=int,
                   help="rows of the store bench's 1-s import (default 31,536,000; 1,000,000 with --quick; 0: none)")
    p.add_argument("--planner-from", type=Path,
                   help="with --only planner: take bench_planner.py's planner.json instead of running it")
    p.add_argument("--tmp", help="folder for stores (default the system temp folder)")
    p.add_argument("--out", type=Path, default=OUT / "results.json")
    p.add_argument("--check", action="store_true",
                   help="judge the figures against bench/budgets.py, write RESULTS.md's head section, "
                        "exit 1 when a budget is missed")
    p.add_argument("--results-md", type=Path, default=BENCH / "RESULTS.md", help="the file --check writes")
    p.add_argument("--from", dest="saved", type=Path,
                   help="judge a results.json written before (with --check) instead of running the benches")
    args = p.parse_args(argv)
    if args.saved is not None:
        return _judge(json.loads(args.saved.read_text()), args.results_md) if args.check else 0
    q = args.quick
    sizes = {
        "simulate_days": args.simulate_days or (30 if q else 365),
        "import_rows": args.import_rows or (1_000_000 if q else bench_import.YEAR_ROWS),
        "downsample_days": args.downsample_days if args.downsample_days is not None else (3 if q else 30),
        "query_days": args.query_days or (400 if q else 730),
        "query_repeats": args.query_repeats,
        "serve_seconds": args.serve_seconds or (30 if q else 120),
        "gateway_polls": args.gateway_polls or (60 if q else 300),
        "gateway_interval_s": args.gateway_interval,
        "fleet_gateways": args.fleet_gateways,
        "fleet_seconds": args.fleet_seconds or (60 if q else 180),
        "outage_days": args.outage_days or (61 if q else 365),
        "load_days": bench_load.QUICK["days"] if q else 30,
        "load_seconds": args.load_seconds or (bench_load.QUICK["seconds"] if q else 30.0),
        "fuzz_examples": args.fuzz_examples or (1_000 if q else 100_000),
        "store_years": args.store_years or ",".join(f"{y:g}" for y in (bench_store.QUICK_YEARS if q else
                                                                        bench_store.YEARS)),
        "store_import_rows": args.store_import_rows if args.store_import_rows is not None else (
            1_000_000 if q else bench_import.YEAR_ROWS),
    }
    only = [b.strip() for b in args.only.split(",") if b.strip()]
    use_influx = not args.no_influx
    results: dict = {"machine": machine(), "sizes": sizes, "argv": sys.argv[1:] if argv is None else argv,
                     "loadavg": {"start": os.getloadavg()}}
    log(f"machine: {results['machine']}")
    t_all = time.perf_counter()
    for name in only:
        t0 = time.perf_counter()
        log(f"--- {name}")
        try:
            if name == "simulate":
                results[name] = bench_simulate.run(sizes["simulate_days"], use_influx, args.tmp)
            elif name == "import":
                results[name] = bench_import.run(sizes["import_rows"], use_influx, sizes["downsample_days"],
                                                 args.tmp)
            elif name == "queries":
                results[name] = bench_queries.run(sizes["query_days"], sizes["query_repeats"], "auto",
                                                  use_influx, 30.0, args.tmp)
            elif name == "serve":
                results[name] = bench_serve.run(sizes["serve_seconds"], True, use_influx, args.tmp)
            elif name == "gateways":  # issue 3: no peer program, absolute figures against the budgets
                results[name] = bench_gateways.run(sizes["gateway_polls"], sizes["gateway_interval_s"],
                                                   sizes["fleet_gateways"], sizes["fleet_seconds"], tmp_root=args.tmp)
            elif name == "outages":  # issue 4: detection against the virtual home's ground truth, no peer
                results[name] = bench_outages.run(sizes["outage_days"], live_per_kind=1 if q else 8,
                                                  tmp_root=args.tmp)
            elif name == "web":  # issue 5: Chromium against the hub; no peer installable, figures against the budgets
                results[name] = bench_web.run(**(bench_web.QUICK if q else {}), tmp_root=args.tmp)
            elif name == "load":  # issue 10: 200 API clients and 50 watchers against one hub, no peer
                results[name] = bench_load.run(sizes["load_days"], sizes["load_seconds"], tmp_root=args.tmp)
            elif name == "bill":  # issue 13: the bill's speed, NREL SAM's PySAM.Utilityrate5 side by side
                results[name] = bench_bill.run(5 if q else 20)
            elif name == "money":  # issue 13: the Money view's first paint in Chromium, no peer
                results[name] = bench_web_money.run(60 if q else 730, 5 if q else 20, args.tmp)
            elif name == "planner" and args.planner_from:  # a bench_planner.py run's planner.json
                results[name] = json.loads(args.planner_from.read_text())
            elif name == "planner":  # issue 14: shares of the perfect-foresight saving, emhass's kept runs beside
                results[name] = bench_planner.run(batteries="10" if q else "10,13.5", jobs=2,
                                                  days=30 if q else None)
            elif name == "serve_planner":  # issue 14: the live hub with the planner on, no peer
                results[name] = bench_serve_planner.run(120 if q else 900, 7 if q else 28, tmp_root=args.tmp)
            elif name == "store":  # issue 15: bytes per row and HTTP queries, InfluxDB and Parquet side by side
                results[name] = bench_store.run(tuple(float(y) for y in sizes["store_years"].split(",")),
                                                sizes["query_repeats"], use_influx,
                                                import_rows=sizes["store_import_rows"], tmp_root=args.tmp)
            elif name == "fuzz":  # issue 10: the fuzz tests at 100,000 cases each
                results[name] = bench_fuzz.run(sizes["fuzz_examples"])
            else:
                raise SystemExit(f"unknown bench {name!r}")
        except Exception as exc:  # a failing bench must not lose the others' figures
            log(f"{name}: FAILED: {exc!r}")
            results[name] = {"error": repr(exc)}
        results[name]["bench_s"] = time.perf_counter() - t0
    results["total_s"] = time.perf_counter() - t_all
    results["loadavg"]["end"] = os.getloadavg()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2, default=str))
    table = render(results)
    args.out.with_suffix(".md").write_text(table + "\n")
    print(table)
    log(f"total {results['total_s']:.0f} s; wrote {args.out} and {args.out.with_suffix('.md')}")
    return _judge(results, args.results_md) if args.check else 0


def _judge(results: dict, results_md: Path) -> int:
    """Verdicts on the figures, written as RESULTS.md's head section; 1 when a budget is missed."""
    verdicts = check.check(results)
    section = check.head_section(results, verdicts)
    check.write_head(results_md, section)
    print(section)
    log(f"check: wrote the head section of {results_md}")
    return check.exit_status(verdicts)


def render(r: dict) -> str:
    """The figures as a Markdown table: homegrid, InfluxDB, ratio, budget, verdict."""
    rows: list[tuple[str, ...]] = []

    def add(what: str, hg: object, ix: object, rat: float | None, budget: str = "", ok: str = "") -> None:
        rows.append((what, fmt(hg), fmt(ix), "-" if rat is None else f"{rat:.3g}", budget, ok))

    s = r.get("simulate", {})
    if "homegrid" in s:
        h, i = s["homegrid"], s.get("influx", {})
        if "wall_s" in h:
            add(f"1 simulate {fmt(s['days'])} d at 1 min: wall [s] (Influx: write + downsample same rows)",
                h["wall_s"], i.get("store_s"), ratio(h["wall_s"], i.get("store_s")), budget_text("simulate.wall_s"),
                verdict(h["wall_s"] * 365 / s["days"], s["budget_s"]) if s["days"] >= 365 else
                f"({verdict(h['wall_s'] * 365 / s['days'], s['budget_s'])} scaled)")
            add("1 simulate: peak RSS [MiB]", h["peak_rss_mib"], None, None)
        else:
            add("1 simulate", h.get("skipped") or h.get("error"), None, None)
    im = r.get("import", {})
    if "homegrid" in im:
        h, i = im["homegrid"], im.get("influx", {})
        full = im["rows"] >= bench_import.YEAR_ROWS
        if "wall_s" in h:
            tag = "" if full else " (scaled to a year)"
            scale = bench_import.YEAR_ROWS / im["rows"]
            add(f"2 import {im['rows']:,} rows at 1 s: wall [s] (Influx: /write)", h["wall_s"], i.get("write_s"),
                ratio(h["wall_s"], i.get("write_s")), budget_text("import.wall_s"),
                verdict(h["wall_s"] * scale, im["budget_s"]) + tag)
            add("2 import: rows/s", h["rows_per_s"], i.get("rows_per_s"), ratio(h["rows_per_s"], i.get("rows_per_s")))
            add("2 import: peak RSS [MiB] (Influx: influxd VmHWM)", h["peak_rss_mib"], i.get("influxd_peak_rss_mib"),
                ratio(h["peak_rss_mib"], i.get("influxd_peak_rss_mib")), budget_text("import.peak_rss_mib"),
                verdict(h["peak_rss_mib"], im["budget_rss_mib"]))
            add("2 import: on disk [MiB] (homegrid incl. rollups; Influx raw only)", h["disk_bytes"] / MIB,
                i.get("disk_bytes", 0) / MIB or None, ratio(h["disk_bytes"], i.get("disk_bytes")))
            ds = i.get("downsample")
            if ds:
                add(f"2 Influx downsampling (PWD CQ statements), s per day, {fmt(ds['days'])} days timed",
                    None, ds["s_per_day"], None)
        else:
            add("2 import", h.get("error"), None, None)
    qs = r.get("queries", {})
    if "homegrid" in qs:
        iq = qs.get("influx", {}).get("queries", {})
        names = {"day": "day at 1 min", "month": "month of hours", "year": "year of days", "report": "year report"}
        for k, label in names.items():
            h = qs["homegrid"].get(k)
            if not h:
                continue
            raw, pwd = iq.get("raw", {}).get(k, {}), iq.get("pwd", {}).get(k, {})
            for stat, budget in (("median_ms", qs["budget_median_ms"]), ("p95_ms", qs["budget_p95_ms"])):
                sname = stat.split("_")[0]
                add(f"3 {label}: {sname} [ms] (Influx raw)", h[stat], raw.get(stat), ratio(h[stat], raw.get(stat)),
                    f"< {budget:g} ms", verdict(h[stat], budget))
                add(f"3 {label}: {sname} [ms] (Influx PWD rollups)", h[stat], pwd.get(stat),
                    ratio(h[stat], pwd.get(stat)))
        i = qs.get("influx", {})
        st = qs.get("store", {})
        add(f"3 store of {qs['days']} d at 1 min: on disk [MiB]", st.get("disk_bytes", 0) / MIB,
            i.get("disk_bytes", 0) / MIB or None, ratio(st.get("disk_bytes"), i.get("disk_bytes")))
        add("3 store: build [s] (homegrid simulate; Influx write + downsample)", st.get("build_s"),
            (i["write_s"] + i["downsample_s"]) if "write_s" in i else None,
            ratio(st.get("build_s"), (i["write_s"] + i["downsample_s"]) if "write_s" in i else None))
    sv = r.get("serve", {})
    if "homegrid" in sv:
        h, i = sv["homegrid"], sv.get("influx", {})
        if "rss_max_mb" in h:
            add(f"4 serve, {fmt(sv['seconds'])} s window: RSS max [MB]", h["rss_max_mb"], i.get("rss_max_mb"),
                ratio(h["rss_max_mb"], i.get("rss_max_mb")), budget_text("serve.rss_max_mb"),
                verdict(h["rss_max_mb"], limit("serve.rss_max_mb")))
            add("4 serve: CPU [% of one core]", h["cpu_percent"], i.get("cpu_percent"),
                ratio(h["cpu_percent"], i.get("cpu_percent")), budget_text("serve.cpu_percent"),
                verdict(h["cpu_percent"], limit("serve.cpu_percent")))
        else:
            add("4 serve", h.get("skipped") or h.get("error"), None, None)
    gw = r.get("gateways", {})
    if "error" in gw:
        add("5 gateways", gw["error"], None, None)
    lat = gw.get("latency")
    if lat:
        p = lat["poll_to_store_ms"]
        what = f"5 poll-to-store, 1 gateway on loopback, {p['count']} polls at {fmt(lat['interval_s'])} s"
        add(f"{what}: p95 [ms]", p["p95"], None, None, f"< {fmt(gw['budget_p95_ms'])} ms",
            verdict(p["p95"], gw["budget_p95_ms"]))
        add("5 poll-to-store: p50 [ms]", p["p50"], None, None)
        add("5 poll-to-store: max [ms]", p["max"], None, None)
    fl = gw.get("fleet")
    if fl:
        head = f"6 {fl['gateways']} gateways at {fmt(fl['interval_s'])} s, one hub process, {fmt(fl['seconds'])} s"
        add(f"{head}: polls, missed, errors", f"{fl['polls']:,}, {fl['missed']}, {fl['errors'] + fl['store_errors']}",
            None, None, "none missed, no error",
            "PASS" if fl["checks"]["no_missed_cycle"] and fl["checks"]["no_errors"] else "MISS")
        add("6 fleet: poll-start interval mean / p95 / max [s]", "{:.3f} / {:.3f} / {:.3f}".format(
            fl["intervals_s"]["mean"], fl["intervals_s"]["p95"], fl["intervals_s"]["max"]), None, None,
            f"{fmt(fl['interval_s'])} ± {fmt(fl['tolerance_s'])} s",
            "PASS" if fl["checks"]["intervals_within_tolerance"] else "MISS")
        add("6 fleet: lag growth behind schedule, steady state [ms]", fl["lag_growth_steady_max_s"] * 1000, None,
            None, f"≤ {fmt(fl['tolerance_s'] * 1000)} ms", "PASS" if fl["checks"]["no_growing_lag"] else "MISS")
        st, whole = fl["poll_to_store_steady_ms"], fl["poll_to_store_ms"]
        add("6 fleet: poll-to-store all sites, steady p50 / p95 / max [ms]",
            f"{fmt(st['p50'])} / {fmt(st['p95'])} / {fmt(st['max'])}", None, None)
        add("6 fleet: poll-to-store all sites, whole run max [ms]", whole["max"], None, None,
            f"< {fmt(fl['interval_s'] * 1000)} ms", "PASS" if fl["checks"]["committed_before_next_poll"] else "MISS")
        add("6 fleet: hub CPU [% of one core]", fl["cpu_percent"], None, None)
        add("6 fleet: hub peak RSS [MiB]", fl["peak_rss_mib"], None, None)
        add("6 fleet: building the sites [s]", fl["build_s"], None, None)
    ou = r.get("outages", {})
    if "error" in ou:
        add("7 outages", ou["error"], None, None)
    for row in bench_outages.summary_rows(ou) if "intervals" in ou or "live" in ou else ():
        add(*row)
    web = r.get("web", {})
    if "error" in web or "skipped" in web:
        add("8 web", web.get("error") or web.get("skipped"), None, None)
    for what, measured, budget, _ratio, ok in bench_web.summary_rows(web):
        add(f"8 {what}", measured, None, None, budget, ok)
    bl = r.get("bill", {})
    if "error" in bl:
        add("13 bill", bl["error"], None, None)
    for row in bench_bill.summary_rows(bl):
        add(*row)
    mo = r.get("money", {})
    if "error" in mo:
        add("10 money", mo["error"], None, None)
    elif mo.get("first_load"):
        p95 = mo["first_load"]["drawn_ms"]["p95"]
        add("10 the Money view's first paint, p95 of cold loads [ms]", p95, None, None, "< 300 ms",
            "PASS" if p95 < 300 else "MISS")
    pl = r.get("planner", {})
    if "error" in pl:
        add("14 planner", pl["error"], None, None)
    for row in bench_planner.summary_rows(pl):
        add(*row)
    sp = r.get("serve_planner", {})
    if "error" in sp:
        add("12 serve with the planner", sp["error"], None, None)
    elif "homegrid" in sp:
        h = sp["homegrid"]
        add(f"12 serve, planner on, {fmt(sp['seconds'])} s window, {h['replans']} re-plans: RSS max [MB]",
            h["rss_max_mb"], None, None, budget_text("planner.serve_rss_mb"),
            verdict(h["rss_max_mb"], limit("planner.serve_rss_mb")))
        add("12 serve, planner on: CPU between re-plans [% of one core]", h["cpu_idle_percent"], None, None,
            budget_text("planner.serve_cpu_idle_percent"),
            verdict(h["cpu_idle_percent"], limit("planner.serve_cpu_idle_percent")))
        add("12 serve, planner on: CPU over the whole window [% of one core]", h["cpu_percent"], None, None)
    st = r.get("store", {})
    if "error" in st:
        add("15 store", st["error"], None, None)
    for row in bench_store.summary_rows(st):
        add(*row)
    head = ("what", "homegrid", "peer: InfluxDB 1.6 (13: PySAM; 14: emhass)", "homegrid/peer", "budget", "verdict")
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
