"""Matrix expansion with GitHub Actions `strategy.matrix` semantics, exactly, plus gridrun's extensions.

The base rules follow GitHub's own workflow parser (actions/runner, MatrixBuilder.cs):

- the product of the axes in declaration order, the first axis varying slowest;
- `exclude` entries match partially and are applied first; an exclude key must name an axis;
- each `include` entry splits into filter keys (those naming an axis) and extra keys; it is merged into
  every remaining product combination that its filter matches, extras of later entries overwriting those
  of earlier ones; an entry that matched none becomes a new combination (filter keys first, then extras);
- values are compared with GitHub's expression `==` (`runner.ghexpr`): strings without regard to case, a
  number and a string by converting the string to a number, null and booleans as numbers (null == 0 ==
  false == ""), nested mappings and lists of an entry leaf by leaf, a number in an entry as written, else
  (when it so matches no value) rounded to 15 significant digits, as GitHub writes it into its filter;
- axis and entry keys are matched without regard to case.

Extensions: a non-empty list under an axis key in an include/exclude entry expands to one entry per value
(when that axis holds no lists itself), and an empty list or mapping there is refused (it would test nothing); `zip` groups of equal-length lists vary together as one axis;
`{range: [start, stop, step]}` (inclusive integers) and `{linspace: [start, stop, count]}` axes.

`expand` is pure. `matrix_of_file` is the one function here that reads a file.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from runner import manifest as _manifest
from runner import textforms
from runner.errors import ManifestError, ManifestErrors, MatrixError
from runner.ghexpr import EqualIndex, equal, find_in_range, fold, g15, lookup

ErrorFactory = Callable[[tuple[Any, ...], str], Exception]

RESERVED = ("include", "exclude", "zip")
MAX_COMBINATIONS = 10_000_000
# A range or linspace of more values than this, and than the plan's cap allows, is refused before it is made.
EARLY_REFUSAL = 100_000
# An axis of more values than this is walked, not copied, when the product is made (the other axes then make at
# most MAX_COMBINATIONS / WALKED combinations, which are copied).
WALKED = 100_000



@dataclass(frozen=True, slots=True)
class Combination:
    """One combination of matrix values, with where it and each of its values came from."""

    values: tuple[tuple[str, Any], ...]
    origin: str
    sources: tuple[tuple[str, str], ...]

    def as_dict(self) -> dict[str, Any]:
        """The values as a dict, in order."""
        return dict(self.values)


@dataclass(frozen=True, slots=True)
class Expansion:
    """The combinations of a matrix, in GitHub's order, and the product combinations exclude removed;
    `unmatched` has the exclude entries that match no combination (0-based, with the values no job has)."""

    combinations: tuple[Combination, ...]
    excluded: tuple[tuple[Combination, int], ...]
    unmatched: tuple[tuple[int, str], ...] = ()
    # (path in the matrix, warning): include entries that add a job of their own where a value of theirs reads like
    # an axis value it does not equal ("true" for true), so that they were most likely meant to extend jobs
    notes: tuple[tuple[tuple[Any, ...], str], ...] = ()


SINGLE = Expansion(combinations=(Combination(values=(), origin="product", sources=()),), excluded=())
"""What a manifest (or sweep) without a matrix expands to: one job with no matrix values."""


def expand(matrix: Mapping[str, Any], *, error: ErrorFactory | None = None) -> Expansion:
    """Expand a matrix into its combinations.

    `error(path, message)` builds the exception for a problem at `path` inside the matrix, e.g.
    ("include", 2, "fruit") (indices 0-based). Several problems are raised together, as one ManifestErrors,
    when `error` builds ManifestError instances. A matrix whose combinations are all excluded expands to none
    (GitHub then runs a single job with an empty matrix; gridrun leaves that choice to the plan).
    Raises MatrixError by default.
    """
    return prepare(matrix, error=error).expand()


@dataclass(frozen=True, slots=True)
class Prepared:
    """A matrix checked but not expanded, so that a plan refuses a matrix of millions before it spends seconds
    and gigabytes on it: `at_least` is a floor of the combinations, found without listing any (the product
    less every exclude's own size); `count()` is their number, found by listing only what the excludes and
    includes match; `expand()` makes them; `combinations()` makes them one at a time."""

    at_least: int
    count: Callable[[], int]
    expand: Callable[[], Expansion]
    exact: bool = False  # at_least is the count but for includes (no excludes): count() is cheap then
    stream: Callable[[], Iterator[Combination]] | None = None  # None: those of expand()
    unmatched: tuple[tuple[int, str], ...] = ()  # as Expansion's
    excluded: Callable[[], int] = lambda: 0  # how many of the product's combinations the excludes remove

    def combinations(self) -> Iterator[Combination]:
        """The combinations in `expand()`'s order, each made as it is asked for and none kept: a printout of
        ten million needs no more memory than one of ten (the excluded ones, which `expand()` keeps, are not
        made)."""
        return self.stream() if self.stream is not None else iter(self.expand().combinations)


_SINGLE = Prepared(1, lambda: 1, lambda: SINGLE, exact=True)
"""The one empty combination of a manifest (or sweep) without a matrix, prepared."""


def prepare(matrix: Mapping[str, Any], *, error: ErrorFactory | None = None, cap: int | None = None) -> Prepared:
    """Check and index a matrix (errors as `expand`). With `cap`, the most jobs the plan may have, a range or
    linspace of more values than the cap and the excludes allow is refused before its values are made (a
    typo such as [1, 5000000] would take seconds and gigabytes)."""
    problems = _Problems(error or _default_error, cap=cap)
    if cap is not None:
        # An exclude entry names one value per key: each removes the combinations of at most one value of an
        # axis. Smaller axes are made and counted with the rest (the plan's cap check says it then).
        excludes = matrix.get("exclude") if isinstance(matrix, Mapping) else None
        problems.excludes = len(excludes) if isinstance(excludes, (list, tuple)) else 0
        problems.most_values = min(MAX_COMBINATIONS, max(cap + problems.excludes, EARLY_REFUSAL))
    parsed = _parse(matrix, problems)
    problems.raise_if_any()
    assert parsed is not None
    axes, include_entries, exclude_entries = parsed
    excludes = [_compile_exclude(number, entry, axes, problems) for number, entry in exclude_entries]
    includes = [f for number, entry in include_entries for f in _compile_include(number, entry, axes, problems)]
    problems.raise_if_any()
    sizes = [axis.size for axis in axes]
    size = math.prod(sizes) if axes else 0
    removable = sum(math.prod(len(dict(f.constraints).get(a, range(sizes[a]))) for a in range(len(axes)))
                    for f in excludes if not f.never)
    index: list[_Index] = []

    def indexed() -> _Index:
        if not index:
            index.append(_Index(axes, includes, excludes))
        return index[0]

    unmatched = tuple((f.number - 1, f.unmatched) for f in excludes if f.never)
    return Prepared(max(0, size - removable), lambda: indexed().count(),
                    lambda: _build(axes, includes, indexed(), unmatched), exact=not excludes,
                    stream=lambda: _combinations(axes, includes, indexed()), unmatched=unmatched,
                    excluded=lambda: len(indexed().removed_by))


UNMATCHED_SHOWN = 5


def matrix_warnings(matrix: Mapping[str, Any] | None, unmatched: Sequence[tuple[int, str]],
                    from_file: Collection[tuple[Any, ...]] = ()) -> list[tuple[tuple[Any, ...], str]]:
    """(path in the matrix, warning) for what `validate`, `plan` and `matrix` warn of in a matrix itself: the
    exclude entries that remove nothing (`unmatched`, as `Prepared` has them), the first UNMATCHED_SHOWN each,
    the rest counted; the values that hold a template (`_templates_in_matrix`)."""
    # GitHub lets an exclude remove nothing; here its values are most likely a typo, and the jobs it was to remove
    # are paid for.
    found = [(("exclude", number), f"removes no combination ({why}); check its values")
             for number, why in unmatched[:UNMATCHED_SHOWN]]
    if len(unmatched) > UNMATCHED_SHOWN:
        rest = [number for number, _ in unmatched[UNMATCHED_SHOWN:]]
        entries = ", ".join(str(n) for n in rest[:10]) + (", ..." if len(rest) > 10 else "")
        found.append((("exclude",), (f"{len(rest):,} more entries remove no combination (entries {entries}); "
                                     "check their values")))
    return found + _templates_in_matrix(matrix, from_file)



def _templates_in_matrix(matrix: Mapping[str, Any] | None,
                         from_file: Collection[tuple[Any, ...]] = ()) -> list[tuple[tuple[Any, ...], str]]:
    """(path in the matrix, warning) for each axis, include or zip entry that holds a value with a template in
    it (`{{` or `{%`), at the first such value: matrix values are sent as written, braces and all, so an include
    meant to override a prompt with a template would pay for the template's text. A warning, not an error, for
    values written in the manifest only: the axes at `from_file` (paths in the matrix) were read from data files,
    whose text is taken as written on purpose (a sign reading {{hello}}), and a warning on every run that could
    not be silenced would only teach to skip warnings. Excludes are left out: they send nothing."""
    found: list[tuple[tuple[Any, ...], str]] = []

    def walk(value: Any, path: tuple[Any, ...], hits: list[tuple[tuple[Any, ...], str]]) -> None:
        if path in from_file:
            return
        if isinstance(value, str):
            if "{{" in value or "{%" in value:
                hits.append((path, value))
        elif isinstance(value, Mapping):
            for k, v in value.items():
                walk(v, path + (k,), hits)
        elif isinstance(value, list):
            for i, v in enumerate(value):
                walk(v, path + (i,), hits)

    for name, value in (matrix or {}).items():
        if name == "exclude":
            continue
        entries = name in ("include", "zip") and isinstance(value, list)
        groups = [((name, i), v) for i, v in enumerate(value)] if entries else [((name,), value)]
        for at, group in groups:
            hits: list[tuple[tuple[Any, ...], str]] = []
            walk(group, at, hits)
            if hits:
                path, text = hits[0]
                excerpt = text if len(text) <= 60 else text[:57] + "..."
                others = len(hits) - 1
                more = f"; so do {others:,} more of this {'entry' if len(at) > 1 else 'axis'}'s values" if others else ""
                found.append((path, (f"holds a template ({excerpt!r}), which is sent as written, braces and all: "
                                     "matrix values are not templates; put the template in params (e.g. prompt: "
                                     f"\"{{{{ style }}}} special\") and only the part that varies in the matrix{more}")))
    return found


def matrix_of_file(path: Path) -> list[tuple[str | None, Expansion]]:
    """Expand the matrices of a file: a gridrun manifest (its matrix, or each sweep's) or a bare matrix mapping.

    A bare matrix is what sits under a workflow's `strategy.matrix`. Returns (sweep name or None, expansion)
    pairs in order. Raises ManifestError(s) for an invalid file, MatrixError(s) for a matrix that cannot expand.
    """
    return [(name, prepared.expand()) for name, prepared in prepared_of_file(path)]


def prepared_of_file(path: Path) -> list[tuple[str | None, Prepared]]:
    """The matrices of a file, as `matrix_of_file` reads them, each checked (errors as it raises them) but not
    yet expanded: their combinations can then be listed one at a time."""
    return checked_of_file(path)[0]


def checked_of_file(path: Path, *, param_names: _manifest.ParamNames | None = None
                    ) -> tuple[list[tuple[str | None, Prepared]], list[str]]:
    """`prepared_of_file`'s matrices, and the warnings `validate` gives of them (`matrix_warnings`), each as an
    error would be said (file:line:column: field: message). `param_names`: as `manifest.load` takes it, for a
    manifest's field unknown where it is written that is a request parameter, told to go under `params:`."""
    data, positions = _manifest.read_yaml(path)
    root: tuple[Any, ...] = ()
    if (isinstance(data, Mapping) and set(data) == {"matrix"} and isinstance(data["matrix"], Mapping)
            and not set(data["matrix"]) <= {"range", "linspace", "file"}):  # else one axis named matrix
        # a manifest's `matrix:` alone, copied out of one (or to be pasted into one): its axes, read as the
        # manifest reads them, each said at its line under `matrix`
        data, root = data["matrix"], ("matrix",)
    elif isinstance(data, Mapping) and (
        "version" in data and not isinstance(data["version"], (list, Mapping))
        # a manifest missing its version: in a bare matrix a mapping is an axis written as a range, linspace
        # or file, never a matrix of axes
        or isinstance(data.get("matrix"), Mapping) and not set(data["matrix"]) <= {"range", "linspace", "file"}
        or isinstance(data.get("sweeps"), list) and all(isinstance(s, Mapping) for s in data["sweeps"])
    ):
        loaded = _manifest.load(path, param_names=param_names)
        out: list[tuple[str | None, Prepared]] = []
        warnings: list[str] = list(loaded.data_warnings)
        matrices = [(str(sweep["name"]), ("sweeps", index, "matrix"), sweep.get("matrix"))
                    for index, sweep in enumerate(loaded.sweeps)] if loaded.sweeps else [(None, ("matrix",), loaded.matrix)]
        for name, at, matrix in matrices:
            prepared = _SINGLE if matrix is None else prepare(matrix, error=_manifest_error(loaded, at))
            out.append((name, prepared))
            from_file = {axis[len(at):] for axis in loaded.data_lines if axis[:len(at)] == at}
            warnings += [str(loaded.warning(at + p, message))
                         for p, message in matrix_warnings(matrix, prepared.unmatched, from_file)]
        return out, warnings
    shown = Path(path)

    def bare_error(at: tuple[Any, ...], message: str) -> MatrixError:
        line, column = _manifest.locate(positions, root + at)
        return MatrixError(message, file=shown, line=line, column=column, field=_manifest.dotted(root + at))

    if data is None:
        raise MatrixError("the file is empty; expected a matrix mapping such as {os: [linux, macos]}", file=shown)
    resolved, files = _manifest.resolve_matrix_files(
        data, at=root, positions=positions, file=shown, base_dir=Path(path).absolute().parent
    )
    prepared = prepare(resolved, error=bare_error)
    from_file = {axis[len(root):] for axis in files}
    warned = matrix_warnings(resolved if isinstance(resolved, Mapping) else None, prepared.unmatched, from_file)
    return [(None, prepared)], [str(bare_error(p, message)) for p, message in warned]


def _manifest_error(loaded: _manifest.Manifest, at: tuple[Any, ...]) -> ErrorFactory:
    return lambda path, message: loaded.error(at + path, message, MatrixError)


def _default_error(path: tuple[Any, ...], message: str) -> Exception:
    return MatrixError(message, file="<matrix>", field=_manifest.dotted(path))


class _Problems:
    """Collects the errors found while reading a matrix, so they are reported together."""

    def __init__(self, factory: ErrorFactory, *, cap: int | None = None) -> None:
        self.factory = factory
        self.found: list[Exception] = []
        self.cap = cap              # the most jobs the plan may have, when one caps it
        self.most_values = MAX_COMBINATIONS  # the most values a range or linspace may make here
        self.excludes = 0

    def too_many(self, count: int) -> str | None:
        """Why an axis of `count` values cannot be (the limit of a matrix, or the plan's cap), else None."""
        if count <= self.most_values:
            return None
        if count > MAX_COMBINATIONS and (self.cap is None or self.cap + self.excludes >= MAX_COMBINATIONS):
            return f"the limit is {MAX_COMBINATIONS:,}"  # else the cap is the lower bound, and named
        return (f"the plan would have at least {count - self.excludes:,} jobs, above the cap of {self.cap:,}; check "
                "the matrix, or raise the cap with --max-jobs or run.max_jobs")

    def add(self, path: tuple[Any, ...], message: str) -> None:
        self.found.append(self.factory(path, message))

    def raise_if_any(self) -> None:
        if not self.found:
            return
        if len(self.found) > 1 and all(isinstance(e, ManifestError) for e in self.found):
            raise ManifestErrors([e for e in self.found if isinstance(e, ManifestError)])
        raise self.found[0]


# --- reading the matrix ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Axis:
    """One factor of the product: a plain axis (one key) or a zip group (several keys varying together), its
    values kept by column. A range or linspace column is a `range` or `_Linspace`, whose values are computed
    as they are read: an axis of ten million values takes no memory of its own."""

    keys: tuple[str, ...]
    columns: tuple[Sequence[Any], ...]
    sources: tuple[tuple[str, str], ...]
    holds_lists: tuple[bool, ...]
    indexes: dict[int, EqualIndex] = field(default_factory=dict, compare=False)  # by column, made when first asked
    # by column: text -> a scalar value, and a string's text as it reads (`_reading`) -> that string
    texts: dict[int, tuple[dict[str, Any], dict[str, str]]] = field(default_factory=dict, compare=False)

    @property
    def size(self) -> int:
        """The number of values (of rows, for a zip group)."""
        return len(self.columns[0])

    def chunks(self) -> Iterator[tuple[tuple[str, Any], ...]]:
        """Each row as its (key, value) pairs, made as it is read."""
        if len(self.keys) == 1:
            key = self.keys[0]
            return (((key, value),) for value in self.columns[0])
        return (tuple(zip(self.keys, row)) for row in zip(*self.columns))

    def find(self, column: int, literal: Any) -> Sequence[int] | None:
        """The rows whose value in `column` is `==` to the scalar `literal` (None for another literal), each
        exclude and include entry a lookup: compared with every value, 4,000 entries took seconds."""
        values = self.columns[column]
        if isinstance(values, range):
            return find_in_range(values, literal)
        if column not in self.indexes:
            self.indexes[column] = EqualIndex(values)
        return self.indexes[column].find(literal)

    def reads_like(self, column: int, literal: Any) -> Any:
        """A scalar value of `column` that reads as `literal` does (`true` for "true", `null` for "null"; case
        ignored, as GitHub ignores it comparing strings) but is not `==` to it; else a string that reads as the
        string `literal` but for its spacing, the Unicode form of a letter or an invisible format character
        ("noir " for "noir", `cafe\u0301` for `caf\u00e9`: a job key shows both alike); `_NONE` when no value
        does. Asked only of an entry that matches nothing: a column's text index is made then."""
        values = self.columns[column]
        if isinstance(literal, (list, tuple, Mapping)) or isinstance(values, (range, _Linspace)):
            return _NONE  # a number compares as a number: 5 and "5" are equal
        if column not in self.texts:
            texts: dict[str, Any] = {}
            readings: dict[str, str] = {}
            for value in values:
                if not isinstance(value, (list, tuple, Mapping)):
                    texts.setdefault(_plain(value).casefold(), value)
                if isinstance(value, str):
                    readings.setdefault(_reading(value), value)
            self.texts[column] = texts, readings
        texts, readings = self.texts[column]
        found = texts.get(_plain(literal).casefold(), _NONE)
        if found is _NONE and isinstance(literal, str):
            found = readings.get(_reading(literal), _NONE)
        return found if found is not _NONE and not equal(found, literal) else _NONE


_NONE = object()


def _reading(text: str) -> str:
    """A string as it reads: in one Unicode form, without invisible format characters, its words joined by one
    space (as a job key writes them), case ignored."""
    return " ".join(textforms.alike(text).split()).casefold()


def _slip(key: str, value: Any, alike: Any) -> tuple[str, str, str]:
    """How `value` of `key`, which reads like the axis value `alike` but is not `==` to it, is told (with its
    type); why it does not match it; the fix."""
    told = f"{key} {_typed(value)}"
    if isinstance(value, str) and isinstance(alike, str):
        return (f"{key} {_escaped(value)} (a string)",
                (f"{key}'s {_escaped(alike)} reads alike but is other text ({_unlike(value, alike)}), not equal to it "
                "under GitHub's =="), "write it as the axis does")
    if _is_nan(value) or _is_nan(alike):
        return (told, (f"{key}'s {_typed(alike)} reads alike, but NaN is equal to no value under GitHub's ==, not "
                      "even NaN"), "no entry matches it: name its jobs by another key")
    if isinstance(alike, float) and math.isinf(alike):
        fix = f"write it {'-' if alike < 0 else ''}.inf, as YAML writes infinity (inf unquoted is a string)"
    else:
        fix = "quote it, as the axis does" if isinstance(alike, str) else "write it unquoted"
    return told, f"{key}'s {_typed(alike)} reads alike but is not equal to it under GitHub's ==", fix


def _is_nan(value: Any) -> bool:
    return isinstance(value, float) and math.isnan(value)


def _escaped(text: str) -> str:
    """A string quoted, with what does not show (a letter composed or not, an invisible character) as escapes."""
    return textforms.escaped(repr(text))


def _unlike(first: str, second: str) -> str:
    """How two strings that read alike (`_reading`) differ: in spacing, in Unicode form, by an invisible
    character."""
    said = []
    if textforms.alike(first).casefold() != textforms.alike(second).casefold():
        said.append("spacing")
    words = [" ".join(text.split()) for text in (first, second)]
    if words[0].casefold() != words[1].casefold() or textforms.alike(first) != first or textforms.alike(second) != second:
        how = textforms.unlike(*words)
        if how:
            said.append(how)
    return " and ".join(said) or "spacing"


def _typed(value: Any) -> str:
    """A value with its YAML type, as a slip of quoting changes it: "'true' (a string)", "true (a boolean)"."""
    if isinstance(value, str):
        return f"{value!r} (a string)"
    if isinstance(value, bool):
        return f"{_plain(value)} (a boolean)"
    if value is None:
        return "null"
    return f"{_plain(value)} (a number)"


def _make_axis(keys: tuple[str, ...], columns: Sequence[Sequence[Any]], source: str) -> _Axis:
    return _Axis(
        keys=keys,
        columns=tuple(columns),
        sources=tuple((key, source) for key in keys),
        holds_lists=tuple(not isinstance(values, (range, _Linspace))
                          and any(isinstance(value, (list, tuple)) for value in values) for values in columns),
    )


Entry = tuple[int, Mapping[str, Any]]
Parsed = tuple[list[_Axis], list[Entry], list[Entry]]


def _parse(matrix: Any, problems: _Problems) -> Parsed | None:
    if not isinstance(matrix, Mapping):
        problems.add((), f"a matrix is a mapping of axis names to lists of values, got {_show(matrix)}")
        return None
    axes: list[_Axis] = []
    claimed: dict[str, str] = {}
    include_entries: list[Entry] = []
    exclude_entries: list[Entry] = []
    has_include = False

    def claim(key: str, path: tuple[Any, ...]) -> bool:
        folded = fold(key)
        if folded in claimed:
            if claimed[folded] == key:
                problems.add(path, f"'{key}' is an axis already; a key names one axis of the matrix")
            else:
                problems.add(
                    path,
                    f"'{key}' and '{claimed[folded]}' name the same axis (GitHub compares matrix keys without regard to case)",
                )
            return False
        claimed[folded] = key
        return True

    for key, value in matrix.items():
        if not isinstance(key, str) or not key:
            problems.add((key,), f"matrix keys must be non-empty strings, got {_show(key)}")
            continue
        if key == "include":
            include_entries = _entries(value, "include", problems)
            has_include = bool(value) if isinstance(value, (list, tuple)) else True
        elif key == "exclude":
            exclude_entries = _entries(value, "exclude", problems)
        elif key == "zip":
            axes.extend(_zip_axes(value, claim, problems))
        elif claim(key, (key,)):
            values, source = _axis_values(value, (key,), key, problems)
            if values is not None:
                axes.append(_make_axis((key,), (values,), source))
    if problems.found:
        return None
    if not axes and not has_include:
        problems.add((), "a matrix needs at least one axis (a key with a list of values) or a non-empty include list")
        return None
    known = {fold(k): k for axis in axes for k in axis.keys}
    for index, entry in exclude_entries:
        for key in entry:
            if fold(key) not in known:
                axes_text = ", ".join(known.values()) or "none"
                problems.add(
                    ("exclude", index, key),
                    f"exclude key '{key}' does not match any axis of the matrix (axes: {axes_text})",
                )
    _check_size(axes, problems)
    return axes, include_entries, exclude_entries


def _check_size(axes: list[_Axis], problems: _Problems) -> None:
    size = math.prod(axis.size for axis in axes) if axes else 0
    if size > MAX_COMBINATIONS:
        sizes = " x ".join(str(axis.size) for axis in axes)
        problems.add((), f"the matrix has {size:,} combinations ({sizes}); the limit is {MAX_COMBINATIONS:,}")


def _entries(value: Any, name: str, problems: _Problems) -> list[Entry]:
    if not isinstance(value, (list, tuple)):
        problems.add((name,), f"{name} must be a list of mappings, got {_show(value)}")
        return []
    out: list[Entry] = []
    for index, entry in enumerate(value):
        path = (name, index)
        if not isinstance(entry, Mapping):
            problems.add(path, f"each {name} entry must be a mapping of keys to values, got {_show(entry)}")
            continue
        if not entry:
            if name == "include":
                problems.add(path, "an include entry must set at least one key")
            else:
                problems.add(path, "an empty exclude entry would match every combination; GitHub rejects it")
            continue
        seen: dict[str, str] = {}
        good = True
        for key in entry:
            if not isinstance(key, str) or not key:
                problems.add(path + (key,), f"{name} keys must be non-empty strings, got {_show(key)}")
                good = False
            elif fold(key) in seen:
                problems.add(path + (key,), f"'{key}' and '{seen[fold(key)]}' are the same key (case is ignored)")
                good = False
            else:
                seen[fold(key)] = key
        if good:
            out.append((index, entry))
    return out


def _zip_axes(value: Any, claim: Callable[[str, tuple[Any, ...]], bool], problems: _Problems) -> Iterator[_Axis]:
    if not isinstance(value, (list, tuple)) or not value:
        problems.add(
            ("zip",),
            "zip takes a list of groups, each a mapping of axis names to lists of the same length, "
            "e.g. zip: [{prompt: [a, b], seed: [1, 2]}]",
        )
        return
    for index, group in enumerate(value):
        path = ("zip", index)
        if not isinstance(group, Mapping) or not group:
            problems.add(path, f"zip group {index + 1} must be a non-empty mapping of axis names to lists, got {_show(group)}")
            continue
        columns: dict[str, Sequence[Any]] = {}
        complete = True
        for key, values in group.items():
            if not isinstance(key, str) or not key or key in RESERVED:
                problems.add(path + (key,), f"'{key}' cannot name an axis")
                complete = False
                continue
            if not claim(key, path + (key,)):
                complete = False
                continue
            read, _source = _axis_values(values, path + (key,), key, problems)
            if read is None:
                complete = False
                continue
            columns[key] = read
        if not complete:
            continue
        lengths = {key: len(values) for key, values in columns.items()}
        if len(set(lengths.values())) > 1:
            detail = ", ".join(f"{key} has {n}" for key, n in lengths.items())
            problems.add(path, f"the lists of zip group {index + 1} must have the same length: {detail}")
            continue
        yield _make_axis(tuple(columns), tuple(columns.values()), f"zip {index + 1}")


def _axis_values(value: Any, path: tuple[Any, ...], name: str,
                 problems: _Problems) -> tuple[Sequence[Any] | None, str]:
    if isinstance(value, (list, tuple)):
        if not value:
            problems.add(path, f"axis '{name}' has no values; give at least one (GitHub rejects an empty vector)")
            return None, "matrix"
        return tuple(value), "matrix"
    if isinstance(value, Mapping):
        keys = list(value)
        if keys == ["range"]:
            return _range(value["range"], path + ("range",), problems), "range"
        if keys == ["linspace"]:
            return _linspace(value["linspace"], path + ("linspace",), problems), "linspace"
        if keys == ["file"]:
            problems.add(
                path + ("file",),
                "{file: ...} values are read when a manifest is loaded; load the matrix with runner.manifest first",
            )
            return None, "file"
        shown_keys = ", ".join(str(k) for k in keys) or "none"
        problems.add(
            path,
            f"axis '{name}' must be a list of values, or one of {{range: [start, stop, step]}}, "
            f"{{linspace: [start, stop, count]}}, {{file: path}}; got a mapping with keys: {shown_keys}",
        )
        return None, "matrix"
    problems.add(path, f"axis '{name}' must be a list of values, got {_show(value)}; write [{_plain(value)}] for one value")
    return None, "matrix"


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_real(value: Any) -> bool:
    return (_is_int(value) or isinstance(value, float)) and math.isfinite(value)


def _range(spec: Any, path: tuple[Any, ...], problems: _Problems) -> range | None:
    if not isinstance(spec, (list, tuple)) or len(spec) not in (2, 3) or not all(_is_int(v) for v in spec):
        odd = next((v for v in spec if not _is_int(v)), None) if isinstance(spec, (list, tuple)) and len(spec) in (2, 3) else None
        got = f"{_show(odd)} in it" if odd is not None else _show(spec)
        problems.add(path, f"range takes [start, stop] or [start, stop, step] of integers, got {got}")
        return None
    start, stop = spec[0], spec[1]
    step = spec[2] if len(spec) == 3 else 1
    if step == 0:
        problems.add(path + (2,), "the step of a range cannot be 0")
        return None
    count = (stop - start) // step + 1  # counted, not len(range): that overflows past 2**63 values
    if count <= 0:
        hint = f"; to count down, give a negative step: [{start}, {stop}, -1]" if step > 0 else ""
        problems.add(path, f"range from {start} to {stop} with step {step} is empty{hint}")
        return None
    why = problems.too_many(count)
    if why:
        problems.add(path, f"range has {count:,} values; {why}")
        return None
    return range(start, stop + (1 if step > 0 else -1), step)


def _linspace(spec: Any, path: tuple[Any, ...], problems: _Problems) -> _Linspace | None:
    if (
        not isinstance(spec, (list, tuple))
        or len(spec) != 3
        or not _is_real(spec[0])
        or not _is_real(spec[1])
        or not _is_int(spec[2])
    ):
        problems.add(path, f"linspace takes [start, stop, count]: two numbers and an integer, got {_show(spec)}")
        return None
    start, stop, count = spec
    if count < 2:
        problems.add(path + (2,), f"linspace needs a count of at least 2, got {count}")
        return None
    why = problems.too_many(count)
    if why:
        problems.add(path + (2,), f"linspace count {count:,} is too many: {why}")
        return None
    return _Linspace(start, stop, count)


class _Linspace(Sequence[float]):
    """The `count` values of {linspace: [start, stop, count]}, each computed (to 10 significant digits) as it
    is read, so that ten million of them take no memory."""

    def __init__(self, start: float, stop: float, count: int) -> None:
        self.start, self.stop, self.length = start, stop, count

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: Any) -> Any:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(self.length))]
        position = index + self.length if index < 0 else index
        if not 0 <= position < self.length:
            raise IndexError("linspace index out of range")
        return self._value(position)

    def __iter__(self) -> Iterator[float]:
        return map(self._value, range(self.length))

    def _value(self, i: int) -> float:
        last = self.length - 1
        if i in (0, last):
            return _round10(self.start if i == 0 else self.stop)
        span = self.stop - self.start
        if math.isfinite(span):
            return _round10(self.start + span * i / last)
        # bounds near the largest floats: their difference overflows
        return _round10(self.start * (1 - i / last) + self.stop * (i / last))


