"""What the planner saved against self-powered mode (issue 14, the Money view): the self-powered replay of measured
intervals by hand, a month's two bills on a hand-made store (the planner's grid charging priced at a time-of-use
rate), and ``GET /api/v1/money``'s ``against_self_powered`` over the virtual home, whose battery is itself
self-powered: there the replay must find (almost) no saving."""

from __future__ import annotations

import math
from datetime import date, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient

from homegrid.api.app import create_app
from homegrid.cli import main
from homegrid.config import Config, PlannerConfig
from homegrid.hub import planner_saving
from homegrid.hub.planner_saving import PlannerSaving, month_against_self_powered
from homegrid.hub.queries import Queries
from homegrid.hub.service import open_store
from homegrid.hub.tariff_file import SiteTariff
from homegrid.planner.baseline import replay_self_powered
from homegrid.planner.problem import BatterySpec
from homegrid.readings.rollup import ROLLUP_COLUMNS, BucketTable
from homegrid.tariffs.meters import HomeIntervals
from homegrid.timezones import HOUR_MS, MINUTE_MS, local_day_bounds

from .conftest import NEW_YORK
from .test_api_money import TOU

LOSSLESS = BatterySpec(capacity_wh=10_000.0, max_charge_w=5_000.0, max_discharge_w=5_000.0, charge_efficiency=1.0,
                       discharge_efficiency=1.0)


def hours(home: list[float], solar: list[float], **measured: list[float]) -> HomeIntervals:
    """Hourly intervals from 2025-06-02 00:00 UTC. [Wh]"""
    n = len(home)
    t = 1_748_822_400_000 + HOUR_MS * np.arange(n, dtype=np.int64)
    z = np.zeros(n)
    cols = {k: np.asarray(measured.get(k, z), dtype=np.float64)
            for k in ("grid_import", "grid_export", "battery_charge", "battery_discharge")}
    return HomeIntervals(t, HOUR_MS, np.asarray(home, dtype=np.float64), np.asarray(solar, dtype=np.float64), **cols)


def test_self_powered_replay_by_hand():
    # hour 0: 6 kWh of sun over 1 kWh of home: 5 kWh surplus at the 5 kW limit, 0.9 in: 4.5 kWh stored from 2 kWh
    # (20 %); hour 1: 4 kWh of home covered, 4 / 0.9 taken out; hour 2: 3 kWh wanted, the rest above the reserve
    spec = BatterySpec(capacity_wh=10_000.0, max_charge_w=5_000.0, max_discharge_w=5_000.0, charge_efficiency=0.9,
                       discharge_efficiency=0.9)
    replayed, end = replay_self_powered(hours([1000, 4000, 3000], [7000, 0, 0]), spec, 20.0, 20.0)
    assert replayed.battery_charge == pytest.approx([5000, 0, 0])
    assert replayed.grid_export == pytest.approx([1000, 0, 0])
    left = 4500 - 4000 / 0.9  # stored above the reserve after hour 1 [Wh]
    assert replayed.battery_discharge == pytest.approx([0, 4000, left * 0.9])
    assert replayed.grid_import == pytest.approx([0, 0, 3000 - left * 0.9])
    assert end == pytest.approx(20.0)
    # energy is conserved each hour: home = solar + battery + grid
    net_battery = replayed.battery_discharge - replayed.battery_charge
    assert replayed.home == pytest.approx(replayed.solar + net_battery + replayed.grid_import - replayed.grid_export)


def test_replay_rests_through_missing_intervals_and_keeps_the_reserve():
    home = hours([2000, 2000], [0, 0])
    gap = HomeIntervals(np.array([home.t_ms[0], home.t_ms[0] + 5 * HOUR_MS]), HOUR_MS, home.home, home.solar,
                        home.grid_import, home.grid_export, home.battery_charge, home.battery_discharge)
    replayed, end = replay_self_powered(gap, LOSSLESS, 50.0, 20.0)
    assert list(replayed.t_ms) == list(gap.t_ms)  # only the stored hours: a bill misses the same ones
    assert replayed.battery_discharge == pytest.approx([2000, 1000])  # 3 kWh above the 20 % floor, no more
    assert end == pytest.approx(20.0)
    _, same = replay_self_powered(gap, LOSSLESS, 20.0, 20.0)
    assert same == pytest.approx(20.0)


