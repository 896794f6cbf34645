"""Jobs left at their `--timeout`: what the run and `status` say of each is what the provider last said of it (still
rendering, or still in its queue) and how long ago its create was sent, not the timeout of the run alone."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from execkit import write_manifest
from runner import api
from runner.cli import main


def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    got = capsys.readouterr()
    return code, " ".join(got.out.split()), " ".join(got.err.split())


def test_jobs_queued_at_the_provider_since_an_earlier_run_are_said_queued_with_their_age(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The provider renders one job at a time, each far longer than the timeout: of the three sent, one renders and
    two wait in its queue, run after run."""
    m = write_manifest(tmp_path, n_seeds=3, styles=("anime",), run={"concurrency": 3},
                       sim={"render_time": 120.0, "jitter": 0.0, "concurrency": 1})
    code, _, err = cli(capsys, "run", str(m), "--timeout", "0.5", "--no-report")
    assert code == 4, err
    assert ("incomplete: 1 job still rendering and 2 still queued, not seen rendering, at their timeout (0.5 s a job) "
            "were left at the provider") in err, err
    notes = sorted(j.error or "" for j in api.status(m).jobs)
    assert notes == sorted([
        "still queued at the provider, not yet rendering, 0.5 s after its create; left in its queue, the next run "
        "re-attaches"] * 2 + [
        "still rendering at the provider 0.5 s after its create; left running, the next run re-attaches"]), notes

    code, _, err = cli(capsys, "run", str(m), "--timeout", "0.5", "--no-report")
    assert code == 4, err
    notes = [j.error or "" for j in api.status(m).jobs]
    queued = [n for n in notes if n.startswith("still queued at the provider, not yet rendering, ")]
    assert len(queued) == 2 and not any("left running" in n for n in queued), notes
    for note in notes:  # the age since the create the first run sent: more than this run's timeout
        age = re.search(r" ([0-9.]+) s after its create \(0\.5 s of them in this run, its timeout\);", note)
        assert age is not None and float(age.group(1)) > 0.5, note
    _, out, _ = cli(capsys, "status", str(m))
    assert "still queued at the provider, not yet rendering," in out and "still submitted after" not in out, out


def test_jobs_whose_polls_answer_a_status_gridrun_does_not_know_are_said_with_that_status_and_counted_apart(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Every poll answered, with status 'processing' (not in the protocol): at the timeout the run, `status` and the
    export name that status, not 'no poll of it answered', and the closing line does not count the jobs queued."""
    m = write_manifest(tmp_path, n_seeds=2, styles=("anime",),
                       sim={"render_time": 1.0, "jitter": 0.0,
                            "script": [{"route": "*", "fault": "unknown_status", "value": "processing", "p": 1}]})
    code, _, err = cli(capsys, "run", str(m), "--timeout", "2", "--no-report")
    assert code == 4, err
    assert ("incomplete: 2 jobs answering status 'processing', not one gridrun knows, at their timeout (2 s a job) "
            "were left at the provider") in err, err
    assert "still queued" not in err and "no poll of it answered" not in err, err
    note = ("still at the provider, answering status 'processing', not one gridrun knows, 2 s after its create; left "
            "there, the next run re-attaches")
    assert [j.error for j in api.status(m).jobs] == [note, note]
    _, out, _ = cli(capsys, "status", str(m))
    assert note in out, out
    code, _, err = cli(capsys, "export", str(m))
    assert code == 0, err
    rows = [json.loads(line) for line in (tmp_path / "outputs" / "t" / "results.jsonl").read_text().splitlines()]
    assert [r["error"] for r in rows] == [note, note]


def test_the_closing_line_counts_jobs_of_an_unknown_status_apart_from_those_rendering_and_queued() -> None:
    from runner.cli import _left_unfinished

    odd = [("submitted", "processing"), ("running", "paused")]
    assert _left_unfinished({"submitted": 3, "running": 2}, 5, odd) == (
        "1 job still rendering, 2 still queued, not seen rendering, and 2 answering status 'paused' or 'processing', "
        "not one gridrun knows,")
    assert _left_unfinished({"submitted": 1, "running": 1}, 2) == \
        "1 job still rendering and 1 still queued, not seen rendering,"
