"""Time planning a manifest of 100,000 jobs. Target: under 3 s and under 300 MB peak RSS.

    .venv/bin/python bench/plan_bench.py [--runs 3] [--keep DIR]

The manifest has a templated prompt (vars that use matrix values) and four matrix keys: style (5 values,
a model parameter) x place (range 20) x idx (range 100) x seed (range 10). Each run of `runner.api.plan`
happens in a fresh subprocess, so imports and caches start cold and the peak RSS is that child's alone.
Then `gridrun plan M --max-jobs 200000` is timed end to end; it must summarise, not list 100,000 rows. CPU times
are printed beside wall times: on a busy machine they are the figures to compare.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TARGET_SECONDS = 3.0
TARGET_MB = 300.0

MANIFEST = """\
version: 1
name: plan-bench
provider: sim
model: pixverse-v5.6
vars:
  subject: a red fox
  scene: "{{ subject }} running through fresh snow near landmark {{ place }}"
params:
  prompt: "{{ scene }}, shot {{ idx }}, {{ style }} style, cinematic light"
  negative_prompt: blurry, watermark
  quality: 540p
  duration: 5
  aspect_ratio: "16:9"
matrix:
  style: [anime, clay, cyberpunk, comic, 3d_animation]
  place: {range: [1, 20]}
  idx: {range: [0, 99]}
  seed: {range: [1, 10]}
output: "{{ style }}/place-{{ place }}/{{ idx }}-seed-{{ seed }}.mp4"
"""

CHILD = """\
import json, resource, sys, time
t0 = time.perf_counter()
from runner import api
t1 = time.perf_counter()
c1 = time.process_time()
plan = api.plan(sys.argv[1], max_jobs=200_000)
c2 = time.process_time()
t2 = time.perf_counter()
print(json.dumps({
    "jobs": len(plan.jobs),
    "total_usd": plan.total_usd,
    "import_s": t1 - t0,
    "plan_s": t2 - t1,
    "plan_cpu_s": c2 - c1,
    "maxrss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
}))
"""


def python() -> str:
    venv = ROOT / ".venv" / "bin" / "python"
    return str(venv) if venv.exists() else sys.executable


def gridrun() -> list[str]:
    script = ROOT / ".venv" / "bin" / "gridrun"
    return [str(script)] if script.exists() else [python(), "-m", "runner.cli"]


def child_run(manifest: Path) -> dict[str, float]:
    proc = subprocess.run([python(), "-c", CHILD, str(manifest)], capture_output=True, text=True, cwd=ROOT, check=False)
    if proc.returncode != 0:
        sys.exit(f"planning failed:\n{proc.stderr}")
    result: dict[str, float] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def cli_run(manifest: Path) -> tuple[float, float, int, int]:
    cpu = children_cpu()
    start = time.perf_counter()
    proc = subprocess.run([*gridrun(), "plan", str(manifest), "--max-jobs", "200000"], capture_output=True,
                          text=True, cwd=manifest.parent, check=False, env={**os.environ, "COLUMNS": "160"})
    elapsed = time.perf_counter() - start
    return elapsed, children_cpu() - cpu, proc.returncode, len(proc.stdout.splitlines())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="fresh subprocesses to take the median of")
    parser.add_argument("--keep", type=Path, help="write the manifest here and keep it")
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="gridrun-plan-bench-")) if args.keep is None else args.keep
    tmp.mkdir(parents=True, exist_ok=True)
    try:
        manifest = tmp / "bench.yaml"
        manifest.write_text(MANIFEST, encoding="utf-8")
        runs = [child_run(manifest) for _ in range(args.runs)]
        plan_s = statistics.median(r["plan_s"] for r in runs)
        rss = max(r["maxrss_mb"] for r in runs)
        jobs = int(runs[0]["jobs"])
        print(f"manifest: {jobs:,} jobs (style 5 x place 20 x idx 100 x seed 10), ${runs[0]['total_usd']:,.2f}")
        each = ", ".join(f"{r['plan_s']:.2f}" for r in runs)
        print(f"api.plan: median {plan_s:.2f} s of {args.runs} ({each}); "
              f"import {statistics.median(r['import_s'] for r in runs):.2f} s; "
              f"CPU median {statistics.median(r['plan_cpu_s'] for r in runs):.2f} s")
        print(f"peak RSS: {rss:.0f} MB (child process, max of {args.runs})")
        cli_s, cli_cpu, code, lines = cli_run(manifest)
        print(f"gridrun plan --max-jobs 200000: {cli_s:.2f} s end to end ({cli_cpu:.2f} s CPU), exit {code}, "
              f"{lines} lines of output")
        ok_time = plan_s < TARGET_SECONDS
        ok_rss = rss < TARGET_MB
        print(f"target: < {TARGET_SECONDS:g} s {'met' if ok_time else 'MISSED'}, "
              f"< {TARGET_MB:g} MB {'met' if ok_rss else 'MISSED'}")
    finally:
        if args.keep is None:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
