"""The canonical readings CSV: parse it in streamed chunks, validate every value, write it back.

Format
------
One row per timestamp. The ``time`` column holds an ISO 8601 time **with a UTC
offset**: ``YYYY-MM-DDThh[:mm[:ss[.fraction]]]`` followed by ``Z`` or
``±hh[[:]mm]`` (a space may replace the ``T``; up to 9 fraction digits, rounded
to the millisecond, half up). Every other column is a glossary name
(:data:`homegrid.glossary.ALL_NAMES`), any subset, in any order. An empty cell
means "not measured". ``grid_status`` cells hold a name (``connected``,
``islanded``, ``transition``, ``unknown``) and ``ev_charging_state`` cells a name
(``charging``, ``complete`` ...); both are written as names and read as names or
their integer codes (files written before the names). The file is UTF-8
(a byte-order mark is allowed), lines end in ``\\n`` or ``\\r\\n``, fields never
contain a newline, blank lines are skipped.

Reading and writing
-------------------
This module reads; :mod:`homegrid.readings.csvwrite` writes (:func:`write_csv`, re-exported here), and
:mod:`homegrid.readings.problems` holds what the door reports (:class:`Problem`, :class:`BadRow` ...).
:func:`iter_csv` reads the file in byte blocks of about ``chunk_rows`` lines. A
block is first parsed by ``pyarrow.csv`` (multi-threaded C++) and checked with
vectorised glossary rules. Only a block that pyarrow refuses (a non-number, a
naive time, a wrong field count, a blank line) is cut into smaller blocks
until the failing pieces are at most a few thousand lines, which the exact
Python path parses line by line. Both paths apply the same rules
(:func:`check_values` reproduces :func:`homegrid.readings.validate_value`), so a
row gets the same outcome whichever path reads it, and every problem carries
its exact 1-based line number (the header is line 1).

The door
--------
Beyond the glossary's ranges, every row is checked against :class:`~homegrid.readings.Limits`:
a time before 1990-01-01 UTC or more than a day ahead of the clock, a power beyond
``max_power_w`` (1 MW by default) either way, or an energy counter beyond what that
power gives in 100 years is a problem of its row. A field longer than
:data:`~homegrid.glossary.MAX_FIELD_CHARS` (1 kB) or a line longer than
:data:`~homegrid.glossary.MAX_LINE_BYTES` (64 kB) is a problem of its line, quoting
at most 80 characters; an overlong line is skipped as it is read, never held whole.

Rows are sorted by time. Rows with the same time (to the millisecond, so rows
under 1 ms apart are the same time) are merged when they agree (every quantity
measured in both has the same value): the extra rows are duplicates, dropped and
counted. When they disagree, every row of that time is a problem naming the other
line; none is imported. With a ``stored`` lookup (the store's readings) a row
whose time is stored already is compared the same way: identical values are a
duplicate, dropped; a disagreement is a problem naming both values. Duplicates
in different blocks of a large file meet this way too, once the first block is
stored.
"""

from __future__ import annotations

import csv
import io
import itertools
import math
import os
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pyarrow as pa
import pyarrow.csv as pcsv

from homegrid.glossary import (
    ALL_NAMES,
    COUNTER_YEARS,
    MAX_FIELD_CHARS,
    MAX_LINE_BYTES,
    GridStatus,
    Kind,
    StatusEnum,
    quantity,
)
from homegrid.readings.compare import compare_with_stored
from homegrid.readings.csvwrite import STATUS, STATUSES, TIME, format_times, unknown_column, write_csv
from homegrid.readings.model import JITTER_TOLERANCE, Limits, ReadingFrame, from_ms
from homegrid.readings.problems import QUOTE_CHARS, BadRow, ImportCounts, Problem, ProblemList
from homegrid.timezones import IsoTimeError, Refusal, parse_iso_ms

__all__ = [
    "TIME",
    "BadRow",
    "ImportCounts",
    "Problem",
    "ProblemList",
    "check_values",
    "format_times",
    "iter_csv",
    "read_csv",
    "validate_csv",
    "write_csv",
]

_SAMPLE_BYTES = 1 << 16  # first read, to estimate the bytes per line
_MAX_BLOCK_BYTES = 1 << 28  # 256 MiB: never hold a larger raw block
_SLOW_LINES = 2048  # blocks this small that pyarrow refuses go to the exact path
_LINE_ESTIMATE_BYTES = 256  # bytes per line assumed at most when sizing blocks (a long first line is no guide)
_SPLIT_PARTS = 8  # a refused larger block is cut into this many parts

_NUMBER = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")
_NONFINITE = re.compile(r"[+-]?(?:nan|inf|infinity)", re.IGNORECASE)

# Reason codes of check_values; 0 means the value is fine.
OK, NOT_FINITE, BELOW_MIN, ABOVE_MAX, NEGATIVE_COUNTER, NOT_A_NUMBER, BAD_STATUS, BEYOND_BOUND = range(8)
# Reason codes of the time column.
BAD_TIME, TOO_EARLY, TOO_LATE = 1, 2, 3

_STATUS_CHOICES = ", ".join(m.name.lower() for m in GridStatus)


# ----------------------------------------------------------------------------- value rules


_DEFAULT_LIMITS = Limits()


