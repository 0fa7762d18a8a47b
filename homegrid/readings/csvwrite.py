"""Write the canonical readings CSV (the format is described in :mod:`homegrid.readings.csvfile`, which reads it).

Times are written by pyarrow in bulk: ISO 8601 to the second, milliseconds only where not whole seconds, with
the UTC offset of :func:`homegrid.timezones.utc_offset_ms` as :func:`homegrid.timezones.offset_text` writes it.
"""

from __future__ import annotations

import difflib
import io
from collections.abc import Iterable, Iterator, Sequence
from typing import TextIO
from zoneinfo import ZoneInfo

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pcsv

from homegrid.glossary import ALL_NAMES, QUANTITIES, StatusEnum
from homegrid.readings.model import ReadingFrame
from homegrid.timezones import offset_text, utc_offset_ms

__all__ = ["STATUS", "STATUSES", "TIME", "format_times", "unknown_column", "write_csv"]

TIME = "time"
STATUS = "grid_status"
#: the enumerated quantities, written as lower-case names and read as names or codes
STATUSES: dict[str, type[StatusEnum]] = {q.name: q.states for q in QUANTITIES if q.states is not None}

_WRITE_ROWS = 500_000  # rows formatted at once by write_csv


def unknown_column(name: str) -> str:
    """The problem of a header column that is neither ``time`` nor a glossary name, with the closest name."""
    known = (TIME, *ALL_NAMES)
    close = difflib.get_close_matches(name.lower(), known, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return f"unknown column {name!r}{hint}; known columns: {', '.join(known)}"


def _resolve_columns(columns: Sequence[str] | None, first: ReadingFrame | None) -> list[str]:
    if columns is None:
        return [n for n in ALL_NAMES if first is not None and n in first.columns]
    for name in columns:
        if name not in ALL_NAMES:
            raise ValueError(unknown_column(name))
    return [n for n in ALL_NAMES if n in columns]


def format_times(time_ms: np.ndarray, tz: ZoneInfo | None = None) -> pa.Array:
    """ISO 8601 texts with offset of epoch milliseconds; milliseconds only where not whole seconds.

    Parameters
    ----------
    time_ms : ndarray of int64
        Epoch milliseconds, UTC. [ms]
    tz : ZoneInfo or None
        Write wall-clock times of this zone with its offset; None for UTC ``+00:00``.

    Returns
    -------
    pyarrow.StringArray
    """
    t = np.asarray(time_ms, dtype=np.int64)
    offsets = np.zeros(len(t), dtype=np.int64) if tz is None else utc_offset_ms(t, tz.key)
    local = pa.array(t + offsets, pa.timestamp("ms"))
    text = pc.cast(pc.cast(local, pa.timestamp("s"), safe=False), pa.string())
    fractional = (t + offsets) % 1000 != 0
    if fractional.any():
        text = pc.if_else(pa.array(fractional), pc.cast(local, pa.string()), text)
    text = pc.replace_substring(text, " ", "T", max_replacements=1)
    if tz is None:
        return pc.binary_join_element_wise(text, pa.scalar("+00:00"), "")
    uniq, inverse = np.unique(offsets, return_inverse=True)
    zone_text = pc.take(pa.array([offset_text(int(o)) for o in uniq]), pa.array(inverse.ravel()))
    return pc.binary_join_element_wise(text, zone_text, "")


def _status_text(codes: np.ndarray, name: str = STATUS) -> pa.Array:
    """Lower-case names of a status quantity's codes (``grid_status``, ``ev_charging_state``); empty where NaN."""
    states = STATUSES[name]
    measured = ~np.isnan(codes)
    valid = measured & np.isin(codes, [m.value for m in states])
    if not np.array_equal(measured, valid):
        bad = codes[measured & ~valid][0]
        raise ValueError(f"{name} {bad!r} is not a {states.__name__} code")
    names = pa.array([states(i).name.lower() for i in range(len(states))])
    idx = pa.array(np.where(measured, codes, 0).astype(np.int32), mask=~measured)
    return pc.take(names, idx)


def _frame_table(frame: ReadingFrame, columns: list[str], tz: ZoneInfo | None) -> pa.Table:
    arrays = {TIME: format_times(frame.time_ms, tz)}
    for name in columns:
        col = frame.column(name)
        arrays[name] = _status_text(col, name) if name in STATUSES else pa.array(col, from_pandas=True)
    return pa.table(arrays)


def _check_dropped(frame: ReadingFrame, columns: list[str]) -> None:
    for name, col in frame.columns.items():
        if name not in columns and not np.all(np.isnan(col)):
            raise ValueError(
                f"a later frame has values for {name!r}, which the first frame lacked; pass columns= to write it"
            )


def write_csv(
    frames: Iterable[ReadingFrame],
    out: TextIO,
    *,
    tz: ZoneInfo | None = None,
    columns: Sequence[str] | None = None,
) -> int:
    """Write frames as a canonical readings CSV.

    Parameters
    ----------
    frames : iterable of ReadingFrame
        Written in the order given, rows in frame order.
    out : text stream
        Receives ``time,<columns>`` then one line per row, ``\\n`` line endings.
    tz : ZoneInfo or None
        Times as wall-clock times of this zone with its offset; None for UTC ``+00:00``.
    columns : sequence of str or None
        Glossary columns to write (always in glossary order). None: the columns of the
        first non-empty frame; a later frame with values in another column is an error.

    Returns
    -------
    int
        Rows written. [rows]
    """
    iterator = iter(frames)
    pending: list[ReadingFrame] = []
    explicit = columns is not None
    if not explicit:
        for frame in iterator:
            pending.append(frame)
            if len(frame):
                break
    first = next((f for f in pending if len(f)), None)
    names = _resolve_columns(columns, first)
    out.write(",".join([TIME, *names]) + "\n")
    rows = 0
    options = pcsv.WriteOptions(include_header=False, quoting_style="none")
    for frame in _chain(pending, iterator):
        if not explicit:
            _check_dropped(frame, names)
        for a in range(0, len(frame), _WRITE_ROWS):
            part = frame.take(slice(a, a + _WRITE_ROWS))
            sink = io.BytesIO()
            pcsv.write_csv(_frame_table(part, names, tz), sink, options)
            out.write(sink.getvalue().decode("ascii"))
            rows += len(part)
    return rows


def _chain(first: list[ReadingFrame], rest: Iterator[ReadingFrame]) -> Iterator[ReadingFrame]:
    yield from first
    yield from rest
