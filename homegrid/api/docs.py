"""``/docs``: Swagger UI (5, which reads OpenAPI 3.1) from the installed ``fastapi-offline`` package, so it works
offline and under the hub's Content-Security-Policy (no outside source, no inline script): the page and its start-up
script are homegrid's own files, the viewer's assets are served from a fixed table of the package's files.
"""

from __future__ import annotations

from importlib import resources
from importlib.abc import Traversable

from fastapi import HTTPException
from fastapi.responses import Response

from homegrid.api.context import Endpoint

__all__ = ["DocsRoutes"]

#: the files of Swagger UI the page loads, by their name under /docs/
_VENDOR = {"swagger-ui.css": "text/css; charset=utf-8", "swagger-ui-bundle.js": "text/javascript; charset=utf-8",
           "favicon.png": "image/png"}
_OWN = {"docs.js": "text/javascript; charset=utf-8"}


def _vendor_folder() -> Traversable:
    # only the package's files: its FastAPIOffline app would serve them with StaticFiles and an inline script
    return resources.files("fastapi_offline").joinpath("static")


class DocsRoutes:
    """``GET /docs`` and ``GET /docs/{name}`` (:attr:`routes`; create the app with ``docs_url=None``)."""

    def __init__(self) -> None:
        folder = _vendor_folder()
        self.own = resources.files("homegrid.api").joinpath("docs_files")
        self.files: dict[str, tuple[Traversable, str]] = {
            **{name: (folder / name, media) for name, media in _VENDOR.items()},
            **{name: (self.own / name, media) for name, media in _OWN.items()},
        }
        self.cache: dict[str, bytes] = {}
        self.routes: tuple[Endpoint, ...] = (
            Endpoint("GET", "/docs", self.docs_page, include_in_schema=False),
            Endpoint("GET", "/docs/{name}", self.docs_asset, include_in_schema=False),
        )

    def read(self, name: str) -> bytes:
        if name not in self.cache:
            node = self.files[name][0] if name in self.files else self.own / "index.html"
            self.cache[name] = node.read_bytes()
        return self.cache[name]

    def docs_page(self) -> Response:
        return Response(self.read("index.html"), media_type="text/html; charset=utf-8",
                        headers={"Cache-Control": "no-cache"})

    def docs_asset(self, name: str) -> Response:
        if name not in self.files:
            raise HTTPException(status_code=404, detail="not found")
        return Response(self.read(name), media_type=self.files[name][1],
                        headers={"Cache-Control": "public, max-age=3600"})
