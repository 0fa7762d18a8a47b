"""Fault injection: a simulated gateway that times out, answers 500, garbage, half a JSON, a new
firmware's shape, and disappears for an hour, read through real pypowerwall by a running hub.

The hub and the gateway share one manual clock, so an hour passes in a second of test time and
the gateway's true counters are known at every reading.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from itertools import pairwise

import numpy as np
import pytest

from homegrid.config import Config
from homegrid.devices.powerwall import PowerwallGateway
from homegrid.devices.powerwall.client import connect_gateway
from homegrid.devices.powerwall.simulator import ManualClock, Simulator
from homegrid.glossary import ENERGY_CATEGORIES
from homegrid.hub.service import Hub
from homegrid.readings import to_ms

STEP_S = 5.0
FAULT_POLLS = 3


@pytest.fixture
def rig(tmp_path):
    clock = ManualClock()

    def now() -> datetime:
        return datetime.fromtimestamp(clock(), UTC)

    with Simulator() as sim:
        gw = sim.add_gateway(password="customer-pass", clock=clock, hold_s=1.0)
        client = connect_gateway(gw.address, "customer-pass", timeout_s=0.3, auth_dir=tmp_path / "auth")
        device = PowerwallGateway(client, clock=now)
        hub = Hub(Config(), tmp_path / "data", devices=[(device, STEP_S)], clock=now)
        yield hub, gw, clock
        client.close()
        hub.store.close()


def _poll(hub: Hub, clock: ManualClock, truth: dict[int, dict[str, float]], gw) -> bool:
    """Wait as the hub's poll loop would (its back-off included), poll once, flush."""
    clock.advance(hub.health.backoff_s or STEP_S)
    ok = asyncio.run(hub.poll_once())
    if ok:
        truth[to_ms(datetime.fromtimestamp(clock(), UTC))] = dict(gw.state().counters)
    hub.flush()
    return ok


def test_hub_survives_every_fault_records_the_gaps_and_keeps_the_energy(rig):
    hub, gw, clock = rig
    truth: dict[int, dict[str, float]] = {}
    results: list[tuple[str, bool]] = []

    at: list[tuple[str, float]] = []  # when each poll was made [s]

    def polls(label: str, n: int) -> None:
        for _ in range(n):
            results.append((label, _poll(hub, clock, truth, gw)))
            at.append((label, clock()))

    polls("normal", 12)
    for fault in ("timeout", "http500", "garbage", "truncated", "shape_change"):
        gw.set_fault(fault, "/api/meters/aggregates")
        polls(fault, FAULT_POLLS)
        gw.clear_fault(fault, "/api/meters/aggregates")
        polls(f"after {fault}", 2)

    gw.set_fault("http500", "/api/system_status/grid_faults")  # an optional endpoint failing: a partial poll
    polls("grid_faults 500", 2)
    partial = dict(hub.health.extra["partial"])
    gw.clear_fault("http500", "/api/system_status/grid_faults")

    gone_at = clock()
    gw.gone()
    gw.set_scenario("night")
    while clock() - gone_at < 3600:
        polls("gone", 1)
    gw.set_scenario("export")
    back_at = clock()
    gw.back()
    polls("back", 12)

    # the hub never stopped: every fault failed its polls and every poll after it worked
    for label, ok in results:
        expected_ok = label in ("normal", "grid_faults 500", "back") or label.startswith("after ")
        assert ok is expected_ok, (label, ok)
    failed = sum(not ok for _, ok in results)
    assert hub.health.errors == failed
    assert "/api/system_status/grid_faults" in partial
    assert hub.health.extra["partial"] == {}

    # each run of failures is a recorded gap; the long one spans the hour
    gaps = hub.health.gaps
    assert len(gaps) == 6
    longest = max(gaps, key=lambda g: datetime.fromisoformat(g["to"]) - datetime.fromisoformat(g["from"]))
    span = datetime.fromisoformat(longest["to"]) - datetime.fromisoformat(longest["from"])
    assert span.total_seconds() >= 3600
    # back-off: far fewer than 720 polls were spent on the gone gateway, never more than a minute apart, and
    # the gateway was read again within a minute of its return
    gone_polls = sum(label == "gone" for label, _ in results)
    assert 60 <= gone_polls < 70
    gone = [t for label, t in at if label == "gone"]
    assert max(b - a for a, b in pairwise(gone)) == 60.0
    first_back = next(t for label, t in at if label == "back")
    assert 0 < first_back - back_at <= 60.0

    # what was stored is the gateway's truth, and the energy totals match its counters across the gaps
    frame = hub.store.read_readings(0, 2**62)
    times = frame.time_ms.tolist()
    assert times == sorted(truth)
    first, last = truth[times[0]], truth[times[-1]]
    for name in first:
        stored = frame.column(name)
        assert stored[0] == pytest.approx(first[name]) and stored[-1] == pytest.approx(last[name]), name
    totals = hub.store.sum_rollup("minute", 0, 2**62)
    for cat in ENERGY_CATEGORIES:
        if cat.counter is None:
            continue
        assert totals[cat.name] == pytest.approx(last[cat.counter] - first[cat.counter], rel=1e-9, abs=1e-6), cat.name
    # the hour without readings holds energy (from the counters) but no invented power samples
    a = int(gone_at * 1000) + 60_000
    hour = hub.store.sum_rollup("minute", a - a % 60_000, a - a % 60_000 + 3_000_000)
    assert hour["covered_s"] == 0
    assert hour["home"] > 0
    assert not np.isnan(frame.column("grid_power")).all()
    assert hub.status()["quarantined"] == 0
