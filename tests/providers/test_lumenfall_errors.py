from __future__ import annotations

import contextlib
import json
from typing import Any, Callable

import httpx
import pytest
from providers_kit import KEY, no_secret, video

from runner.errors import (
    CancelNotTakenError,
    CancelRefusedError,
    ConnectError,
    OutcomeUnknownError,
    ProviderError,
    RateLimitedError,
    RejectedError,
    RetryableError,
    ServerError,
    TransportError,
)
from runner.providers import get_provider
from runner.providers.lumenfall import LumenfallProvider

Client = Callable[[Callable[[httpx.Request], httpx.Response]], httpx.AsyncClient]
BODY = {"model": "pixverse-v5.6", "prompt": "a fox", "idempotency_key": "gridrun-abc-1"}


def err(status: int, code: str | None, message: str, **extra: Any) -> dict[str, Any]:
    return {"error": {"message": message, "type": "error", "code": code, **extra}}


async def call(provider: LumenfallProvider, client: httpx.AsyncClient, op: str) -> Any:
    if op == "submit":
        return await provider.submit(client, dict(BODY))
    if op == "get":
        return await provider.get(client, "video_123")
    return await provider.cancel(client, "video_123")


# -- statuses ----------------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_submit_posts_json_with_the_key_in_body_and_header(provider: LumenfallProvider, mock: Client) -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(202, json=video())

    async with mock(handler) as client:
        status = await provider.submit(client, dict(BODY))
    assert status.id == "video_123" and status.status == "queued"
    request = seen[0]
    assert request.method == "POST" and request.url.path == "/v1/videos"
    assert json.loads(request.content) == BODY
    assert request.headers["idempotency-key"] == "gridrun-abc-1"
    assert request.headers["content-type"] == "application/json"


STATUS_CASES = [
    ("queued", {"status": "queued"}, "queued"),
    ("in_progress", {"status": "in_progress", "progress": 42}, "in_progress"),
    ("failed", {"status": "failed", "error": {"code": "CONTENT_POLICY_VIOLATION", "message": "nope"}}, "failed"),
    ("cancelled", {"status": "cancelled"}, "cancelled"),
    ("canceled", {"status": "canceled"}, "cancelled"),
    ("failed as cancelled", {"status": "failed", "error": {"code": "cancelled", "message": "by the client"}}, "cancelled"),
    ("upper case", {"status": "COMPLETED"}, "completed"),
    ("unknown value", {"status": "rendering"}, "unknown"),
    ("missing", {"status": None}, "unknown"),
]


@pytest.mark.parametrize(("fields", "expected"), [c[1:] for c in STATUS_CASES], ids=[c[0] for c in STATUS_CASES])
@pytest.mark.anyio
async def test_status_mapping(provider: LumenfallProvider, mock: Client, fields: dict[str, Any], expected: str) -> None:
    async with mock(lambda r: httpx.Response(200, json=video(**fields))) as client:
        status = await provider.get(client, "video_123")
    assert status.status == expected
    raw = fields["status"]
    assert status.raw_status == ("" if raw is None else raw)


@pytest.mark.anyio
async def test_completed_video_fields(provider: LumenfallProvider, mock: Client) -> None:
    obj = video(
        status="completed",
        progress=100,
        created_at="2027-01-15T08:00:00Z",
        completed_at=1_800_000_090_000,
        expires_at="1800003690",
        output={"url": "https://media.lumenfall.ai/v/1.mp4", "content_type": "video/mp4", "size_bytes": 123456},
        metadata={"provider": "fal", "cost_estimate": 0.35, "cost": 0.35, "cost_currency": "USD"},
    )
    async with mock(lambda r: httpx.Response(200, json=obj)) as client:
        s = await provider.get(client, "video_123")
    assert s.status == "completed" and s.terminal
    assert s.progress == 100
    assert s.url == "https://media.lumenfall.ai/v/1.mp4"
    assert s.content_type == "video/mp4" and s.size_bytes == 123456
    assert s.cost_micros == 350_000
    assert s.created_at == 1_800_000_000.0
    assert s.completed_at == 1_800_000_090.0
    assert s.expires_at == 1_800_003_690.0
    assert s.error_code is None


