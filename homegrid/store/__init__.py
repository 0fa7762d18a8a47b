"""Durable storage of raw readings, rollups, grid-event evidence and outage events."""

from homegrid.readings.rollup import BucketTable
from homegrid.store.base import STEPS, GridEvidence, MinuteAccountant, Quarantined, Store
from homegrid.store.sqlite import SQLiteStore

__all__ = ["STEPS", "BucketTable", "GridEvidence", "MinuteAccountant", "Quarantined", "SQLiteStore", "Store"]
