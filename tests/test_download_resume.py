"""Downloads of large videos: the size the provider announced is checked, and a download cut short goes on from
the bytes it has (`Range`) on its next try, said in plain words with its sizes."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import json
import os
import sqlite3
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import httpx
import pytest
from execkit import check_outputs, quick_backoff, sim_provider, stats, write_manifest

from runner import api
from runner.errors import DownloadError
from runner.options import RunOptions
from runner.providers import download, get_provider

MEDIA = "https://media.example.test/v/abc.mp4?sig=s3cr3t"
ETAG = '"a566e1"'


def _box(kind: bytes, payload: bytes) -> bytes:
    return (8 + len(payload)).to_bytes(4, "big") + kind + payload


def video(size: int = 200_000, seed: int = 1) -> bytes:
    """A well-formed MP4 (ftyp, moov, mdat) of `size` bytes."""
    head = _box(b"ftyp", b"isom\0\0\2\0isomiso2mp41") + _box(b"moov", bytes([seed]) * 64)
    return head + _box(b"mdat", os.urandom(size - len(head) - 8))


@pytest.fixture
def provider(monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("LUMENFALL_API_KEY", "sk-test-key-0123456789")
    return get_provider("lumenfall")


class Cut(httpx.AsyncByteStream):
    """`data[:at]`, then the connection fails as aiohttp's fails a body short of its Content-Length."""

    def __init__(self, data: bytes, at: int) -> None:
        self.data, self.at = data, at

    async def __aiter__(self) -> AsyncIterator[bytes]:
        yield self.data[: self.at]
        raise httpx.RemoteProtocolError(
            "ClientPayloadError: Response payload is not completed: <ContentLengthError: 400, message='Not enough "
            f"data to satisfy content length header (received {self.at} of {len(self.data)} bytes).'>")


def served(handler: Callable[[httpx.Request], httpx.Response], provider: Any) -> httpx.AsyncClient:
    return provider.client(transport=httpx.MockTransport(handler))


def whole(data: bytes, **headers: str) -> httpx.Response:
    return httpx.Response(200, headers={"content-type": "video/mp4", "etag": ETAG, "accept-ranges": "bytes",
                                        **headers}, content=data)


def parts(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.rglob("*.part"))


# -- the announced size -----------------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_a_whole_body_of_another_size_than_the_provider_announced_is_saved_and_said(
    provider: Any, tmp_path: Path
) -> None:
    data = video(50_000)
    dest = tmp_path / "one.mp4"
    async with served(lambda r: whole(data), provider) as client:
        got = await provider.download(client, MEDIA, dest, size_bytes=690_256)
    assert dest.read_bytes() == data and parts(tmp_path) == []
    assert (got.size_bytes, got.size_announced) == (50_000, 690_256)
    from runner.providers.download import size_differs_text

    said = size_differs_text(got)
    assert "it is 50,000 bytes where the provider said 690,256 bytes: look at it" in said, said


@pytest.mark.anyio
async def test_a_body_of_the_announced_size_is_saved(provider: Any, tmp_path: Path) -> None:
    data = video(50_000)
    dest = tmp_path / "one.mp4"
    async with served(lambda r: whole(data), provider) as client:
        got = await provider.download(client, MEDIA, dest, size_bytes=len(data))
    assert got.size_bytes == len(data) and dest.read_bytes() == data


