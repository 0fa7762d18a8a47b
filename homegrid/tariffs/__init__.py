"""Tariffs: what energy costs, as pure functions over arrays (no store, no I/O).

- :mod:`homegrid.tariffs.schedule`: which time-of-use period of a rate's month-by-hour schedule each instant
  falls in, in the site's local time;
- :mod:`homegrid.tariffs.model`: a tariff as data (energy periods and tiers, fixed, minimum and demand
  charges, export terms, dynamic prices, taxes).
"""

from homegrid.tariffs.model import (
    DemandCharges,
    DemandTier,
    DynamicPrices,
    EnergyRates,
    ExportRule,
    ExportTerms,
    Tariff,
    TariffError,
    Tier,
    TierScope,
    TierUnit,
)
from homegrid.tariffs.schedule import MonthHourSchedule, tou_periods

__all__ = [
    "DemandCharges",
    "DemandTier",
    "DynamicPrices",
    "EnergyRates",
    "ExportRule",
    "ExportTerms",
    "MonthHourSchedule",
    "Tariff",
    "TariffError",
    "Tier",
    "TierScope",
    "TierUnit",
    "tou_periods",
]
