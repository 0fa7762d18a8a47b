"""The Tesla car: recorded Fleet API / Teslemetry / Tessie replies, the sleep-aware poll policy, the real client."""

from __future__ import annotations

import asyncio
import base64
import copy
import json
import math
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from homegrid.devices import DeviceError
from homegrid.devices.tesla import (
    AuthError,
    FleetApiClient,
    FleetTokens,
    Home,
    Mode,
    PollPolicy,
    RateLimitedError,
    ReplyError,
    TeslaApiError,
    TeslaVehicle,
    TeslemetryClient,
    TessieClient,
    TokenBucket,
    VehicleClient,
    VehicleState,
    VehicleUnavailableError,
    distance_m,
    parse_vehicle_data,
    parse_vehicle_state,
)
from homegrid.devices.tesla.client import jwt_expiry, retry_after_s
from homegrid.glossary import EvChargingState
from homegrid.readings import Reading

from .conftest import SHARED_DATA

HA = SHARED_DATA / "tesla" / "home-assistant"
VEHICLE_DIRS = ("tesla_fleet", "teslemetry", "tessie")
MI = 1.609344
#: Where the recorded (anonymised) cars are parked.
PARKED_AT = (-30.222626, -97.6236871)
HOME = Home(*PARKED_AT)
METRES_PER_DEGREE_LAT = 2 * math.pi * 6_371_008.8 / 360


def load(rel: str) -> Any:
    return json.loads((HA / rel).read_text())


# -- recorded replies ---------------------------------------------------------------------------------------------

STOPPED_AT_HOME = {"ev_soc": 77.0, "ev_range": 266.87 * MI, "ev_charge_limit": 80.0, "ev_time_to_full": 0.0,
                   "ev_charging_state": float(EvChargingState.STOPPED), "ev_at_home": 1.0, "ev_power": 0.0}
ALT = {k: v for k, v in STOPPED_AT_HOME.items() if k != "ev_time_to_full"}
ALT_PROBLEMS = {"charge_state.minutes_to_full_charge": "is 'bad value', not a number",
                "charge_state.time_to_full_charge": "is null"}
CHARGING_AT_HOME = {"ev_soc": 75.0, "ev_range": 263.68 * MI, "ev_charge_limit": 80.0, "ev_time_to_full": 1800.0,
                    "ev_charging_state": float(EvChargingState.CHARGING), "ev_at_home": 1.0, "ev_power": 7000.0}

#: Every vehicle_data-shaped recording: (file, how to get the reply out, values, problems).
VEHICLE_DATA: dict[str, tuple[Callable[[Any], Any], dict[str, float], dict[str, str]]] = {
    "tesla_fleet/vehicle_data.json": (lambda r: r, STOPPED_AT_HOME, {}),
    "tesla_fleet/vehicle_data_alt.json": (lambda r: r, ALT, ALT_PROBLEMS),
    "teslemetry/vehicle_data.json": (lambda r: r, STOPPED_AT_HOME, {}),
    "teslemetry/vehicle_data_alt.json": (lambda r: r, ALT, ALT_PROBLEMS),
    "tessie/online.json": (lambda r: r, CHARGING_AT_HOME, {}),  # bare, as Tessie returns it
    "tessie/vehicles.json": (lambda r: r["results"][0]["last_state"], {**CHARGING_AT_HOME, "ev_time_to_full": 0.0}, {}),
}

#: Every vehicle-state recording (list, products, Tessie status) and the state it gives.
VEHICLE_STATES = {
    "tessie/asleep.json": VehicleState.ASLEEP,
    "tessie/vehicles.json": VehicleState.ONLINE,
    "tessie/products.json": VehicleState.ASLEEP,
    "teslemetry/products.json": VehicleState.ASLEEP,
}


@pytest.mark.parametrize("rel", sorted(VEHICLE_DATA))
def test_recorded_vehicle_data_gives_the_expected_glossary_values(rel):
    pick, expected, problems = VEHICLE_DATA[rel]
    data = parse_vehicle_data(pick(load(rel)), HOME)
    assert data.values == pytest.approx(expected)
    assert set(data.values) == set(expected)
    assert data.problems == problems
    assert data.at_home is True and data.distance_m == pytest.approx(0.0, abs=0.01)
    # and the hub would take every value
    reading, refused = Reading.checked(datetime(2024, 1, 20, tzinfo=UTC), data.values)
    assert refused == {} and reading.values == pytest.approx(expected)


@pytest.mark.parametrize("rel", sorted(VEHICLE_STATES))
def test_recorded_state_replies_give_the_state_without_vehicle_data(rel):
    assert parse_vehicle_state(load(rel)) is VEHICLE_STATES[rel]


