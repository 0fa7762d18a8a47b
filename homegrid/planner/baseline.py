"""The yardstick a plan is measured against: the battery in self-powered mode over the same forecasts.

:func:`self_powered` plays a :class:`~homegrid.planner.problem.Problem` the way a battery left to itself does (the
Tesla default, "Self-Powered"): each step the sun's surplus over the home charges it (within its power limit and
room), a deficit is covered from it down to the step's reserve floor, and the grid takes the rest. The car, when
the problem has one, charges as a plain charger does: at its full power from the first plugged-in step until the
energy it needs is in (its charging is load the battery covers like any other). It answers a
:class:`~homegrid.planner.problem.Plan` so that both are priced the same way by :func:`grid_cost`.

Pure: arrays in, arrays out.
"""

from __future__ import annotations

import numpy as np

from homegrid.planner.problem import Mode, Plan, Problem, fair_end_value
from homegrid.planner.simulate import battery_step

__all__ = ["end_value", "grid_cost", "self_powered"]


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
