"""The optimiser: a :class:`~homegrid.planner.problem.Problem` in, the cheapest :class:`~homegrid.planner.problem.Plan`
out, as a linear programme solved by HiGHS (``highspy``; mixed-integer only on the steps whose prices need it).

The model
---------
Per step ``t`` of ``h`` hours, in kW and kWh inside (the numbers stay near 1, which HiGHS likes):

- ``c`` and ``d``: the battery's charge and discharge on its AC side, each >= 0 and within its power limit;
- ``gi`` and ``ge``: grid import and export, each >= 0 and within the connection's limits;
- ``car``: the car's charging, 0 on steps it is not plugged in, at most the charger's ``max_w``;
- ``s``: the energy in the battery at the step's end, 0 to the capacity (100 %);
- ``cu``: solar curtailed (the inverter throttled), and ``un``: household load not served; both only so that no
  input is infeasible (more sun than the grid, battery and home can take; more load than the grid limit, the sun
  and the battery can give). Curtailing costs a hair (it is chosen only when exporting would cost money or is
  impossible); load not served costs a penalty above everything else and is reported in ``relaxed``.

Constraints: the balance ``load - un + car + c + ge = solar - cu + d + gi``; the battery
``s[t] = s[t-1] + h * (charge_efficiency * c - d / discharge_efficiency)``; the floor ``s[t] + r[t] >= reserve``
with a slack ``r >= 0`` at a large penalty (so a battery that starts below the floor, or a floor that storm mode
raises faster than the battery can charge, gives the plan that gets back to the floor soonest, reported in
``relaxed``); without grid charging ``c <= surplus`` and without export from the battery ``ge <= surplus``, where
``surplus = max(0, solar - load)`` is the sun left over after the home (the sun serves the home first, then the
battery; the car in the planner's own mode draws from wherever is cheapest). Both rules are linear stand-ins: the
car's charging is not subtracted from the surplus (that would make ``max(0, solar - load - car)``, not linear),
so in a step where the car charges, the battery may take the sun's share while the car imports, or give the car
what the sun then exports; keeping them exact would need a binary per step. The car's energy by its deadline
``sum(car[t] * h, t < deadline) + u >= energy`` with a shortfall ``u`` at a penalty (reported), and never more than
``energy`` over the horizon; in :attr:`CarMode.SOLAR` the car takes only the sun's surplus (``car <= surplus``, and
``car + c <= surplus`` when the battery may not charge from the grid either), in :attr:`CarMode.MIN_SOLAR` the
charger's minimum on the first plugged-in steps (as many as the energy needed fills) plus the surplus; a demand
charge on the horizon's peak import above ``demand_peak_w``: ``gi[t] - x <= demand_peak`` with ``x >= 0`` at
``demand_price_per_kw``, and each of :attr:`Problem.demand_terms` likewise with an ``x`` of its own, over its own
steps, and per demand window of its steps on the window's average import (``mean(gi over the window) - x <= its
peak so far``: steps shorter than the window may spike within it, as the bill allows).

Tiers (:attr:`Problem.import_tiers`), blocks of energy left per running count (a billing month, or one period's
steps in it), rising in price (the usual inclining rate: a convex cost, filled in order). Where a count's steps all
step up alike from block to block (one period, or tiers that add the same to every period's price), the cost
depends on the count's total alone: ``gi`` at the step's marginal price (the first block with room) plus, per
block above it, ``e >= h * sum(gi over the count) - the energy before the block`` at the block's step up; one
column and one row per block, which keeps the LP as fast as without tiers. Otherwise the import is split into
blocks per step, ``gi[t] = sum_k g[t, k]``, each at the step's price of block ``k``, with ``h * sum(g[t, k] over
the count) <= the energy left in block k`` (twice the import's columns: about twice the solve time). Both equal the
bill's energy charge where the steps step up alike; where they do not, the bill fills the blocks in time order and
the LP in the cheapest order, a lower bound on the bill's. A rate whose price falls with the block is not convex
(the LP would fill the dearer block first): the hub (:mod:`homegrid.hub.plan_prices`) then gives no blocks, only
each step's marginal price at the month so far as ``import_price``.

Objective: ``sum(h * (import_price * gi - export_price * ge + wear * (c + d))) + demand_price * x
- end_value * s[last]`` plus the penalties (left out of :attr:`Plan.cost`); with blocks per step the import costs
``sum(h * block price * g)`` instead, and ``import_price`` (each step's marginal price) serves only the end value
and where binaries may be needed.

Simultaneous flows, and when binaries are needed
------------------------------------------------
Importing and exporting in one step: lowering both ``gi`` and ``ge`` by the same amount keeps the balance and
changes the cost by ``-(import_price - export_price) * h`` per kW, so wherever ``import_price > export_price`` an
optimum never has both (and where they are equal, both are worth the same and ``grid_w`` is their net anyway).
Only where ``export_price > import_price`` would the LP import to export, which a meter (it measures the net)
does not allow: on those steps alone a binary ``z`` gives ``gi <= M * z`` and ``ge <= M * (1 - z)``.

Charging and discharging in one step: lowering both ``c`` and ``d`` by the same amount keeps the balance, saves
``2 * wear`` and leaves ``h * (1 / discharge_efficiency - charge_efficiency)`` more energy in the battery. More
energy is never a burden while no later step pays for imports: the end value is never below 0 (clamped),
curtailing costs (almost) nothing, and the floor only ever wants more. Where importing is paid
(``import_price < 0``), burning energy in the battery's losses earns money, and so does making room for that step
beforehand when the battery cannot empty otherwise (the sun covers the home and export from the battery is
forbidden; a random problem found it): every step up to the last paid import may need a binary keeping ``c`` and
``d`` apart. Horizons without a negative import price and without an export price above the import price stay a
pure LP. Where binaries may be needed, they are added lazily: the LP first; if its optimum keeps the flows apart
it is the mixed-integer optimum too (a relaxation's optimum that is feasible), else binaries go on the steps that
ran both and it is solved again (after three rounds, on every step that may need one).
A hair of wear (1e-6 per kWh) breaks the tie where wear is 0 and the losses are worth nothing.

The end value
-------------
``end_value_per_kwh`` None: ``discharge_efficiency * (median import price of the horizon - wear)``, at least 0. A
kWh left in the battery will displace an import later, at the price of a typical step (the median, so that a few
spikes of a dynamic tariff do not inflate it) less what the discharge loses and wears. On a time-of-use rate
whose off-peak hours are most of the day it is just under what recharging that kWh off-peak costs
(``off-peak / charge_efficiency``), so the plan does not buy energy only to leave it (no hoarding), and it is
above a typical export credit, so the plan does not sell the battery off at the horizon's end (no dumping).
"""

