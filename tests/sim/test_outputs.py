from __future__ import annotations

import io
from typing import Any

import av
import pytest
from PIL import Image
from sim_kit import Api

pytestmark = pytest.mark.anyio


async def completed(api: Api, **body: Any) -> dict[str, Any]:
    video = (await api.create(**body)).json()["id"]
    api.clock.advance(10)
    done = await api.video(video)
    assert done["status"] == "completed"
    return done


async def test_output_url_serves_the_mp4_the_object_describes(api: Api) -> None:
    done = await completed(api, size="1024x1024", seconds="8", seed=4)
    r = await api.client.get(done["output"]["url"])
    assert r.status_code == 200
    assert r.headers["content-type"] == "video/mp4"
    assert r.headers["accept-ranges"] == "bytes"
    assert len(r.content) == done["output"]["size_bytes"] == int(r.headers["content-length"])
    with av.open(io.BytesIO(r.content)) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.name == "h264"
        assert (stream.codec_context.width, stream.codec_context.height) == (64, 64)
        assert container.duration is not None
        assert container.duration / 1e6 == pytest.approx(8.0, abs=0.2)
    assert api.stats()["downloads"] == 1


async def test_head_gives_the_length_without_the_body_or_a_download(api: Api) -> None:
    done = await completed(api)
    r = await api.client.head(done["output"]["url"])
    assert r.status_code == 200
    assert int(r.headers["content-length"]) == done["output"]["size_bytes"]
    assert r.content == b""
    assert api.stats()["downloads"] == 0


async def test_thumbnail_url_and_content_endpoint(api: Api) -> None:
    done = await completed(api)
    poster = await api.client.get(done["output"]["thumbnail_url"])
    assert poster.headers["content-type"] == "image/jpeg" and poster.content[:2] == b"\xff\xd8"
    video = await api.client.get(f"/videos/{done['id']}/content")
    assert video.content == (await api.client.get(done["output"]["url"])).content
    thumb = await api.client.get(f"/videos/{done['id']}/content", params={"variant": "thumbnail"})
    assert thumb.content == poster.content
    bad = await api.client.get(f"/videos/{done['id']}/content", params={"variant": "poster"})
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "variant"


