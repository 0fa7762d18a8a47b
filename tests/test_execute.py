"""Execution (issue 14, item 3): the plan's modes carried out by the virtual home and its car, the Powerwall
mapping through pypowerwall on recorded Fleet API replies, the car's commands through tesla-fleet-api, and the
executor: its log, dry run, storm's standby and the owner's change that stops it until handed back."""

from __future__ import annotations

import asyncio
import json
import math
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from homegrid.config import Config, VirtualHomeConfig
from homegrid.devices.base import DeviceError
from homegrid.devices.control import (
    BatteryCommand,
    CarCommand,
    PowerwallSettings,
    powerwall_settings,
)
from homegrid.devices.powerwall.control import PowerwallControl, app_to_gateway, grid_rules_of_site_info
from homegrid.devices.tesla.control import TeslaCarControl, car_settings_of
from homegrid.devices.virtual import VirtualHome
from homegrid.devices.virtual.battery import CHARGE, EXPORT, HOLD, SELF_POWERED, follow_mode
from homegrid.devices.virtual.control import VirtualControl
from homegrid.planner.execute import Executor, ExecutorPolicy, battery_command, car_command, export_later, gain_pays
from homegrid.planner.problem import CarNeed, Mode, Plan, Problem
from homegrid.readings import to_ms

from .conftest import SHARED_DATA

HA = SHARED_DATA / "tesla" / "home-assistant"
NIGHT = datetime(2025, 1, 15, 3, 0, tzinfo=UTC)  # 22:00 in New York, a Tuesday: no sun, the car at home
NOON = datetime(2025, 6, 15, 17, 0, tzinfo=UTC)  # 13:00 in New York, June: a surplus of sun
HOUR = timedelta(hours=1)


def load(rel: str) -> Any:
    return json.loads((HA / rel).read_text())


def _home(start: datetime, car: bool = True) -> VirtualHome:
    held: list[VirtualHome] = []
    # its clock is its own time: a poll reads the home where the simulation is, never runs it on to the wall clock
    home = VirtualHome(Config(virtual=VirtualHomeConfig(outages_per_year=0)), clock=lambda: held[0].now, start=start)
    held.append(home)
    if not car:  # the battery's own tests: the home's load only
        home.set_car(CarCommand(False))
    return home


def _hour(home: VirtualHome, command: BatteryCommand) -> dict[str, np.ndarray]:
    asyncio.run(VirtualControl(home).apply(command))
    frame = home.simulate(home.now + HOUR, 60)
    cols = frame.columns
    # every row balances: home = solar + battery + grid
    assert cols["home_power"] == pytest.approx(cols["solar_power"] + cols["battery_power"] + cols["grid_power"],
                                               abs=1e-6)
    return cols


def _stored_wh(cols: dict[str, np.ndarray], capacity_wh: float = 13_500.0) -> float:
    """The energy the battery's power says went in and out over the hour, as stored energy [Wh]."""
    eta = math.sqrt(0.9)
    b = cols["battery_power"] / 60.0  # 1-minute steps: W -> Wh
    return float(np.where(b < 0, -b * eta, -b / eta).sum())


# -- the virtual home carries out each mode, with the real simulated load ---------------------------------------


def test_self_powered_covers_the_night_load_from_the_battery():
    cols = _hour(_home(NIGHT, car=False), BatteryCommand("self-powered", 20.0))
    assert cols["battery_power"] == pytest.approx(cols["home_power"], rel=1e-9)  # the battery carries the home
    assert np.abs(cols["grid_power"]).max() < 1e-6
    assert cols["battery_soc"][-1] < cols["battery_soc"][0]


def test_charge_takes_the_grid_at_full_power_up_to_the_target_then_holds():
    home = _home(NIGHT, car=False)
    start = asyncio.run(home.poll()).values["battery_soc"]
    assert start == pytest.approx(60.0)
    target = 90.0  # 4.05 kWh to store: 5 kW for about 51 minutes
    cols = _hour(home, BatteryCommand("charge", 20.0, target))
    charging = cols["battery_power"] < -1
    assert cols["battery_power"][charging][:-1] == pytest.approx(-5000.0, abs=1e-6)  # full power ...
    assert -5000.0 <= cols["battery_power"][charging][-1] < 0  # (the last minute: what was left)
    assert 48 <= charging.sum() <= 53  # ... until the target
    assert cols["grid_power"][charging] == pytest.approx(cols["home_power"][charging]
                                                         - cols["battery_power"][charging])  # from the grid
    after = asyncio.run(home.poll()).values["battery_soc"]
    assert after == pytest.approx(target, abs=0.05)
    assert cols["battery_power"][~charging].max() <= 0  # at the target: no discharge
    assert after - start == pytest.approx(_stored_wh(cols) / 135.0, abs=0.05)  # the energy adds up
    settings_ = asyncio.run(VirtualControl(home).settings_now())
    assert settings_ == PowerwallSettings("autonomous", 90.0, True, "pv_only")  # what a Powerwall reports
    assert asyncio.run(home.poll()).values["battery_reserve"] == 90.0


