"""`gridrun sim serve`: the simulator over real HTTP (uvicorn), and `running_server` for tests and benches.

Resets: uvicorn gives an ASGI app no way to drop a connection, so the server runs a subclass of its h11
protocol that puts a `gridrun.sim.drop` callable into each request's scope extensions. The app calls it
with graceful=False to abort the socket with SO_LINGER 0 (the client reads ECONNRESET, or sees the
connection closed without a response) or graceful=True to close it after what was already written (a
body shorter than its Content-Length). Without the extension (httpx.ASGITransport) the app raises
`SimulatedReset` instead.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import fcntl
import json
import logging
import os
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Iterator

import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

from runner.sim.app import create_app
from runner.sim.config import ConfigError, FaultRule, SimConfig
from runner.sim.faults import DROP_EXTENSION
from runner.sim.world import World, WorldError

_FLAGS: list[tuple[str, str, type, str]] = [
    ("--render-time", "render_time", float, "mean render time per video, seconds"),
    ("--jitter", "jitter", float, "render times vary by ± this fraction"),
    ("--time-scale", "time_scale", float, "multiply every render time (render time × it: at most a day)"),
    ("--concurrency", "concurrency", int, "videos rendering at once; the rest stay queued"),
    ("--rate-limit", "rate_limit", float, "API requests per second before 429 (0 = unlimited)"),
    ("--rate-burst", "rate_burst", int, "token bucket size for --rate-limit"),
    ("--retry-after-style", "retry_after_style", str, "how 429s give the wait: seconds|date|ms|body|all|none"),
    ("--failure-rate", "failure_rate", float, "fraction of videos that end failed"),
    ("--failure-code", "failure_code", str, "error.code of failed videos"),
    ("--error-rate", "error_rate", float, "probability of a 5xx on any call"),
    ("--reset-rate", "reset_rate", float, "probability of a connection reset on any call"),
    ("--rate-limited-rate", "rate_limited_rate", float, "probability of an injected 429 on any call"),
    ("--slow-rate", "slow_rate", float, "probability of delayed response headers"),
    ("--slow-delay", "slow_delay", float, "seconds of delay for slow responses"),
    ("--idempotency-window", "idempotency_window", float,
     "seconds a key is remembered; a later create with it makes a new video (default: for ever)"),
    ("--url-ttl", "url_ttl", float, "seconds an output URL stays valid"),
    ("--expired-status", "expired_status", int, "status of an expired output URL: 403, 404 or 410"),
    ("--balance", "balance", float, "account balance in USD (402 when exceeded)"),
    ("--cost-factor", "cost_factor", float, "multiply the metadata.cost reported for completed videos"),
    ("--cancel-charge", "cancel_charge", float,
     "fraction of its price a video cancelled while rendering is charged (0 = nothing, 1 = all)"),
    ("--seed", "seed", int, "seed for render times, failures, faults and pictures"),
    ("--api-key", "api_key", str, ("require this Bearer key, for the API and for changing the simulator (POST and "
                                   "PATCH /_sim/config, POST /_sim/reset, POST /_sim/release); default: accept any")),
    ("--max-side", "max_side", int, "long side of encoded clips, pixels"),
    ("--fps", "fps", int, "frames per second of encoded clips"),
    ("--clip-variants", "clip_variants", int, "draw pictures from this many variants (0: one per video)"),
    ("--cache-size", "cache_size", int, "encoded clips kept in memory"),
    ("--clip-bytes", "clip_bytes", int, "pad each clip's MP4 to at least this many bytes (0: as encoded)"),
]
# The knobs with no flag of their own, set in the --config file (or a manifest's `sim:`) alone.
_FILE_ONLY = ("error_statuses", "retry_after", "script")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the options of `gridrun sim serve` to `parser`."""
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8000, help="port to listen on; 0 picks a free one (default 8000)")
    parser.add_argument("--config", type=Path, metavar="KNOBS.json",
                        help="a JSON object of knobs by their names, as a manifest's sim: has them; flags override it. "
                             f"The knobs with no flag go there: {', '.join(_FILE_ONLY)} (fault rules, which --fault "
                             "adds to)")
    for flag, dest, kind, text in _FLAGS:
        parser.add_argument(flag, dest=dest, type=kind, default=None, help=text)
    parser.add_argument("--no-idempotency", dest="honour_idempotency", action="store_false", default=None,
                        help="ignore idempotency_key: every create makes and bills a new video")
    parser.add_argument("--idempotency-conflict", dest="idempotency_conflict", choices=["original", "error"], default=None,
                        help="same key, other body: return the original video, or 409")
    parser.add_argument("--no-refresh-urls", dest="refresh_urls", action="store_false", default=None,
                        help="never re-issue an expired output URL")
    parser.add_argument("--omit-output", dest="omit_output", action="store_true", default=None,
                        help="completed videos carry no output URL (OpenAI shape): bytes only at /videos/{id}/content")
    parser.add_argument("--full-size", dest="full_size", action="store_true", default=None,
                        help="encode clips at the requested size instead of scaled down")
    parser.add_argument("--fault", action="append", default=[], metavar="ROUTE:FAULT:P|nth=N[,N]",
                        help="add a fault rule, e.g. create:reset_after:0.1 or create:reset_after:nth=3 (repeatable)")
    parser.add_argument("--access-log", action="store_true", help="log every request")
    parser.add_argument("--world", type=Path, metavar="FILE.jsonl",
                        help="keep the simulated world (videos, request log, cancels) in FILE, so that a restarted "
                             "simulator finds it again; without it, the world ends with the process")


