"""Data files are read a piece at a time: the values, their lines and the errors are those of the file read whole,
and a file past the cap of jobs is refused without being read to its end."""

from __future__ import annotations

import csv
import io
import json
import os
import tempfile
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import hypothesis
import pytest
from hypothesis import strategies as st

from runner import api, datafiles, matrix, yamlsource
from runner.errors import ManifestError, ManifestErrors
from runner.textforms import alike, escaped, unlike
from runner.yamlsource import kind, read_text

HEAD = "version: 1\nname: fox\nmodel: pixverse-v5.6\n"


# --- the reader of a data file read whole, as it was: the reference --------------------------------------------


def _whole_lines(text: str) -> list[str]:
    return text.split("\n") if "\n" in text or "\r" not in text else text.split("\r")


def _whole_text(text: str, problems: list[Any], where: list[Any]) -> list[Any]:
    values: list[Any] = []
    for number, line in enumerate(_whole_lines(text), 1):
        value = line.strip()
        if value and not value.startswith("#"):
            values.append(value)
            where.append((number, len(line) - len(line.lstrip()) + 1))
    return values


def _whole_jsonl(text: str, problems: list[Any], where: list[Any]) -> list[Any]:
    values: list[Any] = []
    for number, line in enumerate(_whole_lines(text), 1):
        stripped = line.strip()
        if not stripped or stripped[0] == "#":  # a comment, as in a .txt file
            continue
        indent = len(line) - len(line.lstrip())
        try:
            value = json.loads(stripped, parse_constant=datafiles._reject_constant,
                               object_pairs_hook=datafiles._unique_keys)
        except json.JSONDecodeError as exc:
            problems.append((number, indent + exc.colno, f"not valid JSON: {exc.msg}"))
        except (ValueError, RecursionError) as exc:
            problems.append((number, indent + 1, f"not valid JSON: {exc}"))
        else:
            if isinstance(value, dict):
                values.append(value)
                where.append((number, indent + 1))
            else:
                problems.append((number, indent + 1, f"expected a JSON object on each line, got {kind(value)}"))
        if len(problems) >= 10:
            break
    return values


def _whole_csv(text: str, problems: list[Any], where: list[Any]) -> list[Any]:
    reader = csv.reader(io.StringIO(text, newline=""))
    header: list[str] | None = None
    rows: list[Any] = []
    start = 1
    try:
        for row in reader:
            line, start = start, reader.line_num + 1
            if not row:
                continue
            if header is None:
                header = [name.strip() for name in row]
                width = len(header)
                while width > 1 and not header[width - 1]:
                    width -= 1
                seen: dict[str, str] = {}
                for index, name in enumerate(header[:width]):
                    if not name:
                        problems.append((line, 1, f"column {index + 1} of the header row has no name"))
                    elif name in seen.values():
                        problems.append((line, 1, f"column name '{name}' appears twice in the header row"))
                    elif (twin := seen.get(alike(name))) is not None:
                        problems.append((line, 1, (f"column names '{escaped(twin)}' and '{escaped(name)}' are the "
                                                   f"same but for {unlike(twin, name)} in the header row: a row "
                                                   "would have two columns that read alike; keep one")))
                    if name:
                        seen.setdefault(alike(name), name)
                continue
            if not width <= len(row) <= len(header):
                problems.append((line, 1, (f"this row has {len(row)} field{'' if len(row) == 1 else 's'} but the "
                                          f"header row has {len(header)}")))
                if len(problems) >= 10:
                    break
                continue
            if any(cell.strip() for cell in row[width:]):
                extra = next(at for at in range(width, len(row)) if row[at].strip())
                problems.append((line, 1, (f"this row has a value in column {extra + 1}, which has no name in the "
                                          "header row: name the column there, or delete the value")))
                if len(problems) >= 10:
                    break
                continue
            row = row[:width]
            if [cell.strip() for cell in row] == header[:len(row)]:
                problems.append((line, 1, "this row repeats the header row (two files joined?): delete it"))
                if len(problems) >= 10:
                    break
            rows.append(dict(zip(header, row)))
            where.append((line, 1))
    except csv.Error as exc:
        problems.append((reader.line_num, 1, f"not valid CSV: {exc}"))
        return rows
    try:
        for _ in csv.reader(io.StringIO(text, newline=""), strict=True):
            pass
    except csv.Error as exc:
        if "unexpected end of data" in str(exc):
            open_at, inside = 1, False
            for number, line in enumerate(text.split("\n"), 1):
                for ch in line:
                    if ch == '"':
                        inside = not inside
                        if inside:
                            open_at = number
            problems.append((open_at, 1, ("not valid CSV: a quoted field is never closed (its \" runs to the end "
                                          "of the file)")))
    return rows


