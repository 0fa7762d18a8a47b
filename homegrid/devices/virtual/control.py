"""The virtual home's battery settings as a :class:`~homegrid.devices.control.BatteryControl`.

Storm mode and the owner's settings change the virtual home's backup reserve and operation
mode through :meth:`VirtualHome.set_battery`; the simulation and its readings agree from the
next step. The planner's modes (:class:`~homegrid.devices.control.BatteryCommand`) go through
:meth:`VirtualControl.apply` (a :class:`~homegrid.devices.control.ModeControl`) and are carried out
exactly, CHARGE from the grid included; the car's charging through :class:`VirtualCarControl`. A
change by hand (:meth:`VirtualHome.set_battery`) ends the planner's mode, as the owner's change in
the Tesla app overwrites a Powerwall's settings. Outside the planner's CHARGE, the virtual battery
never charges from the grid: a raised reserve (or backup-only mode) stops it discharging below the
new level and lets the sun fill it, as a Powerwall does without grid charging. It has no tariff, so
the owner cannot choose ``autonomous`` (the planner's CHARGE and EXPORT report it, as a Powerwall would).
"""

from __future__ import annotations

from typing import Protocol

from homegrid.devices.control import (
    BatteryCommand,
    CarCommand,
    CarSettings,
    PowerwallSettings,
    check_mode,
    check_reserve,
)

__all__ = ["VIRTUAL_MODES", "VirtualCarControl", "VirtualControl"]

#: The operation modes the virtual home dispatches (it has no tariff for ``autonomous``).
VIRTUAL_MODES = ("self_consumption", "backup")


class _Battery(Protocol):
    """What of the virtual home its control uses (:class:`~homegrid.devices.virtual.home.VirtualHome`)."""

    @property
    def backup_reserve_percent(self) -> float: ...

    @property
    def operation_mode(self) -> str: ...

    def set_battery(self, reserve_percent: float | None = None, mode: str | None = None) -> None: ...

    def apply_command(self, command: BatteryCommand) -> PowerwallSettings: ...

    @property
    def battery_settings(self) -> PowerwallSettings: ...


class _Car(Protocol):
    """What of the virtual home its car's control uses."""

    def set_car(self, command: CarCommand) -> None: ...

    @property
    def car_settings(self) -> CarSettings: ...


class VirtualControl:
    """Read and set the virtual home's backup reserve [%] (the battery's own scale) and operation mode.

    Parameters
    ----------
    home : VirtualHome
        Changed in place; call from the event loop that polls it.
    """

    can_control = True
    modes = VIRTUAL_MODES
    why_not = None

    def __init__(self, home: _Battery) -> None:
        self.home = home

    def read(self) -> float:
        """The reserve now [%]."""
        return self.home.backup_reserve_percent

    def write(self, percent: float) -> None:
        """Set the reserve [%], 0..100."""
        self.home.set_battery(reserve_percent=check_reserve(percent))

    async def backup_reserve(self) -> float | None:
        """The reserve now [%]."""
        return self.read()

    async def set_backup_reserve(self, percent: float) -> None:
        """Set the reserve [%]; it applies from the next simulated step."""
        self.write(percent)

    async def settings(self) -> tuple[float | None, str | None]:
        """The reserve [%] and the operation mode."""
        return self.read(), self.home.operation_mode

    async def operation_mode(self) -> str | None:
        """``self_consumption`` or ``backup``."""
        return self.home.operation_mode

    async def set_operation_mode(self, mode: str) -> None:
        """Set the operation mode; it applies from the next simulated step."""
        self.home.set_battery(mode=check_mode(mode, self.modes))

    async def apply(self, command: BatteryCommand) -> PowerwallSettings:
        """Carry out one of the planner's modes from the next simulated step; the settings a Powerwall would get."""
        return self.home.apply_command(command)

    async def settings_now(self) -> PowerwallSettings:
        """The virtual gateway's settings now (the owner may have changed them through :meth:`set_backup_reserve`
        or :meth:`set_operation_mode`, which end the planner's mode)."""
        return self.home.battery_settings


class VirtualCarControl:
    """The virtual car's charging (a :class:`~homegrid.devices.control.CarControl`).

    Parameters
    ----------
    home : VirtualHome
        Changed in place; call from the event loop that polls it.
    """

    def __init__(self, home: _Car) -> None:
        self.home = home

    async def apply(self, command: CarCommand) -> None:
        """Start or stop charging, at the amps and up to the limit given, from the next simulated step."""
        self.home.set_car(command)

    async def car_settings(self) -> CarSettings:
        """The car's charging switch, amps [A] and limit [%]."""
        return self.home.car_settings