@pytest.mark.parametrize(
    ("metadata", "micros"),
    [
        ({"cost": "0.07"}, 70_000),
        ({"cost": 1.2345678}, 1_234_568),
        ({"cost": 0}, 0),
        ({"cost": None}, None),
        ({"cost": "n/a"}, None),
        ({"cost": -1}, None),
        ({"cost": 1e300}, None),
        ({"cost": "1000000000.000001"}, None),
        ({"cost": 1_000_000_000}, 1_000_000_000_000_000),
        ({"cost": 2, "cost_currency": "EUR"}, None),
        ({}, None),
    ],
)
@pytest.mark.anyio
async def test_cost_in_micros(provider: LumenfallProvider, mock: Client, metadata: dict[str, Any], micros: int | None) -> None:
    async with mock(lambda r: httpx.Response(200, json=video(metadata=metadata))) as client:
        assert (await provider.get(client, "video_123")).cost_micros == micros


@pytest.mark.anyio
async def test_failed_video_carries_error_code_and_message(provider: LumenfallProvider, mock: Client) -> None:
    obj = video(status="failed", error={"code": "CONTENT_POLICY_VIOLATION", "message": "flagged"})
    async with mock(lambda r: httpx.Response(200, json=obj)) as client:
        s = await provider.get(client, "video_123")
    assert (s.status, s.error_code, s.error_message) == ("failed", "CONTENT_POLICY_VIOLATION", "flagged")


# -- HTTP errors -------------------------------------------------------------------------------------

HTTP_CASES: list[tuple[str, int, dict[str, str], Any, type[ProviderError], str | None, float | None]] = [
    ("429 Retry-After", 429, {"Retry-After": "7"}, err(429, "RATE_LIMITED", "slow down"), RateLimitedError, "RATE_LIMITED", 7.0),
    ("429 retry-after-ms", 429, {"retry-after-ms": "1500"}, err(429, "RATE_LIMITED", "slow"), RateLimitedError, "RATE_LIMITED", 1.5),
    ("429 body only", 429, {}, {"detail": "Request was throttled.", "status": 429, "retry_after": 5}, RateLimitedError, "RATE_LIMITED", 5.0),
    ("429 nothing", 429, {}, None, RateLimitedError, "RATE_LIMITED", None),
    ("500", 500, {}, err(500, "UPSTREAM_ERROR", "boom"), ServerError, "UPSTREAM_ERROR", None),
    ("502 exhausted", 502, {}, err(502, "ALL_PROVIDERS_EXHAUSTED", "all down"), ServerError, "ALL_PROVIDERS_EXHAUSTED", None),
    ("503 Retry-After", 503, {"Retry-After": "30"}, err(503, None, "maintenance"), ServerError, None, 30.0),
    ("504 html", 504, {"content-type": "text/html"}, "<html><body>Gateway Timeout</body></html>", ServerError, None, None),
    ("408", 408, {}, None, ServerError, None, None),
    ("401", 401, {}, err(401, "AUTHENTICATION_FAILED", f"Invalid API key {KEY}"), RejectedError, "AUTHENTICATION_FAILED", None),
    ("401 no body", 401, {}, None, RejectedError, "AUTHENTICATION_FAILED", None),
    ("402", 402, {}, err(402, "INSUFFICIENT_BALANCE", "balance too low"), RejectedError, "INSUFFICIENT_BALANCE", None),
    ("400 invalid", 400, {}, err(400, "INVALID_REQUEST", "duration must be one of 5, 8, 10"), RejectedError, "INVALID_REQUEST", None),
    ("400 policy", 400, {}, err(400, "CONTENT_POLICY_VIOLATION", "prompt flagged"), RejectedError, "CONTENT_POLICY_VIOLATION", None),
    ("404 model", 404, {}, err(404, "MODEL_NOT_FOUND", "no such model"), RejectedError, "MODEL_NOT_FOUND", None),
    ("409 conflict", 409, {}, err(409, "IDEMPOTENCY_CONFLICT", "key reused with another body"), RejectedError, "IDEMPOTENCY_CONFLICT", None),
    ("422", 422, {}, {"detail": [{"loc": ["body", "seconds"], "msg": "bad"}]}, RejectedError, "INVALID_REQUEST", None),
    ("403", 403, {}, err(403, None, "forbidden"), RejectedError, "FORBIDDEN", None),
]


