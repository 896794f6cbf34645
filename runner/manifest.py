"""Load a manifest: YAML 1.2 with a source position for every node (`yamlsource`), JSON Schema validation,
and the matrix axes given as `{file: path}` read from their data files (`datafiles`), so the matrix that
`runner.matrix.expand` sees holds plain lists.

Every problem becomes a `ManifestError` naming file, line, column and field path; several found at once
become one `ManifestErrors`.
"""

from __future__ import annotations

import difflib
import json
import math
import os
import re
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from runner.datafiles import DATA_FILE_TYPES, Cap, DataLines, resolve_files, resolve_matrix_files, value_position
from runner.errors import ManifestError, ManifestErrors
from runner.options import RUN_DEFAULTS
from runner.resources import resource_dir
from runner.terminal import shows, visible
from runner.textforms import in_seconds
from runner.yamlsource import (
    KEY_AS_NAME, MAX_BYTES, Position, Positions, dotted, double_quoted_source, key_held, kind, load_yaml, locate,
    raise_all, read_text, read_yaml,
)

if TYPE_CHECKING:
    from jsonschema.exceptions import ValidationError

__all__ = [
    "DATA_FILE_TYPES", "DEFAULT_OUTPUT", "DEFAULT_PROVIDER", "RUN_DEFAULTS", "SCHEMA_PATH", "Manifest", "Position",
    "Positions", "dotted", "load", "load_yaml", "locate", "raise_all", "read_yaml", "resolve_matrix_files",
]

SCHEMA_PATH = resource_dir("schemas") / "manifest.schema.json"
DEFAULT_PROVIDER = "sim"
DEFAULT_OUTPUT = "{{ key }}.mp4"


# The control characters a folder or file name is never meant to hold (`Manifest.control_character`): C0, DEL, C1;
# NUL aside, which no name can hold (`localpaths.why_unusable` says so where the path is used).
_CONTROL = re.compile("[\x01-\x1f\x7f-\x9f]")
_CONTROL_NOT_SPACING = re.compile("[\x01-\x08\x0b-\x0c\x0e-\x1f\x7f-\x9f]")
_CONTROL_NAMES = {"\x07": "a bell", "\x08": "a backspace", "\t": "a tab", "\n": "a line break",
                  "\x0b": "a vertical tab", "\x0c": "a form feed", "\r": "a carriage return", "\x1b": "an ESC",
                  "\x7f": "a DEL"}


