"""The Python API in a host's process (a notebook, a script, a GUI): what a call leaves behind, what it tells the
host, and what it refuses before it begins."""

from __future__ import annotations

import asyncio
import gc
import inspect
import logging
import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest
from execkit import sim_provider, stats, write_manifest

import runner
from runner import api
from runner import state as state_mod
from runner.errors import LockError, NotRecordedError, RunStartingError, UsageError
from runner.state import Store
from runner.stats import RunStatistics

ROOT = Path(__file__).resolve().parent.parent


def _small(tmp_path: Path, **more: Any) -> Path:
    return write_manifest(tmp_path, n_seeds=1, styles=("anime",), sim={"render_time": 0.1, "jitter": 0}, **more)


def _open_in(folder: Path) -> int:
    """How many of this process's file descriptors are open on files in `folder`."""
    found = 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            if os.path.realpath(f"/proc/self/fd/{fd}").startswith(f"{folder.resolve()}{os.sep}"):
                found += 1
        except OSError:
            pass
    return found


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="counts descriptors in /proc")
def test_a_run_refused_by_the_lock_leaves_no_state_file_open(tmp_path: Path) -> None:
    """A host calling `run` again and again while another run holds the state (a notebook cell run again) is
    refused each time, and each refusal closes the state it opened: none is left for a collection to find (the
    collector is off here), which would run the process out of descriptors first."""
    m = _small(tmp_path)
    p = runner.plan(m)
    holder = Store(tmp_path / ".gridrun" / "state.db")
    holder.acquire_lock(manifest=m, name="t")
    gc.collect()
    gc.disable()
    try:
        for given in (p, m):  # SQLite keeps a closed file's descriptors while this process locks it, to use again
            with pytest.raises(LockError, match="holds this state"):
                runner.run(given, report=False)
        before = _open_in(tmp_path / ".gridrun")
        for given in [p] * 10 + [m] * 10:
            with pytest.raises(LockError, match="holds this state"):
                runner.run(given, report=False)
        assert _open_in(tmp_path / ".gridrun") == before
    finally:
        gc.enable()
        holder.close()


def test_diff_takes_a_path_or_a_manifest_as_run_does(tmp_path: Path) -> None:
    m = _small(tmp_path)
    assert runner.diff(m) is None  # nothing has run yet
    assert runner.run(m, report=False).exit_code == 0
    planned = runner.diff(runner.plan(m))
    assert planned is not None and planned.cached == 1
    assert runner.diff(m) == planned and runner.diff(runner.load(m)) == planned
    with pytest.raises(UsageError, match="expected a manifest's path"):
        runner.diff(5)  # type: ignore[arg-type]


@pytest.mark.parametrize("retry", ["failed", "retry --failed", 1, ["retry"]])
def test_diff_refuses_a_retry_it_does_not_know_before_looking_at_the_state(tmp_path: Path, retry: Any) -> None:
    """Refused on a folder never run too, where no state is read (it was taken silently there)."""
    m = _small(tmp_path)
    p = runner.plan(m)
    with pytest.raises(UsageError, match=r"retry must be one of 'retry', 'retry --unknown' \(or None\), got"):
        runner.diff(p, retry=retry)
    assert not (tmp_path / ".gridrun").exists()
    assert runner.run(p, report=False).exit_code == 0
    with pytest.raises(UsageError, match="retry must be one of"):
        runner.diff(p, retry=retry)
    assert runner.diff(p, retry="retry") is not None and runner.diff(p, retry="retry --unknown") is not None
    with pytest.raises(UsageError, match="force must be True or False, got 'no'"):
        runner.diff(p, force="no")  # type: ignore[arg-type]