from __future__ import annotations

import math
import time

import highspy
import numpy as np

from homegrid.planner.problem import CarMode, Mode, Plan, Problem, fair_end_value
from homegrid.tariffs.horizon import DemandTerm, TierBlocks

__all__ = ["fair_end_value", "plan"]

_TOL_KW = 1e-3  # 1 W: flows below it count as none (the solver's tolerances are far below)
_EPS = 1e-6  # [currency/kWh] the hair of cost on wear and curtailment that breaks ties
_INF = highspy.kHighsInf
# HiGHS's simplex without presolve (the slacks it would remove are few; presolve cost more than it saved): the
# primal simplex on planning horizons (576 steps with the car: ~45 ms against ~300 ms for the dual), the dual on
# long periods (a year at 15 minutes: ~9 s against ~150 s for the primal); measured in bench/RESULTS.md, issue 14
_LP_OPTIONS: dict[str, str | int] = {"simplex_strategy": 4, "presolve": "off"}
_LONG_LP_OPTIONS: dict[str, str | int] = {"simplex_strategy": 1, "presolve": "off"}
_LONG_STEPS = 2_000
_LAZY_ROUNDS = 3  # solves that add binaries only where the optimum broke the rule, before adding them everywhere
# highspy.Highs() enables its Python callbacks in its constructor, which makes HiGHS print its banner on stdout
# before output_flag can be turned off (HiGHS issue 2749); the core class underneath does not, and the planner
# needs no callbacks (a CLI's --json output must stay clean)
_Highs: type[highspy.Highs] = getattr(getattr(highspy, "_core", None), "_Highs", highspy.Highs)


