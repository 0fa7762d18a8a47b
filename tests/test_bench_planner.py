"""The planner bench's frame (issue 14): the battery model every plan is replayed through, the perfect-foresight
LP, the tariffs' per-step prices and the re-dating of the 2015 price series. No emhass here (its own venv)."""

from __future__ import annotations

import sys
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

BENCH = Path(__file__).resolve().parent.parent / "bench"
sys.path.insert(0, str(BENCH))

import bench_planner  # noqa: E402
from battery_model import CHARGE, EXPORT, HOLD, SELF, SETPOINT, Battery, bill, replay_modes, self_consumption  # noqa: E402

from homegrid.timezones import parse_iso_ms  # noqa: E402

MODES = (SELF, HOLD, CHARGE, EXPORT, SETPOINT)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.floats(0, 8000), st.floats(0, 8000), st.sampled_from(MODES), st.floats(-9000, 14000)),
                min_size=1, max_size=60))
def test_replay_conserves_energy_and_keeps_limits(rows: list[tuple[float, float, str, float]]) -> None:
    bat = Battery(10_000.0, 5_000.0, 20.0, 90.0)
    home = np.array([r[0] for r in rows])
    solar = np.array([r[1] for r in rows])
    modes = [r[2] for r in rows]
    values = np.array([r[3] for r in rows])
    dt = 0.5
    rep = replay_modes(bat, home, solar, dt, modes, values, bat.e_min)
    # the grid closes the balance on every step
    np.testing.assert_allclose(rep.grid_w, home - solar - rep.battery_w, atol=1e-9)
    # power and energy within limits
    assert np.all(np.abs(rep.battery_w) <= bat.power_w + 1e-9)
    assert np.all(rep.energy_wh >= bat.e_min - 1e-6) and np.all(rep.energy_wh <= bat.e_max + 1e-6)
    # stored energy = charged * eta - discharged / eta
    charged = np.sum(np.maximum(-rep.battery_w, 0)) * dt
    discharged = np.sum(np.maximum(rep.battery_w, 0)) * dt
    assert rep.energy_wh[-1] - bat.e_min == pytest.approx(charged * bat.eta - discharged / bat.eta, abs=1e-6)


def test_self_consumption_never_imports_while_it_can_discharge() -> None:
    bat = Battery(10_000.0, 5_000.0, 20.0, 90.0)
    home = np.array([0.0, 0.0, 1000.0, 1000.0])
    solar = np.array([4000.0, 4000.0, 0.0, 0.0])
    rep = self_consumption(bat, home, solar, 1.0)
    assert rep.battery_w[:2] == pytest.approx([-4000.0, -4000.0])  # the surplus is stored
    assert rep.grid_w[2:] == pytest.approx([0.0, 0.0])  # and covers the evening
    assert rep.energy_wh[-1] == pytest.approx(2000 + 8000 * bat.eta - 2000 / bat.eta)


def test_modes_hold_charge_export() -> None:
    bat = Battery(10_000.0, 5_000.0, 20.0, 90.0)
    e = 5_000.0
    assert bat.request(HOLD, 800.0, e, 0.5) == 0.0  # no discharge for a deficit
    assert bat.request(HOLD, -800.0, e, 0.5) == -800.0  # the surplus still charges
    need = (6_000.0 - e) / (bat.eta * 0.5)
    assert bat.request(CHARGE, 300.0, e, 0.5, 6_000.0) == pytest.approx(-need)
    assert bat.request(EXPORT, 300.0, e, 0.5, 2_000.0) == 2_000.0
    assert bat.request(EXPORT, 3_000.0, e, 0.5, 2_000.0) == 3_000.0  # covers the home at least
    p, e2 = bat.clip(bat.e_min + 10.0, 5_000.0, 0.5)  # 10 Wh above the reserve
    assert p == pytest.approx(10.0 * bat.eta / 0.5) and e2 == pytest.approx(bat.e_min)