def respond(status: int, headers: dict[str, str], body: Any) -> Callable[[httpx.Request], httpx.Response]:
    def handler(request: httpx.Request) -> httpx.Response:
        if body is None:
            return httpx.Response(status, headers=headers)
        if isinstance(body, str):
            return httpx.Response(status, headers=headers, text=body)
        return httpx.Response(status, headers=headers, json=body)

    return handler


@pytest.mark.parametrize("op", ["submit", "get", "cancel"])
@pytest.mark.parametrize(
    ("status", "headers", "body", "kind", "code", "retry_after"), [c[1:] for c in HTTP_CASES], ids=[c[0] for c in HTTP_CASES]
)
@pytest.mark.anyio
async def test_http_error_mapping(
    provider: LumenfallProvider,
    mock: Client,
    op: str,
    status: int,
    headers: dict[str, str],
    body: Any,
    kind: type[ProviderError],
    code: str | None,
    retry_after: float | None,
) -> None:
    if op == "cancel" and status in (400, 409, 422) and code:
        kind = CancelRefusedError  # the provider's refusal to cancel that video, not a failed request
    async with mock(respond(status, headers, body)) as client:
        with pytest.raises(kind) as info:
            await call(provider, client, op)
    exc = info.value
    assert type(exc) is kind
    assert exc.status == status
    assert exc.code == code
    if isinstance(exc, RetryableError):
        assert exc.retry_after == retry_after
    no_secret(exc)
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        assert body["error"]["message"].replace(KEY, "[redacted]") in exc.message
    if status == 401:
        assert "LUMENFALL_API_KEY" in str(exc)


@pytest.mark.anyio
async def test_html_error_page_becomes_a_short_message(provider: LumenfallProvider, mock: Client) -> None:
    page = "<html>" + "x" * 5000 + "</html>"
    async with mock(respond(502, {}, page)) as client:
        with pytest.raises(ServerError) as info:
            await provider.get(client, "v")
    assert len(str(info.value)) < 600


@pytest.mark.parametrize("content", [b"{not json", b"[1, 2]", b"", b'{"object": "video"}'])
@pytest.mark.anyio
async def test_malformed_2xx_is_a_server_error_on_get(provider: LumenfallProvider, mock: Client, content: bytes) -> None:
    async with mock(lambda r: httpx.Response(200, content=content)) as client:
        with pytest.raises(ServerError) as info:
            await provider.get(client, "video_123")
    assert info.value.code == "MALFORMED_RESPONSE"


@pytest.mark.parametrize("content", [b"{not json", b"", b'{"status": "queued"}'])
@pytest.mark.anyio
async def test_malformed_2xx_on_submit_is_outcome_unknown(provider: LumenfallProvider, mock: Client, content: bytes) -> None:
    async with mock(lambda r: httpx.Response(202, content=content)) as client:
        with pytest.raises(OutcomeUnknownError, match="may have been created"):
            await provider.submit(client, dict(BODY))


@pytest.mark.anyio
async def test_cancel_accepts_204(provider: LumenfallProvider, mock: Client) -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(204)

    async with mock(handler) as client:
        await provider.cancel(client, "video/../x")
    assert seen[0].method == "DELETE"
    assert seen[0].url.raw_path == b"/v1/videos/video%2F..%2Fx"