def test_every_flag_of_the_api_refuses_what_is_not_a_bool_before_doing_anything(tmp_path: Path) -> None:
    """A flag read from a config file or a command line ("no", "false", 0) would be true, or false, by its truth:
    `cancel(void_unsent="no")` would void jobs, `recover(dry_run="no")` would write nothing. Every function of the
    package taking a flag refuses any other value, as `RunOptions` does, before it plans, sends or records."""
    m = _small(tmp_path)
    assert runner.run(m, report=False).exit_code == 0

    def recorded() -> tuple[Any, ...]:
        return tuple((j.key, j.state, j.attempts) for j in runner.status(m).jobs), tuple(
            (r.run.id, r.run.status) for r in runner.runs(m))

    before = recorded()
    flags = [(name, param) for name in runner.__all__ if inspect.isfunction(fn := getattr(runner, name))
             for param, at in inspect.signature(fn).parameters.items() if at.annotation in ("bool", bool)]
    assert {("cancel", "void_unsent"), ("cancel", "same_account"), ("recover", "dry_run"), ("diff", "force"),
            ("run", "report"), ("load", "planned")} <= set(flags)
    for name, param in flags:
        for value in ("no", 0, None):
            with pytest.raises(UsageError, match=rf"^{param} must be True or False, got {value!r}$"):
                getattr(runner, name)(m, **{param: value})
    assert recorded() == before


def test_arguments_of_the_wrong_kind_are_refused_naming_the_argument_before_doing_anything(tmp_path: Path) -> None:
    """An argument of the wrong kind is a `UsageError` naming it, before anything is read, planned, sent or
    recorded, not an AttributeError or TypeError from deep inside (or, worse, accepted and failing midway)."""
    m = _small(tmp_path)
    assert runner.run(m, report=False).exit_code == 0
    before = [(r.run.id, r.run.status) for r in runner.runs(m)]
    from runner import providers

    refused = [
        (lambda: runner.export_rows(str(m)), r"^export_rows takes the Snapshot `runner\.status` returns .*got str$"),
        (lambda: runner.export_rows(runner.status(m), base=5), r"^base must be a folder's path \(or None\), got int$"),
        (lambda: runner.status(m, reuse=5), r"^reuse must be a dict \(or None\), .*got 5$"),
        (lambda: providers.get_provider("sim", state_dir=5), r"^state_dir must be a folder's path \(or None\), got int$"),
        (lambda: providers.get_provider("sim", base_url=5), r"^base_url must be a string \(or None\), got int$"),
        (lambda: providers.get_provider("sim", sim_config=[]), r"^sim_config must be a mapping .*got list$"),
        (lambda: runner.load(m, planned=True, max_jobs=0), r"^max_jobs must be an integer at least 1, got 0$"),
        (lambda: runner.load(m, max_jobs="x"), r"^max_jobs must be an integer at least 1, got 'x'$"),
        (lambda: runner.recover(m, argv="x", dry_run=True), r"^argv must be a list of the command line's words, "),
        (lambda: runner.cancel(m, on_wait=5), r"^on_wait must be a function \(or None\), got 5$"),
    ]
    for call, said in refused:
        with pytest.raises(UsageError, match=said):
            call()
    assert [(r.run.id, r.run.status) for r in runner.runs(m)] == before
    assert len(runner.export_rows(runner.status(m), base=str(tmp_path))) == 1
    assert providers.get_provider("sim", state_dir=str(tmp_path)).name == "sim"
    assert runner.load(m, planned=True, max_jobs=5).name == "t"


def test_the_functions_reading_a_manifests_state_take_the_plan_made_of_it(tmp_path: Path) -> None:
    """`run(plan)` takes the plan just made: so do `status`, `runs`, `report`, `export` and `cancel` (its manifest)."""
    m = _small(tmp_path)
    p = runner.plan(m)
    assert runner.run(p, report=False).exit_code == 0
    assert runner.status(p).run.id == runner.status(m).run.id == 1
    assert [s.run.id for s in runner.runs(p)] == [1]
    assert runner.report(p) == tmp_path / "outputs" / "t" / "report.html"
    assert runner.export(p, formats=["csv"]) == [tmp_path / "outputs" / "t" / "results.csv"]
    assert runner.cancel(p).cancelled == []