def _round10(value: float) -> float:
    return float(f"{value:.10g}") + 0.0


# --- include and exclude filters -------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Filter:
    """A compiled include or exclude entry: for each axis it constrains, the row indices it matches."""

    number: int
    constraints: tuple[tuple[int, frozenset[int]], ...]
    never: bool
    keys: tuple[tuple[str, Any], ...]
    extras: tuple[tuple[str, str, Any], ...]
    unmatched: str = ""  # for an exclude that matches nothing, the values no combination has
    # for an include that matches nothing only because its values read like axis values they do not equal
    slips: _Slips | None = None
    # for an include that matches nothing: its keys whose list, under an axis that holds lists, is one value
    # (`_whole_list`), with what is said of each
    whole_lists: tuple[tuple[str, str], ...] = ()


def _locate(axes: list[_Axis]) -> dict[str, tuple[int, int]]:
    return {fold(key): (a, c) for a, axis in enumerate(axes) for c, key in enumerate(axis.keys)}


def _expands(axes: list[_Axis], where: tuple[int, int], value: Any) -> bool:
    return isinstance(value, (list, tuple)) and bool(value) and not axes[where[0]].holds_lists[where[1]]


def _whole_list(axes: list[_Axis], where: tuple[int, int], key: str, value: Any, name: str) -> str | None:
    """For a list under `key` that matches no value because its axis holds lists (so the list is one value, the
    whole list, and is not expanded into an entry per value), when one of its values alone would match: why it
    matches nothing, and the fix; else None."""
    axis, column = axes[where[0]], where[1]
    if not (isinstance(value, (list, tuple)) and value and axis.holds_lists[column]):
        return None
    if not any(_allowed(axis, column, item) for item in value if not isinstance(item, (list, tuple, Mapping))):
        return None
    return (f"{key}={_plain(value)}: {key} holds lists, so a list under its key is one value, the whole list, not an "
            f"entry per value as under an axis of no lists; write an {name} entry per value")


