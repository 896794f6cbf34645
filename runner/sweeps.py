"""The jobs of each sweep: vars and params rendered per matrix combination, requests checked and priced by
the capability data, keys, hashes and output paths made and checked; every problem collected with its
place in the manifest, so that one pass reports many.
"""

from __future__ import annotations

import dataclasses
import difflib
import hashlib
import itertools
import json
import keyword
import operator
import os
import posixpath
import re
import unicodedata
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import images
from .datafiles import encodable, is_empty_row, value_position
from .errors import CapabilityError, ManifestError, ManifestErrors, MatrixError, TemplateError
from .jobs import Job, canonical, format_value, job_hash, not_json, whole_key_text
from .localpaths import NAME_MAX, UNUSABLE, home_unexpanded, shown, unnameable, why_unusable
from .manifest import DEFAULT_OUTPUT, Manifest, Warned, dotted, field_names
from .matrix import Combination, Expansion
from .outputs import files_beside, stem_of
from .providers.capabilities import (Checked, Issue, ModelCaps, ProviderCaps, address_problem, default_files,
                                     has_credentials, written_value)
from .template import Compiled, TemplateProblem, compile_value, dependents, method_for_column, null_written, var_order
from .textforms import alike, alike_value, blank, escaped, unlike
from .yamlsource import FOLDED_BLOCK, LINE_BREAK, LITERAL_BLOCK

IMAGE_PARAMS = ("input_reference", "last_frame_image")
_PLAIN_JSON = frozenset({str, int, bool, type(None)})  # a request value that is JSON as it is
_MAX_REPORTED = 20
_SAFE_REL = re.compile(r"(?!\.\.?(?:/|$))[A-Za-z0-9_=,+@#%-][A-Za-z0-9._=,+@#%-]*(?:/(?!\.\.?(?:/|$))[A-Za-z0-9._=,+@#%-]+)*")


class Collector:
    """Gathers errors so that one pass reports many, each once, with how many jobs it hits."""

    def __init__(self, home: Path | str | None = None) -> None:
        self.home = None if home is None else str(home)  # the manifest's file: its errors come first
        self.errors: dict[tuple[str, str, str, int, int], tuple[ManifestError, list[tuple[str, str | None]]]] = {}
        self.one_job = False            # a plan of one job: naming it adds nothing

    def add(self, err: ManifestError, job: str | None = None, detail: str | None = None) -> None:
        """Record `err`, once; `job` is the key of a job it hits, `detail` what differs from job to job."""
        k = (err.field, err.message, str(err.file), err.line, err.column)
        if k not in self.errors:
            self.errors[k] = (err, [])
        if job is not None:
            self.errors[k][1].append((job, detail))

    def __bool__(self) -> bool:
        return bool(self.errors)

    def raise_if_any(self) -> None:
        if not self.errors:
            return
        out: list[ManifestError] = []
        # By place: each file's in line order, the manifest's first, then the data files' in the order of their
        # first error.
        files: dict[str, int] = {} if self.home is None else {self.home: 0}
        for err, _ in self.errors.values():
            files.setdefault(str(err.file), len(files))
        found = sorted(self.errors.values(), key=lambda e: (files[str(e[0].file)], e[0].line, e[0].column))
        for err, jobs in found[:_MAX_REPORTED]:
            if jobs:
                key, detail = jobs[0]
                cut = "…" in key
                key = _named(key)
                example = f"{key}: {detail}" if detail else key
                if cut and detail and detail.startswith("from "):
                    # a key cut short may read as another's (the values that tell them apart past its cut): the
                    # row first
                    example = f"the job {detail}, key {key}"
                if self.one_job:
                    more = detail or ""
                elif len(jobs) > 1:
                    more = f"in {len(jobs):,} jobs, e.g. {example}"
                else:
                    more = f"in {'' if example.startswith('the job ') else 'job '}{example}"
                if more:
                    err = type(err)(f"{err.message} ({more})", file=err.file, line=err.line, column=err.column,
                                    field=err.field)
            out.append(err)
        if len(self.errors) > _MAX_REPORTED:
            raise ManifestErrors(out, not_listed=len(self.errors) - _MAX_REPORTED)
        raise out[0] if len(out) == 1 else ManifestErrors(out)


def _named(key: str) -> str:
    """A job's key as an error names it: quoted when it holds a value cut short (its first characters, '…' and
    six digits of its hash, a JSON object without its closing brace), so that it reads as a key, not as a message
    cut off."""
    return repr(key) if "…" in key else key


# A template that is one name, perhaps with a dotted key: `{{ shot }}`, `{{ cfg.tags }}`.
_ONE_NAME = re.compile(r"\s*\{\{[-+]?\s*([^\W\d][\w.]*)\s*-?\}\}\s*")


def _text_of(source: Any, value: Any, name: str, row: bool) -> str:
    """For a text parameter `name` whose template (`source`) made a mapping or a list (`value`), not text: how to
    write text of it (a column of a data file's row, a key of a mapping, the items joined); "" for another value."""
    m = _ONE_NAME.fullmatch(source) if isinstance(source, str) else None
    if isinstance(value, Mapping) and value:
        keys = [k for k in value if isinstance(k, str)]
        if not keys:
            return ""
        if row and len(keys) == 1 and re.fullmatch(r"sep=.?", keys[0]):
            return ""  # Excel's `sep=;` line read as the header: the file is warned of as ';'-separated
        folded = name.casefold()
        pick = (name if name in keys else next((k for k in keys if folded in k.casefold()), None)
                or next((k for k in keys if isinstance(value[k], str)), keys[0]))
        kind = "column" if row else "key"
        shown = ", ".join(keys[:12]) + (", ..." if len(keys) > 12 else "")
        # `r.shot id` or `r.prompt-text` is not the column, and `r.items` is the mapping's method: those by subscript
        plain = pick.isidentifier() and not keyword.iskeyword(pick) and not hasattr(dict, pick)
        part = f".{pick}" if plain else f"[{pick!r}]"
        write = f"{{{{ {m[1]}{part} }}}}" if m else f"its {kind} {part}"
        return (f"; {m[1] if m else 'it'} is a {'row' if row else 'mapping'}, not text: write one of its {kind}s, "
                f"{write} ({kind}s: {shown})")
    if isinstance(value, (list, tuple)):
        return (f"; {m[1]} is a list, not text: join it, {{{{ {m[1]} | join(', ') }}}}" if m else
                "; it is a list, not text: join its items, | join(', ')")
    return ""


@dataclass(slots=True)
class Sweep:
    name: str | None
    index: int | None
    matrix: Mapping[str, Any] | None
    vars: dict[str, Any]
    params: dict[str, Any]
    repeat: int
    output: str
    var_paths: dict[str, tuple[Any, ...]] = field(default_factory=dict)
    param_paths: dict[str, tuple[Any, ...]] = field(default_factory=dict)
    output_path: tuple[Any, ...] = ("output",)

    @property
    def prefix(self) -> tuple[Any, ...]:
        return () if self.index is None else ("sweeps", self.index)


def _others(aliases: Mapping[str, str]) -> dict[str, frozenset[str]]:
    """Each name of a parameter given by more than one (`duration`, `seconds`) -> its other names."""
    groups: dict[str, set[str]] = {}
    for alias, name in aliases.items():
        groups.setdefault(name, {name}).add(alias)
    return {n: frozenset(group - {n}) for group in groups.values() for n in group}


def param_named(model: ModelCaps, name: str) -> tuple[str, str] | None:
    """The request parameter a name that is not one of the model's stands for, and how (`seconds`: ('duration',
    'another name for')): another name the provider takes, another provider's name, or either in another case.
    None for a parameter's own name, or a name of none."""
    if name in model.params:
        return None
    if name in model.aliases:
        return model.aliases[name], "another name for"
    if name in model.other_names:
        return model.other_names[name], "another provider's name for"
    folded = name.casefold()
    for other, param in (*model.aliases.items(), *model.other_names.items()):
        if other.casefold() == folded:
            return param, f"'{other}' in another case, a name of"
    return None


def sweeps_of(m: Manifest, aliases: Mapping[str, str] | None = None) -> list[Sweep]:
    """The sweeps of `m`, each with the vars and params it has over the top level's. `aliases` (another name of a
    parameter -> its own, `seconds` -> `duration`): a sweep's parameter under either name replaces the top level's
    under the other, as under the same name (a sweep's `duration: null` undoes a top-level `seconds: 8`)."""
    others = _others(aliases or {})
    top_vars = dict(m.vars or {})
    top_params = dict(m.params or {})
    output = m.output or DEFAULT_OUTPUT
    if not m.sweeps:
        s = Sweep(None, None, m.matrix, top_vars, top_params, int(m.repeat or 1), output)
        s.var_paths = {k: ("vars", k) for k in top_vars}
        s.param_paths = {k: ("params", k) for k in top_params}
        return [s]
    out = []
    for i, sw in enumerate(m.sweeps):
        vars_ = {**top_vars, **(sw.get("vars") or {})}
        own = sw.get("params") or {}
        replaced = {o for k in own for o in others.get(k, ()) if o not in own}
        params = {**{k: v for k, v in top_params.items() if k not in replaced}, **own}
        s = Sweep(sw["name"], i, sw.get("matrix"), vars_, params, int(sw.get("repeat") or m.repeat or 1),
                   sw.get("output") or output)
        s.var_paths = {k: (("sweeps", i, "vars", k) if k in (sw.get("vars") or {}) else ("vars", k)) for k in vars_}
        s.param_paths = {k: (("sweeps", i, "params", k) if k in (sw.get("params") or {}) else ("params", k)) for k in params}
        s.output_path = ("sweeps", i, "output") if sw.get("output") else ("output",)
        out.append(s)
    return out


def null_beside_value(m: Manifest, aliases: Mapping[str, str]) -> list[ManifestError]:
    """An error for each place (params, a sweep's params) that gives a parameter a null under one of its names and
    a value under another (`{duration: null, seconds: 10}`): two values of one parameter in one place, as 10 and 5
    would be, at the other name's line."""
    layers = [(("params",), m.params or {})]
    layers += [(("sweeps", i, "params"), sw.get("params") or {}) for i, sw in enumerate(m.sweeps or ())]
    found = []
    for where, params in layers:
        for alias, name in aliases.items():
            if alias in params and name in params and (params[alias] is None) != (params[name] is None):
                found.append(m.error(where + (alias,), (
                    f"{written_value(params[alias])} contradicts {name} {written_value(params[name])}: {alias} is another name "
                    f"for {name}, and a null under one name beside a value under the other leaves which is meant "
                    "unknown; give one of them")))
    return found


def _template_error(m: Manifest, path: tuple[Any, ...], exc: TemplateProblem,
                    row: Callable[[tuple[Any, ...], str], str | None] | None = None) -> TemplateError:
    """The error of the template at `path`: at the file line of the template's failing line when the template is
    a literal block (`|`, whose lines are the file's) or a folded one (`>`, its lines joined by spaces), at the
    column of the failing name when it is known, else at its field. `row`: where the row of the data file at
    an axis path that the job reads by a name is (`rows.csv:4`), as `JobMaker._row_in` finds it; a column the row
    lacks is said with the row's line (`row_line` of the error, what differs from job to job: the errors of all
    the rows that lack it are one)."""
    line_of_row = None
    if exc.row_of is not None:  # a key a mapping lacks: one that is a data file's row says so, its columns
        path = tuple(path)
        files = [(axis, lines.file) for axis, lines in m.data_lines.items() if len(axis) >= 2
                 and axis[-1] == exc.mapping and axis[-2] == "matrix" and path[:len(axis) - 2] == tuple(axis[:-2])]
        if files:
            if row is not None and exc.mapping is not None:
                line_of_row = row(files[-1][0], exc.mapping)
            exc = exc.row_of(str(files[-1][1]))
    err = m.error(path, exc.message, TemplateError)
    block = m.positions.get(tuple(path) + (LITERAL_BLOCK,))
    # the text the problem is of, when it is the text at `path` (a var's problem may be told at a parameter)
    source = exc.source if exc.source is not None and _value_at(m.data, path) == exc.source else None
    if exc.lineno is not None and block is not None:
        line, column = block[0] + exc.lineno - 1, block[1]
        if source is not None and exc.spot is not None:
            column = _column_of(m.text, line, source, exc.spot) or column
        err = TemplateError(exc.message, file=err.file, line=line, column=column, field=err.field)
    folded = None if block is not None else m.positions.get(tuple(path) + (FOLDED_BLOCK,))
    if folded is not None and source is not None and (exc.spot is not None or exc.lineno is not None):
        found = _folded_spot(m.text, folded, source, exc.spot, exc.lineno)
        if found is not None:
            err = TemplateError(exc.message, file=err.file, line=found[0], column=found[1], field=err.field)
    err.row_line = None if line_of_row is None else f"from {line_of_row}"
    return err


_TAG = re.compile(r"\{\{.*?\}\}|\{%.*?%\}", re.DOTALL)


def _template_warning(m: Manifest, path: tuple[Any, ...], source: Any, name: str, message: str) -> Warned:
    """The warning `message` of the template at `path` about a name it reads: at the file line and column of the
    name's first read inside a tag when the template is a block scalar (`|`, `>`), as its errors are; else at
    its field."""
    problem = TemplateProblem(message)
    if isinstance(source, str):
        word = re.compile(rf"(?<![\w.]){re.escape(name)}(?!\w)")
        found = next((w for tag in _TAG.finditer(source) if (w := word.search(source, tag.start(), tag.end()))), None)
        if found is not None:
            problem.source, problem.spot = source, found.start()
            problem.lineno = len(LINE_BREAK.findall(source, 0, found.start())) + 1
    return Warned(str(_template_error(m, path, problem)), f"{dotted(path)}: {message}")


def _value_at(data: Any, path: Sequence[Any]) -> Any:
    """The value at `path` in the manifest's document, or None."""
    for step in path:
        try:
            data = data[step]
        except (KeyError, IndexError, TypeError):
            return None
    return data




def _column_of(text: str, line: int, source: str, spot: int) -> int | None:
    """The file column of `spot` in template `source`, a literal block whose line holding it is the file's `line`
    (its text is found in that line as written, past the block's indentation); None when not found."""
    lines = LINE_BREAK.split(text)
    start = max(source.rfind("\n", 0, spot), source.rfind("\r", 0, spot)) + 1
    if not 1 <= line <= len(lines):
        return None
    at = lines[line - 1].find(LINE_BREAK.split(source[start:], 1)[0])
    return None if at < 0 else at + spot - start + 1


