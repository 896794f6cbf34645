"""Matrix axes read from data files: `{file: styles.txt}` (one value per line), `.csv` (a mapping per row,
named by the header) and `.jsonl` (a JSON object per line). A problem names the data file's line."""

from __future__ import annotations

import csv
import io
import json
import os
import re
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NamedTuple

from runner.errors import ManifestError
from runner.localpaths import home_unexpanded, unnameable
from runner.localpaths import shown as shown_path
from runner.textforms import alike, escaped, unlike
from runner.yamlsource import (
    LINE_BREAK,
    UTF16_SNIFF,
    Position,
    dotted,
    kind,
    locate,
    long_number,
    raise_all,
    text_chunks,
    utf16,
)

MAX_VALUES = 10_000_000
"""The most values a data file may give an axis: a matrix's limit of combinations (`matrix.MAX_COMBINATIONS`)."""
EARLY_REFUSAL = 100_000
"""A data file is read no further than this many values past what the cap allows (`matrix.EARLY_REFUSAL`): a
file a little over the cap is read whole, and refused with the plan's count of jobs."""

MAX_LINE = 1_000_000
"""The most characters a data file's line may hold. A line is one value (a prompt, a CSV row, a JSON object of a
few fields), and the longest prompt any provider takes is 32,000 characters (OpenAI's; PixVerse's far less): a
line 30 times that leaves room for a row of several such fields, and one longer is a file that is not one value a
line (a binary or a minified dump saved as .txt). A line is read no further than this and one piece of the file,
so such a file is refused with a small memory, not read whole; the template limit (ten million characters)
stays ten times above it."""

DATA_FILE_TYPES = (".txt", ".csv", ".jsonl")
FORMULA_ERRORS = frozenset(("#REF!", "#N/A", "#VALUE!", "#NAME?", "#DIV/0!", "#NUM!", "#NULL!", "#SPILL!", "#CALC!",
                            "#ERROR!", "#GETTING_DATA", "Loading..."))
"""What Excel and Google Sheets write in a cell whose formula failed (or, for the last two, is not worked out yet),
when the sheet is exported: never a value anyone meant to send."""
_EMPTY_ROWS_SHOWN = 5
Problem = tuple[int, int, str] | tuple[int, int, str, int]
"""A problem of a data file: its line, column and message, and the index of the value it is about when it is one
value's (an error then names it: `matrix.row[3]`)."""
_MAX_ERRORS_PER_DATA_FILE = 10


class Flagged(NamedTuple):
    """A value read from a data file that holds a spreadsheet's formula error (`FORMULA_ERRORS`): its index on the
    axis, the column that holds it (None: the value itself, a line of a .txt file) and the error's text."""

    index: int
    column: str | None
    text: str


class DataLines(NamedTuple):
    """Where an axis's values were read: the data file (as shown in messages) and each value's line and column;
    also its values that hold a spreadsheet's formula error (`flagged`), which a plan warns of where a job sends
    one (only then: a `#N/A` in a notes column no template reads is no one's concern)."""

    file: Path
    positions: tuple[Position, ...]
    flagged: tuple[Flagged, ...] = ()
    header: Position | None = None  # a .csv file's header row, which names its values' fields


def value_position(
    lines: Mapping[tuple[Any, ...], DataLines], path: tuple[Any, ...]
) -> tuple[Path, Position] | None:
    """The data file and line of the node at `path` when it is (in) a value read from a data file: `path` is an
    axis read from one, then the value's index, then perhaps a field of it."""
    for end in range(len(path) - 1, 0, -1):
        found = lines.get(path[:end])
        if found is not None:
            index = path[end]
            if type(index) is int and 0 <= index < len(found.positions):
                return found.file, found.positions[index]
            return None
    return None


class Cap(NamedTuple):
    """The most jobs a plan may have, and whether --max-jobs set it (as messages say it)."""

    jobs: int
    flag: bool = False


def resolve_matrix_files(
    matrix: Any,
    *,
    at: tuple[Any, ...],
    positions: Mapping[tuple[Any, ...], Position],
    file: Path,
    base_dir: Path,
) -> tuple[Any, dict[tuple[Any, ...], Path]]:
    """Read the `{file: path}` axes of a matrix whose own path is `at`; return it with lists in their place.

    Also returns which axis path came from which data file. Raises ManifestError(s) naming the data file's line.
    """
    reader = _FileReader(positions, file, base_dir)
    resolved = reader.matrix(matrix, at)
    raise_all(reader.errors)
    return resolved, reader.files


def resolve_files(
    document: Mapping[str, Any], *, positions: Mapping[tuple[Any, ...], Position], file: Path, base_dir: Path,
    cap: Cap | None = None, read: bool = True,
) -> tuple[dict[str, Any], dict[tuple[Any, ...], Path], dict[tuple[Any, ...], DataLines], list[ManifestError],
           list[ManifestError]]:
    """A manifest's document with the `{file: path}` axes of its matrix and its sweeps' matrices read; also
    which axis came from which file, where each of its values is in it, the problems found (raised by the
    caller with its own), and what is warned of (a data file read otherwise than it most likely reads to its
    writer), each as the error it would be. With `cap`, the most jobs its plan may have, a data file is read no
    further than the cap allows (a file of gigabytes is refused after its first values, not read whole). `read`
    False: no data file is read, each `{file: path}` axis left as it is written, and named in the files found
    (`Manifest.unread`)."""
    reader = _FileReader(positions, file, base_dir, cap, read=read)
    data = dict(document)
    if "matrix" in data:
        data["matrix"] = reader.matrix(data["matrix"], ("matrix",))
    sweeps = data.get("sweeps")
    if isinstance(sweeps, list):
        new_sweeps: list[Any] = []
        for index, sweep in enumerate(sweeps):
            if isinstance(sweep, Mapping) and "matrix" in sweep:
                sweep = {**sweep, "matrix": reader.matrix(sweep["matrix"], ("sweeps", index, "matrix"))}
            new_sweeps.append(sweep)
        data["sweeps"] = new_sweeps
    return data, reader.files, reader.lines, reader.errors, reader.warnings