def test_hold_keeps_the_level_at_night_and_takes_only_the_sun_by_day():
    home = _home(NIGHT, car=False)
    cols = _hour(home, BatteryCommand("hold", 20.0, 60.0))
    assert np.abs(cols["battery_power"]).max() < 1e-9  # no discharge, no grid charging
    assert cols["grid_power"] == pytest.approx(cols["home_power"])
    day = _home(NOON, car=False)
    cols = _hour(day, BatteryCommand("hold", 20.0, 60.0))
    surplus = np.maximum(cols["solar_power"] - cols["home_power"], 0.0)
    assert cols["battery_power"].max() <= 1e-9
    assert (-cols["battery_power"] <= surplus + 1e-6).all()  # charged by the sun's surplus only
    assert cols["battery_power"].min() < -500
    assert cols["grid_power"].max() <= 1e-6  # the home never imports while holding in the sun


def test_export_discharges_at_full_power_and_stops_at_the_reserve():
    home = _home(NIGHT, car=False)
    cols = _hour(home, BatteryCommand("export", 20.0))
    assert cols["battery_power"] == pytest.approx(5000.0)  # 5 kW whatever the load ...
    assert (cols["grid_power"] == pytest.approx(cols["home_power"] - 5000.0))  # ... the rest to the grid
    assert cols["grid_power"].max() < 0
    low = _home(NIGHT, car=False)
    low.restore({"battery_soc": 25.0})  # 675 Wh above the reserve: about 7.7 minutes at 5 kW
    cols = _hour(low, BatteryCommand("export", 20.0))
    assert asyncio.run(low.poll()).values["battery_soc"] == pytest.approx(20.0, abs=0.01)
    assert (cols["battery_power"] > 4999).sum() in (7, 8)
    assert cols["battery_power"][10:] == pytest.approx(0.0, abs=1e-9)  # at the reserve: the grid carries the home


@settings(max_examples=300, deadline=None)
@given(mode=st.sampled_from([SELF_POWERED, CHARGE, HOLD, EXPORT]), net=st.floats(-8000, 8000),
       energy=st.floats(0, 13_500), reserve=st.floats(0, 13_500), target=st.floats(0, 13_500),
       dt=st.floats(1, 900))
def test_every_mode_conserves_energy_and_respects_its_limits(mode, net, energy, reserve, target, dt):
    cap, pmax, eta = 13_500.0, 5_000.0, math.sqrt(0.9)
    b, after = follow_mode(mode, net, energy, dt, cap, pmax, eta, reserve, target, 1_800.0)
    assert -pmax - 1e-6 <= b <= pmax + 1e-6
    assert -1e-6 <= after <= cap + 1e-6
    stored = -b * dt / 3600 * eta if b < 0 else -b * dt / 3600 / eta
    assert after - energy == pytest.approx(stored, abs=1e-6)
    if b > 1e-9:  # a discharge never goes below the reserve (HOLD: nor below the level held)
        floor = max(reserve, target) if mode == HOLD else reserve
        assert after >= min(energy, floor) - 1e-6
    if mode == HOLD and b < -1e-9 and energy < reserve:
        pass  # below the reserve the grid may refill it, as a Powerwall does (self_powered's rule)
    elif mode == HOLD:
        assert -b <= max(-net, 0.0) + 1e-6  # the sun only
    if mode == CHARGE and energy < min(target, cap) - 1e-9:
        assert b < 0 and after <= max(target, energy) + 1e-6


def test_the_owner_changing_the_reserve_ends_the_plans_mode():
    home = _home(NIGHT, car=False)
    control = VirtualControl(home)
    asyncio.run(control.apply(BatteryCommand("charge", 20.0, 90.0)))
    asyncio.run(control.set_backup_reserve(30.0))
    assert asyncio.run(control.settings_now()) == PowerwallSettings("self_consumption", 30.0)
    cols = home.simulate(NIGHT + HOUR, 60).columns
    assert cols["battery_power"].min() >= 0  # self-powered again: no more grid charging


# -- the virtual car -------------------------------------------------------------------------------------------


def test_the_virtual_car_follows_on_off_amps_and_limit():
    home = _home(NIGHT)
    assert home.car.plugged and home.car.charging  # at 70 %, charging to 90 % at 11.5 kW
    control = home.car_control()
    asyncio.run(control.apply(CarCommand(False)))
    assert not home.car.charging
    off = home.simulate(NIGHT + HOUR, 60).columns
    assert off["ev_power"].max() == 0.0 and off["ev_soc"][-1] == pytest.approx(70.0)
    asyncio.run(control.apply(CarCommand(True, 16)))
    on = home.simulate(NIGHT + 2 * HOUR, 60).columns
    assert on["ev_power"] == pytest.approx(16 * 240.0)  # 3.84 kW, below the taper
    assert on["ev_charging_state"][0] == 1.0 or on["ev_power"].min() > 0
    assert on["ev_soc"][-1] < 78.0
    asyncio.run(control.apply(CarCommand(True, 32, limit_percent=78)))
    assert asyncio.run(control.car_settings()).limit_percent == 78
    capped = home.simulate(NIGHT + 3 * HOUR, 60).columns
    assert capped["ev_soc"][-1] == pytest.approx(78.0, abs=0.01)  # stopped at the new limit
    assert capped["ev_power"][-1] == 0.0 and capped["ev_charge_limit"][-1] == pytest.approx(78.0)
    assert capped["ev_power"].max() == pytest.approx(32 * 240.0)


# -- the Powerwall: the mapping, through pypowerwall, on recorded Fleet API replies --------------------------------


