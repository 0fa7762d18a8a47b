"""Issue 14: the planner against emhass, self-consumption and perfect foresight, in one table per case.

For each data set x tariff x battery (``planner_data``: emhass's household year at 30 min and the virtual home's
year at 15 min; 10 kWh / 5 kW and 13.5 kWh / 5 kW, reserve 20 %, round trip 90 %, starting at the reserve):

- homegrid's rows: ``homegrid backtest --json``, one subprocess per policy (``self-consumption``, ``time-based``,
  ``time-based-grid``, ``perfect`` with ``--compare``, which gives ``no-battery`` too, and ``mpc`` with its own
  forecasts; ``mpc-persistence`` on request), ``--jobs`` at once;
- emhass's kept runs (``bench/out/planner/<case>_<run>.json``, its own venv, ``bench/emhass/``): their grid
  flows billed again here with ``bench/battery_model.bill`` on the case's prices;
- the bench's own check rows: the bill without a battery and with self-consumption through
  ``bench/battery_model.py`` (the model emhass's plans are carried out in) and the perfect-foresight optimum as
  an independent LP (HiGHS through scipy's ``linprog``, sparse matrices written apart from homegrid's).

Every row is compared on its ``net`` = bill - value of the energy left above the reserve at the end, valued as
homegrid's backtest does (the period's mean import price x the discharge efficiency). Each row's share of the
perfect-foresight saving = (net no battery - net) / (net no battery - net perfect), with **one denominator per
case: homegrid's no-battery and perfect nets** (the bench's figures where homegrid backtest is missing).

``homegrid backtest`` reads the data as instantaneous samples and averages each step trapezoidally; the bench's
data are step means, so each mean is written twice, at the step's start and 1 ms before its end: the step's
average is then the mean itself (to 1 ms in a step), not smeared half a step into its neighbours.

    bash bench/emhass/setup.sh                     # once: emhass's venv (only for new emhass runs)
    .venv/bin/python bench/bench_planner.py --kept-only --jobs 2          # every case, emhass's kept runs
    .venv/bin/python bench/bench_planner.py --kept-only --days 7 --batteries 10 --tariffs wide_tou  # plumbing
    .venv/bin/python bench/bench_planner.py --kept-only --datasets emhass_fr --tariffs fr_hphc --batteries 10
    .venv/bin/python bench/bench_planner.py --datasets virtual_home --emhass dayahead-naive --reuse  # emhass too
    .venv/bin/python bench/bench_planner.py --emhass mpc-naive --tariffs fr_hphc,fr_wide --batteries 10 --jobs 2
    .venv/bin/python bench/run_all.py --only planner --planner-from bench/out/planner.json --check  # the budgets

``--emhass`` names emhass runs (default ``dayahead-naive,dayahead-perfect,dayahead-naive:init,mpc-naive``);
with ``--kept-only`` only those kept are shown, none is run (an MPC run takes ~20-45 min a year); ``--reuse``
takes a kept run and runs the missing ones. ``--days N`` cuts every data set to its first N days (a trial of the
plumbing; emhass's year runs are then billed on their first N days, their end energy not valued). The tables
go to ``bench/out/planner.md``, the figures and the budgets' figures (``figures``) to ``bench/out/planner.json``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
from scipy import sparse
from scipy.optimize import linprog

sys.path.insert(0, str(Path(__file__).resolve().parent))

from battery_model import Battery, bill, cycles, self_consumption
from common import BENCH, OUT, child_env, homegrid_cmd, log
from planner_data import BATTERIES, DATASETS, TARIFFS, Series, cut

EMHASS_PY = BENCH / "emhass" / ".venv" / "bin" / "python"
EMHASS_DRIVER = BENCH / "emhass" / "run_emhass.py"
RUNS = OUT / "planner"
HOMEGRID_POLICIES = ("self-consumption", "time-based", "time-based-grid", "perfect", "mpc")
#: beyond HOMEGRID_POLICIES: mpc fed persistence forecasts (emhass's ``naive``), on request
EXTRA_POLICIES = ("mpc-persistence",)
EMHASS_RUNS = ("dayahead-naive", "dayahead-perfect", "mpc-naive", "mpc-perfect")
EMHASS_DEFAULT = "dayahead-naive,dayahead-perfect,dayahead-naive:init,mpc-naive"
#: the issue's figures for emhass's household with a 10 kWh / 5 kW battery, to check the frame against
ISSUE_QUOTED = {("fr_hphc", "self-consumption"): 0.72, ("fr_wide", "self-consumption"): 0.50,
                ("fr_hphc", "emhass dayahead-naive"): 0.835, ("fr_wide", "emhass dayahead-naive"): 0.835,
                ("fr_hphc", "emhass mpc-naive"): 0.86, ("fr_wide", "emhass mpc-naive"): 0.86}


# --- the bench's own floor and ceiling --------------------------------------------------------------------------

def fair_end_value(buy: np.ndarray, bat: Battery) -> float:
    """What a kWh left in the battery at the end is worth, homegrid's backtest's rule restated: the period's median
    import price times the discharge efficiency (no wear: the backtest bills none). [currency/kWh]"""
    return float(np.median(buy)) * bat.eta if len(buy) else 0.0


def perfect_lp(s: Series, buy: np.ndarray, sell: np.ndarray, bat: Battery,
               end_value_per_kwh: float = 0.0) -> dict[str, Any]:
    """The perfect-foresight optimum over the whole period: one LP (HiGHS through scipy).

    Variables per step: charge c, discharge d [W, AC], import gi, export ge [W], stored energy e [Wh] at the
    step's end. ``gi - ge = home - solar - d + c``; ``e_t = e_{t-1} + (eta c - d / eta) dt``, e_{-1} the reserve;
    ``0 <= c, d <= P``; reserve <= e <= full. Minimises the bill less ``end_value_per_kwh`` times the energy left
    above the reserve at the end (0: the end is not valued).
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
    end = np.zeros(n)
    end[-1] = end_value_per_kwh / 1000.0
    c = np.concatenate([np.zeros(2 * n), buy * dt / 1000.0, -sell * dt / 1000.0, -end])
    bounds = [(0, bat.power_w)] * (2 * n) + [(0, None)] * (2 * n) + [(bat.e_min, bat.e_max)] * n
    t0 = time.perf_counter()
    res = linprog(c, A_eq=a_eq, b_eq=b_eq, bounds=bounds, method="highs")
    solve_s = time.perf_counter() - t0
    if res.status != 0:
        raise RuntimeError(f"perfect LP: {res.message}")
    x = res.x
    battery_w = x[n:2 * n] - x[:n]
    grid = s.home_w - s.solar_w - battery_w
    the_bill = bill(grid, buy, sell, dt)
    end_value = (float(x[-1]) - bat.e_min) / 1000.0 * end_value_per_kwh
    return {"bill": the_bill, "end_value": end_value, "net": the_bill - end_value, "energy_end_wh": float(x[-1]),
            "lp_objective": float(res.fun), "solve_s": solve_s, **_flows(grid, battery_w, bat, dt)}


