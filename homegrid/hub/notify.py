"""Tell the owner when an outage starts and ends: a command, a webhook, MQTT.

Every channel is best effort and runs off the hub's loop: a hook that hangs, fails or
is missing is logged and counted, and never delays or stops recording.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import threading
import urllib.request
from typing import Any, Protocol

__all__ = ["Notifier"]

log = logging.getLogger(__name__)

HOOK_TIMEOUT_S = 30.0


class EventPublisher(Protocol):
    def publish_event(self, kind: str, payload: dict[str, Any]) -> bool: ...


class Notifier:
    """Sends ``outage_started`` / ``outage_ended`` with the event's JSON to each configured channel.

    Parameters
    ----------
    command : str
        A shell command run with the event as JSON on stdin and ``HOMEGRID_EVENT`` set to
        ``outage_started`` or ``outage_ended`` (empty: none).
    url : str
        A webhook POSTed ``{"event": kind, "outage": {...}}`` as JSON (empty: none).
    mqtt : EventPublisher, optional
        Publishes to ``<topic_prefix>/<site>/event/<kind>``.
    """

    def __init__(self, command: str = "", url: str = "", mqtt: EventPublisher | None = None) -> None:
        self.command = command
        self.url = url
        self.mqtt = mqtt
        self.sent = 0
        self.failures = 0
        self.last_failure: str | None = None
        self._threads: list[threading.Thread] = []

    def notify(self, kind: str, outage: dict[str, Any]) -> None:
        """Send one event on every channel; returns at once."""
        body = {"event": kind, "outage": outage}
        if self.mqtt is not None:
            self._guard("mqtt", lambda: self.mqtt.publish_event(kind, body))
        hooks = [("command", self._run_command)] if self.command else []
        hooks += [("webhook", self._post)] if self.url else []
        for name, fn in hooks:
            t = threading.Thread(target=self._guard, args=(name, lambda f=fn: f(kind, body)), daemon=True)
            t.start()
            self._threads = [x for x in self._threads if x.is_alive()] + [t]

    def wait(self, timeout: float = HOOK_TIMEOUT_S) -> None:
        """Wait for running hooks (tests, shutdown)."""
        for t in list(self._threads):
            t.join(timeout)

    def _guard(self, channel: str, fn: Any) -> None:
        try:
            ok = fn()
        except Exception as exc:  # a hook must never take the hub down
            ok = False
            self.last_failure = f"{channel}: {type(exc).__name__}: {exc}"
        else:
            if ok is False:
                self.last_failure = f"{channel}: not delivered"
        if ok is False:
            self.failures += 1
            log.warning("outage notification failed (%s)", self.last_failure)
        else:
            self.sent += 1

    def _run_command(self, kind: str, body: dict[str, Any]) -> bool:
        result = subprocess.run(
            self.command, shell=True, input=json.dumps(body).encode(), capture_output=True,
            timeout=HOOK_TIMEOUT_S, env={**os.environ, "HOMEGRID_EVENT": kind}, check=False,
        )
        if result.returncode != 0:
            raise RuntimeError(f"exit code {result.returncode}: {result.stderr.decode(errors='replace')[:200]}")
        return True

    def _post(self, kind: str, body: dict[str, Any]) -> bool:
        request = urllib.request.Request(
            self.url, data=json.dumps(body).encode(), method="POST",
            headers={"Content-Type": "application/json", "User-Agent": "homegrid"},
        )
        with urllib.request.urlopen(request, timeout=HOOK_TIMEOUT_S) as reply:
            status: int = reply.status
            return 200 <= status < 300

    def status(self) -> dict[str, Any]:
        return {"sent": self.sent, "failures": self.failures, "last_failure": self.last_failure}
