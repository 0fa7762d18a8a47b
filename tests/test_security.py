"""The owner's key (issue 10, item 1): only the owner changes the home, only through the hub's own name and
origin, with a JSON body; reads need the key too beyond loopback; every page is under a strict
Content-Security-Policy; the token is the owner's alone, and renewing it ends every session."""

from __future__ import annotations

import json
import logging
import os
import re
import signal
import socket
import stat
import subprocess
import sys
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from homegrid.api.app import create_app
from homegrid.api.security import host_allowed, install_security, is_loopback, policy_for
from homegrid.api.settings import add_settings_routes
from homegrid.api.storm import add_storm_routes
from homegrid.cli import main
from homegrid.config import ConfigError, ServerConfig
from homegrid.devices.virtual import VirtualHome
from homegrid.devices.virtual.control import VirtualControl
from homegrid.hub.queries import Queries
from homegrid.owner import OwnerKey, OwnerKeyError, load_or_create, read_token, renew, session_value, token_path
from homegrid.store import SQLiteStore

from .conftest import NEW_YORK, steady_frame
from .test_settings import NIGHT, _home
from .waiting import wait_for

RESERVE = {"battery_reserve": 35}


@dataclass
class Door:
    """An API behind the door: the settings of a virtual home, storm switch routes, the readings."""

    client: TestClient
    key: OwnerKey
    home: VirtualHome
    data_dir: Path

    @property
    def bearer(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key.token()}"}

    def reserve(self) -> float:
        import asyncio

        return asyncio.run(VirtualControl(self.home).backup_reserve())


@pytest.fixture
def door_factory(tmp_path: Path):
    stores: list[SQLiteStore] = []

    def make(bind: str = "127.0.0.1", **server: object) -> Door:
        store = SQLiteStore(tmp_path / f"homegrid{len(stores)}.db", synchronous="NORMAL")
        stores.append(store)
        store.write_readings(steady_frame(1_750_000_000_000, 3, solar_power=1000.0, home_power=500.0))
        app = create_app(Queries(store, NEW_YORK))
        home = _home(NIGHT)
        add_settings_routes(app, VirtualControl(home))
        add_storm_routes(app, None)
        data_dir = tmp_path / "data"
        key = OwnerKey(data_dir)
        config = ServerConfig(**{"allowed_hosts": ("testserver",), **server})  # type: ignore[arg-type]
        install_security(app, policy_for(config, key, bind))
        return Door(TestClient(app), key, home, data_dir)

    yield make
    for s in stores:
        s.close()


@pytest.fixture
def door(door_factory) -> Door:
    return door_factory()


# -- writes ---------------------------------------------------------------------------------------------------


def test_a_write_without_the_owners_credential_is_refused(door):
    r = door.client.post("/api/v1/settings", json=RESERVE)
    assert r.status_code == 401 and "homegrid token" in r.json()["detail"]
    assert r.headers["www-authenticate"] == "Bearer"
    wrong = door.client.post("/api/v1/settings", json=RESERVE, headers={"Authorization": "Bearer " + "x" * 43})
    assert wrong.status_code == 401
    forged = door.client.post("/api/v1/settings", json=RESERVE, headers={"Cookie": "homegrid_session=" + "0" * 64})
    assert forged.status_code == 401
    assert door.client.post("/api/v1/storm", json={"mode": "on"}).status_code == 401
    assert door.reserve() == 20.0  # nothing changed


def test_the_owners_token_changes_the_battery_and_the_log_names_it(door, caplog):
    caplog.set_level(logging.INFO, logger="homegrid")
    r = door.client.post("/api/v1/settings", json=RESERVE, headers=door.bearer)
    assert r.status_code == 200 and r.json()["battery_reserve"] == 35.0
    assert door.reserve() == 35.0
    assert "settings: reserve 35.0, mode None (owner token)" in caplog.text
    assert door.key.token() not in caplog.text  # no secret in any log


