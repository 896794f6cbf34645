"""How fast is the simulator? Creates + polls per second on one core, and clip encode time.

    .venv/bin/python bench/sim_bench.py [--seconds 5] [--connections 32]

The simulator runs in a child process pinned to CPU 0 (the `gridrun sim serve` code path); the load comes
from this process over loopback, pinned to the other CPUs. Capacity is driven by a lean keep-alive HTTP/1.1
client on raw asyncio streams, because httpx itself tops out first (its figure is printed beside it).
Each load prints the rate achieved and the rate the simulator's own CPU time allows (requests per CPU
second of the child process).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from runner.sim import SimConfig, running_server  # noqa: E402
from runner.sim.video import ClipCache, ClipSpec, encode, frame_size  # noqa: E402

MODEL = "pixverse-v5.6"


def _child_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _pin_self() -> None:
    if hasattr(os, "sched_setaffinity") and (os.cpu_count() or 1) > 1:
        os.sched_setaffinity(0, set(range(1, os.cpu_count() or 2)))


class _Conn:
    """One keep-alive HTTP/1.1 connection, for load generation only."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, host: str) -> None:
        self.reader, self.writer, self.host = reader, writer, host

    @classmethod
    async def open(cls, base: str) -> _Conn:
        url = httpx.URL(base)
        reader, writer = await asyncio.open_connection(url.host, url.port)
        return cls(reader, writer, f"{url.host}:{url.port}")

    async def request(self, method: str, path: str, body: bytes = b"") -> tuple[int, bytes]:
        head = f"{method} {path} HTTP/1.1\r\nHost: {self.host}\r\nContent-Length: {len(body)}\r\n"
        if body:
            head += "Content-Type: application/json\r\n"
        self.writer.write(head.encode() + b"\r\n" + body)
        raw = await self.reader.readuntil(b"\r\n\r\n")
        lines = raw.split(b"\r\n")
        status = int(lines[0].split()[1])
        length = next(int(line.split(b":")[1]) for line in lines if line.lower().startswith(b"content-length:"))
        return status, await self.reader.readexactly(length)

    def close(self) -> None:
        self.writer.close()


async def _raw_create_and_poll(base: str, seconds: float, connections: int) -> tuple[int, int]:
    """Each connection: POST a create, GET the video once, repeat. Returns (creates, polls)."""
    counts = [0, 0]
    deadline = time.perf_counter() + seconds
    prefix = httpx.URL(base).path.rstrip("/")

    async def worker(w: int) -> None:
        conn = await _Conn.open(base)
        i = 0
        while time.perf_counter() < deadline:
            body = json.dumps({"model": MODEL, "prompt": f"bench {w}-{i}", "idempotency_key": f"raw-{w}-{i}"}).encode()
            status, data = await conn.request("POST", f"{prefix}/videos", body)
            assert status == 202, data
            counts[0] += 1
            status, data = await conn.request("GET", f"{prefix}/videos/{json.loads(data)['id']}")
            assert status == 200, data
            counts[1] += 1
            i += 1
        conn.close()

    await asyncio.gather(*(worker(w) for w in range(connections)))
    return counts[0], counts[1]


async def _raw_list_polls(base: str, seconds: float, connections: int, videos: int) -> int:
    """Create `videos` jobs, then GET /videos?limit=100 as fast as possible. Returns the number of list calls."""
    prefix = httpx.URL(base).path.rstrip("/")
    conn = await _Conn.open(base)
    for i in range(videos):
        await conn.request("POST", f"{prefix}/videos", json.dumps({"model": MODEL, "prompt": f"list {i}"}).encode())
    conn.close()
    calls = 0
    deadline = time.perf_counter() + seconds

    async def worker() -> None:
        nonlocal calls
        c = await _Conn.open(base)
        while time.perf_counter() < deadline:
            status, _ = await c.request("GET", f"{prefix}/videos?limit=100")
            assert status == 200
            calls += 1
        c.close()

    await asyncio.gather(*(worker() for _ in range(connections)))
    return calls


async def _create_and_poll(base: str, seconds: float, workers: int) -> tuple[int, int]:
    """The same load through one httpx.AsyncClient. Returns (creates, polls)."""
    counts = [0, 0]
    deadline = time.perf_counter() + seconds
    limits = httpx.Limits(max_connections=workers, max_keepalive_connections=workers)
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=30) as client:

        async def worker(w: int) -> None:
            i = 0
            while time.perf_counter() < deadline:
                r = await client.post("/videos", json={"model": MODEL, "prompt": f"bench {w}-{i}", "idempotency_key": f"b-{w}-{i}"})
                r.raise_for_status()
                counts[0] += 1
                (await client.get(f"/videos/{r.json()['id']}")).raise_for_status()
                counts[1] += 1
                i += 1

        await asyncio.gather(*(worker(w) for w in range(workers)))
    return counts[0], counts[1]


