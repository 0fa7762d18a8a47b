"""Coarser bins from finer rollup rows: local days summed into local months (or any grouping of rows)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from homegrid.readings.rollup import BucketTable, merge_runs

__all__ = ["group_rows"]


def group_rows(table: BucketTable, keys: Sequence[str]) -> tuple[BucketTable, list[str]]:
    """Merge consecutive rollup rows that share a key into one row per key.

    Energies [Wh], durations [s] and the SoC integral [%*s] add up (rows without a value are left out, as
    SQL's ``SUM`` leaves out NULL); ``soc_min`` takes the least and
    ``soc_max`` the greatest of the rows (NaN where no row has one). A merged row starts where its first
    row does.

    Parameters
    ----------
    table : BucketTable
        Rollup rows in time order (e.g. local days). [Wh, s, %]
    keys : sequence of str
        One key per row (e.g. the local month, ``"2025-03"``, of each day); rows of one key are adjacent.

    Returns
    -------
    tuple of BucketTable and list of str
        The merged rows and their keys, in order.
    """
    if len(keys) != len(table):
        raise ValueError(f"{len(keys)} keys for {len(table)} rows")
    if not len(table):
        return table, []
    key_arr = np.asarray(keys)
    first = np.flatnonzero(np.r_[True, key_arr[1:] != key_arr[:-1]])
    if len(set(key_arr[first].tolist())) != len(first):
        raise ValueError("rows of one key must be adjacent")
    return merge_runs(table, first), key_arr[first].tolist()
