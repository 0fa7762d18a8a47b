"""One device's polling: its pace, its back-off, its health, and the checks on what it returns.

A :class:`DevicePoller` turns a device's readings and failures into checked
readings (handed to a sink) and a :class:`DeviceHealth` record. It never raises:
whatever a device's poll raises (a ``DeviceError``, or a ``TypeError`` from a
parser's bug) is a failed poll, counted, logged and backed off; whatever the
hub's side raises (the sink, the quarantine, the evidence callback) is logged
and counted too. The hub runs one poller per device; a fleet runs many.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from homegrid.devices import Device, DeviceError
from homegrid.glossary import MAX_POWER_W
from homegrid.hub.liveness import OFFLINE_AFTER_S, device_state
from homegrid.hub.throttle import ThrottledWarning
from homegrid.readings import Reading, from_ms, to_ms

__all__ = ["MAX_BACKOFF_S", "DeviceHealth", "DevicePoller", "describe", "next_due", "wait_or_stop"]

log = logging.getLogger(__name__)

#: The longest wait after a failed poll [s]: a LAN device that comes back is read again within a minute.
#: A device may ask for a longer one (``max_backoff_s``, the Tesla cloud API); a device polled less often
#: than this is retried at its own pace.
MAX_BACKOFF_S = 60.0
FUTURE_TOLERANCE_MS = 300_000
#: A device's own trouble (gone, timing out, answering garbage): logged without a traceback. Anything
#: else a poll raises is a bug in an adapter or parser, logged with its traceback so it can be fixed.
EXPECTED_FAILURES: tuple[type[Exception], ...] = (DeviceError, OSError, TimeoutError)
MAX_ERROR_CHARS = 300


def describe(exc: BaseException) -> str:
    """An exception as health shows it: its type and message, cut short."""
    text = f"{type(exc).__name__}: {exc}"
    return text if len(text) <= MAX_ERROR_CHARS else text[:MAX_ERROR_CHARS] + "..."


@dataclass
class DeviceHealth:
    """What the API says about a device: last success, errors, back-off, gaps."""

    name: str
    polls: int = 0
    errors: int = 0
    consecutive_errors: int = 0
    last_ok: str | None = None
    last_error: str | None = None
    backoff_s: float = 0.0
    failing_since: str | None = None  # start of the current run of failures: the gap in the data
    refused: int = 0  # readings refused whole for their time (a clock jump), kept in the quarantine
    refusing_since: str | None = None  # the first of the current run of such refusals
    gaps: list[dict[str, Any]] = field(default_factory=list)  # the last closed gaps, newest last
    partial_polls: int = 0  # polls that came back without an optional part (see ``partial``)
    hub_errors: int = 0  # readings the hub's side failed to take (a bug: logged with its traceback)
    last_hub_error: str | None = None
    restarts: int = 0  # times the poll task ended or crashed and was started again
    last_crash: str | None = None
    last_seen: str | None = None  # the time of its newest reading the hub took (ISO UTC)
    # everything it has measured since the hub started (glossary names): a last poll that came back partial does not
    # take back what the device vouched for, so a stale device greys all of its quantities
    quantities: list[str] = field(default_factory=list)
    state: str = "stale"  # live / stale / offline (homegrid.hub.liveness), as of the last look
    interval_s: float = 0.0  # its poll interval [s]
    extra: dict[str, Any] = field(default_factory=dict)

    def crashed(self, restarts: int, last_crash: str) -> None:
        """The supervisor restarted this device's poll task."""
        self.restarts = restarts
        self.last_crash = last_crash

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name, "polls": self.polls, "errors": self.errors,
            "consecutive_errors": self.consecutive_errors, "last_ok": self.last_ok,
            "last_error": self.last_error, "backoff_s": self.backoff_s,
            "failing_since": self.failing_since, "refused": self.refused, "refusing_since": self.refusing_since,
            "gaps": list(self.gaps), "partial_polls": self.partial_polls, "hub_errors": self.hub_errors,
            "last_hub_error": self.last_hub_error, "restarts": self.restarts, "last_crash": self.last_crash,
            "state": self.state, "last_seen": self.last_seen, "quantities": list(self.quantities),
            "interval_s": self.interval_s, **self.extra,
        }


MAX_GAPS_KEPT = 20


