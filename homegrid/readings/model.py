"""Readings: one UTC timestamp with any subset of the glossary's quantities.

A :class:`Reading` is one sample as a device adapter produces it. A
:class:`ReadingFrame` is many readings held column-wise (numpy arrays) for the
store and the energy maths; inside a frame, NaN means "not measured".
Times inside homegrid are integer milliseconds since the Unix epoch, UTC.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

import numpy as np

from homegrid.glossary import (
    ALL_NAMES,
    FIRST_PLAUSIBLE_MS,
    MAX_AHEAD_MS,
    MAX_POWER_W,
    Kind,
    max_counter_wh,
    quantity,
)

__all__ = [
    "InvalidReading", "Limits", "Reading", "ReadingFrame", "from_ms", "to_ms", "validate_value",
]


class InvalidReading(ValueError):
    """A value that cannot be a reading of its quantity (NaN, wrong sign, wrong type)."""


def to_ms(t: datetime) -> int:
    """Milliseconds since the epoch of a timezone-aware datetime; naive times are refused."""
    if t.tzinfo is None or t.utcoffset() is None:
        raise ValueError(f"naive datetime {t.isoformat()} has no time zone; homegrid needs aware times")
    return round(t.timestamp() * 1000)


def from_ms(ms: int) -> datetime:
    """The aware UTC datetime of epoch milliseconds."""
    return datetime.fromtimestamp(ms / 1000, tz=UTC)


#: Device jitter: a few W below zero on a meter that cannot go negative is noise, not an error.
JITTER_TOLERANCE = {"W": 50.0, "%": 0.5}


@dataclass(frozen=True)
class Limits:
    """The door's bounds on what comes in from a file: times and magnitudes no home's reading can have.

    Attributes
    ----------
    max_power_w : float
        The largest power, either sign (``[site] max_power_w``); counters are bounded by
        :func:`homegrid.glossary.max_counter_wh` of it. [W]
    earliest_ms : int
        The first plausible time. [ms UTC]
    latest_ms : int
        The last acceptable time: the clock plus :data:`homegrid.glossary.MAX_AHEAD_MS`. [ms UTC]
    """

    max_power_w: float = MAX_POWER_W
    earliest_ms: int = FIRST_PLAUSIBLE_MS
    latest_ms: int = 2**62

    @classmethod
    def now(cls, max_power_w: float = MAX_POWER_W, now_ms: int | None = None) -> Limits:
        """The bounds at ``now_ms`` (default: this machine's clock) [ms UTC]."""
        now_ms = to_ms(datetime.now(UTC)) if now_ms is None else now_ms
        return cls(max_power_w=max_power_w, latest_ms=now_ms + MAX_AHEAD_MS)

    def bound(self, name: str) -> float | None:
        """The largest magnitude a value of ``name`` may have, beyond its glossary range [its unit], or None."""
        kind = quantity(name).kind
        if kind is Kind.POWER:
            return self.max_power_w
        if kind is Kind.COUNTER:
            return max_counter_wh(self.max_power_w)
        return None


def validate_value(name: str, value: object, *, max_power_w: float = MAX_POWER_W) -> float:
    """Check one value against its glossary entry and return it as a float.

    Parameters
    ----------
    name : str
        Glossary name.
    value : object
        The raw value (number, or a grid status name or code).
    max_power_w : float
        The largest power of a home, either sign; energy counters are bounded by
        :func:`homegrid.glossary.max_counter_wh` of it. [W]

    Returns
    -------
    float
        The value, clamped to the physical range when within jitter tolerance.

    Raises
    ------
    InvalidReading
        NaN, infinity, a non-number, a value out of range beyond tolerance, or beyond the bound of a home.
    """
    q = quantity(name)
    if q.states is not None:
        try:
            # any object on purpose: what is not a name or a number raises TypeError there, caught here
            return float(q.states.parse(value))  # type: ignore[arg-type]
        except (ValueError, TypeError) as exc:
            raise InvalidReading(f"{name}: {exc}") from None
    if q.kind is Kind.FLAG:
        if value in (0, 1):  # True and False included
            return float(value)
        raise InvalidReading(f"{name}: a flag is 0 or 1, got {value!r}")
    if isinstance(value, bool) or not isinstance(value, (int, float, np.floating, np.integer)):
        raise InvalidReading(f"{name}: expected a number, got {value!r}")
    v = float(value)
    if not math.isfinite(v):
        raise InvalidReading(f"{name}: {v} is not a finite number")
    tol = JITTER_TOLERANCE.get(q.unit, 0.0)
    if q.minimum is not None and v < q.minimum:
        if v < q.minimum - tol:
            raise InvalidReading(f"{name}: {v} {q.unit} is below its minimum {q.minimum}")
        v = q.minimum
    if q.maximum is not None and v > q.maximum:
        if v > q.maximum + tol:
            raise InvalidReading(f"{name}: {v} {q.unit} is above its maximum {q.maximum}")
        v = q.maximum
    if q.kind is Kind.COUNTER and v < 0:
        raise InvalidReading(f"{name}: a counter cannot be negative ({v} Wh)")
    bound = Limits(max_power_w=max_power_w).bound(name)
    if bound is not None and abs(v) > bound:
        raise InvalidReading(f"{name}: {v:g} {q.unit} is beyond the bound of a home ({bound:g} {q.unit}, "
                             f"from [site] max_power_w = {max_power_w:g} W)")
    return v


@dataclass(frozen=True)
class Reading:
    """One sample: an aware UTC time and glossary-named values."""

    time: datetime
    values: Mapping[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.time.tzinfo is None:
            raise ValueError("Reading.time must be timezone-aware")
        for name in self.values:
            quantity(name)

    @property
    def time_ms(self) -> int:
        return to_ms(self.time)

    @classmethod
    def checked(
        cls, time: datetime, raw: Mapping[str, object], *, max_power_w: float = MAX_POWER_W
    ) -> tuple[Reading, dict[str, str]]:
        """Build a reading from raw values, keeping the valid ones.

        Parameters
        ----------
        time : datetime
            The aware time of the sample.
        raw : mapping
            Glossary name to raw value [unit of each quantity].
        max_power_w : float
            The largest power of a home (``[site] max_power_w``); see :func:`validate_value`. [W]

        Returns
        -------
        reading : Reading
            The valid values.
        problems : dict
            ``{name: problem}`` for each value that was quarantined.
        """
        good: dict[str, float] = {}
        bad: dict[str, str] = {}
        for name, value in raw.items():
            if value is None:
                continue
            try:
                good[name] = validate_value(name, value, max_power_w=max_power_w)
            except (InvalidReading, KeyError) as exc:
                bad[name] = str(exc)
        return cls(time.astimezone(UTC), good), bad


class ReadingFrame:
    """Readings held column-wise: ``time_ms`` (int64, sorted) and float64 columns.

    NaN in a column means that quantity was not measured at that time.
    """

    __slots__ = ("columns", "time_ms")

    def __init__(self, time_ms: np.ndarray, columns: Mapping[str, np.ndarray]) -> None:
        self.time_ms = np.asarray(time_ms, dtype=np.int64)
        n = len(self.time_ms)
        cols: dict[str, np.ndarray] = {}
        for name, col in columns.items():
            quantity(name)
            arr = np.asarray(col, dtype=np.float64)
            if arr.shape != (n,):
                raise ValueError(f"column {name} has shape {arr.shape}, expected ({n},)")
            cols[name] = arr
        self.columns = cols

    def __len__(self) -> int:
        return len(self.time_ms)

    def __repr__(self) -> str:
        return f"ReadingFrame({len(self)} rows, columns={list(self.columns)})"

    def column(self, name: str) -> np.ndarray:
        """The column, or all-NaN when the frame does not carry it."""
        col = self.columns.get(name)
        if col is None:
            return np.full(len(self), np.nan)
        return col

    @classmethod
    def empty(cls) -> ReadingFrame:
        return cls(np.empty(0, dtype=np.int64), {})

    @classmethod
    def from_readings(cls, readings: Iterable[Reading]) -> ReadingFrame:
        rows = sorted(readings, key=lambda r: r.time_ms)
        names = [n for n in ALL_NAMES if any(n in r.values for r in rows)]
        t = np.array([r.time_ms for r in rows], dtype=np.int64)
        cols = {n: np.array([r.values.get(n, np.nan) for r in rows], dtype=np.float64) for n in names}
        return cls(t, cols)

    def readings(self) -> Iterator[Reading]:
        """The rows as readings, each with the values measured at its time (the inverse of
        :meth:`from_readings`)."""
        names = list(self.columns)
        values = [self.columns[n].tolist() for n in names]
        for i, t in enumerate(self.time_ms.tolist()):
            yield Reading(from_ms(t), {n: v[i] for n, v in zip(names, values, strict=True) if not math.isnan(v[i])})

    def sorted(self) -> ReadingFrame:
        """A copy sorted by time; for equal times the last row wins."""
        if len(self) == 0:
            return self
        order = np.argsort(self.time_ms, kind="stable")
        t = self.time_ms[order]
        keep = np.ones(len(t), dtype=bool)
        keep[:-1] = t[1:] != t[:-1]
        return self.take(order[keep])

    def take(self, rows: np.ndarray | slice) -> ReadingFrame:
        """The rows picked by a boolean mask, an array of row numbers or a slice, in that order."""
        return ReadingFrame(self.time_ms[rows], {n: c[rows] for n, c in self.columns.items()})

    def between(self, start_ms: int, end_ms: int) -> ReadingFrame:
        """Rows with ``start_ms <= time < end_ms`` (the frame must be sorted)."""
        i0, i1 = np.searchsorted(self.time_ms, [start_ms, end_ms], side="left")
        return self.take(slice(int(i0), int(i1)))

    @staticmethod
    def concat(frames: Iterable[ReadingFrame]) -> ReadingFrame:
        frames = [f for f in frames if len(f)]
        if not frames:
            return ReadingFrame.empty()
        names = [n for n in ALL_NAMES if any(n in f.columns for f in frames)]
        t = np.concatenate([f.time_ms for f in frames])
        cols = {n: np.concatenate([f.column(n) for f in frames]) for n in names}
        return ReadingFrame(t, cols)
