"""Energy from power samples: time-weighted (trapezoidal) integration into buckets.

A power sample is a gauge: the instantaneous value at its time. Between two
samples no further apart than ``max_gap_s`` the power is taken to change
linearly (the trapezoidal rule, as Home Assistant's integration sensor and
InfluxDB's ``integral()`` do). Samples further apart are a gap: nothing is
guessed for it, and the time is reported as not covered.
"""

from __future__ import annotations

import numpy as np

__all__ = ["coverage_per_bucket", "energy_per_bucket", "power_part", "step_duration_per_bucket"]

_MS_PER_S = 1000.0
_S_PER_H = 3600.0


def power_part(power: np.ndarray, part: int) -> np.ndarray:
    """One side of a signed power, as a non-negative array [W].

    Parameters
    ----------
    power : array
        Power samples [W]; NaN where not measured.
    part : int
        +1 for the positive part, -1 for the negative part (returned positive).
    """
    if part > 0:
        return np.where(power > 0, power, np.where(np.isnan(power), np.nan, 0.0))
    return np.where(power < 0, -power, np.where(np.isnan(power), np.nan, 0.0))


def _valid(t_ms: np.ndarray, values: np.ndarray, origin_ms: int) -> tuple[np.ndarray, np.ndarray]:
    ok = ~np.isnan(values)
    return (t_ms[ok] - origin_ms) / _MS_PER_S, values[ok]


def _cumulative_at(
    t: np.ndarray, p: np.ndarray, x: np.ndarray, max_gap_s: float
) -> np.ndarray:
    """Trapezoidal integral of p from t[0] to each x, gaps not bridged [W*s]."""
    n = len(t)
    if n < 2:
        return np.zeros(len(x))
    dt = np.diff(t)
    bridged = (dt > 0) & (dt <= max_gap_s)
    seg = np.where(bridged, 0.5 * (p[:-1] + p[1:]) * dt, 0.0)
    cum = np.concatenate(([0.0], np.cumsum(seg)))
    i = np.clip(np.searchsorted(t, x, side="right") - 1, 0, n - 2)
    s = np.clip(x - t[i], 0.0, dt[i])
    safe_dt = np.where(dt[i] > 0, dt[i], 1.0)
    partial = p[i] * s + (p[i + 1] - p[i]) * s * s / (2.0 * safe_dt)
    return cum[i] + np.where(bridged[i], partial, 0.0)


def energy_per_bucket(
    t_ms: np.ndarray, power: np.ndarray, edges_ms: np.ndarray, max_gap_s: float
) -> np.ndarray:
    """Energy in each bucket from power samples [Wh].

    Parameters
    ----------
    t_ms : array of int64
        Sample times, sorted, epoch milliseconds UTC.
    power : array
        Power at each sample [W]; NaN samples are ignored.
    edges_ms : array of int64
        Bucket edges (``len(buckets) + 1``), epoch milliseconds UTC.
    max_gap_s : float
        Samples further apart than this are not bridged. [s]

    Returns
    -------
    array
        Energy per bucket [Wh].
    """
    origin = int(edges_ms[0])
    t, p = _valid(t_ms, power, origin)
    x = (np.asarray(edges_ms, dtype=np.int64) - origin) / _MS_PER_S
    return np.diff(_cumulative_at(t, p, x, max_gap_s)) / _S_PER_H


def coverage_per_bucket(
    t_ms: np.ndarray, values: np.ndarray, edges_ms: np.ndarray, max_gap_s: float
) -> np.ndarray:
    """Seconds of each bucket spanned by bridged sample intervals [s]."""
    origin = int(edges_ms[0])
    t, v = _valid(t_ms, values, origin)
    x = (np.asarray(edges_ms, dtype=np.int64) - origin) / _MS_PER_S
    return np.diff(_cumulative_at(t, np.ones_like(v), x, max_gap_s))


def step_duration_per_bucket(
    t_ms: np.ndarray, active: np.ndarray, edges_ms: np.ndarray, max_gap_s: float
) -> np.ndarray:
    """Seconds of each bucket during which a held state was active [s].

    A state (such as grid status) holds from its sample until the next sample,
    for at most ``max_gap_s``; ``active`` is 1.0 where the state counts, 0.0
    where not, NaN where unknown.
    """
    origin = int(edges_ms[0])
    t, a = _valid(t_ms, active, origin)
    x = (np.asarray(edges_ms, dtype=np.int64) - origin) / _MS_PER_S
    if len(t) == 0:
        return np.zeros(len(x) - 1)
    end = np.concatenate((t[1:], [t[-1]]))
    end = np.minimum(end, t + max_gap_s)
    starts = t[a > 0]
    stops = end[a > 0]
    # duration active before each edge: sum over active spans of overlap with (-inf, x]
    so = np.sort(starts)
    eo = np.sort(stops)
    cs = np.concatenate(([0.0], np.cumsum(so)))
    ce = np.concatenate(([0.0], np.cumsum(eo)))
    ks = np.searchsorted(so, x, side="right")
    ke = np.searchsorted(eo, x, side="right")
    # spans started before x contribute (x - start); those also ended before x give back (x - stop)
    before = (ks * x - cs[ks]) - (ke * x - ce[ke])
    return np.diff(before)
