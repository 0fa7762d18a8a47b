"""The HTTP API over a real store."""

import asyncio
import json
from datetime import date

import pytest
from fastapi.testclient import TestClient

from homegrid.api.app import create_app
from homegrid.api.context import INLINE_DAYS
from homegrid.hub.queries import Queries
from homegrid.timezones import local_day_bounds

from .conftest import NEW_YORK, steady_frame
from .energy_reply import points as points_of


@pytest.fixture
def client(recorder, store):
    a, _ = local_day_bounds(date(2025, 6, 1), NEW_YORK)
    f = steady_frame(a, 2 * 1440 + 1, solar_power=1000, home_power=3000, grid_power=2000, battery_soc=55,
                     grid_status=1)
    recorder.ingest_bulk([f])
    with TestClient(create_app(Queries(store, NEW_YORK), health=lambda: {"device": "test"})) as c:
        yield c


def test_live_returns_newest_reading_in_glossary_names(client):
    body = client.get("/api/v1/live").json()
    assert body["values"]["home_power"] == 3000
    assert body["values"]["grid_status"] == "connected"
    assert body["units"]["home_power"] == "W"
    assert body["time"].startswith("2025-06-03T04:00:00")
    assert body["health"] == {"device": "test"}


@pytest.mark.parametrize(("step", "points"), [("minute", 1440), ("hour", 24), ("day", 1)])
def test_energy_steps(client, step, points):
    body = client.get("/api/v1/energy", params={"from": "2025-06-01", "to": "2025-06-01", "step": step}).json()
    assert len(body["start"]) == points and body["partial_from"] == points
    assert all(len(body["values"][f]) == points for f in body["fields"])
    assert body["values"]["home_w"][0] == pytest.approx(3000)
    assert body["values"]["soc_mean"][0] == pytest.approx(55)
    assert sum(body["values"]["solar_to_home"]) == pytest.approx(24_000, abs=points * 0.0005)  # each to the mWh


def test_energy_day_labels_are_local_dates(client):
    body = client.get("/api/v1/energy", params={"from": "2025-06-01", "to": "2025-06-02", "step": "day"}).json()
    assert body["start"] == ["2025-06-01", "2025-06-02"]
    assert body["timezone"] == "America/New_York"


def test_energy_rejects_bad_input(client):
    assert client.get("/api/v1/energy", params={"from": "junk", "to": "2025-06-01"}).status_code == 422
    assert client.get("/api/v1/energy", params={"from": "2025-06-01T00:00:00", "to": "2025-06-02"}).status_code == 422
    r = client.get("/api/v1/energy", params={"from": "2020-01-01", "to": "2025-06-01", "step": "minute"})
    assert r.status_code == 422


def test_report_matches_cli_keys(client):
    body = client.get("/api/v1/report", params={"from": "2025-06-01", "to": "2025-06-02"}).json()
    assert set(body) >= {"energy_wh", "flows_wh", "ev_sources_wh", "self_powered_percent"}
    assert body["energy_wh"]["home"] == pytest.approx(3000 * 48)
    assert body["self_powered_percent"] == pytest.approx(100 / 3, abs=0.01)


def _on_the_loop() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


def test_small_replies_are_worked_out_on_the_event_loop_and_long_spans_in_a_thread(recorder, store, monkeypatch):
    """A day's or a month's report and outages take a millisecond or two: handing them to a request thread and
    back (and the GIL's turns between the two) cost more, so they run on the event loop; a longer span goes to a
    thread, so that the loop never waits long for it."""
    ran: list[tuple[str, bool]] = []
    report = Queries.report

    def reported(self: Queries, first: date, last: date) -> dict:
        ran.append(("report", _on_the_loop()))
        return report(self, first, last)

    monkeypatch.setattr(Queries, "report", reported)

    def outages(start_ms: int, end_ms: int) -> dict:
        ran.append(("outages", _on_the_loop()))
        return {"events": []}

    with TestClient(create_app(Queries(store, NEW_YORK), outages=outages)) as c:
        for first, last in [("2025-06-01", "2025-06-01"), ("2025-05-01", "2025-07-01"), ("2025-01-01", "2025-12-31")]:
            for path in ("/api/v1/report", "/api/v1/outages"):
                assert c.get(path, params={"from": first, "to": last}).status_code == 200
    assert ran == [("report", True), ("outages", True)] * 2 + [("report", False), ("outages", False)]
    assert (date(2025, 7, 1) - date(2025, 5, 1)).days < INLINE_DAYS <= 364