def _holds_nothing(name: str, index: int, key: str, value: Any, expanded: bool, axis: _Axis, column: int,
                   problems: _Problems) -> bool:
    """Whether `value` under the axis key `key` of an include or exclude entry (or one of its values, when the list
    is `expanded`) is a list or mapping with no value in it, said at its line: it would test nothing of the axis,
    so an include would extend every job (each paid at its values) and an exclude drop the key."""
    found = False
    for position, choice in enumerate(value if expanded else [value]):
        if not isinstance(choice, (list, tuple, Mapping)) or next(_leaves(choice, ()), None) is not None:
            continue
        found = True
        kind = "list" if isinstance(choice, (list, tuple)) else "mapping"
        what = f"an empty {kind}" if not choice else f"a {kind} with no value in it"
        sample = ", ".join(_plain(v) for v in itertools.islice(axis.columns[column], 2))
        outside = ("leave the key out for an entry that extends every job" if name == "include"
                   else "leave the key out to exclude by the other keys")
        problems.add((name, index, key) + ((position,) if expanded else ()),
                     f"{what} matches no value of axis '{key}' (read as no condition, it would match every job); give the values this entry "
                     f"is for ({key}: [{sample}]), or {outside}")
    return found


def _compile_exclude(index: int, entry: Mapping[str, Any], axes: list[_Axis], problems: _Problems) -> _Filter:
    located = _locate(axes)
    per_axis: dict[int, frozenset[int]] = {}
    shown: dict[int, list[str]] = {}  # per axis, the key=value pairs the entry tests
    matches_none: list[str] = []
    for key, value in entry.items():
        where = located[fold(key)]
        expanded = _expands(axes, where, value)
        if _holds_nothing("exclude", index, key, value, expanded, axes[where[0]], where[1], problems):
            continue
        choices = list(value) if expanded else [value]
        rows: frozenset[int] | None = frozenset()
        for choice in choices:
            allowed = _allowed(axes[where[0]], where[1], choice)
            if allowed is None:
                rows = None
                break
            rows = rows | allowed if rows is not None else None
        if rows is not None:
            per_axis[where[0]] = per_axis[where[0]] & rows if where[0] in per_axis else rows
            pair = f"{key}={' or '.join(_plain(c) for c in choices)}"
            shown.setdefault(where[0], []).append(pair)
            if not rows:
                slips = [_slip(key, c, a) for c in choices if (a := axes[where[0]].reads_like(where[1], c)) is not _NONE]
                if len(slips) == len(choices) == 1:
                    pair = "{}: {}; {}".format(*slips[0])
                elif not expanded:
                    pair = _whole_list(axes, where, key, value, "exclude") or pair
                matches_none.append(pair)
    constraints = tuple(sorted(per_axis.items()))
    never = any(not rows for _, rows in constraints)
    if matches_none:
        unmatched = "; ".join(f"no job has {pair}" for pair in matches_none)
    else:  # keys of one axis (zipped, or a file's columns) whose values are in no row together
        unmatched = "; ".join(f"no job has {' with '.join(shown[a])}" for a, rows in constraints if not rows)
    return _Filter(
        number=index + 1,
        constraints=constraints,
        never=never,
        keys=(),
        extras=(),
        unmatched=unmatched if never else "",
    )


