"""A terminal whose encoding lacks gridrun's characters (PYTHONIOENCODING=ascii, a C locale): every line is
written, in ASCII, and the command does what it does on any other."""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from runner.terminal import c_locale, fit

from execkit import write_manifest

PROMPT = "un renard \u2192 caf\u00e9 \u00b7 {{ style }}"  # an arrow, an accent, a middle dot


def _gridrun(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """`gridrun args` with standard output and error in ASCII (bytes beyond it fail the decoding here), and
    none of its lines Python's escapes of characters it could not encode (but for JSON's own)."""
    done = subprocess.run([sys.executable, "-m", "runner.cli", *args], capture_output=True, cwd=cwd, timeout=120,
                          env={**os.environ, "PYTHONIOENCODING": "ascii", "COLUMNS": "200", **(env or {})}, check=False)
    out, err = done.stdout.decode("ascii"), done.stderr.decode("ascii")
    assert "Traceback" not in err and "\\u" not in err and ("--json" in args or "\\u" not in out), out + err
    return subprocess.CompletedProcess(done.args, done.returncode, out, err)


def _manifest(tmp_path: Path) -> Path:
    return write_manifest(tmp_path, n_seeds=2, styles=("anime",), sim={"render_time": 0.1, "jitter": 0.0},
                          extra={"description": "two seeds \u2014 one fox",
                                 "params": {"prompt": PROMPT, "quality": "360p", "duration": 5}})


@pytest.mark.timeout(240)
def test_plan_run_and_status_write_every_line_in_ascii(tmp_path: Path) -> None:
    m = _manifest(tmp_path)
    plan = _gridrun("plan", "--explain", str(m), cwd=tmp_path)
    assert plan.returncode == 0, plan.stderr
    assert "two seeds - one fox" in plan.stdout
    assert "total: 2 x 640x360 5s at $0.35 = $0.70 -> $0.70 for 2 jobs" in plan.stdout, plan.stdout
    assert "un renard -> caf\\xe9 - anime" in plan.stdout  # the prompt, its letter escaped: not another value
    run = _gridrun("run", str(m), "--no-report", cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert "videos: outputs/" in run.stdout
    assert "done 2 | spent $0.70" in run.stderr and "eta -" in run.stderr, run.stderr
    status = _gridrun("status", str(m), cwd=tmp_path)
    assert status.returncode == 0, status.stderr
    assert "run 1 (done, started" in status.stdout and "- 2 jobs" in status.stdout, status.stdout
    assert "done 2" in status.stdout and "spent $0.70" in status.stdout


@pytest.mark.timeout(240)
def test_the_live_display_draws_in_ascii(tmp_path: Path) -> None:
    m = _manifest(tmp_path)
    # a terminal, to rich: one that redraws
    run = _gridrun("run", str(m), "--no-report", cwd=tmp_path, env={"FORCE_COLOR": "1", "TTY_INTERACTIVE": "1"})
    assert run.returncode == 0, run.stderr
    assert "#" * 30 + " 2/2" in run.stderr and "done 2" in run.stderr, run.stderr


def test_plan_json_escapes_what_the_output_cannot_encode(tmp_path: Path) -> None:
    m = _manifest(tmp_path)
    plan = _gridrun("plan", "--json", str(m), cwd=tmp_path)
    assert plan.returncode == 0, plan.stderr
    prompts = {j["params"]["prompt"] for j in json.loads(plan.stdout)["jobs"]}
    assert prompts == {PROMPT.replace("{{ style }}", "anime")}  # not changed: \u escapes


def test_a_stream_writes_what_its_encoding_lacks_as_ascii_and_keeps_what_it_has() -> None:
    ascii_, latin = (io.TextIOWrapper(io.BytesIO(), encoding=e) for e in ("ascii", "latin-1"))
    utf8 = io.TextIOWrapper(io.BytesIO(), encoding="utf-8")
    fit(ascii_, latin, utf8)
    text = "a \u2192 b \u2026 \u2588\u2591 caf\u00e9 \u251c\u2500\u2524 \u4e2d\n"
    for stream in (ascii_, latin, utf8):
        stream.write(text)
        stream.flush()
    assert ascii_.buffer.getvalue() == b"a -> b ... #- caf\\xe9 +-+ \\u4e2d\n"
    assert latin.buffer.getvalue() == "a -> b ... #- caf\u00e9 +-+ \\u4e2d\n".encode("latin-1")
    assert utf8.buffer.getvalue() == text.encode("utf-8") and utf8.errors == "strict"


def _in_locale(env: dict[str, str | None], *args: str, cwd: Path) -> subprocess.CompletedProcess[bytes]:
    """`gridrun args` started with `env` over this one's, a name set to None unset, and no encoding asked for."""
    base = {k: v for k, v in os.environ.items() if not k.startswith(("LC_", "LANG", "PYTHONIOENCODING", "PYTHONUTF8"))}
    full = {**base, **{k: v for k, v in env.items() if v is not None}}
    return subprocess.run([sys.executable, "-m", "runner.cli", *args], capture_output=True, cwd=cwd, timeout=120,
                          env={**full, "COLUMNS": "200"}, check=False)


@pytest.mark.parametrize("env", [{"LC_ALL": "C"}, {"LANG": "C"}, {"LC_CTYPE": "POSIX", "LANG": "C.UTF-8"}],
                         ids=["LC_ALL=C", "LANG=C", "LC_CTYPE=POSIX"])
def test_the_c_locale_gets_ascii_though_python_writes_utf8_there(tmp_path: Path, env: dict[str, str]) -> None:
    m = _manifest(tmp_path)
    plan = _in_locale(env, "plan", str(m), cwd=tmp_path)
    assert plan.returncode == 0, plan.stderr
    out = plan.stdout.decode("ascii")  # fails on any byte beyond ASCII
    assert "t - sim / pixverse-v5.6 - 2 jobs" in out and "-> $0.70 for 2 jobs" in out, out
    listed = _in_locale(env, "plan", "--json", str(m), cwd=tmp_path)
    assert "\\u2192 caf\\u00e9" in listed.stdout.decode("ascii")  # escaped, as for PYTHONIOENCODING=ascii


def test_an_encoding_asked_for_in_the_c_locale_is_kept(tmp_path: Path) -> None:
    m = _manifest(tmp_path)
    for env in ({"LC_ALL": "C", "PYTHONIOENCODING": "utf-8"}, {"LC_ALL": "C", "PYTHONUTF8": "1"}):
        plan = _in_locale(env, "plan", str(m), cwd=tmp_path)
        assert "t \u2014 sim / pixverse-v5.6 \u2014 2 jobs" in plan.stdout.decode("utf-8"), (env, plan.stdout)
    latin = _in_locale({"LC_ALL": "C", "PYTHONIOENCODING": "latin-1"}, "plan", str(m), cwd=tmp_path)
    assert "2 \u00d7 640x360" in latin.stdout.decode("latin-1") and latin.returncode == 0, latin.stderr


@pytest.mark.parametrize("env, ascii_only", [
    ({}, True), ({"LC_ALL": "POSIX"}, True), ({"LANG": "C", "LC_ALL": ""}, True),
    ({"LC_ALL": "en_US.UTF-8", "LANG": "C"}, False), ({"LANG": "de_DE.ISO-8859-1"}, False),
    ({"LC_ALL": "C", "PYTHONIOENCODING": "utf-8"}, False), ({"LC_ALL": "C", "PYTHONUTF8": "1"}, False),
])
def test_which_locale_is_the_c_locale(env: dict[str, str], ascii_only: bool) -> None:
    assert c_locale(env) is ascii_only


def test_a_table_is_laid_out_on_the_ascii_it_writes(tmp_path: Path) -> None:
    """The plan's columns line up where "\u2192" is written "->" and "\u2026" "...": each row's `|` under the
    header's `+`."""
    m = write_manifest(tmp_path, extra={
        "params": {"prompt": "a fox, {{ look }}", "quality": "360p", "duration": 5},
        "matrix": {"look": ["caf\u00e9 \u2192 x", "clay"], "seed": {"range": [1, 21]}},
        "output": "{{ look[:4] }}/seed-{{ seed }}.mp4"})
    plan = _gridrun("plan", str(m), cwd=tmp_path)
    assert plan.returncode == 0, plan.stderr
    lines = [line for line in plan.stdout.splitlines() if " | " in line or "-+-" in line]
    rule = next(line for line in lines if "-+-" in line)
    bars = [i for i, ch in enumerate(rule) if ch == "+"]
    assert any("look=caf\\xe9 -> x" in line for line in lines) and any("..." in line.split("|")[0] for line in lines)
    for line in lines:
        assert [i for i, ch in enumerate(line) if ch in "|+"] == bars, "\n" + "\n".join(lines)


@pytest.mark.parametrize("how", ["PYTHONIOENCODING=ascii", "LC_ALL=C"])
def test_a_refused_letter_the_output_cannot_show_is_named_by_its_code_point(tmp_path: Path, how: str) -> None:
    """`ç` is not written as `c`, a letter a name may hold: the refused character is written as Python escapes it
    (`\\xe7`), as a control character is, not as the letter it would be read as, and so is the name."""
    m = write_manifest(tmp_path, extra={"name": "fa\u00e7ade"})
    if how == "LC_ALL=C":
        err = _in_locale({"LC_ALL": "C"}, "validate", str(m), cwd=tmp_path).stderr.decode("ascii")
    else:
        err = _gridrun("validate", str(m), cwd=tmp_path).stderr
    assert "got a string 'fa\\xe7ade': '\\xe7' (character 3) is not allowed" in err, err
    assert "'c' (character 3)" not in err


def test_ascii_escapes_every_character_of_a_value_it_cannot_write() -> None:
    """A letter with an accent, an accent written apart (`e` + U+0301), `ß` and a character with no ASCII form
    come out as Python escapes them: `anime` and `anim\u00e9`, two CJK values, never print alike, nor like a `?`."""
    stream = io.TextIOWrapper(io.BytesIO(), encoding="ascii")
    fit(stream)
    stream.write("anime anim\u00e9 anne\u0301e Stra\u00dfe \u72d0\u72f8 \u72fc\u7fa4 \U0001f98a \u00a4\n")
    stream.flush()
    assert stream.buffer.getvalue() == (b"anime anim\\xe9 anne\\u0301e Stra\\xdfe \\u72d0\\u72f8 \\u72fc\\u7fa4 "
                                        b"\\U0001f98a \\xa4\n")


def test_two_cjk_values_print_apart_in_an_ascii_plan(tmp_path: Path) -> None:
    m = write_manifest(tmp_path, extra={
        "params": {"prompt": "a fox, {{ look }}", "quality": "360p", "duration": 5},
        "matrix": {"look": ["\u72d0\u72f8", "\u72fc\u7fa4"]}, "output": "{{ hash }}.mp4"})
    done = subprocess.run([sys.executable, "-m", "runner.cli", "plan", str(m)], capture_output=True, cwd=tmp_path,
                          timeout=120, env={**os.environ, "PYTHONIOENCODING": "ascii", "COLUMNS": "200"}, check=False)
    out = done.stdout.decode("ascii")
    assert done.returncode == 0, done.stderr
    assert "look=\\u72d0\\u72f8" in out and "look=\\u72fc\\u7fa4" in out and "??" not in out, out


def _ascii_names(*args: str, cwd: Path) -> subprocess.CompletedProcess[bytes]:
    """`gridrun args` in a process whose file-name encoding is ASCII (the C locale, Python's UTF-8 mode off)."""
    return _in_locale({"LC_ALL": "C", "PYTHONUTF8": "0"}, *args, cwd=cwd)


def _said_locale(done: subprocess.CompletedProcess[bytes]) -> str:
    err = done.stderr.decode("ascii")
    assert done.returncode == 2, err
    assert "bug in gridrun" not in err and "NUL byte" not in err, err
    assert "file-name encoding (ascii)" in err and "LC_ALL=C.UTF-8" in err, err
    return err


@pytest.mark.timeout(240)
def test_a_name_beyond_an_ascii_file_name_encoding_is_refused_naming_the_locale(tmp_path: Path) -> None:
    """Under `LC_ALL=C PYTHONUTF8=0` an output name `\ufb01ne.mp4` cannot be named to the system: every command
    that looks at it says so, and what to do, in one line (exit 2), with nothing sent."""
    m = write_manifest(tmp_path, extra={
        "params": {"prompt": "a fox, {{ look }}", "quality": "360p", "duration": 5},
        "matrix": {"look": ["\ufb01ne", "fox"]}, "output": "{{ look }}.mp4"},
        sim={"render_time": 0.1, "jitter": 0.0})
    for command in ("validate", "plan", "run", "retry"):
        err = _said_locale(_ascii_names(command, m.name, cwd=tmp_path))
        assert "t.yaml:" in err and "output:" in err, err
    assert not (tmp_path / ".gridrun").exists() or "state" not in os.listdir(tmp_path / ".gridrun")
    assert _in_locale({"PYTHONUTF8": "1"}, "run", m.name, "--no-report", cwd=tmp_path).returncode == 0
    for command in (["cancel"], ["report"], ["export", "--format", "csv"], ["plan", "--json"]):
        _said_locale(_ascii_names(*command, m.name, cwd=tmp_path))


@pytest.mark.timeout(240)
def test_a_project_folder_named_in_utf8_under_an_ascii_locale_blames_the_locale(tmp_path: Path) -> None:
    """A folder `\u00e9` is UTF-8 text: read under an ASCII locale its bytes do not decode, which is the locale's
    doing, not the name's (no "rename", no "NUL byte")."""
    folder = tmp_path / "w\u00e9 #1"
    folder.mkdir()
    m = write_manifest(folder, extra={"outputs_dir": "out \u00e9"}, n_seeds=1, styles=("anime",))
    for command in ("plan", "status", "cancel"):
        err = _said_locale(_ascii_names(command, m.name, cwd=folder))
        assert "rename" not in err, err
    plain = write_manifest(tmp_path, extra={"outputs_dir": "out \u00e9"}, n_seeds=1, styles=("anime",))
    for command in ("plan", "status"):  # the folder a manifest names: no NUL byte in it
        err = _said_locale(_ascii_names(command, plain.name, cwd=tmp_path))
        assert "outputs_dir:" in err, err


def test_any_file_name_the_locale_cannot_write_is_said_as_the_locale_s_doing(monkeypatch: pytest.MonkeyPatch) -> None:
    """The last resort for a name met where no check looked before: one line naming the encoding and the command
    to run again, not "a bug in gridrun"."""
    from runner import cli

    monkeypatch.setattr(sys, "getfilesystemencoding", lambda: "ascii")
    exc = UnicodeEncodeError("ascii", "out/\u72d0.mp4", 4, 5, "ordinal not in range(128)")
    said = cli._locale_refused(exc, ["report", "my m.yaml"])
    assert said is not None and "'\\u72d0'" in said and "file-name encoding (ascii)" in said, said
    assert said.endswith("`LC_ALL=C.UTF-8 gridrun report 'my m.yaml'`"), said
    assert cli._locale_refused(UnicodeEncodeError("latin-1", "\u72d0", 0, 1, "x"), ["report"]) is None
    monkeypatch.setattr(sys, "getfilesystemencoding", lambda: "utf-8")
    assert cli._locale_refused(exc, ["report"]) is None


def test_a_file_name_error_met_anywhere_ends_the_command_with_the_locale_s_fix(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:
    from runner import api, cli

    def fails(*_: object, **__: object) -> None:
        raise UnicodeEncodeError("ascii", "out/\u72d0.mp4", 4, 5, "ordinal not in range(128)")

    monkeypatch.setattr(sys, "getfilesystemencoding", lambda: "ascii")
    monkeypatch.setattr(api, "plan", fails)
    assert cli.main(["plan", "m.yaml"]) == 2
    err = capsys.readouterr().err
    assert "bug in gridrun" not in err and "file-name encoding (ascii)" in err, err
    assert "`LC_ALL=C.UTF-8 gridrun plan m.yaml`" in err, err


def test_joiners_are_shown_as_written_and_invisible_characters_escaped() -> None:
    """A zero width joiner is part of every emoji family and of the rainbow flag, a non-joiner of ordinary Persian
    spelling (می‌خواهم, "I want"): shown as they are written, where a zero width space is escaped."""
    from runner.terminal import visible

    for text in ("\u0645\u06cc\u200c\u062e\u0648\u0627\u0647\u0645", "\U0001f468\u200d\U0001f469\u200d\U0001f467",
                 "\U0001f3f3\ufe0f\u200d\U0001f308 parade"):
        assert visible(text) == text
    assert visible("a\u200bb") == "a\\u200bb"


def test_a_plan_table_shows_an_emoji_family_and_a_persian_word_as_written(tmp_path: Path) -> None:
    family, word = "\U0001f468\u200d\U0001f469\u200d\U0001f467", "\u0645\u06cc\u200c\u062e\u0648\u0627\u0647\u0645"
    m = write_manifest(tmp_path, extra={
        "params": {"prompt": "{{ who }}", "quality": "360p", "duration": 5},
        "matrix": {"who": [family, word]}, "output": "{{ hash }}.mp4"})
    done = subprocess.run([sys.executable, "-m", "runner.cli", "plan", str(m)], capture_output=True, cwd=tmp_path,
                          timeout=120, env={**os.environ, "PYTHONIOENCODING": "utf-8", "COLUMNS": "200"}, check=False)
    out = done.stdout.decode("utf-8")
    assert done.returncode == 0, done.stderr
    assert f"who={family}" in out and f"who={word}" in out and "\\u200" not in out, out


@pytest.mark.skipif(shutil.which("bash") is None, reason="no bash here")
@pytest.mark.parametrize("name", ["grid\u00adv2.yaml", "a\u200bb.yaml", "x\x1b[31m.yaml", "it's\u200b \\ #1.yaml",
                                  "\u0648\u06cc\u062f\u06cc\u0648\u200c\u0647\u0627.yaml", "plain name.yaml"])
def test_a_command_hint_names_the_same_file_when_pasted_in_a_shell(name: str) -> None:
    """A name the hint must escape to be seen (a soft hyphen, a zero width space, an ESC) is written in ANSI-C
    quotes, which the shell reads back to the name; a name holding nothing to escape, in plain quotes."""
    from runner.terminal import typed

    word = typed(name)
    assert not any(ch in word for ch in "\u00ad\u200b\x1b")
    done = subprocess.run(["bash", "-c", f"printf %s {word}"], capture_output=True, timeout=60, check=True,
                          env={**os.environ, "LC_ALL": "C.UTF-8"})
    assert done.stdout.decode("utf-8") == name, word


def test_ascii_escapes_a_mark_after_a_character_it_escapes() -> None:
    """A nukta makes another Devanagari letter (फ़ fa, फ pha), a Hebrew point another vowel: after a character written
    as its escape, the mark is escaped too, and two values that differ by it do not print alike; so is an accent
    after an ASCII letter (`e` + U+0301)."""
    from runner.terminal import written

    stream = io.TextIOWrapper(io.BytesIO(), encoding="ascii")
    assert written(stream, "\u092b\u093c\u0932") == "\\u092b\\u093c\\u0932" != written(stream, "\u092b\u0932")
    assert written(stream, "\u05e9\u05b8\u05c1\u05dc\u05d5\u05b9\u05dd") != written(stream, "\u05e9\u05dc\u05d5\u05dd")
    assert written(stream, "cafe\u0301") == "cafe\\u0301" and written(stream, "caf\u00e9") == "caf\\xe9"
    fit(stream)
    stream.write("\u092b\u093c\u0932 \u092b\u0932 cafe\u0301\n")
    stream.flush()
    assert stream.buffer.getvalue() == b"\\u092b\\u093c\\u0932 \\u092b\\u0932 cafe\\u0301\n"


def test_every_character_the_twin_check_calls_invisible_is_escaped() -> None:
    """Two values the twin check tells apart by an invisible character (a direction mark U+061C, a tag after a
    letter, the interlinear annotation marks) are shown apart: each such character is escaped as U+200B is. The
    joiners and the marks that enclose a number are drawn, and shown as written; so is a flag's tag sequence."""
    from runner import textforms
    from runner.terminal import typed, visible

    hidden = [chr(c) for c in (*range(0x20000), *range(0xE0000, 0xE1000)) if textforms._invisible(chr(c))]
    assert "\u061c" in hidden and "\U000e0001" in hidden
    for ch in hidden:
        assert visible("a" + ch) != "a" + ch, f"U+{ord(ch):04X}"
        assert typed("a" + ch).startswith("$'"), f"U+{ord(ch):04X}"
    assert visible("a\u061cbc") == "a\\u061cbc" and visible("blue\U000e0001") == "blue\\U000e0001"
    for text in ("\u0600\u0661", "\u06dd12", "a\u200cb\u200dc"):
        assert visible(text) == text
    england = "\U0001f3f4\U000e0067\U000e0062\U000e0065\U000e006e\U000e0067\U000e007f"
    assert visible(england + " fans") == england + " fans"
    assert visible(england + "\U000e0041") == england + "\\U000e0041"
    assert visible("\x1b[31m\r\x7f\x85") == "\\x1b[31m\\r\\x7f\\x85" and visible("a\tb") == "a\tb"


def test_the_line_and_paragraph_separators_are_escaped() -> None:
    """U+2028 and U+2029 break a line where a terminal, a log reader or Python's `splitlines` takes them as a
    break, and show nothing elsewhere: a provider's error or a prompt that holds one is shown escaped, on its line,
    as a NEL is; a file name holding one is written in ANSI-C quotes, as its escape."""
    from runner.terminal import typed, visible

    assert visible("a fox\u2028at dusk\u2029, \x85") == "a fox\\u2028at dusk\\u2029, \\x85"
    assert typed("a\u2028b.yaml") == "$'a\\u2028b.yaml'"
    assert visible("a fox \u2027 \u202f") == "a fox \u2027 \u202f"  # a hyphenation point, a narrow space: drawn


@pytest.mark.skipif(shutil.which("bash") is None, reason="no bash here")
@pytest.mark.parametrize("name", [b"-\xff.yaml", b"-\xff\xc2\xad.yaml", b"it's \xfe\x1b.yaml", b"a\xf3\xa0\x80\x81b.yaml",
                                  b"\xf0\x9f\x98\x80\xe2\x80\x8b.yaml"])
def test_a_command_hint_names_a_file_whose_name_is_not_utf8_by_its_bytes(name: bytes) -> None:
    """A byte of a name that is not UTF-8 (kept by Python as a lone surrogate) is written as that byte, `\\xff`, in
    ANSI-C quotes; a character beyond U+FFFF as `\\U000e0001`: pasted, the line names the same file."""
    from runner.terminal import typed

    word = typed(os.fsdecode(name))
    # a surrogate left in the hint is written `\udcff` on standard error, which the shell reads as other bytes
    assert word.startswith("$'") and not any("\udc80" <= ch <= "\udcff" for ch in word), word
    done = subprocess.run(["bash", "-c", f"printf %s {word}"], capture_output=True, timeout=60, check=True,
                          env={**os.environ, "LC_ALL": "C.UTF-8"})
    assert done.stdout == name, word


def test_the_consoles_read_columns_as_they_draw_not_as_they_are_made(monkeypatch: pytest.MonkeyPatch) -> None:
    """rich reads COLUMNS once, as a console is made (at import): a host that sets it later (a test, a notebook)
    would get the width of the import; gridrun's consoles read it as each line is drawn."""
    from runner import cli

    monkeypatch.setenv("COLUMNS", "30")
    console = cli._Console(highlight=False, soft_wrap=True, emoji=False, _environ=cli._Environ())
    assert console.width == 30
    monkeypatch.setenv("COLUMNS", "200")
    assert console.width == 200
    assert cli._Console(width=50).width == 50  # a width given is kept


def _colour_asked(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """`gridrun args` with FORCE_COLOR=1, as a CI sets it for colour in its log, its output no terminal (pipes),
    no width asked for (COLUMNS unset) and none of rich's other variables."""
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES", "TTY_INTERACTIVE", "TTY_COMPATIBLE")}
    return subprocess.run([sys.executable, "-m", "runner.cli", *args], capture_output=True, cwd=cwd, timeout=120,
                          env={**env, "FORCE_COLOR": "1"}, text=True, check=False)


@pytest.mark.timeout(240)
def test_force_color_asks_for_colour_not_a_terminal(tmp_path: Path) -> None:
    """FORCE_COLOR on output that is no terminal: a run's plain lines, not a live display's redraws written into
    the log, and `plan`'s table as wide as its rows, every axis column kept, not cut to 80 columns."""
    m = write_manifest(tmp_path, n_seeds=2, styles=("anime", "cyberpunk"), sim={"render_time": 0.1, "jitter": 0.0})
    run = _colour_asked("run", str(m), "--no-report", cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert "\x1b[1A" not in run.stderr and "\x1b[2K" not in run.stderr and "\x1b[?25l" not in run.stderr, run.stderr
    assert "done 4 | spent $1.40" in run.stderr, run.stderr
    plan = _colour_asked("plan", str(m), cwd=tmp_path)  # the jobs cached: a row wider than 80 columns
    assert plan.returncode == 0, plan.stderr
    header = next(row for row in plan.stdout.splitlines() if "key" in row and "cost" in row)
    assert "style" in header and "seed" in header, plan.stdout
    assert "style=cyberpunk,seed=2" in plan.stdout and "…" not in plan.stdout, plan.stdout


def test_two_values_that_differ_by_an_accent_print_apart_in_the_c_locale(tmp_path: Path) -> None:
    """`anim\u00e9` and `anime` are two jobs: in the C locale their rows, prompts and keys were both `anime`, and
    `validate` said `'anime' is not one of ... anime`. Each is shown as it is, its accent escaped."""
    m = write_manifest(tmp_path, extra={
        "params": {"prompt": "un renard {{ look }}", "quality": "360p", "duration": 5},
        "matrix": {"look": ["anim\u00e9", "anime"]}, "output": "{{ look }}.mp4"})
    out = _in_locale({"LC_ALL": "C"}, "plan", "--explain", str(m), cwd=tmp_path).stdout.decode("ascii")
    assert "look=anim\\xe9 | anim\\xe9 |" in out and "look=anime    | anime    |" in out, out
    assert 'prompt = "un renard anim\\xe9"' in out and 'prompt = "un renard anime"' in out, out
    (tmp_path / "s").mkdir()
    styled = write_manifest(tmp_path / "s", extra={"matrix": {"style": ["anim\u00e9"]}})
    err = _in_locale({"LC_ALL": "C"}, "validate", str(styled), cwd=tmp_path).stderr.decode("ascii")
    assert "'anim\\xe9' is not one of" in err and "'anime' is not" not in err, err


def test_a_command_proposed_in_the_c_locale_names_the_file_when_pasted(tmp_path: Path) -> None:
    """The hint's command names `f\u00e9 #1.yaml` by its UTF-8 bytes in the shell's `$'...'`, which bash reads in
    any locale (its `\\u00e9` stays a backslash in the C locale), not as `fe #1.yaml`, a file that is not there."""
    m = write_manifest(tmp_path, n_seeds=1, styles=("anime",))
    m = m.rename(tmp_path / "f\u00e9 #1.yaml")
    err = _in_locale({"LC_ALL": "C"}, "status", m.name, cwd=tmp_path).stderr.decode("ascii")
    assert "`gridrun run $'f\\xc3\\xa9 #1.yaml'` runs it first" in err, err
    bash = shutil.which("bash")
    if bash is not None:
        word = err.split("`gridrun run ", 1)[1].split("`", 1)[0]
        listed = subprocess.run([bash, "-c", f"ls -- {word}"], capture_output=True, cwd=tmp_path, timeout=60,
                                env={**os.environ, "LC_ALL": "C"}, check=False)
        assert listed.returncode == 0 and listed.stdout == os.fsencode(m.name) + b"\n", listed
    from runner import terminal

    assert terminal.typed("f\u00e9.yaml") == "'f\u00e9.yaml'"  # where the output shows it (a UTF-8 one), as it is


def _ascii_output(monkeypatch: pytest.MonkeyPatch) -> None:
    """Standard output and error as the C locale has them (`fit`): ASCII."""
    for name in ("stdout", "stderr"):
        monkeypatch.setattr(sys, name, io.TextIOWrapper(io.BytesIO(), encoding="ascii", errors="gridrun.ascii"))


def _pasted(word: str, cwd: Path) -> bytes:
    """The file name bash reads `word` (a quoted word of a proposed command) as, in the C locale."""
    done = subprocess.run(["bash", "-c", f"printf %s {word}"], capture_output=True, cwd=cwd, timeout=60,
                          env={**os.environ, "LC_ALL": "C"}, check=True)
    return done.stdout


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
def test_the_commands_messages_propose_name_a_file_by_its_bytes_in_an_ascii_output(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every proposed command or path to paste (`chmod u+w`, `mkdir -p`, `--key`) writes a name the output cannot
    show in the shell's `$'...'` by its UTF-8 bytes: in single quotes, the stream's `\\xe9` would be read by the
    shell as a backslash and three letters, a file that is not there."""
    from runner import options, state
    from runner.export import gone_error

    _ascii_output(monkeypatch)
    folder = tmp_path / "\u00e9quipe"
    folder.mkdir()
    (folder / "state.db").write_bytes(b"")
    said = state.not_writable_said([folder / "state.db"], then="run it again", known=True)
    assert said is not None and "chmod u+w $'" in said, said
    word = said.split("chmod u+w ", 1)[1].split("`", 1)[0]
    assert _pasted(word, tmp_path) == os.fsencode(folder / "state.db")
    gone = str(gone_error(3, tmp_path / "vid\u00e9os"))
    word = gone.split("mkdir -p ", 1)[1].split(")", 1)[0]
    assert _pasted(word, tmp_path) == os.fsencode(tmp_path / "vid\u00e9os" / ".runs"), gone
    refused, _ = options.selection_misses([("look=anim\u00e9", None)], ["look=x\u00e9"], [])
    assert refused is not None and "--key $'look=x\\xc3\\xa9'" in refused, refused
    monkeypatch.undo()
    # where the output shows it (UTF-8), the name is written as it is
    assert f"chmod u+w '{folder / 'state.db'}'" in (state.not_writable_said(
        [folder / "state.db"], then="run it again", known=True) or "")


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
def test_a_changed_input_image_is_named_to_put_back_by_its_bytes_in_the_c_locale(tmp_path: Path) -> None:
    fox = Path(__file__).parent.parent / "manifests" / "assets" / "fox.png"
    image = tmp_path / "renard-\u00e9.png"
    image.write_bytes(fox.read_bytes())
    m = write_manifest(tmp_path, n_seeds=2, styles=("anime",), sim={"render_time": 0.05, "jitter": 0.0},
                       extra={"params": {"prompt": "a fox {{ style }}", "input_reference": image.name,
                                         "quality": "540p", "duration": 5}})
    first = _in_locale({"LC_ALL": "C.UTF-8"}, "run", "--no-report", str(m), cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    with image.open("ab") as f:
        f.write(b"x")
    again = _in_locale({"LC_ALL": "C"}, "run", "--no-report", str(m), cwd=tmp_path)
    err = again.stderr.decode("ascii")
    assert "git checkout <ref> -- $'renard-\\xc3\\xa9.png'" in err, err
    word = err.split("git checkout <ref> -- ", 1)[1].split(")", 1)[0]
    assert _pasted(word, tmp_path) == os.fsencode(image.name)


@pytest.mark.timeout(240)
def test_status_under_an_ascii_file_name_encoding_says_videos_it_cannot_name_are_not_looked_for(tmp_path: Path) -> None:
    """Under `LC_ALL=C PYTHONUTF8=0` a video named `vid\u00e9o.mp4` cannot be looked up: `status` says it is the
    locale's doing, not that the video is gone and that a run fetches it again (a run is refused there)."""
    m = write_manifest(tmp_path, sim={"render_time": 0.05, "jitter": 0.0}, extra={
        "params": {"prompt": "a fox, {{ look }}", "quality": "360p", "duration": 5},
        "matrix": {"look": ["anim\u00e9", "clay"]}, "output": "{{ look }}/vid\u00e9o.mp4"})
    assert _in_locale({"LC_ALL": "C.UTF-8"}, "run", m.name, "--no-report", cwd=tmp_path).returncode == 0
    done = _ascii_names("status", m.name, cwd=tmp_path)
    out = done.stdout.decode("ascii")
    assert done.returncode == 0, done.stderr
    assert "no longer in the output folder" not in out and "fetches them again" not in out, out
    assert "2 videos of jobs done could not be looked for" in out and "not said gone" in out, out
    assert "file-name encoding (ascii)" in out and "LC_ALL=C.UTF-8" in out, out
    listed = json.loads(_ascii_names("status", "--json", m.name, cwd=tmp_path).stdout)
    assert listed["missing_videos"] == [] and listed["missing_videos_note"] is None, listed
    assert any("could not be looked for" in w for w in listed["warnings"]), listed["warnings"]
    (tmp_path / "outputs" / "t" / "clay").rename(tmp_path / "elsewhere")  # gone: said so where the locale names it
    out = _in_locale({"LC_ALL": "C.UTF-8"}, "status", m.name, cwd=tmp_path).stdout.decode()
    assert "1 video of jobs done is no longer in the output folder" in out, out


def test_a_value_typed_as_an_escape_prints_apart_from_the_letter_it_names_in_the_c_locale(tmp_path: Path) -> None:
    """`anim\u00e9` is written `anim\\xe9` in the C locale: a value typed `anim\\xe9` (a backslash, then `xe9`) has
    its backslash written `\\\\` there, in the plan's table and `matrix` rows, so the two rows do not print alike."""
    m = write_manifest(tmp_path, extra={
        "params": {"prompt": "un renard {{ look }}", "quality": "360p", "duration": 5},
        "matrix": {"look": ["anim\u00e9", "anim\\xe9"]}, "output": "{{ look | length }}.mp4"})
    out = _in_locale({"LC_ALL": "C"}, "plan", str(m), cwd=tmp_path).stdout.decode("ascii")
    assert "look=anim\\xe9  | anim\\xe9  |" in out and "look=anim\\\\xe9 | anim\\\\xe9 |" in out, out
    rows = _in_locale({"LC_ALL": "C"}, "matrix", str(m), cwd=tmp_path).stdout.decode("ascii").splitlines()
    assert rows[:2] == ["look=anim\\xe9", "look=anim\\\\xe9"], rows
    out = _in_locale({"LC_ALL": "C.UTF-8"}, "plan", str(m), cwd=tmp_path).stdout.decode()  # UTF-8: as it is
    assert "look=anim\u00e9    \u2502 anim\u00e9    \u2502" in out and "look=anim\\xe9 \u2502 anim\\xe9 \u2502" in out, out


@pytest.mark.timeout(240)
@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
def test_a_key_copied_from_an_ascii_screen_is_refused_proposing_one_that_picks_the_job(tmp_path: Path) -> None:
    """`status` in the C locale shows the key `look=anim\u00e9` as `look=anim\\xe9`: `retry --key` given that text
    picks nothing, and its refusal proposes the key in the shell's `$'...'`, which picks the job when pasted."""
    m = write_manifest(tmp_path, sim={"render_time": 0.05, "jitter": 0.0, "failure_rate": 1.0}, extra={
        "params": {"prompt": "a fox, {{ look }}", "quality": "360p", "duration": 5},
        "matrix": {"look": ["anim\u00e9"]}, "output": "{{ look | length }}.mp4", "run": {"failure_retries": 0}})
    _in_locale({"LC_ALL": "C"}, "run", "--no-report", m.name, cwd=tmp_path)
    status = _in_locale({"LC_ALL": "C"}, "status", m.name, cwd=tmp_path).stdout.decode("ascii")
    assert "failed look=anim\\xe9:" in status, status
    refused = _in_locale({"LC_ALL": "C"}, "retry", "--key", "look=anim\\xe9", m.name, cwd=tmp_path)
    err = refused.stderr.decode("ascii")
    assert refused.returncode == 2 and "(e.g. --key $'look=anim\\xc3\\xa9';" in err, err
    word = err.split("(e.g. --key ", 1)[1].split(";", 1)[0]
    assert _pasted(word, tmp_path) == "look=anim\u00e9".encode()


@pytest.mark.timeout(240)
@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
def test_a_proposed_key_pasted_where_argv_is_ascii_picks_the_job(tmp_path: Path) -> None:
    """Where the file-name encoding is ASCII (`LC_ALL=C PYTHONUTF8=0`), argv's bytes beyond ASCII are read as
    escapes: the `--key $'look=anim\\xc3\\xa9'` a refusal proposes, pasted there, picks the job `look=anim\u00e9`
    and sends it again, not a refusal proposing the same key."""
    m = write_manifest(tmp_path, sim={"render_time": 0.05, "jitter": 0.0, "failure_rate": 1.0}, extra={
        "params": {"prompt": "a fox, {{ look }}", "quality": "360p", "duration": 5},
        "matrix": {"look": ["anim\u00e9", "clay"]}, "output": "{{ look | length }}.mp4", "run": {"failure_retries": 0}})
    _ascii_names("run", "--no-report", m.name, cwd=tmp_path)
    refused = _ascii_names("retry", "--key", "x", m.name, cwd=tmp_path)
    err = refused.stderr.decode("ascii")
    assert refused.returncode == 2 and "(e.g. --key $'look=anim\\xc3\\xa9';" in err, err
    word = err.split("(e.g. --key ", 1)[1].split(";", 1)[0]
    m.write_text(m.read_text().replace("failure_rate: 1.0", "failure_rate: 0.0"), encoding="utf-8")
    sent = _ascii_names("retry", "--no-report", "--key", os.fsdecode(_pasted(word, tmp_path)), m.name, cwd=tmp_path)
    assert sent.returncode == 1 and "done 1, failed 1" in sent.stderr.decode("ascii"), sent.stderr  # clay failed
    from runner import api

    assert {j.key: j.state for j in api.status(m).jobs} == {"look=anim\u00e9": "done", "look=clay": "failed"}
