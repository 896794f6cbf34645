"""Throughput of `gridrun run` against the simulator, beside a plain httpx + asyncio loop (bench/naive_loop.py).

    .venv/bin/python bench/run_bench.py            # N=300 (3 runs each, medians) and N=10,000 (one run each)
    .venv/bin/python bench/run_bench.py --no-big   # only N=300
    .venv/bin/python bench/run_bench.py --quick    # N=100, C=20, T=1 s, one run each

Setup of every measured run:

- The simulator runs in a child process pinned to CPU 0, fresh for every run, with render_time=T, jitter=0,
  concurrency=C. It is `runner.sim`'s app served by uvicorn like `gridrun sim serve`, with two additions
  made here: its clip cache is filled before it starts listening (clips are encoded once, in this process,
  and kept in a temp folder), so that encoding 10,000 clips does not load the simulator's core during the
  run; and a timing layer that records, on the simulator's clock (time.time, the same clock as the
  clients'), when the first download request of each video arrived, served at GET /_bench/videos with each
  video's exact created / start / end times (the API's own `completed_at` is whole seconds).
- The client runs in a child process pinned to CPU 1: `python -m runner.cli run bench.yaml --json` for
  gridrun (a `provider: sim` manifest with `base_url` = the simulator, run.concurrency C, quality 360p, a
  distinct prompt and seed per job, and the simulator's knobs under `sim:`, which gridrun reads as its
  render-time prior), the same with `--no-report` (no report.html and no posters during or after the run:
  what the report costs), or `python bench/naive_loop.py` with the very same create bodies.
- gridrun's package is byte-compiled before the runs (as `pip install` does), so that no run compiles it.
- No run's files are deleted before the bench ends. Deleting thousands of files makes the next creations
  in the same part of an ext4 file system without a journal cost 10-20 times more CPU for a few minutes
  (it skips recently freed inodes one by one), which the next client would pay. Before each run the bench
  times creating 200 files in the run's folder and prints it, with a warning when it is slow.

Figures (per run; a scenario run several times prints the median of each figure):

- wall: from starting the client process to its exit (interpreter start-up and planning included).
- bound: ceil(N/C)·T, the earliest a provider rendering C at a time can finish.  efficiency = bound / wall.
- req/job: every API and download request the simulator counted (`/_sim/stats` requests, all routes) / N.
- compl→dl p50: median over videos of (arrival of the video's first download request at the simulator)
  − (the moment its render ended), both on the simulator's clock.
- compl→done p50: median of (the client's record that the video is saved) − (render end): gridrun's
  state.db `downloaded_at` (set after the file is written, hashed, fsynced and renamed, and its sidecar
  written), the naive loop's file mtime. An upper bound of the above that includes the download itself.
- CPU ms/job: user + system CPU of the client process (wait4 rusage) / N, and the system (kernel) part of it;
  "excl. start-up" subtracts the CPU
  of `gridrun plan` on the same manifest (interpreter start-up, imports, planning).
- CPU by thread (Linux): every thread's user + system CPU, read from /proc/<pid>/task/*/stat every 50 ms while
  the client runs (each thread's last reading counts): the main thread (gridrun's event loop; its CPU up to
  the first create request is start-up: interpreter, imports, planning, opening the state) and all other
  threads together (posters, live report, the syncs and renames of downloads). The kernel counts each
  thread's user and system time in clock ticks (10 ms), so a thread loses up to 20 ms; what the two leave of
  the total is that, the exit after the last reading, and threads that ended between readings.
- GRIDRUN_BENCH_WRAP, when set, is put in front of gridrun's client command (LABEL becomes the run's label), to
  profile it: `GRIDRUN_BENCH_WRAP="py-spy record --gil -f raw -o /tmp/LABEL.raw --"`. Its CPU is then the
  wrapper's too, and the thread figures are the wrapper's: for where the time goes, not for the figures.
- The disk's share: a download is fsynced, renamed and given a durable sidecar, and the state's write-ahead
  commits are fsynced too; on a slow or busy disk the kernel's part of that is much of the client's CPU, and it
  varies with the disk's state. `--workdir /dev/shm/NAME` (a memory file system: fsync costs nothing) measures
  gridrun's own CPU without it; the difference is what the disk charges for durability.
- RSS: the client process's peak resident set (wait4 ru_maxrss). Clients are started by a small launcher
  process, because Linux carries ru_maxrss across fork and exec: a client forked by the bench would report
  at least the bench's own peak.
"""

from __future__ import annotations

import argparse
import compileall
import concurrent.futures
import contextlib
import hashlib
import json
import math
import os
import pickle
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import types
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
# The clients (`python -m runner.cli ...`, run in their own folders) import this tree's gridrun, not whichever an
# install put on the path (an editable install of another checkout would be measured instead).
os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, (str(ROOT), os.environ.get("PYTHONPATH"))))

from runner.sim.config import SimConfig
from runner.sim.serve import child_server

