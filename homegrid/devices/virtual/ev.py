"""The virtual home's electric car: a commute schedule and a charger that tapers.

Trips (all deterministic from the seed; each local calendar year has its own
stream, ``numpy.random.default_rng((seed, year, 2))``):

- Monday to Friday the car leaves around 07:30 local time (sd 10 min, within
  30 min) and comes back around 17:45 (sd 20 min, within 1 h), having driven
  ``ev_commute_km`` give or take 15 %.
- About one weekend in three there is a day trip instead, on the Saturday or
  the Sunday: out around 09:30, back around 18:30, 150 to 350 km.

The trip's energy, ``km * ev_kwh_per_km``, leaves the pack when the car is back
(any shortfall below 5 % was charged on the road). The car is plugged in
whenever it is at home and charges to ``ev_charge_limit_percent``.

The charger draws its full power up to 80 % state of charge; above that the
rate falls linearly to 12 % of full at 100 %, as a car's battery management
does near full. 90 % of what the charger draws reaches the pack.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from homegrid.timezones import MINUTE_MS, day_of_week, utc_offset_ms, wall_to_utc_ms

__all__ = [
    "ARRIVES",
    "AWAY",
    "CHARGE_EFFICIENCY",
    "HOME",
    "MIN_SOC_PERCENT",
    "TAPER_FLOOR",
    "TAPER_START_PERCENT",
    "CarState",
    "charge_rate",
    "step_trip_codes",
    "trip_schedule",
    "trips_in_year",
]

TAPER_START_PERCENT = 80.0
TAPER_FLOOR = 0.12
CHARGE_EFFICIENCY = 0.90
MIN_SOC_PERCENT = 5.0
_STREAM = 2
WEEKEND_TRIP_CHANCE = 1.0 / 3.0

#: Trip codes of a step: at home, away, or away and back by the end of the step.
HOME, AWAY, ARRIVES = 0, 1, 2


@dataclass(frozen=True)
class CarState:
    """What the car is doing at the simulation's current time."""

    soc: float  # [%]
    plugged: bool
    at_home: bool
    charging: bool


def charge_rate(soc_percent: np.ndarray | float, max_w: float) -> np.ndarray | float:
    """The power a car accepts at a state of charge.

    Parameters
    ----------
    soc_percent : array_like or float
        Pack state of charge. [%]
    max_w : float
        The charger's rating. [W]

    Returns
    -------
    numpy.ndarray or float
        ``max_w`` up to 80 %, then linear down to ``0.12 * max_w`` at 100 %. [W]
    """
    over = np.clip((np.asarray(soc_percent, dtype=float) - TAPER_START_PERCENT) / (100.0 - TAPER_START_PERCENT), 0, 1)
    rate = max_w * (1.0 - (1.0 - TAPER_FLOOR) * over)
    return float(rate) if np.ndim(rate) == 0 else rate


def _local_ms(dates: np.ndarray, minutes: np.ndarray, tz: str) -> np.ndarray:
    wall = dates.astype("datetime64[ms]") + (np.round(minutes * float(MINUTE_MS))).astype("timedelta64[ms]")
    return wall_to_utc_ms(wall.astype(np.int64), tz)


