"""The virtual home: balance, counters, battery, car, outages, calendar, determinism, speed."""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import math
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from homegrid.config import Config, VirtualHomeConfig
from homegrid.devices import Device
from homegrid.devices.virtual import CarState, VirtualHome
from homegrid.devices.virtual import ev as ev_model
from homegrid.devices.virtual.battery import BatterySpec, islanded, self_powered
from homegrid.devices.virtual.load import load_power, load_table
from homegrid.devices.virtual.outages import MAX_OUTAGE_S, outage_overlap, outage_schedule, outages_in_year
from homegrid.devices.virtual.solar import solar_profile
from homegrid.glossary import ALL_NAMES, COUNTERS, ENERGY_CATEGORIES, GridStatus
from homegrid.readings import to_ms

NY = ZoneInfo("America/New_York")
Y2025 = datetime(2025, 1, 1, tzinfo=UTC)
Y2026 = datetime(2026, 1, 1, tzinfo=UTC)
COUNTER_SOURCE = {c.counter: (c.power, c.part) for c in ENERGY_CATEGORIES if c.counter}

#: every quantity the virtual home gives: all but the two only a Powerwall gateway reads (its own scale of the
#: level, the pack's rating)
VIRTUAL_NAMES = tuple(n for n in ALL_NAMES if n not in {"battery_soc_gateway", "battery_capacity_rated"})


def config(**virtual) -> Config:
    return Config(virtual=VirtualHomeConfig(**virtual))


def balance_error(c: dict[str, np.ndarray]) -> np.ndarray:
    return np.abs(c["home_power"] - (c["solar_power"] + c["battery_power"] + c["grid_power"]))


@pytest.fixture(scope="module")
def year():
    """One default year at 60 s (its speed is measured by bench/bench_simulate.py, not here)."""
    solar_profile.cache_clear()
    home = VirtualHome(config(), start=Y2025)
    return home, home.simulate(Y2026, step_s=60)


# ----------------------------------------------------------------------------- a year


def test_year_is_complete(year):
    home, frame = year
    assert len(frame) == 525_600
    assert set(frame.columns) == set(VIRTUAL_NAMES)
    assert np.all(np.diff(frame.time_ms) == 60_000)
    for name, col in frame.columns.items():
        assert np.all(np.isfinite(col)), name
    assert home.now == Y2026


def test_balance_and_signs_per_row(year):
    _, frame = year
    c = frame.columns
    assert balance_error(c).max() < 1e-6
    for name in ("solar_power", "home_power", "ev_power"):
        assert c[name].min() >= 0.0, name
    assert np.all(c["ev_power"] <= c["home_power"] + 1e-9)
    assert set(np.unique(c["grid_status"]).tolist()) == {1.0, 2.0}
    assert np.abs(c["battery_power"]).max() <= 5000.0 + 1e-9


def test_counters_are_cumulative_step_energies(year):
    _, frame = year
    c = frame.columns
    dt_h = np.diff(frame.time_ms) / 3.6e6
    for name in COUNTERS:
        power, part = COUNTER_SOURCE[name]
        step = np.maximum(part * c[power][:-1], 0.0) * dt_h
        assert np.allclose(np.diff(c[name]), step, rtol=0, atol=1e-6), name
        assert c[name][0] > 0  # plausible lifetime values, not 0
    # The frame's last step is counted in the home's state, which poll reports.


def test_soc_bounds_and_reserve_while_connected(year):
    _, frame = year
    c = frame.columns
    soc, bat = c["battery_soc"], c["battery_power"]
    assert soc.min() >= 0.0 and soc.max() <= 100.0
    assert soc.max() > 99.0 and soc.min() < 30.0  # it is used
    connected = c["grid_status"] == float(GridStatus.CONNECTED)
    # While connected it never discharges at or below the reserve...
    assert not np.any(connected & (soc <= 20.0 + 1e-9) & (bat > 1e-9))
    # ...and a connected step never takes it below the reserve.
    i = np.flatnonzero(connected[:-1] & (soc[:-1] >= 20.0))
    assert soc[i + 1].min() >= 20.0 - 1e-9


def test_yearly_solar_is_plausible_for_greensboro(year):
    _, frame = year
    mwh = frame.columns["solar_power"].sum() / 60 / 1e6
    assert 9.5 < mwh < 12.0