def config_from_args(args: argparse.Namespace) -> SimConfig:
    """The knobs of a `sim serve` command line: the --config file, then the flags over it.

    :raises ConfigError: an unreadable knobs file, an unknown knob or a bad value.
    """
    knobs: dict[str, Any] = {}
    if getattr(args, "config", None):
        try:
            knobs = json.loads(Path(args.config).read_text(encoding="utf-8-sig"))  # a BOM, as other files take
        except (OSError, ValueError) as exc:
            raise ConfigError(f"{args.config}: {exc}") from exc
        if not isinstance(knobs, dict):
            raise ConfigError(f"{args.config}: expected a JSON object of knobs")
    from_file = dict(knobs)
    names = [dest for _, dest, _, _ in _FLAGS] + ["honour_idempotency", "idempotency_conflict", "refresh_urls", "omit_output",
                                                    "full_size"]
    for name in names:
        value = getattr(args, name, None)
        if value is not None:
            knobs[name] = value
            from_file.pop(name, None)
    rules = [parse_fault(spec) for spec in getattr(args, "fault", None) or []]
    if rules:
        knobs["script"] = [*knobs.get("script", []), *rules]
    try:
        return SimConfig.from_dict(knobs)
    except ConfigError as exc:
        if from_file:  # the file's knobs, those no flag replaced, alone at fault: the file is named
            try:
                SimConfig.from_dict(from_file)
            except ConfigError:
                raise ConfigError(f"{args.config}: {exc}") from None
        raise


def parse_fault(spec: str) -> FaultRule:
    """A fault rule from `ROUTE:FAULT:P` or `ROUTE:FAULT:nth=N[,N...]`.

    :raises ConfigError: a malformed spec.
    """
    parts = spec.split(":")
    if len(parts) != 3:
        raise ConfigError(f"--fault {spec!r}: expected ROUTE:FAULT:P or ROUTE:FAULT:nth=N")
    route, fault, when = parts
    data: dict[str, Any] = {"route": route, "fault": fault}
    try:
        if when.startswith("nth="):
            data["nth"] = [int(n) for n in when[4:].split(",")]
        else:
            data["p"] = float(when)
    except ValueError as exc:
        raise ConfigError(f"--fault {spec!r}: {when!r} is neither a probability nor nth=N") from exc
    return FaultRule.from_dict(data)


