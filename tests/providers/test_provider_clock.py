"""A provider's clock need not agree with this machine's. Where gridrun sets a time of its own against one the
provider stamped, it reads the provider's clock off its answers' HTTP `Date`: the request log a lost create is looked
up in is read back far enough whatever that clock says (a create it logged is never missed, and so never paid
twice), and a 429's Retry-After date is a wait counted on the provider's clock."""

from __future__ import annotations

import time
from collections.abc import Callable
from email.utils import formatdate
from pathlib import Path
from typing import Any

import httpx
import pytest
from execkit import write_manifest
from providers_kit import video

import runner.sim as rsim
from runner import api
from runner.errors import RateLimitedError
from runner.executor import RunOptions
from runner.providers import get_provider, parse_retry_after
from runner.providers.lumenfall import LumenfallProvider
from runner.providers.sim import SimProvider
from runner.sim.world import World

KEY = "gridrun-cccccccccccccccccccccccc-1"
Client = Callable[[Callable[[httpx.Request], httpx.Response]], httpx.AsyncClient]


def skewed_sim(monkeypatch: pytest.MonkeyPatch, skew: float) -> None:
    """Every in-process simulator made from now on keeps a clock `skew` seconds off this machine's (its videos'
    created_at, its request log, its answers' Date)."""
    made = rsim.create_app

    def create_app(config: Any, *, clock: Any = None, world: Any = None, caps: Any = None) -> Any:
        return made(config, clock=lambda: time.time() + skew, world=world, caps=caps)

    monkeypatch.setattr(rsim, "create_app", create_app)


def world_stats(m: Path) -> dict[str, Any]:
    return rsim.create_app(rsim.SimConfig(), world=World.open(m.parent / ".gridrun" / "sim-world.jsonl")).state.sim.stats()


@pytest.mark.parametrize("skew", [-1200.0, -90_000.0])
def test_a_lost_create_at_a_provider_whose_clock_is_behind_ours_is_found_not_paid_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, skew: float
) -> None:
    # A simulator that ignores keys, its clock 20 minutes (a day) behind: the create's answer is lost, and the request
    # log, read back to the attempt, is the only thing that can tell it was made.
    skewed_sim(monkeypatch, skew)
    m = write_manifest(tmp_path, n_seeds=1, styles=("anime",), sim={
        "render_time": 0.2, "jitter": 0.0, "honour_idempotency": False,
        "script": [{"route": "create", "nth": [1], "fault": "reset_after"}]})
    result = api.run(m, options=RunOptions(request_timeout=1.0), report=False)
    assert result.exit_code == 0 and result.stats.counts["done"] == 1, result.stats.counts
    s = world_stats(m)
    assert (s["creates"], s["duplicate_paid"]) == (1, 0), s


def log_server(*, skew: float | None, logged_at: float, seen: list[httpx.Request]) -> Callable[[httpx.Request], httpx.Response]:
    """A Lumenfall request log holding one create of KEY, logged at `logged_at` (the provider's clock), which it
    filters by `created_after` as the real one does; its answers' Date `skew` seconds off ours (None: no Date)."""

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        headers = {} if skew is None else {"Date": formatdate(time.time() + skew, usegmt=True)}
        if request.url.path.endswith("/requests"):
            after = request.url.params.get("created_after")
            entry = {"id": "req_1", "object": "request", "created_at": int(logged_at), "status": "pending",
                     "endpoint": "/v1/videos", "idempotency_key": KEY, "video_id": "video_cc"}
            data = [entry] if after is None or int(after) <= logged_at else []
            return httpx.Response(200, json={"object": "list", "data": data, "has_more": False}, headers=headers)
        return httpx.Response(200, json=video(id=request.url.path.rsplit("/", 1)[1], status="in_progress"),
                              headers=headers)

    return handler


def _logs(seen: list[httpx.Request]) -> list[str | None]:
    return [r.url.params.get("created_after") for r in seen if r.url.path.endswith("/requests")]


