"""The first frame of a video, for posters.

`av.open` costs about 0.5 ms even for a small MP4: FFmpeg's stream probe (avformat_find_stream_info)
opens a decoder and decodes frames to learn what the container already says. For the common case, an
MP4/MOV whose first video track is H.264 or H.265, the sample table names the first sample's offset and
size and the sample entry holds the decoder's configuration; decoding that one sample with a decoder
made from it gives the same frame in about a third of the time. Anything else (other codecs, fragmented
MP4, a table that does not add up) takes the `av.open` path.

Opening a decoder costs twice what decoding one small frame does, and the videos of a run share their
decoder configuration, so each thread keeps its last few decoders and resets one between videos.
"""

from __future__ import annotations

import os
import struct
import threading
from collections import OrderedDict
from pathlib import Path
from typing import IO, Any

# Sample entry type -> (FFmpeg decoder, configuration box)
_CODECS = {
    b"avc1": ("h264", b"avcC"),
    b"avc3": ("h264", b"avcC"),
    b"hvc1": ("hevc", b"hvcC"),
    b"hev1": ("hevc", b"hvcC"),
}
_STBL = (b"mdia", b"minf", b"stbl")
_MAX_MOOV = 64 << 20
_MAX_SAMPLE = 64 << 20
_VISUAL_SAMPLE_ENTRY = 78  # bytes of a VisualSampleEntry's fields before its child boxes
_DECODERS_KEPT = 4  # per thread, by (decoder, configuration)
_local = threading.local()


_MP4_SUFFIXES = (".mp4", ".m4v", ".mov")


def _is_mp4(video: str | Path) -> bool:
    return os.path.splitext(video)[1].lower() in _MP4_SUFFIXES


def first_frame(video: str | Path) -> Any | None:
    """The first frame of `video` as an `av.VideoFrame`, or None when it has none.

    :raises av.error.FFmpegError, OSError: the file cannot be read or decoded.
    """
    if _is_mp4(video):
        frame = _from_sample_table(video)
        if frame is not None:
            return frame
    return _from_container(video)


def _from_container(video: str | Path) -> Any | None:
    import av

    # The container named up front when the suffix says it: skips FFmpeg's format probe.
    with av.open(os.fspath(video), format="mp4" if _is_mp4(video) else None) as container:
        if not container.streams.video:
            return None
        stream = container.streams.video[0]
        # One frame: FFmpeg's decoder threads would cost more to start than the frame does to decode.
        stream.thread_type = "NONE"
        stream.codec_context.thread_count = 1
        return next(container.decode(stream), None)


def _from_sample_table(video: str | Path) -> Any | None:
    """The first frame decoded straight from the first sample, or None to take the container path."""
    try:
        with open(video, "rb") as f:
            found = _first_sample(f)
            if found is None:
                return None
            codec, config, offset, size = found
            f.seek(offset)
            sample = f.read(size)
    except (OSError, struct.error, ValueError):
        return None
    if len(sample) != size:
        return None
    import av

    key = (codec, config)
    kept: OrderedDict[tuple[str, bytes], Any] = _kept()
    decoder = kept.pop(key, None)
    try:
        if decoder is None:
            decoder = av.CodecContext.create(codec, "r")
            decoder.extradata = config
            decoder.thread_type = "NONE"
            decoder.thread_count = 1
        else:
            decoder.flush_buffers()  # back to a fresh decoder's state: nothing buffered, not draining
        frames = decoder.decode(av.Packet(sample)) or decoder.decode(None)
    except (av.error.FFmpegError, ValueError):
        return None  # the decoder is dropped: its state is unknown
    kept[key] = decoder
    while len(kept) > _DECODERS_KEPT:
        kept.popitem(last=False)
    return frames[0] if frames else None


def _kept() -> OrderedDict[tuple[str, bytes], Any]:
    """This thread's decoders, least recently used first."""
    kept = getattr(_local, "decoders", None)
    if kept is None:
        kept = _local.decoders = OrderedDict()
    return kept


