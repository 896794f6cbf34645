from __future__ import annotations

import functools
import hashlib
from pathlib import Path
from typing import AsyncIterator, Callable

import httpx
import hypothesis
import hypothesis.strategies as st
import pytest
from providers_kit import KEY, MP4, no_secret

from runner.errors import (
    ConnectError,
    DownloadError,
    ExpiredError,
    RateLimitedError,
    RejectedError,
    RetryableError,
    ServerError,
    TransportError,
)
from runner.outputs import atomic_write, sidecar_name
from runner.providers.lumenfall import LumenfallProvider

Client = Callable[[Callable[[httpx.Request], httpx.Response]], httpx.AsyncClient]
MEDIA = "https://media.lumenfall.ai/v/abc.mp4?sig=s3cr3tsig"


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".part"))


@pytest.mark.anyio
async def test_download_writes_the_file_atomically_with_its_sha256(
    provider: LumenfallProvider, mock: Client, tmp_path: Path
) -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, headers={"content-type": "video/mp4"}, content=MP4)

    dest = tmp_path / "out" / "anime" / "seed-1.mp4"
    async with mock(handler) as client:
        got = await provider.download(client, MEDIA, dest)
    assert got.path == dest and dest.read_bytes() == MP4
    assert got.sha256 == hashlib.sha256(MP4).hexdigest()
    assert got.size_bytes == len(MP4) and got.content_type == "video/mp4"
    assert leftovers(dest.parent) == []
    assert "authorization" not in seen[0].headers, "the API key must not go to the media host"


@pytest.mark.anyio
async def test_one_folder_sync_makes_the_video_and_its_sidecar_durable(
    provider: LumenfallProvider, mock: Client, tmp_path: Path, disk_steps: list[str]
) -> None:
    """The video's data is synced before its rename; the sidecar (written by `on_saved`) likewise; the
    folder is synced once, after both renames, so that neither rename can be lost to a power cut."""
    dest = tmp_path / "seed-1.mp4"

    def sidecar(sha256: str) -> None:
        atomic_write(sidecar_name(str(dest)), sha256, sync_folder_after=False)

    async with mock(lambda r: httpx.Response(200, headers={"content-type": "video/mp4"}, content=MP4)) as client:
        got = await provider.download(client, MEDIA, dest, on_saved=sidecar)
    assert disk_steps == ["fsync file", "rename to seed-1.mp4", "fsync file", "rename to seed-1.json", "fsync folder"]
    assert (tmp_path / "seed-1.json").read_text() == got.sha256


@pytest.mark.anyio
async def test_download_from_the_api_origin_keeps_auth(provider: LumenfallProvider, mock: Client, tmp_path: Path) -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, headers={"content-type": "video/mp4"}, content=MP4)

    async with mock(handler) as client:
        await provider.download(client, "/v1/videos/v1/content", tmp_path / "a.mp4")
    assert str(seen[0].url) == "https://api.lumenfall.ai/v1/videos/v1/content"
    assert seen[0].headers["authorization"] == f"Bearer {KEY}"


@pytest.mark.anyio
async def test_download_replaces_an_old_part_file(provider: LumenfallProvider, mock: Client, tmp_path: Path) -> None:
    dest = tmp_path / "a.mp4"
    (tmp_path / "a.mp4.part").write_bytes(b"stale" * 1000)
    async with mock(lambda r: httpx.Response(200, headers={"content-type": "video/mp4"}, content=MP4)) as client:
        got = await provider.download(client, MEDIA, dest)
    assert dest.read_bytes() == MP4 and got.size_bytes == len(MP4)
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize("status", [403, 404, 410])
@pytest.mark.anyio
async def test_gone_urls_are_expired(provider: LumenfallProvider, mock: Client, tmp_path: Path, status: int) -> None:
    async with mock(lambda r: httpx.Response(status, text="<Error>AccessDenied</Error>")) as client:
        with pytest.raises(ExpiredError) as info:
            await provider.download(client, MEDIA, tmp_path / "a.mp4")
    assert info.value.status == status
    assert "s3cr3tsig" not in str(info.value), "signed query strings stay out of messages"
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("status", "headers", "kind", "retry_after"),
    [(429, {"retry-after": "3"}, RateLimitedError, 3.0), (503, {}, ServerError, None), (500, {"retry-after-ms": "500"}, ServerError, 0.5)],
)
@pytest.mark.anyio
async def test_download_http_errors(
    provider: LumenfallProvider,
    mock: Client,
    tmp_path: Path,
    status: int,
    headers: dict[str, str],
    kind: type[RetryableError],
    retry_after: float | None,
) -> None:
    async with mock(lambda r: httpx.Response(status, headers=headers)) as client:
        with pytest.raises(kind) as info:
            await provider.download(client, MEDIA, tmp_path / "a.mp4")
    assert info.value.retry_after == retry_after


