"""Backup time left: the duration model by hand, its invariants, and the report from a real store."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from homegrid.config import Config
from homegrid.devices.virtual import VirtualHome
from homegrid.devices.virtual.battery import islanded
from homegrid.devices.virtual.load import load_power
from homegrid.devices.virtual.solar import solar_power, solar_profile
from homegrid.energy.backup import (
    HORIZON_S,
    backup_duration,
    backup_estimate,
    format_duration,
    vendor_figure_s,
)
from homegrid.hub.backup import backup_report, day_profile, profile_series, recent_load_w
from homegrid.readings import ReadingFrame, to_ms

from .conftest import NEW_YORK, steady_frame

H = 3600.0
HOUR_MS = 3_600_000


# the duration model, by hand ---------------------------------------------------------------------------


@pytest.mark.parametrize("step_s", [1.0, 60.0, 300.0, 3600.0])
def test_constant_load_no_solar_is_stored_over_load(step_s):
    assert backup_duration(10_000.0, 1000.0, 0.0, step_s) == pytest.approx(10 * H, rel=1e-12)
    # the energy runs out within a step: the moment it does, not the step's end
    assert backup_duration(1500.0, [1000.0], [0.0], step_s) == pytest.approx(1.5 * H, rel=1e-12)


def test_floor_efficiency_and_rating():
    assert backup_duration(5000.0, 2000.0, 0.0, 60.0, floor_wh=1000.0) == pytest.approx(2 * H)
    # serving 1 Wh takes 1 / 0.9 Wh from storage
    assert backup_duration(9000.0, 1000.0, 0.0, 60.0, efficiency=0.9) == pytest.approx(8.1 * H)
    # an 8 kW load on a 5 kW battery: 3 kW is shed, the battery gives 5 kW
    assert backup_duration(10_000.0, 8000.0, 0.0, 60.0, max_discharge_w=5000.0) == pytest.approx(2 * H)
    # at (or below) its floor the battery carries nothing, sunshine or not
    assert backup_duration(1000.0, 500.0, 5000.0, 60.0, floor_wh=1000.0) == 0.0
    assert backup_duration(0.0, 500.0, 0.0, 60.0) == 0.0


def test_solar_beyond_the_load_recharges_up_to_capacity():
    solar = [0.0, 3000.0, 0.0, 0.0, 0.0, 0.0]  # hour 1: 2 kW beyond the 1 kW load
    # 2000 -> 1000 -> min(3000, 2500) -> 1500 -> 500 -> runs out half-way through hour 4
    assert backup_duration(2000.0, 1000.0, solar, H, capacity_wh=2500.0) == pytest.approx(4.5 * H)
    # no capacity limit: all 2 kWh are kept, the battery runs out at the end of hour 4
    assert backup_duration(2000.0, 1000.0, solar, H) == pytest.approx(5 * H)
    # a 1.5 kW charge limit keeps 1.5 kWh of it
    assert backup_duration(2000.0, 1000.0, solar, H, max_charge_w=1500.0) == pytest.approx(4.5 * H)
    # the surplus stores 0.9 of itself, the deficit takes 1 / 0.9: 2000 -> 888.9 -> 2688.9 -> ...
    e = 2000.0 - 1000.0 / 0.9 + 2000.0 * 0.9
    assert backup_duration(2000.0, 1000.0, solar, H, efficiency=0.9) == pytest.approx(2 * H + e * 0.9 / 1000.0 * H)


def test_a_short_series_repeats_like_a_day_profile():
    rng = np.random.default_rng(1)
    day_load = rng.uniform(200, 3000, 24)
    day_solar = np.clip(rng.normal(0, 3000, 24), 0, None)
    for stored in (3000.0, 20_000.0, 60_000.0):
        short = backup_duration(stored, day_load, day_solar, H, capacity_wh=30_000.0)
        full = backup_duration(stored, np.tile(day_load, 7), np.tile(day_solar, 7), H, capacity_wh=30_000.0)
        assert short == full


def test_capped_at_the_horizon():
    assert backup_duration(13_500.0, 0.0, 0.0, 60.0) == HORIZON_S
    # solar covering the load each day and refilling the battery: carried for good
    load = np.full(24, 500.0)
    solar = np.where((np.arange(24) >= 8) & (np.arange(24) < 16), 3000.0, 0.0)
    assert backup_duration(10_000.0, load, solar, H, capacity_wh=13_500.0) == HORIZON_S
    assert backup_duration(10_000.0, 100.0, 0.0, 60.0, horizon_s=86_400.0) == 86_400.0
    assert format_duration(HORIZON_S) == "more than 7 days"
    assert format_duration(86_400.0, 86_400.0) == "more than 1 day"


def test_bad_inputs_are_refused():
    for kwargs in ({"load_w": [1.0, math.nan]}, {"load_w": -1.0}, {"solar_w": []}, {"step_s": 0.0}):
        args = {"stored_wh": 1000.0, "load_w": 100.0, "solar_w": 0.0, "step_s": 60.0, **kwargs}
        with pytest.raises(ValueError):
            backup_duration(**args)
    with pytest.raises(ValueError):
        backup_duration(1000.0, 100.0, 0.0, 60.0, efficiency=0.0)


def test_format_duration():
    assert format_duration(0.0) == "0:00"
    assert format_duration(5400.0) == "1:30"
    assert format_duration(5459.9) == "1:30"  # whole minutes, never rounded up
    assert format_duration(100_000.0) == "27:46"
    assert format_duration(None) is None


def test_vendor_figure_is_energy_over_current_load():
    assert vendor_figure_s(13_500.0, 1350.0) == pytest.approx(10 * H)
    assert vendor_figure_s(13_500.0, 0.0) is None
    assert vendor_figure_s(None, 1000.0) is None
    assert vendor_figure_s(13_500.0, None) is None


def test_estimate_range_by_hand():
    est = backup_estimate(
        9000.0, H, typical_load_w=1000.0, heavy_load_w=2000.0, light_load_w=500.0, typical_solar_w=0.0
    )
    assert (est.low_s, est.central_s, est.high_s) == pytest.approx((4.5 * H, 9 * H, 18 * H))
    # a recent 3 kW fading out over 3 h: 3000, 2333, 1667 W, then the typical 1000 W
    est = backup_estimate(
        9000.0, H, typical_load_w=1000.0, heavy_load_w=2000.0, light_load_w=500.0, typical_solar_w=0.0,
        recent_load_w=3000.0, blend_s=3 * H,
    )
    assert est.central_s == pytest.approx(5 * H)
    assert est.low_s == pytest.approx(3 * H)  # the recent 3 kW is above the heavy load for 3 h
    assert est.high_s == pytest.approx(18 * H)
    # typical solar helps the central and high figures only
    est = backup_estimate(
        5000.0, H, typical_load_w=1000.0, heavy_load_w=1000.0, light_load_w=1000.0, typical_solar_w=[0.0, 1000.0]
    )
    assert est.low_s == pytest.approx(5 * H)
    assert est.central_s == est.high_s == pytest.approx(9 * H)


# invariants ---------------------------------------------------------------------------------------------

_power = st.floats(min_value=0.0, max_value=10_000.0, allow_nan=False, allow_infinity=False)
_series = st.lists(_power, min_size=1, max_size=48)
_energy = st.floats(min_value=0.0, max_value=50_000.0, allow_nan=False, allow_infinity=False)
_options = st.fixed_dictionaries({
    "floor_wh": st.floats(min_value=0.0, max_value=2000.0),
    "capacity_wh": st.none() | st.floats(min_value=1000.0, max_value=60_000.0),
    "max_discharge_w": st.none() | st.floats(min_value=500.0, max_value=12_000.0),
    "efficiency": st.floats(min_value=0.5, max_value=1.0),
})
_STEP, _HORIZON = 1800.0, 3 * 86_400.0


@settings(deadline=None)
@given(a=_energy, b=_energy, load=_series, solar=_series, options=_options)
def test_more_stored_energy_never_shortens(a, b, load, solar, options):
    lo, hi = sorted((a, b))
    d_lo = backup_duration(lo, load, solar, _STEP, horizon_s=_HORIZON, **options)
    d_hi = backup_duration(hi, load, solar, _STEP, horizon_s=_HORIZON, **options)
    assert 0.0 <= d_lo <= d_hi <= _HORIZON


@settings(deadline=None)
@given(stored=_energy, load=_series, extra=_series, solar=_series, options=_options)
def test_more_load_never_lengthens(stored, load, extra, solar, options):
    n = max(len(load), len(extra))
    base = np.resize(np.array(load), n)
    more = base + np.resize(np.array(extra), n)
    d_base = backup_duration(stored, base, solar, _STEP, horizon_s=_HORIZON, **options)
    d_more = backup_duration(stored, more, solar, _STEP, horizon_s=_HORIZON, **options)
    assert d_more <= d_base
    # and more solar never shortens it
    d_sun = backup_duration(stored, base, np.resize(np.array(solar), n) + 500.0, _STEP, horizon_s=_HORIZON,
                            **options)
    assert d_sun >= backup_duration(stored, base, np.resize(np.array(solar), n), _STEP, horizon_s=_HORIZON,
                                    **options)


@settings(deadline=None)
@given(
    stored=_energy, typical=_series, heavy=_series, light=_series, solar=_series,
    recent=st.none() | _power, options=_options,
)
def test_low_central_high_are_ordered(stored, typical, heavy, light, solar, recent, options):
    est = backup_estimate(
        stored, _STEP, typical_load_w=typical, heavy_load_w=heavy, light_load_w=light, typical_solar_w=solar,
        recent_load_w=recent, horizon_s=_HORIZON, **options,
    )
    assert 0.0 <= est.low_s <= est.central_s <= est.high_s <= _HORIZON


# the report from a store --------------------------------------------------------------------------------


def _ms(*args) -> int:
    return to_ms(datetime(*args, tzinfo=UTC))


def test_report_constant_load_by_hand(recorder, store):
    start = _ms(2025, 6, 1, 4)
    n = 3 * 1440 + 1
    recorder.ingest_bulk([steady_frame(start, n, home_power=1000, grid_power=1000, solar_power=0, ev_power=0)])
    now = start + (n - 1) * 60_000
    live = {"battery_soc": 50.0, "battery_capacity": 10_000.0, "home_power": 1000.0, "battery_reserve": 20.0}
    rep = backup_report(store, NEW_YORK, live, now)
    json.dumps(rep)
    assert rep["reason"] is None
    # the app's 50 % is the gateway's 52.5 % (5 + 50 x 0.95): 5250 Wh stored in the pack
    assert rep["stored_wh"] == 5250.0
    # usable: the app's 50 % of the 95 % above the gateway's hidden 5 %; the 20 % backup reserve is no floor
    assert rep["usable_wh"] == 4750.0
    assert rep["estimate"] == {"low_s": 4.75 * H, "central_s": 4.75 * H, "high_s": 4.75 * H}
    assert rep["display"] == {"central": "4:45", "range": "4:45–4:45"}
    assert rep["vendor"]["seconds"] == 5.25 * H  # the whole stored energy over the load now
    assert rep["vendor"]["display"] == "5:15"
    assert "energy remaining / current load" in rep["vendor"]["method"]
    assert rep["assumptions"]["recent_load_w"] == pytest.approx(1000.0)
    assert rep["assumptions"]["history_hours"] == 3 * 24  # every complete hour
    assert rep["time"] == "2025-06-04T00:00:00-04:00"
    # a usable-only scale (hidden_percent=0) counts the whole 5 kWh
    assert backup_report(store, NEW_YORK, live, now, hidden_percent=0.0)["estimate"]["central_s"] == 5 * H


def test_report_leaves_the_car_out_unless_told(recorder, store):
    start = _ms(2025, 6, 1, 4)
    n = 3 * 1440 + 1
    recorder.ingest_bulk([steady_frame(start, n, home_power=3000, ev_power=2000, grid_power=3000)])
    now = start + (n - 1) * 60_000
    live = {"battery_soc": 55.0, "battery_capacity": 10_000.0, "home_power": 3000.0, "ev_power": 2000.0}
    without = backup_report(store, NEW_YORK, live, now)
    # the app's 55 % of the 9.5 kWh above the hidden 5 %: 5.225 kWh usable at 1 kW (5.725 kWh in the pack)
    assert without["estimate"]["central_s"] == pytest.approx(5.225 * H)
    assert without["assumptions"]["ev_in_load"] is False
    with_car = backup_report(store, NEW_YORK, live, now, include_ev=True)
    assert with_car["estimate"]["central_s"] == pytest.approx(5.225 / 3 * H)
    assert without["vendor"]["seconds"] == with_car["vendor"]["seconds"] == pytest.approx(5725 / 3000 * H, abs=1)
    assert recent_load_w(store, now) == pytest.approx(1000.0)
    assert recent_load_w(store, now, include_ev=True) == pytest.approx(3000.0)


def test_report_without_battery_data_gives_a_reason(store):
    now = _ms(2025, 6, 1, 12)
    rep = backup_report(store, NEW_YORK, {"home_power": 800.0}, now)
    json.dumps(rep)
    assert rep["estimate"] is None and rep["display"] is None and rep["stored_wh"] is None
    assert "battery_soc" in rep["reason"]
    rep = backup_report(store, NEW_YORK, {"battery_soc": 80.0, "home_power": 800.0}, now)
    assert rep["estimate"] is None and "capacity" in rep["reason"]
    # the configured capacity stands in; with no history the load now is held, without solar
    rep = backup_report(store, NEW_YORK, {"battery_soc": 45.0, "home_power": 800.0}, now, capacity_wh=10_000.0)
    assert rep["assumptions"]["capacity_source"] == "config"
    assert rep["estimate"]["central_s"] == pytest.approx(45 * 95 / 800 * H, abs=1)  # the app's 45 % of 9.5 kWh
    assert backup_report(store, NEW_YORK, {"battery_soc": 45.0}, now, capacity_wh=10_000.0)["reason"]


def _evening_peak_frame(first: datetime, last: datetime) -> ReadingFrame:
    """3 kW from 18:00 to 19:00 local time every day, 500 W otherwise, one reading a minute."""
    t = np.arange(to_ms(first), to_ms(last) + 1, 60_000, dtype=np.int64)
    local_hour = np.array([datetime.fromtimestamp(x / 1000, UTC).astimezone(NEW_YORK).hour for x in t.tolist()])
    home = np.where(local_hour == 18, 3000.0, 500.0)
    return ReadingFrame(t, {"home_power": home, "grid_power": home})


def test_profile_follows_local_time_across_daylight_saving(recorder, store):
    first = datetime(2025, 3, 2, tzinfo=NEW_YORK)  # New York moves to EDT on 2025-03-09
    now = datetime(2025, 3, 16, tzinfo=NEW_YORK)
    recorder.ingest_bulk([_evening_peak_frame(first, now)])
    profile = day_profile(store, NEW_YORK, to_ms(now))
    assert profile is not None
    expected = np.where(np.arange(24) == 18, 3000.0, 500.0)
    # the peak did not move to 17:00 or 19:00 on either side of the change (the trapezoidal rule ramps each
    # step over one minute: 25 W of an hour)
    np.testing.assert_allclose(profile.load_mean, expected, atol=25.0)
    np.testing.assert_allclose(profile.load_heavy, expected, atol=25.0)
    assert profile.hours.sum() == 14 * 24 - 1  # the hour the clocks skipped does not exist

    # laid over the days ahead, the peak stays at 18:00 local on both sides of the change
    before = datetime(2025, 3, 8, 12, tzinfo=NEW_YORK)
    series = profile_series(profile, NEW_YORK, to_ms(before), step_s=300.0, horizon_s=3 * 86_400.0)
    for day in (8, 9, 10):
        at = to_ms(datetime(2025, 3, day, 18, 30, tzinfo=NEW_YORK))
        assert series["load_mean"][(at - to_ms(before)) // 300_000] == pytest.approx(3000.0, abs=25.0)
    after_change = to_ms(datetime(2025, 3, 9, 17, 30, tzinfo=NEW_YORK))  # 18:30 EST would be this instant
    assert series["load_mean"][(after_change - to_ms(before)) // 300_000] == pytest.approx(500.0, abs=25.0)


def test_a_day_with_a_gap_still_has_a_profile(recorder, store):
    start = _ms(2025, 6, 1, 4)
    # two days of readings with nothing between 10:00 and 13:00 local on both
    frame = steady_frame(start, 2 * 1440 + 1, home_power=800, grid_power=800)
    local_ms = (frame.time_ms - 4 * HOUR_MS) % 86_400_000
    keep = ~((local_ms > 10 * HOUR_MS) & (local_ms < 13 * HOUR_MS))
    recorder.ingest_bulk([ReadingFrame(frame.time_ms[keep], {k: v[keep] for k, v in frame.columns.items()})])
    profile = day_profile(store, NEW_YORK, start + 2 * 86_400_000)
    assert profile is not None
    assert (profile.hours[10:13] == 0).all()
    np.testing.assert_allclose(profile.load_mean, 800.0)


# the virtual home ---------------------------------------------------------------------------------------


def _outage_replay(config: Config, now: datetime, stored_wh: float) -> float:
    """How long the virtual home's own battery would carry its home through an outage starting now [s]."""
    v = config.virtual
    t = to_ms(now) + np.arange(7 * 1440, dtype=np.int64) * 60_000
    load = load_power(t, config.site.timezone, v.load_kwh_per_year).tolist()  # the car is off in an outage
    profile = solar_profile(v.weather, float(config.site.latitude), float(config.site.longitude),
                            float(v.solar_kw), float(v.tilt), float(v.azimuth))
    sun = solar_power(t, profile).tolist()
    cap, max_w, eta = v.battery_kwh * 1000.0, v.battery_kw * 1000.0, math.sqrt(v.battery_round_trip)
    e = stored_wh
    for i in range(len(t)):
        _, _, battery_w, after, dark = islanded(load[i], sun[i], e, False, 60.0, cap, max_w, eta, 0.0)
        if dark:
            return i * 60.0 + (e * eta * 3600.0 / battery_w if battery_w > 0 else 0.0)
        e = after
    return HORIZON_S


