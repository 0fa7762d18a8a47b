"""The storage interface: raw readings plus rollups, behind calls any database can serve.

The embedded default is :class:`homegrid.store.sqlite.SQLiteStore`; a server
database (PostgreSQL) implements the same class.
Times are epoch milliseconds UTC; rollup steps are ``minute``, ``hour`` and
``day`` (days are the site's local days, keyed by the UTC instant of local
midnight, with their local date).
"""

from __future__ import annotations

import abc
from collections.abc import Collection, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from homegrid.readings import GridEvidence, ReadingFrame
from homegrid.readings.rollup import RAW_COLUMNS, BucketTable
from homegrid.timezones import MINUTE_MS

__all__ = ["STEPS", "GridEvidence", "MinuteAccountant", "Quarantined", "Store"]

STEPS = ("minute", "hour", "day")


@dataclass(frozen=True)
class Quarantined:
    """A value refused at the door, kept for the owner to see."""

    time_ms: int
    source: str
    field: str
    value: str
    reason: str


class MinuteAccountant(Protocol):
    """Accounts minute rollups from raw readings (the energy layer's, handed to a store by the hub), so that a
    store need not keep minute rollups that only repeat minute readings: it accounts them again when read."""

    @property
    def margin_ms(self) -> int:
        """Readings needed on each side of a span to account it exactly. [ms]"""
        ...

    def __call__(
        self, frame: ReadingFrame, start_ms: int, end_ms: int, columns: Collection[str] | None = None
    ) -> BucketTable:
        """The minute rows of ``[start_ms, end_ms)`` that ``frame``'s readings (the span, its margins and each
        column's neighbours beyond them) reach; only the rollup ``columns`` when given."""
        ...


