"""``/docs``: Swagger UI (5, which reads OpenAPI 3.1) from the installed ``fastapi-offline`` package, so it works
offline and under the hub's Content-Security-Policy (no outside source, no inline script): the page and its start-up
script are homegrid's own files, the viewer's assets are served from a fixed table of the package's files.
"""

from __future__ import annotations

from importlib import resources
from importlib.abc import Traversable

from fastapi import FastAPI, HTTPException
from fastapi.responses import Response

__all__ = ["add_docs_routes"]

#: the files of Swagger UI the page loads, by their name under /docs/
_VENDOR = {"swagger-ui.css": "text/css; charset=utf-8", "swagger-ui-bundle.js": "text/javascript; charset=utf-8",
           "favicon.png": "image/png"}
_OWN = {"docs.js": "text/javascript; charset=utf-8"}


def _vendor_folder() -> Traversable:
    # only the package's files: its FastAPIOffline app would serve them with StaticFiles and an inline script
    return resources.files("fastapi_offline").joinpath("static")


def add_docs_routes(app: FastAPI) -> None:
    """Serve ``/docs`` (create the app with ``docs_url=None``) and its assets."""
    folder = _vendor_folder()
    own = resources.files("homegrid.api").joinpath("docs_files")
    files: dict[str, tuple[Traversable, str]] = {
        **{name: (folder / name, media) for name, media in _VENDOR.items()},
        **{name: (own / name, media) for name, media in _OWN.items()},
    }
    cache: dict[str, bytes] = {}

    def read(name: str) -> bytes:
        if name not in cache:
            node = files[name][0] if name in files else own / "index.html"
            cache[name] = node.read_bytes()
        return cache[name]

    @app.get("/docs", include_in_schema=False)
    def docs_page() -> Response:
        return Response(read("index.html"), media_type="text/html; charset=utf-8",
                        headers={"Cache-Control": "no-cache"})

    @app.get("/docs/{name}", include_in_schema=False)
    def docs_asset(name: str) -> Response:
        if name not in files:
            raise HTTPException(status_code=404, detail="not found")
        return Response(read(name), media_type=files[name][1], headers={"Cache-Control": "public, max-age=3600"})