def _flows(grid: np.ndarray, battery_w: np.ndarray, bat: Battery, dt: float) -> dict[str, float]:
    return {"grid_import_wh": float(np.sum(np.maximum(grid, 0)) * dt),
            "grid_export_wh": float(np.sum(np.maximum(-grid, 0)) * dt),
            "battery_cycles": cycles(battery_w, bat, dt)}


def bench_rows(s: Series, buy: np.ndarray, sell: np.ndarray, bat: Battery) -> dict[str, dict[str, Any]]:
    """The bench's own figures of a case: no battery, self-consumption (``battery_model``) and the independent LP,
    with the end valued as homegrid values it (``perfect_lp``) and not (``perfect_lp_unvalued``)."""
    v = fair_end_value(buy, bat)
    grid0 = s.home_w - s.solar_w
    sc = self_consumption(bat, s.home_w, s.solar_w, s.dt_h)
    sc_bill = bill(sc.grid_w, buy, sell, s.dt_h)
    sc_end = (float(sc.energy_wh[-1]) - bat.e_min) / 1000.0 * v
    nb_bill = bill(grid0, buy, sell, s.dt_h)
    return {
        "no_battery": {"bill": nb_bill, "end_value": 0.0, "net": nb_bill, **_flows(grid0, np.zeros(len(grid0)), bat,
                                                                                  s.dt_h)},
        "self_consumption": {"bill": sc_bill, "end_value": sc_end, "net": sc_bill - sc_end,
                             **_flows(sc.grid_w, sc.battery_w, bat, s.dt_h)},
        "perfect_lp": perfect_lp(s, buy, sell, bat, v),
        "perfect_lp_unvalued": perfect_lp(s, buy, sell, bat),
    }


