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
  ``ev_power`` is the car charger's part of it (0 while the car charges away from home).

The car's own state (``ev_soc``, ``ev_range``, ``ev_charging_state`` ...) is
read from the car wherever it is; ``ev_at_home`` says whether it is at the site.

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
    "FIRST_PLAUSIBLE_MS",
    "FLOWS",
    "LAST_PLAUSIBLE_MS",
    "MAX_AHEAD_MS",
    "MAX_FIELD_CHARS",
    "MAX_LINE_BYTES",
    "MAX_POWER_W",
    "POWER",
    "QUANTITIES",
    "EnergyCategory",
    "EvChargingState",
    "GridStatus",
    "Kind",
    "Quantity",
    "display_value",
    "max_counter_wh",
    "quantity",
]


class Kind(enum.Enum):
    """How a quantity behaves over time."""

    POWER = "measurement"  # a gauge [W]
    COUNTER = "total_increasing"  # a monotone total that may reset [Wh]
    PERCENT = "percent"  # a gauge [%]
    GAUGE = "gauge"  # any other instantaneous value (a range [km], a duration [s])
    STATUS = "status"  # an enumerated state, stored as its integer code
    FLAG = "flag"  # yes (1) or no (0)


class StatusEnum(enum.IntEnum):
    """An enumerated state stored as its integer code; names parse case-insensitively."""

    @classmethod
    def parse(cls, value: str | int | float) -> StatusEnum:
        """Parse a name (``"islanded"``) or a code (``2``); raise ValueError otherwise."""
        label = _STATUS_LABELS.get(cls.__name__, cls.__name__)
        if isinstance(value, str):
            try:
                return cls[value.strip().upper()]
            except KeyError:
                raise ValueError(
                    f"unknown {label} {value!r}; expected one of "
                    + ", ".join(m.name.lower() for m in cls)
                ) from None
        if not math.isfinite(value) or int(value) != value:  # NaN, infinite or fractional
            raise ValueError(f"{label} code must be an integer, got {value!r}")
        try:
            return cls(int(value))
        except ValueError:
            raise ValueError(f"{int(value)} is not a {label} code") from None



class GridStatus(StatusEnum):
    """Whether the utility supplies the site."""

    UNKNOWN = 0
    CONNECTED = 1
    ISLANDED = 2
    TRANSITION = 3


class EvChargingState(StatusEnum):
    """What the car's charger is doing (Tesla's ``charging_state``)."""

    UNKNOWN = 0
    DISCONNECTED = 1
    STOPPED = 2
    STARTING = 3
    CHARGING = 4
    COMPLETE = 5
    NO_POWER = 6


_STATUS_LABELS = {"GridStatus": "grid_status", "EvChargingState": "ev_charging_state"}


@dataclass(frozen=True)
class Quantity:
    """One named quantity: its unit, kind, and what its sign means."""

    name: str
    unit: str
    kind: Kind
    description: str
    minimum: float | None = None  # physically impossible below this (after tolerance)
    maximum: float | None = None
    states: type[StatusEnum] | None = None  # the codes of a STATUS quantity


