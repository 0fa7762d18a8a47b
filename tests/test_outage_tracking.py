"""Outage events in the running hub: detected live, stored, announced once, kept across restarts;
detected the same way from imported history; served by the API and the command line."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta

import pytest
from starlette.testclient import TestClient

from homegrid.api.app import create_app
from homegrid.cli import main
from homegrid.config import Config
from homegrid.devices import Device
from homegrid.glossary import GridStatus
from homegrid.hub.service import Hub
from homegrid.readings import GridEvidence, Reading, to_ms

T0 = datetime(2025, 6, 1, 16, tzinfo=UTC)  # noon in New York
CONNECTED, ISLANDED = float(GridStatus.CONNECTED), float(GridStatus.ISLANDED)


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


class Gateway(Device):
    """A gateway whose grid status and fault log the test sets."""

    name = "gateway"

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.status = CONNECTED
        self.faults: list[GridEvidence] = []
        self.soc = 80.0

    async def poll(self) -> Reading:
        islanded = self.status != CONNECTED
        battery = 1500.0 if islanded else 0.0
        self.soc -= 0.01 if islanded else 0.0
        return Reading(self.clock(), {
            "grid_status": self.status, "home_power": 1500.0, "solar_power": 0.0, "battery_power": battery,
            "grid_power": 0.0 if islanded else 1500.0, "battery_soc": self.soc,
        })

    def grid_evidence(self) -> list[GridEvidence]:
        return list(self.faults)


class Heard:
    def __init__(self) -> None:
        self.events: list[tuple[str, dict]] = []

    def notify(self, kind: str, outage: dict) -> None:
        self.events.append((kind, outage))

    def status(self) -> dict:
        return {}


def _hub(tmp_path, clock: Clock, gateway: Gateway, heard: Heard) -> Hub:
    hub = Hub(Config(), tmp_path, devices=[(gateway, 5.0)], clock=clock)
    hub.outages.notifier = heard
    return hub


def _run(hub: Hub, clock: Clock, seconds: float, step: float = 5.0) -> None:
    end = clock.now + timedelta(seconds=seconds)
    while clock.now < end:
        clock.now += timedelta(seconds=step)
        asyncio.run(hub.poll_once())
        hub._outages_checked = 0.0  # no throttling in a test that moves time by hand
        hub.flush()


def test_live_outage_is_announced_once_and_survives_a_restart_in_the_middle(tmp_path):
    clock, gateway, heard = Clock(), Gateway(Clock()), Heard()
    gateway.clock = clock
    hub = _hub(tmp_path, clock, gateway, heard)
    _run(hub, clock, 60)
    assert hub.outages.report(0, 2**62)["events"] == []

    gateway.status = ISLANDED
    outage_start = clock.now + timedelta(seconds=5)
    _run(hub, clock, 120)
    assert [k for k, _ in heard.events] == ["outage_started"]
    ongoing = hub.outages.report(0, 2**62)["events"]
    assert len(ongoing) == 1 and ongoing[0]["end"] is None

    # the hub dies during the outage and comes back ten minutes later, the grid still down
    hub.store.close()
    clock.now += timedelta(minutes=10)
    hub = _hub(tmp_path, clock, gateway, heard)
    _run(hub, clock, 60)
    assert [k for k, _ in heard.events] == ["outage_started"], "a restart must not announce it again"
    gateway.status = CONNECTED
    _run(hub, clock, 60)
    assert [k for k, _ in heard.events] == ["outage_started", "outage_ended"]
    [event] = hub.outages.report(0, 2**62)["events"]
    assert event["start_ms"] == to_ms(outage_start)
    assert event["end"] is not None
    assert 12 * 60 <= event["duration_s"] <= 14 * 60  # 2 min seen, 10 min down, 1 min seen
    assert "hub_down_during" in event["evidence"]
    assert event["saved"] is True and event["battery_wh"] > 0
    assert event["start"].endswith("-04:00")  # shown in the site's zone

    # a later restart finds the same single event and says nothing
    hub.store.close()
    hub = _hub(tmp_path, clock, gateway, heard)
    _run(hub, clock, 30)
    assert len(heard.events) == 2
    assert len(hub.outages.report(0, 2**62)["events"]) == 1
    hub.store.close()


def test_a_blip_between_polls_is_caught_from_the_fault_log_and_the_toggle_time(tmp_path):
    clock, heard = Clock(), Heard()
    gateway = Gateway(clock)
    hub = _hub(tmp_path, clock, gateway, heard)
    _run(hub, clock, 30)
    blip = clock.now + timedelta(seconds=2)
    gateway.faults = [GridEvidence(to_ms(blip), "grid_fault", "PINV_a006_vfCheckUnderFrequency", source="gateway")]
    _run(hub, clock, 30)
    assert hub.outages.report(0, 2**62)["events"] == []  # the fault log alone: a disturbance
    [lone] = hub.outages.report(0, 2**62)["disturbances"]
    assert lone["time_ms"] == to_ms(blip) and heard.events == []
    gateway.faults = []
    _run(hub, clock, 30)
    blip = clock.now + timedelta(seconds=2)
    back = blip + timedelta(seconds=1)
    gateway.faults = [GridEvidence(to_ms(blip), "grid_fault", "PINV_a006_vfCheckUnderFrequency", source="gateway"),
                      GridEvidence(to_ms(back), "island_toggle", "last_toggle_timestamp", source="gateway")]
    _run(hub, clock, 30)
    [event] = hub.outages.report(0, 2**62)["events"]
    assert (event["start_ms"], event["end_ms"]) == (to_ms(blip), to_ms(back))
    assert event["evidence"] == ["island_toggle:last_toggle_timestamp", "grid_fault:PINV_a006_vfCheckUnderFrequency"]
    assert [k for k, _ in heard.events] == ["outage_ended"]  # found after the fact: one message
    _run(hub, clock, 30)  # the gateway keeps listing it; it is stored once and announced once
    assert len(hub.store.read_evidence(0, 2**62)) == 3 and len(heard.events) == 1
    months = hub.outages.report(0, 2**62)["months"]
    assert months[0]["month"] == "2025-06" and months[0]["count"] == 1 and months[0]["under_1_min"] == 1
    hub.store.close()


def test_imported_history_gives_the_same_events_via_cli_and_api(tmp_path, capsys):
    rows = ["time,home_power,battery_power,grid_power,solar_power,battery_soc,grid_status"]
    t = datetime(2025, 3, 8, 12, tzinfo=UTC)
    down = [(datetime(2025, 3, 8, 15, tzinfo=UTC), 40), (datetime(2025, 3, 9, 9, tzinfo=UTC), 3)]  # min
    for _ in range(2 * 24 * 60):
        out = any(s <= t < s + timedelta(minutes=m) for s, m in down)
        rows.append(f"{t.isoformat()},900,{900 if out else 0},{0 if out else 900},0,60,"
                    f"{'islanded' if out else 'connected'}")
        t += timedelta(minutes=1)
    csv = tmp_path / "history.csv"
    csv.write_text("\n".join(rows) + "\n")
    data = tmp_path / "data"
    assert main(["import", str(csv), "--create", "--data-dir", str(data)]) == 0
    assert "2 grid interruptions found" in capsys.readouterr().out

    assert main(["outages", "--from", "2025-03-01", "--to", "2025-03-31", "--json", "--data-dir", str(data)]) == 0
    rep = json.loads(capsys.readouterr().out)
    starts = [e["start"] for e in rep["events"]]
    assert starts == ["2025-03-08T10:00:00-05:00", "2025-03-09T05:00:00-04:00"]  # either side of the DST change
    assert [round(e["duration_s"] / 60) for e in rep["events"]] == [40, 3]
    assert all(set(e) >= {"start", "end", "duration_s", "saved", "battery_wh", "solar_wh", "min_soc", "evidence"}
               for e in rep["events"])
    [march] = rep["months"]
    assert march["month"] == "2025-03" and march["count"] == 2 and march["under_1_min"] == 0
    assert march["minutes"] == pytest.approx(43, abs=2)
    assert "saved you from 2 interruptions" in march["sentence"]

    assert main(["outages", "--from", "2025-03-01", "--to", "2025-03-31", "--data-dir", str(data)]) == 0
    text = capsys.readouterr().out
    assert "2025-03: Your battery saved you from 2 interruptions" in text and "40 min" in text

    from homegrid.hub.parts import outage_tracker_for
    from homegrid.hub.queries import Queries
    from homegrid.hub.service import open_store

    config = Config()
    store = open_store(data)
    app = create_app(Queries(store, config.site.tz), outages=outage_tracker_for(config, store).report)
    body = TestClient(app).get("/api/v1/outages", params={"from": "2025-03-01", "to": "2025-03-31"}).json()
    assert body["events"] == rep["events"] and body["months"] == rep["months"]
    assert TestClient(app).get("/api/v1/outages", params={"from": "2025-03-31", "to": "2025-03-01"}).status_code == 422
    store.close()


def test_backup_endpoint_from_the_virtual_home(tmp_path):

    config = Config()
    config = config.replace(server=config.server.replace(backfill_days=2.0))
    clock = Clock()
    hub = Hub(config, tmp_path, clock=clock)
    hub.backfill()
    clock.now += timedelta(seconds=5)
    asyncio.run(hub.poll_once())
    hub.flush()
    app = create_app(hub.queries, backup=hub.backup, outages=hub.outages.report)
    body = TestClient(app).get("/api/v1/backup").json()
    est = body["estimate"]
    assert 0 < est["low_s"] <= est["central_s"] <= est["high_s"]
    assert body["vendor"]["seconds"] > 0 and body["display"]["central"]
    hub.store.close()
