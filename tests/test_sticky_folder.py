"""An output folder with the sticky bit (a team's drop folder, `chmod 1777`), whose videos are another user's:
there only a file's owner may replace it, whatever the folder's write permission says. A run that would render
them again is refused before it sends anything; a replace refused all the same is said to be that, not a full
disk. Another user is played by `os.geteuid` (a test run as root may replace any file, and one user cannot
make files of another's)."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest
from execkit import write_manifest

from runner import resume
from runner.cli import _next_steps, main
from runner.limits import os_reason
from runner.live import _why
from runner.state import Store

OTHER_UID = 4242


def _sticky_project(tmp_path: Path) -> tuple[Path, Path]:
    """A manifest run once, its videos at the top of its output folder, made sticky; the folder."""
    m = write_manifest(tmp_path, n_seeds=2, styles=("anime",), extra={"output": "{{ style }}-{{ seed }}.mp4"},
                       sim={"render_time": 0.05, "jitter": 0.0})
    assert main(["run", str(m)]) == 0
    folder = tmp_path / "outputs" / "t"
    folder.chmod(0o1777)
    return m, folder


def _runs(tmp_path: Path) -> int:
    with Store(tmp_path / ".gridrun" / "state.db", readonly=True) as store:
        return store.latest_run("t").id


def test_a_forced_rerender_of_another_users_videos_in_a_sticky_folder_is_refused_before_sending(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
) -> None:
    m, folder = _sticky_project(tmp_path)
    monkeypatch.setattr(os, "geteuid", lambda: OTHER_UID)
    capsys.readouterr()
    assert main(["run", "--force", str(m)]) == 1
    err = capsys.readouterr().err
    assert f"{folder / 'anime-1.mp4'}: the file is owned by uid {os.getuid()}, in a sticky folder" in err, err
    assert "(and 1 more)" in err and "Nothing was recorded or sent" in err and "outputs_dir:" in err, err
    assert _runs(tmp_path) == 1
    monkeypatch.undo()  # the videos' owner re-renders them
    assert main(["run", "--force", str(m)]) == 0 and _runs(tmp_path) == 2


def test_a_replace_the_sticky_bit_refuses_is_said_so_not_blamed_on_disk_space(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Should a replace be refused all the same (the files changed hands after the run began): the run's advice,
    and the report it could not rebuild, name the sticky folder and the owner."""
    m, folder = _sticky_project(tmp_path)
    monkeypatch.setattr(os, "geteuid", lambda: OTHER_UID)
    monkeypatch.setattr(resume, "check_replaceable", lambda again: None)
    real_replace = os.replace

    def replace(src: str, dst: str, **kw: object) -> None:
        if Path(dst).parent == folder and Path(dst).exists():
            raise PermissionError(errno.EPERM, "Operation not permitted", src, None, dst)
        real_replace(src, dst, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "replace", replace)
    capsys.readouterr()
    assert main(["run", "--force", str(m)]) != 0
    captured = capsys.readouterr()
    said = captured.out + captured.err
    assert f"videos could not be saved in {folder}: the folder is sticky" in said and "free space" not in said, said
    assert f"{folder / 'report.html'}: Operation not permitted: the file is owned by uid" in said, said
    assert "-> None" not in said and "PermissionError" not in said, said


def test_the_words_for_a_refused_replace() -> None:
    """`_why` of a file that could not be written names it once, in plain words (an exception whose second
    name was cleared reads "-> None" in Python's own form); the next steps name the sticky folder only for it."""
    exc = PermissionError(errno.EPERM, "Operation not permitted", "/x/.report.tmp", None, "/x/report.html")
    exc.filename, exc.filename2 = "/x/report.html", None
    assert "-> None" in str(exc)
    assert _why(exc) == "/x/report.html: Operation not permitted; make its folder writable"
    assert os_reason(exc) == "Operation not permitted"  # no such file: nothing more to say
    steps = _next_steps({"done": 1}, unsaved="/x", errors=["WRITE_FAILED: /x/a.mp4: no: in a sticky folder"]).text
    assert "run gridrun as that user" in steps and "free space" not in steps
    assert "free space" in _next_steps({"done": 1}, unsaved="/x",
                                       errors=["WRITE_FAILED: No space left on device"]).text


def test_plan_force_warns_of_the_rerender_the_sticky_folder_would_refuse(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`plan --force` says what `run --force` would refuse (another user's videos in a sticky folder to render
    again), as it says of folders that cannot be written; a plain `plan`, which renders nothing again, does not."""
    m, folder = _sticky_project(tmp_path)
    monkeypatch.setattr(os, "geteuid", lambda: OTHER_UID)
    capsys.readouterr()
    assert main(["plan", "--force", str(m)]) == 0
    err = capsys.readouterr().err
    assert f"{folder / 'anime-1.mp4'}: the file is owned by uid {os.getuid()}, in a sticky folder" in err, err
    assert "(and 1 more)" in err and "`gridrun run --force` would refuse to start" in err, err
    assert main(["plan", str(m)]) == 0
    assert "sticky" not in capsys.readouterr().err
    assert _runs(tmp_path) == 1
