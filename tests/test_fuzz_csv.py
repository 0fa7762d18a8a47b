"""Fuzz of the canonical CSV reader: whatever the bytes, it gives checked frames and problems, or a clear BadRow.

``HOMEGRID_FUZZ_EXAMPLES`` sets the number of cases of each test (default 300, seconds in CI;
``HOMEGRID_FUZZ_EXAMPLES=100000`` for the long run).
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from homegrid.glossary import ALL_NAMES, quantity
from homegrid.readings import Limits, ReadingFrame
from homegrid.readings.csvfile import BadRow, ImportCounts, iter_csv
from homegrid.readings.model import JITTER_TOLERANCE

EXAMPLES = int(os.environ.get("HOMEGRID_FUZZ_EXAMPLES", "300"))
NOW_MS = 1_764_000_000_000  # 2025-11-24
LIMITS = Limits.now(max_power_w=1.0e6, now_ms=NOW_MS)
FUZZ = settings(max_examples=EXAMPLES, deadline=None, derandomize=False,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def check_file(path: Path, chunk_rows: int) -> None:
    """Read ``path`` in both modes; assert the door's promises on everything that comes through."""
    yielded: list[ReadingFrame] = []

    def stored(times: np.ndarray) -> ReadingFrame:
        seen = ReadingFrame.concat(yielded)
        keep = np.isin(seen.time_ms, times)
        return ReadingFrame(seen.time_ms[keep], {n: c[keep] for n, c in seen.columns.items()})

    counts = ImportCounts()
    try:
        for frame, problems in iter_csv(path, chunk_rows=chunk_rows, on_error="skip", limits=LIMITS, stored=stored,
                                        counts=counts):
            check_frame(frame)
            for p in problems:
                assert p.line >= 2 and isinstance(p.reason, str) and p.reason
                assert len(str(p)) < 3000  # a field is quoted, never echoed whole
            yielded.append(frame)
    except BadRow as exc:
        assert exc.problem.line == 1  # in skip mode only the header stops a file
        yielded.clear()
    every = ReadingFrame.concat(yielded)
    assert len(np.unique(every.time_ms)) == len(every)  # one row per time across frames too
    assert counts.duplicates >= 0
    try:
        for frame, problems in iter_csv(path, chunk_rows=chunk_rows, limits=LIMITS):
            check_frame(frame)
            assert problems == []
    except BadRow as exc:
        assert exc.problem.line >= 1


def check_frame(frame: ReadingFrame) -> None:
    t = frame.time_ms
    assert np.all(t[1:] > t[:-1])
    assert np.all((t >= LIMITS.earliest_ms) & (t <= LIMITS.latest_ms))
    for name, col in frame.columns.items():
        v = col[~np.isnan(col)]
        assert np.all(np.isfinite(v))
        q = quantity(name)
        if q.minimum is not None:
            assert np.all(v >= q.minimum)
        if q.maximum is not None:
            assert np.all(v <= q.maximum)
        bound = LIMITS.bound(name)
        if bound is not None:
            assert np.all(np.abs(v) <= bound + JITTER_TOLERANCE.get(q.unit, 0.0))


@FUZZ
@given(data=st.binary(max_size=4000), header=st.sampled_from([b"", b"time,home_power,grid_status\n",
                                                              b"time,solar_power\r\n", b"\xef\xbb\xbftime\n"]),
       chunk_rows=st.integers(1, 64))
def test_arbitrary_bytes(tmp_path_factory, data: bytes, header: bytes, chunk_rows: int) -> None:
    path = tmp_path_factory.mktemp("fuzz") / "bytes.csv"
    path.write_bytes(header + data)
    check_file(path, chunk_rows)


# ----------------------------------------------------------------------------- structured but hostile

_OFFSETS = st.sampled_from(["Z", "z", "+00:00", "-05:00", "+0530", "+14", "-12:00", "+24:00", "+02:61", "", " "])


@st.composite
def times(draw: st.DrawFn) -> str:
    kind = draw(st.integers(0, 5))
    if kind == 0:  # anything in years 1..9999
        year = draw(st.integers(1, 9999))
    elif kind == 1:  # near the door's edges
        year = draw(st.sampled_from([1989, 1990, 2025, 2026, 2099]))
    else:  # plausible: the fast path
        year = draw(st.integers(2020, 2025))
    month, day = draw(st.integers(0, 13)), draw(st.integers(0, 32))
    hh, mm, ss = draw(st.integers(0, 25)), draw(st.integers(0, 60)), draw(st.integers(0, 61))
    frac = draw(st.sampled_from(["", ".5", ".0004", ".0006", ".123456789", ".1234567891"]))
    sep = draw(st.sampled_from(["T", " ", "t", "_"]))
    text = f"{year:04d}-{month:02d}-{day:02d}{sep}{hh:02d}:{mm:02d}:{ss:02d}{frac}{draw(_OFFSETS)}"
    return draw(st.one_of(st.just(text), st.just(text[:10]), st.text(max_size=30)))