def _reason(name: str, code: int, limits: Limits = _DEFAULT_LIMITS) -> str:
    """The sentence for a reason code of column ``name``."""
    if code == BEYOND_BOUND:
        q = quantity(name)
        either = "either way" if q.kind is Kind.POWER else f"for a counter ({COUNTER_YEARS} years at that power)"
        return (f"is beyond the bound of a home, {limits.bound(name):g} {q.unit} {either} "
                f"(from [site] max_power_w = {limits.max_power_w:g} W)")
    if code == NOT_A_NUMBER:
        return "is not a number"
    if code == NOT_FINITE:
        return "is not a finite number"
    q = quantity(name)
    if code == BAD_STATUS and q.states is not None and name != STATUS:
        return (f"is not a {name}; expected one of " + ", ".join(m.name.lower() for m in q.states)
                + f" or the code 0-{max(q.states)}")
    if code == BAD_STATUS and q.kind is Kind.FLAG:
        return f"is not a flag; {name} is 0 or 1"
    if code == BAD_STATUS:
        return f"is not a grid status; expected one of {_STATUS_CHOICES} or the code 0-3"
    tol = JITTER_TOLERANCE.get(q.unit, 0.0)
    if code == BELOW_MIN:
        return f"is below the minimum {q.minimum:g} {q.unit} of {name} (tolerance {tol:g} {q.unit})"
    if code == ABOVE_MAX:
        return f"is above the maximum {q.maximum:g} {q.unit} of {name} (tolerance {tol:g} {q.unit})"
    if code == NEGATIVE_COUNTER:
        return "is negative; an energy counter cannot be [Wh]"
    raise ValueError(f"unknown reason code {code}")


def check_values(
    name: str, values: np.ndarray, measured: np.ndarray, limits: Limits = _DEFAULT_LIMITS
) -> tuple[np.ndarray, np.ndarray]:
    """Apply the glossary rules of :func:`~homegrid.readings.validate_value` to a column.

    Parameters
    ----------
    name : str
        Glossary name of a numeric quantity (not ``grid_status``).
    values : ndarray of float64
        The parsed values [unit of the quantity].
    measured : ndarray of bool
        True where the cell held a value (False: empty cell, not measured).
    limits : Limits
        The door's bounds (``max_power_w`` for powers and counters).

    Returns
    -------
    clean : ndarray of float64
        The values clamped into range where within jitter tolerance; NaN where not
        measured or invalid.
    codes : ndarray of uint8
        0 where fine, else the reason code (``NOT_FINITE``, ``BELOW_MIN``, ...).
    """
    q = quantity(name)
    v = np.array(values, dtype=np.float64)
    codes = np.zeros(len(v), dtype=np.uint8)
    codes[measured & ~np.isfinite(v)] = NOT_FINITE
    ok = measured & (codes == OK)
    tol = JITTER_TOLERANCE.get(q.unit, 0.0)
    if q.minimum is not None:
        low = ok & (v < q.minimum)
        codes[low & (v < q.minimum - tol)] = BELOW_MIN
        v[low] = q.minimum
    if q.maximum is not None:
        high = ok & (v > q.maximum)
        codes[high & (v > q.maximum + tol)] = ABOVE_MAX
        v[high] = q.maximum
    if q.kind is Kind.COUNTER:
        codes[ok & (v < 0)] = NEGATIVE_COUNTER
    bound = limits.bound(name)
    if bound is not None:
        codes[ok & (codes == OK) & (np.abs(v) > bound)] = BEYOND_BOUND
    if q.states is not None or q.kind is Kind.FLAG:
        allowed = [m.value for m in q.states] if q.states is not None else [0, 1]
        codes[ok & ~np.isin(v, allowed)] = BAD_STATUS
    v[~measured | (codes != OK)] = np.nan
    return v, codes


def _parse_number(text: str) -> tuple[float, int]:
    """A numeric cell: ``(value, OK)``, ``(nan, OK)`` when empty, or ``(nan, code)``."""
    s = text.strip(" \t")
    if not s:
        return np.nan, OK
    if _NUMBER.fullmatch(s):
        return float(s), OK
    if _NONFINITE.fullmatch(s):
        return np.nan, NOT_FINITE
    return np.nan, NOT_A_NUMBER


def _parse_status(text: str, states: type[StatusEnum] = GridStatus) -> tuple[float, int]:
    """A status cell (name or code of ``states``): ``(code, OK)``, ``(nan, OK)`` when empty, or
    ``(nan, BAD_STATUS)``."""
    s = text.strip(" \t")
    if not s:
        return np.nan, OK
    if _NUMBER.fullmatch(s):
        code = float(s)
        if not math.isfinite(code) or code not in {float(m.value) for m in states}:
            return np.nan, BAD_STATUS
        return code, OK
    if _NONFINITE.fullmatch(s):
        return np.nan, BAD_STATUS
    try:
        return float(states.parse(s)), OK
    except ValueError:
        return np.nan, BAD_STATUS


#: the sentence of each refusal of :func:`homegrid.timezones.parse_iso_ms`, following the cell's text
_REFUSED = {
    Refusal.EMPTY: "is empty; every row needs a time",
    Refusal.NOT_ISO: "is not an ISO 8601 time with offset such as 2025-06-01T12:00:00+02:00",
    Refusal.DATE_ONLY: "is a date without a time and UTC offset; write e.g. 2025-06-01T00:00:00+02:00",
    Refusal.NAIVE: "has no UTC offset (a naive time); add Z or an offset such as +02:00",
    Refusal.INVALID: "is not a valid date, time or UTC offset",
}