def _boxes(data: bytes, start: int, end: int) -> Any:
    """(type, payload start, payload end) of the boxes tiling data[start:end]."""
    pos = start
    while pos + 8 <= end:
        size, kind = struct.unpack_from(">I4s", data, pos)
        header = 8
        if size == 1:
            size, header = struct.unpack_from(">Q", data, pos + 8)[0], 16
        elif size == 0:
            size = end - pos
        if size < header or pos + size > end:
            raise ValueError("box overruns its parent")
        yield kind, pos + header, pos + size
        pos += size


def _moov(f: IO[bytes]) -> bytes | None:
    """The payload of the top-level `moov` box, found by seeking over the others (mdat may come first)."""
    end = os.fstat(f.fileno()).st_size
    pos = 0
    while pos + 8 <= end:
        f.seek(pos)
        head = f.read(16)
        size, kind = struct.unpack_from(">I4s", head)
        header = 8
        if size == 1:
            size, header = struct.unpack_from(">Q", head, 8)[0], 16
        elif size == 0:
            size = end - pos
        if size < header:
            return None
        if kind == b"moov":
            if size > _MAX_MOOV:
                return None
            f.seek(pos + header)
            return f.read(size - header)
        pos += size
    return None


def _first_sample(f: IO[bytes]) -> tuple[str, bytes, int, int] | None:
    """(decoder, its configuration, offset, size) of the first sample of the first video track."""
    moov = _moov(f)
    if moov is None:
        return None
    for kind, start, end in _boxes(moov, 0, len(moov)):
        if kind == b"mvex":
            return None  # fragmented: the samples live in movie fragments
    for kind, start, end in _boxes(moov, 0, len(moov)):
        if kind != b"trak":
            continue
        stbl = _descend(moov, start, end, _STBL)
        handler = _descend(moov, start, end, (b"mdia", b"hdlr"))
        if stbl is None or handler is None or moov[handler[0] + 8:handler[0] + 12] != b"vide":
            continue
        tables = {k: (a, b) for k, a, b in _boxes(moov, *stbl)}
        return _sample_of(moov, tables)
    return None


def _descend(data: bytes, start: int, end: int, path: tuple[bytes, ...]) -> tuple[int, int] | None:
    for name in path:
        found = next(((a, b) for k, a, b in _boxes(data, start, end) if k == name), None)
        if found is None:
            return None
        start, end = found
    return start, end


def _sample_of(moov: bytes, tables: dict[bytes, tuple[int, int]]) -> tuple[str, bytes, int, int] | None:
    if b"stsd" not in tables or b"stsz" not in tables or not (b"stco" in tables or b"co64" in tables):
        return None
    stsd, stsd_end = tables[b"stsd"]
    if struct.unpack_from(">I", moov, stsd + 4)[0] < 1:
        return None
    entry_size, entry = struct.unpack_from(">I4s", moov, stsd + 8)
    if entry not in _CODECS or stsd + 8 + entry_size > stsd_end:
        return None
    codec, config_box = _CODECS[entry]
    children = stsd + 16 + _VISUAL_SAMPLE_ENTRY
    config = next((moov[a:b] for k, a, b in _boxes(moov, children, stsd + 8 + entry_size) if k == config_box), None)
    if not config:
        return None
    stsz = tables[b"stsz"][0]
    uniform, count = struct.unpack_from(">II", moov, stsz + 4)
    if count < 1:
        return None
    size = uniform or struct.unpack_from(">I", moov, stsz + 12)[0]
    if b"stco" in tables:
        chunks, offset = struct.unpack_from(">II", moov, tables[b"stco"][0] + 4)
    else:
        chunks, offset = struct.unpack_from(">IQ", moov, tables[b"co64"][0] + 4)
    if chunks < 1 or not 0 < size <= _MAX_SAMPLE:
        return None
    return codec, bytes(config), offset, size
