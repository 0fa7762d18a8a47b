"""The web app's built files, served from a fixed table made when the app starts: ``GET /`` and ``/static/...``,
gzip-compressed when the browser takes it.

A request names a file of the table or gets 404: no path from a request is ever joined to a
directory, so ``/static//etc/passwd.json`` or ``%2F..%2F`` cannot leave the bundle, and the cache
holds the bundle's files and nothing else.
"""

from __future__ import annotations

import gzip
from importlib import resources
from importlib.abc import Traversable

from fastapi import HTTPException, Request
from fastapi.responses import HTMLResponse, Response

from homegrid.api.context import Endpoint

__all__ = ["STATIC_TYPES", "StaticBundle", "WebAppRoutes"]

STATIC_TYPES = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8",
                ".html": "text/html; charset=utf-8", ".svg": "image/svg+xml", ".png": "image/png",
                ".json": "application/json", ".webmanifest": "application/manifest+json"}


def _walk(node: Traversable, prefix: str = "") -> dict[str, Traversable]:
    out: dict[str, Traversable] = {}
    for child in node.iterdir():
        name = f"{prefix}{child.name}"
        if child.name.startswith("."):
            continue
        if child.is_dir():
            out.update(_walk(child, f"{name}/"))
        elif any(name.endswith(s) for s in STATIC_TYPES):
            out[name] = child
    return out


class StaticBundle:
    """The files of ``homegrid/web/static`` by their name under ``/static/``, read and gzipped once."""

    def __init__(self, package: str = "homegrid.web", folder: str = "static") -> None:
        self._files = _walk(resources.files(package).joinpath(folder))
        self._cache: dict[str, tuple[bytes, bytes]] = {}

    @property
    def names(self) -> frozenset[str]:
        """Every file of the bundle."""
        return frozenset(self._files)

    @property
    def cached(self) -> frozenset[str]:
        """The files read into memory so far (a subset of :attr:`names`)."""
        return frozenset(self._cache)

    def get(self, name: str) -> tuple[bytes, bytes, str] | None:
        """``(raw, gzipped, media type)`` of a file of the bundle, or None for any other name."""
        node = self._files.get(name)
        if node is None:
            return None
        if name not in self._cache:
            raw = node.read_bytes()
            self._cache[name] = (raw, gzip.compress(raw, 9, mtime=0))
        raw, packed = self._cache[name]
        return raw, packed, STATIC_TYPES[name[name.rfind("."):]]


class WebAppRoutes:
    """``GET /`` (the dashboard) and ``GET /static/{name}`` from a :class:`StaticBundle` (:attr:`routes`)."""

    def __init__(self, bundle: StaticBundle | None = None) -> None:
        self.bundle = bundle or StaticBundle()
        self.routes: tuple[Endpoint, ...] = (
            Endpoint("GET", "/", self.dashboard, response_class=HTMLResponse, include_in_schema=False),
            Endpoint("GET", "/static/{name:path}", self.static, include_in_schema=False),
        )

    def static_file(self, name: str, request: Request) -> Response:
        """A file of the web app's bundle (``homegrid/web/static``), compressed once and kept in memory."""
        found = self.bundle.get(name)
        if found is None:
            raise HTTPException(status_code=404, detail="not found")
        raw, packed, media_type = found
        headers = {"Cache-Control": "no-cache" if name.endswith(".html") else "public, max-age=3600",
                   "Vary": "Accept-Encoding"}
        if "gzip" in request.headers.get("accept-encoding", "") and len(packed) < len(raw):
            headers["Content-Encoding"] = "gzip"
            return Response(packed, media_type=media_type, headers=headers)
        return Response(raw, media_type=media_type, headers=headers)

    def dashboard(self, request: Request) -> Response:
        return self.static_file("index.html", request)

    def static(self, name: str, request: Request) -> Response:
        return self.static_file(name, request)
