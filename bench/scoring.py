"""Benchmark scoring: precision and recall of detected outages against the virtual home's ground truth.

Used by ``bench/bench_outages.py`` and the accuracy tests (``tests/test_outages.py``); the hub never scores
itself, so this lives beside the benchmarks, not in ``homegrid/``. Truth is merged by the hub's own rule
(:func:`homegrid.energy.outages.merge_intervals`), so both sides mean the same thing by "an event".
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from homegrid.energy.outages import DEFAULT_MERGE_GAP_MS, Outage, merge_intervals

__all__ = ["edges", "match_events", "overlaps"]

_INF = math.inf


def edges(detected: Iterable[Outage | Mapping[str, Any]]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Point estimates and outer bounds of detected events, ``inf`` for open ends. [ms]"""
    rows = []
    for d in detected:
        if isinstance(d, Outage):
            s, e, lo, hi = d.start_ms, d.end_ms, d.start_earliest_ms, d.end_latest_ms
        else:
            s, e = d["start_ms"], d.get("end_ms")
            lo, hi = d.get("start_earliest_ms", s), d.get("end_latest_ms", e)
        rows.append((float(s), _INF if e is None else float(e), -_INF if lo is None else float(lo),
                     _INF if hi is None else float(hi)))
    rows.sort()
    a = np.array(rows, dtype=np.float64).reshape(-1, 4)
    return a[:, 0], a[:, 1], a[:, 2], a[:, 3]



def overlaps(
    ds: np.ndarray, de: np.ndarray, ts: np.ndarray, te: np.ndarray, tolerance_ms: float
) -> tuple[np.ndarray, np.ndarray]:
    """For each true event ``[ts, te]``, the detected events ``[from, to)`` overlapping it, each detected
    interval ``[ds, de]`` widened by ``tolerance_ms`` on both sides; both sides sorted and disjoint. [ms]"""
    tol = float(tolerance_ms)
    lo_w, hi_w = ds - tol, de + tol
    # detected j overlaps truth i  <=>  lo_w[j] <= te[i] and hi_w[j] >= ts[i]
    d_to = np.searchsorted(lo_w, np.asarray(te, dtype=np.float64), side="right")
    d_from = np.searchsorted(np.maximum.accumulate(hi_w) if len(hi_w) else hi_w, np.asarray(ts, dtype=np.float64),
                             side="left")
    return d_from, np.maximum(d_to, d_from)


def match_events(
    detected: Iterable[Outage | Mapping[str, Any]],
    truth: tuple[np.ndarray, np.ndarray] | Sequence[tuple[int, int]],
    *,
    merge_gap_ms: int = DEFAULT_MERGE_GAP_MS,
    min_duration_s: float = 0.0,
    max_duration_s: float | None = None,
    tolerance_ms: int = 1000,
) -> dict[str, Any]:
    """Precision and recall of detected events against ground truth.

    Truth is first merged by the merge rule (``merge_gap_ms``), so both sides
    mean the same thing by "an event". A true event is *found* when a detected
    event overlaps it, each detected interval ``[start_ms, end_ms]`` widened by
    ``tolerance_ms`` on both sides (closed: a zero-length blip at the true start
    overlaps). Only true events with ``min_duration_s <= length < max_duration_s``
    count for recall; a detected event counts for precision when it overlaps such
    a true event, or when it overlaps no true event at all and could be of such
    a length (its outer bounds considered), so every false alarm that might be
    in the class counts against it.

    Parameters
    ----------
    detected : iterable of Outage or dict
        Disjoint detected events (``start_ms``, ``end_ms``; None = ongoing).
    truth : (starts, ends) arrays or sequence of (start, end)
        True outage intervals. [ms]
    merge_gap_ms : int
        The merge rule applied to truth. [ms]
    min_duration_s, max_duration_s : float
        The class of true events counted. [s]
    tolerance_ms : int
        Edge tolerance (clocks of the gateway's log and the hub may differ). [ms]

    Returns
    -------
    dict
        ``truth``, ``found``, ``missed``, ``detected``, ``correct``,
        ``false_positive``, ``split`` (true events overlapped by more than one
        detected event), ``joined`` (detected events overlapping more than one
        true event, any class), ``precision``, ``recall`` (1.0 when there is
        nothing to count).
    """
    if isinstance(truth, tuple) and len(truth) == 2 and isinstance(truth[0], np.ndarray):
        ts, te = truth
    else:
        pairs = np.array(list(truth), dtype=np.int64).reshape(-1, 2)
        ts, te = pairs[:, 0], pairs[:, 1]
    ts, te = merge_intervals(ts, te, merge_gap_ms)
    tsf, tef = ts.astype(np.float64), te.astype(np.float64)
    ds, de, dlo, dhi = edges(detected)
    tol = float(tolerance_ms)
    lo_w, hi_w = ds - tol, de + tol
    d_from, d_to = overlaps(ds, de, ts, te, tol)
    per_truth = d_to - d_from
    t_to = np.searchsorted(tsf, hi_w, side="right")
    t_from = np.searchsorted(tef, lo_w, side="left")
    per_detected = np.maximum(t_to - t_from, 0)

    dur = (te - ts) / 1000.0
    top = _INF if max_duration_s is None else float(max_duration_s)
    in_class = (dur >= min_duration_s) & (dur < top)
    # detected events overlapping a true event of the class
    hits_class = np.zeros(len(ds), dtype=bool)
    for i in np.flatnonzero(in_class & (per_truth > 0)).tolist():
        hits_class[d_from[i]:d_to[i]] = True
    fp = per_detected == 0
    shortest = np.maximum(de - ds, 0.0) / 1000.0
    longest = (dhi - dlo) / 1000.0
    fp_in_class = fp & (longest >= min_duration_s) & (shortest < top)
    n_truth = int(in_class.sum())
    found = int((in_class & (per_truth > 0)).sum())
    n_det = int(hits_class.sum() + fp_in_class.sum())
    return {
        "truth": n_truth,
        "found": found,
        "missed": n_truth - found,
        "detected": n_det,
        "correct": int(hits_class.sum()),
        "false_positive": int(fp_in_class.sum()),
        "split": int((in_class & (per_truth > 1)).sum()),
        "joined": int((per_detected > 1).sum()),
        "precision": 1.0 if n_det == 0 else float(hits_class.sum()) / n_det,
        "recall": 1.0 if n_truth == 0 else found / n_truth,
    }
