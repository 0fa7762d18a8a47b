"""Keeps the hub's long-running tasks running: one that ends or raises while the hub is not stopping is
logged, counted and started again after a pause, so that no poller or loop can stop for good in silence.

The pause grows while a task keeps crashing (1 s, 2 s, 4 s ... up to a minute) so that a crash loop does not
spin a core or fill the log; a task that ran for a while before it crashed starts again after the shortest.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from homegrid.hub.poller import describe, wait_or_stop
from homegrid.hub.throttle import ThrottledWarning

__all__ = ["FIRST_DELAY_S", "MAX_DELAY_S", "Supervisor", "TaskRecord"]

log = logging.getLogger(__name__)

FIRST_DELAY_S = 1.0
MAX_DELAY_S = 60.0
STABLE_AFTER_S = 600.0  # a task that ran this long before it ended starts again after FIRST_DELAY_S


@dataclass
class TaskRecord:
    """What the hub's health says about one supervised task."""

    name: str
    restarts: int = 0
    last_crash: str | None = None  # "<time>: <what happened>"

    def as_dict(self) -> dict[str, Any]:
        return {"restarts": self.restarts, "last_crash": self.last_crash}


class Supervisor:
    """Runs coroutines as tasks and starts each again when it ends or raises before ``stopping`` is set.

    Parameters
    ----------
    stopping : asyncio.Event
        Set when the hub stops: a task that ends then is not started again.
    clock : callable
        The current aware time, for the crash records.
    first_delay_s, max_delay_s : float
        The pause before the first restart of a run of crashes, and its cap (it doubles in between). [s]
    """

    def __init__(self, stopping: asyncio.Event, clock: Callable[[], datetime], first_delay_s: float = FIRST_DELAY_S,
                 max_delay_s: float = MAX_DELAY_S) -> None:
        self.stopping = stopping
        self.clock = clock
        self.first_delay_s = first_delay_s
        self.max_delay_s = max_delay_s
        self.records: dict[str, TaskRecord] = {}
        self._errors = ThrottledWarning(log, level=logging.ERROR)

    def start(self, name: str, run: Callable[[], Coroutine[Any, Any, None]],
              on_crash: Callable[[int, str], None] | None = None) -> asyncio.Task[None]:
        """Run ``run()`` as a supervised task named ``name``.

        ``on_crash(restarts, last_crash)`` is told of each restart (a device's health shows it).
        """
        record = self.records.setdefault(name, TaskRecord(name))
        return asyncio.create_task(self._keep(record, run, on_crash), name=f"homegrid {name}")

    def status(self) -> dict[str, dict[str, Any]]:
        """Each task's restarts and last crash."""
        return {name: r.as_dict() for name, r in self.records.items()}

    async def _keep(self, record: TaskRecord, run: Callable[[], Coroutine[Any, Any, None]],
                    on_crash: Callable[[int, str], None] | None) -> None:
        quick = 0  # crashes in a row, each soon after its start
        while not self.stopping.is_set():
            began = time.monotonic()
            crash: Exception | None = None
            try:
                await run()
            except Exception as exc:  # CancelledError (the hub cancelling it) is no Exception: it ends the task
                crash = exc
            if self.stopping.is_set():
                if crash is not None:
                    log.error("task %s failed while the hub was stopping: %s", record.name, describe(crash),
                              exc_info=crash)
                return
            quick = quick + 1 if time.monotonic() - began < STABLE_AFTER_S else 1
            delay = min(self.max_delay_s, self.first_delay_s * 2 ** min(quick - 1, 16))
            what = "ended" if crash is None else f"crashed ({describe(crash)})"
            record.restarts += 1
            record.last_crash = f"{self.clock().isoformat()}: {what}"
            if on_crash is not None:
                on_crash(record.restarts, record.last_crash)
            self._errors.warn((record.name, what), "task %s %s while the hub was running; started again in %.0f s "
                              "(restart %d)", record.name, what, delay, record.restarts, exc_info=crash)
            await wait_or_stop(self.stopping, delay)
