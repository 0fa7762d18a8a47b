"""gzip through ISA-L (issue 15): what any gzip reader decodes, the same bytes for the same body, and the
middleware's rules for what is coded kept from Starlette's."""

import gzip
import json

from fastapi import FastAPI
from fastapi.responses import PlainTextResponse, Response, StreamingResponse
from fastapi.testclient import TestClient

from homegrid.api.compression import JSON_GZIP_LEVEL, GZipMiddleware, gzip_body


def test_a_body_decodes_with_the_standard_library_and_codes_the_same_every_time():
    body = json.dumps({"values": [i * 0.125 for i in range(20_000)]}).encode()
    coded = gzip_body(body)
    assert gzip.decompress(coded) == body
    assert coded == gzip_body(body)  # no time in the header: one body, one byte sequence (its ETag)
    assert len(coded) < len(body) / 3


def _app() -> FastAPI:
    app = FastAPI()
    app.add_middleware(GZipMiddleware, minimum_size=1024, compresslevel=JSON_GZIP_LEVEL)
    text = "homegrid " * 1000

    @app.get("/big")
    def big() -> Response:
        return PlainTextResponse(text)

    @app.get("/small")
    def small() -> Response:
        return PlainTextResponse("ok")

    @app.get("/coded")
    def coded() -> Response:
        return Response(gzip_body(text.encode()), headers={"Content-Encoding": "gzip"}, media_type="text/plain")

    @app.get("/stream")
    def stream() -> Response:
        return StreamingResponse(iter([text.encode()] * 5), media_type="text/plain")

    return app


def test_the_middleware_codes_what_starlette_s_does():
    text = "homegrid " * 1000
    with TestClient(_app()) as client:
        r = client.get("/big", headers={"Accept-Encoding": "gzip"})
        assert r.headers["content-encoding"] == "gzip" and r.text == text
        assert int(r.headers["content-length"]) < len(text) / 10
        assert "gzip" not in client.get("/big", headers={"Accept-Encoding": "identity"}).headers.get(
            "content-encoding", "")
        assert "content-encoding" not in client.get("/small", headers={"Accept-Encoding": "gzip"}).headers
        passed = client.get("/coded", headers={"Accept-Encoding": "gzip"})  # coded once only
        assert passed.text == text
        streamed = client.get("/stream", headers={"Accept-Encoding": "gzip"})
        assert streamed.headers["content-encoding"] == "gzip" and streamed.text == text * 5


def test_the_middleware_codes_with_isa_l(monkeypatch):
    """Its compressor is ISA-L's, for whole and streamed bodies alike (it takes a quarter of zlib's time): this
    fails if a Starlette release stops asking the responder's ``compressor`` property, where ISA-L's is put."""
    from homegrid.api import compression

    made: list[object] = []
    real = compression.isal_zlib.compressobj

    def compressobj(*args: object) -> object:
        made.append(real(*args))
        return made[-1]

    monkeypatch.setattr(compression.isal_zlib, "compressobj", compressobj)
    text = "homegrid " * 1000
    with TestClient(_app()) as client:
        assert client.get("/big", headers={"Accept-Encoding": "gzip"}).text == text
        assert len(made) == 1
        assert client.get("/stream", headers={"Accept-Encoding": "gzip"}).text == text * 5
        assert len(made) == 2
        client.get("/small", headers={"Accept-Encoding": "gzip"})  # too small to code: no compressor made
        assert len(made) == 2