@pytest.mark.parametrize("prefix", ["/v1", "/openai/v1"])
async def test_the_spritesheet_variant_is_a_jpeg_grid_of_frames(api: Api, prefix: str) -> None:
    root = f"http://sim.test{prefix}"
    video = (await api.create(f"{root}/videos", size="1024x1024")).json()["id"]
    url = f"{root}/videos/{video}/content"
    assert (await api.client.get(url, params={"variant": "spritesheet"})).status_code == 404  # not finished yet
    api.clock.advance(10)
    sheet = await api.client.get(url, params={"variant": "spritesheet"})
    assert sheet.status_code == 200, sheet.text
    assert sheet.headers["content-type"] == "image/jpeg" and sheet.content[:2] == b"\xff\xd8"
    thumb = await api.client.get(url, params={"variant": "thumbnail"})
    assert sheet.content != thumb.content
    with Image.open(io.BytesIO(sheet.content)) as img, Image.open(io.BytesIO(thumb.content)) as poster:
        assert img.format == "JPEG"
        assert img.size == (poster.size[0] // 2 * 2, poster.size[1] // 2 * 2)  # 2x2 frames at half size


async def test_the_spritesheet_follows_the_rules_of_the_other_variants(api: Api) -> None:
    api.configure(api_key="k", url_ttl=5, refresh_urls=False, expired_status=410)
    key = {"Authorization": "Bearer k"}
    video = (await api.client.post("/videos", json={"model": "pixverse-v5.6", "prompt": "a fox"}, headers=key)).json()["id"]
    api.clock.advance(10)
    url = f"/videos/{video}/content"
    assert (await api.client.get(url, params={"variant": "spritesheet"})).status_code == 401
    assert (await api.client.get(url, params={"variant": "spritesheet"}, headers=key)).status_code == 200
    assert (await api.client.get("/videos/video_nope/content", params={"variant": "spritesheet"}, headers=key)).status_code == 404
    api.clock.advance(6)
    assert (await api.client.get(url, params={"variant": "spritesheet"}, headers=key)).status_code == 410


async def test_content_of_an_unfinished_video_is_404(api: Api) -> None:
    video = (await api.create()).json()["id"]
    assert (await api.client.get(f"/videos/{video}/content")).status_code == 404


async def test_url_expires_after_the_ttl_and_a_fresh_get_issues_a_new_one(api: Api) -> None:
    api.configure(url_ttl=60)
    done = await completed(api)
    old_url = done["output"]["url"]
    assert done["expires_at"] == done["completed_at"] + 60
    api.clock.advance(61)
    expired = await api.client.get(old_url)
    assert expired.status_code == 403
    assert expired.json()["error"]["code"] == "URL_EXPIRED"
    fresh = await api.video(done["id"])
    assert fresh["output"]["url"] != old_url
    assert fresh["expires_at"] == int(api.clock.now) + 60
    assert (await api.client.get(fresh["output"]["url"])).status_code == 200
    assert (await api.client.get(old_url)).status_code == 403


@pytest.mark.parametrize("status", [404, 410])
async def test_expired_status_is_a_knob(api: Api, status: int) -> None:
    api.configure(url_ttl=0, expired_status=status)
    done = await completed(api)
    assert (await api.client.get(done["output"]["url"])).status_code == status


async def test_without_refresh_an_expired_url_stays_expired(api: Api) -> None:
    api.configure(url_ttl=5, refresh_urls=False)
    done = await completed(api)
    api.clock.advance(6)
    again = await api.video(done["id"])
    assert again["output"]["url"] == done["output"]["url"]
    assert (await api.client.get(again["output"]["url"])).status_code == 403


@pytest.mark.parametrize("prefix", ["/v1", "/openai/v1"])
async def test_without_output_the_content_route_serves_the_video_until_it_expires(api: Api, prefix: str) -> None:
    api.configure(omit_output=True, url_ttl=60)
    root = f"http://sim.test{prefix}"
    video = (await api.create(f"{root}/videos")).json()["id"]
    api.clock.advance(10)
    done = (await api.client.get(f"{root}/videos/{video}")).json()
    assert done["status"] == "completed" and "output" not in done
    assert done["expires_at"] == done["completed_at"] + 60
    content = await api.client.get(f"{root}/videos/{video}/content")
    assert content.status_code == 200 and content.headers["content-type"] == "video/mp4"
    assert content.content[4:8] == b"ftyp"
    api.clock.advance(61)
    expired = await api.client.get(f"{root}/videos/{video}/content")
    assert expired.status_code == 403 and expired.json()["error"]["code"] == "CONTENT_EXPIRED"
    fresh = (await api.client.get(f"{root}/videos/{video}")).json()  # URLs are refreshed: so is the content
    assert fresh["expires_at"] == int(api.clock.now) + 60
    assert (await api.client.get(f"{root}/videos/{video}/content")).content == content.content


async def test_without_refresh_expired_content_stays_expired(api: Api) -> None:
    api.configure(omit_output=True, url_ttl=5, refresh_urls=False, expired_status=410)
    done = await completed(api)
    api.clock.advance(6)
    await api.video(done["id"])
    assert (await api.client.get(f"/videos/{done['id']}/content")).status_code == 410


async def test_a_forged_token_is_403(api: Api) -> None:
    done = await completed(api)
    url = done["output"]["url"].split("?")[0]
    assert (await api.client.get(url, params={"token": "0" * 32})).status_code == 403
    assert (await api.client.get(url)).status_code == 403
    assert (await api.client.get("http://sim.test/files/video_nope.mp4?token=x")).status_code == 404


async def test_expired_fault_refuses_a_fresh_url(api: Api) -> None:
    api.configure(script=[{"route": "file", "nth": 1, "fault": "expired", "status": 410}])
    done = await completed(api)
    assert (await api.client.get(done["output"]["url"])).status_code == 410
    assert (await api.client.get(done["output"]["url"])).status_code == 200


@pytest.mark.parametrize(
    ("header", "span"),
    [("bytes=0-99", (0, 99)), ("bytes=100-", (100, None)), ("bytes=-50", (-50, None))],
)
async def test_range_requests_return_206_with_content_range(api: Api, header: str, span: tuple[int, int | None]) -> None:
    done = await completed(api)
    whole = (await api.client.get(done["output"]["url"])).content
    r = await api.client.get(done["output"]["url"], headers={"Range": header})
    assert r.status_code == 206
    start, end = span
    expected = whole[start : end + 1] if end is not None else whole[start:]
    assert r.content == expected
    first = start if start >= 0 else len(whole) + start
    assert r.headers["content-range"] == f"bytes {first}-{first + len(expected) - 1}/{len(whole)}"


async def test_unsatisfiable_range_is_416(api: Api) -> None:
    done = await completed(api)
    r = await api.client.get(done["output"]["url"], headers={"Range": "bytes=99999999-"})
    assert r.status_code == 416
    assert r.headers["content-range"].startswith("bytes */")


async def test_truncated_download_is_short_under_a_larger_content_length(api: Api) -> None:
    api.configure(script=[{"route": "file", "nth": 1, "fault": "truncated"}])
    done = await completed(api)
    r = await api.client.get(done["output"]["url"])
    assert r.status_code == 200
    assert int(r.headers["content-length"]) == done["output"]["size_bytes"]
    assert len(r.content) == done["output"]["size_bytes"] // 2
    assert api.stats()["downloads"] == 0


async def test_wrong_content_type_and_corrupt_bytes(api: Api) -> None:
    api.configure(
        script=[
            {"route": "file", "nth": 1, "fault": "wrong_content_type"},
            {"route": "file", "nth": 2, "fault": "corrupt"},
        ]
    )
    done = await completed(api)
    good = await api.client.get(done["output"]["url"], headers={"Range": "bytes=0-"})
    assert good.status_code == 206 and good.headers["content-type"].startswith("text/html")
    corrupt = await api.client.get(done["output"]["url"])
    assert len(corrupt.content) == done["output"]["size_bytes"]
    assert corrupt.content[4:8] != b"ftyp"
    intact = await api.client.get(done["output"]["url"])
    assert intact.content[4:8] == b"ftyp"
    assert api.stats()["faults"] == {"wrong_content_type": 1, "corrupt": 1}


async def test_reset_mid_body_raises_in_process(api: Api) -> None:
    from runner.sim import SimulatedReset

    api.configure(script=[{"route": "content", "nth": 1, "fault": "reset_mid_body"}])
    done = await completed(api)
    with pytest.raises(SimulatedReset) as info:
        await api.client.get(f"/videos/{done['id']}/content")
    assert info.value.phase == "mid_body"


async def test_each_distinct_clip_is_encoded_once(api: Api) -> None:
    api.configure(concurrency=4)
    ids = [(await api.create(prompt="same", seed=1, idempotency_key=f"k{i}")).json()["id"] for i in range(3)]
    api.clock.advance(10)
    for video in ids:
        done = await api.video(video)
        await api.client.get(done["output"]["url"])
    stats = api.stats()
    assert stats["encodes"] == 1
    assert stats["cache_hits"] >= 5


async def test_full_size_encodes_at_the_render_size(api: Api) -> None:
    api.configure(full_size=True)
    done = await completed(api, quality="360p", seconds="5")
    data = (await api.client.get(done["output"]["url"])).content
    with av.open(io.BytesIO(data)) as container:
        ctx = container.streams.video[0].codec_context
        assert (ctx.width, ctx.height) == (640, 360)


async def test_a_video_that_completes_while_its_status_is_answered_is_answered_with_its_size(api: Api) -> None:
    """A served simulator on a loaded machine: the render ends between the simulator's readings of its clock while
    it answers. The answer is of one moment: still rendering, or completed with its size, never completed with
    none (which a client takes for a video of unknown length)."""
    video = (await api.create()).json()["id"]
    for before in (0.05, 0.15, 0.25, 0.35, 0.45):
        api.clock.now = api.sim.videos[video].created + 10 - before
        base = api.clock.now
        reads = 0

        def later(base: float = base) -> float:  # every reading of the clock a tenth of a second after the last
            nonlocal reads
            reads += 1
            return base + 0.1 * reads

        api.sim.clock = later
        got = await api.video(video)
        api.sim.clock = api.clock
        assert got["status"] != "completed" or got["output"]["size_bytes"] is not None, got
        api.sim.videos[video].size_bytes = None  # completed, not yet encoded, for the next moment tried


async def test_a_range_is_sent_unless_its_if_range_names_another_body_and_the_bytes_sent_are_counted(api: Api) -> None:
    """What a download resumed across runs meets: `If-Range` of the body's ETag gets the rest (206), of another
    validator the whole body (200); `download_bytes` counts the bytes of bodies sent, parts too."""
    done = await completed(api)
    url = done["output"]["url"]
    whole = await api.client.get(url)
    size, etag = len(whole.content), whole.headers["etag"]
    rest = await api.client.get(url, headers={"Range": "bytes=100-", "If-Range": etag})
    assert rest.status_code == 206 and rest.content == whole.content[100:]
    assert rest.headers["content-range"] == f"bytes 100-{size - 1}/{size}"
    other = await api.client.get(url, headers={"Range": "bytes=100-", "If-Range": '"0ld"'})
    assert other.status_code == 200 and other.content == whole.content
    assert api.stats()["download_bytes"] == size + (size - 100) + size


async def test_no_ranges_sends_the_whole_body_whatever_range_is_asked(api: Api) -> None:
    done = await completed(api)
    api.configure(script=[{"route": "file", "fault": "no_ranges", "p": 1.0}])
    r = await api.client.get(done["output"]["url"], headers={"Range": "bytes=100-"})
    assert r.status_code == 200 and len(r.content) == done["output"]["size_bytes"]


async def test_clip_bytes_pads_the_mp4_to_that_size_a_video_still(api: Api) -> None:
    api.configure(clip_bytes=300_000)
    done = await completed(api)
    r = await api.client.get(done["output"]["url"])
    assert len(r.content) == done["output"]["size_bytes"] == 300_000
    from runner.providers.download import _Boxes

    boxes = _Boxes()
    boxes.feed(r.content)
    assert boxes.problem(len(r.content)) is None and b"free" in boxes.kinds  # its boxes tile it: a whole MP4
    with av.open(io.BytesIO(r.content)) as container:
        assert container.streams.video[0].codec_context.name == "h264"
