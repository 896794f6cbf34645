"""All-or-nothing downloads: a video streamed to a `.part` file, its type sniffed, its length, SHA-256
(against the server's digest header) and MP4 boxes checked, then fsync and an atomic rename, in a few
worker threads shared by the process.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import errno
import hashlib
import json
import os
import re
import stat
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, AsyncContextManager, NamedTuple, TypeVar

import anyio
import anyio.lowlevel
import httpx

from runner.errors import DownloadError, ExpiredError
from runner.limits import os_reason
from runner.outputs import (
    NOFOLLOW,
    PART_RECORD_SUFFIX,
    atomic_write,
    files_beside,
    fsync,
    open_regular,
    sidecar_name,
    sync_folder,
)
from runner.providers.base import Download
from runner.providers.transport import (
    _MALFORMED,
    _direct,
    encoded,
    read_answer,
    read_json,
    secret_of,
    sim_reset_types,
    status_error,
    transport_error,
    url_secrets,
)

T = TypeVar("T")

MAX_DOWNLOAD_BYTES = 8 * 1024**3
"""The largest video gridrun downloads (8 GiB, far above what a clip of minutes weighs): an endpoint that streams
for ever would otherwise fill the disk."""

STALL_SECONDS = 120.0
STALL_BYTES = 64 * 1024
"""A download that gets less than `STALL_BYTES` in `STALL_SECONDS` (half a kB a second, where a video comes at
megabytes a second) is stalled, and ended so (`STALLED`), then tried again as a truncated one is: the HTTP stacks'
read timeout bounds each read only, so a server trickling a video a byte at a time would hold it, and the run
that waits for it, for ever."""

TRY_SECONDS = 30 * 60.0
"""The longest one try of a download may stream (30 minutes: a video of 100 MB comes in it at 56 kB a second). A
server trickling just above the stall rule (64 KiB every 2 minutes, up to the 8 GiB a download may weigh) would
otherwise hold it, and the run, for months: past it the try is ended as stalled, its bytes held for the next try
as a cut one's are."""

_clock = time.monotonic  # the stall rule's clock

TOO_LARGE = "TOO_LARGE"
"""The code of a DownloadError for a body past `MAX_DOWNLOAD_BYTES`: fetching it again at once would not help."""

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
        if body.container is None and _looks_like_text(head):  # a sign-in or error page labelled as a video
            raise DownloadError(f"{op}: labelled {media}, but the body is text ({head[:16]!r}...)", code="WRONG_TYPE")
    elif media not in _OCTET_TYPES or body.container is None:
        raise DownloadError(f"{op}: not a video (Content-Type {body.content_type or 'missing'!r})", code="WRONG_TYPE")
    body.checked = True


def _looks_like_text(head: bytes) -> bool:
    """Whether the first bytes of a body are plain text (HTML, JSON, a message, in any language; a byte-order
    mark first or not): no video container is."""
    head = head.removeprefix(b"\xef\xbb\xbf")
    try:  # UTF-8 text (ASCII too), perhaps cut mid-character at the end of the bytes sniffed
        text = head.decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.start < len(head) - 3 or exc.reason != "unexpected end of data":
            return False
        text = head[: exc.start].decode("utf-8")
    return bool(text) and all(c.isprintable() or c in "\t\n\r" for c in text)


class _Boxes:
    """The top-level boxes of an ISO BMFF (MP4/MOV) file, walked as its bytes stream by: `feed` each chunk in
    order, then `problem(size)` says why the file is cut short or scrambled, or None when its boxes tile it.

    Walked in memory while the download streams: reading the file back would cost a few system calls per
    video in a worker thread, each a trip through the interpreter lock.
    """

    __slots__ = ("at", "error", "head", "kinds", "next", "open_ended")

    def __init__(self) -> None:
        self.at = 0              # the file offset of the next chunk
        self.next = 0            # where the next box header begins
        self.head = b""          # its bytes gathered so far, when it straddles chunks
        self.error: str | None = None
        self.open_ended = False  # a box of length 0 runs to the end of the file
        self.kinds: set[bytes] = set()  # the types of the boxes met

    def feed(self, chunk: bytes) -> None:
        start = self.at
        end = self.at = start + len(chunk)
        while self.next < end and self.error is None and not self.open_ended:
            if self.head:  # the header began in an earlier chunk: its rest opens this one
                head = self.head + chunk[: 16 - len(self.head)]
            else:
                off = self.next - start
                head = chunk[off : off + 16]
            if len(head) < 8 or len(head) < 16 and head[:4] == b"\0\0\0\1":
                self.head = head  # the rest comes with the next chunk
                return
            self.head = b""
            self.kinds.add(head[4:8])
            length = int.from_bytes(head[:4], "big")
            if length == 1:  # a 64-bit length after the type
                length = int.from_bytes(head[8:16], "big")
                if length < 16:
                    self.error = f"the box at byte {self.next} claims {length} bytes"
                    return
            elif length == 0:
                self.open_ended = True
                return
            elif length < 8:
                self.error = f"the box at byte {self.next} claims {length} bytes"
                return
            self.next += length

    def copy(self) -> _Boxes:
        """The walk as it stands, to go on from apart from this one."""
        other = _Boxes()
        other.at, other.next, other.head, other.error = self.at, self.next, self.head, self.error
        other.open_ended, other.kinds = self.open_ended, set(self.kinds)
        return other

    def problem(self, size: int) -> str | None:
        if self.error is not None:
            return self.error
        if self.head:
            return f"a box header at byte {self.next} is cut short"
        if not self.open_ended and self.next != size:
            return f"the last box ends at byte {self.next}, after the end of the file ({size} bytes)"
        # A file cut at a box boundary (no Content-Length to tell) lacks its index or its media.
        missing = [kind.decode() for kind in (b"moov", b"mdat") if kind not in self.kinds]
        return f"no {' or '.join(missing)} box" if missing else None


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


