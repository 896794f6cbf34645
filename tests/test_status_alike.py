"""`status` and a run's last errors say an error that many jobs met once, with their number, where each job's text
differs only by the URL its download named (a CDN serving bad bytes to every video): each job's own text, its URL
with it, stays in `status --json`."""

from __future__ import annotations

import json
import re
from collections import deque
from collections.abc import Iterable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from execkit import write_manifest

from runner import api
from runner.cli import main
from runner.errors import alike, alike_text
from runner.options import RunOptions


def _run_errors(planned: Iterable[str]) -> Any:
    """A stand-in for the executor's last errors (`Executor._error`), its plan of the jobs `planned`, in order."""
    from runner.executor import Executor

    run = SimpleNamespace(errors=deque(maxlen=5), _said_of={}, _plan_order=None,
                          plan=SimpleNamespace(jobs=[SimpleNamespace(key=k) for k in planned]))
    run._first_planned = lambda keys: Executor._first_planned(run, keys)  # type: ignore[arg-type]
    return run


def test_a_download_error_s_url_is_left_out_of_what_groups_errors() -> None:
    one = "download failed: CORRUPT: GET http://127.0.0.1:8777/files/video_8f12.mp4: the body is not a video/mp4 file"
    two = one.replace("8f12", "aaed")
    assert alike(one) == alike(two) == ("download failed: CORRUPT: GET http://127.0.0.1:8777/…: the body is not a "
                                        "video/mp4 file")
    assert alike_text([one, one]) == one and alike_text([one, two]) == alike(one)
    assert alike("GET https://a.example/x.mp4: gone") != alike("GET https://b.example/x.mp4: gone")  # another host
    assert alike("CONTENT_POLICY_VIOLATION: flagged") == "CONTENT_POLICY_VIOLATION: flagged"


