"""Energy accounting per bucket: counters where they exist, power otherwise.

:func:`account` turns raw readings into one row per bucket (a minute, an
hour, ...) holding the energy of each category, the flows, the car's sources,
the imbalance between sources and sinks (``unaccounted``), and a few state
statistics. These rows are the store's rollups; coarser rollups are sums of
finer ones (see ``homegrid.readings.rollup.SUM_COLUMNS``).
"""

from __future__ import annotations

from collections.abc import Collection

import numpy as np

from homegrid.energy.counters import MAX_SPREAD_S, counters_per_bucket
from homegrid.energy.flows import ev_sources, split_flows
from homegrid.energy.integrate import (
    coverage_per_bucket,
    energy_per_bucket,
    power_part,
    step_duration_per_bucket,
)
from homegrid.glossary import COUNTERS, ENERGY_CATEGORIES, FLOWS, GridStatus
from homegrid.readings import ReadingFrame
from homegrid.readings.rollup import EV_SOURCE_KEYS, ROLLUP_COLUMNS, BucketTable

__all__ = ["account", "active_spans"]


#: the rollup columns made of every energy category together
_OF_ALL_CATEGORIES = frozenset(("unaccounted", *FLOWS, *EV_SOURCE_KEYS))


def account(
    frame: ReadingFrame, edges_ms: np.ndarray, max_gap_s: float, columns: Collection[str] | None = None
) -> BucketTable:
    """Energy, flows and state statistics per bucket from raw readings.

    Parameters
    ----------
    frame : ReadingFrame
        Raw readings, sorted; include samples just outside the buckets (and the
        counters' last samples before and first after) so edges are exact.
    edges_ms : array of int64
        Bucket edges, epoch milliseconds UTC.
    max_gap_s : float
        Power samples further apart are not bridged. [s]
    columns : collection of str, optional
        Only these of ``ROLLUP_COLUMNS`` (a chart's few fields cost a third of them all); None: all. Each is the
        same as in the whole table.

    Returns
    -------
    BucketTable
        Columns ``ROLLUP_COLUMNS`` (or ``columns``, in that order); energies [Wh], durations [s], SoC [%]
        (``soc_sum`` is SoC integrated over time [%*s], ``soc_s`` its duration,
        so that means aggregate exactly). Counter events are those of the counters read.
    """
    wanted = ROLLUP_COLUMNS if columns is None else tuple(c for c in ROLLUP_COLUMNS if c in columns)
    if columns is not None and len(wanted) != len(set(columns)):
        raise ValueError(f"not rollup columns: {', '.join(sorted(set(columns) - set(ROLLUP_COLUMNS)))}")
    every = not _OF_ALL_CATEGORIES.isdisjoint(wanted)
    edges = np.asarray(edges_ms, dtype=np.int64)
    t = frame.time_ms
    cols: dict[str, np.ndarray] = {}
    categories = [c for c in ENERGY_CATEGORIES if every or c.name in wanted]
    read = {c.counter: frame.columns[c.counter] for c in categories if c.counter in frame.columns}
    counted_by, events = counters_per_bucket(t, read, edges)
    for cat in categories:
        counted = counted_by.get(cat.counter) if cat.counter is not None else None
        if counted is not None and counted[1].all():  # the counter covers every bucket: its power is not needed
            cols[cat.name] = counted[0]
            continue
        from_power = energy_per_bucket(t, power_part(frame.column(cat.power), cat.part), edges, max_gap_s)
        cols[cat.name] = from_power if counted is None else np.where(counted[1], counted[0], from_power)
    if every:
        _add_flows(cols)
    if "covered_s" in wanted:
        any_power = np.full(len(t), np.nan)
        for name in ("home_power", "grid_power", "solar_power", "battery_power"):
            col = frame.column(name)
            any_power = np.where(np.isnan(any_power), col, any_power)
        cols["covered_s"] = coverage_per_bucket(t, any_power, edges, max_gap_s)
    if "islanded_s" in wanted:
        status = frame.column("grid_status")
        off_grid = np.where(
            np.isnan(status),
            np.nan,
            np.isin(status, (GridStatus.ISLANDED, GridStatus.TRANSITION)).astype(np.float64),
        )
        cols["islanded_s"] = step_duration_per_bucket(t, off_grid, edges, max_gap_s)
    soc = frame.column("battery_soc")
    if "soc_s" in wanted:
        cols["soc_s"] = coverage_per_bucket(t, soc, edges, max_gap_s)
    if "soc_sum" in wanted:
        cols["soc_sum"] = energy_per_bucket(t, soc, edges, max_gap_s) * 3600.0
    if "soc_min" in wanted or "soc_max" in wanted:
        cols["soc_min"], cols["soc_max"] = _min_max_per_bucket(t, soc, edges)
    return BucketTable(edges[:-1].copy(), {c: cols[c] for c in wanted}, events)


