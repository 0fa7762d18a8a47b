"""The hub's door: only the owner changes the home, only by the hub's own name, and no outside code runs.

A pure ASGI middleware (it passes the live event stream through untouched), in this order:

1. ``Host``: an IP literal, ``localhost``, the machine's hostname (and ``hostname.local``), the bind
   host or a name in ``[server] allowed_hosts``; anything else is a page that rebound its own name
   to the hub (DNS rebinding): 403.
2. Writes (POST, PUT, PATCH, DELETE): an ``Origin``, when sent, must be the request's own (or one
   of ``[server] cors_origins``), else 403; the body must be ``application/json``, else 415 (a
   cross-site form or ``text/plain`` post cannot send it without a preflight); and the owner's
   credential, ``Authorization: Bearer <token>`` or the session cookie, else 401. Signing in and
   out (``/api/v1/session``) needs no credential but passes the same checks.
3. Reads need the credential too when the hub listens beyond loopback, unless ``[server]
   open_reads``; the sign-in page and the web app's shell (``/``, ``/static/``) stay open so a
   browser can sign in.

Every response carries a Content-Security-Policy with no outside source, ``nosniff``, frame
denial and no referrer. Who made the request (``owner token``, ``owner session``) is put in the
ASGI scope's state (``request.state.actor``), so a route can log who changed what.
"""

from __future__ import annotations

import base64
import hashlib
import ipaddress
import logging
import re
import socket
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any
from urllib.parse import urlsplit

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from pydantic import BaseModel
from starlette.datastructures import Headers, MutableHeaders
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import cookie_parser
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from homegrid.api.context import Endpoint, add_routes
from homegrid.config import ServerConfig
from homegrid.owner import SESSION_COOKIE, OwnerKey

__all__ = ["SecurityMiddleware", "SecurityPolicy", "SessionRoutes", "actor_of", "content_security_policy",
           "host_allowed", "install_security", "is_loopback", "policy_for"]

log = logging.getLogger(__name__)

WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
SESSION_PATH = "/api/v1/session"
OPEN_PATHS = frozenset({"/", "/signin", SESSION_PATH, "/favicon.ico"})
OPEN_PREFIXES = ("/static/",)
SESSION_MAX_AGE_S = 400 * 86_400  # the most a browser keeps a cookie; renewing the token ends it sooner
DEFAULT_PORTS = {"http": 80, "https": 443}
HOW_TO_SIGN_IN = ("open the sign-in link printed by 'homegrid serve', or run 'homegrid token' on the hub's machine; "
                  "scripts send 'Authorization: Bearer <token>'")


@dataclass(frozen=True)
class SecurityPolicy:
    """What the door lets through.

    Parameters
    ----------
    key : OwnerKey
        The owner's token (and the session cookie derived from it).
    reads_need_credential : bool
        Whether reads need the credential too (the hub listens beyond loopback).
    allowed_hosts : frozenset of str
        Host names (lower case) taken besides IP literals.
    cors_origins : tuple of str
        Other origins allowed to call the API (``scheme://host[:port]``); empty: no CORS.
    """

    key: OwnerKey
    reads_need_credential: bool = False
    allowed_hosts: frozenset[str] = frozenset({"localhost"})
    cors_origins: tuple[str, ...] = ()


def is_loopback(host: str) -> bool:
    """Whether a bind address listens on this machine only (``127.0.0.1``, ``::1``, ``localhost``)."""
    name = host.strip("[]").lower()
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def _machine_names() -> set[str]:
    names: set[str] = set()
    with_domain = socket.gethostname().lower().rstrip(".")
    for name in {with_domain, with_domain.split(".")[0]}:
        if name:
            names |= {name, f"{name}.local"}
    return names


def policy_for(server: ServerConfig, key: OwnerKey, bind_host: str) -> SecurityPolicy:
    """The policy of a hub listening on ``bind_host`` with its ``[server]`` settings."""
    names = {"localhost", *_machine_names(), *(h.lower().rstrip(".") for h in server.allowed_hosts)}
    bind = bind_host.strip("[]").lower()
    if bind and not _is_ip(bind):
        names.add(bind)
    return SecurityPolicy(key=key, reads_need_credential=not is_loopback(bind_host) and not server.open_reads,
                          allowed_hosts=frozenset(names),
                          cors_origins=tuple(o.rstrip("/") for o in server.cors_origins))


def _is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name.split("%")[0])
    except ValueError:
        return False
    return True


def split_host(value: str) -> tuple[str, int | None] | None:
    """A ``Host`` header's name (lower case, no brackets) and port; None when it is malformed."""
    value = value.strip().lower()
    if not value or len(value) > 255:
        return None
    m = re.fullmatch(r"\[([0-9a-z:.%]+)\](?::(\d{1,5}))?", value)
    if m:
        return (m[1], int(m[2]) if m[2] else None) if _is_ip(m[1]) else None
    if value.count(":") > 1:  # a bare IPv6 literal
        return (value, None) if _is_ip(value) else None
    name, _, port = value.partition(":")
    if port and not port.isdigit():
        return None
    if not re.fullmatch(r"[a-z0-9._-]+", name):
        return None
    return name.rstrip("."), int(port) if port else None