class DroppableH11Protocol(H11Protocol):
    """uvicorn's h11 protocol, offering the app a way to drop the connection (see the module docstring)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        inner = self.app

        async def app(scope: Any, receive: Any, send: Any) -> None:
            scope["extensions"] = {**(scope.get("extensions") or {}), DROP_EXTENSION: self._drop}
            await inner(scope, receive, send)

        self.app = app

    def _drop(self, graceful: bool) -> None:
        if self.transport is None or self.transport.is_closing():
            return
        if graceful:
            self.transport.close()
            return
        sock = self.transport.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.transport.abort()


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP explicitly: asyncio sets TCP_NODELAY on accepted sockets only when proto says TCP,
    # and without it every response written in two parts waits out the client's delayed ACK (~40 ms).
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def _url(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}/v1"


GRACEFUL_SHUTDOWN = 2.0
"""Seconds a stopping server waits for the answers still pending before it cancels them and ends."""


def _server(config: SimConfig, *, access_log: bool = False, log_config: Any = None, world: World | None = None) -> uvicorn.Server:
    uv = uvicorn.Config(
        create_app(config, world=world),
        http=DroppableH11Protocol,
        loop="asyncio",  # not uvloop where it is installed (for gridrun's runs): the loop its resets are built on
        lifespan="off",
        ws="none",
        access_log=access_log,
        log_level="warning",
        log_config=log_config,
        timeout_keep_alive=30,
        # SIGTERM (`timeout`, `docker stop`, a CI cancel) or the end of `running_server` waits this long for the
        # answers still pending, then ends the server: a `slow` or `stall_body` answer may be held for up to a day
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN,
        backlog=2048,
        date_header=False,  # the app stamps its own, off the simulator's clock: uvicorn's lags up to a second
    )
    if access_log:
        # uvicorn writes a request's line at INFO, and log_level="warning" (which keeps its start-up chatter out)
        # sets its access logger to WARNING too: --access-log would log nothing
        logging.getLogger("uvicorn.access").setLevel(logging.INFO)
    errors = logging.getLogger("uvicorn.error")
    if not any(isinstance(f, _CutShort) for f in errors.filters):
        errors.addFilter(_CutShort())
    return uvicorn.Server(uv)


class _CutShort(logging.Filter):
    """Leaves out uvicorn's traceback of an answer cut short as the server stops (GRACEFUL_SHUTDOWN passed): a
    fault's held answer cancelled on purpose, no error of the app; uvicorn's own line says how many were cut."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        return not isinstance(exc, asyncio.CancelledError)


def serve(args: argparse.Namespace) -> int:
    """Run the simulator until interrupted. Prints the listening URL first. Returns the exit code."""
    try:
        config = config_from_args(args)
    except ConfigError as exc:
        print(f"gridrun sim: {exc}", file=sys.stderr)
        return 2
    with contextlib.ExitStack() as stack:
        world = None
        if args.world is not None:
            try:
                stack.enter_context(_hold(args.world))
                world = World.open(args.world)
                stack.callback(world.close)
            except (OSError, WorldError) as exc:
                print(f"gridrun sim: {exc}", file=sys.stderr)
                return 2
        try:
            server = _server(config, access_log=args.access_log, log_config=uvicorn.config.LOGGING_CONFIG, world=world)
        except WorldError as exc:
            print(f"gridrun sim: {exc}", file=sys.stderr)
            return 2
        try:
            sock = _bind(args.host, args.port)
        except (OSError, OverflowError) as exc:  # in use, not allowed; a port past 65535
            print(f"gridrun sim: cannot listen on {args.host}:{args.port}: {exc}", file=sys.stderr)
            return 2
        _say_listening(_url(sock), keyed=config.api_key is not None)
        server.run(sockets=[sock])
    return 0


def pointing_at(url: str, *, keyed: bool) -> str:
    """How to point a run at the simulator served at `url` (`keyed`: started with --api-key), for the line after the
    listening one. Served on every address (`--host 0.0.0.0`, `::`), a run on this machine reaches it at the loopback
    one, which `provider: sim` takes (it sends only to this machine)."""
    url = url.replace("//0.0.0.0:", "//127.0.0.1:", 1).replace("//[::]:", "//[::1]:", 1)
    lumenfall_key = "LUMENFALL_API_KEY set to the --api-key" if keyed else "any LUMENFALL_API_KEY"
    sim_key = " and SIM_API_KEY set to the --api-key" if keyed else ""
    return (f"gridrun sim: to run a manifest at it: `provider: lumenfall` with LUMENFALL_BASE_URL={url} and "
            f"{lumenfall_key}, or `provider: sim` with `base_url: {url}`{sim_key}; a run's polls follow this "
            "simulator's render time")


