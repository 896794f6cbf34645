"""A done job whose video is lost here and at the provider: expired, and only `gridrun retry` sends it again."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from execkit import TWO_JOB_MANIFEST

from runner.cli import main

MANIFEST = TWO_JOB_MANIFEST


def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    got = capsys.readouterr()
    return code, got.out, got.err


@pytest.fixture
def lost(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    """A manifest whose job anime was done, then its video removed here and forgotten by the simulator; one run
    since found it gone."""
    m = tmp_path / "m.yaml"
    m.write_text(MANIFEST, encoding="utf-8")
    assert cli(capsys, "run", str(m))[0] == 0
    (tmp_path / "outputs" / "wk" / "anime.mp4").unlink()
    (tmp_path / ".gridrun" / "sim-world.jsonl").unlink()  # the provider forgot its videos
    code, _, err = cli(capsys, "run", str(m))
    assert code == 1 and "it is gone" in err
    return m


def test_run_after_a_video_gone_does_not_advise_a_free_fetch(lost: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = cli(capsys, "run", str(lost))
    assert code == 1
    assert "at no cost" not in err
    assert "`gridrun retry` sends expired ones (a new render, paid: the provider no longer has it)" in err
    assert cli(capsys, "retry", str(lost))[0] == 0  # as it advises: rendered again
    assert (lost.parent / "outputs" / "wk" / "anime.mp4").is_file()


def test_status_after_a_video_gone_advises_only_retry(lost: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _, out, _ = cli(capsys, "status", str(lost))
    nxt = [line for line in out.splitlines() if "next:" in line]
    assert nxt and "fresh URL" not in nxt[0] and "`gridrun retry`" in nxt[0]


def test_plan_counts_a_video_gone_as_settled_not_to_fetch(lost: Path, capsys: pytest.CaptureFixture[str],
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    from runner import cli as cli_mod

    monkeypatch.setattr(cli_mod.out, "width", 200)  # the job's status whole on its line
    code, out, _ = cli(capsys, "plan", str(lost), "--json")
    assert code == 0
    doc = json.loads(out)
    assert doc["against_state"]["to_fetch_again"] == 0 and doc["against_state"]["settled"] == 1
    _, out, _ = cli(capsys, "plan", str(lost), "--explain")
    assert "to fetch again" not in out
    assert "the provider no longer has its video" in out
