"""Issue 14: the planner against emhass, self-consumption and perfect foresight, on the bench's data and tariffs.

For each data set x tariff x battery: the bill with no battery, with plain self-consumption, with the
perfect-foresight optimum (an LP over the whole period, here), emhass's policies (its own venv, a
subprocess: ``bench/emhass/run_emhass.py``) and, once ``homegrid backtest`` exists, homegrid's policies
(``no-battery``, ``self-consumption``, ``time-based``, ``perfect``, ``mpc``); each policy's share of the
perfect-foresight saving = (bill no battery - bill policy) / (bill no battery - bill perfect).

    bash bench/emhass/setup.sh                                   # once: emhass's venv
    .venv/bin/python bench/bench_planner.py                      # day-ahead policies, every tariff, both batteries
    .venv/bin/python bench/bench_planner.py --emhass dayahead-naive,mpc-naive --tariffs fr_hphc,fr_wide \
        --batteries 10 --jobs 2                                  # the issue's emhass comparison (MPC: ~20 min a run)

Every emhass run is kept in ``bench/out/planner/`` (``--reuse`` takes a kept run instead of running it
again). The tables go to ``bench/out/planner.md`` and the figures to ``bench/out/planner.json``.

Until ``homegrid backtest`` lands on main, no-battery, self-consumption and perfect are computed here
(``bench/battery_model.py``, the same physics the emhass plans are replayed through, and a HiGHS LP
through scipy); the homegrid rows are filled by :func:`homegrid_backtest` when the command is there.
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
from scipy import sparse
from scipy.optimize import linprog

sys.path.insert(0, str(Path(__file__).resolve().parent))

from battery_model import Battery, bill, cycles, self_consumption
from common import BENCH, OUT, REPO, homegrid_cmd, log

from homegrid.tariffs.meters import export_price, import_price
from homegrid.tariffs.readers import load_tariff
from homegrid.timezones import DAY_MS, local_calendar, parse_iso_ms, utc_offset_ms

DATA = REPO.parent / "shared" / "data"
if not DATA.exists():
    DATA = Path("/work/shared/data")
EMHASS_PY = BENCH / "emhass" / ".venv" / "bin" / "python"
EMHASS_DRIVER = BENCH / "emhass" / "run_emhass.py"
RUNS = OUT / "planner"
HOMEGRID_POLICIES = ("no-battery", "self-consumption", "time-based", "perfect", "mpc")
EMHASS_RUNS = ("dayahead-naive", "dayahead-perfect", "mpc-naive", "mpc-perfect")
#: the issue's figures for emhass's household with a 10 kWh / 5 kW battery, to check the frame against
ISSUE_QUOTED = {("fr_hphc", "self-consumption"): 0.72, ("fr_wide", "self-consumption"): 0.50,
                ("fr_hphc", "emhass dayahead-naive"): 0.835, ("fr_wide", "emhass dayahead-naive"): 0.835,
                ("fr_hphc", "emhass mpc-naive"): 0.86, ("fr_wide", "emhass mpc-naive"): 0.86}


@dataclass
class Series:
    """A data set on an even step: real home load and solar [W] at step starts (UTC ms), and its zone."""

    name: str
    t_ms: np.ndarray
    home_w: np.ndarray
    solar_w: np.ndarray
    timezone: str
    source: str

    @property
    def step_s(self) -> int:
        return int((self.t_ms[1] - self.t_ms[0]) // 1000)

    @property
    def dt_h(self) -> float:
        return self.step_s / 3600.0

    def local_hours(self) -> np.ndarray:
        """Each step's local hour (0-23). [h]"""
        return local_calendar(self.t_ms, self.timezone)[2]


