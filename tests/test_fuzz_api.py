"""Fuzzed query parameters: every answer is 200, 404 or 422 with strict JSON, never a 500.

``HOMEGRID_FUZZ_EXAMPLES`` sets the number of cases (``bench/bench_fuzz.py`` runs 100,000).
"""

from __future__ import annotations

import json
import os
from datetime import date

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from homegrid.api.app import create_app
from homegrid.config import Config
from homegrid.hub.queries import SERIES_FIELDS, Queries
from homegrid.hub.recorder import Recorder
from homegrid.hub.tariff import site_tariff
from homegrid.hub.tariff_file import SiteTariff
from homegrid.store import SQLiteStore
from homegrid.timezones import local_day_bounds

from .conftest import NEW_YORK, steady_frame

EXAMPLES = int(os.environ.get("HOMEGRID_FUZZ_EXAMPLES", "150"))


def _strict(value: str) -> object:
    raise ValueError(f"{value} is not JSON")


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    store = SQLiteStore(tmp_path_factory.mktemp("fuzz") / "homegrid.db")
    a, _ = local_day_bounds(date(2025, 3, 8), NEW_YORK)  # a DST change inside the data
    Recorder(store, NEW_YORK).ingest_bulk([steady_frame(a, 3 * 1440, solar_power=800, home_power=1500,
                                                        grid_power=700, battery_soc=50, grid_status=1)])
    app = create_app(Queries(store, NEW_YORK), health=lambda: {},
                     outages=lambda a, b: {"timezone": NEW_YORK.key, "events": [], "months": []},
                     tariff=SiteTariff.fixed(site_tariff(Config())))  # the virtual home's RE-TOU rate
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c
    store.close()


dates = st.dates(min_value=date(1, 1, 1), max_value=date(9999, 12, 31)).map(date.isoformat)
instants = st.datetimes().map(lambda t: t.isoformat()) | st.builds(
    lambda d, h, off: f"{d}T{h:02d}:00:00{off}", dates, st.integers(0, 23),
    st.sampled_from(["Z", "+00:00", "-12:00", "+14:00", "+05:30", ""]))
junk = st.text(max_size=40)
bounds = dates | instants | junk
field_lists = st.lists(st.sampled_from([*SERIES_FIELDS, "", " ", "x"]), max_size=5).map(",".join) | junk
numbers = st.integers(-10**25, 10**25).map(str) | st.sampled_from(["1e3", "nan", "inf", "-0", "0x10", ""]) | junk

ENDPOINTS = {
    "/api/v1/energy": {"from": bounds, "to": bounds, "step": st.sampled_from(["minute", "hour", "day", "week", ""]),
                       "fields": field_lists},
    "/api/v1/report": {"from": bounds, "to": bounds},
    "/api/v1/outages": {"from": bounds, "to": bounds},
    "/api/v1/export.csv": {"from": bounds, "to": bounds},
    "/api/v1/quarantine": {"limit": numbers},
    "/api/v1/bill": {"from": bounds, "to": bounds, "stored_only": st.sampled_from(["true", "false", "1", "x"])},
    "/api/v1/prices": {"day": dates | junk},
    "/api/v1/money": {"months": numbers},
    # a stream waits for its events: only counts it can reach (<= 2) or that are refused, never a wait for good
    "/api/v1/stream": {"max_events": st.integers(-10**25, 2).map(str) | st.integers(10**9 + 1, 10**30).map(str)
                       | st.text(alphabet=st.characters(exclude_categories=["Nd", "No", "Cs"]), max_size=20)},
}

OPTIONAL = ("step", "fields")  # the parameters a request may leave out


@st.composite
def requests(draw: st.DrawFn) -> tuple[str, dict[str, str]]:
    endpoint = draw(st.sampled_from(sorted(ENDPOINTS)))
    params = {k: draw(v) for k, v in ENDPOINTS[endpoint].items() if k not in OPTIONAL or draw(st.booleans())}
    return endpoint, params


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(requests())
def test_fuzzed_query_parameters_never_fail(client, request_):
    endpoint, params = request_
    if endpoint == "/api/v1/stream":
        with client.stream("GET", endpoint, params=params) as r:
            status = r.status_code
            body = r.read().decode() if status != 200 else ""
    else:
        r = client.get(endpoint, params=params)
        status, body = r.status_code, r.text
    assert status in (200, 404, 422), (endpoint, params, status, body[:300])
    if body and not endpoint.endswith(".csv"):
        json.loads(body, parse_constant=_strict)
