"""The first frame of a video: the sample-table path gives exactly the frame `av.open` gives, or steps aside."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest

from runner import firstframe
from runner.firstframe import first_frame


def _clip(path: Path, codec: str, *, options: dict[str, str] | None = None, container: dict[str, str] | None = None,
          size: tuple[int, int] = (96, 64), frames: int = 8, seed: int = 7) -> Path:
    """A short clip whose frames all differ (noise sliding sideways), so the wrong frame cannot pass for the first."""
    width, height = size
    base = np.random.default_rng(seed).integers(0, 256, size=(height, width, 3), dtype=np.uint8)
    with av.open(str(path), mode="w", format="mp4", options=container or {}) as out:
        stream = out.add_stream(codec, rate=8)
        stream.width, stream.height = width, height
        stream.pix_fmt = "yuv420p"
        stream.options = options or {}
        for i in range(frames):
            rgb = np.roll(base, shift=5 * i, axis=1)
            for packet in stream.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path


def _reference(path: Path) -> np.ndarray:
    with av.open(str(path)) as c:
        return next(c.decode(video=0)).to_ndarray()


def _no_container(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(video: Path) -> None:
        raise AssertionError(f"{video.name}: took the av.open path")

    monkeypatch.setattr(firstframe, "_from_container", refuse)


CASES = {
    "h264, moov first": ("libx264", {"preset": "ultrafast", "threads": "1"}, {"movflags": "+faststart"}),
    "h264 with B-frames, mdat first": ("libx264", {"preset": "medium", "bf": "3", "threads": "1"}, {}),
    "h264 high profile": ("libx264", {"profile": "high", "threads": "1"}, {"movflags": "+faststart"}),
    "hevc": ("libx265", {"preset": "ultrafast", "x265-params": "log-level=error"}, {}),
    "hevc tagged hvc1": ("libx265", {"preset": "ultrafast", "x265-params": "log-level=error"}, {}),
}


@pytest.mark.parametrize("case", CASES)
def test_the_sample_table_path_gives_the_frame_av_open_gives(
    case: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    codec, options, container = CASES[case]
    if codec not in av.codecs_available:
        pytest.skip(f"this FFmpeg has no {codec}")
    path = _clip(tmp_path / "clip.mp4", codec, options=options, container=container)
    if case == "hevc tagged hvc1":  # the same stream under the other sample entry name
        data = path.read_bytes()
        assert data.count(b"hev1") == 1
        path.write_bytes(data.replace(b"hev1", b"hvc1"))
    expected = _reference(path)
    _no_container(monkeypatch)
    frame = first_frame(path)
    assert frame is not None
    assert np.array_equal(frame.to_ndarray(), expected)


@pytest.mark.parametrize("case", ["mpeg4 part 2", "fragmented", "not mp4 by name"])
def test_other_videos_take_the_container_path_and_give_the_same_frame(case: str, tmp_path: Path) -> None:
    if case == "mpeg4 part 2":
        path = _clip(tmp_path / "clip.mp4", "mpeg4")
    elif case == "fragmented":
        path = _clip(tmp_path / "clip.mp4", "libx264", options={"preset": "ultrafast"},
                     container={"movflags": "frag_keyframe+empty_moov"})
    else:
        path = _clip(tmp_path / "clip.mp4", "libx264", options={"preset": "ultrafast"}).rename(tmp_path / "clip.bin")
    assert path.suffix == ".bin" or firstframe._from_sample_table(path) is None
    frame = first_frame(path)
    assert frame is not None
    assert np.array_equal(frame.to_ndarray(), _reference(path))


def test_a_sample_table_pointing_past_the_end_is_left_to_ffmpeg(tmp_path: Path) -> None:
    path = _clip(tmp_path / "clip.mp4", "libx264", options={"preset": "ultrafast"}, container={"movflags": "+faststart"})
    data = bytearray(path.read_bytes())
    stco = data.index(b"stco")
    data[stco + 12:stco + 16] = (len(data) + 100).to_bytes(4, "big")  # first chunk offset beyond the file
    path.write_bytes(bytes(data))
    assert firstframe._from_sample_table(path) is None
    ours, theirs = first_frame(path), firstframe._from_container(path)
    assert (ours is None) == (theirs is None)
    assert ours is None or np.array_equal(ours.to_ndarray(), theirs.to_ndarray())


def test_not_a_video(tmp_path: Path) -> None:
    path = tmp_path / "clip.mp4"
    path.write_bytes(b"\x00\x00\x00\x18ftypisom" + bytes(100))
    assert firstframe._from_sample_table(path) is None
    with pytest.raises(av.error.FFmpegError):
        first_frame(path)


def test_a_kept_decoder_gives_each_video_its_own_first_frame(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Decoders are kept per thread and reset between videos: videos taken in turn, among them some that
    leave the decoder draining (B-frames), each still give exactly their own first frame."""
    paths = []
    for i, case in enumerate(["h264, moov first", "h264 with B-frames, mdat first", "h264 high profile"]):
        codec, options, container = CASES[case]
        for seed in (1, 2):  # two videos that share one decoder configuration
            paths.append(_clip(tmp_path / f"clip{i}{seed}.mp4", codec, options=options, container=container, seed=seed))
    expected = {p: _reference(p) for p in paths}
    configs = set()
    for p in paths:
        with open(p, "rb") as f:
            found = firstframe._first_sample(f)
        assert found is not None
        configs.add(found[:2])
    assert len(configs) < len(paths)
    _no_container(monkeypatch)
    monkeypatch.setattr(firstframe, "_local", type(firstframe._local)())
    opened = 0
    real = av.CodecContext.create

    def counting(*args: object, **kwargs: object) -> av.CodecContext:
        nonlocal opened
        opened += 1
        return real(*args, **kwargs)

    monkeypatch.setattr(av.CodecContext, "create", counting)
    for p in paths + paths[::-1] + paths:
        frame = first_frame(p)
        assert frame is not None
        assert np.array_equal(frame.to_ndarray(), expected[p]), p.name
    assert opened == len(configs)  # no more than the kept four: each opened once