def test_report_on_the_virtual_home_history(recorder, store):
    config = Config()
    v = config.virtual
    home = VirtualHome(config, start=datetime(2025, 3, 1, tzinfo=NEW_YORK))
    now = datetime(2025, 3, 16, tzinfo=NEW_YORK)
    inside = 0
    for k in range(10):  # every 5 hours over two days
        now = now + timedelta(hours=5 * (k > 0))
        frame = home.simulate(end=now, step_s=60.0)
        recorder.ingest_bulk([frame])
        live = {n: float(c[-1]) for n, c in frame.columns.items() if not np.isnan(c[-1])}
        rep = backup_report(
            store, NEW_YORK, live, to_ms(now),
            hidden_percent=0.0,  # the virtual battery's state of charge counts usable energy only
            efficiency=math.sqrt(v.battery_round_trip), max_discharge_w=v.battery_kw * 1000.0,
        )
        json.dumps(rep)
        assert rep["reason"] is None
        stored = live["battery_soc"] / 100.0 * live["battery_capacity"]
        assert rep["stored_wh"] == pytest.approx(stored, abs=0.1)
        assert rep["assumptions"]["capacity_source"] == "live"
        assert rep["vendor"]["seconds"] == pytest.approx(stored / live["home_power"] * H, abs=1.0)
        est = rep["estimate"]
        assert 0 < est["low_s"] <= est["central_s"] <= est["high_s"] <= HORIZON_S
        assert rep["display"]["range"] == f"{format_duration(est['low_s'])}–{format_duration(est['high_s'])}"
        truth = _outage_replay(config, now, stored)
        inside += est["low_s"] - 300 <= truth <= est["high_s"] + 300
    # the range is a 10th-90th percentile spread of the load, not a bound: most outages fall inside it
    assert inside >= 7
