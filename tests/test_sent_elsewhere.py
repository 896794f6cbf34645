"""Jobs in flight at one endpoint are collected there only: a run left with jobs rendering at one base URL and run
again with another (the environment's variable changed, a manifest's `base_url:` added) would ask that other
server for videos it never had, wait out its 404s, record the paid renders `unknown` and offer to send them again,
while the first renders and bills them. `plan` says where they are and how to point the base URL back there, `run`
refuses before it sends anything (--leave-in-flight runs anyway, leaving them as they are), and `cancel` leaves them
alone; back at that endpoint, a run collects them at no cost.

Jobs a simulator answered (its `X-Gridrun-Simulator` header) are the exception: nothing was paid for them, and that
simulator may be gone, so a run elsewhere sends them anew rather than refusing. A provider is played by a simulator
with that header taken off its answers.

Each endpoint is a simulator served on 127.0.0.1 in a thread of its own (its request counts read directly)."""

from __future__ import annotations

import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Any

import pytest
import uvicorn
import yaml
from execkit import in_flight, wait_for, write_manifest

from runner import api
from runner.cli import main
from runner.errors import InFlightError
from runner.providers.base import SIMULATOR_HEADER
from runner.sim import SimConfig, create_app

ROOT = Path(__file__).resolve().parents[1]


class _Logged:
    """The simulator, with the path of every request it takes kept in `paths`; not `marked`, its header taken off
    every answer: a provider, as far as a run can tell."""

    def __init__(self, app: Any, *, marked: bool = True) -> None:
        self.app = app
        self.paths: list[str] = []
        self.marked = marked

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            self.paths.append(scope["path"])

        async def unmarked(message: Any) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [(k, v) for k, v in message.get("headers", ())
                                      if k.lower() != SIMULATOR_HEADER.lower().encode()]
            await send(message)

        await self.app(scope, receive, send if self.marked else unmarked)


@contextmanager
def serving(render_time: float, *, marked: bool = True) -> Iterator[tuple[str, Any]]:
    """A simulator served on 127.0.0.1, its renders `render_time` s long (not `marked`: answering as a provider
    would, without the simulator's header); yields its base URL and its `Sim` (with `paths`: the path of each
    request it took)."""
    app = create_app(SimConfig(render_time=render_time, jitter=0.0, max_side=64, fps=4))
    logged = _Logged(app, marked=marked)
    app.state.sim.paths = logged.paths
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(logged, log_level="warning", access_log=False, lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the simulator did not start"
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}/v1", app.state.sim
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


def asked(sim: Any) -> dict[str, int]:
    """The requests the simulator `sim` took, by route."""
    return {route: n for route, n in sim.stats()["requests"].items() if n}


def video_ids(m: Path) -> list[str]:
    with closing(sqlite3.connect(m.parent / ".gridrun" / "state.db")) as db:
        return [row[0] for row in db.execute("SELECT provider_id FROM jobs WHERE provider_id IS NOT NULL")]


def asked_for(sim: Any, ids: list[str]) -> list[str]:
    """The paths of the requests `sim` took that name one of the videos `ids`."""
    return [path for path in sim.paths if any(i in path for i in ids)]


def states(m: Path) -> dict[str, str]:
    with closing(sqlite3.connect(m.parent / ".gridrun" / "state.db")) as db:
        return dict(db.execute("SELECT key, state FROM jobs").fetchall())


def killed_in_flight(m: Path, env: dict[str, str]) -> None:
    """A run of `m` killed (SIGKILL) once two of its jobs render."""
    proc = subprocess.Popen([sys.executable, "-m", "runner.cli", "run", str(m), "--no-report"], cwd=m.parent,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env={**os.environ, **env, "PYTHONPATH": str(ROOT)})
    try:
        wait_for(lambda: in_flight(m) >= 2)
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)


def lumenfall(tmp_path: Path) -> Path:
    return write_manifest(tmp_path, n_seeds=2, styles=("anime",), provider="lumenfall", sim={},
                          run={"poll_interval": 0.05, "concurrency": 2})


