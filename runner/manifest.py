"""Load a manifest: YAML 1.2 core scalars, a source position for every node, JSON Schema validation.

Every problem becomes a `ManifestError` naming file, line, column and field path; several found at once
become one `ManifestErrors`. Matrix axes given as `{file: path}` are read here, so the matrix that
`runner.matrix.expand` sees holds plain lists.
"""

from __future__ import annotations

import csv
import difflib
import io
import json
import math
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml
from jsonschema import Draft202012Validator, validators
from jsonschema.exceptions import ValidationError

from runner.errors import ManifestError, ManifestErrors
from runner.resources import resource_dir

Position = tuple[int, int]
Positions = dict[tuple[Any, ...], Position]

SCHEMA_PATH = resource_dir("schemas") / "manifest.schema.json"
DEFAULT_PROVIDER = "sim"
DEFAULT_OUTPUT = "{{ key }}.mp4"
RUN_DEFAULTS: Mapping[str, Any] = {
    "concurrency": 4,
    "retries": 3,
    "budget_usd": None,
    "poll_interval": None,
    "timeout": None,
    "max_jobs": 1000,
}
DATA_FILE_TYPES = (".txt", ".csv", ".jsonl")

_MAX_NODES = 1_000_000
_MAX_ERRORS_PER_DATA_FILE = 10

_STR = "tag:yaml.org,2002:str"
_NULL = "tag:yaml.org,2002:null"
_BOOL = "tag:yaml.org,2002:bool"
_INT = "tag:yaml.org,2002:int"
_FLOAT = "tag:yaml.org,2002:float"
_SEQ = "tag:yaml.org,2002:seq"
_MAP = "tag:yaml.org,2002:map"