MODEL = "pixverse-v5.6"
SIM_CPU = 0
CLIENT_CPU = 1
CLIP_CACHE = Path(tempfile.gettempdir()) / "gridrun-bench-clips"


@dataclass(frozen=True)
class Scenario:
    n: int
    c: int
    t: float
    repeats: int
    efficiency_target: float
    rss_target_mb: float | None = None

    @property
    def bound(self) -> float:
        return math.ceil(self.n / self.c) * self.t

    @property
    def title(self) -> str:
        return f"N={self.n:,}, C={self.c}, T={self.t:g} s"

    def sim_config(self) -> SimConfig:
        return SimConfig(render_time=self.t, jitter=0.0, concurrency=self.c, cache_size=max(256, self.n + 16))


@dataclass
class Measure:
    """What one client run did."""

    who: str
    n: int
    exit_code: int = -1
    wall: float = math.nan
    cpu: float = math.nan
    cpu_sys: float = math.nan        # of `cpu`, the kernel's part (system calls: files, sockets, fsync)
    rss_mb: float = math.nan
    requests: dict[str, int] = field(default_factory=dict)
    done: int = 0
    to_download: list[float] = field(default_factory=list)
    to_done: list[float] = field(default_factory=list)
    stats: dict[str, Any] = field(default_factory=dict)
    client_requests: int | None = None
    sim_cpu: float = math.nan
    to_first_create: float = math.nan
    render_span: float = math.nan
    tail: float = math.nan
    other_cpu_client_core: float = math.nan
    other_cpu_sim_core: float = math.nan
    cpu_loop: float = math.nan       # the main thread (the event loop)
    cpu_startup: float = math.nan    # the main thread's, up to the first create request
    cpu_threads: float = math.nan    # every other thread
    cpu_loop_sys: float = math.nan   # of cpu_loop and cpu_threads, the kernel's part
    cpu_threads_sys: float = math.nan
    create_us: float = math.nan      # CPU of creating one file in the run's folder, just before the run

    @property
    def total_requests(self) -> int:
        return sum(self.requests.values())

    def figures(self, sc: Scenario, startup_cpu: float | None) -> dict[str, float]:
        return {
            "wall": self.wall,
            "efficiency": sc.bound / self.wall if self.wall > 0 else math.nan,
            "req_per_job": self.total_requests / self.n,
            "to_download_p50": _quantile(self.to_download, 0.5),
            "to_download_p90": _quantile(self.to_download, 0.9),
            "to_done_p50": _quantile(self.to_done, 0.5),
            "cpu_ms_per_job": 1000 * self.cpu / self.n,
            "cpu_sys_ms_per_job": 1000 * self.cpu_sys / self.n,
            "cpu_ms_per_job_excl_startup": (1000 * (self.cpu - startup_cpu) / self.n) if startup_cpu is not None else math.nan,
            "rss_mb": self.rss_mb,
            "done": float(self.done),
            "throttled": float(self.stats.get("throttled", 0)),
            "duplicate_paid": float(self.stats.get("duplicate_paid", 0)),
            "creates": float(self.stats.get("creates", 0)),
            "max_in_progress": float(self.stats.get("max_in_progress", 0)),
            "encodes": float(self.stats.get("encodes", 0)),
            "sim_cpu": self.sim_cpu,
            "to_first_create": self.to_first_create,
            "render_span": self.render_span,
            "tail": self.tail,
            "other_cpu_client_core": self.other_cpu_client_core,
            "other_cpu_sim_core": self.other_cpu_sim_core,
            "cpu_loop_ms_per_job": 1000 * self.cpu_loop / self.n,
            "cpu_loop_ms_per_job_after_startup": 1000 * (self.cpu_loop - self.cpu_startup) / self.n,
            "cpu_startup": self.cpu_startup,
            "cpu_threads_ms_per_job": 1000 * self.cpu_threads / self.n,
            "cpu_loop_sys_ms_per_job": 1000 * self.cpu_loop_sys / self.n,
            "cpu_threads_sys_ms_per_job": 1000 * self.cpu_threads_sys / self.n,
            "create_us": self.create_us,
        }


def _quantile(xs: list[float], q: float) -> float:
    if not xs:
        return math.nan
    s = sorted(xs)
    return s[min(len(s) - 1, int(q * len(s)))]


# -- the simulator child ---------------------------------------------------------------------------


