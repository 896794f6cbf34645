from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
from sim_kit import BASE, MODEL, Api, FakeClock, data_uri, png_bytes

from runner.api import plan
from runner.errors import ManifestError
from runner.sim import SimConfig, SimulatedReset, create_app

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize(
    ("body", "field", "fragment"),
    [
        ({"duration": 7}, "duration", "7 is not one of 5, 8, 10"),
        ({"seconds": "7"}, "seconds", "7 is not one of 5, 8, 10"),
        ({"quality": "4k"}, "quality", "not one of 360p, 540p, 720p, 1080p"),
        ({"style": "watercolor"}, "style", "'watercolor' is not one of"),
        ({"aspect_ratio": 169}, "aspect_ratio", "quote it"),
        ({"seed": "abc"}, "seed", "expected an integer"),
        ({"seed": -1}, "seed", "below the minimum"),
        ({"n": 5}, "n", "above the maximum"),
        ({"quality": "1080p", "duration": 10}, "duration", "1080p allows at most 8 s"),
        ({"generate_audio_switch": "yes"}, "generate_audio_switch", "expected true or false"),
        ({"last_frame_image": "https://example.com/a.png"}, "last_frame_image", "only for i2v"),
        ({"seconds": 5, "duration": 8}, "seconds", "contradicts duration"),
        ({"idempotency_key": "x" * 257}, "idempotency_key", "1 to 256 characters"),
        ({"input_reference": [{"image_url": "http://example.com/a.png"}]}, "input_reference", "a plain http URL"),
    ],
)
async def test_invalid_parameter_is_a_400_naming_the_field(api: Api, body: dict[str, Any], field: str, fragment: str) -> None:
    r = await api.create(**body)
    assert r.status_code == 400, r.text
    error = r.json()["error"]
    assert error["code"] == "INVALID_REQUEST"
    assert error["type"] == "invalid_request_error"
    assert error["param"] == field
    assert error["message"].startswith(f"{field}: ")
    assert fragment in error["message"]
    assert api.stats()["creates"] == 0


async def test_missing_prompt_is_rejected(api: Api) -> None:
    r = await api.client.post("/videos", json={"model": MODEL})
    assert r.status_code == 400
    assert r.json()["error"]["param"] == "prompt"


async def test_empty_prompt_is_accepted_because_the_seed_page_example_sends_one(api: Api) -> None:
    r = await api.client.post("/videos", json={"model": MODEL, "prompt": "", "size": "1024x1024"})
    assert r.status_code == 202
    assert r.json()["size"] == "1024x1024"


OPENAI = "http://sim.test/openai/v1"


@pytest.mark.parametrize(("prompt", "fragment"), [
    ("", "prompt: must not be empty (1 to 32000 characters)"),
    ("x" * 32001, "prompt: must be at most 32000 characters, got 32001"),
])
async def test_the_openai_route_takes_a_prompt_of_1_to_32000_characters(api: Api, prompt: str, fragment: str) -> None:
    for url in (f"{OPENAI}/videos", f"{OPENAI}/videos?dryRun=true"):
        r = await api.client.post(url, json={"model": MODEL, "prompt": prompt})
        assert r.status_code == 400, r.text
        assert r.json() == {"error": {"message": fragment, "type": "invalid_request_error", "param": "prompt",
                                      "code": "INVALID_REQUEST"}}
    assert api.stats()["creates"] == 0
    [entry] = (await api.client.get("/requests")).json()["data"]
    assert entry["status"] == "rejected"
    assert (await api.client.post(f"{OPENAI}/videos", json={"model": MODEL, "prompt": "x" * 32000})).status_code == 202


async def test_a_held_create_is_checked_by_the_route_it_came_by(api: Api) -> None:
    api.configure(script=[{"route": "create", "fault": "held", "nth": [1]}])
    with pytest.raises(SimulatedReset):  # the held create's connection drops unanswered
        await api.client.post(f"{OPENAI}/videos", json={"model": MODEL, "prompt": ""})
    assert api.sim.release_held() == 1
    assert api.stats()["creates"] == 0
    [entry] = (await api.client.get("/requests")).json()["data"]
    assert entry["status"] == "rejected"


async def test_unknown_model_is_404_model_not_found(api: Api) -> None:
    r = await api.client.post("/videos", json={"model": "sora-9", "prompt": "x"})
    assert r.status_code == 404
    assert r.json()["error"]["code"] == "MODEL_NOT_FOUND"
    assert "sora-9" in r.json()["error"]["message"]


