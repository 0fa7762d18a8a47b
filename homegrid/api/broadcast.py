"""One watcher of the newest reading for every live stream.

Each ``/api/v1/stream`` client used to look for a newer reading every second on its own, so 50
open tabs cost 50 checks a second. A :class:`LiveBroadcast` runs a single check loop while anyone
watches, builds each event once, and wakes every stream when it changes.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

__all__ = ["KEEPALIVE_EVENT", "LiveBroadcast"]

KEEPALIVE_EVENT = ": keep-alive\n\n"


class LiveBroadcast:
    """Server-sent events of the newest reading, shared by every stream.

    Parameters
    ----------
    newest_time : callable
        The time of the newest reading (cheap; ``None`` when there is none).
    build_event : callable
        The event text for the newest reading (called once per new reading).
    check_s : float
        How often the one loop looks for a newer reading. [s]
    keepalive_s : float
        A comment is sent to a quiet stream this often, so proxies keep it open. [s]
    """

    def __init__(self, newest_time: Callable[[], str | None], build_event: Callable[[], str],
                 check_s: float = 1.0, keepalive_s: float = 15.0) -> None:
        self.newest_time = newest_time
        self.build_event = build_event
        self.check_s = check_s
        self.keepalive_s = keepalive_s
        self.watchers = 0
        self._time: str | None = None
        self._event: str | None = None
        self._seq = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._tick: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None

    def current(self) -> tuple[int, str]:
        """The newest event and its sequence number (built now if the reading changed)."""
        newest = self.newest_time()
        if self._event is None or newest != self._time:
            self._time, self._event = newest, self.build_event()
            self._seq += 1
            if self._tick is not None:
                self._tick.set()
                self._tick = asyncio.Event()
        return self._seq, self._event

    def _attach(self) -> asyncio.Event:
        # asyncio primitives belong to one loop; a server has one, a test client may start several
        loop = asyncio.get_running_loop()
        if loop is not self._loop or self._tick is None:
            self._loop, self._tick, self._task = loop, asyncio.Event(), None
        if self._task is None or self._task.done():
            self._task = loop.create_task(self._watch())
        return self._tick

    async def _watch(self) -> None:
        while self.watchers > 0:
            await asyncio.sleep(self.check_s)
            self.current()

    async def events(self, max_events: int | None = None) -> AsyncIterator[str]:
        """The stream of one client: the newest event now, then each new one, keep-alives between."""
        self.watchers += 1
        try:
            self._attach()
            sent_seq, sent = 0, 0
            while max_events is None or sent < max_events:
                tick = self._tick
                seq, event = self.current()
                if seq != sent_seq:
                    sent_seq, sent = seq, sent + 1
                    yield event
                    continue
                assert tick is not None
                try:
                    await asyncio.wait_for(tick.wait(), timeout=self.keepalive_s)
                except TimeoutError:
                    yield KEEPALIVE_EVENT
        finally:
            self.watchers -= 1
