"""A named pipe or a device where a job writes (its video, `.part`, sidecar or poster) is refused by the plan, before
anything is sent, and never opened by what reads the files at an output path: opening a named pipe waits for a
writer and a device reads without end, which held a run for ever, past its SIGTERM."""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from execkit import TWO_JOB_MANIFEST

from runner import outputs
from runner.cli import main
from runner.images import NotRegular

pytestmark = pytest.mark.skipif(not hasattr(os, "mkfifo") or not os.path.exists("/dev/zero"),
                                reason="named pipes and /dev/zero are POSIX")

MANIFEST = TWO_JOB_MANIFEST


def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    got = capsys.readouterr()
    return code, got.out, got.err


def special(path: Path, kind: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if kind == "fifo":
        os.mkfifo(path)
    else:
        path.symlink_to("/dev/zero")


SAID = {"fifo": "which is a named pipe; remove it, or change output",
        "zero": "a link to /dev/zero, which is a character device; remove the link, or change output"}


@pytest.mark.parametrize("name", ["anime.mp4", "anime.mp4.part", "anime.json", "anime.jpg"])
@pytest.mark.parametrize("kind", ["fifo", "zero"])
def test_plan_and_run_refuse_a_named_pipe_or_a_device_where_a_job_writes(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str, kind: str) -> None:
    m = tmp_path / "m.yaml"
    m.write_text(MANIFEST, encoding="utf-8")
    at = tmp_path / "outputs" / "wk" / name
    special(at, kind)
    line = f"{m}:11:1: output: job 'style=anime' would write {at}, {SAID[kind]}"
    code, _, err = cli(capsys, "plan", str(m))
    assert code == 2
    assert line in err
    code, out, _ = cli(capsys, "plan", str(m), "--json")
    assert code == 2 and json.loads(out)["errors"] == [line]
    code, out, _ = cli(capsys, "run", str(m), "--json")
    end = json.loads(out.splitlines()[-1])
    assert code == 2 and end["event"] == "end" and end["exit_code"] == 2 and end["errors"] == [line]
    assert not (tmp_path / ".gridrun" / "sim-world.jsonl").exists()  # no create reached the provider
    assert os.path.lexists(at) and not at.is_file()  # left as it was


def promptly(call: Callable[[], Any]) -> Any:
    """What `call` returns or raises, run in a thread: a call that waits on a named pipe fails the test, not hangs."""
    got: dict[str, Any] = {}

    def go() -> None:
        try:
            got["value"] = call()
        except BaseException as exc:  # noqa: BLE001 - handed back to the test
            got["error"] = exc

    worker = threading.Thread(target=go, daemon=True)
    worker.start()
    worker.join(10)
    if worker.is_alive():  # a daemon thread: left to the process's end
        pytest.fail(f"{call} still waits on the file")
    if "error" in got:
        raise got["error"]
    return got.get("value")


def unblock(path: Path) -> None:
    """Open the named pipe at `path` to write, without waiting: a reader blocked on its open (a regression) goes."""
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_NONBLOCK))
    except OSError:
        pass


@pytest.mark.parametrize("kind", ["fifo", "zero"])
def test_a_named_pipe_or_a_device_put_at_an_output_path_after_the_plan_is_never_read(tmp_path: Path,
                                                                                     kind: str) -> None:
    video = tmp_path / "out" / "anime.mp4"
    special(video, kind)
    try:
        with pytest.raises(NotRegular):
            promptly(lambda: outputs.sha256_file(video))
        # the download's keeping of what its video replaces: nothing to keep, the new video's name replaces it
        assert promptly(lambda: outputs.keep_file(video, tmp_path / "kept", unless_recorded=True, poster=True,
                                                  once=True)) is None
        with pytest.raises(NotRegular):
            promptly(lambda: outputs.atomic_copy(video, tmp_path / "copy.mp4"))
        assert not (tmp_path / "copy.mp4").exists()
        assert promptly(lambda: outputs.holds_take(video, "h" * 64, "0" * 64)) is False
    finally:
        if kind == "fifo":
            unblock(video)


@pytest.mark.parametrize("kind", ["fifo", "zero"])
def test_a_named_pipe_or_a_device_beside_a_video_is_never_read(tmp_path: Path, kind: str) -> None:
    video = tmp_path / "anime.mp4"
    video.write_bytes(b"a video")
    sidecar, poster = outputs.sidecar_path(video), outputs.poster_path(video)
    special(sidecar, kind)
    special(poster, kind)
    try:
        assert promptly(lambda: outputs.gridrun_sidecar(video)) is None
        assert promptly(lambda: outputs.gridrun_poster(poster)) is False
        assert promptly(lambda: outputs.broken_image(poster, 1)) is False
        assert promptly(lambda: outputs.foreign_poster(video)) is False
        assert promptly(lambda: outputs.holds_take(video, "h" * 64, "0" * 64)) is False
        kept = promptly(lambda: outputs.keep_file(video, tmp_path / "kept", unless_recorded=True, poster=True,
                                                  once=True))
        assert kept is not None and kept.path.read_bytes() == b"a video"
        assert sorted(p.name for p in kept.path.parent.iterdir()) == ["anime.mp4"]  # neither pipe nor device read
    finally:
        if kind == "fifo":
            unblock(sidecar)
            unblock(poster)
