"""The ``homegrid`` command: the hub (serve) and its tools.

serve, simulate, import, export, report, bill, backtest, prices fetch, outages, storm, token, quarantine-future,
check, devices test.

These command names, options and JSON keys are a public interface (see README).
Exit codes (EXIT_CODES; the README's Commands section lists them): 0 success, 1 runtime failure, 2 bad input
(config, arguments, file, a data dir that does not exist), 3 serve cannot listen on its address (the port is in
use), 4 export found nothing at the resolution asked for but coarser data (the raw readings were pruned).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import math
import os
import signal
import socket
import sqlite3
import sys
import time
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypedDict

from homegrid import __version__, owner
from homegrid.allocator import tune_allocator
from homegrid.config import Config, ConfigError, load_config, resolve_data_dir
from homegrid.glossary import quantity

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from typing import TextIO

    import numpy as np

    from homegrid.credentials import Credentials
    from homegrid.readings import Limits, ReadingFrame
    from homegrid.readings.csvfile import ImportCounts, Problem
    from homegrid.readings.tesla_history import TeslaHistoryError
    from homegrid.store.lock import DataDirLock
    from homegrid.tariffs import Tariff

__all__ = ["main"]

log = logging.getLogger("homegrid")


#: every exit code of every command, and what it means (README: Commands)
EXIT_CODES: dict[int, str] = {
    0: "success",
    1: "runtime failure (the data dir in use, a damaged store, a full or read-only disk, a device that failed)",
    2: "bad input: config, arguments, a file, a --data-dir that does not exist",
    3: "serve: the address cannot be listened on (the port is in use)",
    4: "export: no raw readings in the span (older than the raw retention); --resolution minute or hour has them",
}
EXIT_LISTEN = 3
EXIT_PRUNED = 4

#: commands that may make a new data dir (with --create, or at the default place)
_MAKERS = frozenset({"serve", "simulate", "import", "quarantine-future", "token"})


class UsageError(Exception):
    """Bad input from the user: printed without a traceback, exit code 2."""


_HELD: list[DataDirLock] = []  # released when main() returns


class Refused(Exception):
    """The command cannot run here (the data dir is in use, the store is damaged): printed, exit code 1."""


def _date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date (YYYY-MM-DD)") from None


def _common() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(add_help=False)
    p.add_argument("--config", help="config file (default $XDG_CONFIG_HOME/homegrid/homegrid.toml)")
    p.add_argument("--data-dir", help="data directory (default $HOMEGRID_DATA_DIR, else $XDG_DATA_HOME/homegrid); "
                   "it must exist, unless --create")
    p.add_argument("--create", action="store_true",
                   help="make the --data-dir if it does not exist (serve, simulate, import, token)")
    p.add_argument("-v", "--verbose", action="store_true", help="log more")
    return p


def build_parser() -> argparse.ArgumentParser:
    common = _common()
    parser = argparse.ArgumentParser(prog="homegrid", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"homegrid {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    common.add_argument("--credentials", help="credentials file (default credentials.toml beside the config)")

    s = sub.add_parser("serve", parents=[common], help="run the hub (virtual home when no device is configured)")
    s.add_argument("--host", help="listen address (default 127.0.0.1)")
    s.add_argument("--port", type=int, help="listen port (default 8080)")

    s = sub.add_parser("simulate", parents=[common], help="write virtual-home history fast")
    s.add_argument("--start", type=_date, required=True, help="first local date")
    s.add_argument("--days", type=float, required=True, help="how many days")
    s.add_argument("--step", type=float, default=60.0, help="seconds between readings (default 60)")

    s = sub.add_parser("import", parents=[common], help="import readings from a file")
    s.add_argument("file", help="the file to import")
    s.add_argument("--format", choices=("csv", "tesla-history"), default=None,
                   help="file format (default: by extension, .json is tesla-history)")
    s.add_argument("--on-error", choices=("abort", "skip"), default="abort",
                   help="abort: import nothing if any row is bad (default); skip: import the good rows")

    s = sub.add_parser("export", parents=[common], help="export readings as canonical CSV")
    s.add_argument("--from", dest="from_", type=_date, required=True, help="first local date")
    s.add_argument("--to", type=_date, required=True, help="last local date (inclusive)")
    s.add_argument("--output", help="file to write (default standard output)")
    s.add_argument("--resolution", choices=("raw", "minute", "hour"), default="raw",
                   help="raw: the readings (default; kept forever unless [store] raw_retention_days); minute or "
                   "hour: the rollups (energy per bucket, kept forever)")

    s = sub.add_parser("report", parents=[common], help="energy report for local dates")
    s.add_argument("--from", dest="from_", type=_date, required=True, help="first local date")
    s.add_argument("--to", type=_date, required=True, help="last local date (inclusive)")
    s.add_argument("--json", action="store_true", help="print JSON")

    s = sub.add_parser("bill", parents=[common], help="the utility bill of local dates, and what the sun and the "
                       "battery saved")
    s.add_argument("--from", dest="from_", type=_date, required=True, help="first local date")
    s.add_argument("--to", type=_date, required=True, help="last local date (inclusive)")
    s.add_argument("--tariff", help="a tariff file, homegrid TOML or URDB JSON (default: the config's [tariff])")
    s.add_argument("--export", choices=("net-metering", "net-billing", "buy-all-sell-all", "none"),
                   help="how export is credited (default: the tariff's, or the config's [tariff] export)")
    s.add_argument("--sell-price", type=float, help="export price per kWh for net billing and buy-all-sell-all")
    s.add_argument("--prices", metavar="FILE", help="a price CSV (time, import_price, optional export_price per kWh) "
                   "whose dynamic prices replace the tariff's energy prices for this bill (default: the config's "
                   "[tariff] prices)")
    s.add_argument("--price-adder", type=float, help="added to each spot price after the percentage, per kWh "
                   "(default: [tariff] price_adder)")
    s.add_argument("--price-percent", type=float, help="added to each spot price as a percentage of it "
                   "(default: [tariff] price_percent)")
    s.add_argument("--json", action="store_true", help="print JSON")

    s = sub.add_parser("backtest", help="replay a past period's readings with a battery under a policy, billed")
    s.add_argument("--config", help="config file (for [site] timezone when --timezone is not given)")
    s.add_argument("--data", required=True, metavar="FILE", help="canonical CSV with at least home_power and "
                   "solar_power (ev_power: the car's charging as it happened)")
    price = s.add_mutually_exclusive_group(required=True)
    price.add_argument("--prices", metavar="FILE", help="price CSV: time, import_price, optional export_price per "
                       "kWh (export earns 0 without it)")
    price.add_argument("--tariff", metavar="FILE", help="a tariff file, homegrid TOML or URDB JSON")
    s.add_argument("--policy", required=True, choices=BACKTEST_POLICIES, help="self-consumption: the surplus "
                   "charges, deficits discharge to the reserve; time-based: discharge only in the peak, "
                   "time-based-grid: and charge from the grid in the cheapest hours; perfect: the optimum knowing "
                   "the real load; mpc: re-plan every step with forecasts from the past only")
    s.add_argument("--battery-kwh", type=float, default=13.5, help="usable capacity [kWh] (default 13.5)")
    s.add_argument("--battery-kw", type=float, default=5.0, help="charge and discharge limit [kW] (default 5)")
    s.add_argument("--reserve-percent", type=float, default=20.0, help="backup reserve: the floor [%%] (default 20)")
    s.add_argument("--round-trip", type=float, default=90.0, help="round-trip efficiency [%%], split evenly between "
                   "charge and discharge (default 90)")
    s.add_argument("--step-min", type=float, default=15.0, help="the replay's step [min] (default 15)")
    s.add_argument("--timezone", help="the site's IANA zone (default: the config's [site] timezone)")
    s.add_argument("--currency", default="EUR", help="with --prices: the prices' ISO 4217 currency (default EUR)")
    s.add_argument("--ev-extend-h", type=float, default=4.0, help="hours the car is taken to stay plugged in after "
                   "its charging as it happened ends (the window perfect and mpc may move it in; default 4)")
    s.add_argument("--horizon-h", type=float, default=36.0, help="mpc: the plan's horizon [h] (default 36)")
    s.add_argument("--replan-min", type=float, help="mpc: re-plan this often [min] (default: every step)")
    s.add_argument("--wear-cost", type=float, default=0.0, help="mpc: what each kWh through the battery costs its "
                   "life in the plan, per kWh (default 0, as [planner] wear_cost_per_kwh); not billed")
    s.add_argument("--forecast", choices=("site", "persistence", "perfect"), default="site", help="mpc's "
                   "forecasts: site (homegrid's load and solar forecasts from the data before each step; default), "
                   "persistence (the same time a day earlier) or perfect (a diagnostic, not a policy: the real "
                   "load and solar ahead, to tell what the forecasts lose from what the execution loses)")
    s.add_argument("--latitude", type=float, help="the site, for the solar forecast [degrees] (default: the "
                   "config's [site] latitude)")
    s.add_argument("--longitude", type=float, help="the site [degrees] (default: the config's [site] longitude)")
    s.add_argument("--compare", action="store_true", help="also replay the home without battery and with perfect "
                   "foresight, for the share of the perfect-foresight saving captured")
    s.add_argument("--json", action="store_true", help="print JSON")

    s = sub.add_parser("prices", help="dynamic prices from a live source")
    psub = s.add_subparsers(dest="prices_command", required=True)
    s = psub.add_parser("fetch", parents=[common], help="fetch the live source's prices of local dates into its "
                        "cache in the data dir (prices/<source>.csv)")
    s.add_argument("--from", dest="from_", type=_date, required=True, help="first local date")
    s.add_argument("--to", type=_date, required=True, help="last local date (inclusive)")
    s.add_argument("--source", choices=("awattar-de", "awattar-at"),
                   help="the live source (default: the config's [tariff] prices)")
    s.add_argument("--json", action="store_true", help="print JSON")

    s = sub.add_parser("outages", parents=[common], help="grid interruptions and what the battery saved you from")
    s.add_argument("--from", dest="from_", type=_date, help="first local date (default: a year ago)")
    s.add_argument("--to", type=_date, help="last local date, inclusive (default: today)")
    s.add_argument("--json", action="store_true", help="print JSON (events and months)")

    s = sub.add_parser("storm", parents=[common], help="storm mode of the running hub: status, on, off, auto")
    s.add_argument("mode", nargs="?", choices=("status", "on", "off", "auto"), default="status")
    s.add_argument("--until", help="with on/off: an ISO 8601 time with offset when the switch lapses")
    s.add_argument("--url", help="the hub (default http://[server] host:port)")

    s = sub.add_parser("token", parents=[common], help="the owner's token and sign-in link (or a new token)")
    s.add_argument("--renew", action="store_true", help="make a new token: every signed-in browser and script "
                   "using the old one is refused")
    s.add_argument("--url", help="the hub's address for the link (default http://[server] host:port)")

    s = sub.add_parser("quarantine-future", parents=[common],
                       help="move readings stored ahead of the clock to the quarantine (hub stopped)")
    s.add_argument("--after", help="an ISO 8601 time with offset (default: now by this machine's clock)")

    s = sub.add_parser("check", parents=[common], help="check the store's file for damage (PRAGMA quick_check)")
    s.add_argument("--full", action="store_true", help="PRAGMA integrity_check: also every index (slower)")

    s = sub.add_parser("devices", help="check the configured devices")
    dsub = s.add_subparsers(dest="devices_command", required=True)
    s = dsub.add_parser("test", parents=[common], help="poll each configured device once and show what it read")
    s.add_argument("--json", action="store_true", help="print one JSON object per device")
    s.add_argument("--powerwall", metavar="HOST[:PORT]", help="test this gateway instead of the configured devices")
    s.add_argument("--password", help="the gateway's customer password (with --powerwall)")
    s.add_argument("--email", default="", help="the email given at login (with --powerwall; any address works)")
    s.add_argument("--timeout", type=float, default=5.0, help="seconds to wait for the gateway (with --powerwall)")
    return parser


def _setup(args: argparse.Namespace) -> tuple[Config, Path]:
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    config = load_config(args.config)
    return config, _data_dir(args, config)


def _data_dir(args: argparse.Namespace, config: Config) -> Path:
    """The data dir: a ``--data-dir`` that does not exist is refused (a typo would give an empty store and
    zeros) unless ``--create`` asks for it, on a command that writes; the default one is made as needed."""
    data_dir = resolve_data_dir(config, args.data_dir)
    args.resolved_data_dir = data_dir
    if args.data_dir and not data_dir.is_dir():
        command = args.command
        if data_dir.exists():
            raise UsageError(f"--data-dir {data_dir} is not a directory")
        if command not in _MAKERS:
            raise UsageError(f"--data-dir {data_dir} does not exist (mistyped?): there is no store to read there")
        if not getattr(args, "create", False):
            raise UsageError(f"--data-dir {data_dir} does not exist (mistyped?); give --create to make a new, "
                             "empty one there")
    return data_dir


def _writer(data_dir: Path, command: str) -> DataDirLock:
    """Take the data dir for a command that writes the store: one writer at a time, on a sound file.

    The lock is held until :func:`main` returns (or the process ends).

    Raises
    ------
    Refused
        Another homegrid process holds the data dir, or ``PRAGMA quick_check`` finds the file damaged.
    """
    from homegrid.hub.service import DB_NAME, open_store
    from homegrid.store.integrity import check_database, recovery_steps
    from homegrid.store.lock import DataDirBusy, DataDirLock

    try:
        lock = DataDirLock(data_dir, f"homegrid {command}").acquire()
    except DataDirBusy as exc:
        raise Refused(str(exc)) from None
    _HELD.append(lock)
    db = data_dir / DB_NAME
    problems = check_database(db)
    if problems:
        raise Refused(_damaged(db, problems) + "\n" + recovery_steps(db))
    store = open_store(data_dir)
    try:  # a read-only disk stops the command here, not at its first write (a hub would start and fail them all)
        store.set_meta("last_writer", f"homegrid {command} (pid {os.getpid()}) at {datetime.now(UTC).isoformat()}")
    except sqlite3.OperationalError as exc:
        from homegrid.store.errors import describe

        problem = describe(exc, data_dir)
        if command != "serve" or problem is None or problem.kind != "full":
            raise
        # a full disk may be freed while the hub runs: it keeps its readings in memory until then
        log.warning("%s; the hub starts and keeps its readings in memory until there is room", problem)
    finally:
        store.close()
    return lock


def _damaged(db: Path, problems: list[str]) -> str:
    shown = "; ".join(problems[:5]) + (f"; ... ({len(problems)} problems)" if len(problems) > 5 else "")
    return f"the store {db} is damaged: {shown}"


def _credentials(args: argparse.Namespace, config: Config) -> Credentials:
    from homegrid.credentials import credentials_path, load_credentials

    return load_credentials(credentials_path(config, args.credentials))


def cmd_serve(args: argparse.Namespace) -> int:
    from homegrid.api.serve import build_app, build_publisher
    from homegrid.hub.devices import build_devices
    from homegrid.hub.service import Hub

    config, data_dir = _setup(args)
    host = args.host or config.server.host
    port = args.port or config.server.port
    listener = _listen(host, port)  # first: a busy port is said before minutes of backfill
    os.umask(0o077)  # whatever the hub and its libraries write (store, storm state, device cookies): owner-only
    token, created = owner.load_or_create(data_dir)  # first: a new data dir is made owner-only (0700)
    _writer(data_dir, "serve")
    credentials = _credentials(args, config)
    devices = build_devices(config, credentials, data_dir) or None
    publisher = build_publisher(config, credentials)
    hub = Hub(config, data_dir, devices=devices, publisher=publisher)
    names = ", ".join(p.health.name for p in hub.pollers)
    log.info("polling %s%s", names, "; publishing to MQTT" if publisher else "")
    log.info("homegrid %s: data in %s, dashboard on http://%s:%d", __version__, data_dir, host, port)
    if created:  # printed once, never logged: 'homegrid token' shows it again
        links = "\n".join(f"    {owner.signin_url(base, token)}" for base in _hub_bases(host, port))
        print(f"\nThe owner's sign-in link (open it in your browser; 'homegrid token' shows it again):\n{links}\n",
              file=sys.stderr, flush=True)
    # uvicorn re-raises the SIGTERM it caught once it has stopped: end as for Ctrl-C, after the hub's final write
    signal.signal(signal.SIGTERM, _stop_on_sigterm)
    try:
        asyncio.run(hub.run(build_app(hub, host), host, port, sockets=[listener]))
    except (KeyboardInterrupt, _Terminated):
        pass
    finally:
        listener.close()
    return 0


class CannotListen(Exception):
    """serve cannot listen on its address: printed, exit code 3."""


def _listen(host: str, port: int) -> socket.socket:
    """A socket bound to the hub's address and listening (as uvicorn binds it), or CannotListen."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP named, as getaddrinfo names it for uvicorn's own socket: asyncio turns Nagle's algorithm off only on
    # connections of such a socket, else a reply's body waits for the ACK of its headers, which the client delays
    # 40 ms on a kept-alive connection (every request after a connection's first one took 40 ms more)
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn: a port in TIME_WAIT is free
    try:
        sock.bind((host, port))
        sock.listen(2048)
    except OSError as exc:
        sock.close()
        import errno

        if exc.errno == errno.EADDRINUSE:
            why = (f"port {port} on {host} is in use (another homegrid serve, or another program: "
                   f"'ss -ltnp sport = :{port}' names it); stop it or give --port")
        else:
            why = f"cannot listen on {host}:{port}: {exc.strerror or exc}"
        raise CannotListen(why) from None
    sock.set_inheritable(True)
    return sock


