"""Text that reads alike but is not the same text, and data files that are not the text they look like: a NUL
(UTF-16 read as UTF-8), a byte order mark left inside a file by joining two, a letter composed in one copy and
decomposed in another, an invisible character, a lone surrogate in a JSONL row. Each is refused at its line
before anything is planned, or named in a "did you mean" that shows the difference."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from runner import api, textforms
from runner.cli import main
from runner.errors import ManifestError, ManifestErrors
from runner.textforms import alike, escaped, unlike

HEAD = "version: 1\nname: fox\nprovider: sim\nmodel: pixverse-v5.6\n"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32 + b"\x00\x00\x00\x00IEND\xaeB`\x82"


def manifest(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "m.yaml"
    path.write_text(HEAD + textwrap.dedent(body), encoding="utf-8")
    return path


def errors_of(path: Path) -> list[ManifestError]:
    with pytest.raises((ManifestError, ManifestErrors)) as exc:
        api.plan(path)
    return exc.value.errors if isinstance(exc.value, ManifestErrors) else [exc.value]


def axis_of(tmp_path: Path, name: str, data: bytes, *, prompt: str = "{{ p }}", output: str = "{{ hash }}.mp4") -> Path:
    (tmp_path / name).write_bytes(data)
    return manifest(tmp_path, f"params:\n  prompt: \"{prompt}\"\nmatrix:\n  p: {{file: {name}}}\noutput: \"{output}\"\n")


# --- NULs and UTF-16 ---------------------------------------------------------------------------------------------


def test_a_utf16_data_file_without_a_bom_is_refused_as_utf16(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Read as UTF-8, its lines were prompts with a NUL every other character, each a paid job."""
    m = axis_of(tmp_path, "u16.txt", "a red fox\r\nan owl at night\r\n".encode("utf-16-le"))
    assert main(["validate", str(m)]) == 2
    err = capsys.readouterr().err
    assert ("u16.txt:1:2: matrix.p: a NUL byte: this looks like UTF-16 text; save the file as UTF-8 "
            "(iconv -f UTF-16LE -t UTF-8)") in err
    assert err.count("error:") == 1
    (tmp_path / "u16.txt").write_bytes("a red fox\nan owl\n".encode("utf-16-be"))
    assert "u16.txt:1:1: matrix.p: a NUL byte: this looks like UTF-16 text" in str(errors_of(m)[0])
    assert "iconv -f UTF-16BE -t UTF-8" in str(errors_of(m)[0])


def test_a_utf16_data_file_with_a_bom_is_named_utf16(tmp_path: Path) -> None:
    m = axis_of(tmp_path, "u16.txt", "a red fox\nan owl\n".encode("utf-16"))
    [err] = errors_of(m)
    assert err.line == 1 and err.column == 1 and str(err.file).endswith("u16.txt")
    assert "not UTF-8 text: byte 0xff cannot be decoded; this looks like UTF-16 text: save the file as UTF-8" in err.message


@pytest.mark.parametrize(("codec", "encoding", "said"), [
    ("utf-32", "UTF-32LE", "not UTF-8 text: byte 0xff cannot be decoded; this looks like UTF-32 text: save"),
    ("utf-32-be", "UTF-32BE", "a NUL byte: this looks like UTF-32 text; save"),
])
def test_a_utf32_data_file_is_named_utf32_with_the_iconv_line_that_converts_it(
    tmp_path: Path, codec: str, encoding: str, said: str,
) -> None:
    """It was called UTF-16 (its BOM starts as UTF-16LE's), and the iconv line given did not convert it."""
    m = axis_of(tmp_path, "u32.txt", "a red fox\nan owl\n".encode(codec))
    [err] = errors_of(m)
    assert err.line == 1 and err.column == 1 and str(err.file).endswith("u32.txt")
    assert said in err.message and f"the file as UTF-8 (iconv -f {encoding} -t UTF-8)" in err.message, err.message
    (tmp_path / "u32.txt").write_bytes((tmp_path / "u32.txt").read_bytes().decode(encoding).encode("utf-8"))
    assert len(api.plan(m).jobs) == 2