@dataclass(frozen=True)
class Manifest:
    """A validated manifest: its document, where each node sits in the file, and which axes came from files."""

    path: Path
    data: Mapping[str, Any]
    positions: Mapping[tuple[Any, ...], Position]
    files: Mapping[tuple[Any, ...], Path] = field(default_factory=dict)
    display: str = ""
    data_lines: Mapping[tuple[Any, ...], DataLines] = field(default_factory=dict)  # axis -> its values' lines
    # The file's text as `load` read it: what a run of this manifest's plan records as its copy (`.runs/run-N.yaml`),
    # so that copy is the manifest that made the jobs even when the file was edited after the plan. "" when not
    # loaded from a file (a run then copies the file as it is).
    text: str = ""
    # What reading its data files warned of (a .txt line skipped as a comment that reads as text, say), as
    # `warning` gives them: said with the plan's warnings, or with the errors of a plan refused.
    data_warnings: tuple[str, ...] = ()
    # Loaded without reading its data files (`load_text(read_data=False)`): its `{file: path}` axes are left as
    # written (in `files`, unread), and it is not to be planned. What names a manifest's recorded runs (its name,
    # state and output folders, endpoint) is all it is read for.
    unread: bool = False

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

    def warning(self, path: tuple[Any, ...], message: str) -> Warned:
        """A warning about the node at `path`, shown as an error would be (file:line:column: field: message)."""
        return Warned(str(self.error(path, message)), f"{dotted(path)}: {message}" if path else message)

    def error(
        self, path: tuple[Any, ...], message: str, cls: type[ManifestError] = ManifestError
    ) -> ManifestError:
        """Build an error of class `cls` about the node at `path` (in a data file, for a value read from one)."""
        in_data = value_position(self.data_lines, path) if self.data_lines else None
        if in_data is not None:
            file, (line, column) = in_data
            return cls(message, file=file, line=line, column=column, field=dotted(path))
        line, column = self.where(path)
        return cls(message, file=self.display or self.path, line=line, column=column, field=dotted(path))

    def control_character(self, path: tuple[Any, ...], text: str, what: str, *,
                          spacing: bool = True) -> ManifestError | None:
        """The error at `path` for a control character (C0, DEL, C1) in `text`, a `what` ("folder name", "file
        name template") no one means to hold one, which a folder or file would be made with, None when it holds
        none. Most often YAML made it: in double quotes, a backslash is an escape (`"C:\\vids"` is C:, a vertical
        tab, ids), which the error says when the value's source text is so written. `spacing` False: a tab or a
        line break (what a template spread over lines holds between its tags) is refused only when YAML made it
        of an escape."""
        found = _CONTROL.search(text)
        source = double_quoted_source(self.text, path) if found is not None and self.text else None
        if found is not None and not spacing and source is None:
            found = _CONTROL_NOT_SPACING.search(text)
        if found is None:
            return None
        char = found.group()
        escaped = repr(char)[1:-1]
        name = _CONTROL_NAMES.get(char)
        written = visible(text).replace("\t", "\\t")  # `visible` leaves a tab, which acts on no terminal
        message = (f"'{written}' holds {escaped}{f' ({name})' if name else ''}, a control "
                   f"character, which no {what} is meant to hold")
        if source is not None:
            message += (f": YAML read a backslash of {source} as an escape; write the value in single quotes, in "
                        "which a backslash is itself, or with / between folders")
        else:
            message += "; write the value without it"
        return self.error(path, message)



class Warned(str):
    """A warning as shown, where it is first (file:line:column: field: message); `plain` is the `field: message`
    alone (the plan JSON's form)."""

    plain: str

    def __new__(cls, shown: str, plain: str) -> Warned:
        self = super().__new__(cls, shown)
        self.plain = plain
        return self


# The names a request parameter of a manifest's provider and model (the document's `provider:` and `model:`
# values, as written) goes by -> the parameter's own name, and whether the provider takes the name as it is.
# The capability data that knows them is above this module: its reader passes them in (`capabilities.param_names`,
# by `api.load` and `gridrun matrix`).
ParamNames = Callable[[Any, Any], Mapping[str, tuple[str, bool]]]


def load(path: str | Path, *, planned: bool = False, max_jobs: int | None = None,
         param_names: ParamNames | None = None) -> Manifest:
    """Read, parse and validate a manifest. Raises ManifestError, or ManifestErrors for several. `planned`: it is
    read to be planned, with the cap of jobs `max_jobs` (--max-jobs) or its own: its data files are read no further
    than the cap allows. `param_names`: a field unknown where it is written that is a request parameter is told to
    go under `params:` (without it, only a run setting is told where it goes)."""
    shown = Path(path)
    return load_text(read_text(shown, limit=MAX_BYTES), shown, planned=planned, max_jobs=max_jobs,
                     param_names=param_names)