def _compile_include(
    index: int, entry: Mapping[str, Any], axes: list[_Axis], problems: _Problems
) -> list[_Filter]:
    located = _locate(axes)
    filter_keys: list[tuple[str, tuple[int, int], list[Any]]] = []
    extras = tuple((fold(key), key, value) for key, value in entry.items() if fold(key) not in located)
    variants = 1
    for key, value in entry.items():
        where = located.get(fold(key))
        if where is None:
            continue
        expanded = _expands(axes, where, value)
        if _holds_nothing("include", index, key, value, expanded, axes[where[0]], where[1], problems):
            continue
        choices = list(value) if expanded else [value]
        variants *= len(choices)
        filter_keys.append((key, where, choices))
    if variants > MAX_COMBINATIONS:
        problems.add(("include", index), f"this include entry expands to {variants:,} entries; the limit is {MAX_COMBINATIONS:,}")
        return []
    cache: dict[tuple[int, int], frozenset[int] | None] = {}
    out = []
    for picks in itertools.product(*(range(len(choices)) for _, _, choices in filter_keys)):
        per_axis: dict[int, frozenset[int]] = {}
        keys = []
        missed: list[tuple[str, tuple[int, int], Any]] = []  # keys whose value is in no row
        for position, ((key, where, choices), pick) in enumerate(zip(filter_keys, picks)):
            keys.append((key, choices[pick]))
            if (position, pick) not in cache:
                cache[(position, pick)] = _allowed(axes[where[0]], where[1], choices[pick])
            rows = cache[(position, pick)]
            if rows is not None:
                per_axis[where[0]] = per_axis[where[0]] & rows if where[0] in per_axis else rows
                if not rows:
                    missed.append((key, where, choices[pick]))
        constraints = tuple(sorted(per_axis.items()))
        never = any(not rows for _, rows in constraints)
        out.append(
            _Filter(
                number=index + 1,
                constraints=constraints,
                never=never,
                keys=tuple(keys),
                extras=extras,
                slips=_include_slips(axes, constraints, missed) if never and missed else None,
                whole_lists=tuple((key, said) for key, where, value in missed
                                  if (said := _whole_list(axes, where, key, value, "include")) is not None),
            )
        )
    return out


