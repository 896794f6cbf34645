"""The Lumenfall client against the simulator over real loopback HTTP, one fault knob at a time."""

from __future__ import annotations

import hashlib
import time
from pathlib import Path
from typing import Any, AsyncIterator, Iterator

import anyio
import httpx
import pytest
from providers_kit import KEY, no_secret

from runner.errors import (
    ConnectError,
    DownloadError,
    ExpiredError,
    OutcomeUnknownError,
    ProviderError,
    RateLimitedError,
    RejectedError,
    ServerError,
    TransportError,
)
from runner.providers import VideoStatus, get_provider
from runner.providers.lumenfall import LumenfallProvider
from runner.sim import SimConfig, running_server

BASE_KNOBS: dict[str, Any] = {"render_time": 0.05, "jitter": 0.0, "max_side": 64, "fps": 4}
PARAMS = {"prompt": "a red fox running through snow", "duration": 5, "quality": "540p", "seed": 7}
MODEL = "pixverse-v5.6"


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    with running_server(SimConfig(**BASE_KNOBS)) as url:
        yield url


_KEYS: dict[str, str | None] = {}


class Sim:
    """The running simulator's control routes."""

    def __init__(self, url: str, control: httpx.AsyncClient) -> None:
        self.url = url
        self.root = url.removesuffix("/v1")
        self.control = control

    async def configure(self, **knobs: Any) -> None:
        """Forget every video and counter, then set the knobs: the defaults of this module, then `knobs`."""
        defaults = SimConfig(**BASE_KNOBS).to_dict()
        given = _KEYS.get(self.url)  # the key the served simulator was last given: changing it needs that key
        auth = {"authorization": f"Bearer {given}"} if given is not None else {}
        (await self.control.post(f"{self.root}/_sim/reset", headers=auth)).raise_for_status()
        patch = {**defaults, "api_key": None, **knobs}
        (await self.control.post(f"{self.root}/_sim/config", json=patch, headers=auth)).raise_for_status()
        _KEYS[self.url] = patch["api_key"]

    async def stats(self) -> dict[str, Any]:
        response = await self.control.get(f"{self.root}/_sim/stats")
        response.raise_for_status()
        return dict(response.json())


@pytest.fixture
async def sim(server: str) -> AsyncIterator[Sim]:
    async with httpx.AsyncClient(trust_env=False) as control:
        s = Sim(server, control)
        await s.configure()
        yield s


@pytest.fixture
def lumenfall(server: str, key: str) -> LumenfallProvider:
    provider = get_provider("lumenfall", base_url=server)
    assert isinstance(provider, LumenfallProvider)
    return provider


def body(provider: LumenfallProvider, key: str = "gridrun-contract-1", **params: Any) -> dict[str, Any]:
    return provider.build_request({**PARAMS, **params}, model=MODEL, idempotency_key=key)


def fault(route: str, kind: str, **more: Any) -> dict[str, Any]:
    return {"script": [{"route": route, "fault": kind, "nth": [1], **more}]}


async def until_done(provider: LumenfallProvider, client: httpx.AsyncClient, video_id: str) -> VideoStatus:
    with anyio.fail_after(10):
        while True:
            status = await provider.get(client, video_id)
            if status.terminal:
                return status
            await anyio.sleep(0.02)


async def completed(provider: LumenfallProvider, client: httpx.AsyncClient, key: str = "gridrun-contract-1") -> VideoStatus:
    created = await provider.submit(client, body(provider, key))
    done = await until_done(provider, client, created.id)
    assert done.status == "completed", done
    return done