def test_a_run_whose_video_is_not_the_announced_size_saves_it_and_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The provider's figure one byte off, or seven: the paid, whole video is saved (fetching it again would get the
    same bytes for ever), the run says both sizes among its errors and records the event."""
    m = write_manifest(tmp_path, n_seeds=1, styles=("anime",))
    prov = sim_provider(m)
    real_get, real_list = prov.get, prov.list

    def off(status: Any) -> Any:
        return dataclasses.replace(status, size_bytes=status.size_bytes + 7) if status.size_bytes else status

    async def get(client: Any, video_id: str) -> Any:
        return off(await real_get(client, video_id))

    async def listed(client: Any, **kwargs: Any) -> Any:
        page, cursor = await real_list(client, **kwargs)
        return [off(s) for s in page], cursor

    monkeypatch.setattr(prov, "get", get)
    monkeypatch.setattr(prov, "list", listed)
    result = api.run(m, provider=prov, options=RunOptions(retries=1), report=False)
    assert result.exit_code == 0 and result.stats.counts["done"] == 1
    job = api.status(m).jobs[0]
    assert job.state == "done" and Path(job.output_path).is_file() and parts(tmp_path) == []
    assert any("where the provider said" in e for e in result.stats.last_errors), result.stats.last_errors
    with closing(sqlite3.connect(tmp_path / ".gridrun" / "state.db")) as db:
        (detail,) = db.execute("SELECT detail FROM events WHERE kind = 'size-differs'").fetchone()
    sizes = json.loads(detail)
    assert sizes["size_announced"] == sizes["size_bytes"] + 7
    check_outputs(m)


# -- a cut download goes on from where it stopped -------------------------------------------------------------


@pytest.mark.anyio
async def test_a_cut_download_goes_on_from_its_bytes_with_a_range_and_saves_the_whole_video(
    provider: Any, tmp_path: Path
) -> None:
    data = video(200_000)
    half = 100_012
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if len(seen) == 1:
            return httpx.Response(200, headers={"content-type": "video/mp4", "content-length": str(len(data)),
                                                "etag": ETAG, "accept-ranges": "bytes"}, stream=Cut(data, half))
        first = int(request.headers["range"].removeprefix("bytes=").rstrip("-"))
        return httpx.Response(206, headers={"content-type": "video/mp4", "etag": ETAG,
                                            "content-range": f"bytes {first}-{len(data) - 1}/{len(data)}"},
                              content=data[first:])

    dest = tmp_path / "one.mp4"
    partial = download.PartialDownload()
    async with served(handler, provider) as client:
        with pytest.raises(DownloadError) as info:
            await provider.download(client, MEDIA, dest, partial=partial, size_bytes=len(data))
        said = str(info.value)
        assert info.value.code == "TRUNCATED"
        assert "the connection closed after 100,012 of 200,000 bytes" in said, said
        assert "the next try asks for the rest" in said, said
        assert "400" not in said.replace("100,012", "") and "ClientPayloadError" not in said, said
        assert (tmp_path / "one.mp4.part").read_bytes() == data[:half] and not dest.exists()
        got = await provider.download(client, MEDIA, dest, partial=partial, size_bytes=len(data))
    assert "range" not in seen[0].headers
    assert seen[1].headers["range"] == f"bytes={half}-" and seen[1].headers["if-range"] == ETAG
    assert dest.read_bytes() == data and got.sha256 == hashlib.sha256(data).hexdigest()
    assert got.size_bytes == len(data) and parts(tmp_path) == []


@pytest.mark.anyio
async def test_a_whole_body_answering_the_range_starts_the_file_over(provider: Any, tmp_path: Path) -> None:
    """The video changed at the URL (If-Range failed), or the server sends no ranges: the bytes held are dropped."""
    old, new = video(200_000, seed=1), video(150_000, seed=2)
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if len(seen) == 1:
            return httpx.Response(200, headers={"content-type": "video/mp4", "content-length": str(len(old)),
                                                "etag": ETAG}, stream=Cut(old, 120_000))
        return whole(new, etag='"other"')

    dest = tmp_path / "one.mp4"
    partial = download.PartialDownload()
    async with served(handler, provider) as client:
        with pytest.raises(DownloadError):
            await provider.download(client, MEDIA, dest, partial=partial)
        await provider.download(client, MEDIA, dest, partial=partial)
    assert "range" in seen[1].headers and dest.read_bytes() == new and parts(tmp_path) == []


@pytest.mark.parametrize("answer", ["other-range", "other-total", "other-etag"])
@pytest.mark.anyio
async def test_a_part_of_another_video_is_never_kept(provider: Any, tmp_path: Path, answer: str) -> None:
    data = video(200_000)
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if len(seen) == 1:
            return httpx.Response(200, headers={"content-type": "video/mp4", "content-length": str(len(data)),
                                                "etag": ETAG}, stream=Cut(data, 100_000))
        if len(seen) == 2:
            first, total, etag = {"other-range": (0, len(data), ETAG), "other-total": (100_000, 300_000, ETAG),
                                  "other-etag": (100_000, len(data), '"b0b"')}[answer]
            return httpx.Response(206, headers={"content-type": "video/mp4", "etag": etag,
                                                "content-range": f"bytes {first}-{total - 1}/{total}"},
                                  content=data[first:] if total == len(data) else b"\0" * (total - first))
        return whole(data)

    dest = tmp_path / "one.mp4"
    partial = download.PartialDownload()
    async with served(handler, provider) as client:
        with pytest.raises(DownloadError):
            await provider.download(client, MEDIA, dest, partial=partial)
        with pytest.raises(DownloadError) as info:
            await provider.download(client, MEDIA, dest, partial=partial)
        assert "the next try starts over" in str(info.value) and parts(tmp_path) == [] and not dest.exists()
        await provider.download(client, MEDIA, dest, partial=partial)
    assert "range" not in seen[2].headers and dest.read_bytes() == data


@pytest.mark.anyio
async def test_a_cut_body_with_no_validator_is_not_kept(provider: Any, tmp_path: Path) -> None:
    data = video(200_000)

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, headers={"content-type": "video/mp4", "content-length": str(len(data))},
                              stream=Cut(data, 100_000))

    partial = download.PartialDownload()
    async with served(handler, provider) as client:
        with pytest.raises(DownloadError) as info:
            await provider.download(client, MEDIA, tmp_path / "one.mp4", partial=partial)
    assert "asks for the rest" not in str(info.value) and parts(tmp_path) == [] and partial.headers() == {}


def test_a_run_whose_download_is_cut_goes_on_from_its_bytes_and_leaves_no_part_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The simulator cuts the first download at half its body, then serves ranges: the second try appends the
    rest to the bytes the first left, and the video saved is whole."""
    quick_backoff(monkeypatch)
    appended: list[str] = []
    real_append = getattr(download, "_append", None)
    monkeypatch.setattr(download, "_append", lambda path: (appended.append(os.path.basename(path)), real_append(path))[1],
                        raising=False)
    m = write_manifest(tmp_path, n_seeds=1, styles=("anime",),
                       sim={"script": [{"route": "file", "nth": 1, "fault": "truncated"}]})
    prov = sim_provider(m)
    result = api.run(m, provider=prov, options=RunOptions(), report=False)
    assert result.exit_code == 0 and stats(prov)["creates"] == 1
    assert appended == ["seed-1.mp4.part"]
    check_outputs(m)
    assert parts(tmp_path) == []


