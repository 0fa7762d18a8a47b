"""Durable storage of raw readings and rollups."""

from homegrid.store.base import STEPS, Quarantined, Store
from homegrid.store.schema import BucketTable
from homegrid.store.sqlite import SQLiteStore

__all__ = ["STEPS", "BucketTable", "Quarantined", "SQLiteStore", "Store"]