def _include_slips(axes: list[_Axis], constraints: tuple[tuple[int, frozenset[int]], ...],
                   missed: list[tuple[str, tuple[int, int], Any]]) -> _Slips | None:
    """For an include filter that matches nothing only because values of it read like axis values they do not
    equal ("true" for true): each such key with how its value is told and why it does not match, and the
    constraints the entry would have with the axis values instead (the jobs it was most likely meant to extend).
    None when a value misses for another reason."""
    told = []
    allowed = dict(constraints)
    for key, where, value in missed:
        alike = axes[where[0]].reads_like(where[1], value)
        if alike is _NONE:
            return None
        told.append((key, *_slip(key, value, alike), f"{key} {_plain(alike)}"))
        rows = frozenset(axes[where[0]].find(where[1], alike) or ())
        allowed[where[0]] = rows if where[0] not in allowed or not allowed[where[0]] else allowed[where[0]] & rows
    return _Slips(tuple(told), tuple(sorted(allowed.items())))


@dataclass(frozen=True, slots=True)
class _Slips:
    told: tuple[tuple[str, str, str, str, str], ...]  # (key, its value told, why it does not match, fix, axis value)
    constraints: tuple[tuple[int, frozenset[int]], ...]  # those the entry would have with the axis values


def _allowed(axis: _Axis, column: int, value: Any) -> frozenset[int] | None:
    """Rows of `axis` whose value in `column` matches `value` leaf by leaf; None when nothing is tested. A
    scalar is looked up in the column's index; a list or mapping is compared with every value. A number of the
    entry is compared as written; only when no row matches so is it compared rounded to 15 significant digits,
    as GitHub writes it into its filter (0.1 + 0.2 written out, 0.30000000000000004, matches an axis's 0.3): a
    number of more digits (a post's id, 1789012345678901234) then matches the same number on the axis, and not a
    neighbour that rounds alike."""
    leaves = list(_leaves(value, ()))
    if not leaves:
        return None
    rows = _rows(axis, column, leaves)
    if rows:
        return rows
    rounded = [(path, g15(literal) if _is_int(literal) or isinstance(literal, float) else literal)
               for path, literal in leaves]
    return rows if rounded == leaves else _rows(axis, column, rounded)


