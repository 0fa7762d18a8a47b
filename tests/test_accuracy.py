"""Reports for a simulated week agree with an independent integration of the same readings (0.1 %)."""

from datetime import date, timedelta

import numpy as np
import pytest
from scipy.integrate import trapezoid

from homegrid.config import Config
from homegrid.devices.virtual import VirtualHome
from homegrid.glossary import COUNTERS
from homegrid.hub.queries import Queries
from homegrid.hub.recorder import Recorder
from homegrid.readings import ReadingFrame, from_ms
from homegrid.store import SQLiteStore
from homegrid.timezones import local_day_bounds

from .conftest import NEW_YORK

FIRST, LAST = date(2025, 7, 7), date(2025, 7, 13)
PARTS = {  # report key -> (power column, sign part, counter column)
    "solar": ("solar_power", 1, "solar_energy_exported"),
    "home": ("home_power", 1, "home_energy_imported"),
    "ev": ("ev_power", 1, None),
    "grid_import": ("grid_power", 1, "grid_energy_imported"),
    "grid_export": ("grid_power", -1, "grid_energy_exported"),
    "battery_charge": ("battery_power", -1, "battery_energy_imported"),
    "battery_discharge": ("battery_power", 1, "battery_energy_exported"),
}


@pytest.fixture(scope="module")
def week() -> ReadingFrame:
    a, _ = local_day_bounds(FIRST, NEW_YORK)
    _, b = local_day_bounds(LAST, NEW_YORK)
    home = VirtualHome(Config(), start=from_ms(a) - timedelta(hours=1))
    return home.simulate(end=from_ms(b) + timedelta(hours=1), step_s=60.0)


def _report(tmp_path, frame: ReadingFrame) -> dict:
    store = SQLiteStore(tmp_path / "h.db", synchronous="OFF")
    Recorder(store, NEW_YORK).ingest_bulk([frame])
    rep = Queries(store, NEW_YORK).report(FIRST, LAST)
    store.close()
    return rep


def _window(frame: ReadingFrame):
    a, _ = local_day_bounds(FIRST, NEW_YORK)
    _, b = local_day_bounds(LAST, NEW_YORK)
    inside = (frame.time_ms >= a) & (frame.time_ms <= b)
    assert frame.time_ms[inside][0] == a and frame.time_ms[inside][-1] == b  # samples on both edges
    return inside


def test_counter_totals_match_the_device_counters(tmp_path, week):
    rep = _report(tmp_path, week)
    inside = _window(week)
    for key, (_, _, counter) in PARTS.items():
        if counter is None:
            continue
        c = week.columns[counter][inside]
        expected = c[-1] - c[0]
        assert rep["energy_wh"][key] == pytest.approx(expected, rel=1e-3, abs=1.0), key


def test_power_only_totals_match_trapezoidal_integration(tmp_path, week):
    power_only = ReadingFrame(week.time_ms, {k: v for k, v in week.columns.items() if k not in COUNTERS})
    rep = _report(tmp_path, power_only)
    inside = _window(week)
    t_h = (week.time_ms[inside] - week.time_ms[inside][0]) / 3.6e6
    for key, (power, part, _) in PARTS.items():
        p = week.columns[power][inside]
        expected = trapezoid(np.clip(part * p, 0, None), t_h)
        assert rep["energy_wh"][key] == pytest.approx(expected, rel=1e-3, abs=1.0), key
    # and the balance of a simulated home holds, flows included
    e, f = rep["energy_wh"], rep["flows_wh"]
    assert abs(e["unaccounted"]) <= 1e-3 * e["home"]
    assert f["solar_to_home"] + f["battery_to_home"] + f["grid_to_home"] == pytest.approx(e["home"], rel=1e-3)
    assert rep["ev_sources_wh"]["solar"] + rep["ev_sources_wh"]["battery"] + rep["ev_sources_wh"]["grid"] == (
        pytest.approx(e["ev"], rel=1e-3)
    )
