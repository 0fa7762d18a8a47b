"""Every recorded Powerwall gateway reply in ../shared/data parses, or fails with a clear error."""

import asyncio
import json
from pathlib import Path

import pytest

from homegrid.devices import DeviceError
from homegrid.devices.powerwall import PowerwallGateway, app_soc
from homegrid.devices.powerwall.replies import (
    ReplyError,
    parse_aggregates,
    parse_grid_faults,
    parse_grid_status,
    parse_operation,
    parse_soe,
)
from homegrid.glossary import GridStatus
from homegrid.readings import Reading

from .conftest import SHARED_DATA

PW = SHARED_DATA / "powerwall"
SAMPLES = PW / "powerwall2" / "samples"
FIRMWARES = ["21.39.1-foogod", "21.44-foogod"]


class RecordedGateway:
    """Answers GETs from one folder of recorded replies, in either repository's file naming."""

    def __init__(self, folder: Path):
        self.folder = folder

    def poll(self, api: str):
        stem = api.strip("/").replace("/", ".")
        for name in (f"{stem[4:]}.json", f"{stem}.json"):
            path = self.folder / name
            if path.exists():
                text = path.read_text()
                try:
                    return json.loads(text)
                except json.JSONDecodeError:
                    return text  # "TIMEOUT!" and truncated replies, as a client would hand them on
        err = self.folder / f"{stem[4:]}.err"
        if err.exists():
            raise OSError(err.read_text().splitlines()[0].strip())  # e.g. "HTTP/2 502"
        return None


def _read(folder: Path) -> tuple[Reading, PowerwallGateway]:
    gw = PowerwallGateway(RecordedGateway(folder))
    return asyncio.run(gw.poll()), gw


@pytest.mark.parametrize("firmware", FIRMWARES)
def test_running_gateway_gives_a_full_reading(firmware):
    reading, gw = _read(SAMPLES / firmware / "running")
    v = reading.values
    assert {"grid_power", "battery_power", "solar_power", "home_power", "battery_soc", "grid_status"} <= set(v)
    assert {"grid_energy_imported", "battery_energy_exported", "solar_energy_exported"} <= set(v)
    # the gateway's own balance: load = site + battery + solar, to meter accuracy
    assert v["home_power"] == pytest.approx(v["grid_power"] + v["battery_power"] + v["solar_power"], abs=60)
    assert v["grid_status"] == GridStatus.CONNECTED
    assert 0 <= v["battery_soc"] <= 100
    assert gw.operation is not None and gw.operation.mode in {"self_consumption", "autonomous", "backup"}
    assert gw.problems == {}


@pytest.mark.parametrize("firmware", FIRMWARES)
def test_stopped_gateway_fails_the_poll_with_the_endpoint_named(firmware):
    with pytest.raises(DeviceError, match=r"/api/meters/aggregates: OSError: HTTP/2 502"):
        _read(SAMPLES / firmware / "stopped")


def test_pypowerwall_bogus_replies():
    reading, gw = _read(PW / "pypowerwall" / "bogus")
    assert gw.operation is not None and gw.operation.backup_reserve_percent == 81.0
    assert reading.values["battery_reserve"] == pytest.approx(80.0)  # the app's scale: (81 - 5) / 0.95
    gateway = parse_soe(json.loads((PW / "pypowerwall" / "bogus" / "api.system_status.soe.json").read_text()))
    assert reading.values["battery_soc_gateway"] == pytest.approx(gateway)
    assert reading.values["battery_soc"] == pytest.approx((gateway - 5) / 0.95)
    for name, status in [("api.system_status.grid_status.json", GridStatus.CONNECTED),
                         ("api.system_status.grid_status.offline.json", GridStatus.ISLANDED),
                         ("api.system_status.grid_status.transition.json", GridStatus.TRANSITION)]:
        assert parse_grid_status(json.loads((PW / "pypowerwall" / "bogus" / name).read_text())) == status


@pytest.mark.parametrize("path", sorted(p for p in PW.rglob("*.json") if "openapi" not in p.parts
                                        and ".post." not in p.name  # request bodies, not replies
                                        and any(k in p.name for k in ("aggregates", "soe", "grid_status",
                                                                      "operation", "grid_faults"))),
                         ids=lambda p: str(p.relative_to(PW)))
def test_every_recorded_reply_parses_or_names_its_problem(path):
    text = path.read_text()
    try:
        reply = json.loads(text)
    except json.JSONDecodeError:
        reply = text
    name = path.name
    parser = (parse_aggregates if "aggregates" in name else parse_soe if "soe" in name
              else parse_grid_status if "grid_status" in name else parse_grid_faults if "grid_faults" in name
              else parse_operation)
    try:
        parser(reply)
    except ReplyError as exc:
        assert exc.endpoint.startswith("/api/") and exc.reason


def test_grid_faults_carry_their_own_time_and_frequency():
    faults = parse_grid_faults(json.loads((SAMPLES / "system_status.grid_faults.json").read_text()))
    assert faults and faults[0].time_ms == 1569976192352
    assert faults[0].name == "PINV_a006_vfCheckUnderFrequency"
    assert faults[0].detail["PINV_a006_frequency"] == pytest.approx(57.207)


@pytest.mark.parametrize("reply", ["TIMEOUT!", None, [], {"site": {"instant_power": "x"}}, {"foo": {}},
                                   {"site": {"energy_imported": 1.0}}])
def test_malformed_aggregates_are_clear_errors(reply):
    with pytest.raises(ReplyError, match="/api/meters/aggregates"):
        parse_aggregates(reply)


def test_app_soc_hides_the_bottom_five_percent():
    assert app_soc(5.0) == 0.0 and app_soc(100.0) == 100.0
    assert app_soc(52.5) == pytest.approx(50.0)


def test_optional_endpoints_failing_leave_a_partial_reading():
    class Flaky(RecordedGateway):
        def poll(self, api):
            if "soe" in api:
                raise TimeoutError("read timed out")
            return super().poll(api)

    gw = PowerwallGateway(Flaky(SAMPLES / "21.44-foogod" / "running"))
    reading = asyncio.run(gw.poll())
    assert "battery_soc" not in reading.values and "grid_power" in reading.values
    assert "read timed out" in gw.problems["/api/system_status/soe"]


def test_hub_records_a_recorded_gateway_end_to_end(tmp_path):
    from homegrid.config import Config
    from homegrid.hub.service import Hub

    gw = PowerwallGateway(RecordedGateway(SAMPLES / "21.44-foogod" / "running"))
    hub = Hub(Config(), tmp_path, device=gw)
    assert asyncio.run(hub.poll_once())
    hub.flush()
    stored = hub.store.latest()
    assert stored.columns["grid_status"][0] == GridStatus.CONNECTED
    assert stored.columns["grid_energy_imported"][0] > 0
    assert hub.status()["device"]["partial"] == {}
    hub.store.close()
