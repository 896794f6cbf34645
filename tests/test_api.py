"""The Python API's edges: names that stay what the docs say, and wrong input refused before anything runs."""

from __future__ import annotations

import asyncio
import json
import math
import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

import runner
from runner import api
from runner.errors import UsageError
from runner.executor import RunResult
from runner.options import RunOptions
from runner.stats import RunStatistics

from execkit import sim_provider, stats, write_manifest

ROOT = Path(__file__).resolve().parent.parent


def _in_a_fresh_interpreter(code: str) -> None:
    """Run `code` in a new Python process that imports this checkout's package: it must end 0."""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert done.returncode == 0, done.stderr


def test_report_and_export_stay_functions_once_their_modules_load() -> None:
    """`runner.report` and `runner.export` are also module names; the modules load lazily, and loading them
    must not replace the functions (a fresh interpreter: nothing loaded yet)."""
    code = (
        "import runner, runner.report, runner.export\n"
        "from runner.export import write_exports\n"
        "from runner import api\n"
        "assert runner.report is api.report and runner.export is api.export, (runner.report, runner.export)\n"
        "assert callable(write_exports)\n"
    )
    _in_a_fresh_interpreter(code)


@pytest.mark.parametrize("flag", ["force", "retry_failed", "retry_unknown", "allow_partial", "fail_fast"])
def test_a_flag_that_is_not_a_bool_is_refused(flag: str) -> None:
    """`force="no"` would be true: a paid re-run of every job."""
    with pytest.raises(UsageError, match=f"{flag} must be True or False, got 'no'"):
        RunOptions(**{flag: "no"})


def test_options_as_a_mapping_are_checked_like_run_options(tmp_path: Path) -> None:
    m = write_manifest(tmp_path)
    with pytest.raises(UsageError, match="concurrency must be an integer at least 1, got 0"):
        api.run(m, options={"concurrency": 0})
    with pytest.raises(UsageError, match="options must be a RunOptions or a mapping"):
        api.run(m, options=3)  # type: ignore[arg-type]
    assert not (tmp_path / ".gridrun").exists()


def test_run_from_a_running_event_loop_says_how_instead_of_failing_inside(tmp_path: Path) -> None:
    m = write_manifest(tmp_path)

    async def notebook_cell() -> None:
        runner.run(m)

    with pytest.raises(UsageError, match=r"asyncio.to_thread\(runner.run, plan\)"):
        asyncio.run(notebook_cell())
    assert not (tmp_path / ".gridrun").exists()


def test_cancel_from_a_running_event_loop_says_how_instead_of_failing_inside(tmp_path: Path) -> None:
    """`cancel` runs its requests in an event loop of its own, which cannot start inside the notebook's."""
    m = write_manifest(tmp_path, n_seeds=1, styles=("anime",), sim={"render_time": 0.1, "jitter": 0})
    assert runner.run(m, report=False).exit_code == 0

    async def notebook_cell() -> None:
        runner.cancel(m)

    with pytest.raises(UsageError, match=r"asyncio.to_thread\(runner.cancel, manifest\)"):
        asyncio.run(notebook_cell())
    assert runner.cancel(m).cancelled == []  # outside the loop it works, the state's lock free


@pytest.mark.parametrize("value", [{"version": 1}, None, 3, b"m.yaml"])
def test_load_names_what_it_wants_for_anything_but_a_path(value: object) -> None:
    with pytest.raises(UsageError, match="expected a manifest's path"):
        runner.load(value)  # type: ignore[arg-type]
    with pytest.raises(UsageError, match="expected a manifest's path"):
        runner.plan(value)  # type: ignore[arg-type]


def test_an_unknown_key_in_the_options_mapping_is_named_with_the_options(tmp_path: Path) -> None:
    m = write_manifest(tmp_path)
    with pytest.raises(UsageError, match=r"unknown option 'concurency'; did you mean 'concurrency'\? "
                                         r"\(the options: concurrency, budget_usd, .*handle_signals, only_keys, only_codes\)"):
        runner.run(m, options={"concurency": 2})
    with pytest.raises(UsageError, match=r"unknown option 2 \(the options: "):
        runner.run(m, options={2: 2})
    assert not (tmp_path / ".gridrun").exists()


@pytest.mark.parametrize("provider", ["sim", 3])
def test_a_provider_that_is_not_one_is_refused_before_anything_runs(tmp_path: Path, provider: object) -> None:
    m = write_manifest(tmp_path)
    kind = type(provider).__name__
    with pytest.raises(UsageError, match=rf"provider must be a provider object, .*get_provider.*got {kind}"):
        runner.run(m, provider=provider)
    assert not (tmp_path / ".gridrun").exists()


