"""Small real video files for the simulator: H.264 MP4 clips and JPEG posters that follow prompt and seed.

`encode(spec)` is pure and deterministic: the same `ClipSpec` gives the same bytes. `ClipCache` encodes each
distinct spec once and is safe to call from worker threads.
"""

from __future__ import annotations

import colorsys
import hashlib
import io
import math
import os
import tempfile
import textwrap
import threading
import time
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass

import av
import numpy as np
from PIL import Image, ImageDraw, ImageFont

MAX_SIDE = 320
FPS = 8
SPRITE_GRID = (2, 2)
"""Columns and rows of a spritesheet: its frames are spread evenly over the clip, in reading order."""


@dataclass(frozen=True, slots=True)
class ClipSpec:
    """Everything that decides a clip's bytes."""

    prompt: str
    seed: int
    style: str | None
    seconds: float
    width: int
    height: int
    fps: int = FPS
    min_bytes: int = 0  # the MP4 padded with a trailing `free` box to at least this size


@dataclass(frozen=True, slots=True)
class Clip:
    """An encoded clip and its poster."""

    mp4: bytes
    jpeg: bytes
    encode_seconds: float


@dataclass(frozen=True, slots=True)
class CacheStatistics:
    """:ivar hits: clips served from the cache; misses: clips encoded; encode_seconds: time spent encoding."""

    hits: int
    misses: int
    size: int
    encode_seconds: float