def host_allowed(host: str | None, names: frozenset[str]) -> bool:
    """Whether a ``Host`` header names this hub: an IP literal (no rebinding is possible) or a known name."""
    parsed = split_host(host) if host else None
    if parsed is None:
        return False
    return _is_ip(parsed[0]) or parsed[0] in names


def _origin_of(scheme: str, host: str, port: int | None) -> tuple[str, str, int | None]:
    return scheme, host, port if port is not None else DEFAULT_PORTS.get(scheme)


def _same_origin(origin: str, scheme: str, host: str, cors: tuple[str, ...]) -> bool:
    if origin.rstrip("/").lower() in (o.lower() for o in cors):
        return True
    own = split_host(host)
    try:
        parts = urlsplit(origin)
        theirs = _origin_of(parts.scheme.lower(), (parts.hostname or "").lower(), parts.port)
    except ValueError:
        return False
    return own is not None and theirs == _origin_of(scheme, *own)


@cache
def _inline_script_hashes() -> tuple[str, ...]:
    """CSP hashes of the inline scripts of the web app's page (its theme, set before the first paint)."""
    try:
        page = resources.files("homegrid.web").joinpath("static", "index.html").read_text(encoding="utf-8")
    except OSError:
        return ()
    scripts = re.findall(r"<script>(.*?)</script>", page, flags=re.S)
    return tuple(f"'sha256-{base64.b64encode(hashlib.sha256(s.encode()).digest()).decode()}'" for s in scripts)


def content_security_policy() -> str:
    """The policy for every page: the hub's own files only, nothing framed, no form posted elsewhere."""
    return "; ".join([
        "default-src 'self'",
        " ".join(["script-src 'self'", *_inline_script_hashes()]),
        # no 'unsafe-inline': Preact and uPlot set styles through the CSSOM (element.style), which CSP does not
        # govern; only style attributes in HTML would need it, and the app's page has none
        "style-src 'self'",
        "img-src 'self' data:",
        "font-src 'self'",
        "connect-src 'self'",
        "object-src 'none'",
        "frame-ancestors 'none'",
        "base-uri 'none'",
        "form-action 'self'",
    ])


def actor_of(request: Request) -> str:
    """Who made a request, for the log: ``owner token``, ``owner session`` (``unchecked`` without the door)."""
    return str(request.scope.get("state", {}).get("actor") or "unchecked")


class SecurityMiddleware:
    """The door (see the module notes); a pure ASGI middleware."""

    def __init__(self, app: ASGIApp, policy: SecurityPolicy) -> None:
        self.app = app
        self.policy = policy
        self.headers = {
            "content-security-policy": content_security_policy(),
            "x-content-type-options": "nosniff",
            "x-frame-options": "DENY",
            "referrer-policy": "no-referrer",
        }

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message.setdefault("headers", [])
                headers = MutableHeaders(scope=message)
                for name, value in self.headers.items():
                    headers.setdefault(name, value)
            await send(message)

        headers = Headers(scope=scope)
        actor = self.credential(headers)
        refusal = self.refusal(scope, headers, actor)
        if refusal is not None:
            status, detail = refusal
            log.debug("refused %s %s: %s", scope.get("method"), scope.get("path"), detail)
            if scope["type"] == "websocket":
                await send({"type": "websocket.close", "code": 1008})
                return
            extra = {"WWW-Authenticate": "Bearer"} if status == 401 else {}
            await JSONResponse({"detail": detail}, status_code=status, headers=extra)(scope, receive,
                                                                                      send_with_headers)
            return
        scope["state"] = {**scope.get("state", {}), "actor": actor}
        await self.app(scope, receive, send_with_headers)

    def credential(self, headers: Headers) -> str | None:
        """``owner token`` or ``owner session`` when the request carries the owner's credential."""
        scheme, _, value = headers.get("authorization", "").partition(" ")
        if scheme.lower() == "bearer" and value.strip() and self.policy.key.is_token(value.strip()):
            return "owner token"
        cookie = cookie_parser(headers.get("cookie", "")).get(SESSION_COOKIE)
        if cookie and self.policy.key.is_session(cookie):
            return "owner session"
        return None

    def refusal(self, scope: Scope, headers: Headers, actor: str | None) -> tuple[int, str] | None:
        """Why a request is refused, as ``(status, detail)``; None when it may pass."""
        host = headers.get("host")
        if not host_allowed(host, self.policy.allowed_hosts):
            shown = (host or "")[:80]
            return 403, (f"Host {shown!r} is not this hub's own name or address (a web page reaching the hub by a "
                         "name it does not own is refused: DNS rebinding); if you reach the hub by that name, add "
                         "it to [server] allowed_hosts in the config")
        method = scope.get("method", "GET")
        path = scope.get("path", "")
        if method in WRITE_METHODS:
            origin = headers.get("origin")
            if origin is not None and not _same_origin(origin, scope.get("scheme", "http"), host or "",
                                                       self.policy.cors_origins):
                return 403, (f"Origin {origin[:80]!r} is not this hub's own: changes are taken from the hub's own "
                             "pages (or the [server] cors_origins) only")
            if headers.get("content-type", "").split(";")[0].strip().lower() != "application/json":
                return 415, "changes must be sent as Content-Type: application/json"
            if actor is None and path != SESSION_PATH:
                return 401, f"changing the home needs the owner's credential: {HOW_TO_SIGN_IN}"
            return None
        if (self.policy.reads_need_credential and actor is None and method != "OPTIONS"
                and path not in OPEN_PATHS and not path.startswith(OPEN_PREFIXES)):
            return 401, ("this hub listens beyond this machine, so reading it needs the owner's credential too "
                         f"([server] open_reads = true opens reads to the LAN): {HOW_TO_SIGN_IN}")
        return None