class _Terminated(BaseException):
    """SIGTERM: stop like Ctrl-C (finally blocks run, buffered readings are written)."""


def _stop_on_sigterm(signum: int, frame: object) -> None:
    # once: a second SIGTERM must not break off the final write it is waiting for (SIGKILL still ends it)
    signal.signal(signal.SIGTERM, lambda *_: log.warning("already stopping: writing what is buffered"))
    raise _Terminated


#: at most this many simulated rows are kept in memory for outage detection (3 columns: about 70 MB)
_HELD_MAX_ROWS = 3_000_000


def cmd_simulate(args: argparse.Namespace) -> int:
    from homegrid.devices.virtual import VirtualHome
    from homegrid.hub.outages import DETECTION_COLUMNS, HeldReadings
    from homegrid.hub.parts import outage_tracker_for, recorder_for
    from homegrid.hub.service import open_store
    from homegrid.progress import progress
    from homegrid.readings import ReadingFrame, from_ms, to_ms
    from homegrid.timezones import local_day_bounds

    config, data_dir = _setup(args)
    if args.days <= 0:
        raise UsageError("--days must be > 0")
    if not 1 <= args.step <= 3600:
        raise UsageError("--step must be within 1..3600 seconds")
    tz = config.site.tz
    start_ms, _ = local_day_bounds(args.start, tz)
    start = from_ms(start_ms)
    end = start + timedelta(days=args.days)
    now = datetime.now(UTC)
    if end > now:  # the hub would refuse every live reading until its clock caught up with them
        if start >= now:
            raise UsageError(f"--start {args.start} is in the future: the virtual home has no history there")
        print(f"stopping at {now.isoformat(timespec='seconds')}: no readings from the future", file=sys.stderr)
        end = now
    _writer(data_dir, "simulate")
    store = open_store(data_dir, synchronous="NORMAL", max_gap_s=config.accounting.max_gap_s)
    recorder = recorder_for(config, store)
    recorder.seal_history(to_ms(now))
    home = VirtualHome(config, start=start)
    t0 = time.perf_counter()
    days_total = (end - start).total_seconds() / 86_400
    # a week at a time, so the bar moves: as fast as 31-day chunks (a year: 10.7 s against 11.4 s, one run each)
    chunk = timedelta(days=7)
    bar = progress(total=round(days_total, 1), desc="simulate", unit="day")
    # into an empty span the store then holds exactly these rows: outage detection keeps their grid columns
    # in memory rather than reading a year back (bench/RESULTS.md, issue 12), up to _HELD_MAX_ROWS of them
    grid: list[ReadingFrame] | None = None if store.has_readings(start_ms, to_ms(end)) else []
    held_rows = 0

    def chunks() -> Iterator[ReadingFrame]:
        nonlocal grid, held_rows
        t = start
        while t < end:
            nxt = min(t + chunk, end)
            frame = home.simulate(end=nxt, step_s=args.step)
            if grid is not None:
                grid.append(ReadingFrame(frame.time_ms, {c: v for c, v in frame.columns.items()
                                                         if c in DETECTION_COLUMNS}))
                held_rows += len(frame)
                if held_rows > _HELD_MAX_ROWS:
                    grid = None  # a long span at short steps: detection reads it back, as after an import
            yield frame
            bar.update(round((nxt - t).total_seconds() / 86_400, 1))
            t = nxt

    with bar:
        result = recorder.ingest_bulk(chunks())
    outages = 0
    if result is not None:
        tracker = outage_tracker_for(config, store)
        tracker.add_evidence(home.evidence_between(start_ms, to_ms(end)))
        held = None if grid is None else HeldReadings(start_ms, to_ms(end), ReadingFrame.concat(grid))
        outages = tracker.rebuild(result[1], result[2] + 1, held)
    store.checkpoint()
    store.close()
    rows = 0 if result is None else result[0]
    days = (end - start).total_seconds() / 86_400
    print(f"simulated {days:g} days from {args.start} ({rows} readings, {outages} grid interruptions) "
          f"into {data_dir} in {time.perf_counter() - t0:.1f} s")
    return 0


