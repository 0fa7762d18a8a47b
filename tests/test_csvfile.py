"""Tests of the canonical readings CSV reader and writer."""

from __future__ import annotations

import io
import math
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from homegrid.glossary import ALL_NAMES, quantity
from homegrid.readings import InvalidReading, Limits, ReadingFrame, csvfile, validate_value
from homegrid.readings.csvfile import (
    BadRow,
    check_values,
    format_times,
    iter_csv,
    read_csv,
    validate_csv,
    write_csv,
)

FIXTURES = Path(__file__).parent / "fixtures" / "import"
ANY_TIME = Limits(max_power_w=math.inf, earliest_ms=-(2**62), latest_ms=2**62)  # the door's bounds lifted
T0 = 1_748_772_000_000  # 2025-06-01T10:00:00Z [ms]


def write(tmp_path: Path, text: str, name: str = "readings.csv", newline: str = "\n") -> Path:
    path = tmp_path / name
    path.write_bytes(text.replace("\n", newline).encode())
    return path


def ms(iso: str) -> int:
    return int(datetime.fromisoformat(iso).timestamp() * 1000)


# ----------------------------------------------------------------------------- reading


def test_example_fixture_is_sorted_duplicates_merged_and_typed() -> None:
    counts = csvfile.ImportCounts()
    frame = ReadingFrame.concat(f for f, _ in iter_csv(FIXTURES / "readings_example.csv", counts=counts))
    assert frame.time_ms.tolist() == [T0, T0 + 1000, T0 + 2250]
    assert list(frame.columns) == [
        "solar_power",
        "grid_power",
        "battery_soc",
        "grid_status",
        "grid_energy_imported",
    ]
    # 12:00:00+02:00 (line 2) and 10:00:00Z (line 5) are one instant whose rows agree: merged, one duplicate
    assert counts.duplicates == 1
    assert frame.column("grid_power")[0] == -1500.5
    assert frame.column("grid_energy_imported")[0] == 1000000
    assert frame.column("grid_status").tolist() == [1.0, 2.0, 1.0]
    assert math.isnan(frame.column("battery_soc")[1])  # empty cell = not measured
    assert math.isnan(frame.column("grid_power")[2])


@pytest.mark.parametrize(
    "text",
    [
        "2025-06-01T12:00:00+02:00",
        "2025-06-01T10:00:00Z",
        "2025-06-01 10:00:00Z",
        "2025-06-01T10:00Z",
        "2025-06-01T10Z",
        "2025-06-01T15:30:00+0530",
        "2025-06-01T07:00:00-03",
        "2025-06-01T10:00:00.000000000+00:00",
        "2025-06-01T10:00:00-00:00",
        " 2025-06-01T10:00:00Z",  # whitespace: refused by pyarrow, accepted by the exact path
        "2025-06-01t10:00:00z",
    ],
)
def test_time_formats_with_offsets(tmp_path: Path, text: str) -> None:
    path = write(tmp_path, f"time,grid_power\n{text},1\n")
    assert read_csv(path).time_ms.tolist() == [T0]


@pytest.mark.parametrize(
    ("fraction", "expected_ms"),
    [(".5", 500), (".0005", 1), (".0004999", 0), (".123456789", 123), (".9995", 1000), (".12", 120)],
)
def test_fractional_seconds_round_half_up_to_ms(tmp_path: Path, fraction: str, expected_ms: int) -> None:
    path = write(tmp_path, f"time,grid_power\n2025-06-01T10:00:00{fraction}Z,1\n")
    assert read_csv(path).time_ms.tolist() == [T0 + expected_ms]


