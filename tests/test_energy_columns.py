"""/api/v1/energy shaped for charts: one array per field and the time axis once, only the fields asked for, values
to their documented precision, NaN as null; replies about sealed periods kept (gzip-coded) with a strong ETag, 304
to a browser that has them, and never again once the store's sealed data change (issue 15)."""

from __future__ import annotations

import gzip
import json
from datetime import date

import numpy as np
import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from homegrid.api.app import create_app
from homegrid.api.body_cache import BodyCache, matches
from homegrid.api.energy import decimals
from homegrid.hub.queries import SERIES_FIELDS, Queries
from homegrid.timezones import local_day_bounds

from .conftest import NEW_YORK, steady_frame

DAY = {"from": "2025-06-01", "to": "2025-06-01"}
CHART = "solar_w,home_w,ev_w,soc_mean"


@pytest.fixture
def reads(store, monkeypatch) -> list[tuple[str, object]]:
    """The store's rollup reads, as (step or "days", columns asked for)."""
    seen: list[tuple[str, object]] = []
    rollup, days = store.read_rollup, store.read_days

    def read_rollup(step, a, b, columns=None):
        seen.append((step, columns))
        return rollup(step, a, b, columns)

    def read_days(a, b, columns=None):
        seen.append(("days", columns))
        return days(a, b, columns)

    monkeypatch.setattr(store, "read_rollup", read_rollup)
    monkeypatch.setattr(store, "read_days", read_days)
    return seen


@pytest.fixture
def client(recorder, store, reads):
    a, _ = local_day_bounds(date(2025, 6, 1), NEW_YORK)
    frame = steady_frame(a, 2 * 1440 + 1, solar_power=1000, home_power=3000, grid_power=2000, battery_soc=55,
                         ev_power=700)
    frame.columns["battery_soc"][60:120] = np.nan  # 01:00 to 02:00 without a state of charge
    recorder.ingest_bulk([frame])
    reads.clear()  # the recorder's own
    with TestClient(create_app(Queries(store, NEW_YORK))) as c:
        yield c


def _sealed(monkeypatch, store, before: str | None, generation: list[int]) -> None:
    """The store says its data before the local date ``before`` are sealed, at ``generation[0]``."""
    at = None if before is None else local_day_bounds(date.fromisoformat(before), NEW_YORK)[0]
    monkeypatch.setattr(store, "sealed_before", lambda: at)
    monkeypatch.setattr(store, "generation", lambda: generation[0])


def test_a_day_of_minutes_is_one_array_per_field_asked_for(client, reads):
    body = client.get("/api/v1/energy", params={**DAY, "step": "minute", "fields": CHART}).json()
    assert list(body) == ["from", "to", "step", "timezone", "fields", "start", "partial_from", "values"]
    assert body["fields"] == list(body["values"]) == CHART.split(",")
    assert len(body["start"]) == 1440 and body["partial_from"] == 1440  # no "end": a minute ends 60 s on
    assert body["start"][:2] == ["2025-06-01T00:00:00-04:00", "2025-06-01T00:01:00-04:00"]
    assert all(len(v) == 1440 for v in body["values"].values())
    assert body["values"]["home_w"][0] == 3000 and body["values"]["ev_w"][0] == 700
    soc = body["values"]["soc_mean"]
    assert soc[58] == 55 and soc[60:120] == [None] * 60 and soc[120] == 55  # NaN is null
    # only the rollup columns the four fields are made of were read
    assert reads == [("minute", ["solar", "home", "ev", "soc_s", "soc_sum"])]
    reads.clear()
    days = client.get("/api/v1/energy", params={**DAY, "step": "month", "fields": "home,soc_mean"}).json()
    assert days["fields"] == ["home", "soc_mean"] and reads == [("days", ["home", "soc_s", "soc_sum"])]


def test_days_and_months_have_their_end(client):
    days = client.get("/api/v1/energy", params={"from": "2025-06-01", "to": "2025-06-02", "step": "day",
                                                "fields": "home"}).json()
    assert days["start"] == ["2025-06-01", "2025-06-02"]
    assert days["end"] == ["2025-06-02T00:00:00-04:00", "2025-06-03T00:00:00-04:00"]
    assert days["values"] == {"home": [72_000, 72_000]}
    month = client.get("/api/v1/energy", params={"from": "2025-06-01", "to": "2025-06-01", "step": "month",
                                                 "fields": "home,home"}).json()
    assert month["fields"] == ["home"] and month["start"] == ["2025-06"]
    assert month["end"] == ["2025-06-02T00:00:00-04:00"]  # the month as far as the span goes


