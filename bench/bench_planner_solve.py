"""Issue 14: the planner's solve time. One 48 h plan at 5-minute steps (576 steps) with the battery and the car:
under 100 ms median and under 500 ms at the 99th percentile; a year at 15-minute steps (35,040) solved once as the
backtest's ``perfect`` policy.

Data: emhass's real household (``../shared/data/load/emhass_household_fr_2024-02_2025-02_30min.csv``, load and
PV at 30 min, Europe/Paris; NaN as 0), each 30-minute value repeated over its 5- or 15-minute steps (a step's
average is unchanged). The battery: 13.5 kWh, 5 kW both ways, round trip 90 %, reserve 20 %, wear 0.02 per kWh.
The car: plugged in from 18:00 to 07:00 local, 1.4-7.4 kW, 15 kWh needed by the first 07:00 of the horizon.

Tariffs: ``tou``, the issue's wide time-of-use rate (0.45 from 17:00 to 21:00 local, 0.15 otherwise, export
0.05), a pure LP; ``wholesale``, the German day-ahead price of 2015 (``../shared/data/prices/
smard_day_ahead_prices_2015_hourly.csv``, Germany/Austria/Luxembourg, hour by hour from the year's first hour,
gaps carried forward) as both the import and the export price, unmarked up: its 110 negative hours make the
windows that hold one candidates for binaries (the optimiser adds them lazily, only where the LP's optimum runs
charge and discharge at once); ``wholesale-negative`` times only such windows (each starts 12 h before a negative
hour, spread over the 110), and ``--binaries-everywhere`` puts a binary on every step that may need one at once:
the mixed-integer worst case.

Each of ``--solves`` windows starts at a different step (evenly spread over the year, the battery at a level
drawn from 20-100 % with seed 14) and is timed whole: ``plan(problem)``, building the LP included (the plan's
``solve_ms``), in this process after one warm-up. Beside the budget, the same at 15-minute steps (192 steps: what
the backtest's ``mpc`` policy re-plans every 15 minutes, 35,040 times a year; its budget, the year in under 10
minutes, leaves 17 ms a plan). The year is checked against an independent LP (:func:`independent_lp`).

    .venv/bin/python bench/bench_planner_solve.py
    .venv/bin/python bench/bench_planner_solve.py --solves 10 --no-year
    .venv/bin/python bench/bench_planner_solve.py --no-year --tariff wholesale-negative --binaries-everywhere
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from common import log

from homegrid.planner.optimise import plan
from homegrid.planner.problem import BatterySpec, CarMode, CarNeed, Problem
from homegrid.tariffs.horizon import DemandTerm, TierBlocks
from homegrid.timezones import HOUR_MS, MINUTE_MS, local_calendar

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
HOUSE = DATA / "load" / "emhass_household_fr_2024-02_2025-02_30min.csv"
PRICES = DATA / "prices" / "smard_day_ahead_prices_2015_hourly.csv"
ZONE = "Europe/Paris"
#: tou-tiers-demand: tou with 20 kWh left in a first block (0.10 more above it) and a demand charge of 10 per kW
#: above 3 kW on 15-minute windows (issue 14's tiers and demand; not in the default run)
TARIFFS = ["tou", "wholesale", "wholesale-negative", "tou-tiers-demand"]
BATTERY = BatterySpec(capacity_wh=13_500, max_charge_w=5_000, max_discharge_w=5_000, wear_cost_per_kwh=0.02)


def house(step_min: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The household's step starts [ms], load [W] and PV [W] at ``step_min`` minutes (30 divisible by it)."""
    df = pd.read_csv(HOUSE)
    t30 = np.array(df["timestamp_utc"].str.rstrip("Z"), dtype="datetime64[ms]").astype(np.int64)
    rep = 30 // step_min
    t = (t30[:, None] + np.arange(rep) * step_min * MINUTE_MS).ravel()
    load = np.repeat(df["load_w_excl_deferrable"].fillna(0).clip(lower=0).to_numpy(), rep)
    pv = np.repeat(df["pv_w"].fillna(0).clip(lower=0).to_numpy(), rep)
    return t, load, pv


