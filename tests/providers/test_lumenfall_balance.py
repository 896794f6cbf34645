"""`GET /v1/balance`: asked at Lumenfall's native root whatever the base URL, and read only in the one shape known
(`parse_balance`); any other is refused, so that a run is never refused on a misread balance."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest

from runner.errors import RejectedError
from runner.providers import get_provider
from runner.providers.base import Balance
from runner.providers.lumenfall import LumenfallProvider, parse_balance


@pytest.mark.parametrize(("answer", "micros"), [
    ({"object": "balance", "balance": 12.5, "currency": "USD", "unlimited": False}, 12_500_000),
    ({"balance": "0.35", "currency": "usd"}, 350_000),
    ({"balance": -1, "currency": "USD"}, -1_000_000),  # overdrawn
    ({"balance": None, "currency": "USD", "unlimited": True}, None),
    ({"balance": 3, "unlimited": True}, None),
    ({"balance": None}, None),
])
def test_the_balance_answers_read(answer: dict[str, Any], micros: int | None) -> None:
    assert parse_balance(answer) == Balance(micros)


@pytest.mark.parametrize("answer", [
    [], {"credits": 5, "currency": "USD"}, {"balance": 5}, {"balance": 5, "currency": "EUR"},
    {"balance": "lots", "currency": "USD"}, {"balance": True, "currency": "USD"},
    {"balance": float("nan"), "currency": "USD"}, {"balance": 1e300, "currency": "USD"},
    {"balance": 5, "currency": "USD", "unlimited": "no"}, {"balance": {"usd": 5}, "currency": "USD"},
])
def test_a_balance_answer_of_another_shape_is_not_read(answer: Any) -> None:
    with pytest.raises(ValueError):
        parse_balance(answer)


@pytest.mark.anyio
@pytest.mark.parametrize("base_url", ["https://api.lumenfall.ai/openai/v1", "https://api.lumenfall.ai/v1"])
async def test_the_balance_is_asked_at_the_native_root(key: str, base_url: str) -> None:
    """The account routes sit under /v1 only, for an /openai/v1 base URL too."""
    seen: list[str] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(str(request.url))
        return httpx.Response(200, json={"object": "balance", "balance": 4.2, "currency": "USD", "unlimited": False})

    prov = get_provider("lumenfall", base_url=base_url)
    assert isinstance(prov, LumenfallProvider)
    async with prov.client(transport=httpx.MockTransport(answer)) as client:
        assert await prov.balance(client) == Balance(4_200_000)
    assert seen == ["https://api.lumenfall.ai/v1/balance"]


@pytest.mark.anyio
async def test_a_missing_endpoint_is_a_provider_error(mock: Callable[..., httpx.AsyncClient],
                                                      provider: LumenfallProvider) -> None:
    def missing(request: httpx.Request) -> httpx.Response:
        return httpx.Response(404, json={"error": {"message": "not found", "code": "NOT_FOUND"}})

    async with mock(missing) as client:
        with pytest.raises(RejectedError) as exc:
            await provider.balance(client)
    assert exc.value.status == 404 and "GET /v1/balance" in str(exc.value)
