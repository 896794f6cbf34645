"""CA certificates named wrongly in the environment (SSL_CERT_FILE, SSL_CERT_DIR: a file not there, not readable, or
no certificate): every https request would fail before it left the machine. A run is refused before anything is
recorded or sent, the variable named (exit 2); and a TLS context that cannot be built is a request never sent (the
create's job stays planned), never one that "may have been created"."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from execkit import write_manifest

from runner.cli import main
from runner.errors import UsageError
from runner.providers import transport

pytestmark = pytest.mark.usefixtures("key")
HTTPS = "https://127.0.0.1:9/v1"  # nothing listens: the TLS context is built (and fails) before any connection


@pytest.fixture(autouse=True)
def _fresh_context() -> Iterator[None]:
    transport._ssl_context.cache_clear()
    yield
    transport._ssl_context.cache_clear()


def _manifest(tmp_path: Path) -> Path:
    return write_manifest(tmp_path, n_seeds=2, styles=("anime",), provider="lumenfall", sim={})


@pytest.mark.parametrize("stack", ["aiohttp", "httpx"])
@pytest.mark.parametrize("case", ["missing-file", "no-certificate", "missing-folder"])
def test_a_run_with_ca_certificates_named_wrongly_is_refused_before_anything_is_recorded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], case: str, stack: str
) -> None:
    m = _manifest(tmp_path)
    bad = tmp_path / "bad.pem"
    bad.write_text("not a certificate\n")
    var, value = {"missing-file": ("SSL_CERT_FILE", "/nonexistent/ca.pem"),
                  "no-certificate": ("SSL_CERT_FILE", str(bad)),
                  "missing-folder": ("SSL_CERT_DIR", "/nonexistent/certs")}[case]
    monkeypatch.setenv(var, value)
    monkeypatch.setenv("LUMENFALL_BASE_URL", HTTPS)
    monkeypatch.setenv("GRIDRUN_HTTP", stack)
    capsys.readouterr()
    assert main(["run", str(m), "--no-report"]) == 2
    err = capsys.readouterr().err
    assert f"{var}={value} (in the environment)" in err and "may have been created" not in err, err
    assert "Traceback" not in err and "sending to" not in err, err  # refused before it says where it would send
    assert not (tmp_path / ".gridrun" / "state.db").exists()


def test_ca_certificates_named_rightly_or_an_http_base_url_run_as_before(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import certifi

    monkeypatch.setenv("SSL_CERT_FILE", certifi.where())
    assert transport.tls_problem() is None
    monkeypatch.setenv("SSL_CERT_DIR", str(tmp_path))
    assert transport.tls_problem() is None
    monkeypatch.setenv("SSL_CERT_FILE", "/nonexistent/ca.pem")
    assert "SSL_CERT_FILE=/nonexistent/ca.pem" in (transport.tls_problem() or "")


def test_ssl_cert_dir_as_a_list_of_folders_is_refused_only_where_none_can_be_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """OpenSSL reads SSL_CERT_DIR as folders separated by ':' (some distributions and CI images set such lists): one
    folder there is enough."""
    import os

    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    monkeypatch.setenv("SSL_CERT_DIR", os.pathsep.join(["/nonexistent/certs", str(tmp_path)]))
    assert transport.tls_problem() is None
    monkeypatch.setenv("SSL_CERT_DIR", os.pathsep.join(["/nonexistent/certs", "/nonexistent/more"]))
    said = transport.tls_problem() or ""
    assert "SSL_CERT_DIR=/nonexistent/certs" in said and "no such folders" in said, said


def test_a_tls_context_that_cannot_be_built_sends_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    """The context is built at the first https request (aiohttp): its failure is a connection never made."""
    from runner.providers.aio import AiohttpTransport

    monkeypatch.setenv("SSL_CERT_FILE", "/nonexistent/ca.pem")
    with pytest.raises(UsageError, match="SSL_CERT_FILE"):
        transport._ssl_context()

    async def send() -> None:
        async with httpx.AsyncClient(transport=AiohttpTransport(max_connections=1,
                                                                ssl_context=transport._ssl_context)) as client:
            await client.post(f"{HTTPS}/videos", json={})

    with pytest.raises(httpx.ConnectError, match="nothing sent: SSL_CERT_FILE=/nonexistent/ca.pem"):
        asyncio.run(send())