class _FileReader:
    """Replaces `{file: path}` axes with the values read from the data file, collecting errors."""

    def __init__(self, positions: Mapping[tuple[Any, ...], Position], manifest_file: Path, base_dir: Path,
                 cap: Cap | None = None, *, read: bool = True) -> None:
        self.read = read
        self.positions = positions
        self.manifest_file = manifest_file
        self.base_dir = base_dir
        self.cap = cap
        self.excludes = 0  # the exclude entries of the matrix being read
        self.files: dict[tuple[Any, ...], Path] = {}
        self.lines: dict[tuple[Any, ...], DataLines] = {}
        self.errors: list[ManifestError] = []
        self.warnings: list[ManifestError] = []

    def matrix(self, matrix: Any, at: tuple[Any, ...]) -> Any:
        if not isinstance(matrix, Mapping):
            return matrix
        excludes = matrix.get("exclude")
        self.excludes = len(excludes) if isinstance(excludes, (list, tuple)) else 0
        out = dict(matrix)
        for key, value in matrix.items():
            if key in ("include", "exclude"):
                continue
            if key == "zip":
                if isinstance(value, list):
                    out[key] = [
                        {k: self.axis(v, at + (key, index, k)) for k, v in group.items()}
                        if isinstance(group, Mapping)
                        else group
                        for index, group in enumerate(value)
                    ]
                continue
            out[key] = self.axis(value, at + (key,))
        return out

    def axis(self, value: Any, at: tuple[Any, ...]) -> Any:
        if not (isinstance(value, Mapping) and list(value) == ["file"] and isinstance(value["file"], str)):
            return value
        spec = value["file"]
        if not self.read:
            self.files[at] = Path(os.path.normpath(self.base_dir / spec))
            return value
        values = self._read(spec, at)
        return value if values is None else values

    def _manifest_error(self, at: tuple[Any, ...], message: str) -> ManifestError:
        line, column = locate(self.positions, at)
        return ManifestError(message, file=self.manifest_file, line=line, column=column, field=dotted(at))

    def _read(self, spec: str, at: tuple[Any, ...]) -> list[Any] | None:
        suffix = Path(spec).suffix.lower()
        if suffix not in DATA_FILE_TYPES:
            self.errors.append(
                self._manifest_error(
                    at + ("file",),
                    f"cannot read values from '{spec}': use a .txt, .csv or .jsonl file",
                )
            )
            return None
        cannot = unnameable(spec)  # a locale whose file-name encoding is not UTF-8 would look for other bytes
        if cannot is not None:
            self.errors.append(self._manifest_error(at + ("file",), f"data file '{shown_path(spec)}': {cannot}"))
            return None
        absolute = Path(os.path.normpath(self.base_dir / spec))
        shown = Path(os.path.normpath(self.manifest_file.parent / spec))
        special = _special(absolute)
        if special is not None:  # opening a named pipe waits for a writer, reading a device for input: never opened
            self.errors.append(self._manifest_error(at + ("file",), f"data file '{shown_path(spec)}': is {special}, "
                                                                     "not a regular file (values are read from a "
                                                                     "file saved whole)"))
            return None
        problems: list[Problem] = []
        notes: list[Problem] = []  # what is warned of, as problems are said
        where: list[Position] = []
        header: list[Position] = []  # a .csv file's header row

        def csv_rows(*args: Any) -> list[Any]:
            return _csv_rows(*args, header=header)

        parse = {".txt": _text_rows, ".csv": csv_rows, ".jsonl": _jsonl_rows}[suffix]
        most = self._most_values()
        try:
            values = parse(lambda: _plain_text(text_chunks(absolute), absolute), problems, where, most, notes)
            if problems and len(values) <= most:  # a byte that is not UTF-8 past them is said first, as always
                for _ in _plain_text(text_chunks(absolute), absolute):
                    pass
        except ManifestError as exc:
            if exc.line:
                self.errors.append(ManifestError(exc.message, file=shown, line=exc.line, column=exc.column, field=dotted(at)))
            else:
                home = home_unexpanded(spec) if not os.path.lexists(absolute) else None
                self.errors.append(
                    self._manifest_error(at + ("file",), f"data file '{shown_path(spec)}': {exc.message} "
                                                         f"(looked for {shown_path(absolute)})"
                                                         + (f": {home}" if home else ""))
                )
            return None
        for line, column, message, *index in notes:  # said with the file's errors too: they may be why
            self.warnings.append(ManifestError(message, file=shown, line=line, column=column,
                                               field=dotted((*at, *index))))
        if len(values) > most:
            self.errors.append(self._manifest_error(at + ("file",), self._too_many(spec, most, where[-1][0])))
            return None
        if problems:
            field_name = dotted(at)
            for line, column, message, *index in problems[:_MAX_ERRORS_PER_DATA_FILE]:
                field = dotted((*at, *index))  # a problem of one value names it: matrix.row[3]
                self.errors.append(ManifestError(message, file=shown, line=line, column=column,
                                                 field=field if index else field_name))
            return None
        if not values:
            self.errors.append(
                self._manifest_error(at + ("file",), f"data file '{spec}' holds no values; an axis needs at least one")
            )
            return None
        led = _linked_out(absolute, self.base_dir)
        if led is not None:
            self.warnings.append(self._manifest_error(
                at + ("file",), f"data file '{shown_path(spec)}' is reached through a link that leads out of the "
                                f"manifest's folder, to {led}: its values are what the jobs send to the provider; "
                                "check it is the file you mean"))
        self.files[at] = absolute
        self.lines[at] = DataLines(shown, tuple(where), _flagged(values), header[0] if header else None)
        return values

    def _most_values(self) -> int:
        """The most values an axis of the matrix being read may have (as `matrix.prepare` counts a range's): each
        exclude entry removes the combinations of at most one of its values."""
        if self.cap is None:
            return MAX_VALUES
        return min(MAX_VALUES, max(self.cap.jobs + self.excludes, EARLY_REFUSAL))

    def _too_many(self, spec: str, most: int, line: int) -> str:
        """Why a data file of more than `most` values is refused; `line`: the line of the value past them."""
        read = f"data file '{shown_path(spec)}' holds more than {most:,} values (read up to its line {line:,})"
        if self.cap is None or self.cap.jobs + self.excludes >= MAX_VALUES:
            return f"{read}; the limit is {MAX_VALUES:,}"
        cap = self.cap.jobs
        source = f"the cap of {cap:,} (--max-jobs {cap})" if self.cap.flag else f"the cap of {cap:,}"
        return (f"{read}: the plan would have at least {most + 1 - self.excludes:,} jobs, above {source}; check the "
                "file, or raise the cap with --max-jobs or run.max_jobs")


