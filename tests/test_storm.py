"""Storm mode: the NWS alert feed, the pure decision, the running watch; and the battery controls it acts through
(the reserve and, for the owner's settings, the operation mode; a Powerwall through real pypowerwall)."""

from __future__ import annotations

import asyncio
import copy
import dataclasses
import http.server
import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi import FastAPI
from starlette.testclient import TestClient

from homegrid.api.settings import add_settings_routes
from homegrid.config import Config, VirtualHomeConfig
from homegrid.devices import DeviceError
from homegrid.devices.powerwall.client import PowerwallClient, connect_gateway
from homegrid.devices.powerwall.control import PowerwallControl, app_to_gateway, gateway_to_app
from homegrid.devices.powerwall.simulator import SimulatedGateway, Simulator, _error, _json
from homegrid.devices.virtual import VirtualHome
from homegrid.devices.virtual.control import VirtualControl
from homegrid.devices.weather import (
    AlertSource,
    FeedError,
    alerts_url,
    fetch_alerts,
    load_alerts,
    parse_alerts,
    parse_alerts_text,
)
from homegrid.planner import (
    StormPolicy,
    StormState,
    StormWatch,
    decide,
    load_state,
    qualifying_alerts,
    save_state,
)

from .conftest import behind_the_door
from .waiting import wait_for_async

FIXTURES = Path(__file__).parent / "fixtures" / "nws"
ZONE = FIXTURES / "zone_ORZ004_flood_watch_2019-12-20.json"
EMPTY = FIXTURES / "area_AZ_no_alerts_2024-01-08.json"
CANCEL = FIXTURES / "constructed_flood_watch_cancel.json"
WATCH_ID = "NWS-IDP-PROD-3965873-3369046"

# The Flood Watch: onset 2019-12-20 13:34 PST, expires 12-21 05:30 PST, ends 12-22 10:00 PST.
ONSET = datetime(2019, 12, 20, 21, 34, tzinfo=UTC)
EXPIRES = datetime(2019, 12, 21, 13, 30, tzinfo=UTC)
ENDS = datetime(2019, 12, 22, 18, 0, tzinfo=UTC)
DURING = datetime(2019, 12, 20, 22, 0, tzinfo=UTC)
CANCELLED_AT = datetime(2019, 12, 21, 11, 12, tzinfo=UTC)  # the constructed Cancel was sent at 11:10 UTC


def watch_alerts():
    return load_alerts(ZONE).alerts


def cancel_alerts():
    return load_alerts(CANCEL).alerts


# -- the NWS feed -------------------------------------------------------------------------------------------


def test_published_zone_feed_parses_every_field_storm_mode_uses():
    feed = load_alerts(ZONE)
    assert feed.problems == ()
    assert feed.updated == datetime(2019, 12, 20, 21, 35, 17, tzinfo=UTC)
    (a,) = feed.alerts
    assert (a.id, a.event, a.status, a.message_type) == (WATCH_ID, "Flood Watch", "Actual", "Update")
    assert (a.severity, a.urgency, a.certainty, a.severity_rank) == ("Severe", "Future", "Possible", 3)
    assert a.onset == ONSET and a.expires == EXPIRES and a.ends == ENDS
    assert a.onset.utcoffset() == timedelta(hours=-8)  # the feed's own offset is kept
    assert a.starts == ONSET and a.stops == EXPIRES and a.hazard_ends == ENDS
    assert "ORZ004" in a.ugc and "041041" in a.same and a.area.startswith("North Oregon Coast")
    assert a.references[0] == "NWS-IDP-PROD-3964821-3368352" and len(a.references) == 4
    assert a.vtec_actions == {"CON"}
    assert a.headline is not None and a.headline.startswith("Flood Watch issued December 20")


def test_empty_published_feed_has_no_alerts():
    feed = load_alerts(EMPTY)
    assert feed.alerts == () and feed.problems == ()
    assert feed.updated == datetime(2024, 1, 8, 19, 49, 8, tzinfo=UTC)


def test_json_ld_graph_and_a_single_feature_read_the_same():
    doc = json.loads(ZONE.read_text())
    graph = {"@context": doc["@context"], "@graph": [f["properties"] for f in doc["features"]]}
    assert parse_alerts(graph).alerts == load_alerts(ZONE).alerts
    assert parse_alerts(doc["features"][0]).alerts == load_alerts(ZONE).alerts


