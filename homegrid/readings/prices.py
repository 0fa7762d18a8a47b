"""Price series: the price CSV (``time``, ``import_price``, optional ``export_price``) and the series it gives.

Format
------
One row per price interval, the header first::

    time,import_price,export_price
    2024-06-14T00:00:00+02:00,0.08313,0.07
    2024-06-14T01:00:00+02:00,0.07145,0.06

- ``time``: the start of the interval, an ISO 8601 time **with its UTC offset** (the grammar of
  :func:`homegrid.timezones.parse_iso_ms`); a price holds until the next row's time.
- ``import_price``: what a kWh bought in that interval costs, before the tariff's adder and percentage
  [currency/kWh]; negative prices are allowed (they happen on sunny, windy days).
- ``export_price`` (optional column): what a kWh sold earns [currency/kWh]; when the column is there, every
  row needs one.

The file is UTF-8 (a byte-order mark is allowed), comma-separated, lines end in ``\\n`` or ``\\r\\n``,
blank lines are skipped. This is the file ``homegrid backtest`` takes, and the form the live sources
(:mod:`homegrid.devices.prices`) are turned into: a :class:`PriceSeries`.

The door
--------
Nothing is dropped silently. A row is a :class:`~homegrid.readings.problems.Problem` at its line, and is not
used, when its field count is wrong, its time is not an ISO time with an offset, a price is empty, not a
number, not finite (``nan``, ``inf``) or beyond ``max_abs_price`` (100 per kWh by default: a price per MWh
written as one per kWh), or its time comes before the previous row's (the rows must rise). Rows with the
same time are merged when their prices agree (the extra rows are counted in :class:`PriceFile.duplicates`);
when they disagree every row of that time is a problem naming the other line.

A span without prices is a :class:`Gap`, reported with the line of the row after it and kept out of the
series' coverage (:attr:`PriceSeries.end_ms`), never priced at a neighbour's price. A step between two
rows is a gap when it is longer than ``max_interval_ms`` (an hour: no day-ahead product is longer) or longer
than the interval before it (a missing quarter hour in a 15-minute series). A step shorter than the one
before is a finer product (the day-ahead market moved from hours to quarter hours in 2025), not a problem.
"""

from __future__ import annotations

import csv
import io
import math
import os
from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from homegrid.readings.problems import QUOTE_CHARS, BadRow, Problem, ProblemList
from homegrid.timezones import HOUR_MS, MINUTE_MS, IsoTimeError, Refusal, local_isoformat, parse_iso_ms

__all__ = [
    "EXPORT_PRICE",
    "IMPORT_PRICE",
    "MAX_ABS_PRICE",
    "TIME",
    "Gap",
    "PriceFile",
    "PriceSeries",
    "read_price_csv",
    "series_from_intervals",
    "write_price_csv",
]

TIME = "time"
IMPORT_PRICE = "import_price"
EXPORT_PRICE = "export_price"
COLUMNS = (TIME, IMPORT_PRICE, EXPORT_PRICE)
#: the largest plausible price per kWh, either way [currency/kWh]; raise it for currencies of small units
MAX_ABS_PRICE = 100.0
#: the longest interval of a day-ahead product [ms]
MAX_INTERVAL_MS = HOUR_MS
_MAX_FILE_BYTES = 256 << 20  # a price file is small (a year of quarter hours is about 2 MB)

#: the sentence of each refusal of :func:`homegrid.timezones.parse_iso_ms`, following the cell's text
_REFUSED = {
    Refusal.EMPTY: "is empty; every row needs a time",
    Refusal.NOT_ISO: "is not an ISO 8601 time with offset such as 2025-06-01T12:00:00+02:00",
    Refusal.DATE_ONLY: "is a date without a time and UTC offset; write e.g. 2025-06-01T00:00:00+02:00",
    Refusal.NAIVE: "has no UTC offset (a naive time); add Z or an offset such as +02:00",
    Refusal.INVALID: "is not a valid date, time or UTC offset",
}


