"""Issue 14's forecasts: what a year of 15-minute re-plans costs, and how good the forecasts were, on the emhass
household's real year (``../shared/data/load/emhass_household_fr_2024-02_2025-02_30min.csv``: load and PV at
30 min, Europe/Paris, lat 48.83, lon 6.86; the data README's section 1.1).

1. The backtest's pattern: every 15 minutes, feed the readings that arrived since the last re-plan to a
   ``LoadForecaster`` and a ``SolarForecaster`` and forecast the next 48 h at 15-minute steps (192 steps), for
   the whole year after a 5-week warm-up (31,494 re-plans). Wall time of the loop, and per re-plan the
   median and 99th percentile of observe + forecast (load and solar together).
2. ``forecast_errors`` over the same year (issued every 6 h): MAE and RMSE at 1, 6 and 24 h, for load and PV,
   beside yesterday's persistence at the same horizons.

    .venv/bin/python bench/bench_forecast.py [--json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from homegrid.forecast import (
    DEFAULT_HORIZONS_MS,
    LoadForecaster,
    SolarForecaster,
    forecast_errors,
    persistence_forecast,
    replay,
)
from homegrid.timezones import DAY_MS, MINUTE_MS
from tests.forecast_data import EMHASS_LAT, EMHASS_LON, EMHASS_TZ, emhass


def replan_year() -> dict[str, float]:
    data = emhass()
    t, load, pv = data.t_ms, data.values["load"], np.nan_to_num(data.values["pv"], nan=0.0)
    step = 15 * MINUTE_MS
    lm = LoadForecaster(EMHASS_TZ, slot_ms=30 * MINUTE_MS)
    sm = SolarForecaster(EMHASS_LAT, EMHASS_LON, slot_ms=30 * MINUTE_MS)
    start = int(t[0]) + 35 * DAY_MS
    fed = 0
    per_call = []
    wall = time.perf_counter()
    for now in range(start, int(t[-1]) - 2 * DAY_MS, step):
        a = time.perf_counter()
        upto = int(np.searchsorted(t, now))
        if upto > fed:
            lm.observe(t[fed:upto], load[fed:upto])
            sm.observe(t[fed:upto], pv[fed:upto])
            fed = upto
        ft = now + np.arange(192, dtype=np.int64) * step
        lm.forecast(now, ft, step)
        sm.forecast(now, ft, step)
        per_call.append(time.perf_counter() - a)
    wall = time.perf_counter() - wall
    return {"replans": len(per_call), "wall_s": wall, "p50_ms": statistics.median(per_call) * 1e3,
            "p99_ms": float(np.percentile(per_call, 99)) * 1e3, "max_ms": max(per_call) * 1e3}


def errors_year() -> dict[str, object]:
    data = emhass()
    t, load, pv = data.t_ms, data.values["load"], np.nan_to_num(data.values["pv"], nan=0.0)
    site = {"timezone": EMHASS_TZ, "latitude": EMHASS_LAT, "longitude": EMHASS_LON}
    a = time.perf_counter()
    e = forecast_errors(t, load, pv, **site, warmup_days=35)
    seconds = time.perf_counter() - a
    r = replay(t, load, pv, **site, warmup_days=35)
    naive: dict[str, list[float]] = {"load": [], "solar": []}
    for k, h in enumerate(DEFAULT_HORIZONS_MS):
        for name, series, actual in (("load", load, r.load_actual), ("solar", pv, r.solar_actual)):
            errs = []
            for i, now in enumerate(r.issue_ms.tolist()):
                upto = int(np.searchsorted(t, now))
                p = persistence_forecast(t[max(0, upto - 400):upto], series[max(0, upto - 400):upto],
                                         np.array([now + h - 30 * MINUTE_MS]))[0]
                if np.isfinite(p) and np.isfinite(actual[i, k]):
                    errs.append(abs(p - actual[i, k]))
            naive[name].append(float(np.mean(errs)))
    return {"seconds": seconds, "errors": e.to_json(), "persistence_mae_w": naive}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args()
    out = {"replan": replan_year(), "errors": errors_year()}
    if args.json:
        print(json.dumps(out, indent=2))
        return
    rp = out["replan"]
    print(f"a year of 15-min re-plans (load + solar, 48 h at 15 min): {rp['replans']} re-plans in "
          f"{rp['wall_s']:.1f} s; per re-plan p50 {rp['p50_ms']:.3f} ms, p99 {rp['p99_ms']:.3f} ms, "
          f"max {rp['max_ms']:.1f} ms")
    er = out["errors"]
    assert isinstance(er, dict)
    doc = er["errors"]
    print(f"forecast_errors over the year ({doc['issues']} issues, every 6 h) in {er['seconds']:.1f} s")
    for name in ("load", "solar"):
        for h, naive in zip(doc[name], er["persistence_mae_w"][name], strict=True):
            print(f"  {name:5s} {h['horizon_h']:4.0f} h: MAE {h['mae_w']:6.0f} W  RMSE {h['rmse_w']:6.0f} W  "
                  f"(yesterday's persistence MAE {naive:6.0f} W, n = {h['count']})")


if __name__ == "__main__":
    main()
