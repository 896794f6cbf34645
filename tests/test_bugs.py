"""An error gridrun did not expect (a bug) is said in one line with every API key redacted, and its whole
traceback, the versions and the command line go to a crash file the line names, for a bug report."""

from __future__ import annotations

import importlib
import json
import re
import time
import types
from pathlib import Path

import pytest

from runner import bugs, cli

export_mod = importlib.import_module("runner.export")  # the module, not the function `runner.export`

KEY = "sk-live-SECRETKEY1234567890"
MANIFEST = """\
version: 1
name: t
provider: sim
model: pixverse-v5.6
params:
  prompt: a fox
  quality: 360p
  duration: 5
sim:
  render_time: 0.1
  jitter: 0
"""


@pytest.fixture
def ran(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    """A manifest whose one job is done."""
    m = tmp_path / "m.yaml"
    m.write_text(MANIFEST)
    assert cli.main(["run", str(m)]) == 0
    capsys.readouterr()
    return m


def _buggy_time(monkeypatch: pytest.MonkeyPatch) -> None:
    """A bug in the helper that writes every time field of the exports and the report, whose message holds the
    key, as an exception carrying a request's headers would."""

    def gmtime(*_: object) -> object:
        raise KeyError("Bearer " + KEY)

    monkeypatch.setattr(export_mod, "time", types.SimpleNamespace(gmtime=gmtime, strftime=time.strftime))


def _crash_file_named(said: str, base: Path) -> Path:
    found = re.search(r"please report it with this line and (\S+), which holds its traceback", said)
    assert found, said
    path = Path(found.group(1))
    return path if path.is_absolute() else base / path


def test_a_bug_is_said_without_the_key_and_its_traceback_is_in_the_crash_file_it_names(
    ran: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("LUMENFALL_API_KEY", KEY)
    monkeypatch.chdir(ran.parent)
    _buggy_time(monkeypatch)
    assert cli.main(["export", str(ran)]) == 1
    said = capsys.readouterr().err
    assert KEY not in said, said
    assert "error: unexpected error, a bug in gridrun: KeyError: 'Bearer [redacted]' (at test_bugs.py:" in said
    crash = _crash_file_named(said, ran.parent)
    assert crash.parent == ran.parent / ".gridrun", crash  # in the state folder the command read
    text = crash.read_text()
    assert KEY not in text
    assert "Traceback (most recent call last)" in text and "in export_row" in text and "in gmtime" in text, text
    assert f"command: gridrun export {ran}" in text, text
    assert "python: 3." in text and "platform: " in text and "gridrun 0.1.0 crashed: KeyError" in text, text


def test_a_bug_in_the_report_step_is_called_a_bug_with_its_crash_file_and_no_key_in_the_end_event(
    ran: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("SIM_API_KEY", KEY)  # the served simulator's key, redacted as the provider's is
    monkeypatch.chdir(ran.parent)
    _buggy_time(monkeypatch)
    assert cli.main(["run", str(ran), "--json"]) == 0  # the paid work is done: a report is a view
    out, err = capsys.readouterr()
    assert KEY not in out and KEY not in err, (out, err)
    end = json.loads(out.strip().splitlines()[-1])
    assert end["event"] == "end", end
    said = [e for e in end["last_errors"] if e.startswith("report not written")]
    assert said and said[0].startswith("report not written, a bug in gridrun: KeyError: 'Bearer [redacted]' (at "
                                       "test_bugs.py:"), end
    assert "in gmtime" in _crash_file_named(said[0], ran.parent).read_text()
    assert "` may write it" in err and "once that is fixed" not in err and "once it can be written" not in err, err


def test_a_bug_whose_crash_file_cannot_be_written_is_still_said_in_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    m = tmp_path / "m.yaml"
    m.write_text(MANIFEST)

    def buggy(*_: object, **__: object) -> int:
        raise ValueError("x")

    monkeypatch.setattr(cli, "cmd_plan", buggy)
    monkeypatch.setattr(bugs, "fallback_folder", tmp_path / "not-there")  # no state folder either
    assert cli.main(["plan", str(m)]) == 1
    said = capsys.readouterr().err
    assert "error: unexpected error, a bug in gridrun: ValueError: x (at " in said, said
    assert said.rstrip().endswith("please report it with this line"), said
    assert "Traceback" not in said and not list(tmp_path.rglob("crash-*")), said


def test_the_key_of_a_providers_own_variable_is_redacted_once_read(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ACME_TOKEN", "acme-secret-value")
    assert bugs.without_keys("token acme-secret-value") == "token acme-secret-value"  # not known as a key yet
    monkeypatch.setattr(bugs, "_KEY_ENVS", set(bugs._KEY_ENVS))
    bugs.key_env_read("ACME_TOKEN")
    assert bugs.without_keys("token acme-secret-value") == "token [redacted]"
    monkeypatch.setenv("OTHER_API_KEY", "other-key-1234")
    assert bugs.exception_text(KeyError("other-key-1234")) == "KeyError: '[redacted]'"