def _folded_spot(text: str, block: tuple[int, int], source: str, spot: int | None,
                 lineno: int | None) -> tuple[int, int] | None:
    """The file line and column of `spot` (else the start of the template's line `lineno`) in the text of a folded
    block scalar (`>`) written on the file's lines `block` (first, last): each line's text is in the folded text
    as written, in turn, its line breaks made spaces; None when they are not found so."""
    if spot is None:
        assert lineno is not None
        breaks = list(LINE_BREAK.finditer(source))
        if lineno > len(breaks) + 1:
            return None
        spot = breaks[lineno - 2].end() if lineno > 1 else 0
    lines = LINE_BREAK.split(text)
    at = 0
    for number in range(block[0], min(block[1], len(lines)) + 1):
        written = lines[number - 1].strip(" ")
        if not written:
            continue
        found = source.find(written, at)
        if found < 0 or found > spot:
            return None
        if spot < found + len(written):
            return number, lines[number - 1].find(written) + spot - found + 1
        at = found + len(written)
    return None


def _matrix_path(sweep: Sweep, source: str, key: str) -> tuple[Any, ...]:
    base = sweep.prefix + ("matrix",)
    for kind in ("include", "zip"):
        if source.startswith(kind + " "):
            try:
                return base + (kind, int(source.split()[1]) - 1, key)
            except (ValueError, IndexError):
                return base
    return base + (key,)


def _include_of(shape: _Shape) -> int | None:
    """The include entry (0-based) that made the combinations of `shape` on its own, as one that matched no
    combination does; None for the product's."""
    labels = set(shape.sources.values())
    if len(labels) != 1:
        return None
    label = labels.pop()
    number = label.split()[1] if label.startswith("include ") and len(label.split()) == 2 else ""
    return int(number) - 1 if number.isdigit() else None


def _getter(names: Sequence[str]) -> Callable[[Mapping[str, Any]], tuple[Any, ...]]:
    """A function returning the values of `names` in a mapping, always as a tuple."""
    if not names:
        return lambda _: ()
    if len(names) == 1:
        get = operator.itemgetter(names[0])
        return lambda mapping: (get(mapping),)
    return operator.itemgetter(*names)


@dataclass(slots=True)
class _Shape:
    """What all combinations with one set of matrix keys (one `sources` tuple) share within a sweep."""

    keys: frozenset[str]                    # the matrix keys
    sources: dict[str, str]                 # matrix key -> "matrix", "include 2", ...
    overrides: tuple[tuple[int, str], ...]  # (index in values, request parameter) set by matrix values
    dyn: tuple[str, ...]                    # vars rendered per job, in dependency order
    keyed: Callable[[Mapping[str, Any]], tuple[Any, ...]]  # the values that vary and decide the check
    free: tuple[str, ...]                   # free-text parameters that vary: checked to be strings, hashed per job
    maybe_not_str: tuple[str, ...]          # free-text parameters that may render to something else
    limited: tuple[tuple[str, int], ...]    # free-text parameters that vary, and the most characters each may have
    unset: tuple[str, ...]                  # parameters given under another name of one a matrix value sets
    entries: dict[Any, _Entry] = field(default_factory=dict)


@dataclass(slots=True)
class _Entry:
    """One `ModelCaps.check` outcome, shared by every job whose parameters differ only in free text."""

    checked: Checked
    segments: tuple[str, ...]               # the canonical hash text around the free-text values
    hashed_free: tuple[str, ...]            # the free-text parameters in the order they appear in it
    images: bool                            # local images: hashed by content, per job
    duration: float | None                  # None when it is free text (and so differs per job)
    sources: Mapping[str, str]


