"""Times: the units of a day, ISO 8601 text with a UTC offset, and time-zone arithmetic over arrays.

Inside homegrid every time is UTC epoch milliseconds; a site's IANA zone is applied only at the
edges (local days, labels, the virtual home's wall clock). This module is the one home of

- :data:`MINUTE_MS`, :data:`HOUR_MS`, :data:`DAY_MS`;
- the one ISO 8601 reader (:func:`parse_iso_ms`, :func:`parse_iso_time`): a time from outside (a file, an API
  query, a device, a feed) must carry its UTC offset;
- the UTC offsets of a zone over whole arrays (:func:`utc_offset_ms`, at the cost of a few hundred zone
  look-ups a year), their text (:func:`offset_text`) and local labels (:func:`local_isoformat`);
- local days and bins: :func:`local_date`, :func:`local_day_bounds`, :func:`local_floor_ms`; the local calendar
  of instants over arrays (:func:`local_calendar`: month, weekday, hour, day) and :func:`day_of_week`.

The grammar read is ``YYYY-MM-DDThh[:mm[:ss[.fraction]]]`` followed by ``Z`` or ``±hh[[:]mm]`` (or ``±hh:mm:ss``):
a space or ``t`` may replace the ``T``, ``z`` the ``Z``; up to 9 fraction digits.
"""

from __future__ import annotations

import enum
import functools
import re
from datetime import UTC, date, datetime, time, timedelta
from datetime import timezone as fixed_offset
from zoneinfo import ZoneInfo

import numpy as np

__all__ = [
    "DAY_MS",
    "HOUR_MS",
    "MINUTE_MS",
    "IsoTimeError",
    "Refusal",
    "day_of_week",
    "local_calendar",
    "local_date",
    "local_day_bounds",
    "local_floor_ms",
    "local_isoformat",
    "local_isoformat_json",
    "local_time_text",
    "offset_text",
    "parse_iso_ms",
    "parse_iso_time",
    "utc_offset_ms",
    "wall_to_utc_ms",
]

#: a minute, an hour and a day of UTC (no leap seconds) [ms]
MINUTE_MS = 60_000
HOUR_MS = 3_600_000
DAY_MS = 86_400_000

# ----------------------------------------------------------------------------- ISO 8601 text

_TIME_RE = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2})(?::(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?)?"
    r"([Zz]|[+-]\d{2}(?::\d{2}(?::\d{2})?|\d{2})?)?"
)
_DATE_RE = re.compile(r"\d{4}-\d{2}-\d{2}")
_EPOCH_ORDINAL = datetime(1970, 1, 1).toordinal()


class Refusal(enum.Enum):
    """Why a text names no instant."""

    EMPTY = "empty"
    NOT_ISO = "not an ISO 8601 time"
    DATE_ONLY = "a date without a time"
    NAIVE = "no UTC offset"
    INVALID = "not a valid date, time or UTC offset"


class IsoTimeError(ValueError):
    """A text that names no instant; :attr:`why` says which :class:`Refusal` it is."""

    def __init__(self, text: str, why: Refusal) -> None:
        super().__init__(f"{text!r}: {why.value}")
        self.text = text
        self.why = why


def _read(text: str) -> tuple[datetime, int, int]:
    """The wall-clock time as written (naive, whole seconds), the fraction of its second [ns] and the UTC
    offset [s east] of an ISO 8601 time; :class:`IsoTimeError` with its :class:`Refusal`."""
    if not text:
        raise IsoTimeError(text, Refusal.EMPTY)
    m = _TIME_RE.fullmatch(text)
    if m is None:
        raise IsoTimeError(text, Refusal.DATE_ONLY if _DATE_RE.fullmatch(text) else Refusal.NOT_ISO)
    year, month, day, hh, mm, ss, frac, zone = m.groups()
    if zone is None:
        raise IsoTimeError(text, Refusal.NAIVE)
    try:
        local = datetime(int(year), int(month), int(day), int(hh), int(mm or 0), int(ss or 0))
        offset_s = _offset_seconds(zone)
    except ValueError:
        raise IsoTimeError(text, Refusal.INVALID) from None
    return local, int((frac or "0").ljust(9, "0")), offset_s