class SignIn(BaseModel):
    """The owner's token, traded for a session cookie."""

    token: str


REFUSED_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>homegrid: sign-in refused</title><link rel="stylesheet" href="/static/app.css"></head>
<body><main class="signin-refused"><h1>This sign-in link is not valid</h1>
<p>It is wrong, or the owner's token was renewed since it was made. On the hub's machine, run
<code>homegrid token</code> for the current link (<code>homegrid token --renew</code> makes a new one).</p>
<p><a href="/">Back to homegrid</a></p></main></body></html>
"""


def _signed_in(response: Response, key: OwnerKey, request: Request) -> Response:
    response.set_cookie(SESSION_COOKIE, key.session(), max_age=SESSION_MAX_AGE_S, path="/", httponly=True,
                        samesite="strict", secure=request.url.scheme == "https")
    response.headers["Cache-Control"] = "no-store"
    return response


class SessionRoutes:
    """``GET /signin?token=`` (the printed link), and ``GET``, ``POST``, ``DELETE /api/v1/session`` (:attr:`routes`)."""

    def __init__(self, policy: SecurityPolicy) -> None:
        self.policy, self.key = policy, policy.key
        self.routes: tuple[Endpoint, ...] = (
            Endpoint("GET", "/signin", self.signin, include_in_schema=False),
            Endpoint("GET", SESSION_PATH, self.session_get,
                     summary="Whether this request carries the owner's credential, and whether reads need it"),
            Endpoint("POST", SESSION_PATH, self.session_post,
                     summary="Sign in: trade the owner's token for a session cookie (HttpOnly, SameSite=Strict)"),
            Endpoint("DELETE", SESSION_PATH, self.session_delete,
                     summary="Sign out: forget this browser's session cookie"),
        )

    def signin(self, request: Request, token: str = "") -> Response:
        if token and self.key.is_token(token):
            log.info("sign-in: a browser signed in with the owner's link")
            return _signed_in(RedirectResponse("/", status_code=303), self.key, request)
        return HTMLResponse(REFUSED_PAGE, status_code=401, headers={"Cache-Control": "no-store"})

    def session_get(self, request: Request) -> dict[str, Any]:
        actor = request.scope.get("state", {}).get("actor")
        return {"signed_in": actor is not None, "as": actor, "reads_need_sign_in": self.policy.reads_need_credential}

    def session_post(self, body: SignIn, request: Request) -> Response:
        if not self.key.is_token(body.token.strip()):
            return JSONResponse({"detail": f"that is not the owner's token: {HOW_TO_SIGN_IN}"}, status_code=401,
                                headers={"Cache-Control": "no-store"})
        log.info("sign-in: a browser signed in with the owner's token")
        return _signed_in(JSONResponse({"signed_in": True, "as": "owner session"}), self.key, request)

    def session_delete(self, request: Request) -> Response:
        response = JSONResponse({"signed_in": False})
        response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="strict",
                               secure=request.url.scheme == "https")
        response.headers["Cache-Control"] = "no-store"
        return response


def install_security(app: FastAPI, policy: SecurityPolicy) -> None:
    """Put the door on an app: the session routes, CORS when configured, and the middleware (outermost)."""
    add_routes(app, SessionRoutes(policy).routes)
    if policy.cors_origins:
        app.add_middleware(CORSMiddleware, allow_origins=list(policy.cors_origins), allow_credentials=False,
                           allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
                           allow_headers=["Authorization", "Content-Type"])
    app.add_middleware(SecurityMiddleware, policy=policy)
