"""A fake Tesla Powerwall gateway: the local HTTPS API on loopback, for tests and benchmarks.

Real ``pypowerwall`` logs in to it (``POST /api/login/Basic``, cookie or bearer
token) and reads the endpoints homegrid polls, in the shapes of the real
gateway replies recorded in ``shared/data/powerwall`` (firmware 21.44). The
endpoints are the table :data:`ROUTES`, served by aiohttp's HTTP server; the
physics and the reply bodies are the model's (:mod:`.gateway_model`):

``/api/meters/aggregates``, ``/api/system_status/soe``,
``/api/system_status/grid_status``, ``/api/operation``,
``/api/system_status/grid_faults``, ``/api/system_status``, and ``/api/status``,
``/api/site_info/site_name``, ``/api/sitemaster``, ``/api/logout``.

The model (:class:`GatewayModel`) keeps the powers of a scenario (``normal``
(``day``), ``night``, ``export``, ``outage``), integrates them into the meters'
lifetime counters and the state of energy, and keeps a grid-fault log.

Fault switches (:data:`FAULTS`) are set at run time, for every endpoint or for
one: ``timeout`` holds the request for ``hold_s``, ``http500`` answers 500,
``garbage`` a non-JSON HTML page, ``truncated`` the first half of the JSON body
(labelled JSON), ``shape_change`` an aggregates reply of a firmware that renamed
``instant_power`` and dropped the site counters, ``gone`` stops listening
(connection refused; open connections are cut) until cleared with
:meth:`SimulatedGateway.back`, which listens again on the same port and, like a
rebooted gateway, forgets the login sessions.

All gateways of a :class:`Simulator` share one event loop in one background
thread and one self-signed certificate made at start, so hundreds fit in one
process. From synchronous code::

    with Simulator() as sim:
        gw = sim.add_gateway(password="secret")
        ...  # https://{gw.address}/api/meters/aggregates
        gw.set_scenario("outage")
        gw.set_fault("http500", "/api/system_status/grid_faults")

Benchmarks run ``python -m homegrid.devices.powerwall.simulator --count 200
--base-port 20000``; it prints one ``HOST:PORT`` a line and runs until killed.
Each gateway also answers ``GET /_sim/state`` (the true state and counters),
``POST /_sim/scenario`` (``{"scenario": "outage"}``), ``POST /_sim/blip``
(``{"seconds": 2}``: islanded between two polls), ``POST /_sim/warning``
(``{"kind": "over_voltage", "value": 131}``: a logged warning, the site stays on
the grid) and ``POST /_sim/fault``
(``{"fault": "gone", "endpoint": null, "on": true, "for_s": 10}``) without login.

``/api/system_status`` carries ``last_toggle_timestamp``: the time the site last
left or rejoined the grid (an outage's start, its reconnection after the
transition, both edges of a blip), consistent with the grid status.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import ipaddress
import json
import secrets
import signal
import ssl
import sys
import tempfile
import threading
from collections import Counter
from collections.abc import Callable, Coroutine, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal
from urllib.parse import parse_qs

from aiohttp import web

from homegrid.devices.powerwall.gateway_model import (
    SCENARIOS,
    WARNINGS,
    GatewayModel,
    GatewayState,
    ManualClock,
    Scenario,
)

__all__ = [
    "ENDPOINTS",
    "FAULTS",
    "ROUTES",
    "SCENARIOS",
    "WARNINGS",
    "GatewayModel",
    "GatewayState",
    "ManualClock",
    "Route",
    "Scenario",
    "SimulatedGateway",
    "Simulator",
    "main",
    "running",
]

#: Fault switches; each may be set for all endpoints or for one.
FAULTS: tuple[str, ...] = ("timeout", "http500", "garbage", "truncated", "shape_change", "gone")

#: Endpoints homegrid reads (the first is required, the others optional).
ENDPOINTS: tuple[str, ...] = (
    "/api/meters/aggregates",
    "/api/system_status/soe",
    "/api/system_status/grid_status",
    "/api/operation",
    "/api/system_status/grid_faults",
    "/api/system_status",
)


# -- requests and replies -------------------------------------------------------------------------------------


@dataclass
class _Request:
    """What a route sees of a request (read whole: the gateway's requests are small)."""

    method: str
    path: str
    headers: dict[str, str]  # lower-case names
    body: bytes


@dataclass
class _Response:
    """A reply before it is sent; the fault switches rewrite its body."""

    status: int = 200
    body: bytes = b""
    content_type: str = "application/json"
    cookies: list[str] = field(default_factory=list)

    def to_web(self) -> web.Response:
        response = web.Response(status=self.status, body=self.body or None,
                                content_type=self.content_type if self.body else None,
                                headers={"Cache-Control": "no-cache, no-store"})
        for cookie in self.cookies:  # as the gateway writes them (aiohttp's cookie jar would quote the token)
            response.headers.add("Set-Cookie", cookie)
        return response


def _json(obj: Any, status: int = 200) -> _Response:
    return _Response(status, json.dumps(obj).encode())


def _error(status: int, error: str, message: str) -> _Response:
    return _json({"code": status, "error": error, "message": message}, status)


# -- the routes -----------------------------------------------------------------------------------------------

_Reply = Callable[["SimulatedGateway", _Request], _Response]


@dataclass(frozen=True)
class Route:
    """One endpoint of a simulated gateway.

    ``access``: ``login`` needs a login session (cookie or bearer token) and is subject to the fault
    switches; ``public`` needs none; ``sim`` is the test bench's control of the simulation, outside the
    gateway's API (no login, no faults).
    """

    method: str
    path: str
    reply: _Reply
    access: Literal["login", "public", "sim"] = "login"


def _read(reply: Callable[[GatewayModel], Any]) -> _Reply:
    """A route answering a model's reply as JSON."""
    return lambda gw, _request: _json(reply(gw.model))


def _login(gw: SimulatedGateway, request: _Request) -> _Response:
    if "json" in request.headers.get("content-type", ""):
        try:
            form = json.loads(request.body or b"{}")
        except json.JSONDecodeError:
            return _error(400, "bad request", "Malformed JSON")
        password = str(form.get("password", ""))
    else:
        password = parse_qs(request.body.decode("utf-8", "replace")).get("password", [""])[0]
    if not secrets.compare_digest(password.encode(), gw.password.encode()):
        return _error(401, "bad credentials", "Login Error")
    token = base64.b64encode(secrets.token_bytes(48)).decode()
    gw._open_session(token)
    record = base64.urlsafe_b64encode(b'{"email":"","firstname":"Tesla","lastname":"Energy"}').decode()
    now = datetime.fromtimestamp(gw.model.clock(), UTC).isoformat()
    body = {"email": "", "firstname": "Tesla", "lastname": "Energy", "roles": ["Home_Owner"], "token": token,
            "provider": "Basic", "loginTime": now}
    response = _json(body)
    response.cookies = [f"AuthCookie={token}; Path=/", f"UserRecord={record}; Path=/"]
    return response


def _logout(gw: SimulatedGateway, request: _Request) -> _Response:
    return _Response(204)


def _switches(gw: SimulatedGateway) -> dict[str, list[str]]:
    return {str(k): sorted(v) for k, v in gw.faults().items()}


def _sim_state(gw: SimulatedGateway, request: _Request) -> _Response:
    s = gw.state()
    return _json({"time": s.time, "scenario": s.scenario, "grid_status": s.grid_status, "values": s.values,
                  "faults": list(s.faults), "switches": _switches(gw)})


def _sim_scenario(gw: SimulatedGateway, request: _Request) -> _Response:
    gw.set_scenario(str(json.loads(request.body or b"{}")["scenario"]))
    return _json({"scenario": gw.model.scenario})


def _sim_blip(gw: SimulatedGateway, request: _Request) -> _Response:
    gw.model.blip(float(json.loads(request.body or b"{}").get("seconds", 2.0)))
    return _json({"toggle_time": gw.model.toggle_time()})


def _sim_warning(gw: SimulatedGateway, request: _Request) -> _Response:
    body = json.loads(request.body or b"{}")
    value = body.get("value")
    gw.model.add_warning(str(body["kind"]), None if value is None else float(value))
    return _json({"faults": len(gw.model.grid_faults())})


def _sim_fault(gw: SimulatedGateway, request: _Request) -> _Response:
    body = json.loads(request.body or b"{}")
    fault, endpoint, for_s = body.get("fault"), body.get("endpoint"), body.get("for_s")
    if body.get("on", True):
        gw.set_fault(str(fault), endpoint, for_s=for_s)
    else:
        gw.clear_fault(fault, endpoint)
    return _json({"switches": _switches(gw)})


#: Every endpoint of a simulated gateway. A path not here answers 404 (401 without a login); a path here
#: asked with another method, 405.
ROUTES: tuple[Route, ...] = (
    Route("POST", "/api/login/Basic", _login, "public"),
    Route("GET", "/api/status", _read(GatewayModel.status), "public"),
    Route("GET", "/api/auth/toggle/supported", _read(GatewayModel.auth_toggle_supported), "public"),
    Route("GET", "/api/meters/aggregates", _read(GatewayModel.aggregates)),
    Route("GET", "/api/system_status/soe", _read(GatewayModel.soe)),
    Route("GET", "/api/system_status/grid_status", _read(GatewayModel.grid_status_reply)),
    Route("GET", "/api/operation", _read(GatewayModel.operation)),
    Route("GET", "/api/system_status/grid_faults", _read(GatewayModel.grid_faults)),
    Route("GET", "/api/system_status", _read(GatewayModel.system_status)),
    Route("GET", "/api/site_info/site_name", _read(GatewayModel.site_name)),
    Route("GET", "/api/sitemaster", _read(GatewayModel.sitemaster)),
    Route("GET", "/api/logout", _logout),
    Route("GET", "/_sim/state", _sim_state, "sim"),
    Route("POST", "/_sim/scenario", _sim_scenario, "sim"),
    Route("POST", "/_sim/blip", _sim_blip, "sim"),
    Route("POST", "/_sim/warning", _sim_warning, "sim"),
    Route("POST", "/_sim/fault", _sim_fault, "sim"),
)


def _by_path(routes: Iterable[Route]) -> dict[str, dict[str, Route]]:
    out: dict[str, dict[str, Route]] = {}
    for route in routes:
        out.setdefault(route.path, {})[route.method] = route
    return out


_BY_PATH = _by_path(ROUTES)  # path -> method -> route
_SIM_PREFIX = "/_sim/"


# -- one gateway ----------------------------------------------------------------------------------------------


class SimulatedGateway:
    """One fake gateway listening on ``host:port``; control it from any thread.

    Made by :meth:`Simulator.add_gateway`. :attr:`requests` counts the requests
    of each path (a ``collections.Counter``).
    """

    def __init__(self, sim: Simulator, model: GatewayModel, host: str, port: int, password: str,
                 hold_s: float) -> None:
        self._sim = sim
        self.model = model
        self.host = host
        self.port = port
        self.password = password
        self.hold_s = hold_s
        self.requests: Counter[str] = Counter()
        self.logins = 0
        self._lock = threading.Lock()
        self._faults: dict[str | None, set[str]] = {}
        self._sessions: set[str] = set()
        self._web: web.Server | None = None  # aiohttp's HTTP/1.1 server, made on the loop
        self._listener: asyncio.Server | None = None

    @property
    def address(self) -> str:
        """``HOST:PORT``, as pypowerwall takes it."""
        return f"{self.host}:{self.port}"

    @property
    def listening(self) -> bool:
        return self._listener is not None

    # -- control ----------------------------------------------------------------------------------------

    def set_scenario(self, name: str) -> None:
        """Switch to one of :data:`SCENARIOS` now."""
        self.model.set_scenario(name)

    def state(self) -> GatewayState:
        """The true state now: powers, state of energy, counters, grid status and fault log."""
        return self.model.state()

    def set_fault(self, fault: str, endpoint: str | None = None, *, for_s: float | None = None) -> None:
        """Switch a fault on, for every endpoint (``endpoint=None``) or one path; ``for_s`` [s] ends it later.

        ``gone`` is always for the whole gateway.
        """
        if fault not in FAULTS:
            raise ValueError(f"unknown fault {fault!r}; expected one of {', '.join(FAULTS)}")
        if fault == "gone":
            self._sim._call(self._stop_listening())
        else:
            with self._lock:
                self._faults.setdefault(endpoint, set()).add(fault)
        if for_s is not None:
            self._sim._call_later(for_s, lambda: self.clear_fault(fault, endpoint))

    def clear_fault(self, fault: str | None = None, endpoint: str | None = None) -> None:
        """Switch a fault off (``fault=None``: every fault of that endpoint; both None: all, ``gone`` too)."""
        if fault == "gone" or (fault is None and endpoint is None):
            self._sim._call(self._start_listening())
        with self._lock:
            if fault is None and endpoint is None:
                self._faults.clear()
            elif fault is None:
                self._faults.pop(endpoint, None)
            else:
                self._faults.get(endpoint, set()).discard(fault)

    def faults(self) -> dict[str | None, set[str]]:
        """The faults switched on, by endpoint (None: every endpoint); ``gone`` under None."""
        with self._lock:
            out = {k: set(v) for k, v in self._faults.items() if v}
        if not self.listening:
            out.setdefault(None, set()).add("gone")
        return out

    def gone(self) -> None:
        """Stop listening and cut the open connections (the gateway is off)."""
        self.set_fault("gone")

    def back(self) -> None:
        """Listen again on the same port, with the login sessions forgotten (a rebooted gateway)."""
        self.clear_fault("gone")

    def expire_sessions(self) -> None:
        """Forget every login session: the next request of each client gets 401."""
        with self._lock:
            self._sessions.clear()

    # -- serving -----------------------------------------------------------------------------------------

    async def _start_listening(self) -> None:
        if self._listener is not None:
            return
        with self._lock:
            self._sessions.clear()  # a gateway coming back has rebooted
        if self._web is None:  # keep-alive and TLS as aiohttp does them; a held request ends with its connection
            self._web = web.Server(self._serve, handler_cancellation=True, access_log=None)
        loop = asyncio.get_running_loop()
        self._listener = await loop.create_server(self._web, self.host, self.port, ssl=self._sim._ssl,
                                                  reuse_address=True, backlog=128)
        self.port = self._listener.sockets[0].getsockname()[1]

    async def _stop_listening(self) -> None:
        listener, self._listener = self._listener, None
        if listener is not None:
            listener.close()
        if self._web is not None:
            for conn in list(self._web.connections):  # cut them, as a gateway switched off does
                if conn.transport is not None:
                    conn.transport.abort()
            await self._web.shutdown(0.1)  # what the cuts left: a request being answered
        if listener is not None:
            await listener.wait_closed()

    async def _serve(self, request: web.BaseRequest) -> web.StreamResponse:
        body = await request.read()
        headers = {k.lower(): v for k, v in request.headers.items()}
        response = await self._handle(_Request(request.method, request.rel_url.raw_path, headers, body))
        return response.to_web()

    async def _handle(self, request: _Request) -> _Response:
        self.requests[request.path] += 1
        if request.path.startswith(_SIM_PREFIX):
            return self._control(request)
        faults = self._active(request.path)
        if "timeout" in faults:
            await asyncio.sleep(self.hold_s)
        if "http500" in faults:
            return _error(500, "internal error", "Simulated gateway fault")
        response = self._route(request)
        if response.status != 200 or not response.body:
            return response
        if "shape_change" in faults and request.path == "/api/meters/aggregates":
            reply = json.loads(response.body)
            for meter in reply.values():
                meter["real_power"] = meter.pop("instant_power")
            for key in ("energy_imported", "energy_exported"):
                reply["site"].pop(key)
            response.body = json.dumps(reply).encode()
        if "truncated" in faults:
            response.body = response.body[: len(response.body) // 2]
        if "garbage" in faults:
            response.body = b"<html><body><h1>Gateway busy</h1><p>\xff\xfe try again</p></body></html>"
            response.content_type = "text/html"
        return response

    def _route(self, request: _Request) -> _Response:
        """The gateway's API (:data:`ROUTES`): the login first, then the method."""
        routes = _BY_PATH.get(request.path, {})
        public = any(r.access == "public" for r in routes.values())
        if not public and not self._authorised(request):
            return _error(401, "token contains an invalid number of segments", "Invalid bearer token")
        route = routes.get(request.method)
        if route is None and (routes or request.method != "GET"):
            return _error(405, "method", f"{'/'.join(sorted(routes)) or 'GET'} only")
        if route is None:
            return _error(404, "not found", f"no such endpoint {request.path}")
        return route.reply(self, request)

    def _control(self, request: _Request) -> _Response:
        """The simulation's own routes (``/_sim/``, :data:`ROUTES` with access ``sim``): no login, no faults."""
        route = _BY_PATH.get(request.path, {}).get(request.method)
        if route is None or route.access != "sim":
            return _error(404, "not found", f"no such control {request.path}")
        try:
            return route.reply(self, request)
        except (ValueError, KeyError, TypeError) as exc:
            return _error(400, "bad request", str(exc))

    def _active(self, path: str) -> set[str]:
        with self._lock:
            return set(self._faults.get(None, ())) | set(self._faults.get(path, ()))

    def _open_session(self, token: str) -> None:
        with self._lock:
            self._sessions.add(token)
            self.logins += 1

    def _authorised(self, request: _Request) -> bool:
        token = None
        auth = request.headers.get("authorization", "")
        if auth.lower().startswith("bearer "):
            token = auth[7:].strip()
        for part in request.headers.get("cookie", "").split(";"):
            k, _, v = part.strip().partition("=")
            if k == "AuthCookie":
                token = v
        with self._lock:
            return token is not None and token in self._sessions


# -- many gateways in one process ---------------------------------------------------------------------------


def _self_signed(host: str) -> tuple[bytes, bytes]:
    """A fresh self-signed certificate and its key, PEM (an EC P-256 key: fast to make)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "powerwall")])
    alt: list[x509.GeneralName] = [x509.DNSName("localhost"), x509.DNSName("powerwall")]
    with contextlib.suppress(ValueError):
        alt.append(x509.IPAddress(ipaddress.ip_address(host)))
    now = datetime.now(UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(days=1)).not_valid_after(now + timedelta(days=365))
            .add_extension(x509.SubjectAlternativeName(alt), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)  # its own trust anchor
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .sign(key, hashes.SHA256()))
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    return cert.public_bytes(serialization.Encoding.PEM), key_pem


class Simulator:
    """Many simulated gateways on one event loop in one background thread.

    Parameters
    ----------
    host : str
        The loopback address the gateways listen on.
    """

    def __init__(self, host: str = "127.0.0.1") -> None:
        self.host = host
        self.gateways: list[SimulatedGateway] = []
        self.cert_pem = b""
        self._ssl: ssl.SSLContext | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> Simulator:
        """Make the certificate and start the loop thread; return self."""
        if self._loop is not None:
            return self
        self.cert_pem, key_pem = _self_signed(self.host)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        with tempfile.TemporaryDirectory(prefix="homegrid-pwsim-") as tmp:
            cert, key = Path(tmp) / "cert.pem", Path(tmp) / "key.pem"
            cert.write_bytes(self.cert_pem)
            key.touch(mode=0o600)
            key.write_bytes(key_pem)
            ctx.load_cert_chain(cert, key)
        self._ssl = ctx
        self._loop = asyncio.new_event_loop()
        ready = threading.Event()

        def run() -> None:
            assert self._loop is not None
            asyncio.set_event_loop(self._loop)
            self._loop.call_soon(ready.set)
            self._loop.run_forever()

        self._thread = threading.Thread(target=run, name="powerwall-simulator", daemon=True)
        self._thread.start()
        ready.wait()
        return self

    def stop(self) -> None:
        """Close every gateway and stop the loop thread."""
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return

        async def shutdown() -> None:
            for gw in self.gateways:
                await gw._stop_listening()

        asyncio.run_coroutine_threadsafe(shutdown(), loop).result(timeout=10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
        loop.close()
        self._loop = self._thread = None

    def __enter__(self) -> Simulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def add_gateway(self, port: int = 0, *, password: str = "simulated", scenario: str = "normal",
                    clock: Callable[[], float] | None = None, hold_s: float = 30.0, soe: float = 50.0,
                    transition_s: float = 2.0, wobble_w: float = 0.0, listening: bool = True) -> SimulatedGateway:
        """Start one more gateway.

        Parameters
        ----------
        port : int
            TCP port (0: any free port; the chosen one stays the gateway's for ``back``).
        password : str
            The customer password the login accepts.
        scenario, clock, soe, transition_s, wobble_w
            As for :class:`GatewayModel`.
        hold_s : float
            How long the ``timeout`` fault holds a request [s].
        listening : bool
            False: start ``gone`` (nothing listens until :meth:`SimulatedGateway.back`); a free port is
            reserved by listening once.
        """
        self.start()
        model = GatewayModel(scenario, clock=clock, soe=soe, transition_s=transition_s, wobble_w=wobble_w)
        gw = SimulatedGateway(self, model, self.host, port, password, hold_s)
        self._call(gw._start_listening())
        if not listening:
            self._call(gw._stop_listening())
        self.gateways.append(gw)
        return gw

    def add_gateways(self, count: int, base_port: int = 0, **kwargs: Any) -> list[SimulatedGateway]:
        """Start ``count`` gateways on ``base_port``, ``base_port + 1`` ... (any free ports when 0)."""
        return [self.add_gateway(base_port + i if base_port else 0, **kwargs) for i in range(count)]

    # -- loop plumbing -----------------------------------------------------------------------------------

    def _in_loop(self) -> bool:
        return self._thread is not None and threading.current_thread() is self._thread

    def _call(self, coro: Coroutine[Any, Any, None]) -> None:
        """Run a coroutine on the loop: wait for it from other threads, schedule it from the loop's own."""
        if self._loop is None:
            coro.close()
            raise RuntimeError("the simulator is not running")
        if self._in_loop():
            self._loop.create_task(coro)
        else:
            asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout=30)

    def _call_later(self, delay: float, fn: Callable[[], None]) -> None:
        if self._loop is None:
            raise RuntimeError("the simulator is not running")
        self._loop.call_soon_threadsafe(self._loop.call_later, delay, fn)


@contextlib.contextmanager
def running(count: int = 1, base_port: int = 0, **kwargs: Any) -> Iterator[list[SimulatedGateway]]:
    """Run ``count`` gateways for the duration of a ``with`` block (keyword arguments as for ``add_gateway``)."""
    with Simulator() as sim:
        yield sim.add_gateways(count, base_port, **kwargs)


def main(argv: Iterable[str] | None = None) -> int:
    """``python -m homegrid.devices.powerwall.simulator``: run gateways until killed."""
    p = argparse.ArgumentParser(prog="python -m homegrid.devices.powerwall.simulator",
                                description="Fake Tesla Powerwall gateways (local HTTPS API) on loopback.")
    p.add_argument("--count", type=int, default=1, help="how many gateways (default 1)")
    p.add_argument("--base-port", type=int, default=0, help="first port; the others follow (default: any free)")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--password", default="simulated", help="the customer password (default 'simulated')")
    p.add_argument("--scenario", default="normal",
                   help=f"scenario, or a comma-separated list given to the gateways in turn ({', '.join(SCENARIOS)})")
    p.add_argument("--wobble", type=float, default=50.0, help="load wobble amplitude [W] (default 50)")
    p.add_argument("--transition", type=float, default=2.0, help="SystemTransitionToGrid duration [s] (default 2)")
    args = p.parse_args(list(argv) if argv is not None else None)
    scenarios = [s.strip() for s in args.scenario.split(",") if s.strip()]
    bad = [s for s in scenarios if s not in SCENARIOS]
    if args.count < 1 or not scenarios or bad:
        p.error(f"need --count >= 1 and scenarios among {', '.join(SCENARIOS)}" + (f" (got {bad})" if bad else ""))
    sim = Simulator(args.host).start()
    try:
        for i in range(args.count):
            port = args.base_port + i if args.base_port else 0
            try:
                gw = sim.add_gateway(port, password=args.password, scenario=scenarios[i % len(scenarios)],
                                     wobble_w=args.wobble, transition_s=args.transition)
            except OSError as exc:
                print(f"cannot listen on {args.host}:{port}: {exc}", file=sys.stderr)
                return 2
            print(gw.address, flush=True)
        stop = threading.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: stop.set())
        while not stop.wait(3600):
            pass
    finally:
        sim.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
