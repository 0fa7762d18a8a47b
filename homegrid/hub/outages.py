"""Outage events kept up to date from the store: live after each flush, in bulk after an import.

Detection itself is :func:`homegrid.energy.outages.detect_grid_events` (pure); this module
feeds it stored readings and evidence over a window (only the grid status and voltage, and none at
all where neither was ever written and there is no evidence; the powers an event's figures need are
read over that event's rows alone), stores the interruptions and the grid
disturbances it finds (they survive restarts: a restarted hub re-detects from what is
stored, marking what it did not see), and notifies when an interruption starts and ends.
Disturbances (fault-log entries with no islanding evidence) are listed, never announced.

A store written before disturbances were told apart keeps its events; each event whose
only evidence was fault-log entries (a "blip" by the old rule) is turned into the
disturbances it was made of, once (meta key ``outages_rule``).

Readings are committed before detection runs over them, so a process killed in between
would leave readings without their events. The store's meta key ``outages_checked_ms``
is a high-water mark: every reading at or before it has been through detection. It is
moved only after a detection is stored (and moved back by a write at or before it), and
:meth:`OutageTracker.resume` re-detects from it to the newest reading when a hub starts.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass
from datetime import date
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np

from homegrid.energy.outage_figures import FIGURES_COLUMNS, figures_rows
from homegrid.energy.outages import (
    Disturbance,
    Outage,
    detect_grid_events,
    monthly_summary,
    outage_figures,
    quiet_sentence,
    saved_sentence,
)
from homegrid.hub.notify import Notifier
from homegrid.readings import ReadingFrame
from homegrid.store import GridEvidence, Store
from homegrid.timezones import DAY_MS, HOUR_MS, local_time_text

__all__ = ["CHECKED_KEY", "DETECTION_COLUMNS", "HeldReadings", "OutageTracker", "mark_unchecked"]

log = logging.getLogger(__name__)

DETECTION_COLUMNS = ("grid_status", "grid_voltage")  # what detection reads besides the evidence
LIVE_LOOKBACK_MS = HOUR_MS  # a live update re-reads the last hour (and any event still open)
EVIDENCE_LOOKBACK_MS = DAY_MS  # and back to new evidence, at most this far (a gateway's log spans about a day)
OPEN_KEY = "outages_open"  # events announced as started and not yet ended, kept across restarts
ENDED_KEY = "outages_ended"  # recent events announced as ended
MAX_ENDED_KEPT = 1000
CHECKED_KEY = "outages_checked_ms"  # readings at or before this time have been through detection [ms]
RULE_KEY = "outages_rule"  # the version of the interruption/disturbance rule the stored events follow
RULE = "2"  # 2: a fault-log entry alone is a disturbance (1: it was a blip)
_NOT_SEEN = ("hub_down_at_start", "hub_down_during", "hub_down_at_end")


@dataclass(frozen=True)
class HeldReadings:
    """Every reading the store holds in ``[start_ms, end_ms)``, in memory (at least :data:`DETECTION_COLUMNS`):
    what a caller that just wrote that span into an empty store still has, so :meth:`OutageTracker.rebuild`
    need not read it back. [ms]"""

    start_ms: int
    end_ms: int
    frame: ReadingFrame


def mark_unchecked(store: Store, first_ms: int) -> None:
    """Readings from ``first_ms`` on were just written: move the mark before them if it was past them
    (an import of older history), in the writer's transaction, so a kill before detection is resumed."""
    value = store.get_meta(CHECKED_KEY)
    if value is not None and int(first_ms) <= int(value):
        store.set_meta(CHECKED_KEY, str(int(first_ms) - 1))


