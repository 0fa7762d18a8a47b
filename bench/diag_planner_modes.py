"""Where mpc's share of the perfect-foresight saving goes (issue 14, the US net-metered rate): a diagnostic.

For one data set and tariff of the bench (``planner_data``), in process (no CSV, no subprocess), each net is the
bill (per-step prices: net metering where export = import) less the end value as ``homegrid backtest`` counts it:

- ``perfect``: the optimum over the whole period (the ceiling);
- ``mpc``: homegrid's planner as ``homegrid backtest --policy mpc`` runs it (site forecasts, 36 h, every step);
- ``mpc-true``: the same with the real load and solar ahead (``--forecast perfect``): what the forecasts cost;
- ``plan-modes``: the whole period's perfect plan carried out open loop through the executor's modes (no re-plan):
  what the modes cost when nothing corrects the drift;
- ``mpc-true-nostore`` / ``mpc-nostore``: an upper bound with a mode no Powerwall has: outside a grid charge, the
  sun's surplus is not stored unless the plan charges the battery in that step;
- ``self-consumption``.

``--no-defer`` and ``--no-riskless`` switch off the executor's ``export_later`` and the riskless grid charge of
``gain_pays`` (the code before them). The losses against ``perfect`` are broken down by weekday/weekend and import
price. Usage::

    .venv/bin/python bench/diag_planner_modes.py --data virtual_home --tariff us_tou --policies mpc,mpc-true
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import planner_data as pd

from homegrid.planner import execute
from homegrid.planner import simulate as sim
from homegrid.planner.backtest import SiteForecast, battery_spec
from homegrid.planner.optimise import plan
from homegrid.planner.problem import BatterySpec, Mode, Plan, Problem
from homegrid.timezones import local_calendar


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default="virtual_home", choices=sorted(pd.DATASETS))
    ap.add_argument("--tariff", default="us_tou", choices=sorted(pd.TARIFFS))
    ap.add_argument("--days", type=int, help="this many days (default: all)")
    ap.add_argument("--start-day", type=int, default=0)
    ap.add_argument("--kwh", type=float, default=10.0)
    ap.add_argument("--policies", default="mpc,mpc-true,plan-modes")
    ap.add_argument("--no-defer", action="store_true", help="without export_later")
    ap.add_argument("--no-riskless", action="store_true", help="without the riskless grid charge of gain_pays")
    a = ap.parse_args()

    s = pd.DATASETS[a.data]()
    buy, sell = pd.TARIFFS[a.tariff](s)
    per_day = round(86_400 / s.step_s)
    lo = a.start_day * per_day
    hi = len(s.t_ms) if a.days is None else lo + a.days * per_day
    step_ms = s.step_s * 1000
    period = sim.Period(s.t_ms[lo:hi], step_ms, s.home_w[lo:hi], s.solar_w[lo:hi], np.zeros(hi - lo), buy[lo:hi],
                        sell[lo:hi], s.timezone, (), 0.0, 20.0)
    spec = battery_spec(a.kwh, 5.0, 90.0)
    none = battery_spec(0.0, 0.0, 1.0)
    _switches(a.no_defer, a.no_riskless)
    nostore = _no_store_hooks()
    end_value = sim.fair_end_value(period, spec)

    def bill_and_net(o: sim.Outcome, sp: BatterySpec) -> tuple[np.ndarray, float]:
        g = o.grid_w
        bill = (np.clip(g, 0, None) * period.import_price - np.clip(-g, 0, None) * period.export_price) \
            * period.hours / 1000
        end = (o.soc_wh[-1] - o.soc_start_wh) / 1000 * end_value if sp.capacity_wh else 0.0
        return bill, float(bill.sum() - end)

    def policy(name: str) -> sim.Policy:
        site = SiteForecast(s.timezone, s.latitude, s.longitude, step_ms)
        known = sim.perfect_forecast(period)
        made: dict[str, Callable[[], sim.Policy]] = {
            "perfect": lambda: sim.perfect(period, spec, plan),
            "mpc": lambda: sim.mpc(period, spec, plan, site),
            "mpc-nostore": lambda: sim.mpc(period, spec, plan, site),
            "mpc-true": lambda: sim.mpc(period, spec, plan, known),
            "mpc-true-nostore": lambda: sim.mpc(period, spec, plan, known),
            "plan-modes": lambda: _plan_through_modes(period, spec),
            "self-consumption": sim.self_consumption,
        }
        return made[name]()

    nets: dict[str, float] = {}
    bills: dict[str, np.ndarray] = {}
    outs: dict[str, sim.Outcome] = {}
    _, net_none = bill_and_net(sim.simulate(period, none, sim.no_battery()), none)
    names = ["perfect", *[p for p in a.policies.split(",") if p and p != "perfect"], "self-consumption"]
    for name in names:
        t0 = time.perf_counter()
        nostore[0] = name.endswith("nostore")
        outs[name] = sim.simulate(period, spec, policy(name))
        bills[name], nets[name] = bill_and_net(outs[name], spec)
        print(f"{name}: net {nets[name]:.2f} ({time.perf_counter() - t0:.0f} s)", file=sys.stderr, flush=True)
    best = nets["perfect"]
    print(f"{a.data} / {a.tariff} / {a.kwh:g} kWh, days {a.days or 'all'} from {a.start_day}; defer "
          f"{not a.no_defer}, riskless charge {not a.no_riskless}")
    print(f"  {'no-battery':18s} net {net_none:9.2f}")
    for name, v in nets.items():
        print(f"  {name:18s} net {v:9.2f}  share {(net_none - v) / (net_none - best) * 100:6.1f} %")
    _, weekday, _, _ = local_calendar(period.t_ms, s.timezone)
    weekend = weekday >= 5
    price = np.round(period.import_price, 4)
    for name, o in outs.items():
        if name == "perfect":
            continue
        d = bills[name] - bills["perfect"]
        for w in (False, True) if len(np.unique(price)) <= 12 else ():  # a time-of-use rate's few prices
            parts = " ".join(f"{p:.3f}:{d[(weekend == w) & (price == p)].sum():+.1f}" for p in np.unique(price))
            print(f"  {name} loss vs perfect, {'weekend' if w else 'weekday'} by import price: {parts} "
                  f"(total {d[weekend == w].sum():+.1f})")
        modes = np.array([m.value for m in o.modes])
        print(f"  {name} by mode: " + " ".join(f"{m}:{d[modes == m].sum():+.1f}" for m in np.unique(modes))
              + f"; cycles {o.cycles(spec):.0f}")


def _switches(no_defer: bool, no_riskless: bool) -> None:
    """The code before the changes, where asked."""
    if no_defer:
        execute.export_later = lambda *args, **kw: None  # type: ignore[assignment]
    if no_riskless:
        gain = execute.gain_pays

        def old_gain(problem: Problem, plan_: Plan, step: int, margin: float = execute.GAIN_MARGIN
                     ) -> tuple[bool, float]:
            if plan_.modes[step] is Mode.CHARGE:  # the riskless test needs export from the battery
                problem = dataclasses.replace(problem, battery=dataclasses.replace(problem.battery,
                                                                                   export_from_battery=False))
            return gain(problem, plan_, step, margin)

        execute.gain_pays = old_gain  # type: ignore[assignment]


def _no_store_hooks() -> list[bool]:
    """Hooks the upper bound's mode in: the returned flag on, the local loop stores no sun outside a grid charge
    unless the plan charges in that step."""
    planned = [0.0]
    on = [False]
    command = sim.battery_command
    follow = sim.follow

    def remember(problem: Problem, plan_: Plan, step: int = 0, **kw: Any) -> Any:
        planned[0] = float(plan_.battery_w[step])
        return command(problem, plan_, step, **kw)

    def no_store(spec: BatterySpec, cmd: sim.Command, net_w: float, soc_wh: float, hours: float,
                 floor_wh: float) -> float:
        w = follow(spec, cmd, net_w, soc_wh, hours, floor_wh)
        if on[0] and cmd.mode is not Mode.CHARGE and planned[0] > -1.0 and w < 0:
            return 0.0
        return w

    sim.battery_command = remember  # type: ignore[assignment]
    sim.follow = no_store  # type: ignore[assignment]
    return on


def _plan_through_modes(period: sim.Period, spec: BatterySpec) -> sim.Policy:
    """The whole period's perfect plan, each step carried out as the executor's mode (open loop)."""
    problem = Problem(period.t_ms, period.step_ms, period.load_w, period.solar_w, period.import_price,
                      period.export_price, spec, period.reserve_percent, period.reserve_percent, None,
                      end_value_per_kwh=sim.fair_end_value(period, spec))
    best = plan(problem)
    last: list[sim.Command] = []

    def decide(i: int, soc_wh: float) -> sim.Command:
        was = last[-1] if last else None
        hold = was.level_percent if was is not None and was.mode is Mode.HOLD else soc_wh / spec.capacity_wh * 100
        cmd, _ = sim.battery_command(problem, best, i, hold_percent=hold)
        out = sim.Command(Mode(cmd.mode), cmd.target_percent)
        last[:] = [out]
        return out

    return sim.Policy("plan-modes", decide)


if __name__ == "__main__":
    main()