@pytest.mark.anyio
@pytest.mark.parametrize(("status", "taken"), [(405, False), (501, False), (404, True), (500, True), (400, True)])
async def test_cancel_answered_405_or_501_is_a_provider_that_takes_no_cancels(
        provider: LumenfallProvider, mock: Client, status: int, taken: bool) -> None:
    """405 and 501 are said of the method on the route, never of the video: asking again cannot succeed. A 404 may
    be said of the video as much as of the route, so it stays a failed request like any other."""
    async with mock(lambda r: httpx.Response(status, json=err(status, None, "no"))) as client:
        with pytest.raises(ProviderError) as caught:
            await provider.cancel(client, "video_123")
    assert isinstance(caught.value, CancelNotTakenError) is not taken
    assert caught.value.status == status and f"HTTP {status}" in str(caught.value)


# -- transport errors --------------------------------------------------------------------------------

# A ProxyError is a proxy's refusal to open the tunnel to the host (or a SOCKS handshake's): nothing went through it.
NEVER_SENT = [httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout, httpx.ProxyError]
MAYBE_SENT = [httpx.ReadError, httpx.ReadTimeout, httpx.WriteError, httpx.WriteTimeout, httpx.RemoteProtocolError, httpx.LocalProtocolError]


def raising(kind: type[Exception]) -> Callable[[httpx.Request], httpx.Response]:
    def handler(request: httpx.Request) -> httpx.Response:
        raise kind(f"connection trouble near {KEY}", request=request)  # type: ignore[call-arg]

    return handler


@pytest.mark.parametrize("op", ["submit", "get", "cancel"])
@pytest.mark.parametrize("kind", NEVER_SENT)
@pytest.mark.anyio
async def test_errors_before_sending_are_connect_errors_even_on_submit(
    provider: LumenfallProvider, mock: Client, op: str, kind: type[Exception]
) -> None:
    async with mock(raising(kind)) as client:
        with pytest.raises(ConnectError) as info:
            await call(provider, client, op)
    assert isinstance(info.value.__cause__, kind)
    assert "not sent" in str(info.value)
    no_secret(info.value)


@pytest.mark.parametrize("kind", MAYBE_SENT)
@pytest.mark.anyio
async def test_errors_after_sending_are_transport_errors_on_get(
    provider: LumenfallProvider, mock: Client, kind: type[Exception]
) -> None:
    async with mock(raising(kind)) as client:
        with pytest.raises(TransportError) as info:
            await provider.get(client, "video_123")
    assert type(info.value) is TransportError
    assert isinstance(info.value.__cause__, kind)
    no_secret(info.value)


@pytest.mark.parametrize("kind", MAYBE_SENT)
@pytest.mark.anyio
async def test_errors_after_sending_are_outcome_unknown_on_submit(
    provider: LumenfallProvider, mock: Client, kind: type[Exception]
) -> None:
    async with mock(raising(kind)) as client:
        with pytest.raises(OutcomeUnknownError, match="may have been created") as info:
            await provider.submit(client, dict(BODY))
    assert isinstance(info.value.__cause__, kind)
    no_secret(info.value)


@pytest.mark.anyio
async def test_a_real_refused_connection_is_a_connect_error(key: str) -> None:
    provider = get_provider("lumenfall", base_url="http://127.0.0.1:9/v1")
    async with provider.client(timeout=2.0) as client:
        with pytest.raises(ConnectError):
            await provider.submit(client, dict(BODY))


@pytest.mark.anyio
async def test_https_to_a_server_answering_plain_http_says_to_write_http(key: str) -> None:
    """A base URL written https:// for a server that speaks plain HTTP (a served simulator, a local gateway): the
    TLS library's "wrong version number" is followed by what it means and what to write."""
    import socket
    import threading

    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]

    def answer() -> None:
        with contextlib.suppress(OSError):
            while True:
                conn, _ = server.accept()
                with conn:
                    conn.recv(4096)  # the TLS hello, which a plain HTTP server answers as a bad request
                    conn.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")

    thread = threading.Thread(target=answer, daemon=True)
    thread.start()
    try:
        provider = get_provider("lumenfall", base_url=f"https://127.0.0.1:{port}/v1")
        async with provider.client(timeout=5.0) as client:
            with pytest.raises(ConnectError) as info:
                await provider.submit(client, dict(BODY))
    finally:
        with contextlib.suppress(OSError):
            server.shutdown(socket.SHUT_RDWR)  # wakes the accept() the thread waits in
        server.close()
        thread.join(timeout=5)
    assert "the request was not sent; the server there answers in plain HTTP, not HTTPS: write its base URL with " \
           "http://" in str(info.value), info.value