@pytest.mark.parametrize("raised", [ValueError, asyncio.CancelledError])
def test_an_on_progress_that_raises_is_kept_on_the_result_with_its_traceback_and_logged(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, raised: type[BaseException],
) -> None:
    """The run goes on without the view (it never breaks paid work), and the caller's bug is not hidden: the
    exception, its traceback reaching into the callback, is on the result and logged on the package's logger. So is
    an `asyncio.CancelledError` the callback raises (a widget driven through asyncio), not the run's own."""
    m = write_manifest(tmp_path, n_seeds=2, styles=("anime",), sim={"render_time": 0.1})
    calls = []

    def progress_bar(s: RunStatistics) -> None:
        calls.append(s)
        if len(calls) == 2:
            raise raised("bug in my callback")

    with caplog.at_level(logging.ERROR, logger="runner"):
        result = runner.run(m, provider=sim_provider(m), on_progress=progress_bar, report=False)
    assert result.exit_code == 0 and result.stats.counts["done"] == 2 and len(calls) == 2
    error = result.progress_error
    assert type(error) is raised and str(error) == "bug in my callback"
    frames = []
    tb = error.__traceback__
    while tb is not None:
        frames.append(tb.tb_frame.f_code.co_name)
        tb = tb.tb_next
    assert frames[-1] == "progress_bar", frames
    logged = [r for r in caplog.records if r.name == "runner"]
    assert len(logged) == 1 and logged[0].exc_info is not None and logged[0].exc_info[1] is error
    assert f"on_progress raised {raised.__name__}: bug in my callback" in logged[0].getMessage()
    assert runner.run(m, report=False).progress_error is None


@pytest.mark.parametrize("raised", [KeyboardInterrupt, SystemExit])
def test_a_ctrl_c_or_an_exit_out_of_on_progress_ends_the_run_interrupted_and_reaches_the_caller_once_it_is_closed(
    tmp_path: Path, capfd: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture,
    raised: type[BaseException],
) -> None:
    """A KeyboardInterrupt (Ctrl-C pressed while the callback runs) or a SystemExit (`sys.exit` in it) out of
    `on_progress`, once a job is at the provider: the run ends at once, recorded interrupted (not crashed), with no
    traceback of the event loop's shutdown; the very exception reaches the caller once the state is closed (its lock
    free), and the next run collects the job sent at no new cost, sending only the one never sent."""
    m = write_manifest(tmp_path, n_seeds=2, styles=("anime",), run={"concurrency": 1},
                       sim={"render_time": 0.5, "jitter": 0.0})
    prov = sim_provider(m)
    calls = []

    def progress_bar(s: RunStatistics) -> None:
        calls.append(s)
        if s.counts.get("submitted", 0) + s.counts.get("running", 0):
            raise raised(3) if raised is SystemExit else raised("pressed")

    with caplog.at_level(logging.DEBUG), pytest.raises(raised) as caught:
        runner.run(m, provider=prov, on_progress=progress_bar, report=False)
    assert caught.value.args == ((3,) if raised is SystemExit else ("pressed",)), caught.value
    del caught  # nor anything else that holds the exception, its traceback, the frames it went through
    gc.collect()  # a task whose exception was never retrieved is said so as it is collected
    snap = api.status(m)
    assert snap.run.status == "interrupted" and snap.run.ended_at is not None, snap.run
    assert sorted(j.state for j in snap.jobs) in (["planned", "submitted"], ["planned", "running"]), snap.jobs
    said = capfd.readouterr()
    assert "Traceback" not in said.out + said.err and "never retrieved" not in said.err, said
    assert not [r for r in caplog.records if r.name == "asyncio" and r.levelno >= logging.ERROR], caplog.records
    again = runner.run(m, provider=prov, report=False)  # the lock let go: the job sent is collected, not paid again
    assert again.exit_code == 0 and again.stats.counts["done"] == 2 and stats(prov)["creates"] == 2, again.stats


def test_an_on_balance_that_raises_refuses_the_run_with_nothing_recorded_nor_sent(tmp_path: Path) -> None:
    m = _small(tmp_path)
    prov = sim_provider(m)

    def on_balance(found: Any) -> None:
        raise RuntimeError("my balance check")

    with pytest.raises(RuntimeError, match="my balance check"):
        runner.run(m, provider=prov, on_balance=on_balance, report=False)
    assert stats(prov)["creates"] == 0
    with pytest.raises(NotRecordedError) as nothing:
        runner.status(m)
    assert not isinstance(nothing.value, RunStartingError)
    assert runner.run(m, provider=prov, report=False).exit_code == 0  # nothing held