@pytest.mark.parametrize("host", ["evil.example", "evil.example:8080", "attacker.127.0.0.1.nip.io", "", "a b"])
def test_a_foreign_host_is_refused_even_with_the_token(door, host):
    """A DNS-rebinding page reaches the hub under its own name: its Host gives it away."""
    r = door.client.post("/api/v1/settings", json=RESERVE, headers={**door.bearer, "Host": host})
    assert r.status_code == 403 and "allowed_hosts" in r.json()["detail"]
    assert door.client.get("/api/v1/live", headers={"Host": host}).status_code == 403  # reads too
    assert door.reserve() == 20.0


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.1:8080", "192.168.1.20:8080", "[::1]:8080", "[fe80::1]",
                                  "localhost:8080", "LOCALHOST", f"{socket.gethostname()}:8080",
                                  f"{socket.gethostname().split('.')[0]}.local"])
def test_the_hubs_own_names_and_addresses_are_taken(door, host):
    r = door.client.post("/api/v1/settings", json=RESERVE, headers={**door.bearer, "Host": host})
    assert r.status_code == 200, r.text


def test_allowed_hosts_and_the_bind_name_are_taken(door_factory):
    door = door_factory("hub.home.arpa", allowed_hosts=("energy.example.net",))
    for host in ("energy.example.net", "hub.home.arpa:8080"):
        assert door.client.get("/api/v1/site", headers={**door.bearer, "Host": host}).status_code == 200
    assert door.client.get("/api/v1/site", headers={**door.bearer, "Host": "other.example.net"}).status_code == 403


@pytest.mark.parametrize("origin", ["http://evil.example", "null", "https://testserver", "http://testserver:8080",
                                    "http://testserver.evil.example"])
def test_a_foreign_origin_is_refused(door, origin):
    r = door.client.post("/api/v1/settings", json=RESERVE, headers={**door.bearer, "Origin": origin})
    assert r.status_code == 403 and "Origin" in r.json()["detail"]
    assert door.reserve() == 20.0


def test_the_hubs_own_origin_is_taken(door):
    for origin in ("http://testserver", "http://testserver:80"):
        r = door.client.post("/api/v1/settings", json=RESERVE, headers={**door.bearer, "Origin": origin})
        assert r.status_code == 200, origin


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data",
                                          None])
def test_a_write_that_is_not_json_is_refused(door, content_type):
    """What a cross-site form or a simple fetch can send without a preflight; refused whatever FastAPI does."""
    headers = {**door.bearer, **({"Content-Type": content_type} if content_type else {})}
    r = door.client.post("/api/v1/settings", content=json.dumps(RESERVE), headers=headers)
    assert r.status_code == 415
    assert door.reserve() == 20.0
    ok = door.client.post("/api/v1/settings", content=json.dumps(RESERVE),
                          headers={**door.bearer, "Content-Type": "application/json; charset=utf-8"})
    assert ok.status_code == 200


# -- signing in -------------------------------------------------------------------------------------------------