@pytest.mark.parametrize("path", sorted(p for d in VEHICLE_DIRS for p in (HA / d).glob("*.json")),
                         ids=lambda p: str(p.relative_to(HA)))
def test_every_recorded_reply_is_read_or_refused_clearly(path):
    """No recording is left out: each is vehicle data, a vehicle state, or refused by both parsers by name."""
    rel = str(path.relative_to(HA))
    reply = json.loads(path.read_text())
    if rel in VEHICLE_DATA or rel in VEHICLE_STATES:
        return  # checked value by value above
    with pytest.raises(ReplyError, match=r"^vehicle_data: ") as err:
        parse_vehicle_data(reply, HOME)
    assert err.value.reason
    with pytest.raises(ReplyError, match=r"^vehicle list: "):
        parse_vehicle_state(reply)


def test_products_list_picks_the_car_by_vin_and_skips_energy_sites():
    products = load("teslemetry/products.json")
    assert parse_vehicle_state(products, "LRW3F7EK4NC700000") is VehicleState.ASLEEP
    with pytest.raises(ReplyError, match=r"'NOPE' is not in the list \(1 vehicles: LRW3F7EK4NC700000"):
        parse_vehicle_state(products, "NOPE")
    two = {"response": [{"vin": "A", "state": "online"}, {"vin": "B", "state": "offline"}], "count": 2}
    with pytest.raises(ReplyError, match="2 vehicles in the list; say which VIN"):
        parse_vehicle_state(two)
    assert parse_vehicle_state(two, "B") is VehicleState.OFFLINE
    assert parse_vehicle_state({"response": {"vin": "A", "state": "online"}}, "A") is VehicleState.ONLINE
    assert parse_vehicle_state({"status": "awake"}) is VehicleState.ONLINE  # Tessie's status names
    assert parse_vehicle_state({"status": "waiting_for_sleep"}) is VehicleState.ONLINE
    with pytest.raises(ReplyError, match="unknown vehicle state 'dreaming'"):
        parse_vehicle_state({"response": [{"vin": "A", "state": "dreaming"}]})
    with pytest.raises(ReplyError, match=r"response is null \(vehicle unavailable"):
        parse_vehicle_state({"response": None, "error": "vehicle unavailable"})


@pytest.mark.parametrize(("reply", "match"), [
    ("<html>502</html>", "expected a JSON object, got str"),
    ({"response": None, "error": "vehicle unavailable: asleep", "error_description": ""},
     r"response is null \(vehicle unavailable: asleep\)"),
    ({"response": {"state": "online", "drive_state": {}}}, "no charge_state in the reply"),
    ({"response": {"charge_state": [1, 2]}}, "charge_state is list, not an object"),
    ({"response": []}, "response is list, not an object"),
    ({"state": "asleep"}, "no charge_state"),
])
def test_unusable_vehicle_data_is_a_clear_reply_error(reply, match):
    with pytest.raises(ReplyError, match=match) as err:
        parse_vehicle_data(reply, HOME)
    assert err.value.endpoint == "vehicle_data"


def car(charging_state: str = "Charging", power: float | None = 7, *, lat: float | None = PARKED_AT[0],
        lon: float | None = PARKED_AT[1], shift: str | None = None, t_ms: int | None = None) -> dict[str, Any]:
    """A Fleet API vehicle_data reply built on the recorded charging car."""
    body = copy.deepcopy(load("tessie/online.json"))
    cs, ds = body["charge_state"], body["drive_state"]
    cs["charging_state"] = charging_state
    cs["charger_power"] = power
    cs["timestamp"] = t_ms
    for key, value in (("latitude", lat), ("longitude", lon)):
        if value is None:
            ds.pop(key)
        else:
            ds[key] = value
    ds["shift_state"] = shift
    return {"response": body}


def north_of_home(metres: float) -> float:
    return PARKED_AT[0] + metres / METRES_PER_DEGREE_LAT


def test_distance_is_the_great_circle():
    assert distance_m(0, 0, 1, 0) == pytest.approx(111_195, rel=1e-4)
    assert distance_m(*PARKED_AT, north_of_home(150), PARKED_AT[1]) == pytest.approx(150, abs=0.01)
    # the anonymised fixtures' route point (+30.22) is the mirror image of the car (-30.22): ~6700 km
    assert distance_m(*PARKED_AT, 30.2226265, -97.6236871) == pytest.approx(6_721_000, rel=1e-3)