def emhass_household() -> Series:
    """emhass's one-year household (shared/data section 1.1), whole local days from 2024-02-29 00:00 Paris.

    Load NaNs (336) are filled linearly between their neighbours (as emhass's ``prepare_data`` does with
    ``sensor_linear_interp``); solar NaNs (the night) are 0, negatives 0.
    """
    path = DATA / "load" / "emhass_household_fr_2024-02_2025-02_30min.csv"
    tab = pacsv.read_csv(path, convert_options=pacsv.ConvertOptions(column_types={"timestamp_utc": pa.string()}))
    t = np.array([parse_iso_ms(x) for x in tab.column("timestamp_utc").to_pylist()], dtype=np.int64)
    load = np.array(tab.column("load_w_excl_deferrable").to_pylist(), dtype=float)
    pv = np.array(tab.column("pv_w").to_pylist(), dtype=float)
    ok = ~np.isnan(load)
    load = np.interp(np.arange(len(load)), np.flatnonzero(ok), load[ok])
    pv = np.clip(np.nan_to_num(pv, nan=0.0), 0.0, None)
    local = t + utc_offset_ms(t, "Europe/Paris")
    midnights = np.flatnonzero(local % DAY_MS == 0)
    s = slice(int(midnights[0]), int(midnights[-1]))
    return Series("emhass_fr", t[s], load[s], pv[s], "Europe/Paris", f"{path.name} (whole local days)")


# --- tariffs: per-step import and export prices [currency/kWh] --------------------------------------------

def _peak(series: Series, start_h: int, end_h: int, peak: float, off: float) -> np.ndarray:
    h = series.local_hours()
    return np.where((h >= start_h) & (h < end_h), peak, off)


def fr_hphc(s: Series) -> tuple[np.ndarray, np.ndarray]:
    """emhass's default: HP 0.1907 06-22 h, HC 0.1419, sell 0.1419 EUR/kWh."""
    return _peak(s, 6, 22, 0.1907, 0.1419), np.full(len(s.t_ms), 0.1419)


def fr_wide(s: Series) -> tuple[np.ndarray, np.ndarray]:
    """A wide spread: HP 0.30 06-22 h, HC 0.1419, sell 0.1419 EUR/kWh."""
    return _peak(s, 6, 22, 0.30, 0.1419), np.full(len(s.t_ms), 0.1419)


def wide_tou(s: Series) -> tuple[np.ndarray, np.ndarray]:
    """The issue's wide TOU: 0.45 17-21 h, 0.15 otherwise, export 0.05."""
    return _peak(s, 17, 21, 0.45, 0.15), np.full(len(s.t_ms), 0.05)


US_TOU_FILE = REPO / "homegrid" / "tariffs" / "data" / "urdb_618940545457a35a1c4097ec_psco_residential_re_tou.json"


def us_tou(s: Series) -> tuple[np.ndarray, np.ndarray]:
    """Xcel Colorado RE-TOU (URDB 618940545457a35a1c4097ec) through homegrid's reader, on the site's clock.

    Energy prices only (its $5.71 a month is the same for every policy); net metering, so each step's
    export earns that step's import price (:func:`homegrid.tariffs.meters.export_price`).
    """
    tariff, _ = load_tariff(US_TOU_FILE.read_text())
    return import_price(tariff, s.t_ms, s.timezone), export_price(tariff, s.t_ms, s.timezone)


SMARD_FILE = DATA / "prices" / "smard_day_ahead_prices_2015_hourly.csv"
DYNAMIC_ADDER = 0.20  # grid fees, levies and tax on top of the spot price [EUR/kWh]


def smard_2015() -> dict[datetime, float]:
    """SMARD's 2015 DE-AT-LU day-ahead price by local (Berlin) wall-clock hour; of a repeated hour, the first.
    [EUR/kWh]"""
    lines = SMARD_FILE.read_text(encoding="utf-8-sig").splitlines()
    head = lines[0].split(";")
    col = head.index("Germany/Austria/Luxembourg[€/MWh]")
    out: dict[datetime, float] = {}
    for line in lines[1:]:
        f = line.split(";")
        if len(f) <= col or f[col] in ("-", ""):
            continue
        at = datetime.strptime(f"{f[0]} {f[1]}", "%b %d, %Y %I:%M %p")
        out.setdefault(at, float(f[col].replace(",", "")) / 1000.0)
    return out


def redate_2015(local: datetime) -> datetime:
    """The 2015 wall-clock hour standing for a local time: whole weeks back or forth (the weekday kept) to
    within 3 days of the same calendar date in 2015."""
    naive = local.replace(tzinfo=None, minute=0, second=0, microsecond=0)
    same = naive.replace(year=2015, day=min(naive.day, 28) if naive.month == 2 else naive.day)
    weeks = round((naive - same).days / 7)
    out = naive - timedelta(weeks=weeks)
    while out.year < 2015:
        out += timedelta(weeks=52)
    while out.year > 2015:
        out -= timedelta(weeks=52)
    return out