def test_yearly_load_is_configured_load_plus_car(year):
    _, frame = year
    c = frame.columns
    house_kwh = (c["home_power"] - c["ev_power"]).sum() / 60 / 1000
    car_kwh = c["ev_power"].sum() / 60 / 1000
    assert house_kwh == pytest.approx(10_000, rel=0.02)
    # 261 commutes of ~8 kWh plus ~17 day trips of ~40 kWh, 90 % charging efficiency.
    assert 2_500 < car_kwh < 3_800
    assert c["home_power"].sum() / 60 / 1000 == pytest.approx(house_kwh + car_kwh)


def test_outages_are_islanded_and_battery_carries_the_home(year):
    home, frame = year
    c, t = frame.columns, frame.time_ms
    outages = home.outages(Y2025, Y2026)
    assert outages, "the default seed should give 2025 some outages"
    islanded_rows = c["grid_status"] == float(GridStatus.ISLANDED)
    covered = np.zeros(len(t), dtype=bool)
    for a, b in outages:
        a_ms, b_ms = to_ms(a), to_ms(b)
        covered |= (t + 60_000 > a_ms) & (t < b_ms)
        inside = (t >= a_ms) & (t + 60_000 <= b_ms)
        assert np.all(c["grid_power"][inside] == 0.0)
        assert np.all(c["ev_power"][inside] == 0.0)
        lit = inside & (c["home_power"] > 0)
        # Every watt the home gets comes from the sun or the battery.
        assert np.allclose(c["home_power"][lit], c["solar_power"][lit] + c["battery_power"][lit])
    assert np.array_equal(islanded_rows, covered)
    # At night the battery alone carries it.
    night = islanded_rows & (c["solar_power"] == 0) & (c["grid_power"] == 0)
    assert night.any()
    assert np.allclose(c["battery_power"][night], c["home_power"][night])


def test_long_outage_drains_below_reserve_then_goes_dark():
    # A small battery and many outages: some run it empty.
    cfg = config(battery_kwh=2.0, battery_kw=3.0, outages_per_year=400.0, seed=7)
    home = VirtualHome(cfg, start=Y2025)
    frame = home.simulate(datetime(2025, 3, 1, tzinfo=UTC), step_s=60)
    c = frame.columns
    assert balance_error(c).max() < 1e-6
    isl = c["grid_status"] == float(GridStatus.ISLANDED)
    dark = isl & (c["home_power"] == 0)
    assert dark.sum() > 10
    assert np.all(c["ev_power"][dark] == 0)
    assert np.all(c["battery_power"][dark] <= 0)  # only solar charging it
    assert c["battery_soc"][isl].min() < 1.0  # carried down to empty
    assert c["battery_soc"].min() >= 0.0
    connected = ~isl
    assert not np.any(connected & (c["battery_soc"] <= 20.0) & (c["battery_power"] > 1e-9))


def test_sub_minute_blip_is_visible_at_60_s():
    busy = config(outages_per_year=300.0)
    calm = config(outages_per_year=0.0)
    probe = VirtualHome(busy, start=Y2025)
    outages = probe.outages(Y2025, datetime(2025, 3, 1, tzinfo=UTC))
    # A blip with no other outage in the two hours before it.
    pick = None
    for k, (a, b) in enumerate(outages):
        clear = k == 0 or outages[k - 1][1] < a - timedelta(hours=2)
        if (b - a).total_seconds() < 50 and clear:
            pick = (a, b)
            break
    assert pick is not None
    a, b = pick
    start = (a - timedelta(hours=2)).replace(second=0, microsecond=0)
    end = b + timedelta(minutes=10)
    f_busy = VirtualHome(busy, start=start).simulate(end, 60)
    f_calm = VirtualHome(calm, start=start).simulate(end, 60)
    t = f_busy.time_ms
    edges = np.append(t, to_ms(end))
    frac = outage_overlap(edges, np.array([to_ms(a)]), np.array([to_ms(b)]))
    hit = np.flatnonzero(frac > 0)
    assert 1 <= len(hit) <= 2  # the blip straddles at most one boundary
    status = f_busy.columns["grid_status"]
    assert np.all(status[hit] == float(GridStatus.ISLANDED))
    assert np.sum(status == float(GridStatus.ISLANDED)) == len(hit)
    i = hit[0]
    # Until the blip both homes are the same home.
    for name in VIRTUAL_NAMES:
        assert np.array_equal(f_busy.columns[name][:i], f_calm.columns[name][:i]), name
    # In its row the grid only ran for the connected part of the step.
    g_busy, g_calm = f_busy.columns["grid_power"][i], f_calm.columns["grid_power"][i]
    assert g_busy == pytest.approx((1.0 - frac[i]) * g_calm, abs=1e-6)
    assert balance_error(f_busy.columns).max() < 1e-6