def series(home: list[float], solar: list[float], step_min: int = 60) -> bench_planner.Series:
    t0 = parse_iso_ms("2024-06-03T00:00:00+02:00")
    t = t0 + np.arange(len(home), dtype=np.int64) * step_min * 60_000
    return bench_planner.Series("t", t, np.array(home, float), np.array(solar, float), "Europe/Paris", "test")


def test_perfect_lp_two_step_arbitrage_by_hand() -> None:
    # 1 kWh of load at a dear hour after a cheap one: buy it early through the battery (loss 10 %)
    s = series([0.0, 1000.0], [0.0, 0.0])
    bat = Battery(10_000.0, 5_000.0, 0.0, 90.0)
    buy, sell = np.array([0.10, 0.30]), np.zeros(2)
    r = bench_planner.perfect_lp(s, buy, sell, bat)
    assert r["bill"] == pytest.approx(0.10 * 1.0 / 0.9, rel=1e-6)
    # a spread below the loss: no arbitrage
    r = bench_planner.perfect_lp(s, np.array([0.28, 0.30]), sell, bat)
    assert r["bill"] == pytest.approx(0.30, rel=1e-6)


def test_perfect_lp_beats_or_equals_self_consumption_on_real_data() -> None:
    s = bench_planner.emhass_household()
    day = slice(24 * 2 * 150, 24 * 2 * 157)  # a week of July
    s = bench_planner.Series(s.name, s.t_ms[day], s.home_w[day], s.solar_w[day], s.timezone, s.source)
    buy, sell = bench_planner.fr_hphc(s)
    bat = Battery(10_000.0, 5_000.0, 20.0, 90.0)
    sc = bill(self_consumption(bat, s.home_w, s.solar_w, s.dt_h).grid_w, buy, sell, s.dt_h)
    nb = bill(s.home_w - s.solar_w, buy, sell, s.dt_h)
    pf = bench_planner.perfect_lp(s, buy, sell, bat)["bill"]
    assert pf <= sc + 1e-6 and pf < nb
    assert bench_planner.share(nb, pf, pf) == pytest.approx(1.0)


def test_household_is_whole_local_days_without_nans() -> None:
    s = bench_planner.emhass_household()
    assert s.step_s == 1800
    assert not np.isnan(s.home_w).any() and not np.isnan(s.solar_w).any()
    first = datetime.fromtimestamp(int(s.t_ms[0]) / 1000, ZoneInfo("Europe/Paris"))
    assert (first.hour, first.minute) == (0, 0)
    assert len(s.t_ms) % 48 == 0  # 23- and 25-hour days cancel out over a year: 365 days of 48 steps
    assert s.home_w.sum() * s.dt_h / 1000 == pytest.approx(7_670, rel=0.02)  # the README's 7,674 kWh


def test_tariffs_per_step() -> None:
    s = series([0.0] * 24, [0.0] * 24)
    buy, sell = bench_planner.fr_hphc(s)
    assert buy[5] == 0.1419 and buy[6] == 0.1907 and buy[21] == 0.1907 and buy[22] == 0.1419
    assert set(sell) == {0.1419}
    buy, sell = bench_planner.wide_tou(s)
    assert buy[16] == 0.15 and buy[17] == 0.45 and buy[20] == 0.45 and buy[21] == 0.15 and set(sell) == {0.05}
    buy, sell = bench_planner.us_tou(s)  # a June weekday: summer on-peak 14-18 h
    assert buy[15] == pytest.approx(0.219872, abs=1e-4) and buy[3] == pytest.approx(0.099057, abs=1e-4)
    np.testing.assert_allclose(sell, buy)  # net metering


def test_redate_keeps_weekday_and_hour() -> None:
    zone = ZoneInfo("Europe/Paris")
    for iso in ("2024-02-29T07:30:00+01:00", "2024-07-14T18:00:00+02:00", "2025-01-01T00:00:00+01:00",
                "2025-02-27T23:30:00+01:00", "2024-12-31T12:00:00+01:00"):
        d = datetime.fromisoformat(iso).astimezone(zone)
        r = bench_planner.redate_2015(d)
        assert r.year == 2015 and r.weekday() == d.weekday() and r.hour == d.hour