def test_the_mapping_of_each_mode():
    assert powerwall_settings(BatteryCommand("self-powered", 20)) == PowerwallSettings(
        "self_consumption", 20, False, "pv_only")
    assert powerwall_settings(BatteryCommand("charge", 20, 80)) == PowerwallSettings("autonomous", 80, True, "pv_only")
    assert powerwall_settings(BatteryCommand("charge", 30, 10)).reserve_percent == 30  # never below the floor
    assert powerwall_settings(BatteryCommand("hold", 20, 57)) == PowerwallSettings(
        "self_consumption", 57, False, "pv_only")
    assert powerwall_settings(BatteryCommand("export", 20, idle_export_rule="never")) == PowerwallSettings(
        "autonomous", 20, False, "battery_ok")
    assert powerwall_settings(BatteryCommand("hold", 20, 57, "never")).export_rule == "never"
    with pytest.raises(ValueError, match="needs a target"):
        BatteryCommand("charge", 20)
    with pytest.raises(ValueError, match="expected one of"):
        BatteryCommand("discharge", 20)


@pytest.mark.parametrize("rel", ["tesla_fleet/site_info.json", "teslemetry/site_info.json", "tessie/site_info.json"])
def test_grid_rules_read_from_recorded_site_info(rel):
    # all three recordings: grid charging disallowed, export rule pv_only
    assert grid_rules_of_site_info(load(rel)) == (False, "pv_only")
    reply = load(rel)
    body = reply.get("response", reply)
    body["components"]["non_export_configured"] = True
    assert grid_rules_of_site_info(reply) == (False, "never")
    assert grid_rules_of_site_info({"response": {}}) == (None, None)


class RecordedFleetSite:
    """A ``PowerwallClient`` in Fleet API mode whose pypowerwall ``FleetAPI`` answers from a recorded
    ``site_info`` reply: pypowerwall's own grid-rule code runs on it, and its POSTs change the recording as Tesla
    would (the replies to POSTs are the documented ``{"response": {"code": 201, "message": "Updated"}}``)."""

    mode = "fleetapi"

    def __init__(self, tmp_path) -> None:
        from pypowerwall.fleetapi.fleetapi import FleetAPI

        self.site = load("tesla_fleet/site_info.json")
        self.posts: list[tuple[str, dict[str, Any]]] = []
        self.fleet = FleetAPI(configfile=str(tmp_path / "none.fleetapi"), site_id=1)
        self.fleet.poll = self._poll

    def _poll(self, api: str, action: str = "GET", data: Any = None, force: bool = False, **kw: Any) -> Any:
        if action == "GET":
            return json.loads(json.dumps(self.site))
        self.posts.append((api.rsplit("/", 1)[-1], data))
        body, components = self.site["response"], self.site["response"]["components"]
        for key, value in data.items():
            if key == "disallow_charge_from_grid_with_solar_installed" and not value:
                components.pop(key, None)
            elif key in ("disallow_charge_from_grid_with_solar_installed", "customer_preferred_export_rule"):
                components[key] = value
            else:  # default_real_mode, backup_reserve_percent
                body[key] = value
        return {"response": {"code": 201, "message": "Updated"}}

    def poll(self, api: str) -> Any:  # pypowerwall's /api/operation of a cloud mode: the gateway's scale
        assert api == "/api/operation"
        body = self.site["response"]
        return {"real_mode": body["default_real_mode"],
                "backup_reserve_percent": app_to_gateway(body["backup_reserve_percent"])}

    def call(self, fn):
        fleet = self.fleet

        class Powerwall:  # pypowerwall.Powerwall's methods as its Fleet API mode carries them out
            def set_reserve(self, level):
                return fleet.set_battery_reserve(int(level))

            def set_mode(self, mode):
                return fleet.set_operating_mode(mode)

            def set_grid_charging(self, mode):
                return fleet.set_grid_charging(mode)

            def set_grid_export(self, mode):
                return fleet.set_grid_export(mode)

            def get_grid_charging(self):
                return fleet.get_grid_charging()

            def get_grid_export(self):
                return fleet.get_grid_export()

        return fn(Powerwall()), []


def test_powerwall_carries_out_each_mode_from_a_recorded_site(tmp_path):
    site = RecordedFleetSite(tmp_path)
    control = PowerwallControl(site)
    assert asyncio.run(control.settings_now()) == PowerwallSettings("self_consumption", 0.0, False, "pv_only")
    asyncio.run(control.apply(BatteryCommand("charge", 20.0, 80.0)))
    assert site.posts == [("operation", {"default_real_mode": "autonomous"}),
                          ("backup", {"backup_reserve_percent": 80}),
                          ("grid_import_export", {"disallow_charge_from_grid_with_solar_installed": False})]
    assert asyncio.run(control.settings_now()) == PowerwallSettings("autonomous", 80.0, True, "pv_only")
    site.posts.clear()
    asyncio.run(control.apply(BatteryCommand("export", 20.0)))
    assert site.posts == [("backup", {"backup_reserve_percent": 20}),
                          ("grid_import_export", {"disallow_charge_from_grid_with_solar_installed": True}),
                          ("grid_import_export", {"customer_preferred_export_rule": "battery_ok"})]
    site.posts.clear()
    asyncio.run(control.apply(BatteryCommand("hold", 20.0, 63.4)))
    assert site.posts == [("operation", {"default_real_mode": "self_consumption"}),
                          ("backup", {"backup_reserve_percent": 63}),
                          ("grid_import_export", {"customer_preferred_export_rule": "pv_only"})]
    site.posts.clear()
    asyncio.run(control.apply(BatteryCommand("hold", 20.0, 63.4)))
    assert site.posts == []  # nothing differs: nothing written
    asyncio.run(control.apply(BatteryCommand("self-powered", 20.0)))
    assert site.posts == [("backup", {"backup_reserve_percent": 20})]
    assert asyncio.run(control.settings_now()) == PowerwallSettings("self_consumption", 20.0, False, "pv_only")