# ----------------------------------------------------------------------------- the car


def test_charge_rate_tapers():
    full = 11_500.0
    assert ev_model.charge_rate(50.0, full) == full
    assert ev_model.charge_rate(80.0, full) == full
    assert ev_model.charge_rate(90.0, full) == pytest.approx(full * 0.56)
    assert ev_model.charge_rate(100.0, full) == pytest.approx(full * 0.12)
    rates = ev_model.charge_rate(np.linspace(0, 100, 101), full)
    assert np.all(np.diff(rates) <= 0)


def test_car_charges_only_at_home_and_tapers_near_full():
    cfg = config(ev_charge_limit_percent=100.0, outages_per_year=0.0)
    start = datetime(2025, 3, 3, 21, 0, tzinfo=UTC)  # Monday 16:00 local, the car is out
    home = VirtualHome(cfg, start=start)
    assert home.car == CarState(soc=70.0, plugged=False, at_home=False, charging=False)
    with pytest.raises(dataclasses.FrozenInstanceError):
        home.car.soc = 1.0  # type: ignore[misc]
    seen = []
    for _ in range(2 * 24 * 12):  # two days in 5-minute pieces
        car = home.car
        row = home.simulate(home.now + timedelta(minutes=5), step_s=60)
        seen.append((car, row.columns["ev_power"][0], row.time_ms[0]))
    soc = np.array([s[0].soc for s in seen])
    power = np.array([s[1] for s in seen])
    at_home = np.array([s[0].at_home for s in seen])
    charging = np.array([s[0].charging for s in seen])
    assert np.all(power[~at_home] == 0)
    assert np.array_equal(power > 0, charging)
    assert np.all([s[0].plugged == s[0].at_home for s in seen])
    assert (~at_home).any() and at_home.any()
    # Full power below 80 %, tapering above, to 12 % at the top.
    low = charging & (soc < 79)
    high = charging & (soc > 95)
    assert low.any() and high.any()
    assert np.allclose(power[low], 11_500.0)
    assert np.all(power[high] < 0.35 * 11_500.0)
    mid = charging & (soc > 81) & (soc < 99)
    assert np.allclose(power[mid], ev_model.charge_rate(soc[mid], 11_500.0), rtol=1e-9)
    assert soc.max() == pytest.approx(100.0, abs=1e-3)
    # The commute took energy away: the car came home lower than it left.
    left = np.flatnonzero(at_home[:-1] & ~at_home[1:])
    back = np.flatnonzero(~at_home[:-1] & at_home[1:])
    assert len(left) >= 1 and len(back) >= 1
    drop = soc[back[-1]] - soc[back[-1] + 1]
    assert drop < 0 or soc[back[-1] + 1] < soc[left[-1]]


def test_car_is_away_on_weekday_daytime_per_schedule(year):
    _, frame = year
    c, t = frame.columns, frame.time_ms
    cfg = config()
    dep, arr, kwh = ev_model.trip_schedule(cfg.virtual.seed, "America/New_York", 50.0, 0.16, to_ms(Y2025), to_ms(Y2026))
    codes, _ = ev_model.step_trip_codes(np.append(t, to_ms(Y2026)), dep, arr, kwh)
    assert np.all(c["ev_power"][codes != ev_model.HOME] == 0)
    # About 261 commutes and a day trip one weekend in three.
    assert 261 + 8 < len(dep) < 261 + 30
    local = [datetime.fromtimestamp(d / 1000, NY) for d in dep.tolist()]
    commute = [d for d, e in zip(local, kwh.tolist(), strict=True) if d.weekday() < 5]
    assert len(commute) == 261
    assert all(7 <= d.hour <= 8 for d in commute)
    back = [datetime.fromtimestamp(a / 1000, NY) for a in arr.tolist()]
    assert all(16 <= b.hour <= 20 for b in back)


