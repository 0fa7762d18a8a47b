"""The hub's parts as the config sets them, for the running hub and the one-shot commands alike.

``homegrid serve`` (:class:`~homegrid.hub.service.Hub`) and ``homegrid import``, ``simulate``, ``outages`` and
``quarantine-future`` record readings and detect outages with the same settings; they are read here, once.
"""

from __future__ import annotations

from homegrid.config import Config
from homegrid.hub.notify import Notifier
from homegrid.hub.outages import OutageTracker
from homegrid.hub.recorder import Recorder
from homegrid.store import Store

__all__ = ["OUTAGE_GAP_MS", "outage_tracker_for", "recorder_for"]

OUTAGE_GAP_MS = 30_000  # readings further apart: nobody was looking (the tracker widens it for sparse data)


def recorder_for(config: Config, store: Store) -> Recorder:
    """The recorder of readings into ``store``, in the site's zone, with the configured longest gap."""
    return Recorder(store, config.site.tz, config.accounting.max_gap_s)


def outage_tracker_for(config: Config, store: Store, *, notifier: Notifier | None = None,
                       writer: bool = True) -> OutageTracker:
    """The outage detector over ``store`` with the configured merge gap (``writer=False``: read-only)."""
    return OutageTracker(store, config.site.tz, max_gap_ms=OUTAGE_GAP_MS,
                         merge_gap_ms=round(config.outages.merge_gap_s * 1000), notifier=notifier, writer=writer)