_HUGE = st.sampled_from(["1e308", "-1.7e308", "1e309", "9" * 400, "1e-400", "0x10", "1_000", "1,5", "+.5", "-0"])
_NONFINITE = st.sampled_from(["nan", "NaN", "inf", "-inf", "Infinity", "-Infinity", "+inf"])


@st.composite
def cells(draw: st.DrawFn, name: str) -> str:
    if name == "grid_status":
        base = draw(st.sampled_from(["connected", "ISLANDED", "transition", "unknown", "0", "3", "4", "1.5", "x"]))
    else:
        base = draw(st.one_of(
            st.floats(allow_nan=False, allow_infinity=False, width=64).map(repr),
            st.floats(-2e6, 2e6).map(lambda v: f"{v:.3f}"),
            st.integers(-10**7, 10**13).map(str),
            _HUGE, _NONFINITE, st.just(""),
        ))
    kind = draw(st.integers(0, 9))
    if kind == 0:
        return f'"{base}"'
    if kind == 1:
        return " " + base + "\t"
    if kind == 2:
        return draw(st.text(max_size=20))
    if kind == 3:
        return draw(st.sampled_from(["7" * 1025, "x" * 3000, '"' + "," * 2000 + '"']))
    return base


@st.composite
def files(draw: st.DrawFn) -> bytes:
    names = draw(st.lists(st.sampled_from(ALL_NAMES), min_size=1, max_size=5, unique=True))
    header = ["time", *names]
    if draw(st.booleans()):
        header = draw(st.permutations(header))
    lines = [",".join(header)]
    made: list[str] = []
    for t in draw(st.lists(times(), max_size=30)):
        values = {n: draw(cells(n)) for n in names}
        row = [t if c == "time" else values[c] for c in header]
        if draw(st.integers(0, 19)) == 0:
            row = row[:-1] if len(row) > 1 else [*row, "extra"]  # a wrong field count
        made.append(",".join(row))
    for _ in range(draw(st.integers(0, 5))):  # repeated lines and repeated times with other values
        if made:
            line = draw(st.sampled_from(made))
            made.insert(draw(st.integers(0, len(made))), line)
            head = line.split(",", 1)[0]
            made.append(head + "," + ",".join(draw(cells(n)) for n in header[1:]))
    if draw(st.integers(0, 9)) == 0:
        made.insert(draw(st.integers(0, len(made))), "")  # a blank line
    if draw(st.integers(0, 14)) == 0:
        made.insert(draw(st.integers(0, len(made))), "2025-01-01T00:00:00Z," + "5" * 70_000)  # an overlong line
    lines.extend(made)
    ending = draw(st.sampled_from(["\n", "\r\n"]))
    text = ending.join(lines) + draw(st.sampled_from(["", ending]))
    return text.encode("utf-8", "surrogatepass")


@FUZZ
@given(data=files(), chunk_rows=st.sampled_from([1, 3, 7, 50, 1_000_000]))
def test_hostile_rows(tmp_path_factory, data: bytes, chunk_rows: int) -> None:
    path = tmp_path_factory.mktemp("fuzz") / "rows.csv"
    path.write_bytes(data)
    check_file(path, chunk_rows)


def test_plausible_values_come_through(tmp_path: Path) -> None:
    """The fuzz's checks are not vacuous: a clean file's rows all pass them and arrive."""
    path = tmp_path / "ok.csv"
    path.write_text("time,home_power,battery_soc,grid_energy_imported\n"
                    "2025-01-01T00:00:00Z,1000,50,1000\n2025-01-01T00:00:05Z,-20,100.2,1001\n")
    frames = [f for f, _ in iter_csv(path, limits=LIMITS)]
    assert sum(len(f) for f in frames) == 2
    for f in frames:
        check_frame(f)
    assert not math.isnan(frames[0].column("home_power")[1])


def test_a_lone_carriage_return_before_a_quote_is_a_problem_not_a_crash(tmp_path: Path) -> None:
    """Found by the fuzz: Python's csv module raised its own error on this line."""
    path = tmp_path / "cr.csv"
    path.write_bytes(b'time,solar_power,home_power\n\n\r,"0.0"')
    problems = [p for _, ps in iter_csv(path, on_error="skip", limits=LIMITS) for p in ps]
    assert [p.line for p in problems] == [3]
