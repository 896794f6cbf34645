"""Both HTTP stacks send through the proxy the environment names (HTTP_PROXY, HTTPS_PROXY, ALL_PROXY, NO_PROXY), never
to this machine through one, and a failure through a proxy names it. The proxy is a small server on 127.0.0.1 that
records each request's head and answers 502; the provider's host is one that no resolver knows, reached only
through the proxy."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from runner.errors import ConnectError, OutcomeUnknownError, RejectedError, ServerError
from runner.providers.proxy import Proxies, is_loopback
from runner.providers.transport import decode, make_client, send

STACKS = ["aiohttp", "httpx"]
PAGE = b"<html><head><title>502 Bad Gateway</title></head><body>proxy</body></html>"


def http_answer(status: str, body: bytes = b"", *headers: str) -> bytes:
    """The bytes of an HTTP/1.1 answer: `status` ("502 Bad Gateway"), `headers` ("Location: ..."), `body`."""
    head = [f"HTTP/1.1 {status}", *headers, f"Content-Length: {len(body)}", "Connection: close"]
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


@contextlib.asynccontextmanager
async def recording(answer: bytes = http_answer("502 Bad Gateway", PAGE, "Content-Type: text/html")
                    ) -> AsyncIterator[tuple[int, list[str]]]:
    """A server on 127.0.0.1 that records each request line and answers `answer`: its port and the lines."""
    lines: list[str] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            lines.append(head.split(b"\r\n", 1)[0].decode("latin-1"))
            length = next((int(h.split(b":", 1)[1]) for h in head.split(b"\r\n") if h.lower().startswith(b"content-length:")), 0)
            if length:
                await reader.readexactly(length)
            writer.write(answer)
            await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1], lines
    finally:
        server.close()
        await server.wait_closed()


API = "http://api.gridrun-test.invalid/v1"


async def create_through_proxy(monkeypatch: pytest.MonkeyPatch, answer: bytes,
                               raises: type[Exception]) -> tuple[int, list[str], Exception]:
    """A create sent to `API` through a proxy named by HTTP_PROXY that answers `answer`, its answer decoded, which
    must raise `raises`: the proxy's port, the request lines it saw, and the error."""
    async with recording(answer) as (port, lines):
        monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{port}")
        async with make_client(API, headers={"Authorization": "Bearer k"}) as client:
            response = await send(client, "POST", "/videos", op="POST /videos", create=True, json={"a": 1})
            with pytest.raises(raises) as caught:
                decode(response, op="POST /videos", create=True, expect_body=True, key_env="K")
    return port, lines, caught.value


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.anyio
@pytest.mark.parametrize("stack", STACKS)
async def test_an_http_base_url_goes_through_the_proxy_named_by_http_proxy(monkeypatch: pytest.MonkeyPatch, stack: str) -> None:
    monkeypatch.setenv("GRIDRUN_HTTP", stack)
    port, lines, error = await create_through_proxy(
        monkeypatch, http_answer("502 Bad Gateway", PAGE, "Content-Type: text/html"), ServerError)
    assert lines == ["POST http://api.gridrun-test.invalid/v1/videos HTTP/1.1"]
    assert isinstance(error, ServerError) and error.status == 502
    assert str(error) == ("HTTP 502: POST /videos: 502 Bad Gateway (an HTML page, not the API's answer), "
                                 f"through the proxy http://127.0.0.1:{port} (from HTTP_PROXY)")


@pytest.mark.anyio
@pytest.mark.parametrize("stack", STACKS)
async def test_a_2xx_html_page_through_a_proxy_names_the_proxy(monkeypatch: pytest.MonkeyPatch, stack: str) -> None:
    """A proxy answering a create with its own sign-in page, 200: the page is said not to be the API's answer,
    and the proxy it came through is named."""
    monkeypatch.setenv("GRIDRUN_HTTP", stack)
    page = b"<html><head><title>Sign in to Corp WiFi</title></head></html>"
    port, lines, error = await create_through_proxy(
        monkeypatch, http_answer("200 OK", page, "Content-Type: text/html"), OutcomeUnknownError)
    assert lines == ["POST http://api.gridrun-test.invalid/v1/videos HTTP/1.1"]
    assert (f"an HTML page 'Sign in to Corp WiFi', not the API's answer: the proxy http://127.0.0.1:{port} (from "
            "HTTP_PROXY) or something past it answered") in str(error), str(error)