def load_text(text: str, shown: Path, *, at: Path | None = None, planned: bool = False,
              max_jobs: int | None = None, param_names: ParamNames | None = None, read_data: bool = True) -> Manifest:
    """Parse and validate the manifest `text`, its errors naming the file `shown`, and its relative paths starting
    at the folder of `at` (default `shown`): a run's copy of its manifest read as the file it was copied from.
    `planned`, `max_jobs`, `param_names`: as `load`'s. `read_data` False: its data files are not read (`unread`).
    Raises ManifestError, or ManifestErrors for several."""
    data, positions = load_yaml(text, file=shown)
    if data is None:
        raise ManifestError("the file is empty; a manifest needs at least version, name and model (`gridrun init -` "
                            "prints the demo manifest to start from)", file=shown)
    if not isinstance(data, dict):
        line, column = positions.get((), (1, 1))
        raise ManifestError(
            f"expected a mapping of manifest fields (version, name, model, ...) at the top level, got {kind(data)}",
            file=shown,
            line=line,
            column=column,
        )
    base = Manifest(path=Path(os.path.abspath(at or shown)), data=data, positions=positions, display=str(shown))
    errors = _schema_errors(base, param_names)
    errors += _sweep_name_errors(base)
    errors.sort(key=lambda e: (e.line, e.column))
    cap = _cap(data, max_jobs) if planned else None
    resolved, files, lines, file_errors, file_notes = resolve_files(data, positions=positions, file=shown,
                                                                    base_dir=base.base_dir, cap=cap,
                                                                    read=read_data)
    notes = tuple(Warned(str(n), f"{n.field}: {n.message}") for n in file_notes)
    try:
        raise_all(errors + file_errors)
    except (ManifestError, ManifestErrors) as exc:
        exc.warnings = (*notes, *getattr(exc, "warnings", ()))  # what may explain them (a file separated by ';')
        raise
    return Manifest(path=base.path, data=resolved, positions=positions, files=files, display=base.display,
                    data_lines=lines, text=text, data_warnings=notes, unread=not read_data)


def _cap(data: Mapping[str, Any], max_jobs: int | None) -> Cap:
    """The cap of jobs a plan of the document `data` has (as `plan.build` takes it): `max_jobs`, else its own
    `run.max_jobs` when that is a valid one, else the default."""
    if max_jobs:
        return Cap(max_jobs, flag=True)
    run = data.get("run")
    own = run.get("max_jobs") if isinstance(run, Mapping) else None
    if isinstance(own, int) and not isinstance(own, bool) and own >= 1:
        return Cap(own)
    return Cap(int(RUN_DEFAULTS["max_jobs"]))


# --- schema validation -----------------------------------------------------------------------


def _is_integer(checker: Any, instance: Any) -> bool:
    return isinstance(instance, int) and not isinstance(instance, bool)


def _is_number(checker: Any, instance: Any) -> bool:
    if isinstance(instance, bool) or not isinstance(instance, (int, float)):
        return False
    try:
        return math.isfinite(instance)
    except OverflowError:  # an integer of some 309 digits or more: no figure gridrun takes is one
        return False


@lru_cache(maxsize=1)
def _validator_class() -> Any:
    """Draft 2020-12 with gridrun's integers and numbers; jsonschema is imported only when a document is to be
    explained (`_schema_errors`) or another schema checked: importing it costs more than a run's planning."""
    from jsonschema import Draft202012Validator, validators

    return validators.extend(  # type: ignore[no-untyped-call]
        Draft202012Validator,
        type_checker=Draft202012Validator.TYPE_CHECKER.redefine("integer", _is_integer).redefine("number", _is_number),
    )


@lru_cache(maxsize=1)
def _schema() -> dict[str, Any]:
    schema: dict[str, Any] = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    return schema


@lru_cache(maxsize=1)
def _validator() -> Any:
    return _validator_class()(_schema())


@lru_cache(maxsize=1)
def field_names() -> dict[str, str]:
    """Every field a manifest sets for itself, not for a request: its top-level fields and those of `run:`, each
    as it is written in a manifest (`model`, `run.budget_usd`)."""
    schema = _schema()
    names = {name: name for name in schema["properties"]}
    names.update({name: f"run.{name}" for name in schema["$defs"]["run"]["properties"]})
    return names


def _schema_errors(manifest: Manifest, param_names: ParamNames | None = None) -> list[ManifestError]:
    if schema_allows(_schema(), manifest.data):
        return []
    return schema_errors(_validator(), manifest.data, manifest.error, placed=_placer(manifest.data, param_names))