async def test_missing_model_names_the_field(api: Api) -> None:
    r = await api.client.post("/videos", json={"prompt": "x"})
    assert r.status_code == 400
    assert r.json()["error"]["param"] == "model"


@pytest.mark.parametrize("seconds", ["8", 8, 8.0, "8.0"])
async def test_seconds_is_an_alias_of_duration_as_string_or_number(api: Api, seconds: object) -> None:
    r = await api.create(seconds=seconds)
    assert r.status_code == 202, r.text
    assert r.json()["seconds"] == "8"
    assert r.json()["metadata"]["cost_estimate"] == 0.7


async def test_unknown_fields_pass_through(api: Api) -> None:
    r = await api.create(webhook_url="https://example.com/hook", made_up_option={"a": 1})
    assert r.status_code == 202


async def test_a_slip_of_a_known_name_passes_through_and_is_billed_at_the_default(api: Api, tmp_path: Path) -> None:
    """The provider passes unknown fields through (providers.md section 1): `qualty: 1080p` renders and bills the
    default 540p. The planner refuses the same slip before anything is paid for; the simulator must not."""
    r = await api.create(qualty="1080p")
    assert r.status_code == 202, r.text
    assert (r.json()["size"], r.json()["metadata"]["cost_estimate"]) == ("960x540", 0.35)
    assert api.sim.get(r.json()["id"]).params["qualty"] == "1080p"
    dry = await api.create("/videos?dryRun=true", qualty="1080p", duraton=10)
    assert (dry.status_code, dry.json()["total_cost_micros"]) == (200, 350_000)
    manifest = tmp_path / "m.yaml"
    manifest.write_text(f"version: 1\nname: fox\nprovider: sim\nmodel: {MODEL}\nparams:\n  prompt: a fox\n"
                        "  qualty: 1080p\n")
    with pytest.raises(ManifestError) as refused:
        plan(manifest)
    assert "params.qualty: unknown parameter for pixverse-v5.6; did you mean 'quality'?" in str(refused.value)


@pytest.mark.parametrize("body", [
    {"qualty": "1080p", "duration": 7},
    {"input_reference": "http://example.com/a.png"},
    {"input_reference": "https://example.com/a.png", "last_frame_image": "http://example.com/b.png"},
    {"aspect_ratio": "wide"},
    {"seconds": 8, "duration": 5},
])
async def test_a_400_speaks_of_the_request_not_of_gridrun(api: Api, body: dict[str, Any]) -> None:
    r = await api.create(**body)
    assert r.status_code == 400, r.text
    message = r.json()["error"]["message"].lower()
    for word in ("gridrun", "manifest", "capabilit", "local file", "did you mean"):
        assert word not in message, message


@pytest.mark.parametrize(
    ("body", "size"),
    [
        ({"size": "768x1365"}, "768x1365"),
        ({"aspect_ratio": "9:16", "resolution": "1K"}, "768x1365"),
        ({"aspect_ratio": "1:1", "quality": "720p"}, "720x720"),
        ({"size": "16:9", "quality": "360p"}, "640x360"),
        ({"size": "21:9", "quality": "540p"}, "960x540"),  # W:H is aspect_ratio: the nearest ratio
        ({"resolution": "4K"}, "1365x768"),  # any tier: the nearest
    ],
)
async def test_size_comes_from_size_then_aspect_ratio_and_resolution(api: Api, body: dict[str, Any], size: str) -> None:
    r = await api.create(**body)
    assert r.status_code == 202, r.text
    assert r.json()["size"] == size


@pytest.mark.parametrize(("body", "size", "usd"), [
    ({"size": "1:1", "quality": "1080p"}, "1080x1080", 0.75),
    ({"size": "1:1", "quality": "720p", "duration": 8}, "720x720", 0.90),
    ({"size": "4:3", "quality": "720p"}, "960x720", 0.45),
])
async def test_a_ratio_size_is_billed_at_its_quality_as_the_plan_prices_it(
    api: Api, tmp_path: Path, body: dict[str, Any], size: str, usd: float
) -> None:
    """A size given as a ratio W:H sets the shape only: 1:1 at 1080p renders 1080x1080 and bills 1080p's price,
    the same figure the plan counts against the budget."""
    r = await api.create(**body)
    assert r.status_code == 202, r.text
    assert (r.json()["size"], r.json()["metadata"]["cost_estimate"]) == (size, usd)
    manifest = tmp_path / "m.yaml"
    lines = "".join(f"  {k}: {v!r}\n" if isinstance(v, str) else f"  {k}: {v}\n" for k, v in body.items())
    manifest.write_text(f"version: 1\nname: fox\nprovider: sim\nmodel: {MODEL}\nparams:\n  prompt: a fox\n{lines}")
    assert plan(manifest).jobs[0].cost_micros == round(usd * 1_000_000)