# -- the happy path ----------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_submit_poll_download(sim: Sim, lumenfall: LumenfallProvider, tmp_path: Path) -> None:
    await sim.configure(api_key=KEY)
    async with lumenfall.client() as client:
        created = await lumenfall.submit(client, body(lumenfall))
        assert created.status in ("queued", "in_progress") and created.id.startswith("video_")
        done = await until_done(lumenfall, client, created.id)
        assert done.status == "completed" and done.url and done.content_type == "video/mp4"
        assert done.cost_micros == 350_000
        assert done.expires_at is not None and done.expires_at > time.time()
        assert done.completed_at is not None and done.created_at is not None
        got = await lumenfall.download(client, done.url, tmp_path / "fox" / "seed-7.mp4")
    data = got.path.read_bytes()
    assert got.sha256 == hashlib.sha256(data).hexdigest()
    assert got.size_bytes == len(data) == done.size_bytes
    assert data[4:8] == b"ftyp"
    assert [p.name for p in got.path.parent.iterdir()] == ["seed-7.mp4"]
    stats = await sim.stats()
    assert (stats["creates"], stats["downloads"], stats["duplicate_paid"]) == (1, 1, 0)


@pytest.mark.anyio
async def test_the_openai_base_path_works_too(sim: Sim, server: str, key: str) -> None:
    provider = get_provider("lumenfall", base_url=server.replace("/v1", "/openai/v1"))
    async with provider.client() as client:
        done = await completed(provider, client)  # type: ignore[arg-type]
        found = await provider.find_by_key(client, "gridrun-contract-1")
    assert found is not None and found.id == done.id


@pytest.mark.anyio
async def test_idempotent_replay_returns_the_same_video(sim: Sim, lumenfall: LumenfallProvider) -> None:
    async with lumenfall.client() as client:
        first = await lumenfall.submit(client, body(lumenfall))
        again = await lumenfall.submit(client, body(lumenfall))
        other = await lumenfall.submit(client, body(lumenfall, "gridrun-contract-2", seed=8))
    assert again.id == first.id and other.id != first.id
    stats = await sim.stats()
    assert (stats["creates"], stats["replays"], stats["duplicate_paid"]) == (2, 1, 0)


@pytest.mark.anyio
async def test_same_key_other_body_can_be_a_409(sim: Sim, lumenfall: LumenfallProvider) -> None:
    await sim.configure(idempotency_conflict="error")
    async with lumenfall.client() as client:
        await lumenfall.submit(client, body(lumenfall))
        with pytest.raises(RejectedError) as info:
            await lumenfall.submit(client, body(lumenfall, seed=8))
    assert (info.value.status, info.value.code) == (409, "IDEMPOTENCY_CONFLICT")


@pytest.mark.anyio
async def test_invalid_request_and_unknown_video_are_rejections(sim: Sim, lumenfall: LumenfallProvider) -> None:
    async with lumenfall.client() as client:
        with pytest.raises(RejectedError) as bad:
            await lumenfall.submit(client, body(lumenfall, duration=7))
        with pytest.raises(RejectedError) as missing:
            await lumenfall.get(client, "video_nope")
    assert (bad.value.status, bad.value.code) == (400, "INVALID_REQUEST") and "duration" in str(bad.value)
    assert (missing.value.status, missing.value.code) == (404, "NOT_FOUND")
    assert (await sim.stats())["creates"] == 0


@pytest.mark.anyio
async def test_wrong_key_is_rejected_without_showing_it(sim: Sim, lumenfall: LumenfallProvider) -> None:
    await sim.configure(api_key="lmnfl_the_right_one")
    async with lumenfall.client() as client:
        with pytest.raises(RejectedError) as info:
            await lumenfall.submit(client, body(lumenfall))
    assert (info.value.status, info.value.code) == (401, "AUTHENTICATION_FAILED")
    no_secret(info.value)


@pytest.mark.anyio
async def test_cancel(sim: Sim, lumenfall: LumenfallProvider) -> None:
    await sim.configure(render_time=30.0)
    async with lumenfall.client() as client:
        created = await lumenfall.submit(client, body(lumenfall))
        await lumenfall.cancel(client, created.id)
        after = await lumenfall.get(client, created.id)
    assert after.terminal and after.status != "completed"
    assert (await sim.stats())["cancelled"] == 1


@pytest.mark.anyio
async def test_list_pages_over_http(sim: Sim, server: str) -> None:
    provider = get_provider("sim", base_url=server)
    async with provider.client() as client:
        ids = [(await provider.submit(client, provider.build_request(PARAMS, model=MODEL, idempotency_key=f"k{i}"))).id for i in range(3)]
        first, cursor = await provider.list(client, limit=2)
        rest, end = await provider.list(client, limit=2, after=cursor)
    assert [v.id for v in first + rest] == ids[::-1]
    assert cursor == first[-1].id and end is None