def test_the_signin_link_sets_a_strict_httponly_cookie_that_authorizes_a_write(door, caplog):
    caplog.set_level(logging.INFO, logger="homegrid")
    r = door.client.get(f"/signin?token={door.key.token()}", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/"
    assert r.headers["cache-control"] == "no-store"
    cookie = r.headers["set-cookie"]
    assert cookie.startswith(f"homegrid_session={session_value(door.key.token())};")
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie.replace("Strict", "strict") and "Path=/" in cookie
    assert door.key.token() not in cookie  # the cookie is derived from the token, not the token
    assert door.client.get("/api/v1/session").json() == {"signed_in": True, "as": "owner session",
                                                          "reads_need_sign_in": False}
    ok = door.client.post("/api/v1/settings", json={"operation_mode": "backup"})
    assert ok.status_code == 200 and ok.json()["operation_mode"] == "backup"
    assert "settings: reserve None, mode backup (owner session)" in caplog.text
    assert door.key.token() not in caplog.text


def test_a_wrong_signin_link_sets_no_cookie(door):
    r = door.client.get("/signin?token=not-the-token", follow_redirects=False)
    assert r.status_code == 401 and "set-cookie" not in r.headers and "homegrid token" in r.text
    assert door.client.get("/signin", follow_redirects=False).status_code == 401
    assert door.client.post("/api/v1/settings", json=RESERVE).status_code == 401


def test_signing_in_and_out_through_the_api(door):
    assert door.client.post("/api/v1/session", json={"token": "wrong"}).status_code == 401
    assert door.client.get("/api/v1/session").json()["signed_in"] is False
    r = door.client.post("/api/v1/session", json={"token": door.key.token()})
    assert r.status_code == 200 and "HttpOnly" in r.headers["set-cookie"]
    assert door.client.post("/api/v1/settings", json=RESERVE).status_code == 200
    out = door.client.delete("/api/v1/session", headers={"Content-Type": "application/json"})
    assert out.status_code == 200 and "Max-Age=0" in out.headers["set-cookie"]
    assert door.client.post("/api/v1/settings", json=RESERVE).status_code == 401
    # signing in is still a write: a cross-site page cannot sign a browser in (login CSRF)
    foreign = door.client.post("/api/v1/session", json={"token": door.key.token()},
                               headers={"Origin": "http://evil.example"})
    assert foreign.status_code == 403 and "set-cookie" not in foreign.headers
    form = door.client.post("/api/v1/session", data={"token": door.key.token()})
    assert form.status_code == 415


def test_renewing_the_token_ends_every_session_and_the_old_token(door):
    old = door.key.token()
    door.client.get(f"/signin?token={old}", follow_redirects=False)
    assert door.client.post("/api/v1/settings", json=RESERVE).status_code == 200
    new = renew(door.data_dir)
    assert new != old
    assert door.client.post("/api/v1/settings", json=RESERVE).status_code == 401  # the session is over
    assert door.client.post("/api/v1/settings", json=RESERVE, headers={"Authorization": f"Bearer {old}"}
                            ).status_code == 401
    assert door.client.post("/api/v1/settings", json=RESERVE, headers={"Authorization": f"Bearer {new}"}
                            ).status_code == 200


# -- reads ------------------------------------------------------------------------------------------------------


def test_reads_on_loopback_are_free(door):
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert door.client.get("/api/v1/live").status_code == 200


@pytest.mark.parametrize("bind", ["0.0.0.0", "::", "192.168.1.20", "hub.home.arpa"])
def test_reads_beyond_loopback_need_the_credential(door_factory, bind):
    door = door_factory(bind)
    for path in ("/api/v1/live", "/api/v1/energy?from=2025-06-01&to=2025-06-02", "/api/v1/export.csv?from=2025-06-01"
                 "&to=2025-06-02", "/api/v1/settings", "/api/v1/stream?max_events=1", "/openapi.json"):
        r = door.client.get(path, headers={"Host": "127.0.0.1"})
        assert r.status_code == 401 and "open_reads" in r.json()["detail"], path
    # the way in stays open: the app's shell and the sign-in
    assert door.client.get("/", headers={"Host": "127.0.0.1"}).status_code == 200
    assert door.client.get("/static/app.js", headers={"Host": "127.0.0.1"}).status_code == 200
    assert door.client.get("/api/v1/session", headers={"Host": "127.0.0.1"}).json() == {
        "signed_in": False, "as": None, "reads_need_sign_in": True}
    assert door.client.get("/api/v1/live", headers={**door.bearer, "Host": "127.0.0.1"}).status_code == 200
    door.client.get(f"/signin?token={door.key.token()}", headers={"Host": "127.0.0.1"}, follow_redirects=False)
    assert door.client.get("/api/v1/live", headers={"Host": "127.0.0.1"}).status_code == 200


def test_open_reads_opens_reads_to_the_lan_but_not_writes(door_factory):
    door = door_factory("0.0.0.0", open_reads=True)
    assert door.client.get("/api/v1/live").status_code == 200
    assert door.client.post("/api/v1/settings", json=RESERVE).status_code == 401


def test_the_live_stream_passes_through_the_door(door):
    with door.client.stream("GET", "/api/v1/stream?max_events=1") as r:
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
        assert r.headers["x-content-type-options"] == "nosniff"
        body = "".join(r.iter_text())
    assert body.startswith("event: live\ndata: ") and '"solar_power"' in body


# -- headers ----------------------------------------------------------------------------------------------------


def test_every_response_carries_the_security_headers(door):
    replies = [door.client.get("/"), door.client.get("/api/v1/live"), door.client.get("/static/app.css"),
               door.client.post("/api/v1/settings", json=RESERVE),
               door.client.get("/", headers={"Host": "evil.example"}), door.client.get("/nowhere")]
    for r in replies:
        csp = r.headers["content-security-policy"]
        directives = dict(d.strip().split(" ", 1) for d in csp.split(";"))
        assert directives["default-src"] == "'self'" and directives["frame-ancestors"] == "'none'"
        assert directives["style-src"] == "'self'" and directives["connect-src"] == "'self'"
        assert directives["base-uri"] == "'none'" and directives["form-action"] == "'self'"
        assert directives["script-src"].startswith("'self'") and "unsafe" not in csp
        assert "http" not in csp and "*" not in csp  # no outside source
        assert r.headers["x-content-type-options"] == "nosniff"
        assert r.headers["x-frame-options"] == "DENY"
        assert r.headers["referrer-policy"] == "no-referrer"


def test_the_pages_inline_script_is_allowed_by_its_hash_only(door):
    import base64
    import hashlib

    page = door.client.get("/").text
    script = re.search(r"<script>(.*?)</script>", page, re.S)[1]
    digest = base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()
    assert f"'sha256-{digest}'" in door.client.get("/").headers["content-security-policy"]
    assert 'style="' not in page  # style attributes would need 'unsafe-inline'


def test_no_cors_unless_configured(door, door_factory):
    preflight = {"Origin": "http://ha.example:8123", "Access-Control-Request-Method": "POST",
                 "Access-Control-Request-Headers": "authorization,content-type"}
    r = door.client.get("/api/v1/live", headers={"Origin": "http://ha.example:8123"})
    assert "access-control-allow-origin" not in r.headers
    assert "access-control-allow-origin" not in door.client.options("/api/v1/settings", headers=preflight).headers
    cors = door_factory(cors_origins=("http://ha.example:8123",))
    ok = cors.client.options("/api/v1/settings", headers=preflight)
    assert ok.status_code == 200 and ok.headers["access-control-allow-origin"] == "http://ha.example:8123"
    write = cors.client.post("/api/v1/settings", json=RESERVE,
                             headers={**cors.bearer, "Origin": "http://ha.example:8123"})
    assert write.status_code == 200 and write.headers["access-control-allow-origin"] == "http://ha.example:8123"
    assert cors.client.post("/api/v1/settings", json=RESERVE, headers={"Origin": "http://ha.example:8123"}
                            ).status_code == 401  # another origin still needs the owner's token
    other = {**preflight, "Origin": "http://evil.example"}
    assert "access-control-allow-origin" not in cors.client.options("/api/v1/settings", headers=other).headers


def test_host_rules():
    names = frozenset({"localhost", "hub"})
    assert host_allowed("10.0.0.7:8080", names) and host_allowed("[2001:db8::1]:8080", names)
    assert host_allowed("hub.", names) and host_allowed("HUB:80", names)
    assert not host_allowed("hub.evil.example", names) and not host_allowed(None, names)
    assert not host_allowed("[hub]:80", names) and not host_allowed("hub:port", names)
    with pytest.raises(ConfigError, match="allowed_hosts"):
        ServerConfig(allowed_hosts=("http://hub:8080",))
    with pytest.raises(ConfigError, match="cors_origins"):
        ServerConfig(cors_origins=("*",))


# -- the token --------------------------------------------------------------------------------------------------


def test_the_token_file_is_the_owners_alone(tmp_path):
    data = tmp_path / "new" / "data"
    token, created = load_or_create(data)
    assert created and len(token) >= 43
    path = token_path(data)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(data.stat().st_mode) == 0o700
    assert load_or_create(data) == (token, False)
    new = renew(data)
    assert new != token and read_token(data) == new and stat.S_IMODE(path.stat().st_mode) == 0o600
    os.chmod(path, 0o644)
    with pytest.raises(OwnerKeyError, match="other users"):
        read_token(data)
    assert [p.name for p in data.iterdir()] == ["owner-token"]  # no temporary file left behind


def test_homegrid_token_prints_the_link_and_renews(tmp_path, capsys):
    cfg = tmp_path / "homegrid.toml"
    cfg.write_text("[server]\nport = 8181\n")
    args = ["--config", str(cfg), "--create", "--data-dir", str(tmp_path / "data")]
    assert main(["token", *args]) == 0
    out = capsys.readouterr().out
    token = read_token(tmp_path / "data")
    assert f"sign-in link: http://127.0.0.1:8181/signin?token={token}\n" in out and f"token: {token}\n" in out
    assert main(["token", "--renew", *args, "--url", "http://hub.local:8181"]) == 0
    renewed = read_token(tmp_path / "data")
    assert renewed != token and f"sign-in link: http://hub.local:8181/signin?token={renewed}" in capsys.readouterr().out


def test_storm_without_a_token_says_where_to_find_it(tmp_path, capsys):
    cfg = tmp_path / "homegrid.toml"
    cfg.write_text("")
    assert main(["storm", "on", "--config", str(cfg), "--data-dir", str(tmp_path / "none")]) == 2
    assert "no owner token" in capsys.readouterr().err


# -- a real hub -------------------------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _serve(tmp_path: Path, log: Path) -> tuple[subprocess.Popen, str]:
    cfg = tmp_path / "homegrid.toml"
    cfg.write_text("[server]\nbackfill_days = 0.02\npoll_interval_s = 0.5\n[virtual]\noutages_per_year = 0\n")
    port = _free_port()
    with log.open("w") as err:
        proc = subprocess.Popen([sys.executable, "-m", "homegrid.cli", "serve", "--config", str(cfg), "--port",
                                 str(port), "--create", "--data-dir", str(tmp_path / "data")],
                                stdout=subprocess.DEVNULL, stderr=err)
    base = f"http://127.0.0.1:{port}"

    def answers() -> bool:
        assert proc.poll() is None, log.read_text()
        urllib.request.urlopen(f"{base}/api/v1/site", timeout=2).close()
        return True

    try:
        wait_for(answers, timeout=60, interval=0.2, retry_on=(OSError,), what="the hub never answered")
    except BaseException:
        proc.kill()
        raise
    return proc, base


def _stop(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=20) == 0


def _post(url: str, body: dict, headers: dict[str, str]) -> tuple[int, dict]:
    request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST", headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as r:
            return r.status, json.load(r)
    except urllib.error.HTTPError as exc:
        return exc.code, json.load(exc)


def test_a_real_hub_refuses_an_unauthenticated_write_and_prints_its_link_once(tmp_path):
    proc, base = _serve(tmp_path, tmp_path / "first.log")
    try:
        json_type = {"Content-Type": "application/json"}
        status, body = _post(f"{base}/api/v1/settings", RESERVE, json_type)
        assert status == 401 and "homegrid token" in body["detail"]
        status, _ = _post(f"{base}/api/v1/settings", RESERVE, {**json_type, "Host": "rebound.evil.example"})
        assert status == 403
        token = read_token(tmp_path / "data")
        assert stat.S_IMODE((tmp_path / "data").stat().st_mode) == 0o700
        assert stat.S_IMODE(token_path(tmp_path / "data").stat().st_mode) == 0o600
        status, body = _post(f"{base}/api/v1/settings", RESERVE, {**json_type, "Authorization": f"Bearer {token}"})
        assert status == 200 and body["battery_reserve"] == 35.0
    finally:
        _stop(proc)
    first = (tmp_path / "first.log").read_text()
    assert first.count(f"{base}/signin?token={token}") == 1  # printed once, at the first start
    assert "settings: reserve 35.0, mode None (owner token)" in first
    proc, base = _serve(tmp_path, tmp_path / "second.log")
    _stop(proc)
    again = (tmp_path / "second.log").read_text()
    assert "polling virtual" in again and token not in again and "signin" not in again
