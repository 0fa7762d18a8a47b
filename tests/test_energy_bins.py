"""Local-day and local-month bins of /api/v1/energy: whole bins, 23- and 25-hour days as they are, months that add up
to their days, and the bin still going marked partial."""

from __future__ import annotations

from datetime import UTC, date, datetime

import numpy as np
import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from homegrid.api.app import create_app
from homegrid.energy.bins import group_rows
from homegrid.hub.queries import Queries
from homegrid.readings import to_ms
from homegrid.readings.rollup import MAX_COLUMNS, MIN_COLUMNS, ROLLUP_COLUMNS, SUM_COLUMNS, BucketTable
from homegrid.timezones import local_day_bounds

from .conftest import NEW_YORK, steady_frame
from .energy_reply import points

HOME_W = 1200.0  # a steady home [W]: every hour holds 1200 Wh


@st.composite
def keyed_rows(draw) -> tuple[BucketTable, list[str]]:
    sizes = draw(st.lists(st.integers(1, 5), min_size=1, max_size=6))
    keys = [f"k{i}" for i, n in enumerate(sizes) for _ in range(n)]
    n = len(keys)
    value = st.one_of(st.just(float("nan")), st.floats(0, 1e6))
    cols = {c: np.array(draw(st.lists(value, min_size=n, max_size=n))) for c in ROLLUP_COLUMNS}
    return BucketTable(np.arange(n, dtype=np.int64) * 1000, cols), keys