_INT_RE = re.compile(r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$")
_FLOAT_RE = re.compile(
    r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"
)


class _Loader(yaml.SafeLoader):
    """PyYAML's SafeLoader with the YAML 1.2 core schema's implicit types instead of YAML 1.1's."""

    yaml_implicit_resolvers: dict[Any, list[tuple[str, re.Pattern[str]]]] = {}


_Loader.add_implicit_resolver(_BOOL, re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF"))
_Loader.add_implicit_resolver(_NULL, re.compile(r"^(?:~|null|Null|NULL|)$"), ["~", "n", "N", ""])
_Loader.add_implicit_resolver(_INT, _INT_RE, list("-+0123456789"))
_Loader.add_implicit_resolver(_FLOAT, _FLOAT_RE, list("-+0123456789."))


@dataclass(frozen=True)
class Manifest:
    """A validated manifest: its document, where each node sits in the file, and which axes came from files."""

    path: Path
    data: Mapping[str, Any]
    positions: Mapping[tuple[Any, ...], Position]
    files: Mapping[tuple[Any, ...], Path] = field(default_factory=dict)
    display: str = ""

    @property
    def name(self) -> str:
        """The manifest's name."""
        return str(self.data["name"])

    @property
    def provider(self) -> str:
        """The provider; "sim" when not given."""
        return str(self.data.get("provider", DEFAULT_PROVIDER))

    @property
    def model(self) -> str:
        """The provider's model id."""
        return str(self.data["model"])

    @property
    def vars(self) -> Mapping[str, Any]:
        """Top-level template variables."""
        return self.data.get("vars") or {}

    @property
    def params(self) -> Mapping[str, Any]:
        """Top-level request parameters."""
        return self.data.get("params") or {}

    @property
    def matrix(self) -> Mapping[str, Any] | None:
        """The top-level matrix, file-sourced axes already read; None without one."""
        return self.data.get("matrix")

    @property
    def sweeps(self) -> tuple[Mapping[str, Any], ...]:
        """The sweeps, or () without any."""
        return tuple(self.data.get("sweeps") or ())

    @property
    def repeat(self) -> int:
        """How many times each combination runs."""
        return int(self.data.get("repeat", 1))

    @property
    def output(self) -> str:
        """The output path template."""
        return str(self.data.get("output", DEFAULT_OUTPUT))

    @property
    def run(self) -> dict[str, Any]:
        """Throughput knobs, defaults applied; optional knobs that are not set are None."""
        return {**RUN_DEFAULTS, **(self.data.get("run") or {})}

    @property
    def base_url(self) -> str | None:
        """The provider base URL override, if any."""
        return self.data.get("base_url")

    @property
    def base_dir(self) -> Path:
        """The folder holding the manifest; relative paths in it start here."""
        return self.path.parent

    def where(self, path: tuple[Any, ...]) -> Position:
        """Line and column of `path`, or of its nearest ancestor that is in the file."""
        return locate(self.positions, path)

    def error(
        self, path: tuple[Any, ...], message: str, cls: type[ManifestError] = ManifestError
    ) -> ManifestError:
        """Build an error of class `cls` about the node at `path`."""
        line, column = self.where(path)
        return cls(message, file=self.display or self.path, line=line, column=column, field=dotted(path))


def load(path: str | Path) -> Manifest:
    """Read, parse and validate a manifest. Raises ManifestError, or ManifestErrors for several."""
    shown = Path(path)
    data, positions = read_yaml(shown)
    if data is None:
        raise ManifestError("the file is empty; a manifest needs at least version, name and model", file=shown)
    if not isinstance(data, dict):
        line, column = positions.get((), (1, 1))
        raise ManifestError(
            f"expected a mapping of manifest fields (version, name, model, ...) at the top level, got {_kind(data)}",
            file=shown,
            line=line,
            column=column,
        )
    base = Manifest(path=Path(os.path.abspath(shown)), data=data, positions=positions, display=str(shown))
    errors = _schema_errors(base)
    errors += _sweep_name_errors(base)
    errors.sort(key=lambda e: (e.line, e.column))
    resolved, files, file_errors = _resolve_manifest_files(base)
    raise_all(errors + file_errors)
    return Manifest(path=base.path, data=resolved, positions=positions, files=files, display=base.display)


def read_yaml(path: str | Path) -> tuple[Any, Positions]:
    """Read and parse a YAML file, with positions; every failure is a ManifestError naming the file."""
    shown = Path(path)
    return load_yaml(_read_text(shown), file=shown)


def load_yaml(text: str, *, file: Path) -> tuple[Any, Positions]:
    """Parse YAML text with YAML 1.2 core scalar rules; return the document and each node's position.

    Positions are 1-based (line, column), keyed by path tuples such as ("matrix", "style", 2); a mapping
    member's position is that of its key. Mapping keys are always strings (the key's text). A key repeated
    in one mapping is an error naming both lines.
    """
    try:
        loader = _Loader(text)
        try:
            node = loader.get_single_node()
        finally:
            loader.dispose()
    except yaml.MarkedYAMLError as exc:
        raise _yaml_syntax_error(exc, file) from exc
    except yaml.reader.ReaderError as exc:
        line = text.count("\n", 0, exc.position) + 1
        column = exc.position - (text.rfind("\n", 0, exc.position) + 1) + 1
        code = exc.character if isinstance(exc.character, int) else ord(exc.character)
        raise ManifestError(
            f"invalid YAML: the control character U+{code:04X} is not allowed", file=file, line=line, column=column
        ) from exc
    except yaml.YAMLError as exc:
        raise ManifestError(f"invalid YAML: {exc}", file=file) from exc
    if node is None:
        return None, {(): (1, 1)}
    _check_size(node, file)
    builder = _Builder(file)
    data = builder.build(node, ())
    builder.positions[()] = _position(node.start_mark)
    raise_all(builder.errors)
    return data, builder.positions


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


def dotted(path: Iterable[Any]) -> str:
    """A path tuple as a field name: ("matrix", "include", 2, "style") -> "matrix.include[2].style"."""
    out = ""
    for part in path:
        if isinstance(part, int) and not isinstance(part, bool):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def locate(positions: Mapping[tuple[Any, ...], Position], path: tuple[Any, ...]) -> Position:
    """Line and column of `path` in `positions`, or of its nearest ancestor there; (1, 1) if none is."""
    for end in range(len(path), -1, -1):
        found = positions.get(tuple(path[:end]))
        if found is not None:
            return found
    return (1, 1)


def raise_all(errors: list[ManifestError]) -> None:
    """Raise the one error, or all of them as `ManifestErrors`; nothing when there are none."""
    if len(errors) == 1:
        raise errors[0]
    if errors:
        raise ManifestErrors(errors)


# --- reading text and YAML -------------------------------------------------------------------


def _read_text(path: Path) -> str:
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ManifestError("no such file", file=path) from None
    except IsADirectoryError:
        raise ManifestError("is a directory, not a file", file=path) from None
    except PermissionError:
        raise ManifestError("cannot read the file: permission denied", file=path) from None
    except OSError as exc:
        raise ManifestError(f"cannot read the file: {exc.strerror or exc}", file=path) from exc
    if raw.startswith(b"\xef\xbb\xbf"):
        raw = raw[3:]
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        column = exc.start - (raw.rfind(b"\n", 0, exc.start) + 1) + 1
        raise ManifestError(
            f"not UTF-8 text: byte 0x{raw[exc.start]:02x} cannot be decoded; save the file as UTF-8",
            file=path,
            line=line,
            column=column,
        ) from None


def _yaml_syntax_error(exc: yaml.MarkedYAMLError, file: Path) -> ManifestError:
    mark = exc.problem_mark or exc.context_mark
    problem = exc.problem or exc.context or "cannot be parsed"
    message = f"invalid YAML: {problem}"
    if exc.context and exc.problem:
        where = f" (line {exc.context_mark.line + 1})" if exc.context_mark is not None else ""
        message = f"invalid YAML: {exc.context}{where}, {exc.problem}"
    if "'\\t'" in problem:
        message += "; indent with spaces, not tabs"
    line, column = _position(mark) if mark is not None else (0, 0)
    return ManifestError(message, file=file, line=line, column=column)


def _position(mark: yaml.Mark) -> Position:
    return (mark.line + 1, mark.column + 1)


class _Builder:
    """Turns a composed YAML node tree into plain data, recording positions and collecting errors."""

    def __init__(self, file: Path) -> None:
        self.file = file
        self.positions: Positions = {}
        self.errors: list[ManifestError] = []

    def _error(self, message: str, mark: yaml.Mark, path: tuple[Any, ...]) -> None:
        line, column = _position(mark)
        self.errors.append(ManifestError(message, file=self.file, line=line, column=column, field=dotted(path)))

    def build(self, node: yaml.Node, path: tuple[Any, ...]) -> Any:
        if isinstance(node, yaml.ScalarNode):
            return self._scalar(node, path)
        if isinstance(node, yaml.SequenceNode):
            return self._sequence(node, path)
        assert isinstance(node, yaml.MappingNode)
        return self._mapping(node, path)

    def _sequence(self, node: yaml.SequenceNode, path: tuple[Any, ...]) -> list[Any]:
        if node.tag != _SEQ:
            self._error(f"unsupported YAML tag {node.tag}", node.start_mark, path)
        out = []
        for index, child in enumerate(node.value):
            child_path = path + (index,)
            self.positions[child_path] = _position(child.start_mark)
            out.append(self.build(child, child_path))
        return out

    def _mapping(self, node: yaml.MappingNode, path: tuple[Any, ...]) -> dict[str, Any]:
        if node.tag != _MAP:
            self._error(f"unsupported YAML tag {node.tag}", node.start_mark, path)
        out: dict[str, Any] = {}
        first_line: dict[str, int] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                self._error("a mapping key must be a plain value, not a list or a mapping", key_node.start_mark, path)
                continue
            key = key_node.value
            line = key_node.start_mark.line + 1
            if key in first_line:
                self._error(
                    f"key '{key}' is repeated in this mapping: first at line {first_line[key]}, again at line {line}; "
                    "keep one",
                    key_node.start_mark,
                    path + (key,),
                )
                continue
            first_line[key] = line
            child_path = path + (key,)
            self.positions[child_path] = _position(key_node.start_mark)
            out[key] = self.build(value_node, child_path)
        return out

    def _scalar(self, node: yaml.ScalarNode, path: tuple[Any, ...]) -> Any:
        try:
            return _scalar_value(node.tag, node.value)
        except ValueError as exc:
            self._error(str(exc), node.start_mark, path)
            return node.value


def _check_size(root: yaml.Node, file: Path) -> None:
    """Refuse recursive aliases, and aliases that would expand the document beyond reason, before building it."""
    sizes: dict[int, int] = {}
    active: set[int] = set()

    def size(node: yaml.Node) -> int:
        if isinstance(node, yaml.ScalarNode):
            return 1
        known = sizes.get(id(node))
        if known is not None:
            return known
        if id(node) in active:
            line, column = _position(node.start_mark)
            raise ManifestError("an alias refers to a node that contains it", file=file, line=line, column=column)
        active.add(id(node))
        if isinstance(node, yaml.SequenceNode):
            total = 1 + sum(size(child) for child in node.value)
        else:
            total = 1 + sum(size(key) + size(value) for key, value in node.value)
        active.discard(id(node))
        sizes[id(node)] = total
        return total

    if size(root) > _MAX_NODES:
        raise ManifestError(
            f"the document expands to more than {_MAX_NODES:,} values (an alias repeated too often?)", file=file
        )


def _scalar_value(tag: str, text: str) -> Any:
    if tag == _STR:
        return text
    if tag == _NULL:
        if text in ("", "~", "null", "Null", "NULL"):
            return None
        raise ValueError(f"{text!r} is not a YAML null")
    if tag == _BOOL:
        if text in ("true", "True", "TRUE"):
            return True
        if text in ("false", "False", "FALSE"):
            return False
        raise ValueError(f"{text!r} is not a YAML 1.2 boolean (true or false)")
    if tag == _INT:
        if not _INT_RE.match(text):
            raise ValueError(f"{text!r} is not a YAML 1.2 integer")
        if text.startswith("0o"):
            return int(text[2:], 8)
        if text.startswith("0x"):
            return int(text[2:], 16)
        return int(text)
    if tag == _FLOAT:
        if not _FLOAT_RE.match(text):
            raise ValueError(f"{text!r} is not a YAML 1.2 number")
        lowered = text.lower()
        if lowered.endswith(".inf"):
            return float("-inf") if lowered.startswith("-") else float("inf")
        if lowered == ".nan":
            return float("nan")
        return float(text)
    raise ValueError(f"unsupported YAML tag {tag}; gridrun reads plain YAML 1.2 values only")


# --- schema validation -----------------------------------------------------------------------


def _is_integer(checker: Any, instance: Any) -> bool:
    return isinstance(instance, int) and not isinstance(instance, bool)


def _is_number(checker: Any, instance: Any) -> bool:
    if isinstance(instance, bool) or not isinstance(instance, (int, float)):
        return False
    return math.isfinite(instance)


_Validator = validators.extend(  # type: ignore[no-untyped-call]
    Draft202012Validator,
    type_checker=Draft202012Validator.TYPE_CHECKER.redefine("integer", _is_integer).redefine("number", _is_number),
)


@lru_cache(maxsize=1)
def _validator() -> Any:
    schema = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    return _Validator(schema)


def _schema_errors(manifest: Manifest) -> list[ManifestError]:
    found: dict[tuple[tuple[Any, ...], str], ManifestError] = {}
    for error in _validator().iter_errors(manifest.data):
        for path, message in _explain(error):
            found.setdefault((path, message), manifest.error(path, message))
    return list(found.values())


def _explain(error: ValidationError) -> list[tuple[tuple[Any, ...], str]]:
    path = tuple(error.absolute_path)
    schema = error.schema if isinstance(error.schema, Mapping) else {}
    kind = error.validator
    instance: Any = error.instance
    limit: Any = error.validator_value
    if "propertyNames" in error.absolute_schema_path:
        return [(path + (instance,), f"'{instance}' cannot be used here: expected {_expected(schema)}")]
    if kind == "required":
        properties = schema.get("properties", {})
        out = []
        for name in limit:
            if isinstance(instance, Mapping) and name not in instance:
                hint = _first_sentence(properties.get(name, {}).get("description", ""))
                out.append((path, f"missing required field '{name}'" + (f" ({hint})" if hint else "")))
        return out
    if kind == "additionalProperties":
        allowed = list(schema.get("properties", {}))
        out = []
        for key in instance:
            if key in allowed:
                continue
            close = difflib.get_close_matches(str(key), allowed, n=1)
            suggestion = f"; did you mean '{close[0]}'?" if close else ""
            out.append((path + (key,), f"unknown field '{key}'{suggestion} Allowed here: {', '.join(allowed)}"))
        return out
    if kind == "not" and not path:
        return [
            (
                ("sweeps",),
                "a manifest has either a top-level matrix or sweeps, not both; each sweep has its own matrix, "
                "so move the top-level matrix into the sweeps that need it",
            )
        ]
    if kind == "type":
        return [(path, f"expected {_expected(schema)}, got {_show(instance, with_type=True)}")]
    if kind in ("minimum", "exclusiveMinimum", "maximum", "exclusiveMaximum", "const", "enum", "pattern", "minLength"):
        return [(path, f"expected {_expected(schema)}, got {_show(instance, with_type=isinstance(instance, str))}")]
    if kind == "minItems":
        if not instance:
            return [(path, f"expected {_expected(schema)}, got an empty list")]
        return [(path, f"expected {_expected(schema)}: at least {limit} items, got {len(instance)}")]
    if kind == "maxItems":
        return [(path, f"expected {_expected(schema)}: at most {limit} items, got {len(instance)}")]
    if kind == "minProperties":
        return [(path, f"expected {_expected(schema)}, got an empty mapping")]
    if kind == "maxProperties":
        keys = ", ".join(str(k) for k in instance)
        return [(path, f"expected {_expected(schema)}, got several keys: {keys}")]
    return [(path, error.message)]


def _expected(schema: Mapping[str, Any]) -> str:
    if "x-expected" in schema:
        return str(schema["x-expected"])
    if "const" in schema:
        return _show(schema["const"])
    if "enum" in schema:
        return "one of " + ", ".join(_show(v) for v in schema["enum"])
    kind = schema.get("type")
    if kind in ("integer", "number"):
        text = "an integer" if kind == "integer" else "a number"
        if "minimum" in schema:
            text += f" >= {schema['minimum']}"
        if "exclusiveMinimum" in schema:
            text += f" > {schema['exclusiveMinimum']}"
        if "maximum" in schema:
            text += f" <= {schema['maximum']}"
        return text
    if kind == "string":
        if "pattern" in schema:
            return f"a string matching {schema['pattern']}"
        return "a non-empty string" if schema.get("minLength") else "a string"
    if kind == "array":
        return "a non-empty list" if schema.get("minItems") == 1 else "a list"
    if kind == "object":
        return "a mapping"
    if kind == "boolean":
        return "true or false"
    return "a valid value"


def _first_sentence(text: str) -> str:
    head = re.split(r"\.\s+(?=[A-Z])", text)[0].rstrip(".")
    return head[:1].lower() + head[1:] if head else ""


def _show(value: Any, *, with_type: bool = False) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        text = value if len(value) <= 60 else value[:57] + "..."
        return f"a string '{text}'" if with_type else f"'{text}'"
    return _kind(value)


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, (list, tuple)):
        return "a list"
    if isinstance(value, Mapping):
        return "a mapping"
    return type(value).__name__


def _sweep_name_errors(manifest: Manifest) -> list[ManifestError]:
    sweeps = manifest.data.get("sweeps")
    if not isinstance(sweeps, list):
        return []
    seen: dict[str, int] = {}
    errors = []
    for index, sweep in enumerate(sweeps):
        name = sweep.get("name") if isinstance(sweep, Mapping) else None
        if not isinstance(name, str):
            continue
        if name in seen:
            line, _ = manifest.where(("sweeps", seen[name], "name"))
            errors.append(
                manifest.error(
                    ("sweeps", index, "name"),
                    f"sweep name '{name}' is already used by sweeps[{seen[name]}] (line {line}); sweep names must be unique",
                )
            )
        else:
            seen[name] = index
    return errors


# --- values from data files ------------------------------------------------------------------


def _resolve_manifest_files(
    manifest: Manifest,
) -> tuple[dict[str, Any], dict[tuple[Any, ...], Path], list[ManifestError]]:
    reader = _FileReader(manifest.positions, Path(manifest.display), manifest.base_dir)
    data = dict(manifest.data)
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
    return data, reader.files, reader.errors


class _FileReader:
    """Replaces `{file: path}` axes with the values read from the data file, collecting errors."""

    def __init__(self, positions: Mapping[tuple[Any, ...], Position], manifest_file: Path, base_dir: Path) -> None:
        self.positions = positions
        self.manifest_file = manifest_file
        self.base_dir = base_dir
        self.files: dict[tuple[Any, ...], Path] = {}
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
            text = _read_text(absolute)
        except ManifestError as exc:
            if exc.line:
                self.errors.append(ManifestError(exc.message, file=shown, line=exc.line, column=exc.column, field=dotted(at)))
            else:
                self.errors.append(
                    self._manifest_error(at + ("file",), f"data file '{spec}': {exc.message} (looked for {absolute})")
                )
            return None
        parse = {".txt": _text_values, ".csv": _csv_values, ".jsonl": _jsonl_values}[suffix]
        problems: list[tuple[int, int, str]] = []
        values = parse(text, problems)
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
        return values


def _text_values(text: str, problems: list[tuple[int, int, str]]) -> list[Any]:
    values: list[Any] = []
    for line in text.split("\n"):
        value = line.rstrip("\r").strip()
        if value and not value.startswith("#"):
            values.append(value)
    return values


def _csv_values(text: str, problems: list[tuple[int, int, str]]) -> list[Any]:
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
    except csv.Error as exc:
        problems.append((reader.line_num, 1, f"not valid CSV: {exc}"))
    return rows


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _jsonl_values(text: str, problems: list[tuple[int, int, str]]) -> list[Any]:
    values: list[Any] = []
    for number, line in enumerate(text.split("\n"), 1):
        stripped = line.strip()
        if not stripped:
            continue
        indent = len(line) - len(line.lstrip())
        try:
            value = json.loads(stripped, parse_constant=_reject_constant)
        except json.JSONDecodeError as exc:
            problems.append((number, indent + exc.colno, f"not valid JSON: {exc.msg}"))
        except (ValueError, RecursionError) as exc:
            problems.append((number, indent + 1, f"not valid JSON: {exc}"))
        else:
            if isinstance(value, dict):
                values.append(value)
            else:
                problems.append((number, indent + 1, f"expected a JSON object on each line, got {_kind(value)}"))
        if len(problems) >= _MAX_ERRORS_PER_DATA_FILE:
            break
    return values