@pytest.mark.parametrize(("text", "says"), [
    ("<html><body>Service Unavailable</body></html>", "not JSON"),
    ("[1, 2, 3]", "expected a JSON object"),
    ('{"type": "FeatureCollection", "items": []}', "no 'features' or '@graph' list"),
    ("", "not JSON"),
])
def test_a_document_that_is_not_a_feed_raises_a_clear_error(text, says):
    with pytest.raises(FeedError, match=says) as err:
        parse_alerts_text(text, "https://example.test/alerts")
    assert "https://example.test/alerts" in str(err.value)


def test_bad_entries_are_skipped_and_named_the_good_ones_kept():
    doc = json.loads(ZONE.read_text())
    good = doc["features"][0]
    placeholder = copy.deepcopy(good)  # the weather.gov project's test data has such placeholders
    placeholder["properties"]["id"] = "bad-time"
    placeholder["properties"]["onset"] = "date:now -252 seconds"
    naive = copy.deepcopy(good)
    naive["properties"]["id"] = "naive-time"
    naive["properties"]["expires"] = "2019-12-21T05:30:00"
    no_event = copy.deepcopy(good)
    no_event["properties"]["id"] = "no-event"
    del no_event["properties"]["event"]
    doc["features"] = [placeholder, {"type": "Feature", "geometry": None}, good, naive, no_event, "junk"]
    feed = parse_alerts(doc, "feed.json")
    assert [a.id for a in feed.alerts] == [WATCH_ID]
    problems = "\n".join(feed.problems)
    assert len(feed.problems) == 5
    assert "features[0] (bad-time): onset 'date:now -252 seconds' is not an ISO 8601 time" in problems
    assert "features[1]: no properties" in problems
    assert "features[3] (naive-time): expires '2019-12-21T05:30:00' has no UTC offset" in problems
    assert "features[4] (no-event): event is None" in problems
    assert "features[5]: str, not a GeoJSON feature object" in problems


def test_a_missing_file_is_a_feed_error(tmp_path):
    with pytest.raises(FeedError, match="cannot read the alert file"):
        load_alerts(tmp_path / "nope.json")


def test_alerts_url_for_the_site():
    assert alerts_url(36.1, -79.95) == "https://api.weather.gov/alerts/active?status=actual&point=36.1000,-79.9500"


class _Feed(http.server.BaseHTTPRequestHandler):
    """Serves whatever the test put in ``server.reply`` and keeps the request headers."""

    def do_GET(self) -> None:
        self.server.requests.append(dict(self.headers))  # type: ignore[attr-defined]
        status, ctype, body = self.server.reply  # type: ignore[attr-defined]
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def feed_server() -> Iterator[http.server.ThreadingHTTPServer]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Feed)
    server.daemon_threads = True
    server.requests = []  # type: ignore[attr-defined]
    server.reply = (200, "application/geo+json", ZONE.read_bytes())  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join(5)


def _url(server: http.server.ThreadingHTTPServer) -> str:
    host, port = server.server_address[:2]
    return f"http://{host}:{port}/alerts/active?status=actual&point=36.1000,-79.9500"


def test_fetch_over_loopback_sends_a_user_agent(feed_server):
    feed = asyncio.run(fetch_alerts(_url(feed_server), user_agent="homegrid-test (me@example.test)"))
    assert [a.id for a in feed.alerts] == [WATCH_ID]
    (headers,) = feed_server.requests
    assert headers["User-Agent"] == "homegrid-test (me@example.test)"
    assert "application/geo+json" in headers["Accept"]


def test_fetch_errors_are_feed_errors(feed_server):
    url = _url(feed_server)
    problem = {"title": "Service Unavailable", "detail": "The upstream alert service is down", "status": 503}
    feed_server.reply = (503, "application/problem+json", json.dumps(problem).encode())
    with pytest.raises(FeedError, match=r"HTTP 503 .*The upstream alert service is down"):
        asyncio.run(fetch_alerts(url))
    feed_server.reply = (200, "text/html", b"<html>maintenance</html>")
    with pytest.raises(FeedError, match="not JSON"):
        asyncio.run(fetch_alerts(url))
    with pytest.raises(FeedError, match="User-Agent"):
        asyncio.run(fetch_alerts(url, user_agent=" "))
    host, port = feed_server.server_address[:2]
    feed_server.shutdown()
    feed_server.server_close()
    with pytest.raises(FeedError, match="cannot reach the alert feed"):
        asyncio.run(fetch_alerts(f"http://{host}:{port}/alerts"))


def test_alert_source_reads_urls_paths_and_file_urls(feed_server):
    assert asyncio.run(AlertSource(_url(feed_server)).read()).alerts[0].id == WATCH_ID
    assert asyncio.run(AlertSource(str(ZONE)).read()).alerts[0].id == WATCH_ID
    assert asyncio.run(AlertSource(f"file://{EMPTY}").read()).alerts == ()