def _serve_sim(argv: list[str]) -> int:
    """`run_bench.py serve-sim --config K.json [--clips C.pkl]`: the simulator with a filled clip cache and
    a timing layer (see the module docstring). Prints `listening on URL` once it accepts connections."""
    import uvicorn

    from runner.sim.app import create_app
    from runner.sim.serve import DroppableH11Protocol
    from runner.sim.video import Clip, ClipCache, ClipSpec

    ap = argparse.ArgumentParser(prog="run_bench.py serve-sim")
    ap.add_argument("--config", type=Path, required=True)
    ap.add_argument("--clips", type=Path)
    a = ap.parse_args(argv)
    config = SimConfig.from_dict(json.loads(a.config.read_text()))
    app = create_app(config)
    sim = app.state.sim

    if a.clips is not None:
        with open(a.clips, "rb") as f:
            ready: dict[ClipSpec, Clip] = pickle.load(f)

        class Filled(ClipCache):
            def peek(self, spec: ClipSpec) -> Clip | None:
                return ready.get(spec) or super().peek(spec)

            def get(self, spec: ClipSpec) -> Clip:
                clip = ready.get(spec)
                return clip if clip is not None else super().get(spec)

        sim.clips = Filled(config.cache_size)

    first_download: dict[str, float] = {}

    async def timed(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            path = scope["path"]
            if path.startswith("/files/") and path.endswith(".mp4"):
                first_download.setdefault(path[len("/files/"):-4], time.time())
            elif path.endswith("/content") and "/videos/" in path:
                first_download.setdefault(path.rsplit("/", 2)[-2], time.time())
            elif path == "/_bench/videos":
                rows = [
                    [v.id, v.prompt, v.slot.created, v.slot.start, v.slot.end, v.status(time.time()).value,
                     first_download.get(v.id)]
                    for v in sim.order
                ]
                body = json.dumps(rows).encode()
                await send({"type": "http.response.start", "status": 200,
                            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
                await send({"type": "http.response.body", "body": body})
                return
        await app(scope, receive, send)

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(2048)
    server = uvicorn.Server(uvicorn.Config(
        timed, http=DroppableH11Protocol, lifespan="off", ws="none", access_log=False, log_level="warning",
        log_config=None, timeout_keep_alive=30, backlog=2048,
    ))
    print(f"listening on http://127.0.0.1:{sock.getsockname()[1]}/v1", flush=True)
    server.run(sockets=[sock])
    return 0


def _pin(pid: int, cpu: int) -> None:
    if hasattr(os, "sched_setaffinity") and (os.cpu_count() or 1) >= 2:
        with contextlib.suppress(OSError):
            os.sched_setaffinity(pid, {cpu})


@dataclass
class SimChild:
    url: str
    pid: int

    def cpu(self) -> float:
        """CPU seconds the simulator process has used so far."""
        fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _busy() -> dict[int, float]:
    """Busy CPU seconds per CPU since boot (/proc/stat), to see what other processes took during a run."""
    out = {}
    with contextlib.suppress(OSError):
        for line in Path("/proc/stat").read_text().splitlines():
            name, *ticks = line.split()
            if name.startswith("cpu") and name[3:].isdigit():
                t = [int(x) for x in ticks[:8]]
                out[int(name[3:])] = (t[0] + t[1] + t[2] + t[5] + t[6] + t[7]) / os.sysconf("SC_CLK_TCK")
    return out


@contextlib.contextmanager
def simulator(sc: Scenario, folder: Path, clips: Path | None) -> Iterator[SimChild]:
    """A fresh simulator child on CPU 0."""
    knobs = folder / "sim-knobs.json"
    knobs.write_text(json.dumps(sc.sim_config().to_dict()))
    cmd = [sys.executable, str(Path(__file__).resolve()), "serve-sim", "--config", str(knobs)]
    if clips is not None:
        cmd += ["--clips", str(clips)]
    with child_server(cmd, startup_timeout=120.0) as (url, pid):
        _pin(pid, SIM_CPU)
        yield SimChild(url, pid)




# -- workloads -------------------------------------------------------------------------------------


def write_manifest(folder: Path, sc: Scenario, base_url: str) -> Path:
    doc = {
        "version": 1,
        "name": "bench",
        "provider": "sim",
        "base_url": base_url,
        "model": MODEL,
        "params": {"prompt": "a paper boat drifting on a pond at dawn, take {{ seed }}", "quality": "360p", "duration": 5},
        "matrix": {"seed": {"range": [1, sc.n]}},
        "output": "take-{{ seed }}.mp4",
        "run": {"concurrency": sc.c, "max_jobs": sc.n},
        "sim": {"render_time": sc.t, "jitter": 0.0, "concurrency": sc.c},
    }
    path = folder / "bench.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def create_bodies(sc: Scenario, folder: Path) -> list[dict[str, Any]]:
    """The create bodies gridrun sends for the scenario's manifest (without idempotency keys), in plan order."""
    from runner import api
    from runner.providers import get_provider

    folder.mkdir(parents=True, exist_ok=True)
    plan = api.plan(write_manifest(folder, sc, "http://127.0.0.1:9/v1"))
    provider = get_provider("sim", base_url="http://127.0.0.1:9/v1")
    bodies = []
    for job in plan.jobs:
        body = provider.build_request(job.params, model=plan.model, idempotency_key="-")
        body.pop("idempotency_key", None)
        bodies.append(body)
    return bodies


def _encode(spec: Any) -> Any:
    from runner.sim.video import encode

    return spec, encode(spec)


def prepared_clips(sc: Scenario, bodies: list[dict[str, Any]]) -> Path:
    """Encode the scenario's clips once (all CPUs) into a pickle the simulator child loads."""
    from runner.sim.engine import Sim

    sim = Sim(sc.sim_config(), clock=time.time)
    specs = [sim.clip_spec(sim.create(b)[0]) for b in bodies]
    digest = hashlib.sha256(repr(specs).encode()).hexdigest()[:20]
    path = CLIP_CACHE / f"clips-{digest}.pkl"
    if path.is_file():
        return path
    CLIP_CACHE.mkdir(parents=True, exist_ok=True)
    t0 = time.monotonic()
    _log(f"encoding {len(specs):,} clips once for the simulator's cache ({path}) ...")
    with concurrent.futures.ProcessPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        clips = dict(pool.map(_encode, specs, chunksize=32))
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    with open(tmp, "wb") as f:
        pickle.dump(clips, f, protocol=pickle.HIGHEST_PROTOCOL)
    os.replace(tmp, path)
    _log(f"  encoded in {time.monotonic() - t0:.0f} s")
    return path


# -- measuring a client ----------------------------------------------------------------------------


@dataclass
class Finished:
    exit_code: int
    wall: float
    usage: Any                   # rusage of exactly that process (ru_utime, ru_stime, ru_maxrss)
    busy: dict[int, float]       # busy CPU seconds per CPU, all processes, during the run
    started_at: float            # time.time() at start and at exit
    ended_at: float
    threads: ThreadCPU | None = None


class ThreadCPU:
    """The CPU seconds of every thread of a running process, read from /proc every `every` seconds (Linux);
    each thread keeps its last reading, and the main thread's readings over time are kept too."""

    def __init__(self, pid: int, every: float = 0.05) -> None:
        self.pid = pid
        self.every = every
        self.last: dict[int, float] = {}
        self.last_sys: dict[int, float] = {}  # of `last`, the kernel's part
        self.main: list[tuple[float, float]] = []  # (time.time(), main thread CPU seconds)
        self._tick = os.sysconf("SC_CLK_TCK")
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()

    def _sample(self) -> None:
        while not self._stop.is_set():
            try:
                tids = os.listdir(f"/proc/{self.pid}/task")
            except OSError:
                return
            now = time.time()
            for tid in tids:
                try:
                    with open(f"/proc/{self.pid}/task/{tid}/stat", "rb") as f:
                        fields = f.read().rsplit(b")", 1)[1].split()
                except (OSError, IndexError):
                    continue
                self.last[int(tid)] = (int(fields[11]) + int(fields[12])) / self._tick  # utime + stime
                self.last_sys[int(tid)] = int(fields[12]) / self._tick
            if self.pid in self.last:
                self.main.append((now, self.last[self.pid]))
            self._stop.wait(self.every)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    @property
    def loop(self) -> float:
        """The main thread's CPU seconds."""
        return self.last.get(self.pid, math.nan)

    @property
    def others(self) -> float:
        return sum(v for tid, v in self.last.items() if tid != self.pid)

    @property
    def loop_sys(self) -> float:
        return self.last_sys.get(self.pid, math.nan)

    @property
    def others_sys(self) -> float:
        return sum(v for tid, v in self.last_sys.items() if tid != self.pid)

    def loop_until(self, moment: float) -> float:
        """The main thread's CPU seconds at the last reading no later than `moment` (time.time())."""
        before = [cpu for at, cpu in self.main if at <= moment]
        return before[-1] if before else math.nan


# Clients are started by this small process, not by the bench itself: Linux carries a process's peak RSS
# (ru_maxrss) across fork and exec, so a client started here would report at least this process's own
# peak (planning 10,000 jobs, encoding clips) instead of its own.
_LAUNCHER_CODE = """
import json, os, subprocess, sys, time
for line in sys.stdin:
    job = json.loads(line)
    if job["cpu"] is not None:
        os.sched_setaffinity(0, {job["cpu"]})
    with open(job["out"], "wb") as out, open(job["err"], "wb") as err:
        e0, t0 = time.time(), time.monotonic()
        proc = subprocess.Popen(job["cmd"], cwd=job["cwd"], stdout=out, stderr=err, stdin=subprocess.DEVNULL)
    print(json.dumps({"pid": proc.pid}), flush=True)
    _, status, ru = os.wait4(proc.pid, 0)
    t1, e1 = time.monotonic(), time.time()
    print(json.dumps({"status": status, "utime": ru.ru_utime, "stime": ru.ru_stime, "maxrss": ru.ru_maxrss,
                      "wall": t1 - t0, "started": e0, "ended": e1}), flush=True)
"""
_launcher: subprocess.Popen[str] | None = None


def _launch(cmd: list[str], cwd: Path, out: Path, err: Path) -> tuple[int, Callable[[], dict[str, Any]]]:
    """Start `cmd` from the launcher, pinned to the client's CPU: its pid, and what waits for its end."""
    global _launcher
    if _launcher is None or _launcher.poll() is not None:
        _launcher = subprocess.Popen([sys.executable, "-S", "-c", _LAUNCHER_CODE], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True, bufsize=1)
    launcher = _launcher
    assert launcher.stdin is not None and launcher.stdout is not None
    cpu = CLIENT_CPU if hasattr(os, "sched_setaffinity") and (os.cpu_count() or 1) >= 2 else None
    launcher.stdin.write(json.dumps({"cmd": cmd, "cwd": str(cwd), "out": str(out), "err": str(err), "cpu": cpu}) + "\n")
    launcher.stdin.flush()
    pid = json.loads(launcher.stdout.readline())["pid"]
    return pid, lambda: json.loads(launcher.stdout.readline())


def run_measured(cmd: list[str], cwd: Path, label: str, progress: Callable[[], str] | None, every: float = 10.0) -> Finished:
    """Run `cmd` pinned to CPU 1 and wait for it."""
    busy0 = _busy()
    t0 = time.monotonic()
    pid, wait = _launch(cmd, cwd, cwd / f"{label}.out", cwd / f"{label}.err")
    threads = ThreadCPU(pid) if os.path.isdir(f"/proc/{pid}/task") else None
    ended: list[tuple[dict[str, Any], dict[int, float]]] = []

    def reap() -> None:
        result = wait()
        ended.append((result, _busy()))

    waiter = threading.Thread(target=reap, daemon=True)
    waiter.start()
    while waiter.is_alive():
        waiter.join(every)
        if waiter.is_alive() and progress is not None:
            _log(f"    {time.monotonic() - t0:6.0f} s  {progress()}")
    result, busy1 = ended[0]
    if threads is not None:
        threads.stop()
    usage = types.SimpleNamespace(ru_utime=result["utime"], ru_stime=result["stime"], ru_maxrss=result["maxrss"])
    return Finished(os.waitstatus_to_exitcode(result["status"]), result["wall"], usage,
                    {k: busy1[k] - busy0.get(k, 0.0) for k in busy1}, result["started"], result["ended"], threads)


def _sim_root(url: str) -> str:
    return url.rsplit("/v1", 1)[0]


def _collect(m: Measure, sim: SimChild, run: Finished, sim_cpu0: float) -> list[list[Any]]:
    m.exit_code, m.wall = run.exit_code, run.wall
    m.cpu = run.usage.ru_utime + run.usage.ru_stime
    m.cpu_sys = run.usage.ru_stime
    m.rss_mb = run.usage.ru_maxrss / 1024
    m.sim_cpu = sim.cpu() - sim_cpu0
    if (os.cpu_count() or 1) >= 2:
        m.other_cpu_client_core = max(0.0, run.busy.get(CLIENT_CPU, math.nan) - m.cpu)
        m.other_cpu_sim_core = max(0.0, run.busy.get(SIM_CPU, math.nan) - m.sim_cpu)
    root = _sim_root(sim.url)
    with httpx.Client(timeout=60) as client:
        m.stats = client.get(f"{root}/_sim/stats").json()
        videos: list[list[Any]] = client.get(f"{root}/_bench/videos").json()
    m.requests = {k: int(v) for k, v in m.stats["requests"].items()}
    if run.threads is not None:
        m.cpu_loop, m.cpu_threads = run.threads.loop, run.threads.others
        m.cpu_loop_sys, m.cpu_threads_sys = run.threads.loop_sys, run.threads.others_sys
    if videos:
        m.to_first_create = min(v[2] for v in videos) - run.started_at
        if run.threads is not None:
            m.cpu_startup = run.threads.loop_until(min(v[2] for v in videos))
        m.render_span = max(v[4] for v in videos) - min(v[2] for v in videos)
        m.tail = run.ended_at - max(v[4] for v in videos)
    m.to_download = [dl - end for _, _, _, _, end, status, dl in videos if status == "completed" and dl is not None]
    return videos


def _last_json_line(path: Path) -> dict[str, Any] | None:
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - 8192))
            lines = f.read().decode(errors="replace").splitlines()
    except OSError:
        return None
    for line in reversed(lines):
        with contextlib.suppress(ValueError):
            doc = json.loads(line)
            if isinstance(doc, dict):
                return doc
    return None


def measure_gridrun(sc: Scenario, folder: Path, clips: Path | None, label: str, *, report: bool = True) -> Measure:
    from runner import api

    folder.mkdir(parents=True, exist_ok=True)
    m = Measure("gridrun" if report else "gridrun-no-report", sc.n)
    with simulator(sc, folder, clips) as sim:
        manifest = write_manifest(folder, sc, sim.url)

        def progress() -> str:
            doc = _last_json_line(folder / f"{label}.out") or {}
            counts = doc.get("counts") or {}
            return f"gridrun: {counts.get('done', 0):,}/{sc.n:,} done, {doc.get('requests', 0):,} requests"

        cmd = [sys.executable, "-m", "runner.cli", "run", str(manifest), "--json", *([] if report else ["--no-report"])]
        if os.environ.get("GRIDRUN_BENCH_WRAP"):  # a profiler around the client (see the module's doc)
            cmd = os.environ["GRIDRUN_BENCH_WRAP"].replace("LABEL", label).split() + cmd
        sim_cpu0 = sim.cpu()
        run = run_measured(cmd, folder, label, progress if sc.bound >= 20 else None)
        videos = _collect(m, sim, run, sim_cpu0)
    (folder / "videos.json").write_text(json.dumps(videos))
    end = _last_json_line(folder / f"{label}.out") or {}
    m.client_requests = end.get("requests")
    snap = api.status(manifest)
    m.done = sum(1 for j in snap.jobs if j.state == "done")
    ends = {vid: end_at for vid, _, _, _, end_at, status, _ in videos if status == "completed"}
    m.to_done = [j.downloaded_at - ends[j.provider_id] for j in snap.jobs
                 if j.state == "done" and j.downloaded_at is not None and j.provider_id in ends]
    return m


def measure_naive(sc: Scenario, folder: Path, clips: Path | None, bodies_file: Path, prompts: dict[str, int], label: str) -> Measure:
    folder.mkdir(parents=True, exist_ok=True)
    m = Measure("naive", sc.n)
    out = folder / "videos"
    with simulator(sc, folder, clips) as sim:

        def progress() -> str:
            try:
                saved = sum(1 for _ in os.scandir(out))
            except OSError:
                saved = 0
            return f"naive loop: {saved:,}/{sc.n:,} saved"

        cmd = [sys.executable, str(ROOT / "bench" / "naive_loop.py"), sim.url, str(bodies_file), str(out), "--concurrency", str(sc.c)]
        sim_cpu0 = sim.cpu()
        run = run_measured(cmd, folder, label, progress if sc.bound >= 20 else None)
        videos = _collect(m, sim, run, sim_cpu0)
    (folder / "videos.json").write_text(json.dumps(videos))
    for vid, prompt, _, _, end, status, _ in videos:
        if status != "completed" or prompt not in prompts:
            continue
        path = out / f"{prompts[prompt]}.mp4"
        with contextlib.suppress(OSError):
            m.to_done.append(path.stat().st_mtime_ns / 1e9 - end)
            m.done += 1
    return m


def startup_cpu(sc: Scenario, folder: Path) -> float:
    """CPU seconds of `gridrun plan` on the scenario's manifest: interpreter start-up, imports and planning."""
    folder.mkdir(parents=True, exist_ok=True)
    manifest = write_manifest(folder, sc, "http://127.0.0.1:9/v1")
    cmd = [sys.executable, "-m", "runner.cli", "plan", str(manifest)]
    samples = []
    for i in range(3):
        run = run_measured(cmd, folder, f"plan-{i}", None)
        samples.append(run.usage.ru_utime + run.usage.ru_stime)
    return statistics.median(samples)


# -- the table -------------------------------------------------------------------------------------


def _median(values: list[float]) -> float:
    vals = [v for v in values if not math.isnan(v)]
    return statistics.median(vals) if vals else math.nan


def _mark(ok: bool | None) -> str:
    return "" if ok is None else (" ok" if ok else " MISS")


def print_table(sc: Scenario, results: dict[str, list[Measure]], start_cpu: float | None, prewarmed: bool) -> dict[str, Any]:
    runs = max(len(v) for v in results.values()) if results else 0
    print()
    print(f"== {sc.title}: bound ceil(N/C)·T = {sc.bound:g} s; "
          f"{'median of ' + str(runs) + ' runs' if runs > 1 else 'one run'} per client ==")
    t_target = 0.1 * sc.t
    rss_target = f"≤ {sc.rss_target_mb:g}" if sc.rss_target_mb else ""
    head = ["", "wall s", "efficiency", "req/job", "compl→dl p50", "compl→done p50", "CPU ms/job", "peak RSS MB", "done"]
    rows = [head, ["target", "", f"≥ {sc.efficiency_target:.2f}", "≤ 4", f"≤ {t_target:.2f} s", "", "≤ 2", rss_target, f"{sc.n:,}"]]
    names = {"gridrun": "gridrun", "gridrun-no-report": "gridrun --no-report", "naive": "naive loop (poll 1 s)"}
    summary: dict[str, Any] = {}
    for who, ms in results.items():
        figs = [m.figures(sc, start_cpu if who.startswith("gridrun") else None) for m in ms]
        med = {k: _median([f[k] for f in figs]) for k in figs[0]}
        summary[who] = {"median": med, "runs": figs}
        rows.append([
            names[who],
            f"{med['wall']:.1f}",
            f"{med['efficiency']:.3f}{_mark(med['efficiency'] >= sc.efficiency_target)}",
            f"{med['req_per_job']:.2f}{_mark(med['req_per_job'] <= 4)}",
            f"{med['to_download_p50']:.3f} s{_mark(med['to_download_p50'] <= t_target)}",
            f"{med['to_done_p50']:.3f} s",
            f"{med['cpu_ms_per_job']:.2f}{_mark(med['cpu_ms_per_job'] <= 2)}",
            f"{med['rss_mb']:.0f}{_mark(med['rss_mb'] <= sc.rss_target_mb) if sc.rss_target_mb else ''}",
            f"{med['done']:,.0f}",
        ])
    widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
    for r in rows:
        print("  ".join(c.ljust(widths[0]) if i == 0 else c.rjust(widths[i]) for i, c in enumerate(r)))
    for who, ms in results.items():
        med = summary[who]["median"]
        walls = [m.wall for m in ms]
        routes: dict[str, list[int]] = {}
        for m in ms:
            for k, v in m.requests.items():
                routes.setdefault(k, []).append(v)
        by_route = ", ".join(f"{k} {statistics.median(v) / sc.n:.2f}" for k, v in sorted(routes.items()))
        print(f"  {names[who]}: wall {min(walls):.1f}–{max(walls):.1f} s; requests per job by route: {by_route}; "
              f"compl→dl p90 {med['to_download_p90']:.3f} s; 429s {med['throttled']:.0f}; creates {med['creates']:.0f}; "
              f"duplicate paid {med['duplicate_paid']:.0f}; most rendering at once {med['max_in_progress']:.0f}; "
              f"exit codes {sorted({m.exit_code for m in ms})}")
        if who.startswith("gridrun") and start_cpu is not None:
            cr = [m.client_requests for m in ms if m.client_requests is not None]
            print(f"    CPU excl. start-up ({start_cpu:.2f} s for `gridrun plan` on this manifest): "
                  f"{med['cpu_ms_per_job_excl_startup']:.2f} ms/job; of all CPU, the kernel's (system time) "
                  f"{med['cpu_sys_ms_per_job']:.2f} ms/job; requests gridrun counted itself: "
                  f"{statistics.median(cr) / sc.n if cr else math.nan:.2f}/job")
        if not math.isnan(med["cpu_loop_ms_per_job"]):
            rest = med["cpu_ms_per_job"] - med["cpu_loop_ms_per_job"] - med["cpu_threads_ms_per_job"]
            print(f"    CPU by thread: main (event loop) {med['cpu_loop_ms_per_job']:.2f} ms/job, of which start-up to the "
                  f"first create {med['cpu_startup']:.2f} s (after it {med['cpu_loop_ms_per_job_after_startup']:.2f} ms/job); "
                  f"other threads {med['cpu_threads_ms_per_job']:.2f} ms/job; exit and unread {rest:.2f} ms/job; "
                  f"the kernel's part: main {med['cpu_loop_sys_ms_per_job']:.2f}, others {med['cpu_threads_sys_ms_per_job']:.2f} ms/job")
        print(f"    where the wall went: start to first create {med['to_first_create']:.2f} s, first create to last render "
              f"end {med['render_span']:.2f} s (bound {sc.bound:g} s), last render end to exit {med['tail']:.2f} s")
        print(f"    simulator CPU {med['sim_cpu']:.1f} s; other processes took {med['other_cpu_client_core']:.1f} CPU-s on the "
              f"client's core and {med['other_cpu_sim_core']:.1f} on the simulator's during the run; creating a file in the "
              f"run's folder cost {med['create_us']:.0f} us of CPU just before it")
        if max(med["other_cpu_client_core"], med["other_cpu_sim_core"]) > 0.05 * med["wall"]:
            print("    WARNING: other processes loaded the measured cores by more than 5 % of the wall time; figures are disturbed")
        if med["create_us"] > CREATE_SLOW_US:
            print(f"    WARNING: creating a file cost {med['create_us']:.0f} us of CPU before the run (about 15 us is usual); "
                  "the file system is slow to allocate inodes (ext4 without a journal skips recently freed ones)")
        if med["encodes"]:
            print(f"    note: the simulator encoded {med['encodes']:.0f} clips during the run (not prefilled)")
    if not prewarmed:
        print("  (clip cache not prefilled: the simulator encoded every clip on its own core during the runs)")
    return summary


def _revision() -> str:
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], check=False, cwd=ROOT, capture_output=True, text=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "runner"], check=False, cwd=ROOT,
                               capture_output=True, text=True).stdout.strip()
    except OSError:
        return "revision unknown"
    return f"runner at {head or '?'}{' + uncommitted changes' if dirty else ''}"