_Term = tuple[np.ndarray, np.ndarray, "np.ndarray | float"]  # rows within a block, columns, coefficients


class _Columns:
    """Blocks of columns (variables) of the LP, laid out one after the other."""

    def __init__(self) -> None:
        self.n = 0
        self.cost: list[np.ndarray] = []
        self.lower: list[np.ndarray] = []
        self.upper: list[np.ndarray] = []
        self.integer: list[np.ndarray] = []

    def add(self, cost: np.ndarray, lower: np.ndarray, upper: np.ndarray, *, integer: bool = False) -> np.ndarray:
        k = len(cost)
        index = np.arange(self.n, self.n + k)
        self.n += k
        self.cost.append(np.asarray(cost, dtype=np.float64))
        self.lower.append(np.asarray(lower, dtype=np.float64))
        self.upper.append(np.asarray(upper, dtype=np.float64))
        self.integer.append(np.full(k, integer))
        return index

    def copy(self) -> _Columns:
        other = _Columns()
        other.n = self.n
        other.cost, other.lower, other.upper, other.integer = (
            [*self.cost],
            [*self.lower],
            [*self.upper],
            [*self.integer],
        )
        return other


class _Rows:
    """Rows (constraints) of the LP as triplets, each block of rows added at once."""

    def __init__(self) -> None:
        self.n = 0
        self.lower: list[np.ndarray] = []
        self.upper: list[np.ndarray] = []
        self.r: list[np.ndarray] = []
        self.c: list[np.ndarray] = []
        self.v: list[np.ndarray] = []

    def add(self, lower: np.ndarray, upper: np.ndarray, terms: list[_Term]) -> None:
        """``lower <= sum of terms <= upper``; each term is (row within the block, column, coefficient)."""
        k = len(lower)
        for row, col, val in terms:
            row_a, col_a, val_a = np.broadcast_arrays(np.asarray(row), np.asarray(col), np.asarray(val, dtype=float))
            self.r.append(row_a.ravel() + self.n)
            self.c.append(col_a.ravel())
            self.v.append(val_a.ravel())
        self.lower.append(np.asarray(lower, dtype=np.float64))
        self.upper.append(np.asarray(upper, dtype=np.float64))
        self.n += k

    def copy(self) -> _Rows:
        other = _Rows()
        other.n = self.n
        other.lower, other.upper = [*self.lower], [*self.upper]
        other.r, other.c, other.v = [*self.r], [*self.c], [*self.v]
        return other


def _solve(cols: _Columns, rows: _Rows, steps: int) -> tuple[str, np.ndarray]:
    """Solve the LP (MIP when a column is integer); return HiGHS's status text and the column values."""
    r = np.concatenate(rows.r) if rows.r else np.zeros(0, dtype=np.int64)
    c = np.concatenate(rows.c) if rows.c else np.zeros(0, dtype=np.int64)
    v = np.concatenate(rows.v) if rows.v else np.zeros(0)
    keep = v != 0
    r, c, v = r[keep], c[keep], v[keep]
    order = np.lexsort((r, c))
    r, c, v = r[order], c[order], v[order]
    lp = highspy.HighsLp()
    lp.num_col_ = cols.n
    lp.num_row_ = rows.n
    lp.col_cost_ = np.concatenate(cols.cost)
    lp.col_lower_ = np.concatenate(cols.lower)
    lp.col_upper_ = np.concatenate(cols.upper)
    lp.row_lower_ = np.concatenate(rows.lower)
    lp.row_upper_ = np.concatenate(rows.upper)
    lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
    lp.a_matrix_.start_ = np.searchsorted(c, np.arange(cols.n + 1)).astype(np.int32)
    lp.a_matrix_.index_ = r.astype(np.int32)
    lp.a_matrix_.value_ = v
    integer = np.concatenate(cols.integer)
    if integer.any():
        lp.integrality_ = [highspy.HighsVarType.kInteger if i else highspy.HighsVarType.kContinuous for i in integer]
    h = _Highs()
    h.setOptionValue("output_flag", False)
    h.setOptionValue("threads", 1)
    if integer.any():
        # an absolute gap: a relative one would be of an objective the penalties (a car target missed) can swell
        # a million-fold, and stop short by whole cents
        h.setOptionValue("mip_rel_gap", 0.0)
        h.setOptionValue("mip_abs_gap", 1e-6)
        h.setOptionValue("time_limit", 10.0)
    else:
        for key, value in (_LP_OPTIONS if steps < _LONG_STEPS else _LONG_LP_OPTIONS).items():
            h.setOptionValue(key, value)
    h.passModel(lp)
    h.run()
    status = h.getModelStatus()
    values = np.asarray(h.getSolution().col_value, dtype=np.float64)
    usable = status == highspy.HighsModelStatus.kOptimal or (
        integer.any() and h.getInfo().primal_solution_status == 2  # a feasible MIP solution at the time limit
    )
    if len(values) != cols.n or not usable:
        values = np.full(cols.n, np.nan)
    return h.modelStatusToString(status), values


