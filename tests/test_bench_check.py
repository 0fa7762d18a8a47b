"""``bench/run_all.py --check`` on fake results: a miss exits 1, a pass 0; no benchmark runs."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

BENCH = Path(__file__).resolve().parent.parent / "bench"
sys.path.insert(0, str(BENCH))

import budgets  # noqa: E402
import check  # noqa: E402


def simulate(wall_s: float, days: float = 365, influx_s: float | None = 17.9) -> dict[str, Any]:
    influx = {"store_s": influx_s} if influx_s is not None else {"skipped": "influxd is not installed"}
    return {"days": days, "homegrid": {"wall_s": wall_s, "peak_rss_mib": 200.0}, "influx": influx}


def results(**benches: Any) -> dict[str, Any]:
    machine = {"git_commit": "0" * 40, "git_dirty": False, "date": "2026-12-05T14:00:00+00:00", "nproc": 2}
    return {"machine": machine, "sizes": {"simulate_days": 365}, "argv": ["--check"],
            "loadavg": {"start": [0.5, 0.5, 0.5], "end": [1.0, 1.0, 1.0]}, "total_s": 9.0, **benches}


def verdict(vs: list[check.Verdict], figure: str) -> check.Verdict:
    return next(v for v in vs if v.budget.figure == figure)


def test_a_pass_exits_zero() -> None:
    vs = check.check(results(simulate=simulate(8.0)))
    v = verdict(vs, "simulate.wall_s")
    assert (v.status, v.value, v.full_size) == (check.PASS, 8.0, True)
    assert verdict(vs, "simulate.vs_influx").status == check.PASS
    assert verdict(vs, "import.wall_s").status == check.NOT_RUN
    assert check.exit_status(vs) == 0


def test_a_miss_exits_one() -> None:
    vs = check.check(results(simulate=simulate(10.5)))
    assert verdict(vs, "simulate.wall_s").status == check.MISS
    assert check.exit_status(vs) == 1


def test_a_missed_goal_does_not_fail_the_check() -> None:
    vs = check.check(results(simulate=simulate(8.0, influx_s=4.0)))
    v = verdict(vs, "simulate.vs_influx")
    assert v.status == check.MISS and not v.budget.binding
    assert v.text() == "goal not met"
    assert check.exit_status(vs) == 0


def test_without_influx_the_peer_ratio_is_not_measured_not_passed() -> None:
    vs = check.check(results(simulate=simulate(8.0, influx_s=None)))
    v = verdict(vs, "simulate.vs_influx")
    assert v.status == check.NOT_MEASURED
    assert "influxd is not installed" in v.text()
    assert check.exit_status(vs) == 0


def test_a_quick_run_is_scaled_and_does_not_decide() -> None:
    vs = check.check(results(simulate=simulate(1.0, days=30)))
    v = verdict(vs, "simulate.wall_s")
    assert v.status == check.MISS and v.value == pytest.approx(365 / 30)
    assert not v.full_size and v.text() == "(MISS at 30 of 365 days, scaled to 12.2)"
    assert check.exit_status(vs) == 0


def test_a_failed_bench_exits_one() -> None:
    vs = check.check(results(simulate={"error": "RuntimeError('boom')", "bench_s": 1.0}))
    assert verdict(vs, "simulate.wall_s").status == check.FAILED
    assert check.exit_status(vs) == 1


def test_counts_and_lower_bounds() -> None:
    ok = {"runs": [{"api": {"codes": {"200": 90, "404": 5, "429": 5}}, "alive_after": True}], "clients": 200}
    bad = {"runs": [{"api": {"codes": {"200": 90, "500": 1, "ClientConnectorError": 2}}, "alive_after": True}],
           "clients": 200}
    assert check.exit_status(check.check(results(load=ok))) == 0
    vs = check.check(results(load=bad))
    assert verdict(vs, "load.failed_requests").value == 3
    assert check.exit_status(vs) == 1
    b = budgets.Budget("x", 4, "precision", ">=", 0.99)
    assert b.met(0.99) and not b.met(0.98)


def test_every_budget_names_its_issue_and_a_known_figure() -> None:
    known = {"simulate", "import", "queries", "serve", "gateways", "outages", "web", "load", "fuzz", "bill", "money",
             "planner", "store"}
    for b in budgets.BUDGETS:
        assert b.issue > 0 and b.what
        assert b.figure.split(".", 1)[0] in known
    assert len({b.figure for b in budgets.BUDGETS}) == len(budgets.BUDGETS)


def test_head_section_is_written_between_markers_and_keeps_the_history(tmp_path: Path) -> None:
    md = tmp_path / "RESULTS.md"
    md.write_text("# Benchmark results\n\nHand-written history.\n")
    vs = check.check(results(simulate=simulate(8.0)))
    check.write_head(md, check.head_section(results(simulate=simulate(8.0)), vs))
    first = md.read_text()
    assert first.startswith("# Benchmark results\n\n" + check.BEGIN)
    assert "0" * 40 in first and "clean work tree" in first and "| 2 | simulate a year at 1 min | 8 | < 10 s" in first
    assert first.rstrip().endswith("Hand-written history.")
    vs = check.check(results(simulate=simulate(10.5)))
    check.write_head(md, check.head_section(results(simulate=simulate(10.5)), vs))
    second = md.read_text()
    assert second.count(check.BEGIN) == 1 and "| 10.5 | < 10 s | absolute | MISS |" in second
    assert "(exit 1)" in second and second.rstrip().endswith("Hand-written history.")


def store_size(years: float, bytes_per_row: float, day_ms: float = 8.0, influx: bool = True) -> dict[str, Any]:
    """One size of ``bench_store.py``'s results (InfluxDB's rollups answer in 9 ms, Parquet takes 28 B a row)."""
    http = {"day": {"median_ms": day_ms, "p95_ms": day_ms * 2, "wire_bytes_max": 30_000},
            "month": {"median_ms": 3.0, "p95_ms": 4.0}, "year": {"median_ms": 2.0, "p95_ms": 3.0}}
    ratios: dict[str, float] = {"vs_parquet": bytes_per_row / 28.0}
    if influx:
        ratios |= {"vs_influx_raw": bytes_per_row / 45.0,
                   **{f"{k}_http_median_vs_pwd": http[k]["median_ms"] / 9.0 for k in http}}
    return {"years": years, "homegrid": {"bytes_per_row": bytes_per_row, "http": http}, "ratios": ratios,
            "influx": {"bytes_per_row": 45.0} if influx else {"skipped": "InfluxDB skipped at this size: slow"}}


def every_bench() -> dict[str, Any]:
    """One passing figure for every budget, in the shapes the bench scripts return."""
    q = {"median_ms": 5.0, "p95_ms": 6.0}
    pr = {"precision": 1.0, "recall": 1.0}
    blips = {"short_in_log": 4, "short_in_log_found": 4}
    restarts = {"restarts": {"inside": {"lost": 0, "split": 0}, "problems": [], "problem_count": 0, "with_log": True}}
    interval = {"status+log": {"long": pr, "all": pr, "sub_poll": pr, "blips_by_log": blips,
                               "monthly": {"counts_agree": True}},
                "status+partial_log": {"blips_by_log": blips}, "restarts_status+log": restarts,
                "store": restarts}
    view = {"cold": {"ms": {"p95": 120.0}}, "warm": {"ms": {"p95": 110.0}}}
    return {
        "simulate": {**simulate(8.0, influx_s=17.9), "vs_reference": 0.98},
        "import": {"rows": 31_536_000, "homegrid": {"wall_s": 70.0, "peak_rss_mib": 700.0, "disk_bytes": 1},
                   "influx": {"write_s": 75.0, "influxd_peak_rss_mib": 720.0, "disk_bytes": 2}},
        "queries": {"days": 730, "homegrid": {k: q for k in ("day", "month", "year", "report")},
                    "store": {"disk_bytes": 1},
                    "influx": {"disk_bytes": 2, "queries": {"pwd": {k: {"p95_ms": 9.0}
                                                                  for k in ("day", "month", "year", "report")}}}},
        "serve": {"homegrid": {"rss_max_mb": 80.0, "cpu_percent": 0.5},
                  "influx": {"rss_max_mb": 90.0, "cpu_percent": 0.6}},
        "gateways": {"latency": {"poll_to_store_ms": {"p95": 25.0}},
                     "fleet": {"gateways": 200, "interval_s": 5.0, "missed": 0, "errors": 0, "store_errors": 0,
                               "intervals_s": {"n": 9, "max": 5.02, "min": 4.98}, "lag_growth_steady_max_s": 0.003,
                               "poll_to_store_ms": {"max": 226.0}}},
        "outages": {"days": 365, "intervals": {"5": interval, "30": interval}, "live": {"outages": 32, "ok": 32}},
        "web": {"days": 730, "first_load": {"drawn_ms": {"p95": 240.0}, "weight": {"wire_bytes": 50_900}},
                "views": {"summary": {v: view for v in ("day", "week", "month", "year")}},
                "watch": {"fifty_cpu_percent": 1.4}},
        "load": {"clients": 200, "runs": [{"api": {"codes": {"200": 10}}, "alive_after": True}]},
        "fuzz": {"examples": 100_000, "failed_files": 0},
        "bill": {"minutes": 525_600, "hours": 8_760,
                 "homegrid": {"minute": {"median": 150.0}, "hour": {"median": 6.0}},
                 "sam": {"minute_agreement": {"months_off": 0}}},
        "money": {"days": 730, "first_load": {"drawn_ms": {"p95": 278.0}}},
        "planner": {"figures": {"days": 364.0, "mpc_share_min": 0.95, "mpc_above_emhass": 0.04,
                                "mpc_vs_self_consumption": -0.05, "perfect_vs_lp": 1e-8}},
        "store": {"sizes": {f"{y:g}": store_size(y, 30.0) for y in (1, 2, 5, 10)},
                  "import": {"rows": 31_536_000, "homegrid": {"bytes_per_row": 20.0},
                             "ratios": {"vs_parquet": 1.1, "vs_influx_raw": 0.5}}},
        "serve_planner": {"seconds": 900, "homegrid": {"rss_max_mb": 104.0, "cpu_idle_percent": 0.6,
                                                       "cpu_percent": 0.7, "replans": 3}},
    }


def test_every_budget_finds_its_figure_in_the_benches_results() -> None:
    vs = check.check(results(**every_bench()))
    missing = [v.budget.figure for v in vs if v.status != check.PASS]
    assert missing == ["import.vs_beb8b1f"], missing  # the one reference run_all.py never measures
    assert all(v.full_size for v in vs if v.status == check.PASS)
    assert check.exit_status(vs) == 0
    bad = every_bench()
    bad["bill"]["sam"] = {"skipped": "--no-sam"}
    vs = check.check(results(**bad))
    assert verdict(vs, "bill.minute_sam_months_off").status == check.NOT_MEASURED
    bad["bill"]["homegrid"]["minute"]["median"] = 230.0
    assert verdict(check.check(results(**bad)), "bill.minute_ms").status == check.MISS
    bad = every_bench()
    bad["gateways"]["fleet"]["intervals_s"]["max"] = 5.4
    vs = check.check(results(**bad))
    assert verdict(vs, "gateways.fleet_interval_dev_s").status == check.MISS and check.exit_status(vs) == 1


def test_the_money_views_first_paint_is_judged() -> None:
    money = {"days": 730, "first_load": {"drawn_ms": {"p95": 278.0}}}
    fig = check.figures({"money": money})["money.first_paint_p95_ms"]
    assert fig.value == 278.0 and fig.size == 730
    slow = {"days": 730, "first_load": {"drawn_ms": {"p95": 310.0}}}
    verdicts = {v.budget.figure: v for v in check.check({"money": slow})}
    assert verdicts["money.first_paint_p95_ms"].status == "MISS"


def test_the_store_is_judged_on_its_worst_size_at_the_largest() -> None:
    sizes = {"1": store_size(1, 30.0), "10": store_size(10, 40.0, day_ms=11.0)}
    vs = check.check({"store": {"sizes": sizes}})
    bpr = verdict(vs, "store.bytes_per_row")
    assert (bpr.status, bpr.value, bpr.full_size) == (check.PASS, 40.0, True)
    assert verdict(vs, "store.vs_parquet").status == check.MISS  # 40 / 28 > 1.2
    day = verdict(vs, "store.day_http_median_ms")
    assert (day.status, day.value) == (check.MISS, 11.0) and day.decides
    assert verdict(vs, "store.day_http_vs_influx_pwd").status == check.MISS  # 11 ms against 9 ms
    assert verdict(vs, "store.import_bytes_per_row").status == check.NOT_MEASURED
    assert check.exit_status(vs) == 1


def test_a_store_size_without_influx_is_said_so_and_a_small_run_does_not_decide() -> None:
    sizes = {"1": store_size(1, 60.0), "10": store_size(10, 30.0, influx=False)}
    vs = check.check({"store": {"sizes": sizes}})
    peer = verdict(vs, "store.vs_influx_raw")
    assert peer.status == check.MISS and peer.figure is not None and peer.figure.size == 1 and not peer.decides
    quick = check.check({"store": {"sizes": {"0.1": store_size(0.1, 200.0, influx=False)}}})
    assert verdict(quick, "store.bytes_per_row").status == check.MISS and check.exit_status(quick) == 0
    missing = verdict(quick, "store.vs_influx_raw")
    assert missing.status == check.NOT_MEASURED and "skipped at this size" in missing.text()