@functools.lru_cache(maxsize=32)
def trips_in_year(
    seed: int, year: int, timezone: str, commute_km: float, kwh_per_km: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The car's trips in one local calendar year.

    Parameters
    ----------
    seed : int
        The configuration's seed.
    year : int
        Calendar year in the site's time zone.
    timezone : str
        IANA name of the site's time zone.
    commute_km : float
        Weekday round trip. [km]
    kwh_per_km : float
        The car's consumption. [kWh/km]

    Returns
    -------
    departures, arrivals : numpy.ndarray of int64
        Epoch milliseconds UTC, sorted, one pair per trip. Read-only. [ms]
    energy_kwh : numpy.ndarray
        Energy each trip takes from the pack. Read-only. [kWh]
    """
    rng = np.random.default_rng([int(seed) & 0xFFFFFFFF, year + 10_000, _STREAM])
    days = np.arange(np.datetime64(f"{year}-01-01"), np.datetime64(f"{year + 1}-01-01"))
    n = len(days)
    # Draw the same numbers for every day whatever it is, so each day's draws are fixed.
    leave = 7.5 * 60 + np.clip(rng.normal(0.0, 10.0, n), -30, 30)
    back = 17.75 * 60 + np.clip(rng.normal(0.0, 20.0, n), -60, 60)
    km = commute_km * rng.uniform(0.85, 1.15, n)
    trip_leave = 9.5 * 60 + np.clip(rng.normal(0.0, 30.0, n), -60, 60)
    trip_back = 18.5 * 60 + np.clip(rng.normal(0.0, 45.0, n), -90, 90)
    trip_km = rng.uniform(150.0, 350.0, n)
    weekend_trip = rng.random(n) < WEEKEND_TRIP_CHANCE  # read on Saturdays
    on_sunday = rng.random(n) < 0.5
    weekday = day_of_week(days.astype(np.int64))  # 0 = Monday
    commute = (weekday < 5) & (commute_km > 0)
    saturday = weekday == 5
    sat_trip = saturday & weekend_trip & ~on_sunday
    sun_trip = np.zeros(n, dtype=bool)
    sat_idx = np.flatnonzero(saturday & weekend_trip & on_sunday)
    sat_idx = sat_idx[sat_idx + 1 < n]
    sun_trip[sat_idx + 1] = True
    long_trip = sat_trip | sun_trip
    go = commute | long_trip
    minutes_out = np.where(long_trip, trip_leave, leave)[go]
    minutes_back = np.where(long_trip, trip_back, back)[go]
    dist = np.where(long_trip, trip_km, km)[go]
    dep = _local_ms(days[go], minutes_out, timezone)
    arr = _local_ms(days[go], minutes_back, timezone)
    energy = dist * kwh_per_km
    for a in (dep, arr, energy):
        a.setflags(write=False)
    return dep, arr, energy


def trip_schedule(
    seed: int, timezone: str, commute_km: float, kwh_per_km: float, start_ms: int, end_ms: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Trips that overlap ``[start_ms, end_ms)``, as :func:`trips_in_year` returns them."""
    ends = np.array([start_ms, max(end_ms - 1, start_ms)], dtype=np.int64)
    local_years = (ends + utc_offset_ms(ends, timezone)).astype("datetime64[ms]").astype("datetime64[Y]")
    y0, y1 = (int(y) + 1970 for y in local_years.astype(np.int64))
    parts = [trips_in_year(seed, y, timezone, commute_km, kwh_per_km) for y in range(y0, y1 + 1)]
    dep = np.concatenate([p[0] for p in parts])
    arr = np.concatenate([p[1] for p in parts])
    kwh = np.concatenate([p[2] for p in parts])
    keep = (arr >= start_ms) & (dep < end_ms)
    return dep[keep], arr[keep], kwh[keep]


def step_trip_codes(
    edges_ms: np.ndarray, departures: np.ndarray, arrivals: np.ndarray, energy_kwh: np.ndarray
) -> tuple[np.ndarray, dict[int, float]]:
    """Where the car is during each step ``[edges[i], edges[i + 1])``.

    Parameters
    ----------
    edges_ms : numpy.ndarray
        Step boundaries, increasing, length ``n + 1``. [ms]
    departures, arrivals, energy_kwh : numpy.ndarray
        Trips from :func:`trip_schedule`. [ms], [ms], [kWh]

    Returns
    -------
    codes : numpy.ndarray of int8
        :data:`HOME` (at home at the step's start and through it), :data:`AWAY`, or
        :data:`ARRIVES` (back before the step ends: the trip's energy is taken then).
    arriving : dict
        Step index -> energy taken from the pack at the end of that step. [kWh]
    """
    edges = np.asarray(edges_ms, dtype=np.int64)
    t = edges[:-1]
    n = len(t)
    codes = np.zeros(n, dtype=np.int8)
    if len(departures) == 0 or n == 0:
        return codes, {}
    k = np.searchsorted(departures, t, side="right") - 1
    kk = np.maximum(k, 0)
    codes[(k >= 0) & (t < arrivals[kk])] = AWAY
    step = np.searchsorted(edges, arrivals, side="right") - 1
    inside = (step >= 0) & (step < n)
    arriving: dict[int, float] = {}
    for i, e in zip(step[inside].tolist(), energy_kwh[inside].tolist(), strict=True):
        arriving[i] = arriving.get(i, 0.0) + e
        codes[i] = ARRIVES
    return codes, arriving