def prices(tariff: str, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Import and export price per step [currency/kWh]."""
    if tariff not in TARIFFS:
        raise ValueError(f"tariff {tariff!r}")
    if tariff in ("tou", "tou-tiers-demand"):
        _, _, hour, _ = local_calendar(t, ZONE)
        return np.where((hour >= 17) & (hour < 21), 0.45, 0.15), np.full(len(t), 0.05)
    spot = pd.read_csv(PRICES, sep=";", na_values="-")["Germany/Austria/Luxembourg[€/MWh]"].ffill().bfill()
    hourly = spot.to_numpy() / 1000
    index = ((t - t[0]) // HOUR_MS) % len(hourly)
    return hourly[index], hourly[index]


def window(
    t: np.ndarray,
    load: np.ndarray,
    pv: np.ndarray,
    tariff: str,
    start: int,
    steps: int,
    soc: float,
    step_ms: int,
    car: bool,
) -> Problem:
    sl = slice(start, start + steps)
    tt = t[sl]
    pi, pe = prices(tariff, t)
    need = None
    if car:
        _, _, hour, _ = local_calendar(tt, ZONE)
        plugged = (hour >= 18) | (hour < 7)
        sevens = np.flatnonzero((hour == 7) & ~plugged)
        deadline = int(sevens[0]) if len(sevens) else steps
        need = CarNeed(
            plugged=plugged, max_w=7_400, min_w=1_400, energy_wh=15_000, deadline_step=deadline, mode=CarMode.PLAN
        )
    tiers, demand = None, ()
    if tariff == "tou-tiers-demand":  # 20 kWh left in the month's first block, 0.10 more above; a demand charge
        tiers = TierBlocks(np.zeros(steps, dtype=np.int64), np.array([[20_000.0, np.inf]]),
                           np.column_stack([pi[sl], pi[sl] + 0.10]))
        demand = (DemandTerm(np.ones(steps, dtype=bool), 10.0, 3_000.0, "flat",
                             window=np.arange(steps) // max(1, 15 * MINUTE_MS // step_ms)),)
    return Problem(
        import_tiers=tiers,
        demand_terms=demand,
        t_ms=tt,
        step_ms=step_ms,
        load_w=load[sl],
        solar_w=pv[sl],
        import_price=pi[sl],
        export_price=pe[sl],
        battery=BATTERY,
        soc_percent=soc,
        reserve_percent=20.0,
        car=need,
    )


def horizon_runs(tariff: str, solves: int, step_min: int = 5) -> dict[str, Any]:
    t, load, pv = house(step_min)
    per_hour = 60 // step_min
    steps = 48 * per_hour
    rng = np.random.default_rng(14)
    starts = np.linspace(0, len(t) - steps - 1, solves).astype(int)
    if tariff == "wholesale-negative":  # windows that each hold a negative hour, 12 h in (the MIP case)
        negative = np.flatnonzero(prices(tariff, t)[0] < 0)
        starts = np.clip(
            negative[np.linspace(0, len(negative) - 1, solves).astype(int)] - 12 * per_hour, 0, len(t) - steps
        )
    socs = rng.uniform(20, 100, solves)
    plan(window(t, load, pv, tariff, int(starts[0]), steps, float(socs[0]), step_min * MINUTE_MS, True))  # warm-up
    ms: list[float] = []
    mip = 0
    relaxed = 0
    for start, soc in zip(starts, socs, strict=True):
        problem = window(t, load, pv, tariff, int(start), steps, float(soc), step_min * MINUTE_MS, True)
        mip += int((problem.import_price < 0).any())
        result = plan(problem)
        ms.append(result.solve_ms)
        relaxed += bool(result.relaxed)
    out = {
        "tariff": tariff,
        "step_min": step_min,
        "steps": steps,
        "solves": solves,
        "mixed_integer": mip,
        "with_relaxed": relaxed,
        "median_ms": statistics.median(ms),
        "p99_ms": float(np.percentile(ms, 99)),
        "max_ms": max(ms),
    }
    log(f"48 h at {step_min} min, {tariff}: median {out['median_ms']:.1f} ms, p99 {out['p99_ms']:.1f} ms ({mip} MIP)")
    return out


def year_run(tariff: str) -> dict[str, Any]:
    t, load, pv = house(15)
    problem = window(t, load, pv, tariff, 0, len(t), 20.0, 15 * MINUTE_MS, False)
    started = time.perf_counter()
    result = plan(problem)
    wall = time.perf_counter() - started
    pi, pe = problem.import_price, problem.export_price
    net = (problem.load_w - problem.solar_w) / 1000 * problem.hours
    no_battery = float(pi @ np.maximum(net, 0) - pe @ np.maximum(-net, 0))
    grid = result.grid_w / 1000 * problem.hours
    bill = float(pi @ np.maximum(grid, 0) - pe @ np.maximum(-grid, 0))
    reference, reference_s = independent_lp(problem)
    out = {
        "tariff": tariff,
        "steps": len(t),
        "solve_s": wall,
        "independent_lp_cost": reference,
        "independent_lp_s": reference_s,
        "cost_vs_independent_percent": (result.cost - reference) / abs(reference) * 100,
        "bill_no_battery": no_battery,
        "bill_perfect": bill,
        "cost": result.cost,
        "relaxed": result.relaxed,
    }
    log(
        f"a year at 15 min, {tariff}: {wall:.1f} s; bill {no_battery:.2f} without a battery, {bill:.2f} perfect; "
        f"cost {result.cost:.4f}, independent LP {reference:.4f} ({reference_s:.1f} s)"
    )
    return out


def independent_lp(p: Problem) -> tuple[float, float]:
    """The same battery model (no car) written apart from homegrid's: scipy's ``linprog`` (its HiGHS interior
    point) on sparse matrices, variables per step ``[c, d, gi, ge, cu, s]``. A pure LP: where importing pays it may
    run charge and discharge at once, which the planner's binaries forbid, so it can only be cheaper. [currency], [s]
    """
    from scipy import sparse
    from scipy.optimize import linprog

    from homegrid.planner.optimise import fair_end_value

    n, h, b = len(p.t_ms), p.hours, p.battery
    cap = b.capacity_wh / 1000
    s0 = p.soc_percent / 100 * cap
    v = fair_end_value(p)
    eye = sparse.identity(n, format="csr")
    shift = sparse.eye(n, k=-1, format="csr")
    zero = sparse.csr_matrix((n, n))
    balance = sparse.hstack([eye, -eye, -eye, eye, eye, zero])  # c - d - gi + ge + cu = solar - load
    level = sparse.hstack(
        [-h * b.charge_efficiency * eye, h / b.discharge_efficiency * eye, zero, zero, zero, eye - shift]
    )  # s[t] - s[t-1] - h eta_c c + h / eta_d d = 0
    rhs_level = np.zeros(n)
    rhs_level[0] = s0
    wear = np.full(n, h * b.wear_cost_per_kwh)
    end = np.zeros(n)
    end[-1] = -v
    cost = np.concatenate([wear, wear, h * p.import_price, -h * p.export_price, np.zeros(n), end])
    floor = np.broadcast_to(np.asarray(p.reserve_percent, dtype=float), (n,)) / 100 * cap
    bounds = (
        [(0, b.max_charge_w / 1000)] * n
        + [(0, b.max_discharge_w / 1000)] * n
        + [(0, None)] * (2 * n)
        + [(0, x / 1000) for x in p.solar_w]
        + [(f, cap) for f in floor]
    )
    started = time.perf_counter()
    res = linprog(
        cost,
        A_eq=sparse.vstack([balance, level]).tocsc(),
        b_eq=np.concatenate([(p.solar_w - p.load_w) / 1000, rhs_level]),
        bounds=bounds,
        method="highs-ipm",
    )
    if res.status != 0:
        raise RuntimeError(f"linprog: {res.message}")
    return float(res.fun), time.perf_counter() - started


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--solves", type=int, default=50, help="48 h windows timed per tariff")
    p.add_argument(
        "--tariff", action="append", choices=TARIFFS, help="default: all but tou-tiers-demand"
    )
    p.add_argument("--no-year", action="store_true", help="skip the year at 15 minutes")
    p.add_argument(
        "--binaries-everywhere",
        action="store_true",
        help="binaries on every step that may need one at once (not lazily): the mixed-integer worst case",
    )
    args = p.parse_args(argv)
    if args.binaries_everywhere:
        import homegrid.planner.optimise as optimise

        optimise._LAZY_ROUNDS = 0
    tariffs = args.tariff or ["tou", "wholesale", "wholesale-negative"]
    res: dict[str, Any] = {"horizon": [horizon_runs(tariff, args.solves) for tariff in tariffs]}
    # the backtest's mpc policy re-plans 48 h at 15-minute steps every 15 minutes: 35,040 plans a year
    res["horizon_15min"] = [horizon_runs(tariff, args.solves, 15) for tariff in tariffs]
    if not args.no_year:
        res["year"] = [year_run(tariff) for tariff in tariffs if tariff != "wholesale-negative"]
    print(json.dumps(res, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