QUANTITIES: tuple[Quantity, ...] = (
    Quantity("solar_power", "W", Kind.POWER, "Solar generation, >= 0.", minimum=0.0),
    Quantity(
        "home_power", "W", Kind.POWER, "All household load, car charger included, >= 0.", minimum=0.0
    ),
    Quantity("ev_power", "W", Kind.POWER, "The car charger's power, part of home_power, >= 0.", minimum=0.0),
    Quantity("grid_power", "W", Kind.POWER, "Grid exchange: + import, - export."),
    Quantity("battery_power", "W", Kind.POWER, "Home battery: + discharge, - charge."),
    Quantity("battery_soc", "%", Kind.PERCENT, "Home battery state of charge, as the owner's app shows it (a "
             "Powerwall: the Tesla app's scale, app = (gateway - 5) / 0.95 clamped to 0..100).",
             minimum=0.0, maximum=100.0),
    Quantity("battery_soc_gateway", "%", Kind.PERCENT, "A Powerwall's state of charge as its gateway reports it "
             "(its bottom 5 % hidden from the owner: battery_soc = (this - 5) / 0.95).", minimum=0.0, maximum=100.0),
    Quantity("battery_capacity", "Wh", Kind.GAUGE, "Energy the battery holds when full (it fades with age).",
             minimum=0.0, maximum=1.0e8),
    Quantity("battery_capacity_rated", "Wh", Kind.GAUGE, "What battery_capacity was when new, by the maker's "
             "rating (health = battery_capacity / this).", minimum=0.0, maximum=1.0e8),
    Quantity("grid_voltage", "V", Kind.GAUGE, "Grid voltage at the site meter (about 0 while the grid is down).",
             minimum=0.0, maximum=1.0e5),
    Quantity("grid_frequency", "Hz", Kind.GAUGE, "Grid frequency at the site meter.", minimum=0.0, maximum=1.0e3),
    Quantity("battery_reserve", "%", Kind.PERCENT, "Backup reserve the battery keeps for outages (battery_soc's "
             "scale).",
             minimum=0.0, maximum=100.0),
    Quantity("grid_status", "", Kind.STATUS, "connected / islanded / transition / unknown.", states=GridStatus),
    Quantity("solar_energy_exported", "Wh", Kind.COUNTER, "Lifetime solar generation."),
    Quantity("home_energy_imported", "Wh", Kind.COUNTER, "Lifetime household consumption."),
    Quantity("grid_energy_imported", "Wh", Kind.COUNTER, "Lifetime energy bought from the grid."),
    Quantity("grid_energy_exported", "Wh", Kind.COUNTER, "Lifetime energy sent to the grid."),
    Quantity("battery_energy_imported", "Wh", Kind.COUNTER, "Lifetime energy put into the battery."),
    Quantity("battery_energy_exported", "Wh", Kind.COUNTER, "Lifetime energy taken from the battery."),
    Quantity("ev_soc", "%", Kind.PERCENT, "The car's battery level.", minimum=0.0, maximum=100.0),
    Quantity("ev_range", "km", Kind.GAUGE, "The car's estimated range.", minimum=0.0, maximum=1.0e5),
    Quantity("ev_charge_limit", "%", Kind.PERCENT, "The level the car charges to.", minimum=0.0, maximum=100.0),
    Quantity("ev_time_to_full", "s", Kind.GAUGE, "Time until the car reaches its charge limit.", minimum=0.0,
             maximum=1.0e7),
    Quantity("ev_charging_state", "", Kind.STATUS, "disconnected / stopped / starting / charging / complete ...",
             states=EvChargingState),
    Quantity("ev_at_home", "", Kind.FLAG, "1 when the car is at the site, 0 when away.", minimum=0.0, maximum=1.0),
)

# The door's bounds: what no reading of a home can hold, whatever its device or file says.

#: The largest power of a home, either sign [W]: 1 MW (the setting ``[site] max_power_w``; a house draws
#: tens of kW). Applies to every power quantity, from a file or a device.
MAX_POWER_W = 1.0e6
#: The first plausible time of a reading [ms UTC]: 1990-01-01T00:00:00Z, before any home had a logging meter.
FIRST_PLAUSIBLE_MS = 631_152_000_000
#: A device's own clock reading after this is no time [ms UTC]: 2100-01-01T00:00:00Z (a garbled timestamp).
LAST_PLAUSIBLE_MS = 4_102_444_800_000
#: How far ahead of the clock a reading may be [ms]: one day (a device's clock or time zone gone wrong).
MAX_AHEAD_MS = 86_400_000
#: Years an energy counter may have run at the largest power; its bound is ``max_counter_wh``. [years]
COUNTER_YEARS = 100
#: The longest field of an imported file [characters]; a longer one is an error quoting its first 80.
MAX_FIELD_CHARS = 1024
#: The longest line of an imported file [bytes]; a longer one is an error and is never held whole.
MAX_LINE_BYTES = 65_536


def max_counter_wh(max_power_w: float = MAX_POWER_W) -> float:
    """The largest value of a lifetime energy counter: ``max_power_w`` for ``COUNTER_YEARS`` years [Wh].

    Parameters
    ----------
    max_power_w : float
        The largest power of the home. [W]
    """
    return max_power_w * COUNTER_YEARS * 8766.0  # 365.25 days of 24 h


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


def display_value(name: str, value: float) -> float | str | bool:
    """A stored value as the API and the command line show it: status codes by name, flags as booleans."""
    q = quantity(name)
    if q.states is not None:
        return q.states(int(value)).name.lower()
    if q.kind is Kind.FLAG:
        return bool(value)
    return value


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
