"""The adapter interface every device speaks, the virtual home included."""

from __future__ import annotations

import abc
from dataclasses import dataclass
from typing import TYPE_CHECKING

from homegrid.readings import Reading

if TYPE_CHECKING:
    from homegrid.devices.control import BatteryControl

__all__ = ["BatteryFigures", "Device", "DeviceError"]


class DeviceError(RuntimeError):
    """A device could not be read (timeout, bad reply, gone)."""


@dataclass(frozen=True)
class BatteryFigures:
    """What a device knows of its battery that its readings do not say (for the backup estimate).

    Attributes
    ----------
    capacity_wh : float
        Usable energy of the full battery. [Wh]
    max_discharge_w : float
        The most the battery gives. [W]
    efficiency : float
        Share of the stored energy that reaches the home. [-]
    hidden_percent : float
        Part of the pack below the reported 0 %. [%]
    """

    capacity_wh: float
    max_discharge_w: float
    efficiency: float
    hidden_percent: float


class Device(abc.ABC):
    """A source of live readings in glossary names.

    ``poll`` returns one reading for "now" or raises :class:`DeviceError`;
    vendor field names never leave the adapter.

    Attributes
    ----------
    name : str
        The device's name in the hub's health.
    max_backoff_s : float or None
        The longest wait after failed polls the device wants [s]; None: the hub's cap for a
        LAN device (a minute). A cloud API with rate limits may ask for longer.
    """

    name: str = "device"
    max_backoff_s: float | None = None

    @abc.abstractmethod
    async def poll(self) -> Reading:
        """Read the device once."""

    async def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections; the default has none."""

    def battery_control(self) -> BatteryControl | None:
        """What the hub may change on this device's battery (reserve, operation mode); None: nothing."""
        return None

    def battery_figures(self) -> BatteryFigures | None:
        """The battery's figures its readings do not say; None: the readings say all there is."""
        return None
