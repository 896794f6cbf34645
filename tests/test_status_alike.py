"""`status` and a run's last errors say an error that many jobs met once, with their number, where each job's text
differs only by the URL its download named (a CDN serving bad bytes to every video): each job's own text, its URL
with it, stays in `status --json`."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from execkit import write_manifest
from runner import api
from runner.cli import main
from runner.errors import alike, alike_text
from runner.options import RunOptions


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