class _Target(NamedTuple):
    """A download's URL as httpx sends it (`text`), and the parts of it a download reads."""

    text: str
    scheme: str
    host: str
    port: int | None  # None: the scheme's own
    op: str  # "GET scheme://host[:port]/path", for messages


# A URL httpx would send as it is written: http(s), a lowercase host name or IPv4 address, a port other than
# the scheme's, a path and query of characters that need no quoting, no `%` escapes, no fragment, no dot
# segments, no IDNA label (httpx gives its host in Unicode). A provider's output URLs are such (a signed CDN URL, the simulator's); parsing them as httpx does
# cost more than any other step of a download's set-up (checking each character in Python).
_PLAIN_URL = re.compile(
    r"(?P<scheme>https?)://(?P<host>[a-z0-9](?:[a-z0-9-]*[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)*)"
    r"(?::(?P<port>[1-9][0-9]{0,4}))?(?P<path>/[A-Za-z0-9\-_~!$&'()*+,;=:@/.]*)(?:\?[A-Za-z0-9\-._~!$&'()*+,;=:@/?]*)?"
)
_DEFAULT_PORTS = {"http": 80, "https": 443}


def _target(client: httpx.AsyncClient, url: str) -> _Target:
    plain = _PLAIN_URL.fullmatch(url)
    if plain is not None and "/." not in plain["path"] and "xn--" not in plain["host"] and len(url) <= _MAX_PLAIN:
        scheme, host, port = plain["scheme"], plain["host"], plain["port"]
        if port is None or int(port) != _DEFAULT_PORTS[scheme]:
            netloc = host if port is None else f"{host}:{port}"
            return _Target(url, scheme, host, None if port is None else int(port),
                           f"GET {scheme}://{netloc}{plain['path']}")
    target = httpx.URL(url)
    if target.scheme and not target.host:
        # `file:///...`, `data:...`, `http:/path`: a scheme with no host to fetch from, which httpx would join to the
        # API's URL as a path of its own (another scheme with a host is refused as httpx sends it: BAD_URL too)
        shown = "data:..." if target.scheme == "data" else f"{target.scheme}:{target.path[:80]}"
        raise DownloadError(f"GET {shown}: unsupported URL (no host: only http and https URLs with one are fetched)",
                            code="BAD_URL")
    if target.is_relative_url:
        target = client.base_url.join(url)
    return _Target(str(target), target.scheme, target.host, target.port,
                   f"GET {target.scheme}://{target.netloc.decode('ascii', 'replace')}{target.path}")


_MAX_PLAIN = 8192  # longer ones go through httpx, which refuses those past its own limit


async def fetch_to_file(
    client: httpx.AsyncClient,
    url: str,
    dest: Path,
    *,
    on_saved: Callable[[str], None] | None = None,
    gate: AsyncContextManager[Any] | None = None,
    before_replace: Callable[[str], None] | None = None,
    size_bytes: int | None = None,
    partial: PartialDownload | None = None,
) -> Download:
    """Stream `url` to `dest`, all or nothing: `.part` file, length, type and container checks, SHA-256
    (against the server's digest header when it sends one), the size the provider announced (`size_bytes`,
    when it gave one), fsync, atomic rename; then `on_saved(sha256)` in the same worker thread. `before_replace(sha256)`, in that thread once the `.part` file is durable and
    just before the rename, keeps what `dest` holds (an earlier take) unless it is the same file; when it
    raises, `dest` is left as it was.

    `gate` (a request slot) is held while the exchange lasts; the connection and the slot are given back
    once the body is in, before the disk work.

    The API key goes only to the API's own origin; output URLs elsewhere are fetched without it.

    `partial`, the same object for each try of one job's download in a run: a try cut short leaves its `.part`
    file there (`PartialDownload`), and the next asks only for the rest (`Range`, with `If-Range`), going on
    from it when the server answers with that rest of the same video, else starting over. The caller discards
    it once no try is left. Given the take (`PartialDownload.take`), the first try goes on alike from the
    `.part` a run killed or stopped mid-download left, when its record says it is of the same take.

    :raises ExpiredError: 403, 404 or 410.
    :raises DownloadError: a short, empty or corrupt body, not a video, or not of the announced size; the `.part`
        file is removed (or, cut short, held in `partial` for the next try).
    """
    target = _target(client, url)
    op = target.op
    secret = secret_of(client)
    base = client.base_url
    same_origin = (target.scheme, target.host, target.port) == (base.scheme, base.host, base.port)
    if partial is not None:
        partial.where = op[4:]  # "scheme://host[:port]/path": no query
        if partial.take is not None and not partial.looked:
            await partial.adopt(files_beside(os.fspath(dest))[0])
    async with contextlib.AsyncExitStack() as exchange:
        if gate is not None:
            await exchange.enter_async_context(gate)
        try:
            asked = partial.headers() if partial is not None else {}
            response = await _open_download(client, target.text, target.scheme, same_origin, exchange, asked)
        except httpx.RequestError as exc:
            if isinstance(exc, httpx.UnsupportedProtocol):
                raise DownloadError(f"{op}: unsupported URL", code="BAD_URL") from exc
            raise transport_error(exc, op=op, create=False, secret=secret, hidden=url_secrets(url)) from exc
        except sim_reset_types() as exc:
            if getattr(exc, "phase", None) == "mid_body":
                raise DownloadError(f"{op}: truncated (connection reset mid-body)", code="TRUNCATED") from exc
            raise transport_error(exc, op=op, create=False, secret=secret, hidden=url_secrets(url)) from exc
        if isinstance(response, httpx.Response):
            # the key went with the request only to the API's origin, and there only if no redirect led elsewhere
            origin = response.url.scheme, response.url.host, response.url.port
            key_sent = same_origin and origin == (target.scheme, target.host, target.port)
            return await _save(response, dest, op=op, secret=secret, on_saved=on_saved, release=exchange.aclose,
                               before_replace=before_replace, key_sent=key_sent, size_bytes=size_bytes,
                               partial=partial)
        raw, chunks = response
        return await _write(
            raw.status, raw.headers, chunks, dest,
            op=op, secret=secret, on_saved=on_saved, release=exchange.aclose, encoded_size=None,
            before_replace=before_replace, size_bytes=size_bytes, partial=partial,
        )


