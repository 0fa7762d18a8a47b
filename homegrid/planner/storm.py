"""Storm mode: raise the battery's backup reserve ahead of severe weather and put it back afterwards.

Like the Tesla app's Storm Watch. Three things can turn it on: a qualifying weather
alert (the US National Weather Service feed, :mod:`homegrid.devices.weather.nws`), the
owner's switch (:meth:`StormWatch.set_manual`, from the API, MQTT or by hand), and nothing
else. The decision is the pure function :func:`decide`; :class:`StormWatch` reads the
feed and the reserve, applies the decision through a :class:`ReserveControl` and keeps
its state in a small JSON file, written atomically, so a restart never forgets which
reserve to restore.

The rules
---------
- **A qualifying alert** has ``status`` Actual and ``messageType`` Alert or Update; its event
  is one of :attr:`StormPolicy.events` or its severity is at least
  :attr:`StormPolicy.min_severity`; it has not expired (``expires`` and ``ends`` in the
  future); its hazard begins (``onset``, else ``effective``) within
  :attr:`StormPolicy.lead_h` from now; and no other message in the feed cancels or replaces
  it (a ``Cancel`` or a later message listing it in ``references``; VTEC actions CAN, EXP
  or UPG alone also end it).
- **Storm mode starts** when an alert qualifies (or the owner switches it on): the reserve
  read now is saved and the reserve is raised to :attr:`StormPolicy.reserve_percent` (no
  write when it is already at least that).
- **Storm mode ends** when no alert qualifies any more *and* :attr:`StormPolicy.hold_h` has
  passed since the last one ended (its own ``ends``/``expires``, or the moment it left the
  feed or was cancelled, whichever is earlier); then the saved reserve is written back.
  Switching storm mode off by hand ends it at once, without the hold.
- **An unreadable feed is not an all-clear.** When the feed cannot be read (the internet is
  often the first thing a storm takes), the alerts already known stay in force until the
  hazard's own end (``ends``, else ``expires``); only a feed that was read can end them
  early.

Not fighting the owner
----------------------
Storm mode only ever writes twice: up when it starts, back when it ends. While it is on,
the reserve is watched: once the raise has settled (it read back as written, or
:attr:`StormPolicy.settle_s` passed, which also accepts a cloud API that capped the value),
the value read is the baseline. If the reserve then moves away from the baseline by more
than :attr:`StormPolicy.tolerance_percent`, the owner changed it by hand: storm mode keeps
the owner's value, never raises it again during this storm, and when the storm is over it
does **not** restore the saved reserve (the owner's latest choice stands). The same holds
if the change is first seen when the storm ends. Storm mode never raises a reserve that is
already at or above its target, and then has nothing to restore.

The owner's switch (:meth:`StormWatch.set_manual`)
--------------------------------------------------
- ``True``: on now, whatever the alerts, until ``until`` (or until switched again).
- ``False`` with ``until``: off until then, whatever the alerts.
- ``False`` without ``until``: dismiss the alerts active now (and their later updates);
  a new alert turns storm mode on again.
- ``None``: back to automatic (dismissals forgotten).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import os
import tempfile
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

from homegrid.config import STORM_EVENTS
from homegrid.devices.weather.nws import (
    SEVERITIES,
    Alert,
    AlertFeed,
    AlertSource,
    FeedError,
    parse_time,
    severity_rank,
)

__all__ = [
    "DEFAULT_EVENTS",
    "AlertMemo",
    "Decision",
    "ReserveControl",
    "StormPolicy",
    "StormState",
    "StormWatch",
    "decide",
    "load_state",
    "qualifying_alerts",
    "save_state",
    "write_json_atomic",
]

log = logging.getLogger(__name__)

#: The owner's switch by name: on, off, automatic (:meth:`StormWatch.switch`).
SWITCH_MODES: dict[str, bool | None] = {"on": True, "off": False, "auto": None}

#: NWS events that turn storm mode on whatever their severity (``min_severity`` adds the rest).
DEFAULT_EVENTS: tuple[str, ...] = STORM_EVENTS
#: VTEC actions that end the event a message is about.
_ENDING_ACTIONS = frozenset({"CAN", "EXP", "UPG"})
STATE_VERSION = 1


class ReserveControl(Protocol):
    """What storm mode needs of a battery: read and set the backup reserve.

    Percentages are on the scale of the glossary's ``battery_reserve`` (the Tesla app's scale
    for a Powerwall, as ``battery_soc``). Both may raise
    :class:`~homegrid.devices.base.DeviceError`.
    """

    async def set_backup_reserve(self, percent: float) -> None: ...

    async def backup_reserve(self) -> float | None: ...


@dataclass(frozen=True)
class StormPolicy:
    """When storm mode starts and ends, and what it sets.

    Parameters
    ----------
    reserve_percent : float
        The reserve during a storm [%].
    events : tuple of str
        Event names that qualify whatever their severity (case-insensitive).
    min_severity : str or None
        Alerts at least this severe qualify whatever their event; None: only ``events``.
    lead_h : float
        An alert qualifies once its hazard begins within this time [h].
    hold_h : float
        Storm mode stays on this long after the last alert ended [h].
    settle_s : float
        After a write, how long a reserve that reads differently is taken for a slow or capped
        device rather than the owner's hand [s].
    tolerance_percent : float
        Reserves closer than this are equal [%] (the Tesla app rounds to whole app percents).
    """

    reserve_percent: float = 100.0
    events: tuple[str, ...] = DEFAULT_EVENTS
    min_severity: str | None = "Severe"
    lead_h: float = 24.0
    hold_h: float = 2.0
    settle_s: float = 300.0
    tolerance_percent: float = 1.0

    def __post_init__(self) -> None:
        if not (math.isfinite(self.reserve_percent) and 0 <= self.reserve_percent <= 100):
            raise ValueError(f"storm reserve_percent = {self.reserve_percent}: must be within 0..100 %")
        if self.min_severity is not None and self.min_severity.lower() not in (s.lower() for s in SEVERITIES):
            raise ValueError(f"storm min_severity = {self.min_severity!r}: expected one of {', '.join(SEVERITIES)}")
        for name in ("lead_h", "hold_h", "settle_s", "tolerance_percent"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):
                raise ValueError(f"storm {name} = {value}: must be >= 0")


@dataclass(frozen=True)
class AlertMemo:
    """What storm mode remembers of a qualifying alert (enough to act while the feed is unreadable)."""

    id: str
    event: str
    headline: str | None
    stops: datetime | None  # when the message stops counting (earlier of expires, ends)
    hazard_ends: datetime | None  # when the hazard should be over (ends, else expires)

    @classmethod
    def of(cls, alert: Alert) -> AlertMemo:
        return cls(alert.id, alert.event, alert.headline, alert.stops, alert.hazard_ends)


@dataclass(frozen=True)
class StormState:
    """Storm mode's memory; persisted as JSON (see :func:`save_state`).

    ``active``: storm mode is on. ``saved_reserve``: the reserve it replaced [%].
    ``set_reserve``: what it wrote [%] (None: it wrote nothing, the reserve was already high
    enough). ``applied_reserve``: the settled baseline [%]. ``owner_override``: the owner
    changed the reserve by hand during this storm. ``alerts``: the qualifying alerts.
    ``clear_since``: when the last alert ended. ``manual``/``manual_until``: the owner's
    switch. ``dismissed``: alert ids the owner switched off. ``pending``: a write in flight
    (re-sent after a crash) [%].
    """

    active: bool = False
    saved_reserve: float | None = None
    set_reserve: float | None = None
    set_at: datetime | None = None
    applied_reserve: float | None = None
    owner_override: bool = False
    alerts: tuple[AlertMemo, ...] = ()
    clear_since: datetime | None = None
    manual: bool | None = None
    manual_until: datetime | None = None
    dismissed: tuple[str, ...] = ()
    pending: float | None = None


@dataclass(frozen=True)
class Decision:
    """What to do now: write ``reserve`` [%] (None: write nothing), why, and the state to keep after it."""

    reserve: float | None
    reason: str
    state: StormState
    storm: bool
    alerts: tuple[AlertMemo, ...] = field(default_factory=tuple)


def _norm(name: str) -> str:
    return " ".join(name.split()).casefold()


def _ended_by_feed(alerts: Sequence[Alert]) -> set[str]:
    """Ids that another message in the feed cancels or replaces."""
    gone: set[str] = set()
    for a in alerts:
        gone.update(a.references)
    return gone


def qualifying_alerts(alerts: Iterable[Alert], now: datetime, policy: StormPolicy) -> list[Alert]:
    """The alerts that call for storm mode now (see the module's rules).

    Parameters
    ----------
    alerts : iterable of Alert
        One feed, cancellations included.
    now : datetime
        Aware.
    policy : StormPolicy
    """
    alerts = list(alerts)
    replaced = _ended_by_feed(alerts)
    events = {_norm(e) for e in policy.events}
    floor = severity_rank(policy.min_severity) if policy.min_severity is not None else None
    horizon = now + timedelta(hours=policy.lead_h)
    out = []
    for a in alerts:
        if a.status.casefold() != "actual" or a.message_type.casefold() not in ("alert", "update"):
            continue
        if a.id in replaced:
            continue
        if a.vtec_actions and a.vtec_actions <= _ENDING_ACTIONS:
            continue
        if not (_norm(a.event) in events or (floor is not None and a.severity_rank >= floor)):
            continue
        stops = a.stops
        if stops is not None and stops <= now:
            continue
        starts = a.starts
        if starts is not None and starts > horizon:
            continue
        out.append(a)
    return out


def _fmt(t: datetime | None) -> str:
    return "?" if t is None else t.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def _pct(v: float | None) -> str:
    return "unknown" if v is None else f"{v:.0f} %"


def _cleared(s: StormState) -> StormState:
    return replace(s, active=False, saved_reserve=None, set_reserve=None, set_at=None, applied_reserve=None,
                   owner_override=False, clear_since=None)


def decide(alerts: Sequence[Alert] | None, now: datetime, state: StormState, policy: StormPolicy,
           reserve: float | None) -> Decision:
    """What storm mode should do now; a pure function of its inputs.

    Parameters
    ----------
    alerts : sequence of Alert, or None
        The feed just read; None when it could not be read (known alerts then last until
        their hazard's own end).
    now : datetime
        Aware.
    state : StormState
        The state after the last decision that was carried out.
    policy : StormPolicy
    reserve : float or None
        The reserve read now [%]; None when it could not be read.

    Returns
    -------
    Decision
        ``reserve``: the reserve to write [%], or None; ``state``: to keep once the write (if
        any) succeeded; ``storm``: whether storm mode is on afterwards.
    """
    s = state
    tol = policy.tolerance_percent
    if s.manual is not None and s.manual_until is not None and now >= s.manual_until:
        s = replace(s, manual=None, manual_until=None)

    # A write interrupted by a restart: finish it first.
    if s.pending is not None:
        if reserve is not None and abs(reserve - s.pending) <= tol:
            s = replace(s, pending=None)
        else:
            return Decision(s.pending, f"finishing the reserve change to {_pct(s.pending)} that a restart interrupted",
                            replace(s, pending=None), s.active, s.alerts)

    # Which alerts count now.
    known = {m.id: m for m in s.alerts}
    dismissed = set(s.dismissed)
    if alerts is not None:
        grew = bool(dismissed)
        while grew:  # an update of a dismissed alert is dismissed too, along the whole chain
            grew = False
            for a in alerts:
                if a.id not in dismissed and dismissed.intersection(a.references):
                    dismissed.add(a.id)
                    grew = True
        live = [AlertMemo.of(a) for a in qualifying_alerts(alerts, now, policy)]
        present = {a.id for a in alerts}
        dismissed = {i for i in dismissed if i in present}
        ended_at = {i: (now if m.stops is None else min(m.stops, now)) for i, m in known.items()}
    else:
        live = [m for m in s.alerts if m.hazard_ends is None or m.hazard_ends > now]
        ended_at = {i: (now if m.hazard_ends is None else min(m.hazard_ends, now)) for i, m in known.items()}
    live_ids = {m.id for m in live}
    counted = tuple(m for m in live if m.id not in dismissed)
    ended = [ended_at[i] for i in known if i not in live_ids]  # over by themselves, not dismissed
    clear_since = s.clear_since
    if counted:
        clear_since = None
    elif ended and s.active and s.manual is None:
        clear_since = max([*ended, *([clear_since] if clear_since else [])])
    s = replace(s, alerts=counted, clear_since=clear_since, dismissed=tuple(sorted(dismissed)))

    # Whether storm mode is wanted.
    hold_until = None if clear_since is None else clear_since + timedelta(hours=policy.hold_h)
    if s.manual is True:
        wanted, why = True, "switched on by hand" + (f" until {_fmt(s.manual_until)}" if s.manual_until else "")
    elif s.manual is False:
        wanted, why = False, f"switched off by hand until {_fmt(s.manual_until)}"
    elif counted:
        wanted, why = True, "; ".join(f"{m.event}" + (f" ({m.headline})" if m.headline else "") for m in counted)
    elif s.active and hold_until is not None and now < hold_until:
        wanted, why = True, f"the last alert ended {_fmt(clear_since)}; holding until {_fmt(hold_until)}"
    else:
        wanted, why = False, "no qualifying alert" + (" (feed unreadable; known alerts kept)" if alerts is None else "")

    # While on: has the owner changed the reserve by hand?
    if s.active and s.set_reserve is not None and not s.owner_override and reserve is not None:
        if s.applied_reserve is None:
            settled = s.set_at is not None and (now - s.set_at).total_seconds() >= policy.settle_s
            if abs(reserve - s.set_reserve) <= tol or settled:
                s = replace(s, applied_reserve=reserve)
        elif abs(reserve - s.applied_reserve) > tol:
            s = replace(s, owner_override=True)
            if wanted:
                return Decision(None, f"storm mode on ({why}); the reserve was changed by hand to {_pct(reserve)}: "
                                f"kept, and {_pct(s.saved_reserve)} will not be restored", s, True, counted)

    if wanted and not s.active:
        if reserve is None:
            return Decision(None, f"storm mode wanted ({why}) but the reserve cannot be read; retrying", s, False,
                            counted)
        target = policy.reserve_percent
        if reserve >= target - tol:
            s = replace(s, active=True, saved_reserve=reserve, set_reserve=None, set_at=None, applied_reserve=None,
                        owner_override=False)
            return Decision(None, f"storm mode on ({why}); the reserve is already {_pct(reserve)}", s, True, counted)
        s = replace(s, active=True, saved_reserve=reserve, set_reserve=target, set_at=now, applied_reserve=None,
                    owner_override=False)
        return Decision(target, f"storm mode on ({why}): reserve {_pct(reserve)} -> {_pct(target)}", s, True, counted)
    if wanted:
        return Decision(None, f"storm mode on ({why})", s, True, counted)
    if not s.active:
        return Decision(None, why, s, False, counted)

    # Storm over.
    done = _cleared(s)
    if s.set_reserve is None:
        return Decision(None, f"storm mode off ({why}); it had not changed the reserve", done, False, counted)
    if s.owner_override:
        return Decision(None, f"storm mode off ({why}); keeping the reserve set by hand ({_pct(reserve)})",
                        done, False, counted)
    if s.saved_reserve is None or (reserve is not None and abs(reserve - s.saved_reserve) <= tol):
        return Decision(None, f"storm mode off ({why}); the reserve is {_pct(reserve)} already", done, False, counted)
    return Decision(s.saved_reserve, f"storm mode off ({why}): restoring the reserve to {_pct(s.saved_reserve)}",
                    done, False, counted)


# -- persistence ----------------------------------------------------------------------------------------


def _iso(t: datetime | None) -> str | None:
    return None if t is None else t.isoformat()


def _parse_time(value: Any, key: str) -> datetime | None:
    return parse_time("storm state", key, value)


def _number(value: Any, key: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"{key}: {value!r} is not a number")
    return float(value)


def state_to_json(state: StormState) -> dict[str, Any]:
    """The state as the JSON object :func:`save_state` writes."""
    return {
        "version": STATE_VERSION,
        "active": state.active,
        "saved_reserve_percent": state.saved_reserve,
        "set_reserve_percent": state.set_reserve,
        "set_at": _iso(state.set_at),
        "applied_reserve_percent": state.applied_reserve,
        "owner_override": state.owner_override,
        "alerts": [{"id": m.id, "event": m.event, "headline": m.headline, "stops": _iso(m.stops),
                    "hazard_ends": _iso(m.hazard_ends)} for m in state.alerts],
        "clear_since": _iso(state.clear_since),
        "manual": state.manual,
        "manual_until": _iso(state.manual_until),
        "dismissed": list(state.dismissed),
        "pending_reserve_percent": state.pending,
    }


def state_from_json(doc: Any) -> StormState:
    """The state from :func:`state_to_json`'s object; raise ValueError naming the bad key."""
    if not isinstance(doc, dict):
        raise ValueError(f"expected a JSON object, got {type(doc).__name__}")
    if doc.get("version") != STATE_VERSION:
        raise ValueError(f"version {doc.get('version')!r} is not {STATE_VERSION}")
    manual = doc.get("manual")
    if manual not in (True, False, None):
        raise ValueError(f"manual: {manual!r} is not true, false or null")
    alerts = []
    for i, m in enumerate(doc.get("alerts") or []):
        if not isinstance(m, dict) or not isinstance(m.get("id"), str):
            raise ValueError(f"alerts[{i}]: not an alert record")
        alerts.append(AlertMemo(m["id"], str(m.get("event") or ""), m.get("headline"),
                                _parse_time(m.get("stops"), f"alerts[{i}].stops"),
                                _parse_time(m.get("hazard_ends"), f"alerts[{i}].hazard_ends")))
    return StormState(
        active=bool(doc.get("active", False)),
        saved_reserve=_number(doc.get("saved_reserve_percent"), "saved_reserve_percent"),
        set_reserve=_number(doc.get("set_reserve_percent"), "set_reserve_percent"),
        set_at=_parse_time(doc.get("set_at"), "set_at"),
        applied_reserve=_number(doc.get("applied_reserve_percent"), "applied_reserve_percent"),
        owner_override=bool(doc.get("owner_override", False)),
        alerts=tuple(alerts),
        clear_since=_parse_time(doc.get("clear_since"), "clear_since"),
        manual=manual,
        manual_until=_parse_time(doc.get("manual_until"), "manual_until"),
        dismissed=tuple(str(i) for i in doc.get("dismissed") or []),
        pending=_number(doc.get("pending_reserve_percent"), "pending_reserve_percent"),
    )


def save_state(path: Path, state: StormState) -> None:
    """Write the state atomically: a temporary file in the same folder, flushed to disk, then renamed over.

    Parameters
    ----------
    path : Path
        The state file; its folder is created.
    state : StormState
    """
    write_json_atomic(path, state_to_json(state))


def write_json_atomic(path: Path, data: Any) -> None:
    """Write ``data`` as JSON atomically (a temporary file in the same folder, flushed, renamed over); the folder
    is created. Storm mode's state and the planner's executor's use it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(data, indent=2) + "\n"
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    with contextlib.suppress(OSError):  # make the rename itself durable
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


def load_state(path: Path) -> StormState:
    """The state in ``path``; a fresh state when the file does not exist.

    Raises
    ------
    ValueError
        The file exists but is not a storm state (the message names the file and the key).
    """
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return StormState()
    try:
        return state_from_json(json.loads(text))
    except (json.JSONDecodeError, ValueError, TypeError) as exc:
        raise ValueError(f"{path}: not a storm-mode state file: {exc}") from None


# -- the running watch ----------------------------------------------------------------------------------


class StormWatch:
    """Storm mode for one battery: reads the alerts, decides (:func:`decide`), sets the reserve, remembers.

    Parameters
    ----------
    control : ReserveControl
        The battery (a :class:`~homegrid.devices.powerwall.control.PowerwallControl` or the
        virtual home's :class:`~homegrid.devices.virtual.control.VirtualControl`).
    state_path : Path
        The JSON file storm mode keeps its state in (e.g. ``DATA_DIR/storm.json``).
    policy : StormPolicy
    source : AlertSource, optional
        The alert feed; None: only the owner's switch and :meth:`update_alerts` drive it.
    clock : callable, optional
        Returns the aware time now (default: the system clock, UTC).

    Notes
    -----
    Nothing raises out of :meth:`evaluate`, :meth:`refresh` or :meth:`run`: a feed or device
    error is kept in :attr:`status` and retried at the next step. A state file that cannot
    be read is moved aside (``*.corrupt``) and storm mode starts afresh, saying so in
    :attr:`status`.
    """

    def __init__(self, control: ReserveControl, state_path: Path, policy: StormPolicy | None = None,
                 source: AlertSource | None = None, clock: Callable[[], datetime] | None = None) -> None:
        self.control = control
        self.state_path = Path(state_path)
        self.policy = policy or StormPolicy()
        self.source = source
        self.clock = clock or (lambda: datetime.now(UTC))
        self.problem: str | None = None
        try:
            self.state = load_state(self.state_path)
        except ValueError as exc:
            aside = self.state_path.with_name(self.state_path.name + ".corrupt")
            with contextlib.suppress(OSError):
                os.replace(self.state_path, aside)
            self.problem = f"{exc}; moved to {aside.name}, starting afresh"
            log.error("storm mode: %s", self.problem)
            self.state = StormState()
        self.reason = "not evaluated yet"
        #: the owner's reserve [%] when the device's shows another's setting (the planner's executor, which sets a
        #: charge's target or a hold's level as the reserve: its ``floor_percent``), or None: the device's is the
        #: owner's. Storm mode saves it, to restore afterwards, rather than the planner's setting.
        self.owner_reserve: Callable[[], float | None] | None = None
        self.last_decision: Decision | None = None
        self.device_error: str | None = None
        self.feed_error: str | None = None
        self.feed_problems: tuple[str, ...] = ()
        self.feed_time: datetime | None = None
        self._alerts: list[Alert] | None = None
        self._lock = threading.Lock()  # the state: set_manual may come from another thread (MQTT)
        self._manual_gen = 0
        self._evaluating = asyncio.Lock()  # one evaluation at a time (the run loop, a switch, the API)
        self._wake: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    # -- inputs ---------------------------------------------------------------------------------------

    def set_manual(self, on: bool | None, until: datetime | None = None) -> None:
        """The owner's switch (see the module notes); thread-safe; acted on at the next :meth:`evaluate`.

        Parameters
        ----------
        on : bool or None
            True: on; False: off (dismiss the current alerts, or off until ``until``); None: automatic.
        until : datetime, optional
            Aware; when the switch lapses back to automatic.
        """
        if until is not None and until.tzinfo is None:
            raise ValueError("until must be an aware datetime")
        with self._lock:
            s = self.state
            if on is False and until is None:
                s = replace(s, manual=None, manual_until=None,
                            dismissed=tuple(sorted({*s.dismissed, *(m.id for m in s.alerts)})))
            elif on is None:
                s = replace(s, manual=None, manual_until=None, dismissed=())
            else:
                s = replace(s, manual=on, manual_until=until)
            self._commit(s)
            self._manual_gen += 1
        if self._loop is not None and self._wake is not None:
            with contextlib.suppress(RuntimeError):  # the loop has closed
                self._loop.call_soon_threadsafe(self._wake.set)

    def switch(self, mode: str, until: datetime | None = None, *, by: str) -> None:
        """The owner's switch by name, ``on``, ``off`` or ``auto`` (from the API, MQTT or the command line);
        ``by`` names who, for the log. Raises :class:`ValueError` for another mode or a naive ``until``."""
        if mode not in SWITCH_MODES:
            raise ValueError(f"storm switch {mode!r}: expected on, off or auto")
        if until is not None and until.tzinfo is None:
            raise ValueError("'until' needs a UTC offset")
        self.set_manual(SWITCH_MODES[mode], until)
        log.info("storm switch: %s%s (%s)", mode, "" if until is None else f" until {until.isoformat()}", by)

    def update_alerts(self, feed: AlertFeed | Sequence[Alert] | None, when: datetime | None = None) -> None:
        """Use these alerts from now on (None: the feed could not be read)."""
        if feed is None:
            self._alerts = None
            return
        self._alerts = list(feed.alerts if isinstance(feed, AlertFeed) else feed)
        self.feed_problems = feed.problems if isinstance(feed, AlertFeed) else ()
        self.feed_time = when or self.clock()
        self.feed_error = None

    async def refresh(self) -> None:
        """Read the alert feed (when there is a source); on failure the alerts become unknown."""
        if self.source is None:
            return
        try:
            feed = await self.source.read()
        except FeedError as exc:
            self.feed_error = str(exc)
            self._alerts = None
            log.warning("storm mode: alert feed: %s", exc)
            return
        except Exception as exc:  # never let the feed stop the hub
            self.feed_error = f"{type(exc).__name__}: {exc}"
            self._alerts = None
            log.exception("storm mode: alert feed failed")
            return
        self.update_alerts(feed)
        for problem in feed.problems:
            log.warning("storm mode: alert feed: skipped %s", problem)

    # -- acting ---------------------------------------------------------------------------------------

    async def _read_reserve(self) -> float | None:
        try:
            value = await self.control.backup_reserve()
        except Exception as exc:  # a DeviceError, or whatever a device raises
            self.device_error = f"reading the reserve: {exc}"
            return None
        return None if value is None or not math.isfinite(value) else float(value)

    def _commit(self, state: StormState) -> None:
        self.state = state
        try:
            save_state(self.state_path, state)
        except OSError as exc:
            self.problem = f"cannot save {self.state_path}: {exc}"
            log.error("storm mode: %s", self.problem)

    async def evaluate(self, now: datetime | None = None) -> Decision:
        """Decide with the alerts known now and carry the decision out.

        The new state is saved before a reserve write (marked pending, so a crash in between
        re-sends it) and again once the write succeeded; a failed write keeps the old state,
        so the next evaluation tries again.
        """
        async with self._evaluating:
            return await self._evaluate(now or self.clock())

    async def _evaluate(self, now: datetime) -> Decision:
        reserve = await self._read_reserve()
        with self._lock:
            gen = self._manual_gen
            before = self.state
            d = decide(self._alerts, now, before, self.policy, reserve)
            owner = None if self.owner_reserve is None else self.owner_reserve()
            if owner is not None and d.state.active and not before.active:
                d = replace(d, state=replace(d.state, saved_reserve=owner))
            if d.reserve is not None:
                self._commit(replace(d.state, pending=d.reserve))
        if d.reserve is not None:
            try:
                await self.control.set_backup_reserve(d.reserve)
            except Exception as exc:
                self.device_error = f"setting the reserve to {d.reserve:.0f} %: {exc}"
                log.error("storm mode: %s", self.device_error)
                with self._lock:  # nothing changed on the device: keep the old state, with what was learnt
                    kept = replace(before, alerts=d.state.alerts, dismissed=d.state.dismissed,
                                   clear_since=d.state.clear_since if before.active == d.state.active
                                   else before.clear_since)
                    self._commit(self._merge_manual(kept, gen))
                self.reason = f"{d.reason} - failed: {exc}; retrying"
                self.last_decision = d
                return d
            self.device_error = None
            log.warning("%s (storm mode)", d.reason)  # who changed the reserve: storm mode itself
        elif d.reason != self.reason:
            log.info("storm mode: %s", d.reason)
        with self._lock:
            new = self._merge_manual(replace(d.state, pending=None), gen)
            if new != self.state:
                self._commit(new)
        self.reason = d.reason
        self.last_decision = d
        return d

    def _merge_manual(self, state: StormState, gen: int) -> StormState:
        """Keep a switch flipped (from another thread) while a decision was being carried out."""
        if gen == self._manual_gen:
            return state
        cur = self.state
        return replace(state, manual=cur.manual, manual_until=cur.manual_until, dismissed=cur.dismissed)

    async def step(self, now: datetime | None = None) -> Decision:
        """Read the feed, then :meth:`evaluate`."""
        await self.refresh()
        return await self.evaluate(now)

    async def run(self, stop: asyncio.Event, interval_s: float = 300.0) -> None:
        """Step every ``interval_s`` [s] (api.weather.gov updates about once a minute; 60..300 s is polite),
        and at once when the owner flips the switch, until ``stop`` is set."""
        self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        try:
            while not stop.is_set():
                try:
                    await self.step()
                except Exception:  # evaluate() catches device errors; this is a bug, not a reason to stop
                    log.exception("storm mode: step failed")
                self._wake.clear()
                stopper = asyncio.ensure_future(stop.wait())
                waker = asyncio.ensure_future(self._wake.wait())
                try:
                    await asyncio.wait({stopper, waker}, timeout=interval_s, return_when=asyncio.FIRST_COMPLETED)
                finally:
                    for t in (stopper, waker):
                        t.cancel()
                    await asyncio.gather(stopper, waker, return_exceptions=True)
                if self._wake.is_set() and not stop.is_set():  # a switch: act on it without reading the feed again
                    self._wake.clear()
                    await self.evaluate()
        finally:
            self._loop = self._wake = None

    # -- reporting ------------------------------------------------------------------------------------

    @property
    def status(self) -> dict[str, Any]:
        """Storm mode for the API, the dashboard and MQTT (JSON-ready)."""
        s = self.state
        hold_until = None if s.clear_since is None else s.clear_since + timedelta(hours=self.policy.hold_h)
        return {
            "storm": s.active,
            "reason": self.reason,
            "reserve_percent": self.policy.reserve_percent,
            "saved_reserve_percent": s.saved_reserve,
            "set_reserve_percent": s.set_reserve,
            "owner_override": s.owner_override,
            "alerts": [{"id": m.id, "event": m.event, "headline": m.headline, "ends": _iso(m.hazard_ends)}
                       for m in s.alerts],
            "hold_until": _iso(hold_until) if s.active and not s.alerts else None,
            "manual": s.manual,
            "manual_until": _iso(s.manual_until),
            "dismissed": list(s.dismissed),
            "feed": {"ok": self.feed_error is None and self.feed_time is not None, "time": _iso(self.feed_time),
                     "error": self.feed_error, "skipped": list(self.feed_problems),
                     "source": None if self.source is None else self.source.url},
            "device_error": self.device_error,
            "problem": self.problem,
        }

