"""The virtual home's grid-fault log: the entries a Powerwall gateway keeps of grid events.

A gateway logs a grid event at the instant its inverter sees it
(``/api/system_status/grid_faults``), whatever the poll interval. The log is not
an outage log: it also records voltage and frequency warnings while the site
stays on the grid (vloschiavo/powerwall2 issue 2). The virtual home's log holds
both kinds, each as a :class:`~homegrid.devices.powerwall.replies.GridFault`
shaped like the gateway's:

- **Outage entries**: one at the exact start of an outage
  (:func:`~homegrid.devices.virtual.outages.outage_schedule`, overlapping
  outages merged as there) for :data:`LOGGED_SHARE` of the outages; the others
  leave no entry (only the grid status and the island toggle time show them).
  The alert is drawn from :data:`ALERTS`.
- **Disturbances** that did not island the home: a Poisson process of
  ``DISTURBANCES_PER_OUTAGE * outages_per_year`` a year (stream ``(seed, year, 3)``)
  plus one per demonstration period, none within :data:`CLEAR_MS` of an outage
  (so each entry is plainly one or the other), with the alerts of :data:`WARNINGS`.
  About half the log's entries are disturbances.

==================================  ======  ===========================================
outage alert                        share   detail
==================================  ======  ===========================================
``PINV_a004_vfCheckUnderVoltage``   45 %    ``PINV_a004_uv_amplitude`` 0-100 [Vrms]
``PINV_a006_vfCheckUnderFrequency`` 30 %    ``PINV_a006_frequency`` 55-59.3 [Hz]
``PINV_a008_vfCheckRocof``          15 %    (none)
``PINV_a007_vfCheckOverFrequency``  10 %    ``PINV_a007_frequency`` 60.7-63 [Hz]
==================================  ======  ===========================================

(Names and detail fields as in the recorded replies under ``shared/data/powerwall``;
a 60 Hz site, 120 V a leg. The over-voltage name of :data:`WARNINGS` is modelled on
them: no recording holds one.) Each entry's draw has its own stream,
``numpy.random.default_rng((seed, 2, time))``, so the log of a window does not
depend on where a simulation starts. Entries are warnings (``is_fault`` False), as
in the recordings. Times are epoch milliseconds UTC.
"""

from __future__ import annotations

import functools
from datetime import UTC, datetime

import numpy as np

from homegrid.devices.powerwall.replies import ALERT_UNITS, GridFault, alert_kind
from homegrid.devices.virtual.outages import DEMO_PERIOD_MS, outage_schedule
from homegrid.readings.evidence import GridEvidence
from homegrid.timezones import DAY_MS, MINUTE_MS

__all__ = ["ALERTS", "CLEAR_MS", "DISTURBANCES_PER_OUTAGE", "LOGGED_SHARE", "WARNINGS", "disturbances",
           "grid_faults", "toggles_seen"]

Alert = tuple[str, float, str | None, float, float, str]
#: (alert name, share, detail field, low, high, unit): what the inverter saw when the grid failed.
ALERTS: tuple[Alert, ...] = (
    ("PINV_a004_vfCheckUnderVoltage", 0.45, "PINV_a004_uv_amplitude", 0.0, 100.0, "Vrms"),
    ("PINV_a006_vfCheckUnderFrequency", 0.30, "PINV_a006_frequency", 55.0, 59.3, "Hz"),
    ("PINV_a008_vfCheckRocof", 0.15, None, 0.0, 0.0, ""),
    ("PINV_a007_vfCheckOverFrequency", 0.10, "PINV_a007_frequency", 60.7, 63.0, "Hz"),
)
#: The same for grid disturbances that leave the site on the grid: over-voltage, sags, frequency excursions.
WARNINGS: tuple[Alert, ...] = (
    ("PINV_a005_vfCheckOverVoltage", 0.40, "PINV_a005_ov_amplitude", 126.5, 134.0, "Vrms"),
    ("PINV_a004_vfCheckUnderVoltage", 0.20, "PINV_a004_uv_amplitude", 96.0, 108.0, "Vrms"),
    ("PINV_a006_vfCheckUnderFrequency", 0.20, "PINV_a006_frequency", 59.2, 59.5, "Hz"),
    ("PINV_a007_vfCheckOverFrequency", 0.20, "PINV_a007_frequency", 60.5, 60.8, "Hz"),
)

#: Share of outages whose start the log records.
LOGGED_SHARE = 0.85
#: Disturbances a year for each outage a year.
DISTURBANCES_PER_OUTAGE = 1.0
#: No disturbance this close to an outage. [ms]
CLEAR_MS = 10 * MINUTE_MS
_STREAM = 2
_DISTURBANCE_STREAM = 3


def _pick(alerts: tuple[Alert, ...], u: float) -> Alert:
    shares = np.cumsum([a[1] for a in alerts])
    return alerts[min(int(np.searchsorted(shares, u * shares[-1], side="right")), len(alerts) - 1)]


def _rng(seed: int, t_ms: int) -> np.random.Generator:
    return np.random.default_rng([int(seed) & 0xFFFFFFFF, _STREAM, t_ms & 0xFFFFFFFF, t_ms >> 32])


def _entry(t_ms: int, alert: Alert, v: float) -> GridFault:
    name, _, field, low, high, unit = alert
    detail: dict[str, object] = {"PINV_alertID": name, "PINV_alertType": "Warning"}
    value = None
    if field is not None:
        value = round(low + float(v) * (high - low), 3)
        detail[field] = value
    return GridFault(t_ms, name, False, detail, alert_kind(name), value, ALERT_UNITS.get(unit, "") if value else "")