@pytest.mark.timeout(180)
def test_jobs_in_flight_at_another_base_url_are_named_refused_and_collected_back_there(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Killed with jobs rendering at A, the base URL now B (the environment's variable): plan names A and the
    variable to set, run refuses before anything reaches B; with the variable pointed back at A (written otherwise:
    another loopback name, /openai/v1, a trailing slash), the run collects them, no create sent again."""
    monkeypatch.setenv("LUMENFALL_API_KEY", "x")
    m = lumenfall(tmp_path)
    with serving(3.0, marked=False) as (a, sim_a), serving(0.05) as (b, sim_b):
        killed_in_flight(m, {"LUMENFALL_BASE_URL": a, "LUMENFALL_API_KEY": "x"})
        before = states(m)
        sent = sim_a.stats()["creates"]
        assert len(before) == 2 and set(before.values()) <= {"submitted", "running"}, before
        monkeypatch.setenv("LUMENFALL_BASE_URL", b)
        d = api.diff(api.plan(m))
        assert d is not None
        for key in before:
            reason = d.reasons[key]
            assert "attach" not in reason and a in reason and f"LUMENFALL_BASE_URL={a}" in reason, reason
        assert set(d.sent_elsewhere.values()) == {a}
        assert d.following == ()  # not counted as followed by a run here
        capsys.readouterr()
        assert main(["plan", str(m)]) == 0
        shown = capsys.readouterr()
        assert "`gridrun run` would refuse to start" in shown.err and a in shown.err, shown.err
        assert "LUMENFALL_BASE_URL in the environment" in shown.err, shown.err
        assert main(["plan", str(m), "--json"]) == 0
        doc = json.loads(capsys.readouterr().out)
        assert {job["endpoint"] for job in doc["sent_elsewhere"]["jobs"].values()} == {a}
        assert doc["against_state"]["in_flight"] == 2 and doc["sent_elsewhere"]["message"].count(a) >= 1
        assert main(["run", str(m), "--no-report"]) == InFlightError.exit_code
        said = capsys.readouterr().err
        assert a in said and b in said and "LUMENFALL_BASE_URL in the environment" in said, said
        assert f"LUMENFALL_BASE_URL={a}" in said and "--leave-in-flight" in said, said
        with pytest.raises(InFlightError):
            api.run(m, report=False)
        assert main(["status", str(m)]) == 0  # of the run killed: how to collect them, not "`gridrun run` resumes it"
        shown = capsys.readouterr().out
        assert f"set LUMENFALL_BASE_URL={a}, then `gridrun run` collects the 2 jobs sent to {a}" in shown, shown
        assert main(["status", str(m), "--json"]) == 0
        doc = json.loads(capsys.readouterr().out)
        assert sorted(e["key"] for e in doc["sent_elsewhere"]) == sorted(before), doc["sent_elsewhere"]
        assert {e["endpoint"] for e in doc["sent_elsewhere"]} == {a} and doc["sent_anew"] == [], doc
        assert all(f"LUMENFALL_BASE_URL={a}" in e["point_back"] for e in doc["sent_elsewhere"]), doc["sent_elsewhere"]
        assert asked(sim_b) == {}  # nothing at all reached B: no GET of A's videos, no create, no balance
        assert states(m) == before
        with closing(sqlite3.connect(m.parent / ".gridrun" / "state.db")) as db, db:  # as sent by an older gridrun
            db.execute("UPDATE attempts SET endpoint = NULL")
        d = api.diff(api.plan(m))
        assert d is not None and not d.sent_elsewhere and d.sent_away is None
        assert all(d.reasons[k].endswith("attach, pay nothing new") for k in before), d.reasons
        with closing(sqlite3.connect(m.parent / ".gridrun" / "state.db")) as db, db:
            db.execute("UPDATE attempts SET endpoint = ?", (a,))
        port = a.split(":")[2].split("/")[0]
        monkeypatch.setenv("LUMENFALL_BASE_URL", f"http://localhost:{port}/openai/v1/")
        d = api.diff(api.plan(m))
        assert d is not None and not d.sent_elsewhere
        assert all("attach, pay nothing new" in d.reasons[k] for k in before), d.reasons
        result = api.run(m, report=False)
        assert result.exit_code == 0 and set(states(m).values()) == {"done"}
        assert sim_a.stats()["creates"] == sent and asked(sim_b) == {}


@pytest.mark.timeout(180)
def test_leave_in_flight_runs_anyway_and_leaves_them_for_a_run_there(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """--leave-in-flight at B: the jobs sent to A are neither asked for at B nor moved; a run at A collects them."""
    monkeypatch.setenv("LUMENFALL_API_KEY", "x")
    m = lumenfall(tmp_path)
    with serving(3.0, marked=False) as (a, sim_a), serving(0.05) as (b, sim_b):
        killed_in_flight(m, {"LUMENFALL_BASE_URL": a, "LUMENFALL_API_KEY": "x"})
        before, ids = states(m), video_ids(m)
        assert len(ids) == 2
        doc = yaml.safe_load(m.read_text())
        doc["matrix"]["seed"] = {"range": [1, 3]}  # one job more, sent at B
        m.write_text(yaml.safe_dump(doc, sort_keys=False))
        monkeypatch.setenv("LUMENFALL_BASE_URL", b)
        capsys.readouterr()
        main(["run", str(m), "--no-report", "--leave-in-flight"])
        end = capsys.readouterr().err.strip().splitlines()[-1]
        assert f"set LUMENFALL_BASE_URL={a}, then `gridrun run` collects the 2 jobs sent to {a}" in end, end
        assert "collects the 2 jobs left in flight" not in end, end
        assert main(["status", str(m)]) == 0
        shown = capsys.readouterr().out
        assert f"next: set LUMENFALL_BASE_URL={a}, then `gridrun run` collects the 2 jobs sent to {a}" in shown, shown
        assert sim_b.stats()["creates"] == 1 and asked_for(sim_b, ids) == [], sim_b.paths
        assert "requests" not in asked(sim_b), asked(sim_b)  # nor its request log read for their keys
        after = states(m)
        assert {k: after[k] for k in before} == before and after["style=anime,seed=3"] == "done", after
        monkeypatch.setenv("LUMENFALL_BASE_URL", a)
        sent = sim_a.stats()["creates"]
        assert api.run(m, report=False).exit_code == 0
        # the two collected, not sent again; the one made by the simulator at B, a placeholder, rendered here again
        assert set(states(m).values()) == {"done"} and sim_a.stats()["creates"] == sent + 1


@pytest.mark.timeout(180)
def test_the_simulator_built_in_then_served_is_another_endpoint(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`provider: sim` run in process, killed with jobs rendering, then `base_url:` added to watch it on a served
    simulator. Of no record whether a simulator answered them (as a provider's): refused, naming the simulator built
    in and the manifest's field. Recorded as the simulator's (as a run records them): sent anew at the served one."""
    m = write_manifest(tmp_path, n_seeds=2, styles=("anime",), sim={"render_time": 3.0, "jitter": 0.0},
                       run={"poll_interval": 0.05, "concurrency": 2})
    killed_in_flight(m, {})
    before = states(m)
    assert len(before) == 2 and set(before.values()) <= {"submitted", "running"}, before
    assert simulator_marks(m) == [1, 1]
    with serving(0.05) as (b, sim_b):
        doc = yaml.safe_load(m.read_text())
        doc["base_url"] = b
        m.write_text(yaml.safe_dump(doc, sort_keys=False))
        set_marks(m, None)
        d = api.diff(api.plan(m))
        assert d is not None and all("remove `base_url:`" in d.reasons[k] for k in before), d.reasons
        assert set(d.sent_elsewhere.values()) == {"in process"}
        capsys.readouterr()
        assert main(["run", str(m), "--no-report"]) == InFlightError.exit_code
        said = capsys.readouterr().err
        assert "in process" in said and f"base_url: of {m}" in said and "remove `base_url:`" in said, said
        # named as the simulator built in, not as a place called "in process"; the served one may well share its world
        assert "were sent to the simulator built in (in process), not to the endpoint now" in said, said
        assert "which may not know them" in said and "does not know" not in said, said
        assert all("at the simulator built in (in process), not the endpoint now" in d.reasons[k] for k in before), \
            d.reasons
        assert main(["status", str(m)]) == 0
        shown = capsys.readouterr().out
        assert "collects the 2 jobs sent to the simulator built in (in process) at no new cost" in shown, shown
        assert asked(sim_b) == {} and states(m) == before
        set_marks(m, 1)
        d = api.diff(api.plan(m))
        assert d is not None and d.sent_away is None and set(d.anew.values()) == {"in process"}, d.reasons
        assert api.run(m, report=False).exit_code == 0
        assert set(states(m).values()) == {"done"} and sim_b.stats()["creates"] == 2


def simulator_marks(m: Path) -> list[int | None]:
    """Each job's latest attempt's mark of a simulator's answer (`attempts.simulator`), in job order."""
    with closing(sqlite3.connect(m.parent / ".gridrun" / "state.db")) as db:
        return [row[0] for row in db.execute(
            "SELECT a.simulator FROM jobs j JOIN attempts a ON a.job_id = j.id AND a.n = j.attempts ORDER BY j.id")]


def set_marks(m: Path, mark: int | None) -> None:
    """Every attempt's mark set to `mark` (None: of no record, as a provider's)."""
    with closing(sqlite3.connect(m.parent / ".gridrun" / "state.db")) as db, db:
        db.execute("UPDATE attempts SET simulator = ?", (mark,))


def creates_by_job(m: Path) -> dict[str, list[tuple[str | None, str, int | None]]]:
    """Each job's attempts: (endpoint, state, simulator mark), in order."""
    out: dict[str, list[tuple[str | None, str, int | None]]] = {}
    with closing(sqlite3.connect(m.parent / ".gridrun" / "state.db")) as db:
        for key, at, state, mark in db.execute(
            "SELECT j.key, a.endpoint, a.state, a.simulator FROM attempts a JOIN jobs j ON j.id = a.job_id"
            " ORDER BY j.id, a.n"):
            out.setdefault(key, []).append((at, state, mark))
    return out


@pytest.mark.timeout(180)
def test_jobs_in_flight_at_a_served_simulator_that_is_gone_are_sent_anew_elsewhere(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Killed with jobs rendering at simulator A, A stopped, the base URL now B: nothing was paid at A, so plan says
    they are sent anew, status and cancel say so too, and a plain run (no --leave-in-flight) starts, sends each once
    at B and ends with them done, A's attempts left behind; a run after it sends nothing. The same jobs with their
    marks of no record (a provider's, as far as gridrun knows) are refused as before."""
    monkeypatch.setenv("LUMENFALL_API_KEY", "x")
    m = lumenfall(tmp_path)
    with serving(30.0) as (a, _):
        killed_in_flight(m, {"LUMENFALL_BASE_URL": a, "LUMENFALL_API_KEY": "x"})
    before = states(m)
    assert len(before) == 2 and set(before.values()) <= {"submitted", "running"}, before
    assert simulator_marks(m) == [1, 1]
    anew = f"sent to a simulator at {a}, nothing paid: sent here anew"
    with serving(0.05) as (b, sim_b):
        monkeypatch.setenv("LUMENFALL_BASE_URL", b)
        set_marks(m, None)  # of no record: taken for a provider's, refused as ever
        d = api.diff(api.plan(m))
        assert d is not None and d.sent_away is not None and set(d.sent_elsewhere.values()) == {a}
        assert not any("nothing paid" in d.reasons[k] for k in before), d.reasons
        with pytest.raises(InFlightError):
            api.run(m, report=False)
        assert asked(sim_b) == {} and states(m) == before
        set_marks(m, 1)
        d = api.diff(api.plan(m))
        assert d is not None and d.sent_away is None and not d.sent_elsewhere, d.reasons
        assert {k: d.reasons[k] for k in before} == dict.fromkeys(before, anew)
        assert d.new == 2 and d.in_flight == 0 and d.anew == dict.fromkeys(before, a)
        capsys.readouterr()
        assert main(["plan", str(m)]) == 0
        shown = capsys.readouterr()
        assert "would refuse" not in shown.err and "2 of them were sent to a simulator" in shown.out, shown
        assert main(["plan", str(m), "--json"]) == 0
        doc = json.loads(capsys.readouterr().out)
        assert doc["sent_elsewhere"] is None and doc["against_state"]["sent_to_simulator_elsewhere"] == 2
        assert main(["status", str(m)]) == 0
        shown = capsys.readouterr().out
        assert f"`gridrun run` sends anew here the 2 jobs sent to a simulator at {a}" in shown, shown
        assert main(["status", str(m), "--json"]) == 0
        doc = json.loads(capsys.readouterr().out)
        assert doc["sent_elsewhere"] == [] and sorted(e["key"] for e in doc["sent_anew"]) == sorted(before), doc
        assert {e["endpoint"] for e in doc["sent_anew"]} == {a}, doc["sent_anew"]
        assert "LUMENFALL_BASE_URL=" not in shown, shown
        assert main(["cancel", str(m)]) == 0
        said = "".join(capsys.readouterr())
        assert "2 jobs in flight" in said and f"sent to a simulator at {a}, nothing paid" in said, said
        assert asked(sim_b) == {} and states(m) == before
        result = api.run(m, report=False)
        assert result.exit_code == 0 and set(states(m).values()) == {"done"}
        assert sim_b.stats()["creates"] == 2
        for key, attempts in creates_by_job(m).items():
            assert [(at, state) for at, state, _ in attempts] == [(a, "cancelled"), (b, "done")], (key, attempts)
        with closing(sqlite3.connect(m.parent / ".gridrun" / "state.db")) as db:
            left = [json.loads(row[0]) for row in db.execute("SELECT detail FROM events WHERE kind='simulator-left'")]
        assert len(left) == 2 and all(e["endpoint"] == a and e["reason"] == anew for e in left), left
        assert api.run(m, report=False).exit_code == 0 and sim_b.stats()["creates"] == 2


@pytest.mark.timeout(180)
def test_jobs_in_flight_at_a_served_simulator_that_is_gone_are_sent_anew_in_process(tmp_path: Path) -> None:
    """`provider: sim` with `base_url:` of a served simulator, killed with jobs rendering, the server stopped and the
    field removed: a plain run sends them anew to the simulator built in, and ends with them done."""
    m = write_manifest(tmp_path, n_seeds=2, styles=("anime",), sim={"render_time": 0.05, "jitter": 0.0},
                       run={"poll_interval": 0.05, "concurrency": 2})
    doc = yaml.safe_load(m.read_text())
    with serving(30.0) as (a, _):
        m.write_text(yaml.safe_dump({**doc, "base_url": a}, sort_keys=False))
        killed_in_flight(m, {})
    assert set(states(m).values()) <= {"submitted", "running"} and simulator_marks(m) == [1, 1]
    m.write_text(yaml.safe_dump(doc, sort_keys=False))
    assert api.run(m, report=False).exit_code == 0
    assert set(states(m).values()) == {"done"}
    for key, attempts in creates_by_job(m).items():
        assert [(at, state) for at, state, _ in attempts] == [(a, "cancelled"), ("in process", "done")], (key, attempts)


@pytest.mark.timeout(180)
def test_cancel_leaves_jobs_in_flight_at_another_endpoint_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """cancel at B asks B nothing of the jobs sent to A, names A and how to cancel them there; at A it cancels them."""
    monkeypatch.setenv("LUMENFALL_API_KEY", "x")
    m = lumenfall(tmp_path)
    with serving(30.0, marked=False) as (a, _), serving(0.05) as (b, sim_b):
        killed_in_flight(m, {"LUMENFALL_BASE_URL": a, "LUMENFALL_API_KEY": "x"})
        before = states(m)
        monkeypatch.setenv("LUMENFALL_BASE_URL", b)
        capsys.readouterr()
        code = main(["cancel", str(m)])
        shown = capsys.readouterr()
        assert code != 0 and asked(sim_b) == {} and states(m) == before, (shown, asked(sim_b))
        said = shown.out + shown.err
        assert a in said and f"LUMENFALL_BASE_URL={a}" in said, said
        # nothing is asked of the provider at B, so no API key is needed to say so
        monkeypatch.delenv("LUMENFALL_API_KEY")
        assert main(["cancel", str(m)]) == code
        shown = capsys.readouterr()
        said = shown.out + shown.err
        assert "not cancelled, nothing asked of it" in said and "API key" not in said, said
        assert asked(sim_b) == {} and states(m) == before
        monkeypatch.setenv("LUMENFALL_API_KEY", "x")
        monkeypatch.setenv("LUMENFALL_BASE_URL", a)
        assert main(["cancel", str(m)]) == 0
        assert set(states(m).values()) == {"cancelled"} and asked(sim_b) == {}


@pytest.mark.timeout(180)
def test_jobs_of_unknown_outcome_sent_to_another_endpoint_are_looked_up_there_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Jobs recorded `unknown` (their videos not found where they were asked for) that were sent to A: a plain run at
    B would look them up in B's request log, or ask B for their videos, and send again what B never saw; it refuses,
    naming A. At A the run finds them and collects them, nothing sent again."""
    from runner.state import JobState, Store

    monkeypatch.setenv("LUMENFALL_API_KEY", "x")
    m = lumenfall(tmp_path)
    with serving(0.5, marked=False) as (a, sim_a), serving(0.05) as (b, sim_b):
        killed_in_flight(m, {"LUMENFALL_BASE_URL": a, "LUMENFALL_API_KEY": "x"})
        with Store(m.parent / ".gridrun" / "state.db") as store:  # as a run at B before gridrun knew better left them
            with closing(sqlite3.connect(m.parent / ".gridrun" / "state.db")) as db:
                ids = [row[0] for row in db.execute("SELECT id FROM jobs")]
            for jid in ids:
                store.transition(jid, JobState.UNKNOWN, error="the provider has had no video for 60 s")
        before = states(m)
        assert set(before.values()) == {"unknown"}, before
        monkeypatch.setenv("LUMENFALL_BASE_URL", b)
        d = api.diff(api.plan(m))
        assert d is not None and all(a in d.reasons[k] and "unknown" in d.reasons[k] for k in before), d.reasons
        assert not d.looked_up
        capsys.readouterr()
        assert main(["run", str(m), "--no-report"]) == InFlightError.exit_code
        said = capsys.readouterr().err
        assert a in said and "2 of unknown outcome" in said, said
        assert asked(sim_b) == {} and states(m) == before
        monkeypatch.setenv("LUMENFALL_BASE_URL", a)
        sent = sim_a.stats()["creates"]
        assert api.run(m, report=False).exit_code == 0
        assert set(states(m).values()) == {"done"} and sim_a.stats()["creates"] == sent and asked(sim_b) == {}


@pytest.mark.timeout(180)
def test_jobs_in_flight_sent_by_another_provider_name_that_provider_and_its_variables(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Killed with jobs rendering at A under `provider: lumenfall`, the manifest then switched to `provider: sim`:
    `status` and `cancel` say to put `provider: lumenfall` back and point LUMENFALL_BASE_URL at A (its key in
    LUMENFALL_API_KEY), not to set a `base_url:` under `provider: sim`, which would send the simulator's key there
    and collect nothing (the jobs are lumenfall's)."""
    monkeypatch.setenv("LUMENFALL_API_KEY", "x")
    m = lumenfall(tmp_path)
    with serving(30.0, marked=False) as (a, _):
        killed_in_flight(m, {"LUMENFALL_BASE_URL": a, "LUMENFALL_API_KEY": "x"})
        before = states(m)
        assert len(before) == 2
        doc = yaml.safe_load(m.read_text())
        doc["provider"] = "sim"
        m.write_text(yaml.safe_dump(doc, sort_keys=False))
        monkeypatch.delenv("LUMENFALL_BASE_URL", raising=False)
        capsys.readouterr()
        assert main(["status", str(m)]) == 0
        shown = capsys.readouterr().out
        assert "`base_url:" not in shown, shown
        assert "put back `provider: lumenfall`" in shown and f"LUMENFALL_BASE_URL={a}" in shown, shown
        assert "LUMENFALL_API_KEY" in shown, shown
        code = main(["cancel", str(m)])
        shown = capsys.readouterr()
        said = shown.out + shown.err
        assert code != 0 and states(m) == before, said
        assert "`base_url:" not in said, said
        assert "put back `provider: lumenfall`" in said and f"LUMENFALL_BASE_URL={a}" in said, said
