"""Kill -9 a `gridrun run` at random moments against `gridrun sim serve` in another process (or against the
built-in simulator inside the killed process, which keeps its world in the state folder), resume each time,
and count what the simulator was paid for. Used by tests/test_crash.py and bench/chaos.py."""

from __future__ import annotations

import contextlib
import json
import os
import random
import signal
import sqlite3
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

# Where in a run's working life a kill landed, read from what its state had committed when it died.
PHASES = (
    "before the run record",     # the run had not opened its state: the kill proves nothing
    "settling earlier creates",  # sent nothing yet, still finding out what became of a killed run's creates
    "before the first create",   # the run had planned, sent nothing yet
    "inside a create",           # a job's intent committed by this run, its id not yet (the POST/commit window)
    "between creates",           # the run had sent creates and had more to send
    "waiting on renders",        # nothing left to send, jobs in flight at the provider
    "while downloading",         # a render complete, its video not yet recorded done
    "after the last download",   # every job done by this run, the run ending
    "nothing left to do",        # every job done before this run: the kill proves little
)

# A timed kill fires this long (seconds, drawn at random) after the run's record appears in its state, so that
# it lands in the run's working life whatever importing gridrun and planning took before (1-5 s on a loaded
# machine). A first run of the bench's 20 jobs lives 4-10 s from its record; a resume's delay is scaled by the
# share of jobs it has left (no less than 15%), since it lives shorter, so that each kill leaves work to the
# next and the kills spread over the runs' phases.
KILL_DELAY = (0.1, 2.5)


@dataclass
class Landing:
    """Where one kill landed."""

    run: int        # which run of the chaos loop it killed (1 is the first)
    how: str        # "timed +0.84s" after the run's record appeared, or "forced after-submit:2"
    phase: str      # one of PHASES
    detail: str     # what the run had done by then: "5 sent, 2 done this run; 9 to send, 2 creating, ..."


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
    landings: list[Landing] = field(default_factory=list)  # where each kill landed, in order

    @property
    def phases(self) -> dict[str, int]:
        """Kills per phase, in the order of PHASES (phases no kill landed in left out)."""
        counts = {p: 0 for p in PHASES}
        for landing in self.landings:
            counts[landing.phase] = counts.get(landing.phase, 0) + 1
        return {p: n for p, n in counts.items() if n}


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


def _read_state(db_path: Path) -> sqlite3.Connection | None:
    """A read-only connection to the state file, or None while there is none."""
    if not db_path.is_file():
        return None
    try:
        return sqlite3.connect(f"{db_path.as_uri()}?mode=ro", uri=True, timeout=5)
    except sqlite3.Error:
        return None


def _last_run_id(db_path: Path) -> int:
    """The id of the last run the state records (0 for none)."""
    db = _read_state(db_path)
    if db is None:
        return 0
    try:
        return int(db.execute("SELECT COALESCE(MAX(id), 0) FROM runs").fetchone()[0])
    except sqlite3.Error:
        return 0
    finally:
        db.close()


def _share_left(db_path: Path) -> float:
    """The share of the manifest's jobs not done yet, as the last run left them (1.0 before any run)."""
    db = _read_state(db_path)
    if db is None:
        return 1.0
    try:
        total, done = db.execute("SELECT COUNT(*), COALESCE(SUM(state = 'done'), 0) FROM jobs").fetchone()
    except sqlite3.Error:
        return 1.0
    finally:
        db.close()
    return (total - done) / total if total else 1.0


def _run_record(db_path: Path, pid: int, after: int) -> tuple[int, float] | None:
    """The id and start of the run process `pid` recorded (a run newer than `after`), or None while it has not."""
    db = _read_state(db_path)
    if db is None:
        return None
    try:
        row = db.execute("SELECT id, started_at FROM runs WHERE id > ? AND pid = ? ORDER BY id DESC LIMIT 1",
                         (after, pid)).fetchone()
    except sqlite3.Error:  # not made yet, or being made
        return None
    finally:
        db.close()
    return (int(row[0]), float(row[1])) if row else None


