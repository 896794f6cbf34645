"""An httpx transport that sends over aiohttp.

The providers speak httpx (its client, requests, responses and exceptions, and its MockTransport in the
tests); this transport only replaces the wire underneath. aiohttp parses HTTP in C: on a loopback
simulator a request costs about a fifth of the CPU it costs through httpcore (`bench/http_bench.py`),
which is most of gridrun's own CPU per job.

aiohttp failures are raised as the httpx exceptions they correspond to, so that `transport.transport_error`
keeps a single classification: only a failure to *connect* (or to get a pooled connection in time) means
the request was never sent; anything after that may have reached the server. A non-idempotent request
(a create) is never re-sent by aiohttp itself.

Outside asyncio (anyio on trio) the transport falls back to httpx's own.

`runner.providers.transport` also sends its common requests straight through `exchange`, past httpx's
client (`transport._Direct`), and reads their bodies with `read` and `chunks`.
"""

from __future__ import annotations

import asyncio
import ssl
import sys
import threading
from collections.abc import AsyncIterator, Callable
from typing import Any


def _import_aiohttp() -> list[ssl.SSLContext]:
    """Import aiohttp, leaving out the CA certificates of the TLS contexts it builds as it loads; returns those
    contexts, whose certificates `_certificates()` loads before the first request that could use them.

    aiohttp builds its default contexts (for `ssl=True` and `ssl=False`) at import, and loading the system's CA
    certificates into them costs some 50 ms of CPU, an eighth of what a run spends before its first create. gridrun
    gives every https request its own context (`_ssl`), so the defaults serve only a request through a proxy, and
    a run against the local simulator has none. Only in the `gridrun` command, where every aiohttp request is
    gridrun's: a program using gridrun as a library may send its own on aiohttp's defaults. Only the importing
    thread's loads are left out; should aiohttp build other contexts than its two defaults, their certificates are
    loaded at once."""
    from runner.entry import is_command

    if "aiohttp" in sys.modules or not is_command():
        return []
    left: list[ssl.SSLContext] = []
    importer = threading.get_ident()
    real = ssl.SSLContext.set_default_verify_paths
    own = ssl.SSLContext.__dict__.get("set_default_verify_paths")

    def later(self: ssl.SSLContext) -> None:
        if threading.get_ident() == importer:
            left.append(self)
        else:
            real(self)

    ssl.SSLContext.set_default_verify_paths = later  # type: ignore[method-assign]
    try:
        import aiohttp.connector
    finally:
        if own is None:
            del ssl.SSLContext.set_default_verify_paths
        else:
            ssl.SSLContext.set_default_verify_paths = own  # type: ignore[method-assign]
    defaults = (getattr(aiohttp.connector, "_SSL_CONTEXT_VERIFIED", None),
                getattr(aiohttp.connector, "_SSL_CONTEXT_UNVERIFIED", None))
    if len(left) != 2 or not all(any(c is d for d in defaults) for c in left):
        for context in left:
            real(context)
        return []
    return left


_uncertified = _import_aiohttp()
_uncertified_lock = threading.Lock()

import aiohttp
import httpx
import yarl

from runner.providers.proxy import Proxies, Route
from runner.providers.transport import too_large

_CHUNK = 1 << 16


def _certificates() -> None:
    """Load the CA certificates left out of aiohttp's default TLS contexts (`_import_aiohttp`), once."""
    with _uncertified_lock:
        for context in _uncertified:
            context.set_default_verify_paths()
        _uncertified.clear()  # only once loaded: another thread finds the list empty only then