def plan(problem: Problem) -> Plan:
    """The cheapest plan for a problem (the module's docstring gives the model).

    Parameters
    ----------
    problem : Problem

    Returns
    -------
    Plan
        Powers [W], levels [%], modes and cost [currency] per step; ``relaxed`` lists what could not be met (the
        reserve floor, the car's target, load beyond every supply) in words; ``solve_ms`` the time from the
        problem to the plan, building the LP included. [ms]
    """
    started = time.perf_counter()
    p = problem
    b = p.battery
    n = len(p.t_ms)
    h = p.hours
    cap = b.capacity_wh / 1000
    load = p.load_w / 1000
    solar = p.solar_w / 1000
    surplus = np.maximum(0.0, solar - load)
    pi, pe = p.import_price, p.export_price
    wear = b.wear_cost_per_kwh
    end_value = fair_end_value(p)
    relaxed: list[str] = []
    s0_percent = float(p.soc_percent) if math.isfinite(p.soc_percent) else 0.0
    if not 0 <= s0_percent <= 100:
        relaxed.append(
            f"the state of charge {p.soc_percent:g} % is outside 0-100 %: taken as {min(max(s0_percent, 0), 100):g} %"
        )
        s0_percent = min(max(s0_percent, 0.0), 100.0)
    s0 = s0_percent / 100 * cap
    reserve = np.clip(np.nan_to_num(p.reserve_percent, nan=0.0), 0, 100)
    floor = reserve / 100 * cap
    # penalties [currency/kWh], far above any price so they are only ever paid when nothing else works
    tiers = p.import_tiers
    if tiers is not None:
        pi = tiers.marginal()  # the cheapest block with room (they rise): where import is paid, what it meets
    prices = [pi, pe, np.array([wear, end_value]), *([tiers.price.ravel()] if tiers is not None else [])]
    big = 1000.0 * (1.0 + float(np.max(np.abs(np.concatenate(prices))))) if n else 1000.0
    pen_car, pen_reserve, pen_unserved = big, 10 * big, 100 * big

    zero = np.zeros(n)
    imp_max = np.full(n, min(p.import_limit_w / 1000, _INF) if p.import_limit_w >= 0 else 0.0)
    exp_max = np.full(n, min(p.export_limit_w / 1000, _INF) if p.export_limit_w >= 0 else 0.0)
    c_max = np.full(n, b.max_charge_w / 1000)
    if not b.grid_charging:
        c_max = np.minimum(c_max, surplus)
    if not b.export_from_battery:
        exp_max = np.minimum(exp_max, surplus)

    car = p.car
    car_need = 0.0
    car_lo, car_hi = zero, zero
    if car is not None:
        plugged = np.asarray(car.plugged, dtype=bool)
        car_need = max(0.0, float(car.energy_wh) / 1000) if math.isfinite(car.energy_wh) else 0.0
        car_hi = np.where(plugged, max(0.0, car.max_w) / 1000, 0.0) if car_need > 0 else zero
        if car.mode == CarMode.SOLAR:
            car_hi = np.minimum(car_hi, surplus)
        elif car.mode == CarMode.MIN_SOLAR:
            min_kw = min(max(0.0, car.min_w), max(0.0, car.max_w)) / 1000
            car_lo = np.zeros(n)
            if min_kw > 0:
                first = np.flatnonzero(plugged)[: int(car_need / (min_kw * h) + 1e-9)]
                car_lo[first] = min_kw
            car_lo = np.minimum(car_lo, imp_max + solar)  # a minimum the grid and the sun cannot give is no rule
            car_hi = np.minimum(car_hi, car_lo + surplus)
    # the import a step can need at most: the binaries' big M where the grid is unlimited
    imp_ub = np.minimum(imp_max, load + car_hi + b.max_charge_w / 1000)
    exp_ub = np.minimum(exp_max, solar + b.max_discharge_w / 1000)

    cols = _Columns()
    ic = cols.add(np.full(n, h * (wear + _EPS)), zero, c_max)
    idis = cols.add(np.full(n, h * (wear + _EPS)), zero, np.full(n, b.max_discharge_w / 1000))
    by_step = tiers is not None and not _same_steps(tiers)  # blocks per step, else the total's excess (see below)
    gi_price = zero if by_step else pi
    igi = cols.add(h * gi_price, zero, imp_ub)
    ige = cols.add(-h * pe, zero, exp_ub)
    icar = cols.add(np.zeros(n), car_lo, car_hi)
    s_cost = np.zeros(n)
    if n:
        s_cost[-1] = -end_value
    i_s = cols.add(s_cost, zero, np.full(n, cap))
    # the slacks only where they can be needed (zero bounds elsewhere: HiGHS's presolve drops those columns): the
    # floor where it is above the start (elsewhere an idle battery keeps it), curtailment where exporting is
    # limited or costs money or importing pays, load not served where the import limit and the sun fall short
    ir = cols.add(np.full(n, h * pen_reserve), zero, np.where(floor > s0 + 1e-9, floor, 0.0))
    curtail_may = (pe < 0) | (pi < 0) | (surplus > exp_max)
    icu = cols.add(np.full(n, h * _EPS), zero, np.where(curtail_may, solar, 0.0))
    iun = cols.add(np.full(n, h * pen_unserved), zero, np.where(load + car_lo > imp_max + solar - 1e-9, load, 0.0))

    rows = _Rows()
    t = np.arange(n)
    # balance: c - d - gi + ge + car + cu - un = solar - load
    rows.add(
        solar - load,
        solar - load,
        [(t, ic, 1.0), (t, idis, -1.0), (t, igi, -1.0), (t, ige, 1.0), (t, icar, 1.0), (t, icu, 1.0), (t, iun, -1.0)],
    )
    # battery: s[t] - s[t-1] - h*eta_c*c + h/eta_d*d = 0 (s[-1] = s0)
    rhs = np.zeros(n)
    if n:
        rhs[0] = s0
    rows.add(
        rhs,
        rhs,
        [
            (t, i_s, 1.0),
            (t[1:], i_s[:-1], -1.0),
            (t, ic, -h * b.charge_efficiency),
            (t, idis, h / b.discharge_efficiency),
        ],
    )
    # floor: s + r >= reserve
    rows.add(floor, np.full(n, _INF), [(t, i_s, 1.0), (t, ir, 1.0)])
    if car is not None and car.mode in (CarMode.SOLAR, CarMode.MIN_SOLAR) and not b.grid_charging:
        rows.add(np.full(n, -_INF), surplus + car_lo, [(t, ic, 1.0), (t, icar, 1.0)])
    i_u = np.zeros(0, dtype=np.int64)
    deadline = 0
    if car_need > 0 and car is not None:
        deadline = min(max(int(car.deadline_step), 0), n)
        i_u = cols.add(np.array([pen_car]), np.zeros(1), np.array([car_need]))
        before = t[:deadline]
        rows.add(
            np.array([car_need]),
            np.array([_INF]),
            [(np.zeros(deadline, dtype=np.int64), icar[before], h), (np.zeros(1, dtype=np.int64), i_u, 1.0)],
        )
        rows.add(np.array([-_INF]), np.array([car_need]), [(np.zeros(n, dtype=np.int64), icar, h)])
    i_tiers, tier_cost = np.zeros(0, dtype=np.int64), np.zeros(0)
    if tiers is not None:
        make = _blocks_by_step if by_step else _excess_over_blocks
        i_tiers, tier_cost = make(tiers, cols, rows, igi, imp_ub, h)
    demand = p.demand_charges()
    i_x = _demand_rows(demand, cols, rows, igi)
    if n == 0:
        return Plan(np.zeros(0), np.zeros(0), np.zeros(0), np.zeros(0), [], 0.0, relaxed, _ms(started))

    # binaries only where the prices can make the LP want two flows at once (the module's docstring), and of those
    # only on the steps where the LP's optimum does run both: a relaxation's optimum that keeps them apart is the
    # mixed-integer optimum too; otherwise add the steps that broke the rule and solve again
    may_grid = pe > pi
    may_battery = np.zeros(n, dtype=bool)
    if (pi < 0).any():
        may_battery[: int(np.flatnonzero(pi < 0)[-1]) + 1] = True
    bin_grid = np.zeros(n, dtype=bool)
    bin_battery = np.zeros(n, dtype=bool)
    m_i = np.where(np.isfinite(imp_ub), imp_ub, 1e6)
    m_e = np.where(np.isfinite(exp_ub), exp_ub, 1e6)
    m_c, m_d = c_max, np.full(n, b.max_discharge_w / 1000)
    for attempt in range(_LAZY_ROUNDS + 1):
        if attempt == _LAZY_ROUNDS:  # still breaking the rule after the lazy rounds: every step that may
            bin_grid, bin_battery = may_grid, may_battery
        mcols, mrows = cols.copy(), rows.copy()
        for chosen, i_a, i_b, m_a, m_b in ((bin_grid, igi, ige, m_i, m_e), (bin_battery, ic, idis, m_c, m_d)):
            steps = np.flatnonzero(chosen)
            k = len(steps)
            if k:
                kk = np.arange(k)
                iz = mcols.add(np.zeros(k), np.zeros(k), np.ones(k), integer=True)
                mrows.add(np.full(k, -_INF), np.zeros(k), [(kk, i_a[steps], 1.0), (kk, iz, -m_a[steps])])
                mrows.add(np.full(k, -_INF), m_b[steps], [(kk, i_b[steps], 1.0), (kk, iz, m_b[steps])])
        try:
            status, x = _solve(mcols, mrows, n)
        except (RuntimeError, ValueError) as exc:  # pragma: no cover - HiGHS refusing the model is a bug here
            status, x = f"HiGHS failed: {exc}", np.full(mcols.n, np.nan)
        if not np.isfinite(x).all():
            break
        broke_grid = may_grid & ~bin_grid & (x[igi] > _TOL_KW) & (x[ige] > _TOL_KW)
        broke_battery = may_battery & ~bin_battery & (x[ic] > _TOL_KW) & (x[idis] > _TOL_KW)
        if not broke_grid.any() and not broke_battery.any():
            break
        bin_grid |= broke_grid
        bin_battery |= broke_battery
    if not np.isfinite(x).all():
        return _idle_plan(p, [*relaxed, f"no optimum found ({status}): the battery and the car left idle"], started)

    if status != "Optimal":
        relaxed.append(f"the solver stopped before proving the optimum ({status}): the best plan found so far")
    kw_c, kw_d, kw_gi, kw_ge = x[ic], x[idis], x[igi], x[ige]
    kw_car, kwh_s, kw_cu, kw_un = x[icar], x[i_s], x[icu], x[iun]
    kwh_r = x[ir]
    short_steps = kwh_r > 1e-6 * max(cap, 1.0)
    if short_steps.any():
        worst = float(np.max(kwh_r / cap * 100)) if cap > 0 else 0.0
        relaxed.append(
            f"the reserve floor: the state of charge is below it in {int(short_steps.sum())} of {n} steps "
            f"(at most {worst:.1f} % short; it starts at {s0_percent:g} % against a floor of {reserve[0]:g} %)"
        )
    if len(i_u) and x[i_u[0]] > 1e-6:
        assert car is not None
        got = car_need - float(x[i_u[0]])
        relaxed.append(
            f"the car's target ({car.mode}): {got * 1000:.0f} Wh of the {car_need * 1000:.0f} Wh needed by step "
            f"{deadline} ({x[i_u[0]] * 1000:.0f} Wh short: the plugged-in steps"
            + (
                ", the charger's limit and the sun's surplus"
                if car.mode != CarMode.PLAN
                else " and the charger's limit"
            )
            + " do not allow more)"
        )
    if (kw_un > _TOL_KW).any():
        relaxed.append(
            f"the household load: {float(kw_un.sum() * h * 1000):.0f} Wh in {int((kw_un > _TOL_KW).sum())} steps "
            "cannot be served within the grid's import limit, the sun and the battery"
        )
    battery_kw = kw_d - kw_c
    grid_kw = kw_gi - kw_ge
    cost = float(
        h * (gi_price @ kw_gi - pe @ kw_ge + wear * (kw_c.sum() + kw_d.sum()))
        + tier_cost @ x[i_tiers]
        + sum(d.price_per_kw * float(x[i]) for d, i in zip(demand, i_x, strict=True))
        - end_value * kwh_s[-1]
    )
    modes = _modes(kw_c, kw_d, kw_gi, kw_ge)
    return Plan(
        battery_w=battery_kw * 1000,
        car_w=kw_car * 1000,
        grid_w=grid_kw * 1000,
        soc_percent=kwh_s / cap * 100 if cap > 0 else np.zeros(n),
        modes=modes,
        cost=cost,
        relaxed=relaxed,
        solve_ms=_ms(started),
        curtailed_w=kw_cu * 1000,
        unserved_w=kw_un * 1000,
    )


