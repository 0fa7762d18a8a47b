"""The web app in a real browser: Debian's Chromium, driven by Playwright, against `homegrid serve` on the virtual home.

The hub runs in a temporary data directory with a site time zone chosen so that it is about 03:00 there now
(the virtual car is at home and plugged in), a small charger (so its session is still going), and a seed whose
outage schedule puts a sustained outage inside yesterday. Screenshots of every view are written under
``$HOMEGRID_WEB_ARTIFACTS`` (default: a ``homegrid-web`` folder in the temp directory).
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import pytest

CHROMIUM = "/usr/bin/chromium"
# the closed network refuses Chromium's own background connections: switch them off
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]
ARTIFACTS = Path(os.environ.get("HOMEGRID_WEB_ARTIFACTS") or Path(tempfile.gettempdir()) / "homegrid-web")
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 860}
TIMEOUT_MS = 15_000


# --- formatting as the page does it (homegrid/web/src/format.js) ---------------------------------------------

def fmt_kw(w: float) -> str:
    v = abs(w) / 1000
    return f"{v:.{2 if v < 1 else 1}f} kW"


def fmt_kwh(wh: float) -> str:
    v = abs(wh) / 1000
    return f"{v:.{2 if v < 1 else 1 if v < 100 else 0}f} kWh"


def fmt_pct(p: float) -> str:
    return f"{round(p)} %"


# --- a real hub -------------------------------------------------------------------------------------------------

def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def night_zone(now: datetime, hour: int = 3) -> str:
    """An IANA zone (``Etc/GMT±N``) where it is about ``hour`` o'clock at ``now``."""
    offset = (hour - now.astimezone(UTC).hour) % 24
    if offset > 14:
        offset -= 24
    if offset == 0:
        return "Etc/UTC"
    return f"Etc/GMT{'-' if offset > 0 else '+'}{abs(offset)}"  # Etc/GMT-5 is UTC+5


def pick_seed(per_year: float, day_start: datetime, day_end: datetime, now: datetime,
              min_s: float = 300.0, quiet_s: float = 900.0) -> tuple[int, tuple[datetime, datetime]]:
    """A virtual-home seed whose schedule has a sustained outage inside ``[day_start, day_end)`` and none near
    ``now``; and that outage (the virtual home's schedule is deterministic, by seed and year)."""
    from homegrid.devices.virtual.outages import outage_schedule
    from homegrid.readings import from_ms, to_ms

    for seed in range(1, 2000):
        s, e = outage_schedule(seed, per_year, to_ms(day_start), to_ms(now) + 3_600_000)
        near = (e > to_ms(now) - quiet_s * 1000) & (s < to_ms(now) + 600_000)
        inside = (s >= to_ms(day_start)) & (e <= to_ms(day_end)) & (e - s >= min_s * 1000)
        if not near.any() and inside.any():
            i = int(np.argmax(inside))
            return seed, (from_ms(int(s[i])), from_ms(int(e[i])))
    raise AssertionError("no seed gives an outage in the window")


