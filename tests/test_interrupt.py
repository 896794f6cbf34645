"""Ctrl-C: the first stops submitting and finishes what is paid for; the second detaches at once; the
next run re-attaches and pays nothing twice. `gridrun cancel` cancels in-flight jobs on request."""

from __future__ import annotations

import contextlib
import dataclasses
import io
import json
import os
import re
import shlex
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from runner import api
from runner.errors import NotRecordedError
from runner.executor import RunOptions, RunResult
from runner.export import export_rows, summary
from runner.providers import SIM_WORLD
from runner.providers.base import VideoStatus
from runner.sim.config import SimConfig
from runner.sim.engine import Sim
from runner.sim.serve import running_server
from runner.sim.world import World
from runner.state import Store
from runner.stats import run_statistics

from execkit import check_outputs, in_flight, sha256, sim_provider, stats, wait_for, write_manifest
from statekit import FullDisk


def _run(m: Path) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "runner.cli", "run", str(m)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, cwd=m.parent)


def _interrupt(m: Path, *, times: int, signum: int = signal.SIGINT) -> tuple[int, str]:
    """Start `gridrun run m`, press Ctrl-C (or send `signum`) `times` times once two jobs are in flight;
    (exit code, stderr)."""
    proc = _run(m)
    try:
        wait_for(lambda: in_flight(m) >= 2)
        for i in range(times):
            if i:
                time.sleep(0.2)
            os.kill(proc.pid, signum)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    return proc.returncode, err


def _caps(queued_cancel_free: bool | None) -> Any:
    """A stand-in provider whose capability data says whether a video cancelled while queued is billed."""
    from types import SimpleNamespace

    return SimpleNamespace(caps=SimpleNamespace(queued_cancel_free=queued_cancel_free))


def _cli(command: str, m: Path, *more: str) -> subprocess.CompletedProcess[str]:
    """`gridrun COMMAND M` in M's folder, in this process: what comes after a run another process ran (and was
    signalled in) reads and resumes that run's state all the same."""
    from runner.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.chdir(m.parent), contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main([command, str(m), *more])
    return subprocess.CompletedProcess(["gridrun", command, str(m)], code, out.getvalue(), err.getvalue())


def _states(m: Path) -> dict[str, str]:
    return {j.key: j.state for j in api.status(m).jobs}


def _stats(url: str) -> dict:
    return httpx.get(url.rsplit("/v1", 1)[0] + "/_sim/stats").json()


@pytest.mark.timeout(120)
def test_first_ctrl_c_stops_submitting_and_finishes_paid_work(tmp_path: Path) -> None:
    with running_server(SimConfig(render_time=1.5, jitter=0.0, concurrency=2), process=True) as url:
        m = write_manifest(tmp_path, n_seeds=4, run={"concurrency": 2}, base_url=url, sim={})
        code, err = _interrupt(m, times=1)
        assert code == 130, err
        # what was sent before the signal was taken (2 but on a machine that stalled for a whole render) is finished,
        # and nothing more is sent
        sent = _stats(url)["creates"]
        assert 2 <= sent < 8, sent
        snap = api.status(m)
        assert snap.counts["done"] == sent and snap.counts["planned"] == 8 - sent, snap.counts
        # nothing left in flight: it says what next
        assert f"`gridrun run` sends the {8 - sent} jobs not sent" in err, err
        assert snap.stopping == "interrupt" and api.status_json(snap)["stopping"] == "interrupt"  # recorded
        status = _cli("status", m)
        assert "(interrupted, started" in status.stdout, status.stdout
        assert f"next: `gridrun run` sends the {8 - sent} jobs not sent" in " ".join(status.stdout.split()), status.stdout
        # the next run finishes the rest and pays for each job once
        r = _cli("run", m)
        assert r.returncode == 0, r.stderr
        stats = _stats(url)
        assert stats["creates"] == 8 and stats["duplicate_paid"] == 0


@pytest.mark.timeout(120)
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP], ids=["sigterm", "hangup"])
def test_a_first_sigterm_or_a_hangup_with_no_terminal_ends_the_run_at_once_leaving_the_jobs_in_flight(
    tmp_path: Path, signum: int
) -> None:
    """`timeout`, a CI runner's cancel or `docker stop` sends SIGTERM, then kills the process a few seconds later;
    a hangup with no terminal has no one to press Ctrl-C again. One such signal ends the run at once, before any
    render ends: `interrupted`, exit 130, its end recorded (the report no longer says it runs), the jobs sent left
    in flight, recorded. The plain line says what was left and that `gridrun run` collects it; the next run does,
    paying nothing twice."""
    with running_server(SimConfig(render_time=6.0, jitter=0.0, concurrency=2), process=True) as url:
        m = write_manifest(tmp_path, n_seeds=4, run={"concurrency": 2}, base_url=url, sim={})
        code, err = _interrupt(m, times=1, signum=signum)
        name = signal.Signals(signum).name
        assert code == 130, err
        sent = _stats(url)["creates"]
        snap = api.status(m)
        assert snap.run.status == "interrupted" and snap.run.ended_at is not None, snap.run
        assert snap.counts["done"] == 0 and in_flight(m) == sent >= 2, (snap.counts, sent)  # no render awaited
        said = " ".join(err.split())
        assert re.search(f"interrupted by {name}: left the {sent} (paid )?jobs in flight to the next run; "
                         "`gridrun run` collects them at no new cost", said), err
        assert f"{name} again" not in said, err  # no second signal to send: a supervisor's next one is a kill
        assert f"collects the {sent} jobs left in flight at no new cost" in said, err
        report = (m.parent / "outputs" / "t" / "report.html").read_text()
        assert 'class="badge run-interrupted"' in report and 'class="badge run-running"' not in report
        r = _cli("run", m)
        assert r.returncode == 0, r.stderr
        stats = _stats(url)
        assert stats["creates"] == 8 and stats["duplicate_paid"] == 0, stats
    assert api.status(m).counts["done"] == 8