# -- which alerts qualify -----------------------------------------------------------------------------------


def test_qualifying_rules_on_the_published_watch():
    alerts = watch_alerts()
    policy = StormPolicy()
    assert [a.id for a in qualifying_alerts(alerts, DURING, policy)] == [WATCH_ID]  # severity Severe
    assert qualifying_alerts(alerts, EXPIRES, policy) == []  # the message has expired
    # the event is not in the default list: with no severity floor it does not count
    assert qualifying_alerts(alerts, DURING, StormPolicy(min_severity=None)) == []
    assert qualifying_alerts(alerts, DURING, StormPolicy(min_severity="Extreme")) == []
    assert qualifying_alerts(alerts, DURING, StormPolicy(events=("flood  WATCH",), min_severity=None))
    # lead time: counted from 24 h before the onset, not before
    assert qualifying_alerts(alerts, ONSET - timedelta(hours=23), policy)
    assert qualifying_alerts(alerts, ONSET - timedelta(hours=25), policy) == []
    assert qualifying_alerts(alerts, ONSET - timedelta(hours=25), StormPolicy(lead_h=26))


@pytest.mark.parametrize("change", [
    {"status": "Test"}, {"status": "Exercise"}, {"message_type": "Cancel"}, {"message_type": "Ack"},
    {"vtec": ("/O.CAN.KPQR.FA.A.0004.000000T0000Z-191222T1800Z/",)},
    {"vtec": ("/O.EXP.KPQR.FA.A.0004.000000T0000Z-191222T1800Z/",)},
])
def test_messages_that_do_not_call_for_storm_mode(change):
    (a,) = watch_alerts()
    assert qualifying_alerts([a], DURING, StormPolicy())
    assert qualifying_alerts([dataclasses.replace(a, **change)], DURING, StormPolicy()) == []


def test_a_cancel_or_a_later_message_ends_the_alert_it_references():
    assert qualifying_alerts([*watch_alerts(), *cancel_alerts()], CANCELLED_AT, StormPolicy()) == []
    (a,) = watch_alerts()
    newer = dataclasses.replace(a, id="newer", references=(a.id,), severity="Moderate")
    assert qualifying_alerts([a, newer], DURING, StormPolicy()) == []  # downgraded: the old one no longer counts


# -- the decision -------------------------------------------------------------------------------------------


def run(steps, policy: StormPolicy | None = None, state: StormState | None = None):
    """Apply (alerts, now, reserve read) steps; writes succeed and are what the next read returns unless given."""
    policy = policy or StormPolicy()
    state = state or StormState()
    out = []
    for alerts, now, reserve in steps:
        d = decide(alerts, now, state, policy, reserve)
        state = d.state
        out.append(d)
    return out


def test_a_storm_raises_the_reserve_and_restores_it_after_the_hold():
    w, c = watch_alerts(), cancel_alerts()
    hold = CANCELLED_AT + timedelta(hours=2)
    d = run([
        (w, DURING, 20.0),
        (w, DURING + timedelta(minutes=5), 100.0),
        (c, CANCELLED_AT, 100.0),
        (c, hold - timedelta(minutes=1), 100.0),
        (c, hold + timedelta(minutes=1), 100.0),
        ([], hold + timedelta(minutes=6), 20.0),
    ])
    assert d[0].reserve == 100.0 and d[0].storm and d[0].state.saved_reserve == 20.0
    assert "Flood Watch" in d[0].reason and "20 % -> 100 %" in d[0].reason
    assert [m.id for m in d[0].alerts] == [WATCH_ID]
    assert d[1].reserve is None and d[1].state.applied_reserve == 100.0
    assert d[2].reserve is None and d[2].storm and d[2].state.clear_since == CANCELLED_AT
    assert d[3].storm and "holding until" in d[3].reason
    assert d[4].reserve == 20.0 and not d[4].storm and "restoring the reserve to 20 %" in d[4].reason
    assert d[4].state == StormState()  # nothing left to remember
    assert d[5].reserve is None and not d[5].storm


