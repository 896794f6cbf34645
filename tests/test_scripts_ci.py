"""gridrun driven by scripts and CI: a manifest piped in, what standard output holds for a script whatever
happened, and the exit codes a pipeline branches on."""

from __future__ import annotations

import errno
import io
import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest
from execkit import sim_provider, stats, write_manifest

from runner import api
from runner.cli import main

NOT_A_FILE = "not a file but standard input, a pipe or a device"
COMMANDS = ["validate", "plan", "run", "retry", "status", "export", "cancel", "report", "matrix"]


def _kept_here(tmp_path: Path, **kw: Any) -> Path:
    """A manifest whose state and outputs go to folders of the test's own wherever it is read from: a manifest read
    as /dev/stdin that was not refused would write them there, not under /dev/."""
    return write_manifest(tmp_path, n_seeds=1, styles=("anime",), sim={"render_time": 0.1, "jitter": 0.0},
                          extra={"state_dir": str(tmp_path / "state"), "outputs_dir": str(tmp_path / "videos")}, **kw)


def _gridrun(line: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """`line` run by sh, "$GR" the `gridrun` command."""
    return subprocess.run(["sh", "-c", line], check=False, capture_output=True, text=True, cwd=cwd, timeout=120,
                          env={**os.environ, "GR": f"{sys.executable} -m runner.cli"})


@pytest.mark.parametrize("command", COMMANDS)
def test_a_manifest_piped_in_as_dev_stdin_is_refused_before_anything_is_made(tmp_path: Path, command: str) -> None:
    """`envsubst < m.tmpl | gridrun run /dev/stdin`: the state and videos would go beside the "file", under /dev/
    (lost with the machine: the next run pays every job again). Refused as `-` is, exit 2, by every command that
    takes a manifest, nothing made or sent."""
    m = _kept_here(tmp_path)
    done = _gridrun(f"cat {m.name} | $GR {command} /dev/stdin", tmp_path)
    assert done.returncode == 2, done
    assert f"error: /dev/stdin: {NOT_A_FILE}" in done.stderr and "save it to one (m.yaml)" in done.stderr, done
    assert "Traceback" not in done.stderr, done
    assert sorted(p.name for p in tmp_path.iterdir()) == [m.name], list(tmp_path.iterdir())


@pytest.mark.parametrize("line", ["$GR run /dev/stdin --json < t.yaml", "$GR plan /dev/fd/3 3< t.yaml",
                                  "$GR validate /proc/self/fd/0 < t.yaml"])
def test_a_manifest_named_by_a_file_descriptor_is_refused_even_when_it_holds_a_file(tmp_path: Path,
                                                                                    line: str) -> None:
    """`gridrun run /dev/stdin < m.yaml`: the descriptor holds a regular file, but its name is under /dev/ or
    /proc/, where the manifest's state would go: refused all the same, and `run --json` ends with its `end`."""
    m = _kept_here(tmp_path)
    done = _gridrun(line, tmp_path)
    assert done.returncode == 2 and NOT_A_FILE in done.stderr, done
    if "--json" in line:
        end = json.loads(done.stdout.splitlines()[-1])
        assert end["event"] == "end" and end["exit_code"] == 2 and NOT_A_FILE in end["errors"][0], end
    assert sorted(p.name for p in tmp_path.iterdir()) == [m.name], list(tmp_path.iterdir())


@pytest.mark.parametrize("command", ["validate", "plan", "run", "status", "cancel", "matrix"])
def test_a_fifo_manifest_is_refused_without_waiting_for_its_writer(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], command: str
) -> None:
    """A FIFO (`mkfifo`, `<(...)`) is refused before it is opened; a writer, if there is one, is not read. Without
    the refusal, the manifest written into it would be read and run."""
    m = _kept_here(tmp_path)
    fifo = tmp_path / "piped.yaml"
    os.mkfifo(fifo)
    stop = threading.Event()

    def writer() -> None:  # feeds the FIFO whenever a reader opens it, until the test ends
        while not stop.is_set():
            try:
                fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
            except OSError:  # no reader yet
                stop.wait(0.01)
                continue
            try:
                os.set_blocking(fd, True)
                os.write(fd, m.read_bytes())
            except OSError:
                pass
            finally:
                os.close(fd)

    feeding = threading.Thread(target=writer, daemon=True)
    feeding.start()
    try:
        code = main([command, str(fifo)])
    finally:
        stop.set()
        feeding.join()
    err = capsys.readouterr().err
    assert code == 2 and f"{fifo}: {NOT_A_FILE}" in err, (code, err)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([m.name, fifo.name]), list(tmp_path.iterdir())


