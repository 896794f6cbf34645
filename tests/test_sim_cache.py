"""A simulator's videos are cached only for runs against that same simulator: a run against another endpoint (the
real gateway, after trying a manifest on `gridrun sim serve`) renders them again, once, keeping the placeholder
take aside; a provider's videos, and takes recorded before gridrun kept where they were made, stay cached.

The simulator is served on 127.0.0.1 in a thread; "the real gateway" is another served simulator whose answers
carry no `X-Gridrun-Simulator` header (a test double: nothing here talks to a provider)."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from execkit import Unmarked, in_flight, served, sha256, wait_for, write_manifest
from statekit import columns_of

from runner import api
from runner.cli import main
from runner.jobs import usd_text
from runner.plan import ELSEWHERE
from runner.providers.base import SIMULATOR_HEADER
from runner.sim import SimConfig, create_app
from runner.sim.serve import running_server
from runner.state import SCHEMA_VERSION, TAKES_MADE_AT

KNOBS = {"render_time": 0.05, "jitter": 0.0, "max_side": 64, "fps": 4}


@contextmanager
def serving(*, marked: bool) -> Iterator[tuple[str, Any]]:
    """A simulator served on 127.0.0.1 (marked: as `gridrun sim serve` serves it; else as a provider would
    answer); yields its base URL and its `Sim` (for its counts)."""
    app = create_app(SimConfig(**KNOBS))
    with served(app if marked else Unmarked(app)) as origin:
        yield f"{origin}/v1", app.state.sim


@pytest.fixture(scope="module")
def sim() -> Iterator[tuple[str, Any]]:
    with serving(marked=True) as served:
        yield served


@pytest.fixture(scope="module")
def real() -> Iterator[tuple[str, Any]]:
    with serving(marked=False) as served:
        yield served


def creates(served: tuple[str, Any]) -> int:
    return int(served[1].stats()["creates"])


def manifest(tmp_path: Path, url: str, provider: str = "sim") -> Path:
    """One job, sent to `url` (rewritten in place: the job, its hash, stays the same)."""
    return write_manifest(tmp_path, n_seeds=1, styles=("anime",), provider=provider, base_url=url,
                          run={"poll_interval": 0.05})


@pytest.fixture
def lumenfall(monkeypatch: pytest.MonkeyPatch) -> str:
    """The provider whose endpoint may be a simulator or not (`provider: sim` sends only to a simulator); the served
    ones here take any key."""
    monkeypatch.setenv("LUMENFALL_API_KEY", "lmnfl_test_key_0123456789")
    monkeypatch.delenv("LUMENFALL_BASE_URL", raising=False)
    return "lumenfall"


def to(m: Path, url: str) -> Path:
    doc = yaml.safe_load(m.read_text())
    doc["base_url"] = url
    m.write_text(yaml.safe_dump(doc, sort_keys=False))
    return m


def takes(m: Path) -> list[tuple[Any, ...]]:
    """Each attempt of the state's jobs: (n, state, endpoint, simulator)."""
    with closing(sqlite3.connect(m.parent / ".gridrun" / "state.db")) as db:
        return db.execute("SELECT n, state, endpoint, simulator FROM attempts ORDER BY job_id, n").fetchall()


def test_the_simulator_marks_every_answer(sim: tuple[str, Any], real: tuple[str, Any]) -> None:
    with httpx.Client(trust_env=False) as client:
        for path in ("/videos", "/balance", "/no-such-route"):
            assert client.get(sim[0] + path).headers.get(SIMULATOR_HEADER) == "1", path
        assert SIMULATOR_HEADER not in client.get(real[0] + "/videos").headers