class JobMaker:
    """Builds the jobs of each sweep in turn; caches what jobs share so that 100,000 jobs stay cheap."""

    def __init__(self, m: Manifest, caps: ProviderCaps, model: ModelCaps, errors: Collector,
                 digest: Callable[[Path], str], out_prefix: str, *, name_max: int = NAME_MAX) -> None:
        self.m = m
        self.provider = caps.provider
        self.model = model
        self.errors = errors
        self.digest = digest
        self.out_prefix = out_prefix
        self.jobs: list[Job] = []
        self.warnings: dict[str, None] = {}
        self._no_extension: set[tuple[Any, ...]] = set()  # outputs warned of: they name files with no extension
        # outputs warned of: a '/' of a value makes folders where the template writes the file name
        self._value_folders: set[tuple[Any, ...]] = set()
        self._var_fns: Mapping[str, Callable[[Mapping[str, Any]], Any]] = {}
        # job key -> what made it (sweep, shape, matrix values, take): a second job of the key is told from it
        self.seen_keys: dict[str, tuple[Sweep, _Shape, tuple[tuple[str, Any], ...], int]] = {}
        # a job key as its values read (`alike`), where that is other text -> the first job key that reads so
        self.read_keys: dict[str, str] = {}
        self.outputs = OutputClaims(name_max)
        self.digests: dict[str, str] = {}
        self._defaults_from: dict[str, str] | None = None  # `_default_files`
        # An input image not found -> the SHA-256 a done job of the state recorded sending from that path, or None
        # (`plan._RecordedImages`): its jobs are planned by that digest, to be found done (`gone`).
        self.recorded_image: Callable[[str], str | None] = lambda path: None
        # image path -> (where, its data-file note, as written, looked for) of each image planned from a recorded digest: its jobs
        # must be done (their videos kept) or it is the error it would have been (`plan._gone_images`)
        self.gone: dict[str, tuple[tuple[Any, ...], str, str, Path]] = {}
        self.images: dict[tuple[str, str], tuple[str, Any]] = {}
        self._folders: dict[Path, dict[str, str]] = {}  # a folder an input image was not found in -> its names
        self._folders_cased: dict[Path, dict[str, str]] = {}  # the same, by their names case-folded
        ruled = {str(k) for rule in model.rules for k in (*rule.get("when", {}), *rule.get("when_matches", {}),
                                                          rule.get("param"), rule.get("requires"))}
        # Free text (prompts) is only checked to be a string, so it can stay out of the check cache's key.
        self.free_text = frozenset(n for n, s in model.params.items()
                                   if s.type == "string" and s.enum is None and n not in ruled)
        self.required_text = tuple(n for n in self.free_text if model.params[n].required)
        self.params_folded = {n.casefold(): n for n in model.params}
        self.spellings = _others(model.aliases)  # a parameter's name -> its other names (duration: seconds)
        self.templated: frozenset[str] = frozenset()  # names the sweep's templates use
        self.reads: dict[str, frozenset[str]] = {}  # templated parameter -> the names it reads, itself or in vars
        self._rows: dict[tuple[Any, ...], dict[int, int]] = {}  # axis read from a data file -> id(value) -> index
        self._repeated: dict[tuple[Any, ...], dict[str, list[int]]] = {}  # axis -> values it holds twice or more
        # (sweep, matrix key setting a parameter) -> (its values, [whether each is one the model does not use],
        # where the key is)
        self._unused_keys: dict[tuple[int | None, str], tuple[set[tuple[type, Any]], list[bool], str]] = {}
        self._shadowed: dict[tuple[Any, ...], bool] = {}  # var -> whether a matrix key of its name is in every job
        self._var_params: dict[tuple[Any, ...], str] = {}  # var named like a parameter it does not set -> warning
        self._var_read: set[tuple[Any, ...]] = set()  # vars named like a parameter that a template reads
        self._no_sweep = ""  # what an output error adds when the output reads sweep in a manifest without sweeps
        self._sweep_names: dict[str, str] = {}  # the sweeps' names, case-folded -> the first sweep's of each
        # the names the parameters' and outputs' templates of any sweep read, themselves or through vars (`read_by`):
        # a var one of them reads is rendered only for the sweeps that read it
        self.read_anywhere: frozenset[str] = frozenset()
        # per sweep: the names it defines, its templates (where, compiled), its include keys (where, name) and
        # whether a template reads key (every matrix value): for `_misspelt`
        self._spelling: list[tuple[frozenset[str], list[tuple[tuple[Any, ...], Compiled]],
                                   list[tuple[tuple[Any, ...], str]], bool]] = []

    def sweep(self, sw: Sweep, expansion: Expansion, cvars: dict[str, Compiled], order: list[str],
              cparams: dict[str, Compiled], coutput: Compiled) -> None:
        m, errors = self.m, self.errors
        one_per_shape = {id(c.sources): c for c in expansion.combinations}.values()
        matrix_names = {k for c in one_per_shape for k, _ in c.values} | {"key", "repeat", "sweep", "index"}
        dynamic = dependents(cvars, frozenset(matrix_names))
        reached = read_by(cvars, cparams, coutput)
        # A top-level var another sweep's templates read and none of this one's is that sweep's: rendering it here
        # would fail for a matrix key only that sweep has. One no template reads, and a sweep's own, are rendered
        # (checked) as ever, and so is every var those read (`old: "{{ subject }} at night"`, read by no template,
        # needs subject here though only another sweep's templates read it).
        others = {n for n in cvars if n not in reached and n in self.read_anywhere
                  and sw.var_paths[n][:1] == ("vars",)}
        needed = frozenset().union(*(_read_names(c, cvars) for n, c in cvars.items() if n not in others))
        skipped = frozenset(others - needed)
        self._note_spelling(sw, expansion, cvars, cparams, coutput, frozenset(matrix_names))
        static_ctx: dict[str, Any] = {}
        static_ok = True
        for name in order:
            if name in dynamic or name in skipped:
                continue
            try:
                static_ctx[name] = cvars[name].render(static_ctx)
            except TemplateProblem as exc:
                errors.add(_in_sweep(sw, name, _template_error(m, sw.var_paths[name], exc), reached))
                static_ok = False
        if not static_ok:
            return
        model_params = self.model.params
        for name, c in cparams.items():
            if (c.kind != "const" and name in matrix_names and name in model_params and _reaches(c, cvars, name)
                    and not (isinstance(c.source, str) and re.fullmatch(r"\{\{\s*" + re.escape(name) + r"\s*\}\}", c.source.strip()))):
                # `prompt: "{{ prompt }}, 4k"` beside a prompt axis: the axis value is the request's, and the
                # template that was to decorate it would be dropped from every paid request without a word
                errors.add(m.error(sw.param_paths[name], f"is a template of the matrix key '{name}', which sets "
                                   f"'{name}' itself in every job, so the template would never be used; rename "
                                   f"the axis (e.g. {name}_text) and write {{{{ {name}_text }}}} in the template",
                                   TemplateError))
                return
        if sw.name is not None:
            self._sweep_names.setdefault(sw.name.casefold(), sw.name)
        self._no_sweep = ""
        if sw.name is None:
            # `sweep` is the name of the job's sweep under `sweeps:`; without them it is empty text
            for path, c in (*((sw.var_paths[n], c) for n, c in cvars.items()),
                            *((sw.param_paths[n], c) for n, c in cparams.items()), (sw.output_path, coutput)):
                if "sweep" in c.names:
                    self.warnings[m.warning(path, f"reads sweep, which is empty here: {_NO_SWEEPS}")] = None
            if _reaches(coutput, cvars, "sweep"):
                self._no_sweep = f"; sweep, which it reads, is empty: {_NO_SWEEPS}"
        if _reaches(coutput, cvars, "index"):
            self.warnings[m.warning(sw.output_path, "uses index, the job's position in the plan, which moves when "
                                    "the matrix changes: a later run would save videos under other jobs' names "
                                    "(use key or hash)")] = None
        for name, c in cparams.items():
            for builtin, what in (("key", "key (the job's matrix values, in the matrix's order)"),
                                  ("index", "index (the job's position in the plan)")):
                if c.kind != "const" and _reaches(c, cvars, builtin):
                    # a request that changes with the matrix's shape is a new job, paid again, though no value of it
                    # changed: an axis added or reordered would re-render every job
                    self.warnings[m.warning(sw.param_paths[name], (
                        f"uses {what}, which changes whenever the matrix changes (an axis added, removed or "
                        "reordered): every job is then a new request, a new paid render; use the matrix values "
                        "themselves"))] = None
        dyn_order = [n for n in order if n in dynamic and n not in skipped]
        self.templated = frozenset().union(*(c.names for c in (*cparams.values(), *cvars.values())))
        self.reads = {name: _read_names(c, cvars) for name, c in cparams.items() if c.kind != "const"}
        param_sources: dict[str, str] = {}
        for name, c in cparams.items():
            where = dotted(sw.param_paths[name])
            param_sources[name] = f"{where} (template)" if c.kind != "const" else where
        # The request before matrix values: constants in place, templates filled in per job (order kept).
        base_params = {name: (c.source if c.kind == "const" else None) for name, c in cparams.items()}
        # A template that reads some of the axes only (not key, nor index) renders one text for all the jobs that
        # share their values: it is made once for them (`Compiled.reusing`).
        axes = matrix_names - {"key", "repeat", "sweep", "index"}

        def renderer(c: Compiled) -> Callable[[Mapping[str, Any]], Any]:
            reads = _read_names(c, cvars)
            return c.reusing() if axes - reads and "key" not in reads and "index" not in reads else c.renderer

        templated = tuple((name, renderer(c)) for name, c in cparams.items() if c.kind != "const")
        var_fns = {name: renderer(cvars[name]) for name in dyn_order}
        render_output = coutput.renderer
        self._var_fns = var_fns
        sweep_name = sw.name
        sweep_text = sw.name or ""
        jobs, seen_keys = self.jobs, self.seen_keys
        out_prefix = self.out_prefix
        provider, model_name = self.provider, self.model.model
        required_text = self.required_text
        sha256 = hashlib.sha256
        new_job = tuple.__new__
        encode = json.encoder.encode_basestring  # what `canonical` gives a string

        shapes: dict[int, _Shape] = {}
        origins: dict[str, str] = {}
        first = len(jobs)
        used = self.templated | coutput.names  # the names any of the sweep's templates reads
        # {{ key }} spells every matrix value, an include's keys too, in a template the manifest writes (the
        # default output's key is not one: an include key only it shows is most likely a parameter mistyped)
        written = used if sw.output_path in self.m.positions else self.templated
        reads_all = "key" in written
        # what the request reads: `output: "{{ key }}.mp4"` names the job's file with every value, sends none
        sent = self.templated
        # Matrix values are shared (key, value) tuples that live as long as `expansion`: their ids are stable.
        key_parts: dict[int, str] = {}
        alike_parts: dict[int, str] = {}  # a value's key text as it reads, where that is other text (`alike`)
        read_keys = self.read_keys

        for combo in expansion.combinations:
            values = combo.values
            shape = shapes.get(id(combo.sources))
            if shape is None:
                shape = shapes[id(combo.sources)] = self._shape(combo, cparams, dyn_order)
                for name in BUILTIN_NAMES.intersection(shape.keys):
                    errors.add(m.error(_matrix_path(sw, shape.sources.get(name, "matrix"), name),
                                       _builtin_problem(name), MatrixError))
                for name in shape.keys:
                    problem = _jinja_problem(name)
                    if problem is not None:
                        errors.add(m.error(_matrix_path(sw, shape.sources.get(name, "matrix"), name), problem,
                                           MatrixError))
                for name in dict.fromkeys(k for k, _ in combo.values):  # in the matrix's order: warnings are too
                    source = shape.sources.get(name, "matrix")
                    meant = _FIELDS_FOLDED.get(name.casefold())
                    if meant is not None and name not in self.model.params and name not in BUILTIN_NAMES:
                        # `model: sora-2` in an include reads as a job of another model, and the plan's table shows
                        # it so; the job is made, and paid, with the manifest's own.
                        self.warnings[m.warning(_matrix_path(sw, source, name), _field_key(name, meant))] = None
                        continue
                    own = self.model.other_names.get(name)
                    if (own is not None and name not in self.model.params and name not in sent
                            and "key" not in sent and own not in shape.keys):
                        # Another provider's name for a parameter (fal's `image_url`) as a matrix, include or zip
                        # key: a key sets a request parameter of its own name only, so the job would be sent, and
                        # billed, without it (as text-to-video, for an image), as under `params:`.
                        errors.add(m.error(_matrix_path(sw, source, name),
                                           f"unknown parameter for {self.model.model}, which takes it as '{own}', "
                                           f"and no parameter's template uses it: the jobs would be sent (and billed) without "
                                           f"it; did you mean '{own}'?", MatrixError))
                        continue
                    if (source.startswith("include ") and name not in self.model.params and name not in used
                            and not reads_all
                            and (close := difflib.get_close_matches(name, list(self.model.params), n=1, cutoff=0.8))
                            and close[0] not in shape.keys):
                        # an include may add keys for templates only; one no template reads that is spelled
                        # like a request parameter is most likely that parameter mistyped, the job sent without it
                        self.warnings[m.warning(_matrix_path(sw, source, name),
                                                f"sets no request parameter and no template uses it; did you mean "
                                                f"'{close[0]}'?")] = None
                    param = self.params_folded.get(name.casefold())
                    if param is not None and param != name:
                        # matrix keys match without case (GitHub's rule), request parameters do not: an include's
                        # `Style: clay` would make a job whose request has no style at all
                        errors.add(m.error(_matrix_path(sw, shape.sources.get(name, "matrix"), name),
                                           f"'{name}' is the request parameter '{param}' in another case; write it "
                                           f"as '{param}'", MatrixError))
                    named = param_named(self.model, name)
                    if named is not None and not any(name in self.reads.get(o, ()) for o in cparams
                                                     if o == named[0] or param_named(self.model, o) == named):
                        # A matrix key sets a request parameter of its own name only: an axis named `seconds` has
                        # always been for templates, and jobs that ran with it keep their hash. So it is whatever
                        # name params gives the parameter (`seconds: 8` there is folded into duration, the axis
                        # is not), unless a template of the parameter reads the axis.
                        target, how = named
                        self.warnings[m.warning(_matrix_path(sw, shape.sources.get(name, "matrix"), name),
                                                f"'{name}' is {how} the request parameter '{target}', but "
                                                f"a matrix key sets a parameter of its own name only: this axis is "
                                                f"for templates and leaves {target} as it is; name it '{target}' to "
                                                "set it")] = None
            entries, keyed_of, maybe_not_str, limited = shape.entries, shape.keyed, shape.maybe_not_str, shape.limited
            try:
                body = ",".join(map(key_parts.__getitem__, map(id, values)))
            except KeyError:
                for p in values:
                    key_parts[id(p)] = f"{p[0]}={format_value(p[1])}"
                    if not encodable(key_parts[id(p)]):
                        errors.add(m.error(_matrix_path(sw, shape.sources.get(p[0], "matrix"), p[0]), _SURROGATE,
                                           MatrixError))
                    elif not key_parts[id(p)].isascii():
                        as_read = f"{alike(p[0])}={format_value(alike_value(p[1]))}"
                        if as_read != key_parts[id(p)]:
                            alike_parts[id(p)] = as_read
                body = ",".join([key_parts[id(p)] for p in values])
            base_key = (f"{sweep_name}/{body or 'job'}" if sweep_name else body) or "job"
            # The key the job would have if its values were written as they read (one Unicode form, no invisible
            # characters): a job whose values only look like another's is refused as the same job twice.
            read_key = None
            if alike_parts and any(id(p) in alike_parts for p in values):
                read_body = ",".join([alike_parts.get(id(p)) or key_parts[id(p)] for p in values])
                read_key = (f"{sweep_name}/{read_body or 'job'}" if sweep_name else read_body) or "job"
            origin = origins.get(combo.origin)
            if origin is None:
                origin = origins[combo.origin] = f"sweep {sweep_name}: {combo.origin}" if sweep_name else combo.origin
            takes: list[dict[str, Any]] = []
            for r in range(sw.repeat):
                key = f"{base_key}#{r}" if r else base_key
                earlier = seen_keys.get(key)
                if earlier is not None:
                    errors.add(*self._same_key(sw, shape, key, values, r, earlier))
                    continue
                if read_key is not None or read_keys:
                    as_read = key if read_key is None else f"{read_key}#{r}" if r else read_key
                    twin = read_keys.get(as_read) if read_key is None or as_read not in seen_keys else as_read
                    if twin is not None and self._alike_job(values, r, seen_keys[twin]):
                        errors.add(self._alike_value(sw, shape, values, seen_keys[twin]), key)
                        continue
                    if read_key is not None:
                        read_keys.setdefault(as_read, key)
                seen_keys[key] = (sw, shape, values, r)
                ctx = static_ctx.copy()
                ctx.update(values)
                ctx["key"] = key
                ctx["repeat"] = r
                ctx["sweep"] = sweep_text
                ctx["index"] = len(jobs)
                try:
                    for name in shape.dyn:
                        ctx[name] = var_fns[name](ctx)
                except TemplateProblem as exc:
                    err = _in_sweep(sw, name, _template_error(m, sw.var_paths[name], exc, self._row_in(ctx)),
                                    reached)
                    errors.add(err, key, err.row_line or self.rows_line(key))
                    continue
                params = base_params.copy()
                failed: list[str] = []
                for name, render in templated:
                    try:
                        params[name] = render(ctx)
                    except TemplateProblem as exc:
                        err = _template_error(m, sw.param_paths[name], exc, self._row_in(ctx))
                        errors.add(err, key, err.row_line or self.rows_line(key))
                        failed.append(name)
                for i, name in shape.overrides:
                    params[name] = values[i][1]
                for name in shape.unset:
                    params[name] = None
                if params.get("seed") is not None and params in takes:
                    # takes of one seed are one video: the provider would render and bill it again
                    where = sw.prefix + ("repeat",) if (*sw.prefix, "repeat") in m.positions else ("repeat",)
                    errors.add(m.error(where, f"repeat: {sw.repeat} sends take {r} the same request as an earlier "
                                              f"take (seed {params['seed']}): one video, paid for again; leave seed out "
                                              "for takes of random seeds, or vary it: seed: \"{{ 1000 + repeat }}\"",
                                       MatrixError), key)
                    break
                if params.get("seed") is not None:
                    takes.append(params)

                if failed:
                    # Check the rest of the request and the output too, so that one pass reports more problems.
                    rest = {k: v for k, v in params.items() if k not in failed}
                    self._issues(sw, shape, self._check(rest), key, skip=failed, values=rest, matrix=values)
                    self._output(sw, render_output, ctx, key, None)
                    continue
                for n in maybe_not_str:
                    if type(params[n]) is not str:
                        uncached = True
                        break
                else:
                    # text longer than the provider takes is checked on its own: the check jobs share is of
                    # text within bounds
                    uncached = False
                    for n, most in limited:
                        if type(params[n]) is str and len(params[n]) > most:
                            uncached = True
                            break
                if not uncached:
                    keyed = keyed_of(params)
                    ck: Any = (keyed, tuple(map(type, keyed)))
                    try:
                        entry = entries.get(ck)
                    except TypeError:
                        ck = (json.dumps(keyed, default=str), ck[1])
                        entry = entries.get(ck)
                    if entry is None:
                        entry = entries[ck] = self._entry(sw, shape, self._check(params), param_sources, params)
                    checked = entry.checked
                    if checked.issues:
                        self._issues(sw, shape, checked, key, values=params, matrix=values)
                        self._output(sw, render_output, ctx, key, None)
                        continue
                    resolved = checked.params.copy()
                    for n in shape.free:
                        resolved[n] = params[n]
                else:
                    entry = self._entry(sw, shape, self._check(params), param_sources, params)
                    checked = entry.checked
                    if checked.issues:
                        self._issues(sw, shape, checked, key, values=params, matrix=values)
                        self._output(sw, render_output, ctx, key, None)
                        continue
                    resolved = checked.params
                empty = None
                for n in required_text:
                    if type(resolved.get(n)) is str and blank(resolved[n]):
                        empty = n
                        break
                if empty is not None:
                    # The provider takes an empty prompt and bills its render; nobody means one. Per job: free text
                    # is not in the check that jobs differing only in it share. Invisible characters alone (a zero
                    # width space left by a copy and paste) are as empty.
                    self.errors.add(self.m.error(self._path(sw, shape, empty), f"'{empty}' is required by "
                                                 f"{self.model.model}, and is empty here"
                                                 + self._from_rows(sw, shape, empty, values), CapabilityError), key)
                    self._output(sw, render_output, ctx, key, None)
                    continue

                try:
                    if entry.images:
                        try:
                            resolved, hashed = self._local_images(sw, shape, resolved, values=params, matrix=values)
                        except ManifestError as exc:
                            errors.add(exc, None if getattr(exc, "names_no_job", False) else key)
                            self._output(sw, render_output, ctx, key, None)
                            continue
                        digest_hex = job_hash(provider, model_name, hashed, r)
                    elif len(entry.hashed_free) == 1:
                        seg = entry.segments
                        text = f"{seg[0]}{encode(resolved[entry.hashed_free[0]])}{seg[1]}{r}}}"
                        digest_hex = sha256(text.encode()).hexdigest()
                    else:
                        seg = entry.segments
                        parts = [seg[0]]
                        for n, s in zip(entry.hashed_free, seg[1:], strict=True):
                            parts.append(encode(resolved[n]))
                            parts.append(s)
                        parts.append(f"{r}}}")
                        digest_hex = sha256("".join(parts).encode()).hexdigest()
                except UnicodeEncodeError:
                    name = next(n for n, v in resolved.items() if not encodable(canonical(v)))
                    errors.add(m.error(self._path(sw, shape, name), _SURROGATE, CapabilityError), key)
                    self._output(sw, render_output, ctx, key, None)
                    continue

                rel_path = self._output(sw, render_output, ctx, key, digest_hex)
                if rel_path is None:
                    continue
                duration = entry.duration
                if duration is None:
                    duration = float(resolved.get("duration", 0) or 0)
                jobs.append(new_job(Job, (key, sweep_name, r, values, resolved, digest_hex, checked.cost_micros,
                                          f"{out_prefix}/{rel_path}", checked.size, duration, checked.mode, origin,
                                          entry.sources)))
        templates = [*((sw.var_paths[n], c) for n, c in cvars.items()),
                     *((sw.param_paths[n], c) for n, c in cparams.items()), (sw.output_path, coutput)]
        # a var no parameter or output reads writes its 'None' into nothing sent
        read = frozenset().union(*(_read_names(c, cvars) for c in (*cparams.values(), coutput) if c.kind != "const"))
        unread = {id(c) for n, c in cvars.items() if n not in read}
        for path, c in templates:
            for value, name in c.booleans().items():
                self.warnings[m.warning(path, _boolean_written(value, name))] = None
            for read in sorted(c.methods_read()):
                self.warnings[m.warning(path, method_for_column(read))] = None
            for (made_by, text), (name, key) in c.unread_numbers().items():
                rows = self.rows_of(key, name.split(".")[0] if name else None) if isinstance(key, str) else []
                self.warnings[m.warning(path, _number_unread(made_by, text, name, rows))] = None
            more = c.unread_numbers_more()
            if more:
                rows = [row for _, name, key in more.values() if isinstance(key, str)
                        for row in self.rows_of(key, name.split(".")[0] if name else None)]
                self.warnings[m.warning(path, _numbers_unread_more(more, rows))] = None
            if id(c) in unread:
                continue
            for held, (count, keys) in c.null_names().items():
                if None in keys:  # a var made once, for every job of the sweep
                    keys, count = [job.key for job in itertools.islice(jobs, first, first + 1)], len(jobs) - first
                if count:
                    self.warnings[m.warning(path, null_written(c.source, held, _jobs_named(keys, count)))] = None
        self._read_vars(sw, [shape.keys for shape in shapes.values()], first, used)
        made = len(jobs) - first
        sent_reads = frozenset().union(*self.reads.values())  # the names the request's templates read
        for (index, name), (values_seen, [all_unused], source) in self._unused_keys.items():
            if index != sw.index or not all_unused or len(values_seen) < 2 or not made:
                continue
            if name in sent_reads or "key" in sent_reads:
                continue  # `prompt: "a fox, {{ quality }}"`: the requests differ in the prompt too
            count = len(values_seen)
            who = (f"the {count} jobs differ only in what {self.model.model} ignores" if made == count else
                   f"jobs that differ only in {name} differ only in what {self.model.model} ignores")
            self.warnings[m.warning(_matrix_path(sw, source, name), (
                f"every value of {name} is not used (as warned at each): {who}: {count} paid renders of one setting; "
                f"leave {name} out, or vary a parameter the model uses"))] = None

    def _read_vars(self, sw: Sweep, key_sets: Sequence[frozenset[str]], first: int, used: frozenset[str]) -> None:
        """Notes the vars of `sw` that set nothing: one named like a matrix key of every job (the matrix value
        wins), one named like a request parameter that no template reads, in this sweep or another (a var sets no
        parameter, and one no template reads can only have been meant as that setting; `{{ style }}` in a prompt
        is text). `first`: the index of the sweep's first job; `used`: the names the sweep's templates read. Told
        by `finish`, once per var, of all sweeps."""
        every = frozenset.intersection(*key_sets) if key_sets else frozenset()
        for name, path in sw.var_paths.items():
            if name in BUILTIN_NAMES:
                continue
            if name in every:
                self._shadowed.setdefault(path, True)
                continue
            self._shadowed[path] = False
            param, how = name, ""
            if name not in self.model.params:
                # `seconds`, `Quality`, `negative`: a var named like a parameter in another way is as likely meant
                # for it as one of its own name
                if name in self.model.aliases:
                    param, how = self.model.aliases[name], "another name for it"
                elif name in self.model.other_names:
                    param, how = self.model.other_names[name], "another provider's name for it"
                elif name.casefold() in self.params_folded:
                    param, how = self.params_folded[name.casefold()], "its name in another case"
                else:
                    continue
            if name in used:  # `quality: "{{ quality }}"` under params sets it; `{{ style }} painting` is text
                self._var_read.add(path)
                continue
            if path in self._var_params:
                continue
            had: list[tuple[Any, str]] = []  # the first two values the requests have, each as told
            for job in itertools.islice(self.jobs, first, None):
                value = job.params.get(param)
                if had and type(value) is type(had[0][0]) and value == had[0][0]:
                    continue
                source = job.sources.get(param, "")
                source = "the model's default" if source.startswith("default") else f"from {source}"
                had.append((value, f"{param} {written_value(value)} ({source})" if value is not None else f"no {param}"))
                if len(had) > 1:
                    break
            if not had:
                continue
            sent = f"the request has {had[0][1]}" if len(had) == 1 else f"the requests' {param} varies"
            named = f"'{name}' is {how}; " if how else ""
            self._var_params[path] = (f"a var does not set the request's {param} ({named}params: or a matrix key "
                                      f"named {param} do): {sent}, whatever this var holds")

    def _note_spelling(self, sw: Sweep, expansion: Expansion, cvars: Mapping[str, Compiled],
                       cparams: Mapping[str, Compiled], coutput: Compiled, defined: frozenset[str]) -> None:
        """Keeps what `_misspelt` compares of `sw`, once all sweeps are made."""
        templates = [*((sw.var_paths[n], c) for n, c in cvars.items()),
                     *((sw.param_paths[n], c) for n, c in cparams.items() if c.kind != "const"),
                     (sw.output_path, coutput)]
        includes: dict[tuple[Any, ...], str] = {}
        shared = {id(c.sources): c.sources for c in (*expansion.combinations, *(c for c, _ in expansion.excluded))}
        for sources in shared.values():  # combinations of one shape share their sources
            for name, source in sources:
                if source.startswith("include ") and name not in self.model.params:
                    includes.setdefault(_matrix_path(sw, source, name), name)
        # the default output's key spells every matrix value too, but names no include key the manifest wrote
        reads_key = any("key" in c.names for path, c in templates if c is not coutput or path in self.m.positions)
        self._spelling.append((defined | frozenset(cvars), templates, list(includes.items()), reads_key))

    def _misspelt(self) -> None:
        """Warns of a name a template reads that no var or matrix key of any sweep defines, spelled close to one
        that is defined: read under `| default(...)` or `is defined`, or in a branch no job takes, a typo is no
        error, and the value the manifest gives is silently left out of every paid request. Likewise of a var or
        include key no template reads, spelled close to a name one reads. A name only some jobs define (an
        include's optional key) is defined, and not warned of."""
        m = self.m
        defined = frozenset().union(*(d for d, _, _, _ in self._spelling)) | BUILTIN_NAMES
        read: dict[str, tuple[Any, ...]] = {}  # a name any template reads -> where the first that reads it is
        for _, templates, _, _ in self._spelling:
            for path, c in templates:
                for name in sorted(c.names):
                    read.setdefault(name, path)
        unread_vars: dict[str, tuple[Any, ...]] = {}
        for names, templates, _, _ in self._spelling:
            for path, _c in templates:
                if path[-2:-1] == ("vars",) and path[-1] not in read:
                    unread_vars.setdefault(path[-1], path)
        candidates = sorted(n for n in defined if n not in BUILTIN_NAMES)
        for _, templates, _, _ in self._spelling:
            for path, c in templates:
                for name in sorted(c.names - defined):
                    close = difflib.get_close_matches(name, candidates, n=1, cutoff=0.8)
                    if not close:
                        continue
                    unread = f" ({dotted(unread_vars[close[0]])} is read by no template)" \
                        if close[0] in unread_vars else ""
                    self.warnings[_template_warning(m, path, c.source, name, (
                        f"reads '{name}', which no var or matrix key of any sweep defines: a default (| default, "
                        f"is defined) or a branch that does without it is taken in every job; did you mean "
                        f"'{close[0]}'?{unread}"))] = None
        # only a read name nothing defines was misspelt: `prompt_v1` kept beside the `prompt_v2` a template reads
        # is a var left unused, and the template reads what it meant to
        spelt = sorted(n for n in read if n not in defined)
        for _, _, includes, reads_key in self._spelling:
            unread_here = [] if reads_key else [(path, name) for path, name in includes if name not in read]
            for path, name in [*unread_here, *((p, n) for n, p in unread_vars.items())]:
                close = difflib.get_close_matches(name, [n for n in spelt if n != name], n=1, cutoff=0.8)
                if close:
                    said = "this var or that name is likely mistyped" if path[-2:-1] == ("vars",) else \
                        f"did you mean '{close[0]}'?"
                    self.warnings[m.warning(path, (
                        f"no template reads '{name}'; {dotted(read[close[0]])} reads '{close[0]}', spelled close to "
                        f"it: {said}"))] = None

    def finish(self) -> None:
        """Tells, once each, what `_read_vars` noted of the vars of all sweeps, and names spelled close to others
        (`_misspelt`)."""
        self._misspelt()
        for path, shadowed in self._shadowed.items():
            if shadowed:
                self.warnings[self.m.warning(path, f"the matrix key '{path[-1]}' is in every job, and the matrix "
                                                   "value wins: this var is never used")] = None
            elif path in self._var_params and path not in self._var_read:
                self.warnings[self.m.warning(path, self._var_params[path])] = None

    def _shape(self, combo: Combination, cparams: Mapping[str, Compiled], dyn_order: Sequence[str]) -> _Shape:
        model_params = self.model.params
        keys = [k for k, _ in combo.values]
        overrides = tuple((i, k) for i, k in enumerate(keys) if k in model_params)
        names = list(cparams) + [k for _, k in overrides if k not in cparams]
        set_by_matrix = {k for _, k in overrides}
        # Constants are the same for every job of the shape: only matrix values and templates can differ.
        varies = [n for n in names if n in set_by_matrix or cparams[n].kind != "const"]
        free = tuple(n for n in varies if n in self.free_text)
        return _Shape(
            keys=frozenset(keys),
            sources=dict(combo.sources),
            overrides=overrides,
            dyn=tuple(n for n in dyn_order if n not in keys),
            keyed=_getter([n for n in varies if n not in self.free_text]),
            free=free,
            maybe_not_str=tuple(n for n in free if n in set_by_matrix or cparams[n].kind in ("expr", "list", "map")),
            limited=tuple((n, most) for n in free if (most := model_params[n].max_length) is not None),
            # a matrix value replaces the parameter under its other names too, as under its own (an include's
            # `duration: null` undoes a `seconds: 8` of params)
            unset=tuple(o for k in set_by_matrix for o in self.spellings.get(k, ()) if o in cparams
                        and o not in set_by_matrix),
        )

    def _entry(self, sw: Sweep, shape: _Shape, checked: Checked, param_sources: Mapping[str, str],
               values: Mapping[str, Any]) -> _Entry:
        """`values`, the parameters sent to the check: a matrix value warned of is pointed at in its list."""
        for w in checked.warnings:
            path = self._path(sw, shape, w.field)
            if w.field in shape.keys and w.field in values:
                path = self._item(path, values[w.field])
            self.warnings[self.m.warning(path, w.message)] = None
        if shape.overrides:
            unused = self.model.unused(checked.params, values) if checked.warnings else frozenset()
            for _, name in shape.overrides:
                # whether every value of a matrix key is one the model does not use (as each is warned of)
                seen = self._unused_keys.setdefault((sw.index, name), (set(), [True], shape.sources.get(name, "matrix")))
                if name not in unused:
                    seen[1][0] = False
                elif seen[1][0]:
                    value = values[name]
                    try:
                        seen[0].add((type(value), value))
                    except TypeError:  # a list or mapping
                        seen[0].add((type(value), canonical(value)))
        params = checked.params
        free = [n for n in sorted(params) if n in shape.free]
        segments, current = [], f'{{"model":{canonical(self.model.model)},"params":{{'
        for i, name in enumerate(sorted(params) if not checked.issues else ()):  # no hash for a job refused
            current += ("," if i else "") + canonical(name) + ":"
            if name in free:
                segments.append(current)
                current = ""
            else:
                current += canonical(params[name])
        segments.append(f'{current}}},"provider":{canonical(self.provider)},"repeat":')
        entry = _Entry(
            checked=checked,
            segments=tuple(segments),
            hashed_free=tuple(free),
            images=any(p in params for p in IMAGE_PARAMS),
            duration=float(params.get("duration", 0) or 0) if "duration" not in shape.free else None,
            sources=self._sources(sw, shape, checked, param_sources, values),
        )
        return entry

    def _sources(self, sw: Sweep, shape: _Shape, checked: Checked, param_sources: Mapping[str, str],
                 values: Mapping[str, Any]) -> dict[str, str]:
        """Where each parameter of the request came from; a null value (`duration: null`) stands for the model's
        default, so a value it leaves is the default's, and a parameter it leaves out has none. A value given by
        another name (`seconds`) is its parameter's, and says so."""
        sources = dict(param_sources)
        for _, k in shape.overrides:
            src = shape.sources.get(k, "matrix")
            sources[k] = f"sweep {sw.name}: {src}" if sw.name else src
        default = f"default ({self.model.provider} capability data)"
        files = self._default_files()
        for name, value in values.items():
            if value is None and name in sources:
                where = sources.pop(name)
                target = self.model.aliases.get(name, name)  # `seconds: null` is a null duration
                if target in checked.params and (target == name or (values.get(target) is None
                                                                     and target not in sources)):
                    said = f"default ({files[target]})" if target in files else default
                    sources[target] = f"{said[:-1]}; null in {where})"
        for alias, name in self.model.aliases.items():
            where = sources.pop(alias, None)
            if where is not None and name in checked.params:
                said = f"{where}, as {alias}, an alias of {name}"
                sources[name] = f"{sources[name]}; also {said}" if values.get(name) is not None else said
        for name in checked.params:
            if name not in sources:
                sources[name] = f"default ({files[name]})" if name in files else default
        return sources

    def _default_files(self) -> dict[str, str]:
        """The parameters whose default a user's capabilities file sets, each with that file as named
        (`capabilities.default_files`), read once."""
        if self._defaults_from is None:
            self._defaults_from = default_files(self.provider, self.model.model, self.m.data.get("capabilities") or [],
                                                self.m.base_dir)
        return self._defaults_from

    def _same_key(self, sw: Sweep, shape: _Shape, key: str, values: tuple[tuple[str, Any], ...], r: int,
                  earlier: tuple[Sweep, _Shape, tuple[tuple[str, Any], ...], int]) -> tuple[ManifestError, str | None]:
        """The error of a job whose key an earlier job has: the same matrix values twice, or values a key does not
        tell apart (spacing, type, or ',' '=' '#' in a value), named, at the value that makes it (its line in a
        data file); and the job's key where the message does not say it (a repeated value makes one error of all
        the jobs it doubles)."""
        e_sw, e_shape, e_values, e_r = earlier
        mine = [(k, canonical(v)) for k, v in values]
        if mine == [(k, canonical(v)) for k, v in e_values] and r == e_r:
            return self._repeated_value(sw, shape, mine, earlier), key
        reasons: list[tuple[str, str]] = []  # (why the key is the same, what to do)
        at: tuple[Any, ...] | None = None
        theirs = dict(e_values)
        for k, v in values:
            if k not in theirs or canonical(v) == canonical(theirs[k]) or format_value(v) != format_value(theirs[k]):
                continue
            if whole_key_text(v) != whole_key_text(theirs[k]):  # two values over 40 characters, shortened alike
                reason = (("a key writes a value of over 40 characters as its first 32, '…' and 6 hex digits of its "
                           "hash, and these two are shortened alike (they differ after their 32nd character, and "
                           "their digits clash, as they may in a file of thousands of values that open alike)"),
                          ("give each value a short name the key keeps: rows of a CSV or JSONL file with an id column "
                           "(a key writes a row's columns in name order, `id` before `prompt`; the prompt then "
                           "{{ shot.prompt }}), or an axis of short names whose texts a var picks"))
            elif type(v) is type(theirs[k]) or isinstance(v, (dict, list)):
                reason = ("a key keeps a value's words, not its spacing",
                          "make the values differ in words, or remove one if they mean the same")
            else:
                reason = ("a key writes a value's text, not its type (1 and '1', true and 'true' read alike)",
                          "make the values differ in text")
            if reason not in reasons:
                reasons.append(reason)
            if at is None:
                at = self._item(_matrix_path(sw, shape.sources.get(k, "matrix"), k), v)
        for job_sw, job_shape, job_values in ((sw, shape, values), (e_sw, e_shape, e_values)):
            for k, v in job_values:
                if not isinstance(v, (dict, list)) and any(c in format_value(v) for c in ",=#"):
                    reason = ("',' and '=' inside a value read like the separators between values (and '#' like a "
                              "take's number)", "leave them out of the values")
                    if reason not in reasons:
                        reasons.append(reason)
                    if at is None:
                        at = self._item(_matrix_path(job_sw, job_shape.sources.get(k, "matrix"), k), v)
        said = "; ".join(f"{why}: {advice}" for why, advice in reasons) or "make the values differ"
        e_lines = []  # the earlier job's rows: this one's is where the error is
        for k, v in e_values:
            found = self._data_line(_matrix_path(e_sw, e_shape.sources.get(k, "matrix"), k), v)
            if found is not None:
                e_lines.append(f"{found[0]}:{found[1][0]}")
        first = f", the first from {', '.join(e_lines)}" if e_lines else ""
        return self.m.error(at or sw.prefix + ("matrix",),
                            f"two jobs have the same key {key!r}, from different values ({_shown(e_values, e_r)}; "
                            f"{_shown(values, r)}{first}), and a key names one job; {said}", MatrixError), None

    @staticmethod
    def _alike_job(values: tuple[tuple[str, Any], ...], r: int,
                   earlier: tuple[Sweep, _Shape, tuple[tuple[str, Any], ...], int]) -> bool:
        """Whether a job of `values` (take `r`) and the `earlier` one read alike, value for value, as keys compare
        values (words, not spacing or type), but whole: keys that read alike may be of long values shortened alike."""
        theirs = earlier[2]
        return r == earlier[3] and len(values) == len(theirs) and all(
            alike(k) == alike(ek) and whole_key_text(alike_value(v)) == whole_key_text(alike_value(ev))
            for (k, v), (ek, ev) in zip(values, theirs))

    def _alike_value(self, sw: Sweep, shape: _Shape, values: tuple[tuple[str, Any], ...],
                     earlier: tuple[Sweep, _Shape, tuple[tuple[str, Any], ...], int]) -> ManifestError:
        """The error of a job whose values read as an earlier job's but are other text (a letter composed or not,
        an invisible character in one): at the first such value (its line in a data file), naming the earlier's."""
        e_sw, e_shape, e_values = earlier[0], earlier[1], earlier[2]
        for (k, v), (ek, ev) in zip(values, e_values):
            if k == ek and canonical(v) == canonical(ev):
                continue
            why = unlike(ev, v) if k == ek else unlike(ek, k)
            axis = _matrix_path(sw, shape.sources.get(k, "matrix"), k)
            e_axis = _matrix_path(e_sw, e_shape.sources.get(ek, "matrix"), ek)
            mine, theirs = self._index(axis, v), self._index(e_axis, ev)
            if theirs != e_axis:
                in_data = value_position(self.m.data_lines, theirs)
                line = in_data[1][0] if in_data is not None else self.m.where(theirs)[0]
                first = f"{dotted(theirs)} (line {line})"
            else:
                first = f"the value '{escaped(whole_key_text(ev))}' of {dotted(theirs)}"
            shown_values = ""
            if isinstance(v, str) and isinstance(ev, str) and len(v) <= 80 and len(ev) <= 80:
                shown_values = f" ('{escaped(ev)}', then '{escaped(v)}')"
            return self.m.error(mine, f"two jobs would be the same: this value repeats {first} but for {why}"
                                f"{shown_values}: it would be rendered and paid twice; write them alike", MatrixError)
        return self.m.error(sw.prefix + ("matrix",), "two jobs would be the same but for Unicode form or an "
                            "invisible character in their values: they would be rendered and paid twice; write "
                            "them alike", MatrixError)

    def alike_request(self, first: str, second: str, param: str, then: Any, now: Any) -> ManifestError:
        """The error of the job `second` whose request reads as the earlier job `first`'s but is other text in
        parameter `param` (`then`, `now`: its value in each; a letter composed or not, an invisible character in
        one), though their values differ (an id column of their rows): at the first of its matrix values that
        differs (its line in a data file), naming the earlier's, in the words of values that read alike."""
        mine_made, theirs_made = self.seen_keys[second], self.seen_keys[first]
        sw, shape, values = mine_made[0], mine_made[1], mine_made[2]
        e_sw, e_shape, e_values = theirs_made[0], theirs_made[1], dict(theirs_made[2])
        why = unlike(then, now)
        shown = ""
        if isinstance(then, str) and isinstance(now, str) and len(then) <= 80 and len(now) <= 80:
            shown = f" ('{escaped(then)}', then '{escaped(now)}')"
        said = f"but for {why} in {param}{shown}: it would be rendered and paid twice; write them alike"
        for k, v in values:
            ev = e_values.get(k)
            if k not in e_values or v is ev:
                continue
            mine = self._index(_matrix_path(sw, shape.sources.get(k, "matrix"), k), v)
            theirs = self._index(_matrix_path(e_sw, e_shape.sources.get(k, "matrix"), k), ev)
            in_data = value_position(self.m.data_lines, theirs)
            line = in_data[1][0] if in_data is not None else self.m.where(theirs)[0]
            what = "row" if isinstance(v, dict) else "value"
            return self.m.error(mine, f"two jobs would be the same: this {what}'s request repeats that of "
                                      f"{dotted(theirs)} (line {line}) {said}", MatrixError)
        return self.m.error(sw.prefix + ("matrix",), f"two jobs would be the same: {second!r} sends the request of "
                                                     f"{first!r}{self.rows_said(second, first)} {said}", MatrixError)

    def _index(self, axis: tuple[Any, ...], value: Any) -> tuple[Any, ...]:
        """`axis` + the index of `value` in it: found by identity in an axis read from a data file, else as
        written in the manifest; `axis` alone when it is not a list that holds it."""
        if axis in self.m.data_lines:
            self._data_line(axis, value)  # makes the axis's index
            at = self._rows[axis].get(id(value))
            if at is not None:
                return (*axis, at)
        return self._item(axis, value)

    def _repeated_value(self, sw: Sweep, shape: _Shape, values: list[tuple[str, str]],
                        earlier: tuple[Sweep, _Shape, tuple[tuple[str, Any], ...], int]) -> ManifestError:
        """The error of a job made twice because a value is in its axis twice (`values`: the job's, canonical),
        at the second one (in a data file, its line), naming the first; or because two include entries made the
        same combination, at the second entry, naming the first; else at the matrix."""
        for k, text in values:
            axis = _matrix_path(sw, shape.sources.get(k, "matrix"), k)
            places = self._repeats(axis).get(text)
            if places:
                first = (*axis, places[0])
                in_data = value_position(self.m.data_lines, first)
                line = in_data[1][0] if in_data is not None else self.m.where(first)[0]
                times = f" (it is there {len(places)} times)" if len(places) > 2 else ""
                return self.m.error((*axis, places[1]), f"two jobs have the same key: this value repeats "
                                    f"{dotted(first)}, at line {line}{times}; make the matrix entries differ, or use "
                                    "repeat", MatrixError)
        e_sw, e_shape = earlier[0], earlier[1]
        mine, theirs = _include_of(shape), _include_of(e_shape)
        if e_sw is sw and mine is not None and theirs is not None:
            first = (*sw.prefix, "matrix", "include", theirs)
            return self.m.error((*sw.prefix, "matrix", "include", mine), f"two jobs have the same key: this entry "
                                f"repeats {dotted(first)}, at line {self.m.where(first)[0]}; make the include entries "
                                "differ, or use repeat", MatrixError)
        return self.m.error(sw.prefix + ("matrix",), "two jobs have the same key; make the matrix entries differ, or "
                            "use repeat", MatrixError)

    def _repeats(self, axis: tuple[Any, ...]) -> dict[str, list[int]]:
        """The values of the axis list at `axis` that it holds more than once (canonical text -> their indexes),
        found once per axis: a data file of a million lines has its repeats told without a pass per job."""
        found = self._repeated.get(axis)
        if found is None:
            node: Any = self.m.data
            for step in axis:
                try:
                    node = node[step]
                except (KeyError, IndexError, TypeError):
                    node = None
                    break
            places: dict[str, list[int]] = {}
            for i, item in enumerate(node if isinstance(node, list) else ()):
                places.setdefault(canonical(item), []).append(i)
            found = self._repeated[axis] = {text: at for text, at in places.items() if len(at) > 1}
        return found

    def _path(self, sw: Sweep, shape: _Shape, name: str) -> tuple[Any, ...]:
        """Where a request parameter's value was set: its matrix entry, its params line, or params."""
        if name in shape.keys:
            return _matrix_path(sw, shape.sources.get(name, "matrix"), name)
        if name in sw.param_paths:
            return sw.param_paths[name]
        return sw.prefix + ("params",)

    def _issues(self, sw: Sweep, shape: _Shape, checked: Checked, key: str, *, values: Mapping[str, Any],
                matrix: Sequence[tuple[str, Any]], skip: Sequence[str] = ()) -> None:
        """`values`, the job's parameters as sent to the check: a matrix value refused is pointed at in its list;
        `matrix`, the job's matrix values: a value a template made of data-file values names their lines."""
        for issue in checked.issues:
            if issue.field not in skip:
                rows = self._from_rows(sw, shape, issue.field, matrix)
                message = issue.message + rows
                if issue.message.startswith("expected a string, got") and issue.field not in shape.keys:
                    message += _text_of(sw.params.get(issue.field), values.get(issue.field), issue.field, bool(rows))
                if issue.field == "n" and issue.field in shape.keys and issue.field in self.templated:
                    # an axis `n` a template reads, meant for text: not a count of videos, whatever its values
                    message = ("a matrix key named 'n' sets the request parameter n, the number of videos one request "
                               "makes, which gridrun keeps at 1: rename the axis (e.g. n_text, and {{ n_text }} in the "
                               "templates); for several takes of a job, use repeat: N")
                elif issue.field in shape.keys and issue.field in self.templated:
                    # a matrix key named like a request parameter sets it: perhaps it was meant for templates only
                    message += (f"; a matrix key named '{issue.field}' sets that request parameter: to use its values "
                                f"only in templates, rename the axis (e.g. {issue.field}_text)")
                path = self._path(sw, shape, issue.field)
                if issue.field in shape.keys and issue.field in values and not (
                        issue.field == "n" and issue.field in self.templated):
                    # each value refused at its place in its list; an axis `n` for templates, once as that name
                    path = self._item(path, values[issue.field])
                self.errors.add(self.m.error(path, message, CapabilityError), key)

    def _from_rows(self, sw: Sweep, shape: _Shape, name: str, matrix: Sequence[tuple[str, Any]]) -> str:
        """The note ` (from shots.csv:3)`: the data-file lines of the matrix values that the template of parameter
        `name` reads (itself or through vars), where a bad value it makes of them is to be fixed; "" when it reads
        none (a matrix key that sets `name` itself is pointed at in its file already)."""
        reads = self.reads.get(name)
        if not reads or name in shape.keys:
            return ""
        lines = []
        for k, v in matrix:
            if k in reads:
                found = self._data_line(_matrix_path(sw, shape.sources.get(k, "matrix"), k), v)
                if found is not None:
                    empty = ", a row whose cells are all empty" if is_empty_row(v) else ""
                    lines.append(f"{found[0]}:{found[1][0]}{empty}")
        return f" (from {', '.join(lines)})" if lines else ""

    def _row_in(self, ctx: Mapping[str, Any]) -> Callable[[tuple[Any, ...], str], str | None]:
        """Where (`rows.csv:4`) the row of the data file at an axis path is that the job of `ctx` (its template
        values) reads as the name given; None when it reads none from there."""
        def line(axis: tuple[Any, ...], name: str) -> str | None:
            found = self._data_line(axis, ctx.get(name))
            return f"{found[0]}:{found[1][0]}" if found is not None else None
        return line

    def rows_of(self, key: str, name: str | None = None) -> list[str]:
        """The data-file lines (`rows.csv:4`) of the matrix values that made the job `key` (that of the matrix key
        `name` alone, when given and read from a data file); [] when none was read from a data file (or no job
        has the key)."""
        made = self.seen_keys.get(key)
        if made is None:
            return []
        sw, shape, values, _ = made
        if name is not None and any(k == name for k, _ in values):
            values = [(k, v) for k, v in values if k == name]
        lines = []
        for k, v in values:
            found = self._data_line(_matrix_path(sw, shape.sources.get(k, "matrix"), k), v)
            if found is not None:
                lines.append(f"{found[0]}:{found[1][0]}")
        return lines

    def rows_line(self, key: str) -> str | None:
        """"from shots.csv:3" (", a row whose cells are all empty" after a line of such a row): the data-file rows
        the job `key` was made of, where an error of its own (a template's, of those values) is to be fixed; None
        when none was read from a data file."""
        made = self.seen_keys.get(key)
        if made is None:
            return None
        sw, shape, values, _ = made
        lines = []
        for k, v in values:
            found = self._data_line(_matrix_path(sw, shape.sources.get(k, "matrix"), k), v)
            if found is not None:
                empty = ", a row whose cells are all empty" if is_empty_row(v) else ""
                lines.append(f"{found[0]}:{found[1][0]}{empty}")
        return f"from {', '.join(lines)}" if lines else None

    def rows_said(self, *keys: str) -> str:
        """The note ` (from rows.csv:3 and rows.csv:4)` of the data-file rows of the jobs `keys`, each job's lines
        in turn; "" when none of them was made of a data file's values."""
        said = [", ".join(lines) for lines in (self.rows_of(k) for k in keys) if lines]
        return f" (from {' and '.join(said)})" if said else ""

    def _data_line(self, axis: tuple[Any, ...], value: Any) -> tuple[Path, tuple[int, int]] | None:
        """The data file and position of `value` when the axis at `axis` was read from one. A job's matrix values
        are the axis's own objects: found by identity, through an index made once per axis."""
        if axis not in self.m.data_lines:
            return None
        index = self._rows.get(axis)
        if index is None:
            node: Any = self.m.data
            for step in axis:
                node = node[step]
            index = self._rows[axis] = {id(item): i for i, item in enumerate(node)}
        at = index.get(id(value))
        return None if at is None else value_position(self.m.data_lines, (*axis, at))

    def _item(self, path: tuple[Any, ...], value: Any) -> tuple[Any, ...]:
        """`path` + the index of `value` when `path` is a list of values written in the manifest (an axis)."""
        node: Any = self.m.data
        for step in path:
            try:
                node = node[step]
            except (KeyError, IndexError, TypeError):
                return path
        if isinstance(node, list):
            for i, item in enumerate(node):
                if type(item) is type(value) and item == value:
                    return (*path, i)
        return path

    def _output(self, sw: Sweep, render: Callable[[Mapping[str, Any]], Any], ctx: dict[str, Any], key: str,
                digest_hex: str | None) -> str | None:
        """The job's output path relative to the output folder, checked; None (and an error) when it is not usable.

        A job that cannot run (`digest_hex` None) is still checked, with a stand-in hash unique to its key.
        """
        ctx["hash"] = (digest_hex or hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest())[:12]
        try:
            rel = render(ctx)
            # a '/' of a value where the template writes the file name (`{{ prompt }}-1.mp4`, not `{{ dir }}/x.mp4`)
            hint = ""
            if type(rel) is str and "/" in rel:
                try:
                    apart = self._slashes_apart(ctx, key)
                    written = render(apart) if apart is not None else None
                except TemplateProblem:  # a template that reads the value's '/' (`prompt.split('/')`): as it is
                    written = None
                if type(written) is str and _VALUE_SLASH in written.rpartition("/")[2]:
                    name = self._slashed(key)
                    hint = (f"; a '/' in a value (of {name}) separates folders as the template's own does: to keep it "
                            f"in the file name, write {{{{ {name} | replace('/', '-') }}}}")
        except TemplateProblem as exc:
            err = _template_error(self.m, sw.output_path, exc, self._row_in(ctx))
            self.errors.add(err, key, err.row_line or self.rows_line(key))
            return None
        if type(rel) is str and _SAFE_REL.fullmatch(rel):
            rel_path = rel
        else:
            safe = _output_path(self.m, sw, rel, self.errors, key, hint + self._no_sweep, self.rows_line)
            if safe is None:
                return None
            rel_path = safe
        if hint and sw.output_path not in self._value_folders:
            self._value_folders.add(sw.output_path)
            row = self.rows_line(key)
            self.warnings[self.m.warning(sw.output_path, f"makes folders of a value: job {key!r}"
                                         f"{' (' + row + ')' if row else ''} writes {rel_path!r}{hint}")] = None
        name = rel_path.rpartition("/")[2]
        if name[0] == ".":
            # `{{ look }}.mp4` of an empty look: a hidden file (`ls` shows it only with -a), its poster `.mp4.jpg`
            last = str(sw.output).rpartition("/")[2]
            fixed = f"v-{last}" if last.startswith("{{") else "v-{{ look }}.mp4"
            self.errors.add(self.m.error(sw.output_path, "renders a file name with nothing before its extension (or "
                                         "starting with '.'), a hidden file that `ls` lists only with -a: give the "
                                         f"value a text, or write a fixed part before it (e.g. {fixed!r})"
                                         + self._no_sweep),
                            key, ", ".join(filter(None, (repr(rel_path), self.rows_line(key)))))
            return None
        if "." not in name and sw.output_path not in self._no_extension:
            self._no_extension.add(sw.output_path)
            self.warnings[self.m.warning(sw.output_path, f"renders file names without an extension (e.g. {rel_path!r}): "
                                                         "players and browsers may not open them; end it with .mp4")] = None
        default = sw.output_path not in self.m.positions
        clash = self.outputs.claim(rel_path, key, default_output=default)
        if clash is not None:
            other = self._sweep_names.get(sw.name.casefold()) if sw.name is not None and default else None
            held = self.outputs.videos.get(fold(rel_path), rel_path).split("/", 1)
            mine = rel_path.split("/", 1)
            if other is not None and other != sw.name and held[0] != mine[0] and held[1:] == mine[1:]:
                # the default output, `{{ key }}`, begins with the sweep's name: the names are what to change, when
                # the two files differ in them alone
                self.errors.add(self.m.error(sw.prefix + ("name",), (
                    f"sweep '{sw.name}' is sweep '{other}' in another case, and their jobs' files (named by their "
                    "keys, which begin with the sweep's name) would be one where case is not told apart (macOS, "
                    "Windows); rename the sweep")), key)
                return None
            other_key = (self.outputs.taken(fold(rel_path)) or (None, None))[0]
            if other_key is not None and other_key != key:  # the two rows of a data file, in a file of thousands
                clash += self.rows_said(other_key, key)
            self.errors.add(self.m.error(sw.output_path, clash), key)
            return None
        return rel_path if digest_hex is not None else None

    def _slashes_apart(self, ctx: dict[str, Any], key: str) -> dict[str, Any] | None:
        """`ctx` with each '/' of the job `key`'s matrix values (a data file's cells too), of its key past the
        sweep's name and so of the vars made of them written `_VALUE_SLASH`: rendered by the output template, where
        it puts a value's '/'. None when no value holds one."""
        made = self.seen_keys.get(key)
        if made is None:
            return None
        sw, shape, values, _ = made
        apart = {}
        for name, value in values:
            kind = type(value)
            if kind is str and "/" not in value or kind is dict and not any(
                    type(v) is not str or "/" in v for v in value.values()):
                continue
            written = _apart(value)
            if written is not value:
                apart[name] = written
        if not apart:
            return None
        out = ctx.copy()
        out.update(apart)
        head, sep, tail = key.partition("/") if sw.name is not None else ("", "", key)
        out["key"] = head + sep + tail.replace("/", _VALUE_SLASH)
        for name in shape.dyn:
            out[name] = self._var_fns[name](out)
        return out

    def _slashed(self, key: str) -> str:
        """The name of the first matrix value of the job `key` holding a '/' (`prompt`, `shot.prompt`)."""
        _, _, values, _ = self.seen_keys[key]
        for name, value in values:
            if _apart(value) is not value:
                if type(value) is dict:
                    return next(f"{name}.{k}" for k, v in value.items() if _apart(v) is not v)
                return str(name)
        return "value"

    def _check(self, params: Mapping[str, Any]) -> Checked:
        """The model's check of `params`, and gridrun's own: one video per job."""
        checked = self.model.check(params)
        count = checked.params.get("n", 1)
        if count != 1 and not any(i.field == "n" for i in checked.issues):
            # The provider would bill n videos; a job keeps one (its file, its sidecar, its digest).
            problem = Issue("n", f"n: {count!r} would pay for {count} videos of which gridrun keeps one; "
                                 "for several takes, use repeat: N (each its own job, file and seed)")
            checked = dataclasses.replace(checked, issues=(*checked.issues, problem), cost_micros=0)
        unknown = [w.field for w in checked.warnings if w.field not in self.model.params and w.field in checked.params]
        owned = {n: _OWNED[n].format(model=self.model.model) for n in unknown if n in _OWNED}
        if owned:  # never sent as written: the provider layer writes its own value in the request's place
            unknown = [n for n in unknown if n not in owned]
            checked = dataclasses.replace(checked, warnings=tuple(
                Issue(w.field, owned[w.field]) if w.field in owned else w for w in checked.warnings))
        misplaced = {n: _MISPLACED[n] for n in unknown if n in _MISPLACED}
        if misplaced:  # a manifest's own setting written among the request's: sent to the provider, unused here
            checked = dataclasses.replace(checked, warnings=tuple(
                Issue(w.field, misplaced[w.field]) if w.field in misplaced else w for w in checked.warnings))
        local: list[Issue] = []
        for n, value in checked.params.items():
            why = None if type(value) in _PLAIN_JSON else not_json(value)
            if why is not None:  # the request could not be sent: no JSON carries it
                local.append(Issue(n, why))
                if n in unknown:
                    unknown.remove(n)
        pathlike: dict[str, str] = {}
        for n in unknown:
            why, refused = self._local_value(checked.params[n])
            if refused:
                local.append(Issue(n, why))
            elif why:
                pathlike[n] = why
        if pathlike:
            checked = dataclasses.replace(checked, warnings=tuple(
                Issue(w.field, f"{w.message}: {pathlike[w.field]}") if w.field in pathlike else w
                for w in checked.warnings))
        if local:
            refused_names = {i.field for i in local}
            checked = dataclasses.replace(checked, issues=(*checked.issues, *local),
                                          warnings=tuple(w for w in checked.warnings if w.field not in refused_names),
                                          cost_micros=0)
        return checked

    def _local_value(self, value: Any) -> tuple[str, bool]:
        """Why `value` of a parameter gridrun does not know cannot be sent, and True: it (or an item of it, in lists
        and mappings at any depth) names a file on this machine (a path to a file there, relative to the manifest or
        from ~, or a file: URL) or is a data: URI. Such a parameter is sent as written; the provider cannot read a
        path on this machine, and would render (and bill) without it. Else a note and False for a value that looks
        like a path to an image, video or sound file that is not there (a path mistyped is sent all the same);
        ("", False) for anything else."""
        where = f"input images go in {' or '.join(IMAGE_PARAMS)}"
        note = ""
        stack: list[Any] = [value]
        seen = 0
        while stack and seen < 10_000:
            item = stack.pop()
            seen += 1
            if isinstance(item, Mapping):
                stack.extend(item.values())
                continue
            if isinstance(item, (list, tuple)):
                stack.extend(item)
                continue
            if not isinstance(item, str) or not item.strip() or len(item) > 4096:
                continue
            if images.is_data_uri(item):
                return (f"{_short(item)!r} is a data: URI, sent as written under a parameter gridrun does not know; "
                        f"{where}"), True
            scheme = images.other_scheme(item)
            if scheme == "file" or item[:5].lower() == "file:":  # file:/path too, the short form many tools print
                return (f"{_short(item)!r} is a file: URL, a file on this machine, and a parameter gridrun does not "
                        "know is sent as written: the provider cannot read it, and would render (and bill) without "
                        f"it; {where} (a local file, given as a path, is sent as a data URI)"), True
            if _is_remote(item) or scheme is not None:
                continue
            try:
                path = Path(item).expanduser() if item.startswith("~") else self.m.base_dir / item
                found = path.is_file()
            except (OSError, ValueError, RuntimeError):
                continue
            if found:
                return (f"{_short(item)!r} is a local file, and a parameter gridrun does not know is sent as written: "
                        "the provider would get this path, which it cannot read, and render (and bill) without it; "
                        f"{where} (a local file is sent as a data URI)"), True
            if not note and (item.startswith(("~/", "./", "../", "/")) or _MEDIA.search(item.strip())):
                note = (f"{_short(item)!r} looks like a path to a file on this machine, and there is none there; "
                        "the provider cannot read a path, and would render (and bill) without it: check the path, "
                        f"and {where}")
        return note, False

    def _local_images(self, sw: Sweep, shape: _Shape, params: dict[str, Any], *, values: Mapping[str, Any],
                      matrix: Sequence[tuple[str, Any]]) -> tuple[dict[str, Any], dict[str, Any]]:
        """Local image paths made absolute (checked to exist) and, for the hash, replaced by their digests.
        `values`, the job's parameters as sent to the check, and `matrix`, its matrix values: a bad image is
        named where it was written, at its line of a data file or its item of an axis's list (as `_issues`)."""
        resolved = dict(params)
        hashed = dict(params)

        def placed(name: str) -> tuple[tuple[Any, ...], str]:
            """Where the value of `name` was written, and the note of the data-file lines it was made of."""
            where = self._path(sw, shape, name)
            if name in shape.keys and name in values:
                where = self._item(where, values[name])
            return where, self._from_rows(sw, shape, name, matrix)

        def error(name: str, message: str) -> ManifestError:
            where, note = placed(name)
            return self.m.error(where, message + note, CapabilityError)

        for name in IMAGE_PARAMS:
            if name not in params:
                continue
            value = params[name]
            items = value if isinstance(value, list) else [value]
            abs_items, hash_items = [], []
            for item in items:
                if isinstance(item, str) and images.is_data_uri(item):
                    if (name, item) not in self.images:
                        problem = images.data_uri_problem(item, self._max_bytes(name))
                        if problem is not None:
                            raise error(name, f"input image {_short(item)!r} {problem}")
                        self.images[(name, item)] = (item, item)
                    abs_items.append(item)
                    hash_items.append(item)
                    continue
                scheme = images.other_scheme(item) if isinstance(item, str) else None
                if scheme is not None:
                    raise error(name, f"input image {_short(item)!r}: gridrun does not take {scheme}: URLs; images "
                                      "are https URLs, data: URIs or local paths")
                if _is_remote(item):
                    if has_credentials(item):  # as a base URL is refused: not shown, what precedes the '@' a password
                        refused = error(name, "an input image URL holds a user name or password (`user:pass@` "
                                              "before its host): gridrun would hand it to the provider and write it "
                                              "in the report, the exports and output names; remove them, or give a "
                                              "URL signed in its query, or the image as a local file")
                        refused.names_no_job = True  # type: ignore[attr-defined]  # a job's key holds the URL
                        raise refused
                    problem = address_problem(item)  # as a base URL is checked: the provider cannot fetch it
                    if problem is not None:
                        raise error(name, f"input image {_short(item)!r} is not a URL an image can be fetched "
                                          f"from: {problem}")
                    abs_items.append(item)
                    hash_items.append(item)
                    continue
                known = self.images.get((name, item))
                if known is None:
                    if isinstance(item, str) and not item.strip():  # an empty cell: not the manifest's folder
                        raise error(name, f"input image {item!r} is empty: write an image's path, URL or data URI")
                    cannot = unnameable(item)  # a locale whose file-name encoding is not UTF-8 looks for other bytes
                    if cannot is not None:
                        raise error(name, f"input image '{shown(item)}' cannot be used: {cannot}")
                    try:
                        path = (self.m.base_dir / item).resolve()
                        found = path.is_file()
                    except UNUSABLE as exc:  # a NUL byte, a link loop, a name too long
                        raise error(name, f"input image '{shown(item)}' cannot be used: {why_unusable(exc)}") from None
                    if not found:
                        what = _not_a_file(path)
                        recorded = self.recorded_image(str(path)) if what == "not found" else None
                        if recorded is not None:  # moved away after its jobs were done: they need it no more
                            sp = str(path)
                            self.digests.setdefault(sp, recorded)  # a run sending it again finds it gone
                            self.gone.setdefault(sp, (*placed(name), item, path))
                            known = self.images[(name, item)] = (sp, {"file": path.name, "sha256": recorded})
                            abs_items.append(known[0])
                            hash_items.append(known[1])
                            continue
                        twin = self._twin_file(path) if what == "not found" else None
                        if twin is not None:
                            raise error(name, f"input image '{escaped(item)}' not found (looked for {path}); "
                                              f"'{escaped(twin)}' is there, the same name but for "
                                              f"{unlike(twin, path.name)}: rename the file or write the name so")
                        hint = self._near_miss(item, path) if what == "not found" else None
                        raise error(name, f"input image {item!r} {what} (looked for {path})"
                                          + (f"; {hint}" if hint else ""))
                    most = self._max_bytes(name)
                    try:
                        with images.open_regular(path) as f:  # swapped for a pipe since `is_file`: not read
                            head = f.read(images.HEAD)
                            size = os.fstat(f.fileno()).st_size
                            mime = images.image_mime(path, head)
                            tail = b""
                            if mime is not None and (most is None or size <= most):
                                # the end alone, one seek: a copy that stopped early is told without reading it all
                                f.seek(max(0, size - images.TAIL))
                                tail = f.read(images.TAIL)
                    except images.NotRegular as exc:
                        raise error(name, f"input image {item!r} {exc.what} (looked for {path})") from None
                    except OSError as exc:
                        raise error(name, f"input image {item!r} cannot be read: {exc.strerror or exc}") from None
                    if mime is None:
                        raise error(name, f"input image {item!r} is not an image gridrun can send ({images.KINDS})"
                                          + ("; it is empty" if not head else ""))
                    if most is not None and size > most:
                        # sent as a data URI a third larger again: the provider refuses it, or the render fails
                        raise error(name, f"input image {item!r} is {images.size_text(size)}, more than the "
                                          f"{images.size_text(most)} {self.model.model} takes: make it smaller "
                                          "(a JPEG, or fewer pixels)")
                    problem = images.cut_short(mime, tail, size <= images.TAIL)
                    if problem is not None:
                        raise error(name, f"input image {item!r} {problem}")
                    sp = str(path)
                    if sp not in self.digests:
                        self.digests[sp] = self.digest(path)
                    known = self.images[(name, item)] = (sp, {"file": path.name, "sha256": self.digests[sp]})
                abs_items.append(known[0])
                hash_items.append(known[1])
            resolved[name] = abs_items if isinstance(value, list) else abs_items[0]
            hashed[name] = hash_items if isinstance(value, list) else hash_items[0]
        return resolved, hashed

    def _max_bytes(self, name: str) -> int | None:
        """The largest image the model takes under parameter `name`; None for no limit known."""
        spec = self.model.params.get(name)
        return spec.max_bytes if spec is not None else None

    def _near_miss(self, item: Any, path: Path) -> str | None:
        """What a value naming no file most likely meant, as spreadsheets and lists made on other systems write
        it: a space before or after it, `\\` for a folder separator (Windows), another letter case (a file system
        that ignores case, where the list was made), a link whose target is gone; None: none of these."""
        if not isinstance(item, str):
            return None
        written = self.m.base_dir / item
        home = home_unexpanded(item)  # as a data file's path and outputs_dir: written as it reads
        if home is not None:
            return home
        try:
            if written.is_symlink():
                return f"{shown(item)} is a link to {os.readlink(written)}, which is not there"
            if item.strip() != item and (self.m.base_dir / item.strip()).is_file():
                return (f"the value has white space before or after it, and {item.strip()!r} is there: take the "
                        "space out (a CSV cell is read as written)")
            slashed = item.replace("\\", "/")
            if slashed != item and (self.m.base_dir / slashed).is_file():
                return f"'\\' is no folder separator here: did you mean {slashed!r}? (write paths with '/')"
        except (OSError, ValueError):
            return None
        names = self._folders_cased.get(path.parent)
        if names is None:
            names = {}
            try:
                with os.scandir(path.parent) as entries:
                    for entry in entries:
                        names.setdefault(entry.name.casefold(), entry.name)
            except (OSError, ValueError):
                pass
            self._folders_cased[path.parent] = names
        other = names.get(path.name.casefold())
        if other is not None and other != path.name:
            return (f"{other!r} is there, the same name but for letter case (this file system tells them apart): "
                    "rename the file or write the name so")
        return None

    def _twin_file(self, path: Path) -> str | None:
        """The name of a file beside `path` (which is not there) that reads as its name but is other text: a
        letter composed or not (files copied from macOS often have their names decomposed), an invisible
        character. Each folder is listed once."""
        names = self._folders.get(path.parent)
        if names is None:
            names = {}
            try:
                with os.scandir(path.parent) as entries:
                    for entry in entries:
                        names.setdefault(alike(entry.name), entry.name)
            except (OSError, ValueError):
                pass
            self._folders[path.parent] = names
        twin = names.get(alike(path.name))
        return twin if twin != path.name else None


