"""Strict JSON: what homegrid prints or serves never holds ``NaN`` or ``Infinity`` (not JSON; parsers refuse it).

A number that is not finite means "no value" and becomes ``null``; :func:`dumps` then
checks with ``allow_nan=False``, so anything missed fails here rather than in a reader.
"""

from __future__ import annotations

import json
import math
from typing import Any

__all__ = ["dumps", "finite", "loads"]


def finite(value: Any) -> Any:
    """``value`` with every float that is NaN or infinite replaced by None, in dicts, lists and tuples at any depth.

    Parameters
    ----------
    value : object
        A JSON-ready value (dicts, lists, tuples, str, int, float, bool, None).

    Returns
    -------
    object
        The same structure, its dicts, lists and tuples copied (tuples become lists, as JSON has them).
    """
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite(v) for v in value]
    if hasattr(value, "dtype") and hasattr(value, "item"):  # a numpy scalar
        return finite(value.item())
    return value


def dumps(value: Any, **kwargs: Any) -> str:
    """``json.dumps`` of :func:`finite` of ``value`` with ``allow_nan=False``; keyword arguments as for it."""
    try:  # nearly always: no copy of a reply of thousands of rows just to find nothing to replace
        return json.dumps(value, allow_nan=False, **kwargs)
    except ValueError:
        return json.dumps(finite(value), allow_nan=False, **kwargs)


def loads(text: str | bytes, source: str, error: type[Exception] = ValueError) -> Any:
    """A reply's or a file's JSON; ``error`` naming ``source``, the parser's complaint and how the text begins
    when it is not JSON (an HTML error page, a cut reply)."""
    try:
        return json.loads(text)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        head = text[:60] if isinstance(text, str) else text[:60].decode("utf-8", "replace")
        raise error(f"{source}: not JSON ({exc.__class__.__name__}: {exc}); it begins {head!r}") from None
