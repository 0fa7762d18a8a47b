"""`homegrid serve` as a user runs it: a real process, a real port, the virtual home."""

import json
import os
import signal
import socket
import subprocess
import sys
import urllib.parse
import urllib.request

from .waiting import wait_for


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=5) as r:
        return json.loads(r.read())


def _live_after(port: int, polls: int = 0, time: str = "") -> dict | None:
    """The hub's /api/v1/live once it has polled ``polls`` times and has a reading newer than ``time``."""
    live = _get(f"http://127.0.0.1:{port}/api/v1/live")
    return live if live["health"]["device"]["polls"] >= polls and live["time"] > time else None


def test_serve_backfills_polls_and_answers(tmp_path):
    cfg = tmp_path / "homegrid.toml"
    cfg.write_text("[server]\nbackfill_days = 0.5\npoll_interval_s = 0.5\n[store]\nflush_interval_s = 0.2\n")
    port = _free_port()
    env = {**os.environ, "HOMEGRID_DATA_DIR": str(tmp_path / "data")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "homegrid.cli", "serve", "--config", str(cfg), "--port", str(port)],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )
    try:
        live = wait_for(lambda: _live_after(port, polls=3), timeout=60, interval=0.3, retry_on=(OSError,),
                        what="the hub never answered with 3 polls")
        assert live["health"]["device"]["errors"] == 0
        assert {"solar_power", "home_power", "grid_power", "battery_soc", "grid_status"} <= set(live["values"])
        first = live["health"]["first_reading"]
        # still polling and recording in real time
        again = wait_for(lambda: _live_after(port, time=live["time"]), timeout=15, interval=0.3,
                         what="no newer reading: the hub stopped polling")
        assert again["health"]["first_reading"] == first  # the backfill was written once
        query = urllib.parse.urlencode({"from": first, "to": again["time"], "step": "hour"})
        energy = _get(f"http://127.0.0.1:{port}/api/v1/energy?{query}")
        assert len(energy["start"]) >= 12  # half a day of backfilled hours
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=20)
        finally:
            proc.stderr.close()
    assert proc.returncode == 0


def test_the_hubs_connections_send_without_waiting_for_acks():
    """The socket serve binds makes asyncio turn Nagle's algorithm off on each connection: with it on, a reply's
    body waited for the ACK of its headers, which a client delays 40 ms on a kept-alive connection."""
    import asyncio

    from homegrid.cli import _listen

    listener = _listen("127.0.0.1", 0)
    port = listener.getsockname()[1]
    nodelay: list[int] = []

    async def main() -> None:
        def accepted(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            nodelay.append(writer.get_extra_info("socket").getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
            writer.close()

        server = await asyncio.start_server(accepted, sock=listener)
        async with server:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            for _ in range(100):
                if nodelay:
                    break
                await asyncio.sleep(0.01)
            writer.close()

    asyncio.run(main())
    assert nodelay == [1]