_WHOLE = {".txt": _whole_text, ".jsonl": _whole_jsonl, ".csv": _whole_csv}


def _refused_whole(text: str, path: Path) -> tuple[int, int, str] | None:
    """A NUL, or a byte order mark at the start of a line, in a data file's text read whole: the first one, at
    its line (counted at LFs, or at CRs when none is before it) and column, as the reader refuses it."""
    found = [at for at, ch in enumerate(text)
             if ch == "\x00" or (ch == "\ufeff" and (at == 0 or text[at - 1] in "\r\n"))]
    if not found:
        return None
    at = found[0]
    before = text[:at]
    end = "\n" if "\n" in before else "\r"
    line, column = before.count(end) + 1, at - before.rfind(end)
    if text[at] == "\ufeff":
        return (line, column, ("a byte order mark (U+FEFF) at the start of this line, most often left by joining two "
                               "files that each began with one: remove it (it is invisible, and the line's value would "
                               "hold it)"))
    encoding = datafiles._utf16(path)
    if encoding is not None:
        return (line, column, (f"a NUL byte: this looks like {encoding[:6]} text; save the file as UTF-8 (iconv -f {encoding} "
                               "-t UTF-8)"))
    return (line, column, ("a NUL byte (U+0000), which no value may hold; remove it (a file that holds one is often "
                           "not text, or damaged)"))


def _read_whole(path: Path) -> tuple[Any, ...]:
    """What a data file gave when it was read whole: its values and their lines, or its errors."""
    try:
        text = read_text(path)
    except ManifestError as exc:
        message = exc.message
        if message.startswith("a NUL byte: "):  # UTF-16 as a manifest's reader says it; a data file's, below
            text = path.read_bytes().removeprefix(b"\xef\xbb\xbf").decode("utf-8")
        else:
            encoding = datafiles._utf16(path)
            if encoding is not None and f"looks like {encoding[:6]}" not in message:
                message = (f"{message.removesuffix('; save the file as UTF-8')}; this looks like {encoding[:6]} text: save "
                           f"the file as UTF-8 (iconv -f {encoding} -t UTF-8)")
            return ("error", [(exc.line, exc.column, message)])
    refused = _refused_whole(text, path)
    if refused is not None:
        return ("error", [refused])
    problems: list[Any] = []
    where: list[Any] = []
    values = _WHOLE[path.suffix](text, problems, where)
    if problems:
        return ("error", problems[:10])
    if not values:
        return ("empty",)
    return ("values", values, where)


def _read_streamed(path: Path) -> tuple[Any, ...]:
    reader = datafiles._FileReader({}, path.parent / "m.yaml", path.parent)
    values = reader._read(path.name, ("matrix", "v"))
    if values is None:
        if any("holds no values" in e.message for e in reader.errors):
            return ("empty",)
        return ("error", [(e.line, e.column, e.message) for e in reader.errors])
    return ("values", values, list(reader.lines[("matrix", "v")].positions))


_PIECES = [b"a", b" ", b"\t", b"#", b"\r", b"\n", b"\r\n", b",", b'"', b"{", b"}", b":", b"1", b"[", b"]",
           b'"p"', "é".encode(), "\u2028".encode(), "日".encode(), b"\xef\xbb\xbf", b"\xff", b"\xc3",
           b"\x00"]


