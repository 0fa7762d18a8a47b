"""US National Weather Service alerts: api.weather.gov's CAP alerts in GeoJSON or JSON-LD.

The feed is what ``GET https://api.weather.gov/alerts/active?point=LAT,LON`` returns: a
GeoJSON ``FeatureCollection`` whose features carry one CAP alert each in ``properties``
(``application/geo+json``), or the same alerts as a JSON-LD ``@graph`` list
(``application/ld+json``). A single alert (``/alerts/{id}``) is a lone ``Feature``. The
fields follow the NWS CAP v1.2 profile (see the API's OpenAPI schema ``Alert``):

- ``id`` (the CAP identifier, e.g. ``urn:oid:2.49.0.1.840.0....``), ``event`` ("Hurricane Warning"),
- ``status`` (Actual / Exercise / System / Test / Draft), ``messageType`` (Alert / Update /
  Cancel / Ack / Error), ``severity`` (Extreme / Severe / Moderate / Minor / Unknown),
  ``urgency``, ``certainty``,
- times with a UTC offset: ``sent``, ``effective``, ``onset`` (when the hazard begins; may be
  null), ``expires`` (when the *message* stops being valid), ``ends`` (when the *hazard* is
  expected to end; may be null),
- ``areaDesc``, ``geocode`` (``SAME`` county codes, ``UGC`` zone codes), ``references`` (the
  earlier messages this one updates or cancels), ``parameters`` (``VTEC``, ...).

Only reading and checking happen here; what counts as a storm is decided by
:mod:`homegrid.planner.storm`. A document that is not an alert feed raises
:class:`FeedError` naming the source and what is wrong; a single bad alert inside a good
feed is skipped and reported in :attr:`AlertFeed.problems`, so one broken entry never
hides the others. Nothing here touches the network except :func:`fetch_alerts`.
"""

from __future__ import annotations

import asyncio
import json
import re
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from homegrid import strictjson
from homegrid.config import CAP_SEVERITIES
from homegrid.timezones import parse_iso_time

__all__ = [
    "API_BASE",
    "DEFAULT_USER_AGENT",
    "SEVERITIES",
    "Alert",
    "AlertFeed",
    "AlertSource",
    "FeedError",
    "alerts_url",
    "fetch_alerts",
    "load_alerts",
    "parse_alerts",
    "parse_alerts_text",
    "parse_time",
    "severity_rank",
]

API_BASE = "https://api.weather.gov"
#: api.weather.gov refuses requests without a User-Agent and asks for a way to reach the author.
DEFAULT_USER_AGENT = "homegrid-storm-watch (no contact configured)"
#: CAP severities from least to most severe.
SEVERITIES: tuple[str, ...] = CAP_SEVERITIES
#: A feed larger than this is refused [bytes] (the whole US active list is a few MB).
MAX_FEED_BYTES = 20_000_000

_VTEC = re.compile(r"/([OTEX])\.([A-Z]{3})\.([A-Z]{4})\.([A-Z]{2})\.([A-Z])\.(\d{4})\.")


class FeedError(ValueError):
    """An alert feed that cannot be used: unreachable, not JSON, not an alert collection."""


def severity_rank(severity: str) -> int:
    """The rank of a CAP severity, 0 (Unknown) .. 4 (Extreme); unknown words rank 0."""
    for i, name in enumerate(SEVERITIES):
        if name.lower() == severity.strip().lower():
            return i
    return 0


@dataclass(frozen=True)
class Alert:
    """One CAP alert message, with the fields storm preparation needs.

    Times are aware datetimes (the feed's own offsets kept); None where the feed has null.
    """

    id: str
    event: str
    status: str
    message_type: str
    severity: str = "Unknown"
    urgency: str = "Unknown"
    certainty: str = "Unknown"
    sent: datetime | None = None
    effective: datetime | None = None
    onset: datetime | None = None
    expires: datetime | None = None
    ends: datetime | None = None
    headline: str | None = None
    area: str = ""
    same: tuple[str, ...] = ()
    ugc: tuple[str, ...] = ()
    references: tuple[str, ...] = ()
    vtec: tuple[str, ...] = ()

    @property
    def severity_rank(self) -> int:
        """0 (Unknown) .. 4 (Extreme)."""
        return severity_rank(self.severity)

    @property
    def starts(self) -> datetime | None:
        """When the hazard begins: ``onset``, else ``effective``, else ``sent``."""
        return self.onset or self.effective or self.sent

    @property
    def stops(self) -> datetime | None:
        """When the message stops counting: the earlier of ``expires`` and ``ends`` (None: neither given)."""
        times = [t for t in (self.expires, self.ends) if t is not None]
        return min(times) if times else None

    @property
    def hazard_ends(self) -> datetime | None:
        """When the hazard is expected to be over: ``ends``, else ``expires``."""
        return self.ends or self.expires

    @property
    def vtec_actions(self) -> frozenset[str]:
        """The VTEC action codes of the message (``NEW``, ``CON``, ``EXT``, ``CAN``, ``EXP``, ``UPG`` ...)."""
        return frozenset(m.group(2) for v in self.vtec if (m := _VTEC.search(v)))