# -- reconciliation ----------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_reset_after_create_is_outcome_unknown_and_find_by_key_recovers_it(sim: Sim, lumenfall: LumenfallProvider) -> None:
    await sim.configure(**fault("create", "reset_after"))
    started = time.time()
    async with lumenfall.client() as client:
        with pytest.raises(OutcomeUnknownError) as info:
            await lumenfall.submit(client, body(lumenfall))
        found = await lumenfall.find_by_key(client, "gridrun-contract-1", created_after=started - 1)
        assert found is not None
        assert await lumenfall.find_by_key(client, "gridrun-contract-other") is None
        replay = await lumenfall.submit(client, body(lumenfall))
    assert isinstance(info.value.__cause__, httpx.TransportError)
    assert replay.id == found.id
    stats = await sim.stats()
    assert (stats["creates"], stats["replays"], stats["duplicate_paid"]) == (1, 1, 0)


@pytest.mark.anyio
async def test_reset_before_create_is_outcome_unknown_and_nothing_is_found(sim: Sim, lumenfall: LumenfallProvider) -> None:
    await sim.configure(**fault("create", "reset_before"))
    async with lumenfall.client() as client:
        with pytest.raises(OutcomeUnknownError):
            await lumenfall.submit(client, body(lumenfall))
        assert await lumenfall.find_by_key(client, "gridrun-contract-1") is None
    assert (await sim.stats())["creates"] == 0


@pytest.mark.anyio
async def test_find_by_key_ignores_old_entries(sim: Sim, lumenfall: LumenfallProvider) -> None:
    async with lumenfall.client() as client:
        await lumenfall.submit(client, body(lumenfall))
        assert await lumenfall.find_by_key(client, "gridrun-contract-1", created_after=time.time() + 5) is None


# -- every fault knob --------------------------------------------------------------------------------

RATE_STYLES = [
    ("seconds", 3.0, 3.0, 3.0),
    ("date", 3.0, 3.0, 4.0),
    ("ms", 1.5, 1.5, 1.5),
    ("body", 1.5, 2.0, 2.0),
    ("all", 1.5, 2.0, 2.0),
    ("none", 1.5, None, None),
]


@pytest.mark.parametrize("op", ["submit", "get"])
@pytest.mark.parametrize(("style", "advertised", "low", "high"), RATE_STYLES, ids=[s[0] for s in RATE_STYLES])
@pytest.mark.anyio
async def test_rate_limited_with_every_retry_style(
    sim: Sim, lumenfall: LumenfallProvider, op: str, style: str, advertised: float, low: float | None, high: float | None
) -> None:
    route = "create" if op == "submit" else "get"
    await sim.configure(**fault(route, "rate_limited", retry_after=advertised, retry_style=style))
    async with lumenfall.client() as client:
        with pytest.raises(RateLimitedError) as info:
            if op == "submit":
                await lumenfall.submit(client, body(lumenfall))
            else:
                await lumenfall.get(client, "video_any")
    assert (info.value.status, info.value.code) == (429, "RATE_LIMITED")
    if low is None or high is None:
        assert info.value.retry_after is None
    else:
        assert info.value.retry_after is not None
        assert low - 0.01 <= info.value.retry_after <= high + 0.01


@pytest.mark.anyio
async def test_the_request_rate_limit(sim: Sim, lumenfall: LumenfallProvider) -> None:
    await sim.configure(rate_limit=0.5, rate_burst=1, retry_after_style="all")
    async with lumenfall.client() as client:
        with pytest.raises(RejectedError):
            await lumenfall.get(client, "video_any")
        with pytest.raises(RateLimitedError) as info:
            await lumenfall.get(client, "video_any")
    assert info.value.retry_after is not None and 1.0 <= info.value.retry_after <= 2.0


SERVER = [(500, "INTERNAL_ERROR"), (502, "ALL_PROVIDERS_EXHAUSTED"), (503, "UPSTREAM_ERROR"), (504, "UPSTREAM_ERROR")]


