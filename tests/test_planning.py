"""The planner running live on the virtual home: the hub's planning service builds a problem from the store's
history, the shipped TOU tariff and the readings, solves it and hands it to the executor (which acts, or in a dry run
sends nothing); ``GET /api/v1/plan`` shows it; the self-powered yardstick it is measured against."""

from __future__ import annotations

import asyncio
import math
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from fastapi import FastAPI
from hypothesis import given, settings
from hypothesis import strategies as st

from homegrid.api.plan import HOW_TO_ENABLE, add_plan_routes
from homegrid.api.planner import add_planner_routes
from homegrid.config import Config, PlannerConfig, TariffConfig
from homegrid.glossary import EvChargingState
from homegrid.hub.planning import PlanningService, next_departure_ms
from homegrid.hub.service import Hub
from homegrid.planner.baseline import grid_cost, self_powered
from homegrid.planner.optimise import plan as solve
from homegrid.planner.problem import BatterySpec, Mode, Problem
from homegrid.readings import to_ms
from homegrid.timezones import MINUTE_MS

from .conftest import behind_the_door

#: a winter weekday afternoon in New York (the virtual home's zone): the shipped PSCo RE-TOU peak is ahead
NOW = datetime(2026, 1, 14, 18, 7, tzinfo=UTC)
STEP = 15 * MINUTE_MS


def _hub(tmp_path: Path, days: float = 10.0, **planner: object) -> Hub:
    config = Config()
    config = config.replace(server=config.server.replace(backfill_days=days),
                            planner=PlannerConfig(enabled=True, **planner))
    hub = Hub(config, tmp_path, clock=lambda: NOW)
    hub.prepare()
    asyncio.run(hub.poll_once())
    hub.flush()
    return hub


async def _first_plan(hub: Hub) -> None:
    """Run the hub's planner loop until its executor has recorded the first step's commands."""
    assert hub.planning is not None and hub.executor is not None
    stop = asyncio.Event()
    task = asyncio.create_task(hub.planning.run(stop))
    try:
        for _ in range(1000):  # polls a condition, at most ~10 s
            if hub.executor.records or hub.planning.errors or task.done():
                break
            await asyncio.sleep(0.01)
    finally:
        stop.set()
        await task


#: 11:32 in New York on a winter weekday: the plan charges the virtual battery before the 14:00 peak and exports in it
MIDDAY = datetime(2026, 1, 14, 16, 32, tzinfo=UTC)


