"""Issue 14: the planner minimises the bill as the tariff has it: a tiered rate's blocks left in the billing month
(priced by the optimiser block by block, equal to the bill's energy charge) and demand charges above the month's
peak so far (the battery shaves a peak only when it is worth it); the hub builds both from its store."""

from __future__ import annotations

import math
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from homegrid.hub.bill import site_bill
from homegrid.hub.planning import PlanningService
from homegrid.hub.tariff_file import SiteTariff
from homegrid.planner import optimise
from homegrid.planner.baseline import end_value, grid_cost, self_powered
from homegrid.planner.optimise import plan as solve
from homegrid.planner.problem import BatterySpec, CarNeed, Problem
from homegrid.readings import to_ms
from homegrid.tariffs import (
    DemandCharges,
    DemandTier,
    DynamicPrices,
    EnergyRates,
    ExportRule,
    ExportTerms,
    MonthHourSchedule,
    Tariff,
    Tier,
    TierScope,
)
from homegrid.tariffs.bill import Metered, price_bill
from homegrid.tariffs.horizon import DemandTerm, TierBlocks, horizon_charges
from homegrid.timezones import HOUR_MS, MINUTE_MS, parse_iso_ms

from .test_planning import NOW, _hub

FLAT = MonthHourSchedule([[1] * 24] * 12, [[1] * 24] * 12)
NIGHT_AND_DAY = MonthHourSchedule([[1] * 7 + [2] * 17] * 12, [[1] * 7 + [2] * 17] * 12)
#: 0.10 for the month's first 300 kWh, 0.30 above
TWO_TIERS = Tariff("two tiers", EnergyRates(FLAT, {1: (Tier(0.10, 0.0, 300.0), Tier(0.30))}))
JAN_11 = parse_iso_ms("2026-01-11T00:00:00Z")
JAN_1 = parse_iso_ms("2026-01-01T00:00:00Z")


def _month_so_far(kwh: float) -> Metered:
    """January 1-10 (UTC), ``kwh`` imported evenly hour by hour."""
    t = np.arange(JAN_1, JAN_11, HOUR_MS, dtype=np.int64)
    return Metered(t, HOUR_MS, np.full(len(t), kwh * 1000 / len(t)), np.zeros(len(t)))


def _still_battery() -> BatterySpec:
    return BatterySpec(capacity_wh=5_000, max_charge_w=2_000, max_discharge_w=2_000)


def test_the_blocks_left_are_the_month_so_far_below_the_boundary_and_a_new_month_starts_empty():
    t = JAN_11 + HOUR_MS * np.arange(24, dtype=np.int64)
    charges = horizon_charges(TWO_TIERS, t, HOUR_MS, "UTC", _month_so_far(290.0))
    blocks = charges.blocks
    assert blocks is not None and blocks.convex
    np.testing.assert_allclose(blocks.size_wh[blocks.group[0]], [10_000.0, math.inf])
    np.testing.assert_allclose(blocks.marginal(), 0.10)
    # 320 kWh so far: the first block is full, the next kWh costs 0.30
    full = horizon_charges(TWO_TIERS, t, HOUR_MS, "UTC", _month_so_far(320.0)).blocks
    assert full is not None
    np.testing.assert_allclose(full.size_wh[full.group[0]], [0.0, math.inf])
    np.testing.assert_allclose(full.marginal(), 0.30)
    # a horizon across the month's end: February's steps fill a fresh count
    t_end = parse_iso_ms("2026-01-31T12:00:00Z") + HOUR_MS * np.arange(24, dtype=np.int64)
    so_far = _month_so_far(290.0)
    cross = horizon_charges(TWO_TIERS, t_end, HOUR_MS, "UTC", so_far).blocks
    assert cross is not None
    np.testing.assert_allclose(cross.size_wh[cross.group[0]], [10_000.0, math.inf])
    np.testing.assert_allclose(cross.size_wh[cross.group[-1]], [300_000.0, math.inf])
    assert cross.group[11] != cross.group[12]  # 23:00 on the 31st and 00:00 on February 1st


