from __future__ import annotations

import io
import os
import threading
from collections.abc import Iterator
from pathlib import Path

import av
import pytest

from runner.sim.video import ClipCache, ClipSpec, encode, frame_size

SPEC = ClipSpec("a red fox running through fresh snow", 7, "anime", 5, 320, 180)


def probe(data: bytes) -> dict[str, object]:
    with av.open(io.BytesIO(data)) as container:
        stream = container.streams.video[0]
        frames = list(container.decode(stream))
        assert container.duration is not None
        return {
            "codec": stream.codec_context.name,
            "width": stream.codec_context.width,
            "height": stream.codec_context.height,
            "pix_fmt": stream.codec_context.format.name,
            "duration": container.duration / 1_000_000,
            "frames": len(frames),
        }


@pytest.mark.parametrize(
    ("render", "full_size", "expected"),
    [
        ((1365, 768), False, (320, 180)),
        ((768, 1365), False, (180, 320)),
        ((887, 1182), False, (240, 320)),
        ((1024, 1024), False, (320, 320)),
        ((1365, 768), True, (1364, 768)),
        ((300, 200), False, (300, 200)),
    ],
)
def test_frame_size_scales_the_long_side_down_and_keeps_dimensions_even(
    render: tuple[int, int], full_size: bool, expected: tuple[int, int]
) -> None:
    assert frame_size(render, full_size=full_size) == expected


def test_clip_is_h264_yuv420p_of_the_requested_size_and_duration() -> None:
    clip = encode(SPEC)
    info = probe(clip.mp4)
    assert info["codec"] == "h264"
    assert info["pix_fmt"] == "yuv420p"
    assert (info["width"], info["height"]) == (320, 180)
    assert info["duration"] == pytest.approx(5.0, abs=0.2)
    assert info["frames"] == 40


def test_clip_is_faststart_so_browsers_can_play_it_while_loading() -> None:
    data = encode(ClipSpec("x", 1, None, 5, 64, 64)).mp4
    assert data[4:8] == b"ftyp"
    assert 0 < data.find(b"moov") < data.find(b"mdat")


def test_poster_is_a_jpeg_of_the_same_size() -> None:
    from PIL import Image

    poster = Image.open(io.BytesIO(encode(SPEC).jpeg))
    assert poster.format == "JPEG"
    assert poster.size == (320, 180)


def test_same_inputs_give_the_same_bytes_and_other_inputs_other_pictures() -> None:
    first, again = encode(SPEC), encode(SPEC)
    assert first.mp4 == again.mp4 and first.jpeg == again.jpeg
    other_prompt = encode(ClipSpec("a blue whale", 7, "anime", 5, 320, 180))
    other_seed = encode(ClipSpec(SPEC.prompt, 8, "anime", 5, 320, 180))
    assert len({first.jpeg, other_prompt.jpeg, other_seed.jpeg}) == 3


def test_eight_second_clip_lasts_eight_seconds() -> None:
    info = probe(encode(ClipSpec("long", 1, None, 8, 96, 64)).mp4)
    assert info["duration"] == pytest.approx(8.0, abs=0.2)


def test_cache_encodes_each_spec_once_even_when_asked_concurrently() -> None:
    cache = ClipCache(maxsize=4)
    spec = ClipSpec("cached", 3, None, 5, 64, 64)
    results = []
    threads = [threading.Thread(target=lambda: results.append(cache.get(spec))) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    stats = cache.statistics()
    assert (stats.misses, stats.hits) == (1, 3)
    assert len({id(r) for r in results}) == 1


def test_cache_evicts_the_least_recently_used_clip() -> None:
    cache = ClipCache(maxsize=2)
    a, b, c = (ClipSpec(p, 1, None, 5, 32, 32) for p in "abc")
    cache.get(a)
    cache.get(b)
    cache.get(a)
    cache.get(c)
    assert cache.peek(a) is not None and cache.peek(c) is not None
    assert cache.peek(b) is None


@pytest.mark.skipif(not hasattr(os, "memfd_create"), reason="memfd_create is Linux only")
def test_a_clip_muxed_in_memory_has_the_bytes_of_one_muxed_in_a_temporary_folder() -> None:
    import hashlib

    from runner.sim import video

    spec = ClipSpec("a cat", 3, None, 2.0, 320, 176)
    in_memory = video._mux_in_memory(spec, video._frames(video._scene(spec)))
    on_disk = video._mux_in_temp_dir(spec, video._frames(video._scene(spec)))
    assert len(in_memory) > 1000
    assert hashlib.sha256(in_memory).hexdigest() == hashlib.sha256(on_disk).hexdigest()
    assert encode(spec).mp4 == on_disk


@pytest.mark.skipif(not hasattr(os, "memfd_create"), reason="memfd_create is Linux only")
def test_encoding_leaves_nothing_in_the_temporary_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A process killed during an encode (an in-process simulator) must leave no gridrun-sim-* folder behind:
    on Linux nothing is written to disk at all."""
    import tempfile

    from runner.sim import video

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    seen: list[list[str]] = []
    real_mux = video._mux

    def mux(spec: ClipSpec, frames: Iterator, path: str) -> None:
        real_mux(spec, frames, path)
        seen.append(os.listdir(tmp_path))  # what a kill at this moment would leave

    monkeypatch.setattr(video, "_mux", mux)
    encode(ClipSpec("nothing on disk", 1, None, 1, 32, 32))
    assert seen == [[]]


def test_without_memfd_the_clip_is_muxed_in_a_temporary_folder_removed_after(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import tempfile

    spec = ClipSpec("no memfd", 2, None, 1, 32, 32)
    expected = encode(spec).mp4
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    monkeypatch.delattr(os, "memfd_create", raising=False)
    assert encode(spec).mp4 == expected
    assert os.listdir(tmp_path) == []


def test_an_encode_that_raises_leaves_no_pending_entry_and_the_next_call_encodes(monkeypatch: pytest.MonkeyPatch) -> None:
    from runner.sim import video

    cache = ClipCache(maxsize=2)
    spec = ClipSpec("flaky", 1, None, 1, 32, 32)
    real = video.encode
    calls = []

    def flaky(s: ClipSpec) -> video.Clip:
        calls.append(s)
        if len(calls) == 1:
            raise RuntimeError("encoder broke")
        return real(s)

    monkeypatch.setattr(video, "encode", flaky)
    with pytest.raises(RuntimeError, match="encoder broke"):
        cache.get(spec)
    assert cache._pending == {}
    assert cache.statistics().misses == 0
    assert cache.get(spec).mp4 and len(calls) == 2
    assert cache._pending == {} and cache.statistics().misses == 1


def test_a_full_size_clip_is_encoded_frame_by_frame_not_held_whole_in_memory() -> None:
    """A full-size clip (`full_size: true`) of 1 s of 1080p at 60 fps is 187 MB of frames: each frame is made as
    the encoder takes it, so the encode needs about one frame's memory (and the background's), not every frame's;
    a longer or faster clip costs time, not memory."""
    import tracemalloc

    spec = ClipSpec("a big clip", 5, None, 1.0, 1920, 1080, 60)
    tracemalloc.start()
    try:
        clip = encode(spec)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 100_000_000, f"{peak:,} bytes at the peak"
    with av.open(io.BytesIO(clip.mp4)) as container:  # its 60 frames, as the file's index counts them
        assert container.streams.video[0].frames == 60