class Store(abc.ABC):
    """Durable raw readings and rollups."""

    @abc.abstractmethod
    def write_readings(self, frame: ReadingFrame) -> int:
        """Insert or replace readings (same timestamp: the new row wins). Returns rows written."""

    @abc.abstractmethod
    def read_readings(self, start_ms: int, end_ms: int, columns: Sequence[str] | None = None) -> ReadingFrame:
        """Raw readings with ``start_ms <= time < end_ms``, sorted.

        ``columns``: only these raw columns (the rows are the same: a row that holds none of them still
        gives its time); None: every column.
        """

    def written_columns(self) -> tuple[str, ...]:
        """The raw columns that may hold values (this default: all of them; a store that keeps track says
        which were ever written)."""
        return RAW_COLUMNS

    @abc.abstractmethod
    def has_readings(self, start_ms: int, end_ms: int) -> bool:
        """Whether any raw reading lies in ``[start_ms, end_ms)``."""

    def readings_at(self, times_ms: np.ndarray) -> ReadingFrame:
        """The raw readings stored at exactly these times (sorted, distinct) [ms UTC], sorted.

        This default reads the runs of nearby times a run at a time; a database can look the times up.
        """
        t = np.asarray(times_ms, dtype=np.int64)
        if len(t) == 0 or not self.has_readings(int(t[0]), int(t[-1]) + 1):
            return ReadingFrame.empty()
        cut = np.flatnonzero(np.diff(t) > MINUTE_MS)  # a run's span holds at most a minute per time looked up
        parts = []
        for a, b in zip(np.concatenate(([0], cut + 1)).tolist(), np.append(cut, len(t) - 1).tolist(), strict=True):
            got = self.read_readings(int(t[a]), int(t[b]) + 1)
            keep = np.isin(got.time_ms, t[a : b + 1])
            parts.append(got.take(keep))
        return ReadingFrame.concat(parts)

    @abc.abstractmethod
    def neighbours(self, start_ms: int, end_ms: int) -> ReadingFrame:
        """For each column, its last sample before ``start_ms`` and first at or after ``end_ms``."""

    @abc.abstractmethod
    def latest(self) -> ReadingFrame:
        """The most recent reading of each column (one row per distinct time)."""

    @abc.abstractmethod
    def time_range(self) -> tuple[int, int] | None:
        """First and last raw reading times, or None when empty."""

    @abc.abstractmethod
    def rollup_range(self, step: str) -> tuple[int, int] | None:
        """First and last bucket start of a rollup step, or None when empty."""

    def data_range(self) -> tuple[int, int] | None:
        """First and last time the store holds data for: the raw readings and the minute rollups, which
        outlive them (the raw retention); a minute bucket counts by its start. None when empty. [ms]"""
        spans = [s for s in (self.time_range(), self.rollup_range("minute")) if s is not None]
        if not spans:
            return None
        return min(s[0] for s in spans), max(s[1] for s in spans)

    @abc.abstractmethod
    def write_rollup(self, step: str, table: BucketTable, dates: list[str] | None = None) -> None:
        """Insert or replace rollup rows (``dates``: the local date of each day row)."""

    @abc.abstractmethod
    def delete_rollup(self, step: str, start_ms: int, end_ms: int) -> None:
        """Delete rollup rows whose bucket starts within ``[start_ms, end_ms)``."""

    @abc.abstractmethod
    def read_rollup(
        self, step: str, start_ms: int, end_ms: int, columns: Sequence[str] | None = None
    ) -> BucketTable:
        """Rollup rows whose bucket starts within ``[start_ms, end_ms)`` (only ``columns`` when given)."""

    @abc.abstractmethod
    def read_days(self, start_ms: int, end_ms: int,
                  columns: Sequence[str] | None = None) -> tuple[BucketTable, list[str]]:
        """Day rollups starting within ``[start_ms, end_ms)`` (only ``columns`` when given) and their local dates."""

    @abc.abstractmethod
    def aggregate_minutes(self, start_ms: int, end_ms: int, bucket_ms: int | None = None) -> BucketTable:
        """Sum minute rollups in ``[start_ms, end_ms)``: into buckets of ``bucket_ms`` or one row."""

    @abc.abstractmethod
    def sum_rollup(self, step: str, start_ms: int, end_ms: int) -> dict[str, float]:
        """Totals over rollup rows starting within ``[start_ms, end_ms)``; ``rows`` counts those with data."""

    @abc.abstractmethod
    def delete_readings(self, start_ms: int, end_ms: int) -> int:
        """Delete raw readings with ``start_ms <= time < end_ms``; rollups stay. Returns rows deleted."""

    @abc.abstractmethod
    def prune_raw(self, before_ms: int) -> int:
        """Delete raw readings older than ``before_ms``; rollups stay. Returns rows deleted."""

    @abc.abstractmethod
    def quarantine(self, items: list[Quarantined]) -> None:
        """Keep refused values (logged and counted, never silently dropped)."""

    @abc.abstractmethod
    def quarantined(self, limit: int = 100) -> tuple[int, list[Quarantined]]:
        """Count of quarantined values and the most recent ones."""

    @abc.abstractmethod
    def write_evidence(self, items: list[GridEvidence]) -> int:
        """Keep grid-event evidence; an item already kept (same time, source, kind, name) is skipped.
        Returns how many were new."""

    @abc.abstractmethod
    def read_evidence(self, start_ms: int, end_ms: int) -> list[GridEvidence]:
        """Evidence with ``start_ms <= time < end_ms``, by time."""

    @abc.abstractmethod
    def replace_outages(self, start_ms: int, end_ms: int, events: list[dict[str, Any]]) -> None:
        """Replace the outage events starting within ``[start_ms, end_ms)`` by ``events``
        (JSON-ready dicts with ``start_ms`` and ``end_ms``, None while ongoing), in one transaction."""

    @abc.abstractmethod
    def read_outages(self, start_ms: int, end_ms: int) -> list[dict[str, Any]]:
        """Outage events overlapping ``[start_ms, end_ms)`` (an ongoing one overlaps all later times), by start."""

    @abc.abstractmethod
    def replace_disturbances(self, start_ms: int, end_ms: int, items: list[dict[str, Any]]) -> None:
        """Replace the grid disturbances timed within ``[start_ms, end_ms)`` by ``items`` (JSON-ready dicts
        with ``time_ms``, ``source`` and ``name``), in one transaction."""

    @abc.abstractmethod
    def read_disturbances(self, start_ms: int, end_ms: int) -> list[dict[str, Any]]:
        """Grid disturbances with ``start_ms <= time < end_ms``, by time."""

    @abc.abstractmethod
    def get_meta(self, key: str) -> str | None: ...

    @abc.abstractmethod
    def set_meta(self, key: str, value: str) -> None: ...

    def sealed_before(self) -> int | None:
        """Readings before this time [ms UTC] are sealed (kept as compressed blocks, changed only by a late
        reading or a correction, which raise :meth:`generation`); None while nothing is sealed."""
        return None

    def seal(self, before_ms: int) -> int:
        """Seal the whole UTC days before ``before_ms``: their readings become compressed blocks. Returns the
        days sealed (this default: a store that does not seal)."""
        return 0

    def generation(self) -> int:
        """A number that grows whenever sealed data change (a late reading, a correction, a prune): an answer
        computed from sealed periods stays valid while it is the same."""
        return 0

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Group writes so they land together or not at all."""
        yield

    def close(self) -> None:  # noqa: B027 - optional hook
        """Flush and release."""
