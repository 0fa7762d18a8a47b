"""Rows to be stored, compared with the readings stored at their times (the door's duplicate rule).

A time is one reading: a row whose values are all stored already is a duplicate (dropped); one that
disagrees with a stored value is a conflict (refused, never written over the stored reading); one that
only adds quantities the stored reading lacks is kept.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from homegrid.readings.model import ReadingFrame

__all__ = ["Conflict", "StoredComparison", "compare_with_stored"]


@dataclass(frozen=True)
class Conflict:
    """A row whose time is stored with another value: its index in the frame, the first differing
    quantity, and both values."""

    row: int
    name: str
    stored: float
    new: float


@dataclass(frozen=True)
class StoredComparison:
    """``keep``: the rows to write (a boolean mask); ``conflicts``: the rows refused; ``duplicates``: how
    many rows were dropped because every value of theirs is stored already."""

    keep: np.ndarray
    conflicts: list[Conflict]
    duplicates: int


def compare_with_stored(frame: ReadingFrame, stored: ReadingFrame) -> StoredComparison:
    """Compare rows with the readings stored at their times.

    Parameters
    ----------
    frame : ReadingFrame
        Rows to be written, sorted, one per time.
    stored : ReadingFrame
        The readings stored at (some of) those times (``Store.readings_at``).

    Returns
    -------
    StoredComparison
    """
    keep = np.ones(len(frame), dtype=bool)
    if len(stored) == 0 or len(frame) == 0:
        return StoredComparison(keep, [], 0)
    _, ia, ib = np.intersect1d(frame.time_ms, stored.time_ms, assume_unique=True, return_indices=True)
    if len(ia) == 0:
        return StoredComparison(keep, [], 0)
    conflict = np.zeros(len(ia), dtype=bool)
    adds = np.zeros(len(ia), dtype=bool)
    first_diff: dict[int, str] = {}
    for name, col in frame.columns.items():
        new, old = col[ia], stored.column(name)[ib]
        has_new = ~np.isnan(new)
        differs = has_new & ~np.isnan(old) & (new != old)
        for k in np.flatnonzero(differs & ~conflict).tolist():
            first_diff[k] = name
        conflict |= differs
        adds |= has_new & np.isnan(old)
    conflicts = [
        Conflict(int(ia[k]), first_diff[k], float(stored.column(first_diff[k])[ib[k]]),
                 float(frame.columns[first_diff[k]][ia[k]]))
        for k in np.flatnonzero(conflict).tolist()
    ]
    keep[ia[conflict | ~adds]] = False
    return StoredComparison(keep, conflicts, int((~conflict & ~adds).sum()))