async def _end_to_end(base: str, jobs: int, workers: int) -> float:
    """Create `jobs` distinct videos, poll each to completion, download it; returns wall seconds."""
    started = time.perf_counter()
    sem = asyncio.Semaphore(workers)
    async with httpx.AsyncClient(base_url=base, timeout=30, limits=httpx.Limits(max_connections=workers)) as client:

        async def job(i: int) -> None:
            async with sem:
                video = (await client.post("/videos", json={"model": MODEL, "prompt": f"end to end {i}", "seed": i})).json()
                while video["status"] != "completed":
                    await asyncio.sleep(0.05)
                    video = (await client.get(f"/videos/{video['id']}")).json()
                data = (await client.get(video["output"]["url"])).content
                assert len(data) == video["output"]["size_bytes"]

        await asyncio.gather(*(job(i) for i in range(jobs)))
    return time.perf_counter() - started


def _served(config: SimConfig, load: Any) -> tuple[Any, float]:
    """Run `load(base_url)` against a pinned child server; returns its result and the child's CPU seconds."""
    before = _child_cpu()
    with running_server(config, process=True, cpus={0}) as base:
        result = asyncio.run(load(base))
    return result, _child_cpu() - before


def _encode_times(n: int) -> dict[str, float]:
    specs = [ClipSpec(f"a red fox, take {i}", i, "anime", 5, *frame_size((1365, 768))) for i in range(n)]
    times = [encode(s).encode_seconds for s in specs]
    eight = [encode(ClipSpec(f"eight {i}", i, None, 8, *frame_size((768, 1365)))).encode_seconds for i in range(3)]
    full = encode(ClipSpec("full size", 1, None, 5, *frame_size((1365, 768), full_size=True))).encode_seconds
    cache = ClipCache()
    cache.get(specs[0])
    started = time.perf_counter()
    hits = 1000
    for _ in range(hits):
        cache.get(specs[0])
    cached = (time.perf_counter() - started) / hits
    return {
        "5s_320x180_ms": statistics.median(times) * 1000,
        "8s_180x320_ms": statistics.median(eight) * 1000,
        "5s_full_1364x768_ms": full * 1000,
        "cached_us": cached * 1e6,
    }


async def _download_latency(base: str) -> tuple[float, float]:
    async with httpx.AsyncClient(base_url=base, timeout=30) as client:
        video = (await client.post("/videos", json={"model": MODEL, "prompt": "latency"})).json()
        await asyncio.sleep(0.05)
        started = time.perf_counter()
        video = (await client.get(f"/videos/{video['id']}")).json()
        first = time.perf_counter() - started
        await client.get(video["output"]["url"])
        started = time.perf_counter()
        await client.get(video["output"]["url"])
        return first, time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="duration of each load phase")
    parser.add_argument("--connections", type=int, default=32, help="concurrent keep-alive connections")
    args = parser.parse_args()
    _pin_self()
    print(f"cpus: {os.cpu_count()}, python {sys.version.split()[0]}; sim pinned to cpu 0, client to the rest")

    _, idle_cpu = _served(SimConfig(), lambda base: asyncio.sleep(0))
    print(f"server start + stop: {idle_cpu:.2f} CPU s (subtracted below)")

    slow = SimConfig(render_time=3600)
    for name, load in (
        ("raw HTTP/1.1", lambda base: _raw_create_and_poll(base, args.seconds, args.connections)),
        ("httpx", lambda base: _create_and_poll(base, args.seconds, 8)),
    ):
        (creates, polls), cpu = _served(slow, load)
        work_cpu = max(1e-9, cpu - idle_cpu)
        total = creates + polls
        print(
            f"create+poll via {name}: {total / args.seconds:,.0f} req/s achieved "
            f"({creates / args.seconds:,.0f} creates/s + {polls / args.seconds:,.0f} polls/s); sim CPU {work_cpu:.2f} s "
            f"= {1000 * work_cpu / total:.2f} ms per request -> {total / work_cpu:,.0f} req/s per core"
        )

    calls, cpu = _served(slow, lambda base: _raw_list_polls(base, args.seconds, 8, 1000))
    work_cpu = max(1e-9, cpu - idle_cpu)
    print(
        f"list poll (GET /videos?limit=100, 1000 videos): {calls / args.seconds:,.0f} calls/s achieved, "
        f"{calls / work_cpu:,.0f} per core ({100 * calls / work_cpu:,.0f} job statuses/s)"
    )

    jobs = 200
    fast = SimConfig(render_time=0.2, jitter=0.2, concurrency=50)
    wall, cpu = _served(fast, lambda base: _end_to_end(base, jobs, 50))
    print(
        f"end to end via httpx ({jobs} distinct jobs, 0.2 s renders, concurrency 50, each encoded and downloaded): "
        f"{wall:.2f} s wall, {jobs / wall:.0f} jobs/s; sim CPU {cpu - idle_cpu:.2f} s"
    )

    first, cached = _served(SimConfig(render_time=0), _download_latency)[0]
    enc = _encode_times(10)
    print(
        f"encode per clip (uncached, median): 5 s 320x180 {enc['5s_320x180_ms']:.0f} ms, "
        f"8 s 180x320 {enc['8s_180x320_ms']:.0f} ms, 5 s full size 1364x768 {enc['5s_full_1364x768_ms']:.0f} ms; "
        f"cached lookup {enc['cached_us']:.1f} us"
    )
    print(f"over HTTP: first GET of a completed video (encodes) {first * 1000:.0f} ms, cached download {cached * 1000:.1f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
