"""Budget 13: a year's bill at 1-minute data with a TOU + tier + demand rate in < 200 ms; from the hourly
rollups in < 20 ms. Side by side: NREL SAM's ``PySAM.Utilityrate5`` on the same input.

The input is ``synth.py``'s year at 1 minute (seed 2025), from local midnight of 2018-01-01 in
``America/Phoenix`` (a Monday, no DST: SAM's calendar); each minute's grid power becomes the metered import
and export [Wh]. The hourly rollups are the hours' sums of the minutes' imports and exports, as the store's hour
rollups hold them. The rate: two time-of-use periods (weekdays 16-21 h) in two seasons, two blocks of 250 kWh a
month filled in time order (net billing), $12 a month, flat demand in two blocks and time-of-use demand on the
weekday peak, over 15-minute windows (the issue's default).

homegrid: ``homegrid.tariffs.bill.price_bill`` on the arrays in process (the ``Metered`` built inside the timed
call), median of ``--repeats`` runs after one warm-up. SAM: a fresh ``Utilityrate5`` model, the same series as
``Load.load`` = import and ``SystemOutput.gen`` = export in kW, the rate as ``tests/sam_peer.py`` writes it,
``execute``; timed whole (lists, assign, execute) and ``execute`` alone. SAM has no demand window: its peak is
the highest single step, so the minute run is also priced by homegrid with a 1-minute window, the same rule, and
the two bills compared month by month (the rollups cannot be: SAM nets import against export within each hour).

    .venv/bin/python bench/bench_bill.py
    .venv/bin/python bench/bench_bill.py --repeats 5 --no-sam --no-store

Beside the budgets, the hub's own path is timed (``--no-store`` leaves it out): the same year written into a
store, and ``homegrid.hub.bill.site_bill`` reading the rollups and pricing them, alone and with the two
counterfactual homes.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import synth
from budgets import limit
from common import log

from homegrid.tariffs import (
    DemandCharges,
    DemandTier,
    EnergyRates,
    ExportRule,
    ExportTerms,
    MonthHourSchedule,
    Tariff,
    Tier,
)
from homegrid.tariffs.bill import Metered, price_bill
from homegrid.timezones import HOUR_MS, MINUTE_MS

SITE = "America/Phoenix"
START = datetime(2018, 1, 1, 7, tzinfo=UTC)  # local midnight in SITE, a Monday
MINUTES = 525_600
BUDGET_MINUTE_MS = limit("bill.minute_ms")
BUDGET_HOUR_MS = limit("bill.hour_ms")


def rate(window_min: int = 15, rule: ExportRule = ExportRule.NET_BILLING) -> Tariff:
    """The benchmark's TOU + tier + demand rate (the module's docstring)."""
    peak = [1 if 16 <= h < 21 else 0 for h in range(24)]
    summer = (5, 6, 7, 8)
    weekday = [[p + 2 if m in summer else p for p in peak] for m in range(12)]
    weekend = [[2 if m in summer else 0] * 24 for m in range(12)]
    tiers = {0: (Tier(0.12, 0.04, 250.0), Tier(0.18, 0.03)), 1: (Tier(0.30, 0.08, 250.0), Tier(0.38, 0.07)),
             2: (Tier(0.14, 0.05, 250.0), Tier(0.20, 0.04)), 3: (Tier(0.42, 0.10, 250.0), Tier(0.50, 0.09))}
    demand = DemandCharges(
        window_min, flat=((DemandTier(8.0, 2.0), DemandTier(11.0)),) * 12,
        schedule=MonthHourSchedule([peak] * 12, [[0] * 24] * 12),
        periods={0: (), 1: (DemandTier(4.0, 1.5), DemandTier(6.0))},
    )
    return Tariff("bench TOU + tiers + demand", EnergyRates(MonthHourSchedule(weekday, weekend), tiers),
                  fixed_monthly=12.0, demand=demand, export=ExportTerms(rule))


def minute_year(seed: int = 2025) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The synthetic year at 1 minute: interval starts [ms], import and export [Wh]."""
    t, grid = [], []
    for ts, cols in synth.chunks(START, MINUTES, 60, seed):
        t.append(ts * 1000)
        grid.append(cols["grid_power"])
    t_ms = np.concatenate(t).astype(np.int64)
    g = np.nan_to_num(np.concatenate(grid))
    return t_ms, np.clip(g, 0, None) / 60.0, np.clip(-g, 0, None) / 60.0


