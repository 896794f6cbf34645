"""Request pacing and batching for the executor: the 429 pacer (AIMD), the write-ahead intent batcher,
the list poller that watches many provider jobs with one request, and when a job is worth polling."""

from __future__ import annotations

import random
import statistics
from collections import deque
from typing import TYPE_CHECKING, Any, Awaitable, Callable, Iterable, TypeVar

import anyio
import httpx

from .errors import (
    OutcomeUnknownError,
    ProviderError,
    RateLimitedError,
    RetryableError,
    TransportError,
)
from .providers.base import Provider, VideoStatus
from .providers.capabilities import ProviderCaps
from .state import Store

if TYPE_CHECKING:
    from .plan import Job, Plan

T = TypeVar("T")

# The render time expected of a model whose capability data gives none.
DEFAULT_RENDER_SECONDS = 60.0


async def sleep_out(steady: Callable[[], float], seconds: float, wake: anyio.Event | None = None) -> None:
    """Sleeps until the `steady` clock has moved on by `seconds`, or `wake` is set. An event loop's timer may end a
    little before that clock says it should (uvloop's count in whole milliseconds): a deadline checked on `steady`
    right after such a sleep would read as not passed yet, and a create meant to be left at its timeout be sent
    again. The rest is slept out; a clock that does not move during a sleep (a test's) ends it."""
    end = steady() + seconds
    while (now := steady()) < end:
        with anyio.move_on_after(end - now):
            if wake is None:
                await anyio.sleep(end - now)
            else:
                await wake.wait()
                return
        if steady() == now:
            return


class Gate:
    """At most `tokens` holders at once, taken with `async with`, first come first served: an
    `anyio.CapacityLimiter` (borrowed by the task) that is not a checkpoint when a token is free. A run takes it
    for every request it sends, and a checkpoint there is a turn of the event loop each time, through every
    frame of the task's await chain, before the request (which has checkpoints of its own) even starts."""

    __slots__ = ("limiter",)

    def __init__(self, tokens: int) -> None:
        self.limiter = anyio.CapacityLimiter(tokens)

    async def __aenter__(self) -> None:
        try:
            self.limiter.acquire_nowait()  # none waiting and one free: taken at once
        except anyio.WouldBlock:
            await self.limiter.acquire()

    async def __aexit__(self, *exc: object) -> None:
        self.limiter.release()


class Gates:
    """Gates taken one after the other with `async with`, given back in the reverse order: a download at the API's
    own host takes a download slot first, then one of the API's request slots, so that one waiting for the API's
    slot holds none of them."""

    __slots__ = ("gates",)

    def __init__(self, *gates: Gate) -> None:
        self.gates = gates

    async def __aenter__(self) -> None:
        taken: list[Gate] = []
        try:
            for gate in self.gates:
                await gate.__aenter__()
                taken.append(gate)
        except BaseException:
            for gate in reversed(taken):
                await gate.__aexit__()
            raise

    async def __aexit__(self, *exc: object) -> None:
        for gate in reversed(self.gates):
            await gate.__aexit__()


