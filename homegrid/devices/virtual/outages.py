"""Grid outages of the virtual home: a deterministic schedule of realistic lengths.

Each calendar year (UTC) has its own random stream, ``numpy.random.default_rng``
seeded with ``(seed, year, 1)``, so a year's outages do not depend on where a
simulation starts. Starts are a Poisson process with ``outages_per_year`` events
a year (a Poisson count, then uniform times). Durations are a mixture fitted to
what utilities report:

- 40 % momentary interruptions (a recloser operating): log-uniform between
  0.5 s and 60 s;
- 60 % sustained outages: log-normal with a median of 45 min and a log standard
  deviation of 1.2, kept within 1 min to 12 h (so about a quarter of all
  outages last over an hour, 1 in 20 over 4 h, and 6 in 1000 reach the 12 h cap).

On top of that, so that a first run's few days of history tell the story, every
:data:`DEMO_PERIOD_MS` (3.5 days, counted from 1970-01-01 UTC) holds one
*demonstration* sustained outage (8 to 40 min) and one blip shorter than a poll
(0.5 to 3 s), at seeded times within the period (stream ``(seed, period, 4)``):
any 7-day window holds a whole period, so at least one of each. They come with
``outages_per_year > 0`` and ``demo=True`` (the virtual home's
``virtual.demo_outages``, on by default); ``outages_per_year = 0`` is a calm grid.

Overlapping outages are merged. Times are epoch milliseconds UTC.
"""

from __future__ import annotations

import functools
from datetime import UTC, datetime

import numpy as np

from homegrid.timezones import DAY_MS, HOUR_MS

__all__ = [
    "BLIP_SHARE",
    "DEMO_PERIOD_MS",
    "MAX_OUTAGE_S",
    "demo_outages",
    "in_outage",
    "outage_durations",
    "outage_overlap",
    "outage_schedule",
    "outage_seconds_before",
    "outages_in_year",
]

BLIP_SHARE = 0.40
MIN_BLIP_S = 0.5
MAX_BLIP_S = 60.0
SUSTAINED_MEDIAN_S = 45 * 60.0
SUSTAINED_SIGMA = 1.2
MAX_OUTAGE_S = 12 * 3600.0
_STREAM = 1
#: One demonstration outage and one blip in every period this long. [ms]
DEMO_PERIOD_MS = 84 * HOUR_MS
_DEMO_STREAM = 4
_DEMO_SUSTAINED_S = (8 * 60.0, 40 * 60.0)
_DEMO_BLIP_S = (0.5, 3.0)


def outage_durations(rng: np.random.Generator, n: int) -> np.ndarray:
    """Draw ``n`` outage durations from the blip / sustained mixture.

    Parameters
    ----------
    rng : numpy.random.Generator
    n : int

    Returns
    -------
    numpy.ndarray
        Durations within [0.5 s, 12 h]. [s]
    """
    blip = rng.random(n) < BLIP_SHARE
    u = rng.random(n)
    z = rng.standard_normal(n)
    short = np.exp(np.log(MIN_BLIP_S) + u * (np.log(MAX_BLIP_S) - np.log(MIN_BLIP_S)))
    long = np.clip(SUSTAINED_MEDIAN_S * np.exp(SUSTAINED_SIGMA * z), MAX_BLIP_S, MAX_OUTAGE_S)
    return np.where(blip, short, long)


def _year_start_ms(year: int) -> int:
    return int(datetime(year, 1, 1, tzinfo=UTC).timestamp()) * 1000


@functools.lru_cache(maxsize=64)
def outages_in_year(seed: int, year: int, per_year: float) -> tuple[np.ndarray, np.ndarray]:
    """The outages that start in one UTC calendar year.

    Parameters
    ----------
    seed : int
        The configuration's seed.
    year : int
        Calendar year (UTC).
    per_year : float
        Mean number of outages a year. [1/year]

    Returns
    -------
    starts, ends : numpy.ndarray of int64
        Sorted start and end instants, epoch milliseconds UTC (ends may fall in
        the next year). Read-only. [ms]
    """
    rng = np.random.default_rng([int(seed) & 0xFFFFFFFF, year + 10_000, _STREAM])
    y0 = _year_start_ms(year)
    y1 = _year_start_ms(year + 1)
    n = int(rng.poisson(per_year * (y1 - y0) / (365.0 * DAY_MS))) if per_year > 0 else 0
    starts = np.sort(y0 + np.floor(rng.random(n) * (y1 - y0)).astype(np.int64))
    ends = starts + np.round(outage_durations(rng, n) * 1000.0).astype(np.int64)
    for a in (starts, ends):
        a.setflags(write=False)
    return starts, ends