class _Door(TypedDict):
    """What an import checks at the door (``iter_csv``'s keywords of the same names)."""

    limits: Limits
    stored: Callable[[np.ndarray], ReadingFrame]
    counts: ImportCounts


def _import_frames(path: Path, fmt: str, on_error: Literal["abort", "skip"],
                   problems: list[Problem | TeslaHistoryError], door: _Door) -> Iterator[ReadingFrame]:
    from homegrid.progress import progress

    if fmt == "tesla-history":
        yield _tesla_history_door(path, on_error, problems, door)
        return
    from homegrid.readings.csvfile import iter_csv

    # 250k-row chunks halve the peak memory of a big import at the same speed (bench/RESULTS.md)
    with progress(total=_rows_estimate(path), desc=f"import {path.name}", unit=" rows", unit_scale=True) as bar:
        for frame, bad in iter_csv(path, chunk_rows=250_000, on_error=on_error, **door):
            problems.extend(bad)
            yield frame
            bar.update(len(frame) + len(bad))


def _rows_estimate(path: Path) -> int | None:
    """About how many lines a file has, from its size and its first 64 KiB (for a progress bar's end)."""
    try:
        with path.open("rb") as f:
            head = f.read(1 << 16)
        size = path.stat().st_size
    except OSError:
        return None
    lines = head.count(b"\n")
    return round(size * lines / len(head)) if lines else None


