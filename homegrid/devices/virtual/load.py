"""Household load of the virtual home: a real measured year, laid onto the site's calendar.

The profile is one year of a French household's consumption at 30 minutes (the
emhass project's test data, MIT; see ``data/README.md``), excluding its deferrable
loads. It is keyed by the household's *local* month, day and half-hour
(Europe/Paris), so morning stays morning and winter stays winter, and read back
on the simulated site's local wall clock:

- 29 February has a row (the data covers 2024); non-leap years skip it.
- On a 23-hour day (spring forward) the wall-clock hour that does not exist is
  skipped; on a 25-hour day the repeated hour is read twice. Either way every
  instant has exactly one value and there are no gaps.
- Missing half-hours (and the 13 logged zeros, which sit at the edges of logger
  gaps) are filled from the same half-hour of the nearest day that has one,
  looking at the previous day first. The spring-forward hour missing from the
  source is filled the same way; the doubled autumn hour is averaged.

The table is scaled so a 365-day year totals ``load_kwh_per_year`` and
interpolated linearly between half-hour means (placed at their middles).
"""

from __future__ import annotations

import csv
import functools
import importlib.resources
import io

import numpy as np

from homegrid.devices.virtual.timebase import local_calendar_position, periodic_interp

__all__ = [
    "LOAD_FILE",
    "SLOTS_PER_DAY",
    "SOURCE_TZ",
    "load_power",
    "load_table",
]

LOAD_FILE = "emhass_household_fr_2024-02_2025-02_30min.csv"
SOURCE_TZ = "Europe/Paris"
SLOTS_PER_DAY = 48
_DAYS = 366  # a leap-year calendar: day index 59 is 29 February
_LEAP_YEAR = 2024


def _read_source() -> tuple[np.ndarray, np.ndarray]:
    """Times [ms UTC] and load [W] of the measured file (empty cells are NaN)."""
    text = importlib.resources.files("homegrid.devices.virtual").joinpath("data", LOAD_FILE).read_text("utf-8")
    rows = list(csv.reader(io.StringIO(text)))
    head = rows[0]
    it, iw = head.index("timestamp_utc"), head.index("load_w_excl_deferrable")
    times = np.array([r[it].rstrip("Z") for r in rows[1:]], dtype="datetime64[ms]").astype(np.int64)
    watts = np.array([float(r[iw]) if r[iw] else np.nan for r in rows[1:]])
    return times, watts


@functools.lru_cache(maxsize=1)
def load_table() -> np.ndarray:
    """The measured household load by calendar day and local half-hour.

    Returns
    -------
    numpy.ndarray
        Shape (366, 48): mean power of each local half-hour of each day of a leap
        year (row 59 is 29 February), gaps filled, unscaled. Read-only. [W]
    """
    times, watts = _read_source()
    watts[watts <= 0] = np.nan  # logged zeros sit at the edges of logger gaps
    cell = np.floor(local_calendar_position(times, SOURCE_TZ, 1800.0)).astype(np.int64)
    ok = ~np.isnan(watts)
    total = np.bincount(cell[ok], weights=watts[ok], minlength=_DAYS * SLOTS_PER_DAY)
    count = np.bincount(cell[ok], minlength=_DAYS * SLOTS_PER_DAY)
    table: np.ndarray = np.divide(total, count, out=np.full(total.shape, np.nan), where=count > 0)
    table = table.reshape(_DAYS, SLOTS_PER_DAY)
    k = 1
    while np.isnan(table).any():
        if k > _DAYS:
            raise ValueError(f"{LOAD_FILE}: a half-hour of the day has no value on any day")
        for shift in (k, -k):  # previous day first, then the next one
            gap = np.isnan(table)
            table[gap] = np.roll(table, shift, axis=0)[gap]
        k += 1
    table.setflags(write=False)
    return table


@functools.lru_cache(maxsize=8)
def _scaled(kwh_per_year: float) -> np.ndarray:
    table = load_table()
    non_leap = np.delete(table, 59, axis=0)
    mean_w = float(non_leap.mean())
    flat = (table * (kwh_per_year * 1000.0 / (8760.0 * mean_w))).ravel()
    flat.setflags(write=False)
    return flat


def load_power(t_ms: np.ndarray, timezone: str, kwh_per_year: float) -> np.ndarray:
    """Household load (car charger excluded) at the given instants.

    Parameters
    ----------
    t_ms : numpy.ndarray
        Instants, epoch milliseconds UTC. [ms]
    timezone : str
        IANA name of the site's time zone.
    kwh_per_year : float
        What a 365-day year of this load totals. [kWh]

    Returns
    -------
    numpy.ndarray
        Instantaneous load, >= 0, linear between half-hour means. [W]
    """
    pos = local_calendar_position(t_ms, timezone, 1800.0) - 0.5
    return periodic_interp(pos, _scaled(float(kwh_per_year)))