def test_an_unreadable_feed_keeps_known_alerts_until_the_hazard_ends():
    w = watch_alerts()
    after_expiry = EXPIRES + timedelta(hours=1)  # the message expired, but nobody could tell us more
    d = run([
        (w, DURING, 20.0),
        (None, after_expiry, 100.0),
        (None, ENDS + timedelta(minutes=30), 100.0),
        (None, ENDS + timedelta(hours=2, minutes=1), 100.0),
    ])
    assert d[1].storm and d[1].reserve is None and [m.id for m in d[1].alerts] == [WATCH_ID]
    assert d[2].storm and d[2].state.clear_since == ENDS  # ended at its own end, then the hold
    assert d[3].reserve == 20.0 and not d[3].storm
    # a feed that was read and has no alert ends it (at the message's expiry, already past)
    d = run([(w, DURING, 20.0), ([], after_expiry, 100.0)])
    assert d[1].state.clear_since == EXPIRES and d[1].storm


def test_the_owners_hand_change_during_a_storm_is_kept_and_not_restored_over():
    w, c = watch_alerts(), cancel_alerts()
    d = run([
        (w, DURING, 20.0),
        (w, DURING + timedelta(minutes=1), 100.0),
        (w, DURING + timedelta(minutes=2), 60.0),  # the owner, in the Tesla app
        (w, DURING + timedelta(minutes=3), 60.0),
        (c, CANCELLED_AT, 60.0),
        (c, CANCELLED_AT + timedelta(hours=3), 60.0),
    ], StormPolicy(hold_h=1))
    assert d[2].reserve is None and d[2].state.owner_override and "changed by hand to 60 %" in d[2].reason
    assert all(x.reserve is None for x in d[2:])  # never raised again, never restored
    assert not d[-1].storm and "keeping the reserve set by hand" in d[-1].reason
    # a change first seen when the storm ends is kept as well
    d = run([(w, DURING, 20.0), (w, DURING + timedelta(minutes=1), 100.0),
             ([], EXPIRES + timedelta(hours=3), 35.0)])
    assert d[-1].reserve is None and not d[-1].storm and "keeping the reserve set by hand (35 %)" in d[-1].reason


def test_a_capped_or_slow_device_is_not_taken_for_the_owner():
    w = watch_alerts()
    policy = StormPolicy(settle_s=300, hold_h=0)
    d = run([
        (w, DURING, 20.0),
        (w, DURING + timedelta(seconds=60), 20.0),  # the cloud has not applied it yet
        (w, DURING + timedelta(seconds=400), 80.0),  # Tesla capped it at 80 %
        (w, DURING + timedelta(seconds=500), 80.0),
        ([], DURING + timedelta(seconds=600), 80.0),
    ], policy)
    assert d[1].state.applied_reserve is None and not d[1].state.owner_override
    assert d[2].state.applied_reserve == 80.0 and not d[2].state.owner_override
    assert d[4].reserve == 20.0  # restored: the 80 % was the device's doing


def test_a_reserve_already_at_the_target_is_left_alone_and_not_restored():
    w = watch_alerts()
    d = run([(w, DURING, 100.0), ([], DURING + timedelta(hours=1), 100.0)], StormPolicy(hold_h=0))
    assert d[0].storm and d[0].reserve is None and "already 100 %" in d[0].reason
    assert not d[1].storm and d[1].reserve is None


def test_storm_waits_when_the_reserve_cannot_be_read():
    d = decide(watch_alerts(), DURING, StormState(), StormPolicy(), None)
    assert d.reserve is None and not d.storm and "cannot be read" in d.reason
    assert not d.state.active and [m.id for m in d.state.alerts] == [WATCH_ID]


def test_the_owners_switch():
    w = watch_alerts()
    later = DURING + timedelta(hours=1)
    on = StormState(manual=True, manual_until=later)
    d = run([([], DURING, 20.0), ([], later, 100.0)], state=on)
    assert d[0].reserve == 100.0 and "switched on by hand" in d[0].reason
    assert d[1].reserve == 20.0 and not d[1].storm and d[1].state.manual is None  # lapsed: off at once, no hold
    off = StormState(manual=False, manual_until=later)
    d = run([(w, DURING, 20.0), (w, later, 20.0)], state=off)
    assert d[0].reserve is None and not d[0].storm and "switched off by hand" in d[0].reason
    assert d[1].reserve == 100.0  # the switch lapsed while the alert is still on


def test_dismissed_alerts_and_their_updates_stay_dismissed_but_a_new_alert_counts():
    (a,) = watch_alerts()
    dismissed = StormState(dismissed=(a.id,))
    update = dataclasses.replace(a, id="update-1", references=(a.id,))
    fresh = dataclasses.replace(a, id="another-storm", references=())
    second = dataclasses.replace(a, id="update-2", references=("update-1",))
    assert not decide([second, update, a], DURING, dismissed, StormPolicy(), 20.0).storm  # chain in any order
    d = run([([a], DURING, 20.0), ([update], DURING + timedelta(hours=1), 20.0),
             ([update, fresh], DURING + timedelta(hours=2), 20.0)], state=dismissed)
    assert not d[0].storm and not d[1].storm
    assert d[1].state.dismissed == ("update-1",)  # the chain is followed; the old id left the feed
    assert d[2].storm and d[2].reserve == 100.0 and [m.id for m in d[2].alerts] == ["another-storm"]