def _tesla_history_door(path: Path, on_error: Literal["abort", "skip"],
                        problems: list[Problem | TeslaHistoryError], door: _Door) -> ReadingFrame:
    """A Tesla history file's readings less those stored already: identical ones are dropped (counted), ones
    stored with another value are refused (``abort``: the whole file; ``skip``: those rows, kept as problems)."""
    from homegrid.readings import from_ms
    from homegrid.readings.compare import compare_with_stored
    from homegrid.readings.tesla_history import TeslaHistoryError, read_tesla_history

    frame = read_tesla_history(path, limits=door["limits"])
    cmp = compare_with_stored(frame, door["stored"](frame.time_ms))
    door["counts"].duplicates += cmp.duplicates
    refused = []
    for c in cmp.conflicts:
        when = from_ms(int(frame.time_ms[c.row])).isoformat()
        error = TeslaHistoryError(str(path), when, f"is stored already with different values: {c.name} is "
                                  f"{c.stored:g} in the store and {c.new:g} here; not imported")
        # what the quarantine keeps of an import problem
        error.time_ms, error.field, error.value = int(frame.time_ms[c.row]), c.name, f"{c.new:g}"
        refused.append(error)
    if refused and on_error == "abort":
        raise refused[0]
    problems.extend(refused)
    return frame.take(cmp.keep)


