"""The read side shared by the CLI and the API: spans, series and reports from the store."""

from __future__ import annotations

import functools
import json
from collections.abc import Iterator, Sequence
from datetime import UTC, date, datetime, time
from typing import overload
from zoneinfo import ZoneInfo

import numpy as np

from homegrid.energy.bins import group_rows
from homegrid.energy.flows import ev_unknown
from homegrid.energy.report import energy_report
from homegrid.glossary import ENERGY_CATEGORIES, EV_SOURCES
from homegrid.readings import ReadingFrame, to_ms
from homegrid.readings.rollup import EV_SOURCE_KEYS, ROLLUP_COLUMNS
from homegrid.store import BucketTable, Store
from homegrid.timezones import (
    DAY_MS,
    HOUR_MS,
    MINUTE_MS,
    local_date,
    local_day_bounds,
    local_floor_ms,
    local_isoformat,
    local_isoformat_json,
    parse_iso_time,
)

__all__ = ["SERIES_FIELDS", "BinLabels", "Queries", "clamp_day", "day_span", "parse_instant"]

#: a bin's length [ms]; a month's is its longest, for the size limit only
_STEP_MS = {"minute": MINUTE_MS, "hour": HOUR_MS, "day": DAY_MS, "month": 31 * DAY_MS}
_MAX_POINTS = {"minute": 50_000, "hour": 50_000, "day": 20_000, "month": 1_000}
#: average power [W] per bin: its energy over its length
_POWERS = {f"{cat.name}_w": cat.name for cat in ENERGY_CATEGORIES}
#: what :meth:`Queries.series` gives per bin: the rollup columns, the car's energy no source is named for
#: (``ev_from_unknown`` [Wh]), the average powers [W] and the mean state of charge (``soc_mean`` [%])
SERIES_FIELDS: tuple[str, ...] = (*ROLLUP_COLUMNS, "ev_from_unknown", *_POWERS, "soc_mean")
#: the rollup columns each computed field is made of
_MADE_OF: dict[str, tuple[str, ...]] = {"ev_from_unknown": ("ev", *EV_SOURCE_KEYS), "soc_mean": ("soc_s", "soc_sum"),
                                        **{power: (energy,) for power, energy in _POWERS.items()}}
#: the local dates a request may name; any other date is moved to the nearest of these (no store holds
#: readings outside them, and a date beyond them would overflow a day's bounds)
FIRST_DAY = date(1970, 1, 2)
LAST_DAY = date(9998, 12, 30)
_FIRST_MS = to_ms(datetime.combine(FIRST_DAY, time(0), tzinfo=UTC))
_LAST_MS = to_ms(datetime.combine(LAST_DAY, time(0), tzinfo=UTC))


@functools.lru_cache(maxsize=8192)
def _day_bounds(day: str, tz: ZoneInfo) -> tuple[int, int]:
    """:func:`local_day_bounds` of a ``YYYY-MM-DD`` label, kept: a year of days costs 2 ms to compute again."""
    return local_day_bounds(date.fromisoformat(day), tz)


def clamp_day(day: date) -> date:
    """A date moved into ``FIRST_DAY .. LAST_DAY``."""
    return min(max(day, FIRST_DAY), LAST_DAY)


def day_span(first: date, last: date, tz: ZoneInfo) -> tuple[int, int]:
    """Epoch ms from the start of local date ``first`` to the end of ``last`` (inclusive), for any dates."""
    start, _ = local_day_bounds(clamp_day(first), tz)
    _, end = local_day_bounds(clamp_day(last), tz)
    return start, end


def parse_instant(text: str, tz: ZoneInfo, *, end: bool = False) -> int:
    """Epoch ms of an ISO 8601 instant (offset required) or a local date.

    A date means its local midnight, or with ``end=True`` the next day's (dates are inclusive).
    """
    text = text.strip()
    if " " in text and "T" in text:  # an unescaped "+" in a URL query arrives as a space
        text = text.replace(" ", "+")
    if len(text) == 10:
        try:
            day = date.fromisoformat(text)
        except ValueError:
            raise ValueError(f"{text!r} is not a date (YYYY-MM-DD)") from None
        a, b = local_day_bounds(clamp_day(day), tz)
        return b if end else a
    try:
        ms = to_ms(parse_iso_time(text))
    except (ValueError, OverflowError) as exc:
        raise ValueError(f"{exc}; give an ISO 8601 time with its offset (e.g. +00:00) or a plain date") from None
    return min(max(ms, _FIRST_MS), _LAST_MS)


