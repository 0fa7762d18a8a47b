"""Time-of-use periods from a rate's month-by-hour tables, in local time (homegrid.tariffs.schedule)."""

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from homegrid.tariffs import MonthHourSchedule, tou_periods
from homegrid.timezones import local_calendar

LA = "America/Los_Angeles"
ZONES = [LA, "Europe/London", "Australia/Lord_Howe", "Asia/Kolkata", "UTC"]


def ms(dt: datetime) -> int:
    return int(dt.timestamp() * 1000)


def peak_4_to_9() -> MonthHourSchedule:
    """A real shape: period 1 from 16:00 to 21:00 on weekdays all year, else period 0."""
    day = [1 if 16 <= h < 21 else 0 for h in range(24)]
    return MonthHourSchedule([day] * 12, [[0] * 24] * 12)


def test_a_weekday_evening_is_peak_and_the_weekend_is_not():
    la = ZoneInfo(LA)
    t = np.array([ms(datetime(2025, 7, 2, 17, 30, tzinfo=la)),   # Wednesday 17:30
                  ms(datetime(2025, 7, 2, 15, 59, tzinfo=la)),   # Wednesday 15:59
                  ms(datetime(2025, 7, 2, 21, 0, tzinfo=la)),    # Wednesday 21:00
                  ms(datetime(2025, 7, 5, 17, 30, tzinfo=la))])  # Saturday 17:30
    assert tou_periods(t, LA, peak_4_to_9()).tolist() == [1, 0, 0, 0]


def test_the_local_clock_hour_counts_across_daylight_saving():
    """On the 23-hour day the UTC instant one hour after 01:00 local is 03:00 local; on the 25-hour day 01:00
    comes twice. The period follows the local clock, not the UTC hour."""
    table = [list(range(24))] * 12  # period = local hour
    schedule = MonthHourSchedule(table, table)
    spring = ms(datetime(2025, 3, 9, 8, 0, tzinfo=UTC))  # 00:00 PST
    t = spring + np.arange(23) * 3_600_000
    assert tou_periods(t, LA, schedule).tolist() == [0, 1, *range(3, 24)]
    autumn = ms(datetime(2025, 11, 2, 7, 0, tzinfo=UTC))  # 00:00 PDT
    t = autumn + np.arange(25) * 3_600_000
    assert tou_periods(t, LA, schedule).tolist() == [0, 1, 1, *range(2, 24)]


def test_a_holiday_takes_the_weekend_table():
    la = ZoneInfo(LA)
    base = peak_4_to_9()
    schedule = MonthHourSchedule(base.weekday, base.weekend, holidays=[date(2025, 7, 4)])
    t = np.array([ms(datetime(2025, 7, 4, 17, 0, tzinfo=la)), ms(datetime(2025, 7, 3, 17, 0, tzinfo=la))])
    assert schedule.periods(t, LA).tolist() == [0, 1]
    # the holiday is the local date: 2025-07-05 01:00 UTC is still July 4th in California
    assert schedule.periods(np.array([ms(datetime(2025, 7, 5, 1, 0, tzinfo=UTC))]), LA).tolist() == [0]


def test_months_pick_their_row():
    table = [[m] * 24 for m in range(12)]
    schedule = MonthHourSchedule(table, table)
    t = np.array([ms(datetime(2025, m, 15, 12, tzinfo=UTC)) for m in range(1, 13)])
    assert tou_periods(t, "UTC", schedule).tolist() == list(range(12))
    # the first local hour of a month is that month's, though UTC is still in the month before
    t = np.array([ms(datetime(2025, 2, 1, 0, 30, tzinfo=ZoneInfo("Asia/Kolkata")))])
    assert tou_periods(t, "Asia/Kolkata", schedule).tolist() == [1]


@settings(max_examples=60, deadline=None)  # the first example in a zone builds its offset tables (timezones)
@given(
    st.sampled_from(ZONES),
    st.lists(st.integers(ms(datetime(2000, 1, 1, tzinfo=UTC)), ms(datetime(2040, 1, 1, tzinfo=UTC))),
             min_size=1, max_size=40),
    hnp.arrays(np.int64, (12, 24), elements=st.integers(0, 5)),
    hnp.arrays(np.int64, (12, 24), elements=st.integers(0, 5)),
)
def test_periods_match_the_calendar_of_zoneinfo(zone, times, weekday, weekend):
    tz = ZoneInfo(zone)
    t = np.array(times, dtype=np.int64)
    expected = []
    for x in times:
        local = datetime.fromtimestamp(x / 1000, UTC).astimezone(tz)
        table = weekend if local.weekday() >= 5 else weekday
        expected.append(int(table[local.month - 1, local.hour]))
    assert tou_periods(t, zone, MonthHourSchedule(weekday, weekend)).tolist() == expected
    month, wd, hour, day = local_calendar(t, zone)
    first = datetime.fromtimestamp(times[0] / 1000, UTC).astimezone(tz)
    assert (int(month[0]) + 1, int(wd[0]), int(hour[0])) == (first.month, first.weekday(), first.hour)
    assert date(1970, 1, 1) + timedelta(days=int(day[0])) == first.date()


def test_no_instants_give_no_periods():
    assert tou_periods(np.array([], dtype=np.int64), LA, peak_4_to_9()).tolist() == []


@pytest.mark.parametrize(("weekday", "why"), [
    ([[0] * 24] * 11,
     r"weekday schedule: expected 12 rows \(months\) of 24 period numbers \(hours\), got shape \(11, 24\)"),
    ([[0] * 23] * 12, r"got shape \(12, 23\)"),
    ([[0] * 24] * 11 + [[0] * 23], r"weekday schedule: expected 12 rows"),
    ([[-1] * 24] * 12, r"weekday schedule: period numbers must be whole numbers >= 0"),
    ([[0.5] * 24] * 12, r"whole numbers"),
    ([[float("nan")] * 24] * 12, r"whole numbers"),
    ([["peak"] * 24] * 12, r"weekday schedule: expected 12 rows"),
])
def test_a_bad_table_is_refused_by_name(weekday, why):
    with pytest.raises(ValueError, match=why):
        MonthHourSchedule(weekday, [[0] * 24] * 12)
    with pytest.raises(ValueError, match=why.replace("weekday", "weekend")):
        MonthHourSchedule([[0] * 24] * 12, weekday)


def test_a_holiday_rule_is_asked_for_each_local_year_the_instants_fall_in():
    asked: list[int] = []

    def new_years_day(year: int) -> list[date]:
        asked.append(year)
        return [date(year, 1, 1)]

    base = peak_4_to_9()
    schedule = MonthHourSchedule(base.weekday, base.weekend, holidays=[date(2025, 12, 31)],
                                 holiday_rule=new_years_day)
    la = ZoneInfo(LA)
    t = np.array([ms(datetime(2025, 12, 31, 17, tzinfo=la)), ms(datetime(2026, 1, 1, 17, tzinfo=la)),
                  ms(datetime(2026, 1, 2, 17, tzinfo=la))])  # Wednesday, Thursday, Friday
    assert schedule.periods(t, LA).tolist() == [0, 0, 1]
    assert asked == [2025, 2026]
    assert schedule.holidays_in(2027, 2027) == {date(2025, 12, 31), date(2027, 1, 1)}
    assert schedule.periods(np.array([], dtype=np.int64), LA).tolist() == []
