"""Time the state store's per-job event look-ups on a store with many events.

    .venv/bin/python bench/state_events_bench.py [--runs 10] [--jobs 10000] [--keep DIR]

Builds a state file of `runs` runs of `jobs` jobs each (a new set of jobs per run), about five events per job
(submitting, submitted, running, downloading, done; one job in ten also failed, was reset as a failure retry
and sent again): about 500,000 events with the defaults. Then times the reads a resumed run makes once per
job: `last_reset_reason` (resume, `Executor._restored`), `failure_retries_made` for one job, for a
thousand, for a run's jobs (once as a run starts) and for every job in the store, and an earlier run's jobs as of its end (`_as_of`, a report of a run from before schema 4).
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from runner.state import FAILURE_RETRY, Store


def build(path: Path, runs: int, jobs: int) -> list[int]:
    """The store at `path`, filled; returns every job id."""
    store = Store(path)
    db = store.db
    rng = random.Random(7)
    now = 1_700_000_000.0
    ids: list[int] = []
    db.execute("BEGIN")
    for r in range(runs):
        cur = db.execute(
            "INSERT INTO runs (manifest_name, manifest_path, outputs_dir, provider, model, started_at, status)"
            " VALUES ('bench', 'bench.yaml', 'out', 'sim', 'm', ?, 'done')", (now,))
        run_id = int(cur.lastrowid or 0)
        events: list[tuple[float, int, int, str, str | None]] = []
        for j in range(jobs):
            cur = db.execute(
                "INSERT INTO jobs (hash, key, vals, params, state, output_path, cost_estimate_micros,"
                " created_at, updated_at) VALUES (?,?,'{}','{}','done',?,1000,?,?)",
                (f"h{r}-{j}", f"job-{j}", f"out/{r}-{j}.mp4", now, now))
            jid = int(cur.lastrowid or 0)
            ids.append(jid)
            db.execute("INSERT INTO run_jobs (run_id, job_id, key, position) VALUES (?,?,?,?)", (run_id, jid, f"job-{j}", j))
            kinds = ["submitting", "submitted", "running", "downloading"]
            if rng.random() < 0.1:
                kinds += ["failed", "reset", *kinds]
            kinds.append("done")
            for kind in kinds:
                now += 0.001
                detail = json.dumps({"reason": f"{FAILURE_RETRY} 1 of 2"}) if kind == "reset" else None
                events.append((now, run_id, jid, kind, detail))
        db.executemany("INSERT INTO events (at, run_id, job_id, kind, detail) VALUES (?,?,?,?,?)", events)
    db.execute("COMMIT")
    store.close()
    return ids


def timed(fn, n: int) -> float:  # type: ignore[no-untyped-def]
    """Seconds per call of `fn(i)`, over `n` calls."""
    started = time.perf_counter()
    for i in range(n):
        fn(i)
    return (time.perf_counter() - started) / n


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=10)
    ap.add_argument("--jobs", type=int, default=10_000)
    ap.add_argument("--calls", type=int, default=100, help="calls per single-job figure")
    ap.add_argument("--keep", type=Path, help="build the store in this folder and keep it")
    args = ap.parse_args()

    folder = args.keep or Path(tempfile.mkdtemp(prefix="gridrun-bench-"))
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "state.db"
    if path.exists():
        path.unlink()
    started = time.perf_counter()
    ids = build(path, args.runs, args.jobs)
    built = time.perf_counter() - started

    store = Store(path)  # a writer: an older file is migrated first, as a run would
    n_events = store.db.execute("SELECT COUNT(*) FROM events").fetchone()[0]
    indexes = [r[0] for r in store.db.execute("SELECT name FROM sqlite_master WHERE type='index' AND tbl_name='events'")]
    rng = random.Random(1)
    sample = [rng.choice(ids) for _ in range(args.calls)]
    thousand = rng.sample(ids, 1000)

    reset_reason = timed(lambda i: store.last_reset_reason(sample[i]), args.calls)
    retries_one = timed(lambda i: store.failure_retries_made([sample[i]]), max(1, args.calls // 10))
    retries_1000 = timed(lambda i: store.failure_retries_made(thousand), 3)
    retries_run = timed(lambda i: store.failure_retries_made(ids[-args.jobs:]), 3)  # a run's, as it starts
    retries_all = timed(lambda i: store.failure_retries_made(ids), 1)
    run1 = store.snapshot(1)
    as_of = timed(lambda i: store._as_of(run1.jobs[:1000], float("inf")), 3)
    store.close()

    print(f"store: {args.runs} runs x {args.jobs} jobs, {n_events:,} events, schema {store.schema},"
          f" events indexes: {', '.join(indexes) or 'none'} (built in {built:.1f} s)")
    print(f"last_reset_reason, one job:          {reset_reason * 1e3:9.3f} ms per call")
    print(f"failure_retries_made, one job:       {retries_one * 1e3:9.3f} ms per call")
    print(f"failure_retries_made, 1,000 jobs:    {retries_1000 * 1e3:9.3f} ms per call")
    print(f"failure_retries_made, a run's {args.jobs:,} jobs: {retries_run * 1e3:9.3f} ms per call")
    print(f"failure_retries_made, all {len(ids):,} jobs: {retries_all * 1e3:9.3f} ms per call")
    print(f"_as_of, 1,000 jobs:                  {as_of * 1e3:9.3f} ms per call")
    if args.keep is None:
        for f in folder.iterdir():
            f.unlink()
        folder.rmdir()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