def _linked_out(path: Path, folder: Path) -> str | None:
    """Where the data file `path` really is (links followed) when a link on its way from `folder` (the manifest's:
    from the folder the two share, for a path written with `..`) leads out of `folder`; None otherwise (no link on
    the way, or one that stays inside). One that leads out may be a committed link to a file of secrets."""
    common = os.path.commonpath([path, folder])
    parts = os.path.relpath(path, common).split(os.sep)
    step, linked = common, False
    for part in parts:
        step = os.path.join(step, part)
        if os.path.islink(step):
            linked = True
            break
    if not linked:
        return None
    real, inside = os.path.realpath(path), os.path.realpath(folder)
    return None if real == inside or real.startswith(inside.rstrip(os.sep) + os.sep) else real


def _flagged(values: list[Any]) -> tuple[Flagged, ...]:
    """The values (a CSV row's cells, a JSONL object's string fields, a .txt line) that are exactly a spreadsheet's
    formula error (`FORMULA_ERRORS`)."""
    found: list[Flagged] = []
    for index, value in enumerate(values):
        if isinstance(value, str):
            if value in FORMULA_ERRORS:
                found.append(Flagged(index, None, value))
        elif isinstance(value, dict):
            found.extend(Flagged(index, column, cell.strip()) for column, cell in value.items()
                         if isinstance(cell, str) and cell.strip() in FORMULA_ERRORS)
    return tuple(found)


def is_empty_row(value: Any) -> bool:
    """Whether `value`, a value of a matrix axis, is a CSV row whose cells are all empty (`,,`)."""
    return (isinstance(value, dict) and bool(value)
            and all(isinstance(cell, str) and not cell.strip() for cell in value.values()))


def _special(path: Path) -> str | None:
    """What the file at `path` is when reading it could wait for ever (a named pipe, a socket, a device:
    `images.special_kind`), found before it is opened; None for a regular file, a folder or none there (which
    reading it says)."""
    from runner.images import special_kind

    try:
        mode = os.stat(path).st_mode
    except (OSError, ValueError):
        return None
    return special_kind(mode)


def _utf16(path: Path) -> str | None:
    """'UTF-16LE', 'UTF-16BE', 'UTF-32LE' or 'UTF-32BE' when the file's first bytes read as text in that encoding
    (`yamlsource.utf16`, as a manifest's are read), else None."""
    try:
        with path.open("rb") as f:
            head = f.read(UTF16_SNIFF)
    except (OSError, ValueError):
        return None
    return utf16(head)


_ZIP = b"PK\x03\x04"
_WORKBOOKS = ((_ZIP, "a ZIP file"), (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "an OLE file: .xls"))
"""The first bytes of a spreadsheet program's own file and what they tell it is: such a file renamed, or saved
with Excel's "Excel Workbook" where its CSV was meant, is given as a data file often enough. A ZIP file is one
only when its members say so (`_zipped_sheet`): a .zip, a .docx is none."""
_ODS = b"application/vnd.oasis.opendocument.spreadsheet"
_ZIP_SNIFF = 65_536  # the bytes of a ZIP file zipfile cannot read (cut short) whose local headers are looked at


def _zipped_sheet(path: Path) -> str | None:
    """The workbook the ZIP file at `path` is, told by its members: '.xlsx' (members under xl/, or a
    [Content_Types].xml naming SpreadsheetML's types), '.ods' (its `mimetype` an OpenDocument spreadsheet's),
    '.numbers' (Index/Document.iwa); None for any other ZIP file. One zipfile cannot read (cut short, damaged) is
    told by the local headers of its first bytes."""
    import zipfile
    import zlib

    try:
        with zipfile.ZipFile(path) as z:
            names = z.namelist()

            def head(name: str) -> bytes:
                with z.open(name) as f:
                    return f.read(_ZIP_SNIFF)

            return _sheet_of(names, head)
    except (OSError, ValueError, RuntimeError, NotImplementedError, EOFError, LookupError, zipfile.BadZipFile,
            zlib.error):
        pass
    try:
        with path.open("rb") as f:
            data = f.read(_ZIP_SNIFF)
    except (OSError, ValueError):
        return None
    members: dict[str, bytes] = {}
    at = data.find(_ZIP)
    while 0 <= at <= len(data) - 30:
        method = int.from_bytes(data[at + 8:at + 10], "little")
        named, extra = int.from_bytes(data[at + 26:at + 28], "little"), int.from_bytes(data[at + 28:at + 30], "little")
        name = data[at + 30:at + 30 + named].decode("utf-8", "replace")
        start = at + 30 + named + extra
        members.setdefault(name, _member_head(data[start:], method))
        at = data.find(_ZIP, at + 4)
    return _sheet_of(list(members), members.__getitem__)


def _member_head(data: bytes, method: int) -> bytes:
    """The first bytes of a ZIP member whose data begins `data` (cut short, or followed by other members'),
    stored (`method` 0) or deflated (8); b"" for another method or data that does not inflate."""
    import zlib

    if method == 0:
        return data[:_ZIP_SNIFF]
    if method != 8:
        return b""
    try:
        return zlib.decompressobj(-zlib.MAX_WBITS).decompress(data, _ZIP_SNIFF)
    except zlib.error:
        return b""


