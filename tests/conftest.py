"""Shared fixtures: a temporary store and a recorder in the site's zone; Debian's Chromium for the browser tests."""

from __future__ import annotations

import os
import tempfile
import zoneinfo
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from fastapi import FastAPI
from starlette.testclient import TestClient

from homegrid.hub.recorder import Recorder
from homegrid.readings import ReadingFrame
from homegrid.store import SQLiteStore

NEW_YORK = zoneinfo.ZoneInfo("America/New_York")
SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture
def store(tmp_path: Path):
    s = SQLiteStore(tmp_path / "homegrid.db", synchronous="NORMAL")
    yield s
    s.close()


@pytest.fixture
def recorder(store: SQLiteStore) -> Recorder:
    return Recorder(store, NEW_YORK, max_gap_s=300)


def behind_the_door(app: FastAPI, data_dir: Path) -> TestClient:
    """A client of an app behind the hub's door (``install_security`` on loopback) that sends the owner's token,
    as ``homegrid storm`` does."""
    from homegrid.api.security import install_security, policy_for
    from homegrid.config import ServerConfig
    from homegrid.owner import OwnerKey

    key = OwnerKey(data_dir)
    install_security(app, policy_for(ServerConfig(allowed_hosts=("testserver",)), key, "127.0.0.1"))
    return TestClient(app, headers={"Authorization": f"Bearer {key.token()}"})


def steady_frame(start_ms: int, n: int, step_ms: int = 60_000, **values: float) -> ReadingFrame:
    """n readings with constant values, one every step_ms."""
    t = start_ms + np.arange(n, dtype=np.int64) * step_ms
    return ReadingFrame(t, {k: np.full(n, float(v)) for k, v in values.items()})


@pytest.fixture(autouse=True, scope="session")
def _own_cache_dir(tmp_path_factory):
    """Keep the solar profile cache of a test run out of the user's cache folder."""
    import os

    old = os.environ.get("XDG_CACHE_HOME")
    os.environ["XDG_CACHE_HOME"] = str(tmp_path_factory.mktemp("cache"))
    yield
    if old is None:
        os.environ.pop("XDG_CACHE_HOME", None)
    else:
        os.environ["XDG_CACHE_HOME"] = old


@pytest.fixture(autouse=True, scope="session")
def _no_weather_from_the_network() -> Iterator[None]:
    """The hub's weather forecast ([planner] weather = "open-meteo" by default) never reaches the network in tests:
    its transport refuses, as a machine without network does; a test that wants replies sets its own."""
    import httpx

    from homegrid.hub import weather_cache

    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("no network in tests", request=request)

    old = weather_cache.TRANSPORT
    weather_cache.TRANSPORT = httpx.MockTransport(refuse)
    yield
    weather_cache.TRANSPORT = old


CHROMIUM = "/usr/bin/chromium"
# the closed network refuses Chromium's own background connections: switch them off
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]
ARTIFACTS = Path(os.environ.get("HOMEGRID_WEB_ARTIFACTS") or Path(tempfile.gettempdir()) / "homegrid-web")


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    """Debian's Chromium through Playwright, one per test module (no browser download)."""
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium "
                    "(apt-get install chromium; scripts/test does it)")
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        try:
            yield b
        finally:
            b.close()


#: modules whose every test is slow on its own (a hub process per test, a year simulated, thousands of examples)
SLOW_MODULES = {"test_fuzz_api", "test_fuzz_csv", "test_fuzz_devices", "test_crash", "test_shutdown", "test_serve"}
#: modules that run private Mosquitto brokers of their own (besides the session's `mosquitto` fixture)
MQTT_MODULES = {"test_mqtt"}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark tests by what they need, so `scripts/test -m "not browser"` (or "not mqtt", "not slow") leaves them out."""
    for item in items:
        module = item.module.__name__.rsplit(".", 1)[-1] if item.module else ""
        names = set(getattr(item, "fixturenames", ()))
        if "browser" in names:
            item.add_marker(pytest.mark.browser)
            item.add_marker(pytest.mark.slow)
        if "mosquitto" in names or module in MQTT_MODULES:
            item.add_marker(pytest.mark.mqtt)
        if module in SLOW_MODULES:
            item.add_marker(pytest.mark.slow)
