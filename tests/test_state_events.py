"""The events table: its indexes (schema 6: resets; schema 7: what `status` reads) and the reads that use them."""

from __future__ import annotations

import os
import re
import socket
import sqlite3
import time
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest

from runner.errors import StateError
from runner.state import _MIGRATIONS, FAILURE_RETRY, SCHEMA_VERSION, JobState, Store

from statekit import columns_of, contents, old_state

S = JobState


def _hash(i: int) -> str:
    return f"{i:024x}" + "0" * 40  # the idempotency key takes the first 24 characters


def _job(i: int, tmp: Path) -> dict:
    return {"hash": _hash(i), "key": f"seed={i}", "sweep": None, "values": {"seed": i}, "params": {"prompt": "p"},
            "output_path": str(tmp / f"{i}.mp4"), "cost_estimate_micros": 350_000, "width": 960, "height": 540,
            "duration": 5}


def _run(store: Store, tmp: Path, n: int) -> tuple[int, list[int]]:
    run = store.start_run(manifest_name="m", manifest_path="m.yaml", manifest_copy="", outputs_dir=str(tmp),
                          provider="sim", model="pixverse-v5.6", axes=["seed"], budget_micros=None)
    ids = store.add_jobs(run, [_job(i, tmp) for i in range(n)])
    return run, [ids[_hash(i)] for i in range(n)]


def _plan(db: sqlite3.Connection, query: str, args: tuple) -> str:
    return " ".join(r[-1] for r in db.execute("EXPLAIN QUERY PLAN " + query, args))


def _schema_5(path: Path) -> None:
    """A state file as gridrun wrote it before schema 6, with a job and its events."""
    with old_state(path, 5) as db:
        db.execute("INSERT INTO jobs (hash, key, vals, params, state, output_path, cost_estimate_micros, created_at,"
                   " updated_at) VALUES ('h', 'k', '{}', '{}', 'planned', 'o.mp4', 1, 0, 0)")
        db.execute("INSERT INTO events (at, job_id, kind, detail) VALUES (1, 1, 'reset', ?)",
                   (f'{{"reason": "{FAILURE_RETRY} 1 of 2"}}',))


def test_a_new_state_file_has_the_current_schema_and_the_events_index(tmp_path: Path) -> None:
    with Store(tmp_path / "state.db") as store:
        assert store.schema == SCHEMA_VERSION == len(_MIGRATIONS) == 14
        assert store.db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        from runner.state import _RESET_KINDS

        for query, args in (
            (f"SELECT detail FROM events WHERE job_id=? AND {_RESET_KINDS} AND kind='reset' ORDER BY id DESC LIMIT 1", (1,)),
            (f"SELECT job_id, kind, detail FROM events WHERE job_id IN (?,?) AND {_RESET_KINDS} ORDER BY id", (1, 2)),
        ):
            plan = _plan(store.db, query, args)
            assert "events_resets" in plan and "SCAN events" not in plan, plan
        # only reset events are in it: the other events a run writes cost no index upkeep
        sql = store.db.execute("SELECT sql FROM sqlite_master WHERE name='events_resets'").fetchone()[0]
        assert sql.endswith(f"WHERE {_RESET_KINDS}")


