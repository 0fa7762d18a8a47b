"""The virtual home: a simulated site driven by real data, behind the Device interface.

See :mod:`homegrid.devices.virtual.home` for the time convention of its readings.
"""

from homegrid.devices.virtual.ev import CarState
from homegrid.devices.virtual.home import VirtualHome

__all__ = ["CarState", "VirtualHome"]
