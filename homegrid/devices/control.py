"""What the hub may change on a home battery and a car: the backup reserve and the operation mode; the planner's
modes (:class:`BatteryCommand`, :func:`powerwall_settings`) and the car's charging (:class:`CarCommand`).

Storm mode and the owner's settings (``/api/v1/settings``) send these commands
back through the device adapters; each adapter says which it can carry out.

Operation modes use the Powerwall's own names (``/api/operation``'s ``real_mode``), which
Tesla's app calls:

- ``self_consumption``: *Self-Powered*, the battery stores surplus solar and covers the home
  down to the backup reserve;
- ``autonomous``: *Time-Based Control*, the battery follows the utility's tariff;
- ``backup``: *Backup-only* (hidden in recent app versions), the battery is kept full and only
  carries the home when the grid is down.

The planner's modes on a Powerwall
----------------------------------
What the planner asks of a battery for one step (:class:`BatteryCommand`), and how a Powerwall is told it
(:func:`powerwall_settings`). A Powerwall takes no power set-point through its supported APIs, so the mapping is
what Powerwall owners and their tools do:

- Tesla's own page (tesla.com/support/energy/powerwall/mobile-app/powerwall-modes): Self-Powered stores surplus
  solar and covers the home down to the backup reserve; "when the outage is resolved, your Powerwall will
  prioritise charging above your reserve percentage": a reserve raised above the charge level charges from the
  grid (where grid charging is allowed), about 1.7-1.8 kW per Powerwall in Self-Powered (PwForecast's notes,
  netzero.energy's "Backup Mode" page); faster in Time-Based Control (PwForecast) and about 3.3 kW per
  Powerwall in backup-only mode (netzero.energy).
- Predbat's Powerwall control as its users drive it (springfall2008/batpred discussion #5045, "Powerwall 3 -
  current control strategies"): charge = autonomous, reserve 100, export pv_only, grid charging on; freeze =
  backup, reserve 100, grid charging off; export = autonomous, reserve 0, export rule battery_ok; otherwise
  self_consumption, reserve 0, export pv_only, grid charging off. homegrid charges to the plan's level rather
  than 100 %, and holds with the reserve at the level now in Self-Powered (no discharge, the sun's surplus still
  charges) rather than in backup mode.
- Powerwall-Dashboard's tools/switch-mode: switches self_consumption <-> autonomous and sets the reserve around
  them through pypowerwall's control API, re-checking the reserve in case the owner changed it.
- pypowerwall (cloud and Fleet API modes): ``set_operation(level, mode)`` (``backup``, ``operation``),
  ``set_grid_charging(bool)`` (``disallow_charge_from_grid_with_solar_installed``) and
  ``set_grid_export("battery_ok" | "pv_only" | "never")`` (``customer_preferred_export_rule``), the Fleet API's
  energy-site commands ``backup``, ``operation`` and ``grid_import_export`` (tesla-fleet-api's ``EnergySite``
  methods of the same names). Home Assistant users do the same through
  scripts (pjvenda/powerwall-homeassistant-control: "force grid charge" and the like, leading the Powerwall
  with its reserve and mode, within what Tesla allows).

Limits
~~~~~~
A Powerwall's charge and discharge power cannot be set; CHARGE charges at whatever rate the
Powerwall picks, and reserves of 81-99 % may be capped by the cloud (some firmware), so a CHARGE target there may
stop short. EXPORT is a request, not a command: in Time-Based Control the Powerwall exports from the battery when
the tariff loaded in the Tesla app makes it worth it (battery_ok only allows it); homegrid does not upload a tariff.
Tesla applies cloud commands asynchronously (seconds to minutes). The gateway's local API refuses these writes on
current firmware: only the cloud and Fleet API modes can carry out a plan. The virtual home
(:mod:`homegrid.devices.virtual`) carries the modes out exactly, so the plan's loop runs without hardware.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Protocol

__all__ = [
    "COMMAND_MODES",
    "EXPORT_RULES",
    "OPERATION_MODES",
    "BatteryCommand",
    "BatteryControl",
    "CarCommand",
    "CarControl",
    "CarSettings",
    "ModeControl",
    "PowerwallSettings",
    "check_mode",
    "check_reserve",
    "powerwall_settings",
]

#: Operation modes and how the Tesla app names them.
OPERATION_MODES: dict[str, str] = {
    "self_consumption": "Self-Powered",
    "autonomous": "Time-Based Control",
    "backup": "Backup-only",
}


class BatteryControl(Protocol):
    """Read and set a battery's backup reserve [%] and operation mode.

    The reserve is on the glossary's ``battery_reserve`` scale (the Tesla app's scale for a
    Powerwall, as ``battery_soc``). The setters raise :class:`ValueError` for a value out of
    range and :class:`~homegrid.devices.base.DeviceError` when the device refuses.
    """

    @property
    def can_control(self) -> bool: ...

    @property
    def modes(self) -> tuple[str, ...]: ...

    @property
    def why_not(self) -> str | None: ...

    async def backup_reserve(self) -> float | None: ...

    async def set_backup_reserve(self, percent: float) -> None: ...

    async def operation_mode(self) -> str | None: ...

    async def settings(self) -> tuple[float | None, str | None]:
        """The reserve and the mode together (one device read where the device gives both at once)."""
        ...

    async def set_operation_mode(self, mode: str) -> None: ...


def check_reserve(percent: object) -> float:
    """A backup reserve [%] within 0..100, or :class:`ValueError`."""
    if isinstance(percent, bool) or not isinstance(percent, (int, float)) or not math.isfinite(percent) \
            or not 0 <= percent <= 100:
        raise ValueError(f"backup reserve {percent!r} %: must be within 0..100")
    return float(percent)


def check_mode(mode: object, modes: tuple[str, ...]) -> str:
    """An operation mode this device takes, or :class:`ValueError` naming the ones it does."""
    if mode not in modes:
        raise ValueError(f"operation mode {mode!r}: this battery takes {', '.join(modes)}")
    return str(mode)


#: The planner's battery modes (``homegrid.planner.problem.Mode``'s values; devices do not import the planner).
COMMAND_MODES: tuple[str, ...] = ("self-powered", "charge", "hold", "export")
#: A Powerwall's export rules (``customer_preferred_export_rule``).
EXPORT_RULES: tuple[str, ...] = ("battery_ok", "pv_only", "never")


@dataclass(frozen=True)
class BatteryCommand:
    """One step's battery mode and its parameters.

    Parameters
    ----------
    mode : str
        One of :data:`COMMAND_MODES`.
    reserve_percent : float
        The backup reserve's floor (the owner's, raised by storm mode) [%].
    target_percent : float or None
        CHARGE: the level to charge to; HOLD: the level to hold at (the level when the hold began); EXPORT: the
        level to export down to [%]. None for SELF_POWERED (and an EXPORT down to the floor).
    idle_export_rule : str
        The export rule outside EXPORT (``pv_only``; ``never`` where the utility forbids any export).
    """

    mode: str
    reserve_percent: float
    target_percent: float | None = None
    idle_export_rule: str = "pv_only"

    def __post_init__(self) -> None:
        if self.mode not in COMMAND_MODES:
            raise ValueError(f"battery command mode {self.mode!r}: expected one of {', '.join(COMMAND_MODES)}")
        check_reserve(self.reserve_percent)
        if self.mode in ("charge", "hold"):
            if self.target_percent is None:
                raise ValueError(f"battery command {self.mode}: needs a target level")
            check_reserve(self.target_percent)
        if self.idle_export_rule not in EXPORT_RULES:
            raise ValueError(f"export rule {self.idle_export_rule!r}: expected one of {', '.join(EXPORT_RULES)}")

    def describe(self) -> str:
        """In words, for the log."""
        what = self.mode
        if self.mode == "charge":
            what = f"charge to {self.target_percent:.0f} %"
        elif self.mode == "hold":
            what = f"hold at {self.target_percent:.0f} %"
        return f"{what} (reserve floor {self.reserve_percent:.0f} %)"


@dataclass(frozen=True)
class PowerwallSettings:
    """What a Powerwall is given for a :class:`BatteryCommand` (and what it reports back).

    ``grid_charging`` and ``export_rule`` are None when not known (read in local mode, or a virtual battery).
    """

    operation_mode: str
    reserve_percent: float
    grid_charging: bool | None = None
    export_rule: str | None = None

    def differs(self, other: PowerwallSettings, tolerance_percent: float = 1.0) -> list[str]:
        """What of ``other`` differs from these settings, in words (unknowns on either side are not compared)."""
        out = []
        if self.operation_mode != other.operation_mode:
            out.append(f"operation mode {other.operation_mode} (set: {self.operation_mode})")
        if abs(self.reserve_percent - other.reserve_percent) > tolerance_percent:
            out.append(f"backup reserve {other.reserve_percent:.0f} % (set: {self.reserve_percent:.0f} %)")
        if None not in (self.grid_charging, other.grid_charging) and self.grid_charging != other.grid_charging:
            out.append(f"grid charging {'on' if other.grid_charging else 'off'}")
        if None not in (self.export_rule, other.export_rule) and self.export_rule != other.export_rule:
            out.append(f"export rule {other.export_rule} (set: {self.export_rule})")
        return out


def powerwall_settings(command: BatteryCommand) -> PowerwallSettings:
    """A :class:`BatteryCommand` as a Powerwall takes it (see the notes above :data:`COMMAND_MODES`).

    - self-powered: ``self_consumption``, the reserve floor, no grid charging, the idle export rule;
    - charge: ``autonomous`` (Time-Based Control charges faster than Self-Powered), the reserve raised to the
      target (at least the floor), grid charging on, the idle export rule;
    - hold: ``self_consumption``, the reserve at the hold level (at least the floor): no discharge below it, the
      sun may still charge; no grid charging;
    - export: ``autonomous``, the reserve at the level to export down to (at least the floor), no grid charging,
      export rule ``battery_ok``.
    """
    floor = command.reserve_percent
    target = max(floor, command.target_percent) if command.target_percent is not None else floor
    idle = command.idle_export_rule
    if command.mode == "charge":
        return PowerwallSettings("autonomous", target, True, idle)
    if command.mode == "hold":
        return PowerwallSettings("self_consumption", target, False, idle)
    if command.mode == "export":
        return PowerwallSettings("autonomous", target, False, "battery_ok")
    return PowerwallSettings("self_consumption", floor, False, idle)


class ModeControl(Protocol):
    """A battery that carries out the planner's modes (a Powerwall in a cloud mode, the virtual home).

    ``apply`` raises :class:`~homegrid.devices.base.DeviceError` when the device refuses; ``settings_now`` reads
    what the device has now (the owner may have changed it).
    """

    async def apply(self, command: BatteryCommand) -> PowerwallSettings:
        """Carry out the command; returns the settings written."""
        ...

    async def settings_now(self) -> PowerwallSettings:
        """The device's settings now."""
        ...


