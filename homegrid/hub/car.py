"""The configured car: the right Tesla client with its tokens, and the adapter's poll policy."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime

from homegrid.config import Config
from homegrid.credentials import Credentials, save_credentials
from homegrid.devices import Device

__all__ = ["CAR_POLL_PACE_S", "build_vehicle"]

log = logging.getLogger(__name__)

#: The hub asks the car adapter this often; the adapter itself decides when a request is due
#: (a poll with nothing due makes no API call), so this only bounds how late a due read starts. [s]
CAR_POLL_PACE_S = 5.0


def build_vehicle(
    config: Config, credentials: Credentials, clock: Callable[[], datetime] | None = None
) -> tuple[Device, float]:
    """The car of ``[tesla]`` and the pace the hub polls its adapter at [s].

    Tokens come from the credentials file's ``[tesla]`` table; a renewed Fleet API token
    pair is written back there at once (Tesla's refresh tokens are single-use).
    """
    from homegrid.devices.tesla import (
        FleetApiClient,
        FleetTokens,
        Home,
        PollPolicy,
        TeslaVehicle,
        TeslemetryClient,
        TessieClient,
        VehicleClient,
    )

    tesla = config.tesla
    assert tesla is not None
    access = credentials.require("tesla", "access_token")
    client: VehicleClient
    if tesla.api == "fleet":
        refresh = credentials.get("tesla", "refresh_token")

        def keep(tokens: FleetTokens) -> None:
            pair = {"access_token": tokens.access_token}
            if tokens.refresh_token:
                pair["refresh_token"] = tokens.refresh_token
            save_credentials(credentials, {"tesla": pair})
            log.info("renewed Tesla tokens saved to %s", credentials.path)

        client = FleetApiClient(
            tesla.vin, FleetTokens(access, refresh), client_id=tesla.client_id or None, region=tesla.region,
            on_tokens=keep if credentials.path is not None else None, location=tesla.location,
            timeout_s=tesla.timeout_s, server=tesla.server or None,
        )
    else:
        service = TeslemetryClient if tesla.api == "teslemetry" else TessieClient
        client = service(tesla.vin, access, timeout_s=tesla.timeout_s, server=tesla.server or None)
    home = Home(config.site.latitude, config.site.longitude, tesla.home_radius_m)
    policy = PollPolicy(online_interval_s=tesla.poll_interval_s)
    vehicle = TeslaVehicle(client, home=home, policy=policy, clock=clock)
    return vehicle, CAR_POLL_PACE_S
