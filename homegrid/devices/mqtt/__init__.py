"""MQTT: the broker connection shared by the meter input and the publisher.

A :class:`MqttLink` is one paho client on its own network thread (paho's
``loop_start``). It connects in the background, reconnects forever with an
exponential delay when the broker goes away, and never blocks or raises into
the caller for a broker's fault: :attr:`MqttLink.connected` and
:meth:`MqttLink.status` say how it is doing. Passwords are never logged or
shown in a ``repr``.

The meter input is :class:`MqttMeter` (``homegrid.devices.mqtt.meter``); the
publisher is :class:`homegrid.api.mqtt.MqttPublisher`.
"""

from __future__ import annotations

import logging
import re
import secrets
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode

__all__ = ["MeterTopic", "MqttBroker", "MqttLink", "MqttMeter", "Will", "check_topic"]

log = logging.getLogger(__name__)

#: At most this many QoS>0 messages wait in paho's memory for the broker; more are refused, not queued.
MAX_QUEUED = 500


def check_topic(topic: str, what: str = "topic") -> str:
    """Check a topic to publish to or subscribe to exactly (no wildcards).

    Raises
    ------
    ValueError
        Empty, with a wildcard (``+``, ``#``) or a NUL, or longer than MQTT allows.
    """
    if not isinstance(topic, str) or not topic:
        raise ValueError(f"{what} must be a non-empty string, got {topic!r}")
    if "+" in topic or "#" in topic:
        raise ValueError(f"{what} {topic!r} has a wildcard (+ or #); name one exact topic")
    if "\0" in topic:
        raise ValueError(f"{what} {topic!r} contains a NUL character")
    if len(topic.encode()) > 65535:
        raise ValueError(f"{what} is longer than MQTT's 65535 bytes")
    return topic


@dataclass(frozen=True)
class MqttBroker:
    """Where the broker is and who we are to it.

    Parameters
    ----------
    host : str
        Host name or address of the broker.
    port : int
        TCP port (1883 for plain MQTT).
    username, password : str, optional
        Credentials; the password is never logged and not part of ``repr``.
    keepalive_s : int
        MQTT keep-alive [s]: a silent connection is declared dead after 1.5 times this.
    reconnect_min_s, reconnect_max_s : float
        The reconnect delay starts at the minimum and doubles up to the maximum [s].
    connect_timeout_s : float
        How long one TCP connection attempt may take [s].
    """

    host: str = "127.0.0.1"
    port: int = 1883
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    keepalive_s: int = 30
    reconnect_min_s: float = 1.0
    reconnect_max_s: float = 60.0
    connect_timeout_s: float = 5.0

    def __post_init__(self) -> None:
        if not isinstance(self.host, str) or not self.host:
            raise ValueError(f"MQTT broker host must be a non-empty string, got {self.host!r}")
        if not 0 < self.port < 65536:
            raise ValueError(f"MQTT broker port must be 1..65535, got {self.port}")
        if self.password is not None and self.username is None:
            raise ValueError("MQTT password given without a username")
        if self.keepalive_s < 5:
            raise ValueError(f"MQTT keepalive_s must be at least 5, got {self.keepalive_s}")
        if not 0 < self.reconnect_min_s <= self.reconnect_max_s:
            raise ValueError("MQTT reconnect delays need 0 < reconnect_min_s <= reconnect_max_s")
        if self.connect_timeout_s <= 0:
            raise ValueError("MQTT connect_timeout_s must be positive")

    @property
    def address(self) -> str:
        """``host:port``, for messages."""
        return f"{self.host}:{self.port}"


@dataclass(frozen=True)
class Will:
    """The Last Will the broker publishes for us when we vanish without disconnecting."""

    topic: str
    payload: str
    qos: int = 1
    retain: bool = True


def _now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