@pytest.mark.parametrize("route", ["create", "get", "requests"])
@pytest.mark.parametrize(("status", "code"), SERVER)
@pytest.mark.anyio
async def test_server_errors(sim: Sim, lumenfall: LumenfallProvider, route: str, status: int, code: str) -> None:
    await sim.configure(**fault(route, "server_error", status=status))
    async with lumenfall.client() as client:
        with pytest.raises(ServerError) as info:
            if route == "create":
                await lumenfall.submit(client, body(lumenfall))
            elif route == "get":
                await lumenfall.get(client, "video_any")
            else:
                await lumenfall.find_by_key(client, "gridrun-contract-1")
    assert (info.value.status, info.value.code) == (status, code)


@pytest.mark.anyio
async def test_error_rate_knob(sim: Sim, lumenfall: LumenfallProvider) -> None:
    await sim.configure(error_rate=1.0, error_statuses=[503])
    async with lumenfall.client() as client:
        with pytest.raises(ServerError) as info:
            await lumenfall.get(client, "video_any")
    assert info.value.status == 503


@pytest.mark.parametrize(
    ("kind", "status", "code"), [("auth_failed", 401, "AUTHENTICATION_FAILED"), ("insufficient_balance", 402, "INSUFFICIENT_BALANCE")]
)
@pytest.mark.anyio
async def test_refusals_on_create(sim: Sim, lumenfall: LumenfallProvider, kind: str, status: int, code: str) -> None:
    await sim.configure(**fault("create", kind))
    async with lumenfall.client() as client:
        with pytest.raises(RejectedError) as info:
            await lumenfall.submit(client, body(lumenfall))
    assert (info.value.status, info.value.code) == (status, code)
    no_secret(info.value)
    assert (await sim.stats())["creates"] == 0


@pytest.mark.anyio
async def test_balance_knob(sim: Sim, lumenfall: LumenfallProvider) -> None:
    await sim.configure(balance=0.5)
    async with lumenfall.client() as client:
        await lumenfall.submit(client, body(lumenfall))
        with pytest.raises(RejectedError) as info:
            await lumenfall.submit(client, body(lumenfall, "gridrun-contract-2"))
    assert info.value.code == "INSUFFICIENT_BALANCE"


@pytest.mark.anyio
async def test_malformed_json_on_create_is_outcome_unknown(sim: Sim, lumenfall: LumenfallProvider) -> None:
    await sim.configure(**fault("create", "malformed_json"))
    async with lumenfall.client() as client:
        with pytest.raises(OutcomeUnknownError):
            await lumenfall.submit(client, body(lumenfall))
        found = await lumenfall.find_by_key(client, "gridrun-contract-1")
    assert found is not None
    assert (await sim.stats())["creates"] == 1


@pytest.mark.parametrize("route", ["get", "requests", "list"])
@pytest.mark.anyio
async def test_malformed_json_elsewhere_is_a_server_error(sim: Sim, server: str, route: str) -> None:
    await sim.configure(**fault(route, "malformed_json"))
    provider = get_provider("sim", base_url=server)
    async with provider.client() as client:
        created = await provider.submit(client, provider.build_request(PARAMS, model=MODEL, idempotency_key="k"))
        with pytest.raises(ServerError) as info:
            if route == "get":
                await provider.get(client, created.id)
            elif route == "requests":
                await provider.find_by_key(client, "k")
            else:
                await provider.list(client)
    assert info.value.code == "MALFORMED_RESPONSE"


@pytest.mark.parametrize("value", [None, "rendering"])
@pytest.mark.anyio
async def test_unknown_status_value(sim: Sim, lumenfall: LumenfallProvider, value: str | None) -> None:
    await sim.configure(**fault("get", "unknown_status", **({"value": value} if value else {})))
    async with lumenfall.client() as client:
        created = await lumenfall.submit(client, body(lumenfall))
        odd = await lumenfall.get(client, created.id)
    assert odd.status == "unknown" and odd.raw_status == (value or "processing")


