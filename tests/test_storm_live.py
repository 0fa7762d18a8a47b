"""`homegrid storm` against a running `homegrid serve` (issue 4): the owner's switch from the command line reaches
the hub, which raises the virtual home's backup reserve and puts it back; the readings and `/api/v1/settings`
follow. The alert feed is a published NWS example with no alerts in force, read from a file."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from .test_web import Served, running_hub
from .waiting import wait_for

NO_ALERTS = Path(__file__).parent / "fixtures" / "nws" / "area_AZ_no_alerts_2024-01-08.json"


STORM_CONFIG = f"""
[site]
timezone = "America/Phoenix"
[server]
backfill_days = 0.05
poll_interval_s = 1
[virtual]
outages_per_year = 0
backup_reserve_percent = 25
[storm]
enabled = true
source = {json.dumps(str(NO_ALERTS))}
interval_s = 60
reserve_percent = 100
hold_h = 0
settle_s = 0
"""


@pytest.fixture(scope="module")
def hub(tmp_path_factory) -> Iterator[Served]:
    with running_hub(tmp_path_factory.mktemp("storm"), STORM_CONFIG, ZoneInfo("America/Phoenix")) as served:
        yield served


def storm_cli(hub: Served, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "homegrid.cli", "storm", *args, "--config", str(hub.config),
                           "--data-dir", str(hub.data_dir), "--url", hub.url],
                          capture_output=True, text=True, timeout=60)


def test_the_owners_switch_from_the_command_line_reaches_the_running_hub(hub):
    out = storm_cli(hub)
    assert out.returncode == 0, out.stderr
    status = json.loads(out.stdout)
    assert status["enabled"] and not status["storm"] and status["alerts"] == []

    on = storm_cli(hub, "on")
    assert on.returncode == 0, on.stderr
    assert json.loads(on.stdout)["manual"] is True
    wait_for(lambda: hub.get("/api/v1/storm")["storm"], timeout=15, interval=0.2, what="storm mode never came on")
    wait_for(lambda: hub.get("/api/v1/live")["values"].get("battery_reserve") == 100.0,
             timeout=15, interval=0.2, what="the readings never showed the storm reserve")
    assert hub.get("/api/v1/settings")["battery_reserve"] == 100.0
    assert hub.get("/api/v1/storm")["saved_reserve_percent"] == 25.0
    assert json.loads(storm_cli(hub, "status").stdout)["storm"] is True

    auto = storm_cli(hub, "auto")
    assert auto.returncode == 0, auto.stderr
    wait_for(lambda: not hub.get("/api/v1/storm")["storm"], timeout=15, interval=0.2, what="storm mode never went off")
    wait_for(lambda: hub.get("/api/v1/live")["values"].get("battery_reserve") == 25.0,
             timeout=15, interval=0.2, what="the owner's reserve was not put back")


def test_the_command_line_says_clearly_when_no_hub_answers(hub):
    out = subprocess.run([sys.executable, "-m", "homegrid.cli", "storm", "--config", str(hub.config),
                          "--url", "http://127.0.0.1:9"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 1 and "did not answer" in out.stderr and "homegrid serve" in out.stderr
    bad = storm_cli(hub, "on", "--until", "2030-01-01T00:00:00")  # no offset
    assert bad.returncode != 0 and "offset" in bad.stderr
