"""Requests sent straight on aiohttp (`transport._Direct`) against httpx's client over the same transport:
the same bytes reach the server, the same answers come back, and what the direct path does not carry
(redirects, compressed downloads, other transports, client features) goes through httpx's client."""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import json
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from providers_kit import serving

from runner.errors import OutcomeUnknownError, RejectedError, ServerError
from runner.providers import transport
from runner.providers.download import fetch_to_file
from runner.providers.transport import decode, make_client, send

KEY = "lmnfl_direct_test_key_123456"
FTYP = (24).to_bytes(4, "big") + b"ftypisom" + (512).to_bytes(4, "big") + b"isomiso2"
MP4 = FTYP + b"\0\0\0\x08moov" + (4000 - 32).to_bytes(4, "big") + b"mdat" + bytes(range(256)) * 15 + bytes(4000 - 40 - 256 * 15)


class Echo:
    """An ASGI app that records every request and answers by path."""

    def __init__(self) -> None:
        self.seen: list[dict[str, Any]] = []
        self.other: str = ""  # another server's origin, for redirects

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        path = scope["path"]
        self.seen.append({
            "method": scope["method"], "path": path, "query": scope["query_string"].decode(),
            "headers": [(k.decode("latin-1").lower(), v.decode("latin-1")) for k, v in scope["headers"]], "body": body,
        })
        headers: list[tuple[bytes, bytes]] = []
        status = 200
        if path.endswith("/json"):
            out, kind = json.dumps({"id": "video_1", "status": "queued", "é": "ü"}).encode(), b"application/json"
        elif path.endswith("/gzip-json"):
            out, kind = gzip.compress(b'{"id": "video_2"}'), b"application/json"
            headers.append((b"content-encoding", b"gzip"))
        elif path.endswith("/portal"):
            out, kind = b"<html><head><title>Sign in to the Wi-Fi</title></head><body></body></html>", b"text/html"
        elif path.endswith("/denied"):
            status, out, kind = 401, b'{"error": {"message": "bad key", "code": "AUTHENTICATION_FAILED"}}', b"application/json"
        elif path.endswith("/video"):
            out, kind = MP4, b"video/mp4"
        elif path.endswith("/gzip-video"):
            out, kind = gzip.compress(MP4), b"video/mp4"
            headers.append((b"content-encoding", b"gzip"))
        elif path.endswith("/gone"):
            status, out, kind = 410, b"", b"text/plain"
        elif path.endswith("/moved"):
            status, out, kind = 302, b"", b"text/plain"
            headers.append((b"location", f"{self.other}/files/video".encode()))
        else:
            status, out, kind = 404, b"{}", b"application/json"
        headers += [(b"content-type", kind), (b"content-length", str(len(out)).encode())]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": out})


@pytest.fixture(scope="module")
def servers() -> Iterator[tuple[Echo, str, Echo, str]]:
    api, media = Echo(), Echo()
    with serving(api) as api_url, serving(media) as media_url:
        api.other = media_url
        yield api, api_url, media, media_url


@pytest.fixture
def api(servers: tuple[Echo, str, Echo, str]) -> tuple[Echo, str]:
    servers[0].seen.clear()
    servers[2].seen.clear()
    return servers[0], servers[1]


def client_for(url: str) -> httpx.AsyncClient:
    return make_client(url + "/v1", headers={"Authorization": f"Bearer {KEY}"}, max_connections=4, timeout=10)


async def via_httpx(client: httpx.AsyncClient, method: str, url: str, **kwargs: Any) -> httpx.Response:
    """The same call through httpx's client (what `send` does when it cannot go direct)."""
    request = client.build_request(method, transport.request_url(client, url, kwargs.pop("params", None)), **kwargs)
    return await client.send(request)


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("method", "url", "kwargs"),
    [
        ("POST", "videos/json", {"json": {"model": "m", "prompt": "a fox, naïve ☃", "seconds": 5}, "headers": {"Idempotency-Key": "k-1"}}),
        ("GET", "videos/json", {"params": {"limit": 100, "order": "desc", "after": "video_9"}}),
        ("GET", "videos/json", {"headers": {"Accept": "text/plain"}}),
        ("DELETE", "videos/json", {}),
    ],
)
async def test_the_direct_path_sends_what_httpx_sends(api: tuple[Echo, str], method: str, url: str, kwargs: dict[str, Any]) -> None:
    echo, origin = api
    async with client_for(origin) as client:
        direct = await send(client, method, url, op="t", create=False, **kwargs)
        assert transport._direct(client) is not None, "the call did not go straight on aiohttp"
        through = await via_httpx(client, method, url, **dict(kwargs))
    first, second = echo.seen
    assert first == second
    assert ("authorization", f"Bearer {KEY}") in first["headers"]
    if "json" in kwargs:
        assert json.loads(first["body"]) == kwargs["json"]
    assert direct.status_code == through.status_code == 200
    assert direct.json() == through.json() == {"id": "video_1", "status": "queued", "é": "ü"}
    assert direct.headers["content-type"] == through.headers["content-type"]