def test_at_home_is_decided_by_distance_within_the_radius():
    reply = car(lat=north_of_home(150))
    away = parse_vehicle_data(reply, Home(*PARKED_AT, radius_m=100))
    assert away.at_home is False and away.distance_m == pytest.approx(150, abs=0.01)
    assert away.values["ev_at_home"] == 0.0
    # charging elsewhere: the car's own state is kept, the home charger draws nothing
    assert away.values["ev_power"] == 0.0
    assert away.values["ev_charging_state"] == EvChargingState.CHARGING
    near = parse_vehicle_data(reply, Home(*PARKED_AT, radius_m=200))
    assert near.at_home is True and near.values["ev_at_home"] == 1.0 and near.values["ev_power"] == 7000.0


def test_without_a_location_at_home_is_unknown_and_said_so():
    no_location = car(lat=None, lon=None)
    data = parse_vehicle_data(no_location, HOME)
    assert "ev_at_home" not in data.values and data.at_home is None
    assert "endpoints=location_data" in data.problems["ev_at_home"]
    # charging somewhere unknown: its share of the home is unknown too
    assert "ev_power" not in data.values and "ev_power" in data.problems
    assert data.values["ev_soc"] == 75.0
    # not charging: it draws nothing wherever it is
    idle = parse_vehicle_data(car("Complete", 0, lat=None, lon=None), HOME)
    assert idle.values["ev_power"] == 0.0 and "ev_at_home" not in idle.values
    no_site = parse_vehicle_data(car(), None)
    assert "ev_at_home" not in no_site.values and "no site location" in no_site.problems["ev_at_home"]
    bad = parse_vehicle_data(car(lat=float("nan")), HOME)
    assert "ev_at_home" not in bad.values and "not a finite number" in bad.problems["ev_at_home"]


def test_bad_fields_are_skipped_one_by_one_and_listed():
    reply = car()
    cs = reply["response"]["charge_state"]
    cs["battery_level"] = None
    cs["battery_range"] = "far"
    del cs["charge_limit_soc"]
    cs["minutes_to_full_charge"] = True  # a bool is not a number
    cs["charger_power"] = None
    data = parse_vehicle_data(reply, HOME)
    assert data.problems["charge_state.battery_level"] == "is null"
    assert data.problems["charge_state.battery_range"] == "is 'far', not a number"
    assert data.problems["charge_state.charge_limit_soc"] == "missing"
    assert "charge_state.minutes_to_full_charge" not in data.problems  # time_to_full_charge stood in
    assert data.values["ev_time_to_full"] == 1800.0
    assert data.problems["charge_state.charger_power"] == "is null"  # charging at home, power unknown
    assert set(data.values) == {"ev_time_to_full", "ev_charging_state", "ev_at_home"}


def test_unknown_charging_state_is_stored_as_unknown_and_listed():
    data = parse_vehicle_data(car("Supercharging"), HOME)
    assert data.values["ev_charging_state"] == EvChargingState.UNKNOWN
    assert "unknown charging_state 'Supercharging'" in data.problems["charge_state.charging_state"]


# -- the poll policy ------------------------------------------------------------------------------------------------

T0 = datetime(2025, 6, 1, 12, 0, tzinfo=UTC).timestamp()


class FakeClock:
    def __init__(self, t: float = T0) -> None:
        self.t = t

    def __call__(self) -> datetime:
        return datetime.fromtimestamp(self.t, tz=UTC)

    @property
    def ms(self) -> int:
        return round(self.t * 1000)


class FakeCar:
    """A VehicleClient that never touches the network: the state and the charge are set by the test."""

    def __init__(self, clock: FakeClock, state: str = "online", charging: str = "Charging") -> None:
        self.clock = clock
        self.car_state = state
        self.charging = charging
        self.shift: str | None = None
        self.state_calls: list[float] = []
        self.data_calls: list[float] = []
        self.fail_state: BaseException | None = None
        self.fail_data: BaseException | None = None
        self.data_age_s = 0.0

    async def state(self) -> str:
        self.state_calls.append(self.clock.t)
        if self.fail_state is not None:
            raise self.fail_state
        return self.car_state

    async def vehicle_data(self) -> dict[str, Any]:
        self.data_calls.append(self.clock.t)
        assert self.car_state == "online", "vehicle_data asked of a car that is not online"
        if self.fail_data is not None:
            raise self.fail_data
        power = 7 if self.charging == "Charging" else 0
        return car(self.charging, power, shift=self.shift, t_ms=self.clock.ms - round(self.data_age_s * 1000))


def run_polls(vehicle: TeslaVehicle, clock: FakeClock, seconds: float, every: float = 5.0) -> list[Reading]:
    """Poll like the hub does, every ``every`` s for ``seconds`` s, on the fake clock."""

    async def go() -> list[Reading]:
        out = []
        end = clock.t + seconds
        while clock.t < end:
            out.append(await vehicle.poll())
            clock.t += every
        return out

    return asyncio.run(go())


