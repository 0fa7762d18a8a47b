"""The cache of a live price source: ``<data_dir>/prices/<source>.csv``, kept fresh by the hub, backfilled by
``homegrid prices fetch``, read by the bill (``[tariff] prices = "awattar-de"``).

The cache is a price CSV (:mod:`homegrid.readings.prices`) of the source's spot prices, times in the site's zone.
Each fetch is merged into it by time: the cached intervals that a fetched interval overlaps are replaced by the
fetched ones (newer values win; a quarter-hour product replaces the hour it splits), the rest are kept. The file
is written whole to a temporary file beside it and renamed over the old one, so a reader never sees half a file
and a failed fetch or write leaves the old cache as it was.

The hub's :class:`PriceCacheTask` fetches the site's local today and tomorrow (the day-ahead prices of tomorrow
are published about 14:00 CET) every hour; a failure is logged and counted and the task waits for its next turn,
never stopping the hub.

Tests reach the sources through :data:`TRANSPORT` (an ``httpx`` transport; None: the network).
"""

from __future__ import annotations

import asyncio
import fcntl
import logging
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import numpy as np

from homegrid.config import Config
from homegrid.devices.prices import AwattarSource, NoPrices, PriceFeedError
from homegrid.hub.poller import wait_or_stop
from homegrid.hub.prices import PriceSource
from homegrid.readings.prices import Gap, PriceSeries, read_price_csv, series_from_intervals, write_price_csv
from homegrid.readings.problems import BadRow
from homegrid.timezones import DAY_MS, local_date, local_day_bounds

__all__ = [
    "CACHE_DIR",
    "LIVE_SOURCES",
    "MAX_REQUEST_DAYS",
    "REFRESH_S",
    "TRANSPORT",
    "CacheUpdate",
    "PriceCacheTask",
    "cache_path",
    "fetch_into_cache",
    "live_source",
    "merge_into_cache",
    "merge_series",
    "price_cache_for",
    "read_cache",
    "spans",
    "write_cache",
]

log = logging.getLogger(__name__)

#: the folder of the caches in the data dir
CACHE_DIR = "prices"
#: each live source ``[tariff] prices`` may name: its provider's market area
LIVE_SOURCES: dict[str, str] = {"awattar-de": "de", "awattar-at": "at"}
#: the most days one request asks for (aWATTar answers spans up to 366 days)
MAX_REQUEST_DAYS = 366
#: how often the hub fetches today and tomorrow [s]
REFRESH_S = 3600.0
#: the HTTP transport of the live sources; tests set an ``httpx.MockTransport``; None: the network
TRANSPORT: httpx.AsyncBaseTransport | None = None


def live_source(name: str, transport: httpx.AsyncBaseTransport | None = None) -> AwattarSource:
    """The live source ``name`` (a key of :data:`LIVE_SOURCES`) talking through ``transport``, else
    :data:`TRANSPORT`.

    Raises
    ------
    KeyError
        ``name`` is not a live source.
    """
    return AwattarSource(LIVE_SOURCES[name], transport=transport if transport is not None else TRANSPORT)


def cache_path(data_dir: str | os.PathLike[str], source: str) -> Path:
    """The cache CSV of a live source in the data dir: ``<data_dir>/prices/<source>.csv``."""
    return Path(data_dir) / CACHE_DIR / f"{source}.csv"


def read_cache(path: Path) -> PriceSeries | None:
    """The cached series, or None when there is no cache or no good row in it (its problems are logged).

    Raises
    ------
    BadRow
        The file is not a price CSV (its header).
    OSError
        The file exists but cannot be read.
    """
    if not path.exists():
        return None
    found = read_price_csv(path)
    if found.problems.total:
        log.warning("price cache %s: %d rows not used, the first: %s", path, found.problems.total,
                    found.problems[0] if found.problems else "?")
    return found.series