def test_powerwall_refusals_and_local_mode(tmp_path):
    site = RecordedFleetSite(tmp_path)
    site.fleet.poll = lambda api, action="GET", data=None, force=False, **kw: (
        load("tesla_fleet/site_info.json") if action == "GET" else None)  # a POST that got no reply
    with pytest.raises(DeviceError, match="did not set"):
        asyncio.run(PowerwallControl(site).apply(BatteryCommand("charge", 20.0, 80.0)))

    class Local:
        mode = "local"

    with pytest.raises(DeviceError, match="cloud"):
        asyncio.run(PowerwallControl(Local()).apply(BatteryCommand("self-powered", 20.0)))


# -- the car through tesla-fleet-api ---------------------------------------------------------------------------------


def test_car_settings_from_recorded_vehicle_data():
    stopped = car_settings_of(load("tesla_fleet/vehicle_data.json"))
    assert (stopped.charging, stopped.amps, stopped.limit_percent) == (False, 16, 80)
    charging = car_settings_of(load("tessie/online.json"))  # bare, as Tessie gives it
    assert (charging.charging, charging.amps, charging.limit_percent) == (True, 32, 80)
    with pytest.raises(DeviceError, match="charge_state"):
        car_settings_of({"response": {"state": "asleep"}})


class CarOnLoopback:
    """Tesla's vehicle commands and ``vehicle_data`` on 127.0.0.1, as Teslemetry serves them: commands answer
    ``{"response": {"result": ..., "reason": ...}}``; ``vehicle_data`` is the recorded reply."""

    def __init__(self) -> None:
        self.commands: list[tuple[str, dict[str, Any]]] = []
        self.paths: list[str] = []
        self.reasons: dict[str, str] = {}
        self.url = ""

    async def __aenter__(self) -> CarOnLoopback:
        from aiohttp import web

        app = web.Application()
        app.router.add_post("/api/1/vehicles/{vin}/command/{name}", self.command)
        app.router.add_get("/api/1/vehicles/{vin}/vehicle_data", self.vehicle_data)
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        host, port = self.runner.addresses[0][:2]
        self.url = f"http://{host}:{port}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.runner.cleanup()

    async def command(self, request):
        from aiohttp import web

        self.paths.append(request.path)
        name = request.match_info["name"]
        body = await request.read()
        self.commands.append((name, json.loads(body) if body else {}))
        reason = self.reasons.get(name, "")
        return web.json_response({"response": {"result": not reason, "reason": reason}})

    async def vehicle_data(self, request):
        from aiohttp import web

        self.paths.append(request.path)
        return web.json_response(load("teslemetry/vehicle_data.json"))


def test_car_commands_through_the_library_on_loopback():
    from homegrid.devices.tesla.client import TeslemetryClient

    async def go() -> CarOnLoopback:
        async with CarOnLoopback() as server:
            client = TeslemetryClient("LRW3F7EK4NC700000", "token-1", server=server.url, timeout_s=5)
            control = TeslaCarControl(client)
            try:
                await control.apply(CarCommand(True, 13, limit_percent=85))
                await control.apply(CarCommand(False, 13))
                server.reasons["charge_start"] = "is_charging"  # already so: not an error
                await control.apply(CarCommand(True))
                server.reasons["charge_start"] = "cable_not_connected"
                with pytest.raises(DeviceError, match="cable_not_connected"):
                    await control.apply(CarCommand(True))
                assert (await control.car_settings()).limit_percent == 80  # the recorded vehicle_data
            finally:
                await client.close()
        return server

    server = asyncio.run(go())
    assert server.commands[:4] == [("set_charge_limit", {"percent": 85}),
                                   ("set_charging_amps", {"charging_amps": 13}),
                                   ("charge_start", {}), ("charge_stop", {})]
    assert not any("wake" in p for p in server.paths)


# -- the executor ---------------------------------------------------------------------------------------------------

STEP = 15 * 60_000


def _plan(t0: datetime, modes: list[Mode], soc: list[float], car_w: list[float] | None = None,
          reserve: float = 20.0, soc_now: float = 60.0) -> tuple[Problem, Plan]:
    """A plan of ``modes`` worth carrying out (:func:`gain_pays`): imports at 0.10, exports earning 0.50, and one
    step more after them, discharging for the home at 0.40."""
    modes = [*modes, Mode.SELF_POWERED]
    n = len(modes)
    t = to_ms(t0) + STEP * np.arange(n, dtype=np.int64)
    car = None if car_w is None else CarNeed(plugged=np.ones(n, dtype=bool), max_w=7_680.0, energy_wh=10_000.0,
                                             deadline_step=n)
    buy = np.full(n, 0.10)
    buy[-1] = 0.40
    problem = Problem(t_ms=t, step_ms=STEP, load_w=np.full(n, 1000.0), solar_w=np.zeros(n), import_price=buy,
                      export_price=np.full(n, 0.50), soc_percent=soc_now, reserve_percent=reserve, car=car)
    flows = {Mode.CHARGE: -5_000.0, Mode.EXPORT: 5_000.0, Mode.HOLD: 0.0, Mode.SELF_POWERED: 1_000.0}
    plan = Plan(battery_w=np.array([flows[m] for m in modes]),
                car_w=np.asarray([*car_w, 0.0] if car_w is not None else np.zeros(n), dtype=float),
                grid_w=np.zeros(n), soc_percent=np.asarray([*soc, soc[-1]], dtype=float), modes=modes, cost=0.0)
    return problem, plan