class Pacer:
    """Paces every request of a run.

    A 429 holds all requests back for its Retry-After, and sets a request rate (AIMD) below the rate that
    drew it (the ceiling): 70 % of what was sent in the last second, at most one cut per second. Each second
    without a 429 adds a tenth of the ceiling up to 90 % of it, then only 2 % (a probe: the limit may have
    risen); a rate held above the ceiling for long enough becomes the new ceiling. So a run settles just
    under the provider's limit instead of climbing past it again and again. After the pause, requests leave
    one by one at that rate instead of all at once. The limit is dropped again once it is far above what the
    run sends.
    """

    def __init__(self, clock: Callable[[], float], *, gate: int = 12) -> None:
        self.clock = clock
        self.gate = Gate(gate)   # requests in flight at once: no queue inside the HTTP pool
        self.not_before = 0.0
        self.asked = 0.0   # seconds the 429 that set `not_before` asked to wait (as honoured: at most MAX_PAUSE)
        self.asked_by = 429  # the HTTP status of the answer that asked for that pause (a 5xx: the service unavailable)
        self.rate: float | None = None      # requests per second; None = unlimited
        self._next_slot = 0.0
        self.requests = 0
        self._sent: deque[float] = deque(maxlen=4096)
        self._last_cut = float("-inf")
        self._last_raise = 0.0
        self.ceiling: float | None = None   # the rate that drew the last 429
        self.answered_at: float | None = None  # when (`clock`) a request last got the provider's answer (`ok`)
        # when (`clock`) the first of the requests since the provider's last answer of any kind that failed with no
        # answer at all (a connection refused, a timeout: `failed`) was sent; None: the last request that ended was
        # answered
        self.unanswered_since: float | None = None

    async def wait(self, *, until: float | None = None, stop: anyio.Event | None = None) -> bool:
        """Wait for the request's turn (a 429's pause, the rate); True once it may be sent. False, sooner, once
        `stop` is set or the clock reaches `until` before its turn: the request is not to be sent (nothing is
        counted), so a request that would only be dropped then does not sit out a pause of minutes."""
        while True:
            now = self.clock()
            start = max(self.not_before, now)
            if self.rate:
                start = max(start, self._next_slot)
            if start <= now:
                if self.rate:
                    self._next_slot = now + 1.0 / self.rate
                self.requests += 1
                self._sent.append(now)
                return True
            if (stop is not None and stop.is_set()) or (until is not None and until <= now):
                return False
            nap = start - now if until is None else min(start - now, until - now)
            if stop is None:
                await anyio.sleep(nap)
            else:
                with anyio.move_on_after(nap):
                    await stop.wait()

    def _sent_rate(self, now: float, window: float = 1.0) -> float:
        """Requests per second sent lately: over the last `window` seconds, or since the first of them
        when that is shorter (a burst at the start of a run is a high rate, not a low one)."""
        recent = [t for t in reversed(self._sent) if t > now - window]
        if not recent:
            return 0.0
        return len(recent) / max(0.25, now - recent[-1])

    def limited(self, retry_after: float | None, *, status: int = 429) -> float:
        """A 429 that asked to wait `retry_after` seconds (None: not said); returns the wait honoured: at most
        MAX_PAUSE, since every request of the run waits it (polls too, whose videos' URLs expire).

        `status` 502, 503 or 504: the service unavailable for the while its Retry-After says (a maintenance, an
        overload), which is about the provider, not one request: every request waits it, as for a 429, but the
        rate is not cut (no rate drew it)."""
        now = self.clock()
        wait = min(MAX_PAUSE, retry_after) if retry_after is not None else 1.0
        if now + wait >= self.not_before:
            self.asked = wait  # the pause that runs until not_before: what it asked, not what is left of it
            self.asked_by = status
        self.not_before = max(self.not_before, now + wait)
        if status == 429 and now - self._last_cut >= 1.0:
            sent = max(1.0, self._sent_rate(now))
            self.ceiling = min(self.rate or sent, sent)
            self.rate = max(0.5, self.ceiling * 0.7)
            self._last_cut = now
            self._last_raise = now
        return wait

    def failed(self, exc: ProviderError, *, sent_at: float | None = None) -> None:
        """A request failed with `exc`: an answer all the same where the provider sent one (an HTTP error, a
        429); none at all where it failed at the transport level (`unanswered_since`). `sent_at`: when (`clock`)
        the request was sent, from which a provider that hangs (a timeout, not a refusal) has been silent; None:
        now."""
        if not unanswered(exc):
            self.unanswered_since = None
        elif self.unanswered_since is None:
            now = self.clock()
            # an answer to another request since it was sent: silent from that answer on, not from the send
            self.unanswered_since = now if sent_at is None else min(now, max(sent_at, self.answered_at or sent_at))

    def heard(self) -> None:
        """A request the run waits on (a video's download at a file host, not an API call) got an answer: the
        provider is not silent (`unanswered_since`), and the rate it holds is not its business."""
        self.answered_at = self.clock()
        self.unanswered_since = None

    def ok(self) -> None:
        """A request got the provider's answer: the rate it holds may rise."""
        now = self.clock()
        self.answered_at = now
        self.unanswered_since = None
        if self.rate is None:
            return
        if now - self._last_raise >= 1.0 and now - self._last_cut >= 1.0:
            self._last_raise = now
            ceiling = self.ceiling or self.rate
            if self.rate < 0.9 * ceiling:
                self.rate = min(0.9 * ceiling, self.rate + max(0.25, ceiling / 10))
            else:
                self.rate += max(0.05, self.rate / 50)
                if self.rate > ceiling * 1.1:  # held past the old ceiling without a 429: the limit rose
                    self.ceiling = self.rate
            if now - self._last_cut > 30.0 and self.rate > 4 * max(1.0, self._sent_rate(now, 5.0)):
                self.rate = None


