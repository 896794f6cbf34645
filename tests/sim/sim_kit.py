"""Helpers for the simulator tests: a fake clock and an in-process API client."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx

from runner.sim.engine import Sim

BASE = "http://sim.test/v1"
MODEL = "pixverse-v5.6"


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
