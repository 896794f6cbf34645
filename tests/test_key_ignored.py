"""A create whose answer was lost is sent again with its idempotency key where the provider's capabilities say it
honours keys, trusting it to answer with the video the first send made. A new video for it (the provider's own clocks
tell: the answer's Date against the video's created_at) is also what an honouring provider gives when the first send
never reached it, or reached it late: the request log is asked, and only where it lists another video made under the
key does the run say the provider made two videos for one key, record it on the job, and send no create again on a
key's account for the rest of the run."""

from __future__ import annotations

import dataclasses
import json
import sqlite3
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from execkit import sim_provider, stats, write_manifest

from runner import api
from runner.cli import main
from runner.executor import Executor, RunOptions
from runner.sim import SimConfig
from runner.sim.config import FaultRule
from runner.sim.serve import running_server

NO_LOG = {"route": "requests", "p": 1.0, "fault": "server_error", "status": 503}
SAID = "the provider made two videos for one idempotency key"
# The request log down for the first lookup of a lost create (its three tries), then up: the second lookup,
# after the create sent again, reads it
LOG_DOWN_THEN_UP = {"route": "requests", "p": 0.0, "fault": "server_error", "status": 503, "nth": [1, 2, 3]}


def _lumenfall_manifest(tmp_path: Path, url: str, styles: tuple[str, ...]) -> Path:
    """A Lumenfall manifest of one job per style, one at a time, against the simulator served at `url`."""
    m = write_manifest(tmp_path, n_seeds=1, styles=styles, provider="lumenfall", base_url=url, run={"concurrency": 1})
    doc = yaml.safe_load(m.read_text())
    del doc["sim"]
    m.write_text(yaml.safe_dump(doc, sort_keys=False))
    return m


def _status_says(m: Path, capsys: pytest.CaptureFixture[str]) -> tuple[str, Any]:
    """What `gridrun status` prints of the manifest's last run, and what `status --json` says of ignored keys."""
    capsys.readouterr()
    main(["status", str(m)])
    out = capsys.readouterr()
    main(["status", str(m), "--json"])
    return out.out + out.err, json.loads(capsys.readouterr().out)["keys_ignored"]


def _honouring(prov: Any) -> Any:
    """The in-process simulator's provider, taken (as Lumenfall's capability data takes it) to honour keys, whatever
    the simulator does."""
    prov.caps = dataclasses.replace(prov.caps, honours_idempotency_keys=True)
    return prov


