"""In a real browser: the car's charge by source adds up to the car's energy (the unknown part shown), and /docs
works with the network cut off and under the hub's Content-Security-Policy."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from .test_web import DESKTOP, Page, Served, home_config, night_zone, running_hub


@pytest.fixture(scope="module")
def hub(tmp_path_factory) -> Iterator[Served]:
    now = datetime.now(UTC)
    zone = night_zone(now, 3)
    from zoneinfo import ZoneInfo

    # an Etc/GMT zone has no country (metric by default): imperial by the setting
    config = home_config(zone, now, 7, 0, 1.2).replace("[site]\n", '[site]\nunits = "imperial"\n', 1)
    with running_hub(tmp_path_factory.mktemp("car"), config, ZoneInfo(zone)) as served:
        yield served


@pytest.fixture
def page(browser, hub) -> Iterator[Page]:
    page = Page(browser, hub, DESKTOP)
    yield page
    page.close()


def _decimals(wh: float) -> int:
    kwh = wh / 1000
    return 2 if kwh < 1 else 1 if kwh < 100 else 0


def test_the_car_view_parts_add_up_to_the_car_energy(page, hub):
    for card_id in ("car-week", "car-month"):
        # the hub keeps recording while the page loads: the page's figure lies between a report taken before
        # the page asked for it and one taken after
        page.open("car")
        card = page.page.locator(f"#{card_id}")
        card.locator("[data-source=solar] b").wait_for()
        span = f"from={card.get_attribute('data-from')}&to={card.get_attribute('data-to')}"
        before = hub.get(f"/api/v1/report?{span}")["energy_wh"]["ev"]
        page.page.reload()  # the page asks again, after `before`
        card.locator("[data-source=solar] b").wait_for()
        rep = hub.get(f"/api/v1/report?{span}")
        ev, s = rep["energy_wh"]["ev"], rep["ev_sources_wh"]
        assert ev > 100, rep  # the car charged at home in the backfill
        # the total is the car's energy, the one figure every view shows for it
        total = card.locator(".car-total")
        assert total.get_attribute("data-field") == "energy_wh.ev"
        shown = float(total.get_attribute("data-value"))
        assert before <= shown <= ev, (before, shown, ev)
        d = _decimals(shown)
        assert total.text_content() == f"{shown / 1000:.{d}f} kWh"
        keys = [k for k in ("solar", "battery", "grid", "unknown") if card.locator(f"[data-source={k}]").count()]
        assert ("unknown" in keys) == (s["unknown"] > 0.5)
        shown_kwh = [float(card.locator(f"[data-source={k}] [data-kwh]").get_attribute("data-kwh")) for k in keys]
        # the parts as shown add up to the total as shown, each within a unit of the last place of its figure
        assert round(sum(shown_kwh), d) == round(shown / 1000, d)
        for k, v in zip(keys, shown_kwh, strict=True):
            assert abs(v - s[k] / 1000) <= 10 ** -d + (ev - before) / 1000 + 1e-9, (k, v, s[k])
        pcts = [int(card.locator(f"[data-source={k}] b").text_content().removesuffix(" %")) for k in keys]
        assert sum(pcts) == 100
        # the report's own parts add up to the car's energy to the mWh
        assert round(1000 * sum(s.values())) == round(1000 * ev)


def test_the_range_is_in_the_site_units_and_dates_are_iso(page, hub):
    assert hub.get("/api/v1/site")["units"] == "imperial"
    page.open("car")
    tile = page.page.locator("#car-range [data-field='values.ev_range']")
    tile.wait_for()
    km = float(tile.get_attribute("data-value"))
    assert tile.text_content() == f"{round(km / 1.609344)} mi"
    page.open("system")
    last = page.page.locator("[data-field='health.devices[0].last_ok']").first
    last.wait_for()
    assert re.match(r"^(Mon|Tue|Wed|Thu|Fri|Sat|Sun) \d{4}-\d{2}-\d{2} \d{2}:\d{2} \(", last.text_content()), \
        last.text_content()


@pytest.fixture(scope="module")
def gap_hub(tmp_path_factory) -> Iterator[Served]:
    """A hub whose store holds today's first hours from an import: the car charging at 2 kW, the home's meter
    silent for half an hour of them (a gateway that did not answer while the car's charger was read)."""
    import subprocess
    import sys
    from zoneinfo import ZoneInfo

    import numpy as np

    from homegrid.readings import ReadingFrame, to_ms
    from homegrid.readings.csvfile import write_csv

    now = datetime.now(UTC)
    zone = night_zone(now, 3)
    tz = ZoneInfo(zone)
    folder = tmp_path_factory.mktemp("car-gap")
    config = home_config(zone, now, 7, 0, 0.01)
    (folder / "homegrid.toml").write_text(config)
    midnight = datetime.combine(now.astimezone(tz).date(), datetime.min.time(), tz)
    t = np.arange(to_ms(midnight), to_ms(now) - 600_000, 60_000, dtype=np.int64)
    home = np.full(len(t), 3000.0)
    home[60:90] = np.nan  # 01:00 to 01:30: the home's meter missed half an hour
    frame = ReadingFrame(t, {"home_power": home, "grid_power": home.copy(), "solar_power": np.zeros(len(t)),
                             "ev_power": np.full(len(t), 2000.0)})
    with (folder / "gap.csv").open("w") as out:
        write_csv([frame], out, tz=tz)
    done = subprocess.run([sys.executable, "-m", "homegrid.cli", "import", str(folder / "gap.csv"), "--config",
                           str(folder / "homegrid.toml"), "--create", "--data-dir", str(folder / "data")],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    with running_hub(folder, config, tz, polls=1) as served:
        yield served


def test_the_unknown_part_is_shown_when_there_is_one(browser, gap_hub):
    page = Page(browser, gap_hub, DESKTOP)
    try:
        page.open("car")
        card = page.page.locator("#car-week")
        unknown = card.locator("[data-source=unknown] b")
        unknown.wait_for()
        rep = gap_hub.get(f"/api/v1/report?from={card.get_attribute('data-from')}&to={card.get_attribute('data-to')}")
        s = rep["ev_sources_wh"]
        assert s["unknown"] == pytest.approx(1000, abs=80)  # 2 kW for the half hour the home's meter missed
        assert float(unknown.get_attribute("data-value")) == s["unknown"]
        assert "Unknown" in card.locator("[data-source=unknown]").text_content()
        assert "no source can be named for" in card.text_content()
        assert card.locator(".bar .unknown").count() == 1
    finally:
        page.close()


def test_docs_work_offline_under_the_csp(browser, hub):
    """/docs with every request beyond the hub refused: Swagger UI lists the operations, and the browser reports
    no Content-Security-Policy violation (Page fails the test on any console error)."""
    page = Page(browser, hub, DESKTOP)
    outside: list[str] = []

    def only_the_hub(route) -> None:
        if route.request.url.startswith(hub.url):
            route.continue_()
        else:
            outside.append(route.request.url)
            route.abort()

    try:
        page.context.route("**/*", only_the_hub)
        violations: list[str] = []
        page.page.on("console", lambda m: "Content Security Policy" in m.text and violations.append(m.text))
        page.page.goto(f"{hub.url}/docs")
        paths = hub.get("/openapi.json")["paths"]
        operations = sum(len(methods) for methods in paths.values())
        page.wait_for(f"document.querySelectorAll('.opblock').length >= {operations}")
        summary = page.page.locator(".opblock-summary-path").all_text_contents()
        assert "/api/v1/energy" in [t.replace("\u200b", "") for t in summary]
        assert page.page.locator(".info .title").text_content().startswith("homegrid")
        assert outside == [] and violations == []
    finally:
        page.close()


def test_the_system_view_exports_rollups(page, hub):
    page.open("system")
    link = page.page.locator("#export-link")
    link.wait_for()
    assert "resolution" not in link.get_attribute("href")
    page.page.get_by_label("Resolution").select_option("hour")
    page.wait_for("document.querySelector('#export-link').href.includes('resolution=hour')")
    reply = page.page.request.get(hub.url + link.get_attribute("href"))
    assert reply.ok
    lines = reply.text().splitlines()
    assert lines[0].startswith("time,solar_wh,home_wh,") and len(lines) > 2
