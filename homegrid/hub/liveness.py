"""Whether a device's figures are live, stale or offline: the rule the API, the app and MQTT share.

- ``live``: its newest reading is recent.
- ``stale``: its newest reading is older than ``STALE_POLLS`` of its poll intervals and at least
  ``STALE_MIN_S`` (or it has given none yet): the figures shown are old and say when they were read.
- ``offline``: its polls have failed for ``OFFLINE_AFTER_S`` (``[server] offline_after_s``) or more.

Home Assistant marks such an entity ``unavailable``; the Tesla app says "last updated".
"""

from __future__ import annotations

from enum import StrEnum

__all__ = ["OFFLINE_AFTER_S", "STALE_MIN_S", "STALE_POLLS", "DeviceState", "device_state", "is_stale"]

#: A reading older than this many poll intervals is stale ...
STALE_POLLS = 3
#: ... and at least this old [s] (a fast poll's jitter is no staleness).
STALE_MIN_S = 15.0
#: Polls failing for this long make a device offline [s] (the default of ``[server] offline_after_s``).
OFFLINE_AFTER_S = 300.0


class DeviceState(StrEnum):
    LIVE = "live"
    STALE = "stale"
    OFFLINE = "offline"


def is_stale(age_s: float, interval_s: float) -> bool:
    """Whether a reading ``age_s`` old is stale: older than ``STALE_POLLS`` intervals and at least ``STALE_MIN_S``.

    Parameters
    ----------
    age_s : float
        The age of the device's newest reading. [s]
    interval_s : float
        The device's poll interval. [s]
    """
    return age_s > STALE_POLLS * interval_s and age_s >= STALE_MIN_S


def device_state(now_ms: int, last_seen_ms: int | None, failing_since_ms: int | None, interval_s: float,
                 offline_after_s: float = OFFLINE_AFTER_S) -> DeviceState:
    """The state of one device now.

    Parameters
    ----------
    now_ms : int
        Now. [ms UTC]
    last_seen_ms : int or None
        The time of its newest reading; None when it has given none. [ms UTC]
    failing_since_ms : int or None
        The start of its current run of failed polls; None while its polls succeed. [ms UTC]
    interval_s : float
        Its poll interval. [s]
    offline_after_s : float, optional
        How long polls must fail to make it offline. [s]
    """
    if failing_since_ms is not None and now_ms - failing_since_ms >= offline_after_s * 1000.0:
        return DeviceState.OFFLINE
    if last_seen_ms is None or is_stale((now_ms - last_seen_ms) / 1000.0, interval_s):
        return DeviceState.STALE
    return DeviceState.LIVE