def test_a_simulators_video_is_rendered_again_once_against_another_endpoint_its_take_kept(
    tmp_path: Path, sim: tuple[str, Any], real: tuple[str, Any], lumenfall: str,
    capsys: pytest.CaptureFixture[str]
) -> None:
    m = manifest(tmp_path, sim[0], lumenfall)
    first = api.run(m, report=False)
    assert first.exit_code == 0
    (job,) = api.status(m).jobs
    placeholder = job.provider_id
    assert takes(m) == [(1, "done", sim[0], 1)]

    to(m, real[0])
    plan = api.plan(m)
    d = api.diff(plan)
    assert d is not None and d.reasons[job.key] == ELSEWHERE and d.simulator_at == {job.key: sim[0]}
    assert [j.key for j in d.to_send(plan.jobs)] == [job.key] == [j.key for j in d.budgeted(plan.jobs)]
    assert main(["plan", str(m), "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["jobs"][0]["status"] == ELSEWHERE and shown["jobs"][0]["made_by_simulator_at"] == sim[0]
    assert shown["run_micros"] == plan.total_micros and shown["against_state"]["made_by_simulator_elsewhere"] == 1
    assert main(["plan", str(m)]) == 0
    table = capsys.readouterr().out
    assert "1 to submit" in table and "made by a simulator" in table and sim[0] in table

    before = creates(real)
    second = api.run(m, report=False)
    assert second.exit_code == 0 and creates(real) == before + 1  # paid once, at the other endpoint
    assert second.stats.spent_micros == plan.total_micros
    (now,) = api.status(m).jobs
    assert now.state == "done" and now.provider_id != placeholder
    kept = [p for p in (m.parent / "outputs" / "t" / ".runs" / "superseded").rglob("*.mp4")
            if sha256(p) == job.sha256 and json.loads(p.with_suffix(".json").read_text())["provider_id"] == placeholder]
    assert len(kept) == 1  # the simulator's take, kept aside as --force keeps one
    assert takes(m) == [(1, "done", sim[0], 1), (2, "done", real[0], 0)]

    # the provider's video now: cached under any endpoint, the simulator's too, paid for no more
    for url in (real[0], sim[0]):
        to(m, url)
        d = api.diff(api.plan(m))
        assert d is not None and d.cached == 1 and d.new == 0
    third = api.run(m, report=False)
    assert third.exit_code == 0 and third.stats.spent_micros == 0 and creates(real) == before + 1


def test_against_the_same_simulator_its_video_is_cached(tmp_path: Path, sim: tuple[str, Any]) -> None:
    m = manifest(tmp_path, sim[0])
    assert api.run(m, report=False).exit_code == 0
    before = creates(sim)
    d = api.diff(api.plan(m))
    assert d is not None and d.cached == 1 and d.new == 0
    assert list(d.simulator_at.values()) == [sim[0]]  # known as the simulator's, and cached here
    again = api.run(m, report=False)
    assert again.exit_code == 0 and again.stats.spent_micros == 0 and creates(sim) == before


def test_provider_sim_sends_nothing_to_a_server_that_is_not_a_simulator(
    tmp_path: Path, real: tuple[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    """A server on this machine without the simulator's mark may be a gateway to a paid API: `provider: sim`, free,
    sends it no create and records nothing."""
    m = manifest(tmp_path, real[0])
    before = creates(real)
    assert main(["run", str(m), "--no-report"]) == 1
    err = capsys.readouterr().err
    assert f"{real[0]} (`base_url:` at {m}:" in err and "is not gridrun's simulator" in err, err
    assert creates(real) == before
    assert takes(m) == []


def test_a_providers_video_is_cached_under_any_endpoint(
    tmp_path: Path, sim: tuple[str, Any], real: tuple[str, Any], lumenfall: str
) -> None:
    m = manifest(tmp_path, real[0], lumenfall)
    assert api.run(m, report=False).exit_code == 0
    assert takes(m) == [(1, "done", real[0], 0)]
    for url in (sim[0], "http://127.0.0.1:9/v1"):  # a simulator, a proxy: the same account's video
        d = api.diff(api.plan(to(m, url)))
        assert d is not None and d.cached == 1 and d.new == 0 and d.simulator_at == {}
    before = creates(sim)
    again = api.run(to(m, sim[0]), report=False)
    assert again.exit_code == 0 and again.stats.spent_micros == 0 and creates(sim) == before


def test_a_state_from_before_takes_recorded_where_they_were_made_is_cached_and_upgraded(
    tmp_path: Path, sim: tuple[str, Any], real: tuple[str, Any], lumenfall: str
) -> None:
    m = manifest(tmp_path, sim[0], lumenfall)
    assert api.run(m, report=False).exit_code == 0
    db = m.parent / ".gridrun" / "state.db"
    with closing(sqlite3.connect(db)) as conn:  # as a gridrun of the schema before left it
        conn.execute("ALTER TABLE attempts DROP COLUMN endpoint")
        conn.execute("ALTER TABLE attempts DROP COLUMN simulator")
        conn.execute("ALTER TABLE jobs DROP COLUMN render_span")
        conn.execute("ALTER TABLE runs DROP COLUMN duration")
        conn.execute("ALTER TABLE runs DROP COLUMN key_print")
        conn.execute(f"PRAGMA user_version = {TAKES_MADE_AT - 1}")
        conn.commit()
    to(m, real[0])
    d = api.diff(api.plan(m))  # read as it is: no take has a record, none is guessed
    assert d is not None and d.cached == 1 and d.new == 0 and d.simulator_at == {}
    before = creates(real)
    again = api.run(m, report=False)
    assert again.exit_code == 0 and again.stats.spent_micros == 0 and creates(real) == before
    with closing(sqlite3.connect(db)) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    assert {"endpoint", "simulator"} <= set(columns_of(db)["attempts"])
    assert takes(m) == [(1, "done", None, None)]


def test_where_a_take_is_made_is_written_ahead_and_a_later_run_elsewhere_keeps_it(tmp_path: Path) -> None:
    """The endpoint is recorded with the attempt, before its create is sent, and the simulator's mark once its
    answer came: a run against another endpoint that finds the video saved (a run killed before it recorded it
    done) records it done, the take still the simulator's, made where it was."""
    from runner.state import JobState, Store

    with Store(tmp_path / "state.db") as store:
        run = store.start_run(manifest_name="m", manifest_path="m.yaml", manifest_copy="", outputs_dir=str(tmp_path),
                              provider="sim", model="pixverse-v5.6", axes=[], budget_micros=None)
        job = {"hash": "0" * 64, "key": "k", "sweep": None, "values": {}, "params": {"prompt": "p"},
               "output_path": str(tmp_path / "k.mp4"), "cost_estimate_micros": 350_000, "width": 960,
               "height": 540, "duration": 5}
        jid = store.add_jobs(run, [job])["0" * 64]
        store.begin_submit(run, [jid], made=("http://127.0.0.1:1/v1", False))
        with closing(sqlite3.connect(tmp_path / "state.db")) as other:  # committed before the create is sent
            assert other.execute("SELECT endpoint, simulator FROM attempts").fetchall() == [("http://127.0.0.1:1/v1", 0)]
        store.transition(jid, JobState.SUBMITTED, provider_id="v1", made=("http://127.0.0.1:1/v1", True))
        store.transition(jid, JobState.DOWNLOADING, url="u")
        store.transition(jid, JobState.DONE, sha256="s", made=("https://elsewhere.example/v1", False))
        assert store.simulator_takes(["0" * 64]) == {"0" * 64: "http://127.0.0.1:1/v1"}


@pytest.fixture(scope="module")
def sim2() -> Iterator[tuple[str, Any]]:
    """Another simulator, served at another endpoint."""
    with serving(marked=True) as served:
        yield served


def test_a_run_stopped_before_rendering_every_placeholder_again_advises_a_plain_run(
    tmp_path: Path, sim: tuple[str, Any], sim2: tuple[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    """A run against a new endpoint stopped by its budget leaves the simulator's other placeholders as they were:
    a plain run re-renders those (and only those); `--force` would pay again for the ones just made."""
    m = write_manifest(tmp_path, n_seeds=4, styles=("anime",), provider="sim", base_url=sim[0],
                       run={"poll_interval": 0.05, "concurrency": 1})
    assert api.run(m, report=False).exit_code == 0
    to(m, sim2[0])
    each = api.plan(m).jobs[0].cost_micros
    capsys.readouterr()
    assert main(["run", str(m), "--no-report", "--budget", f"{2 * each / 1e6:.2f}", "--allow-partial"]) == 3
    said = capsys.readouterr().err
    assert "--force" not in said and "`gridrun run` re-renders the 2 jobs" in said, said
    assert usd_text(2 * each) in said
    assert main(["status", str(m)]) == 0
    shown = capsys.readouterr().out
    assert "--force" not in shown and "next: `gridrun run` re-renders the 2 jobs" in shown, shown
    d = api.diff(api.plan(m))
    assert d is not None and d.cached == 2 and sum(1 for r in d.reasons.values() if r == ELSEWHERE) == 2
    before = creates(sim2)
    assert main(["run", str(m), "--no-report"]) == 0
    assert creates(sim2) == before + 2  # the 2 placeholders left, once each; none of those just made again


@pytest.mark.timeout(120)
def test_ctrl_c_before_rendering_every_placeholder_again_says_what_a_plain_run_renders(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Ctrl-C in a run against a new endpoint: the placeholders it did not re-render are left as they were, and the
    run's end and `status` say a plain run re-renders them (not counted done and forgotten)."""
    m = write_manifest(tmp_path, n_seeds=4, styles=("anime",), provider="sim",
                       run={"poll_interval": 0.05, "concurrency": 1})
    with running_server(SimConfig(render_time=0.05, jitter=0.0)) as first, \
            running_server(SimConfig(render_time=1.5, jitter=0.0)) as second:
        assert api.run(to(m, first), report=False).exit_code == 0
        to(m, second)
        proc = subprocess.Popen([sys.executable, "-m", "runner.cli", "run", str(m), "--no-report"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=m.parent)
        try:
            wait_for(lambda: in_flight(m) >= 1)
            os.kill(proc.pid, signal.SIGINT)
            _, err = proc.communicate(timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
        assert proc.returncode == 130, err
        assert "interrupted: `gridrun run` re-renders the 3 jobs" in err and "--force" not in err, err
        capsys.readouterr()
        assert main(["status", str(m)]) == 0
        shown = capsys.readouterr().out
        assert "next: `gridrun run` re-renders the 3 jobs" in shown, shown
        d = api.diff(api.plan(m))
        assert d is not None and sum(1 for r in d.reasons.values() if r == ELSEWHERE) == 3


def test_the_same_simulator_under_another_spelling_of_its_url_is_the_same_endpoint(
    tmp_path: Path, sim: tuple[str, Any]
) -> None:
    """A loopback host under another name, the API under `/openai/v1` or with a trailing slash: the same simulator,
    whose videos stay cached; nothing is rendered again."""
    m = manifest(tmp_path, sim[0])
    assert api.run(m, report=False).exit_code == 0
    port = sim[0].split(":")[2].split("/")[0]
    for url in (f"http://localhost:{port}/v1", f"http://[::1]:{port}/v1", f"http://127.0.0.1:{port}/openai/v1",
                f"http://127.0.0.1:{port}/v1/"):
        d = api.diff(api.plan(to(m, url)))
        assert d is not None and d.cached == 1 and d.new == 0, url
    before = creates(sim)
    again = api.run(to(m, f"http://127.0.0.1:{port}/openai/v1"), report=False)
    assert again.exit_code == 0 and again.stats.spent_micros == 0 and creates(sim) == before


def test_only_a_loopback_host_stands_for_another() -> None:
    from runner.plan import same_endpoint

    assert same_endpoint("http://127.0.0.1:8000/v1", "http://localhost:8000/openai/v1")
    assert same_endpoint("http://[::1]:8000/v1", "http://LOCALHOST:8000/v1")
    assert same_endpoint("https://api.example.com/v1", "https://API.example.com:443/openai/v1/")
    for a, b in (("https://api.example.com/v1", "https://other.example.com/v1"),
                 ("http://10.0.0.1:8000/v1", "http://10.0.0.2:8000/v1"),
                 ("http://10.0.0.1:8000/v1", "http://127.0.0.1:8000/v1"),
                 ("http://127.0.0.1:8000/v1", "http://127.0.0.1:8001/v1"),
                 ("http://127.0.0.1:8000/v1", "https://127.0.0.1:8000/v1"),
                 ("http://127.0.0.1:8000/a/v1", "http://127.0.0.1:8000/b/v1"),
                 ("in process", "http://127.0.0.1:8000/v1")):
        assert not same_endpoint(a, b) and not same_endpoint(b, a), (a, b)


def test_placeholders_whose_re_render_a_wrong_base_url_refused_are_counted_for_a_plain_run(
    tmp_path: Path, sim: tuple[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    """A run at another endpoint whose creates get 404 (a mistyped base URL): the placeholders it tried, put back
    done, are what a plain run re-renders, as are those it never tried. One next step, the same count and price in
    the run's end and in `status` as in the plan, and no `--force` after a run that was not --force."""
    m = write_manifest(tmp_path, n_seeds=4, styles=("anime",), provider="sim", base_url=sim[0],
                       run={"poll_interval": 0.05, "concurrency": 2})
    assert api.run(m, report=False).exit_code == 0
    to(m, sim[0].rsplit("/v1", 1)[0] + "/v2")
    plan = api.plan(m)
    total = usd_text(plan.total_micros)
    capsys.readouterr()
    assert main(["run", str(m), "--no-report"]) == 1
    said = capsys.readouterr().err
    end = said.strip().splitlines()[-1]
    assert "ENDPOINT_NOT_FOUND" in said and "--force" not in end, said
    assert f"`gridrun run` re-renders the 4 jobs this run left as they were, made by a simulator at another endpoint " \
           f"({total})" in end, end
    assert main(["status", str(m)]) == 0
    shown = capsys.readouterr().out
    assert "--force" not in shown and f"next: `gridrun run` re-renders the 4 jobs" in shown and total in shown, shown


def test_a_jobs_own_earlier_take_after_a_refused_run_is_told_as_its_own(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Done on the simulator, then switched to `provider: lumenfall`, whose first run the provider refused (a wrong
    key): the videos at the jobs' paths are those jobs' own earlier takes (copied aside by that run), not another
    job's left by a renamed sweep; the plan says so, and the run with the right key replaces them."""
    m = write_manifest(tmp_path, n_seeds=2, styles=("anime",), provider="sim", run={"poll_interval": 0.05})
    assert api.run(m, report=False).exit_code == 0
    with running_server(SimConfig(render_time=0.05, jitter=0.0, api_key="right")) as url:
        doc = yaml.safe_load(m.read_text())
        doc["provider"] = "lumenfall"
        del doc["sim"]
        m.write_text(yaml.safe_dump(doc, sort_keys=False))
        monkeypatch.setenv("LUMENFALL_BASE_URL", url)
        monkeypatch.setenv("LUMENFALL_API_KEY", "wrong")
        assert main(["run", str(m), "--no-report"]) == 1
        capsys.readouterr()
        assert main(["plan", str(m)]) == 0
        said = capsys.readouterr().err
        assert "another job's video" not in said and "a sweep renamed" not in said, said
        assert "hold their jobs' own earlier takes, made by run 1" in said, said
        assert "provider: sim then, lumenfall now" in said, said
        monkeypatch.setenv("LUMENFALL_API_KEY", "right")
        assert api.run(m, report=False).exit_code == 0
        assert {j.state for j in api.status(m).jobs} == {"done"}


def test_status_report_and_exports_say_where_each_run_sent_and_keep_simulated_spending_apart(
    tmp_path: Path, real: tuple[str, Any], lumenfall: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """A run on the simulator built in, then one at a provider: `status` (text and --json), the report and the
    exports name each run's provider and endpoint, mark the simulator's, and the all-runs spending tells the
    simulator's made-up dollars from those a provider billed."""
    from runner.export import export_rows, summary

    m = write_manifest(tmp_path, n_seeds=1, styles=("anime",), provider="sim", run={"poll_interval": 0.05})
    first = api.run(m, report=False)
    assert first.exit_code == 0 and first.stats.spent_micros > 0
    capsys.readouterr()
    assert main(["status", str(m), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["provider"] == "sim" and doc["endpoints"] == [{"endpoint": "in process", "simulated": True}], doc
    assert doc["spent_simulated_usd"] == doc["spent_usd"] > 0
    (row,) = export_rows(api.status(m))
    assert (row["provider"], row["endpoint"], row["simulated"]) == ("sim", "in process", True), row

    doc = yaml.safe_load(m.read_text())
    doc["provider"] = lumenfall  # `provider: sim` sends only to a simulator
    m.write_text(yaml.safe_dump(doc, sort_keys=False))
    second = api.run(to(m, real[0]), report=False)  # the simulator's placeholder rendered again at "the provider"
    assert second.exit_code == 0 and second.stats.spent_micros > 0
    capsys.readouterr()
    assert main(["status", str(m), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["endpoints"] == [{"endpoint": real[0], "simulated": False}] and doc["spent_simulated_usd"] == 0, doc
    assert doc["manifest_spent_usd"] == pytest.approx(first.stats.spent_micros / 1e6 + second.stats.spent_micros / 1e6)
    assert doc["manifest_spent_simulated_usd"] == pytest.approx(first.stats.spent_micros / 1e6), doc
    assert main(["status", str(m)]) == 0
    shown = capsys.readouterr().out
    assert f"lumenfall / pixverse-v5.6, sent to {real[0]}" in shown, shown
    assert (f"of that, {usd_text(second.stats.spent_micros)} at providers and "
            f"{usd_text(first.stats.spent_micros)} simulated (nothing paid)") in shown, shown
    snap = api.status(m)
    (row,) = export_rows(snap)
    assert (row["endpoint"], row["simulated"]) == (real[0], False), row
    assert summary(snap)["run"]["endpoints"] == [{"endpoint": real[0], "simulated": False}]
    assert main(["report", str(m)]) == 0
    page = (m.parent / "outputs" / "t" / "report.html").read_text()
    assert f'class="sent-to">lumenfall / pixverse-v5.6, sent to {real[0]}' in page and "simulated (nothing paid)" in page
    capsys.readouterr()
    assert main(["status", str(m), "--runs", "--json"]) == 0
    runs = {r["run"]: r for r in json.loads(capsys.readouterr().out)}
    assert runs[1]["endpoints"] == [{"endpoint": "in process", "simulated": True}] and runs[1]["provider"] == "sim"
    assert runs[1]["spent_simulated_usd"] == runs[1]["spent_usd"] > 0
    assert runs[2]["endpoints"] == [{"endpoint": real[0], "simulated": False}] and runs[2]["spent_simulated_usd"] == 0
    assert main(["status", str(m), "--runs"]) == 0
    said = capsys.readouterr()
    assert "spent at a simulator, all or part (made-up figures, nothing paid): run 1 (" in said.err, said


def test_placeholders_left_by_a_run_that_never_reached_the_provider_are_said_by_status_and_the_report(
    tmp_path: Path, sim: tuple[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    """A run at another endpoint that cannot be reached (no network, a port nothing listens on) ends failed, its
    placeholders put back done: `status` says why (each job's error) and the run's next step, its JSON too, and the
    report's estimate of the jobs left counts what the next run pays to render them."""
    m = write_manifest(tmp_path, n_seeds=4, styles=("anime",), provider="sim", base_url=sim[0],
                       run={"poll_interval": 0.05, "concurrency": 2})
    assert api.run(m, report=False).exit_code == 0
    to(m, "http://127.0.0.1:1/v1")
    plan = api.plan(m)
    total = usd_text(plan.total_micros)
    capsys.readouterr()
    assert main(["run", str(m), "--no-report"]) == 1
    end = capsys.readouterr().err.strip().splitlines()[-1]
    assert f"`gridrun run` re-renders the 4 jobs this run left as they were, made by a simulator at another endpoint " \
           f"({total})" in end, end
    assert api.status(m).run.status == "failed"
    assert main(["status", str(m)]) == 0
    shown = capsys.readouterr().out
    assert "never reached the provider" in shown and "and 3 more jobs" in shown, shown
    flat = " ".join(shown.split())
    # done as they were, their re-render not sent: jobs left to re-render, not failures of done jobs
    assert "to re-render style=anime,seed=1 and 3 more jobs: re-run not sent: never reached" in flat, shown
    assert "done style=anime,seed=1" not in flat, shown
    assert "next: `gridrun run` re-renders the 4 jobs" in shown and total in shown, shown
    assert main(["status", str(m), "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert len(d["problems"]) == 4 and all("never reached the provider" in p["error"] for p in d["problems"]), d
    assert d["next"] is not None and "re-renders the 4 jobs" in d["next"] and d["next_commands"], d
    from runner.export import summary

    assert summary(api.status(m))["estimate_usd"] == plan.total_micros / 1e6
