"""The command's standard streams: closed by the launcher, full, or read no more."""

from __future__ import annotations

import contextlib
import errno
import io
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from execkit import check_outputs, in_flight, wait_for, write_manifest

from runner import api
from runner.errors import NotRecordedError


def _sh(line: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """`line` run by sh, "$GR" the `gridrun` command; its own output captured where it leaves it open."""
    return subprocess.run(["sh", "-c", line], check=False, capture_output=True, text=True, cwd=cwd,
                          env={**os.environ, "GR": f"{sys.executable} -m runner.cli"})


def test_a_closed_standard_output_or_error_leaves_the_commands_work_done(tmp_path: Path) -> None:
    """`>&-`, `2>&-` (a cron job's, a service's): the command does its work, no traceback; a run's videos and state
    are as with the streams open. What it meant to write on a closed standard output is lost, which it says as
    for a full disk (`>/dev/full`): exit 1, the stream named; a closed standard error leaves its own code."""
    m = write_manifest(tmp_path, n_seeds=1, styles=("anime",), sim={"render_time": 0.1, "jitter": 0.0})
    lost = "error: standard output could not be written: Bad file descriptor"
    for closing, code in ((">&-", 1), ("2>&-", 0), (">&- 2>&-", 1)):
        done = _sh(f"$GR validate {m} {closing}", tmp_path)
        assert done.returncode == code and "Traceback" not in done.stderr, (closing, done)
        assert (lost in done.stderr) is (closing == ">&-"), (closing, done)
    done = _sh(f"$GR run {m} --no-report >&- 2>err.txt", tmp_path)
    err = (tmp_path / "err.txt").read_text()
    assert done.returncode == 1 and "Traceback" not in err, (done, err)
    assert f"{lost}; the run itself ended done" in err, err
    assert api.status(m).counts["done"] == 1 and len(check_outputs(m)) == 1
    for closing, code in ((">&-", 1), ("2>&-", 0), (">&- 2>&-", 1)):
        done = _sh(f"$GR run {m} --json --no-report {closing}", tmp_path)
        assert done.returncode == code and "Traceback" not in done.stderr, (closing, done)


@pytest.mark.parametrize("words", [["plan"], ["matrix"], ["validate"], ["status"], ["status", "--json"], ["export"],
                                   ["plan", "--json"]])
def test_a_closed_standard_output_is_said_as_a_full_one(tmp_path: Path, words: list[str]) -> None:
    """`gridrun plan M >&-`: its output went nowhere, said as for `>/dev/full`, exit 1, not 0 with nothing written."""
    m = write_manifest(tmp_path, n_seeds=1, styles=("anime",), sim={"render_time": 0.1, "jitter": 0.0})
    assert _sh(f"$GR run {m} --no-report >/dev/null 2>&1", tmp_path).returncode == 0
    cmd = f"$GR {words[0]} {m} {' '.join(words[1:])}"
    full = _sh(f"{cmd} >/dev/full", tmp_path)
    closed = _sh(f"{cmd} >&-", tmp_path)
    assert full.returncode == closed.returncode == 1, (full, closed)
    assert "error: standard output could not be written: Bad file descriptor" in closed.stderr, closed.stderr


def _held(cmd: list[str], cwd: Path) -> subprocess.Popen[str]:
    """`cmd` started with Ctrl-C and SIGTERM held by the kernel (a child inherits the blocked signals) until gridrun
    takes them, its very first step: one sent at once lands there, before anything else is imported."""
    held = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
    try:
        return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=cwd)
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, held)


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
@pytest.mark.parametrize("words", [["run", "--json"], ["retry", "--json"], ["status", "--watch", "--json"]],
                         ids=["run", "retry", "watch"])