# ----------------------------------------------------------------------------- outages


def test_outage_schedule_is_poisson_heavy_tailed_and_per_year():
    years = range(2000, 2300)
    dur = []
    counts = []
    for y in years:
        s, e = outages_in_year(2017, y, 12.0)
        counts.append(len(s))
        dur.extend(((e - s) / 1000).tolist())
    dur_a = np.array(dur)
    assert np.mean(counts) == pytest.approx(12.0, rel=0.05)
    assert 2 < np.var(counts) < 25  # Poisson: variance near the mean
    assert np.mean(dur_a < 60) == pytest.approx(0.40, abs=0.04)
    assert dur_a.min() >= 0.5 and dur_a.max() <= MAX_OUTAGE_S
    assert np.mean(dur_a > 4 * 3600) > 0.02
    assert np.sum(dur_a > 11 * 3600) >= 3
    # A window sees the same outages wherever it starts.
    s1, e1 = outage_schedule(
        2017, 12.0, to_ms(datetime(2030, 6, 1, tzinfo=UTC)), to_ms(datetime(2031, 6, 1, tzinfo=UTC))
    )
    s2, e2 = outage_schedule(
        2017, 12.0, to_ms(datetime(2028, 1, 1, tzinfo=UTC)), to_ms(datetime(2032, 1, 1, tzinfo=UTC))
    )
    keep = (s2 < s1.max() + 1) & (e2 > s1.min() - 1)
    assert np.array_equal(s1, s2[keep]) and np.array_equal(e1, e2[keep])
    # Another seed, another schedule.
    s3, _ = outage_schedule(
        2018, 12.0, to_ms(datetime(2030, 6, 1, tzinfo=UTC)), to_ms(datetime(2031, 6, 1, tzinfo=UTC))
    )
    assert not np.array_equal(s1, s3)
    assert len(outage_schedule(2017, 0.0, 0, to_ms(Y2026))[0]) == 0


def test_outages_method_lists_overlapping_intervals():
    home = VirtualHome(config(outages_per_year=100.0), start=Y2025)
    a, b = datetime(2025, 2, 1, tzinfo=UTC), datetime(2025, 3, 1, tzinfo=UTC)
    out = home.outages(a, b)
    assert len(out) > 2
    assert all(s < e and e > a and s < b for s, e in out)
    assert all(x[1] <= y[0] for x, y in itertools.pairwise(out))
    assert all(s.tzinfo is not None for s, _ in out)


# ----------------------------------------------------------------------------- calendar


@pytest.mark.parametrize(("day", "hours"), [((2025, 3, 9), 23), ((2025, 11, 2), 25)])
def test_dst_day_has_every_local_hour_once(day, hours):
    start = datetime(*day, tzinfo=NY)
    end = start.replace(day=start.day + 1)
    home = VirtualHome(config(outages_per_year=0.0), start=start)
    frame = home.simulate(end, step_s=60)
    t = frame.time_ms
    assert len(frame) == hours * 60
    assert np.all(np.diff(t) == 60_000)
    assert t[0] == to_ms(start) and t[-1] + 60_000 == to_ms(end)
    local = [datetime.fromtimestamp(x / 1000, NY) for x in t[::60].tolist()]
    stamps = [(d.hour, d.utcoffset()) for d in local]
    assert len(set(stamps)) == hours
    house = frame.columns["home_power"] - frame.columns["ev_power"]
    assert np.all(house > 0)
    if hours == 25:
        # The load follows the wall clock: both 01:00-02:00 hours read the same profile.
        first = house[60:120]
        second = house[120:180]
        assert [d.hour for d in local[1:3]] == [1, 1]
        assert np.allclose(first, second)
    else:
        assert 2 not in {d.hour for d in local}
    # No jump at the transition bigger than the profile's own half-hour steps.
    assert np.abs(np.diff(house)).max() < 3_000


