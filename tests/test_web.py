"""The web app in a real browser: Debian's Chromium, driven by Playwright, against `homegrid serve` on the virtual home.

The hub runs in a temporary data directory with a site time zone chosen so that it is about 03:00 there now
(``$HOMEGRID_WEB_HOUR`` sets another hour: ``scripts/screenshots`` asks for 13:00, daylight for the README), the site's
longitude matching its zone (so the sun keeps the zone's clock), a car that stays home on a small charger (so its
session is still going) and a seed whose outage schedule puts a sustained outage inside yesterday and none now. Two
more hubs run for their own tests: one whose grid is down now and comes back a few seconds later, and one in
America/New_York with the history of the last 23-hour and 25-hour days. Screenshots of every view are written under
``$HOMEGRID_WEB_ARTIFACTS`` (default: a ``homegrid-web`` folder in the temp directory).
"""

from __future__ import annotations

import json
import math
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import pytest

from .conftest import ARTIFACTS
from .formatjs import format_js
from .waiting import wait_for

PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 860}
TIMEOUT_MS = 15_000
# the test home's local hour now: 3 (night, the default) or, for the README's screenshots, 13
HOUR = int(os.environ.get("HOMEGRID_WEB_HOUR") or 3)


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


def site_longitude(tz: ZoneInfo, now: datetime) -> float:
    """The longitude whose mean solar time is the zone's clock at ``now`` [degrees east]."""
    east = 15.0 * tz.utcoffset(now).total_seconds() / 3600
    return (east + 180.0) % 360.0 - 180.0


def car_home(seed: int, zone: str, now: datetime, margin_s: float = 3600.0) -> bool:
    """Whether the virtual car (no commute: day trips only) is at home around ``now``."""
    from homegrid.devices.virtual.ev import trip_schedule
    from homegrid.readings import to_ms

    dep, _, _ = trip_schedule(seed, zone, 0.0, 0.16, to_ms(now) - int(margin_s * 1000), to_ms(now) + 600_000)
    return len(dep) == 0


def pick_seed(per_year: float, day_start: datetime, day_end: datetime, now: datetime, min_s: float = 300.0,
              quiet_s: float = 900.0, zone: str | None = None, max_s: float = 3600.0
              ) -> tuple[int, tuple[datetime, datetime]]:
    """A virtual-home seed whose schedule has a sustained outage inside ``[day_start, day_end)``, none near
    ``now`` and none from ``day_start`` on longer than ``max_s`` (the battery carries the home through them all)
    (and, given the zone, whose car is at home now); and that outage (the virtual home's schedule is
    deterministic, by seed and year)."""
    from homegrid.devices.virtual.outages import outage_schedule
    from homegrid.readings import from_ms, to_ms

    for seed in range(1, 2000):
        s, e = outage_schedule(seed, per_year, to_ms(day_start), to_ms(now) + 3_600_000)
        near = (e > to_ms(now) - quiet_s * 1000) & (s < to_ms(now) + 600_000)
        inside = (s >= to_ms(day_start)) & (e <= to_ms(day_end)) & (e - s >= min_s * 1000)
        long = e - s > max_s * 1000
        if (not near.any() and inside.any() and not long.any()
                and (zone is None or car_home(seed, zone, now))):
            i = int(np.argmax(inside))
            return seed, (from_ms(int(s[i])), from_ms(int(e[i])))
    raise AssertionError("no seed gives an outage in the window")


def pick_outage_now(per_year: float, now: datetime, ends: tuple[float, float], zone: str,
                    quiet_s: float = 120.0) -> tuple[int, tuple[datetime, datetime]]:
    """A seed whose schedule has an outage going on at ``now`` that ends ``ends`` [s] later (within that range),
    with no other outage for ``quiet_s`` after it, and the car at home; and that outage."""
    from homegrid.devices.virtual.outages import outage_schedule, outages_in_year
    from homegrid.readings import from_ms, to_ms

    t = to_ms(now)
    lo, hi = t + int(ends[0] * 1000), t + int(ends[1] * 1000)
    for seed in range(1, 20_000):
        starts, stops = outages_in_year(seed, now.astimezone(UTC).year, per_year)  # cheap first look
        if not ((starts <= t) & (stops >= lo) & (stops <= hi)).any():
            continue
        s, e = outage_schedule(seed, per_year, t - 86_400_000, t + 86_400_000)  # merged, as the home runs it
        k = np.flatnonzero((s <= t) & (e >= lo) & (e <= hi))
        if len(k) and not ((s > e[k[0]]) & (s < e[k[0]] + quiet_s * 1000)).any() and car_home(seed, zone, now):
            return seed, (from_ms(int(s[k[0]])), from_ms(int(e[k[0]])))
    raise AssertionError("no seed gives an outage ending in the window")