@pytest.mark.parametrize("code", [None, "UPSTREAM_ERROR"])
@pytest.mark.anyio
async def test_job_failure(sim: Sim, lumenfall: LumenfallProvider, code: str | None) -> None:
    await sim.configure(**fault("create", "job_failure", **({"code": code} if code else {})))
    async with lumenfall.client() as client:
        created = await lumenfall.submit(client, body(lumenfall))
        done = await until_done(lumenfall, client, created.id)
    assert done.status == "failed" and done.url is None
    assert done.error_code == (code or "CONTENT_POLICY_VIOLATION") and done.error_message
    assert done.cost_micros == 0


@pytest.mark.anyio
async def test_failure_rate_knob(sim: Sim, lumenfall: LumenfallProvider) -> None:
    await sim.configure(failure_rate=1.0, failure_code="CONTENT_POLICY_VIOLATION")
    async with lumenfall.client() as client:
        created = await lumenfall.submit(client, body(lumenfall))
        done = await until_done(lumenfall, client, created.id)
    assert (done.status, done.error_code) == ("failed", "CONTENT_POLICY_VIOLATION")


@pytest.mark.parametrize("route", ["create", "get"])
@pytest.mark.anyio
async def test_reset_mid_call(sim: Sim, lumenfall: LumenfallProvider, route: str) -> None:
    await sim.configure(**fault(route, "reset"))
    async with lumenfall.client() as client:
        if route == "create":
            with pytest.raises(OutcomeUnknownError):
                await lumenfall.submit(client, body(lumenfall))
        else:
            # An idempotent GET is sent once more on a new connection (RFC 9112 §9.3.1); a create never is.
            with pytest.raises(RejectedError) as info:
                await lumenfall.get(client, "video_any")
            assert info.value.status == 404
    stats = await sim.stats()
    assert stats["requests"].get(route, 0) == (1 if route == "create" else 2)


@pytest.mark.anyio
async def test_reset_rate_knob_on_get(sim: Sim, lumenfall: LumenfallProvider) -> None:
    await sim.configure(reset_rate=1.0)
    async with lumenfall.client() as client:
        with pytest.raises(TransportError):
            await lumenfall.get(client, "video_any")


@pytest.mark.parametrize("kind", ["slow", "stall_body"])
@pytest.mark.anyio
async def test_slow_answers_time_out(sim: Sim, lumenfall: LumenfallProvider, kind: str) -> None:
    await sim.configure(script=[{"route": "get", "fault": kind, "nth": [1], "delay": 0.6}, {"route": "create", "fault": kind, "nth": [1], "delay": 0.6}])
    async with lumenfall.client(timeout=0.2) as client:
        with pytest.raises(TransportError) as info:
            await lumenfall.get(client, "video_any")
        assert isinstance(info.value.__cause__, httpx.ReadTimeout)
        with pytest.raises(OutcomeUnknownError):
            await lumenfall.submit(client, body(lumenfall))


@pytest.mark.anyio
async def test_waiting_for_a_pooled_connection_is_a_connect_error_even_on_submit(
    sim: Sim, lumenfall: LumenfallProvider
) -> None:
    await sim.configure(**fault("get", "slow", delay=0.5))
    outcome: list[BaseException] = []
    async with lumenfall.client(max_connections=1, timeout=2.0) as client:
        client.timeout = httpx.Timeout(2.0, pool=0.1)

        async def submit_while_the_pool_is_busy() -> None:
            await anyio.sleep(0.05)
            try:
                await lumenfall.submit(client, body(lumenfall))
            except ProviderError as exc:
                outcome.append(exc)

        async with anyio.create_task_group() as tg:
            tg.start_soon(submit_while_the_pool_is_busy)
            with pytest.raises(RejectedError):
                await lumenfall.get(client, "video_slow")
    assert len(outcome) == 1 and type(outcome[0]) is ConnectError
    assert isinstance(outcome[0].__cause__, (httpx.PoolTimeout, httpx.ConnectTimeout))
    assert (await sim.stats())["creates"] == 0


@pytest.mark.anyio
async def test_slow_rate_knob_within_the_timeout_is_fine(sim: Sim, lumenfall: LumenfallProvider) -> None:
    await sim.configure(slow_rate=1.0, slow_delay=0.05)
    async with lumenfall.client(timeout=2.0) as client:
        assert (await lumenfall.submit(client, body(lumenfall))).id


