"""The yardstick a plan is measured against: the battery in self-powered mode over the same forecasts.

:func:`self_powered` plays a :class:`~homegrid.planner.problem.Problem` the way a battery left to itself does (the
Tesla default, "Self-Powered"): each step the sun's surplus over the home charges it (within its power limit and
room), a deficit is covered from it down to the step's reserve floor, and the grid takes the rest. The car, when
the problem has one, charges as a plain charger does: at its full power from the first plugged-in step until the
energy it needs is in (its charging is load the battery covers like any other). It answers a
:class:`~homegrid.planner.problem.Plan` so that both are priced the same way by :func:`grid_cost`.

:func:`replay_self_powered` plays the same mode over a *measured* past instead (the home's load and solar per
interval as the store has them): the meters the home would have had, had its battery been left in self-powered
mode, for the Money view's "what the planner saved against self-powered".

Pure: arrays in, arrays out.
"""

from __future__ import annotations

import numpy as np

from homegrid.planner.problem import BatterySpec, Mode, Plan, Problem, fair_end_value
from homegrid.planner.simulate import battery_step
from homegrid.tariffs.meters import HomeIntervals

__all__ = ["end_value", "grid_cost", "replay_self_powered", "self_powered"]


def self_powered(problem: Problem) -> Plan:
    """The battery in self-consumption over the problem's forecasts (see the module's notes).

    Parameters
    ----------
    problem : Problem

    Returns
    -------
    Plan
        Every mode :attr:`Mode.SELF_POWERED`; ``cost`` as :func:`grid_cost` prices it (less the end value of the
        energy left, as the optimiser counts it).
    """
    p, b = problem, problem.battery
    n, h = len(p.t_ms), p.hours
    cap = b.capacity_wh
    reserve = np.asarray(p.reserve_percent, dtype=np.float64)
    energy = cap * min(100.0, max(0.0, p.soc_percent)) / 100.0  # [Wh]
    battery_w, grid_w, soc, car_w = np.zeros(n), np.zeros(n), np.zeros(n), np.zeros(n)
    car_left = 0.0 if p.car is None else max(0.0, p.car.energy_wh)
    for t in range(n):
        if p.car is not None and bool(p.car.plugged[t]) and car_left > 0 and h > 0:
            car_w[t] = min(p.car.max_w, car_left / h)
            car_left -= car_w[t] * h
        net = float(p.load_w[t]) + car_w[t] - float(p.solar_w[t])  # + the home wants, - the sun's surplus [W]
        # the surplus charges within power and room, a deficit discharges down to the floor
        battery_w[t], energy = battery_step(b, energy, net, h, cap * reserve[t] / 100.0)
        grid_w[t] = net - battery_w[t]
        soc[t] = 100.0 * energy / cap if cap > 0 else 0.0
    plan = Plan(battery_w=battery_w, car_w=car_w, grid_w=grid_w, soc_percent=soc,
                modes=[Mode.SELF_POWERED] * n, cost=0.0)
    plan.cost = grid_cost(problem, plan) - end_value(problem, plan)
    return plan


def grid_cost(problem: Problem, plan: Plan) -> float:
    """What the plan's grid flows cost over the horizon: imports at the import price (through the tier blocks,
    filled in time order, where the problem has them) less exports at the export price, plus the demand charges
    (no wear, no end value). [currency]"""
    h = problem.hours
    import_w = np.clip(plan.grid_w, 0.0, None)
    imported = import_w / 1000.0 * h  # [kWh]
    exported = np.clip(-plan.grid_w, 0.0, None) / 1000.0 * h
    tiers = problem.import_tiers
    import_cost = float(np.sum(problem.import_price * imported)) if tiers is None else tiers.cost(imported * 1000.0)
    demand = sum(d.cost(import_w) for d in problem.demand_charges())
    return import_cost - float(np.sum(problem.export_price * exported)) + demand


def end_value(problem: Problem, plan: Plan) -> float:
    """What the energy a plan leaves in the battery at the horizon's end is worth, as the optimiser values it.
    [currency]"""
    if len(plan.soc_percent) == 0:
        return 0.0
    kwh = problem.battery.capacity_wh * float(plan.soc_percent[-1]) / 100.0 / 1000.0
    return fair_end_value(problem) * kwh


def replay_self_powered(measured: HomeIntervals, spec: BatterySpec, soc_percent: float,
                        reserve_percent: float) -> tuple[HomeIntervals, float]:
    """The measured intervals replayed with the battery in self-powered mode, stepped as :func:`self_powered` steps
    it (:func:`homegrid.planner.simulate.battery_step`: the surplus charges, a deficit discharges down to the
    reserve, the grid takes the rest).

    The home's load (the car's charging included, as it happened) and the solar are the measured ones; the battery
    and the grid are the replay's. Intervals missing from ``measured`` (the store has no data there) are replayed
    as nothing used or made: the battery rests (only the stored intervals are stepped, so a bill of the result
    misses the same hours).

    Parameters
    ----------
    measured : HomeIntervals
        The store's intervals: rising ``t_ms`` on a grid of ``step_ms``; ``home`` and ``solar`` are read. [Wh]
    spec : BatterySpec
        The battery replayed.
    soc_percent : float
        Its level at the first interval's start. [%]
    reserve_percent : float
        The reserve it does not discharge below. [%]

    Returns
    -------
    HomeIntervals
        The same intervals with the replay's ``grid_import``, ``grid_export``, ``battery_charge`` and
        ``battery_discharge`` (no flows between them). [Wh]
    float
        The replayed battery's level at the end. [%]
    """
    step = measured.step_ms
    hours = step / 3_600_000
    t = np.asarray(measured.t_ms, dtype=np.int64)
    load = np.clip(np.nan_to_num(np.asarray(measured.home, dtype=np.float64)), 0.0, None)  # [Wh]
    solar = np.clip(np.nan_to_num(np.asarray(measured.solar, dtype=np.float64)), 0.0, None)
    cap = spec.capacity_wh
    floor_wh = cap * min(100.0, max(0.0, reserve_percent)) / 100.0
    energy = cap * min(100.0, max(0.0, soc_percent)) / 100.0  # [Wh]
    battery_wh = np.zeros(len(t))
    # a missing interval is no load and no sun: the battery rests through it
    for i, net_wh in enumerate((load - solar).tolist()):
        w, energy = battery_step(spec, energy, net_wh / hours, hours, floor_wh)
        battery_wh[i] = w * hours
    grid_wh = load - solar - battery_wh
    replayed = HomeIntervals(t, step, load, solar, np.clip(grid_wh, 0.0, None), np.clip(-grid_wh, 0.0, None),
                             np.clip(-battery_wh, 0.0, None), np.clip(battery_wh, 0.0, None))
    return replayed, 100.0 * energy / cap if cap > 0 else 0.0