class Clock:
    def __init__(self, home: VirtualHome) -> None:
        self.home = home

    def __call__(self) -> int:
        return to_ms(self.home.now)


class Sink:
    def __init__(self) -> None:
        self.events: list[tuple[str, dict[str, Any]]] = []

    def publish_event(self, kind: str, payload: dict[str, Any]) -> bool:
        self.events.append((kind, payload))
        return True


def test_commands_of_a_plan_step():
    problem, plan = _plan(NIGHT, [Mode.CHARGE, Mode.CHARGE, Mode.HOLD, Mode.EXPORT], [70, 85, 85, 60])
    cmd, why = battery_command(problem, plan, 0)
    assert cmd == BatteryCommand("charge", 20.0, 85.0)  # the level at the end of the run of CHARGE steps
    assert "charge to 85 % by 2025-01-15 03:30 UTC" in why and "import 0.100" in why
    assert battery_command(problem, plan, 2)[0] == BatteryCommand("hold", 20.0, 60.0)  # the level now
    assert battery_command(problem, plan, 2, hold_percent=84.6)[0].target_percent == 84.6
    assert battery_command(problem, plan, 3)[0] == BatteryCommand("export", 20.0, 60.0)  # down to the plan's level
    cheap = replace(problem, import_price=np.array([0.10, 0.10, 0.30, 0.30, 0.33]),  # kept energy earns 10 % more
                    export_price=np.full(5, 0.05))
    cmd, why = battery_command(cheap, plan, 2)
    assert cmd == BatteryCommand("self-powered", 20.0) and "against 0.330 per kWh within a day" in why
    assert battery_command(cheap, plan, 2, gain_margin=0.05)[0].mode == "hold"
    rising = replace(cheap, reserve_percent=np.array([20.0, 20.0, 20.0, 20.0, 50.0]))  # storm mode raises the floor
    assert battery_command(rising, plan, 2)[0].mode == "hold"
    assert battery_command(cheap, plan, 0)[0].mode == "charge"  # 0.33 x 90 % is well over 0.10
    dear = replace(cheap, import_price=np.array([0.30, 0.30, 0.30, 0.30, 0.33]))
    assert battery_command(dear, plan, 0)[0].mode == "self-powered"  # 0.33 x 90 % is not 15 % over 0.30
    # the home would use it later at 0.33: more than 15 % over 0.25, within 15 % of 0.30
    assert battery_command(replace(cheap, export_price=np.full(5, 0.25)), plan, 3)[0].mode == "self-powered"
    assert battery_command(replace(cheap, export_price=np.full(5, 0.30)), plan, 3)[0].mode == "export"
    problem, plan = _plan(NIGHT, [Mode.SELF_POWERED] * 2, [50, 50], car_w=[3_000.0, 100.0])
    assert car_command(problem, plan, 0)[0] == CarCommand(True, 12)  # 3 kW at 240 V
    assert car_command(problem, plan, 1)[0] == CarCommand(False)  # below the charger's minimum
    assert car_command(_plan(NIGHT, [Mode.HOLD], [50])[0], plan, 0) is None  # no car in the problem


def test_the_executor_runs_the_plan_on_the_virtual_home_and_logs_why():
    home = _home(NIGHT)
    sink = Sink()
    ex = Executor(VirtualControl(home), home.car_control(), publisher=sink, clock=Clock(home))
    problem, plan = _plan(NIGHT, [Mode.CHARGE, Mode.CHARGE, Mode.HOLD, Mode.EXPORT, Mode.SELF_POWERED],
                          [67, 74, 74, 66, 62], car_w=[0.0, 0.0, 7_680.0, 7_680.0, 0.0])
    socs = [asyncio.run(home.poll()).values["battery_soc"]]
    sent = []
    for step in range(5):
        problem = replace(problem, soc_percent=socs[-1])  # re-planned each step from the level now (MPC)
        sent.append([(r.device, r.command, r.outcome) for r in asyncio.run(ex.follow(problem, plan, step))])
        home.simulate(home.now + timedelta(milliseconds=STEP), 60)
        socs.append(asyncio.run(home.poll()).values["battery_soc"])
    assert sent[0] == [("battery", "charge to 74 % (reserve floor 20 %)", "sent"),
                       ("car", "car: stop charging", "sent")]
    assert sent[1] == []  # the same command: nothing sent again
    assert sent[2] == [("battery", "hold at 74 % (reserve floor 20 %)", "sent"),
                       ("car", "car: charge at 32 A", "sent")]
    assert sent[3] == [("battery", "export (reserve floor 20 %)", "sent")]
    assert sent[4][0] == ("battery", "self-powered (reserve floor 20 %)", "sent")
    assert socs[2] == pytest.approx(74.0, abs=0.05)  # charged at 5 kW to the target within two steps
    assert socs[3] == pytest.approx(socs[2], abs=1e-6)  # held
    assert socs[4] == pytest.approx(66.0, abs=0.05)  # 5 kW out until the plan's level (9.8 % in 15 min: it stops)
    assert socs[5] < socs[4]  # self-powered: the night load
    assert [k for k, _ in sink.events] == ["planner_command"] * 7
    payload = sink.events[0][1]
    assert payload["time"] == "2025-01-15T03:00:00Z" and "import 0.100" in payload["reason"]
    assert ex.status["acting"] and len(ex.status["commands"]) == 7