@hypothesis.settings(max_examples=600, deadline=None)
@hypothesis.given(pieces=st.lists(st.sampled_from(_PIECES), max_size=30), bom=st.booleans(),
                  chunk=st.sampled_from([1, 2, 3, 5, 8, 1 << 20]))
def test_a_data_file_read_in_pieces_gives_what_it_gave_read_whole(pieces: list[bytes], bom: bool, chunk: int) -> None:
    """LF, CRLF and lone-CR lines, blank lines and comments, a BOM, characters of several bytes cut between two
    pieces, bytes that are not UTF-8, NULs and BOMs after the first: the same values (job keys depend on them), lines and errors, byte for byte."""
    data = (b"\xef\xbb\xbf" if bom else b"") + b"".join(pieces)
    with tempfile.TemporaryDirectory() as folder, pytest.MonkeyPatch.context() as patch:
        patch.setattr(yamlsource, "READ_CHUNK", chunk)
        for suffix in (".txt", ".jsonl", ".csv"):
            path = Path(folder) / f"d{suffix}"
            path.write_bytes(data)
            assert _without_comma_hint(_read_streamed(path)) == _read_whole(path), (suffix, data)


def _without_comma_hint(read: tuple[Any, ...]) -> tuple[Any, ...]:
    """A reading's errors with the hint of a CSV row of too many fields left out (to quote a cell holding a comma,
    at that comma), which the whole reading here does not make."""
    if read[0] != "error":
        return read
    return ("error", [(line, 1, message.split("; a cell holding a comma")[0]) if "fields but the header" in message
                      else (line, column, message) for line, column, message, *_ in read[1]])


@pytest.mark.parametrize("chunk", [1, 2, 7, 1 << 20])
def test_a_byte_that_is_not_utf8_is_at_the_line_and_column_it_was(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                   chunk: int) -> None:
    monkeypatch.setattr(yamlsource, "READ_CHUNK", chunk)
    path = tmp_path / "d.txt"
    for data in (b"\xef\xbb\xbfab\ncd\xe9x\n", b"abc\n\xf0\x9f\x98", "été\nun é \xff".encode("latin-1"),
                 b"a\r\nb\xc3\r\n"):
        path.write_bytes(data)
        with pytest.raises(ManifestError) as whole:
            read_text(path)
        with pytest.raises(ManifestError) as pieces:
            "".join(yamlsource.text_chunks(path))
        assert (pieces.value.line, pieces.value.column, pieces.value.message) == \
            (whole.value.line, whole.value.column, whole.value.message), data


def _zip(compression: int, members: dict[str, str] | None = None) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression) as z:
        for name, text in (members or {"xl/workbook.xml": "<workbook>" + "x" * 5_000 + "</workbook>"}).items():
            z.writestr(name, text)
    return buffer.getvalue()


_TYPES = ('<Types><Override PartName="/book.xml" ContentType="application/vnd.openxmlformats-officedocument.'
          'spreadsheetml.sheet.main+xml"/></Types>')


@pytest.mark.parametrize(("data", "what"), [
    (_zip(zipfile.ZIP_DEFLATED), "a ZIP file: .xlsx"),  # a byte that is not UTF-8 comes first
    (_zip(zipfile.ZIP_STORED, {"[Content_Types].xml": _TYPES, "book.xml": "<w/>"}), "a ZIP file: .xlsx"),  # a NUL
    (_zip(zipfile.ZIP_STORED, {"mimetype": "application/vnd.oasis.opendocument.spreadsheet",
                               "content.xml": "x" * 5_000}), "a ZIP file: .ods"),
    (_zip(zipfile.ZIP_DEFLATED, {"Index/Document.iwa": "x" * 5_000}), "a ZIP file: .numbers"),
    (_zip(zipfile.ZIP_DEFLATED, {"[Content_Types].xml": _TYPES, "book.xml": "x" * 5_000})[:-30],
     "a ZIP file: .xlsx"),  # cut short: told by its first local header, inflated
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 504, "an OLE file: .xls"),
])
@pytest.mark.parametrize("suffix", [".csv", ".txt"])
def test_a_spreadsheet_workbook_given_as_a_data_file_is_told_as_one(tmp_path: Path, data: bytes, what: str,
                                                                     suffix: str) -> None:
    """An .xlsx, .ods, .numbers or .xls saved or renamed where its CSV export was meant: not told as "not UTF-8
    text" at a byte of it, which sent the user looking for an encoding, but as the workbook it is."""
    (tmp_path / f"d{suffix}").write_bytes(data)
    path = tmp_path / "m.yaml"
    path.write_text(HEAD + f"params: {{prompt: a fox}}\nmatrix:\n  look: {{file: d{suffix}}}\n")
    error = _error(path)
    assert (error.file, error.line, error.column, error.field) == (tmp_path / f"d{suffix}", 1, 1, "matrix.look")
    read_as = "CSV" if suffix == ".csv" else "text"
    assert error.message == (f"this file looks like a spreadsheet workbook ({what}), not {read_as}: save the sheet as "
                             "CSV UTF-8 (in Excel: File > Save As > CSV UTF-8 (Comma delimited)) and name that .csv "
                             "file in file:"), error