def _not_a_file(path: Path) -> str:
    """What is at `path`, where an input image was looked for and no regular file is: "not found", or what is
    there instead (a folder, a named pipe: never opened, as reading a pipe would wait for a writer)."""
    try:
        mode = path.stat().st_mode
    except (OSError, ValueError):
        return "not found"
    return images.not_regular(mode)


def _jobs_named(keys: Sequence[str | None], count: int) -> str:
    """'job a', or 'jobs a, b (and 3 more)': the first `keys` of `count` jobs."""
    if count == 1:
        return f"job {keys[0]}"
    more = f" (and {count - len(keys):,} more)" if count > len(keys) else ""
    return f"jobs {'; '.join(map(str, keys))}{more}"


def _numbers_unread_more(more: Mapping[str, tuple[set[str], Any, Any]], rows: Sequence[str]) -> str:
    """The warning of the texts `| float` or `| int` read as no number past those named one by one
    (`_number_unread`): how many, which filters made 0.0 or 0 of them, the data-file lines of the first few."""
    made_by = set().union(*(filters for filters, _, _ in more.values()))
    filters = " and ".join(f"`| {f}`" for f in ("float", "int") if f in made_by)
    made = " or ".join(z for f, z in (("float", "0.0"), ("int", "0")) if f in made_by)
    count = len(more)
    where = f" (from {', '.join(rows)}{', ...' if count > len(rows) else ''})" if rows else ""
    return (f"and {count:,} more {'text' if count == 1 else 'texts'} not a number to {filters}, which "
            f"{'makes it' if count == 1 else 'makes them'} {made}{where}: the warnings above say how to fix them")


