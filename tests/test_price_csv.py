"""The price CSV (homegrid/readings/prices.py): good files, every kind of bad row at its line, gaps, and the real
SMARD 2015 day-ahead series of ../shared/data converted to the format (both DST days of Europe/Berlin)."""

from __future__ import annotations

import csv
from datetime import date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from homegrid.hub.prices import PriceTerms, dynamic_prices, load_dynamic_prices
from homegrid.readings.prices import (
    PriceSeries,
    read_price_csv,
    series_from_intervals,
    write_price_csv,
)
from homegrid.readings.problems import BadRow
from homegrid.timezones import HOUR_MS, MINUTE_MS, local_day_bounds, parse_iso_ms
from tests.conftest import SHARED_DATA

BERLIN = ZoneInfo("Europe/Berlin")
SMARD = SHARED_DATA / "prices" / "smard_day_ahead_prices_2015_hourly.csv"
T0 = parse_iso_ms("2024-06-14T00:00:00+02:00")


def write(tmp_path: Path, text: str, name: str = "prices.csv", encoding: str = "utf-8") -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode(encoding))
    return path


GOOD = """time,import_price,export_price
2024-06-14T00:00:00+02:00,0.08313,0.05
2024-06-14T01:00:00+02:00,0.07145,0.04
2024-06-14T02:00:00+02:00,-0.0008,-0.01
2024-06-14T03:00:00+02:00,0.1,0.06
"""


# ----------------------------------------------------------------------------- good files


def test_a_good_file_gives_its_series_with_no_problem(tmp_path: Path) -> None:
    found = read_price_csv(write(tmp_path, GOOD))
    s = found.series
    assert s is not None
    assert list(found.problems) == [] and found.problems.total == 0 and found.problems.rows_ok == 4
    assert found.gaps == () and found.duplicates == 0
    assert s.t_ms.tolist() == [T0 + k * HOUR_MS for k in range(4)]
    assert s.end_ms.tolist() == [T0 + k * HOUR_MS for k in range(1, 5)]
    assert s.step_ms == HOUR_MS
    assert s.import_price.tolist() == [0.08313, 0.07145, -0.0008, 0.1]
    assert s.export_price is not None and s.export_price.tolist() == [0.05, 0.04, -0.01, 0.06]
    assert s.currency is None and s.covered_ms == 4 * HOUR_MS


def test_without_an_export_column_there_are_no_export_prices(tmp_path: Path) -> None:
    text = "import_price,time\n0.2,2024-06-14T00:00:00Z\n0.3,2024-06-14T00:15:00Z\n"
    s = read_price_csv(write(tmp_path, text)).series
    assert s is not None and s.export_price is None
    assert s.import_price.tolist() == [0.2, 0.3] and s.step_ms == 15 * MINUTE_MS
    assert s.end_ms[-1] == parse_iso_ms("2024-06-14T00:30:00Z")  # the last price holds one step


def test_bom_crlf_blank_lines_and_quotes_are_read(tmp_path: Path) -> None:
    text = '\ufefftime,import_price\r\n"2024-06-14T00:00:00+02:00","0.1"\r\n\r\n2024-06-14T01:00:00+02:00,0.2\r\n'
    found = read_price_csv(write(tmp_path, text))
    assert found.series is not None and found.series.import_price.tolist() == [0.1, 0.2]
    assert found.problems.total == 0


# ----------------------------------------------------------------------------- bad rows


BAD_ROWS = [
    ("2024-06-14T05:00:00,0.1,0.1", "time", "has no UTC offset"),
    ("2024-06-14,0.1,0.1", "time", "is a date without a time"),
    ("yesterday,0.1,0.1", "time", "is not an ISO 8601 time"),
    (",0.1,0.1", "time", "is empty; every row needs a time"),
    ("2024-02-30T05:00:00Z,0.1,0.1", "time", "is not a valid date"),
    ("2024-06-14T05:00:00+02:00,,0.1", "import_price", "is empty"),
    ("2024-06-14T05:00:00+02:00,0.1,", "export_price", "is empty"),
    ("2024-06-14T05:00:00+02:00,abc,0.1", "import_price", "is not a number"),
    ("2024-06-14T05:00:00+02:00,0.1,12,5", None, "line has 4 fields; the header has 3"),
    ("2024-06-14T05:00:00+02:00,nan,0.1", "import_price", "is not a finite number"),
    ("2024-06-14T05:00:00+02:00,0.1,-inf", "export_price", "is not a finite number"),
    ("2024-06-14T05:00:00+02:00,150,0.1", "import_price", "is beyond 100 per kWh either way"),
]


