"""The running hub: polls the device, records readings, serves the API.

One asyncio loop runs the poller (with back-off when the device fails), the
recorder's flush (at most ``flush_interval_s`` of readings are ever unflushed),
the retention pruner and the HTTP server.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from homegrid.config import Config
from homegrid.devices import Device, DeviceError
from homegrid.hub.queries import Queries
from homegrid.hub.recorder import Recorder
from homegrid.readings import Reading, ReadingFrame, from_ms, to_ms
from homegrid.store import SQLiteStore

__all__ = ["DeviceHealth", "Hub", "open_store"]

log = logging.getLogger(__name__)

DB_NAME = "homegrid.db"
MAX_BACKOFF_S = 300.0
FUTURE_TOLERANCE_MS = 300_000
MAX_BUFFERED = 17_280  # a day of 5 s polls held in memory while the store refuses writes


def open_store(data_dir: Path, synchronous: str = "FULL") -> SQLiteStore:
    """The store in a data directory (created if missing)."""
    return SQLiteStore(Path(data_dir) / DB_NAME, synchronous=synchronous)


@dataclass
class DeviceHealth:
    """What the API says about a device: last success, errors, back-off."""

    name: str
    polls: int = 0
    errors: int = 0
    consecutive_errors: int = 0
    last_ok: str | None = None
    last_error: str | None = None
    backoff_s: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name, "polls": self.polls, "errors": self.errors,
            "consecutive_errors": self.consecutive_errors, "last_ok": self.last_ok,
            "last_error": self.last_error, "backoff_s": self.backoff_s, **self.extra,
        }


class Hub:
    """Everything ``homegrid serve`` runs.

    Parameters
    ----------
    config : Config
        Validated configuration.
    data_dir : Path
        Where the store lives.
    device : Device, optional
        The device to poll; the virtual home when None.
    clock : callable, optional
        Returns the current aware time (tests replace it).
    """

    def __init__(
        self,
        config: Config,
        data_dir: Path,
        device: Device | None = None,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.config = config
        self.clock = clock or (lambda: datetime.now(UTC))
        self.store = open_store(data_dir)
        self.recorder = Recorder(self.store, config.site.tz, config.accounting.max_gap_s)
        self.queries = Queries(self.store, config.site.tz)
        self._virtual = device is None
        if device is None:
            from homegrid.devices.virtual import VirtualHome

            device = VirtualHome(config, clock=self.clock, start=self._virtual_start())
            self._resume(device)
        self.device = device
        self.health = DeviceHealth(getattr(device, "name", type(device).__name__))
        self._buffer: list[Reading] = []
        span = self.store.time_range()
        self._last_ms: int | None = None if span is None else span[1]
        self._stopping = asyncio.Event()

    def _virtual_start(self) -> datetime:
        now = self.clock()
        span = self.store.time_range()
        if span is None:
            return now - timedelta(days=self.config.server.backfill_days)
        return min(now, from_ms(span[1]))

    def _resume(self, home: Device) -> None:
        """A restarted hub finds the virtual home where it left it; like a real device, the home
        kept running while the hub was down, so its first poll carries the gap in its counters."""
        last = self.store.latest()
        if len(last):
            home.restore({n: float(c[0]) for n, c in last.columns.items()})  # type: ignore[attr-defined]

    def backfill(self) -> int:
        """On a first start with the virtual home, write recent history so days show at once."""
        if not self._virtual or self.store.time_range() is not None:
            return 0
        home = self.device
        now = self.clock()
        if home.now >= now - timedelta(minutes=1):  # type: ignore[attr-defined]
            return 0
        log.info("first start: writing %.1f days of virtual history", self.config.server.backfill_days)
        frame = home.simulate(end=now, step_s=60.0)  # type: ignore[attr-defined]
        result = self.recorder.ingest_bulk([frame])
        return 0 if result is None else result[0]

    async def poll_once(self) -> bool:
        """Poll the device once; errors are recorded, never raised."""
        self.health.polls += 1
        try:
            reading = await self.device.poll()
        except (DeviceError, OSError, ValueError, TimeoutError) as exc:
            self.health.errors += 1
            self.health.consecutive_errors += 1
            self.health.last_error = f"{self.clock().isoformat()}: {exc}"
            self.health.backoff_s = min(
                MAX_BACKOFF_S, self.config.server.poll_interval_s * 2 ** min(self.health.consecutive_errors, 8)
            )
            log.warning("device %s failed (%s); next try in %.0f s", self.health.name, exc, self.health.backoff_s)
            return False
        self.health.consecutive_errors = 0
        self.health.backoff_s = 0.0
        self.health.last_ok = reading.time.isoformat()
        self.health.extra["partial"] = dict(getattr(self.device, "problems", {}))  # endpoints that failed
        reading, problems = Reading.checked(reading.time, reading.values)
        problem = self._time_problem(reading)
        if problem:
            problems = {name: problem for name in reading.values}
            reading = Reading(reading.time, {})
        if problems:
            self.recorder.quarantine(reading.time_ms, self.health.name, problems)
        if reading.values:
            self._buffer.append(reading)
            self._last_ms = reading.time_ms
        return True

    def _time_problem(self, reading: Reading) -> str | None:
        """Readings from the future or from before the last one mean a clock jumped."""
        t = reading.time_ms
        now_ms = to_ms(self.clock())
        if t > now_ms + FUTURE_TOLERANCE_MS:
            return f"timestamp {reading.time.isoformat()} is in the future (clock jump?)"
        if self._last_ms is not None and t <= self._last_ms:
            return f"timestamp {reading.time.isoformat()} is not after the previous reading (clock went back?)"
        return None

    def flush(self) -> int:
        """Write buffered readings; returns how many.

        When the store refuses the write (disk full, database locked), the readings stay
        buffered for the next flush (up to ``MAX_BUFFERED``) and the hub goes on polling.
        """
        if not self._buffer:
            return 0
        try:
            self.recorder.ingest(ReadingFrame.from_readings(self._buffer))
        except Exception as exc:  # any store failure: keep the readings, keep the hub running
            self.health.extra["store_errors"] = self.health.extra.get("store_errors", 0) + 1
            self.health.extra["last_store_error"] = f"{self.clock().isoformat()}: {exc}"
            dropped = max(0, len(self._buffer) - MAX_BUFFERED)
            if dropped:
                self._buffer = self._buffer[dropped:]
                log.error("store failing: dropped the %d oldest unflushed readings", dropped)
            log.error("store write failed (%s); %d readings kept for the next try", exc, len(self._buffer))
            return 0
        written, self._buffer = len(self._buffer), []
        return written

    async def _poll_loop(self) -> None:
        interval = self.config.server.poll_interval_s
        while not self._stopping.is_set():
            started = time.monotonic()
            await self.poll_once()
            wait = self.health.backoff_s or interval
            await self._sleep(max(0.0, wait - (time.monotonic() - started)))

    async def _flush_loop(self) -> None:
        while not self._stopping.is_set():
            await self._sleep(self.config.store.flush_interval_s)
            self.flush()

    async def _prune_loop(self) -> None:
        while not self._stopping.is_set():
            now_ms = to_ms(self.clock())
            deleted = self.recorder.prune(self.config.store.raw_retention_days, now_ms)
            if deleted:
                log.info("pruned %d raw readings older than %s days", deleted, self.config.store.raw_retention_days)
            await self._sleep(3600.0)

    async def _sleep(self, seconds: float) -> None:
        try:
            await asyncio.wait_for(self._stopping.wait(), timeout=seconds)
        except TimeoutError:
            pass

    def status(self) -> dict[str, Any]:
        count, _ = self.store.quarantined(0)
        span = self.store.time_range()
        return {
            "device": self.health.as_dict(),
            "quarantined": count,
            "counter_resets": self.recorder.counter_resets,
            "counter_quarantined": self.recorder.counter_quarantined,
            "first_reading": None if span is None else from_ms(span[0]).isoformat(),
            "last_reading": None if span is None else from_ms(span[1]).isoformat(),
        }

    def stop(self) -> None:
        self._stopping.set()

    async def run(self, host: str | None = None, port: int | None = None) -> None:
        """Backfill if new, then poll, record and serve until stopped."""
        import uvicorn

        from homegrid.api.app import create_app

        await asyncio.to_thread(self.backfill)
        app = create_app(self.queries, health=self.status)
        server = uvicorn.Server(
            uvicorn.Config(
                app,
                host=host or self.config.server.host,
                port=port or self.config.server.port,
                log_level="warning",
                lifespan="off",
            )
        )
        tasks = [
            asyncio.create_task(self._poll_loop()),
            asyncio.create_task(self._flush_loop()),
            asyncio.create_task(self._prune_loop()),
        ]
        try:
            await server.serve()
        finally:
            self.stop()
            await asyncio.gather(*tasks, return_exceptions=True)
            self.flush()
            await self.device.close()
            self.store.close()
