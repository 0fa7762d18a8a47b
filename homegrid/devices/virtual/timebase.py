"""Calendar arithmetic shared by the virtual home's models, vectorised over epoch milliseconds."""

from __future__ import annotations

import numpy as np

from homegrid.timezones import utc_offset_ms

__all__ = [
    "is_leap",
    "local_calendar_position",
    "periodic_interp",
    "seconds_of_year_365",
]

def is_leap(year: np.ndarray) -> np.ndarray:
    """Whether each Gregorian year is a leap year."""
    y = np.asarray(year)
    leap: np.ndarray = (y % 4 == 0) & ((y % 100 != 0) | (y % 400 == 0))
    return leap


def seconds_of_year_365(t_ms: np.ndarray, offset_s: float) -> np.ndarray:
    """Seconds since 1 January 00:00 of a 365-day year on a fixed-offset clock.

    In leap years 29 February repeats 28 February and later days move back one.

    Parameters
    ----------
    t_ms : numpy.ndarray
        Instants, epoch milliseconds UTC. [ms]
    offset_s : float
        Added to UTC to get the clock. [s]

    Returns
    -------
    numpy.ndarray
        Seconds into the (non-leap) year, in [0, 365 * 86400). [s]
    """
    local = (np.asarray(t_ms, dtype=np.int64) + np.int64(round(offset_s * 1000.0))).astype("datetime64[ms]")
    year = local.astype("datetime64[Y]")
    sec = (local - year.astype("datetime64[ms]")).astype(np.int64) / 1000.0
    leap = is_leap(year.astype(np.int64) + 1970)
    out: np.ndarray = np.where(leap & (sec >= 59 * 86400.0), sec - 86400.0, sec)
    return out



def local_calendar_position(t_ms: np.ndarray, timezone: str, slot_s: float) -> np.ndarray:
    """Position of each instant in a leap-year table of local wall-clock slots.

    Parameters
    ----------
    t_ms : numpy.ndarray
        Instants, epoch milliseconds UTC. [ms]
    timezone : str
        IANA name of the time zone whose wall clock is read.
    slot_s : float
        Length of a slot; a day must hold a whole number of them. [s]

    Returns
    -------
    numpy.ndarray
        ``day * slots_per_day + slots_since_local_midnight``, ``day`` being the index
        of the local month and day in a leap year (29 February is day 59); in
        non-leap years 1 March onwards is shifted so that 29 February is skipped.
        On DST days the wall clock skips or repeats an hour, and so does this. [slots]
    """
    t = np.asarray(t_ms, dtype=np.int64)
    wall = (t + utc_offset_ms(t, timezone)).astype("datetime64[ms]")
    date = wall.astype("datetime64[D]")
    year = wall.astype("datetime64[Y]")
    day = (date - year.astype("datetime64[D]")).astype(np.int64)
    ms_of_day = (wall - date.astype("datetime64[ms]")).astype(np.int64)
    leap = is_leap(year.astype(np.int64) + 1970)
    day = np.where(~leap & (day >= 59), day + 1, day)
    per_day = 86400.0 / slot_s
    pos: np.ndarray = day * per_day + ms_of_day / (slot_s * 1000.0)
    return pos


def periodic_interp(pos: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Linear interpolation of ``values`` placed at 0, 1, 2, ..., wrapping at the end.

    Parameters
    ----------
    pos : numpy.ndarray
        Fractional positions (any real number; taken modulo ``len(values)``).
    values : numpy.ndarray
        Values at the integer positions.

    Returns
    -------
    numpy.ndarray
    """
    n = len(values)
    base = np.floor(pos)
    frac = pos - base
    i0 = base.astype(np.int64) % n
    i1 = i0 + 1
    i1[i1 == n] = 0
    out: np.ndarray = values[i0] * (1.0 - frac) + values[i1] * frac
    return out