@pytest.mark.anyio
async def test_a_poll_answered_with_another_videos_status_is_a_server_error(provider: LumenfallProvider, mock: Client) -> None:
    """The answer names another video: it is neither taken for this one (its URL would be downloaded as this
    job's video) nor final; the poll is tried again."""
    other = video(id="video_other", status="completed")
    async with mock(lambda r: httpx.Response(200, json=other)) as client:
        with pytest.raises(ServerError) as info:
            await provider.get(client, "video_123")
        assert info.value.code == "MISMATCHED_ID" and "video_other" in str(info.value)
        assert (await provider.get(client, "video_other")).status == "completed"


@pytest.mark.parametrize(("status", "body", "said", "not_said"), [
    (422, {"detail": [{"loc": ["body", "duration"], "msg": "value is not a valid enumeration member",
                       "type": "type_error.enum"}]},
     "POST /videos: body.duration: value is not a valid enumeration member", "'loc'"),
    (502, ("<html><head><title>502 Bad Gateway</title></head><body><center><h1>502 Bad Gateway</h1></center><hr>"
           "<center>cloudflare</center></body></html>"),
     "POST /videos: 502 Bad Gateway (an HTML page, not the API's answer)", "<"),
    (503, "upstream connect error\nreset reason: overflow\n" + "x" * 900, "POST /videos: upstream connect error",
     "reset reason"),
    (404, {"error": {"message": "POST /videos: no such route", "code": "NOT_FOUND"}},
     "NOT_FOUND: POST /videos: no such route", "POST /videos: POST /videos"),
])
@pytest.mark.anyio
async def test_error_bodies_are_said_by_their_message_not_shown_raw(
    provider: LumenfallProvider, mock: Client, status: int, body: Any, said: str, not_said: str
) -> None:
    async with mock(respond(status, {}, body)) as client:
        with pytest.raises(ProviderError) as info:
            await provider.submit(client, dict(BODY))
    assert said in str(info.value) and not_said not in str(info.value), str(info.value)


@pytest.mark.anyio
async def test_a_failed_video_message_echoing_the_key_is_recorded_without_it(provider: LumenfallProvider) -> None:
    echoed = f"upstream rejected request headers {{'Authorization': 'Bearer {KEY}'}}"

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json=video(id="v1", status="failed", error={"code": f"BAD_{KEY}", "message": echoed}))

    async with provider.client(transport=httpx.MockTransport(handler)) as client:
        got = await provider.get(client, "v1")
        sent = await provider.submit(client, {"model": "pixverse-v5.6", "prompt": "a fox", "idempotency_key": "k"})
    for status in (got, sent):
        assert KEY not in status.failure
        assert "[redacted]" in (status.error_message or "") and "[redacted]" in (status.error_code or "")