@pytest.mark.parametrize(("row", "field", "reason"), BAD_ROWS)
def test_each_bad_row_is_a_problem_at_its_line_and_the_others_are_kept(
    tmp_path: Path, row: str, field: str | None, reason: str
) -> None:
    text = GOOD + row + "\n2024-06-14T06:00:00+02:00,0.2,0.1\n"
    found = read_price_csv(write(tmp_path, text))
    assert found.problems.total == 1, [str(p) for p in found.problems]
    (p,) = found.problems
    assert (p.line, p.field) == (6, field) and reason in p.reason
    assert str(p).startswith(f"{tmp_path / 'prices.csv'}:6: ")
    assert found.problems.rows_ok == 5
    s = found.series
    assert s is not None and len(s) == 5 and s.t_ms[-1] == T0 + 6 * HOUR_MS
    # the bad row's hour (05:00) and the one before it (04:00, never written) are a gap, not priced
    assert [(g.start_ms, g.end_ms, g.line) for g in found.gaps] == [(T0 + 4 * HOUR_MS, T0 + 6 * HOUR_MS, 7)]


def test_the_price_bound_is_a_parameter(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD + "2024-06-14T04:00:00+02:00,150,0.1\n")
    assert read_price_csv(path).problems.total == 1
    assert read_price_csv(path, max_abs_price=1000).problems.total == 0


def test_an_unordered_row_is_a_problem_naming_the_row_before(tmp_path: Path) -> None:
    text = GOOD + "2024-06-14T01:30:00+02:00,0.5,0.1\n2024-06-14T04:00:00+02:00,0.2,0.1\n"
    found = read_price_csv(write(tmp_path, text))
    (p,) = found.problems
    assert (p.line, p.field, p.value) == (6, "time", "2024-06-14T01:30:00+02:00")
    assert "is before the time of line 5" in p.reason
    assert found.series is not None and 0.5 not in found.series.import_price.tolist()


def test_duplicates_that_agree_are_counted_and_those_that_disagree_refused(tmp_path: Path) -> None:
    text = GOOD + "2024-06-14T01:00:00+02:00,0.07145,0.04\n2024-06-14T02:00:00+02:00,0.5,-0.01\n"
    found = read_price_csv(write(tmp_path, text))
    assert found.duplicates == 1
    assert [(p.line, p.field) for p in found.problems] == [(4, "time"), (7, "time")]
    assert "is also the time of line 7, with other prices" in found.problems[0].reason
    assert "is also the time of line 4" in found.problems[1].reason
    s = found.series
    assert s is not None
    assert s.t_ms.tolist() == [T0, T0 + HOUR_MS, T0 + 3 * HOUR_MS]  # 02:00 is not priced at all
    assert [(g.start_ms, g.end_ms) for g in s.gaps] == [(T0 + 2 * HOUR_MS, T0 + 3 * HOUR_MS)]


def test_problems_beyond_the_limit_are_counted(tmp_path: Path) -> None:
    rows = "".join(f"2024-06-14T{h:02d}:00:00,0.1\n" for h in range(24))  # all naive
    found = read_price_csv(write(tmp_path, "time,import_price\n" + rows), limit=5)
    assert len(found.problems) == 5 and found.problems.total == 24 and found.series is None
    assert load_dynamic_prices(tmp_path / "prices.csv")[0] is None


@pytest.mark.parametrize(
    ("text", "line", "field", "reason"),
    [
        ("", 1, None, "no header line"),
        ("time,import_price,price\n", 1, "price", "unknown column 'price'"),
        ("time,export_price\n", 1, None, "no 'import_price' column"),
        ("import_price\n", 1, None, "no 'time' column"),
        ("time,import_price,time\n", 1, "time", "column 'time' appears 2 times"),
    ],
)
def test_a_file_that_is_not_a_price_csv_is_refused_at_its_header(
    tmp_path: Path, text: str, line: int, field: str | None, reason: str
) -> None:
    with pytest.raises(BadRow) as caught:
        read_price_csv(write(tmp_path, text))
    assert (caught.value.line, caught.value.field) == (line, field) and reason in caught.value.reason


def test_text_that_is_not_utf8_is_refused_at_its_line(tmp_path: Path) -> None:
    path = tmp_path / "latin1.csv"
    path.write_bytes(b"time,import_price\n2024-06-14T00:00:00Z,0.1\n2024-06-14T01:00:00Z,0.1 \xe9\n")
    with pytest.raises(BadRow) as caught:
        read_price_csv(path)
    assert caught.value.line == 3 and "not valid UTF-8" in caught.value.reason


# ----------------------------------------------------------------------------- gaps


