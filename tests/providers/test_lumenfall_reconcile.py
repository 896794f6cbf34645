from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import httpx
import pytest
from execkit import quick_backoff, sim_provider, stats, write_manifest
from providers_kit import video

from runner import api, executor
from runner.errors import ServerError
from runner.options import RunOptions
from runner.providers import get_provider
from runner.providers.lumenfall import LumenfallProvider

Client = Callable[[Callable[[httpx.Request], httpx.Response]], httpx.AsyncClient]
KEY_A = "gridrun-aaaaaaaaaaaaaaaaaaaaaaaa-1"


def entry(key: str | None, video_id: str | None, created: int = 1_800_000_000, **over: Any) -> dict[str, Any]:
    out = {
        "id": f"req_{video_id or 'none'}",
        "object": "request",
        "created_at": created,
        "status": "pending",
        "endpoint": "/v1/videos",
        "idempotency_key": key,
        "video_id": video_id,
    }
    out.update(over)
    return out


def log_server(pages: list[dict[str, Any]], seen: list[httpx.Request]) -> Callable[[httpx.Request], httpx.Response]:
    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if request.url.path.endswith("/requests"):
            n = sum(1 for r in seen if r.url.path.endswith("/requests")) - 1
            return httpx.Response(200, json=pages[min(n, len(pages) - 1)])
        video_id = request.url.path.rsplit("/", 1)[1]
        return httpx.Response(200, json=video(id=video_id, status="in_progress"))

    return handler


@pytest.mark.anyio
async def test_find_by_key_reads_the_request_log_then_the_video(provider: LumenfallProvider, mock: Client) -> None:
    seen: list[httpx.Request] = []
    page = {"object": "list", "data": [entry(KEY_A, "video_aa")], "has_more": False}
    async with mock(log_server([page], seen)) as client:
        found = await provider.find_by_key(client, KEY_A, created_after=1_799_999_999.7)
    assert found is not None and found.id == "video_aa" and found.status == "in_progress"
    log = seen[0]
    assert str(log.url).startswith("https://api.lumenfall.ai/v1/requests?")
    assert log.url.params["idempotency_key"] == KEY_A
    assert log.url.params["created_after"] == "1799999999"
    assert seen[1].url.path == "/v1/videos/video_aa"


@pytest.mark.anyio
async def test_find_by_key_under_an_openai_base_uses_the_native_root(key: str) -> None:
    provider = get_provider("lumenfall", base_url="https://api.lumenfall.ai/openai/v1")
    assert isinstance(provider, LumenfallProvider)
    seen: list[httpx.Request] = []
    page = {"data": [entry(KEY_A, "video_aa")], "has_more": False}
    async with provider.client(transport=httpx.MockTransport(log_server([page], seen))) as client:
        found = await provider.find_by_key(client, KEY_A)
    assert found is not None
    assert seen[0].url.path == "/v1/requests"
    assert seen[1].url.path == "/openai/v1/videos/video_aa"


@pytest.mark.anyio
async def test_find_by_key_ignores_entries_of_other_keys(provider: LumenfallProvider, mock: Client) -> None:
    seen: list[httpx.Request] = []
    page = {"data": [entry("gridrun-other-1", "video_x"), entry(None, "video_y")], "has_more": False}
    async with mock(log_server([page], seen)) as client:
        assert await provider.find_by_key(client, KEY_A) is None
    assert len(seen) == 1


@pytest.mark.anyio
async def test_find_by_key_skips_rejected_creates_without_a_video(provider: LumenfallProvider, mock: Client) -> None:
    seen: list[httpx.Request] = []
    page = {"data": [entry(KEY_A, None, status="rejected"), entry(KEY_A, "video_ok")], "has_more": False}
    async with mock(log_server([page], seen)) as client:
        found = await provider.find_by_key(client, KEY_A)
    assert found is not None and found.id == "video_ok"