# -- download faults ---------------------------------------------------------------------------------


@pytest.mark.parametrize("status", [403, 404, 410])
@pytest.mark.anyio
async def test_expired_url_fault(sim: Sim, lumenfall: LumenfallProvider, tmp_path: Path, status: int) -> None:
    await sim.configure(**fault("file", "expired", status=status))
    async with lumenfall.client() as client:
        done = await completed(lumenfall, client)
        assert done.url
        with pytest.raises(ExpiredError) as info:
            await lumenfall.download(client, done.url, tmp_path / "a.mp4")
        again = await lumenfall.download(client, done.url, tmp_path / "a.mp4")
    assert info.value.status == status
    assert again.size_bytes > 0


@pytest.mark.parametrize("status", [403, 410])
@pytest.mark.anyio
async def test_url_ttl_zero_expires_at_once(sim: Sim, lumenfall: LumenfallProvider, tmp_path: Path, status: int) -> None:
    await sim.configure(url_ttl=0.0, expired_status=status)
    async with lumenfall.client() as client:
        done = await completed(lumenfall, client)
        with pytest.raises(ExpiredError) as info:
            await lumenfall.download(client, done.url or "", tmp_path / "a.mp4")
    assert info.value.status == status
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("prefix", ["/v1", "/openai/v1"])
@pytest.mark.anyio
async def test_a_completed_video_without_output_is_fetched_from_its_content_route_with_the_key(
    sim: Sim, server: str, key: str, tmp_path: Path, prefix: str
) -> None:
    """The OpenAI shape has no `output`: the bytes are at `GET {base}/videos/{id}/content`, at the API itself
    (so the key goes with them), under either base path."""
    await sim.configure(api_key=KEY, omit_output=True)
    base = server.removesuffix("/v1") + prefix
    provider = get_provider("lumenfall", base_url=base)
    assert isinstance(provider, LumenfallProvider)
    async with provider.client() as client:
        done = await completed(provider, client)
        assert done.url == f"{base}/videos/{done.id}/content" and done.expires_at is not None
        got = await provider.download(client, done.url, tmp_path / "a.mp4")
    assert got.path.read_bytes()[4:8] == b"ftyp" and got.sha256 == hashlib.sha256(got.path.read_bytes()).hexdigest()
    stats = await sim.stats()
    assert stats["requests"]["content"] == 1 and stats["downloads"] == 1 and "file" not in stats["requests"]


@pytest.mark.parametrize(("prefix", "status"), [("/v1", 403), ("/openai/v1", 410)])
@pytest.mark.anyio
async def test_expired_content_is_an_expired_download(
    sim: Sim, server: str, key: str, tmp_path: Path, prefix: str, status: int
) -> None:
    await sim.configure(omit_output=True, url_ttl=0.0, refresh_urls=False, expired_status=status)
    provider = get_provider("lumenfall", base_url=server.removesuffix("/v1") + prefix)
    async with provider.client() as client:
        done = await completed(provider, client)  # type: ignore[arg-type]
        with pytest.raises(ExpiredError) as info:
            await provider.download(client, done.url or "", tmp_path / "a.mp4")
    assert info.value.status == status
    assert list(tmp_path.iterdir()) == []


DOWNLOAD_FAULTS = [("truncated", "TRUNCATED"), ("reset_mid_body", "TRUNCATED"), ("wrong_content_type", "WRONG_TYPE"), ("corrupt", "CORRUPT")]


@pytest.mark.parametrize(("kind", "code"), DOWNLOAD_FAULTS)
@pytest.mark.anyio
async def test_download_faults_leave_nothing_behind(
    sim: Sim, lumenfall: LumenfallProvider, tmp_path: Path, kind: str, code: str
) -> None:
    await sim.configure(**fault("file", kind))
    dest = tmp_path / "out" / "a.mp4"
    async with lumenfall.client() as client:
        done = await completed(lumenfall, client)
        with pytest.raises(DownloadError) as info:
            await lumenfall.download(client, done.url or "", dest)
        assert info.value.code == code
        assert list(dest.parent.iterdir()) == []
        good = await lumenfall.download(client, done.url or "", dest)
    assert good.sha256 == hashlib.sha256(dest.read_bytes()).hexdigest()
    assert [p.name for p in dest.parent.iterdir()] == ["a.mp4"]