def test_json_lines_interrupted_as_the_command_starts_end_with_an_end_event(
    tmp_path: Path, signum: int, words: list[str]
) -> None:
    """Ctrl-C or SIGTERM while the command still loads: its JSON lines end with the `end` event all the same, one,
    `interrupted` for a run (a watch: null, as for any error that stops it), exit 130, nothing else on standard
    output and nothing sent."""
    m = write_manifest(tmp_path, n_seeds=1, styles=("anime",))
    proc = _held([sys.executable, "-m", "runner.cli", words[0], str(m), *words[1:]], tmp_path)
    proc.send_signal(signum)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130 and "Traceback" not in err, (proc.returncode, err)
    status = None if words[0] == "status" else "interrupted"
    assert [json.loads(line) for line in out.splitlines()] == [
        {"event": "end", "status": status, "exit_code": 130, "errors": ["interrupted"]}], out


@pytest.mark.parametrize("json_lines", [True, False], ids=["json", "plain"])
def test_a_watch_whose_reader_is_gone_ends_while_the_run_goes_on(tmp_path: Path, json_lines: bool) -> None:
    """`status --watch | head -1` (its JSON lines or its plain ones, both on standard output): once its reader is
    gone the watch ends, exit 0, not once the run it watches ends; the run goes on."""
    m = write_manifest(tmp_path, n_seeds=2, styles=("anime",), sim={"render_time": 600.0, "jitter": 0.0})
    run = subprocess.Popen([sys.executable, "-m", "runner.cli", "run", str(m), "--no-report"], stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL, cwd=tmp_path)
    try:
        wait_for(lambda: in_flight(m) == 2)
        words = ["--json"] if json_lines else []
        watch = subprocess.Popen([sys.executable, "-m", "runner.cli", "status", str(m), "--watch", "--every", "0.2",
                                  *words], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path)
        try:
            lines = watch.stdout
            assert lines is not None and ('"event": "progress"' if json_lines else "| spent ") in lines.readline()
            lines.close()
            assert watch.wait(timeout=60) == 0
            assert run.poll() is None and in_flight(m) == 2
        finally:
            if watch.poll() is None:
                watch.kill()
            watch.communicate()
    finally:
        run.kill()
        run.wait()


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="no /dev/full")
def test_a_standard_output_that_cannot_be_written_is_named_and_a_run_still_runs(tmp_path: Path) -> None:
    """`>/dev/full`: the error names standard output, not a disk of gridrun's to free; the command exits 1. A run,
    even with --json, runs all the same (its outcome is in the state) and says how it ended."""
    m = write_manifest(tmp_path, n_seeds=1, styles=("anime",), sim={"render_time": 0.1, "jitter": 0.0})
    for line in (f"$GR validate {m}", f"$GR matrix {m}", f"$GR plan {m} --json"):
        done = _sh(f"{line} >/dev/full", tmp_path)
        assert done.returncode == 1, (line, done)
        assert "standard output could not be written: No space left on device" in done.stderr, (line, done.stderr)
        assert "free space" not in done.stderr and "Traceback" not in done.stderr, (line, done.stderr)
    for words in ("--json --no-report", "--force --no-report"):
        done = _sh(f"$GR run {m} {words} >/dev/full", tmp_path)
        assert done.returncode == 1, done
        assert "standard output could not be written" in done.stderr and "the run itself ended done" in done.stderr, (
            done.stderr)
        assert "free space" not in done.stderr and "Traceback" not in done.stderr, done.stderr
        assert api.status(m).run.status == "done" and api.status(m).counts["done"] == 1
    for words in ("", "--json"):
        done = _sh(f"$GR status {m} {words} >/dev/full", tmp_path)
        assert done.returncode == 1 and "standard output could not be written" in done.stderr, done


