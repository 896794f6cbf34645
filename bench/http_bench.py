"""CPU per HTTP request of the client stacks gridrun could use, against a loopback server.

    .venv/bin/python bench/http_bench.py [--requests 3000] [--repeats 3]

A minimal ASGI app served by uvicorn in a child process pinned to CPU 0 answers `GET /small` (an 80-byte
JSON video object, like a poll) and `GET /video` (a 50 kB MP4-shaped body, like a download). The client, pinned to
CPU 1, keeps 12 requests in flight over at most 12 connections (gridrun's own bound) and reads every body.
Figures: the client's CPU (user + system, getrusage) per request and requests per second; medians of the
repeats, each after a warm-up of 50 requests.

Stacks:
- httpx: `httpx.AsyncClient` with its own transport (httpcore, h11).
- httpx/aio: `runner.providers.transport.make_client` used as an httpx client (`client.stream`): httpx's
  client over the aiohttp transport (`runner.providers.aio`).
- gridrun: the same client through gridrun's own calls: `transport.send` (straight on aiohttp, past httpx's
  client) and `.json()` for a poll; `download.fetch_to_file` for a download, which also hashes the body,
  writes it to a file (in a temporary folder on /dev/shm when there is one), syncs and renames it.
- aiohttp: `aiohttp.ClientSession` alone, the floor for the wire.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import resource
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from runner.sim.serve import child_server

STACKS = ("httpx", "httpx/aio", "gridrun", "aiohttp")
CONNECTIONS = 12


def _serve() -> None:
    import uvicorn

    ftyp = (24).to_bytes(4, "big") + b"ftypisom" + (512).to_bytes(4, "big") + b"isomiso2"
    video = ftyp + b"\0\0\0\x08moov" + (50_000 - 32).to_bytes(4, "big") + b"mdat" + os.urandom(50_000 - 40)  # boxes that tile it
    small = b'{"id":"video_1","object":"video","status":"in_progress","progress":50,"created_at":1}'

    async def app(scope, receive, send):  # type: ignore[no-untyped-def]
        if scope["type"] != "http":
            return
        body = video if scope["path"] == "/video" else small
        kind = b"video/mp4" if scope["path"] == "/video" else b"application/json"
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", kind), (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)  # asyncio sets TCP_NODELAY only then
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(1024)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off"))
    print(f"listening on http://127.0.0.1:{sock.getsockname()[1]}", flush=True)
    server.run(sockets=[sock])


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


async def _client(stack: str, base: str, n: int) -> dict[str, tuple[float, float]]:
    """{route: (ms CPU per request, requests per second)} for one stack."""
    sem = asyncio.Semaphore(CONNECTIONS)
    if stack == "aiohttp":
        import aiohttp

        session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=CONNECTIONS))

        async def get(url: str) -> None:
            async with sem, session.get(url) as r:
                async for _ in r.content.iter_chunked(1 << 16):
                    pass

        close = session.close
    elif stack == "gridrun":
        import tempfile

        from runner.providers.download import fetch_to_file
        from runner.providers.transport import make_client, send

        client = make_client(base, max_connections=CONNECTIONS)
        folder = tempfile.TemporaryDirectory(dir="/dev/shm" if os.path.isdir("/dev/shm") else None)
        count = iter(range(10**9))

        async def get(url: str) -> None:
            async with sem:
                if url.endswith("/small"):
                    (await send(client, "GET", url, op="poll", create=False)).json()
                else:
                    path = Path(folder.name) / f"{next(count)}.mp4"
                    await fetch_to_file(client, url, path)
                    path.unlink()

        async def close() -> None:
            await client.aclose()
            folder.cleanup()
    else:
        import httpx

        if stack == "httpx":
            client = httpx.AsyncClient(base_url=base, limits=httpx.Limits(max_connections=CONNECTIONS, max_keepalive_connections=CONNECTIONS))
        else:
            from runner.providers.transport import make_client

            client = make_client(base, max_connections=CONNECTIONS)

        async def get(url: str) -> None:
            async with sem, client.stream("GET", url) as r:
                async for _ in r.aiter_bytes():
                    pass

        close = client.aclose
    out = {}
    try:
        for route in ("small", "video"):
            url = f"{base}/{route}"
            await asyncio.gather(*(get(url) for _ in range(50)))
            c0, t0 = _cpu(), time.perf_counter()
            await asyncio.gather(*(get(url) for _ in range(n)))
            out[route] = (1e3 * (_cpu() - c0) / n, n / (time.perf_counter() - t0))
    finally:
        await close()
    return out


def main() -> int:
    if sys.argv[1:2] == ["serve"]:
        _serve()
        return 0
    if sys.argv[1:2] == ["client"]:
        stack, base, n = sys.argv[2], sys.argv[3], int(sys.argv[4])
        for route, (ms, rate) in asyncio.run(_client(stack, base, n)).items():
            print(f"{route} {ms} {rate}")
        return 0
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--requests", type=int, default=3000)
    ap.add_argument("--repeats", type=int, default=3)
    a = ap.parse_args()
    pin = (os.cpu_count() or 1) >= 2 and hasattr(os, "sched_setaffinity")
    results: dict[str, dict[str, list[tuple[float, float]]]] = {s: {"small": [], "video": []} for s in STACKS}
    with child_server([sys.executable, __file__, "serve"]) as (base, pid):
        if pin:
            with contextlib.suppress(OSError):
                os.sched_setaffinity(pid, {0})
        for _ in range(a.repeats):
            for stack in STACKS:
                cmd = [sys.executable, __file__, "client", stack, base, str(a.requests)]
                if pin:
                    cmd = ["taskset", "-c", "1", *cmd]
                out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
                for line in out.splitlines():
                    route, ms, rate = line.split()
                    results[stack][route].append((float(ms), float(rate)))
    print(f"CPU per request, {a.requests:,} requests, {CONNECTIONS} in flight; median of {a.repeats}")
    print(f"{'stack':<10} {'poll ms':>8} {'poll req/s':>11} {'download ms':>12} {'download req/s':>15}")
    for stack in STACKS:
        row = [statistics.median(x[i] for x in results[stack][route]) for route in ("small", "video") for i in (0, 1)]
        print(f"{stack:<10} {row[0]:8.3f} {row[1]:11.0f} {row[2]:12.3f} {row[3]:15.0f}")
    base_poll = statistics.median(x[0] for x in results["httpx"]["small"])
    ours = statistics.median(x[0] for x in results["gridrun"]["small"])
    print(f"a gridrun poll uses {ours / base_poll:.2f}× the CPU of one through httpx's own transport")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
