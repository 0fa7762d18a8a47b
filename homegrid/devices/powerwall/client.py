"""The gateway client over ``pypowerwall``: fresh replies, files kept in ``auth_dir``, clear errors, lazy reconnect.

:func:`connect_gateway` returns a :class:`PowerwallClient`, the
:class:`~homegrid.devices.powerwall.adapter.GatewayClient` that
:class:`~homegrid.devices.powerwall.adapter.PowerwallGateway` polls. It owns one
``pypowerwall.Powerwall`` object and rebuilds it when needed, so a hub started
while the gateway is off recovers by itself once the gateway answers.

What pypowerwall 0.22 does, and what this module does about it
----------------------------------------------------------------
- **Connect makes no request in local mode.** ``Powerwall(...)`` builds a
  ``requests.Session`` and reads the cookie cache file; it logs in only when the
  file exists but holds no cookies. The first GET is sent without cookies, gets
  401, and *then* pypowerwall logs in (``POST /api/login/Basic``) and repeats the
  GET. So a gateway that is down, or a wrong password, shows at the first poll,
  never at construction: :func:`connect_gateway` is lazy by default, and
  ``check=True`` makes one real read to fail early.
- **A failed connect does not raise.** ``Powerwall(...)`` logs it and keeps a
  half-made backend (``client`` is set before it authenticates), whose calls then
  fail oddly. We record what ``connect()`` returned (a subclass) and raise a
  :class:`DeviceError` with pypowerwall's reason; the next poll builds afresh.
- **Failover.** By default a failed local connect falls back to the Fleet API
  and then to the Tesla cloud (reading or writing token files in the current
  directory). We pass ``failover=False``: only the configured mode is tried.
- **Reply cache.** ``pwcacheexpire`` (default 5 s) keeps each endpoint's reply.
  With 0 the positive cache is never used (``age < 0`` is false), but the
  *negative* cache still is: a 404 or a 401 after a failed re-login silences the
  endpoint for 600 s, a 503 for 300 s. In local mode we use 0 and
  ``poll(force=True)``, which skips both. A 429 starts a 300 s cooldown during
  which every call returns None, ``force`` or not; we report it as such.
- **Errors are log lines.** Timeouts, refused connections, HTTP 5xx, 4xx and
  undecodable JSON all make ``poll`` log at ERROR and return None; a body not
  labelled JSON is returned as a string. Only a failed login raises
  (``LoginError``, or ``ConnectionError`` when the login cannot be sent). We
  catch pypowerwall's WARNING+ records during our own calls (thread-locally) and
  turn them into the :class:`DeviceError` text instead of a second log line.
- **Files.** The auth cookie is cached in ``cachefile`` (default ``.powerwall``
  in the current directory, written 0600), the cloud token and site id in
  ``authpath`` (``.pypowerwall.auth``, ``.pypowerwall.site``; Fleet API:
  ``.pypowerwall.fleetapi``), default the current directory. We point both into
  ``auth_dir``, one cookie file per gateway (``powerwall-HOST_PORT.auth``), or
  into a private temporary directory when ``auth_dir`` is None (local mode).
- **The password** is sent only in the login POST body and is not logged by
  pypowerwall (its debug line says ``password = [set]``). We redact it from every
  message we raise all the same.
- **Warnings.** ``import pypowerwall`` calls ``urllib3.disable_warnings()``: every
  urllib3 warning of the whole process is silenced, InsecureRequestWarning
  (``verify=False`` is hard-coded) included. We add nothing. Under pytest's
  ``filterwarnings = error`` the test's own filter wins and the warning becomes
  an exception inside ``requests``, so tests must ignore
  ``urllib3.exceptions.InsecureRequestWarning``.
- **Retries.** ``requests`` is used without retries; pypowerwall repeats a GET once
  after a re-login. ``retry_modes=True`` would block forever: not used.

Cloud and Fleet API modes (``mode="cloud"`` / ``"fleetapi"``) need the token
files that ``python -m pypowerwall setup`` (or ``fleetapi``) writes, in
``auth_dir``; only their missing-setup errors can be tested offline. Beware: there
pypowerwall answers ``/api/meters/aggregates`` with **stub energy counters that are
always 0** (:attr:`PowerwallClient.reports_counters` is False), and
``/api/system_status/grid_faults`` with an empty list, and ``/api/system_status`` with a
fixed ``last_toggle_timestamp`` (:attr:`PowerwallClient.reports_toggle_time` is False).
"""

