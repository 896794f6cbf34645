"""CPU per trip to a worker thread from the event loop: how a download hands its disk work over.

    .venv/bin/python bench/thread_trip_bench.py [--trips 20000] [--repeats 5]

Each trip runs a function that returns at once, so the figure is the hand-over alone: queueing, waking a
thread, and getting the result back to the waiting task. Tasks are started 50 at a time, as downloads
finish in bursts (starting a task is in both figures alike). Figures: the process's CPU (user + system) per trip, median of the repeats, pinned to
one CPU when the machine allows it.

Ways:
- anyio: `anyio.to_thread.run_sync` with a `CapacityLimiter` of DISK_THREADS (the path under trio).
- gridrun: `runner.providers.download._in_disk_thread` (a process-wide pool under asyncio).
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Awaitable, Callable

import anyio
import anyio.lowlevel

from runner.providers.download import DISK_THREADS, _in_disk_thread


def _noop(x: int) -> int:
    return x


async def _measure(trip: Callable[[], Awaitable[object]], trips: int) -> float:
    """CPU seconds per trip, tasks started 50 at a time."""
    start = time.process_time()
    async with anyio.create_task_group() as tg:
        for i in range(trips):
            tg.start_soon(trip)
            if i % 50 == 49:
                await anyio.lowlevel.checkpoint()
    return (time.process_time() - start) / trips


async def _main(trips: int, repeats: int) -> None:
    limiter = anyio.CapacityLimiter(DISK_THREADS)
    ways: dict[str, Callable[[], Awaitable[object]]] = {
        "anyio": lambda: anyio.to_thread.run_sync(_noop, 1, limiter=limiter),
        "gridrun": lambda: _in_disk_thread(_noop, 1),
    }
    figures: dict[str, list[float]] = {name: [] for name in ways}
    for name, trip in ways.items():  # warm-up: threads started
        await _measure(trip, 200)
    for _ in range(repeats):
        for name, trip in ways.items():
            figures[name].append(await _measure(trip, trips))
    print(f"CPU per worker-thread trip, median of {repeats} x {trips:,} trips ({DISK_THREADS} threads)")
    for name, values in figures.items():
        print(f"  {name:8s} {statistics.median(values) * 1e6:6.1f} us  (range {min(values) * 1e6:.1f}-{max(values) * 1e6:.1f})")
    a, g = (statistics.median(figures[k]) for k in ("anyio", "gridrun"))
    print(f"  gridrun / anyio: {g / a:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trips", type=int, default=20_000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity") and len(os.sched_getaffinity(0)) > 1:
        os.sched_setaffinity(0, {max(os.sched_getaffinity(0))})
    anyio.run(_main, args.trips, args.repeats)


if __name__ == "__main__":
    main()