def _placer(data: Mapping[str, Any], param_names: ParamNames | None
            ) -> Callable[[tuple[Any, ...], str, bool], str | None]:
    """Where a field unknown at `path` goes instead, said for `_explain` (None: nowhere else). The slips it knows
    are a request parameter written beside `params:` (`seed:` at the top level or in a sweep, or under `run:`) and
    a run setting written at the top level (`concurrency:`): both are the schema's fields one level off, which a
    close match among the mapping's own fields would miss or get wrong (`seed` is not `sweeps`). `close`: the key
    is matched loosely (a misspelt `qualty`), once the mapping's own fields gave no close match."""
    try:
        params = dict(param_names(data.get("provider"), data.get("model"))) if param_names else {}
    except Exception:  # noqa: BLE001 - a hint is never worth an error of its own: the field is said without it
        params = {}
    run_fields = list(_schema()["$defs"]["run"]["properties"])

    def placed(path: tuple[Any, ...], key: str, close: bool) -> str | None:
        top = not path
        in_sweep = len(path) == 2 and path[0] == "sweeps" and isinstance(path[1], int)
        in_run = path == ("run",)
        if not (top or in_sweep or in_run):
            return None
        folded = key.casefold()
        if top:
            meant = _match(folded, run_fields, close)
            if meant is not None:
                return f"a run setting goes under run: (run.{meant})"
        name = _match(folded, list(params), close)
        if name is None:
            return None
        own, taken = params[name]
        where = dotted((*path, "params")) if in_sweep else "params"
        if taken:
            return f"a request parameter goes under {where}: ({where}.{name})"
        return (f"a request parameter goes under {where}: ({where}.{own}; '{name}' is another provider's name "
                f"for it)")

    return placed


def _match(folded: str, names: list[str], close: bool) -> str | None:
    """Of `names`, the one `folded` is (in any case), or when `close` the one it is closest to; None if none."""
    for name in names:
        if name.casefold() == folded:
            return name
    if close:
        found = difflib.get_close_matches(folded, [n.casefold() for n in names], n=1)
        if found:
            return next(n for n in names if n.casefold() == found[0])
    return None


def schema_validator(path: Path) -> Any:
    """A validator of the JSON schema at `path`, with gridrun's integers and numbers (no booleans, finite)."""
    return _validator_class()(json.loads(path.read_text(encoding="utf-8")))


# -- the quick check of a valid document -------------------------------------------------------------
#
# Most manifests are valid, and saying so needs none of jsonschema (importing it and the packages under it costs
# some 50 ms, more than planning a few hundred jobs). `schema_allows` answers for the keywords the manifest schema
# uses, exactly as jsonschema's Draft 2020-12 validator with gridrun's types does; a keyword it does not know (a
# schema that grew one), a reference other than one inside the document, or a value it cannot compare as
# jsonschema does makes it unsure, and jsonschema decides. It only ever skips jsonschema for a document jsonschema
# finds nothing wrong with: an invalid one is explained by jsonschema, as before.


class _Unsure(Exception):
    """The quick check cannot tell as jsonschema would."""


# Keywords that validate nothing (annotations), and `then`/`else`, which only `if` applies.
_ANNOTATIONS = frozenset({"$schema", "$id", "$comment", "$defs", "title", "description", "default", "examples",
                          "deprecated", "readOnly", "writeOnly", "then", "else"})


def schema_allows(schema: Any, document: Any) -> bool:
    """Whether `document` is valid under `schema` (True only when jsonschema would find no error in it; False
    when it would, or when this check cannot tell)."""
    try:
        return _allows(schema, document, schema)
    except (_Unsure, RecursionError, TypeError, ValueError, re.error):  # a value it cannot compare, say
        return False