def test_dynamic_prices_that_start_today_still_give_the_months_demand_peak():
    t = JAN_11 + HOUR_MS * np.arange(4, dtype=np.int64)
    spot = DynamicPrices(t, HOUR_MS, np.full(4, 0.2))  # no prices for January 1-10
    demand = DemandCharges(window_min=60, flat=((DemandTier(9.0),),) * 12)
    tariff = Tariff("dynamic", EnergyRates(FLAT, {1: (Tier(0.0),)}), demand=demand, dynamic=spot)
    charges = horizon_charges(tariff, t, HOUR_MS, "UTC", _month_so_far(240.0))  # 1 kW every hour
    assert charges.blocks is None
    (term,) = charges.demand
    assert term.peak_w == pytest.approx(1_000.0) and term.price_per_kw == 9.0 and term.steps.all()


def test_time_of_use_demand_has_a_term_per_period_with_its_own_peak_so_far():
    # demand periods: 1 before noon, 2 after (UTC); January 1st imported 2 kWh at 09:00 and 5 kWh at 15:00
    halves = MonthHourSchedule([[1] * 12 + [2] * 12] * 12, [[1] * 12 + [2] * 12] * 12)
    demand = DemandCharges(window_min=60, flat=((DemandTier(3.0),),) * 12, schedule=halves,
                           periods={1: (DemandTier(4.0),), 2: (DemandTier(10.0, 4.0), DemandTier(20.0))})
    tariff = Tariff("tou demand", EnergyRates(FLAT, {1: (Tier(0.1),)}), demand=demand)
    so_far = Metered(np.array([JAN_1 + 9 * HOUR_MS, JAN_1 + 15 * HOUR_MS]), HOUR_MS, np.array([2_000.0, 5_000.0]),
                     np.zeros(2))
    t = JAN_11 + HOUR_MS * np.arange(24, dtype=np.int64)
    flat, morning, afternoon = horizon_charges(tariff, t, HOUR_MS, "UTC", so_far).demand
    assert (flat.period, flat.peak_w, flat.price_per_kw, int(flat.steps.sum())) == (None, 5_000.0, 3.0, 24)
    assert (morning.period, morning.peak_w, morning.price_per_kw) == (1, 2_000.0, 4.0)
    np.testing.assert_array_equal(np.flatnonzero(morning.steps), np.arange(12))
    # the afternoon's 5 kW is past its first demand block (4 kW): the next kW costs the second block's price
    assert (afternoon.period, afternoon.peak_w, afternoon.price_per_kw) == (2, 5_000.0, 20.0)
    np.testing.assert_array_equal(np.flatnonzero(afternoon.steps), np.arange(12, 24))


def test_a_declining_block_rate_is_not_convex():
    declining = Tariff("declining", EnergyRates(FLAT, {1: (Tier(0.30, 0.0, 300.0), Tier(0.10))}))
    t = JAN_11 + HOUR_MS * np.arange(4, dtype=np.int64)
    blocks = horizon_charges(declining, t, HOUR_MS, "UTC", _month_so_far(290.0)).blocks
    assert blocks is not None and not blocks.convex
    np.testing.assert_allclose(blocks.marginal(), 0.30)