def _year_ms(year: int) -> int:
    return int(datetime(year, 1, 1, tzinfo=UTC).timestamp()) * 1000


@functools.lru_cache(maxsize=64)
def _disturbance_times(seed: int, year: int, per_year: float, demo: bool) -> np.ndarray:
    """Candidate disturbance times of one UTC year (before clearing them of outages). [ms]"""
    rng = np.random.default_rng([int(seed) & 0xFFFFFFFF, year + 10_000, _DISTURBANCE_STREAM])
    y0, y1 = _year_ms(year), _year_ms(year + 1)
    rate = DISTURBANCES_PER_OUTAGE * per_year * (y1 - y0) / (365.0 * DAY_MS)
    n = int(rng.poisson(rate)) if per_year > 0 else 0
    times = [y0 + np.floor(rng.random(n) * (y1 - y0)).astype(np.int64)]
    if demo and per_year > 0:  # one in each demonstration period, at a seeded time within it
        for k in range(y0 // DEMO_PERIOD_MS, y1 // DEMO_PERIOD_MS + 1):
            u = np.random.default_rng([int(seed) & 0xFFFFFFFF, k, _DISTURBANCE_STREAM]).random()
            t = k * DEMO_PERIOD_MS + int(u * DEMO_PERIOD_MS)
            if y0 <= t < y1:
                times.append(np.array([t], dtype=np.int64))
    out = np.sort(np.concatenate(times))
    out.setflags(write=False)
    return out


def disturbances(seed: int, per_year: float, start_ms: int, end_ms: int, demo: bool = True) -> list[GridFault]:
    """The log's entries of ``[start_ms, end_ms)`` that did not island the home, sorted.

    Parameters
    ----------
    seed : int
    per_year : float
        The outage rate (the disturbance rate follows it). [1/year]
    start_ms, end_ms : int
        The window, epoch milliseconds UTC. [ms]
    demo : bool
        Whether the demonstration outages are on (see :mod:`.outages`).
    """
    if end_ms <= start_ms or per_year <= 0:
        return []
    y0 = datetime.fromtimestamp(start_ms / 1000, tz=UTC).year
    y1 = datetime.fromtimestamp((end_ms - 1) / 1000, tz=UTC).year
    t = np.concatenate([_disturbance_times(seed, y, float(per_year), demo) for y in range(y0, y1 + 1)])
    t = t[(t >= start_ms) & (t < end_ms)]
    s, e = outage_schedule(seed, per_year, start_ms - CLEAR_MS, end_ms + CLEAR_MS, demo)
    k = np.searchsorted(s, t + CLEAR_MS, side="right") - 1  # the last outage starting before t + clear
    near = (k >= 0) & (e[np.maximum(k, 0)] + CLEAR_MS > t) if len(s) else np.zeros(len(t), dtype=bool)
    out = []
    for x in t[~near].tolist():
        u, v = _rng(seed, int(x)).random(2)
        out.append(_entry(int(x), _pick(WARNINGS, float(u)), float(v)))
    return out


def grid_faults(seed: int, per_year: float, start_ms: int, end_ms: int, demo: bool = True) -> list[GridFault]:
    """The fault-log entries of the virtual home in ``[start_ms, end_ms)``: outage starts and disturbances.

    Parameters
    ----------
    seed : int
        The configuration's seed (the outage schedule's).
    per_year : float
        Mean number of outages a year. [1/year]
    start_ms, end_ms : int
        The window, epoch milliseconds UTC. [ms]
    demo : bool
        Whether the demonstration outages are on (see :mod:`.outages`).

    Returns
    -------
    list of GridFault
        One entry at the exact start of each logged outage starting in the window and each
        disturbance in it, sorted by time; deterministic.
    """
    if end_ms <= start_ms:
        return []
    starts, _ = outage_schedule(seed, per_year, start_ms, end_ms, demo)
    starts = starts[(starts >= start_ms) & (starts < end_ms)]
    out = []
    for s in starts.tolist():
        u, v, w = _rng(seed, int(s)).random(3)
        if w < LOGGED_SHARE:
            out.append(_entry(int(s), _pick(ALERTS, float(u)), float(v)))
    return sorted(out + disturbances(seed, per_year, start_ms, end_ms, demo), key=lambda f: f.time_ms)


def toggles_seen(poll_ms: np.ndarray, starts: np.ndarray, ends: np.ndarray, source: str = "") -> list[GridEvidence]:
    """The island toggle times a hub polling at ``poll_ms`` reads: at each poll, the latest outage start or
    end at or before it; each new value is evidence at its own time (a first poll's value too: the hub keeps
    each time once, and the detector ignores one with no reading before it).

    Parameters
    ----------
    poll_ms : numpy.ndarray
        The poll instants, sorted. [ms]
    starts, ends : numpy.ndarray
        The outage intervals (disjoint, sorted). [ms]
    source : str
        The device name the evidence carries.
    """
    edges = np.unique(np.concatenate((np.asarray(starts, dtype=np.int64), np.asarray(ends, dtype=np.int64))))
    t = np.asarray(poll_ms, dtype=np.int64)
    k = np.searchsorted(edges, t, side="right") - 1  # the latest edge at or before each poll
    k = k[k >= 0]
    seen = np.unique(k)
    return [GridEvidence(int(edges[i]), "island_toggle", "last_toggle_timestamp", source=source)
            for i in seen.tolist()]