def _allows(schema: Any, value: Any, root: Any) -> bool:
    if schema is True:
        return True
    if schema is False:
        return False
    if not isinstance(schema, dict) or (schema is not root and "$id" in schema):  # another base for its references
        raise _Unsure
    for keyword, arg in schema.items():
        if keyword in _ANNOTATIONS or keyword.startswith("x-"):
            continue
        check = _KEYWORDS.get(keyword)
        if check is None:
            raise _Unsure
        if not check(arg, value, schema, root):
            return False
    return True


def _is_type(name: Any, value: Any) -> bool:
    if name == "object":
        return isinstance(value, dict)
    if name == "array":
        return isinstance(value, list)
    if name == "string":
        return isinstance(value, str)
    if name == "integer":
        return _is_integer(None, value)
    if name == "number":
        return _is_number(None, value)
    if name == "boolean":
        return isinstance(value, bool)
    if name == "null":
        return value is None
    raise _Unsure


def _equal(one: Any, two: Any) -> bool:
    """jsonschema's equality of two plain values (`true` is not 1); unsure of lists and mappings."""
    if one is two:
        return True
    if isinstance(one, str) or isinstance(two, str):
        return bool(one == two)
    plain = (bool, int, float, type(None))
    if not isinstance(one, plain) or not isinstance(two, plain):
        raise _Unsure
    if isinstance(one, bool) or isinstance(two, bool):
        return False  # not the same object: two booleans that differ, or a boolean and a number
    return bool(one == two)


def _resolve(ref: Any, root: Any) -> Any:
    if not isinstance(ref, str) or not ref.startswith("#/") or "~" in ref or "%" in ref:
        raise _Unsure
    node = root
    for part in ref[2:].split("/"):
        if not isinstance(node, dict) or part not in node:
            raise _Unsure
        node = node[part]
    return node


def _if(arg: Any, value: Any, schema: Any, root: Any) -> bool:
    if _allows(arg, value, root):
        return "then" not in schema or _allows(schema["then"], value, root)
    return "else" not in schema or _allows(schema["else"], value, root)


def _additional(arg: Any, value: Any, schema: Any, root: Any) -> bool:
    if not isinstance(value, dict):
        return True
    if "patternProperties" in schema:
        raise _Unsure
    named = schema.get("properties", {})
    extras = [key for key in value if key not in named]
    if isinstance(arg, dict):
        return all(_allows(arg, value[key], root) for key in extras)
    return bool(arg) or not extras


def _items(arg: Any, value: Any, schema: Any, root: Any) -> bool:
    if not isinstance(value, list):
        return True
    prefix = len(schema.get("prefixItems", []))
    if len(value) <= prefix:
        return True
    if arg is False:
        return False
    return all(_allows(arg, item, root) for item in value[prefix:])


_KEYWORDS: dict[str, Callable[[Any, Any, Any, Any], bool]] = {
    "$ref": lambda arg, value, schema, root: _allows(_resolve(arg, root), value, root),
    "type": lambda arg, value, schema, root: any(_is_type(t, value) for t in ([arg] if isinstance(arg, str) else arg)),
    "const": lambda arg, value, schema, root: _equal(value, arg),
    "not": lambda arg, value, schema, root: not _allows(arg, value, root),
    "if": _if,
    "properties": lambda arg, value, schema, root: not isinstance(value, dict) or all(
        _allows(sub, value[name], root) for name, sub in arg.items() if name in value),
    "additionalProperties": _additional,
    "propertyNames": lambda arg, value, schema, root: not isinstance(value, dict) or all(
        _allows(arg, key, root) for key in value),
    "required": lambda arg, value, schema, root: not isinstance(value, dict) or all(name in value for name in arg),
    "minProperties": lambda arg, value, schema, root: not isinstance(value, dict) or len(value) >= arg,
    "maxProperties": lambda arg, value, schema, root: not isinstance(value, dict) or len(value) <= arg,
    "items": _items,
    "prefixItems": lambda arg, value, schema, root: not isinstance(value, list) or all(
        _allows(sub, item, root) for item, sub in zip(value, arg)),
    "minItems": lambda arg, value, schema, root: not isinstance(value, list) or len(value) >= arg,
    "maxItems": lambda arg, value, schema, root: not isinstance(value, list) or len(value) <= arg,
    "minLength": lambda arg, value, schema, root: not isinstance(value, str) or len(value) >= arg,
    "pattern": lambda arg, value, schema, root: not isinstance(value, str) or re.search(arg, value) is not None,
    "minimum": lambda arg, value, schema, root: not _is_number(None, value) or value >= arg,
    "maximum": lambda arg, value, schema, root: not _is_number(None, value) or value <= arg,
    "exclusiveMinimum": lambda arg, value, schema, root: not _is_number(None, value) or value > arg,
}