def make(state: str = "online", charging: str = "Charging", **policy: Any) -> tuple[TeslaVehicle, FakeCar, FakeClock]:
    clock = FakeClock()
    fake = FakeCar(clock, state, charging)
    return TeslaVehicle(fake, home=HOME, policy=PollPolicy(**policy), clock=clock), fake, clock


def test_fake_car_is_a_vehicle_client():
    assert isinstance(FakeCar(FakeClock()), VehicleClient)


def test_asleep_car_is_never_asked_for_vehicle_data():
    vehicle, fake, clock = make("asleep")
    readings = run_polls(vehicle, clock, 3600)
    assert fake.data_calls == []
    assert len(fake.state_calls) == 60  # one vehicle-list check a minute
    assert all(b - a == 60 for a, b in zip(fake.state_calls, fake.state_calls[1:], strict=False))
    fresh = [r for r in readings if r.values]
    assert len(fresh) == 60 and all(r.values == {"ev_power": 0.0} for r in fresh)  # asleep: not charging
    assert vehicle.mode is Mode.WATCHING and vehicle.state == "asleep"


def test_offline_car_gives_nothing_since_it_may_charge_out_of_coverage():
    vehicle, fake, clock = make("offline")
    readings = run_polls(vehicle, clock, 600)
    assert fake.data_calls == [] and len(fake.state_calls) == 10
    assert all(r.values == {} for r in readings)


def test_charging_car_is_read_every_30_s():
    vehicle, fake, clock = make("online", "Charging")
    readings = run_polls(vehicle, clock, 600)
    assert len(fake.data_calls) == 20
    assert {b - a for a, b in zip(fake.data_calls, fake.data_calls[1:], strict=False)} == {30}
    fresh = [r for r in readings if r.values]
    assert len(fresh) == 20 and all(r.values["ev_power"] == 7000.0 for r in fresh)
    assert vehicle.mode is Mode.READING and vehicle.problems == {}


def test_idle_car_is_left_alone_after_the_idle_window_so_it_can_sleep():
    vehicle, fake, clock = make("online", "Complete")
    run_polls(vehicle, clock, 3000)
    # read at 0, 60, ..., 300 s; then 1200 s without vehicle_data; then a new idle window from 1500 s
    reads = [t - T0 for t in fake.data_calls]
    assert reads[:6] == [0, 60, 120, 180, 240, 300]
    assert not [t for t in reads if 300 < t < 1500]
    assert reads[6:12] == [1500, 1560, 1620, 1680, 1740, 1800]
    assert not [t for t in reads if 1800 < t < 3000]
    # the free vehicle-list check goes on meanwhile
    checks = [t - T0 for t in fake.state_calls if 300 < t - T0 < 1500]
    assert checks == [360 + 60 * i for i in range(19)]


def test_a_suspended_car_that_falls_asleep_is_read_as_soon_as_it_wakes():
    vehicle, fake, clock = make("online", "Stopped")
    run_polls(vehicle, clock, 400)  # reads, then suspended at 300 s
    assert vehicle.mode is Mode.SUSPENDED and len(fake.data_calls) == 6
    fake.car_state = "asleep"
    run_polls(vehicle, clock, 600)
    assert vehicle.mode is Mode.WATCHING and len(fake.data_calls) == 6
    fake.car_state, fake.charging = "online", "Charging"  # a scheduled charge woke it
    woke = clock.t
    readings = run_polls(vehicle, clock, 60)
    assert fake.data_calls[6] - woke <= 60  # at the next list check, long before the suspension would end
    assert any(r.values.get("ev_power") == 7000.0 for r in readings)
    assert vehicle.mode is Mode.READING


def test_a_driving_car_is_read_and_never_suspended():
    vehicle, fake, clock = make("online", "Disconnected")
    fake.shift = "D"
    run_polls(vehicle, clock, 1800)
    assert len(fake.data_calls) == 30 and vehicle.mode is Mode.READING


def test_nudge_ends_a_suspension_but_never_wakes_the_car():
    vehicle, fake, clock = make("online", "Complete")
    run_polls(vehicle, clock, 400)
    assert vehicle.mode is Mode.SUSPENDED
    n = len(fake.data_calls)
    vehicle.nudge()
    asyncio.run(vehicle.poll())
    assert len(fake.data_calls) == n + 1
    fake.car_state = "asleep"
    vehicle.nudge()
    asyncio.run(vehicle.poll())
    assert len(fake.data_calls) == n + 1 and vehicle.state == "asleep"


