"""A manifest reached through a link to its file (a teammate's folder of links, a dotfile manager): its state is
looked for beside the link, where existing projects have it, but one beside the file the link leads to that holds
jobs of the plan done or in flight is not left behind silently: `plan` warns, `run` refuses before it records or sends
anything, until the user runs the file itself, shares that state (`state_dir:`), or makes a state folder beside
the link knowingly."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from execkit import write_manifest

from runner import api
from runner.cli import main


def _linked(tmp_path: Path, seeds: int = 2) -> tuple[Path, Path]:
    """A manifest of `seeds` jobs run once in real/, and a link to it in mine/."""
    real, mine = tmp_path / "real", tmp_path / "mine"
    real.mkdir()
    mine.mkdir()
    m = write_manifest(real, n_seeds=seeds, styles=("anime",), sim={"render_time": 0.05, "jitter": 0.0})
    assert api.run(m, report=False).exit_code == 0
    link = mine / m.name
    link.symlink_to(m)
    return m, link


def _creates(folder: Path) -> int:
    world = folder / ".gridrun" / "sim-world.jsonl"
    return world.read_text().count('"t":"create') if world.exists() else 0


def test_a_run_through_a_link_to_the_manifest_file_does_not_pay_again_silently(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
) -> None:
    m, link = _linked(tmp_path)
    state = (tmp_path / "real" / ".gridrun").resolve()
    monkeypatch.chdir(link.parent)
    capsys.readouterr()
    assert main(["plan", "--json", link.name]) == 0
    warnings = json.loads(capsys.readouterr().out)["warnings"]
    said = [w for w in warnings if "is a link to" in w]
    assert len(said) == 1 and f"but {state}, beside the file it links to, holds the runs of 't'" in said[0], warnings
    assert "2 of these 2 jobs done there" in said[0] and f"`state_dir: {state}`" in said[0], said
    # what a run through the link does: it refuses, not pays
    assert "`gridrun run` through the link refuses to start" in said[0] and "a run through the link starts" \
        not in said[0], said

    assert main(["run", link.name]) == 1
    err = capsys.readouterr().err
    assert "is a link to" in err and "nothing was recorded or sent" in err and "mkdir " in err, err
    assert not os.path.lexists(link.parent / ".gridrun") and _creates(tmp_path / "real") == 2

    for command in ("status", "report"):  # what they propose reads that state, not a run that pays again
        assert main([command, link.name]) != 0
        err = capsys.readouterr().err
        assert f"`gridrun {command} {m.resolve()}` reads them" in err and "runs it first" not in err, err

    # the way on, knowingly: a state folder made beside the link
    (link.parent / ".gridrun").mkdir()
    assert main(["run", "--no-report", link.name]) == 0
    assert _creates(link.parent) == 2


def test_the_one_job_of_a_plan_done_beside_the_file_is_counted_in_the_singular_through_a_link(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
) -> None:
    _, link = _linked(tmp_path, seeds=1)
    monkeypatch.chdir(link.parent)
    capsys.readouterr()
    assert main(["plan", "--json", link.name]) == 0
    said = [w for w in json.loads(capsys.readouterr().out)["warnings"] if "is a link to" in w]
    assert len(said) == 1 and "1 of this 1 job done there" in said[0] and "jobs done" not in said[0], said


def test_a_link_to_the_manifest_file_with_an_absolute_state_dir_shares_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`state_dir:` an absolute path names one state from the file and the link alike: nothing to warn of; the
    run through the link finds the jobs done."""
    m, link = _linked(tmp_path)
    state = (tmp_path / "real" / ".gridrun").resolve()
    m.write_text(m.read_text() + f"state_dir: {state}\n")
    monkeypatch.chdir(link.parent)
    capsys.readouterr()
    assert main(["plan", "--json", link.name]) == 0
    assert not [w for w in json.loads(capsys.readouterr().out)["warnings"] if "is a link to" in w]
    assert main(["run", "--no-report", link.name]) == 0
    assert _creates(tmp_path / "real") == 2 and not os.path.lexists(link.parent / ".gridrun")


def _left_in_flight_beside_the_file(tmp_path: Path) -> tuple[Path, Path, Path, Path]:
    """A manifest in `real/` whose run left its 2 jobs rendering (a timeout), and a link to it in `mine/`: the two
    folders, the manifest and the link."""
    real, mine = tmp_path / "real", tmp_path / "mine"
    real.mkdir()
    mine.mkdir()
    m = write_manifest(real, n_seeds=2, styles=("anime",), run={"concurrency": 2},
                       sim={"render_time": 60.0, "jitter": 0.0, "concurrency": 2})
    link = mine / m.name
    link.symlink_to(m)
    assert main(["run", "--no-report", "--timeout", "1", str(m)]) != 0
    return real, mine, m, link

def test_cancel_through_a_link_names_the_jobs_in_flight_in_the_state_beside_the_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Jobs left rendering (and billed) in the state beside the file: `cancel` through the link has no state beside
    the link, but does not say "nothing to cancel" and exit 0 (a cleanup step would pass while they render): it
    refuses, naming that state and the cancel to run, which cancels them."""
    real, mine, m, link = _left_in_flight_beside_the_file(tmp_path)
    assert api.status(m).counts["submitted"] + api.status(m).counts["running"] == 2
    capsys.readouterr()
    state = (real / ".gridrun").resolve()
    monkeypatch.chdir(mine)
    code = main(["cancel", link.name])
    got = capsys.readouterr()
    assert code != 0, got
    text = " ".join(got.err.split())
    assert f"beside which {state} holds 2 jobs of 't' in flight" in text, text
    assert f"`gridrun cancel {m.resolve()}` cancels them there" in text and "nothing to cancel" not in got.out, text
    assert not os.path.lexists(mine / ".gridrun")
    assert main(["cancel", str(m)]) == 0
    assert api.status(m).counts["cancelled"] == 2


def test_jobs_in_flight_beside_the_file_count_as_done_ones_through_a_link(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Jobs the file's own run sent and left in flight (the run stopped, or going on in another terminal) are paid
    for as much as done ones: `plan` through the link warns of them, `run` through it refuses, sends nothing, and
    names the run of the file that collects them."""
    real, mine, m, link = _left_in_flight_beside_the_file(tmp_path)
    counts = api.status(m).counts
    assert counts["submitted"] + counts["running"] == 2 and _creates(real) == 2, counts
    state = (real / ".gridrun").resolve()
    monkeypatch.chdir(mine)
    capsys.readouterr()
    assert main(["plan", "--json", link.name]) == 0
    warnings = json.loads(capsys.readouterr().out)["warnings"]
    said = [" ".join(w.split()) for w in warnings if "is a link to" in w]
    assert len(said) == 1 and f"but {state}, beside the file it links to, holds the runs of 't'" in said[0], warnings
    assert "2 of these 2 jobs in flight there" in said[0], said
    assert f"`gridrun run {m.resolve()}` collects them" in said[0] and "done there" not in said[0], said

    assert main(["run", "--no-report", link.name]) == 1
    err = " ".join(capsys.readouterr().err.split())
    assert "2 of these 2 jobs in flight there" in err and "nothing was recorded or sent" in err, err
    assert not os.path.lexists(mine / ".gridrun") and _creates(real) == 2
    assert main(["cancel", str(m)]) == 0