def schema_errors(validator: Any, data: Any, error: Callable[[tuple[Any, ...], str], ManifestError], *,
                  placed: Callable[[tuple[Any, ...], str, bool], str | None] | None = None) -> list[ManifestError]:
    """What `validator` finds wrong in `data`, each said as a manifest's problems are (an unknown field with the
    one it is close to, a value with what was expected) and made into an error by `error(path, message)`.
    `placed(path, key, close)`: where a field unknown in the mapping at `path` goes instead, if anywhere."""
    from .bugs import key_values

    keys = key_values()
    found: dict[tuple[tuple[Any, ...], str], ManifestError] = {}
    for problem in validator.iter_errors(data):
        for path, message in _explain(problem, placed):
            unshown = _key_unshown(path, message, keys) if keys else None
            if unshown is None:
                found.setdefault((path, message), error(path, message))
                continue
            at, said, named = unshown
            if (at, said) not in found:
                e = error(at, said)
                found[(at, said)] = type(e)(e.message, file=e.file, line=e.line, column=e.column, field=dotted(named))
    return list(found.values())


# What is said of a manifest's value that holds an API key this process holds, named by its variable (of a mapping's
# key, the field's name, which is then not shown: `KEY_AS_NAME`).
KEY_AS_VALUE = ("holds the value of {var} (an API key, not shown): a key goes in the environment, never the manifest, "
                "whose values the state, the sidecars and the report keep; take it out")


def _key_unshown(path: tuple[Any, ...], message: str, keys: Mapping[str, str]
                 ) -> tuple[tuple[Any, ...], str, tuple[Any, ...]] | None:
    """Of a schema problem whose field's name or message holds an API key of `keys` (`bugs.key_values`): the path
    to place it at, a message naming the key's variable in place of what held it, and the path to name as its
    field (the mapping, where a key of it is the field's name); None where neither holds one. A key written in the
    manifest is refused as `plan` refuses one elsewhere, never shown."""
    for i, part in enumerate(path):
        if (var := key_held(part, keys)) is not None:
            return path[:i + 1], KEY_AS_NAME.format(var=var), path[:i]
    if (var := key_held(message, keys)) is not None:
        return path, KEY_AS_VALUE.format(var=var), path
    return None


