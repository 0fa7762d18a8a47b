"""Array time-zone helpers agree with zoneinfo, daylight saving and odd offsets included."""

import json
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from homegrid.timezones import local_isoformat, local_isoformat_json, parse_iso_time, utc_offset_ms, wall_to_utc_ms

ZONES = ["America/New_York", "Europe/London", "Asia/Kolkata", "Australia/Lord_Howe", "Pacific/Chatham", "UTC"]


# No deadline: the first example in a zone builds its yearly tables for up to 131 years (about 85 ms on a quiet
# machine, over 300 ms once under a loaded CI run); that one-off cost is not what this test checks. The cost of
# a span is checked by test_spans_that_differ_share_the_zones_yearly_tables, by counting look-ups, not by a clock.
@settings(max_examples=50, deadline=None)
@given(st.sampled_from(ZONES), st.lists(st.integers(0, 4_102_444_800_000), min_size=1, max_size=50))
def test_offsets_and_labels_match_zoneinfo(zone, times):
    t = np.array(sorted(times), dtype=np.int64)
    tz = ZoneInfo(zone)
    expected = [datetime.fromtimestamp(ms / 1000, UTC).astimezone(tz) for ms in t.tolist()]
    got = utc_offset_ms(t, zone)
    assert got.tolist() == [int(e.utcoffset().total_seconds() * 1000) for e in expected]
    labels = local_isoformat(t, zone)  # to the second: the milliseconds are cut, as isoformat(timespec) cuts
    assert labels == [e.isoformat(timespec="seconds") for e in expected]
    assert json.loads(local_isoformat_json(t, zone)) == labels


@pytest.mark.parametrize("zone", ["America/New_York", "Asia/Kolkata", "Australia/Lord_Howe"])
def test_a_day_of_minutes_across_a_clock_change_in_one_json_array(zone):
    """The web app's day: 1,440 labels and more, two offsets in one reply (Lord Howe moves by 30 minutes)."""
    start = int(datetime(2025, 4, 5, 12, tzinfo=UTC).timestamp() * 1000)
    t = start + np.arange(2 * 1440, dtype=np.int64) * 60_000
    text = local_isoformat_json(t, zone)
    expected = [datetime.fromtimestamp(ms / 1000, ZoneInfo(zone)).isoformat() for ms in t.tolist()]
    assert json.loads(text) == local_isoformat(t, zone) == expected
    assert local_isoformat_json(t[:0], zone) == b"[]" and local_isoformat(t[:0], zone) == []


def test_wall_time_round_trips_outside_the_skipped_hour():
    wall = np.array([datetime(2025, 3, 9, 1, 30), datetime(2025, 3, 9, 3, 30), datetime(2025, 7, 1, 7, 30)],
                    dtype="datetime64[ms]").astype(np.int64)
    utc = wall_to_utc_ms(wall, "America/New_York")
    back = [datetime.fromtimestamp(ms / 1000, UTC).astimezone(ZoneInfo("America/New_York")) for ms in utc.tolist()]
    assert [b.strftime("%H:%M") for b in back] == ["01:30", "03:30", "07:30"]


def test_the_instant_of_a_change_has_the_new_offset():
    """Hypothesis rarely draws the exact instant of a change; the minute grid of a day view always does."""
    for zone, change in (("America/New_York", datetime(2026, 3, 8, 7, tzinfo=UTC)),
                         ("America/New_York", datetime(2026, 11, 1, 6, tzinfo=UTC)),
                         ("Europe/Berlin", datetime(2026, 3, 29, 1, tzinfo=UTC)),
                         ("Europe/Berlin", datetime(2026, 10, 25, 1, tzinfo=UTC)),
                         ("Australia/Lord_Howe", datetime(2026, 4, 4, 15, tzinfo=UTC))):
        ms = int(change.timestamp() * 1000)
        t = np.array([ms - 1, ms, ms + 60_000], dtype=np.int64)
        tz = ZoneInfo(zone)
        want = [int(datetime.fromtimestamp(x / 1000, UTC).astimezone(tz).utcoffset().total_seconds() * 1000)
                for x in t.tolist()]
        assert want[0] != want[1], (zone, change)  # it is a change
        assert utc_offset_ms(t, zone).tolist() == want, zone


@pytest.mark.parametrize(("text", "utc"), [
    ("2026-03-29T01:30:00+01:00", "2026-03-29T00:30:00+00:00"),
    ("2026-03-29T00:30:00Z", "2026-03-29T00:30:00+00:00"),
    (" 2026-11-01T01:30:00-05:00 ", "2026-11-01T06:30:00+00:00"),
])
def test_an_outside_time_names_its_instant(text, utc):
    assert parse_iso_time(text).astimezone(UTC).isoformat() == utc


@pytest.mark.parametrize(("text", "why"), [
    ("2026-03-29T01:30:00", "has no UTC offset"),
    ("2026-03-29", "has no UTC offset"),
    ("yesterday", "is not an ISO 8601 time"),
    ("2026-02-30T00:00:00Z", "is not an ISO 8601 time"),
])
def test_an_outside_time_without_an_instant_is_refused_saying_why(text, why):
    with pytest.raises(ValueError, match=why):
        parse_iso_time(text)


def test_spans_that_differ_share_the_zones_yearly_tables():
    """The hypothesis test above flaked on its deadline: every span drawn rebuilt a table of daily samples
    over its whole length (47,000 look-ups for 1970-2100). Tables are kept per zone and year, so a new span
    inside years already seen costs no look-up."""
    from homegrid.timezones import _year_transitions

    zone = "Pacific/Chatham"
    utc_offset_ms(np.array([0, 4_102_444_800_000], dtype=np.int64), zone)
    before = _year_transitions.cache_info().misses
    for a in range(0, 4_000_000_000_000, 397_000_000_000):
        utc_offset_ms(np.array([a, a + 86_400_000 * 500], dtype=np.int64), zone)
    assert _year_transitions.cache_info().misses == before


def test_an_offset_with_seconds_is_written_with_them():
    """Local mean time before a zone's standard time (Amsterdam's +00:19:32 until 1937) takes the general way."""
    t = np.array([-2_500_000_000_000, 0], dtype=np.int64)
    expected = [datetime.fromtimestamp(ms / 1000, ZoneInfo("Europe/Amsterdam")).isoformat() for ms in t.tolist()]
    assert expected[0].endswith("+00:19:32")
    assert local_isoformat(t, "Europe/Amsterdam") == expected
    assert json.loads(local_isoformat_json(t, "Europe/Amsterdam")) == expected


@settings(max_examples=100, deadline=None)
@given(st.sampled_from([*ZONES, "Europe/Amsterdam"]), st.integers(-2_600_000_000_000, 4_102_444_800_000))
def test_one_instant_is_written_as_the_array_writes_it(zone, t):
    from homegrid.timezones import local_time_text

    assert local_time_text(t, zone) == local_isoformat(np.array([t], dtype=np.int64), zone)[0]
