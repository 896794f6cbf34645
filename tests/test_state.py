from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest

from runner.errors import LockError, StateError
from runner.state import JobState, Store, idempotency_key

from statekit import columns_of, contents, old_state

S = JobState


def _job(i: int, tmp: Path) -> dict:
    return {"hash": f"{i:064x}", "key": f"seed={i}", "sweep": None, "values": {"seed": i}, "params": {"prompt": "p"},
            "output_path": str(tmp / f"{i}.mp4"), "cost_estimate_micros": 350_000, "width": 960, "height": 540,
            "duration": 5}


@pytest.fixture
def store(tmp_path: Path) -> Store:
    s = Store(tmp_path / "state.db")
    yield s
    s.close()


def _run(store: Store, tmp: Path, n: int = 3) -> tuple[int, dict[str, int]]:
    run = store.start_run(manifest_name="m", manifest_path="m.yaml", manifest_copy="", outputs_dir=str(tmp),
                          provider="sim", model="pixverse-v5.6", axes=["seed"], budget_micros=None)
    return run, store.add_jobs(run, [_job(i, tmp) for i in range(n)])


def test_begin_submit_is_durable_before_it_returns(store: Store, tmp_path: Path) -> None:
    run, ids = _run(store, tmp_path)
    jid = ids[f"{0:064x}"]
    keys = store.begin_submit(run, [jid])
    with closing(sqlite3.connect(tmp_path / "state.db")) as other:
        row = other.execute("SELECT state, idempotency_key FROM attempts WHERE job_id=?", (jid,)).fetchone()
        assert row == ("submitting", keys[jid])
        assert other.execute("SELECT state FROM jobs WHERE id=?", (jid,)).fetchone()[0] == "submitting"
    assert keys[jid] == idempotency_key(f"{0:064x}", 1, store.key_salt())


def test_each_state_makes_keys_of_its_own_for_the_same_job(tmp_path: Path) -> None:
    """Two states asking for the same request (two manifests with a `state_dir:` each) send different keys, so
    that neither attaches to, cancels or bills the other's render; a state keeps its salt when opened again."""
    keys = []
    for name in ("p", "q"):
        with Store(tmp_path / name / "state.db") as store:
            run, ids = _run(store, tmp_path, n=1)
            keys.append(store.begin_submit(run, [ids[f"{0:064x}"]])[ids[f"{0:064x}"]])
            salt = store.key_salt()
        with Store(tmp_path / name / "state.db") as again:
            assert again.key_salt() == salt
    assert keys[0] != keys[1], keys
    for key in keys:
        assert re.fullmatch(rf"gridrun-{0:024x}-[0-9a-f]{{8}}-1", key), key


def test_each_new_attempt_gets_a_new_key(store: Store, tmp_path: Path) -> None:
    run, ids = _run(store, tmp_path)
    jid = ids[f"{1:064x}"]
    k1 = store.begin_submit(run, [jid])[jid]
    store.transition(jid, S.SUBMITTED, provider_id="v1")
    store.transition(jid, S.FAILED, error="boom")
    store.reset(jid, "retry")
    k2 = store.begin_submit(run, [jid])[jid]
    assert k1.endswith("-1") and k2.endswith("-2") and k1 != k2
    assert [a["n"] for a in store.attempts(jid)] == [1, 2]


def test_a_batch_of_attempts_is_written_with_as_many_statements_as_one_and_records_as_one_at_a_time(
    tmp_path: Path,
) -> None:
    """`begin_submit` of the jobs sent in the same moment: one statement of each kind for the batch, not one per
    job, recording the very rows (attempts, jobs, events, in the same order) that one call per job records."""
    recorded = {}
    for name, batches in (("one", [[0], [1], [2], [3], [4]]), ("batch", [[0], [1, 2, 3, 4]])):
        with Store(tmp_path / name / "state.db", clock=lambda: 1000.0) as store:
            store.db.execute("UPDATE meta SET value='5a17' WHERE name='key_salt'")
            run, _ = _run(store, tmp_path, n=0)
            # hashes that differ in their first 24 digits, which the keys are made of
            ids = store.add_jobs(run, [{**_job(i, tmp_path), "hash": f"{i + 1:x}" * 64} for i in range(5)])
            store.key_salt()  # each read once per store, at its first batch
            store._voided()
            counts = []
            for batch in batches:
                store.db = calls = _Calls(store.db)
                store.begin_submit(run, [ids[f"{i + 1:x}" * 64] for i in batch], made=("http://sim", True))
                store.db = calls.db
                counts.append(calls.n)
        recorded[name] = counts, contents(tmp_path / name / "state.db")
    one, four = recorded["batch"][0]
    assert four == one, f"a batch of four jobs took {four} statements, one job {one}"
    assert recorded["batch"][1] == recorded["one"][1]


