"""Grid disturbances told apart from interruptions (issue 11): a gateway's fault-log entry alone is a disturbance,
an interruption needs islanding evidence (an islanded sample, the island toggle time, the backup history).

Recorded real gateway replies, the gateway simulator's model through the adapter, the store (old stores keep
working), the report's wording over the days the hub recorded, and the virtual home's first run."""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from homegrid.config import Config
from homegrid.devices.powerwall import PowerwallGateway
from homegrid.devices.powerwall.replies import parse_grid_faults, parse_toggle_time
from homegrid.devices.powerwall.simulator import GatewayModel, ManualClock
from homegrid.devices.virtual import VirtualHome
from homegrid.energy.outages import detect_grid_events, quiet_sentence
from homegrid.glossary import GridStatus
from homegrid.hub.outages import OutageTracker
from homegrid.hub.service import Hub
from homegrid.readings import GridEvidence, Reading, ReadingFrame, to_ms
from homegrid.store import SQLiteStore

from .conftest import SHARED_DATA

PW = SHARED_DATA / "powerwall"
NY = Config().site.tz
STEP_S = 5


def _json(path: Path) -> Any:
    return json.loads(path.read_text())


class Replay:
    """A gateway client answering from recorded replies (the adapter's transport seam)."""

    def __init__(self, replies: dict[str, Any]) -> None:
        self.replies = replies

    def poll(self, api: str) -> Any:
        return self.replies.get(api)


class ModelClient:
    """The simulator's gateway model behind the adapter's seam, without HTTP."""

    def __init__(self, model: GatewayModel) -> None:
        self.routes = {"/api/meters/aggregates": model.aggregates, "/api/system_status/soe": model.soe,
                       "/api/system_status/grid_status": model.grid_status_reply, "/api/operation": model.operation,
                       "/api/system_status/grid_faults": model.grid_faults, "/api/system_status": model.system_status}

    def poll(self, api: str) -> Any:
        return self.routes[api]()


def _record(gateway: PowerwallGateway, store: SQLiteStore, times: list[datetime], clock: list[datetime],
            between: Any = None) -> None:
    """Poll the adapter at each time, keeping its readings and its evidence in the store."""
    rows: list[Reading] = []
    for i, t in enumerate(times):
        clock[0] = t
        rows.append(gateway.read())
        store.write_evidence(gateway.grid_evidence())
        if between is not None:
            between(i)
    t_ms = np.array([to_ms(r.time) for r in rows], dtype=np.int64)
    cols = {n: np.array([r.values.get(n, np.nan) for r in rows], dtype=np.float64)
            for n in ("grid_status", "grid_power", "home_power", "battery_power", "solar_power", "battery_soc",
                      "grid_voltage")}
    store.write_readings(ReadingFrame(t_ms, cols))


def _tracker(store: SQLiteStore) -> OutageTracker:
    return OutageTracker(store, NY, max_gap_ms=30_000, merge_gap_ms=60_000)


# ----------------------------------------------------------------------------- recorded real replies


