"""Outage notifications: a command, a webhook and MQTT; a failing hook never stops anything."""

from __future__ import annotations

import json
import sys
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

from homegrid.hub.notify import Notifier

EVENT = {"start": "2026-06-01T12:00:00-04:00", "end": None, "duration_s": None, "saved": True}


def test_command_gets_the_event_on_stdin_and_its_kind_in_the_environment(tmp_path):
    out = tmp_path / "got.json"
    script = tmp_path / "hook.py"
    script.write_text(
        "import json, os, sys\n"
        f"open({str(out)!r}, 'w').write(json.dumps({{'kind': os.environ['HOMEGRID_EVENT'], "
        "'body': json.load(sys.stdin)}))\n"
    )
    n = Notifier(command=f"{sys.executable} {script}")
    n.notify("outage_started", EVENT)
    n.wait()
    got = json.loads(out.read_text())
    assert got == {"kind": "outage_started", "body": {"event": "outage_started", "outage": EVENT}}
    assert n.status() == {"sent": 1, "failures": 0, "last_failure": None}


def test_webhook_is_posted_json():
    received: list[dict] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers["Content-Length"])
            received.append(json.loads(self.rfile.read(length)))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        n = Notifier(url=f"http://127.0.0.1:{server.server_port}/hook")
        n.notify("outage_ended", EVENT)
        n.wait()
    finally:
        server.shutdown()
        server.server_close()
    assert received == [{"event": "outage_ended", "outage": EVENT}]
    assert n.sent == 1


def test_failing_hooks_are_counted_and_logged_not_raised(tmp_path, caplog):
    class BrokenBroker:
        def publish_event(self, kind: str, payload: dict) -> bool:
            raise ConnectionError("broker gone")

    n = Notifier(command="exit 3", url="http://127.0.0.1:9/nothing-listens", mqtt=BrokenBroker())
    n.notify("outage_started", EVENT)
    n.wait()
    assert n.failures == 3 and n.sent == 0
    assert "outage notification failed" in caplog.text


def test_mqtt_channel_publishes_the_event():
    sent: list[tuple[str, dict]] = []

    class Broker:
        def publish_event(self, kind: str, payload: dict) -> bool:
            sent.append((kind, payload))
            return True

    Notifier(mqtt=Broker()).notify("outage_started", EVENT)
    assert sent == [("outage_started", {"event": "outage_started", "outage": EVENT})]