@pytest.mark.parametrize("by_step", [False, True], ids=["excess-over-blocks", "blocks-by-step"])
def test_the_plans_cost_of_charging_the_car_across_the_tier_boundary_is_the_bills_energy_charge(by_step, monkeypatch):
    # 10 kWh left in the cheap block; the home draws 0.5 kW for 24 h (12 kWh) and the car needs 30 kWh: 42 kWh,
    # 10 at 0.10 and 32 at 0.30 = 10.60
    n = 24
    t = JAN_11 + HOUR_MS * np.arange(n, dtype=np.int64)
    so_far = _month_so_far(290.0)
    blocks = horizon_charges(TWO_TIERS, t, HOUR_MS, "UTC", so_far).blocks
    assert blocks is not None
    monkeypatch.setattr(optimise, "_same_steps", lambda tiers: not by_step)  # both formulations of the blocks
    car = CarNeed(plugged=np.ones(n, dtype=bool), max_w=7_400.0, energy_wh=30_000.0, deadline_step=n)
    problem = Problem(t_ms=t, step_ms=HOUR_MS, load_w=np.full(n, 500.0), solar_w=np.zeros(n),
                      import_price=blocks.marginal(), export_price=np.zeros(n), battery=_still_battery(),
                      soc_percent=20.0, reserve_percent=20.0, car=car, end_value_per_kwh=0.0, import_tiers=blocks)
    result = solve(problem)
    assert not result.relaxed
    assert result.car_w.sum() == pytest.approx(30_000.0, abs=1.0)
    assert result.cost == pytest.approx(10.60, abs=1e-3)
    assert grid_cost(problem, result) == pytest.approx(10.60, abs=1e-3)  # the blocks filled in time order
    # the bill of the month so far and the plan together, less the month so far's: the plan's energy charge
    planned = Metered(t, HOUR_MS, np.clip(result.grid_w, 0, None), np.clip(-result.grid_w, 0, None))
    both = Metered(np.concatenate([so_far.t_ms, t]), HOUR_MS, np.concatenate([so_far.import_wh, planned.import_wh]),
                   np.concatenate([so_far.export_wh, planned.export_wh]))
    end = int(t[-1]) + HOUR_MS
    with_plan = price_bill(TWO_TIERS, both, "UTC", JAN_1, end).months[0].energy
    before = price_bill(TWO_TIERS, so_far, "UTC", JAN_1, JAN_11).months[0].energy
    assert with_plan - before == pytest.approx(result.cost, abs=1e-3)
    # without the blocks (the first block's price everywhere, as before) the plan would think it 4.20
    flat = solve(Problem(t_ms=t, step_ms=HOUR_MS, load_w=np.full(n, 500.0), solar_w=np.zeros(n),
                         import_price=np.full(n, 0.10), export_price=np.zeros(n), battery=_still_battery(),
                         soc_percent=20.0, reserve_percent=20.0, car=car, end_value_per_kwh=0.0))
    assert flat.cost == pytest.approx(4.20, abs=1e-3)


def test_tiers_per_period_make_the_car_charge_where_the_block_is_cheapest():
    # per-period blocks: the night (00-07) has 5 kWh left at 0.10, then 0.40; the day 0.25 flat. The car's 10 kWh:
    # 5 at night at 0.10, 5 by day at 0.25 (not 0.40 at night) = 1.75
    rates = EnergyRates(NIGHT_AND_DAY, {1: (Tier(0.10, 0.0, 100.0), Tier(0.40)), 2: (Tier(0.25),)},
                        tier_scope=TierScope.PERIOD)
    tariff = Tariff("per period", rates)
    n = 24
    t = JAN_11 + HOUR_MS * np.arange(n, dtype=np.int64)
    night = JAN_1 + HOUR_MS * np.arange(7, dtype=np.int64)  # January 1st, 00-07: 95 kWh of the night's 100
    so_far = Metered(night, HOUR_MS, np.full(7, 95_000 / 7), np.zeros(7))
    blocks = horizon_charges(tariff, t, HOUR_MS, "UTC", so_far).blocks
    assert blocks is not None and blocks.convex
    np.testing.assert_allclose(blocks.size_wh[blocks.group[0]], [5_000.0, math.inf])
    car = CarNeed(plugged=np.ones(n, dtype=bool), max_w=7_400.0, energy_wh=10_000.0, deadline_step=n)
    problem = Problem(t_ms=t, step_ms=HOUR_MS, load_w=np.zeros(n), solar_w=np.zeros(n),
                      import_price=blocks.marginal(), export_price=np.zeros(n), battery=_still_battery(),
                      soc_percent=20.0, reserve_percent=20.0, car=car, end_value_per_kwh=0.0, import_tiers=blocks)
    result = solve(problem)
    assert result.cost == pytest.approx(1.75, abs=1e-3)
    assert result.car_w[:7].sum() == pytest.approx(5_000.0, abs=1.0)