def test_a_state_file_of_schema_5_is_read_as_it_is_and_given_the_index_by_a_writer(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    _schema_5(path)
    with Store(path, readonly=True) as reader:  # status, report: no upgrade, the reads work without the index
        assert reader.schema == 5
        assert reader.last_reset_reason(1) == f"{FAILURE_RETRY} 1 of 2"
        assert reader.failure_retries_made([1]) == {1: 1}
    with Store(path) as writer:
        assert writer.schema == SCHEMA_VERSION
        assert writer.last_reset_reason(1) == f"{FAILURE_RETRY} 1 of 2"
        assert writer.failure_retries_made([1]) == {1: 1}
    with closing(sqlite3.connect(path)) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert ("events_resets",) in db.execute("SELECT name FROM sqlite_master WHERE type='index'").fetchall()
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def _fail_and_retry(store: Store, run: int, jid: int, reason: str) -> None:
    store.begin_submit(run, [jid])
    store.transition(jid, S.SUBMITTED, provider_id=f"v{jid}")
    store.transition(jid, S.FAILED, error="boom")
    store.reset(jid, reason)


def test_failure_retries_are_counted_per_job_across_many_jobs(tmp_path: Path) -> None:
    """More jobs than one query takes (the ids go in chunks), asked for in any order and more than once."""
    with Store(tmp_path / "state.db") as store:
        run, ids = _run(store, tmp_path, 1203)
        with store.batch():
            for n, jid in enumerate(ids):
                for _ in range(n % 3):
                    _fail_and_retry(store, run, jid, f"{FAILURE_RETRY} 1 of 3")
                if n % 7 == 0 and n % 3:  # sent again on request: the count begins again
                    _fail_and_retry(store, run, jid, "retry")
                if n % 11 == 0 and n % 3:  # a failure retry never sent: undone, it made nothing
                    store.begin_submit(run, [jid])
                    store.transition(jid, S.SUBMITTED, provider_id="x")
                    store.transition(jid, S.FAILED, error="boom")
                    store.reset(jid, f"{FAILURE_RETRY} 2 of 3")
                    store.undo_reset(jid)
        expected = {jid: n % 3 for n, jid in enumerate(ids) if n % 3 and n % 7 != 0}
        asked = list(reversed(ids)) + ids[:10]
        assert store.failure_retries_made(asked) == expected
        some = ids[500:505]
        assert store.failure_retries_made(some) == {j: n for j, n in expected.items() if j in some}
        assert store.failure_retries_made([]) == {}


def test_a_migration_that_fails_is_rolled_back_and_its_error_surfaces(tmp_path: Path, monkeypatch) -> None:
    from runner import state

    path = tmp_path / "state.db"
    _schema_5(path)

    def m_broken(db: sqlite3.Connection) -> None:
        db.execute("CREATE TABLE half_made (x)")
        raise sqlite3.OperationalError("disk I/O error")

    monkeypatch.setattr(state, "_MIGRATIONS", [*_MIGRATIONS, m_broken])
    try:
        Store(path)
    except StateError as exc:  # named with the file, as any state that cannot be opened
        assert str(exc).startswith(f"{path}: cannot open state: disk I/O error; nothing was sent: "), str(exc)
    else:
        raise AssertionError("the failed migration was not reported")
    with closing(sqlite3.connect(path)) as db:  # the migrations before it stay; its own is undone
        assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert db.execute("SELECT name FROM sqlite_master WHERE name='half_made'").fetchone() is None


class _Recording:
    """A store's connection that keeps the queries run through it (sqlite3's own cannot be patched)."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self.db, self.queries = db, []

    def execute(self, sql: str, args: Any = ()) -> sqlite3.Cursor:
        self.queries.append((sql, args))
        return self.db.execute(sql, args)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.db, name)


def test_status_reads_the_runs_stop_and_its_jobs_ends_through_indexes_not_every_event(tmp_path: Path) -> None:
    """`status` (every 2 s with --watch) reads why the latest run stops and when its jobs ended: through the
    two partial indexes of schema 7, never a scan of every event of every run."""
    with Store(tmp_path / "state.db") as store:
        run, ids = _run(store, tmp_path, 2)
        store.begin_submit(run, [ids[0]])
        store.transition(ids[0], S.SUBMITTED, provider_id="v1")
        store.transition(ids[0], S.FAILED, error="boom")
        store.event(run, None, "run-stopping", {"why": "budget"})
        recording = _Recording(store.db)
        store.db = recording  # type: ignore[assignment]
        snap = store.snapshot(manifest_name="m")
        store.db = recording.db
        assert snap.stopping == "budget" and len(snap.ended) == 1
        (query, args), = [(q, a) for q, a in recording.queries if "run-stopping" in q]
        plan = _plan(store.db, query, args)
        assert "events_stops" in plan and "events_ends" in plan and "SCAN events" not in plan, plan
        sql = store.db.execute("SELECT sql FROM sqlite_master WHERE name='events_ends'").fetchone()[0]
        assert "kind='run-stopping'" in store.db.execute(
            "SELECT sql FROM sqlite_master WHERE name='events_stops'").fetchone()[0]
    from runner.state import _END_KINDS, FINAL

    # the index holds the final states' events, no other: each job's end, at little upkeep
    assert sql.endswith(f"WHERE {_END_KINDS}")
    assert set(re.findall(r"'([a-z-]+)'", _END_KINDS)) == {s.value for s in FINAL}


def _schema_6_stopping(path: Path, now: float) -> None:
    """A state file as gridrun wrote it before schema 7: run 2 of this process (started `now`, after it) goes
    on, stopping on its budget, two of its three jobs ended (one ended, was fetched again and ended again); run 1 was interrupted."""
    with old_state(path, 6) as db:
        for rid, status, ended in ((1, "interrupted", now - 50), (2, "running", None)):
            db.execute("INSERT INTO runs (id, manifest_name, manifest_path, outputs_dir, provider, model, started_at,"
                       " ended_at, status, pid, host) VALUES (?, 'm', 'm.yaml', 'out', 'sim', 'pixverse-v5.6', ?, ?, ?,"
                       " ?, ?)", (rid, now - 100 * (2 - rid), ended, status, os.getpid(), socket.gethostname()))
        for jid in (1, 2, 3):
            db.execute("INSERT INTO jobs (id, hash, key, vals, params, state, output_path, cost_estimate_micros,"
                       " created_at, updated_at) VALUES (?, ?, ?, '{}', '{}', ?, ?, 350000, 0, 0)",
                       (jid, f"h{jid}", f"seed={jid}", ("done", "failed", "running")[jid - 1], f"{jid}.mp4"))
            db.execute("INSERT INTO run_jobs (run_id, job_id, key, position) VALUES (2, ?, ?, ?)", (jid, f"seed={jid}", jid))
        db.executemany("INSERT INTO events (at, run_id, job_id, kind, detail) VALUES (?,?,?,?,?)", [
            (now - 60, 1, None, "run-stopping", '{"why": "interrupt"}'),
            (now + 0.1, None, 1, "done", None), (now + 0.2, None, 2, "failed", '{"error": "boom"}'),
            (now + 0.3, 2, None, "run-stopping", '{"why": "budget"}'),
            (now + 0.4, None, 1, "downloading", None), (now + 0.5, None, 1, "done", None),
        ])




def test_a_state_file_of_schema_6_says_why_its_run_stops_before_and_after_a_writer_upgrades_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    from runner.cli import main

    path, now = tmp_path / "state.db", time.time()
    _schema_6_stopping(path, now)
    columns = columns_of(path)
    before = contents(path)
    # status before any run upgrades it; a writer, which does; status after
    for readonly, schema in ((True, 6), (False, SCHEMA_VERSION), (True, SCHEMA_VERSION)):
        with Store(path, readonly=readonly) as store:
            assert store.schema == schema
            snap = store.snapshot(manifest_name="m")
        assert (snap.run.id, snap.stopping, snap.ended) == (2, "budget", (now + 0.1, now + 0.2))
        assert main(["status", "--state", str(tmp_path)]) == 0
        assert "run 2 (stopping (budget), started" in " ".join(capsys.readouterr().out.split())
    assert contents(path, columns) == before  # nothing lost or changed
    with closing(sqlite3.connect(path)) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