def test_token_bucket_caps_vehicle_data_whatever_the_intervals():
    vehicle, fake, clock = make("online", "Charging", charging_interval_s=1, data_per_minute=2, data_burst=2)
    run_polls(vehicle, clock, 121, every=1)
    assert [t - T0 for t in fake.data_calls] == [0, 1, 30, 60, 90, 120]
    clock.t = fake.data_calls[-1] + 1
    asyncio.run(vehicle.poll())
    assert "held back by the limit of 2 reads/min; next try in 29 s" in vehicle.problems["vehicle_data"]
    clock.t += 5
    assert asyncio.run(vehicle.poll()).values == {}  # nothing due: no call, and the problem stays on show
    assert "held back" in vehicle.problems["vehicle_data"]


def test_token_bucket_refills_at_its_rate():
    t = [0.0]
    bucket = TokenBucket(rate_per_s=0.5, burst=3, clock=lambda: t[0])
    assert [bucket.try_take() for _ in range(4)] == [True, True, True, False]
    assert bucket.wait_s() == pytest.approx(2.0)
    t[0] = 1.0
    assert not bucket.try_take()
    t[0] = 2.0
    assert bucket.try_take() and not bucket.try_take()
    t[0] = 100.0
    assert sum(bucket.try_take() for _ in range(10)) == 3  # never more than the burst
    with pytest.raises(ValueError):
        TokenBucket(0, 1, clock=lambda: 0.0)