def test_a_number_of_more_digits_than_python_reads_in_a_jsonl_row_is_said_for_its_author(tmp_path: Path) -> None:
    """Python's words told the author to call `sys.set_int_max_str_digits()`."""
    m = axis_of(tmp_path, "d.jsonl", b'{"q": "a fox"}\n{"q": "an owl", "n": ' + b"9" * 4301 + b"}\n",
                prompt="{{ p.q }}")
    [err] = errors_of(m)
    assert err.line == 2 and str(err.file).endswith("d.jsonl"), err
    assert err.message == ("not valid JSON: a number of 4,301 digits, and gridrun reads numbers of at most 4,300 "
                           "digits; quote it to make it text"), err.message


@pytest.mark.parametrize(("name", "data", "line", "column"), [
    ("nul.csv", "id,prompt\r\n1,café au\x00lait\r\n2,an owl\r\n".encode(), 2, 10),
    ("nul.txt", b"a fox\nan \x00owl\n", 2, 4),
    ("nul.txt", b"a fox\ran \x00owl\r", 2, 4),  # lines ended by CRs alone
    ("nul.jsonl", b'{"p": "a fox"}\n{"p": "an owl"}\x00\n', 2, 16),
])
def test_a_nul_in_a_data_file_is_refused_at_its_line(tmp_path: Path, name: str, data: bytes, line: int,
                                                      column: int) -> None:
    """The manifest refuses the control character; a data file sent it on, in a paid prompt."""
    m = axis_of(tmp_path, name, data, prompt="{{ p.prompt }}" if name.endswith(".csv") else "{{ p }}")
    [err] = errors_of(m)
    assert (Path(err.file).name, err.line, err.column, err.field) == (name, line, column, "matrix.p")
    assert err.message.startswith("a NUL byte (U+0000), which no value may hold")


def test_a_data_file_refused_for_a_nul_sends_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    m = axis_of(tmp_path, "u16.txt", "a red fox\nan owl\n".encode("utf-16-le"))
    assert main(["run", str(m)]) == 2
    assert "a NUL byte" in capsys.readouterr().err
    assert not (tmp_path / ".gridrun" / "state.db").exists()  # refused in the plan, before a job is recorded


# --- a byte order mark inside a file -------------------------------------------------------------------------------


def test_a_bom_at_the_start_of_a_later_line_is_refused_there(tmp_path: Path) -> None:
    """Two files saved with a BOM and joined with `cat`: the second BOM starts a line, and that line's value,
    which looks like an earlier one, was a second paid job."""
    joined = b"\xef\xbb\xbfa red fox\r\nan owl\r\n" + b"\xef\xbb\xbfa red fox\r\na cat\r\n"
    m = axis_of(tmp_path, "all.txt", joined, output="{{ key }}.mp4")
    [err] = errors_of(m)
    assert (Path(err.file).name, err.line, err.column) == ("all.txt", 3, 1)
    assert "a byte order mark (U+FEFF) at the start of this line" in err.message
    assert "joining two files" in err.message


def test_a_bom_inside_a_line_is_left_to_the_values(tmp_path: Path) -> None:
    """Only a line's start is where a joined file's BOM lands; the file's own first one is dropped, as always."""
    m = axis_of(tmp_path, "p.txt", b"\xef\xbb\xbfa red fox\nan owl \xef\xbb\xbfat night\n")
    assert [j.params["prompt"] for j in api.plan(m).jobs] == ["a red fox", "an owl \ufeffat night"]


# --- values that read alike ------------------------------------------------------------------------------------------


def test_values_that_differ_only_in_unicode_form_are_refused_as_the_same_job(tmp_path: Path,
                                                                                capsys: pytest.CaptureFixture[str]) -> None:
    """With an output of `{{ hash }}` nothing else told them apart: two jobs with the same-looking key, paid twice."""
    m = axis_of(tmp_path, "dup.txt", "a fox in a caf\u00e9\nan owl\na fox in a cafe\u0301\n".encode())
    assert main(["plan", str(m)]) == 2
    err = capsys.readouterr().err
    assert ("dup.txt:3:1: matrix.p[2]: two jobs would be the same: this value repeats matrix.p[0] (line 1) but for "
            "Unicode form (a letter composed or not) ('a fox in a caf\\u00e9', then 'a fox in a cafe\\u0301'): it "
            "would be rendered and paid twice; write them alike") in err


@pytest.mark.parametrize(("invisible", "name"), [("\u200b", "U+200B"), ("\u2060", "U+2060"), ("\u00ad", "U+00AD"),
                                                 ("\ufeff", "U+FEFF")])