def _same_steps(tiers: TierBlocks) -> bool:
    """Whether within each running count every step's blocks with room step up in price by the same amounts (one
    time-of-use period, or tiers that add the same to every period's price): then the cost depends on the count's
    total alone, not on which step's import fills which block."""
    room = tiers.open()
    for g in range(len(tiers.size_wh)):
        steps = tiers.group == g
        step_up = np.diff(tiers.price[steps][:, room[steps].any(axis=0)], axis=1)
        if len(step_up) and not np.allclose(step_up, step_up[0], rtol=0.0, atol=1e-12):
            return False
    return True


def _excess_over_blocks(tiers: TierBlocks, cols: _Columns, rows: _Rows, igi: np.ndarray, imp_ub: np.ndarray,
                        h: float) -> tuple[np.ndarray, np.ndarray]:
    """The blocks of counts whose steps all step up alike (:func:`_same_steps`): ``gi`` at its marginal price, and
    per count and block above its first with room a column ``e >= h * sum(gi over the count) - the energy before
    the block``, ``e >= 0``, at the block's step up: one column and one row per block, whatever the horizon.
    Returns the columns and their costs."""
    room = tiers.open()
    out, costs = [], []
    for g in range(len(tiers.size_wh)):
        steps = np.flatnonzero(tiers.group == g)
        if not len(steps):
            continue
        blocks = np.flatnonzero(room[steps].any(axis=0))
        before = np.cumsum(tiers.size_wh[g, blocks])[:-1] / 1000  # [kWh]
        for up, kwh in zip(np.diff(tiers.price[steps[0], blocks]), before, strict=True):
            ie = cols.add(np.array([up]), np.zeros(1), np.array([_INF]))
            rows.add(np.array([-_INF]), np.array([kwh]),
                     [(np.zeros(len(steps), dtype=np.int64), igi[steps], h), (np.zeros(1, dtype=np.int64), ie, -1.0)])
            out.append(int(ie[0]))
            costs.append(float(up))
    return np.array(out, dtype=np.int64), np.array(costs)