def _number_unread(made_by: str, text: str, name: str | None, rows: Sequence[str]) -> str:
    """The warning of a template whose `| float` or `| int` (`made_by`) read `text` (of `name`, when known; from the
    data-file lines `rows`) as no number, and so wrote 0.0 or 0 where the data says otherwise: "1,5" from a sheet
    exported where the decimal separator is a comma, most often. A comma before groups of exactly three digits
    (`1,000`, `12,500`, `1,000,000`, `1,000.5`) is most often a thousands separator (what en-US sheets write), whose
    decimal-comma fix would send 1 for 1,000: that reading is named first, and the decimal one only where it is one
    (one comma, no dot) and for `| float` (an int a decimal comma writes has no three digits after it)."""
    held = f"'{name}' is {text!r}" if name else f"a text {text!r}"
    made = "0.0" if made_by == "float" else "0"
    where = f" (from {', '.join(rows)})" if rows else ""
    written = text.strip()
    decimal = (f"a decimal comma? write {written.replace(',', '.')} in the file, or "
               f"{{{{ ... | replace(',', '.') | {made_by} }}}}")
    if re.fullmatch(r"[+-]?[0-9]{1,3}(,[0-9]{3})+(\.[0-9]+)?", written):
        number = written.replace(",", "")
        fix = (f"a thousands separator? write {number} in the file, or {{{{ ... | replace(',', '') | {made_by} }}}}"
               if made_by == "float" or _whole(number) else
               f"a thousands separator? {_not_whole(number, ',', '')}")
        if made_by == "float" and written.count(",") == 1 and "." not in written:
            fix += f"; or {decimal}"
    elif re.fullmatch(r"[+-]?[0-9]+,[0-9]+", written):
        number = written.replace(",", ".")
        fix = decimal if made_by == "float" or _whole(number) else f"a decimal comma? {_not_whole(number, ',', '.')}"
    else:
        fix = f"write a number there, or give the filter a default of your own: {{{{ ... | {made_by}(default=...) }}}}"
    return f"{held}, not a number to `| {made_by}`, which makes it {made}{where}: {fix}"


