"""The adapter interface every device speaks, the virtual home included."""

from __future__ import annotations

import abc

from homegrid.readings import Reading

__all__ = ["Device", "DeviceError"]


class DeviceError(RuntimeError):
    """A device could not be read (timeout, bad reply, gone)."""


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
