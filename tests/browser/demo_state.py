"""Test state for the report: a run built through the `Store` API, with real small H.264 MP4 files."""

from __future__ import annotations

import colorsys
import hashlib
import itertools
import shutil
import time
from pathlib import Path
from typing import Any, Iterable, Mapping

import av
import numpy as np

from runner.state import JobState, Store

FOX = "a red fox running through fresh snow, {style} style"
STYLES = ("anime", "clay", "cyberpunk")
SEEDS = (1, 2, 3, 4)


def encode_mp4(path: Path, *, seconds: float = 1.0, fps: int = 12, size: tuple[int, int] = (96, 54), hue: float = 0.0) -> None:
    """A small browser-playable clip: H.264, yuv420p, moov atom first; a bar sweeps across a coloured field."""
    path.parent.mkdir(parents=True, exist_ok=True)
    w, h = size
    r, g, b = (int(c * 255) for c in colorsys.hsv_to_rgb(hue % 1.0, 0.55, 0.85))
    frames = max(1, round(seconds * fps))
    with av.open(str(path), "w", options={"movflags": "+faststart"}) as out:
        stream = out.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
        for i in range(frames):
            img = np.empty((h, w, 3), np.uint8)
            img[:] = (r, g, b)
            x = int(i * w / frames)
            img[:, x : x + max(2, w // 12)] = 255
            for packet in stream.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)


class Clock:
    def __init__(self, start: float = 1_764_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        self.now += 1.5
        return self.now


def fox_jobs(states: Mapping[tuple[str, int], str] | None = None, *, prompt: str = FOX) -> list[dict[str, Any]]:
    """The demo grid, style × seed; every job done unless `states` says otherwise."""
    out = []
    for style, seed in itertools.product(STYLES, SEEDS):
        out.append({
            "values": {"style": style, "seed": seed},
            "state": (states or {}).get((style, seed), "done"),
            "prompt": prompt.format(style=style),
        })
    return out


def build_state(
    root: Path,
    jobs: Iterable[Mapping[str, Any]],
    *,
    axes: tuple[str, ...] = ("style", "seed"),
    manifest_name: str = "fox-styles",
    seconds: float = 1.0,
    end_status: str | None = "done",
    store: Store | None = None,
    clock: Clock | None = None,
    hash_salt: str = "",
    one_clip: bool = False,
) -> tuple[Store, int]:
    """Record a run of `jobs` (values, state, prompt, optional error, params, key, sweep, output, estimate, cost,
    failed_cost) under `root`.

    With `one_clip`, every done job gets a copy of one encoded clip (fast for big grids).
    """
    # a run going on: its snapshot taken now, as a live page reads its age by the computer's clock
    clock = clock or (Clock() if end_status is not None else Clock(time.time() - 30))
    store = store or Store(root / ".gridrun" / "state.db", clock=clock)
    outputs = root / "outputs" / manifest_name
    run_id = store.start_run(
        manifest_name=manifest_name, manifest_path=str(root / f"{manifest_name}.yaml"), manifest_copy="",
        outputs_dir=str(outputs), provider="sim", model="pixverse-v5.6", axes=axes, budget_micros=10_000_000,
    )
    specs = []
    for n, job in enumerate(jobs):
        values = dict(job["values"])
        key = job.get("key") or ",".join(f"{k}={v}" for k, v in values.items())
        params = {"prompt": job.get("prompt", f"job {key}"), "quality": "540p", "duration": 5, "aspect_ratio": "16:9",
                  **{k: v for k, v in values.items() if k == "seed"}, **job.get("params", {})}
        name = job.get("output") or "/".join(str(v) for v in values.values()) or key
        specs.append({
            "hash": hashlib.sha256((hash_salt + key + repr(sorted(params.items()))).encode()).hexdigest(),
            "key": key, "sweep": job.get("sweep"), "values": values, "params": params,
            "output_path": str(outputs / f"{name}.mp4"), "cost_estimate_micros": job.get("estimate", 200_000),
            "width": 96, "height": 54, "duration": seconds, "state": job["state"], "error": job.get("error"),
            "cost": job.get("cost", 200_000), "failed_cost": job.get("failed_cost"), "hue": n / 12,
        })
    ids = store.add_jobs(run_id, specs)
    clip: Path | None = None
    with store.batch():
        for spec in specs:
            job_id, state = ids[spec["hash"]], spec["state"]
            if state == "planned":
                continue
            store.begin_submit(run_id, [job_id])
            if state == "submitting":
                continue
            if state == "unknown":
                store.transition(job_id, JobState.UNKNOWN, error="connection reset after the request was sent")
                continue
            if state == "rejected":
                store.transition(job_id, JobState.REJECTED, error=spec["error"] or "HTTP 422: prompt too long")
                continue
            store.transition(job_id, JobState.SUBMITTED, provider_id=f"vid_{spec['hash'][:10]}")
            if state == "submitted":
                continue
            if state == "cancelled":
                store.transition(job_id, JobState.CANCELLED, error=spec["error"] or "cancelled on request (gridrun cancel)")
                continue
            if state == "failed":  # with `failed_cost`, the figure the provider reported for the failed render
                charged = {} if spec["failed_cost"] is None else {"cost_micros": spec["failed_cost"]}
                error = spec["error"] or "content moderation: rejected by the provider"
                store.transition(job_id, JobState.FAILED, error=error, **charged)
                continue
            store.transition(job_id, JobState.RUNNING)
            if state == "running":
                continue
            store.transition(job_id, JobState.DOWNLOADING, completed_at=clock.now + 20)
            if state == "expired":
                store.transition(job_id, JobState.EXPIRED, error="download URL expired")
                continue
            path = Path(spec["output_path"])
            if one_clip and clip is not None:
                path.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(clip, path)
            else:
                encode_mp4(path, seconds=seconds, hue=spec["hue"])
                clip = path
            digest = hashlib.sha256(path.read_bytes()).hexdigest()
            store.transition(job_id, JobState.DONE, sha256=digest, cost_micros=spec["cost"],
                             cost_reported_micros=spec["cost"], downloaded_at=clock.now + 21)
    if end_status is not None:
        store.end_run(run_id, end_status)
    else:  # a run going on, whose process this one stands for (its clock is not the system's: no pid to judge it by)
        with store.db:
            store.db.execute("UPDATE runs SET pid=NULL WHERE id=?", (run_id,))
    return store, run_id


def renamed_run(store: Store, run_id: int, axis: str, value: Any, *, keep: int | None = None,
                extra: Iterable[Mapping[str, Any]] = ()) -> int:
    """A later run of run `run_id`'s jobs (its first `keep`, else all) with an axis of one value (`axis`: `value`)
    added to the matrix: each job under a new key, its hash the same, cached from run `run_id`; `extra`: further
    jobs (specs as `Store.add_jobs` takes them), never sent."""
    left = store.snapshot(run_id)
    jobs = left.jobs[:keep]
    later = store.start_run(manifest_name=left.run.manifest_name, manifest_path=left.run.manifest_path,
                            manifest_copy="", outputs_dir=left.run.outputs_dir, provider=left.run.provider,
                            model=left.run.model, axes=[*left.run.axes, axis], budget_micros=None)
    ids = store.add_jobs(later, [{"hash": j.hash, "key": f"{j.key},{axis}={value}", "values": {**j.values, axis: value},
                                  "params": j.params, "output_path": j.output_path,
                                  "cost_estimate_micros": j.cost_estimate_micros} for j in jobs] + list(extra))
    for j in jobs:
        store.mark_cached(later, ids[j.hash], run_id)
    store.end_run(later, "done")
    return later
