"""The running hub: polls the devices, records readings, publishes and serves them.

One asyncio loop runs a poller per device (each with its own pace and back-off),
the recorder's flush (readings are committed as soon as they arrive, at most every
``flush_interval_s``), the retention pruner, the cache of a live price source, the MQTT publisher and the
HTTP server.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import math
import socket
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import numpy as np

from homegrid.config import Config
from homegrid.devices import Device
from homegrid.energy.minutes import MinuteAccounting
from homegrid.energy.outages import VOLTAGE_DOWN_V
from homegrid.glossary import GridStatus
from homegrid.hub.devices import build_battery_control, build_executor, build_storm
from homegrid.hub.notify import Notifier
from homegrid.hub.parts import OUTAGE_GAP_MS, outage_tracker_for, recorder_for
from homegrid.hub.planner_saving import PlannerSaving
from homegrid.hub.planning import PlanningService
from homegrid.hub.poller import DeviceHealth, DevicePoller, wait_or_stop
from homegrid.hub.price_cache import price_cache_for
from homegrid.hub.queries import Queries
from homegrid.hub.supervisor import Supervisor
from homegrid.hub.tariff_file import SiteTariff
from homegrid.hub.weather_cache import weather_cache_for
from homegrid.readings import Reading, ReadingFrame, from_ms, to_ms
from homegrid.store import GridEvidence, SQLiteStore

if TYPE_CHECKING:
    from homegrid.devices.virtual import VirtualHome

__all__ = ["OUTAGE_GAP_MS", "DeviceHealth", "Hub", "Publisher", "SimulatedHistory", "open_store"]

log = logging.getLogger(__name__)

DB_NAME = "homegrid.db"
LATENCY_SAMPLES = 2048
OUTAGE_CHECK_S = 5.0
OUTAGE_MARK_S = 60.0  # the detection high-water mark is moved at most this often (a kill re-detects the rest)
MAX_BUFFERED = 17_280  # a day of 5 s polls held in memory while the store refuses writes


def open_store(data_dir: Path, synchronous: str = "FULL", max_gap_s: float = 300.0) -> SQLiteStore:
    """The store in a data directory (created if missing), accounting the minutes of sealed days it does not keep
    as the recorder does (power samples further apart than ``max_gap_s`` [s] are not bridged)."""
    return SQLiteStore(Path(data_dir) / DB_NAME, synchronous=synchronous, minutes=MinuteAccounting(max_gap_s))


def _off_grid(reading: Reading) -> bool:
    """Whether a reading says the utility was not supplying the site (a cheap first look)."""
    status = reading.values.get("grid_status")
    if status is not None:
        return status != GridStatus.CONNECTED
    volts = reading.values.get("grid_voltage")
    return volts is not None and volts < VOLTAGE_DOWN_V


class Publisher(Protocol):
    """Where the hub's live news goes besides the store: the interface the hub owns and publishes through.

    The MQTT publisher (:class:`homegrid.api.mqtt.MqttPublisher`, built by :mod:`homegrid.api.serve`) is one.
    The ``publish*`` methods say whether the message was handed over; none may stop recording.
    """

    def start(self) -> None: ...

    def stop(self) -> None: ...

    def publish(self, reading: Reading) -> bool:
        """A reading accepted from a device."""

    def publish_event(self, kind: str, payload: dict[str, Any]) -> bool:
        """A grid event (outage started, ended) for the owner's notifications."""

    def publish_text(self, topic: str, text: str, retain: bool = True) -> bool:
        """A state on a topic of the publisher's (as :meth:`add_switch` named it)."""

    def device_states(self, devices: Iterable[dict[str, Any]]) -> None:
        """Each device's liveness, as :meth:`Hub.live` gives it."""

    def add_switch(self, object_id: str, name: str, on_command: Callable[[bytes], None]) -> str:
        """A switch the owner can flip (storm mode); ``on_command`` gets its payloads; returns its state topic."""

    def status(self) -> dict[str, Any]:
        """The publisher's health for ``/api/v1/live``."""


