from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from providers_kit import KEY, png_bytes, video

from runner.errors import NeedsKeyError, RejectedError, UsageError
from runner.providers import Provider, get_provider
from runner.providers.aio import AiohttpTransport
from runner.providers.lumenfall import LumenfallProvider

IDEM = "gridrun-0123456789abcdef01234567-1"


# -- the client ------------------------------------------------------------------------------------


def test_missing_key_raises_needs_key_naming_the_variable() -> None:
    provider = get_provider("lumenfall")
    with pytest.raises(NeedsKeyError) as info:
        provider.client()
    message = str(info.value)
    assert "LUMENFALL_API_KEY" in message
    assert "export LUMENFALL_API_KEY=" in message
    assert info.value.exit_code == 2


def test_blank_key_counts_as_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LUMENFALL_API_KEY", "   ")
    with pytest.raises(NeedsKeyError):
        get_provider("lumenfall").client()


@pytest.mark.anyio
async def test_client_sends_bearer_key_to_the_capability_base_url(provider: LumenfallProvider) -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json=video())

    async with provider.client(transport=httpx.MockTransport(handler)) as client:
        await provider.get(client, "video_123")
    assert str(seen[0].url) == "https://api.lumenfall.ai/v1/videos/video_123"
    assert seen[0].headers["authorization"] == f"Bearer {KEY}"
    assert KEY not in repr(provider)
    assert KEY not in repr(client.headers)


@pytest.mark.parametrize(
    ("base", "url", "params"),
    [
        ("https://api.example.com/v1", "videos", None),
        ("https://api.example.com/v1/", "/videos/video_1", None),
        ("https://api.example.com/v1", "videos", {"limit": 100, "order": "desc", "after": "video_a b&c"}),
        ("https://api.example.com/v1", "https://other.example.com/v1/requests", {"idempotency_key": "k", "n": 3}),
        ("https://api.example.com/v1", "videos?x=1", {"limit": 5, "x": 2}),
        ("https://api.example.com/v1", "videos", {"flag": True, "none": None, "many": [1, 2]}),
    ],
)
def test_request_urls_are_the_ones_httpx_builds(base: str, url: str, params: dict[str, Any] | None) -> None:
    from runner.providers.transport import request_url

    client = httpx.AsyncClient(base_url=base)
    for _ in range(2):  # built, then from the client's cache
        assert request_url(client, url, params) == client.build_request("GET", url, params=params).url
    client.base_url = "https://moved.example.com/v2"
    assert request_url(client, url, params) == client.build_request("GET", url, params=params).url


@pytest.mark.anyio
async def test_send_puts_params_in_the_query_and_keeps_the_headers() -> None:
    from runner.providers.transport import make_client, send

    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={})

    async with make_client("https://api.example.com/v1", headers={"Authorization": "Bearer k"},
                           transport=httpx.MockTransport(handler)) as client:
        await send(client, "GET", "videos", op="list", create=False, params={"limit": 20, "after": "video_0"})
        await send(client, "POST", "videos", op="create", create=True, json={"a": 1}, headers={"Idempotency-Key": "i"})
    assert str(seen[0].url) == "https://api.example.com/v1/videos?limit=20&after=video_0"
    assert str(seen[1].url) == "https://api.example.com/v1/videos"
    assert seen[1].headers["idempotency-key"] == "i" and seen[1].headers["authorization"] == "Bearer k"
    assert json.loads(seen[1].content) == {"a": 1}


def test_client_pool_and_timeouts(provider: LumenfallProvider) -> None:
    client = provider.client(max_connections=7, timeout=12.0)
    assert isinstance(client._transport, AiohttpTransport)
    assert client._transport.max_connections == 7
    assert client.timeout.read == 12.0 and client.timeout.connect == 10.0