def test_a_provider_that_ignores_keys_is_caught_said_and_not_sent_a_lost_create_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Lumenfall (its capabilities: keys honoured) served by a simulator that ignores keys. The first job's create
    is made and its answer lost, the request log down for its lookup; sent again with its key, it gets a new video,
    and the log, up again, lists both: the run says so, and so do `status` and `status --json`. The second job's
    create is lost too, the log down again: it is not sent again (left unknown), so the provider made one video
    more than there are jobs, not two."""
    monkeypatch.setenv("LUMENFALL_API_KEY", "lmnfl_test")
    down = {**LOG_DOWN_THEN_UP, "nth": [1, 2, 3, 5, 6, 7]}  # the 4th, after the create sent again, is answered
    config = SimConfig.from_dict({"render_time": 0.2, "jitter": 0.0, "honour_idempotency": False,
                                  "script": [{"route": "create", "fault": "reset_after", "nth": [1, 3]}, down]})
    with running_server(config) as url:
        m = _lumenfall_manifest(tmp_path, url, ("anime", "clay", "comic"))
        result = api.run(m, options=RunOptions(request_timeout=1.0, poll_interval=0.1), report=False)
        s = httpx.get(url.rsplit("/v1", 1)[0] + "/_sim/stats").json()
    assert result.stats.counts["done"] == 2 and result.stats.counts["unknown"] == 1, result.stats.counts
    assert s["creates"] == 3 + 1, s  # the second lost create was not sent again
    said = [e for e in result.stats.last_errors if SAID in e]
    assert len(said) == 1 and said[0].startswith("style=anime") and "for lumenfall" in said[0], result.stats.last_errors
    assert "honours_idempotency_keys: false" in said[0]
    with sqlite3.connect(tmp_path / ".gridrun" / "state.db") as db:
        (data,) = db.execute("SELECT detail FROM events WHERE kind='key-ignored'").fetchone()
    recorded = json.loads(data)
    assert len(recorded["others"]) == 1 and recorded["others"][0] != recorded["provider_id"], recorded
    jobs = {j.key: j for j in api.status(m).jobs}
    assert jobs["style=anime,seed=1"].state == "done" and jobs["style=clay,seed=1"].state == "unknown"
    text, in_json = _status_says(m, capsys)
    assert SAID in text and "for lumenfall" in text
    assert in_json is not None and in_json.startswith(SAID)


@pytest.mark.parametrize("slow", ["the lost create", "the create sent again"])
def test_a_replay_is_not_taken_for_a_new_video_however_slow_the_answer(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], slow: str
) -> None:
    """A provider that honours keys answers the create sent again with the video the first send made: nothing is
    said, whether the create whose answer was lost took 8 s to make its video (made just before its answer was
    lost, well after it left) or the one sent again took 8 s to be answered."""
    nth = 1 if slow == "the lost create" else 2
    m = write_manifest(tmp_path, n_seeds=1, styles=("anime",), sim={
        "render_time": 0.1, "jitter": 0.0,
        "script": [{"route": "create", "fault": "reset_after", "nth": [1]},
                   {"route": "create", "fault": "slow", "delay": 8.0, "nth": [nth]}, NO_LOG]})
    prov = _honouring(sim_provider(m))
    result = api.run(m, provider=prov, options=RunOptions(request_timeout=20.0, poll_interval=0.1), report=False)
    assert result.exit_code == 0 and result.stats.counts["done"] == 1
    assert stats(prov)["creates"] == 1 and stats(prov)["replays"] == 1, stats(prov)
    assert not [e for e in result.stats.last_errors if SAID in e]
    text, in_json = _status_says(m, capsys)
    assert SAID not in text and in_json is None


def test_an_answer_without_a_date_concludes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The same new video for a create sent again with its key, answered without a Date header: how old the video
    was when the provider answered is not known, and nothing is concluded (nor said)."""
    m = write_manifest(tmp_path, n_seeds=1, styles=("anime",), sim={
        "render_time": 0.1, "jitter": 0.0, "honour_idempotency": False,
        "script": [{"route": "create", "fault": "reset_after", "nth": [1]}, NO_LOG]})
    prov = _honouring(sim_provider(m))

    def undated(app: Any) -> Any:
        async def answer(scope: Any, receive: Any, send: Any) -> None:
            async def without_date(message: Any) -> None:
                if message["type"] == "http.response.start":
                    message["headers"] = [(k, v) for k, v in message["headers"] if k.lower() != b"date"]
                await send(message)
            await app(scope, receive, without_date)
        return answer

    made = type(prov).client
    monkeypatch.setattr(type(prov), "client", lambda self, **kw: made(
        self, **{**kw, "transport": httpx.ASGITransport(app=undated(self.app))}))
    result = api.run(m, provider=prov, options=RunOptions(poll_interval=0.1), report=False)
    assert result.exit_code == 0 and result.stats.counts["done"] == 1
    assert stats(prov)["creates"] == 2 and stats(prov)["duplicate_paid"] == 1, stats(prov)  # a new video, unseen
    assert not [e for e in result.stats.last_errors if SAID in e]
    text, in_json = _status_says(m, capsys)
    assert SAID not in text and in_json is None


