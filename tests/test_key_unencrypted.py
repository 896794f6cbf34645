"""An http:// (not https://) base URL to another machine sends the API key in clear text, and through the proxy the
environment names, which reads it whole: `plan` and `run` warn of it, naming the host and the proxy. A base URL to
this machine (a served simulator) or an https:// one is not warned of."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from execkit import write_manifest

from runner import api
from runner.cli import main


def _manifest(tmp_path: Path, base_url: str | None = None) -> Path:
    return write_manifest(tmp_path, n_seeds=1, styles=("anime",), provider="lumenfall", sim={}, base_url=base_url)


def _said(m: Path) -> list[str]:
    return [w for w in api.plan(m).warnings if "unencrypted" in str(w)]


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy", "NO_PROXY",
                "no_proxy", "LUMENFALL_BASE_URL"):
        monkeypatch.delenv(var, raising=False)


def test_plan_warns_of_an_http_base_url_to_another_host_and_names_the_proxy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    m = _manifest(tmp_path)
    monkeypatch.setenv("LUMENFALL_BASE_URL", "http://gw.internal.example/v1")
    said = _said(m)
    assert len(said) == 1 and "gw.internal.example" in said[0] and "LUMENFALL_BASE_URL" in said[0], said
    assert "proxy" not in said[0]
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:18900")
    said = _said(m)
    assert len(said) == 1 and "through the proxy http://127.0.0.1:18900 (from HTTP_PROXY)" in said[0], said
    capsys.readouterr()
    assert main(["plan", str(m), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert any("unencrypted to gw.internal.example" in w for w in doc["warnings"]), doc["warnings"]
    monkeypatch.setenv("NO_PROXY", "gw.internal.example")
    said = _said(m)
    assert len(said) == 1 and "proxy" not in said[0], said


@pytest.mark.parametrize("url", ["http://127.0.0.1:9/v1", "http://localhost:9/v1", "https://gw.internal.example/v1"])
def test_no_warning_for_this_machine_nor_https(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, url: str) -> None:
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:18900")
    monkeypatch.setenv("LUMENFALL_BASE_URL", url)
    assert _said(_manifest(tmp_path)) == []