@pytest.mark.anyio
@pytest.mark.parametrize("stack", STACKS)
async def test_a_redirect_away_through_a_proxy_names_the_proxy(monkeypatch: pytest.MonkeyPatch, stack: str) -> None:
    """A proxy answering a create with a redirect to its login page: the error names the proxy it came through,
    and the run's end does not say to set the proxy variable already set to it."""
    from runner.cli import _account_refusal

    monkeypatch.setenv("GRIDRUN_HTTP", stack)
    port, lines, error = await create_through_proxy(
        monkeypatch, http_answer("302 Found", b"", "Location: http://login.gridrun-test.invalid/portal"), RejectedError)
    assert isinstance(error, RejectedError)
    end = _account_refusal(error.code or "", "m", API)
    assert lines == ["POST http://api.gridrun-test.invalid/v1/videos HTTP/1.1"]
    assert error.code == "REDIRECTED_AWAY"
    proxy = f"the proxy http://127.0.0.1:{port} (from HTTP_PROXY) or something past it"
    assert f"away from the API's path: {proxy} redirected the request" in str(error), str(error)
    assert f"{proxy} redirected it away from the API" in end, end
    assert "set HTTP_PROXY to the proxy" not in end and "set HTTP_PROXY to a proxy that reaches it" in end, end


@pytest.mark.anyio
@pytest.mark.parametrize("stack", STACKS)
async def test_an_https_tunnel_the_proxy_refuses_names_it_and_sends_nothing(monkeypatch: pytest.MonkeyPatch, stack: str) -> None:
    """A refused CONNECT: the create never left, so the job is not sent (ConnectError), not "may have been created"."""
    monkeypatch.setenv("GRIDRUN_HTTP", stack)
    async with recording() as (port, lines):
        monkeypatch.setenv("ALL_PROXY", f"http://127.0.0.1:{port}")
        async with make_client("https://api.gridrun-test.invalid/v1") as client:
            with pytest.raises(ConnectError) as caught:
                await send(client, "POST", "/videos", op="POST /videos", create=True, json={"a": 1})
    assert lines == ["CONNECT api.gridrun-test.invalid:443 HTTP/1.1"]
    assert str(caught.value) == (f"POST /videos: the proxy http://127.0.0.1:{port} (from ALL_PROXY) refused to connect "
                                 "to api.gridrun-test.invalid:443 (HTTP 502 Bad Gateway); the request was not sent")


@pytest.mark.anyio
@pytest.mark.parametrize("stack", STACKS)
async def test_a_proxy_that_cannot_be_reached_is_named(monkeypatch: pytest.MonkeyPatch, stack: str) -> None:
    monkeypatch.setenv("GRIDRUN_HTTP", stack)
    port = closed_port()
    monkeypatch.setenv("https_proxy", f"http://user:secret@127.0.0.1:{port}")
    async with make_client("https://api.gridrun-test.invalid/v1", timeout=5.0) as client:
        with pytest.raises(ConnectError) as caught:
            await send(client, "GET", "/videos/v1", op="poll v1", create=False)
    said = str(caught.value)
    assert said.startswith("poll v1: could not connect to api.gridrun-test.invalid:443 through the proxy "
                           f"http://127.0.0.1:{port} (from HTTPS_PROXY) (")
    assert said.endswith("); the request was not sent")
    assert "secret" not in said


@pytest.mark.anyio
@pytest.mark.parametrize("stack", STACKS)
@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
async def test_this_machine_is_never_reached_through_a_proxy(monkeypatch: pytest.MonkeyPatch, stack: str, host: str) -> None:
    monkeypatch.setenv("GRIDRUN_HTTP", stack)
    async with recording() as (proxy_port, proxied), recording(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                                                                b"Content-Length: 2\r\n\r\n{}") as (port, direct):
        for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"):
            monkeypatch.setenv(name, f"http://127.0.0.1:{proxy_port}")
        async with make_client(f"http://{host}:{port}/v1") as client:
            response = await send(client, "GET", "/videos/v1", op="poll v1", create=False)
    assert response.status_code == 200
    assert proxied == []
    assert direct == ["GET /v1/videos/v1 HTTP/1.1"]


@pytest.mark.anyio
@pytest.mark.parametrize("stack", STACKS)
async def test_no_proxy_sends_its_hosts_directly(monkeypatch: pytest.MonkeyPatch, stack: str) -> None:
    monkeypatch.setenv("GRIDRUN_HTTP", stack)
    async with recording() as (port, lines):
        monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{port}")
        monkeypatch.setenv("NO_PROXY", "example.org,.gridrun-test.invalid")
        async with make_client("http://api.gridrun-test.invalid/v1", timeout=5.0) as client:
            with pytest.raises(ConnectError) as caught:
                await send(client, "GET", "/videos/v1", op="poll v1", create=False)
    assert lines == []
    assert "proxy" not in str(caught.value)


def test_which_proxy_a_request_goes_through() -> None:
    proxies = Proxies({"https": "proxy.corp:3128", "all": "http://all.corp:8080", "no": "internal.corp"})
    assert proxies.route("https", "api.lumenfall.ai", 443).label == "http://proxy.corp:3128 (from HTTPS_PROXY)"
    assert proxies.route("http", "api.lumenfall.ai", None).label == "http://all.corp:8080 (from ALL_PROXY)"
    assert proxies.route("https", "x.internal.corp", 443) is None
    assert proxies.route("http", "[::1]", 80) is None
    assert not Proxies({"no": "*"})
    assert is_loopback("127.0.0.5") and is_loopback("::1") and is_loopback("LOCALHOST") and not is_loopback("example.org")


