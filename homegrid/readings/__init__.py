"""Readings in glossary names: the single sample and the column-wise frame."""

from homegrid.readings.model import InvalidReading, Reading, ReadingFrame, from_ms, to_ms, validate_value

__all__ = ["InvalidReading", "Reading", "ReadingFrame", "from_ms", "to_ms", "validate_value"]
