"""Time planning a manifest with a long `exclude` list: 4,000 and 20,000 entries against a 1,000-value axis.

    .venv/bin/python bench/exclude_bench.py [--counts 4000 20000] [--timeout 120]

Each exclude names a value the axis does not have (a list pasted from elsewhere), so each is looked up and
warned of. Each `runner.api.plan` runs in a fresh subprocess, stopped after --timeout seconds; the time
printed is the plan's alone, without imports, and the peak RSS is that child's.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

HEAD = """\
version: 1
name: exclude-bench
provider: sim
model: pixverse-v5.6
params:
  prompt: "a red fox, take {{ a }}"
matrix:
  a: {range: [1, 1000]}
  exclude:
"""

CHILD = """\
import json, resource, sys, time
from runner import api
t0 = time.perf_counter()
plan = api.plan(sys.argv[1], max_jobs=2000)
t1 = time.perf_counter()
print(json.dumps({"jobs": len(plan.jobs), "warnings": len(plan.warnings), "plan_s": t1 - t0,
                  "maxrss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def python() -> str:
    venv = ROOT / ".venv" / "bin" / "python"
    return str(venv) if venv.exists() else sys.executable


def manifest_text(excludes: int) -> str:
    return HEAD + "".join(f"    - {{a: {2000 + i}}}\n" for i in range(excludes))


def child_run(manifest: Path, timeout: float) -> str:
    start = time.perf_counter()
    try:
        proc = subprocess.run([python(), "-c", CHILD, str(manifest)], capture_output=True, text=True, cwd=ROOT,
                              check=False, timeout=timeout)
    except subprocess.TimeoutExpired:
        return f"not done after {time.perf_counter() - start:.0f} s"
    if proc.returncode != 0:
        return f"failed (exit {proc.returncode}): {proc.stderr.strip().splitlines()[-1:]}"
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    return (f"{result['plan_s']:.2f} s, peak RSS {result['maxrss_mb']:.0f} MB "
            f"({result['jobs']:,} jobs, {result['warnings']:,} warnings)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--counts", type=int, nargs="+", default=[4000, 20000], help="exclude entries to time")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds before a plan is stopped")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="gridrun-exclude-bench-"))
    try:
        for count in args.counts:
            manifest = tmp / f"ex{count}.yaml"
            manifest.write_text(manifest_text(count), encoding="utf-8")
            size = manifest.stat().st_size // 1024
            print(f"{count:,} excludes ({size:,} KB manifest), api.plan: {child_run(manifest, args.timeout)}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
