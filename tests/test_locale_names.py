"""A name the process's file-name encoding cannot write (`LC_ALL=C PYTHONUTF8=0`): the refusal names the character
it cannot hold, escaped, where an output that cannot show it would write it without its accent; and a hint
proposes no command that the same refusal awaits."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from execkit import write_manifest


def _ascii_names(*args: str, cwd: Path) -> subprocess.CompletedProcess[bytes]:
    """`gridrun args` in a process whose file-name encoding is ASCII (the C locale, Python's UTF-8 mode off)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LC_", "LANG", "PYTHONIOENCODING", "PYTHONUTF8"))}
    return subprocess.run([sys.executable, "-m", "runner.cli", *args], capture_output=True, cwd=cwd, timeout=120,
                          env={**env, "LC_ALL": "C", "PYTHONUTF8": "0", "COLUMNS": "200"}, check=False)


def test_an_output_name_the_locale_cannot_write_names_the_character_escaped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`caf\u00e9.mp4` in ASCII output reads `cafe.mp4`: the refusal says which character it cannot write."""
    m = write_manifest(tmp_path, extra={
        "params": {"prompt": "a fox, {{ w }}", "quality": "360p", "duration": 5},
        "matrix": {"w": ["caf\u00e9", "fox"]}, "output": "{{ w }}.mp4"})
    done = _ascii_names("plan", m.name, cwd=tmp_path)
    err = done.stderr.decode("ascii")
    assert done.returncode == 2, err
    assert "holds '\\xe9' (character 4 of caf\\xe9.mp4)" in err and "file-name encoding (ascii)" in err, err
    assert "job 'w=caf\\xe9' would write " in err and "cafe" not in err, err
    from runner.localpaths import _unwritable_said, why_unusable

    monkeypatch.setattr(sys, "getfilesystemencoding", lambda: "ascii")
    said = _unwritable_said(UnicodeEncodeError("ascii", "out/d\u00e9/x.mp4", 5, 6, "ordinal not in range(128)"))
    assert said.startswith("its name holds '\\xe9' (character 2 of d\\xe9): it cannot be written in"), said
    said = why_unusable(UnicodeEncodeError("ascii", "out/\u72d0.mp4", 4, 5, "ordinal not in range(128)"))
    assert said.startswith("its name holds '\\u72d0' (character 1 of \\u72d0.mp4)"), said


def test_status_in_a_folder_the_locale_cannot_read_proposes_no_run_it_refuses(tmp_path: Path) -> None:
    """In `d\u00e9/` under `LC_ALL=C`, `gridrun run m.yaml` is refused for its folder's name: `status` with no
    state yet says that, not that the command runs it first."""
    folder = tmp_path / "d\u00e9"
    folder.mkdir()
    m = write_manifest(folder, n_seeds=1, styles=("anime",))
    status = _ascii_names("status", m.name, cwd=folder).stderr.decode("latin-1")  # the folder's name as its bytes
    run = _ascii_names("run", m.name, cwd=folder)
    assert run.returncode == 2 and "file-name encoding (ascii)" in run.stderr.decode("latin-1"), run.stderr
    # refused at once for the same reason the run is, with no state to wait for: not "runs it first"
    assert f"`gridrun run {m.name}` runs it first" not in status, status
    assert "file-name encoding (ascii)" in status and "LC_ALL=C.UTF-8" in status, status


@pytest.mark.parametrize("command", ["report", "export"])
def test_report_of_a_video_the_locale_cannot_name_names_the_character_escaped(tmp_path: Path, command: str) -> None:
    """A video run in a UTF-8 locale under `\u00e9pique/`: `report` and `export` in the C locale refuse as `plan`
    does, naming the character escaped, not `epique`, a folder that is not there."""
    from runner import api

    m = write_manifest(tmp_path, n_seeds=1, styles=("anime",), extra={
        "params": {"prompt": "a fox, {{ mood }}", "quality": "360p", "duration": 5},
        "matrix": {"mood": ["\u00e9pique"], "seed": [1]}, "output": "{{ mood }}/seed-{{ seed }}.mp4"})
    assert api.run(m, report=False).exit_code == 0
    done = _ascii_names(command, m.name, cwd=tmp_path)
    err = done.stderr.decode("ascii")
    assert done.returncode == 2, err
    assert "holds '\\xe9' (character 1 of \\xe9pique)" in err and "\\xe9pique/seed-1.mp4" in err, err
    assert "epique" not in err.replace("\\xe9pique", ""), err


@pytest.mark.parametrize(("field", "line"), [
    ("matrix:\n  r: {file: \"a\\ud800b.txt\"}\n", "matrix.r.file"),
    ("capabilities: [\"a\\ud800b.txt\"]\n", "capabilities[0]"),
    ("outputs_dir: \"a\\ud800b.txt\"\n", "outputs_dir"),
    ("state_dir: \"a\\ud800b.txt\"\n", "state_dir"),
])
def test_a_lone_surrogate_escape_in_a_file_name_is_said_so_not_blamed_on_the_locale(
    tmp_path: Path, field: str, line: str,
) -> None:
    """A manifest's `"\\ud800"` escape (half of a pair) in a name is no character any locale writes: it was said to
    be beyond the file-name encoding (utf-8), with advice to run in a UTF-8 locale, and shown as U+FFFD."""
    from runner import api
    from runner.errors import ManifestError

    m = tmp_path / "m.yaml"
    m.write_text("version: 1\nname: t\nprovider: sim\nmodel: pixverse-v5.6\nparams:\n  prompt: \"a fox {{ r }}\"\n"
                 "  quality: 360p\n" + field + ("" if "matrix" in field else "vars: {r: x}\n") + "output: a{{ r }}.mp4\n",
                 encoding="utf-8")
    with pytest.raises(ManifestError) as caught:
        api.plan(m)
    said = str(caught.value)
    assert caught.value.field == line, said
    assert "'\\ud800' (character 2 of a\\ud800b.txt), a lone surrogate (a \\ud800-\\udfff escape)" in said, said
    assert "LC_ALL" not in said and "locale" not in said and "\ufffd" not in said, said


@pytest.fixture(scope="module")
def latin1_locale(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The environment of a Latin-1 locale, `fr_FR.ISO-8859-1`, made under a temporary folder (`LOCPATH`): skipped
    where `localedef` or its French sources are missing, or Python does not take its encoding for file names."""
    localedef = shutil.which("localedef")
    if localedef is None:
        pytest.skip("no localedef")
    folder = tmp_path_factory.mktemp("locale")
    made = subprocess.run([localedef, "-i", "fr_FR", "-f", "ISO-8859-1", str(folder / "fr_FR.ISO-8859-1")],
                          capture_output=True, timeout=120, check=False)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LC_", "LANG", "PYTHONIOENCODING", "PYTHONUTF8"))}
    env.update(LOCPATH=str(folder), LC_ALL="fr_FR.ISO-8859-1", PYTHONUTF8="0", COLUMNS="200")
    asked = subprocess.run([sys.executable, "-c", "import sys; print(sys.getfilesystemencoding())"],
                           capture_output=True, text=True, env=env, timeout=120, check=False)
    if made.returncode != 0 or asked.stdout.strip().lower().replace("_", "-") not in ("iso8859-1", "iso-8859-1"):
        pytest.skip(f"no Latin-1 locale here: {made.stderr[-200:]!r} {asked.stdout!r}")
    return env


def _latin1(env: dict[str, str], *args: str, cwd: Path) -> tuple[int, str]:
    done = subprocess.run([sys.executable, "-m", "runner.cli", *args], capture_output=True, cwd=cwd, timeout=120,
                          env=env, check=False)
    return done.returncode, (done.stdout + done.stderr).decode("latin-1")


def _refused_in_latin1(done: tuple[int, str]) -> str:
    code, said = done
    assert code == 2, said
    assert "bug in gridrun" not in said and "no such file" not in said and "not found" not in said, said
    assert "file-name encoding (iso8859-1)" in said and "LC_ALL=C.UTF-8" in said, said
    return said


def test_a_latin1_locale_refuses_an_output_name_a_utf8_session_would_not_find(
    tmp_path: Path, latin1_locale: dict[str, str],
) -> None:
    """In a Latin-1 locale `anim\u00e9.mp4` would be saved as the byte 0xe9, a name no UTF-8 session finds: there
    it would be missing, and `retry` would pay for it again. Refused before anything is recorded or sent."""
    m = write_manifest(tmp_path, extra={
        "params": {"prompt": "a fox, {{ look }}", "quality": "360p", "duration": 5},
        "matrix": {"look": ["anim\u00e9", "clay"]}, "output": "{{ look }}.mp4"}, sim={"render_time": 0.1, "jitter": 0.0})
    for command in ("validate", "plan", "run"):
        said = _refused_in_latin1(_latin1(latin1_locale, command, m.name, cwd=tmp_path))
        assert "output:" in said and "'\\xe9' (character 5 of anim\\xe9.mp4)" in said, said
    assert not (tmp_path / "outputs").exists()
    assert not (tmp_path / ".gridrun").exists() or "state.db" not in os.listdir(tmp_path / ".gridrun")
    utf8 = {k: v for k, v in latin1_locale.items() if k not in ("LOCPATH", "LC_ALL", "PYTHONUTF8")}
    code, said = _latin1({**utf8, "PYTHONUTF8": "1"}, "run", m.name, "--no-report", cwd=tmp_path)
    assert code == 0, said
    for command in (["report"], ["export", "--format", "csv"]):  # not a report or export calling the video missing
        said = _refused_in_latin1(_latin1(latin1_locale, *command, m.name, cwd=tmp_path))
        assert "(character 5 of anim\\xe9.mp4)" in said, said


@pytest.mark.parametrize("field", ["data file", "input image", "outputs_dir", "project folder"])
def test_a_latin1_locale_refuses_any_name_beyond_ascii_a_run_would_read_or_make(
    tmp_path: Path, latin1_locale: dict[str, str], field: str,
) -> None:
    """A data file or an input image `\u00e9.txt` named in UTF-8 is there, but a Latin-1 locale looks for the byte
    0xe9: said as the locale's doing, not "no such file"; an output folder would be made under other bytes; a
    project folder's UTF-8 name reads as other characters, which a run would record."""
    (tmp_path / "\u00e9.txt").write_text("one\n", encoding="utf-8")
    (tmp_path / "\u00e9.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 32 + b"\x00\x00\x00\x00IEND\xaeB`\x82")
    folder = tmp_path
    extra: dict[str, object] = {
        "data file": {"params": {"prompt": "{{ p }}", "quality": "360p", "duration": 5},
                      "matrix": {"p": {"file": "\u00e9.txt"}}, "output": "{{ hash }}.mp4"},
        "input image": {"params": {"prompt": "a fox", "quality": "360p", "duration": 5,
                                   "input_reference": "\u00e9.png"}},
        "outputs_dir": {"outputs_dir": "vid\u00e9"},
        "project folder": {},
    }[field]
    if field == "project folder":
        folder = tmp_path / "c\u00e9"
        folder.mkdir()
    m = write_manifest(folder, extra=extra, n_seeds=1, styles=("anime",))
    said = _refused_in_latin1(_latin1(latin1_locale, "plan", m.name, cwd=folder))
    if field == "outputs_dir":
        assert "outputs_dir:" in said and "(character 4 of vid\\xe9)" in said, said
    elif field != "project folder":
        assert "'\\xe9' (character 1 of \\xe9." in said, said
    utf8 = {k: v for k, v in latin1_locale.items() if k not in ("LOCPATH", "LC_ALL", "PYTHONUTF8")}
    code, said = _latin1({**utf8, "PYTHONUTF8": "1"}, "plan", m.name, cwd=folder)
    assert code == 0, said