def _sheet_of(names: list[str], head: Callable[[str], bytes]) -> str | None:
    """The workbook a ZIP file of members `names` is (`_zipped_sheet`), `head` giving the first bytes of one."""
    if any(name.startswith("xl/") for name in names):
        return ".xlsx"
    if "[Content_Types].xml" in names and b"spreadsheetml" in head("[Content_Types].xml"):
        return ".xlsx"
    if "mimetype" in names and head("mimetype").strip().startswith(_ODS):
        return ".ods"
    if "Index/Document.iwa" in names:
        return ".numbers"
    return None


def _workbook(path: Path) -> ManifestError | None:
    """The error of a data file that is a spreadsheet workbook (`_WORKBOOKS`), or another ZIP file, told by its
    first bytes, not by a byte of it that is not UTF-8 text (or a NUL): None for any other file."""
    try:
        with path.open("rb") as f:
            head = f.read(8)
    except (OSError, ValueError):
        return None
    what = next((kind for magic, kind in _WORKBOOKS if head.startswith(magic)), None)
    if what is None:
        return None
    read_as = "CSV" if path.suffix.lower() == ".csv" else "text"
    if head.startswith(_ZIP):
        sheet = _zipped_sheet(path)
        if sheet is None:
            return ManifestError(f"this file is a ZIP archive, not {read_as} (nor a spreadsheet workbook): a data "
                                 "file is read as UTF-8 text; if the archive holds the file meant, unzip it and name "
                                 "that file in file:",
                                 file="", line=1, column=1)  # the reader names the file
        what = f"{what}: {sheet}"
    return ManifestError(f"this file looks like a spreadsheet workbook ({what}), not {read_as}: save the sheet as "
                         "CSV UTF-8 (in Excel: File > Save As > CSV UTF-8 (Comma delimited)) and name that .csv file "
                         "in file:",
                         file="", line=1, column=1)  # the reader names the file


def _said_utf16(chunks: Iterable[str], path: Path) -> Iterator[str]:
    """`chunks`, a byte that is not UTF-8 in a file that reads as UTF-16 (or UTF-32) said so, with how to convert
    it, and in a spreadsheet workbook said to be one (`_workbook`)."""
    try:
        yield from chunks
    except ManifestError as exc:
        told = exc.line and exc.message.startswith("not UTF-8 text")
        workbook = _workbook(path) if told else None
        if workbook is not None:
            raise workbook from None
        encoding = _utf16(path) if told else None
        if encoding is None:
            raise
        said = exc.message.removesuffix("; save the file as UTF-8")
        raise ManifestError(f"{said}; this looks like {encoding[:6]} text: save the file as UTF-8 (iconv -f "
                            f"{encoding} -t UTF-8)", file=exc.file, line=exc.line, column=exc.column) from None


def _plain_text(chunks: Iterable[str], path: Path) -> Iterator[str]:
    """The text `chunks` make, refused where it holds what no value may: a NUL (U+0000, which the manifest
    refuses too: in a data file it is most often UTF-16 text read as UTF-8, where every other byte of English is
    NUL), or a byte order mark (U+FEFF) at the start of a line, left there by joining two files with `cat` (the
    file's own first one is dropped when it is read). The mark is refused, not dropped: values that held it ran
    with it, and their jobs' keys and hashes keep it. :raises ManifestError: at the character's line and column
    (the lines counted at LFs, or at CRs in a file that has none before it)."""
    lfs = crs = 0  # the LFs and CRs before the chunk
    line_start = 0  # where the line being read began, counted from the chunk's start (<= 0: in an earlier one)
    after_end = True  # the last character read ended a line (or none was read)
    source = _said_utf16(chunks, path)
    for chunk in source:
        nul = chunk.find("\x00")
        mark = chunk.find("\ufeff")
        while mark >= 0 and not (chunk[mark - 1] in "\r\n" if mark else after_end):
            mark = chunk.find("\ufeff", mark + 1)
        if nul >= 0 or mark >= 0:
            at = min(i for i in (nul, mark) if i >= 0)
            before = chunk[:at]
            if lfs or "\n" in before:
                ends, count = "\n", lfs + before.count("\n")
            else:
                ends, count = "\r", crs + before.count("\r")
            last = before.rfind(ends)
            column = at - last if last >= 0 else at - line_start + 1
            line = count + 1
            if at == nul:
                encoding = _utf16(path)
                workbook = _workbook(path) if encoding is None else None
                if workbook is not None:
                    for _ in source:  # a byte past it that is not UTF-8 is said as a workbook's too
                        pass
                    raise workbook
                if encoding is not None:
                    message = (f"a NUL byte: this looks like {encoding[:6]} text; save the file as UTF-8 (iconv -f "
                               f"{encoding} -t UTF-8)")
                else:
                    message = ("a NUL byte (U+0000), which no value may hold; remove it (a file that holds one is "
                               "often not text, or damaged)")
            else:
                message = ("a byte order mark (U+FEFF) at the start of this line, most often left by joining two "
                           "files that each began with one: remove it (it is invisible, and the line's value would "
                           "hold it)")
            for _ in source:  # a byte that is not UTF-8 past it is said first, as when the file is read whole
                pass
            raise ManifestError(message, file="", line=line, column=column)  # the reader names the file
        lf, cr = chunk.rfind("\n"), chunk.rfind("\r")
        lfs += chunk.count("\n")
        crs += chunk.count("\r")
        end = lf if lfs else cr
        line_start = end + 1 - len(chunk) if end >= 0 else line_start - len(chunk)
        after_end = chunk[-1] in "\r\n" if chunk else after_end
        yield chunk


# A file with an LF anywhere is split at LF alone, as it always was: a CR inside such a line (pasted text, a
# spreadsheet cell's line break) stays in its value, and a CRLF's CR is trimmed with the line's spacing, so the
# values and job keys of an existing project do not change. Only a file with no LF at all (classic Mac tools, some
# exporters) is split at its CRs: one value per line, not one value holding them all.
def _lines(text: str) -> list[str]:
    return text.split("\n") if "\n" in text or "\r" not in text else text.split("\r")


