"""Grid outages: when the utility was not supplying the home, from all the evidence at hand.

An *outage* (an *interruption*) is an interval when the utility did not supply
the site. A *grid disturbance* is a grid event the gateway logged while the home
may well have stayed on the grid: an under- or over-voltage, a frequency
excursion.

The rule: interruption or disturbance
-------------------------------------
An entry of the gateway's grid-fault log (``grid_fault``) on its own is a
**disturbance**, kept with its kind and magnitude (under-voltage 96 V, frequency
57.2 Hz; :class:`Disturbance`). Gateways log voltage and frequency warnings while
the home stays connected (vloschiavo/powerwall2 issue 2: regular over-voltage
entries), so the log alone never makes an interruption.

Only **islanding evidence** makes an interruption:

1. **Samples.** A reading whose ``grid_status`` is ISLANDED or TRANSITION
   (:class:`homegrid.glossary.GridStatus`) is an outage sample, CONNECTED is not;
   UNKNOWN or NaN says nothing. Where a reading has no grid status but has
   ``grid_voltage``, a voltage below :data:`VOLTAGE_DOWN_V` marks an outage
   sample: the site meter sits on the utility's side of the gateway's isolation
   relay and reads about 0 V while the grid is down, so these are the meters
   showing the battery alone carried the home.
2. **The island toggle time** (``island_toggle``): the gateway's
   ``last_toggle_timestamp`` changed between two polls, so it left or rejoined
   the grid at that time even if no poll saw it islanded.
3. **The cloud's backup history** (``backup_event``, an exact interval) and its
   island-status changes (``island_status``: off-grid from one change to the next
   ``on_grid`` change, telling the owner's own off-grid test from a real outage).

A fault entry *next to* islanding evidence is part of that interruption: in the
poll window before an outage's first sample it pins the start, inside it or in
the window after its last sample it is evidence of it; in the poll window of a
toggle change that no sample saw, it pins the start of that *blip* (an
interruption shorter than a poll). Any other fault entry is a disturbance.

Edges and what is not known
---------------------------
A state holds from its sample until the next sample, for at most ``max_gap_ms``
(the sample-and-hold rule the energy report uses for ``islanded_minutes``, so
the two agree). For a run of outage samples from ``t_a`` to ``t_b``, with the
samples ``t_prev`` before and ``t_next`` after it:

- ``start_ms = t_a``; the true start lies in ``(t_prev, t_a]``, so
  ``start_exact`` is False and ``start_earliest_ms = t_prev`` (None when there is
  no earlier sample). A ``grid_fault``, ``island_toggle`` or ``backup_event``
  start in that window *pins* the start: ``start_ms`` becomes its time and ``start_exact`` True (the
  earliest such entry when the window is one poll long).
- ``end_ms = min(t_b + max_gap_ms, t_next)`` and ``end_latest_ms = t_next``; the
  true end lies in ``(t_b, t_next]``. A ``backup_event`` ending in that window
  pins the end.
- Both edges from polls lag the truth by half a poll on average, so the
  duration has no bias. A pinned start does not lag: then an end from polls is
  put in the middle of its window, ``(t_b + t_next) // 2`` (or at the latest
  fault entry in it, the grid being disturbed then), else every such event
  would be half a poll too long (+13 minutes a year at 5 s polling).
- Readings further apart than ``max_gap_ms`` mean nobody was looking (the hub
  or the device was down):

  * outage samples on both sides of a gap: one outage through the gap, with
    evidence ``"hub_down_during"`` (the grid may have come back in between;
    nothing says so);
  * outage samples only before a gap: the outage ends somewhere in the gap,
    ``end_exact`` False, ``end_latest_ms`` = the first sample after it,
    evidence ``"hub_down_at_end"``;
  * outage samples only after a gap (or at the first reading): the outage
    started somewhere in the gap, ``start_exact`` False, evidence
    ``"hub_down_at_start"``; the *latest* fault entry or toggle time in the gap
    pins the start (earlier fault entries are disturbances, an earlier toggle
    time an interruption of its own, merged if close);
  * connected on both sides: only evidence inside the gap makes events.

- A status that describes the *step* starting at its reading rather than the
  instant (the virtual home's ``simulate``, averaged history) puts starts up to
  one step early and ends up to one step late; the fault log cannot pin such a
  start, its entry lying after the first outage sample.
- An outage still seen at the last sample is *ongoing* (``end_ms`` None) when
  ``now_ms`` is None or within ``max_gap_ms`` of that sample; otherwise it ended
  in the gap up to ``now_ms`` (``"hub_down_at_end"``).

- An island toggle time in an outage's end window is its exact end; in its
  start window it pins the start.

Islanding evidence that falls in no run of outage samples makes an event of its own:

- island toggle changes between two samples that saw the grid connected are a
  *blip*: it ended at the latest toggle time (``end_exact``), and began at the
  earliest fault entry or toggle time in that window when there is a fault
  entry or two toggle times or more (``start_exact``), else somewhere after the
  sample before (``start_ms`` = its end, ``start_earliest_ms`` = that sample);
  a toggle time with no sample before it says nothing (it may be years old);
- a ``backup_event`` is its exact interval ``[time, time + duration]`` (one
  without a length is a blip of length 0 at its time, over by the next sample);
- an ``island_status`` interval is used as the cloud saw it, edges inexact.

A ``grid_fault`` entry that none of these claims (also one after an outage's
exact end, in a gap after an outage was last seen, or an earlier one of several
in the gap before an outage) is a :class:`Disturbance`.

The merge rule
--------------
Outages separated by less than ``merge_gap_ms`` (default
:data:`DEFAULT_MERGE_GAP_MS`, 60 s) are one event: a recloser's repeated shots
and flickers are one interruption to the people at home. The separation is
``next.start_ms - previous.end_ms`` (overlapping events always merge); with
``merge_gap_ms = 0`` only overlapping events merge. ``Outage.parts`` counts what
was merged. The rule is idempotent: merged events are at least ``merge_gap_ms``
apart. The benchmark's scoring (``bench/scoring.py``) merges ground truth by the same rule.

Intentional outages
-------------------
An event is ``intentional`` (the owner's own "go off-grid" test) when evidence
absorbed into it says so (``island_status`` ``off_grid_intentional``) and none
says otherwise: a real outage during a test makes the whole event a real one.
Intentional events are not interruptions: :func:`monthly_summary` counts them
apart.

Times are epoch milliseconds UTC throughout. The event types live in
:mod:`.outage_events`, what an event meant for the home and the monthly figures
in :mod:`.outage_figures`, the sentences in :mod:`.outage_wording`; all are
re-exported here.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from homegrid.energy.outage_events import Disturbance, GridEvents, Outage
from homegrid.energy.outage_figures import (
    DARK_W,
    EMPTY_SOC_PERCENT,
    FIGURES_MAX_GAP_MS,
    monthly_summary,
    outage_figures,
)
from homegrid.energy.outage_wording import quiet_sentence, saved_sentence
from homegrid.glossary import GridStatus
from homegrid.readings.evidence import GridEvidence
from homegrid.timezones import MINUTE_MS

__all__ = [
    "DARK_W",
    "DEFAULT_MERGE_GAP_MS",
    "EMPTY_SOC_PERCENT",
    "FIGURES_MAX_GAP_MS",
    "VOLTAGE_DOWN_V",
    "Disturbance",
    "GridEvents",
    "Outage",
    "detect_grid_events",
    "detect_outages",
    "grid_fault_evidence",
    "merge_intervals",
    "merge_outages",
    "monthly_summary",
    "outage_figures",
    "quiet_sentence",
    "saved_sentence",
]

#: Interruptions closer than this are one event (a recloser's shots, flickers). [ms]
DEFAULT_MERGE_GAP_MS = MINUTE_MS
#: Below this the site meter's voltage means the utility is not supplying the site: half of the
#: lowest common nominal (120 V), IEEE 1547's lowest trip band (< 0.5 p.u.). [V]
VOLTAGE_DOWN_V = 60.0

_DOWN_CODES = (float(GridStatus.ISLANDED), float(GridStatus.TRANSITION))
_KNOWN_CODES = (float(GridStatus.CONNECTED), *_DOWN_CODES)
_INF = math.inf


def grid_fault_evidence(faults: Iterable[Any]) -> list[GridEvidence]:
    """Grid-fault log entries (anything with ``time_ms`` and ``name``, such as a gateway's
    :class:`~homegrid.devices.powerwall.replies.GridFault`) as :class:`GridEvidence`, with the
    entry's ``disturbance``, ``value`` and ``unit`` where it has them."""
    return [GridEvidence(int(f.time_ms), "grid_fault", str(f.name), disturbance=getattr(f, "kind", "") or "",
                         value=getattr(f, "value", None), unit=getattr(f, "unit", "") or "") for f in faults]