@pytest.mark.timeout(120)
def test_a_closed_terminal_ends_the_run_at_once_leaving_the_jobs_in_flight(tmp_path: Path) -> None:
    """A run in a terminal that closes (the window, an SSH session): the kernel hangs the terminal up, then
    sends SIGHUP. No one is left to press Ctrl-C again: the run ends at once, the jobs sent left in flight,
    writes nothing to the dead terminal, and exits 130; the next run collects them, paying nothing twice."""
    import pty

    with running_server(SimConfig(render_time=6.0, jitter=0.0, concurrency=2), process=True) as url:
        m = write_manifest(tmp_path, n_seeds=4, run={"concurrency": 2}, base_url=url, sim={})
        pid, master = pty.fork()
        if pid == 0:  # the child: a session of its own, the pty its terminal
            os.chdir(m.parent)
            os.execv(sys.executable, [sys.executable, "-m", "runner.cli", "run", str(m)])
        try:
            wait_for(lambda: in_flight(m) >= 2)
            os.close(master)  # the terminal goes away
            deadline = time.monotonic() + 60
            while (done := os.waitpid(pid, os.WNOHANG))[0] == 0 and time.monotonic() < deadline:
                time.sleep(0.05)
            assert done[0] == pid, "the run did not end after its terminal closed"
        finally:
            with contextlib.suppress(ChildProcessError, ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(done[1]) == 130
        snap = api.status(m)
        sent = _stats(url)["creates"]
        assert snap.run.status == "interrupted" and snap.run.ended_at is not None, snap.run
        assert snap.counts["done"] == 0 and in_flight(m) == sent >= 2, (snap.counts, sent)  # no render awaited
        r = _cli("run", m)
        assert r.returncode == 0, r.stderr
        stats = _stats(url)
        assert stats["creates"] == 8 and stats["duplicate_paid"] == 0, stats


@pytest.mark.timeout(120)
def test_second_ctrl_c_detaches_and_the_next_run_reattaches(tmp_path: Path) -> None:
    with running_server(SimConfig(render_time=3.0, jitter=0.0, concurrency=2), process=True) as url:
        m = write_manifest(tmp_path, n_seeds=1, run={"concurrency": 2}, base_url=url, sim={})
        code, _ = _interrupt(m, times=2)
        assert code == 130
        assert in_flight(m) == 2  # detached: still in flight at the provider, ids kept
        status = " ".join(_cli("status", m).stdout.split())
        assert "next: `gridrun run` collects the 2 jobs left in flight at no new cost" in status, status
        r = _cli("run", m)
        assert r.returncode == 0, r.stderr
        stats = _stats(url)
        assert stats["creates"] == 2 and stats["duplicate_paid"] == 0
        assert api.status(m).counts["done"] == 2


@pytest.mark.timeout(120)
def test_what_to_run_after_a_detach_says_what_sending_the_jobs_not_sent_costs(tmp_path: Path) -> None:
    """Only collecting the jobs left in flight is free: the next step names the cost of the jobs not sent, as
    the plan estimates it, both at the run's end and in `status`."""
    with running_server(SimConfig(render_time=3.0, jitter=0.0, concurrency=2), process=True) as url:
        m = write_manifest(tmp_path, n_seeds=3, run={"concurrency": 2}, base_url=url, sim={})
        code, err = _interrupt(m, times=2)
        assert code == 130 and api.status(m).counts["planned"] == 4, err
        step = "`gridrun run` sends the 4 jobs not sent ($1.40) and collects the 2 jobs left in flight at no new cost"
        assert f"interrupted: {step}" in " ".join(err.split()), err
        assert f"next: {step}" in " ".join(_cli("status", m).stdout.split())


@pytest.mark.timeout(120)
def test_what_the_next_run_counts_for_the_jobs_left_in_flight_is_said_by_the_run_status_and_plan(
    tmp_path: Path,
) -> None:
    """Collecting the jobs left in flight sends nothing new, but their renders are the next run's spending: the
    run's end and `status` say what they count against its budget, and `plan` names the figure it compares with
    the budget, the jobs in flight included, also where it passes it."""
    with running_server(SimConfig(render_time=3.0, jitter=0.0, concurrency=2), process=True) as url:
        m = write_manifest(tmp_path, n_seeds=3, run={"concurrency": 2}, base_url=url, sim={})
        code, err = _interrupt(m, times=2)
        assert code == 130 and api.status(m).counts["planned"] == 4 and in_flight(m) == 2, err
        step = ("`gridrun run` sends the 4 jobs not sent ($1.40) and collects the 2 jobs left in flight at no new "
                "cost (their $0.70 counts against its budget)")
        assert f"interrupted: {step}" in " ".join(err.split()), err
        assert f"next: {step}" in " ".join(_cli("status", m).stdout.split())
        plan = " ".join(_cli("plan", m, "--budget", "1.40").stdout.split())
        assert ("budget: $1.40 (exceeds: this run counts $2.10 against it ($1.40 to submit, $0.70 in flight), of "
                "$2.10 for all jobs)") in plan, plan
        assert "4 to submit ($1.40), 0 cached, 2 in flight ($0.70), 0 settled" in plan, plan


@pytest.mark.timeout(120)
def test_cancel_cancels_in_flight_jobs_on_request(tmp_path: Path) -> None:
    with running_server(SimConfig(render_time=30.0, jitter=0.0, concurrency=2), process=True) as url:
        m = write_manifest(tmp_path, n_seeds=1, run={"concurrency": 2}, base_url=url, sim={})
        _interrupt(m, times=2)
        r = _cli("cancel", m)
        assert r.returncode == 0, r.stderr
        assert "cancelled 2 jobs" in r.stdout
        assert api.status(m).counts["cancelled"] == 2
        stats = _stats(url)
        assert stats["cancelled"] == 2


@pytest.mark.timeout(120)
@pytest.mark.parametrize("found", ["cancelled", "finished"])
def test_a_killed_runs_time_ends_at_its_own_last_record_not_at_what_a_later_cancel_recorded(
    tmp_path: Path, found: str,
) -> None:
    """`gridrun cancel` records what became of a killed run's jobs (cancelled, or rendered first); the run's
    process was dead then: its time, pace, wall time and the end the next run gives it (`crashed`) stay as its
    own records left them."""
    render_time = 30.0 if found == "cancelled" else 2.0
    with running_server(SimConfig(render_time=render_time, jitter=0.0, concurrency=2), process=True) as url:
        m = write_manifest(tmp_path, n_seeds=1, run={"concurrency": 2}, base_url=url, sim={})
        _interrupt(m, times=1, signum=signal.SIGKILL)
        if found == "finished":
            wait_for(lambda: _stats(url)["completions"] == 2)
        before = run_statistics(api.status(m))
        assert api.status_json(api.status(m))["status"] == "gone"
        with Store(m.parent / ".gridrun" / "state.db", readonly=True) as store:
            last = store._last_record(before.run_id)  # the end a run starting now would give it
        r = _cli("cancel", m)
        assert r.returncode == 0 and ("cancelled 2 jobs" if found == "cancelled" else "2 jobs finished first") \
            in r.stdout, r
        snap = api.status(m)
        assert snap.counts["cancelled" if found == "cancelled" else "downloading"] == 2, snap.counts
        after = run_statistics(snap)
        assert (after.elapsed, after.per_minute) == (before.elapsed, before.per_minute)
        assert summary(snap)["run"]["wall_seconds"] == round(before.elapsed, 3)  # the export's and report's
        assert f"{before.elapsed:.0f}" == f"{api.status_json(snap)['elapsed']:.0f}"
        assert _cli("run", m).returncode == 0  # it marks the killed run crashed (and downloads what finished)
        with Store(m.parent / ".gridrun" / "state.db", readonly=True) as store:
            first = store.run(snap.run.id)
        assert first.status == "crashed" and first.ended_at == last


@pytest.mark.timeout(120)
def test_a_run_whose_only_unfinished_jobs_were_cancelled_on_request_has_not_failed(tmp_path: Path) -> None:
    """Jobs cancelled with `gridrun cancel` are the user's decision: the run that sends the others ends
    `cancelled`, exit 0, and says what was cancelled and how to send it again, not that jobs failed."""
    with running_server(SimConfig(render_time=30.0, jitter=0.0, concurrency=2), process=True) as url:
        m = write_manifest(tmp_path, n_seeds=2, run={"concurrency": 2}, base_url=url, sim={})
        _interrupt(m, times=2)
        assert _cli("cancel", m).returncode == 0
        httpx.post(url.rsplit("/v1", 1)[0] + "/_sim/config", json={"render_time": 0.2}).raise_for_status()
        r = _cli("run", m)
        assert r.returncode == 0, r.stderr
        snap = api.status(m)
        assert snap.run.status == "cancelled" and snap.counts["done"] == 2 and snap.counts["cancelled"] == 2
        said = " ".join(r.stderr.split())
        assert "done, but for 2 jobs cancelled on request (`gridrun cancel`)" in said, said
        assert "`gridrun retry` sends them again (a new render, paid)" in said and "failed" not in said, said
        status = " ".join(_cli("status", m).stdout.split())
        assert "(cancelled, started" in status and "next:" not in status, status


@pytest.mark.timeout(120)
def test_cancel_goes_on_past_a_failed_request_and_says_which(tmp_path: Path) -> None:
    refuse_first_delete = ({"fault": "auth_failed", "route": "delete", "nth": [1]},)
    with running_server(SimConfig(render_time=30.0, jitter=0.0, concurrency=2, script=refuse_first_delete),
                        process=True) as url:
        m = write_manifest(tmp_path, n_seeds=1, run={"concurrency": 2}, base_url=url, sim={})
        _interrupt(m, times=2)
        r = _cli("cancel", m)
        assert r.returncode == 1
        assert "cancelled 1 job at the provider" in r.stdout
        assert r.stderr.count("error: ") == 1 and "AUTHENTICATION_FAILED" in r.stderr, r.stderr
        said = " ".join(r.stderr.split())
        assert "1 job not cancelled, a request to the provider having failed" in said, said
        assert f"`gridrun cancel {m}` again tries it again" in said, said
        counts = api.status(m).counts
        assert counts["cancelled"] == 1 and counts["submitted"] + counts["running"] == 1, counts
        assert _stats(url)["cancelled"] == 1
        # as said: nothing was recorded of the job whose request failed, and a cancel again asks again
        again = _cli("cancel", m)
        assert again.returncode == 0 and "cancelled 1 job at the provider" in again.stdout, again
        assert api.status(m).counts["cancelled"] == 2 and _stats(url)["cancelled"] == 2


@pytest.mark.timeout(120)
def test_cancel_leaves_a_video_finished_first_for_the_next_run_to_download(tmp_path: Path) -> None:
    with running_server(SimConfig(render_time=2.0, jitter=0.0, concurrency=2), process=True) as url:
        m = write_manifest(tmp_path, n_seeds=1, run={"concurrency": 2}, base_url=url, sim={})
        _interrupt(m, times=2)
        wait_for(lambda: _stats(url)["completions"] == 2)
        in_flight = {k for k, state in _states(m).items() if state in ("submitted", "running")}
        result = api.cancel(m)
        assert len(in_flight) == 2 and set(result.finished) == in_flight
        assert result.cancelled == [] and result.errors == {}
        # not marked cancelled: recorded rendered and paid (no longer reserved), still to be downloaded
        assert _states(m) == dict.fromkeys(in_flight, "downloading")
        assert api.status(m).reserved_micros == 0
        r = _cli("run", m)
        assert r.returncode == 0, r.stderr
        assert api.status(m).counts["done"] == 2
        stats = _stats(url)
        assert stats["creates"] == 2 and stats["duplicate_paid"] == 0 and stats["cancelled"] == 0
        assert stats["requests"].get("delete", 0) == 0  # finished videos get no DELETE, which may remove them


@pytest.mark.timeout(120)
def test_cancel_of_a_manifest_with_its_own_state_leaves_another_states_renders_of_the_same_requests_alone(
    tmp_path: Path,
) -> None:
    """Two manifests with a `state_dir:` each ask for the same requests, each run left with its jobs in flight:
    each state sent keys of its own, so each paid for its own renders, and `gridrun cancel` of one cancels only
    its own; the other's next run collects its renders, none of them "cancelled on request" to pay for again."""
    with running_server(SimConfig(render_time=4.0, jitter=0.0, concurrency=4), process=True) as url:
        p, q = (write_manifest(tmp_path, n_seeds=1, name=name, run={"concurrency": 2}, base_url=url, sim={},
                               extra={"state_dir": f".gridrun-{name}"}) for name in ("pp", "qq"))
        for m in (p, q):
            code, err = _interrupt(m, times=2)
            assert code == 130 and in_flight(m) == 2, err
        r = _cli("cancel", q)
        assert r.returncode == 0 and "cancelled 2 jobs" in r.stdout, (r.stdout, r.stderr)
        assert set(_states(q).values()) == {"cancelled"}
        collected = _cli("run", p)
        assert collected.returncode == 0, collected.stderr
        assert set(_states(p).values()) == {"done"} and "cancelled" not in collected.stderr, collected.stderr
        check_outputs(p)
        stats = _stats(url)
        assert (stats["creates"], stats["replays"], stats["cancelled"]) == (4, 0, 2), stats


@pytest.mark.timeout(120)
def test_cancel_finds_the_jobs_whose_create_answer_was_never_recorded_by_their_key_and_cancels_them(
        tmp_path: Path) -> None:
    """A run killed after a create was sent and before its answer was recorded: the job may be rendering (paid),
    but no id is recorded to cancel it by. `cancel` looks its key up in the provider's request log (free) and
    cancels what it finds, sending no create: not `gridrun run`, which would send again at once what it did not
    find."""
    with running_server(SimConfig(render_time=30.0, jitter=0.0, concurrency=2), process=True) as url:
        m = write_manifest(tmp_path, n_seeds=1, run={"concurrency": 2}, base_url=url, sim={})
        crashed = subprocess.run([sys.executable, "-m", "runner.cli", "run", str(m)], capture_output=True, text=True,
                                 cwd=m.parent, timeout=90, env={**os.environ, "GRIDRUN_CRASH_AT": "after-submit:2"})
        assert crashed.returncode == -signal.SIGKILL
        states = _states(m)
        stuck = [k for k, v in states.items() if v == "submitting"]
        assert stuck, states  # the 2nd create was sent, its answer never recorded (the 1st's may be too)
        r = _cli("cancel", m)
        assert r.returncode == 0, r.stderr
        out = " ".join(r.stdout.split())
        assert "cancelled 2 jobs at the provider" in out, out
        assert f"{_n_jobs(len(stuck))} left sending by a run that stopped" in out and "found at the provider" in out
        assert "`gridrun run" not in r.stdout + r.stderr
        assert set(_states(m).values()) == {"cancelled"}
        stats = _stats(url)
        assert (stats["creates"], stats["cancelled"]) == (2, 2), stats


def _n_jobs(n: int) -> str:
    return "1 job" if n == 1 else f"{n} jobs"


def test_cancel_with_nothing_in_flight_says_so(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A run that ended with every job done leaves nothing to cancel: no count of 0 jobs, no billing warning."""
    from runner.cli import main

    m = write_manifest(tmp_path, n_seeds=1, styles=("anime",))
    assert main(["run", str(m), "--no-report"]) == 0
    capsys.readouterr()
    assert main(["cancel", str(m)]) == 0
    out = capsys.readouterr().out
    assert out.strip() == "nothing in flight to cancel", out


@pytest.mark.parametrize(("n", "it", "was"), [(1, "it", "was"), (2, "them", "were")])
def test_what_cancel_says_of_the_jobs_it_left_speaks_of_one_job_as_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, n: int, it: str, was: str
) -> None:
    """Each line `cancel` writes of the jobs it did not cancel names them by a pronoun (and verb) of their number."""
    from runner import cli

    keys = [[f"{kind}-{i}" for i in range(n)] for kind in ("finished", "running", "dropped", "unresolved")]
    result = api.CancelResult(finished=keys[0], still_running=keys[1], dropped=keys[2], unresolved=keys[3],
                              copy=tmp_path / "run-1.yaml")
    monkeypatch.setattr(api, "cancel", lambda m, **_: result)
    jobs = "1 job" if n == 1 else f"{n} jobs"
    assert cli.main(["cancel", "m.yaml"]) == 1
    out, err = (" ".join(text.split()) for text in capsys.readouterr())
    assert f"{jobs} finished first: `gridrun run m.yaml` downloads {it}" in out, out
    assert f"{jobs} still rendering after the request: the next run follows {it}" in out, out
    assert (f"put the manifest back as the run that sent {it} had it ({os.path.relpath(result.copy)}) and run it to "
            f"download {'the job' if n == 1 else 'them'}; until then a run refuses to start, or leaves {it} with "
            "--leave-in-flight") in out, out
    assert f"may be rendering and {was} not cancelled" in err, err


@pytest.mark.parametrize("name", ["my grid #1.yaml", "esc\x1b[31mRED.yaml"])
def test_every_command_cancel_proposes_writes_the_manifest_quoted_and_escaped(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    """A manifest named with a space and a `#` is one word where a line `cancel` writes is pasted, not `gridrun run
    my grid` and a comment; an ESC in its name is written as an escape the shell reads back (`$'...\\u001b...'`),
    not sent to the terminal."""
    from runner import cli

    result = api.CancelResult(finished=["a"], unresolved=["b"], errors={"c": "timed out"}, gone={"d": "404"},
                              not_in_log=["e"], look_later={"f": ("in 5 minutes", 1)}, log_unread={"g": "403"},
                              dropped=["h"], copy=tmp_path / "run-1.yaml", copy_there=False, copy_run=1,
                              not_taken={"i": "405"}, report_errors={1: "disk full"})
    monkeypatch.setattr(api, "cancel", lambda m, **_: result)
    assert cli.main(["cancel", name]) == 1
    said = " ".join(" ".join(capsys.readouterr()).split())
    quoted = "'my grid #1.yaml'" if "#" in name else "$'esc\\u001b[31mRED.yaml'"
    for line in (f"`gridrun run {quoted}` downloads", f"`gridrun cancel {quoted}` looks",
                 f"`gridrun cancel {quoted}` again looks", f"`gridrun cancel {quoted} --void-unsent`", f"`gridrun retry --unknown {quoted}`",
                 f"`gridrun run {quoted}` finds out", f"`gridrun cancel {quoted}` again tries",
                 f"`gridrun status {quoted} --manifest-copy 1`", f"`gridrun report {quoted} --run 1`"):
        assert line in said, (line, said)
    assert "\x1b" not in said


def test_the_hint_for_a_manifest_never_run_writes_it_quoted(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """`status` of a manifest nothing ran: the `gridrun run` it proposes takes the name as one word; a name that is
    not UTF-8 text is told what `run` tells it (rename it), not a command `run` refuses."""
    from runner.cli import main

    monkeypatch.chdir(tmp_path)
    m = write_manifest(tmp_path, n_seeds=1, styles=("anime",))
    m = m.rename(tmp_path / "my grid #1.yaml")
    assert main(["status", m.name]) == 2
    assert "`gridrun run 'my grid #1.yaml'` runs it first" in capsys.readouterr().err
    odd = os.fsdecode(b"caf\xe9.yaml")
    Path(odd).write_bytes(m.read_bytes())
    assert main(["status", odd]) == 2
    err = capsys.readouterr().err
    assert "not UTF-8 text (byte 0xe9)" in err and "rename" in err and "gridrun run" not in err, err
    other = write_manifest(tmp_path, n_seeds=1, styles=("anime",), name="other")
    assert main(["run", str(other), "--no-report"]) == 0
    capsys.readouterr()
    assert main(["status", m.name]) == 2  # a state of other runs: its hint too
    err = " ".join(capsys.readouterr().err.split())
    assert f"`gridrun run {shlex.quote(str(m))}` runs it first; this state holds a run of another manifest: other (1 run)" in err, err
    assert main(["status", odd]) == 2
    err = capsys.readouterr().err
    assert "not UTF-8 text (byte 0xe9)" in err and "gridrun run" not in err, err


def test_a_run_that_left_one_job_rendering_then_cancelled_speaks_of_it_as_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The ends of a run that left one job at its timeout, and of the run after `cancel` cancelled it."""
    from runner.cli import main

    m = write_manifest(tmp_path, n_seeds=1, styles=("anime",), sim={"render_time": 30, "jitter": 0.0})
    assert main(["run", str(m), "--timeout", "0.3", "--no-report"]) == 4
    said = " ".join(capsys.readouterr().err.split())
    assert "incomplete: 1 job still rendering at its timeout (0.3 s a job) was left at the provider: " in said, said
    assert "; `gridrun cancel` cancels it there" in said, said
    assert main(["cancel", str(m)]) == 0
    assert main(["run", str(m), "--no-report"]) == 0
    said = " ".join(capsys.readouterr().err.split())
    assert "no job done: 1 job cancelled on request (`gridrun cancel`), left cancelled: `gridrun retry` sends it " \
           "again (a new render, paid)" in said, said


def test_an_interrupted_run_with_one_job_in_flight_speaks_of_it_as_one(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from types import SimpleNamespace

    from runner.cli import _say_end

    counts = {"done": 1, "running": 1}
    jobs = [SimpleNamespace(key=k, state=s, error=None, provider_id="v", cost_estimate_micros=350_000)
            for k, s in (("a", "done"), ("b", "running"))]
    # the state as the run left it: what the job left in flight counts against the next run's budget
    monkeypatch.setattr(api, "status", lambda _m: SimpleNamespace(jobs=jobs, sent_elsewhere={}, sent_anew={},
                                                                  sent_with_key={}, repeated={},
                                                                  billed_above=lambda: None, billing=lambda: None))
    result = SimpleNamespace(stats=SimpleNamespace(counts=counts, rerenders_cancelled=0, rerenders_failed=0,
                                                       spent_micros=0, budget_micros=None, stopping=None,
                                                       last_errors=()),
                             left_done=0, exit_code=130, status="interrupted", refused=None, unreached=0)
    _say_end(SimpleNamespace(),
             SimpleNamespace(budget_micros=None, model="m", manifest=None, outputs_dir="o", jobs=()), result)
    assert " ".join(capsys.readouterr().err.split()) == (
        "interrupted with 1 paid job still in flight: `gridrun run` collects it at no new cost (its $0.35 counts "
        "against its budget); `gridrun cancel` cancels it at the provider")


def test_an_interrupted_run_calls_paid_only_the_jobs_seen_rendering_and_says_cancel_stops_the_queued_free(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A second Ctrl-C with jobs still queued at the provider: the closing lines count those apart, not paid, as
    the first signal's note did, and name `gridrun cancel` as what stops them at no charge."""
    from types import SimpleNamespace

    from runner.cli import _say_end

    counts = {"submitted": 2, "running": 1}
    jobs = [SimpleNamespace(key=k, state=s, error=None, provider_id="v", cost_estimate_micros=350_000)
            for k, s in (("a", "submitted"), ("b", "submitted"), ("c", "running"))]
    monkeypatch.setattr(api, "status", lambda _m: SimpleNamespace(jobs=jobs, sent_elsewhere={}, sent_anew={},
                                                                  sent_with_key={}, repeated={},
                                                                  billed_above=lambda: None, billing=lambda: None))
    result = SimpleNamespace(stats=SimpleNamespace(counts=counts, rerenders_cancelled=0, rerenders_failed=0,
                                                       spent_micros=0, budget_micros=None, stopping=None,
                                                       last_errors=()),
                             left_done=0, exit_code=130, status="interrupted", refused=None, unreached=0,
                             queued_cancel_free=True)
    _say_end(SimpleNamespace(), SimpleNamespace(budget_micros=None, model="m", manifest=None, outputs_dir="o"),
             result)
    said = " ".join(capsys.readouterr().err.split())
    assert "interrupted with 1 paid job still in flight: `gridrun run` collects it at no new cost (its $0.35 " \
           "counts against its budget); `gridrun cancel` cancels it at the provider" in said, said
    assert "interrupted with 2 jobs sent, not yet seen rendering (paid only once they render): `gridrun cancel` " \
           "now stops those still queued at no charge; `gridrun run` collects them at no new cost (their $0.70 " \
           "counts against its budget)" in said, said
    assert "3 paid" not in said and "2 paid" not in said, said


def _downloading(m: Path) -> bool:
    try:
        return api.status(m).counts["downloading"] == 1
    except NotRecordedError:  # no run recorded yet
        return False


@pytest.mark.timeout(120)
def test_a_run_interrupted_while_downloading_a_paid_video_says_the_next_run_fetches_it_not_cancel(
    tmp_path: Path
) -> None:
    """A render finished and paid, its download stalled half-way, and Ctrl-C twice: nothing is left at the provider
    to cancel (`gridrun cancel` says so, and that `gridrun run` downloads the paid video), so the run's end says only
    that the next run fetches the video at no cost; and it does."""
    stall = [{"route": "file", "fault": "stall_body", "delay": 60.0, "nth": [1]}]
    m = write_manifest(tmp_path, n_seeds=1, styles=("anime",), sim={"render_time": 0.1, "jitter": 0.0,
                                                                     "script": stall})
    proc = _run(m)
    try:
        wait_for(lambda: _downloading(m))  # rendered and paid, its body held back
        os.kill(proc.pid, signal.SIGINT)
        time.sleep(0.2)
        os.kill(proc.pid, signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    said = " ".join(err.split())
    assert proc.returncode == 130, said
    assert _states(m) == {k: "downloading" for k in _states(m)}
    assert ("interrupted with 1 paid video rendered, its download cut: `gridrun run` fetches it at no cost"
            in said), said
    assert "gridrun cancel" not in said, said
    cancelled = _cli("cancel", m)
    out = " ".join(cancelled.stdout.split())
    assert cancelled.returncode == 0 and "nothing in flight to cancel" in out, out
    # a cleanup reading "nothing in flight" would drop a paid video: the cancel names it, and how to get it
    [key] = _states(m)
    assert f"1 job rendered and paid, not yet downloaded ({key}): `gridrun run {m}` downloads it at no cost" in out, \
        out
    write_manifest(tmp_path, n_seeds=1, styles=("anime",), sim={"render_time": 0.1, "jitter": 0.0})  # no stall
    assert _cli("run", m).returncode == 0
    assert api.status(m).counts["done"] == 1


def test_cancel_of_a_manifest_that_never_ran_has_nothing_to_cancel_exits_0_and_creates_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A cleanup step that always runs `gridrun cancel M` (a CI job's, a shell's `trap`) where the run never
    started: nothing at the provider to stop, said as "nothing in flight to cancel" is, exit 0; a manifest file
    that is not there is still an error (exit 2)."""
    from runner.cli import main

    m = write_manifest(tmp_path, n_seeds=1, styles=("anime",))
    assert main(["cancel", str(m)]) == 0
    got = capsys.readouterr()
    assert "no state yet (nothing has run here), so nothing to cancel" in got.out and "error" not in got.err, got
    assert not (tmp_path / ".gridrun").exists()
    assert main(["cancel", str(tmp_path / "nothere.yaml")]) == 2
    assert "nothere.yaml: no such file" in capsys.readouterr().err


def _left_rendering(tmp_path: Path, **knobs: Any) -> Path:
    """A manifest of one job that its run left rendering at the simulator kept in the state folder (the run
    stopped waiting at its timeout), where a later `cancel` finds it; `knobs` are more of the simulator's."""
    m = write_manifest(tmp_path, n_seeds=1, styles=("anime",), sim={"render_time": 30, "jitter": 0.0, **knobs})
    assert api.run(m, report=False, options=RunOptions(timeout=0.3)).status == "incomplete"
    assert in_flight(m) == 1
    return m


@pytest.mark.parametrize("why", ["held", "full"])
def test_a_cancel_that_cannot_write_the_state_says_which_requests_stand_and_cancel_again_records_them(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, why: str
) -> None:
    """The state cannot be written (another program holds state.db in a write transaction from the start: the
    request, recorded before it is sent, is not sent; the disk full once the request was sent, its outcome not
    written): no traceback of the requests' task group, but the file, what happened, the request that stands at
    the provider (or that none does), what to do and that `gridrun cancel` again records it (exit 1)."""
    from runner import state as state_mod
    from runner.cli import main

    monkeypatch.setattr(state_mod, "BUSY_TIMEOUT", 0.1)
    m = _left_rendering(tmp_path)
    db = tmp_path / ".gridrun" / "state.db"
    key = next(iter(_states(m)))
    capsys.readouterr()
    if why == "held":
        with contextlib.closing(sqlite3.connect(db, isolation_level=None, timeout=0)) as other:
            other.execute("BEGIN IMMEDIATE")
            assert main(["cancel", str(m)]) == 1
            other.execute("ROLLBACK")
        remedy = ("another process holds state.db in a write transaction, not a gridrun run (this gridrun holds the "
                  "runner lock): a sqlite3 shell or a database browser, say; close it (or end its transaction)")
    else:
        cancel_job = Store.cancel_job

        def disk_full(self: Store, *args: object, **kw: object) -> object:
            self.db = FullDisk(self.db)
            return cancel_job(self, *args, **kw)

        monkeypatch.setattr(Store, "cancel_job", disk_full)
        assert main(["cancel", str(m)]) == 1
        monkeypatch.setattr(Store, "cancel_job", cancel_job)
        remedy = "free space on its disk"
    out, err = capsys.readouterr()
    err = " ".join(err.split())
    assert "Traceback" not in err and "ExceptionGroup" not in err and out == "", err
    assert f"error: the state store {db} cannot be used: " in err, err
    if why == "held":
        assert f"; no cancel request was left unrecorded: {remedy}, then `gridrun cancel` again, which asks the " \
               "provider what became of the jobs still in flight and records that (as `gridrun run` does)" in err, err
        assert _world(m).stats()["cancelled"] == 0 and _states(m) == {key: "running"}
    else:
        assert f"; the cancel request sent for 1 job ({key}) stands at the provider, its outcome not recorded: " \
               f"{remedy}, then `gridrun cancel` again, which asks the provider what became of it and records that " \
               "(as `gridrun run` does)" in err, err
        assert _world(m).stats()["cancelled"] == 1 and _states(m) == {key: "running"}
    assert main(["cancel", str(m)]) == 0
    assert "cancelled 1 job at the provider" in capsys.readouterr().out
    assert _states(m) == {key: "cancelled"}


def test_a_cancel_whose_settling_of_the_ended_runs_cannot_be_written_records_nothing_and_cancel_again_settles_all(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The job's cancel is recorded with the figures of the run that left it in flight, in one transaction: the
    disk full at that run's settling, neither is written (the job still in flight, its request said to stand), so
    that no run keeps reserving a job recorded cancelled, and `gridrun cancel` again records both."""
    from runner.cli import main

    m = _left_rendering(tmp_path)
    key = next(iter(_states(m)))
    estimate = api.status(m).jobs[0].cost_estimate_micros
    assert [s.reserved_micros for s in api.runs(m)] == [estimate]
    settle_left = Store.settle_left

    def disk_full(self: Store, *args: object, **kw: object) -> object:
        self.db = FullDisk(self.db)
        return settle_left(self, *args, **kw)

    monkeypatch.setattr(Store, "settle_left", disk_full)
    capsys.readouterr()
    assert main(["cancel", str(m)]) == 1
    monkeypatch.setattr(Store, "settle_left", settle_left)
    err = " ".join(capsys.readouterr().err.split())
    assert f"the cancel request sent for 1 job ({key}) stands at the provider, its outcome not recorded" in err, err
    assert _states(m) == {key: "running"} and [s.reserved_micros for s in api.runs(m)] == [estimate]
    assert main(["cancel", str(m)]) == 0
    assert _states(m) == {key: "cancelled"} and [s.reserved_micros for s in api.runs(m)] == [0]


@pytest.mark.parametrize(("ended", "factor"), [("cancelled", 100), ("failed", 100), ("cancelled", 0)],
                         ids=["cancelled-in-cents", "failed-in-cents", "cancelled-free"])
def test_cancel_records_an_ended_renders_cost_as_the_run_does_the_counted_figure_beside_the_reported_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, ended: str, factor: int
) -> None:
    """The provider reports a cancelled or failed render's cost in cents (100x the estimate): `cancel` records the
    estimate as the job's cost, which spent and export sum, and the provider's figure as reported, flagged doubted
    (a failure's by event cost-doubted, as the run records it), not the figure as the job's cost. A cancelled
    render reported at $0 was not charged: its $0 counts, not doubted."""
    m = _left_rendering(tmp_path)
    estimate = api.status(m).jobs[0].cost_estimate_micros

    def in_cents(status: VideoStatus) -> VideoStatus:
        if ended == "failed":
            return dataclasses.replace(status, status="failed", error_code="UPSTREAM_ERROR",
                                       error_message="render failed", cost_micros=estimate * factor)
        return dataclasses.replace(status, cost_micros=estimate * factor)

    _reporting(monkeypatch, in_cents)
    result = api.cancel(m)
    assert (result.cancelled if ended == "cancelled" else list(result.failed)) == list(_states(m))
    counted, doubted = (estimate, True) if factor else (0, False)
    (job,) = api.status(m).jobs
    assert (job.state, job.cost_micros, job.cost_reported_micros, job.cost_doubted) == \
           (ended, counted, estimate * factor, doubted)
    (row,) = export_rows(api.status(m))
    assert (row["cost_usd"], row["cost_reported_usd"], row["cost_doubted"]) == \
           (counted / 1e6 or None, estimate * factor / 1e6, doubted)  # None: nothing charged
    with Store(tmp_path / ".gridrun" / "state.db", readonly=True) as store:
        events = [json.loads(r[0]) for r in store.db.execute("SELECT detail FROM events WHERE kind='cost-doubted'")]
    said = [{"reported_micros": estimate * factor, "estimate_micros": estimate}]
    assert events == (said if ended == "failed" else [])


def test_a_render_cancel_finds_finished_is_timed_by_the_providers_stamps_not_until_cancel_looked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The provider rendered the job in 3 s (its stamps); `cancel` looks a minute after it was sent: the job's
    render time is bounded by the provider's stamps, as a run records one it sees late, not timed until the
    moment `cancel` looked."""
    import functools

    m = _left_rendering(tmp_path)
    (job,) = api.status(m).jobs
    assert job.submitted_at is not None
    created = float(int(job.submitted_at))  # the provider's stamps: whole seconds

    def finished(client: httpx.AsyncClient, video_id: str, get: Any) -> Any:
        async def answer() -> VideoStatus:
            status = await get(client, video_id)
            return dataclasses.replace(status, status="completed", raw_status="completed", progress=100,
                                       url="http://127.0.0.1:9/v.mp4", created_at=created, completed_at=created + 3)
        return answer()

    provider = api._provider

    def build(p: object) -> object:
        prov = provider(p)
        prov.get = functools.partial(finished, get=prov.get)
        return prov

    monkeypatch.setattr(api, "_provider", build)
    monkeypatch.setattr(api, "Store", functools.partial(api.Store, clock=lambda: time.time() + 60))
    result = api.cancel(m)
    assert result.finished == [job.key] and result.cancelled == []
    monkeypatch.undo()
    (job,) = api.status(m).jobs
    assert job.state == "downloading"
    assert job.render_seconds == 4.0 and export_rows(api.status(m))[0]["render_seconds"] == 4.0


def _reporting(monkeypatch: pytest.MonkeyPatch, ended: object) -> None:
    """Commands from now on build a provider whose statuses pass through `ended(status)` once a render ended."""
    provider = api._provider

    def build(p: object) -> object:
        prov = provider(p)
        get = prov.get

        async def reported(client: httpx.AsyncClient, video_id: str) -> object:
            status = await get(client, video_id)
            return ended(status) if status.terminal else status

        prov.get = reported
        return prov

    monkeypatch.setattr(api, "_provider", build)


@pytest.mark.parametrize(("who", "charge", "factor"), [("run", 0.5, 1), ("run", 1.0, 100), ("run", 0.0, 1),
                                                        ("cancel", 0.5, 1), ("run", 0.1, 100), ("cancel", 0.1, 100)],
                         ids=["run-charged", "run-in-cents", "run-free", "cancel-charged", "run-partial-in-cents",
                              "cancel-partial-in-cents"])
def test_a_cancelled_renders_cost_is_recorded_and_spent_alike_whether_the_run_or_cancel_finds_it(
    tmp_path: Path, who: str, charge: float, factor: int
) -> None:
    """The simulator charged for a render cancelled while rendering (`cancel_charge`: half the estimate; all of
    it, reported in cents by `cost_factor`, doubted, for which the estimate counts; $0, nothing; a tenth of it in
    cents, 10x the estimate, doubted too, not taken for a bill in dollars): the run that finds it cancelled records
    on the job what it counted and what was reported, as `gridrun cancel` does, and `status`, the export's cost
    and spent say what the run spent."""
    knobs = {"cancel_charge": charge, "cost_factor": factor}
    m = _left_rendering(tmp_path, **knobs)
    (job,) = api.status(m).jobs
    estimate = job.cost_estimate_micros
    reported = round(estimate * charge * factor)
    if who == "run":
        world = _world(m, SimConfig(**knobs))  # cancelled by another client, under the manifest's knobs
        world.cancel(str(job.provider_id))
        world.world.close()
        result = api.run(m, report=False, options=RunOptions(poll_interval=0.1))
        assert result.status == "failed", result.status  # not cancelled by `gridrun cancel`: not finished
    else:
        assert api.cancel(m).cancelled == [job.key]
    counted, doubted = (estimate, True) if factor > 5 else (reported, False)
    snap = api.status(m)
    (job,) = snap.jobs
    assert (job.state, job.cost_micros, job.cost_reported_micros, job.cost_doubted) == \
           ("cancelled", counted, reported, doubted)
    assert snap.spent_micros == snap.manifest_spent_micros == counted
    if who == "run":
        assert result.stats.spent_micros == counted
    (row,) = export_rows(snap)
    assert (row["cost_usd"], row["cost_reported_usd"], row["cost_doubted"]) == \
           (counted / 1e6 or None, reported / 1e6, doubted)
    assert summary(snap)["spent_usd"] == counted / 1e6
    assert snap.billed_above_note() is None and summary(snap)["cost_billed_above"] is None


def _page_text(path: Path) -> str:
    import re

    return " ".join(re.sub(r"<[^>]+>", " ", path.read_text(encoding="utf-8")).split())


def test_gridrun_cancel_writes_again_the_report_of_the_run_whose_figures_it_changed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The run's report, written while its job was in flight, showed it reserved and nothing paid: `cancel`
    records the cancel's charge and writes that report again, saying where; a run without a report gets none."""
    from runner.cli import main

    monkeypatch.chdir(tmp_path)
    m = _left_rendering(tmp_path, cancel_charge=0.5)
    page = api.report(m)
    assert "this run spent (simulated) $0.00" in _page_text(page)  # sent to the simulator
    capsys.readouterr()
    assert main(["cancel", str(m)]) == 0
    said = capsys.readouterr().out
    assert "report of run 1 written again with what the cancel recorded: outputs/t/report.html" in said, said
    text = _page_text(page)
    assert "this run spent (simulated) $0.175" in text and "reserved by this run (in flight, or of unknown outcome that it sent) $0.00" in text, text

    other = tmp_path / "other"
    other.mkdir()
    m = _left_rendering(other, cancel_charge=0.5)
    assert main(["cancel", str(m)]) == 0
    assert "written again" not in capsys.readouterr().out
    assert not (api.status(m).run.outputs_dir and (Path(api.status(m).run.outputs_dir) / "report.html").exists())


def test_gridrun_cancel_of_an_earlier_runs_job_writes_again_the_latest_report_whose_all_runs_line_counted_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Run 1 left its job rendering; run 2 of the edited manifest (--leave-in-flight) wrote report.html over run
    1's, its "all runs" line counting run 1's reserve. `cancel` stops run 1's job and writes run 2's report again:
    that line no longer shows the reserve the cancel freed."""
    from runner.cli import main

    monkeypatch.chdir(tmp_path)
    m = _left_rendering(tmp_path)
    m.write_text(m.read_text().replace("anime", "clay").replace("render_time: 30", "render_time: 0.2"))
    second = api.run(m, options=RunOptions(leave_in_flight=True, poll_interval=0.1))
    assert second.status == "done", second.status
    page = second.report
    assert page is not None and page.name == "report.html"
    assert "all runs of t: spent / reserved $0.35 / $0.35" in _page_text(page), _page_text(page)
    capsys.readouterr()
    assert main(["cancel", str(m)]) == 0
    said = capsys.readouterr().out
    assert "report of run 2 written again with what the cancel recorded: outputs/t/report.html" in said, said
    assert "report of run 1" not in said  # its own page was written over by run 2's: none is written for it
    assert "all runs of t" not in _page_text(page), _page_text(page)


def test_a_report_that_cannot_be_written_again_after_a_cancel_is_a_warning(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import importlib

    from runner.cli import main

    report_mod = importlib.import_module("runner.report")
    m = _left_rendering(tmp_path, cancel_charge=0.5)
    api.report(m)

    def full(*args: Any, **kwargs: Any) -> Path:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(report_mod, "write_report", full)
    capsys.readouterr()
    assert main(["cancel", str(m)]) == 0
    out, err = capsys.readouterr()
    assert "cancelled 1 job at the provider" in out
    assert ("warning: the report of run 1 could not be written again ([Errno 28] No space left on device): it still "
            f"shows the jobs as before the cancel; `gridrun report {m} --run 1` writes it") in " ".join(err.split()), err
    assert [j.state for j in api.status(m).jobs] == ["cancelled"]


def test_gridrun_cancel_of_a_render_the_simulator_charges_for_shows_its_charge_in_status_export_and_spent(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The simulator charges 40 % of the price of a render cancelled while rendering (`cancel_charge`; Lumenfall
    promises no refund): `gridrun cancel` records that as the job's cost, reported and counted, not doubted, and
    `status`, the export's rows and summary and spent say it, as does what the simulator's account owes."""
    from runner.cli import main

    m = _left_rendering(tmp_path, cancel_charge=0.4)
    (job,) = api.status(m).jobs
    charged = round(job.cost_estimate_micros * 0.4)
    assert 0 < charged < job.cost_estimate_micros
    capsys.readouterr()
    assert main(["cancel", str(m)]) == 0
    assert "cancelled 1 job at the provider" in capsys.readouterr().out
    main(["status", str(m)])
    status = " ".join(capsys.readouterr().out.split())
    assert f"spent ${charged / 1e6:,.2f}," in status, status
    assert main(["export", str(m), "--format", "jsonl", "--format", "json"]) == 0
    rows_path, doc_path = (Path.cwd() / line for line in capsys.readouterr().out.split())
    (row,) = [json.loads(line) for line in rows_path.read_text().splitlines()]
    assert (row["state"], row["cost_usd"], row["cost_reported_usd"], row["cost_doubted"]) == \
           ("cancelled", charged / 1e6, charged / 1e6, False)
    assert json.loads(doc_path.read_text())["summary"]["spent_usd"] == charged / 1e6
    snap = api.status(m)
    assert snap.spent_micros == snap.manifest_spent_micros == charged
    assert _world(m).stats()["billed_micros"] == charged


def test_cancel_cancels_the_queued_jobs_before_the_rendering_ones_so_that_only_those_rendering_are_charged(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The simulator renders two at once and charges the whole price of a render cancelled while rendering; one
    cancelled while queued is free. Four jobs left in flight (two rendering, two queued behind them): `gridrun
    cancel` cancels the queued ones first, so that cancelling a render frees no slot for a queued job to start
    rendering in and be charged as a render. It costs what cancelling the two rendering ones alone costs."""
    from runner.cli import main

    m = write_manifest(tmp_path, n_seeds=4, styles=("anime",), run={"concurrency": 4},
                       sim={"render_time": 60, "jitter": 0.0, "concurrency": 2, "cancel_charge": 1.0})
    assert api.run(m, report=False, options=RunOptions(timeout=0.3)).status == "incomplete"
    assert in_flight(m) == 4
    now = time.time()
    assert sorted(v.status(now).value for v in _world(m).videos.values()) == ["in_progress"] * 2 + ["queued"] * 2
    price = api.status(m).jobs[0].cost_estimate_micros
    capsys.readouterr()
    assert main(["cancel", str(m)]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert (f"cancelled 4 jobs at the provider (billed ${2 * price / 1e6:,.2f} for 2 jobs whose renders were cut "
            "short, as the provider reported; 2 free)") in out, out
    assert _world(m).stats()["billed_micros"] == 2 * price
    assert api.status(m).spent_micros == 2 * price


def test_cancel_of_re_renders_says_what_the_cut_renders_were_billed_not_the_earlier_takes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Two done jobs re-rendered (--force), one rendering and one queued when cancelled: the jobs are done as before,
    their earlier takes' costs kept on them; cancel's line says what the provider billed for the cancels (one
    render, the queued one free), not the earlier takes' prices."""
    import yaml

    from runner.cli import main

    m = write_manifest(tmp_path, n_seeds=2, styles=("anime",), run={"concurrency": 2},
                       sim={"render_time": 0.05, "jitter": 0.0, "concurrency": 2, "cancel_charge": 1.0})
    assert api.run(m, report=False).exit_code == 0
    price = api.status(m).jobs[0].cost_estimate_micros
    doc = yaml.safe_load(m.read_text())
    doc["sim"].update({"render_time": 60, "concurrency": 1})
    m.write_text(yaml.safe_dump(doc))
    assert api.run(m, report=False, options=RunOptions(timeout=0.3, force=True)).status == "incomplete"
    before = _world(m).stats()["billed_micros"]
    capsys.readouterr()
    assert main(["cancel", str(m)]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert _world(m).stats()["billed_micros"] - before == price
    assert (f"cancelled 2 jobs at the provider (billed ${price / 1e6:,.2f} for 1 job whose render was cut short, "
            "as the provider reported; 1 free)") in out, out


def test_cancel_while_a_run_holds_the_state_says_how_to_stop_it_first(tmp_path: Path) -> None:
    from runner.errors import LockError
    from runner.state import Store

    m = write_manifest(tmp_path, n_seeds=1, styles=("anime",))
    api.run(m, report=False)
    holder = Store(tmp_path / ".gridrun" / "state.db")
    holder.acquire_lock()
    try:
        with pytest.raises(LockError) as refused:
            api.cancel(m)
        # what stops the run so that its jobs can be cancelled; not a state of its own, which would cancel nothing
        text = str(refused.value)
        assert text.endswith(": stop it, then cancel (a second Ctrl-C in its terminal ends it with its jobs left in "
                             "flight)"), text
        assert "state_dir" not in text, text
    finally:
        holder.release_lock()
        holder.close()


def test_cancel_of_a_manifest_that_never_ran_while_another_manifests_run_holds_the_state_has_nothing_to_cancel(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Manifests of one folder share its state and its lock: `cancel` of one that never ran, while another's run
    holds the lock, says there is nothing to cancel (exit 0), not to stop that run first."""
    from runner.cli import main
    from runner.errors import LockError
    from runner.state import Store

    a = write_manifest(tmp_path, n_seeds=1, styles=("anime",), name="alpha")
    b = write_manifest(tmp_path, n_seeds=1, styles=("anime",), name="beta")
    api.run(a, report=False)
    holder = Store(tmp_path / ".gridrun" / "state.db")
    holder.acquire_lock(manifest=a, name="alpha")
    holder.start_run(manifest_name="alpha", manifest_path=str(a), manifest_copy="",
                     outputs_dir=str(tmp_path / "outputs" / "alpha"), provider="sim", model="pixverse-v5.6",
                     axes=(), budget_micros=None)
    try:
        assert main(["cancel", str(b)]) == 0
        got = capsys.readouterr()
        said = " ".join(got.out.split())
        assert "no run recorded for beta, so nothing to cancel" in said, got
        assert "stop it" not in said + got.err, got
        with pytest.raises(LockError, match="stop it, then cancel"):  # alpha's own cancel still waits for it
            api.cancel(a)
    finally:
        holder.close()


def test_cancel_of_a_name_with_no_run_names_another_manifests_jobs_in_flight_in_the_state(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A manifest's `name:` changed while its jobs render (or another manifest file of the folder given): no run of
    the new name, but jobs in flight in the state, billed. `cancel` does not say "nothing to cancel" and exit 0 (a
    cleanup step would pass while they render): it names the manifest whose jobs they are, exit 2; that manifest's
    cancel cancels them."""
    from runner.cli import main

    a = write_manifest(tmp_path, n_seeds=2, styles=("anime",), name="alpha", run={"concurrency": 2},
                       sim={"render_time": 60.0, "jitter": 0.0, "concurrency": 2})
    assert main(["run", "--no-report", "--timeout", "1", str(a)]) != 0
    renamed = tmp_path / "renamed.yaml"
    renamed.write_text(a.read_text().replace("name: alpha", "name: beta"))
    assert "name: beta" in renamed.read_text()
    capsys.readouterr()
    assert main(["cancel", str(renamed)]) == 2
    got = capsys.readouterr()
    said = " ".join(got.err.split())
    assert "no run recorded for beta, but this state holds jobs in flight of other manifests: alpha (2 jobs)" in said
    assert "nothing to cancel" not in got.out + said, got
    assert main(["cancel", str(a)]) == 0
    assert api.status(a).counts["cancelled"] == 2
    capsys.readouterr()
    assert main(["cancel", str(renamed)]) == 0  # nothing in flight any more: nothing to cancel
    assert "no run recorded for beta, so nothing to cancel" in capsys.readouterr().out


def _hold_for(tmp_path: Path, manifest: Path, name: str) -> Any:
    """The state's runner lock held, as a run of `manifest` holds it, by a store of this process (closed by the
    caller)."""
    holder = Store(tmp_path / ".gridrun" / "state.db")
    holder.acquire_lock(manifest=manifest, name=name)
    holder.start_run(manifest_name=name, manifest_path=str(manifest), manifest_copy="",
                     outputs_dir=str(tmp_path / "outputs" / name), provider="sim", model="pixverse-v5.6",
                     axes=(), budget_micros=None)
    return holder


def test_cancel_of_a_manifest_with_nothing_in_flight_while_another_manifests_run_holds_the_state(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Manifests of one folder share its state and its lock: `cancel` of one whose jobs are all done, while
    another's run holds the lock, says there is nothing in flight to cancel (exit 0), not to stop that run."""
    from runner.cli import main

    a = write_manifest(tmp_path, n_seeds=1, styles=("anime",), name="alpha")
    b = write_manifest(tmp_path, n_seeds=2, styles=("clay",), name="beta")
    api.run(a, report=False)
    api.run(b, report=False)
    capsys.readouterr()
    holder = _hold_for(tmp_path, a, "alpha")
    try:
        code = main(["cancel", str(b)])
        out, err = capsys.readouterr()
        assert code == 0 and out.strip() == "nothing in flight to cancel", (code, out, err)
        assert "stop it" not in err, err
    finally:
        holder.close()


def test_cancel_while_another_manifests_run_holds_the_state_says_why_it_waits(tmp_path: Path) -> None:
    """A manifest with jobs in flight of its own, while another manifest's run holds the shared state: the cancel
    waits for that run because one runner at a time writes the state, which the refusal says, rather than only
    telling to stop an unrelated run; a run following some of them (the same requests) is said to."""
    from runner.errors import LockError

    a = write_manifest(tmp_path, n_seeds=1, styles=("comic",), name="alpha")
    b = write_manifest(tmp_path, n_seeds=2, styles=("clay",), name="beta",
                       sim={"render_time": 60, "jitter": 0.0})
    api.run(a, report=False)
    assert api.run(b, report=False, options=RunOptions(timeout=0.3)).status == "incomplete"
    assert in_flight(b) == 2
    holder = _hold_for(tmp_path, a, "alpha")
    try:
        with pytest.raises(LockError) as refused:
            api.cancel(b)
        text = " ".join(str(refused.value).split())
        assert "alpha.yaml, a manifest that shares this state; " in text, text
        assert "one runner at a time writes this state, cancel too: wait for that run to end, then cancel" in text
        assert "follows" not in text, text
    finally:
        holder.close()
    # the same requests sent by beta, and a run of gamma (planning them too) holding the lock: it follows them
    c = write_manifest(tmp_path, n_seeds=2, styles=("clay",), name="gamma")
    holder = _hold_for(tmp_path, c, "gamma")
    try:
        with Store(tmp_path / ".gridrun" / "state.db") as store:
            run_id = store.latest_run("gamma").id
            rows = store.in_flight_rows("beta", ("submitted", "running"))
            with store.db:
                store.db.executemany("INSERT INTO run_jobs (run_id, job_id, key, position) VALUES (?, ?, ?, ?)",
                                     [(run_id, r["id"], r["key"], n) for n, r in enumerate(rows)])
        with pytest.raises(LockError) as refused:
            api.cancel(b)
        text = " ".join(str(refused.value).split())
        assert "that run follows 2 of this manifest's jobs in flight (requests the two manifests share)" in text, text
    finally:
        holder.close()
    # delta plans beta's requests in flight, which no run of delta has: they are beta's to cancel
    d = write_manifest(tmp_path, n_seeds=1, styles=("comic",), name="delta")
    api.run(d, report=False)
    d = write_manifest(tmp_path, n_seeds=2, styles=("comic", "clay"), name="delta")
    holder = _hold_for(tmp_path, b, "beta")
    try:
        with Store(tmp_path / ".gridrun" / "state.db") as store:
            run_id = store.latest_run("beta").id
            rows = store.in_flight_rows("beta", ("submitted", "running"))
            with store.db:
                store.db.executemany("INSERT INTO run_jobs (run_id, job_id, key, position) VALUES (?, ?, ?, ?)",
                                     [(run_id, r["id"], r["key"], n) for n, r in enumerate(rows)])
        with pytest.raises(LockError) as refused:
            api.cancel(d)
        text = " ".join(str(refused.value).split())
        assert "this manifest has no job in flight of its own; 2 of the requests it plans are in flight in that run " \
               "only, sent for that manifest: they are its to cancel (`gridrun cancel " in text, text
    finally:
        holder.close()


def test_status_with_no_manifest_names_the_file_of_the_run_its_next_line_proposes_to_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """`gridrun status` with no manifest shows the latest run of any manifest of the state, named by its `name:`:
    the commands it proposes name that run's manifest file (relative, quoted for the shell), and, once the file is
    gone, how to put it back as the run had it first."""
    from runner.cli import main

    written = write_manifest(tmp_path, n_seeds=2, styles=("clay",), name="x", sim={"render_time": 60, "jitter": 0.0})
    m = written.rename(tmp_path / "my grid.yaml")
    write_manifest(tmp_path, n_seeds=1, styles=("anime",), name="y")  # another manifest of the folder
    assert api.run(m, report=False, options=RunOptions(timeout=0.3)).status == "incomplete"
    assert in_flight(m) == 2
    monkeypatch.chdir(tmp_path)
    capsys.readouterr()
    assert main(["status"]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "next: `gridrun run 'my grid.yaml'` collects the 2 jobs left in flight at no new cost" in out, out
    from runner.cli import _of_file  # each command of any advice line, its options after the file

    assert _of_file("`gridrun run --force` tries again; `gridrun retry --unknown` sends; `gridrun status` shows",
                    api.status(m)) == ("`gridrun run 'my grid.yaml' --force` tries again; `gridrun retry 'my grid.yaml' "
                                       "--unknown` sends; `gridrun status` shows")
    m.unlink()
    assert main(["status"]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert ("next: 'my grid.yaml' is no longer there: put it back as run 1 had it first (`cp "
            "outputs/x/.runs/run-1.yaml 'my grid.yaml'`), then `gridrun run 'my grid.yaml'` collects the 2 jobs left "
            "in flight at no new cost") in out, out
    assert main(["status", "my grid.yaml"]) == 0  # the file given: said as before
    out = " ".join(capsys.readouterr().out.split())
    assert "next: `gridrun run` collects the 2 jobs left in flight at no new cost" in out, out


def test_ctrl_c_during_the_final_report_leaves_the_report_not_the_runs_outcome(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The run has ended and is recorded done: exit 0, with a warning that the report was not written."""
    import importlib

    from runner.cli import main

    report = importlib.import_module("runner.report")
    real = report.write_report

    def interrupted(store, *, posters: bool = True, **kw):  # type: ignore[no-untyped-def]
        if posters:  # the final build
            raise KeyboardInterrupt
        return real(store, posters=posters, **kw)

    monkeypatch.setattr(report, "write_report", interrupted)
    m = write_manifest(tmp_path, n_seeds=1, styles=("anime",))
    assert main(["run", str(m)]) == 0
    assert "warning: report not written: interrupted" in capsys.readouterr().err
    assert api.status(m).run.status == "done"


@pytest.mark.parametrize("when", ["during it", "before it"])
def test_a_ctrl_c_that_costs_the_final_report_leaves_the_live_page_told_out_of_date(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], when: str
) -> None:
    """The run wrote its live page, then a Ctrl-C cost its final page (while it was built, or in the last progress
    call before it): the page there still shows the run going on. Its stamp tells a tab open on it that it is out
    of date, and the run's warning and `status` name it with what writes it."""
    import importlib

    from runner.cli import main
    from runner.outputs import stamp_ended

    report_module = importlib.import_module("runner.report")
    real = report_module.write_report
    m = write_manifest(tmp_path, n_seeds=1, styles=("anime",), sim={"render_time": 2.0, "jitter": 0.0})
    monkeypatch.chdir(tmp_path)
    page = tmp_path / "outputs" / "t" / "report.html"

    def interrupted(store, *, posters: bool = True, **kw):  # type: ignore[no-untyped-def]
        if posters:  # the final build
            assert '"live":true' in page.read_text()
            raise KeyboardInterrupt
        return real(store, posters=posters, **kw)

    if when == "during it":
        monkeypatch.setattr(report_module, "write_report", interrupted)
    else:
        from runner import executor

        real_end = executor.Executor._end

        def end(self: Any, *args: Any, **kw: Any) -> tuple[str, bool]:
            status, _ = real_end(self, *args, **kw)
            assert '"live":true' in page.read_text()
            return status, True  # as a Ctrl-C in the last progress call leaves it

        monkeypatch.setattr(executor.Executor, "_end", end)
    assert main(["run", m.name]) == 0
    err = " ".join(capsys.readouterr().err.split())
    said = ("outputs/t/report.html is out of date (run 1 ended; a page open on it says so): `gridrun report t.yaml` "
            "writes it")
    assert f"warning: report not written: interrupted; {said}" in err, err
    assert '"live":true' in page.read_text()
    assert stamp_ended(page) == {"run": 1, "full": False, "interrupted": True,
                                 "text": "This page is out of date: run 1 ended; `gridrun report t.yaml` writes it."}
    assert main(["status", m.name]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert f"warning: {said}" in out, out
    monkeypatch.undo()
    monkeypatch.chdir(tmp_path)
    assert main(["report", m.name]) == 0 and stamp_ended(page) is None


def _detached_force_run(tmp_path: Path, *, in_world: bool = False) -> tuple[Path, RunResult, RunResult]:
    """Six jobs done, then a --force run of them detached (Ctrl-C twice) once its first three re-renders are in
    flight: (the manifest, the first run's result, the forced run's). `in_world`: the simulator is the one kept
    in the state folder, which a later command (`cancel`, a run) finds again."""
    m = write_manifest(tmp_path, n_seeds=6, styles=("anime",), run={"concurrency": 3},
                       sim={"render_time": 0.1, "jitter": 0.0, "concurrency": 6})
    provider = (lambda: None) if in_world else (lambda: sim_provider(m))
    first = api.run(m, provider=provider(), report=False)
    assert first.exit_code == 0
    m.write_text(m.read_text().replace("render_time: 0.1", "render_time: 20"))

    def ctrl_c_twice() -> None:  # once its first three re-renders are in flight, as `_interrupt` does
        wait_for(lambda: in_flight(m) >= 3)
        for _ in range(2):
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.3)

    pressing = threading.Thread(target=ctrl_c_twice, daemon=True)
    pressing.start()
    forced = api.run(m, provider=provider(), report=False, options=RunOptions(force=True, handle_signals=True))
    pressing.join()
    return m, first, forced


@pytest.mark.timeout(120)
def test_a_force_run_detached_before_sending_every_job_counts_the_others_as_they_were(tmp_path: Path) -> None:
    """Ctrl-C twice while a --force run's first re-renders are in flight: the jobs it never sent are done, as the
    state has them, in the run's own figures too (not planned)."""
    m, _, forced = _detached_force_run(tmp_path)
    assert forced.exit_code == 130
    in_flight = forced.stats.counts["submitted"] + forced.stats.counts["running"]
    assert in_flight == 3 and forced.stats.counts["done"] == 3 and forced.stats.counts["planned"] == 0, forced.stats
    assert dict(run_statistics(api.status(m)).counts) == dict(forced.stats.counts)


@pytest.mark.timeout(120)
def test_jobs_a_detached_force_run_never_sent_are_cached_from_the_run_that_made_them(tmp_path: Path) -> None:
    """... and cached from the first run, whose videos they are: in the run's own figures, in `status` and in the
    export, which credits the run with none of them (nor with their cost)."""
    m, first, forced = _detached_force_run(tmp_path)
    assert forced.exit_code == 130 and forced.stats.cached == 3, forced.stats
    snap = api.status(m)
    assert run_statistics(snap).cached == 3
    rows = export_rows(snap)
    assert sorted(r["cached_from_run"] for r in rows if r["state"] == "done") == [first.run_id] * 3
    assert all(r["cached_from_run"] is None for r in rows if r["state"] != "done")
    assert all(r["cost_reported_usd"] is None for r in rows if r["state"] != "done")  # not the first run's
    totals = summary(snap)
    assert totals["cached"] == 3 and totals["done_estimate_usd"] == totals["done_cost_usd"] == 0


@pytest.mark.timeout(120)
def test_re_renders_whose_reset_an_early_gridrun_recorded_without_the_path_are_collected(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A --force run's re-renders left in flight, whose resets a gridrun of schemas 1-3 recorded without the video's
    path (the job's own path then): the next run collects them (it ended in KeyError 'output_path', the state
    upgraded, every later run too, the paid renders never fetched), and the earlier run's report and export read."""
    from runner.cli import main

    m, first, forced = _detached_force_run(tmp_path, in_world=True)
    assert forced.exit_code == 130
    db = tmp_path / ".gridrun" / "state.db"
    with contextlib.closing(sqlite3.connect(db)) as c:
        for event_id, detail in c.execute("SELECT id, detail FROM events WHERE kind='reset'").fetchall():
            told = json.loads(detail)
            told["was"].pop("output_path", None)
            c.execute("UPDATE events SET detail=? WHERE id=?", (json.dumps(told), event_id))
        c.commit()
    m.write_text(m.read_text().replace("render_time: 20", "render_time: 0.1"))
    capsys.readouterr()
    assert main(["export", str(m), "--run", str(first.run_id), "--format", "csv"]) == 0
    assert main(["report", str(m), "--run", str(first.run_id)]) == 0
    assert "Traceback" not in capsys.readouterr().err
    assert main(["run", str(m), "--no-report"]) == 0, capsys.readouterr().err
    snap = api.status(m)
    assert [j.state for j in snap.jobs] == ["done"] * 6
    check_outputs(m)


# What `cancel`, the run's end and `status` say of three re-renders of done jobs cancelled at the provider.
_KEPT = ("3 re-renders of done jobs (--force, retry) cancelled at the provider: the earlier videos kept, the jobs "
         "done as before")


def _world(m: Path, config: SimConfig | None = None) -> Sim:
    """The simulator kept in the manifest's state folder, as a later process finds it (with its knobs `config`)."""
    return Sim(config or SimConfig(), clock=time.time, world=World.open(m.parent / ".gridrun" / SIM_WORLD))


def _rerenders_in_flight(m: Path) -> dict[str, tuple[str, str]]:
    """The jobs of a detached --force run whose re-render is in flight: key -> (provider id, the SHA-256 of the
    earlier video, as its sidecar, written when it was downloaded, names it)."""
    flying = [j for j in api.status(m).jobs if j.state in ("submitted", "running")]
    assert len(flying) == 3, [j.state for j in api.status(m).jobs]
    return {j.key: (str(j.provider_id), json.loads(Path(j.output_path).with_suffix(".json").read_text())["sha256"])
            for j in flying}


def _as_before(m: Path, first: RunResult, rerenders: dict[str, tuple[str, str]], *, fetched_again: str = "") -> None:
    """Each re-rendered job is done with its earlier video (on disk, its SHA-256 recorded), made (but for the job
    `fetched_again`, fetched since at no cost) and paid in the first run; its cancelled attempt is kept, after the
    one that made the video."""
    snap = api.status(m)
    assert snap.counts["done"] == 6 and snap.counts["cancelled"] == 0, snap.counts
    jobs = {j.key: j for j in snap.jobs}
    rows = {r["key"]: r for r in export_rows(snap)}
    with Store(m.parent / ".gridrun" / "state.db", readonly=True) as store:
        for key, (_, sha) in rerenders.items():
            job = jobs[key]
            assert job.sha256 == sha == sha256(Path(job.output_path)), key
            assert store.job_row(job.id)["done_run_id"] == first.run_id or key == fetched_again, key
            assert [a["state"] for a in store.attempts(job.id)] == ["done", "cancelled"], key
            row = rows[key]
            assert row["state"] == "done" and row["sha256"] == sha and row["paid_in_run"] == first.run_id, row
    check_outputs(m)


@pytest.mark.timeout(120)
def test_a_force_re_render_cancelled_on_request_leaves_the_done_job_as_it_was(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`gridrun cancel` of a --force run's re-renders of done jobs: each job is done again with its earlier, paid
    video (not cancelled, which only a paid retry would mend); the next run finds it done and sends nothing."""
    from runner.cli import main

    m, first, forced = _detached_force_run(tmp_path, in_world=True)
    assert forced.exit_code == 130
    rerenders = _rerenders_in_flight(m)
    capsys.readouterr()
    assert main(["cancel", str(m)]) == 0
    said = " ".join(capsys.readouterr().out.split())
    assert "cancelled 3 jobs at the provider" in said and _KEPT in said, said
    _as_before(m, first, rerenders)
    assert main(["status", str(m)]) == 0
    said = " ".join(capsys.readouterr().out.split())
    assert _KEPT in said and "cancelled 3" not in said, said
    creates = _world(m).stats()["creates"]
    assert main(["run", str(m), "--no-report"]) == 0
    err = " ".join(capsys.readouterr().err.split())
    assert "cancelled" not in err and "retry" not in err, err
    assert _world(m).stats()["creates"] == creates  # nothing sent again
    assert api.status(m).run.status == "done"
    _as_before(m, first, rerenders)
    # one of those videos lost: fetched again at no cost, which moves the attempt that made it, not the cancelled one
    lost = next(j for j in api.status(m).jobs if j.key in rerenders)
    Path(lost.output_path).unlink()
    assert main(["run", str(m), "--no-report"]) == 0, capsys.readouterr().err
    assert _world(m).stats()["creates"] == creates and api.status(m).spent_micros == 0
    _as_before(m, first, rerenders, fetched_again=lost.key)


@pytest.mark.timeout(120)
def test_a_force_run_whose_re_renders_were_cancelled_made_no_video(tmp_path: Path) -> None:
    """A --force run detached with three re-renders in flight, which `gridrun cancel` cancels: the jobs are done
    with the first run's videos, so the forced run's summary (results.json, its report header) and its line of
    `status --runs` count no video, cost or render time as its own; the first run's stay as they were."""
    from runner.cli import main

    m, first, forced = _detached_force_run(tmp_path, in_world=True)
    assert forced.exit_code == 130
    _rerenders_in_flight(m)
    assert main(["cancel", str(m)]) == 0
    assert api.status(m).counts["done"] == 6
    fields = ("done_estimate_usd", "done_cost_usd", "done_unreported", "render_seconds_total", "render_seconds_median")
    with Store(m.parent / ".gridrun" / "state.db", readonly=True) as store:
        mine = summary(store.snapshot(forced.run_id))
        theirs = summary(store.snapshot(first.run_id))
    assert {f: mine[f] for f in fields} == {"done_estimate_usd": 0.0, "done_cost_usd": 0.0, "done_unreported": 0,
                                            "render_seconds_total": 0.0, "render_seconds_median": None}, mine
    assert theirs["done_cost_usd"] == theirs["cost_usd"] > 0 and theirs["render_seconds_total"] > 0
    rows = {r["run"]: r for r in api.runs_json(api.runs(m))}
    assert (rows[forced.run_id]["done"], rows[forced.run_id]["made"]) == (6, 0), rows[forced.run_id]
    assert (rows[first.run_id]["done"], rows[first.run_id]["made"]) == (6, 6), rows[first.run_id]


def _header_chips(html: str) -> dict[str, int]:
    """The report header's counts of done jobs, label -> number ("cached", "made earlier")."""
    import re

    return {label: int(n.replace(",", "")) for n, label in
            re.findall(r'<span class="chip cached[^"]*"[^>]*><b>([\d,]+)</b> ([^<]+)</span>', html)}


@pytest.mark.timeout(120)
def test_the_report_of_a_force_run_whose_re_renders_were_cancelled_counts_them_as_status_runs_does(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A --force run detached with three re-renders in flight, which `gridrun cancel` cancels (the jobs put back
    done by `cancel`, not by the run): its report header says what its line of `status --runs` does, "6 made
    earlier", parted into the 3 kept and the 3 it never sent ("not re-rendered"), and no estimate is left to pay for
    them."""
    import re

    from runner.cli import main

    m, _, forced = _detached_force_run(tmp_path, in_world=True)
    assert forced.exit_code == 130
    _rerenders_in_flight(m)
    assert main(["cancel", str(m)]) == 0
    line = next(s for s in api.runs(m) if s.run.id == forced.run_id)  # its line of `status --runs`
    assert (line.done, line.cached, line.made_earlier) == (6, 0, 6), line
    html = api.report(m).read_text()
    assert _header_chips(html) == {"made earlier": 3, "not re-rendered (the run stopped first)": 3}, \
        _header_chips(html)
    assert re.search(r"estimate of the jobs neither cached nor made earlier</dt><dd>\$0\.00<", html)


# What the report says of each of those jobs, in its card, its details and the table read without JavaScript.
_KEPT_ONE = "re-render (--force, retry) cancelled at the provider: the earlier video kept, the job done as before"


def _page_items(html: str) -> dict[str, dict[str, Any]]:
    import re

    found = re.search(r'<script type="application/json" id="gridrun-data">(.*?)</script>', html, re.DOTALL)
    assert found, "no data block"
    return {it["key"]: it for it in json.loads(found.group(1))["items"]}


@pytest.mark.timeout(120)
def test_the_report_says_which_re_renders_cancel_cancelled_as_status_does_also_once_later_runs_ran(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A --force run detached with three re-renders in flight, which `gridrun cancel` cancels: its report says so
    in its header in the words of `status`, and marks each of those jobs (its card and details: why the earlier
    take shows and no new one), the others not; so does the run's report made after a later run
    (`report --run N`), though the jobs' latest run is another."""
    from runner.cli import main

    m, first, forced = _detached_force_run(tmp_path, in_world=True)
    assert forced.exit_code == 130
    rerenders = _rerenders_in_flight(m)
    assert main(["cancel", str(m)]) == 0
    page = api.report(m)
    folder, latest = page.parent, page.read_text()
    assert main(["run", str(m), "--no-report"]) == 0  # a later run: every job found done
    assert main(["report", str(m), "--run", str(forced.run_id)]) == 0
    assert main(["report", str(m), "--run", str(first.run_id)]) == 0
    capsys.readouterr()
    earlier = (folder / f"report-run-{forced.run_id}.html").read_text()
    for html in (latest, earlier):
        assert f'<p class="rerenders-cancelled">{_KEPT}</p>' in html
        items = _page_items(html)
        assert {k for k, it in items.items() if it["jobs"][0].get("rcan")} == set(rerenders), items
        assert html.count(f"; {_KEPT_ONE}") == 3  # the table read without JavaScript
    first_page = (folder / f"report-run-{first.run_id}.html").read_text()
    assert '<p class="rerenders-cancelled">' not in first_page
    assert all("rcan" not in it["jobs"][0] for it in _page_items(first_page).values())


@pytest.mark.timeout(120)
def test_a_force_re_render_a_run_finds_cancelled_at_the_provider_leaves_the_done_job_as_it_was(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The re-renders cancelled at the provider by other means (its dashboard): the run that follows them finds
    them cancelled, puts each job back as it was, ends done and says so in one line."""
    from runner.cli import main

    m, first, forced = _detached_force_run(tmp_path, in_world=True)
    assert forced.exit_code == 130
    rerenders = _rerenders_in_flight(m)
    world = _world(m)
    for video, _ in rerenders.values():
        world.cancel(video)
    creates = world.stats()["creates"]
    world.world.close()
    capsys.readouterr()
    assert main(["run", str(m), "--no-report"]) == 0
    err = " ".join(capsys.readouterr().err.split())
    assert _KEPT in err and "done, but for" not in err and "retry` sends" not in err, err
    assert _world(m).stats()["creates"] == creates  # nothing sent again
    snap = api.status(m)
    assert snap.run.status == "done" and run_statistics(snap).cached == 6, snap.run.status
    assert _KEPT in " ".join(_cli("status", m).stdout.split())
    _as_before(m, first, rerenders)


@pytest.mark.timeout(120)
def test_cancel_meeting_force_re_renders_the_provider_failed_leaves_the_done_jobs_as_the_run_would(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`gridrun cancel` finds a --force run's re-renders of done jobs failed at the provider: each job whose
    earlier video is whole at its path is done as it was (event rerun-failed), as the run following them would
    leave it, not failed; the one whose video is gone is failed. `cancel` and `status` say so."""
    from runner.cli import main

    m, first, forced = _detached_force_run(tmp_path, in_world=True)
    assert forced.exit_code == 130
    rerenders = _rerenders_in_flight(m)
    jobs = {j.key: j for j in api.status(m).jobs}
    gone, *kept = sorted(rerenders)
    Path(jobs[gone].output_path).unlink()
    _reporting(monkeypatch, lambda status: dataclasses.replace(
        status, status="failed", error_code="UPSTREAM_ERROR", error_message="render failed"))
    capsys.readouterr()
    assert main(["cancel", str(m)]) == 0
    said = " ".join(capsys.readouterr().out.split())
    assert f"{gone}: had failed already (UPSTREAM_ERROR: render failed)" in said, said
    assert "2 re-renders of done jobs (--force) failed: the earlier videos kept, the jobs done as before" in said, said
    snap = api.status(m)
    states = {j.key: j.state for j in snap.jobs}
    assert states[gone] == "failed" and all(states[k] == "done" for k in kept), states
    assert sorted(k for k, _ in snap.rerenders_failed) == kept, snap.rerenders_failed
    with Store(m.parent / ".gridrun" / "state.db", readonly=True) as store:
        for key in kept:
            job = next(j for j in snap.jobs if j.key == key)
            assert job.sha256 == rerenders[key][1] == sha256(Path(job.output_path)), key
            assert store.job_row(job.id)["done_run_id"] == first.run_id, key
            assert [a["state"] for a in store.attempts(job.id)] == ["done", "failed"], key
    check_outputs(m)


# `python -m runner.cli`, and the console script's import of `runner.entry`
_MODULE = ("-m", "runner.cli")
_SCRIPT = ("-c", "import sys; from runner.entry import entry; sys.exit(entry())")
# seconds after the start: at once (held by the kernel till gridrun takes it), then into the imports, the
# planning, the opening of the state and, on a fast machine, the run itself
_DELAYS = (0.0, 0.05, 0.15, 0.3, 0.6)


def _start_held(cmd: list[str], cwd: Path) -> subprocess.Popen[str]:
    """Start `cmd` with Ctrl-C and SIGTERM held by the kernel until gridrun takes them (a child inherits the
    blocked signals), so that one sent before the interpreter runs gridrun's first line waits for it, whatever
    the machine's load."""
    held = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
    try:
        return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=cwd)
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, held)


@pytest.mark.timeout(180)
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_a_signal_at_any_moment_of_the_start_ends_the_run_as_interrupted(tmp_path: Path, signum: int) -> None:
    """Ctrl-C or SIGTERM from the first moment gridrun runs (its imports, planning, the opening of its state, the
    run): "interrupted", exit 130, no traceback, no run left recorded as running; the next run pays each job once.
    Each delay has a state of its own, so that no run finds the jobs of another done."""
    # renders of 1 s: a job a run sent before its signal (0.6 s after its start at the latest) is still in flight
    with running_server(SimConfig(render_time=1.0, jitter=0.0, concurrency=8), process=True) as url:
        manifests = []
        for i, delay in enumerate(_DELAYS):
            folder = tmp_path / f"at-{i}"
            folder.mkdir()
            m = write_manifest(folder, run={"concurrency": 2}, base_url=url, sim={},  # two jobs, none another's
                               extra={"matrix": {"style": ["anime"], "seed": [10 * i + 1, 10 * i + 2]}})
            manifests.append(m)
            proc = _start_held([sys.executable, *(_SCRIPT if i % 2 else _MODULE), "run", str(m)], folder)
            err = _signalled(proc, signum, lambda: time.sleep(delay), timeout=60)
            assert proc.returncode == 130, (delay, proc.returncode, err)
            assert "Traceback" not in err and "interrupted" in err, (delay, err)
            try:
                run = api.status(m).run
            except NotRecordedError:  # stopped before it recorded a run
                continue
            assert run.status == "interrupted" and run.ended_at is not None, (delay, run)
        after = [subprocess.Popen([sys.executable, "-m", "runner.cli", "run", str(m), "--no-report"],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=m.parent)
                 for m in manifests]
        for proc in after:
            _, err = proc.communicate(timeout=90)
            assert proc.returncode == 0, err
        stats = _stats(url)
        assert stats["creates"] == 2 * len(_DELAYS) and stats["duplicate_paid"] == 0, stats
        assert all(api.status(m).counts["done"] == 2 for m in manifests)


_SIGNAL_AS_THE_RUN_TAKES_SIGNALS = """
import contextlib, signal, sys
import runner.signals as signals

real = signals.taken
where = sys.argv.pop(1)


@contextlib.contextmanager
def taken(wanted):
    # Ctrl-C the moment the run puts its own signal handling in place: just before, or just after
    if where == "before":
        signal.raise_signal(signal.SIGINT)
    with real(wanted) as received:
        if where == "after":
            signal.raise_signal(signal.SIGINT)
        yield received
    if where.startswith("given-back-"):  # a signal the moment the run has given them back
        signal.raise_signal(getattr(signal, where.removeprefix("given-back-")))


signals.taken = taken
"""

_RUN_THE_COMMAND = """
from runner.entry import entry
sys.exit(entry())
"""

# The loops a run may go on (`GRIDRUN_LOOP`): each hands the run its signals its own way (`runner.signals.taken`).
LOOPS = pytest.mark.parametrize("loop", ["uvloop", "asyncio"])


def _on(loop: str) -> dict[str, str]:
    if loop == "uvloop":
        pytest.importorskip("uvloop")
    return {**os.environ, "GRIDRUN_LOOP": loop}


@pytest.mark.timeout(120)
@LOOPS
@pytest.mark.parametrize("where", ["before", "after"])
def test_a_ctrl_c_as_the_run_takes_over_the_signals_ends_it_interrupted_with_no_traceback(
    tmp_path: Path, where: str, loop: str
) -> None:
    """Ctrl-C landing as the run puts its own signal handling in place: the run ends interrupted, exit 130, with
    no traceback (raised in one of the run's tasks, the KeyboardInterrupt left the event loop, which printed the
    task group's error and tasks never started); the next run pays each job once."""
    m = _two_jobs(tmp_path)
    out = subprocess.run([sys.executable, "-c", _SIGNAL_AS_THE_RUN_TAKES_SIGNALS + _RUN_THE_COMMAND, where, "run",
                          str(m)], capture_output=True, text=True, cwd=tmp_path, timeout=90, check=False, env=_on(loop))
    assert out.returncode == 130, (out.returncode, out.stderr)
    assert "interrupted" in out.stderr, out.stderr
    assert "Traceback" not in out.stderr and "never awaited" not in out.stderr, out.stderr
    run = api.status(m).run
    assert run.status == "interrupted" and run.ended_at is not None, run
    again = subprocess.run([sys.executable, "-m", "runner.cli", "run", str(m), "--no-report"], capture_output=True,
                           text=True, cwd=tmp_path, timeout=90, check=False)
    assert again.returncode == 0, again.stderr
    assert api.status(m).counts["done"] == 2 and _world(m).stats()["creates"] == 2


_SIGNAL_AT = """
import asyncio, functools, importlib, inspect, signal, sys

# argv: MODULE:QUALNAME before|after SIGNAL TIMES [gridrun's words]: SIGNAL raised once (TIMES: that many calls)
# just before or just after the named function's call; for asyncio's `remove_signal_handler`, of that signal only
spec, when, name, times = sys.argv[1:5]
del sys.argv[1:5]
which, left = getattr(signal, name), [int(times)]
module, qual = spec.split(":")
owner = importlib.import_module(module)
*path, attr = qual.split(".")
for part in path:
    owner = getattr(owner, part)
real = getattr(owner, attr)


def fire(args):
    if left[0] and (attr != "remove_signal_handler" or args[1] == which):
        left[0] -= 1
        signal.raise_signal(which)


if inspect.iscoroutinefunction(real):
    async def hooked(*args, **kwargs):
        if when == "before":
            fire(args)
        out = await real(*args, **kwargs)
        if when == "after":
            fire(args)
            await asyncio.sleep(0.2)  # the event loop's turn, which takes the signal where its handling is the loop's
        return out
else:
    def hooked(*args, **kwargs):
        if when == "before":
            fire(args)
        out = real(*args, **kwargs)
        if when == "after":
            fire(args)
        return out
setattr(owner, attr, functools.wraps(real)(hooked))
from runner.entry import entry
sys.exit(entry())
"""


def _signal_at(where: str, when: str, signum: str, *words: str, cwd: Path, times: int = 1,
               env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", _SIGNAL_AT, where, when, signum, str(times), *words],
                          capture_output=True, text=True, cwd=cwd, timeout=90, check=False, env=env)


def _two_jobs(tmp_path: Path, render_time: float = 0.3) -> Path:
    return write_manifest(tmp_path, n_seeds=2, styles=("anime",), run={"concurrency": 2},
                          sim={"render_time": render_time, "jitter": 0.0})


# Where each loop would set a signal to its default as the run gives it back
REMOVED = {"asyncio": "asyncio.unix_events:_UnixSelectorEventLoop.remove_signal_handler",
           "uvloop": "uvloop:Loop.remove_signal_handler"}


@pytest.mark.timeout(120)
@LOOPS
@pytest.mark.parametrize("signum", ["SIGTERM", "SIGHUP"])
def test_a_signal_as_the_run_gives_its_signals_back_does_not_kill_the_command(
    tmp_path: Path, signum: str, loop: str
) -> None:
    """SIGTERM or a hangup landing as the run gives the signals back (leaving asyncio's handling sets each to its
    default, which kills): the command is not killed (143, 129) with its last lines unsaid; the run, its end
    recorded by then, ends with its own code."""
    m = _two_jobs(tmp_path)
    out = _signal_at(REMOVED[loop], "after", signum, "run", str(m), cwd=tmp_path, env=_on(loop))
    assert out.returncode == 0, (out.returncode, out.stderr)
    assert "Traceback" not in out.stderr and "videos:" in out.stdout, (out.stdout, out.stderr)
    run = api.status(m).run
    assert run.status == "done" and run.ended_at is not None, run
    assert api.status(m).counts["done"] == 2


@pytest.mark.timeout(120)
@LOOPS
@pytest.mark.parametrize("signum", ["SIGTERM", "SIGHUP"])
def test_a_signal_the_moment_the_run_has_given_its_signals_back_does_not_kill_the_command(
    tmp_path: Path, signum: str, loop: str
) -> None:
    """SIGTERM or a hangup landing just after the run put back the handlers it found (on uvloop, a handler of its
    own is swapped for the one found, with no moment at the default): the command is not killed (143, 129); the
    run, its end recorded by then, ends with its own code."""
    m = _two_jobs(tmp_path)
    out = subprocess.run([sys.executable, "-c", _SIGNAL_AS_THE_RUN_TAKES_SIGNALS + _RUN_THE_COMMAND,
                          f"given-back-{signum}", "run", str(m)],
                         capture_output=True, text=True, cwd=tmp_path, timeout=90, check=False, env=_on(loop))
    assert out.returncode == 0, (out.returncode, out.stderr)
    assert "Traceback" not in out.stderr and "videos:" in out.stdout, (out.stdout, out.stderr)
    run = api.status(m).run
    assert run.status == "done" and run.ended_at is not None, run
    assert api.status(m).counts["done"] == 2


_TWO_CTRL_CS_WHILE_HELD = """
import asyncio, contextlib, os, subprocess, sys
import runner.signals as signals

real = signals.taken


def held():
    # Ctrl-C twice, 150 ms apart, from another process, while the loop's thread is held in one call that runs no
    # bytecode (as in an fsync or a database commit on a slow disk): the interpreter runs a handler once for both
    subprocess.Popen(["sh", "-c", f"sleep 0.1; kill -INT {os.getpid()}; sleep 0.15; kill -INT {os.getpid()}"])
    sum(range(3 * 10**8))


@contextlib.contextmanager
def taken(wanted):
    with real(wanted) as received:
        asyncio.get_running_loop().call_later(1.0, held)
        yield received


signals.taken = taken
"""


@pytest.mark.timeout(120)
@LOOPS
def test_two_ctrl_cs_while_the_run_is_held_in_one_call_are_two(tmp_path: Path, loop: str) -> None:
    """Ctrl-C pressed twice while the run's thread is held in a long call: the second leaves the jobs in flight and
    ends the run at once, as when they come apart, instead of being taken for the first (finishing renders of 60 s)."""
    m = write_manifest(tmp_path, n_seeds=6, styles=("anime",), run={"concurrency": 3},
                       sim={"render_time": 60.0, "jitter": 0.0, "concurrency": 3})
    out = subprocess.run([sys.executable, "-c", _TWO_CTRL_CS_WHILE_HELD + _RUN_THE_COMMAND, "run", str(m)],
                         capture_output=True, text=True, cwd=tmp_path, timeout=100, check=False, env=_on(loop))
    assert out.returncode == 130, (out.returncode, out.stderr)
    said = " ".join(out.stderr.split())
    assert "collects the 3 jobs left in flight at no new cost" in said, said
    assert in_flight(m) == 3 and api.status(m).counts.get("done", 0) == 0


@pytest.mark.timeout(120)
@LOOPS
def test_a_signal_let_go_by_a_connection_before_the_run_takes_the_signals_still_stops_it(tmp_path: Path,
                                                                                         loop: str) -> None:
    """SIGTERM landing in a connection's callback once its response is read, before the run's own signal handling is
    in place (the run's first requests): on uvloop, the KeyboardInterrupt the command's handler raises there closes
    that connection and goes no further. The run stops all the same, interrupted (exit 130), not on to its end with
    every job paid; the next run pays each job once."""
    with running_server(SimConfig(render_time=1.0, jitter=0.0, concurrency=8), process=True) as url:
        m = write_manifest(tmp_path, n_seeds=2, styles=("anime",), run={"concurrency": 2}, base_url=url, sim={})
        out = _signal_at("aiohttp.client_proto:ResponseHandler.data_received", "after", "SIGTERM", "run", str(m),
                         cwd=tmp_path, env=_on(loop))
        assert out.returncode == 130, (out.returncode, out.stderr)
        assert "interrupted" in out.stderr and "Traceback" not in out.stderr, out.stderr
        with contextlib.suppress(NotRecordedError):  # stopped before it recorded a run
            snap = api.status(m)
            assert snap.run.status == "interrupted" and snap.run.ended_at is not None, snap.run
            assert snap.counts.get("done", 0) == 0, snap.counts
        again = subprocess.run([sys.executable, "-m", "runner.cli", "run", str(m), "--no-report"],
                               capture_output=True, text=True, cwd=tmp_path, timeout=90, check=False)
        assert again.returncode == 0, again.stderr
        assert api.status(m).counts["done"] == 2
        stats = _stats(url)
        assert stats["creates"] == 2 and stats["duplicate_paid"] == 0, stats


_SIGNAL_AS_A_CREATE_IS_RECORDED = """
import asyncio, signal, sys
from runner.pacing import IntentBatcher

real = IntentBatcher.reserve
when, which = sys.argv.pop(1), getattr(signal, sys.argv.pop(1))
left = [1]


async def reserve(self, job_id):
    # the signal once, as the first job is shown submitting: before its attempt is recorded, or once it is (its
    # create not sent yet); each job then waits a moment, in which the run takes the signal
    if when == "before" and left[0]:
        left[0] = 0
        signal.raise_signal(which)
        await asyncio.sleep(0.2)
    key = await real(self, job_id)
    if when == "after" and left[0]:
        left[0] = 0
        signal.raise_signal(which)
    await asyncio.sleep(0.2)
    return key


IntentBatcher.reserve = reserve
"""


@pytest.mark.timeout(120)
@LOOPS
@pytest.mark.parametrize("when", ["before", "after"])
@pytest.mark.parametrize("signum", ["SIGTERM", "SIGINT"])
def test_a_signal_before_any_create_left_calls_the_jobs_not_sent_and_leaves_them_planned(
        tmp_path: Path, when: str, signum: str, loop: str) -> None:
    """A signal as the run's first jobs are shown submitting, their creates not sent (an attempt being recorded,
    or recorded): the run's note and its closing lines call them not sent, as the state holds them (planned, not
    sent whose answer never came); the next run sends each once."""
    m = _two_jobs(tmp_path)
    out = subprocess.run([sys.executable, "-c", _SIGNAL_AS_A_CREATE_IS_RECORDED + _RUN_THE_COMMAND, when, signum,
                          "run", str(m)], capture_output=True, text=True, cwd=tmp_path, timeout=90, check=False,
                         env=_on(loop))
    assert out.returncode == 130, (out.returncode, out.stderr)
    said = " ".join(out.stderr.split())
    assert "Traceback" not in said and "answer never came" not in said and "left the" not in said, said
    assert "nothing paid is in flight" in said and "`gridrun run` sends the 2 jobs not sent" in said, said
    assert api.status(m).counts["planned"] == 2 and _world(m).stats()["creates"] == 0
    status = _cli("status", m)
    assert "sends the 2 jobs not sent" in status.stdout, status.stdout
    again = subprocess.run([sys.executable, "-m", "runner.cli", "run", str(m), "--no-report"], capture_output=True,
                           text=True, cwd=tmp_path, timeout=90, check=False)
    assert again.returncode == 0, again.stderr
    assert api.status(m).counts["done"] == 2
    assert _world(m).stats()["creates"] == 2 and _world(m).stats()["duplicate_paid"] == 0


_SIGNAL_AS_A_CREATE_IS_REFUSED = """
import signal, sys
from runner.errors import ConnectError, OutcomeUnknownError, RateLimitedError
from runner.providers.lumenfall import LumenfallProvider

real = LumenfallProvider.submit
first, which = sys.argv.pop(1), getattr(signal, sys.argv.pop(1))
sends = [0]


async def submit(self, client, body):
    # the job's first send: refused (the simulator's 429), not connected (nothing sent), or its answer lost (nothing
    # sent either, which the run cannot know); the signal as a send is refused or not connected, the run then waiting
    # to send it again
    sends[0] += 1
    if sends[0] == 1 and first == "connect":
        signal.raise_signal(which)
        raise ConnectError("POST /videos: could not connect (Connection refused); the request was not sent")
    if sends[0] == 1 and first == "lost":
        raise OutcomeUnknownError("POST /videos: the connection was reset before an answer came")
    try:
        return await real(self, client, body)
    except RateLimitedError:
        signal.raise_signal(which)
        raise


LumenfallProvider.submit = submit
"""


def _one_job_refused_first(tmp_path: Path, refused: bool = True) -> Path:
    """A manifest of one job whose first create the simulator answers 429, asking to wait a day (every create of the
    run waits the longest pause meanwhile); with `refused` False, the same manifest, its simulator taking every create
    (its knobs are no part of the job's request)."""
    script = [{"route": "create", "nth": [1], "fault": "rate_limited", "retry_after": 86400,
               "retry_style": "seconds"}] if refused else []
    return write_manifest(tmp_path, n_seeds=1, styles=("anime",), sim={"render_time": 0.3, "jitter": 0.0,
                                                                     "script": script})


@pytest.mark.timeout(120)
@LOOPS
@pytest.mark.parametrize("first", ["429", "connect"])
@pytest.mark.parametrize("signum", ["SIGTERM", "SIGINT"])
def test_a_signal_while_a_refused_or_unconnected_create_waits_to_be_sent_again_calls_it_not_sent(
        tmp_path: Path, first: str, signum: str, loop: str) -> None:
    """A job whose only create was refused with a 429, or whose connection never opened, then a signal as it waits
    to send it again: nothing of it reached the provider as a create it could take. The signal's note does not count
    it among those sent whose answer never came, and the run plans it again, not sent (not left submitting for the
    next run to look up by its key), on either loop, for Ctrl-C (which finishes the jobs in flight) as for SIGTERM
    (which leaves them); the next run pays for it once."""
    m = _one_job_refused_first(tmp_path)
    said = _signalled_as_refused(tmp_path, m, first, signum, loop)
    assert "Traceback" not in said and "answer never came" not in said and "left the" not in said, said
    assert "nothing paid is in flight" in said and "`gridrun run` sends the 1 job not sent" in said, said
    held = "the provider was refusing creates (429)" if first == "429" else "its create could not reach the provider"
    assert held in said, said
    assert api.status(m).counts["planned"] == 1 and _world(m).stats()["creates"] == 0
    _paid_once_by_the_next_run(tmp_path, m, loop)


def _signalled_as_refused(tmp_path: Path, m: Path, first: str, signum: str, loop: str) -> str:
    """What the run of `m` said (on one line) whose first create met `first` and that got `signum` as it waited to
    send it again (`_SIGNAL_AS_A_CREATE_IS_REFUSED`); it ended interrupted (exit 130)."""
    out = subprocess.run([sys.executable, "-c", _SIGNAL_AS_A_CREATE_IS_REFUSED + _RUN_THE_COMMAND, first, signum,
                          "run", str(m), "--no-report"], capture_output=True, text=True, cwd=tmp_path, timeout=90,
                         check=False, env=_on(loop))
    assert out.returncode == 130, (out.returncode, out.stderr)
    return " ".join(out.stderr.split())


def _paid_once_by_the_next_run(tmp_path: Path, m: Path, loop: str) -> None:
    """The next run of `m`, its creates taken, finishes its one job, which the simulator made once."""
    _one_job_refused_first(tmp_path, refused=False)
    again = subprocess.run([sys.executable, "-m", "runner.cli", "run", str(m), "--no-report"], capture_output=True,
                           text=True, cwd=tmp_path, timeout=90, check=False, env=_on(loop))
    assert again.returncode == 0, again.stderr
    assert api.status(m).counts["done"] == 1
    assert _world(m).stats()["creates"] == 1 and _world(m).stats()["duplicate_paid"] == 0


@pytest.mark.timeout(120)
@LOOPS
@pytest.mark.parametrize("signum", ["SIGTERM", "SIGINT"])
def test_a_signal_while_a_create_refused_after_a_lost_one_waits_leaves_the_job_to_be_looked_up_by_key(
        tmp_path: Path, signum: str, loop: str) -> None:
    """A job whose first create's answer was lost (it may have been taken, and a video be made) and whose next one,
    sent with the same key, was refused with a 429, then a signal as it waits to send it again: the 429 says nothing
    of the first send, so the job is one sent whose answer never came, left submitting for the next run to look up
    by its key, never planned again (a new attempt would pay twice were the first taken); the next run pays for it
    once."""
    m = _one_job_refused_first(tmp_path)
    said = _signalled_as_refused(tmp_path, m, "lost", signum, loop)
    assert "Traceback" not in said and "1 sent whose answer never came" in said, said
    assert "nothing paid is in flight" not in said and "job not sent" not in said, said
    assert api.status(m).counts["submitting"] == 1 and _world(m).stats()["creates"] == 0
    _paid_once_by_the_next_run(tmp_path, m, loop)


_SIGNAL_AS_A_5XX_IS_LOOKED_UP = """
import signal, sys
from runner.errors import OutcomeUnknownError, ServerError
from runner.providers.lumenfall import LumenfallProvider

real_submit, real_find = LumenfallProvider.submit, LumenfallProvider.find_by_key
first, which = sys.argv.pop(1), getattr(signal, sys.argv.pop(1))
sends, answered = [0], [None]


async def submit(self, client, body):
    # with first "lost", the job's first send has its answer lost (nothing sent, which the run cannot know); the next
    # is the simulator's 5xx
    sends[0] += 1
    if sends[0] == 1 and first == "lost":
        raise OutcomeUnknownError("POST /videos: the connection was reset before an answer came")
    try:
        return await real_submit(self, client, body)
    except ServerError as exc:
        answered[0] = exc
        raise


async def find_by_key(self, client, key, **kw):
    # the signal once the request log, read after the 5xx, has no video for the key
    found = await real_find(self, client, key, **kw)
    if answered[0] is not None and found is None:
        answered[0] = None
        signal.raise_signal(which)
    return found


LumenfallProvider.submit = submit
LumenfallProvider.find_by_key = find_by_key
"""


def _one_job_failed_first(tmp_path: Path) -> Path:
    """A manifest of one job whose first create the simulator answers HTTP 502, making nothing (the same job as
    `_one_job_refused_first`'s)."""
    return write_manifest(tmp_path, n_seeds=1, styles=("anime",), run={"retries": 20}, sim={
        "render_time": 0.3, "jitter": 0.0, "script": [{"route": "create", "nth": [1], "fault": "server_error",
                                                         "status": 502}]})


@pytest.mark.timeout(120)
@LOOPS
@pytest.mark.parametrize("signum", ["SIGTERM", "SIGINT"])
def test_a_signal_while_a_create_answered_5xx_and_not_in_the_log_waits_calls_it_not_sent(
        tmp_path: Path, signum: str, loop: str) -> None:
    """A job whose only create was answered HTTP 502, the provider's request log then read having no video for its
    key, and a signal as it waits to send it again: nothing was made. The signal's note does not count it among
    those sent whose answer never came (nothing paid is in flight), and the run plans it again, not sent, for
    Ctrl-C as for SIGTERM; the next run pays for it once."""
    m = _one_job_failed_first(tmp_path)
    out = subprocess.run([sys.executable, "-c", _SIGNAL_AS_A_5XX_IS_LOOKED_UP + _RUN_THE_COMMAND, "5xx", signum,
                          "run", str(m), "--no-report"], capture_output=True, text=True, cwd=tmp_path, timeout=90,
                         check=False, env=_on(loop))
    assert out.returncode == 130, (out.returncode, out.stderr)
    said = " ".join(out.stderr.split())
    assert "Traceback" not in said and "answer never came" not in said and "left the" not in said, said
    assert "nothing paid is in flight" in said and "`gridrun run` sends the 1 job not sent" in said, said
    assert "answered HTTP 502 and the provider's request log has no video for it" in said, said
    assert api.status(m).counts["planned"] == 1 and _world(m).stats()["creates"] == 0
    _paid_once_by_the_next_run(tmp_path, m, loop)


@pytest.mark.timeout(120)
@LOOPS
def test_a_detach_while_a_create_answered_5xx_after_a_lost_one_waits_leaves_it_to_be_looked_up_by_key(
        tmp_path: Path, loop: str) -> None:
    """A job whose first create's answer was lost (it may have been taken, and still be on its way) and whose next,
    sent with the same key, was answered HTTP 502, the log then having no video for the key, and a SIGTERM as it
    waits to send it again: the 502 and the log's miss say nothing sure of the first send, so the signal's note
    counts it as sent whose answer never came, never as not sent; the next run pays for it once."""
    m = _one_job_failed_first(tmp_path)
    out = subprocess.run([sys.executable, "-c", _SIGNAL_AS_A_5XX_IS_LOOKED_UP + _RUN_THE_COMMAND, "lost", "SIGTERM",
                          "run", str(m), "--no-report"], capture_output=True, text=True, cwd=tmp_path, timeout=90,
                         check=False, env=_on(loop))
    assert out.returncode == 130, (out.returncode, out.stderr)
    said = " ".join(out.stderr.split())
    assert "Traceback" not in said and "1 sent whose answer never came" in said, said
    assert "nothing paid is in flight" not in said, said
    _paid_once_by_the_next_run(tmp_path, m, loop)


@pytest.mark.timeout(120)
@LOOPS
def test_a_signal_that_code_let_go_before_the_run_takes_the_signals_still_stops_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, loop: str) -> None:
    """SIGTERM raised as KeyboardInterrupt by the command's handler in code that lets it go (a bare `except`, here in
    the provider's preparation, before the run's own signal handling is in place): the run, on either loop, stops
    all the same, interrupted with nothing done; the next run pays each job once."""
    from runner import entry

    monkeypatch.setenv("GRIDRUN_LOOP", _on(loop)["GRIDRUN_LOOP"])
    m = _two_jobs(tmp_path)
    prov = sim_provider(m)
    real = type(prov).prepare

    async def prepare(self: Any, client: Any) -> None:
        try:
            signal.raise_signal(signal.SIGTERM)
        except KeyboardInterrupt:
            pass
        await real(self, client)

    monkeypatch.setattr(type(prov), "prepare", prepare)
    monkeypatch.setattr(entry, "_command", True)  # as in the `gridrun` command, whose handler `interrupt` is
    monkeypatch.setattr(entry, "_held", False)  # and as the command's end (`hold`) leaves it, put back after
    before = signal.getsignal(signal.SIGTERM)
    signal.signal(signal.SIGTERM, entry.interrupt)
    try:
        result = api.run(m, provider=prov, report=False, options={"handle_signals": True})
    finally:
        signal.signal(signal.SIGTERM, before)
        entry.unheeded()
    assert result.exit_code == 130 and result.status == "interrupted", result
    assert api.status(m).counts.get("done", 0) == 0
    monkeypatch.setattr(type(prov), "prepare", real)
    monkeypatch.setattr(entry, "_command", False)
    assert api.run(m, provider=prov, report=False).exit_code == 0
    assert api.status(m).counts["done"] == 2
    assert stats(prov)["creates"] == 2 and stats(prov)["duplicate_paid"] == 0, stats(prov)


@pytest.mark.timeout(120)
@LOOPS
def test_a_ctrl_c_again_as_an_interrupted_run_records_its_end_leaves_it_recorded_interrupted(
        tmp_path: Path, loop: str) -> None:
    """A further Ctrl-C (pressed again and again) while an interrupted run records its end rolls that write back:
    it is written again, so the run is recorded interrupted, not left running (shown gone)."""
    m = _two_jobs(tmp_path)
    # the first: as the run takes the signals, before its own handling is in place (it raises KeyboardInterrupt,
    # which ends the run); the next, in the end's record
    out = subprocess.run([sys.executable, "-c", _SIGNAL_AS_THE_RUN_TAKES_SIGNALS + _SIGNAL_AT, "before",
                          "runner.state:Store.end_run", "before", "SIGINT", "1", "run", str(m)],
                         capture_output=True, text=True, cwd=tmp_path, timeout=90, check=False, env=_on(loop))
    assert out.returncode == 130, (out.returncode, out.stderr)
    assert "Traceback" not in out.stderr, out.stderr
    run = api.status(m).run
    assert run.status == "interrupted" and run.ended_at is not None, run


@pytest.mark.timeout(120)
def test_ctrl_c_pressed_again_after_a_detach_cuts_neither_the_runs_end_nor_what_the_command_says_of_it(
    tmp_path: Path
) -> None:
    """Ctrl-C pressed again and again: after the second (the detach), one as the run puts back what it did not send,
    one as it records its end, one as the command says what the run left: the run is recorded interrupted and the
    command still says which paid jobs are left in flight and what to run next, not a bare "interrupted"."""
    m = _two_jobs(tmp_path, render_time=30)
    hook = """
import signal
from runner import cli
from runner.executor import Executor
from runner.state import Store

def again(owner, name):
    real = getattr(owner, name)
    def hooked(*args, **kwargs):
        signal.raise_signal(signal.SIGINT)
        return real(*args, **kwargs)
    setattr(owner, name, hooked)

real_follow, real_put = Executor._follow, Executor._put_back_unsent
async def follow(self, *args, **kwargs):
    if not self.detached and self.stopping is None:
        signal.raise_signal(signal.SIGINT)  # the first Ctrl-C, once a job is paid for
        signal.raise_signal(signal.SIGINT)  # the second: the detach
    return await real_follow(self, *args, **kwargs)
async def put(self):
    signal.raise_signal(signal.SIGINT)
    return await real_put(self)
Executor._follow, Executor._put_back_unsent = follow, put
again(Store, "end_run")
again(cli, "_say_end")
from runner.entry import entry
entry()
"""
    out = subprocess.run([sys.executable, "-c", hook, "run", str(m)], capture_output=True, text=True, cwd=tmp_path,
                         timeout=90, check=False)
    assert out.returncode == 130, (out.returncode, out.stderr)
    assert "Traceback" not in out.stderr, out.stderr
    # the jobs it left are queued at the provider, not yet seen rendering: counted apart from paid ones
    assert "not yet seen rendering (paid only once they render): `gridrun cancel` now stops those still queued at " \
           "no charge; `gridrun run` collects" in out.stderr, out.stderr
    assert "videos:" in out.stdout, out.stdout
    run = api.status(m).run
    assert run.status == "interrupted" and run.ended_at is not None, run


_FINAL_REPORT_SIGNALLED = """
import importlib, signal, sys
report = importlib.import_module("runner.report")
real = report.write_report
def hooked(store, *, posters=True, **kwargs):
    if posters:  # the final report's build
        signal.raise_signal(signal.SIGINT)
    return real(store, posters=posters, **kwargs)
report.write_report = hooked
from runner.entry import entry
sys.exit(entry())
"""


@pytest.mark.timeout(120)
@pytest.mark.parametrize("when", ["recorded", "final report"])
def test_a_ctrl_c_once_a_runs_end_is_recorded_costs_at_most_the_report_not_the_outcome(
    tmp_path: Path, when: str
) -> None:
    """Ctrl-C the moment after the run's outcome ("done") is committed: the command ends with that outcome's code,
    the run's end taken as it was; during the final report, it costs the report, said so; neither says
    "interrupted" of a run its state records done."""
    m = _two_jobs(tmp_path)
    if when == "recorded":
        out = _signal_at("runner.state:Store.end_run", "after", "SIGINT", "run", str(m), "--json", cwd=tmp_path)
    else:
        out = subprocess.run([sys.executable, "-c", _FINAL_REPORT_SIGNALLED, "run", str(m), "--json"],
                             capture_output=True, text=True, cwd=tmp_path, timeout=90, check=False)
    assert out.returncode == 0, (out.returncode, out.stderr)
    assert "Traceback" not in out.stderr, out.stderr
    assert ("report not written: interrupted" in out.stderr) == (when == "final report"), out.stderr
    end = json.loads(out.stdout.splitlines()[-1])
    assert (end["event"], end["status"], end["exit_code"]) == ("end", "done", 0), end
    assert (end["report"] is None) == (when == "final report"), end
    assert api.status(m).run.status == "done"


@pytest.mark.parametrize("signum", ["SIGINT", "SIGTERM"])
def test_a_signal_just_after_the_command_returned_leaves_with_its_code(tmp_path: Path, signum: str) -> None:
    """A signal landing after the command's work returned, before the exit's own handling is in place: the command
    leaves with its code at once, no traceback."""
    out = _signal_at("runner.entry:_handled", "after", signum, "validate", str(_two_jobs(tmp_path)), cwd=tmp_path,
                     times=1)
    assert out.returncode == 0, (out.returncode, out.stderr)
    assert "Traceback" not in out.stderr and "valid" in out.stdout, (out.stdout, out.stderr)


@pytest.mark.timeout(120)
def test_a_ctrl_c_during_cancels_requests_ends_it_interrupted_with_no_traceback(tmp_path: Path) -> None:
    """Ctrl-C landing in one of `gridrun cancel`'s requests: it ends interrupted (130) saying what to run, with no
    traceback (raised in a request's task, asyncio let it out of the event loop and printed the group's error)."""
    m = _two_jobs(tmp_path, render_time=60)
    left = subprocess.run([sys.executable, "-m", "runner.cli", "run", str(m), "--no-report", "--timeout", "0.5"],
                          capture_output=True, text=True, cwd=tmp_path, timeout=90, check=False)
    assert left.returncode == 4, left.stderr
    out = _signal_at("runner.providers.lumenfall:LumenfallProvider.cancel", "after", "SIGINT", "cancel", str(m), cwd=tmp_path)
    assert out.returncode == 130, (out.returncode, out.stderr)
    assert "Traceback" not in out.stderr and "unhandled" not in out.stderr, out.stderr
    assert "`gridrun cancel" in out.stderr and "again records what they did" in out.stderr, out.stderr


@pytest.mark.timeout(180)
@pytest.mark.parametrize(("where", "when", "said", "cancelled"), [
    ("runner.api:_cancel_in_flight", "before",
     ("interrupted before any cancel request was sent; nothing changed at the provider: `gridrun cancel t.yaml` again "
      "cancels the jobs in flight"), 0),
    ("runner.api:_rewrite_reports", "before",
     ("interrupted: the 2 cancel requests sent are recorded with what they did; `gridrun cancel t.yaml` again cancels "
      "the rest"), 2),
], ids=["none-sent", "all-recorded"])
def test_an_interrupted_cancel_says_what_its_requests_did_at_the_provider(
    tmp_path: Path, where: str, when: str, said: str, cancelled: int
) -> None:
    """SIGTERM to `gridrun cancel` before it sent any cancel request (still loading or looking) says so, and that
    nothing changed at the provider; once the requests it sent are recorded with their outcome, it says that, not
    that requests may have stopped jobs unrecorded. The provider's count of cancelled videos agrees."""
    m = _two_jobs(tmp_path, render_time=60)
    left = subprocess.run([sys.executable, "-m", "runner.cli", "run", str(m), "--no-report", "--timeout", "0.5"],
                          capture_output=True, text=True, cwd=tmp_path, timeout=90, check=False)
    assert left.returncode == 4, left.stderr
    out = _signal_at(where, when, "SIGTERM", "cancel", str(m), cwd=tmp_path)
    assert out.returncode == 130, (out.returncode, out.stderr)
    assert "Traceback" not in out.stderr, out.stderr
    assert said.replace("cancel t.yaml`", f"cancel {m}`") in " ".join(out.stderr.split()), out.stderr
    assert "may have stopped" not in out.stderr, out.stderr
    assert _world(m).stats()["cancelled"] == cancelled
    assert api.status(m).counts["cancelled"] == cancelled and in_flight(m) == 2 - cancelled
    assert _world(m).stats()["creates"] == 2  # nothing sent again


@pytest.mark.parametrize(("sent", "unanswered", "said"), [
    (1, 1, ("interrupted: the 1 cancel request sent (recorded as asked before it was sent) has no outcome recorded "
            "here: it may have stopped its job at the provider; `gridrun cancel m.yaml` again records what it did "
            "and cancels the rest")),
    (3, 2, ("interrupted: 2 of the 3 cancel requests sent (each recorded as asked before it was sent) have no "
            "outcome recorded here: they may have stopped their jobs at the provider; `gridrun cancel m.yaml` again "
            "records what they did and cancels the rest")),
    (1, 0, ("interrupted: the 1 cancel request sent is recorded with what it did; `gridrun cancel m.yaml` again "
            "cancels the rest")),
])
def test_an_interrupted_cancel_counts_the_requests_it_recorded_as_asked_and_not_answered(
    sent: int, unanswered: int, said: str
) -> None:
    import argparse

    from runner.cli import _cancel_interrupted
    from runner.errors import CancelInterrupted

    args = argparse.Namespace(manifest="m.yaml", command="cancel")
    assert _cancel_interrupted(args, CancelInterrupted(sent=sent, unanswered=unanswered)) == said
    # out of a task of the requests' event loop, in a group
    group = BaseExceptionGroup("", [KeyboardInterrupt(), BaseExceptionGroup("", [CancelInterrupted(sent=sent, unanswered=unanswered)])])
    assert _cancel_interrupted(args, group) == said


@pytest.mark.parametrize("where", ["start_run", "_sort"])
def test_a_ctrl_c_just_after_the_run_is_recorded_ends_its_record_as_interrupted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, where: str
) -> None:
    """A Ctrl-C (or SIGTERM, which gridrun takes as one) landing the moment after the run's record is committed,
    before the code that made it has returned: the record says "interrupted", not "running" as if still alive;
    nothing was sent, and the next run pays each job once."""
    from runner import resume
    from runner.state import Store

    m = write_manifest(tmp_path, n_seeds=1, styles=("anime",), sim={"render_time": 0.1, "jitter": 0.0})
    target = Store if where == "start_run" else resume
    real = getattr(target, where)

    def then_interrupted(*args, **kwargs):
        real(*args, **kwargs)
        raise KeyboardInterrupt

    monkeypatch.setattr(target, where, then_interrupted)
    prov = sim_provider(m)
    with pytest.raises(KeyboardInterrupt):
        api.run(m, provider=prov, report=False)
    run = api.status(m).run
    assert run.status == "interrupted" and run.ended_at is not None, run
    with Store(tmp_path / ".gridrun" / "state.db", readonly=True) as store:  # ended once, by the first to see it
        assert store.db.execute("SELECT count(*) FROM events WHERE kind='run-ended' AND run_id=?",
                                (run.id,)).fetchone()[0] == 1
    monkeypatch.setattr(target, where, real)
    assert api.run(m, provider=prov, report=False).exit_code == 0
    assert stats(prov)["creates"] == 1


@pytest.mark.parametrize("when", ["committed", "rolled-back"])
def test_a_ctrl_c_landing_as_the_runs_record_commits_leaves_no_run_running(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, when: str
) -> None:
    """A Ctrl-C (or SIGTERM) whose handler runs the moment the commit of the run's record returns (the commit's
    fsync is where a signal most often waits), before `start_run` has returned: the record says "interrupted",
    not "running" as if still alive. Landing before the commit, nothing is recorded and no run is known to end."""
    from runner.state import Store

    m = write_manifest(tmp_path, n_seeds=1, styles=("anime",), sim={"render_time": 0.1, "jitter": 0.0})
    real_start, real_tx = Store.start_run, Store._tx
    starting: list[bool] = []

    def start_run(self: Store, **kwargs: Any) -> int:
        starting.append(True)
        try:
            return real_start(self, **kwargs)
        finally:
            starting.clear()

    @contextlib.contextmanager
    def interrupted_tx(self: Store):
        with real_tx(self):
            yield
            if starting and when == "rolled-back":
                raise KeyboardInterrupt
        if starting:
            raise KeyboardInterrupt

    monkeypatch.setattr(Store, "start_run", start_run)
    monkeypatch.setattr(Store, "_tx", interrupted_tx)
    prov = sim_provider(m)
    with pytest.raises(KeyboardInterrupt):
        api.run(m, provider=prov, report=False)
    if when == "rolled-back":
        with pytest.raises(NotRecordedError):
            api.status(m)
        store = Store(tmp_path / ".gridrun" / "state.db")
        with pytest.raises(KeyboardInterrupt):
            store.start_run(manifest_name="t", manifest_path=str(m), manifest_copy="", outputs_dir=str(tmp_path),
                            provider="sim", model="pixverse-v5.6", axes=(), budget_micros=None)
        assert store.run_id is None  # no run of this process to record the end of
        store.close()
    else:
        run = api.status(m).run
        assert run.status == "interrupted" and run.ended_at is not None, run
        with Store(tmp_path / ".gridrun" / "state.db", readonly=True) as store:
            assert store.db.execute("SELECT count(*) FROM events WHERE kind='run-ended' AND run_id=?",
                                    (run.id,)).fetchone()[0] == 1
    monkeypatch.setattr(Store, "start_run", real_start)
    monkeypatch.setattr(Store, "_tx", real_tx)
    assert api.run(m, provider=prov, report=False).exit_code == 0
    assert stats(prov)["creates"] == 1


def test_a_signal_as_the_run_ends_is_recorded_and_leaves_the_commands_own_handlers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ctrl-C (or SIGTERM, which the `gridrun` command takes as one) once the jobs are over, before the run's end
    is recorded: the record says "interrupted", not "running". And the run's own signal handling, once over,
    puts back the handlers it found: SIGTERM still ends the command as interrupted, not killed outright."""
    from runner.entry import interrupt
    from runner.executor import Executor

    m = write_manifest(tmp_path, n_seeds=1, styles=("anime",), sim={"render_time": 0.1, "jitter": 0.0})
    prov = sim_provider(m)
    before = signal.getsignal(signal.SIGTERM)
    signal.signal(signal.SIGTERM, interrupt)  # as runner.entry sets it
    try:
        assert api.run(m, provider=prov, report=False, options={"handle_signals": True}).exit_code == 0
        assert signal.getsignal(signal.SIGTERM) is interrupt
    finally:
        signal.signal(signal.SIGTERM, before)
    real = Executor._end

    def interrupted(self: Executor) -> tuple[str, bool]:
        raise KeyboardInterrupt

    monkeypatch.setattr(Executor, "_end", interrupted)
    with pytest.raises(KeyboardInterrupt):
        api.run(m, provider=prov, report=False, options={"force": True})
    run = api.status(m).run
    assert run.status == "interrupted" and run.ended_at is not None, run
    monkeypatch.setattr(Executor, "_end", real)


def _hangup_once_sent(before: Callable[[], None] = lambda: None) -> Callable[[Any], None]:
    """An `on_progress` that, once two jobs are at the provider and the run's signal handling is in place, calls
    `before` and sends this process a SIGHUP, once."""
    sent: list[bool] = []

    def look(s: Any) -> None:
        if not sent and s.counts["submitted"] + s.counts["running"] >= 2:
            sent.append(True)
            before()
            signal.raise_signal(signal.SIGHUP)

    return look


@pytest.mark.timeout(60)
def test_a_programs_own_sighup_handler_is_called_during_a_run_that_handles_signals(tmp_path: Path) -> None:
    """A program that runs gridrun with `handle_signals` and a SIGHUP handler of its own (a reload of its
    settings) keeps it: a SIGHUP during the run calls it, and the run goes on to its end."""
    m = write_manifest(tmp_path, n_seeds=2, run={"concurrency": 2}, sim={"render_time": 0.5, "jitter": 0.0})
    prov = sim_provider(m)
    called: list[int] = []
    before = signal.signal(signal.SIGHUP, lambda signum, frame: called.append(signum))
    try:
        result = api.run(m, provider=prov, report=False, options={"handle_signals": True},
                         on_progress=_hangup_once_sent())
        assert called == [signal.SIGHUP] and signal.getsignal(signal.SIGHUP) is not signal.SIG_DFL
    finally:
        signal.signal(signal.SIGHUP, before)
    assert (result.status, result.exit_code) == ("done", 0) and stats(prov)["creates"] == 4


@pytest.mark.timeout(60)
@pytest.mark.parametrize("closed", [False, True], ids=["sent-by-hand", "terminal-closed"])
def test_a_hangup_mutes_the_terminal_for_the_run_and_gives_it_back_where_it_is_still_there(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, closed: bool
) -> None:
    """SIGHUP left to its default (it would kill the program) stops the run, and what is written to the terminal
    meanwhile goes nowhere. A SIGHUP sent by hand leaves the terminal there: the run finishes its jobs as for
    Ctrl-C, and the program's standard output writes to it again once the run returns. A closed terminal leaves
    no one to send a second signal: the run ends at once, the jobs left in flight, and the terminal stays muted
    (writing fails there)."""
    import pty

    m = write_manifest(tmp_path, n_seeds=2, run={"concurrency": 2}, sim={"render_time": 1.0, "jitter": 0.0})
    master, slave = pty.openpty()
    terminal = open(slave, "w", encoding="utf-8")
    monkeypatch.setattr(sys, "stdout", terminal)
    before = signal.signal(signal.SIGHUP, signal.SIG_DFL)
    try:
        result = api.run(m, provider=sim_provider(m), report=False, options={"handle_signals": True},
                         on_progress=_hangup_once_sent(lambda: os.close(master) if closed else None))
        assert (result.status, result.exit_code) == ("interrupted", 130)
        assert signal.getsignal(signal.SIGHUP) is signal.SIG_DFL
        counts = api.status(m).counts
        if closed:  # no render awaited
            assert counts["done"] == 0 and in_flight(m) >= 2, counts
        else:
            assert counts["done"] >= 2 and in_flight(m) == 0, counts
        if closed:
            assert os.path.samestat(os.fstat(slave), os.stat(os.devnull))
        else:
            terminal.write("after the run\n")
            terminal.flush()
            os.set_blocking(master, False)
            wait_for(lambda: b"after the run" in _read_some(master), timeout=10)
    finally:
        signal.signal(signal.SIGHUP, before)
        terminal.close()
        if not closed:
            os.close(master)


def test_a_run_that_handles_signals_puts_back_the_programs_signal_wakeup_fd(tmp_path: Path) -> None:
    """A program with a signal wakeup fd (its own event loop's, woken by signals) has it back once the run
    returns: the run's event loop takes it for the run's signals, and would leave none."""
    import socket

    m = write_manifest(tmp_path, n_seeds=1, styles=("anime",), sim={"render_time": 0.1, "jitter": 0.0})
    reader, writer = socket.socketpair()
    writer.setblocking(False)
    before = signal.set_wakeup_fd(writer.fileno())
    try:
        assert api.run(m, provider=sim_provider(m), report=False, options={"handle_signals": True}).exit_code == 0
        assert signal.set_wakeup_fd(before) == writer.fileno()
    finally:
        signal.set_wakeup_fd(before)
        reader.close()
        writer.close()


def _read_some(fd: int) -> bytes:
    try:
        return os.read(fd, 4096)
    except BlockingIOError:
        return b""


def _signalled(proc: subprocess.Popen, signum: int, wait: Callable[[], object], *, timeout: float) -> str:
    """`proc`'s standard error once `signum`, sent after `wait()`, ended it; killed if it outlives `timeout` (or
    `wait` fails)."""
    try:
        wait()
        proc.send_signal(signum)
        return proc.communicate(timeout=timeout)[1]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()


_ENDED_WITH_A_THREAD_LEFT = """
import threading, time
import runner.cli

def main(argv=None):
    threading.Thread(target=time.sleep, args=(20,)).start()  # a worker still winding down
    print("ended", flush=True)
    return 3

runner.cli.main = main
from runner.entry import entry
entry()
"""


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_a_signal_after_the_command_ended_leaves_its_exit_code(signum: int) -> None:
    """A signal while the exit waits for a thread still winding down (everything is recorded by then): the
    command exits at once with its own code, not killed (143) nor interrupted (130)."""
    proc = subprocess.Popen([sys.executable, "-c", _ENDED_WITH_A_THREAD_LEFT], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)

    def ended() -> None:
        assert proc.stdout is not None and proc.stdout.readline() == "ended\n"
        time.sleep(0.3)

    err = _signalled(proc, signum, ended, timeout=10)
    assert proc.returncode == 3, (proc.returncode, err)
    assert "Traceback" not in err


_RUN_THEN_COUNT_THREADS = """
import sys, threading
from runner import api
from runner.entry import _threads_left

result = api.run(sys.argv[1], report=False)
busy = [t.name for t in threading.enumerate() if t is not threading.current_thread() and not t.daemon]
print(result.exit_code, any(n.startswith("gridrun-disk") for n in busy), _threads_left())
"""


def test_after_a_run_no_thread_keeps_the_command_from_its_quick_exit(tmp_path: Path) -> None:
    """The download's disk threads are ended once the run is done: nothing is left for the interpreter's teardown
    to wait for, which a SIGTERM landing in it would have ended as killed (143)."""
    m = write_manifest(tmp_path, n_seeds=2, styles=("anime",))
    out = subprocess.run([sys.executable, "-c", _RUN_THEN_COUNT_THREADS, str(m)], capture_output=True, text=True,
                         cwd=tmp_path, timeout=120, check=False)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split() == ["0", "False", "False"]  # no disk thread after the run, none left at the exit


_SIGNAL_IN = """
import os, signal, sys, threading, time
from runner.entry import take_signals

take_signals()
lock = threading.Lock()
# importlib's shape: a lock taken, then the `try` that lets it go; the signal's handler runs between the two
code = compile('''
def acquire(lock):
    lock.acquire()
    os.kill(os.getpid(), signal.SIGTERM)
    try:
        pass
    finally:
        lock.release()

class Dying:
    def __del__(self):
        os.kill(os.getpid(), signal.SIGTERM)
''', "<frozen importlib._bootstrap>" if sys.argv[1] == "importlib" else "dying.py", "exec")
space = {"os": os, "signal": signal}
exec(code, space)
try:
    if sys.argv[1] == "importlib":
        space["acquire"](lock)
    else:
        space["Dying"]()  # gone at once: its __del__ runs, where an exception is printed as ignored
    sys.stdout.write("went on\\n")  # one write: print's text and its line's end are two, which the interrupt may split
    sys.stdout.flush()
    time.sleep(3)
    print("not interrupted", flush=True)
except KeyboardInterrupt:
    print("interrupted", flush=True)
print("lock free" if lock.acquire(timeout=0) else "lock held", flush=True)
"""


@pytest.mark.parametrize("where", ["importlib", "__del__"])
def test_a_signal_in_importlibs_code_or_a_finalizer_interrupts_just_after_it(where: str) -> None:
    """SIGTERM (or Ctrl-C) whose handler runs in importlib's own code, between its taking a lock and the `try`
    that lets it go: the KeyboardInterrupt comes just after, the lock let go (raised there, it left an import lock
    held for good, and the live report's thread importing later waited on it forever). In a `__del__` (or a
    weakref callback), where it would be printed as ignored and the signal lost, it comes just after too."""
    out = subprocess.run([sys.executable, "-c", _SIGNAL_IN, where], capture_output=True, text=True, timeout=30,
                         check=False)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split("\n")[:3] == ["went on", "interrupted", "lock free"], (out.stdout, out.stderr)
    assert "Exception ignored" not in out.stderr, out.stderr



@pytest.mark.parametrize("others", [False, True], ids=["interrupts", "with-an-error"])
def test_an_interrupt_a_runs_task_group_raises_as_a_group_ends_the_command_as_interrupted(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path, others: bool
) -> None:
    """Ctrl-C that the tasks of a run's task group meet before the run's own handler takes the signals comes out of
    it as a group of KeyboardInterrupts: the command says "interrupted" and exits 130 as for any interrupt, with no
    traceback; a group holding any other error is not taken for an interrupt: that error is said, in one line."""
    from runner import cli

    m = tmp_path / "m.yaml"
    m.write_text("version: 1\nname: t\nmodel: pixverse-v5.6\nparams:\n  prompt: a fox\n  quality: 360p\n")
    errors: list[BaseException] = [KeyboardInterrupt(), KeyboardInterrupt()] + ([ValueError("x")] if others else [])

    def interrupted(args: object, **_: object) -> int:
        raise BaseExceptionGroup("tasks", errors)

    monkeypatch.setattr(cli, "cmd_plan", interrupted)
    if others:
        assert cli.main(["plan", str(m)]) == 1
        said = capsys.readouterr().err
        assert "error: unexpected error, a bug in gridrun: ValueError: x" in said and "interrupted" not in said, said
        return
    assert cli.main(["plan", str(m)]) == 130
    assert capsys.readouterr().err.strip().endswith("interrupted")


def test_a_disk_error_a_runs_task_group_raises_as_a_group_is_said_as_the_disk_error_it_is(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """An error of the local disk met by a task of a run's task group comes out of it in a group: said as the same
    error met outside one is (the file, why, what to do), exit 1, not a traceback."""
    import errno

    from runner import cli

    m = tmp_path / "m.yaml"
    m.write_text("version: 1\nname: t\nmodel: pixverse-v5.6\nparams:\n  prompt: a fox\n  quality: 360p\n")

    def failed(args: object, **_: object) -> int:
        raise BaseExceptionGroup("tasks", [ExceptionGroup("jobs", [
            OSError(errno.ENOSPC, "No space left on device", str(tmp_path / "v.mp4"))])])

    monkeypatch.setattr(cli, "cmd_plan", failed)
    assert cli.main(["plan", str(m)]) == 1
    said = capsys.readouterr().err
    assert said.startswith("error: ") and "v.mp4" in said and "space" in said and "bug" not in said, said


def test_an_unexpected_error_before_a_run_is_recorded_says_no_run_stopped(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """An error gridrun did not expect before the run was recorded (memory run out as a library loads): one line
    saying it, and nothing said of a run recorded crashed, as none was."""
    from runner import cli

    m = write_manifest(tmp_path, n_seeds=1, styles=("anime",))

    def failed(args: object, **_: object) -> int:
        raise ImportError("libx265.so: failed to map segment from shared object")

    monkeypatch.setattr(cli, "cmd_run", failed)
    assert cli.main(["run", str(m)]) == 1
    said = capsys.readouterr().err
    assert said.startswith("error: out of memory (ImportError: ") and "recorded crashed" not in said, said


def test_cancel_records_jobs_whose_world_was_deleted_unknown_as_a_run_does(tmp_path: Path) -> None:
    """The in-process simulator's world file deleted, its videos are gone for good: cancel records them
    `unknown` at once, as a run does, instead of failing on every try and advising a paid run."""
    m = write_manifest(tmp_path, n_seeds=1, sim={"render_time": 30.0, "jitter": 0})
    api.run(m, options={"timeout": 0.3}, report=False)
    assert in_flight(m) == 2
    (tmp_path / ".gridrun" / SIM_WORLD).unlink()
    r = _cli("cancel", m)
    assert r.returncode == 1, r.stderr  # jobs that may have been paid for, left for `retry --unknown`
    assert "error" not in r.stderr and "(paid)" not in r.stderr, r.stderr
    said = " ".join(r.stdout.split())
    assert "2 jobs whose video the provider no longer has, so nothing to cancel: recorded `unknown`" in said, said
    assert "world has no video" in said, said
    assert api.status(m).counts["unknown"] == 2
    again = _cli("cancel", m)
    assert again.returncode == 0 and "nothing in flight to cancel" in again.stdout, again


@pytest.mark.timeout(120)
def test_status_of_a_killed_run_whose_jobs_cancel_recorded_unknown_names_them_and_retry_unknown(
        tmp_path: Path) -> None:
    """A run killed with its jobs rendering, then a cancel that finds the provider no longer has them (the
    in-process simulator's world deleted): cancel records them `unknown` and exits 1, and `status` says of the gone
    run that they are of unknown outcome, may have been paid for, and that `gridrun retry --unknown` sends them
    again, not that every job of it settled (cancelled, done or failed)."""
    m = write_manifest(tmp_path, n_seeds=1, sim={"render_time": 30.0, "jitter": 0})
    runner = subprocess.Popen([sys.executable, "-m", "runner.cli", "run", str(m), "--no-report"], cwd=tmp_path,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
    try:
        wait_for(lambda: in_flight(m) == 2)
    finally:
        runner.kill()
        runner.wait()
    (tmp_path / ".gridrun" / SIM_WORLD).unlink()
    r = _cli("cancel", m)
    assert r.returncode == 1, (r.stdout, r.stderr)
    assert api.status(m).counts["unknown"] == 2
    said = " ".join(_cli("status", m).stdout.split())
    assert "settled since (cancelled, done or failed)" not in said, said
    assert ("no job of it is in flight since, but 2 jobs of it are of unknown outcome (the provider no longer had "
            "them; they may have been paid for, and stay reserved): `gridrun retry --unknown` sends them again") \
        in said, said


@contextlib.contextmanager
def _cancel_of_two_forgotten(tmp_path: Path) -> Iterator[tuple[str, Path, Any]]:
    """A served simulator's URL, a manifest whose two jobs a run left rendering there, and what `gridrun cancel`
    did (it ended 1) once the provider forgot them: it answers 404 for each."""
    with running_server(SimConfig(render_time=30.0, jitter=0.0, concurrency=2)) as url:
        m = write_manifest(tmp_path, n_seeds=1, base_url=url, sim={})
        api.run(m, options={"timeout": 0.3}, report=False)
        assert in_flight(m) == 2
        httpx.post(url.rsplit("/v1", 1)[0] + "/_sim/reset").raise_for_status()  # the provider forgets them
        r = _cli("cancel", m)
        assert r.returncode == 1, r.stderr
        yield url, m, r


@pytest.mark.timeout(120)
def test_cancel_records_jobs_the_provider_answers_404_for_unknown_once_that_has_lasted(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Over HTTP only the provider can tell: a video it answers 404 for through GONE_AFTER seconds is gone, for
    cancel as for a run."""
    monkeypatch.setattr(api, "GONE_AFTER", 0.3, raising=False)
    with _cancel_of_two_forgotten(tmp_path) as (url, m, r):
        said = " ".join(r.stdout.split())
        assert "2 jobs whose video the provider no longer has" in said and "error" not in r.stderr, (said, r.stderr)
        assert "the provider has had no video" in said, said
        assert api.status(m).counts["unknown"] == 2


@pytest.mark.timeout(120)
def test_a_cancel_request_answered_404_is_a_failed_cancel_that_keeps_the_jobs_in_flight(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A gateway without the DELETE route answers it 404 while the video renders on: that says nothing of the
    video, so the cancel failed (exit 1, the jobs still in flight and reserved), not `unknown` with nothing to
    cancel."""
    monkeypatch.setattr(api, "GONE_AFTER", 0.3, raising=False)
    no_delete = ({"fault": "not_found", "route": "delete", "p": 1.0},)
    with running_server(SimConfig(render_time=30.0, jitter=0.0, concurrency=2, script=no_delete)) as url:
        m = write_manifest(tmp_path, n_seeds=1, base_url=url, sim={})
        api.run(m, options={"timeout": 0.3}, report=False)
        assert in_flight(m) == 2
        r = _cli("cancel", m)
        assert r.returncode == 1, (r.stdout, r.stderr)
        said = " ".join(r.stderr.split())
        assert said.count("error: ") == 2 and "no such route" in said, said
        assert "2 jobs not cancelled, a request to the provider having failed" in said, said
        assert "unknown" not in r.stdout and "nothing to cancel" not in r.stdout, r.stdout
        assert api.status(m).counts["unknown"] == 0 and in_flight(m) == 2
        assert _stats(url)["cancelled"] == 0


@pytest.mark.timeout(120)
@pytest.mark.parametrize(("status", "named"), [(None, "HTTP 405"), (501, "HTTP 501")])
def test_a_provider_that_takes_no_cancel_requests_is_said_so_not_asked_again(
        tmp_path: Path, status: int | None, named: str) -> None:
    """A provider (or gateway) that answers the cancel request 405 Method Not Allowed or 501 Not Implemented does
    not take cancels: `cancel` says so, naming the status, that the jobs still render and will be billed, and that
    `gridrun run` follows them; it does not advise cancelling again, which cannot succeed. Nothing was cancelled:
    exit 1, the jobs still in flight."""
    rule = {"fault": "not_allowed", "route": "delete", "p": 1.0}
    refuse = (rule if status is None else {**rule, "status": status},)
    with running_server(SimConfig(render_time=30.0, jitter=0.0, concurrency=2, script=refuse)) as url:
        m = write_manifest(tmp_path, n_seeds=1, base_url=url, sim={})
        api.run(m, options={"timeout": 0.3}, report=False)
        assert in_flight(m) == 2
        r = _cli("cancel", m)
        assert r.returncode == 1, (r.stdout, r.stderr)
        said = " ".join(r.stderr.split())
        assert f"the provider does not take cancel requests ({named}" in said, said
        assert "2 jobs not cancelled" in said and "still rendering and will be billed" in said, said
        assert f"`gridrun run {m}` follows them to the end and downloads what they render" in said, said
        assert f"`gridrun cancel {m}` again" not in said and "a request to the provider having failed" not in said
        assert "nothing in flight to cancel" not in r.stdout, r.stdout
        assert in_flight(m) == 2 and api.status(m).counts["unknown"] == 0
        assert _stats(url)["cancelled"] == 0
        result = api.cancel(m)
        assert len(result.not_taken) == 2 and all(named in why for why in result.not_taken.values()), result
        assert not result.errors and not result.cancelled


@pytest.mark.timeout(120)
def test_cancel_says_once_what_it_waits_for_as_it_starts_waiting_on_404s(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A cancel the provider answers 404 for waits GONE_AFTER seconds before believing it: it says so as the wait
    starts (one line, on stderr), not only once it is over."""
    monkeypatch.setattr(api, "GONE_AFTER", 0.3, raising=False)
    with running_server(SimConfig(render_time=30.0, jitter=0.0, concurrency=2)) as url:
        m = write_manifest(tmp_path, n_seeds=1, base_url=url, sim={})
        api.run(m, options={"timeout": 0.3}, report=False)
        httpx.post(url.rsplit("/v1", 1)[0] + "/_sim/reset").raise_for_status()  # the provider forgets them
        r = _cli("cancel", m)
        assert r.returncode == 1, r.stderr
        said = " ".join(r.stderr.split())
        assert said.count("answers 404 for") == 1 and "and may for others" in said, said
        assert "waiting up to 0.3 s for each, as a run does" in said and "recorded `unknown`" in said, said
        assert "2 jobs whose video the provider no longer has" in " ".join(r.stdout.split()), r.stdout


@pytest.mark.timeout(120)
@LOOPS
def test_cancels_wait_on_404s_is_slept_out_on_the_steady_clock(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, loop: str) -> None:
    """The steady clock cancel measures its wait on a 404 by running at half the speed of the event loop's (as a
    loop's timer ending a little early is, to time.monotonic: uvloop counts in whole milliseconds): each of its
    pauses between GETs is slept out until that clock has moved on by a sixth of GONE_AFTER, so that the wait
    asks each video once as it starts and at most six times after, not again each time a pause ends on the loop's
    timer before that clock has moved on by all of it."""
    monkeypatch.setenv("GRIDRUN_LOOP", _on(loop)["GRIDRUN_LOOP"])
    t0 = time.monotonic()
    monkeypatch.setattr(api, "_steady", lambda: t0 + (time.monotonic() - t0) / 2)
    monkeypatch.setattr(api, "GONE_AFTER", 0.6, raising=False)
    with _cancel_of_two_forgotten(tmp_path) as (url, m, r):
        assert "2 jobs whose video the provider no longer has" in " ".join(r.stdout.split()), r.stdout
        gets = _stats(url)["requests"].get("get", 0)
        # two videos, each looked at once, then asked as the wait starts and after each of its six pauses at most
        assert 2 <= gets <= 2 * (1 + 1 + 6), gets
        assert api.status(m).counts["unknown"] == 2


_DETACH_ON_A_SLOW_DISK = """
import asyncio, os, signal, sys, threading
import runner.providers.download as dl
from runner.executor import Executor

dl.DISK_THREADS = 1  # one disk thread: the other downloads wait for it
jobs = int(sys.argv.pop(1))
queued, stopped, detached = threading.Semaphore(0), threading.Event(), threading.Event()
real_trip, real_settle = dl._in_disk_thread, dl._settle
real_interrupt, real_detach = Executor._interrupt, Executor._detach
async def trip(*args):
    queued.release()
    return await real_trip(*args)
settles = []
def settle(*args):
    if not settles:  # the first: a slow disk, the other downloads queued behind it meanwhile
        for _ in range(jobs):
            queued.acquire()
        os.kill(os.getpid(), signal.SIGINT)
        stopped.wait()
        os.kill(os.getpid(), signal.SIGINT)  # the detach
        detached.wait()
    settles.append(detached.is_set())
    print("settle after the detach" if len(settles) > 1 else "first settle", file=sys.stderr, flush=True)
    return real_settle(*args)
def interrupt(self, *args, **kwargs):
    real_interrupt(self, *args, **kwargs)
    stopped.set()
def detach(self, scope):
    real_detach(self, scope)
    # once the tasks the detach cancels have taken their cancellation (queued first in the event loop)
    asyncio.get_running_loop().call_soon(detached.set)
dl._in_disk_thread, dl._settle = trip, settle
Executor._interrupt, Executor._detach = interrupt, detach
from runner.entry import entry
entry()
"""


@pytest.mark.timeout(120)
def test_a_detach_on_a_slow_disk_ends_once_the_settle_under_way_has_not_every_download_queued(tmp_path: Path) -> None:
    """The second Ctrl-C while the disk is slow: the download whose file is being made durable (fsync, rename)
    finishes, those waiting for a disk thread are dropped, their `.part` removed, not saved one by one before the
    run ends; the next run fetches them at no new cost, every video whole and paid once."""
    m = write_manifest(tmp_path, n_seeds=4, styles=("anime",), sim={"render_time": 0.3, "jitter": 0.0})
    out = subprocess.run([sys.executable, "-c", _DETACH_ON_A_SLOW_DISK, "4", "run", str(m), "--no-report"],
                         capture_output=True, text=True, cwd=tmp_path, timeout=90, check=False)
    assert out.returncode == 130, (out.returncode, out.stderr)
    assert "first settle" in out.stderr and "settle after the detach" not in out.stderr, out.stderr
    assert "Traceback" not in out.stderr, out.stderr
    assert _states(m) == {**{k: "downloading" for k in _states(m)}, **{k: "done" for k in check_outputs(m)}}
    assert len(check_outputs(m)) == 1
    assert not list(tmp_path.rglob("*.part*")), list(tmp_path.rglob("*"))
    again = _cli("run", m)
    assert again.returncode == 0, again.stderr
    assert sorted(check_outputs(m)) == sorted(_states(m)) and len(_states(m)) == 4
    assert _world(m).stats()["creates"] == 4 and _world(m).stats()["duplicate_paid"] == 0


_SETTLE_FAILS = """
import sys
import runner.providers.download as dl
kind, real, calls = sys.argv.pop(1), dl._settle, []
def settle(*args):
    calls.append(1)
    if len(calls) == 2:
        raise MemoryError("injected") if kind == "MemoryError" else RuntimeError(kind)
    return real(*args)
dl._settle = settle
from runner.entry import entry
entry()
"""


@pytest.mark.timeout(120)
@pytest.mark.parametrize("kind", ["injected", "MemoryError", "can't start new thread"])
def test_an_unexpected_error_in_a_jobs_task_stops_the_run_crashed_with_one_line_not_a_traceback(
    tmp_path: Path, kind: str
) -> None:
    """A bug (or memory run out) in one job's task, here as its video is saved: the run stops, recorded crashed;
    the command says what failed and where, and what to do, with no traceback; the next run finishes every job,
    each paid once."""
    m = write_manifest(tmp_path, n_seeds=4, styles=("anime",), sim={"render_time": 0.2, "jitter": 0.0})
    words = ["run", str(m), *(["--json"] if kind == "injected" else [])]
    out = subprocess.run([sys.executable, "-c", _SETTLE_FAILS, kind, *words], capture_output=True, text=True,
                         cwd=tmp_path, timeout=90, check=False)
    assert out.returncode == 1, (out.returncode, out.stderr)
    if kind == "injected":  # JSON lines end with their `end` event, as a script reading them waits for it
        end = json.loads(out.stdout.splitlines()[-1])
        assert (end["event"], end["status"], end["exit_code"]) == ("end", "crashed", 1), end
        assert "a bug in gridrun: RuntimeError: injected" in end["errors"][0], end
    assert "Traceback" not in out.stderr and "Exception Group" not in out.stderr, out.stderr
    said = "unexpected error, a bug in gridrun: RuntimeError: injected" if kind == "injected" else "out of memory"
    assert f"error: {said}" in out.stderr and "in settle" in out.stderr, out.stderr
    assert "recorded crashed" in out.stderr and "`gridrun run` goes on" in out.stderr, out.stderr
    assert api.status(m).run.status == "crashed"
    again = _cli("run", m)
    assert again.returncode == 0, again.stderr
    assert len(check_outputs(m)) == 4 and _world(m).stats()["creates"] == 4


def test_a_plain_log_says_the_first_signal_as_it_comes(tmp_path: Path) -> None:
    """The first Ctrl-C: a plain line says at once which signal came, that nothing new is sent, how many paid jobs
    are being finished, and what a second one does."""
    signum, again = signal.SIGINT, "Ctrl-C again"
    m = write_manifest(tmp_path, n_seeds=2, styles=("anime",), sim={"render_time": 60.0, "jitter": 0.0})
    proc = subprocess.Popen([sys.executable, "-m", "runner.cli", "run", str(m), "--no-report"], cwd=tmp_path,
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(proc.stderr or ()), daemon=True)
    reader.start()
    # not yet seen rendering (the run polls them once their render is due): not called paid
    said = f"  • {again} leaves the 2 jobs in flight to the next run; interrupted by Ctrl-C: finishing them, " \
           "no new submissions (2 not yet " \
           f"seen rendering, paid only once they render: {again}, then `gridrun cancel`, stops those still queued " \
           "at no charge)"
    assert len(said.split(";")[0]) <= 80  # what to do, first: an 80-column terminal's live display keeps it
    try:
        wait_for(lambda: in_flight(m) == 2)
        proc.send_signal(signum)
        wait_for(lambda: any(x.rstrip("\n") == said for x in lines))  # while the run still finishes its jobs
        assert proc.poll() is None
        proc.send_signal(signum)
        assert proc.wait(timeout=60) == 130
        reader.join(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        reader.join(timeout=60)
        assert proc.stderr is not None
        proc.stderr.close()


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP], ids=["ctrl-c", "sigterm", "hangup"])
@pytest.mark.parametrize("terminal", [True, False], ids=["terminal", "log"])
def test_the_first_signals_note_says_what_to_do_within_80_columns(signum: int, terminal: bool) -> None:
    """The live display cuts each note to one line: on an 80-column terminal (a pty's default), what a second
    signal does to the jobs in flight (or, for a signal that leaves them at once, that they were left) is still
    shown, whatever the signal and however many jobs."""
    from collections import Counter
    from types import SimpleNamespace

    from runner.executor import Executor, _finishes

    for flying in (1, 12_345):
        for counts in (Counter(running=flying), Counter(submitted=flying, running=flying)):
            note = Executor._signal_note(SimpleNamespace(_not_left=(), counts=counts, provider=_caps(None)), signum, terminal)  # type: ignore[arg-type]
            said = "again leaves the" if _finishes(signum, terminal) else ": left the"
            assert said in f"• {note}"[:80] and "to the next run" in f"• {note}"[:80], note


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP], ids=["ctrl-c", "sigterm", "hangup"])
@pytest.mark.parametrize("terminal", [True, False], ids=["terminal", "log"])
def test_only_ctrl_c_or_a_hangup_with_the_terminal_still_there_finishes_the_jobs(signum: int, terminal: bool) -> None:
    """A first Ctrl-C, or a SIGHUP sent while the terminal is still there, finishes what is paid, someone being there
    to send a second one; SIGTERM (a supervisor's, which kills a few seconds later) and a hangup with no terminal
    left end the run at once, and their note says the jobs were left and what collects them, with no second signal
    to send."""
    from collections import Counter
    from types import SimpleNamespace

    from runner.executor import Executor, _finishes

    finishes = signum == signal.SIGINT or (signum == signal.SIGHUP and terminal)
    assert _finishes(signum, terminal) == finishes
    note = Executor._signal_note(SimpleNamespace(_not_left=(), counts=Counter(running=2, submitted=1),  # type: ignore[arg-type]
                                                 provider=_caps(True)), signum, terminal)
    name = "Ctrl-C" if signum == signal.SIGINT else signal.Signals(signum).name
    if finishes:
        assert note.startswith(f"{name} {'or Ctrl-C ' if terminal and signum != signal.SIGINT else ''}again leaves "
                               "the 3 jobs in flight to the next run"), note
    else:
        assert note == (f"interrupted by {name}: left the 3 jobs in flight to the next run; `gridrun run` collects them "
                        "at no new cost (2 rendering or rendered, paid; 1 not yet seen rendering, paid only once it "
                        "renders: `gridrun cancel` stops it if still queued at no charge)"), note


def test_the_first_ctrl_c_calls_paid_only_the_jobs_seen_rendering_and_names_the_free_way_out_for_the_others() -> None:
    """Of six jobs sent, two seen rendering (paid) and four queued at the provider or not yet seen rendering, paid
    only once they render, which finishing them waits for: the first Ctrl-C's note says so, and that Ctrl-C again,
    then `gridrun cancel`, stops those still queued at no charge; it does not call the six paid."""
    from collections import Counter
    from types import SimpleNamespace

    from runner.executor import Executor

    note = Executor._signal_note(SimpleNamespace(_not_left=(), counts=Counter(running=2, submitted=3, submitting=1),  # type: ignore[arg-type]
                                                 provider=_caps(True)), signal.SIGINT, True)
    assert "paid jobs" not in note, note
    assert note.startswith("Ctrl-C again leaves the 6 jobs in flight to the next run"), note
    assert "(2 rendering or rendered, paid; 3 not yet seen rendering, paid only once they render: Ctrl-C again, " \
           "then `gridrun cancel`, stops those still queued at no charge; 1 sent whose answer never came" in note, note
    note = Executor._signal_note(SimpleNamespace(_not_left=(), counts=Counter(running=2), provider=_caps(True)), signal.SIGINT, True)  # type: ignore[arg-type]
    assert note == "Ctrl-C again leaves the 2 paid jobs in flight to the next run; interrupted by Ctrl-C: " \
                   "finishing them, no new submissions", note





@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_a_signals_note_says_jobs_whose_create_went_unanswered_may_cost_their_estimate(signum: int) -> None:
    """Jobs whose create was sent and never answered (`submitting`) are no jobs the next run collects at no new
    cost: the note counts them apart from those sent and answered, and says, as the run's closing lines do, that the
    next run looks them up by key and sends them again if the provider has none, which may cost their estimate."""
    from collections import Counter
    from types import SimpleNamespace

    from runner.executor import Executor

    lost = ("2 sent whose answer never came (created or not, unknown): `gridrun run` looks them up by key and sends "
            "them again if the provider has none, which may cost their estimate")
    note = Executor._signal_note(SimpleNamespace(_not_left=(), counts=Counter(submitting=2, submitted=2),  # type: ignore[arg-type]
                                                 provider=_caps(True)), signum, False)
    assert "paid job" not in note and lost in note, note
    if signum == signal.SIGTERM:
        assert note == ("interrupted by SIGTERM: left the 4 jobs in flight to the next run; `gridrun run` collects the 2 "
                        "answered at no new cost (2 not yet seen rendering, paid only once they render: `gridrun "
                        f"cancel` stops those still queued at no charge); {lost}"), note
    note = Executor._signal_note(SimpleNamespace(_not_left=(), counts=Counter(submitting=2),  # type: ignore[arg-type]
                                                 provider=_caps(True)), signum, False)
    assert "no new cost" not in note and "paid" not in note and lost in note, note

@pytest.mark.parametrize(("free", "said"), [
    (None, "asks the provider to stop those still queued, which it may bill anyway: it promises no refund"),
    (False, "asks the provider to stop those still queued, which it bills all the same"),
])
def test_the_first_ctrl_c_promises_no_free_cancel_where_the_provider_does_not_say_a_queued_cancel_is_free(
    free: bool | None, said: str
) -> None:
    """Lumenfall's cancel is best effort, with no refund promised: jobs not yet seen rendering are not said to be
    paid only once they render, nor stopped at no charge."""
    from collections import Counter
    from types import SimpleNamespace

    from runner.executor import Executor

    note = Executor._signal_note(SimpleNamespace(_not_left=(), counts=Counter(running=2, submitted=4),  # type: ignore[arg-type]
                                                 provider=_caps(free)), signal.SIGINT, True)
    assert note.endswith(f"(2 rendering or rendered, paid; 4 not yet seen rendering: Ctrl-C again, then `gridrun "
                         f"cancel`, {said})"), note
    assert "no charge" not in note and "paid only once" not in note, note


def test_which_providers_bill_no_queued_cancel_is_capability_data() -> None:
    """The simulator charges a cancel only for the render it cut short; Lumenfall does not say."""
    from runner.providers import capabilities

    assert capabilities.load("sim").queued_cancel_free is True
    assert capabilities.load("lumenfall").queued_cancel_free is None


def test_an_interrupted_lumenfall_run_says_cancel_may_still_bill_the_queued_jobs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """provider: lumenfall, against a served simulator, stopped with two jobs queued: the closing line says
    `gridrun cancel` asks the provider to stop them, not that it stops them at no charge; `cancel` says what it
    cancelled may still be billed where the provider reported no charge."""
    from types import SimpleNamespace

    from runner.cli import _cancel_charges

    with running_server(SimConfig(render_time=60.0, jitter=0.0, concurrency=1), process=True) as url:
        monkeypatch.setenv("LUMENFALL_BASE_URL", url)
        monkeypatch.setenv("LUMENFALL_API_KEY", "lmnfl_testkey123")
        m = tmp_path / "m.yaml"
        m.write_text("version: 1\nname: lf\nprovider: lumenfall\nmodel: pixverse-v5.6\n"
                     "params: {prompt: 'a fox {{ k }}'}\nmatrix: {k: [1, 2]}\n")
        code, err = _interrupt(m, times=2)
    said = " ".join(err.split())
    assert code == 130, err
    assert "interrupted with 2 jobs sent, not yet seen rendering: `gridrun cancel` now asks the provider to stop " \
           "those still queued, which it may bill anyway: it promises no refund" in said, said
    assert "no charge" not in said and "paid only once" not in said, said
    unreported = SimpleNamespace(cancelled=["a"], charged={"a": (0, None)})
    assert _cancel_charges(SimpleNamespace(**vars(unreported), queued_free=None)) == (
        "what it rendered may still be billed, and a job cancelled while still queued too: the provider promises "
        "no refund")
    assert _cancel_charges(SimpleNamespace(**vars(unreported), queued_free=True)) == "what it rendered may still be billed"

@pytest.mark.parametrize("json_lines", [False, True], ids=["plain", "json"])
def test_the_first_signals_note_is_not_listed_again_once_the_run_has_finished_the_jobs(
    tmp_path: Path, json_lines: bool
) -> None:
    """One Ctrl-C while paid jobs render: the run says at once that a second one would leave them in flight, then
    finishes them and ends interrupted. Its last lines (and the `end` event's `last_errors`) do not say that again:
    no job is in flight by then, and a second signal does nothing; the closing line says what is left."""
    m = write_manifest(tmp_path, n_seeds=2, styles=("anime",), run={"poll_interval": 0.1},
                       sim={"render_time": 1.5, "jitter": 0.0})
    proc = subprocess.Popen([sys.executable, "-m", "runner.cli", "run", str(m), "--no-report",
                             *(["--json"] if json_lines else [])], cwd=tmp_path, stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_for(lambda: proc.poll() is not None or in_flight(m) == 2)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130, err
    assert api.status(m).counts["done"] == 2, err  # the paid jobs finished
    if json_lines:
        events = [json.loads(x) for x in out.splitlines()]
        assert events[-1]["event"] == "end" and events[-1]["status"] == "interrupted", events[-1]
        assert not any("again leaves" in e for e in events[-1]["last_errors"]), events[-1]
    else:
        lines = err.splitlines()
        said = [i for i, x in enumerate(lines) if "Ctrl-C again leaves the 2 " in x]
        last = max(i for i, x in enumerate(lines) if " elapsed" in x)
        assert len(said) == 1 and said[0] < last, err  # said as it came, not under the last line


def test_the_first_signals_note_is_left_out_of_the_errors_a_run_ended_with() -> None:
    """What a first signal said (a second would leave the jobs in flight) is one of the run's last errors while it
    finishes them, and not once it has ended: its last lines, the `end` event and the live display's last frame
    are drawn from those figures."""
    from collections import deque
    from types import SimpleNamespace

    from runner.executor import Executor

    note = "Ctrl-C again leaves the 4 paid jobs in flight to the next run; interrupted by Ctrl-C: finishing them"
    run = SimpleNamespace(errors=deque(["job a: boom", note], maxlen=5), _stop_note=None, _interrupt_said=note,
                          _ended=False)
    assert Executor._last_errors(run) == ("job a: boom", note)  # type: ignore[arg-type]
    run._ended = True
    assert Executor._last_errors(run) == ("job a: boom",)  # type: ignore[arg-type]
    run._stop_note = "the output folder is full"
    assert Executor._last_errors(run) == ("the output folder is full", "job a: boom")  # type: ignore[arg-type]


def test_cancel_with_nothing_in_flight_needs_no_key_to_say_so(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """A finished run of a real provider's manifest: `cancel` asks nothing of the provider, so it says there is
    nothing in flight without its key, where it asked for the key first."""
    from runner.cli import main
    from runner.sim.config import SimConfig
    from runner.sim.serve import running_server

    monkeypatch.setenv("LUMENFALL_API_KEY", "k")
    with running_server(SimConfig.from_dict({"render_time": 0.1, "jitter": 0.0})) as url:
        m = write_manifest(tmp_path, n_seeds=1, styles=("anime",), provider="lumenfall", base_url=url, sim={},
                           run={"poll_interval": 0.1})
        assert main(["run", str(m), "--no-report"]) == 0
        capsys.readouterr()
        monkeypatch.delenv("LUMENFALL_API_KEY")
        assert main(["cancel", str(m)]) == 0
    captured = capsys.readouterr()
    assert captured.out.strip() == "nothing in flight to cancel" and captured.err == "", captured


def test_cancel_in_a_copy_of_a_project_refuses_to_cancel_the_renders_of_the_project_still_there(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A project's `.gridrun/` copied to another folder while its jobs render: `cancel` in the copy would cancel the
    original's renders, which it then pays for again. Refused, naming the folder, nothing cancelled; the original
    collects its videos. A project moved (its first folder gone) cancels as before."""
    import shutil

    from runner.cli import main

    a = tmp_path / "a"
    a.mkdir()
    m = _left_rendering(a)
    b = tmp_path / "b"
    shutil.copytree(a, b)
    capsys.readouterr()
    assert main(["cancel", str(b / m.name)]) == 1
    err = capsys.readouterr().err
    assert f"1 job in flight was sent by run 1, which recorded its videos in {a / 'outputs' / 't'}, a folder " \
           "still there" in " ".join(err.split()), err
    assert "Nothing was cancelled" in err
    assert in_flight(b / m.name) == 1 and in_flight(m) == 1

    shutil.rmtree(a)  # the project moved: the copy is the project now
    assert main(["cancel", str(b / m.name)]) == 0
    assert "cancelled 1 job at the provider" in capsys.readouterr().out
    assert in_flight(b / m.name) == 0


def test_cancel_in_a_checkout_sharing_the_state_dir_cancels_the_other_checkouts_renders(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Two checkouts of one project whose manifests name one `state_dir:` folder: the jobs a run of the first left
    rendering are cancelled from the second, where the cancel is recorded in the very state the first reads (no
    copy of anything, nothing that could be paid twice)."""
    import shutil

    from runner.cli import main

    shared = tmp_path / "shared-state"
    one, two = tmp_path / "one", tmp_path / "two"
    one.mkdir()
    two.mkdir()
    m = write_manifest(one, n_seeds=1, styles=("anime",), sim={"render_time": 30, "jitter": 0.0},
                       extra={"state_dir": str(shared)})
    assert api.run(m, report=False, options=RunOptions(timeout=0.3)).status == "incomplete"
    other = two / m.name
    shutil.copyfile(m, other)
    assert (one / "outputs" / "t").is_dir() and in_flight(other) == 1
    capsys.readouterr()
    assert main(["cancel", str(other)]) == 0, capsys.readouterr().err
    assert "cancelled 1 job at the provider" in capsys.readouterr().out
    assert in_flight(m) == 0 and in_flight(other) == 0


def test_cancel_after_the_manifest_moved_its_own_output_folder_cancels(tmp_path: Path,
                                                                       capsys: pytest.CaptureFixture[str]) -> None:
    """The same manifest file, its `outputs_dir:` changed since its run sent the jobs: no copy of anything, the
    state used in place; `cancel` cancels them (the run's earlier folder still there)."""
    import yaml

    from runner.cli import main

    m = _left_rendering(tmp_path)
    doc = yaml.safe_load(m.read_text())
    doc["outputs_dir"] = "elsewhere"
    m.write_text(yaml.safe_dump(doc, sort_keys=False))
    assert (tmp_path / "outputs" / "t").is_dir()
    capsys.readouterr()
    assert main(["cancel", str(m)]) == 0, capsys.readouterr().err
    assert "cancelled 1 job at the provider" in capsys.readouterr().out
    assert in_flight(m) == 0


def test_a_queued_job_that_starts_rendering_while_cancel_stops_the_queued_ones_waits_for_the_rendering_wave(
    tmp_path: Path,
) -> None:
    """The simulator renders one video at a time and charges the whole price of a render cancelled while
    rendering; each cancel request is answered slowly, so that a render ends while `cancel` is stopping the queued
    jobs, and the job queued first starts rendering in its slot. Cancelling that one as queued would free the slot
    for the next queued one, and so on down the queue, each charged as a render. `cancel` asks each queued job again
    right before its cancel, and leaves one found rendering for after every queued one: at most the render going on
    when it looked and the one that started meanwhile are charged (none, where both render to their end first)."""
    n = 20
    m = write_manifest(tmp_path, n_seeds=n, styles=("anime",), run={"concurrency": n},
                       sim={"render_time": 2.0, "jitter": 0.0, "concurrency": 1, "cancel_charge": 1.0,
                            "script": [{"route": "delete", "fault": "slow", "p": 1, "delay": 1.0}]})
    assert n > api.CANCEL_AT_ONCE
    assert api.run(m, report=False, options=RunOptions(timeout=0.3)).status == "incomplete"
    assert in_flight(m) == n
    result = api.cancel(m)
    assert len(result.cancelled) + len(result.finished) == n and not result.errors, result
    world = _world(m)
    charged = [v for v in world.videos.values() if v.cancel_micros]
    assert len(charged) <= 2, sorted(v.seq for v in charged)
    price = api.status(m).jobs[0].cost_estimate_micros
    assert world.stats()["billed_micros"] == price * (len(charged) + len(result.finished))


@pytest.mark.timeout(120)
def test_a_render_cancelled_at_the_provider_not_by_gridrun_ends_the_run_failed_not_as_gridrun_cancels(
        tmp_path: Path) -> None:
    """A video cancelled at the provider while the run follows it (by hand, another program, the provider itself):
    `gridrun cancel` did not ask for it (it refuses while a run holds the state), so it is not the user's decision
    through gridrun. The run names it so, does not credit `gridrun cancel`, and ends failed (exit 1), not
    `cancelled` (exit 0, which a script reads as success)."""
    with running_server(SimConfig(render_time=4.0, jitter=0.0, concurrency=2)) as url:
        m = write_manifest(tmp_path, n_seeds=2, styles=("anime",), run={"concurrency": 2}, base_url=url, sim={})
        proc = _run(m)
        try:
            wait_for(lambda: in_flight(m) >= 2)
            victim = next(j for j in api.status(m).jobs if j.provider_id)
            httpx.delete(f"{url}/videos/{victim.provider_id}", headers={"Authorization": "Bearer x"}).raise_for_status()
            _, err = proc.communicate(timeout=90)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
    said = " ".join(err.split())
    assert proc.returncode == 1, said
    assert "cancelled at the provider, not by gridrun" in said, said
    assert "`gridrun cancel`" not in said and "cancelled on request" not in said, said
    snap = api.status(m)
    assert snap.run.status == "failed"
    assert {j.key: j.state for j in snap.jobs}[victim.key] == "cancelled"


def test_a_render_gridrun_cancel_asked_to_cancel_is_the_users_decision_when_the_next_run_sees_it(
        tmp_path: Path) -> None:
    """`gridrun cancel` records that it asks before it sends the request; where the outcome is not recorded with it
    (the provider still rendering when asked again, or the state not written after), the next run that finds the
    video cancelled credits the cancel and ends `cancelled` (exit 0)."""
    m = _left_rendering(tmp_path, cancel_charge=0.4)
    (job,) = api.status(m).jobs
    with Store(tmp_path / ".gridrun" / "state.db") as store:
        jid = store.db.execute("SELECT id FROM jobs").fetchone()[0]
        assert not store.cancel_asked(jid)
    _world(m).cancel(job.provider_id)  # the cancel taken at the provider (its world in the state folder) ...
    with Store(tmp_path / ".gridrun" / "state.db") as store:  # ... and recorded asked, nothing after
        store.event(None, jid, "cancel-asked", {"provider_id": job.provider_id})
        assert store.cancel_asked(jid)
    result = api.run(m, report=False)
    assert (result.status, result.exit_code) == ("cancelled", 0), result.stats.last_errors


def test_a_cancel_request_is_recorded_before_it_is_sent_so_a_state_unwritable_after_leaves_it_the_users(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    """The provider takes the cancel request, and from then on the state cannot be written (a full disk): the
    request was recorded before it was sent (event `cancel-asked`), so the next run that finds the video cancelled
    credits the user's cancel (`cancelled`, exit 0), not a cancel made elsewhere (`failed`)."""
    from runner.cli import main
    from runner.providers.lumenfall import LumenfallProvider

    m = _left_rendering(tmp_path)
    key = next(iter(_states(m)))
    taken: list[str] = []
    send, batch = LumenfallProvider.cancel, Store.batch

    async def sent(self: Any, client: Any, video_id: str) -> None:
        await send(self, client, video_id)
        taken.append(video_id)

    def full_once_taken(self: Store) -> Any:
        if taken and not isinstance(self.db, FullDisk):
            self.db = FullDisk(self.db)
        return batch(self)

    monkeypatch.setattr(LumenfallProvider, "cancel", sent)
    monkeypatch.setattr(Store, "batch", full_once_taken)
    capsys.readouterr()
    assert main(["cancel", str(m)]) == 1
    monkeypatch.undo()
    err = " ".join(capsys.readouterr().err.split())
    assert f"the cancel request sent for 1 job ({key}) stands at the provider" in err, err
    assert taken and _world(m).stats()["cancelled"] == 1 and _states(m) == {key: "running"}
    result = api.run(m, report=False)
    assert (result.status, result.exit_code) == ("cancelled", 0), result.stats.last_errors
    assert _states(m) == {key: "cancelled"}


def test_after_cancel_settled_every_job_of_a_killed_run_status_and_run_speak_of_nothing_left_or_done(
        tmp_path: Path) -> None:
    """A run killed with its jobs at the provider, then `gridrun cancel` cancels every one: `status` says of the
    gone run that nothing is left to resume (not "`gridrun run` resumes it"), and the next run, with no job done,
    does not say "done, but for"."""
    m = write_manifest(tmp_path, n_seeds=2, styles=("anime",), run={"concurrency": 2},
                       sim={"render_time": 30.0, "jitter": 0.0})
    killed = subprocess.run([sys.executable, "-m", "runner.cli", "run", str(m), "--no-report"], capture_output=True,
                            text=True, cwd=tmp_path, timeout=90, env={**os.environ, "GRIDRUN_CRASH_AT": "after-submit:2"})
    assert killed.returncode == -signal.SIGKILL
    assert len(api.cancel(m).cancelled) == 2
    status = _cli("status", m)
    said = " ".join(status.stdout.split())
    assert "nothing is left to resume" in said and "resumes it" not in said, said
    again = _cli("run", m)
    said = " ".join(again.stderr.split())
    assert again.returncode == 0, said
    assert "no job done: 2 jobs cancelled on request (`gridrun cancel`)" in said and "done, but for" not in said, said


def test_a_signal_landing_while_a_class_names_its_fields_is_taken_a_moment_later() -> None:
    """Python turns an exception raised within a __set_name__ (a dataclass's fields, as a module defining one is
    imported) into a RuntimeError: a Ctrl-C landing there would crash the start with a traceback, not end the run
    as interrupted. Such a frame, or one it called, is not where the command's handler raises."""
    from runner import entry

    frames: list[Any] = []

    def deeper() -> None:
        frames.append(sys._getframe())

    class Named:
        def __set_name__(self, owner: type, name: str) -> None:
            frames.append(sys._getframe())
            deeper()

    @dataclasses.dataclass
    class Made:
        field: Any = Named()

    assert Made().field is not None and len(frames) == 2
    assert all(entry._unsafe(frame) for frame in frames)
    assert not entry._unsafe(sys._getframe())



def test_the_first_signals_note_counts_the_jobs_in_flight_as_the_run_goes_on() -> None:
    """The note of a first Ctrl-C names the jobs in flight as it came; drawn again while the run finishes them, it
    says it of those in flight then (seen rendering, paid; fewer, none), in its place among the last errors, and is
    told as the same note (a plain log says it once)."""
    from collections import Counter, deque
    from types import SimpleNamespace

    from runner.executor import Executor

    run = SimpleNamespace(counts=Counter(submitted=6), _not_left=(), provider=_caps(True), _ended=False, _stop_note=None, _said_of={})
    run._signal_note = lambda *a: Executor._signal_note(run, *a)  # type: ignore[arg-type]
    first = run._signal_note(signal.SIGINT, True)
    assert "6 jobs in flight" in first and "6 not yet seen rendering" in first, first
    run.errors, run._interrupt_said, run._interrupt_signal = deque([first, "job b: boom"], maxlen=5), first, \
        (signal.SIGINT, True)
    rendering = ("Ctrl-C again leaves the 2 paid jobs in flight to the next run; interrupted by Ctrl-C: finishing "
                 "them, no new submissions")
    over = "interrupted by Ctrl-C: no new submissions; nothing paid is in flight, the run ends"
    for counts, said in ((Counter(submitted=6), first), (Counter(running=2, done=4), rendering),
                         (Counter(done=6), over)):
        run.counts = counts
        Executor._interrupt_now(run)  # type: ignore[arg-type]
        assert Executor._last_errors(run) == (said, "job b: boom")  # type: ignore[arg-type]
        assert run._said_of.get(said, (said,))[0] == first  # the same note, told once


def test_a_sigterm_under_json_says_what_it_left_in_a_progress_event_before_the_end(tmp_path: Path) -> None:
    """`gridrun run --json` sent SIGTERM as its jobs render: a `progress` event carries the signal's note (what it
    left, named as SIGTERM) before the `end` event, which no longer lists it: a CI log read as JSON tells a SIGTERM's
    detach from a Ctrl-C's."""
    m = write_manifest(tmp_path, n_seeds=2, styles=("anime",), sim={"render_time": 60.0, "jitter": 0.0})
    proc = subprocess.Popen([sys.executable, "-m", "runner.cli", "run", str(m), "--no-report", "--json"],
                            cwd=tmp_path, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True)
    try:
        wait_for(lambda: in_flight(m) == 2)
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 130, out
    events = [json.loads(x) for x in out.splitlines() if x.startswith("{")]
    said = [e for e in events if e["event"] == "progress"
            and any(x.startswith("interrupted by SIGTERM: left the 2 jobs in flight to the next run") for x in e["last_errors"])]
    assert said and events[-1]["event"] == "end", events
    assert events.index(said[0]) < len(events) - 1
