"""`gridrun status --json` from another process reads a run that is going on (no lock), and the same
counts once it has ended."""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from execkit import in_flight, wait_for, write_manifest

from runner import api

IN_FLIGHT = ("submitting", "submitted", "running", "downloading")


@contextlib.contextmanager
def _watching(manifest: Path, cwd: Path, *, every: float) -> Iterator[subprocess.Popen[str]]:
    """`gridrun status M --watch --json` in another process, killed on the way out if it has not ended."""
    watcher = subprocess.Popen([sys.executable, "-m", "runner.cli", "status", str(manifest), "--watch", "--json",
                                "--every", str(every)], cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True)
    try:
        yield watcher
    finally:
        if watcher.poll() is None:
            watcher.kill()
            watcher.wait()


def _gridrun(*args: str, cwd: Path, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """`gridrun ARGS` run in `cwd`; `status`, which only reads the state, in this process (the run it reads is
    another process's all the same, or gone)."""
    if args[0] == "status":
        from runner.cli import main

        out, err = io.StringIO(), io.StringIO()
        with contextlib.chdir(cwd), contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main(list(args))
        return subprocess.CompletedProcess(["gridrun", *args], code, out.getvalue(), err.getvalue())
    return subprocess.run([sys.executable, "-m", "runner.cli", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, check=False)


def _status(manifest: Path) -> tuple[int, dict[str, Any] | None, str]:
    r = _gridrun("status", str(manifest), "--json", cwd=manifest.parent)
    return r.returncode, (json.loads(r.stdout) if r.returncode == 0 else None), r.stderr


@pytest.mark.timeout(150)
def test_status_reads_a_live_run_from_another_process(tmp_path: Path) -> None:
    # 16 jobs, 4 at a time, 1 s each: the run lasts about 4 s.
    manifest = write_manifest(tmp_path, n_seeds=8, styles=("anime", "clay"), run={"concurrency": 4},
                              sim={"render_time": 1.0, "jitter": 0.0, "concurrency": 4})
    total = 16
    with open(tmp_path / "run.out", "wb") as out, open(tmp_path / "run.err", "wb") as err:
        runner = subprocess.Popen([sys.executable, "-m", "runner.cli", "run", str(manifest)], cwd=tmp_path,
                                  stdout=out, stderr=err, stdin=subprocess.DEVNULL)
    try:
        live: list[dict[str, int]] = []
        paced: dict[str, Any] = {}
        answered = False
        deadline = time.monotonic() + 90
        while runner.poll() is None and time.monotonic() < deadline:
            code, doc, stderr = _status(manifest)
            assert "lock" not in stderr.lower(), stderr
            if code != 0 or (doc is not None and doc["status"] == "starting"):
                # Only before the run has recorded itself may status find nothing to show, or a run starting.
                assert not answered, f"status failed during the run: {stderr or doc}"
                assert code == 0 or "no state yet" in stderr or "no run" in stderr, stderr
                continue
            answered = True
            assert doc is not None and doc["jobs"] == total
            if doc["status"] != "running":
                break
            counts = doc["counts"]
            assert sum(counts.values()) == total
            live.append(counts)
            # The ETA waits for a second job to end (stats.ETA_AFTER): a reading between the first and the
            # second, which a loaded machine may take, has none yet.
            if counts.get("done", 0) and sum(counts.get(s, 0) for s in IN_FLIGHT) and doc["eta"] is not None:
                paced = doc
            flying = sum(counts.get(s, 0) for s in IN_FLIGHT)
            distinct = {json.dumps(c, sort_keys=True) for c in live}
            if flying and counts.get("done", 0) and len(distinct) >= 2 and paced:
                break
        assert live, "status never saw the run while it was going on"
        last = live[-1]
        assert sum(last.get(s, 0) for s in IN_FLIGHT) > 0, live
        assert 0 < last.get("done", 0) < total, live
        assert len({json.dumps(c, sort_keys=True) for c in live}) >= 2, f"counts did not change: {live}"
        # the ETA is what remains at the pace when the last job ended, counted down since: no more than at the pace
        # now (which has fallen since, or is where the countdown ran out)
        assert paced, f"status never showed an ETA while jobs were in flight: {live}"
        assert paced["per_minute"] > 0, paced
        remaining = total - paced["counts"]["done"]
        # (status writes the ETA to a tenth of a second: a few seconds' ETA is that much off the pace's own figure)
        assert 0 < paced["eta"] <= remaining / paced["per_minute"] * 60 * 1.01 + 0.06, paced
        assert runner.wait(timeout=max(1.0, deadline - time.monotonic())) == 0, (tmp_path / "run.err").read_text()
    finally:
        if runner.poll() is None:
            runner.kill()
            runner.wait()

    code, doc, stderr = _status(manifest)
    assert code == 0, stderr
    assert doc is not None
    assert doc["status"] == "done" and doc["process_gone"] is False
    assert doc["counts"].get("done") == total == doc["jobs"]
    assert not any(doc["counts"].get(s) for s in (*IN_FLIGHT, "planned", "failed", "unknown", "expired"))
    assert doc["problems"] == []
    assert doc["reserved_usd"] == 0
    assert doc["eta"] is None and doc["per_minute"] > 0 and doc["elapsed"] > 0
    plain = _gridrun("status", str(manifest), cwd=tmp_path)
    assert plain.returncode == 0 and f"done {total}" in plain.stdout, plain.stdout + plain.stderr
    assert "jobs/min" in plain.stdout and "taken" in plain.stdout, plain.stdout


def test_a_run_is_recorded_with_its_jobs_so_status_never_reads_it_without_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The moment a run's record commits, `status` from another process may read it: its jobs are there
    already (one transaction), never a run going on with 0 jobs."""
    from runner.state import Store

    manifest = write_manifest(tmp_path, n_seeds=3, styles=("anime", "clay"), sim={"render_time": 0.1, "jitter": 0.0})
    seen: list[tuple[str, int]] = []
    start_run = Store.start_run

    def reading_at_once(self: Store, **kwargs: Any) -> int:
        run_id = start_run(self, **kwargs)
        snap = api.status(manifest)  # a reader of its own, as another process's `status` is
        seen.append((snap.run.status, len(snap.jobs)))
        return run_id

    monkeypatch.setattr(Store, "start_run", reading_at_once)
    result = api.run(manifest, report=False)
    assert result.exit_code == 0
    assert seen == [("running", 6)], seen


@pytest.mark.timeout(150)
def test_status_watch_follows_a_live_run_to_its_end(tmp_path: Path) -> None:
    """`status --watch --json`, started before the run: waits for it to record itself, then one progress
    line per reading while it goes on, and an end line with the final counts once it has ended."""
    manifest = write_manifest(tmp_path, n_seeds=8, styles=("anime", "clay"), run={"concurrency": 4},
                              sim={"render_time": 1.0, "jitter": 0.0, "concurrency": 4})
    total = 16
    with _watching(manifest, tmp_path, every=0.3) as watcher:
        runner = _gridrun("run", str(manifest), "--no-report", cwd=tmp_path, timeout=90)
        assert runner.returncode == 0, runner.stderr
        stdout, stderr = watcher.communicate(timeout=30)
    assert watcher.returncode == 0, stderr
    assert "Traceback" not in stderr
    events = [json.loads(line) for line in stdout.splitlines()]
    assert [e["event"] for e in events[:-1]] == ["progress"] * (len(events) - 1) and events[-1]["event"] == "end"
    live = [e for e in events if sum(e["counts"][s] for s in IN_FLIGHT)]
    assert len(live) >= 3, events  # the run lasts about 4 s; the watch reads every 0.3 s
    done = [e["counts"]["done"] for e in events]
    assert done == sorted(done) and done[0] < total, done
    end = events[-1]
    assert end["counts"]["done"] == total == end["total"] and end["stopping"] is None and end["eta"] is None
    assert end["status"] == "done" and end["exit_code"] == 0
    assert end["spent_usd"] > 0 and end["reserved_usd"] == 0 and end["requests"] is None


@pytest.mark.timeout(120)
def test_status_names_a_run_whose_process_is_gone_and_watch_ends(tmp_path: Path) -> None:
    """A run killed before it could record its end stays `running` in the state; `status` says its process
    is gone, and `status --watch` ends at once instead of waiting for ever."""
    manifest = write_manifest(tmp_path, n_seeds=4, run={"concurrency": 2},
                              sim={"render_time": 0.5, "jitter": 0.0, "concurrency": 2})
    killed = subprocess.run([sys.executable, "-m", "runner.cli", "run", str(manifest), "--no-report"], cwd=tmp_path,
                            capture_output=True, text=True, timeout=60, check=False,
                            env={**os.environ, "GRIDRUN_CRASH_AT": "after-submit:2"})
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    code, doc, stderr = _status(manifest)
    assert code == 0 and doc is not None and doc["status"] == "gone" and doc["process_gone"] is True, stderr
    time.sleep(0.5)
    again = _status(manifest)[1]
    assert again is not None and again["eta"] is None and again["elapsed"] == doc["elapsed"], "its pace stopped"
    plain = _gridrun("status", str(manifest), cwd=tmp_path)
    assert plain.returncode == 0 and "is gone" in plain.stdout, plain.stdout + plain.stderr
    listed = _gridrun("status", str(manifest), "--runs", "--json", cwd=tmp_path)  # the same name in the list of runs
    assert [r["status"] for r in json.loads(listed.stdout)] == ["gone"], listed.stdout + listed.stderr
    t0 = time.monotonic()
    watch = _gridrun("status", str(manifest), "--watch", "--every", "0.3", cwd=tmp_path, timeout=30)
    assert watch.returncode == 5, watch.stderr  # GONE_EXIT: its outcome is not known
    assert time.monotonic() - t0 < 20
    assert "is gone without recording its end (killed, crashed, or stopped by a state it could not write" in \
        " ".join(watch.stdout.split()) and "gridrun run" in watch.stdout, watch.stdout
    assert f"[process {killed_pid(tmp_path)} gone]" in watch.stdout, watch.stdout
    # its JSON gives `stopping` as recorded, as `status --json` does: a token, never the plain line's words
    watched = _gridrun("status", str(manifest), "--watch", "--json", "--every", "0.3", cwd=tmp_path, timeout=30)
    end = json.loads(watched.stdout.splitlines()[-1])
    assert watched.returncode == 5 and end["exit_code"] == 5 and end["status"] == "gone", watched.stderr
    assert end["stopping"] == doc["stopping"] and end["eta"] is None, end


@pytest.mark.timeout(120)
def test_a_run_killed_during_long_renders_shows_its_time_up_to_its_last_sign_of_life(tmp_path: Path) -> None:
    """Nothing moves while jobs render, but the run records that it is alive (every HEARTBEAT s): killed then,
    `status` measures its time up to that record, not to its last job's move, and calls it `gone`."""
    from runner.live import HEARTBEAT
    from runner.state import Store

    manifest = write_manifest(tmp_path, n_seeds=2, run={"concurrency": 2},
                              sim={"render_time": 60.0, "jitter": 0.0, "concurrency": 2})
    runner = subprocess.Popen([sys.executable, "-m", "runner.cli", "run", str(manifest), "--no-report"], cwd=tmp_path,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
    try:
        seen = None
        deadline = time.monotonic() + 60
        while seen is None and time.monotonic() < deadline:
            time.sleep(0.2)
            run = _reader(manifest)
            seen = None if run is None else run.run.seen_at
        assert seen is not None, "the run never recorded that it was alive"
        runner.kill()
        runner.wait()
    finally:
        if runner.poll() is None:
            runner.kill()
            runner.wait()
    with Store(tmp_path / ".gridrun" / "state.db", readonly=True) as store:
        started = store.latest_run().started_at  # type: ignore[union-attr]
    code, doc, stderr = _status(manifest)
    assert code == 0 and doc is not None, stderr
    assert doc["status"] == "gone" and doc["process_gone"] is True and doc["eta"] is None, doc
    # up to its sign of life, some HEARTBEAT s after its start; its jobs last moved as it began
    assert doc["elapsed"] == pytest.approx(seen - started, abs=0.01) and doc["elapsed"] > HEARTBEAT / 2, doc
    plain = _gridrun("status", str(manifest), cwd=tmp_path).stdout
    assert "(gone, started" in plain and f"0:0{int(doc['elapsed'])} elapsed up to its last record" in plain, plain


def killed_pid(folder: Path) -> int:
    from runner.state import Store

    store = Store(folder / ".gridrun" / "state.db", readonly=True)
    try:
        run = store.latest_run()
        assert run is not None and run.pid
        return run.pid
    finally:
        store.db.close()


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="process start times come from /proc")
def test_a_pid_taken_by_a_process_that_started_after_the_run_is_not_the_runs() -> None:
    """Pids are reused: a run whose pid now belongs to a younger process is gone all the same."""
    import dataclasses
    import socket

    from runner.records import PID_CLOCK_SLACK, RunRecord, process_start

    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        started = process_start(proc.pid)
        assert started is not None and abs(started - time.time()) < 30
        run = RunRecord(id=1, manifest_name="m", manifest_path="m.yaml", outputs_dir="out", provider="sim",
                        model="x", axes=(), started_at=started, ended_at=None, status="running",
                        budget_micros=None, pid=proc.pid, host=socket.gethostname())
        assert not run.process_gone()  # the run's own process, started just before it
        assert not dataclasses.replace(run, started_at=started + 1).process_gone()
        younger = dataclasses.replace(run, started_at=started - 2 * PID_CLOCK_SLACK)
        assert younger.process_gone()  # the pid is alive, but not the process that started the run
        here = socket.gethostname()
        # unless that process holds the run's state lock (a step of the clock since moved its start); another
        # process holding it (a run started since) tells nothing of this pid
        assert not dataclasses.replace(younger, lock_holder=lambda: (proc.pid, here)).process_gone()
        assert dataclasses.replace(younger, lock_holder=lambda: (os.getpid(), here)).process_gone()
        assert dataclasses.replace(younger, lock_holder=lambda: None).process_gone()
        assert not dataclasses.replace(younger, host="elsewhere").process_gone()  # another host: cannot tell
        assert not dataclasses.replace(younger, status="done", ended_at=started).process_gone()
    finally:
        proc.kill()
        proc.wait()
    assert run.process_gone()  # and once it has exited, by its pid alone


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="process states come from /proc")
def test_a_run_whose_process_died_but_was_not_reaped_is_gone() -> None:
    """A killed run whose parent has not waited for it yet (a zombie) still answers kill(pid, 0)."""
    import socket

    from runner.records import RunRecord, process_start, process_state

    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        started = process_start(proc.pid)
        assert started is not None
        run = RunRecord(id=1, manifest_name="m", manifest_path="m.yaml", outputs_dir="out", provider="sim",
                        model="x", axes=(), started_at=started, ended_at=None, status="running",
                        budget_micros=None, pid=proc.pid, host=socket.gethostname())
        assert not run.process_gone()
        os.kill(proc.pid, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while process_state(proc.pid) != "Z" and time.monotonic() < deadline:
            time.sleep(0.02)
        assert process_state(proc.pid) == "Z"  # not reaped: this test has not waited for it
        assert run.process_gone()
    finally:
        proc.kill()
        proc.wait()


def _reader(manifest: Path) -> Any:
    """Snapshots of the manifest's latest run, read as `gridrun status` does (None before it is recorded)."""
    from runner import api
    from runner.errors import NotRecordedError, StateError

    try:
        return api.status(manifest)
    except (NotRecordedError, StateError):
        return None


@pytest.mark.timeout(150)
def test_status_of_a_run_stopping_on_its_budget_says_why_and_counts_only_the_jobs_in_flight(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A run its budget stops sends nothing more but finishes what it paid for: `status` (text and JSON) and
    the watch say it is stopping and why, and the ETA counts the jobs in flight, not the planned ones."""
    from runner import api
    from runner.cli import main
    from runner.stats import ETA_AFTER, run_statistics

    # 24 jobs at $0.35, 4 at a time; the budget pays for 6: the 7th reservation stops the run while 2 render.
    manifest = write_manifest(tmp_path, n_seeds=12, run={"concurrency": 4, "budget_usd": 2.2},
                              sim={"render_time": 1.5, "jitter": 0.0, "concurrency": 4})
    with open(tmp_path / "run.err", "wb") as err:
        runner = subprocess.Popen([sys.executable, "-m", "runner.cli", "run", str(manifest), "--allow-partial",
                                   "--no-report"], cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=err,
                                  stdin=subprocess.DEVNULL)
    seen = None
    try:
        deadline = time.monotonic() + 90
        while runner.poll() is None and time.monotonic() < deadline:
            snap = _reader(manifest)
            if snap is not None and snap.run.ended_at is None and snap.stopping:
                flying = sum(snap.counts[s] for s in IN_FLIGHT)
                # an ETA is drawn once ETA_AFTER jobs have ended: wait for them (downloads may lag under load)
                if flying and snap.counts["done"] >= ETA_AFTER and snap.counts["planned"]:
                    seen, doc, stats = snap, api.status_json(snap), run_statistics(snap)  # while its process lives
                    then = run_statistics(snap, now=max(snap.ended))  # as its last job ended
                    monkeypatch.setenv("COLUMNS", "200")
                    monkeypatch.setattr(api, "status", lambda *a, **k: snap)  # that moment, as status reads it
                    main(["status", str(manifest)])
                    monkeypatch.undo()
                    plain = capsys.readouterr().out
                    break
            time.sleep(0.02)
        assert runner.wait(timeout=90) == 3, (tmp_path / "run.err").read_text()
    finally:
        if runner.poll() is None:
            runner.kill()
            runner.wait()
    assert seen is not None, "status never saw the run stopping"
    assert doc["status"] == "running" and doc["stopping"] == "budget", doc
    flying = sum(seen.counts[s] for s in IN_FLIGHT)
    # the jobs in flight at the pace when the last job ended, counted down since: at most at the pace now
    assert 0 < doc["eta"] <= flying / doc["per_minute"] * 60 + 0.1, doc
    assert stats.stopping == "budget"
    assert "run 1 (stopping (budget), started" in plain, plain
    # as the last job ended: the jobs in flight (not the planned ones) at the pace then
    assert then.eta == pytest.approx(flying / then.per_minute * 60, rel=0.05), (seen.counts, then)
    # and once it has ended: the reason as `run --json` gives it, the outcome in `status`
    code, end, stderr = _status(manifest)
    assert code == 0 and end is not None, stderr
    assert end["status"] == "budget" and end["stopping"] == "budget" and end["eta"] is None, end
    plain = _gridrun("status", str(manifest), cwd=tmp_path)
    assert "(budget, started" in plain.stdout, plain.stdout


@pytest.mark.timeout(120)
def test_status_and_watch_of_an_ended_run_name_it_and_say_what_to_run_next(tmp_path: Path) -> None:
    """A run that left failed jobs: `status` and `status --watch` say what to run next, as `run` did at its
    end; the watch names the run it shows and how it ended, and exits with the run's exit code."""
    manifest = write_manifest(tmp_path, n_seeds=2, styles=("anime",), sim={"render_time": 0.1, "failure_rate": 1.0,
                                                                                 "failure_code": "INTERNAL_ERROR"})
    assert _gridrun("run", str(manifest), "--no-report", cwd=tmp_path).returncode == 1
    plain = " ".join(_gridrun("status", str(manifest), cwd=tmp_path).stdout.split())
    assert "(failed, started" in plain and "next: `gridrun retry` sends failed jobs again" in plain, plain
    watch = _gridrun("status", str(manifest), "--watch", cwd=tmp_path)
    assert watch.returncode == 1 and "run 1 ended: failed" in watch.stdout, watch.stdout  # the run's own code
    assert "next: `gridrun retry` sends failed jobs again" in " ".join(watch.stdout.split()), watch.stdout


@pytest.mark.timeout(150)
def test_watch_started_as_a_run_starts_waits_for_it_not_the_previous_runs_end(tmp_path: Path) -> None:
    """`gridrun run` has taken the state's lock but not recorded its run yet: the latest recorded run has
    ended, and `status --watch` waits for the new one instead of reporting the old end."""
    from runner import state
    from runner.state import Store

    manifest = write_manifest(tmp_path, n_seeds=1, styles=("anime",), sim={"render_time": 0.1})
    assert _gridrun("run", str(manifest), "--no-report", cwd=tmp_path).returncode == 0
    store = Store(tmp_path / ".gridrun" / "state.db")
    store.acquire_lock()  # as a runner starting does, before it records its run
    with _watching(manifest, tmp_path, every=0.2) as watcher:
        time.sleep(2.0)
        assert watcher.poll() is None, watcher.communicate()
        # The next run announces itself (as `gridrun run` does before it plans) before this lock is let go: a lock
        # let go, its holder alive, is no run starting (a program whose `api.run` was refused goes on living).
        state._write_start(tmp_path / ".gridrun", manifest=manifest, name="t")
        store.release_lock()
        store.close()
        write_manifest(tmp_path, n_seeds=3, styles=("anime",), sim={"render_time": 0.5, "jitter": 0.0})
        assert _gridrun("run", str(manifest), "--no-report", cwd=tmp_path).returncode == 0
        stdout, stderr = watcher.communicate(timeout=30)
    assert watcher.returncode == 0, stderr
    end = json.loads(stdout.splitlines()[-1])
    assert end["event"] == "end" and end["run"] == 2 and end["counts"]["done"] == 3, end


def test_a_run_taking_the_lock_between_the_two_files_read_is_still_a_run_starting(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A run starting says so in the STARTING file, then takes the lock, writes it and removes its STARTING file.
    A `status --watch` reading the two files across that moment still finds it starting (it read the lock first,
    before it was written, and the STARTING file after it was removed: no run starting, and the watch ended with
    the previous run's code)."""
    from runner import state

    manifest = write_manifest(tmp_path, n_seeds=1, styles=("anime",))
    folder = tmp_path / ".gridrun"
    folder.mkdir()
    real = state.lock_record

    def taken_meanwhile(sd: Path) -> Any:
        found = real(sd)
        (sd / "lock").write_text(state._process_line(manifest=manifest, name="t"), encoding="utf-8")
        state._withdraw_start(sd)
        return found

    monkeypatch.setattr(state, "lock_record", taken_meanwhile)
    with state.announcing_start(folder, manifest=manifest, name="t"):
        assert api.run_starting(manifest, None) == os.getpid()


def _planning_slowly(manifest: Path, cwd: Path, *, seconds: float) -> subprocess.Popen[str]:
    """`gridrun run M --no-report` in another process whose planning takes `seconds` more, as a large manifest's
    does (100,000 jobs: about 3 s); its output goes to run.out and run.err in `cwd`."""
    code = ("import time; import runner.api as api; plan = api.plan\n"
            f"api.plan = lambda *a, **k: (time.sleep({seconds}), plan(*a, **k))[1]\n"
            "from runner.entry import entry; entry()")
    with open(cwd / "run.out", "wb") as out, open(cwd / "run.err", "wb") as err:
        return subprocess.Popen([sys.executable, "-c", code, "run", str(manifest), "--no-report"], cwd=cwd,
                                stdout=out, stderr=err, stdin=subprocess.DEVNULL, text=True)


@pytest.mark.timeout(150)
@pytest.mark.parametrize("before", ["incomplete", "gone"])
def test_watch_started_with_a_run_still_planning_follows_that_run_and_exits_with_its_code(
    tmp_path: Path, before: str
) -> None:
    """`gridrun run` says it is starting before it plans, and `status --watch` started at the same moment waits
    for it and exits with its code, where it reported the previous run's end (incomplete, exit 4; or gone, its
    process killed, exit 5) as soon as it read the state, the new run still planning and its lock not taken."""
    manifest = write_manifest(tmp_path, n_seeds=2, styles=("anime",), sim={"render_time": 2.0, "jitter": 0.0})
    if before == "incomplete":
        assert _gridrun("run", str(manifest), "--no-report", "--timeout", "0.5", cwd=tmp_path).returncode == 4
    else:
        killed = subprocess.run([sys.executable, "-m", "runner.cli", "run", str(manifest), "--no-report"], cwd=tmp_path,
                                capture_output=True, timeout=120, check=False,
                                env={**os.environ, "GRIDRUN_CRASH_AT": "after-submit:1"})
        assert killed.returncode == -9 and api.status(manifest).run.shown_status == "gone", killed.stderr[-500:]
    runner = _planning_slowly(manifest, tmp_path, seconds=2.0)
    try:
        # the watch starts once the run says it is starting (its interpreter may take a while to get there on a
        # busy machine), and while it still plans
        deadline = time.monotonic() + 60
        while not (tmp_path / ".gridrun" / "starting").exists() and runner.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        with _watching(manifest, tmp_path, every=0.2) as watcher:
            stdout, stderr = watcher.communicate(timeout=60)
        assert runner.wait(timeout=60) == 0, (tmp_path / "run.err").read_text()
    finally:
        if runner.poll() is None:
            runner.kill()
            runner.wait()
    assert watcher.returncode == 0, stdout + stderr
    was = "'s process is gone" if before == "gone" else " has ended"
    assert f"run 1{was}; waiting for the run starting to record itself" in stderr, stderr
    end = json.loads(stdout.splitlines()[-1])
    assert end["event"] == "end" and end["run"] == 2 and end["status"] == "done" and end["exit_code"] == 0, end
    assert end["counts"]["done"] == 2, end
    assert not (tmp_path / ".gridrun" / "starting").exists()  # gone once the run took the lock


@pytest.mark.timeout(150)
def test_watch_of_an_ended_run_ends_at_once_past_the_start_of_a_run_killed_as_it_planned(tmp_path: Path) -> None:
    """A run killed while it planned leaves the file that says it is starting; it names a process gone, so
    `status --watch` with no run starting ends at once with the last run's code instead of waiting for ever."""
    manifest = write_manifest(tmp_path, n_seeds=2, styles=("anime",), sim={"render_time": 0.1, "failure_rate": 1.0})
    assert _gridrun("run", str(manifest), "--no-report", cwd=tmp_path).returncode == 1
    starting = tmp_path / ".gridrun" / "starting"
    runner = _planning_slowly(manifest, tmp_path, seconds=60)
    try:
        deadline = time.monotonic() + 30
        while not starting.exists() and runner.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert starting.read_text().startswith(f"pid {runner.pid} on "), (tmp_path / "run.err").read_text()
    finally:
        runner.kill()
        runner.wait()
    assert starting.exists()
    began = time.monotonic()
    watch = _gridrun("status", str(manifest), "--watch", "--json", cwd=tmp_path, timeout=30)
    assert watch.returncode == 1, watch.stdout + watch.stderr  # the failed run's own code
    end = json.loads(watch.stdout.splitlines()[-1])
    assert end["event"] == "end" and end["run"] == 1 and end["status"] == "failed", end
    assert "waiting" not in watch.stderr, watch.stderr
    assert time.monotonic() - began < 10


@pytest.mark.timeout(120)
def test_watch_reads_once_more_a_moment_on_for_a_run_that_says_it_starts_just_after_the_first_reading(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:
    """A run started at the same moment as `status --watch` says it is starting once it has read its manifest,
    which may come just after the watch's first reading of the ended run: the watch reads again START_GRACE on,
    finds it, and waits for it."""
    import socket

    from runner import cli

    manifest = write_manifest(tmp_path, n_seeds=2, styles=("anime",), sim={"render_time": 0.1, "failure_rate": 1.0})
    assert _gridrun("run", str(manifest), "--no-report", cwd=tmp_path).returncode == 1
    starting = tmp_path / ".gridrun" / "starting"
    starter = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])  # the run starting
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        if len(slept) == 1:  # the run says it is starting, just after the first reading
            since = time.strftime("%Y-%m-%d %H:%M:%S")
            starting.write_text(f"pid {starter.pid} on {socket.gethostname()} since {since}", encoding="utf-8")
        else:  # ... then stops before it records its run
            starting.unlink(missing_ok=True)

    monkeypatch.setattr(cli.time, "sleep", sleep)
    try:
        code = cli.main(["status", str(manifest), "--watch", "--json", "--every", "0.2"])
    finally:
        starter.kill()
        starter.wait()
    assert code == 1  # run 1's own, once no run is starting any more
    assert slept[:2] == [cli.START_GRACE, 0.2], slept
    assert "run 1 has ended; waiting for the run starting to record itself" in capsys.readouterr().err


@pytest.mark.timeout(120)
def test_status_of_a_first_run_waiting_for_the_balance_says_a_run_is_starting(tmp_path: Path) -> None:
    """A run holds the state's lock while it asks the provider's balance (up to `balance.TIMEOUT` for an endpoint
    that does not answer), before it records itself: `status` (plain, --json, --runs) then says a run is starting,
    exit 0, as the lock refused to a second run says `status` works meanwhile, not that the manifest never ran."""
    from runner.state import Store, lock_holder

    manifest = write_manifest(tmp_path, n_seeds=1, styles=("anime",), sim={
        "render_time": 0.1, "jitter": 0.0, "script": [{"fault": "slow", "route": "balance", "p": 1, "delay": 30}]})
    code, _, stderr = _status(manifest)
    assert code == 2 and "no state yet" in stderr, stderr  # nothing starting: the manifest never ran
    runner = subprocess.Popen([sys.executable, "-m", "runner.cli", "run", str(manifest), "--no-report"], cwd=tmp_path,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while lock_holder(tmp_path / ".gridrun") != runner.pid and time.monotonic() < deadline:
            time.sleep(0.05)
        assert lock_holder(tmp_path / ".gridrun") == runner.pid, "the run never took the lock"
        code, doc, stderr = _status(manifest)
        plain = _gridrun("status", str(manifest), cwd=tmp_path)
        runs = _gridrun("status", str(manifest), "--runs", "--json", cwd=tmp_path)
        with Store(tmp_path / ".gridrun" / "state.db", readonly=True) as store:
            assert store.latest_run() is None  # all three read while the run asked the balance
        assert code == 0 and doc == {"run": None, "manifest": "t", "status": "starting", "pid": runner.pid}, stderr
        assert plain.returncode == 0, plain.stderr
        said = " ".join(plain.stdout.split())
        assert said.startswith(f"t: no run recorded yet; a run is starting (pid {runner.pid})"), said
        assert (runs.returncode, json.loads(runs.stdout)) == (0, []), runs.stderr
        assert runner.wait(timeout=60) == 0
    finally:
        if runner.poll() is None:
            runner.kill()
            runner.wait()
    code, doc, stderr = _status(manifest)
    assert code == 0 and doc is not None and (doc["run"], doc["status"]) == (1, "done"), stderr


def test_status_of_a_manifest_never_run_while_another_manifests_run_holds_the_state_is_not_starting(
    tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    """The lock's holder is taken for this manifest's run starting only until it records a run: one it recorded
    is another manifest's (of the shared state), and this manifest has still never run (exit 2)."""
    from runner.cli import main
    from runner.state import Store

    manifest = write_manifest(tmp_path, n_seeds=1, styles=("anime",))
    holder = Store(tmp_path / ".gridrun" / "state.db")
    holder.acquire_lock(manifest=tmp_path / "other.yaml")
    try:
        assert main(["status", str(manifest)]) == 0
        assert f"a run is starting (pid {os.getpid()})" in " ".join(capsys.readouterr().out.split())
        holder.start_run(manifest_name="other", manifest_path=str(tmp_path / "other.yaml"), manifest_copy="",
                         outputs_dir=str(tmp_path / "outputs" / "other"), provider="sim", model="pixverse-v5.6",
                         axes=(), budget_micros=None)
        assert main(["status", str(manifest)]) == 2
        assert "no run recorded for t" in capsys.readouterr().err
    finally:
        holder.close()


def test_status_of_a_manifest_never_run_is_not_starting_while_a_run_of_another_manifest_starts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    """The lock and STARTING files name the manifest they were written for: one of another manifest sharing the
    state, not recorded yet, is no run of this manifest starting (exit 2: never run); one of this manifest is."""
    from runner.cli import main
    from runner.state import Store, announcing_start

    manifest = write_manifest(tmp_path, n_seeds=1, styles=("anime",))
    holder = Store(tmp_path / ".gridrun" / "state.db")
    holder.acquire_lock(manifest=tmp_path / "other.yaml", name="other")
    try:
        assert main(["status", str(manifest)]) == 2
        assert "no run recorded for t" in capsys.readouterr().err
        holder.release_lock()
        with announcing_start(tmp_path / ".gridrun", manifest=tmp_path / "other.yaml", name="other"):
            assert main(["status", str(manifest)]) == 2
            capsys.readouterr()
        holder.acquire_lock(manifest=manifest, name="t")
        assert main(["status", str(manifest)]) == 0
        assert f"a run is starting (pid {os.getpid()})" in " ".join(capsys.readouterr().out.split())
    finally:
        holder.close()


def test_report_and_export_while_a_run_of_the_manifest_starts_say_it_is_starting(
    tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    """A first run holding the lock before it records its run (planning, asking the balance): `report` and
    `export` say a run is starting, as `status` does, not that `gridrun run` runs it first (which it refuses)."""
    from runner.cli import main
    from runner.state import Store

    manifest = write_manifest(tmp_path, n_seeds=1, styles=("anime",))
    holder = Store(tmp_path / ".gridrun" / "state.db")
    holder.acquire_lock(manifest=manifest, name="t")
    try:
        for command in ("report", "export"):
            assert main([command, str(manifest)]) == 2
            said = " ".join(capsys.readouterr().err.split())
            assert f"no run of t recorded yet; a run is starting (pid {os.getpid()})" in said, said
            assert "try again in a moment" in said and "runs it first" not in said, said
        holder.release_lock()
        holder.acquire_lock(manifest=tmp_path / "other.yaml", name="other")  # another manifest's: this one never ran
        assert main(["report", str(manifest)]) == 2
        said = " ".join(capsys.readouterr().err.split())
        assert "no run recorded for t" in said and "runs it first" in said, said
    finally:
        holder.close()


def _bounded_sleep(monkeypatch: pytest.MonkeyPatch, then: Any = None) -> list[float]:
    """`cli.time.sleep` recording its calls instead of sleeping, calling `then(calls)` at each; past 200 calls it
    interrupts the watch (exit 130), so that a watch waiting for ever fails its test instead of hanging it."""
    from runner import cli

    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        if then is not None:
            then(len(slept))
        if len(slept) > 200:
            raise KeyboardInterrupt

    monkeypatch.setattr(cli.time, "sleep", sleep)
    return slept


@pytest.mark.parametrize("json_lines", [False, True])
@pytest.mark.parametrize("where", ["beside", "--state"])
def test_watch_of_a_manifest_never_run_with_no_run_starting_exits_2_as_status_does(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], json_lines: bool, where: str,
) -> None:
    """No state, or a mistyped `--state`, and no run starting: `status --watch` waits NO_RUN_WAIT seconds for a run to
    start (one started in another shell with it may take that long to say so), saying so, then has nothing to follow
    and exits 2 with `status`'s message (with --json, after an `end` event), where it waited for ever."""
    from runner.cli import NO_RUN_WAIT, main

    manifest = write_manifest(tmp_path, n_seeds=1, styles=("anime",))
    state = [] if where == "beside" else ["--state", str(tmp_path / "nonexistent")]
    assert main(["status", str(manifest), *state]) == 2
    said = capsys.readouterr().err
    assert "no state yet" in said, said
    slept = _bounded_sleep(monkeypatch)
    assert main(["status", str(manifest), "--watch", *state, *(["--json"] if json_lines else [])]) == 2
    out, error = capsys.readouterr()
    assert NO_RUN_WAIT <= sum(slept) < NO_RUN_WAIT + 1 and max(slept) <= 0.5, slept  # then no more
    assert error.count(f"waiting up to {NO_RUN_WAIT:g} s for a run to start") == 1, error
    assert error.splitlines()[-1] == said.splitlines()[-1], error
    if json_lines:
        end = json.loads(out.splitlines()[-1])
        assert end == {"event": "end", "status": None, "exit_code": 2, "errors": [said.splitlines()[-1][7:]]}, end


def test_watch_of_a_manifest_never_run_whose_starting_run_stops_before_recording_exits_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:
    """A run of a manifest never run says it is starting: `status --watch` waits for it; the run then stops before
    it records itself (its manifest invalid, say), and the watch, no other run starting within NO_RUN_WAIT seconds,
    exits 2, nothing to follow."""
    from runner.cli import NO_RUN_WAIT, main
    from runner.state import announcing_start

    manifest = write_manifest(tmp_path, n_seeds=1, styles=("anime",))
    (tmp_path / ".gridrun").mkdir()  # a state folder with no state yet (a run's is written in an existing one)
    with contextlib.ExitStack() as starting:
        starting.enter_context(announcing_start(tmp_path / ".gridrun", manifest=manifest, name="t"))

        def then(calls: int) -> None:
            if calls == 2:
                starting.close()  # the run stops, its STARTING file removed

        slept = _bounded_sleep(monkeypatch, then)
        assert main(["status", str(manifest), "--watch", "--every", "0.2"]) == 2
    error = capsys.readouterr().err
    assert "waiting for a run to record itself" in error and "no state yet" in error, (slept, error)
    assert slept[:2] == [0.2, 0.2] and NO_RUN_WAIT <= sum(slept[2:]) < NO_RUN_WAIT + 1, slept


@pytest.mark.timeout(150)
def test_watch_of_a_manifest_never_run_waits_for_the_run_starting_and_follows_it(tmp_path: Path) -> None:
    """A manifest never run, its first run starting (it holds the state's lock, not recorded yet): `status --watch`
    waits for that run and follows it to its end."""
    from runner.state import Store

    manifest = write_manifest(tmp_path, n_seeds=2, styles=("anime",), sim={"render_time": 0.3, "jitter": 0.0})
    store = Store(tmp_path / ".gridrun" / "state.db")
    store.acquire_lock(manifest=manifest, name="t")  # as a runner starting does, before it records its run
    try:
        with _watching(manifest, tmp_path, every=0.2) as watcher:
            assert watcher.stderr is not None
            line = watcher.stderr.readline()  # said once the watch has read the state and found the run starting
            assert line.startswith("waiting for a run to record itself"), line + watcher.communicate(timeout=30)[1]
            store.release_lock()
            assert _gridrun("run", str(manifest), "--no-report", cwd=tmp_path).returncode == 0
            stdout, stderr = watcher.communicate(timeout=60)
    finally:
        store.close()
    assert watcher.returncode == 0, stderr
    end = json.loads(stdout.splitlines()[-1])
    assert end["event"] == "end" and end["run"] == 1 and end["counts"]["done"] == 2, end


def _recorded_as(folder: Path, **columns: Any) -> None:
    """The latest run's row of the state in `folder` changed as another machine or process would have left it."""
    import sqlite3

    with contextlib.closing(sqlite3.connect(folder / ".gridrun" / "state.db")) as db:
        sets = ", ".join(f"{c}=?" for c in columns)
        db.execute(f"UPDATE runs SET {sets} WHERE id=(SELECT MAX(id) FROM runs)", tuple(columns.values()))
        db.commit()


@pytest.mark.timeout(120)
def test_a_killed_run_recorded_under_another_hostname_is_gone_as_its_lock_is_free(tmp_path: Path) -> None:
    """The hostname changed since the run started (a Mac on another network, a new container over the same
    project): the run's pid cannot be asked, but its state's runner lock is free, so no run holds it on any host.
    `status`, `status --runs`, the report and `status --watch` (which ends) say it is gone."""
    manifest = write_manifest(tmp_path, n_seeds=2, run={"concurrency": 2},
                              sim={"render_time": 0.5, "jitter": 0.0, "concurrency": 2})
    killed = subprocess.run([sys.executable, "-m", "runner.cli", "run", str(manifest), "--no-report"], cwd=tmp_path,
                            capture_output=True, text=True, timeout=60, check=False,
                            env={**os.environ, "GRIDRUN_CRASH_AT": "after-submit:1"})
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    _recorded_as(tmp_path, host="MacBook-2.local")
    code, doc, stderr = _status(manifest)
    assert code == 0 and doc is not None and doc["status"] == "gone" and doc["process_gone"] is True, (doc, stderr)
    listed = _gridrun("status", str(manifest), "--runs", "--json", cwd=tmp_path)
    assert [r["status"] for r in json.loads(listed.stdout)] == ["gone"], listed.stdout + listed.stderr
    watch = _gridrun("status", str(manifest), "--watch", "--every", "0.3", cwd=tmp_path, timeout=60)
    assert watch.returncode == 5, watch.stdout + watch.stderr  # GONE_EXIT, not a watch waiting for ever
    report = _gridrun("report", str(manifest), cwd=tmp_path)
    assert report.returncode == 0, report.stderr
    page = next(tmp_path.rglob("report.html")).read_text(encoding="utf-8")
    assert '"status":"gone"' in page.replace(" ", "") and '"live":false' in page.replace(" ", ""), report.stdout


def test_a_run_whose_pid_another_process_took_is_gone_without_proc_as_its_lock_is_free(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Without /proc (macOS) a process's start time is not known: a killed run whose pid another process now has
    is told gone by its free runner lock; held (a run of it going on), it is not."""
    from runner import records
    from runner.state import Store

    monkeypatch.setattr(records, "_stat_fields", lambda pid: None)  # what a system without /proc gives
    state = tmp_path / ".gridrun" / "state.db"
    with Store(state) as store:  # a run killed: its lock let go, its record left running
        store.acquire_lock()
        store.start_run(manifest_name="m", manifest_path=str(tmp_path / "m.yaml"), manifest_copy="", outputs_dir="o",
                        provider="sim", model="x", axes=(), budget_micros=None)
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])  # has the killed run's pid now
    try:
        _recorded_as(tmp_path, pid=other.pid)
        with Store(state, readonly=True) as reader:
            run = reader.latest_run()
            assert run is not None and run.shown_status == "gone"
        holder = Store(state)
        holder.acquire_lock()  # a runner holds this state: the run may be going on, its pid says so
        try:
            with Store(state, readonly=True) as reader:
                run = reader.latest_run()
                assert run is not None and run.shown_status == "running"
        finally:
            holder.close()
    finally:
        other.kill()
        other.wait()


def test_a_runner_taking_the_lock_as_a_status_probes_it_is_not_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`status` probes the runner lock by taking it for a moment: a runner taking it in that moment tries again
    rather than refuse to start for another runner's."""
    import fcntl

    from runner.state import Store

    real = fcntl.flock
    probed: list[int] = []

    def flock(fd: int, op: int) -> None:
        if op & fcntl.LOCK_EX and not probed:
            probed.append(fd)
            raise BlockingIOError(11, "Resource temporarily unavailable")  # held by a probe, that moment
        real(fd, op)

    with Store(tmp_path / ".gridrun" / "state.db") as store:
        monkeypatch.setattr(fcntl, "flock", flock)
        store.acquire_lock()
        assert probed and store._lock_fds


def test_watch_reads_again_a_run_that_recorded_itself_between_its_reading_and_the_starting_check(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:
    """A run recorded just after the watch read the previous run's end, its `starting` file already gone when the
    watch looks for it: the watch reads again and follows the new run to its end, not the previous run's."""
    from runner.cli import main

    manifest = write_manifest(tmp_path, n_seeds=2, styles=("anime",), sim={"render_time": 0.5, "jitter": 0.0})
    monkeypatch.chdir(tmp_path)
    assert api.run(manifest, report=False, options={"timeout": 0.1}).exit_code == 4  # run 1: incomplete
    starting = api.run_starting
    checks: list[int] = []
    raced: list[int] = []

    def run_recorded_meanwhile(*args: Any, **kwargs: Any) -> int | None:
        checks.append(1)
        if len(checks) == 1:  # the first look finds run 2 starting (its `starting` file): the watch waits
            return os.getpid() + 1
        if not raced:  # at the next, run 2 has recorded itself (and ended) since the watch read run 1's end
            raced.append(api.run(manifest, report=False).exit_code)
        return starting(*args, **kwargs)

    monkeypatch.setattr(api, "run_starting", run_recorded_meanwhile)
    code = main(["status", str(manifest), "--watch", "--json", "--every", "0.2"])
    out = capsys.readouterr().out
    assert raced == [0]
    end = json.loads(out.strip().splitlines()[-1])
    assert (code, end["run"], end["status"]) == (0, 2, "done"), out


def test_watch_of_a_run_that_ends_between_its_reading_and_the_look_at_its_process_is_not_gone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:
    """The watch read the run still running; the run then recorded its end, let go of its lock and exited before
    the watch looked at its process: the watch reads again and reports the run's end and code, not `gone` (5)."""
    import dataclasses

    from runner.cli import main

    manifest = write_manifest(tmp_path, n_seeds=1, styles=("anime",), sim={"render_time": 0.05, "jitter": 0.0})
    assert api.run(manifest, report=False).exit_code == 0
    real = api.status
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True,
                          check=True).stdout.strip()
    readings: list[int] = []

    def read_before_its_end(*args: Any, **kwargs: Any) -> Any:
        snap = real(*args, **kwargs)
        readings.append(1)
        if len(readings) <= 2:  # as read while it ran: first alive, then by the process that has since ended
            run = dataclasses.replace(snap.run, ended_at=None, status="running",
                                      pid=os.getpid() if len(readings) == 1 else int(dead))
            return dataclasses.replace(snap, run=run)
        return snap

    monkeypatch.setattr(api, "status", read_before_its_end)
    code = main(["status", str(manifest), "--watch", "--json", "--every", "0.2"])
    out = capsys.readouterr().out
    end = json.loads(out.strip().splitlines()[-1])
    assert (code, end["run"], end["status"]) == (0, 1, "done"), out
    assert len(readings) >= 3


def _rendered_then_force_killed(manifest: Path, cwd: Path) -> dict[str, tuple[str | None, str | None, int | None]]:
    """Run `manifest` to its end, then `run --force` killed just after its second create was answered: the
    jobs' videos, SHA-256s and costs as the first run left them, by key."""
    first = _gridrun("run", str(manifest), cwd=cwd)
    assert first.returncode == 0, first.stderr
    earlier = {j.key: (j.output_path, j.sha256, j.cost_micros) for j in api.status(manifest).jobs}
    killed = subprocess.run([sys.executable, "-m", "runner.cli", "run", str(manifest), "--force", "--no-report"],
                            cwd=cwd, capture_output=True, text=True, timeout=60, check=False,
                            env={**os.environ, "GRIDRUN_CRASH_AT": "after-submit:2"})
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    return earlier


@pytest.mark.timeout(120)
def test_a_force_run_killed_in_flight_keeps_showing_the_earlier_takes_in_status_and_the_report(tmp_path: Path) -> None:
    """A --force run killed with its re-renders in flight: the earlier videos are still whole at their paths (moved
    aside only once a new one arrives). `status` says how many of the jobs not done are such re-renders, and the
    report links each one's earlier take, its poster and what it cost, marked as being re-rendered; the state
    keeps the jobs as they are (in flight, planned), for the next run to follow."""
    import re

    from runner.outputs import poster_path

    manifest = write_manifest(tmp_path, n_seeds=2, run={"concurrency": 2},
                              sim={"render_time": 0.3, "jitter": 0.0, "concurrency": 2})
    earlier = _rendered_then_force_killed(manifest, tmp_path)
    snap = api.status(manifest)
    again = [j for j in snap.jobs if j.state != "done"]
    assert again and all(j.state in ("planned", "submitting", "submitted") for j in again), [(j.key, j.state) for j in snap.jobs]
    for job in again:
        path, sha, cost = earlier[job.key]
        assert job.sha256 is None  # the state's job is the re-render's, as the next run follows it
        assert job.earlier is not None and (job.earlier.output_path, job.earlier.sha256) == (path, sha), job
        assert job.earlier.cost_micros == cost and job.earlier.run == 1
    assert all(j.earlier is None for j in snap.jobs if j.state == "done")

    plain = _gridrun("status", str(manifest), cwd=tmp_path)
    n = len(again)
    assert plain.returncode == 0, plain.stderr
    assert f"{n} of them are re-renders of done jobs (--force, retry): the earlier videos kept at their paths" \
        in plain.stdout, plain.stdout
    code, doc, stderr = _status(manifest)
    assert code == 0 and doc is not None and doc["rerendering"] == n, stderr

    page = api.report(manifest)
    m = re.search(r'<script type="application/json" id="gridrun-data">(.*?)</script>', page.read_text(), re.DOTALL)
    assert m
    items = {it["key"]: it["jobs"][0] for it in json.loads(m.group(1))["items"]}
    for job in again:
        shown = items[job.key]
        path = Path(earlier[job.key][0])
        assert shown["state"] == job.state
        assert shown["src"] == path.relative_to(page.parent).as_posix(), shown
        assert shown["poster"] == poster_path(path).relative_to(page.parent).as_posix(), shown
        assert shown["rerender"] == {"cost": earlier[job.key][2], "run": 1}, shown
    # without scripts, the page's table of jobs says so beside the link
    assert page.read_text().count(" (a re-render: run 1's take shown, kept until a new one arrives)") == n


@pytest.mark.timeout(150)
def test_an_earlier_force_run_killed_in_flight_shows_the_earlier_takes_it_left_once_a_later_run_collected_them(
    tmp_path: Path,
) -> None:
    """Run 2 (`--force`) is killed with its re-renders in flight; run 3 collects them, each new take moving the
    earlier one aside under .runs/superseded/. Run 2's report shows what run 2 left: each such job's earlier take
    (its link, poster and cost, the run that made it) where it is kept now, marked as kept aside; once that copy
    is gone, it says plainly that the take is not kept, and links nothing."""
    import re
    import shutil

    from runner.outputs import poster_path

    # no seed: each render is another video
    manifest = write_manifest(tmp_path, run={"concurrency": 2}, sim={"render_time": 0.3, "jitter": 0.0, "concurrency": 2},
                              extra={"matrix": {"style": ["anime", "clay"]}, "output": "{{ style }}.mp4"})
    earlier = _rendered_then_force_killed(manifest, tmp_path)
    left = {j.key: j.state for j in api.status(manifest).jobs if j.state != "done"}
    assert left, "nothing left in flight"
    third = _gridrun("run", str(manifest), "--no-report", cwd=tmp_path)
    assert third.returncode == 0, third.stderr
    now = {j.key: j for j in api.status(manifest).jobs}
    assert all(now[k].state == "done" and now[k].sha256 != earlier[k][1] for k in left), now

    def run2() -> tuple[Path, dict[str, dict[str, Any]], str]:
        made = _gridrun("report", str(manifest), "--run", "2", cwd=tmp_path)
        assert made.returncode == 0, made.stderr
        page = tmp_path / "outputs" / "t" / "report-run-2.html"
        html = page.read_text()
        m = re.search(r'<script type="application/json" id="gridrun-data">(.*?)</script>', html, re.DOTALL)
        assert m
        return page, {it["key"]: it["jobs"][0] for it in json.loads(m.group(1))["items"]}, html

    page, items, html = run2()
    for key, state in left.items():
        shown = items[key]
        assert shown["state"] == state, shown
        kept = tmp_path / "outputs" / "t" / shown["src"]
        assert kept.is_file() and kept != Path(earlier[key][0]) and ".runs/superseded/" in shown["src"], shown
        assert hashlib.sha256(kept.read_bytes()).hexdigest() == earlier[key][1]
        assert shown["poster"] == poster_path(kept).relative_to(page.parent).as_posix(), shown
        assert (page.parent / shown["poster"]).is_file()
        assert shown["rerender"] == {"cost": earlier[key][2], "run": 1, "aside": True}, shown
    assert "run 1's take shown, kept aside since a later take replaced it" in html  # the table without scripts

    # a kept take whose sidecar is older than it is hashed, and its digest remembered for the next command
    kept = tmp_path / "outputs" / "t" / items[next(iter(left))]["src"]
    hour = time.time() - 3600
    os.utime(kept, (hour, hour))
    os.utime(kept.with_suffix(".json"), (hour - 3600, hour - 3600))
    (tmp_path / ".gridrun" / "digests.json").unlink(missing_ok=True)
    run2()
    remembered = json.loads((tmp_path / ".gridrun" / "digests.json").read_text())["files"]
    assert remembered[str(kept)][-1] == earlier[next(iter(left))][1], remembered

    shutil.rmtree(tmp_path / "outputs" / "t" / ".runs" / "superseded")
    _, items, html = run2()
    for key in left:
        shown = items[key]
        assert "src" not in shown and "poster" not in shown, shown
        assert shown["rerender"] == {"cost": earlier[key][2], "run": 1, "gone": True}, shown
    assert "run 1's take was its video, replaced by a later take and not kept" in html


def test_a_manifest_never_run_says_to_run_it_first_and_names_the_manifests_that_ran(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`status`, `report` and `export` of a manifest that never ran say to run it first and, as the state holds
    runs of other manifests, name them and how to list them."""
    from runner import api
    from runner.cli import main

    monkeypatch.setenv("COLUMNS", "400")
    ran = write_manifest(tmp_path, n_seeds=1, styles=("anime",))
    assert api.run(ran, report=False).status == "done"
    never = write_manifest(tmp_path, n_seeds=1, styles=("anime",), name="never")
    capsys.readouterr()
    state = tmp_path / ".gridrun"
    for argv in (["status", str(never)], ["status", str(never), "--runs"], ["report", str(never)],
                 ["export", str(never)]):
        assert main(argv) == 2, argv
        said = " ".join(capsys.readouterr().err.split())
        assert f"no run recorded for never; `gridrun run {never}` runs it first; this state holds a run of another " \
               f"manifest: t (1 run) (`gridrun status --state {state} --runs` lists it)" in said, (argv, said)
    assert main(["status", "--state", str(state), "--runs"]) == 0  # as it says
    assert "t" in capsys.readouterr().out


def test_status_given_the_project_folder_for_the_state_folder_names_its_gridrun_folder(
    tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    """`status --state` given the project folder, where the state is in its .gridrun/, names that folder, not
    "nothing has run here"; a folder with no state anywhere is said so as before."""
    from runner import api
    from runner.cli import main

    assert api.run(write_manifest(tmp_path, n_seeds=1, styles=("anime",)), report=False).status == "done"
    state = tmp_path / ".gridrun"
    capsys.readouterr()
    for extra in ([], ["--runs"], ["--json"]):
        assert main(["status", "--state", str(tmp_path), *extra]) == 2, extra
        said = " ".join(capsys.readouterr().err.split())
        assert f"{tmp_path / 'state.db'}: no state there, but {state} holds one: did you mean --state {state}?" \
               in said and "nothing has run here" not in said, (extra, said)
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["status", "--state", str(empty)]) == 2
    assert "no state yet (nothing has run here)" in capsys.readouterr().err  # nothing to point to


def test_status_json_of_a_manifest_never_run_prints_one_json_object(
    tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    """Printed nothing on standard output (the error on standard error alone): a script polling `status --runs
    --json` before the first run read no JSON. The object has the starting object's keys, with `exit_code` and
    `errors` as `run --json`'s `end` event has them; the exit code stays 2."""
    from runner.cli import main

    never = write_manifest(tmp_path, n_seeds=1, styles=("anime",), name="never")
    for argv in (["status", str(never), "--json"], ["status", str(never), "--runs", "--json"]):
        assert main(argv) == 2, argv
        said = capsys.readouterr()
        document = json.loads(said.out)
        assert {k: document[k] for k in ("run", "manifest", "status", "exit_code")} == {
            "run": None, "manifest": "never", "status": None, "exit_code": 2}, document
        assert len(document["errors"]) == 1 and "runs it first" in document["errors"][0], document
        assert document["errors"][0] in " ".join(said.err.split())
    assert api.run(write_manifest(tmp_path, n_seeds=1, styles=("anime",)), report=False).status == "done"
    assert main(["status", str(never), "--runs", "--json"]) == 2  # the state now holds another manifest's runs
    assert "no run recorded for never" in json.loads(capsys.readouterr().out)["errors"][0]
    assert main(["status", str(tmp_path / "missing.yaml"), "--json"]) == 2
    document = json.loads(capsys.readouterr().out)
    assert (document["manifest"], document["exit_code"]) == (None, 2) and document["errors"], document


def test_status_of_a_run_with_no_pace_yet_gives_its_expected_eta_marked_as_an_estimate(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Before two jobs have ended a run has no pace; its own progress shows `eta ~…` from the expected render
    times of the jobs in flight. `status` (text and `--json`) from elsewhere gives that estimate too, as the run's
    heartbeat recorded it, marked as one, not `eta —`; once the run has ended there is none."""
    import threading

    from runner import live
    from runner.cli import main

    monkeypatch.setattr(live, "HEARTBEAT", 0.05)  # recorded at once, not every 5 s
    manifest = write_manifest(tmp_path, n_seeds=2, styles=("anime",), run={"concurrency": 2},
                              sim={"render_time": 4.0, "jitter": 0.0, "concurrency": 2})
    result: dict[str, Any] = {}
    worker = threading.Thread(target=lambda: result.update(r=api.run(manifest, report=False)), daemon=True)
    worker.start()
    doc = plain = None
    try:
        deadline = time.monotonic() + 60
        while worker.is_alive() and time.monotonic() < deadline:
            try:
                snap = api.status(manifest)
            except api.NotRecordedError:
                snap = None
            sent = [] if snap is None else [j.submitted_at for j in snap.jobs if j.state in ("submitted", "running")]
            # both rendering, and a heartbeat recorded since they were sent
            if (snap is not None and snap.run.ended_at is None and not snap.ended and len(sent) == 2
                    and snap.run.seen_at is not None and all(t is not None and t < snap.run.seen_at for t in sent)):
                doc, reading = api.status_json(snap), api.status
                monkeypatch.setattr(api, "status", lambda *a, now=snap, **k: now)  # that moment, as status reads it
                main(["status", str(manifest)])
                monkeypatch.setattr(api, "status", reading)
                plain = capsys.readouterr().out
                break
            time.sleep(0.02)
    finally:
        worker.join(60)
    assert doc is not None, "status never saw the run's jobs in flight with an expected end"
    assert doc["eta_expected"] is True and doc["eta"] is not None and 0 < doc["eta"] <= 4.0 + 1, doc
    assert "eta ~" in plain, plain
    assert result["r"].exit_code == 0
    end = api.status_json(api.status(manifest))
    assert end["eta"] is None and end["eta_expected"] is False, end


def test_watch_and_status_of_an_invalid_manifest_that_never_ran_give_its_errors_without_waiting(
    tmp_path: Path,
) -> None:
    """No state records the manifest, and it does not plan: no run of it will start, so the watch refuses it at
    once with its errors (file:line), as `run` would, not after waiting for a run, with advice to run it; and
    `status` alike."""


    manifest = write_manifest(tmp_path, n_seeds=1, styles=("anime", "watercolor"))
    watch = _gridrun("status", str(manifest), "--watch", "--json", cwd=tmp_path)
    assert watch.returncode == 2, watch.stdout + watch.stderr
    end = json.loads(watch.stdout.splitlines()[-1])
    assert end["event"] == "end" and end["status"] is None and end["exit_code"] == 2, end
    assert end["errors"] and all(e.startswith(f"{manifest.name}:") or f"{manifest}:" in e for e in end["errors"]), end
    assert "'watercolor' is not one of" in end["errors"][0], end
    assert "waiting" not in watch.stderr and "runs it first" not in watch.stdout + watch.stderr, watch.stderr
    status = _gridrun("status", str(manifest), cwd=tmp_path)
    assert status.returncode == 2, status.stdout + status.stderr
    assert "'watercolor' is not one of" in status.stderr and "runs it first" not in status.stderr, status.stderr
    assert not (tmp_path / ".gridrun").exists()



@pytest.mark.timeout(150)
@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="process start times come from /proc")
def test_a_run_whose_process_seems_started_after_it_is_not_gone_while_it_holds_its_lock(tmp_path: Path) -> None:
    """/proc gives a process's start by the wall clock as it stands now (its boot time moves with every step of
    it): a run whose machine's clock was stepped forward since it began reads as started before its own process,
    as a run whose pid another process took would. The run holds its state's runner lock, its pid in the lock's
    file: it goes on, and `status`, its `--runs` and the report say so; once it is killed, it is gone."""
    from runner.records import process_start

    manifest = write_manifest(tmp_path, n_seeds=2, run={"concurrency": 2},
                              sim={"render_time": 600, "jitter": 0.0, "concurrency": 2})
    proc = subprocess.Popen([sys.executable, "-m", "runner.cli", "run", str(manifest), "--no-report"], cwd=tmp_path,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: in_flight(manifest) == 2)
        started = process_start(proc.pid)
        assert started is not None
        _recorded_as(tmp_path, started_at=started - 30)  # the clock stepped 30 s forward since the run began
        code, doc, stderr = _status(manifest)
        assert code == 0 and doc is not None and doc["status"] == "running" and doc["process_gone"] is False, (
            doc, stderr)
        listed = _gridrun("status", str(manifest), "--runs", "--json", cwd=tmp_path)
        assert [r["status"] for r in json.loads(listed.stdout)] == ["running"], listed.stdout + listed.stderr
        shown = _gridrun("status", str(manifest), cwd=tmp_path)
        assert "gone" not in shown.stdout and "resumes it" not in shown.stdout, shown.stdout
        report = _gridrun("report", str(manifest), cwd=tmp_path)
        assert report.returncode == 0, report.stderr
        page = next(tmp_path.rglob("report.html")).read_text(encoding="utf-8").replace(" ", "")
        assert '"status":"running"' in page and '"status":"gone"' not in page, report.stdout
    finally:
        proc.kill()
        proc.wait()
    code, doc, stderr = _status(manifest)
    assert code == 0 and doc is not None and doc["status"] == "gone", (doc, stderr)
