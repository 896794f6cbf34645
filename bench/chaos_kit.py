"""Kill -9 a `gridrun run` at random moments against `gridrun sim serve` in another process (or against the
built-in simulator inside the killed process, which keeps its world in the state folder), resume each time,
and count what the simulator was paid for. Used by tests/test_crash.py and bench/chaos.py."""

from __future__ import annotations

import contextlib
import json
import os
import random
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import yaml

from runner.providers import SIM_WORLD
from runner.sim.config import SimConfig
from runner.sim.serve import running_server

CRASH_POINTS = ("after-submit", "before-submit", "after-download")


@dataclass
class ChaosResult:
    kills: int = 0
    runs: int = 0
    finished_early: int = 0
    crash_points: dict[str, int] = field(default_factory=dict)
    stats: dict[str, Any] = field(default_factory=dict)
    final_exit: int | None = None
    jobs: int = 0
    done: int = 0
    lost_outputs: int = 0
    seconds: float = 0.0
    recorded_spent_micros: int = 0  # what gridrun's state says every run of the manifest paid


def write_manifest(folder: Path, base_url: str | None, *, styles: int, seeds: int, concurrency: int,
                   sim: dict[str, Any] | None = None) -> Path:
    doc: dict[str, Any] = {
        "version": 1,
        "name": "chaos",
        "provider": "sim",
        **({"base_url": base_url} if base_url else {}),
        "model": "pixverse-v5.6",
        "params": {"prompt": "a fox number {{ subject }}", "quality": "360p", "duration": 5},
        "matrix": {"subject": [f"s{i}" for i in range(styles)], "seed": {"range": [1, seeds]}},
        "output": "{{ subject }}/seed-{{ seed }}.mp4",
        "run": {"concurrency": concurrency, "retries": 3},
        "sim": sim or {"render_time": 0.4, "time_scale": 1.0},
    }
    path = folder / "chaos.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


# A local simulator answers at once: a short request timeout keeps short what a resumed run waits, at a
# provider that ignores keys, before its request log may prove a create never arrived (timeout + LOG_SETTLE).
REQUEST_TIMEOUT = "5"


def _run(manifest: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "runner.cli", "run", str(manifest), "--request-timeout", REQUEST_TIMEOUT],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, cwd=manifest.parent,
    )


def chaos(folder: Path, *, kills: int, honour: bool, seed: int = 0, styles: int = 4, seeds: int = 5,
          concurrency: int = 5, render_time: float = 0.8, in_process: bool = False) -> ChaosResult:
    """Run the chaos loop; returns what it counted. Starts and stops its own simulator process, unless
    `in_process`: then each run holds the simulator, and the stats come from the world file it leaves."""
    rnd = random.Random(seed)
    res = ChaosResult()
    t0 = time.monotonic()
    knobs = {"render_time": render_time, "jitter": 0.5, "concurrency": concurrency, "honour_idempotency": honour, "seed": seed}
    config = SimConfig(**knobs)
    with contextlib.nullcontext(None) if in_process else running_server(config, process=True) as url:
        manifest = write_manifest(folder, url, styles=styles, seeds=seeds, concurrency=concurrency,
                                  sim=knobs if in_process else None)
        res.jobs = styles * seeds
        base_env = {k: v for k, v in os.environ.items() if k != "GRIDRUN_CRASH_AT"}
        while res.kills < kills:
            env = dict(base_env)
            point = None
            if rnd.random() < 0.4:
                point = rnd.choice(CRASH_POINTS)
                env["GRIDRUN_CRASH_AT"] = f"{point}:{rnd.randint(1, 3)}"
            proc = _run(manifest, env)
            res.runs += 1
            try:
                if point is None:
                    try:
                        proc.wait(timeout=rnd.uniform(0.4, 1.6))
                        res.finished_early += 1
                    except subprocess.TimeoutExpired:
                        os.kill(proc.pid, signal.SIGKILL)
                        proc.wait()
                        res.kills += 1
                else:
                    code = proc.wait(timeout=60)
                    if code == -signal.SIGKILL:
                        res.kills += 1
                        res.crash_points[point] = res.crash_points.get(point, 0) + 1
                    else:
                        res.finished_early += 1
            finally:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
            if res.finished_early and res.finished_early > kills * 3:
                break
        final = _run(manifest, base_env)
        res.final_exit = final.wait(timeout=120)
        res.runs += 1
        if url is None:
            res.stats = _world_stats(folder / ".gridrun" / SIM_WORLD, config)
        else:
            root = url.rsplit("/v1", 1)[0]
            res.stats = httpx.get(f"{root}/_sim/stats", timeout=10).json()
    from runner import api

    snap = api.status(manifest)
    res.done = sum(1 for j in snap.jobs if j.state == "done")
    res.recorded_spent_micros = snap.manifest_spent_micros
    import hashlib

    for j in snap.jobs:
        p = Path(j.output_path)
        if j.state != "done" or not p.is_file() or hashlib.sha256(p.read_bytes()).hexdigest() != j.sha256:
            res.lost_outputs += 1
        else:
            side = json.loads(p.with_suffix(".json").read_text())
            if side["sha256"] != j.sha256:
                res.lost_outputs += 1
    res.seconds = time.monotonic() - t0
    return res


def _world_stats(path: Path, config: SimConfig) -> dict[str, Any]:
    """The stats of the simulated world the in-process runs left in `path`."""
    from runner.sim.engine import Sim
    from runner.sim.world import World

    return Sim(config, clock=time.time, world=World.open(path)).stats()