class _Calls:
    """A store's connection that counts the statements sent to it (an `executemany` is one)."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self.db, self.n = db, 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.db, name)

    def execute(self, *args: Any) -> Any:
        self.n += 1
        return self.db.execute(*args)

    def executemany(self, *args: Any) -> Any:
        self.n += 1
        return self.db.executemany(*args)


def test_illegal_transition_names_job_and_both_states(store: Store, tmp_path: Path) -> None:
    run, ids = _run(store, tmp_path)
    jid = ids[f"{0:064x}"]
    with pytest.raises(StateError, match=r"job seed=0: cannot move from planned to done"):
        store.transition(jid, S.DONE)


def test_submit_only_from_planned_or_unknown(store: Store, tmp_path: Path) -> None:
    run, ids = _run(store, tmp_path)
    jid = ids[f"{0:064x}"]
    store.begin_submit(run, [jid])
    with pytest.raises(StateError, match="cannot submit from submitting"):
        store.begin_submit(run, [jid])


def test_void_attempt_returns_to_planned_and_reuses_the_number(store: Store, tmp_path: Path) -> None:
    run, ids = _run(store, tmp_path)
    jid = ids[f"{0:064x}"]
    k1 = store.begin_submit(run, [jid])[jid]
    store.void_attempt(jid, "never reached")
    assert store.job_row(jid)["state"] == "planned"
    assert store.begin_submit(run, [jid])[jid] == k1


def test_an_attempt_an_earlier_gridrun_keyed_without_the_salt_is_sent_again_with_its_own_key(
    store: Store, tmp_path: Path
) -> None:
    """An attempt recorded with a key an earlier gridrun made (no salt), voided as never having reached the provider,
    is sent again with that key, not the salted one a new attempt gets: a send of it still on its way to the
    provider (held by a gateway) is then found by the key, not paid a second time."""
    run, ids = _run(store, tmp_path)
    jid = ids[f"{0:064x}"]
    salted = store.begin_submit(run, [jid])[jid]
    unsalted = f"gridrun-{0:064x}"[:32] + "-1"  # gridrun-<hash[:24]>-<attempt>, as before states had a salt
    store.db.execute("UPDATE attempts SET idempotency_key=? WHERE job_id=?", (unsalted, jid))
    assert unsalted != salted
    store.void_attempt(jid, "never reached")
    assert store.begin_submit(run, [jid])[jid] == unsalted
    assert store.attempts(jid)[-1]["idempotency_key"] == unsalted


def test_a_voided_unsalted_key_is_sent_again_by_the_next_process_too(store: Store, tmp_path: Path) -> None:
    """The same voided attempt, its process ended before it sent the job again (a Ctrl-C, the budget, a crash): the
    next process sends it with that key too, and keeps it until it has sent it."""
    run, ids = _run(store, tmp_path)
    jid = ids[f"{0:064x}"]
    store.begin_submit(run, [jid])
    unsalted = f"gridrun-{0:064x}"[:32] + "-1"
    store.db.execute("UPDATE attempts SET idempotency_key=? WHERE job_id=?", (unsalted, jid))
    store.db.commit()
    store.void_attempt(jid, "never reached")
    path = store.path
    store.close()
    with Store(path) as again:
        run2 = again.start_run(manifest_name="m", manifest_path="m.yaml", manifest_copy="", outputs_dir=str(tmp_path),
                               provider="sim", model="pixverse-v5.6", axes=["seed"], budget_micros=None)
        assert again.begin_submit(run2, [jid])[jid] == unsalted
        assert again.db.execute("SELECT count(*) FROM meta WHERE name LIKE 'voided-key:%'").fetchone()[0] == 0
        again.void_attempt(jid, "never reached")  # voided again: its key is the state's own now
        assert again.db.execute("SELECT count(*) FROM meta WHERE name LIKE 'voided-key:%'").fetchone()[0] == 1
        assert again.begin_submit(run2, [jid])[jid] == unsalted


def test_money_counts_reserved_then_spent(store: Store, tmp_path: Path) -> None:
    run, ids = _run(store, tmp_path)
    jid = ids[f"{0:064x}"]
    store.begin_submit(run, [jid])
    assert store.money(run) == (0, 350_000)
    store.transition(jid, S.SUBMITTED, provider_id="v")
    store.transition(jid, S.DOWNLOADING)
    store.transition(jid, S.DONE, sha256="x", cost_micros=340_000)
    assert store.money(run) == (340_000, 0)


def test_lazy_writes_commit_on_flush(store: Store, tmp_path: Path) -> None:
    run, ids = _run(store, tmp_path)
    jid = ids[f"{0:064x}"]
    store.begin_submit(run, [jid])
    store.transition(jid, S.SUBMITTED, provider_id="v")
    store.transition(jid, S.RUNNING, lazy=True)
    with closing(sqlite3.connect(tmp_path / "state.db")) as other:
        assert other.execute("SELECT state FROM jobs WHERE id=?", (jid,)).fetchone()[0] == "submitted"
        store.flush()
        assert other.execute("SELECT state FROM jobs WHERE id=?", (jid,)).fetchone()[0] == "running"


def test_only_deferred_commits_skip_the_fsync(store: Store, tmp_path: Path) -> None:
    """A deferred (lazy) transaction commits under synchronous=NORMAL; every other commit, above all the
    write-ahead intent, under FULL (its fsync of the log also makes the deferred commits before it durable)."""
    run = store.start_run(manifest_name="m", manifest_path="m.yaml", manifest_copy="", outputs_dir=str(tmp_path),
                          provider="sim", model="pixverse-v5.6", axes=["seed"], budget_micros=None)
    ids = store.add_jobs(run, [{**_job(i, tmp_path), "hash": f"{i:x}" * 64} for i in (10, 11)])
    a, b = ids["a" * 64], ids["b" * 64]
    level = {"now": store.db.execute("PRAGMA synchronous").fetchone()[0]}
    commits: list[tuple[int, bool]] = []  # (synchronous level, the transaction wrote an attempt)
    wrote_attempt = [False]

    def trace(sql: str) -> None:
        if sql.startswith("PRAGMA synchronous="):
            level["now"] = {"NORMAL": 1, "FULL": 2}[sql.split("=")[1]]
        elif sql.startswith("INSERT INTO attempts"):
            wrote_attempt[0] = True
        elif sql == "COMMIT":
            commits.append((level["now"], wrote_attempt[0]))
            wrote_attempt[0] = False

    store.db.set_trace_callback(trace)
    store.begin_submit(run, [a])
    store.transition(a, S.SUBMITTED, lazy=True, provider_id="v")
    store.transition(a, S.RUNNING, lazy=True)
    assert store.db.execute("PRAGMA synchronous").fetchone()[0] == 1
    store.begin_submit(run, [b])  # commits the deferred moves first, then its intent durably
    store.transition(b, S.SUBMITTED, lazy=True, provider_id="w")
    store.flush()
    store.transition(b, S.FAILED, error="boom")
    store.db.set_trace_callback(None)
    assert commits == [(2, True), (1, False), (2, True), (1, False), (2, False)]
    assert store.db.execute("PRAGMA synchronous").fetchone()[0] == 2
    with closing(sqlite3.connect(tmp_path / "state.db")) as other:
        assert dict(other.execute("SELECT id, state FROM jobs")) == {a: "running", b: "failed"}


def test_snapshot_reads_jobs_in_plan_order(store: Store, tmp_path: Path) -> None:
    run, _ = _run(store, tmp_path, n=4)
    snap = store.snapshot(run)
    assert [j.key for j in snap.jobs] == ["seed=0", "seed=1", "seed=2", "seed=3"]
    assert snap.counts["planned"] == 4 and snap.run.axes == ("seed",)


def test_readonly_store_reads_while_writer_holds_lock(store: Store, tmp_path: Path) -> None:
    store.acquire_lock()
    run, _ = _run(store, tmp_path)
    ro = Store(tmp_path / "state.db", readonly=True)
    assert len(ro.snapshot().jobs) == 3


def test_second_runner_is_refused_naming_the_holder(store: Store, tmp_path: Path) -> None:
    store.acquire_lock()
    other = Store(tmp_path / "state.db")
    with pytest.raises(LockError, match=rf"pid {os.getpid()}"):
        other.acquire_lock()


def _linked_states(tmp_path: Path) -> tuple[Path, Path, Path]:
    """Two project folders whose .gridrun/state.db links to one file elsewhere: one state, shared."""
    real = tmp_path / "real" / "state.db"
    real.parent.mkdir()
    links = []
    for name in ("a", "b"):
        link = tmp_path / name / ".gridrun" / "state.db"
        link.parent.mkdir(parents=True)
        link.symlink_to(real)
        links.append(link)
    return real, links[0], links[1]


def test_two_folders_whose_state_db_links_to_one_file_share_its_runner_lock(tmp_path: Path) -> None:
    """The runner lock belongs to the state file SQLite opens, beside it, not beside each link to it: a second
    runner through another link is refused, the refusal naming the folder it gave and the file it shares."""
    real, a, b = _linked_states(tmp_path)
    first = Store(a)
    first.acquire_lock(manifest=a.parent.parent / "m.yaml")
    second = Store(b)
    with pytest.raises(LockError) as refused:
        second.acquire_lock(manifest=b.parent.parent / "m.yaml")
    text = str(refused.value)
    assert text.startswith(f"{b.parent} (its state.db is {real}, which it shares): another gridrun runner holds this "
                           f"state (pid {os.getpid()} on "), text
    assert (real.parent / "lock").is_file() and not (a.parent / "lock").exists() and not (b.parent / "lock").exists()
    assert second.lock_note() == "this gridrun holds the runner lock"  # not "free": read beside the real file
    first.close()
    second.acquire_lock()  # let go: the other link's runner takes it
    second.close()


def test_a_lock_held_by_another_manifests_run_names_it_and_says_how_to_run_beside_it(
    store: Store, tmp_path: Path
) -> None:
    """Manifests of one folder share its state, so its lock: the refusal says which run of which manifest holds it,
    and that `state_dir:` gives a manifest a state of its own; a second run of the same manifest is told only to
    wait."""
    store.acquire_lock(manifest="/p/grid.yaml")
    store.start_run(manifest_name="grid", manifest_path="/p/grid.yaml", manifest_copy="", outputs_dir=str(tmp_path),
                    provider="sim", model="pixverse-v5.6", axes=[], budget_micros=None)
    other = Store(tmp_path / "state.db")
    with pytest.raises(LockError) as refused:
        other.acquire_lock(manifest="/p/slow.yaml")
    text = str(refused.value)
    assert text.startswith(f"{tmp_path}: another gridrun runner holds this state (pid {os.getpid()} on "), text
    assert text.endswith("): run 1 of /p/grid.yaml, which shares this state (one runner at a time): wait for it "
                         "to finish, or stop it, then run again (`gridrun status` works meanwhile); or give this "
                         "manifest a `state_dir:` of its own (it then reuses none of these videos)"), text
    with pytest.raises(LockError) as refused:
        other.acquire_lock(manifest="/p/grid.yaml")
    assert "): run 1 of this manifest; wait for it to finish" in str(refused.value)
    assert "state_dir" not in str(refused.value)
    other.close()


def _held_by_a_run_of(store: Store, manifest: Path, tmp_path: Path, name: str = "grid") -> None:
    store.acquire_lock(manifest=manifest, name=name)
    store.start_run(manifest_name=name, manifest_path=str(manifest), manifest_copy="", outputs_dir=str(tmp_path),
                    provider="sim", model="pixverse-v5.6", axes=[], budget_micros=None)


def test_a_lock_held_by_a_run_of_this_manifest_file_by_another_path_says_to_wait_for_it(
    store: Store, tmp_path: Path
) -> None:
    """The manifest file the holding run recorded, reached by another path (a link to it; its folder renamed since,
    the recorded path gone): a run of this manifest, to wait for, not another one to give a `state_dir:` of its
    own, which would send its jobs in flight again."""
    real = tmp_path / "p" / "grid.yaml"
    real.parent.mkdir()
    real.write_text("name: grid\n")
    alias = tmp_path / "p" / "alias.yaml"
    alias.symlink_to(real.name)
    _held_by_a_run_of(store, real, tmp_path)
    other = Store(tmp_path / "state.db")
    for cancel in (False, True):
        with pytest.raises(LockError) as refused:
            other.acquire_lock(manifest=alias, name="grid", cancel=cancel)
        text = str(refused.value)
        assert f"): run 1 of this manifest (as {real}); " in text and "state_dir" not in text, text
    moved = tmp_path / "q"
    real.parent.rename(moved)  # the project folder renamed while its run goes on
    with pytest.raises(LockError) as refused:
        other.acquire_lock(manifest=moved / "grid.yaml", name="grid")
    text = str(refused.value)
    assert f"): run 1 of this manifest (as {real}); wait for it to finish" in text and "state_dir" not in text, text
    with pytest.raises(LockError) as refused:  # another manifest of the folder is another still
        other.acquire_lock(manifest=moved / "slow.yaml", name="slow")
    assert f"): run 1 of {real}, which shares this state" in str(refused.value), str(refused.value)
    other.close()


def test_a_lock_file_deleted_during_a_run_names_the_run_the_state_records_going_on(
    store: Store, tmp_path: Path
) -> None:
    """The lock file removed by hand while a run holds the state (its folder's lock held still): the refused process
    finds no holder line in the file it makes anew, and names the run the state records as running in a process
    that lives, not "another process" to give a `state_dir:` of its own."""
    _held_by_a_run_of(store, tmp_path / "grid.yaml", tmp_path)
    (tmp_path / "lock").unlink()
    other = Store(tmp_path / "state.db")
    with pytest.raises(LockError) as refused:
        other.acquire_lock(manifest=tmp_path / "grid.yaml", name="grid")
    text = str(refused.value)
    assert text.startswith(f"{tmp_path}: another gridrun runner holds this state (pid {os.getpid()} on "), text
    assert "): run 1 of this manifest; wait for it to finish" in text and "state_dir" not in text, text
    with pytest.raises(LockError) as refused:
        other.acquire_lock(manifest=tmp_path / "slow.yaml", name="slow")
    assert f"): run 1 of {tmp_path / 'grid.yaml'}, which shares this state" in str(refused.value)
    other.close()


def test_a_lock_whose_holder_has_recorded_no_run_still_says_the_state_is_shared(store: Store, tmp_path: Path) -> None:
    store.acquire_lock()  # a runner starting, or a cancel
    other = Store(tmp_path / "state.db")
    shared = r"\) \(the manifests of one folder share its state, one runner at a time\): .* `state_dir:`"
    with pytest.raises(LockError, match=shared):
        other.acquire_lock(manifest="/p/slow.yaml")
    other.close()


def test_a_lock_taken_for_this_manifest_by_a_run_not_recorded_yet_says_to_wait_not_to_split_the_state(
    store: Store, tmp_path: Path
) -> None:
    """The lock file names the manifest it was taken for: a second run of the same manifest, refused by one that
    has taken the lock but recorded no run yet (it plans, asks the balance), is told to wait for it, not to give
    the manifest a `state_dir:` of its own (a state that would know none of its paid jobs)."""
    store.acquire_lock(manifest="/p/grid.yaml", name="grid")
    other = Store(tmp_path / "state.db")
    with pytest.raises(LockError) as refused:
        other.acquire_lock(manifest="/p/grid.yaml", name="grid")
    text = str(refused.value)
    assert text.startswith(f"{tmp_path}: another run of this manifest (pid {os.getpid()} on "), text
    assert text.endswith(") holds this state, starting: wait for it to finish (`gridrun status --watch` follows "
                         "it), or stop it, then run again"), text
    with pytest.raises(LockError) as refused:  # a cancel of the same manifest is told to stop it
        other.acquire_lock(then="cancel", manifest="/p/grid.yaml", name="grid", cancel=True)
    assert str(refused.value).endswith(") holds this state, starting: stop it, then cancel"), str(refused.value)
    other.close()


def test_a_lock_taken_by_a_cancel_of_this_manifest_says_so(store: Store, tmp_path: Path) -> None:
    store.acquire_lock(manifest="/p/grid.yaml", name="grid", cancel=True)
    other = Store(tmp_path / "state.db")
    with pytest.raises(LockError) as refused:
        other.acquire_lock(manifest="/p/grid.yaml", name="grid")
    text = str(refused.value)
    assert text.startswith(f"{tmp_path}: a `gridrun cancel` of this manifest (pid {os.getpid()} on "), text
    assert text.endswith("holds this state: wait for it to end (it asks the provider about each job in flight), "
                         "then run again"), text
    assert "state_dir" not in text
    other.close()


def test_a_lock_taken_for_another_manifest_by_a_run_not_recorded_yet_names_it_and_says_how_to_run_beside_it(
    store: Store, tmp_path: Path
) -> None:
    store.acquire_lock(manifest="/p/grid.yaml", name="grid")
    other = Store(tmp_path / "state.db")
    with pytest.raises(LockError) as refused:
        other.acquire_lock(manifest="/p/slow.yaml", name="slow")
    text = str(refused.value)
    assert text.startswith(f"{tmp_path}: another gridrun runner holds this state (pid {os.getpid()} on "), text
    assert text.endswith("): a run starting of /p/grid.yaml, which shares this state (one runner at a time): wait "
                         "for it to finish, or stop it, then run again (`gridrun status` works meanwhile); or give "
                         "this manifest a `state_dir:` of its own (it then reuses none of these videos)"), text
    other.close()


def test_the_lock_and_starting_files_record_the_manifest_and_older_ones_without_it_are_read(
    store: Store, tmp_path: Path
) -> None:
    from runner.state import announcing_start, lock_record, start_record

    store.acquire_lock(manifest="/p/grid.yaml", name="grid", cancel=True)
    held = lock_record(tmp_path)
    assert held is not None and (held.pid, held.command, held.name, held.manifest) == \
        (os.getpid(), "cancel", "grid", "/p/grid.yaml")
    store.release_lock()
    with announcing_start(tmp_path, manifest="/p/slow.yaml", name="slow"):
        starting = start_record(tmp_path)
        assert starting is not None and (starting.pid, starting.command, starting.name, starting.manifest) == \
            (os.getpid(), "run", "slow", "/p/slow.yaml")
    assert start_record(tmp_path) is None
    (tmp_path / "lock").write_text(f"pid {os.getpid()} on {socket.gethostname()} since "
                                   f"{time.strftime('%Y-%m-%d %H:%M:%S')}")  # as an older gridrun wrote it
    older = lock_record(tmp_path)
    assert older is not None and (older.pid, older.command, older.name, older.manifest) == \
        (os.getpid(), None, None, None)


def test_the_lock_holds_when_its_lock_file_is_deleted_by_hand(store: Store, tmp_path: Path) -> None:
    """Deleting a lock file that looks stale is a common habit; a second runner must still be refused."""
    store.acquire_lock()
    (tmp_path / "lock").unlink()
    other = Store(tmp_path / "state.db")
    with pytest.raises(LockError, match="another gridrun runner holds this state"):
        other.acquire_lock()
    other.close()
    store.release_lock()
    again = Store(tmp_path / "state.db")
    again.acquire_lock()
    assert f"pid {os.getpid()}" in (tmp_path / "lock").read_text()
    again.close()


def test_lock_of_a_dead_process_is_taken_over(tmp_path: Path) -> None:
    code = (
        "import sys, time; from pathlib import Path; from runner.state import Store;"
        "s = Store(Path(sys.argv[1])); s.acquire_lock(); print('locked', flush=True); time.sleep(60)"
    )
    proc = subprocess.Popen([sys.executable, "-c", code, str(tmp_path / "state.db")], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "locked"
        with pytest.raises(LockError):
            Store(tmp_path / "state.db").acquire_lock()
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
        s = Store(tmp_path / "state.db")
        s.acquire_lock()
        s.close()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()


def test_newer_schema_is_refused_clearly(tmp_path: Path) -> None:
    Store(tmp_path / "state.db").close()
    db = sqlite3.connect(tmp_path / "state.db")
    db.execute("PRAGMA user_version = 99")
    db.commit()
    db.close()
    with pytest.raises(StateError, match="newer gridrun"):
        Store(tmp_path / "state.db")


def test_a_runner_refused_the_lock_leaves_an_older_state_as_it_is_and_one_that_takes_it_migrates_it(
    tmp_path: Path
) -> None:
    """An older gridrun's run holds the state: a newer one refused the lock must not migrate the state under it
    (the old run could then no longer read it: its report and `status` failed, "written by a newer gridrun").
    Opened while the lock is held and taking it once let go, a runner migrates the state then."""
    import fcntl

    from runner.state import SCHEMA_VERSION

    db = tmp_path / "state.db"
    with old_state(db, SCHEMA_VERSION - 1):
        pass
    holder = os.open(tmp_path / "lock", os.O_RDWR | os.O_CREAT, 0o644)  # an older gridrun's run, say
    fcntl.flock(holder, fcntl.LOCK_EX | fcntl.LOCK_NB)

    def schema() -> int:
        with closing(sqlite3.connect(db)) as conn:
            return conn.execute("PRAGMA user_version").fetchone()[0]

    refused = Store(db)
    with pytest.raises(LockError, match="another gridrun runner holds this state"):
        refused.acquire_lock()
    refused.close()
    assert schema() == SCHEMA_VERSION - 1
    waiting = Store(db)  # opened while it is held
    os.close(holder)
    waiting.acquire_lock()
    assert schema() == SCHEMA_VERSION and waiting.schema == SCHEMA_VERSION and len(waiting.key_salt()) == 8
    waiting.close()


def test_a_reader_racing_the_first_write_finds_no_state_yet(tmp_path: Path) -> None:
    # The moment a first run has created the file but not yet its schema, `gridrun status` elsewhere says
    # there is nothing yet, not that the file needs an upgrade.
    with closing(sqlite3.connect(tmp_path / "state.db")) as db:
        db.execute("PRAGMA journal_mode=WAL")
    with pytest.raises(StateError, match="no state yet"):
        Store(tmp_path / "state.db", readonly=True)
    Store(tmp_path / "state.db").close()  # the writer then makes the schema
    Store(tmp_path / "state.db", readonly=True).close()


def _open_at_once(path: Path, ready: Any, done: Any, results: Any) -> None:
    """One of several runners starting at once: it opens the state, then takes the runner lock or finds it
    held, and holds what it got until every one has tried."""
    try:
        ready.wait(timeout=60)
        store = Store(path)
        try:
            store.acquire_lock()
            results.put("locked")
        except LockError:
            results.put("lock held")
        done.wait(timeout=60)
        store.close()
    except BaseException as exc:
        results.put(f"{type(exc).__name__}: {exc}")
        done.abort()


def test_runners_opening_a_new_state_at_once_migrate_it_once_and_the_others_find_the_lock_held(tmp_path: Path) -> None:
    """The first to open a new state makes its schema; the others wait for it and find it made (not `table runs
    already exists`, nor `database is locked` from the switch to WAL), then meet the runner lock."""
    import multiprocessing

    from runner.state import SCHEMA_VERSION

    ctx = multiprocessing.get_context("fork")
    n = 8
    # Eight fresh openers meet the race at every trial: a migration that read the schema outside its write
    # transaction fails each one ('table runs already exists'); a few trials are as sure as many.
    for trial in range(4):
        path = tmp_path / f"t{trial}" / "state.db"
        ready, done, results = ctx.Barrier(n), ctx.Barrier(n), ctx.Queue()
        procs = [ctx.Process(target=_open_at_once, args=(path, ready, done, results)) for _ in range(n)]
        for p in procs:
            p.start()
        got = sorted(results.get(timeout=60) for _ in procs)
        for p in procs:
            p.join(timeout=60)
        assert got == ["lock held"] * (n - 1) + ["locked"], got
        with closing(sqlite3.connect(path)) as db:
            assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
            assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_not_a_database_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "state.db").write_text("hello, this is not sqlite" * 100)
    with pytest.raises(StateError, match="not a gridrun state file|cannot open"):
        Store(tmp_path / "state.db")


@pytest.mark.parametrize("table", ["other", "runs"])
@pytest.mark.parametrize("readonly", [False, True])
def test_another_programs_sqlite_database_is_refused_and_left_as_it_is(tmp_path: Path, readonly: bool, table: str) -> None:
    """A file with tables but no gridrun schema is not taken for a new state: no tables added beside its own, no
    switch to WAL, and not called "no state yet" or a folder not writable."""
    path = tmp_path / "state.db"
    with closing(sqlite3.connect(path)) as db:
        db.execute(f"CREATE TABLE {table} (a)")
        db.execute(f"INSERT INTO {table} VALUES (1)")
        db.commit()
    before = path.read_bytes()
    with pytest.raises(StateError) as exc:
        Store(path, readonly=readonly).__enter__()
    said = str(exc.value)
    assert "not a gridrun state file" in said and f"'{table}'" in said, said
    assert "writable" not in said and "no state yet" not in said
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["state.db"]


def test_every_command_refuses_another_programs_sqlite_database(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from runner.cli import main

    m = tmp_path / "m.yaml"
    m.write_text("version: 1\nname: m\nprovider: sim\nmodel: pixverse-v5.6\nparams: {prompt: a fox, duration: 5}\n"
                 "run: {budget_usd: 5}\n", encoding="utf-8")
    (tmp_path / ".gridrun").mkdir()
    path = tmp_path / ".gridrun" / "state.db"
    with closing(sqlite3.connect(path)) as db:
        db.execute("CREATE TABLE other (a)")
        db.commit()
    before = path.read_bytes()
    for args in (["run", str(m)], ["plan", str(m)], ["status", str(m)], ["status", "--state", str(path.parent)],
                 ["report", str(m)], ["export", str(m)], ["retry", str(m)], ["cancel", str(m)]):
        assert main(args) != 0, args
        err = capsys.readouterr().err
        assert "state.db: not a gridrun state file" in err and "Traceback" not in err, (args, err)
        assert path.read_bytes() == before, args
    assert sorted(p.name for p in path.parent.iterdir()) == ["state.db"]
    assert not (tmp_path / "outputs").exists()


@pytest.mark.parametrize("readonly", [False, True])
def test_a_damaged_state_file_is_named_damaged_with_what_to_do(tmp_path: Path, readonly: bool) -> None:
    """A state file cut short (a copy or sync that stopped midway) is gridrun's, damaged: not "not a gridrun state
    file", which reads as the wrong file named. Nothing in it is changed by the attempt."""
    path = tmp_path / "state.db"
    with Store(path):
        pass
    with closing(sqlite3.connect(path)) as db:  # pages enough that a cut leaves a whole header and a lost table
        db.execute("CREATE TABLE pad (x)")
        db.executemany("INSERT INTO pad VALUES (?)", [(b"x" * 4000,)] * 40)
        db.commit()
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 3])
    cut = path.read_bytes()
    with pytest.raises(StateError) as exc:
        Store(path, readonly=readonly).__enter__()
    said = str(exc.value)
    assert "the state file is damaged" in said and "Restore state.db from a backup" in said, said
    assert "not a gridrun state file" not in said
    assert path.read_bytes() == cut


