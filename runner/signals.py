"""Signals taken by a task's event loop for a while, and given back without a moment at their default.

anyio's signal receiver (asyncio's `add_signal_handler`) is opened in the task that runs the rest: until it is
open, the command's handler (`entry.interrupt`) raises KeyboardInterrupt where the signal lands, and asyncio lets
that out of the event loop from any task but the one it would end cleanly. Leaving the receiver, asyncio sets
each signal to its default (SIGTERM and SIGHUP then kill the process) before the handler found is put back: here
the handler found is put back first, and asyncio's removal, which would pass through the default, is skipped.
On uvloop, whose table is out of reach, the run reads the signals from a wakeup fd of its own
(`_handed_to_the_loop`).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import Iterator, Sequence
from typing import Any

from .entry import unheeded


@contextlib.contextmanager
def taken(wanted: Sequence[int]) -> Iterator[Any]:
    """A receiver of `wanted` (an async iterable of the signals as they come), opened here, in the calling task; on
    leaving, each signal's handler and the signal wakeup fd as they were before (a host's own loop's wakeup fd too:
    asyncio's loop takes it)."""
    before = {s: h for s in wanted if (h := signal.getsignal(s)) is not None}
    if _on_uvloop():
        with _handed_to_the_loop(wanted, before) as receiver:
            yield receiver
        return
    woken = -1
    try:
        with contextlib.suppress(ValueError):
            woken = signal.set_wakeup_fd(-1)
        import anyio

        with anyio.open_signal_receiver(*wanted) as receiver:
            try:
                _again(wanted)
                yield receiver
            finally:
                _given_back(before)
    finally:
        for signum, handler in before.items():
            with contextlib.suppress(ValueError, OSError):
                signal.signal(signum, handler)
        with contextlib.suppress(ValueError, OSError):
            signal.set_wakeup_fd(woken)


def _on_uvloop() -> bool:
    """Whether the running loop is uvloop's (`api.loop_options`)."""
    try:
        return type(asyncio.get_running_loop()).__module__.startswith("uvloop")
    except RuntimeError:
        return False


@contextlib.contextmanager
def _handed_to_the_loop(wanted: Sequence[int], before: dict[int, Any]) -> Iterator[Any]:
    """`taken` on uvloop, whose table of signals is out of reach (removing one from it sets the signal to its
    default). Each signal gets a handler of the interpreter's own that does nothing, so that the interpreter writes
    its number to the signal wakeup fd at each delivery: that fd, gridrun's own while the run lasts, is read by the
    loop, which passes each wanted signal to the receiver and every byte on to the fd it found (uvloop's, which it
    reads to run the interpreter's handlers). Counted there, two signals delivered while the loop's thread is held in
    one call are two (the interpreter runs a handler once for both). Leaving, each handler found is put back in place
    of this one, with no moment between, then the wakeup fd found."""
    import math
    import socket

    import anyio

    loop = asyncio.get_running_loop()
    send, receive = anyio.create_memory_object_stream[signal.Signals](math.inf)
    numbers = {int(s) for s in wanted}
    reader, writer = socket.socketpair()
    reader.setblocking(False)
    writer.setblocking(False)
    found = -1

    def passed(data: bytes) -> None:
        if found != -1 and data:
            with contextlib.suppress(OSError):  # full: it has a byte to wake for already
                os.write(found, data)

    def drain() -> None:
        while True:
            try:
                data = reader.recv(4096)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                return
            if not data:
                return
            passed(data)
            for number in data:
                if number in numbers:
                    with contextlib.suppress(anyio.ClosedResourceError, anyio.BrokenResourceError):
                        send.send_nowait(signal.Signals(number))

    try:
        found = signal.set_wakeup_fd(writer.fileno(), warn_on_full_buffer=False)
        loop.add_reader(reader.fileno(), drain)
        for signum in wanted:
            signal.signal(signum, _noted)
        _again(wanted)
        yield receive
    finally:
        for signum, handler in before.items():
            with contextlib.suppress(ValueError, OSError):
                signal.signal(signum, handler)
        with contextlib.suppress(ValueError, OSError):
            loop.remove_reader(reader.fileno())
        with contextlib.suppress(ValueError, OSError):
            signal.set_wakeup_fd(found)
        # what came since the loop last read: passed on (the handlers found take such signals from here on)
        with contextlib.suppress(OSError):
            while data := reader.recv(4096):
                passed(data)
        reader.close()
        writer.close()
        send.close()
        receive.close()


def _again(wanted: Sequence[int]) -> None:
    """A signal the `gridrun` command's handler raised as KeyboardInterrupt that did not end it, since code that ran
    let it go (`entry.unheeded`), sent again now that the receiver takes it: the run stops as for a signal sent at
    this moment. One the receiver does not take ends it here, as it would have where it landed."""
    signum = unheeded()
    if signum is None:
        return
    if signum not in wanted:
        raise KeyboardInterrupt
    signal.raise_signal(signum)


def _noted(signum: int, frame: Any) -> None:
    """The handler `_handed_to_the_loop` gives a signal: nothing to do; the interpreter's write of its number to the
    wakeup fd is what counts."""


def _given_back(before: dict[int, Any]) -> None:
    """Each signal of `before` to its handler at once, and out of the running asyncio loop's table, so that the
    receiver's exit (asyncio's `remove_signal_handler`, which sets the default first) leaves it as it is. Where
    the loop keeps no such table, the receiver's exit does as it does, and the handlers are put back after it."""
    try:
        table = getattr(asyncio.get_running_loop(), "_signal_handlers", None)
    except RuntimeError:
        return
    if not isinstance(table, dict):
        return
    for signum, handler in before.items():
        with contextlib.suppress(ValueError, OSError):
            signal.signal(signum, handler)
            table.pop(signum, None)
