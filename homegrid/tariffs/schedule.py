"""Time-of-use periods: which period of a rate's month-by-hour schedule each instant falls in.

A rate's schedule is a 12 x 24 table (month x local clock hour), one for weekdays and one for weekends,
as the OpenEI Utility Rate Database writes it (``energyweekdayschedule``, ``energyweekendschedule``) and NREL
SAM reads it (``ur_ec_sched_weekday``, ``ur_ec_sched_weekend``). Each cell holds a period number; what a
number means (its prices, its tiers) is the rate's business, not this module's. A holiday takes the weekend
table, as utilities price their holidays: the schedule's own dates, and those a rule gives for each year priced
(a country's public holidays, :class:`homegrid.tariffs.country_holidays.CountryHolidays`).

The table is read in the site's local time (its IANA zone, daylight saving included): on a 23-hour day the
skipped hour has no instant, on a 25-hour day the repeated hour has two. An interval is priced by the local
hour it starts in.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import date

import numpy as np

from homegrid.timezones import local_calendar

__all__ = ["HolidayRule", "MonthHourSchedule", "tou_periods"]

#: The holidays of one local calendar year (a year's number in, its dates out).
HolidayRule = Callable[[int], Iterable[date]]


def _table(name: str, rows: Sequence[Sequence[int]] | np.ndarray) -> np.ndarray:
    try:
        table = np.asarray(rows, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"{name}: expected 12 rows (months) of 24 period numbers (hours)") from None
    if table.shape != (12, 24):
        raise ValueError(f"{name}: expected 12 rows (months) of 24 period numbers (hours), got shape {table.shape}")
    if not np.isfinite(table).all() or (table != np.round(table)).any() or (table < 0).any():
        raise ValueError(f"{name}: period numbers must be whole numbers >= 0")
    return table.astype(np.int64)


@dataclass(frozen=True, eq=False)  # tables are arrays: compared by identity
class MonthHourSchedule:
    """A rate's time-of-use schedule: a 12 x 24 table of period numbers for weekdays and one for weekends.

    Parameters
    ----------
    weekday, weekend : sequence of 12 sequences of 24 int
        Period number by month (January first) and local clock hour (0 first), as URDB's
        ``energyweekdayschedule`` / ``energyweekendschedule``.
    holidays : iterable of datetime.date
        Local dates priced by the weekend table.
    holiday_rule : callable of int to iterable of datetime.date, optional
        More such dates, by year: called with each local year an instant falls in.

    Raises
    ------
    ValueError
        A table that is not 12 x 24 whole numbers >= 0, named.
    """

    weekday: np.ndarray
    weekend: np.ndarray
    holidays: frozenset[date] = frozenset()
    holiday_rule: HolidayRule | None = None

    def __init__(
        self,
        weekday: Sequence[Sequence[int]] | np.ndarray,
        weekend: Sequence[Sequence[int]] | np.ndarray,
        holidays: Iterable[date] = (),
        holiday_rule: HolidayRule | None = None,
    ) -> None:
        object.__setattr__(self, "weekday", _table("weekday schedule", weekday))
        object.__setattr__(self, "weekend", _table("weekend schedule", weekend))
        object.__setattr__(self, "holidays", frozenset(holidays))
        object.__setattr__(self, "holiday_rule", holiday_rule)

    def holidays_in(self, first_year: int, last_year: int) -> frozenset[date]:
        """The holidays of the local years ``first_year`` to ``last_year`` (both included): the schedule's own
        dates and the rule's."""
        if self.holiday_rule is None:
            return self.holidays
        rule = self.holiday_rule
        return self.holidays | frozenset(d for year in range(first_year, last_year + 1) for d in rule(year))

    def periods(self, t_ms: np.ndarray, timezone: str) -> np.ndarray:
        """The period number of each instant (:func:`tou_periods`)."""
        return tou_periods(t_ms, timezone, self)


def tou_periods(t_ms: np.ndarray, timezone: str, schedule: MonthHourSchedule) -> np.ndarray:
    """The time-of-use period of each instant: the schedule's cell for its local month and hour, from the
    weekend table on Saturdays, Sundays and the schedule's holidays, else from the weekday table.

    Parameters
    ----------
    t_ms : numpy.ndarray
        Instants (interval starts), UTC epoch milliseconds. [ms]
    timezone : str
        The site's IANA zone.
    schedule : MonthHourSchedule
        The rate's tables and holidays.

    Returns
    -------
    numpy.ndarray
        Period numbers (int64), one per instant.
    """
    month, weekday, hour, day = local_calendar(t_ms, timezone)
    weekend = weekday >= 5
    if (schedule.holidays or schedule.holiday_rule is not None) and len(day):
        years = np.array([day.min(), day.max()], dtype="datetime64[D]").astype("datetime64[Y]").astype(np.int64) + 1970
        holidays = schedule.holidays_in(int(years[0]), int(years[1]))
        weekend |= np.isin(day, np.array(sorted(holidays), dtype="datetime64[D]").astype(np.int64))
    periods: np.ndarray = np.where(weekend, schedule.weekend[month, hour], schedule.weekday[month, hour])
    return periods