def test_status_says_a_download_error_of_many_jobs_once(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    m = write_manifest(tmp_path, n_seeds=3, styles=("anime",), run={"retries": 0},
                       sim={"script": [{"route": "content", "p": 1, "fault": "corrupt"},
                                       {"route": "file", "p": 1, "fault": "corrupt"}]})
    result = api.run(m, options=RunOptions(), report=False)
    assert result.stats.counts.get("done", 0) == 0
    problems = api.status_json(api.status(m))["problems"]
    errors = [p["error"] for p in problems]
    assert len(problems) == 3 and len(set(errors)) == 3, problems  # each job's own URL
    assert all("CORRUPT" in e and "://" in e for e in errors), errors
    assert main(["status", str(m)]) in (0, 1)
    out = capsys.readouterr().out
    lines = [line for line in out.splitlines() if "CORRUPT" in line]
    assert len(lines) == 1 and re.search(r"seed=\d and 2 more jobs: ", lines[0]), out
    assert "/…" in lines[0], lines[0]
    assert main(["status", str(m), "--json"]) in (0, 1)
    assert sorted(p["error"] for p in json.loads(capsys.readouterr().out)["problems"]) == sorted(errors)
    assert len([e for e in result.stats.last_errors if "CORRUPT" in e]) == 1, result.stats.last_errors
    assert any(re.search(r"seed=\d and 2 more jobs: .*CORRUPT", e) for e in result.stats.last_errors)


def test_errors_that_differ_only_by_a_bare_video_id_are_one_error() -> None:
    one = "expired: the provider no longer knows video video_5f8349ba3e34 (GET /videos/video_5f8349ba3e34: HTTP 404)"
    two = one.replace("5f8349ba3e34", "017e1e71164a")
    assert alike(one) == alike(two) == "expired: the provider no longer knows video … (GET /videos/…: HTTP 404)"
    assert alike_text([one, one]) == one and alike_text([one, two]) == alike(one)
    # words are never taken for an id: an id has a digit in it
    assert alike("the video whose render failed: video file too large") == "the video whose render failed: video file too large"
    assert alike("video vid_1 lost by the provider") != alike("video vid_1 lost by the provider, sent again")


def test_status_and_the_runs_last_errors_say_an_error_of_many_jobs_differing_only_by_their_video_ids_once(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Three jobs whose videos the provider no longer knows, each error naming its own video's id: `status` says
    the error once, with the number of jobs, as the run's last errors do; `status --json` keeps each job's own."""
    import sys
    from types import SimpleNamespace

    sys.path.insert(0, str(Path(__file__).parent / "browser"))

    from demo_state import build_state

    from runner.executor import Executor

    said = "the provider no longer knows video vid_{n}a7c (HTTP 404): paid, not downloaded"
    jobs = [{"values": {"style": "anime", "seed": n}, "state": "failed", "error": said.format(n=n)} for n in (1, 2, 3)]
    store, _ = build_state(tmp_path, jobs)
    store.close()
    assert main(["status", "--state", str(tmp_path / ".gridrun")]) in (0, 1)
    out = capsys.readouterr().out
    lines = [line for line in out.splitlines() if "no longer knows" in line]
    assert len(lines) == 1 and "seed=1 and 2 more jobs: " in lines[0], out
    assert "video … (HTTP 404)" in lines[0], lines[0]
    assert main(["status", "--state", str(tmp_path / ".gridrun"), "--json"]) in (0, 1)
    errors = sorted(p["error"] for p in json.loads(capsys.readouterr().out)["problems"])
    assert errors == [said.format(n=n) for n in (1, 2, 3)], errors

    run = _run_errors(f"style=anime,seed={n}" for n in (1, 2, 3))
    for n in (1, 2, 3):
        Executor._error(run, SimpleNamespace(key=f"style=anime,seed={n}"), said.format(n=n))  # type: ignore[arg-type]
    assert len(run.errors) == 1 and "seed=1 and 2 more jobs: " in run.errors[0], run.errors
    assert "video … (HTTP 404)" in run.errors[0], run.errors


def test_a_value_a_provider_names_after_video_is_no_id_to_fold() -> None:
    """Two refusals differing by the value they name ("video 10s", "video 8s") stay apart; ids of the shape a
    provider gives (`video_<hex>`, an opaque token) still fold."""
    ten = "not sent, nothing paid: HTTP 400, INVALID_REQUEST: duration: video 10s is not available at 1080p"
    assert alike(ten) == ten and alike(ten) != alike(ten.replace("10s", "8s"))
    assert alike("video 1080p is not offered") != alike("video 720p is not offered")
    assert alike("video 2 of 3 failed") == "video 2 of 3 failed"
    one = "the provider no longer knows video video_5f8349ba3e34 (HTTP 404)"
    assert alike(one) == alike(one.replace("5f8349ba3e34", "017e1e71164a")) == \
        "the provider no longer knows video … (HTTP 404)"
    uuid = "lost video 3f2a9c1e-8b7d-4e21-9a0f-6c5d4b3a2f10 (HTTP 404)"
    assert alike(uuid) == alike(uuid.replace("3f2a9c1e", "0b1c2d3e")) == "lost video … (HTTP 404)"
    short = "expired: the provider no longer knows video v9 (GET /videos/v9: HTTP 404)"
    assert alike(short) == alike(short.replace("v9", "v12")) == \
        "expired: the provider no longer knows video … (GET /videos/…: HTTP 404)"


def test_the_watch_says_an_error_of_many_jobs_once_as_the_run_does(tmp_path: Path) -> None:
    """A run whose every job failed alike: its last errors, as `status --watch` draws them from the state, are one
    entry with how many jobs met it, as the run's own say it, not the last five jobs one a line (the rest unsaid)."""
    from runner.stats import run_statistics

    m = write_manifest(tmp_path, n_seeds=3, styles=("anime", "clay", "comic", "cyberpunk"), run={"retries": 0},
                       sim={"render_time": 0.05, "failure_rate": 1.0, "failure_code": "INTERNAL_ERROR"})
    result = api.run(m, options=RunOptions(), report=False)
    assert result.stats.counts.get("failed") == 12
    snap = api.status(m)
    watched = run_statistics(snap).last_errors
    assert len(watched) == 1 and re.search(r"^style=\w+,seed=\d and 11 more jobs: INTERNAL_ERROR: ",
                                           watched[0]), watched
    ran = [e for e in result.stats.last_errors if "INTERNAL_ERROR" in e]
    assert len(ran) == 1 and ran[0].split(": ", 1)[1] == watched[0].split(": ", 1)[1], (ran, watched)
    # named after the first job in plan order, whichever failed first, as `status` and the run's closing line name it
    assert watched[0].startswith(f"{snap.jobs[0].key} and 11 more jobs: ") and ran == [watched[0]], (watched, ran)


def test_the_run_and_the_watch_name_each_error_after_the_first_of_its_jobs_in_plan_order() -> None:
    """Jobs whose failures the state recorded in the reverse of plan order, and one in flight whose download
    failed (no time recorded, the latest): each entry names the first of its jobs in plan order, as `status` and
    the run's closing line do, whichever met it first, no state before the error, and the errors come in the
    order last met: the run's own last errors, met in that order, are the same."""
    from runner.executor import Executor
    from runner.records import JobRecord
    from runner.stats import last_errors

    def job(key: str, state: str, error: str, ended: float | None) -> JobRecord:
        return JobRecord(id=hash(key), key=key, sweep=None, hash=key, values={}, params={}, state=state,
                         output_path=f"/o/{key}.mp4", cost_estimate_micros=0, cost_micros=None, attempts=1,
                         provider_id=None, error=error, sha256=None, size=None, duration=None, created_at=0.0,
                         submitted_at=None, completed_at=None, downloaded_at=None, cached_from_run=None,
                         ended_at=ended)

    bad = [job("a", "failed", "INTERNAL_ERROR: boom", 30.0), job("b", "downloading", "download failed: disk", None),
           job("c", "failed", "INTERNAL_ERROR: boom", 20.0), job("d", "rejected", "CONTENT_POLICY", 10.0)]
    said = ("d: CONTENT_POLICY", "a and 1 more job: INTERNAL_ERROR: boom", "b: download failed: disk")
    assert last_errors(bad) == said
    run = _run_errors(j.key for j in bad)
    for j in sorted(bad, key=lambda j: (j.ended_at is None, j.ended_at or 0.0)):  # as the run met them
        Executor._error(run, SimpleNamespace(key=j.key), j.error or "")  # type: ignore[arg-type]
    assert tuple(run.errors) == said, run.errors


def test_the_run_and_the_watch_say_an_error_met_again_after_another_once_where_it_was_met_last() -> None:
    """A, then B, then A again: the run's own last errors and `status --watch`'s (drawn from the state) are the same
    two entries, A once with the number of jobs that met it, after B as met last; neither says A twice."""
    from types import SimpleNamespace

    from runner.executor import Executor
    from runner.records import JobRecord
    from runner.stats import last_errors

    met = [("a", "INTERNAL_ERROR: boom"), ("b", "CONTENT_POLICY: flagged"), ("c", "INTERNAL_ERROR: boom"),
           ("d", "TIMEOUT: slow"), ("e", "CONTENT_POLICY: flagged")]
    run = _run_errors(key for key, _ in met)
    for key, error in met:
        Executor._error(run, SimpleNamespace(key=key), error)  # type: ignore[arg-type]
    jobs = [JobRecord(id=i, key=key, sweep=None, hash=key, values={}, params={}, state="failed",
                      output_path=f"/o/{key}.mp4", cost_estimate_micros=0, cost_micros=None, attempts=1,
                      provider_id=None, error=error, sha256=None, size=None, duration=None, created_at=0.0,
                      submitted_at=None, completed_at=None, downloaded_at=None, cached_from_run=None,
                      ended_at=float(i)) for i, (key, error) in enumerate(met)]
    said = ("a and 1 more job: INTERNAL_ERROR: boom", "d: TIMEOUT: slow", "b and 1 more job: CONTENT_POLICY: flagged")
    assert tuple(run.errors) == said and last_errors(jobs) == said, (run.errors, last_errors(jobs))


def test_status_and_the_watch_write_a_provider_s_error_text_escaped_as_the_run_does(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A provider's error text holding ESC sequences (a clipboard write, a window title, a cleared screen), a
    character reversing the line and the line and paragraph separators: `status` and `status --watch` write each
    escaped (`\\x1b`, `\\u202e`, `\\u2028`), as the run's own last errors do, not as the terminal would act on
    it."""
    import sys

    sys.path.insert(0, str(Path(__file__).parent / "browser"))
    from demo_state import build_state

    said = "X\x1b]52;c;cm0gLXJmIH4K\x1b\\\x1b]0;PWNED\x1b\\\x1b[2J \u202egnp.xof:\u2028the render\u2029failed"
    store, _ = build_state(tmp_path, [{"values": {"style": "anime", "seed": 1}, "state": "failed", "error": said}])
    store.close()
    state = str(tmp_path / ".gridrun")
    for command in (["status", "--state", state], ["status", "--watch", "--state", state]):
        main(command)
        out = capsys.readouterr().out
        lines = [line for line in out.splitlines() if "the render" in line]
        assert lines and not any(c in out for c in "\x1b\u202e\u2028\u2029"), (command, out)
        for line in lines:  # the watch's last errors, then the problems
            assert "X\\x1b]52;c;cm0gLXJmIH4K\\x1b\\\\x1b]0;PWNED" in line, (command, line)
            assert "\\u202egnp.xof:\\u2028the render\\u2029failed" in line, (command, line)