# a row is 40 drawn columns: on a loaded 2-core CI machine drawing ten took over a second (the health check failed)
@settings(suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(keyed_rows())
def test_grouped_rows_add_up_as_sql_does(data):
    table, keys = data
    merged, names = group_rows(table, keys)
    assert names == list(dict.fromkeys(keys))
    for j, name in enumerate(names):
        rows = np.array([k == name for k in keys])
        assert merged.start_ms[j] == table.start_ms[rows][0]
        for c in SUM_COLUMNS:
            part = table.columns[c][rows]
            want = np.nan if np.isnan(part).all() else np.nansum(part)
            assert merged.columns[c][j] == pytest.approx(want, nan_ok=True)
        for c in (*MIN_COLUMNS, *MAX_COLUMNS):
            part = table.columns[c][rows]
            pick = np.nanmin if c in MIN_COLUMNS else np.nanmax
            want = np.nan if np.isnan(part).all() else pick(part)
            assert merged.columns[c][j] == pytest.approx(want, nan_ok=True)


def test_grouping_refuses_keys_that_come_back():
    table = BucketTable(np.arange(3, dtype=np.int64), {"home": np.ones(3)})
    with pytest.raises(ValueError, match="adjacent"):
        group_rows(table, ["a", "b", "a"])
    with pytest.raises(ValueError, match="2 keys for 3 rows"):
        group_rows(table, ["a", "b"])


def _home(recorder, first: date, last: date, start_hour: int = 0) -> None:
    a = local_day_bounds(first, NEW_YORK)[0] + start_hour * 3_600_000
    b = local_day_bounds(last, NEW_YORK)[1]
    recorder.ingest_bulk([steady_frame(a, (b - a) // 60_000 + 1, home_power=HOME_W, grid_power=HOME_W)])


def _energy(store, now: datetime | None = None, **params: str) -> list[dict]:
    queries = Queries(store, NEW_YORK)
    if now is not None:
        real = queries.series
        queries.series = lambda *a, **k: real(*a, **k, now_ms=to_ms(now))  # type: ignore[method-assign]
    with TestClient(create_app(queries)) as c:
        r = c.get("/api/v1/energy", params=params)
    assert r.status_code == 200, r.text
    return points(r.json())


def test_dst_days_are_23_and_25_hours_and_months_are_the_sum_of_their_days(recorder, store):
    _home(recorder, date(2025, 2, 27), date(2025, 3, 10))  # 9 March: 23 hours
    _home(recorder, date(2025, 10, 30), date(2025, 11, 3))  # 2 November: 25 hours
    days = _energy(store, **{"from": "2025-03-08", "to": "2025-03-10", "step": "day"})
    assert [p["start"] for p in days] == ["2025-03-08", "2025-03-09", "2025-03-10"]
    assert [p["home"] for p in days] == pytest.approx([24 * HOME_W, 23 * HOME_W, 24 * HOME_W])
    assert [p["end"] for p in days] == ["2025-03-09T00:00:00-05:00", "2025-03-10T00:00:00-04:00",
                                        "2025-03-11T00:00:00-04:00"]
    assert all(p["home_w"] == pytest.approx(HOME_W) for p in days)  # averaged over 23 hours, not 24
    fall = _energy(store, **{"from": "2025-11-02", "to": "2025-11-02", "step": "day"})
    assert fall[0]["home"] == pytest.approx(25 * HOME_W) and fall[0]["home_w"] == pytest.approx(HOME_W)
    hours = _energy(store, **{"from": "2025-11-02", "to": "2025-11-02", "step": "hour"})
    assert len(hours) == 25 and sum(p["home"] for p in hours) == pytest.approx(fall[0]["home"])

    months = _energy(store, **{"from": "2025-01-01", "to": "2025-12-31", "step": "month"})
    assert [p["start"] for p in months] == ["2025-02", "2025-03", "2025-10", "2025-11"]
    each_day = _energy(store, **{"from": "2025-01-01", "to": "2025-12-31", "step": "day"})
    for m in months:
        in_month = [d for d in each_day if d["start"].startswith(m["start"])]
        for key in ("home", "grid_import", "grid_to_home", "covered_s", "soc_s"):
            assert m[key] == pytest.approx(sum(d[key] for d in in_month)), (m["start"], key)
        assert not m["partial"]
    march = next(m for m in months if m["start"] == "2025-03")
    assert march["home"] == pytest.approx((10 * 24 - 1) * HOME_W)  # 1 to 10 March, the 23-hour day in it
    assert march["end"] == "2025-04-01T00:00:00-04:00"


def test_a_span_starting_inside_a_bin_gets_it_whole(recorder, store):
    """The first day of the data (from 06:00) is a bar of its own, as is the first month."""
    _home(recorder, date(2025, 6, 1), date(2025, 6, 2), start_hour=6)
    days = _energy(store, **{"from": "2025-05-01", "to": "2025-06-02", "step": "day"})
    assert [p["start"] for p in days] == ["2025-06-01", "2025-06-02"]
    assert days[0]["home"] == pytest.approx(18 * HOME_W)
    months = _energy(store, **{"from": "2025-05-01", "to": "2025-06-02", "step": "month"})
    assert [p["start"] for p in months] == ["2025-06"] and months[0]["home"] == pytest.approx(42 * HOME_W)
    assert months[0]["end"] == "2025-06-03T00:00:00-04:00"  # the month as far as the span goes


def test_the_bin_still_going_is_partial_and_present(recorder, store):
    now = datetime(2025, 6, 2, 18, 30, tzinfo=UTC)  # 14:30 on 2 June in New York, the newest reading
    a = local_day_bounds(date(2025, 6, 1), NEW_YORK)[0]
    recorder.ingest_bulk([steady_frame(a, (to_ms(now) - a) // 60_000 + 1, home_power=HOME_W, grid_power=HOME_W)])
    days = _energy(store, now, **{"from": "2025-06-01", "to": "2025-06-07", "step": "day"})
    assert [(p["start"], p["partial"]) for p in days] == [("2025-06-01", False), ("2025-06-02", True)]
    months = _energy(store, now, **{"from": "2025-01-01", "to": "2025-12-31", "step": "month"})
    assert [(p["start"], p["partial"]) for p in months] == [("2025-06", True)]
    hours = _energy(store, now, **{"from": "2025-06-02", "to": "2025-06-02", "step": "hour"})
    assert [p["partial"] for p in hours] == [False] * 14 + [True]  # the hours up to now, the last one going
    assert hours[-1]["home"] == pytest.approx(HOME_W / 2) and hours[-1]["home_w"] == pytest.approx(HOME_W)


def test_too_many_months_are_refused(store):
    queries = Queries(store, NEW_YORK)
    with TestClient(create_app(queries)) as c:
        assert c.get("/api/v1/energy", params={"from": "1900-01-01", "to": "2200-01-01", "step": "month"}
                     ).status_code == 422
        assert c.get("/api/v1/energy", params={"from": "2025-01-01", "to": "2025-12-31", "step": "week"}
                     ).status_code == 422


def test_hours_follow_the_sites_clock_half_an_hour_off_utc(store):
    """In Asia/Kolkata (+05:30) an hour bin starts at :30 UTC; a span from 06:10 local gets the hour from 06:00."""
    from zoneinfo import ZoneInfo

    from homegrid.hub.recorder import Recorder

    kolkata = ZoneInfo("Asia/Kolkata")
    a = local_day_bounds(date(2025, 6, 1), kolkata)[0] + 6 * 3_600_000  # 06:00 local
    Recorder(store, kolkata).ingest_bulk([steady_frame(a, 3 * 60 + 1, home_power=HOME_W, grid_power=HOME_W)])
    with TestClient(create_app(Queries(store, kolkata))) as c:
        body = c.get("/api/v1/energy", params={"from": "2025-06-01T06:10:00+05:30", "to": "2025-06-01T08:59:00+05:30",
                                               "step": "hour"}).json()
    assert [(p["start"], p["end"]) for p in points(body)] == [
        ("2025-06-01T06:00:00+05:30", "2025-06-01T07:00:00+05:30"),
        ("2025-06-01T07:00:00+05:30", "2025-06-01T08:00:00+05:30"),
        ("2025-06-01T08:00:00+05:30", "2025-06-01T09:00:00+05:30")]
    assert [p["home"] for p in points(body)] == pytest.approx([HOME_W] * 3)
