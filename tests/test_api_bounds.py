"""Requests cannot read files outside the bundle, cost more than the stored data, or answer 500."""

from __future__ import annotations

import asyncio
import json
from datetime import date
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from homegrid.api.app import create_app
from homegrid.api.broadcast import KEEPALIVE_EVENT, LiveBroadcast
from homegrid.hub.queries import Queries
from homegrid.timezones import local_day_bounds

from .conftest import NEW_YORK, steady_frame
from .waiting import wait_for_async


@pytest.fixture
def app_parts(recorder, store):
    a, _ = local_day_bounds(date(2025, 6, 1), NEW_YORK)
    recorder.ingest_bulk([steady_frame(a, 2 * 1440 + 1, solar_power=1000, home_power=3000, grid_power=2000,
                                       battery_soc=55, grid_status=1)])
    asked: list[tuple[int, int]] = []

    def outages(start_ms: int, end_ms: int) -> dict:
        asked.append((start_ms, end_ms))
        return {"timezone": NEW_YORK.key, "events": [], "months": []}

    app = create_app(Queries(store, NEW_YORK), health=lambda: {}, outages=outages)
    return app, store, asked


@pytest.fixture
def client(app_parts):
    with TestClient(app_parts[0]) as c:
        yield c


@pytest.mark.parametrize("path", [
    "/static//etc/hostname.json",
    "/static/%2Fetc%2Fhostname.json",
    "/static/..%2F..%2Fapi%2Fapp.py",
    "/static/../../pyproject.json",
    "/static/%2e%2e/%2e%2e/cli.js",
])
def test_static_serves_only_the_bundle(client, path):
    r = client.get(path)
    assert r.status_code == 404, path


def test_static_reads_no_file_outside_the_package(client, tmp_path):
    secret = tmp_path / "secret.json"
    secret.write_text('{"password": "hunter2"}')
    for path in (f"/static/{secret}", f"/static//{secret}", "/static/" + str(secret).replace("/", "%2F")):
        r = client.get(path)
        assert r.status_code == 404 and "hunter2" not in r.text


def test_static_cache_holds_only_bundle_files(app_parts, client, tmp_path):
    for i in range(200):
        p = tmp_path / f"f{i}.js"
        p.write_text("x" * 10_000)
        assert client.get(f"/static/{p}").status_code == 404
    assert client.get("/static/app.js").status_code == 200
    bundle = app_parts[0].state.static
    names = {Path(n).name for n in (Path(__file__).parents[1] / "homegrid" / "web" / "static").iterdir()}
    assert bundle.names <= names
    assert "app.js" in bundle.cached and bundle.cached <= bundle.names  # none of the 200 files outside


def test_export_of_all_dates_reads_only_the_stored_days(app_parts, client):
    _, store, _ = app_parts
    reads = []
    original = store.read_readings

    def counting(a: int, b: int):
        reads.append((a, b))
        return original(a, b)

    store.read_readings = counting  # type: ignore[method-assign]
    r = client.get("/api/v1/export.csv", params={"from": "0001-01-01", "to": "9999-12-31"})
    assert r.status_code == 200
    assert len(r.text.splitlines()) == 2 * 1440 + 2  # header and every reading
    assert 1 <= len(reads) <= 4  # the stored days, not 3.6 million


@pytest.mark.parametrize("params", [
    {"from": "0001-01-01", "to": "9999-12-31"},
    {"from": "9999-12-31", "to": "9999-12-31"},
    {"from": "2262-04-12", "to": "2262-04-12"},
    {"from": "1677-09-21", "to": "1677-09-22"},
])
@pytest.mark.parametrize("endpoint", ["/api/v1/report", "/api/v1/outages", "/api/v1/export.csv"])
def test_extreme_dates_answer_without_error(client, endpoint, params):
    r = client.get(endpoint, params=params)
    assert r.status_code == 200, r.text


@pytest.mark.parametrize("params", [
    {"from": "0001-01-01", "to": "9999-12-31", "step": "day"},
    {"from": "9999-12-31", "to": "9999-12-31", "step": "minute"},
    {"from": "2262-04-12", "to": "2262-04-12", "step": "hour"},
    {"from": "0001-01-01T00:00:00+14:00", "to": "0001-01-02T00:00:00+14:00"},
    {"from": "9999-12-31T23:00:00-12:00", "to": "9999-12-31T23:59:00-12:00"},
])
def test_energy_extreme_spans_are_422_or_200(client, params):
    assert client.get("/api/v1/energy", params=params).status_code in (200, 422)


def test_outages_span_is_cut_to_the_stored_data(app_parts, client):
    _, store, asked = app_parts
    client.get("/api/v1/outages", params={"from": "0001-01-01", "to": "9999-12-31"})
    first, last = store.time_range()
    assert asked[-1] == (first, last + 60_000)


def test_days_whose_raw_readings_were_pruned_still_answer(app_parts, client):
    """The minute rollups outlive the raw readings: the span is cut to them, not to the raw readings."""
    _, store, asked = app_parts
    a, _ = local_day_bounds(date(2025, 6, 2), NEW_YORK)
    store.prune_raw(a)
    day = client.get("/api/v1/energy", params={"from": "2025-06-01", "to": "2025-06-01", "step": "minute"}).json()
    assert len(day["start"]) == 1440
    client.get("/api/v1/outages", params={"from": "2025-06-01", "to": "2025-06-01"})
    assert asked[-1][0] == local_day_bounds(date(2025, 6, 1), NEW_YORK)[0]