def test_no_progress_event_of_a_run_not_yet_recorded_while_another_program_holds_the_state(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A sqlite3 shell holds state.db as a run starts: `held` says why the run waits, and no `progress` event
    comes with run 0 and no jobs (a script keying on `.run` would read a run that does not exist). Once the shell
    lets go, the run goes on, every `progress` of its own id."""
    from runner import executor as ex_mod
    from runner import state as state_mod

    monkeypatch.setattr(state_mod, "BUSY_TIMEOUT", 0.1)
    m = write_manifest(tmp_path, n_seeds=2, styles=("anime",), sim={"render_time": 0.1, "jitter": 0.0})
    prov = sim_provider(m)
    monkeypatch.setattr(api, "_provider", lambda p: prov)
    assert main(["run", str(m), "--no-report"]) == 0
    capsys.readouterr()
    db = tmp_path / ".gridrun" / "state.db"
    busy = ex_mod.Executor._state_busy
    other = sqlite3.connect(db, isolation_level=None, timeout=0, check_same_thread=False)

    def let_go(self: Any, waited: float, ended: bool) -> None:
        busy(self, waited, ended)
        if not ended and other.in_transaction:
            other.execute("ROLLBACK")  # said once: the shell closes

    monkeypatch.setattr(ex_mod.Executor, "_state_busy", let_go)
    with closing(other):
        other.execute("BEGIN IMMEDIATE")
        code = main(["run", str(m), "--no-report", "--force", "--json"])
    events = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert code == 0, events
    assert [e["event"] for e in events].count("held") == 1, events
    end = events[-1]
    assert end["event"] == "end" and end["run"] == 2 and end["total"] == 2, end
    progress = [e for e in events if e["event"] == "progress"]
    assert progress and all(e["run"] == 2 and e["total"] == 2 for e in progress), progress


def _object(out: str) -> dict[str, Any]:
    """The one JSON document standard output holds."""
    doc = json.loads(out)
    assert isinstance(doc, dict), out
    return doc


@pytest.mark.parametrize(("words", "said"), [
    (["status", "--json", "--last", "2"], "--last goes with --runs"),
    (["status", "--json", "--bogus"], "unrecognized arguments: --bogus"),
    (["status", "--runs", "--json", "--last", "-1"], "argument --last: a number of runs is 0 (all of them) or more, got -1"),
    (["plan", "--json", "--bogus"], "unrecognized arguments: --bogus"),
    (["matrix", "--json", "--bogus"], "unrecognized arguments: --bogus"),
])
def test_a_json_command_given_a_command_line_it_cannot_read_prints_its_error_object(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], words: list[str], said: str
) -> None:
    """`gridrun status M --json --last 2 | jq .status`: a script that always parses standard output (as `run
    --json` allows) reads the command's error object, exit 2, not empty input."""
    m = write_manifest(tmp_path, n_seeds=1, styles=("anime",))
    with pytest.raises(SystemExit) as exc:
        main([words[0], str(m), *words[1:]])
    got = capsys.readouterr()
    doc = _object(got.out)
    assert exc.value.code == 2 and doc["exit_code"] == 2 and doc["errors"] == [said], (doc, got.err)
    assert said in got.err
    keys = {"status": ["run", "manifest", "status", "exit_code", "errors"],
            "plan": ["format", "manifest", "exit_code", "errors"], "matrix": ["manifest", "file", "exit_code", "errors"]}
    assert list(doc) == keys[words[0]], doc


def test_matrix_json_of_an_invalid_file_prints_an_error_object(tmp_path: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    m = write_manifest(tmp_path, n_seeds=1, styles=("anime",), run={"concurrency": -1})
    assert main(["matrix", str(m), "--json"]) == 2
    got = capsys.readouterr()
    doc = _object(got.out)
    assert doc["manifest"] == str(m.resolve()) and doc["file"] == str(m) and doc["exit_code"] == 2, doc
    assert len(doc["errors"]) == 1 and "run.concurrency" in doc["errors"][0] and doc["errors"][0] in got.err, doc


def test_matrix_json_refusal_names_the_manifest_absolute_as_plan_json_does(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    """Its `manifest` is the file's absolute path, as `plan --json`'s refusal gives it; `file` the path as typed."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "bad.yaml").write_text("matrix:\n  a: [1, 2\n", encoding="utf-8")
    assert main(["matrix", "bad.yaml", "--json"]) == 2
    doc = _object(capsys.readouterr().out)
    assert main(["plan", "bad.yaml", "--json"]) == 2
    planned = _object(capsys.readouterr().out)
    assert doc["manifest"] == planned["manifest"] == os.path.join(os.getcwd(), "bad.yaml"), (doc, planned)
    assert doc["file"] == "bad.yaml" and doc["exit_code"] == 2 and len(doc["errors"]) == 1, doc


def _held(cmd: list[str], cwd: Path) -> subprocess.Popen[str]:
    """`cmd` started with Ctrl-C and SIGTERM held by the kernel until gridrun takes them, its very first step: one
    sent at once lands there, before anything else is imported."""
    held = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
    try:
        return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=cwd)
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, held)


@pytest.mark.parametrize("words", [["plan", "--json"], ["status", "--json"], ["status", "--runs", "--json"],
                                   ["matrix", "--json"]], ids=["plan", "status", "runs", "matrix"])
def test_a_json_command_interrupted_as_it_starts_prints_its_error_object(tmp_path: Path, words: list[str]) -> None:
    """SIGTERM while the command still loads: exit 130, and its error object on standard output, one."""
    m = write_manifest(tmp_path, n_seeds=1, styles=("anime",))
    proc = _held([sys.executable, "-m", "runner.cli", words[0], str(m), *words[1:]], tmp_path)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130 and "Traceback" not in err, (proc.returncode, err)
    doc = _object(out)
    assert doc["exit_code"] == 130 and doc["errors"] == ["interrupted"], doc


def test_a_json_command_interrupted_while_it_plans_names_the_manifest_in_its_error_object(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    m = write_manifest(tmp_path, n_seeds=1, styles=("anime",))

    def interrupted(*args: Any, **kw: Any) -> Any:
        raise KeyboardInterrupt

    monkeypatch.setattr(api, "plan", interrupted)
    assert main(["plan", str(m), "--json"]) == 130
    doc = _object(capsys.readouterr().out)
    assert doc == {"format": "gridrun.plan/1", "manifest": str(m), "exit_code": 130, "errors": ["interrupted"]}



@pytest.mark.parametrize("words", [
    ["plan", "M", "--json", "x"], ["plan", "M", "--json", "--budget", "x"], ["plan", "M", "--json", "--bogus"],
    ["plan", "--budget", "5", "--json", "--max-jobs", "0", "M"], ["plan", "--json", "--bogus", "--", "M"],
    ["plan", "-budjet", "3", "M", "--json"],
], ids=["two-manifests", "budget-x", "unknown-option", "max-jobs-0", "after-dashes", "misspelt-option-and-value"])
def test_plan_json_names_the_manifest_as_its_plan_does_in_its_error_object(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, words: list[str]
) -> None:
    """A script matching `plan --json`'s error object to its plan by `manifest`: the absolute path, as the plan's,
    wherever the command line names the manifest (relative here), a command line argparse refuses included."""
    m = write_manifest(tmp_path, n_seeds=1, styles=("anime",))
    monkeypatch.chdir(tmp_path)
    assert main(["plan", m.name, "--json"]) == 0
    planned = _object(capsys.readouterr().out)["manifest"]
    assert planned == str(m)
    with pytest.raises(SystemExit) as exc:
        main([m.name if w == "M" else w for w in words])
    doc = _object(capsys.readouterr().out)
    assert exc.value.code == 2 and doc["manifest"] == planned, doc


def test_plan_json_of_a_manifest_not_there_or_invalid_names_its_absolute_path(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    write_manifest(tmp_path, n_seeds=1, styles=("anime",), run={"concurrency": -1})
    monkeypatch.chdir(tmp_path)
    assert main(["plan", "t.yaml", "--json"]) == 2
    assert _object(capsys.readouterr().out)["manifest"] == str(tmp_path / "t.yaml")
    assert main(["plan", "nothere.yaml", "--json"]) == 2
    assert _object(capsys.readouterr().out)["manifest"] == str(tmp_path / "nothere.yaml")
    with pytest.raises(SystemExit):  # no manifest named: none to name
        main(["plan", "--json"])
    assert _object(capsys.readouterr().out)["manifest"] is None


def test_plan_json_interrupted_as_it_starts_names_the_manifest_given(tmp_path: Path) -> None:
    """SIGTERM before the command line is parsed: the manifest is read from its words, as the plan names it."""
    m = write_manifest(tmp_path, n_seeds=1, styles=("anime",))
    proc = _held([sys.executable, "-m", "runner.cli", "plan", "--budget", "5", m.name, "--json"], tmp_path)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert _object(out)["manifest"] == str(m)


def test_the_plan_options_that_take_a_value_are_known_before_parsing() -> None:
    """`entry.plan_manifest` reads the manifest from the words of a command line argparse has not read: the options
    of `plan` that take a value after them are those its parser has."""
    import argparse

    from runner.cli import _parser
    from runner.entry import PLAN_VALUED

    sub = next(a for a in _parser()._actions if isinstance(a, argparse._SubParsersAction))
    valued = {o for a in sub.choices["plan"]._actions if a.option_strings and a.nargs != 0 for o in a.option_strings}
    assert valued == set(PLAN_VALUED)


def test_run_json_end_event_lists_the_warnings_the_run_gave_before_it_began(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An exclude that matches nothing: said on standard error, and in the `end` event's `warnings`, which a CI
    job reading standard output alone can log or fail on; `[]` where there is none."""
    m = write_manifest(tmp_path, n_seeds=1, styles=("anime",), sim={"render_time": 0.1, "jitter": 0.0})
    assert main(["run", str(m), "--no-report", "--json"]) == 0
    end = json.loads(capsys.readouterr().out.splitlines()[-1])
    assert end["event"] == "end" and end["warnings"] == [], end
    write_manifest(tmp_path, n_seeds=1, styles=("anime",), sim={"render_time": 0.1, "jitter": 0.0},
                   extra={"matrix": {"style": ["anime"], "seed": {"range": [1, 1]}, "exclude": [{"style": "nothing"}]}})
    assert main(["run", str(m), "--no-report", "--json"]) == 0
    got = capsys.readouterr()
    end = json.loads(got.out.splitlines()[-1])
    said = [w for w in end["warnings"] if "matrix.exclude[0]: removes no combination" in w]
    assert len(said) == 1 and f"warning: {said[0]}" in " ".join(got.err.split()), (end, got.err)


class _FullStream(io.StringIO):
    """A standard error on a full disk (`2>/dev/full`): every write fails."""

    def write(self, text: str) -> int:
        raise OSError(errno.ENOSPC, "No space left on device")

    def flush(self) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")


@pytest.mark.parametrize("command", ["run", "retry"])
def test_run_json_end_event_exit_code_is_the_commands_where_standard_error_could_not_be_written(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, command: str
) -> None:
    """`gridrun run M --json 2>/dev/full`: the command exits 1 for the stream it could not write, and its `end`
    event says so, not 0: a script comparing the event's `exit_code` with `$?` sees them agree."""
    m = write_manifest(tmp_path, n_seeds=1, styles=("anime",), sim={"render_time": 0.1, "jitter": 0.0})
    assert main(["run", str(m), "--no-report"]) == 0
    capsys.readouterr()
    monkeypatch.setattr(sys, "stderr", _FullStream())  # the command's console writes to it as it is now
    code = main([command, str(m), "--no-report", "--json"])
    end = json.loads(capsys.readouterr().out.splitlines()[-1])
    assert end["event"] == "end" and end["status"] == "done", end
    assert code == end["exit_code"] == 1, (code, end)


def test_run_json_refused_over_jobs_the_manifest_dropped_has_status_null_and_exit_1_as_documented(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Jobs left in flight that the manifest no longer has: no run began, `status` null and `exit_code` 1, as
    reports/EXPORTS.md says of such a refusal (null is not only an invalid manifest's)."""
    m = write_manifest(tmp_path, n_seeds=1, styles=("anime", "clay"), sim={"render_time": 600.0, "jitter": 0.0})
    prov = sim_provider(m)
    monkeypatch.setattr(api, "_provider", lambda p: prov)
    first = api.run(m, report=False, options=api.RunOptions(timeout=0.5))
    assert first.status == "incomplete" and stats(prov)["creates"] == 2, first.status
    write_manifest(tmp_path, n_seeds=1, styles=("anime",), sim={"render_time": 600.0, "jitter": 0.0})
    assert main(["run", str(m), "--no-report", "--json"]) == 1
    end = json.loads(capsys.readouterr().out.splitlines()[-1])
    assert end["event"] == "end" and end["status"] is None and end["exit_code"] == 1, end
    doc = (Path(__file__).resolve().parent.parent / "reports" / "EXPORTS.md").read_text(encoding="utf-8")
    assert "null for any other error that stopped it before a run began" in doc
    assert "1 for jobs left in flight that the manifest no longer has" in doc


def test_status_json_of_a_damaged_state_gives_the_exit_code_the_command_exits_with(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A state it cannot read: the error object's `exit_code` is the command's, 1 (not the 2 of a manifest that
    never ran), as reports/EXPORTS.md says."""
    m = write_manifest(tmp_path, n_seeds=1, styles=("anime",), sim={"render_time": 0.1, "jitter": 0.0})
    assert main(["run", str(m), "--no-report"]) == 0
    db = tmp_path / ".gridrun" / "state.db"
    with db.open("r+b") as f:
        f.seek(100)
        f.write(b"garbage")
    capsys.readouterr()
    code = main(["status", str(m), "--json"])
    doc = _object(capsys.readouterr().out)
    assert code == doc["exit_code"] == 1 and doc["run"] is None, doc
    text = (Path(__file__).resolve().parent.parent / "reports" / "EXPORTS.md").read_text(encoding="utf-8")
    assert "1 for a state\nit cannot read" in text and "and the same\nexit code (2)" not in text