@pytest.mark.parametrize("readonly", [False, True])
def test_a_folder_in_the_state_files_place_is_named_as_such(tmp_path: Path, readonly: bool) -> None:
    (tmp_path / "state.db").mkdir()
    with pytest.raises(StateError, match=r"state.db is a folder; the state is a file there"):
        Store(tmp_path / "state.db", readonly=readonly)


def test_crashed_runs_are_marked_when_a_new_run_starts(store: Store, tmp_path: Path) -> None:
    r1, _ = _run(store, tmp_path)
    r2, _ = _run(store, tmp_path)
    assert store.run(r1).status == "crashed" and store.run(r2).status == "running"


def test_a_crashed_run_ends_at_its_last_record_not_when_the_next_run_began(store: Store, tmp_path: Path) -> None:
    """Its report and export measure the run's own time (as `status` did while it lay dead), not the idle time
    until someone ran again."""
    now = [100.0]
    store.clock = lambda: now[0]
    r1, ids = _run(store, tmp_path)
    now[0] = 104.0
    store.begin_submit(r1, [ids[f"{0:064x}"]])
    now[0] = 106.0
    store.seen(r1)
    store.flush()
    now[0] = 900.0  # killed at 106; run again much later
    r2, _ = _run(store, tmp_path)
    assert store.run(r1).status == "crashed" and store.run(r1).ended_at == 106.0
    assert store.run(r2).started_at == 900.0


