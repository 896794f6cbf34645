"""A state file that lost what it held (its write-ahead log gone), damaged past its first pages, or made on a full
disk: every command names the file and says what happened and what to do, and nothing is sent or paid again."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from runner import api
from runner import state as state_mod

from execkit import sim_provider, stats, write_manifest


def _header_only_at_first_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Any, bytes]:
    """A project run once whose state file is then as a run killed before SQLite's first checkpoint leaves it with
    its write-ahead log lost: the file as gridrun made it (SQLite's header only; the run lived in state.db-wal),
    no log beside it, the runs' files in the output folder. Returns the manifest, its simulator and the file's
    bytes."""
    made: list[bytes] = []
    real = state_mod._make_whole

    def keep(path: Path) -> None:
        real(path)
        made.append(path.read_bytes())

    monkeypatch.setattr(state_mod, "_make_whole", keep)
    m = write_manifest(tmp_path, n_seeds=1)
    prov = sim_provider(m)
    monkeypatch.setattr(api, "_provider", lambda p: prov)
    assert api.run(m, report=False).exit_code == 0
    db = tmp_path / ".gridrun" / "state.db"
    for beside in ("state.db-wal", "state.db-shm"):
        (db.parent / beside).unlink(missing_ok=True)
    assert len(made) == 1 and len(made[0]) <= 65536
    db.write_bytes(made[0])
    return m, prov, made[0]


def test_a_state_file_whose_write_ahead_log_was_lost_is_refused_not_read_as_new(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A first run killed before any checkpoint keeps its whole state in state.db-wal; that log lost (a backup or
    a sync of `*.db` only, a clean-up of temporary files), state.db holds SQLite's header alone, as empty as a
    0-byte file. Beside the runs' files that name this state it is refused by every command, naming the log,
    not read as "nothing has run here", which would have `run` send and pay for every job again."""
    from runner.cli import main
    m, prov, header = _header_only_at_first_run(tmp_path, monkeypatch)
    creates = stats(prov)["creates"]
    db = tmp_path / ".gridrun" / "state.db"
    lock = tmp_path / "outputs" / "t" / ".runs" / "lock"
    capsys.readouterr()
    for argv in (["plan"], ["status"], ["run", "--no-report"], ["retry", "--no-report"], ["report"], ["export"],
                 ["cancel"]):
        assert main([argv[0], str(m), *argv[1:]]) == 1, argv
        err = " ".join(capsys.readouterr().err.split())
        assert f"{db}: the state file holds no state (SQLite's header alone)" in err, (argv, err)
        assert "its write-ahead log state.db-wal is not there" in err and ".runs/run-1.yaml" in err, (argv, err)
        assert f"to start over knowingly (every job sent and paid for again), remove it and {lock}" in err, err
        assert "Traceback" not in err
    assert stats(prov)["creates"] == creates and db.read_bytes() == header  # nothing sent, nothing written
    db.unlink()
    lock.unlink()  # started over knowingly
    assert main(["run", str(m), "--no-report"]) == 0
    assert stats(prov)["creates"] == creates + 2


def test_a_state_file_holding_its_header_alone_is_new_once_the_output_folders_lock_is_gone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The header-only file a run killed as it made the state leaves, after a start over (state.db and the output
    folder's .runs/lock removed): no run of it wrote the output folder, so it is a new state."""
    m, _, _ = _header_only_at_first_run(tmp_path, monkeypatch)
    (tmp_path / "outputs" / "t" / ".runs" / "lock").unlink()
    assert api.diff(api.plan(m)) is None
    assert api.run(m, report=False).exit_code == 0

