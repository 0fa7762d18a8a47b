"""Real pypowerwall, through homegrid's client and adapter, against the simulated gateway over HTTPS."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from homegrid.devices import DeviceError
from homegrid.devices.powerwall import PowerwallGateway
from homegrid.devices.powerwall.client import PowerwallClient, connect_gateway
from homegrid.devices.powerwall.replies import app_soc
from homegrid.devices.powerwall.simulator import ENDPOINTS, SCENARIOS, ManualClock, SimulatedGateway, Simulator
from homegrid.glossary import GridStatus

from .waiting import wait_for

# pypowerwall hard-codes verify=False and silences urllib3 warnings process-wide at import; pytest's own
# "error" filter comes first during a test, so the warning would turn into an exception inside requests.

PASSWORD = "Xq7-hunter2-Zz"
TIMEOUT_S = 0.3  # the client's per-request timeout in these tests [s]


@pytest.fixture(scope="module")
def sim():
    with Simulator() as s:
        yield s


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def gw(sim: Simulator, clock: ManualClock) -> SimulatedGateway:
    return sim.add_gateway(password=PASSWORD, clock=clock, hold_s=1.0, transition_s=2.0)


@pytest.fixture
def clients(tmp_path):
    made: list[PowerwallClient] = []

    def make(address: str, password: str = PASSWORD, **kw) -> PowerwallClient:
        kw.setdefault("timeout_s", TIMEOUT_S)
        kw.setdefault("auth_dir", tmp_path / "auth")
        c = connect_gateway(address, password, **kw)
        made.append(c)
        return c

    yield make
    for c in made:
        c.close()


@pytest.fixture
def device(gw: SimulatedGateway, clients) -> PowerwallGateway:
    return PowerwallGateway(clients(gw.address))


def test_reading_matches_the_gateway_state(device, gw, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # nothing of pypowerwall's may land in the current directory
    reading = asyncio.run(device.poll())
    truth = gw.state()
    v = reading.values
    for name, value in truth.values.items():
        assert v[name] == pytest.approx(value), name
    assert v["grid_status"] == GridStatus.CONNECTED
    assert v["home_power"] == pytest.approx(v["grid_power"] + v["battery_power"] + v["solar_power"])
    assert device.operation is not None and device.operation.mode == "self_consumption"
    assert device.operation.backup_reserve_percent == 20.0
    assert device.problems == {} and device.faults == []
    assert gw.logins == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["auth"]
    cookie = device.client.cookie_file
    assert cookie.parent == tmp_path / "auth" and cookie.exists()
    assert stat.S_IMODE(cookie.stat().st_mode) == 0o600
    assert PASSWORD not in cookie.read_text()


def test_every_poll_reads_the_gateway_and_counters_integrate_time(device, gw, clock):
    first = device.read().values
    clock.advance(3600.0)
    second = device.read().values
    assert gw.requests["/api/meters/aggregates"] == 3  # the 401, the retry after login, and the second poll
    sc = SCENARIOS["normal"]
    grid = sc.load - sc.solar - sc.battery
    assert second["grid_energy_imported"] - first["grid_energy_imported"] == pytest.approx(grid)
    assert second["grid_energy_exported"] == pytest.approx(first["grid_energy_exported"])
    assert second["solar_energy_exported"] - first["solar_energy_exported"] == pytest.approx(sc.solar)
    assert second["home_energy_imported"] - first["home_energy_imported"] == pytest.approx(sc.load)
    assert second["battery_energy_imported"] - first["battery_energy_imported"] == pytest.approx(-sc.battery)
    assert second["battery_energy_exported"] == pytest.approx(first["battery_energy_exported"])
    assert second["battery_soc_gateway"] - first["battery_soc_gateway"] == pytest.approx(-sc.battery / 13500 * 100)
    # the Tesla app's scale: the gateway's top 95 % spread over 0..100
    assert second["battery_soc"] - first["battery_soc"] == pytest.approx(-sc.battery / 13500 * 100 / 0.95)
    reserve = app_soc(gw.model.operation()["backup_reserve_percent"])
    volts = second.pop("grid_voltage")
    assert volts > 100  # the site meter sees the grid
    assert first["battery_capacity"] == gw.model.capacity_wh  # from /api/system_status, read every 10 min
    assert "battery_capacity" not in second  # not read again yet: its time is when it was read
    assert second == pytest.approx(gw.state().values | {"grid_status": 1.0, "battery_reserve": reserve})


def test_counters_move_with_real_time(sim, clients):
    gw = sim.add_gateway(password=PASSWORD)  # the wall clock
    dev = PowerwallGateway(clients(gw.address))
    first = dev.read().values
    time.sleep(0.2)  # on purpose: the wall clock's passing is what moves the counters under test
    second = dev.read().values
    for name in ("grid_energy_imported", "solar_energy_exported", "home_energy_imported", "battery_energy_imported"):
        assert second[name] > first[name], name
    assert second["home_energy_imported"] <= gw.state().counters["home_energy_imported"]


def test_outage_islands_the_site_logs_a_fault_and_reconnects_through_transition(device, gw, clock):
    device.read()
    start = clock.advance(600.0)
    gw.set_scenario("outage")
    clock.advance(60.0)
    before = device.read().values
    assert before["grid_status"] == GridStatus.ISLANDED
    assert before["grid_power"] == 0.0
    sc = SCENARIOS["outage"]
    assert before["battery_power"] == pytest.approx(sc.load - sc.solar)
    assert len(device.faults) == 1
    fault = device.faults[0]
    assert fault.time_ms == int(start * 1000) and fault.is_fault
    assert fault.name == "PINV_a006_vfCheckUnderFrequency" and fault.detail["PINV_alertType"] == "Fault"
    clock.advance(1800.0)
    during = device.read().values
    assert during["grid_energy_imported"] == pytest.approx(before["grid_energy_imported"])  # no grid while islanded
    assert during["battery_energy_exported"] - before["battery_energy_exported"] == pytest.approx(
        (sc.load - sc.solar) / 2)

    gw.set_scenario("normal")
    clock.advance(1.0)
    syncing = device.read().values
    assert syncing["grid_status"] == GridStatus.TRANSITION and syncing["grid_power"] == 0.0
    clock.advance(1.5)
    back = device.read().values
    assert back["grid_status"] == GridStatus.CONNECTED
    assert back["grid_power"] == pytest.approx(50.0)
    assert [f.time_ms for f in device.faults] == [int(start * 1000)]  # the log keeps the outage, nothing new

    clock.advance(60.0)
    gw.set_scenario("outage")  # a second outage: a second entry with its own time
    device.read()
    assert [f.time_ms for f in device.faults] == [int(start * 1000), int(clock.now * 1000)]


@pytest.mark.parametrize("scenario", ["night", "export"])
def test_night_and_export(scenario, device, gw, clock):
    gw.set_scenario(scenario)
    first = device.read().values
    clock.advance(600.0)
    v = device.read().values
    sc = SCENARIOS[scenario]
    assert v["solar_power"] == sc.solar and v["home_power"] == sc.load
    assert v["grid_status"] == GridStatus.CONNECTED
    if scenario == "night":
        assert v["solar_power"] == 0.0 and v["battery_power"] > 0  # the battery carries the home
        assert v["battery_soc"] < first["battery_soc"]
        assert v["battery_energy_exported"] - first["battery_energy_exported"] == pytest.approx(sc.battery / 6)
    else:
        assert v["grid_power"] == pytest.approx(sc.load - sc.solar) and v["grid_power"] < 0  # export is negative
        assert v["grid_energy_exported"] - first["grid_energy_exported"] == pytest.approx((sc.solar - sc.load) / 6)
        assert v["grid_energy_imported"] == pytest.approx(first["grid_energy_imported"])


@pytest.mark.parametrize(("fault", "says"), [
    ("timeout", r"Timeout waiting for Powerwall API /api/meters/aggregates"),
    ("http500", r"status code 500"),
    ("garbage", r"expected a JSON object, got str"),
    ("truncated", r"Unable to parse payload"),
    ("shape_change", r"meter 'site' has no 'instant_power' \(firmware shape change\?\)"),
])
def test_a_fault_fails_the_poll_and_clearing_it_recovers(fault, says, device, gw):
    device.read()
    gw.set_fault(fault)
    started = time.perf_counter()
    with pytest.raises(DeviceError, match=says) as err:
        device.read()
    assert time.perf_counter() - started < TIMEOUT_S + 0.5
    assert "/api/meters/aggregates" in str(err.value) and PASSWORD not in str(err.value)
    gw.clear_fault(fault)
    reading = device.read()
    assert reading.values["grid_power"] == pytest.approx(50.0) and device.problems == {}


@pytest.mark.parametrize(("endpoint", "fault", "lost"), [
    ("/api/system_status/soe", "timeout", "battery_soc"),
    ("/api/system_status/grid_status", "garbage", "grid_status"),
    ("/api/operation", "truncated", None),
    ("/api/system_status/grid_faults", "http500", None),
])
def test_a_fault_of_an_optional_endpoint_leaves_a_partial_reading(endpoint, fault, lost, device, gw):
    assert endpoint in ENDPOINTS[1:]
    gw.set_fault(fault, endpoint)
    v = device.read().values
    assert set(device.problems) == {endpoint}
    assert device.problems[endpoint].startswith(endpoint)
    assert v["grid_power"] == pytest.approx(50.0)
    if lost:
        assert lost not in v
    gw.clear_fault(fault, endpoint)
    v = device.read().values
    assert device.problems == {} and {"battery_soc", "grid_status"} <= set(v)


def test_gone_for_a_while_then_back(device, gw):
    device.read()
    gw.gone()
    for _ in range(3):
        with pytest.raises(DeviceError, match="Connection refused"):
            device.read()
    assert gw.faults() == {None: {"gone"}}
    gw.back()  # a rebooted gateway: the old session is refused and pypowerwall logs in again
    assert device.read().values["grid_power"] == pytest.approx(50.0)
    assert gw.logins == 2


def test_gone_for_a_set_time_comes_back_by_itself(device, gw):
    device.read()
    gw.set_fault("gone", for_s=0.3)
    with pytest.raises(DeviceError):
        device.read()
    wait_for(lambda: gw.listening, timeout=5, interval=0.02, what="the gateway never came back")
    assert device.read().values["grid_status"] == GridStatus.CONNECTED


def test_a_hub_started_while_the_gateway_is_off_recovers_without_restart(sim, clients):
    gw = sim.add_gateway(password=PASSWORD, listening=False)
    with pytest.raises(DeviceError, match=rf"gateway {gw.address}: Unable to connect"):
        clients(gw.address, check=True)
    dev = PowerwallGateway(clients(gw.address))  # lazy: no request yet
    assert gw.requests.total() == 0
    with pytest.raises(DeviceError, match="Connection refused"):
        dev.read()
    gw.back()
    assert dev.read().values["grid_status"] == GridStatus.CONNECTED


def test_expired_session_logs_in_again(device, gw):
    device.read()
    gw.expire_sessions()
    assert device.read().values["grid_power"] == pytest.approx(50.0)
    assert gw.logins == 2


def test_wrong_password_is_a_clear_error_without_the_password(gw, clients, caplog):
    caplog.set_level(logging.DEBUG)
    wrong = "Wrong-Pa55-qwerty"
    with pytest.raises(DeviceError, match=rf"gateway {gw.address} refused the login: .*check password") as err:
        clients(gw.address, wrong, check=True)
    dev = PowerwallGateway(clients(gw.address, wrong))
    with pytest.raises(DeviceError, match="refused the login") as err2:
        dev.read()
    for text in (str(err.value), str(err2.value), caplog.text):
        assert wrong not in text and PASSWORD not in text
    assert gw.requests["/api/login/Basic"] == 2 and gw.logins == 0
    assert "Xq7" not in caplog.text


def test_host_forms_and_bad_settings(gw, clients, tmp_path):
    port = gw.address.rsplit(":", 1)[1]
    assert PowerwallGateway(clients(f"localhost:{port}")).read().values["grid_status"] == GridStatus.CONNECTED
    with pytest.raises(DeviceError, match="Invalid powerwall host"):
        connect_gateway("not a host!", PASSWORD, auth_dir=tmp_path)
    with pytest.raises(DeviceError, match="port 70000 is out of the valid TCP range"):
        connect_gateway("127.0.0.1:70000", PASSWORD, auth_dir=tmp_path)
    with pytest.raises(DeviceError, match="expected one of local, cloud, fleetapi"):
        connect_gateway(gw.address, PASSWORD, mode="teslapy")
    with pytest.raises(DeviceError, match="cloud mode needs auth_dir"):
        connect_gateway("", "", "me@example.com", mode="cloud")


@pytest.mark.parametrize(("mode", "says"), [
    ("cloud", r"Tesla cloud: cannot connect: .*Missing auth file .*/tesla/\.pypowerwall\.auth - run setup"),
    ("fleetapi", r"Tesla fleetapi: cannot connect: .*run pypowerwall fleetapi setup"),
])
def test_cloud_modes_without_their_setup_files_fail_clearly(mode, says, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    auth = tmp_path / "tesla"
    client = connect_gateway("", "", "me@example.com", mode=mode, auth_dir=auth)  # lazy: nothing sent yet
    try:
        assert not client.reports_counters  # pypowerwall's cloud aggregates carry stub counters fixed at 0
        for attempt in (1, 2):  # each poll tries again (offline: both fail before any request leaves)
            with pytest.raises(DeviceError, match=says):
                PowerwallGateway(client).read()
            assert client.connects == attempt
        with pytest.raises(DeviceError, match=says):
            connect_gateway("", "", "me@example.com", mode=mode, auth_dir=auth, check=True)
    finally:
        client.close()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tesla"] and list(auth.iterdir()) == []


def test_private_auth_dir_is_removed_on_close(gw):
    client = connect_gateway(gw.address, PASSWORD, timeout_s=TIMEOUT_S)
    try:
        PowerwallGateway(client).read()
        folder = client.auth_dir
        assert client.cookie_file.exists() and folder != Path.cwd()
    finally:
        client.close()
    assert not folder.exists()


def test_many_gateways_on_one_loop(sim, clients):
    gateways = sim.add_gateways(20, password=PASSWORD, scenario="export")
    assert len({g.port for g in gateways}) == 20
    for g in gateways:  # each first read is a new TLS session: 0.3 s timed out once on a loaded CI machine
        assert PowerwallGateway(clients(g.address, timeout_s=5.0)).read().values["grid_power"] < 0


def test_control_endpoints_and_certificate(sim, tmp_path):
    gw = sim.add_gateway(password=PASSWORD)
    ca = tmp_path / "ca.pem"
    ca.write_bytes(sim.cert_pem)
    base = f"https://{gw.address}/_sim"
    kw = {"verify": str(ca), "timeout": 5}  # per request: REQUESTS_CA_BUNDLE would override a Session's verify
    with requests.Session() as s:  # the self-signed certificate names the loopback address
        assert s.post(f"{base}/scenario", json={"scenario": "outage"}, **kw).json() == {"scenario": "outage"}
        state = s.get(f"{base}/state", **kw).json()
        assert state["grid_status"] == "SystemIslandedActive" and state["values"]["grid_power"] == 0.0
        assert len(state["faults"]) == 1
        r = s.post(f"{base}/fault", json={"fault": "http500", "endpoint": "/api/operation"}, **kw)
        assert r.json()["switches"] == {"/api/operation": ["http500"]}
        assert s.post(f"{base}/fault", json={"fault": "nonsense"}, **kw).status_code == 400
        assert s.get(f"https://{gw.address}/api/meters/aggregates", **kw).status_code == 401
        login = s.post(f"https://{gw.address}/api/login/Basic", json={"username": "customer", "password": "x"}, **kw)
        assert login.status_code == 401 and login.json()["error"] == "bad credentials"


def test_command_line_runs_gateways_until_killed(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    proc = subprocess.Popen([sys.executable, "-m", "homegrid.devices.powerwall.simulator", "--count", "3"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        assert proc.stdout is not None
        addresses = [proc.stdout.readline().strip() for _ in range(3)]
        assert all(a.startswith("127.0.0.1:") for a in addresses) and len(set(addresses)) == 3
        state = requests.get(f"https://{addresses[0]}/_sim/state", verify=False, timeout=5).json()
        assert state["scenario"] == "normal" and "grid_energy_imported" in state["values"]
        assert json.dumps(state)
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=10)
    assert proc.returncode == 0, err
