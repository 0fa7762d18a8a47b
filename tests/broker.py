"""A real Mosquitto broker for the MQTT tests, on a free loopback port.

The ``mosquitto`` fixture (function ``mosquitto_broker``: import it, or list
``tests.broker`` in ``pytest_plugins`` of the root conftest) starts one broker for the test session with a
temporary configuration (anonymous, no persistence, loopback only) and stops it
at the end. :class:`Mosquitto` also runs private brokers for tests that stop,
restart or lock down their broker. Without Debian's ``mosquitto`` package the
tests fail (they do not skip): ``apt-get install mosquitto``.
"""

from __future__ import annotations

import getpass
import os
import shutil
import signal
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.waiting import wait_for

__all__ = ["MOSQUITTO", "Mosquitto", "free_port", "mosquitto_binary", "mosquitto_broker"]

#: Where Debian's package puts the broker; ``$MOSQUITTO`` overrides it.
MOSQUITTO = os.environ.get("MOSQUITTO", "/usr/sbin/mosquitto")
HOST = "127.0.0.1"


def mosquitto_binary() -> str:
    """The broker's path, or a test failure that says how to install it."""
    if not (os.path.isfile(MOSQUITTO) and os.access(MOSQUITTO, os.X_OK)):
        pytest.fail(
            f"the MQTT tests need the Mosquitto broker at {MOSQUITTO}, which is missing; install Debian's "
            "package: `sudo apt-get install mosquitto` (or set $MOSQUITTO to a mosquitto binary)",
            pytrace=False,
        )
    return MOSQUITTO


def free_port() -> int:
    """A TCP port nobody listens on at the moment."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


class Mosquitto:
    """One broker process with its own configuration in ``workdir``.

    Parameters
    ----------
    workdir : Path
        Holds the configuration, the password file and the log.
    port : int, optional
        Listening port (default: a free one). Restarts keep it.
    users : dict, optional
        ``{username: password}``; when given, anonymous clients are refused.
    """

    def __init__(self, workdir: Path, port: int | None = None, users: dict[str, str] | None = None) -> None:
        self.binary = mosquitto_binary()
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.host = HOST
        self.port = port or free_port()
        self.users = dict(users or {})
        self.log_path = self.workdir / "mosquitto.log"
        self.process: subprocess.Popen[bytes] | None = None
        self._write_config()

    def _write_config(self) -> None:
        lines = [
            f"listener {self.port} {self.host}",
            "persistence false",
            "log_dest stderr",
            "log_type error",
            "log_type warning",
            "log_type notice",
            "log_type information",
            "connection_messages true",
            f"user {getpass.getuser()}",  # no switch to the 'mosquitto' account when run as root
        ]
        if self.users:
            passwd = self.workdir / "passwd"
            passwd.write_text("".join(f"{u}:{p}\n" for u, p in self.users.items()))
            tool = shutil.which("mosquitto_passwd") or "/usr/bin/mosquitto_passwd"
            subprocess.run([tool, "-U", str(passwd)], check=True, capture_output=True, timeout=10)
            passwd.chmod(0o600)
            lines += ["allow_anonymous false", f"password_file {passwd}"]
        else:
            lines.append("allow_anonymous true")
        self.config_path = self.workdir / "mosquitto.conf"
        self.config_path.write_text("\n".join(lines) + "\n")

    def __repr__(self) -> str:
        return f"Mosquitto({self.host}:{self.port}, {'running' if self.running else 'stopped'})"

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def log_text(self) -> str:
        """What the broker logged so far."""
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def start(self, timeout: float = 10.0) -> None:
        """Start the broker and wait until it accepts connections."""
        if self.running:
            return
        with open(self.log_path, "ab") as logfile:
            self.process = subprocess.Popen([self.binary, "-c", str(self.config_path)], stdin=subprocess.DEVNULL,
                                            stdout=logfile, stderr=subprocess.STDOUT)
        process = self.process

        def listening() -> bool:
            if process.poll() is not None:
                raise RuntimeError(f"mosquitto exited with {process.returncode}:\n{self.log_text()}")
            with socket.create_connection((self.host, self.port), timeout=0.5):
                return True

        try:
            wait_for(listening, timeout=timeout, retry_on=(OSError,))
        except AssertionError:
            self.stop()
            raise RuntimeError(f"mosquitto did not listen on {self.port} within {timeout} s:\n"
                               f"{self.log_text()}") from None

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the broker (SIGTERM, then SIGKILL) and wait for it."""
        p = self.process
        if p is None:
            return
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(timeout)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(timeout)
        self.process = None

    def restart(self) -> None:
        """Stop and start again on the same port; retained messages are gone (no persistence)."""
        self.stop()
        self.start()

    def __enter__(self) -> Mosquitto:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


@pytest.fixture(scope="session", name="mosquitto")
def mosquitto_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mosquitto]:
    """One broker for the session; tests keep to their own topics."""
    broker = Mosquitto(tmp_path_factory.mktemp("mosquitto"))
    broker.start()
    yield broker
    broker.stop()