@runtime_checkable
class SimulatedHistory(Protocol):
    """A device that can write its own past (the virtual home): a new store is backfilled from it."""

    @property
    def now(self) -> datetime: ...

    def simulate(self, end: datetime, step_s: float = 60.0) -> ReadingFrame: ...


class Hub:
    """Everything ``homegrid serve`` runs.

    Parameters
    ----------
    config : Config
        Validated configuration.
    data_dir : Path
        Where the store lives.
    device : Device, optional
        One device to poll at ``server.poll_interval_s`` (tests); see ``devices``.
    clock : callable, optional
        Returns the current aware time (tests replace it).
    devices : sequence of (Device, interval_s), optional
        The devices to poll, each at its own pace [s]. When neither this nor
        ``device`` is given, the virtual home is polled.
    publisher : Publisher, optional
        Gets every accepted reading (MQTT).
    """

    def __init__(
        self,
        config: Config,
        data_dir: Path,
        device: Device | None = None,
        clock: Callable[[], datetime] | None = None,
        devices: Sequence[tuple[Device, float]] | None = None,
        publisher: Publisher | None = None,
    ) -> None:
        self.config = config
        self.data_dir = Path(data_dir)
        self.clock = clock or (lambda: datetime.now(UTC))
        self.store = open_store(data_dir, max_gap_s=config.accounting.max_gap_s)
        self.recorder = recorder_for(config, self.store)
        self.queries = Queries(self.store, config.site.tz)
        self.publisher = publisher
        self.notifier = Notifier(config.outages.notify_command, config.outages.notify_url,
                                 publisher if config.outages.notify_mqtt else None)
        self.outages = outage_tracker_for(config, self.store, notifier=self.notifier)
        self._evidence_seen: set[tuple[int, str, str, str]] = set()
        self._evidence: deque[GridEvidence] = deque()
        self._outages_checked = 0.0
        self._unchecked_from: int | None = None  # oldest committed reading detection still owes [ms]
        self._mark_moved = -math.inf
        #: whether the planner runs: ``[planner] enabled`` when set; unset, only on the virtual home, where it can
        #: move nothing real (a real battery or car is driven only when the owner opts in)
        self.planner_on = config.planner.enabled if config.planner.enabled is not None else \
            devices is None and device is None
        if devices is None:
            if device is None:
                from homegrid.devices.virtual import VirtualHome

                device = VirtualHome(config, clock=self.clock, start=self._virtual_start())
                self._resume(device)
            devices = [(device, config.server.poll_interval_s)]
        span = self.store.time_range()
        last_ms = None if span is None else span[1]
        self.pollers = [
            DevicePoller(d, interval, self._accept, self.recorder.quarantine, self.clock, last_ms)
            for d, interval in devices
        ]
        for p in self.pollers:
            p.on_evidence = self._accept_evidence
            p.max_power_w = config.site.max_power_w
            p.offline_after_s = config.server.offline_after_s
        self.control = build_battery_control(self.device)
        self.storm = build_storm(config, self.control, Path(data_dir), self.clock)
        self._storm_topic: str | None = None
        if self.storm is not None and publisher is not None:
            self._storm_topic = publisher.add_switch("storm", "Storm mode", self._storm_command)
        #: the planner's executor (:attr:`planner_on`), fed each step's plan by the planner's loop
        self.executor = None if not self.planner_on else build_executor(
            config, self.control, [p.device for p in self.pollers], publisher, self.storm, self.clock, Path(data_dir))
        if self.storm is not None and self.executor is not None:  # storm mode saves the owner's reserve, not a plan's
            executor = self.executor
            self.storm.owner_reserve = lambda: executor.floor_percent
        #: the site's tariff (the owner's upload, else the config's): the planner's prices and the API's bills
        self.tariff = SiteTariff.from_config(config, self.data_dir)
        #: the site's weather forecast for the planner's solar forecast ([planner] weather), fetched hourly
        self.weather = weather_cache_for(config, self.data_dir, self.clock, planner_on=self.planner_on)
        #: the planner's loop (:attr:`planner_on`): a plan every step, followed by the executor
        self.planning = None if not self.planner_on else PlanningService(
            config, self.store, self.tariff, self.live, self.clock,
            figures=getattr(self.device, "battery_figures", None),
            storm=None if self.storm is None else (lambda: self.storm.status), executor=self.executor,
            weather=None if self.weather is None else self.weather.current)
        #: what the planner saved against self-powered mode per billing month (the Money view)
        self.planner_saving = PlannerSaving(self.store, config.site.tz,
                                            config.planner.replace(enabled=self.planner_on),
                                            figures=getattr(self.device, "battery_figures", None), live=self.live)
        self._buffer: list[tuple[Reading, float]] = []
        self._live: dict[str, tuple[float, int]] = {}
        self._latency_ms: deque[float] = deque(maxlen=LATENCY_SAMPLES)
        self._store_errors = 0
        self._last_store_error: str | None = None
        self._stopping = asyncio.Event()
        self._pending: asyncio.Event | None = None
        self.supervisor = Supervisor(self._stopping, self.clock)
        self.price_cache = price_cache_for(config, self.data_dir, self.clock)

    @property
    def device(self) -> Device:
        """The first (main) device."""
        return self.pollers[0].device

    @property
    def health(self) -> DeviceHealth:
        """The first device's health."""
        return self.pollers[0].health

    def _virtual_start(self) -> datetime:
        now = self.clock()
        span = self.store.time_range()
        if span is None:
            return now - timedelta(days=self.config.server.backfill_days)
        return min(now, from_ms(span[1]))

    def _resume(self, home: VirtualHome) -> None:
        """A restarted hub finds the virtual home where it left it; like a real device, the home
        kept running while the hub was down, so its first poll carries the gap in its counters."""
        last = self.store.latest()
        if len(last):
            home.restore({n: float(c[0]) for n, c in last.columns.items()})

    def backfill(self) -> int:
        """On a first start with the virtual home, write recent history so days show at once."""
        home = self.device
        if not isinstance(home, SimulatedHistory) or self.store.time_range() is not None:
            return 0
        now = self.clock()
        if home.now >= now - timedelta(minutes=1):
            return 0
        log.info("first start: writing %.1f days of virtual history", self.config.server.backfill_days)
        from homegrid.progress import progress

        start = home.now
        days = (now - start).total_seconds() / 86_400

        def daily() -> Iterator[ReadingFrame]:  # a day at a time, so the bar moves
            with progress(total=round(days, 1), desc="backfill", unit="day") as bar:
                t = start
                while t < now:
                    nxt = min(t + timedelta(days=1), now)
                    yield home.simulate(end=nxt, step_s=60.0)
                    bar.update(round((nxt - t).total_seconds() / 86_400, 1))
                    t = nxt

        result = self.recorder.ingest_bulk(daily())
        if result is None:
            return 0
        _, first, last = result
        evidence = getattr(home, "evidence_between", None)
        if evidence is not None:
            self.outages.add_evidence(evidence(first, last + 1))
        self.outages.rebuild(first, last + 1)
        return result[0]

    def prepare(self) -> int:
        """Before polling: write the first start's history, then detect outages in any readings a killed
        hub committed without detecting them (see :meth:`OutageTracker.resume`). Returns readings written."""
        written = self.backfill()
        try:
            self.outages.resume()
            self._unchecked_from = self.outages.ongoing()  # the first readings say whether it is over
        except Exception as exc:  # detection trouble must never stop recording
            log.exception("resuming outage detection failed: %s", exc)
        return written

    async def poll_once(self, index: int = 0) -> bool:
        """Poll one device once (the first by default); errors are recorded, never raised."""
        return await self.pollers[index].poll_once()

    def _accept(self, reading: Reading, started: float) -> None:
        """A checked reading from a poller: buffer it for the store, show it live, publish it."""
        self._buffer.append((reading, started))
        t = reading.time_ms
        for name, value in reading.values.items():
            self._live[name] = (value, t)
        if self._pending is not None:
            self._pending.set()
        if self.publisher is not None:
            try:
                self.publisher.publish(reading)
            except Exception as exc:  # a broker problem must never stop recording
                log.warning("publishing a reading failed: %s", exc)

    def _accept_evidence(self, items: list[GridEvidence]) -> None:
        """A device's fault log, repeated at every poll: only what is new is kept for the next write."""
        for e in items:
            key = (e.time_ms, e.source, e.kind, e.name)
            if key not in self._evidence_seen:
                self._evidence_seen.add(key)
                self._evidence.append(e)
        if len(self._evidence_seen) > 100_000:
            self._evidence_seen = {(e.time_ms, e.source, e.kind, e.name) for e in self._evidence}

    def _storm_command(self, payload: bytes) -> None:
        """``ON`` / ``OFF`` / ``AUTO`` from MQTT (a Home Assistant switch)."""
        self.storm.switch(payload.decode(errors="replace").strip().lower(), by="MQTT")

    async def _availability_loop(self, publisher: Publisher) -> None:
        """Tell MQTT each device's availability (live or not) as it changes; checked every second."""
        while not self._stopping.is_set():
            publisher.device_states(self.live()[3])
            await wait_or_stop(self._stopping, 1.0)

    async def _storm_state_loop(self, publisher: Publisher, topic: str) -> None:
        """Tell MQTT (``topic`` of ``publisher``) whether storm mode is on, when it changes (and every few minutes)."""
        last, quiet = None, 0.0
        while not self._stopping.is_set():
            state = "ON" if self.storm.status.get("storm") else "OFF"
            if state != last or quiet >= 300.0:
                if publisher.publish_text(topic, state):
                    last, quiet = state, 0.0
            await wait_or_stop(self._stopping, 5.0)
            quiet += 5.0

    def live(self) -> tuple[str | None, dict[str, float], dict[str, str], list[dict[str, Any]]]:
        """The newest value of each quantity from any device: (newest time, values, time of each value, and each
        device's ``name``, ``state`` (live / stale / offline, see :mod:`homegrid.hub.liveness`), ``last_seen``,
        ``quantities`` (all it has measured since the hub started) and ``interval_s``). Cheap: no store read once
        polling."""
        devices = [self._device_live(p) for p in self.pollers]
        if not self._live:
            frame = self.store.latest()
            if not len(frame):
                return None, {}, {}, devices
            t = int(frame.time_ms[0])
            self._live = {n: (float(c[0]), t) for n, c in frame.columns.items() if not np.isnan(c[0])}
        newest = max(t for _, t in self._live.values())
        return (
            from_ms(newest).isoformat(),
            {n: v for n, (v, _) in self._live.items()},
            {n: from_ms(t).isoformat() for n, (_, t) in self._live.items()},
            devices,
        )

    @staticmethod
    def _device_live(poller: DevicePoller) -> dict[str, Any]:
        h = poller.health
        return {"name": h.name, "state": poller.state(), "last_seen": h.last_seen, "quantities": list(h.quantities),
                "interval_s": h.interval_s, "failing_since": h.failing_since}

    def backup(self) -> dict[str, Any]:
        """How long the battery would carry the home now (``/api/v1/backup``)."""
        from homegrid.hub.backup import backup_report

        values = self.live()[1]
        figures = getattr(self.device, "battery_figures", lambda: None)()  # what its readings do not say
        kwargs: dict[str, Any] = {} if figures is None else dataclasses.asdict(figures)
        return backup_report(self.store, self.config.site.tz, values, to_ms(self.clock()),
                             max_gap_s=self.config.accounting.max_gap_s, **kwargs)

    def flush(self) -> int:
        """Write buffered readings; returns how many.

        When the store refuses the write (disk full, database locked), the readings stay
        buffered for the next flush (up to ``MAX_BUFFERED``) and the hub goes on polling.
        """
        batch, self._buffer = self._buffer, []
        return self._write(batch)

    def _write(self, batch: list[tuple[Reading, float]]) -> int:
        if not batch:
            return 0
        try:
            frame = ReadingFrame.from_readings([r for r, _ in batch])
            self.recorder.ingest(frame)
        except Exception as exc:  # any store failure: keep the readings, keep the hub running
            self._store_errors += 1
            self._last_store_error = f"{self.clock().isoformat()}: {exc}"
            kept = batch + self._buffer
            dropped = max(0, len(kept) - MAX_BUFFERED)
            if dropped:
                log.error("store failing: dropped the %d oldest unflushed readings", dropped)
            self._buffer = kept[dropped:]
            log.error("store write failed (%s); %d readings kept for the next try", exc, len(self._buffer))
            return 0
        done = time.monotonic()
        self._latency_ms.extend((done - started) * 1000.0 for _, started in batch)
        times = frame.time_ms
        self._check_outages(done, any(_off_grid(r) for r, _ in batch), int(times.min()), int(times.max()))
        return len(batch)

    def _check_outages(self, now_monotonic: float, off_grid: bool, first_ms: int, last_ms: int) -> None:
        """Keep outage events current: new evidence is stored, and events re-detected when the readings
        or the evidence say the grid was away, or an event is still open (at most every few seconds).

        Readings that want detection are owed it until a detection has run over them (a throttled one
        is not forgotten when the next readings say the grid is fine); the high-water mark follows.
        """
        evidence = []
        while self._evidence:
            evidence.append(self._evidence.popleft())
        try:
            if evidence:
                self.outages.add_evidence(evidence)
            wanted = evidence or off_grid or self.outages.has_open or self._unchecked_from is not None
            if wanted:
                self._unchecked_from = first_ms if self._unchecked_from is None else min(self._unchecked_from,
                                                                                       first_ms)
            detected = False
            if wanted and (evidence or now_monotonic - self._outages_checked >= OUTAGE_CHECK_S):
                self._outages_checked = now_monotonic
                self.outages.update(to_ms(self.clock()), since_ms=self._unchecked_from)
                self._unchecked_from, detected = None, True
            if detected or now_monotonic - self._mark_moved >= OUTAGE_MARK_S:
                self._mark_moved = now_monotonic
                self.outages.set_checked(last_ms if self._unchecked_from is None else self._unchecked_from - 1)
        except Exception as exc:  # detection trouble must never stop recording
            log.exception("outage detection failed: %s", exc)

    async def _flush_loop(self) -> None:
        """Commit readings as soon as they arrive, at most every ``flush_interval_s``."""
        assert self._pending is not None
        while not self._stopping.is_set():
            await self._pending.wait()
            self._pending.clear()
            batch, self._buffer = self._buffer, []
            if batch:
                await asyncio.to_thread(self._write, batch)
            await wait_or_stop(self._stopping, self.config.store.flush_interval_s)

    async def _prune_loop(self) -> None:
        """Hourly: seal the UTC days that have ended into compressed blocks, and prune past the raw retention."""
        while not self._stopping.is_set():
            now_ms = to_ms(self.clock())
            sealed = await asyncio.to_thread(self.recorder.seal, now_ms)
            if sealed:
                log.info("sealed %d day(s) of readings into compressed blocks", sealed)
            deleted = await asyncio.to_thread(self.recorder.prune, self.config.store.raw_retention_days, now_ms)
            if deleted:
                log.info("pruned %d raw readings older than %s days", deleted, self.config.store.raw_retention_days)
            await wait_or_stop(self._stopping, 3600.0)

    def latency_ms(self) -> dict[str, float | int]:
        """Poll start to committed in the store, over the last readings [ms]."""
        if not self._latency_ms:
            return {"count": 0}
        a = np.fromiter(self._latency_ms, dtype=np.float64)
        return {"count": len(a), "p50": float(np.percentile(a, 50)), "p95": float(np.percentile(a, 95)),
                "max": float(a.max())}

    def status(self) -> dict[str, Any]:
        count, _ = self.store.quarantined(0)
        span = self.store.time_range()
        for p in self.pollers:
            p.state()  # the health says the state as of now
        return {
            "device": self.health.as_dict(),
            "devices": [p.health.as_dict() for p in self.pollers],
            "quarantined": count,
            "counter_resets": self.recorder.counter_resets,
            "counter_quarantined": self.recorder.counter_quarantined,
            "store_errors": self._store_errors,
            "last_store_error": self._last_store_error,
            "poll_to_store_ms": self.latency_ms(),
            "notifications": self.notifier.status(),
            "storm": None if self.storm is None else self.storm.status,
            "planner": None if self.executor is None else self.executor.status,
            "planning": None if self.planning is None else self.planning.status(),
            "prices": None if self.price_cache is None else self.price_cache.status(),
            "weather": None if self.weather is None else self.weather.status(),
            "mqtt": None if self.publisher is None else self.publisher.status(),
            "first_reading": None if span is None else from_ms(span[0]).isoformat(),
            "last_reading": None if span is None else from_ms(span[1]).isoformat(),
            "tasks": self.supervisor.status(),
        }

    def stop(self) -> None:
        self._stopping.set()
        if self._pending is not None:
            self._pending.set()

    async def run_pollers(self) -> None:
        """Poll, record and publish until stopped (no HTTP server)."""
        self._pending = asyncio.Event()
        if self.publisher is not None:
            self.publisher.start()
        # every loop runs supervised: one that ends or raises while the hub runs is logged and started again
        start, storm = self.supervisor.start, self.storm
        tasks = [start(f"poller {i} ({p.health.name})", partial(p.run, self._stopping), p.health.crashed)
                 for i, p in enumerate(self.pollers)]
        tasks += [start("flush", self._flush_loop), start("prune", self._prune_loop)]
        if self.publisher is not None:
            tasks.append(start("availability", partial(self._availability_loop, self.publisher)))
        if self.price_cache is not None:
            tasks.append(start("prices", partial(self.price_cache.run, self._stopping)))
        if self.weather is not None:
            tasks.append(start("weather", partial(self.weather.run, self._stopping)))
        if self.planning is not None:
            tasks.append(start("planner", partial(self.planning.run, self._stopping)))
        # the Money view's saving against self-powered mode, replayed in its own thread before the first ask
        self.planner_saving.warm(self.tariff.current(), self.tariff.version, to_ms(self.clock()))
        if storm is not None:
            tasks.append(start("storm", partial(storm.run, self._stopping, self.config.storm.interval_s)))
            if self.publisher is not None and self._storm_topic is not None:
                tasks.append(start("storm state", partial(self._storm_state_loop, self.publisher, self._storm_topic)))
        try:
            await self._stopping.wait()
        finally:
            self._stopping.set()
            self._pending.set()
            await asyncio.gather(*tasks, return_exceptions=True)
            self._final_flush()

    def _final_flush(self) -> None:
        """Write what is buffered before stopping; say how many readings are lost, and why, if that fails."""
        self.flush()
        if self._buffer:
            log.error("stopping with %d readings not written, now lost: %s", len(self._buffer),
                      self._last_store_error or "the store refused them")

    async def run(self, app: Any, host: str | None = None, port: int | None = None,
                  sockets: list[socket.socket] | None = None) -> None:
        """Backfill if new, then poll, record and serve ``app`` (an ASGI app, see :mod:`homegrid.api.serve`)
        until stopped (on ``sockets`` when given: bound before)."""
        import uvicorn

        await asyncio.to_thread(self.prepare)
        host = host or self.config.server.host
        server = uvicorn.Server(
            uvicorn.Config(
                app,
                host=host,
                port=port or self.config.server.port,
                log_level="warning",
                lifespan="off",
            )
        )
        pollers = asyncio.create_task(self.run_pollers())
        try:
            await server.serve(sockets=sockets)
        finally:
            self.stop()
            await asyncio.gather(pollers, return_exceptions=True)
            for p in self.pollers:
                await p.device.close()
            if self.publisher is not None:
                self.publisher.stop()
            self.store.close()