@pytest.mark.parametrize(("call", "message"), [
    (lambda m: runner.report(m, compare=(1,)), r"compare must be the ids of two runs, as \(1, 2\), got \(1,\)"),
    (lambda m: runner.report(m, compare="12"), "compare must be the ids of two runs"),
    (lambda m: runner.report(m, compare=("1", "2")), "compare: a run's id is an integer, .* got '1'"),
    (lambda m: runner.report(m, run_id="1"), "run_id: a run's id is an integer, .* got '1'"),
    (lambda m: runner.export(m, run_id=1.0), "run_id: a run's id is an integer, .* got 1.0"),
    (lambda m: runner.export(m, formats="csv"), r"formats must be a list of format names, as \['csv'\]"),
    (lambda m: runner.status(m, state_dir=3), "state_dir must be the path of a state folder, got int"),
])
def test_run_ids_and_formats_of_the_wrong_kind_are_named(tmp_path: Path, call: Any, message: str) -> None:
    """Given a state with runs, so that nothing but the argument is at fault."""
    m = write_manifest(tmp_path, n_seeds=1, styles=("anime",), sim={"render_time": 0.1, "jitter": 0})
    assert runner.run(m, report=False).exit_code == 0
    with pytest.raises(UsageError, match=message):
        call(m)


@pytest.mark.parametrize(("arguments", "message"), [
    ({"stop": True}, r"stop must be a threading.Event \(or None\), .*got True"),
    ({"detach": "yes"}, r"detach must be a threading.Event \(or None\), .*got 'yes'"),
    ({"stop": lambda: True}, "stop must be a threading.Event"),
    ({"on_balance": 1}, r"on_balance must be a function \(or None\), got 1"),
    ({"on_progress": "print"}, r"on_progress must be a function \(or None\), got 'print'"),
    ({"argv": "run"}, r"argv must be a list of the command line's words, as \['run', 'm.yaml'\], got 'run'"),
    ({"argv": ["run", 3]}, r"argv must be a list .*got \['run', 3\]"),
])
def test_run_arguments_of_the_wrong_kind_are_refused_before_a_run_is_recorded(
        tmp_path: Path, arguments: dict[str, Any], message: str) -> None:
    """`stop=True` failed inside the run's tasks (a bare ExceptionGroup) and left a run recorded `crashed` at
    each try; `on_balance=1` failed after the balance request; `argv="run"` was recorded as `r u n`."""
    m = write_manifest(tmp_path)
    with pytest.raises(UsageError, match=message):
        runner.run(m, report=False, **arguments)
    assert not (tmp_path / ".gridrun").exists()


def test_run_arguments_of_the_right_kind_still_run(tmp_path: Path) -> None:
    """What the checks allow: an Event, a function, a tuple of words."""
    m = write_manifest(tmp_path, n_seeds=1, styles=("anime",), sim={"render_time": 0.1, "jitter": 0})
    seen: list[object] = []
    result = runner.run(m, report=False, stop=threading.Event(), detach=threading.Event(), on_balance=seen.append,
                        on_progress=lambda s: None, argv=("run", "m.yaml"))
    assert result.exit_code == 0
    assert [r.run.argv for r in runner.runs(m)] == [("run", "m.yaml")]


@pytest.mark.parametrize(("formats", "message"), [
    (None, r"formats must be a list of format names, as \['csv'\], got None"),
    (3, r"formats must be a list of format names, as \['csv'\], got 3"),
    ([1], "unknown export format 1; choose from jsonl, csv, json"),
])
def test_export_formats_of_the_wrong_kind_are_named(tmp_path: Path, formats: object, message: str) -> None:
    m = write_manifest(tmp_path, n_seeds=1, styles=("anime",), sim={"render_time": 0.1, "jitter": 0})
    assert runner.run(m, report=False).exit_code == 0
    with pytest.raises(UsageError, match=message):
        runner.export(m, formats=formats)  # type: ignore[arg-type]


def test_signal_handling_from_another_thread_is_refused_before_anything_runs(tmp_path: Path) -> None:
    import threading

    m = write_manifest(tmp_path)
    caught: list[BaseException] = []

    def worker() -> None:
        try:
            runner.run(m, options=RunOptions(handle_signals=True))
        except BaseException as exc:  # noqa: BLE001 (handed to the test's thread)
            caught.append(exc)

    t = threading.Thread(target=worker)
    t.start()
    t.join(60)
    assert len(caught) == 1 and isinstance(caught[0], UsageError) and "main thread" in str(caught[0])
    assert not (tmp_path / ".gridrun").exists()


def test_an_empty_state_file_is_no_state_yet_to_plan_and_to_run(tmp_path: Path) -> None:
    """A run killed before it wrote its state (or `: > state.db`) leaves an empty file: nothing has run."""
    m = write_manifest(tmp_path, n_seeds=1, styles=("anime",), sim={"render_time": 0.1, "jitter": 0})
    (tmp_path / ".gridrun").mkdir()
    (tmp_path / ".gridrun" / "state.db").write_bytes(b"")
    assert api.diff(api.plan(m)) is None
    assert api.run(m, report=False).exit_code == 0
    assert api.diff(api.plan(m)).cached == 1


def _readme_example() -> str:
    """The code block of the README's "Python API" section."""
    section = (ROOT / "README.md").read_text(encoding="utf-8").split("\n## Python API\n", 1)[1].split("\n## ", 1)[0]
    return section.split("```python\n", 1)[1].split("```", 1)[0]


