"""The list poller against a provider with a real cursor: which pages a round asks for, and that every
watched job is delivered whatever the provider's order."""

from __future__ import annotations

import itertools
import time
from typing import Any

import anyio
import anyio.abc
import anyio.lowlevel
import pytest

from runner import pacing
from runner.errors import RejectedError
from runner.pacing import ListPoller, Pacer
from runner.providers.base import VideoStatus

pytestmark = pytest.mark.anyio


class Listing:
    """Videos in the provider's order (creation order, or `order` when given), OpenAI-style list paging."""

    def __init__(self, n: int, order: list[int] | None = None) -> None:
        self.ids = [f"v{i}" for i in (order if order is not None else range(n))]
        self.status = {vid: "in_progress" for vid in self.ids}
        self.created = 0  # videos v0 .. v(created - 1) exist
        self.calls: list[tuple[str, str | None, int]] = []
        self.gets: list[str] = []

    def finish(self, *numbers: int) -> None:
        for i in numbers:
            self.status[f"v{i}"] = "completed"

    def _video(self, vid: str) -> VideoStatus:
        return VideoStatus(id=vid, status=self.status[vid], raw_status=self.status[vid])

    async def list(self, client: Any, *, limit: int = 100, after: str | None = None, order: str = "desc",
                   only: Any = None) -> tuple[list[VideoStatus], str | None]:
        self.calls.append((order, after, limit))
        made = [v for v in self.ids if int(v[1:]) < self.created]
        seq = made if order == "asc" else made[::-1]
        if after is not None:
            if after not in seq:
                raise RejectedError(f"after: no video {after!r}", status=400)
            seq = seq[seq.index(after) + 1:]
        page = seq[:limit]
        cursor = page[-1] if len(seq) > limit else None
        return [self._video(v) for v in page if only is None or v in only], cursor

    async def get(self, client: Any, vid: str) -> VideoStatus:
        self.gets.append(vid)
        return self._video(vid)


@pytest.fixture(autouse=True)
def _short_anchor_margin(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pacing, "ANCHOR_MARGIN", 0.02)


class Watching:
    """A list poller at work on `provider` inside `tg`, followed as the executor follows jobs."""

    def __init__(self, provider: Listing, tg: anyio.abc.TaskGroup) -> None:
        self.provider, self.tg = provider, tg
        self.errors: list[str] = []
        self.got: dict[str, VideoStatus] = {}
        self.poller = ListPoller(
            provider,  # type: ignore[arg-type]
            client=None,  # type: ignore[arg-type]
            pacer=Pacer(time.monotonic),
            interval=lambda overdue: 0.01,
            before_poll=lambda: None,
            on_error=self.errors.append,
            clock=time.monotonic,
        )
        tg.start_soon(self.poller.loop)

    def start(self, numbers: range, *, due_in: float = 0.0, send_known: bool = True, finished: bool = True) -> None:
        """Create videos v<numbers> (done at once unless not `finished`) and follow each until it is done."""
        self.provider.created = max(self.provider.created, numbers.stop)
        if finished:
            self.provider.finish(*numbers)
        now = time.monotonic()
        self.tg.start_soon(follow, self.poller, numbers, now + due_in, now if send_known else None, self.got)

    async def until(self, n: int) -> None:
        """Wait until `n` videos were delivered finished."""
        with anyio.fail_after(5):
            while len(self.got) < n:
                await anyio.sleep(0.005)

    async def first(self, n: int) -> None:
        """v0 .. v(n-1) done and delivered, then past the anchor margin, the requests so far forgotten."""
        self.start(range(n))
        await self.until(n)
        await anyio.sleep(0.05)
        self.provider.calls.clear()


async def follow(p: ListPoller, numbers: range, due: float, sent_at: float | None, got: dict[str, VideoStatus]) -> None:
    """Watch each video until it is finished, as the executor does."""
    async def one(vid: str) -> None:
        last = VideoStatus(id=vid, status="in_progress", raw_status="in_progress")
        while not last.terminal:
            last = await p.next(vid, last, due=due, sent_at=sent_at)
        got[vid] = last

    async with anyio.create_task_group() as tg:
        for i in numbers:
            tg.start_soon(one, f"v{i}")