def merge_series(old: PriceSeries | None, new: PriceSeries) -> PriceSeries:
    """``old`` with ``new`` merged in by time: every interval of ``old`` that overlaps one of ``new`` is dropped
    (the newer values win), the rest kept.

    Export prices are kept only when both series have them (a live source has none). The result's source is
    ``new``'s; its gaps are found again over the whole.
    """
    if old is None or len(old) == 0:
        return new
    # an old interval overlaps the new ones when some new interval starts before its end and ends after its start
    k = np.searchsorted(new.t_ms, old.end_ms, side="left")  # new intervals starting before each old end
    last = np.clip(k - 1, 0, None)
    overlaps = (k > 0) & (new.end_ms[last] > old.t_ms)
    keep = ~overlaps
    t = np.concatenate([old.t_ms[keep], new.t_ms])
    end = np.concatenate([old.end_ms[keep], new.end_ms])
    buy = np.concatenate([old.import_price[keep], new.import_price])
    sell = None
    if old.export_price is not None and new.export_price is not None:
        sell = np.concatenate([old.export_price[keep], new.export_price])
    order = np.argsort(t, kind="stable")
    return series_from_intervals(t[order], buy[order], None if sell is None else sell[order], end_ms=end[order],
                                 currency=new.currency or old.currency, source=new.source)


def write_cache(path: Path, series: PriceSeries, timezone: str) -> None:
    """Write the cache whole: to a temporary file in its folder, then renamed over the old one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        write_price_csv(tmp, series, timezone)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def spans(start_ms: int, end_ms: int, max_days: int = MAX_REQUEST_DAYS) -> list[tuple[int, int]]:
    """``[start_ms, end_ms)`` cut into consecutive requests of at most ``max_days`` days each. [ms]"""
    step = max_days * DAY_MS
    return [(a, min(a + step, end_ms)) for a in range(start_ms, end_ms, step)]


@dataclass
class CacheUpdate:
    """What a fetch into the cache got.

    Attributes
    ----------
    fetched : int
        Intervals the source answered with. [intervals]
    first_ms, last_ms : int or None
        The start of the first and the end of the last fetched interval. [ms]
    gaps : list of Gap
        Spans asked for that the source had no prices for (at the ends too).
    cached : int
        Intervals in the cache after the merge. [intervals]
    """

    fetched: int = 0
    first_ms: int | None = None
    last_ms: int | None = None
    gaps: list[Gap] = field(default_factory=list)
    cached: int = 0


def _gaps_of(series: PriceSeries, start_ms: int, end_ms: int, where: str) -> list[Gap]:
    """The spans of ``[start_ms, end_ms)`` that ``series`` does not price."""
    out: list[Gap] = []
    if series.t_ms[0] > start_ms:
        out.append(Gap(start_ms, int(series.t_ms[0]), None, where))
    out += [g for g in series.gaps if g.end_ms > start_ms and g.start_ms < end_ms]
    if series.end_ms[-1] < end_ms:
        out.append(Gap(int(series.end_ms[-1]), end_ms, None, where))
    return out


async def fetch_into_cache(source: PriceSource, path: Path, start_ms: int, end_ms: int, timezone: str,
                           progress: Callable[[int, int, PriceSeries], None] | None = None) -> CacheUpdate:
    """Fetch ``[start_ms, end_ms)`` from ``source`` (in requests of at most :data:`MAX_REQUEST_DAYS` days) and
    merge each reply into the cache at ``path``, written after each request.

    Parameters
    ----------
    source : PriceSource
    path : Path
        The cache CSV (made when absent).
    start_ms, end_ms : int
        The span. [ms]
    timezone : str
        The IANA zone of the cache's written times.
    progress : callable, optional
        ``progress(start_ms, end_ms, series)`` after each request.

    Returns
    -------
    CacheUpdate

    A request whose reply holds no prices (a span in the future, or before the source's data begins) is a gap.

    Raises
    ------
    PriceFeedError
        A request failed; the cache keeps what the earlier requests merged, and nothing of this one.
    BadRow, OSError
        The cache cannot be read or written.
    """
    update = CacheUpdate()
    for a, b in spans(start_ms, end_ms):
        try:
            series = await source.fetch(a, b)
        except NoPrices:
            update.gaps.append(Gap(a, b, None, source.name))
            continue
        update.fetched += len(series)
        update.first_ms = int(series.t_ms[0]) if update.first_ms is None else update.first_ms
        update.last_ms = int(series.end_ms[-1])
        update.gaps += _gaps_of(series, a, b, source.name)
        update.cached = await asyncio.to_thread(merge_into_cache, path, series, timezone)
        if progress is not None:
            progress(a, b, series)
    if update.fetched == 0:
        cached = await asyncio.to_thread(read_cache, path)
        update.cached = 0 if cached is None else len(cached)
    return update


def merge_into_cache(path: Path, series: PriceSeries, timezone: str) -> int:
    """Merge ``series`` into the cache at ``path`` (:func:`merge_series`, :func:`write_cache`) and answer how many
    intervals it holds. The read, merge and write hold ``<cache>.lock`` (``flock``), so the hub's task and
    ``homegrid prices fetch`` running at once do not lose each other's prices."""
    path.parent.mkdir(parents=True, exist_ok=True)
    lock_path = path.with_name(path.name + ".lock")
    with os.fdopen(os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600), "r+b") as lock:  # the data dir's files: 0600
        fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
        try:
            merged = merge_series(read_cache(path), series)
            write_cache(path, merged, timezone)
        finally:
            fcntl.flock(lock.fileno(), fcntl.LOCK_UN)
    return len(merged)