class MqttLink:
    """One paho client on its own thread, connecting and reconnecting in the background.

    Parameters
    ----------
    broker : MqttBroker
        Where to connect.
    client_id : str, optional
        MQTT client id; None makes ``homegrid-<role>-<random>``. Two clients with the
        same id throw each other off the broker, so give each link its own.
    role : str
        What this link is for, in log messages and the default client id.
    on_connect : callable, optional
        Called on the network thread after every successful (re)connect, with this link:
        subscribe and publish the announcements there. Its exceptions are logged.
    on_message : callable, optional
        Called on the network thread with each received ``paho.MQTTMessage``; its exceptions
        are logged, never allowed to stop the network thread.
    will : Will, optional
        Last Will set on every connect.
    """

    def __init__(
        self,
        broker: MqttBroker,
        client_id: str | None = None,
        *,
        role: str = "client",
        on_connect: Callable[[MqttLink], None] | None = None,
        on_message: Callable[[paho.MQTTMessage], None] | None = None,
        will: Will | None = None,
    ) -> None:
        self.broker = broker
        self.role = role
        self.client_id = client_id or f"homegrid-{re.sub(r'[^A-Za-z0-9_-]+', '-', role)}-{secrets.token_hex(4)}"
        self._on_connect = on_connect
        self._on_message = on_message
        self._connected = threading.Event()
        self._ready = threading.Event()  # connected and every subscription acknowledged
        self._pending_subscriptions: set[int] = set()
        self._lock = threading.Lock()
        self._started = False
        self._stopping = False
        self._closed = False
        self._failing = False  # a failure was logged at WARNING; the next ones go to DEBUG
        self.connects = 0
        self.disconnects = 0
        self.connected_since: str | None = None
        self.last_error: str | None = None

        c = paho.Client(CallbackAPIVersion.VERSION2, client_id=self.client_id, protocol=paho.MQTTv311,
                        clean_session=True)
        # paho types the delays int; it only compares and multiplies them, so seconds as floats work
        c.reconnect_delay_set(broker.reconnect_min_s, broker.reconnect_max_s)  # type: ignore[arg-type]
        c.connect_timeout = broker.connect_timeout_s
        c.max_queued_messages_set(MAX_QUEUED)
        if broker.username is not None:
            c.username_pw_set(broker.username, broker.password)
        if will is not None:
            c.will_set(will.topic, will.payload, qos=will.qos, retain=will.retain)
        c.on_connect = self._handle_connect
        c.on_connect_fail = self._handle_connect_fail
        c.on_disconnect = self._handle_disconnect
        c.on_message = self._handle_message
        c.on_subscribe = self._handle_subscribe
        self.client = c

    def __repr__(self) -> str:
        state = "connected" if self.connected else "not connected"
        return f"MqttLink({self.role}, {self.client_id!r} at {self.broker.address}, {state})"

    # --- life cycle ---------------------------------------------------------------------------

    def start(self) -> None:
        """Start connecting in the background; returns at once.

        Calling it again, or after :meth:`stop`, does nothing: a stopped link stays stopped.
        """
        with self._lock:
            if self._started or self._closed:
                return
            self._started = True
        self.client.connect_async(self.broker.host, self.broker.port, keepalive=self.broker.keepalive_s)
        self.client.loop_start()
        log.info("MQTT %s: connecting to %s as %r", self.role, self.broker.address, self.client_id)

    def stop(self, before_disconnect: Callable[[], None] | None = None) -> None:
        """Disconnect cleanly (no Last Will) and end the network thread.

        Blocks until the thread ends: at most about a second, or the connect timeout
        when a connection attempt is under way.

        Parameters
        ----------
        before_disconnect : callable, optional
            Run while still connected, e.g. to publish a last message.
        """
        with self._lock:
            self._closed = True
            if not self._started or self._stopping:
                return
            self._stopping = True
        if before_disconnect is not None and self.connected:
            try:
                before_disconnect()
            except Exception:  # a goodbye that fails must not keep the hub from stopping
                log.exception("MQTT %s: failed while saying goodbye", self.role)
        self.client.disconnect()
        self.client.loop_stop()
        # paho's loop_start opens a loopback socket pair to wake its thread and leaves it open after loop_stop
        # (closed only when the client is collected): close it now that the thread has ended, so a stopped link
        # holds no descriptors (a collection that came later warned of them as unclosed sockets)
        reset = getattr(self.client, "_reset_sockets", None)
        if callable(reset):
            reset(sockpair_only=True)
        self._connected.clear()
        self._ready.clear()
        log.info("MQTT %s: disconnected from %s", self.role, self.broker.address)

    # --- state --------------------------------------------------------------------------------

    @property
    def closed(self) -> bool:
        """True once :meth:`stop` was called."""
        return self._closed

    @property
    def connected(self) -> bool:
        """True while the broker has accepted our connection."""
        return self._connected.is_set()

    def wait_connected(self, timeout: float) -> bool:
        """Block until connected or ``timeout`` [s] passed; True when connected."""
        return self._connected.wait(timeout)

    def wait_ready(self, timeout: float) -> bool:
        """Block until connected with every subscription acknowledged, or ``timeout`` [s] passed."""
        return self._ready.wait(timeout)

    def status(self) -> dict[str, Any]:
        """Connection state for the hub's health report (no credentials)."""
        return {
            "broker": self.broker.address,
            "client_id": self.client_id,
            "connected": self.connected,
            "connected_since": self.connected_since,
            "connects": self.connects,
            "disconnects": self.disconnects,
            "last_error": self.last_error,
        }

    # --- traffic ------------------------------------------------------------------------------

    def publish(self, topic: str, payload: str | bytes, qos: int = 0, retain: bool = False) -> bool:
        """Hand one message to the network thread; never blocks.

        Returns False when it was dropped: not connected, or too many messages waiting.
        """
        if not self.connected:
            return False
        info = self.client.publish(topic, payload, qos=qos, retain=retain)
        return info.rc == MQTTErrorCode.MQTT_ERR_SUCCESS

    def subscribe(self, topics: Iterable[str], qos: int = 0) -> None:
        """Subscribe to exact topics; call it from ``on_connect`` (sessions are clean)."""
        wanted = [(t, qos) for t in topics]
        if wanted:
            rc, mid = self.client.subscribe(wanted)
            if rc == MQTTErrorCode.MQTT_ERR_SUCCESS and mid is not None:
                with self._lock:
                    self._pending_subscriptions.add(mid)

    # --- paho callbacks (network thread) ------------------------------------------------------

    def _fail(self, message: str) -> None:
        self.last_error = f"{_now_iso()}: {message}"
        level = logging.DEBUG if self._failing else logging.WARNING
        self._failing = True
        log.log(level, "MQTT %s: %s; retrying in the background", self.role, message)

    def _handle_connect(self, client: paho.Client, userdata: Any, flags: Any, reason: Any, properties: Any) -> None:
        if reason.is_failure:
            self._fail(f"{self.broker.address} refused the connection: {reason}")
            return
        self.connects += 1
        self.connected_since = _now_iso()
        self._failing = False
        with self._lock:
            self._pending_subscriptions.clear()
        self._connected.set()
        log.info("MQTT %s: connected to %s", self.role, self.broker.address)
        if self._on_connect is not None:
            try:
                self._on_connect(self)
            except Exception:
                log.exception("MQTT %s: on-connect work failed", self.role)
        with self._lock:
            if not self._pending_subscriptions:
                self._ready.set()

    def _handle_connect_fail(self, client: paho.Client, userdata: Any) -> None:
        self._fail(f"cannot connect to {self.broker.address}")

    def _handle_disconnect(self, client: paho.Client, userdata: Any, flags: Any, reason: Any,
                           properties: Any) -> None:
        was_connected = self._connected.is_set()
        self._connected.clear()
        self._ready.clear()
        self.connected_since = None
        if self._stopping:
            return
        if was_connected:
            self.disconnects += 1
            self._failing = False
            self._fail(f"lost the connection to {self.broker.address} ({reason})")

    def _handle_subscribe(self, client: paho.Client, userdata: Any, mid: int, reasons: Any, properties: Any) -> None:
        refused = [str(r) for r in reasons if getattr(r, "is_failure", False)]
        if refused:
            self._fail(f"{self.broker.address} refused a subscription: {', '.join(refused)}")
        with self._lock:
            self._pending_subscriptions.discard(mid)
            if not self._pending_subscriptions and self._connected.is_set():
                self._ready.set()

    def _handle_message(self, client: paho.Client, userdata: Any, message: paho.MQTTMessage) -> None:
        if self._on_message is None:
            return
        try:
            self._on_message(message)
        except Exception:
            log.exception("MQTT %s: handling a message on %s failed", self.role, message.topic)


from homegrid.devices.mqtt.meter import MeterTopic, MqttMeter  # noqa: E402 (it builds on the link above)
