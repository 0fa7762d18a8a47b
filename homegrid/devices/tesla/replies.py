"""Tesla vehicle replies (Fleet API, Teslemetry, Tessie) mapped to glossary names.

The vendor's field names are read here and nowhere else. Two kinds of reply:

- ``vehicle_data`` (``GET /api/1/vehicles/{vin}/vehicle_data``): the car's charge
  and drive state. The Fleet API and Teslemetry wrap it in ``{"response": ...}``;
  Tessie's ``/{vin}/state`` returns it bare. :func:`parse_vehicle_data` takes both.
  A value that is missing, null or not a number is skipped and listed in
  :attr:`VehicleData.problems`; the reply is refused (:class:`ReplyError`) only
  when it has no ``charge_state`` at all.
- the vehicle list (``GET /api/1/vehicles``), the products list
  (``GET /api/1/products``), a single vehicle (``GET /api/1/vehicles/{vin}``) or
  Tessie's ``/{vin}/status``: the car's connectivity state (online / asleep /
  offline). These endpoints never wake the car; :func:`parse_vehicle_state`
  reads them.

Units: Tesla reports ranges in miles (converted to km), ``charger_power`` in kW
(to W), ``minutes_to_full_charge`` in minutes and ``time_to_full_charge`` in hours
(to s), levels in %.

Where the car is: the Fleet API gives ``drive_state.latitude/longitude`` only when
``location_data`` is among the requested endpoints (firmware 2023.38 and later;
the car then shows a location-sharing icon). Without a location the car's
at-home flag is unknown: ``ev_at_home`` is left out and the reason listed. Nothing
else in the reply says reliably where the car is (``active_route_destination`` is
where navigation goes, not where the car is), so no other source is guessed at.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass, field
from typing import Any

from homegrid.glossary import FIRST_PLAUSIBLE_MS, LAST_PLAUSIBLE_MS, EvChargingState

__all__ = [
    "CHARGING_STATES",
    "KM_PER_MILE",
    "VEHICLE_FIELDS",
    "Home",
    "ReplyError",
    "VehicleData",
    "VehicleField",
    "VehicleState",
    "distance_m",
    "parse_vehicle_data",
    "parse_vehicle_state",
]

#: One international mile [km].
KM_PER_MILE = 1.609344

#: Mean Earth radius (IUGG) [m].
EARTH_RADIUS_M = 6_371_008.8

#: ``charge_state.timestamp`` values taken as the car's time [ms since 1970]: 1990-01-01 to 2100-01-01.
TIMESTAMPS_MS = (FIRST_PLAUSIBLE_MS, LAST_PLAUSIBLE_MS)


class ReplyError(ValueError):
    """A Tesla reply that is not what the endpoint promises."""

    def __init__(self, endpoint: str, reason: str) -> None:
        super().__init__(f"{endpoint}: {reason}")
        self.endpoint = endpoint
        self.reason = reason


class VehicleState(enum.Enum):
    """The car's connectivity as the vehicle list reports it (reading it never wakes the car)."""

    ONLINE = "online"
    ASLEEP = "asleep"
    OFFLINE = "offline"


#: Vendor state names: the Fleet API's, and Tessie's ``/{vin}/status`` (awake, waiting_for_sleep).
_STATES: dict[str, VehicleState] = {
    "online": VehicleState.ONLINE,
    "awake": VehicleState.ONLINE,
    "waiting_for_sleep": VehicleState.ONLINE,
    "asleep": VehicleState.ASLEEP,
    "offline": VehicleState.OFFLINE,
}

#: ``charge_state.charging_state`` names (Fleet API) to glossary codes.
CHARGING_STATES: dict[str, EvChargingState] = {
    "Disconnected": EvChargingState.DISCONNECTED,
    "Stopped": EvChargingState.STOPPED,
    "Starting": EvChargingState.STARTING,
    "Charging": EvChargingState.CHARGING,
    "Complete": EvChargingState.COMPLETE,
    "NoPower": EvChargingState.NO_POWER,
}

#: The states in which the car draws power from a charger.
DRAWING = (EvChargingState.CHARGING, EvChargingState.STARTING)