def test_dry_run_logs_what_it_would_do_and_touches_nothing():
    home = _home(NIGHT)
    ex = Executor(VirtualControl(home), home.car_control(), policy=ExecutorPolicy(dry_run=True), clock=Clock(home))
    problem, plan = _plan(NIGHT, [Mode.CHARGE, Mode.EXPORT], [90, 60], car_w=[0.0, 0.0])
    out = asyncio.run(ex.follow(problem, plan, 0)) + asyncio.run(ex.follow(problem, plan, 1))
    assert [(r.command, r.outcome) for r in out] == [
        ("charge to 90 % (reserve floor 20 %)", "dry run"), ("car: stop charging", "dry run"),
        ("export (reserve floor 20 %)", "dry run")]
    assert asyncio.run(VirtualControl(home).settings_now()) == PowerwallSettings("self_consumption", 20.0)
    assert home.car_settings.charging  # still charging as it was
    assert not ex.status["acting"] and ex.status["dry_run"]


def test_the_owners_change_stops_the_executor_until_handed_back():
    home = _home(NIGHT)
    control = VirtualControl(home)
    ex = Executor(control, home.car_control(), clock=Clock(home))
    problem, plan = _plan(NIGHT, [Mode.CHARGE, Mode.EXPORT, Mode.SELF_POWERED, Mode.HOLD, Mode.EXPORT],
                          [80, 70, 65, 65, 50], car_w=[7_680.0] * 5)
    assert [r.outcome for r in asyncio.run(ex.follow(problem, plan, 0))] == ["sent", "sent"]
    asyncio.run(ex.follow(problem, plan, 0))  # reads back as written: settled
    asyncio.run(control.set_backup_reserve(50.0))  # the owner, in the settings
    home.set_car(CarCommand(True, 16))  # and in the car's app
    out = asyncio.run(ex.follow(problem, plan, 1))
    assert [(r.device, r.outcome) for r in out] == [("battery", "owner"), ("car", "owner")]
    assert "backup reserve 50 % (set: 80 %)" in out[0].reason and "operation mode self_consumption" in out[0].reason
    assert "charging current 16 A (set: 32 A)" in out[1].reason
    assert asyncio.run(ex.follow(problem, plan, 2)) == []  # stands aside: nothing sent, nothing said again
    assert asyncio.run(control.settings_now()) == PowerwallSettings("self_consumption", 50.0)
    assert home.car_settings.amps == 16
    assert ex.status["owner_override"]["battery"].startswith("changed by hand") and not ex.status["acting"]
    ex.hand_back(by="the owner, in the System view")
    assert [(r.device, r.outcome) for r in list(ex.records)[-2:]] == [("battery", "handed back"),
                                                                      ("car", "handed back")]
    out = asyncio.run(ex.follow(problem, plan, 3))
    assert [(r.device, r.outcome) for r in out] == [("battery", "sent"), ("car", "sent")]
    assert asyncio.run(control.settings_now()).operation_mode == "self_consumption"
    assert asyncio.run(control.settings_now()).reserve_percent == pytest.approx(60.0, abs=0.5)  # hold at the level
    assert home.car_settings.amps == 32


class CappingBattery:
    """A cloud-controlled battery that caps the reserve at 80 % (as Tesla's cloud may) and applies late."""

    def __init__(self) -> None:
        self.now = PowerwallSettings("self_consumption", 20.0, False, "pv_only")
        self.writes: list[BatteryCommand] = []

    async def apply(self, command: BatteryCommand) -> PowerwallSettings:
        self.writes.append(command)
        want = powerwall_settings(command)
        self.now = PowerwallSettings(want.operation_mode, min(want.reserve_percent, 80.0), want.grid_charging,
                                     want.export_rule)
        return want

    async def settings_now(self) -> PowerwallSettings:
        return self.now


def test_a_capped_reserve_is_not_the_owners_hand_but_a_later_change_is():
    t = [to_ms(NIGHT)]
    battery = CappingBattery()
    ex = Executor(battery, policy=ExecutorPolicy(settle_s=300), clock=lambda: t[0])
    problem, plan = _plan(NIGHT, [Mode.CHARGE] * 4, [95, 95, 95, 95])
    asyncio.run(ex.follow(problem, plan, 0))
    t[0] += 60_000
    assert asyncio.run(ex.follow(problem, plan, 1)) == []  # reads 80, not 95: not settled yet, not the owner
    t[0] += 300_000
    assert asyncio.run(ex.follow(problem, plan, 2)) == []  # settled at the capped 80 %: the baseline
    battery.now = PowerwallSettings("autonomous", 80.0, False, "pv_only")  # the owner turned grid charging off
    out = asyncio.run(ex.follow(problem, plan, 3))
    assert [r.outcome for r in out] == ["owner"] and "grid charging off" in out[0].reason
    assert len(battery.writes) == 1