def _rows(axis: _Axis, column: int, leaves: list[tuple[tuple[Any, ...], Any]]) -> frozenset[int]:
    if len(leaves) == 1 and leaves[0][0] == ():
        found = axis.find(column, leaves[0][1])
        if found is not None:
            return frozenset(found)
    return frozenset(
        i for i, cell in enumerate(axis.columns[column])
        if all(equal(lookup(cell, path), literal) for path, literal in leaves)
    )


def _leaves(value: Any, path: tuple[Any, ...]) -> Iterator[tuple[tuple[Any, ...], Any]]:
    if isinstance(value, Mapping):
        for key, child in value.items():
            yield from _leaves(child, path + (str(key),))
    elif isinstance(value, (list, tuple)):
        for index, child in enumerate(value):
            yield from _leaves(child, path + (index,))
    else:
        yield path, value


# --- building --------------------------------------------------------------------------------


class _Index:
    """Which product combinations the excludes remove and the includes extend, by flat index."""

    def __init__(self, axes: list[_Axis], includes: list[_Filter], excludes: list[_Filter]) -> None:
        sizes = [axis.size for axis in axes]
        strides = [math.prod(sizes[a + 1 :]) for a in range(len(axes))]
        self.size = math.prod(sizes) if axes else 0

        def flat_indices(f: _Filter) -> Iterator[int]:
            if f.never or not axes:
                return iter(())
            allowed = dict(f.constraints)
            offsets = [
                [i * strides[a] for i in (sorted(allowed[a]) if a in allowed else range(sizes[a]))]
                for a in range(len(axes))
            ]
            return map(sum, itertools.product(*offsets))

        self.flat_indices = flat_indices
        self.removed_by: dict[int, int] = {}
        for f in excludes:
            for flat in flat_indices(f):
                self.removed_by.setdefault(flat, f.number)
        self.matched = [False] * len(includes)
        self.universal: list[int] = []
        self.specific: dict[int, list[int]] = {}
        for n, f in enumerate(includes):
            if f.never:
                continue
            if not f.constraints:
                self.universal.append(n)
                continue
            for flat in flat_indices(f):
                if flat not in self.removed_by:
                    self.matched[n] = True
                    self.specific.setdefault(flat, []).append(n)

    def kept_of(self, constraints: tuple[tuple[int, frozenset[int]], ...]) -> int:
        """How many combinations the excludes leave of those `constraints` (rows per axis) match."""
        f = _Filter(number=0, constraints=constraints, never=any(not rows for _, rows in constraints), keys=(),
                    extras=())
        if not self.removed_by:
            return sum(1 for _ in self.flat_indices(f))
        return sum(1 for flat in self.flat_indices(f) if flat not in self.removed_by)

    def kept(self) -> int:
        """Product combinations left after the excludes."""
        return self.size - len(self.removed_by)

    def count(self) -> int:
        """Combinations in all: those kept, and an own one for each include that extends none."""
        universal = set(self.universal) if self.kept() else set()
        return self.kept() + sum(1 for n, hit in enumerate(self.matched) if not hit and n not in universal)