def test_a_run_whose_download_is_cut_on_every_try_leaves_no_part_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    quick_backoff(monkeypatch)
    m = write_manifest(tmp_path, n_seeds=1, styles=("anime",),
                       sim={"script": [{"route": "file", "p": 1.0, "fault": "truncated"}]})
    prov = sim_provider(m)
    result = api.run(m, provider=prov, options=RunOptions(retries=1), report=False)
    assert result.exit_code == 1
    job = api.status(m).jobs[0]
    assert job.state == "downloading" and "cut short" in (job.error or ""), job.error
    assert parts(tmp_path) == [] and stats(prov)["creates"] == 1


# -- a cut download goes on in the next run, after a kill or a stop -------------------------------------------------

BIG = 4_000_000  # the simulated video's size (`clip_bytes`): above RECORD_MIN_BYTES, its `.part` recorded


@pytest.fixture
def sim() -> Iterator[tuple[str, Any]]:
    """A simulator of large videos served on 127.0.0.1 (a download streams there, as from a provider's CDN, and
    can be held half-way); yields its base URL and its `Sim` (for the bytes it sent)."""
    from execkit import served as serving

    from runner.sim import SimConfig, create_app

    app = create_app(SimConfig(render_time=0.1, jitter=0.0, max_side=64, fps=4, clip_bytes=BIG))
    with serving(app) as origin:
        yield f"{origin}/v1", app.state.sim