def test_storm_mode_puts_the_executor_on_standby_without_counting_as_the_owner():
    battery = CappingBattery()
    storm: list[str | None] = [None]
    ex = Executor(battery, standby=lambda: storm[0], clock=lambda: to_ms(NIGHT))
    problem, plan = _plan(NIGHT, [Mode.EXPORT, Mode.EXPORT, Mode.EXPORT], [50, 40, 30])
    asyncio.run(ex.follow(problem, plan, 0))
    asyncio.run(ex.follow(problem, plan, 0))  # settled
    storm[0] = "storm mode is on (Tornado Warning)"
    battery.now = PowerwallSettings("autonomous", 100.0, False, "battery_ok")  # storm mode raised the reserve
    out = asyncio.run(ex.follow(problem, plan, 1))
    assert [(r.outcome, r.reason) for r in out] == [("standby: storm mode is on (Tornado Warning)",
                                                     "storm mode is on (Tornado Warning)")]
    assert asyncio.run(ex.follow(problem, plan, 1)) == []  # said once
    storm[0] = None
    out = asyncio.run(ex.follow(problem, plan, 2))
    assert [r.outcome for r in out] == ["sent"] and ex.owner["battery"] is None
    assert len(battery.writes) == 2


def test_a_refused_command_is_logged_and_retried():
    class Refusing(CappingBattery):
        fail = True

        async def apply(self, command: BatteryCommand) -> PowerwallSettings:
            if self.fail:
                raise DeviceError("Tesla fleetapi did not set the export rule battery_ok: no reply")
            return await super().apply(command)

    battery = Refusing()
    ex = Executor(battery, clock=lambda: to_ms(NIGHT))
    problem, plan = _plan(NIGHT, [Mode.EXPORT], [40])
    out = asyncio.run(ex.follow(problem, plan, 0))
    assert out[0].outcome.startswith("failed: Tesla fleetapi did not set")
    battery.fail = False
    assert [r.outcome for r in asyncio.run(ex.follow(problem, plan, 0))] == ["sent"]


def test_the_log_keeps_the_last_n():
    ex = Executor(CappingBattery(), policy=ExecutorPolicy(keep=3, dry_run=True), clock=lambda: to_ms(NIGHT))
    modes = [Mode.CHARGE, Mode.EXPORT] * 4
    problem, plan = _plan(NIGHT, modes, [80, 60] * 4)
    for step in range(8):
        assert len(asyncio.run(ex.follow(problem, plan, step))) == 1
    assert len(ex.records) == 3 and len(ex.status["commands"]) == 3


def test_the_tesla_adapter_offers_the_car_control_where_its_client_sends_commands():
    from homegrid.devices.tesla import TeslaVehicle
    from homegrid.devices.tesla.client import TeslemetryClient, TessieClient

    assert isinstance(TeslaVehicle(TeslemetryClient("VIN1", "token")).car_control(), TeslaCarControl)
    assert TeslaVehicle(TessieClient("VIN1", "token")).car_control() is None  # other command names: not driven


def test_a_restart_neither_overwrites_nor_forgets_the_owners_change(tmp_path):
    state = tmp_path / "planner.json"
    home = _home(NIGHT)
    control = VirtualControl(home)
    problem, plan = _plan(NIGHT, [Mode.CHARGE, Mode.EXPORT], [80, 60])
    first = Executor(control, clock=Clock(home), state_path=state)
    asyncio.run(first.follow(problem, plan, 0))
    asyncio.run(first.follow(problem, plan, 0))  # settled, and saved
    saved = json.loads(state.read_text())
    assert saved["battery"]["expected"]["reserve_percent"] == 80.0 and saved["battery"]["settled"] is True
    # the battery's reserve shows the charge's 80 %; the owner's floor (20 %) is what the next plans keep
    assert saved["battery"]["floor_percent"] == 20.0
    assert Executor(control, clock=Clock(home), state_path=state).floor_percent == 20.0
    asyncio.run(control.set_backup_reserve(40.0))  # the owner, while the hub was down
    second = Executor(control, clock=Clock(home), state_path=state)
    out = asyncio.run(second.follow(problem, plan, 1))
    assert [r.outcome for r in out] == ["owner"] and "backup reserve 40 %" in out[0].reason
    assert second.floor_percent is None  # the battery's reserve is the owner's again
    assert asyncio.run(control.settings_now()).reserve_percent == 40.0  # not overwritten
    third = Executor(control, clock=Clock(home), state_path=state)  # and a second restart remembers it
    assert third.owner["battery"] == second.owner["battery"] and asyncio.run(third.follow(problem, plan, 1)) == []
    third.hand_back()
    assert json.loads(state.read_text())["owner"]["battery"] is None
    assert [r.outcome for r in asyncio.run(third.follow(problem, plan, 1))] == ["sent"]


def test_an_unreadable_state_file_starts_afresh_and_says_so(tmp_path):
    state = tmp_path / "planner.json"
    state.write_text('{"owner": {"battery": "x"}, "battery": {"sent": {"mode": "sideways"}}}')
    ex = Executor(CappingBattery(), clock=lambda: to_ms(NIGHT), state_path=state)
    assert ex.owner == {"battery": None, "car": None} and "starting afresh" in ex.status["problem"]
    state.write_text("{not json")
    assert "cannot read" in Executor(CappingBattery(), state_path=state).problem