def dynamic(s: Series) -> tuple[np.ndarray, np.ndarray]:
    """SMARD 2015 German day-ahead, re-dated onto the data's days (same weekday, within 3 days of the same date,
    same local hour). Import = spot + 0.20 EUR/kWh; export = spot, not below 0 (a feed-in is not billed)."""
    prices = smard_2015()
    zone = ZoneInfo(s.timezone)
    spot = np.empty(len(s.t_ms))
    for i, t in enumerate(s.t_ms.tolist()):
        at = redate_2015(datetime.fromtimestamp(t / 1000, zone))
        for back in range(4):  # a wall-clock hour 2015 skipped (its spring DST night), or a gap: the hour before
            p = prices.get(at - timedelta(hours=back))
            if p is not None:
                break
        spot[i] = p if p is not None else float("nan")
    spot = np.where(np.isnan(spot), np.nanmean(spot), spot)
    return spot + DYNAMIC_ADDER, np.maximum(spot, 0.0)


TARIFFS: dict[str, Callable[[Series], tuple[np.ndarray, np.ndarray]]] = {
    "fr_hphc": fr_hphc, "fr_wide": fr_wide, "wide_tou": wide_tou, "us_tou": us_tou, "dynamic": dynamic}
DATASETS: dict[str, Callable[[], Series]] = {"emhass_fr": emhass_household}
BATTERIES = {"10": (10.0, 5.0), "13.5": (13.5, 5.0)}


# --- the floor and the ceiling, computed here ----------------------------------------------------------------

def perfect_lp(s: Series, buy: np.ndarray, sell: np.ndarray, bat: Battery) -> dict[str, Any]:
    """The perfect-foresight optimum over the whole period: one LP (HiGHS through scipy).

    Variables per step: charge c, discharge d [W, AC], import gi, export ge [W], stored energy e [Wh] at the
    step's end. ``gi - ge = home - solar - d + c``; ``e_t = e_{t-1} + (eta c - d / eta) dt``, e_{-1} the reserve;
    ``0 <= c, d <= P``; reserve <= e <= full. Minimises the bill; the energy left at the end is not valued.
    """
    n = len(s.t_ms)
    dt, eta = s.dt_h, bat.eta
    eye = sparse.identity(n, format="csr")
    zero = sparse.csr_matrix((n, n))
    diff = eye - sparse.eye(n, k=-1, format="csr")
    a_bal = sparse.hstack([-eye, eye, eye, -eye, zero])
    a_soc = sparse.hstack([-eta * dt * eye, dt / eta * eye, zero, zero, diff])
    a_eq = sparse.vstack([a_bal, a_soc]).tocsr()
    b_soc = np.zeros(n)
    b_soc[0] = bat.e_min
    b_eq = np.concatenate([s.home_w - s.solar_w, b_soc])
    c = np.concatenate([np.zeros(2 * n), buy * dt / 1000.0, -sell * dt / 1000.0, np.zeros(n)])
    bounds = [(0, bat.power_w)] * (2 * n) + [(0, None)] * (2 * n) + [(bat.e_min, bat.e_max)] * n
    t0 = time.perf_counter()
    res = linprog(c, A_eq=a_eq, b_eq=b_eq, bounds=bounds, method="highs")
    solve_s = time.perf_counter() - t0
    if res.status != 0:
        raise RuntimeError(f"perfect LP: {res.message}")
    x = res.x
    battery_w = x[n:2 * n] - x[:n]
    grid = s.home_w - s.solar_w - battery_w
    return {"bill": bill(grid, buy, sell, dt), "lp_objective": float(res.fun), "solve_s": solve_s,
            **_flows(grid, battery_w, bat, dt)}


def _flows(grid: np.ndarray, battery_w: np.ndarray, bat: Battery, dt: float) -> dict[str, float]:
    return {"grid_import_wh": float(np.sum(np.maximum(grid, 0)) * dt),
            "grid_export_wh": float(np.sum(np.maximum(-grid, 0)) * dt),
            "battery_cycles": cycles(battery_w, bat, dt)}


