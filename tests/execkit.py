"""Helpers for executor tests: small manifests on the in-process simulator, and checks of what they left."""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml

from runner import api
from runner.providers import get_provider

# One job on the built-in simulator, of a manifest named "wk", its video "fox.mp4": for tests of what commands do
# over a project's runs, where what the job is does not matter.
ONE_JOB_MANIFEST = """\
version: 1
name: wk
provider: sim
model: pixverse-v5.6
params:
  prompt: "a fox"
  quality: 360p
  duration: 5
output: "fox.mp4"
sim:
  render_time: 0.05
"""
# Two jobs of the same, "anime.mp4" and "clay.mp4"
TWO_JOB_MANIFEST = """\
version: 1
name: wk
provider: sim
model: pixverse-v5.6
params:
  prompt: "a fox, {{ style }} style"
  quality: 360p
  duration: 5
matrix:
  style: [anime, clay]
output: "{{ style }}.mp4"
sim:
  render_time: 0.05
"""


def write_manifest(tmp: Path, *, n_seeds: int = 3, styles: tuple[str, ...] = ("anime", "clay"), sim: dict[str, Any] | None = None,
                   run: dict[str, Any] | None = None, name: str = "t", provider: str = "sim", base_url: str | None = None,
                   extra: dict[str, Any] | None = None) -> Path:
    doc: dict[str, Any] = {
        "version": 1,
        "name": name,
        "provider": provider,
        "model": "pixverse-v5.6",
        "params": {"prompt": "a fox, {{ style }} style", "quality": "360p", "duration": 5},
        "matrix": {"style": list(styles), "seed": {"range": [1, n_seeds]}},
        "output": "{{ style }}/seed-{{ seed }}.mp4",
        "run": {"concurrency": 4, "retries": 3, **(run or {})},
        "sim": {"render_time": 0.2, "jitter": 0.2, "concurrency": 4, **(sim or {})},
    }
    if base_url:
        doc["base_url"] = base_url
    doc.update(extra or {})
    path = tmp / f"{name}.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def sim_provider(manifest: Path) -> Any:
    m = api.load(manifest)
    return get_provider("sim", sim_config=m.data.get("sim"))


def stats(provider: Any) -> dict[str, Any]:
    return provider.app.state.sim.stats()


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def check_outputs(manifest: Path) -> list[str]:
    """Every done job's video is on disk with the SHA-256 its sidecar names; returns the done keys."""
    snap = api.status(manifest)
    done = []
    for job in snap.jobs:
        if job.state != "done":
            continue
        video = Path(job.output_path)
        side = json.loads(video.with_suffix(".json").read_text())
        assert side["sha256"] == job.sha256 == sha256(video), job.key
        assert side["key"] == job.key and side["hash"] == job.hash
        assert "api_key" not in json.dumps(side).lower()
        done.append(job.key)
    return done


def ran_on_sim(tmp_path: Path, monkeypatch: Any, *, n_seeds: int = 2) -> tuple[Path, Any]:
    """A manifest of 2 × `n_seeds` jobs run to the end on its simulator (counted by `stats`)."""
    m = write_manifest(tmp_path, n_seeds=n_seeds)
    prov = sim_provider(m)
    monkeypatch.setattr(api, "_provider", lambda p: prov)
    assert api.run(m, report=False).exit_code == 0
    assert stats(prov)["creates"] == 2 * n_seeds
    return m, prov


def lose_state(root: Path) -> Path:
    """Remove state.db and the files SQLite keeps beside it, as a wiped disk leaves the state folder."""
    db = root / ".gridrun" / "state.db"
    for name in ("state.db", "state.db-wal", "state.db-shm"):
        (db.parent / name).unlink(missing_ok=True)
    return db


def wait_for(pred: Callable[[], bool], timeout: float = 60.0) -> None:
    """Wait until `pred()` holds (polled every 50 ms); fail after `timeout` s."""
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(0.05)


def in_flight(m: Path) -> int:
    """The jobs of manifest `m` at the provider (submitted or running) as its state says; 0 while it has none."""
    try:
        c = api.status(m).counts
    except Exception:
        return 0
    return c["submitted"] + c["running"]


@contextmanager
def running(m: Path, *, flying: int) -> Iterator[None]:
    """`api.run(m)` going on in a thread, its lock held, until `flying` of its jobs are in flight; when the block
    ends, the run is stopped, leaving them in flight (detached), and joined."""
    stop, detach = threading.Event(), threading.Event()
    ran = threading.Thread(target=api.run, args=(m,), kwargs={"report": False, "stop": stop, "detach": detach})
    ran.start()
    try:
        wait_for(lambda: (m.parent / ".gridrun" / "state.db").exists() and in_flight(m) == flying)
        yield
    finally:
        stop.set()
        detach.set()
        ran.join()


def quick_backoff(monkeypatch: Any, factor: float = 0.1) -> None:
    """The executor's backoffs between tries of a request (a lookup in the provider's log, a download, a poll)
    cut to `factor` of their length, for tests of what is sent and how often, not of when; a wait the provider
    asks for (Retry-After) is kept as it is."""
    from runner import executor, pacing

    def backoff(attempt: int, retry_after: float | None, *, first: float = 0.25, most: float = 30.0) -> float:
        if retry_after is not None:
            return pacing.backoff(attempt, retry_after)
        return pacing.backoff(attempt, None, first=first * factor, most=most * factor)

    monkeypatch.setattr(executor, "backoff", backoff)


@contextmanager
def served(app: Any) -> Iterator[str]:
    """The ASGI `app` on 127.0.0.1 in a thread of this process while the block runs; yields its origin."""
    import socket
    import threading

    import uvicorn

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the test server did not start"
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


class Unmarked:
    """An ASGI app (a simulator) with the simulator's mark taken off every answer: a provider, as far as a run can
    tell (a test double: nothing here talks to a provider)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        from runner.providers.base import SIMULATOR_HEADER

        async def unmarked(message: Any) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [(k, v) for k, v in message.get("headers", ())
                                      if k.lower() != SIMULATOR_HEADER.lower().encode()]
            await send(message)

        await self.app(scope, receive, unmarked)