@dataclass(frozen=True)
class VehicleField:
    """One number of ``vehicle_data``: where it is, which glossary name, and the factor to glossary units.

    Several rows may feed one name: the first that gives a number wins.
    ``home_only`` rows describe the home's load and are gated by where the car is.
    """

    section: str
    field: str
    name: str
    scale: float = 1.0
    home_only: bool = False

    @property
    def path(self) -> str:
        return f"{self.section}.{self.field}"


#: ``vehicle_data`` numbers: adding a quantity is adding a row.
VEHICLE_FIELDS: tuple[VehicleField, ...] = (
    VehicleField("charge_state", "battery_level", "ev_soc"),  # % (what the app shows)
    VehicleField("charge_state", "battery_range", "ev_range", KM_PER_MILE),  # rated range, mi -> km
    VehicleField("charge_state", "charge_limit_soc", "ev_charge_limit"),  # %
    VehicleField("charge_state", "minutes_to_full_charge", "ev_time_to_full", 60.0),  # min -> s
    VehicleField("charge_state", "time_to_full_charge", "ev_time_to_full", 3600.0),  # h -> s
    VehicleField("charge_state", "charger_power", "ev_power", 1000.0, home_only=True),  # kW -> W
)


@dataclass(frozen=True)
class Home:
    """The site: the car is at home within ``radius_m`` of this point.

    Parameters
    ----------
    latitude, longitude : float
        WGS84 position of the site [degrees].
    radius_m : float
        The at-home radius [m].
    """

    latitude: float
    longitude: float
    radius_m: float = 100.0

    def __post_init__(self) -> None:
        if not (-90 <= self.latitude <= 90 and -180 <= self.longitude <= 180):
            raise ValueError(f"home position {self.latitude}, {self.longitude} is not a latitude/longitude")
        if not self.radius_m > 0:
            raise ValueError(f"home radius must be > 0 m, got {self.radius_m}")


def distance_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle (haversine) distance between two WGS84 points [m]; angles in [degrees]."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(a)))


@dataclass(frozen=True)
class VehicleData:
    """What one ``vehicle_data`` reply says, in glossary names, plus what the poll policy needs.

    Attributes
    ----------
    values : dict
        Glossary name -> value in glossary units (``ev_charging_state`` as its code,
        ``ev_at_home`` as 0/1).
    problems : dict
        Vendor field (or glossary name) -> why it was skipped.
    charging_state : EvChargingState or None
        What the charger does; None when the reply does not say.
    at_home : bool or None
        Whether the car is at the site; None when unknown (no location or no site).
    distance_m : float or None
        The car's distance from the site [m].
    shift_state : str or None
        ``P``, ``D``, ``R``, ``N``; None (parked) or absent.
    timestamp_ms : int or None
        The car's own time of ``charge_state`` [ms since the epoch].
    """

    values: dict[str, float]
    problems: dict[str, str] = field(default_factory=dict)
    charging_state: EvChargingState | None = None
    at_home: bool | None = None
    distance_m: float | None = None
    shift_state: str | None = None
    timestamp_ms: int | None = None

    @property
    def charging(self) -> bool:
        """True while the car draws power from a charger (charging or starting)."""
        return self.charging_state in DRAWING

    @property
    def driving(self) -> bool:
        """True while a gear other than park is engaged."""
        return self.shift_state in ("D", "R", "N")


def _shown(value: Any, limit: int = 80) -> str:
    """A value as an error message quotes it: its repr, cut short."""
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "..."


def _unwrap(endpoint: str, reply: Any) -> Any:
    """The payload of a Fleet API reply (``{"response": ...}``), or the bare reply (Tessie)."""
    if not isinstance(reply, dict):
        raise ReplyError(endpoint, f"expected a JSON object, got {type(reply).__name__}: {_shown(reply)}")
    if "response" in reply:
        payload = reply["response"]
        if payload is None:
            error = reply.get("error") or reply.get("error_description") or "no error given"
            raise ReplyError(endpoint, f"response is null ({str(error)[:200]})")
        return payload
    if "error" in reply and len(reply) <= 3:
        raise ReplyError(endpoint, f"error reply: {str(reply.get('error'))[:200]}")
    return reply