def test_no_proxy_address_ranges_in_cidr_form_are_sent_directly() -> None:
    """`NO_PROXY=10.0.0.0/8` (as curl, requests and Go read it): a gateway at 10.1.2.3 is reached directly, its API
    key not handed to the proxy; an address outside the range, and a name (not resolved), still go through it."""
    proxies = Proxies({"http": "http://proxy.corp:3128", "https": "http://proxy.corp:3128",
                       "no": "internal.corp, 10.0.0.0/8,[fd00::/8],not/a-range"})
    assert proxies.route("http", "10.255.255.1", 80) is None
    assert proxies.route("https", "10.1.2.3", 8443) is None
    assert proxies.route("https", "fd00::5", 443) is None
    assert proxies.route("https", "x.internal.corp", 443) is None
    assert proxies.route("http", "11.0.0.1", 80).label == "http://proxy.corp:3128 (from HTTP_PROXY)"
    assert proxies.route("http", "ten.example", 80) is not None
    assert Proxies({"http": "http://p:1", "no": "10.0.0.0/8"}).route("http", "10.9.8.7", 80) is None


BAD_PROXIES = [
    "http://corp%5Cjdoe:Winter/2026@proxy.corp.example:8080",  # a '/' in the password, not percent-encoded
    "http://jdoe:Win#ter2026@proxy.corp.example:8080",
    "http://jdoe:Win?ter2026@proxy.corp.example:8080",
    "http://jdoe:2026/Winter@proxy.corp.example:8080",  # what precedes the '/' reads as a port: an '@' follows
    "http://jdoe:Winter2026@proxy.corp.example:99999",  # a port out of range
]


@pytest.mark.parametrize("url", BAD_PROXIES)
def test_a_proxy_url_that_does_not_parse_is_refused_where_it_would_be_used_and_never_quoted(url: str) -> None:
    proxies = Proxies({"https": url, "http": url})  # read without raising: a request to this machine goes directly
    assert proxies.route("http", "127.0.0.1", 8080) is None
    route = proxies.named_for("https://api.lumenfall.ai/v1")
    assert route is not None and route.label == "(from HTTPS_PROXY)"
    with pytest.raises(httpx.UnsupportedProtocol) as caught:
        proxies.route("https", "api.lumenfall.ai", 443)
    said = str(caught.value)
    assert said.startswith("the proxy URL in HTTPS_PROXY does not parse, "), said
    assert "percent-encode a '/', '#', '?' or '@' in its user name or password" in said and "unset HTTPS_PROXY" in said
    assert "Winter" not in said and "Win" not in said and "2026" not in said and "corp" not in said, said


@pytest.mark.anyio
@pytest.mark.parametrize("stack", STACKS)
async def test_a_proxy_url_that_does_not_parse_fails_each_request_through_it_unsent_and_none_to_this_machine(
    monkeypatch: pytest.MonkeyPatch, stack: str
) -> None:
    """Each client read the variables as it was made: a proxy URL whose port does not parse crashed every run
    there, against this machine too, the crash naming the password's start."""
    monkeypatch.setenv("GRIDRUN_HTTP", stack)
    for name in ("HTTP_PROXY", "HTTPS_PROXY"):
        monkeypatch.setenv(name, BAD_PROXIES[0])
    ok = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"
    async with recording(ok) as (port, direct), make_client(f"http://127.0.0.1:{port}/v1") as client:
        response = await send(client, "GET", "/videos/v1", op="poll v1", create=False)
    assert response.status_code == 200 and direct == ["GET /v1/videos/v1 HTTP/1.1"]
    async with make_client("https://api.gridrun-test.invalid/v1", timeout=5.0) as client:
        with pytest.raises(ConnectError) as caught:
            await send(client, "GET", "/videos/v1", op="poll v1", create=False)
    said = str(caught.value)
    assert "the proxy URL in HTTPS_PROXY does not parse" in said and said.endswith("the request was not sent"), said
    assert "Winter" not in said and "jdoe" not in said, said


def test_plan_warns_of_a_proxy_url_that_does_not_parse_for_the_base_url(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from execkit import write_manifest

    from runner import api

    for var in ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy", "NO_PROXY",
                "no_proxy"):
        monkeypatch.delenv(var, raising=False)
    m = write_manifest(tmp_path, n_seeds=1, styles=("anime",), provider="lumenfall", sim={})
    monkeypatch.setenv("LUMENFALL_BASE_URL", "https://api.lumenfall.ai/v1")

    def said() -> list[str]:
        return [str(w) for w in api.plan(m).warnings if "proxy URL" in str(w)]

    assert said() == []
    monkeypatch.setenv("HTTPS_PROXY", BAD_PROXIES[0])
    [warning] = said()
    assert warning.startswith("requests to the provider would not be sent: the proxy URL in HTTPS_PROXY does not "
                              "parse"), warning
    assert "Winter" not in warning and "jdoe" not in warning, warning
    monkeypatch.setenv("LUMENFALL_BASE_URL", "http://127.0.0.1:9/v1")  # this machine: never through a proxy
    assert said() == []
