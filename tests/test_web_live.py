"""Live truth in a real browser: a hub polling a simulated Powerwall gateway over HTTPS; the gateway stops
answering, and the Now view says "last seen …", greys what it can no longer vouch for, never shows "Live" over
old figures, and, after the (short, for the test) offline threshold, says the gateway is offline."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from zoneinfo import ZoneInfo

import pytest

from homegrid.devices.powerwall.simulator import SimulatedGateway, Simulator

from .formatjs import format_js
from .test_web import DESKTOP, PHONE, Page, Served, running_hub, start_hub, stop_hub
from .waiting import wait_for

OFFLINE_AFTER_S = 30.0
PASSWORD = "simulated"
STATUS = "document.querySelector('section.now [role=status]')"


@pytest.fixture(scope="module")
def gateway() -> Iterator[SimulatedGateway]:
    with Simulator() as sim:
        yield sim.add_gateway(password=PASSWORD, scenario="normal")


@pytest.fixture(scope="module")
def hub(tmp_path_factory, gateway) -> Iterator[Served]:
    folder = tmp_path_factory.mktemp("live-hub")
    credentials = folder / "credentials.toml"
    credentials.write_text(f'[powerwall]\npassword = "{PASSWORD}"\n')
    credentials.chmod(0o600)
    config = f"""