def test_values_that_differ_only_by_an_invisible_character_are_refused(tmp_path: Path, invisible: str,
                                                                       name: str) -> None:
    m = axis_of(tmp_path, "p.txt", f"a red fox\nan owl\na red{invisible} fox\n".encode())
    [err] = errors_of(m)
    assert (Path(err.file).name, err.line, err.field) == ("p.txt", 3, "matrix.p[2]")
    assert f"repeats matrix.p[0] (line 1) but for an invisible {name}" in err.message


def test_values_alike_in_the_manifest_in_rows_and_over_takes_are_refused(tmp_path: Path) -> None:
    m = manifest(tmp_path, 'params:\n  prompt: "{{ look }}"\nmatrix:\n  look: ["caf\\u00e9", "cafe\\u0301"]\n'
                           '  seed: [1, 2]\noutput: "{{ hash }}.mp4"\n')
    [err] = errors_of(m)
    assert (err.line, err.field) == (8, "matrix.look[1]") and "repeats matrix.look[0] (line 8)" in err.message
    assert "in 2 jobs" in err.message  # one error for the jobs it doubles
    (tmp_path / "r.csv").write_text("id,prompt\n1,a caf\u00e9\n2,an owl\n1,a cafe\u0301\n", encoding="utf-8")
    m = manifest(tmp_path, 'params:\n  prompt: "{{ shot.prompt }}"\nmatrix:\n  shot: {file: r.csv}\n'
                           'output: "{{ hash }}.mp4"\n')
    [err] = errors_of(m)
    assert (Path(err.file).name, err.line, err.field) == ("r.csv", 4, "matrix.shot[2]")
    assert "repeats matrix.shot[0] (line 2) but for Unicode form" in err.message
    long = "x" * 60  # values past a key's 40 characters, told apart by their digits
    m = axis_of(tmp_path, "l.txt", f"{long} caf\u00e9\n{long} cafe\u0301\n".encode())
    [err] = errors_of(m)
    assert (err.line, err.field) == (2, "matrix.p[1]") and "but for Unicode form" in err.message


def test_rows_told_apart_by_an_id_whose_requests_read_alike_are_refused_naming_both_rows(tmp_path: Path) -> None:
    """Rows of other ids, whose prompts are one text but for Unicode form or a zero-width space: one render paid
    twice, refused as exact twins are, at the later row, naming the earlier's line, the parameter and what differs;
    keys, hashes and requests stay as written."""
    (tmp_path / "shots.csv").write_text("id,prompt\ns01,caf\u00e9 at dawn\ns02,cafe\u0301 at dawn\ns03,fox at dusk\n"
                                        "s04,fox at dusk\u200b\n", encoding="utf-8")
    m = manifest(tmp_path, 'params:\n  prompt: "{{ shot.prompt }}"\nmatrix:\n  shot: {file: shots.csv}\n'
                           'output: "{{ shot.id }}.mp4"\n')
    errs = errors_of(m)
    assert [(Path(e.file).name, e.line, e.field) for e in errs] == [("shots.csv", 3, "matrix.shot[1]"),
                                                                   ("shots.csv", 5, "matrix.shot[3]")]
    assert ("two jobs would be the same: this row's request repeats that of matrix.shot[0] (line 2) but for Unicode "
            "form (a letter composed or not) in prompt ('caf\\u00e9 at dawn', then 'cafe\\u0301 at dawn'): it would be "
            "rendered and paid twice; write them alike") in errs[0].message, errs[0].message
    assert ("repeats that of matrix.shot[2] (line 4) but for an invisible U+200B in prompt ('fox at dusk', then "
            "'fox at dusk\\u200b')") in errs[1].message, errs[1].message
    (tmp_path / "shots.csv").write_text("id,prompt\ns01,caf\u00e9 at dawn\ns02,cafe\u0301 at dusk\n", encoding="utf-8")
    assert [j.params["prompt"] for j in api.plan(m).jobs] == ["caf\u00e9 at dawn", "cafe\u0301 at dusk"]


def test_values_in_other_forms_that_differ_plan_as_before(tmp_path: Path) -> None:
    """Keys and hashes keep the text as written: only twins are refused."""
    m = axis_of(tmp_path, "p.txt", "a caf\u00e9\na cafe\u0301 bar\nnai\u0308ve\n".encode(), output="{{ key }}.mp4")
    assert [j.key for j in api.plan(m).jobs] == ["p=a caf\u00e9", "p=a cafe\u0301 bar", "p=nai\u0308ve"]


# --- names that read alike -------------------------------------------------------------------------------------------