def _whole(number: str) -> bool:
    """`number`, digits with a dot or none (`1.5`, `2500.0`), is a whole number: no digit but 0 after its dot."""
    return not number.partition(".")[2].strip("0")


def _not_whole(number: str, old: str, new: str) -> str:
    """The advice for `| int` of a text that reads as `number` once its `old` is replaced by `new`, which is no whole
    number: `| int` would cut it short (1 for 1,5) without a word, so that replace is not advised."""
    cut = number.lstrip("+").partition(".")[0] or "0"
    return (f"then it is {number}, not a whole number, which {{{{ ... | replace('{old}', '{new}') | int }}}} would cut "
            f"to {cut} without a word: write the whole number meant in the file, or {{{{ ... | replace('{old}', "
            f"'{new}') | float }}}} where a fraction is meant")


def _boolean_written(value: bool, name: str | None) -> str:
    """The warning of a template that writes the boolean `value` (of `name`, when known) into its text, where Python
    writes 'True' and 'False' while the key, the plan and YAML say true and false."""
    said = str(value).lower()
    how = f"as Python writes it (YAML, JSON and job keys write {said})"
    if name is None:
        return (f"writes a boolean into its text as '{value}', {how}; write {{{{ ... | lower }}}} for '{said}', or "
                "words of your own: {{ 'with sound' if ... else 'silent' }}")
    return (f"'{name}' is {said}, which the template writes as '{value}', {how}; write {{{{ {name} | lower }}}} for "
            f"'{said}', or words of your own: {{{{ 'with sound' if {name} else 'silent' }}}}")