def parse_iso_ms(text: str) -> int:
    """Epoch milliseconds of an ISO 8601 time with its UTC offset (the grammar above, no surrounding space),
    rounded half up. [ms]

    Raises :class:`IsoTimeError` with the :class:`Refusal`: empty text, not that grammar, a date alone,
    a time without an offset, or a date, time or offset out of range (``2026-02-30``, ``+24:00``).
    """
    local, ns, offset_s = _read(text)
    seconds = (local.toordinal() - _EPOCH_ORDINAL) * 86_400 + local.hour * 3600 + local.minute * 60 + local.second
    return ((seconds - offset_s) * 1_000_000_000 + ns + 500_000) // 1_000_000


def parse_iso_time(text: str) -> datetime:
    """The aware datetime of an ISO 8601 time that carries its UTC offset (``Z`` or ``+02:00``), in that offset,
    to the microsecond (a finer fraction is cut).

    The one rule for times that come from outside (an API query, a device, a feed, a file): a time
    without an offset names no instant, so it is refused. Surrounding white space is ignored. Raises
    ``ValueError`` saying which it is: ``'...' is not an ISO 8601 time`` or ``'...' has no UTC offset``.
    """
    try:
        local, ns, offset_s = _read(text.strip())
    except IsoTimeError as exc:
        if exc.why in (Refusal.NAIVE, Refusal.DATE_ONLY):
            raise ValueError(f"{text!r} has no UTC offset") from None
        raise ValueError(f"{text!r} is not an ISO 8601 time") from None
    return local.replace(microsecond=ns // 1000, tzinfo=fixed_offset(timedelta(seconds=offset_s)))


def _offset_seconds(zone: str) -> int:
    """Seconds east of UTC of ``Z``, ``±hh``, ``±hhmm``, ``±hh:mm`` or ``±hh:mm:ss``."""
    if zone in ("Z", "z"):
        return 0
    digits = zone[1:].replace(":", "")
    hh, mm, ss = int(digits[0:2]), int(digits[2:4] or 0), int(digits[4:6] or 0)
    if hh > 23 or mm > 59 or ss > 59:
        raise ValueError(f"offset {zone} out of range")
    sign = -1 if zone[0] == "-" else 1
    return sign * (hh * 3600 + mm * 60 + ss)


def offset_text(offset_ms: int) -> str:
    """An UTC offset as ISO 8601 writes it: ``+05:30``, ``-03:30``, ``+00:00``; seconds only when not whole
    minutes (``-00:25:21``), as ``datetime.isoformat``. [ms]"""
    seconds = int(offset_ms) // 1000
    sign = "-" if seconds < 0 else "+"
    hh, rest = divmod(abs(seconds), 3600)
    mm, ss = divmod(rest, 60)
    return f"{sign}{hh:02d}:{mm:02d}" + (f":{ss:02d}" if ss else "")


# ----------------------------------------------------------------------------- zones over arrays

def _offset_at(ms: int, tz: ZoneInfo) -> int:
    off = datetime.fromtimestamp(ms / 1000.0, tz).utcoffset()  # tz.fromutc: as .astimezone(tz), 40 % faster
    return int(off.total_seconds() * 1000) if off else 0


@functools.lru_cache(maxsize=4096)
def _year_transitions(timezone: str, year: int) -> tuple[np.ndarray, np.ndarray]:
    """Instants where the zone's offset changes in a UTC year, and the offset from each on (the first entry is
    the year's start). Kept per year, so that spans which differ (every request's) share the work."""
    tz = ZoneInfo(timezone)
    first = int(np.datetime64(f"{year}-01-01", "D").astype(np.int64))
    last = int(np.datetime64(f"{year + 1}-01-01", "D").astype(np.int64))
    days = np.arange(first, last + 1, dtype=np.int64) * DAY_MS
    offs = np.array([_offset_at(int(d), tz) for d in days], dtype=np.int64)
    starts = [int(days[0])]
    values = [int(offs[0])]
    for i in np.flatnonzero(offs[1:] != offs[:-1]).tolist():
        lo, hi = int(days[i]), int(days[i + 1])  # the change lies in (lo, hi]; bisect to the millisecond
        while hi - lo > 1:
            mid = (lo + hi) // 2
            if _offset_at(mid, tz) == offs[i]:
                lo = mid
            else:
                hi = mid
        if hi < days[-1]:  # a change at the next year's first instant is that year's
            starts.append(hi)
            values.append(int(offs[i + 1]))
    return np.array(starts, dtype=np.int64), np.array(values, dtype=np.int64)


def _transitions(timezone: str, first_day: int, last_day: int) -> tuple[np.ndarray, np.ndarray]:
    """Instants where the zone's offset changes within the days, and the offset from each on."""
    years = np.array([first_day, last_day], dtype="datetime64[D]").astype("datetime64[Y]").astype(np.int64) + 1970
    parts = [_year_transitions(timezone, int(y)) for y in range(int(years[0]), int(years[1]) + 1)]
    starts = np.concatenate([p[0] for p in parts])
    values = np.concatenate([p[1] for p in parts])
    return starts, values


def utc_offset_ms(t_ms: np.ndarray, timezone: str) -> np.ndarray:
    """The zone's UTC offset at each instant (daylight saving included). [ms]

    Offset changes are found from daily samples and bisected to the millisecond (an
    instant at the change takes the new offset), so a year of instants costs a few
    hundred zone look-ups, whatever its length.
    """
    t = np.asarray(t_ms, dtype=np.int64)
    if t.size == 0:
        return np.zeros(0, dtype=np.int64)
    starts, values = _transitions(timezone, int(t.min() // DAY_MS) - 1, int(t.max() // DAY_MS) + 1)
    return values[np.searchsorted(starts, t, side="right") - 1]


def wall_to_utc_ms(wall_ms: np.ndarray, timezone: str) -> np.ndarray:
    """UTC instants of local wall-clock times (epoch ms read as if UTC). [ms]

    A wall time the clock skips (spring forward) moves forward by the jump; a
    repeated one (fall back) takes its first, daylight-time, occurrence.
    """
    wall = np.asarray(wall_ms, dtype=np.int64)
    guess = wall - utc_offset_ms(wall, timezone)
    utc: np.ndarray = wall - utc_offset_ms(guess, timezone)
    return utc


def local_isoformat(t_ms: np.ndarray, timezone: str) -> list[str]:
    """ISO 8601 local times to the second with their offsets, e.g. ``2025-03-09T03:00:00-04:00``.

    For labels (a few thousand at most); :func:`homegrid.readings.csvwrite.format_times` writes millions.
    """
    lines = _label_bytes(np.asarray(t_ms, dtype=np.int64), timezone, b"", b"\n")
    return lines.decode("ascii").splitlines()


def local_isoformat_json(t_ms: np.ndarray, timezone: str) -> bytes:
    """:func:`local_isoformat`'s labels as a JSON array (a day of minutes without 1,440 Python strings)."""
    items = _label_bytes(np.asarray(t_ms, dtype=np.int64), timezone, b'"', b'",')
    return b"[" + items[:-1] + b"]"


def _label_bytes(t: np.ndarray, timezone: str, before: bytes, after: bytes) -> bytes:
    """Each instant's label between ``before`` and ``after``, as one run of ASCII bytes."""
    off = utc_offset_ms(t, timezone)
    offsets, which = np.unique(off, return_inverse=True)
    suffixes = [offset_text(o) for o in offsets.tolist()]
    wall = t + off
    if not len(t) or (offsets % 60_000).any() or wall.min() < _FIRST_WALL_MS or wall.max() >= _END_WALL_MS:
        # seconds in an offset (local mean time before 1900) or a year of other than four digits: the slow way
        texts = np.datetime_as_string(wall.astype("datetime64[ms]"), unit="s").tolist()
        return b"".join(before + (a + suffixes[k]).encode() + after
                        for a, k in zip(texts, which.ravel().tolist(), strict=True))
    days, second_of_day = np.divmod(wall // 1000, 86_400)
    # the civil date of a day number (days since 1970-01-01), after H. Hinnant's civil_from_days
    z = days + 719_468
    era = z // 146_097
    doe = z - era * 146_097
    yoe = (doe - doe // 1460 + doe // 36_524 - doe // 146_096) // 365
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    month = np.where(mp < 10, mp + 3, mp - 9)
    year = yoe + era * 400 + (month <= 2)
    hour, rest = np.divmod(second_of_day, 3600)
    record = _label_record(len(before), len(after))
    row = before + b"0000-00-00T00:00:00" + suffixes[0].encode() + after
    out = np.frombuffer(bytearray(row * len(t)), dtype=record)  # (a copy would not keep the bytes between fields)
    for name, value in (("century", year // 100), ("year", year % 100), ("month", month),
                        ("day", doy - (153 * mp + 2) // 5 + 1), ("hour", hour), ("minute", rest // 60),
                        ("second", rest % 60)):
        out[name] = _TWO_DIGITS[value]
    if len(suffixes) > 1:
        out["offset"] = np.array(suffixes, dtype="S6")[which.ravel()]
    return out.tobytes()


#: the wall-clock times :func:`_label_bytes` writes itself: the years 1000 to 9999 [ms]
_FIRST_WALL_MS = -30_610_224_000_000
_END_WALL_MS = 253_402_300_800_000
#: "00" to "99", each as the two ASCII bytes of a little-endian uint16
_TWO_DIGITS = np.array([[48 + i // 10, 48 + i % 10] for i in range(100)], dtype=np.uint8).view("<u2").ravel()


@functools.cache
def _label_record(before: int, after: int) -> np.dtype:
    """``YYYY-MM-DDTHH:MM:SS+HH:MM`` between ``before`` and ``after`` bytes: its two-digit fields (written whole,
    as uint16) and its offset."""
    return np.dtype({"names": ["century", "year", "month", "day", "hour", "minute", "second", "offset"],
                     "formats": ["<u2"] * 7 + ["S6"],
                     "offsets": [before + k for k in (0, 2, 5, 8, 11, 14, 17, 19)], "itemsize": before + 25 + after})


def local_time_text(t_ms: int, timezone: str) -> str:
    """One instant as :func:`local_isoformat` writes it (to the second, with the offset); one at a time, as an
    outage list asks, through ``datetime`` rather than the array path's fixed costs."""
    return datetime.fromtimestamp(t_ms // 1000, ZoneInfo(timezone)).isoformat()


# ----------------------------------------------------------------------------- local days and bins


def local_date(t_ms: int, tz: ZoneInfo) -> date:
    """The local date of an instant in zone ``tz``."""
    return datetime.fromtimestamp(t_ms / 1000, tz=UTC).astimezone(tz).date()


def local_day_bounds(day: date, tz: ZoneInfo) -> tuple[int, int]:
    """UTC epoch ms of a local day's first and next day's first instant (23, 24 or 25 h apart)."""
    start = datetime.combine(day, time(0), tzinfo=tz)
    end = datetime.combine(day + timedelta(days=1), time(0), tzinfo=tz)
    return round(start.timestamp() * 1000), round(end.timestamp() * 1000)


def local_floor_ms(t_ms: int, size_ms: int, timezone: str) -> int:
    """The start of the local bin of ``size_ms`` (a minute or an hour) holding ``t_ms``: bins follow the
    site's clock, so in zones such as Asia/Kolkata (+05:30) hours start at :30 UTC. [ms]"""
    off = int(utc_offset_ms(np.array([t_ms], dtype=np.int64), timezone)[0]) % size_ms
    return (t_ms - off) // size_ms * size_ms + off


def day_of_week(days: np.ndarray) -> np.ndarray:
    """The day of the week of dates given as days since 1970-01-01 (a Thursday): 0 (Monday) to 6, as
    ``date.weekday()`` counts."""
    wd: np.ndarray = (np.asarray(days, dtype=np.int64) + 3) % 7
    return wd


def local_calendar(t_ms: np.ndarray, timezone: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The local calendar of each instant in the zone.

    Parameters
    ----------
    t_ms : numpy.ndarray
        Instants, UTC epoch milliseconds. [ms]
    timezone : str
        The site's IANA zone.

    Returns
    -------
    month : numpy.ndarray
        Local month, 0 (January) to 11.
    weekday : numpy.ndarray
        Local day of the week, 0 (Monday) to 6 (Sunday).
    hour : numpy.ndarray
        Local clock hour, 0 to 23.
    day : numpy.ndarray
        Local date as days since 1970-01-01.
    """
    t = np.asarray(t_ms, dtype=np.int64)
    local = t + utc_offset_ms(t, timezone)
    day = local // DAY_MS
    hour = (local - day * DAY_MS) // HOUR_MS
    month = day.astype("datetime64[D]").astype("datetime64[M]").astype(np.int64) % 12
    return month, day_of_week(day), hour, day