@pytest.mark.anyio
async def test_a_compressed_answer_is_decoded(api: tuple[Echo, str]) -> None:
    async with client_for(api[1]) as client:
        response = await send(client, "GET", "gzip-json", op="t", create=False)
    assert response.json() == {"id": "video_2"}


@pytest.mark.anyio
async def test_a_plain_answer_is_read_as_it_came_and_what_is_not_the_apis_answer_is_told_as_before(
    api: tuple[Echo, str],
) -> None:
    """A plain 2xx answer of a JSON object straight on aiohttp is its status, headers and body (an `Answer`), with
    no `httpx.Response` built for it; one that is not the API's JSON object is an httpx.Response (naming the proxy
    it came through, if one) and told as httpx's would be."""
    async with client_for(api[1]) as client:
        answer = await send(client, "GET", "videos/json", op="t", create=False)
        page = await send(client, "GET", "portal", op="GET /portal", create=False)
    assert isinstance(answer, transport.Answer) and isinstance(page, httpx.Response)
    assert answer.headers["Content-Type"] == "application/json"
    assert decode(answer, op="t", create=False, expect_body=True, key_env="K") == {
        "id": "video_1", "status": "queued", "é": "ü"}
    with pytest.raises(ServerError, match=r"GET /portal: HTTP 200 with an HTML page 'Sign in to the Wi-Fi', not the"):
        decode(page, op="GET /portal", create=False, expect_body=True, key_env="K")
    with pytest.raises(OutcomeUnknownError, match=r"an HTML page .*; the job may have been created"):
        decode(page, op="POST /videos", create=True, expect_body=True, key_env="K")


@pytest.mark.anyio
async def test_an_error_answer_names_no_key(api: tuple[Echo, str]) -> None:
    async with client_for(api[1]) as client:
        response = await send(client, "GET", "denied", op="GET /denied", create=False)
        assert response.request.headers["authorization"] == f"Bearer {KEY}"
        with pytest.raises(RejectedError) as caught:
            decode(response, op="GET /denied", create=False, expect_body=True, key_env="LUMENFALL_API_KEY")
    assert caught.value.status == 401 and "bad key" in str(caught.value)
    assert KEY not in str(caught.value)


@pytest.mark.anyio
async def test_a_download_straight_on_aiohttp(api: tuple[Echo, str], tmp_path: Path) -> None:
    echo, origin = api
    seen: list[str] = []
    async with client_for(origin) as client:
        got = await fetch_to_file(client, f"{origin}/files/video", tmp_path / "a.mp4", on_saved=seen.append)
    assert (tmp_path / "a.mp4").read_bytes() == MP4
    assert got.sha256 == hashlib.sha256(MP4).hexdigest() == seen[0]
    assert got.size_bytes == len(MP4) and got.content_type == "video/mp4"
    [request] = echo.seen
    assert ("accept", "video/*, */*") in request["headers"]
    assert ("authorization", f"Bearer {KEY}") in request["headers"]  # the API's own origin


@pytest.mark.anyio
async def test_a_download_from_another_origin_goes_without_the_key(servers: tuple[Echo, str, Echo, str], api: tuple[Echo, str], tmp_path: Path) -> None:
    _, origin, media, media_url = servers
    async with client_for(origin) as client:
        await fetch_to_file(client, f"{media_url}/files/video", tmp_path / "b.mp4")
    assert (tmp_path / "b.mp4").read_bytes() == MP4
    [request] = media.seen
    assert not [v for k, v in request["headers"] if k == "authorization"]
    assert ("accept", "video/*, */*") in request["headers"]


@pytest.mark.anyio
async def test_a_redirected_download_is_followed_and_the_key_stays_home(servers: tuple[Echo, str, Echo, str], api: tuple[Echo, str], tmp_path: Path) -> None:
    echo, origin, media, _ = servers
    async with client_for(origin) as client:
        got = await fetch_to_file(client, f"{origin}/files/moved", tmp_path / "c.mp4")
    assert (tmp_path / "c.mp4").read_bytes() == MP4 and got.size_bytes == len(MP4)
    assert [r["path"] for r in echo.seen] == ["/files/moved", "/files/moved"]  # direct, then httpx from the first hop
    [request] = media.seen
    assert not [v for k, v in request["headers"] if k == "authorization"]


@pytest.mark.anyio
async def test_a_compressed_download_is_decoded_and_checked(api: tuple[Echo, str], tmp_path: Path) -> None:
    async with client_for(api[1]) as client:
        got = await fetch_to_file(client, "/files/gzip-video", tmp_path / "d.mp4")
    assert (tmp_path / "d.mp4").read_bytes() == MP4
    assert got.sha256 == hashlib.sha256(MP4).hexdigest()