def _duration_text(ms: int) -> str:
    """``ms`` in words: ``2 h``, ``45 min``, ``1 h 15 min`` or ``90 s``."""
    if ms % MINUTE_MS:
        return f"{ms / 1000:g} s"
    h, m = divmod(ms // MINUTE_MS, 60)
    return " ".join(part for part in (f"{h} h" if h else "", f"{m} min" if m else "") if part) or "0 min"


@dataclass(frozen=True)
class Gap:
    """A span without prices between two rows (or entries) of a series.

    Attributes
    ----------
    start_ms, end_ms : int
        The uncovered span: from the end of the interval before to the start of the one after. [ms]
    line : int or None
        The line of the row after the gap (the header is line 1); None for a series not read from a file.
    where : str
        What the series was read from (a path or URL).
    """

    start_ms: int
    end_ms: int
    line: int | None = None
    where: str = ""

    @property
    def duration_ms(self) -> int:
        """How long the gap is. [ms]"""
        return self.end_ms - self.start_ms

    def __str__(self) -> str:
        a, b = local_isoformat(np.array([self.start_ms, self.end_ms], dtype=np.int64), "UTC")
        at = f"{self.where}:{self.line}: " if self.line is not None else (f"{self.where}: " if self.where else "")
        return f"{at}no price for {_duration_text(self.duration_ms)}, from {a} to {b}"


@dataclass(frozen=True, eq=False)  # arrays: compared by identity
class PriceSeries:
    """Prices per interval, as read from a file or a live source, before any tariff terms.

    Attributes
    ----------
    t_ms : numpy.ndarray of int64
        Start of each interval, strictly rising. [ms]
    end_ms : numpy.ndarray of int64
        End of each interval: the next start, or earlier where a :class:`Gap` follows. [ms]
    step_ms : int
        The series' resolution: the most common interval length (an hour, a quarter hour). [ms]
    import_price : numpy.ndarray of float64
        Price of a kWh bought [currency/kWh].
    export_price : numpy.ndarray of float64 or None
        Price of a kWh sold [currency/kWh]; None when the source has none.
    currency : str or None
        ISO 4217 code when the source says (a live source does; a CSV does not).
    source : str
        Where the prices come from (a path, a URL with its provider's name).
    gaps : tuple of Gap
        The spans between the first start and the last end without a price.
    """

    t_ms: np.ndarray
    end_ms: np.ndarray
    step_ms: int
    import_price: np.ndarray
    export_price: np.ndarray | None = None
    currency: str | None = None
    source: str = ""
    gaps: tuple[Gap, ...] = field(default_factory=tuple)

    def __len__(self) -> int:
        return len(self.t_ms)

    @property
    def covered_ms(self) -> int:
        """How much time the series prices. [ms]"""
        return int((self.end_ms - self.t_ms).sum())


def _interval_ends(t: np.ndarray, max_interval_ms: int) -> tuple[np.ndarray, np.ndarray, int]:
    """Each interval's end, a mask of the steps that are gaps, and the series' resolution.

    ``t`` rises strictly. A step ``t[i+1] - t[i]`` is a gap when it is longer than ``max_interval_ms`` or than
    the last step that was not a gap (the first is taken as the shorter of the first two steps); a gap's
    interval ends one such step after its start, as does the last interval.
    """
    n = len(t)
    steps = np.diff(t)
    if n < 2:
        return t + max_interval_ms, np.zeros(0, dtype=bool), max_interval_ms
    local = int(min(steps[:2].min(), max_interval_ms))
    gap = np.zeros(n - 1, dtype=bool)
    end = np.empty(n, dtype=np.int64)
    for i, s in enumerate(steps.tolist()):  # a year of quarter hours is 35,040 steps: fast enough
        if s > max_interval_ms or s > local:
            gap[i] = True
            end[i] = t[i] + local
        else:
            local = s
            end[i] = t[i + 1]
    end[-1] = t[-1] + local
    regular = steps[~gap]
    resolution = int(Counter(regular.tolist()).most_common(1)[0][0]) if len(regular) else local
    return end, gap, resolution


def series_from_intervals(
    t_ms: np.ndarray,
    import_price: np.ndarray,
    export_price: np.ndarray | None = None,
    *,
    end_ms: np.ndarray | None = None,
    lines: np.ndarray | None = None,
    max_interval_ms: int = MAX_INTERVAL_MS,
    currency: str | None = None,
    source: str = "",
) -> PriceSeries:
    """A :class:`PriceSeries` from rising interval starts and their prices, with its gaps found.

    Parameters
    ----------
    t_ms : numpy.ndarray
        Start of each interval, strictly rising, at least one. [ms]
    import_price, export_price : numpy.ndarray
        Prices [currency/kWh].
    end_ms : numpy.ndarray or None
        Each interval's end when the source gives it (a live source does) [ms]; None: inferred from the starts
        as the module says.
    lines : numpy.ndarray or None
        The file line of each interval, to name a gap's place.
    max_interval_ms : int
        The longest interval; a longer step is a gap. [ms]
    currency, source : str
        As :class:`PriceSeries` holds them.
    """
    t = np.asarray(t_ms, dtype=np.int64)
    if t.ndim != 1 or len(t) == 0:
        raise ValueError("a price series needs at least one interval")
    if (np.diff(t) <= 0).any():
        raise ValueError("a price series' starts must rise strictly")
    inferred, gap, resolution = _interval_ends(t, max_interval_ms)
    if end_ms is None:
        end = inferred
    else:
        end = np.asarray(end_ms, dtype=np.int64)
        if end.shape != t.shape or (end <= t).any() or (end[:-1] > t[1:]).any():
            raise ValueError("a price series' intervals must each end after their start and by the next start")
        gap = end[:-1] < t[1:]
        lengths = end - t
        resolution = int(Counter(lengths.tolist()).most_common(1)[0][0])
    gaps = tuple(
        Gap(int(end[i]), int(t[i + 1]), None if lines is None else int(lines[i + 1]), source)
        for i in np.flatnonzero(gap).tolist()
    )
    return PriceSeries(
        t, end, resolution, np.asarray(import_price, dtype=np.float64),
        None if export_price is None else np.asarray(export_price, dtype=np.float64),
        currency, source, gaps,
    )


# ----------------------------------------------------------------------------- the CSV


@dataclass(frozen=True)
class PriceFile:
    """What :func:`read_price_csv` found in a price CSV.

    Attributes
    ----------
    series : PriceSeries or None
        The good rows' prices; None when no row is good.
    problems : ProblemList
        The rows not used, each at its line with its field and what is wrong (``total`` counts them all).
    duplicates : int
        Rows dropped because an earlier row has the same time and the same prices. [rows]
    """

    series: PriceSeries | None
    problems: ProblemList
    duplicates: int = 0

    @property
    def gaps(self) -> tuple[Gap, ...]:
        """The spans without prices (see :class:`Gap`)."""
        return () if self.series is None else self.series.gaps


def _cell_number(text: str) -> tuple[float, str | None]:
    """A price cell: its value, or NaN and the reason it is refused."""
    s = text.strip(" \t")
    if not s:
        return math.nan, "is empty; every row needs a price"
    try:
        v = float(s)
    except ValueError:
        return math.nan, "is not a number"
    if not math.isfinite(v):
        return math.nan, "is not a finite number"
    return v, None


def _header(raw: str, file: str) -> tuple[str, ...]:
    names = tuple(c.strip() for c in next(csv.reader([raw]), []))
    for name in names:
        if name not in COLUMNS:
            raise BadRow(Problem(file, 1, name[:QUOTE_CHARS], None,
                                 f"unknown column {name[:QUOTE_CHARS]!r}; a price file has "
                                 f"{TIME}, {IMPORT_PRICE} and optionally {EXPORT_PRICE}"))
        if names.count(name) > 1:
            raise BadRow(Problem(file, 1, name, None, f"column {name!r} appears {names.count(name)} times"))
    for need in (TIME, IMPORT_PRICE):
        if need not in names:
            raise BadRow(Problem(file, 1, None, None, f"no {need!r} column; the header is {', '.join(names)}"))
    return names


def read_price_csv(
    path: str | os.PathLike[str],
    *,
    max_abs_price: float = MAX_ABS_PRICE,
    max_interval_ms: int = MAX_INTERVAL_MS,
    limit: int = 1000,
) -> PriceFile:
    """Read a price CSV: the series of its good rows, every bad row as a problem, its gaps.

    Parameters
    ----------
    path : path-like
        The CSV file.
    max_abs_price : float
        A price beyond this either way is a problem of its row [currency/kWh].
    max_interval_ms : int
        A step between rows longer than this is a gap [ms].
    limit : int
        Keep at most this many problems; ``problems.total`` counts them all.

    Returns
    -------
    PriceFile

    Raises
    ------
    BadRow
        The file cannot be read as a price CSV at all: not UTF-8, no header, an unknown or missing column.
    OSError
        The file cannot be opened.
    """
    file = os.fspath(path)
    with open(path, "rb") as f:
        data = f.read(_MAX_FILE_BYTES + 1)
    if len(data) > _MAX_FILE_BYTES:
        raise BadRow(Problem(file, 1, None, None, f"the file is larger than {_MAX_FILE_BYTES:,} bytes"))
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise BadRow(Problem(file, line, None, None, "line is not valid UTF-8 text")) from None
    lines = io.StringIO(text, newline=None).read().split("\n")
    if not lines or not lines[0].strip():
        raise BadRow(Problem(file, 1, None, None, f"no header line; expected {TIME!r} and {IMPORT_PRICE!r}"))
    names = _header(lines[0], file)
    i_time, i_buy = names.index(TIME), names.index(IMPORT_PRICE)
    i_sell = names.index(EXPORT_PRICE) if EXPORT_PRICE in names else None

    kept: list[Problem] = []
    total = 0

    def problem(p: Problem) -> None:
        nonlocal total
        total += 1
        if len(kept) < limit:
            kept.append(p)

    rows: list[tuple[int, int, float, float]] = []  # (time, line, import, export)
    for n, raw in enumerate(lines[1:], start=2):
        if not raw.strip():
            continue
        cells = next(csv.reader([raw]), [])
        if len(cells) != len(names):
            problem(Problem(file, n, None, None,
                            f"line has {len(cells)} fields; the header has {len(names)} ({', '.join(names)})"))
            continue
        bad = False
        try:
            t = parse_iso_ms(cells[i_time].strip(" \t"))
        except IsoTimeError as exc:
            problem(Problem(file, n, TIME, cells[i_time], _REFUSED[exc.why]))
            bad, t = True, 0
        prices = []
        for name, ci in ((IMPORT_PRICE, i_buy), (EXPORT_PRICE, i_sell)):
            if ci is None:
                prices.append(math.nan)
                continue
            v, why = _cell_number(cells[ci])
            if why is None and abs(v) > max_abs_price:
                why = (f"is beyond {max_abs_price:g} per kWh either way; is it a price per MWh? "
                       "(prices are per kWh)")
            if why is not None:
                problem(Problem(file, n, name, cells[ci], why))
                bad = True
            prices.append(v)
        if not bad:
            rows.append((t, n, prices[0], prices[1]))

    # order, duplicates and disagreements, in file order
    good: list[tuple[int, int, float, float]] = []
    by_time: dict[int, tuple[int, float, float]] = {}
    refused_times: set[int] = set()
    duplicates = 0
    last_t: int | None = None
    last_line = 0
    for t, n, buy, sell in rows:
        if t in by_time or t in refused_times:
            first = by_time.get(t)
            if first is not None and _same(first[1], buy) and _same(first[2], sell):
                duplicates += 1
                continue
            where = f"line {first[0]}" if first is not None else "an earlier line"
            problem(Problem(file, n, TIME, _time_text(lines[n - 1], i_time),
                            f"is also the time of {where}, with other prices; neither row is used"))
            if first is not None:
                problem(Problem(file, first[0], TIME, _time_text(lines[first[0] - 1], i_time),
                                f"is also the time of line {n}, with other prices; neither row is used"))
                del by_time[t]
                refused_times.add(t)
            continue
        if last_t is not None and t < last_t:
            problem(Problem(file, n, TIME, _time_text(lines[n - 1], i_time),
                            f"is before the time of line {last_line}; the rows must rise in time, "
                            "so this row is not used"))
            continue
        by_time[t] = (n, buy, sell)
        last_t, last_line = t, n
    for t, (n, buy, sell) in by_time.items():
        good.append((t, n, buy, sell))
    good.sort()
    problems = ProblemList(sorted(kept, key=lambda p: (p.line, p.field or "")), total=total, rows_ok=len(good))
    if not good:
        return PriceFile(None, problems, duplicates)
    arr = np.array([(t, n) for t, n, _, _ in good], dtype=np.int64)
    buy_arr = np.array([g[2] for g in good], dtype=np.float64)
    sell_arr = np.array([g[3] for g in good], dtype=np.float64) if i_sell is not None else None
    series = series_from_intervals(arr[:, 0], buy_arr, sell_arr, lines=arr[:, 1],
                                   max_interval_ms=max_interval_ms, source=file)
    return PriceFile(series, problems, duplicates)


def _same(a: float, b: float) -> bool:
    return (math.isnan(a) and math.isnan(b)) or a == b


def _time_text(raw: str, index: int) -> str:
    cells = next(csv.reader([raw]), [])
    return cells[index] if index < len(cells) else ""


def write_price_csv(path: str | os.PathLike[str], series: PriceSeries, timezone: str = "UTC") -> None:
    """Write a series as a price CSV, times in ``timezone`` with their offsets (gaps stay gaps: no rows).

    Parameters
    ----------
    path : path-like
        The file to write (replaced).
    series : PriceSeries
    timezone : str
        IANA zone of the written times' offsets (the instants are the same in any zone).
    """
    times = local_isoformat(series.t_ms, timezone)
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow([TIME, IMPORT_PRICE] + ([EXPORT_PRICE] if series.export_price is not None else []))
        for i, t in enumerate(times):
            row = [t, repr(float(series.import_price[i]))]
            if series.export_price is not None:
                row.append(repr(float(series.export_price[i])))
            w.writerow(row)