def test_blocks_that_step_up_unalike_by_period_are_filled_where_cheapest():
    # a month-wide count, 5 kWh left in its first block; the night (00-07) 0.10 then 0.20, the day 0.25 then
    # 0.50. The car takes 10 kWh at night, the home 2 kWh by day at 08:00 (the battery may not charge from the
    # grid). The first block saves 0.25 a kWh by day and 0.10 at night: the LP gives the day its 2 kWh there. The
    # bill fills in time order (the night's 5 first, the day's 2 at 0.50): the LP's cost is a lower bound
    rates = EnergyRates(NIGHT_AND_DAY, {1: (Tier(0.10, 0.0, 100.0), Tier(0.20)), 2: (Tier(0.25, 0.0, 100.0),
                                                                                      Tier(0.50))})
    tariff = Tariff("unalike", rates)
    n = 9
    t = JAN_11 + HOUR_MS * np.arange(n, dtype=np.int64)
    blocks = horizon_charges(tariff, t, HOUR_MS, "UTC", _month_so_far(95.0)).blocks
    assert blocks is not None and blocks.convex and not optimise._same_steps(blocks)
    load = np.zeros(n)
    load[8] = 2_000.0  # 08:00, by day
    car = CarNeed(plugged=np.arange(n) < 7, max_w=7_400.0, energy_wh=10_000.0, deadline_step=7)
    no_grid_charging = BatterySpec(capacity_wh=5_000, max_charge_w=2_000, max_discharge_w=2_000, grid_charging=False)
    problem = Problem(t_ms=t, step_ms=HOUR_MS, load_w=load, solar_w=np.zeros(n),
                      import_price=blocks.marginal(), export_price=np.zeros(n), battery=no_grid_charging,
                      soc_percent=20.0, reserve_percent=20.0, car=car, end_value_per_kwh=0.0, import_tiers=blocks)
    result = solve(problem)
    # day: 2 kWh at 0.25; night: 3 kWh at 0.10, 7 at 0.20
    assert result.cost == pytest.approx(2 * 0.25 + 3 * 0.10 + 7 * 0.20, abs=1e-3)
    np.testing.assert_allclose(result.battery_w, 0.0, atol=1.0)
    so_far = _month_so_far(95.0)
    both = Metered(np.concatenate([so_far.t_ms, t]), HOUR_MS,
                   np.concatenate([so_far.import_wh, np.clip(result.grid_w, 0, None)]), np.zeros(len(so_far.t_ms) + n))
    billed = price_bill(tariff, both, "UTC", JAN_1, int(t[-1]) + HOUR_MS).months[0].energy
    before = price_bill(tariff, so_far, "UTC", JAN_1, JAN_11).months[0].energy
    assert billed - before == pytest.approx(5 * 0.10 + 5 * 0.20 + 2 * 0.50, abs=1e-3)
    assert grid_cost(problem, result) == pytest.approx(billed - before, abs=1e-3)  # the yardstick bills in order


@settings(max_examples=30, deadline=None)
@given(left_kwh=st.floats(0.0, 40.0), steps_up=st.lists(st.floats(0.0, 0.3), min_size=1, max_size=3),
       load=st.lists(st.floats(0.0, 4_000.0), min_size=24, max_size=24),
       solar=st.lists(st.floats(0.0, 5_000.0), min_size=24, max_size=24), soc=st.floats(20.0, 100.0),
       car_kwh=st.floats(0.0, 40.0))
def test_the_lps_cost_with_blocks_that_step_up_alike_is_the_blocks_filled_in_time_order(
        left_kwh, steps_up, load, solar, soc, car_kwh):
    # a time-of-use base (0.30 from 17 to 21 h, else 0.12) and blocks that add the same to every step: the LP's
    # cost is its flows' cost through the blocks in time order (the bill's), less the end value
    n = 24
    t = JAN_11 + HOUR_MS * np.arange(n, dtype=np.int64)
    base = np.where((np.arange(n) >= 17) & (np.arange(n) < 21), 0.30, 0.12)
    price = base[:, None] + np.concatenate([[0.0], np.cumsum(steps_up)])[None, :]
    sizes = np.array([[left_kwh * 1000] + [5_000.0] * (len(steps_up) - 1) + [math.inf]])
    blocks = TierBlocks(np.zeros(n, dtype=np.int64), sizes, price)
    car = CarNeed(plugged=np.ones(n, dtype=bool), max_w=7_400.0, energy_wh=car_kwh * 1000, deadline_step=n)
    problem = Problem(t_ms=t, step_ms=HOUR_MS, load_w=np.array(load), solar_w=np.array(solar),
                      import_price=blocks.marginal(), export_price=np.full(n, 0.05), soc_percent=soc, car=car,
                      import_tiers=blocks)
    result = solve(problem)
    assert not result.relaxed
    assert result.cost == pytest.approx(grid_cost(problem, result) - end_value(problem, result), abs=1e-4)