from __future__ import annotations

import contextlib
import logging
import re
import shutil
import tempfile
import threading
import time
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from homegrid.devices.base import DeviceError

__all__ = ["MODES", "PowerwallClient", "connect_gateway"]

log = logging.getLogger(__name__)
T = TypeVar("T")

MODES: tuple[str, ...] = ("local", "cloud", "fleetapi")

#: Cloud modes: one adapter poll reads five endpoints; they share one cloud fetch.
CLOUD_CACHE_S = 2.0

_capture = threading.local()


class _CaptureFilter(logging.Filter):
    """Keeps pypowerwall's WARNING+ records of our own calls (in this thread) instead of logging them."""

    def filter(self, record: logging.LogRecord) -> bool:
        kept: list[str] | None = getattr(_capture, "records", None)
        if kept is None or record.levelno < logging.WARNING:
            return True
        kept.append(record.getMessage())
        return False


_FILTER = _CaptureFilter()


def _install_filter() -> None:
    """Put the capture filter on every pypowerwall logger (records are filtered where they are made)."""
    for name, logger in list(logging.root.manager.loggerDict.items()):
        if name.split(".")[0] == "pypowerwall" and isinstance(logger, logging.Logger) and _FILTER not in logger.filters:
            logger.addFilter(_FILTER)


@contextmanager
def _captured() -> Iterator[list[str]]:
    previous = getattr(_capture, "records", None)
    kept: list[str] = []
    _capture.records = kept
    try:
        yield kept
    finally:
        _capture.records = previous


class _Unreachable(DeviceError):
    """pypowerwall accepted the settings but could not connect (retried at the next poll)."""


def _site_id(site_id: int | str | None) -> int | None:
    if site_id is None or (isinstance(site_id, str) and not site_id.strip()):
        return None
    try:
        return int(site_id)
    except ValueError:
        raise DeviceError(f"powerwall site id {site_id!r} is not a number") from None


