"""Readings in glossary names: the single sample, the column-wise frame, and grid-event evidence."""

from homegrid.readings.evidence import EVIDENCE_KINDS, GridEvidence
from homegrid.readings.model import (
    InvalidReading,
    Limits,
    Reading,
    ReadingFrame,
    from_ms,
    to_ms,
    validate_value,
)

__all__ = [
    "EVIDENCE_KINDS", "GridEvidence", "InvalidReading", "Limits", "Reading", "ReadingFrame", "from_ms",
    "to_ms", "validate_value",
]
