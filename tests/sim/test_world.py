"""A simulated world kept in a file: a later simulator given the file finds every video, request and cancel."""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from sim_kit import BASE, Api, FakeClock

from runner.sim import SimConfig, create_app
from runner.sim.world import World, WorldError

CONFIG = SimConfig(render_time=10, jitter=0, concurrency=2, max_side=64)
BODY = {"model": "pixverse-v5.6", "quality": "360p", "duration": 5}


@asynccontextmanager
async def world_api(path: Path, clock: FakeClock) -> AsyncIterator[Api]:
    app = create_app(CONFIG, clock=clock, world=World.open(path))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE) as client:
        yield Api(client, app.state.sim, clock)


def _seen(videos: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The video objects without their URL tokens (issued afresh by each simulator, valid in both)."""
    return [{k: v for k, v in d.items() if k != "output"} for d in videos]


@pytest.mark.anyio
async def test_a_world_read_again_has_every_video_request_and_cancel(tmp_path: Path) -> None:
    path, clock = tmp_path / "world.jsonl", FakeClock()
    async with world_api(path, clock) as a:
        ids = []
        for i in range(4):
            r = await a.create(**BODY, prompt=f"fox {i}", idempotency_key=f"k{i}")
            assert r.status_code == 202
            ids.append(r.json()["id"])
            clock.advance(1)
        assert (await a.create(**{**BODY, "quality": "9000p"}, prompt="fox", idempotency_key="bad")).status_code == 400
        assert (await a.client.delete(f"/videos/{ids[1]}")).status_code == 204
        clock.advance(3)
        before = [await a.video(i) for i in ids]
        log_before = (await a.client.get("http://sim.test/v1/requests", params={"limit": 100})).json()
        stats_before = a.stats()
    clock.advance(0.5)
    async with world_api(path, clock) as b:
        after = [await b.video(i) for i in ids]
        clock.advance(-0.5)
        assert _seen([await b.video(i) for i in ids]) == _seen(before)
        clock.advance(0.5)
        assert [d["status"] for d in after] == ["in_progress", "failed", "in_progress", "queued"]
        assert (await b.client.get("http://sim.test/v1/requests", params={"limit": 100})).json() == log_before
        # a known key is the same video, not a new one
        again = await b.create(**BODY, prompt="fox 0", idempotency_key="k0")
        assert again.json()["id"] == ids[0]
        stats = b.stats()
        for name in ("creates", "rejected", "cancelled", "duplicate_paid"):
            assert stats[name] == stats_before[name], name
        assert stats["creates"] == 4 and stats["cancelled"] == 1 and stats["rejected"] == 1
        # the schedule goes on: the cancelled video freed its slot for the third one
        clock.advance(60)
        assert [(await b.video(i))["status"] for i in ids] == ["completed", "failed", "completed", "completed"]
        new = (await b.create(**BODY, prompt="fox 9")).json()["id"]
        assert new not in ids


@pytest.mark.anyio
async def test_a_finished_video_is_downloaded_by_a_later_simulator(tmp_path: Path) -> None:
    path, clock = tmp_path / "world.jsonl", FakeClock()
    async with world_api(path, clock) as a:
        vid = (await a.create(**BODY, prompt="fox")).json()["id"]
        clock.advance(30)
        first = await a.client.get((await a.video(vid))["output"]["url"])
    async with world_api(path, clock) as b:
        url = (await b.video(vid))["output"]["url"]
        second = await b.client.get(url)
        assert second.status_code == 200 and second.content == first.content


def test_a_line_cut_short_by_a_kill_is_dropped_and_the_file_mended(tmp_path: Path) -> None:
    path = tmp_path / "world.jsonl"
    World(path, []).begin(1000.0)
    World(path, []).append({"t": "cancel", "id": "video_x", "at": 1001.0})
    whole = path.read_bytes()
    path.write_bytes(whole + b'{"t":"create","dup":[false,fa')
    world = World.open(path)
    assert [r["t"] for r in world.records] == ["world", "cancel"]
    assert path.read_bytes() == whole
    world.append({"t": "cancel", "id": "video_y", "at": 1002.0})
    assert [r["t"] for r in World.open(path).records] == ["world", "cancel", "cancel"]


@pytest.mark.parametrize(
    ("lines", "message"),
    [
        (['{"t":"world","v":1,"epoch":1}', "not json", '{"t":"cancel","id":"v","at":2}'], ":2: not a JSON record"),
        (['{"t":"world","v":1,"epoch":1}', '{"t":"nonsense"}'], ":2: not a simulator record"),
        (['{"t":"world","v":99,"epoch":1}'], ":1: written by another version"),
        (['{"t":"cancel","id":"v","at":2}'], ":1: a simulator's world begins with a `world` record"),
        (['{"t":"world","v":1}'], ":1: a `world` record needs its epoch"),
    ],
)
def test_a_damaged_world_is_an_error_naming_file_and_line(tmp_path: Path, lines: list[str], message: str) -> None:
    path = tmp_path / "world.jsonl"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(WorldError) as caught:
        World.open(path)
    assert f"{path}{message}" in str(caught.value)


@pytest.mark.parametrize("text", ["my only note, no newline", "one line of notes\n"])
def test_a_file_of_one_line_that_is_no_record_is_refused_and_kept(tmp_path: Path, text: str) -> None:
    """Not taken for a world whose only line a kill cut short: the file is someone's, and stays as it is."""
    path = tmp_path / "notes.txt"
    path.write_text(text)
    with pytest.raises(WorldError, match=f"{path}:1: not a JSON record"):
        World.open(path)
    assert path.read_text() == text


@pytest.mark.anyio
async def test_a_create_that_cannot_be_written_down_is_a_500_that_made_nothing(tmp_path: Path) -> None:
    path, clock = tmp_path / "world.jsonl", FakeClock()
    async with world_api(path, clock) as a:
        path.unlink()
        path.mkdir()  # appending now fails
        r = await a.create(**BODY, prompt="fox", idempotency_key="k")
        assert r.status_code == 500 and "could not write its world down" in r.text
        assert a.stats()["creates"] == 0 and a.sim.videos == {}
        log = (await a.client.get("http://sim.test/v1/requests", params={"idempotency_key": "k"})).json()["data"]
        assert [e["status"] for e in log] == ["upstream_failure"] and log[0]["video_id"] is None and log[0]["http_status"] == 500


@pytest.mark.anyio
async def test_reset_begins_the_world_file_afresh(tmp_path: Path) -> None:
    path, clock = tmp_path / "world.jsonl", FakeClock()
    async with world_api(path, clock) as a:
        vid = (await a.create(**BODY, prompt="fox")).json()["id"]
        assert (await a.client.post("/_sim/reset")).status_code == 204
    records = World.open(path).records
    assert [r["t"] for r in records] == ["world"]
    async with world_api(path, clock) as b:
        assert (await b.client.get(f"/videos/{vid}")).status_code == 404


def test_written_records_are_one_json_object_a_line(tmp_path: Path) -> None:
    path = tmp_path / "world.jsonl"
    World(path, []).begin(5.0)
    World(path, []).append({"t": "log", "id": "req_1", "at": 6.0, "model": None, "key": "ключ\nk", "status": 400, "error": ["X", "y"]})
    lines = path.read_text(encoding="utf-8").splitlines()
    assert [json.loads(line)["t"] for line in lines] == ["world", "log"]
    assert World.open(path).records[1]["key"] == "ключ\nk"


@pytest.mark.anyio
async def test_a_world_that_lost_its_last_records_never_gives_their_ids_to_other_videos(tmp_path: Path) -> None:
    """A power cut may lose the last lines: a client holding the id of a video they named must find no video
    (and in time call the job unknown), not another job's video under the same id."""
    path, clock = tmp_path / "world.jsonl", FakeClock()
    async with world_api(path, clock) as a:
        kept = (await a.create(**BODY, prompt="fox 1")).json()["id"]
        clock.advance(1)
        lost = (await a.create(**BODY, prompt="fox 2")).json()["id"]
    lines = path.read_text().splitlines(keepends=True)
    path.write_text("".join(lines[:-1]))  # the last create never reached the disk
    clock.advance(1)
    async with world_api(path, clock) as b:
        assert (await b.client.get(f"/videos/{lost}")).status_code == 404
        other = (await b.create(**BODY, prompt="fox 3")).json()["id"]
        assert other not in (kept, lost)
        assert (await b.client.get(f"/videos/{lost}")).status_code == 404
        assert (await b.video(kept))["prompt"] == "fox 1"


@pytest.mark.parametrize("record", [
    '{"t":"create","dup":[false,false],"video":{"id":"v"}}',
    '{"t":"create","dup":[false,false],"video":{"id":"v","unknown_field":1}}',
])
def test_a_record_that_cannot_be_replayed_is_an_error_naming_the_file(tmp_path: Path, record: str) -> None:
    from runner.sim.engine import Sim

    path = tmp_path / "world.jsonl"
    path.write_text('{"t":"world","v":1,"epoch":1}\n' + record + "\n")
    with pytest.raises(WorldError, match=f"{path}: a record the simulator cannot replay"):
        Sim(CONFIG, clock=FakeClock(), world=World.open(path))


@pytest.mark.anyio
async def test_a_world_file_deleted_while_in_use_begins_again_readable(tmp_path: Path) -> None:
    path, clock = tmp_path / "world.jsonl", FakeClock()
    async with world_api(path, clock) as a:
        path.unlink()
        vid = (await a.create(**BODY, prompt="fox")).json()["id"]
    records = World.open(path).records
    assert [r["t"] for r in records] == ["world", "create"] and records[1]["video"]["id"] == vid


def test_a_cancel_of_a_video_the_file_lost_is_passed_over(tmp_path: Path) -> None:
    """A world file deleted while in use begins again with its `world` record; a cancel written after that may
    name a video it no longer has."""
    from runner.sim.engine import Sim

    path = tmp_path / "world.jsonl"
    path.write_text('{"t":"world","v":1,"epoch":1}\n{"t":"cancel","id":"video_gone","at":2}\n')
    assert Sim(CONFIG, clock=FakeClock(), world=World.open(path)).stats()["creates"] == 0


def _open_count(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    import runner.sim.world as world_mod

    opened: list[str] = []
    real = os.open

    def counting(path, flags, *args):  # type: ignore[no-untyped-def]
        opened.append(str(path))
        return real(path, flags, *args)

    monkeypatch.setattr(world_mod.os, "open", counting)
    return opened


def test_appends_go_through_one_descriptor_until_the_world_is_closed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "world.jsonl"
    World(path, []).begin(1000.0)
    opened = _open_count(monkeypatch)
    with World.open(path) as world:
        for i in range(50):
            world.append({"t": "cancel", "id": f"video_{i}", "at": 1001.0 + i})
        assert opened == [str(path)]
        fd = world._fd
        assert fd is not None and os.fstat(fd).st_size == path.stat().st_size
    with pytest.raises(OSError):
        os.fstat(fd)  # closed with the world
    assert len(World.open(path).records) == 51
    world.append({"t": "cancel", "id": "video_after", "at": 2000.0})  # a closed world opens its file again
    world.close()
    assert World.open(path).records[-1]["id"] == "video_after" and len(opened) == 2


def test_a_dropped_world_closes_its_descriptor(tmp_path: Path) -> None:
    import gc

    path = tmp_path / "world.jsonl"
    world = World(path, [])
    world.begin(1.0)
    world.append({"t": "cancel", "id": "v", "at": 2.0})
    fd = world._fd
    assert fd is not None
    del world
    gc.collect()
    with pytest.raises(OSError):
        os.fstat(fd)


def test_a_record_written_in_parts_is_written_whole(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import runner.sim.world as world_mod

    path = tmp_path / "world.jsonl"
    world = World(path, [])
    world.begin(1.0)
    real = os.write
    monkeypatch.setattr(world_mod.os, "write", lambda fd, data: real(fd, bytes(data[:7])))
    world.append({"t": "log", "id": "req_1", "at": 2.0, "model": None, "key": "k" * 40, "status": 400, "error": ["X", "y"]})
    world.append({"t": "cancel", "id": "video_x", "at": 3.0})
    monkeypatch.undo()
    assert [r["t"] for r in World.open(path).records] == ["world", "log", "cancel"]
    world.close()


def test_a_world_file_deleted_or_replaced_while_open_is_the_one_written(tmp_path: Path) -> None:
    path = tmp_path / "world.jsonl"
    world = World(path, [])
    world.begin(7.0)
    world.append({"t": "cancel", "id": "a", "at": 8.0})
    path.unlink()
    world.append({"t": "cancel", "id": "b", "at": 9.0})  # begins again, readable
    assert [(r["t"], r.get("id")) for r in World.open(path).records] == [("world", None), ("cancel", "b")]
    other = tmp_path / "other.jsonl"
    other.write_text('{"t":"world","v":1,"epoch":7}\n')
    os.replace(other, path)
    world.append({"t": "cancel", "id": "c", "at": 10.0})
    assert [(r["t"], r.get("id")) for r in World.open(path).records] == [("world", None), ("cancel", "c")]
    world.begin(20.0)  # begun afresh while open: appends follow the new file
    world.append({"t": "cancel", "id": "d", "at": 21.0})
    records = World.open(path).records
    assert records[0]["epoch"] == 20.0 and [r.get("id") for r in records[1:]] == ["d"]
    world.close()


def _big_png(size: int, fill: bytes) -> bytes:
    """A whole PNG of about `size` bytes: a 1x1 image with an ancillary chunk of `fill` repeated before its end."""
    import struct
    import zlib

    from sim_kit import png_bytes

    small = png_bytes()
    data = (fill * (size // len(fill) + 1))[:size]
    chunk = struct.pack(">I", len(data)) + b"zzZz" + data + struct.pack(">I", zlib.crc32(b"zzZz" + data))
    end = small.rindex(b"\x00\x00\x00\x00IEND")
    return small[:end] + chunk + small[end:]


@pytest.mark.anyio
async def test_input_images_are_kept_as_stand_ins_and_a_replayed_world_answers_the_same(tmp_path: Path) -> None:
    """Two videos of one 1 MB image (a grid sends the same image with each prompt): the world file and the
    videos hold its digest and size, not its bytes; a later simulator reading the file answers the same videos,
    a reused key with the same image is the same video, with another image a conflict, and the same body under
    a new key is still told as a duplicate."""
    import base64
    import hashlib

    path, clock = tmp_path / "world.jsonl", FakeClock()
    image, other = _big_png(1_000_000, b"fox"), _big_png(1_000_000, b"owl")
    uri = f"data:image/png;base64,{base64.b64encode(image).decode()}"
    stand_in = f"data:image/png;sha256={hashlib.sha256(image).hexdigest()};bytes={len(image)}"
    async with world_api(path, clock) as a:
        ids = []
        for i in range(2):
            r = await a.create(**BODY, prompt=f"fox {i}", input_reference=[{"image_url": uri}], idempotency_key=f"k{i}")
            assert r.status_code == 202, r.text
            ids.append(r.json()["id"])
        assert a.sim.get(ids[0]).params["input_reference"] == [stand_in]
        before = [await a.video(i) for i in ids]
    assert path.stat().st_size < 20_000, path.stat().st_size
    records = [json.loads(line) for line in path.read_text().splitlines()]
    assert [r["video"]["params"]["input_reference"] for r in records if r["t"] == "create"] == [[stand_in]] * 2
    async with world_api(path, clock) as b:
        b.configure(idempotency_conflict="error")
        assert _seen([await b.video(i) for i in ids]) == _seen(before)
        again = await b.create(**BODY, prompt="fox 0", input_reference=[{"image_url": uri}], idempotency_key="k0")
        assert (again.status_code, again.json()["id"]) == (200, ids[0])
        swapped = f"data:image/png;base64,{base64.b64encode(other).decode()}"
        conflict = await b.create(**BODY, prompt="fox 0", input_reference=[{"image_url": swapped}], idempotency_key="k0")
        assert conflict.status_code == 409 and conflict.json()["error"]["code"] == "IDEMPOTENCY_CONFLICT"
        dup = await b.create(**BODY, prompt="fox 1", input_reference=[{"image_url": uri}], idempotency_key="k9")
        assert dup.status_code == 202 and b.stats()["duplicate_bodies"] == 1


@pytest.mark.anyio
async def test_a_world_written_with_whole_images_is_still_read(tmp_path: Path) -> None:
    """A world file of an earlier version holds each create's images whole: it is read, its videos answered as
    before, and kept in memory as stand-ins."""
    import base64
    import hashlib

    path, clock = tmp_path / "world.jsonl", FakeClock()
    image = _big_png(50_000, b"fox")
    uri = f"data:image/png;base64,{base64.b64encode(image).decode()}"
    async with world_api(path, clock) as a:
        vid = (await a.create(**BODY, prompt="fox", input_reference=uri, idempotency_key="k")).json()["id"]
        before = await a.video(vid)
    records = [json.loads(line) for line in path.read_text().splitlines()]
    for r in records:
        if r["t"] == "create":
            r["video"]["params"]["input_reference"] = [uri]  # as an earlier version wrote it
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    async with world_api(path, clock) as b:
        assert _seen([await b.video(vid)]) == _seen([before])
        assert b.sim.get(vid).params["input_reference"] == [
            f"data:image/png;sha256={hashlib.sha256(image).hexdigest()};bytes={len(image)}"]
        again = await b.create(**BODY, prompt="fox", input_reference=uri, idempotency_key="k")
        assert (again.status_code, again.json()["id"]) == (200, vid)