def _too_long(line: int) -> ManifestError:
    return ManifestError(f"this line is longer than {MAX_LINE:,} characters, the most a data file's line may hold (a "
                         "line is one value, and no provider takes a prompt of more than 32,000): the file was read "
                         "no further; check it is the file meant, one value a line", file="", line=line,
                         column=1)  # the file is named by the reader (`_FileReader._read`)


def _value_length(line: str) -> int:
    """The length of `line` without its end (an LF, a CR or a CRLF, when it has one): the bound is of the value."""
    return len(line) - (2 if line.endswith("\r\n") else 1 if line.endswith(("\n", "\r")) else 0)


def _stream_lines(chunks: Iterable[str]) -> Iterator[str]:
    """The lines `_lines` makes of the text `chunks` make, each as soon as it is read (the text before the first
    LF is held, as only the end of the file tells whether it is split at its CRs, up to `MAX_LINE` characters: past
    them without an LF, the first line split at LFs would be too long, so it is split at CRs as it comes, and an LF
    later refuses it). :raises ManifestError: a line longer than `MAX_LINE`, at its line, read no further. The bound
    is of the value: the CR of a CRLF is not counted."""
    bound = MAX_LINE
    held_bound = bound + 1  # text not yet ended may still hold the CR of a CRLF
    head: list[str] = []  # the text before the first LF
    held = 0  # its length
    pending: list[str] = []  # the line being read, after it
    length = 0  # its length
    number = 0  # the lines given
    lf = False
    at_cr = False  # split at CRs: the text before the first LF is longer than a line may be
    for chunk in chunks:
        if not lf:
            if "\n" not in chunk and not at_cr:
                head.append(chunk)
                held += len(chunk)
                if held <= held_bound:
                    continue
                chunk, head, at_cr = "".join(head), [], True
                if "\r" not in chunk:
                    raise _too_long(1)  # one line, whether an LF or only the file's end comes
            if at_cr:
                if "\n" in chunk:
                    raise _too_long(1)  # the file is split at LFs, and its first line is longer than a line may be
                parts = chunk.split("\r")
                if len(parts) > 1:
                    pending.append(parts[0])
                    for line in ("".join(pending), *parts[1:-1]):
                        if len(line) > bound:
                            raise _too_long(number + 1)
                        number += 1
                        yield line
                    pending, length = [], 0
                pending.append(parts[-1])
                length += len(parts[-1])
                if length > bound:
                    raise _too_long(number + 1)
                continue
            lf = True
            chunk, head = "".join(head) + chunk, []
        parts = chunk.split("\n")
        if len(parts) > 1:
            pending.append(parts[0])
            for line in ("".join(pending), *parts[1:-1]):
                if _value_length(line) > bound:
                    raise _too_long(number + 1)
                number += 1
                yield line
            pending, length = [], 0
        pending.append(parts[-1])
        length += len(parts[-1])
        if length > held_bound:
            raise _too_long(number + 1)
    lines = ["".join(pending)] if lf or at_cr else _lines("".join(head))
    for line in lines:
        if _value_length(line) > bound:
            raise _too_long(number + 1)
        number += 1
        yield line


def _csv_lines(chunks: Iterable[str]) -> Iterator[str]:
    """The lines, their ends kept, that `io.StringIO(text, newline="")` gives of the text `chunks` make (a CR, an
    LF or a CRLF ends one), each as soon as it is read. The bound is of the value, without the line's end."""
    carry = ""
    number = 0  # the lines given
    for chunk in chunks:
        lines = io.StringIO(carry + chunk, newline="").readlines()
        carry = lines.pop() if lines and (lines[-1].endswith("\r") or not lines[-1].endswith("\n")) else ""
        for line in lines:  # a CR last is held: an LF may follow it in the next chunk
            if _value_length(line) > MAX_LINE:
                raise _too_long(number + 1)
            number += 1
            yield line
        if _value_length(carry) > MAX_LINE:
            raise _too_long(number + 1)
    if carry:
        yield from io.StringIO(carry, newline="").readlines()


def _once(text: str) -> Callable[[], Iterator[str]]:
    return lambda: iter((text,))


def _text_values(text: str, problems: list[Problem], where: list[Position],
                 notes: list[Problem] | None = None) -> list[Any]:
    return _text_rows(_once(text), problems, where, notes=notes)


def _csv_values(text: str, problems: list[Problem], where: list[Position],
                notes: list[Problem] | None = None) -> list[Any]:
    return _csv_rows(_once(text), problems, where, notes=notes)


def _jsonl_values(text: str, problems: list[Problem], where: list[Position]) -> list[Any]:
    return _jsonl_rows(_once(text), problems, where)


# The readers of each kind of data file. `chunks` gives the file's text, a piece at a time, each time it is
# called (a CSV's open quote is looked for in a second reading); reading stops at `most` + 1 values. `notes`
# collects what is warned of, as `problems` what is refused.

_MOST_NOTES = 3
"""The most lines of a data file one warning is given for each; past them, one warning counts them all."""


def _short_text(text: str, most: int = 40) -> str:
    return text if len(text) <= most else text[:most - 3] + "..."


def _text_rows(chunks: Callable[[], Iterable[str]], problems: list[Problem], where: list[Position],
               most: int = MAX_VALUES, notes: list[Problem] | None = None) -> list[Any]:
    values: list[Any] = []
    tagged: list[tuple[int, int, str]] = []  # the lines skipped as comments that read as text: `#cinematic a fox`
    for number, line in enumerate(_stream_lines(chunks()), 1):
        value = line.strip()
        if value and not value.startswith("#"):
            values.append(value)
            where.append((number, len(line) - len(line.lstrip()) + 1))
            if len(values) > most:
                break
        elif value[1:2].isalnum():
            tagged.append((number, len(line) - len(line.lstrip()) + 1, value))
    if notes is not None and tagged:
        notes.extend(_comment_notes(tagged))
    return values