@pytest.mark.parametrize(("body", "code", "said"), [
    (b"", "MALFORMED_RESPONSE", "an empty answer"),
    (b"  \n", "MALFORMED_RESPONSE", "an empty answer"),
    (b"[1, 2]", "MALFORMED_RESPONSE", "JSON that is not an object"),
    (b'{"id": "vid', "MALFORMED_RESPONSE", "malformed JSON"),
    (b"<!doctype html><html><title>Log in - Portal</title></html>", "WEB_PAGE",
     "an HTML page 'Log in - Portal', not the API's answer: something between gridrun and the provider answered"),
    (b"<html><body>hello</body></html>", "WEB_PAGE",
     "an HTML page, not the API's answer: something between gridrun and the provider answered"),
])
def test_a_2xx_that_is_not_the_apis_json_says_what_it_is(body: bytes, code: str, said: str) -> None:
    """A web page is told apart (WEB_PAGE): a run takes it for a base URL that reaches no API."""
    from runner.providers.transport import decode

    response = httpx.Response(200, content=body, request=httpx.Request("GET", "http://h/v1/videos/v"))
    with pytest.raises(ServerError) as caught:
        decode(response, op="GET /videos/v", create=False, expect_body=True, key_env="K")
    assert str(caught.value) == f"HTTP 200, {code}: GET /videos/v: HTTP 200 with {said}"


@pytest.mark.anyio
async def test_an_answer_whose_video_id_or_url_holds_the_key_is_refused_and_never_records_it(
    provider: LumenfallProvider,
) -> None:
    """The id and URL are what gridrun asks about and fetches, so they cannot be recorded redacted: an answer holding
    the key in either is malformed (a create's outcome unknown, looked up by its key), said without the key."""
    keyed_id = video(id=f"vid-{KEY}", status="queued")
    keyed_url = video(id="v1", status="completed", output={"url": f"https://cdn.example/v1.mp4?sig={KEY}"})
    log = {"data": [{"id": "req_1", "idempotency_key": "k", "video_id": f"vid-{KEY}", "status": "completed"}],
           "has_more": False}
    asked: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        asked.append(request.url.path)
        if request.url.path.endswith("/requests"):
            return httpx.Response(200, json=log)
        return httpx.Response(200, json=keyed_id if request.method == "POST" else keyed_url)

    async with provider.client(transport=httpx.MockTransport(handler)) as client:
        with pytest.raises(OutcomeUnknownError) as created:
            await provider.submit(client, {"model": "pixverse-v5.6", "prompt": "a fox", "idempotency_key": "k"})
        with pytest.raises(ServerError) as polled:
            await provider.get(client, "v1")
        with pytest.raises(ServerError) as looked_up:
            await provider.find_by_key(client, "k")
    assert "video id holds the API key" in str(created.value) and "may have been created" in str(created.value)
    assert "video output URL holds the API key" in str(polled.value)
    assert polled.value.code == looked_up.value.code == "MALFORMED_RESPONSE"
    for error in (created.value, polled.value, looked_up.value):
        assert KEY not in str(error)
    assert not any(KEY in path for path in asked)  # the id found in the log is not asked about


@pytest.mark.anyio
async def test_a_content_type_echoing_the_key_is_recorded_without_it(provider: LumenfallProvider) -> None:
    answer = video(id="v1", status="completed", output={"url": "https://cdn.example/v1.mp4", "content_type": f"video/{KEY}"})
    async with provider.client(transport=httpx.MockTransport(lambda r: httpx.Response(200, json=answer))) as client:
        got = await provider.get(client, "v1")
    assert got.content_type == "video/[redacted]"


# -- the provider's request id, and a code it did not give ---------------------------------------------


@pytest.mark.parametrize(("headers", "body", "said"), [
    ({"x-request-id": "req_abc"}, {"detail": "prompt too long"}, "req_abc"),
    ({"request-id": "req_def"}, err(400, "INVALID_REQUEST", "bad duration"), "req_def"),
    ({}, {"detail": "prompt too long: 2100 characters, at most 2048", "trace_id": "tr-77aa"}, "tr-77aa"),
    ({}, err(400, "CONTENT_POLICY_VIOLATION", "flagged", request_id="req_in_error"), "req_in_error"),
], ids=["x-request-id", "request-id", "body trace_id", "error's request_id"])
@pytest.mark.anyio
async def test_an_error_keeps_the_request_id_the_provider_gave(
    provider: LumenfallProvider, mock: Client, headers: dict[str, str], body: Any, said: str
) -> None:
    async with mock(respond(400, headers, body)) as client:
        with pytest.raises(RejectedError) as info:
            await provider.submit(client, dict(BODY))
    assert f"(request id {said})" in str(info.value), str(info.value)