def test_voiding_the_attempt_a_reset_made_way_for_puts_the_job_back_as_it_was(store: Store, tmp_path: Path) -> None:
    """--force resets a done job and sends it again; when that create provably never reached the provider the
    job is done again, with its video's record, so a later plain run does not pay for it."""
    run, ids = _run(store, tmp_path)
    jid = ids[f"{2:064x}"]
    store.begin_submit(run, [jid])
    store.transition(jid, S.SUBMITTED, provider_id="v1")
    store.transition(jid, S.DOWNLOADING, url="https://x/v1.mp4")
    store.transition(jid, S.DONE, sha256="ab" * 32, downloaded_at=5.0, done_run_id=run, cost_micros=350_000,
                     cost_reported_micros=350_000)
    before = dict(store.job_row(jid))
    store.reset(jid, "--force")
    assert store.begin_submit(run, [jid]) and store.job_row(jid)["cost_reported_micros"] is None  # the new attempt's
    assert store.void_attempt(jid, "never reached the provider") == S.DONE
    after = dict(store.job_row(jid))
    for field in ("state", "sha256", "downloaded_at", "done_run_id", "provider_id", "url", "attempts", "cost_micros",
                  "cost_reported_micros"):
        assert after[field] == before[field], field
    assert [a["n"] for a in store.attempts(jid)] == [1]
    # undone each time; and a reset whose attempt did reach the provider is not undone by a later void
    store.reset(jid, "--force")
    store.begin_submit(run, [jid])
    assert store.void_attempt(jid, "again") == S.DONE
    store.reset(jid, "--force")
    store.begin_submit(run, [jid])
    store.transition(jid, S.UNKNOWN, error="lost answer")
    store.begin_submit(run, [jid])
    assert store.void_attempt(jid, "retry --unknown") == S.PLANNED