def write_minutes(store, start_ms: int, per_hour: dict[str, np.ndarray], soc_start: float) -> None:
    """Minute rollups spreading each hour's energy evenly (``per_hour``: one value an hour [Wh])."""
    n = len(next(iter(per_hour.values()))) * 60
    cols = {c: np.zeros(n) for c in ROLLUP_COLUMNS}
    for name, wh in per_hour.items():
        cols[name] = np.repeat(np.asarray(wh, dtype=np.float64) / 60.0, 60)
    cols["covered_s"][:] = 60.0
    cols["soc_s"][:1] = 60.0
    cols["soc_sum"][:1] = soc_start * 60.0
    store.write_rollup("minute", BucketTable(start_ms + MINUTE_MS * np.arange(n, dtype=np.int64), cols))


def test_a_month_the_planner_charged_from_the_grid_at_night(store):
    """Two June weekdays, a 1 kWh/h home, no sun. The planner grid-charged 4 kWh at night (off-peak $0.10) and gave
    it back in the evening peak (16-21 h, $0.30); self-powered, the battery at its 20 % reserve does nothing. The
    saving is 4 kWh x $0.20 a day."""
    start, _ = local_day_bounds(date(2025, 6, 2), NEW_YORK)
    day_import = np.ones(24)
    day_import[0:4] = 2.0  # the home and 1 kWh into the battery
    day_import[16:20] = 0.0  # the battery covers the home
    charge, discharge = np.zeros(24), np.zeros(24)
    charge[0:4], discharge[16:20] = 1.0, 1.0
    kwh = {"home": np.ones(48), "grid_import": np.tile(day_import, 2), "battery_charge": np.tile(charge, 2),
           "battery_discharge": np.tile(discharge, 2)}
    write_minutes(store, start, {k: v * 1000 for k, v in kwh.items()}, soc_start=20.0)
    end = start + 48 * HOUR_MS
    got = month_against_self_powered(store, TOU, NEW_YORK, "2025-06", start, end, LOSSLESS, 20.0, whole=True)
    assert got is not None
    energy_actual = 2 * (23 * 0.10 + 1 * 0.30)  # 21 h off-peak (8 of them 2 kWh) and one peak hour, each day
    energy_self_powered = 2 * (19 * 0.10 + 5 * 0.30)
    fixed = 10.0 * 2 / 30  # June's fixed charge, prorated to the two days
    assert got["actual"] == pytest.approx(energy_actual + fixed, abs=1e-3)
    assert got["self_powered"] == pytest.approx(energy_self_powered + fixed, abs=1e-3)
    assert got["saving"] == pytest.approx(2 * 4 * (0.30 - 0.10), abs=1e-3)
    assert got["grid_import_wh"] == {"actual": 48_000, "self_powered": 48_000}
    assert got["soc_start_percent"] == pytest.approx(20.0) and got["soc_end_percent"]["self_powered"] == 20.0
    assert got["step_min"] == 1 and got["missing_hours"] == 0
    # the planner that cost money: the same flows the other way round are a negative saving
    store.delete_rollup("minute", start, end)
    worse_import, charge, discharge = np.ones(24), np.zeros(24), np.zeros(24)
    worse_import[16:20], charge[16:20] = 2.0, 1.0  # charged in the peak
    worse_import[0:4], discharge[0:4] = 0.0, 1.0  # given back at night
    kwh.update(grid_import=np.tile(worse_import, 2), battery_charge=np.tile(charge, 2),
               battery_discharge=np.tile(discharge, 2))
    write_minutes(store, start, {k: v * 1000 for k, v in kwh.items()}, soc_start=20.0)
    worse = month_against_self_powered(store, TOU, NEW_YORK, "2025-06", start, end, LOSSLESS, 20.0, whole=True)
    assert worse is not None and worse["saving"] == pytest.approx(2 * (3.40 - 4.20), abs=1e-3)  # said, not hidden


# ----------------------------------------------------------------------------- the API, over the virtual home


@pytest.fixture(scope="module")
def last_months(tmp_path_factory) -> Path:
    """The virtual home (self-powered battery) from two days before last month to now, in New York."""
    data_dir = tmp_path_factory.mktemp("saving") / "data"
    data_dir.mkdir()
    today = datetime.now(NEW_YORK).date()
    last = (today.replace(day=1) - timedelta(days=1)).replace(day=1)
    start = last - timedelta(days=2)
    assert main(["simulate", "--start", start.isoformat(), "--days", str((today - start).days + 1),
                 "--data-dir", str(data_dir)]) == 0
    return data_dir


