"""The virtual home's grid-fault log: the evidence a Powerwall gateway keeps of grid events.

A gateway logs a grid disturbance at the instant its inverter sees it
(``/api/system_status/grid_faults``), whatever the poll interval, so a blip
shorter than a poll still leaves a trace. The virtual home logs one entry at the
exact start of each of its outages (:func:`~homegrid.devices.virtual.outages.outage_schedule`,
overlapping outages merged as there), as a :class:`~homegrid.devices.powerwall.replies.GridFault`
shaped like the gateway's, with the alert names the recorded gateways use:

==================================  ======  ===========================================
alert                               share   detail
==================================  ======  ===========================================
``PINV_a004_vfCheckUnderVoltage``   45 %    ``PINV_a004_uv_amplitude`` 0-100 [Vrms]
``PINV_a006_vfCheckUnderFrequency`` 30 %    ``PINV_a006_frequency`` 55-59.3 [Hz]
``PINV_a008_vfCheckRocof``          15 %    (none)
``PINV_a007_vfCheckOverFrequency``  10 %    ``PINV_a007_frequency`` 60.7-63 [Hz]
==================================  ======  ===========================================

(Names and detail fields as in the recorded replies under
``shared/data/powerwall``; a 60 Hz site.) Each entry's alert is drawn from its
own stream, ``numpy.random.default_rng((seed, 2, start))``, so the log of a
window does not depend on where a simulation starts. Entries are warnings
(``is_fault`` False), as in the recordings. Times are epoch milliseconds UTC.
"""

from __future__ import annotations

import numpy as np

from homegrid.devices.powerwall.replies import GridFault
from homegrid.devices.virtual.outages import outage_schedule

__all__ = ["ALERTS", "grid_faults"]

#: (alert name, share, detail field, low, high, unit): what the inverter saw when the grid failed.
ALERTS: tuple[tuple[str, float, str | None, float, float, str], ...] = (
    ("PINV_a004_vfCheckUnderVoltage", 0.45, "PINV_a004_uv_amplitude", 0.0, 100.0, "Vrms"),
    ("PINV_a006_vfCheckUnderFrequency", 0.30, "PINV_a006_frequency", 55.0, 59.3, "Hz"),
    ("PINV_a008_vfCheckRocof", 0.15, None, 0.0, 0.0, ""),
    ("PINV_a007_vfCheckOverFrequency", 0.10, "PINV_a007_frequency", 60.7, 63.0, "Hz"),
)
_STREAM = 2
_CUMULATIVE = np.cumsum([a[1] for a in ALERTS])


def _entry(seed: int, start_ms: int) -> GridFault:
    rng = np.random.default_rng([int(seed) & 0xFFFFFFFF, _STREAM, start_ms & 0xFFFFFFFF, start_ms >> 32])
    u, v = rng.random(2)
    k = min(int(np.searchsorted(_CUMULATIVE, u * _CUMULATIVE[-1], side="right")), len(ALERTS) - 1)
    name, _, field, low, high, _unit = ALERTS[k]
    detail: dict[str, object] = {"PINV_alertID": name, "PINV_alertType": "Warning"}
    if field is not None:
        detail[field] = round(low + float(v) * (high - low), 3)
    return GridFault(start_ms, name, False, detail)


def grid_faults(seed: int, per_year: float, start_ms: int, end_ms: int) -> list[GridFault]:
    """The fault-log entries of the virtual home in ``[start_ms, end_ms)``.

    Parameters
    ----------
    seed : int
        The configuration's seed (the outage schedule's).
    per_year : float
        Mean number of outages a year. [1/year]
    start_ms, end_ms : int
        The window, epoch milliseconds UTC. [ms]

    Returns
    -------
    list of GridFault
        One entry at the exact start of each outage starting in the window,
        sorted by time; deterministic.
    """
    if end_ms <= start_ms:
        return []
    starts, _ = outage_schedule(seed, per_year, start_ms, end_ms)
    starts = starts[(starts >= start_ms) & (starts < end_ms)]
    return [_entry(seed, int(s)) for s in starts.tolist()]
