"""Energy from device counters: deltas with reset detection, spread over buckets.

A device counter is a lifetime total [Wh] that only increases, except when the
device resets it (a firmware update, a replaced meter). As in Home Assistant's
statistics for ``total_increasing`` sensors, a drop of more than
``reset_drop`` (10 %) of the previous value is a reset, and the new value is
energy counted from zero; a smaller drop is meter jitter and counts nothing
until the counter climbs back past its previous high. An increase implying
more than ``max_power_w`` is impossible for a home and is quarantined (counted,
not added).

Between two counter samples the delta is spread linearly over time, so the
hours a hub was down get the energy the device counted in them, and totals
match the device's own app. Samples more than ``max_spread_s`` (31 days) apart
are a gap like a power gap: their delta is not spread over the months or years
between them (nor written into minutes that hold no reading), and that time is
not covered by the counter.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

__all__ = [
    "MAX_POWER_W",
    "MAX_SPREAD_S",
    "CounterEvent",
    "CounterSeries",
    "counter_delta_per_bucket",
    "counters_per_bucket",
    "monotone_counter",
]

#: Counter samples further apart than this are a gap: their delta is not spread over it. [s]
MAX_SPREAD_S = 31 * 86_400.0
#: A counter climbing faster than this is a jump to quarantine, not energy. [W]
MAX_POWER_W = 1.0e6


@dataclass(frozen=True)
class CounterEvent:
    """A reset, or an impossible jump that was quarantined, at one sample."""

    time_ms: int
    kind: str  # "reset" or "jump"
    before: float  # [Wh]
    after: float  # [Wh]


@dataclass(frozen=True)
class CounterSeries:
    """A counter made monotone: times [ms] and cumulative energy since the first sample [Wh]."""

    t_ms: np.ndarray
    energy_wh: np.ndarray
    events: tuple[CounterEvent, ...] = ()

    @property
    def resets(self) -> int:
        return sum(e.kind == "reset" for e in self.events)

    @property
    def quarantined(self) -> int:
        return sum(e.kind == "jump" for e in self.events)


def monotone_counter(
    t_ms: np.ndarray,
    counter: np.ndarray,
    reset_drop: float = 0.10,
    max_power_w: float = MAX_POWER_W,
) -> CounterSeries:
    """Turn raw counter samples into energy since the first sample, resets removed.

    Parameters
    ----------
    t_ms : array of int64
        Sample times, sorted, epoch milliseconds UTC.
    counter : array
        Raw counter values [Wh]; NaN samples are ignored.
    reset_drop : float
        Relative drop that marks a reset. [-]
    max_power_w : float
        Increases faster than this are quarantined. [W]

    Returns
    -------
    CounterSeries
    """
    ok = ~np.isnan(counter)
    t = np.asarray(t_ms, dtype=np.int64)[ok]
    c = np.asarray(counter, dtype=np.float64)[ok]
    if len(c) == 0:
        return CounterSeries(t, c)
    d = np.diff(c)
    rate = d / (np.maximum(np.diff(t), 1) / 3.6e6)
    if np.all(d >= 0) and np.all(rate <= max_power_w):
        return CounterSeries(t, np.concatenate(([0.0], np.cumsum(d))))
    inc = np.zeros(len(c))
    events: list[CounterEvent] = []
    high = c[0]
    # A short loop over the samples is clearer than a vectorised version, and counters
    # are sparse next to power samples (one per poll at most).
    cl = c.tolist()
    tl = t.tolist()
    for i in range(1, len(cl)):
        v = cl[i]
        if v < high * (1.0 - reset_drop):
            inc[i] = v
            events.append(CounterEvent(tl[i], "reset", high, v))
            high = v
            continue
        if v <= high:
            continue
        dt_h = max(tl[i] - tl[i - 1], 1) / 3.6e6
        if (v - high) / dt_h > max_power_w:
            events.append(CounterEvent(tl[i], "jump", high, v))
            continue
        inc[i] = v - high
        high = v
    return CounterSeries(t, np.cumsum(inc), tuple(events))


def counter_delta_per_bucket(
    series: CounterSeries, edges_ms: np.ndarray, max_spread_s: float = MAX_SPREAD_S
) -> tuple[np.ndarray, np.ndarray]:
    """Counter energy in each bucket, and which buckets the counter covers.

    Parameters
    ----------
    series : CounterSeries
        From :func:`monotone_counter`.
    edges_ms : array of int64
        Bucket edges, epoch milliseconds UTC.
    max_spread_s : float
        Samples further apart are not bridged: the delta between them is left out. [s]

    Returns
    -------
    delta : array
        Energy per bucket [Wh] (0 where not covered).
    covered : array of bool
        True where the counter's samples span at least part of the bucket.
    """
    edges = np.asarray(edges_ms, dtype=np.int64)
    if len(series.t_ms) < 2:
        return np.zeros(len(edges) - 1), np.zeros(len(edges) - 1, dtype=bool)
    t = series.t_ms.astype(np.float64)
    dt = np.diff(t)
    bridged = dt <= max_spread_s * 1000.0
    energy = series.energy_wh
    if not bridged.all():  # the increments across long gaps are left out
        energy = np.concatenate(([0.0], np.cumsum(np.where(bridged, np.diff(energy), 0.0))))
    k = np.interp(edges.astype(np.float64), t, energy)
    # time spanned by bridged sample pairs up to each edge: a bucket is covered where it grows
    spanned = np.interp(edges.astype(np.float64), t, np.concatenate(([0.0], np.cumsum(np.where(bridged, dt, 0.0)))))
    covered = np.diff(spanned) > 0
    return np.where(covered, np.diff(k), 0.0), covered


def counters_per_bucket(
    t_ms: np.ndarray,
    counters: Mapping[str, np.ndarray],
    edges_ms: np.ndarray,
    max_spread_s: float = MAX_SPREAD_S,
) -> tuple[dict[str, tuple[np.ndarray, np.ndarray]], list[tuple[str, CounterEvent]]]:
    """:func:`counter_delta_per_bucket` of :func:`monotone_counter` for several counters read at the same times.

    A meter's counters share their samples: those with a value at every sample and no reset or jump are made
    monotone and bridged as one array, with the bucket coverage worked out once; the others go one by one. The
    results are those of the two functions, value for value.

    Parameters
    ----------
    t_ms : array of int64
        Sample times, sorted, epoch milliseconds UTC.
    counters : mapping of str to array
        Raw counter values per name [Wh]; NaN where a sample lacks the counter.
    edges_ms : array of int64
        Bucket edges, epoch milliseconds UTC.
    max_spread_s : float
        Samples further apart are not bridged. [s]

    Returns
    -------
    per_name : dict of str to (delta, covered)
        As :func:`counter_delta_per_bucket` returns them. [Wh]
    events : list of (name, CounterEvent)
        The resets and quarantined jumps met, counter by counter in the order given.
    """
    t = np.asarray(t_ms, dtype=np.int64)
    names = list(counters)
    together: list[str] = []
    if names and len(t) >= 2:
        values = np.vstack([np.asarray(counters[n], dtype=np.float64) for n in names])
        d = np.diff(values, axis=1)
        with np.errstate(invalid="ignore"):
            rate = d / (np.maximum(np.diff(t), 1) / 3.6e6)
            grows = (d >= 0).all(axis=1) & (rate <= MAX_POWER_W).all(axis=1)
            simple = np.asarray(~np.isnan(values).any(axis=1) & grows)
        together = [n for n, ok in zip(names, simple.tolist(), strict=True) if ok]
    per_name: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    if together:
        d = d[simple]
        energy = np.concatenate((np.zeros((len(d), 1)), np.cumsum(d, axis=1)), axis=1)
        tf = t.astype(np.float64)
        dt = np.diff(tf)
        bridged = dt <= max_spread_s * 1000.0
        if not bridged.all():
            energy = np.concatenate(
                (np.zeros((len(d), 1)), np.cumsum(np.where(bridged, np.diff(energy, axis=1), 0.0), axis=1)), axis=1
            )
        x = np.asarray(edges_ms, dtype=np.int64).astype(np.float64)
        spanned = np.interp(x, tf, np.concatenate(([0.0], np.cumsum(np.where(bridged, dt, 0.0)))))
        covered = np.diff(spanned) > 0
        for name, row in zip(together, energy, strict=True):
            per_name[name] = np.where(covered, np.diff(np.interp(x, tf, row)), 0.0), covered
    events: list[tuple[str, CounterEvent]] = []
    for name in names:
        if name not in per_name:
            series = monotone_counter(t, counters[name])
            events.extend((name, e) for e in series.events)
            per_name[name] = counter_delta_per_bucket(series, edges_ms, max_spread_s)
    return {n: per_name[n] for n in names}, events