def test_unknown_fields_are_422_naming_them(client):
    r = client.get("/api/v1/energy", params={**DAY, "fields": "home,sun_w,x"})
    assert r.status_code == 422
    assert "'sun_w', 'x'" in r.json()["detail"] and "solar_w" in r.json()["detail"]
    everything = client.get("/api/v1/energy", params={**DAY, "fields": " , "}).json()  # names none: all of them
    assert everything["fields"] == list(SERIES_FIELDS)


def test_values_are_given_to_their_documented_precision(client, store):
    body = client.get("/api/v1/energy", params={**DAY, "step": "hour"}).json()
    table, *_ = Queries(store, NEW_YORK).series("hour", *Queries(store, NEW_YORK).span("2025-06-01", "2025-06-01"))
    assert body["fields"] == list(SERIES_FIELDS)
    for field in SERIES_FIELDS:
        want = [None if np.isnan(v) else round(float(v), decimals(field)) for v in table.columns[field]]
        assert body["values"][field] == pytest.approx(want, abs=1e-12), field
    assert decimals("home_w") == 1 and decimals("home") == 3 and decimals("soc_mean") == 2
    assert decimals("covered_s") == 3


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(fields=st.lists(st.sampled_from(SERIES_FIELDS), min_size=1, max_size=6, unique=True),
       step=st.sampled_from(["minute", "hour", "day", "month"]))
def test_any_fields_are_those_of_all_fields(client, fields, step):
    """Reading only the columns the fields need gives the values that reading every column gives."""
    params = {"from": "2025-06-01", "to": "2025-06-02", "step": step}
    some = client.get("/api/v1/energy", params={**params, "fields": ",".join(fields)}).json()
    every = client.get("/api/v1/energy", params=params).json()
    assert some["fields"] == fields
    assert some["values"] == {f: every["values"][f] for f in fields}
    assert {k: v for k, v in some.items() if k not in ("fields", "values")} == {
        k: v for k, v in every.items() if k not in ("fields", "values")}


def test_sealed_days_are_kept_with_an_etag_and_answer_304(client, store, reads, monkeypatch):
    generation = [7]
    _sealed(monkeypatch, store, "2025-06-02", generation)
    params = {**DAY, "step": "minute", "fields": CHART}
    first = client.get("/api/v1/energy", params=params, headers={"Accept-Encoding": "gzip"})
    tag = first.headers["etag"]
    assert first.status_code == 200 and tag.startswith('"') and tag.endswith('-gzip"')
    assert first.headers["cache-control"] == "private, max-age=0, must-revalidate"
    assert first.headers["content-encoding"] == "gzip" and "Accept-Encoding" in first.headers["vary"]
    assert len(reads) == 1
    again = client.get("/api/v1/energy", params=params, headers={"Accept-Encoding": "gzip"})
    assert again.headers["etag"] == tag and again.content == first.content and len(reads) == 1  # kept
    plain = client.get("/api/v1/energy", params=params, headers={"Accept-Encoding": "identity"})
    assert "content-encoding" not in plain.headers and plain.json() == first.json() and len(reads) == 1
    assert plain.headers["etag"] == tag.replace("-gzip", "")  # another coding, another strong tag
    hard = client.get("/api/v1/energy", params=params, headers={"Accept-Encoding": "gzip", "Cache-Control": "no-cache"})
    assert hard.content == first.content and hard.headers["etag"] == tag and len(reads) == 2  # a hard reload: again
    reads.pop()
    # a browser holding either coding is told it still has the reply, with no body
    for held in (tag, plain.headers["etag"], f"W/{tag}", f'"other", {tag}'):
        r = client.get("/api/v1/energy", params=params, headers={"If-None-Match": held, "Accept-Encoding": "gzip"})
        assert r.status_code == 304 and r.content == b"" and r.headers["etag"] == tag, held
    assert len(reads) == 1
    # other fields are another reply
    other = client.get("/api/v1/energy", params={**params, "fields": "home"}, headers={"If-None-Match": tag})
    assert other.status_code == 200 and other.headers["etag"] not in (tag, plain.headers["etag"])

    generation[0] += 1  # a late reading in a sealed day: every reply about sealed days is made again
    reads.clear()
    changed = client.get("/api/v1/energy", params=params, headers={"If-None-Match": tag, "Accept-Encoding": "gzip"})
    assert changed.status_code == 200 and changed.headers["etag"] != tag and len(reads) == 1


