"""Warnings that repeat every poll, said once an hour: a hub left running for years must not fill its disk
with the same line (a device that sends NaN for one field on every poll, a clock that went back a day)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Hashable

__all__ = ["ThrottledWarning"]


class ThrottledWarning:
    """Log a warning per key at most once per ``period_s``; the ones held back go to DEBUG and are counted
    in the next warning of that key.

    Parameters
    ----------
    logger : logging.Logger
    period_s : float
        Least time between two warnings of one key. [s]
    clock : callable, optional
        Monotonic seconds (for tests).
    """

    def __init__(self, logger: logging.Logger, period_s: float = 3600.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.logger = logger
        self.period_s = period_s
        self.clock = clock
        self._last: dict[Hashable, float] = {}
        self._held: dict[Hashable, int] = {}

    def warn(self, key: Hashable, message: str, *args: object) -> bool:
        """Warn now, or count it as held back; True when it was logged as a warning."""
        now = self.clock()
        last = self._last.get(key)
        if last is not None and now - last < self.period_s:
            self._held[key] = self._held.get(key, 0) + 1
            self.logger.debug(message, *args)
            return False
        held = self._held.pop(key, 0)
        if held:
            message += " (%d more like it since the last warning, logged at DEBUG)"
            args = (*args, held)
        self._last[key] = now
        self.logger.warning(message, *args)
        return True
