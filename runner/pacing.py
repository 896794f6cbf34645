"""Request pacing and batching for the executor: the 429 pacer (AIMD), the write-ahead intent batcher,
and the list poller that watches many provider jobs with one request."""

from __future__ import annotations

from collections import deque
from typing import Any, Awaitable, Callable

import anyio
import httpx

from .errors import ProviderError, RateLimitedError, RetryableError
from .providers.base import Provider, VideoStatus
from .state import Store


class Pacer:
    """Holds every request back while the provider asked us to wait (Retry-After), and learns a request
    rate when 429s repeat: halve the rate seen on each repeated 429, raise it 10% per 20 successes,
    drop the limit once it is far above what is being sent (AIMD)."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self.clock = clock
        self.not_before = 0.0
        self.rate: float | None = None      # requests per second; None = unlimited
        self._next_slot = 0.0
        self.requests = 0
        self.rate_limited = 0
        self._recent: deque[float] = deque(maxlen=512)
        self._limits: deque[float] = deque(maxlen=8)
        self._ok: deque[float] = deque(maxlen=4096)
        self._ok_streak = 0

    async def wait(self) -> None:
        while True:
            now = self.clock()
            start = max(self.not_before, now)
            if self.rate:
                start = max(start, self._next_slot)
            if start <= now:
                if self.rate:
                    self._next_slot = now + 1.0 / self.rate
                self.requests += 1
                self._recent.append(now)
                return
            await anyio.sleep(start - now)

    def _observed_rate(self, now: float) -> float:
        return sum(1 for t in self._ok if t > now - 2.0) / 2.0

    def limited(self, retry_after: float | None) -> None:
        now = self.clock()
        self.rate_limited += 1
        self._ok_streak = 0
        self.not_before = max(self.not_before, now + (retry_after if retry_after is not None else 1.0))
        self._limits.append(now)
        if sum(1 for t in self._limits if t > now - 5.0) >= 3:
            # 429s repeat: send at most what got through lately, less each time they go on.
            cap = self._observed_rate(now) * 0.9
            self.rate = max(1.0, min(self.rate * 0.7, cap) if self.rate else cap)
            self._limits.clear()

    def ok(self) -> None:
        now = self.clock()
        self._ok.append(now)
        if self.rate is None:
            return
        self._ok_streak += 1
        if self._ok_streak >= 20:
            self._ok_streak = 0
            self.rate *= 1.05
            if self.rate > 4 * max(1.0, self._observed_rate(now)) and not any(t > now - 30.0 for t in self._limits):
                self.rate = None


class _Waiter:
    __slots__ = ("event", "value", "error")

    def __init__(self) -> None:
        self.event = anyio.Event()
        self.value: Any = None
        self.error: BaseException | None = None


class IntentBatcher:
    """Commits the write-ahead intents of every job that wants to submit in the same moment in one
    transaction (one fsync), then lets each send its create request. The pay-once rule is unchanged:
    no request is sent before its intent is committed."""

    def __init__(self, store: Store, run_id: int) -> None:
        self.store = store
        self.run_id = run_id
        self._pending: list[tuple[int, _Waiter]] = []
        self._wake = anyio.Event()

    async def reserve(self, job_id: int) -> str:
        """Commit a new attempt for `job_id`; returns its idempotency key."""
        w = _Waiter()
        self._pending.append((job_id, w))
        self._wake.set()
        await w.event.wait()
        if w.error is not None:
            raise w.error
        return str(w.value)

    async def loop(self) -> None:
        while True:
            await self._wake.wait()
            self._wake = anyio.Event()
            await anyio.sleep(0)  # let every task that is ready in this moment join the batch
            batch, self._pending = self._pending, []
            if not batch:
                continue
            try:
                keys = self.store.begin_submit(self.run_id, [jid for jid, _ in batch])
            except BaseException as exc:  # handed to each waiter, which re-raises it in its own task
                for _, w in batch:
                    w.error = exc
                    w.event.set()
                if not isinstance(exc, Exception):
                    raise
                continue
            for jid, w in batch:
                w.value = keys[jid]
                w.event.set()


class ListPoller:
    """Watches many provider jobs through the provider's list endpoint: one request reports up to 100.

    A job task calls `next(video_id, last, due=...)` and gets the job's status once it differs from
    `last`. No request is sent before the earliest `due` (when a watched job can first be done); from
    then on the loop lists newest first until it has seen every watched job, every `interval()`
    seconds. A job the list no longer reaches is fetched on its own.
    """

    def __init__(
        self,
        provider: Provider,
        client: httpx.AsyncClient,
        pacer: Pacer,
        *,
        interval: Callable[[], float],
        before_poll: Callable[[], None],
        on_error: Callable[[str], None],
        clock: Callable[[], float],
    ) -> None:
        self.provider = provider
        self.client = client
        self.pacer = pacer
        self.interval = interval
        self.before_poll = before_poll
        self.on_error = on_error
        self.clock = clock
        self._watch: dict[str, tuple[str | None, _Waiter]] = {}
        self._due: dict[str, float] = {}
        self._wake = anyio.Event()
        self.rounds = 0
        self.requests = 0

    async def next(self, video_id: str, last: VideoStatus | None, *, due: float | None = None) -> VideoStatus:
        """The job's status, once it is not `last`'s status (or `last` is None); `due` is the clock time
        before which it cannot be done (default: now)."""
        w = _Waiter()
        self._watch[video_id] = (last.status if last is not None else None, w)
        self._due[video_id] = due if due is not None else self.clock()
        self._wake.set()
        try:
            await w.event.wait()
        finally:
            if self._watch.get(video_id, (None, None))[1] is w:
                del self._watch[video_id]
                self._due.pop(video_id, None)
        return w.value  # type: ignore[no-any-return]

    def _deliver(self, status: VideoStatus) -> None:
        entry = self._watch.get(status.id)
        if entry is None:
            return
        last, w = entry
        if status.status != last or status.terminal:
            del self._watch[status.id]
            self._due.pop(status.id, None)
            w.value = status
            w.event.set()

    async def loop(self) -> None:
        while True:
            if not self._watch:
                await self._wake.wait()
                self._wake = anyio.Event()
                continue
            wait = min(self._due.values()) - self.clock()
            if wait > 0:
                # Nothing can be done yet: sleep until the first job may be, or until a new one is watched.
                with anyio.move_on_after(min(wait, 5.0)):
                    await self._wake.wait()
                self._wake = anyio.Event()
                continue
            self.before_poll()
            await self._round()
            await anyio.sleep(self.interval())

    async def _round(self) -> None:
        self.rounds += 1
        unseen = set(self._watch)
        cursor: str | None = None
        while unseen:
            limit = min(100, max(10, 2 * len(unseen)))
            page = await self._call(lambda: self.provider.list(self.client, limit=limit, after=cursor))
            if page is None:
                return
            items, cursor = page
            for st in items:
                unseen.discard(st.id)
                self._deliver(st)
            if cursor is None or not items:
                break
        for vid in list(unseen):
            if vid in self._watch:
                st = await self._call(lambda vid=vid: self.provider.get(self.client, vid))
                if st is not None:
                    self._deliver(st)

    async def _call(self, fn: Callable[[], Awaitable[Any]]) -> Any:
        for attempt in range(1, 6):
            await self.pacer.wait()
            self.requests += 1
            try:
                result = await fn()
                self.pacer.ok()
                return result
            except RateLimitedError as exc:
                self.pacer.limited(exc.retry_after)
            except RetryableError as exc:
                await anyio.sleep(exc.retry_after if exc.retry_after is not None else min(5.0, 0.2 * 2 ** attempt))
            except ProviderError as exc:
                self.on_error(f"polling: {exc}")
                return None
        return None