@pytest.mark.parametrize("source", ["tesla_powerwall", "powerwall2"])
def test_recorded_warnings_while_the_grid_is_connected_are_disturbances_not_interruptions(tmp_path, source):
    """Real gateways logged voltage and frequency warnings while their grid status said connected: the hub
    reports zero interruptions and lists each warning as a disturbance with its kind and magnitude."""
    if source == "tesla_powerwall":
        status = _json(PW / "tesla_powerwall/fixtures/system_status.json")
        replies = {"/api/meters/aggregates": _json(PW / "tesla_powerwall/fixtures/meters_aggregates.json"),
                   "/api/system_status/grid_status": _json(PW / "tesla_powerwall/fixtures/grid_status.json"),
                   "/api/system_status/grid_faults": status["grid_faults"], "/api/system_status": status}
        want = {("under_voltage", 123.0, "V"), ("over_frequency", 52.189, "Hz"), ("frequency_change_rate", None, "")}
    else:
        running = PW / "powerwall2/samples/21.44-foogod/running"
        replies = {"/api/meters/aggregates": _json(running / "meters.aggregates.json"),
                   "/api/system_status/grid_status": _json(running / "system_status.grid_status.json"),
                   "/api/system_status/grid_faults": _json(PW / "powerwall2/samples/system_status.grid_faults.json"),
                   "/api/system_status": _json(PW / "powerwall2/samples/system_status.json")}
        want = {("under_frequency", 57.207, "Hz")}
    assert replies["/api/system_status/grid_status"]["grid_status"] == "SystemGridConnected"
    faults = parse_grid_faults(replies["/api/system_status/grid_faults"])
    first = min(f.time_ms for f in faults)
    clock = [datetime.fromtimestamp(first / 1000 - 60, UTC)]
    gateway = PowerwallGateway(Replay(replies), clock=lambda: clock[0])
    store = SQLiteStore(tmp_path / "hub.db")
    times = [clock[0] + timedelta(seconds=STEP_S * i) for i in range(25)]
    _record(gateway, store, times, clock)
    assert "/api/system_status/grid_faults" not in gateway.problems
    tracker = _tracker(store)
    tracker.rebuild(to_ms(times[0]), to_ms(times[-1]) + 1)
    report = tracker.report(0, 2**62)
    assert report["events"] == [] and report["interruptions"] == 0
    assert {(d["kind"], d["value"], d["unit"]) for d in report["disturbances"]} == want
    assert all(d["source"] == "powerwall" and d["time"].startswith("20") for d in report["disturbances"])
    assert report["sentence"].startswith("No grid interruptions recorded on ")
    store.close()


def test_every_recorded_system_status_has_a_toggle_time_the_adapter_reads():
    files = [*PW.glob("**/system_status.json"), PW / "pypowerwall/bogus/api.system_status.json"]
    assert len(files) >= 5
    for path in files:
        reply = _json(path)
        t = parse_toggle_time(reply)
        assert t is not None
        assert abs(t - to_ms(datetime.fromisoformat(reply["last_toggle_timestamp"][:26] +
                                                    reply["last_toggle_timestamp"][-6:]))) < 1
    assert parse_toggle_time({"nominal_full_pack_energy": 1}) is None
    for bad in ("yesterday", 12, "2021-08-10T23:27:28"):
        with pytest.raises(ValueError):
            parse_toggle_time({"last_toggle_timestamp": bad})


# ----------------------------------------------------------------------------- the simulated gateway


def _simulated(tmp_path: Path) -> tuple[GatewayModel, ManualClock, PowerwallGateway, SQLiteStore, list[datetime]]:
    sim_clock = ManualClock(1_750_000_000.0)
    model = GatewayModel(clock=sim_clock)
    now = [datetime.fromtimestamp(sim_clock.now, UTC)]
    gateway = PowerwallGateway(ModelClient(model), clock=lambda: now[0])
    return model, sim_clock, gateway, SQLiteStore(tmp_path / "hub.db"), now


def test_an_over_voltage_warning_beside_a_30_s_islanding_is_one_interruption_and_one_disturbance(tmp_path):
    """The issue's case: a gateway whose log gained an over-voltage warning while the grid stayed connected, and
    a 30 s islanding. One interruption, exact at both ends (fault entry, toggle time), one disturbance."""
    model, sim_clock, gateway, store, now = _simulated(tmp_path)
    times = [now[0] + timedelta(seconds=STEP_S * i) for i in range(60)]
    marks: dict[str, float] = {}

    def between(i: int) -> None:
        sim_clock.advance(STEP_S / 2)
        if i == 10:
            model.add_warning("over_voltage", 132.5)
            marks["warning"] = sim_clock.now
        if i == 25:
            model.set_scenario("outage")
            marks["island"] = sim_clock.now
        if i == 31:
            model.set_scenario("normal")
            marks["back"] = sim_clock.now + model.transition_s
        sim_clock.advance(STEP_S / 2)

    _record(gateway, store, times, now, between)
    tracker = _tracker(store)
    tracker.rebuild(to_ms(times[0]), to_ms(times[-1]) + 1)
    report = tracker.report(0, 2**62)
    (event,) = report["events"]
    assert report["interruptions"] == 1
    assert event["start_ms"] == int(marks["island"] * 1000) and event["start_exact"]
    assert event["end_ms"] == int(marks["back"] * 1000) and event["end_exact"]
    assert 30 <= event["duration_s"] <= 35
    (lone,) = report["disturbances"]
    assert (lone["kind"], lone["value"], lone["unit"], lone["time_ms"]) == ("over_voltage", 132.5, "V",
                                                                            int(marks["warning"] * 1000))
    month = report["months"][0]
    assert month["count"] == 1 and "1 interruption" in month["sentence"]
    store.close()


