"""The recorder: writes readings to the store and keeps the rollups in step.

After new readings land, every minute between the sample before them and the
sample after them is accounted again from raw data (so a gap the hub was down
for gets the energy the device counters saw in it), then the hours and local
days those minutes touch are summed again from the minutes.

Rollups are written only for the minutes readings reach (see
:func:`homegrid.energy.accounting.active_spans`), and the hours and days that
hold them: readings years apart cost their own minutes, not the years between.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Mapping
from datetime import date
from zoneinfo import ZoneInfo

import numpy as np

from homegrid.energy.bins import group_rows
from homegrid.energy.counters import MAX_SPREAD_S, CounterEvent
from homegrid.energy.minutes import MinuteAccounting, account_minute_runs
from homegrid.glossary import COUNTERS
from homegrid.hub.outages import mark_unchecked
from homegrid.hub.throttle import ThrottledWarning
from homegrid.readings import ReadingFrame, from_ms
from homegrid.store import Quarantined, Store
from homegrid.timezones import (
    DAY_MS,
    HOUR_MS,
    MINUTE_MS,
    local_date,
    local_day_bounds,
    local_floor_ms,
    local_isoformat,
)

__all__ = ["Recorder"]

log = logging.getLogger(__name__)

_HOUR_CHUNK_MS = 7 * DAY_MS  # hours summed at once from their minutes
#: a UTC day is sealed (its readings compressed into a block) this long after it ends: a late reading, e.g. a
#: device's backlog after the network came back, lands in the write-ahead table instead of a block
SEAL_AFTER_MS = 2 * HOUR_MS
_BATCH_MINUTES = 1 << 17  # minutes accounted at once (91 days): bounds the memory of one accounting pass


class Recorder:
    """Writes readings and maintains minute, hour and local-day rollups.

    Parameters
    ----------
    store : Store
        Where everything is kept.
    tz : ZoneInfo
        The site's time zone, for local days.
    max_gap_s : float
        Power samples further apart are not bridged. [s]
    """

    def __init__(self, store: Store, tz: ZoneInfo, max_gap_s: float = 300.0) -> None:
        self.store = store
        self.tz = tz
        self.max_gap_s = max_gap_s
        #: the minute accounting, also the store's for the minutes of sealed days it does not keep
        self.minutes = MinuteAccounting(max_gap_s)
        self.counter_resets = 0
        self.counter_quarantined = 0
        self._seen_events: dict[tuple[str, int], None] = {}
        self._warnings = ThrottledWarning(log)
        self._check_timezone()
        self._check_accounting()

    def _check_accounting(self) -> None:
        """The stored history is accounted with one ``max_gap_s``. A new one accounts again the minutes of the
        write-ahead table from their readings, and every hour and day from the minutes; a sealed day's minutes are
        worked out from its readings with the store's accounting, which follows the setting. The minutes of days
        whose readings were pruned keep the value they were accounted with: nothing is left to account them from."""
        stored = self.store.get_meta("max_gap_s")
        if stored is not None and float(stored) == self.max_gap_s:
            return
        self.store.set_meta("max_gap_s", repr(self.max_gap_s))
        if stored is None:  # a new store, or one from before the setting was kept: taken as accounted with it
            return
        log.warning("accounting max_gap_s changed from %s to %s s: accounting the stored minutes, hours and days "
                    "again", stored, self.max_gap_s)
        raw, cut = self.store.time_range(), self.store.sealed_before()
        with self.store.transaction():
            if raw is not None:
                first = raw[0] if cut is None else max(raw[0], cut)  # the readings of the write-ahead table
                if first <= raw[1]:
                    self.store.delete_rollup("minute", first, raw[1] + MINUTE_MS)  # a shorter gap bridges fewer
                    self._rebuild_minutes(first, raw[1])
            self._rebuild_all_hours_and_days()

    def _check_timezone(self) -> None:
        stored = self.store.get_meta("timezone")
        if stored is None:
            self.store.set_meta("timezone", self.tz.key)
        elif stored != self.tz.key:
            log.warning("site time zone changed from %s to %s: rebuilding hour and day rollups", stored, self.tz.key)
            self.store.set_meta("timezone", self.tz.key)
            with self.store.transaction():
                # hours follow the local clock (+05:30 hours start at :30 UTC), and days are summed from them
                self._rebuild_all_hours_and_days()

    def _rebuild_all_hours_and_days(self) -> None:
        """Every hour and local day summed again from the minutes (which outlive the raw readings)."""
        span = self.store.rollup_range("minute")
        self.store.delete_rollup("hour", -(2**62), 2**62)
        self.store.delete_rollup("day", -(2**62), 2**62)
        if span is not None:
            self._rebuild_hours(span[0], span[1] + MINUTE_MS)
            self._rebuild_days(span[0], span[1] + MINUTE_MS)

    # writing ------------------------------------------------------------------------------

    def quarantine(self, time_ms: int, source: str, problems: Mapping[str, tuple[str, str]]) -> None:
        """Keep refused values, ``{field: (value as text, reason)}``, in the store's quarantine.

        The same field of the same source refused again within the hour is counted, not logged again.
        """
        for name, (_value, reason) in problems.items():
            self._warnings.warn((source, name), "quarantined %s from %s at %s: %s", name, source,
                                from_ms(time_ms).isoformat(), reason)
        self.store.quarantine([Quarantined(time_ms, source, n, v, r) for n, (v, r) in problems.items()])

    def ingest(self, frame: ReadingFrame) -> None:
        """Store readings and bring the rollups they touch up to date, in one transaction."""
        if len(frame) == 0:
            return
        frame = frame.sorted()
        with self.store.transaction():
            self.store.write_readings(frame)
            mark_unchecked(self.store, int(frame.time_ms[0]))
            self.update_rollups(int(frame.time_ms[0]), int(frame.time_ms[-1]))

    def ingest_bulk(self, frames: Iterable[ReadingFrame]) -> tuple[int, int, int] | None:
        """Store many frames in one transaction and bring the rollups up to date.

        Frames that arrive in time order over a span the store does not hold yet
        (an import, a simulation) are accounted from memory as they pass; the
        edges of each such run, and any frame that overlaps stored readings, are
        accounted from the database afterwards. Returns (rows, first_ms, last_ms),
        or None when nothing was written. If iterating ``frames`` raises, nothing
        is stored.
        """
        rows = 0
        first = last = None
        run: _MemoryRun | None = None
        from_db: list[tuple[int, int]] = []
        with self.store.transaction():
            for frame in frames:
                if len(frame) == 0:
                    continue
                frame = frame.sorted()
                lo, hi = int(frame.time_ms[0]), int(frame.time_ms[-1])
                fresh = (last is None or lo > last) and not self.store.has_readings(lo, hi + 1)
                rows += self.store.write_readings(frame)
                if fresh:
                    if run is None:
                        run = _MemoryRun(self, lo)
                    run.add(frame)
                else:
                    if run is not None:
                        from_db.append(run.close())
                        run = None
                    from_db.append((lo, hi))
                first = lo if first is None else min(first, lo)
                last = hi if last is None else max(last, hi)
            if first is None or last is None:
                return None
            mark_unchecked(self.store, first)
            if run is not None:
                from_db.append(run.close())
            for a, b in from_db:
                if b >= a:
                    self._rebuild_minutes(*self._affected(a, b))
            a, b = self._affected(first, last)
            self._rebuild_hours(a, b + MINUTE_MS)
            self._rebuild_days(a, b + MINUTE_MS)
        return rows, first, last

    # rollups ------------------------------------------------------------------------------

    def _affected(self, first_ms: int, last_ms: int) -> tuple[int, int]:
        """From the sample before ``first_ms`` to the one after ``last_ms``: what new samples change."""
        around = self.store.neighbours(first_ms, last_ms + 1)
        before = around.time_ms[around.time_ms < first_ms]
        after = around.time_ms[around.time_ms > last_ms]
        a = int(before.min()) if len(before) else first_ms
        b = int(after.max()) if len(after) else last_ms
        return a, b

    def update_rollups(self, first_ms: int, last_ms: int) -> None:
        """Recompute rollups from the sample before ``first_ms`` to the one after ``last_ms``."""
        self.rebuild(*self._affected(first_ms, last_ms))

    @property
    def margin_ms(self) -> int:
        """Context needed around a minute to account it exactly. [ms]"""
        return self.minutes.margin_ms

    def rebuild(self, start_ms: int, end_ms: int) -> None:
        """Recompute every rollup touching ``[start_ms, end_ms]`` from raw readings."""
        a = (start_ms // MINUTE_MS) * MINUTE_MS
        b = (end_ms // MINUTE_MS + 1) * MINUTE_MS
        with self.store.transaction():
            self._rebuild_minutes(start_ms, end_ms)
            self._rebuild_hours(a, b)
            self._rebuild_days(a, b)

    def _rebuild_minutes(self, start_ms: int, end_ms: int, chunk_ms: int = DAY_MS) -> None:
        a = (start_ms // MINUTE_MS) * MINUTE_MS
        b = (end_ms // MINUTE_MS + 1) * MINUTE_MS
        margin = self.margin_ms
        c0 = a
        while c0 < b:
            c1 = min(c0 + chunk_ms, b)
            if not self.store.has_readings(c0 - margin, c1 + margin):
                skip_to = self._next_busy_chunk(c0, c1, a, chunk_ms)
                if skip_to is not None:
                    c0 = skip_to
                    continue
            raw = self.store.read_readings(c0 - margin, c1 + margin)
            outer = self.store.neighbours(c0 - margin, c1 + margin)
            self.write_minutes(ReadingFrame.concat([raw, outer]).sorted(), c0, c1)
            c0 = c1

    def _next_busy_chunk(self, c0: int, c1: int, origin: int, chunk_ms: int) -> int | None:
        """For a chunk with no reading near it: the start of the next chunk a reading reaches, or None when
        a counter's delta is spread over this one (it must be accounted)."""
        margin = self.margin_ms
        around = self.store.neighbours(c0 - margin, c1 + margin)
        t = around.time_ms
        for name in COUNTERS:
            col = around.columns.get(name)
            if col is None:
                continue
            ct = t[~np.isnan(col)]
            if len(ct) == 2 and ct[1] - ct[0] <= MAX_SPREAD_S * 1000:
                return None
        later = t[t >= c1 + margin]
        if len(later) == 0:
            return 2**62
        return max(c1, origin + (int(later.min()) - margin - origin) // chunk_ms * chunk_ms)

    def write_minutes(self, frame: ReadingFrame, start_ms: int, end_ms: int) -> None:
        """Account the minutes of ``[start_ms, end_ms)`` that ``frame``'s readings reach and store them."""
        spans = self.minutes.spans(frame, start_ms, end_ms)
        batch: list[np.ndarray] = []
        size = 0
        for a, b in spans:
            for c0 in range(a, b, _BATCH_MINUTES * MINUTE_MS):
                starts = np.arange(c0, min(b, c0 + _BATCH_MINUTES * MINUTE_MS), MINUTE_MS, dtype=np.int64)
                batch.append(starts)
                size += len(starts)
                if size >= _BATCH_MINUTES:
                    self._write_minute_batch(frame, batch)
                    batch, size = [], 0
        if batch:
            self._write_minute_batch(frame, batch)

    def _write_minute_batch(self, frame: ReadingFrame, runs: list[np.ndarray]) -> None:
        """Account runs of consecutive minute starts in one pass; the buckets between runs are left out."""
        table = account_minute_runs(frame, runs, self.max_gap_s)
        self._note_counter_events(table.counter_events)
        self.store.write_rollup("minute", table)

    def _note_counter_events(self, events: Iterable[tuple[str, CounterEvent]]) -> None:
        """Log each reset and quarantine each impossible jump once, however often its minutes are rebuilt."""
        jumps = []
        for name, e in events:
            key = (name, e.time_ms)
            if key in self._seen_events:
                continue
            self._seen_events[key] = None
            if len(self._seen_events) > 10_000:
                self._seen_events.pop(next(iter(self._seen_events)))
            when = from_ms(e.time_ms).isoformat()
            if e.kind == "reset":
                self.counter_resets += 1
                log.info("counter %s reset at %s (%.0f -> %.0f Wh): counted from zero", name, when, e.before, e.after)
            else:
                self.counter_quarantined += 1
                jumps.append(Quarantined(e.time_ms, "counter", name, f"{e.after:.0f}",
                                         f"impossible jump from {e.before:.0f} Wh; not counted"))
                log.warning("counter %s jumped %.0f -> %.0f Wh at %s: quarantined", name, e.before, e.after, when)
        self.store.quarantine(jumps)

    def _rebuild_hours(self, start_ms: int, end_ms: int) -> None:
        # hours follow the site's clock: in zones such as Asia/Kolkata (+05:30) they start at :30 UTC
        h0 = local_floor_ms(start_ms, HOUR_MS, self.tz.key)
        h1 = h0 + -(-(end_ms - h0) // HOUR_MS) * HOUR_MS
        for c0 in range(h0, h1, _HOUR_CHUNK_MS):  # a week at a time: the minutes of a year would not fit in memory
            self.store.write_rollup("hour", self.store.aggregate_minutes(c0, min(c0 + _HOUR_CHUNK_MS, h1), HOUR_MS))

    def _rebuild_days(self, start_ms: int, end_ms: int) -> None:
        """Sum again the local days of ``[start_ms, end_ms)`` that hold hours, from their hours (hours are summed
        first; a local day is whole local hours)."""
        first = local_date(start_ms, self.tz)
        last = local_date(max(end_ms - 1, start_ms), self.tz)
        hours = self.store.read_rollup("hour", local_day_bounds(first, self.tz)[0], local_day_bounds(last, self.tz)[1])
        if len(hours) == 0:
            return
        labels = [label[:10] for label in local_isoformat(hours.start_ms, self.tz.key)]
        days, dates = group_rows(hours, labels)
        starts = np.array([local_day_bounds(date.fromisoformat(d), self.tz)[0] for d in dates], dtype=np.int64)
        self.store.write_rollup("day", type(days)(starts, days.columns), dates)

    def quarantine_after(self, after_ms: int, reason: str) -> tuple[int, int, int] | None:
        """Move raw readings at ``after_ms`` or later into the quarantine, one row per reading with its values as
        JSON, and account the site again without them; ``(readings, first_ms, last_ms)``, or None when none.

        For readings stored while a clock ran ahead: the hub refuses every newer reading until its clock
        passes the newest stored one, which after a jump of years would be never. Nothing is deleted
        outright: the quarantine keeps every value with its time and source.
        """
        span = self.store.time_range()
        if span is None or span[1] < after_ms:
            return None
        day_start = local_day_bounds(local_date(after_ms, self.tz), self.tz)[0]
        with self.store.transaction():
            frame = self.store.read_readings(after_ms, span[1] + 1)
            self.store.quarantine([Quarantined(r.time_ms, "store", "reading", json.dumps(r.values, sort_keys=True),
                                               reason) for r in frame.readings()])
            self.store.delete_readings(after_ms, span[1] + 1)
            for step in ("minute", "hour", "day"):
                self.store.delete_rollup(step, day_start, 2**62)
            if span[0] < after_ms:
                self.rebuild(max(day_start, span[0]), after_ms)
        return len(frame), int(frame.time_ms[0]), int(frame.time_ms[-1])

    def prune(self, retention_days: float | None, now_ms: int) -> int:
        """Delete raw readings past retention (None: keep them forever; rollups are kept forever)."""
        if retention_days is None:
            return 0
        return self.store.prune_raw(now_ms - int(retention_days * DAY_MS))

    def seal_history(self, now_ms: int) -> None:
        """Before writing history (``simulate``, ``import``): seal what ended :data:`SEAL_AFTER_MS` before
        ``now_ms``, readings or not, so that the history goes straight into compressed day blocks."""
        self.store.seal(now_ms - SEAL_AFTER_MS)

    def seal(self, now_ms: int) -> int:
        """Seal the UTC days that ended at least :data:`SEAL_AFTER_MS` before ``now_ms`` and before the newest
        reading (a clock that ran ahead must not seal days still being written). Returns the days sealed."""
        span = self.store.time_range()
        if span is None:
            return 0
        return self.store.seal(min(now_ms, span[1]) - SEAL_AFTER_MS)


class _MemoryRun:
    """Minutes of a bulk write accounted from the frames as they pass, with a tail kept as context.

    The run's first ``margin`` and its last part are left to the database pass, which
    sees what was stored before and after.
    """

    def __init__(self, recorder: Recorder, first_ms: int) -> None:
        self.recorder = recorder
        self.first_ms = first_ms
        self.done_to = -(-(first_ms + recorder.margin_ms) // MINUTE_MS) * MINUTE_MS
        self.head_end = self.done_to
        self.context = ReadingFrame.empty()
        self.last_ms = first_ms

    def add(self, frame: ReadingFrame) -> None:
        margin = self.recorder.margin_ms
        self.last_ms = int(frame.time_ms[-1])
        # counters are interpolated up to their next sample: stop where the sparsest one ends
        end = self.last_ms - margin
        for name, col in frame.columns.items():
            if name in COUNTERS:
                valid = np.flatnonzero(~np.isnan(col))
                end = min(end, int(frame.time_ms[valid[-1]]) if len(valid) else self.done_to)
        end = (end // MINUTE_MS) * MINUTE_MS
        whole = ReadingFrame.concat([self.context, frame]) if len(self.context) else frame
        if end > self.done_to:
            self.recorder.write_minutes(whole, self.done_to, end)
            self.done_to = end
        self.context = _tail(whole, self.done_to - margin)

    def close(self) -> tuple[int, int]:
        """The span still to account from the database: the run's head and its tail."""
        head_end = min(self.head_end, self.last_ms)
        self.recorder._rebuild_minutes(*self.recorder._affected(self.first_ms, head_end))
        return self.done_to, self.last_ms


def _tail(frame: ReadingFrame, from_ms: int) -> ReadingFrame:
    """Rows from ``from_ms`` on, plus each column's last sample before it."""
    keep = frame.time_ms >= from_ms
    before = ~keep
    for col in frame.columns.values():
        idx = np.flatnonzero(before & ~np.isnan(col))
        if len(idx):
            keep[idx[-1]] = True
    return frame.take(keep)
