"""Tesla car adapter (Fleet API, Teslemetry, Tessie); vendor field names live in ``replies``."""

from homegrid.devices.tesla.adapter import Mode, PollPolicy, TeslaVehicle, TokenBucket
from homegrid.devices.tesla.client import (
    AuthError,
    FleetApiClient,
    FleetTokens,
    RateLimitedError,
    TeslaApiError,
    TeslemetryClient,
    TessieClient,
    VehicleClient,
    VehicleUnavailableError,
)
from homegrid.devices.tesla.replies import (
    Home,
    ReplyError,
    VehicleData,
    VehicleState,
    distance_m,
    parse_vehicle_data,
    parse_vehicle_state,
)

__all__ = [
    "AuthError",
    "FleetApiClient",
    "FleetTokens",
    "Home",
    "Mode",
    "PollPolicy",
    "RateLimitedError",
    "ReplyError",
    "TeslaApiError",
    "TeslaVehicle",
    "TeslemetryClient",
    "TessieClient",
    "TokenBucket",
    "VehicleClient",
    "VehicleData",
    "VehicleState",
    "VehicleUnavailableError",
    "distance_m",
    "parse_vehicle_data",
    "parse_vehicle_state",
]