class LiveClock:
    """A clock the test moves on."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def live_hub(data_dir: Path, clock: LiveClock, days: float = 10.0) -> Hub:
    """The hub as ``homegrid serve`` runs it with no config: the virtual home, the planner on by default."""
    config = Config()
    hub = Hub(config.replace(server=config.server.replace(backfill_days=days)), data_dir, clock=clock)
    hub.prepare()
    return hub


async def run_steps(hub: Hub, clock: LiveClock, steps: int, polls: int = 3) -> None:
    """``steps`` planner steps of 15 minutes as the running hub makes them: at each step's start a plan is made
    and carried out, then the virtual home is polled ``polls`` times across the step."""
    assert hub.planning is not None and hub.executor is not None
    for _ in range(steps):
        await hub.poll_once()
        hub.flush()
        made = await hub.planning.next_plan()
        assert made is not None, hub.planning.last_error
        await hub.executor.follow(*made, 0)
        for _ in range(polls):
            clock.now += timedelta(minutes=15 / polls)
            await hub.poll_once()
            hub.flush()


def test_the_planner_is_on_by_default_on_the_virtual_home_only(tmp_path):
    config = Config()
    assert config.planner.enabled is None
    hub = Hub(config, tmp_path / "virtual", clock=lambda: NOW)
    off = Hub(config.replace(planner=PlannerConfig(enabled=False)), tmp_path / "off", clock=lambda: NOW)
    given = Hub(config, tmp_path / "given", device=hub.device, clock=lambda: NOW)  # a device the hub was handed
    try:
        assert hub.planner_on and hub.planning is not None and hub.executor is not None
        assert hub.executor.battery is hub.control and hub.executor.policy.dry_run is False
        assert not off.planner_on and off.planning is None and off.executor is None
        assert not given.planner_on and given.planning is None and given.executor is None
    finally:
        for h in (hub, off, given):
            h.store.close()


def test_the_virtual_home_carries_the_plan_out_from_cheap_hours_into_the_peak(tmp_path):
    clock = LiveClock(MIDDAY)
    hub = live_hub(tmp_path, clock)
    try:
        asyncio.run(run_steps(hub, clock, 24))  # 11:30 to 17:30 local: the export waits for the sun to set
        assert hub.planning is not None and hub.planning.errors == 0
        done = hub.planning.carried_out()
        steps: dict[str, list[dict[str, object]]] = {}
        for s in done["steps"]:
            steps.setdefault(s["done_mode"], []).append(s)
        # off-peak, the battery is charged from the grid (and the sun), its level rising as planned
        charging = [s for s in steps.get("charge", []) if s["planned_soc_percent"] < 95]
        assert len(charging) >= 3, [s["done_mode"] for s in done["steps"]]
        assert all(s["measured_battery_w"] < -2000 for s in charging), charging
        assert sum(s["measured_battery_w"] < -4900 for s in charging) >= 3  # at its full 5 kW
        levels = [s["measured_soc_percent"] for s in charging]
        assert levels == sorted(levels) and levels[-1] - levels[0] > 15
        assert all(abs(s["measured_soc_percent"] - s["planned_soc_percent"]) < 6 for s in charging)
        # in the peak it exports from the battery, down towards the level planned
        exporting = steps.get("export", [])
        assert exporting and all(s["measured_battery_w"] > 2000 for s in exporting), exporting
        # the charge's target became the battery's reserve, yet the plans kept the owner's 20 % as their floor
        made = hub.planning.last
        assert made is not None and float(np.max(made.problem.reserve_percent)) == 20.0
        sent = [c for c in done["commands"] if c["outcome"] == "sent" and c["device"] == "battery"]
        assert {"charge", "export"} <= {c["mode"] for c in sent}
        assert hub.executor is not None and hub.executor.floor_percent == 20.0
    finally:
        hub.store.close()

def test_the_hub_plans_on_the_virtual_home_and_the_executor_acts(tmp_path):
    hub = _hub(tmp_path)
    try:
        before = asyncio.run(hub.control.settings())
        asyncio.run(_first_plan(hub))
        svc = hub.planning
        assert svc is not None and svc.errors == 0 and svc.plans == 1, svc.last_error
        made = svc.last
        assert made is not None
        p = made.problem
        assert len(p.t_ms) == 96 and p.step_ms == STEP and p.t_ms[0] <= to_ms(NOW) < p.t_ms[0] + STEP
        # the shipped PSCo RE-TOU rate: the weekday peak (15:00-19:00 local in winter) is dearer than the night
        assert p.import_price.max() > p.import_price.min() > 0
        assert p.load_w.mean() > 100 and p.solar_w.max() > 0 and float(p.solar_w[-8:].max()) >= 0
        assert p.battery.capacity_wh == hub.config.virtual.battery_kwh * 1000
        assert math.isclose(p.soc_percent, hub.live()[1]["battery_soc"])
        # the plan is carried out: the battery got its command, and its settings changed to say so
        sent = [r for r in hub.executor.records if r.device == "battery"]
        assert sent and sent[0].outcome == "sent" and sent[0].mode == made.plan.modes[0].value
        assert asyncio.run(hub.control.settings()) != before or made.plan.modes[0] is Mode.SELF_POWERED
        status = hub.status()["planning"]
        assert status["plans"] == 1 and status["errors"] == 0 and status["solve_ms"] < 1000
        # the plan is no dearer than the battery left self-powered over the same forecasts
        assert made.plan.cost <= made.self_powered.cost + 1e-6
    finally:
        hub.store.close()


def test_the_running_hub_supervises_the_planner_task(tmp_path):
    """With the weather task beside it: the network refuses (tests/conftest.py), the fetch fails, counted, and the
    virtual home is planned from the clear sky as without a weather forecast."""
    hub = _hub(tmp_path, days=3, dry_run=True)

    async def run() -> None:
        loop = asyncio.create_task(hub.run_pollers())
        try:
            for _ in range(2000):  # polls a condition, at most ~20 s
                if ((hub.planning.plans or hub.planning.errors) and hub.weather.failures) or loop.done():
                    break
                await asyncio.sleep(0.01)
        finally:
            hub.stop()
            await loop

    try:
        assert hub.planning is not None and hub.weather is not None
        asyncio.run(run())
        assert hub.planning.plans == 1 and hub.planning.errors == 0, hub.planning.last_error
        status = hub.status()
        tasks = status["tasks"]
        assert "planner" in tasks and tasks["planner"]["restarts"] == 0, tasks
        assert tasks["weather"]["restarts"] == 0 and status["weather"]["failures"] >= 1, status["weather"]
        made = hub.planning.last
        assert made is not None and made.problem.solar_w.max() > 0
        assert "solar: clear sky scaled by the recent days, no weather forecast" in made.notes
    finally:
        hub.store.close()


def test_a_dry_run_plans_and_sends_nothing(tmp_path):
    hub = _hub(tmp_path, dry_run=True)
    try:
        before = asyncio.run(hub.control.settings_now())
        asyncio.run(_first_plan(hub))
        assert hub.planning is not None and hub.planning.plans == 1
        records = list(hub.executor.records)
        assert records and {r.outcome for r in records} == {"dry run"}
        assert asyncio.run(hub.control.settings_now()) == before
    finally:
        hub.store.close()


def test_without_a_tariff_the_step_fails_counted_and_the_hub_goes_on(tmp_path):
    config = Config()
    config = config.replace(server=config.server.replace(backfill_days=2),
                            planner=PlannerConfig(enabled=True), tariff=TariffConfig(file="none"))
    hub = Hub(config, tmp_path, clock=lambda: NOW)
    try:
        hub.prepare()
        asyncio.run(hub.poll_once())
        hub.flush()
        assert hub.planning is not None
        assert asyncio.run(hub.planning.next_plan()) is None
        assert asyncio.run(hub.planning.next_plan()) is None
        status = hub.status()["planning"]
        assert status["errors"] == 2 and "no tariff" in status["last_error"] and status["plans"] == 0
        assert not hub.executor.records  # nothing was sent without a plan
    finally:
        hub.store.close()


def test_storm_mode_raises_the_plans_floor(tmp_path):
    hub = _hub(tmp_path, days=3)
    try:
        svc = hub.planning
        assert svc is not None
        calm = svc.build(to_ms(NOW))[0]
        stormy = PlanningService(hub.config, hub.store, hub.tariff, hub.live, hub.clock,
                                 storm=lambda: {"storm": True, "reserve_percent": 80.0})
        problem, notes = stormy.build(to_ms(NOW))
        assert float(np.max(calm.reserve_percent)) < 80.0
        assert np.all(np.asarray(problem.reserve_percent) == 80.0)
        assert any("storm" in n for n in notes)
    finally:
        hub.store.close()


def test_the_car_at_home_is_planned_by_its_departure(tmp_path):
    hub = _hub(tmp_path, days=3)
    try:
        values = {**hub.live()[1], "ev_at_home": 1.0, "ev_soc": 50.0, "ev_charge_limit": 90.0,
                  "ev_charging_state": float(EvChargingState.STOPPED)}
        svc = PlanningService(hub.config, hub.store, hub.tariff, lambda: (None, values, {}, []), hub.clock)
        problem, _ = svc.build(to_ms(NOW))
        car = problem.car
        assert car is not None
        departure = next_departure_ms(to_ms(NOW), "07:00", "America/New_York")
        assert departure == to_ms(datetime(2026, 1, 15, 12, 0, tzinfo=UTC))  # 07:00 EST
        assert car.deadline_step == int(np.searchsorted(problem.t_ms, departure))
        assert car.plugged[: car.deadline_step].all() and not car.plugged[car.deadline_step:].any()
        assert math.isclose(car.energy_wh, 0.4 * hub.config.virtual.ev_pack_kwh * 1000 / 0.9)
        unplugged = {**values, "ev_charging_state": float(EvChargingState.DISCONNECTED)}
        svc2 = PlanningService(hub.config, hub.store, hub.tariff, lambda: (None, unplugged, {}, []), hub.clock)
        problem2, notes2 = svc2.build(to_ms(NOW))
        assert problem2.car is None and "not plugged in" in notes2[-1]
        made = solve(problem)
        assert not made.relaxed
        delivered = float(made.car_w[: car.deadline_step].sum()) * problem.hours
        assert delivered == pytest.approx(car.energy_wh, rel=1e-3)
    finally:
        hub.store.close()


def test_departures_follow_the_local_clock_across_dst():
    # 2026-03-08: New York springs forward at 02:00; 07:00 that morning is EDT (11:00 UTC), the day before EST
    before = to_ms(datetime(2026, 3, 8, 3, 0, tzinfo=UTC))  # 22:00 EST on the 7th
    assert next_departure_ms(before, "07:00", "America/New_York") == to_ms(datetime(2026, 3, 8, 11, 0, tzinfo=UTC))
    at = to_ms(datetime(2026, 3, 8, 11, 0, tzinfo=UTC))
    assert next_departure_ms(at, "07:00", "America/New_York") == to_ms(datetime(2026, 3, 9, 11, 0, tzinfo=UTC))


def test_the_plan_api_and_409_when_off(tmp_path):
    hub = _hub(tmp_path)
    try:
        assert hub.planning is not None
        app = FastAPI()
        add_plan_routes(app, hub.planning)
        client = behind_the_door(app, tmp_path / "owner")
        body = client.get("/api/v1/plan").json()
        assert body["enabled"] and body["plan"] is None  # before the first plan
        hub.planning.make()
        body = client.get("/api/v1/plan").json()
        plan = body["plan"]
        assert len(plan["steps"]) == 96 and plan["step_min"] == 15 and plan["horizon_h"] == 24
        step = plan["steps"][0]
        assert set(step) >= {"time", "mode", "battery_w", "soc_percent", "grid_w", "car_w", "load_w", "solar_w",
                             "import_price", "export_price"}
        made = hub.planning.last
        assert made is not None
        assert [s["mode"] for s in plan["steps"]] == [m.value for m in made.plan.modes]
        # each step balances: load + car = solar + battery + grid (nothing curtailed or unserved here)
        for s in plan["steps"]:
            assert s["load_w"] + s["car_w"] == pytest.approx(s["solar_w"] + s["battery_w"] + s["grid_w"], abs=1.0)
        cost = plan["cost"]
        assert cost["plan"] == pytest.approx(grid_cost(made.problem, made.plan), abs=1e-3)
        assert cost["self_powered"] == pytest.approx(grid_cost(made.problem, made.self_powered), abs=1e-3)
        assert cost["saving"] >= -1e-6 and cost["currency"] == "USD"
        assert plan["relaxed"] == [] and plan["solve_ms"] > 0
        assert plan["next"]["mode"] == step["mode"] and plan["next"]["battery_reason"].startswith("step 0")
        errors = body["forecast_errors"]
        assert [h["horizon_h"] for h in errors["load"]] == [1.0, 6.0, 24.0]
        assert all(h["mae_w"] > 0 and h["rmse_w"] >= h["mae_w"] for h in errors["load"] + errors["solar"])

        add_planner_routes(app, hub.executor, hub.planning)
        commands = client.get("/api/v1/planner/commands").json()
        assert commands["planning"]["plans"] == 1 and commands["planning"]["errors"] == 0

        off = FastAPI()
        add_plan_routes(off, None)
        reply = behind_the_door(off, tmp_path / "owner2").get("/api/v1/plan")
        assert reply.status_code == 409 and reply.json()["detail"] == HOW_TO_ENABLE
    finally:
        hub.store.close()


@st.composite
def _problems(draw: st.DrawFn) -> Problem:
    n = draw(st.integers(2, 24))
    floats = st.floats(0.0, 6000.0, allow_nan=False)
    load = np.array(draw(st.lists(floats, min_size=n, max_size=n)))
    solar = np.array(draw(st.lists(floats, min_size=n, max_size=n)))
    imp = np.array(draw(st.lists(st.floats(0.01, 0.6), min_size=n, max_size=n)))
    exp = imp * draw(st.floats(0.0, 1.0))
    return Problem(t_ms=np.arange(n, dtype=np.int64) * STEP, step_ms=STEP, load_w=load, solar_w=solar,
                   import_price=imp, export_price=exp,
                   battery=BatterySpec(capacity_wh=draw(st.floats(1000, 20000)),
                                       max_charge_w=draw(st.floats(500, 8000)),
                                       max_discharge_w=draw(st.floats(500, 8000))),
                   soc_percent=draw(st.floats(20.0, 100.0)), reserve_percent=draw(st.floats(0.0, 20.0)))


@settings(max_examples=60, deadline=None)
@given(_problems())
def test_self_powered_conserves_energy_keeps_the_floor_and_is_never_cheaper_than_the_plan(problem):
    base = self_powered(problem)
    b = problem.battery
    # the flows add up each step
    np.testing.assert_allclose(problem.load_w + base.car_w, problem.solar_w + base.battery_w + base.grid_w,
                               atol=1e-6)
    # the battery only charges from the sun's surplus and only discharges to cover the home
    surplus = np.clip(problem.solar_w - problem.load_w, 0.0, None)
    deficit = np.clip(problem.load_w - problem.solar_w, 0.0, None)
    assert np.all(-base.battery_w <= surplus + 1e-6) and np.all(base.battery_w <= deficit + 1e-6)
    assert np.all(base.battery_w <= b.max_discharge_w + 1e-6) and np.all(-base.battery_w <= b.max_charge_w + 1e-6)
    assert np.all(base.soc_percent <= 100.0 + 1e-9)
    assert np.all(base.soc_percent >= np.minimum(problem.reserve_percent, problem.soc_percent) - 1e-9)
    # the stored energy follows the flows through the efficiencies
    e = b.capacity_wh * np.concatenate([[problem.soc_percent], base.soc_percent]) / 100.0
    h = problem.hours
    expected = np.where(base.battery_w < 0, -base.battery_w * h * b.charge_efficiency,
                        -base.battery_w * h / b.discharge_efficiency)
    np.testing.assert_allclose(np.diff(e), expected, atol=1e-6)
    # a feasible plan the optimiser could have chosen: its optimum costs no more
    best = solve(problem)
    if not best.relaxed:
        assert best.cost <= base.cost + 1e-6 * (1 + abs(base.cost))


def test_self_powered_by_hand():
    # 15 min steps, a 4 kWh battery at 50 % with a 25 % floor, 90 % round trip split evenly (sqrt(0.9) each way)
    spec = BatterySpec(capacity_wh=4000.0, max_charge_w=3000.0, max_discharge_w=3000.0)
    problem = Problem(t_ms=np.arange(3, dtype=np.int64) * STEP, step_ms=STEP,
                      load_w=np.array([1000.0, 2000.0, 8000.0]), solar_w=np.array([5000.0, 0.0, 0.0]),
                      import_price=np.array([0.1, 0.3, 0.3]), export_price=np.array([0.05, 0.05, 0.05]),
                      battery=spec, soc_percent=50.0, reserve_percent=25.0)
    base = self_powered(problem)
    eff = math.sqrt(0.9)
    # step 0: 4 kW of surplus, 3 kW into the battery (its limit), 1 kW exported
    assert base.battery_w[0] == pytest.approx(-3000.0) and base.grid_w[0] == pytest.approx(-1000.0)
    e0 = 2000.0 + 3000.0 * 0.25 * eff
    assert base.soc_percent[0] == pytest.approx(100 * e0 / 4000.0)
    # step 1: the 2 kW deficit from the battery
    e1 = e0 - 2000.0 * 0.25 / eff
    assert base.battery_w[1] == pytest.approx(2000.0) and base.grid_w[1] == pytest.approx(0.0)
    # step 2: 8 kW wanted, the battery gives its 3 kW limit, the grid the rest
    assert base.battery_w[2] == pytest.approx(3000.0) and base.grid_w[2] == pytest.approx(5000.0)
    assert base.soc_percent[2] == pytest.approx(100 * (e1 - 3000.0 * 0.25 / eff) / 4000.0)
    # priced: -1 kW x 0.25 h x 0.05 + 5 kW x 0.25 h x 0.3
    assert grid_cost(problem, base) == pytest.approx(-0.0125 + 0.375)
