"""The transport seam to a Tesla car: its state without waking it, and its ``vehicle_data``.

:class:`VehicleClient` is all the adapter needs. The real clients sit on the
``tesla-fleet-api`` library over aiohttp:

- :class:`FleetApiClient`: Tesla's Fleet API with an OAuth access token (and a
  refresh token plus the app's client id to renew it; renewed tokens are handed
  to a callback to be saved, since Tesla rotates the refresh token on every use).
- :class:`TeslemetryClient`, :class:`TessieClient`: the same data through those
  services, with their static API token.

None of them ever calls ``wake_up``. The library's errors are translated into
:class:`TeslaApiError` (HTTP 429 into :class:`RateLimitedError` with its
Retry-After, 408 into :class:`VehicleUnavailableError`); token values never
appear in an error's text or a ``repr``.
"""

from __future__ import annotations

import asyncio
import base64
import inspect
import json
import logging
import time
from collections.abc import Awaitable, Callable
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from homegrid.devices.tesla.replies import ReplyError, parse_vehicle_state

if TYPE_CHECKING:
    import aiohttp

__all__ = [
    "TOKEN_URL",
    "AuthError",
    "FleetApiClient",
    "FleetTokens",
    "RateLimitedError",
    "TeslaApiError",
    "TeslemetryClient",
    "TessieClient",
    "VehicleClient",
    "VehicleUnavailableError",
]

log = logging.getLogger(__name__)

#: Tesla's OAuth token endpoint (refresh grant).
TOKEN_URL = "https://fleet-auth.prd.vn.cloud.tesla.com/oauth2/v3/token"

#: What ``vehicle_data`` is asked for: the charge, the gear, and (``location_data``) the position.
DATA_ENDPOINTS = ("charge_state", "drive_state")
#: The longest wait a 429 can impose [s]: an infinite or absurd Retry-After must not stop the car's polling for good.
MAX_RETRY_AFTER_S = 3600.0


@runtime_checkable
class VehicleClient(Protocol):
    """What the adapter needs of a car: its state (never wakes it) and its ``vehicle_data``."""

    async def state(self) -> str:
        """``online``, ``asleep`` or ``offline``, from an endpoint that never wakes the car."""
        ...

    async def vehicle_data(self) -> dict[str, Any]:
        """The decoded ``vehicle_data`` reply (wrapped or bare); never wakes the car."""
        ...


class TeslaApiError(Exception):
    """A call to the Tesla API (or a proxy of it) failed; the message never holds a token."""


class RateLimitedError(TeslaApiError):
    """HTTP 429: too many requests; ``retry_after_s`` is how long to wait [s], None when unsaid."""

    def __init__(self, message: str, retry_after_s: float | None = None) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class VehicleUnavailableError(TeslaApiError):
    """HTTP 408: the car did not answer (asleep, or offline with poor connectivity)."""


class AuthError(TeslaApiError):
    """The token was refused and could not be renewed."""


def _plain(value: Any) -> str:
    """A token given as a string or as a :class:`homegrid.credentials.Secret`-like object."""
    reveal = getattr(value, "reveal", None)
    return str(reveal() if callable(reveal) else value)


def jwt_expiry(token: str) -> float | None:
    """The ``exp`` claim of a JWT access token [s since the epoch], or None (not a JWT). Not verified."""
    parts = token.split(".")
    if len(parts) != 3:
        return None
    try:
        payload = parts[1] + "=" * (-len(parts[1]) % 4)
        exp = json.loads(base64.urlsafe_b64decode(payload)).get("exp")
    except (ValueError, AttributeError, TypeError):
        return None
    return float(exp) if isinstance(exp, (int, float)) and not isinstance(exp, bool) else None


class FleetTokens:
    """An OAuth access token, its refresh token and its expiry; their values never show in a ``repr``.

    Parameters
    ----------
    access_token : str or Secret
    refresh_token : str or Secret, optional
    expires_at : float, optional
        Expiry of the access token [s since the epoch]; by default read from the token (a JWT).
    """

    __slots__ = ("access_token", "expires_at", "refresh_token")

    def __init__(self, access_token: Any, refresh_token: Any = None, expires_at: float | None = None) -> None:
        self.access_token = _plain(access_token)
        self.refresh_token = _plain(refresh_token) if refresh_token else None
        self.expires_at = expires_at if expires_at is not None else jwt_expiry(self.access_token)

    def __repr__(self) -> str:
        return (f"FleetTokens(access_token='***', refresh_token={'***' if self.refresh_token else None!r}, "
                f"expires_at={self.expires_at})")

    __str__ = __repr__


