"""Exports beside the raw readings' CSV: the minute and hour rollups, and what a span holds at each resolution.

The raw readings are kept forever unless ``[store] raw_retention_days`` is set; the rollups (energy per minute,
hour and day) are kept forever. An export of days whose raw readings were pruned says so and points at the rollups
instead of writing an empty file.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass
from zoneinfo import ZoneInfo

import numpy as np

from homegrid.glossary import EV_SOURCES, FLOWS
from homegrid.hub.queries import Queries
from homegrid.readings import from_ms
from homegrid.readings.rollup import ENERGY_KEYS
from homegrid.timezones import DAY_MS, MINUTE_MS

__all__ = ["CHUNK_MS", "ROLLUP_CSV_COLUMNS", "Coverage", "coverage", "describe_pruned", "rollup_csv_chunks"]

#: the rollup CSV's columns after ``time`` (the bucket's start, local time with its offset): energies [Wh] per
#: bucket, the car's energy by source (``ev_from_unknown``: no source named), seconds covered by readings and
#: off-grid [s], the battery's mean, lowest and highest state of charge [%]
ROLLUP_CSV_COLUMNS: tuple[str, ...] = (
    *(f"{k}_wh" for k in ENERGY_KEYS),
    *(f"{k}_wh" for k in FLOWS),
    *(f"ev_from_{s}_wh" for s in (*EV_SOURCES, "unknown")),
    "covered_s",
    "islanded_s",
    "soc_mean",
    "soc_min",
    "soc_max",
)
#: the span of rollups in each chunk of CSV text :func:`rollup_csv_chunks` yields after its header [ms]
CHUNK_MS = {"minute": DAY_MS, "hour": 31 * DAY_MS}


@dataclass(frozen=True)
class Coverage:
    """What the store holds of a span [ms UTC): raw readings and minute rollups."""

    raw: tuple[int, int] | None  # first and last raw reading inside the span
    rollups: tuple[int, int] | None  # first and last minute bucket inside the span

    @property
    def pruned(self) -> tuple[int, int] | None:
        """The part of the span held by the rollups only (before the first raw reading), if any. [ms]"""
        if self.rollups is None:
            return None
        end = self.raw[0] if self.raw is not None else self.rollups[1] + MINUTE_MS
        return (self.rollups[0], end) if self.rollups[0] < end else None


def coverage(queries: Queries, start_ms: int, end_ms: int) -> Coverage:
    """Raw readings and minute rollups held in ``[start_ms, end_ms)``."""
    store = queries.store
    raw = store.time_range()
    rollups = store.rollup_range("minute")

    def inside(span: tuple[int, int] | None) -> tuple[int, int] | None:
        if span is None or span[1] < start_ms or span[0] >= end_ms:
            return None
        return max(span[0], start_ms), min(span[1], end_ms - 1)

    return Coverage(inside(raw), inside(rollups))


def _cell(v: float) -> str:
    return "" if not np.isfinite(v) else repr(round(float(v), 6))


def rollup_csv_chunks(queries: Queries, step: str, start_ms: int, end_ms: int) -> Iterator[str]:
    """The rollups of a span as CSV text, a header then one chunk of rows at a time.

    Parameters
    ----------
    queries : Queries
        The store and the site's zone.
    step : str
        ``minute`` or ``hour``.
    start_ms, end_ms : int
        The span, end exclusive. [ms UTC]
    """
    yield ",".join(("time", *ROLLUP_CSV_COLUMNS)) + "\n"
    a, b = queries.stored(start_ms, end_ms)
    t = a
    while t < b:
        nxt = min(t + CHUNK_MS[step], b)
        table, labels, _, _ = queries.series(step, t, nxt)
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        cols = [table.columns[c.removesuffix("_wh")] for c in ROLLUP_CSV_COLUMNS]
        starts = np.asarray(table.start_ms)
        for i, label in enumerate(labels):
            if t > a and starts[i] < t:
                continue  # a bin the chunk before wrote (series gives a span's first bin whole)
            writer.writerow([label, *(_cell(col[i]) for col in cols)])
        yield out.getvalue()
        t = nxt


def describe_pruned(cov: Coverage, retention_days: float | None, tz: ZoneInfo) -> str:
    """The sentence for an export whose raw readings were pruned (dates local to ``tz``)."""
    assert cov.pruned is not None
    a, b = (from_ms(x).astimezone(tz).isoformat(timespec="minutes") for x in cov.pruned)
    before = f"before {b}" if cov.raw else "of these days"
    kept = "now kept forever" if retention_days is None else f"kept {retention_days:g} days"
    return (f"the raw readings {before} were pruned ({kept}, [store] raw_retention_days); "
            f"the minute and hour rollups hold them from {a}: give --resolution minute or --resolution hour")