def test_a_blip_shorter_than_a_poll_is_caught_from_the_toggle_time(tmp_path):
    model, sim_clock, gateway, store, now = _simulated(tmp_path)
    times = [now[0] + timedelta(seconds=STEP_S * i) for i in range(20)]
    marks: dict[str, float] = {}

    def between(i: int) -> None:
        sim_clock.advance(1.0)
        if i == 8:
            model.blip(2.0)
            marks["blip"] = sim_clock.now
        sim_clock.advance(STEP_S - 1.0)

    _record(gateway, store, times, now, between)
    statuses = store.read_readings(0, 2**62).column("grid_status")
    assert np.all(statuses == float(GridStatus.CONNECTED))  # no poll saw it
    tracker = _tracker(store)
    tracker.rebuild(to_ms(times[0]), to_ms(times[-1]) + 1)
    (event,) = tracker.report(0, 2**62)["events"]
    assert (event["start_ms"], event["end_ms"]) == (int(marks["blip"] * 1000), int(marks["blip"] * 1000) + 2000)
    assert event["start_exact"] and event["end_exact"] and event["saved"] is True
    assert any(x.startswith("island_toggle") for x in event["evidence"])
    store.close()


# ----------------------------------------------------------------------------- store and report


def test_an_old_store_keeps_working_and_its_fault_only_blips_become_disturbances(tmp_path):
    path = tmp_path / "old.db"
    store = SQLiteStore(path)
    t0 = to_ms(datetime(2025, 6, 1, 12, tzinfo=UTC))
    t = t0 + np.arange(0, 600_000, 5_000, dtype=np.int64)
    status = np.where((t >= t0 + 300_000) & (t < t0 + 400_000), float(GridStatus.ISLANDED),
                      float(GridStatus.CONNECTED))
    store.write_readings(ReadingFrame(t, {"grid_status": status, "home_power": np.full(len(t), 900.0)}))
    store.close()
    db = sqlite3.connect(path)  # as homegrid wrote it before disturbances: no kind or magnitude, no table
    for column in ("disturbance", "value", "unit"):
        db.execute(f"ALTER TABLE grid_evidence DROP COLUMN {column}")
    db.execute("DROP TABLE disturbances")
    db.execute("INSERT INTO grid_evidence (ts, source, kind, name) VALUES (?, 'powerwall', 'grid_fault', ?)",
               (t0 + 101_500, "PINV_a005_vfCheckOverVoltage"))
    old_blip = {"start_ms": t0 + 101_500, "end_ms": t0 + 101_500, "start_exact": True, "end_exact": False,
                "evidence": ["grid_fault:PINV_a005_vfCheckOverVoltage"], "saved": True, "duration_s": 0.0}
    real = {"start_ms": t0 + 300_000, "end_ms": t0 + 400_000, "evidence": ["grid_status"], "saved": True,
            "duration_s": 100.0}
    for e in (old_blip, real):
        db.execute("INSERT INTO outages (start_ms, end_ms, event) VALUES (?, ?, ?)",
                   (e["start_ms"], e["end_ms"], json.dumps(e)))
    db.commit()
    db.close()
    store = SQLiteStore(path)
    reader = OutageTracker(store, NY, max_gap_ms=30_000, merge_gap_ms=60_000, writer=False)  # homegrid outages
    seen = reader.report(0, 2**62)
    assert [e["start_ms"] for e in seen["events"]] == [real["start_ms"]]
    assert [d["time_ms"] for d in seen["disturbances"]] == [old_blip["start_ms"]]
    assert store.get_meta("outages_rule") is None and len(store.read_outages(0, 2**62)) == 2  # a reader writes nothing
    tracker = _tracker(store)
    report = tracker.report(0, 2**62)
    assert report == seen and store.get_meta("outages_rule") == "2"
    assert [e["start_ms"] for e in report["events"]] == [real["start_ms"]]  # kept as it was
    (lone,) = report["disturbances"]
    assert lone["time_ms"] == old_blip["start_ms"] and lone["kind"] == "other"  # the old store kept no kind
    # the entry gains its kind and magnitude when the gateway lists it again, and a rebuild agrees
    store.write_evidence([GridEvidence(t0 + 101_500, "grid_fault", "PINV_a005_vfCheckOverVoltage", source="powerwall",
                                       disturbance="over_voltage", value=131.0, unit="V")])
    tracker.rebuild(int(t[0]), int(t[-1]) + 1)
    report = tracker.report(0, 2**62)
    assert len(report["events"]) == 1
    assert (report["disturbances"][0]["kind"], report["disturbances"][0]["value"]) == ("over_voltage", 131.0)
    store.close()
    assert _tracker(SQLiteStore(path)).report(0, 2**62)["disturbances"][0]["value"] == 131.0  # once only