def _peaky(n: int = 16) -> np.ndarray:
    load = np.full(n, 1_000.0)
    load[8] = 6_000.0  # one 15-minute step at 6 kW
    return load


def _demand_problem(peak_so_far_w: float, **kw: object) -> Problem:
    n = 16
    t = JAN_11 + 15 * MINUTE_MS * np.arange(n, dtype=np.int64)
    args: dict[str, object] = {
        "t_ms": t, "step_ms": 15 * MINUTE_MS, "load_w": _peaky(n), "solar_w": np.zeros(n),
        "import_price": np.full(n, 0.10), "export_price": np.zeros(n),
        "battery": BatterySpec(capacity_wh=10_000, max_charge_w=5_000, max_discharge_w=5_000), "soc_percent": 80.0,
        "reserve_percent": 20.0, "end_value_per_kwh": 0.10, "demand_peak_w": peak_so_far_w}
    return Problem(**{**args, **kw})  # type: ignore[arg-type]


def test_the_battery_shaves_a_peak_above_the_months_peak_so_far():
    # 20 per kW: shaving 4 kW of the 6 kW step saves 80; the 1 kWh from the battery costs 0.10 / 0.95 of its end
    # value and saves an import at 0.10
    problem = _demand_problem(2_000.0, demand_price_per_kw=20.0)
    result = solve(problem)
    assert result.grid_w.max() == pytest.approx(2_000.0, abs=1.0)
    assert result.battery_w[8] == pytest.approx(4_000.0, abs=1.0)
    # a battery at its floor, left to itself, cannot help: the yardstick pays the charge on the 4 kW above 2 kW
    idle = self_powered(_demand_problem(2_000.0, demand_price_per_kw=20.0, soc_percent=20.0))
    assert grid_cost(problem, idle) == pytest.approx(0.10 * _peaky().sum() / 4000 + 20.0 * 4.0, abs=1e-6)
    # the same charge as a term of its own (per-period demand): the same plan
    term = DemandTerm(np.ones(16, dtype=bool), 20.0, 2_000.0, "flat")
    again = solve(_demand_problem(0.0, demand_terms=(term,)))
    assert again.grid_w.max() == pytest.approx(2_000.0, abs=1.0)
    assert again.cost == pytest.approx(result.cost, abs=1e-6)


def test_a_peak_below_the_months_peak_so_far_is_not_shaved():
    # the month has already seen 8 kW: the 6 kW step costs no demand, and with a kWh left in the battery worth 0.10
    # neither discharging (0.10 / 0.95 of it for 0.10) nor charging (0.10 for 0.95 of it) pays: the battery idles
    result = solve(_demand_problem(8_000.0, demand_price_per_kw=20.0))
    np.testing.assert_allclose(result.grid_w, _peaky(), atol=1.0)
    np.testing.assert_allclose(result.battery_w, 0.0, atol=1.0)
    energy = 0.10 * _peaky().sum() / 4 / 1000
    assert result.cost == pytest.approx(energy - 0.10 * 8.0, abs=1e-3)


def test_a_spike_shorter_than_the_demand_window_counts_by_the_windows_average():
    # 5-minute steps, a 15-minute window: one step at 6 kW between two at 1 kW averages 2.67 kW, under the 3 kW
    # the month has seen: nothing to shave. Taken step by step it would have been shaved to 3 kW.
    n = 12
    t = JAN_11 + 5 * MINUTE_MS * np.arange(n, dtype=np.int64)
    demand = DemandCharges(window_min=15, flat=((DemandTier(20.0),),) * 12)
    tariff = Tariff("demand", EnergyRates(FLAT, {1: (Tier(0.10),)}), demand=demand)
    so_far = Metered(np.array([JAN_1]), HOUR_MS, np.array([3_000.0]), np.zeros(1))  # 3 kW for an hour
    (term,) = horizon_charges(tariff, t, 5 * MINUTE_MS, "UTC", so_far).demand
    assert term.peak_w == pytest.approx(3_000.0) and term.price_per_kw == 20.0 and term.window is not None
    assert len(set(term.window.tolist())) == 4  # four whole windows
    load = np.full(n, 1_000.0)
    load[4] = 6_000.0
    base = {"t_ms": t, "step_ms": 5 * MINUTE_MS, "load_w": load, "solar_w": np.zeros(n),
            "import_price": np.full(n, 0.10), "export_price": np.zeros(n), "soc_percent": 80.0,
            "end_value_per_kwh": 0.10}
    windowed = solve(Problem(**base, demand_terms=(term,)))  # type: ignore[arg-type]
    np.testing.assert_allclose(windowed.grid_w, load, atol=1.0)
    stepwise = solve(Problem(**base, demand_price_per_kw=20.0, demand_peak_w=3_000.0))  # type: ignore[arg-type]
    assert stepwise.grid_w.max() == pytest.approx(3_000.0, abs=1.0)


