from __future__ import annotations

import os
from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def clean_environ(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No test sees a real API key or a user's capability overrides."""
    for name in list(os.environ):
        if name.endswith("_API_KEY") or name.startswith("GRIDRUN_") or name.endswith("_BASE_URL"):
            monkeypatch.delenv(name, raising=False)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"
