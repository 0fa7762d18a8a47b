"""Outage events and grid disturbances: what the detector (:mod:`homegrid.energy.outages`) finds.

Times are epoch milliseconds UTC throughout.
"""

from __future__ import annotations

from dataclasses import dataclass

from homegrid.readings.evidence import GridEvidence

__all__ = ["Disturbance", "GridEvents", "Outage"]


@dataclass(frozen=True)
class Outage:
    """One outage event: an interval when the utility did not supply the site.

    Attributes
    ----------
    start_ms : int
        Start, epoch milliseconds UTC (the best estimate; see the module). [ms]
    end_ms : int or None
        End; None while the outage is ongoing. [ms]
    start_exact, end_exact : bool
        Whether the edge is known to the evidence's resolution (a fault-log or
        backup-history time); False when it lies somewhere in a poll interval or
        a gap when nobody was looking.
    start_earliest_ms : int or None
        The earliest the outage can have started (None: no bound, before the
        first reading). Equal to ``start_ms`` when exact. [ms]
    end_latest_ms : int or None
        The latest it can have ended (None: no bound). Equal to ``end_ms`` when
        exact. [ms]
    evidence : tuple of str
        What showed it: ``"grid_status"``, ``"grid_voltage"``,
        ``"grid_fault:<alert name>"``, ``"backup_event:<name>"``,
        ``"island_status:<status>"``, ``"island_toggle"``, and what was not seen:
        ``"hub_down_at_start"``, ``"hub_down_during"``, ``"hub_down_at_end"``.
    intentional : bool
        The owner's own off-grid test: not an interruption.
    parts : int
        How many interruptions the merge rule joined into this event.
    """

    start_ms: int
    end_ms: int | None
    start_exact: bool = False
    end_exact: bool = False
    start_earliest_ms: int | None = None
    end_latest_ms: int | None = None
    evidence: tuple[str, ...] = ()
    intentional: bool = False
    parts: int = 1

    @property
    def duration_ms(self) -> int | None:
        """Length, None while ongoing. [ms]"""
        return None if self.end_ms is None else self.end_ms - self.start_ms


@dataclass(frozen=True)
class Disturbance:
    """A grid event the gateway logged with no islanding evidence beside it: the home stayed on the grid.

    Attributes
    ----------
    time_ms : int
        When the gateway logged it, epoch milliseconds UTC. [ms]
    name : str
        The log's own name of the entry (``PINV_a005_vfCheckOverVoltage``).
    kind : str
        What was seen: one of :data:`homegrid.readings.evidence.DISTURBANCE_KINDS`.
    value : float or None
        The magnitude logged (the voltage or frequency seen). [unit]
    unit : str
        ``"V"``, ``"Hz"``, or "" when there is no value.
    source : str
        The device that logged it.
    """

    time_ms: int
    name: str
    kind: str
    value: float | None = None
    unit: str = ""
    source: str = ""

    @classmethod
    def of(cls, e: GridEvidence) -> Disturbance:
        return cls(int(e.time_ms), e.name, e.disturbance or "other", e.value, e.unit, e.source)


@dataclass(frozen=True)
class GridEvents:
    """What the detector made of the readings and the evidence: interruptions and disturbances."""

    outages: list[Outage]
    disturbances: list[Disturbance]
