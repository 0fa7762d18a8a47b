"""A tariff file's text, told apart by content: an OpenEI URDB JSON record or homegrid's TOML.

Callers read the file (the hub, the bill command) and hand the text here; nothing here touches a file.
"""

from __future__ import annotations

import json

from homegrid.tariffs.model import Tariff, TariffError
from homegrid.tariffs.toml_rate import read_toml_tariff
from homegrid.tariffs.urdb import read_urdb

__all__ = ["load_tariff", "tariff_format"]


def tariff_format(text: str) -> str:
    """``"urdb"`` for a JSON object (or a JSON string holding one, as saved API replies are), else ``"toml"``.

    Raises
    ------
    TariffError
        Empty text, text that starts as a JSON object (``{``) but is not valid JSON, or JSON that is no object.
    """
    body = text.lstrip("\ufeff \t\r\n")
    if not body:
        raise TariffError("tariff: the file is empty; expected a URDB record or homegrid's TOML")
    try:
        value = json.loads(body)
    except json.JSONDecodeError as exc:
        if body[:1] == "{":  # ("[" starts a TOML table as well as a JSON list)
            raise TariffError(f"tariff: starts as JSON but is not valid JSON ({exc}); expected a URDB record "
                              "or homegrid's TOML") from None
        return "toml"
    if isinstance(value, dict | str):
        return "urdb"
    raise TariffError(f"tariff: JSON {type(value).__name__}, expected a URDB record (a JSON object) or homegrid's "
                      "TOML")


def load_tariff(text: str) -> tuple[Tariff, list[str]]:
    """A tariff from a file's text, URDB JSON or homegrid TOML, told apart by content.

    Parameters
    ----------
    text : str
        The whole file.

    Returns
    -------
    tuple of (Tariff, list of str)
        The tariff and the reader's warnings.

    Raises
    ------
    TariffError
        Neither format, or a bad tariff in either (the field named).
    """
    if tariff_format(text) == "urdb":
        return read_urdb(text.lstrip("\ufeff"))
    try:
        return read_toml_tariff(text.lstrip("\ufeff"))
    except TariffError as exc:
        if str(exc).startswith("not valid TOML"):
            raise TariffError(f"tariff: neither a URDB JSON record nor homegrid's TOML ({exc})") from None
        raise
