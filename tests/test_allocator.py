"""The allocator thresholds are set once, on glibc, and the command sets them."""

from __future__ import annotations

import ctypes
import sys

import pytest

from homegrid import allocator
from homegrid.cli import main


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt is Linux's")
def test_glibc_takes_the_thresholds_once(monkeypatch):
    calls = []

    class Mallopt:
        argtypes: object = None
        restype: object = None

        def __call__(self, option: int, value: int) -> int:
            calls.append((option, value))
            return 1

    class Libc:
        mallopt = Mallopt()

    monkeypatch.setattr(ctypes, "CDLL", lambda name: Libc())
    allocator.tune_allocator.cache_clear()
    try:
        assert allocator.tune_allocator() is True
        assert allocator.tune_allocator() is True
        assert calls == [(-3, allocator.MMAP_THRESHOLD), (-1, allocator.TRIM_THRESHOLD)]
    finally:
        allocator.tune_allocator.cache_clear()


def test_a_c_library_without_mallopt_is_left_alone(monkeypatch):
    monkeypatch.setattr(ctypes, "CDLL", lambda name: object())
    monkeypatch.setattr(sys, "platform", "linux")
    allocator.tune_allocator.cache_clear()
    try:
        assert allocator.tune_allocator() is False
    finally:
        allocator.tune_allocator.cache_clear()


def test_the_command_tunes_the_allocator(monkeypatch, tmp_path, capsys):
    seen = []
    monkeypatch.setattr("homegrid.cli.tune_allocator", lambda: seen.append(True))
    missing = str(tmp_path / "none")  # no such data dir: the command stops with 2, after the tuning
    assert main(["export", "--data-dir", missing, "--from", "2025-01-01", "--to", "2025-01-02"]) == 2
    assert "data" in capsys.readouterr().err
    assert seen == [True]