def test_httpx_transport_on_request(provider: LumenfallProvider, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GRIDRUN_HTTP", "httpx")
    client = provider.client(max_connections=7, timeout=12.0)
    pool = client._transport._pool  # type: ignore[attr-defined]
    assert pool._max_connections == 7


@pytest.mark.parametrize(
    ("explicit", "env", "expected"),
    [
        (None, None, "https://api.lumenfall.ai/v1/videos/v1"),
        (None, "https://gw.example/openai/v1/", "https://gw.example/openai/v1/videos/v1"),
        ("http://127.0.0.1:9/openai/v1", "https://gw.example/v1", "http://127.0.0.1:9/openai/v1/videos/v1"),
    ],
)
@pytest.mark.anyio
async def test_base_url_explicit_then_env_then_capabilities(
    key: str, monkeypatch: pytest.MonkeyPatch, explicit: str | None, env: str | None, expected: str
) -> None:
    if env:
        monkeypatch.setenv("LUMENFALL_BASE_URL", env)
    provider = get_provider("lumenfall", base_url=explicit)
    assert isinstance(provider, LumenfallProvider)
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(str(request.url))
        return httpx.Response(200, json=video(id="v1"))

    async with provider.client(transport=httpx.MockTransport(handler)) as client:
        await provider.get(client, "v1")
    assert seen == [expected]


def test_base_url_must_be_http() -> None:
    with pytest.raises(UsageError, match="must start with http"):
        get_provider("lumenfall", base_url="ftp://example.com/v1")


def test_unknown_provider_lists_known_ones() -> None:
    with pytest.raises(UsageError) as info:
        get_provider("nope")
    assert "lumenfall" in str(info.value) and "sim" in str(info.value)


def test_providers_satisfy_the_protocol() -> None:
    assert isinstance(get_provider("lumenfall"), Provider)
    assert isinstance(get_provider("sim"), Provider)


# -- request bodies ---------------------------------------------------------------------------------


def build(params: dict[str, Any]) -> dict[str, Any]:
    return get_provider("lumenfall").build_request(params, model="pixverse-v5.6", idempotency_key=IDEM)


def test_t2v_body() -> None:
    params = {"prompt": "a red fox", "quality": "540p", "duration": 5, "aspect_ratio": "16:9", "seed": 3, "n": 1}
    assert build(params) == {"model": "pixverse-v5.6", **params, "idempotency_key": IDEM}
    assert json.dumps(build(params))


def test_duration_is_sent_as_given() -> None:
    assert build({"prompt": "p", "duration": 8})["duration"] == 8
    assert build({"prompt": "p", "duration": "8"})["duration"] == "8"


def test_i2v_with_a_local_png_becomes_a_data_url(png: Path) -> None:
    body = build({"prompt": "p", "input_reference": [str(png)]})
    refs = body["input_reference"]
    assert isinstance(refs, list) and len(refs) == 1
    url = refs[0]["image_url"]
    assert url.startswith("data:image/png;base64,")
    assert base64.b64decode(url.split(",", 1)[1]) == png_bytes()


def test_a_single_reference_is_sent_as_a_list(png: Path) -> None:
    body = build({"prompt": "p", "input_reference": png})
    assert isinstance(body["input_reference"], list)
    assert body["input_reference"][0]["image_url"].startswith("data:image/png;base64,")


def test_mime_from_magic_then_extension(tmp_path: Path) -> None:
    jpeg = tmp_path / "photo.bin"
    jpeg.write_bytes(b"\xff\xd8\xff\xe0" + b"\x00" * 20)
    webp = tmp_path / "x.dat"
    webp.write_bytes(b"RIFF\x10\x00\x00\x00WEBPVP8 " + b"\x00" * 8)
    by_name = tmp_path / "y.tiff"  # a TIFF, told by its byte order mark and 42
    by_name.write_bytes(b"II*\x00 not checked further")
    body = build({"prompt": "p", "input_reference": [str(jpeg), str(webp), str(by_name)]})
    urls = [r["image_url"] for r in body["input_reference"]]
    assert [u.split(";")[0] for u in urls] == ["data:image/jpeg", "data:image/webp", "data:image/tiff"]
    fake = tmp_path / "z.jpg"  # a kind with known magic, named so but without it: no image
    fake.write_bytes(b"not really a jpeg")
    with pytest.raises(RejectedError, match="is not an image"):
        build({"prompt": "p", "input_reference": [str(fake)]})


def test_urls_and_data_urls_pass_through_unchanged() -> None:
    https = "https://example.com/cat.png"
    data = "data:image/png;base64,AAAA"
    body = build({"prompt": "p", "input_reference": [https, data], "last_frame_image": "HTTP://example.com/end.jpg"})
    assert body["input_reference"] == [{"image_url": https}, {"image_url": data}]
    assert body["last_frame_image"] == "HTTP://example.com/end.jpg"


def test_reference_objects_are_kept_and_their_local_paths_inlined(png: Path) -> None:
    body = build({"prompt": "p", "input_reference": [{"image_url": str(png)}, {"image_url": "https://x/y.png"}]})
    assert body["input_reference"][0]["image_url"].startswith("data:image/png;base64,")
    assert body["input_reference"][1] == {"image_url": "https://x/y.png"}


def test_last_frame_image_local_file_is_a_data_url_string(png: Path, tmp_path: Path) -> None:
    end = tmp_path / "end.jpeg"
    end.write_bytes(b"\xff\xd8\xff\xdb" + b"\x01" * 32)
    body = build({"prompt": "p", "input_reference": [str(png)], "last_frame_image": str(end)})
    assert isinstance(body["last_frame_image"], str)
    assert body["last_frame_image"].startswith("data:image/jpeg;base64,")


def test_unknown_params_pass_through_and_none_is_dropped() -> None:
    body = build({"prompt": "p", "camera_motion": {"pan": "left"}, "thinking_type": "enabled", "style": None})
    assert body["camera_motion"] == {"pan": "left"}
    assert body["thinking_type"] == "enabled"
    assert "style" not in body


def test_params_cannot_override_model_or_key() -> None:
    body = build({"prompt": "p", "model": "other", "idempotency_key": "mine"})
    assert body["model"] == "pixverse-v5.6"
    assert body["idempotency_key"] == IDEM


def test_missing_local_image_is_rejected_before_sending(tmp_path: Path) -> None:
    with pytest.raises(RejectedError, match="cannot read") as info:
        build({"prompt": "p", "input_reference": [str(tmp_path / "gone.png")]})
    assert info.value.code == "INVALID_INPUT"


def test_non_image_file_is_rejected(tmp_path: Path) -> None:
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    with pytest.raises(RejectedError, match="not an image"):
        build({"prompt": "p", "last_frame_image": str(text)})


@pytest.mark.anyio
@pytest.mark.parametrize(("date", "expected"), [
    ("Fri, 15 Jan 2027 08:00:05 GMT", 1_800_000_005.0),
    (None, None),
    ("not a date", None),
])
async def test_a_creates_answer_says_when_the_provider_answered_by_its_date_header(
    mock: Any, date: str | None, expected: float | None
) -> None:
    """The create's answer carries the provider's time of answering (its HTTP Date header), to set against the
    video's created_at; an answer without one, or with one that does not parse, says nothing."""
    headers = {"Date": date} if date is not None else {}
    async with mock(lambda r: httpx.Response(200, json=video(), headers=headers)) as client:
        provider = get_provider("lumenfall")
        status = await provider.submit(client, {"model": "pixverse-v5.6", "prompt": "a", "idempotency_key": "k"})
    assert status.created_at == 1_800_000_000.0
    assert status.answered_at == expected


@pytest.mark.parametrize(("value", "said"), [
    ('"lmnfl_abc123"', "LUMENFALL_API_KEY is wrapped in double quotes, which would be sent as part of the key"),
    ("'lmnfl_abc123'", "LUMENFALL_API_KEY is wrapped in single quotes, which would be sent as part of the key"),
    ("Bearer lmnfl_abc123", "LUMENFALL_API_KEY starts with 'Bearer ', which gridrun adds itself"),
    ("bearer lmnfl_abc123", "LUMENFALL_API_KEY starts with 'Bearer ', which gridrun adds itself"),
    ("lmnfl_abc123 # prod", "LUMENFALL_API_KEY holds a space at position 13 of 19, which no API key has"),
])
def test_a_key_pasted_with_quotes_a_bearer_or_a_comment_is_refused_before_anything_is_sent(
        monkeypatch: pytest.MonkeyPatch, value: str, said: str) -> None:
    """What a `.env` file or a copy from a curl line brings with a key: refused naming what, not the key itself,
    rather than sent for a bare 401 that sends the user to check a key that is right."""
    monkeypatch.setenv("LUMENFALL_API_KEY", value)
    with pytest.raises(NeedsKeyError) as info:
        get_provider("lumenfall").client()
    message = str(info.value)
    assert message.startswith(said) and "set it to the key alone (export LUMENFALL_API_KEY=lmnfl_...)" in message
    assert "abc123" not in message
    assert info.value.exit_code == 2


def test_a_key_with_a_quote_inside_or_on_one_side_only_is_sent_as_it_is(monkeypatch: pytest.MonkeyPatch) -> None:
    for value in ('lmnfl_a"b', '"lmnfl_ab', "lmnfl_ab'"):
        monkeypatch.setenv("LUMENFALL_API_KEY", value)
        assert get_provider("lumenfall").api_key() == value


def test_a_served_simulators_key_advice_shows_the_key_sim_serve_was_given_not_a_lumenfall_key(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SIM_API_KEY", "Bearer s3cret")
    with pytest.raises(NeedsKeyError) as info:
        get_provider("sim", base_url="http://127.0.0.1:9/v1").api_key()
    message = str(info.value)
    assert "(export SIM_API_KEY=<the key given to gridrun sim serve --api-key>)" in message
    assert "lmnfl_" not in message and "s3cret" not in message