def test_a_later_run_concludes_nothing_from_this_machines_clock(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Run 1 leaves a job unknown: its first create made a video, and each of its creates lost its answer, with the
    request log down. This machine's clock was 600 s slow when run 1 ended, and set right before run 2 (NTP, a
    resume): `retry --unknown` sends the job again with its key, the provider answers with the video run 1 made, and
    nothing is said (when run 1's sends ended is known only on this machine's clock of then)."""
    m = write_manifest(tmp_path, n_seeds=1, styles=("anime",), sim={
        "render_time": 0.1, "jitter": 0.0,
        "script": [{"route": "create", "fault": "reset_after", "nth": [1, 2, 3]}, NO_LOG]})
    prov = _honouring(sim_provider(m))
    first = api.run(m, provider=prov, options=RunOptions(poll_interval=0.1), report=False)
    assert first.stats.counts["unknown"] == 1 and stats(prov)["creates"] == 1, stats(prov)
    with sqlite3.connect(tmp_path / ".gridrun" / "state.db") as db:
        db.execute("UPDATE runs SET ended_at = ended_at - 600")
    again = api.run(m, provider=prov, options=RunOptions(poll_interval=0.1, retry_unknown=True), report=False)
    assert again.stats.counts["done"] == 1 and stats(prov)["creates"] == 1, stats(prov)
    assert not [e for e in again.stats.last_errors if SAID in e], again.stats.last_errors
    text, in_json = _status_says(m, capsys)
    assert SAID not in text and in_json is None


def test_a_step_of_the_clock_within_a_run_is_no_new_video(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A create's answer is lost (its video made); while the run looks it up, this machine's clock is stepped 60 s
    ahead (NTP). Sent again with its key, it gets the first send's video back: a replay, not a new video, however far
    the wall clock moved between the two sends."""
    m = write_manifest(tmp_path, n_seeds=1, styles=("anime",), sim={
        "render_time": 0.1, "jitter": 0.0,
        "script": [{"route": "create", "fault": "reset_after", "nth": [1]}, NO_LOG]})
    prov = _honouring(sim_provider(m))

    def stepped() -> float:  # 60 s ahead from the first lookup in the request log (after the lost answer) on
        return time.time() + (60.0 if stats(prov)["requests"].get("requests") else 0.0)

    monkeypatch.setitem(Executor.__init__.__kwdefaults__, "clock", stepped)
    result = api.run(m, provider=prov, options=RunOptions(poll_interval=0.1), report=False)
    assert result.exit_code == 0 and result.stats.counts["done"] == 1
    assert stats(prov)["creates"] == 1 and stats(prov)["replays"] == 1, stats(prov)
    assert not [e for e in result.stats.last_errors if SAID in e], result.stats.last_errors


def test_once_a_new_video_is_seen_an_unknown_job_keeps_its_key(tmp_path: Path) -> None:
    """Run 1 leaves two jobs unknown (each create made a video and lost its answer, the request log down). `retry
    --unknown` sends one again with its key: the answer is lost once more, and the send after it gets a new video
    (the provider ignores keys; the log's list of the key's videos, read then, shows both). The other job, whose
    lookup in the log answers only then (slow), is not sent under a
    new key, which would make and bill a video however the provider treats keys: it stays unknown, with its attempt
    and key, for a later `retry --unknown` to send with that key."""
    m = write_manifest(tmp_path, n_seeds=1, styles=("anime", "clay"), run={"concurrency": 2, "retries": 0}, sim={
        "render_time": 0.1, "jitter": 0.0, "honour_idempotency": False,
        "script": [{"route": "create", "fault": "reset_after", "nth": [1, 2, 3, 4, 5]}, NO_LOG]})
    prov = _honouring(sim_provider(m))
    _log_lists_every_video(prov)
    first = api.run(m, provider=prov, options=RunOptions(poll_interval=0.1), report=False)
    assert first.stats.counts["unknown"] == 2 and stats(prov)["creates"] == 4, stats(prov)
    # run 2's first two lookups go together, one per job: the second answers (503) 15 s late
    faults = prov.app.state.sim.faults
    faults.rules = (*faults.rules, FaultRule.from_dict({"route": "requests", "fault": "slow", "delay": 15.0, "nth": [2]}))
    again = api.run(m, provider=prov, options=RunOptions(poll_interval=0.1, retry_unknown=True, concurrency=1),
                    report=False)
    assert [e for e in again.stats.last_errors if SAID in e], again.stats.last_errors
    assert stats(prov)["creates"] == 4 + 2, stats(prov)  # the first job's two sends; none for the second
    jobs = sorted((j.state, j.attempts) for j in api.status(m).jobs)
    assert jobs == [("done", 1), ("unknown", 1)], jobs