# --- peers: emhass (subprocess in its venv) and homegrid backtest ------------------------------------------------

def write_input(s: Series, buy: np.ndarray, sell: np.ndarray, path: Path) -> None:
    """The canonical-CSV-like input of both peers: time, home_power, solar_power, import_price, export_price."""
    rows = ["time,home_power,solar_power,import_price,export_price"]
    for t, h, p, b, e in zip(s.t_ms.tolist(), s.home_w.tolist(), s.solar_w.tolist(), buy.tolist(), sell.tolist(),
                             strict=True):
        iso = datetime.fromtimestamp(t / 1000, ZoneInfo("UTC")).strftime("%Y-%m-%dT%H:%M:%SZ")
        rows.append(f"{iso},{h:.3f},{p:.3f},{b:.6f},{e:.6f}")
    path.write_text("\n".join(rows) + "\n")


def emhass_run(key: str, run: str, inp: Path, s: Series, kwh: float, kw: float,
               reuse: bool | str) -> dict[str, Any] | None:
    """One emhass run (``run``: ``dayahead-naive`` ...), kept in ``bench/out/planner/<key>.json``; with
    ``reuse="only"`` a run not kept is skipped (None)."""
    out = RUNS / f"{key}.json"
    if reuse and out.exists():
        return dict(json.loads(out.read_text()))
    if reuse == "only":
        return None
    spec, _, soc_final = run.partition(":")
    policy, forecast = spec.split("-")
    cmd = [str(EMHASS_PY), str(EMHASS_DRIVER), "--input", str(inp), "--out", str(out), "--policy", policy,
           "--forecast", forecast, "--timezone", s.timezone, "--battery-kwh", str(kwh), "--battery-kw", str(kw),
           "--reserve-percent", "20", "--round-trip", "90", "--soc-final", soc_final or "reserve"]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"emhass {key}: {proc.stderr[-2000:]}")
    res = dict(json.loads(out.read_text()))
    res["wall_s"] = time.perf_counter() - t0
    out.write_text(json.dumps(res))
    log(f"  emhass {key}: {res['wall_s']:.0f} s")
    return res


def homegrid_has_backtest() -> bool:
    proc = subprocess.run(homegrid_cmd("backtest", "--help"), capture_output=True, text=True, check=False)
    return proc.returncode == 0