async def test_a_round_lists_oldest_first_from_the_anchor_and_stops_once_the_due_jobs_are_seen() -> None:
    provider = Listing(250)
    async with anyio.create_task_group() as tg:
        w = Watching(provider, tg)
        w.start(range(10))
        await w.until(10)
        assert provider.calls == [("desc", None, 20)]  # no anchor yet: newest first, every watched job
        await anyio.sleep(0.05)
        provider.calls.clear()

        w.start(range(10, 30))
        w.start(range(30, 250), due_in=3600, finished=False)
        await w.until(30)
        # 240 jobs in flight, 20 of them due: one page, oldest first after the newest video known to be older
        assert provider.calls == [("asc", "v9", 100)]
        assert not provider.gets
        tg.cancel_scope.cancel()
    assert all(w.got[f"v{i}"].status == "completed" for i in range(30))


async def test_an_anchor_the_provider_does_not_know_falls_back_to_newest_first() -> None:
    provider = Listing(40)
    async with anyio.create_task_group() as tg:
        w = Watching(provider, tg)
        await w.first(5)
        provider.ids.remove("v4")  # the anchor is gone at the provider
        w.start(range(5, 40))
        await w.until(40)
        tg.cancel_scope.cancel()
    assert provider.calls[0] == ("asc", "v4", 100)
    assert provider.calls[1][:2] == ("desc", None)
    assert len(w.errors) == 1 and "no video 'v4'" in w.errors[0]
    assert all(w.got[f"v{i}"].status == "completed" for i in range(40))


async def test_no_anchor_while_a_job_of_unknown_send_time_is_in_flight_until_it_is_forgotten() -> None:
    provider = Listing(30)
    async with anyio.create_task_group() as tg:
        w = Watching(provider, tg)
        await w.first(5)
        # a resumed job (send time unknown) holds the anchor back: it could be listed anywhere
        w.start(range(5, 6), due_in=3600, send_known=False, finished=False)
        w.start(range(6, 10))
        await w.until(9)
        assert {c[0] for c in provider.calls} == {"desc"}
        # once it is forgotten (timed out here), the anchor is back
        w.poller.forget("v5")
        provider.calls.clear()
        await anyio.sleep(0.05)
        w.start(range(10, 12))
        await w.until(11)
        assert provider.calls[0][:2] == ("asc", "v9")
        tg.cancel_scope.cancel()


async def test_a_due_job_listed_before_the_anchor_is_fetched_on_its_own() -> None:
    """A provider whose order disagrees with the run's (here v12 is listed first of all): nothing is lost."""
    provider = Listing(20, order=[12, *range(12), *range(13, 20)])
    async with anyio.create_task_group() as tg:
        w = Watching(provider, tg)
        await w.first(10)
        w.start(range(10, 20))
        await w.until(20)
        tg.cancel_scope.cancel()
    assert provider.calls[0][:2] == ("asc", "v9")
    assert provider.gets == ["v12"]
    assert all(w.got[f"v{i}"].status == "completed" for i in range(20))


async def test_a_watched_video_the_provider_no_longer_knows_is_raised_to_its_watcher() -> None:
    """Missing from the list and answered 404 on its own: its watcher gets the provider's error (the
    executor decides when to believe it), and the other watched videos go on as before."""
    provider = Listing(3)

    async def get(client: Any, vid: str) -> VideoStatus:
        provider.gets.append(vid)
        if vid == "v1":
            raise RejectedError("no such video", status=404, code="NOT_FOUND")
        return provider._video(vid)

    provider.get = get  # type: ignore[method-assign]
    async with anyio.create_task_group() as tg:
        w = Watching(provider, tg)
        provider.created = 3
        provider.ids.remove("v1")
        provider.finish(0, 2)
        in_progress = VideoStatus(id="v1", status="in_progress", raw_status="in_progress")
        with anyio.fail_after(5):
            with pytest.raises(RejectedError) as raised:
                await w.poller.next("v1", in_progress)
        assert raised.value.status == 404 and provider.gets == ["v1"] and not w.errors
        w.start(range(0, 1))
        w.start(range(2, 3))
        await w.until(2)
        tg.cancel_scope.cancel()
    assert w.got["v0"].status == w.got["v2"].status == "completed"