def cmd_import(args: argparse.Namespace) -> int:
    from homegrid.hub.parts import outage_tracker_for, recorder_for
    from homegrid.hub.service import open_store
    from homegrid.readings import Limits
    from homegrid.readings.csvfile import ImportCounts
    from homegrid.store import Quarantined

    config, data_dir = _setup(args)
    path = Path(args.file)
    if not path.is_file():
        raise UsageError(f"{path}: no such file")
    fmt = args.format or ("tesla-history" if path.suffix.lower() == ".json" else "csv")
    _writer(data_dir, "import")
    store = open_store(data_dir, synchronous="NORMAL", max_gap_s=config.accounting.max_gap_s)
    recorder = recorder_for(config, store)
    recorder.seal_history(int(datetime.now(UTC).timestamp() * 1000))
    problems: list[Problem | TeslaHistoryError] = []
    counts = ImportCounts()
    # the stored lookup runs inside ingest_bulk's transaction: it also sees this file's earlier blocks
    door: _Door = {"limits": Limits.now(config.site.max_power_w), "stored": store.readings_at, "counts": counts}
    t0 = time.perf_counter()
    try:
        result = recorder.ingest_bulk(_import_frames(path, fmt, args.on_error, problems, door))
    except ValueError as exc:
        store.close()
        raise UsageError(f"{exc}\nnothing was imported") from None
    if problems:
        store.quarantine([
            Quarantined(int(getattr(p, "time_ms", 0) or 0), f"import:{path.name}", str(getattr(p, "field", "")),
                        str(getattr(p, "value", "")), str(p))
            for p in problems
        ])
        for p in problems[:20]:
            print(f"skipped: {p}", file=sys.stderr)
        if len(problems) > 20:
            print(f"... and {len(problems) - 20} more skipped rows", file=sys.stderr)
    outages = 0 if result is None else outage_tracker_for(config, store).rebuild(result[1], result[2] + 1)
    store.checkpoint()
    store.close()
    duplicates = f", {counts.duplicates} duplicate rows dropped" if counts.duplicates else ""
    if result is None:
        print(f"{path}: no new readings ({len(problems)} rows skipped{duplicates})")
        return 0
    rows, first, last = result
    print(f"imported {rows} readings from {path} ({_span_text(first, last)}), "
          f"{len(problems)} rows skipped{duplicates}, {outages} grid interruptions found, "
          f"in {time.perf_counter() - t0:.1f} s")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from homegrid.hub.export import CHUNK_MS, coverage, describe_pruned, rollup_csv_chunks
    from homegrid.hub.queries import Queries
    from homegrid.hub.service import open_store
    from homegrid.progress import progress
    from homegrid.readings.csvfile import write_csv
    from homegrid.timezones import DAY_MS, local_day_bounds, local_time_text

    config, data_dir = _setup(args)
    if args.to < args.from_:
        raise UsageError("--to is before --from")
    tz = config.site.tz
    store = open_store(data_dir, max_gap_s=config.accounting.max_gap_s)
    try:
        a, _ = local_day_bounds(args.from_, tz)
        _, b = local_day_bounds(args.to, tz)
        queries = Queries(store, tz)
        cov = coverage(queries, a, b)
        if args.resolution == "raw" and cov.pruned is not None:
            why = describe_pruned(cov, config.store.raw_retention_days, tz)
            if cov.raw is None:  # nothing to write: say so, and no empty file
                print(f"homegrid: error: nothing exported: {why}", file=sys.stderr)
                return EXIT_PRUNED
            print(f"homegrid: warning: exporting the raw readings from "
                  f"{local_time_text(cov.raw[0], tz.key)} only: {why}", file=sys.stderr)
        if cov.raw is None and cov.rollups is None:
            print(f"homegrid: no readings stored from {args.from_} to {args.to}", file=sys.stderr)
        lo, hi = queries.stored(a, b)
        bar = progress(total=-(-(hi - lo) // DAY_MS), desc="export", unit="day")

        def days(chunks: Iterator[ReadingFrame]) -> Iterator[ReadingFrame]:
            for chunk in chunks:
                yield chunk
                bar.update(1)

        def write(out: TextIO) -> int:
            if args.resolution == "raw":
                return write_csv(days(queries.readings(a, b)), out, tz=tz)
            rows = 0
            for i, text in enumerate(rollup_csv_chunks(queries, args.resolution, a, b)):
                out.write(text)
                rows += text.count("\n")
                if i:  # after the header
                    bar.update(CHUNK_MS[args.resolution] // DAY_MS)
            return rows - 1

        with bar:
            if args.output:
                try:
                    with open(args.output, "w", encoding="utf-8", newline="") as out:
                        n = write(out)
                except OSError as exc:  # name the output, not the data dir, in what main() prints
                    exc.filename = exc.filename or args.output
                    raise
                what = "readings" if args.resolution == "raw" else f"{args.resolution} rollups"
                print(f"exported {n} {what} to {args.output}", file=sys.stderr)
            else:
                write(sys.stdout)
    finally:
        store.close()
    return 0


def _print_report(rep: dict[str, Any]) -> None:
    print(f"Energy report {rep['from']} to {rep['to']} ({rep['timezone']}), "
          f"{rep['days_with_data']} of {rep['days']} days with data")
    print("\nEnergy [kWh]")
    for k, v in rep["energy_wh"].items():
        print(f"  {k:<20}{v / 1000:>12.3f}")
    print("\nFlows [kWh]")
    for k, v in rep["flows_wh"].items():
        print(f"  {k:<20}{v / 1000:>12.3f}")
    print("\nCar charged from [kWh] (unknown: no source can be named for it; the parts add up to the car's energy)")
    for k, v in rep["ev_sources_wh"].items():
        print(f"  {k:<20}{v / 1000:>12.3f}")
    print(f"  {'= the car':<20}{rep['energy_wh']['ev'] / 1000:>12.3f}")
    spp = rep["self_powered_percent"]
    print(f"\nSelf-powered: {'-' if spp is None else f'{spp:.1f} %'}")


def cmd_report(args: argparse.Namespace) -> int:
    from homegrid.hub.queries import Queries
    from homegrid.hub.service import open_store

    config, data_dir = _setup(args)
    if args.to < args.from_:
        raise UsageError("--to is before --from")
    store = open_store(data_dir, max_gap_s=config.accounting.max_gap_s)
    rep = Queries(store, config.site.tz).report(args.from_, args.to)
    store.close()
    if args.json:
        from homegrid.strictjson import dumps

        print(dumps(rep, indent=2))
    else:
        _print_report(rep)
    return 0


def _tariff_file(name: str) -> Tariff:
    """``--tariff``'s file read (homegrid TOML or URDB JSON), its warnings printed; TariffError when it is none."""
    from homegrid.tariffs.readers import load_tariff

    try:
        text = Path(name).expanduser().read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"--tariff {name}: cannot read it ({exc})") from None
    tariff, warnings = load_tariff(text)
    for warning in warnings:
        print(f"tariff {name}: {warning}", file=sys.stderr)
    return tariff


def _bill_tariff(args: argparse.Namespace, config: Config, data_dir: Path) -> Tariff:
    """The tariff of ``homegrid bill``: ``--tariff``, else the hub's (the owner's upload, else the config's), with
    ``--export`` and ``--sell-price``, and the dynamic prices of ``--prices`` or the config's (not with ``--tariff``:
    the file alone, as without the config's export overrides), with ``--price-adder`` and ``--price-percent``."""
    import dataclasses

    from homegrid.hub.tariff import price_terms, read_prices, site_prices, with_dynamic_prices
    from homegrid.hub.tariff_file import SiteTariff
    from homegrid.tariffs import ExportRule, ExportTerms, TariffError

    plain = config.model_copy(update={"tariff": config.tariff.model_copy(update={"prices": ""})})
    try:
        if args.tariff:
            tariff = _tariff_file(args.tariff)
        else:  # the hub's: the owner's upload (the app's System view) if any, else the config's [tariff]
            site = SiteTariff.from_config(plain, data_dir)  # its dynamic prices are put on below
            configured = site.current()
            about = site.describe()
            if configured is None:
                if about["error"]:
                    raise UsageError(f"tariff: {about['error']}")
                raise UsageError("no tariff: name one with --tariff FILE or in the config's [tariff] file, or "
                                 "upload one from the app's System view")
            if about["origin"] == "upload":
                up = about["uploaded"]
                print(f"tariff: {configured.name!r}, uploaded {up['at']} by {up['by']} from the app (it replaces "
                      "the config's [tariff] file)", file=sys.stderr)
            tariff = configured
        if args.export or args.sell_price is not None:
            own = tariff.export
            tariff = tariff.with_export(ExportTerms(
                ExportRule(args.export) if args.export else own.rule,
                args.sell_price if args.sell_price is not None else own.sell_price,
                own.true_up_month, own.true_up_rate))
    except TariffError as exc:
        raise UsageError(f"{args.tariff or 'tariff'}: {exc}") from None
    configured_terms = price_terms(config)
    terms = dataclasses.replace(
        configured_terms,
        adder=configured_terms.adder if args.price_adder is None else args.price_adder,
        percent=configured_terms.percent if args.price_percent is None else args.price_percent)
    export_key = "--export" if args.export or args.tariff else "[tariff] export"
    try:
        if args.prices:
            given = read_prices(Path(args.prices).expanduser(), terms, what="--prices")
            return with_dynamic_prices(tariff, given, export_key=export_key, prices_key="--prices")
        configured_prices = None if args.tariff else site_prices(config, data_dir)  # --tariff: the file alone
        if configured_prices is None:
            if args.price_adder is not None or args.price_percent is not None:
                raise UsageError("--price-adder and --price-percent apply to dynamic prices: give --prices FILE"
                                 + ("" if args.tariff else " or set [tariff] prices"))
            return tariff
        configured_prices = dataclasses.replace(configured_prices, adder=terms.adder, percent=terms.percent)
        return with_dynamic_prices(tariff, configured_prices, export_key=export_key)
    except TariffError as exc:
        raise UsageError(str(exc)) from None


def _print_bill(bill: dict[str, Any]) -> None:
    cur = bill["currency"]
    print(f"Bill {bill['from'][:10]} to {bill['to'][:10]} ({bill['timezone']}): {bill['tariff']}, "
          f"export {bill['export_rule']}, in {cur}")
    head = ("month", "fixed", "energy", "demand", "minimum", "credit", "taxes", "total", "kWh in", "kWh out")
    print("  " + "".join(f"{h:>10}" for h in head))
    for m in bill["months"]:
        row = [m[k] for k in ("fixed", "energy", "demand", "minimum", "export_credit", "taxes", "total")]
        print(f"  {m['month']:>10}" + "".join(f"{v:>10.2f}" for v in row)
              + f"{m['import_wh'] / 1000:>10.1f}{m['export_wh'] / 1000:>10.1f}"
              + (f"  ({m['missing_hours']} h without data)" if m["missing_hours"] else "")
              + (f"  projected {m['projected_total']:.2f}" if "projected_total" in m else ""))
    print(f"  {'total':>10}{'':>60}{bill['total']:>10.2f}")
    if bill["missing_hours"]:
        print(f"\n{len(bill['missing_hours'])} hours have no stored data and are not priced "
              f"(first {bill['missing_hours'][0]}; --json lists them)")
    if "savings" in bill:
        sv, cf = bill["savings"], bill["counterfactuals"]
        print(f"\nWithout solar or battery: {cf['grid_only']['total']:.2f}; with solar, no battery: "
              f"{cf['solar_only']['total']:.2f}; actual: {cf['actual']['total']:.2f}")
        print(f"The sun saved {sv['solar']:.2f} {cur}, the battery {sv['battery']:.2f} {cur}.")
        car = sv["car"]
        if car["energy_wh"] > 0 and car["saved"] is not None:
            print(f"The car's {car['energy_wh'] / 1000:.1f} kWh cost {car['cost']:.2f} {cur} "
                  f"({car['cost_at_average_price']:.2f} at the average import price).")


def cmd_bill(args: argparse.Namespace) -> int:
    from homegrid.hub.bill import site_bill
    from homegrid.hub.queries import day_span
    from homegrid.hub.service import open_store
    from homegrid.tariffs import TariffError

    config, data_dir = _setup(args)
    if args.to < args.from_:
        raise UsageError("--to is before --from")
    tariff = _bill_tariff(args, config, data_dir)
    start_ms, end_ms = day_span(args.from_, args.to, config.site.tz)
    store = open_store(data_dir, max_gap_s=config.accounting.max_gap_s)
    try:
        bill = site_bill(store, tariff, config.site.tz, start_ms, end_ms)
    except TariffError as exc:
        raise UsageError(str(exc)) from None
    finally:
        store.close()
    if args.json:
        from homegrid.strictjson import dumps

        print(dumps(bill, indent=2))
    else:
        _print_bill(bill)
    return 0


#: the policies of ``homegrid backtest``
BACKTEST_POLICIES = ("self-consumption", "time-based", "time-based-grid", "perfect", "mpc")


def _backtest_tariff(args: argparse.Namespace) -> Tariff:
    """``--tariff`` read, or ``--prices`` as a tariff of dynamic prices (net billing; export earns the file's
    export price, else 0)."""
    from homegrid.hub.tariff import read_prices, with_dynamic_prices
    from homegrid.tariffs import TariffError
    from homegrid.tariffs.readers import load_tariff

    try:
        if args.tariff:
            tariff = _tariff_file(args.tariff)
            return tariff
        prices = read_prices(Path(args.prices).expanduser(), what="--prices")
        sell = "" if prices.export_price is not None else "sell_price = 0.0\n"
        flat, _ = load_tariff(f'name = "prices {Path(args.prices).name}"\ncurrency = {json.dumps(args.currency)}\n'
                              f'[energy]\nprice = 0.0\n[export]\nrule = "net-billing"\n{sell}')
        return with_dynamic_prices(flat, prices, prices_key="--prices")
    except TariffError as exc:  # the price file's messages name it already
        raise UsageError(f"--tariff {args.tariff}: {exc}" if args.tariff else str(exc)) from None


def _print_backtest(out: dict[str, Any]) -> None:
    cur = out["currency"]
    print(f"Backtest {out['from'][:16]} to {out['to'][:16]} ({out['timezone']}), {out['steps']} steps of "
          f"{out['step_min']:g} min; battery {out['battery']['kwh']:g} kWh / {out['battery']['kw']:g} kW, reserve "
          f"{out['battery']['reserve_percent']:g} %, round trip {out['battery']['round_trip_percent']:g} %; "
          f"{out['tariff']}")
    rows = [out, *out.get("compare", {}).values()]
    head = ("policy", f"bill {cur}", "end value", "net", "import kWh", "export kWh", "cycles", "car met", "solve p50",
            "p99 ms")
    print("  " + f"{head[0]:<18}" + "".join(f"{h:>11}" for h in head[1:]))
    for r in rows:
        car = f"{r['car']['met']}/{r['car']['windows']}"
        print(f"  {r['policy']:<18}{r['bill']:>11.2f}{r['end_value']:>11.2f}{r['net']:>11.2f}"
              f"{r['grid_import_wh'] / 1000:>11.1f}{r['grid_export_wh'] / 1000:>11.1f}{r['battery_cycles']:>11.1f}"
              f"{car:>11}{r['solve_ms']['p50']:>11.2f}{r['solve_ms']['p99']:>11.2f}")
    if out.get("share_of_perfect_saving") is not None:
        print(f"\nShare of the perfect-foresight saving captured: {out['share_of_perfect_saving'] * 100:.1f} %")
    for note in out["notes"]:
        print(f"note: {note}")


def cmd_backtest(args: argparse.Namespace) -> int:
    import dataclasses

    import numpy as np

    from homegrid.planner import simulate as sim
    from homegrid.planner.backtest import BacktestError, SiteForecast, battery_spec, period_from_readings, summary
    from homegrid.planner.optimise import plan
    from homegrid.readings.csvfile import read_csv
    from homegrid.readings.problems import BadRow
    from homegrid.timezones import local_isoformat

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    site = load_config(args.config).site
    timezone = args.timezone or site.timezone
    latitude = site.latitude if args.latitude is None else args.latitude
    longitude = site.longitude if args.longitude is None else args.longitude
    if not (-90 <= latitude <= 90 and -180 <= longitude <= 180):
        raise UsageError(f"--latitude {latitude:g} --longitude {longitude:g}: not a place on Earth")
    try:
        _zone_check(timezone)
    except ValueError as exc:
        raise UsageError(f"--timezone: {exc}") from None
    tariff = _backtest_tariff(args)
    try:
        frame = read_csv(Path(args.data).expanduser())
    except BadRow as exc:
        raise UsageError(f"--data: {exc}") from None
    except OSError as exc:
        raise UsageError(f"--data {args.data}: cannot read it ({exc.strerror or exc})") from None
    if args.replan_min is None:
        args.replan_min = args.step_min
    for name in ("battery_kwh", "battery_kw", "reserve_percent", "step_min", "ev_extend_h", "horizon_h", "replan_min",
                 "wear_cost"):
        value = getattr(args, name)
        if not math.isfinite(value) or value < 0 or (name in ("step_min", "horizon_h", "replan_min") and value == 0):
            raise UsageError(f"--{name.replace('_', '-')}: must be a number > 0, got {value:g}")
    if args.reserve_percent > 100:
        raise UsageError(f"--reserve-percent: must be at most 100, got {args.reserve_percent:g}")
    step_ms = round(args.step_min * 60_000)
    try:
        spec = battery_spec(args.battery_kwh, args.battery_kw, args.round_trip)
        prepared = period_from_readings(frame, tariff, timezone, step_ms=step_ms,
                                        reserve_percent=args.reserve_percent, ev_extend_h=args.ev_extend_h)
    except BacktestError as exc:
        raise UsageError(str(exc)) from None
    period = prepared.period
    notes = [f"{k}: {v} steps without readings, interpolated" for k, v in prepared.filled_steps.items() if v]

    def policy_of(name: str) -> sim.Policy:
        if name == "self-consumption":
            return sim.self_consumption()
        if name in ("time-based", "time-based-grid"):
            return sim.time_based(period, spec, grid_charge=name == "time-based-grid")
        if name == "perfect":
            return sim.perfect(period, spec, plan)
        horizon = max(round(args.horizon_h * 60 / args.step_min), 2)
        every = max(round(args.replan_min / args.step_min), 1)
        forecast: sim.Forecast = (sim.persistence_forecast if args.forecast == "persistence"
                                  else sim.perfect_forecast(period) if args.forecast == "perfect"
                                  else SiteForecast(timezone, latitude, longitude, step_ms))
        planned = dataclasses.replace(spec, wear_cost_per_kwh=args.wear_cost)
        return sim.mpc(period, planned, plan, forecast, horizon_steps=horizon, every_steps=every)

    started = time.perf_counter()
    policy = policy_of(args.policy)
    out = summary(sim.simulate(period, spec, policy), period, spec, tariff)
    out["run_s"] = round(time.perf_counter() - started, 3)
    if args.policy == "perfect" and not policy.exact:
        notes.append("perfect: several plug-in windows of the car, solved in rolling two-day problems with perfect "
                      "knowledge (near the optimum, not provably it)")
    if args.compare:
        compare: dict[str, Any] = {}
        none_spec = battery_spec(0.0, 0.0, 1.0)
        compare["no-battery"] = summary(sim.simulate(period, none_spec, sim.no_battery()), period, none_spec, tariff)
        if args.policy != "perfect":
            best = sim.perfect(period, spec, plan)
            compare["perfect"] = summary(sim.simulate(period, spec, best), period, spec, tariff)
            if not best.exact:
                notes.append("perfect: several plug-in windows of the car, solved in rolling two-day problems with "
                             "perfect knowledge (near the optimum, not provably it)")
        perfect_net = (out if args.policy == "perfect" else compare["perfect"])["net"]
        saving = compare["no-battery"]["net"] - perfect_net
        out["compare"] = compare
        out["share_of_perfect_saving"] = (round((compare["no-battery"]["net"] - out["net"]) / saving, 4)
                                          if saving > 1e-9 else None)
        if saving <= 1e-9:
            notes.append("perfect foresight saves nothing over no battery here: no share to give")
    ends = local_isoformat(np.array([period.t_ms[0], period.t_ms[-1] + period.step_ms]), timezone)
    out.update({
        "from": ends[0], "to": ends[1], "timezone": timezone, "steps": len(period), "step_min": args.step_min,
        "tariff": tariff.name,
        "battery": {"kwh": args.battery_kwh, "kw": args.battery_kw, "reserve_percent": args.reserve_percent,
                    "round_trip_percent": round(spec.charge_efficiency * spec.discharge_efficiency * 100, 3)},
        "car_windows": len(period.windows),
        "notes": notes,
    })
    if args.json:
        from homegrid.strictjson import dumps

        print(dumps(out, indent=2))
    else:
        _print_backtest(out)
    return 0


def _zone_check(timezone: str) -> None:
    """Raise ValueError naming ``timezone`` when it is no IANA zone."""
    import zoneinfo

    try:
        zoneinfo.ZoneInfo(timezone)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"{timezone!r} is not an IANA time zone (e.g. Europe/Paris)") from None


def cmd_prices(args: argparse.Namespace) -> int:
    from homegrid.devices.prices import PriceFeedError
    from homegrid.hub.price_cache import LIVE_SOURCES, cache_path, fetch_into_cache, live_source
    from homegrid.hub.queries import day_span
    from homegrid.readings.prices import PriceSeries
    from homegrid.readings.problems import BadRow
    from homegrid.timezones import local_isoformat

    config, data_dir = _setup(args)
    if args.to < args.from_:
        raise UsageError("--to is before --from")
    name = (args.source or config.tariff.prices).strip().lower()
    if name not in LIVE_SOURCES:
        raise UsageError(f"no live price source: [tariff] prices is {config.tariff.prices!r}; set it to one of "
                         f"{', '.join(LIVE_SOURCES)} or give --source")
    tz = config.site.tz
    start_ms, end_ms = day_span(args.from_, args.to, tz)
    source, path = live_source(name), cache_path(data_dir, name)

    def local(*ms: int) -> list[str]:
        import numpy as np

        return local_isoformat(np.array(ms, dtype=np.int64), tz.key)

    def progress(a: int, b: int, series: PriceSeries) -> None:
        if not args.json:
            first, last = local(int(series.t_ms[0]), int(series.end_ms[-1]))
            print(f"{source.name}: {len(series)} prices from {first} to {last}")

    try:
        update = asyncio.run(fetch_into_cache(source, path, start_ms, end_ms, tz.key, progress))
    except (PriceFeedError, BadRow) as exc:
        print(f"homegrid: error: {exc}", file=sys.stderr)
        print(f"homegrid: {path} keeps what was fetched before the error", file=sys.stderr)
        return 1
    gaps = [(g.start_ms, g.end_ms) for g in update.gaps]
    if args.json:
        from homegrid.strictjson import dumps

        print(dumps({"source": name, "cache": str(path), "from": local(start_ms)[0], "to": local(end_ms)[0],
                     "fetched": update.fetched, "cached": update.cached,
                     "gaps": [{"from": a, "to": b, "hours": round((bb - aa) / 3_600_000, 2)}
                              for (aa, bb), (a, b) in zip(gaps, (local(*g) for g in gaps), strict=True)]},
                    indent=2))
        return 0
    print(f"{update.fetched} prices fetched; {path} holds {update.cached}")
    if not gaps:
        print("no gaps")
    else:
        print(f"{len(gaps)} spans without prices:")
        for aa, bb in gaps[:20]:
            a, b = local(aa, bb)
            print(f"  {a} to {b} ({(bb - aa) / 3_600_000:g} h)")
        if len(gaps) > 20:
            print(f"  ... and {len(gaps) - 20} more (--json lists them)")
    return 0


def cmd_outages(args: argparse.Namespace) -> int:
    from homegrid.api.app import default_outage_dates
    from homegrid.hub.parts import outage_tracker_for
    from homegrid.hub.service import open_store
    from homegrid.timezones import local_day_bounds

    config, data_dir = _setup(args)
    first, last = default_outage_dates(args.from_, args.to, config.site.tz)
    if last < first:
        raise UsageError("--to is before --from")
    store = open_store(data_dir, max_gap_s=config.accounting.max_gap_s)
    try:
        rep = outage_tracker_for(config, store, writer=False).report(local_day_bounds(first, config.site.tz)[0],
                                                   local_day_bounds(last, config.site.tz)[1])
    finally:
        store.close()
    rep = {"from": first.isoformat(), "to": last.isoformat(), **rep}
    if args.json:
        from homegrid.strictjson import dumps

        print(dumps(rep, indent=2))
        return 0
    for month in rep["months"]:
        print(f"{month['month']}: {month['sentence']}")
    if rep["events"]:
        print()
        print(f"{'start':<26} {'duration':>10}  {'saved':<5} {'battery kWh':>11} {'solar kWh':>9} {'min SoC':>7}")
    for e in rep["events"]:
        end = "ongoing" if e["end"] is None else _duration(e["duration_s"])
        soc = "" if e.get("min_soc") is None else f"{e['min_soc']:.0f} %"
        print(f"{e['start']:<26} {end:>10}  {'yes' if e['saved'] else 'no':<5} {e['battery_wh'] / 1000:>11.2f} "
              f"{e['solar_wh'] / 1000:>9.2f} {soc:>7}")
    if not rep["events"]:
        print(rep["sentence"])
    if rep["disturbances"]:
        print()
        print(f"grid disturbances (logged by the gateway, the home stayed on the grid): {len(rep['disturbances'])}")
        for d in rep["disturbances"]:
            magnitude = "" if d.get("value") is None else f" {d['value']:g} {d['unit']}"
            print(f"  {d['time']:<26} {d['kind'].replace('_', ' ')}{magnitude}")
    return 0


def _duration(seconds: float) -> str:
    s = round(seconds)
    if s < 60:
        return f"{s} s"
    h, m = divmod(s // 60, 60)
    return f"{h} h {m:02d} min" if h else f"{m} min {s % 60:02d} s"


def cmd_quarantine_future(args: argparse.Namespace) -> int:
    from homegrid.hub.parts import outage_tracker_for, recorder_for
    from homegrid.hub.service import open_store
    from homegrid.readings import to_ms
    from homegrid.timezones import DAY_MS, parse_iso_time

    config, data_dir = _setup(args)
    try:
        after = parse_iso_time(args.after) if args.after else datetime.now(UTC)
    except ValueError as exc:
        raise UsageError(f"--after {exc}") from None
    after_ms = to_ms(after)
    _writer(data_dir, "quarantine-future")
    store = open_store(data_dir, max_gap_s=config.accounting.max_gap_s)
    try:
        recorder = recorder_for(config, store)
        moved = recorder.quarantine_after(after_ms, f"stored ahead of the clock: moved at {after.isoformat()}")
        if moved is not None:
            tracker = outage_tracker_for(config, store)
            store.replace_outages(after_ms, 2**62, [])  # rebuild replaces what starts before the cut
            tracker.rebuild(after_ms - DAY_MS, after_ms)
    finally:
        store.close()
    if moved is None:
        print(f"no readings stored at {after.isoformat()} or later")
        return 0
    n, first, last = moved
    print(f"moved {n} readings from {_span_text(first, last)} into the "
          f"quarantine (GET /api/v1/quarantine lists them); the hub accepts readings after "
          f"{after.isoformat()} again")
    return 0


def _span_text(first_ms: int, last_ms: int) -> str:
    """``<first> to <last>``, UTC ISO 8601, for the commands' reports."""
    from homegrid.readings import from_ms

    return f"{from_ms(first_ms).isoformat()} to {from_ms(last_ms).isoformat()}"


def _hub_bases(host: str, port: int) -> list[str]:
    """The hub's addresses for links: this machine's, and its name on the LAN when it listens beyond loopback."""
    if host in ("0.0.0.0", "::", ""):
        return [f"http://127.0.0.1:{port}", f"http://{socket.gethostname()}:{port}"]
    return [f"http://{f'[{host}]' if ':' in host else host}:{port}"]


def cmd_token(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    data_dir = _data_dir(args, config)
    if args.renew:
        token = owner.renew(data_dir)
        print("A new owner token: every browser signed in before and every script using the old token is refused "
              "(the running hub takes the new one at once).", file=sys.stderr)
    else:
        token, created = owner.load_or_create(data_dir)
        if created:
            print(f"Made the owner's token in {owner.token_path(data_dir)}.", file=sys.stderr)
    bases = [args.url] if args.url else _hub_bases(config.server.host, config.server.port)
    print(f"token: {token}")
    for base in bases:
        print(f"sign-in link: {owner.signin_url(base, token)}")
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    from homegrid.hub.service import DB_NAME
    from homegrid.store.integrity import check_database, recovery_steps

    _, data_dir = _setup(args)
    db = data_dir / DB_NAME
    if not db.exists():
        print(f"{db}: no store yet (nothing to check)")
        return 0
    t0 = time.perf_counter()
    problems = check_database(db, full=args.full)
    what = "integrity_check" if args.full else "quick_check"
    if not problems:
        print(f"{db}: ok ({what}, {time.perf_counter() - t0:.1f} s)")
        return 0
    print(f"{db}: damaged ({what}):")
    for line in problems:
        print(f"  {line}")
    print(recovery_steps(db))
    return 1


def cmd_storm(args: argparse.Namespace) -> int:
    import urllib.error
    import urllib.request

    config = load_config(args.config)
    base = args.url or f"http://{config.server.host}:{config.server.port}"
    headers = {"Accept": "application/json"}
    try:
        headers["Authorization"] = f"Bearer {owner.read_token(resolve_data_dir(config, args.data_dir))}"
    except owner.OwnerKeyError:
        if args.mode != "status":  # a change needs the owner's token; a look needs it beyond loopback only
            raise
    if args.mode == "status":
        request = urllib.request.Request(f"{base}/api/v1/storm", headers=headers)
    else:
        body = {"mode": args.mode, **({"until": args.until} if args.until else {})}
        request = urllib.request.Request(f"{base}/api/v1/storm", data=json.dumps(body).encode(), method="POST",
                                         headers={**headers, "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=10) as reply:
            status = json.load(reply)
    except urllib.error.HTTPError as exc:
        raise UsageError(f"the hub refused: {exc.read().decode(errors='replace')}") from None
    except OSError as exc:
        print(f"homegrid: the hub at {base} did not answer ({exc}); is 'homegrid serve' running?", file=sys.stderr)
        return 1
    from homegrid.strictjson import dumps

    print(dumps(status, indent=2))
    return 0


def cmd_devices(args: argparse.Namespace) -> int:
    from homegrid.config import PowerwallConfig
    from homegrid.hub.devices import build_devices, build_powerwall, try_devices

    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING, stream=sys.stderr,
                        format="%(levelname)s %(name)s: %(message)s")
    if args.powerwall:
        if not args.password:
            raise UsageError("--powerwall needs --password (the gateway's customer password)")
        try:
            pw = PowerwallConfig(host=args.powerwall, email=args.email, timeout_s=args.timeout)
        except ConfigError as exc:
            raise UsageError(str(exc)) from None
        devices = [build_powerwall(pw, args.password, "UTC", None)]
    else:
        if args.password or args.email:
            raise UsageError("--password and --email go with --powerwall")
        config = load_config(args.config)
        data_dir = resolve_data_dir(config, args.data_dir)
        devices = [d for d, _ in build_devices(config, _credentials(args, config), data_dir)]
        if not devices:
            raise UsageError("no device is configured: add [powerwall], [tesla] or [[mqtt.meters]] to the config, "
                             "or give --powerwall HOST --password P")
    trials = try_devices(devices)
    if args.json:
        from homegrid.strictjson import dumps

        print(dumps([t.as_dict() for t in trials], indent=2))
    else:
        for t in trials:
            if not t.ok:
                print(f"{t.device}: FAILED after {t.seconds:.2f} s: {t.error}")
                continue
            print(f"{t.device}: ok in {t.seconds:.2f} s at {t.time}")
            for name, value in (t.readings or {}).items():
                unit = quantity(name).unit
                shown = f"{value:.1f}" if isinstance(value, float) else str(value).lower()
                print(f"  {name:<26} {shown} {unit}".rstrip())
            for what, problem in (t.problems or {}).items():
                print(f"  problem: {what}: {problem}")
    return 0 if all(t.ok for t in trials) else 1


COMMANDS = {
    "serve": cmd_serve,
    "simulate": cmd_simulate,
    "import": cmd_import,
    "export": cmd_export,
    "report": cmd_report,
    "bill": cmd_bill,
    "backtest": cmd_backtest,
    "prices": cmd_prices,
    "devices": cmd_devices,
    "outages": cmd_outages,
    "storm": cmd_storm,
    "token": cmd_token,
    "quarantine-future": cmd_quarantine_future,
    "check": cmd_check,
}


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    tune_allocator()
    try:
        return COMMANDS[args.command](args)
    except (ConfigError, UsageError) as exc:
        print(f"homegrid: error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        return 0
    except Refused as exc:
        print(f"homegrid: error: {exc}", file=sys.stderr)
        return 1
    except CannotListen as exc:
        print(f"homegrid: error: {exc}", file=sys.stderr)
        return EXIT_LISTEN
    except (sqlite3.Error, OSError) as exc:
        from homegrid.store.errors import describe

        problem = describe(exc, getattr(args, "resolved_data_dir", None) or args.data_dir or "the data dir")
        if problem is None:
            raise
        print(f"homegrid: error: {problem}", file=sys.stderr)
        return 1
    finally:
        while _HELD:
            _HELD.pop().release()


if __name__ == "__main__":
    sys.exit(main())