def _parse_time(text: str) -> int | str:
    """Epoch milliseconds of an ISO 8601 time with offset, or the reason it is refused."""
    try:
        return parse_iso_ms(text.strip(" \t"))
    except IsoTimeError as exc:
        return _REFUSED[exc.why]


def _time_code(t_ms: np.ndarray, limits: Limits) -> np.ndarray:
    """``TOO_EARLY`` or ``TOO_LATE`` where a time is outside the door's span, else ``OK``."""
    codes = np.zeros(len(t_ms), dtype=np.uint8)
    codes[t_ms < limits.earliest_ms] = TOO_EARLY
    codes[t_ms > limits.latest_ms] = TOO_LATE
    return codes


def _time_reason(code: int, limits: Limits) -> str:
    """The sentence for a time outside the door's span."""
    if code == TOO_EARLY:
        first = from_ms(limits.earliest_ms).isoformat()
        return f"is before {first}, the first plausible time of a home's reading"
    last = from_ms(limits.latest_ms).isoformat(timespec="milliseconds")
    return f"is more than a day ahead of the clock (the latest time taken now is {last})"


# ----------------------------------------------------------------------------- header


@dataclass(frozen=True)
class _Layout:
    """The columns of one file, as its header names them."""

    file: str
    names: tuple[str, ...]  # every header column, in file order
    time_index: int
    values: tuple[str, ...]  # glossary columns, in file order
    limits: Limits = _DEFAULT_LIMITS

    def index(self, name: str) -> int:
        return self.names.index(name)


def _split_cells(text: str) -> list[str]:
    """Cells of one line (no line ending); CSV quotes honoured when present."""
    if '"' not in text:
        return text.split(",")
    try:
        return next(csv.reader([text]), [""])
    except csv.Error:  # a lone carriage return inside a line: its cells as the commas cut them
        return text.split(",")


def _header_problem(file: str, field: str | None, reason: str) -> BadRow:
    return BadRow(Problem(file, 1, field, None, reason))


def _read_header(f: io.BufferedIOBase, file: str, limits: Limits = _DEFAULT_LIMITS) -> _Layout:
    """Read and check the header line; raise :class:`BadRow` naming what is wrong."""
    raw = f.readline(MAX_LINE_BYTES + 1)
    if len(raw) > MAX_LINE_BYTES:
        raise _header_problem(file, None, f"the header line is longer than {MAX_LINE_BYTES:,} bytes")
    if raw.startswith(b"\xef\xbb\xbf"):
        raw = raw[3:]
    try:
        text = raw.decode("utf-8").rstrip("\n").rstrip("\r")
    except UnicodeDecodeError:
        raise _header_problem(file, None, "the header is not UTF-8 text") from None
    if not text.strip():
        raise _header_problem(file, None, f"no header line; expected {TIME!r} and glossary names")
    names = tuple(c.strip() for c in _split_cells(text))
    for name in names:
        if name != TIME and name not in ALL_NAMES:
            raise _header_problem(file, name[:QUOTE_CHARS], unknown_column(name[:QUOTE_CHARS]))
    for name in set(names):
        if names.count(name) > 1:
            raise _header_problem(file, name, f"column {name!r} appears {names.count(name)} times")
    if TIME not in names:
        raise _header_problem(file, None, f"no {TIME!r} column; the header is {', '.join(names)}")
    values = tuple(n for n in names if n != TIME)
    return _Layout(file, names, names.index(TIME), values, limits)


# ----------------------------------------------------------------------------- blocks


@dataclass
class _Block:
    """Parsed lines: every row that has the right field count, its line, a mask of bad rows, the problems."""

    time_ms: np.ndarray
    columns: dict[str, np.ndarray]
    bad: np.ndarray
    problems: list[tuple[int, int, Problem]]  # (line, column index, problem), for sorting
    lines: np.ndarray  # the 1-based line of each row

    @classmethod
    def concat(cls, blocks: Sequence[_Block], layout: _Layout) -> _Block:
        return cls(
            np.concatenate([b.time_ms for b in blocks]),
            {n: np.concatenate([b.columns[n] for b in blocks]) for n in layout.values},
            np.concatenate([b.bad for b in blocks]),
            [p for b in blocks for p in b.problems],
            np.concatenate([b.lines for b in blocks]),
        )

    def good_frame(self, layout: _Layout, stored: StoredLookup | None, counts: ImportCounts) -> ReadingFrame:
        """The good rows, sorted, duplicates merged; disagreeing rows become problems of the block."""
        t, cols, lines = self.time_ms, self.columns, self.lines
        if self.bad.any():
            keep = ~self.bad
            t, cols, lines = t[keep], {n: c[keep] for n, c in cols.items()}, lines[keep]
        frame, lines, problems, dropped = _merge_same_times(t, cols, lines, layout)
        if stored is not None and len(frame):
            frame, lines, more, also = _against_stored(frame, lines, stored(frame.time_ms), layout)
            problems += more
            dropped += also
        counts.duplicates += dropped
        self.problems.extend((p.line, layout.time_index, p) for p in problems)
        return frame

    def sorted_problems(self) -> list[Problem]:
        return [p for _, _, p in sorted(self.problems, key=lambda x: (x[0], x[1]))]