def test_a_state_file_of_the_first_schema_is_read_as_it_is_and_upgraded_by_a_writer(tmp_path: Path) -> None:
    """`status` of a folder an earlier gridrun wrote works before any run upgrades it."""
    path = tmp_path / "state.db"
    with closing(sqlite3.connect(path)) as db:
        from runner.state import _MIGRATIONS

        _MIGRATIONS[0](db)
        db.execute("PRAGMA user_version = 1")
        db.commit()
    reader = Store(path, readonly=True)
    assert reader.schema == 1 and reader.money() == (0, 0)
    reader.close()
    writer = Store(path)
    run, ids = _run(writer, tmp_path, n=1)
    assert writer.schema == len(_MIGRATIONS) and "billed_run_id" in {r[1] for r in writer.db.execute("PRAGMA table_info(attempts)")}
    assert "events_resets" in {r[0] for r in writer.db.execute("SELECT name FROM sqlite_master WHERE type='index'")}
    assert writer.money(run) == (0, 0)
    writer.close()


def test_a_state_file_of_schema_9_is_given_a_salt_and_its_attempts_keep_the_keys_they_were_sent_with(
    tmp_path: Path
) -> None:
    """An attempt an earlier gridrun left `submitting` is looked up and sent again with the key it was sent
    with (`following`), not one made with the salt the upgrade gives the state; new attempts carry the salt."""
    path = tmp_path / "state.db"
    old_key = f"gridrun-{'a' * 24}-1"
    with old_state(path, 9) as db:
        db.execute("INSERT INTO runs (manifest_name, manifest_path, outputs_dir, provider, model, started_at, ended_at,"
                   " status) VALUES ('m', 'm.yaml', 'out', 'sim', 'pixverse-v5.6', 1, 9, 'crashed')")
        db.execute("INSERT INTO jobs (hash, key, vals, params, state, output_path, cost_estimate_micros, attempts,"
                   " created_at, updated_at, submitted_at) VALUES (?, 'seed=1', '{}', '{}', 'submitting', 'o.mp4',"
                   " 350000, 1, 1, 2, 2)", ("a" * 64,))
        db.execute("INSERT INTO run_jobs (run_id, job_id, key, position) VALUES (1, 1, 'seed=1', 0)")
        db.execute("INSERT INTO attempts (job_id, n, run_id, idempotency_key, state, estimate_micros, started_at)"
                   " VALUES (1, 1, 1, ?, 'submitting', 350000, 2)", (old_key,))
    with Store(path) as writer:
        assert re.fullmatch(r"[0-9a-f]{8}", writer.key_salt())
        assert writer.following(1).idempotency_key == old_key
        run, ids = _run(writer, tmp_path, n=1)
        new_key = writer.begin_submit(run, [ids[f"{0:064x}"]])[ids[f"{0:064x}"]]
        assert new_key == f"gridrun-{0:024x}-{writer.key_salt()}-1"
        assert [a["idempotency_key"] for a in writer.attempts(1)] == [old_key]


def test_a_state_file_of_schema_7_keeps_every_row_and_its_done_jobs_have_no_reported_cost(tmp_path: Path) -> None:
    """A job done before the state kept what the provider reported it charged: an upgraded state keeps all it
    held and says that cost is not known (None; a sidecar written again from it says null), not a guess."""
    from runner.state import SCHEMA_VERSION

    path = tmp_path / "state.db"
    with old_state(path, 7) as db:
        db.execute("INSERT INTO runs (manifest_name, manifest_path, outputs_dir, provider, model, started_at, ended_at,"
                   " status) VALUES ('m', 'm.yaml', 'out', 'sim', 'pixverse-v5.6', 1, 9, 'done')")
        db.execute("INSERT INTO jobs (hash, key, vals, params, state, output_path, cost_estimate_micros, cost_micros,"
                   " attempts, provider_id, sha256, created_at, updated_at, done_run_id)"
                   " VALUES ('h', 'seed=1', '{}', '{}', 'done', 'o.mp4', 350000, 350000, 1, 'v1', 'ab', 1, 8, 1)")
        db.execute("INSERT INTO run_jobs (run_id, job_id, key, position) VALUES (1, 1, 'seed=1', 0)")
        db.execute("INSERT INTO attempts (job_id, n, run_id, idempotency_key, state, estimate_micros, billed_micros,"
                   " started_at, billed_run_id) VALUES (1, 1, 1, 'k-1', 'done', 350000, 350000, 2, 1)")
        db.execute("INSERT INTO events (at, run_id, job_id, kind) VALUES (8, NULL, 1, 'done')")
    columns = columns_of(path)
    before = contents(path, columns)
    with Store(path, readonly=True) as reader:  # status, report: read as it is
        assert reader.schema == 7 and reader.snapshot(1).jobs[0].cost_micros == 350_000
    with Store(path) as writer:
        assert writer.schema == SCHEMA_VERSION
        assert writer.job_row(1)["cost_reported_micros"] is None and writer.money(1) == (350_000, 0)
    assert contents(path, columns) == before
    with closing(sqlite3.connect(path)) as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def _failed(store: Store, run: int, jid: int) -> None:
    store.begin_submit(run, [jid])
    store.transition(jid, S.SUBMITTED, provider_id=f"v{jid}")
    store.transition(jid, S.FAILED, error="boom")


def test_a_batch_rolled_back_leaves_no_move_of_it_in_the_state_checks(store: Store, tmp_path: Path) -> None:
    """The store remembers job states to spare a read per move; a batch that fails midway is rolled back, and
    a move allowed only from a state it made must be refused."""
    run, ids = _run(store, tmp_path)
    a, b = ids[f"{0:064x}"], ids[f"{1:064x}"]
    _failed(store, run, a)
    with pytest.raises(RuntimeError, match="midway"), store.batch():
        store.reset(a, "retry")  # failed -> planned, not committed
        store.transition(b, S.SUBMITTING)
        raise RuntimeError("midway")
    assert store.job_row(a)["state"] == "failed" and store.job_row(b)["state"] == "planned"
    with pytest.raises(StateError, match="cannot move from failed to submitting"):
        store.transition(a, S.SUBMITTING)
    with pytest.raises(StateError, match="cannot move from planned to submitted"):
        store.transition(b, S.SUBMITTED)
    assert store.job_row(a)["state"] == "failed" and store.job_row(b)["state"] == "planned"


def test_a_begin_submit_rolled_back_leaves_its_jobs_planned_for_the_state_checks(store: Store, tmp_path: Path) -> None:
    """A submit batch refused at a later job writes no attempt for the earlier ones: they may not be moved on
    as if they had one."""
    run, ids = _run(store, tmp_path)
    a, b = ids[f"{0:064x}"], ids[f"{1:064x}"]
    store.transition(b, S.SUBMITTING)
    with pytest.raises(StateError, match="cannot submit from submitting"):
        store.begin_submit(run, [a, b])
    assert store.job_row(a)["state"] == "planned" and store.attempts(a) == []
    with pytest.raises(StateError, match="cannot move from planned to submitted"):
        store.transition(a, S.SUBMITTED, provider_id="v")
    assert store.begin_submit(run, [a])[a].endswith("-1")


