"""Carrying the plan out: each step's mode becomes commands the devices understand, logged with their reasons.

The optimiser's :class:`~homegrid.planner.problem.Plan` says per step what the battery and the car should do; the
:class:`Executor` takes the step that starts now and sends, through the device seam
(:mod:`homegrid.devices.control`):

- the battery's :class:`~homegrid.devices.control.BatteryCommand`: its :class:`~homegrid.planner.problem.Mode`
  with the reserve floor of the step (the owner's reserve, raised by storm mode), the level to charge to or to
  export down to (CHARGE, EXPORT: the plan's level at the end of the run of such steps that starts now) or to
  hold at (HOLD: the level when the hold began); a HOLD, CHARGE or EXPORT whose gain the forecasts' errors could
  eat is carried out as SELF_POWERED (:func:`gain_pays`), and so is an EXPORT while the sun has a surplus that
  would fill the battery again, until the end of its price run leaves just the time to carry it out
  (:func:`export_later`: a Powerwall stores the sun's surplus wherever the battery has room). The device follows
  the real load within the mode by itself (a Powerwall's own control, the virtual home's
  :func:`~homegrid.devices.virtual.battery.follow_mode`), so the plan meets the load as it comes, between re-plans;
- the car's :class:`~homegrid.devices.control.CarCommand` (charge or not, and the amps of the plan's power at the
  charger's voltage), while the car is plugged in.

A command is sent only when it differs from the last one sent, so a plan that keeps its mode costs one read of
the device per step. Every command is logged with its reason (the step, its prices and what the plan expects),
kept in memory (the last :attr:`ExecutorPolicy.keep`, for the System view and the API) and published on MQTT as
the ``planner_command`` event when a publisher is given.

Dry run
-------
With :attr:`ExecutorPolicy.dry_run` the commands are worked out, logged and published as they would be sent, and
nothing is sent or read: the owner sees what the planner would do.

The owner's change wins
-----------------------
As storm mode does (:mod:`homegrid.planner.storm`): after a write, the device's settings are watched. Once the
write has settled (read back as written, or :attr:`ExecutorPolicy.settle_s` passed, which also accepts a cloud
that capped a value), what was read is the baseline. If the operation mode, the reserve (beyond
:attr:`ExecutorPolicy.tolerance_percent`), grid charging or the export rule then differ from it, the owner changed
them (in the Tesla app, or homegrid's settings): the executor stops sending battery commands, says so, and waits
until the owner hands control back (:meth:`Executor.hand_back`). The car likewise: a charging current or limit
other than the one sent, or charging where it was told to stop. While storm mode holds the reserve (``standby``
says why), the executor stands aside without taking it for the owner's hand, and starts afresh afterwards.

What the executor last set, its baseline and whether the owner took over are kept in a small JSON file
(``state_path``, written atomically), so a restart neither overwrites the owner's change nor forgets it: a battery
whose settings differ, after a restart, from the baseline saved before it was changed by hand.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from homegrid.devices.control import (
    BatteryCommand,
    CarCommand,
    CarControl,
    CarSettings,
    ModeControl,
    PowerwallSettings,
)
from homegrid.planner.problem import Mode, Plan, Problem
from homegrid.planner.storm import write_json_atomic
from homegrid.readings import from_ms

__all__ = ["GAIN_MARGIN", "CommandRecord", "EventSink", "Executor", "ExecutorPolicy", "battery_command", "car_command",
           "export_later", "gain_pays"]

log = logging.getLogger(__name__)


class EventSink(Protocol):
    """Where commands are published (the hub's MQTT publisher: ``<prefix>/<node>/event/planner_command``)."""

    def publish_event(self, kind: str, payload: dict[str, Any]) -> bool: ...


@dataclass(frozen=True)
class ExecutorPolicy:
    """How the executor acts.

    Parameters
    ----------
    dry_run : bool
        Work out, log and publish the commands without sending them.
    keep : int
        Commands kept in memory.
    tolerance_percent : float
        Reserves closer than this are equal [%] (the Tesla app rounds to whole percents).
    settle_s : float
        After a write, how long settings that read differently are taken for a slow or capping device rather
        than the owner's hand [s].
    volts : float
        The car charger's voltage, to turn the plan's power into amps [V].
    min_amps, max_amps : int
        The charging current's limits [A]; below ``min_amps`` the car is not charged.
    idle_export_rule : str
        The Powerwall's export rule outside EXPORT (``pv_only``, or ``never`` where export is forbidden).
    """

    dry_run: bool = False
    keep: int = 200
    tolerance_percent: float = 1.0
    settle_s: float = 300.0
    volts: float = 240.0
    min_amps: int = 5
    max_amps: int = 32
    idle_export_rule: str = "pv_only"

    def __post_init__(self) -> None:
        if self.keep < 1:
            raise ValueError(f"planner keep = {self.keep}: must be >= 1")
        for name in ("tolerance_percent", "settle_s", "volts"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):
                raise ValueError(f"planner {name} = {value}: must be >= 0")
        if not 0 <= self.min_amps <= self.max_amps:
            raise ValueError(f"planner amps {self.min_amps}..{self.max_amps}: need 0 <= min <= max")


@dataclass(frozen=True)
class CommandRecord:
    """One command as it was sent (or would have been), for the log, the API and MQTT.

    ``outcome``: ``sent``, ``dry run``, ``failed: ...``, ``owner`` (the owner's change was seen, the executor
    stands aside), ``handed back``, ``standby: ...``.
    """

    time_ms: int
    device: str
    command: str
    reason: str
    outcome: str
    mode: str | None = None

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["time"] = from_ms(self.time_ms).isoformat().replace("+00:00", "Z")
        return out


def _when(t_ms: int) -> str:
    return from_ms(t_ms).strftime("%Y-%m-%d %H:%M UTC")


#: HOLD, a grid CHARGE and EXPORT are carried out only when they gain at least this much (a fraction of the price
#: they give up) over self-powered: see :func:`gain_pays`
GAIN_MARGIN = 0.15


def gain_pays(problem: Problem, plan: Plan, step: int, margin: float = GAIN_MARGIN) -> tuple[bool, float]:
    """Whether the plan's HOLD, grid CHARGE or EXPORT at ``step`` gains enough over self-powered to be worth the
    forecasts' risk.

    A hold or a grid charge imports now, at a price known for sure, to discharge later against a forecast: if the
    sun then gives more than forecast, the battery fills anyway and the energy kept or bought has displaced sun
    that is exported for little. An export from the battery sells energy the home would otherwise use later,
    counting on the sun (or cheap hours) to refill it: if the sun gives less, the home imports at the dear hour.
    Doing either for a small gain loses more than it earns (on emhass's household with a day-ahead dynamic tariff,
    whose import prices differ by a few percent through the day, the plans' holds, charges and exports lost
    against plain self-powered; bench/RESULTS.md, issue 14). So, with the plan's discharges in the next day each
    worth its step's export price where the plan exports then and its import price where the home uses it:

    - HOLD pays where the dearest of them is at least ``1 + margin`` times the import price now (a kWh used
      later instead of now);
    - CHARGE (from the grid) where the dearest of them times the round trip is, or where the best export price in
      the next day times the round trip beats the import price now (then the energy pays even if the forecasts
      are wrong and it is exported: net metering's off-peak charge for the shoulder or the peak);
    - EXPORT unless the dearest import price of the steps where the home uses the battery before the plan next
      charges it from the grid is more than ``1 + margin`` times the export price now (a kWh sold now that the
      home would have used later at a dearer price, a bet on the sun refilling the battery in between; energy
      bought back from the grid is at a price known now, and the plan's other exports are the same trade);

    or where the reserve rises later in the horizon (storm mode: a hold or charge is for the floor).

    Parameters
    ----------
    problem, plan : Problem, Plan
    step : int
        The step that starts now.
    margin : float
        The least gain, a fraction of the price given up. [1]

    Returns
    -------
    pays : bool
    use_price : float
        What the plan's discharges in the next day are worth, as compared (0 when there are none). [currency/kWh]
    """
    day = max(1, round(86_400_000 / problem.step_ms))
    ahead = np.arange(step + 1, min(step + 1 + day, len(plan.battery_w)))
    discharging = ahead[np.asarray(plan.battery_w)[ahead] > 1.0]
    exporting = np.array([plan.modes[k] is Mode.EXPORT for k in discharging], dtype=bool)
    mode = plan.modes[step]
    if mode is Mode.EXPORT:
        recharge = [k for k in ahead if plan.modes[k] is Mode.CHARGE]
        home = discharging[~exporting & (discharging < (recharge[0] if recharge else len(plan.battery_w)))]
        use = float(np.max(problem.import_price[home])) if len(home) else 0.0
        sell = float(problem.export_price[step])
        return use <= sell + margin * abs(sell), use
    worth = np.where(exporting, problem.export_price[discharging], problem.import_price[discharging])
    use = float(np.max(worth)) if len(worth) else 0.0
    reserve = np.asarray(problem.reserve_percent)
    rises = bool(len(reserve) > step + 1 and np.max(reserve[step + 1:]) > reserve[step] + 1e-9)
    now = float(problem.import_price[step])
    back = 1.0
    if mode is Mode.CHARGE:
        back = problem.battery.charge_efficiency * problem.battery.discharge_efficiency
        best_sale = float(np.max(problem.export_price[ahead])) if len(ahead) else 0.0
        if problem.battery.export_from_battery and best_sale * back > now + 1e-9:
            return True, max(use, best_sale)  # it pays even sold back: no forecast can make it lose
    return rises or use * back >= now + margin * abs(now), use


def export_later(problem: Problem, plan: Plan, step: int, floor_percent: float) -> int | None:
    """When the plan's EXPORT at ``step`` is better carried out later, the latest time it can start, else None.

    A Powerwall in every mode but a grid charge stores the sun's surplus before exporting it (self-powered,
    time-based control and an export alike), so a battery exported down to its level while the sun still has a
    surplus is filled again by the sun, and that energy is exported or used later through the round trip: where
    an exported kWh earns the same all along a run of steps (net metering's peak), exporting the battery first
    and the sun after loses the round trip on what the sun refills, while keeping the battery full and exporting
    it at the run's end loses nothing. So the export waits (self-powered: a full battery leaves the surplus to the
    grid) while all of these hold:

    - the sun has a surplus over the load now (the forecast's);
    - the battery's room now is no more than what the sun's surplus would put back in it over the rest of the run
      (else emptying it now makes room the sun will not fill);
    - the steps after this one whose export price is at least this one's, in one run, are enough to empty a full
      battery down to the reserve at the power limit (the plan may also discharge for the home in the run, after
      its export: the power limit is shared).

    Parameters
    ----------
    problem, plan : Problem, Plan
    step : int
        The plan's EXPORT step that starts now.
    floor_percent : float
        The reserve. [%]

    Returns
    -------
    int or None
        The start of the last steps that can carry the export out, UTC epoch ms; None: export now.
    """
    b = problem.battery
    n = len(plan.modes)
    price = float(problem.export_price[step])
    end = step + 1
    while end < n and problem.export_price[end] >= price - 1e-9:
        end += 1
    h = problem.hours
    full_wh = b.capacity_wh * max(1.0 - floor_percent / 100, 0.0) * b.discharge_efficiency
    need = math.ceil(full_wh / (b.max_discharge_w * h) - 1e-9) if b.max_discharge_w > 0 else n
    if end - step - 1 < need:
        return None
    surplus = np.clip(np.asarray(problem.solar_w[step:end]) - np.asarray(problem.load_w[step:end]), 0.0, None)
    if surplus[0] <= 0:
        return None
    soc = float(problem.soc_percent) if step == 0 else float(plan.soc_percent[step - 1])
    room_wh = b.capacity_wh * max(1.0 - soc / 100, 0.0)
    if room_wh > float(surplus[1:].sum()) * h * b.charge_efficiency:
        return None
    return int(problem.t_ms[end - need])


def battery_command(problem: Problem, plan: Plan, step: int = 0, *, hold_percent: float | None = None,
                    idle_export_rule: str = "pv_only", gain_margin: float = GAIN_MARGIN
                    ) -> tuple[BatteryCommand, str]:
    """The battery's command for a step of a plan, and its reason in words.

    Parameters
    ----------
    problem, plan : Problem, Plan
        The plan and what it was made for.
    step : int
        The step that starts now.
    hold_percent : float, optional
        HOLD: the level to hold (the one when the hold began); default the state of charge now.
    idle_export_rule : str
        The export rule outside EXPORT.
    gain_margin : float
        A HOLD, CHARGE or EXPORT whose gain is smaller (:func:`gain_pays`) is carried out as SELF_POWERED. [1]
    """
    mode = plan.modes[step]
    floor = float(np.asarray(problem.reserve_percent)[step])
    target: float | None = None
    price = f"import {problem.import_price[step]:.3f}, export {problem.export_price[step]:.3f} per kWh"
    expect = (f"the plan: battery {plan.battery_w[step]:+.0f} W, grid {plan.grid_w[step]:+.0f} W, "
              f"{plan.soc_percent[step]:.0f} % at the step's end")
    if mode is not Mode.SELF_POWERED and not (pays := gain_pays(problem, plan, step, gain_margin))[0]:
        why = (f"self-powered down to {floor:.0f} %: the plan would {mode.value} with the battery against "
               f"{pays[1]:.3f} per kWh within a day, too little a gain to be worth the forecasts' risk "
               f"({price}; {expect})")
        mode = Mode.SELF_POWERED
    elif mode in (Mode.CHARGE, Mode.EXPORT):
        end = step
        while end + 1 < len(plan.modes) and plan.modes[end + 1] is mode:
            end += 1
        target = min(100.0, max(floor, float(plan.soc_percent[end])))
        until = _when(int(problem.t_ms[end]) + problem.step_ms)
        why = (f"{'charge to' if mode is Mode.CHARGE else 'export from the battery down to'} {target:.0f} % by "
               f"{until} ({price}; {expect})")
        if mode is Mode.EXPORT and (later := export_later(problem, plan, step, floor)) is not None:
            why = (f"self-powered down to {floor:.0f} %: the export down to {target:.0f} % waits until "
                   f"{_when(later)}: the sun's surplus would fill again the room it makes, and the export price "
                   f"holds until then ({price}; {expect})")
            mode, target = Mode.SELF_POWERED, None
    elif mode is Mode.HOLD:
        target = min(100.0, max(floor, problem.soc_percent if hold_percent is None else hold_percent))
        why = f"hold the battery at {target:.0f} % for dearer hours ahead ({price}; {expect})"
    else:
        why = f"self-powered down to {floor:.0f} % ({price}; {expect})"
    command = BatteryCommand(mode.value, floor, target, idle_export_rule)
    return command, f"step {step} from {_when(int(problem.t_ms[step]))}: {why}"


def car_command(problem: Problem, plan: Plan, step: int = 0, policy: ExecutorPolicy | None = None
                ) -> tuple[CarCommand, str] | None:
    """The car's command for a step (None when the problem has no car or it is not plugged in), and its reason."""
    policy = policy or ExecutorPolicy()
    car = problem.car
    if car is None or not bool(car.plugged[step]):
        return None
    watts = float(plan.car_w[step])
    amps = min(policy.max_amps, round(watts / policy.volts)) if policy.volts > 0 else 0
    when = f"step {step} from {_when(int(problem.t_ms[step]))}"
    if amps < max(policy.min_amps, 1):
        return CarCommand(False), (f"{when}: the plan does not charge the car now "
                                   f"(import {problem.import_price[step]:.3f} per kWh)")
    return CarCommand(True, amps), (f"{when}: charge the car at {watts:.0f} W ({mode_name(car.mode.value)}, "
                                    f"{car.energy_wh:.0f} Wh still needed; import {problem.import_price[step]:.3f} "
                                    f"per kWh)")


def mode_name(car_mode: str) -> str:
    return {"plan": "cheapest energy by the departure", "solar": "from the sun only",
            "min+solar": "the minimum plus the sun"}.get(car_mode, car_mode)


class Executor:
    """Carries a plan's current step out through the device seam (see the module's notes).

    Parameters
    ----------
    battery : ModeControl or None
        The battery (a Powerwall's :class:`~homegrid.devices.powerwall.control.PowerwallControl`, the virtual
        home's :class:`~homegrid.devices.virtual.control.VirtualControl`); None: no battery to drive.
    car : CarControl or None
        The car's charging; None: no car to drive.
    policy : ExecutorPolicy
    publisher : EventSink, optional
        Each command is published as the ``planner_command`` event.
    standby : callable, optional
        Returns why the executor must stand aside now (storm mode holds the reserve), or None.
    clock : callable
        The time now, UTC epoch ms.
    state_path : Path, optional
        Where the executor keeps what it set and the owner's change across restarts (None: in memory only).
    """

    def __init__(self, battery: ModeControl | None, car: CarControl | None = None, *,
                 policy: ExecutorPolicy | None = None, publisher: EventSink | None = None,
                 standby: Callable[[], str | None] | None = None,
                 clock: Callable[[], int] = lambda: int(time.time() * 1000),
                 state_path: Path | None = None) -> None:
        self.battery = battery
        self.car = car
        self.policy = policy or ExecutorPolicy()
        self.publisher = publisher
        self.standby = standby
        self.clock = clock
        self.records: deque[CommandRecord] = deque(maxlen=self.policy.keep)
        #: why the executor stands aside for each device (the owner's change), None while it acts
        self.owner: dict[str, str | None] = {"battery": None, "car": None}
        self._sent: BatteryCommand | None = None  # the last battery command sent (or, dry, worked out)
        self._expected: PowerwallSettings | None = None  # what the battery should report
        self._set_at: int | None = None
        self._settled = False
        self._car_sent: CarCommand | None = None
        self._car_set_at: int | None = None
        self._car_settled = False
        self._car_expected: CarSettings | None = None
        self._standing_by: str | None = None
        #: the reserve floor [%] of the last battery command sent: the owner's (storm mode's raise apart) while the
        #: executor acts, when the device's own reserve shows the planner's level (a charge's target, a hold's level)
        #: and reads back into the next plan as a floor it never was; None until a command is sent, and again after
        #: the owner's change by hand (then the device's reserve is the owner's)
        self.floor_percent: float | None = None
        self._count = 0  # commands recorded so far
        self.state_path = state_path
        self.problem: str | None = None  # the state file's trouble, if any
        if state_path is not None:
            self._load(state_path)

    # -- the state across restarts ---------------------------------------------------------------------------

    def _state(self) -> dict[str, Any]:
        def opt(x: Any) -> Any:
            return None if x is None else asdict(x)

        return {"version": 1, "owner": dict(self.owner),
                "battery": {"sent": opt(self._sent), "expected": opt(self._expected), "set_at_ms": self._set_at,
                            "settled": self._settled, "floor_percent": self.floor_percent},
                "car": {"sent": opt(self._car_sent), "expected": opt(self._car_expected),
                        "set_at_ms": self._car_set_at, "settled": self._car_settled}}

    def _save(self) -> None:
        if self.state_path is None or self.policy.dry_run:
            return
        try:
            write_json_atomic(self.state_path, self._state())
            self.problem = None
        except OSError as exc:
            self.problem = f"cannot save {self.state_path}: {exc}"
            log.error("planner: %s", self.problem)

    def _load(self, path: Path) -> None:
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return
        except (OSError, ValueError) as exc:
            self.problem = f"cannot read {path}: {exc}; starting afresh"
            log.warning("planner: %s", self.problem)
            return
        try:
            owner = doc.get("owner") or {}
            for device in self.owner:
                why = owner.get(device)
                self.owner[device] = None if why is None else str(why)
            b, c = doc.get("battery") or {}, doc.get("car") or {}
            self._sent = None if b.get("sent") is None else BatteryCommand(**b["sent"])
            self._expected = None if b.get("expected") is None else PowerwallSettings(**b["expected"])
            self._set_at = b.get("set_at_ms")
            self._settled = bool(b.get("settled"))
            floor = b.get("floor_percent")
            self.floor_percent = None if floor is None else float(floor)
            self._car_sent = None if c.get("sent") is None else CarCommand(**c["sent"])
            self._car_expected = None if c.get("expected") is None else CarSettings(**c["expected"])
            self._car_set_at = c.get("set_at_ms")
            self._car_settled = bool(c.get("settled"))
        except (AttributeError, TypeError, ValueError) as exc:
            self.problem = f"{path} is not the executor's state ({exc}); starting afresh"
            log.warning("planner: %s", self.problem)
            self.owner = {"battery": None, "car": None}
            self._sent = self._expected = self._set_at = None
            self._car_sent = self._car_expected = self._car_set_at = None
            self._settled = self._car_settled = False
            self.floor_percent = None

    # -- reporting -------------------------------------------------------------------------------------------

    def _record(self, device: str, command: str, reason: str, outcome: str, mode: str | None = None) -> None:
        rec = CommandRecord(self.clock(), device, command, reason, outcome, mode)
        self.records.append(rec)
        self._count += 1
        level = logging.WARNING if outcome.startswith(("failed", "owner")) else logging.INFO
        log.log(level, "planner: %s %s: %s - %s", device, outcome, command, reason)
        if self.publisher is not None:
            try:
                self.publisher.publish_event("planner_command", rec.as_dict())
            except Exception:  # publishing must never stop the executor
                log.exception("planner: publishing a command failed")

    @property
    def status(self) -> dict[str, Any]:
        """For the API, the System view and MQTT (JSON-ready)."""
        return {
            "dry_run": self.policy.dry_run,
            "acting": not self.policy.dry_run and self._standing_by is None
                      and not any(self.owner[d] for d in self.owner),
            "owner_override": dict(self.owner),
            "standby": self._standing_by,
            "problem": self.problem,
            "battery_command": None if self._sent is None else self._sent.describe(),
            "car_command": None if self._car_sent is None else self._car_sent.describe(),
            "commands": [r.as_dict() for r in self.records],
        }

    # -- the owner -------------------------------------------------------------------------------------------

    def hand_back(self, by: str = "the owner") -> None:
        """The owner hands control back: the next step acts again (and re-sends its commands)."""
        for device in ("battery", "car"):
            if self.owner[device] is not None:
                self.owner[device] = None
                self._record(device, "control handed back", f"by {by}", "handed back")
        self._sent = self._expected = self.floor_percent = None
        self._car_sent = self._car_expected = None
        self._settled = self._car_settled = False
        self._save()

    # -- acting ----------------------------------------------------------------------------------------------

    async def follow(self, problem: Problem, plan: Plan, step: int = 0) -> list[CommandRecord]:
        """Carry out ``step`` of ``plan`` (the step that starts now); the commands recorded by this call."""
        before = self._count
        why_not = self.standby() if self.standby is not None else None
        if why_not is not None:
            if why_not != self._standing_by:
                self._record("battery", "stand aside", why_not, f"standby: {why_not}")
            self._standing_by = why_not
            self._sent = self._expected = None  # start afresh afterwards: storm's writes are not the owner's
            self._settled = False
        else:
            self._standing_by = None
            if self.battery is not None:
                await self._battery_step(problem, plan, step)
        if self.car is not None:
            await self._car_step(problem, plan, step)
        self._save()
        added = min(self._count - before, len(self.records))
        return list(self.records)[len(self.records) - added:]

    async def run(self, stop: asyncio.Event, next_plan: Callable[[], Awaitable[tuple[Problem, Plan] | None]],
                  interval_s: float) -> None:
        """Re-plan and follow at the start of every step of ``interval_s`` [s] (UTC epoch multiples) until ``stop`` is
        set (model predictive control).

        ``next_plan`` gives the problem and the plan made from the state now (the forecasts, the prices, the
        battery's level) whose step 0 starts now, or None when there is none this time (then nothing is sent);
        between calls the devices follow the real load within the mode they were given.
        """
        while not stop.is_set():
            try:
                made = await next_plan()
                if made is not None:
                    await self.follow(*made, 0)
            except Exception:  # a failed plan is no reason to stop the hub; the devices keep their last mode
                log.exception("planner: a step failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.until_next_step(interval_s))

    def until_next_step(self, interval_s: float) -> float:
        """How long until the next step of ``interval_s`` starts on the clock [s]: the plans are made as each
        step begins (a price that changes at 15:00 is met at 15:00, not some minutes into the step)."""
        step_ms = round(interval_s * 1000)
        if step_ms <= 0:
            return 0.0
        return (step_ms - self.clock() % step_ms) / 1000.0

    async def _battery_step(self, problem: Problem, plan: Plan, step: int) -> None:
        assert self.battery is not None
        policy, now = self.policy, self.clock()
        hold = self._sent.target_percent if self._sent is not None and self._sent.mode == "hold" else None
        command, reason = battery_command(problem, plan, step, hold_percent=hold,
                                          idle_export_rule=policy.idle_export_rule)
        if policy.dry_run:
            if command != self._sent:
                self._sent = command
                self._record("battery", command.describe(), reason, "dry run", command.mode)
            return
        if self.owner["battery"] is not None:
            return
        try:
            seen = await self.battery.settings_now()
        except Exception as exc:  # DeviceError, or what a device raises
            self._record("battery", "read the settings", f"{reason}", f"failed: {exc}", command.mode)
            return
        if self._expected is not None:
            diff = self._expected.differs(seen, policy.tolerance_percent)
            if not self._settled:
                if not diff or (self._set_at is not None and now - self._set_at >= policy.settle_s * 1000):
                    self._expected, self._settled = seen, True  # the baseline (a capped value is accepted)
            elif diff:
                why = "changed by hand: " + "; ".join(diff)
                self.owner["battery"] = why
                self.floor_percent = None
                self._record("battery", "stand aside until handed back", why, "owner", command.mode)
                return
        if command == self._sent:
            return
        try:
            written = await self.battery.apply(command)
        except Exception as exc:
            self._record("battery", command.describe(), reason, f"failed: {exc}", command.mode)
            return  # the next step tries again
        self._sent, self._expected, self._set_at, self._settled = command, written, now, False
        self.floor_percent = command.reserve_percent
        self._record("battery", command.describe(), reason, "sent", command.mode)

    async def _car_step(self, problem: Problem, plan: Plan, step: int) -> None:
        assert self.car is not None
        got = car_command(problem, plan, step, self.policy)
        if got is None:
            return
        command, reason = got
        policy, now = self.policy, self.clock()
        if policy.dry_run:
            if command != self._car_sent:
                self._car_sent = command
                self._record("car", command.describe(), reason, "dry run")
            return
        if self.owner["car"] is not None:
            return
        if self._car_expected is not None:
            try:
                seen = await self.car.car_settings()
            except Exception as exc:
                self._record("car", "read the charging", reason, f"failed: {exc}")
                return
            diff = _car_differs(self._car_expected, seen)
            settled = self._car_set_at is not None and now - self._car_set_at >= policy.settle_s * 1000
            if not self._car_settled:
                if not diff or settled:
                    self._car_settled = True
            elif diff:
                why = "changed by hand: " + "; ".join(diff)
                self.owner["car"] = why
                self._record("car", "stand aside until handed back", why, "owner")
                return
        if command == self._car_sent:
            return
        try:
            await self.car.apply(command)
        except Exception as exc:
            self._record("car", command.describe(), reason, f"failed: {exc}")
            return
        self._car_sent, self._car_set_at, self._car_settled = command, now, False
        self._car_expected = CarSettings(command.charging, command.amps, command.limit_percent)
        self._record("car", command.describe(), reason, "sent")


def _car_differs(expected: CarSettings, seen: CarSettings) -> list[str]:
    """The owner's hand on the car: other amps or limit than sent, or charging when told to stop (a car that
    stops by itself, full or unplugged, is not the owner's doing)."""
    out = []
    if expected.charging is False and seen.charging is True:
        out.append("charging started")
    if expected.charging and None not in (expected.amps, seen.amps) and expected.amps != seen.amps:
        out.append(f"charging current {seen.amps} A (set: {expected.amps} A)")
    if None not in (expected.limit_percent, seen.limit_percent) and expected.limit_percent != seen.limit_percent:
        out.append(f"charge limit {seen.limit_percent} % (set: {expected.limit_percent} %)")
    return out