@pytest.mark.skipif(not hasattr(signal, "SIGHUP"), reason="no hangups here")
@pytest.mark.parametrize("ignored", [False, True], ids=["default", "nohup"])
def test_a_hangup_as_the_command_starts_ends_it_as_interrupted_unless_ignored(tmp_path: Path, ignored: bool) -> None:
    """A hangup (the terminal closed) while gridrun still loads ends it as Ctrl-C does, "interrupted", exit 130,
    nothing sent; under nohup, which ignores it, the run goes on to its end."""
    m = write_manifest(tmp_path, n_seeds=1, styles=("anime",), sim={"render_time": 0.1, "jitter": 0.0})
    held = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGHUP})
    try:
        nohup = ["sh", "-c", 'trap "" HUP; exec "$@"', "sh"] if ignored else []
        proc = subprocess.Popen([*nohup, sys.executable, "-m", "runner.cli", "run", str(m), "--no-report"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path)
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, held)
    proc.send_signal(signal.SIGHUP)
    _, err = proc.communicate(timeout=60)
    assert "Traceback" not in err, err
    if ignored:
        assert proc.returncode == 0 and api.status(m).counts["done"] == 1, (proc.returncode, err)
    else:
        assert proc.returncode == 130 and "interrupted" in err, (proc.returncode, err)
        with pytest.raises(NotRecordedError):
            api.status(m)


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_a_signal_a_launcher_set_to_be_ignored_stays_ignored_for_the_whole_run(tmp_path: Path, signum: int) -> None:
    """`trap '' INT TERM` (or a shell's background job, whose Ctrl-C is ignored): a Ctrl-C or SIGTERM sent while
    the run has jobs in flight does not stop it; it runs to its end, every job done."""
    m = write_manifest(tmp_path, n_seeds=2, styles=("anime",), run={"concurrency": 2},
                       sim={"render_time": 1.0, "jitter": 0.0})
    proc = subprocess.Popen(["sh", "-c", 'trap "" INT TERM HUP; exec "$@"', "sh", sys.executable, "-m", "runner.cli",
                             "run", str(m), "--no-report"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, cwd=tmp_path)
    try:
        wait_for(lambda: in_flight(m) >= 1)
        proc.send_signal(signum)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0 and "interrupted" not in err, (proc.returncode, err)
    assert api.status(m).counts["done"] == 2


class _Full(io.StringIO):
    def write(self, s: str) -> int:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def test_each_call_of_main_is_a_command_of_its_own(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A program calling `main` more than once: a standard output that failed once, or an end event an earlier
    command wrote, does not carry over to the next command."""
    from runner import cli

    m = write_manifest(tmp_path, n_seeds=1, styles=("anime",), sim={"render_time": 0.1, "jitter": 0.0})
    with monkeypatch.context() as patched:
        patched.setattr(sys, "stdout", _Full())
        assert cli.main(["validate", str(m)]) == 1
    assert "standard output could not be written" in capsys.readouterr().err
    assert cli.main(["validate", str(m)]) == 0
    assert "valid" in capsys.readouterr().out
    assert cli.main(["run", str(m), "--json", "--no-report"]) == 0
    assert json.loads(capsys.readouterr().out.splitlines()[-1])["event"] == "end"

    def interrupted(*args: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "cmd_run", interrupted)  # before the run writes any line
    assert cli.main(["run", str(m), "--json"]) == 130
    assert [json.loads(line) for line in capsys.readouterr().out.splitlines()] == [
        {"event": "end", "status": "interrupted", "exit_code": 130, "errors": ["interrupted"]}]


def _stalled_pipe() -> tuple[int, int, int]:
    """A pipe of one page whose reader reads nothing yet, already full: the next write to it waits. (read end,
    write end, bytes of filler before what is written next)."""
    import fcntl

    r, w = os.pipe()
    fcntl.fcntl(w, 1031, 4096)  # F_SETPIPE_SZ: a log shipper's stall reached after a few lines, not 64 KiB
    os.set_blocking(w, False)
    filled = 0
    for chunk in (4096, 1):
        with contextlib.suppress(BlockingIOError):
            while True:
                filled += os.write(w, b"x" * chunk)
    os.set_blocking(w, True)
    return r, w, filled


def _done(m: Path) -> int:
    """The jobs of manifest `m` done, as its state says; 0 before it has one."""
    try:
        return api.status(m).counts.get("done", 0)
    except NotRecordedError:
        return 0


def _drained(r: int) -> bytes:
    with os.fdopen(r, "rb") as reader:
        return reader.read()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="F_SETPIPE_SZ is Linux's")
@pytest.mark.parametrize("stream", ["json", "plain"])
def test_a_reader_that_stops_reading_holds_up_no_paid_work(tmp_path: Path, stream: str) -> None:
    """Progress written to a pipe nobody reads (a stalled log shipper, `| less` not scrolled): every job is still
    polled and downloaded, its state recorded, while the pipe stays unread; the command then waits for its reader,
    which gets every line, the JSON lines valid and ending with `end`, the plain lines with the run's last."""
    m = write_manifest(tmp_path, n_seeds=3, sim={"render_time": 0.3, "jitter": 0.0})
    r, w, filled = _stalled_pipe()
    cmd = [sys.executable, "-m", "runner.cli", "run", str(m), "--no-report", *(["--json"] if stream == "json" else [])]
    with (tmp_path / "err.txt").open("wb") as err:
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=w if stream == "json" else subprocess.DEVNULL,
                                stderr=w if stream == "plain" else err, cwd=tmp_path)
    os.close(w)
    try:
        wait_for(lambda: proc.poll() is not None or _done(m) == 6)
        assert proc.poll() is None, "the command ended while its reader read nothing"
        assert len(check_outputs(m)) == 6  # every video downloaded, as its state says
        written = _drained(r)[filled:].decode()
        assert proc.wait(timeout=60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    lines = written.splitlines()
    if stream == "json":
        events = [json.loads(x) for x in lines]
        assert events[-1]["event"] == "end" and events[-1]["status"] == "done", events[-1]
        assert [e["event"] for e in events].count("end") == 1
    else:
        assert lines and lines[-1].startswith("done 6 |"), written
        assert "Traceback" not in written


@pytest.mark.parametrize("stdout", ["closed", "full"])
def test_a_served_simulator_serves_whatever_its_standard_output(tmp_path: Path, stdout: str) -> None:
    """`gridrun sim serve >&- 2>log &` (a launcher's, a service's) or `>/dev/full`: the simulator serves all the
    same, its listening line said on standard error instead; a write that failed is not a listen failure."""
    import httpx

    def closed() -> None:
        os.close(1)

    with contextlib.ExitStack() as stack:
        out = stack.enter_context(open("/dev/full", "wb")) if stdout == "full" else None
        proc = subprocess.Popen([sys.executable, "-m", "runner.cli", "sim", "serve", "--host", "127.0.0.1",
                                 "--port", "0", "--render-time", "0"], cwd=tmp_path, stdin=subprocess.DEVNULL,
                                stdout=out, stderr=subprocess.PIPE, text=True,
                                preexec_fn=closed if stdout == "closed" else None)  # noqa: PLW1509
        stack.enter_context(proc)
        try:
            first = proc.stderr.readline()
            assert "gridrun sim: listening on http://127.0.0.1:" in first, (first, proc.stderr.read())
            url = first.split("listening on ", 1)[1].split()[0]
            assert httpx.get(url.rsplit("/v1", 1)[0] + "/_sim/stats", timeout=30).status_code == 200
            proc.send_signal(signal.SIGTERM)
            rest = proc.stderr.read()
            assert proc.wait(timeout=60) in (0, 130), rest
            assert "cannot listen" not in rest and "Traceback" not in rest, rest
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()



def test_an_interrupt_while_the_end_event_waits_behind_unread_lines_waits_for_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The `end` event given to the lines' writer behind a line a stalled reader has not taken (a full pipe), and a
    second Ctrl-C or SIGTERM out of the wait for it: the command, which exits as soon as `end_interrupted` returns,
    writes that event before it does (its fallback not skipped as if the event were written): the reader, reading
    later, gets it, last and once."""
    import threading
    import traceback

    from rich.console import Console

    from runner import entry
    from runner.progress import Progress

    gate, returned = threading.Event(), threading.Event()
    lines: list[str] = []

    class Stalled(io.StringIO):
        def write(self, text: str) -> int:
            gate.wait()  # the reader reads nothing yet
            lines.append(text)
            return len(text)

    def waiting_in_end_interrupted() -> bool:
        frame = sys._current_frames()[threading.main_thread().ident]
        return any(f.name == "end_interrupted" for f in traceback.extract_stack(frame))

    def reader() -> None:  # reads once the command waits for it, or has given up waiting
        wait_for(lambda: returned.is_set() or waiting_in_end_interrupted())
        gate.set()

    monkeypatch.setattr(sys, "stdout", Stalled())
    entry.lines_begin()
    p = Progress(Console(file=io.StringIO()), json_lines=True, background=True)
    p._event({"event": "progress"}, progress=True)  # the writer waits on it
    p._event({"event": "end", "status": "interrupted", "exit_code": 130, "errors": ["interrupted"]})
    thread = threading.Thread(target=reader)
    thread.start()
    try:
        entry.end_interrupted(["run", "m.yaml", "--json"])
        written = [json.loads(x) for x in "".join(lines).splitlines()]  # all the reader gets: the process ends
    finally:
        returned.set()
        thread.join()
        p.flush()
    assert [e["event"] for e in written] == ["progress", "end"], written


def _ended(m: Path) -> bool:
    """Whether the last run of manifest `m` has recorded its end."""
    try:
        return api.status(m).run.ended_at is not None
    except NotRecordedError:
        return False


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="F_SETPIPE_SZ is Linux's")
@pytest.mark.parametrize("stream", ["json", "plain", "closing"])
def test_a_signal_ends_the_wait_for_a_reader_that_never_reads_once_the_run_is_recorded(
    tmp_path: Path, stream: str
) -> None:
    """The run over and recorded, the command waits for its reader to take its last lines; a reader that never
    reads (a hung log shipper) would hold it for ever. SIGTERM then ends it at once, with the run's exit code, what
    the reader has not read given up; the run's record is whole. "closing": plain lines, standard output alone
    stalled, where the command's closing lines (`videos: ...`) go, written after the progress lines."""
    m = write_manifest(tmp_path, n_seeds=3, sim={"render_time": 0.3, "jitter": 0.0})
    r, w, _ = _stalled_pipe()
    cmd = [sys.executable, "-m", "runner.cli", "run", str(m), "--no-report", *(["--json"] if stream == "json" else [])]
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=w if stream in ("json", "closing") else
                            subprocess.DEVNULL, stderr=w if stream == "plain" else subprocess.DEVNULL, cwd=tmp_path)
    os.close(w)

    def ended_by_a_signal() -> bool:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)  # each one let go until the run's last lines wait for their reader
        return proc.poll() is not None

    try:
        wait_for(lambda: proc.poll() is not None or _ended(m))
        assert proc.poll() is None, "the command ended while its reader read nothing"
        wait_for(ended_by_a_signal)
        assert proc.wait() == 0  # the run's: done
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(r)
    assert api.status(m).run.status == "done" and len(check_outputs(m)) == 6