# The longest pause a Retry-After is honoured for (the OpenAI SDK's limit is lower, 120 s): a longer one would
# hold the whole run (a 429) or a job (a 5xx), whose renders' download URLs expire meanwhile; the rate control
# still backs off.
MAX_PAUSE = 300.0


def unanswered(exc: BaseException) -> bool:
    """`exc` is a request's failure with no answer at all from the other end: the transport failed (a connection
    refused, a timeout), or a create's connection failed after it may have been sent (an `OutcomeUnknownError`
    that no HTTP status came with)."""
    return isinstance(exc, TransportError) or isinstance(exc, OutcomeUnknownError) and exc.status is None


def backoff(attempt: int, retry_after: float | None, *, first: float = 0.25, most: float = 30.0) -> float:
    """The wait before try `attempt + 1` of a request that failed and may be tried again: the server's
    Retry-After (at most MAX_PAUSE), else `first` doubling per try up to `most`, with jitter (half to all of it)."""
    if retry_after is not None:
        return min(MAX_PAUSE, max(0.0, float(retry_after)))
    return min(most, first * 2 ** (attempt - 1)) * (0.5 + random.random() / 2)


async def retried(call: Callable[[], Awaitable[T]], *, tries: int, within: float | None = None,
                  transient: tuple[type[BaseException], ...] = (RetryableError,),
                  on_retry: Callable[[BaseException, int, float], None] | None = None,
                  pause: Callable[[float], Awaitable[None]] | None = None) -> T:
    """`call()`, tried again after a `transient` failure (a 5xx, a 408 or 429, a connection failed or timed out) as
    a run's requests are: after the provider's Retry-After (at most MAX_PAUSE), else a growing `backoff`; up to
    `tries` times in all and, with `within`, no try started past that many seconds after the first (a Retry-After
    reaching past it ends the tries then). `on_retry(exc, attempt, wait)` is told of each wait before it; `pause`
    waits it (`anyio.sleep` where none is given: one may let go of a slot meanwhile).

    :raises BaseException: the last try's failure (a `transient` one, once the tries or the time are spent; any
        other at once)."""
    start = anyio.current_time()
    attempt = 1
    while True:
        try:
            return await call()
        except transient as exc:
            wait = backoff(attempt, getattr(exc, "retry_after", None))
            if attempt >= tries or within is not None and anyio.current_time() - start + wait > within:
                raise
            if on_retry is not None:
                on_retry(exc, attempt, wait)
            await (anyio.sleep if pause is None else pause)(wait)
            attempt += 1


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

    def __init__(self, store: Store, run_id: int, made: Callable[[], tuple[str | None, bool]] | None = None) -> None:
        self.store = store
        self.run_id = run_id
        self.made = made  # where the attempts are sent (`Store.begin_submit`)
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
                keys = self.store.begin_submit(self.run_id, [jid for jid, _ in batch],
                                               made=None if self.made is None else self.made())
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


# A video whose create returned this many seconds before another's create was sent is listed before it,
# even by a provider that stamps creation in whole seconds.
ANCHOR_MARGIN = 1.0


MAX_LIST_VIDEOS = 2_000
"""The most videos one list round reads past its jobs in flight (pages counted full, 100 videos each after the
first): a list whose `has_more` never ends (a broken gateway) is left there, and the jobs it did not show are asked
about one by one. An honest list that holds more videos than this before a job's (an account shared with other
runs) ends there too, at about 21 requests."""


class ListUnavailable(Exception):
    """The list could not be had this round: the watcher asks for its job on its own instead."""


