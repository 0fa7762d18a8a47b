"""Decisions about the battery: storm mode (raise the backup reserve ahead of severe weather)."""

from homegrid.planner.storm import (
    DEFAULT_EVENTS,
    AlertMemo,
    Decision,
    ReserveControl,
    StormPolicy,
    StormState,
    StormWatch,
    decide,
    load_state,
    qualifying_alerts,
    save_state,
)

__all__ = [
    "DEFAULT_EVENTS",
    "AlertMemo",
    "Decision",
    "ReserveControl",
    "StormPolicy",
    "StormState",
    "StormWatch",
    "decide",
    "load_state",
    "qualifying_alerts",
    "save_state",
]
