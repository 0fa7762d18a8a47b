"""The API's JSON: strict (``allow_nan=False``), with every non-finite number sent as ``null``.

Starlette's ``JSONResponse`` refuses NaN and infinity with a 500; this class sends them as
``null`` instead (:func:`homegrid.strictjson.finite`), so no stored value can break a reply.
"""

from __future__ import annotations

from typing import Any

from fastapi.responses import JSONResponse

from homegrid.strictjson import dumps

__all__ = ["StrictJSONResponse"]


class StrictJSONResponse(JSONResponse):
    """A JSON reply whose NaN and infinite numbers are ``null``."""

    def render(self, content: Any) -> bytes:
        return dumps(content, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