def hour_rollups(t_ms: np.ndarray, imp: np.ndarray, exp: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The hours' sums of the minutes' imports and exports (the store's hour rollups)."""
    return t_ms[::60], imp.reshape(-1, 60).sum(axis=1), exp.reshape(-1, 60).sum(axis=1)


def _timed(fn: Callable[[], Any], repeats: int) -> tuple[dict[str, float], Any]:
    out = fn()  # warm-up
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        times.append((time.perf_counter() - t0) * 1000)
    times.sort()
    return {"median": statistics.median(times), "min": times[0], "max": times[-1],
            "p95": times[min(len(times) - 1, round(0.95 * (len(times) - 1)))], "runs": repeats}, out


def _homegrid(tariff: Tariff, t_ms: np.ndarray, step_ms: int, imp: np.ndarray, exp: np.ndarray, repeats: int
              ) -> tuple[dict[str, float], Any]:
    end = int(t_ms[-1]) + step_ms

    def run() -> Any:
        return price_bill(tariff, Metered(t_ms, step_ms, imp, exp), SITE, int(t_ms[0]), end)

    return _timed(run, repeats)


def _sam(tariff: Tariff, step_ms: int, imp: np.ndarray, exp: np.ndarray, repeats: int
         ) -> tuple[dict[str, float], dict[str, float], np.ndarray]:
    """SAM's timings (whole and execute alone) and its monthly bills."""
    from tests.sam_peer import sam_model, sam_rates

    per_hour = HOUR_MS // step_ms
    load_kw, gen_kw = imp * per_hour / 1000.0, exp * per_hour / 1000.0
    rates = sam_rates(tariff)
    executes: list[float] = []
    keep: list[Any] = []

    def run() -> Any:
        m = sam_model(load_kw, gen_kw, rates)
        t0 = time.perf_counter()
        m.execute(0)
        executes.append((time.perf_counter() - t0) * 1000)
        keep[:] = [m]  # SAM's outputs are views into the model: keep it alive while they are read
        return m

    whole, m = _timed(run, repeats)
    bills = np.array(m.Outputs.utility_bill_w_sys_ym, dtype=np.float64).reshape(-1, 12)[1].copy()
    ex = sorted(executes[1:])
    return whole, {"median": statistics.median(ex), "min": ex[0], "max": ex[-1]}, bills


def _store_bills(repeats: int, log: Callable[[str], None]) -> dict[str, Any]:
    """The hub's path: the same year written into a store (``Recorder.ingest_bulk``, rollups included), then
    ``homegrid.hub.bill.site_bill`` timed: read the rollups and price them (hourly: the rate with a 60-minute
    window, which the hub prices from the hour rollups; minute: the 15-minute window, from the minute rollups),
    the actual home alone and with the two counterfactual homes (the Money view's call)."""
    import shutil
    import tempfile
    from zoneinfo import ZoneInfo

    from homegrid.hub.bill import bill_step, site_bill
    from homegrid.hub.recorder import Recorder
    from homegrid.hub.service import open_store
    from homegrid.readings import ReadingFrame

    tz = ZoneInfo(SITE)
    tmp = Path(tempfile.mkdtemp(prefix="hg-bill-"))
    out: dict[str, Any] = {}
    try:
        t0 = time.perf_counter()
        store = open_store(tmp, synchronous="NORMAL")
        rec = Recorder(store, tz)
        rec.ingest_bulk(ReadingFrame(t * 1000, cols) for t, cols in synth.chunks(START, MINUTES, 60, 2025))
        store.checkpoint()
        out["build_s"] = time.perf_counter() - t0
        log(f"bill: store of the year built in {out['build_s']:.1f} s")
        start = int(START.timestamp() * 1000)
        end = start + MINUTES * MINUTE_MS
        for name, tariff in (("hour", rate(60)), ("minute", rate(15))):
            step = bill_step(tariff)
            for cf in (False, True):
                key = f"{name}{'_counterfactuals' if cf else ''}"
                out[key], bill = _timed(lambda t=tariff, c=cf: site_bill(store, t, tz, start, end, now_ms=end + 1,
                                                                        counterfactuals=c), repeats)
                out[key] |= {"step": step, "year_total": bill["total"]}
            log(f"bill: from the store, {step} rollups: {out[name]['median']:.1f} ms, with the counterfactual homes "
                f"{out[name + '_counterfactuals']['median']:.1f} ms")
        store.close()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out


def run(repeats: int = 20, sam: bool = True, store: bool = True, log: Callable[[str], None] = log
        ) -> dict[str, Any]:
    t0 = time.perf_counter()
    t_ms, imp, exp = minute_year()
    ht, himp, hexp = hour_rollups(t_ms, imp, exp)
    log(f"bill: a year at 1 min ({len(t_ms):,} minutes, import {imp.sum() / 1000:,.0f} kWh, export "
        f"{exp.sum() / 1000:,.0f} kWh) made in {time.perf_counter() - t0:.1f} s")
    res: dict[str, Any] = {"minutes": len(t_ms), "hours": len(ht), "repeats": repeats,
                           "budget_minute_ms": BUDGET_MINUTE_MS, "budget_hour_ms": BUDGET_HOUR_MS,
                           "import_kwh": imp.sum() / 1000, "export_kwh": exp.sum() / 1000}
    hg: dict[str, Any] = {}
    for rule in (ExportRule.NET_BILLING, ExportRule.NET_METERING):
        tag = "" if rule is ExportRule.NET_BILLING else "_net_metering"
        hg[f"minute{tag}"], b = _homegrid(rate(15, rule), t_ms, MINUTE_MS, imp, exp, repeats)
        hg[f"minute{tag}"]["year_total"] = b.total
        hg[f"hour{tag}"], b = _homegrid(rate(15, rule), ht, HOUR_MS, himp, hexp, repeats * 5)
        hg[f"hour{tag}"]["year_total"] = b.total
        log(f"bill: homegrid {rule}: minute {hg[f'minute{tag}']['median']:.1f} ms (budget {BUDGET_MINUTE_MS:g}), "
            f"hour rollups {hg[f'hour{tag}']['median']:.2f} ms (budget {BUDGET_HOUR_MS:g})")
    hg["minute_1min_window"], same = _homegrid(rate(1), t_ms, MINUTE_MS, imp, exp, repeats)
    res["homegrid"] = hg
    res["store"] = _store_bills(max(3, repeats // 2), log) if store else {"skipped": "--no-store"}
    if not sam:
        res["sam"] = {"skipped": "--no-sam"}
        return res
    s: dict[str, Any] = {}
    s["minute"], s["minute_execute"], sam_bills = _sam(rate(1), MINUTE_MS, imp, exp, max(3, repeats // 4))
    s["hour"], s["hour_execute"], _ = _sam(rate(15), HOUR_MS, himp, hexp, repeats)
    ours = np.array([m.subtotal for m in same.months])
    diff = np.abs(ours - sam_bills)
    s["minute_agreement"] = {
        "max_abs": float(diff.max()), "max_rel": float((diff / np.maximum(np.abs(sam_bills), 1e-9)).max()),
        "months_off": int((diff > np.maximum(0.01, 0.005 * np.abs(sam_bills))).sum()),
        "within_half_percent_or_cent": bool((diff <= np.maximum(0.01, 0.005 * np.abs(sam_bills))).all()),
        "homegrid_year": float(ours.sum()), "sam_year": float(sam_bills.sum()),
    }
    res["sam"] = s
    res["ratios"] = {
        "minute": hg["minute_1min_window"]["median"] / s["minute"]["median"],
        "minute_execute": hg["minute_1min_window"]["median"] / s["minute_execute"]["median"],
        "hour": hg["hour"]["median"] / s["hour"]["median"],
        "hour_execute": hg["hour"]["median"] / s["hour_execute"]["median"],
    }
    log(f"bill: SAM minute {s['minute']['median']:.0f} ms (execute {s['minute_execute']['median']:.0f}), hour "
        f"{s['hour']['median']:.1f} ms (execute {s['hour_execute']['median']:.1f}); homegrid / SAM: minute "
        f"{res['ratios']['minute']:.2f}, hour {res['ratios']['hour']:.2f}; the minute bills agree: "
        f"{s['minute_agreement']['within_half_percent_or_cent']} (max {s['minute_agreement']['max_abs']:.2g})")
    return res


def summary_rows(r: dict[str, Any]) -> list[tuple[str, object, object, float | None, str, str]]:
    """Rows of run_all's table: what, homegrid, the peer (SAM), ratio, budget, verdict."""
    hg, s = r.get("homegrid", {}), r.get("sam", {})
    if "minute" not in hg:
        return []
    ratios = r.get("ratios", {})

    def ok(value: float, budget: float) -> str:
        return "PASS" if value < budget else "MISS"

    rows: list[tuple[str, object, object, float | None, str, str]] = [
        ("13 bill, a year at 1 min, TOU + tiers + demand (15-min window): median [ms]", hg["minute"]["median"],
         None, None, f"< {r['budget_minute_ms']:g} ms", ok(hg["minute"]["median"], r["budget_minute_ms"])),
        ("13 bill from the hourly rollups: median [ms] (peer: PySAM Utilityrate5 on the same hours)",
         hg["hour"]["median"], _get_median(s, "hour"), ratios.get("hour"), f"< {r['budget_hour_ms']:g} ms",
         ok(hg["hour"]["median"], r["budget_hour_ms"])),
        ("13 bill at 1 min, 1-min window (SAM's rule): median [ms] (peer: PySAM Utilityrate5)",
         hg["minute_1min_window"]["median"], _get_median(s, "minute"), ratios.get("minute"), "", ""),
        ("13 bill, net metering: at 1 min / hourly [ms]",
         f"{hg['minute_net_metering']['median']:.1f} / {hg['hour_net_metering']['median']:.2f}", None, None, "", ""),
    ]
    st = r.get("store", {})
    if "hour" in st:
        rows.append(("13 bill from a store (site_bill: read the rollups, price): hourly / at 1 min, median [ms]",
                     f"{st['hour']['median']:.1f} / {st['minute']['median']:.0f}", None, None, "", ""))
        rows.append(("9 the same with the two counterfactual homes (the Money view): hourly / at 1 min [ms]",
                     f"{st['hour_counterfactuals']['median']:.1f} / {st['minute_counterfactuals']['median']:.0f}",
                     None, None, "", ""))
    agreement = s.get("minute_agreement")
    if agreement:
        rows.append(("13 bill at 1 min: every month within 0.5 % or 1 cent of SAM's", agreement["max_abs"], None,
                     None, "yes", "PASS" if agreement["within_half_percent_or_cent"] else "MISS"))
    return rows


def _get_median(s: dict[str, Any], key: str) -> float | None:
    x = s.get(key)
    return x["median"] if isinstance(x, dict) else None


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=20, help="timed runs of each minute bill (hourly: 5 times more)")
    p.add_argument("--no-sam", action="store_true", help="skip the PySAM side")
    p.add_argument("--no-store", action="store_true", help="skip the bills from a store (site_bill)")
    args = p.parse_args(argv)
    res = run(args.repeats, not args.no_sam, not args.no_store)
    print(json.dumps(res, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
