"""An independent LP of the battery (and one car need) with scipy's linprog: the peer the backtest's ``perfect``
is held against, and a stand-in optimiser for the replay's plumbing (``solve(problem) -> Plan``).

Per step t (h hours): charge c, discharge d, import gi, export ge, car e (all >= 0, kW), stored s (kWh, at the
step's end). Balance: load + e + c + ge = solar + d + gi; s_t = s_{t-1} + h (c eta_c - d / eta_d);
reserve <= s <= capacity; the car's energy by its deadline. Minimise import cost - export credit - the end value of
s_T (above the start). No binaries: where both prices are positive, charging and discharging at once never pays.
"""

from __future__ import annotations

import time

import numpy as np
from scipy.optimize import linprog
from scipy.sparse import lil_matrix

from homegrid.planner.problem import Mode, Plan, Problem


def solve(p: Problem) -> Plan:
    started = time.perf_counter()
    n, h, b = len(p.t_ms), p.hours, p.battery
    cap = b.capacity_wh / 1000
    s0 = p.soc_percent / 100 * cap
    floor = np.minimum(np.asarray(p.reserve_percent) / 100 * cap, cap)
    floor = np.minimum(floor, s0 + np.arange(1, n + 1) * h * b.max_charge_w / 1000 * b.charge_efficiency)
    car = p.car
    ic, idis, igi, ige, ie, is_ = (np.arange(n) + k * n for k in range(6))
    nv = 6 * n
    cost = np.zeros(nv)
    cost[igi] = p.import_price * h
    cost[ige] = -p.export_price * h
    end_value = p.end_value_per_kwh if p.end_value_per_kwh is not None else float(np.mean(p.import_price)) * \
        b.discharge_efficiency
    cost[is_[-1]] = -end_value
    bounds = [(0, b.max_charge_w / 1000)] * n + [(0, b.max_discharge_w / 1000)] * n + [(0, None)] * 2 * n
    car_hi = np.zeros(n)
    if car is not None:
        car_hi = np.where(np.asarray(car.plugged, dtype=bool), car.max_w / 1000, 0.0)
    bounds += [(0, float(x)) for x in car_hi]
    bounds += [(float(f), cap) for f in floor]
    a_eq = lil_matrix((2 * n, nv))
    b_eq = np.zeros(2 * n)
    for t in range(n):
        a_eq[t, ic[t]] = 1
        a_eq[t, ige[t]] = 1
        a_eq[t, ie[t]] = 1
        a_eq[t, idis[t]] = -1
        a_eq[t, igi[t]] = -1
        b_eq[t] = (p.solar_w[t] - p.load_w[t]) / 1000
        r = n + t
        a_eq[r, is_[t]] = 1
        if t:
            a_eq[r, is_[t - 1]] = -1
        a_eq[r, ic[t]] = -h * b.charge_efficiency
        a_eq[r, idis[t]] = h / b.discharge_efficiency
        b_eq[r] = s0 if t == 0 else 0.0
    a_ub, b_ub = None, None
    if car is not None and car.energy_wh > 0:
        need = min(car.energy_wh / 1000, float(car_hi[: car.deadline_step].sum() * h))
        a_ub = lil_matrix((2, nv))
        a_ub[0, ie[: car.deadline_step]] = -h
        a_ub[1, ie] = h
        b_ub = np.array([-need, car.energy_wh / 1000])
    res = linprog(cost, A_ub=None if a_ub is None else a_ub.tocsr(), b_ub=b_ub, A_eq=a_eq.tocsr(), b_eq=b_eq,
                  bounds=bounds, method="highs")
    assert res.status == 0, res.message
    x = res.x
    c, d, gi, ge, e, s = x[ic], x[idis], x[igi], x[ige], x[ie], x[is_]
    modes = [Mode.CHARGE if gi_ > 1e-6 and c_ > 1e-6 else Mode.EXPORT if ge_ > 1e-6 and d_ > 1e-6
             else Mode.HOLD if d_ <= 1e-6 and gi_ > 1e-6 else Mode.SELF_POWERED
             for c_, d_, gi_, ge_ in zip(c, d, gi, ge, strict=True)]
    return Plan(battery_w=(d - c) * 1000, car_w=e * 1000, grid_w=(gi - ge) * 1000,
                soc_percent=s / cap * 100 if cap else np.zeros(n), modes=modes, cost=float(res.fun),
                solve_ms=(time.perf_counter() - started) * 1000)