def test_a_write_interrupted_by_a_restart_is_sent_again():
    state = StormState(active=True, saved_reserve=20.0, set_reserve=100.0, set_at=DURING, pending=100.0)
    d = decide(watch_alerts(), DURING + timedelta(minutes=1), state, StormPolicy(), 20.0)
    assert d.reserve == 100.0 and d.state.pending is None and d.state.saved_reserve == 20.0
    d = decide(watch_alerts(), DURING + timedelta(minutes=1), state, StormPolicy(), 100.0)  # it had gone through
    assert d.reserve is None and d.storm and d.state.pending is None


def test_policy_checks_its_values():
    with pytest.raises(ValueError, match="reserve_percent"):
        StormPolicy(reserve_percent=120)
    with pytest.raises(ValueError, match="min_severity"):
        StormPolicy(min_severity="Dire")
    with pytest.raises(ValueError, match="hold_h"):
        StormPolicy(hold_h=-1)


# -- the state file -----------------------------------------------------------------------------------------


def test_state_round_trips_and_is_written_atomically(tmp_path):
    d = decide(watch_alerts(), DURING, StormState(manual=None), StormPolicy(), 20.0)
    path = tmp_path / "sub" / "storm.json"
    save_state(path, d.state)
    assert load_state(path) == d.state
    assert json.loads(path.read_text())["saved_reserve_percent"] == 20.0
    assert sorted(p.name for p in path.parent.iterdir()) == ["storm.json"]  # no temporary file left
    assert load_state(tmp_path / "missing.json") == StormState()
    path.write_text('{"version": 1, "saved_reserve_percent": "lots"}')
    with pytest.raises(ValueError, match="saved_reserve_percent"):
        load_state(path)


class FakeReserve:
    """A ReserveControl that remembers what it was told and can be made to fail."""

    def __init__(self, percent: float | None = 20.0) -> None:
        self.percent = percent
        self.writes: list[float] = []
        self.fail: BaseException | None = None

    async def backup_reserve(self) -> float | None:
        return self.percent

    async def set_backup_reserve(self, percent: float) -> None:
        if self.fail is not None:
            raise self.fail
        self.writes.append(percent)
        self.percent = percent


class Crash(BaseException):
    """The process dies in the middle of a write."""


def test_the_watch_survives_a_failed_write_and_a_restart(tmp_path):
    path = tmp_path / "storm.json"
    clock = [DURING]
    control = FakeReserve(20.0)
    watch = StormWatch(control, path, clock=lambda: clock[0])
    watch.update_alerts(load_alerts(ZONE))
    control.fail = DeviceError("gateway refused the backup reserve")
    d = asyncio.run(watch.evaluate())
    assert d.reserve == 100.0 and control.writes == [] and not watch.state.active
    assert "refused" in watch.device_error and "retrying" in watch.reason
    assert load_state(path).pending is None and not load_state(path).active

    control.fail = Crash()  # the hub dies between saving its intent and the write
    with pytest.raises(Crash):
        asyncio.run(watch.evaluate())
    on_disk = load_state(path)
    assert on_disk.active and on_disk.saved_reserve == 20.0 and on_disk.pending == 100.0

    control = FakeReserve(20.0)  # restarted: the gateway still has 20 %
    watch = StormWatch(control, path, clock=lambda: clock[0])
    asyncio.run(watch.evaluate())
    assert control.writes == [100.0] and watch.status["storm"] and load_state(path).pending is None

    watch = StormWatch(control, path, clock=lambda: clock[0])  # and again, hours later, all clear
    watch.update_alerts(load_alerts(EMPTY))
    clock[0] = EXPIRES + timedelta(hours=3)
    asyncio.run(watch.evaluate())
    assert control.writes == [100.0, 20.0] and not watch.status["storm"]
    assert load_state(path) == StormState()


def test_a_corrupt_state_file_is_moved_aside(tmp_path):
    path = tmp_path / "storm.json"
    path.write_text("{not json")
    watch = StormWatch(FakeReserve(), path)
    assert watch.state == StormState()
    assert "not a storm-mode state file" in watch.status["problem"]
    assert (tmp_path / "storm.json.corrupt").read_text() == "{not json"