def _add_flows(cols: dict[str, np.ndarray]) -> None:
    """The imbalance, the flows and the car's sources, from every category's energy per bucket. [Wh]"""
    sources = cols["solar"] + cols["battery_discharge"] + cols["grid_import"]
    sinks = cols["home"] + cols["battery_charge"] + cols["grid_export"]
    cols["unaccounted"] = sources - sinks
    flows = split_flows(
        cols["solar"],
        cols["battery_discharge"],
        cols["grid_import"],
        cols["home"],
        cols["battery_charge"],
        cols["grid_export"],
    )
    for name in FLOWS:
        cols[name] = flows[name]
    for src, arr in ev_sources(cols["ev"], cols["home"], flows).items():
        cols[f"ev_from_{src}"] = arr


def active_spans(
    frame: ReadingFrame, margin_ms: int, step_ms: int, max_spread_s: float = MAX_SPREAD_S
) -> list[tuple[int, int]]:
    """The spans of time that readings can give energy or state to, as whole buckets.

    A bucket outside them would hold nothing but zeros: no sample is near enough
    to bridge into it and no counter delta is spread over it. Writing rollups
    only for these spans keeps a few readings years apart from costing years of
    empty buckets.

    Parameters
    ----------
    frame : ReadingFrame
        Raw readings, sorted.
    margin_ms : int
        How far a sample reaches (the bridging limit and a bucket). [ms]
    step_ms : int
        The bucket length; spans start and end on its multiples. [ms]
    max_spread_s : float
        Counter samples at most this far apart have their delta spread between them. [s]

    Returns
    -------
    list of (start_ms, end_ms)
        Disjoint, sorted, not touching; ``end_ms`` exclusive. [ms UTC]
    """
    t = frame.time_ms
    if len(t) == 0:
        return []
    # samples closer than 2 * margin_ms reach each other: only the wider gaps cut the time into runs
    cut = np.flatnonzero(np.diff(t) > 2 * margin_ms)
    first, last = np.concatenate(([0], cut + 1)), np.append(cut, len(t) - 1)
    runs = [_runs(t[first] - margin_ms, t[last] + margin_ms, step_ms)]
    whole_seen = False  # counters read at every sample share their runs: those are worked out once
    for name in COUNTERS:
        col = frame.columns.get(name)
        if col is None:
            continue
        present = ~np.isnan(col)
        if present.all():
            if whole_seen:
                continue
            whole_seen = True
        ct = t[present]
        if len(ct) > 1:  # runs of samples no further apart than max_spread_s
            cut = np.flatnonzero(np.diff(ct) > max_spread_s * 1000.0)
            first, last = np.concatenate(([0], cut + 1)), np.append(cut, len(ct) - 1)
            keep = last > first
            runs.append(_runs(ct[first[keep]], ct[last[keep]], step_ms))
    a = np.array([x for r in runs for x in r[0]], dtype=np.int64)
    b = np.array([x for r in runs for x in r[1]], dtype=np.int64)
    order = np.argsort(a, kind="stable")
    return list(zip(*_runs(a[order], b[order], step_ms, aligned=True), strict=True))


def _runs(
    starts: np.ndarray, ends: np.ndarray, step_ms: int, aligned: bool = False
) -> tuple[list[int], list[int]]:
    """Merge intervals sorted by start into disjoint, non-touching spans of whole buckets. [ms]"""
    if len(starts) == 0:
        return [], []
    a = starts if aligned else starts // step_ms * step_ms
    b = np.maximum.accumulate(ends if aligned else (ends // step_ms + 1) * step_ms)
    cut = np.flatnonzero(a[1:] > b[:-1])
    return a[np.concatenate(([0], cut + 1))].tolist(), b[np.append(cut, len(a) - 1)].tolist()


def _min_max_per_bucket(t: np.ndarray, v: np.ndarray, edges: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    nb = len(edges) - 1
    lo = np.full(nb, np.nan)
    hi = np.full(nb, np.nan)
    ok = ~np.isnan(v)
    t, v = t[ok], v[ok]
    idx = np.searchsorted(edges, t, side="right") - 1
    inside = (idx >= 0) & (idx < nb)
    if inside.any():
        idx, vals = idx[inside], v[inside]
        lo_f = np.full(nb, np.inf)
        hi_f = np.full(nb, -np.inf)
        np.minimum.at(lo_f, idx, vals)
        np.maximum.at(hi_f, idx, vals)
        has = np.isfinite(lo_f)
        lo[has] = lo_f[has]
        hi[has] = hi_f[has]
    return lo, hi
