"""What the door reports about an input file: its problems, each at its line and field, and what it dropped."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

__all__ = ["QUOTE_CHARS", "BadRow", "ImportCounts", "Problem", "ProblemList"]

QUOTE_CHARS = 80  # characters of an overlong field or line quoted in its problem


@dataclass(frozen=True)
class Problem:
    """One thing wrong in an input file.

    Attributes
    ----------
    file : str
        The path as given by the caller.
    line : int
        1-based line number; the header is line 1.
    field : str or None
        The column (glossary name or ``time``), None for a whole-line problem.
    value : str or None
        The cell text as found, None when there is no single cell to show.
    reason : str
        What is wrong, phrased to follow the value.
    """

    file: str
    line: int
    field: str | None
    value: str | None
    reason: str

    def __str__(self) -> str:
        if self.value is None:
            return f"{self.file}:{self.line}: {self.reason}"
        return f"{self.file}:{self.line}: field {self.field!r}: {_quote(self.value)} {self.reason}"


def _quote(text: str) -> str:
    """``text`` as a Python literal, cut to its first 80 characters when longer."""
    if len(text) <= QUOTE_CHARS:
        return repr(text)
    return f"{text[:QUOTE_CHARS]!r}... ({len(text):,} characters)"


class BadRow(ValueError):
    """An input file cannot be imported as it is; carries the first :class:`Problem`."""

    def __init__(self, problem: Problem) -> None:
        super().__init__(str(problem))
        self.problem = problem

    file = property(lambda self: self.problem.file)
    line = property(lambda self: self.problem.line)
    field = property(lambda self: self.problem.field)
    value = property(lambda self: self.problem.value)
    reason = property(lambda self: self.problem.reason)


@dataclass
class ImportCounts:
    """What the door dropped without a problem, counted while a file is read.

    Attributes
    ----------
    duplicates : int
        Rows dropped because another row of the file, or a stored reading, has the same
        time and agrees with them. [rows]
    """

    duplicates: int = 0


class ProblemList(list[Problem]):
    """The first problems of a file (at most ``limit``) and how many there are in all.

    Attributes
    ----------
    total : int
        Number of problems found, including those not kept in the list.
    rows_ok : int
        Number of data rows without any problem.
    """

    def __init__(self, problems: Iterable[Problem] = (), *, total: int = 0, rows_ok: int = 0) -> None:
        super().__init__(problems)
        self.total = total
        self.rows_ok = rows_ok
