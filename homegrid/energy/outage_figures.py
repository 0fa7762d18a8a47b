"""What an outage meant for the home, from the readings around it, and the monthly "saved you" figures.

An event counts in the local month it starts in; intentional events (the owner's own off-grid test) are
counted apart. The sentences are :mod:`homegrid.energy.outage_wording`'s. Times are epoch milliseconds UTC.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np

from homegrid.energy.integrate import energy_per_bucket
from homegrid.energy.outage_events import Outage
from homegrid.energy.outage_wording import saved_sentence
from homegrid.readings.model import ReadingFrame

__all__ = [
    "DARK_W", "EMPTY_SOC_PERCENT", "FIGURES_COLUMNS", "FIGURES_MAX_GAP_MS", "figures_rows", "monthly_summary",
    "outage_figures",
]

#: A home drawing no more than this while the grid is down is dark. [W]
DARK_W = 10.0
#: A battery at or below this has hit its floor. [%]
EMPTY_SOC_PERCENT = 1.0
#: Power samples further apart are not bridged when figuring an event's energy (the
#: accounting default). [ms]
FIGURES_MAX_GAP_MS = 300_000
#: The reading columns :func:`outage_figures` reads.
FIGURES_COLUMNS = ("home_power", "battery_soc", "battery_power", "solar_power")


def figures_rows(outage: Outage, time_ms: np.ndarray, *, max_gap_ms: int = FIGURES_MAX_GAP_MS) -> tuple[int, int]:
    """The rows ``[j0, j1)`` of sorted reading times that :func:`outage_figures` reads for an event: those
    within ``max_gap_ms`` of it and the one reading either side of them (so a caller may read the power
    columns over these rows alone, with the same figures).

    Parameters
    ----------
    outage : Outage
    time_ms : array of int64
        Reading times, sorted. [ms]
    max_gap_ms : int
        Power samples further apart are not bridged. [ms]
    """
    start = int(outage.start_ms)
    if outage.end_ms is not None:
        end = int(outage.end_ms)
    else:
        end = max(start, int(time_ms[-1])) if len(time_ms) else start
    j0, j1 = np.searchsorted(time_ms, [start - max_gap_ms, end + max_gap_ms], side="left")
    return max(int(j0) - 1, 0), min(int(j1) + 1, len(time_ms))


def outage_figures(outage: Outage, frame: ReadingFrame, *, max_gap_ms: int = FIGURES_MAX_GAP_MS) -> dict[str, Any]:
    """What one event meant for the home, from the readings around it.

    The samples *inside* are the readings with ``start_ms <= time < end_ms`` (an
    ongoing event: through the last reading).

    Parameters
    ----------
    outage : Outage
    frame : ReadingFrame
        Readings covering the event, sorted.
    max_gap_ms : int
        Power samples further apart are not bridged. [ms]

    Returns
    -------
    dict
        - ``duration_s``: ``end_ms - start_ms`` (ongoing: up to the last reading) [s];
        - ``saved``: the home stayed powered. False when a sample inside shows the
          home at or below :data:`DARK_W` (the battery hit its floor and the home
          went dark), or the readings stop inside the event right after the
          battery was seen at or below :data:`EMPTY_SOC_PERCENT` (a Powerwall that
          runs empty takes its gateway down with it); True when samples inside show
          the home powered throughout; for an event with no sample inside (a blip
          from the fault log), judged from the last reading before it: True when
          the home was powered and the battery above its floor, False when the
          battery was at its floor; None when the readings cannot tell;
        - ``battery_wh``: battery discharge during the event (trapezoidal, as the
          energy report integrates) [Wh];
        - ``solar_wh``: solar that served the home, ``min(solar, home)`` [Wh];
          both are 0 for an event with no sample inside, None when not measured;
        - ``min_soc``: lowest state of charge inside (no sample inside: the last
          reading before) [%], None when not measured;
        - ``peak_load_w``: highest home power inside [W], None when not measured;
        - ``samples``: how many readings lie inside.
    """
    start = int(outage.start_ms)
    if outage.end_ms is not None:
        end = int(outage.end_ms)
    else:
        end = max(start, int(frame.time_ms[-1])) if len(frame) else start
    j0, j1 = figures_rows(outage, frame.time_ms, max_gap_ms=max_gap_ms)
    t = frame.time_ms[j0:j1]
    i0 = int(np.searchsorted(t, start, side="left"))
    i1 = int(np.searchsorted(t, end, side="left" if outage.end_ms is not None else "right"))
    n_in = max(0, i1 - i0)
    home, soc, bat, sol = (frame.column(name)[j0:j1] for name in FIGURES_COLUMNS)
    edges = np.array([start, max(end, start)], dtype=np.int64)
    gap_s = max_gap_ms / 1000.0

    def energy(power: np.ndarray) -> float | None:
        inside = power[i0:i1]
        if n_in and not np.isfinite(inside).any():
            return None
        if n_in == 0 or end <= start:
            return 0.0
        return round(float(energy_per_bucket(t, power, edges, gap_s)[0]), 3)

    h_in = home[i0:i1]
    s_in = soc[i0:i1]
    h_known = h_in[np.isfinite(h_in)]
    s_known = s_in[np.isfinite(s_in)]
    # the last reading before the event (within max_gap)
    j = i0 - 1
    before_ok = j >= 0 and start - int(t[j]) <= max_gap_ms
    h0 = float(home[j]) if before_ok else math.nan
    s0 = float(soc[j]) if before_ok else math.nan

    saved: bool | None
    if len(h_known) and bool(np.any(h_known <= DARK_W)):
        saved = False
    elif n_in and _went_silent(t, soc, i0, i1, max_gap_ms):
        saved = False
    elif len(h_known):
        saved = True
    elif n_in == 0 and math.isfinite(s0) and s0 <= EMPTY_SOC_PERCENT:
        saved = False
    elif n_in == 0 and math.isfinite(h0) and h0 > DARK_W:
        saved = True
    else:
        saved = None

    if len(s_known):
        min_soc: float | None = round(float(s_known.min()), 3)
    elif n_in == 0 and math.isfinite(s0):
        min_soc = round(s0, 3)
    else:
        min_soc = None
    battery_part = np.where(np.isnan(bat), np.nan, np.maximum(bat, 0.0))
    solar_home = np.where(np.isnan(sol) | np.isnan(home), np.nan, np.minimum(sol, home))
    return {
        "duration_s": round((max(end, start) - start) / 1000.0, 3),
        "saved": saved,
        "battery_wh": energy(battery_part),
        "solar_wh": energy(solar_home),
        "min_soc": min_soc,
        "peak_load_w": round(float(h_known.max()), 3) if len(h_known) else None,
        "samples": n_in,
    }


def _went_silent(t: np.ndarray, soc: np.ndarray, i0: int, i1: int, max_gap_ms: int) -> bool:
    """Readings stop for longer than ``max_gap_ms`` right after an inside sample with an empty battery."""
    nxt = t[i0 + 1 : i1 + 1]
    k = len(nxt)  # the last reading of all has no successor: nothing is known after it
    silent = (nxt - t[i0 : i0 + k]) > max_gap_ms
    return bool(np.any(silent & (soc[i0 : i0 + k] <= EMPTY_SOC_PERCENT)))


# --------------------------------------------------------------------------- monthly summary


def _as_event(e: Mapping[str, Any] | Outage) -> tuple[int, float, bool | None, bool]:
    """``(start_ms, duration_s, saved, intentional)`` of an event dict or an Outage."""
    if isinstance(e, Outage):
        d = e.duration_ms
        return e.start_ms, 0.0 if d is None else d / 1000.0, None, e.intentional
    start = int(e["start_ms"])
    dur = e.get("duration_s")
    if dur is None:
        end = e.get("end_ms")
        dur = 0.0 if end is None else (int(end) - start) / 1000.0
    saved = e.get("saved")
    return start, float(dur), None if saved is None else bool(saved), bool(e.get("intentional", False))


def monthly_summary(events: Iterable[Mapping[str, Any] | Outage], tz: ZoneInfo) -> list[dict[str, Any]]:
    """Per local month: how many interruptions, how long, how many the battery carried the home through.

    An event counts in the local month it starts in, whole, even when it runs
    into the next. Intentional events (the owner's own off-grid test) are not
    interruptions: they are counted apart in ``intentional`` and in nothing else.

    Parameters
    ----------
    events : iterable of dict or Outage
        Event dicts as :func:`outage_figures` completes them (``start_ms``,
        ``end_ms``, ``duration_s``, ``saved``, ``intentional``), or bare
        :class:`Outage` (then ``saved`` is not known; an ongoing one counts 0 minutes).
    tz : ZoneInfo
        The site's zone.

    Returns
    -------
    list of dict
        Sorted by month, only months with events: ``month`` ("YYYY-MM"),
        ``count``, ``minutes`` [min], ``under_1_min``, ``saved``,
        ``saved_minutes`` [min], ``not_saved`` (the home went dark),
        ``intentional``, ``sentence``.
    """
    months: dict[str, dict[str, Any]] = {}
    for e in events:
        start, dur, saved, intentional = _as_event(e)
        key = datetime.fromtimestamp(start / 1000.0, tz).strftime("%Y-%m")
        m = months.setdefault(key, {"month": key, "count": 0, "minutes": 0.0, "under_1_min": 0, "saved": 0,
                                    "saved_minutes": 0.0, "not_saved": 0, "intentional": 0})
        if intentional:
            m["intentional"] += 1
            continue
        m["count"] += 1
        m["minutes"] += dur / 60.0
        m["under_1_min"] += dur < 60.0
        if saved:
            m["saved"] += 1
            m["saved_minutes"] += dur / 60.0
        elif saved is False:
            m["not_saved"] += 1
    out = []
    for key in sorted(months):
        m = months[key]
        m["sentence"] = saved_sentence(m["saved"], m["saved_minutes"], m["not_saved"])
        m["minutes"] = round(m["minutes"], 2)
        m["saved_minutes"] = round(m["saved_minutes"], 2)
        out.append(m)
    return out