@functools.lru_cache(maxsize=4096)
def _demo_period(seed: int, k: int) -> tuple[tuple[int, int], tuple[int, int]]:
    """The demonstration sustained outage and blip of period ``k``: ``((start, end), (start, end))`` [ms]."""
    rng = np.random.default_rng([int(seed) & 0xFFFFFFFF, k & 0xFFFFFFFF, _DEMO_STREAM])
    u = rng.random(4)
    p0 = k * DEMO_PERIOD_MS
    lo, hi = _DEMO_SUSTAINED_S
    long_s = float(np.exp(np.log(lo) + u[1] * (np.log(hi) - np.log(lo))))
    a = p0 + int(u[0] * (DEMO_PERIOD_MS - hi * 1000 - HOUR_MS))
    blo, bhi = _DEMO_BLIP_S
    blip_s = blo + float(u[3]) * (bhi - blo)
    b = p0 + int(u[2] * (DEMO_PERIOD_MS - 10_000))
    if abs(b - a) < HOUR_MS + long_s * 1000:  # keep the blip an hour clear of the sustained outage
        b = (a + int(long_s * 1000) + HOUR_MS) if a < DEMO_PERIOD_MS // 2 + p0 else a - HOUR_MS
    return (a, a + round(long_s * 1000)), (b, b + round(blip_s * 1000))


def demo_outages(seed: int, start_ms: int, end_ms: int) -> tuple[np.ndarray, np.ndarray]:
    """The demonstration outages (one sustained, one blip per :data:`DEMO_PERIOD_MS`) starting in
    ``[start_ms, end_ms)``: sorted starts and ends, epoch milliseconds UTC. [ms]"""
    pairs = []
    for k in range(start_ms // DEMO_PERIOD_MS - 1, end_ms // DEMO_PERIOD_MS + 1):
        pairs += [x for x in _demo_period(seed, k) if start_ms <= x[0] < end_ms]
    pairs.sort()
    s = np.array([x[0] for x in pairs], dtype=np.int64)
    e = np.array([x[1] for x in pairs], dtype=np.int64)
    return s, e


def outage_schedule(seed: int, per_year: float, start_ms: int, end_ms: int,
                    demo: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Merged outage intervals that overlap ``[start_ms, end_ms)``, unclipped.

    Parameters
    ----------
    seed : int
    per_year : float
        Mean number of outages a year; 0: none at all (no demonstration ones either). [1/year]
    start_ms, end_ms : int
        The window, epoch milliseconds UTC. [ms]
    demo : bool
        Add the demonstration outages (see the module).

    Returns
    -------
    starts, ends : numpy.ndarray of int64
        Disjoint, sorted intervals ``[start, end)``. [ms]
    """
    y_first = datetime.fromtimestamp(start_ms / 1000, tz=UTC).year - 1  # last year's may run on
    y_last = datetime.fromtimestamp(max(end_ms - 1, start_ms) / 1000, tz=UTC).year
    parts = [outages_in_year(seed, y, per_year) for y in range(y_first, y_last + 1)]
    if demo and per_year > 0:
        parts.append(demo_outages(seed, _year_start_ms(y_first), _year_start_ms(y_last + 1)))
    s = np.concatenate([p[0] for p in parts])
    e = np.concatenate([p[1] for p in parts])
    if len(s) > 1:
        order = np.argsort(s, kind="stable")
        s, e = s[order], e[order]
        run_end = np.maximum.accumulate(e)
        new = np.ones(len(s), dtype=bool)
        new[1:] = s[1:] > run_end[:-1]
        e = np.maximum.reduceat(e, np.flatnonzero(new))
        s = s[new]
    keep = (e > start_ms) & (s < end_ms)
    return s[keep], e[keep]


def outage_seconds_before(t_ms: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """Total outage time between the first interval's start and each instant.

    Parameters
    ----------
    t_ms : numpy.ndarray
        Instants. [ms]
    starts, ends : numpy.ndarray
        Disjoint sorted intervals. [ms]

    Returns
    -------
    numpy.ndarray
        Cumulative outage time up to each instant. [ms]
    """
    t = np.asarray(t_ms, dtype=np.int64)
    if len(starts) == 0:
        return np.zeros(len(t), dtype=np.int64)
    length = ends - starts
    before = np.concatenate(([0], np.cumsum(length)))
    k = np.searchsorted(starts, t, side="right") - 1
    inside = np.clip(t - starts[np.maximum(k, 0)], 0, length[np.maximum(k, 0)])
    return np.where(k >= 0, before[np.maximum(k, 0)] + inside, 0)


def outage_overlap(edges_ms: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """Fraction of each step ``[edges[i], edges[i + 1])`` spent in an outage.

    Parameters
    ----------
    edges_ms : numpy.ndarray
        Step boundaries, increasing, length ``n + 1``. [ms]
    starts, ends : numpy.ndarray
        Disjoint sorted outage intervals. [ms]

    Returns
    -------
    numpy.ndarray
        Shape (n,), within [0, 1]; > 0 for every step that touches an outage. [-]
    """
    c = outage_seconds_before(edges_ms, starts, ends)
    share: np.ndarray = np.diff(c) / np.diff(np.asarray(edges_ms, dtype=np.int64)).astype(float)
    return share


def in_outage(t_ms: int, starts: np.ndarray, ends: np.ndarray) -> bool:
    """Whether the instant falls inside an outage interval ``[start, end)``."""
    k = int(np.searchsorted(starts, t_ms, side="right")) - 1
    return k >= 0 and t_ms < int(ends[k])