@pytest.mark.parametrize("data", [
    _zip(zipfile.ZIP_DEFLATED, {"shots.csv": "id,look\n" + "a,red\n" * 500}),  # a .zip renamed: a byte not UTF-8
    _zip(zipfile.ZIP_STORED, {"shots.csv": "id,look\na,red\n"}),  # a NUL first
    _zip(zipfile.ZIP_STORED, {"[Content_Types].xml": _TYPES.replace("spreadsheetml.sheet", "wordprocessingml.document"),
                              "word/document.xml": "<w/>"}),  # a .docx
    _zip(zipfile.ZIP_STORED, {"mimetype": "application/vnd.oasis.opendocument.text", "content.xml": "<t/>"}),
    b"PK\x03\x04\x14\x00" + b"\x00" * 24 + b"[Content_Types].xml",  # no member named
])
def test_a_zip_file_that_is_no_workbook_is_told_as_a_zip_archive(tmp_path: Path, data: bytes) -> None:
    """A ZIP file given as a data file is called a workbook only where its members make it one: a zipped CSV, a
    Word document, an OpenDocument text is a ZIP archive, to unzip, not a sheet to save as CSV."""
    (tmp_path / "d.csv").write_bytes(data)
    path = tmp_path / "m.yaml"
    path.write_text(HEAD + "params: {prompt: a fox}\nmatrix:\n  look: {file: d.csv}\n")
    error = _error(path)
    assert (error.file, error.line, error.column, error.field) == (tmp_path / "d.csv", 1, 1, "matrix.look")
    assert error.message == ("this file is a ZIP archive, not CSV (nor a spreadsheet workbook): a data file is read "
                             "as UTF-8 text; if the archive holds the file meant, unzip it and name that file in "
                             "file:"), error


@pytest.mark.parametrize(("spec", "hint"), [
    ("~/shots.csv", "~ is not expanded: it is no home folder here"),
    ("~root/shots.csv", "~root is not expanded: it is not root's home folder here"),
])
def test_a_data_file_path_from_a_home_folder_is_told_the_path_it_would_be(tmp_path: Path, spec: str,
                                                                          hint: str) -> None:
    """`~/shots.csv` and `~root/shots.csv` as a shell reads them: not expanded here (a path is relative to the
    manifest), said so with the absolute path they would be; a name starting with ~ of no user is not."""
    path = tmp_path / "m.yaml"
    path.write_text(HEAD + f"params: {{prompt: a fox}}\nmatrix:\n  look: {{file: '{spec}'}}\n")
    error = _error(path)
    assert error.message == (f"data file '{spec}': no such file (looked for {tmp_path / spec}): {hint}, and paths "
                             "are relative to the manifest's folder; write the absolute path "
                             f"({os.path.expanduser(spec)}), or one relative to the manifest"), error
    path.write_text(HEAD + "params: {prompt: a fox}\nmatrix:\n  look: {file: '~no-such-user-here/shots.csv'}\n")
    assert _error(path).message.endswith(f"(looked for {tmp_path / '~no-such-user-here/shots.csv'})")