@dataclass(frozen=True)
class AlertFeed:
    """A parsed feed: the alerts, when the feed says it was updated, and the entries skipped."""

    alerts: tuple[Alert, ...]
    updated: datetime | None = None
    title: str | None = None
    problems: tuple[str, ...] = field(default_factory=tuple)


def parse_time(where: str, name: str, value: Any) -> datetime | None:
    """An ISO 8601 time with a UTC offset (None stays None); ``ValueError`` naming ``where`` and ``name``."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValueError(f"{where}: {name} is {value!r}, not an ISO 8601 time")
    try:
        return parse_iso_time(value)
    except ValueError as exc:
        raise ValueError(f"{where}: {name} {exc}") from None


def _text(where: str, name: str, value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{where}: {name} is {value!r}, expected text")
    return value


def _optional_text(where: str, name: str, value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValueError(f"{where}: {name} is {value!r}, expected text")
    return value


def _codes(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list):
        return ()
    return tuple(str(v) for v in value if isinstance(v, (str, int)))


def _references(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list):
        return ()
    out = []
    for ref in value:
        if isinstance(ref, Mapping):
            ident = ref.get("identifier") or ref.get("@id")
            if isinstance(ident, str) and ident:
                out.append(ident.rsplit("/", 1)[-1] if ident.startswith("http") else ident)
        elif isinstance(ref, str):  # CAP XML style "sender,identifier,sent"
            parts = ref.split(",")
            if len(parts) >= 2:
                out.append(parts[1])
    return tuple(out)


def _alert(where: str, props: Any) -> Alert:
    if not isinstance(props, Mapping):
        raise ValueError(f"{where}: properties is {type(props).__name__}, not an object")
    ident = _text(where, "id", props.get("id"))
    where = f"{where} ({ident})"
    params = props.get("parameters")
    params = params if isinstance(params, Mapping) else {}
    geocode = props.get("geocode")
    geocode = geocode if isinstance(geocode, Mapping) else {}
    severity = props.get("severity")
    return Alert(
        id=ident,
        event=_text(where, "event", props.get("event")),
        status=_text(where, "status", props.get("status")),
        message_type=_text(where, "messageType", props.get("messageType")),
        severity=severity if isinstance(severity, str) and severity else "Unknown",
        urgency=str(props.get("urgency") or "Unknown"),
        certainty=str(props.get("certainty") or "Unknown"),
        sent=parse_time(where, "sent", props.get("sent")),
        effective=parse_time(where, "effective", props.get("effective")),
        onset=parse_time(where, "onset", props.get("onset")),
        expires=parse_time(where, "expires", props.get("expires")),
        ends=parse_time(where, "ends", props.get("ends")),
        headline=_optional_text(where, "headline", props.get("headline")),
        area=str(props.get("areaDesc") or ""),
        same=_codes(geocode.get("SAME")),
        ugc=_codes(geocode.get("UGC")),
        references=_references(props.get("references")),
        vtec=_codes(params.get("VTEC")),
    )


def parse_alerts(doc: Any, source: str = "alert feed") -> AlertFeed:
    """Alerts from a decoded api.weather.gov document.

    Parameters
    ----------
    doc : Any
        A GeoJSON ``FeatureCollection`` (``features``), a JSON-LD collection (``@graph``), or
        one alert ``Feature``.
    source : str
        Names the feed in messages (a path or URL).

    Returns
    -------
    AlertFeed
        The alerts that parsed; each entry that did not is named in ``problems``.

    Raises
    ------
    FeedError
        The document is not an alert feed at all.
    """
    if not isinstance(doc, Mapping):
        raise FeedError(f"{source}: expected a JSON object (an alert collection), got {type(doc).__name__}")
    entries: list[tuple[str, Any]]
    if isinstance(doc.get("features"), list):
        entries = [(f"features[{i}]", f) for i, f in enumerate(doc["features"])]
    elif isinstance(doc.get("@graph"), list):
        entries = [(f"@graph[{i}]", {"properties": a}) for i, a in enumerate(doc["@graph"])]
    elif doc.get("type") == "Feature" or "properties" in doc:
        entries = [("feature", doc)]
    else:
        keys = ", ".join(sorted(str(k) for k in doc)[:8]) or "none"
        raise FeedError(f"{source}: not an alert collection: no 'features' or '@graph' list (keys: {keys})")
    alerts: list[Alert] = []
    problems: list[str] = []
    for where, feature in entries:
        if not isinstance(feature, Mapping):
            problems.append(f"{where}: {type(feature).__name__}, not a GeoJSON feature object")
        elif feature.get("properties") is None:
            problems.append(f"{where}: no properties")
        else:
            try:
                alerts.append(_alert(where, feature["properties"]))
            except ValueError as exc:
                problems.append(str(exc))
    updated = None
    try:
        updated = parse_time(source, "updated", doc.get("updated"))
    except ValueError as exc:
        problems.append(str(exc))
    title = doc.get("title") if isinstance(doc.get("title"), str) else None
    return AlertFeed(tuple(alerts), updated, title, tuple(problems))


def parse_alerts_text(text: str | bytes, source: str = "alert feed") -> AlertFeed:
    """Alerts from the text of a feed; raise :class:`FeedError` when it is not JSON or not a feed."""
    return parse_alerts(strictjson.loads(text, source, FeedError), source)


def load_alerts(path: str | Path) -> AlertFeed:
    """Alerts from a file saved from api.weather.gov; raise :class:`FeedError` when it cannot be used."""
    p = Path(path).expanduser()
    try:
        data = p.read_bytes()
    except OSError as exc:
        raise FeedError(f"{p}: cannot read the alert file: {exc.strerror or exc}") from None
    if len(data) > MAX_FEED_BYTES:
        raise FeedError(f"{p}: {len(data)} bytes is too large for an alert feed")
    return parse_alerts_text(data, str(p))


def alerts_url(latitude: float, longitude: float, base: str = API_BASE) -> str:
    """The active alerts for a point (what covers the site): ``/alerts/active?status=actual&point=LAT,LON``.

    Parameters
    ----------
    latitude, longitude : float
        The site [degrees]; api.weather.gov takes at most 4 decimals.
    base : str
        The API's base URL.
    """
    return f"{base.rstrip('/')}/alerts/active?status=actual&point={latitude:.4f},{longitude:.4f}"


def _get(url: str, user_agent: str, timeout_s: float) -> bytes:
    request = urllib.request.Request(url, headers={
        "User-Agent": user_agent, "Accept": "application/geo+json, application/ld+json;q=0.9, */*;q=0.5"})
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:
            data: bytes = response.read(MAX_FEED_BYTES + 1)
    except urllib.error.HTTPError as exc:
        detail = ""
        try:
            body = json.loads(exc.read(4000) or b"{}")
            if isinstance(body, Mapping):  # api.weather.gov answers errors as problem+json
                detail = str(body.get("detail") or body.get("title") or "")
        except (json.JSONDecodeError, OSError, ValueError):
            pass
        finally:
            exc.close()
        raise FeedError(f"{url}: HTTP {exc.code} {exc.reason}" + (f": {detail}" if detail else "")) from None
    except urllib.error.URLError as exc:
        raise FeedError(f"{url}: cannot reach the alert feed: {exc.reason}") from None
    except TimeoutError:
        raise FeedError(f"{url}: no answer within {timeout_s:g} s") from None
    except OSError as exc:
        raise FeedError(f"{url}: {type(exc).__name__}: {exc}") from None
    if len(data) > MAX_FEED_BYTES:
        raise FeedError(f"{url}: the reply exceeds {MAX_FEED_BYTES} bytes")
    return data


async def fetch_alerts(url: str, *, user_agent: str = DEFAULT_USER_AGENT, timeout_s: float = 15.0) -> AlertFeed:
    """GET an alert feed (api.weather.gov or any server of the same format).

    Parameters
    ----------
    url : str
        An ``http(s)`` URL, e.g. from :func:`alerts_url`.
    user_agent : str
        Sent as ``User-Agent`` (api.weather.gov requires one; put a contact in it).
    timeout_s : float
        For the whole request [s].

    Raises
    ------
    FeedError
        Unreachable, an HTTP error (with the API's ``detail``), not JSON, not an alert feed.
    """
    if not url.startswith(("http://", "https://")):
        raise FeedError(f"{url}: not an http(s) URL")
    if not user_agent.strip():
        raise FeedError("api.weather.gov requires a User-Agent; none given")
    data = await asyncio.to_thread(_get, url, user_agent, timeout_s)
    return parse_alerts_text(data, url)


@dataclass(frozen=True)
class AlertSource:
    """Where the alerts come from: a URL (fetched) or a file (read), one of the two.

    Parameters
    ----------
    url : str
        An alert feed URL (``http(s)``); a ``file://`` URL or a plain path reads a file.
    user_agent : str
        For api.weather.gov.
    timeout_s : float
        Per request [s].
    """

    url: str
    user_agent: str = DEFAULT_USER_AGENT
    timeout_s: float = 15.0

    async def read(self) -> AlertFeed:
        """The feed now; raise :class:`FeedError` when it cannot be read or is not a feed."""
        if self.url.startswith(("http://", "https://")):
            return await fetch_alerts(self.url, user_agent=self.user_agent, timeout_s=self.timeout_s)
        path = self.url[len("file://"):] if self.url.startswith("file://") else self.url
        return await asyncio.to_thread(load_alerts, path)