def _translate(exc: BaseException, request: httpx.Request, *, in_body: bool = False) -> httpx.RequestError:
    """The httpx exception for an aiohttp (or socket) failure."""
    msg = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    if isinstance(exc, aiohttp.ClientResponseError):
        # Its text names the whole URL, a signed URL's query with it; and, for an answer its parser refused (a bad
        # header line, a header past its limit), a status of the parser's own, not the server's.
        said = " ".join(str(exc.message).split())
        if isinstance(exc.__cause__, aiohttp.http.HttpProcessingError):
            msg = f"a malformed answer: {said}" if said else "a malformed answer"
        else:
            msg = f"HTTP {exc.status}: {said}" if said else f"HTTP {exc.status}"
    kind: type[httpx.RequestError]
    if isinstance(exc, aiohttp.InvalidURL):
        kind = httpx.UnsupportedProtocol
    elif isinstance(exc, aiohttp.ClientHttpProxyError):  # the proxy refused the tunnel: nothing sent through it
        kind, msg = httpx.ProxyError, f"{exc.status} {exc.message}"
    elif isinstance(exc, aiohttp.ConnectionTimeoutError):
        kind = httpx.ConnectTimeout
    elif isinstance(exc, aiohttp.ClientConnectorError):
        kind = httpx.ConnectError
    elif isinstance(exc, (aiohttp.ServerTimeoutError, TimeoutError)):
        kind = httpx.ReadTimeout
    elif isinstance(exc, (aiohttp.ServerDisconnectedError, aiohttp.ClientPayloadError, aiohttp.ClientResponseError)):
        kind = httpx.RemoteProtocolError
    elif isinstance(exc, (aiohttp.ClientOSError, OSError)):
        kind = httpx.ReadError if in_body else httpx.NetworkError
    else:
        kind = httpx.RemoteProtocolError if in_body else httpx.TransportError
    return kind(msg, request=request)


class _ResponseStream(httpx.AsyncByteStream):
    def __init__(self, response: aiohttp.ClientResponse, request: httpx.Request) -> None:
        self._response = response
        self._request = request

    def __aiter__(self) -> AsyncIterator[bytes]:
        return chunks(self._response, lambda: self._request)

    async def aclose(self) -> None:
        self._response.release()


def timeout_of(t: dict[str, Any] | None) -> aiohttp.ClientTimeout:
    """aiohttp's timeouts for httpx's (`httpx.Timeout.as_dict()`): waiting for a pooled connection,
    connecting, and each read."""
    t = t or {}
    return aiohttp.ClientTimeout(total=None, connect=t.get("pool"), sock_connect=t.get("connect"), sock_read=t.get("read"))


def wrap(response: aiohttp.ClientResponse, request: httpx.Request) -> httpx.Response:
    """`response` as an httpx response whose body streams from it."""
    return httpx.Response(
        response.status,
        headers=list(response.raw_headers),
        stream=_ResponseStream(response, request),
        extensions={"http_version": b"HTTP/1.1", "reason_phrase": (response.reason or "").encode("latin-1", "replace")},
        request=request,
    )


async def chunks(response: aiohttp.ClientResponse, request: Callable[[], httpx.Request]) -> AsyncIterator[bytes]:
    """The body of `response` as it arrives; a failure is raised as its httpx exception."""
    try:
        async for chunk in response.content.iter_chunked(_CHUNK):
            yield chunk
    except (aiohttp.ClientError, OSError, TimeoutError) as exc:
        response.close()
        raise _translate(exc, request(), in_body=True) from exc


async def read(response: aiohttp.ClientResponse, request: Callable[[], httpx.Request], *, limit: int) -> bytes:
    """The whole body of `response`, its connection given back; a failure is raised as its httpx exception, a body
    longer than `limit` bytes as `httpx.DecodingError` once that much has come (the rest never read)."""
    try:
        size = response.content_length
        if size is not None:  # aiohttp reads no more than the length said
            if size > limit:
                response.close()
                raise too_large(limit, request())
            return await response.read()
        body = bytearray()
        async for chunk in response.content.iter_chunked(_CHUNK):
            body += chunk
            if len(body) > limit:
                response.close()
                raise too_large(limit, request())
        return bytes(body)
    except (aiohttp.ClientError, OSError, TimeoutError) as exc:
        response.close()
        raise _translate(exc, request(), in_body=True) from exc
    except BaseException:  # cancelled mid-answer (a deadline): the connection, half read, is not reused
        response.close()
        raise
    finally:
        response.release()