@pytest.mark.parametrize(("retry_after", "wait"), [(120.0, 120), (None, 60)])
def test_http_429_backs_off_for_retry_after(retry_after, wait):
    vehicle, fake, clock = make("online", "Charging")
    fake.fail_data = RateLimitedError("Fleet API vehicle_data: rate limited (HTTP 429)", retry_after)
    with pytest.raises(DeviceError, match=rf"HTTP 429.*no call to the API for {wait} s"):
        asyncio.run(vehicle.poll())
    calls = len(fake.state_calls) + len(fake.data_calls)
    fake.fail_data = None
    for _ in range(wait // 5):
        clock.t += 5
        if clock.t - T0 < wait:
            with pytest.raises(DeviceError, match="backing off for another"):
                asyncio.run(vehicle.poll())
    assert len(fake.state_calls) + len(fake.data_calls) == calls  # not one call while backing off
    clock.t = T0 + wait
    assert asyncio.run(vehicle.poll()).values["ev_power"] == 7000.0


def test_429_on_the_vehicle_list_backs_off_too():
    vehicle, fake, _ = make("asleep")
    fake.fail_state = RateLimitedError("Fleet API vehicle list: rate limited (HTTP 429)", 30.0)
    with pytest.raises(DeviceError, match="for 30 s"):
        asyncio.run(vehicle.poll())
    assert vehicle.seconds_until_due() == 30


def test_408_from_vehicle_data_is_not_a_failure_but_stops_reading():
    vehicle, fake, _ = make("online", "Charging")
    fake.fail_data = VehicleUnavailableError("Fleet API vehicle_data: the car did not answer (HTTP 408)")
    reading = asyncio.run(vehicle.poll())
    assert reading.values == {} and "HTTP 408" in vehicle.problems["vehicle_data"]
    assert vehicle.mode is Mode.WATCHING and vehicle.seconds_until_due() == 60


def test_failures_are_device_errors():
    vehicle, fake, _ = make("online")
    fake.fail_state = OSError("connection reset")
    with pytest.raises(DeviceError, match="vehicle state: OSError: connection reset"):
        asyncio.run(vehicle.poll())
    fake.fail_state = TeslaApiError("Fleet API vehicle list: HTTP 500: boom")
    with pytest.raises(DeviceError, match="HTTP 500: boom"):
        asyncio.run(vehicle.poll())
    fake.fail_state = None
    fake.car_state = "hibernating"
    with pytest.raises(DeviceError, match="'hibernating' is not online, asleep or offline"):
        asyncio.run(vehicle.poll())


def test_a_reply_without_charge_state_fails_the_poll_by_name():
    vehicle, fake, _ = make("online")

    async def no_charge() -> dict[str, Any]:
        return {"response": {"state": "online"}}

    fake.vehicle_data = no_charge  # type: ignore[method-assign]
    with pytest.raises(DeviceError, match="vehicle_data: no charge_state"):
        asyncio.run(vehicle.poll())


def test_a_stale_cached_reply_is_not_recorded():
    vehicle, fake, _ = make("online", "Charging")
    fake.data_age_s = 3600
    reading = asyncio.run(vehicle.poll())
    assert reading.values == {} and "3600 s ago" in vehicle.problems["vehicle_data"]


def test_a_poll_with_nothing_due_is_empty_and_costs_nothing():
    vehicle, fake, clock = make("online", "Charging")
    assert asyncio.run(vehicle.poll()).values
    clock.t += 10
    assert asyncio.run(vehicle.poll()).values == {}
    assert len(fake.state_calls) == 1 and len(fake.data_calls) == 1
    assert vehicle.status["mode"] == "reading" and vehicle.status["next_call_in_s"] == 20


def test_recorded_replies_through_the_adapter():
    """The recorded charging car (Tessie) and the recorded idle car (Fleet API), read by the device."""
    for rel, expected in (("tessie/online.json", CHARGING_AT_HOME), ("tesla_fleet/vehicle_data.json", STOPPED_AT_HOME)):
        reply = load(rel)
        stamp = (reply.get("response") or reply)["charge_state"]["timestamp"]
        clock = FakeClock(stamp / 1000 + 2)

        class Recorded:
            async def state(self) -> str:
                return parse_vehicle_state(load("tessie/vehicles.json")).value

            async def vehicle_data(self, reply=reply) -> dict[str, Any]:
                return reply

        reading = asyncio.run(TeslaVehicle(Recorded(), home=HOME, clock=clock).poll())
        assert reading.values == pytest.approx(expected)


def test_policy_refuses_nonsense():
    with pytest.raises(ValueError, match="charging_interval_s"):
        PollPolicy(charging_interval_s=0)
    with pytest.raises(ValueError, match="data_burst"):
        PollPolicy(data_burst=0)


# -- the real clients, on a loopback server -------------------------------------------------------------------------

VIN = "LRW3F7EK4NC700000"
ACCESS, REFRESH, CLIENT_ID = "access-SECRET-1", "refresh-SECRET-1", "client-id-9"


class TeslaOnLoopback:
    """A tiny Fleet API / Tessie / OAuth server on 127.0.0.1 that answers with the recorded replies."""

    def __init__(self) -> None:
        self.valid_token = ACCESS
        self.requests: list[tuple[str, str, dict[str, str]]] = []
        self.rate_limited = False
        self.token_status = 200
        self.url = ""

    async def __aenter__(self) -> TeslaOnLoopback:
        from aiohttp import web

        app = web.Application()
        app.router.add_get("/api/1/vehicles", self.vehicles)
        app.router.add_get("/api/1/vehicles/{vin}/vehicle_data", self.vehicle_data)
        app.router.add_post("/oauth2/v3/token", self.token)
        app.router.add_get("/{vin}/status", self.tessie_status)
        app.router.add_get("/{vin}/state", self.tessie_state)
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        host, port = self.runner.addresses[0][:2]
        self.url = f"http://{host}:{port}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.runner.cleanup()

    def _auth(self, request) -> Any:
        from aiohttp import web

        self.requests.append((request.method, request.path_qs, dict(request.headers)))
        if request.headers.get("Authorization") != f"Bearer {self.valid_token}":
            return web.json_response({"error": "token expired (401)"}, status=401)
        if self.rate_limited:
            return web.json_response({"error": "too many requests"}, status=429, headers={"Retry-After": "42"})
        return None

    async def vehicles(self, request):
        from aiohttp import web

        return self._auth(request) or web.json_response(load("teslemetry/products.json"))

    async def vehicle_data(self, request):
        from aiohttp import web

        refused = self._auth(request)
        if refused:
            return refused
        if request.match_info["vin"] != VIN:
            return web.json_response({"response": None, "error": "not_found"}, status=404)
        if "fail" in request.query:
            return web.json_response({"error": f"internal error for {self.valid_token}"}, status=500)
        return web.json_response(load("teslemetry/vehicle_data.json"))

    async def token(self, request):
        from aiohttp import web

        form = await request.post()
        self.requests.append((request.method, request.path_qs, dict(form)))
        if self.token_status != 200 or form.get("refresh_token") != REFRESH or form.get("client_id") != CLIENT_ID:
            echo = f"bad {form.get('refresh_token')}"  # a server that echoes the secret back
            return web.json_response({"error": "invalid_grant", "error_description": echo},
                                     status=401 if self.token_status == 200 else self.token_status)
        self.valid_token = "access-SECRET-2"
        return web.json_response({"access_token": self.valid_token, "refresh_token": "refresh-SECRET-2",
                                  "expires_in": 28800, "token_type": "Bearer"})

    async def tessie_status(self, request):
        from aiohttp import web

        return self._auth(request) or web.json_response(load("tessie/asleep.json"))

    async def tessie_state(self, request):
        from aiohttp import web

        assert request.query["use_cache"] == "true"
        return self._auth(request) or web.json_response(load("tessie/online.json"))


def fleet(server: TeslaOnLoopback, tokens: FleetTokens, **kw: Any) -> FleetApiClient:
    return FleetApiClient(VIN, tokens, client_id=CLIENT_ID, server=server.url,
                          token_url=f"{server.url}/oauth2/v3/token", timeout_s=5, **kw)


def test_fleet_client_reads_state_and_vehicle_data_through_the_library():
    async def go() -> None:
        async with TeslaOnLoopback() as server:
            client = fleet(server, FleetTokens(ACCESS, REFRESH, expires_at=T0 + 3600), clock=lambda: T0)
            try:
                assert await client.state() == "asleep"
                reply = await client.vehicle_data()
            finally:
                await client.close()
        assert parse_vehicle_data(reply, HOME).values == pytest.approx(STOPPED_AT_HOME)
        _, path, headers = server.requests[-1]
        assert path.startswith(f"/api/1/vehicles/{VIN}/vehicle_data?endpoints=")
        assert "location_data" in path and "charge_state" in path
        assert headers["Authorization"] == f"Bearer {ACCESS}"
        assert not any("wake" in p for _, p, _ in server.requests)
        assert client.renewals == 0

    asyncio.run(go())


def test_fleet_client_renews_an_expiring_token_and_hands_it_on_to_be_saved():
    saved: list[FleetTokens] = []

    async def go() -> None:
        async with TeslaOnLoopback() as server:
            server.valid_token = "access-SECRET-2"  # the old one is refused
            client = fleet(server, FleetTokens(ACCESS, REFRESH, expires_at=T0 + 60), clock=lambda: T0,
                           on_tokens=saved.append)
            try:
                assert await client.state() == "asleep"
                assert await client.state() == "asleep"
            finally:
                await client.close()
        assert [p for _, p, _ in server.requests].count("/oauth2/v3/token") == 1
        form = {"grant_type": "refresh_token", "client_id": CLIENT_ID, "refresh_token": REFRESH}
        assert server.requests[0][2] == form

    asyncio.run(go())
    assert len(saved) == 1
    assert saved[0].access_token == "access-SECRET-2" and saved[0].refresh_token == "refresh-SECRET-2"
    assert saved[0].expires_at == T0 + 28800


def test_fleet_client_renews_after_a_401_and_retries_once():
    saved: list[FleetTokens] = []

    async def go() -> None:
        async with TeslaOnLoopback() as server:
            server.valid_token = "access-SECRET-2"

            async def save(tokens: FleetTokens) -> None:  # an async callback works too
                saved.append(tokens)

            client = fleet(server, FleetTokens(ACCESS, REFRESH), clock=lambda: T0, on_tokens=save)  # expiry unknown
            try:
                assert (await client.vehicle_data())["response"]["vin"] == VIN
            finally:
                await client.close()

    asyncio.run(go())
    assert [t.refresh_token for t in saved] == ["refresh-SECRET-2"]


def test_tokens_never_show_in_errors_or_reprs():
    errors: list[str] = []

    async def go() -> None:
        async with TeslaOnLoopback() as server:
            # a refused refresh: the server even echoes the refresh token back
            server.valid_token, server.token_status = "something-else", 400
            client = fleet(server, FleetTokens(ACCESS, REFRESH), clock=lambda: T0)
            try:
                with pytest.raises(AuthError) as err:
                    await client.state()
                errors.append(str(err.value))
                errors.append(repr(client))
                errors.append(repr(client.tokens))
                # a 500 whose body holds the access token
                server.valid_token = ACCESS
                server.token_status = 500

                async def failing() -> Any:
                    return await client._vehicle._request("GET", f"api/1/vehicles/{VIN}/vehicle_data",
                                                          {"fail": 1})

                with pytest.raises(TeslaApiError) as err500:
                    await client._call("vehicle_data", failing)
                errors.append(str(err500.value))
                # and through the device
                vehicle = TeslaVehicle(client, home=HOME, clock=FakeClock())
                server.valid_token = "nope"
                with pytest.raises(DeviceError) as dev:
                    await vehicle.poll()
                errors.append(str(dev.value))
            finally:
                await client.close()

    asyncio.run(go())
    assert "renewing the token failed: HTTP 400 (invalid_grant); sign in again" in errors[0]
    assert "HTTP 500" in errors[3] and "internal error for ***" in errors[3]
    assert "renewing the token failed: HTTP 500" in errors[4]
    for text in errors:
        for secret in (ACCESS, REFRESH, "access-SECRET-2", "refresh-SECRET-2", CLIENT_ID):
            assert secret not in text, text
        assert "SECRET" not in text, text


def test_fleet_client_turns_429_into_a_back_off_of_retry_after():
    async def go() -> None:
        async with TeslaOnLoopback() as server:
            server.rate_limited = True
            client = fleet(server, FleetTokens(ACCESS, REFRESH, expires_at=T0 + 3600), clock=lambda: T0)
            try:
                with pytest.raises(RateLimitedError) as err:
                    await client.vehicle_data()
                assert err.value.retry_after_s == 42
                clock = FakeClock()
                vehicle = TeslaVehicle(client, home=HOME, clock=clock)
                with pytest.raises(DeviceError, match=r"HTTP 429.*retry after 42 s.*no call to the API for 42 s"):
                    await vehicle.poll()
                n = len(server.requests)
                clock.t += 41
                with pytest.raises(DeviceError, match="backing off for another 1 s"):
                    await vehicle.poll()
                assert len(server.requests) == n
            finally:
                await client.close()

    asyncio.run(go())


def test_teslemetry_and_tessie_clients_on_loopback():
    async def go() -> None:
        async with TeslaOnLoopback() as server:
            teslemetry = TeslemetryClient(VIN, ACCESS, server=server.url, timeout_s=5)
            tessie = TessieClient(VIN, ACCESS, server=server.url, timeout_s=5)
            try:
                assert await teslemetry.state() == "asleep"
                assert parse_vehicle_data(await teslemetry.vehicle_data(), HOME).values["ev_soc"] == 77.0
                assert await tessie.state() == "asleep"
                data = parse_vehicle_data(await tessie.vehicle_data(), HOME)
                assert data.values == pytest.approx(CHARGING_AT_HOME)
            finally:
                await teslemetry.close()
                await tessie.close()
        paths = [p for _, p, _ in server.requests]
        assert f"/{VIN}/status" in paths and f"/{VIN}/state?use_cache=true" in paths

    asyncio.run(go())


def test_unreachable_server_is_a_tesla_api_error():
    async def go() -> None:
        async with TeslaOnLoopback() as server:
            url = server.url
        client = TeslemetryClient(VIN, ACCESS, server=url, timeout_s=5)  # the server is gone now
        try:
            with pytest.raises(TeslaApiError, match="Teslemetry vehicle list: Client"):
                await client.state()
        finally:
            await client.close()

    asyncio.run(go())


def test_token_helpers():
    claims = base64.urlsafe_b64encode(json.dumps({"exp": 1_750_000_000}).encode()).decode().rstrip("=")
    jwt = f"eyJhbGciOiJSUzI1NiJ9.{claims}.c2lnbmF0dXJl"
    assert jwt_expiry(jwt) == 1_750_000_000
    assert FleetTokens(jwt).expires_at == 1_750_000_000
    assert jwt_expiry("opaque-token") is None and jwt_expiry("a.b.c") is None
    assert retry_after_s("42") == 42 and retry_after_s(None, "7") == 7 and retry_after_s(None) is None
    assert retry_after_s("Sun, 01 Jun 2025 12:01:00 GMT", now=T0) == 60
    # no reply can stop the car's polling for good: an infinite, absurd or far-future wait is an hour at most
    for absurd in ("inf", "1e400", "31536000000", "Fri, 31 Dec 9999 23:59:59 GMT"):
        assert retry_after_s(absurd, now=T0) == 3600.0, absurd
    assert retry_after_s("nan") == 0.0

    class Secret:  # homegrid.credentials.Secret's shape
        def reveal(self) -> str:
            return ACCESS

    assert FleetTokens(Secret()).access_token == ACCESS


def test_fleet_client_refuses_an_unknown_region():
    with pytest.raises(ValueError, match="region 'mars'"):
        FleetApiClient(VIN, FleetTokens(ACCESS), region="mars")
    assert FleetApiClient(VIN, FleetTokens(ACCESS), region="eu")._endpoints()[-1] == "location_data"
    assert "location_data" not in FleetApiClient(VIN, FleetTokens(ACCESS), location=False)._endpoints()


def test_no_wake_up_anywhere():
    """The adapter and the clients never wake the car: no wake call in their source at all."""
    folder = Path(__file__).resolve().parents[1] / "homegrid" / "devices" / "tesla"
    for path in folder.glob("*.py"):
        code = path.read_text()
        assert ".wake_up(" not in code and ".wake(" not in code, path


def test_hub_records_the_car_end_to_end(tmp_path):
    from homegrid.config import Config
    from homegrid.hub.service import Hub

    clock = FakeClock(datetime.now(UTC).timestamp())
    fake = FakeCar(clock, "online", "Charging")
    vehicle = TeslaVehicle(fake, home=HOME, clock=clock)
    hub = Hub(Config(), tmp_path, devices=[(vehicle, 5.0)], clock=clock)
    assert asyncio.run(hub.poll_once())
    hub.flush()
    stored = hub.store.latest()
    assert stored.columns["ev_power"][0] == 7000.0
    assert stored.columns["ev_charging_state"][0] == EvChargingState.CHARGING
    assert stored.columns["ev_at_home"][0] == 1.0
    assert stored.columns["ev_range"][0] == pytest.approx(263.68 * MI)