def _comment_notes(tagged: list[tuple[int, int, str]]) -> list[Problem]:
    """The warnings of the lines of a .txt file skipped as comments whose '#' is followed by text (a hashtag, `#1
    shot`), which are most often meant as values: one each, or past `_MOST_NOTES`, one at the first counting them.
    A line of `# ` and words is a comment, as `manifests/prompts.txt` writes one, and is said nothing of."""
    how = ("a line starting with '#' is a comment in a .txt data file; to send such text, put the values in a .csv "
           "file with a header row (quoting a value that holds a comma) or a .jsonl one; to keep it a comment, write '# ' with a space")
    if len(tagged) <= _MOST_NOTES:
        return [(line, column, f"{_short_text(text)!r} is skipped as a comment, not a value: {how}")
                for line, column, text in tagged]
    line, column, text = tagged[0]
    return [(line, column, (f"{len(tagged):,} lines starting with '#' and text are skipped as comments, not values "
                            f"(this one first: {_short_text(text)!r}): {how}"))]


_field_limit_lock = threading.Lock()
_field_limit_readers = 0  # the CSV files being read, in any thread
_field_limit_before = 0  # the csv module's limit before the first of them was


@contextmanager
def _cells_up_to_a_line() -> Iterator[None]:
    """The csv module's limit of a cell's length (131,072 characters unless set, for the whole process) raised to
    `MAX_LINE`, the most a data file's line may hold, while a CSV file is read, and put back as it was once the
    last file read at the same time (in any thread) is: a cell of a line gridrun takes is read, and one longer
    (a quoted cell over several lines) is said in gridrun's terms (`_cell_too_long`)."""
    global _field_limit_readers, _field_limit_before
    with _field_limit_lock:
        if not _field_limit_readers:
            _field_limit_before = csv.field_size_limit(MAX_LINE)
        _field_limit_readers += 1
    try:
        yield
    finally:
        with _field_limit_lock:
            _field_limit_readers -= 1
            if not _field_limit_readers:
                csv.field_size_limit(_field_limit_before)


def _cell_too_long() -> str:
    return (f"a cell of this row is longer than {MAX_LINE:,} characters, the most a data file's value may hold (no "
            "provider takes a prompt of more than 32,000): check the file is the one meant, and that each quote it "
            "opens is closed")


def _csv_rows(chunks: Callable[[], Iterable[str]], problems: list[Problem], where: list[Position],
              most: int = MAX_VALUES, notes: list[Problem] | None = None, *,
              header: list[Position] | None = None) -> list[Any]:
    """The rows of a .csv file, each a mapping named by its header row, whose line `header` gets."""
    with _cells_up_to_a_line():
        return _csv_read(chunks, problems, where, most, notes, [] if header is None else header)


def _comma_in_a_cell(row: Sequence[str], extra: int, written: str) -> tuple[int, str]:
    """Of a CSV row with `extra` fields more than its header row, most likely a cell holding a comma unquoted (`1,a
    red fox, running`): where the first comma of such a cell is in the row's first line (`written`: the row as
    written; 1 when not found there), and the hint to quote the cell, with the cell as the header row would read it
    when a comma followed by a space (prose's, not a separator's) is found."""
    start = next((at for at in range(1, len(row)) if row[at][:1] == " "), None)
    if start is None:
        return 1, "; a cell holding a comma must be quoted, as in \"a red fox, running\""
    cell = ",".join(row[start - 1 : start + extra])
    column, quoted, commas = 1, False, 0
    for at, ch in enumerate(written.split("\n", 1)[0]):
        if ch == '"':
            quoted = not quoted
        elif ch == "," and not quoted:
            commas += 1
            if commas == start:
                column = at + 1
                break
    shown = cell if len(cell) <= 60 else cell[:57] + "..."
    return column, f"; a cell holding a comma must be quoted: \"{shown}\""


