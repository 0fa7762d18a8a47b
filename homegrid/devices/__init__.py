"""Device adapters: each maps one vendor's replies to glossary readings."""

from homegrid.devices.base import Device, DeviceError

__all__ = ["Device", "DeviceError"]