_VIDEO_ACCEPT = {"Accept": "video/*, */*"}
_REDIRECTS = frozenset({301, 302, 303, 307, 308})


async def _open_download(
    client: httpx.AsyncClient, target: str, scheme: str, same_origin: bool, exchange: contextlib.AsyncExitStack,
    asked: Mapping[str, str] | None = None,
) -> httpx.Response | tuple[Any, AsyncIterator[bytes]]:
    """The GET of a download, its status and headers in; `exchange` closes it. Straight on aiohttp (when
    `_direct` allows) a plain 2xx comes back as (its aiohttp response, its body's chunks); anything else
    (another status, a compressed body) as an `httpx.Response`, and a redirect is followed by httpx's
    client, from the first hop. `asked`: headers of the request's own (a resumed download's range)."""
    wanted = {**_VIDEO_ACCEPT, **asked} if asked else _VIDEO_ACCEPT
    direct = _direct(client) if scheme in ("http", "https") else None
    if direct is not None:
        headers = direct.headers_for(wanted, key=same_origin)

        def request() -> httpx.Request:  # only for a failure's exception
            return httpx.Request("GET", target, headers=headers)

        raw = await direct.transport.exchange(direct.session, "GET", target, headers, None, direct.timeout, request)
        exchange.callback(raw.release)
        status = raw.status
        if 200 <= status < 300 and not encoded(raw.headers):
            return raw, direct.aio.chunks(raw, request)
        if status not in _REDIRECTS or "location" not in raw.headers:
            response = direct.aio.wrap(raw, request())
            exchange.push_async_callback(response.aclose)
            return response
        raw.release()
    request = client.build_request("GET", target, headers=wanted)
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
    before_replace: Callable[[str], None] | None = None,
    key_sent: bool = True,
    size_bytes: int | None = None,
    partial: PartialDownload | None = None,
) -> Download:
    status = response.status_code
    if partial is not None and status == 416:
        partial.discard()  # the range refused: the next try starts over
    if status in (403, 404, 410):
        raise ExpiredError(f"{op}: the output URL is gone (HTTP {status})", status=status, code="EXPIRED")
    if not 200 <= status < 300:
        keyless = None if key_sent else ("a URL away from the API's own host, fetched without the API key: its "
                                         "signature refused or expired, not the key; a fresh URL is asked for")
        # a file host's error text may echo the request, the signed URL's token with it (the URL redirected to too)
        hidden = tuple(value for hop in (*response.history, response) for value in url_secrets(hop.request.url))
        try:
            await read_answer(response)
        except httpx.RequestError:
            raise status_error(response, None, op=op, key_env="the API key", read=False, keyless=keyless,
                               hidden=hidden) from None
        body = read_json(response)
        raise status_error(response, body if body is not _MALFORMED else None, op=op, key_env="the API key",
                           keyless=keyless, hidden=hidden)
    return await _write(
        status, response.headers, response.aiter_bytes(), dest,
        op=op, secret=secret, on_saved=on_saved, release=release,
        encoded_size=(lambda: response.num_bytes_downloaded) if encoded(response.headers) else None,
        before_replace=before_replace, size_bytes=size_bytes, partial=partial,
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
    before_replace: Callable[[str], None] | None = None,
    size_bytes: int | None = None,
    partial: PartialDownload | None = None,
) -> Download:
    """A 2xx body (its `status` and `headers`, httpx's or aiohttp's) from `chunks` into `dest`;
    `encoded_size()`, the bytes received when they were compressed on the wire. A 206 goes on from the bytes
    `partial` holds (the rest of the same video, as `PartialDownload.goes_on` checks), or is refused."""
    expected = _content_length(headers.get("content-length"))
    part = files_beside(os.fspath(dest))[0]  # a string: pathlib's parsing costs more than the system calls
    start = partial.goes_on(status, headers, part, op) if partial is not None else 0
    if start:
        assert partial is not None and partial.body is not None
        info, digest, boxes, announced, total = partial.body, partial.digest, partial.boxes, partial.announced, partial.total
        validator = partial.validator
    else:
        if status == 206:  # no range was asked for: a part of the video is not the video
            raise DownloadError(f"{op}: the server sent a part of the video (HTTP 206, "
                                f"{headers.get('content-range') or 'no Content-Range'}) where the whole was asked for",
                                status=status, code="TRUNCATED")
        info = _Body(headers.get("content-type", ""))
        digest = hashlib.sha256()
        boxes = _Boxes()
        announced = None if encoded_size is not None else _announced_sha256(headers)
        total = expected if encoded_size is None else None
        validator = _validator(headers) if encoded_size is None else None
    size = start
    done = held = False
    window_at, window_size = _clock(), size  # the stall rule's window: since when, and the size then
    began = window_at  # the try's, for TRY_SECONDS
    if expected is not None and start + expected > MAX_DOWNLOAD_BYTES:
        if partial is not None:
            partial.discard()
        raise DownloadError(_too_large(op, f"Content-Length says {start + expected:,} bytes"), status=status,
                            code=TOO_LARGE)
    try:
        if not start and partial is not None:
            partial.unrecord()  # no record may name the bytes of another body, not for a moment
        fd = _append(part) if start else _create(part)
        if not start and partial is not None:
            partial.record(part, total, validator, announced, info.content_type)
        mark = partial.next_mark() if partial is not None else 0  # where the next checkpoint falls (0: none)
        try:
            try:
                async for chunk in chunks:
                    if not info.checked:
                        info.head += chunk[: _SNIFF_BYTES - len(info.head)]
                        if len(info.head) >= _SNIFF_BYTES:
                            _check_type(info, op)
                    if size + len(chunk) > MAX_DOWNLOAD_BYTES:
                        raise DownloadError(_too_large(op, f"more than {MAX_DOWNLOAD_BYTES:,} bytes were sent"),
                                            status=status, code=TOO_LARGE)
                    _write_all(fd, chunk)
                    digest.update(chunk)
                    boxes.feed(chunk)
                    size += len(chunk)
                    if mark and size >= mark:
                        assert partial is not None
                        mark = await partial.checkpoint(fd, size, digest.hexdigest())
                    now = _clock()
                    if now - began >= TRY_SECONDS:
                        held = _hold(partial, part, size, total, validator, announced, digest, boxes, info)
                        raise DownloadError(
                            f"{op}: too slow: {size - start:,} bytes in {(now - began) / 60:.0f} min, the longest a try "
                            "of a download streams" + _going_on(held), status=status, code="STALLED")
                    if now - window_at >= STALL_SECONDS:
                        if size - window_size < STALL_BYTES:
                            held = _hold(partial, part, size, total, validator, announced, digest, boxes, info)
                            raise DownloadError(
                                f"{op}: stalled after {size} bytes: {size - window_size} in the last "
                                f"{now - window_at:.0f} s" + _going_on(held), status=status, code="STALLED")
                        window_at, window_size = now, size
            except httpx.RequestError as exc:
                held = _hold(partial, part, size, total, validator, announced, digest, boxes, info)
                raise DownloadError(_cut_text(op, exc, size, total, start, held), status=status,
                                    code="TRUNCATED") from exc
            except sim_reset_types() as exc:
                held = _hold(partial, part, size, total, validator, announced, digest, boxes, info)
                raise DownloadError(_cut_text(op, exc, size, total, start, held), code="TRUNCATED") from exc
            except (anyio.get_cancelled_exc_class(), KeyboardInterrupt):
                # The run stopped (a second Ctrl-C): a `.part` its record names is left for the next run to go on from
                held = partial is not None and partial.recorded is not None and info.checked and 0 < size < (total or 0)
                if held:  # all the bytes written, checked by the next run: a stop is in no hurry
                    assert partial is not None
                    partial.checkpoint_now(fd, size, digest.hexdigest())
                raise
            if size == 0:
                raise DownloadError(f"{op}: empty body", status=status, code="EMPTY")
            if not info.checked:
                _check_type(info, op)
            received = encoded_size() if encoded_size is not None else size - start
            short = expected is not None and received < expected and encoded_size is None
            if short or start and total is not None and size < total:
                # the body ended without a word (a server closing early where the stack does not count its bytes)
                held = _hold(partial, part, size, total, validator, announced, digest, boxes, info)
                raise DownloadError(_cut_text(op, None, size, total, start, held), status=status, code="TRUNCATED")
            if start and total is not None and size > total:
                raise DownloadError(f"{op}: got {size:,} bytes, more than the {total:,} of the video whose rest was "
                                    "asked for", status=status, code="TRUNCATED")
            if expected is not None and received != expected:
                raise DownloadError(
                    f"{op}: got {received:,} bytes, Content-Length said {expected:,}", status=status, code="TRUNCATED"
                )
            if announced is not None and digest.digest() != announced:
                raise DownloadError(f"{op}: the SHA-256 differs from the server's digest header", code="CORRUPT")
            problem = boxes.problem(size) if info.container == "bmff" else None
            if problem:
                raise DownloadError(f"{op}: not a complete MP4: {problem}", status=status, code="CORRUPT")
            # A whole, well-formed file of another size than the provider announced: perhaps not the one it made (a
            # CDN's placeholder clip, another object under a reused URL), perhaps a figure off by a few bytes. Saved
            # all the same (a paid render is never thrown away, nor fetched for ever), and said (`size_announced`).
            differs = size_bytes if size_bytes is not None and size != size_bytes else None
            await release()  # the body is in: the connection and the request slot serve others meanwhile
            # One trip to a worker thread: fsync, the rename, the sidecar and the folder's fsync.
            sidecar_error = await _in_disk_thread(_settle, fd, part, dest, on_saved, digest.hexdigest(), before_replace,
                                                  partial.recorded if partial is not None else None)
        finally:
            os.close(fd)
        done = True
    except OSError as exc:  # the local file system: permissions, a folder in the way, a full disk
        held = False
        where = exc.filename2 or exc.filename or dest  # os.replace names the folder in the way second
        raise DownloadError(f"{op}: cannot write {where}: {os_reason(exc)}", code=WRITE_FAILED) from exc
    finally:
        if not held:
            if partial is not None:
                if done:
                    partial.recorded = None  # removed by `_settle`
                else:
                    partial.unrecord()
                partial.forget()
            if not done:
                with contextlib.suppress(OSError):
                    os.unlink(part)
    return Download(path=dest, sha256=digest.hexdigest(), size_bytes=size, content_type=info.media or "video/mp4",
                    sidecar_error=sidecar_error, size_announced=differs)