def _csv_read(chunks: Callable[[], Iterable[str]], problems: list[Problem], where: list[Position],
              most: int, notes: list[Problem] | None, header_at: list[Position]) -> list[Any]:
    record: list[str] = []  # the lines of the row being read, as written

    def kept(lines: Iterable[str]) -> Iterator[str]:
        for line in lines:
            record.append(line)
            yield line

    reader = csv.reader(kept(_csv_lines(chunks())))
    header: list[str] | None = None
    width = 0  # the header row's columns up to its last named one
    rows: list[Any] = []
    phrases: list[Problem] = []  # the cells opening with a quoted phrase, which CSV reads as the cell's quoting
    empty: list[int] = []  # the rows whose cells are all empty, by index
    start = 1
    try:
        for row in reader:
            line, start = start, reader.line_num + 1
            written, record[:] = "".join(record), []
            if not row:
                continue
            if header is None:
                if line == 1 and row == ["sep=", ""]:
                    continue  # Excel's `sep=,` line, which some exporters write first: the header row is next
                header = [name.strip() for name in row]
                header_at.append((line, 1))
                if notes is not None:
                    notes.extend(_separated_otherwise(header, line))
                # A spreadsheet writes its empty columns past the data as a header row ending in commas: those
                # columns, while no row has a value in them, are read as not there (such a file was refused).
                width = len(header)
                while width > 1 and not header[width - 1]:
                    width -= 1
                seen: dict[str, str] = {}  # each name, as it reads (`alike`) -> as written first
                for index, name in enumerate(header[:width]):
                    if not name:
                        problems.append((line, 1, f"column {index + 1} of the header row has no name"))
                    elif name in seen.values():
                        problems.append((line, 1, f"column name '{name}' appears twice in the header row"))
                    elif (twin := seen.get(alike(name))) is not None:
                        problems.append((line, 1, (f"column names '{escaped(twin)}' and '{escaped(name)}' are the "
                                                   f"same but for {unlike(twin, name)} in the header row: a row "
                                                   "would have two columns that read alike; keep one")))
                    if name:  # a column with no name is said above, not again as the twin of another
                        seen.setdefault(alike(name), name)
                continue
            if not width <= len(row) <= len(header):
                column, hint = _comma_in_a_cell(row, len(row) - len(header), written) if len(row) > len(header) \
                    else (1, "")
                problems.append((line, column, (f"this row has {_fields(len(row))} but the header row has "
                                                f"{len(header)}{hint}")))
                if len(problems) >= _MAX_ERRORS_PER_DATA_FILE:
                    break
                continue
            if len(row) > width:
                extra = next((at for at in range(width, len(row)) if row[at].strip()), None)
                if extra is not None:
                    problems.append((line, 1, (f"this row has a value in column {extra + 1}, which has no name in "
                                               "the header row: name the column there, or delete the value")))
                    if len(problems) >= _MAX_ERRORS_PER_DATA_FILE:
                        break
                    continue
                row = row[:width]
            # what `cat a.csv b.csv` leaves, never a value (its first cell is compared first: a check of every row)
            if row[0].strip() == header[0] and [cell.strip() for cell in row] == header[:len(row)]:
                problems.append((line, 1, "this row repeats the header row (two files joined?): delete it",
                                 len(rows)))
                if len(problems) >= _MAX_ERRORS_PER_DATA_FILE:
                    break
            if notes is not None and '"' in written:
                found = _quoted_phrase(written)
                if found is not None:
                    lines, column, cell = found
                    phrases.append((line + lines, column, cell, len(rows)))
            if notes is not None and not any(cell.strip() for cell in row):
                empty.append(len(rows))
            rows.append(dict(zip(header, row)))
            where.append((line, 1))
            if len(rows) > most:
                return rows
    except csv.Error as exc:
        if str(exc).startswith("field larger than field limit"):  # at the row's first line, not where it was met
            problems.append((start, 1, _cell_too_long()) if header is None else
                            (start, 1, _cell_too_long(), len(rows)))
        else:
            problems.append((reader.line_num, 1, f"not valid CSV: {exc}"))
        return rows
    if _quote_left_open(chunks):
        problems.append((_open_quote_line(chunks), 1, "not valid CSV: a quoted field is never closed (its \" runs "
                                                       "to the end of the file)"))
    if notes is not None:
        notes.extend(_phrase_notes(phrases))
        if not problems:  # a row of the file refused is what to fix first; its empty rows are said once it reads
            notes.extend(_empty_row_notes(empty, where))
    return rows


def _fields(n: int) -> str:
    return f"{n} field{'' if n == 1 else 's'}"


def _empty_row_notes(empty: list[int], where: list[Position]) -> list[Problem]:
    """The warning at the first row of a CSV file whose cells are all empty (`,,`: what a spreadsheet writes past
    its data when cells there were formatted, or cleared rather than deleted), naming the others: such a row makes
    a job like any other, paid for where the template has text of its own. It still does (a project that ran one
    plans as before); the warning says to delete it."""
    if not empty:
        return []
    first = empty[0]
    message = ("every cell of this row is empty (spreadsheets write such rows past the data): it makes a job like "
               "any other row; delete the row")
    if len(empty) > 1:
        more = [str(where[i][0]) for i in empty[1:_EMPTY_ROWS_SHOWN + 1]]
        rest = len(empty) - 1 - len(more)
        one = len(empty) == 2
        message += (f"; so {'is' if one else 'are'} {len(empty) - 1:,} more row{'' if one else 's'}, at line"
                    f"{'' if one else 's'} {', '.join(more)}{f' and {rest:,} more' if rest else ''}")
    line, column = where[first]
    return [(line, column, message, first)]


def _separated_otherwise(header: list[str], line: int) -> list[Problem]:
    """The warning of a header row read as one column that holds a ';' or a tab: a file separated by them (Excel
    writes ';' where the list separator is one, as in most of Europe; a .tsv renamed), which gridrun reads as
    comma-separated all the same (a file read so has run, and reading it otherwise would change its jobs)."""
    if len(header) != 1:
        return []
    name = header[0]
    told = name.removeprefix("sep=") if name in ("sep=;", "sep=\t") else None
    separator = told if told is not None else ";" if ";" in name else "\t" if "\t" in name else None
    if separator is None:
        return []
    said = "tabs" if separator == "\t" else f"'{separator}'"
    shown = _short_text(escaped(name).replace("\t", "\\t"), 60)
    what = f"its first line '{shown}' says it is" if told is not None else \
        f"the header row is one column '{shown}': this file seems"
    return [(line, 1, (f"{what} separated by {said}, but gridrun reads comma-separated CSV; save the file "
                       "comma-separated (in Excel: Save As > CSV UTF-8 (Comma delimited))"))]


def _quoted_phrase(written: str) -> tuple[int, int, str] | None:
    """The first cell of the CSV row `written` (as in the file, its line ends kept) whose text goes on after a
    closing quote (`"The End" written on a wall`): CSV reads the quotes as the cell's own quoting and joins what
    follows, so its value loses them. Returned as the lines before the cell, its column and the cell as written;
    None when no cell is so. Spaces alone after the closing quote, which Excel and others write, are no such cell."""
    start = i = 0
    state = "start"  # at a cell's start; "plain": in a cell not quoted; "quoted"; "after": past a closing quote
    n = len(written)
    while i < n:
        c = written[i]
        if state == "start":
            if c == '"':
                state, start = "quoted", i
            elif c not in ",\r\n":
                state = "plain"
        elif state == "plain":
            if c in ",\r\n":
                state = "start"
        elif state == "quoted":
            if c == '"':
                state = "after"
        elif c == '"':
            state = "quoted"  # a doubled quote: one quote of the text
        elif c in ",\r\n":
            state = "start"
        else:
            end = i
            while end < n and written[end] not in ",\r\n":
                end += 1
            if written[i:end].strip():
                before = written[:start]
                breaks = LINE_BREAK.findall(before)
                last = max(before.rfind("\n"), before.rfind("\r"))
                return len(breaks), start - last, written[start:end]
            state = "plain"
        i += 1
    return None