# --- peers: emhass (subprocess in its venv) and homegrid backtest ------------------------------------------------

def _iso_ms(t_ms: np.ndarray) -> np.ndarray:
    return np.char.add(np.datetime_as_string(t_ms.astype("datetime64[ms]"), unit="ms"), "Z")


def write_input(s: Series, buy: np.ndarray, sell: np.ndarray, path: Path) -> None:
    """emhass's input: time, home_power, solar_power, import_price, export_price, one row a step."""
    rows = ["time,home_power,solar_power,import_price,export_price"]
    rows += [f"{t},{h:.3f},{p:.3f},{b:.6f},{e:.6f}" for t, h, p, b, e in zip(
        _iso_ms(s.t_ms).tolist(), s.home_w.tolist(), s.solar_w.tolist(), buy.tolist(), sell.tolist(), strict=True)]
    path.write_text("\n".join(rows) + "\n")


def write_backtest_data(s: Series, path: Path) -> None:
    """The canonical CSV ``homegrid backtest`` reads: each step's mean power twice, at its start and 1 ms before
    its end, so that the backtest's trapezoidal step average gives the mean back."""
    t = np.repeat(s.t_ms, 2)
    t[1::2] += s.step_s * 1000 - 1
    home, solar = np.repeat(s.home_w, 2), np.repeat(s.solar_w, 2)
    rows = ["time,home_power,solar_power"]
    rows += [f"{x},{h:.3f},{p:.3f}" for x, h, p in zip(_iso_ms(t).tolist(), home.tolist(), solar.tolist(),
                                                        strict=True)]
    path.write_text("\n".join(rows) + "\n")


def write_prices(s: Series, buy: np.ndarray, sell: np.ndarray, path: Path) -> None:
    """``--prices``: each step's import and export price at its start."""
    rows = ["time,import_price,export_price"]
    rows += [f"{t},{b:.6f},{e:.6f}" for t, b, e in zip(_iso_ms(s.t_ms).tolist(), buy.tolist(), sell.tolist(),
                                                       strict=True)]
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


def homegrid_backtest(policy: str, s: Series, data: Path, prices: Path, kwh: float, kw: float) -> dict[str, Any]:
    """``homegrid backtest --json`` for one policy (the issue's command line), without the user's config;
    ``perfect`` with ``--compare`` (its ``compare.no-battery``); ``mpc-persistence``: mpc with
    ``--forecast persistence``."""
    name, forecast = ("mpc", ["--forecast", "persistence"]) if policy == "mpc-persistence" else (policy, [])
    cmd = homegrid_cmd("backtest", "--data", str(data), "--prices", str(prices), "--battery-kwh", f"{kwh:g}",
                       "--battery-kw", f"{kw:g}", "--reserve-percent", "20", "--round-trip", "90",
                       "--step-min", f"{s.step_s / 60:g}", "--timezone", s.timezone, "--latitude", str(s.latitude),
                       "--longitude", str(s.longitude), "--policy", name, *forecast,
                       *(["--compare"] if policy == "perfect" else []), "--json")
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False, env=child_env(data.parent))
    if proc.returncode != 0:
        raise RuntimeError(f"homegrid backtest {policy}: {proc.stderr[-2000:]}")
    out = dict(json.loads(proc.stdout))
    out["wall_s"] = time.perf_counter() - t0
    log(f"  homegrid {policy} {data.stem} {kwh:g} kWh: {out['wall_s']:.0f} s")
    return out