@pytest.mark.anyio
async def test_short_body_under_a_larger_content_length(provider: LumenfallProvider, mock: Client, tmp_path: Path) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, headers={"content-type": "video/mp4", "content-length": str(len(MP4) * 2)}, content=MP4)

    async with mock(handler) as client:
        with pytest.raises(DownloadError) as info:
            await provider.download(client, MEDIA, tmp_path / "a.mp4")
    assert info.value.code == "TRUNCATED"
    assert list(tmp_path.iterdir()) == []


class Endless(httpx.AsyncByteStream):
    """A video's first bytes, then far more than the test's cap, counted as they are read."""

    def __init__(self) -> None:
        self.read = 0

    async def __aiter__(self) -> AsyncIterator[bytes]:
        yield MP4
        for _ in range(100):
            self.read += 1
            yield b"\0" * 65536


@pytest.mark.anyio
async def test_a_body_past_the_cap_is_refused_as_it_streams_and_its_part_file_removed(
    provider: LumenfallProvider, mock: Client, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from runner.providers import download

    monkeypatch.setattr(download, "MAX_DOWNLOAD_BYTES", 1024 * 1024)
    stream = Endless()
    async with mock(lambda r: httpx.Response(200, headers={"content-type": "video/mp4"}, stream=stream)) as client:
        with pytest.raises(DownloadError) as info:
            await provider.download(client, MEDIA, tmp_path / "a.mp4")
    assert info.value.code == "TOO_LARGE" and "at most 1,048,576 bytes" in str(info.value)
    assert stream.read <= 17  # stopped at the cap, not read to the end
    assert list(tmp_path.iterdir()) == []


@pytest.mark.anyio
async def test_a_content_length_past_the_cap_is_refused_before_anything_is_written(
    provider: LumenfallProvider, mock: Client, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from runner.providers import download

    monkeypatch.setattr(download, "MAX_DOWNLOAD_BYTES", len(MP4) - 1)
    async with mock(lambda r: httpx.Response(200, headers={"content-type": "video/mp4"}, content=MP4)) as client:
        with pytest.raises(DownloadError) as info:
            await provider.download(client, MEDIA, tmp_path / "a.mp4")
    assert info.value.code == "TOO_LARGE" and f"Content-Length says {len(MP4):,} bytes" in str(info.value)
    assert list(tmp_path.iterdir()) == []


class Trickle(httpx.AsyncByteStream):
    """The video in chunks of 100 bytes, `clock` moved 10 s on before each: 1,000 bytes in 100 s."""

    def __init__(self, clock: list[float]) -> None:
        self.clock = clock

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for at in range(0, len(MP4), 100):
            self.clock[0] += 10.0
            yield MP4[at:at + 100]


@pytest.mark.anyio
async def test_a_video_trickled_slower_than_the_stall_rule_is_ended_as_stalled(
    provider: LumenfallProvider, mock: Client, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each read well within the read timeout, the whole never-ending at that pace: ended once a window of
    STALL_SECONDS brought less than STALL_BYTES, its part file removed."""
    from runner.providers import download

    clock = [0.0]
    monkeypatch.setattr(download, "_clock", lambda: clock[0])
    stream = Trickle(clock)
    async with mock(lambda r: httpx.Response(200, headers={"content-type": "video/mp4"}, stream=stream)) as client:
        with pytest.raises(DownloadError) as info:
            await provider.download(client, MEDIA, tmp_path / "a.mp4")
    assert info.value.code == "STALLED"
    assert "stalled after 1200 bytes: 1200 in the last 120 s" in str(info.value)
    assert list(tmp_path.iterdir()) == []


class Broken(httpx.AsyncByteStream):
    def __init__(self, error: type[Exception]) -> None:
        self.error = error

    async def __aiter__(self) -> AsyncIterator[bytes]:
        yield MP4[:1000]
        raise self.error(f"reset near {KEY}")


@pytest.mark.parametrize("error", [httpx.ReadError, httpx.RemoteProtocolError, httpx.ReadTimeout])
@pytest.mark.anyio
async def test_a_body_cut_off_mid_stream(
    provider: LumenfallProvider, mock: Client, tmp_path: Path, error: type[Exception]
) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, headers={"content-type": "video/mp4", "content-length": str(len(MP4))}, stream=Broken(error))

    async with mock(handler) as client:
        with pytest.raises(DownloadError) as info:
            await provider.download(client, MEDIA, tmp_path / "a.mp4")
    assert info.value.code == "TRUNCATED" and f"after 1,000 of {len(MP4):,} bytes" in str(info.value)
    assert isinstance(info.value.__cause__, error)
    no_secret(info.value)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("content_type", "content"),
    [("text/html", b"<html>" + b"x" * 100 + b"</html>"), ("application/json", b'{"error": "x"}' + b" " * 20), ("application/octet-stream", b"\x00" * 64),
     ("application/json", b'{"error":"x"}')],  # shorter than the bytes the loop sniffs: checked once the body ends
    ids=["html", "json", "zeros", "short-json"],
)
@pytest.mark.anyio
async def test_not_a_video(provider: LumenfallProvider, mock: Client, tmp_path: Path, content_type: str, content: bytes) -> None:
    async with mock(lambda r: httpx.Response(200, headers={"content-type": content_type}, content=content)) as client:
        with pytest.raises(DownloadError) as info:
            await provider.download(client, MEDIA, tmp_path / "a.mp4")
    assert info.value.code == "WRONG_TYPE"
    assert list(tmp_path.iterdir()) == []


@pytest.mark.anyio
async def test_octet_stream_holding_an_mp4_is_accepted(provider: LumenfallProvider, mock: Client, tmp_path: Path) -> None:
    async with mock(lambda r: httpx.Response(200, headers={"content-type": "application/octet-stream"}, content=MP4)) as client:
        got = await provider.download(client, MEDIA, tmp_path / "a.mp4")
    assert got.size_bytes == len(MP4)


@pytest.mark.anyio
async def test_empty_body(provider: LumenfallProvider, mock: Client, tmp_path: Path) -> None:
    async with mock(lambda r: httpx.Response(200, headers={"content-type": "video/mp4"}, content=b"")) as client:
        with pytest.raises(DownloadError) as info:
            await provider.download(client, MEDIA, tmp_path / "a.mp4")
    assert info.value.code == "EMPTY"
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(("error", "kind"), [(httpx.ConnectError, ConnectError), (httpx.ReadTimeout, TransportError)])
@pytest.mark.anyio
async def test_download_transport_errors_before_the_body(
    provider: LumenfallProvider, mock: Client, tmp_path: Path, error: type[Exception], kind: type
) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise error("nope", request=request)  # type: ignore[call-arg]

    async with mock(handler) as client:
        with pytest.raises(kind):
            await provider.download(client, MEDIA, tmp_path / "a.mp4")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.anyio
async def test_download_follows_redirects_without_the_key(provider: LumenfallProvider, mock: Client, tmp_path: Path) -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if request.url.host == "api.lumenfall.ai":
            return httpx.Response(302, headers={"location": MEDIA})
        return httpx.Response(200, headers={"content-type": "video/mp4"}, content=MP4)

    async with mock(handler) as client:
        got = await provider.download(client, "https://api.lumenfall.ai/v1/videos/v1/content", tmp_path / "a.mp4")
    assert got.size_bytes == len(MP4)
    assert "authorization" in seen[0].headers and "authorization" not in seen[1].headers


@pytest.mark.anyio
@pytest.mark.parametrize("stack", ["aiohttp", "httpx"])
async def test_a_url_that_redirects_in_a_loop_says_so_after_ten_redirects(
    provider: LumenfallProvider, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, stack: str
) -> None:
    """Not "the answer could not be read": a server on 127.0.0.1 redirects the video's URL to itself."""
    import asyncio

    monkeypatch.setenv("GRIDRUN_HTTP", stack)
    lines: list[str] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:  # each request on a kept-alive connection
                head = await reader.readuntil(b"\r\n\r\n")
                lines.append(head.split(b"\r\n", 1)[0].decode())
                writer.write(b"HTTP/1.1 302 Found\r\nLocation: /files/loop.mp4\r\nContent-Length: 0\r\n\r\n")
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        async with provider.client() as client:
            with pytest.raises(ServerError) as info:
                await provider.download(client, f"http://127.0.0.1:{port}/files/loop.mp4", tmp_path / "a.mp4")
    finally:
        server.close()
        await server.wait_closed()
    assert str(info.value) == (f"REDIRECT_LOOP: GET http://127.0.0.1:{port}/files/loop.mp4: the video's URL redirects "
                               "in a loop (10 redirects followed)")
    # the first request and 10 redirects (straight on aiohttp, the first hop's redirect is followed by httpx's
    # client from that hop: once more)
    assert lines == ["GET /files/loop.mp4 HTTP/1.1"] * (11 + (stack == "aiohttp"))
    assert list(tmp_path.iterdir()) == []


@pytest.mark.anyio
async def test_scrambled_bytes_labelled_mp4_are_corrupt(provider: LumenfallProvider, mock: Client, tmp_path: Path) -> None:
    scrambled = bytes(b ^ 0xA5 for b in MP4)
    async with mock(lambda r: httpx.Response(200, headers={"content-type": "video/mp4"}, content=scrambled)) as client:
        with pytest.raises(DownloadError) as info:
            await provider.download(client, MEDIA, tmp_path / "a.mp4")
    assert info.value.code == "CORRUPT"
    assert list(tmp_path.iterdir()) == []


class Chunks(httpx.AsyncByteStream):
    def __init__(self, data: bytes) -> None:
        self.data = data

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for i in range(0, len(self.data), 4096):
            yield self.data[i : i + 4096]


@pytest.mark.anyio
async def test_an_mp4_cut_short_without_content_length_is_caught_by_its_boxes(
    provider: LumenfallProvider, mock: Client, tmp_path: Path
) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, headers={"content-type": "video/mp4"}, stream=Chunks(MP4[: len(MP4) // 2]))

    async with mock(handler) as client:
        with pytest.raises(DownloadError) as info:
            await provider.download(client, MEDIA, tmp_path / "a.mp4")
    assert info.value.code == "CORRUPT" and "after the end of the file" in str(info.value)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("header", "good"),
    [
        ("content-digest", True),
        ("repr-digest", True),
        ("digest", True),
        ("content-digest", False),
        ("digest", False),
    ],
)
@pytest.mark.anyio
async def test_a_digest_header_is_checked(
    provider: LumenfallProvider, mock: Client, tmp_path: Path, header: str, good: bool
) -> None:
    import base64

    digest = base64.b64encode(hashlib.sha256(MP4 if good else b"other").digest()).decode()
    value = f"SHA-256={digest}" if header == "digest" else f"sha-256=:{digest}:"
    async with mock(lambda r: httpx.Response(200, headers={"content-type": "video/mp4", header: value}, content=MP4)) as client:
        if good:
            got = await provider.download(client, MEDIA, tmp_path / "a.mp4")
            assert got.sha256 == hashlib.sha256(MP4).hexdigest()
        else:
            with pytest.raises(DownloadError) as info:
                await provider.download(client, MEDIA, tmp_path / "a.mp4")
            assert info.value.code == "CORRUPT"
            assert list(tmp_path.iterdir()) == []


@pytest.mark.anyio
async def test_other_video_types_are_not_sniffed(provider: LumenfallProvider, mock: Client, tmp_path: Path) -> None:
    ts = b"\x47" + bytes(187) * 3
    async with mock(lambda r: httpx.Response(200, headers={"content-type": "video/mp2t"}, content=ts)) as client:
        got = await provider.download(client, MEDIA, tmp_path / "a.ts")
    assert got.content_type == "video/mp2t" and got.size_bytes == len(ts)


@pytest.mark.anyio
async def test_the_request_slot_is_given_back_before_the_disk_work(
    provider: LumenfallProvider, mock: Client, tmp_path: Path
) -> None:
    import anyio

    gate = anyio.CapacityLimiter(1)
    during: list[tuple[float, bool, str]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        during.append((gate.borrowed_tokens, False, "request"))
        return httpx.Response(200, headers={"content-type": "video/mp4"}, content=MP4)

    def on_saved(sha256: str) -> None:  # runs in the worker thread, after fsync and rename
        during.append((gate.borrowed_tokens, (tmp_path / "a.mp4").is_file(), sha256))

    async with mock(handler) as client:
        got = await provider.download(client, MEDIA, tmp_path / "a.mp4", on_saved=on_saved, gate=gate)
    assert during == [(1, False, "request"), (0, True, got.sha256)]
    assert gate.borrowed_tokens == 0


@pytest.mark.anyio
async def test_many_downloads_settle_in_a_few_threads_at_once(
    provider: LumenfallProvider, mock: Client, tmp_path: Path
) -> None:
    import threading
    import time

    import anyio

    from runner.providers.download import DISK_THREADS

    lock = threading.Lock()
    busy = [0, 0]  # now, most at once
    threads: set[int] = set()

    def on_saved(sha256: str) -> None:  # in a worker thread; holds it a moment so the calls overlap
        with lock:
            busy[0] += 1
            busy[1] = max(busy)
            threads.add(threading.get_ident())
        time.sleep(0.02)
        with lock:
            busy[0] -= 1

    def video(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, headers={"content-type": "video/mp4"}, content=MP4)

    async with mock(video) as client, anyio.create_task_group() as tg:
        for i in range(6 * DISK_THREADS):
            tg.start_soon(lambda i=i: provider.download(client, MEDIA, tmp_path / f"{i}.mp4", on_saved=on_saved))
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(f"{i}.mp4" for i in range(6 * DISK_THREADS))
    assert busy[1] == DISK_THREADS, "settling runs in parallel, but in no more threads than DISK_THREADS"
    assert len(threads) <= DISK_THREADS


@pytest.mark.anyio
async def test_a_download_cancelled_while_it_settles_waits_for_the_rename(
    provider: LumenfallProvider, mock: Client, tmp_path: Path
) -> None:
    """Cancelling the caller while the worker thread fsyncs and renames does not leave the thread racing the
    caller's clean-up: the cancel waits, and the video and its sidecar step both end complete."""
    import threading
    import time

    import anyio

    in_thread = threading.Event()
    saved: list[str] = []

    def on_saved(sha256: str) -> None:
        in_thread.set()
        time.sleep(0.3)
        saved.append(sha256)

    def video(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, headers={"content-type": "video/mp4"}, content=MP4)

    dest = tmp_path / "v.mp4"
    async with mock(video) as client, anyio.create_task_group() as tg:
        tg.start_soon(lambda: provider.download(client, MEDIA, dest, on_saved=on_saved))
        while not in_thread.is_set():
            await anyio.sleep(0.005)
        tg.cancel_scope.cancel()
    assert saved, "the cancel returned before the worker thread finished"
    assert dest.read_bytes() == MP4
    assert not (tmp_path / "v.mp4.part").exists()


def _boxes_of_whole(data: bytes) -> str | None:
    """The box walk over a whole file in memory: what `_Boxes` must find however the bytes are chunked."""
    pos, size, kinds = 0, len(data), set()
    while pos < size:
        header = data[pos : pos + 16]
        if len(header) < 8 or header[:4] == b"\0\0\0\1" and len(header) < 16:
            return f"a box header at byte {pos} is cut short"
        kinds.add(header[4:8])
        length = int.from_bytes(header[:4], "big")
        if length == 1:
            length = int.from_bytes(header[8:16], "big")
            if length < 16:
                return f"the box at byte {pos} claims {length} bytes"
        elif length == 0:
            break
        elif length < 8:
            return f"the box at byte {pos} claims {length} bytes"
        pos += length
    if pos > size:
        return f"the last box ends at byte {pos}, after the end of the file ({size} bytes)"
    missing = [kind.decode() for kind in (b"moov", b"mdat") if kind not in kinds]
    return f"no {' or '.join(missing)} box" if missing else None


def _box(kind: bytes, payload: bytes, *, large: bool = False) -> bytes:
    if large:
        return (1).to_bytes(4, "big") + kind + (16 + len(payload)).to_bytes(8, "big") + payload
    return (8 + len(payload)).to_bytes(4, "big") + kind + payload


@hypothesis.settings(max_examples=300, deadline=None)
@hypothesis.given(
    data=st.one_of(
        st.binary(max_size=80),
        st.lists(
            st.tuples(st.sampled_from([b"ftyp", b"moov", b"mdat", b"free"]), st.binary(max_size=40), st.booleans()),
            max_size=6,
        ).map(lambda boxes: b"".join(_box(k, p, large=big) for k, p, big in boxes)),
    ),
    cut=st.integers(min_value=0, max_value=200),
    cuts=st.lists(st.integers(min_value=1, max_value=40), max_size=12),
)
def test_the_box_walk_finds_the_same_however_the_body_is_chunked(data: bytes, cut: int, cuts: list[int]) -> None:
    from runner.providers.download import _Boxes

    data = data[: len(data) - cut % (len(data) + 1)] if cut % 3 == 0 else data  # some cut short, most whole
    boxes, at = _Boxes(), 0
    for n in cuts:
        boxes.feed(data[at : at + n])
        at += n
    boxes.feed(data[at:])
    assert boxes.problem(len(data)) == _boxes_of_whole(data)


def test_the_box_walk_knows_a_whole_mp4_and_each_way_it_is_cut_short() -> None:
    from runner.providers.download import _Boxes

    for end in sorted({*range(0, len(MP4), 97), *range(len(MP4) - 20, len(MP4) + 1)}):
        for step in (1, 7, 4096):
            boxes = _Boxes()
            for i in range(0, end, step):
                boxes.feed(MP4[i : min(i + step, end)])
            assert boxes.problem(end) == _boxes_of_whole(MP4[:end])
    assert _boxes_of_whole(MP4) is None and _boxes_of_whole(MP4[:-1]) is not None


@pytest.mark.anyio
async def test_an_mp4_cut_at_a_box_boundary_without_its_index_is_corrupt(
    provider: LumenfallProvider, mock: Client, tmp_path: Path
) -> None:
    """No Content-Length, and the body ends where a box ends, before the `moov` (index) box a player needs."""
    ftyp = _box(b"ftyp", b"isom\0\0\2\0isomiso2avc1mp41")
    body = ftyp + _box(b"mdat", bytes(300))
    async with mock(lambda r: httpx.Response(200, headers={"content-type": "video/mp4"}, stream=Chunks(body))) as client:
        with pytest.raises(DownloadError) as info:
            await provider.download(client, MEDIA, tmp_path / "a.mp4")
    assert info.value.code == "CORRUPT" and "no moov box" in str(info.value)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("page", [
    b"<!doctype html><html><body>Sign in to continue</body></html>",
    b"\xef\xbb\xbf<!DOCTYPE html><html><body>x</body></html>",           # a byte-order mark first
    "<h1>Доступ запрещён</h1><p>войдите, чтобы продолжить</p>".encode(),  # not ASCII
], ids=["ascii", "bom", "utf-8"])
@pytest.mark.parametrize("media", ["video/mpeg", "video/mp2t", "video/x-msvideo"])
@pytest.mark.anyio
async def test_a_text_page_labelled_as_any_video_type_is_refused(
    provider: LumenfallProvider, mock: Client, tmp_path: Path, media: str, page: bytes
) -> None:
    async with mock(lambda r: httpx.Response(200, headers={"content-type": media}, content=page)) as client:
        with pytest.raises(DownloadError) as info:
            await provider.download(client, MEDIA, tmp_path / "a.mp4")
    assert info.value.code == "WRONG_TYPE" and "text" in str(info.value)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(("url", "key_advice"), [
    (MEDIA, False),                                             # a signed URL elsewhere: the key never went there
    ("https://api.lumenfall.ai/v1/videos/v1/content", True),    # the API's own: the key was sent, and refused
    ("https://api.lumenfall.ai/v1/videos/v1/moved", False),     # the API's, redirected elsewhere: the key did not follow
])
@pytest.mark.anyio
async def test_a_download_refused_with_401_advises_the_key_only_where_the_key_was_sent(
    provider: LumenfallProvider, mock: Client, tmp_path: Path, url: str, key_advice: bool
) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/moved"):
            return httpx.Response(302, headers={"location": MEDIA})
        return httpx.Response(401, json={"error": {"message": "signature invalid"}})

    async with mock(handler) as client:
        with pytest.raises(RejectedError) as info:
            await provider.download(client, url, tmp_path / "a.mp4")
    said = str(info.value)
    assert "signature invalid" in said
    assert ("LUMENFALL_API_KEY" in said or "check the API key" in said) == key_advice, said
    assert ("fetched without the API key" in said) != key_advice, said


@functools.cache
def _api_client() -> httpx.AsyncClient:
    """One client for every example: each new one loads the system's CA certificates, which is most of an
    example's time."""
    return httpx.AsyncClient(base_url="https://api.example.com/v1")


_URL_CHARS = st.sampled_from(list("aZ09-._~!$&'()*+,;=:@/?%#[] \"<>^`{|}é") + ["%41", "%zz", "/./", "/../", "//"])


@hypothesis.given(
    scheme=st.sampled_from(["http", "https", "HTTP", "ftp"]),
    host=st.sampled_from(["media.example.com", "127.0.0.1", "Media.Example.com", "xn--bcher-kva.example", "a-b.c",
                          "bücher.example", "[::1]", "-bad.example", "host_name"]),
    port=st.sampled_from(["", ":80", ":443", ":8080", ":0", ":65535", ":99999", ":08080"]),
    rest=st.lists(_URL_CHARS, max_size=12).map("".join),
)
@hypothesis.settings(max_examples=400, deadline=None)
def test_a_download_url_is_fetched_as_httpx_sends_it(scheme: str, host: str, port: str, rest: str) -> None:
    """Whether httpx parses it or it is taken as written (`_target`), a download's URL is sent, compared with
    the API's origin and named in messages as httpx's parsing of it has it."""
    from runner.providers import download

    url = f"{scheme}://{host}{port}/{rest}"
    client = _api_client()
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL:
        with pytest.raises(httpx.InvalidURL):
            download._target(client, url)
        return
    want = (str(parsed), parsed.scheme, parsed.host, parsed.port,
            f"GET {parsed.scheme}://{parsed.netloc.decode('ascii', 'replace')}{parsed.path}")
    assert tuple(download._target(client, url)) == want


@pytest.mark.anyio
async def test_a_plain_download_url_is_not_parsed_by_httpx(
    provider: LumenfallProvider, mock: Client, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A provider's output URL of characters that need no quoting is sent as written: parsing it as httpx does
    was the costliest step of a download's set-up."""
    from runner.providers import download

    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(str(request.url))
        return httpx.Response(200, headers={"content-type": "video/mp4"}, content=MP4)

    async with mock(handler) as client:
        def unparsed(*args: object, **kwargs: object) -> httpx.URL:
            raise AssertionError("the URL was parsed by httpx")

        monkeypatch.setattr(download.httpx, "URL", unparsed)
        got = await provider.download(client, MEDIA, tmp_path / "seed-1.mp4")
        monkeypatch.undo()
    assert got.sha256 == hashlib.sha256(MP4).hexdigest() and seen == [MEDIA]


SIGNED = ("https://media.lumenfall.ai/v/abc.mp4?X-Amz-Security-Token=IQoJb3JpZ2luX2VjE%2Fsecret%3D"
          "&X-Amz-Signature=5f1d0a9c7e3b2d4f&v=2")


@pytest.mark.parametrize(("answer", "kept"), [
    (lambda r: httpx.Response(500, json={"error": {"message": f"storage failure for {r.url.raw_path.decode()}"}}),
     "storage failure for /v/abc.mp4?…"),
    (lambda r: httpx.Response(400, headers={"content-type": "text/plain"}, text=f"Bad request: {r.url.raw_path.decode()}"),
     "Bad request: /v/abc.mp4?…"),
    (lambda r: httpx.Response(400, json={"error": {"code": "InvalidToken", "message": (
        "bad token IQoJb3JpZ2luX2VjE/secret= in GET /v/abc.mp4 X-Amz-Signature=5f1d0a9c7e3b2d4f")}}),
     "bad token … in GET /v/abc.mp4 X-Amz-Signature=…"),
    (lambda r: httpx.Response(503, headers={"x-request-id": "5f1d0a9c7e3b2d4f"}, json={"error": {
        "code": "TOKEN_IQoJb3JpZ2luX2VjE/secret=", "message": "unavailable"}}),
     "unavailable"),
])
@pytest.mark.anyio
async def test_a_file_host_error_text_that_echoes_the_signed_url_keeps_none_of_its_query(
    provider: LumenfallProvider, mock: Client, tmp_path: Path, answer: Callable[[httpx.Request], httpx.Response],
    kept: str,
) -> None:
    """A file host's error names the request it refuses (its path with the query, S3's `<ArgumentValue>` and
    canonical request): the message that is shown, stored and exported keeps neither the query nor any of its
    values, as sent or decoded; what else the answer says is kept."""
    async with mock(answer) as client:
        with pytest.raises((ServerError, RejectedError)) as info:
            await provider.download(client, SIGNED, tmp_path / "a.mp4")
    said = f"{info.value} {info.value.code}"
    for secret in ("IQoJb3JpZ2luX2VjE", "5f1d0a9c7e3b2d4f", "X-Amz-Security-Token="):
        assert secret not in said, said
    assert "GET https://media.lumenfall.ai/v/abc.mp4" in said and kept in said, said


@pytest.mark.parametrize("url", ["file:///etc/passwd", "data:video/mp4;base64,AAAA", "http:/v1/videos/x",
                                 "https:///v.mp4"])
@pytest.mark.anyio
async def test_an_output_url_with_a_scheme_and_no_host_is_refused_unfetched(
    provider: LumenfallProvider, mock: Client, tmp_path: Path, url: str
) -> None:
    """A URL with a scheme but no host is no path of the API's: refused as unsupported (the video waits for a
    usable URL), never fetched from the API's host and taken for an expired one."""
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(404)

    async with mock(handler) as client:
        with pytest.raises(DownloadError) as info:
            await provider.download(client, url, tmp_path / "a.mp4")
    assert info.value.code == "BAD_URL" and "unsupported URL" in str(info.value)
    assert not isinstance(info.value, ExpiredError)
    assert seen == []
    assert list(tmp_path.iterdir()) == []


@pytest.mark.anyio
async def test_an_output_url_that_is_a_path_is_fetched_from_the_api(
    provider: LumenfallProvider, mock: Client, tmp_path: Path
) -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, headers={"content-type": "video/mp4"}, content=MP4)

    async with mock(handler) as client:
        await provider.download(client, "/v1/videos/abc/content", tmp_path / "a.mp4")
        assert [str(r.url) for r in seen] == [str(client.base_url.join("/v1/videos/abc/content"))]


class Drip(httpx.AsyncByteStream):
    """A video that never ends, 100 KB a minute: above the stall rule (64 KiB in 2 minutes), for ever."""

    def __init__(self, clock: list[float]) -> None:
        self.clock = clock

    async def __aiter__(self) -> AsyncIterator[bytes]:
        yield MP4[:64]
        while True:
            self.clock[0] += 60.0
            yield bytes(100_000)


@pytest.mark.anyio
async def test_a_download_trickled_just_above_the_stall_rule_ends_at_its_tries_deadline(
    provider: LumenfallProvider, mock: Client, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No window of STALL_SECONDS ever brings less than STALL_BYTES, and the body would go on to the 8 GiB
    cap (months at that pace): the try ends once it has streamed TRY_SECONDS, its part file removed."""
    from runner.providers import download

    clock = [0.0]
    monkeypatch.setattr(download, "_clock", lambda: clock[0])
    async with mock(lambda r: httpx.Response(200, headers={"content-type": "video/mp4"}, stream=Drip(clock))) as client:
        with pytest.raises(DownloadError) as info:
            await provider.download(client, MEDIA, tmp_path / "a.mp4")
    assert info.value.code == "STALLED"
    assert "too slow: 3,000,064 bytes in 30 min, the longest a try of a download streams" in str(info.value)
    assert clock[0] == download.TRY_SECONDS
    assert list(tmp_path.iterdir()) == []