@pytest.mark.parametrize("status", [500, 401, 429])
@pytest.mark.anyio
async def test_a_request_id_is_kept_for_every_status(provider: LumenfallProvider, mock: Client, status: int) -> None:
    async with mock(respond(status, {"x-request-id": "req_xyz"}, {"detail": "no"})) as client:
        with pytest.raises(ProviderError) as info:
            await provider.get(client, "video_123")
    assert "(request id req_xyz)" in str(info.value)


@pytest.mark.anyio
async def test_a_request_id_that_is_not_a_short_token_is_left_out(provider: LumenfallProvider, mock: Client) -> None:
    body = {"detail": "bad", "request_id": "not an id, but a whole sentence " * 10}
    async with mock(respond(400, {}, body)) as client:
        with pytest.raises(RejectedError) as info:
            await provider.submit(client, dict(BODY))
    assert "request id" not in str(info.value)


@pytest.mark.anyio
async def test_a_code_the_provider_did_not_give_is_not_shown_as_its(provider: LumenfallProvider, mock: Client) -> None:
    """The code stays gridrun's name for the status (what a run decides by), but the text says none was given."""
    async with mock(respond(400, {}, {"detail": "prompt too long"})) as client:
        with pytest.raises(RejectedError) as info:
            await provider.submit(client, dict(BODY))
    assert info.value.code == "INVALID_REQUEST" and not info.value.code_given
    assert str(info.value).startswith("HTTP 400 (no code given): POST /videos: prompt too long"), str(info.value)
    async with mock(respond(400, {}, err(400, "INVALID_REQUEST", "bad duration"))) as client:
        with pytest.raises(RejectedError) as given:
            await provider.submit(client, dict(BODY))
    assert str(given.value).startswith("HTTP 400, INVALID_REQUEST: "), str(given.value)


@pytest.mark.parametrize("body", [
    {"error": {"code": f"invalid_key:{KEY}", "message": "key refused"}},
    {"error": {"code": "INVALID_REQUEST", "message": "refused"}, "request_id": KEY},
    # the key from character 150 on, where the excerpt of 160 is cut
    f"{'upstream gateway rejected the request; diagnostic dump follows, quote it to support: ':.<143}Bearer {KEY}",
    f"<html><head><title>{'denied by the edge of the gateway: ':.<143}Bearer {KEY} as sent</title></head></html>",
], ids=["code", "request-id", "long-text", "page-title"])
@pytest.mark.anyio
async def test_an_error_answer_echoing_the_key_anywhere_is_kept_without_any_of_it(
    provider: LumenfallProvider, mock: Client, body: Any
) -> None:
    """A gateway that echoes the request back: the key in the error's code, as its request id, or in a text long
    enough to be cut (the cut falling inside the key) is in no part of the error, not even its first characters."""
    async with mock(respond(400, {}, body)) as client:
        with pytest.raises(ProviderError) as info:
            await provider.submit(client, dict(BODY))
    exc = info.value
    said = f"{exc} {exc.code} {exc.message}"
    assert not any(KEY[i:i + 8] in said for i in range(len(KEY) - 7)), said
    no_secret(exc)


def test_a_2xx_web_page_whose_title_echoes_the_key_is_said_without_any_of_it() -> None:
    from runner.providers.transport import decode

    page = f"<html><title>{'signed in at the portal: ':.<143}Bearer {KEY} as sent</title></html>".encode()
    request = httpx.Request("GET", "http://h/v1/videos/v", headers={"Authorization": f"Bearer {KEY}"})
    with pytest.raises(ProviderError) as info:
        decode(httpx.Response(200, content=page, request=request), op="GET /videos/v", create=False,
               expect_body=True, key_env="LUMENFALL_API_KEY")
    assert not any(KEY[i:i + 8] in str(info.value) for i in range(len(KEY) - 7)), str(info.value)