def test_the_hub_prices_declining_blocks_and_net_metering_flat_at_the_months_marginal_price(tmp_path: Path):
    hub = _hub(tmp_path, days=3)
    try:
        declining = Tariff("declining", EnergyRates(FLAT, {1: (Tier(0.30, 0.05, 1e6), Tier(0.10, 0.05))}))
        metered = Tariff("net metering", EnergyRates(FLAT, {1: (Tier(0.10, 0.0, 1.0), Tier(0.30))}),
                         export=ExportTerms(ExportRule.NET_METERING))
        # declining: the month is in its first (dearer) block; net metering: its net use is past the first block
        for tariff, imp, exp in ((declining, 0.30, 0.05), (metered, 0.30, 0.30)):
            svc = PlanningService(hub.config, hub.store, SiteTariff(configured=lambda t=tariff: t), hub.live,
                                  hub.clock)
            problem, notes = svc.build(to_ms(NOW))
            # each step flat at its marginal price for the month so far, no blocks
            assert problem.import_tiers is None, tariff.name
            np.testing.assert_allclose(problem.import_price, imp)
            np.testing.assert_allclose(problem.export_price, exp)
            assert any("marginal block price" in n for n in notes)
    finally:
        hub.store.close()


def test_the_hub_builds_the_blocks_and_the_demand_from_the_month_so_far(tmp_path: Path):
    hub = _hub(tmp_path)
    try:
        demand = DemandCharges(window_min=15, flat=((DemandTier(12.0),),) * 12)
        tariff = Tariff("tiers and demand", EnergyRates(FLAT, {1: (Tier(0.10, 0.05, 2_000.0), Tier(0.30, 0.05))}),
                        demand=demand)
        svc = PlanningService(hub.config, hub.store, SiteTariff(configured=lambda: tariff), hub.live, hub.clock)
        now = to_ms(NOW)
        problem, notes = svc.build(now)
        t0 = int(problem.t_ms[0])
        month_start = parse_iso_ms("2026-01-01T05:00:00Z")  # local midnight in New York
        minutes = hub.store.read_rollup("minute", month_start, t0, ("grid_import",))
        imported = np.nan_to_num(np.asarray(minutes.columns["grid_import"], dtype=float))
        assert imported.sum() > 10_000 and imported.max() > 0  # the virtual home has imported this month
        blocks = problem.import_tiers
        assert blocks is not None
        left = blocks.size_wh[blocks.group[0]]
        assert left[0] == pytest.approx(2_000_000.0 - imported.sum(), abs=1.0)
        np.testing.assert_allclose(problem.import_price, 0.10)
        # the peak so far over fixed 15-minute windows (New York's offset is whole hours: UTC quarters)
        starts = np.asarray(minutes.start_ms, dtype=np.int64)
        windows = np.bincount((starts - month_start) // (15 * MINUTE_MS), weights=imported)
        assert problem.demand_peak_w == pytest.approx(windows.max() * 4, abs=0.5)
        assert problem.demand_price_per_kw == 12.0
        zone = ZoneInfo(hub.config.site.timezone)
        bill = site_bill(hub.store, tariff, zone, month_start, t0, now_ms=now, counterfactuals=False)
        assert problem.demand_peak_w == pytest.approx(bill["months"][0]["peak_demand_w"], abs=0.5)
        assert any(n.startswith("tiers:") for n in notes) and any(n.startswith("demand ") for n in notes)
        made = solve(problem)
        assert not made.relaxed and made.grid_w.max() <= max(problem.demand_peak_w, problem.load_w.max()) + 1
    finally:
        hub.store.close()