def wait_started(proc: subprocess.Popen[bytes], db_path: Path, after: int, timeout: float = 120) -> bool:
    """Waits until the run `proc` has recorded itself in its state (True), or has ended first (False)."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if _run_record(db_path, proc.pid, after) is not None:
            return True
        if proc.poll() is not None:  # ended (or died) before it was seen running: nothing to kill
            return False
        time.sleep(0.02)
    raise RuntimeError(f"gridrun run (pid {proc.pid}) recorded no run in {db_path} in {timeout:.0f} s")


def landed(db_path: Path, pid: int, after: int, point: str | None = None) -> tuple[str, str]:
    """Where the run `pid` (newer than run `after`) was when it was killed: its phase (one of PHASES) and what it
    had done, read from what its state had committed. A run sends and downloads at once: a kill at a forced
    `point` landed where that point is; a timed one inside a create if the run had one under way (the window
    where a job could be paid twice), else while downloading if it had a video coming."""
    record = _run_record(db_path, pid, after)
    if record is None:
        return PHASES[0], "no run recorded"
    run_id, started = record
    db = _read_state(db_path)
    assert db is not None
    try:
        states: dict[str, int] = dict(db.execute(
            "SELECT j.state, COUNT(*) FROM run_jobs rj JOIN jobs j ON j.id = rj.job_id WHERE rj.run_id = ?"
            " GROUP BY j.state", (run_id,)).fetchall())
        creating = db.execute(
            "SELECT COUNT(*) FROM run_jobs rj JOIN jobs j ON j.id = rj.job_id JOIN attempts a ON a.job_id = j.id"
            " AND a.n = j.attempts WHERE rj.run_id = ? AND j.state = 'submitting' AND a.run_id = ?",
            (run_id, run_id)).fetchone()[0]
        sent = db.execute("SELECT COUNT(*) FROM events WHERE run_id = ? AND kind = 'submitting'",
                          (run_id,)).fetchone()[0]
        done = db.execute("SELECT COUNT(*) FROM events WHERE at >= ? AND kind = 'done'", (started,)).fetchone()[0]
    finally:
        db.close()
    to_send = states.get("planned", 0)
    downloading = states.get("downloading", 0)
    unsettled = states.get("submitting", 0) - creating + states.get("unknown", 0)  # left so by a killed run
    flying = states.get("submitted", 0) + states.get("running", 0)
    detail = (f"{sent} sent, {done} done this run; {to_send} to send, {creating} creating, {unsettled} unsettled, "
              f"{flying} rendering, {downloading} downloading")
    if point is not None:
        return ("while downloading" if point == "after-download" else "inside a create"), detail
    if creating:
        return "inside a create", detail
    if downloading:
        return "while downloading", detail
    if unsettled and not sent:
        return "settling earlier creates", detail
    if to_send and not sent:
        return "before the first create", detail
    if to_send:
        return "between creates", detail
    if flying or unsettled:
        return "waiting on renders", detail
    return ("after the last download" if sent or done else "nothing left to do"), detail


def _outlives(proc: subprocess.Popen[bytes], seconds: float) -> bool:
    """Whether `proc` is still running `seconds` from now."""
    try:
        proc.wait(timeout=seconds)
    except subprocess.TimeoutExpired:
        return True
    return False


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
        db_path = folder / ".gridrun" / "state.db"
        while res.kills < kills:
            env = dict(base_env)
            point = None
            if rnd.random() < 0.4:
                point = rnd.choice(CRASH_POINTS)
                env["GRIDRUN_CRASH_AT"] = f"{point}:{rnd.randint(1, 3)}"
            after = _last_run_id(db_path)
            proc = _run(manifest, env)
            res.runs += 1
            try:
                if point is None:
                    # a resume with less to do lives shorter: its kill comes sooner, to land in its working life
                    delay = rnd.uniform(*KILL_DELAY) * max(_share_left(db_path), 0.15)
                    if wait_started(proc, db_path, after) and _outlives(proc, delay):
                        os.kill(proc.pid, signal.SIGKILL)
                        proc.wait()
                        res.kills += 1
                        res.landings.append(Landing(res.runs, f"timed +{delay:.2f}s", *landed(db_path, proc.pid, after)))
                    else:
                        res.finished_early += 1
                else:
                    code = proc.wait(timeout=60)
                    if code == -signal.SIGKILL:
                        res.kills += 1
                        res.crash_points[point] = res.crash_points.get(point, 0) + 1
                        res.landings.append(Landing(res.runs, f"forced {env['GRIDRUN_CRASH_AT']}",
                                                    *landed(db_path, proc.pid, after, point)))
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