@pytest.mark.timeout(60)
@pytest.mark.parametrize("held", ["looking_for_a_loop", "importing", "loading", "planning"])
def test_status_of_a_first_run_loading_or_planning_in_another_thread_says_it_is_starting(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, held: str,
) -> None:
    """A notebook starts a first run in a thread and polls `status`: from the call of `run`, while it imports what
    it sends with, loads and plans its manifest (seconds for a large grid), before any state folder is there, it is
    starting."""
    manifest_mod, plan_mod = api.manifest_mod, api.plan_mod
    m = _small(tmp_path)
    inside, go_on = threading.Event(), threading.Event()
    held_in: list[int] = []

    def holding(real: Any) -> Any:
        def held_there(*args: Any, **kwargs: Any) -> Any:
            if threading.get_ident() in held_in:  # the run's thread; the test's own `status` goes straight through
                inside.set()
                assert go_on.wait(30)
            return real(*args, **kwargs)
        return held_there

    if held == "looking_for_a_loop":  # sniffio imported the first time
        monkeypatch.setattr(api, "_in_event_loop", holding(api._in_event_loop))
    elif held == "importing":
        monkeypatch.setattr(api, "_load_httpx", holding(api._load_httpx))
    elif held == "loading":
        monkeypatch.setattr(manifest_mod, "load", holding(manifest_mod.load))
    else:
        monkeypatch.setattr(plan_mod, "build", holding(plan_mod.build))
    results: list[Any] = []

    def notebook_cell() -> None:
        held_in.append(threading.get_ident())
        results.append(runner.run(m, report=False))

    worker = threading.Thread(target=notebook_cell)
    worker.start()
    try:
        assert inside.wait(30)
        assert not (tmp_path / ".gridrun").exists()
        for ask in (runner.status, runner.runs):
            with pytest.raises(RunStartingError, match=rf"a run is starting \(pid {os.getpid()}\)") as starting:
                ask(m)
            assert starting.value.pid == os.getpid()
        other = _small(tmp_path, name="other")  # of the same state folder: not its run
        with pytest.raises(NotRecordedError) as not_theirs:
            runner.status(other)
        assert not isinstance(not_theirs.value, RunStartingError)
    finally:
        go_on.set()
        worker.join()
    assert results[0].exit_code == 0 and runner.status(m).run.id == 1
    with pytest.raises(NotRecordedError) as after:
        runner.status(_small(tmp_path, name="other"))
    assert not isinstance(after.value, RunStartingError)  # the run ended: nothing of this process starting


def _refused_in_another_loop(library: str, call: Any) -> UsageError:
    """What `call` raises in a thread where sniffio names `library`'s event loop as the one running."""
    import contextvars

    import sniffio

    def inside() -> Any:
        sniffio.current_async_library_cvar.set(library)
        return call()

    with pytest.raises(UsageError) as refused:
        contextvars.copy_context().run(inside)
    return refused.value


def test_run_and_cancel_under_another_async_library_are_refused_before_anything_is_made(tmp_path: Path) -> None:
    """Not only asyncio's loop: under trio (or any library sniffio names) `run` and `cancel` would fail inside,
    their own loop refused, after planning and locking; they are refused first, saying how instead."""
    m = _small(tmp_path)
    said = str(_refused_in_another_loop("trio", lambda: runner.run(m)))
    assert "from a running event loop (trio)" in said and "`await trio.to_thread.run_sync(runner.run, plan)`" in said
    assert not (tmp_path / ".gridrun").exists() and not (tmp_path / "outputs").exists()
    said = str(_refused_in_another_loop("curio", lambda: runner.cancel(m)))
    assert "(curio)" in said and "anyio.to_thread.run_sync(runner.cancel, manifest)" in said
    assert not (tmp_path / ".gridrun").exists()


