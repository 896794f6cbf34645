"""Copies of finished videos (a cached job at a new output path, a done video put aside before a changed job
replaces it, a take put back): streamed in bounded chunks, never read whole into memory."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import pytest
from execkit import sim_provider, stats, write_manifest

from runner import api, outputs
from runner.options import RunOptions
from runner.resume import restore

CHUNK = 4096


class Reader:
    """A file object that records the size of each read asked of it."""

    def __init__(self, inner: Any, sizes: list[int]) -> None:
        self.inner, self.sizes = inner, sizes

    def readinto(self, buffer: Any) -> int:
        self.sizes.append(len(buffer))
        return self.inner.readinto(buffer)

    def read(self, size: int = -1) -> bytes:
        self.sizes.append(size)
        return self.inner.read(size)

    def __enter__(self) -> Reader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.inner.close()


@pytest.fixture
def reads(monkeypatch: pytest.MonkeyPatch) -> dict[str, list[int]]:
    """The reads of each file a copy opens (by name), in chunks of CHUNK bytes; and no `.mp4` read whole."""
    seen: dict[str, list[int]] = {}
    monkeypatch.setattr(outputs, "COPY_CHUNK", CHUNK, raising=False)
    monkeypatch.setattr(outputs, "_open_source", lambda path: Reader(open(path, "rb", buffering=0),
                                                                     seen.setdefault(os.path.basename(path), [])),
                        raising=False)
    real_read_bytes = Path.read_bytes

    def read_bytes(self: Path) -> bytes:
        assert self.suffix != ".mp4", f"{self} read whole into memory"
        return real_read_bytes(self)

    monkeypatch.setattr(Path, "read_bytes", read_bytes)
    return seen


def bounded(sizes: list[int]) -> bool:
    return len(sizes) > 2 and all(0 < size <= CHUNK for size in sizes)


def test_atomic_copy_streams_in_chunks_and_keeps_the_guarantees_of_a_write(
    tmp_path: Path, reads: dict[str, list[int]], disk_steps: list[str]
) -> None:
    src = tmp_path / "a.mp4"
    data = os.urandom(CHUNK * 10 + 17)
    src.write_bytes(data)
    dest = tmp_path / "deep" / "b.mp4"
    assert outputs.atomic_copy(src, dest) == hashlib.sha256(data).hexdigest()
    with open(dest, "rb") as f:
        assert f.read() == data
    assert bounded(reads["a.mp4"]), reads
    assert disk_steps == ["fsync file", "rename to b.mp4", "fsync folder"]
    assert sorted(p.name for p in dest.parent.iterdir()) == ["b.mp4"]  # no temporary file left


def test_atomic_copy_of_bytes_with_another_digest_writes_nothing(tmp_path: Path, reads: dict[str, list[int]]) -> None:
    src = tmp_path / "a.mp4"
    src.write_bytes(b"x" * (CHUNK * 3))
    dest = tmp_path / "b.mp4"
    dest.write_bytes(b"before")
    assert outputs.atomic_copy(src, dest, sha256="0" * 64) is None
    assert dest.read_text() == "before" and sorted(p.name for p in tmp_path.iterdir()) == ["a.mp4", "b.mp4"]


def test_a_failed_write_names_the_destination_and_leaves_no_temporary_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    src = tmp_path / "a.mp4"
    src.write_bytes(b"x" * 100)
    (tmp_path / "out").mkdir()

    def full(fd: int, data: object) -> int:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(outputs.os, "write", full)
    with pytest.raises(OSError) as info:
        outputs.atomic_copy(src, tmp_path / "out" / "b.mp4")
    assert info.value.filename == str(tmp_path / "out" / "b.mp4")
    assert list((tmp_path / "out").iterdir()) == []


def test_restore_streams_and_refuses_a_file_changed_since_it_was_checked(
    tmp_path: Path, reads: dict[str, list[int]]
) -> None:
    src = tmp_path / "kept.mp4"
    data = os.urandom(CHUNK * 5)
    src.write_bytes(data)
    dest = tmp_path / "out" / "fox.mp4"
    assert restore(src, dest, "h" * 64, hashlib.sha256(data).hexdigest())
    with open(dest, "rb") as f:
        assert f.read() == data
    assert bounded(reads["kept.mp4"])
    dest.unlink()
    assert not restore(src, dest, "h" * 64, hashlib.sha256(b"other").hexdigest())
    assert not dest.exists()
    assert not restore(tmp_path / "missing.mp4", dest, "h" * 64, hashlib.sha256(data).hexdigest())


def test_a_cached_video_is_copied_to_its_new_path_in_chunks(tmp_path: Path, reads: dict[str, list[int]]) -> None:
    m = write_manifest(tmp_path, n_seeds=1, styles=("anime",))
    prov = sim_provider(m)
    first = api.run(m, provider=prov, options=RunOptions(), report=False)
    assert first.exit_code == 0 and not reads
    old = first.outputs_dir / "anime" / "seed-1.mp4"
    m.write_text(m.read_text().replace("{{ style }}/seed-{{ seed }}.mp4", "moved/{{ style }}-{{ seed }}.mp4"))
    again = api.run(m, provider=prov, options=RunOptions(), report=False)
    assert again.exit_code == 0 and again.stats.cached == 1
    new = first.outputs_dir / "moved" / "anime-1.mp4"
    assert outputs.sha256_file(new) == outputs.sha256_file(old)
    assert old.stat().st_size > 3 * CHUNK and bounded(reads["seed-1.mp4"]), reads
    assert stats(prov)["creates"] == 1


def test_a_done_video_put_aside_before_a_changed_job_replaces_it_is_copied_in_chunks(
    tmp_path: Path, reads: dict[str, list[int]]
) -> None:
    m = write_manifest(tmp_path, n_seeds=1, styles=("anime",))
    prov = sim_provider(m)
    first = api.run(m, provider=prov, options=RunOptions(), report=False)
    assert first.exit_code == 0
    video = first.outputs_dir / "anime" / "seed-1.mp4"
    before = outputs.sha256_file(video)
    m.write_text(m.read_text().replace("a fox,", "a red fox,"))
    again = api.run(m, provider=prov, options=RunOptions(), report=False)
    assert again.exit_code == 0
    aside = first.outputs_dir / ".runs" / "superseded"
    kept = list(aside.rglob("seed-1.mp4"))
    assert kept and outputs.sha256_file(kept[0]) == before, list(aside.rglob("*"))
    assert bounded(reads["seed-1.mp4"]), reads
