"""The counterfactual meters (homegrid.tariffs.meters): the homes without battery and without sun, from one set of
measured flows."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from homegrid.tariffs import EnergyRates, ExportRule, MonthHourSchedule, Tariff, Tier
from homegrid.tariffs.meters import HomeIntervals, counterfactual_meters, import_price
from homegrid.timezones import HOUR_MS, parse_iso_ms


def home_from_flows(rng: np.random.Generator, n: int, battery: bool) -> HomeIntervals:
    """A home whose energies are made of flows (Wh), as the accounting writes them."""
    f = {k: rng.uniform(0, 500, n) for k in ("solar_to_home", "solar_to_grid", "grid_to_home")}
    for k in ("solar_to_battery", "battery_to_home", "battery_to_grid", "grid_to_battery"):
        f[k] = rng.uniform(0, 300, n) * battery
    home = f["solar_to_home"] + f["battery_to_home"] + f["grid_to_home"]
    solar = f["solar_to_home"] + f["solar_to_battery"] + f["solar_to_grid"]
    return HomeIntervals(
        np.arange(n, dtype=np.int64) * HOUR_MS, HOUR_MS, home, solar,
        f["grid_to_home"] + f["grid_to_battery"], f["solar_to_grid"] + f["battery_to_grid"],
        f["solar_to_battery"] + f["grid_to_battery"], f["battery_to_home"] + f["battery_to_grid"],
        f["grid_to_battery"], f["battery_to_home"], f["battery_to_grid"], f["solar_to_battery"],
    )


@settings(max_examples=50, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), battery=st.booleans())
def test_each_home_balances_its_load(seed: int, battery: bool):
    home = home_from_flows(np.random.default_rng(seed), 48, battery)
    m = counterfactual_meters(home, ExportRule.NET_BILLING)
    assert np.allclose(m["grid_only"].import_wh, home.home) and not m["grid_only"].export_wh.any()
    # without the battery, what the grid and the sun give is what the home uses
    no_battery = m["solar_only"].import_wh - m["solar_only"].export_wh
    assert np.allclose(no_battery, home.home - home.solar)
    if not battery:
        assert np.allclose(m["solar_only"].import_wh, m["actual"].import_wh)
        assert np.allclose(m["solar_only"].export_wh, m["actual"].export_wh)


def test_without_flows_the_solar_and_load_are_netted_per_interval():
    home = HomeIntervals(np.array([0, HOUR_MS]), HOUR_MS, np.array([500.0, 100.0]), np.array([200.0, 300.0]),
                         np.zeros(2), np.zeros(2), np.zeros(2), np.zeros(2))
    m = counterfactual_meters(home, ExportRule.NET_BILLING)["solar_only"]
    assert m.import_wh.tolist() == [300.0, 0.0] and m.export_wh.tolist() == [0.0, 200.0]


def test_buy_all_sell_all_meters_the_load_and_the_solar_apart():
    home = home_from_flows(np.random.default_rng(1), 24, True)
    m = counterfactual_meters(home, ExportRule.BUY_ALL_SELL_ALL)
    assert np.allclose(m["solar_only"].import_wh, home.home) and np.allclose(m["solar_only"].export_wh, home.solar)
    net_charge = home.battery_charge - home.battery_discharge
    assert np.allclose(m["actual"].import_wh, np.clip(home.home + net_charge, 0, None))


def test_the_import_price_is_the_first_block_of_the_local_period():
    schedule = MonthHourSchedule([[1] * 16 + [2] * 5 + [1] * 3] * 12, [[1] * 24] * 12)
    tariff = Tariff("t", EnergyRates(schedule, {1: (Tier(0.1, 0, 100), Tier(0.2)), 2: (Tier(0.5),)}))
    t = parse_iso_ms("2025-07-01T15:00-06:00") + np.arange(3) * HOUR_MS  # a Tuesday, 15:00 to 17:00 MDT
    assert import_price(tariff, t, "America/Denver").tolist() == pytest.approx([0.1, 0.5, 0.5])
