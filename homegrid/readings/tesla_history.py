"""Tesla energy-site history (``calendar_history`` replies) as glossary readings.

Tesla's cloud (Owner API and Fleet API ``GET /api/1/energy_sites/{id}/calendar_history``)
answers ``{"response": {"period": ..., "installation_time_zone": ..., "time_series": [...]}}``.
This module reads a saved reply, the bare ``response`` object, or a JSON list of
either (concatenated, e.g. one reply per day). The kind is told from the field names:

``kind=power``
    Entries ``{"timestamp", "solar_power", "battery_power", "grid_power",
    "grid_services_power", "generator_power"}`` [W], every 5 or 15 minutes. Tesla's
    signs are the glossary's: ``battery_power`` + discharge, ``grid_power`` +
    import (Powerwall-Dashboard's ``tesla-history`` importer treats
    ``battery_power > 0`` as "from Powerwall" and ``grid_power > 0`` as "from grid",
    and computes home as solar + battery + grid). Each entry becomes one reading;
    ``home_power = solar + battery + grid + generator`` (generator 0 when absent).
``kind=energy``
    Entries of energy per interval [Wh], the timestamp being the interval start
    (``solar_energy_exported``, ``grid_energy_imported``,
    ``grid_energy_exported_from_{solar,battery,generator}``,
    ``battery_energy_exported``, ``battery_energy_imported_from_{grid,solar,generator}``,
    ``consumer_energy_imported_from_{grid,solar,battery,generator}``, ...). They are
    turned into glossary counters by running sums, counted from 0 at the first
    interval start (so they are "energy since the start of the file", not the
    device's lifetime totals). See :func:`energy_counters`.
``kind=soe``
    Entries ``{"timestamp", "soe"}`` [%] become ``battery_soc`` readings.

A missing or null power value is "not measured"; a missing or null per-interval
energy counts as 0 Wh. Every value passes :func:`homegrid.readings.validate_value`.
Problems raise :class:`TeslaHistoryError` naming the file and the JSON path, e.g.
``history.json: response.time_series[3].timestamp: missing``.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from homegrid.readings.model import (
    InvalidReading,
    Limits,
    ReadingFrame,
    from_ms,
    to_ms,
    validate_value,
)
from homegrid.timezones import parse_iso_time

__all__ = [
    "ENERGY_SOURCES",
    "TeslaHistoryError",
    "energy_counters",
    "parse_tesla_history",
    "read_tesla_history",
]

DEFAULT_INTERVAL_S = 300.0  # Tesla's 5-minute resolution, used when one entry gives no spacing [s]
NEGATIVE_ENERGY_TOLERANCE_WH = 1.0  # rounding noise below 0 that is clamped, not refused [Wh]

POWER_FIELDS = ("solar_power", "battery_power", "grid_power")
GENERATOR_FIELD = "generator_power"

#: Glossary counter -> the Tesla per-interval fields [Wh] whose running sum it is.
ENERGY_SOURCES: Mapping[str, tuple[str, ...]] = {
    "solar_energy_exported": ("solar_energy_exported",),
    "home_energy_imported": (
        "consumer_energy_imported_from_grid",
        "consumer_energy_imported_from_solar",
        "consumer_energy_imported_from_battery",
        "consumer_energy_imported_from_generator",
    ),
    "grid_energy_imported": ("grid_energy_imported",),
    "grid_energy_exported": (
        "grid_energy_exported_from_solar",
        "grid_energy_exported_from_battery",
        "grid_energy_exported_from_generator",
    ),
    "battery_energy_imported": (
        "battery_energy_imported_from_grid",
        "battery_energy_imported_from_solar",
        "battery_energy_imported_from_generator",
    ),
    "battery_energy_exported": ("battery_energy_exported",),
}
_ENERGY_FIELDS = frozenset(f for fields in ENERGY_SOURCES.values() for f in fields)


class TeslaHistoryError(ValueError):
    """A history file that cannot be read; names the file and the JSON path of the problem."""

    #: what an import's quarantine keeps of a refused row (the import command sets them)
    time_ms: int = 0
    field: str = ""
    value: str = ""

    def __init__(self, file: str, path: str, reason: str) -> None:
        super().__init__(f"{file}: {path}: {reason}" if path else f"{file}: {reason}")
        self.file = file
        self.path = path
        self.reason = reason


@dataclass(frozen=True)
class _Entry:
    """One ``time_series`` entry with where it was found."""

    path: str
    time_ms: int
    data: Mapping[str, Any]


# ----------------------------------------------------------------------------- JSON walking


def read_tesla_history(
    path: str | os.PathLike[str], *, interval_s: float | None = None, limits: Limits | None = None
) -> ReadingFrame:
    """Read a saved Tesla ``calendar_history`` reply (power, energy or soe) as readings.

    Parameters
    ----------
    path : path-like
        JSON file: a reply, a bare ``response`` object, or a list of them.
    interval_s : float or None
        Length of one energy interval [s]; None infers it (see :func:`energy_counters`).
    limits : Limits or None
        The door's span of times (before 1990 or over a day ahead of the clock is an error);
        None: :meth:`Limits.now`.

    Returns
    -------
    ReadingFrame
        Sorted by time. Power files give ``solar_power``, ``battery_power``,
        ``grid_power``, ``home_power`` [W]; energy files give the counters of
        :data:`ENERGY_SOURCES` [Wh]; soe files give ``battery_soc`` [%]. A reply
        with ``time_series: null`` gives an empty frame.

    Raises
    ------
    TeslaHistoryError
        Not JSON, not the expected shape, or an invalid value (with its JSON path).
    """
    file = os.fspath(path)
    try:
        with open(path, encoding="utf-8") as f:
            doc = json.load(f)
    except json.JSONDecodeError as exc:
        raise TeslaHistoryError(file, "", f"not valid JSON: {exc}") from None
    return parse_tesla_history(doc, file=file, interval_s=interval_s, limits=limits)


def parse_tesla_history(
    doc: object, *, file: str = "<json>", interval_s: float | None = None, limits: Limits | None = None
) -> ReadingFrame:
    """Like :func:`read_tesla_history`, for an already decoded JSON document."""
    entries = [e for prefix, reply in _replies(doc, file) for e in _time_series(reply, prefix, file)]
    limits = Limits.now() if limits is None else limits
    for entry in entries:
        if not limits.earliest_ms <= entry.time_ms <= limits.latest_ms:
            when = "is before 1990" if entry.time_ms < limits.earliest_ms else "is more than a day ahead of the clock"
            raise TeslaHistoryError(file, f"{entry.path}.timestamp", f"{from_ms(entry.time_ms).isoformat()} {when}")
    by_kind: dict[str, list[_Entry]] = {"power": [], "energy": [], "soe": []}
    for entry in entries:
        by_kind[_kind(entry, file)].append(entry)
    frames = [
        _power_frame(by_kind["power"], file),
        _soe_frame(by_kind["soe"], file),
        _energy_frame(by_kind["energy"], file, interval_s),
    ]
    return _merge([f for f in frames if len(f)])


def _replies(doc: object, file: str) -> list[tuple[str, Mapping[str, Any]]]:
    """The response objects of a document, each with its JSON path."""
    if isinstance(doc, list):
        out: list[tuple[str, Mapping[str, Any]]] = []
        for i, item in enumerate(doc):
            out.extend((f"[{i}]{'.' if p else ''}{p}", r) for p, r in _replies(item, file))
        return out
    if not isinstance(doc, dict):
        raise TeslaHistoryError(file, "", f"expected a calendar_history reply (an object), got {_type(doc)}")
    if "response" in doc:
        response = doc["response"]
        if not isinstance(response, dict):
            detail = f" (error: {doc['error']})" if doc.get("error") else ""
            raise TeslaHistoryError(file, "response", f"expected an object, got {_type(response)}{detail}")
        return [("response", response)]
    if "time_series" in doc:
        return [("", doc)]
    raise TeslaHistoryError(file, "", "expected a calendar_history reply with 'response' or 'time_series'")


def _time_series(reply: Mapping[str, Any], prefix: str, file: str) -> list[_Entry]:
    path = f"{prefix}.time_series" if prefix else "time_series"
    if "time_series" not in reply:
        raise TeslaHistoryError(file, path, "missing")
    series = reply["time_series"]
    if series is None:
        return []  # Tesla's "no data" reply
    if not isinstance(series, list):
        raise TeslaHistoryError(file, path, f"expected a list, got {_type(series)}")
    out = []
    for i, item in enumerate(series):
        p = f"{path}[{i}]"
        if not isinstance(item, dict):
            raise TeslaHistoryError(file, p, f"expected an object, got {_type(item)}")
        out.append(_Entry(p, _timestamp(item, p, file), item))
    return out


def _timestamp(item: Mapping[str, Any], path: str, file: str) -> int:
    p = f"{path}.timestamp"
    if "timestamp" not in item:
        raise TeslaHistoryError(file, p, "missing")
    text = item["timestamp"]
    if not isinstance(text, str):
        raise TeslaHistoryError(file, p, f"expected an ISO 8601 text, got {_type(text)}")
    try:
        return to_ms(parse_iso_time(text))
    except ValueError as exc:
        raise TeslaHistoryError(file, p, str(exc)) from None


def _kind(entry: _Entry, file: str) -> str:
    keys = entry.data.keys()
    kinds = [
        k
        for k, present in (
            ("power", any(f in keys for f in (*POWER_FIELDS, GENERATOR_FIELD))),
            ("energy", any(f in keys for f in _ENERGY_FIELDS)),
            ("soe", "soe" in keys),
        )
        if present
    ]
    if len(kinds) != 1:
        what = " and ".join(kinds) if kinds else "no power, energy or soe"
        raise TeslaHistoryError(file, entry.path, f"cannot tell the history kind: {what} fields")
    return kinds[0]


def _type(value: object) -> str:
    return "null" if value is None else type(value).__name__


def _number(entry: _Entry, name: str, file: str) -> float | None:
    """A numeric field, None when missing or null; refuses text, booleans and non-finite numbers."""
    value = entry.data.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise TeslaHistoryError(file, f"{entry.path}.{name}", f"expected a finite number, got {value!r}")
    return float(value)


def _checked(name: str, value: float, path: str, file: str) -> float:
    try:
        return validate_value(name, value)
    except InvalidReading as exc:
        raise TeslaHistoryError(file, path, str(exc)) from None


# ----------------------------------------------------------------------------- frames


def _dedupe(entries: Sequence[_Entry]) -> list[_Entry]:
    """Entries sorted by time; for a repeated time the last one (in file order) wins."""
    by_time = {e.time_ms: e for e in entries}
    return [by_time[t] for t in sorted(by_time)]


def _power_frame(entries: Sequence[_Entry], file: str) -> ReadingFrame:
    entries = _dedupe(entries)
    cols: dict[str, list[float]] = {n: [] for n in (*POWER_FIELDS, "home_power")}
    for e in entries:
        row = {}
        for name in POWER_FIELDS:
            v = _number(e, name, file)
            row[name] = np.nan if v is None else _checked(name, v, f"{e.path}.{name}", file)
            cols[name].append(row[name])
        generator = _number(e, GENERATOR_FIELD, file) or 0.0
        home = sum(row.values()) + generator  # NaN when any of the three is missing
        if not math.isnan(home):
            reason = "home_power = solar + battery + grid + generator"
            home = _checked("home_power", home, f"{e.path} ({reason} = {home:g} W)", file)
        cols["home_power"].append(home)
    t = np.array([e.time_ms for e in entries], dtype=np.int64)
    return ReadingFrame(t, {n: np.array(v, dtype=np.float64) for n, v in cols.items() if v})


def _soe_frame(entries: Sequence[_Entry], file: str) -> ReadingFrame:
    entries = _dedupe(entries)
    soc = []
    for e in entries:
        v = _number(e, "soe", file)
        soc.append(np.nan if v is None else _checked("battery_soc", v, f"{e.path}.soe", file))
    t = np.array([e.time_ms for e in entries], dtype=np.int64)
    return ReadingFrame(t, {"battery_soc": np.array(soc, dtype=np.float64)} if soc else {})


def _interval_energy(entry: _Entry, fields: Sequence[str], file: str) -> float:
    """Sum of per-interval energies [Wh]; missing/null count 0; tiny negatives clamp to 0."""
    total = 0.0
    for name in fields:
        v = _number(entry, name, file)
        if v is None:
            continue
        if v < 0:
            if v < -NEGATIVE_ENERGY_TOLERANCE_WH:
                raise TeslaHistoryError(file, f"{entry.path}.{name}", f"{v} Wh: energy per interval is negative")
            v = 0.0
        total += v
    return total


def _energy_frame(entries: Sequence[_Entry], file: str, interval_s: float | None) -> ReadingFrame:
    # Note on the real fixtures: Home Assistant's tesla_fleet/energy_history.json (and
    # history_status.json) has values that grow from the first interval to the second
    # (solar 70940 -> 140940 Wh in 5 minutes, i.e. ~840 kW), so they look cumulative within
    # the day; HA's maintainers edited those numbers. Tesla documents (and Teslemetry's and the
    # overnight fixture show) per-interval energies, so they are read as per-interval here too.
    entries = _dedupe(entries)
    if not entries:
        return ReadingFrame.empty()
    names = [n for n, fields in ENERGY_SOURCES.items() if any(f in e.data for e in entries for f in fields)]
    starts = np.array([e.time_ms for e in entries], dtype=np.int64)
    per_interval = {n: np.array([_interval_energy(e, ENERGY_SOURCES[n], file) for e in entries]) for n in names}
    t, cols = energy_counters(starts, per_interval, interval_s=interval_s)
    return ReadingFrame(t, cols)


def energy_counters(
    starts_ms: np.ndarray,
    per_interval_wh: Mapping[str, np.ndarray],
    *,
    interval_s: float | None = None,
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Turn energies per interval into counter readings at the interval boundaries.

    A reading at the first interval start holds 0; each interval end holds the running
    sum up to it. Where the next interval starts after the previous one ended (a gap,
    no energy known there), a reading at that start repeats the previous end's values,
    so the counter stays flat across the gap.

    Parameters
    ----------
    starts_ms : ndarray of int64
        Interval starts, sorted, distinct. [ms]
    per_interval_wh : mapping of str to ndarray
        Counter name -> energy in each interval. [Wh]
    interval_s : float or None
        Interval length; None uses the smallest spacing of ``starts_ms`` (or
        :data:`DEFAULT_INTERVAL_S` for a single interval). [s]

    Returns
    -------
    time_ms : ndarray of int64
        Reading times. [ms]
    counters : dict of str to ndarray
        Counter values at those times. [Wh]

    Raises
    ------
    ValueError
        ``interval_s`` longer than the spacing of two intervals (they would overlap).
    """
    starts = np.asarray(starts_ms, dtype=np.int64)
    ends = starts + _interval_ms(starts, interval_s)
    # Two slots per interval i: a reading at its start (kept for the first interval and after a
    # gap, holding the sum before it) and a reading at its end (holding the sum through it).
    opens = np.ones(len(starts), dtype=bool)
    opens[1:] = starts[1:] > ends[:-1]
    keep = np.stack([opens, np.ones(len(starts), dtype=bool)], axis=1).ravel()
    time_ms = np.stack([starts, ends], axis=1).ravel()[keep]
    counters = {}
    for name, energy in per_interval_wh.items():
        through = np.cumsum(np.asarray(energy, dtype=np.float64))
        before = through - np.asarray(energy, dtype=np.float64)
        counters[name] = np.stack([before, through], axis=1).ravel()[keep]
    return time_ms, counters


def _interval_ms(starts: np.ndarray, interval_s: float | None) -> int:
    spacing = np.diff(starts)
    if interval_s is not None:
        length = round(interval_s * 1000)
        if length <= 0 or (len(spacing) and length > spacing.min()):
            raise ValueError(f"interval_s={interval_s} overlaps intervals {spacing.min() / 1000:g} s apart")
        return length
    positive = spacing[spacing > 0]
    return int(positive.min()) if len(positive) else int(DEFAULT_INTERVAL_S * 1000)


def _merge(frames: Sequence[ReadingFrame]) -> ReadingFrame:
    """Rows of several frames merged by time (columns of different frames meet on one row)."""
    if not frames:
        return ReadingFrame.empty()
    t = np.unique(np.concatenate([f.time_ms for f in frames]))
    cols: dict[str, np.ndarray] = {}
    for f in frames:
        idx = np.searchsorted(t, f.time_ms)
        for name, col in f.columns.items():
            target = cols.setdefault(name, np.full(len(t), np.nan))
            target[idx] = col
    return ReadingFrame(t, cols)