def _blocks_by_step(tiers: TierBlocks, cols: _Columns, rows: _Rows, igi: np.ndarray, imp_ub: np.ndarray,
                    h: float) -> tuple[np.ndarray, np.ndarray]:
    """The blocks of counts whose steps step up unalike: a column per step and block at the block's price,
    ``gi = sum of the step's blocks``, and per count and block with a finite size ``h * sum of its steps' column <=
    size``. Returns the columns (row-major: step, block) and their costs."""
    n, k = tiers.price.shape
    room = np.where(tiers.open(), np.repeat(imp_ub, k).reshape(n, k), 0.0)
    cost = h * tiers.price.ravel()
    ib = cols.add(cost, np.zeros(n * k), room.ravel())
    t = np.arange(n)
    grid = ib.reshape(n, k)
    rows.add(np.zeros(n), np.zeros(n), [(t, igi, 1.0), *((t, grid[:, j], -1.0) for j in range(k))])
    for g in range(len(tiers.size_wh)):
        steps = np.flatnonzero(tiers.group == g)
        for j in np.flatnonzero(np.isfinite(tiers.size_wh[g]) & (tiers.size_wh[g] > 0)):
            if len(steps):
                rows.add(np.array([-_INF]), np.array([tiers.size_wh[g, j] / 1000]),
                         [(np.zeros(len(steps), dtype=np.int64), grid[steps, j], h)])
    return ib, cost