def size_differs_text(got: Download) -> str:
    """What a run says of a video saved whose size is not the one the provider announced (`Download.size_announced`)."""
    return (f"video saved, but it is {size_text(got.size_bytes)} where the provider said "
            f"{size_text(got.size_announced or 0)}: look at it (another file, a CDN's placeholder, may have been "
            "served in its place); it is kept, paid for")


def size_text(count: int) -> str:
    """A byte count as a download's messages write it: "200,000,000 bytes (200.0 MB)", "10,280 bytes"."""
    return f"{count:,} bytes ({count / 1e6:.1f} MB)" if count >= 1_000_000 else f"{count:,} bytes"


def _cut_text(op: str, exc: BaseException | None, size: int, total: int | None, start: int, held: bool) -> str:
    """Why a body stopped short, in words (no HTTP stack's internals): how it ended, after how many of how many
    bytes, and whether the next try goes on from there."""
    if exc is None:
        how = "the body ended"
    elif isinstance(exc, httpx.TimeoutException):
        how = "the server sent nothing more within the read timeout"
    elif isinstance(exc, httpx.RemoteProtocolError):
        how = "the connection closed"
    elif isinstance(exc, httpx.RequestError):
        how = "the connection broke"
    else:
        how = "the connection was reset"
    if not total:
        got = size_text(size)
    elif total < 1_000_000:
        got = f"{size:,} of {total:,} bytes"
    else:
        got = f"{size:,} of {total:,} bytes ({size / 1e6:.1f} MB of {total / 1e6:.1f} MB)"
    since = f", this try going on from byte {start:,}" if start else ""
    return f"{op}: cut short: {how} after {got}{since}" + _going_on(held)