# --------------------------------------------------------------------------- detection


@dataclass
class _Event:
    """An event being built (mutable); ``None`` bounds are open."""

    start_ms: int
    end_ms: int | None
    start_exact: bool
    end_exact: bool
    start_earliest_ms: int | None
    end_latest_ms: int | None
    evidence: list[str] = field(default_factory=list)
    votes: list[bool] = field(default_factory=list)
    parts: int = 1

    def add(self, label: str) -> None:
        if label not in self.evidence:
            self.evidence.append(label)

    def take(self, e: GridEvidence) -> None:
        self.add(e.label)
        if e.intentional is not None:
            self.votes.append(e.intentional)

    def frozen(self) -> Outage:
        return Outage(
            start_ms=int(self.start_ms),
            end_ms=None if self.end_ms is None else int(self.end_ms),
            start_exact=self.start_exact,
            end_exact=self.end_exact and self.end_ms is not None,
            start_earliest_ms=None if self.start_earliest_ms is None else int(self.start_earliest_ms),
            end_latest_ms=None if self.end_latest_ms is None else int(self.end_latest_ms),
            evidence=tuple(self.evidence),
            intentional=bool(self.votes) and all(self.votes),
            parts=self.parts,
        )


@dataclass
class _Run:
    """A run of outage samples and the windows its edges lie in."""

    event: _Event
    lo: float  # previous sample (-inf: none): the start lies in (lo, first]
    first: int  # first outage sample
    last: int  # last outage sample
    hi: float  # next sample (+inf: none): the end lies in (last, hi]
    start_gap: bool  # the start window is a gap (or before the first reading)
    end_open: bool  # no sample after (ongoing, or up to now)
    end_gap: bool  # the end window is a gap
    pins: list[GridEvidence] = field(default_factory=list)
    late_ms: int | None = None  # the latest evidence absorbed after the last outage sample