def test_leap_day_and_non_leap_years_read_the_same_calendar():
    tz = "America/New_York"
    t24 = np.array([to_ms(datetime(2024, 3, 1, 12, 0, tzinfo=NY))])
    t25 = np.array([to_ms(datetime(2025, 3, 1, 12, 0, tzinfo=NY))])
    assert load_power(t24, tz, 10_000) == pytest.approx(load_power(t25, tz, 10_000))
    leap = np.array([to_ms(datetime(2024, 2, 29, 12, 0, tzinfo=NY))])
    assert load_power(leap, tz, 10_000)[0] > 0
    home = VirtualHome(config(), start=datetime(2024, 2, 29, tzinfo=NY))
    frame = home.simulate(datetime(2024, 3, 1, tzinfo=NY), 60)
    assert len(frame) == 1440 and np.all(np.isfinite(frame.columns["home_power"]))


def test_load_table_is_filled_real_data():
    table = load_table()
    assert table.shape == (366, 48)
    assert not np.isnan(table).any()
    assert table.min() > 0
    # A measured profile, not a flat or random one: nights are lower than evenings.
    night = table[:, 6:10].mean()  # 03:00-05:00 local
    evening = table[:, 38:42].mean()  # 19:00-21:00
    assert evening > 1.5 * night


def test_solar_follows_the_sun():
    home = VirtualHome(config(outages_per_year=0.0), start=datetime(2025, 6, 1, tzinfo=NY))
    june = home.simulate(datetime(2025, 7, 1, tzinfo=NY), 60).columns["solar_power"].reshape(30, 1440)
    minute = np.arange(1440)
    dark = (minute < 5 * 60 + 50) | (minute > 20 * 60 + 50)  # sunrise ~06:00, sunset ~20:40 EDT
    assert np.all(june[:, dark] == 0)
    assert np.all(june[:, 12 * 60 : 15 * 60].max(axis=1) > 0)
    assert june.max() > 5_000
    winter = VirtualHome(config(outages_per_year=0.0), start=datetime(2025, 12, 1, tzinfo=NY))
    dec = winter.simulate(datetime(2025, 12, 31, tzinfo=NY), 60).columns["solar_power"]
    assert 0.3 * june.sum() < dec.sum() < 0.8 * june.sum()


# ----------------------------------------------------------------------------- determinism, poll


def test_same_config_same_history():
    a = VirtualHome(config(outages_per_year=50.0), start=Y2025).simulate(datetime(2025, 2, 1, tzinfo=UTC), 60)
    b = VirtualHome(config(outages_per_year=50.0), start=Y2025).simulate(datetime(2025, 2, 1, tzinfo=UTC), 60)
    assert np.array_equal(a.time_ms, b.time_ms)
    for name in VIRTUAL_NAMES:
        assert np.array_equal(a.columns[name], b.columns[name]), name
    c = VirtualHome(config(outages_per_year=50.0, seed=1), start=Y2025).simulate(datetime(2025, 2, 1, tzinfo=UTC), 60)
    assert not np.array_equal(a.columns["grid_status"], c.columns["grid_status"])
    # The weather and the household do not depend on where the simulation started.
    late = VirtualHome(config(outages_per_year=50.0), start=datetime(2025, 1, 20, tzinfo=UTC))
    d = late.simulate(datetime(2025, 2, 1, tzinfo=UTC), 60)
    tail = a.between(int(d.time_ms[0]), int(d.time_ms[-1]) + 1)
    assert np.array_equal(tail.columns["solar_power"], d.columns["solar_power"])
    assert np.array_equal(tail.columns["grid_status"], d.columns["grid_status"])


def test_simulate_in_pieces_equals_one_go():
    start, end = Y2025, datetime(2025, 1, 5, tzinfo=UTC)
    whole = VirtualHome(config(outages_per_year=80.0), start=start)
    w = whole.simulate(end, 60)
    parts = VirtualHome(config(outages_per_year=80.0), start=start)
    p1 = parts.simulate(datetime(2025, 1, 3, 7, 31, tzinfo=UTC), 60)
    p2 = parts.simulate(end, 60)
    assert parts.now == whole.now == end
    assert np.array_equal(np.concatenate([p1.time_ms, p2.time_ms]), w.time_ms)
    for name in VIRTUAL_NAMES:
        joined = np.concatenate([p1.columns[name], p2.columns[name]])
        assert np.allclose(joined, w.columns[name], rtol=0, atol=1e-6), name
    # A split off the step grid only moves the sample times: the totals barely change.
    odd = VirtualHome(config(outages_per_year=80.0), start=start)
    q1 = odd.simulate(datetime(2025, 1, 3, 7, 31, 17, tzinfo=UTC), 60)
    q2 = odd.simulate(end, 60)
    assert q1.time_ms[-1] < to_ms(datetime(2025, 1, 3, 7, 31, 17, tzinfo=UTC)) == q2.time_ms[0]
    for name in COUNTERS:
        gained = q2.columns[name][-1] - w.columns[name][0]
        assert gained == pytest.approx(w.columns[name][-1] - w.columns[name][0], rel=1e-3, abs=1.0)