def _say_listening(url: str, *, keyed: bool = False) -> None:
    """The listening line, then how to point a run at it (`pointing_at`), on standard output; where that cannot be
    written (closed by the launcher, `>&-`; a full disk, `>/dev/full`), on standard error instead, and the simulator
    serves all the same: the lines are a courtesy, serving is the command's work."""
    line = f"gridrun sim: listening on {url}"
    how = pointing_at(url, keyed=keyed)
    try:
        print(f"{line}\n{how}", flush=True)
        return
    except OSError as exc:
        reason = exc.strerror or str(exc)
    with contextlib.suppress(OSError, ValueError):  # what is still buffered for it goes nowhere, not into an error at exit
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    with contextlib.suppress(OSError, ValueError):
        print(f"{line} (standard output could not be written: {reason})\n{how}", file=sys.stderr, flush=True)


@contextlib.contextmanager
def _hold(path: Path) -> Iterator[None]:
    """Hold `path`'s world for this process: a second simulator writing it would make ids twice.

    :raises OSError: another process holds it, or the lock file cannot be made.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_name(path.name + ".lock"), "a", encoding="utf-8") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise OSError(f"{path}: another simulator keeps this world; stop it first") from None
        yield


@contextlib.contextmanager
def running_server(
    config: SimConfig | None = None,
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    process: bool = False,
    cpus: set[int] | None = None,
    startup_timeout: float = 20.0,
) -> Iterator[str]:
    """Serve the simulator on `host`:`port` (0: a free port) while the block runs; yields the base URL
    (`http://127.0.0.1:PORT/v1`). In a thread of this process by default; with process=True in a child
    process (`python -m runner.sim serve`), pinned to `cpus` when given (Linux), so that it has cores of
    its own. Stops only what it started.

    :raises RuntimeError: the server did not start within `startup_timeout` seconds.
    """
    config = config or SimConfig()
    if process:
        with _child(config, host, port, startup_timeout, cpus) as url:
            yield url
        return
    sock = _bind(host, port)
    server = _server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="gridrun-sim", daemon=True)
    thread.start()
    deadline = time.monotonic() + startup_timeout
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            sock.close()
            raise RuntimeError("gridrun sim: the server did not start")
        time.sleep(0.01)
    try:
        yield _url(sock)
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


@contextlib.contextmanager
def _child(config: SimConfig, host: str, port: int, startup_timeout: float, cpus: set[int] | None) -> Iterator[str]:
    with _knobs_file(config.to_dict()) as knobs:
        cmd = [sys.executable, "-m", "runner.sim", "serve", "--host", host, "--port", str(port), "--config", knobs]
        pin = (lambda: os.sched_setaffinity(0, cpus)) if cpus and hasattr(os, "sched_setaffinity") else None
        with child_server(cmd, startup_timeout=startup_timeout, preexec_fn=pin) as (url, _pid):
            yield url


@contextlib.contextmanager
def child_server(
    cmd: list[str], *, startup_timeout: float = 20.0, preexec_fn: Any = None
) -> Iterator[tuple[str, int]]:
    """Run `cmd`, a process that prints `... listening on URL` once it serves; yield (URL, pid) and stop
    it (terminate, then kill) when the block ends.

    :raises RuntimeError: it did not announce a URL within `startup_timeout` seconds.
    """
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    child = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, encoding="utf-8", errors="replace", env=env,
                             preexec_fn=preexec_fn)
    try:
        yield _await_announcement(child, startup_timeout), child.pid
    finally:
        child.terminate()
        try:
            child.wait(timeout=10)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()
        if child.stdout is not None:
            child.stdout.close()


def _await_announcement(child: subprocess.Popen[str], timeout: float) -> str:
    found: list[str] = []

    def read() -> None:
        assert child.stdout is not None
        for line in child.stdout:
            if "listening on " in line:
                found.append(line.rsplit("listening on ", 1)[1].strip())
                return

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    reader.join(timeout)
    if not found:
        child.kill()
        child.wait()
        raise RuntimeError(f"gridrun sim: the server did not start (exit code {child.returncode})")
    return found[0]


@contextlib.contextmanager
def _knobs_file(knobs: dict[str, Any]) -> Iterator[str]:
    fd, path = tempfile.mkstemp(prefix="gridrun-sim-", suffix=".json")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(knobs, f)
        yield path
    finally:
        with contextlib.suppress(OSError):
            os.unlink(path)