def _log_lists_every_video(prov: Any) -> None:
    """The in-process simulator's request log, down for lookups by key (NO_LOG), still answers the list of every
    video made under a key, from the simulator's own record."""
    engine = prov.app.state.sim

    async def videos_by_key(client: Any, key: str, *, created_after: float | None = None) -> frozenset[str]:
        return frozenset(v.id for v in engine.by_key.get(key, ()))

    prov.videos_by_key = videos_by_key


@pytest.mark.parametrize("fault", ["reset_before", "held"])
@pytest.mark.parametrize("log", ["up", "down"])
def test_a_create_that_reached_the_provider_late_or_never_is_no_ignored_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], fault: str, log: str
) -> None:
    """A provider that honours keys: the first create's connection drops before the provider read it (a reset), or
    a gateway holds it and the client gives up. Sent again with its key, the create makes the job's one video, made
    after the first send ended, as a provider that ignored the key would; the request log lists only that video
    (or cannot be read): nothing is said, and the next lost create is sent again with its key as before."""
    script = [{"route": "create", "fault": fault, "nth": [1]}, {"route": "create", "fault": "reset_after", "nth": [3]}]
    if log == "down":
        script.append(NO_LOG)
    m = write_manifest(tmp_path, n_seeds=1, styles=("anime", "clay"), run={"concurrency": 1},
                       sim={"render_time": 0.2, "jitter": 0.0, "script": script})
    prov = _honouring(sim_provider(m))
    result = api.run(m, provider=prov, options=RunOptions(request_timeout=1.0, poll_interval=0.1), report=False)
    assert result.stats.counts["done"] == 2 and stats(prov)["duplicate_paid"] == 0, stats(prov)
    assert not [e for e in result.stats.last_errors if SAID in e], result.stats.last_errors
    if log == "down":  # the second job's lost create, not found in the log, was sent again with its key: replayed
        assert stats(prov)["replays"] >= 1, stats(prov)
    text, in_json = _status_says(m, capsys)
    assert SAID not in text and in_json is None
    assert main(["export", str(m)]) == 0
    (exported,) = tmp_path.glob("**/results.json")
    assert json.loads(exported.read_text())["summary"]["keys_ignored"] is None


def test_the_export_says_two_videos_for_one_key_as_status_does(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A provider that ignores keys, the log listing both videos made under the job's key: the export's summary
    says it in `status --json`'s words."""
    m = write_manifest(tmp_path, n_seeds=1, styles=("anime",), sim={
        "render_time": 0.1, "jitter": 0.0, "honour_idempotency": False,
        "script": [{"route": "create", "fault": "reset_after", "nth": [1]}, LOG_DOWN_THEN_UP]})
    prov = _honouring(sim_provider(m))
    result = api.run(m, provider=prov, options=RunOptions(request_timeout=1.0, poll_interval=0.1), report=False)
    assert result.stats.counts["done"] == 1 and stats(prov)["duplicate_paid"] == 1, stats(prov)
    assert [e for e in result.stats.last_errors if SAID in e], result.stats.last_errors
    text, in_json = _status_says(m, capsys)
    assert SAID in text and in_json is not None and in_json.startswith(SAID)
    assert main(["export", str(m)]) == 0
    (exported,) = tmp_path.glob("**/results.json")
    assert json.loads(exported.read_text())["summary"]["keys_ignored"] == in_json
