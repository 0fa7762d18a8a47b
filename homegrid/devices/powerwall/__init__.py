"""Tesla Powerwall gateway adapter (local API); vendor field names live in ``replies``."""

from homegrid.devices.powerwall.adapter import GatewayClient, PowerwallGateway
from homegrid.devices.powerwall.client import PowerwallClient, connect_gateway
from homegrid.devices.powerwall.replies import ReplyError, app_soc

__all__ = ["GatewayClient", "PowerwallClient", "PowerwallGateway", "ReplyError", "app_soc", "connect_gateway"]