def test_run_in_a_worker_thread_of_a_loop_anyio_started_runs(tmp_path: Path) -> None:
    """`asyncio.to_thread` copies the context of a loop `anyio.run` started, sniffio's name of it included, into a
    thread that runs no loop: the README's recipe runs there (a host built on anyio, pytest's anyio plugin), as
    `cancel` does."""
    import asyncio

    import anyio

    m = _small(tmp_path)
    said: list[Any] = []

    async def main() -> None:
        said.append(await asyncio.to_thread(runner.run, m, options={"handle_signals": False}))
        said.append(await asyncio.to_thread(runner.cancel, m))

    anyio.run(main)
    assert said[0].exit_code == 0 and said[0].status == "done", said[0]
    assert runner.status(m).run.status == "done"
    assert not said[1].finished and not said[1].still_running, said[1]


def test_run_and_cancel_inside_trio_are_refused_before_anything_is_made(tmp_path: Path) -> None:
    trio = pytest.importorskip("trio")
    m = _small(tmp_path)
    refused: list[Exception] = []

    async def main() -> None:
        for call in (runner.run, runner.cancel):
            try:
                call(m)
            except UsageError as exc:
                refused.append(exc)

    trio.run(main)
    assert len(refused) == 2 and all("(trio)" in str(e) for e in refused), refused
    assert not (tmp_path / ".gridrun").exists() and not (tmp_path / "outputs").exists()


def test_a_threshold_the_program_sets_during_a_run_stands_after_it() -> None:
    before = gc.get_threshold()
    try:
        gc.set_threshold(700, 10, 10)
        with api._running_here():
            assert gc.get_threshold() == (api.GC_YOUNG_THRESHOLD, 10, 10)
            gc.set_threshold(500, 10, 10)  # the program's own tuning, meanwhile
        assert gc.get_threshold() == (500, 10, 10)
        with api._running_here():
            pass
        assert gc.get_threshold() == (500, 10, 10)  # put back, as nothing changed it meanwhile
    finally:
        gc.set_threshold(*before)


def test_a_threshold_set_from_on_progress_stands_after_the_run(tmp_path: Path) -> None:
    m = _small(tmp_path)
    before = gc.get_threshold()
    try:
        gc.set_threshold(700, 10, 10)
        seen: list[tuple[int, ...]] = []

        def tune(s: RunStatistics) -> None:
            seen.append(gc.get_threshold())
            gc.set_threshold(1000, 10, 10)

        assert runner.run(m, on_progress=tune, report=False).exit_code == 0
        assert seen[0] == (api.GC_YOUNG_THRESHOLD, 10, 10) and gc.get_threshold() == (1000, 10, 10)
    finally:
        gc.set_threshold(*before)