class AiohttpTransport(httpx.AsyncBaseTransport):
    """Pooled HTTP/1.1 over aiohttp: at most `max_connections` connections, kept alive `keepalive_expiry` s.

    Cookies, redirects, decompression and proxies stay with the httpx client above; this only moves bytes.
    """

    def __init__(
        self, *, max_connections: int, keepalive_expiry: float = 30.0,
        ssl_context: ssl.SSLContext | Callable[[], ssl.SSLContext] | None = None,
        proxies: Proxies | None = None,
    ) -> None:
        """`ssl_context`: the TLS context for https, or a function that makes it when the first https
        request goes out (None: aiohttp's default context). `proxies`: which proxy each request goes through
        (None: none)."""
        self._proxies = proxies if proxies else None
        self._max = max_connections
        self._keepalive = keepalive_expiry
        self._tls = ssl_context
        self._session: aiohttp.ClientSession | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._fallback: httpx.AsyncBaseTransport | None = None

    @property
    def max_connections(self) -> int:
        return self._max

    def _session_for(self, loop: asyncio.AbstractEventLoop) -> aiohttp.ClientSession:
        if self._session is None or self._loop is not loop or self._session.closed:
            # A session belongs to one event loop; a client reused under a new loop gets a new session.
            connector = aiohttp.TCPConnector(limit=self._max, limit_per_host=0, keepalive_timeout=self._keepalive)
            self._session = aiohttp.ClientSession(
                connector=connector, cookie_jar=aiohttp.DummyCookieJar(), auto_decompress=False,
                trust_env=False, timeout=aiohttp.ClientTimeout(total=None), raise_for_status=False,
            )
            self._loop = loop
        return self._session

    def route(self, url: str) -> Route | None:
        """The proxy a request to `url` goes through, or None."""
        return None if self._proxies is None else self._proxies.route_url(url)

    def _ssl(self) -> ssl.SSLContext | None:
        if callable(self._tls):
            self._tls = self._tls()
        return self._tls

    def direct(self) -> aiohttp.ClientSession | None:
        """The aiohttp session a caller may send on itself (`exchange`): under asyncio; None elsewhere."""
        try:
            return self._session_for(asyncio.get_running_loop())
        except RuntimeError:
            return None

    async def exchange(
        self,
        session: aiohttp.ClientSession,
        method: str,
        url: str,
        headers: list[tuple[str, str]],
        body: bytes | None,
        timeout: aiohttp.ClientTimeout,
        request: Callable[[], httpx.Request],
    ) -> aiohttp.ClientResponse:
        """One request on `session`, its status line and headers read, never redirected nor re-sent; a
        failure is raised as its httpx exception (`request()` makes the request that exception names; through
        a proxy, its `proxy` names it)."""
        route = None
        tls = None
        if url.startswith("https:"):
            try:
                tls = self._ssl()
            except Exception as exc:  # no TLS context, no connection: nothing left the machine
                raise httpx.ConnectError(f"nothing sent: {exc}", request=request()) from exc
        try:
            proxy: Any = {}
            if _uncertified and (url.startswith("https:") or self._proxies is not None):
                _certificates()  # a request aiohttp may secure with one of its default contexts
            if self._proxies is not None:
                route = self._proxies.route_url(url)
                if route is not None:
                    target = yarl.URL(route.url)
                    auth = aiohttp.BasicAuth.from_url(target)
                    proxy = {"proxy": target.with_user(None)}
                    if auth is not None:
                        proxy["proxy_headers"] = {"Proxy-Authorization": auth.encode()}
            return await session.request(
                method, url, headers=headers, data=body or None,
                allow_redirects=False, timeout=timeout, compress=None, chunked=None,
                ssl=(tls or True) if url.startswith("https:") else True, **proxy,
            )
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            failure = _translate(exc, request())
            if route is not None:
                failure.proxy = route  # type: ignore[attr-defined]
            raise failure from exc
        except httpx.UnsupportedProtocol as exc:  # a proxy gridrun cannot use
            exc.request = request()
            raise

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return await self._other_loop(request)
        if request.url.scheme not in ("http", "https"):
            raise httpx.UnsupportedProtocol(f"request URL has an unsupported protocol {request.url.scheme!r}", request=request)
        session = self._session_for(loop)
        body = await request.aread()
        headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in request.headers.raw]
        response = await self.exchange(
            session, request.method, str(request.url), headers, body, timeout_of(request.extensions.get("timeout")),
            lambda: request,
        )
        out = wrap(response, request)
        route = self.route(str(request.url))
        if route is not None:
            out.extensions["proxy"] = route  # an answer not the API's names it (`transport.status_error`)
        return out

    async def _other_loop(self, request: httpx.Request) -> httpx.Response:
        if self._fallback is None:
            from runner.providers.transport import http_transport

            self._fallback = http_transport(
                self._proxies, verify=self._ssl() or True,
                limits=httpx.Limits(max_connections=self._max, max_keepalive_connections=self._max, keepalive_expiry=self._keepalive),
            )
        return await self._fallback.handle_async_request(request)

    async def aclose(self) -> None:
        session, self._session = self._session, None
        if session is not None and not session.closed:
            try:
                running = asyncio.get_running_loop()
            except RuntimeError:
                running = None
            if running is self._loop:
                await session.close()
        if self._fallback is not None:
            await self._fallback.aclose()