def cut_by_a_stop(tmp_path: Path, sim: tuple[str, Any], how: str = "kill") -> tuple[Path, Path, int]:
    """`gridrun run` of one large video, in another process, its download held half-way by the simulator, then
    killed (SIGKILL) or stopped (Ctrl-C twice) there: (the manifest, the `.part` left, its size). The `.part`'s
    record is beside it, and the simulator's counts start afresh."""
    import signal
    import subprocess
    import sys
    import time

    from execkit import wait_for

    url, world = sim
    world.configure({"script": [{"route": "file", "fault": "stall_body", "delay": 60.0, "nth": [1]}]})
    m = write_manifest(tmp_path, n_seeds=1, styles=("anime",), base_url=url, run={"poll_interval": 0.05})
    proc = subprocess.Popen([sys.executable, "-m", "runner.cli", "run", str(m)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, cwd=m.parent)
    part = tmp_path / "outputs" / "t" / "anime" / "seed-1.mp4.part"

    def half_in() -> bool:
        try:
            return part.stat().st_size >= BIG // 2
        except OSError:
            return False

    try:
        wait_for(half_in)
        if how == "kill":
            proc.kill()
        else:  # the first lets the download go on, the second stops it
            proc.send_signal(signal.SIGINT)
            time.sleep(0.3)
            proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert api.status(m).jobs[0].state != "done"  # paid, its video not saved (its state as last committed)
    size = part.stat().st_size
    assert 0 < size < BIG, size
    record = json.loads(Path(str(part) + ".take").read_text())
    assert record["take"]["attempt"] == 1 and record["validator"].startswith('"'), record
    assert "?" not in record["url"] and "token" not in json.dumps(record), record  # a signed URL's query is not kept
    world.configure({"script": []})
    world.counts.clear()
    return m, part, size


def _video_sha256(world: Any, m: Path) -> str:
    """The SHA-256 of the video the simulator made for the job of `m`."""
    return hashlib.sha256(world.clip(world.get(api.status(m).jobs[0].provider_id)).mp4).hexdigest()


def _events(tmp_path: Path, kind: str) -> list[dict[str, Any]]:
    with closing(sqlite3.connect(tmp_path / ".gridrun" / "state.db")) as db:
        return [json.loads(r[0]) for r in db.execute("SELECT detail FROM events WHERE kind = ?", (kind,))]


def fetched_whole_again(tmp_path: Path, m: Path, world: Any, sent: int | None = None) -> None:
    """The next run saved the simulator's video, whole, the simulator sending `sent` bytes of it (None: all),
    and left no `.part` nor record."""
    assert api.run(m, options=RunOptions(), report=False).exit_code == 0
    job = api.status(m).jobs[0]
    total = Path(job.output_path).stat().st_size
    assert total >= BIG and world.stats()["creates"] == 0
    assert world.stats()["download_bytes"] == (total if sent is None else sent), (total, sent)
    assert job.sha256 == hashlib.sha256(Path(job.output_path).read_bytes()).hexdigest() == _video_sha256(world, m)
    check_outputs(m)
    assert parts(tmp_path) == [] and not list(tmp_path.rglob("*.take"))


@pytest.mark.timeout(180)
@pytest.mark.parametrize("how", ["kill", "ctrl-c"])
def test_a_download_cut_by_a_kill_or_a_stop_goes_on_in_the_next_run_from_its_part(
    tmp_path: Path, sim: tuple[str, Any], how: str
) -> None:
    """The next run asks only for the rest (the simulator sends no more than that), and the video saved is the
    simulator's, whole: its SHA-256 checked over the bytes kept and those fetched."""
    m, part, held = cut_by_a_stop(tmp_path, sim, how)
    kept = _last_checkpoint(part)
    if how == "ctrl-c":  # a stop syncs all the bytes it wrote and records them
        assert kept == held
    else:  # a kill leaves the bytes past the last checkpoint, which the next run fetches again
        assert 0 < kept <= held
    total = len(sim[1].clip(sim[1].get(api.status(m).jobs[0].provider_id)).mp4)
    fetched_whole_again(tmp_path, m, sim[1], sent=total - kept)
    assert _events(tmp_path, "part-cut-back") == ([] if kept == held else [{"path": str(part), "size": held,
                                                                               "kept": kept}])
    assert _events(tmp_path, "part-removed") == []


def _last_checkpoint(part: Path) -> int:
    """The size of the `.part`'s last checkpoint, as its record names it (0: none)."""
    marks = json.loads(Path(str(part) + ".take").read_text())["checkpoints"]
    return marks[-1][0] if marks else 0


@pytest.mark.timeout(180)
@pytest.mark.parametrize("change", ["byte-flipped", "tail-zeroed", "first-bytes-changed", "no-checkpoints",
                                    "cut-short"])
def test_a_part_whose_bytes_changed_after_a_kill_is_gone_on_from_only_as_far_as_they_are_unchanged(
    tmp_path: Path, sim: tuple[str, Any], change: str
) -> None:
    """A crash's tail the disk never took, a sync tool, a disk error: the `.part` a killed run left no longer holds
    the bytes written. The next run goes on from it only up to its last checkpoint whose SHA-256 the bytes still
    have (event `part-cut-back`), or, when the first is changed or none was recorded, fetches the video whole
    (event `part-removed`, saying why): the video saved is the simulator's, not one with the bytes changed."""
    m, part, held = cut_by_a_stop(tmp_path, sim)
    assert _last_checkpoint(part), "no checkpoint recorded"
    record = Path(str(part) + ".take")
    doc = json.loads(record.read_text())
    first = doc["checkpoints"][0][0]
    data = bytearray(part.read_bytes())
    at = first + (held - first) // 2  # the first byte changed
    if change == "byte-flipped":  # past the first checkpoint
        data[at] ^= 0xFF
    elif change == "tail-zeroed":
        data[at:] = bytes(held - at)
    elif change == "first-bytes-changed":
        data[first // 2] ^= 0xFF
    elif change == "cut-short":  # shorter than its first checkpoint
        del data[first // 2:]
    else:  # a record as one written before checkpoints were
        del doc["checkpoints"]
        record.write_text(json.dumps(doc))
    part.write_bytes(bytes(data))
    total = len(sim[1].clip(sim[1].get(api.status(m).jobs[0].provider_id)).mp4)
    if change in ("byte-flipped", "tail-zeroed"):
        kept = max(size for size, _ in doc["checkpoints"] if size <= at)
        fetched_whole_again(tmp_path, m, sim[1], sent=total - kept)
        assert _events(tmp_path, "part-cut-back") == [{"path": str(part), "size": held, "kept": kept}]
        assert _events(tmp_path, "part-removed") == []
    else:
        fetched_whole_again(tmp_path, m, sim[1])
        removed = _events(tmp_path, "part-removed")
        size = first // 2 if change == "cut-short" else held
        assert [(e["path"], e["size"]) for e in removed] == [(str(part), size)] and removed[0]["why"], removed
        if change == "cut-short":
            assert removed[0]["why"] == (f"it is {size:,} bytes, shorter than its first checkpoint ({first:,} bytes): "
                                         "cut since it was written"), removed
        assert _events(tmp_path, "part-cut-back") == []


@pytest.mark.timeout(180)
def test_a_part_whose_validator_the_server_no_longer_has_is_fetched_again_whole(
    tmp_path: Path, sim: tuple[str, Any]
) -> None:
    """The video at the URL changed since (its ETag not the one recorded): the server answers the range asked
    `If-Range` with the whole video, which starts the file over."""
    m, part, _ = cut_by_a_stop(tmp_path, sim)
    record = Path(str(part) + ".take")
    doc = json.loads(record.read_text())
    doc["validator"] = '"0ld' + doc["validator"][1:]
    record.write_text(json.dumps(doc))
    fetched_whole_again(tmp_path, m, sim[1])


@pytest.mark.timeout(180)
@pytest.mark.parametrize("other", ["attempt", "provider_id", "job"])
def test_a_part_of_another_take_is_not_gone_on_from_and_is_removed(
    tmp_path: Path, sim: tuple[str, Any], other: str
) -> None:
    """Another attempt of the job (a retry's render), another video or another job: the bytes are not this take's,
    whatever the server would answer; the `.part` is removed (event `part-removed`) and the video fetched whole."""
    m, part, held = cut_by_a_stop(tmp_path, sim)
    record = Path(str(part) + ".take")
    doc = json.loads(record.read_text())
    doc["take"][other] = 2 if other == "attempt" else "another"
    record.write_text(json.dumps(doc))
    fetched_whole_again(tmp_path, m, sim[1])
    assert _events(tmp_path, "part-removed") == [{"path": str(part), "size": held}]


@pytest.mark.timeout(180)
def test_a_whole_body_answering_the_next_runs_range_starts_the_file_over_cleanly(
    tmp_path: Path, sim: tuple[str, Any]
) -> None:
    """A server that sends no ranges answers 200 with the whole video: the bytes kept are dropped, the video
    written from its first byte, and it is whole."""
    m, _, _ = cut_by_a_stop(tmp_path, sim)
    sim[1].configure({"script": [{"route": "file", "fault": "no_ranges", "p": 1.0}]})
    fetched_whole_again(tmp_path, m, sim[1])


@pytest.mark.parametrize("url", ["https://media.example.test/v/abc.mp4?sig=r3s1gned", "https://media.example.test/v/other.mp4?sig=s3cr3t"],
                         ids=["signed-again", "another-path"])
@pytest.mark.anyio
async def test_a_part_a_stopped_run_left_is_gone_on_from_at_a_url_signed_again_not_at_another_path(
    provider: Any, tmp_path: Path, url: str
) -> None:
    """The next run's download (a new `PartialDownload` of the same take) finds the `.part` and its record: the
    same host and path with a new query goes on from it; another path is another object, fetched whole."""
    data = video(2_500_000)
    half = 1_300_000
    seen: list[httpx.Request] = []
    take = {"job": "ab" * 32, "provider_id": "vid_1", "attempt": 1}

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if len(seen) == 1:
            return httpx.Response(200, headers={"content-type": "video/mp4", "content-length": str(len(data)),
                                                "etag": ETAG}, stream=Cut(data, half))
        if "range" in request.headers:
            first = int(request.headers["range"].removeprefix("bytes=").rstrip("-"))
            return httpx.Response(206, headers={"content-type": "video/mp4", "etag": ETAG,
                                                "content-range": f"bytes {first}-{len(data) - 1}/{len(data)}"},
                                  content=data[first:])
        return whole(data)

    dest = tmp_path / "one.mp4"
    async with served(handler, provider) as client:
        with pytest.raises(DownloadError):
            await provider.download(client, MEDIA, dest, partial=download.PartialDownload(take))
        record = json.loads((tmp_path / "one.mp4.part.take").read_text())
        assert record["url"] == "GET https://media.example.test/v/abc.mp4"[4:] and "s3cr3t" not in json.dumps(record)
        got = await provider.download(client, url, dest, partial=download.PartialDownload(take))
    if "abc" in url:
        assert seen[1].headers["range"] == f"bytes={half}-" and seen[1].headers["if-range"] == ETAG
    else:
        assert "range" not in seen[1].headers
    assert dest.read_bytes() == data and got.sha256 == hashlib.sha256(data).hexdigest()
    assert parts(tmp_path) == [] and not list(tmp_path.glob("*.take"))


@pytest.mark.anyio
async def test_a_small_videos_part_gets_no_record(provider: Any, tmp_path: Path) -> None:
    """Below RECORD_MIN_BYTES a cut video is fetched again whole by the next run: no file more per download."""
    data = video(200_000)

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, headers={"content-type": "video/mp4", "content-length": str(len(data)),
                                            "etag": ETAG}, stream=Cut(data, 100_000))

    take = {"job": "ab" * 32, "provider_id": "vid_1", "attempt": 1}
    async with served(handler, provider) as client:
        with pytest.raises(DownloadError):
            await provider.download(client, MEDIA, tmp_path / "one.mp4", partial=download.PartialDownload(take))
    assert parts(tmp_path) == ["one.mp4.part"] and not list(tmp_path.glob("*.take"))


@pytest.mark.anyio
async def test_a_part_gone_on_from_whose_whole_differs_from_the_servers_digest_is_fetched_whole_on_the_next_try(
    provider: Any, tmp_path: Path
) -> None:
    """Bytes a checkpoint cannot tell from the ones sent (changed before they were written, their digest taken
    over them): where the server sent the video's digest, the whole file's SHA-256 is checked against it, the
    video is not saved, and the next try starts over rather than going on from the `.part` again."""
    data = video(2_500_000)
    half = 1_300_000
    seen: list[httpx.Request] = []
    digest = "sha-256=:" + base64.b64encode(hashlib.sha256(data).digest()).decode() + ":"
    take = {"job": "ab" * 32, "provider_id": "vid_1", "attempt": 1}

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if len(seen) == 1:
            return httpx.Response(200, headers={"content-type": "video/mp4", "content-length": str(len(data)),
                                                "etag": ETAG, "content-digest": digest}, stream=Cut(data, half))
        if "range" in request.headers:
            first = int(request.headers["range"].removeprefix("bytes=").rstrip("-"))
            return httpx.Response(206, headers={"content-type": "video/mp4", "etag": ETAG,
                                                "content-range": f"bytes {first}-{len(data) - 1}/{len(data)}"},
                                  content=data[first:])
        return whole(data, **{"content-digest": digest})

    dest = tmp_path / "one.mp4"
    part, record = tmp_path / "one.mp4.part", tmp_path / "one.mp4.part.take"
    async with served(handler, provider) as client:
        with pytest.raises(DownloadError):
            await provider.download(client, MEDIA, dest, partial=download.PartialDownload(take))
        doc = json.loads(record.read_text())
        assert doc["sha256"] and doc["checkpoints"] == [[half, hashlib.sha256(data[:half]).hexdigest()]], doc
        bad = bytearray(part.read_bytes())
        bad[half - 1000] ^= 0xFF
        part.write_bytes(bytes(bad))
        doc["checkpoints"] = [[half, hashlib.sha256(bytes(bad)).hexdigest()]]
        record.write_text(json.dumps(doc))
        partial = download.PartialDownload(take)
        with pytest.raises(DownloadError) as cut:
            await provider.download(client, MEDIA, dest, partial=partial)
        assert cut.value.code == "CORRUPT" and seen[1].headers["range"] == f"bytes={half}-"
        assert not dest.exists() and parts(tmp_path) == [] and not list(tmp_path.glob("*.take"))
        got = await provider.download(client, MEDIA, dest, partial=partial)
    assert "range" not in seen[2].headers
    assert dest.read_bytes() == data and got.sha256 == hashlib.sha256(data).hexdigest()
