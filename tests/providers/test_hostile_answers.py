"""Answers no API should give, from a live server on 127.0.0.1, over both HTTP stacks (aiohttp, the default, and
httpx's own): JSON nested too deep to parse, an answer longer than any API answer, one trickled a byte at a time.
Each is a malformed answer: a create's outcome unknown (looked up by
its key), a poll's a retried error; never a crash."""

from __future__ import annotations

import gzip
from collections.abc import Iterator

import anyio
import pytest
from providers_kit import KEY, serving
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from runner.errors import (
    OutcomeUnknownError,
    RateLimitedError,
    ServerError,
    TransportError,
)
from runner.providers import get_provider
from runner.providers.lumenfall import LumenfallProvider
from runner.providers.transport import MAX_ANSWER_BYTES

BODY = {"model": "pixverse-v5.6", "prompt": "a fox", "idempotency_key": "gridrun-abc-1"}
DEEP_ARRAY = "[" * 100_000 + "]" * 100_000
DEEP_OBJECT = '{"a":' * 100_000 + "1" + "}" * 100_000  # an object: straight on aiohttp, read as the API's answer


LONG = MAX_ANSWER_BYTES + (4 << 20)  # the length of a long answer: more than the bound, little enough for a test


def _long(sized: bool) -> Response:
    """A video object padded to `LONG` bytes: whole, its length said, or streamed in chunks of 1 MiB."""
    head, tail = b'{"id": "video_1", "status": "queued", "pad": "', b'"}'
    pad = LONG - len(head) - len(tail)
    if sized:
        return Response(head + b"a" * pad + tail, media_type="application/json")

    async def chunks():  # type: ignore[no-untyped-def]
        yield head
        for _ in range(pad >> 20):
            yield b"a" * (1 << 20)
        yield b"a" * (pad & ((1 << 20) - 1)) + tail

    return StreamingResponse(chunks(), media_type="application/json")


def _trickled() -> Response:
    """A video object sent a byte every 0.2 s: each read comes well within any read timeout, the whole takes 8 s."""
    body = b'{"id": "video_1", "status": "queued", "pad": "' + b"a" * 40

    async def chunks():  # type: ignore[no-untyped-def]
        for byte in body:
            yield bytes([byte])
            await anyio.sleep(0.2)
        yield b'"}'

    return StreamingResponse(chunks(), media_type="application/json")


def _bomb() -> Response:
    """A video object padded to `LONG` bytes, gzipped to a few kB."""
    body = b'{"id": "video_1", "status": "queued", "pad": "' + b"a" * LONG + b'"}'
    return Response(gzip.compress(body), media_type="application/json", headers={"Content-Encoding": "gzip"})


async def _deep(request: Request) -> Response:
    kind = request.query_params.get("kind") or request.path_params["kind"]
    if kind == "trickle":
        return _trickled()
    if kind == "gzip":
        return _bomb()
    if kind in ("long", "sized"):
        return _long(kind == "sized")
    status = int(request.query_params.get("status", "200"))
    headers = {"Retry-After": "0"} if status == 429 else None
    return Response(DEEP_OBJECT if kind == "object" else DEEP_ARRAY, status_code=status,
                    media_type="application/json", headers=headers)


async def _create(request: Request) -> Response:
    return await _deep(request)


async def _list(request: Request) -> Response:
    return JSONResponse({"data": [], "has_more": False})


def app() -> Starlette:
    return Starlette(routes=[
        Route("/{kind}/v1/videos", _create, methods=["POST"]),
        Route("/{kind}/v1/videos", _list, methods=["GET"]),
        Route("/{kind}/v1/videos/{vid}", _deep, methods=["GET"]),
        Route("/{kind}/v1/requests", _deep, methods=["GET"]),
        Route("/{kind}/v1/balance", _deep, methods=["GET"]),
    ])


@pytest.fixture(scope="module")
def origin() -> Iterator[str]:
    with serving(app()) as url:
        yield url


@pytest.fixture(params=["aiohttp", "httpx"])
def stack(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("GRIDRUN_HTTP", request.param)
    monkeypatch.setenv("LUMENFALL_API_KEY", KEY)
    return str(request.param)


def provider_at(url: str) -> LumenfallProvider:
    provider = get_provider("lumenfall", base_url=url)
    assert isinstance(provider, LumenfallProvider)
    return provider


@pytest.mark.anyio
@pytest.mark.parametrize("kind", ["array", "object"])
async def test_an_answer_nested_too_deep_is_malformed_not_a_crash(origin: str, stack: str, kind: str) -> None:
    provider = provider_at(f"{origin}/{kind}/v1")
    async with provider.client(timeout=10) as client:
        with pytest.raises(OutcomeUnknownError, match="may have been created"):
            await provider.submit(client, dict(BODY))
        with pytest.raises(ServerError) as polled:
            await provider.get(client, "video_1")
        assert polled.value.code == "MALFORMED_RESPONSE"
        with pytest.raises(ServerError) as logged:
            await provider.find_by_key(client, "gridrun-abc-1")
        assert logged.value.code == "MALFORMED_RESPONSE"
        with pytest.raises(ServerError):
            await provider.balance(client)


@pytest.mark.anyio
async def test_an_error_answer_nested_too_deep_is_told_by_its_status(origin: str, stack: str) -> None:
    provider = provider_at(f"{origin}/object/v1")
    async with provider.client(timeout=10) as client:
        with pytest.raises(ServerError) as failed:
            await provider._call(client, "GET", "videos/v?status=503")
        with pytest.raises(RateLimitedError) as limited:
            await provider._call(client, "GET", "videos/v?status=429")
    assert failed.value.status == 503 and limited.value.status == 429


@pytest.mark.anyio
@pytest.mark.parametrize("kind", ["long", "sized", "gzip"])
async def test_an_answer_longer_than_any_api_answer_is_refused_as_malformed(origin: str, stack: str, kind: str) -> None:
    """Streamed (read up to the bound, then left), with its length said (not read at all), or compressed (decoded
    up to the bound)."""
    provider = provider_at(f"{origin}/{kind}/v1")
    async with provider.client(timeout=10) as client:
        with pytest.raises(OutcomeUnknownError, match="longer than 16 MiB.*may have been created"):
            await provider.submit(client, dict(BODY))
        with pytest.raises(ServerError, match="longer than 16 MiB") as polled:
            await provider.get(client, "video_1")
        assert polled.value.code == "MALFORMED_RESPONSE"


@pytest.mark.anyio
async def test_an_answer_trickled_past_the_request_timeout_ends_the_exchange(origin: str, stack: str) -> None:
    """The request timeout (1 s here, and 1 s to connect) bounds the whole exchange, not only each read."""
    provider = provider_at(f"{origin}/trickle/v1")
    async with provider.client(timeout=1) as client:
        with pytest.raises(OutcomeUnknownError, match="no whole answer within 2 s of the request.*may have been created"):
            await provider.submit(client, dict(BODY))
        with pytest.raises(TransportError, match="no whole answer within 2 s of the request"):
            await provider.get(client, "video_1")