@dataclass
class Served:
    url: str
    config: Path
    data_dir: Path
    tz: ZoneInfo
    proc: subprocess.Popen
    outage: tuple[datetime, datetime] | None = None

    def get(self, path: str) -> dict:
        with urllib.request.urlopen(self.url + path, timeout=10) as r:
            return json.loads(r.read())

    def cli(self, *args: str) -> str:
        out = subprocess.run([sys.executable, "-m", "homegrid.cli", *args, "--config", str(self.config),
                              "--data-dir", str(self.data_dir)], capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, out.stderr
        return out.stdout

    @property
    def today(self) -> date:
        return datetime.now(self.tz).date()


def start_hub(folder: Path, config: str, tz: ZoneInfo, polls: int = 2) -> Served:
    """Run ``homegrid serve`` on a free port with a config; wait until it has polled."""
    cfg = folder / "homegrid.toml"
    cfg.write_text(config)
    port = _free_port()
    data = folder / "data"
    env = {**os.environ, "HOMEGRID_DATA_DIR": str(data)}
    proc = subprocess.Popen([sys.executable, "-m", "homegrid.cli", "serve", "--config", str(cfg), "--port", str(port)],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    served = Served(f"http://127.0.0.1:{port}", cfg, data, tz, proc)
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"homegrid serve exited: {proc.stderr.read()}")
        try:
            if served.get("/api/v1/live")["health"]["device"]["polls"] >= polls:
                return served
        except OSError:
            pass
        time.sleep(0.2)
    stop_hub(served)
    raise AssertionError("the hub never answered")


def stop_hub(served: Served) -> None:
    served.proc.send_signal(signal.SIGINT)
    try:
        served.proc.wait(timeout=20)
    finally:
        served.proc.stderr.close()


def virtual_home_config(now: datetime) -> tuple[str, ZoneInfo, tuple[datetime, datetime]]:
    """The test home: night there now, a slow charger still charging the car, an outage yesterday."""
    zone = night_zone(now)
    tz = ZoneInfo(zone)
    yesterday = now.astimezone(tz).date() - timedelta(days=1)
    day_start = datetime.combine(yesterday, datetime.min.time(), tz)
    per_year = 2000.0
    seed, outage = pick_seed(per_year, day_start, day_start + timedelta(days=1), now)
    config = f"""
[site]
timezone = "{zone}"
[server]
backfill_days = 1.25
poll_interval_s = 1
[store]
flush_interval_s = 0.1
[virtual]
seed = {seed}
outages_per_year = {per_year}
ev_charger_kw = 0.5
ev_charge_limit_percent = 100
"""
    return config, tz, outage


# --- fixtures ---------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def hub(tmp_path_factory) -> Iterator[Served]:
    now = datetime.now(UTC)
    config, tz, outage = virtual_home_config(now)
    served = start_hub(tmp_path_factory.mktemp("web"), config, tz)
    served.outage = outage
    try:
        yield served
    finally:
        stop_hub(served)


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
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


class Page:
    """A browser page on the hub that fails the test on any script error or failed request."""

    def __init__(self, browser, hub: Served, viewport: dict, theme: str = "light") -> None:
        self.context = browser.new_context(viewport=viewport, color_scheme=theme)
        self.page = self.context.new_page()
        self.page.set_default_timeout(TIMEOUT_MS)
        self.hub = hub
        self.errors: list[str] = []
        self.page.on("pageerror", lambda e: self.errors.append(f"page error: {e}"))
        self.page.on("console", lambda m: m.type == "error" and self.errors.append(f"console: {m.text}"))
        self.name = "phone" if viewport["width"] < 600 else "desktop"

    def open(self, route: str) -> None:
        self.page.goto(f"{self.hub.url}/#/{route}")
        self.page.wait_for_selector("main[data-view]")

    def shot(self, view: str) -> Path:
        path = ARTIFACTS / f"{view}-{self.name}.png"
        self.page.screenshot(path=str(path), full_page=True)
        return path

    def close(self) -> None:
        self.context.close()
        assert not self.errors, self.errors


@pytest.fixture
def desktop(browser, hub) -> Iterator[Page]:
    page = Page(browser, hub, DESKTOP)
    yield page
    page.close()


@pytest.fixture
def phone(browser, hub) -> Iterator[Page]:
    page = Page(browser, hub, PHONE)
    yield page
    page.close()


def read_same_time(page: Page, selector: str, read: str, hub: Served, tries: int = 20) -> tuple[dict, dict]:
    """What the page shows and /api/v1/live, for the same reading (both move every poll)."""
    for _ in range(tries):
        shown = page.page.evaluate(read)
        live = hub.get("/api/v1/live")
        if shown and shown["time"] == live["time"]:
            return shown, live
        # at least as new (a poll may land between the two reads, and the page then moves past it)
        page.page.wait_for_function(
            f"document.querySelector('{selector}')?.dataset.time >= {json.dumps(live['time'])}", timeout=5000)
    raise AssertionError("the page never showed the newest reading")


# --- the tests --------------------------------------------------------------------------------------------------

READ_NOW = """() => {
  const s = document.querySelector('section.now');
  if (!s) return null;
  const out = {time: s.dataset.time, nodes: {}, flows: {}};
  for (const n of s.querySelectorAll('[data-node]')) out.nodes[n.dataset.node] =
    {value: Number(n.dataset.value), api: n.dataset.api, text: n.querySelector('[data-role=node-kw]').textContent};
  for (const f of s.querySelectorAll('[data-flow]')) out.flows[f.dataset.flow] =
    {value: Number(f.dataset.value), text: f.querySelector('[data-role=flow-kw]')?.textContent ?? null};
  return out;
}"""


def test_now_flow_matches_live(desktop, hub):
    from homegrid.energy.flows import split_flows

    desktop.open("now")
    desktop.page.wait_for_selector("section.now [data-node=solar]")
    shown, live = read_same_time(desktop, "section.now", READ_NOW, hub)
    v = live["values"]
    assert shown["nodes"]["solar"] == {"value": pytest.approx(v["solar_power"]), "api": "/api/v1/live",
                                       "text": fmt_kw(v["solar_power"])}
    assert shown["nodes"]["home"]["text"] == fmt_kw(v["home_power"])
    assert shown["nodes"]["grid"]["text"] == fmt_kw(v["grid_power"])
    assert shown["nodes"]["battery"]["text"] == fmt_pct(v["battery_soc"])
    assert shown["nodes"]["car"]["text"] == fmt_kw(v["ev_power"])
    one = lambda x: np.array([max(x, 0.0)])  # noqa: E731
    expected = {k: float(a[0]) for k, a in split_flows(
        one(v["solar_power"]), one(v["battery_power"]), one(v["grid_power"]),
        one(v["home_power"]), one(-v["battery_power"]), one(-v["grid_power"])).items() if "_to_" in k}
    expected["home_to_car"] = v["ev_power"]
    for name, w in expected.items():
        if name == "grid_to_battery" and w <= 10:
            continue  # drawn only when it flows (it shares its line with battery_to_grid)
        assert shown["flows"][name]["value"] == pytest.approx(w, abs=0.01), name
        assert shown["flows"][name]["text"] == (fmt_kw(w) if w > 10 else None), name
    assert sum(1 for f in shown["flows"].values() if f["text"]) >= 1  # the home draws from somewhere
    # live without reloading: the stream moves the page on to newer readings
    first = shown["time"]
    desktop.page.wait_for_function(f"document.querySelector('section.now').dataset.time > {json.dumps(first)}")
    desktop.shot("now")


def test_day_totals_match_report(desktop, hub):
    day = (hub.today - timedelta(days=1)).isoformat()
    desktop.open(f"history/day/{day}")
    desktop.page.wait_for_selector("#total-solar")
    desktop.page.wait_for_selector(".chart canvas")
    report = json.loads(hub.cli("report", "--from", day, "--to", day, "--json"))
    assert report["days_with_data"] == 1
    section = desktop.page.locator("section.history")
    assert section.get_attribute("data-from") == day and section.get_attribute("data-step") == "minute"
    for key in ("solar", "home", "ev", "grid_import", "grid_export", "battery_charge", "battery_discharge"):
        figure = desktop.page.locator(f"#total-{key} .tile-value")
        assert figure.get_attribute("data-api") == "/api/v1/report"
        assert float(figure.get_attribute("data-value")) == pytest.approx(report["energy_wh"][key], rel=1e-9, abs=1e-6)
        assert figure.text_content() == fmt_kwh(report["energy_wh"][key]), key
    assert report["energy_wh"]["home"] > 1000
    own = desktop.page.locator("#total-self_powered .tile-value")
    assert own.text_content() == fmt_pct(report["self_powered_percent"])
    # the Sankey carries every flow of the report (links under 1 Wh are left out of the drawing)
    links = desktop.page.locator(".sankey .sankey-link")
    placed = sum(float(links.nth(i).get_attribute("data-value")) for i in range(links.count()))
    assert placed == pytest.approx(sum(report["flows_wh"].values()), abs=10.0)
    # hover: the exact figures of a moment
    box = desktop.page.locator(".chart .u-over").bounding_box()
    desktop.page.mouse.move(box["x"] + box["width"] * 0.5, box["y"] + box["height"] * 0.5)
    readout = desktop.page.locator(".readout [data-field=solar_w]")
    assert re.fullmatch(r"\d+\.\d+ kW", readout.text_content())
    desktop.shot("day")
    # the week around it, drawn hourly
    desktop.page.get_by_role("button", name="Week").click()
    desktop.page.wait_for_selector("section.history[data-step=hour] .chart canvas")
    desktop.shot("week")


def test_outage_in_banner_and_list(desktop, hub):
    start, _ = hub.outage
    day = start.astimezone(hub.tz).date().isoformat()
    desktop.open("outages")
    desktop.page.wait_for_selector("#saved-banner")
    report = hub.get("/api/v1/outages")
    month = hub.today.isoformat()[:7]
    this_month = [m for m in report["months"] if m["month"] == month]
    banner = desktop.page.locator("#saved-banner").text_content()
    if this_month:
        assert this_month[0]["sentence"] in banner
        assert "saved you from" in banner
    else:
        assert "No grid interruptions this month" in banner
    rows = desktop.page.locator("#outage-list tbody tr")
    starts = [datetime.fromisoformat(rows.nth(i).get_attribute("data-start")) for i in range(rows.count())]
    assert len(starts) == len(report["events"])
    found = [s for s in starts if abs((s - start).total_seconds()) < 60]
    assert found, f"the scheduled outage at {start} is not in the list {starts}"
    row = desktop.page.locator(f"#outage-list tbody tr[data-start='{found[0].isoformat()}']")
    if not row.count():  # the API's own spelling of the time
        row = rows.nth(starts.index(found[0]))
    assert row.get_attribute("data-day") == day
    desktop.shot("outages")
    row.get_by_role("link").click()
    desktop.page.wait_for_selector(f"section.history[data-from='{day}'] .chart canvas")
    assert desktop.page.url.endswith(f"#/history/day/{day}")
    assert "shaded" in desktop.page.locator("section.history").text_content()  # drawn over the chart


READ_CAR = """() => {
  const s = document.querySelector('section.car');
  if (!s) return null;
  const val = (id) => document.querySelector(id)?.dataset.value;
  const txt = (id) => document.querySelector(id)?.textContent;
  return {time: s.dataset.time, state: document.querySelector('#car-card').dataset.state,
    soc: Number(val('#car-soc')), soc_text: txt('#car-soc'), power: Number(val('#car-power .tile-value')),
    power_text: txt('#car-power .tile-value'), state_text: txt('#car-state .tile-value'),
    ttf_text: txt('#car-ttf .tile-value'), range: Number(val('#car-range .tile-value'))};
}"""


def test_car_card_follows_the_charging_session(desktop, hub):
    desktop.open("car")
    desktop.page.wait_for_selector("#car-card[data-state=charging]")
    seen = []
    for _ in range(2):
        shown, live = read_same_time(desktop, "section.car", READ_CAR, hub)
        v = live["values"]
        assert v["ev_charging_state"] == "charging" and v["ev_power"] > 0
        assert shown["state_text"] == "Charging"
        assert shown["soc"] == pytest.approx(v["ev_soc"]) and shown["soc_text"] == fmt_pct(v["ev_soc"])
        assert shown["power"] == pytest.approx(v["ev_power"]) and shown["power_text"] == fmt_kw(v["ev_power"])
        assert shown["range"] == pytest.approx(v["ev_range"])
        assert shown["ttf_text"] != "–"
        seen.append(shown)
        desktop.page.wait_for_function(
            f"document.querySelector('section.car').dataset.time > {json.dumps(shown['time'])}")
    assert seen[1]["soc"] > seen[0]["soc"]  # charging, as it happens
    # where this week's charge came from, as /api/v1/report says
    week = desktop.page.locator("#car-week")
    week.locator("[data-source=solar] b").wait_for()
    body = hub.get(f"/api/v1/report?from={week.get_attribute('data-from')}&to={week.get_attribute('data-to')}")
    s = body["ev_sources_wh"]
    total = s["solar"] + s["battery"] + s["grid"]
    for k in ("solar", "battery", "grid"):
        assert week.locator(f"[data-source={k}] b").text_content() == fmt_pct(100 * s[k] / total)
    desktop.shot("car")


def test_system_shows_device_health_and_exports(desktop, hub):
    desktop.open("system")
    desktop.page.wait_for_selector("[data-device=virtual]")
    live = hub.get("/api/v1/live")
    card = desktop.page.locator("[data-device=virtual]")
    errors = card.locator("[data-field='health.devices[0].errors']")
    assert errors.text_content() == str(live["health"]["devices"][0]["errors"])
    assert "working" in card.text_content()
    href = desktop.page.locator("#export-link").get_attribute("href")
    assert href.startswith("/api/v1/export.csv?from=")
    csv = desktop.page.request.get(hub.url + href)
    assert csv.ok and csv.text().startswith("time,")
    desktop.shot("system")
    # dark theme, kept across reloads
    toggle = desktop.page.locator("button.theme")
    for _ in range(3):  # auto, light, dark
        if "Switch to dark" in toggle.get_attribute("aria-label"):
            break
        toggle.click()
    toggle.click()
    desktop.page.wait_for_function("document.documentElement.dataset.theme === 'dark'")
    assert desktop.page.evaluate("document.documentElement.dataset.theme") == "dark"
    desktop.page.reload()
    desktop.page.wait_for_selector("[data-device=virtual]")
    assert desktop.page.evaluate("document.documentElement.dataset.theme") == "dark"
    desktop.open("now")
    desktop.page.wait_for_selector("section.now [data-node=solar]")
    desktop.shot("now-dark")


def test_phone_every_view_fits_and_works_by_keyboard(phone, hub):
    day = (hub.today - timedelta(days=1)).isoformat()
    for view, ready in [("now", "section.now [data-node=home]"), (f"history/day/{day}", ".chart canvas"),
                        ("car", "#car-card"), ("outages", "#saved-banner"), ("system", "[data-device=virtual]")]:
        phone.open(view)
        phone.page.wait_for_selector(ready)
        width = phone.page.evaluate("document.documentElement.scrollWidth")
        assert width <= PHONE["width"], f"{view} is {width} px wide on a phone"
        assert phone.page.get_by_role("navigation", name="Views").is_visible()
        phone.shot(view.split("/")[0])
    # keyboard: the skip link comes first, the views are reachable by Tab and Enter
    phone.open("now")
    phone.page.keyboard.press("Tab")
    assert phone.page.evaluate("document.activeElement.className") == "skip"
    for _ in range(3):  # skip link, brand, Now, History
        phone.page.keyboard.press("Tab")
    assert phone.page.evaluate("document.activeElement.dataset.view") == "history"
    phone.page.keyboard.press("Enter")
    phone.page.wait_for_selector("section.history")


def test_page_weight_and_no_outside_requests(browser, hub):
    page = Page(browser, hub, DESKTOP)
    sizes: dict[str, int] = {}
    outside: list[str] = []

    def seen(response) -> None:
        url = response.url
        if not url.startswith(hub.url):
            outside.append(url)
        elif "/api/" not in url:
            sizes[url] = int(response.headers.get("content-length") or 0)

    page.page.on("response", seen)
    started = time.monotonic()
    page.open("now")
    page.page.wait_for_selector("section.now [data-node=solar]")
    first_load_s = time.monotonic() - started
    page.close()
    assert not outside
    assert sizes and sum(sizes.values()) < 500_000, sizes  # compressed, as sent
    assert first_load_s < 3.0  # the budget is 1 s on loopback; leave room for a loaded CI machine

