"""Progress bars for long commands (tqdm), on standard error and only when it is a terminal."""

from __future__ import annotations

import sys
from typing import Any

from tqdm import tqdm

__all__ = ["progress"]


def progress(total: float | None = None, desc: str = "", unit: str = "it", **options: Any) -> tqdm[Any]:
    """A tqdm bar on standard error, off (a no-op) when standard error is not a terminal (a log, a pipe, CI).

    Parameters
    ----------
    total : float or None
        The amount the bar fills to, in ``unit``; None: a counter without an end.
    desc : str
        What is being done, shown before the bar.
    unit : str
        What one step of ``update`` counts.
    """
    return tqdm(total=total, desc=desc, unit=unit, file=sys.stderr, disable=not sys.stderr.isatty(),
                dynamic_ncols=True, leave=False, **options)