def frame_size(render: tuple[int, int], *, full_size: bool = False, max_side: int = MAX_SIDE) -> tuple[int, int]:
    """The frame size of a clip for a render size: scaled down to `max_side` unless `full_size`; always even."""
    w, h = render
    if not full_size and max(w, h) > max_side:
        scale = max_side / max(w, h)
        w, h = w * scale, h * scale
    return max(2, int(round(w)) // 2 * 2), max(2, int(round(h)) // 2 * 2)


def _digest(*parts: object) -> bytes:
    return hashlib.blake2b("\x1f".join(map(str, parts)).encode(), digest_size=32).digest()


def _colour(hue: float, sat: float, val: float) -> tuple[int, int, int]:
    r, g, b = colorsys.hsv_to_rgb(hue % 1.0, sat, val)
    return int(r * 255), int(g * 255), int(b * 255)


def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    return ImageFont.load_default(size=size)


def _background(spec: ClipSpec, w: int, h: int) -> np.ndarray:
    d = _digest("background", spec.prompt, spec.style or "")
    hue = d[0] / 255
    top = np.array(_colour(hue, 0.55, 0.85), dtype=np.float32)
    bottom = np.array(_colour(hue + 0.08 + d[1] / 2550, 0.7, 0.35), dtype=np.float32)
    t = np.linspace(0.0, 1.0, h, dtype=np.float32)[:, None, None]
    grad = (top * (1 - t) + bottom * t).repeat(w, axis=1)
    img = Image.fromarray(grad.astype(np.uint8), "RGB")
    draw = ImageDraw.Draw(img)
    size = max(9, min(w, h) // 14)
    font = _font(size)
    chars = max(8, int(w / (size * 0.55)))
    lines = textwrap.wrap(spec.prompt or "(empty prompt)", chars)[: max(1, (h // 2) // (size + 2))]
    y = 4
    for line in lines:
        draw.text((5, y + 1), line, fill=(0, 0, 0), font=font)
        draw.text((4, y), line, fill=(255, 255, 255), font=font)
        y += size + 2
    label = f"{spec.style or 'no style'} · seed {spec.seed}"
    small = _font(max(8, size - 2))
    draw.text((4, h - size - 4), label, fill=(255, 255, 255), font=small)
    return np.asarray(img, dtype=np.uint8).copy()


# BT.601 limited range, the matrix players assume for untagged SD video.
_RGB_TO_YUV = np.array([[0.257, 0.504, 0.098], [-0.148, -0.291, 0.439], [0.439, -0.368, -0.071]], dtype=np.float32)
_YUV_OFFSET = np.array([16.0, 128.0, 128.0], dtype=np.float32)


def _planes(rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Y at full size, U and V at half size in each direction (4:2:0)."""
    h, w, _ = rgb.shape
    yuv = rgb.astype(np.float32) @ _RGB_TO_YUV.T + _YUV_OFFSET
    chroma = yuv[..., 1:].reshape(h // 2, 2, w // 2, 2, 2).mean(axis=(1, 3))
    y, u, v = yuv[..., 0], chroma[..., 0], chroma[..., 1]
    return tuple(np.clip(np.rint(p), 0, 255).astype(np.uint8) for p in (y, u, v))  # type: ignore[return-value]


def _disc(radius: int) -> np.ndarray:
    yy, xx = np.mgrid[-radius : radius + 1, -radius : radius + 1]
    return np.asarray((xx * xx + yy * yy) <= radius * radius)


def _paint(plane: np.ndarray, cx: int, cy: int, mask: np.ndarray, value: np.ndarray | int) -> None:
    r = mask.shape[0] // 2
    region = plane[max(0, cy - r) : cy + r + 1, max(0, cx - r) : cx + r + 1]
    region[mask[: region.shape[0], : region.shape[1]]] = value


@dataclass(frozen=True, slots=True)
class _Scene:
    background: np.ndarray
    colour: tuple[int, int, int]
    radius: int
    path: tuple[tuple[int, int], ...]


def _scene(spec: ClipSpec) -> _Scene:
    w, h = spec.width, spec.height
    d = _digest("motion", spec.seed)
    fx, fy = 1 + d[0] % 3, 1 + d[1] % 4
    phase = d[2] / 255 * 2 * math.pi
    radius = max(3, min(w, h) // (6 + d[3] % 5))
    n = max(1, int(round(spec.seconds * spec.fps)))
    path = []
    for i in range(n):
        t = i / n
        cx = int((w / 2 - radius - 1) * math.sin(2 * math.pi * fx * t + phase) + w / 2)
        cy = int((h / 2 - radius - 1) * math.sin(2 * math.pi * fy * t) + h / 2)
        path.append((cx, cy))
    return _Scene(_background(spec, w, h), _colour(d[4] / 255, 0.9, 1.0), radius, tuple(path))


def _frames(scene: _Scene) -> Iterator[np.ndarray]:
    """Each frame in turn as one yuv420p array (Y rows, then U, then V), drawn in YUV to skip a colour conversion.
    Made as the encoder takes them, so a clip needs one frame's memory, not all of them: a full-size 1080p clip of
    8 s at 60 fps is 1.5 GB of frames."""
    h, w, _ = scene.background.shape
    base = _planes(scene.background)
    colour = np.array(scene.colour, dtype=np.float32) @ _RGB_TO_YUV.T + _YUV_OFFSET
    values = [int(round(c)) for c in colour]
    masks = (_disc(scene.radius), _disc(max(1, scene.radius // 2)))
    n = len(scene.path)
    for i, (cx, cy) in enumerate(scene.path):
        y, u, v = (p.copy() for p in base)
        _paint(y, cx, cy, masks[0], values[0])
        _paint(u, cx // 2, cy // 2, masks[1], values[1])
        _paint(v, cx // 2, cy // 2, masks[1], values[2])
        bar = int(w * (i + 1) / n)
        y[h - 4 :, :bar] = 235
        u[h // 2 - 2 :, : bar // 2] = 128
        v[h // 2 - 2 :, : bar // 2] = 128
        yield np.concatenate([y.ravel(), u.ravel(), v.ravel()]).reshape(-1, w)


def _still(scene: _Scene, index: int) -> Image.Image:
    """Frame `index` of the clip as a picture (without the progress bar)."""
    frame = scene.background.copy()
    cx, cy = scene.path[index]
    _paint(frame, cx, cy, _disc(scene.radius), np.array(scene.colour, dtype=np.uint8))
    return Image.fromarray(frame)


def _jpeg(img: Image.Image) -> bytes:
    out = io.BytesIO()
    img.save(out, format="JPEG", quality=80)
    return out.getvalue()


def _poster(scene: _Scene) -> bytes:
    return _jpeg(_still(scene, len(scene.path) // 2))


def _spritesheet(scene: _Scene) -> bytes:
    """`SPRITE_GRID` frames spread evenly over the clip, each at half size, in reading order."""
    cols, rows = SPRITE_GRID
    h, w, _ = scene.background.shape
    cell = (max(1, w // 2), max(1, h // 2))
    sheet = Image.new("RGB", (cell[0] * cols, cell[1] * rows))
    n = len(scene.path)
    for i in range(cols * rows):
        tile = _still(scene, i * n // (cols * rows)).resize(cell, Image.Resampling.BILINEAR)
        sheet.paste(tile, ((i % cols) * cell[0], (i // cols) * cell[1]))
    return _jpeg(sheet)


def encode(spec: ClipSpec) -> Clip:
    """Encode `spec` as an H.264 (yuv420p, faststart) MP4 and a JPEG poster. Deterministic."""
    started = time.perf_counter()
    scene = _scene(spec)
    frames = _frames(scene)
    mp4 = _mux_in_memory(spec, frames) if hasattr(os, "memfd_create") else _mux_in_temp_dir(spec, frames)
    return Clip(_padded(mp4, spec.min_bytes), _poster(scene), time.perf_counter() - started)


def _padded(mp4: bytes, size: int) -> bytes:
    """`mp4` with a `free` box after its last box to make it at least `size` bytes (players skip it); its bytes
    follow from the clip's, so the padded clip is as deterministic."""
    if size <= len(mp4):
        return mp4
    length = max(size - len(mp4), 8)  # below 4 GiB: `clip_bytes` is at most 1 GiB
    fill = hashlib.sha256(mp4).digest() * (length // 32 + 1)  # not zeros: no layer may compress it away
    return mp4 + length.to_bytes(4, "big") + b"free" + fill[: length - 8]


def spritesheet(spec: ClipSpec) -> bytes:
    """A JPEG grid (`SPRITE_GRID`) of frames of the clip of `spec`, each at half size. Deterministic; drawn on
    each call, not cached: few callers ask for one."""
    return _spritesheet(_scene(spec))


# faststart rewrites the file in a second pass, which libavformat does by reopening it by name: the clip is
# muxed into a file that has one.


def _mux_in_memory(spec: ClipSpec, frames: Iterator[np.ndarray]) -> bytes:
    """Mux into an anonymous memory file (Linux), named for the reopen by /proc/self/fd: nothing is left on
    disk whatever ends the process meanwhile (a kill during an encode left a temporary folder behind)."""
    fd = os.memfd_create("gridrun-sim-clip", getattr(os, "MFD_CLOEXEC", 0))
    try:
        _mux(spec, frames, f"/proc/self/fd/{fd}")
        return os.pread(fd, os.fstat(fd).st_size, 0)
    finally:
        os.close(fd)


def _mux_in_temp_dir(spec: ClipSpec, frames: Iterator[np.ndarray]) -> bytes:
    """Mux into a file in a temporary folder (where there is no memfd_create)."""
    with tempfile.TemporaryDirectory(prefix="gridrun-sim-") as tmp:
        path = os.path.join(tmp, "clip.mp4")
        _mux(spec, frames, path)
        with open(path, "rb") as f:
            return f.read()


def _mux(spec: ClipSpec, frames: Iterator[np.ndarray], path: str) -> None:
    with av.open(path, mode="w", format="mp4", options={"movflags": "+faststart"}) as container:
        stream = container.add_stream("libx264", rate=spec.fps)
        stream.width, stream.height = spec.width, spec.height
        stream.pix_fmt = "yuv420p"
        stream.options = {"preset": "ultrafast", "crf": "30", "threads": "1"}
        for arr in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(arr, format="yuv420p")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


class ClipCache:
    """An LRU cache of encoded clips; concurrent callers for one spec wait for a single encode."""

    def __init__(self, maxsize: int = 256) -> None:
        self.maxsize = maxsize
        self._clips: OrderedDict[ClipSpec, Clip] = OrderedDict()
        self._lock = threading.Lock()
        self._pending: dict[ClipSpec, threading.Lock] = {}
        self._hits = 0
        self._misses = 0
        self._encode_seconds = 0.0

    def peek(self, spec: ClipSpec) -> Clip | None:
        """The cached clip for `spec`, or None; never encodes."""
        with self._lock:
            clip = self._clips.get(spec)
            if clip is not None:
                self._clips.move_to_end(spec)
            return clip

    def get(self, spec: ClipSpec) -> Clip:
        """The clip for `spec`, encoding it on a miss. Blocking: call it from a worker thread."""
        with self._lock:
            clip = self._clips.get(spec)
            if clip is not None:
                self._clips.move_to_end(spec)
                self._hits += 1
                return clip
            gate = self._pending.setdefault(spec, threading.Lock())
        with gate:
            with self._lock:
                clip = self._clips.get(spec)
                if clip is not None:
                    self._hits += 1
                    return clip
            clip = None
            try:
                clip = encode(spec)
            finally:  # an encode that raised leaves no gate behind: the next caller tries again
                with self._lock:
                    if clip is not None:
                        self._misses += 1
                        self._encode_seconds += clip.encode_seconds
                        self._clips[spec] = clip
                        while len(self._clips) > self.maxsize:
                            self._clips.popitem(last=False)
                    self._pending.pop(spec, None)
            return clip

    def statistics(self) -> CacheStatistics:
        with self._lock:
            return CacheStatistics(self._hits, self._misses, len(self._clips), self._encode_seconds)