# --- a case: every row, one denominator ---------------------------------------------------------------------------

def share(no_battery: float, policy: float, perfect: float) -> float | None:
    """The share of the perfect-foresight saving a policy captures. [1]"""
    gain = no_battery - perfect
    return (no_battery - policy) / gain if gain > 1e-9 else None


def _row(r: dict[str, Any], source: str) -> dict[str, Any]:
    keep = ("bill", "end_value", "net", "grid_import_wh", "grid_export_wh", "battery_cycles", "solve_ms", "plans",
            "run_s", "wall_s", "solves", "planned_bill", "optim_status", "energy_end_wh")
    return {"source": source, **{k: r[k] for k in keep if k in r}}


def emhass_rows(run: str, res: dict[str, Any], s: Series, buy: np.ndarray, sell: np.ndarray, bat: Battery,
                full: bool) -> dict[str, dict[str, Any]]:
    """An emhass run's executions as rows: its grid flows billed with ``battery_model.bill`` on the case's
    prices; the end energy valued as homegrid values it (not on a cut: the run's year goes on)."""
    v = fair_end_value(buy, bat)
    out = {}
    for how, ex in res["executions"].items():
        # runs before each execution planned from its own level: set-points carried out plans made
        # for the modes' battery level (one plan a step for both)
        label = how if res.get("plans_from") == "own" or how == "modes" else "setpoints, modes' plans"
        grid = np.asarray(ex["grid_w"], dtype=float)[:len(s.t_ms)]
        the_bill = bill(grid, buy, sell, s.dt_h)
        end = (ex["energy_end_wh"] - bat.e_min) / 1000.0 * v if full and "energy_end_wh" in ex else 0.0
        row = _row({k: x for k, x in ex.items() if k != "grid_w"}, "emhass, billed by battery_model")
        battery_w = s.home_w - s.solar_w - grid
        row.update({"bill": the_bill, "end_value": end, "net": the_bill - end, "kept_bill": ex["bill"],
                    **_flows(grid, battery_w, bat, s.dt_h)})
        for k in ("solve_ms", "solves", "planned_bill", "optim_status"):
            row.setdefault(k, res.get(k))
        out[f"emhass {run} ({label})"] = row
    return out


