"""Rollup rows: the columns a bucket of readings adds up to (energies, flows, SoC statistics), named from the
glossary, and the table that holds them (made by ``homegrid.energy``, kept by ``homegrid.store``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from homegrid.glossary import ALL_NAMES, ENERGY_CATEGORIES, EV_SOURCES, FLOWS

__all__ = [
    "ENERGY_KEYS",
    "EV_SOURCE_KEYS",
    "MAX_COLUMNS",
    "MIN_COLUMNS",
    "RAW_COLUMNS",
    "ROLLUP_COLUMNS",
    "SUM_COLUMNS",
    "BucketTable",
    "merge_runs",
]

RAW_COLUMNS: tuple[str, ...] = ALL_NAMES
ENERGY_KEYS: tuple[str, ...] = (*(c.name for c in ENERGY_CATEGORIES), "unaccounted")
EV_SOURCE_KEYS: tuple[str, ...] = tuple(f"ev_from_{s}" for s in EV_SOURCES)
#: Rollup columns that add up from finer buckets to coarser ones: energies [Wh],
#: durations [s], and SoC integrated over time (``soc_sum`` [%*s] over ``soc_s`` [s]).
SUM_COLUMNS: tuple[str, ...] = (
    *ENERGY_KEYS,
    *FLOWS,
    *EV_SOURCE_KEYS,
    "covered_s",
    "islanded_s",
    "soc_s",
    "soc_sum",
)
MIN_COLUMNS: tuple[str, ...] = ("soc_min",)
MAX_COLUMNS: tuple[str, ...] = ("soc_max",)
ROLLUP_COLUMNS: tuple[str, ...] = (*SUM_COLUMNS, *MIN_COLUMNS, *MAX_COLUMNS)


@dataclass
class BucketTable:
    """Rollup rows: bucket start times [ms UTC] and one array per column."""

    start_ms: np.ndarray
    columns: dict[str, np.ndarray] = field(default_factory=dict)
    #: counter resets and quarantined jumps met while accounting: (counter name, CounterEvent); Any here because
    #: CounterEvent is energy's (homegrid.energy.counters), a layer above readings
    counter_events: list[tuple[str, Any]] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.start_ms)


def merge_runs(table: BucketTable, first: np.ndarray) -> BucketTable:
    """Merge runs of consecutive rollup rows into one row each, a run starting at each index of ``first``.

    Energies [Wh], durations [s] and the SoC integral [%*s] add up (rows without a value are left out, as SQL's
    ``SUM`` leaves out NULL; a run with none has none); ``soc_min`` takes the least and ``soc_max`` the greatest
    of the run (NaN where no row has one). A merged row starts where its first row does.
    """
    cols: dict[str, np.ndarray] = {}
    for name, col in table.columns.items():
        values = np.asarray(col, dtype=np.float64)
        if name in MIN_COLUMNS or name in MAX_COLUMNS:
            pick = np.fmin if name in MIN_COLUMNS else np.fmax
            cols[name] = pick.reduceat(values, first)
        else:
            known = ~np.isnan(values)
            total = np.add.reduceat(np.where(known, values, 0.0), first)
            cols[name] = np.where(np.add.reduceat(known, first) > 0, total, np.nan)
    return BucketTable(np.asarray(table.start_ms)[first].copy(), cols)