class PowerwallClient:
    """A gateway read through ``pypowerwall``, rebuilt when needed; see the module notes.

    Parameters
    ----------
    host : str
        The gateway's address, ``HOST`` or ``HOST:PORT`` (local mode; ignored in cloud modes).
    password : str
        The gateway's customer password (local mode).
    email : str
        Local mode: any address (sent at login); cloud modes: the Tesla account.
    timezone : str
        IANA zone sent at login.
    mode : str
        ``local`` (the gateway's LAN API), ``cloud`` (Tesla owner API) or ``fleetapi``.
    timeout_s : float
        Timeout of each HTTP request [s].
    auth_dir : Path, optional
        Where pypowerwall keeps its cookie / token / site files. None: a private temporary
        directory (local mode only; removed by :meth:`close`).
    site_id : int or str, optional
        The energy site in cloud modes when the account has several.
    cache_s : float, optional
        pypowerwall's reply cache [s]. Default 0 in local mode (every poll reads the gateway),
        :data:`CLOUD_CACHE_S` in cloud modes. Keep it below the poll interval.
    """

    def __init__(self, host: str, password: str, email: str = "", timezone: str = "UTC", *, mode: str = "local",
                 timeout_s: float = 5.0, auth_dir: Path | None = None, site_id: int | str | None = None,
                 cache_s: float | None = None) -> None:
        if mode not in MODES:
            raise DeviceError(f"powerwall mode {mode!r}: expected one of {', '.join(MODES)}")
        if not timeout_s > 0:
            raise DeviceError(f"powerwall timeout {timeout_s!r} s must be > 0")
        self.host = host.strip()
        if mode == "local" and not self.host:
            raise DeviceError("powerwall: local mode needs the gateway's host (HOST or HOST:PORT)")
        if mode != "local" and auth_dir is None:
            raise DeviceError(f"powerwall {mode} mode needs auth_dir: the folder holding the token files "
                              f"that `python -m pypowerwall {'setup' if mode == 'cloud' else 'fleetapi'}` writes")
        self.mode = mode
        self.email = email
        self.timezone = timezone
        self.timeout_s = float(timeout_s)
        self.site_id = _site_id(site_id)
        self.cache_s = float(cache_s) if cache_s is not None else (0.0 if mode == "local" else CLOUD_CACHE_S)
        self._password = password
        self._tmp: str | None = None
        if auth_dir is None:
            self._tmp = tempfile.mkdtemp(prefix="homegrid-powerwall-")
            auth_dir = Path(self._tmp)
            # removed by close(), else when the client is collected or at exit (the adapter never closes it)
            self._cleanup = weakref.finalize(self, shutil.rmtree, self._tmp, True)
        self.auth_dir = Path(auth_dir).expanduser()
        self._pw: Any = None
        self._lock = threading.Lock()
        self.connects = 0  # how many pypowerwall objects were built

    def __repr__(self) -> str:
        return f"PowerwallClient({self.host or self.mode!r}, mode={self.mode!r})"

    @property
    def cookie_file(self) -> Path:
        """pypowerwall's auth cookie cache of this gateway (local mode)."""
        return self.auth_dir / f"powerwall-{re.sub(r'[^A-Za-z0-9.-]', '_', self.host or self.mode)}.auth"

    @property
    def reports_counters(self) -> bool:
        """False in cloud modes, where pypowerwall's aggregates carry stub energy counters fixed at 0."""
        return self.mode == "local"

    @property
    def reports_toggle_time(self) -> bool:
        """False in cloud modes, where pypowerwall's ``/api/system_status`` carries a fixed island toggle time."""
        return self.mode == "local"

    @property
    def connected(self) -> bool:
        """Whether a pypowerwall object is ready (it may still fail at the next request)."""
        return self._pw is not None and self._pw.client is not None

    def _redact(self, text: str) -> str:
        if self._password:
            text = text.replace(self._password, "***")
        return text

    def _build(self) -> Any:
        import pypowerwall  # lazy: a heavy import, with a process-wide side effect
        from pypowerwall.exceptions import PyPowerwallInvalidConfigurationParameter

        # pypowerwall has no types (no py.typed, no stubs): its Powerwall is Any to mypy
        class Powerwall(pypowerwall.Powerwall):  # type: ignore[misc]
            """Remembers what ``connect()`` (called from ``__init__``) returned: pypowerwall only logs it."""

            connect_ok = False

            def connect(self, retry: bool = False) -> bool:
                self.connect_ok = bool(super().connect(retry))
                return self.connect_ok

        _install_filter()
        self.auth_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        local = self.mode == "local"
        with _captured() as said:
            try:
                pw = Powerwall(
                    host=self.host if local else "", password=self._password if local else "", email=self.email,
                    timezone=self.timezone, pwcacheexpire=self.cache_s, timeout=self.timeout_s,
                    cloudmode=not local, fleetapi=self.mode == "fleetapi", siteid=self.site_id,
                    authpath=str(self.auth_dir), cachefile=str(self.cookie_file), authmode="cookie",
                    auto_select=False, retry_modes=False, failover=False,
                )
            except PyPowerwallInvalidConfigurationParameter as exc:
                raise DeviceError(self._redact(f"powerwall: {exc}")) from None
            except Exception as exc:  # a client library raises what it likes
                raise _Unreachable(self._redact(f"{self._where()}: cannot connect: {type(exc).__name__}: {exc}")
                                   ) from exc
        self.connects += 1
        if not pw.connect_ok or pw.client is None:
            # pypowerwall's last line only says that it failed; "Failed to connect using ... mode: ..." says why
            why = [m for m in said if m.startswith("Failed to connect using")] or said or ["no reason given"]
            reason = why[-1]
            session = getattr(pw.client, "session", None)
            if session is not None and hasattr(session, "mount"):
                session.close()
            raise _Unreachable(self._redact(f"{self._where()}: cannot connect: {reason}"))
        return pw

    def _discard(self) -> None:
        pw, self._pw = self._pw, None
        session = getattr(getattr(pw, "client", None), "session", None)
        close = getattr(session, "close", None)
        if close is not None and hasattr(session, "mount"):  # a requests.Session, not the requests module
            close()

    def _where(self) -> str:
        return f"gateway {self.host}" if self.mode == "local" else f"Tesla {self.mode}"

    def poll(self, api: str) -> Any:
        """GET one endpoint, decoded; raise :class:`DeviceError` saying why when nothing usable came back.

        Parameters
        ----------
        api : str
            The local API path, e.g. ``/api/meters/aggregates``.

        Returns
        -------
        Any
            The decoded JSON (or the body as a string when the gateway did not label it JSON).
        """
        reply, said = self.call(lambda pw: pw.poll(api, force=self.cache_s == 0))
        if reply is None:
            cooldown = getattr(getattr(self._pw, "client", None), "pwcooldown", 0) - time.perf_counter()
            if cooldown > 0:
                raise DeviceError(f"{self._where()} rate-limited us (HTTP 429): pypowerwall pauses every request "
                                  f"for {cooldown:.0f} s more")
            reason = said[-1] if said else "no reply"
            raise DeviceError(self._redact(f"{self._where()}: {reason[:400]}"))
        if said:
            log.debug("%s %s: pypowerwall said: %s", self._where(), api, self._redact(" | ".join(said))[:400])
        if isinstance(reply, dict) and set(reply) == {"ERROR"}:  # cloud modes: an endpoint they do not map
            raise DeviceError(self._redact(f"{self._where()}: {reply['ERROR']}"))
        return reply

    def call(self, fn: Callable[[Any], T]) -> tuple[T, list[str]]:
        """Run ``fn(pypowerwall.Powerwall)`` on this client's connection, serialised with the polls.

        The connection is (re)built when needed; what pypowerwall logs meanwhile is captured and
        returned with the result (it reports most failures only there). An exception becomes a
        :class:`DeviceError` without the password, and the next call starts afresh.
        """
        with self._lock:
            if not self.connected:
                self._discard()
                self._pw = self._build()
            pw = self._pw
            with _captured() as said:
                try:
                    result = fn(pw)
                except Exception as exc:
                    from pypowerwall.local.exceptions import LoginError

                    self._discard()  # a failed login, a broken session: start afresh next time
                    if isinstance(exc, LoginError):
                        raise DeviceError(self._redact(f"{self._where()} refused the login: {exc}")) from exc
                    raise DeviceError(self._redact(f"{self._where()}: {type(exc).__name__}: {exc}")) from exc
        return result, list(said)

    def check(self) -> None:
        """Read ``/api/meters/aggregates`` once; raise :class:`DeviceError` when the gateway cannot be read."""
        self.poll("/api/meters/aggregates")

    def close(self) -> None:
        """Close the connections (no logout request) and remove a private temporary ``auth_dir``."""
        with self._lock:
            self._discard()
            if self._tmp is not None:
                self._cleanup()
                self._tmp = None

    def __enter__(self) -> PowerwallClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def connect_gateway(host: str, password: str, email: str = "", timezone: str = "UTC", *, mode: str = "local",
                    timeout_s: float = 5.0, auth_dir: Path | None = None, site_id: int | str | None = None,
                    cache_s: float | None = None, check: bool = False) -> PowerwallClient:
    """A :class:`PowerwallClient` for :class:`~homegrid.devices.powerwall.adapter.PowerwallGateway`.

    Parameters
    ----------
    host, password, email, timezone, mode, timeout_s, auth_dir, site_id, cache_s
        As for :class:`PowerwallClient`: ``host`` is ``HOST`` or ``HOST:PORT``, ``timeout_s`` per
        request [s], ``cache_s`` pypowerwall's reply cache [s].
    check : bool
        False (default): no request now; a gateway that is down shows as a :class:`DeviceError`
        at each poll until it answers, with no restart needed. True: read the gateway once now
        and raise when it cannot be read (down, wrong password, not a gateway).

    Raises
    ------
    DeviceError
        Bad mode, host or settings; with ``check``, a gateway that cannot be read. The message
        names the gateway and the cause, never the password.
    """
    client = PowerwallClient(host, password, email, timezone, mode=mode, timeout_s=timeout_s, auth_dir=auth_dir,
                             site_id=site_id, cache_s=cache_s)
    try:
        if check:
            client.check()
        elif mode == "local":
            with client._lock, contextlib.suppress(_Unreachable):  # retried at the first poll
                client._pw = client._build()  # validates the settings now; in local mode it sends nothing
    except DeviceError:
        client.close()
        raise
    return client