def test_a_feed_failure_is_reported_and_known_alerts_stay(tmp_path, feed_server):
    clock = [DURING]
    control = FakeReserve(20.0)
    watch = StormWatch(control, tmp_path / "storm.json", StormPolicy(hold_h=0),
                       source=AlertSource(_url(feed_server), user_agent="homegrid-test"), clock=lambda: clock[0])
    asyncio.run(watch.step())
    assert control.writes == [100.0] and watch.status["feed"]["ok"]
    feed_server.reply = (500, "text/plain", b"oops")
    clock[0] = EXPIRES + timedelta(hours=1)
    asyncio.run(watch.step())
    status = watch.status
    assert status["storm"] and control.writes == [100.0]
    assert "HTTP 500" in status["feed"]["error"] and not status["feed"]["ok"]
    feed_server.reply = (200, "application/geo+json", EMPTY.read_bytes())
    asyncio.run(watch.step())
    assert control.writes == [100.0, 20.0] and not watch.status["storm"]


def test_the_switch_from_another_thread_wakes_the_running_watch(tmp_path):
    control = FakeReserve(20.0)
    watch = StormWatch(control, tmp_path / "storm.json")

    async def main() -> None:
        stop = asyncio.Event()
        task = asyncio.create_task(watch.run(stop, interval_s=3600))
        await wait_for_async(lambda: watch.last_decision is not None, timeout=5, interval=0.01, what="the first step")
        assert control.writes == []
        threading.Thread(target=watch.set_manual, args=(True,)).start()
        await wait_for_async(lambda: control.writes, timeout=5, interval=0.01,
                             what="a reserve written after the switch")
        stop.set()
        await asyncio.wait_for(task, 5)

    asyncio.run(main())
    assert control.writes == [100.0] and watch.status["manual"] is True and watch.status["storm"]
    watch.set_manual(False)  # dismiss: back to automatic, and nothing calls for storm mode
    asyncio.run(watch.evaluate())
    assert control.writes == [100.0, 20.0] and watch.status["manual"] is None


# -- the virtual home ---------------------------------------------------------------------------------------


NIGHT = datetime(2025, 1, 15, 3, 0, tzinfo=UTC)  # 22:00 in New York: no sun, the battery carries the home


def test_virtual_reserve_changes_what_the_battery_keeps():
    config = Config(virtual=VirtualHomeConfig(outages_per_year=0))
    calm, storm = VirtualHome(config, start=NIGHT), VirtualHome(config, start=NIGHT)
    control = VirtualControl(storm)
    assert asyncio.run(control.backup_reserve()) == pytest.approx(20.0)
    asyncio.run(control.set_backup_reserve(100.0))
    assert asyncio.run(control.backup_reserve()) == pytest.approx(100.0)
    end = NIGHT + timedelta(hours=2)
    f_calm, f_storm = calm.simulate(end, 60), storm.simulate(end, 60)
    assert f_calm.columns["battery_power"].max() > 100  # discharging into the home
    # below the new reserve: it stops discharging and refills from the grid at its grid-charge rate
    v = config.virtual
    assert f_storm.columns["battery_power"].max() <= 0
    assert np.median(f_storm.columns["battery_power"]) == pytest.approx(-v.battery_grid_charge_kw * 1000.0)
    gained = 2 * v.battery_grid_charge_kw * np.sqrt(v.battery_round_trip) / v.battery_kwh * 100.0  # [%]
    assert f_storm.columns["battery_soc"][-1] == pytest.approx(60.0 + gained, abs=0.5)
    assert f_storm.columns["battery_reserve"][-1] == 100.0 and f_calm.columns["battery_reserve"][-1] == 20.0
    with pytest.raises(ValueError, match=r"0\.\.100"):
        control.write(101)


def test_storm_watch_drives_the_virtual_home_end_to_end(tmp_path):
    config = Config()
    home = VirtualHome(config, clock=lambda: NIGHT, start=NIGHT)
    clock = [DURING]
    watch = StormWatch(VirtualControl(home), tmp_path / "storm.json", StormPolicy(hold_h=0),
                       source=AlertSource(str(ZONE)), clock=lambda: clock[0])
    asyncio.run(watch.step())
    assert asyncio.run(home.poll()).values["battery_reserve"] == 100.0
    watch.source = AlertSource(str(CANCEL))
    clock[0] = CANCELLED_AT
    asyncio.run(watch.step())
    assert asyncio.run(home.poll()).values["battery_reserve"] == 20.0 and not watch.status["storm"]


