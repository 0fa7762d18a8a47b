"""The owner's battery settings (issue 5, System view): backup reserve and operation mode, through the device
adapters (the virtual home; a Powerwall in a cloud mode), over ``/api/v1/settings``; the Powerwall's local mode
through real pypowerwall is in test_storm.py with the reserve."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi import FastAPI
from starlette.testclient import TestClient

from homegrid.api.settings import add_settings_routes, read_settings
from homegrid.config import Config, VirtualHomeConfig
from homegrid.devices.base import DeviceError
from homegrid.devices.powerwall.control import PowerwallControl
from homegrid.devices.virtual import VirtualHome
from homegrid.devices.virtual.control import VirtualControl

from .conftest import behind_the_door
from .test_storm import FakeCloudClient

NIGHT = datetime(2025, 1, 15, 3, 0, tzinfo=UTC)  # 22:00 in New York: no sun, the battery carries the home
NOON = datetime(2025, 6, 15, 17, 0, tzinfo=UTC)  # 13:00 in New York, June: a surplus of sun


def _home(start: datetime) -> VirtualHome:
    return VirtualHome(Config(virtual=VirtualHomeConfig(outages_per_year=0)),
                       start=start)


def _app(control, data_dir: Path, storm=None) -> TestClient:
    app = FastAPI()
    add_settings_routes(app, control, storm)
    return behind_the_door(app, data_dir)


# -- the virtual home ---------------------------------------------------------------------------------------


def test_backup_only_holds_the_virtual_battery_and_self_powered_lets_it_go():
    held, free = _home(NIGHT), _home(NIGHT)
    control = VirtualControl(held)
    assert asyncio.run(control.operation_mode()) == "self_consumption"
    asyncio.run(control.set_operation_mode("backup"))
    assert asyncio.run(control.operation_mode()) == "backup"
    assert asyncio.run(control.backup_reserve()) == pytest.approx(20.0)  # the reserve setting is kept
    night = held.simulate(NIGHT + timedelta(hours=2), 60)
    assert free.simulate(NIGHT + timedelta(hours=2), 60).columns["battery_power"].max() > 100
    assert night.columns["battery_power"].max() <= 0  # never covers the home while the grid is up
    assert night.columns["battery_reserve"][-1] == 20.0
    asyncio.run(control.set_operation_mode("self_consumption"))
    later = held.simulate(NIGHT + timedelta(hours=3), 60)
    assert later.columns["battery_power"].max() > 100  # back to covering the home


def test_backup_only_still_fills_the_virtual_battery_from_the_sun():
    home = _home(NOON)
    asyncio.run(VirtualControl(home).set_operation_mode("backup"))
    day = home.simulate(NOON + timedelta(hours=2), 60)
    assert day.columns["battery_power"].min() < -500  # charging from the surplus
    assert day.columns["battery_soc"][-1] > day.columns["battery_soc"][0]


def test_the_virtual_home_refuses_what_it_cannot_do():
    control = VirtualControl(_home(NIGHT))
    with pytest.raises(ValueError, match="takes self_consumption, backup"):
        asyncio.run(control.set_operation_mode("autonomous"))  # it has no tariff to follow
    with pytest.raises(ValueError, match=r"0\.\.100"):
        asyncio.run(control.set_backup_reserve(float("nan")))


@pytest.mark.slow
def test_settings_api_on_the_virtual_home(tmp_path):
    home = _home(NIGHT)
    api = _app(VirtualControl(home), tmp_path)
    now = api.get("/api/v1/settings").json()
    assert now["available"] and now["can_control"] and now["why_not"] is None
    assert now["battery_reserve"] == pytest.approx(20.0) and now["operation_mode"] == "self_consumption"
    assert [m["mode"] for m in now["modes"]] == ["self_consumption", "backup"]
    assert now["modes"][0]["label"] == "Self-Powered" and now["storm"] is None
    after = api.post("/api/v1/settings", json={"battery_reserve": 35, "operation_mode": "backup"}).json()
    assert after["battery_reserve"] == 35.0 and after["operation_mode"] == "backup"
    assert asyncio.run(home.poll()).values["battery_reserve"] == 35.0  # the readings follow
    only_mode = api.post("/api/v1/settings", json={"operation_mode": "self_consumption"}).json()
    assert only_mode["battery_reserve"] == 35.0 and only_mode["operation_mode"] == "self_consumption"
    for bad, word in (({"battery_reserve": 120}, "0..100"), ({"operation_mode": "autonomous"}, "takes"),
                      ({"battery_reserve": "lots"}, "")):
        r = api.post("/api/v1/settings", json=bad)
        assert r.status_code == 422 and word in r.text, bad
    assert api.get("/api/v1/settings").json()["battery_reserve"] == 35.0  # nothing changed by the refusals


def test_settings_api_without_a_battery_says_so(tmp_path):
    api = _app(None, tmp_path)
    assert api.get("/api/v1/settings").json() == {"available": False, "can_control": False,
                                                  "why_not": "no battery the hub can control", "storm": None}
    assert api.post("/api/v1/settings", json={"battery_reserve": 50}).status_code == 409


# -- the Powerwall ------------------------------------------------------------------------------------------


def test_cloud_mode_changes_reserve_and_mode_on_the_app_scale(tmp_path):
    fake = FakeCloudClient("fleetapi")
    api = _app(PowerwallControl(fake), tmp_path)
    now = api.get("/api/v1/settings").json()
    assert now["can_control"] and now["why_not"] is None
    after = api.post("/api/v1/settings", json={"operation_mode": "autonomous", "battery_reserve": 24.0}).json()
    assert fake.modes == ["autonomous"] and fake.reserve_app == 24.0  # the app's scale, as the owner gave it
    assert after["operation_mode"] == "autonomous" and after["battery_reserve"] == pytest.approx(24.0)
    fake.result = {"error": "energy site unavailable"}
    r = api.post("/api/v1/settings", json={"operation_mode": "backup"})
    assert r.status_code == 502 and "energy site unavailable" in r.text


def test_settings_report_a_device_that_does_not_answer():
    class Gone:
        can_control, modes, why_not = True, ("self_consumption",), None

        async def settings(self):
            raise DeviceError("powerwall at 192.0.2.1: timed out")

    out = asyncio.run(read_settings(Gone()))
    assert out["error"] == "powerwall at 192.0.2.1: timed out" and out["battery_reserve"] is None