def test_before_a_run_began_a_signal_does_not_give_up_the_end_event_waiting_for_its_reader(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Ctrl-C or SIGTERM while the command loads (no run begun, nothing recorded), its `end` event waiting behind a
    stalled reader: a second one does not end the command at once with the event given up (as it does once a run
    has recorded its end): it ends the wait as an interrupt, and `end_interrupted` still waits for the event."""
    import threading
    import traceback

    from rich.console import Console

    from runner import entry
    from runner.progress import Progress

    gate = threading.Event()
    seen: list[int | None] = []

    class Stalled(io.StringIO):
        def write(self, text: str) -> int:
            gate.wait()
            return len(text)

    def waiting_in_flush() -> bool:
        frame = sys._current_frames()[threading.main_thread().ident]
        return any(f.name == "flush" and f.filename.endswith("progress.py") for f in traceback.extract_stack(frame))

    def reader() -> None:
        wait_for(waiting_in_flush)
        seen.append(entry._leave_code)  # what a signal now would do: None, an interrupt as any
        gate.set()

    monkeypatch.setattr(sys, "stdout", Stalled())
    monkeypatch.setattr(entry, "_command", True)
    entry.lines_begin()
    thread = threading.Thread(target=reader)
    thread.start()
    try:
        Progress(Console(file=io.StringIO()), json_lines=True, background=True).failed(
            status="interrupted", exit_code=130, errors=["interrupted"])
    finally:
        gate.set()
        thread.join()
    assert seen == [None]


@pytest.mark.parametrize("columns", ["0", "-1", "wide"])
def test_a_columns_that_gives_no_width_leaves_every_line_written(tmp_path: Path, columns: str) -> None:
    """COLUMNS=0 (a launcher's, a container's), negative or a word gives no width: the command writes its lines as
    with none given, its errors and its closing lines included, not nothing at all at a width of 0."""
    m = write_manifest(tmp_path, n_seeds=1, sim={"render_time": 0.0, "jitter": 0.0})

    def gridrun(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "runner.cli", *args], capture_output=True, text=True,
                              cwd=tmp_path, env={**os.environ, "COLUMNS": columns}, timeout=120, check=False)

    missing = gridrun("plan", "missing.yaml")
    assert missing.returncode == 2 and "missing.yaml" in missing.stderr, missing
    ran = gridrun("run", str(m), "--no-report")
    assert ran.returncode == 0 and "videos: " in ran.stdout and "done 2 |" in ran.stderr, ran
    status = gridrun("status", str(m))
    assert status.returncode == 0 and status.stdout.splitlines()[0].startswith(f"{m.stem} run 1 (done"), status


@pytest.mark.parametrize("columns", ["0", "-1", "wide"])
def test_a_columns_that_gives_no_width_leaves_tables_unbounded_off_a_terminal(
    monkeypatch: pytest.MonkeyPatch, columns: str
) -> None:
    """Off a terminal a table is drawn as wide as its rows (each row one line for `grep`) unless COLUMNS gives a
    width: one that gives none (0, negative, a word) leaves it so."""
    from runner import cli

    monkeypatch.setenv("COLUMNS", columns)
    assert not cli.out.is_terminal
    assert cli._table_width() == cli.UNBOUNDED
    monkeypatch.setenv("COLUMNS", "90")
    assert cli._table_width() == cli.out.width  # one that gives a width: the console's


def _writing_to_a_full_pipe(pid: int) -> bool:
    """Whether process `pid` waits in a write to a pipe (its reader reads nothing), as the kernel says."""
    try:
        return "pipe_write" in Path(f"/proc/{pid}/wchan").read_text()
    except OSError:
        return False


@pytest.mark.skipif(not Path("/proc/self/wchan").exists(), reason="the kernel says not where a process waits")
@pytest.mark.parametrize("json_lines", [True, False], ids=["json", "plain"])
def test_one_signal_ends_a_watch_whose_reader_never_reads(tmp_path: Path, json_lines: bool) -> None:
    """`timeout 60 gridrun status --watch --json | consumer`, the consumer hung: the watch waits in a write to it.
    One SIGTERM (as `timeout` sends; or Ctrl-C, or a hangup) ends the watch at once, interrupted, as it ends a run
    whose reader stalls; the run it watched goes on."""
    m = write_manifest(tmp_path, n_seeds=2, styles=("anime",), sim={"render_time": 60.0, "jitter": 0.0})
    run = subprocess.Popen([sys.executable, "-m", "runner.cli", "run", str(m), "--no-report"], cwd=tmp_path,
                           stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    r, w, _ = _stalled_pipe()
    watch = None
    try:
        wait_for(lambda: in_flight(m) == 2)
        watch = subprocess.Popen([sys.executable, "-m", "runner.cli", "status", str(m), "--watch",
                                  *(["--json"] if json_lines else [])], cwd=tmp_path, stdin=subprocess.DEVNULL,
                                 stdout=w, stderr=subprocess.DEVNULL)
        os.close(w)
        wait_for(lambda: watch.poll() is not None or _writing_to_a_full_pipe(watch.pid))
        assert watch.poll() is None, "the watch ended while its reader read nothing"
        watch.send_signal(signal.SIGTERM)
        wait_for(lambda: watch.poll() is not None)  # one signal: no second one sent
        assert watch.returncode == 130
        assert run.poll() is None  # the run goes on
    finally:
        for proc in (watch, run):
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.wait()
        if watch is None:
            os.close(w)
        os.close(r)


def test_an_end_event_whose_write_an_interrupt_cut_is_written_by_the_commands_fallback(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An interrupt that cuts the `end` event's write short (Ctrl-C while its line waits for the reader) leaves it
    unwritten: the command's fallback (`entry.end_interrupted`) still writes one, not skipped as if it were."""
    from rich.console import Console

    from runner import entry
    from runner.progress import Progress

    class Cut(io.StringIO):
        def write(self, text: str) -> int:
            raise KeyboardInterrupt

    monkeypatch.setattr(sys, "stdout", Cut())
    entry.lines_begin()
    with pytest.raises(KeyboardInterrupt):
        Progress(Console(file=io.StringIO()), json_lines=True).failed(status=None, exit_code=2, errors=["x"])
    written = io.StringIO()
    monkeypatch.setattr(sys, "stdout", written)
    entry.end_interrupted(["status", "m.yaml", "--watch", "--json"])
    assert [json.loads(x)["event"] for x in written.getvalue().splitlines()] == ["end"]



@pytest.mark.skipif(not Path("/proc/self/wchan").exists(), reason="the kernel says not where a process waits")
@pytest.mark.parametrize("json_lines", [True, False], ids=["json", "plain"])
@pytest.mark.parametrize("said", ["plan", "errors"])
def test_a_command_interrupted_before_a_run_ends_at_the_next_signal_though_standard_error_is_never_read(
    tmp_path: Path, json_lines: bool, said: str
) -> None:
    """What a command says on standard error before a run begins (`run --force`'s plan against the state, a
    manifest's errors) waits for a reader that never reads (a hung log shipper). Ctrl-C there interrupts the
    command, whose goodbye ("interrupted") then waits on the same reader: a second Ctrl-C ends it at once, 130,
    nothing run. With --json, standard output (read) still gets one `end` event."""
    m = write_manifest(tmp_path, n_seeds=3, styles=("anime",), sim={"render_time": 0.0, "jitter": 0.0})
    first = subprocess.run([sys.executable, "-m", "runner.cli", "run", str(m), "--no-report"], cwd=tmp_path,
                           stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
    assert first.returncode == 0
    if said == "errors":
        m = tmp_path / "bad.yaml"
        m.write_text("version: 1\nname: bad\nmodel: no-such-model\nparams: {prompt: a}\n", encoding="utf-8")
    r, w, _ = _stalled_pipe()
    cmd = [sys.executable, "-m", "runner.cli", "run", str(m), "--no-report", "--force",
           *(["--json"] if json_lines else [])]
    with (tmp_path / "out.txt").open("wb") as out:
        proc = subprocess.Popen(cmd, cwd=tmp_path, stdin=subprocess.DEVNULL, stdout=out, stderr=w)
    os.close(w)
    try:
        wait_for(lambda: proc.poll() is not None or _writing_to_a_full_pipe(proc.pid))
        assert proc.poll() is None, "the command ended while its reader read nothing"
        proc.send_signal(signal.SIGINT)
        wait_for(lambda: proc.poll() is not None or _writing_to_a_full_pipe(proc.pid))  # its goodbye, stalled too
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=60) == 130
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(r)
    assert len(api.runs(tmp_path / "t.yaml")) == 1  # the first run only: the forced one never began
    if json_lines:
        events = [json.loads(line) for line in (tmp_path / "out.txt").read_text().splitlines()]
        assert [e["event"] for e in events] == ["end"], events  # the errors' own, written before they were said
        assert events[0]["exit_code"] == (130 if said == "plan" else 2), events