def test_a_state_folder_whose_path_has_uri_characters_is_read(tmp_path: Path) -> None:
    """Readers open the state by URI: '#' and '?' in a folder name are part of the path, not of the URI."""
    folder = tmp_path / "take #2?final"
    s = Store(folder / "state.db")
    run, _ = _run(s, folder)
    s.close()
    with Store(folder / "state.db", readonly=True) as ro:
        assert len(ro.snapshot().jobs) == 3


def test_a_state_folder_on_a_read_only_mount_is_read(tmp_path: Path) -> None:
    """An archived project on a read-only mount: SQLite cannot make the files WAL reading needs there, so a
    whole state file (its log empty) is read as immutable."""
    src, ro = tmp_path / "src", tmp_path / "ro"
    s = Store(src / "state.db")
    _run(s, src)
    s.close()
    for extra in ("state.db-wal", "state.db-shm", "lock"):  # a finished project, copied: its state file alone
        (src / extra).unlink(missing_ok=True)
    ro.mkdir()
    if subprocess.run(["mount", "--bind", str(src), str(ro)], capture_output=True).returncode != 0:
        pytest.skip("cannot bind-mount here")
    try:
        if subprocess.run(["mount", "-o", "remount,bind,ro", str(ro)], capture_output=True).returncode != 0:
            pytest.skip("cannot make a read-only mount here")
        with Store(ro / "state.db", readonly=True) as reader:
            assert len(reader.snapshot().jobs) == 3
    finally:
        subprocess.run(["umount", str(ro)], capture_output=True)


def test_a_file_system_that_cannot_lock_a_folder_still_locks_the_lock_file(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On NFS an exclusive flock needs a file open for writing: a folder cannot be locked there. The lock file
    alone then holds the state, and only a lock held by another counts as held."""
    import errno
    import fcntl
    import stat

    real = fcntl.flock

    def nfs_like(fd: int, op: int) -> None:
        if stat.S_ISDIR(os.fstat(fd).st_mode):
            raise OSError(errno.EBADF, "Bad file descriptor")
        real(fd, op)

    monkeypatch.setattr(fcntl, "flock", nfs_like)
    store.acquire_lock()
    other = Store(tmp_path / "state.db")
    with pytest.raises(LockError, match=rf"pid {os.getpid()}"):
        other.acquire_lock()
    other.close()
    store.release_lock()
    again = Store(tmp_path / "state.db")
    again.acquire_lock()
    again.close()


def test_a_write_waits_for_another_programs_write_transaction_as_long_as_it_says_and_no_longer(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A run's write (`on_busy` set) held up by another program's write transaction gives up at BUSY_PATIENCE,
    its last wait cut to what is left, not a wait early or late; the writes after it (the run's end record) then
    wait only BUSY_GRACE, not another BUSY_TIMEOUT each, so the run stops when it said; once that program lets
    go, a write waits as long as before."""
    from runner import state as state_mod

    monkeypatch.setattr(state_mod, "BUSY_TIMEOUT", 1.0)
    monkeypatch.setattr(state_mod, "BUSY_PATIENCE", 2.5)
    store = Store(tmp_path / "state.db")
    told: list[float] = []
    store.on_busy = lambda waited, ended: told.append(waited)

    def timed(write: Any) -> float:
        began = time.monotonic()
        with pytest.raises(sqlite3.OperationalError, match="locked"):
            write()
        return time.monotonic() - began

    with closing(store), closing(sqlite3.connect(tmp_path / "state.db", isolation_level=None, timeout=0)) as other:
        run, ids = _run(store, tmp_path)
        other.execute("BEGIN IMMEDIATE")
        first = timed(lambda: store.begin_submit(run, [ids[f"{0:064x}"]]))
        # Bounds wide of a busy machine's delays: it gave up at 2.0 s (2.0 + 1.0 > 2.5), and would not take another
        # whole BUSY_TIMEOUT past its patience.
        assert 2.49 <= first < 3.4, first
        assert len(told) == 2 and told[0] >= 0.99 and told[1] >= 1.99, told
        assert timed(lambda: store.end_run(run, "crashed")) < 0.6  # BUSY_GRACE (0.1), not BUSY_TIMEOUT (1.0)
        other.execute("ROLLBACK")
        store.end_run(run, "crashed")
        other.execute("BEGIN IMMEDIATE")
        told.clear()
        assert timed(lambda: store.event(run, None, "x", {})) >= 2.49 and len(told) == 2, told
        other.execute("ROLLBACK")


def test_a_linked_state_db_in_a_read_only_folder_is_read_with_the_log_beside_its_target(tmp_path: Path) -> None:
    """state.db a link, in a folder that cannot be written (a read-only mount), to a file whose write-ahead log
    holds records not yet copied into it (a run going on, or killed): read with that log, which sits beside the
    file the link leads to, not as an immutable file without it (older figures, or no state at all)."""
    real = tmp_path / "real" / "state.db"
    src, ro = tmp_path / "src", tmp_path / "ro"
    src.mkdir()
    (src / "state.db").symlink_to(real)
    writer = Store(real)
    _run(writer, real.parent)
    try:
        assert (real.parent / "state.db-wal").stat().st_size  # its records in the log alone yet
        ro.mkdir()
        if subprocess.run(["mount", "--bind", str(src), str(ro)], capture_output=True, check=False).returncode != 0:
            pytest.skip("cannot bind-mount here")
        try:
            if subprocess.run(["mount", "-o", "remount,bind,ro", str(ro)], capture_output=True, check=False).returncode != 0:
                pytest.skip("cannot make a read-only mount here")
            assert not os.access(ro, os.W_OK)
            with Store(ro / "state.db", readonly=True) as reader:
                assert len(reader.snapshot().jobs) == 3
        finally:
            subprocess.run(["umount", str(ro)], capture_output=True, check=False)
    finally:
        writer.close()


def test_a_state_on_a_full_disk_says_to_free_space_when_it_is_opened(tmp_path: Path) -> None:
    """The first command on a full state disk is told what a run that fills it is told: free space, then again."""
    disk = tmp_path / "disk"
    disk.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(disk)], capture_output=True,
                      check=False).returncode != 0:
        pytest.skip("cannot mount a tmpfs here")
    try:
        with open(disk / "fill", "wb") as fill:
            try:
                fill.write(b"\0" * 128 * 1024)
            except OSError:
                pass  # full
        path = disk / "state" / "state.db"
        with pytest.raises(StateError) as refused:
            Store(path, then="retry")
        assert str(refused.value) == (f"{path}: cannot open state: database or disk is full; nothing was sent: free "
                                      "space on its disk, then `gridrun retry` again")
    finally:
        subprocess.run(["umount", str(disk)], capture_output=True, check=False)