[site]
timezone = "UTC"
[server]
poll_interval_s = 1
offline_after_s = {OFFLINE_AFTER_S}
[store]
flush_interval_s = 0.1
[powerwall]
host = "{gateway.address}"
poll_interval_s = 1
timeout_s = 2
"""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HOMEGRID_CREDENTIALS", str(credentials))
        served = start_hub(folder, config, ZoneInfo("UTC"), polls=3)  # the credentials' path only at start
    try:
        yield served
    finally:
        stop_hub(served)


@pytest.fixture
def page(browser, hub) -> Iterator[Page]:
    p = Page(browser, hub, DESKTOP)
    yield p
    p.close()


READ = """() => {
  const s = document.querySelector('section.now');
  const st = s?.querySelector('[role=status]');
  if (!s || !st) return null;
  const nodes = {}, flows = {};
  for (const n of s.querySelectorAll('[data-node]')) nodes[n.dataset.node] = {stale: n.dataset.stale,
    text: n.querySelector('[data-role=node-kw]').textContent,
    stroke: getComputedStyle(n.querySelector('.disc')).stroke};
  for (const f of s.querySelectorAll('[data-flow]')) flows[f.dataset.flow] = {stale: f.dataset.stale,
    stroke: getComputedStyle(f.querySelector('.track')).stroke};
  const muted = getComputedStyle(document.documentElement).getPropertyValue('--muted').trim();
  return {state: st.dataset.state, text: st.textContent.replace(/\\s+/g, ' ').trim(), nodes, flows, muted,
          dot: st.querySelector('.dot').className};
}"""


def rgb(hex_colour: str) -> str:
    h = hex_colour.lstrip("#")
    return "rgb({}, {}, {})".format(*(int(h[i:i + 2], 16) for i in (0, 2, 4)))


def check_stale_page_is_accessible_and_fits(page: Page, hub: Served) -> None:
    """axe-core's WCAG 2 A/AA rules on the stale view (greyed figures stay readable), and a phone's width holds it."""
    from axe_playwright_python.sync_playwright import Axe

    result = Axe().run(page.page, options={"runOnly": {"type": "tag", "values": ["wcag2a", "wcag2aa"]},
                                           "resultTypes": ["violations"]})
    assert not result.violations_count, result.generate_report()
    phone = Page(page.context.browser, hub, PHONE)
    try:
        phone.open("now")
        phone.wait_for(f"['stale', 'offline'].includes({STATUS}?.dataset.state)")
        assert phone.page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
        phone.shot("now-stale")
    finally:
        phone.close()


def test_a_gateway_that_stops_answering_goes_stale_then_offline_on_the_now_view(page, hub, gateway):
    live = hub.get("/api/v1/live")
    [device] = live["devices"]
    assert device["name"] == "powerwall" and device["state"] == "live"
    v = live["values"]
    # the level on the Tesla app's scale, the gateway's own figure kept beside it
    assert v["battery_soc"] == pytest.approx((v["battery_soc_gateway"] - 5) / 0.95)

    page.open("now")
    page.wait_for(f"{STATUS}?.dataset.state === 'live'")
    shown = page.page.evaluate(READ)
    assert shown["text"].startswith("Live · updated")
    assert all(n["stale"] == "false" for n in shown["nodes"].values())
    assert all(f["stale"] == "false" for f in shown["flows"].values())
    shown_soc = float(page.page.get_attribute("section.now [data-node=battery]", "data-value"))
    now_v = hub.get("/api/v1/live")["values"]
    assert shown_soc == pytest.approx(now_v["battery_soc"], abs=0.5)  # the app's scale, not the gateway's
    assert abs(shown_soc - now_v["battery_soc_gateway"]) > 1.0
    assert page.page.text_content("section.now [data-node=battery] [data-role=node-kw]") == format_js("pct", shown_soc)
    page.wait_for("document.querySelector('#now-health')")  # the gateway reports its pack's energy
    health = hub.get("/api/v1/summary")["battery"]
    assert health["health_percent"] == pytest.approx(100 * 13_500 / (13_500 / 0.95), abs=0.05)  # the simulator's
    assert page.page.text_content("#now-health .tile-value") == f"{health['health_percent']:.1f} %"
    assert page.page.is_visible("#now-today") and page.page.is_visible("#now-lifetime")

    gateway.gone()  # connection refused from now on
    stopped = time.monotonic()
    try:
        page.wait_for(f"{STATUS}?.dataset.state === 'stale'", timeout=40_000)
        waited = time.monotonic() - stopped
        assert waited >= 14.0  # three 1 s polls, and at least 15 s: not before
        shown = page.page.evaluate(READ)
        assert "Live" not in shown["text"], shown["text"]
        assert re.search(r"Powerwall not answering · last seen (\d+ s|\d+ min) ago", shown["text"]), shown["text"]
        seconds = int(re.search(r"last seen (\d+) s ago", shown["text"]).group(1))
        assert 15 <= seconds <= waited + 3
        assert "stale" in shown["dot"]
        # every node and flow the gateway measures is greyed: the figures are old
        for name in ("solar", "grid", "home", "battery"):
            assert shown["nodes"][name]["stale"] == "true", name
            assert shown["nodes"][name]["stroke"] == rgb(shown["muted"]), name
        for name, flow in shown["flows"].items():
            assert flow["stale"] == "true" and flow["stroke"] == rgb(shown["muted"]), name
        # the tiles of its quantities say their figures are old
        assert page.page.eval_on_selector_all("section.now .tiles .tile[data-stale=true]", "ts => ts.length") == 3
        api = hub.get("/api/v1/live")["devices"][0]
        assert api["state"] == "stale" and api["last_seen"] is not None
        page.shot("now-stale")
        check_stale_page_is_accessible_and_fits(page, hub)

        # "last seen" keeps counting with no new event
        page.page.wait_for_timeout(2500)
        later = int(re.search(r"last seen (\d+) s ago", page.page.evaluate(READ)["text"]).group(1))
        assert later >= seconds + 2

        page.wait_for(f"{STATUS}?.dataset.state === 'offline'", timeout=40_000)
        assert time.monotonic() - stopped >= OFFLINE_AFTER_S - 2
        shown = page.page.evaluate(READ)
        assert "Live" not in shown["text"] and "Powerwall offline · last seen" in shown["text"], shown["text"]
        assert hub.get("/api/v1/live")["devices"][0]["state"] == "offline"
        assert all(n["stale"] == "true" for n in shown["nodes"].values())
    finally:
        gateway.back()


# --- storm mode's state on the Now view -----------------------------------------------------------------------

@pytest.fixture(scope="module")
def storm_hub(tmp_path_factory) -> Iterator[Served]:
    from .test_storm_live import STORM_CONFIG

    with running_hub(tmp_path_factory.mktemp("storm-now"), STORM_CONFIG, ZoneInfo("America/Phoenix")) as served:
        yield served


def test_storm_modes_state_is_on_the_now_view(browser, storm_hub):
    from .test_storm_live import storm_cli

    p = Page(browser, storm_hub, DESKTOP)
    try:
        p.open("now")
        p.page.wait_for_selector("#now-storm")
        assert p.page.get_attribute("#now-storm", "data-storm") == "off"
        assert p.page.text_content("#now-storm b") == "Storm mode off"
        assert "no alert for your area" in p.page.text_content("#now-storm")
        assert storm_cli(storm_hub, "on").returncode == 0
        wait_for(lambda: storm_hub.get("/api/v1/storm")["set_reserve_percent"] == 100.0, timeout=15, interval=0.2,
                 what="storm mode never held")
        # the view follows by itself (it asks every 15 s)
        p.wait_for("document.querySelector('#now-storm')?.dataset.storm === 'on'", timeout=25_000)
        assert p.page.text_content("#now-storm b") == "Storm mode on"
        assert "holding the backup reserve at 100 %" in p.page.text_content("#now-storm")
        assert p.page.get_attribute("#now-storm", "href") == "#/system"  # where it is switched
        p.shot("now-storm")
        assert storm_cli(storm_hub, "auto").returncode == 0
    finally:
        p.close()
