"""The HTTP boundary of every provider: the shared client, and httpx exceptions and HTTP statuses
translated into `runner.errors` (in `send`, `decode`, `transport_error`, `status_error` and nowhere else),
and all-or-nothing downloads.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import functools
import hashlib
import json as _json
import os
import re
import ssl
import sys
import threading
import weakref
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, AsyncContextManager, Awaitable, Callable, Mapping, TypeVar

import anyio
import anyio.lowlevel
import httpx

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
    UsageError,
)
from runner.outputs import sync_folder
from runner.providers.base import Download
from runner.providers.retry_after import parse_retry_after

T = TypeVar("T")

USER_AGENT = "gridrun"
MAX_MESSAGE = 500

_DEFAULT_CODES = {
    400: "INVALID_REQUEST",
    401: "AUTHENTICATION_FAILED",
    402: "INSUFFICIENT_BALANCE",
    403: "FORBIDDEN",
    404: "NOT_FOUND",
    409: "CONFLICT",
    422: "INVALID_REQUEST",
    429: "RATE_LIMITED",
}


# -- the client --------------------------------------------------------------------------------------


def make_client(
    base_url: str,
    *,
    headers: Mapping[str, str] | None = None,
    max_connections: int = 100,
    timeout: float = 30.0,
    transport: httpx.AsyncBaseTransport | None = None,
) -> httpx.AsyncClient:
    """One `httpx.AsyncClient` for a whole run: pooled connections, bounded waits.

    Without a `transport`, requests go over aiohttp (`runner.providers.aio`); `GRIDRUN_HTTP=httpx` selects
    httpx's own transport instead.
    """
    verify: ssl.SSLContext | bool = True
    if transport is None and os.environ.get("GRIDRUN_HTTP", "").strip().lower() != "httpx":
        from runner.providers.aio import AiohttpTransport

        # The TLS context is built at the first https request: a run against the local simulator needs none.
        transport = AiohttpTransport(max_connections=max_connections, keepalive_expiry=30.0, ssl_context=_ssl_context)
    elif transport is None:
        verify = _ssl_context()
    client = httpx.AsyncClient(
        verify=verify,
        base_url=base_url,
        headers={"User-Agent": USER_AGENT, "Accept": "application/json", **(headers or {})},
        limits=httpx.Limits(
            max_connections=max_connections,
            max_keepalive_connections=max_connections,
            keepalive_expiry=30.0,
        ),
        timeout=httpx.Timeout(timeout, connect=min(timeout, 10.0)),
        transport=transport,
    )
    client._cookies = _NoCookies()  # the APIs set no cookies; keeping them cost 4 % of a big run's CPU
    return client


class _NoCookies(httpx.Cookies):
    """A cookie jar that keeps nothing a response sets."""

    def extract_cookies(self, response: httpx.Response) -> None:
        return None


@functools.lru_cache(maxsize=1)
def _ssl_context() -> ssl.SSLContext:
    """The default TLS context, built once: loading the CA bundle costs tens of milliseconds per client."""
    return httpx.create_ssl_context()


def resolve_base_url(explicit: str | None, env_name: str | None, default: str) -> str:
    """The base URL: `explicit`, else the environment variable `env_name`, else `default`.

    :raises UsageError: the URL is not http(s).
    """
    url = explicit or (os.environ.get(env_name, "").strip() if env_name else "") or default
    url = url.rstrip("/")
    if not url.startswith(("http://", "https://")):
        source = "base_url" if explicit else (env_name if env_name and os.environ.get(env_name) else "capability data")
        raise UsageError(f"provider base URL {url!r} (from {source}) must start with http:// or https://")
    return url


# -- httpx and HTTP statuses into runner.errors -----------------------------------------------------


def sim_reset_types() -> tuple[type[BaseException], ...]:
    """`runner.sim.SimulatedReset`, the in-process stand-in for a reset connection, once the sim is loaded.

    Looked up, never imported: until the simulator has been imported nothing can raise it.
    """
    reset = getattr(sys.modules.get("runner.sim.faults"), "SimulatedReset", None)
    return (reset,) if isinstance(reset, type) and issubclass(reset, BaseException) else ()


def secret_of(client: httpx.AsyncClient) -> str | None:
    """The credential `client` sends, so that messages can leave it out."""
    return _credential(client.headers)


def _credential(headers: httpx.Headers) -> str | None:
    auth = str(headers.get("authorization", "")).strip()
    _, _, token = auth.partition(" ")
    return token.strip() or auth or None


def redact(text: str, secret: str | None) -> str:
    """`text` without `secret`, cut to a readable length."""
    if secret and len(secret) >= 4:
        text = text.replace(secret, "[redacted]")
    text = " ".join(text.split())
    return text if len(text) <= MAX_MESSAGE else text[: MAX_MESSAGE - 1] + "…"


async def send(
    client: httpx.AsyncClient,
    method: str,
    url: str,
    *,
    op: str,
    create: bool,
    params: Mapping[str, Any] | None = None,
    json: Any = None,
    headers: Mapping[str, str] | None = None,
) -> httpx.Response:
    """`client.request(...)` (its body read), its httpx exceptions translated; `create` marks a call that
    may pay."""
    try:
        target = request_url(client, url, params)
        direct = _direct(client)
        if direct is not None:
            return await direct.send(method, target, json, headers)
        request = client.build_request(method, target, json=json, headers=headers)
        return await client.send(request)
    except httpx.RequestError as exc:
        raise transport_error(exc, op=op, create=create, secret=secret_of(client)) from exc
    except sim_reset_types() as exc:
        raise transport_error(exc, op=op, create=create, secret=secret_of(client)) from exc


class _Direct:
    """Requests sent straight on an `AiohttpTransport`'s session, past httpx's client: the same bytes on
    the wire as `client.build_request` + `client.send` make (headers, JSON body, timeouts) for a client
    with no auth flow, hooks, proxies or redirects, at about half the CPU per request
    (`bench/http_bench.py`). Responses are still `httpx.Response`s and failures httpx exceptions."""

    def __init__(self, client: httpx.AsyncClient, transport: Any, session: Any) -> None:
        from runner.providers import aio

        self.aio = aio
        self.transport = transport
        self.session = session
        raw = client.headers.raw
        self.source = (raw, client.timeout, client.base_url)
        self.headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in raw]
        self.timeout = aio.timeout_of(client.timeout.as_dict())

    def headers_for(self, extra: Mapping[str, str] | None, *, key: bool = True) -> list[tuple[str, str]]:
        """The client's headers, those of `extra` replacing theirs by name; without the key unless `key`."""
        if not extra and key:
            return self.headers
        drop = {name.lower() for name in extra or ()}
        if not key:
            drop.add("authorization")
        out = [(k, v) for k, v in self.headers if k.lower() not in drop]
        out.extend((extra or {}).items())
        return out

    async def send(
        self, method: str, url: httpx.URL, json: Any, extra: Mapping[str, str] | None
    ) -> httpx.Response:
        target = str(url)
        headers = self.headers_for(extra)
        body = None
        if json is not None:
            body = _json.dumps(json, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode()
            headers = [*headers, ("Content-Length", str(len(body))), ("Content-Type", "application/json")]

        def request() -> httpx.Request:  # only for a failure's exception or message
            return httpx.Request(method, url, headers=headers, content=body)

        response = await self.transport.exchange(self.session, method, target, headers, body, self.timeout, request)
        content = await self.aio.read(response, request)
        out = httpx.Response(response.status, headers=list(response.raw_headers), content=content)
        if not 200 <= response.status < 300:
            out.request = request()  # errors name the request
        return out


_directs: weakref.WeakKeyDictionary[httpx.AsyncClient, _Direct] = weakref.WeakKeyDictionary()


def _direct(client: httpx.AsyncClient) -> _Direct | None:
    """How to send `client`'s requests straight on aiohttp, or None when httpx's client must: another
    transport (a test's mock, the in-process simulator), no running asyncio loop, a closed client, or a
    client feature the direct path does not carry (auth flow, hooks, proxies, cookies, default params,
    redirects)."""
    transport = client._transport
    aio = sys.modules.get("runner.providers.aio")  # never imported here: without it there is no such transport
    if aio is None or not isinstance(transport, aio.AiohttpTransport) or client.is_closed:
        return None
    known = _directs.get(client)
    session = transport.direct()
    if session is None:
        return None
    if known is not None and known.session is session and known.source == (client.headers.raw, client.timeout, client.base_url):
        return known
    if (
        client._mounts or client.auth is not None or any(client.event_hooks.values()) or client.params
        or client.follow_redirects or not isinstance(client._cookies, _NoCookies)
    ):
        return None
    made = _directs[client] = _Direct(client, transport, session)
    return made


# Request URLs resolved against a client's base URL, kept per client: httpx parses and joins a relative URL
# on every request (about half of building one), and a run sends the same few paths thousands of times.
_resolved: weakref.WeakKeyDictionary[httpx.AsyncClient, tuple[httpx.URL, dict[str, tuple[httpx.URL, str]]]] = (
    weakref.WeakKeyDictionary()
)
_RESOLVED_MAX = 256


def request_url(client: httpx.AsyncClient, url: str, params: Mapping[str, Any] | None = None) -> httpx.URL:
    """The URL `client.build_request` would send for `url` (relative to the base URL, or absolute) and
    `params` (as the whole query, encoded as httpx encodes it)."""
    base = client.base_url
    entry = _resolved.get(client)
    if entry is None or entry[0] is not base or len(entry[1]) >= _RESOLVED_MAX:
        entry = _resolved[client] = (base, {})
    known = entry[1].get(url)
    if known is None:
        full = client.build_request("GET", url).url
        known = entry[1][url] = (full, str(full))
    if not params:
        return known[0]
    if known[0].query or client.params:  # httpx merges the two queries
        return client.build_request("GET", url, params=params).url
    return httpx.URL(f"{known[1]}?{httpx.QueryParams(params)}")


def transport_error(exc: BaseException, *, op: str, create: bool, secret: str | None) -> ProviderError:
    """The error for a failed exchange: `ConnectError` when the request provably never left (connect
    failure, connect or pool timeout); else `OutcomeUnknownError` for a create call, `TransportError` otherwise.
    """
    detail = redact(f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__, secret)
    if isinstance(exc, (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout, httpx.UnsupportedProtocol)):
        return ConnectError(f"{op}: could not connect ({detail}); the request was not sent")
    if isinstance(exc, (httpx.DecodingError, httpx.TooManyRedirects)):
        if create:
            return OutcomeUnknownError(f"{op}: the answer could not be read ({detail}); the job may have been created")
        return ServerError(f"{op}: the answer could not be read ({detail})", code="MALFORMED_RESPONSE")
    if create:
        return OutcomeUnknownError(
            f"{op}: the connection failed after the request may have been sent ({detail}); "
            "the job may have been created"
        )
    return TransportError(f"{op}: the connection failed ({detail})")


_MALFORMED = object()


def read_json(response: httpx.Response) -> Any:
    """The JSON body of a read response, None when empty, `_MALFORMED` when not JSON."""
    if not response.content:
        return None
    try:
        return response.json()
    except ValueError:
        return _MALFORMED


def decode(
    response: httpx.Response, *, op: str, create: bool, expect_body: bool, key_env: str
) -> dict[str, Any]:
    body = read_json(response)
    status = response.status_code
    if 200 <= status < 300:
        if not expect_body:
            return body if isinstance(body, dict) else {}
        if isinstance(body, dict):
            return body
        what = "malformed JSON" if body is _MALFORMED else "not a JSON object"
        message = f"{op}: HTTP {status} with {what}"
        if create:
            raise OutcomeUnknownError(message + "; the job may have been created", status=status)
        raise ServerError(message, status=status, code="MALFORMED_RESPONSE")
    raise status_error(response, body if body is not _MALFORMED else None, op=op, key_env=key_env)


def status_error(
    response: httpx.Response, body: Any, *, op: str, key_env: str, read: bool = True
) -> ProviderError:
    """The `ProviderError` for a non-2xx `response` whose JSON body (or None) is `body`."""
    status = response.status_code
    code, message = _error_fields(body)
    if not message:
        text = response.text if body is None and read else ""
        message = text.strip() or response.reason_phrase or "no message"
    message = redact(f"{op}: {message}", _credential(response.request.headers))
    retry_after = parse_retry_after(response.headers, body)
    if status == 429:
        return RateLimitedError(message, status=status, code=code or "RATE_LIMITED", retry_after=retry_after)
    if status >= 500 or status == 408:
        return ServerError(message, status=status, code=code, retry_after=retry_after)
    if status == 401:
        return RejectedError(f"{message} (check {key_env})", status=status, code="AUTHENTICATION_FAILED")
    if status == 402:
        return RejectedError(f"{message} (top up the account balance)", status=status, code="INSUFFICIENT_BALANCE")
    if 400 <= status < 500:
        return RejectedError(message, status=status, code=code or _DEFAULT_CODES.get(status, f"HTTP_{status}"))
    return ServerError(f"{message} (unexpected HTTP {status})", status=status, code=code, retry_after=retry_after)


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _content_length(value: Any) -> int | None:
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    return None


def _error_fields(body: Any) -> tuple[str | None, str | None]:
    if not isinstance(body, Mapping):
        return None, None
    code = message = None
    error = body.get("error")
    if isinstance(error, Mapping):
        code = _text(error.get("code"))
        message = _text(error.get("message"))
    elif isinstance(error, str):
        message = error
    if message is None:
        detail = body.get("detail", body.get("message"))
        if isinstance(detail, str):
            message = detail
        elif detail is not None:
            message = str(detail)
    return code or _text(body.get("code")), message


# -- downloads ---------------------------------------------------------------------------------------

_OCTET_TYPES = frozenset({"", "application/octet-stream", "binary/octet-stream"})
_CONTAINER_TYPES = frozenset({"video/mp4", "video/quicktime", "video/x-m4v", "video/3gpp", "video/webm", "video/x-matroska"})
_BMFF_BOXES = frozenset({b"ftyp", b"styp", b"moov", b"mdat", b"free", b"skip", b"wide", b"pnot", b"uuid"})
_EBML = b"\x1a\x45\xdf\xa3"
_SNIFF_BYTES = 16


@dataclass
class _Body:
    """What is known of a download while it streams."""

    content_type: str
    head: bytes = b""
    container: str | None = None
    checked: bool = False

    @property
    def media(self) -> str:
        return self.content_type.split(";")[0].strip().lower()


def _check_type(body: _Body, op: str) -> None:
    """A video by its Content-Type and its first bytes; octet-stream passes when the bytes are a video."""
    head = body.head
    if head[4:8] in _BMFF_BOXES:
        body.container = "bmff"
    elif head.startswith(_EBML):
        body.container = "ebml"
    media = body.media
    if media.startswith("video/"):
        if body.container is None and media in _CONTAINER_TYPES:
            raise DownloadError(f"{op}: the body is not a {media} file; it is corrupt", code="CORRUPT")
    elif media not in _OCTET_TYPES or body.container is None:
        raise DownloadError(f"{op}: not a video (Content-Type {body.content_type or 'missing'!r})", code="WRONG_TYPE")
    body.checked = True


def _bmff_problem(fd: int) -> str | None:
    """Why the ISO BMFF (MP4/MOV) file open as `fd` is cut short or scrambled, or None when its boxes tile it."""
    size = os.fstat(fd).st_size
    pos = 0
    while pos < size:
        header = os.pread(fd, 16, pos)
        if len(header) < 8:
            return f"a box header at byte {pos} is cut short"
        length = int.from_bytes(header[:4], "big")
        if length == 1:
            if len(header) < 16:
                return f"a box header at byte {pos} is cut short"
            length = int.from_bytes(header[8:16], "big")
        elif length == 0:
            return None
        if length < 8:
            return f"the box at byte {pos} claims {length} bytes"
        pos += length
    return None if pos == size else f"the last box ends at byte {pos}, after the end of the file ({size} bytes)"


def _announced_sha256(headers: httpx.Headers) -> bytes | None:
    """The SHA-256 the server announced (RFC 9530 Content-Digest/Repr-Digest, RFC 3230 Digest), if any."""
    for name, pattern in (
        ("content-digest", r"sha-256=:([A-Za-z0-9+/=]+):"),
        ("repr-digest", r"sha-256=:([A-Za-z0-9+/=]+):"),
        ("digest", r"sha-256=([A-Za-z0-9+/=]+)"),
    ):
        match = re.search(pattern, headers.get(name, ""), re.IGNORECASE)
        if match:
            try:
                return base64.b64decode(match.group(1), validate=True)
            except binascii.Error:
                return None
    return None


def _location(url: httpx.URL) -> str:
    return f"GET {url.scheme}://{url.netloc.decode('ascii', 'replace')}{url.path}"


async def fetch_to_file(
    client: httpx.AsyncClient,
    url: str,
    dest: Path,
    *,
    on_saved: Callable[[str], None] | None = None,
    gate: AsyncContextManager[Any] | None = None,
) -> Download:
    """Stream `url` to `dest`, all or nothing: `.part` file, length, type and container checks, SHA-256
    (against the server's digest header when it sends one), fsync, atomic rename; then `on_saved(sha256)`
    in the same worker thread.

    `gate` (a request slot) is held while the exchange lasts; the connection and the slot are given back
    once the body is in, before the disk work.

    The API key goes only to the API's own origin; output URLs elsewhere are fetched without it.

    :raises ExpiredError: 403, 404 or 410.
    :raises DownloadError: a short, empty or corrupt body, or not a video; the `.part` file is removed.
    """
    target = httpx.URL(url)
    if target.is_relative_url:
        target = client.base_url.join(url)
    op = _location(target)
    secret = secret_of(client)
    base = client.base_url
    same_origin = (target.scheme, target.host, target.port) == (base.scheme, base.host, base.port)
    async with contextlib.AsyncExitStack() as exchange:
        if gate is not None:
            await exchange.enter_async_context(gate)
        try:
            response = await _open_download(client, target, same_origin, exchange)
        except httpx.RequestError as exc:
            if isinstance(exc, httpx.UnsupportedProtocol):
                raise DownloadError(f"{op}: unsupported URL", code="BAD_URL") from exc
            raise transport_error(exc, op=op, create=False, secret=secret) from exc
        except sim_reset_types() as exc:
            if getattr(exc, "phase", None) == "mid_body":
                raise DownloadError(f"{op}: truncated (connection reset mid-body)", code="TRUNCATED") from exc
            raise transport_error(exc, op=op, create=False, secret=secret) from exc
        if isinstance(response, httpx.Response):
            return await _save(response, dest, op=op, secret=secret, on_saved=on_saved, release=exchange.aclose)
        raw, chunks = response
        return await _write(
            raw.status, raw.headers, chunks, dest,
            op=op, secret=secret, on_saved=on_saved, release=exchange.aclose, encoded_size=None,
        )


_VIDEO_ACCEPT = {"Accept": "video/*, */*"}
_REDIRECTS = frozenset({301, 302, 303, 307, 308})


async def _open_download(
    client: httpx.AsyncClient, target: httpx.URL, same_origin: bool, exchange: contextlib.AsyncExitStack
) -> httpx.Response | tuple[Any, AsyncIterator[bytes]]:
    """The GET of a download, its status and headers in; `exchange` closes it. Straight on aiohttp (when
    `_direct` allows) a plain 2xx comes back as (its aiohttp response, its body's chunks); anything else
    (another status, a compressed body) as an `httpx.Response`, and a redirect is followed by httpx's
    client, from the first hop."""
    direct = _direct(client) if target.scheme in ("http", "https") else None
    if direct is not None:
        headers = direct.headers_for(_VIDEO_ACCEPT, key=same_origin)

        def request() -> httpx.Request:  # only for a failure's exception
            return httpx.Request("GET", target, headers=headers)

        raw = await direct.transport.exchange(direct.session, "GET", str(target), headers, None, direct.timeout, request)
        exchange.callback(raw.release)
        status = raw.status
        if 200 <= status < 300 and raw.headers.get("content-encoding", "identity").strip().lower() in ("", "identity"):
            return raw, direct.aio.chunks(raw, request)
        if status not in _REDIRECTS or "location" not in raw.headers:
            response = direct.aio.wrap(raw, request())
            exchange.push_async_callback(response.aclose)
            return response
        raw.release()
    request = client.build_request("GET", target, headers=_VIDEO_ACCEPT)
    if not same_origin:
        request.headers.pop("authorization", None)
    response = await client.send(request, stream=True, follow_redirects=True)
    exchange.push_async_callback(response.aclose)
    return response


async def _save(
    response: httpx.Response,
    dest: Path,
    *,
    op: str,
    secret: str | None,
    on_saved: Callable[[str], None] | None,
    release: Callable[[], Awaitable[None]],
) -> Download:
    status = response.status_code
    if status in (403, 404, 410):
        raise ExpiredError(f"{op}: the output URL is gone (HTTP {status})", status=status, code="EXPIRED")
    if not 200 <= status < 300:
        try:
            await response.aread()
        except httpx.RequestError:
            raise status_error(response, None, op=op, key_env="the API key", read=False) from None
        body = read_json(response)
        raise status_error(response, body if body is not _MALFORMED else None, op=op, key_env="the API key")
    encoded = response.headers.get("content-encoding", "identity").strip().lower() not in ("", "identity")
    return await _write(
        status, response.headers, response.aiter_bytes(), dest,
        op=op, secret=secret, on_saved=on_saved, release=release,
        encoded_size=(lambda: response.num_bytes_downloaded) if encoded else None,
    )


async def _write(
    status: int,
    headers: Mapping[str, str],
    chunks: AsyncIterator[bytes],
    dest: Path,
    *,
    op: str,
    secret: str | None,
    on_saved: Callable[[str], None] | None,
    release: Callable[[], Awaitable[None]],
    encoded_size: Callable[[], int] | None,
) -> Download:
    """A 2xx body (its `status` and `headers`, httpx's or aiohttp's) from `chunks` into `dest`;
    `encoded_size()`, the bytes received when they were compressed on the wire."""
    expected = _content_length(headers.get("content-length"))
    announced = None if encoded_size is not None else _announced_sha256(headers)
    info = _Body(headers.get("content-type", ""))
    part = os.fspath(dest) + ".part"  # a string: pathlib's parsing costs more than the system calls
    digest = hashlib.sha256()
    size = 0
    done = False
    try:
        with _create(part) as f:
            try:
                async for chunk in chunks:
                    if not info.checked:
                        info.head += chunk[: _SNIFF_BYTES - len(info.head)]
                        if len(info.head) >= _SNIFF_BYTES:
                            _check_type(info, op)
                    f.write(chunk)
                    digest.update(chunk)
                    size += len(chunk)
            except httpx.RequestError as exc:
                raise DownloadError(
                    f"{op}: truncated after {size} bytes"
                    + (f" of {expected}" if expected is not None else "")
                    + f" ({redact(type(exc).__name__ + ': ' + str(exc), secret)})",
                    status=status,
                    code="TRUNCATED",
                ) from exc
            except sim_reset_types() as exc:
                raise DownloadError(f"{op}: truncated after {size} bytes (connection reset)", code="TRUNCATED") from exc
            if size == 0:
                raise DownloadError(f"{op}: empty body", status=status, code="EMPTY")
            if not info.checked:
                _check_type(info, op)
            received = encoded_size() if encoded_size is not None else size
            if expected is not None and received != expected:
                raise DownloadError(
                    f"{op}: got {received} bytes, Content-Length said {expected}", status=status, code="TRUNCATED"
                )
            if announced is not None and digest.digest() != announced:
                raise DownloadError(f"{op}: the SHA-256 differs from the server's digest header", code="CORRUPT")
            f.flush()
            await release()  # the body is in: the connection and the request slot serve others meanwhile
            # One trip to a worker thread: fsync, the container check, the rename and the folder's fsync.
            problem = await _in_disk_thread(
                _settle, f.fileno(), part, dest, info.container == "bmff", on_saved, digest.hexdigest()
            )
        if problem:
            raise DownloadError(f"{op}: not a complete MP4: {problem}", status=status, code="CORRUPT")
        done = True
    finally:
        if not done:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(part)
    return Download(path=dest, sha256=digest.hexdigest(), size_bytes=size, content_type=info.media or "video/mp4")


def _create(path: str) -> Any:
    """A new file at `path` to write and read back (the container check reads its fd), making the folder
    only when it is missing (one system call less per download)."""
    try:
        return open(path, "w+b")
    except FileNotFoundError:
        os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
        return open(path, "w+b")


# Downloads settle (fsync, rename, sidecar) in at most this many worker threads at once. More add nothing:
# the file system's journal batches concurrent fsyncs, so a few threads keep up (10,000 jobs finish alike
# with 4 or 40), and fewer threads mean fewer malloc arenas (2,000 jobs: peak RSS 109 MB with 4, 117-123 MB
# with 40; at 10,000 the two are within noise, 254 and 250 MB).
DISK_THREADS = 4
_disk_threads: anyio.lowlevel.RunVar[anyio.CapacityLimiter] = anyio.lowlevel.RunVar("gridrun_disk_threads")
_disk_pool: ThreadPoolExecutor | None = None
_disk_pool_lock = threading.Lock()


async def _in_disk_thread(fn: Callable[..., T], *args: Any) -> T:
    """`fn(*args)` in one of DISK_THREADS worker threads; a cancelled caller still waits for it to end (it
    renames files the caller would otherwise clean up under it).

    Under asyncio the threads are one process-wide pool: a trip costs half the CPU of anyio's worker
    threads and their limiter (49 against 92 us, `bench/thread_trip_bench.py`). Elsewhere (trio) anyio's
    threads carry it.
    """
    global _disk_pool
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        return await anyio.to_thread.run_sync(fn, *args, limiter=_disk_limiter())
    with _disk_pool_lock:  # event loops in several threads may download at once
        if _disk_pool is None:
            _disk_pool = ThreadPoolExecutor(DISK_THREADS, thread_name_prefix="gridrun-disk")
    with anyio.CancelScope(shield=True):
        return await loop.run_in_executor(_disk_pool, fn, *args)


def _disk_limiter() -> anyio.CapacityLimiter:
    """The event loop's limiter of threads doing download disk work (outside asyncio)."""
    try:
        return _disk_threads.get()
    except LookupError:
        limiter = anyio.CapacityLimiter(DISK_THREADS)
        _disk_threads.set(limiter)
        return limiter


def _settle(
    fd: int, part: str, dest: Path, bmff: bool, on_saved: Callable[[str], None] | None, sha256: str
) -> str | None:
    """fsync the written `.part`; unless its MP4 boxes are incomplete (returned as the problem), rename it
    to `dest`, call `on_saved(sha256)` (which writes the sidecar beside it), then fsync the folder: one sync
    makes both renames durable, the video's and the sidecar's."""
    os.fsync(fd)
    problem = _bmff_problem(fd) if bmff else None
    if problem is None:
        os.replace(part, dest)
        try:
            if on_saved is not None:
                on_saved(sha256)
        finally:
            sync_folder(part)
    return problem