def _going_on(held: bool) -> str:
    return "; the next try asks for the rest" if held else ""


def _validator(headers: Mapping[str, str]) -> str | None:
    """What tells this body from another at the same URL (`If-Range`): a strong ETag, else a Last-Modified
    date; None when the server gave neither (a cut body is then fetched again whole)."""
    etag = (headers.get("etag") or "").strip()
    if etag.startswith('"'):
        return etag
    modified = (headers.get("last-modified") or "").strip()
    return modified or None


def _hold(
    partial: PartialDownload | None, part: str, size: int, total: int | None, validator: str | None,
    announced: bytes | None, digest: Any, boxes: _Boxes, info: _Body,
) -> bool:
    """Keep the `.part` of a body cut short in `partial`, for the next try to ask for the rest: only where the
    server said how large the whole is and what tells it from another (`_validator`), and the type checks
    passed. Whether it was kept."""
    if partial is None or not validator or not total or not 0 < size < total or not info.checked:
        return False
    partial.part, partial.size, partial.total, partial.validator = part, size, total, validator
    partial.announced, partial.digest, partial.boxes, partial.body = announced, digest, boxes, info
    return True


RECORD_MIN_BYTES = 1024**2
"""The smallest video whose `.part` is recorded for a later run to go on from (1 MiB): a smaller one is fetched
again whole in a moment, where recording it would cost every download of a grid of small clips a file more."""

CHECKPOINTS = 16
"""How many checkpoints a recorded `.part` gets at most as it streams (one every 1/16 of the video, and at least
1 MiB apart): each costs an fsync of the `.part` and a rewrite of its record, and a run after a kill goes on from
the last one, fetching again at most that share of the video."""