def _number(value: Any) -> float:
    """A finite number, or ValueError saying why not."""
    if value is None:
        raise ValueError("is null")
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"is {_shown(value)}, not a number")
    try:
        v = float(value)
    except OverflowError:  # JSON integers have any size
        raise ValueError(f"is {_shown(value)}, beyond any float") from None
    if not math.isfinite(v):
        raise ValueError(f"is {v}, not a finite number")
    return v


def _timestamp_ms(value: Any) -> int | None:
    """The car's own time of a section [ms since 1970], or None when it is not a plausible one."""
    try:
        stamp = _number(value)
    except ValueError:
        return None
    return int(stamp) if TIMESTAMPS_MS[0] <= stamp < TIMESTAMPS_MS[1] else None


def _where(drive: dict[str, Any] | None, home: Home | None) -> tuple[bool | None, float | None, str | None]:
    """At home, distance [m], or the reason it is unknown."""
    if home is None:
        return None, None, "no site location to compare the car's with"
    if drive is None:
        return None, None, "no drive_state in the reply, so the car's location is unknown"
    lat, lon = drive.get("latitude"), drive.get("longitude")
    if lat is None and lon is None:
        return None, None, ("drive_state has no latitude/longitude (Fleet API firmware 2023.38+ gives them only "
                            "with endpoints=location_data), so the car's location is unknown")
    try:
        la, lo = _number(lat), _number(lon)
    except ValueError as exc:
        return None, None, f"drive_state latitude/longitude {exc}"
    if not (-90 <= la <= 90 and -180 <= lo <= 180):
        return None, None, f"drive_state position {la}, {lo} is not a latitude/longitude"
    d = distance_m(home.latitude, home.longitude, la, lo)
    return d <= home.radius_m, d, None


def parse_vehicle_data(reply: Any, home: Home | None = None) -> VehicleData:
    """Glossary values from a ``vehicle_data`` reply.

    Parameters
    ----------
    reply : object
        The decoded JSON, wrapped (``{"response": {...}}``: Fleet API, Teslemetry) or bare (Tessie).
    home : Home, optional
        The site; without it ``ev_at_home`` is unknown.

    Returns
    -------
    VehicleData
        ``ev_soc`` [%], ``ev_range`` [km], ``ev_charge_limit`` [%], ``ev_time_to_full`` [s],
        ``ev_charging_state`` [code], ``ev_at_home`` [0/1] and ``ev_power`` [W] where the
        reply gives them; each skipped value is listed in ``problems``.

    Notes
    -----
    ``ev_power`` is the home charger's draw for this car: ``charger_power`` when the car is
    at home; 0 when it is away (it charges elsewhere, if at all) or when it is not charging;
    left out when the car charges and its location is unknown.

    Raises
    ------
    ReplyError
        Not a JSON object, a null ``response`` (an error reply), or no ``charge_state`` object.
    """
    endpoint = "vehicle_data"
    car = _unwrap(endpoint, reply)
    if not isinstance(car, dict):
        raise ReplyError(endpoint, f"response is {type(car).__name__}, not an object")
    charge = car.get("charge_state")
    if charge is None:
        raise ReplyError(endpoint, f"no charge_state in the reply (keys: {', '.join(sorted(car)[:12])}); "
                                   "an asleep car's cached reply, or endpoints without charge_state?")
    if not isinstance(charge, dict):
        raise ReplyError(endpoint, f"charge_state is {type(charge).__name__}, not an object")
    drive = car.get("drive_state")
    if drive is not None and not isinstance(drive, dict):
        drive = None

    values: dict[str, float] = {}
    problems: dict[str, str] = {}
    raw: dict[str, float] = {}
    for f in VEHICLE_FIELDS:
        if f.name in raw:
            continue  # an earlier row gave it
        section = car.get(f.section)
        if not isinstance(section, dict):
            problems[f.path] = f"no {f.section} object"
            continue
        if f.field not in section:
            problems[f.path] = "missing"
            continue
        try:
            value = _number(section[f.field]) * f.scale
            if not math.isfinite(value):
                raise ValueError(f"is {_shown(section[f.field])}, beyond any float in {f.name}'s unit")
            raw[f.name] = value
        except ValueError as exc:
            problems[f.path] = str(exc)
    for f in VEHICLE_FIELDS:  # an alternative that worked makes the failed one moot
        if f.name in raw:
            problems.pop(f.path, None)

    name = charge.get("charging_state")
    state: EvChargingState | None
    if isinstance(name, str) and name in CHARGING_STATES:
        state = CHARGING_STATES[name]
    elif isinstance(name, str):
        state = EvChargingState.UNKNOWN
        problems["charge_state.charging_state"] = f"unknown charging_state {_shown(name)}, stored as unknown"
    else:
        state = None
        problems["charge_state.charging_state"] = "is null" if name is None else f"is {_shown(name)}, not a name"
    if state is not None:
        values["ev_charging_state"] = float(state)

    at_home, dist, why = _where(drive, home)
    if at_home is None:
        problems["ev_at_home"] = str(why)
    else:
        values["ev_at_home"] = 1.0 if at_home else 0.0

    for f in VEHICLE_FIELDS:
        if f.home_only or f.name not in raw:
            continue
        values[f.name] = raw[f.name]

    # the home charger's draw for this car
    power = raw.get("ev_power")
    drawing = state in DRAWING
    if at_home is False:
        values["ev_power"] = 0.0
    elif at_home is True and power is not None:
        values["ev_power"] = power
    elif state is not None and not drawing:
        values["ev_power"] = 0.0  # not charging: it draws nothing, wherever it is
    elif at_home is None:
        problems["ev_power"] = "the car may be charging but where it is is unknown, so its share of the home is too"
    # else: at home, drawing, charger_power unreadable: its problem is already listed
    if "ev_power" in values:
        problems.pop("charge_state.charger_power", None)

    stamp = charge.get("timestamp")
    shift = drive.get("shift_state") if drive is not None else None
    return VehicleData(
        values=values,
        problems=problems,
        charging_state=state,
        at_home=at_home,
        distance_m=dist,
        shift_state=shift if isinstance(shift, str) else None,
        timestamp_ms=_timestamp_ms(stamp),
    )