#: ``stored(times_ms)``: the readings stored at exactly these times (``Store.readings_at``).
StoredLookup = Callable[[np.ndarray], ReadingFrame]


def _time_text(t_ms: int) -> str:
    return from_ms(t_ms).isoformat(timespec="milliseconds")


def _shown(name: str, v: float) -> str:
    return STATUSES[name](int(v)).name.lower() if name in STATUSES else repr(float(v))


def _merge_same_times(
    t: np.ndarray, cols: dict[str, np.ndarray], lines: np.ndarray, layout: _Layout
) -> tuple[ReadingFrame, np.ndarray, list[Problem], int]:
    """Sort rows by time and merge the rows of one time that agree; refuse those that do not.

    Returns the frame (one row per time), the line of each of its rows (the first line of a
    merged time), the problems of disagreeing rows, and how many duplicate rows were dropped.
    """
    if len(t) < 2 or bool(np.all(t[1:] > t[:-1])):
        return ReadingFrame(t, cols), lines, [], 0
    order = np.argsort(t, kind="stable")
    t, lines = t[order], lines[order]
    cols = {n: c[order] for n, c in cols.items()}
    same = t[1:] == t[:-1]
    if not same.any():
        return ReadingFrame(t, cols), lines, [], 0
    starts = np.flatnonzero(np.concatenate(([True], ~same)))
    sizes = np.diff(np.append(starts, len(t)))
    conflict = np.zeros(len(starts), dtype=bool)
    merged: dict[str, np.ndarray] = {}
    for name, col in cols.items():
        hi = np.fmax.reduceat(col, starts)  # fmax and fmin skip NaN: the measured values of each time
        lo = np.fmin.reduceat(col, starts)
        conflict |= ~np.isnan(hi) & (hi != lo)
        merged[name] = hi
    problems = []
    for g in np.flatnonzero(conflict).tolist():
        a, b = int(starts[g]), int(starts[g] + sizes[g])
        p, q, name = _first_disagreement(cols, a, b)
        lp, lq = int(lines[p]), int(lines[q])
        for i in range(a, b):
            reason = (f"has the same time (to the millisecond) as line {lq if i == p else lp}, and the rows of this "
                      f"time disagree: {name} is {_shown(name, cols[name][p])} on line {lp} and "
                      f"{_shown(name, cols[name][q])} on line {lq}; no row of this time is imported")
            problems.append(Problem(layout.file, int(lines[i]), TIME, _time_text(int(t[i])), reason))
    keep = ~conflict
    frame = ReadingFrame(t[starts[keep]], {n: c[keep] for n, c in merged.items()})
    return frame, lines[starts[keep]], problems, int((sizes[keep] - 1).sum())


def _first_disagreement(cols: dict[str, np.ndarray], a: int, b: int) -> tuple[int, int, str]:
    """Two rows of ``[a, b)`` that hold different values of one quantity, and its name."""
    for name, col in cols.items():
        part = col[a:b]
        measured = np.flatnonzero(~np.isnan(part))
        if len(measured) < 2:
            continue
        other = measured[part[measured] != part[measured[0]]]
        if len(other):
            return a + int(measured[0]), a + int(other[0]), name
    raise AssertionError("no disagreement in a conflicting group")


def _against_stored(
    frame: ReadingFrame, lines: np.ndarray, stored: ReadingFrame, layout: _Layout
) -> tuple[ReadingFrame, np.ndarray, list[Problem], int]:
    """Compare rows with the readings stored at their times (:func:`compare_with_stored`).

    Returns the rows to write, their lines, the problems of the disagreeing rows and the number of
    duplicates dropped.
    """
    cmp = compare_with_stored(frame, stored)
    problems = []
    for c in cmp.conflicts:
        reason = (f"is stored already (from before this import, or an earlier line of this file) with different "
                  f"values: {c.name} is {_shown(c.name, c.stored)} in the store and {_shown(c.name, c.new)} here; "
                  "the row is not imported")
        problems.append(Problem(layout.file, int(lines[c.row]), TIME, _time_text(int(frame.time_ms[c.row])), reason))
    if cmp.keep.all():
        return frame, lines, problems, 0
    return frame.take(cmp.keep), lines[cmp.keep], problems, cmp.duplicates


def _line_count(data: bytes | bytearray) -> int:
    """Number of lines in a block (a last line without its newline counts)."""
    n = data.count(b"\n")
    return n + 1 if data and not data.endswith(b"\n") else n


def _line_starts(data: bytes | bytearray) -> np.ndarray:
    """Byte offset of the start of each line of a block, plus ``len(data)`` at the end."""
    nl = np.flatnonzero(np.frombuffer(data, dtype=np.uint8) == 10)
    starts = np.concatenate([[0], nl + 1])
    if starts[-1] != len(data):
        starts = np.concatenate([starts, [len(data)]])
    return starts


def _parse_block(data: bytes | bytearray, first_line: int, layout: _Layout) -> _Block:
    """Parse a block: fast path, else cut it and retry, else the exact line-by-line path."""
    block = _fast_block(data, first_line, layout)
    if block is not None:
        return block
    starts = _line_starts(data)
    n_lines = len(starts) - 1
    if n_lines <= _SLOW_LINES:
        return _slow_block(data, first_line, layout)
    cuts = np.linspace(0, n_lines, _SPLIT_PARTS + 1).astype(np.int64)
    parts = [
        _parse_block(data[starts[a] : starts[b]], first_line + a, layout)
        for a, b in itertools.pairwise(cuts.tolist())
        if b > a
    ]
    return _Block.concat(parts, layout)


