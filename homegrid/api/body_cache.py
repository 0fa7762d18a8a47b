"""Answers that cannot change until the store's sealed data do: encoded bodies kept in memory by a key, the least
recently used dropped first once they hold more than a number of bytes (:class:`BodyCache`), and the HTTP
validators that go with them: a strong ETag per key (:func:`entity_tag`) and ``If-None-Match`` (:func:`matches`).

The key names everything the body is made of (the query, the fields, the store's generation, homegrid's version
and the body's format), so an entry is never wrong, only unused once the generation moves on; nothing is evicted
on purpose. A gzip-coded body is a different representation of the same entity: its ETag is the identity one with
``-gzip`` added (as Apache does; a strong ETag names one sequence of bytes), and either matches in ``If-None-Match``.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Hashable

__all__ = ["GZIP_SUFFIX", "BodyCache", "entity_tag", "matches"]

GZIP_SUFFIX = "-gzip"


def entity_tag(key: Hashable) -> str:
    """The opaque tag of a key (24 hex digits, without quotes): the same key gives the same tag in any process."""
    return hashlib.blake2b(repr(key).encode(), digest_size=12).hexdigest()


def matches(if_none_match: str | None, tag: str) -> bool:
    """Whether an ``If-None-Match`` header names ``tag`` (either coding of it; weak comparison, as RFC 9110 asks
    for this header) or is ``*``."""
    if not if_none_match:
        return False
    for item in if_none_match.split(","):
        item = item.strip()
        if item == "*":
            return True
        if item.removeprefix("W/").strip('"').removesuffix(GZIP_SUFFIX) == tag:
            return True
    return False


class BodyCache:
    """Bodies [bytes] by key, at most ``max_bytes`` of them in all (a body larger than that is not kept);
    safe to use from the API's request threads at once."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self._bodies: OrderedDict[Hashable, bytes] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    @property
    def size(self) -> int:
        """Bytes held now."""
        return self._bytes

    def __len__(self) -> int:
        return len(self._bodies)

    def get(self, key: Hashable) -> bytes | None:
        """The body kept for ``key`` (now the most recently used), or None."""
        with self._lock:
            body = self._bodies.get(key)
            if body is not None:
                self._bodies.move_to_end(key)
            return body

    def put(self, key: Hashable, body: bytes) -> None:
        """Keep ``body`` for ``key``, dropping the least recently used bodies until all fit."""
        if len(body) > self.max_bytes:
            return
        with self._lock:
            old = self._bodies.pop(key, None)
            if old is not None:
                self._bytes -= len(old)
            self._bodies[key] = body
            self._bytes += len(body)
            while self._bytes > self.max_bytes:
                _, dropped = self._bodies.popitem(last=False)
                self._bytes -= len(dropped)
