"""The owner's key: one token, made at the hub's first start, that every change to the home needs.

The token lives in the data directory in ``owner-token``, created readable by its owner only
(``0600``, in a ``0700`` directory when homegrid makes it). Scripts send it as
``Authorization: Bearer <token>``; a browser trades it once (the sign-in link ``/signin?token=``)
for a session cookie whose value is an HMAC of the token, so renewing the token
(``homegrid token --renew``) ends every session at once, in the running hub too: :class:`OwnerKey`
reads the file again when it changes. Credentials are compared with :func:`hmac.compare_digest`.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import os
import secrets
import stat
import threading
from pathlib import Path

from homegrid.config import ConfigError

__all__ = ["SESSION_COOKIE", "TOKEN_FILE", "OwnerKey", "OwnerKeyError", "load_or_create", "read_token", "renew",
           "session_value", "signin_url", "token_path"]

TOKEN_FILE = "owner-token"
SESSION_COOKIE = "homegrid_session"
MIN_TOKEN_CHARS = 32  # secrets.token_urlsafe(32) gives 43
_SESSION_LABEL = b"homegrid owner session v1"


class OwnerKeyError(ConfigError):
    """The token file is unreadable, malformed or readable by other users."""


def token_path(data_dir: Path) -> Path:
    """Where the owner's token is kept in a data directory."""
    return Path(data_dir) / TOKEN_FILE


def session_value(token: str) -> str:
    """The session cookie's value for a token (an HMAC of it: a new token ends every session)."""
    return hmac.new(token.encode(), _SESSION_LABEL, hashlib.sha256).hexdigest()


def signin_url(base: str, token: str) -> str:
    """The sign-in link for a hub at ``base`` (``http://host:port``)."""
    return f"{base.rstrip('/')}/signin?token={token}"


def _data_dir(data_dir: Path) -> Path:
    d = Path(data_dir)
    if not d.exists():
        d.mkdir(parents=True, mode=0o700)
        os.chmod(d, 0o700)  # mkdir's mode is filtered by the umask
    return d


def _write_new(path: Path, token: str) -> Path:
    """Write a token to a fresh owner-only file beside ``path``; returns that file."""
    for _ in range(10):
        tmp = path.with_name(f".{path.name}.{secrets.token_hex(6)}")
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            continue
        try:
            os.fchmod(fd, 0o600)
            os.write(fd, (token + "\n").encode())
            os.fsync(fd)
        finally:
            os.close(fd)
        return tmp
    raise OwnerKeyError(f"cannot create a temporary file beside {path}")


def read_token(data_dir: Path) -> str:
    """The owner's token (it must exist); refuses a file that other users may read."""
    path = token_path(data_dir)
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        raise OwnerKeyError(f"no owner token in {Path(data_dir)}: 'homegrid serve' makes one at its first start "
                            "('homegrid token' makes one too); give --data-dir if the hub's data is elsewhere"
                            ) from None
    except OSError as exc:
        raise OwnerKeyError(f"cannot read {path}: {exc.strerror}") from None
    with os.fdopen(fd, encoding="utf-8") as f:
        mode = os.fstat(f.fileno()).st_mode
        if stat.S_IMODE(mode) & 0o077:
            raise OwnerKeyError(f"{path} may be read by other users (mode {stat.S_IMODE(mode):04o}): "
                                "run 'homegrid token --renew' to make a new token in an owner-only file")
        token = f.read(256).strip()
    if len(token) < MIN_TOKEN_CHARS or not token.isascii() or not token.isprintable() or " " in token:
        raise OwnerKeyError(f"{path} does not hold a token: run 'homegrid token --renew' to make a new one")
    return token


def load_or_create(data_dir: Path) -> tuple[str, bool]:
    """The owner's token, made now if there is none; returns ``(token, created)``."""
    path = token_path(_data_dir(data_dir))
    if not path.exists():
        token = secrets.token_urlsafe(32)
        tmp = _write_new(path, token)
        try:
            os.link(tmp, path)  # atomic and exclusive: two first starts agree on one token
            return token, True
        except FileExistsError:
            pass
        finally:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
    return read_token(data_dir), False


def renew(data_dir: Path) -> str:
    """Replace the owner's token with a new one (every session and script using the old one is refused)."""
    path = token_path(_data_dir(data_dir))
    token = secrets.token_urlsafe(32)
    tmp = _write_new(path, token)
    try:
        os.replace(tmp, path)
    except OSError:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return token


class OwnerKey:
    """The token as the running hub knows it, read again when its file changes (a renewal).

    Parameters
    ----------
    data_dir : Path
        The data directory holding ``owner-token``.
    """

    def __init__(self, data_dir: Path) -> None:
        self.path = token_path(data_dir)
        self._lock = threading.Lock()
        self._token, created = load_or_create(data_dir)
        self.created = created
        self._seen = self._stamp()
        self._session = session_value(self._token)

    def _stamp(self) -> tuple[int, int, int] | None:
        try:
            s = os.stat(self.path)
        except OSError:
            return None
        return s.st_ino, s.st_mtime_ns, s.st_size

    def token(self) -> str:
        """The current token (a missing or broken file keeps the last good one)."""
        stamp = self._stamp()
        if stamp is not None and stamp != self._seen:
            with self._lock:
                try:
                    self._token = read_token(self.path.parent)
                    self._session = session_value(self._token)
                except OwnerKeyError:
                    pass
                self._seen = stamp
        return self._token

    def session(self) -> str:
        """The current session cookie value."""
        self.token()
        return self._session

    def is_token(self, given: str) -> bool:
        """Whether ``given`` is the owner's token (constant-time)."""
        return hmac.compare_digest(given.encode(), self.token().encode())

    def is_session(self, given: str) -> bool:
        """Whether ``given`` is a valid session cookie value (constant-time)."""
        return hmac.compare_digest(given.encode(), self.session().encode())
