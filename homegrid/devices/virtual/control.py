"""The virtual home's battery settings as a :class:`~homegrid.devices.control.BatteryControl`.

Storm mode and the owner's settings change the virtual home's backup reserve and operation
mode through :meth:`VirtualHome.set_battery`; the simulation and its readings agree from the
next step. The virtual battery never charges from the grid: a raised reserve (or backup-only
mode) stops it discharging below the new level and lets the sun fill it, as a Powerwall does
without grid charging. It has no tariff, so it does not take ``autonomous``.
"""

from __future__ import annotations

from typing import Protocol

from homegrid.devices.control import check_mode, check_reserve

__all__ = ["VIRTUAL_MODES", "VirtualControl"]

#: The operation modes the virtual home dispatches (it has no tariff for ``autonomous``).
VIRTUAL_MODES = ("self_consumption", "backup")


class _Battery(Protocol):
    """What of the virtual home its control uses (:class:`~homegrid.devices.virtual.home.VirtualHome`)."""

    @property
    def backup_reserve_percent(self) -> float: ...

    @property
    def operation_mode(self) -> str: ...

    def set_battery(self, reserve_percent: float | None = None, mode: str | None = None) -> None: ...


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