def _log(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


# Creating a file should cost the kernel some 10-20 us. On ext4 without a journal it skips every inode of
# the folder's block group freed in the last few minutes, reading each one's deletion time: with thousands
# freed (a deleted run's outputs) a creation took 130-330 us here, and a job creates two files (the video
# and its sidecar). So no run's files are deleted until the bench ends, and each run is preceded by a probe.
CREATE_PROBE_FILES = 200
CREATE_SLOW_US = 60.0


def create_cost(folder: Path) -> float:
    """CPU microseconds (user + system) of creating one empty file in a new subfolder of `folder`; the
    files stay, so that the probe frees no inodes itself."""
    probe = folder / "create-probe"
    probe.mkdir(parents=True)
    t0 = time.process_time()
    for i in range(CREATE_PROBE_FILES):
        os.close(os.open(probe / f"f{i}", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644))
    return 1e6 * (time.process_time() - t0) / CREATE_PROBE_FILES


def run_scenario(sc: Scenario, work: Path, clients: list[str], prewarm: bool) -> dict[str, Any]:
    _log(f"\n{sc.title}: bound {sc.bound:g} s, {sc.repeats} run(s) per client")
    base = work / f"n{sc.n}-c{sc.c}-t{sc.t:g}"
    bodies = create_bodies(sc, base / "bodies")
    bodies_file = base / "bodies.json"
    bodies_file.write_text(json.dumps(bodies))
    prompts = {b["prompt"]: i for i, b in enumerate(bodies)}
    if len(prompts) != len(bodies):
        raise SystemExit("the scenario's prompts are not distinct")
    clips = prepared_clips(sc, bodies) if prewarm else None
    start_cpu = startup_cpu(sc, base / "plan") if any(c.startswith("gridrun") for c in clients) else None
    results: dict[str, list[Measure]] = {who: [] for who in clients}
    for rep in range(sc.repeats):
        for who in clients:
            folder = base / f"{who}-{rep + 1}"
            _log(f"  {who} run {rep + 1}/{sc.repeats} ...")
            create_us = create_cost(folder)
            if who.startswith("gridrun"):
                m = measure_gridrun(sc, folder, clips, "client", report=who == "gridrun")
            else:
                m = measure_naive(sc, folder, clips, bodies_file, prompts, "client")
            m.create_us = create_us
            results[who].append(m)
            _log(f"    {m.wall:.1f} s, {m.done:,}/{sc.n:,} done, exit {m.exit_code}, "
                 f"{m.total_requests / sc.n:.2f} req/job, CPU {m.cpu:.1f} s, RSS {m.rss_mb:.0f} MB; "
                 f"a file creation cost {create_us:.0f} us before the run")
    return print_table(sc, results, start_cpu, prewarm)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["serve-sim"]:
        return _serve_sim(argv[1:])
    ap = argparse.ArgumentParser(description="gridrun throughput against the simulator, beside a plain asyncio loop")
    ap.add_argument("--quick", action="store_true", help="N=100, C=20, T=1 s, one run per client")
    ap.add_argument("--no-big", action="store_true", help="skip N=10,000")
    ap.add_argument("--big-only", action="store_true", help="only N=10,000")
    ap.add_argument("--repeats", type=int, default=3, help="runs per client at N=300 (default 3)")
    ap.add_argument("--only", choices=("gridrun", "gridrun-no-report", "naive"), help="measure one client")
    ap.add_argument("--no-prefill", action="store_true", help="let the simulator encode clips during the runs")
    ap.add_argument("--workdir", type=Path, help="keep manifests, states, logs and outputs here")
    ap.add_argument("--json", type=Path, help="also write every figure of every run to this file")
    a = ap.parse_args(argv)

    if (os.cpu_count() or 1) < 2:
        _log("warning: one CPU: the simulator and the client share it")
    scenarios: list[Scenario] = []
    if a.quick:
        scenarios.append(Scenario(100, 20, 1.0, 1, 0.95))
    else:
        if not a.big_only:
            scenarios.append(Scenario(300, 20, 2.0, a.repeats, 0.95))
        if not a.no_big:
            scenarios.append(Scenario(10_000, 500, 5.0, 1, 0.90, rss_target_mb=300))
    clients = [a.only] if a.only else ["gridrun", "gridrun-no-report", "naive"]
    # gridrun's bytecode compiled once, as installing it does: with PYTHONDONTWRITEBYTECODE set, every run
    # would otherwise compile the package from source (about 0.06 s of CPU at each start).
    compileall.compile_dir(ROOT / "runner", quiet=1)
    work = a.workdir or Path(tempfile.mkdtemp(prefix="gridrun-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    print(f"gridrun throughput bench — {_revision()}, python {sys.version.split()[0]}, {os.cpu_count()} CPUs; "
          f"simulator pinned to CPU {SIM_CPU}, client to CPU {CLIENT_CPU}")
    report: dict[str, Any] = {}
    try:
        for sc in scenarios:
            report[sc.title] = run_scenario(sc, work, clients, not a.no_prefill)
    finally:
        if a.workdir is None:
            shutil.rmtree(work, ignore_errors=True)
    if a.json:
        a.json.write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