def _demand_rows(terms: tuple[DemandTerm, ...], cols: _Columns, rows: _Rows, igi: np.ndarray) -> list[int]:
    """Per demand charge a column ``x >= 0`` at its price and, per demand window of its steps, ``mean(gi) - x <=
    peak so far`` (the window's average import); returns the columns."""
    out = []
    for term in terms:
        ix = cols.add(np.array([term.price_per_kw]), np.zeros(1), np.array([_INF]))
        t, k, count = term.windows()
        m = len(count)
        rows.add(np.full(m, -_INF), np.full(m, max(0.0, term.peak_w) / 1000),
                 [(k, igi[t], 1.0 / count[k]), (np.arange(m), np.repeat(ix, m), -1.0)])
        out.append(int(ix[0]))
    return out


def _modes(c: np.ndarray, d: np.ndarray, gi: np.ndarray, ge: np.ndarray) -> list[Mode]:
    """Each step's mode from its flows [kW]: CHARGE when the battery charges while the home imports (from the
    grid), EXPORT when it discharges while the home exports, HOLD when it idles while the home imports, else
    SELF_POWERED."""
    charging, discharging = c > _TOL_KW, d > _TOL_KW
    importing, exporting = gi > _TOL_KW, ge > _TOL_KW
    out: list[Mode] = []
    for ch, dis, imp, exp in zip(charging, discharging, importing, exporting, strict=True):
        if ch and imp:
            out.append(Mode.CHARGE)
        elif dis and exp:
            out.append(Mode.EXPORT)
        elif imp and not ch and not dis:
            out.append(Mode.HOLD)
        else:
            out.append(Mode.SELF_POWERED)
    return out


def _idle_plan(p: Problem, relaxed: list[str], started: float) -> Plan:
    """The plan of last resort: the battery and the car idle, the grid takes the rest."""
    n = len(p.t_ms)
    grid = p.load_w - p.solar_w
    cost = float(p.hours / 1000 * (p.import_price @ np.maximum(grid, 0) - p.export_price @ np.maximum(-grid, 0)))
    soc = np.full(n, min(max(float(p.soc_percent), 0.0), 100.0) if math.isfinite(p.soc_percent) else 0.0)
    cost -= fair_end_value(p) * soc[-1] / 100 * p.battery.capacity_wh / 1000 if n else 0.0
    return Plan(
        battery_w=np.zeros(n),
        car_w=np.zeros(n),
        grid_w=grid,
        soc_percent=soc,
        modes=[Mode.HOLD if g > 0 else Mode.SELF_POWERED for g in grid],
        cost=cost,
        relaxed=relaxed,
        solve_ms=_ms(started),
        curtailed_w=np.zeros(n),
        unserved_w=np.zeros(n),
    )


def _ms(started: float) -> float:
    return (time.perf_counter() - started) * 1000