def retry_after_s(after: Any, reset: Any = None, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` (seconds or an HTTP date) or ``RateLimit-Reset`` (seconds) [s],
    at most ``MAX_RETRY_AFTER_S`` (NaN is 0)."""
    for value in (after, reset):
        if value is None:
            continue
        text = str(value).strip()
        try:
            return min(MAX_RETRY_AFTER_S, max(0.0, float(text)))
        except ValueError:
            pass
        try:
            when = parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError, OverflowError):
            continue
        if when is not None and when.tzinfo is not None:
            return min(MAX_RETRY_AFTER_S, max(0.0, when.timestamp() - (time.time() if now is None else now)))
    return None


class _LibraryClient:
    """Shared plumbing: a lazily made aiohttp session, timeouts, and the library's errors made ours."""

    service = "Tesla API"

    def __init__(self, vin: str, *, session: aiohttp.ClientSession | None = None, timeout_s: float = 20.0) -> None:
        if not vin or not vin.strip():
            raise ValueError("a VIN is needed")
        self.vin = vin.strip()
        self.timeout_s = timeout_s
        self._session = session
        self._own_session = session is None
        self._api: Any = None
        self._vehicle: Any = None

    def __repr__(self) -> str:
        return f"{type(self).__name__}(vin={self.vin!r})"

    def _secrets(self) -> list[str]:
        return []

    def _scrub(self, text: str) -> str:
        for secret in self._secrets():
            if secret:
                text = text.replace(secret, "***")
        return text

    async def _session_now(self) -> aiohttp.ClientSession:
        import aiohttp

        if self._session is None or (self._own_session and self._session.closed):
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.timeout_s))
            self._own_session = True
        return self._session

    async def _connect(self) -> None:
        raise NotImplementedError

    async def _call(self, what: str, call: Callable[[], Awaitable[Any]], retry_auth: bool = True) -> Any:
        """Run one library call; every failure becomes a :class:`TeslaApiError` without secrets in it."""
        from tesla_fleet_api.exceptions import (
            OAuthExpired,
            RateLimited,
            TeslaFleetError,
            VehicleOffline,
        )

        if self._vehicle is None:
            await self._connect()
        try:
            async with asyncio.timeout(self.timeout_s):
                return await call()
        except RateLimited as exc:  # the library's errors derive from BaseException
            data = exc.data if isinstance(exc.data, dict) else {}
            wait = retry_after_s(data.get("after"), data.get("reset"))
            said = f"retry after {wait:.0f} s" if wait is not None else "no Retry-After given"
            raise RateLimitedError(f"{self.service} {what}: rate limited (HTTP 429), {said}", wait) from None
        except VehicleOffline:
            raise VehicleUnavailableError(f"{self.service} {what}: the car did not answer (HTTP 408: "
                                          "asleep or offline)") from None
        except OAuthExpired:
            if retry_auth and await self._renew():
                return await self._call(what, call, retry_auth=False)
            raise AuthError(f"{self.service} {what}: the token was refused (HTTP 401) and could not be renewed; "
                            "sign in again") from None
        except TeslaFleetError as exc:
            detail = exc.data.get("error") if isinstance(exc.data, dict) else exc.data
            text = f"{exc.message}" + (f" ({str(detail)[:200]})" if detail else "")
            status = f"HTTP {exc.status}: " if exc.status else ""
            raise TeslaApiError(self._scrub(f"{self.service} {what}: {status}{text}")) from None
        except TimeoutError:
            raise TeslaApiError(f"{self.service} {what}: no reply within {self.timeout_s:g} s") from None
        except TeslaApiError:
            raise
        except Exception as exc:  # aiohttp's and the library's other errors
            raise TeslaApiError(self._scrub(f"{self.service} {what}: {type(exc).__name__}: {exc}")) from None

    async def _renew(self) -> bool:
        """Renew the token after a 401; False when this client cannot."""
        return False

    async def _list_reply(self) -> Any:
        return await self._vehicle.list()

    async def _data_reply(self) -> Any:
        return await self._vehicle.vehicle_data(endpoints=list(self._endpoints()))

    def _endpoints(self) -> tuple[str, ...]:
        return DATA_ENDPOINTS

    async def state(self) -> str:
        """``online``, ``asleep`` or ``offline`` from the vehicle list (never wakes the car)."""
        reply = await self._call("vehicle list", self._list_reply)
        try:
            return parse_vehicle_state(reply, self.vin).value
        except ReplyError as exc:
            raise TeslaApiError(f"{self.service} {exc}") from None

    async def vehicle_data(self) -> dict[str, Any]:
        """The ``vehicle_data`` reply (never wakes the car: an asleep car gives HTTP 408)."""
        reply = await self._call("vehicle_data", self._data_reply)
        if not isinstance(reply, dict):
            raise TeslaApiError(f"{self.service} vehicle_data: expected a JSON object, got {type(reply).__name__}")
        return reply

    async def command(self, name: str, **kwargs: Any) -> dict[str, Any]:
        """Send one vehicle command (``charge_start``, ``charge_stop``, ``set_charging_amps``, ``set_charge_limit``)
        through the library; the decoded reply (``{"response": {"result": ..., "reason": ...}}``). Never wakes the
        car: an asleep car gives HTTP 408 (:class:`VehicleUnavailableError`)."""
        if self._vehicle is None:
            await self._connect()
        method = getattr(self._vehicle, name, None)
        if not callable(method):
            raise TeslaApiError(f"{self.service} cannot send the command {name}")
        reply = await self._call(name, lambda: method(**kwargs))
        if not isinstance(reply, dict):
            raise TeslaApiError(f"{self.service} {name}: expected a JSON object, got {type(reply).__name__}")
        return reply

    async def close(self) -> None:
        """Close the aiohttp session if this client made it."""
        if self._own_session and self._session is not None and not self._session.closed:
            await self._session.close()


class FleetApiClient(_LibraryClient):
    """A car through Tesla's Fleet API (``tesla_fleet_api.TeslaFleetApi``).

    Parameters
    ----------
    vin : str
        The car's VIN.
    tokens : FleetTokens
        The OAuth tokens (scopes ``vehicle_device_data``, and ``vehicle_location`` for at-home).
    client_id : str, optional
        The Tesla developer app's client id; needed to renew the access token.
    region : {"na", "eu", "cn"}
        The Fleet API region of the account.
    server : str, optional
        A base URL instead of the region's (a proxy, or a test server).
    session : aiohttp.ClientSession, optional
        Shared session; by default one is made (with ``timeout_s``) and closed by :meth:`close`.
    on_tokens : callable, optional
        Called (sync or async) with the new :class:`FleetTokens` after each renewal, to save them;
        Tesla's refresh tokens are single-use, so an unsaved renewal means signing in again.
    location : bool
        Ask for ``location_data`` (needed for at-home on firmware 2023.38+; the car shows an icon).
    token_url : str
        The OAuth token endpoint.
    timeout_s : float
        Per call [s].
    refresh_margin_s : float
        Renew this long before the access token expires [s].
    clock : callable
        The time [s since the epoch] (tests).
    """

    service = "Fleet API"

    def __init__(
        self,
        vin: str,
        tokens: FleetTokens,
        *,
        client_id: str | None = None,
        region: str = "na",
        server: str | None = None,
        session: aiohttp.ClientSession | None = None,
        on_tokens: Callable[[FleetTokens], Awaitable[None] | None] | None = None,
        location: bool = True,
        token_url: str = TOKEN_URL,
        timeout_s: float = 20.0,
        refresh_margin_s: float = 300.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        from tesla_fleet_api.const import SERVERS

        super().__init__(vin, session=session, timeout_s=timeout_s)
        if server is None and region not in SERVERS:
            raise ValueError(f"region {region!r}: expected one of {', '.join(SERVERS)}")
        self.tokens = tokens
        self.client_id = client_id
        self.region = region
        self.server = server
        self.on_tokens = on_tokens
        self.location = location
        self.token_url = token_url
        self.refresh_margin_s = refresh_margin_s
        self.clock = clock
        self._lock = asyncio.Lock()
        self.renewals = 0

    def _secrets(self) -> list[str]:
        return [self.tokens.access_token, self.tokens.refresh_token or "", self.client_id or ""]

    def _endpoints(self) -> tuple[str, ...]:
        return (*DATA_ENDPOINTS, "location_data") if self.location else DATA_ENDPOINTS

    async def _connect(self) -> None:
        from tesla_fleet_api import TeslaFleetApi

        session = await self._session_now()
        # the library types region as its Literal of SERVERS' keys; ours is a str checked against them in __init__
        self._api = TeslaFleetApi(session, access_token=self._access_token, region=self.region,  # type: ignore[arg-type]
                                  server=self.server, charging_scope=False, energy_scope=False,
                                  partner_scope=False, user_scope=False)
        self._vehicle = self._api.vehicles.createFleet(self.vin)

    @property
    def can_renew(self) -> bool:
        return bool(self.tokens.refresh_token and self.client_id)

    async def _access_token(self) -> str:
        """The access token, renewed first when it expires within the margin (the library's token callback)."""
        expires = self.tokens.expires_at
        if self.can_renew and expires is not None and expires - self.refresh_margin_s <= self.clock():
            await self._renew(stale=self.tokens.access_token)
        return self.tokens.access_token

    async def _renew(self, stale: str | None = None) -> bool:
        """Use the refresh token once; save the new pair through ``on_tokens``."""
        if not self.can_renew:
            return False
        async with self._lock:
            if stale is not None and self.tokens.access_token != stale:
                return True  # another call renewed it meanwhile
            session = await self._session_now()
            form = {"grant_type": "refresh_token", "client_id": self.client_id or "",
                    "refresh_token": self.tokens.refresh_token or ""}
            try:
                async with asyncio.timeout(self.timeout_s):
                    async with session.post(self.token_url, data=form) as resp:
                        status = resp.status
                        try:
                            body = await resp.json(content_type=None)
                        except ValueError:
                            body = None
            except Exception as exc:  # say which, never the form (it holds the refresh token)
                raise AuthError(f"{self.service}: renewing the token failed: {type(exc).__name__}") from None
            if status != 200 or not isinstance(body, dict) or not isinstance(body.get("access_token"), str):
                error = body.get("error") if isinstance(body, dict) else None
                raise AuthError(self._scrub(f"{self.service}: renewing the token failed: HTTP {status}"
                                            + (f" ({str(error)[:100]})" if error else "")
                                            + "; sign in again"))
            expires_in = body.get("expires_in")
            expires_at = (self.clock() + float(expires_in) if isinstance(expires_in, (int, float))
                          else jwt_expiry(body["access_token"]))
            self.tokens = FleetTokens(body["access_token"], body.get("refresh_token") or self.tokens.refresh_token,
                                      expires_at)
            self.renewals += 1
            if self.on_tokens is not None:
                try:
                    result = self.on_tokens(self.tokens)
                    if inspect.isawaitable(result):
                        await result
                except Exception as exc:  # the new tokens work; losing them on restart is what is at stake
                    log.error("%s: the renewed tokens could not be saved (%s); the next restart will need a new "
                              "sign-in", self.service, type(exc).__name__)
            return True


class _TokenClient(_LibraryClient):
    """A service reached with one long-lived API token at a base URL.

    Parameters
    ----------
    vin : str
    access_token : str or Secret
        The service's API token.
    server : str, optional
        The service's base URL (default: :attr:`default_server`).
    session : aiohttp.ClientSession, optional
    timeout_s : float
        Per call [s].
    """

    #: the service's public base URL
    default_server = ""

    def __init__(self, vin: str, access_token: Any, *, server: str | None = None,
                 session: aiohttp.ClientSession | None = None, timeout_s: float = 20.0) -> None:
        super().__init__(vin, session=session, timeout_s=timeout_s)
        self._token = _plain(access_token)
        self.server = self.default_server if server is None else server

    def _secrets(self) -> list[str]:
        return [self._token]


class TeslemetryClient(_TokenClient):
    """A car through Teslemetry (Fleet API-shaped replies) with its API token (it does not expire like Tesla's);
    parameters as :class:`_TokenClient`."""

    service = "Teslemetry"
    default_server = "https://api.teslemetry.com"

    def _endpoints(self) -> tuple[str, ...]:
        return (*DATA_ENDPOINTS, "location_data")

    async def _connect(self) -> None:
        from tesla_fleet_api import Teslemetry

        self._api = Teslemetry(await self._session_now(), self._token, server=self.server)
        self._vehicle = self._api.vehicles.create(self.vin)


class TessieClient(_TokenClient):
    """A car through Tessie: state from ``/{vin}/status``, data from ``/{vin}/state`` (Tessie's cache; bare);
    parameters as :class:`_TokenClient`."""

    service = "Tessie"
    default_server = "https://api.tessie.com"

    async def _connect(self) -> None:
        from tesla_fleet_api import Tessie

        self._api = Tessie(await self._session_now(), self._token)
        self._api.server = self.server
        self._vehicle = self._api.vehicles.create(self.vin)

    async def _list_reply(self) -> Any:
        return await self._vehicle.vehicle_status()

    async def _data_reply(self) -> Any:
        return await self._vehicle.state(use_cache=True)
