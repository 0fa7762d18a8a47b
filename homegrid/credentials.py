"""Secrets (the gateway password, car tokens, broker password) in one file only its owner can read.

The file is TOML with one table per device, e.g.::

    [powerwall]
    password = "the gateway's customer password"

    [tesla]
    access_token = "..."
    refresh_token = "..."

    [mqtt]
    password = "..."

Lookup order: ``--credentials``, else ``HOMEGRID_CREDENTIALS``, else ``credentials.toml``
beside the config file (``~/.config/homegrid/credentials.toml``). Like ``ssh``, homegrid
refuses a file that its group or other users may read. Values are held as
:class:`Secret`, whose ``repr`` and ``str`` never show the value, so a secret cannot
reach a log line or an API reply by accident; ``reveal()`` is called only where the
secret is handed to the device library.
"""

from __future__ import annotations

import os
import stat
import tempfile
import tomllib
from collections.abc import Mapping
from pathlib import Path

from pydantic import ValidationError
from pydantic_core import ErrorDetails

from homegrid.config import SECRET_KEYS, Config, ConfigError, Secrets, default_config_path

__all__ = ["Credentials", "CredentialsError", "Secret", "credentials_path", "load_credentials", "save_credentials"]

FILE_NAME = "credentials.toml"


class CredentialsError(ConfigError):
    """The credentials file is missing a value, unreadable, or readable by others."""


class Secret:
    """A string that does not show itself."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)

    def __bool__(self) -> bool:
        return bool(self._value)


class Credentials:
    """The secrets of each device section; ``path`` is where they came from (None: no file)."""

    def __init__(self, sections: Mapping[str, Mapping[str, Secret]] | None = None, path: Path | None = None) -> None:
        self.sections = {k: dict(v) for k, v in (sections or {}).items()}
        self.path = path

    def get(self, section: str, key: str) -> Secret | None:
        return self.sections.get(section, {}).get(key)

    def require(self, section: str, key: str) -> Secret:
        """The secret, or a :class:`CredentialsError` saying where to put it."""
        value = self.get(section, key)
        if not value:
            where = self.path or "the credentials file"
            raise CredentialsError(f"[{section}] {key} is needed: add it to {where} (chmod 600)")
        return value

    def __repr__(self) -> str:
        keys = {s: sorted(v) for s, v in self.sections.items()}
        return f"Credentials({keys}, path={self.path})"


def credentials_path(config: Config, override: str | Path | None = None) -> Path:
    """Where the credentials file is, by the documented order."""
    for candidate in (override, os.environ.get("HOMEGRID_CREDENTIALS")):
        if candidate:
            return Path(candidate).expanduser()
    folder = config.source.parent if config.source is not None else default_config_path().parent
    return folder / FILE_NAME


def _check_private(path: Path) -> None:
    mode = path.stat().st_mode
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise CredentialsError(
            f"credentials file {path} is open to other users (mode {stat.filemode(mode)}); "
            f"run: chmod 600 {path}"
        )


def load_credentials(path: str | Path | None, required: bool = False) -> Credentials:
    """Read the credentials file.

    Parameters
    ----------
    path : path or None
        The file; None or a missing file gives empty credentials unless ``required``.
    required : bool
        Raise when the file does not exist.

    Raises
    ------
    CredentialsError
        Missing (when required), readable by others, not TOML, an unknown section or key
        (:class:`homegrid.config.Secrets`), or a value that is not a string.
    """
    if path is None:
        return Credentials()
    p = Path(path)
    if not p.exists():
        if required:
            raise CredentialsError(f"credentials file {p} does not exist")
        return Credentials(path=p)
    _check_private(p)
    try:
        raw = tomllib.loads(p.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise CredentialsError(f"{p}: not valid TOML: {exc}") from None
    try:
        checked = Secrets.model_validate(raw)
    except ValidationError as exc:
        raise CredentialsError(f"{p}: {_describe(exc.errors()[0])}") from None
    given = checked.model_dump(exclude_unset=True)
    sections = {name: {key: Secret(value) for key, value in table.items()} for name, table in given.items() if table}
    return Credentials(sections, p)


def _describe(error: ErrorDetails) -> str:
    """Words for a wrong credentials file that name the key and never show its value."""
    loc = [str(step) for step in error["loc"]]
    key = ".".join(loc)
    if error["type"] == "extra_forbidden":
        if len(loc) == 1:
            return f"unknown section [{key}]; known: {', '.join(Secrets.model_fields)}"
        return f"{key}: unknown key; known keys: {', '.join(SECRET_KEYS[loc[0]])}"
    if len(loc) == 1:
        return f"[{key}] must be a table of secrets"
    return f"{key} must be a string"


def _toml_string(value: str) -> str:
    escaped = value.replace("\\", "\\\\").replace('"', '\\"')
    escaped = "".join(c if c.isprintable() else f"\\u{ord(c):04x}" for c in escaped)
    return f'"{escaped}"'


def save_credentials(credentials: Credentials, updates: Mapping[str, Mapping[str, str]] | None = None) -> None:
    """Write the credentials back (e.g. a refreshed car token), owner-only, atomically.

    The new file is made with mode 600 before any secret is written to it, then renamed over the old one.
    """
    if credentials.path is None:
        raise CredentialsError("these credentials have no file to be saved to")
    for section, changes in (updates or {}).items():
        unknown = sorted(set(changes) - set(SECRET_KEYS.get(section, ())))
        if unknown:  # the file would not load again
            raise CredentialsError(f"[{section}] {', '.join(unknown)}: not a key of the credentials file")
    for section, values in (updates or {}).items():
        for key, value in values.items():
            credentials.sections.setdefault(section, {})[key] = Secret(value)
    lines: list[str] = []
    for section, secrets in credentials.sections.items():
        lines.append(f"[{section}]")
        lines.extend(f"{key} = {_toml_string(v.reveal())}" for key, v in secrets.items())
        lines.append("")
    path = credentials.path
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".credentials-", suffix=".tmp")
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write("\n".join(lines))
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