def test_no_interruptions_names_only_the_days_the_hub_recorded(tmp_path):
    store = SQLiteStore(tmp_path / "hub.db")
    t0 = to_ms(datetime(2025, 6, 3, 15, tzinfo=UTC))
    t = t0 + np.arange(0, 2 * 86_400_000, 60_000, dtype=np.int64)
    store.write_readings(ReadingFrame(t, {"grid_status": np.full(len(t), float(GridStatus.CONNECTED))}))
    tracker = _tracker(store)
    year = (to_ms(datetime(2025, 1, 1, tzinfo=NY)), to_ms(datetime(2026, 1, 1, tzinfo=NY)))
    report = tracker.report(*year)
    assert report["covered"] == {"from": "2025-06-03", "to": "2025-06-05"}
    assert report["sentence"] == "No grid interruptions recorded from 2025-06-03 to 2025-06-05 (the days this hub " \
                                 "recorded)."
    assert "2025-01-01" not in report["sentence"]
    assert quiet_sentence(None, None).startswith("No readings recorded")
    store.close()


def test_disturbances_never_count_as_interruptions():
    t = to_ms(datetime(2025, 6, 1, tzinfo=UTC)) + np.arange(0, 3_600_000, 5_000, dtype=np.int64)
    status = np.full(len(t), float(GridStatus.CONNECTED))
    status[100:110] = float(GridStatus.ISLANDED)
    noise = [GridEvidence(int(t[i]) + 1_234, "grid_fault", "PINV_a005_vfCheckOverVoltage", disturbance="over_voltage",
                          value=130.0, unit="V") for i in (10, 300, 500, 650)]
    found = detect_grid_events(t, status, None, noise, max_gap_ms=12_500)
    assert len(found.outages) == 1 and len(found.disturbances) == 4
    assert {d.kind for d in found.disturbances} == {"over_voltage"}


# ----------------------------------------------------------------------------- the virtual home


def test_the_virtual_gateways_toggle_time_follows_its_outages():
    config = Config()
    start = datetime(2025, 3, 1, tzinfo=UTC)
    home = VirtualHome(config, start=start)
    (a, b), *_ = [(to_ms(x), to_ms(y)) for x, y in home.outages(start, start + timedelta(days=7))]
    assert home.toggle_ms(a - 1) != a and home.toggle_ms(a) == a and home.toggle_ms(b - 1) == a
    assert home.toggle_ms(b) == b
    evidence = home.evidence_between(a - 1, b + 1)
    assert [e.time_ms for e in evidence if e.kind == "island_toggle"] == [a, b]