class OutageTracker:
    """Detects, stores and announces outage events for one site.

    Parameters
    ----------
    store : Store
    tz : ZoneInfo
        The site's zone (months and display).
    max_gap_ms : int
        Readings further apart mean the hub (or the device) was not looking. [ms]
    merge_gap_ms : int
        Interruptions closer than this are one event. [ms]
    notifier : Notifier, optional
    """

    def __init__(self, store: Store, tz: ZoneInfo, max_gap_ms: int, merge_gap_ms: int,
                 notifier: Notifier | None = None, *, writer: bool = True) -> None:
        self.store = store
        self.tz = tz
        self.max_gap_ms = int(max_gap_ms)
        self.merge_gap_ms = int(merge_gap_ms)
        self.notifier = notifier
        self._open: set[int] = set(json.loads(store.get_meta(OPEN_KEY) or "[]"))
        self._ended: set[int] = set(json.loads(store.get_meta(ENDED_KEY) or "[]"))
        self._evidence_from: int | None = None  # the oldest evidence kept since the last update [ms]
        self._old_rule = store.get_meta(RULE_KEY) != RULE
        self._held: HeldReadings | None = None  # set during a rebuild given readings in memory
        if self._old_rule and writer:
            self._upgrade_rule()

    def _old_blips(self, events: list[dict[str, Any]]) -> list[tuple[dict[str, Any], list[dict[str, Any]]]]:
        """Stored events only fault-log entries made (the old rule's blips), each with the disturbances it was."""
        out = []
        for e in events:
            labels = [x for x in e.get("evidence", []) if x not in _NOT_SEEN]
            if not labels or not all(x.startswith("grid_fault:") for x in labels):
                continue
            start, end = int(e["start_ms"]), int(e["end_ms"] if e.get("end_ms") is not None else e["start_ms"])
            faults = [x for x in self.store.read_evidence(start, end + 1) if x.kind == "grid_fault"]
            out.append((e, [self._disturbance(Disturbance.of(x)) for x in faults]))
        return out

    def _upgrade_rule(self) -> None:
        """Turn stored events that only fault-log entries made (the old rule's blips) into the disturbances
        they were; everything else is kept as it was (its readings may be pruned: nothing is re-detected)."""
        with self.store.transaction():
            old = self._old_blips(self.store.read_outages(-(2**62), 2**62))
            for e, disturbances in old:
                start = int(e["start_ms"])
                self.store.replace_outages(start, start + 1, [])
                self.store.replace_disturbances(start, (e.get("end_ms") or start) + 1, disturbances)
            self.store.set_meta(RULE_KEY, RULE)
        self._old_rule = False
        if old:
            log.info("%d stored outage events had only fault-log evidence: kept as grid disturbances", len(old))

    @property
    def has_open(self) -> bool:
        """Whether an event is still going (so new readings may end it)."""
        return bool(self._open)

    # ---------------------------------------------------------------- evidence

    def add_evidence(self, items: list[GridEvidence]) -> int:
        """Keep evidence from a device (a gateway repeats its whole fault log; repeats are ignored). The next
        :meth:`update` looks back to the oldest of it, up to :data:`EVIDENCE_LOOKBACK_MS`."""
        new = self.store.write_evidence(items)
        if new and items:
            oldest = min(e.time_ms for e in items)
            self._evidence_from = oldest if self._evidence_from is None else min(self._evidence_from, oldest)
        return new

    # ---------------------------------------------------------------- detection

    def _detect(
        self, start_ms: int, end_ms: int, now_ms: int | None
    ) -> tuple[list[dict[str, Any]], list[dict[str, Any]], int]:
        """Events starting in ``[start_ms, end_ms)`` and disturbances timed in it, reading further on while an
        event is still going, and further back while one was already going at the first reading read (a window
        that starts in a gap would otherwise see the part of an outage after the gap as an event of its own,
        where the whole store holds one outage through the gap).

        Returns the events, the disturbances and the end of what was read.
        """
        margin = self.max_gap_ms + self.merge_gap_ms
        read_start, read_end = start_ms - margin, end_ms + margin
        grid_columns = [c for c in DETECTION_COLUMNS if c in self.store.written_columns()]
        span = self.store.time_range()
        data_start, data_end = (span[0], span[1] + 1) if span else (read_start, end_ms)
        while True:
            evidence = self.store.read_evidence(read_start, read_end)
            if not grid_columns and not evidence:  # nothing to detect from (an import of powers alone)
                return [], [], read_end
            frame = self._read_grid(read_start, read_end, grid_columns)
            if not frame.columns and not evidence:
                return [], [], read_end
            found, disturbances = self._outages(frame, evidence, now_ms)
            open_late = [o for o in found if o.end_ms is None or o.end_ms >= read_end - margin]
            first = int(frame.time_ms[0]) if len(frame) else read_end
            open_early = [o for o in found if o.start_ms <= first]
            if open_late and read_end < data_end:
                read_end = min(data_end, read_end + DAY_MS)
            elif open_early and read_start > data_start:
                read_start = max(data_start, read_start - DAY_MS)
            else:
                break
        events = [self._event(o, frame.time_ms) for o in found if start_ms <= o.start_ms < end_ms]
        kept = [self._disturbance(d) for d in disturbances if start_ms <= d.time_ms < end_ms]
        return events, kept, read_end

    def _read_grid(self, start_ms: int, end_ms: int, columns: list[str]) -> ReadingFrame:
        """``store.read_readings(start_ms, end_ms, columns=columns)``, the part :attr:`_held` covers from memory
        (the same rows and values: a column that is all NaN over the span is left out, as the store leaves it)."""
        held = self._held
        if held is None or end_ms <= held.start_ms or start_ms >= held.end_ms:
            return self.store.read_readings(start_ms, end_ms, columns=columns)
        a, b = max(start_ms, held.start_ms), min(end_ms, held.end_ms)
        mid = held.frame.between(a, b)
        parts = [
            self.store.read_readings(start_ms, a, columns=columns) if start_ms < a else ReadingFrame.empty(),
            ReadingFrame(mid.time_ms, {c: mid.columns[c] for c in columns if c in mid.columns}),
            self.store.read_readings(b, end_ms, columns=columns) if b < end_ms else ReadingFrame.empty(),
        ]
        frame = ReadingFrame.concat(parts)
        return ReadingFrame(frame.time_ms, {c: v for c, v in frame.columns.items() if not np.isnan(v).all()})

    def _outages(self, frame: ReadingFrame, evidence: list[GridEvidence],
                 now_ms: int | None) -> tuple[list[Outage], list[Disturbance]]:
        voltage = frame.columns.get("grid_voltage")
        # sparse data (a minute-step import, the virtual backfill) is not a hub that stopped looking
        step = float(np.median(np.diff(frame.time_ms))) if len(frame) > 2 else 0.0
        gap = max(self.max_gap_ms, int(2.5 * step))
        found = detect_grid_events(
            frame.time_ms, frame.column("grid_status"), voltage, evidence, max_gap_ms=gap,
            merge_gap_ms=self.merge_gap_ms, now_ms=now_ms,
        )
        return found.outages, found.disturbances

    @staticmethod
    def _disturbance(d: Disturbance) -> dict[str, Any]:
        return _json_ready(asdict(d))

    def _event(self, outage: Outage, time_ms: np.ndarray) -> dict[str, Any]:
        """The stored event: detection's fields and :func:`outage_figures` from the power columns, read over
        the rows around the event alone (``time_ms``: the times of the rows detection read). [ms]"""
        j0, j1 = figures_rows(outage, time_ms)
        frame = ReadingFrame.empty()
        if j1 > j0:
            frame = self.store.read_readings(int(time_ms[j0]), int(time_ms[j1 - 1]) + 1, columns=FIGURES_COLUMNS)
        figures = outage_figures(outage, frame)
        event = {k: v for k, v in asdict(outage).items() if k != "evidence"}
        event["evidence"] = list(outage.evidence)
        event.update(figures)
        return _json_ready(event)

    def update(self, now_ms: int, since_ms: int | None = None) -> list[dict[str, Any]]:
        """Re-detect recent events after new readings; notify starts and ends. Returns the events seen.

        Parameters
        ----------
        now_ms : int
            The present. [ms]
        since_ms : int, optional
            The oldest reading not yet through detection, when older than the usual lookback
            (an hour). [ms]
        """
        start = now_ms - LIVE_LOOKBACK_MS
        if since_ms is not None:
            start = min(start, since_ms - self.max_gap_ms - self.merge_gap_ms)
        if self._open:
            start = min(start, min(self._open))
        if self._evidence_from is not None:  # a fault entry read late (a log read after a restart) is placed too,
            span = self.store.time_range()  # over raw readings still kept only (events of pruned days stay as they are)
            back = max(self._evidence_from, now_ms - EVIDENCE_LOOKBACK_MS) - self.max_gap_ms - self.merge_gap_ms
            if span is not None:
                start = min(start, max(back, span[0]))
            self._evidence_from = None
        stored = self.store.read_outages(start, now_ms + 1)
        if stored:
            start = min(start, min(int(e["start_ms"]) for e in stored))
        events, disturbances, _ = self._detect(start, now_ms + 1, now_ms)
        with self.store.transaction():
            self.store.replace_outages(start, now_ms + 1, events)
            self.store.replace_disturbances(start, now_ms + 1, disturbances)
        self._announce(events)
        return events

    def rebuild(self, start_ms: int, end_ms: int, held: HeldReadings | None = None) -> int:
        """Detect every event in ``[start_ms, end_ms)`` (after an import or a backfill), a day at a time;
        returns how many were found. No notifications: this is history.

        ``held``: the readings the caller just wrote, when the store held none in their span before
        (``homegrid simulate`` into an empty span): detection reads their grid columns from memory, not
        back from the store, with the same result.
        """
        count = 0
        t = start_ms
        self._held = held
        try:
            while t < end_ms:
                chunk_end = min(end_ms, t + DAY_MS)
                events, disturbances, _ = self._detect(t, chunk_end, None)
                with self.store.transaction():
                    self.store.replace_outages(t, chunk_end, events)
                    self.store.replace_disturbances(t, chunk_end, disturbances)
                count += len(events)
                t = chunk_end
        finally:
            self._held = None
        self._covered(start_ms, end_ms)
        return count

    # ---------------------------------------------------------------- high-water mark

    @property
    def checked_ms(self) -> int | None:
        """Every reading at or before this time has been through detection; None: not known. [ms]"""
        value = self.store.get_meta(CHECKED_KEY)
        return None if value is None else int(value)

    def set_checked(self, time_ms: int) -> None:
        """Record that detection has seen every reading up to ``time_ms`` (after its events are stored)."""
        self.store.set_meta(CHECKED_KEY, str(int(time_ms)))

    def _covered(self, start_ms: int, end_ms: int) -> None:
        """Move the mark after detection over ``[start_ms, end_ms)``, when that range joins what was checked."""
        mark = self.checked_ms
        if mark is None:
            span = self.store.time_range()
            if span is None or start_ms > span[0]:
                return  # older readings were never checked
        elif start_ms > mark + 1 or end_ms - 1 <= mark:
            return
        self.set_checked(end_ms - 1)

    def resume(self) -> int:
        """Detect what a killed process left undetected: readings after the mark (all raw readings when a
        store has none), from the mark less the merge margin; returns how many events were found there.

        Events are stored as history (no notification); one still going at the newest reading is left to
        the live hub's next detection (see :meth:`ongoing`).
        """
        span = self.store.time_range()
        mark = self.checked_ms
        if span is None or (mark is not None and mark >= span[1]):
            return 0
        start = span[0]
        if mark is not None:  # an event that began before the mark may have gone on after it
            start = max(span[0], mark + 1 - self.max_gap_ms - self.merge_gap_ms)
            stored = [int(e["start_ms"]) for e in self.store.read_outages(start, span[1] + 1)]
            start = max(span[0], min([start, *stored]))
        found = self.rebuild(start, span[1] + 1)
        self.set_checked(span[1])
        log.log(logging.INFO if found or mark is None else logging.DEBUG,
                "outage detection resumed from %s over readings up to %s: %d events",
                "the first reading" if mark is None else local_time_text(start, self.tz.key),
                local_time_text(span[1], self.tz.key), found)
        return found

    def ongoing(self) -> int | None:
        """The newest reading's time when a stored event is still going there (the next readings may end
        it, so they want detection), else None. [ms]"""
        span = self.store.time_range()
        if span is None:
            return None
        events = self.store.read_outages(span[1], span[1] + 1)
        return span[1] if any(e.get("end_ms") is None for e in events) else None

    def _announce(self, events: list[dict[str, Any]]) -> None:
        """Send ``outage_started`` once for an event still going, ``outage_ended`` once when it is over
        (a blip found after the fact gets only the latter). Both sets survive restarts."""
        opened: set[int] = set()
        ended = set(self._ended)
        for e in events:
            if e.get("intentional"):
                continue
            s = int(e["start_ms"])
            if e["end_ms"] is None:
                opened.add(s)
                if s not in self._open and self.notifier is not None:
                    self.notifier.notify("outage_started", self.display(e))
            elif s not in ended:
                ended.add(s)
                if self.notifier is not None:
                    self.notifier.notify("outage_ended", self.display(e))
        if opened != self._open or ended != self._ended:
            self._open, self._ended = opened, set(sorted(ended)[-MAX_ENDED_KEPT:])
            self.store.set_meta(OPEN_KEY, json.dumps(sorted(self._open)))
            self.store.set_meta(ENDED_KEY, json.dumps(sorted(self._ended)))

    # ---------------------------------------------------------------- report

    def display(self, event: dict[str, Any]) -> dict[str, Any]:
        """An event as users read it: local ISO 8601 times with offset."""
        out = dict(event)
        out["start"] = local_time_text(event["start_ms"], self.tz.key)
        end = event.get("end_ms")
        out["end"] = None if end is None else local_time_text(end, self.tz.key)
        return out

    def display_disturbance(self, d: dict[str, Any]) -> dict[str, Any]:
        """A disturbance as users read it: its local ISO 8601 time with offset."""
        return {**d, "time": local_time_text(d["time_ms"], self.tz.key)}

    def covered(self, start_ms: int, end_ms: int) -> tuple[int, int] | None:
        """The part of ``[start_ms, end_ms)`` the hub has readings for (raw, or the minute rollups that
        outlive them), as ``(first, last)`` reading times; None when it has none. [ms]"""
        span = self.store.data_range()
        if span is None:
            return None
        first, last = max(start_ms, span[0]), min(end_ms - 1, span[1])
        return (first, last) if first <= last else None

    def report(self, start_ms: int, end_ms: int) -> dict[str, Any]:
        """Interruptions starting in ``[start_ms, end_ms)`` (``events``, ``months``) and the grid disturbances
        timed in it (``disturbances``), the local dates the hub has readings for (``covered``) and one
        ``sentence`` for the period: how many interruptions the battery saved the home from, or that there
        were none over the days covered (never over days the hub did not record)."""
        events = [e for e in self.store.read_outages(start_ms, end_ms) if start_ms <= e["start_ms"] < end_ms]
        lone = self.store.read_disturbances(start_ms, end_ms)
        if self._old_rule:  # a store no writer has brought to the rule yet (a reader changes nothing): shown as it
            old = self._old_blips(events)
            dropped = {id(e) for e, _ in old}
            events = [e for e in events if id(e) not in dropped]
            lone = sorted(lone + [d for _, ds in old for d in ds], key=lambda d: d["time_ms"])
        shown = [self.display(e) for e in events]
        disturbances = [self.display_disturbance(d) for d in lone]
        span = self.covered(start_ms, end_ms)
        dates = None if span is None else [local_time_text(t, self.tz.key)[:10] for t in span]
        real = [e for e in events if not e.get("intentional")]
        if real:
            saved = [e for e in real if e.get("saved")]
            minutes = sum(float(e.get("duration_s") or 0.0) for e in saved) / 60.0
            dark = sum(1 for e in real if e.get("saved") is False)
            where = "" if dates is None else f"from {dates[0]} to {dates[1]}"
            sentence = saved_sentence(len(saved), minutes, dark, period=where or "in this period")
        else:
            sentence = quiet_sentence(*(dates or (None, None)))
        return {"timezone": self.tz.key, "events": shown, "months": monthly_summary(events, self.tz),
                "interruptions": len(real), "disturbances": disturbances,
                "covered": None if dates is None else {"from": dates[0], "to": dates[1]}, "sentence": sentence}


def _json_ready(event: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in event.items():
        if isinstance(v, (np.floating, float)):
            out[k] = None if not np.isfinite(v) else float(v)
        elif isinstance(v, np.integer):
            out[k] = int(v)
        elif isinstance(v, (date,)):
            out[k] = v.isoformat()
        else:
            out[k] = v
    return out
