"""A Tesla car as a homegrid device: its charge, where it is, and its share of the home's load.

The transport seam is :class:`~homegrid.devices.tesla.client.VehicleClient`;
the real clients (Fleet API, Teslemetry, Tessie) and the tests' recorded
replies both fit it.

Poll policy (as TeslaMate does it)
----------------------------------
Reading ``vehicle_data`` keeps a car awake and costs money (Fleet API: 500
requests per US$1); the vehicle list is free and never wakes the car. So:

- The car is never woken: no ``wake_up`` call exists here, and ``vehicle_data``
  is asked for only when the list says the car is online.
- Every due poll starts with the state from the vehicle list.
- Asleep or offline (:attr:`Mode.WATCHING`): only the state, every
  ``state_interval_s`` (60 s).
- Online and charging: ``vehicle_data`` every ``charging_interval_s`` (30 s).
- Online, driving or idle: ``vehicle_data`` every ``online_interval_s`` (60 s).
- Online, parked and not charging for ``idle_window_s`` (300 s) of reads:
  :attr:`Mode.SUSPENDED` -- no ``vehicle_data`` for ``suspend_s`` (1200 s) so
  the car can fall asleep; the state is still checked every
  ``state_interval_s``. When the list shows the car asleep or offline, the
  adapter goes back to watching and reads again as soon as the car is online
  (it woke: something changed). If the car stays online through the whole
  suspension, reading resumes with a new idle window. :meth:`TeslaVehicle.nudge`
  (something outside saw a change, e.g. the wall connector drawing power)
  ends a suspension at the next poll.
- A token bucket per car caps ``vehicle_data`` at ``data_per_minute`` (4/min,
  bursts of 4) whatever the intervals; a read it holds back is retried at the
  next poll after a token is due.
- HTTP 429 from either endpoint: no call at all until its Retry-After has
  passed (``default_retry_after_s``, 60 s, when the reply does not say); each
  poll meanwhile raises :class:`DeviceError` saying so.

What a poll returns
-------------------
Only what that poll freshly learned, never the last known values again: the
hub records gaps honestly and a repeated old value would look like a fresh one.

- Nothing due (the hub polls more often than the policy reads): an empty reading.
- Asleep: ``ev_power`` = 0 only (a sleeping car is not charging, wherever it is).
  Offline or suspended: an empty reading (an offline car may be charging in a
  garage without coverage; a suspended one may have started a scheduled charge).
- A ``vehicle_data`` read: everything :func:`parse_vehicle_data` gives, unless the
  car's own ``charge_state.timestamp`` is older than ``stale_after_s`` (600 s): a
  cached reply of a car that is not answering is listed as a problem, not recorded.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from homegrid.devices.base import Device, DeviceError
from homegrid.devices.tesla.client import (
    RateLimitedError,
    TeslaApiError,
    VehicleClient,
    VehicleUnavailableError,
)
from homegrid.devices.tesla.control import TeslaCarControl
from homegrid.devices.tesla.replies import Home, ReplyError, VehicleData, VehicleState, parse_vehicle_data
from homegrid.readings import Reading

__all__ = ["Mode", "PollPolicy", "TeslaVehicle", "TokenBucket"]


class Mode(enum.Enum):
    """What the adapter is doing with the car."""

    WATCHING = "watching"  # state unknown, asleep or offline: only the vehicle list
    READING = "reading"  # online: vehicle_data at the charging or online pace
    SUSPENDED = "suspended"  # online but idle: only the vehicle list, so the car can fall asleep


@dataclass(frozen=True)
class PollPolicy:
    """How often the car is read; every interval in [s].

    Parameters
    ----------
    state_interval_s : float
        Vehicle-list checks while asleep, offline or suspended [s].
    charging_interval_s : float
        ``vehicle_data`` while the car charges [s].
    online_interval_s : float
        ``vehicle_data`` while online and not charging (driving, or idle within the window) [s].
    idle_window_s : float
        How long an idle, parked car is read before reads stop [s].
    suspend_s : float
        How long reads stop so the car can fall asleep [s].
    data_per_minute : float
        Token-bucket rate of ``vehicle_data`` calls per car [1/min].
    data_burst : int
        Token-bucket size [calls].
    default_retry_after_s : float
        Back-off after HTTP 429 when the reply gives no Retry-After [s].
    stale_after_s : float
        A ``vehicle_data`` reply whose own timestamp is older than this is not recorded [s].
    """

    state_interval_s: float = 60.0
    charging_interval_s: float = 30.0
    online_interval_s: float = 60.0
    idle_window_s: float = 300.0
    suspend_s: float = 1200.0
    data_per_minute: float = 4.0
    data_burst: int = 4
    default_retry_after_s: float = 60.0
    stale_after_s: float = 600.0

    def __post_init__(self) -> None:
        for name in ("state_interval_s", "charging_interval_s", "online_interval_s", "data_per_minute",
                     "default_retry_after_s", "stale_after_s"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"PollPolicy.{name} = {value}: must be a number > 0")
        for name in ("idle_window_s", "suspend_s"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):
                raise ValueError(f"PollPolicy.{name} = {value}: must be a number >= 0")
        if self.data_burst < 1:
            raise ValueError(f"PollPolicy.data_burst = {self.data_burst}: must be >= 1")


class TokenBucket:
    """A token bucket: ``burst`` tokens, refilled at ``rate_per_s``; one call takes one.

    Parameters
    ----------
    rate_per_s : float
        Refill rate [tokens/s].
    burst : float
        Capacity [tokens]; the bucket starts full.
    clock : callable
        The time [s] (any monotone origin).
    """

    def __init__(self, rate_per_s: float, burst: float, clock: Callable[[], float]) -> None:
        if not (rate_per_s > 0 and burst >= 1):
            raise ValueError("a token bucket needs rate > 0 and burst >= 1")
        self.rate_per_s = rate_per_s
        self.burst = float(burst)
        self.clock = clock
        self.tokens = float(burst)
        self._updated = clock()

    def _refill(self) -> None:
        now = self.clock()
        if now > self._updated:
            self.tokens = min(self.burst, self.tokens + (now - self._updated) * self.rate_per_s)
        self._updated = now

    def try_take(self) -> bool:
        """Take one token if there is one."""
        self._refill()
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False

    def wait_s(self) -> float:
        """Time until a token is there [s]."""
        self._refill()
        return max(0.0, (1.0 - self.tokens) / self.rate_per_s)


class TeslaVehicle(Device):
    """A Tesla car: ``ev_soc``, ``ev_range``, ``ev_charge_limit``, ``ev_time_to_full``,
    ``ev_charging_state``, ``ev_at_home`` and ``ev_power`` (the home charger's draw for it).

    Parameters
    ----------
    client : VehicleClient
        The transport (a real client from :mod:`homegrid.devices.tesla.client`, or a fake).
    home : Home, optional
        The site's position and at-home radius; without it ``ev_at_home`` is unknown.
    policy : PollPolicy, optional
        The pace; see the module docstring for the defaults.
    clock : callable, optional
        The current aware time (tests pass a fake one; nothing here sleeps).
    name : str
        The device's name in the hub's health.

    Attributes
    ----------
    problems : dict
        What the last poll that called the API skipped (vendor field or step -> reason), for the hub
        to report; polls with nothing due leave it as it is.
    last : VehicleData or None
        The last ``vehicle_data`` read.
    state : str or None
        The car's state from the last vehicle-list check.
    mode : Mode
    """

    name = "tesla"
    #: The hub waits up to 5 min between retries of a failing car, not a minute as for a LAN device: the Tesla
    #: API is a cloud service shared with every other client and rate-limited per account and per car; the
    #: errors left to this back-off (a 5xx while Tesla's servers struggle, an expired or revoked token) are not
    #: fixed by asking more often; and the car's figures are not needed to keep the home running. HTTP 429 is
    #: handled here, with its Retry-After.
    max_backoff_s = 300.0

    def __init__(
        self,
        client: VehicleClient,
        *,
        home: Home | None = None,
        policy: PollPolicy | None = None,
        clock: Callable[[], datetime] | None = None,
        name: str = "tesla",
    ) -> None:
        self.client = client
        self.home = home
        self.policy = policy or PollPolicy()
        self.clock = clock or (lambda: datetime.now(UTC))
        self.name = name
        self.bucket = TokenBucket(self.policy.data_per_minute / 60.0, self.policy.data_burst, self._now)
        self.mode = Mode.WATCHING
        self.state: str | None = None
        self.last: VehicleData | None = None
        self.problems: dict[str, str] = {}
        self.data_reads = 0
        self.state_reads = 0
        self._next_check_at = -math.inf
        self._idle_since: float | None = None
        self._suspended_until = -math.inf
        self._backoff_until = -math.inf
        self._nudged = False

    def _now(self) -> float:
        return self.clock().timestamp()

    # -- what the hub may ask -------------------------------------------------------------------------------------

    def car_control(self) -> TeslaCarControl | None:
        """The car's charging for the planner (:class:`~homegrid.devices.tesla.control.TeslaCarControl`), when
        the client sends commands (Fleet API, Teslemetry); None otherwise (Tessie)."""
        from homegrid.devices.tesla.client import TessieClient

        if isinstance(self.client, TessieClient) or not callable(getattr(self.client, "command", None)):
            return None
        return TeslaCarControl(self.client)  # type: ignore[arg-type]  # checked above: it has command()


    def seconds_until_due(self) -> float:
        """How long until the next poll would call the API [s] (0: the next one will)."""
        now = self._now()
        return max(0.0, self._next_check_at - now, self._backoff_until - now)

    def nudge(self) -> None:
        """Something outside says the car changed (e.g. the wall connector draws power): check it at the next poll.

        A suspended car is read again if the list says it is online; a sleeping car is still not woken.
        """
        self._nudged = True
        self._next_check_at = -math.inf

    @property
    def status(self) -> dict[str, Any]:
        """The policy's state for the hub's device health."""
        return {"mode": self.mode.value, "car_state": self.state, "next_call_in_s": round(self.seconds_until_due()),
                "vehicle_data_reads": self.data_reads, "state_reads": self.state_reads}

    # -- polling --------------------------------------------------------------------------------------------------

    def _rate_limited(self, now: float, exc: RateLimitedError) -> DeviceError:
        wait = exc.retry_after_s if exc.retry_after_s is not None else self.policy.default_retry_after_s
        self._backoff_until = now + wait
        return DeviceError(f"{exc}; {self.name}: no call to the API for {wait:.0f} s")

    async def _read_state(self, now: float) -> str:
        try:
            state = await self.client.state()
        except RateLimitedError as exc:
            raise self._rate_limited(now, exc) from None
        except (TeslaApiError, ReplyError) as exc:
            raise DeviceError(f"{self.name}: vehicle state: {exc}") from None
        except Exception as exc:  # a client raises what it likes; the hub must go on
            raise DeviceError(f"{self.name}: vehicle state: {type(exc).__name__}: {exc}") from None
        finally:
            self.state_reads += 1
        try:
            return VehicleState(state).value
        except ValueError:
            raise DeviceError(f"{self.name}: vehicle state {state!r} is not online, asleep or offline") from None

    async def poll(self) -> Reading:
        """One poll under the policy: the state if due, ``vehicle_data`` if due and the car is online.

        Raises
        ------
        DeviceError
            A failed call, an unusable reply, or a rate-limit back-off in progress.
        """
        when = self.clock()
        now = when.timestamp()
        values: dict[str, float] = {}
        if now < self._backoff_until:
            raise DeviceError(f"{self.name}: rate limited by the Tesla API (HTTP 429): backing off for another "
                              f"{self._backoff_until - now:.0f} s")
        if now < self._next_check_at:
            return Reading(when, values)  # the problems of the last call stay on show
        self.problems = {}

        self.state = await self._read_state(now)
        p = self.policy
        if self.state != VehicleState.ONLINE.value:
            if self.state == VehicleState.ASLEEP.value:
                values["ev_power"] = 0.0  # a sleeping car is not charging
            self.mode = Mode.WATCHING  # a suspension did its job; read again once it is online
            self._idle_since = None
            self._nudged = False
            self._next_check_at = now + p.state_interval_s
            return Reading(when, values)
        if self.mode is Mode.SUSPENDED and now < self._suspended_until and not self._nudged:
            self._next_check_at = now + p.state_interval_s
            return Reading(when, values)
        if self.mode is not Mode.READING:
            self._idle_since = None  # back from sleep or a suspension: a new idle window
        self.mode = Mode.READING

        if not self.bucket.try_take():
            wait = self.bucket.wait_s()
            self.problems["vehicle_data"] = (f"held back by the limit of {p.data_per_minute:g} reads/min; "
                                             f"next try in {wait:.0f} s")
            self._next_check_at = now + wait
            return Reading(when, values)
        self._nudged = False
        try:
            reply = await self.client.vehicle_data()
        except RateLimitedError as exc:
            raise self._rate_limited(now, exc) from None
        except VehicleUnavailableError as exc:  # the list said online, the car did not answer
            self.mode = Mode.WATCHING
            self.problems["vehicle_data"] = str(exc)
            self._next_check_at = now + p.state_interval_s
            return Reading(when, values)
        except TeslaApiError as exc:
            raise DeviceError(f"{self.name}: {exc}") from None
        except Exception as exc:
            raise DeviceError(f"{self.name}: vehicle_data: {type(exc).__name__}: {exc}") from None
        finally:
            self.data_reads += 1
        try:
            data = parse_vehicle_data(reply, self.home)
        except ReplyError as exc:
            self._next_check_at = now + p.online_interval_s
            raise DeviceError(f"{self.name}: {exc}") from None
        self.last = data
        self.problems.update(data.problems)
        self._next_check_at = now + self._pace(now, data)

        age_s = None if data.timestamp_ms is None else now - data.timestamp_ms / 1000.0
        if age_s is not None and age_s > p.stale_after_s:
            self.problems["vehicle_data"] = (f"the reply is the car's state of {age_s:.0f} s ago (a cached reply of "
                                             "a car that is not answering?); not recorded")
            return Reading(when, values)
        values.update(data.values)
        return Reading(when, values)

    @property
    def poll_interval_s(self) -> float:
        """How often this car gives a reading now [s], for the hub's live / stale rule (the hub asks more
        often; a poll with nothing due gives nothing): every ``charging_interval_s`` while charging, once
        a ``suspend_s`` while left alone to fall asleep, else every ``online_interval_s`` or ``state_interval_s``."""
        p = self.policy
        if self.mode is Mode.SUSPENDED:
            return p.suspend_s
        if self.mode is Mode.READING and self.last is not None and self.last.charging:
            return p.charging_interval_s
        return max(p.online_interval_s, p.state_interval_s)

    def _pace(self, now: float, data: VehicleData) -> float:
        """The wait until the next call after a read [s]; starts a suspension when the idle window is over."""
        p = self.policy
        if data.charging or data.driving:
            self._idle_since = None
            return p.charging_interval_s if data.charging else p.online_interval_s
        if self._idle_since is None:
            self._idle_since = now
        if now - self._idle_since >= p.idle_window_s:
            self.mode = Mode.SUSPENDED
            self._suspended_until = now + p.suspend_s
            self._idle_since = None
            return p.state_interval_s
        return p.online_interval_s

    async def close(self) -> None:
        """Close the client's connections, if it has any."""
        close = getattr(self.client, "close", None)
        if close is not None:
            await close()