@pytest.mark.parametrize("scale", [{"size": "1365x768"}, {"resolution": "1K"}])
async def test_1080p_beside_a_size_or_resolution_is_held_to_8_seconds_and_billed_as_1080p(
    api: Api, scale: dict[str, str]
) -> None:
    """The quality is sent beside the size (or the resolution), and may be the one rendered: the simulator holds
    it to 1080p's 8 s and bills the dearer tier, 1080p's, as gridrun prices it."""
    r = await api.create(quality="1080p", duration=8, **scale)
    assert r.status_code == 202, r.text
    assert (r.json()["size"], r.json()["metadata"]["cost_estimate"]) == ("1365x768", 1.5)
    assert (await api.create(quality="1080p", duration=10, **scale)).status_code == 400
    assert (await api.create(quality="1080p", duration=10)).status_code == 400


async def test_bad_json_body_is_a_400(api: Api) -> None:
    r = await api.client.post("/videos", content=b"{not json", headers={"content-type": "application/json"})
    assert r.status_code == 400
    assert r.json()["error"]["message"].startswith("body: not valid JSON")
    r = await api.client.post("/videos", json=["a list"])
    assert r.status_code == 400


async def test_multipart_create_with_uploaded_input_references(api: Api) -> None:
    files = [
        ("input_reference[0]", ("first.png", b"\x89PNG first", "image/png")),
        ("input_reference[1]", ("last.png", b"\x89PNG last", "image/png")),
    ]
    data = {"model": MODEL, "prompt": "animate", "duration": "8", "generate_audio_switch": "false"}
    r = await api.client.post("/videos", data=data, files=files)
    assert r.status_code == 202, r.text
    video = api.sim.get(r.json()["id"])
    refs = video.params["input_reference"]
    assert [ref.split(":")[1] for ref in refs] == ["first.png", "last.png"]
    assert video.params["duration"] == 8 and video.params["generate_audio_switch"] is False


@pytest.mark.parametrize("field", ["input_reference", "input_reference[]"])
async def test_multipart_accepts_each_spelling_of_the_file_field(api: Api, field: str) -> None:
    r = await api.client.post("/videos", data={"model": MODEL, "prompt": "x"}, files=[(field, ("a.png", b"png", "image/png"))])
    assert r.status_code == 202, r.text
    assert len(api.sim.get(r.json()["id"]).params["input_reference"]) == 1


async def test_json_input_reference_objects_are_accepted(api: Api) -> None:
    r = await api.create(input_reference=[{"image_url": "https://example.com/a.png"}, {"image_url": data_uri(png_bytes())}])
    assert r.status_code == 202, r.text
    r = await api.create(input_reference={"image_url": "https://example.com/a.png"}, last_frame_image="https://example.com/b.png")
    assert r.status_code == 202, r.text


async def test_dry_run_prices_the_request_and_creates_nothing(api: Api) -> None:
    r = await api.create("/videos?dryRun=true", quality="720p", duration=8, n=2)
    assert r.status_code == 200
    body = r.json()
    assert body["estimated"] is True
    assert body["total_cost_micros"] == 1_800_000
    assert body["currency"] == "USD"
    assert body["components"][0]["quantity"] == 2
    assert api.stats()["creates"] == 0
    assert api.stats()["requests"]["dry_run"] == 1
    assert (await api.create("/videos?dryRun=true", duration=7)).status_code == 400


async def test_api_key_is_required_when_configured() -> None:
    app = create_app(SimConfig(api_key="lmnfl_secret"), clock=FakeClock())
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE) as client:
        body = {"model": MODEL, "prompt": "x"}
        for headers in ({}, {"Authorization": "Bearer wrong"}):
            r = await client.post("/videos", json=body, headers=headers)
            assert r.status_code == 401
            assert r.json()["error"]["code"] == "AUTHENTICATION_FAILED"
            assert "lmnfl_secret" not in r.text
        r = await client.post("/videos", json=body, headers={"Authorization": "Bearer lmnfl_secret"})
        assert r.status_code == 202


async def test_any_key_or_none_is_accepted_without_a_configured_key(api: Api) -> None:
    assert (await api.create()).status_code == 202
    r = await api.client.post("/videos", json={"model": MODEL, "prompt": "x"}, headers={"Authorization": "Bearer whatever"})
    assert r.status_code == 202