def test_openapi_documents_the_endpoints(client):
    paths = client.get("/openapi.json").json()["paths"]
    assert {"/api/v1/live", "/api/v1/energy", "/api/v1/report"} <= set(paths)


def test_dashboard_page_is_served(client):
    r = client.get("/")
    assert r.status_code == 200 and "homegrid" in r.text


def test_the_bucket_still_filling_averages_over_its_elapsed_time(recorder, store):
    a, _ = local_day_bounds(date(2025, 6, 1), NEW_YORK)
    recorder.ingest_bulk([steady_frame(a, 6 * 60 + 31, home_power=2000, grid_power=2000)])  # 00:00 to 06:30
    with TestClient(create_app(Queries(store, NEW_YORK))) as c:
        day = c.get("/api/v1/energy", params={"from": "2025-06-01", "to": "2025-06-01", "step": "day"}).json()
        hours = c.get("/api/v1/energy", params={"from": "2025-06-01", "to": "2025-06-01", "step": "hour"}).json()
    assert points_of(day)[0]["home_w"] == pytest.approx(2000)
    assert [p["home_w"] for p in points_of(hours)][:7] == pytest.approx([2000] * 7)


def test_export_csv_and_the_live_stream(client, tmp_path):
    from homegrid.readings.csvfile import read_csv

    reply = client.get("/api/v1/export.csv", params={"from": "2025-06-01", "to": "2025-06-02"})
    assert reply.status_code == 200 and reply.headers["content-type"].startswith("text/csv")
    assert "attachment" in reply.headers["content-disposition"]
    path = tmp_path / "x.csv"
    path.write_text(reply.text)
    frame = read_csv(path)
    assert len(frame) == 2 * 1440 and reply.text.count("time,") == 1
    assert frame.columns["home_power"][0] == 3000
    assert client.get("/api/v1/export.csv", params={"from": "2025-06-03", "to": "2025-06-01"}).status_code == 422
    with client.stream("GET", "/api/v1/stream", params={"max_events": 1}) as stream:
        body = "".join(stream.iter_text())
    assert body.startswith("event: live\ndata: ")
    assert json.loads(body.split("data: ", 1)[1])["values"]["home_power"] == 3000


def test_large_replies_are_gzipped_when_asked_and_the_stream_is_not(client):
    day = client.get("/api/v1/energy", params={"from": "2025-06-01", "to": "2025-06-01", "step": "minute"},
                     headers={"Accept-Encoding": "gzip"})
    assert day.status_code == 200 and day.headers["content-encoding"] == "gzip"
    assert int(day.headers["content-length"]) < len(day.content) / 3  # decoded by the client
    plain = client.get("/api/v1/energy", params={"from": "2025-06-01", "to": "2025-06-01", "step": "minute"},
                       headers={"Accept-Encoding": "identity"})
    assert "content-encoding" not in plain.headers and plain.json() == day.json()
    with client.stream("GET", "/api/v1/stream", params={"max_events": 1}, headers={"Accept-Encoding": "gzip"}) as s:
        assert "content-encoding" not in s.headers  # events must reach the browser as they happen
        assert "".join(s.iter_text()).startswith("event: live")


def test_streams_share_one_event_per_reading(recorder, store):
    """50 browsers watching must not cost 50 health reports a second: the event is built once per reading."""
    from homegrid.api.app import create_app
    from homegrid.hub.queries import Queries

    calls = []
    now = ["2025-06-01T10:00:00+00:00"]

    def health() -> dict:
        calls.append(1)
        return {"polls": len(calls)}

    app = create_app(Queries(store, recorder.tz), health=health,
                     live=lambda: (now[0], {"home_power": 500.0}, {"home_power": now[0]}))
    client = TestClient(app)

    def one_event() -> dict:
        with client.stream("GET", "/api/v1/stream", params={"max_events": 1}) as s:
            return json.loads("".join(s.iter_text()).split("data: ", 1)[1])

    first = [one_event() for _ in range(5)]
    assert len(calls) == 1 and all(e == first[0] for e in first)
    now[0] = "2025-06-01T10:00:05+00:00"
    assert one_event()["time"] == now[0] and len(calls) == 2