@pytest.mark.anyio
async def test_download_server_error_and_slow_body(sim: Sim, lumenfall: LumenfallProvider, tmp_path: Path) -> None:
    # the body stalls well past the read timeout, which is long enough for a loaded machine's other requests
    await sim.configure(script=[{"route": "file", "fault": "server_error", "status": 503, "nth": [1]}, {"route": "file", "fault": "stall_body", "delay": 4.0, "nth": [2]}])
    async with lumenfall.client(timeout=1.5) as client:
        done = await completed(lumenfall, client)
        with pytest.raises(ServerError):
            await lumenfall.download(client, done.url or "", tmp_path / "a.mp4")
        with pytest.raises((DownloadError, TransportError)):
            await lumenfall.download(client, done.url or "", tmp_path / "a.mp4")
    assert list(tmp_path.iterdir()) == []


# -- the key -----------------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_the_key_never_shows_in_any_error(sim: Sim, lumenfall: LumenfallProvider, tmp_path: Path) -> None:
    errors: list[ProviderError] = []
    rules: list[tuple[str, str, dict[str, Any]]] = [
        ("create", "reset_after", {}),
        ("create", "server_error", {"status": 502}),
        ("get", "malformed_json", {}),
        ("get", "rate_limited", {"retry_style": "all"}),
        ("create", "auth_failed", {}),
    ]
    for route, kind, more in rules:
        await sim.configure(**fault(route, kind, **more))
        async with lumenfall.client() as client:
            try:
                if route == "create":
                    await lumenfall.submit(client, body(lumenfall))
                else:
                    await lumenfall.get(client, "video_any")
            except ProviderError as exc:
                errors.append(exc)
    assert len(errors) == len(rules)
    for error in errors:
        no_secret(error)


@pytest.mark.anyio
async def test_the_tls_context_is_made_at_the_first_https_request_and_only_then(server: str) -> None:
    import socket
    import ssl

    from runner.providers.aio import AiohttpTransport

    made: list[ssl.SSLContext] = []

    def make() -> ssl.SSLContext:
        made.append(ssl.create_default_context())
        return made[-1]

    with socket.socket() as s:  # a port nothing listens on: the https request fails at connect
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]
    async with httpx.AsyncClient(transport=AiohttpTransport(max_connections=2, ssl_context=make)) as client:
        assert (await client.get(f"{server.rsplit('/v1', 1)[0]}/_sim/stats")).status_code == 200
        assert made == []
        for _ in range(2):
            with pytest.raises(httpx.ConnectError):
                await client.get(f"https://127.0.0.1:{closed}/v1/videos")
    assert len(made) == 1


@pytest.mark.anyio
@pytest.mark.parametrize("stack", ["aiohttp", "httpx"])
async def test_a_creates_answer_says_when_the_simulator_answered_on_either_http_stack(
    lumenfall: LumenfallProvider, sim: Sim, monkeypatch: pytest.MonkeyPatch, stack: str
) -> None:
    """The simulator stamps its answers with a Date off its own clock, as a provider's server does, and the client
    reads it on either HTTP stack: a new video was made in the second of its answer (or the one before); a replay
    of its key names the same video, made when it was."""
    monkeypatch.setenv("GRIDRUN_HTTP", stack)
    async with lumenfall.client() as client:
        made = await lumenfall.submit(client, body(lumenfall, "gridrun-date-1"))
        again = await lumenfall.submit(client, body(lumenfall, "gridrun-date-1"))
    assert made.answered_at is not None and made.created_at is not None
    assert made.created_at <= made.answered_at <= made.created_at + 1
    assert again.id == made.id and again.created_at == made.created_at
    assert again.answered_at is not None and again.answered_at >= made.answered_at
    assert (await sim.stats())["replays"] == 1