@pytest.mark.parametrize("now", ["2026-12-05T11:37:00+00:00", "2025-03-09T06:30:00+00:00", "2025-11-02T05:30:00+00:00"])
def test_a_first_run_backfill_shows_an_interruption_a_blip_and_a_disturbance(tmp_path, now):
    """A fresh ``homegrid serve`` on the virtual home: its 7 days of history hold at least one interruption,
    one under a minute (a blip), one grid disturbance, and the sentence says what the battery saved."""
    when = datetime.fromisoformat(now)
    hub = Hub(Config(), tmp_path, clock=lambda: when)
    try:
        hub.prepare()
        report = hub.outages.report(0, 2**62)
    finally:
        hub.store.close()
    long = [e for e in report["events"] if e["duration_s"] >= 60]
    blips = [e for e in report["events"] if e["duration_s"] < 60]
    assert long and blips and report["disturbances"], report
    assert report["sentence"].startswith("Your battery saved you from ")
    assert f"{len(report['events'])} interruptions" in report["sentence"]
    assert report["covered"]["to"] == when.astimezone(NY).date().isoformat()


def test_the_simulated_gateway_over_https_serves_the_toggle_time_through_pypowerwall(tmp_path):
    """Real pypowerwall against the simulator: the toggle time it serves moves with a blip no poll sees, and a
    warning lands in the fault log with its kind and magnitude."""
    from homegrid.devices.powerwall.client import connect_gateway
    from homegrid.devices.powerwall.simulator import Simulator

    sim_clock = ManualClock(1_750_000_000.0)
    with Simulator() as sim:
        gw = sim.add_gateway(password="Xq7-hunter2-Zz", clock=sim_clock)
        client = connect_gateway(gw.address, "Xq7-hunter2-Zz", timeout_s=2.0, auth_dir=tmp_path / "auth")
        try:
            device = PowerwallGateway(client)
            device.read()
            before = device.toggle_ms
            sim_clock.advance(1.0)
            gw.model.blip(1.5)
            gw.model.add_warning("under_voltage", 97.0)
            sim_clock.advance(4.0)
            reading = device.read()
        finally:
            client.close()
    assert reading.values["grid_status"] == float(GridStatus.CONNECTED) and "/api/system_status" not in device.problems
    assert before is not None and device.toggle_ms == round((1_750_000_001.0 + 1.5) * 1000)
    kinds = {(e.kind, e.disturbance, e.value, e.unit) for e in device.grid_evidence()}
    assert ("grid_fault", "under_voltage", 97.0, "V") in kinds
    assert ("island_toggle", "", None, "") in kinds


def test_a_fault_entry_hours_old_read_after_a_restart_is_listed_at_once(tmp_path):
    """A restarted hub reads the gateway's whole log: an entry from hours ago becomes a disturbance at the next
    update, not only at a rebuild."""
    store = SQLiteStore(tmp_path / "hub.db")
    now = to_ms(datetime(2025, 6, 1, 18, tzinfo=UTC))
    t = now - 8 * 3_600_000 + np.arange(0, 8 * 3_600_000 + 1, 5_000, dtype=np.int64)
    store.write_readings(ReadingFrame(t, {"grid_status": np.full(len(t), float(GridStatus.CONNECTED))}))
    tracker = _tracker(store)
    old = GridEvidence(now - 5 * 3_600_000 + 1_234, "grid_fault", "PINV_a005_vfCheckOverVoltage", source="powerwall",
                       disturbance="over_voltage", value=130.5, unit="V")
    ancient = GridEvidence(now - 30 * 86_400_000, "island_toggle", "last_toggle_timestamp", source="powerwall")
    assert tracker.add_evidence([old, ancient]) == 2
    assert tracker.update(now) == []
    (lone,) = tracker.report(0, 2**62)["disturbances"]
    assert lone["time_ms"] == old.time_ms and lone["value"] == 130.5
    store.close()