@dataclass(frozen=True)
class CarCommand:
    """The car's charging for a step.

    Parameters
    ----------
    charging : bool
        Charge or not.
    amps : int or None
        The charging current per phase [A]; None: leave it.
    limit_percent : int or None
        The car's charge limit [%]; None: leave it (the owner's).
    """

    charging: bool
    amps: int | None = None
    limit_percent: int | None = None

    def __post_init__(self) -> None:
        if self.amps is not None and not 0 <= self.amps <= 80:
            raise ValueError(f"charging amps {self.amps}: must be within 0..80 A")
        if self.limit_percent is not None and not 50 <= self.limit_percent <= 100:
            raise ValueError(f"charge limit {self.limit_percent} %: Tesla takes 50..100 %")

    def describe(self) -> str:
        """In words, for the log."""
        if not self.charging:
            return "car: stop charging"
        return ("car: charge" + (f" at {self.amps} A" if self.amps is not None else "")
                + (f" to {self.limit_percent} %" if self.limit_percent is not None else ""))


@dataclass(frozen=True)
class CarSettings:
    """What a car reports of its charging: charging or not, its amps [A] and its limit [%] (None: unknown)."""

    charging: bool | None
    amps: int | None
    limit_percent: int | None


class CarControl(Protocol):
    """A car whose charging the planner sets (Tesla through tesla-fleet-api, the virtual car)."""

    async def apply(self, command: CarCommand) -> None:
        """Start or stop charging, set the amps and the limit; :class:`~homegrid.devices.base.DeviceError` when
        the car refuses."""
        ...

    async def car_settings(self) -> CarSettings:
        """The car's charging now."""
        ...