def _convert_options(layout: _Layout) -> pcsv.ConvertOptions:
    types: dict[str, pa.DataType] = {TIME: pa.timestamp("ns", tz="UTC")}
    for name in layout.values:
        types[name] = pa.dictionary(pa.int32(), pa.string()) if name in STATUSES else pa.float64()
    return pcsv.ConvertOptions(
        column_types=types, null_values=[""], strings_can_be_null=True, quoted_strings_can_be_null=True
    )


def _fast_block(data: bytes | bytearray, first_line: int, layout: _Layout) -> _Block | None:
    """pyarrow parse and vectorised checks; None when pyarrow refuses or lines and rows disagree."""
    if not data:
        return _empty_block(layout)
    try:
        table = pcsv.read_csv(
            pa.py_buffer(data),
            read_options=pcsv.ReadOptions(column_names=list(layout.names), block_size=1 << 22),
            parse_options=pcsv.ParseOptions(newlines_in_values=False, ignore_empty_lines=True),
            convert_options=_convert_options(layout),
        )
    except pa.ArrowException:
        return None
    if table.num_rows != _line_count(data):
        return None  # a blank line or a lone CR: rows no longer map to lines
    n = table.num_rows
    codes: dict[int, np.ndarray] = {}
    tcol = table.column(TIME)
    time_missing = tcol.is_null().to_numpy(zero_copy_only=False)
    ns = tcol.cast(pa.int64()).fill_null(0).to_numpy()
    time_ms = (ns + 500_000) // 1_000_000
    time_codes = _time_code(time_ms, layout.limits)
    time_codes[time_missing] = BAD_TIME
    if time_codes.any():
        codes[layout.time_index] = time_codes
    columns: dict[str, np.ndarray] = {}
    for name in layout.values:
        col = table.column(name)
        columns[name], code = (_status_column(col, STATUSES[name]) if name in STATUSES
                               else _number_column(name, col, layout.limits))
        if code.any():
            codes[layout.index(name)] = code
    bad = np.zeros(n, dtype=bool)
    for code in codes.values():
        bad |= code != OK
    problems = _fast_problems(data, first_line, layout, codes) if bad.any() else []
    return _Block(time_ms, columns, bad, problems, np.arange(first_line, first_line + n, dtype=np.int64))


def _number_column(name: str, col: pa.ChunkedArray, limits: Limits) -> tuple[np.ndarray, np.ndarray]:
    measured = col.is_valid().to_numpy(zero_copy_only=False)
    values = col.to_numpy()
    return check_values(name, values, measured, limits)


def _status_column(col: pa.ChunkedArray, states: type[StatusEnum]) -> tuple[np.ndarray, np.ndarray]:
    """Codes and reason codes of a dictionary-encoded status column."""
    parts_v, parts_c = [], []
    for chunk in col.chunks:
        lookup = [_parse_status(s, states) for s in chunk.dictionary.to_pylist()]
        v_of = np.array([v for v, _ in lookup] + [np.nan], dtype=np.float64)
        c_of = np.array([c for _, c in lookup] + [OK], dtype=np.uint8)
        idx = chunk.indices.fill_null(len(lookup)).to_numpy()
        parts_v.append(v_of[idx])
        parts_c.append(c_of[idx])
    if not parts_v:
        return np.empty(0), np.empty(0, dtype=np.uint8)
    return np.concatenate(parts_v), np.concatenate(parts_c)


def _fast_problems(
    data: bytes | bytearray, first_line: int, layout: _Layout, codes: dict[int, np.ndarray]
) -> list[tuple[int, int, Problem]]:
    """Problems of the fast path, with the cell text read back from the block's lines."""
    starts = _line_starts(data)
    cells_cache: dict[int, list[str]] = {}
    out = []
    for ci, code in codes.items():
        field = layout.names[ci]
        for r in np.flatnonzero(code).tolist():
            if r not in cells_cache:
                raw = data[starts[r] : starts[r + 1]].decode("utf-8").rstrip("\n").rstrip("\r")
                cells_cache[r] = _split_cells(raw)
            text = cells_cache[r][ci] if ci < len(cells_cache[r]) else ""
            if ci != layout.time_index:
                reason = _reason(field, int(code[r]), layout.limits)
            elif code[r] == BAD_TIME:
                reason = str(_parse_time(text))
            else:
                reason = _time_reason(int(code[r]), layout.limits)
            line = first_line + r
            out.append((line, ci, Problem(layout.file, line, field, text, str(reason))))
    return out


def _empty_block(layout: _Layout) -> _Block:
    return _Block(
        np.empty(0, dtype=np.int64),
        {n: np.empty(0) for n in layout.values},
        np.empty(0, dtype=bool),
        [],
        np.empty(0, dtype=np.int64),
    )