# -- the Powerwall, through real pypowerwall ----------------------------------------------------------------


def test_scales():
    assert gateway_to_app(100) == 100 and gateway_to_app(5) == 0 and gateway_to_app(2) == 0
    assert gateway_to_app(24) == pytest.approx(20.0)
    for app in (0, 16, 50, 80, 100):
        assert gateway_to_app(app_to_gateway(app)) == pytest.approx(app)


PASSWORD = "Xq7-storm-Zz"


@pytest.fixture(scope="module")
def sim():
    with Simulator() as s:
        yield s


@pytest.fixture
def gateway(sim: Simulator) -> SimulatedGateway:
    return sim.add_gateway(password=PASSWORD)


@pytest.fixture
def client(gateway: SimulatedGateway, tmp_path) -> Iterator[PowerwallClient]:
    c = connect_gateway(gateway.address, PASSWORD, timeout_s=2.0, auth_dir=tmp_path / "auth")
    yield c
    c.close()


def _gateway_answers(monkeypatch, handler) -> list[dict]:
    """Make every simulated gateway answer POST /api/operation (after login) with ``handler(gateway, body)``."""
    posts: list[dict] = []
    original = SimulatedGateway._route

    def route(self, request):
        if request.path == "/api/operation" and request.method == "POST" and self._authorised(request):
            body = json.loads(request.body or b"{}")
            posts.append(body)
            return handler(self, body)
        return original(self, request)

    monkeypatch.setattr(SimulatedGateway, "_route", route)
    return posts


def test_local_mode_reads_the_gateway_scale_as_the_app_shows_it(client, gateway):
    control = PowerwallControl(client)
    assert asyncio.run(control.backup_reserve()) == pytest.approx(15.0 / 0.95)  # the gateway's 20 %
    assert not control.can_control  # local mode
    gateway.model.reserve_percent = 100.0
    assert asyncio.run(control.backup_reserve()) == 100.0


def test_local_mode_refusal_is_a_clear_device_error(client, gateway, monkeypatch):
    control = PowerwallControl(client)
    with pytest.raises(DeviceError, match=r"did not set the backup reserve to 100\.0 %") as err:
        asyncio.run(control.set_backup_reserve(100.0))  # the simulator, like a gateway, takes no POST here
    assert 'mode = "cloud"' in str(err.value) and PASSWORD not in str(err.value)
    posts = _gateway_answers(monkeypatch, lambda gw, body: _error(403, "Unable to POST to resource",
                                                                  "User does not have adequate access rights"))
    with pytest.raises(DeviceError, match="403 Unauthorized") as err:
        asyncio.run(control.set_backup_reserve(100.0))
    assert "installer login" in str(err.value)
    assert posts and posts[0]["backup_reserve_percent"] == 100.0
    assert gateway.model.reserve_percent == 20.0


def test_local_mode_write_when_the_gateway_accepts_it(client, gateway, monkeypatch):
    def accept(gw: SimulatedGateway, body: dict):
        gw.model.reserve_percent = float(body["backup_reserve_percent"])
        return _json(gw.model.operation())

    posts = _gateway_answers(monkeypatch, accept)
    control = PowerwallControl(client)
    asyncio.run(control.set_backup_reserve(20.0))
    # the app's 20 % goes out on the gateway's scale (24 %), with the mode pypowerwall back-fills for the overwrite
    assert posts == [{"backup_reserve_percent": pytest.approx(24.0), "real_mode": "self_consumption"}]
    assert gateway.model.reserve_percent == pytest.approx(24.0)
    assert asyncio.run(control.backup_reserve()) == pytest.approx(20.0)

    def ignore(gw: SimulatedGateway, body: dict):
        return _json(gw.model.operation())

    _gateway_answers(monkeypatch, ignore)
    with pytest.raises(DeviceError, match=r"accepted the backup reserve 100\.0 % but reports 20\.0 %"):
        asyncio.run(control.set_backup_reserve(100.0))


class FakeCloudClient:
    """A PowerwallClient in a cloud mode, as far as PowerwallControl sees it."""

    def __init__(self, mode: str = "cloud") -> None:
        self.mode = mode
        self.reserve_app = 15.0
        self.real_mode = "self_consumption"
        self.result: Any = "ok"
        self.said: list[str] = []
        self.levels: list[float] = []
        self.modes: list[str] = []

    def poll(self, api: str) -> Any:
        assert api == "/api/operation"
        return {"real_mode": self.real_mode, "backup_reserve_percent": app_to_gateway(self.reserve_app)}

    def call(self, fn):
        client = self

        class Powerwall:
            def set_reserve(self, level: float):
                client.levels.append(level)
                if client.result == "ok":
                    client.reserve_app = level
                    return {"set_backup_reserve_percent": {"backup_reserve_percent": level, "result": "Updated"}}
                return client.result

            def set_mode(self, mode: str):
                client.modes.append(mode)
                if client.result == "ok":
                    client.real_mode = mode
                    return {"set_operational_mode": {"real_mode": mode, "result": "Updated"}}
                return client.result

        return fn(Powerwall()), self.said