@dataclass
class Served:
    url: str
    config: Path
    data_dir: Path
    tz: ZoneInfo
    proc: subprocess.Popen
    outage: tuple[datetime, datetime] | None = None
    dst_days: tuple[date, date] | None = None

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
    folder.mkdir(parents=True, exist_ok=True)
    cfg = folder / "homegrid.toml"
    cfg.write_text(config)
    port = _free_port()
    data = folder / "data"
    env = {**os.environ, "HOMEGRID_DATA_DIR": str(data)}
    proc = subprocess.Popen([sys.executable, "-m", "homegrid.cli", "serve", "--config", str(cfg), "--port", str(port)],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    served = Served(f"http://127.0.0.1:{port}", cfg, data, tz, proc)

    def polled() -> bool:
        if proc.poll() is not None:
            raise AssertionError(f"homegrid serve exited: {proc.stderr.read()}")
        return served.get("/api/v1/live")["health"]["device"]["polls"] >= polls

    try:
        wait_for(polled, timeout=90, interval=0.2, retry_on=(OSError,), what="the hub never answered")
    except AssertionError:
        stop_hub(served)
        raise
    return served


def warm_solar_cache(folder: Path, config: str) -> None:
    """Compute the solar profile a config needs into the cache the hub reads (``$XDG_CACHE_HOME``), if missing."""
    from homegrid.config import load_config
    from homegrid.devices.virtual.solar import solar_profile

    path = folder / "warm.toml"
    path.write_text(config)
    c = load_config(path)
    v, site = c.virtual, c.site
    solar_profile(v.weather, float(site.latitude), float(site.longitude), float(v.solar_kw), float(v.tilt),
                  float(v.azimuth))


@contextmanager
def running_hub(folder: Path, config: str, tz: ZoneInfo, polls: int = 2) -> Iterator[Served]:
    """:func:`start_hub`, stopped when the block ends however it ends."""
    served = start_hub(folder, config, tz, polls)
    try:
        yield served
    finally:
        stop_hub(served)


def stop_hub(served: Served) -> None:
    served.proc.send_signal(signal.SIGINT)
    try:
        served.proc.wait(timeout=20)
    finally:
        served.proc.stderr.close()


def home_config(zone: str, now: datetime, seed: int, per_year: float, backfill_days: float) -> str:
    """The test home's configuration: a car that works from home on a slow charger, the sun on the zone's clock."""
    return f"""
[site]
timezone = "{zone}"
longitude = {site_longitude(ZoneInfo(zone), now):.2f}
[server]
backfill_days = {backfill_days}
poll_interval_s = 1
[store]
flush_interval_s = 0.1
[virtual]
seed = {seed}
outages_per_year = {per_year}
ev_commute_km = 0
ev_charger_kw = 0.5
ev_charge_limit_percent = 100
"""


def virtual_home_config(now: datetime, hour: int = HOUR) -> tuple[str, ZoneInfo, tuple[datetime, datetime]]:
    """The test home: ``hour`` o'clock there now, a slow charger still charging the car, an outage yesterday."""
    zone = night_zone(now, hour)
    tz = ZoneInfo(zone)
    yesterday = now.astimezone(tz).date() - timedelta(days=1)
    day_start = datetime.combine(yesterday, datetime.min.time(), tz)
    per_year = 200.0  # a stormy place, not an absurd one: the screenshots show a day or two of them
    seed, outage = pick_seed(per_year, day_start, day_start + timedelta(days=1), now, zone=zone)
    backfill_days = round((now - day_start).total_seconds() / 86_400 + 0.1, 2)  # all of yesterday, and a bit
    return home_config(zone, now, seed, per_year, backfill_days), tz, outage


def day_length_h(day: date, tz: ZoneInfo) -> float:
    """Hours from a local midnight to the next."""
    a, b = (datetime.combine(d, datetime.min.time(), tz).timestamp() for d in (day, day + timedelta(days=1)))
    return (b - a) / 3600


def last_dst_days(before: date, tz: ZoneInfo) -> tuple[date, date]:
    """The last 23-hour day and the last 25-hour day before a date."""
    short = long = None
    day = before - timedelta(days=1)
    while short is None or long is None:
        hours = day_length_h(day, tz)
        if hours == 23 and short is None:
            short = day
        if hours == 25 and long is None:
            long = day
        day -= timedelta(days=1)
    return short, long


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


OUTAGES_NOW_PER_YEAR = 5000.0  # often enough that a seed with an outage ending in the next seconds is found fast


@pytest.fixture(scope="module")
def outage_hub(tmp_path_factory) -> Iterator[Served]:
    """A hub whose grid is down now and comes back in about fifteen seconds (later, if the machine is slow to start
    it): at least ten seconds after the hub answers, as opening the page and reading the banner took over three on a
    loaded CI machine (the banner was gone before it was read)."""
    folder = tmp_path_factory.mktemp("web-outage")
    lead = 12.0
    for attempt in range(3):
        now = datetime.now(UTC)
        zone = night_zone(now, HOUR)
        config = home_config(zone, now, 1, OUTAGES_NOW_PER_YEAR, 0.05)
        warm_solar_cache(folder, config)  # so that the hub starts in a second or two, as the seed expects
        now = datetime.now(UTC)
        try:
            seed, outage = pick_outage_now(OUTAGES_NOW_PER_YEAR, now, (lead, lead + 6), zone)
        except AssertionError:  # no seed ends one in that window from this instant: another window
            lead *= 2
            continue
        served = start_hub(folder / str(attempt), config.replace("seed = 1\n", f"seed = {seed}\n"), ZoneInfo(zone))
        served.outage = outage
        if (outage[1] - datetime.now(UTC)).total_seconds() >= 10:  # time enough to look at the banner
            break
        stop_hub(served)
        lead *= 2
    else:
        raise AssertionError("no seed gave an outage ending soon, or the hub never came up in time for it")
    try:
        yield served
    finally:
        stop_hub(served)


@pytest.fixture(scope="module")
def dst_hub(tmp_path_factory) -> Iterator[Served]:
    """A hub in America/New_York with the virtual home's history around the last 23-hour and 25-hour days
    (``homegrid simulate`` into its data directory first: a day on each side of each)."""
    zone = "America/New_York"
    tz = ZoneInfo(zone)
    folder = tmp_path_factory.mktemp("web-dst")
    config = folder / "homegrid.toml"
    config.write_text(f'[site]\ntimezone = "{zone}"\n[server]\npoll_interval_s = 1\n[store]\nflush_interval_s = 0.1\n')
    short, long = last_dst_days(datetime.now(tz).date() - timedelta(days=1), tz)
    for day in sorted((short, long)):
        out = subprocess.run([sys.executable, "-m", "homegrid.cli", "simulate", "--start", str(day - timedelta(days=1)),
                              "--days", "3", "--config", str(config), "--create", "--data-dir", str(folder / "data")],
                             capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, out.stderr
    served = start_hub(folder, config.read_text(), tz, polls=1)
    served.dst_days = (short, long)
    try:
        yield served
    finally:
        stop_hub(served)


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

    def wait_for(self, expression: str, timeout: float = TIMEOUT_MS) -> None:
        """Wait until a JavaScript expression is true. (Playwright's ``wait_for_function`` polls by evaluating a
        string in the page, which the hub's Content-Security-Policy forbids, as it should: no ``unsafe-eval``.)"""
        deadline = time.monotonic() + timeout / 1000
        while not self.page.evaluate(f"() => Boolean({expression})"):
            if time.monotonic() > deadline:
                raise AssertionError(f"never true: {expression}")
            self.page.wait_for_timeout(50)

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


@pytest.fixture
def new_page(browser) -> Iterator[Callable[[Served], Page]]:
    """Desktop pages on any hub, closed (and checked for errors) after the test."""
    pages: list[Page] = []

    def make(hub: Served) -> Page:
        pages.append(Page(browser, hub, DESKTOP))
        return pages[-1]

    yield make
    for page in pages:
        page.close()


def read_same_time(page: Page, selector: str, read: str, hub: Served, tries: int = 20) -> tuple[dict, dict]:
    """What the page shows and /api/v1/live, for the same reading (both move every poll)."""
    for _ in range(tries):
        shown = page.page.evaluate(read)
        live = hub.get("/api/v1/live")
        if shown and shown["time"] == live["time"]:
            return shown, live
        # at least as new (a poll may land between the two reads, and the page then moves past it)
        page.wait_for(
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
                                       "text": format_js("kw", v["solar_power"])}
    assert shown["nodes"]["home"]["text"] == format_js("kw", v["home_power"])
    assert shown["nodes"]["grid"]["text"] == format_js("kw", v["grid_power"])
    assert shown["nodes"]["battery"]["text"] == format_js("pct", v["battery_soc"])
    assert shown["nodes"]["car"]["text"] == format_js("kw", v["ev_power"])
    one = lambda x: np.array([max(x, 0.0)])  # noqa: E731
    expected = {k: float(a[0]) for k, a in split_flows(
        one(v["solar_power"]), one(v["battery_power"]), one(v["grid_power"]),
        one(v["home_power"]), one(-v["battery_power"]), one(-v["grid_power"])).items() if "_to_" in k}
    expected["home_to_car"] = v["ev_power"]
    for name, w in expected.items():
        if name == "grid_to_battery" and w <= 10:
            continue  # drawn only when it flows (it shares its line with battery_to_grid)
        assert shown["flows"][name]["value"] == pytest.approx(w, abs=0.01), name
        assert shown["flows"][name]["text"] == (format_js("kw", w) if w > 10 else None), name
    assert sum(1 for f in shown["flows"].values() if f["text"]) >= 1  # the home draws from somewhere
    # live without reloading: the stream moves the page on to newer readings
    first = shown["time"]
    desktop.wait_for(f"document.querySelector('section.now').dataset.time > {json.dumps(first)}")
    desktop.shot("now")


def assert_totals_match_report(page: Page, day: str) -> dict:
    """The day view's totals are `homegrid report --from DAY --to DAY --json`'s; that report."""
    report = json.loads(page.hub.cli("report", "--from", day, "--to", day, "--json"))
    assert report["days_with_data"] == 1
    section = page.page.locator("section.history")
    assert section.get_attribute("data-from") == day and section.get_attribute("data-step") == "minute"
    page.page.locator(f".totals[data-report-from='{day}']").wait_for()
    for key in ("solar", "home", "ev", "grid_import", "grid_export", "battery_charge", "battery_discharge"):
        figure = page.page.locator(f"#total-{key} .tile-value")
        assert figure.get_attribute("data-api") == "/api/v1/report"
        assert float(figure.get_attribute("data-value")) == pytest.approx(report["energy_wh"][key], rel=1e-9, abs=1e-6)
        assert figure.text_content() == format_js("kwh", report["energy_wh"][key]), key
    own = page.page.locator("#total-self_powered .tile-value")
    assert own.text_content() == format_js("pct", report["self_powered_percent"])
    return report


def test_day_totals_match_report(desktop, hub):
    day = (hub.today - timedelta(days=1)).isoformat()
    desktop.open(f"history/day/{day}")
    desktop.page.wait_for_selector("#total-solar")
    desktop.page.wait_for_selector(".chart canvas")
    report = assert_totals_match_report(desktop, day)
    assert report["energy_wh"]["home"] > 1000
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
    # the week around it, in bars per local day (tests/test_web_charts.py reads them back)
    desktop.page.get_by_role("button", name="Week").click()
    desktop.page.wait_for_selector("section.history[data-step=day] .bars[data-step=day] svg g.bar[data-partial]")
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
    else:  # names the days the hub recorded, never the whole month
        assert "No grid interruptions recorded" in banner and "(the hub's records)" in banner
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
        assert shown["soc"] == pytest.approx(v["ev_soc"]) and shown["soc_text"] == format_js("pct", v["ev_soc"])
        assert shown["power"] == pytest.approx(v["ev_power"]) and shown["power_text"] == format_js("kw", v["ev_power"])
        assert shown["range"] == pytest.approx(v["ev_range"])
        assert shown["ttf_text"] != "–"
        seen.append(shown)
        desktop.wait_for(
            f"document.querySelector('section.car').dataset.time > {json.dumps(shown['time'])}")
    assert seen[1]["soc"] > seen[0]["soc"]  # charging, as it happens
    # where this week's charge came from, as /api/v1/report says
    week = desktop.page.locator("#car-week")
    week.locator("[data-source=solar] b").wait_for()
    body = hub.get(f"/api/v1/report?from={week.get_attribute('data-from')}&to={week.get_attribute('data-to')}")
    s = body["ev_sources_wh"]
    total = body["energy_wh"]["ev"]  # the sources and the unknown part add up to the car's energy
    shown = {k: int(week.locator(f"[data-source={k}] b").text_content().removesuffix(" %"))
             for k in ("solar", "battery", "grid", "unknown") if week.locator(f"[data-source={k}]").count()}
    for k, p in shown.items():  # each within 1 of its share, rounded so that they sum to 100
        assert abs(p - 100 * s[k] / total) < 1, (k, p, s)
    assert sum(shown.values()) == 100
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
    desktop.wait_for("document.documentElement.dataset.theme === 'dark'")
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
                        ("car", "#car-card"), ("money", "#month-list tbody tr"), ("outages", "#saved-banner"),
                        ("system", "[data-device=virtual]")]:
        phone.open(view)
        phone.page.wait_for_selector(ready)
        width = phone.page.evaluate("document.documentElement.scrollWidth")
        wide = phone.page.evaluate("""(w) => [...document.querySelectorAll('main *')].filter((e) =>
            e.getBoundingClientRect().right > w + 0.5 && !e.closest('.table-wrap')).slice(0, 5)
            .map((e) => `${e.tagName}#${e.id}.${e.className} ${Math.round(e.getBoundingClientRect().right)}`)""",
                                   PHONE["width"])
        assert width <= PHONE["width"], f"{view} is {width} px wide on a phone: {wide}"
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
    page.open("now")
    page.page.wait_for_selector("section.now [data-node=solar]")
    page.close()
    assert not outside
    assert sizes and sum(sizes.values()) < 500_000, sizes  # compressed, as sent



READ_GRID = """() => {
  const s = document.querySelector('section.now');
  if (!s) return null;
  const tile = s.querySelector('.tiles [data-field="values.grid_status"]');
  return {time: s.dataset.time, status: tile.dataset.value, tile: tile.textContent,
    node: s.querySelector('[data-node=grid] .node-sub').textContent,
    banner: document.querySelector('#grid-banner')?.dataset.value ?? null};
}"""


def test_grid_down_banner_shows_backup_time_until_the_grid_is_back(new_page, outage_hub):
    page = new_page(outage_hub)
    backups = []  # what the page fetched from /api/v1/backup
    page.page.on("response", lambda r: r.url.startswith(outage_hub.url + "/api/v1/backup") and backups.append(r))
    page.open("now")
    # the central estimate (a range from low to high follows it when they differ)
    left = page.page.locator("#grid-banner [data-api='/api/v1/backup'][data-field='estimate.central_s']")
    left.wait_for()
    # the grid's status as /api/v1/live gives it, for the same reading
    shown, live = read_same_time(page, "section.now", READ_GRID, outage_hub)
    assert live["values"]["grid_status"] == "islanded"
    assert shown == {"time": live["time"], "status": "islanded", "tile": "Grid down", "node": "Grid down",
                     "banner": "islanded"}
    # the time left, as /api/v1/backup said
    body = backups[-1].json()
    assert body["reason"] is None and body["display"] is not None, body
    banner = page.page.locator("#grid-banner")
    assert banner.get_attribute("role") == "alert"
    central = body["display"]["central"]  # "H:MM", or "more than 7 days" at the horizon (not "about more than")
    e = body["estimate"]
    if central[0].isdigit():  # shown in words, as the app writes durations
        low, mid, high = (format_js("duration", e[k]) for k in ("low_s", "central_s", "high_s"))
        assert banner.text_content() == ("Grid down. Your battery is powering the home: "
                                         f"about {mid} left" + (f" ({low} to {high})" if low != high else ""))
        assert left.text_content() == mid
    else:
        assert banner.text_content() == f"Grid down. Your battery is powering the home: {central} left"
    assert left.get_attribute("data-field") == "estimate.central_s"
    assert float(left.get_attribute("data-value")) == e["central_s"] > 0
    now = outage_hub.get("/api/v1/backup")  # and still about that, a moment later
    assert now["estimate"]["central_s"] == pytest.approx(body["estimate"]["central_s"], abs=600)
    page.shot("now-grid-down")
    # the grid comes back when the schedule says, and the banner goes
    end = outage_hub.outage[1]
    page.page.locator("#grid-banner").wait_for(
        state="detached", timeout=max(0.0, (end - datetime.now(UTC)).total_seconds()) * 1000 + TIMEOUT_MS)
    shown, live = read_same_time(page, "section.now", READ_GRID, outage_hub)
    assert datetime.fromisoformat(shown["time"]) >= end
    assert live["values"]["grid_status"] == "connected"
    assert shown["status"] == "connected" and shown["banner"] is None
    assert shown["tile"] != "Grid down" and shown["node"] != "Grid down"


READ_CHART = """() => {
  const c = document.querySelector('.chart[data-x-ticks]');
  return c && {min: Number(c.dataset.xMin), max: Number(c.dataset.xMax), ticks: JSON.parse(c.dataset.xTicks)};
}"""


def hour_of(label: str) -> int:
    """The hour of a time-axis label ("16:00": the site's 24-hour clock, as the rest of the app; a midnight says
    its day instead, "Sun 8")."""
    if re.fullmatch(r"[A-Z][a-z]{2} \d{1,2}", label):
        return 0
    m = re.fullmatch(r"(\d{2}):00", label)
    assert m, label
    return int(m[1])


@pytest.mark.parametrize("hours", [23, 25])
def test_dst_day_is_drawn_in_local_time(new_page, dst_hub, hours):
    tz = dst_hub.tz
    day = dst_hub.dst_days[0 if hours == 23 else 1]
    assert day_length_h(day, tz) == hours
    start, end = (datetime.combine(d, datetime.min.time(), tz) for d in (day, day + timedelta(days=1)))
    page = new_page(dst_hub)
    with page.page.expect_response(lambda r: "/api/v1/energy?" in r.url and "step=minute" in r.url) as fetched:
        page.open(f"history/day/{day}")
    # the data the view fetched: every minute from local midnight to local midnight, only the fields it draws
    reply = fetched.value.json()
    assert reply["fields"] == ["solar_w", "battery_discharge_w", "grid_import_w", "home_w", "ev_w", "battery_charge_w",
                               "grid_export_w", "soc_mean"]
    assert [datetime.fromisoformat(s) for s in reply["start"]] == [
        start.astimezone(UTC) + timedelta(minutes=k) for k in range(hours * 60)]  # compared as instants
    # the chart's x scale spans the whole local day, 23 or 25 hours
    page.wait_for(f"document.querySelector('.chart')?.dataset.xMin == '{start.timestamp():.0f}'")
    chart = page.page.evaluate(READ_CHART)
    assert (chart["min"], chart["max"]) == (start.timestamp(), end.timestamp())
    assert chart["max"] - chart["min"] == hours * 3600
    # its hour labels read the site's clock, on both sides of the change
    ticks = [(datetime.fromtimestamp(t, tz), label) for t, label in chart["ticks"] if label]
    assert ticks[0][0] == start and ticks[-1][0] == end
    assert len({t.utcoffset() for t, _ in ticks}) == 2
    for t, label in ticks:
        assert hour_of(label) == t.hour, (t, label)
    # evenly on the wall clock: every whole local hour that is a multiple of the step, none skipped, none added
    every = math.gcd(*(t.hour for t, _ in ticks))  # the step; 02:00 may be missing on the 23-hour day
    assert every in (1, 2, 3, 4, 6, 8, 12), ticks
    quarters = (start.astimezone(UTC) + timedelta(minutes=15 * k) for k in range(hours * 4 + 1))  # as instants
    wall = [q.astimezone(tz) for q in quarters]
    expected = [w.timestamp() for w in wall if w.minute == 0 and w.hour % every == 0]
    assert [t.timestamp() for t, _ in ticks] == expected, ticks  # instants: 01:00 twice on the 25-hour day
    # and the day's totals are the report's
    assert_totals_match_report(page, day.isoformat())


def test_dst_day_labels_are_local_wall_clock(dst_hub):
    """The API's minute labels on the 23-hour day are wall-clock times that happen there (no 02:xx)."""
    day = dst_hub.dst_days[0]
    starts = dst_hub.get(f"/api/v1/energy?from={day}&to={day}&step=minute&fields=home")["start"]
    hours = [datetime.fromisoformat(s).hour for s in starts]
    assert 2 not in hours and hours.count(3) == 60