def _state_of(endpoint: str, entry: dict[str, Any]) -> VehicleState:
    value = entry.get("state", entry.get("status"))
    if not isinstance(value, str) or value.lower() not in _STATES:
        raise ReplyError(endpoint, f"unknown vehicle state {_shown(value)}; expected one of {', '.join(_STATES)}")
    return _STATES[value.lower()]


def parse_vehicle_state(reply: Any, vin: str | None = None) -> VehicleState:
    """The car's connectivity from a reply that never wakes it.

    Parameters
    ----------
    reply : object
        The decoded JSON of the vehicle list or products list (``{"response": [...]}``),
        one vehicle (``{"response": {...}}``), Tessie's vehicle list (``{"results": [...]}``)
        or Tessie's status (``{"status": "asleep"}``, ``{"state": "asleep"}``).
    vin : str, optional
        The car to pick from a list; without it the list must hold exactly one vehicle.

    Returns
    -------
    VehicleState

    Raises
    ------
    ReplyError
        Not such a reply, the car not in the list, or an unknown state name.
    """
    endpoint = "vehicle list"
    payload = _unwrap(endpoint, reply)
    if isinstance(payload, dict) and isinstance(payload.get("results"), list):  # Tessie's vehicle list
        payload = [{"vin": r.get("vin"), **(r["last_state"] if isinstance(r.get("last_state"), dict) else {})}
                   for r in payload["results"] if isinstance(r, dict)]
    if isinstance(payload, dict):
        if vin is not None and payload.get("vin") not in (None, vin):
            raise ReplyError(endpoint, f"the reply is for vehicle {_shown(payload.get('vin'))}, not {vin!r}")
        return _state_of(endpoint, payload)
    if not isinstance(payload, list):
        raise ReplyError(endpoint, f"response is {type(payload).__name__}, not a list or an object")
    cars = [p for p in payload if isinstance(p, dict) and "vin" in p]  # products also lists energy sites
    if vin is not None:
        cars = [c for c in cars if c.get("vin") == vin]
        if not cars:
            known = [p.get("vin") for p in payload if isinstance(p, dict) and "vin" in p]
            raise ReplyError(endpoint, f"vehicle {vin!r} is not in the list ({len(known)} vehicles: "
                                       f"{', '.join(map(str, known)) or 'none'})")
    elif len(cars) != 1:
        raise ReplyError(endpoint, f"{len(cars)} vehicles in the list; say which VIN")
    return _state_of(endpoint, cars[0])
