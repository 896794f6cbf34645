"""A project a team shares (a group folder, `umask 002`): the files a run makes follow the umask, as its videos
do, and a file of a teammate's that this user cannot write is refused before anything is recorded or sent, naming
its owner and mode and the fix."""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from execkit import write_manifest

from runner import api, resume
from runner.cli import main
from runner.errors import StateError
from runner.state import Store, not_writable_said

OTHER_UID = 4242  # this user, as another member of the group: the files the test makes are the other one's


@pytest.fixture
def umask_002() -> Iterator[None]:
    was = os.umask(0o002)
    try:
        yield
    finally:
        os.umask(was)


def test_the_state_file_and_the_locks_follow_the_umask(tmp_path: Path, umask_002: None) -> None:
    """Under `umask 002`, a group member can take the runner lock and write the state: they are 0664, not
    0644, as SQLite and a fixed mode would make them."""
    m = write_manifest(tmp_path, n_seeds=1, styles=("anime",))
    assert main(["run", str(m)]) == 0
    made = [tmp_path / ".gridrun" / "lock", tmp_path / ".gridrun" / "state.db",
            tmp_path / "outputs" / "t" / ".runs" / "lock"]
    made += [p for p in (tmp_path / ".gridrun" / "state.db-wal", tmp_path / ".gridrun" / "state.db-shm") if p.exists()]
    modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in made}
    assert all(mode == 0o664 for mode in modes.values()), modes


