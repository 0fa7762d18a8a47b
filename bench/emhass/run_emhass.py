"""Drive emhass offline (no Home Assistant) on a series and carry its plans out through the bench's battery model.

Run with emhass's own venv (``bash bench/emhass/setup.sh`` makes it)::

    bench/emhass/.venv/bin/python bench/emhass/run_emhass.py --input IN.csv --policy mpc --forecast naive \
        --battery-kwh 10 --battery-kw 5 --out OUT.json

The input is canonical-CSV-like: ``time`` (ISO 8601 with offset, the step's start), ``home_power`` and
``solar_power`` [W, step averages], ``import_price`` and ``export_price`` [currency/kWh]; evenly spaced
(30 or 15 min). emhass is called as its own tests and ``command_line.py`` call it: the config is built from
emhass's ``config_defaults.json`` with ``build_config`` / ``build_secrets`` / ``build_params`` and the
battery, step and zone set, then ``Optimization.perform_dayahead_forecast_optim`` (policy ``dayahead``: one
plan at every local midnight for the local day, 46/48/50 steps at 30 min) or
``Optimization.perform_naive_mpc_optim`` (policy ``mpc``: a plan at every step over ``--horizon-steps``)
on a DataFrame with the per-step prices as ``unit_load_cost`` / ``unit_prod_price``, cost function
``profit``; no deferrable loads. emhass's other defaults stay (``set_nodischarge_to_grid`` true: the
battery does not discharge to the grid).

Forecasts: ``naive`` is emhass's naive (persistence) forecast: each future step's load and solar are
the values 24 h earlier (``load_forecast_method: naive``); the first day, with no day before it, takes
the next day's values. ``perfect``: the real values.

Each plan's battery power is carried out two ways through ``bench/battery_model.py`` with the real load, each
its own closed loop (every plan starts from the level that execution's battery really has):

- ``setpoints``: the planned battery power as a set-point, whatever the real load does;
- ``modes``: the plan as modes a home battery accepts (self-consumption with a target level, as HA users
  drive a battery from emhass's ``sensor.p_batt_forecast`` / ``sensor.soc_batt_forecast``): a planned grid
  charge becomes "charge up to the planned level", a planned discharge to the grid "export at least the
  planned power", a planned idle step with a deficit "hold", any other step "self-consumption".

Output JSON: per execution the grid power per step [W], import and export [Wh], the bill at the per-step
prices, battery cycles, the stored energy at the end, the modes used, solve times [ms] and ``planned_bill``
(the executed steps priced as planned: not a physical figure, as each plan starts from the real level).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import math
import pathlib
import sys
import tempfile
import time
import warnings

import numpy as np
import pandas as pd

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

from battery_model import CHARGE, EXPORT, HOLD, SELF, SETPOINT, Battery, bill, cycles

EPS_W = 10.0  # a planned power below this is idle [W]


def read_input(path: str, timezone: str) -> pd.DataFrame:
    df = pd.read_csv(path)
    idx = pd.DatetimeIndex(pd.to_datetime(df["time"], utc=True)).tz_convert(timezone)
    out = pd.DataFrame({"home": df["home_power"].astype(float).to_numpy(),
                        "solar": df["solar_power"].astype(float).to_numpy(),
                        "buy": df["import_price"].astype(float).to_numpy(),
                        "sell": df["export_price"].astype(float).to_numpy()}, index=idx)
    steps = np.diff(idx.asi8)
    if len(set(steps.tolist())) != 1:
        raise SystemExit("the input's steps are not evenly spaced")
    return out


async def emhass_objects(step_min: int, battery: Battery, timezone: str, horizon: int, tmp: pathlib.Path):
    import emhass
    from emhass.optimization import Optimization
    from emhass.utils import build_config, build_params, build_secrets, get_yaml_parse

    root = pathlib.Path(emhass.__file__).parent
    conf = {"data_path": tmp, "root_path": root, "defaults_path": root / "data/config_defaults.json",
            "associations_path": root / "data/associations.csv"}
    logger = logging.getLogger("emhass-bench")
    logger.setLevel(logging.ERROR)
    config = await build_config(conf, logger, conf["defaults_path"])
    eta = battery.eta
    config.update({
        "optimization_time_step": step_min,
        "costfun": "profit",
        "set_use_pv": True,
        "set_use_battery": True,
        "number_of_deferrable_loads": 0,
        "nominal_power_of_deferrable_loads": [], "minimum_power_of_deferrable_loads": [],
        "cost_forecast_per_deferrable_load": [], "is_electric_load": [],
        "operating_hours_of_each_deferrable_load": [], "start_timesteps_of_each_deferrable_load": [],
        "end_timesteps_of_each_deferrable_load": [], "treat_deferrable_load_as_semi_cont": [],
        "set_deferrable_load_single_constant": [], "set_deferrable_startup_penalty": [],
        "deferrable_load_max_cost": [], "set_deferrable_max_startups": [], "def_minimum_on_time": [],
        "def_minimum_off_time": [],
        "battery_nominal_energy_capacity": battery.capacity_wh,
        "battery_charge_power_max": battery.power_w,
        "battery_discharge_power_max": battery.power_w,
        "battery_charge_efficiency": eta,
        "battery_discharge_efficiency": eta,
        "battery_minimum_state_of_charge": battery.reserve_percent / 100.0,
        "battery_maximum_state_of_charge": 1.0,
        "battery_target_state_of_charge": battery.reserve_percent / 100.0,
        # no artificial grid limit: the home's load plus a full charge fits
        "maximum_power_from_grid": 100_000, "maximum_power_to_grid": 100_000,
        "num_threads": 1,
        "load_forecast_method": "naive",
        "prediction_horizon": horizon,
    })
    _, secrets = await build_secrets(conf, logger, no_response=True)
    secrets["time_zone"] = timezone
    params = await build_params(conf, secrets, config, logger)
    params["optim_conf"]["set_use_pv"] = True
    rh, oc, pc = get_yaml_parse(json.dumps(params, default=str), logger)
    opt = Optimization(rh, oc, pc, "unit_load_cost", "unit_prod_price", "profit", conf, logger)
    return opt, rh


def forecast_values(values: np.ndarray, start: int, n: int, per_day: int, kind: str) -> np.ndarray:
    """Forecast of ``values[start:start+n]``: persistence (24 h earlier) or perfect."""
    idx = np.arange(start, start + n)
    if kind == "perfect":
        out_idx = idx.copy()
        while (out_idx >= len(values)).any():  # past the data's end: the day before
            out_idx = np.where(out_idx >= len(values), out_idx - per_day, out_idx)
        return values[out_idx]
    src = idx - per_day
    src = np.where(src >= start, src - per_day, src)  # never the step being planned or later
    src = np.where(src < 0, src + 2 * per_day, src)  # the first day: the next day's values
    src = np.where(src >= len(values), src - per_day, src)
    return values[src]


def mode_of(p_plan: float, grid_plan: float, net_plan: float) -> str:
    if p_plan < -EPS_W:
        return CHARGE if grid_plan > EPS_W else SELF
    if p_plan > EPS_W:
        return EXPORT if grid_plan < -EPS_W else SELF
    return HOLD if net_plan > EPS_W else SELF


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--input", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--policy", choices=("dayahead", "mpc"), required=True)
    p.add_argument("--forecast", choices=("naive", "perfect"), default="naive")
    p.add_argument("--timezone", default="Europe/Paris")
    p.add_argument("--battery-kwh", type=float, default=13.5)
    p.add_argument("--battery-kw", type=float, default=5.0)
    p.add_argument("--reserve-percent", type=float, default=20.0)
    p.add_argument("--round-trip", type=float, default=90.0, help="round-trip efficiency [%%]")
    p.add_argument("--horizon-steps", type=int, default=0, help="MPC horizon (default 24 h of steps)")
    p.add_argument("--soc-final", choices=("reserve", "init"), default="reserve",
                   help="each plan's final level: the reserve, or the level it starts at")
    p.add_argument("--steps", type=int, default=0, help="replay only the first N steps (tests)")
    p.add_argument("--executions", default="modes,setpoints",
                   help="how plans are carried out, each its own closed loop: modes, setpoints")
    p.add_argument("--progress", action="store_true", help="steps done, on standard error")
    a = p.parse_args(argv)
    warnings.filterwarnings("ignore")

    data = read_input(a.input, a.timezone)
    if a.steps:
        data = data.iloc[: a.steps]
    step_s = int((data.index[1] - data.index[0]).total_seconds())
    step_min = step_s // 60
    dt_h = step_s / 3600.0
    per_day = 86_400 // step_s
    horizon = a.horizon_steps or per_day
    bat = Battery(a.battery_kwh * 1000.0, a.battery_kw * 1000.0, a.reserve_percent, a.round_trip)
    home, solar = data["home"].to_numpy(), data["solar"].to_numpy()
    buy, sell = data["buy"].to_numpy(), data["sell"].to_numpy()
    n = len(data)

    executions = [x for x in a.executions.split(",") if x]
    runs: dict[str, dict[str, object]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        opt, _ = asyncio.run(emhass_objects(step_min, bat, a.timezone, horizon, pathlib.Path(tmp)))
        for how in executions:
            runs[how] = closed_loop(opt, how, a, data, bat, horizon, per_day, step_s)

    result: dict[str, object] = {
        "peer": "emhass", "policy": a.policy, "forecast": a.forecast, "steps": n, "step_s": step_s,
        "battery": {"capacity_wh": bat.capacity_wh, "power_w": bat.power_w, "reserve_percent": bat.reserve_percent,
                    "round_trip_percent": bat.round_trip_percent},
        "soc_final": a.soc_final, "horizon_steps": horizon if a.policy == "mpc" else None,
        "plans_from": "own",  # each execution re-plans from its own battery's level
        "executions": {},
    }
    for how, r in runs.items():
        b = np.asarray(r.pop("battery_w"))
        g = home - solar - b
        ms = np.asarray(r.pop("solve_ms"))
        result["executions"][how] = {  # type: ignore[index]
            "bill": bill(g, buy, sell, dt_h),
            "grid_import_wh": float(np.sum(np.maximum(g, 0)) * dt_h),
            "grid_export_wh": float(np.sum(np.maximum(-g, 0)) * dt_h),
            "battery_cycles": cycles(b, bat, dt_h),
            "solves": len(ms),
            "solve_ms": {"p50": float(np.percentile(ms, 50)), "p99": float(np.percentile(ms, 99)),
                         "mean": float(ms.mean()), "total_s": float(ms.sum() / 1000.0)},
            **r,
            "grid_w": [round(float(x), 1) for x in g],
        }
    pathlib.Path(a.out).write_text(json.dumps(result))
    return 0


def closed_loop(opt: object, how: str, a: argparse.Namespace, data: pd.DataFrame, bat: Battery, horizon: int,
                per_day: int, step_s: int) -> dict[str, object]:
    """Plan (at each local midnight, or every step) from this execution's own battery level, carry it out."""
    home, solar = data["home"].to_numpy(), data["solar"].to_numpy()
    buy, sell = data["buy"].to_numpy(), data["sell"].to_numpy()
    n, dt_h = len(data), step_s / 3600.0
    soc_min = a.reserve_percent / 100.0
    e = bat.e_min
    out = np.zeros(n)
    solve_ms: list[float] = []
    statuses: dict[str, int] = {}
    modes: dict[str, int] = {}
    planned_bill = 0.0
    plan: pd.DataFrame | None = None
    plan_at = 0
    local_dates = data.index.date
    t_start = time.perf_counter()
    for i in range(n):
        new_day = i == 0 or local_dates[i] != local_dates[i - 1]
        if a.policy == "mpc" or new_day or plan is None:
            if a.policy == "dayahead":
                length = int(np.sum(local_dates[i:i + 2 * per_day] == local_dates[i]))
            else:
                length = horizon
            idx = pd.date_range(data.index[i], periods=length, freq=f"{step_s}s")
            src = np.arange(i, i + length)
            price_src = np.where(src >= n, src - per_day * ((src - n) // per_day + 1), src)
            df = pd.DataFrame({"unit_load_cost": buy[price_src], "unit_prod_price": sell[price_src]}, index=idx)
            p_load = pd.Series(forecast_values(home, i, length, per_day, a.forecast), index=idx)
            p_pv = pd.Series(forecast_values(solar, i, length, per_day, a.forecast), index=idx)
            soc0 = min(1.0, max(soc_min, e / bat.capacity_wh))
            soc_final = soc_min if a.soc_final == "reserve" else soc0
            t0 = time.perf_counter()
            if a.policy == "dayahead":
                plan = opt.perform_dayahead_forecast_optim(  # type: ignore[attr-defined]
                    df, p_pv, p_load, soc_init=soc0, soc_final=soc_final)
            else:
                plan = opt.perform_naive_mpc_optim(  # type: ignore[attr-defined]
                    df, p_pv, p_load, length, soc_init=soc0, soc_final=soc_final)
            solve_ms.append((time.perf_counter() - t0) * 1000.0)
            st = str(opt.optim_status)  # type: ignore[attr-defined]
            statuses[st] = statuses.get(st, 0) + 1
            plan_at = i
        assert plan is not None
        j = i - plan_at
        p_plan = float(plan["P_batt"].iloc[j]) if "P_batt" in plan else 0.0
        g_plan = float(plan["P_grid"].iloc[j])
        net_plan = float(plan["P_Load"].iloc[j] - plan["P_PV"].iloc[j])
        if not (math.isfinite(p_plan) and math.isfinite(g_plan)):
            p_plan, g_plan = 0.0, net_plan
        planned_bill += (max(g_plan, 0) * buy[i] - max(-g_plan, 0) * sell[i]) * dt_h / 1000.0
        net = float(home[i] - solar[i])
        if how == "setpoints":
            mode, value = SETPOINT, p_plan
        else:
            mode = mode_of(p_plan, g_plan, net_plan)
            soc_plan = float(plan["SOC_opt"].iloc[j]) if "SOC_opt" in plan else e / bat.capacity_wh
            value = soc_plan * bat.capacity_wh if mode == CHARGE else p_plan
        modes[mode] = modes.get(mode, 0) + 1
        out[i], e = bat.clip(e, bat.request(mode, net, e, dt_h, value), dt_h)
        if a.progress and i and i % 1000 == 0:
            el = time.perf_counter() - t_start
            print(f"{how} {i}/{n} steps, {el:.0f} s, ~{el / i * (n - i):.0f} s to go", file=sys.stderr, flush=True)
    return {"battery_w": out, "solve_ms": solve_ms, "optim_status": statuses, "modes": modes,
            "energy_end_wh": e, "planned_bill": planned_bill}


if __name__ == "__main__":
    raise SystemExit(main())