class BinLabels(Sequence[str]):
    """The labels of bins: given texts (local dates, months), or the local times their starts [ms] are in
    ``timezone`` with their offsets (minutes, hours), written only when asked for, as strings or straight as JSON
    (a day of minutes is 1,440 of them)."""

    def __init__(self, texts: list[str] | None = None, start_ms: np.ndarray | None = None,
                 timezone: str = "UTC") -> None:
        if start_ms is not None:
            self._count = len(start_ms)
        elif texts is not None:
            self._count = len(texts)
        else:
            raise ValueError("bin labels are texts or start times")
        self._texts, self._start_ms, self._timezone = texts, start_ms, timezone

    def as_list(self) -> list[str]:
        if self._texts is None:
            assert self._start_ms is not None
            self._texts = local_isoformat(self._start_ms, self._timezone)
        return self._texts

    def json(self) -> bytes:
        """The labels as a JSON array."""
        if self._texts is None and self._start_ms is not None:
            return local_isoformat_json(self._start_ms, self._timezone)
        return json.dumps(self.as_list()).encode()

    def __len__(self) -> int:
        return self._count

    @overload
    def __getitem__(self, index: int) -> str: ...

    @overload
    def __getitem__(self, index: slice) -> list[str]: ...

    def __getitem__(self, index: int | slice) -> str | list[str]:
        return self.as_list()[index]