def _build(axes: list[_Axis], includes: list[_Filter], index: _Index,
           unmatched: tuple[tuple[int, str], ...] = ()) -> Expansion:
    excluded: list[tuple[Combination, int]] = []
    combinations = tuple(_combinations(axes, includes, index, excluded))
    notes: dict[tuple[Any, ...], str] = {}
    for include in includes:
        for key, said in include.whole_lists:
            notes.setdefault(("include", include.number - 1, key),
                             f"matches no combination, so this entry adds a job of its own: {said}")
        if include.slips is None:
            continue
        meant = index.kept_of(include.slips.constraints)
        if not meant:
            continue
        alike = " and ".join(axis_value for *_, axis_value in include.slips.told)
        for key, told, why, fix, _ in include.slips.told:
            notes.setdefault(("include", include.number - 1, key), (
                f"{told} matches no combination: {why}, so this entry adds a job of its own instead of extending the "
                f"{meant:,} with {alike}; {fix}"))
    return Expansion(combinations=combinations, excluded=tuple(excluded), unmatched=unmatched,
                     notes=tuple(notes.items()))


def _combinations(axes: list[_Axis], includes: list[_Filter], index: _Index,
                  excluded: list[tuple[Combination, int]] | None = None) -> Iterator[Combination]:
    """The combinations, one at a time: the product's that the excludes leave, extended by the includes that
    match them, then an own one for each include that extends none. The product's excluded ones go to
    `excluded` with their exclude's number, when it is given."""
    removed_by, universal, specific = index.removed_by, index.universal, index.specific
    matched = list(index.matched)

    base_sources = tuple(source for axis in axes for source in axis.sources)
    merged: dict[tuple[int, ...], tuple[tuple[tuple[str, Any], ...], tuple[tuple[str, str], ...]]] = {}

    def extras_of(found: tuple[int, ...]) -> tuple[tuple[tuple[str, Any], ...], tuple[tuple[str, str], ...]]:
        extra: dict[str, tuple[str, Any, str]] = {}
        for n in sorted(found + tuple(universal)):
            include = includes[n]
            label = f"include {include.number}"
            for folded, key, value in include.extras:
                known = extra.get(folded)
                extra[folded] = (known[0] if known else key, value, label)
        values = tuple((key, value) for key, value, _ in extra.values())
        return values, base_sources + tuple((key, label) for key, _, label in extra.values())

    if axes:
        rows = _product(axes)
        plain = not removed_by and not specific and not any(includes[n].extras for n in universal)
        if plain:
            yield from (Combination(values, "product", base_sources) for values in rows)
        else:
            for flat, values in enumerate(rows):
                number = removed_by.get(flat)
                if number is not None:
                    if excluded is not None:
                        excluded.append((Combination(values, "product", base_sources), number))
                    continue
                found = tuple(specific.get(flat, ()))
                if found not in merged:
                    merged[found] = extras_of(found)
                extra_values, sources = merged[found]
                yield Combination(values + extra_values, "product", sources)
    if index.kept():
        for n in universal:
            matched[n] = True

    for n, include in enumerate(includes):
        if not matched[n]:
            label = f"include {include.number}"
            values = include.keys + tuple((key, value) for _, key, value in include.extras)
            yield Combination(values, label, tuple((key, label) for key, _ in values))