@pytest.mark.parametrize("mode", ["cloud", "fleetapi"])
def test_cloud_modes_take_the_app_scale(mode):
    fake = FakeCloudClient(mode)
    control = PowerwallControl(fake)
    assert control.can_control
    saved = asyncio.run(control.backup_reserve())
    assert saved == pytest.approx(15.0)  # read on the gateway's scale, given on the app's
    asyncio.run(control.set_backup_reserve(100.0))
    asyncio.run(control.set_backup_reserve(saved))  # restore what was read: the same app value goes back
    asyncio.run(control.set_backup_reserve(20.4))  # whole app percents
    assert fake.levels == [100.0, 15.0, 20.0]
    fake.result = {"set_backup_reserve_percent": {"result": "BatteryNotFound"}}
    with pytest.raises(DeviceError, match="BatteryNotFound"):
        asyncio.run(control.set_backup_reserve(100.0))
    fake.result, fake.said = None, ["Timeout error posting to https://fleet-api.example/backup"]
    with pytest.raises(DeviceError, match="Timeout error posting") as err:
        asyncio.run(control.set_backup_reserve(100.0))
    assert "cloud\"" not in str(err.value)  # the local-mode hint is for local mode only
    fake.result = {"error": "Vehicle/energy site unavailable"}
    with pytest.raises(DeviceError, match="unavailable"):
        asyncio.run(control.set_backup_reserve(100.0))
    with pytest.raises(ValueError, match=r"0\.\.100"):
        asyncio.run(control.set_backup_reserve(float("nan")))


def test_storm_watch_with_a_refusing_gateway_keeps_trying_and_says_why(client, tmp_path):
    watch = StormWatch(PowerwallControl(client), tmp_path / "storm.json", clock=lambda: DURING)
    watch.update_alerts(load_alerts(ZONE))
    asyncio.run(watch.evaluate())  # never raises: the error is in the status
    status = watch.status
    assert not status["storm"] and "did not set the backup reserve" in status["device_error"]
    assert status["saved_reserve_percent"] is None and [a["id"] for a in status["alerts"]] == [WATCH_ID]


# -- the operation mode and the owner's settings, through real pypowerwall -----------------------------------


def settings_app(control, data_dir: Path) -> TestClient:
    app = FastAPI()
    add_settings_routes(app, control)
    return behind_the_door(app, data_dir)


def test_local_mode_reads_the_settings_and_says_why_it_cannot_change_them(client, gateway, tmp_path):
    api = settings_app(PowerwallControl(client), tmp_path)
    now = api.get("/api/v1/settings").json()
    assert now["battery_reserve"] == pytest.approx(15.0 / 0.95) and now["operation_mode"] == "self_consumption"
    assert not now["can_control"] and 'mode = "cloud"' in now["why_not"]
    assert [m["mode"] for m in now["modes"]] == ["self_consumption", "autonomous", "backup"]
    r = api.post("/api/v1/settings", json={"operation_mode": "backup"})
    assert r.status_code == 502 and "did not set the operation mode to backup" in r.text and PASSWORD not in r.text
    assert gateway.model.mode == "self_consumption"


def test_local_mode_mode_change_when_the_gateway_accepts_it(client, gateway, monkeypatch):
    def accept(gw: SimulatedGateway, body: dict):
        gw.model.mode = body["real_mode"]
        return _json(gw.model.operation())

    posts = _gateway_answers(monkeypatch, accept)
    control = PowerwallControl(client)
    asyncio.run(control.set_operation_mode("backup"))
    # pypowerwall back-fills the reserve on the gateway scale for the full overwrite
    assert posts == [{"real_mode": "backup", "backup_reserve_percent": 20.0}]
    assert asyncio.run(control.operation_mode()) == "backup"

    _gateway_answers(monkeypatch, lambda gw, body: _json(gw.model.operation()))  # says yes, changes nothing
    with pytest.raises(DeviceError, match="accepted the operation mode self_consumption but reports backup"):
        asyncio.run(control.set_operation_mode("self_consumption"))