class PartialDownload:
    """The bytes of a video a cut try of its download left in its `.part` file, with what was learned of the whole
    as they streamed (its size, validator, the digest and box walk so far), for the next try of the same run to
    ask only for the rest: a video of a gigabyte cut at 90 % is not fetched whole again. Owned by the caller
    that tries (one per job's download in a run), which calls `discard` once it tries no more: no `.part` is left
    behind by a run that ends, but one a stop or a kill cut, which its record names.

    `take`: what the video is of (the job's hash, the provider's id of the video, the job's attempt), for
    the `.part` of a large video to be recorded beside it (`record`) as it begins, and a `.part` an earlier
    run left to be gone on from (`adopt`) only when its record names the same take."""

    def __init__(self, take: Mapping[str, Any] | None = None) -> None:
        self.take = dict(take) if take is not None else None
        self.looked = False  # whether a `.part` an earlier run left was looked for (`adopt`)
        self.recorded: str | None = None  # the record of the `.part` written, while it stands
        self.where = ""  # the URL's scheme, host and path, which the record names
        # A `.part` an earlier run left, not gone on from: its path, size and why, when its bytes are not the ones
        # written (None: another take's, or a record that cannot be read)
        self.removed: tuple[str, int, str | None] | None = None
        # A `.part` an earlier run left, gone on from only up to its last checkpoint whose bytes are unchanged: its
        # path, its size, the bytes kept
        self.cut_back: tuple[str, int, int] | None = None
        self.doc: dict[str, Any] = {}  # the record written or found, while it stands
        self.marks: list[list[Any]] = []  # its checkpoints: [size, SHA-256 of the bytes up to it], in order
        self.forget()

    def forget(self) -> None:
        """Hold nothing (the `.part` file, if any, is the caller's to remove)."""
        self.part: str | None = None
        self.size = self.total = 0
        self.validator = ""
        self.announced: bytes | None = None
        self.digest: Any = None
        self.boxes: _Boxes | None = None
        self.body: _Body | None = None

    def discard(self) -> None:
        """Remove the `.part` file held and its record, and hold nothing."""
        self.unrecord()
        if self.part is not None:
            with contextlib.suppress(OSError):
                os.unlink(self.part)
        self.forget()

    def record(self, part: str, total: int | None, validator: str | None, announced: bytes | None,
               content_type: str) -> None:
        """Write beside the `.part` just begun (`part`) what its bytes are of: the take, the URL's host and path
        (never its query: a signed URL's credentials, which expire), the validator and size of the whole, for
        a run after a kill or a stop to go on from it (`adopt`). Only for a video of RECORD_MIN_BYTES or more
        whose server names a validator. Best effort: a record not written leaves the video fetched whole.

        The bytes a later run finds in the `.part` are trusted only up to a checkpoint (`checkpoint`): a size the
        `.part` was synced to and the SHA-256 of its bytes up to there, added to the record as the video streams;
        a machine's crash may leave a tail the disk never took, a sync tool or a disk error change bytes."""
        self.unrecord()
        if self.take is None or not validator or total is None or total < RECORD_MIN_BYTES or not self.where:
            return
        doc = {"gridrun": "part", "take": self.take, "url": self.where, "validator": validator, "total": total,
               "content_type": content_type,
               "sha256": base64.b64encode(announced).decode() if announced is not None else None,
               "checkpoints": []}
        path = part + PART_RECORD_SUFFIX
        if not _put_record(path, doc):
            with contextlib.suppress(OSError):
                os.unlink(path)
            return
        self.recorded, self.doc, self.marks = path, doc, []

    def unrecord(self) -> None:
        """Remove the record written (`record`), if any."""
        if self.recorded is not None:
            with contextlib.suppress(OSError):
                os.unlink(self.recorded)
            self.recorded = None
        self.doc, self.marks = {}, []

    def next_mark(self) -> int:
        """The size of the `.part` at which its next checkpoint falls; 0 when it gets none (no record, or the
        video ends first)."""
        if self.recorded is None or not self.doc:
            return 0
        total = self.doc["total"]
        mark = (self.marks[-1][0] if self.marks else 0) + max(RECORD_MIN_BYTES, total // CHECKPOINTS)
        return mark if mark < total else 0

    async def checkpoint(self, fd: int, size: int, sha256: str) -> int:
        """Add a checkpoint to the record (`checkpoint_now`) in a disk thread; the size of the next one (0: none)."""
        await _in_disk_thread(self.checkpoint_now, fd, size, sha256)
        return self.next_mark()

    def checkpoint_now(self, fd: int, size: int, sha256: str) -> None:
        """Sync the `.part` (`fd`, `size` bytes written, `sha256` their digest), then rewrite its record with
        that checkpoint added, whole or not at all: a later run goes on from the `.part` only up to the last
        checkpoint whose bytes are unchanged (`adopt`). Best effort: a checkpoint not written leaves the one before."""
        if self.recorded is None or not self.doc:
            return
        marks = [*self.marks, [size, sha256]]
        try:
            fsync(fd)
        except OSError:
            return
        if _put_record(self.recorded, {**self.doc, "checkpoints": marks}):
            self.marks = marks

    async def adopt(self, part: str) -> None:
        """Take up the `.part` a run killed or stopped mid-download left (`part`), when its record names this
        take, the URL's host and path (`where`) and a validator, and its bytes are a video's beginning short of the
        whole the record names: its bytes hashed and walked first, for the whole file's digest and boxes to be
        checked at its end. Only its bytes up to the last checkpoint whose SHA-256 they still have are gone on
        from, the rest cut off (said in `cut_back`); with no such checkpoint the download starts over. A `.part`
        whose record does not match (another take, attempt or URL, or no record that can be read) is removed with
        its record: the download starts over. A `.part` with no record is left to the download, which writes over
        it. A `.part` removed is said in `removed`."""
        self.looked = True
        try:  # most downloads find none: no trip to a disk thread for them
            os.lstat(part)
        except OSError:
            return
        path = part + PART_RECORD_SUFFIX
        found = await _in_disk_thread(_found_part, part, path, self.take, self.where)
        if found is None:
            return
        self.recorded = path
        if isinstance(found, int):  # not of this take, or not to go on from
            if found >= 0:
                self.removed = (part, found, None)
            self.discard_file(part)
            return
        if isinstance(found[0], str):  # this take's, but no bytes of it checked whole
            self.removed = (part, found[1], found[0])
            self.discard_file(part)
            return
        (self.size, self.total, self.validator, self.announced, self.digest, self.boxes, self.body, self.doc,
         self.marks, held) = found
        self.part = part
        if held != self.size:
            self.cut_back = (part, held, self.size)

    def discard_file(self, part: str) -> None:
        """Remove `part`, a `.part` not to go on from, and its record."""
        self.unrecord()
        with contextlib.suppress(OSError):
            os.unlink(part)
        self.forget()

    def headers(self) -> dict[str, str]:
        """The headers that ask for the rest of the video (`Range` from the bytes held, `If-Range` its validator:
        the whole again should it have changed); none when nothing usable is held (the `.part` gone or changed
        since, which is then dropped)."""
        if not self.size or self.part is None:
            return {}
        try:
            held = os.stat(self.part).st_size
        except OSError:
            held = -1
        if held != self.size:
            self.discard()
            return {}
        return {"Range": f"bytes={self.size}-", "If-Range": self.validator}

    def goes_on(self, status: int, headers: Mapping[str, str], part: str, op: str) -> int:
        """Where the answer to a try begins in the video: the bytes held (a 206 with the rest of the same video:
        its range from there to the end of a whole of the size seen, the same validator), or 0 for a whole body
        (a 200: the video changed, or the server sends no ranges), the bytes held dropped.

        :raises DownloadError: a 206 of another range or of another video; the bytes held dropped, the next try
            starts over.
        """
        if not self.size or part != self.part:
            self.discard()
            return 0
        if status != 206:
            self.discard()
            return 0
        wanted = f"bytes {self.size}-{self.total - 1}/{self.total}"
        got = " ".join((headers.get("content-range") or "").split())
        etag = (headers.get("etag") or "").strip()
        same = got == wanted and not encoded(headers) and (not etag or not self.validator.startswith('"')
                                                          or etag == self.validator)
        if not same:
            self.discard()
            raise DownloadError(
                f"{op}: asked for the rest of the video from byte {wanted[6:].split('-')[0]}, the server sent "
                f"{got or 'a part with no Content-Range'}" + (f" of ETag {etag}" if etag and etag != self.validator
                                                              else "") + "; the next try starts over",
                status=status, code="TRUNCATED")
        return self.size


def _found_part(part: str, path: str, take: Any, where: str) -> int | tuple[Any, ...] | None:
    """What `PartialDownload.adopt` finds of the `.part` at `part` and its record at `path`: None when there is no
    record; the `.part`'s size (-1: none) when the record does not name this take (`take`) and URL (`where`),
    or the bytes are no video's beginning short of the whole; (why, size) when no checkpoint of the record holds
    (none was written, or the bytes up to the first changed since); else (size, total, validator, announced
    digest, digest, boxes, body, record, checkpoints, size found) of the bytes up to the last checkpoint whose
    digest they have, as they would be had they just streamed in, the `.part` cut to that size."""
    try:
        with open_regular(path) as f:
            text = f.read(64 * 1024)
    except OSError:
        return None
    try:
        st = os.lstat(part)
    except OSError:
        return -1
    try:
        found: Any = json.loads(text)
    except ValueError:
        return st.st_size
    if not isinstance(found, dict):
        return st.st_size
    total, validator, announced = found.get("total"), found.get("validator"), found.get("sha256")
    same = (found.get("gridrun") == "part" and found.get("take") == take and found.get("url") == where
            and isinstance(validator, str) and validator and isinstance(total, int) and not isinstance(total, bool)
            and stat.S_ISREG(st.st_mode) and _SNIFF_BYTES <= st.st_size < total <= MAX_DOWNLOAD_BYTES)
    if not same:
        return st.st_size
    marks = _checkpoints(found.get("checkpoints"), st.st_size)
    if not marks:
        first = _checkpoints(found.get("checkpoints"), 1 << 62)[:1]
        if first:  # recorded, but the file is shorter now: cut since
            return (f"it is {st.st_size:,} bytes, shorter than its first checkpoint ({first[0][0]:,} bytes): cut "
                    "since it was written"), st.st_size
        return "no bytes of it were recorded as written to the disk", st.st_size
    held = _read_part(part, str(found.get("content_type") or ""), marks)
    if held is None:
        return st.st_size
    if isinstance(held, str):
        return held, st.st_size
    try:
        digest_header = base64.b64decode(announced, validate=True) if isinstance(announced, str) else None
    except binascii.Error:
        digest_header = None
    digest, boxes, body, size = held
    kept = [mark for mark in marks if mark[0] <= size]
    if size != st.st_size:  # bytes past the last checkpoint that holds: not known to be the ones written
        try:
            os.truncate(part, size)
        except OSError:
            return st.st_size
        found["checkpoints"] = kept
        _put_record(path, found)
    return size, total, validator, digest_header, digest, boxes, body, found, kept, st.st_size


def _checkpoints(value: Any, size: int) -> list[list[Any]]:
    """The record's checkpoints within the `size` bytes of its `.part` ([size, SHA-256 in hex], sizes rising),
    up to the first that is not one."""
    marks: list[list[Any]] = []
    if not isinstance(value, list):
        return marks
    for mark in value:
        if not (isinstance(mark, list) and len(mark) == 2 and type(mark[0]) is int and isinstance(mark[1], str)
                and (marks[-1][0] if marks else _SNIFF_BYTES - 1) < mark[0] <= size):
            break
        marks.append(mark)
    return marks


def _read_part(part: str, content_type: str, marks: list[list[Any]]) -> tuple[Any, _Boxes, _Body, int] | str | None:
    """The digest, box walk and sniffed type of the bytes of `part` up to the last of the checkpoints `marks`
    whose SHA-256 they have (as they would be had they just streamed in), and their count, the file read once;
    why not, when they have not even the first's; None when they are not a video's beginning or cannot be read."""
    digest, boxes, body, size = hashlib.sha256(), _Boxes(), _Body(content_type), 0
    good: tuple[Any, _Boxes, int] | None = None
    try:
        with open_regular(part) as f:
            for length, sha256 in marks:
                while size < length and (chunk := f.read(min(1024**2, length - size))):
                    if not body.checked:
                        body.head += chunk[: _SNIFF_BYTES - len(body.head)]
                        if len(body.head) >= _SNIFF_BYTES:
                            _check_type(body, "")
                    digest.update(chunk)
                    boxes.feed(chunk)
                    size += len(chunk)
                if size != length or digest.hexdigest() != sha256.lower():
                    break
                good = digest.copy(), boxes.copy(), size
    except (OSError, DownloadError):
        return None
    if good is None:
        return "its bytes are not the ones written (changed since, or never written to the disk whole)"
    if not body.checked or good[1].error is not None:
        return None
    return good[0], good[1], body, good[2]


def _put_record(path: str, doc: Mapping[str, Any]) -> bool:
    """Write the record `doc` of a `.part` at `path`, whole or not at all (`atomic_write`: a temporary file of
    gridrun's beside it, renamed over it, which a run removes once a kill left it): whether it was."""
    try:
        atomic_write(path, json.dumps(doc), durable=False)
    except OSError:
        return False
    return True


# A `.part` is gridrun's own name: never opened through a link (NOFOLLOW).
_APPEND_FLAGS = os.O_WRONLY | os.O_APPEND | NOFOLLOW | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0)