def test_error_message_format(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rows = "".join(f"2025-06-01T10:00:{i:02d}Z,{i}\n" for i in range(15))
    write(tmp_path, "time,grid_power\n" + rows + "2025-06-01T10:00:59Z,abc\n")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(BadRow) as info:
        list(iter_csv("readings.csv"))
    assert str(info.value) == "readings.csv:17: field 'grid_power': 'abc' is not a number"
    assert (info.value.file, info.value.line, info.value.field, info.value.value) == (
        "readings.csv",
        17,
        "grid_power",
        "abc",
    )


def test_naive_time_is_refused_and_says_so(tmp_path: Path) -> None:
    path = write(tmp_path, "time,grid_power\n2025-06-01T10:00:00Z,1\n2025-06-01T10:00:01,2\n")
    with pytest.raises(BadRow, match="naive") as info:
        read_csv(path)
    assert info.value.line == 3 and info.value.field == "time"
    path = write(tmp_path, "time,grid_power\n2025-06-01,2\n")
    with pytest.raises(BadRow, match="without a time and UTC offset"):
        read_csv(path)


@pytest.mark.parametrize(
    ("header", "match"),
    [
        ("time,gridpower", r"unknown column 'gridpower' \(did you mean 'grid_power'\?\); known columns: time, "),
        ("time,grid_power,grid_power", "appears 2 times"),
        ("grid_power,solar_power", "no 'time' column"),
        ("", "no header line"),
    ],
)
def test_header_problems(tmp_path: Path, header: str, match: str) -> None:
    path = write(tmp_path, header + "\n" if header else "")
    with pytest.raises(BadRow, match=match) as info:
        list(iter_csv(path, on_error="skip"))
    assert info.value.line == 1
    problems = validate_csv(path)
    assert problems.total == 1 and problems[0].line == 1


def test_unknown_column_lists_every_glossary_name(tmp_path: Path) -> None:
    with pytest.raises(BadRow) as info:
        read_csv(write(tmp_path, "time,flux_capacitor\n"))
    assert "'flux_capacitor'" in str(info.value)
    assert all(name in str(info.value) for name in ALL_NAMES)


def test_bom_quotes_and_header_only(tmp_path: Path) -> None:
    path = tmp_path / "bom.csv"
    path.write_bytes(b'\xef\xbb\xbftime,"grid_power"\r\n"2025-06-01T10:00:00Z","12.5"\r\n')
    assert read_csv(path).column("grid_power").tolist() == [12.5]
    empty = read_csv(write(tmp_path, "time,solar_power\n"))
    assert len(empty) == 0 and list(empty.columns) == ["solar_power"]
    assert list(iter_csv(write(tmp_path, "time,solar_power\n"))) == []


@pytest.mark.parametrize(
    ("column", "cell", "expected"),
    [
        ("solar_power", "-30", 0.0),  # jitter within 50 W: clamped
        ("solar_power", "-51", None),
        ("battery_soc", "100.4", 100.0),
        ("battery_soc", "100.6", None),
        ("battery_soc", "-0.4", 0.0),
        ("grid_energy_imported", "-1", None),
        ("grid_energy_imported", "-0", 0.0),
        ("grid_power", "-1e3", -1000.0),
        ("grid_power", "+.5", 0.5),
        ("grid_power", " 7 ", 7.0),
        ("grid_power", "nan", None),
        ("grid_power", "NaN", None),
        ("grid_power", "-inf", None),
        ("grid_power", "1e400", None),
        ("grid_power", "1_000", None),
        ("grid_power", "0x10", None),
        ("grid_power", "NA", None),
        ("grid_status", "Islanded ", 2.0),
        ("grid_status", "3", 3.0),
        ("grid_status", "2.0", 2.0),
        ("grid_status", "1.5", None),
        ("grid_status", "7", None),
        ("grid_status", "nan", None),
        ("grid_status", "offgrid", None),
    ],
)
def test_value_rules(tmp_path: Path, column: str, cell: str, expected: float | None) -> None:
    path = write(tmp_path, f"time,{column}\n2025-06-01T10:00:00Z,{cell}\n")
    if expected is None:
        problems = validate_csv(path)
        assert problems.total == 1
        assert (problems[0].line, problems[0].field, problems[0].value) == (2, column, cell)
    else:
        assert read_csv(path).column(column).tolist() == [expected]


def test_every_bad_field_reported_skip_keeps_good_rows(tmp_path: Path) -> None:
    text = (
        "time,solar_power,battery_soc,grid_status\n"
        "2025-06-01T10:00:00Z,100,50,connected\n"
        "2025-06-01T10:00:01Z,-100,150,bogus\n"
        "2025-06-01T10:00:02Z,1,2\n"
        "2025-06-01T10:00:03Z,3,4,islanded\n"
    )
    path = write(tmp_path, text)
    out = list(iter_csv(path, on_error="skip"))
    assert len(out) == 1
    frame, problems = out[0]
    assert frame.time_ms.tolist() == [T0, T0 + 3000]
    assert [(p.line, p.field) for p in problems] == [
        (3, "solar_power"),
        (3, "battery_soc"),
        (3, "grid_status"),
        (4, None),
    ]
    header = "(time, solar_power, battery_soc, grid_status)"
    assert str(problems[3]).endswith(f"line has 3 fields; the header has 4 {header}")
    with pytest.raises(BadRow) as info:
        list(iter_csv(path))
    assert (info.value.line, info.value.field) == (3, "solar_power")


def test_validate_csv_caps_the_list_and_counts_all(tmp_path: Path) -> None:
    rows = "".join(f"2025-06-01T10:00:{i:02d}Z,{-100 - i}\n" for i in range(20))
    problems = validate_csv(write(tmp_path, "time,solar_power\n" + rows + "2025-06-01T11:00:00Z,5\n"), limit=5)
    assert len(problems) == 5 and problems.total == 20 and problems.rows_ok == 1
    assert [p.line for p in problems] == [2, 3, 4, 5, 6]


@pytest.mark.parametrize("newline", ["\n", "\r\n"])
def test_exact_lines_in_a_large_file_through_every_path(tmp_path: Path, newline: str) -> None:
    """Problems spread over many blocks (fast path, bisection, exact path) keep exact lines."""
    n = 30_000
    t = T0 + np.arange(n, dtype=np.int64) * 1000
    cells = [f"{v:g}" for v in np.arange(n) % 5000]
    bad_lines = {}  # line -> field
    lines = ["time,solar_power,battery_soc"]
    for i in range(n):
        if len(lines) + 1 in (7001, 20002):
            lines.append("")  # blank lines are skipped but still count
        line = len(lines) + 1
        stamp = datetime.fromtimestamp(t[i] / 1000, tz=UTC).isoformat()
        soc = "50"
        if i % 4999 == 3:
            cells[i], bad_lines[line] = "x1", "solar_power"  # refused by pyarrow: exact path
        elif i % 3001 == 5:
            soc, bad_lines[line] = "101", "battery_soc"  # vectorised range rule: fast path
        elif i == 12345:
            stamp, bad_lines[line] = stamp[:19], "time"  # naive
        lines.append(f"{stamp},{cells[i]},{soc}")
    path = write(tmp_path, "\n".join(lines) + "\n", newline=newline)
    problems = validate_csv(path, chunk_rows=4000)
    assert {(p.line, p.field) for p in problems} == set(bad_lines.items())
    assert problems.rows_ok == n - len(bad_lines)
    raw = path.read_bytes().split(b"\n")
    for p in problems:  # each reported value really is on that line
        assert p.value is not None and p.value.encode() in raw[p.line - 1]
    frames = list(iter_csv(path, chunk_rows=4000, on_error="skip"))
    assert all(len(f) <= 4000 for f, _ in frames)
    assert sum(len(f) for f, _ in frames) == n - len(bad_lines)


def test_chunks_respect_chunk_rows_and_sort_within_chunk(tmp_path: Path) -> None:
    rows = [f"2025-06-01T10:00:{s:02d}Z,{v}" for s, v in [(5, 1), (1, 2), (6, 3), (3, 4), (0, 5), (9, 6), (8, 7)]]
    path = write(tmp_path, "time,grid_power\n" + "\n".join(rows))  # no final newline
    frames = [f for f, _ in iter_csv(path, chunk_rows=100)]
    assert len(frames) == 1
    assert frames[0].time_ms.tolist() == [T0 + s * 1000 for s in (0, 1, 3, 5, 6, 8, 9)]
    assert frames[0].column("grid_power").tolist() == [5, 2, 4, 1, 3, 7, 6]
    small = [f for f, _ in iter_csv(path, chunk_rows=2)]
    assert all(len(f) <= 2 for f in small)
    assert sum(len(f) for f in small) >= 7


# ----------------------------------------------------------------------------- rules


NUMERIC = [n for n in ALL_NAMES if n != "grid_status"]


@given(name=st.sampled_from(NUMERIC), value=st.floats(allow_nan=True, allow_infinity=True))
def test_check_values_matches_validate_value(name: str, value: float) -> None:
    clean, codes = check_values(name, np.array([value]), np.array([True]))
    try:
        expected = validate_value(name, value)
    except InvalidReading:
        assert codes[0] != 0 and math.isnan(clean[0])
    else:
        assert codes[0] == 0 and clean[0] == expected


NUMBERS = st.sampled_from(
    [
        "",
        "0",
        "1",
        "-1",
        "-30",
        "-60",
        "100.4",
        "100.6",
        "101",
        "1e3",
        "+.5",
        "5.",
        " 2",
        "-0",
        "nan",
        "inf",
        "-inf",
        "1e400",
        "4.9e-324",
        '"3"',
        "x",
        "1_0",
    ]
)
STATUSES = st.sampled_from(["", "connected", "islanded", " Unknown", "2", "2.5", "9", "1e400", "nan", "on"])
ACCEPTED_TIME_TEXTS = [
    "2025-06-01T10:00:00Z",
    "2025-06-01T12:00:00+02:00",
    "2025-06-01T10:00:00.0005Z",
    "2025-06-01T10:00Z",
    "2025-06-01T10:00:00+05:45",
    "2025-06-01T09:59:59.999999999-00:00",
    "2025-06-01 10Z",
    "",
]
TIMES = st.sampled_from(
    [
        *ACCEPTED_TIME_TEXTS,
        "",
        "2025-06-01T10:00:00",
        "2025-06-01",
        "2025-02-30T00:00:00Z",
        "2025-06-01T10:00:00+24:00",
        "1500-01-01T00:00:00Z",
    ]
)
LAYOUT = csvfile._Layout(
    "f.csv",
    ("battery_soc", "time", "solar_power", "grid_status", "grid_energy_exported"),
    1,
    ("battery_soc", "solar_power", "grid_status", "grid_energy_exported"),
)


def _assert_paths_agree(rows: list[tuple[str, ...]], *, fast_expected: bool) -> None:
    data = ("\n".join(",".join(r) for r in rows) + "\n").encode()
    fast = csvfile._fast_block(data, 2, LAYOUT)
    slow = csvfile._slow_block(data, 2, LAYOUT)
    assert slow.sorted_problems() == csvfile._parse_block(data, 2, LAYOUT).sorted_problems()
    assert (fast is not None) or not fast_expected
    if fast is None:
        return
    assert fast.sorted_problems() == slow.sorted_problems()
    assert fast.bad.tolist() == slow.bad.tolist()
    good = ~fast.bad
    assert fast.time_ms[good].tolist() == slow.time_ms[good].tolist()
    for name in LAYOUT.values:
        np.testing.assert_array_equal(fast.columns[name][good], slow.columns[name][good])


@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(rows=st.lists(st.tuples(NUMBERS, TIMES, NUMBERS, STATUSES, NUMBERS), min_size=1, max_size=5))
def test_fast_and_exact_paths_agree(rows: list[tuple[str, ...]]) -> None:
    """Whatever pyarrow accepts, the exact path reads the same way, with the same problems."""
    _assert_paths_agree(rows, fast_expected=False)


ACCEPTED_NUMBERS = NUMBERS.filter(lambda c: c not in ("x", "1_0"))
ACCEPTED_TIMES = st.sampled_from(ACCEPTED_TIME_TEXTS)


@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(
    rows=st.lists(
        st.tuples(ACCEPTED_NUMBERS, ACCEPTED_TIMES, ACCEPTED_NUMBERS, STATUSES, ACCEPTED_NUMBERS),
        min_size=1,
        max_size=5,
    )
)
def test_fast_path_results_equal_exact_path(rows: list[tuple[str, ...]]) -> None:
    """Cells pyarrow accepts (some still breaking glossary rules): the fast path runs and matches."""
    _assert_paths_agree(rows, fast_expected=True)


# ----------------------------------------------------------------------------- writing


def test_write_csv_format() -> None:
    frame = ReadingFrame(
        np.array([T0, T0 + 1500, T0 + 2000]),
        {
            "grid_status": np.array([1.0, np.nan, 2.0]),
            "grid_power": np.array([1234.5, -0.1, np.nan]),
            "solar_power": np.array([0.0, 1e-7, 12345678.25]),
        },
    )
    out = io.StringIO()
    assert write_csv([frame], out) == 3
    assert out.getvalue().splitlines() == [
        "time,solar_power,grid_power,grid_status",
        "2025-06-01T10:00:00+00:00,0,1234.5,connected",
        "2025-06-01T10:00:01.500+00:00,1e-7,-0.1,",
        "2025-06-01T10:00:02+00:00,12345678.25,,islanded",
    ]


def test_write_csv_in_a_time_zone_follows_dst() -> None:
    t = np.array([ms("2025-01-15T12:00:00+00:00"), ms("2025-07-15T12:00:00+00:00")])
    out = io.StringIO()
    write_csv([ReadingFrame(t, {"grid_power": np.array([1.0, 2.0])})], out, tz=ZoneInfo("Europe/Berlin"))
    assert out.getvalue().splitlines()[1:] == ["2025-01-15T13:00:00+01:00,1", "2025-07-15T14:00:00+02:00,2"]
    texts = format_times(np.array([T0, T0 + 7]), ZoneInfo("America/St_Johns")).to_pylist()
    assert texts == ["2025-06-01T07:30:00-02:30", "2025-06-01T07:30:00.007-02:30"]


def test_write_csv_columns() -> None:
    a = ReadingFrame(np.array([T0]), {"grid_power": np.array([1.0])})
    b = ReadingFrame(np.array([T0 + 1000]), {"grid_power": np.array([2.0]), "solar_power": np.array([3.0])})
    with pytest.raises(ValueError, match="solar_power"):
        write_csv([a, b], io.StringIO())
    out = io.StringIO()
    assert write_csv([ReadingFrame.empty(), a, b], out, columns=["grid_power", "solar_power"]) == 2
    assert out.getvalue().splitlines()[0] == "time,solar_power,grid_power"
    with pytest.raises(ValueError, match="unknown column 'gridpower'"):
        write_csv([a], io.StringIO(), columns=["gridpower"])
    with pytest.raises(ValueError, match="not a GridStatus code"):
        write_csv([ReadingFrame(np.array([T0]), {"grid_status": np.array([7.0])})], io.StringIO())
    out = io.StringIO()
    assert write_csv([], out) == 0 and out.getvalue() == "time\n"


def _valid(name: str) -> st.SearchStrategy[float]:
    q = quantity(name)
    if q.states is not None:
        return st.sampled_from([float(m.value) for m in q.states])
    if q.kind.name == "FLAG":
        return st.sampled_from([0.0, 1.0])
    low = q.minimum if q.minimum is not None else (0.0 if q.kind.name == "COUNTER" else None)
    return st.floats(min_value=low, max_value=q.maximum, allow_nan=False, allow_infinity=False)


@st.composite
def frames(draw: st.DrawFn) -> ReadingFrame:
    names = draw(st.lists(st.sampled_from(ALL_NAMES), min_size=1, max_size=4, unique=True))
    times = draw(
        st.lists(
            st.one_of(
                st.integers(946_684_800_000, 4_102_444_800_000),  # 2000-2100: the pyarrow path
                st.integers(-30_000_000_000_000, 250_000_000_000_000),  # years 1019-9892: the exact path
            ),
            min_size=1,
            max_size=8,
            unique=True,
        )
    )
    cols = {}
    for name in names:
        cols[name] = np.array([draw(st.one_of(st.just(np.nan), _valid(name))) for _ in times])
    return ReadingFrame(np.array(times, dtype=np.int64), cols).sorted()


@settings(
    max_examples=120, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture], deadline=None
)
@given(frame=frames(), zone=st.sampled_from([None, "Europe/Berlin", "America/St_Johns", "Asia/Kathmandu"]))
def test_round_trip(tmp_path: Path, frame: ReadingFrame, zone: str | None) -> None:
    path = tmp_path / "rt.csv"
    with open(path, "w", newline="") as out:
        write_csv([frame], out, tz=ZoneInfo(zone) if zone else None)
    back = read_csv(path, limits=ANY_TIME)
    assert back.time_ms.tolist() == frame.time_ms.tolist()
    assert list(back.columns) == [n for n in ALL_NAMES if n in frame.columns]
    for name, col in frame.columns.items():
        np.testing.assert_array_equal(back.column(name), col)