def _phrase_notes(phrases: list[Problem]) -> list[Problem]:
    """The warnings of the cells opening with a quoted phrase (`_quoted_phrase`): one each, or past `_MOST_NOTES`,
    one at the first counting them."""
    out: list[Problem] = []
    for line, column, cell, *index in phrases[:_MOST_NOTES if len(phrases) <= _MOST_NOTES else 1]:
        value = next(csv.reader([cell]))[0] if "\n" not in cell and "\r" not in cell else cell
        fixed = '"' + cell.replace('"', '""') + '"'
        more = f" ({len(phrases):,} cells of the file are so, this one first)" if len(phrases) > _MOST_NOTES else ""
        out.append((line, column, (f"the cell {_short_text(cell, 60)!r} opens with a quoted phrase, which CSV reads "
                                   f"as the quoting of the cell: its value is {_short_text(value, 60)!r}, without "
                                   f"those quotes{more}; to keep them, write the cell as {_short_text(fixed, 70)}"),
                    *index))
    return out


def _quote_left_open(chunks: Callable[[], Iterable[str]]) -> bool:
    """A quote opened and never closed: the lenient reader takes the rest of the file as one field (and
    reports no values); the strict one says so, but also refuses spaces after a closing quote, which Excel
    and others write."""
    try:
        for _ in csv.reader(_csv_lines(chunks()), strict=True):
            pass
    except csv.Error as exc:
        return "unexpected end of data" in str(exc)
    return False


def _lf_lines(chunks: Iterable[str]) -> Iterator[str]:
    """`text.split("\\n")` of the text `chunks` make, a line at a time."""
    pending: list[str] = []
    for chunk in chunks:
        parts = chunk.split("\n")
        for part in parts[:-1]:
            pending.append(part)
            yield "".join(pending)
            pending = []
        pending.append(parts[-1])
    yield "".join(pending)


def _open_quote_line(chunks: Callable[[], Iterable[str]]) -> int:
    """The line of the quote left open: where the quotes seen so far stop pairing up."""
    open_at, inside = 1, False
    for number, line in enumerate(_lf_lines(chunks()), 1):
        for ch in line:
            if ch == '"':
                inside = not inside
                if inside:
                    open_at = number
    return open_at


# Python's refusal of a number too long to read ("Exceeds the limit (4300 digits) for integer string conversion:
# value has 4301 digits; use sys.set_int_max_str_digits() ..."), advice for a programmer: said in a file's terms.
_LONG_NUMBER = re.compile(r"Exceeds the limit \((\d+) digits\) for integer string conversion: value has (\d+) digits")


def _long_number(exc: BaseException) -> str | None:
    """`exc` as `yamlsource.long_number` says it, when it is Python's refusal of a number too long; else None."""
    m = _LONG_NUMBER.match(str(exc))
    return None if m is None else long_number(int(m[2]), int(m[1]))


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    read: dict[str, str] = {}  # each key, as it reads (`alike`) -> as written first
    for key, value in pairs:
        if key in out:
            raise ValueError(f"key {key!r} appears twice in one object; keep one")
        twin = read.setdefault(alike(key), key)
        if twin != key:
            raise ValueError(f"keys '{escaped(twin)}' and '{escaped(key)}' are the same but for {unlike(twin, key)}; "
                             "keep one")
        out[key] = value
    return out


def _surrogate_in(value: Any, name: str = "") -> str | None:
    """Where in a JSON row a string holds a lone surrogate (JSON's `\\ud83e` without the escape of its other half,
    as some exporters cut an emoji): "the key 'p'", "the value of 'p'"; None when no string does."""
    if isinstance(value, str):
        return None if value.isascii() or encodable(value) else f"the value of '{name}'" if name else "a value"
    if isinstance(value, dict):
        for key, item in value.items():
            if not encodable(key):
                return f"the key {key!r}"
            found = _surrogate_in(item, f"{name}.{key}" if name else key)
            if found is not None:
                return found
    elif isinstance(value, list):
        for i, item in enumerate(value):
            found = _surrogate_in(item, f"{name}[{i}]")
            if found is not None:
                return found
    return None


def encodable(text: str) -> bool:
    """Whether `text` is text UTF-8 can write: no lone surrogate (a JSON `\\ud83e` escape of half a pair, say)."""
    try:
        text.encode()
    except UnicodeEncodeError:
        return False
    return True


def _jsonl_rows(chunks: Callable[[], Iterable[str]], problems: list[Problem], where: list[Position],
                most: int = MAX_VALUES, notes: list[Problem] | None = None) -> list[Any]:
    values: list[Any] = []
    for number, line in enumerate(_stream_lines(chunks()), 1):
        stripped = line.strip()
        if not stripped or stripped[0] == "#":  # blank, or a comment as in a .txt file: no JSON value starts with '#'
            continue
        indent = len(line) - len(line.lstrip())
        try:
            value = json.loads(stripped, parse_constant=_reject_constant, object_pairs_hook=_unique_keys)
        except json.JSONDecodeError as exc:
            problems.append((number, indent + exc.colno, f"not valid JSON: {exc.msg}"))
        except (ValueError, RecursionError) as exc:
            problems.append((number, indent + 1, f"not valid JSON: {_long_number(exc) or exc}"))
        else:
            if isinstance(value, dict):
                field = _surrogate_in(value)
                if field is not None:
                    problems.append((number, indent + 1, (f"{field} holds a lone surrogate (a \\ud800-\\udfff "
                                     "escape without its pair), which is not text; write the character itself, or "
                                     "both halves of its pair (such as \\ud83e\\udd8a)"), len(values)))
                    if len(problems) >= _MAX_ERRORS_PER_DATA_FILE:
                        break
                    continue
                values.append(value)
                where.append((number, indent + 1))
                if len(values) > most:
                    break
            else:
                problems.append((number, indent + 1, f"expected a JSON object on each line, got {kind(value)}"))
        if len(problems) >= _MAX_ERRORS_PER_DATA_FILE:
            break
    return values
