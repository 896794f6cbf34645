"""The HTTP boundary of every provider: the shared client, and httpx exceptions and HTTP statuses
translated into `runner.errors` (in `send`, `decode`, `transport_error`, `status_error` and nowhere else).
Downloads are `runner.providers.download`'s.
"""

from __future__ import annotations

import contextlib
import functools
import json as _json
import logging
import os
import re
import socket
import ssl
import sys
import urllib.parse
import weakref
from collections.abc import AsyncIterator, Sequence
from datetime import UTC
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any, Mapping

import anyio
import httpx

from runner.bugs import without_secret
from runner.errors import (
    ConnectError,
    OutcomeUnknownError,
    ProviderError,
    RateLimitedError,
    RejectedError,
    ServerError,
    TransportError,
    UsageError,
    said_request_id,
)
from runner.options import account_refused
from runner.providers.capabilities import has_credentials
from runner.providers.retry_after import parse_retry_after

USER_AGENT = "gridrun"
MAX_MESSAGE = 500
# The most redirects a download follows (API calls follow none). A video's URL takes one or two (the API's content
# route to a signed storage URL, a CDN to its edge); httpx's default of 20, per try, only multiplied the requests of
# a URL that redirects in a loop.
MAX_REDIRECTS = 10
MAX_ANSWER_BYTES = 16 << 20
"""The longest API answer read (a video object, a list page, an error's body: a few kB each): a longer one is
refused while it arrives, as a malformed answer, never held whole in memory. Downloads have their own limit."""

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

# The loggers of the HTTP libraries a run sends with. httpx logs every request at INFO, a download's signed URL (its
# access token) with it: in a program whose logging is at INFO (a notebook, a service), a line per poll and every
# video's URL. Left at WARNING unless the program set a level on them itself.
HTTP_LOGGERS = ("httpx", "httpcore")


def quiet_http_loggers() -> None:
    """The HTTP libraries' loggers at WARNING, each one whose level the program has not set (NOTSET)."""
    for name in HTTP_LOGGERS:
        logger = logging.getLogger(name)
        if logger.level == logging.NOTSET:
            logger.setLevel(logging.WARNING)


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
    httpx's own transport instead. The HTTP libraries' per-request logs are kept out of the program's logging
    (`quiet_http_loggers`).
    """
    quiet_http_loggers()
    verify: ssl.SSLContext | bool = True
    stack = os.environ.get("GRIDRUN_HTTP", "").strip().lower()
    if stack not in ("", "aiohttp", "httpx"):
        raise UsageError(f"GRIDRUN_HTTP must be aiohttp (the default) or httpx, got {os.environ['GRIDRUN_HTTP']!r}")
    limits = httpx.Limits(
        max_connections=max_connections,
        max_keepalive_connections=max_connections,
        keepalive_expiry=30.0,
    )
    if transport is None:
        from runner.providers.proxy import Proxies

        # Both stacks send through the proxy the environment names, and neither through one to this machine.
        proxies = Proxies()
        if stack != "httpx":
            from runner.providers.aio import AiohttpTransport

            # The TLS context is built at the first https request: a run against the local simulator needs none.
            transport = AiohttpTransport(max_connections=max_connections, keepalive_expiry=30.0,
                                         ssl_context=_ssl_context, proxies=proxies)
        else:
            verify = _ssl_context()
            transport = http_transport(proxies, verify=verify, limits=limits)
    client = httpx.AsyncClient(
        verify=verify,
        base_url=base_url,
        headers={"User-Agent": USER_AGENT, "Accept": "application/json", **(headers or {})},
        limits=limits,
        timeout=httpx.Timeout(timeout, connect=min(timeout, 10.0)),
        transport=transport,
        max_redirects=MAX_REDIRECTS,
    )
    client._cookies = _NoCookies()  # the APIs set no cookies; keeping them cost 4 % of a big run's CPU
    return client


def http_transport(proxies: Any, *, verify: ssl.SSLContext | bool, limits: httpx.Limits) -> httpx.AsyncBaseTransport:
    """httpx's own transport, through the proxies `proxies` names (a `runner.providers.proxy.Proxies`)."""
    if proxies:
        from runner.providers.proxy import RoutedTransport

        return RoutedTransport(proxies, verify=verify, limits=limits)
    return httpx.AsyncHTTPTransport(verify=verify, limits=limits)