def _append(path: str) -> int:
    """The `.part` file a cut try left, open to write on at its end (a link put there since is not followed: the
    open fails)."""
    return os.open(path, _APPEND_FLAGS)


def _too_large(op: str, what: str) -> str:
    return (f"{op}: refused, {what}: no video is that large (gridrun downloads at most {MAX_DOWNLOAD_BYTES:,} bytes, "
            "8 GiB); the endpoint may be broken or hostile, check the base URL; the partial file was removed")


# The code of a DownloadError raised for the local file system, not the download: fetching again won't help.
WRITE_FAILED = "WRITE_FAILED"


_CREATE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | NOFOLLOW | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0)


def _create(path: str) -> int:
    """A new file at `path` open to write (a bare descriptor: no buffer, no terminal check), making the
    folder only when it is missing (one system call less per download). A link at `path` is removed and a file
    made in its place, never written through: what it leads to is left as it is."""
    try:
        return os.open(path, _CREATE_FLAGS, 0o666)
    except FileNotFoundError:
        os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
        return os.open(path, _CREATE_FLAGS, 0o666)
    except OSError as exc:
        if exc.errno != errno.ELOOP or not os.path.islink(path):
            raise
        os.unlink(path)  # the link itself, nothing it leads to
        return os.open(path, _CREATE_FLAGS | os.O_EXCL, 0o666)


