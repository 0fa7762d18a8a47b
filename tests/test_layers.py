"""The hub knows a device by what it can do, not by its class name (issue 12, "Layers, enforced").

The import contracts themselves run as ``lint-imports`` in ``scripts/test``, before pytest.
"""

import asyncio
import math
from dataclasses import asdict
from datetime import UTC, datetime

import pytest

from homegrid.config import Config
from homegrid.devices import Device
from homegrid.devices.base import BatteryFigures
from homegrid.devices.virtual import VirtualHome
from homegrid.hub.devices import build_battery_control
from homegrid.hub.service import Hub, SimulatedHistory
from homegrid.readings import Reading

NOW = datetime(2025, 6, 1, 12, tzinfo=UTC)


class Stand(VirtualHome):
    """The virtual home under another name (a wrapper, a fork, a test double): the same capabilities."""

    name = "stand"


class Meter(Device):
    """A device with no battery and no past of its own."""

    name = "meter"

    async def poll(self) -> Reading:
        return Reading(NOW, {"home_power": 500.0})


def _config(days: float = 0.5) -> Config:
    config = Config()
    return config.replace(server=config.server.replace(backfill_days=days))


def test_a_renamed_virtual_home_is_still_backfilled_controlled_and_modelled(tmp_path):
    config = _config()
    home = Stand(config, clock=lambda: NOW, start=datetime(2025, 6, 1, 0, tzinfo=UTC))
    hub = Hub(config, tmp_path, devices=[(home, 5.0)], clock=lambda: NOW)
    assert isinstance(home, SimulatedHistory)
    assert hub.backfill() == 12 * 60  # midnight to noon at a minute
    control = build_battery_control(home)
    assert control is not None and control.can_control
    asyncio.run(control.set_backup_reserve(45.0))
    assert home.backup_reserve_percent == 45.0 and asyncio.run(control.backup_reserve()) == 45.0
    hub.store.close()


def test_the_virtual_battery_figures_come_from_its_config():
    config = _config()
    v = config.virtual
    figures = VirtualHome(config, clock=lambda: NOW).battery_figures()
    assert figures == BatteryFigures(capacity_wh=v.battery_kwh * 1000.0, max_discharge_w=v.battery_kw * 1000.0,
                                     efficiency=pytest.approx(math.sqrt(v.battery_round_trip)), hidden_percent=0.0)
    assert 0.0 < figures.efficiency < 1.0
    assert set(asdict(figures)) == {"capacity_wh", "max_discharge_w", "efficiency", "hidden_percent"}


def test_a_device_without_the_capabilities_gets_none_of_them(tmp_path):
    meter = Meter()
    hub = Hub(_config(), tmp_path, devices=[(meter, 5.0)], clock=lambda: NOW)
    assert not isinstance(meter, SimulatedHistory)
    assert hub.backfill() == 0 and hub.store.time_range() is None
    assert build_battery_control(meter) is None and hub.control is None
    assert meter.battery_figures() is None
    hub.store.close()