def test_a_state_past_the_file_size_limit_names_the_limit(tmp_path: Path) -> None:
    """`ulimit -f` too small for the state file: SQLite says only "disk I/O error"; gridrun names the limit."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (8192, hard))
    try:
        with pytest.raises(StateError) as refused:
            Store(tmp_path / "state.db")
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
    assert str(refused.value) == (
        f"{tmp_path / 'state.db'}: cannot open state: disk I/O error; nothing was sent: this process may write files "
        "of at most 8,192 bytes (`ulimit -f`): raise that limit (if it is not that, a disk error: check its disk), "
        "then `gridrun run` again")


@pytest.mark.parametrize("readonly", [False, True])
def test_a_state_db_linking_into_a_folder_not_there_is_refused_naming_the_link_and_its_target(
    tmp_path: Path, readonly: bool
) -> None:
    """A state.db linked to a disk not mounted: refused, the link and where it leads named, nothing made there
    (a new state in its place would have every job sent and paid for again)."""
    link = tmp_path / ".gridrun" / "state.db"
    link.parent.mkdir()
    link.symlink_to(tmp_path / "disk" / "state.db")
    with pytest.raises(StateError) as refused:
        Store(link, readonly=readonly)
    said = str(refused.value)
    assert said.startswith(f"{link} is a link to {tmp_path / 'disk' / 'state.db'}, whose folder {tmp_path / 'disk'} "
                           "is not there (a disk not mounted, a folder moved or removed): mount that disk"), said
    assert said.endswith("where it is now" if readonly else "; then `gridrun run` again. Nothing was sent"), said
    assert not (tmp_path / "disk").exists() and os.listdir(link.parent) == ["state.db"]


def test_a_run_that_ended_before_its_jobs_were_kept_shows_its_own_attempts_and_money_not_a_later_retrys(
    tmp_path: Path
) -> None:
    """A run an older gridrun recorded (no `final`) whose failed job a later run sent again: its report and export
    show the job as that run left it (failed, its first attempt, nothing paid), not with the retry's render."""
    now = [100.0]
    with Store(tmp_path / "state.db", clock=lambda: now[0]) as store:
        jobs_of = [{**_job(i, tmp_path), "hash": f"{i:x}" * 64} for i in (1, 2)]  # keys apart: the hashes' heads

        def run() -> int:
            r = store.start_run(manifest_name="m", manifest_path="m.yaml", manifest_copy="", outputs_dir=str(tmp_path),
                                provider="sim", model="pixverse-v5.6", axes=["seed"], budget_micros=None)
            ids.update(store.add_jobs(r, jobs_of))
            return r

        ids: dict[str, int] = {}
        r1 = run()
        done, failed = ids["1" * 64], ids["2" * 64]
        store.begin_submit(r1, [done, failed])
        store.transition(done, S.SUBMITTED, provider_id="v1")
        store.transition(failed, S.SUBMITTED, provider_id="v2")
        now[0] = 110.0
        store.transition(done, S.DOWNLOADING, cost_micros=350_000)
        store.transition(done, S.DONE, sha256="a" * 64, cost_micros=350_000)
        store.transition(failed, S.FAILED, error="CONTENT_POLICY_VIOLATION")
        now[0] = 120.0
        store.end_run(r1, "failed")
        # as an older gridrun left it: no job kept as the run left it, nor its money
        store.db.execute("UPDATE run_jobs SET final=NULL WHERE run_id=?", (r1,))
        store.db.execute("UPDATE runs SET final_money=NULL WHERE id=?", (r1,))
        now[0] = 200.0
        r2 = run()
        store.reset(failed, "retry")
        now[0] = 210.0
        store.begin_submit(r2, [failed])
        store.transition(failed, S.SUBMITTED, provider_id="v3")
        now[0] = 260.0
        store.transition(failed, S.DOWNLOADING, cost_micros=350_000)
        store.transition(failed, S.DONE, sha256="b" * 64, cost_micros=350_000)
        now[0] = 270.0
        store.end_run(r2, "done")

        jobs = {j.id: j for j in store.snapshot(r1, manifest_name="m").jobs}
        left = jobs[failed]
        assert (left.state, left.error, left.attempts) == ("failed", "CONTENT_POLICY_VIOLATION", 1)
        assert (left.cost_micros, left.provider_id, left.sha256) == (None, "v2", None)
        assert (left.submitted_at, left.completed_at, left.downloaded_at) == (100.0, 110.0, None)
        assert left.billed_run == r1
        assert jobs[done].cost_micros == 350_000 and jobs[done].sha256 == "a" * 64


def test_copies_of_a_state_made_before_key_salts_get_the_same_salt_when_each_is_upgraded(tmp_path: Path) -> None:
    """A backup taken before the upgrade and restored after gets the salt the upgraded state got: a job it sends
    again carries the key the provider already knows (found, not paid again). Another state, and a new one, get
    one of their own."""
    def older(path: Path, started: float) -> Path:
        with old_state(path, 9) as db:
            db.execute("INSERT INTO runs (manifest_name, manifest_path, outputs_dir, provider, model, started_at,"
                       " status, pid, host) VALUES ('m', 'm.yaml', 'out', 'sim', 'pixverse-v5.6', ?, 'crashed', 7,"
                       " 'h')", (started,))
            db.execute("INSERT INTO jobs (hash, key, vals, params, state, output_path, cost_estimate_micros,"
                       " created_at, updated_at) VALUES (?, 'seed=1', '{}', '{}', 'planned', 'o.mp4', 1, 1, 2)",
                       ("a" * 64,))
        return path

    original = older(tmp_path / "a.db", 1000.25)
    backup = tmp_path / "backup.db"
    shutil.copy(original, backup)
    other = older(tmp_path / "other.db", 1000.5)
    salts = []
    for path in (original, backup, other, tmp_path / "new1.db", tmp_path / "new2.db"):
        with Store(path) as store:
            salts.append(store.key_salt())
    assert all(re.fullmatch(r"[0-9a-f]{8}", s) for s in salts), salts
    assert salts[0] == salts[1] and len({salts[0], *salts[2:]}) == 4, salts