def test_dynamic_prices_are_the_2015_series() -> None:
    s = series([0.0] * 48, [0.0] * 48)
    buy, sell = bench_planner.dynamic(s)
    spot = buy - bench_planner.DYNAMIC_ADDER
    assert np.all(np.isfinite(buy)) and np.all(sell >= 0)
    assert -0.1 < spot.min() and spot.max() < 0.2 and spot.std() > 0.003  # EUR/kWh, a day-ahead day's shape
    prices = bench_planner.smard_2015()
    at = bench_planner.redate_2015(datetime.fromtimestamp(int(s.t_ms[10]) / 1000, ZoneInfo("Europe/Paris")))
    assert spot[10] == pytest.approx(prices[at])


def test_table_shares_and_issue_figures() -> None:
    case = {"tariff": "fr_hphc", "battery_kwh": 10.0, "no_battery": {"bill": 100.0}, "perfect": {"bill": 60.0},
            "policies": {"self-consumption": {"bill": 80.0, "battery_cycles": 100.0, "grid_import_wh": 1e6},
                         "emhass mpc-naive (modes)": {"bill": 66.0, "battery_cycles": 150.0, "grid_import_wh": 1e6,
                                                      "solve_ms": {"p50": 30.0, "p99": 90.0}},
                         "emhass mpc-naive (setpoints)": {"bill": 99.0, "battery_cycles": 150.0,
                                                          "grid_import_wh": 1e6}}}
    results = {"cases": {"x / fr_hphc / 10 kWh 5 kW": case}}
    md = bench_planner.markdown(results)
    assert "| self-consumption | 80.00 | 50.0% (issue: 72%) |" in md
    assert "| emhass mpc-naive (modes) | 66.00 | 85.0% (issue: 86%) | 150 | 1000 | 30 / 90 |" in md
    assert "| emhass mpc-naive (setpoints) | 99.00 | 2.5% |" in md
    case["policies"]["emhass dayahead-perfect (modes)"] = {"bill": 61.0}  # perfect forecasts: not the peer
    rows = bench_planner.summary_rows(results)
    assert rows[0][1] == "not yet" and rows[0][2] == "85.0% (emhass mpc-naive (modes))"
    assert bench_planner.share(100.0, 100.0, 100.0) is None  # nothing at stake


def test_emhass_driver_forecasts_never_see_the_future() -> None:
    sys.path.insert(0, str(BENCH / "emhass"))
    import run_emhass  # the driver's pure parts; emhass itself is imported only inside its functions

    values = np.arange(200, dtype=float)
    per_day = 48
    for start in (0, 10, 48, 100, 180):
        fc = run_emhass.forecast_values(values, start, 48, per_day, "naive")
        idx = fc.astype(int)
        if start >= per_day:
            assert np.all(idx < start)  # persistence: only the past
            np.testing.assert_array_equal(idx[:48], np.arange(start, start + 48) - per_day)
        assert np.all((idx - np.arange(start, start + 48)) % per_day == 0)  # the same time of day
        perfect = run_emhass.forecast_values(values, start, 48, per_day, "perfect")
        known = min(48, len(values) - start)
        np.testing.assert_array_equal(perfect[:known], values[start:start + known])
        # past the data's end: the day before
        np.testing.assert_array_equal(perfect[known:], np.arange(start + known, start + 48) - per_day)


def test_emhass_plan_to_modes() -> None:
    sys.path.insert(0, str(BENCH / "emhass"))
    import run_emhass

    assert run_emhass.mode_of(-3000.0, 3500.0, 500.0) == CHARGE  # charging from the grid
    assert run_emhass.mode_of(-2000.0, 0.0, -2000.0) == SELF  # charging from the sun
    assert run_emhass.mode_of(2000.0, -1500.0, 500.0) == EXPORT  # discharging to the grid
    assert run_emhass.mode_of(500.0, 0.0, 500.0) == SELF  # covering the home
    assert run_emhass.mode_of(0.0, 800.0, 800.0) == HOLD  # keeping the energy for later
    assert run_emhass.mode_of(0.0, -800.0, -800.0) == SELF