def test_money_says_what_the_planner_saved_against_self_powered(last_months, monkeypatch):
    store = open_store(last_months)
    try:
        site = SiteTariff.from_config(Config(), last_months)  # the virtual home's RE-TOU rate, net metering
        saving = PlannerSaving(store, NEW_YORK, PlannerConfig(enabled=True))
        client = TestClient(create_app(Queries(store, NEW_YORK), tariff=site, planner_saving=saving))
        first = client.get("/api/v1/money").json()["against_self_powered"]
        assert first["planner_enabled"] is True and first["currency"] == "USD"
        if first["last_month"] is None:  # replayed in the background: never on the request's path
            assert first["pending"] is True
            saving.settle()
        body = client.get("/api/v1/money").json()
        a = body["against_self_powered"]
        assert not a.get("pending") and a["note"] is None
        last, now = a["last_month"], a["this_month"]
        months = [m["month"] for m in body["bill"]["months"]]
        assert [last["month"], now["month"]] == months[-2:] and last["whole"] and not now["whole"]
        # the measured bill is the month's own bill (minutes priced, not hours; no surplus carried in)
        alone = client.get("/api/v1/bill", params={"from": last["from"], "to": last["to"],
                                                   "counterfactuals": "false"}).json()
        assert alone["months"][0]["month"] == last["month"] and len(alone["months"]) == 1
        assert last["actual"] == pytest.approx(alone["total"], abs=0.01)
        for m in (last, now):
            assert m["saving"] == pytest.approx(m["self_powered"] - m["actual"], abs=1e-3)
            # the virtual battery is self-powered itself: the replay finds next to no saving (0.5 % of the bill)
            assert abs(m["saving"]) <= 0.005 * abs(m["actual"]) + 0.05, m
            assert m["battery"] == {"capacity_wh": 13_500.0, "max_w": 5_000.0, "round_trip": 0.9}
            assert m["reserve_percent"] == pytest.approx(20.0) and m["step_min"] == 1
        # kept: the month so far is answered from memory, then replayed again in the background when old
        assert client.get("/api/v1/money").json()["against_self_powered"]["last_month"] == last
        monkeypatch.setattr(planner_saving, "MAX_AGE_S", 0.0)
        again = client.get("/api/v1/money").json()["against_self_powered"]
        assert again["this_month"] == now and again["last_month"] == last
        saving.settle()
        # the planner off: the battery ran its own mode, nothing is replayed
        off = PlannerSaving(store, NEW_YORK, PlannerConfig(enabled=False))
        body = TestClient(create_app(Queries(store, NEW_YORK), tariff=site, planner_saving=off)).get(
            "/api/v1/money").json()["against_self_powered"]
        assert body["planner_enabled"] is False and body["last_month"] is None and "its own mode" in body["note"]
        dry = PlannerSaving(store, NEW_YORK, PlannerConfig(enabled=True, dry_run=True))
        assert "dry_run" in dry.months(site.current(), site.version, 0)["note"]
        # no hub's figures: none said
        plain = TestClient(create_app(Queries(store, NEW_YORK), tariff=site)).get("/api/v1/money").json()
        assert plain["against_self_powered"] is None
    finally:
        store.close()


def test_the_battery_is_the_planners(last_months):
    """The replayed battery is the planner's: [planner] battery_kwh and battery_kw over the device's figures."""
    store = open_store(last_months)
    try:
        site = SiteTariff.from_config(Config(), last_months)
        saving = PlannerSaving(store, NEW_YORK, PlannerConfig(enabled=True, battery_kwh=27.0, battery_kw=10.0,
                                                               round_trip_percent=81.0))
        saving.months(site.current(), site.version, int(datetime.now(NEW_YORK).timestamp() * 1000))
        saving.settle()
        a = saving.months(site.current(), site.version, int(datetime.now(NEW_YORK).timestamp() * 1000))
        assert a["last_month"]["battery"] == {"capacity_wh": 27_000.0, "max_w": 10_000.0,
                                              "round_trip": pytest.approx(0.81)}
        assert math.isfinite(a["last_month"]["saving"])
    finally:
        store.close()


def test_a_month_that_cannot_be_priced_says_why(last_months):
    """Dynamic prices that do not cover the month: the month says so in its place (and is tried again later)."""
    from homegrid.tariffs import DynamicPrices, Tariff

    store = open_store(last_months)
    try:
        t = np.arange(0, 12, dtype=np.int64) * HOUR_MS + 1_700_000_000_000
        spot = Tariff("spot", TOU.energy, dynamic=DynamicPrices(t, HOUR_MS, np.full(12, 0.2), np.full(12, 0.05)))
        saving = PlannerSaving(store, NEW_YORK, PlannerConfig(enabled=True))
        now = int(datetime.now(NEW_YORK).timestamp() * 1000)
        assert saving.months(spot, 0, now)["pending"] is True
        saving.settle()
        a = saving.months(spot, 0, now)
        assert not a.get("pending")
        for key in ("last_month", "this_month"):
            assert set(a[key]) == {"month", "error"} and "price series does not cover" in a[key]["error"], a[key]
    finally:
        store.close()