def _samples(
    time_ms: np.ndarray, grid_status: np.ndarray, grid_voltage: np.ndarray | None, threshold_v: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Known samples: times, outage flag, and whether the flag came from the voltage."""
    t = np.asarray(time_ms, dtype=np.int64)
    status = np.asarray(grid_status, dtype=np.float64)
    if status.shape != t.shape:
        raise ValueError(f"grid_status has shape {status.shape}, time_ms {t.shape}")
    known = np.isin(status, _KNOWN_CODES)
    down = np.isin(status, _DOWN_CODES)
    by_voltage = np.zeros(len(t), dtype=bool)
    if grid_voltage is not None:
        v = np.asarray(grid_voltage, dtype=np.float64)
        if v.shape != t.shape:
            raise ValueError(f"grid_voltage has shape {v.shape}, time_ms {t.shape}")
        by_voltage = ~known & ~np.isnan(v)
        down = down | (by_voltage & (v < threshold_v))
        known = known | by_voltage
    if len(t) > 1 and bool(np.any(np.diff(t) < 0)):
        order = np.argsort(t, kind="stable")
        t, known, down, by_voltage = t[order], known[order], down[order], by_voltage[order]
    return t[known], down[known], by_voltage[known]


def _runs(
    kt: np.ndarray, kd: np.ndarray, kv: np.ndarray, max_gap_ms: int, now_ms: int | None
) -> list[_Run]:
    """One :class:`_Run` per maximal run of outage samples (gaps inside a run allowed)."""
    n = len(kt)
    if n == 0 or not kd.any():
        return []
    edge = np.diff(np.concatenate(([0], kd.astype(np.int8), [0])))
    firsts = np.flatnonzero(edge == 1)
    lasts = np.flatnonzero(edge == -1) - 1
    gap_before = np.concatenate(([0], np.cumsum(np.diff(kt) > max_gap_ms)))  # gaps among samples [0, i]
    volt = np.concatenate(([0], np.cumsum(kd & kv)))
    stat = np.concatenate(([0], np.cumsum(kd & ~kv)))
    runs = []
    for a, b in zip(firsts.tolist(), lasts.tolist(), strict=True):
        ta, tb = int(kt[a]), int(kt[b])
        prev = int(kt[a - 1]) if a > 0 else None
        nxt = int(kt[b + 1]) if b + 1 < n else None
        start_gap = prev is None or ta - prev > max_gap_ms
        if nxt is not None:
            end_gap = nxt - tb > max_gap_ms
            end_ms: int | None = min(tb + max_gap_ms, nxt)
            end_latest: int | None = nxt
            hi: float = nxt
        elif now_ms is None or now_ms - tb <= max_gap_ms:
            end_gap, end_ms, end_latest, hi = False, None, None, _INF
        else:
            end_gap, end_ms, end_latest, hi = True, tb + max_gap_ms, int(now_ms), int(now_ms)
        ev = _Event(ta, end_ms, False, False, prev, end_latest)
        if stat[b + 1] - stat[a] > 0:
            ev.add("grid_status")
        if volt[b + 1] - volt[a] > 0:
            ev.add("grid_voltage")
        if start_gap:
            ev.add("hub_down_at_start")
        if gap_before[b] - gap_before[a] > 0:
            ev.add("hub_down_during")
        if end_gap:
            ev.add("hub_down_at_end")
        runs.append(_Run(ev, -_INF if prev is None else prev, ta, tb, hi, start_gap, nxt is None, end_gap))
    return runs


def _island_intervals(items: list[GridEvidence], kt: np.ndarray, kd: np.ndarray) -> list[tuple[int, int | None,
                                                                                          list[GridEvidence]]]:
    """Off-grid intervals from island-status changes: ``(from, to or None, the changes)``.

    An interval left open by the changes ends at the first connected sample after it, if any.
    """
    out: list[tuple[int, int | None, list[GridEvidence]]] = []
    current: list[GridEvidence] = []
    for e in sorted(items, key=lambda x: x.time_ms):
        if e.off_grid:
            current.append(e)
        elif current:
            out.append((current[0].time_ms, e.time_ms, current))
            current = []
    if current:
        t0 = current[0].time_ms
        up = np.flatnonzero((kt > t0) & ~kd)
        out.append((t0, int(kt[up[0]]) if len(up) else None, current))
    return out


def detect_outages(
    time_ms: np.ndarray,
    grid_status: np.ndarray,
    grid_voltage: np.ndarray | None = None,
    evidence: Iterable[GridEvidence] = (),
    *,
    max_gap_ms: int,
    merge_gap_ms: int = DEFAULT_MERGE_GAP_MS,
    now_ms: int | None = None,
    voltage_threshold_v: float = VOLTAGE_DOWN_V,
) -> list[Outage]:
    """Interruptions from readings and evidence, fused: :func:`detect_grid_events` without the
    disturbances (same parameters)."""
    return detect_grid_events(time_ms, grid_status, grid_voltage, evidence, max_gap_ms=max_gap_ms,
                              merge_gap_ms=merge_gap_ms, now_ms=now_ms,
                              voltage_threshold_v=voltage_threshold_v).outages


def detect_grid_events(
    time_ms: np.ndarray,
    grid_status: np.ndarray,
    grid_voltage: np.ndarray | None = None,
    evidence: Iterable[GridEvidence] = (),
    *,
    max_gap_ms: int,
    merge_gap_ms: int = DEFAULT_MERGE_GAP_MS,
    now_ms: int | None = None,
    voltage_threshold_v: float = VOLTAGE_DOWN_V,
) -> GridEvents:
    """Interruptions and disturbances from readings and evidence, fused (see the module for the rules).

    Parameters
    ----------
    time_ms : array of int64
        Reading times, epoch milliseconds UTC (sorted here if they are not). [ms]
    grid_status : array
        :class:`~homegrid.glossary.GridStatus` codes; NaN or UNKNOWN where not known.
    grid_voltage : array, optional
        Site voltage, used where there is no grid status; NaN where not measured. [V]
    evidence : iterable of GridEvidence
        Fault-log entries, island toggle times, backup events and island-status changes.
    max_gap_ms : int
        Readings further apart than this mean nobody was looking. [ms]
    merge_gap_ms : int
        Events separated by less than this are one event. [ms]
    now_ms : int, optional
        The present; an outage seen at the last reading is ongoing when this is
        None or within ``max_gap_ms`` of it. [ms]
    voltage_threshold_v : float
        A voltage below this is an outage sample. [V]

    Returns
    -------
    GridEvents
        ``outages`` sorted by start and disjoint
        (``next.start_ms >= previous.end_ms + merge_gap_ms``); ``disturbances``
        (fault entries no islanding evidence claims) sorted by time.
    """
    if max_gap_ms <= 0:
        raise ValueError(f"max_gap_ms must be > 0, got {max_gap_ms}")
    if merge_gap_ms < 0:
        raise ValueError(f"merge_gap_ms must be >= 0, got {merge_gap_ms}")
    kt, kd, kv = _samples(time_ms, grid_status, grid_voltage, voltage_threshold_v)
    runs = _runs(kt, kd, kv, int(max_gap_ms), now_ms)
    items = sorted(evidence, key=lambda e: e.time_ms)
    for e in items:
        if not isinstance(e, GridEvidence):
            raise TypeError(f"evidence must be GridEvidence, got {type(e).__name__}")
    lo = np.array([r.lo for r in runs], dtype=np.float64)
    hi = np.array([r.hi for r in runs], dtype=np.float64)

    def claim(x: float) -> _Run | None:
        """The run whose window ``(lo, hi]`` holds the instant."""
        k = int(np.searchsorted(lo, x, side="left")) - 1
        return runs[k] if k >= 0 and x <= hi[k] else None

    free: list[_Event] = []
    faults: list[GridEvidence] = []  # fault entries and backup events without a length
    islands: list[GridEvidence] = []
    toggles: dict[int, list[GridEvidence]] = {}  # toggle times no run claims, by the sample after them
    disturbances: list[GridEvidence] = []

    def lone(e: GridEvidence) -> None:
        """Evidence no outage claims: a fault entry is a disturbance, anything else an event of its own."""
        if e.kind == "grid_fault":
            disturbances.append(e)
        else:
            free.append(_own(e, kt, int(max_gap_ms), now_ms))

    for e in items:
        if e.kind == "island_status":
            islands.append(e)
        elif e.kind == "grid_fault":
            faults.append(e)
        elif e.kind == "island_toggle":
            r = claim(e.time_ms)
            if r is not None:
                r.event.take(e)
                if e.time_ms <= r.first:
                    r.pins.append(e)
                elif e.time_ms > r.last:  # the grid came back then: the exact end (the latest such time wins)
                    ev = r.event
                    if not (ev.end_exact and ev.end_ms is not None and ev.end_ms >= e.time_ms):
                        ev.end_ms, ev.end_exact, ev.end_latest_ms = e.time_ms, True, e.time_ms
                continue
            j = int(np.searchsorted(kt, e.time_ms, side="left"))
            if j > 0:  # with no sample before it, nobody knows what it ended (it may be years old)
                toggles.setdefault(j, []).append(e)
        elif e.kind == "backup_event" and e.duration_ms is not None:
            s, t_end = e.time_ms, e.time_ms + e.duration_ms
            r = claim(s)
            if r is None:  # in no outage the samples saw (or before one): an exact event of its own
                free.append(_own(e, kt, int(max_gap_ms), now_ms))
                continue
            r.event.take(e)
            if s <= r.first:
                r.pins.append(e)
            ev = r.event
            if t_end > r.last and (ev.end_ms is None or not ev.end_exact or t_end > ev.end_ms):
                # the cloud's record of the end wins over a poll window (and over samples that stopped)
                ev.end_ms, ev.end_exact, ev.end_latest_ms = t_end, True, t_end
        else:  # a backup event without its length: a point like a fault entry, but islanding evidence
            faults.append(e)

    blips = [_toggle_blip(group, kt, j, int(max_gap_ms)) for j, group in sorted(toggles.items())]

    # fault entries (and backup events without a length): pins, absorbed into an interruption, or on their own
    for e in faults:
        r = claim(e.time_ms)
        if r is None:
            if e.kind != "grid_fault" or not _absorbed(e, blips, free):
                lone(e)
        elif e.time_ms <= r.first:
            r.pins.append(e)
        elif e.time_ms <= r.last or not (r.end_gap or _ended_before(r.event, e.time_ms)):
            r.event.take(e)
            if e.time_ms > r.last:
                r.late_ms = e.time_ms
        else:  # after the outage was last seen, in a gap or after its known end
            lone(e)

    for r in runs:
        if r.pins:
            if r.start_gap:  # the latest disturbance in the gap started it; earlier ones stand alone
                pin = max(r.pins, key=lambda x: x.time_ms)
                for e in r.pins:
                    if e is not pin:
                        lone(e)
            else:
                pin = min(r.pins, key=lambda x: x.time_ms)
                for e in r.pins:
                    r.event.take(e)
            r.event.take(pin)
            r.event.start_ms, r.event.start_exact, r.event.start_earliest_ms = pin.time_ms, True, pin.time_ms
            ev = r.event
            if ev.end_ms is not None and not ev.end_exact and not r.end_gap and not r.end_open:
                # the start no longer lags by half a poll on average: neither may the end
                ev.end_ms = max((r.last + int(r.hi)) // 2, r.late_ms or r.last)

    for t0, t1, changes in _island_intervals(islands, kt, kd):
        end = _INF if t1 is None else t1
        hit = [r for r in runs if r.lo < end and t0 <= r.hi]
        for r in hit:
            for e in changes:
                r.event.take(e)
        if not hit:
            before = kt[kt < t0]
            ev = _Event(t0, t1, False, False, int(before[-1]) if len(before) else None, t1)
            for e in changes:
                ev.take(e)
            free.append(ev)

    merged = _merge([r.event for r in runs] + free + blips, int(merge_gap_ms))
    once = {(e.time_ms, e.source, e.name): e for e in disturbances}  # a log repeats its entries
    return GridEvents([e.frozen() for e in merged], [Disturbance.of(once[k]) for k in sorted(once)])


def _toggle_blip(group: list[GridEvidence], kt: np.ndarray, j: int, max_gap_ms: int) -> _Event:
    """Island toggle times between samples ``j - 1`` and ``j`` (both saw the grid connected, or there is no
    sample ``j``): the gateway islanded and came back between two polls."""
    prev = int(kt[j - 1])
    nxt = int(kt[j]) if j < len(kt) else None
    first, last = group[0].time_ms, group[-1].time_ms
    if len(group) > 1:  # the earliest change in the window left the grid
        ev = _Event(first, last, True, True, first, last)
    else:
        ev = _Event(last, last, False, True, prev, last)
    for e in group:
        ev.take(e)
    if nxt is not None and nxt - prev > max_gap_ms:
        ev.add("hub_down_during")
    return ev


def _absorbed(e: GridEvidence, blips: list[_Event], free: list[_Event]) -> bool:
    """Whether a fault entry lies in the window of an interruption no run of samples saw (a blip from the toggle
    time, a backup event); it pins a blip's start when it is earlier than what the blip had."""
    t = e.time_ms
    for ev in blips:
        earliest = ev.start_earliest_ms if ev.start_earliest_ms is not None else ev.start_ms
        if earliest < t <= (ev.end_ms if ev.end_ms is not None else t):
            ev.take(e)
            if not ev.start_exact or t < ev.start_ms:
                ev.start_ms, ev.start_exact, ev.start_earliest_ms = t, True, t
            return True
    for ev in free:
        if ev.start_ms <= t and (ev.end_ms is None or t <= ev.end_ms):
            ev.take(e)
            return True
    return False


def _ended_before(ev: _Event, t_ms: int) -> bool:
    """Whether the event has an exact end (from the backup history) before the instant."""
    return ev.end_exact and ev.end_ms is not None and ev.end_ms < t_ms


def _own(e: GridEvidence, kt: np.ndarray, max_gap_ms: int, now_ms: int | None) -> _Event:
    """Evidence in no outage the samples saw, as an event of its own: a backup event is its exact
    interval; a fault entry is a blip of length 0, over by the next sample."""
    if e.kind == "backup_event" and e.duration_ms is not None:
        t_end = e.time_ms + e.duration_ms
        ev = _Event(e.time_ms, t_end, True, True, e.time_ms, t_end)
        ev.take(e)
        return ev
    j = int(np.searchsorted(kt, e.time_ms, side="right"))
    nxt = int(kt[j]) if j < len(kt) else (int(now_ms) if now_ms is not None and now_ms > e.time_ms else None)
    ev = _Event(e.time_ms, e.time_ms, True, False, e.time_ms, nxt)
    ev.take(e)
    if j < len(kt) and (j == 0 or kt[j] - kt[j - 1] > max_gap_ms):
        ev.add("hub_down_during")
    return ev


def _merge(events: list[_Event], merge_gap_ms: int) -> list[_Event]:
    """The merge rule over events being built (see the module)."""
    out: list[_Event] = []
    for ev in sorted(events, key=lambda x: (x.start_ms, not x.start_exact)):
        if out and (out[-1].end_ms is None or ev.start_ms - out[-1].end_ms < merge_gap_ms):
            _join(out[-1], ev)
        else:
            out.append(_Event(ev.start_ms, ev.end_ms, ev.start_exact, ev.end_exact, ev.start_earliest_ms,
                              ev.end_latest_ms, list(ev.evidence), list(ev.votes), ev.parts))
    return out


def _join(cur: _Event, ev: _Event) -> None:
    """Fold ``ev`` (starting no earlier) into ``cur``."""
    if ev.start_earliest_ms is None or (cur.start_earliest_ms is not None
                                        and ev.start_earliest_ms < cur.start_earliest_ms):
        cur.start_exact = False  # the later part may have begun before the earlier one
        cur.start_earliest_ms = ev.start_earliest_ms
    if cur.end_ms is None or ev.end_ms is None:
        cur.end_ms, cur.end_exact, cur.end_latest_ms = None, False, None
    else:
        other_latest = cur.end_latest_ms if ev.end_ms >= cur.end_ms else ev.end_latest_ms
        if ev.end_ms > cur.end_ms or (ev.end_ms == cur.end_ms and ev.end_exact):
            cur.end_ms, cur.end_exact, cur.end_latest_ms = ev.end_ms, ev.end_exact, ev.end_latest_ms
        if other_latest is None or (cur.end_latest_ms is not None and other_latest > cur.end_latest_ms):
            cur.end_exact = False  # the earlier-ending part may have gone on longer
            cur.end_latest_ms = other_latest
    for label in ev.evidence:
        cur.add(label)
    cur.votes.extend(ev.votes)
    cur.parts += ev.parts


def merge_outages(outages: Iterable[Outage], merge_gap_ms: int = DEFAULT_MERGE_GAP_MS) -> list[Outage]:
    """Apply the merge rule to events (idempotent: merging merged events changes nothing).

    Parameters
    ----------
    outages : iterable of Outage
    merge_gap_ms : int
        Events separated by less than this become one. [ms]

    Returns
    -------
    list of Outage
        Sorted and disjoint.
    """
    events = [
        _Event(o.start_ms, o.end_ms, o.start_exact, o.end_exact, o.start_earliest_ms, o.end_latest_ms,
               list(o.evidence), _votes(o), o.parts)
        for o in outages
    ]
    return [e.frozen() for e in _merge(events, int(merge_gap_ms))]


def _votes(o: Outage) -> list[bool]:
    """The intentional votes an event carries into a merge: intentional, explicitly not, or silent."""
    if o.intentional:
        return [True]
    if any(label.endswith("unintentional") for label in o.evidence):
        return [False]
    return []


def merge_intervals(
    starts: np.ndarray, ends: np.ndarray, merge_gap_ms: int = DEFAULT_MERGE_GAP_MS
) -> tuple[np.ndarray, np.ndarray]:
    """The merge rule over plain intervals (ground truth, for instance).

    Parameters
    ----------
    starts, ends : array of int64
        Interval edges, any order. [ms]
    merge_gap_ms : int
        Intervals separated by less than this become one. [ms]

    Returns
    -------
    starts, ends : array of int64
        Sorted, at least ``merge_gap_ms`` apart. [ms]
    """
    s = np.asarray(starts, dtype=np.int64)
    e = np.asarray(ends, dtype=np.int64)
    if len(s) == 0:
        return s.copy(), e.copy()
    order = np.argsort(s, kind="stable")
    s, e = s[order], e[order]
    run_end = np.maximum.accumulate(e)
    new = np.ones(len(s), dtype=bool)
    new[1:] = s[1:] - run_end[:-1] >= merge_gap_ms
    first = np.flatnonzero(new)
    return s[first], np.maximum.reduceat(e, first)