def test_a_row_column_in_another_unicode_form_is_named_with_escapes(tmp_path: Path) -> None:
    (tmp_path / "hdr.csv").write_text("id,caf\u00e9\n1,a fox\n", encoding="utf-8")
    m = manifest(tmp_path, "params:\n  prompt: \"{{ shot['cafe\u0301'] }}\"\nmatrix:\n  shot: {file: hdr.csv}\n")
    [err] = errors_of(m)
    assert ("hdr.csv) has no column 'cafe\\u0301'; the file has 'caf\\u00e9', the same but for "
            "Unicode form (a letter composed or not): write them alike") in err.message


def test_an_undefined_name_in_another_unicode_form_is_named_with_escapes(tmp_path: Path) -> None:
    m = manifest(tmp_path, "vars:\n  ne\u0301e: x\nparams:\n  prompt: \"{{ n\u00e9e }}\"\n")
    [err] = errors_of(m)
    assert ("'n\\u00e9e' is undefined; 'ne\\u0301e' is defined, the same but for Unicode form (a letter composed or "
            "not): write them alike") in err.message
    m = manifest(tmp_path, "vars:\n  n\u00e9e: x\nparams:\n  prompt: \"{{ nee }}\"\n")
    assert "'nee' is undefined; did you mean 'n\u00e9e'?" in errors_of(m)[0].message


def test_header_columns_equal_but_for_unicode_form_are_refused(tmp_path: Path) -> None:
    (tmp_path / "dupn.csv").write_text("id,caf\u00e9,cafe\u0301\n1,nfc,nfd\n", encoding="utf-8")
    m = manifest(tmp_path, "params:\n  prompt: \"{{ shot.id }}\"\nmatrix:\n  shot: {file: dupn.csv}\n")
    [err] = errors_of(m)
    assert (Path(err.file).name, err.line, err.column) == ("dupn.csv", 1, 1)
    assert ("column names 'caf\\u00e9' and 'cafe\\u0301' are the same but for Unicode form (a letter composed or "
            "not) in the header row") in err.message
    (tmp_path / "k.jsonl").write_text('{"caf\u00e9": 1, "cafe\u0301": 2}\n', encoding="utf-8")
    m = manifest(tmp_path, "params:\n  prompt: \"{{ row | string }}\"\nmatrix:\n  row: {file: k.jsonl}\n")
    [err] = errors_of(m)
    assert (Path(err.file).name, err.line) == ("k.jsonl", 1)
    assert "keys 'caf\\u00e9' and 'cafe\\u0301' are the same but for Unicode form" in err.message


def test_an_input_image_named_in_another_unicode_form_is_pointed_at(tmp_path: Path) -> None:
    """Files copied from macOS often have decomposed names; the manifest names them composed."""
    (tmp_path / "ne\u0301e.png").write_bytes(PNG)
    m = manifest(tmp_path, "params:\n  prompt: alive\n  input_reference: n\u00e9e.png\n  quality: 720p\n")
    [err] = errors_of(m)
    assert "input image 'n\\u00e9e.png' not found" in err.message
    assert ("'ne\\u0301e.png' is there, the same name but for Unicode form (a letter composed or not): rename the "
            "file or write the name so") in err.message


# --- a lone surrogate in a JSONL row -------------------------------------------------------------------------------


def test_a_lone_surrogate_in_a_jsonl_row_is_reported_once_at_its_line(tmp_path: Path,
                                                                       capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "s.jsonl").write_text('{"p": "a"}\n{"p": "b"}\n{"p": "c"}\n{"p": "d \\ud83e"}\n{"p": "e"}\n',
                                      encoding="utf-8")
    m = manifest(tmp_path, 'params:\n  prompt: "{{ row.p }}"\nmatrix:\n  row: {file: s.jsonl}\n  seed: [1]\n')
    assert main(["validate", str(m)]) == 2
    err = capsys.readouterr().err
    assert err.count("error:") == 1
    assert "s.jsonl:4:1: matrix.row[3]: the value of 'p' holds a lone surrogate" in err


# --- the helpers ---------------------------------------------------------------------------------------------------