class PriceCacheTask:
    """The hub's task keeping a live source's cache fresh: today and tomorrow (local) every ``interval_s``.

    Parameters
    ----------
    source : PriceSource
        The live source.
    path : Path
        Its cache CSV.
    tz : ZoneInfo
        The site's zone: its local days, and the written times' offsets.
    clock : callable
        The current aware time.
    interval_s : float
        Between fetches. [s]
    """

    def __init__(self, source: PriceSource, path: Path, tz: ZoneInfo, clock: Callable[[], datetime] | None = None,
                 interval_s: float = REFRESH_S) -> None:
        self.source = source
        self.path = path
        self.tz = tz
        self.clock = clock or (lambda: datetime.now(UTC))
        self.interval_s = interval_s
        self.fetches = 0
        self.failures = 0
        self.last_fetch: str | None = None
        self.last_error: str | None = None
        self.cached = 0

    def status(self) -> dict[str, Any]:
        """What the hub's health says about the cache."""
        return {"source": self.source.name, "path": str(self.path), "fetches": self.fetches,
                "failures": self.failures, "last_fetch": self.last_fetch, "last_error": self.last_error,
                "cached_intervals": self.cached}

    def span(self) -> tuple[int, int]:
        """Today and tomorrow, local: from today's first instant to the day after tomorrow's. [ms]"""
        today: date = local_date(int(self.clock().timestamp() * 1000), self.tz)
        return local_day_bounds(today, self.tz)[0], local_day_bounds(today + timedelta(days=1), self.tz)[1]

    async def refresh(self) -> bool:
        """Fetch today and tomorrow into the cache once; False (logged, counted) when that fails."""
        start_ms, end_ms = self.span()
        try:
            update = await fetch_into_cache(self.source, self.path, start_ms, end_ms, self.tz.key)
        except (PriceFeedError, BadRow, OSError, ValueError) as exc:
            self.failures += 1
            self.last_error = f"{self.clock().isoformat(timespec='seconds')}: {exc}"
            log.warning("prices from %s not cached (failure %d): %s", self.source.name, self.failures, exc)
            return False
        self.fetches += 1
        self.cached = update.cached
        self.last_fetch = self.clock().isoformat(timespec="seconds")
        log.info("prices from %s: %d intervals fetched, %d cached in %s", self.source.name, update.fetched,
                 update.cached, self.path)
        return True

    async def run(self, stopping: asyncio.Event) -> None:
        """Refresh now and every ``interval_s`` until ``stopping`` is set."""
        while not stopping.is_set():
            await self.refresh()
            await wait_or_stop(stopping, self.interval_s)


def price_cache_for(config: Config, data_dir: Path, clock: Callable[[], datetime] | None = None,
                    interval_s: float = REFRESH_S) -> PriceCacheTask | None:
    """The hub's cache task for the config's live source (``[tariff] prices``), or None when it names none."""
    name = config.tariff.prices.strip().lower()
    if name not in LIVE_SOURCES:
        return None
    return PriceCacheTask(live_source(name), cache_path(data_dir, name), config.site.tz, clock, interval_s)