@pytest.mark.anyio
async def test_a_gone_download_is_expired_and_leaves_nothing(api: tuple[Echo, str], tmp_path: Path) -> None:
    from runner.errors import ExpiredError

    async with client_for(api[1]) as client:
        with pytest.raises(ExpiredError):
            await fetch_to_file(client, "/files/gone", tmp_path / "e.mp4")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.anyio
async def test_clients_the_direct_path_does_not_carry(api: tuple[Echo, str]) -> None:
    origin = api[1]

    async def hook(request: httpx.Request) -> None:
        request.headers["X-Hooked"] = "yes"

    async with client_for(origin) as client:
        client.event_hooks["request"].append(hook)
        await send(client, "GET", "json", op="t", create=False)
        assert transport._direct(client) is None
    assert ("x-hooked", "yes") in api[0].seen[-1]["headers"]
    async with make_client(origin, transport=httpx.MockTransport(lambda r: httpx.Response(200, json={}))) as mocked:
        await send(mocked, "GET", "json", op="t", create=False)
        assert transport._direct(mocked) is None
    async with client_for(origin) as client:
        await send(client, "GET", "json", op="t", create=False)
        client.headers["X-Later"] = "1"  # a header set after the first request is sent with the next
        await send(client, "GET", "json", op="t", create=False)
        assert transport._direct(client) is not None
    assert ("x-later", "1") in api[0].seen[-1]["headers"]


@pytest.mark.anyio
@pytest.mark.parametrize("stack", ["aiohttp", "httpx"])
@pytest.mark.parametrize("scheme", ["http", "https"])
async def test_a_connection_refused_names_host_port_and_the_reason(
    monkeypatch: pytest.MonkeyPatch, stack: str, scheme: str
) -> None:
    """Not the HTTP stack's wording: aiohttp's named the TLS context by its address
    ("ssl:<ssl.SSLContext object at 0x7f...>")."""
    from runner.errors import ConnectError

    monkeypatch.setenv("GRIDRUN_HTTP", stack)
    with socket.socket() as s:  # a port nothing listens on once it is closed
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    async with make_client(f"{scheme}://127.0.0.1:{port}/v1", timeout=5.0) as client:
        with pytest.raises(ConnectError) as caught:
            await send(client, "GET", "/videos/v1", op="poll v1", create=False)
    assert str(caught.value) == (f"poll v1: could not connect to 127.0.0.1:{port} (Connection refused); "
                                 "the request was not sent")


@contextlib.contextmanager
def raw_answer(answer: bytes) -> Iterator[str]:
    """A server on 127.0.0.1 that answers each connection with `answer`, as written (no HTTP stack to mend it)."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.2)
    done = threading.Event()

    def serve() -> None:
        while not done.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            with conn:
                conn.settimeout(5)
                with contextlib.suppress(OSError):
                    conn.recv(65536)
                    conn.sendall(answer)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    finally:
        done.set()
        thread.join()
        listener.close()


@pytest.mark.parametrize(("stack", "bad"), [
    ("aiohttp", b"Bad header line without colon\r\n"),
    ("httpx", b"Bad header line without colon\r\n"),
    ("aiohttp", b"Set-Cookie: " + b"c" * 9000 + b"\r\n"),  # past aiohttp's 8 KiB (httpx takes it)
])
@pytest.mark.anyio
async def test_a_malformed_download_answer_names_neither_the_signed_query_nor_a_status_it_did_not_have(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, stack: str, bad: bytes
) -> None:
    """A 200 whose header the HTTP stack refuses (a line with no colon, a header past its limit): aiohttp's
    exception text held the whole signed URL and its parser's own "400"."""
    from runner.errors import TransportError

    monkeypatch.setenv("GRIDRUN_HTTP", stack)
    answer = b"HTTP/1.1 200 OK\r\nContent-Type: video/mp4\r\n" + bad + b"Content-Length: 5\r\n\r\nabcde"
    with raw_answer(answer) as origin:
        async with client_for(origin) as client:
            with pytest.raises(TransportError) as caught:
                await fetch_to_file(client, f"{origin}/dl/v.mp4?token=TOKSECRET999&X-Amz-Signature=SIGSECRET777",
                                    tmp_path / "a.mp4")
    said = str(caught.value)
    assert said.startswith(f"GET {origin}/dl/v.mp4: the connection failed (RemoteProtocolError: "), said
    assert "TOKSECRET999" not in said and "SIGSECRET777" not in said and "?" not in said and "url=" not in said, said
    assert "400" not in said, said
    if stack == "aiohttp":
        assert "a malformed answer: " in said, said
    assert list(tmp_path.iterdir()) == []
