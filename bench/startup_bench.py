"""Time what the `gridrun` command costs before it does anything: the CPU (user + system) of a few commands that
do little, each run in a fresh process, and the modules each one imports.

    .venv/bin/python bench/startup_bench.py [--runs 7] [--keep DIR] [--root CHECKOUT ...] [--json]

The demo manifest is copied to a scratch folder and run there once (the simulator, no network), so that `status`
has a state to read. Then each command runs --runs times as the console script runs it (`runner.entry.entry`);
its CPU is read from the children's rusage, its wall time from the clock, and the medians are printed, with
how many modules it imported and which of the heavy third-party packages were among them. A machine busy with
other work inflates both; compare figures taken in the same minute: `--root` names checkouts of gridrun to
measure in turn (each command's runs alternate between them), for a before and after.
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

COMMANDS = {
    "--help": ["--help"],
    "validate": ["validate", "manifests/demo.yaml"],
    "plan": ["plan", "manifests/demo.yaml"],
    "status": ["status", "manifests/demo.yaml"],
}
# The third-party packages worth knowing about when a command imports them.
HEAVY = ("jsonschema", "referencing", "httpx", "httpcore", "anyio", "asyncio", "aiohttp", "rich", "jinja2", "yaml",
         "starlette", "uvicorn", "av", "numpy", "PIL", "sqlite3")

PLAIN = "import sys; sys.argv[0] = 'gridrun'; from runner.entry import entry; entry()"


def _env(root: Path = ROOT) -> dict[str, str]:
    return dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(root), os.environ.get("PYTHONPATH")])),
                COLUMNS="120")


def _timed(args: list[str], cwd: Path, root: Path) -> tuple[float, float, int]:
    """CPU (user + system) and wall seconds of one `gridrun ARGS` in a fresh process, and its exit code."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", PLAIN, *args], cwd=cwd, env=_env(root), capture_output=True,
                          check=False)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return cpu, wall, done.returncode


def modules(args: list[str], cwd: Path, root: Path) -> list[str]:
    """The modules `gridrun ARGS` had imported when it ended (by `os._exit`, which skips atexit, or `sys.exit`)."""
    code = ("import atexit, sys, json, os; sys.argv[0] = 'gridrun'; fd = int(os.environ['STARTUP_BENCH_FD']); "
            "said = []; "
            "say = lambda: said or (said.append(1), os.write(fd, json.dumps(sorted(sys.modules)).encode())); "
            "atexit.register(say); real = os._exit; os._exit = lambda c: (say(), real(c)); "
            "import runner.entry as e; e.entry()")
    read, write = os.pipe()
    env = dict(_env(root), STARTUP_BENCH_FD=str(write))
    proc = subprocess.Popen([sys.executable, "-c", code, *args], cwd=cwd, env=env, pass_fds=(write,),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    os.close(write)
    chunks = []
    while chunk := os.read(read, 1 << 16):
        chunks.append(chunk)
    os.close(read)
    proc.wait()
    return json.loads(b"".join(chunks) or b"[]")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--keep", type=Path, help="the scratch folder to use (kept)")
    parser.add_argument("--root", type=Path, action="append",
                        help="a checkout of gridrun to measure (repeatable; default: this one)")
    parser.add_argument("--json", action="store_true", help="one JSON object instead of the table")
    args = parser.parse_args()
    roots = [r.resolve() for r in args.root or [ROOT]]
    scratch = args.keep or Path(tempfile.mkdtemp(prefix="gridrun-startup-"))
    results: dict[str, dict[str, dict[str, object]]] = {str(r): {} for r in roots}
    try:
        (scratch / "manifests").mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / "manifests" / "demo.yaml", scratch / "manifests" / "demo.yaml")
        if not (scratch / "manifests" / ".gridrun").exists():
            subprocess.run([sys.executable, "-c", PLAIN, "run", "manifests/demo.yaml", "--no-report"], cwd=scratch,
                           env=_env(roots[0]), capture_output=True, check=True)
        for name, argv in COMMANDS.items():
            runs: dict[Path, list[tuple[float, float, int]]] = {r: [] for r in roots}
            for _ in range(args.runs):
                for root in roots:
                    runs[root].append(_timed(argv, scratch, root))
            for root in roots:
                mods = modules(argv, scratch, root)
                results[str(root)][name] = {
                    "cpu_s": statistics.median(r[0] for r in runs[root]),
                    "wall_s": statistics.median(r[1] for r in runs[root]),
                    "exit": runs[root][0][2],
                    "modules": len(mods),
                    "runner_modules": sum(1 for m in mods if m.split(".")[0] == "runner"),
                    "heavy": sorted({m.split(".")[0] for m in mods} & set(HEAVY)),
                }
    finally:
        if args.keep is None:
            shutil.rmtree(scratch, ignore_errors=True)
    if args.json:
        print(json.dumps(results if len(roots) > 1 else results[str(roots[0])], indent=2))
        return 0
    print(f"gridrun start-up, medians of {args.runs} runs each (load average {os.getloadavg()[0]:.2f})")
    for root in roots:
        if len(roots) > 1:
            print(f"\n{root}")
        print(f"{'command':<10} {'cpu s':>6} {'wall s':>7} {'exit':>4} {'modules':>7} {'runner':>6}  heavy packages "
              "imported")
        for name, r in results[str(root)].items():
            print(f"{name:<10} {r['cpu_s']:6.3f} {r['wall_s']:7.3f} {r['exit']:4d} {r['modules']:7d} "
                  f"{r['runner_modules']:6d}  {', '.join(r['heavy']) or '-'}")  # type: ignore[arg-type]
    return 0


if __name__ == "__main__":
    sys.exit(main())