@pytest.mark.parametrize("limit", ["99999999999999999999", "-1", "10001", "x", "1e3"])
def test_quarantine_limit_is_validated(client, limit):
    assert client.get("/api/v1/quarantine", params={"limit": limit}).status_code == 422


def test_quarantine_limit_in_range(client):
    assert client.get("/api/v1/quarantine", params={"limit": "10000"}).status_code == 200


def test_fifty_streams_share_one_watcher():
    """The newest reading is looked for once per check, however many streams are open."""
    looks = []
    builds = []
    now = ["t0"]

    def newest() -> str:
        looks.append(1)
        return now[0]

    def build() -> str:
        builds.append(now[0])
        return f"event: live\ndata: {now[0]}\n\n"

    async def run() -> list[list[str]]:
        cast = LiveBroadcast(newest, build, check_s=0.05, keepalive_s=10.0)

        async def watch() -> list[str]:
            return [e async for e in cast.events(max_events=2)]

        tasks = [asyncio.create_task(watch()) for _ in range(50)]
        await wait_for_async(lambda: cast.watchers == 50 and looks, timeout=5, interval=0.01, what="fifty watchers")
        quiet_looks = len(looks)
        await asyncio.sleep(0.5)  # on purpose: the checks made in a quiet half second are what is counted
        idle = len(looks) - quiet_looks  # ~10 checks in 0.5 s by the one loop, not 50 streams' worth
        assert idle <= 15, idle
        now[0] = "t1"
        out = await asyncio.gather(*tasks)
        await wait_for_async(lambda: cast.watchers == 0, timeout=5, interval=0.01,
                             what=lambda: f"{cast.watchers} watchers left")
        return out

    got = asyncio.run(run())
    assert all(g == ["event: live\ndata: t0\n\n", "event: live\ndata: t1\n\n"] for g in got)
    assert builds == ["t0", "t1"]


def test_a_quiet_stream_gets_keepalives():
    async def run() -> list[str]:
        cast = LiveBroadcast(lambda: "t0", lambda: "event: live\ndata: {}\n\n", check_s=0.01, keepalive_s=0.05)
        out = []
        async for e in cast.events():
            out.append(e)
            if len(out) == 3:
                break
        return out

    got = asyncio.run(run())
    assert got[0].startswith("event: live") and got[1:] == [KEEPALIVE_EVENT, KEEPALIVE_EVENT]


def test_stream_over_http_still_sends_the_newest_reading(client):
    with client.stream("GET", "/api/v1/stream", params={"max_events": 1}) as s:
        body = "".join(s.iter_text())
    event = json.loads(body.split("data: ", 1)[1])
    assert event["values"]["home_power"] == 3000


def test_exports_at_once_are_limited_and_their_slots_come_back(app_parts):
    import gc

    from fastapi import HTTPException

    from homegrid.api.app import EXPORTS_AT_ONCE

    app = app_parts[0]
    export = next(r.endpoint for r in app.routes if getattr(r, "path", "") == "/api/v1/export.csv")
    running = [export(from_=date(2025, 6, 1), to=date(2025, 6, 2)) for _ in range(EXPORTS_AT_ONCE)]
    with pytest.raises(HTTPException) as refused:
        export(from_=date(2025, 6, 1), to=date(2025, 6, 2))
    assert refused.value.status_code == 429 and refused.value.headers == {"Retry-After": "10"}
    del running  # streams never started, or dropped by a client that went away: their slots are given back
    gc.collect()
    assert export(from_=date(2025, 6, 1), to=date(2025, 6, 2)).media_type == "text/csv"


def test_every_json_route_is_serialized_by_pydantic_so_nan_is_null(app_parts, tmp_path):
    """A route that declares its return type is serialized by pydantic's core (NaN and infinity as null); one
    that does not goes through JSONResponse, which answers a NaN with a 500."""
    import typing

    from fastapi.routing import APIRoute
    from pydantic import TypeAdapter
    from starlette.responses import Response

    from homegrid.api.security import install_security, policy_for
    from homegrid.api.settings import add_settings_routes
    from homegrid.api.storm import add_storm_routes
    from homegrid.config import ServerConfig
    from homegrid.owner import OwnerKey

    app = app_parts[0]
    add_settings_routes(app, None)
    add_storm_routes(app, None)
    install_security(app, policy_for(ServerConfig(), OwnerKey(tmp_path), "127.0.0.1"))
    routes = [r for r in app.routes if isinstance(r, APIRoute)]
    assert len(routes) > 10
    for route in routes:
        returns = typing.get_type_hints(route.endpoint).get("return")
        if isinstance(returns, type) and issubclass(returns, Response):
            continue
        assert route.response_field is not None, f"{route.path} declares no return type"
    assert TypeAdapter(dict[str, typing.Any]).dump_json({"a": float("nan"), "b": [float("inf")]}) == \
        b'{"a":null,"b":[null]}'