def test_the_loop_replans_each_step_from_the_level_now_and_follows():
    """A rule that charges below 70 % and exports above 75 %, re-planned from the battery's level each step."""
    home = _home(NIGHT, car=False)
    ex = Executor(VirtualControl(home), clock=Clock(home))
    stop = asyncio.Event()
    levels: list[float] = []

    async def next_plan():
        if levels:  # the 15 minutes since the last plan pass in the virtual home
            home.simulate(home.now + timedelta(milliseconds=STEP), 60)
        soc = (await home.poll()).values["battery_soc"]
        levels.append(soc)
        if len(levels) == 8:
            stop.set()
        if len(levels) == 3:
            raise RuntimeError("the optimiser failed this once")
        mode = Mode.CHARGE if soc < 70 else Mode.EXPORT if soc > 75 else Mode.HOLD
        problem, plan = _plan(home.now, [mode, Mode.EXPORT], [72.0, 60.0])  # a hold for the dearer step after
        return replace(problem, soc_percent=soc), plan

    asyncio.run(ex.run(stop, next_plan, 0))
    assert len(levels) == 8
    sent = [r.command for r in ex.records if r.outcome == "sent"]
    assert sent[0] == "charge to 72 % (reserve floor 20 %)"
    assert levels[1] == pytest.approx(60 + 1250 * math.sqrt(0.9) / 135, abs=0.01)  # 5 kW for 15 min
    assert levels[2] == pytest.approx(72.0, abs=0.01)  # reached the target and held it
    assert "hold at 72 % (reserve floor 20 %)" in sent and max(levels) < 72.01


def _net_metered(solar_w: float, soc_now: float, n: int = 12) -> tuple[Problem, Plan]:
    """A net-metered peak of ``n`` steps at 0.22 (export = import) and one step after it at 0.10; the plan exports
    the battery from 100 % down to 20 % in its first four steps, the sun's surplus ``solar_w - 300`` W all along."""
    t = to_ms(NIGHT) + STEP * np.arange(n + 1, dtype=np.int64)
    price = np.array([0.22] * n + [0.10])
    problem = Problem(t_ms=t, step_ms=STEP, load_w=np.full(n + 1, 300.0), solar_w=np.full(n + 1, solar_w),
                      import_price=price, export_price=price.copy(), soc_percent=soc_now, reserve_percent=20.0)
    modes = [Mode.EXPORT] * 4 + [Mode.SELF_POWERED] * (n - 3)
    soc = np.array([80.0, 60.0, 40.0, 20.0] + [20.0] * (n - 3))
    plan = Plan(battery_w=np.where(np.arange(n + 1) < 4, 5_000.0, 0.0), car_w=np.zeros(n + 1),
                grid_w=np.zeros(n + 1), soc_percent=soc, modes=modes, cost=0.0)
    return problem, plan


def test_a_full_battery_exports_at_the_end_of_the_price_run_while_the_sun_has_a_surplus():
    problem, plan = _net_metered(solar_w=3_000.0, soc_now=100.0)
    cmd, why = battery_command(problem, plan, 0)
    # 13.5 kWh x 80 % x 95 % at 5 kW is 2.05 h: 9 steps of 15 min; the run has 11 more at 0.22: it starts at step 3
    assert cmd == BatteryCommand("self-powered", 20.0)
    assert export_later(problem, plan, 0, 20.0) == int(problem.t_ms[3])
    assert "waits until 2025-01-15 03:45 UTC" in why
    assert export_later(problem, plan, 3, 20.0) is None  # then it goes
    # the time kept is to empty the battery down to the reserve (the plan may discharge for the home after its
    # export, at the same power limit): a higher reserve leaves less to do, 6 steps for 13.5 kWh x 50 % x 95 %
    assert export_later(problem, plan, 0, 50.0) == int(problem.t_ms[6])
    # too few steps left at the price: export now
    short = replace(problem, export_price=np.array([0.22] * 9 + [0.10] * 4))
    assert battery_command(short, plan, 0)[0] == BatteryCommand("export", 20.0, 20.0)
    # no surplus now: export now (the battery serves the peak either way)
    assert battery_command(_net_metered(solar_w=0.0, soc_now=100.0)[0], plan, 0)[0].mode == "export"
    # much room and little sun to fill it later: empty it now
    assert battery_command(_net_metered(solar_w=400.0, soc_now=50.0)[0], plan, 0)[0].mode == "export"


def test_a_grid_charge_that_pays_even_when_exported_is_carried_out_whatever_the_margin():
    problem, plan = _plan(NIGHT, [Mode.CHARGE, Mode.CHARGE, Mode.SELF_POWERED], [60, 80, 70])
    # the plan's use later is worth 0.125, 12.5 % above 0.10 after the round trip: under the 15 % margin ...
    shoulder = replace(problem, import_price=np.array([0.099, 0.099, 0.125, 0.125]),
                       export_price=np.array([0.0, 0.0, 0.0, 0.0]))
    assert not gain_pays(shoulder, plan, 0)[0]
    # ... but with net metering the energy earns 0.125 x 90 % exported, over the 0.099 it costs: no risk
    metered = replace(shoulder, export_price=shoulder.import_price.copy())
    assert gain_pays(metered, plan, 0)[0]
    assert battery_command(metered, plan, 0)[0].mode == "charge"
    no_export = replace(metered, battery=replace(metered.battery, export_from_battery=False))
    assert not gain_pays(no_export, plan, 0)[0]
