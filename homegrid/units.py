"""The site's units for display: metric (km) or imperial (miles), set by ``[site] units`` or by its country.

The country comes from the site's IANA zone through the time-zone database's ``zone.tab`` (``America/New_York``
is the United States). Energy and power stay kWh and kW everywhere, as on every vendor's app; what changes is
the car's range (and any other distance).
"""

from __future__ import annotations

import functools
from importlib import resources
from pathlib import Path

__all__ = ["MILES_COUNTRIES", "UNIT_SYSTEMS", "units_for_zone", "zone_country"]

UNIT_SYSTEMS = ("metric", "imperial")
#: where road distances and a car's range are given in miles: the United States and its territories, the United
#: Kingdom (its cars show miles), Liberia, Myanmar
MILES_COUNTRIES = frozenset({"US", "PR", "GU", "VI", "AS", "MP", "UM", "GB", "LR", "MM"})
_SYSTEM_ZONE_TAB = Path("/usr/share/zoneinfo/zone.tab")


@functools.cache
def _zone_countries() -> dict[str, str]:
    try:
        text = resources.files("tzdata").joinpath("zoneinfo", "zone.tab").read_text(encoding="utf-8")
    except (ModuleNotFoundError, OSError):
        text = _SYSTEM_ZONE_TAB.read_text(encoding="utf-8") if _SYSTEM_ZONE_TAB.is_file() else ""
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            cells = line.split("\t")
            if len(cells) >= 3:
                out[cells[2]] = cells[0]
    return out


def zone_country(zone: str) -> str | None:
    """The ISO 3166 country code of an IANA zone (``"US"`` for ``America/New_York``), None when not known."""
    if zone.startswith("US/"):  # the old link names
        return "US"
    return _zone_countries().get(zone)


def units_for_zone(zone: str) -> str:
    """``imperial`` for a zone in a country that gives distances in miles, else ``metric``."""
    return "imperial" if zone_country(zone) in MILES_COUNTRIES else "metric"
