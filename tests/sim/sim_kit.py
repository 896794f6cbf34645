"""Helpers for the simulator tests: a fake clock and an in-process API client."""

from __future__ import annotations

import base64
import struct
import zlib
from dataclasses import dataclass
from typing import Any

import httpx

from runner.sim.engine import Sim

BASE = "http://sim.test/v1"
MODEL = "pixverse-v5.6"


def png_bytes(width: int = 1, height: int = 1) -> bytes:
    """A valid PNG of `width` x `height` black pixels."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress((b"\x00" + b"\x00\x00\x00" * width) * height)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def data_uri(data: bytes, mime: str = "image/png") -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


class FakeClock:
    """A clock that moves only when told to."""

    def __init__(self, start: float = 1_800_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class Api:
    """An in-process simulator, its HTTP client and its clock."""

    client: httpx.AsyncClient
    sim: Sim
    clock: FakeClock

    async def create(self, path: str = "/videos", **body: Any) -> httpx.Response:
        return await self.client.post(path, json={"model": MODEL, "prompt": "a red fox", **body})

    async def video(self, video_id: str) -> dict[str, Any]:
        r = await self.client.get(f"/videos/{video_id}")
        assert r.status_code == 200, r.text
        return dict(r.json())

    def configure(self, **knobs: Any) -> None:
        self.sim.configure(knobs)

    def stats(self) -> dict[str, Any]:
        return self.sim.stats()