def _explain(error: ValidationError, placed: Callable[[tuple[Any, ...], str, bool], str | None] | None = None
             ) -> list[tuple[tuple[Any, ...], str]]:
    path = tuple(error.absolute_path)
    schema = error.schema if isinstance(error.schema, Mapping) else {}
    kind = error.validator
    instance: Any = error.instance
    limit: Any = error.validator_value
    if "propertyNames" in error.absolute_schema_path:
        said = f"'{instance}' cannot be used here: expected {_expected(schema)}{_not_allowed(schema, instance)}"
        return [(path + (instance,), said)]
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
            # a field of another level (`seed:` beside `params:`) is told where it goes before a sibling it merely
            # looks like (`sweeps`); a misspelt one (`qualty:`) is matched loosely only when no sibling is close
            close = difflib.get_close_matches(str(key), allowed, n=1)
            there = placed and (placed(path, str(key), False) or (None if close else placed(path, str(key), True)))
            if there:
                out.append((path + (key,), f"unknown field '{key}' here: {there}"))
                continue
            suggestion = f"; did you mean '{close[0]}'?" if close else "."
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
        unit = in_seconds(instance) if schema.get("x-unit") == "seconds" else ""
        got = _unquoted(schema, instance) or _show(instance, with_type=True)
        return [(path, f"expected {_expected(schema)}, got {got}{unit}")]
    if kind in ("minimum", "exclusiveMinimum", "maximum", "exclusiveMaximum", "const", "enum", "pattern", "minLength"):
        got = _show(instance, with_type=isinstance(instance, str))
        if path[-1:] == ("base_url",) and isinstance(instance, str) and "@" in instance.split("?", 1)[0].split("#", 1)[0]:
            # not a URL gridrun takes, maybe `user:pass@host` with no scheme: what is before the '@' is never shown
            got = "a string holding a user name or password before an '@' (not shown)"
        which = _not_allowed(schema, instance) if kind == "pattern" else ""
        return [(path, f"expected {_expected(schema)}, got {got}{which}")]
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
        if "minimum" in schema and "maximum" in schema:
            return f"{text} from {schema['minimum']} to {schema['maximum']}"
        bounds = [f"{op} {schema[k]}" for k, op in (("minimum", ">="), ("exclusiveMinimum", ">"), ("maximum", "<="))
                  if k in schema]
        return " and ".join([f"{text} {bounds[0]}", *bounds[1:]]) if bounds else text
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


def _not_allowed(schema: Mapping[str, Any], text: Any) -> str:
    """Of a string a pattern of one character class for its first character and one for the others
    (`^[A-Za-z0-9][A-Za-z0-9._-]*$`) refuses, what says which character is not allowed where ("" for any other
    pattern or value): the user of a name `füchse` is not left to guess that it is the `ü`."""
    found = re.fullmatch(r"\^(\[[^\]]+\])(\[[^\]]+\])\*\$", str(schema.get("pattern", "")))
    if found is None or not isinstance(text, str):
        return ""
    first, rest = found.groups()
    for i, char in enumerate(text):
        if re.fullmatch(first if i == 0 else rest, char) is None:
            # a tab as \t; a letter the output cannot show (`ç` in ASCII) as \xe7, not as the letter without its
            # accent that the output writes for it, which the pattern would allow
            shown = visible(char) if char.isprintable() and shows(sys.stderr, char) else ascii(char)[1:-1]
            if i == 0 and re.fullmatch(rest, char) is not None:
                return f": it cannot start with '{shown}'"
            return f": '{shown}' (character {i + 1}) is not allowed"
    return ""


def _first_sentence(text: str) -> str:
    head = re.split(r"\.\s+(?=[A-Z])", text)[0].rstrip(".")
    return head[:1].lower() + head[1:] if head else ""


def _unquoted(schema: Mapping[str, Any], value: Any) -> str:
    """What a value YAML read as a number, a boolean or null is, and that it goes in quotes, where `schema` takes
    only a string (`name: 2025` is the number 2025, not the name "2025"); "" for any other."""
    if schema.get("type") != "string" or isinstance(value, str) or not (value is None or isinstance(value, (bool, int, float))):
        return ""
    if value is None:
        return "null, as YAML reads an empty value, ~ or null unquoted: write the value, in quotes if it is ~ or null"
    read = "the boolean" if isinstance(value, bool) else "the number"
    return f"{read} {_show(value)}, as YAML reads the value unquoted: write it in quotes (\"...\") for a string"


def _show(value: Any, *, with_type: bool = False) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        text = visible(value if len(value) <= 60 else value[:57] + "...")
        return f"a string '{text}'" if with_type else f"'{text}'"
    return kind(value)


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