class DevicePoller:
    """Polls one device at its interval, backing off while it fails.

    ``max_power_w`` [W] bounds the powers it takes (``[site] max_power_w``; the hub sets it).

    Parameters
    ----------
    device : Device
        The adapter.
    interval_s : float
        The normal pace. [s]
    sink : callable
        Called with each checked reading and with the monotonic time the poll started [s].
    quarantine : callable
        Called with ``(time_ms, source, {field: (value as text, problem)})`` for values refused; a reading
        refused whole for its time comes as the field ``"reading"`` with its values as JSON.
    clock : callable
        The current aware time.
    last_ms : int, optional
        The newest stored reading time of this device [ms UTC], so that a restart
        does not accept readings from before it.
    """

    max_power_w: float = MAX_POWER_W

    def __init__(
        self,
        device: Device,
        interval_s: float,
        sink: Callable[[Reading, float], None],
        quarantine: Callable[[int, str, dict[str, tuple[str, str]]], None],
        clock: Callable[[], datetime],
        last_ms: int | None = None,
    ) -> None:
        self.device = device
        self.interval_s = interval_s
        self.sink = sink
        self.quarantine = quarantine
        self.clock = clock
        self.health = DeviceHealth(getattr(device, "name", type(device).__name__))
        self.last_ms = last_ms
        self.health.interval_s = interval_s
        #: polls failing this long make the device offline [s] (``[server] offline_after_s``; the hub sets it)
        self.offline_after_s = OFFLINE_AFTER_S
        self.health.last_seen = None if last_ms is None else from_ms(last_ms).isoformat()
        self._failing_since_ms: int | None = None
        self._warnings = ThrottledWarning(log)
        #: gets the device's grid-event evidence (fault log ...) after each good poll
        self.on_evidence: Callable[[list[Any]], None] | None = None

    async def poll_once(self) -> bool:
        """Poll the device once; True when it answered. Nothing is raised but ``CancelledError``."""
        started = time.monotonic()
        h = self.health
        h.polls += 1
        try:  # the device's side: anything raised here is a failed poll
            reading = await self.device.poll()
            partial = dict(getattr(self.device, "problems", None) or {})  # optional parts that failed
            status = getattr(self.device, "status", None)
            raw = reading.values
            reading, problems = Reading.checked(reading.time, raw, max_power_w=self.max_power_w)
            refused = {name: (str(raw[name]), why) for name, why in problems.items()}
            problem = self._time_problem(reading)
            evidence_of = getattr(self.device, "grid_evidence", None)
            evidence = None if evidence_of is None else list(evidence_of())
        except Exception as exc:  # CancelledError, KeyboardInterrupt and SystemExit are no Exception
            self._failed(exc)
            return False
        self._recovered(reading)
        self._partly(partial)
        if isinstance(status, dict):
            h.extra["status"] = status
        try:  # the hub's side: a failure here is the hub's bug, not the device's
            self._deliver(reading, refused, problem, started, evidence)
        except Exception as exc:
            h.hub_errors += 1
            h.last_hub_error = f"{self.clock().isoformat()}: {describe(exc)}"
            self._warnings.warn(("hub", type(exc).__name__, str(exc)), "device %s: the hub failed to take its "
                                "reading (%s); this is a bug, please report it with this traceback", h.name,
                                describe(exc), exc_info=exc)
        return True

    def _deliver(self, reading: Reading, refused: dict[str, tuple[str, str]], problem: str | None, started: float,
                 evidence: list[Any] | None) -> None:
        """A checked reading to the quarantine, the sink and the evidence callback."""
        h = self.health
        if problem:
            refused["reading"] = (json.dumps(reading.values, sort_keys=True), problem)
            self._refused(reading)
            reading = Reading(reading.time, {})
        elif h.refusing_since is not None:
            log.info("device %s: readings are accepted again (their time is after the last stored one and not "
                     "ahead of the hub's clock); %d refused since %s are in the quarantine", h.name, h.refused,
                     h.refusing_since)
            h.refusing_since = None
        if refused:
            self.quarantine(reading.time_ms, h.name, refused)
        if reading.values:
            self.last_ms = reading.time_ms
            self.sink(reading, started)
            h.last_seen = from_ms(reading.time_ms).isoformat()
            if not reading.values.keys() <= set(h.quantities):
                h.quantities = sorted(set(h.quantities) | reading.values.keys())
        if evidence is not None and self.on_evidence is not None:
            self.on_evidence(evidence)

    def _partly(self, partial: dict[str, Any]) -> None:
        """Optional parts that failed: shown in health, counted, and each new one logged (once an hour)."""
        h = self.health
        before = h.extra.get("partial") or {}
        h.extra["partial"] = partial
        if partial:
            h.partial_polls += 1
        for part, why in partial.items():
            if part not in before:
                self._warnings.warn(("partial", part), "device %s: %s failed (%s); its readings go without it",
                                    h.name, part, why)

    def backoff_s(self, failures: int) -> float:
        """The wait after ``failures`` failed polls in a row [s]: doubling from the interval up to the cap
        (``MAX_BACKOFF_S``, or the device's own ``max_backoff_s``), never shorter than the interval."""
        cap: float = getattr(self.device, "max_backoff_s", None) or MAX_BACKOFF_S
        factor: int = 2 ** min(failures, 16)
        return max(self.interval_s, min(cap, self.interval_s * factor))

    def _failed(self, exc: Exception) -> None:
        h = self.health
        now = self.clock().isoformat()
        h.errors += 1
        h.consecutive_errors += 1
        h.last_error = f"{now}: {describe(exc)}"
        if h.failing_since is None:
            h.failing_since = h.last_ok or now
            self._failing_since_ms = to_ms(datetime.fromisoformat(h.failing_since))
        h.backoff_s = self.backoff_s(h.consecutive_errors)
        # a device gone for days fails the same way every back-off: once an hour in the log, counted
        key = (type(exc).__name__, str(exc))
        if isinstance(exc, EXPECTED_FAILURES):
            self._warnings.warn(key, "device %s failed (%s); next try in %.0f s", h.name, describe(exc), h.backoff_s)
        else:
            self._warnings.warn(key, "device %s failed (%s); next try in %.0f s. An unexpected %s is a bug in the "
                                "device's adapter or parser: please report it with this traceback", h.name,
                                describe(exc), h.backoff_s, type(exc).__name__, exc_info=exc)

    def _recovered(self, reading: Reading) -> None:
        h = self.health
        if h.failing_since is not None:
            gap = {"from": h.failing_since, "to": reading.time.isoformat(), "failed_polls": h.consecutive_errors}
            h.gaps = [*h.gaps[-(MAX_GAPS_KEPT - 1):], gap]
            log.info("device %s is back after %d failed polls (gap from %s)", h.name, h.consecutive_errors,
                     h.failing_since)
            h.failing_since = None
            self._failing_since_ms = None
        h.consecutive_errors = 0
        h.backoff_s = 0.0
        h.last_ok = reading.time.isoformat()

    @property
    def reading_interval_s(self) -> float:
        """How often the device gives a reading [s]: its poll interval, or the device's own pace when it reads
        less often than it is asked (a car's ``poll_interval_s``)."""
        own = getattr(self.device, "poll_interval_s", None)
        return max(self.interval_s, own) if isinstance(own, (int, float)) else self.interval_s

    def state(self) -> str:
        """``live``, ``stale`` or ``offline`` now (see :mod:`homegrid.hub.liveness`); kept in the health too."""
        h = self.health
        h.interval_s = self.reading_interval_s
        h.state = device_state(to_ms(self.clock()), self.last_ms, self._failing_since_ms, h.interval_s,
                               self.offline_after_s).value
        return h.state

    def _refused(self, reading: Reading) -> None:
        h = self.health
        h.refused += 1
        if h.refusing_since is None:
            h.refusing_since = reading.time.isoformat()

    def _time_problem(self, reading: Reading) -> str | None:
        """Readings from the future or from before the last one mean a clock jumped."""
        t = reading.time_ms
        now_ms = to_ms(self.clock())
        if t > now_ms + FUTURE_TOLERANCE_MS:
            return f"timestamp {reading.time.isoformat()} is in the future (clock jump?)"
        if self.last_ms is not None and t <= self.last_ms:
            if self.last_ms > now_ms + FUTURE_TOLERANCE_MS:
                return (f"timestamp {reading.time.isoformat()} is not after the newest stored reading, "
                        f"{from_ms(self.last_ms).isoformat()}, which is ahead of this machine's clock; if the clock "
                        "is right, stop the hub and run `homegrid quarantine-future`")
            return f"timestamp {reading.time.isoformat()} is not after the previous reading (clock went back?)"
        return None

    async def run(self, stopping: asyncio.Event) -> None:
        """Poll until ``stopping`` is set, each poll when :func:`next_due` says."""
        due = time.monotonic()
        while not stopping.is_set():
            started = time.monotonic()
            await self.poll_once()
            now = time.monotonic()
            due = next_due(due, started, now, self.health.backoff_s or self.interval_s)
            await wait_or_stop(stopping, due - now)


def next_due(due: float, started: float, now: float, step: float) -> float:
    """When the next poll is due [s, monotonic], the last one having been due at ``due``, started at ``started``
    and ended at ``now``, polls ``step`` apart [s].

    One step after the last was due, so that late wake-ups of a busy loop do not add up. When that is past: a poll
    that itself took a step or more goes again at once (the device is slower than its pace); a wake-up later than a
    step (a loop held up, a machine suspended) waits for the next slot on the pace rather than polling twice in a row.
    """
    due += step
    if due > now:
        return due
    if now - started >= step:
        return now
    return due + (math.floor((now - due) / step) + 1) * step


async def wait_or_stop(stopping: asyncio.Event, seconds: float) -> None:
    """Sleep for ``seconds`` or until ``stopping`` is set."""
    try:
        await asyncio.wait_for(stopping.wait(), timeout=seconds)
    except TimeoutError:
        pass
