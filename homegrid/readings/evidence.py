"""Evidence of grid events that devices report with their own timestamps (not samples of a quantity)."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["GridEvidence"]


@dataclass(frozen=True)
class GridEvidence:
    """One piece of evidence of a grid event with its own time: a gateway fault-log entry, a cloud
    backup event, an island-status change. ``duration_ms``/``intentional`` where the source says."""

    time_ms: int
    source: str
    kind: str
    name: str
    duration_ms: int | None = None
    intentional: bool | None = None