@pytest.mark.anyio
async def test_the_request_log_is_read_back_by_as_far_as_the_providers_date_is_behind(
    provider: LumenfallProvider, mock: Client
) -> None:
    # The lookup is the provider's first answer (a run resumed in a new process): the page read with the caller's
    # bound misses the create, its Date shows the clock 20 minutes behind, and the log is read again further back.
    sent = time.time() - 10
    seen: list[httpx.Request] = []
    async with mock(log_server(skew=-1200, logged_at=sent - 1200, seen=seen)) as client:
        found = await provider.find_by_key(client, KEY, created_after=sent - 600)
    assert found is not None and found.id == "video_cc"
    asked = _logs(seen)
    assert len(asked) == 2 and asked[0] == str(int(sent - 600)), asked
    assert int(asked[1] or 0) <= sent - 600 - 1200, asked


@pytest.mark.anyio
async def test_a_clock_learnt_from_earlier_answers_widens_the_first_read(provider: LumenfallProvider, mock: Client) -> None:
    sent = time.time() - 10
    seen: list[httpx.Request] = []
    async with mock(log_server(skew=-1200, logged_at=sent - 1200, seen=seen)) as client:
        await provider.get(client, "video_cc")  # any answer says the provider's time
        assert await provider.videos_by_key(client, KEY, created_after=sent - 600) == {"video_cc"}
    assert len(_logs(seen)) == 1


@pytest.mark.anyio
async def test_a_log_whose_answers_give_no_date_is_read_without_the_bound(provider: LumenfallProvider, mock: Client) -> None:
    # How the provider's clock stands is unknown: a miss within the bound proves nothing, so the whole log is read.
    sent = time.time() - 10
    seen: list[httpx.Request] = []
    async with mock(log_server(skew=None, logged_at=sent - 5000, seen=seen)) as client:
        found = await provider.find_by_key(client, KEY, created_after=sent - 600)
    assert found is not None and found.id == "video_cc"
    assert _logs(seen) == [str(int(sent - 600)), None]


@pytest.mark.anyio
@pytest.mark.parametrize("skew", [0.0, 3600.0])
async def test_a_clock_in_step_or_ahead_keeps_the_callers_bound(
    provider: LumenfallProvider, mock: Client, skew: float
) -> None:
    # The log read once, to the caller's bound: a create logged before it is not the attempt's.
    sent = time.time() - 10
    seen: list[httpx.Request] = []
    async with mock(log_server(skew=skew, logged_at=sent - 700, seen=seen)) as client:
        assert await provider.find_by_key(client, KEY, created_after=sent - 600) is None
    assert _logs(seen) == [str(int(sent - 600))]


@pytest.mark.parametrize("skew", [-1200.0, 3600.0])
def test_a_retry_after_date_is_counted_on_the_answers_own_date(skew: float) -> None:
    theirs = time.time() + skew
    headers = {"Date": formatdate(theirs, usegmt=True), "Retry-After": formatdate(theirs + 30, usegmt=True)}
    assert parse_retry_after(headers, None) == pytest.approx(30, abs=1)


@pytest.mark.anyio
@pytest.mark.parametrize("skew", [-1200.0, 3600.0])
async def test_a_429_from_a_provider_off_our_clock_asks_the_wait_it_gave(monkeypatch: pytest.MonkeyPatch, skew: float) -> None:
    skewed_sim(monkeypatch, skew)
    prov = get_provider("sim", sim_config={"render_time": 0.05, "jitter": 0.0, "script": [
        {"route": "create", "nth": [1], "fault": "rate_limited", "retry_after": 20, "retry_style": "date"}]})
    assert isinstance(prov, SimProvider)
    body = prov.build_request({"prompt": "a fox", "duration": 5, "quality": "540p"}, model="pixverse-v5.6",
                              idempotency_key=KEY)
    async with prov.client() as client:
        with pytest.raises(RateLimitedError) as info:
            await prov.submit(client, body)
    assert info.value.retry_after is not None and 19 <= info.value.retry_after <= 22, info.value.retry_after
