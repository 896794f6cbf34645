"""Time the report for a big run: 10,000 jobs of synthetic state by default. Target: under 2 s.

    .venv/bin/python bench/report_bench.py [--jobs N] [--keep DIR] [--with-files]
    .venv/bin/python bench/report_bench.py --demo DIR     # a demo-like 3×4 style × seed report with real videos
    .venv/bin/python bench/report_bench.py --earlier [--jobs N] [--video-bytes B] [--no-sidecars]
        # the report and export of run 1 once run 2 cached its jobs, their videos (and sidecars) on disk
    .venv/bin/python bench/report_bench.py --compare [--jobs N]
        # `report --compare` of run 1 with a run under the same keys, and with one that added an axis

The synthetic state goes through the `Store` API like a real run (planned, in flight, failed, done with a
reported cost); the videos of done jobs are not written, so the timing is of the report alone: snapshot,
poster check, render, atomic write. With --with-files each done job gets a tiny video, its sidecar and its
poster, written a while ago, as a real run leaves them: the report then checks each of them as it does a real
run's (the video holds its take, the poster is an image), the first time by reading them, then from what it
remembered (`Digests`). Exports are timed too.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from runner.export import write_exports  # noqa: E402
from runner.report import ReportMemo, render, write_report  # noqa: E402
from runner.state import JobState, Store  # noqa: E402

STYLES = ("anime", "clay", "cyberpunk", "watercolor", "noir", "pixel art", "oil painting", "low poly", "claymation", "sketch")
TARGET_SECONDS = 2.0


def build(root: Path, n: int, files: bool = False) -> tuple[Store, int]:
    """`n` jobs of synthetic state; with `files`, each done job's video (a few bytes), sidecar and poster."""
    clock = iter(range(1_764_000_000, 1_764_000_000 + 10 * n + 1000))
    store = Store(root / ".gridrun" / "state.db", clock=lambda: float(next(clock)))
    outputs = root / "outputs" / "bench"
    outputs.mkdir(parents=True, exist_ok=True)  # a run's report is written into its output folder, which must exist
    prompts = max(1, n // (len(STYLES) * 10))
    run_id = store.start_run(
        manifest_name="bench", manifest_path=str(root / "bench.yaml"), manifest_copy="", outputs_dir=str(outputs),
        provider="sim", model="pixverse-v5.6", axes=("prompt_id", "style", "seed"), budget_micros=5_000_000_000,
    )
    jobs: list[dict[str, Any]] = []
    for i in range(n):
        p, style, seed = i // (len(STYLES) * 10) % prompts, STYLES[i // 10 % len(STYLES)], i % 10 + 1
        values = {"prompt_id": f"p{p:04d}", "style": style, "seed": seed}
        key = f"prompt_id=p{p:04d},style={style},seed={seed}"
        prompt = f"scene {p}: a red fox running through fresh snow at dawn, long shadows, {style} style, cinematic"
        params = {"prompt": prompt, "negative_prompt": "blurry, watermark", "quality": "540p", "duration": 5,
                  "aspect_ratio": "16:9", "seed": seed, "style": style}
        jobs.append({"hash": hashlib.sha256(key.encode()).hexdigest(), "key": key, "values": values, "params": params,
                     "output_path": str(outputs / f"p{p:04d}" / style / f"seed-{seed}.mp4"),
                     "cost_estimate_micros": 200_000, "width": 640, "height": 360, "duration": 5})
    ids = store.add_jobs(run_id, jobs)
    with store.batch():
        for i, job in enumerate(jobs):
            kind = i % 10
            if kind == 9:
                continue  # planned
            job_id = ids[job["hash"]]
            store.begin_submit(run_id, [job_id])
            store.transition(job_id, JobState.SUBMITTED, provider_id=f"vid_{i}")
            if kind == 8:
                store.transition(job_id, JobState.FAILED, error="content moderation: the prompt was refused")
                continue
            store.transition(job_id, JobState.RUNNING)
            if kind == 7:
                continue
            store.transition(job_id, JobState.DOWNLOADING, completed_at=float(1_764_000_000 + 40 + i))
            store.transition(job_id, JobState.DONE, sha256=hashlib.sha256(job["key"].encode()).hexdigest(),
                             cost_micros=200_000, downloaded_at=float(1_764_000_000 + 45 + i))
            if files:
                _files(job, float(1_764_000_000 + 45 + i), f"vid_{i}")
    return store, run_id


_POSTER: list[bytes] = []


def _files(job: dict[str, Any], when: float, provider_id: str) -> None:
    """A done job's files as a run leaves them: its video (its key's bytes, whose SHA-256 the state records), then
    its sidecar, then its poster (a tiny JPEG with gridrun's mark), each written at the time the run did."""
    from runner.outputs import POSTER_MARK, SIDECAR_FIELDS, poster_path, sidecar_path

    if not _POSTER:
        import io

        from PIL import Image

        out = io.BytesIO()
        Image.new("RGB", (8, 8)).save(out, format="JPEG", comment=POSTER_MARK)
        _POSTER.append(out.getvalue())
    video = Path(job["output_path"])
    video.parent.mkdir(parents=True, exist_ok=True)
    data = job["key"].encode()
    video.write_bytes(data)
    doc: dict[str, Any] = dict.fromkeys(SIDECAR_FIELDS)
    doc.update(key=job["key"], hash=job["hash"], values=job["values"], request=job["params"], provider="sim",
               model="pixverse-v5.6", provider_id=provider_id, sha256=hashlib.sha256(data).hexdigest(),
               size=len(data), bytes=len(data))
    sidecar_path(video).write_text(json.dumps(doc))
    poster_path(video).write_bytes(_POSTER[0])
    for n, f in enumerate((video, sidecar_path(video), poster_path(video))):
        os.utime(f, (when + n, when + n))


MOVED_SHARE = 0.01


def live_rebuilds(store: Store, run_id: int, rounds: int = 5) -> list[float]:
    """Seconds per rebuild of the live report with a memo kept between builds (a build of its own first),
    after a share of the jobs in flight moved each time: what a run pays every few seconds."""
    memo = ReportMemo()
    write_report(store, run_id=run_id, posters=False, memo=memo)
    running = [j.id for j in store.snapshot(run_id).jobs if j.state == JobState.RUNNING.value]
    per_round = max(1, int(len(store.snapshot(run_id).jobs) * MOVED_SHARE))
    times: list[float] = []
    for r in range(rounds):
        with store.batch():
            for job_id in running[r * per_round:(r + 1) * per_round]:
                store.transition(job_id, JobState.DOWNLOADING, completed_at=float(1_764_100_000 + r))
        t = time.perf_counter()
        write_report(store, run_id=run_id, posters=False, memo=memo)
        times.append(time.perf_counter() - t)
    return times


def bench(n: int, keep: Path | None, files: bool = False) -> int:
    root = keep or Path(tempfile.mkdtemp(prefix="gridrun-report-bench-"))
    try:
        t0 = time.perf_counter()
        store, run_id = build(root, n, files)
        built = time.perf_counter() - t0
        snaps, renders, writes = [], [], []
        html = ""
        first = 0.0
        if files:  # an ended run's report, which checks its videos; the first reads each done job's sidecar and
            store.end_run(run_id, "done")  # poster, the next ones what it remembered
            t = time.perf_counter()
            write_report(store, run_id=run_id)
            first = time.perf_counter() - t
        for _ in range(3):
            t = time.perf_counter()
            snap = store.snapshot(run_id)
            snaps.append(time.perf_counter() - t)
            t = time.perf_counter()
            html = render(snap, base_dir=Path(snap.run.outputs_dir))
            renders.append(time.perf_counter() - t)
            t = time.perf_counter()
            path = write_report(store, run_id=run_id)
            writes.append(time.perf_counter() - t)
        rebuilds = [] if files else live_rebuilds(store, run_id)  # a live report is of a run going on
        t = time.perf_counter()
        exports = write_exports(store, run_id=run_id)
        exported = time.perf_counter() - t
        size = path.stat().st_size
        best = min(writes)
        print(f"jobs                   {n:>10,}")
        print(f"state built in         {built:>10.2f} s   (not part of the report)")
        print(f"snapshot (read state)  {statistics.median(snaps):>10.3f} s")
        print(f"render (pure)          {statistics.median(renders):>10.3f} s")
        print(f"write_report (total)   {statistics.median(writes):>10.3f} s   median of 3, best {best:.3f} s"
              + (f"; before them, the first {first:.3f} s (each sidecar and poster read)" if files else ""))
        if files:
            print(f"files                  {sum(1 for j in snap.jobs if j.state == JobState.DONE.value):>10,}   "
                  "done jobs with a video, a sidecar and a poster, written a while ago")
        if rebuilds:
            print(f"live rebuild (memo)    {statistics.median(rebuilds):>10.3f} s   median of {len(rebuilds)}, "
                  f"{MOVED_SHARE:.0%} of the jobs moved before each (as `gridrun run` rebuilds it)")
        print(f"report.html            {size / 1e6:>10.2f} MB  ({len(html.encode()) / n:.0f} bytes per job)")
        print(f"exports jsonl+csv+json {exported:>10.3f} s   ({', '.join(f'{p.name} {p.stat().st_size / 1e6:.1f} MB' for p in exports)})")
        ok = statistics.median(writes) < TARGET_SECONDS
        print(f"target < {TARGET_SECONDS:.0f} s          {'met' if ok else 'MISSED'}")
        if keep:
            print(f"report: {path}")
        store.close()
        return 0 if ok else 1
    finally:
        if keep is None:
            shutil.rmtree(root, ignore_errors=True)


def compare(n: int) -> int:
    """Time the compare of run 1 with run 2, which sent its jobs again under the same keys, another quality (each
    pair made by its key), and with run 3, which added an axis of one value that the prompt uses (`light: [dusk]`):
    every key and hash changed, each pair made by the axes both runs have."""
    root = Path(tempfile.mkdtemp(prefix="gridrun-report-bench-"))
    try:
        store, first = build(root, n)
        left = store.snapshot(first)
        later: dict[str, int] = {}
        for name, light in (("same keys", None), ("axis added", "dusk")):
            run_id = store.start_run(
                manifest_name="bench", manifest_path=left.run.manifest_path, manifest_copy="",
                outputs_dir=left.run.outputs_dir, provider="sim", model="pixverse-v5.6",
                axes=(*left.run.axes, *(("light",) if light else ())), budget_micros=5_000_000_000,
            )
            specs: list[dict[str, Any]] = []
            for job in left.jobs:
                if light:
                    key, values = f"{job.key},light={light}", {**job.values, "light": light}
                    params = {**job.params, "prompt": f"{job.params['prompt']}, {light}"}
                else:
                    key, values, params = job.key, dict(job.values), {**job.params, "quality": "1080p"}
                specs.append({"hash": hashlib.sha256((key + json.dumps(params, sort_keys=True)).encode()).hexdigest(),
                              "key": key, "values": values, "params": params, "output_path": job.output_path,
                              "cost_estimate_micros": 200_000, "width": 640, "height": 360, "duration": 5})
            store.add_jobs(run_id, specs)
            store.end_run(run_id, "done")
            later[name] = run_id
        print(f"jobs                   {n:>10,}   each run")
        a = store.snapshot(first)
        for name, run_id in later.items():
            b = store.snapshot(run_id)
            times: list[float] = []
            html = ""
            for _ in range(3):
                t = time.perf_counter()
                html = render(a, compare=b, base_dir=Path(a.run.outputs_dir))
                times.append(time.perf_counter() - t)
            counts = html.split('<p class="compare-summary">', 1)[1].split("</p>", 1)[0]
            counts = " · ".join(c.split("</b>")[0].split("<b>")[-1] + c.split("</b>")[1].split("</span>")[0]
                                for c in counts.split("<span")[1:])
            print(f"compare, {name:<13} {statistics.median(times):>10.3f} s   render (pure), median of 3; "
                  f"{len(html.encode()) / 1e6:.2f} MB; {counts}")
        store.close()
        return 0
    finally:
        shutil.rmtree(root, ignore_errors=True)


def earlier(n: int, video_bytes: int, sidecars: bool) -> int:
    """Time the report and export of an earlier run: run 1's done jobs get videos of `video_bytes` (with their
    sidecars, else none), run 2 caches them all, and run 1's report is built again (`report --run 1`), which
    looks whether each video is still the one run 1 recorded (`holds_take`: its sidecar, else its bytes)."""
    from runner.outputs import SIDECAR_FIELDS

    root = Path(tempfile.mkdtemp(prefix="gridrun-report-bench-"))
    try:
        store, run1 = build(root, n)
        snap = store.snapshot(run1)
        with store.batch():
            for job in snap.jobs:
                if job.state != JobState.DONE.value:
                    continue
                video = Path(job.output_path)
                video.parent.mkdir(parents=True, exist_ok=True)
                data = hashlib.sha256(job.key.encode()).digest() * max(1, video_bytes // 32)
                video.write_bytes(data)
                when = job.downloaded_at or time.time() - 3600  # downloaded by the run, not just now
                os.utime(video, (when, when))
                sha = hashlib.sha256(data).hexdigest()
                store.db.execute("UPDATE jobs SET sha256=? WHERE id=?", (sha, job.id))
                if sidecars:
                    doc: dict[str, Any] = dict.fromkeys(SIDECAR_FIELDS)
                    doc.update(key=job.key, hash=job.hash, sha256=sha, request=job.params)
                    video.with_suffix(".json").write_text(json.dumps(doc))
        store.end_run(run1, "done")
        run2 = store.start_run(manifest_name="bench", manifest_path=snap.run.manifest_path, manifest_copy="",
                               outputs_dir=snap.run.outputs_dir, provider="sim", model="pixverse-v5.6",
                               axes=snap.run.axes, budget_micros=None)
        ids = store.add_jobs(run2, [{"hash": j.hash, "key": j.key, "values": j.values, "params": j.params,
                                     "output_path": j.output_path, "cost_estimate_micros": j.cost_estimate_micros}
                                    for j in snap.jobs])
        done = [j for j in snap.jobs if j.state == JobState.DONE.value]
        for job in done:
            store.mark_cached(run2, ids[job.hash], run1)
        store.end_run(run2, "done")
        snaps, writes, exports = [], [], []
        for _ in range(3):
            t = time.perf_counter()
            left = store.snapshot(run1, manifest_name="bench")
            snaps.append(time.perf_counter() - t)
            t = time.perf_counter()
            write_report(store, run_id=run1, manifest_name="bench", posters=False)
            writes.append(time.perf_counter() - t)
            t = time.perf_counter()
            write_exports(store, run_id=run1, manifest_name="bench", formats=("csv",))
            exports.append(time.perf_counter() - t)
        latest = []
        for _ in range(3):  # the latest run's, ended: its videos are looked at too
            t = time.perf_counter()
            write_report(store, manifest_name="bench", posters=False)
            latest.append(time.perf_counter() - t)
        linked = sum(1 for j in left.jobs if j.state == JobState.DONE.value and not j.replaced)
        print(f"jobs                   {n:>10,}   run 1 of 2, {len(done):,} done, {linked:,} linked")
        print(f"videos                 {video_bytes / 1e6:>10.1f} MB each, {'with' if sidecars else 'without'} sidecars")
        print(f"snapshot (read state)  {snaps[0]:>10.3f} s   first; {statistics.median(snaps[1:]):.3f} s again")
        print(f"write_report --run 1   {statistics.median(writes):>10.3f} s   median of 3")
        print(f"export --run 1 (csv)   {statistics.median(exports):>10.3f} s")
        print(f"write_report (run 2)   {statistics.median(latest):>10.3f} s   the latest run's")
        store.close()
        return 0
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _clip(path: Path, prompt: str, style: str, seed: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        from runner.sim.video import ClipSpec, encode
    except ImportError:
        sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "browser"))
        from demo_state import encode_mp4  # type: ignore[import-not-found]

        encode_mp4(path, seconds=3.0, size=(320, 180), hue=hash((style, seed)) % 100 / 100)
        return
    path.write_bytes(encode(ClipSpec(prompt=prompt, seed=seed, style=style, seconds=3.0, width=320, height=180)).mp4)


def demo(root: Path) -> int:
    """A stand-in for the demo's report: fox-styles, style × seed, a run still going (one failed, one rendering)."""
    if root.exists():
        shutil.rmtree(root)
    ticks = iter(range(10_000))
    start = time.time() - 420

    def clock() -> float:
        return start + 7 * next(ticks)

    store = Store(root / ".gridrun" / "state.db", clock=clock)
    outputs = root / "outputs" / "fox-styles"
    run_id = store.start_run(
        manifest_name="fox-styles", manifest_path=str(root / "fox-styles.yaml"), manifest_copy="", outputs_dir=str(outputs),
        provider="sim", model="pixverse-v5.6", axes=("style", "seed"), budget_micros=10_000_000,
    )
    jobs: list[dict[str, Any]] = []
    for style in ("anime", "clay", "cyberpunk"):
        for seed in (1, 2, 3, 4):
            prompt = f"a red fox running through fresh snow, {style} style"
            jobs.append({"hash": hashlib.sha256(f"{style}{seed}".encode()).hexdigest(), "key": f"style={style},seed={seed}",
                         "values": {"style": style, "seed": seed},
                         "params": {"prompt": prompt, "negative_prompt": "blurry, watermark", "quality": "540p",
                                    "duration": 5, "aspect_ratio": "16:9", "seed": seed},
                         "output_path": str(outputs / style / f"seed-{seed}.mp4"), "cost_estimate_micros": 450_000,
                         "width": 960, "height": 540, "duration": 5})
    ids = store.add_jobs(run_id, jobs)
    for i, job in enumerate(jobs):
        job_id = ids[job["hash"]]
        store.begin_submit(run_id, [job_id])
        store.transition(job_id, JobState.SUBMITTED, provider_id=f"vid_{job['hash'][:12]}")
        if i == 6:
            store.transition(job_id, JobState.FAILED, error="provider: generation failed (content moderation)")
            continue
        store.transition(job_id, JobState.RUNNING)
        if i == 11:
            continue
        completed = clock() + 50 + 3 * i
        store.transition(job_id, JobState.DOWNLOADING, completed_at=completed)
        path = Path(job["output_path"])
        _clip(path, job["params"]["prompt"], job["values"]["style"], job["values"]["seed"])
        store.transition(job_id, JobState.DONE, sha256=hashlib.sha256(path.read_bytes()).hexdigest(),
                         cost_micros=450_000, downloaded_at=completed + 2)
    print(write_report(store, run_id=run_id))
    store.close()
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--jobs", type=int, default=10_000)
    ap.add_argument("--keep", type=Path, help="build the state in DIR and keep it (and the report)")
    ap.add_argument("--with-files", action="store_true",
                    help="write each done job's video (a few bytes), sidecar and poster, as a run leaves them")
    ap.add_argument("--demo", type=Path, metavar="DIR", help="write a demo-like report with real videos into DIR")
    ap.add_argument("--earlier", action="store_true", help="time an earlier run's report, its videos on disk")
    ap.add_argument("--video-bytes", type=int, default=100_000, help="with --earlier: each video's size")
    ap.add_argument("--no-sidecars", action="store_true", help="with --earlier: no sidecar beside the videos")
    ap.add_argument("--compare", action="store_true", help="time compares of run 1 with two later runs")
    args = ap.parse_args(argv)
    if args.demo:
        return demo(args.demo)
    if args.earlier:
        return earlier(args.jobs, args.video_bytes, not args.no_sidecars)
    if args.compare:
        return compare(args.jobs)
    return bench(args.jobs, args.keep, args.with_files)


if __name__ == "__main__":
    sys.exit(main())
