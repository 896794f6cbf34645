"""The simplest alternative to gridrun a user might write: httpx + asyncio, a semaphore of C, submit, poll
every second, download. No state, no retries, no rate control. `bench/run_bench.py` measures it beside gridrun.

    .venv/bin/python bench/naive_loop.py BASE_URL BODIES.json OUT_DIR --concurrency 20

BODIES.json is a JSON list of create bodies; clip i is saved as OUT_DIR/i.mp4. Prints one JSON line:
how many videos were saved and how many jobs failed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
from pathlib import Path

import httpx


async def one(client: httpx.AsyncClient, sem: asyncio.Semaphore, i: int, body: dict, out: Path) -> bool:
    async with sem:
        r = await client.post("videos", json=body)
        r.raise_for_status()
        video = r.json()
        while video["status"] not in ("completed", "failed", "cancelled"):
            await asyncio.sleep(1.0)
            r = await client.get(f"videos/{video['id']}")
            r.raise_for_status()
            video = r.json()
        if video["status"] != "completed":
            return False
        r = await client.get(video["output"]["url"])
        r.raise_for_status()
        (out / f"{i}.mp4").write_bytes(r.content)
        return True


async def main(base_url: str, bodies: list[dict], out: Path, concurrency: int) -> dict[str, int]:
    out.mkdir(parents=True, exist_ok=True)
    sem = asyncio.Semaphore(concurrency)
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=base_url.rstrip("/") + "/", limits=limits, timeout=60.0) as client:
        results = await asyncio.gather(*(one(client, sem, i, b, out) for i, b in enumerate(bodies)), return_exceptions=True)
    saved = sum(1 for r in results if r is True)
    return {"saved": saved, "failed": len(results) - saved, "errors": sum(1 for r in results if isinstance(r, BaseException))}


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("base_url")
    ap.add_argument("bodies", type=Path)
    ap.add_argument("out", type=Path)
    ap.add_argument("--concurrency", type=int, default=20)
    a = ap.parse_args()
    print(json.dumps(asyncio.run(main(a.base_url, json.loads(a.bodies.read_text()), a.out, a.concurrency))))