def test_text_read_alike_is_told_in_words_and_escapes() -> None:
    assert alike("cafe\u0301") == alike("caf\u00e9") == alike("caf\u200b\u00e9") == "caf\u00e9"
    assert alike("a fox") == "a fox" and alike("狐狸") == "狐狸"
    assert escaped("cafe\u0301 caf\u00e9 \ufeff狐 🦊") == "cafe\\u0301 caf\\u00e9 \\ufeff狐 🦊"
    assert unlike("caf\u00e9", "cafe\u0301") == "Unicode form (a letter composed or not)"
    assert unlike("a fox", "a\u200b fox") == "an invisible U+200B"
    assert unlike("caf\u00e9", "cafe\u0301\u00ad") == "Unicode form (a letter composed or not) and an invisible U+00AD"


@pytest.mark.parametrize("joiner", ["\u200c", "\u200d"], ids=["ZWNJ", "ZWJ"])
def test_values_that_differ_by_a_joiner_are_two_jobs(tmp_path: Path, joiner: str) -> None:
    """A zero width joiner or non-joiner changes what is drawn (an emoji family as one glyph, a Persian word's
    letters kept apart): two values that differ by one are two prompts, not twins."""
    m = axis_of(tmp_path, "p.txt", f"a \U0001f468{joiner}\U0001f469 family\na \U0001f468\U0001f469 family\n".encode(),
                output="{{ hash }}.mp4")
    assert len(api.plan(m).jobs) == 2


ENGLAND, SCOTLAND, WALES = ("\U0001f3f4" + "".join(chr(0xE0000 + ord(c)) for c in tag) + "\U000e007f"
                            for tag in ("gbeng", "gbsct", "gbwls"))


def test_the_flags_of_emoji_tag_sequences_are_three_jobs(tmp_path: Path) -> None:
    """England, Scotland and Wales are a black flag and tag characters: format characters, but drawn, each its
    own flag; so are the marks written before a number (the Arabic number sign U+0600, the end of ayah U+06DD)."""
    m = manifest(tmp_path, f"""\
        params: {{prompt: "a football crowd waving {{{{ flag }}}} flags", quality: 540p, duration: 5}}
        matrix:
          flag: ["{ENGLAND}", "{SCOTLAND}", "{WALES}"]
        output: "{{{{ index }}}}.mp4"
        """)
    assert [j.params["prompt"] for j in api.plan(m).jobs] == [f"a football crowd waving {f} flags" for f in (ENGLAND, SCOTLAND, WALES)]
    m = axis_of(tmp_path, "p.txt", f"{ENGLAND} fans cheer\n{SCOTLAND} fans cheer\n\u06dd12\n12\n\u0600\u0661\n\u0661\n"
                .encode())
    assert len(api.plan(m).jobs) == 6
    (tmp_path / "p.txt").write_text("a\u200bb\nab\n", encoding="utf-8")
    [err] = errors_of(m)
    assert "but for an invisible U+200B" in err.message


def test_a_tag_character_outside_an_emoji_flag_is_invisible(tmp_path: Path) -> None:
    """A tag character draws a flag only after a black flag; after a letter (a language tag some sources paste) it
    shows nothing, and two values that differ by one are the same job twice. A flag and the bare black flag stay
    apart."""
    m = axis_of(tmp_path, "p.txt", "a red fox\na red\U000e0041 fox\n".encode())
    [err] = errors_of(m)
    assert "but for an invisible U+E0041" in err.message
    (tmp_path / "p.txt").write_text(f"{ENGLAND} fans\n{ENGLAND}\U000e0041 fans\n", encoding="utf-8")
    [err] = errors_of(m)  # a tag after the flag's cancel tag draws nothing
    assert err.line == 2 and "but for an invisible U+E0041" in err.message
    (tmp_path / "p.txt").write_text(f"{ENGLAND} fans\n\U0001f3f4 fans\n", encoding="utf-8")
    assert len(api.plan(m).jobs) == 2


def test_values_unlike_name_only_the_invisible_characters_one_holds_more_of() -> None:
    assert unlike("a\u200bb\u2060", "ab\u2060") == "an invisible U+200B"
    assert unlike(["a\ufeff", "b\u200b"], ["a", "b\u200b"]) == "an invisible U+FEFF"
    assert unlike("a\u200bb", "ab\u200b") == "an invisible U+200B"


def test_a_twin_of_an_include_value_is_written_once_with_its_escapes(tmp_path: Path) -> None:
    """The value repeated is written as the values after it are, `'caf\\u00e9'`, not with its backslashes doubled."""
    m = manifest(tmp_path, """\
        params: {prompt: "{{ w }} at dawn", quality: 540p, duration: 5}
        matrix:
          w: ["tea"]
          include:
            - {w: "caf\\u00e9"}
            - {w: "cafe\\u0301"}
        output: "{{ hash }}.mp4"
        """)
    [err] = errors_of(m)
    assert "repeats the value 'caf\\u00e9' of matrix.include[0].w but for Unicode form" in err.message, err.message
    assert "\\\\" not in err.message