class Queries:
    """Reads for reports, charts and exports, in the site's time zone."""

    def __init__(self, store: Store, tz: ZoneInfo) -> None:
        self.store = store
        self.tz = tz

    @staticmethod
    def step_ms(step: str) -> int:
        return _STEP_MS[step]

    @staticmethod
    def max_points(step: str) -> int:
        return _MAX_POINTS[step]

    def span(self, start: str, end: str) -> tuple[int, int]:
        a = parse_instant(start, self.tz)
        b = parse_instant(end, self.tz, end=True)
        if b <= a:
            raise ValueError("'to' must be after 'from'")
        return a, b

    def stored(self, start_ms: int, end_ms: int) -> tuple[int, int]:
        """A span cut to the stored data's (an empty span, ``start == end``, when none is inside), so that a
        request for the years 0001 to 9999 costs what the stored days cost. The stored data are the raw
        readings and the minute rollups, which outlive them (the raw retention)."""
        span = self.store.data_range()
        if span is None:
            return start_ms, start_ms
        a, b = max(start_ms, span[0]), min(end_ms, span[1] + MINUTE_MS)  # a minute bucket holds the minute after it
        return (a, b) if a < b else (start_ms, start_ms)

    def _bin_floor(self, step: str, t_ms: int) -> int:
        """The start of the local bin (minute, hour, day; a month's days are read whole) holding ``t_ms``."""
        if step in ("day", "month"):
            return local_day_bounds(local_date(t_ms, self.tz), self.tz)[0]
        return local_floor_ms(t_ms, _STEP_MS[step], self.tz.key)  # +05:30 hours start at :30 UTC

    def bins_end(self, step: str, end_ms: int) -> int:
        """Where the data that :meth:`series` reads for a span ending at ``end_ms`` end [ms]: the end of the bin
        holding the span's last instant (a month's days are read whole)."""
        last = end_ms - 1
        if step in ("day", "month"):
            return _day_bounds(local_date(last, self.tz).isoformat(), self.tz)[1]
        return self._bin_floor(step, last) + _STEP_MS[step]

    def series(
        self, step: str, start_ms: int, end_ms: int, now_ms: int | None = None, fields: Sequence[str] | None = None
    ) -> tuple[BucketTable, BinLabels, np.ndarray, np.ndarray]:
        """The bins of a span: rollup rows with average powers [W], mean SoC [%] and the car's unattributed energy
        (``ev_from_unknown`` [Wh]) added, their labels, where each
        ends [ms] and whether it is still going (its end after ``now_ms``, default: now).

        Bins are the site's local minutes, hours, days (23, 24 or 25 hours, labelled ``YYYY-MM-DD``) or months
        (``YYYY-MM``: the sum of its local days within the span), and only those holding stored data; a span that
        starts inside a bin gets the whole bin (the stored data are read from it, so the first bin is not cut).
        ``fields``: only these of :data:`SERIES_FIELDS`, in this order (minutes and hours read only the rollup
        columns they need); None: all of them.
        """
        wanted = SERIES_FIELDS if fields is None else tuple(fields)
        unknown = [f for f in wanted if f not in SERIES_FIELDS]
        if unknown:
            raise ValueError(f"unknown fields: {', '.join(unknown)}")
        now_ms = to_ms(datetime.now(UTC)) if now_ms is None else now_ms
        a, b = self.stored(start_ms, end_ms)
        a = self._bin_floor(step, a) if a < b else a
        needed = None if fields is None else list(dict.fromkeys(c for f in wanted for c in _MADE_OF.get(f, (f,))))
        if step in ("day", "month"):
            table, labels = self.store.read_days(a, b, needed)
            bounds = np.array([_day_bounds(d, self.tz) for d in labels], dtype=np.int64).reshape(-1, 2)
            if step == "month":
                table, labels = group_rows(table, [d[:7] for d in labels])
                bounds = np.array([self._month_bounds(m) for m in labels], dtype=np.int64).reshape(-1, 2)
                bounds[:, 0] = np.maximum(bounds[:, 0], self._bin_floor("day", start_ms))
                bounds[:, 1] = np.minimum(bounds[:, 1], end_ms)  # a month cut by the span holds its days in it
            starts, ends = bounds[:, 0], bounds[:, 1]
            bin_labels = BinLabels(labels)
        else:
            table = self.store.read_rollup(step, a, b, needed)
            starts = np.asarray(table.start_ms, dtype=np.int64)
            ends = starts + _STEP_MS[step]
            bin_labels = BinLabels(start_ms=starts, timezone=self.tz.key)
        return (BucketTable(table.start_ms, self._fields(table, wanted, starts, ends)), bin_labels, ends,
                ends > now_ms)

    def _fields(self, table: BucketTable, wanted: Sequence[str], starts: np.ndarray,
                ends: np.ndarray) -> dict[str, np.ndarray]:
        """The ``wanted`` fields of bins from ``starts`` to ``ends`` [ms] out of their rollup rows."""
        cols = table.columns
        out: dict[str, np.ndarray] = {}
        seconds = (ends - starts) / 1000.0  # a local day: 23, 24 or 25 hours
        if any(f in _POWERS for f in wanted):
            # the bin still filling (this hour, today) averages over the time it has had so far
            span = self.store.time_range()
            if span is not None and len(table):
                elapsed = (span[1] - starts) / 1000.0
                seconds = np.where((elapsed > 0) & (elapsed < seconds), elapsed, seconds)
        with np.errstate(invalid="ignore", divide="ignore"):
            for f in wanted:
                if f == "ev_from_unknown":
                    out[f] = ev_unknown(cols["ev"], {s: cols[f"ev_from_{s}"] for s in EV_SOURCES})
                elif f == "soc_mean":
                    out[f] = np.where(cols["soc_s"] > 0, cols["soc_sum"] / cols["soc_s"], np.nan)
                elif f in _POWERS:
                    out[f] = cols[_POWERS[f]] * 3600.0 / seconds
                else:
                    out[f] = cols[f]
        return out

    def _month_bounds(self, month: str) -> tuple[int, int]:
        """Epoch ms of a local month's (``YYYY-MM``) first instant and the next month's."""
        first = date.fromisoformat(f"{month}-01")
        following = date(first.year + first.month // 12, first.month % 12 + 1, 1)
        return local_day_bounds(first, self.tz)[0], local_day_bounds(following, self.tz)[0]

    def report(self, first: date, last: date) -> dict[str, object]:
        """The energy report for local dates ``first`` to ``last`` inclusive."""
        a, b = day_span(first, last, self.tz)
        totals = self.store.sum_rollup("day", a, b)
        out: dict[str, object] = {
            "from": first.isoformat(),
            "to": last.isoformat(),
            "timezone": self.tz.key,
            "days": (last - first).days + 1,
            "days_with_data": int(totals.pop("rows")),
        }
        out.update(energy_report(totals))
        return out

    def readings(self, start_ms: int, end_ms: int, chunk_ms: int = DAY_MS) -> Iterator[ReadingFrame]:
        """Raw readings in chunks, for export (only the stored part of the span is read)."""
        t, end_ms = self.stored(start_ms, end_ms)
        while t < end_ms:
            yield self.store.read_readings(t, min(t + chunk_ms, end_ms))
            t += chunk_ms
