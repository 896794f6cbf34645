from __future__ import annotations

import os
import stat
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from runner import bugs
from runner.state import Store
from runner.terminal import c_locale

TESTS = str(Path(__file__).resolve().parent)


def pytest_configure(config: pytest.Config) -> None:
    """Ctrl-C heeded (below). The package is byte-compiled once, before any test, as `pip install` of a wheel does: many tests start
    `gridrun` as a process, and where the environment says not to write bytecode (PYTHONDONTWRITEBYTECODE),
    each of them would otherwise compile every module again (~0.2 s of CPU each)."""
    # Ctrl-C ignored by whatever started the tests (a background job of a shell script) would be ignored by every
    # `gridrun` the tests start too, which keeps an ignored Ctrl-C ignored: the tests of Ctrl-C need it heeded.
    import signal

    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    # Property tests check what comes out, never how fast: on a shared machine one example may take seconds, which
    # hypothesis's default 200 ms deadline would call a failure.
    import hypothesis

    hypothesis.settings.register_profile("gridrun", deadline=None)
    hypothesis.settings.load_profile("gridrun")
    if not hasattr(config, "workerinput"):  # once, in the process that hands tests to the others
        import compileall

        compileall.compile_dir(str(Path(TESTS).parent / "runner"), quiet=1)


@pytest.fixture(autouse=True)
def clean_environ(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No test sees a real API key or a user's capability overrides, and gridrun writes UTF-8 in every test
    whatever the machine's locale: in the C locale (a bare container) it writes ASCII, so UTF-8 is asked for
    there (the tests of the C locale set their own)."""
    for name in list(os.environ):
        # and no machine's proxy: the tests that want one set their own
        if name.endswith(("_API_KEY", "_BASE_URL")) or name.startswith("GRIDRUN_") or name.lower().endswith("_proxy"):
            monkeypatch.delenv(name, raising=False)
    if c_locale():
        monkeypatch.setenv("PYTHONUTF8", "1")
    # a bug a test provokes writes its crash file in the test's own folder, never in another test's state folder
    monkeypatch.setattr(bugs, "state_folder", None)
    monkeypatch.setattr(bugs, "fallback_folder", tmp_path)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def disk_steps(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """What reaches the disk, in order: each fsync ("fsync file" or "fsync folder") and each rename
    ("rename to NAME"), as the code under test calls them (it still does them)."""
    steps: list[str] = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd: int) -> None:
        steps.append("fsync folder" if stat.S_ISDIR(os.fstat(fd).st_mode) else "fsync file")
        real_fsync(fd)

    def replace(src: str, dst: str) -> None:
        steps.append(f"rename to {os.path.basename(dst)}")
        real_replace(src, dst)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    return steps


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