class _NoCookies(httpx.Cookies):
    """A cookie jar that keeps nothing a response sets."""

    def extract_cookies(self, response: httpx.Response) -> None:
        return None


@functools.lru_cache(maxsize=1)
def _ssl_context() -> ssl.SSLContext:
    """The default TLS context, built once: loading the CA bundle costs tens of milliseconds per client.

    :raises UsageError: SSL_CERT_FILE or SSL_CERT_DIR names no CA certificates it can read (`tls_problem`).
    """
    problem = tls_problem()
    if problem is not None:
        raise UsageError(problem)
    try:
        return httpx.create_ssl_context()
    except (OSError, ssl.SSLError, ValueError) as exc:
        raise UsageError(f"the TLS context could not be built ({type(exc).__name__}: {exc}); nothing was sent") from exc


# The variables OpenSSL (and httpx) read the CA certificates from, in place of the system's or certifi's own.
TLS_VARIABLES = ("SSL_CERT_FILE", "SSL_CERT_DIR")


def tls_problem() -> str | None:
    """What is wrong with the CA certificates SSL_CERT_FILE or SSL_CERT_DIR names (a file not there or unreadable,
    one with no certificate in it; a folder not there), which every https request would meet; None when neither
    is set, or what they name can be used. Said before anything is recorded or sent: a TLS context that cannot be
    built sends nothing, and must not leave creates that never left the machine looking as if they may have."""
    for var in TLS_VARIABLES:
        value = os.environ.get(var, "")
        if not value:
            continue
        path = Path(value)
        why = None
        if var == "SSL_CERT_FILE":
            if not path.exists():
                why = "no such file"
            elif not path.is_file():
                why = "not a file"
            elif not os.access(path, os.R_OK):
                why = "a file gridrun may not read"
            else:
                try:
                    ssl.create_default_context(cafile=value)
                except (OSError, ssl.SSLError, ValueError):
                    why = "a file that holds no CA certificate OpenSSL can read (a PEM bundle is wanted)"
        else:
            # a list of folders, as OpenSSL reads it (`dir1:dir2`): refused only where none of them can be read
            folders = [Path(part) for part in value.split(os.pathsep) if part]
            if not any(f.is_dir() and os.access(f, os.R_OK | os.X_OK) for f in folders):
                many = len(folders) > 1
                if any(f.is_dir() for f in folders):
                    why = "no folder gridrun may read" if many else "a folder gridrun may not read"
                elif any(f.exists() for f in folders):
                    why = "no folder among them" if many else "not a folder"
                else:
                    why = "no such folders" if many else "no such folder"
        if why is not None:
            what = "a PEM bundle of CA certificates" if var == "SSL_CERT_FILE" else "a folder of CA certificates"
            return (f"{var}={value} (in the environment): {why}; set it to {what}, or unset it to use the "
                    "default ones; nothing was sent")
    return None


def resolve_base_url(explicit: str | None, env_name: str | None, default: str) -> str:
    """The base URL: `explicit`, else the environment variable `env_name`, else `default`.

    :raises UsageError: the URL is not http(s), or does not parse.
    """
    given = explicit or (os.environ.get(env_name, "").strip() if env_name else "") or default
    url = given.rstrip("/")
    source = "base_url" if explicit else (env_name if env_name and os.environ.get(env_name) else "capability data")
    if has_credentials(url):  # never shown: what is before the '@' is a password
        raise UsageError(f"provider base URL (from {source}) holds a user name or password (`user:pass@` before its "
                         "host), which gridrun does not send: it sends the API key as the Authorization header; "
                         "remove them from the URL")
    from runner.providers.capabilities import has_http_scheme, url_error, without_query

    problem = url_error(url if has_http_scheme(url) else given)
    if problem is not None:
        raise UsageError(f"provider base URL {without_query(given)!r} (from {source}) {problem}")
    scheme, _, rest = url.partition("://")
    return f"{scheme.lower()}://{rest}"  # HTTP:// as http://: schemes are case-insensitive


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


def _sent_credential(response: httpx.Response) -> str | None:
    """The credential the request `response` answers was sent with; None when it is not known (an answer made
    without its request, as one read by another HTTP stack may be)."""
    try:
        return _credential(response.request.headers)
    except RuntimeError:
        return None


