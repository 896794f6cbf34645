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
from dataclasses import dataclass

import av
import numpy as np
from PIL import Image, ImageDraw, ImageFont

MAX_SIDE = 320
FPS = 8


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


def _disc(radius: int, colour: tuple[int, int, int]) -> tuple[np.ndarray, np.ndarray]:
    yy, xx = np.mgrid[-radius : radius + 1, -radius : radius + 1]
    mask = (xx * xx + yy * yy) <= radius * radius
    return mask, np.array(colour, dtype=np.uint8)


def _frames(spec: ClipSpec) -> list[np.ndarray]:
    w, h = spec.width, spec.height
    base = _background(spec, w, h)
    d = _digest("motion", spec.seed)
    fx, fy = 1 + d[0] % 3, 1 + d[1] % 4
    phase = d[2] / 255 * 2 * math.pi
    radius = max(3, min(w, h) // (6 + d[3] % 5))
    mask, colour = _disc(radius, _colour(d[4] / 255, 0.9, 1.0))
    n = max(1, int(round(spec.seconds * spec.fps)))
    bar_y = h - 3
    out = []
    for i in range(n):
        t = i / n
        cx = int((w / 2 - radius - 1) * math.sin(2 * math.pi * fx * t + phase) + w / 2)
        cy = int((h / 2 - radius - 1) * math.sin(2 * math.pi * fy * t) + h / 2)
        frame = base.copy()
        region = frame[cy - radius : cy + radius + 1, cx - radius : cx + radius + 1]
        m = mask[: region.shape[0], : region.shape[1]]
        region[m] = colour
        frame[bar_y:, : int(w * (i + 1) / n)] = 255
        out.append(frame)
    return out


def encode(spec: ClipSpec) -> Clip:
    """Encode `spec` as an H.264 (yuv420p, faststart) MP4 and a JPEG poster. Deterministic."""
    started = time.perf_counter()
    frames = _frames(spec)
    # faststart rewrites the file in a second pass, which libavformat does by reopening it by name.
    with tempfile.TemporaryDirectory(prefix="gridrun-sim-") as tmp:
        path = os.path.join(tmp, "clip.mp4")
        _mux(spec, frames, path)
        with open(path, "rb") as f:
            mp4 = f.read()
    poster = io.BytesIO()
    Image.fromarray(frames[len(frames) // 2]).save(poster, format="JPEG", quality=80)
    return Clip(mp4, poster.getvalue(), time.perf_counter() - started)


def _mux(spec: ClipSpec, frames: list[np.ndarray], path: str) -> None:
    with av.open(path, mode="w", format="mp4", options={"movflags": "+faststart"}) as container:
        stream = container.add_stream("libx264", rate=spec.fps)
        stream.width, stream.height = spec.width, spec.height
        stream.pix_fmt = "yuv420p"
        stream.options = {"preset": "ultrafast", "crf": "30", "threads": "1"}
        for arr in frames:
            frame = av.VideoFrame.from_ndarray(arr, format="rgb24")
            for packet in stream.encode(frame):
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
            clip = encode(spec)
            with self._lock:
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
