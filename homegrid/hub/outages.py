"""Outage events kept up to date from the store: live after each flush, in bulk after an import.

Detection itself is :func:`homegrid.energy.outages.detect_outages` (pure); this module
feeds it stored readings and evidence over a window, stores the events it finds (they
survive restarts: a restarted hub re-detects from what is stored, marking what it did
not see), and notifies when an event starts and ends.

Readings are committed before detection runs over them, so a process killed in between
would leave readings without their events. The store's meta key ``outages_checked_ms``
is a high-water mark: every reading at or before it has been through detection. It is
moved only after a detection is stored (and moved back by a write at or before it), and
:meth:`OutageTracker.resume` re-detects from it to the newest reading when a hub starts.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict
from datetime import date
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np

from homegrid.energy.outages import Outage, detect_outages, monthly_summary, outage_figures
from homegrid.hub.notify import Notifier
from homegrid.readings import ReadingFrame
from homegrid.store import GridEvidence, Store
from homegrid.timezones import local_isoformat

__all__ = ["CHECKED_KEY", "OutageTracker", "mark_unchecked"]

log = logging.getLogger(__name__)

DAY_MS = 86_400_000
LIVE_LOOKBACK_MS = 3_600_000  # a live update re-reads the last hour (and any event still open)
OPEN_KEY = "outages_open"  # events announced as started and not yet ended, kept across restarts
ENDED_KEY = "outages_ended"  # recent events announced as ended
MAX_ENDED_KEPT = 1000
CHECKED_KEY = "outages_checked_ms"  # readings at or before this time have been through detection [ms]


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
                 notifier: Notifier | None = None) -> None:
        self.store = store
        self.tz = tz
        self.max_gap_ms = int(max_gap_ms)
        self.merge_gap_ms = int(merge_gap_ms)
        self.notifier = notifier
        self._open: set[int] = set(json.loads(store.get_meta(OPEN_KEY) or "[]"))
        self._ended: set[int] = set(json.loads(store.get_meta(ENDED_KEY) or "[]"))

    @property
    def has_open(self) -> bool:
        """Whether an event is still going (so new readings may end it)."""
        return bool(self._open)

    # ---------------------------------------------------------------- evidence

    def add_evidence(self, items: list[GridEvidence]) -> int:
        """Keep evidence from a device (a gateway repeats its whole fault log; repeats are ignored)."""
        return self.store.write_evidence(items)

    # ---------------------------------------------------------------- detection

    def _detect(self, start_ms: int, end_ms: int, now_ms: int | None) -> tuple[list[dict], int]:
        """Events starting in ``[start_ms, end_ms)``, reading further on while one is still going.

        Returns the events and the end of what was read.
        """
        margin = self.max_gap_ms + self.merge_gap_ms
        read_end = end_ms + margin
        last = self.store.time_range()
        data_end = last[1] + 1 if last else end_ms
        while True:
            frame = self.store.read_readings(start_ms - margin, read_end)
            evidence = self.store.read_evidence(start_ms - margin, read_end)
            found = self._outages(frame, evidence, now_ms)
            open_late = [o for o in found if o.end_ms is None or o.end_ms >= read_end - margin]
            if not open_late or read_end >= data_end:
                break
            read_end = min(data_end, read_end + DAY_MS)
        events = [self._event(o, frame) for o in found if start_ms <= o.start_ms < end_ms]
        return events, read_end

    def _outages(self, frame: ReadingFrame, evidence: list[GridEvidence], now_ms: int | None) -> list[Outage]:
        voltage = frame.columns.get("grid_voltage")
        # sparse data (a minute-step import, the virtual backfill) is not a hub that stopped looking
        step = float(np.median(np.diff(frame.time_ms))) if len(frame) > 2 else 0.0
        gap = max(self.max_gap_ms, int(2.5 * step))
        return detect_outages(
            frame.time_ms, frame.column("grid_status"), voltage, evidence, max_gap_ms=gap,
            merge_gap_ms=self.merge_gap_ms, now_ms=now_ms,
        )

    def _event(self, outage: Outage, frame: ReadingFrame) -> dict[str, Any]:
        figures = outage_figures(outage, frame)
        event = {k: v for k, v in asdict(outage).items() if k != "evidence"}
        event["evidence"] = list(outage.evidence)
        event.update(figures)
        return _json_ready(event)

    def update(self, now_ms: int, since_ms: int | None = None) -> list[dict]:
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
        stored = self.store.read_outages(start, now_ms + 1)
        if stored:
            start = min(start, min(int(e["start_ms"]) for e in stored))
        events, _ = self._detect(start, now_ms + 1, now_ms)
        self.store.replace_outages(start, now_ms + 1, events)
        self._announce(events)
        return events

    def rebuild(self, start_ms: int, end_ms: int) -> int:
        """Detect every event in ``[start_ms, end_ms)`` (after an import or a backfill), a day at a time;
        returns how many were found. No notifications: this is history."""
        count = 0
        t = start_ms
        while t < end_ms:
            chunk_end = min(end_ms, t + DAY_MS)
            events, _ = self._detect(t, chunk_end, None)
            self.store.replace_outages(t, chunk_end, events)
            count += len(events)
            t = chunk_end
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
                "the first reading" if mark is None else local_isoformat(np.array([start]), self.tz.key)[0],
                local_isoformat(np.array([span[1]]), self.tz.key)[0], found)
        return found

    def ongoing(self) -> int | None:
        """The newest reading's time when a stored event is still going there (the next readings may end
        it, so they want detection), else None. [ms]"""
        span = self.store.time_range()
        if span is None:
            return None
        events = self.store.read_outages(span[1], span[1] + 1)
        return span[1] if any(e.get("end_ms") is None for e in events) else None

    def _announce(self, events: list[dict]) -> None:
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
        out["start"] = local_isoformat(np.array([event["start_ms"]]), self.tz.key)[0]
        end = event.get("end_ms")
        out["end"] = None if end is None else local_isoformat(np.array([end]), self.tz.key)[0]
        return out

    def report(self, start_ms: int, end_ms: int) -> dict[str, Any]:
        """``{"events": [...], "months": [...]}`` for events starting in ``[start_ms, end_ms)``."""
        events = [e for e in self.store.read_outages(start_ms, end_ms) if start_ms <= e["start_ms"] < end_ms]
        shown = [self.display(e) for e in events]
        return {"timezone": self.tz.key, "events": shown, "months": monthly_summary(events, self.tz)}


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