@pytest.mark.anyio
async def test_find_by_key_pages_back_with_created_before(provider: LumenfallProvider, mock: Client) -> None:
    seen: list[httpx.Request] = []
    pages = [
        {"data": [entry("k1", "v1", 1_800_000_300), entry("k2", "v2", 1_800_000_200)], "has_more": True},
        {"data": [entry(KEY_A, "video_aa", 1_800_000_100)], "has_more": False},
    ]
    async with mock(log_server(pages, seen)) as client:
        found = await provider.find_by_key(client, KEY_A)
    assert found is not None and found.id == "video_aa"
    assert "created_before" not in seen[0].url.params
    assert seen[1].url.params["created_before"] == "1800000201"


@pytest.mark.anyio
async def test_find_by_key_stops_when_paging_makes_no_progress(provider: LumenfallProvider, mock: Client) -> None:
    seen: list[httpx.Request] = []
    pages = [{"data": [entry("k1", "v1", 1_800_000_300)], "has_more": True}]
    async with mock(log_server(pages, seen)) as client:
        with pytest.raises(LookupError, match="in one second"):
            await provider.find_by_key(client, KEY_A)
    assert len(seen) == 2


@pytest.mark.anyio
async def test_find_by_key_cannot_tell_when_the_log_goes_on_past_the_pages_it_reads(
    provider: LumenfallProvider, mock: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    from runner.providers import lumenfall

    monkeypatch.setattr(lumenfall, "MAX_LOG_PAGES", 2)
    seen: list[httpx.Request] = []
    pages = [{"data": [entry(f"k{i}", f"v{i}", 1_800_000_300 - 10 * i)], "has_more": True} for i in range(3)]
    async with mock(log_server(pages, seen)) as client:
        with pytest.raises(LookupError, match="newest 2 pages"):
            await provider.find_by_key(client, KEY_A)
    assert len(seen) == 2


@pytest.mark.anyio
async def test_a_log_without_idempotency_keys_cannot_answer(provider: LumenfallProvider, mock: Client) -> None:
    seen: list[httpx.Request] = []
    bare = entry(KEY_A, "video_aa")
    del bare["idempotency_key"]
    async with mock(log_server([{"data": [bare], "has_more": False}], seen)) as client:
        with pytest.raises(NotImplementedError, match="does not record idempotency keys"):
            await provider.find_by_key(client, KEY_A)


@pytest.mark.anyio
async def test_a_page_of_requests_without_keys_does_not_end_the_read(provider: LumenfallProvider, mock: Client) -> None:
    """A log that does not filter by the key: its newest page holds only other requests, which carry no key field
    (images, say); the next lists two videos made under the key. Both lookups read on: `find_by_key` finds a video,
    `videos_by_key` both."""
    seen: list[httpx.Request] = []
    others = [{k: v for k, v in entry(None, None, 1_800_000_900 - i, endpoint="/v1/images").items()
               if k != "idempotency_key"} for i in range(100)]
    pages = [{"data": others, "has_more": True},
             {"data": [entry(KEY_A, "video_b", 1_800_000_200), entry(KEY_A, "video_a", 1_800_000_100)],
              "has_more": False}]
    async with mock(log_server(pages, seen)) as client:
        assert await provider.videos_by_key(client, KEY_A) == {"video_a", "video_b"}
    seen.clear()
    async with mock(log_server(pages, seen)) as client:
        found = await provider.find_by_key(client, KEY_A)
    assert found is not None and found.id == "video_b"


@pytest.mark.anyio
async def test_an_empty_log_means_nothing_was_created(provider: LumenfallProvider, mock: Client) -> None:
    seen: list[httpx.Request] = []
    async with mock(log_server([{"data": [], "has_more": False}], seen)) as client:
        assert await provider.find_by_key(client, KEY_A) is None


@pytest.mark.anyio
async def test_find_by_key_malformed_log_is_a_server_error(provider: LumenfallProvider, mock: Client) -> None:
    async with mock(lambda r: httpx.Response(200, json={"object": "list"})) as client:
        with pytest.raises(ServerError):
            await provider.find_by_key(client, KEY_A)


@pytest.mark.anyio
async def test_lumenfall_has_no_list_endpoint(provider: LumenfallProvider, mock: Client) -> None:
    async with mock(lambda r: httpx.Response(500)) as client:
        with pytest.raises(NotImplementedError):
            await provider.list(client)


@pytest.mark.anyio
async def test_list_pages_with_the_openai_cursor() -> None:
    provider = get_provider("sim")
    assert isinstance(provider, LumenfallProvider)
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if "after" not in request.url.params:
            data = [video(id="v3"), video(id="v2")]
            return httpx.Response(200, json={"object": "list", "data": data, "first_id": "v3", "last_id": "v2", "has_more": True})
        return httpx.Response(200, json={"object": "list", "data": [video(id="v1", status="completed")], "has_more": False})

    async with provider.client(transport=httpx.MockTransport(handler)) as client:
        first, cursor = await provider.list(client, limit=2)
        second, end = await provider.list(client, limit=2, after=cursor)
    assert [v.id for v in first] == ["v3", "v2"] and cursor == "v2"
    assert [v.id for v in second] == ["v1"] and end is None
    assert seen[0].url.params["limit"] == "2" and seen[1].url.params["after"] == "v2"


@pytest.mark.anyio
async def test_list_parses_only_the_watched_ids_and_still_pages() -> None:
    provider = get_provider("sim")
    assert isinstance(provider, LumenfallProvider)

    def handler(request: httpx.Request) -> httpx.Response:
        if "after" not in request.url.params:  # no last_id: the cursor is the last item's id, watched or not
            data = [video(id="v3"), video(id="v2", status="bogus-but-unparsed", progress="x")]
            return httpx.Response(200, json={"object": "list", "data": data, "has_more": True})
        return httpx.Response(200, json={"object": "list", "data": [video(id="v1", status="completed")], "has_more": False})

    async with provider.client(transport=httpx.MockTransport(handler)) as client:
        first, cursor = await provider.list(client, only={"v1", "v3"})
        second, end = await provider.list(client, after=cursor, only={"v1"})
    assert [v.id for v in first] == ["v3"] and cursor == "v2"
    assert [(v.id, v.status) for v in second] == [("v1", "completed")] and end is None


@pytest.mark.anyio
async def test_the_client_keeps_no_cookies() -> None:
    provider = get_provider("sim")
    sent: list[str | None] = []

    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(request.headers.get("cookie"))
        return httpx.Response(200, headers={"set-cookie": "session=abc; Path=/"}, json=video(id="v1"))

    async with provider.client(transport=httpx.MockTransport(handler)) as client:
        await provider.get(client, "v1")
        await provider.get(client, "v1")
    assert sent == [None, None]


@pytest.mark.anyio
async def test_list_returns_a_video_still_in_its_known_status_unparsed() -> None:
    provider = get_provider("sim")
    assert isinstance(provider, LumenfallProvider)

    def handler(request: httpx.Request) -> httpx.Response:
        data = [
            video(id="v4", status="in_progress", progress=40),  # as known: id and status alone
            video(id="v3", status="completed", output={"url": "https://cdn.example/v3.mp4"}),  # parsed in full
            video(id="v2", status="failed"),        # known failed (ended): parsed in full
            video(id="v1", status="queued"),        # no known status: parsed in full
        ]
        return httpx.Response(200, json={"object": "list", "data": data, "has_more": False})

    async with provider.client(transport=httpx.MockTransport(handler)) as client:
        got, _ = await provider.list(client, only={"v4": "in_progress", "v3": "in_progress", "v2": "failed", "v1": None})
    by_id = {v.id: v for v in got}
    assert list(by_id) == ["v4", "v3", "v2", "v1"]
    v4 = by_id["v4"]
    assert (v4.status, v4.raw_status, v4.progress, v4.created_at) == ("in_progress", "in_progress", None, None)
    assert by_id["v3"].status == "completed" and by_id["v3"].url == "https://cdn.example/v3.mp4"
    assert by_id["v2"].status == "failed" and by_id["v1"].status == "queued"
    assert by_id["v1"].created_at is not None


@pytest.mark.anyio
@pytest.mark.parametrize("page", [[], [{"idempotency_key": "k9", "video_id": "v9"}]], ids=["empty", "no-times"])
async def test_find_by_key_cannot_tell_from_a_page_it_cannot_page_back_from(
    provider: LumenfallProvider, mock: Client, page: list[dict[str, Any]]
) -> None:
    seen: list[httpx.Request] = []
    async with mock(log_server([{"data": page, "has_more": True}], seen)) as client:
        with pytest.raises(LookupError, match="more entries follow"):
            await provider.find_by_key(client, KEY_A)


@pytest.mark.anyio
@pytest.mark.parametrize("status", ["completed", "pending", None])
async def test_find_by_key_cannot_tell_from_an_entry_with_the_key_and_no_video_it_can_read(
    provider: LumenfallProvider, mock: Client, status: str | None
) -> None:
    """An entry with the attempt's key whose video sits in a field gridrun does not read: something was made,
    so "not in the log" (which would send the job again, and pay twice) is not the answer."""
    seen: list[httpx.Request] = []
    odd = entry(KEY_A, None, status=status, resource={"video_id": "video_1"})
    page = {"data": [entry("gridrun-other-1", "video_x"), odd], "has_more": False}
    async with mock(log_server([page], seen)) as client:
        with pytest.raises(LookupError, match="names no video"):
            await provider.find_by_key(client, KEY_A)


@pytest.mark.anyio
@pytest.mark.parametrize("status", ["processing", "Rejected", "", {"code": "rejected"}, ["rejected"], 0])
async def test_find_by_key_takes_a_status_it_does_not_know_as_maybe_made(
    provider: LumenfallProvider, mock: Client, status: object
) -> None:
    """A log entry with the attempt's key, no video id and a status the protocol does not list (completed,
    upstream_failure, rejected, cancelled): not "nothing made", which would send the job again and pay twice."""
    seen: list[httpx.Request] = []
    page = {"data": [entry(KEY_A, None, status=status)], "has_more": False}
    async with mock(log_server([page], seen)) as client:
        with pytest.raises(LookupError, match="names no video"):
            await provider.find_by_key(client, KEY_A)
    assert len(seen) == 1


@pytest.mark.parametrize("status", ["processing", {"code": "queued"}], ids=["string", "object"])
def test_a_lost_create_whose_log_entry_has_a_status_gridrun_does_not_know_is_not_paid_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, status: object
) -> None:
    """The create's answer is lost at a provider that ignores keys; the log has the attempt's entry, with no video
    id and a status the protocol does not list. The job is left unknown for `reconcile`, never sent again."""
    monkeypatch.setattr(executor, "LOG_SETTLE", 0.2)
    quick_backoff(monkeypatch)
    m = write_manifest(tmp_path, n_seeds=1, styles=("anime",), run={"retries": 1},
                       sim={"render_time": 0.1, "honour_idempotency": False,
                            "script": [{"route": "create", "fault": "reset_after", "nth": [1]}]})
    prov = sim_provider(m)
    sim = prov.app.state.sim
    shown = sim.request_json
    monkeypatch.setattr(sim, "request_json", lambda e: {**shown(e), "status": status, "video_id": None})
    result = api.run(m, provider=prov, options=RunOptions(request_timeout=1.0), report=False)
    job = api.status(m).jobs[0]
    assert job.state == "unknown", (job.state, job.error)
    assert stats(prov)["creates"] == 1 and stats(prov)["duplicate_paid"] == 0
    assert result.exit_code != 0