def homegrid_backtest(policy: str, s: Series, buy: np.ndarray, sell: np.ndarray, kwh: float, kw: float,
                      tmp: Path) -> dict[str, Any]:
    """``homegrid backtest --json`` for one policy (the issue's command line)."""
    data, prices = tmp / f"{s.name}_data.csv", tmp / "prices.csv"
    if not data.exists():
        lines = ["time,home_power,solar_power"]
        lines += [f"{datetime.fromtimestamp(t / 1000, ZoneInfo('UTC')).strftime('%Y-%m-%dT%H:%M:%SZ')},{h:.3f},{p:.3f}"
                  for t, h, p in zip(s.t_ms.tolist(), s.home_w.tolist(), s.solar_w.tolist(), strict=True)]
        data.write_text("\n".join(lines) + "\n")
    lines = ["time,import_price,export_price"]
    lines += [f"{datetime.fromtimestamp(t / 1000, ZoneInfo('UTC')).strftime('%Y-%m-%dT%H:%M:%SZ')},{b:.6f},{e:.6f}"
              for t, b, e in zip(s.t_ms.tolist(), buy.tolist(), sell.tolist(), strict=True)]
    prices.write_text("\n".join(lines) + "\n")
    cmd = homegrid_cmd("backtest", "--data", str(data), "--prices", str(prices), "--battery-kwh", str(kwh),
                       "--battery-kw", str(kw), "--reserve-percent", "20", "--round-trip", "90",
                       "--step-min", str(s.step_s // 60), "--policy", policy, "--json")
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"homegrid backtest {policy}: {proc.stderr[-2000:]}")
    return dict(json.loads(proc.stdout))


# --- the table -----------------------------------------------------------------------------------------------------

def share(no_battery: float, policy: float, perfect: float) -> float | None:
    """The share of the perfect-foresight saving a policy captures. [1]"""
    gain = no_battery - perfect
    return (no_battery - policy) / gain if gain > 1e-9 else None


def rows_of(case: dict[str, Any]) -> list[tuple[str, float, float | None, float | None, float | None]]:
    """(policy, bill, share, cycles, import kWh) rows of one case, best first."""
    nb, pf = case["no_battery"]["bill"], case["perfect"]["bill"]
    out = []
    for name, r in case["policies"].items():
        out.append((name, r["bill"], share(nb, r["bill"], pf), r.get("battery_cycles"),
                    r.get("grid_import_wh", math.nan) / 1000.0))
    return sorted(out, key=lambda x: x[1])


def markdown(results: dict[str, Any]) -> str:
    lines: list[str] = []
    for key, case in results["cases"].items():
        nb, pf = case["no_battery"]["bill"], case["perfect"]["bill"]
        lines.append(f"\n**{key}** (no battery {nb:.2f}, perfect {pf:.2f}; "
                     f"saving at stake {case['no_battery']['bill'] - case['perfect']['bill']:.2f})\n")
        lines.append("| policy | bill | share of perfect saving | cycles | import kWh | solve p50 / p99 ms |")
        lines.append("|---|---:|---:|---:|---:|---:|")
        for name, b, sh, cyc, imp in rows_of(case):
            r = case["policies"][name]
            sm = r.get("solve_ms")
            solve = f"{sm['p50']:.0f} / {sm['p99']:.0f}" if sm else ""
            base = name.replace(" (modes)", "")
            quoted = ISSUE_QUOTED.get((case["tariff"], base)) if case["battery_kwh"] == 10 and (
                name == "self-consumption" or name.endswith("(modes)")) else None
            q = f" (issue: {quoted:.0%})" if quoted is not None else ""
            lines.append(f"| {name} | {b:.2f} | {'' if sh is None else f'{sh:.1%}'}{q} | "
                         f"{'' if cyc is None else f'{cyc:.0f}'} | {imp:.0f} | {solve} |")
    return "\n".join(lines) + "\n"


def run(datasets: str = ",".join(DATASETS), tariffs: str = ",".join(TARIFFS),
        batteries: str = ",".join(BATTERIES), emhass: str = "dayahead-naive,dayahead-perfect", jobs: int = 1,
        reuse: bool | str = False) -> dict[str, Any]:
    """Every case: the bills, each policy's share of the perfect-foresight saving (``run_all.py``'s entry)."""
    RUNS.mkdir(parents=True, exist_ok=True)
    emhass_runs = [r for r in emhass.split(",") if r]
    if emhass_runs and not EMHASS_PY.exists():
        log("emhass's venv is missing: run bash bench/emhass/setup.sh (emhass rows skipped)")
        emhass_runs = []
    has_backtest = homegrid_has_backtest()
    if not has_backtest:
        log("homegrid backtest is not on this branch yet: no-battery, self-consumption and perfect are the bench's own")
    results: dict[str, Any] = {"cases": {}, "homegrid_backtest": has_backtest}
    pending: list[tuple[str, str, Any]] = []
    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        for dname in datasets.split(","):
            s = DATASETS[dname]()
            for tname in tariffs.split(","):
                buy, sell = TARIFFS[tname](s)
                inp = RUNS / f"{dname}_{tname}.csv"
                write_input(s, buy, sell, inp)
                for bname in batteries.split(","):
                    kwh, kw = BATTERIES[bname]
                    key = f"{dname} / {tname} / {kwh:g} kWh {kw:g} kW"
                    log(key)
                    results["cases"][key] = floor_and_ceiling(s, tname, buy, sell, kwh, kw, has_backtest)
                    for r in emhass_runs:
                        rkey = f"{dname}_{tname}_{kwh:g}kwh_{r.replace(':', '_')}"
                        pending.append((key, r, pool.submit(emhass_run, rkey, r, inp, s, kwh, kw, reuse)))
        for key, r, fut in pending:
            res = fut.result()
            if res is None:
                continue
            for how, ex in res["executions"].items():
                # runs before each execution planned from its own level: set-points carried out plans made
                # for the modes' battery level (one plan a step for both)
                label = how if res.get("plans_from") == "own" or how == "modes" else "setpoints, modes' plans"
                row = {k: v for k, v in ex.items() if k != "grid_w"}
                for k in ("solve_ms", "solves", "planned_bill", "optim_status"):
                    row.setdefault(k, res.get(k))
                results["cases"][key]["policies"][f"emhass {r} ({label})"] = row
    return results


def floor_and_ceiling(s: Series, tname: str, buy: np.ndarray, sell: np.ndarray, kwh: float, kw: float,
                      has_backtest: bool) -> dict[str, Any]:
    """One case without emhass: no battery, self-consumption, the perfect LP, and homegrid's backtest rows."""
    bat = Battery(kwh * 1000, kw * 1000, 20.0, 90.0)
    grid0 = s.home_w - s.solar_w
    sc = self_consumption(bat, s.home_w, s.solar_w, s.dt_h)
    case: dict[str, Any] = {
        "dataset": s.name, "tariff": tname, "battery_kwh": kwh, "battery_kw": kw, "steps": len(s.t_ms),
        "step_s": s.step_s, "timezone": s.timezone, "source": s.source,
        "no_battery": {"bill": bill(grid0, buy, sell, s.dt_h), **_flows(grid0, np.zeros(len(grid0)), bat, s.dt_h)},
        "perfect": perfect_lp(s, buy, sell, bat),
        "policies": {},
    }
    case["policies"]["self-consumption"] = {"bill": bill(sc.grid_w, buy, sell, s.dt_h),
                                            **_flows(sc.grid_w, sc.battery_w, bat, s.dt_h)}
    case["policies"]["perfect (LP)"] = dict(case["perfect"])
    if has_backtest:
        tmp = RUNS / "backtest"
        tmp.mkdir(exist_ok=True)
        for pol in HOMEGRID_POLICIES:
            case["policies"][f"homegrid {pol}"] = homegrid_backtest(pol, s, buy, sell, kwh, kw, tmp)
    return case


def summary_rows(r: dict[str, Any]) -> list[tuple[str, object, object, float | None, str, str]]:
    """Rows of run_all's table: each case's shares of the perfect-foresight saving (no budget yet)."""
    rows: list[tuple[str, object, object, float | None, str, str]] = []
    for key, case in r.get("cases", {}).items():
        nb, pf = case["no_battery"]["bill"], case["perfect"]["bill"]
        pol = case["policies"]
        hg = pol.get("homegrid mpc")
        # the peer with realistic (persistence) forecasts, as the budget is stated
        em = [(n, share(nb, x["bill"], pf)) for n, x in pol.items()
              if n.startswith("emhass") and "-naive" in n and "(modes)" in n]
        best = max(em, key=lambda t: t[1] or -1.0) if em else None
        sc = share(nb, pol["self-consumption"]["bill"], pf)
        rows.append((f"11 share of the perfect saving, {key}: homegrid mpc (peer: best emhass with persistence; "
                     f"self-consumption "
                     f"{sc:.0%})", f"{share(nb, hg['bill'], pf):.1%}" if hg else "not yet",
                     f"{best[1]:.1%} ({best[0]})" if best and best[1] is not None else None, None, "", ""))
    return rows


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--datasets", default=",".join(DATASETS))
    p.add_argument("--tariffs", default=",".join(TARIFFS))
    p.add_argument("--batteries", default=",".join(BATTERIES), help="of 10 (10 kWh / 5 kW) and 13.5 (13.5 / 5)")
    p.add_argument("--emhass", default="dayahead-naive,dayahead-perfect",
                   help=f"emhass runs, of {','.join(EMHASS_RUNS)} ('' for none), each with an optional ':init' "
                        "(every plan ends at the level it starts at; default: at the reserve); mpc takes ~20 min "
                        "a year at 30 min")
    p.add_argument("--jobs", type=int, default=1, help="emhass runs at once")
    p.add_argument("--reuse", action="store_true", help="take emhass runs kept in bench/out/planner/")
    p.add_argument("--kept-only", action="store_true", help="only emhass runs kept in bench/out/planner/, no new one")
    p.add_argument("--out", type=Path, default=OUT / "planner.json")
    a = p.parse_args(argv)
    results = run(a.datasets, a.tariffs, a.batteries, a.emhass, a.jobs, "only" if a.kept_only else a.reuse)
    table = markdown(results)
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(results, indent=1))
    a.out.with_suffix(".md").write_text(table)
    print(table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
