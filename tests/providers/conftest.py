from __future__ import annotations

from pathlib import Path
from typing import Callable

import httpx
import pytest
from providers_kit import KEY, png_bytes

from runner.providers import get_provider
from runner.providers.lumenfall import LumenfallProvider

Handler = Callable[[httpx.Request], httpx.Response]


@pytest.fixture
def key(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("LUMENFALL_API_KEY", KEY)
    return KEY


@pytest.fixture
def provider(key: str) -> LumenfallProvider:
    p = get_provider("lumenfall")
    assert isinstance(p, LumenfallProvider)
    return p


@pytest.fixture
def mock(provider: LumenfallProvider) -> Callable[[Handler], httpx.AsyncClient]:
    def make(handler: Handler) -> httpx.AsyncClient:
        return provider.client(transport=httpx.MockTransport(handler))

    return make


@pytest.fixture
def png(tmp_path: Path) -> Path:
    path = tmp_path / "first.png"
    path.write_bytes(png_bytes())
    return path