def _rows(minutes: list[int], start: str = "2024-06-14T00:00:00Z") -> str:
    t0 = parse_iso_ms(start)
    stamps = [datetime.fromtimestamp((t0 + m * MINUTE_MS) / 1000, ZoneInfo("UTC")).isoformat() for m in minutes]
    return "time,import_price\n" + "".join(f"{s},{0.1 + k / 100}\n" for k, s in enumerate(stamps))


@pytest.mark.parametrize(
    ("minutes", "gaps"),
    [
        ([0, 60, 120, 180], []),  # hourly
        ([0, 60, 180, 240], [(120, 180, 4)]),  # a missing hour
        ([0, 60, 240, 300], [(120, 240, 4)]),  # three missing hours
        ([0, 60, 180, 300, 360], [(120, 180, 4), (240, 300, 5)]),  # two gaps side by side
        ([0, 15, 30, 60, 75], [(45, 60, 5)]),  # a missing quarter hour
        ([0, 15, 45, 75, 90], [(30, 45, 4), (60, 75, 5)]),  # two missing quarters, steps of 30 min
        ([0, 60, 120, 135, 150, 165], []),  # hours, then quarter hours (the 2025 market change)
        ([0, 15, 30, 45, 60, 180], [(75, 180, 7)]),  # quarter hours, then a long silence
        ([0, 180, 240], [(60, 180, 3)]),  # the first step is the gap
    ],
)
def test_spans_without_prices_are_gaps_at_the_line_after_them_and_not_priced(
    tmp_path: Path, minutes: list[int], gaps: list[tuple[int, int, int]]
) -> None:
    found = read_price_csv(write(tmp_path, _rows(minutes)))
    t0 = parse_iso_ms("2024-06-14T00:00:00Z")
    assert [((g.start_ms - t0) // MINUTE_MS, (g.end_ms - t0) // MINUTE_MS, g.line) for g in found.gaps] == gaps
    assert found.problems.total == 0
    s = found.series
    assert s is not None
    prices = dynamic_prices(s)
    probe = t0 + np.arange(-5, minutes[-1] + 120, 5) * MINUTE_MS
    _, known = prices.buy(probe)
    in_gap = np.zeros(len(probe), dtype=bool)
    for g in found.gaps:
        in_gap |= (probe >= g.start_ms) & (probe < g.end_ms)
    inside = (probe >= s.t_ms[0]) & (probe < s.end_ms[-1])
    assert (known == (inside & ~in_gap)).all()
    assert s.covered_ms + sum(g.duration_ms for g in found.gaps) == s.end_ms[-1] - s.t_ms[0]


def test_a_gap_reads_as_a_sentence_with_its_line(tmp_path: Path) -> None:
    found = read_price_csv(write(tmp_path, _rows([0, 60, 180])))
    assert str(found.gaps[0]) == (f"{tmp_path / 'prices.csv'}:4: no price for 1 h, "
                                  "from 2024-06-14T02:00:00+00:00 to 2024-06-14T03:00:00+00:00")


# ----------------------------------------------------------------------------- round trip (hypothesis)


@st.composite
def price_series(draw: st.DrawFn) -> tuple[PriceSeries, str]:
    n = draw(st.integers(1, 40))
    steps = draw(st.lists(st.sampled_from([15, 60]), min_size=n - 1, max_size=n - 1))
    t0 = T0 + draw(st.integers(0, 1000)) * 15 * MINUTE_MS
    t = t0 + np.concatenate(([0], np.cumsum(steps))).astype(np.int64) * MINUTE_MS
    price = st.floats(-0.5, 5, allow_nan=False).map(lambda v: round(v, 6))
    buy = np.array(draw(st.lists(price, min_size=n, max_size=n)))
    sell = draw(st.none() | st.lists(price, min_size=n, max_size=n).map(np.array))
    zone = draw(st.sampled_from(["UTC", "Europe/Berlin", "America/New_York", "Asia/Kolkata"]))
    return series_from_intervals(t, buy, sell), zone


@settings(max_examples=60, deadline=None)
@given(price_series())
def test_a_written_series_reads_back_the_same_in_any_zone(tmp_path_factory: pytest.TempPathFactory,
                                                          case: tuple[PriceSeries, str]) -> None:
    series, zone = case
    path = tmp_path_factory.mktemp("rt") / "prices.csv"
    write_price_csv(path, series, zone)
    found = read_price_csv(path)
    back = found.series
    assert found.problems.total == 0 and back is not None
    assert back.t_ms.tolist() == series.t_ms.tolist()
    assert back.end_ms.tolist() == series.end_ms.tolist()
    assert back.import_price.tolist() == series.import_price.tolist()
    assert (back.export_price is None) == (series.export_price is None)
    if series.export_price is not None:
        assert back.export_price is not None and back.export_price.tolist() == series.export_price.tolist()


# ----------------------------------------------------------------------------- the real SMARD 2015 series


def smard_to_price_csv(source: Path, column: str, target: Path) -> int:
    """SMARD's day-ahead CSV (';', 'Jan 5, 2015;1:00 AM', local time of Germany, EUR/MWh, '-' for none) as a
    price CSV (EUR/kWh, ISO times with offsets): the repeated 2:00 AM of the October change is the second
    (CET) 2 o'clock. A '-' becomes an empty price (a problem of its row). Returns the rows written."""
    with source.open(encoding="utf-8-sig", newline="") as f:
        rows = list(csv.reader(f, delimiter=";"))
    j = rows[0].index(column)
    seen: set[datetime] = set()
    with target.open("w", encoding="utf-8", newline="") as out:
        out.write("time,import_price\n")
        for r in rows[1:]:
            wall = datetime.strptime(f"{r[0]} {r[1]}", "%b %d, %Y %I:%M %p")
            local = wall.replace(tzinfo=BERLIN, fold=1 if wall in seen else 0)
            seen.add(wall)
            price = "" if r[j].strip() == "-" else repr(float(r[j]) / 1000)
            out.write(f"{local.isoformat()},{price}\n")
    return len(rows) - 1


@pytest.fixture(scope="module")
def smard_de(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, int]:
    path = tmp_path_factory.mktemp("smard") / "de_2015.csv"
    return path, smard_to_price_csv(SMARD, "Germany/Austria/Luxembourg[€/MWh]", path)


def test_smard_2015_german_prices_read_whole_with_the_missing_first_days_named(smard_de: tuple[Path, int]) -> None:
    path, written = smard_de
    assert written == 8760
    found = read_price_csv(path)
    # SMARD has no German price for 2015-01-01 .. 01-04 (96 hours of '-'): each row a problem, nothing else
    assert found.problems.total == 96 and found.problems.rows_ok == 8664 and found.duplicates == 0
    assert {p.field for p in found.problems} == {"import_price"} and found.problems[0].line == 2
    assert found.problems[-1].line == 97
    s = found.series
    assert s is not None and s.gaps == () and s.step_ms == HOUR_MS
    assert s.t_ms[0] == parse_iso_ms("2015-01-05T00:00:00+01:00")
    assert s.end_ms[-1] == parse_iso_ms("2016-01-01T00:00:00+01:00")
    # the figures as SMARD publishes them: mean 31.83 EUR/MWh, from -79.94 to 99.77
    assert s.import_price.mean() * 1000 == pytest.approx(31.834930747922655, rel=1e-12)
    assert (s.import_price.min() * 1000, s.import_price.max() * 1000) == pytest.approx((-79.94, 99.77))


@pytest.mark.parametrize(("day", "hours"), [(date(2015, 3, 29), 23), (date(2015, 10, 25), 25), (date(2015, 6, 1), 24)])
def test_smard_dst_days_have_23_and_25_prices(smard_de: tuple[Path, int], day: date, hours: int) -> None:
    s = read_price_csv(smard_de[0]).series
    assert s is not None
    a, b = local_day_bounds(day, BERLIN)
    inside = (s.t_ms >= a) & (s.t_ms < b)
    assert int(inside.sum()) == hours and (s.end_ms[inside] - s.t_ms[inside] == HOUR_MS).all()


def test_smard_the_two_2_oclocks_of_october_keep_their_own_prices(smard_de: tuple[Path, int]) -> None:
    # SMARD: 'Oct 25, 2015;2:00 AM' twice, DE-AT-LU 25.07 EUR/MWh (CEST) then 25.02 (CET); the bill's price
    # at 02:30 local is the one of that clock hour
    prices = dynamic_prices(read_price_csv(smard_de[0]).series,  # type: ignore[arg-type]
                            PriceTerms(adder=0.2, percent=19))
    first = parse_iso_ms("2015-10-25T02:30:00+02:00")
    second = parse_iso_ms("2015-10-25T02:30:00+01:00")
    buy, known = prices.buy(np.array([first, second]))
    assert known.all()
    assert buy.tolist() == pytest.approx([0.02507 * 1.19 + 0.2, 0.02502 * 1.19 + 0.2])


def test_smard_a_zone_with_a_missing_day_mid_year_has_one_gap(tmp_path: Path) -> None:
    path = tmp_path / "ch.csv"
    smard_to_price_csv(SMARD, "Switzerland[€/MWh]", path)
    found = read_price_csv(path)
    assert found.problems.total == 24 and len(found.gaps) == 1
    (g,) = found.gaps
    assert g.duration_ms == 24 * HOUR_MS
    first_bad = min(p.line for p in found.problems)
    assert g.line == first_bad + 24  # the row after the day without prices
