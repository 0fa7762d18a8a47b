"""The virtual home's backup reserve as storm mode's ``ReserveControl``.

The virtual home keeps its reserve in two places: the dispatch parameters
(``_Params.reserve_wh``, the energy the battery will not discharge below while the grid is
up) and the configuration (``config.virtual.backup_reserve_percent``, which its readings
report as ``battery_reserve``). :class:`VirtualReserve` changes both, so the simulation and
its readings agree. It uses ``VirtualHome.backup_reserve_percent`` when the home has that
property, and otherwise replaces the two frozen values itself.

The virtual battery never charges from the grid: a raised reserve stops it discharging
below the new level and lets the sun fill it, as a Powerwall does in self-powered mode
without grid charging.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

from homegrid.devices.virtual.home import VirtualHome

__all__ = ["VirtualReserve"]


class VirtualReserve:
    """Read and set the virtual home's backup reserve [%] (the battery's own scale; it hides nothing).

    Parameters
    ----------
    home : VirtualHome
        Changed in place; call from the event loop that polls it.
    """

    def __init__(self, home: VirtualHome) -> None:
        self.home = home

    def read(self) -> float:
        """The reserve now [%]."""
        home: Any = self.home
        if isinstance(getattr(type(home), "backup_reserve_percent", None), property):
            return float(home.backup_reserve_percent)
        p = home._params
        return 100.0 * p.reserve_wh / p.capacity_wh

    def write(self, percent: float) -> None:
        """Set the reserve [%], 0..100."""
        if not (isinstance(percent, (int, float)) and math.isfinite(percent) and 0 <= percent <= 100):
            raise ValueError(f"backup reserve {percent!r} %: must be within 0..100")
        home: Any = self.home
        prop = getattr(type(home), "backup_reserve_percent", None)
        if isinstance(prop, property) and prop.fset is not None:
            home.backup_reserve_percent = float(percent)
            return
        params = home._params
        home._params = dataclasses.replace(params, reserve_wh=params.capacity_wh * float(percent) / 100.0)
        config = home._config
        home._config = dataclasses.replace(
            config, virtual=dataclasses.replace(config.virtual, backup_reserve_percent=float(percent)))

    async def backup_reserve(self) -> float | None:
        """The reserve now [%]."""
        return self.read()

    async def set_backup_reserve(self, percent: float) -> None:
        """Set the reserve [%]; it applies from the next simulated step."""
        self.write(percent)