# --- a data file past the cap ----------------------------------------------------------------------------------


def _counting(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The characters every reading of a data file took, counted."""
    taken: list[int] = []
    real = datafiles.text_chunks

    def counted(path: Path) -> Iterator[str]:
        taken.append(0)
        for chunk in real(path):
            taken[-1] += len(chunk)
            yield chunk

    monkeypatch.setattr(datafiles, "text_chunks", counted)
    monkeypatch.setattr(yamlsource, "READ_CHUNK", 4096)
    return taken


def _error(path: Path, **kw: Any) -> ManifestError:
    with pytest.raises((ManifestError, ManifestErrors)) as caught:
        api.plan(path, **kw)
    errors = caught.value.errors if isinstance(caught.value, ManifestErrors) else [caught.value]
    assert len(errors) == 1, errors
    return errors[0]


@pytest.mark.parametrize("suffix", [".txt", ".jsonl", ".csv"])
def test_a_data_file_past_the_cap_is_refused_before_it_is_read_whole(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                     suffix: str) -> None:
    """The cap the manifest sets (not the limit of ten million) is named, at the axis's `file:`; the file is read
    no further than its values past the cap (and, here, the early refusal's margin, made 0)."""
    monkeypatch.setattr(datafiles, "EARLY_REFUSAL", 0)
    taken = _counting(monkeypatch)
    rows = {".txt": (f"a fox {i}\n" for i in range(50_000)),
            ".jsonl": (f'{{"p": "a fox {i}"}}\n' for i in range(50_000)),
            ".csv": ("p\n", *(f"a fox {i}\n" for i in range(50_000)))}[suffix]
    data = tmp_path / f"d{suffix}"
    data.write_text("".join(rows))
    path = tmp_path / "m.yaml"
    path.write_text(HEAD + f"params: {{prompt: a fox}}\nmatrix:\n  look: {{file: d{suffix}}}\n"
                           "  exclude: [{look: x}]\nrun: {max_jobs: 10}\n")
    error = _error(path)
    assert (error.line, error.column, error.field) == (6, 10, "matrix.look.file")
    line = 12 + (suffix == ".csv")
    assert error.message == (f"data file 'd{suffix}' holds more than 11 values (read up to its line {line}): the "
                             "plan would have at least 11 jobs, above the cap of 10; check the file, or raise the "
                             "cap with --max-jobs or run.max_jobs")
    assert taken and max(taken) <= 2 * 4096 < data.stat().st_size / 10
    error = _error(path, max_jobs=20)
    assert "holds more than 21 values" in error.message and "above the cap of 20 (--max-jobs 20)" in error.message


def test_a_data_file_past_the_limit_names_the_limit_when_the_cap_is_above_it(tmp_path: Path,
                                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(datafiles, "MAX_VALUES", 100)
    taken = _counting(monkeypatch)
    (tmp_path / "d.txt").write_text("".join(f"a fox {i}\n" for i in range(50_000)))
    path = tmp_path / "m.yaml"
    path.write_text(HEAD + "params: {prompt: \"{{ look }}\"}\nmatrix:\n  look: {file: d.txt}\nrun: {max_jobs: 1000}\n")
    assert _error(path).message == ("data file 'd.txt' holds more than 100 values (read up to its line 101); the "
                                    "limit is 100")
    assert max(taken) <= 2 * 4096


def test_a_data_file_a_little_over_the_cap_is_refused_with_the_plans_count(tmp_path: Path) -> None:
    (tmp_path / "d.txt").write_text("".join(f"a fox {i}\n" for i in range(15)))
    path = tmp_path / "m.yaml"
    path.write_text(HEAD + "params: {prompt: \"{{ look }}\"}\nmatrix:\n  look: {file: d.txt}\nrun: {max_jobs: 10}\n")
    assert "this manifest plans 15 jobs, above the cap of 10" in _error(path).message


def test_a_manifest_loaded_but_not_planned_reads_its_data_files_whole(tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """`status` and `report` load a manifest run with a --max-jobs above its own cap: its data files still read."""
    monkeypatch.setattr(datafiles, "EARLY_REFUSAL", 0)
    (tmp_path / "d.txt").write_text("".join(f"a fox {i}\n" for i in range(50)))
    path = tmp_path / "m.yaml"
    path.write_text(HEAD + "params: {prompt: \"{{ look }}\"}\nmatrix:\n  look: {file: d.txt}\nrun: {max_jobs: 10}\n")
    assert len(api.load(path).matrix["look"]) == 50
    assert len(api.plan(path, max_jobs=50).jobs) == 50


def test_a_range_past_the_limit_names_the_cap_when_the_cap_is_lower(tmp_path: Path) -> None:
    path = tmp_path / "m.yaml"
    path.write_text(HEAD + "params: {prompt: a fox}\nmatrix:\n  seed: {range: [1, 20000000]}\nrun: {max_jobs: 1000}\n")
    message = _error(path).message
    assert "range has 20,000,000 values; the plan would have at least 20,000,000 jobs, above the cap of 1,000" \
        in message and "10,000,000" not in message


def test_the_data_files_limits_are_the_matrixs() -> None:
    assert (datafiles.MAX_VALUES, datafiles.EARLY_REFUSAL) == (matrix.MAX_COMBINATIONS, matrix.EARLY_REFUSAL)


# --- a line longer than a value can be --------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", [".txt", ".jsonl", ".csv"])
@pytest.mark.parametrize(("text", "line"), [
    ("a" * 300_000, 1),                                      # no line break at all
    ("a fox\r" * 3 + "a" * 300_000, 4),                      # lines ending at CRs alone, then none
    ("a fox\nan owl\n" + "a" * 300_000 + "\nlast\n", 3),    # a line too long amid short ones
])
def test_a_data_file_line_longer_than_the_bound_is_refused_at_its_line_read_no_further(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, suffix: str, text: str, line: int
) -> None:
    """Planned before as one value (a prompt of 50 MB), a file without line breaks read whole into memory: now
    refused at the data file's line, having read no more than the bound and a piece or two of the file."""
    monkeypatch.setattr(datafiles, "MAX_LINE", 10_000)
    taken = _counting(monkeypatch)
    if suffix == ".csv":
        text = "p\n" + text
        line += 1
    elif suffix == ".jsonl":
        text = text.replace("a fox", '{"p": 1}').replace("an owl", '{"p": 2}').replace("last", '{"p": 3}')
    (tmp_path / f"d{suffix}").write_text(text)
    path = tmp_path / "m.yaml"
    path.write_text(HEAD + f"params: {{prompt: a fox}}\nmatrix:\n  look: {{file: d{suffix}}}\n")
    error = _error(path)
    assert (error.file, error.line, error.column, error.field) == (tmp_path / f"d{suffix}", line, 1, "matrix.look")
    assert error.message.startswith("this line is longer than 10,000 characters, the most a data file's line may hold")
    assert taken and max(taken) <= 10_000 + 3 * 4096 < len(text) / 10


@pytest.mark.parametrize("suffix", [".txt", ".csv"])
def test_a_data_file_line_of_the_bound_is_a_value(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, suffix: str) -> None:
    monkeypatch.setattr(datafiles, "MAX_LINE", 10_000)
    monkeypatch.setattr(yamlsource, "READ_CHUNK", 4096)
    header = "p\n" if suffix == ".csv" else ""
    (tmp_path / f"d{suffix}").write_text(header + "a" * 9_999 + "\n" + "b" * 10_000)
    path = tmp_path / "m.yaml"
    path.write_text(HEAD + f"params: {{prompt: a fox}}\nmatrix:\n  look: {{file: d{suffix}}}\n")
    values = api.load(path).matrix["look"]
    assert [len(v if suffix == ".txt" else v["p"]) for v in values] == [9_999, 10_000]


def test_a_csv_cell_longer_than_the_csv_modules_limit_is_read_up_to_the_line_bound(tmp_path: Path) -> None:
    """The csv module refused a cell of more than 131,072 characters ("field larger than field limit"), in a
    column no template reads too, where the same row in JSONL planned: a cell takes what a line may hold. The
    module's limit, the whole process's, is as it was after the reading."""
    before = csv.field_size_limit()
    notes = "a long script line. " * 7_000
    with (tmp_path / "d.csv").open("w", newline="", encoding="utf-8") as f:
        csv.writer(f).writerows([["id", "prompt", "notes"], ["a", "a red fox", "short"], ["b", "a blue fox", notes]])
    path = tmp_path / "m.yaml"
    path.write_text(HEAD + 'params: {prompt: "{{ r.prompt }}"}\nmatrix:\n  r: {file: d.csv}\noutput: "{{ r.id }}.mp4"\n')
    p = api.plan(path)
    assert [j.params["prompt"] for j in p.jobs] == ["a red fox", "a blue fox"]
    assert dict(p.jobs[1].values)["r"]["notes"] == notes
    assert csv.field_size_limit() == before


def test_a_csv_cell_longer_than_a_line_may_be_is_refused_at_its_rows_first_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A quoted cell over several lines, each within the bound, all of them past it: said in gridrun's words at the
    row, not as the csv module's limit at the line where it was crossed."""
    monkeypatch.setattr(datafiles, "MAX_LINE", 10_000)
    before = csv.field_size_limit()
    cell = "\n".join(["x" * 6_000] * 3)
    (tmp_path / "d.csv").write_text(f'id,p\na,fox\nb,"{cell}"\nc,owl\n', encoding="utf-8")
    path = tmp_path / "m.yaml"
    path.write_text(HEAD + 'params: {prompt: "{{ r.p }}"}\nmatrix:\n  r: {file: d.csv}\n')
    error = _error(path)
    assert (error.file, error.line, error.column, error.field) == (tmp_path / "d.csv", 3, 1, "matrix.r[1]"), error
    assert error.message.startswith("a cell of this row is longer than 10,000 characters, the most a data file's "
                                    "value may hold"), error
    assert "field limit" not in error.message
    assert csv.field_size_limit() == before


@pytest.mark.parametrize("chunk", [4096, 10_000, 10_001, 10_002])
@pytest.mark.parametrize("end", ["\n", "\r\n", "\r"])
@pytest.mark.parametrize("suffix", [".txt", ".jsonl", ".csv"])
def test_the_bound_is_of_a_lines_value_not_its_end(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, suffix: str, end: str, chunk: int
) -> None:
    """A line of the bound was refused with CRLF endings, and in any CSV, its end counted as a character of it."""
    monkeypatch.setattr(datafiles, "MAX_LINE", 10_000)
    monkeypatch.setattr(yamlsource, "READ_CHUNK", chunk)

    def line(length: int) -> str:
        return f'{{"p": "{"a" * (length - 9)}"}}' if suffix == ".jsonl" else "a" * length

    b = '{"p": 1}' if suffix == ".jsonl" else "b"
    header = "p" + end if suffix == ".csv" else ""
    path = tmp_path / "m.yaml"
    path.write_text(HEAD + f"params: {{prompt: a fox}}\nmatrix:\n  look: {{file: d{suffix}}}\n")
    for last in (b + end, b):
        (tmp_path / f"d{suffix}").write_bytes((header + line(10_000) + end + last).encode())
        values = api.load(path).matrix["look"]
        assert len(values) == 2 and len(json.dumps(values[0])) >= 10_000 - 9
        (tmp_path / f"d{suffix}").write_bytes((header + b + end + line(10_000) + end + last).encode())
        assert len(api.load(path).matrix["look"]) == 3
    for text, at in ((line(10_001) + end + b + end, 1), (b + end + line(10_001), 2), (b + end + line(10_001) + end, 2)):
        (tmp_path / f"d{suffix}").write_bytes((header + text).encode())
        error = _error(path)
        assert (error.line, error.field) == (at + bool(header), "matrix.look"), error
        assert error.message.startswith("this line is longer than 10,000 characters")
