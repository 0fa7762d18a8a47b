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
    """

    name: str = "device"

    @abc.abstractmethod
    async def poll(self) -> Reading:
        """Read the device once."""

    async def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections; the default has none."""