def _write_all(fd: int, data: bytes) -> None:
    written = os.write(fd, data)
    if written < len(data):  # a regular file takes it all but at a signal or a full disk
        view = memoryview(data)[written:]
        while view:
            view = view[os.write(fd, view):]


# Downloads settle (fsync, rename, sidecar) in at most this many worker threads at once. More add nothing:
# the file system's journal batches concurrent fsyncs, so a few threads keep up (10,000 jobs finish alike
# with 4 or 40), and fewer threads mean fewer malloc arenas (2,000 jobs: peak RSS 109 MB with 4, 117-123 MB
# with 40; at 10,000 the two are within noise, 254 and 250 MB).
DISK_THREADS = 4
_disk_threads: anyio.lowlevel.RunVar[anyio.CapacityLimiter] = anyio.lowlevel.RunVar("gridrun_disk_threads")
_disk_pool: ThreadPoolExecutor | None = None
_disk_pool_lock = threading.Lock()


async def _in_disk_thread(fn: Callable[..., T], *args: Any) -> T:
    """`fn(*args)` in one of DISK_THREADS worker threads; a caller cancelled once it has begun still waits for it
    to end (it renames files the caller would otherwise clean up under it), one cancelled while it waits for a
    thread drops it (a detach on a slow disk ends once the settles under way have, not every one queued).

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
        pool = _disk_pool
    trip = _Trip()
    future = pool.submit(trip.run, fn, *args)
    try:
        return await asyncio.wrap_future(future, loop=loop)
    except anyio.get_cancelled_exc_class():
        if trip.drop():
            raise
        with anyio.CancelScope(shield=True):
            return await asyncio.wrap_future(future, loop=loop)


class _Trip:
    """One call in a disk thread, which begins unless its caller dropped it first (`drop`)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._begun = self._dropped = False

    def run(self, fn: Callable[..., T], *args: Any) -> T:
        with self._lock:
            if self._dropped:
                raise _Dropped
            self._begun = True
        return fn(*args)

    def drop(self) -> bool:
        """Whether the call is dropped now: True unless it has begun."""
        with self._lock:
            self._dropped = not self._begun
            return self._dropped


class _Dropped(Exception):
    """A disk thread's call its caller dropped before it began."""


def close_disk_threads() -> None:
    """End the download's disk threads once nothing downloads any more (the `gridrun` command, its work done):
    the pool's threads would otherwise keep the interpreter's exit waiting for them. A download after this
    starts new ones."""
    global _disk_pool
    with _disk_pool_lock:
        pool, _disk_pool = _disk_pool, None
    if pool is not None:
        pool.shutdown(wait=True)


def _disk_limiter() -> anyio.CapacityLimiter:
    """The event loop's limiter of threads doing download disk work (outside asyncio)."""
    try:
        return _disk_threads.get()
    except LookupError:
        limiter = anyio.CapacityLimiter(DISK_THREADS)
        _disk_threads.set(limiter)
        return limiter


def _settle(
    fd: int, part: str, dest: Path, on_saved: Callable[[str], None] | None, sha256: str,
    before_replace: Callable[[str], None] | None = None, record: str | None = None,
) -> str | None:
    """fsync the written `.part`, call `before_replace(sha256)` (which keeps the file `dest` holds), rename the
    `.part` to `dest`, call `on_saved(sha256)` (which writes the sidecar beside it), then fsync the folder:
    one sync makes both renames durable, the video's and the sidecar's.

    Returns why the sidecar could not be written (a full disk, too many open files: "cannot write <file>: <why>"),
    None when it was. That is no failure of the download: the video is whole and in place (durable once the
    folder is synced, as it is still), the state records it done with its SHA-256, and the sidecar, a copy of
    that record, is written by the next run (`resume.mend_sidecar`). Failing the download instead would leave a
    paid video the next run takes for a file not gridrun's, and, once its URL expired, pays to render again.

    `record`, the `.part`'s record (`PartialDownload.record`), is removed before the rename: a `.part` left with
    no record is fetched again whole, never one renamed away leaving its record behind."""
    fsync(fd)
    if before_replace is not None:
        before_replace(sha256)
    if record is not None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(record)
    os.replace(part, dest)
    failed = None
    try:
        if on_saved is not None:
            on_saved(sha256)
    except OSError as exc:
        failed = f"cannot write {exc.filename or sidecar_name(os.fspath(dest))}: {os_reason(exc)}"
    finally:
        sync_folder(part)
    return failed


def _content_length(value: Any) -> int | None:
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    return None