@pytest.fixture
def zone() -> Any:
    """Set this process's time zone (`zone("Asia/Tokyo")`), as a writer or reader in another zone has it; put back
    after the test."""
    was = os.environ.get("TZ")

    def set_zone(name: str) -> None:
        os.environ["TZ"] = name
        time.tzset()

    yield set_zone
    if was is None:
        os.environ.pop("TZ", None)
    else:
        os.environ["TZ"] = was
    time.tzset()


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="process start times come from /proc")
def test_the_lock_and_starting_files_are_read_alike_in_any_time_zone(
    tmp_path: Path, zone: Any, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A lock or STARTING file written in one time zone and read in another (a shell, cron or IDE with another TZ,
    a DST fall-back hour) names a live process as live, and a pid reused since as gone."""
    from runner import state
    from runner.records import process_start
    from runner.state import lock_record, start_record

    zone("UTC")
    (tmp_path / "lock").write_text(state._process_line(), encoding="utf-8")
    (tmp_path / state.STARTING).write_text(state._process_line(manifest="/p/m.yaml", name="m"), encoding="utf-8")
    for reader in ("UTC", "Asia/Tokyo", "America/New_York"):
        zone(reader)
        held, starting = lock_record(tmp_path), start_record(tmp_path)
        assert held is not None and held.pid == os.getpid(), reader  # this very process, alive
        assert starting is not None and starting.pid == os.getpid(), reader
    # written by a process that had this pid an hour before this one started: not this process
    zone("Asia/Tokyo")
    began = process_start(os.getpid())
    assert began is not None
    monkeypatch.setattr(state.time, "time", lambda: began - 3600)
    (tmp_path / "lock").write_text(state._process_line(), encoding="utf-8")
    monkeypatch.undo()
    for reader in ("Asia/Tokyo", "UTC", "America/New_York"):
        zone(reader)
        assert lock_record(tmp_path) is None, reader


def test_a_lock_file_of_an_older_gridrun_without_the_epoch_is_read_in_the_readers_zone(tmp_path: Path) -> None:
    from runner.state import _holder, lock_record

    (tmp_path / "lock").write_text(f"pid {os.getpid()} on {socket.gethostname()} since "
                                   f"{time.strftime('%Y-%m-%d %H:%M:%S')}\n")  # as an older gridrun wrote it
    held = lock_record(tmp_path)
    assert held is not None and held.pid == os.getpid() and held.started is None
    assert held.started_at == pytest.approx(time.time(), abs=2)
    bad = _holder('pid 1 on h since 2026-01-01 00:00:00\n{"started": "soon", "name": "m"}')
    assert bad is not None and bad.started is None and bad.name == "m"


def test_the_state_on_macos_commits_with_f_fullfsync(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """macOS's fsync leaves a commit in the drive's cache: a job recorded as sent could be lost to a power cut,
    and sent (paid) again. There every connection that writes the state asks SQLite for F_FULLFSYNC."""
    monkeypatch.setattr(sys, "platform", "darwin")
    with Store(tmp_path / "state.db") as store:
        assert store.db.execute("PRAGMA fullfsync").fetchone()[0] == 1
        assert store.db.execute("PRAGMA checkpoint_fullfsync").fetchone()[0] == 1
    monkeypatch.setattr(sys, "platform", "linux")
    with Store(tmp_path / "state.db") as store:  # elsewhere fsync is enough
        assert store.db.execute("PRAGMA fullfsync").fetchone()[0] == 0


@pytest.mark.parametrize(("path", "aside"), [
    ("/p/out/.runs/superseded/{h}/a.mp4", True),
    ("/p/out/.runs//superseded/./{h}//a.mp4", True),   # the same folder, written loosely
    ("/p/out/.runs/superseded/{h}/", False),            # the folder itself: its parent is superseded/
    ("/p/out/runs/superseded/{h}/a.mp4", False),
    ("/p/out/.runs/superseded/{h}/0123456789abcdef/a.mp4", False),  # a take kept by a re-render
    ("/p/out/superseded/a.mp4", False),
    ("/p/out/{h}/a.mp4", False),
])
def test_a_video_set_aside_by_a_changed_manifest_is_told_by_its_folders(path: str, aside: bool) -> None:
    """A done job's video is recorded as set aside by a changed manifest when it is in `.runs/superseded/<hash16>/`
    of an output folder, however the path is written; any other path is its own."""
    import dataclasses

    from runner.records import JobRecord
    from runner.state import _set_aside

    h = "f" * 64
    job = JobRecord(id=1, key="k", sweep=None, hash=h, values={}, params={}, state="done",
                    output_path=path.format(h=h[:16]), cost_estimate_micros=0, cost_micros=None, attempts=1,
                    provider_id=None, error=None, sha256=None, size=None, duration=None, created_at=0.0,
                    submitted_at=None, completed_at=None, downloaded_at=None, cached_from_run=None)
    assert _set_aside(job) is aside
    assert _set_aside(dataclasses.replace(job, state="failed")) is False


def test_a_state_disk_out_of_inodes_is_said_as_such(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """SQLite's "database or disk is full" where the disk has room but no free inode: the remedy says inodes and
    `df -i`, not "free space on its disk"."""
    import os
    import sqlite3

    from runner.state import remedy

    exc = sqlite3.OperationalError("database or disk is full")
    exc.sqlite_errorcode = sqlite3.SQLITE_FULL  # type: ignore[attr-defined]
    assert remedy(exc, folder=tmp_path) == "free space on its disk"
    real = os.statvfs

    def statvfs(path: object) -> os.statvfs_result:
        st = real(path)  # type: ignore[arg-type]
        return os.statvfs_result((st.f_bsize, st.f_frsize, 1 << 20, 1 << 19, 1 << 19, 40, 0, 0, st.f_flag,
                                  st.f_namemax))

    monkeypatch.setattr(os, "statvfs", statvfs)
    said = remedy(exc, folder=tmp_path)
    assert "no free inodes" in said and "`df -i`" in said and "free space on its disk" not in said


def test_a_state_lacking_a_column_of_its_schema_is_said_so_not_as_a_folder_to_make_writable(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
) -> None:
    """SQLite's "no such column" or "no such table" from the state store: a state whose tables are not those of the
    schema it says it is of (made or changed by another program, or another gridrun), said with that schema, not
    with the advice for a folder not writable or not on a local disk, which other errors keep."""
    from execkit import write_manifest

    from runner import api
    from runner.cli import main
    from runner.state import SCHEMA_VERSION, remedy

    monkeypatch.setenv("COLUMNS", "400")
    m = write_manifest(tmp_path, n_seeds=1, styles=("anime",), sim={"render_time": 0.05, "jitter": 0.0})
    assert api.run(m, report=False).exit_code == 0
    folder = tmp_path / ".gridrun"
    with closing(sqlite3.connect(folder / "state.db")) as db:
        db.execute("ALTER TABLE jobs DROP COLUMN render_span")
        db.commit()
    capsys.readouterr()
    assert main(["run", str(m)]) != 0
    said = " ".join(capsys.readouterr().err.split())
    assert "no such column" in said and "writable" not in said and "local disk" not in said, said
    assert (f"the state file lacks a table or column of schema {SCHEMA_VERSION}, this gridrun's own, which it says "
            "it is of: it was made or changed by another program") in said, said
    assert "restore state.db from a backup" in said, said

    missing = sqlite3.OperationalError("no such table: runs")
    assert f"of schema {SCHEMA_VERSION}, this gridrun's own" in remedy(missing, folder=folder)
    with closing(sqlite3.connect(folder / "state.db")) as db:
        db.execute("PRAGMA user_version = 8")
    older = remedy(missing, folder=folder)
    assert f"schema 8, which it says it is of, an older gridrun's (this one's is {SCHEMA_VERSION})" in older, older
    assert "this gridrun reads that schema wrongly (a bug" in older, older
    assert "of the schema it says it is of" in remedy(sqlite3.OperationalError("table jobs has no column named x"))
    # the errors the advice fits keep it
    assert remedy(sqlite3.OperationalError("disk I/O error")) == ("check that the folder and its files are writable "
                                                                  "and on a local disk")
    assert "writable" in remedy(sqlite3.OperationalError("unable to open database file"), folder=folder)


def test_the_columns_named_for_rows_read_whole_are_those_of_each_schema(tmp_path: Path) -> None:
    """The queries that read a run, a job or an attempt whole name their columns (`_columns`), which are every
    column each schema's migrations made, in their order: nothing a reader asks for is left out, and a state of an
    earlier schema is not asked for a column it never had."""
    from runner.state import _TABLE_COLUMNS, SCHEMA_VERSION, _columns

    for version in range(1, SCHEMA_VERSION + 1):
        path = tmp_path / f"v{version}.db"
        with old_state(path, version):
            pass
        made = columns_of(path)
        for table in _TABLE_COLUMNS:
            assert _columns(table, version).split(", ") == made[table], (version, table)


@pytest.mark.parametrize("table, column", [("jobs", "downloaded_at"), ("jobs", "sweep"), ("runs", "budget_micros"),
                                           ("attempts", "billed_run_id")])
def test_a_state_lacking_a_column_read_with_its_row_is_said_so_by_every_command(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, table: str, column: str,
) -> None:
    """A column dropped by another program from a table whose rows gridrun reads whole (a run, a job, an attempt)
    is said as a state lacking a column of its schema, with that schema and the state file, by `status`, `report`,
    `export` and `run` alike: not a bug of gridrun's, and nothing sent."""
    from execkit import write_manifest

    from runner import api
    from runner.cli import main
    from runner.state import SCHEMA_VERSION

    monkeypatch.setenv("COLUMNS", "400")
    m = write_manifest(tmp_path, n_seeds=2, styles=("anime",), sim={"render_time": 0.05, "jitter": 0.0})
    assert api.run(m, report=False).exit_code == 0
    db = tmp_path / ".gridrun" / "state.db"
    with closing(sqlite3.connect(db)) as conn:
        conn.execute(f"ALTER TABLE {table} DROP COLUMN {column}")
        conn.commit()
    before = contents(db)
    capsys.readouterr()
    for command in (["status", str(m)], ["status", str(m), "--json"], ["report", str(m)], ["export", str(m)],
                    ["run", str(m), "--no-report"], ["retry", str(m), "--no-report"]):
        code = main(command)
        said = " ".join(capsys.readouterr().err.split())
        if code == 0:  # what it read names no column the state lacks
            continue
        assert code == 1 and "a bug in gridrun" not in said, (command, said)
        assert f"the state store {db} cannot be used: no such column" in said, (command, said)
        assert (f"the state file lacks a table or column of schema {SCHEMA_VERSION}, this gridrun's own, which it says "
                "it is of") in said, (command, said)
    assert contents(db) == before


def test_a_job_record_reads_its_rows_columns_by_position_as_they_are_named(tmp_path: Path) -> None:
    """A row's column looked up by name is compared with each column's name in turn, and a job's record reads some
    thirty: `job_record` finds where each sits once per query's columns and reads the row by position, the same
    record as by name (the run's key over the job's own, the columns a query may leave out as none)."""
    import dataclasses

    from runner.records import job_record

    lookups: list[str] = []

    class Row(sqlite3.Row):
        def __getitem__(self, key: Any) -> Any:
            if isinstance(key, str):
                lookups.append(key)
            return super().__getitem__(key)

    store = Store(tmp_path / "state.db")
    run, ids = _run(store, tmp_path, 3)
    store.db.row_factory = Row
    records = [job_record(r) for r in store.run_job_rows(run)]
    assert lookups == []
    assert [(j.id, j.key, j.values, j.params, j.state, j.size, j.sent_run) for j in records] == [
        (ids[f"{i:064x}"], f"seed={i}", {"seed": i}, {"prompt": "p"}, "planned", (960, 540), None) for i in range(3)]
    bare = job_record(store.db.execute("SELECT * FROM jobs WHERE id=?", (records[0].id,)).fetchone())  # no run's
    assert bare == dataclasses.replace(records[0], cached_from_run=None, billed_run=None, sent_run=None, sent_by=None,
                                       endpoint=None, simulated=None)
    store.close()