def _slow_block(data: bytes | bytearray, first_line: int, layout: _Layout) -> _Block:
    """The exact path: each line parsed in Python, each problem located to its line and field."""
    rows_t: list[int] = []
    rows_v: list[list[float]] = []
    rows_bad: list[bool] = []
    problems: list[tuple[int, int, Problem]] = []
    texts: list[list[str]] = []
    lines: list[int] = []
    for i, raw in enumerate(bytes(data).split(b"\n")):  # a slow block is at most a few thousand lines
        line = first_line + i
        raw = raw[:-1] if raw.endswith(b"\r") else raw
        if not raw:
            continue  # blank line, or the end of the block
        cells, problem = _line_cells(raw, line, layout)
        if problem is not None:
            problems.append((line, -1, problem))
            continue
        t, values, bad, line_problems = _parse_cells(cells, line, layout)
        problems.extend(line_problems)
        rows_t.append(t)
        rows_v.append(values)
        rows_bad.append(bad)
        texts.append(cells)
        lines.append(line)
    block = _rows_to_block(rows_t, rows_v, rows_bad, layout)
    block.lines = np.array(lines, dtype=np.int64)
    problems.extend(_range_problems(block, texts, lines, layout))
    block.problems = problems
    return block


def _line_cells(raw: bytes | bytearray, line: int, layout: _Layout) -> tuple[list[str], Problem | None]:
    """The cells of one raw line, or a whole-line problem (bad UTF-8, wrong field count)."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return [], Problem(layout.file, line, None, None, "line is not valid UTF-8 text")
    cells = _split_cells(text)
    if len(cells) != len(layout.names):
        reason = f"line has {len(cells)} fields; the header has {len(layout.names)} ({', '.join(layout.names)})"
        return cells, Problem(layout.file, line, None, None, reason)
    return cells, None


def _parse_cells(
    cells: list[str], line: int, layout: _Layout
) -> tuple[int, list[float], bool, list[tuple[int, int, Problem]]]:
    """Time and values of one line, with the text-level problems (range rules come later)."""
    problems = []
    t = _parse_time(cells[layout.time_index])
    if isinstance(t, int) and (t < layout.limits.earliest_ms or t > layout.limits.latest_ms):
        t = _time_reason(TOO_EARLY if t < layout.limits.earliest_ms else TOO_LATE, layout.limits)
    if isinstance(t, str):
        text = cells[layout.time_index]
        problems.append((line, layout.time_index, Problem(layout.file, line, TIME, text, t)))
        t = 0
    values = []
    for name in layout.values:
        ci = layout.index(name)
        v, code = _parse_status(cells[ci], STATUSES[name]) if name in STATUSES else _parse_number(cells[ci])
        if code != OK:
            problems.append((line, ci, Problem(layout.file, line, name, cells[ci], _reason(name, code))))
        values.append(v)
    return t, values, bool(problems), problems


def _rows_to_block(rows_t: list[int], rows_v: list[list[float]], rows_bad: list[bool], layout: _Layout) -> _Block:
    n = len(rows_t)
    matrix = np.array(rows_v, dtype=np.float64).reshape(n, len(layout.values))
    columns = {name: matrix[:, j].copy() for j, name in enumerate(layout.values)}
    return _Block(np.array(rows_t, dtype=np.int64), columns, np.array(rows_bad, dtype=bool), [],
                  np.empty(0, dtype=np.int64))


def _range_problems(
    block: _Block, texts: list[list[str]], lines: list[int], layout: _Layout
) -> list[tuple[int, int, Problem]]:
    """Apply the glossary rules to the parsed numbers of the slow path; mark and report violations."""
    out = []
    for name in layout.values:
        if name in STATUSES:  # checked as they were parsed
            continue
        raw = block.columns[name]
        clean, codes = check_values(name, raw, ~np.isnan(raw), layout.limits)
        block.columns[name] = clean
        ci = layout.index(name)
        for r in np.flatnonzero(codes).tolist():
            block.bad[r] = True
            problem = Problem(layout.file, lines[r], name, texts[r][ci], _reason(name, int(codes[r]), layout.limits))
            out.append((lines[r], ci, problem))
    return out


# ----------------------------------------------------------------------------- reading


_Long = tuple[int, int, str | None, str, int]  # (line, column index, field, first characters, length)


def _blocks(
    f: io.BufferedIOBase, first_line: int, chunk_rows: int, layout: _Layout
) -> Iterator[tuple[bytearray, int, list[_Long]]]:
    """Raw blocks of whole lines, about ``chunk_rows`` lines each, the number of their first line, and the
    problems of the lines that were too long or held too long a field (emptied in the block).

    Each block is read into its own ``bytearray`` and cut in place after its last
    newline, so the bulk of a block is never copied; only the partial last line
    carries over to the next block. A line longer than ``MAX_LINE_BYTES`` is read
    past in pieces, never held whole.
    """
    leftover = f.read(_SAMPLE_BYTES)
    per_line = min(_LINE_ESTIMATE_BYTES, len(leftover) / max(1, leftover.count(b"\n")))
    target = int(min(_MAX_BLOCK_BYTES, max(1 << 16, chunk_rows * per_line * 0.98)))
    eof = len(leftover) < _SAMPLE_BYTES
    while leftover or not eof:
        buf, eof = _fill(f, leftover, 0 if eof else max(target - len(leftover), 1 << 16))
        if buf.find(b"\n") < 0 and len(buf) > MAX_LINE_BYTES:  # the head of an overlong line
            length, leftover, eof = _skip_line(f, len(buf), eof)
            yield bytearray(), first_line, [_long_line(first_line, bytes(buf[: QUOTE_CHARS * 4]), length)]
            first_line += 1
            continue
        # cut after the last newline within the target size (or after the first newline at least)
        cut = buf.rfind(b"\n", 0, max(target, buf.find(b"\n") + 1)) + 1
        if cut == 0 or (eof and buf.find(b"\n", cut) < 0):
            cut = len(buf)  # the file's last line has no line ending: it stays with this block
        overlong = len(buf) - cut > MAX_LINE_BYTES  # the partial last line is too long already: never carry it
        tail = bytes(buf[cut : cut + QUOTE_CHARS * 4]) if overlong else b""
        tail_length = len(buf) - cut
        leftover = b"" if overlong else bytes(buf[cut:])
        del buf[cut:]
        n_lines = buf.count(b"\n")
        box = [buf]
        del buf  # hand the block over without keeping a reference to it here
        cleaned, long_found = _drop_long_lines(box.pop(), first_line, layout)
        box.append(cleaned)
        del cleaned
        yield box.pop(), first_line, long_found  # no reference to the block stays here while it is used
        first_line += n_lines
        if overlong:
            length, leftover, eof = _skip_line(f, tail_length, eof)
            yield bytearray(), first_line, [_long_line(first_line, tail, length)]
            first_line += 1


def _fill(f: io.BufferedIOBase, head: bytes, n: int) -> tuple[bytearray, bool]:
    """``head`` followed by up to ``n`` more bytes of ``f`` (more if no newline yet, up to a line's limit);
    and whether at EOF."""
    buf = bytearray(len(head) + n)
    buf[: len(head)] = head
    with memoryview(buf) as whole, whole[len(head) :] as tail:
        got = f.readinto(tail) if n else 0
    del buf[len(head) + got :]
    eof = got < n or n == 0
    newline = buf.find(b"\n") >= 0
    while not eof and not newline and len(buf) <= MAX_LINE_BYTES:  # a line longer than the block
        more = f.read(1 << 16)
        eof = not more
        newline = b"\n" in more
        buf += more
    return buf, eof


def _skip_line(f: io.BufferedIOBase, length: int, eof: bool) -> tuple[int, bytes, bool]:
    """Read past the rest of a line whose first ``length`` bytes were read: its whole length, the bytes
    after its end, and whether at EOF."""
    while not eof:
        piece = f.read(1 << 20)
        if not piece:
            return length, b"", True
        end = piece.find(b"\n")
        if end >= 0:
            return length + end, piece[end + 1 :], False
        length += len(piece)
    return length, b"", True


def _long_line(line: int, head: bytes, length: int) -> _Long:
    text = head.decode("utf-8", errors="replace")[:QUOTE_CHARS]
    return (line, -1, None, text, length)


def _drop_long_lines(data: bytearray, first_line: int, layout: _Layout) -> tuple[bytearray, list[_Long]]:
    """Empty the lines longer than ``MAX_LINE_BYTES`` and those with a field longer than ``MAX_FIELD_CHARS``.

    Lines no longer than the field limit cannot hold a long field, so only longer ones are looked at;
    a block that has none (every ordinary file) is returned as it is.
    """
    if len(data) <= MAX_FIELD_CHARS:
        return data, []
    ends = _newlines(data)
    starts = np.concatenate(([0], ends + 1))
    ends = np.append(ends, len(data))
    suspects = np.flatnonzero(ends - starts > MAX_FIELD_CHARS)
    if len(suspects) == 0:
        return data, []
    found: list[_Long] = []
    cut: list[tuple[int, int]] = []
    for r in suspects.tolist():
        a, b = int(starts[r]), int(ends[r])
        line = first_line + r
        if b - a > MAX_LINE_BYTES:
            found.append(_long_line(line, bytes(data[a : a + QUOTE_CHARS * 4]), b - a))
            cut.append((a, b))
            continue
        cells = _split_cells(bytes(data[a:b]).decode("utf-8", errors="replace").rstrip("\r"))
        for ci, cell in enumerate(cells):
            if len(cell) > MAX_FIELD_CHARS:
                field = layout.names[ci] if ci < len(layout.names) and len(cells) == len(layout.names) else None
                found.append((line, ci, field, cell[:QUOTE_CHARS], len(cell)))
                cut.append((a, b))
                break
    if not cut:
        return data, []
    kept = bytearray()
    at = 0
    for a, b in cut:
        kept += data[at:a]
        at = b  # the line's newline stays: line numbers do not move
    kept += data[at:]
    return kept, found


def _newlines(data: bytearray, window: int = 1 << 20) -> np.ndarray:
    """Offsets of every newline in ``data``, scanned a window at a time (no block-sized temporary)."""
    view = np.frombuffer(data, dtype=np.uint8)
    parts = [np.flatnonzero(view[a : a + window] == 10) + a for a in range(0, len(view), window)]
    del view  # a live view would pin the bytearray's size
    return np.concatenate(parts) if parts else np.empty(0, dtype=np.int64)


def _long_problems(found: list[_Long], layout: _Layout) -> list[tuple[int, int, Problem]]:
    out = []
    for line, ci, field, head, length in found:
        if ci < 0:
            reason = (f"line is {length:,} bytes long; lines are at most {MAX_LINE_BYTES:,} "
                      f"(it begins {head!r})")
            out.append((line, ci, Problem(layout.file, line, None, None, reason)))
        else:
            name = field if field is not None else f"#{ci + 1}"
            reason = (f"is a field of {length:,} characters; fields are at most {MAX_FIELD_CHARS:,} "
                      f"(only the first {QUOTE_CHARS} are shown)")
            out.append((line, ci, Problem(layout.file, line, name, head, reason)))
    return out


def iter_csv(
    path: str | os.PathLike[str],
    *,
    chunk_rows: int = 1_000_000,
    on_error: Literal["abort", "skip"] = "abort",
    limits: Limits | None = None,
    stored: StoredLookup | None = None,
    counts: ImportCounts | None = None,
) -> Iterator[tuple[ReadingFrame, list[Problem]]]:
    """Stream a canonical readings CSV as frames of at most ``chunk_rows`` rows, checked at the door.

    Parameters
    ----------
    path : path-like
        The CSV file.
    chunk_rows : int
        Largest number of rows in one yielded frame; the raw read block is sized to
        about this many lines. [rows]
    on_error : {"abort", "skip"}
        ``"abort"`` raises :class:`BadRow` for the first problem (frames before it
        have already been yielded: the caller stores nothing until the end, or
        calls :func:`validate_csv` first). ``"skip"`` drops every row with a
        problem and yields the problems.
    limits : Limits or None
        The door's bounds; None: :meth:`Limits.now` with the default ``max_power_w``.
    stored : callable or None
        ``stored(times_ms)`` returns the readings stored at those times (``Store.readings_at``), to compare rows with
        (duplicates dropped, disagreements refused); it is called while the caller consumes the
        frames, so it sees the frames already stored. None: rows are compared within the file only.
    counts : ImportCounts or None
        Receives the number of duplicate rows dropped.

    Yields
    ------
    frame : ReadingFrame
        The good rows of a block, sorted by time, one row per time (agreeing duplicates merged);
        every column of the header is present.
    problems : list of Problem
        The problems of that block (reported with its first frame), sorted by line
        and column; always empty with ``on_error="abort"``.

    Raises
    ------
    BadRow
        A header problem (both modes), or the first problem with ``on_error="abort"``.
    """
    if on_error not in ("abort", "skip"):
        raise ValueError(f"on_error must be 'abort' or 'skip', not {on_error!r}")
    if chunk_rows < 1:
        raise ValueError(f"chunk_rows must be >= 1, got {chunk_rows}")
    file = os.fspath(path)
    counts = ImportCounts() if counts is None else counts
    with open(path, "rb") as f:
        layout = _read_header(f, file, Limits.now() if limits is None else limits)
        for data, first_line, long in _blocks(f, 2, chunk_rows, layout):
            block = _parse_block(data, first_line, layout)
            del data  # free the raw block before the consumer works on the frame
            block.problems.extend(_long_problems(long, layout))
            if block.problems and on_error == "abort":
                raise BadRow(block.sorted_problems()[0])
            frame = block.good_frame(layout, stored, counts)
            problems = block.sorted_problems()
            if problems and on_error == "abort":
                raise BadRow(problems[0])
            del block
            yield from _split_frame(frame, problems, chunk_rows)


def _split_frame(
    frame: ReadingFrame, problems: list[Problem], chunk_rows: int
) -> Iterator[tuple[ReadingFrame, list[Problem]]]:
    if len(frame) == 0:
        if problems:
            yield frame, problems
        return
    for i in range(0, len(frame), chunk_rows):
        part = frame if len(frame) <= chunk_rows else frame.take(slice(i, i + chunk_rows))
        yield part, problems if i == 0 else []


def read_csv(path: str | os.PathLike[str], *, limits: Limits | None = None) -> ReadingFrame:
    """Read a whole canonical CSV into one sorted frame; raise :class:`BadRow` on a problem.

    Meant for small files and tests; large files should be streamed with :func:`iter_csv`
    (``limits`` as there).
    """
    frames = [frame for frame, _ in iter_csv(path, limits=limits)]
    if not frames:
        with open(path, "rb") as f:
            layout = _read_header(f, os.fspath(path))
        return ReadingFrame(np.empty(0, dtype=np.int64), {n: np.empty(0) for n in layout.values})
    return ReadingFrame.concat(frames).sorted()


def validate_csv(
    path: str | os.PathLike[str], *, limit: int = 1000, chunk_rows: int = 1_000_000, limits: Limits | None = None
) -> ProblemList:
    """Every problem of a canonical CSV, without importing anything.

    Parameters
    ----------
    path : path-like
        The CSV file.
    limit : int
        Keep at most this many problems in the list; ``total`` counts them all.
    chunk_rows : int
        As for :func:`iter_csv`. [rows]
    limits : Limits or None
        As for :func:`iter_csv`.

    Returns
    -------
    ProblemList
        The first ``limit`` problems in file order, with ``total`` and ``rows_ok``.
    """
    kept: list[Problem] = []
    total = rows_ok = 0
    try:
        for frame, problems in iter_csv(path, chunk_rows=chunk_rows, on_error="skip", limits=limits):
            rows_ok += len(frame)
            total += len(problems)
            kept.extend(problems[: max(0, limit - len(kept))])
    except BadRow as exc:
        return ProblemList([exc.problem], total=1, rows_ok=0)
    return ProblemList(kept, total=total, rows_ok=rows_ok)
