"""Real ``homegrid`` processes for the tests: start one, wait for what it says, stop it."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
from pathlib import Path

from tests.waiting import wait_for


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Proc:
    """A homegrid process whose stderr lines are collected as they come."""

    def __init__(self, args: list[str], env: dict[str, str] | None = None, code: str | None = None) -> None:
        head = [sys.executable, "-c", code, *args] if code else [sys.executable, "-m", "homegrid.cli", *args]
        self.p = subprocess.Popen(head, env={**os.environ, **(env or {})}, stdout=subprocess.DEVNULL,
                                  stderr=subprocess.PIPE, text=True)
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.p.stderr is not None
        for line in self.p.stderr:
            self.lines.append(line.rstrip("\n"))

    @property
    def stderr(self) -> str:
        return "\n".join(self.lines)

    def wait_for(self, text: str, timeout: float = 60.0) -> str:
        """The first stderr line holding ``text``; fails when the process ends or time runs out first."""
        def found() -> str | None:
            line = next((line for line in list(self.lines) if text in line), None)
            if line is None and self.p.poll() is not None:
                self._reader.join(5)  # the process ended: its last lines are read, then the end is final
                line = next((line for line in list(self.lines) if text in line), None)
                if line is None:
                    raise AssertionError(f"no {text!r} from the process (rc {self.p.poll()}):\n{self.stderr}")
            return line

        return wait_for(found, timeout=timeout, interval=0.05,
                        what=lambda: f"no {text!r} from the process (rc {self.p.poll()}):\n{self.stderr}")

    def wait(self, timeout: float = 30.0) -> int:
        rc = self.p.wait(timeout)
        self._close()
        return rc

    def stop(self) -> None:
        if self.p.poll() is None:
            self.p.kill()
            self.p.wait()
        self._close()

    def _close(self) -> None:
        self._reader.join(5)
        if self.p.stderr is not None:
            self.p.stderr.close()


def serve_config(tmp_path: Path) -> Path:
    """A quick hub: half an hour of history, a poll every 0.2 s."""
    cfg = tmp_path / "homegrid.toml"
    cfg.write_text("[server]\nbackfill_days = 0.02\npoll_interval_s = 0.2\n[store]\nflush_interval_s = 0.05\n")
    return cfg
