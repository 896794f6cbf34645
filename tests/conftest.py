from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from runner.state import Store

TESTS = str(Path(__file__).resolve().parent)


@pytest.fixture(autouse=True)
def clean_environ(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No test sees a real API key or a user's capability overrides."""
    for name in list(os.environ):
        if name.endswith("_API_KEY") or name.startswith("GRIDRUN_") or name.endswith("_BASE_URL"):
            monkeypatch.delenv(name, raising=False)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(autouse=True)
def close_test_stores(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Stores that test code opens are closed when the test ends: from Python 3.13 on, a connection left to the
    garbage collector is a ResourceWarning (an error here). Stores that gridrun opens itself are left alone,
    so that a leak of its own still fails."""
    opened: list[Store] = []
    init = Store.__init__

    def tracked(self: Store, *args: Any, **kwargs: Any) -> None:
        init(self, *args, **kwargs)
        if sys._getframe(1).f_code.co_filename.startswith(TESTS):
            opened.append(self)

    monkeypatch.setattr(Store, "__init__", tracked)
    yield
    for store in opened:
        store.db.close()
        store.release_lock()
