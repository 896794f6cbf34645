"""Matrix axes read from data files: `{file: styles.txt}` (one value per line), `.csv` (a mapping per row,
named by the header) and `.jsonl` (a JSON object per line). A problem names the data file's line."""

from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, NamedTuple

from runner.errors import ManifestError
from runner.localpaths import shown as shown_path
from runner.yamlsource import Position, dotted, kind, locate, raise_all, read_text

DATA_FILE_TYPES = (".txt", ".csv", ".jsonl")
_MAX_ERRORS_PER_DATA_FILE = 10


class DataLines(NamedTuple):
    """Where an axis's values were read: the data file (as shown in messages) and each value's line and column."""

    file: Path
    positions: tuple[Position, ...]


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
    document: Mapping[str, Any], *, positions: Mapping[tuple[Any, ...], Position], file: Path, base_dir: Path
) -> tuple[dict[str, Any], dict[tuple[Any, ...], Path], dict[tuple[Any, ...], DataLines], list[ManifestError]]:
    """A manifest's document with the `{file: path}` axes of its matrix and its sweeps' matrices read; also
    which axis came from which file, where each of its values is in it, and the problems found (raised by the
    caller with its own)."""
    reader = _FileReader(positions, file, base_dir)
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
    return data, reader.files, reader.lines, reader.errors


class _FileReader:
    """Replaces `{file: path}` axes with the values read from the data file, collecting errors."""

    def __init__(self, positions: Mapping[tuple[Any, ...], Position], manifest_file: Path, base_dir: Path) -> None:
        self.positions = positions
        self.manifest_file = manifest_file
        self.base_dir = base_dir
        self.files: dict[tuple[Any, ...], Path] = {}
        self.lines: dict[tuple[Any, ...], DataLines] = {}
        self.errors: list[ManifestError] = []

    def matrix(self, matrix: Any, at: tuple[Any, ...]) -> Any:
        if not isinstance(matrix, Mapping):
            return matrix
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
        absolute = Path(os.path.normpath(self.base_dir / spec))
        shown = Path(os.path.normpath(self.manifest_file.parent / spec))
        try:
            text = read_text(absolute)
        except ManifestError as exc:
            if exc.line:
                self.errors.append(ManifestError(exc.message, file=shown, line=exc.line, column=exc.column, field=dotted(at)))
            else:
                self.errors.append(
                    self._manifest_error(at + ("file",), f"data file '{shown_path(spec)}': {exc.message} "
                                                         f"(looked for {shown_path(absolute)})")
                )
            return None
        parse = {".txt": _text_values, ".csv": _csv_values, ".jsonl": _jsonl_values}[suffix]
        problems: list[tuple[int, int, str]] = []
        where: list[Position] = []
        values = parse(text, problems, where)
        if problems:
            field_name = dotted(at)
            for line, column, message in problems[:_MAX_ERRORS_PER_DATA_FILE]:
                self.errors.append(ManifestError(message, file=shown, line=line, column=column, field=field_name))
            return None
        if not values:
            self.errors.append(
                self._manifest_error(at + ("file",), f"data file '{spec}' holds no values; an axis needs at least one")
            )
            return None
        self.files[at] = absolute
        self.lines[at] = DataLines(shown, tuple(where))
        return values


# A file with an LF anywhere is split at LF alone, as it always was: a CR inside such a line (pasted text, a
# spreadsheet cell's line break) stays in its value, and a CRLF's CR is trimmed with the line's spacing, so the
# values and job keys of an existing project do not change. Only a file with no LF at all (classic Mac tools, some
# exporters) is split at its CRs: one value per line, not one value holding them all.
def _lines(text: str) -> list[str]:
    return text.split("\n") if "\n" in text or "\r" not in text else text.split("\r")


def _text_values(text: str, problems: list[tuple[int, int, str]], where: list[Position]) -> list[Any]:
    values: list[Any] = []
    for number, line in enumerate(_lines(text), 1):
        value = line.strip()
        if value and not value.startswith("#"):
            values.append(value)
            where.append((number, len(line) - len(line.lstrip()) + 1))
    return values


def _csv_values(text: str, problems: list[tuple[int, int, str]], where: list[Position]) -> list[Any]:
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
                seen: set[str] = set()
                for index, name in enumerate(header):
                    if not name:
                        problems.append((line, 1, f"column {index + 1} of the header row has no name"))
                    elif name in seen:
                        problems.append((line, 1, f"column name '{name}' appears twice in the header row"))
                    seen.add(name)
                continue
            if len(row) != len(header):
                problems.append((line, 1, f"this row has {len(row)} fields but the header row has {len(header)}"))
                if len(problems) >= _MAX_ERRORS_PER_DATA_FILE:
                    break
                continue
            rows.append(dict(zip(header, row)))
            where.append((line, 1))
    except csv.Error as exc:
        problems.append((reader.line_num, 1, f"not valid CSV: {exc}"))
        return rows
    if _quote_left_open(text):
        problems.append((_open_quote_line(text), 1, "not valid CSV: a quoted field is never closed (its \" runs to "
                                                     "the end of the file)"))
    return rows


def _quote_left_open(text: str) -> bool:
    """A quote opened and never closed: the lenient reader takes the rest of the file as one field (and
    reports no values); the strict one says so, but also refuses spaces after a closing quote, which Excel
    and others write."""
    try:
        for _ in csv.reader(io.StringIO(text, newline=""), strict=True):
            pass
    except csv.Error as exc:
        return "unexpected end of data" in str(exc)
    return False


def _open_quote_line(text: str) -> int:
    """The line of the quote left open: where the quotes seen so far stop pairing up."""
    open_at, inside = 1, False
    for number, line in enumerate(text.split("\n"), 1):
        for ch in line:
            if ch == '"':
                inside = not inside
                if inside:
                    open_at = number
    return open_at


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise ValueError(f"key {key!r} appears twice in one object; keep one")
        out[key] = value
    return out


def _jsonl_values(text: str, problems: list[tuple[int, int, str]], where: list[Position]) -> list[Any]:
    values: list[Any] = []
    for number, line in enumerate(_lines(text), 1):
        stripped = line.strip()
        if not stripped:
            continue
        indent = len(line) - len(line.lstrip())
        try:
            value = json.loads(stripped, parse_constant=_reject_constant, object_pairs_hook=_unique_keys)
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
        if len(problems) >= _MAX_ERRORS_PER_DATA_FILE:
            break
    return values