def _credential(headers: httpx.Headers) -> str | None:
    auth = str(headers.get("authorization", "")).strip()
    _, _, token = auth.partition(" ")
    return token.strip() or auth or None


QUERY_VALUE_MIN = 8
"""A URL's query value this long or longer is taken out of the messages made of its answers (`url_secrets`):
a shorter one (`v=2`, `dl=1`) is no credential and would be found in any text."""


def url_secrets(url: str | httpx.URL | None) -> tuple[str, ...]:
    """What of `url`'s query no message may show: a signed URL's token and signature, echoed back in a file
    host's error text (a request line, S3's `<ArgumentValue>` or canonical request). The whole query and each of
    its values of `QUERY_VALUE_MIN` characters or more, as sent and percent-decoded, longest first (so that a
    text holding the query is cut whole)."""
    if url is None:
        return ()
    query = str(url).partition("#")[0].partition("?")[2]
    if not query:
        return ()
    found = {query, urllib.parse.unquote(query), urllib.parse.unquote_plus(query)}
    for pair in query.split("&"):
        value = pair.partition("=")[2]
        found |= {value, urllib.parse.unquote(value), urllib.parse.unquote_plus(value)}
    return tuple(sorted((s for s in found if len(s) >= QUERY_VALUE_MIN), key=len, reverse=True))


def without_hidden(text: str, hidden: Sequence[str]) -> str:
    """`text` with each of `hidden` (`url_secrets`) replaced by "…"."""
    for value in hidden:
        text = text.replace(value, "…")
    return text


def redact(text: str, secret: str | None, hidden: Sequence[str] = ()) -> str:
    """`text` without `secret` and `hidden` (`url_secrets`), cut to a readable length."""
    text = without_hidden(without_secret(text, secret), hidden)
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
) -> httpx.Response | Answer:
    """`client.request(...)` (its body read), its httpx exceptions translated; `create` marks a call that
    may pay. Straight on aiohttp a plain 2xx answer is an `Answer` (`_Direct`).

    The whole exchange, its answer read to the end, takes no longer than `deadline_of(client)`: the HTTP stacks'
    read timeout bounds each read only, and an answer trickled a byte at a time would never end (a download, long by
    nature, has its own rules). One that does not end in time is a `ReadTimeout`: a create's outcome unknown, as for
    any answer lost."""
    target: httpx.URL | None = None
    deadline = deadline_of(client)
    try:
        with anyio.fail_after(deadline) if deadline else contextlib.nullcontext():
            target = request_url(client, url, params)
            direct = _direct(client)
            if direct is not None:
                return await direct.send(method, target, json, headers)
            request = client.build_request(method, target, json=json, headers=headers)
            response = await client.send(request, stream=True)
            try:
                await read_answer(response)
            finally:
                await response.aclose()
            return response
    except TimeoutError as exc:  # the deadline's own (the HTTP stacks' timeouts come as httpx errors)
        late = httpx.ReadTimeout(f"no whole answer within {deadline:g} s of the request" if deadline else "timed out",
                                 request=httpx.Request(method, target if target is not None else url))
        late.__cause__ = exc
        raise transport_error(late, op=op, create=create, secret=secret_of(client)) from late
    except httpx.RequestError as exc:
        raise transport_error(exc, op=op, create=create, secret=secret_of(client)) from exc
    except sim_reset_types() as exc:
        raise transport_error(exc, op=op, create=create, secret=secret_of(client)) from exc


def deadline_of(client: httpx.AsyncClient) -> float | None:
    """The longest an API exchange of `client` takes, its answer read to the end: the request timeout (the read
    timeout) after the time to connect (the connect timeout, 10 s at most). A wait for a pooled connection as long as
    the request timeout is a `PoolTimeout` first: the request not sent. None: no bound (no read timeout)."""
    t = client.timeout
    if t.read is None:
        return None
    return t.read + (t.connect or 0.0)


def encoded(headers: Mapping[str, str]) -> bool:
    """Whether a body comes with a content encoding (gzip, br, …) to decode, by its headers (any case-insensitive
    mapping: httpx's, aiohttp's)."""
    return headers.get("content-encoding", "identity").strip().lower() not in ("", "identity")