def test_poll_after_simulate_is_seamless():
    t = [datetime(2025, 6, 2, 20, 0, tzinfo=UTC)]
    home = VirtualHome(config(), clock=lambda: t[0], start=t[0])
    assert isinstance(home, Device)
    frame = home.simulate(t[0] + timedelta(hours=2), step_s=60)
    t[0] = home.now
    r0 = asyncio.run(home.poll())
    assert r0.time == t[0]
    assert set(r0.values) == set(VIRTUAL_NAMES)
    dt_h = (to_ms(t[0]) - frame.time_ms[-1]) / 3.6e6
    for name in COUNTERS:
        power, part = COUNTER_SOURCE[name]
        expected = frame.columns[name][-1] + max(part * frame.columns[power][-1], 0.0) * dt_h
        assert r0.values[name] == pytest.approx(expected, abs=1e-6), name
    t[0] += timedelta(seconds=30)
    r1 = asyncio.run(home.poll())
    assert r1.time == t[0]
    for name in COUNTERS:
        step = r1.values[name] - r0.values[name]
        assert 0.0 <= step <= 20_000 * 30 / 3600, name
    assert (
        abs(r1.values["home_power"] - (r1.values["solar_power"] + r1.values["battery_power"] + r1.values["grid_power"]))
        < 1e-6
    )
    # A clock that goes backwards does not rewind the simulation.
    t[0] -= timedelta(minutes=5)
    r2 = asyncio.run(home.poll())
    assert r2.time == r1.time and r2.values == r1.values
    # And simulate continues from where poll left off.
    nxt = home.simulate(r1.time + timedelta(minutes=2), 60)
    assert nxt.time_ms[0] == to_ms(r1.time)
    assert nxt.columns["grid_energy_imported"][0] == r1.values["grid_energy_imported"]


def test_poll_steps_are_5_s():
    start = datetime(2025, 7, 1, 17, 0, tzinfo=UTC)
    t = [start + timedelta(seconds=60)]
    polled = VirtualHome(config(), clock=lambda: t[0], start=start)
    r = asyncio.run(polled.poll())
    stepped = VirtualHome(config(), start=start)
    stepped.simulate(t[0], step_s=5)
    stepped._clock = lambda: t[0]
    s = asyncio.run(stepped.poll())
    assert r.values == s.values


def test_islanded_poll_reading():
    home = VirtualHome(config(outages_per_year=200.0), start=Y2025)
    a, b = next((a, b) for a, b in home.outages(Y2025, Y2026) if (b - a) > timedelta(minutes=10))
    t = [a + timedelta(minutes=5)]
    home._clock = lambda: t[0]
    r = asyncio.run(home.poll())
    assert r.values["grid_status"] == float(GridStatus.ISLANDED)
    assert r.values["grid_power"] == 0.0
    assert home.car.charging is False
    t[0] = b + timedelta(seconds=1)
    r = asyncio.run(home.poll())
    assert r.values["grid_status"] == float(GridStatus.CONNECTED)


# ----------------------------------------------------------------------------- battery steps

SPEC = BatterySpec.from_config(13.5, 5.0, 0.9, 20.0)


@settings(max_examples=300, deadline=None)
@given(
    net=st.floats(-20_000, 20_000),
    soc=st.floats(0, 100),
    dt=st.floats(0.001, 3600),
)
def test_self_powered_step(net, soc, dt):
    e0 = SPEC.capacity_wh * soc / 100
    b, e1 = self_powered(net, e0, dt, SPEC.capacity_wh, SPEC.max_w, SPEC.eta, SPEC.reserve_wh)
    assert abs(b) <= SPEC.max_w + 1e-9
    assert -1e-9 <= e1 <= SPEC.capacity_wh + 1e-9
    if b > 0:  # discharging covers at most the deficit and stops at the reserve
        assert b <= net + 1e-9 and e1 >= SPEC.reserve_wh - 1e-9
        assert e1 == pytest.approx(e0 - b * dt / 3600 / SPEC.eta, abs=1e-6)
    elif b < 0:  # charging takes at most the surplus
        assert -b <= -net + 1e-9
        assert e1 == pytest.approx(e0 - b * dt / 3600 * SPEC.eta, abs=1e-6)
    else:
        assert e1 == e0
    if net > 0 and e0 <= SPEC.reserve_wh:
        assert b == 0.0