async def test_both_base_paths_serve_the_same_world(api: Api) -> None:
    r = await api.client.post("http://sim.test/openai/v1/videos", json={"model": MODEL, "prompt": "x"})
    assert r.status_code == 202
    assert (await api.client.get(f"/videos/{r.json()['id']}")).status_code == 200


async def test_unknown_route_and_video_are_404_in_the_error_envelope(api: Api) -> None:
    for path in ("/nothing-here", "/videos/video_missing"):
        r = await api.client.get(path)
        assert r.status_code == 404
        assert set(r.json()["error"]) >= {"message", "type", "code"}


_WHOLE = data_uri(png_bytes())


@pytest.mark.parametrize(("body", "field", "fragment"), [
    ({"input_reference": [{"image_url": "data:text/plain,hello"}]}, "input_reference", "not an image"),
    ({"input_reference": {"image_url": "data:image/png;base64,!!!!"}}, "input_reference", "not valid base64"),
    ({"input_reference": "/etc/passwd"}, "input_reference", "expected an https URL or a data URI, got '/etc/passwd'"),
    ({"input_reference": "ftp://x/y.png"}, "input_reference", "expected an https URL or a data URI"),
    ({"input_reference": "file:///etc/passwd"}, "input_reference", "expected an https URL or a data URI"),
    ({"input_reference": "https://x/y.png", "last_frame_image": "data:text/plain,hi"}, "last_frame_image",
     "not an image"),
    ({"input_reference": "https://x/y.png", "last_frame_image": "moon.png"}, "last_frame_image",
     "expected an https URL or a data URI"),
    ({"input_reference": [_WHOLE, data_uri(png_bytes()[:40])]}, "input_reference", "is cut short"),
    ({"input_reference": data_uri(b"\xff\xd8\xff\xe0" + b"\x00" * 50, "image/jpeg")}, "input_reference",
     "is cut short"),
    ({"input_reference": data_uri(b"hello, not an image", "image/heic")}, "input_reference",
     "its bytes are not an image"),
    ({"prompt": 123}, "prompt", "expected a string, got 123"),
    ({"prompt": ["a", "fox"]}, "prompt", "expected a string"),
])
async def test_an_image_or_prompt_the_api_cannot_take_is_a_400_naming_the_field(
        api: Api, body: dict[str, Any], field: str, fragment: str) -> None:
    """The API takes an image as an https URL or a data URI of an image (providers.md), and a prompt as text:
    a local path, another scheme, a data URI of text, bad base64 or a cut-short image is refused, not billed."""
    r = await api.create(**body)
    assert r.status_code == 400, r.text
    error = r.json()["error"]
    assert (error["code"], error["param"]) == ("INVALID_REQUEST", field)
    assert fragment in error["message"], error["message"]
    assert len(error["message"]) < 400  # a data URI is not written out whole
    assert api.stats()["creates"] == 0


async def test_a_data_uri_decoding_past_the_upload_limit_is_a_400(api: Api) -> None:
    """PixVerse takes images of at most 20 MB (providers.md section 5): a data URI that decodes to more is refused
    naming its field, under the limit it is taken."""
    big = png_bytes()
    padded = big[:-12] + b"\x00" * (20_000_001 - len(big)) + big[-12:]  # a whole PNG's ends, 20,000,001 bytes
    r = await api.create(input_reference=[{"image_url": data_uri(padded)}])
    assert r.status_code == 400, r.text
    error = r.json()["error"]
    assert (error["code"], error["param"]) == ("INVALID_REQUEST", "input_reference")
    assert "20,000,001 bytes), more than the 20 MB (20,000,000 bytes)" in error["message"], error["message"]
    r = await api.create(input_reference="https://x/y.png", last_frame_image=data_uri(padded))
    assert (r.status_code, r.json()["error"]["param"]) == (400, "last_frame_image")
    assert api.stats()["creates"] == 0
    r = await api.create(input_reference=[{"image_url": data_uri(padded[:-13] + padded[-12:])}])
    assert r.status_code == 202, r.text


async def test_a_multipart_prompt_is_text_whatever_it_reads_as(api: Api) -> None:
    r = await api.client.post("/videos", data={"model": MODEL, "prompt": "true"}, files=[
        ("input_reference", ("a.png", b"png", "image/png"))])
    assert r.status_code == 202, r.text
    assert api.sim.get(r.json()["id"]).params["prompt"] == "true"


async def test_a_file_id_reference_is_taken(api: Api) -> None:
    r = await api.create(input_reference={"file_id": "file-abc"})
    assert r.status_code == 202, r.text
