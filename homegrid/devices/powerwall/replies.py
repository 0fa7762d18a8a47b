"""Tesla Powerwall gateway (local API) replies mapped to glossary names.

The vendor's field names are read here and nowhere else. Each ``parse_*``
function takes one decoded JSON reply of one endpoint and returns glossary
values, or raises :class:`ReplyError` naming the endpoint and what is wrong.

Signs: the gateway's ``site`` meter is + import / - export, its ``battery``
meter + discharge / - charge, exactly the glossary's; ``solar`` and ``load``
are >= 0 (small negative readings are meter noise and are clamped by the
glossary's validation, not here).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

from homegrid.glossary import FIRST_PLAUSIBLE_MS, LAST_PLAUSIBLE_MS, GridStatus
from homegrid.timezones import IsoTimeError, Refusal, parse_iso_ms

__all__ = [
    "AGGREGATE_FIELDS",
    "ALERT_KINDS",
    "GRID_STATUS",
    "GridFault",
    "Operation",
    "ReplyError",
    "alert_kind",
    "app_soc",
    "gateway_soc",
    "parse_aggregates",
    "parse_capacity",
    "parse_grid_faults",
    "parse_grid_status",
    "parse_operation",
    "parse_rated_capacity",
    "parse_soe",
    "parse_toggle_time",
]


class ReplyError(ValueError):
    """A gateway reply that is not what the endpoint promises."""

    def __init__(self, endpoint: str, reason: str) -> None:
        super().__init__(f"{endpoint}: {reason}")
        self.endpoint = endpoint
        self.reason = reason


@dataclass(frozen=True)
class AggregateField:
    """One value of ``/api/meters/aggregates``: which meter, which field, which glossary name."""

    meter: str
    field: str
    name: str
    optional: bool = False  # older firmware may lack it: skipped, not an error
    zero_is_missing: bool = False  # newer firmware reports 0 for a value it does not measure


#: ``/api/meters/aggregates``: adding a quantity is adding a row.
AGGREGATE_FIELDS: tuple[AggregateField, ...] = (
    AggregateField("site", "instant_power", "grid_power"),
    AggregateField("battery", "instant_power", "battery_power"),
    AggregateField("solar", "instant_power", "solar_power"),
    AggregateField("load", "instant_power", "home_power"),
    AggregateField("site", "energy_imported", "grid_energy_imported"),
    AggregateField("site", "energy_exported", "grid_energy_exported"),
    AggregateField("battery", "energy_imported", "battery_energy_imported"),
    AggregateField("battery", "energy_exported", "battery_energy_exported"),
    AggregateField("solar", "energy_exported", "solar_energy_exported"),
    AggregateField("load", "energy_imported", "home_energy_imported"),
    AggregateField("site", "instant_average_voltage", "grid_voltage", optional=True),
    AggregateField("site", "frequency", "grid_frequency", optional=True, zero_is_missing=True),
)

#: ``/api/system_status/grid_status`` values (as pypowerwall's ``grid_status()`` reads them).
GRID_STATUS: dict[str, GridStatus] = {
    "SystemGridConnected": GridStatus.CONNECTED,
    "SystemIslandedActive": GridStatus.ISLANDED,
    "SystemIslandedReady": GridStatus.ISLANDED,
    "SystemMicroGridFaulted": GridStatus.ISLANDED,
    "SystemWaitForUser": GridStatus.ISLANDED,
    "SystemTransitionToGrid": GridStatus.TRANSITION,
    "SystemTransitionToIsland": GridStatus.TRANSITION,
}

#: Grid-fault log times accepted [ms since 1970]: 1990-01-01 to 2100-01-01; anything else is no clock reading.
FAULT_TIMES_MS = (FIRST_PLAUSIBLE_MS, LAST_PLAUSIBLE_MS)

#: The Tesla app hides the bottom 5 % of the pack: app % = (gateway % - 5) / 0.95 (pypowerwall's ``level(scale=True)``),
#: clamped to 0..100. :func:`app_soc` and :func:`gateway_soc` are the one place this rule lives.
HIDDEN_RESERVE_PERCENT = 5.0


def _shown(value: Any, limit: int = 80) -> str:
    """A value as an error message quotes it: its repr, cut short."""
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "..."


def _number(endpoint: str, where: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ReplyError(endpoint, f"{where} is {_shown(value)}, not a number")
    try:
        v = float(value)
    except OverflowError:  # JSON integers have any size
        raise ReplyError(endpoint, f"{where} is {_shown(value)}, beyond any float") from None
    if not math.isfinite(v):
        raise ReplyError(endpoint, f"{where} is {v}, not a finite number")
    return v


def _object(endpoint: str, reply: Any) -> dict[str, Any]:
    if not isinstance(reply, dict):
        raise ReplyError(endpoint, f"expected a JSON object, got {type(reply).__name__}: {_shown(reply)}")
    return reply


def parse_aggregates(reply: Any) -> dict[str, float]:
    """Power [W] and lifetime counters [Wh] from ``/api/meters/aggregates``.

    A meter missing from the reply (no solar on the site) is skipped; a meter
    present with a missing or non-numeric field is an error.
    """
    endpoint = "/api/meters/aggregates"
    meters = _object(endpoint, reply)
    out: dict[str, float] = {}
    for f in AGGREGATE_FIELDS:
        meter = meters.get(f.meter)
        if meter is None:
            continue
        if not isinstance(meter, dict):
            raise ReplyError(endpoint, f"meter {f.meter!r} is {type(meter).__name__}, not an object")
        if f.field not in meter or (f.optional and meter[f.field] is None):
            if f.optional:
                continue
            raise ReplyError(endpoint, f"meter {f.meter!r} has no {f.field!r} (firmware shape change?)")
        value = _number(endpoint, f"{f.meter}.{f.field}", meter[f.field])
        if not (f.zero_is_missing and value == 0):
            out[f.name] = value
    if not out:
        raise ReplyError(endpoint, f"none of the meters site, battery, solar, load in {sorted(meters)[:8]}")
    return out


def parse_soe(reply: Any) -> float:
    """Battery state of charge [%] from ``/api/system_status/soe`` (the gateway's scale)."""
    endpoint = "/api/system_status/soe"
    return _number(endpoint, "percentage", _object(endpoint, reply).get("percentage"))


def app_soc(gateway_percent: float) -> float:
    """A level on the gateway's scale as the Tesla app shows it, the hidden bottom 5 % removed [%].

    pypowerwall's ``level(scale=True)``: ``(gateway - 5) / 0.95``, here clamped to 0..100 (a gateway
    below 5 % is an empty battery to the owner). The glossary's ``battery_soc`` and ``battery_reserve``
    are on this scale; ``battery_soc_gateway`` keeps the gateway's own figure.

    Parameters
    ----------
    gateway_percent : float
        The level as ``/api/system_status/soe`` (or ``/api/operation``) gives it. [%]
    """
    app = (gateway_percent - HIDDEN_RESERVE_PERCENT) / (1.0 - HIDDEN_RESERVE_PERCENT / 100.0)
    return min(100.0, max(0.0, app))


def gateway_soc(app_percent: float) -> float:
    """A level on the Tesla app's scale on the gateway's scale [%]: ``app * 0.95 + 5`` (the inverse of :func:`app_soc`).

    Parameters
    ----------
    app_percent : float
        The level as the Tesla app shows it. [%]
    """
    return app_percent * (1.0 - HIDDEN_RESERVE_PERCENT / 100.0) + HIDDEN_RESERVE_PERCENT


def parse_capacity(reply: Any) -> float:
    """The battery's full-pack energy [Wh] from ``/api/system_status`` (``nominal_full_pack_energy``)."""
    endpoint = "/api/system_status"
    value = _number(endpoint, "nominal_full_pack_energy", _object(endpoint, reply).get("nominal_full_pack_energy"))
    if value <= 0:
        raise ReplyError(endpoint, f"nominal_full_pack_energy is {value}")
    return value


#: A Powerwall's rating: 13.5 kWh usable (Powerwall 2, +, 3), which is the pack above the hidden 5 %, so a
#: new pack's ``nominal_full_pack_energy`` is about 13,500 / 0.95 = 14,211 Wh. [Wh]
RATED_FULL_PACK_WH = 13_500.0 / (1.0 - HIDDEN_RESERVE_PERCENT / 100.0)


def parse_rated_capacity(reply: Any) -> float | None:
    """The rated full-pack energy [Wh] of the packs ``/api/system_status`` counts in ``nominal_full_pack_energy``
    (``battery_blocks``, each :data:`RATED_FULL_PACK_WH`); None when it lists no blocks.

    A block the total leaves out (one without ``energy_charged``, as an expansion pack on some firmware) is not
    counted, so that health compares like with like.
    """
    endpoint = "/api/system_status"
    body = _object(endpoint, reply)
    blocks = body.get("battery_blocks")
    if not isinstance(blocks, list) or not blocks:
        return None
    total = parse_capacity(reply)
    every = [b for b in blocks if isinstance(b, dict)]
    summed = sum(float(b.get("nominal_full_pack_energy") or 0.0) for b in every)
    if abs(summed - total) > 0.01 * total:
        every = [b for b in every if b.get("energy_charged") is not None]
    return len(every) * RATED_FULL_PACK_WH if every else None


def parse_grid_status(reply: Any) -> GridStatus:
    """Grid status from ``/api/system_status/grid_status``; unknown names are errors."""
    endpoint = "/api/system_status/grid_status"
    value = _object(endpoint, reply).get("grid_status")
    if not isinstance(value, str):  # a list or an object is no name (and cannot be looked up: unhashable)
        raise ReplyError(endpoint, f"grid_status is {_shown(value)}, not a status name")
    if value not in GRID_STATUS:
        raise ReplyError(endpoint, f"unknown grid_status {_shown(value)}")
    return GRID_STATUS[value]


@dataclass(frozen=True)
class Operation:
    """``/api/operation``: the operating mode and the backup reserve (gateway scale) [%]."""

    mode: str
    backup_reserve_percent: float


def parse_operation(reply: Any) -> Operation:
    endpoint = "/api/operation"
    op = _object(endpoint, reply)
    mode = op.get("real_mode")
    if not isinstance(mode, str):
        raise ReplyError(endpoint, f"real_mode is {_shown(mode)}, not a mode name")
    return Operation(mode, _number(endpoint, "backup_reserve_percent", op.get("backup_reserve_percent")))


@dataclass(frozen=True)
class GridFault:
    """One entry of the gateway's grid-fault log: evidence of a grid event at its own time.

    ``kind`` is what the inverter saw (:data:`homegrid.readings.evidence.DISTURBANCE_KINDS`), ``value`` the
    magnitude the entry logged, in ``unit`` (``"V"`` or ``"Hz"``; None and "" when it logged none).
    """

    time_ms: int
    name: str
    is_fault: bool
    detail: dict[str, Any]
    kind: str = "other"
    value: float | None = None
    unit: str = ""


#: Alert names (the part after ``vfCheck``) to what the inverter saw.
ALERT_KINDS: dict[str, str] = {
    "UnderVoltage": "under_voltage",
    "OverVoltage": "over_voltage",
    "UnderFrequency": "under_frequency",
    "OverFrequency": "over_frequency",
    "Rocof": "frequency_change_rate",
}
#: The decoded alert's units to glossary units.
ALERT_UNITS: dict[str, str] = {"Vrms": "V", "V": "V", "Hz": "Hz"}


def alert_kind(name: str) -> str:
    """``PINV_a004_vfCheckUnderVoltage`` -> ``under_voltage``; ``other`` for names not known."""
    tail = name.rsplit("vfCheck", 1)[-1] if "vfCheck" in name else ""
    return ALERT_KINDS.get(tail, "other")


def _magnitude(decoded: Any) -> tuple[float | None, str]:
    """The first value with a known unit in a decoded alert (``[{"name", "value", "units"}, ...]``)."""
    if not isinstance(decoded, list):
        return None, ""
    for item in decoded:
        units = item.get("units") if isinstance(item, dict) else None
        if not isinstance(units, str) or units not in ALERT_UNITS:
            continue
        value = item.get("value")
        if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
            return float(value), ALERT_UNITS[units]
    return None, ""


def parse_grid_faults(reply: Any) -> list[GridFault]:
    """Entries of ``/api/system_status/grid_faults`` (an empty list when the grid was calm)."""
    endpoint = "/api/system_status/grid_faults"
    if not isinstance(reply, list):
        raise ReplyError(endpoint, f"expected a JSON list, got {type(reply).__name__}")
    faults = []
    for i, entry in enumerate(reply):
        e = _object(f"{endpoint}[{i}]", entry)
        stamp = _number(f"{endpoint}[{i}]", "timestamp", e.get("timestamp"))
        if not FAULT_TIMES_MS[0] <= stamp < FAULT_TIMES_MS[1]:
            raise ReplyError(f"{endpoint}[{i}]", f"timestamp {stamp:.0f} is not a time in ms since 1970 "
                                                 "(between 1990 and 2100)")
        name = e.get("alert_name")
        if not isinstance(name, str):
            raise ReplyError(f"{endpoint}[{i}]", f"alert_name is {_shown(name)}, not a name")
        detail: dict[str, Any] = {}
        value, unit = None, ""
        decoded = e.get("decoded_alert")
        if isinstance(decoded, str):
            try:
                items = json.loads(decoded)
                detail = {d["name"]: d.get("value") for d in items if isinstance(d, dict) and "name" in d}
                value, unit = _magnitude(items)
            except (ValueError, TypeError, RecursionError):  # not JSON, not a list of objects, a name not a key
                detail = {"decoded_alert": decoded}
        faults.append(GridFault(int(stamp), name, bool(e.get("alert_is_fault", False)), detail, alert_kind(name),
                                value, unit))
    return faults


def parse_toggle_time(reply: Any) -> int | None:
    """When the gateway last left or rejoined the grid [ms since 1970], from ``/api/system_status``
    (``last_toggle_timestamp``, RFC 3339 with nanoseconds and an offset); None when the reply has none."""
    endpoint = "/api/system_status"
    value = _object(endpoint, reply).get("last_toggle_timestamp")
    if value is None:
        return None
    if not isinstance(value, str):
        raise ReplyError(endpoint, f"last_toggle_timestamp is {_shown(value)}, not a time")
    try:
        ms = parse_iso_ms(value.strip())  # nanoseconds read, rounded to the millisecond
    except IsoTimeError as exc:
        why = "has no UTC offset" if exc.why in (Refusal.NAIVE, Refusal.DATE_ONLY) else "is not an RFC 3339 time"
        raise ReplyError(endpoint, f"last_toggle_timestamp {_shown(value)} {why}") from None
    if not FAULT_TIMES_MS[0] <= ms < FAULT_TIMES_MS[1]:
        raise ReplyError(endpoint, f"last_toggle_timestamp {_shown(value)} is not between 1990 and 2100")
    return ms
