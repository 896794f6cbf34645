"""The environment's base URL variable wins over a manifest's `base_url:` (a manifest from someone else cannot send
the key elsewhere), but never silently: `validate`, `plan` and `run` warn at the manifest's `base_url:` line, naming
both, when they name two endpoints; and `run` says where it sends before it sends, when that is not the provider's
own API."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from execkit import write_manifest
from test_sent_elsewhere import serving

from runner.cli import main

MANIFEST_URL = "http://127.0.0.1:18731/v1"


def _manifest(tmp_path: Path, base_url: str = MANIFEST_URL) -> Path:
    return write_manifest(tmp_path, n_seeds=1, styles=("anime",), provider="lumenfall", base_url=base_url,
                          run={"poll_interval": 0.05})


def _base_url_line(m: Path) -> int:
    return next(n for n, line in enumerate(m.read_text().splitlines(), 1) if line.startswith("base_url:"))


def test_validate_and_plan_warn_at_base_url_when_the_environment_overrides_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    m = _manifest(tmp_path)
    env_url = "http://127.0.0.1:18732/v1"
    monkeypatch.setenv("LUMENFALL_BASE_URL", env_url)
    capsys.readouterr()
    assert main(["validate", str(m)]) == 0
    err = capsys.readouterr().err
    said = [line for line in err.splitlines() if "overridden" in line]
    assert len(said) == 1, err
    assert f"{m}:{_base_url_line(m)}:" in said[0] and MANIFEST_URL in said[0], said
    assert f"LUMENFALL_BASE_URL={env_url}" in said[0], said
    assert main(["plan", str(m), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert any("overridden" in w and MANIFEST_URL in w and env_url in w for w in doc["warnings"]), doc["warnings"]


def test_no_warning_when_both_name_the_same_endpoint_or_only_one_is_set(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    m = _manifest(tmp_path)
    for env in ("http://localhost:18731/v1/", MANIFEST_URL, None):
        if env is None:
            monkeypatch.delenv("LUMENFALL_BASE_URL", raising=False)
        else:
            monkeypatch.setenv("LUMENFALL_BASE_URL", env)
        capsys.readouterr()
        assert main(["validate", str(m)]) == 0
        assert "overridden" not in capsys.readouterr().err


@pytest.mark.timeout(120)
def test_run_says_where_it_sends_and_its_json_stays_json(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    m = write_manifest(tmp_path, n_seeds=1, styles=("anime",), provider="lumenfall", run={"poll_interval": 0.05})
    monkeypatch.setenv("LUMENFALL_API_KEY", "lmnfl_test_123456")
    with serving(0.05) as (url, _sim):
        monkeypatch.setenv("LUMENFALL_BASE_URL", url)
        capsys.readouterr()
        assert main(["run", str(m), "--no-report"]) == 0
        err = capsys.readouterr().err
        assert f"sending to {url} (from LUMENFALL_BASE_URL in the environment)" in err, err
        assert main(["run", str(m), "--no-report", "--json"]) == 0
        out, err = capsys.readouterr()
        assert [json.loads(line)["event"] for line in out.splitlines()][-1] == "end"
        assert f"sending to {url}" in err


def test_a_run_of_the_simulator_built_in_names_no_endpoint(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    m = write_manifest(tmp_path, n_seeds=1, styles=("anime",), sim={"render_time": 0.05, "jitter": 0})
    capsys.readouterr()
    assert main(["run", str(m), "--no-report"]) == 0
    assert "sending to" not in capsys.readouterr().err