def too_large(limit: int, request: httpx.Request) -> httpx.DecodingError:
    """The error of an API answer longer than `limit` bytes."""
    return httpx.DecodingError(f"the answer is longer than {limit // (1 << 20)} MiB, more than any API answer",
                               request=request)


async def read_answer(response: httpx.Response) -> bytes:
    """The body of a streamed API answer, read and kept as its content, up to `MAX_ANSWER_BYTES` (decoded).

    :raises httpx.DecodingError: the answer is longer (the rest is not read).
    """
    size = response.headers.get("content-length", "")
    if not encoded(response.headers) and size.strip().isdigit() and int(size) > MAX_ANSWER_BYTES:
        raise too_large(MAX_ANSWER_BYTES, response.request)
    body = bytearray()
    async for chunk in response.aiter_bytes():
        body += chunk
        if len(body) > MAX_ANSWER_BYTES:
            raise too_large(MAX_ANSWER_BYTES, response.request)
    response._content = bytes(body)  # as `Response.aread` keeps it
    return response._content


class Answer:
    """A plain 2xx answer (no content encoding) read whole on the direct path: its status, headers (aiohttp's,
    case-insensitive) and body, which is all a provider reads of a successful call; building an `httpx.Response`
    for it cost about as much as decoding a create's JSON. `full()` is the `httpx.Response`, for anything more."""

    __slots__ = ("content", "headers", "raw_headers", "status_code")

    def __init__(self, status: int, headers: Mapping[str, str], content: bytes,
                 raw_headers: Sequence[tuple[bytes, bytes]]) -> None:
        self.status_code, self.headers, self.content, self.raw_headers = status, headers, content, raw_headers

    def json(self) -> Any:
        return _json.loads(self.content)

    def full(self) -> httpx.Response:
        return httpx.Response(self.status_code, headers=list(self.raw_headers), content=self.content)


