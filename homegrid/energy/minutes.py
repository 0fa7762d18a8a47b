"""Minute rollups from raw readings: the recorder's accounting of a span, also handed to the store so that it can
account a sealed day's minutes again from its readings instead of keeping them (:class:`MinuteAccounting`)."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

import numpy as np

from homegrid.energy.accounting import account, active_spans
from homegrid.readings import ReadingFrame
from homegrid.readings.rollup import BucketTable
from homegrid.timezones import MINUTE_MS

__all__ = ["MinuteAccounting", "account_minute_runs", "minute_edges"]


def minute_edges(starts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The bucket edges of minutes starting at ``starts`` (each minute's start and end, once, in order) and
    which buckets between them are those minutes: ``np.union1d(starts, starts + MINUTE_MS)`` and
    ``np.isin(edges[:-1], starts)``, on sorted arrays (those hash every value first: 3 ms against 0.4 ms for a
    week of minutes)."""
    starts = np.sort(starts)  # in time order already (runs of a sorted frame): a cheap pass, kept as a guard
    edges = np.concatenate((starts, starts + MINUTE_MS))
    edges.sort()
    edges = edges[np.concatenate(([True], edges[1:] != edges[:-1]))]
    at = np.minimum(np.searchsorted(starts, edges[:-1]), len(starts) - 1)
    return edges, starts[at] == edges[:-1]


def account_minute_runs(
    frame: ReadingFrame, runs: list[np.ndarray], max_gap_s: float, columns: Collection[str] | None = None
) -> BucketTable:
    """Account runs of consecutive minute starts [ms] in one pass; the buckets between runs are left out
    (``columns``: only these rollup columns, as :func:`~homegrid.energy.accounting.account` gives them).

    The table's ``counter_events`` carry the resets and impossible jumps met (for the caller to log once).
    """
    edges, real = minute_edges(np.concatenate(runs))
    table = account(frame, edges, max_gap_s, columns)
    if not real.all():
        kept = BucketTable(table.start_ms[real], {n: c[real] for n, c in table.columns.items()})
        kept.counter_events = table.counter_events
        return kept
    return table


@dataclass(frozen=True)
class MinuteAccounting:
    """The minutes of a span that readings reach, accounted as the recorder accounts them.

    Parameters
    ----------
    max_gap_s : float
        Power samples further apart are not bridged. [s]
    """

    max_gap_s: float

    @property
    def margin_ms(self) -> int:
        """Context needed around a minute to account it exactly. [ms]"""
        return int(self.max_gap_s * 1000) + MINUTE_MS

    def spans(self, frame: ReadingFrame, start_ms: int, end_ms: int) -> list[tuple[int, int]]:
        """The parts of ``[start_ms, end_ms)`` that ``frame``'s readings reach, as whole minutes."""
        return [(max(a, start_ms), min(b, end_ms)) for a, b in active_spans(frame, self.margin_ms, MINUTE_MS)
                if min(b, end_ms) > max(a, start_ms)]

    def __call__(
        self, frame: ReadingFrame, start_ms: int, end_ms: int, columns: Collection[str] | None = None
    ) -> BucketTable:
        runs = [np.arange(a, b, MINUTE_MS, dtype=np.int64) for a, b in self.spans(frame, start_ms, end_ms)]
        if not runs:
            return account(frame, np.array([start_ms], dtype=np.int64), self.max_gap_s, columns)
        return account_minute_runs(frame, runs, self.max_gap_s, columns)