def test_a_teammates_lock_file_this_user_cannot_write_is_refused_naming_owner_and_mode(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The runner lock of a state another user made, not writable here: `run` says whose it is, its mode and
    the fix, before it opens the state or sends anything; taking the lock itself (`cancel`) says the same
    where the system refuses it."""
    m = write_manifest(tmp_path, n_seeds=1, styles=("anime",))
    assert main(["run", str(m)]) == 0
    lock = tmp_path / ".gridrun" / "lock"
    lock.chmod(0o644)
    real_access = os.access
    # as another user of the group sees it (root may write any file, so the system is asked as one would be)
    monkeypatch.setattr(os, "geteuid", lambda: OTHER_UID)
    monkeypatch.setattr(os, "access", lambda p, mode, **kw: False if Path(p) == lock and mode & os.W_OK
                        else real_access(p, mode, **kw))
    capsys.readouterr()
    assert main(["run", "--force", str(m)]) == 1
    err = capsys.readouterr().err
    assert f"{lock} (owned by uid {os.getuid()}" in err and "mode 0644" in err, err
    assert f"`chmod g+w {lock}`" in err and "umask 002" in err and "nothing was recorded or sent" in err, err
    with Store(tmp_path / ".gridrun" / "state.db", readonly=True) as store:
        assert store.latest_run("t").id == 1  # no run recorded

    with Store(tmp_path / ".gridrun" / "state.db") as store, pytest.raises(StateError) as caught:
        store.acquire_lock(then="cancel again")  # as `cancel` takes it
    said = str(caught.value)
    assert said.startswith(f"{lock} (owned by uid ") and said.endswith("; then cancel again"), said
    monkeypatch.setattr(os, "access", real_access)

    real_open = os.open

    def refused(path: object, flags: int, *args: object, **kw: object) -> int:
        if Path(str(path)) == lock:
            raise PermissionError(13, "Permission denied", str(path))
        return real_open(path, flags, *args, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "open", refused)
    with Store(tmp_path / ".gridrun" / "state.db") as store, pytest.raises(StateError) as caught:
        store.acquire_lock()
    said = str(caught.value)
    assert said.startswith(f"cannot take the runner lock: {lock} (owned by uid ") and "mode 0644" in said, said


def test_cancel_refuses_a_teammates_state_file_it_cannot_write_naming_owner_and_mode(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Jobs in flight, the state file another user's and not writable here: `cancel` says whose it is and its
    mode before it opens the state, rather than SQLite's words at its first write; nothing is cancelled."""
    m = write_manifest(tmp_path, n_seeds=1, styles=("anime",), sim={"render_time": 30.0, "jitter": 0.0})
    assert api.run(m, options={"timeout": 0.2}, report=False).status == "incomplete"
    db = tmp_path / ".gridrun" / "state.db"
    real_access = os.access
    monkeypatch.setattr(os, "geteuid", lambda: OTHER_UID)
    monkeypatch.setattr(os, "access", lambda p, mode, **kw: False if Path(p) == db and mode & os.W_OK
                        else real_access(p, mode, **kw))
    with pytest.raises(StateError) as caught:
        api.cancel(m)
    said = str(caught.value)
    assert said.startswith(f"{db} (owned by uid {os.getuid()}") and f"`chmod g+w {db}`" in said, said
    assert said.endswith("then `gridrun cancel` again"), said
    monkeypatch.setattr(os, "access", real_access)
    assert api.status(m).counts.get("submitted", 0) + api.status(m).counts.get("running", 0) == 1


def test_the_simulators_world_file_this_user_cannot_write_is_refused_before_anything_is_sent(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The built-in simulator writes its world (.gridrun/sim-world.jsonl) as it sends each job: a teammate's that
    this user cannot write is named with the state's files before the run records or sends anything, not found
    by each create failing; `plan` warns of it, as of the state's files, that `gridrun run` would refuse."""
    m = write_manifest(tmp_path, n_seeds=1, styles=("anime",))
    assert main(["run", str(m)]) == 0
    world = tmp_path / ".gridrun" / "sim-world.jsonl"
    db = tmp_path / ".gridrun" / "state.db"
    assert world.is_file()
    before = world.read_bytes()
    real_access = os.access
    monkeypatch.setattr(os, "geteuid", lambda: OTHER_UID)
    monkeypatch.setattr(os, "access", lambda p, mode, **kw: False if Path(p) == world and mode & os.W_OK
                        else real_access(p, mode, **kw))
    capsys.readouterr()
    assert main(["plan", "--force", str(m)]) == 0
    err = capsys.readouterr().err
    assert f"{world} (owned by uid {os.getuid()}" in err and f"`chmod g+w {world}`" in err, err
    assert "`gridrun run --force` would refuse to start" in err and "nothing was recorded" not in err, err

    assert main(["run", "--force", str(m)]) == 1
    err = capsys.readouterr().err
    assert f"{world} (owned by uid {os.getuid()}" in err and f"`chmod g+w {world}`" in err, err
    assert "nothing was recorded or sent" in err, err
    assert world.read_bytes() == before  # nothing sent to the simulator
    with Store(db, readonly=True) as store:
        assert store.latest_run("t").id == 1  # no run recorded

    # the state's own files: `plan` warns of them too, all in one warning
    lock = tmp_path / ".gridrun" / "lock"
    monkeypatch.setattr(os, "access", lambda p, mode, **kw: False if Path(p) in (lock, db) and mode & os.W_OK
                        else real_access(p, mode, **kw))
    assert main(["plan", "--json", str(m)]) == 0
    warned = [w for w in json.loads(capsys.readouterr().out)["warnings"] if "would refuse to start" in w]
    assert len(warned) == 1 and f"`chmod g+w {lock} {db}`" in warned[0], warned
    # what it previews is the command named: `plan --retry` speaks of `gridrun retry`
    for args, command in ((["--retry"], "retry"), (["--retry", "--unknown"], "retry --unknown")):
        assert main(["plan", *args, str(m)]) == 0
        err = capsys.readouterr().err
        assert f"`gridrun {command}` would refuse to start" in err and f"`gridrun {command}` again" in err, err
        assert "`gridrun run`" not in err, err
    monkeypatch.setattr(os, "access", real_access)
    assert main(["plan", str(m)]) == 0
    assert "would refuse" not in capsys.readouterr().err


def test_a_served_simulators_world_is_not_this_runs_to_write(tmp_path: Path) -> None:
    """A manifest naming a served simulator (`base_url:`) or a provider object without a world file: the state
    folder's sim-world.jsonl is no file the run writes, so it is not checked."""
    from runner.providers import get_provider

    m = write_manifest(tmp_path, n_seeds=1, styles=("anime",))
    p = api.plan(m)
    world = tmp_path / ".gridrun" / "sim-world.jsonl"
    assert world in resume.files_written(p)
    assert world not in resume.files_written(p, provider=get_provider("sim", base_url="http://127.0.0.1:9/v1"))
    assert world in resume.files_written(p, provider=get_provider("sim", state_dir=tmp_path / ".gridrun"))


@pytest.mark.parametrize("umask", [0o022, 0o277], ids=["umask 022", "umask 277"])
def test_this_users_own_read_only_state_file_is_said_to_need_its_owners_write_bit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, umask: int,
) -> None:
    """A state file of this user's own made read-only (copied with its mode from a read-only medium, or made under
    `umask 277`): `chmod g+w`, for a teammate's, changes nothing; the owner's write bit is the fix, and a umask
    that keeps it from the files gridrun makes is said."""
    m = write_manifest(tmp_path, n_seeds=1, styles=("anime",))
    assert main(["run", str(m)]) == 0
    db = tmp_path / ".gridrun" / "state.db"
    real_access = os.access
    # as the owner sees a file of mode 0464 (root may write any file, so the system is asked as one would be)
    monkeypatch.setattr(os, "access", lambda p, mode, **kw: False if Path(p) == db and mode & os.W_OK
                        else real_access(p, mode, **kw))
    was = os.umask(umask)
    try:
        said = not_writable_said([db], then="run it again")
    finally:
        os.umask(was)
    assert said is not None and said.startswith(f"{db} (owned by uid {os.geteuid()}"), said
    assert f"Make it writable: `chmod u+w {db}`" in said and "g+w" not in said, said
    assert said.endswith("; then run it again"), said
    assert ("the umask, 277, makes the files gridrun makes read-only to their owner" in said) is (umask == 0o277), said
    other = tmp_path / "other"  # a teammate's beside it: each told its own fix
    other.write_text("", encoding="utf-8")
    monkeypatch.setattr(os, "stat", lambda p, *a, **kw: os.lstat(p) if Path(p) != other else
                        os.stat_result((*tuple(os.lstat(p))[:4], OTHER_UID, *tuple(os.lstat(p))[5:])))
    monkeypatch.setattr(os, "access", lambda p, mode, **kw: False if Path(p) in (db, other) and mode & os.W_OK
                        else real_access(p, mode, **kw))
    said = not_writable_said([db, other], then="run it again")
    assert said is not None and f"Make it writable: `chmod u+w {db}`; have the owner run" in said, said
    assert f"have the owner run `chmod g+w {other}`" in said, said


def test_a_state_the_umask_keeps_its_owner_from_writing_is_said_to_be_the_umask_s_doing(tmp_path: Path) -> None:
    """Under `umask 277` the `.gridrun/` a first run makes is `dr-x------`: SQLite cannot make the state file in
    it, and "check that the folder is writable" named no cause; the umask is named, and the fix."""
    import sqlite3

    from runner.state import remedy

    refused = sqlite3.OperationalError("unable to open database file")
    assert remedy(refused, folder=tmp_path).startswith("check that the folder and its files are writable")
    was = os.umask(0o277)
    try:
        said = remedy(refused, folder=tmp_path)
    finally:
        os.umask(was)
    assert said.startswith("the umask, 277, makes the files and folders gridrun makes read-only to their owner"), said
    assert "`umask 022`" in said and f"`chmod -R u+w {tmp_path}`" in said, said