class ListPoller:
    """Watches many provider jobs through the provider's list endpoint: one request reports up to 100.

    A job task calls `next(video_id, last, due=..., sent_at=..., expect=...)` and gets the job's status once it
    differs from `last`. No request is sent before the earliest `due` (when a watched job can first be done); from
    then on a round runs every `interval(overdue)` seconds, `overdue` being how long the least overdue of the due
    jobs is past its `expect`: rounds come as often as ever while a job is on time, and further apart while every
    due job is late (a provider that slowed down, or queues them). A job the list no longer reaches is fetched on
    its own.

    A round lists oldest first from an anchor, one of this run's videos known to be listed before every job
    still in flight (its create returned `ANCHOR_MARGIN` before theirs were sent), and stops once it has
    seen every job that is due: the due jobs are the oldest, so one page usually covers them however many
    jobs are in flight. Without an anchor (the first round, a resumed job of unknown send time, an anchor
    the provider no longer knows) a round lists newest first until it has seen every watched job.
    """

    def __init__(
        self,
        provider: Provider,
        client: httpx.AsyncClient,
        pacer: Pacer,
        *,
        interval: Callable[[float], float],
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
        # Each watched video's last status (the caller's) and its waiter: the list request is handed `_last`
        # itself (unchanged videos come back unparsed), no copy per page.
        self._last: dict[str, str | None] = {}
        self._waiters: dict[str, _Waiter] = {}
        self._due: dict[str, float] = {}
        self._expect: dict[str, float] = {}  # video -> when its render is expected to have ended (at least its due)
        self._last_round: float | None = None  # when the last round ended
        self._live: dict[str, float] = {}  # video -> when its create was sent, until it is seen finished
        self._returned: deque[tuple[float, str]] = deque()  # (first watched at, video), in that order
        self._wake = anyio.Event()
        self._endless = False  # a round found the list going on past its pages, said once
        self.answered_at: float | None = None  # when (`clock`) a request of a round last got its answer

    async def next(
        self, video_id: str, last: VideoStatus | None, *, due: float | None = None, sent_at: float | None = None,
        expect: float | None = None,
    ) -> VideoStatus:
        """The job's status, once it is not `last`'s status (or `last` is None); `due` is the clock time
        before which it cannot be done (default: now); `sent_at`, no later than when its create request was
        sent (None: unknown); `expect`, when its render is expected to have ended (default: `due`), past which
        the rounds back off while it is the only kind of job due."""
        if video_id not in self._live:
            self._live[video_id] = float("-inf") if sent_at is None else sent_at
            self._returned.append((self.clock(), video_id))
        w = _Waiter()
        self._last[video_id] = last.status if last is not None else None
        self._waiters[video_id] = w
        self._due[video_id] = due if due is not None else self.clock()
        self._expect[video_id] = max(self._due[video_id], expect if expect is not None else float("-inf"))
        self._wake.set()
        try:
            await w.event.wait()
        finally:
            if self._waiters.get(video_id) is w:
                del self._waiters[video_id], self._last[video_id]
                self._due.pop(video_id, None)
                self._expect.pop(video_id, None)
        if w.error is not None:
            raise w.error
        return w.value  # type: ignore[no-any-return]

    def _deliver(self, status: VideoStatus) -> None:
        w = self._waiters.get(status.id)
        if w is None:
            return
        if status.status != self._last[status.id] or status.terminal:
            del self._waiters[status.id], self._last[status.id]
            self._due.pop(status.id, None)
            self._expect.pop(status.id, None)
            if status.terminal:
                self._live.pop(status.id, None)
            w.value = status
            w.event.set()

    def forget(self, video_id: str) -> None:
        """The job is no longer followed (it timed out here, or its run stops): it holds back no anchor."""
        self._live.pop(video_id, None)

    def _anchor(self) -> str | None:
        """The newest video listed before every job in flight, or None; older candidates are dropped."""
        if not self._live:
            return None
        oldest = min(self._live.values())
        returned = self._returned
        while len(returned) > 1 and returned[1][0] + ANCHOR_MARGIN < oldest:
            returned.popleft()
        if returned and returned[0][0] + ANCHOR_MARGIN < oldest:
            return returned[0][1]
        return None

    def next_round(self) -> float | None:
        """When (clock) the next round is to run; None while no job is watched. Not before the first job is due, nor
        within `interval(0)` of the last round; a job that is due and on time wants a round every `interval(0)`,
        and once every due job is past its expected end, the rounds are `interval(overdue)` apart, `overdue` being
        the least overdue one's time past it. A job that becomes due meanwhile is asked about in the round after it
        does, as one on time."""
        if not self._due:
            return None
        now = self.clock()
        coming = float("inf")  # when the first job not yet due is
        least: float | None = None  # how long the least overdue job that is due is past its expected end
        expect = self._expect
        for vid, due in self._due.items():
            if due > now:
                coming = min(coming, due)
            else:
                late = now - expect.get(vid, due)
                least = late if least is None or late < least else least
        last = self._last_round
        if last is None:
            return now if least is not None else coming
        soonest = last + self.interval(0.0)
        if least is None:
            return max(coming, soonest)
        return min(max(coming, soonest), last + self.interval(max(0.0, least)))

    async def loop(self) -> None:
        while True:
            if not self._waiters:
                await self._wake.wait()
                self._wake = anyio.Event()
                continue
            at = self.next_round()
            wait = 0.0 if at is None else at - self.clock()
            if wait > 0:
                # Nothing to ask yet: sleep until the next round, or until a job is watched (it may be due sooner).
                with anyio.move_on_after(min(wait, 5.0)):
                    await self._wake.wait()
                self._wake = anyio.Event()
                continue
            await self.round()

    async def round(self) -> None:
        """One round now: the jobs due are asked about (the loop runs one at `next_round()`)."""
        self.before_poll()
        await self._round()
        self._last_round = self.clock()

    async def _round(self) -> None:
        anchor = self._anchor()
        if anchor is not None:
            now = self.clock()
            unseen = {vid for vid, due in self._due.items() if due <= now}
            listed = await self._pages(unseen, after=anchor, order="asc")
            if listed is None:
                self._returned.clear()  # the provider did not take the anchor: list newest first from now on
                unseen = set(self._waiters)
                listed = await self._pages(unseen, after=None, order="desc")
                if listed is None:
                    return self._unlisted()
        else:
            unseen = set(self._waiters)
            listed = await self._pages(unseen, after=None, order="desc")
            if listed is None:
                return self._unlisted()
        if not listed:
            return self._unended(unseen)
        for vid in list(unseen):
            if vid in self._waiters:
                st = await self._call(lambda vid=vid: self.provider.get(self.client, vid), missing=vid)
                if st is not None:
                    self._deliver(st)

    async def _pages(self, unseen: set[str], *, after: str | None, order: str) -> bool | None:
        """List pages from `after` in `order` until every video of `unseen` was seen (each is removed as it
        is) or the list ends: True. False when it went on past `MAX_LIST_VIDEOS` more videos than the jobs in flight;
        None when a page could not be had."""
        cursor = after
        left = MAX_LIST_VIDEOS + len(unseen)
        limit = 0
        while unseen:
            if left <= 0:
                return False
            # Oldest first, the page also holds finished videos between the anchor and the jobs in flight. Newest
            # first, the first page is as short as the jobs allow (most often it holds them all); the jobs it did not
            # show are older than the videos it did, so the pages after it are full ones.
            limit = 100 if order == "asc" or limit else min(100, max(10, 2 * len(unseen)))
            left -= limit  # counted full: a page of a few videos (or none) that says more follow costs a request
            page = await self._call(
                lambda: self.provider.list(self.client, limit=limit, after=cursor, order=order, only=self._last)
            )
            if page is None:
                return None
            items, cursor = page
            for st in items:
                unseen.discard(st.id)
                self._deliver(st)
            if cursor is None:
                break
        return True

    def _unlisted(self) -> None:
        """A round that could not list: the jobs due ask on their own (their watchers' own retries and limits
        apply), instead of waiting on a list that may stay refused."""
        now = self.clock()
        for vid in [vid for vid, due in self._due.items() if due <= now]:
            self._fail(vid, ListUnavailable())

    def _unended(self, unseen: set[str]) -> None:
        """A round whose list went on past its videos: the jobs it did not show ask on their own, as in a round that
        could not list; said once a run."""
        if not self._endless:
            self._endless = True
            self.on_error(f"polling: the provider's list of videos goes on past {MAX_LIST_VIDEOS:,} videos more than "
                          "the jobs in flight before it shows them (other videos of the account, or a list that "
                          "always says more follow); the jobs it does not show are asked about one by one")
        now = self.clock()
        for vid in unseen:
            if vid in self._waiters and self._due.get(vid, now) <= now:
                self._fail(vid, ListUnavailable())

    def _fail(self, video_id: str, error: Exception) -> None:
        """The watcher of `video_id` gets `error` raised instead of a status."""
        w = self._waiters.pop(video_id, None)
        self._last.pop(video_id, None)
        self._due.pop(video_id, None)
        self._expect.pop(video_id, None)
        if w is not None:
            w.error = error
            w.event.set()

    async def _call(self, fn: Callable[[], Awaitable[Any]], *, missing: str | None = None) -> Any:
        """`fn()`'s result, through 429s and retryable errors; None when it failed. With `missing`, an HTTP
        404 is that video's watcher's to handle (`next` raises it)."""
        for attempt in range(1, 6):
            await self.pacer.wait()
            try:
                async with self.pacer.gate:
                    result = await fn()
                self.pacer.ok()
                self.answered_at = self.clock()
                return result
            except RateLimitedError as exc:
                self.pacer.failed(exc)
                self.pacer.limited(exc.retry_after)
            except RetryableError as exc:
                self.pacer.failed(exc)
                await anyio.sleep(backoff(attempt, exc.retry_after, first=0.4, most=5.0))
            except ProviderError as exc:
                self.pacer.failed(exc)
                if missing is not None and exc.status == 404:
                    self._fail(missing, exc)
                    return None
                self.on_error(f"polling: {exc}")
                return None
        return None


POLL_MOST = 30.0
"""Seconds: the longest a job polled one by one waits between polls once past its expected render time."""
OVERDUE_BACKOFF = 0.1
"""The part of the time a render is overdue added to the interval between its polls: a render seen ended at
most about a tenth of its time late."""


QUICK_RENDERS = 3
"""The renders seen last that tell a provider sped up: a job is first polled no later than the quickest of them
suggests, however slow the renders before them were."""


class RenderTimes:
    """How long jobs take to render, and so when each is worth polling: the median of the last 50 renders
    this run has seen once there are three, and before that the simulator's knobs (as the simulator says them, where
    an answer came from one, served or built in; else the manifest's `sim:`) or the model's prior (capability data),
    scaled by the video's duration. A render seen is kept per 5 s of clip where the prior is scaled so (a real
    provider's): a grid of 5 s and 10 s clips expects each its own time, not the median of both."""

    def __init__(self, plan: Plan, caps: ProviderCaps, *, poll_interval: float | None,
                 clock: Callable[[], float], provider: Any = None) -> None:
        self.plan = plan
        self.caps = caps
        self.provider = provider  # a simulator's own render time, once it says it (`sim_render_seconds`)
        self.poll_interval = poll_interval      # fixed: every poll that many seconds apart
        self.clock = clock
        self._seen: list[float] = []  # seconds per `scale()` of each job
        # (median, quickest) of the last 50 renders seen and the quickest of the last QUICK_RENDERS, worked out once
        # per render seen: they are read for every poll, every list round and every progress update (for each job
        # rendering), far more often than a render ends.
        self._lately: tuple[float, float, float] | None = None
        # The simulator's render time as last read (`expected`), and the event set when it changes (`told`).
        self._told: float | None = getattr(provider, "sim_render_seconds", None)
        self._retold: anyio.Event | None = None

    def _simulated(self) -> bool:
        """A simulator renders every clip in the same time, whatever its duration."""
        return getattr(self.provider, "sim_render_seconds", None) is not None or self.plan.provider == "sim"

    def scale(self, job: Job | None) -> float:
        """How many times a 5 s clip's render time `job` is expected to take: its duration / 5 (at least 1), as
        the prior is scaled; 1 for a simulator's jobs, and where the job is not known."""
        if job is None or self._simulated():
            return 1.0
        return max(1.0, job.duration / 5.0)

    def seen(self, seconds: float, job: Job | None = None) -> None:
        """A job took `seconds` from its create request to when its completion was seen."""
        self._seen.append(max(0.0, seconds) / self.scale(job))
        self._lately = None

    def _recent(self) -> tuple[float, float, float] | None:
        """(median, quickest) of the last 50 renders seen, and the quickest of the last QUICK_RENDERS; None before
        three are seen."""
        if self._lately is None and len(self._seen) >= 3:
            last = self._seen[-50:]
            self._lately = (statistics.median(last), min(last), min(self._seen[-QUICK_RENDERS:]))
        return self._lately

    def ends(self, sent: Iterable[tuple[float, Job]]) -> list[float]:
        """When each job of `sent` (when it was sent, the job) is expected to have rendered: its send time and its
        `expected` render time. A progress update asks this of every job in flight: the render time is worked out
        once per clip duration (what it scales with), once in all for a simulator's jobs, which render alike."""
        if self._simulated():
            each = self.expected(None)
            return [since + each for since, _ in sent]
        by_duration: dict[float, float] = {}
        out = []
        for since, job in sent:
            each = by_duration.get(job.duration)
            if each is None:
                each = by_duration[job.duration] = self.expected(job)
            out.append(since + each)
        return out

    def told(self) -> anyio.Event:
        """Set once the simulator's render time is learned, or changes (`expected` reads it): a first answer from a
        served simulator tells it while jobs whose creates were answered alongside wait for a poll scheduled from
        the model's render time, a minute where the simulator takes seconds. Made in the event loop, afresh after
        each change."""
        if self._retold is None:
            self._retold = anyio.Event()
        return self._retold

    def expected(self, job: Job | None) -> float:
        told = getattr(self.provider, "sim_render_seconds", None)
        if told != self._told:
            self._told = told
            if self._retold is not None:
                self._retold.set()
                self._retold = None
        recent = self._recent()
        if recent is not None:
            return recent[0] * self.scale(job)
        if told is not None:  # a simulator's, served or built in, as it says itself
            return told
        if self.plan.provider == "sim":
            sim = self.plan.manifest.data.get("sim") or {}
            return float(sim.get("render_time", 2.0)) * float(sim.get("time_scale", 1.0))
        model = self.caps.model(self.plan.model)
        prior = model.render_seconds if model is not None else None
        return (prior or DEFAULT_RENDER_SECONDS) * self.scale(job)

    def earliest_done(self, job: Job) -> float:
        """Seconds after submission before which a job is not worth polling: the quickest render seen, less
        5 % (a render time seen includes the lag in seeing it; without the margin that lag feeds itself)."""
        recent = self._recent()
        if recent is not None:
            return 0.95 * recent[1] * self.scale(job)
        return self.expected(job) * 0.8

    def _quick(self, job: Job) -> float | None:
        """The quickest of the last QUICK_RENDERS renders seen, less 5 %, for `job`; None before three are seen."""
        recent = self._recent()
        if recent is None:
            return None
        return 0.95 * recent[2] * self.scale(job)

    def next_poll(self, job: Job, submitted_at: float) -> float:
        """Seconds until a job polled one by one is polled again: at 90 % of its expected render time, then
        every twentieth of it, the interval growing by a tenth of the time it is overdue (0.05–30 s): a render
        on time is seen ended promptly, and one that outlasts the expectation many times over is not asked
        about many times a second all along (providers rate-limit polls; the pacer bounds them too).

        Where the last renders were much quicker than the median (a provider that sped up, its queue cleared), the
        first poll comes when the quickest of them suggests, then every tenth of that, growing by a tenth of the time
        since the first poll, until the usual schedule takes over: a quick render is seen ended soon, not at 90 %
        of a median that takes many renders to move."""
        if self.poll_interval:
            return float(self.poll_interval)
        expected = self.expected(job)
        elapsed = self.clock() - submitted_at
        first = expected * 0.9
        quick = self._quick(job)
        if quick is not None and quick < first and elapsed < first:
            if elapsed < quick:
                return max(0.05, quick - elapsed)
            return max(0.05, min(first - elapsed, quick * 0.1 + (elapsed - quick) * OVERDUE_BACKOFF))
        if elapsed < first:
            return max(0.05, first - elapsed)
        step = expected * 0.05
        overdue = max(0.0, elapsed - expected)
        return max(0.05, min(POLL_MOST, step + overdue * OVERDUE_BACKOFF))

    def list_interval(self, overdue: float = 0.0) -> float:
        """Seconds between list rounds while a watched job is due: an eightieth of the expected render time,
        within 0.02–5 s (one request covers up to 100 jobs, and none is sent before a job is due), growing by a
        tenth of `overdue`, the time the least overdue of the due jobs is past its expected end, up to POLL_MOST:
        a render on time is seen ended as promptly, and a provider that slowed down or queues the jobs is not
        asked many times a second all along."""
        if not self.plan.jobs:
            return 1.0
        base = max(0.02, min(5.0, self.expected(self.plan.jobs[0]) * 0.0125))
        return max(base, min(POLL_MOST, base + max(0.0, overdue) * OVERDUE_BACKOFF))
