"""Waiting in tests: on a condition, with a deadline, never for a fixed time.

``wait_for(ready, timeout=..., what=...)`` calls ``ready`` until it returns something truthy and returns that,
or fails with an ``AssertionError`` naming what it waited for once ``timeout`` seconds have passed. The only
sleeps are the ``interval`` between two looks. A test that asserts that something does *not* happen for a
while (or a subprocess script that must stay alive) sleeps on purpose, and says so beside its sleep.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")

#: How long a test waits for something that should come at once (a thread, a socket, a subprocess's line).
WAIT_S = 10.0


def _failure(what: str | Callable[[], str], timeout: float) -> AssertionError:
    said = what() if callable(what) else what
    return AssertionError(f"not within {timeout} s: {said or 'the condition did not hold'}")


def wait_for(ready: Callable[[], T], *, timeout: float = WAIT_S, interval: float = 0.02,
             what: str | Callable[[], str] = "",
             retry_on: tuple[type[BaseException], ...] = ()) -> T:
    """``ready()``'s first truthy value, looked for every ``interval`` s for up to ``timeout`` s.

    ``retry_on``: exceptions of ``ready`` that mean "not yet" (a refused connection); others propagate.
    ``what`` (or a function giving it, evaluated on failure) says what was waited for.
    """
    deadline = time.monotonic() + timeout
    while True:
        try:
            value: T | None = ready()
        except retry_on:
            value = None
        if value:
            return value
        if time.monotonic() >= deadline:
            raise _failure(what, timeout)
        time.sleep(interval)


async def wait_for_async(ready: Callable[[], T | Awaitable[T]], *, timeout: float = WAIT_S, interval: float = 0.02,
                         what: str | Callable[[], str] = "") -> T:
    """``wait_for`` inside an event loop: ``ready`` (a function, or a coroutine function) is looked at every
    ``interval`` s, giving the loop's other tasks their turn in between."""
    deadline = time.monotonic() + timeout
    while True:
        value = ready()
        if isinstance(value, Awaitable):
            value = await value
        if value:
            return value
        if time.monotonic() >= deadline:
            raise _failure(what, timeout)
        await asyncio.sleep(interval)