def test_a_day_the_store_sealed_is_kept_until_a_late_reading_changes_it(client, store, recorder):
    """No stand-in: the SQLite store seals the days, and a late reading in one raises its generation."""
    params = {**DAY, "step": "hour", "fields": "home"}
    assert "etag" not in client.get("/api/v1/energy", params=params).headers  # nothing sealed yet
    store.seal(local_day_bounds(date(2025, 6, 3), NEW_YORK)[0])
    first = client.get("/api/v1/energy", params=params)
    assert first.headers["etag"] and first.json()["values"]["home"][0] == 3000
    assert client.get("/api/v1/energy", params=params, headers={"If-None-Match": first.headers["etag"]}
                      ).status_code == 304
    a, _ = local_day_bounds(date(2025, 6, 1), NEW_YORK)
    recorder.ingest_bulk([steady_frame(a, 61, home_power=1000, grid_power=1000, solar_power=0)])  # a correction
    late = client.get("/api/v1/energy", params=params, headers={"If-None-Match": first.headers["etag"]})
    assert late.status_code == 200 and late.headers["etag"] != first.headers["etag"]
    assert late.json()["values"]["home"][0] == pytest.approx(1000)


def test_spans_touching_unsealed_time_are_never_kept(client, store, reads, monkeypatch):
    _sealed(monkeypatch, store, "2025-06-02", [0])
    for _ in range(2):
        r = client.get("/api/v1/energy", params={"from": "2025-06-01", "to": "2025-06-02", "step": "hour"},
                       headers={"If-None-Match": "*"})
        assert r.status_code == 200 and "etag" not in r.headers and "cache-control" not in r.headers
        # a span ending inside a sealed hour's successor: its last bin reaches past the sealed time
        r = client.get("/api/v1/energy", params={"from": "2025-06-01", "to": "2025-06-02T00:30:00-04:00",
                                                 "step": "hour"})
        assert "etag" not in r.headers
    assert len(reads) == 4
    _sealed(monkeypatch, store, None, [0])  # nothing sealed
    assert "etag" not in client.get("/api/v1/energy", params={**DAY, "step": "day"}).headers


def test_a_kept_reply_is_gzipped_once_and_the_cache_counts_its_bytes(client, store, monkeypatch):
    _sealed(monkeypatch, store, "2025-06-02", [0])
    energy = next(route.endpoint.__self__ for route in client.app.routes
                  if getattr(route, "path", "") == "/api/v1/energy")
    for _ in range(2):
        with client.stream("GET", "/api/v1/energy", params={**DAY, "step": "minute"},
                           headers={"Accept-Encoding": "gzip"}) as r:
            wire = b"".join(r.iter_raw())
        decoded = gzip.decompress(wire)
        assert json.loads(decoded)["fields"] == list(SERIES_FIELDS)
        assert len(energy.bodies) == 1 and energy.bodies.size == len(wire) < len(decoded) / 4


def test_body_cache_drops_the_least_recently_used_past_its_bytes():
    cache = BodyCache(max_bytes=10)
    cache.put("a", b"aaaa")
    cache.put("b", b"bbbb")
    assert cache.get("a") == b"aaaa"  # now the most recent
    cache.put("c", b"cccc")
    assert cache.get("b") is None and cache.get("a") == b"aaaa" and cache.get("c") == b"cccc"
    assert cache.size == 8 and len(cache) == 2
    cache.put("big", b"x" * 11)  # larger than the whole cache: not kept, nothing dropped for it
    assert cache.get("big") is None and len(cache) == 2
    cache.put("a", b"aaaaaa")  # replaced: counted once
    assert cache.size == 10 and cache.get("c") == b"cccc"


def test_if_none_match_is_compared_weakly():
    assert matches('"abc"', "abc") and matches('W/"abc-gzip"', "abc") and matches('"x", "abc"', "abc")
    assert matches("*", "abc")
    assert not matches(None, "abc") and not matches("", "abc") and not matches('"abcd"', "abc")
