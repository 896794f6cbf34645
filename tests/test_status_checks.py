"""`status` of a run waiting on long renders, from another process's view: when the run next asks the provider about a
job (`next_check`) and when the provider last answered it, as the run's heartbeat records them in the state."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest

from execkit import wait_for, write_manifest
from runner import api, live
from runner.cli import main
from runner.errors import NotRecordedError
from runner.options import RunOptions
from runner.stats import run_statistics


def test_status_of_a_run_waiting_for_long_renders_gives_its_next_check_and_last_answer(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(live, "HEARTBEAT", 0.2)  # the run records that it is alive (and its checks) this often
    m = write_manifest(tmp_path, n_seeds=2, styles=("anime",), sim={"render_time": 120.0, "jitter": 0.0})
    stop, detach = threading.Event(), threading.Event()
    ran: dict[str, object] = {}
    worker = threading.Thread(target=lambda: ran.update(
        r=api.run(m, options=RunOptions(), report=False, stop=stop, detach=detach)))
    worker.start()
    try:
        def waiting() -> bool:
            try:
                return api.status_json(api.status(m))["next_check"] is not None
            except Exception:  # not recorded yet
                return False

        wait_for(waiting)
        doc = api.status_json(api.status(m))
        assert doc["status"] == "running" and doc["counts"]["submitted"] + doc["counts"]["running"] == 2, doc
        assert doc["next_check"] >= 1.0 and doc["last_answer"] is not None and doc["last_answer"] >= 0, doc
        # what `status --watch --json` prints each time: the same figure
        assert run_statistics(api.status(m)).next_check is not None
        assert main(["status", str(m)]) == 0
        out = capsys.readouterr().out
        assert "last answer " in out and " s ago" in out and "next check in " in out, out
        assert main(["status", str(m), "--json"]) == 0
        said = json.loads(capsys.readouterr().out)
        assert said["next_check"] is not None and said["last_answer"] is not None
    finally:
        stop.set()
        detach.set()
        worker.join(60)
    assert not worker.is_alive()
    ended = api.status_json(api.status(m))  # once the run ended: nothing to wait for
    assert ended["next_check"] is None and ended["last_answer"] is None


def test_status_and_its_watch_give_the_pause_a_rate_limit_asked_for(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A run waiting out a provider's 35 s Retry-After: `status --json` and `status --watch --json` (drawn from the
    state) give `paused` and `paused_by` as the run's own progress does, and `status` says it, where they gave null and
    nothing, and the wait read as a silent provider."""
    monkeypatch.setattr(live, "HEARTBEAT", 0.2)
    m = write_manifest(tmp_path, n_seeds=1, styles=("anime",),
                       sim={"render_time": 1.0, "jitter": 0.0, "rate_limited_rate": 1.0, "retry_after": 35})
    stop, detach = threading.Event(), threading.Event()
    worker = threading.Thread(target=lambda: api.run(m, options=RunOptions(), report=False, stop=stop, detach=detach))
    worker.start()
    try:
        def paused() -> bool:
            try:
                return api.status_json(api.status(m))["paused"] is not None
            except NotRecordedError:  # not recorded yet (or starting)
                return False

        wait_for(paused)
        doc = api.status_json(api.status(m))
        assert doc["status"] == "running" and 0 < doc["paused"] <= 35 and doc["paused_by"] == 429, doc
        watched = run_statistics(api.status(m))  # what `status --watch --json` prints
        assert watched.paused is not None and 0 < watched.paused <= 35 and watched.paused_by == 429, watched
        assert main(["status", str(m)]) == 0
        out = capsys.readouterr().out
        assert "paused by the provider (HTTP 429), " in out and " left" in out, out
    finally:
        stop.set()
        detach.set()
        worker.join(60)
    assert not worker.is_alive()
    ended = api.status_json(api.status(m))
    assert ended["paused"] is None and ended["paused_by"] is None