# What gridrun sets for every job's templates: a var or matrix key of the same name would be overwritten.
BUILTIN_NAMES = frozenset({"key", "repeat", "sweep", "index", "hash"})
# manifest field (folded) -> as written: a matrix key of one of these names sets no field, and no request parameter.
# A name, description or version of each job is an axis of its own, which no one takes for the manifest's.
_FIELDS_FOLDED = {name.casefold(): name for name in field_names() if name not in ("name", "description", "version")}
_FIELD_ADVICE = {
    "model": "a run of another model is another manifest",
    "provider": "a run of another provider is another manifest",
    "base_url": "a run at another base_url is another manifest",
    "output": "to name files by it, write it under another name in output (output: \"{{ out_name }}.mp4\")",
    "outputs_dir": "one manifest writes to one outputs_dir",
    "state_dir": "one manifest keeps one state_dir",
}


# A run setting or manifest field written under `params:` (name -> the warning): passed through as an unknown
# parameter, it is sent in every request, and the run goes without it (a budget_usd there caps nothing).
_MISPLACED = {
    **{name: (f"a run setting, not a request parameter: it goes under run: ({field}); here it is sent in every "
              "request, and the run does not use it")
       for name, field in field_names().items() if field.startswith("run.")},
    **{name: (f"a manifest field, not a request parameter: it goes at the top level ({name}:); here it is sent in "
              "every request, and the run does not use it")
       for name in ("outputs_dir", "state_dir", "output", "base_url", "provider")},
}


# Fields of the create request gridrun writes itself, whatever `params:` says (name -> the warning): a value written
# under `params:` is never sent, yet it is part of the job's hash, as it always was. Warned of, not refused: a manifest
# that has one keeps its jobs' hashes as long as the line stays (removed, they would be new jobs, paid again, and the
# jobs in flight that a run sent with it could not be collected).
_OWNED = {
    "model": ("not sent: gridrun sends the manifest's `model:` ({model}) in every request; the value here only "
              "makes part of each job's hash, so changing or removing it makes the jobs new ones, paid for again. "
              "Leave it as it is; a run of another model is another manifest's (its top-level `model:`)"),
    "idempotency_key": ("not sent: gridrun sets each job's idempotency key itself (it is what keeps a job from being "
                        "paid for twice); the value here only makes part of each job's hash, so changing or removing it "
                        "makes the jobs new ones, paid for again. Leave it as it is"),
}


def _field_key(name: str, meant: str) -> str:
    """What a matrix key named like the manifest field `meant` does (nothing to it), and what does."""
    field_name = field_names()[meant]
    kind = "a run: field" if field_name.startswith("run.") else "a manifest field"
    advice = _FIELD_ADVICE.get(meant) or (f"{field_name} holds for the whole run" if field_name.startswith("run.") else "")
    return (f"'{name}' is {kind}, not a request parameter: a matrix key cannot change it (it is a template value "
            f"only)" + (f"; {advice}" if advice else ""))


def _builtin_problem(name: str) -> str:
    return f"'{name}' is set by gridrun for every job ({', '.join(sorted(BUILTIN_NAMES))}); choose another name"


# Names a template reads as Jinja's literals, not as a var or matrix value of the name, wherever it is written (`{{
# none }}` is the value none, silently). The other names Jinja gives meaning (`self`, `loop` in a `{% for %}`,
# `varargs` and `kwargs` in a macro, `caller`, `range`, ...) read the var where Jinja does not use them itself.
_JINJA_LITERALS = frozenset({"true", "false", "none", "True", "False", "None"})


def _jinja_problem(name: str) -> str | None:
    """Why a var or matrix key `name` cannot be read by a template; None when it can."""
    if name not in _JINJA_LITERALS:
        return None
    return f"a template reads `{name}` as the value {name.lower()}, not this var; rename it"


def compile_sweep(
    m: Manifest, sw: Sweep, errors: Collector
) -> tuple[dict[str, Compiled], list[str], dict[str, Compiled], Compiled] | None:
    ok = True

    def compiled(values: Mapping[str, Any], paths: Mapping[str, tuple[Any, ...]]) -> dict[str, Compiled]:
        nonlocal ok
        out: dict[str, Compiled] = {}
        for name, value in values.items():
            try:
                out[name] = compile_value(value)
            except TemplateProblem as exc:
                errors.add(_template_error(m, paths[name], exc))
                ok = False
        return out

    for name in BUILTIN_NAMES.intersection(sw.vars):
        errors.add(m.error(sw.var_paths.get(name, sw.prefix + ("vars",)), _builtin_problem(name), TemplateError))
        ok = False
    for name in sw.vars:
        problem = _jinja_problem(name)
        if problem is not None:
            errors.add(m.error(sw.var_paths.get(name, sw.prefix + ("vars",)), problem, TemplateError))
            ok = False
    cvars = compiled(sw.vars, sw.var_paths)
    cparams = compiled(sw.params, sw.param_paths)
    for section, items, paths in (("vars", cvars, sw.var_paths), ("params", cparams, sw.param_paths)):
        for name, c in items.items():
            if "hash" in c.names:
                # the hash is of the request the vars and params make: only output can use it
                errors.add(m.error(paths.get(name, sw.prefix + (section,)), "uses hash, which exists only once vars "
                                   "and params have made the request: only output can use it", TemplateError))
                ok = False
    if isinstance(sw.output, str):
        # what is around the name is trimmed (`_output_path`): a block scalar's last line break is no part of it
        control = m.control_character(sw.output_path, sw.output.strip(), "file name template", spacing=False)
        if control is not None:
            errors.add(control)
            return None
    try:
        coutput = compile_value(sw.output)
    except TemplateProblem as exc:
        errors.add(_template_error(m, sw.output_path, exc))
        return None
    if not ok:
        return None
    try:
        order = var_order(cvars)
    except TemplateProblem as exc:
        first = exc.message.split(": ", 1)[-1].split(" -> ")[0]
        errors.add(m.error(sw.var_paths.get(first, ("vars",)), exc.message, TemplateError))
        return None
    return cvars, order, cparams, coutput


_NO_SWEEPS = "this manifest has no sweeps, and sweep is the name of the job's sweep under `sweeps:`"

_SURROGATE = ("holds a lone surrogate (a \\ud800-\\udfff escape), which is not text; write the character itself, "
              "or one \\U escape such as \\U0001F98A")


def read_by(cvars: Mapping[str, Compiled], cparams: Mapping[str, Compiled], coutput: Compiled) -> frozenset[str]:
    """The names a sweep's parameters and output read, themselves or through the vars they read."""
    return frozenset().union(*(_read_names(c, cvars) for c in (*cparams.values(), coutput)))


def _in_sweep(sw: Sweep, name: str, err: TemplateError, reached: frozenset[str]) -> TemplateError:
    """`err`, of the var `name` rendered for `sw`, saying which sweep reads it when the var is a top-level one
    (read by the templates of some sweeps, perhaps with a matrix key only they have) that the templates of `sw`
    read (`reached`): one that no template reads is checked in every sweep, and the note would send the reader to a
    sweep that never uses it."""
    if sw.name is None or sw.var_paths.get(name, ())[:1] != ("vars",) or name not in reached:
        return err
    said = TemplateError(f"{err.message} (for sweep {sw.name}, whose templates read it)", file=err.file,
                         line=err.line, column=err.column, field=err.field)
    said.row_line = err.row_line
    return said


