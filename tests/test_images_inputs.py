"""Local input images as a run and a plan meet them: a file that is no longer a regular file is refused unread,
a done job whose image has since been moved away does not block the plan, and a bad image of a data file is
named at its line there."""

from __future__ import annotations

import contextlib
import os
import threading
from pathlib import Path
from typing import Any

import pytest
from execkit import sim_provider, stats, write_manifest

from runner import api

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32 + b"\x00\x00\x00\x00IEND\xaeB`\x82"
FOX = PNG.replace(b"\x00" * 32, b"fox".ljust(32, b"\x00"))
MOON = PNG.replace(b"\x00" * 32, b"moon".ljust(32, b"\x00"))

fifo = pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="named pipes are POSIX")


def manifest(tmp_path: Path, pics: list[str], **extra: Any) -> Path:
    (tmp_path / "fox.png").write_bytes(FOX)
    (tmp_path / "moon.png").write_bytes(MOON)
    m = write_manifest(tmp_path, n_seeds=1, styles=("anime",), sim={"render_time": 0.05, "jitter": 0.0},
                       run={"concurrency": 1},
                       extra={"params": {"prompt": "a fox {{ seed }}", "quality": "360p", "duration": 5,
                                         "input_reference": "{{ pic }}"}, **extra})
    m.write_text(m.read_text().replace("matrix:\n", f"matrix:\n  pic: [{', '.join(pics)}]\n")
                 .replace("{{ style }}/seed-{{ seed }}.mp4", "{{ pic }}.mp4"))
    return m


def _unblock(path: Path) -> None:
    """Open the pipe at `path` for writing, and close it, so that a reader waiting for a writer goes on."""
    with contextlib.suppress(OSError):
        os.close(os.open(path, os.O_WRONLY | os.O_NONBLOCK))


@fifo
def test_an_image_replaced_by_a_named_pipe_after_the_plan_is_refused_unread(tmp_path: Path) -> None:
    """A tool that streams a file into place leaves a named pipe where fox.png was: its job is left planned with
    an error saying what the file is now, the pipe is never opened to wait for a writer, and the other job is sent
    and done: the run ends."""
    m = manifest(tmp_path, ["fox.png", "moon.png"])
    p = api.plan(m)
    fox = next(j for j in p.jobs if "fox" in j.key)
    (tmp_path / "fox.png").unlink()
    os.mkfifo(tmp_path / "fox.png")
    prov = sim_provider(m)
    out: dict[str, Any] = {}

    def run() -> None:
        out["result"] = api.run(p, provider=prov, report=False)

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    worker.join(120)
    if worker.is_alive():  # it waits on the pipe: let it go on, and fail
        _unblock(tmp_path / "fox.png")
        worker.join(30)
        pytest.fail("the run waited for a writer of the named pipe")
    result = out["result"]
    assert stats(prov)["creates"] == 1 and result.stats.counts == {**result.stats.counts, "done": 1, "planned": 1}
    left = {j.key: j for j in api.status(m).jobs}[fox.key]
    assert left.state == "planned" and left.provider_id is None, left
    path = (tmp_path / "fox.png").resolve()
    assert (left.error or "").startswith(f"not sent: input_reference: the input image {path} cannot be read since "
                                         "the plan: it is a named pipe, not a regular file holding an image"), left


@fifo
def test_the_plan_refuses_a_named_pipe_without_opening_it_to_wait(tmp_path: Path) -> None:
    """An image that is a named pipe from the start is named as such by the plan, and no digest of it is read."""
    m = manifest(tmp_path, ["fox.png"])
    (tmp_path / "fox.png").unlink()
    os.mkfifo(tmp_path / "fox.png")
    with pytest.raises(api.ManifestError) as caught:
        api.plan(m)
    assert "input image 'fox.png' is a named pipe, not a regular file holding an image" in str(caught.value)


@fifo
def test_a_regular_file_check_does_not_wait_on_a_pipe(tmp_path: Path) -> None:
    """`open_regular` refuses a pipe with no writer at once (the open itself would wait for one)."""
    from runner import images

    os.mkfifo(tmp_path / "p.png")
    out: dict[str, Any] = {}

    def check() -> None:
        try:
            images.read_as_planned(str(tmp_path / "p.png"), "0" * 64)
        except OSError as exc:
            out["error"] = exc

    worker = threading.Thread(target=check, daemon=True)
    worker.start()
    worker.join(60)
    if worker.is_alive():
        _unblock(tmp_path / "p.png")
        worker.join(30)
        pytest.fail("reading the image waited for a writer of the named pipe")
    assert isinstance(out.get("error"), images.NotRegular) and out["error"].what.startswith("is a named pipe")
