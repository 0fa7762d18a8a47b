"""What the app and the CLI say about interruptions: never more than the evidence and the recorded days."""

from __future__ import annotations

__all__ = ["quiet_sentence", "saved_sentence"]


def _minutes_text(minutes: float) -> str:
    if minutes < 1.0:
        return "under a minute"
    m = round(minutes)
    return f"{m} minute" + ("" if m == 1 else "s")


def saved_sentence(saved: int, saved_minutes: float, dark: int = 0, period: str = "this month") -> str:
    """The month's sentence: "Your battery saved you from N interruptions (M minutes) this month."

    Only interruptions count (never disturbances, never the owner's own tests).

    Parameters
    ----------
    saved : int
        Interruptions the home was carried through.
    saved_minutes : float
        Their total length. [min]
    dark : int
        Interruptions that left the home without power.
    period : str
        The period the sentence is about, as it ends the sentence ("this month",
        "from 2025-06-03 to 2025-06-30"): name the period the hub actually
        recorded when it covers less than the month.
    """
    if saved:
        noun = "interruption" if saved == 1 else "interruptions"
        text = f"Your battery saved you from {saved} {noun} ({_minutes_text(saved_minutes)}) {period}."
    elif dark:
        text = f"Your battery saved you from no interruptions {period}."
    else:
        text = f"No interruptions {period}."
    if dark:
        noun = "interruption" if dark == 1 else "interruptions"
        text += f" {dark} {noun} left the home without power."
    return text


def quiet_sentence(first: str | None, last: str | None) -> str:
    """What to say when no interruption was recorded: the period the hub covered, never more.

    Parameters
    ----------
    first, last : str or None
        The first and last local dates (ISO) the hub has readings for within the
        period asked; None when it has none.
    """
    if first is None or last is None:
        return "No readings recorded in this period, so nothing is known about grid interruptions."
    if first == last:
        return f"No grid interruptions recorded on {first} (the days this hub recorded)."
    return f"No grid interruptions recorded from {first} to {last} (the days this hub recorded)."