def test_a_letter_nfc_writes_as_another_is_escaped_whole() -> None:
    """A Hangul syllable written as its jamo (letters, not marks) and a long s with its marks read as the composed
    letter: each of their characters is escaped, or the twin error's two values print alike."""
    assert escaped("\u1112\u1161\u11ab") == "\\u1112\\u1161\\u11ab" and escaped("\ud55c") == "\\ud55c"
    assert escaped("\u017f\u0323\u0307") == "\\u017f\\u0323\\u0307"
    assert escaped("\u72d0 \u1112\u1161") == "\u72d0 \\u1112\\u1161"  # 하 as jamo composes too
    assert escaped("\u1100 \u017f") == "\u1100 \u017f"  # alone, nothing composes with them


def test_a_twin_written_in_hangul_jamo_is_named_with_escapes(tmp_path: Path) -> None:
    m = manifest(tmp_path, """\
        params: {prompt: "{{ p }}", quality: 540p, duration: 5}
        matrix:
          p: ["\\uD55C", "\\u1112\\u1161\\u11AB", "\\u1E9B\\u0323", "\\u017F\\u0323\\u0307"]
        output: "{{ hash }}.mp4"
        """)
    first, second = errors_of(m)
    assert "('\\ud55c', then '\\u1112\\u1161\\u11ab')" in first.message, first.message
    assert "('\\u1e9b\\u0323', then '\\u017f\\u0323\\u0307')" in second.message, second.message


def test_texts_that_differ_only_in_white_space_at_line_ends_are_told_how() -> None:
    """Texts equal line by line (`spaced`) are told apart in words: line ends, the final line break, the spaces at a
    line's end, each with the line it is at."""
    from runner.textforms import spaced, unspaced, unspaced_value

    assert spaced("a b \nc") == spaced("a b\nc\n") == spaced("a b\r\nc\r\n") == "a b\nc"
    assert spaced("a\n\nb") != spaced("a\nb")  # an empty line between is not white space at a line's end
    assert unspaced("a b \nc", "a b\nc\n") == ["a final line break added", "trailing spaces removed (line 1)"]
    assert unspaced("a\nb\n", "a\r\nb\r\n") == ["CRLF line ends (LF line ends then)"]
    assert unspaced("a\nb\nc", "a\r\nb\nc") == ["CRLF line ends in places (LF line ends then)"]
    assert unspaced("a\n\n", "a") == ["final line breaks removed"]
    assert unspaced("a\nb\nc", "a \nb\t\nc ") == ["trailing spaces added (lines 1, 2, 3)"]
    assert unspaced_value({"p": "x \ny", "q": 1}, {"p": "x\ny", "q": 1}) == ["trailing spaces removed (line 1)"]


def test_spaces_between_words_of_a_line_are_white_space_and_said_so() -> None:
    then, now = "a red fox  running\tin the snow,\nat  dawn", "a red fox running in the snow,\nat dawn"
    assert textforms.spaced(then) == textforms.spaced(now)
    assert textforms.unspaced(then, now) == ["spaces inside lines 1, 2 changed"]
    assert textforms.spaced("  indented") != textforms.spaced("indented")  # a line's start is not between words
    assert textforms.window("a red fox  running in the snow", "a red fox running in the snow") == (
        "a red fox  running in the s…", "a red fox running in the s…")


def test_a_no_break_space_for_a_space_is_white_space_named_so() -> None:
    """U+00A0, U+202F, U+2007, U+2009 (Unicode's space separators) read as a space: `spaced` makes them one, and
    `unspaced` names the one that differs, in a long text too, not as spaces inside a line changed."""
    assert textforms.spaced("10\u202f000\u00a0km") == textforms.spaced("10 000 km") == "10 000 km"
    assert textforms.unspaced("a\u00a0b", "a b") == ["a no-break space U+00A0 then, a space now"]
    assert textforms.unspaced("a b c", "a\u2009b\u2009c") == ["a space then, the thin space U+2009 now"]
    assert textforms.print_alike("short\u00a0one", "short one") and not textforms.print_alike("a b", "a  b")
