"""Evidence of grid events that devices report with their own timestamps (not samples of a quantity).

The outage detector (:mod:`homegrid.energy.outages`) fuses it with the readings' grid status.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["DISTURBANCE_KINDS", "EVIDENCE_KINDS", "GridEvidence"]

#: The kinds of :class:`GridEvidence`.
EVIDENCE_KINDS = ("grid_fault", "backup_event", "island_status", "island_toggle")
#: What a ``grid_fault`` entry says the inverter saw (a vendor's alert names mapped once, by its adapter).
DISTURBANCE_KINDS = ("under_voltage", "over_voltage", "under_frequency", "over_frequency", "frequency_change_rate",
                     "other")


@dataclass(frozen=True)
class GridEvidence:
    """One piece of evidence of a grid event with its own timestamp.

    Parameters
    ----------
    time_ms : int
        When it happened, epoch milliseconds UTC. [ms]
    kind : str
        ``"grid_fault"``: an entry of the gateway's grid-fault log (time only,
        e.g. ``PINV_a006_vfCheckUnderFrequency``); ``"backup_event"``: an entry
        of the cloud's backup history, with ``duration_ms``; ``"island_status"``:
        a change of the cloud's island status, ``name`` the new status
        (``off_grid``, ``off_grid_intentional``, ``off_grid_unintentional``,
        ``on_grid``); ``"island_toggle"``: the gateway's island toggle time
        (``last_toggle_timestamp``) seen to change between two polls, at the new
        toggle time: the gateway left or rejoined the grid then.
    name : str
        The source's own name of the entry.
    duration_ms : int, optional
        Length of a backup event. [ms]
    intentional : bool, optional
        True for the owner's own off-grid test, False for a real outage, None
        when the source does not say.
    source : str, optional
        The device that reported it (its configured name).
    disturbance : str, optional
        For ``grid_fault``: what the inverter saw, one of :data:`DISTURBANCE_KINDS`
        ("" when not known).
    value : float, optional
        For ``grid_fault``: the magnitude the entry logged (96.0 for an under-voltage
        of 96 V), None when it logged none. [unit]
    unit : str, optional
        The unit of ``value``: ``"V"`` or ``"Hz"`` ("" when there is no value).
    """

    time_ms: int
    kind: str
    name: str
    duration_ms: int | None = None
    intentional: bool | None = None
    source: str = ""
    disturbance: str = ""
    value: float | None = None
    unit: str = ""

    def __post_init__(self) -> None:
        if self.kind not in EVIDENCE_KINDS:
            raise ValueError(f"evidence kind {self.kind!r}; expected one of {', '.join(EVIDENCE_KINDS)}")
        if self.duration_ms is not None and self.duration_ms < 0:
            raise ValueError(f"evidence duration_ms {self.duration_ms} < 0")
        if self.disturbance and self.disturbance not in DISTURBANCE_KINDS:
            raise ValueError(f"disturbance {self.disturbance!r}; expected one of {', '.join(DISTURBANCE_KINDS)}")

    @property
    def label(self) -> str:
        """How the evidence is named in an outage's evidence list (``kind:name``)."""
        return f"{self.kind}:{self.name}" if self.name else self.kind

    @property
    def off_grid(self) -> bool:
        """For ``island_status``: whether the new status is off-grid."""
        return self.name.lower().startswith("off_grid")