@settings(max_examples=300, deadline=None)
@given(
    net=st.floats(-20_000, 20_000),
    soc=st.floats(0, 100),
    dt=st.floats(0.001, 3600),
    grid_kw=st.floats(0.1, 5.0),
)
def test_self_powered_refills_the_reserve_from_the_grid(net, soc, dt, grid_kw):
    grid_w = grid_kw * 1000.0
    e0 = SPEC.capacity_wh * soc / 100
    b, e1 = self_powered(net, e0, dt, SPEC.capacity_wh, SPEC.max_w, SPEC.eta, SPEC.reserve_wh, grid_w)
    assert abs(b) <= SPEC.max_w + 1e-9 and -1e-9 <= e1 <= SPEC.capacity_wh + 1e-9
    if e0 >= SPEC.reserve_wh:  # at or above the reserve: as without grid charging
        assert (b, e1) == self_powered(net, e0, dt, SPEC.capacity_wh, SPEC.max_w, SPEC.eta, SPEC.reserve_wh)
        return
    assert b < 0, "below the reserve it never discharges, and it charges"
    assert e1 == pytest.approx(e0 - b * dt / 3600 * SPEC.eta, abs=1e-6)
    surplus = max(0.0, -net)
    assert -b <= max(grid_w, surplus) + 1e-9
    if -b > surplus + 1e-9:  # the grid helps: only up to the reserve
        assert e1 <= SPEC.reserve_wh + 1e-6


@settings(max_examples=300, deadline=None)
@given(
    load=st.floats(0, 15_000),
    solar=st.floats(0, 8_000),
    soc=st.floats(0, 100),
    dark=st.booleans(),
    dt=st.floats(0.001, 600),
)
def test_islanded_step(load, solar, soc, dark, dt):
    e0 = SPEC.capacity_wh * soc / 100
    home, used, b, e1, _ = islanded(load, solar, e0, dark, dt, SPEC.capacity_wh, SPEC.max_w, SPEC.eta, SPEC.restart_wh)
    assert home == pytest.approx(used + b, abs=1e-6)
    assert 0 <= home <= load + 1e-9
    assert 0 <= used <= solar + 1e-9
    assert abs(b) <= SPEC.max_w + 1e-9
    assert -1e-9 <= e1 <= SPEC.capacity_wh + 1e-9
    if dark:
        assert home == 0 and b <= 0
    if not dark and load <= solar + min(SPEC.max_w, e0 * SPEC.eta * 3600 / dt) * 0.999:
        assert home == pytest.approx(load)


@settings(max_examples=25, deadline=None)
@given(
    offset_s=st.integers(0, 365 * 86400),
    step_s=st.sampled_from([1.0, 5.0, 37.5, 60.0, 900.0]),
    span_s=st.integers(1, 6 * 3600),
    seed=st.integers(0, 2**31),
)
def test_any_window_balances_and_counts(offset_s, step_s, span_s, seed):
    start = Y2025 + timedelta(seconds=offset_s)
    home = VirtualHome(config(outages_per_year=500.0, seed=seed), start=start)
    frame = home.simulate(start + timedelta(seconds=span_s), step_s=step_s)
    assert len(frame) == math.ceil(span_s / step_s)
    c = frame.columns
    assert balance_error(c).max() < 1e-6
    edges = np.append(frame.time_ms, to_ms(home.now))
    dt_h = np.diff(edges) / 3.6e6
    for name in COUNTERS:
        power, part = COUNTER_SOURCE[name]
        assert np.allclose(np.diff(c[name]), (np.maximum(part * c[power], 0) * dt_h)[:-1], atol=1e-6)
    assert np.all((c["battery_soc"] >= 0) & (c["battery_soc"] <= 100))
