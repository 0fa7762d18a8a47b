"""Warnings that repeat every poll, said once an hour: a hub left running for years must not fill its disk
with the same line (a device that sends NaN for one field on every poll, a clock that went back a day)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Hashable

__all__ = ["ThrottledWarning"]

MAX_KEYS = 1024  # more distinct keys than this: the ones whose period is over are forgotten


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
    level : int
        The level of the lines logged (WARNING; ERROR for a crash).
    """

    def __init__(self, logger: logging.Logger, period_s: float = 3600.0,
                 clock: Callable[[], float] = time.monotonic, level: int = logging.WARNING) -> None:
        self.logger = logger
        self.period_s = period_s
        self.clock = clock
        self.level = level
        self._last: dict[Hashable, float] = {}
        self._held: dict[Hashable, int] = {}

    def warn(self, key: Hashable, message: str, *args: object, exc_info: BaseException | None = None) -> bool:
        """Warn now, or count it as held back; True when it was logged at the warning's level.

        ``exc_info`` (an exception) adds its traceback to the lines logged at the warning's level.
        """
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
        if len(self._last) > MAX_KEYS:
            self._forget(now)
        self.logger.log(self.level, message, *args, exc_info=exc_info)
        return True

    def _forget(self, now: float) -> None:
        """Drop the keys whose period is over: messages that name a changing figure must not grow memory."""
        for key in [k for k, t in self._last.items() if now - t >= self.period_s]:
            del self._last[key]
            self._held.pop(key, None)