def assemble(case: dict[str, Any], bench: dict[str, dict[str, Any]], homegrid: dict[str, dict[str, Any]],
             emhass: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """A case's rows, shares against one denominator (homegrid's no-battery and perfect nets, else the bench's),
    and the checks: homegrid's no-battery bill against the bench's, homegrid's perfect against the LP."""
    rows: dict[str, dict[str, Any]] = {}
    for pol, r in homegrid.items():
        rows[f"homegrid {pol}"] = _row(r, "homegrid backtest")
    compare = homegrid.get("perfect", {}).get("compare", {})
    if "no-battery" in compare:
        rows["homegrid no-battery"] = _row(compare["no-battery"], "homegrid backtest --compare")
    rows["perfect (independent LP)"] = _row(bench["perfect_lp"], "bench LP")
    rows.update(emhass)
    nb_row, pf_row = rows.get("homegrid no-battery"), rows.get("homegrid perfect")
    if nb_row and pf_row:
        denom = {"from": "homegrid", "no_battery_net": nb_row["net"], "perfect_net": pf_row["net"]}
    else:
        rows["no battery (bench model)"] = _row(bench["no_battery"], "bench battery_model")
        denom = {"from": "bench", "no_battery_net": bench["no_battery"]["net"],
                 "perfect_net": bench["perfect_lp"]["net"]}
    for r in rows.values():
        r["share"] = share(denom["no_battery_net"], r["net"], denom["perfect_net"])
    lp = bench["perfect_lp"]
    checks: dict[str, Any] = {
        "no_battery_bill_bench": bench["no_battery"]["bill"],
        "self_consumption_net_bench": bench["self_consumption"]["net"],
        "perfect_lp_net": lp["net"], "perfect_lp_bill_unvalued": bench["perfect_lp_unvalued"]["bill"],
    }
    if nb_row:
        checks["no_battery_bill_homegrid"] = nb_row["bill"]
        checks["no_battery_bill_diff"] = nb_row["bill"] - bench["no_battery"]["bill"]
    if pf_row:
        checks["perfect_net_homegrid"] = pf_row["net"]
        checks["perfect_vs_lp"] = abs(pf_row["net"] - lp["net"]) / abs(lp["net"]) if lp["net"] else None
    if "homegrid self-consumption" in rows:
        checks["self_consumption_net_homegrid"] = rows["homegrid self-consumption"]["net"]
    return {**case, "denominator": denom, "rows": rows, "checks": checks}


# --- the run -----------------------------------------------------------------------------------------------------

def run(datasets: str = ",".join(DATASETS), tariffs: str = "", batteries: str = ",".join(BATTERIES),
        emhass: str = EMHASS_DEFAULT, jobs: int = 1, reuse: bool | str = "only",
        homegrid: str = ",".join(HOMEGRID_POLICIES), days: int | None = None) -> dict[str, Any]:
    """Every case's table and the budgets' figures (``run_all.py``'s entry). ``tariffs`` empty: each data set's
    own (``Series.tariffs``)."""
    RUNS.mkdir(parents=True, exist_ok=True)
    emhass_runs = [r for r in emhass.split(",") if r]
    if emhass_runs and reuse != "only" and not EMHASS_PY.exists():
        log("emhass's venv is missing: run bash bench/emhass/setup.sh (only kept emhass runs are shown)")
        reuse = "only"
    policies = [p for p in homegrid.split(",") if p]
    if policies and not homegrid_has_backtest():
        log("homegrid backtest is missing: no homegrid rows, the bench's own no-battery and LP as denominator")
        policies = []
    results: dict[str, Any] = {"cases": {}, "days": days, "homegrid_policies": policies, "emhass_runs": emhass_runs}
    pending: list[tuple[str, dict[str, Any], dict[str, Future[dict[str, Any]]],
                        dict[str, Future[dict[str, Any] | None]], tuple[Series, np.ndarray, np.ndarray, Battery],
                        dict[str, dict[str, Any]]]] = []
    tmp = RUNS / "backtest"
    tmp.mkdir(exist_ok=True)
    t_all = time.perf_counter()
    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        for dname in datasets.split(","):
            s = cut(DATASETS[dname](), days)
            data = tmp / f"{s.name}{f'_{days}d' if days else ''}_data.csv"
            write_backtest_data(s, data)
            for tname in (tariffs.split(",") if tariffs else s.tariffs):
                buy, sell = TARIFFS[tname](s)
                inp = RUNS / f"{dname}_{tname}.csv"
                if days is None:
                    write_input(s, buy, sell, inp)
                prices = tmp / f"{data.stem.removesuffix('_data')}_{tname}_prices.csv"
                write_prices(s, buy, sell, prices)
                for bname in batteries.split(","):
                    kwh, kw = BATTERIES[bname]
                    key = f"{dname} / {tname} / {kwh:g} kWh {kw:g} kW"
                    bat = Battery(kwh * 1000, kw * 1000, 20.0, 90.0)
                    hg = {p: pool.submit(homegrid_backtest, p, s, data, prices, kwh, kw) for p in policies}
                    em = {r: pool.submit(emhass_run, f"{dname}_{tname}_{kwh:g}kwh_{r.replace(':', '_')}", r, inp, s,
                                         kwh, kw, "only" if days else reuse) for r in emhass_runs}
                    log(f"{key}: the bench's LP")
                    case = {"dataset": s.name, "tariff": tname, "battery_kwh": kwh, "battery_kw": kw,
                            "steps": len(s.t_ms), "step_s": s.step_s, "days": len(s.t_ms) * s.step_s / 86_400,
                            "timezone": s.timezone, "source": s.source,
                            "end_value_per_kwh": fair_end_value(buy, bat)}
                    pending.append((key, case, hg, em, (s, buy, sell, bat), bench_rows(s, buy, sell, bat)))
        for key, case, hg, em, (s, buy, sell, bat), bench in pending:
            hg_rows = {p: f.result() for p, f in hg.items()}
            em_rows: dict[str, dict[str, Any]] = {}
            for r, f in em.items():
                res = f.result()
                if res is not None:
                    em_rows.update(emhass_rows(r, res, s, buy, sell, bat, days is None))
            results["cases"][key] = assemble(case, bench, hg_rows, em_rows)
    results["wall_s"] = time.perf_counter() - t_all
    results["figures"] = budget_figures(results)
    return results


# --- the tables and the budgets' figures ---------------------------------------------------------------------------

def _quoted(case: dict[str, Any], name: str) -> float | None:
    if case["battery_kwh"] != 10 or case["dataset"] != "emhass_fr":
        return None
    base = "self-consumption" if name == "homegrid self-consumption" else name.replace(" (modes)", "")
    return ISSUE_QUOTED.get((case["tariff"], base)) if name.endswith("(modes)") or base == "self-consumption" else None


def markdown(results: dict[str, Any]) -> str:
    """One table a case, rows best net first."""
    lines: list[str] = []
    for key, case in results["cases"].items():
        d, c = case["denominator"], case["checks"]
        lines.append(f"\n**{key}** ({case['days']:g} days; shares against {d['from']}'s no battery "
                     f"{d['no_battery_net']:.2f} and perfect {d['perfect_net']:.2f}: saving at stake "
                     f"{d['no_battery_net'] - d['perfect_net']:.2f}; end energy worth "
                     f"{case['end_value_per_kwh']:.4f}/kWh)\n")
        checks = [f"no battery: bench model {c['no_battery_bill_bench']:.2f}"]
        if "no_battery_bill_diff" in c:
            checks[0] += f", homegrid {c['no_battery_bill_homegrid']:.2f} (diff {c['no_battery_bill_diff']:+.4f})"
        if c.get("perfect_vs_lp") is not None:
            checks.append(f"perfect net: homegrid {c['perfect_net_homegrid']:.4f}, independent LP "
                          f"{c['perfect_lp_net']:.4f} ({c['perfect_vs_lp']:.2e} apart); LP with the end unvalued: "
                          f"bill {c['perfect_lp_bill_unvalued']:.2f}")
        if "self_consumption_net_homegrid" in c:
            checks.append(f"self-consumption net: homegrid {c['self_consumption_net_homegrid']:.2f}, bench model "
                          f"{c['self_consumption_net_bench']:.2f}")
        lines.append("Checks: " + "; ".join(checks) + ".\n")
        lines.append("| policy | bill | end value | net | share of perfect saving | cycles | import kWh | "
                     "solve p50 / p99 ms |")
        lines.append("|---|---:|---:|---:|---:|---:|---:|---:|")
        for name, r in sorted(case["rows"].items(), key=lambda x: x[1]["net"]):
            sm, sh, cyc = r.get("solve_ms"), r.get("share"), r.get("battery_cycles")
            solve = f"{sm['p50']:.0f} / {sm['p99']:.0f}" if sm and sm.get("p99") else ""
            q = _quoted(case, name)
            lines.append(f"| {name} | {r['bill']:.2f} | {r['end_value']:.2f} | {r['net']:.2f} | "
                         f"{'' if sh is None else f'{sh:.1%}'}{f' (issue: {q:.0%})' if q is not None else ''} | "
                         f"{'' if cyc is None else f'{cyc:.0f}'} | {r.get('grid_import_wh', float('nan')) / 1000:.0f} "
                         f"| {solve} |")
    return "\n".join(lines) + "\n"


def _best_naive(rows: dict[str, dict[str, Any]]) -> tuple[str, float] | None:
    """The best emhass row with persistence forecasts (the budget's realistic forecasts)."""
    em = [(n, r["share"]) for n, r in rows.items() if n.startswith("emhass") and "-naive" in n
          and r.get("share") is not None]
    return max(em, key=lambda t: t[1]) if em else None


def budget_figures(results: dict[str, Any]) -> dict[str, Any]:
    """The figures ``budgets.py`` bounds (``planner.*``), over every case; ``days`` the shortest case's length.

    ``mpc_share_min``: the lowest share of homegrid mpc; ``mpc_above_emhass``: the least (mpc share - best emhass
    persistence share) over the cases with an emhass persistence run; ``mpc_vs_self_consumption``: the largest
    (mpc net - self-consumption net) / |self-consumption net|; ``perfect_vs_lp``: the largest |homegrid perfect
    net - LP net| / |LP net|. None where no case has the rows.
    """
    mpc, above, vs_sc, vs_lp = [], [], [], []
    for case in results["cases"].values():
        rows = case["rows"]
        m = rows.get("homegrid mpc")
        if m is not None and m.get("share") is not None:
            mpc.append(m["share"])
            best = _best_naive(rows)
            if best is not None:
                above.append(m["share"] - best[1])
        sc = rows.get("homegrid self-consumption")
        if m is not None and sc is not None and sc["net"]:
            vs_sc.append((m["net"] - sc["net"]) / abs(sc["net"]))
        if case["checks"].get("perfect_vs_lp") is not None:
            vs_lp.append(case["checks"]["perfect_vs_lp"])
    days = min((c["days"] for c in results["cases"].values()), default=None)
    return {"days": days, "cases": len(results["cases"]),
            "mpc_share_min": min(mpc, default=None), "mpc_above_emhass": min(above, default=None),
            "mpc_vs_self_consumption": max(vs_sc, default=None), "perfect_vs_lp": max(vs_lp, default=None)}


def summary_rows(r: dict[str, Any]) -> list[tuple[str, object, object, float | None, str, str]]:
    """Rows of run_all's table: each case's mpc share against the best emhass with persistence forecasts."""
    rows: list[tuple[str, object, object, float | None, str, str]] = []
    for key, case in r.get("cases", {}).items():
        cr = case["rows"]
        hg, sc, best = cr.get("homegrid mpc"), cr.get("homegrid self-consumption"), _best_naive(cr)
        sc_share = f"{sc['share']:.0%}" if sc and sc.get("share") is not None else "-"
        rows.append((f"14 share of the perfect saving, {key}: homegrid mpc (peer: best emhass with persistence; "
                     f"self-consumption {sc_share})",
                     f"{hg['share']:.1%}" if hg and hg.get("share") is not None else "not run",
                     f"{best[1]:.1%} ({best[0]})" if best else None, None, "", ""))
    return rows


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--datasets", default=",".join(DATASETS), help=f"of {','.join(DATASETS)}")
    p.add_argument("--tariffs", default="", help=f"of {','.join(TARIFFS)} (default: each data set's own)")
    p.add_argument("--batteries", default=",".join(BATTERIES), help="of 10 (10 kWh / 5 kW) and 13.5 (13.5 / 5)")
    p.add_argument("--homegrid", default=",".join(HOMEGRID_POLICIES),
                   help=f"homegrid backtest policies, of {','.join(HOMEGRID_POLICIES + EXTRA_POLICIES)} ('' for none)")
    p.add_argument("--emhass", default=EMHASS_DEFAULT,
                   help=f"emhass runs, of {','.join(EMHASS_RUNS)} ('' for none), each with an optional ':init' "
                        "(every plan ends at the level it starts at; default: at the reserve); mpc takes ~20 min "
                        "a year at 30 min")
    p.add_argument("--jobs", type=int, default=1, help="backtests and emhass runs at once")
    p.add_argument("--reuse", action="store_true", help="take emhass runs kept in bench/out/planner/, run the rest")
    p.add_argument("--kept-only", action="store_true", help="only emhass runs kept in bench/out/planner/, no new one")
    p.add_argument("--days", type=int, help="cut every data set to its first N days (default: all of it)")
    p.add_argument("--out", type=Path, default=OUT / "planner.json")
    a = p.parse_args(argv)
    results = run(a.datasets, a.tariffs, a.batteries, a.emhass, a.jobs, "only" if a.kept_only else a.reuse,
                  a.homegrid, a.days)
    table = markdown(results)
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(results, indent=1))
    a.out.with_suffix(".md").write_text(table)
    print(table)
    print(json.dumps(results["figures"], indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