class _Direct:
    """Requests sent straight on an `AiohttpTransport`'s session, past httpx's client: the same bytes on
    the wire as `client.build_request` + `client.send` make (headers, JSON body, timeouts) for a client
    with no auth flow, hooks, proxies or redirects, at about half the CPU per request
    (`bench/http_bench.py`). A plain 2xx answer comes back as an `Answer`, anything else as an `httpx.Response`;
    failures are httpx exceptions."""

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
    ) -> httpx.Response | Answer:
        target = str(url)
        headers = self.headers_for(extra)
        body = None
        if json is not None:
            body = _json.dumps(json, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode()
            headers = [*headers, ("Content-Length", str(len(body))), ("Content-Type", "application/json")]

        def request() -> httpx.Request:  # only for a failure's exception or message
            return httpx.Request(method, url, headers=headers, content=body)

        response = await self.transport.exchange(self.session, method, target, headers, body, self.timeout, request)
        content = await self.aio.read(response, request, limit=MAX_ANSWER_BYTES)
        coded = encoded(response.headers)
        if 200 <= response.status < 300 and content[:1] == b"{" and not coded:
            return Answer(response.status, response.headers, content, response.raw_headers)  # the API's JSON
        if coded:
            # Decoded within the bound too: a compressed answer of a few MiB may decode to gigabytes.
            out = httpx.Response(response.status, headers=list(response.raw_headers), stream=_Once(content),
                                 request=request())
            await read_answer(out)
        else:
            out = httpx.Response(response.status, headers=list(response.raw_headers), content=content)
        if not 200 <= response.status < 300:
            out.request = request()  # errors name the request
        elif content[:1] == b"{":
            return out  # the API's answer, as far as can be seen
        route = self.transport.route(target)
        if route is not None:
            out.extensions["proxy"] = route  # an answer not the API's names the proxy it went through
        return out


class _Once(httpx.AsyncByteStream):
    """A body already read, streamed once (so that httpx decodes it as it is read, not all at once)."""

    def __init__(self, content: bytes) -> None:
        self._content = content

    async def __aiter__(self) -> AsyncIterator[bytes]:
        yield self._content


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
# on every request (about half of building one), and a run sends the same few paths thousands of times. A list
# poll asks with the same few queries round after round: those URLs are kept too, by path and query (each value
# with its type, as `true` and `1` are written apart).
_Query = tuple[str, tuple[tuple[str, type, Any], ...]]
_resolved: weakref.WeakKeyDictionary[
    httpx.AsyncClient, tuple[httpx.URL, dict[str, tuple[httpx.URL, str]], dict[_Query, httpx.URL]]
] = weakref.WeakKeyDictionary()
_RESOLVED_MAX = 256
# The values of a query whose URL is kept: those its text and type tell apart (equal floats may be written apart,
# and a tuple's items are written one by one whatever their type).
_KEPT_VALUES = (str, int, bool)


def request_url(client: httpx.AsyncClient, url: str, params: Mapping[str, Any] | None = None) -> httpx.URL:
    """The URL `client.build_request` would send for `url` (relative to the base URL, or absolute) and
    `params` (as the whole query, encoded as httpx encodes it)."""
    base = client.base_url
    entry = _resolved.get(client)
    if entry is None or entry[0] is not base or len(entry[1]) >= _RESOLVED_MAX:
        entry = _resolved[client] = (base, {}, {})
    known = entry[1].get(url)
    if known is None:
        full = client.build_request("GET", url).url
        known = entry[1][url] = (full, str(full))
    if not params:
        return known[0]
    if known[0].query or client.params:  # httpx merges the two queries
        return client.build_request("GET", url, params=params).url
    if not all(type(value) in _KEPT_VALUES for value in params.values()):  # -0.0 == 0.0, (True,) == (1,): not kept
        return httpx.URL(f"{known[1]}?{httpx.QueryParams(params)}")
    asked = (url, tuple((name, type(value), value) for name, value in params.items()))
    made = entry[2].get(asked)
    if made is None:
        if len(entry[2]) >= _RESOLVED_MAX:  # cursors: each page's query is another
            entry[2].clear()
        made = entry[2][asked] = httpx.URL(f"{known[1]}?{httpx.QueryParams(params)}")
    return made


def transport_error(exc: BaseException, *, op: str, create: bool, secret: str | None,
                    hidden: Sequence[str] = ()) -> ProviderError:
    """The error for a failed exchange: `ConnectError` when the request provably never left (connect
    failure, connect or pool timeout); else `OutcomeUnknownError` for a create call, `TransportError` otherwise.
    Neither `secret` nor `hidden` nor the request URL's query (`url_secrets`) is in its text.
    """
    try:
        asked = exc.request.url if isinstance(exc, httpx.RequestError) else None
    except RuntimeError:  # raised without its request
        asked = None
    hidden = (*hidden, *url_secrets(asked))
    detail = redact(f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__, secret, hidden)
    route = getattr(exc, "proxy", None)  # the proxy it went through (`runner.providers.proxy`)
    if route is not None:
        detail = f"{detail}; through the proxy {route.label}"
    if isinstance(exc, httpx.ProxyError):  # the proxy refused to open the tunnel to the host
        return ConnectError(f"{op}: the proxy{f' {route.label}' if route else ''} refused to connect{_host_of(exc)} "
                            f"(HTTP {redact(str(exc), secret, hidden)}); the request was not sent")
    if isinstance(exc, (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout, httpx.UnsupportedProtocol)):
        reason = _os_reason(exc) if isinstance(exc, httpx.ConnectError) else None
        said = redact(reason, secret, hidden) if reason else redact(f"{type(exc).__name__}: {exc}" if str(exc) else
                                                           type(exc).__name__, secret, hidden)
        via = f" through the proxy {route.label}" if route is not None else ""
        plain = ("; the server there answers in plain HTTP, not HTTPS: write its base URL with http://"
                 if reason and "WRONG_VERSION_NUMBER" in reason and route is None else "")
        return ConnectError(f"{op}: could not connect{_host_of(exc)}{via} ({said}); the request was not sent{plain}")
    if isinstance(exc, httpx.TooManyRedirects) and not create:  # only a download follows redirects
        return ServerError(f"{op}: the video's URL redirects in a loop ({MAX_REDIRECTS} redirects followed)",
                           code="REDIRECT_LOOP")
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


def _host_of(exc: httpx.RequestError) -> str:
    """" to host:port" of the request that failed, or "" where the exception names none."""
    try:
        url = exc.request.url
    except RuntimeError:  # raised without its request
        return ""
    port = url.port or {"https": 443, "http": 80}.get(url.scheme)
    return f" to {url.host}:{port}" if url.host and port else f" to {url.host}" if url.host else ""


def _os_reason(exc: BaseException) -> str | None:
    """Why the system could not connect ("Connection refused", "Name or service not known", a certificate
    refused), from the first error under `exc` that says, in place of the HTTP stack's own wording (aiohttp's
    names the TLS context object by its address); None where none does."""
    seen: set[int] = set()
    at: BaseException | None = exc
    while at is not None and id(at) not in seen:
        seen.add(id(at))
        if isinstance(at, BaseExceptionGroup) and at.exceptions:  # several addresses tried: the first one's
            at = at.exceptions[0]
            continue
        cert = getattr(at, "certificate_error", None)  # aiohttp's certificate refusal keeps the ssl error apart
        if isinstance(cert, BaseException):
            at = cert
            continue
        if isinstance(at, OSError) and at.strerror:
            if isinstance(at, (ssl.SSLError, socket.gaierror)) or not at.errno or at.errno < 0:
                return str(at.strerror)
            return os.strerror(at.errno)  # asyncio's own wording names the address ("Connect call failed (...)")
        at = at.__cause__ or at.__context__
    return None


_MALFORMED = object()


def answered_at(response: httpx.Response | Answer) -> float | None:
    """When the server answered, by its clock: the answer's HTTP `Date` header (whole seconds since the epoch);
    None without one, or one that does not parse."""
    value = response.headers.get("date")
    if not isinstance(value, str) or not value.strip():
        return None
    try:
        when = parsedate_to_datetime(value.strip())
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when.tzinfo is None:  # RFC 9110's date is GMT; an obsolete form without a zone is read so too
        when = when.replace(tzinfo=UTC)
    return when.timestamp()


def read_json(response: httpx.Response | Answer) -> Any:
    """The JSON body of a read response, None when empty, `_MALFORMED` when not JSON (nested too deep to parse
    included: `json` raises RecursionError for that)."""
    if not response.content:
        return None
    try:
        return response.json()
    except (ValueError, RecursionError):
        return _MALFORMED


def decode(
    response: httpx.Response | Answer, *, op: str, create: bool, expect_body: bool, key_env: str
) -> dict[str, Any]:
    body = read_json(response)
    status = response.status_code
    if 200 <= status < 300:
        if not expect_body:
            return body if isinstance(body, dict) else {}
        if isinstance(body, dict):
            return body
        if isinstance(response, Answer):
            response = response.full()
        message = redact(f"{op}: HTTP {status} with {_unusable(response, body)}", _sent_credential(response))
        # A web page where the API's JSON was asked for: the base URL reaches a web site or a portal, not the API,
        # and every request would meet the same page (WEB_PAGE, which a run takes for a setup error).
        code = WEB_PAGE if body is _MALFORMED and _is_page(response.text) else "MALFORMED_RESPONSE"
        if create:
            raise OutcomeUnknownError(message + "; the job may have been created", status=status,
                                      code=code if code == WEB_PAGE else None)
        raise ServerError(message, status=status, code=code)
    raise status_error(response, body if body is not _MALFORMED else None, op=op, key_env=key_env)


WEB_PAGE = "WEB_PAGE"
"""The code of a 2xx answer that is an HTML page where the API's JSON was asked for (`decode`)."""


def _is_page(text: str) -> bool:
    """Whether an answer's text, not JSON, is an HTML page."""
    text = text.strip()
    return text.startswith("<") or "<html" in text[:200].lower()


def _unusable(response: httpx.Response, body: Any) -> str:
    """What a 2xx answer that is not the API's JSON object is: an empty answer, an HTML page by its title (a
    captive portal's, a proxy's), malformed JSON, or JSON of another kind."""
    if not response.content.strip():
        return "an empty answer"
    if body is not _MALFORMED:
        return "JSON that is not an object"
    text = without_secret(response.text, _sent_credential(response)).strip()
    if _is_page(text):
        found = _HEADING.search(text)
        heading = " ".join(_TAG.sub(" ", found.group(2)).split()) if found else ""
        page = f"an HTML page {_cut(heading)!r}" if heading else "an HTML page"
        route = response.extensions.get("proxy")
        if route is not None:  # maybe the proxy's own page
            return f"{page}, not the API's answer: the proxy {route.label} or something past it answered"
        return f"{page}, not the API's answer: something between gridrun and the provider answered"
    return "malformed JSON"


def status_error(
    response: httpx.Response, body: Any, *, op: str, key_env: str, read: bool = True, keyless: str | None = None,
    hidden: Sequence[str] = (),
) -> ProviderError:
    """The `ProviderError` for a non-2xx `response` whose JSON body (or None) is `body`. `keyless`: what a 401 means
    for a request sent without the API key (a signed URL elsewhere), said in place of "check {key_env}". `hidden`:
    further texts no part of the message may hold (a signed URL's query, `url_secrets`)."""
    status = response.status_code
    # The key is taken out of whatever part of the answer is kept, the code and the request id too (a gateway that
    # echoes the request back), and out of a text before it is cut, which would leave a key it cuts unfound.
    secret = _credential(response.request.headers)
    code, message = _error_fields(body)
    if code is not None:
        code = without_hidden(without_secret(code, secret), hidden)
    if not message:
        text = without_hidden(without_secret(response.text, secret), hidden) if body is None and read else ""
        message = _text_excerpt(text, response.reason_phrase) or response.reason_phrase or "no message"
        route = response.extensions.get("proxy")
        if route is not None:  # not the API's words: maybe the proxy's own
            message = f"{message}, through the proxy {route.label}"
    named = _REQUEST_LINE.match(message)
    if named and op.startswith(f"{named.group(1)} "):  # a server that names the request itself: said once
        message = message[named.end():]
    message = redact(f"{op}: {message}", secret, hidden)
    asked_id = request_id(response, body)
    if asked_id is not None and without_hidden(without_secret(asked_id, secret), hidden) != asked_id:
        asked_id = None  # an id that is the key (or a signed URL's token) echoed back: none
    said_id = said_request_id(asked_id)  # what the provider's support asks for
    retry_after = parse_retry_after(response.headers, body)
    if status in (400, 403, 429) and code is not None and account_refused(code):
        # The account's balance, quota or credit spent, said with another status than 402 (OpenAI's 429
        # `insufficient_quota`, a 403 `QUOTA_EXCEEDED`, a 400 `insufficient_credits`): not a rate to wait out, nor
        # a fault of the request, but what a 402 says: every request of the account meets it until topped up.
        return RejectedError(f"{message} ({code}: top up the account balance){said_id}", status=status,
                             code="INSUFFICIENT_BALANCE")
    if status == 429:
        return RateLimitedError(message + said_id, status=status, code=code or "RATE_LIMITED", retry_after=retry_after,
                                code_given=code is not None)
    if status >= 500 or status == 408:
        return ServerError(message + said_id, status=status, code=code, retry_after=retry_after)
    if status == 401:
        return RejectedError(f"{message} ({keyless or f'check {key_env}'}){said_id}", status=status,
                             code="AUTHENTICATION_FAILED")
    if status == 402:
        return RejectedError(f"{message} (top up the account balance){said_id}", status=status,
                             code="INSUFFICIENT_BALANCE")
    if 400 <= status < 500:
        return RejectedError(message + said_id, status=status,
                             code=code or _DEFAULT_CODES.get(status, f"HTTP_{status}"), code_given=code is not None)
    if 300 <= status < 400:
        # Never followed (a request sent again elsewhere, the key with it). Where the target keeps the API's path (on
        # another scheme or host, under another prefix) the base URL is the one to change, to where it points
        # (REDIRECTED); elsewhere (a login page) something between gridrun and the provider redirected it, and the
        # base URL must not be pointed there (REDIRECTED_AWAY).
        where = response.headers.get("location")
        asked = response.request.url
        target = asked.join(where) if where else None
        to = f"redirects to {redact(str(target), None)}" if target is not None else "redirects, naming no Location"
        said = f"{op}: {asked.copy_with(query=None)} {to} (HTTP {status})"
        if target is not None and keeps_api_path(asked, target):
            return RejectedError(said, status=status, code="REDIRECTED")
        route = response.extensions.get("proxy")  # the proxy it went through, maybe the one that redirected it
        who = (f"the proxy {route.label} or something past it" if route is not None else
               "something between gridrun and the provider (a proxy, a login portal)")
        return RejectedError(f"{said}, away from the API's path: {who} redirected the request; do not set the base "
                             "URL there", status=status, code="REDIRECTED_AWAY")
    return ServerError(f"{message} (unexpected HTTP {status}){said_id}", status=status, code=code,
                       retry_after=retry_after)


# The response headers that carry the id a provider gives each request (OpenAI-shaped APIs' x-request-id, others'
# request-id), and the body fields that do, beside the error or in it.
_REQUEST_ID_HEADERS = ("x-request-id", "request-id")
_REQUEST_ID_FIELDS = ("request_id", "trace_id")
_REQUEST_ID = re.compile(r"[\w.:/+=@-]{1,120}")


def request_id(response: httpx.Response | Answer, body: Any) -> str | None:
    """The id the provider gave the request an error answers, from its headers or its JSON body: what a question to
    the provider's support quotes. None when there is none, or it is not a short token (never a whole text)."""
    found: list[Any] = [response.headers.get(name) for name in _REQUEST_ID_HEADERS]
    if isinstance(body, Mapping):
        error = body.get("error")
        for where in (body, error if isinstance(error, Mapping) else {}):
            found.extend(where.get(name) for name in _REQUEST_ID_FIELDS)
    for value in found:
        if isinstance(value, str) and _REQUEST_ID.fullmatch(value.strip()):
            return value.strip()
    return None


def keeps_api_path(asked: httpx.URL, target: httpx.URL) -> bool:
    """Whether a redirect from `asked` to `target` keeps the API's path: the same path (a trailing "/" aside) on
    another scheme, host or port, or the same path under another prefix (`/v1/videos` to `/openai/v1/videos`)."""
    path = asked.path.rstrip("/")
    moved = target.path.rstrip("/")
    if not path or not (moved == path or moved.endswith(path)):
        return False
    return moved != path or (target.scheme, target.host, target.port) != (asked.scheme, asked.host, asked.port)


# An error message that begins with the request it answers ("POST /v1/videos: no such route"): its method and path,
# which the op (`POST /videos`) names already.
_REQUEST_LINE = re.compile(r"(GET|POST|PUT|PATCH|DELETE|HEAD) /\S*: ")
# The longest excerpt of an error body that is not JSON: its first line, or an HTML page's title.
MAX_EXCERPT = 160
_HEADING = re.compile(r"<(title|h1)[^>]*>(.*?)</\1\s*>", re.IGNORECASE | re.DOTALL)
_TAG = re.compile(r"<[^>]*>")


def _text_excerpt(text: str, reason: str) -> str:
    """What an error body that is not JSON says, short: an HTML page (a gateway's or a proxy's, not the API's) by
    its title or first heading, else the reason phrase; plain text by its first line."""
    text = text.strip()
    if not text:
        return ""
    if text.startswith("<") or "<html" in text[:200].lower():
        found = _HEADING.search(text)
        heading = " ".join(_TAG.sub(" ", found.group(2)).split()) if found else ""
        return f"{_cut(heading or reason or 'an error page')} (an HTML page, not the API's answer)"
    return _cut(next(line.strip() for line in text.splitlines() if line.strip()))


def _cut(text: str) -> str:
    return text if len(text) <= MAX_EXCERPT else text[: MAX_EXCERPT - 1] + "…"


def _detail(detail: Any) -> str:
    """A FastAPI/fal-style `detail` that is not a string: each entry's field path (`loc`) and message
    (`msg`), or the JSON of what it is."""
    items = detail if isinstance(detail, list) else [detail]
    said = []
    for item in items:
        if isinstance(item, Mapping) and isinstance(item.get("msg"), str):
            loc = item.get("loc")
            where = ".".join(str(p) for p in loc) if isinstance(loc, (list, tuple)) and loc else ""
            said.append(f"{where}: {item['msg']}" if where else item["msg"])
        elif isinstance(item, str):
            said.append(item)
        else:
            said.append(_json.dumps(item, ensure_ascii=False, default=str))
    return "; ".join(said)


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


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
            message = _detail(detail) or None
    return code or _text(body.get("code")), message