def _read_names(c: Compiled, cvars: Mapping[str, Compiled]) -> frozenset[str]:
    """The names template `c` uses, itself or through the vars it uses."""
    seen: set[str] = set()
    stack = list(c.names)
    while stack:
        name = stack.pop()
        if name not in seen:
            seen.add(name)
            stack.extend(cvars[name].names if name in cvars else ())
    return frozenset(seen)


def _reaches(c: Compiled, cvars: Mapping[str, Compiled], target: str) -> bool:
    """Whether template `c` uses the name `target`, itself or through the vars it uses."""
    seen: set[str] = set()
    stack = list(c.names)
    while stack:
        name = stack.pop()
        if name == target:
            return True
        if name not in seen and name in cvars:
            seen.add(name)
            stack.extend(cvars[name].names)
    return False


def _shown(values: Sequence[tuple[str, Any]], take: int) -> str:
    """A job's matrix values as written (strings quoted, so that their spacing shows; long ones cut in the
    middle), and its take."""
    parts = []
    for k, v in values:
        text = repr(v) if isinstance(v, str) else canonical(v)
        parts.append(f"{k}={text if len(text) <= 70 else f'{text[:50]}…{text[-16:]}'}")
    text = ", ".join(parts) or "no values"
    return f"{text} (take {take})" if take else text


def _short(value: str) -> str:
    """`value` as an error shows it: a data URI's megabytes of base64 cut in the middle."""
    return value if len(value) <= 80 else f"{value[:60]}…{value[-12:]}"


# The extension of an image, video or sound file: a value ending so looks like a path to one.
_MEDIA = re.compile(r"\.(?:png|jpe?g|webp|gif|bmp|tiff?|heic|avif|mp4|mov|webm|mkv|avi|m4v|mp3|wav|m4a|aac|ogg|flac)$",
                    re.IGNORECASE)


def _is_remote(value: str) -> bool:
    """Whether `value` is an http(s) URL or a data URI, its scheme in any letter case (`HTTPS://`, as a
    spreadsheet's autocapitalisation writes it, is https), as the providers' request builders take it."""
    return value[:8].lower().startswith(("http://", "https://", "data:"))


# What gridrun itself writes in the output folder, beside the videos.
# (report-run-N.html and results-run-N.* are the report and export of an earlier run, `gridrun report --run N`.)
_OWN_FILES = re.compile(r"report(?:-run-\d+)?\.html|results(?:-run-\d+)?\.(?:jsonl|csv|json)|compare-\d+-\d+\.html",
                        re.IGNORECASE)
_OWN_FOLDER = ".runs"




_BESIDE = (".part", ".json", ".jpg")  # how the names of the files beside a video end (`files_beside`)


class OutputClaims:
    """The files each job writes in the output folder (its video, and beside it the sidecar, the poster and
    the `.part` file of the download) and the folders they sit in. Paths compare as macOS file systems do
    (`fold`): a manifest that makes `P.mp4` and `p.mp4` would lose a video there.

    A job's four files are held as two names: its video's (the `.part` file is that and `.part`) and the stem
    its sidecar and poster share (that and `.json`, `.jpg`), each folded; `taken` tells a file from them."""

    def __init__(self, name_max: int = NAME_MAX) -> None:
        self.name_max = name_max                      # the longest name the output folder's file system takes
        self.videos: dict[str, str] = {}              # folded video path -> the path as written
        self.folders: dict[str, str] = {}             # folded folder -> a job key whose files sit in it
        self._video_keys: dict[str, str] = {}         # folded video path -> its job's key
        self._stem_keys: dict[str, str] = {}          # folded stem of a job's sidecar and poster -> its job's key
        # The files whose folded names are not so made of their video's (a fold that changes a name's end): folded
        # path -> (job key, what it is), as written down whole.
        self._whole: dict[str, tuple[str, str]] = {}
        # Whether a video or folder claimed ends as a file beside a video does (`.part`, `.json`, `.jpg`), or any
        # file is in `_whole`: then a name is not told taken by its video and stem alone (`claim`'s quick way).
        self._odd = False
        # A video's folder (its path up to the last '/') -> each folder on the way, folded -> as written, and
        # whether the first of them is gridrun's own. Jobs share a few folders: each is folded once, not per job.
        self._parents: dict[str, tuple[dict[str, str], bool]] = {}
        # The folders whose every folder on the way is claimed (in `folders`): no file can be claimed there
        # since (a claim of one is refused), so a later job's files in them are not looked up again.
        self._settled: set[str] = set()

    def taken(self, at: str) -> tuple[str, str] | None:
        """The job key and what it is (video, sidecar, poster, download) of the file claimed at the folded path
        `at`; None when no job's file is there."""
        key = self._video_keys.get(at)
        if key is not None:
            return key, "video"
        if at.endswith(".part"):
            key = self._video_keys.get(at[:-5])
            if key is not None:
                return key, "download"
        elif at.endswith(".json"):
            key = self._stem_keys.get(at[:-5])
            if key is not None:
                return key, "sidecar"
        elif at.endswith(".jpg"):
            key = self._stem_keys.get(at[:-4])
            if key is not None:
                return key, "poster"
        return self._whole.get(at)

    def claim(self, video: str, key: str, *, default_output: bool = False) -> str | None:
        """Record the files of the job `key` writing `video` (relative, '/'-separated); the problem when one
        of them is taken, by this job's other files, another job's, a folder of one, or gridrun's own.
        `default_output`: the sweep names videos by the default template, which the advice cannot suggest."""
        if not self._odd and video.isascii() and len(video) * 4 + 5 <= self.name_max:
            # The usual job: an ASCII name too short to be too long, in a folder an earlier job claimed. Its files
            # are folded by `lower` alone (see below), and when none of them is taken they are recorded here; any
            # one taken goes the long way below, which tells what took it. With no video or folder ending as a
            # file beside a video does, its `.part` file is taken only with its video, its sidecar and poster
            # only with their stem (`taken`), and only its video can be a folder.
            where, slash, _ = video.rpartition("/")
            if slash and where in self._settled:
                at_video = video.lower()
                stem = stem_of(at_video)
                if (not at_video.endswith(_BESIDE) and at_video not in self._video_keys
                        and stem not in self._stem_keys and at_video not in self.folders):
                    self._video_keys[at_video] = key
                    self._stem_keys[stem] = key
                    self.videos[at_video] = video
                    return None
        download, sidecar, poster = files_beside(video)
        mine = ((video, "video"), (sidecar, "sidecar"), (poster, "poster"), (download, "download"))
        # A name of these files is at most the video's name and 5 characters (".part"), each at most 4 bytes:
        # a path this short cannot hold a name too long, and its names are not encoded to be measured.
        if len(video) * 4 + 5 > self.name_max:
            for path, what in mine:
                long = next((part for part in path.split("/")
                             if len(part.encode("utf-8", "surrogatepass")) > self.name_max), None)
                if long is not None:
                    shown = long if len(long) <= 60 else f"{long[:40]}…{long[-12:]}"
                    return (f"job {key!r} would write its {what} as {shown}, a name of "
                            f"{len(long.encode('utf-8', 'surrogatepass'))} bytes: more than file systems take "
                            f"({self.name_max}); "
                            "shorten output, e.g. with {{ value | truncate(60) }} or {{ hash }}")
        if video.isascii():
            # ASCII is in one Unicode form, and its lower case is a letter's own (no final sigma), as `fold` makes it
            at_video = video.lower()
            folded = {at_video: mine[0], sidecar.lower(): mine[1], poster.lower(): mine[2], download.lower(): mine[3]}
        else:
            at_video = fold(video)
            folded = {fold(path): (path, what) for path, what in mine}
        if len(folded) < len(mine):  # x.json, or x.JSON where case is not told apart
            clash = next(what for path, what in mine[1:] if fold(path) == fold(video))
            return (f"job {key!r} would write {video}, which is also the name of its own {clash}; "
                    "use a video name (e.g. \"{{ key }}.mp4\")")
        where, slash, _ = video.rpartition("/")
        parents = self._parents.get(where)
        if parents is None:
            folders = {fold(video[:i]): video[:i] for i, ch in enumerate(where) if ch == "/"}
            own = False
            if slash:
                folders[fold(where)] = where
                top = where.split("/", 1)[0]
                own = fold(top) == _OWN_FOLDER or _OWN_FILES.fullmatch(top) is not None
            parents = self._parents[where] = (folders, own)
        folders, own = parents
        # in a folder, the first folder's name is the one that can be gridrun's; else the files' own names
        if own or not slash and (at_video == _OWN_FOLDER or any(_OWN_FILES.fullmatch(path) for path, _ in mine)):
            return f"job {key!r} would write {video}, in the place of gridrun's own files (report, results, .runs)"
        claimed_folders = self.folders
        for at, (path, what) in folded.items():
            taken = self.taken(at)
            if taken is not None:
                other, theirs = taken
                if what == theirs == "video":
                    if other != key and self.videos.get(at) not in (None, video):
                        # the names differ only as these file systems do not tell apart
                        theirs_video = self.videos[at]
                        return (f"jobs {other!r} and {key!r} would write {theirs_video!r} and {video!r}, one "
                                "file where case is not told apart (macOS, Windows); make the values differ in more "
                                "than case")
                    if other != key and unicodedata.normalize("NFC", other) == unicodedata.normalize("NFC", key):
                        return (f"jobs {ascii(other)} and {ascii(key)} differ only in Unicode form (a letter composed "
                                f"or not), which output names do not keep: both would write {video}; write the values "
                                "in one form")
                    if default_output:  # names made from keys keep only some characters of the values
                        return (f"jobs {other!r} and {key!r} would both write {video}; the default output, "
                                "\"{{ key }}.mp4\", turns each run of characters other than letters, digits and "
                                "._=,+@#%- into _: set output, e.g. \"{{ key }}-{{ hash }}.mp4\"")
                    return (f"jobs {other!r} and {key!r} would both write {video}; "
                            "put the keys that vary into output (e.g. \"{{ key }}.mp4\")")
                return f"job {key!r} would write {path} (its {what}), which job {other!r} writes (its {theirs})"
            if at in claimed_folders:
                return f"job {key!r} would write {path} (its {what}), a folder job {claimed_folders[at]!r} writes in"
        settled = where in self._settled
        if not settled:
            for at, folder in folders.items():
                taken = self.taken(at)
                if taken is not None:
                    return f"job {key!r} would write in the folder {folder}, which is the {taken[1]} of job {taken[0]!r}"
        at_sidecar, at_poster, at_download = list(folded)[1:]
        stem = at_sidecar[:-5]
        if at_download == at_video + ".part" and at_sidecar == stem + ".json" and at_poster == stem + ".jpg":
            self._video_keys[at_video] = key
            self._stem_keys[stem] = key
            if at_video.endswith(_BESIDE):
                self._odd = True
        else:  # a fold that changes how a name ends: its files written down whole
            for at, (_, what) in folded.items():
                self._whole[at] = (key, what)
            self._odd = True
        self.videos[at_video] = video
        if not settled:
            for at in folders:
                self.folders.setdefault(at, key)
                if at.endswith(_BESIDE):
                    self._odd = True
            self._settled.add(where)
        return None


def fold(path: str) -> str:
    """`path` ('/'-separated) as case-insensitive file systems compare names: one Unicode form (é composed or
    not), one case (a simple lower case: they keep ß apart from ss, which `str.casefold` would not). The dots and
    spaces that end a name are kept: Linux and macOS, where gridrun runs, keep `v1.` and `v1` apart."""
    return unicodedata.normalize("NFC", path).lower()



# Besides letters, marks (a Devanagari vowel sign, a combining accent) and digits of any script, these stay.
_KEEP = frozenset("._=,+@#%-")


def _safe_part(part: str) -> str:
    """One path segment with each run of other characters (spaces, quotes, control characters) made "_"."""
    return "".join(
        "".join(run) if safe else "_"
        for safe, run in itertools.groupby(part, lambda c: c in _KEEP or unicodedata.category(c)[0] in "LMN")
    )


def _output_path(m: Manifest, sw: Sweep, rel: Any, errors: Collector, key: str, note: str = "",
                 rows_line: Callable[[str], str | None] | None = None) -> str | None:
    """The output path relative to the output folder, made safe; None (and an error) when it is not. `note`: what
    the error adds (that `sweep` is empty, in a manifest without sweeps); `rows_line`: where the data-file rows of
    a job's values are (`JobMaker.rows_line`), named with the path."""
    text = str(rel).strip()
    if _SAFE_REL.fullmatch(text):
        return text

    def shown() -> str:
        return ", ".join(filter(None, (repr(text), rows_line(key) if rows_line is not None else None)))

    if not text:
        errors.add(m.error(sw.output_path, "renders an empty path" + note), key,
                   rows_line(key) if rows_line is not None else None)
        return None
    if text.endswith("/"):
        errors.add(m.error(sw.output_path, "renders a folder (it ends with '/'), not a file name: name the video in it, "
                                           "e.g. \"{{ style }}/{{ key }}.mp4\"" + note), key, shown())
        return None
    if text.startswith(("/", "\\", "~")) or re.match(r"^[A-Za-z]:[\\/]", text):
        errors.add(m.error(sw.output_path, "renders an absolute path; output is relative to the output folder" + note),
                   key, shown())
        return None
    # "/" separates folders; a backslash is a character (from a value, say: `rain\snow`), made "_" below
    norm = posixpath.normpath(text)
    if norm == ".." or norm.startswith("../"):
        errors.add(m.error(sw.output_path, "renders a path that leaves the output folder" + note), key, shown())
        return None
    parts = [_safe_part(p) for p in unicodedata.normalize("NFC", norm).split("/") if p not in ("", ".")]
    if not parts:
        errors.add(m.error(sw.output_path, "renders a path that names no file" + note), key, shown())
        return None
    return "/".join(parts)


# What a matrix value's own "/" is in the text the output template renders for `JobMaker._slashes_apart`: a
# character no name keeps (a private use one), to tell where the template puts the value's "/".
_VALUE_SLASH = "\ue000"


def _apart(value: Any) -> Any:
    """`value` (a matrix value: text, a data file's row, a list) with each '/' of its text `_VALUE_SLASH`; the very
    value when it holds none."""
    kind = type(value)
    if kind is str:
        return value.replace("/", _VALUE_SLASH) if "/" in value else value
    if kind is dict:
        items = {k: _apart(v) for k, v in value.items()}
        return items if any(items[k] is not v for k, v in value.items()) else value
    if kind is list or kind is tuple:
        seq = [_apart(v) for v in value]
        return kind(seq) if any(a is not b for a, b in zip(seq, value)) else value
    return value


# --------------------------------------------------------------------------------------------------
# The plan against the state store.