def test_the_run_functions_type_hints_resolve_and_its_named_types_are_the_packages() -> None:
    """`typing.get_type_hints(runner.run)` (what pydantic's `validate_call`, typer and `inspect.signature(eval_str=True)`
    read) in a fresh interpreter, where the API has loaded neither the executor nor the HTTP stack yet; so do those
    of every function and class of the package (`runner.__all__`), whatever their annotations name; `runner.Diff`,
    `runner.export_rows` and `runner.RecoverResult`, which the docs name, are the package's names."""
    code = (
        "import inspect, sys, typing, runner\n"
        "run = runner.run\n"
        "assert 'runner.executor' not in sys.modules and 'httpx' not in sys.modules\n"
        "hints = typing.get_type_hints(run)\n"
        "from runner.executor import RunResult\n"
        "from runner.balance import BalanceCheck\n"
        "assert hints['return'] is RunResult, hints['return']\n"
        "assert BalanceCheck in typing.get_args(typing.get_args(hints['on_balance'])[0])[0], hints['on_balance']\n"
        "inspect.signature(run, eval_str=True)\n"
        "import collections.abc\n"
        "assert set(typing.get_args(hints['options'])) == {runner.RunOptions, collections.abc.Mapping[str, typing.Any]}\n"
        "for name in runner.__all__:\n"
        "    named = getattr(runner, name)\n"
        "    assert inspect.isfunction(named) or inspect.isclass(named), name\n"
        "    typing.get_type_hints(named)\n"
        "    if inspect.isfunction(named):\n"
        "        inspect.signature(named, eval_str=True)\n"
        "assert typing.get_type_hints(runner.recover)['return'] is runner.RecoverResult\n"
        "assert runner.RecoverResult is sys.modules['runner.recover'].RecoverResult\n"
        "assert runner.Diff is sys.modules['runner.plan'].Diff\n"
        "assert runner.export_rows is sys.modules['runner.export'].export_rows\n"
        "assert callable(runner.plan) and callable(runner.export)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert done.returncode == 0, done.stderr


def test_a_cancel_refused_by_a_run_of_another_thread_says_how_a_program_ends_that_run(tmp_path: Path) -> None:
    """A thread has no terminal to take a second Ctrl-C: the program ends its run with the Events it gave it."""
    m = _small(tmp_path)
    holder = Store(tmp_path / ".gridrun" / "state.db")
    taker = threading.Thread(target=holder.acquire_lock, kwargs={"manifest": m, "name": "t"})
    taker.start()
    taker.join()
    holder.start_run(manifest_name="t", manifest_path=str(m), manifest_copy="", outputs_dir=str(tmp_path / "outputs"),
                     provider="sim", model="pixverse-v5.6", axes=(), budget_micros=None)
    try:
        with pytest.raises(LockError) as refused:
            runner.cancel(m)
        said = str(refused.value)
        assert "run 1 of this manifest in this process (another thread) holds this state: stop it, then cancel: set " \
               "the `detach` Event given to its `runner.run`" in said, said
        assert "Ctrl-C" not in said and "terminal" not in said
        with pytest.raises(LockError) as refused:
            runner.run(m)
        said = str(refused.value)
        assert said.endswith("wait for it to end, then run again (setting the `stop` Event given to its `runner.run` "
                             "ends it once the jobs it sent are finished, its `detach` Event at once, those jobs left "
                             "in flight)"), said
    finally:
        holder.close()


def test_a_ctrl_c_while_the_state_closes_still_lets_both_locks_go(tmp_path: Path, monkeypatch: Any) -> None:
    """A second Ctrl-C landing as a run ends (while its state closes) is raised to the host, and the process holds
    neither the state's lock nor the output folder's: the next run of the notebook runs, and pays for nothing
    twice."""
    m = _small(tmp_path)
    closing = Store.close

    def interrupted(store: Store) -> None:
        real = store.db

        class Db:
            def __getattr__(self, name: str) -> Any:
                return getattr(real, name)

            def close(self) -> None:
                real.close()
                raise KeyboardInterrupt

        store.db = Db()  # type: ignore[assignment]
        closing(store)

    monkeypatch.setattr(Store, "close", interrupted)
    with pytest.raises(KeyboardInterrupt):
        runner.run(m, report=False)
    monkeypatch.setattr(Store, "close", closing)
    assert not state_mod._held_here
    again = runner.run(m, report=False)
    assert again.exit_code == 0 and again.stats.counts["done"] == again.stats.total == 1


@pytest.mark.parametrize("set_one", [True, False])
def test_run_and_cancel_leave_the_threads_event_loop_as_it_was(tmp_path: Path, set_one: bool) -> None:
    """A program keeping its own asyncio loop (`asyncio.set_event_loop`) finds it again after `runner.run` and a
    `runner.cancel` that cancels jobs, each on a loop of its own; a thread with none set is left with none set."""
    policy = asyncio.get_event_loop_policy()
    before = (policy._local._loop, policy._local._set_called)  # type: ignore[attr-defined]
    loop = asyncio.new_event_loop()
    try:
        if set_one:
            asyncio.set_event_loop(loop)
        m = write_manifest(tmp_path, n_seeds=1, styles=("anime",), sim={"render_time": 30, "jitter": 0})
        kept = (policy._local._loop, policy._local._set_called)  # type: ignore[attr-defined]
        assert runner.run(m, report=False, options=runner.RunOptions(timeout=0.2)).exit_code == 4
        assert (policy._local._loop, policy._local._set_called) == kept  # type: ignore[attr-defined]
        assert len(runner.cancel(m).cancelled) == 1
        assert (policy._local._loop, policy._local._set_called) == kept  # type: ignore[attr-defined]
        if set_one:
            assert asyncio.get_event_loop() is loop
    finally:
        loop.close()
        policy._local._loop, policy._local._set_called = before  # type: ignore[attr-defined]


def _error_of_every_class() -> list[BaseException]:
    """An instance of every error class of `runner.errors`, each field it takes given a value of its own."""
    from runner import errors

    inner = errors.CapabilityError("expected an integer", file="m.yaml", line=7, column=3, field="params.duration")
    values: dict[str, Any] = {"file": "m.yaml", "line": 4, "column": 2, "field": "params.seed", "pid": 4242,
                              "errors": [inner], "not_listed": 3, "status": 503, "code": "busy", "job_key": "k1",
                              "code_given": False, "retry_after": 1.5, "text": "version: 1\n", "base_url": "http://x",
                              "cost_micros": 5, "budget_micros": 4, "jobs": 3, "in_flight": 1, "jobs_fit": 2,
                              "balance_micros": 1, "sent": 2, "unanswered": 1}
    made = []
    for cls in vars(errors).values():
        if not (isinstance(cls, type) and issubclass(cls, BaseException) and cls.__module__ == errors.__name__):
            continue
        given = {name: values[name] for name, param in inspect.signature(cls.__init__).parameters.items()
                 if param.kind is param.KEYWORD_ONLY or name == "errors"}
        made.append(cls(*([] if "errors" in given else ["what went wrong"]), **given))
    assert len(made) >= 30, made
    return made


def test_every_error_class_goes_through_pickle_with_its_text_and_fields() -> None:
    """An error raised in a worker process (a `multiprocessing` pool planning many manifests) reaches the parent
    as it was raised: its class, text and fields."""
    import pickle

    for error in _error_of_every_class():
        back = pickle.loads(pickle.dumps(error))
        assert type(back) is type(error) and str(back) == str(error) and back.args == error.args, error
        fields = {k: [str(e) for e in v] if k == "errors" else v for k, v in vars(error).items()}
        assert {k: [str(e) for e in v] if k == "errors" else v for k, v in vars(back).items()} == fields, error


def test_a_snapshot_and_a_manifests_runs_go_through_pickle_with_what_they_expose(tmp_path: Path) -> None:
    """`runner.status` and `runner.runs` called in a worker process reach the parent as they were made: a
    `Snapshot` and `Runs` pickle (their runs hold no store, whose connection cannot), compare equal after, and their
    runs still tell whether the runner lock of their state folder is free."""
    import pickle

    m = _small(tmp_path)
    assert api.run(m, report=False).exit_code == 0
    snap, runs = api.status(m), api.runs(m)
    back = pickle.loads(pickle.dumps(snap))
    assert type(back) is type(snap) and back == snap
    assert (back.run, back.jobs, back.counts, back.spent_micros) == (snap.run, snap.jobs, snap.counts, snap.spent_micros)
    assert back.run.lock_free is not None and back.run.lock_free() is True and back.run.process_gone() is False
    again = pickle.loads(pickle.dumps(runs))
    assert type(again) is type(runs) and again == runs and again.warnings == runs.warnings
    assert [(r.run.id, r.done, r.spent_micros, r.run.state_folder) for r in again] == \
        [(r.run.id, r.done, r.spent_micros, r.run.state_folder) for r in runs]
    assert all(r.run.lock_free is not None and r.run.lock_free() for r in again)


def _plan_jobs(path: str) -> int:
    return len(runner.plan(path).jobs)


def test_a_manifest_error_in_a_process_pool_reaches_the_parent(tmp_path: Path) -> None:
    import concurrent.futures

    bad = tmp_path / "bad.yaml"
    bad.write_text("version: 1\nname: bad\nprovider: sim\nmodel: pixverse-v5.6\nparams:\n  prompt: x\n"
                   "  duration: banana\noutput: \"a.mp4\"\n")
    with concurrent.futures.ProcessPoolExecutor(1) as pool:
        with pytest.raises(runner.errors.ManifestError, match=r"bad\.yaml:7:3: params\.duration: ") as caught:
            pool.submit(_plan_jobs, str(bad)).result(timeout=60)
        assert caught.value.line == 7 and caught.value.file == bad
        assert pool.submit(_plan_jobs, str(_small(tmp_path))).result(timeout=60) == 1