async def test_a_list_that_never_ends_is_left_after_its_pages_and_the_jobs_are_asked_on_their_own() -> None:
    """A list whose `has_more` never ends (each page no video, and a new cursor): a round reads `MAX_LIST_VIDEOS`
    more videos' worth of pages than its jobs need, then the jobs it did not show ask on their own (the executor's
    `ListUnavailable`), round after round, said once."""
    provider = Listing(1)
    pages = 0

    async def endless(client: Any, *, limit: int = 100, after: str | None = None, order: str = "desc",
                      only: Any = None) -> tuple[list[VideoStatus], str | None]:
        nonlocal pages
        await anyio.lowlevel.checkpoint()  # as a request would
        pages += 1
        provider.calls.append((order, after, limit))
        return [], f"junk{pages}"

    provider.list = endless  # type: ignore[method-assign]
    provider.created = 1
    asked: list[int] = []  # the pages listed before each time the job was left to ask on its own
    async with anyio.create_task_group() as tg:
        w = Watching(provider, tg)
        last = VideoStatus(id="v0", status="in_progress", raw_status="in_progress")
        with anyio.fail_after(5):
            while not last.terminal:
                try:
                    last = await w.poller.next("v0", last)
                except pacing.ListUnavailable:
                    asked.append(pages)
                    if len(asked) == 3:
                        provider.finish(0)
                    last = await provider.get(None, "v0")
        tg.cancel_scope.cancel()
    assert last.status == "completed" and provider.gets == ["v0"] * 3
    per_round = 1 + -(-(pacing.MAX_LIST_VIDEOS + 1 - 10) // 100)  # a first page of 10, then pages of 100
    assert asked == [per_round, 2 * per_round, 3 * per_round]
    [said] = w.errors
    assert "goes on past" in said and "asked about one by one" in said


async def test_a_job_behind_hundreds_of_newer_videos_is_found_in_a_few_full_pages_and_nothing_is_said() -> None:
    """An honest list (an account other runs share): the job's video is older than 300 others, and no anchor is
    known yet. The round pages newest first, a short page and then full ones, until it has seen the job: four
    requests, not thirty pages of ten, and no word of a list that never ends."""
    provider = Listing(301)
    provider.created = 301
    provider.finish(*range(301))
    async with anyio.create_task_group() as tg:
        w = Watching(provider, tg)
        with anyio.fail_after(5):
            got = await w.poller.next("v0", VideoStatus(id="v0", status="in_progress", raw_status="in_progress"))
        tg.cancel_scope.cancel()
    assert got.id == "v0" and got.status == "completed" and not w.errors
    assert [limit for _order, _after, limit in provider.calls] == [10, 100, 100, 100], provider.calls
    assert provider.gets == []


async def test_rounds_back_off_while_every_due_job_is_overdue_and_a_job_on_time_is_asked_about_at_once(tmp_path) -> None:
    """A provider that slowed down or queues the job (it says `in_progress` for ever): the list rounds come further
    and further apart the longer the job is past its expected end, up to POLL_MOST, instead of every eightieth of
    the render time all along (600 s / 0.02 s: 30,000 rounds); a job sent meanwhile is asked about as soon as it
    is due, and the rounds are as frequent again while it is on time."""
    from execkit import write_manifest

    from runner import api
    from runner.pacing import POLL_MOST, RenderTimes
    from runner.providers import get_provider

    plan = api.plan(write_manifest(tmp_path, n_seeds=1, styles=("anime",), sim={"render_time": 1.0, "jitter": 0.0}))
    now = [0.0]

    def clock() -> float:
        return now[0]

    times = RenderTimes(plan, get_provider("sim").caps, poll_interval=None, clock=clock)
    provider = Listing(2)
    provider.created = 2
    poller = ListPoller(provider, client=None, pacer=Pacer(clock), interval=times.list_interval,  # type: ignore[arg-type]
                        before_poll=lambda: None, on_error=lambda e: None, clock=clock)
    base = times.list_interval()
    running = VideoStatus(id="v0", status="in_progress", raw_status="in_progress")
    async with anyio.create_task_group() as tg:
        tg.start_soon(lambda: poller.next("v0", running, due=0.8, sent_at=0.0, expect=1.0))
        await anyio.wait_all_tasks_blocked()
        assert poller.next_round() == 0.8  # nothing asked before the job may be done
        rounds = []
        while now[0] < 600.0:
            now[0] = poller.next_round()  # type: ignore[assignment]
            await poller.round()
            rounds.append(now[0])
        gaps = [b - a for a, b in itertools.pairwise(rounds)]
        assert all(b >= a - 1e-9 for a, b in itertools.pairwise(gaps))  # further and further apart
        assert gaps[0] == pytest.approx(base) and gaps[-1] == POLL_MOST and len(rounds) < 150, (len(rounds), gaps[-1])
        # a second job sent now: asked about once it is due, then every `base` while it is on time
        sent = now[0]
        tg.start_soon(lambda: poller.next("v1", VideoStatus(id="v1", status="in_progress", raw_status="in_progress"),
                                          due=sent + 0.8, sent_at=sent, expect=sent + 1.0))
        await anyio.wait_all_tasks_blocked()
        assert poller.next_round() == pytest.approx(sent + 0.8)
        now[0] = sent + 0.8
        await poller.round()
        assert poller.next_round() == pytest.approx(sent + 0.8 + base)
        tg.cancel_scope.cancel()