@pytest.mark.timeout(120)
def test_the_readmes_python_example_runs_as_it_says(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Run from a copy of the repository's manifests, the README's example prints what its comments say; run
    again, its jobs are all cached. Run in this process, as a notebook's cell would run it."""
    (tmp_path / "manifests").mkdir()
    # its simulator renders at once, not in 2 s: the sim: knobs are no part of a job's request, nor of its price
    demo = (ROOT / "manifests" / "demo.yaml").read_text(encoding="utf-8")
    assert "\n  render_time: 2.0\n" in demo
    (tmp_path / "manifests" / "demo.yaml").write_text(demo.replace("\n  render_time: 2.0\n", "\n  render_time: 0.05\n"),
                                                      encoding="utf-8")
    code = _readme_example()
    assert "runner.run(plan" in code and "runner.export(manifest" in code
    outputs = tmp_path.resolve() / "manifests" / "outputs" / "demo"
    for spent in ("4.2", "0.0"):
        monkeypatch.chdir(tmp_path)
        exec(compile(code, "README.md", "exec"), {"__name__": "__main__"})  # noqa: S102
        out = capsys.readouterr().out
        assert out.splitlines() == ["12 jobs, $4.20", f"done 0 {outputs / 'report.html'}", f"12 {spent}",
                                    str(outputs / "results.csv")], out
    assert (outputs / "report.html").is_file() and (outputs / "results.csv").is_file()


def test_the_api_loads_at_once_in_several_threads() -> None:
    """Threads using the API for the first time at once each load it: httpx's command line is blocked for its
    import (by `cancel`, which sends requests) and unblocked after by one of them only, none fails (a fresh
    interpreter: nothing loaded yet). A finder holds the first import of httpx a moment, so that every thread is
    inside the loading meanwhile."""
    code = (
        "import sys, threading, time\n"
        "class Slow:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name == 'httpx':\n"
        "            time.sleep(0.3)\n"
        "        return None\n"
        "sys.meta_path.insert(0, Slow())\n"
        "import runner, runner.errors\n"
        "ready, failed = threading.Barrier(4), []\n"
        "def first_use():\n"
        "    ready.wait()\n"
        "    try:\n"
        "        runner.cancel('missing.yaml')\n"
        "    except runner.errors.GridrunError:\n"
        "        pass\n"
        "    except BaseException as exc:\n"
        "        failed.append(repr(exc))\n"
        "threads = [threading.Thread(target=first_use) for _ in range(4)]\n"
        "[t.start() for t in threads]; [t.join() for t in threads]\n"
        "assert not failed, failed\n"
        "assert 'httpx._main' not in sys.modules and 'httpx' in sys.modules\n"
    )
    _in_a_fresh_interpreter(code)


def test_overlapping_runs_put_the_collectors_threshold_back_as_it_was_before_the_first() -> None:
    """Runs in threads of one host overlap: the second began with the first's raised threshold, and ending last
    left it raised for good. Entered and left in either order, the threshold is the host's again at the end."""
    import contextlib
    import gc

    before = gc.get_threshold()
    try:
        gc.set_threshold(700, 11, 12)
        for last_first in (False, True):
            with contextlib.ExitStack() as stack:
                first = stack.enter_context(contextlib.ExitStack())
                first.enter_context(api._running_here())
                second = stack.enter_context(contextlib.ExitStack())
                second.enter_context(api._running_here())
                assert gc.get_threshold() == (api.GC_YOUNG_THRESHOLD, 11, 12)
                (second if last_first else first).close()
                assert gc.get_threshold() == (api.GC_YOUNG_THRESHOLD, 11, 12)  # the other still runs
                (first if last_first else second).close()
                assert gc.get_threshold() == (700, 11, 12)
    finally:
        gc.set_threshold(*before)


def test_a_run_from_python_leaves_no_thread_nor_file_open_behind(tmp_path: Path) -> None:
    """The download's disk threads end with the last run of the process, and the simulator's world file is
    closed when `run` and `cancel` return (not at some later collection: the collector is off here)."""
    import gc
    import threading

    from runner.providers.download import close_disk_threads

    def world_open() -> bool:
        return any(os.path.realpath(f"/proc/self/fd/{fd}").endswith("sim-world.jsonl")
                   for fd in os.listdir("/proc/self/fd"))

    close_disk_threads()  # any other test's
    m = write_manifest(tmp_path, n_seeds=1, styles=("anime",), sim={"render_time": 0.1, "jitter": 0})
    gc.collect()
    gc.disable()
    try:
        assert runner.run(m, report=False).exit_code == 0
        assert not [t.name for t in threading.enumerate() if t.name.startswith("gridrun-disk")]
        assert (tmp_path / ".gridrun" / "sim-world.jsonl").is_file() and not world_open()
        runner.cancel(m)
        assert not world_open()
    finally:
        gc.enable()


def test_status_and_runs_of_a_first_run_starting_say_it_is_starting(tmp_path: Path) -> None:
    """A run holding the state's lock before it records itself (asking the balance) is starting, as `gridrun
    status` says: a host polling from another thread is told so and its pid, not that nothing has run."""
    from runner.errors import NotRecordedError, RunStartingError
    from runner.state import Store

    m = write_manifest(tmp_path, n_seeds=1, styles=("anime",))
    holder = Store(tmp_path / ".gridrun" / "state.db")
    with pytest.raises(NotRecordedError, match="no run recorded for t") as plain:
        runner.status(m)
    assert not isinstance(plain.value, RunStartingError)  # nobody starting: the manifest never ran
    holder.acquire_lock(manifest=m)
    for ask in (runner.status, runner.runs):
        said = rf"no run of t recorded yet; a run is starting \(pid {os.getpid()}\)"
        with pytest.raises(RunStartingError, match=said) as starting:
            ask(m)
        assert starting.value.pid == os.getpid() and isinstance(starting.value, NotRecordedError)


def test_the_lock_refused_to_a_run_of_the_same_process_says_so(tmp_path: Path) -> None:
    """A host's two threads running one manifest: the second is told that a run of this manifest in its own
    process holds the state (before and after that run records itself), not of another runner to stop, nor to
    give the manifest a state of its own; a run of another manifest sharing the state is named."""
    import fcntl
    import threading

    from runner.errors import LockError
    from runner.state import Store

    m = write_manifest(tmp_path, n_seeds=1, styles=("anime",))
    other = write_manifest(tmp_path, n_seeds=1, styles=("anime",), name="other")
    holder = Store(tmp_path / ".gridrun" / "state.db")
    taker = threading.Thread(target=holder.acquire_lock, kwargs={"manifest": m})  # the host's other thread
    taker.start()
    taker.join()
    with pytest.raises(LockError, match=r"\.gridrun: a run \(starting\) of this manifest in this process \(another "
                                        r"thread\) holds this state: wait for it to end, then run again \(setting the "
                                        r"`stop` Event given to its `runner.run` ends it .*\)$"):
        runner.run(m)
    with pytest.raises(LockError, match=rf"a run \(starting\) of {tmp_path / 't.yaml'} in this process \(another "
                                        r"thread\) holds this state, which the two manifests share .*`state_dir:`"):
        runner.run(other)
    holder.start_run(manifest_name="t", manifest_path=str(m), manifest_copy="", outputs_dir=str(tmp_path / "outputs"),
                     provider="sim", model="pixverse-v5.6", axes=(), budget_micros=None)
    with pytest.raises(LockError, match=r"\.gridrun: run 1 of this manifest in this process \(another thread\)"):
        runner.run(m)
    holder.release_lock()
    with open(tmp_path / ".gridrun" / "lock", "a") as lock:  # held as another process would, the line still ours
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        with pytest.raises(LockError, match="another gridrun runner holds this state") as elsewhere:
            runner.run(m)
    assert "in this process" not in str(elsewhere.value)


def test_every_error_of_the_tree_is_one_gridrun_raises() -> None:
    """`runner.errors` is what a host catches: each class is made somewhere in gridrun (raised, or the class of an
    error built, `Manifest.error(..., cls)`), or is the base of one that is; one only imported and tested for
    would promise an error that never comes."""
    import inspect
    import re

    from runner import errors

    package = ROOT / "runner"
    code = "\n".join(p.read_text(encoding="utf-8") for p in package.rglob("*.py") if p != package / "errors.py")
    code = re.sub(r"^\s*from [\w.]+ import \([^)]*\)|^\s*(from [\w.]+ )?import .*$", "", code, flags=re.MULTILINE)
    made = "\n".join(line for line in code.splitlines() if not re.search(r"\bisinstance\(|^\s*except\b", line))

    def used(cls: type) -> bool:
        return re.search(rf"\b{cls.__name__}\b", made) is not None or any(used(sub) for sub in cls.__subclasses__())

    tree = [c for c in vars(errors).values() if inspect.isclass(c) and issubclass(c, errors.GridrunError)]
    assert len(tree) > 20 and [c.__name__ for c in tree if not used(c)] == []
def _sending(m: Path, **run: Any) -> tuple[Any, threading.Event, dict[str, Any]]:
    """The keywords of a run of `m` on its simulator (`run` added) whose `sent` Event is set once two jobs are at
    the provider: (provider, sent, keywords)."""
    prov = sim_provider(m)
    sent = threading.Event()

    def look(stats: RunStatistics) -> None:
        if stats.counts["submitted"] + stats.counts["running"] >= 2:
            sent.set()

    return prov, sent, {"provider": prov, "on_progress": look, "report": False, **run}


@pytest.mark.timeout(60)
def test_a_run_in_a_notebooks_thread_stops_when_its_stop_event_is_set_and_pays_nothing_twice(tmp_path: Path) -> None:
    """The README's recipe: `runner.run` in `asyncio.to_thread` with `stop`; `stop.set()` acts as the first
    Ctrl-C: nothing more is sent, the two jobs sent are finished, the run ends interrupted (130); the next run
    sends the rest, each job paid once."""
    m = write_manifest(tmp_path, n_seeds=3, run={"concurrency": 2}, sim={"render_time": 1.0, "jitter": 0.0})
    stop = threading.Event()
    prov, sent, kwargs = _sending(m, stop=stop)

    async def notebook() -> RunResult:
        task = asyncio.create_task(asyncio.to_thread(runner.run, api.plan(m), **kwargs))
        assert await asyncio.to_thread(sent.wait, 30)
        stop.set()
        return await task

    result = asyncio.run(notebook())
    assert (result.status, result.exit_code) == ("interrupted", 130)
    assert result.stats.counts["done"] == 2 and result.stats.counts["planned"] == 4, result.stats.counts
    assert stats(prov)["creates"] == 2 and api.status(m).stopping == "interrupt"
    again = runner.run(m, provider=prov, report=False)
    assert again.exit_code == 0 and again.stats.cached == 2 and again.stats.counts["done"] == 6
    assert stats(prov)["creates"] == 6 and stats(prov)["duplicate_paid"] == 0


@pytest.mark.timeout(60)
def test_a_run_whose_detach_event_is_set_ends_at_once_and_the_next_collects_its_jobs(tmp_path: Path) -> None:
    """`detach` acts as the second Ctrl-C: the run ends interrupted (130) with its two jobs left at the
    provider; the next run collects them at no new cost and sends the rest."""
    m = write_manifest(tmp_path, n_seeds=3, run={"concurrency": 2}, sim={"render_time": 3.0, "jitter": 0.0})
    detach = threading.Event()
    prov, sent, kwargs = _sending(m, stop=threading.Event(), detach=detach)
    ended: list[RunResult] = []
    worker = threading.Thread(target=lambda: ended.append(runner.run(m, **kwargs)))
    worker.start()
    assert sent.wait(30)
    detach.set()
    worker.join(10)
    assert not worker.is_alive() and (ended[0].status, ended[0].exit_code) == ("interrupted", 130)
    counts = api.status(m).counts
    assert counts["submitted"] + counts["running"] == 2 and counts["planned"] == 4 and counts["done"] == 0, counts
    assert stats(prov)["creates"] == 2
    prov.app.state.sim.configure({"render_time": 0.1})  # the new jobs render at once; the two in flight keep theirs
    again = runner.run(m, provider=prov, report=False, options=RunOptions(poll_interval=0.1))
    assert again.exit_code == 0 and again.stats.counts["done"] == 6
    assert stats(prov)["creates"] == 6 and stats(prov)["duplicate_paid"] == 0


def test_a_run_whose_stop_is_set_before_it_starts_sends_nothing(tmp_path: Path) -> None:
    m = write_manifest(tmp_path, n_seeds=2, sim={"render_time": 0.1, "jitter": 0.0})
    stop = threading.Event()
    stop.set()
    prov = sim_provider(m)
    result = runner.run(m, provider=prov, stop=stop, report=False)
    assert (result.status, result.exit_code) == ("interrupted", 130) and result.stats.counts["planned"] == 4
    assert stats(prov)["creates"] == 0


def test_a_run_through_another_link_to_a_linked_state_is_refused_while_one_runs_and_shares_its_world(
    tmp_path: Path,
) -> None:
    """Two project folders whose .gridrun/state.db links to one file: a run of one holds that state, so a run of
    the other is refused before it sends anything; the simulator's world is the state's, beside the file."""
    from runner.errors import LockError
    from runner.state import Store

    real = tmp_path / "real" / "state.db"
    real.parent.mkdir()
    manifests = []
    for name in ("a", "b"):
        (tmp_path / name / ".gridrun").mkdir(parents=True)
        (tmp_path / name / ".gridrun" / "state.db").symlink_to(real)
        manifests.append(write_manifest(tmp_path / name, n_seeds=1))
    a, b = manifests
    assert api.run(a, report=False).exit_code == 0
    assert (real.parent / "sim-world.jsonl").is_file() and not (tmp_path / "a" / ".gridrun" / "sim-world.jsonl").exists()
    holder = Store(tmp_path / "a" / ".gridrun" / "state.db")
    holder.acquire_lock(manifest=a)
    try:
        with pytest.raises(LockError, match=rf"its state\.db is {real}, which it shares\): another gridrun runner"):
            api.run(b, report=False)
    finally:
        holder.close()
    assert not (tmp_path / "b" / "outputs").exists()


def test_plan_and_run_refuse_a_state_db_linking_into_a_folder_not_there(tmp_path: Path) -> None:
    """state.db linked to a disk not mounted: `plan` says so (not a fresh plan, every job to pay for) and `run`
    refuses before anything is sent or made."""
    from runner.errors import StateError

    m = write_manifest(tmp_path, n_seeds=1)
    (tmp_path / ".gridrun").mkdir()
    (tmp_path / ".gridrun" / "state.db").symlink_to(tmp_path / "disk" / "state.db")
    for call in (lambda: api.diff(api.plan(m)), lambda: api.run(m, report=False)):
        with pytest.raises(StateError, match=r"is a link to .*disk/state\.db, whose folder .*disk is not there"):
            call()
    assert not (tmp_path / "disk").exists() and not (tmp_path / "outputs").exists()


def test_cancel_and_a_bare_status_refuse_a_state_db_linking_into_a_folder_not_there(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The state's disk not mounted while jobs may render: `cancel` says where the link leads, as `run` does, never
    that nothing ran there; a bare `status` names the link too, not a `.gridrun/` folder that is not there."""
    from runner.cli import main

    m = write_manifest(tmp_path, n_seeds=1)
    (tmp_path / ".gridrun").mkdir()
    (tmp_path / ".gridrun" / "state.db").symlink_to(tmp_path / "disk" / "state.db")
    monkeypatch.chdir(tmp_path)
    for argv in (["cancel", str(m)], ["status"]):
        assert main(argv) == 1, argv
        err = " ".join(capsys.readouterr().err.split())
        assert "is a link to" in err and f"whose folder {tmp_path / 'disk'} is not there" in err, err
        assert "nothing has run here" not in err and "Traceback" not in err, err
    assert not (tmp_path / "disk").exists() and not (tmp_path / "outputs").exists()


def test_a_bare_status_beside_a_state_folder_without_its_state_file_says_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
) -> None:
    from runner.cli import main

    (tmp_path / ".gridrun").mkdir()
    monkeypatch.chdir(tmp_path)
    assert main(["status"]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert f"{tmp_path / '.gridrun'} holds no state.db" in err and "no .gridrun/ state folder" not in err, err


def test_a_run_refused_for_its_budget_leaves_no_run_starting_for_the_program_that_goes_on(tmp_path: Path) -> None:
    """The refused run let go of the state's lock, whose file still names this (living) process: `status` says
    nothing is recorded, not that a run is starting, and a `status --watch` would not wait for ever."""
    from runner.errors import BudgetError, NotRecordedError, RunStartingError

    m = write_manifest(tmp_path, run={"budget_usd": 0.01})
    with pytest.raises(BudgetError):
        api.run(m, report=False)
    assert (tmp_path / ".gridrun" / "lock").read_text(encoding="utf-8").startswith(f"pid {os.getpid()} ")
    with pytest.raises(NotRecordedError) as info:
        api.status(m)
    assert not isinstance(info.value, RunStartingError), info.value


def _progress_only_at_start(monkeypatch: pytest.MonkeyPatch) -> list[RunStatistics]:
    """`on_progress` throttled so hard that only its first call gets through as jobs move (no heartbeat): what a
    progress bar fed by it sees, and the calls it gets when the run ends."""
    from runner import executor

    monkeypatch.setattr(executor, "PROGRESS_EVERY", 1e9)
    monkeypatch.setattr(executor, "HEARTBEAT", 1e9)
    return []


def test_on_progress_is_last_called_with_the_figures_the_run_ended_with(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A progress bar fed by `on_progress` ends at the run's final counts (6 of 6 done), not at the last call the
    throttle let through (jobs still downloading)."""
    seen = _progress_only_at_start(monkeypatch)
    m = write_manifest(tmp_path, sim={"render_time": 0.1, "jitter": 0.0})
    result = runner.run(m, provider=sim_provider(m), report=False, on_progress=seen.append)
    assert (result.status, result.stats.counts["done"]) == ("done", 6)
    assert seen[-1].counts == result.stats.counts and seen[-1].eta is None
    assert seen[-1].spent_micros == result.stats.spent_micros


def test_on_progress_is_last_called_with_the_final_figures_of_a_run_stopped_or_failed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A run stopped (`stop` set before it sent anything) and one whose jobs all failed: the last call carries
    what the result does."""
    seen = _progress_only_at_start(monkeypatch)
    stop = threading.Event()
    stop.set()
    m = write_manifest(tmp_path, name="stopped")
    result = runner.run(m, provider=sim_provider(m), report=False, on_progress=seen.append, stop=stop)
    assert result.status == "interrupted" and seen and seen[-1].counts == result.stats.counts
    seen.clear()
    m = write_manifest(tmp_path, name="failing", sim={"render_time": 0.1, "failure_rate": 1.0})
    result = runner.run(m, provider=sim_provider(m), report=False, on_progress=seen.append)
    assert result.status == "failed" and result.stats.counts["failed"] == 6
    assert seen[-1].counts == result.stats.counts


def test_on_progress_is_called_once_more_when_an_interrupt_ends_the_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A KeyboardInterrupt (Ctrl-C without `handle_signals`) out of `run`: the run recorded interrupted, and the
    progress bar told its last figures before the interrupt goes on to the caller."""
    from runner.state import Store

    seen = _progress_only_at_start(monkeypatch)
    real = Store.transition
    m = write_manifest(tmp_path, n_seeds=1, styles=("anime",), sim={"render_time": 0.1, "jitter": 0.0})

    def interrupted(self: Store, job_id: int, to: Any, **kw: Any) -> None:
        if to.value == "downloading":
            raise KeyboardInterrupt
        real(self, job_id, to, **kw)

    monkeypatch.setattr(Store, "transition", interrupted)
    with pytest.raises(KeyboardInterrupt):
        runner.run(m, provider=sim_provider(m), report=False, on_progress=seen.append)
    snap = api.status(m)
    assert snap.run.status == "interrupted" and len(seen) == 2
    assert {k: v for k, v in seen[-1].counts.items() if v} == {k: v for k, v in snap.counts.items() if v}


def test_run_of_a_path_returns_the_warnings_gridrun_run_prints(
    tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    """`runner.run(path)` plans the manifest itself: the plan's warnings (a parameter spelled close to a known
    one, which the job is sent without) come back on the result, as `gridrun run` prints them, which prints
    them once."""
    from runner.cli import main

    m = write_manifest(tmp_path, n_seeds=1, styles=("anime",), sim={"render_time": 0.1, "jitter": 0.0})
    m.write_text(m.read_text().replace("  duration: 5\n", "  duration: 5\n  qualty: 720p\n"))
    expected = str(api.plan(m).warnings[0])
    assert "did you mean 'quality'?" in expected and expected.startswith(f"{m}:")
    result = runner.run(m, provider=sim_provider(m), report=False)
    assert result.status == "done" and result.warnings == [expected]
    again = runner.run(api.load(m), provider=sim_provider(m), report=False)
    assert again.warnings == [expected]
    assert runner.run(api.plan(m), provider=sim_provider(m), report=False).warnings == [expected]
    assert main(["run", str(m), "--no-report"]) == 0
    assert capsys.readouterr().err.count("qualty") == 1


def test_status_and_runs_of_a_manifest_that_no_longer_loads_read_the_states_copy_with_a_warning(
    tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    """A typo mid-edit while a run is followed from Python: `runner.status` and `runner.runs` read the manifest
    as its latest run had it, as `gridrun status` does, and say so in their `warnings` (the command's line)."""
    from runner.cli import main
    from runner.errors import ManifestError

    m = write_manifest(tmp_path, n_seeds=1, styles=("anime",), sim={"render_time": 0.1, "jitter": 0.0})
    assert runner.run(m, provider=sim_provider(m), report=False).status == "done"
    assert api.status(m).warnings == [] and api.runs(m).warnings == []
    m.write_text(m.read_text().replace("duration: 5", "duration: [5"))
    snap = api.status(m)
    assert snap.run.status == "done" and snap.counts["done"] == 1
    assert len(snap.warnings) == 1 and snap.warnings[0].startswith(f"{m} does not load (")
    assert "with the manifest as its run 1 had it" in snap.warnings[0]
    found = api.runs(m)
    assert [r.run.id for r in found] == [1] and found.warnings == snap.warnings
    assert main(["status", str(m)]) == 0
    err = capsys.readouterr().err
    assert err.count("does not load") == 1 and snap.warnings[0] in err
    assert main(["status", str(m), "--json"]) == 0  # a script reading the JSON gets the warning too
    assert json.loads(capsys.readouterr().out)["warnings"] == snap.warnings
    (tmp_path / "never").mkdir()
    other = write_manifest(tmp_path / "never", name="never")  # no state records it: refused as before
    other.write_text(other.read_text().replace("duration: 5", "duration: [5"))
    with pytest.raises(ManifestError, match="invalid YAML"):
        api.status(other)


def test_the_types_the_api_returns_are_reachable_from_the_package_which_loads_them_lazily() -> None:
    """`runner.RunResult`, `runner.CancelResult`, `runner.BalanceCheck`, `runner.diff`, `runner.Snapshot`,
    `runner.errors`: every name of the API's `__all__` and the errors module the docs name, from a fresh
    interpreter, where `import runner` itself still loads none of them; and the package is typed (py.typed)."""
    code = (
        "import sys, runner\n"
        "assert not any(m.startswith('runner.') for m in sys.modules), sorted(sys.modules)\n"
        "from runner import api\n"
        "assert set(api.__all__) <= set(runner.__all__), set(api.__all__) - set(runner.__all__)\n"
        "for name in runner.__all__:\n"
        "    assert getattr(runner, name) is getattr(api, name), name\n"
        "from runner.executor import RunResult\n"
        "assert runner.RunResult is RunResult and runner.errors.GridrunError.__module__ == 'runner.errors'\n"
    )
    _in_a_fresh_interpreter(code)
    assert (ROOT / "runner" / "py.typed").is_file()


@pytest.mark.parametrize(("how", "name"), [(f"from runner import {name}", name) for name in ("errors", *runner.__all__)]
                         + [("import runner; runner.errors.GridrunError", "errors")])
def test_each_name_of_the_package_is_importable_first_thing_in_an_interpreter(how: str, name: str) -> None:
    """`from runner import errors` (or any other name of the package), with nothing of it imported before, as the
    top of a host's module writes it; and `runner.errors.GridrunError` named before any call."""
    _in_a_fresh_interpreter(f"{how}\nimport runner.api, runner.errors\n"
                            f"assert getattr(runner, {name!r}) is "
                            f"{'runner.errors' if name == 'errors' else f'runner.api.{name}'}\n")


def test_a_manifests_text_given_for_its_path_is_said_to_be_yaml_text_not_a_missing_file(tmp_path: Path) -> None:
    """A manifest's text passed where its path goes is told to be written to a file, not echoed back whole as
    the name of a file not there; a file whose name holds a line break or starts as a manifest does still loads."""
    m = write_manifest(tmp_path)
    text = m.read_text()
    for call in (runner.load, runner.plan, runner.run, runner.status):
        with pytest.raises(UsageError, match="expected a manifest's path; this looks like YAML text: write it to "
                                             "a file") as caught:
            call(text)
        assert "pixverse" not in str(caught.value)
    with pytest.raises(UsageError, match="looks like YAML text"):
        runner.load("version: 1")
    for odd in ("version: 1.yaml", "two\nlines.yaml"):
        (tmp_path / odd).write_text(text)
        assert runner.load(str(tmp_path / odd)).name == "t"
    assert not (tmp_path / ".gridrun").exists()


def test_a_path_ending_with_a_line_break_is_said_to_be_one_not_yaml_text(tmp_path: Path) -> None:
    """A path read from a file or from a command's output ends with a line break: said so, with the file it names
    without it (or that none is there either), not called YAML text; a file whose name ends so is loaded."""
    m = write_manifest(tmp_path)
    for given in (f"{m}\n", f"{m}\r\n", f"{m}\n "):
        for call in (runner.load, runner.plan, runner.status):
            with pytest.raises(UsageError, match="ends with a line break: pass .*, the file there, without it") as caught:
                call(given)
            assert repr(str(m)) in str(caught.value) and "YAML text" not in str(caught.value)
    with pytest.raises(UsageError, match=r"ends with a line break: no file '.*nope\.yaml' is there either"):
        runner.load(f"{tmp_path / 'nope.yaml'}\n")
    for text in ("version: 1\n", "a\nb\n"):
        with pytest.raises(UsageError, match="looks like YAML text"):
            runner.load(text)
    (tmp_path / "odd.yaml\n").write_text(m.read_text())
    assert runner.load(f"{tmp_path / 'odd.yaml'}\n").name == "t"
    assert not (tmp_path / ".gridrun").exists()


@pytest.fixture
def http_loggers() -> Any:
    """httpx's and httpcore's loggers as a program that never touched them has them (NOTSET), put back after."""
    import logging

    loggers = [logging.getLogger(name) for name in ("httpx", "httpcore")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.NOTSET)
    yield loggers
    for logger, level in zip(loggers, levels):
        logger.setLevel(level)


def test_a_program_logging_at_info_gets_no_request_lines_nor_signed_urls_from_a_run(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, http_loggers: Any,
) -> None:
    """httpx logs each request at INFO, a video's signed download URL with its token: a program (a notebook, a
    service) logging at INFO got a line per poll and every URL. A level the program set itself is kept."""
    import logging

    caplog.set_level(logging.INFO)
    m = write_manifest(tmp_path, n_seeds=1, styles=("anime",), sim={"render_time": 0.1, "jitter": 0.0})
    assert runner.run(m, report=False).status == "done"
    assert [r for r in caplog.records if r.name.startswith(("httpx", "httpcore"))] == []
    assert [logger.level for logger in http_loggers] == [logging.WARNING] * 2
    http_loggers[0].setLevel(logging.INFO)  # the program asks for them: it gets them
    assert runner.run(m, report=False, options={"force": True}).status == "done"
    assert any(r.name == "httpx" and "HTTP Request" in r.getMessage() for r in caplog.records)
    assert http_loggers[0].level == logging.INFO


def test_a_budget_given_as_a_decimal_is_taken_as_written(tmp_path: Path) -> None:
    """Money in Python is often a `decimal.Decimal`: `budget_usd` takes one, counted digit for digit (rounded down
    to the micro-dollar), and a value of another type is refused naming the types it takes."""
    from decimal import Decimal

    from runner.errors import BudgetError

    m = write_manifest(tmp_path, n_seeds=6, styles=("anime", "clay"))  # twelve jobs of $0.35: $4.20
    for budget in (Decimal("4.19"), Decimal("4.1999999999999999")):
        with pytest.raises(BudgetError) as caught:
            runner.run(m, options=runner.RunOptions(budget_usd=budget), provider=sim_provider(m), report=False)
        assert (caught.value.cost_micros, caught.value.budget_micros) == (4_200_000, math.floor(budget * 1_000_000))
    with pytest.raises(UsageError) as refused:
        runner.RunOptions(budget_usd="4.20")
    assert str(refused.value) == "budget_usd must be a number (int, float or Decimal), got str '4.20'"


def test_a_budget_refusal_carries_its_figures_not_only_words(tmp_path: Path) -> None:
    """A pipeline that wants how far over the budget a run is, and how many jobs fit, reads them from the error
    (micro-USD), not from its English, which stays as it was."""
    from runner.errors import BudgetError

    m = write_manifest(tmp_path, n_seeds=3, run={"budget_usd": 0.80})  # six jobs of $0.35
    with pytest.raises(BudgetError) as caught:
        runner.run(m, provider=sim_provider(m), report=False)
    e = caught.value
    assert (e.cost_micros, e.budget_micros, e.jobs, e.in_flight, e.jobs_fit) == (2_100_000, 800_000, 6, 0, 2)
    assert str(e) == ("6 jobs to submit would cost $2.10, above the budget of $0.80; raise run.budget_usd or --budget, "
                      "or pass --allow-partial to run up to the budget")
    (tmp_path / "one").mkdir()
    m = write_manifest(tmp_path / "one", n_seeds=1, styles=("anime",), run={"budget_usd": 0.10})  # one job
    with pytest.raises(BudgetError) as caught:
        runner.run(m, provider=sim_provider(m), report=False)
    assert str(caught.value).startswith("1 job to submit would cost $0.35, above the budget of $0.10;"), caught.value
