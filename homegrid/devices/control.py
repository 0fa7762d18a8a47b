"""What the hub may change on a home battery: the backup reserve and the operation mode.

The planner (storm mode) and the owner's settings (``/api/v1/settings``) send these commands
back through the device adapters; each adapter says which it can carry out.

Operation modes use the Powerwall's own names (``/api/operation``'s ``real_mode``), which
Tesla's app calls:

- ``self_consumption``: *Self-Powered*, the battery stores surplus solar and covers the home
  down to the backup reserve;
- ``autonomous``: *Time-Based Control*, the battery follows the utility's tariff;
- ``backup``: *Backup-only* (hidden in recent app versions), the battery is kept full and only
  carries the home when the grid is down.
"""

from __future__ import annotations

import math
from typing import Protocol

__all__ = ["OPERATION_MODES", "BatteryControl", "check_mode", "check_reserve"]

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
