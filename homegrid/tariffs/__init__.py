"""Tariffs: what energy costs, as pure functions over arrays (no store, no I/O).

Built up for issue 13 (the bill). Today: :mod:`homegrid.tariffs.schedule`, which time-of-use period of a
rate's month-by-hour schedule each instant falls in, in the site's local time.
"""

from homegrid.tariffs.schedule import MonthHourSchedule, tou_periods

__all__ = ["MonthHourSchedule", "tou_periods"]