def _product(axes: list[_Axis]) -> Iterator[tuple[tuple[str, Any], ...]]:
    """The product's rows as (key, value) pairs, the first axis varying slowest. itertools.product copies each
    axis first, so an axis of more than WALKED values (a range of ten million takes no memory until then) is
    walked instead, between the rows of the axes before it and those of the axes after (a few, then)."""
    big = max(range(len(axes)), key=lambda a: axes[a].size)
    if axes[big].size <= WALKED:
        if all(len(axis.keys) == 1 for axis in axes):
            return itertools.product(*([chunk[0] for chunk in axis.chunks()] for axis in axes))
        return (sum(parts, ()) for parts in itertools.product(*(tuple(axis.chunks()) for axis in axes)))
    heads = [sum(parts, ()) for parts in itertools.product(*(tuple(axis.chunks()) for axis in axes[:big]))]
    tails = [sum(parts, ()) for parts in itertools.product(*(tuple(axis.chunks()) for axis in axes[big + 1:]))]
    return (head + chunk + tail for head in heads for chunk in axes[big].chunks() for tail in tails)


def _show(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return f"the string '{value}'"
    if isinstance(value, (list, tuple)):
        return "a list"
    if isinstance(value, Mapping):
        return "a mapping"
    return type(value).__name__


def _plain(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
