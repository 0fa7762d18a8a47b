"""The one place where every quantity homegrid knows is named, with its unit and sign.

Power is a gauge (Home Assistant's ``measurement``): an instantaneous value in W.
Energy counters are totals that only increase but may reset (``total_increasing``),
in Wh. State of charge is in %. Grid status is one of :class:`GridStatus`.

Signs
-----
- ``grid_power``: + import from the utility, - export to it.
- ``battery_power``: + discharge (battery supplies the site), - charge.
- ``solar_power``, ``home_power``, ``ev_power``: always >= 0.
- ``home_power`` is all load in the house, the car charger included;
  ``ev_power`` is the car charger's part of it.

The balance at any instant is ``home = solar + battery + grid``.

Vendor field names are mapped to these names once, inside each device adapter.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass

__all__ = [
    "ALL_NAMES",
    "COUNTERS",
    "ENERGY_CATEGORIES",
    "EV_SOURCES",
    "FLOWS",
    "POWER",
    "QUANTITIES",
    "EnergyCategory",
    "GridStatus",
    "Kind",
    "Quantity",
    "quantity",
]


class Kind(enum.Enum):
    """How a quantity behaves over time."""

    POWER = "measurement"  # a gauge [W]
    COUNTER = "total_increasing"  # a monotone total that may reset [Wh]
    PERCENT = "percent"  # a gauge [%]
    STATUS = "status"  # an enumerated state


class GridStatus(enum.IntEnum):
    """Whether the utility supplies the site. Stored as its integer code."""

    UNKNOWN = 0
    CONNECTED = 1
    ISLANDED = 2
    TRANSITION = 3

    @classmethod
    def parse(cls, value: str | int | float) -> GridStatus:
        """Parse a name (``"islanded"``) or a code (``2``); raise ValueError otherwise."""
        if isinstance(value, str):
            try:
                return cls[value.strip().upper()]
            except KeyError:
                raise ValueError(
                    f"unknown grid_status {value!r}; expected one of "
                    + ", ".join(m.name.lower() for m in cls)
                ) from None
        if not math.isfinite(value) or int(value) != value:  # NaN, infinite or fractional
            raise ValueError(f"grid_status code must be an integer, got {value!r}")
        return cls(int(value))


@dataclass(frozen=True)
class Quantity:
    """One named quantity: its unit, kind, and what its sign means."""

    name: str
    unit: str
    kind: Kind
    description: str
    minimum: float | None = None  # physically impossible below this (after tolerance)
    maximum: float | None = None


QUANTITIES: tuple[Quantity, ...] = (
    Quantity("solar_power", "W", Kind.POWER, "Solar generation, >= 0.", minimum=0.0),
    Quantity(
        "home_power", "W", Kind.POWER, "All household load, car charger included, >= 0.", minimum=0.0
    ),
    Quantity("ev_power", "W", Kind.POWER, "The car charger's power, part of home_power, >= 0.", minimum=0.0),
    Quantity("grid_power", "W", Kind.POWER, "Grid exchange: + import, - export."),
    Quantity("battery_power", "W", Kind.POWER, "Home battery: + discharge, - charge."),
    Quantity("battery_soc", "%", Kind.PERCENT, "Home battery state of charge.", minimum=0.0, maximum=100.0),
    Quantity("grid_status", "", Kind.STATUS, "connected / islanded / transition / unknown."),
    Quantity("solar_energy_exported", "Wh", Kind.COUNTER, "Lifetime solar generation."),
    Quantity("home_energy_imported", "Wh", Kind.COUNTER, "Lifetime household consumption."),
    Quantity("grid_energy_imported", "Wh", Kind.COUNTER, "Lifetime energy bought from the grid."),
    Quantity("grid_energy_exported", "Wh", Kind.COUNTER, "Lifetime energy sent to the grid."),
    Quantity("battery_energy_imported", "Wh", Kind.COUNTER, "Lifetime energy put into the battery."),
    Quantity("battery_energy_exported", "Wh", Kind.COUNTER, "Lifetime energy taken from the battery."),
)

_BY_NAME = {q.name: q for q in QUANTITIES}
ALL_NAMES: tuple[str, ...] = tuple(q.name for q in QUANTITIES)
POWER: tuple[str, ...] = tuple(q.name for q in QUANTITIES if q.kind is Kind.POWER)
COUNTERS: tuple[str, ...] = tuple(q.name for q in QUANTITIES if q.kind is Kind.COUNTER)


def quantity(name: str) -> Quantity:
    """Look a quantity up by its glossary name; raise KeyError naming the choices."""
    try:
        return _BY_NAME[name]
    except KeyError:
        raise KeyError(f"{name!r} is not a glossary name; known: {', '.join(ALL_NAMES)}") from None


@dataclass(frozen=True)
class EnergyCategory:
    """An energy total per interval [Wh], and where it is measured.

    ``part`` picks the side of a signed power: +1 its positive part, -1 its
    negative part (as a positive number). ``counter`` is the device counter
    that, when present, is the authority for this category.
    """

    name: str
    power: str
    part: int
    counter: str | None


ENERGY_CATEGORIES: tuple[EnergyCategory, ...] = (
    EnergyCategory("solar", "solar_power", +1, "solar_energy_exported"),
    EnergyCategory("home", "home_power", +1, "home_energy_imported"),
    EnergyCategory("ev", "ev_power", +1, None),
    EnergyCategory("grid_import", "grid_power", +1, "grid_energy_imported"),
    EnergyCategory("grid_export", "grid_power", -1, "grid_energy_exported"),
    EnergyCategory("battery_charge", "battery_power", -1, "battery_energy_imported"),
    EnergyCategory("battery_discharge", "battery_power", +1, "battery_energy_exported"),
)

#: Where each kWh went, in the categories of Tesla's own energy history [Wh].
FLOWS: tuple[str, ...] = (
    "solar_to_home",
    "solar_to_battery",
    "solar_to_grid",
    "battery_to_home",
    "battery_to_grid",
    "grid_to_home",
    "grid_to_battery",
)

#: The car's share of the home's sources [Wh], keyed by source.
EV_SOURCES: tuple[str, ...] = ("solar", "battery", "grid")
