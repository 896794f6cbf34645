from __future__ import annotations

import json
import math
import os
import re
import sys
from pathlib import Path
from typing import Any, ClassVar

import hypothesis
import pytest
from hypothesis import strategies as st
from jsonschema import Draft202012Validator

from runner.errors import ManifestError, ManifestErrors
from runner.manifest import SCHEMA_PATH, Manifest, dotted, load, load_yaml

DATA = Path(__file__).parent / "data" / "manifests"
INVALID = DATA / "invalid"
VALID = DATA / "valid"
HEAD = "version: 1\nname: fox\nmodel: pixverse-v5.6\n"


def all_errors(exc: BaseException) -> list[ManifestError]:
    if isinstance(exc, ManifestErrors):
        return exc.errors
    assert isinstance(exc, ManifestError)
    return [exc]


def parse(text: str) -> Any:
    return load_yaml(text, file=Path("t.yaml"))[0]


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


# --- YAML 1.2 core scalars -------------------------------------------------------------------

SCALARS = [
    ("16:9", "16:9"),
    ("1:30", "1:30"),
    ("190:20:30", "190:20:30"),
    ("no", "no"),
    ("No", "No"),
    ("on", "on"),
    ("off", "off"),
    ("yes", "yes"),
    ("y", "y"),
    ("n", "n"),
    ("2026-01-01", "2026-01-01"),
    ("2026-01-01 10:00:00", "2026-01-01 10:00:00"),
    ("010", 10),
    ("0o10", 8),
    ("0x1F", 31),
    ("-7", -7),
    ("+12", 12),
    ("1_000", "1_000"),
    ("0b101", "0b101"),
    ("1e3", 1000.0),
    ("12.", 12.0),
    (".5", 0.5),
    ("-1.5e-2", -0.015),
    (".inf", math.inf),
    ("-.Inf", -math.inf),
    ("true", True),
    ("True", True),
    ("FALSE", False),
    ("tRUE", "tRUE"),
    ("null", None),
    ("~", None),
    ("", None),
    ("Null", None),
    ("NULL", None),
    ("nULL", "nULL"),
    ("'010'", "010"),
    ('"true"', "true"),
    ("!!str 5", "5"),
    ("!!int 5", 5),
    ("!!float 5", 5.0),
]


@pytest.mark.parametrize(("text", "value"), SCALARS, ids=[t or "empty" for t, _ in SCALARS])
def test_yaml_12_core_scalars(text: str, value: Any) -> None:
    got = parse(f"v: {text}\n")["v"]
    assert got == value
    assert type(got) is type(value)


def test_nan_is_a_float() -> None:
    assert math.isnan(parse("v: .nan\n")["v"])


def test_aspect_ratio_stays_a_string_in_a_manifest(tmp_path: Path) -> None:
    path = write(tmp_path / "m.yaml", HEAD + "params:\n  aspect_ratio: 16:9\n  watermark: no\n  loop: off\n")
    manifest = load(path)
    assert manifest.params == {"aspect_ratio": "16:9", "watermark": "no", "loop": "off"}


def test_a_plain_merge_key_merges_and_a_quoted_one_is_a_key() -> None:
    assert parse("base: &b {x: 1, y: 2}\nother:\n  <<: *b\n  y: 3\n") == {"base": {"x": 1, "y": 2}, "other": {"x": 1, "y": 3}}
    # merged keys take the place of their << in the key order (a matrix's axes keep the file's order)
    assert list(parse("a: &a {style: [x], seed: [1]}\nm:\n  <<: *a\n  quality: [q]\n")["m"]) == ["style", "seed", "quality"]
    assert list(parse("a: &a {style: [x]}\nm:\n  quality: [q]\n  <<: *a\n")["m"]) == ["quality", "style"]
    assert parse("base: &b {x: 1}\nother:\n  '<<': *b\n") == {"base": {"x": 1}, "other": {"<<": {"x": 1}}}


class _CountedPositions(dict):  # type: ignore[type-arg]
    """A builder's positions that count each entry a loop over them visits (`seen`, shared by all)."""

    seen: ClassVar[list[int]] = [0]

    def _count(self, it: Any) -> Any:
        for x in it:
            self.seen[0] += 1
            yield x

    def __iter__(self) -> Any:
        return self._count(super().__iter__())

    def items(self) -> Any:
        return self._count(super().items())

    def keys(self) -> Any:
        return self._count(super().keys())

    def values(self) -> Any:
        return self._count(super().values())


def test_a_large_merged_mapping_loads_with_its_positions(monkeypatch: pytest.MonkeyPatch) -> None:
    """Merging a mapping of 40,000 keys took minutes (each key looked through every position); it loads in linear
    work now, each merged value where its anchor has it. The positions a merge of n keys looks through are
    counted, so a size that loads at once shows a merge that looks through them n times over."""
    from runner import yamlsource

    made = yamlsource._Builder.__init__

    def counted(self: Any, *args: Any, **kwargs: Any) -> None:
        made(self, *args, **kwargs)
        self.positions = _CountedPositions()

    monkeypatch.setattr(yamlsource._Builder, "__init__", counted)
    _CountedPositions.seen[0] = 0
    n = 2_000
    text = "base: &b\n" + "".join(f"  k{i}: [{i}]\n" for i in range(n)) + "m:\n  <<: *b\n  k1: own\n"
    data, positions = load_yaml(text, file=Path("t.yaml"))
    assert len(data["m"]) == n and data["m"][f"k{n - 1}"] == [n - 1] and data["m"]["k1"] == "own"
    assert positions[("m", f"k{n - 1}")] == (n + 1, 3) and positions[("m", f"k{n - 1}", 0)] == (n + 1, len(f"  k{n - 1}: [") + 1)
    assert positions[("m", "k1")] == (n + 4, 3)
    # each of the merge's 2n positions looked at a few times, not once for each of its n keys
    assert _CountedPositions.seen[0] < 20 * n, _CountedPositions.seen[0]


@pytest.mark.parametrize("char", ["\x85", "\u2028", "\u2029"])
def test_only_lf_and_cr_break_lines_as_in_yaml_1_2(char: str) -> None:
    """YAML 1.1 (PyYAML) broke lines at NEL, U+2028 and U+2029 too: one in a comment refused a valid manifest, every
    later line was counted one too many, and one in a string was folded to a space, another prompt sent."""
    text = f"a: x   # a{char}b\nb: \"p{char}q\"\nc: p{char}q r\n'k{char}': [1, 2]\nd: 1\n"
    data, positions = load_yaml(text, file=Path("t.yaml"))
    assert data == {"a": "x", "b": f"p{char}q", "c": f"p{char}q r", f"k{char}": [1, 2], "d": 1}
    assert (positions[("d",)], positions[(f"k{char}", 1)]) == ((5, 1), (4, 11))
    from runner.yamlsource import load_plain

    assert load_plain(text) == data
    assert load_yaml(f"a: '\ufdd1'  # {char}\n", file=Path("t.yaml"))[0] == {"a": "\ufdd1"}  # a noncharacter kept


def test_gridrun_s_own_data_files_read_in_c_as_the_python_reader_reads_them() -> None:
    """The providers' capability data, read at every command's start, goes through libyaml's parser where PyYAML
    has it (a tenth of the time), with the YAML 1.2 types: the same values as the reader of manifests gives."""
    import yaml

    from runner.providers import capabilities
    from runner.yamlsource import _BREAKS_OF_YAML_1_1, load_data, load_plain

    if yaml.__with_libyaml__:
        assert issubclass(sys.modules["runner.yamlsource"]._DataLoader, yaml.CSafeLoader)
    files = sorted(capabilities.DATA_DIR.glob("*.yaml"))
    assert files
    for f in files:
        text = f.read_text(encoding="utf-8")
        assert not any(c in text for c in _BREAKS_OF_YAML_1_1), f  # where libyaml would break lines
        assert load_data(text) == load_plain(text) == capabilities._read(f), f
    probe = "a: 16:9\nb: yes\nc: 0o17\nd: 1_000\ne: .5\nf: ~\ng: 2024-01-01\n"
    assert load_data(probe) == load_plain(probe) == {"a": "16:9", "b": "yes", "c": 15, "d": "1_000", "e": 0.5,
                                                      "f": None, "g": "2024-01-01"}


@pytest.mark.parametrize(("text", "found"), [
    ('a: "x\x85y"\n', [(("a",), "\x85")]),                            # a NEL in a quoted string was a space
    ("a: [1, {b: 'x\x85y'}]\nc: ab\u2028\nd: x \u2029 y\n",            # the end of a plain one, or folded
     [(("a", 1, "b"), "\x85"), (("c",), "\u2028"), (("d",), "\u2029")]),
    ('a: "x\u2028y"\nb: \'x\u2029y\'\n', []),                          # read the same both ways
    ("a: x  # \x85\nb: 1\n", []),                                        # refused before: nothing ran
    ("a: x\nb: [y, 'z']\n", []),
])
def test_strings_yaml_1_1_breaks_read_otherwise_are_found_in_file_order(text: str, found: list[Any]) -> None:
    """An unchanged manifest with such a string makes other requests than gridrun made of it before."""
    from runner.yamlsource import read_otherwise_before

    assert read_otherwise_before(text, Path("t.yaml")) == found


def test_keys_are_the_key_text() -> None:
    assert parse("1: a\ntrue: b\nnull: c\n010: d\n") == {"1": "a", "true": "b", "null": "c", "010": "d"}


def test_aliases_are_copied() -> None:
    data = parse("a: &x [1, 2]\nb: *x\n")
    assert data == {"a": [1, 2], "b": [1, 2]}
    assert data["a"] is not data["b"]


def test_a_list_item_written_as_an_alias_is_where_the_alias_is() -> None:
    """It was at its anchor: a duplicate matrix value `*x` was reported at the `&x` it repeats."""
    text = "v: &v [p, q]\ns:\n  - &x a\n  - b\n  - *x\n  - [*x, *v]\nm: {t: [c, *x]}\nn:\n  <<: {u: [*x]}\n"
    _, positions = load_yaml(text, file=Path("t.yaml"))
    assert (positions[("s", 0)], positions[("s", 2)], positions[("s", 3, 0)]) == ((3, 5), (5, 5), (6, 6))
    assert positions[("s", 3, 1)] == (6, 10) and positions[("s", 3, 1, 0)] == (1, 8)  # inside it: the anchor's
    assert positions[("m", "t", 1)] == (7, 12) and positions[("n", "u", 0)] == (9, 12)


def test_recursive_alias_is_an_error() -> None:
    with pytest.raises(ManifestError, match="alias refers to a node that contains it"):
        parse("a: &x [1, *x]\n")


def test_alias_bomb_is_refused() -> None:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    for i in range(1, 8):
        lines.append(f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]")
    with pytest.raises(ManifestError, match="more than") as exc:
        parse("\n".join(lines) + "\n")
    # at the list whose aliases cross the limit, where it was refused without a line
    assert (exc.value.line, exc.value.column, exc.value.field) == (6, 5, "a5")
    assert exc.value.message == ("the document expands to more than 1,000,000 values: this list alone to 1,111,111 "
                                 "(an alias repeated too often?)")
    with pytest.raises(ManifestError) as exc:  # no part crosses it alone: the document's start
        parse("a: &a [" + ", ".join(["x"] * 1000) + "]\n" + "".join(f"b{i}: [*a, *a, *a, *a, *a]\n" for i in range(200)))
    assert (exc.value.line, exc.value.column, exc.value.field) == (1, 1, "")


def test_aliases_repeating_long_text_are_refused_by_the_characters_they_expand_to() -> None:
    """Under the cap on values, an alias of a long string repeated a few hundred times was read, and looked into for
    templates, at every place: minutes of `validate` for a 100 KB manifest whose aliased var no template reads."""
    head = "vars:\n  a: &a \"" + "x" * 100_000 + "\"\n  b: &b [" + ", ".join(["*a"] * 9) + "]\n"
    with pytest.raises(ManifestError) as exc:
        parse(head + "  c: &c [" + ", ".join(["*b"] * 100) + "]\n  d: [" + ", ".join(["*c"] * 900) + "]\n")
    assert (exc.value.line, exc.value.column, exc.value.field) == (4, 6, "vars.c")  # the list of the aliases
    assert exc.value.message == ("the document expands to more than 10,000,000 characters of text: this list alone "
                                 "to 90,000,000 (an alias repeated too often?)")
    with pytest.raises(ManifestError) as exc:  # no part crosses it alone: the document's start
        parse(head + "".join(f"c{i}: [*b]\n" for i in range(12)))
    assert (exc.value.line, exc.value.column, exc.value.field) == (1, 1, "")
    assert "more than 10,000,000 characters" in exc.value.message
    data = parse(head + "c: [" + ", ".join(["*b"] * 9) + "]\n")  # 9,100,000 characters all told: read
    assert len(data["c"]) == 9 and data["c"][8][8] == "x" * 100_000


def test_a_key_longer_than_yaml_reads_is_said_so_not_blamed_on_indentation() -> None:
    """PyYAML reads a key of at most 1,024 characters on its line: a longer one was "indented 2 spaces, line 5 above
    it 0", where the indentation was right and re-indenting could not help."""
    assert parse("vars:\n  " + "k" * 1024 + ": 1\n") == {"vars": {"k" * 1024: 1}}
    for text in ("vars:\n  " + "k" * 1030 + ": 1\n", "vars:\n  - " + "k" * 1030 + ": 1\n"):
        with pytest.raises(ManifestError) as exc:
            parse(text)
        assert exc.value.line == 2, exc.value
        assert "the key before this ':' is 1,030 characters long, and YAML reads keys of at most 1,024 characters: " \
               "shorten it" in exc.value.message, exc.value.message
        assert "indent" not in exc.value.message, exc.value.message


@pytest.mark.parametrize("number", ["9" * 4301, "-" + "1" * 5000])
def test_a_number_of_more_digits_than_python_reads_is_said_for_a_manifest_author(number: str) -> None:
    """Python's own words told the author to call `sys.set_int_max_str_digits()`."""
    assert parse("seed: " + "9" * 4300 + "\n") == {"seed": int("9" * 4300)}
    with pytest.raises(ManifestError) as exc:
        parse("vars: {}\nseed: " + number + "\n")
    digits = len(number.lstrip("-"))
    assert (exc.value.line, exc.value.field) == (2, "seed")
    assert exc.value.message == (f"a number of {digits:,} digits, and gridrun reads numbers of at most 4,300 digits; "
                                 "quote it to make it text"), exc.value.message
    assert parse(f'seed: "{number}"\n') == {"seed": number}


def nested(levels: int, innermost: list[Any] | None = None) -> list[Any]:
    """Lists `levels` deep: [[[]]] for 3."""
    value: list[Any] = innermost or []
    for _ in range(levels - 1):
        value = [value]
    return value


def test_nesting_deeper_than_a_hundred_levels_is_an_error_at_its_place() -> None:
    """5,000 brackets, or 2,000 indented keys, ended in a RecursionError traceback."""
    assert parse("a: " + "[" * 99 + "]" * 99 + "\n") == {"a": nested(99)}  # and the document 100 levels deep
    with pytest.raises(ManifestError) as exc:
        parse("a: 1\nb: " + "[" * 5000 + "]" * 5000 + "\n")
    assert (exc.value.line, exc.value.column) == (2, 103)
    assert exc.value.field == "b[0][0]…[0] (100 levels)"  # not "[0]" written 99 times
    assert exc.value.message == "nested more than 100 levels deep; a manifest needs a handful"
    with pytest.raises(ManifestError) as exc:
        parse("".join("  " * i + f"k{i}:\n" for i in range(2000)))
    assert (exc.value.line, exc.value.column, exc.value.field) == (101, 201, "k0.k1.k2…k99 (100 levels)")


def test_aliases_nesting_deeper_than_a_hundred_levels_are_an_error() -> None:
    chain = ["a0: &a0 [x]"] + [f"a{i}: &a{i} [*a{i - 1}]" for i in range(1, 600)]
    assert parse("\n".join(chain[:99]) + "\n")["a98"] == nested(99, ["x"])  # and the document 100 levels deep
    with pytest.raises(ManifestError) as exc:
        parse("\n".join(chain) + "\n")
    assert exc.value.message == "nested more than 100 levels deep; a manifest needs a handful (through aliases)"
    assert (exc.value.line, exc.value.column, exc.value.field) == (1, 5, "a99[0][0]…[0] (100 levels)")


def test_duplicate_key_names_both_lines() -> None:
    with pytest.raises(ManifestError) as exc:
        parse("a: 1\nb:\n  c: 1\n  d: 2\n  c: 3\n")
    assert (exc.value.line, exc.value.column) == (5, 3)
    assert exc.value.field == "b.c"
    assert "first at line 3, again at line 5" in exc.value.message


def test_several_duplicate_keys_are_reported_together() -> None:
    with pytest.raises(ManifestErrors) as exc:
        parse("a: 1\na: 2\nb: 1\nb: 2\n")
    assert [(e.line, e.field) for e in exc.value.errors] == [(2, "a"), (4, "b")]


def test_non_scalar_key_is_an_error() -> None:
    with pytest.raises(ManifestError, match="mapping key must be a plain value"):
        parse("? [a, b]\n: 1\n")


def test_syntax_error_has_line_and_column() -> None:
    with pytest.raises(ManifestError) as exc:
        parse("a: 1\nb: [1, 2\nc: 3\n")
    assert exc.value.line == 3
    assert "invalid YAML" in exc.value.message


def test_control_character_is_a_clean_error() -> None:
    with pytest.raises(ManifestError) as exc:
        parse("a: 1\nb: x\x07y\n")
    assert exc.value.line == 2
    assert "not allowed" in exc.value.message


# --- positions -------------------------------------------------------------------------------


def test_every_node_has_a_position() -> None:
    text = "name: fox\nparams:\n  duration: 5\nmatrix:\n  style:\n    - anime\n    - clay\n    - comic\n  seed: [1, 2]\n"
    _, positions = load_yaml(text, file=Path("t.yaml"))
    assert positions[("name",)] == (1, 1)
    assert positions[("params", "duration")] == (3, 3)
    assert positions[("matrix", "style")] == (5, 3)
    assert positions[("matrix", "style", 2)] == (8, 7)
    assert positions[("matrix", "seed", 1)] == (9, 13)
    assert positions[()] == (1, 1)


def test_where_falls_back_to_the_nearest_ancestor(tmp_path: Path) -> None:
    manifest = load(write(tmp_path / "m.yaml", HEAD + "params:\n  duration: 5\n"))
    assert manifest.where(("params", "duration")) == (5, 3)
    assert manifest.where(("params", "duration", "x", 3)) == (5, 3)
    assert manifest.where(("params", "nope")) == (4, 1)
    assert manifest.where(("nothing",)) == (1, 1)


def test_error_names_file_line_column_and_field(tmp_path: Path) -> None:
    path = write(tmp_path / "m.yaml", HEAD + "matrix:\n  include:\n    - style: comic\n")
    manifest = load(path)
    err = manifest.error(("matrix", "include", 0, "style"), "7 is not one of 5, 8, 10")
    assert type(err) is ManifestError
    assert (err.file, err.line, err.column, err.field) == (path, 6, 7, "matrix.include[0].style")
    assert str(err) == f"{path}:6:7: matrix.include[0].style: 7 is not one of 5, 8, 10"


def test_dotted_paths() -> None:
    assert dotted(("matrix", "include", 2, "style")) == "matrix.include[2].style"
    assert dotted(("sweeps", 0)) == "sweeps[0]"
    assert dotted(()) == ""


# --- loading valid manifests -----------------------------------------------------------------


def test_full_manifest_loads_with_files_read() -> None:
    manifest = load(VALID / "full.yaml")
    assert isinstance(manifest, Manifest)
    assert manifest.path.is_absolute()
    assert manifest.base_dir == VALID.resolve()
    assert (manifest.name, manifest.provider, manifest.model) == ("fox-styles", "lumenfall", "pixverse-v5.6")
    assert manifest.base_url == "http://127.0.0.1:8765"
    assert manifest.repeat == 2
    assert manifest.output == "{{ style }}/seed-{{ seed }}.mp4"
    assert manifest.vars["scene"] == "{{ subject }} running through fresh snow"
    assert manifest.params["aspect_ratio"] == "16:9"
    assert manifest.run == {
        "concurrency": 2,
        "retries": 0,
        "failure_retries": 0,
        "budget_usd": 10.0,
        "poll_interval": 2.5,
        "timeout": 600,
        "max_jobs": 50,
    }
    matrix = manifest.matrix
    assert matrix is not None
    assert matrix["seed"] == {"range": [1, 3]}
    assert matrix["prompt"] == ["a fox  in the snow", "an owl at dusk"]
    assert matrix["zip"][0]["row"] == [{"prompt": "a fox, running", "seed": "1"}, {"prompt": "an owl", "seed": "2"}]
    assert manifest.files == {
        ("matrix", "prompt"): (VALID / "prompts.txt").resolve(),
        ("matrix", "zip", 0, "row"): (VALID / "rows.csv").resolve(),
    }
    assert manifest.sweeps == ()


def test_defaults_are_properties_not_data() -> None:
    manifest = load(VALID / "minimal.yaml")
    assert manifest.data == {"version": 1, "name": "one", "model": "m"}
    assert manifest.provider == "sim"
    assert manifest.repeat == 1
    assert manifest.output == "{{ key }}.mp4"
    assert manifest.matrix is None
    assert manifest.sweeps == ()
    assert manifest.vars == {} and manifest.params == {}
    assert manifest.base_url is None
    assert manifest.run == {
        "concurrency": 4,
        "retries": 3,
        "failure_retries": 0,
        "budget_usd": None,
        "poll_interval": None,
        "timeout": None,
        "max_jobs": 1000,
    }


def test_sweeps_load_with_their_own_files() -> None:
    manifest = load(VALID / "sweeps.yaml")
    assert [s["name"] for s in manifest.sweeps] == ["from-jsonl", "fixed"]
    rows = manifest.sweeps[0]["matrix"]["row"]
    assert rows == [{"prompt": "a fox", "seed": 1}, {"prompt": "an owl", "seed": 2, "tags": ["night"]}]
    assert manifest.files == {("sweeps", 0, "matrix", "row"): (VALID / "rows.jsonl").resolve()}
    assert manifest.sweeps[1]["params"] == {"quality": "1080p"}


def test_loading_twice_gives_equal_manifests() -> None:
    assert load(VALID / "full.yaml") == load(VALID / "full.yaml")


# --- invalid manifests: message, file and line -----------------------------------------------

INVALID_CASES = [
    ("missing_model.yaml", "missing required field 'model'", None, 1),
    ("unknown_top_field.yaml", "unknown field 'modle'; did you mean 'model'?", None, 3),
    ("version_2.yaml", "version: expected 1, got 2", None, 1),
    ("version_true.yaml", "expected 1, got true", None, 1),
    ("name_with_space.yaml", "expected a name of ASCII letters (A-Z, a-z), digits, '.', '_' and '-'", None, 2),
    ("concurrency_zero.yaml", "concurrency_zero.yaml:7:3: run.concurrency: expected an integer from 1 to 10000, got 0", None, 7),
    ("retries_negative.yaml", "expected an integer from 0 to 100, got -1", None, 5),
    ("run_unknown_key.yaml", "did you mean 'concurrency'? Allowed here: concurrency, retries, failure_retries, budget_usd", None, 6),
    ("repeat_string.yaml", "expected an integer >= 1, got a string '3'", None, 4),
    ("repeat_float.yaml", "expected an integer >= 1, got 2.0", None, 4),
    ("repeat_yes.yaml", "expected an integer >= 1, got a string 'yes'", None, 4),
    ("budget_words.yaml", "run.budget_usd: expected a number from 0 to 1000000000, got a string 'ten'", None, 5),
    ("poll_interval_zero.yaml", "expected a number of seconds > 0 and <= 3600, got 0", None, 5),
    ("base_url_ftp.yaml", "expected an http:// or https:// URL", None, 4),
    ("provider_empty.yaml", "expected a non-empty string", None, 4),
    ("vars_list.yaml", "vars: expected a mapping, got a list", None, 4),
    ("matrix_empty.yaml", "got an empty mapping", None, 4),
    ("axis_scalar.yaml", "matrix.style: expected a list of values, or a mapping with one key", None, 6),
    ("axis_empty.yaml", "expected a non-empty list of values, got an empty list", None, 5),
    ("axis_bad_name.yaml", "'my-style' cannot be used here: expected an axis name", None, 6),
    ("axis_two_kinds.yaml", "got several keys: range, file", None, 5),
    ("range_short.yaml", "at least 2 items, got 1", None, 5),
    ("range_misspelled.yaml", "unknown field 'ragne'; did you mean 'range'?", None, 5),
    ("range_strings.yaml", "matrix.seed.range[1]: expected an integer, got a string '9'", None, 6),
    ("linspace_count.yaml", "matrix.cfg.linspace[2]: expected an integer >= 2, got 1", None, 5),
    ("include_mapping.yaml", "matrix.include: expected a list, got a mapping", None, 6),
    ("include_empty_entry.yaml", "matrix.include[0]: expected a non-empty mapping", None, 7),
    ("zip_not_list.yaml", "matrix.zip: expected a non-empty list, got a mapping", None, 5),
    ("matrix_and_sweeps.yaml", "either a top-level matrix or sweeps, not both", None, 6),
    ("sweep_without_name.yaml", "sweeps[1]: missing required field 'name'", None, 6),
    ("sweep_duplicate_name.yaml", "sweep name 'a' is already used by sweeps[0] (line 5)", None, 7),
    ("sweep_unknown_key.yaml", "unknown field 'matirx'; did you mean 'matrix'?", None, 6),
    ("duplicate_key.yaml", "key 'model' is repeated in this mapping: first at line 3, again at line 6", None, 6),
    ("duplicate_nested_key.yaml", "key 'prompt' is repeated in this mapping: first at line 5, again at line 7", None, 7),
    ("bad_indentation.yaml", "invalid YAML: mapping values are not allowed here", None, 6),
    ("tab_indent.yaml", "indent with spaces, not tabs", None, 5),
    ("two_documents.yaml", "expected a single document", None, 4),
    ("binary_tag.yaml", "unsupported YAML tag", None, 5),
    ("top_level_list.yaml", "expected a mapping of manifest fields", None, 1),
    ("empty.yaml", "the file is empty; a manifest needs at least version, name and model (`gridrun init -` prints "
                   "the demo manifest to start from)", None, 0),
    ("not_utf8.yaml", "not UTF-8 text: byte 0xe9", None, 3),
    ("data_file_missing.yaml", "data file 'nope.txt': no such file", None, 5),
    ("data_file_type.yaml", "use a .txt, .csv or .jsonl file", None, 5),
    ("data_file_empty.yaml", "holds no values", None, 5),
    ("csv_ragged.yaml", "this row has 3 fields but the header row has 2", "ragged.csv", 3),
    ("csv_duplicate_header.yaml", "column name 'prompt' appears twice", "dupe_header.csv", 1),
    ("jsonl_bad.yaml", "not valid JSON", "bad.jsonl", 2),
    ("jsonl_not_object.yaml", "expected a JSON object on each line, got a list", "list.jsonl", 3),
    ("jsonl_duplicate_key.yaml", "not valid JSON: key 'prompt' appears twice in one object; keep one", "dupe_keys.jsonl", 2),
    ("data_not_utf8.yaml", "not UTF-8 text", "latin1.txt", 3),
]


_QUOTES = "as YAML reads the value unquoted: write it in quotes (\"...\") for a string"


@pytest.mark.parametrize(("value", "said"), [
    ("2025", f"got the number 2025, {_QUOTES}"),
    ("1e3", f"got the number 1000.0, {_QUOTES}"),
    ("0x1F", f"got the number 31, {_QUOTES}"),
    ("true", f"got the boolean true, {_QUOTES}"),
    ("null", "got null, as YAML reads an empty value, ~ or null unquoted: write the value, in quotes if it is ~ or null"),
])
def test_a_string_field_given_a_word_yaml_reads_as_no_string_is_told_to_quote_it(
        tmp_path: Path, value: str, said: str) -> None:
    """`name: 2025` is the number 2025: "expected ... digits ..., got 2025" said nothing of why it is refused."""
    with pytest.raises(ManifestError) as exc:
        load(write(tmp_path / "m.yaml", f"version: 1\nname: {value}\nmodel: pixverse-v5.6\nparams:\n  prompt: hi\n"))
    assert exc.value.line == 2
    assert exc.value.message == ("expected a name of ASCII letters (A-Z, a-z), digits, '.', '_' and '-' that "
                                 f"starts with a letter or digit, {said}")


@pytest.mark.parametrize(("body", "column"), [
    ("params:\n  prompt: hi\t\n  quality: 360p\n", 13),    # after a value (invisible in most editors)
    ("params:\n  prompt: hi   \t# comment\n", 16),          # before a comment
    ("params:\n  prompt: [hi,\tthere]\n", 15),               # after a comma in a flow list
    ("params:\n  quality:\t360p\n", 11),                     # after `key:`
])
def test_a_tab_that_is_not_indentation_is_not_blamed_on_the_indentation(tmp_path: Path, body: str, column: int) -> None:
    """Each was refused with "indent with spaces, not tabs", whose indentation was all spaces."""
    with pytest.raises(ManifestError) as exc:
        load(write(tmp_path / "m.yaml", HEAD + body))
    assert (exc.value.line, exc.value.column) == (5, column)
    assert "indent with spaces" not in exc.value.message
    assert exc.value.message.endswith("this tab is not indentation but follows text on its line, where the YAML "
                                      "reader gridrun uses (PyYAML) takes no tab: replace it with a space, or quote "
                                      "the text that holds it")


def test_a_list_item_among_keys_is_not_told_to_line_up(tmp_path: Path) -> None:
    with pytest.raises(ManifestError) as exc:
        load(write(tmp_path / "m.yaml", HEAD + "params:\n  prompt: a\n  - b\n"))
    assert exc.value.message.endswith("expected <block end>, but found '-'"), exc.value.message


_LINE_UP = ": keys of one mapping line up, each indented by the same spaces"


@pytest.mark.parametrize(("body", "where", "hint"), [
    # a key a space less than the one above it
    ("params:\n  prompt: a fox\n quality: 540p\n", (6, 2), "; line 6 is indented 1 space, line 5 above it 2" + _LINE_UP),
    # a key a space more
    ("params:\n  prompt: a fox\n   quality: 540p\n", (6, 11), "; line 6 is indented 3 spaces, line 5 above it 2" + _LINE_UP),
    ("params:\n  prompt: \"a fox\"\n   quality: 540p\n", (6, 4), "; line 6 is indented 3 spaces, line 5 above it 2"
     + _LINE_UP),
    # a blank line and a comment between the two
    ("params:\n  prompt: a fox\n\n  # the look\n quality: 540p\n", (8, 2),
     "; line 8 is indented 1 space, line 5 above it 2" + _LINE_UP),
    ("sweeps:\n  - name: a\n    params:\n      prompt: x\n     seed: 3\n", (8, 6),
     "; line 8 is indented 5 spaces, line 7 above it 6" + _LINE_UP),
    # ": " inside an unquoted value
    ("params:\n  prompt: a fox, style: anime\n", (5, 23),
     "; a ': ' inside an unquoted value starts a mapping: quote the value (prompt: \"a fox, style: anime\")"),
    ("params:\n  prompt: a \"fox\": anime\n", (5, 18),
     "; a ': ' inside an unquoted value starts a mapping: quote the value (prompt: \"a \\\"fox\\\": anime\")"),
])
def test_a_key_out_of_line_or_a_colon_in_a_value_says_what_to_change(tmp_path: Path, body: str,
                                                                      where: tuple[int, int], hint: str) -> None:
    with pytest.raises(ManifestError) as exc:
        load(write(tmp_path / "m.yaml", HEAD + body))
    assert (exc.value.line, exc.value.column) == where
    assert exc.value.message.startswith("invalid YAML: ")
    assert exc.value.message.endswith(hint), exc.value.message


@pytest.mark.parametrize(("body", "where", "said"), [
    # the simple key runs on into the next line: "could not find expected ':'", said at that next line
    ("params:\n  duration 5                 # seconds\n  aspect_ratio: 16:9\n", (5, 3),
     "'duration 5' has no ':' after its key (write 'duration: 5')"),
    # its text runs on into the next key, whose colon is "not allowed here"
    ("params:\n  prompt \"a fox, {{ style }} style\"\n  negative_prompt: blurry\n", (5, 3),
     "'prompt \"a fox, {{ style }} style\"' has no ':' after its key (write 'prompt: \"a fox, {{ style }} style\"')"),
    # ended by its comment, then the next key: "expected <block end>", said of the mapping's first line
    ("run:\n  concurrency 6              # jobs at once\n  budget_usd: 5.00\n", (5, 3),
     "'concurrency 6' has no ':' after its key (write 'concurrency: 6')"),
    ("params:\n  duration\n  quality: 540p\n", (5, 3), "'duration' has no ':' after its key (write 'duration:')"),
    ("sweeps:\n  - name: a\n    params:\n      seed 3\n      quality: 540p\n", (7, 7),
     "'seed 3' has no ':' after its key (write 'seed: 3')"),
    # a quoted key, on the file's last line
    ("params:\n  prompt: a fox\n  \"quality\" 540p\n", (6, 3),
     "'\"quality\" 540p' has no ':' after its key (write '\"quality\": 540p')"),
])
def test_a_key_without_its_colon_is_said_at_its_line(tmp_path: Path, body: str, where: tuple[int, int],
                                                     said: str) -> None:
    with pytest.raises(ManifestError) as exc:
        load(write(tmp_path / "m.yaml", HEAD + body))
    assert (exc.value.line, exc.value.column) == where, exc.value.message
    assert exc.value.message == "invalid YAML: " + said


@pytest.mark.parametrize(("body", "where", "said"), [
    ("matrix:\n  style:\n  - anime\n  clay\n", (7, 3),
     "'clay' has no '- ' before it, as the list item above it has (write '- clay')"),
    ("matrix:\n  style:\n    - anime\n    # the next one\n    stone age  # slow\n  seed: [1, 2]\n", (8, 5),
     "'stone age' has no '- ' before it, as the list item above it has (write '- stone age')"),
])
def test_a_list_item_without_its_dash_is_told_to_write_the_dash_not_a_colon(
        tmp_path: Path, body: str, where: tuple[int, int], said: str) -> None:
    """`clay:` below `- anime` would read: a new key beside the list's (a matrix axis `clay` with no values)."""
    with pytest.raises(ManifestError) as exc:
        load(write(tmp_path / "m.yaml", HEAD + body))
    assert (exc.value.line, exc.value.column) == where, exc.value.message
    assert exc.value.message == "invalid YAML: " + said


def test_a_key_without_its_colon_that_runs_to_the_files_end_is_said_at_its_own_line(tmp_path: Path) -> None:
    """Where no colon mends it (a key below a list item that is a mapping), the error is said where the key
    began, not at the line after the file's last."""
    body = "matrix:\n  style: [anime, clay]\n  seed: [1, 2]\n  exclude:\n    - style: anime\n    seed 2\n"
    with pytest.raises(ManifestError) as exc:
        load(write(tmp_path / "m.yaml", HEAD + body))
    assert (exc.value.line, exc.value.column) == (9, 5), exc.value.message
    assert exc.value.message == "invalid YAML: while scanning a simple key (line 9), could not find expected ':'"


def test_a_line_of_text_that_goes_on_a_value_is_not_taken_for_a_key_without_its_colon(tmp_path: Path) -> None:
    """The line above a key out of line is the second line of a value: writing a colon there would not mend it."""
    with pytest.raises(ManifestError) as exc:
        load(write(tmp_path / "m.yaml", HEAD + "params:\n  prompt: a fox\n    in the snow\n   quality: 540p\n"))
    assert "has no ':'" not in exc.value.message and _LINE_UP in exc.value.message, exc.value.message


@pytest.mark.parametrize(("fixture", "message", "data_file", "line"), INVALID_CASES, ids=[c[0] for c in INVALID_CASES])
def test_invalid_manifest(fixture: str, message: str, data_file: str | None, line: int) -> None:
    path = INVALID / fixture
    with pytest.raises((ManifestError, ManifestErrors)) as exc:
        load(path)
    matching = [e for e in all_errors(exc.value) if message in str(e)]
    assert matching, [str(e) for e in all_errors(exc.value)]
    error = matching[0]
    assert error.file.name == (data_file or fixture)
    assert error.file.parent.resolve() == INVALID.resolve()
    assert error.line == line
    assert str(error).startswith(str(error.file))


@pytest.mark.parametrize(("where", "value", "said"), [
    ("name", "füchse", ("name: expected a name of ASCII letters (A-Z, a-z), digits, '.', '_' and '-' that starts "
                        "with a letter or digit, got a string 'füchse': 'ü' (character 2) is not allowed")),
    ("name", "-fox", "got a string '-fox': it cannot start with '-'"),
    ("name", "fox\tes", "got a string 'fox\tes': '\\t' (character 4) is not allowed"),
    ("sweep", "fü", "sweeps[0].name: expected a name of ASCII letters (A-Z, a-z)"),
    ("axis", "größe", ("'größe' cannot be used here: expected an axis name of ASCII letters (A-Z, a-z), digits and "
                       "'_' that does not start with a digit (it becomes a template variable): 'ö' (character 3) is "
                       "not allowed")),
])
def test_a_name_refused_for_a_character_says_the_rule_is_ascii_and_which_character(
    tmp_path: Path, where: str, value: str, said: str,
) -> None:
    """Names feed file names and keys, and take ASCII only: "letters" alone would not tell the user of `füchse`
    why it is refused, nor which character it is."""
    doc: dict[str, Any] = {"version": 1, "name": value if where == "name" else "fox", "model": "pixverse-v5.6",
                           "params": {"prompt": "a fox"}}
    if where == "axis":
        doc["matrix"] = {value: [1, 2]}
    if where == "sweep":
        doc["sweeps"] = [{"name": value, "matrix": {"seed": [1]}}]
    path = tmp_path / "m.yaml"
    path.write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")
    with pytest.raises((ManifestError, ManifestErrors)) as exc:
        load(path)
    errors = [str(e) for e in all_errors(exc.value)]
    assert any(said in e for e in errors), errors
    if where == "sweep":
        assert any("'ü' (character 2) is not allowed" in e for e in errors), errors


def test_every_invalid_fixture_is_in_the_table() -> None:
    named = {case[0] for case in INVALID_CASES}
    assert {p.name for p in INVALID.glob("*.yaml")} == named


def test_unknown_field_lists_the_allowed_ones() -> None:
    with pytest.raises(ManifestErrors) as exc:
        load(INVALID / "unknown_top_field.yaml")
    unknown = [e for e in exc.value.errors if "modle" in e.message][0]
    assert unknown.field == "modle"
    assert "Allowed here: version, name, description, provider, model," in unknown.message


def test_a_request_parameter_or_run_setting_one_level_off_is_told_where_it_goes(tmp_path: Path) -> None:
    """Not `seed: ... did you mean 'sweeps'?`: the request parameters are the capability data's (which
    `runner.api.load` passes in), the run settings the schema's."""
    from runner import api

    path = write(tmp_path / "top.yaml", "version: 1\nname: tf\nmodel: pixverse-v5.6\nparams:\n  prompt: a fox\n"
                 "concurrency: 2\nseed: 3\nquality: 720p\nbudget_usd: 3\nprompt: x\nimage_url: a.png\n"
                 "run:\n  seed: 4\nsweeps:\n  - name: a\n    qualty: 540p\n")
    with pytest.raises(ManifestErrors) as exc:
        api.load(path)
    said = {e.field: e.message for e in exc.value.errors}
    assert said == {
        "concurrency": "unknown field 'concurrency' here: a run setting goes under run: (run.concurrency)",
        "seed": "unknown field 'seed' here: a request parameter goes under params: (params.seed)",
        "quality": "unknown field 'quality' here: a request parameter goes under params: (params.quality)",
        "budget_usd": "unknown field 'budget_usd' here: a run setting goes under run: (run.budget_usd)",
        "prompt": "unknown field 'prompt' here: a request parameter goes under params: (params.prompt)",
        "image_url": "unknown field 'image_url' here: a request parameter goes under params: "
                     "(params.input_reference; 'image_url' is another provider's name for it)",
        "run.seed": "unknown field 'seed' here: a request parameter goes under params: (params.seed)",
        "sweeps[0].qualty": "unknown field 'qualty' here: a request parameter goes under sweeps[0].params: "
                            "(sweeps[0].params.quality)",
    }, said
    assert [e.line for e in exc.value.errors] == [6, 7, 8, 9, 10, 11, 13, 16]
    # read without the capability data, a run setting is still told where it goes, a parameter the field as before
    with pytest.raises(ManifestErrors) as exc:
        load(path)
    said = {e.field: e.message for e in exc.value.errors}
    assert said["concurrency"] == "unknown field 'concurrency' here: a run setting goes under run: (run.concurrency)"
    assert said["seed"].startswith("unknown field 'seed'; did you mean 'sweeps'? Allowed here: version,")


def test_gridrun_matrix_tells_a_request_parameter_where_it_goes_as_validate_does(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`gridrun matrix` of a manifest reads it with the capability data's parameter names too: a top-level `seed:`
    goes under params:, not "did you mean 'sweeps'?"."""
    from runner.cli import main

    path = write(tmp_path / "c2.yaml", "version: 1\nname: t\nprovider: sim\nmodel: pixverse-v5.6\nseed: 3\n"
                 "params:\n  prompt: a fox\n")
    told = "c2.yaml:5:1: seed: unknown field 'seed' here: a request parameter goes under params: (params.seed)"
    for argv in (["validate", str(path)], ["matrix", str(path)]):
        assert main(argv) == 2
        said = " ".join(capsys.readouterr().err.split())
        assert told in said and "sweeps" not in said, (argv, said)
    assert main(["matrix", str(path), "--json"]) == 2
    errors = json.loads(capsys.readouterr().out)["errors"]
    assert [e.endswith(told) for e in errors] == [True], errors


def test_a_misspelt_field_is_still_matched_to_its_sibling_first(tmp_path: Path) -> None:
    path = write(tmp_path / "m.yaml", "version: 1\nname: tf\nmodle: pixverse-v5.6\nrun:\n  concurency: 2\n")
    with pytest.raises(ManifestErrors) as exc:
        load(path)
    said = {e.field: e.message for e in exc.value.errors}
    assert said["modle"].startswith("unknown field 'modle'; did you mean 'model'? Allowed here: version,")
    assert said["run.concurency"].startswith("unknown field 'concurency'; did you mean 'concurrency'?")


def test_many_errors_are_reported_at_once_in_file_order(tmp_path: Path) -> None:
    path = write(
        tmp_path / "m.yaml",
        "version: 1\nname: my fox\nmodel: m\nrepeat: 0\nrun:\n  concurrency: 0\n  retry: 2\nmatrix:\n  style: anime\n",
    )
    with pytest.raises(ManifestErrors) as exc:
        load(path)
    assert [(e.line, e.field) for e in exc.value.errors] == [
        (2, "name"),
        (4, "repeat"),
        (6, "run.concurrency"),
        (7, "run.retry"),
        (9, "matrix.style"),
    ]
    assert str(exc.value).count("\n") == 4


def test_schema_errors_and_data_file_errors_come_together(tmp_path: Path) -> None:
    path = write(tmp_path / "m.yaml", HEAD + "repeat: 0\nmatrix:\n  prompt: {file: missing.txt}\n")
    with pytest.raises(ManifestErrors) as exc:
        load(path)
    assert [e.field for e in exc.value.errors] == ["repeat", "matrix.prompt.file"]


# --- files that are not manifests: no traceback ----------------------------------------------


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ManifestError) as exc:
        load(tmp_path / "nope.yaml")
    assert str(exc.value) == f"{tmp_path / 'nope.yaml'}: no such file"


def test_a_manifest_over_a_megabyte_is_refused_unread_and_one_under_loads(tmp_path: Path) -> None:
    """A 5 MB manifest took 23 s to parse before it was refused; its size is now the error, at once."""
    from runner.yamlsource import MAX_BYTES

    body = HEAD + "params:\n  quality: 540p\n  duration: 5\n  prompt: |\n"
    lines = "".join(f"    a fox, take {i}, running through fresh snow\n" for i in range(25_000))
    text = body + lines[: MAX_BYTES - len(body)].rsplit("\n", 1)[0] + "\n"
    small = write(tmp_path / "small.yaml", text)
    big = write(tmp_path / "big.yaml", text + "    and one more line, which takes it past the limit\n")
    assert small.stat().st_size <= MAX_BYTES < big.stat().st_size
    assert load(small).params["prompt"].startswith("a fox, take 0, running")
    with pytest.raises(ManifestError) as exc:
        load(big)
    assert str(exc.value) == (f"{big}: the file is {big.stat().st_size:,} bytes, and a manifest is at most 1,000,000: "
                              "put long lists of values in a data file (matrix: {prompt: {file: prompts.txt}})")


def test_directory(tmp_path: Path) -> None:
    with pytest.raises(ManifestError, match="is a directory, not a file"):
        load(tmp_path)


def test_unreadable_file(tmp_path: Path) -> None:
    path = write(tmp_path / "m.yaml", HEAD)
    path.chmod(0)
    try:
        if os.access(path, os.R_OK):
            pytest.skip("running with permission to read anything")
        with pytest.raises(ManifestError, match="permission denied"):
            load(path)
    finally:
        path.chmod(0o644)


def test_utf8_bom_is_accepted(tmp_path: Path) -> None:
    path = tmp_path / "m.yaml"
    path.write_bytes(b"\xef\xbb\xbf" + HEAD.encode())
    assert load(path).name == "fox"


def test_scalar_document(tmp_path: Path) -> None:
    with pytest.raises(ManifestError, match="at the top level, got a string"):
        load(write(tmp_path / "m.yaml", "just some text\n"))


def test_relative_path_is_shown_as_given(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "manifests").mkdir()
    write(tmp_path / "manifests" / "x.yaml", HEAD + "run:\n  concurrency: 0\n")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ManifestError) as exc:
        load("manifests/x.yaml")
    assert str(exc.value) == "manifests/x.yaml:5:3: run.concurrency: expected an integer from 1 to 10000, got 0"


# --- values from files -----------------------------------------------------------------------


def test_text_file_one_value_per_line(tmp_path: Path) -> None:
    (tmp_path / "p.txt").write_bytes(b"# heading\r\n  a fox  in snow \r\n\r\n#skip\nan owl\n   # indented comment\nlast")
    manifest = load(write(tmp_path / "m.yaml", HEAD + "matrix:\n  prompt: {file: p.txt}\n"))
    assert manifest.matrix == {"prompt": ["a fox  in snow", "an owl", "last"]}


def test_a_text_file_of_cr_ended_lines_is_one_value_per_line(tmp_path: Path) -> None:
    """Lines ending in CR alone (classic Mac tools, some exporters) were read as one value holding them all."""
    (tmp_path / "p.txt").write_bytes(b"a cat\rb dog\r\r# skip\r  c bird\r")
    (tmp_path / "rows.jsonl").write_bytes(b'{"p": 1}\r{"p": 2}\r')
    manifest = load(write(tmp_path / "m.yaml", HEAD + "matrix:\n  prompt: {file: p.txt}\n  row: {file: rows.jsonl}\n"))
    assert manifest.matrix == {"prompt": ["a cat", "b dog", "c bird"], "row": [{"p": 1}, {"p": 2}]}
    assert manifest.error(("matrix", "prompt", 2), "x").line == 5  # a line of its own, counted as in a manifest


_LINE_TEXT = st.text(alphabet=st.sampled_from(["a", " ", "#", "\t", "é", "{", '"', "\x0b", "\x1c", "\u2028"]), max_size=6)


@hypothesis.settings(max_examples=300, deadline=None)
@hypothesis.given(lines=st.lists(_LINE_TEXT, max_size=8), last=st.booleans())
def test_lf_crlf_and_cr_line_ends_read_the_same_values_as_lf_always_did(lines: list[str], last: bool) -> None:
    from runner.datafiles import _text_values

    def before(text: str) -> list[str]:  # how LF and CRLF files were read: job keys depend on it
        values = [line.rstrip("\r").strip() for line in text.split("\n")]
        return [v for v in values if v and not v.startswith("#")]

    lf = "\n".join(lines) + ("\n" if last else "")
    expected = before(lf)
    assert before(lf.replace("\n", "\r\n")) == expected
    for end in ("\n", "\r\n", "\r"):
        where: list[Any] = []
        assert _text_values(lf.replace("\n", end), [], where) == expected, repr(end)
        assert len(where) == len(expected)


def test_a_cr_inside_an_lf_line_stays_in_its_value(tmp_path: Path) -> None:
    """A file with LF line ends is split at LF only, as it always was: a CR pasted inside a line is part of the
    value (the same job key as before), and a CR between JSON tokens is whitespace."""
    (tmp_path / "p.txt").write_bytes(b"a red fox\rin snow\na blue cat\r\n")
    (tmp_path / "rows.jsonl").write_bytes(b'{"p": "fox",\r "id": 1}\n{"p": "cat", "id": 2}\n')
    manifest = load(write(tmp_path / "m.yaml", HEAD + "matrix:\n  prompt: {file: p.txt}\n  row: {file: rows.jsonl}\n"))
    assert manifest.matrix == {"prompt": ["a red fox\rin snow", "a blue cat"],
                               "row": [{"p": "fox", "id": 1}, {"p": "cat", "id": 2}]}
    assert manifest.error(("matrix", "row", 1), "x").line == 2


def _text_values_before(text: str, problems: list[Any], where: list[Any]) -> list[Any]:
    """How a .txt file was read before a file of CR-ended lines was split (job keys depend on it)."""
    values: list[Any] = []
    for number, line in enumerate(text.split("\n"), 1):
        value = line.rstrip("\r").strip()
        if value and not value.startswith("#"):
            values.append(value)
            where.append((number, len(line) - len(line.lstrip()) + 1))
    return values


def _jsonl_values_before(text: str, problems: list[Any], where: list[Any]) -> list[Any]:
    """How a .jsonl file was read before a file of CR-ended lines was split; a line starting with '#' skipped as a
    comment (refused before, so no job's key depends on it)."""
    from runner.datafiles import _MAX_ERRORS_PER_DATA_FILE, _reject_constant, _unique_keys
    from runner.yamlsource import kind

    values: list[Any] = []
    for number, line in enumerate(text.split("\n"), 1):
        stripped = line.strip()
        if not stripped or stripped[0] == "#":
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


_ANY_TEXT = st.text(alphabet=st.sampled_from(["a", " ", "#", "\t", "\r", "\n", "{", "}", '"', ":", ",", "1", "\x0b",
                                              "\u2028", "\x85"]), max_size=40)
_JSON_SPACE = st.text(alphabet=st.sampled_from([" ", "\r", "\t"]), max_size=2)


@st.composite
def _jsonl_text(draw: Any) -> str:
    """Lines of JSON objects with CRs, spaces and tabs between their tokens, some lines ending in CRLF."""
    lines = []
    for _ in range(draw(st.integers(1, 4))):
        s = [draw(_JSON_SPACE) for _ in range(6)]
        lines.append(f'{s[0]}{{{s[1]}"p"{s[2]}:{s[3]}"a\\r b"{s[4]},{s[5]}"n": 1}}{draw(_JSON_SPACE)}')
    return "\n".join(lines) + draw(st.sampled_from(["", "\n", "\r\n"]))


@hypothesis.settings(max_examples=400, deadline=None)
@hypothesis.given(text=st.one_of(_ANY_TEXT, _jsonl_text()))
def test_a_file_with_an_lf_is_read_as_it_always_was(text: str) -> None:
    from runner.datafiles import _jsonl_values, _text_values

    hypothesis.assume("\n" in text)
    for now, before in ((_text_values, _text_values_before), (_jsonl_values, _jsonl_values_before)):
        problems: list[Any] = []
        where: list[Any] = []
        old_problems: list[Any] = []
        old_where: list[Any] = []
        assert now(text, problems, where) == before(text, old_problems, old_where)
        assert (problems, where) == (old_problems, old_where)


def test_csv_file_gives_mappings(tmp_path: Path) -> None:
    write(tmp_path / "rows.csv", 'prompt,seed\r\n"a fox, running",1\r\n\r\n"an ""owl""\nat night",2\r\n')
    manifest = load(write(tmp_path / "m.yaml", HEAD + "matrix:\n  row: {file: rows.csv}\n"))
    assert manifest.matrix == {
        "row": [{"prompt": "a fox, running", "seed": "1"}, {"prompt": 'an "owl"\nat night', "seed": "2"}]
    }


def test_csv_error_line_counts_multiline_fields(tmp_path: Path) -> None:
    write(tmp_path / "rows.csv", 'prompt,seed\n"two\nlines",1\nbad\n')
    with pytest.raises(ManifestError) as exc:
        load(write(tmp_path / "m.yaml", HEAD + "matrix:\n  row: {file: rows.csv}\n"))
    assert (exc.value.file.name, exc.value.line) == ("rows.csv", 4)


def test_a_csv_quote_left_open_is_a_csv_error_not_an_empty_file(tmp_path: Path) -> None:
    write(tmp_path / "rows.csv", '"prompt\na fox\n')
    with pytest.raises(ManifestError, match="not valid CSV: a quoted field is never closed") as exc:
        load(write(tmp_path / "m.yaml", HEAD + "matrix:\n  row: {file: rows.csv}\n"))
    assert exc.value.file.name == "rows.csv"


def test_jsonl_file_gives_objects(tmp_path: Path) -> None:
    write(tmp_path / "rows.jsonl", '{"prompt": "a fox", "seed": 1}\n\n  {"prompt": "an owl", "nested": {"a": [1]}}\n')
    manifest = load(write(tmp_path / "m.yaml", HEAD + "matrix:\n  row: {file: rows.jsonl}\n"))
    assert manifest.matrix == {"row": [{"prompt": "a fox", "seed": 1}, {"prompt": "an owl", "nested": {"a": [1]}}]}


def test_jsonl_rejects_nan(tmp_path: Path) -> None:
    write(tmp_path / "rows.jsonl", '{"a": 1}\n{"a": NaN}\n')
    with pytest.raises(ManifestError) as exc:
        load(write(tmp_path / "m.yaml", HEAD + "matrix:\n  row: {file: rows.jsonl}\n"))
    assert exc.value.line == 2
    assert "NaN is not valid JSON" in exc.value.message


def test_data_file_errors_are_capped_per_file(tmp_path: Path) -> None:
    write(tmp_path / "rows.jsonl", "nope\n" * 50)
    with pytest.raises(ManifestErrors) as exc:
        load(write(tmp_path / "m.yaml", HEAD + "matrix:\n  row: {file: rows.jsonl}\n"))
    assert [e.line for e in exc.value.errors] == list(range(1, 11))


def test_data_file_path_is_relative_to_the_manifest(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "m" / "data").mkdir(parents=True)
    write(tmp_path / "m" / "data" / "p.txt", "a fox\n")
    write(tmp_path / "m" / "x.yaml", HEAD + "matrix:\n  prompt: {file: data/p.txt}\n")
    monkeypatch.chdir(tmp_path)
    manifest = load("m/x.yaml")
    assert manifest.files == {("matrix", "prompt"): tmp_path / "m" / "data" / "p.txt"}


def test_data_file_error_names_the_data_file_as_seen_from_here(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "m").mkdir()
    write(tmp_path / "m" / "rows.jsonl", "{}\n[]\n")
    write(tmp_path / "m" / "x.yaml", HEAD + "matrix:\n  row: {file: rows.jsonl}\n")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ManifestError) as exc:
        load("m/x.yaml")
    assert str(exc.value).startswith("m/rows.jsonl:2:1: matrix.row: expected a JSON object")


def test_file_values_inside_zip_and_sweeps(tmp_path: Path) -> None:
    write(tmp_path / "p.txt", "a\nb\n")
    text = HEAD + "sweeps:\n  - name: s\n    matrix:\n      zip:\n        - prompt: {file: p.txt}\n          seed: [1, 2]\n"
    manifest = load(write(tmp_path / "m.yaml", text))
    assert manifest.sweeps[0]["matrix"]["zip"][0] == {"prompt": ["a", "b"], "seed": [1, 2]}
    assert manifest.files == {("sweeps", 0, "matrix", "zip", 0, "prompt"): tmp_path / "p.txt"}


def test_include_and_exclude_entries_are_not_read_as_files(tmp_path: Path) -> None:
    text = HEAD + "matrix:\n  a: [1]\n  include:\n    - file: notes.txt\n"
    manifest = load(write(tmp_path / "m.yaml", text))
    assert manifest.matrix == {"a": [1], "include": [{"file": "notes.txt"}]}


@pytest.mark.parametrize("kind", ["txt", "csv", "jsonl"])
def test_5000_row_files_load_whole(tmp_path: Path, kind: str) -> None:
    rows = [f"prompt number {i}, with a comma" for i in range(5000)]
    if kind == "txt":
        write(tmp_path / "big.txt", "\n".join(rows) + "\n")
    elif kind == "csv":
        write(tmp_path / "big.csv", "prompt,seed\n" + "".join(f'"{r}",{i}\n' for i, r in enumerate(rows)))
    else:
        write(tmp_path / "big.jsonl", "".join(json.dumps({"prompt": r, "seed": i}) + "\n" for i, r in enumerate(rows)))
    path = write(tmp_path / "m.yaml", HEAD + f"matrix:\n  row: {{file: big.{kind}}}\n  seed: [1, 2]\n")
    manifest = load(path)  # its speed: bench/plan_bench.py
    values = manifest.matrix["row"] if manifest.matrix else []
    assert len(values) == 5000
    first = values[0] if kind == "txt" else values[0]["prompt"]
    assert first == "prompt number 0, with a comma"


# --- the schema ------------------------------------------------------------------------------


def schema() -> dict[str, Any]:
    document: dict[str, Any] = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    return document


def test_schema_is_valid_draft_2020_12() -> None:
    document = schema()
    assert document["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    Draft202012Validator.check_schema(document)


def test_every_field_in_the_schema_has_a_description() -> None:
    missing: list[str] = []

    def walk(node: Any, where: str) -> None:
        if isinstance(node, dict):
            for name, sub in node.get("properties", {}).items():
                if "description" not in sub:
                    missing.append(f"{where}.properties.{name}")
            for name, sub in node.get("$defs", {}).items():
                if "description" not in sub:
                    missing.append(f"{where}.$defs.{name}")
            for i, sub in enumerate(node.get("prefixItems", [])):
                if "description" not in sub:
                    missing.append(f"{where}.prefixItems[{i}]")
            for key, sub in node.items():
                walk(sub, f"{where}.{key}")
        elif isinstance(node, list):
            for i, sub in enumerate(node):
                walk(sub, f"{where}[{i}]")

    walk(schema(), "$")
    assert missing == []


def test_schema_is_closed_at_the_top_and_in_run() -> None:
    document = schema()
    assert document["additionalProperties"] is False
    assert document["$defs"]["run"]["additionalProperties"] is False
    assert document["$defs"]["sweep"]["additionalProperties"] is False
    assert set(document["properties"]) == {
        "version", "name", "description", "provider", "model", "base_url", "capabilities", "vars", "params",
        "matrix", "sweeps", "repeat", "output", "outputs_dir", "state_dir", "run", "sim",
    }  # fmt: skip


def test_schema_defaults_match_the_properties() -> None:
    document = schema()
    minimal = load(VALID / "minimal.yaml")
    assert document["properties"]["provider"]["default"] == minimal.provider
    assert document["properties"]["repeat"]["default"] == minimal.repeat
    assert document["properties"]["output"]["default"] == minimal.output
    run_defaults = {k: v["default"] for k, v in document["$defs"]["run"]["properties"].items() if "default" in v}
    assert run_defaults == {k: v for k, v in minimal.run.items() if v is not None}


def test_a_csv_with_spaces_after_a_closing_quote_loads_as_before(tmp_path: Path) -> None:
    write(tmp_path / "space.csv", 'prompt,seed\n"a fox" ,1\n"an owl",2 \n')
    manifest = load(write(tmp_path / "m.yaml", HEAD + "matrix:\n  row: {file: space.csv}\n"))
    assert manifest.matrix == {"row": [{"prompt": "a fox ", "seed": "1"}, {"prompt": "an owl", "seed": "2 "}]}


def test_the_characters_an_output_path_keeps_are_those_the_schema_and_readme_name() -> None:
    """`output` paths keep letters, marks, digits and `_KEEP`; every other run of characters is one "_", as the
    schema's `output` description and the README say, naming the same characters."""
    from runner.sweeps import _KEEP, _safe_part

    kept = "".join(sorted(_KEEP))
    said = schema()["properties"]["output"]["description"]
    listed = re.search(r"letters, marks, digits and (\S+) \(", said)
    assert listed is not None and sorted(listed.group(1)) == sorted(kept), said
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    found = re.search(r"letters, marks and digits \(of any script\) and `([^`]+)`", readme)
    assert found is not None and sorted(found.group(1)) == sorted(kept)
    assert _safe_part("a red fox") == "a_red_fox" and _safe_part("Île “é” 2") == "Île_é_2"


def test_the_readmes_manifest_is_the_demo_exactly() -> None:
    """The README's "A manifest" example is `manifests/demo.yaml` as it is: saved beside the demo, a copy that
    differs would be a second manifest named `demo`, sharing its history and output folder, paying for its own jobs."""
    root = Path(__file__).resolve().parents[1]
    section = (root / "README.md").read_text(encoding="utf-8").split("\n## A manifest\n", 1)[1]
    block = section.split("```yaml\n", 1)[1].split("```\n", 1)[0]
    assert block == (root / "manifests" / "demo.yaml").read_text(encoding="utf-8")



def test_the_demo_says_what_each_of_its_fields_does() -> None:
    """`gridrun init --help` says the demo's comments say what each field does: every top-level field has one."""
    root = Path(__file__).resolve().parents[1]
    demo = (root / "manifests" / "demo.yaml").read_text(encoding="utf-8")
    fields = [line for line in demo.splitlines() if re.match(r"[a-z_]+:", line)]
    assert len(fields) == 11 and all(" # " in line for line in fields), fields

_CUT = """version: 1
name: h
provider: sim
model: pixverse-v5.6
params:
  prompt: a {{ look }} {{ tag }} fox in shot #3 of the series, {{ look }} style, {{ mood }}
  negative_prompt: blurry #no watermark
  quality: 360p   #note
  duration: 5  # five seconds
vars:
  mood: calm #quiet
matrix:
  look: [anime, C#, F# minor]   # keys
  tag:
    - 'quoted #kept'
    - plain # a comment
    - take #2
output: "{{ hash }}.mp4"
"""


def test_a_comment_that_cuts_an_unquoted_free_text_value_is_warned_of_at_its_line(tmp_path: Path) -> None:
    """`prompt: shot #3 of the series` sends "shot": YAML reads the rest as a comment. Warned at the value's line for
    a prompt, a negative prompt, a var and a matrix value; not for `# a comment`, `C#`, a quoted value, nor a
    comment after a field that is not free text."""
    from runner import api

    m = tmp_path / "hash.yaml"
    m.write_text(_CUT)
    warned = [w for w in api.plan(m).warnings if "YAML comment" in w]
    assert [w.split(": ", 1)[0].rsplit("/", 1)[-1] for w in warned] == ["hash.yaml:6:3", "hash.yaml:7:3", "hash.yaml:11:3",
                                                    "hash.yaml:17:7"], warned
    assert "'#3 of the series, {{ look }} style, {...' on is a YAML comment" in warned[0], warned[0]
    assert "ends at 'a {{ look }} {{ tag }} fox in shot'" in warned[0] and "quote the value" in warned[0], warned[0]
    assert "'#no watermark'" in warned[1] and "'#quiet'" in warned[2] and "'#2'" in warned[3], warned


_CUT_FAILS = """version: 1
name: cut
provider: sim
model: pixverse-v5.6
params:
  prompt: a red fox, shot #3 of the series, {{ who }}
  quality: 540p
  duration: 5
matrix:
  who: [a cat, a dog]
output: "{{ key }}.mp4"
"""


def test_a_comment_that_cuts_a_value_is_warned_of_before_the_errors_it_makes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    """The part cut off held `{{ who }}`: the jobs send the same request, which is refused. The warning that says
    why is said first, not lost with the plan that failed."""
    from runner import api, cli

    m = tmp_path / "cut.yaml"
    m.write_text(_CUT_FAILS)
    with pytest.raises((ManifestError, ManifestErrors)) as refused:
        api.plan(m)
    assert [w.split(": ", 1)[0].rsplit("/", 1)[-1] for w in refused.value.warnings] == ["cut.yaml:6:3"]
    assert cli.main(["plan", str(m)]) == 2
    said = capsys.readouterr().err.replace("\n", " ")
    warned, error = said.find("'#3 of the series, {{ who }}' on is a YAML comment"), said.find("same request")
    assert 0 <= warned < error, said


@pytest.mark.parametrize("command", ["plan", "run"])
def test_a_refused_plans_json_carries_the_warning_that_explains_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], command: str,
) -> None:
    """`plan --json` and `run --json` of a manifest that fails because a comment cut a value short: the JSON a script
    reads (the refused plan's object, the `end` event) carries the warning, as a valid plan's `warnings` would."""
    from runner import cli

    m = tmp_path / "cut.yaml"
    m.write_text(_CUT_FAILS)
    assert cli.main([command, str(m), "--json"]) == 2
    out = capsys.readouterr().out
    doc = json.loads(out if command == "plan" else out.strip().splitlines()[-1])
    assert doc["exit_code"] == 2 and any("same request" in e for e in doc["errors"]), doc
    assert [w.split(": ", 1)[0].rsplit("/", 1)[-1] for w in doc["warnings"]] == ["cut.yaml:6:3"], doc


def test_a_comment_that_cuts_an_anchored_value_is_warned_of_at_the_anchor(tmp_path: Path) -> None:
    """`prompt: *b` has nothing to quote: the value, and its comment, are on the anchor's line."""
    from runner import api

    m = tmp_path / "anchor.yaml"
    m.write_text("version: 1\nname: anchory\nprovider: sim\nmodel: pixverse-v5.6\nvars:\n"
                 "  base: &b a red fox, shot #3 of the series\nparams:\n  prompt: *b\n  quality: 540p\n"
                 "  duration: 5\nmatrix:\n  seed: [1, 2]\noutput: \"{{ key }}.mp4\"\n")
    warned = [w for w in api.plan(m).warnings if "YAML comment" in w]
    assert [w.split(": ", 1)[0].rsplit("/", 1)[-1] for w in warned] == ["anchor.yaml:6:3"], warned
    assert warned[0].plain.startswith("vars.base: "), warned


def test_a_manifest_whose_comments_follow_a_space_is_not_warned_of(tmp_path: Path) -> None:
    from runner import api

    m = tmp_path / "ok.yaml"
    m.write_text(_CUT.replace(" #3", " no. 3").replace(" #no w", " no w").replace(" #quiet", "").replace(" #2", " 2"))
    assert not [w for w in api.plan(m).warnings if "YAML comment" in w]


def _mutations(document: Any, rng: Any, n: int) -> list[Any]:
    """`n` copies of `document`, each with one value replaced, one field dropped or one field added somewhere."""
    import copy

    values: list[Any] = [None, True, False, 0, 1, -1, 1.0, 2.5, math.nan, math.inf, 10**400, "", "x", "Ab-1",
                         "http://a", "1bad", [], [1], [1, 2, 3], {}, {"a": 1}, {"range": [1, 5]},
                         {"linspace": [0, 1, 3]}, {"linspace": [0, 1, True]}, {"file": "x.csv"}, ["a"], [{}]]
    names = ["extra", "matrix", "sweeps", "run", "zip", "include", "exclude", "Bad-Name", "concurrency", "_a", "range"]

    def paths(node: Any, at: tuple[Any, ...] = ()) -> Any:
        yield at
        items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
        for key, child in items:
            yield from paths(child, (*at, key))

    out = []
    for _ in range(n):
        doc = copy.deepcopy(rng.choice([document, *out[-3:]]))
        places = [p for p in paths(doc) if p]
        if not places:  # every field dropped
            doc = copy.deepcopy(document)
            places = [p for p in paths(doc) if p]
        at = rng.choice(places)
        parent = doc
        for key in at[:-1]:
            parent = parent[key]
        roll = rng.random()
        if roll < 0.6:
            parent[at[-1]] = copy.deepcopy(rng.choice(values))
        elif isinstance(parent, dict) and roll < 0.8:
            del parent[at[-1]]
        elif isinstance(parent, dict):
            parent[rng.choice(names)] = copy.deepcopy(rng.choice(values))
        out.append(doc)
    return out


def test_the_quick_check_of_a_valid_manifest_agrees_with_jsonschema() -> None:
    """`schema_allows` (which spares a valid manifest jsonschema's import) says valid only what jsonschema finds no
    error in, and says so of every valid manifest here: the repository's and thousands of changed copies."""
    import random

    from runner.manifest import _validator, schema_allows

    validator = _validator()
    documents = [parse(p.read_text(encoding="utf-8"))
                 for p in sorted([*VALID.glob("*.yaml"), *(Path(__file__).parents[1] / "manifests").glob("*.yaml")])]
    assert len(documents) >= 3
    rng = random.Random(20_261_206)
    checked = valid = 0
    for document in documents:
        for doc in [document, *_mutations(document, rng, 300)]:
            errors = list(validator.iter_errors(doc))
            assert schema_allows(schema(), doc) is not bool(errors), (doc, [e.message for e in errors])
            checked += 1
            valid += not errors
    assert valid > 100 and checked - valid > 100


@pytest.mark.parametrize("doc", [
    {"version": True}, {"version": 1.0}, {"version": "1"}, {"version": 1, "name": "a", "model": "m", "run": {"concurrency": 2.0}},
    {"version": 1, "name": "a", "model": "m", "run": {"budget_usd": math.nan}},
    {"version": 1, "name": "a", "model": "m", "matrix": {"s": [1]}, "sweeps": [{"name": "b", "matrix": {"t": [1]}}]},
    {"version": 1, "name": "a", "model": "m", "matrix": {"s": {"linspace": [0, 1, 3]}}},
    {"version": 1, "name": "a", "model": "m", "matrix": {"s": {"linspace": [0, 1, 2.5]}}},
    {"version": 1, "name": "a", "model": "m", "matrix": {"s": {"range": [1, 3], "file": "x"}}},
    {"version": 1, "name": "a", "model": "m", "matrix": {"1s": [1]}},
    {"version": 1, "name": "a", "model": "m", "matrix": {"s": []}},
], ids=lambda d: json.dumps(d)[:60])
def test_the_quick_check_says_what_jsonschema_says(doc: dict[str, Any]) -> None:
    from runner.manifest import _validator, schema_allows

    assert schema_allows(schema(), doc) is not any(True for _ in _validator().iter_errors(doc))


def test_the_quick_check_leaves_to_jsonschema_what_it_does_not_know() -> None:
    """A keyword it does not apply, or a reference outside the document, is never taken as allowing anything."""
    from runner.manifest import schema_allows

    assert schema_allows({"type": "integer", "minimum": 1}, 3)
    assert not schema_allows({"enum": [3]}, 3)
    assert not schema_allows({"$ref": "other.json#/x"}, 3)
    assert not schema_allows({"$defs": {"a": {"$id": "other", "type": "integer"}}, "$ref": "#/$defs/a"}, 3)
    assert not schema_allows({"type": "integer", "minimum": "one"}, 3)


@pytest.mark.parametrize(("typed", "meant"), [
    ("demo", "demo.yaml"),              # the extension left out
    ("dmeo.yaml", "demo.yaml"),         # two letters swapped
    ("Demo.yaml", "demo.yaml"),         # another case, on a file system that tells them apart
    ("demo.yml", "demo.yaml"),          # the other ending
    ("sub/gird.yml", "sub/grid.yml"),   # in the folder named
])
def test_a_manifest_not_there_names_the_one_meant_beside_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                             typed: str, meant: str) -> None:
    (tmp_path / "sub").mkdir()
    for name in ("demo.yaml", "notes.txt", "sub/grid.yml"):
        (tmp_path / name).write_text("version: 1\n", encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ManifestError) as exc:
        load(Path(typed))
    assert str(exc.value) == f"{typed}: no such file; did you mean {meant}?"


def test_a_file_whose_name_is_in_the_other_unicode_form_is_said_so(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """A folder unpacked from a macOS archive holds its names decomposed (e + U+0301), the manifest writes them
    composed (U+00E9), or the other way round: the manifest and a data file not found name the file there, both
    names escaped (they print alike), and say they differ in Unicode form alone; not a hint that reads as the name
    written, nor another file (m.yaml)."""
    (tmp_path / "e\u0301.yaml").write_text("version: 1\n", encoding="utf-8")
    (tmp_path / "m.yaml").write_text("version: 1\n", encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ManifestError) as exc:
        load(Path("\u00e9.yaml"))
    assert str(exc.value) == ("\u00e9.yaml: no such file; 'e\\u0301.yaml' is there, the same name as '\\u00e9.yaml' "
                              "but for Unicode form (a letter composed or not): rename the file or write the name so")
    (tmp_path / "cafe\u0301.txt").write_text("a fox\n", encoding="utf-8")
    m = write(tmp_path / "m.yaml", HEAD + 'params: {prompt: "{{ p }}", quality: 360p}\n'
                                          "matrix:\n  p: {file: caf\u00e9.txt}\n")
    with pytest.raises(ManifestError) as exc:
        load(m)
    said = str(exc.value)
    assert "'cafe\\u0301.txt' is there, the same name as 'caf\\u00e9.txt' but for Unicode form" in said, said
    assert "did you mean" not in said, said


def test_a_manifest_not_there_with_nothing_alike_beside_it_is_only_not_there(tmp_path: Path,
                                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "notes.txt").write_text("x\n", encoding="utf-8")
    (tmp_path / "demo").mkdir()  # a folder is no file meant
    monkeypatch.chdir(tmp_path)
    for typed in ("grid.yaml", "note.yaml", "demo.yam", "missing/demo.yaml"):
        with pytest.raises(ManifestError) as exc:
            load(Path(typed))
        assert str(exc.value) == f"{typed}: no such file", typed


def test_a_manifest_named_dash_is_told_standard_input_is_not_read(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ManifestError) as exc:
        load(Path("-"))
    assert "gridrun reads a manifest from a file, not from standard input" in str(exc.value)


def _in(folder: Path, said: str) -> str:
    """`said` with the folder of the files it names left out."""
    return said.replace(f"{folder}{os.sep}", "")


def test_a_txt_line_of_a_hashtag_is_warned_of_as_a_skipped_comment(tmp_path: Path) -> None:
    """`#cinematic a fox` reads as a prompt to its writer: it stays a comment (an existing project plans as
    before), and is said at its line; a comment written `# ...` is said nothing of."""
    write(tmp_path / "p.txt", "#cinematic a fox in snow\na whale\n# a comment\n#\n#1 shot: a parrot\n")
    manifest = load(write(tmp_path / "m.yaml", HEAD + "matrix:\n  p: {file: p.txt}\n"))
    assert manifest.matrix == {"p": ["a whale"]}
    assert [_in(tmp_path, w).split(": ")[0] for w in manifest.data_warnings] == ["p.txt:1:1", "p.txt:5:1"]
    assert "'#cinematic a fox in snow' is skipped as a comment" in manifest.data_warnings[0]
    assert manifest.data_warnings[0].plain.startswith("matrix.p: ")


def test_a_data_file_reached_through_a_link_out_of_the_manifests_folder_is_warned_of(tmp_path: Path) -> None:
    """A committed `prompts.txt -> ~/.aws/credentials` would send its lines as prompts: said, with where it leads,
    at the field; a link that stays in the folder, or a path written out of it with no link, is not."""
    project, secrets = tmp_path / "project", tmp_path / "home"
    (project / "data").mkdir(parents=True)
    secrets.mkdir()
    write(secrets / "credentials.txt", "aws_access_key_id = AKIAEXAMPLE\n")
    write(project / "data" / "real.txt", "a whale\n")
    write(tmp_path / "shared.txt", "a fox\n")
    (project / "prompts.txt").symlink_to(Path("..") / "home" / "credentials.txt")
    (project / "inside.txt").symlink_to(Path("data") / "real.txt")
    (project / "linked").symlink_to(Path("..") / "home")
    for spec, led in (("prompts.txt", secrets / "credentials.txt"), ("linked/credentials.txt",
                                                                     secrets / "credentials.txt"),
                      ("inside.txt", None), ("../shared.txt", None), ("data/real.txt", None)):
        manifest = load(write(project / "m.yaml", HEAD + f"matrix:\n  p: {{file: {spec}}}\n"))
        said = [w.plain for w in manifest.data_warnings if "link" in w.plain]
        if led is None:
            assert said == [], (spec, said)
        else:
            wanted = (f"matrix.p.file: data file '{spec}' is reached through a link that leads out of the manifest's "
                      f"folder, to {led}: its values are what the jobs send to the provider; check it is the file you "
                      "mean")
            assert said == [wanted], (spec, said)


def test_many_hashtag_lines_of_a_txt_are_one_warning_counting_them(tmp_path: Path) -> None:
    write(tmp_path / "p.txt", "a whale\n" + "".join(f"#tag{i} a fox\n" for i in range(5)))
    manifest = load(write(tmp_path / "m.yaml", HEAD + "matrix:\n  p: {file: p.txt}\n"))
    assert len(manifest.data_warnings) == 1
    assert _in(tmp_path, manifest.data_warnings[0]).startswith("p.txt:2:1: matrix.p: 5 lines starting with '#'")
    assert "'#tag0 a fox'" in manifest.data_warnings[0]


def test_a_csv_cell_opening_with_a_quoted_phrase_is_warned_of_at_its_line(tmp_path: Path) -> None:
    write(tmp_path / "rows.csv", 'id,prompt\nr1,"The End" written on a wall\nr2,a 12" vinyl record\n'
                                 'r3,"a fox" ,x\n')
    with pytest.raises(ManifestError):  # three columns in r3: the rows are checked whole first
        load(write(tmp_path / "m.yaml", HEAD + "matrix:\n  r: {file: rows.csv}\n"))
    write(tmp_path / "rows.csv", 'id,prompt\nr1,"The End" written on a wall\nr2,a 12" vinyl record\n'
                                 'r3,"a fox" \nr4,"two\nlines" "and more"\n')
    manifest = load(write(tmp_path / "m.yaml", HEAD + "matrix:\n  r: {file: rows.csv}\n"))
    assert [r["prompt"] for r in manifest.matrix["r"]] == [  # the values as they always were
        "The End written on a wall", 'a 12" vinyl record', "a fox ", 'two\nlines "and more"']
    warned = list(manifest.data_warnings)
    assert [_in(tmp_path, w).split(": ")[0] for w in warned] == ["rows.csv:2:4", "rows.csv:5:4"]
    assert "matrix.r[0]" in warned[0] and "'The End written on a wall'" in warned[0]
    assert 'write the cell as """The End"" written on a wall"' in warned[0]
    write(tmp_path / "rows.csv", 'id,prompt\nr1,"""The End"" written on a wall"\n')
    manifest = load(write(tmp_path / "m.yaml", HEAD + "matrix:\n  r: {file: rows.csv}\n"))
    assert manifest.matrix["r"][0]["prompt"] == '"The End" written on a wall' and manifest.data_warnings == ()


@pytest.mark.parametrize(("text", "said"), [
    ("\ufeffid;prompt;quality\r\na1;a red fox;540p\r\n", "one column 'id;prompt;quality': this file seems separated "
                                                          "by ';'"),
    ("id\tprompt\na1\ta fox\n", "one column 'id\\tprompt': this file seems separated by tabs"),
    ("sep=;\na1;a fox\n", "its first line 'sep=;' says it is separated by ';'"),
])
def test_a_csv_separated_otherwise_is_said_once_at_its_first_line(tmp_path: Path, text: str, said: str) -> None:
    write(tmp_path / "rows.csv", text)
    manifest = load(write(tmp_path / "m.yaml", HEAD + "matrix:\n  r: {file: rows.csv}\n"))
    assert len(manifest.data_warnings) == 1
    assert _in(tmp_path, manifest.data_warnings[0]).startswith(f"rows.csv:1:1: matrix.r: the header row is {said}"
                                                if not said.startswith("its") else f"rows.csv:1:1: matrix.r: {said}")
    assert "save the file comma-separated" in manifest.data_warnings[0]
    write(tmp_path / "rows.csv", text.replace("a red fox", "a red fox, running"))
    if "," in text.replace("a red fox", "a red fox, running"):  # a comma in a cell: the file is refused, and said
        with pytest.raises(ManifestError) as exc:
            load(write(tmp_path / "m.yaml", HEAD + "matrix:\n  r: {file: rows.csv}\n"))
        assert "separated by ';'" in exc.value.warnings[0]


def test_a_csv_with_excels_sep_line_first_is_read_from_the_next(tmp_path: Path) -> None:
    write(tmp_path / "rows.csv", "sep=,\r\nid,prompt\r\na1,a fox\r\na2,\"an owl\"\r\n")
    manifest = load(write(tmp_path / "m.yaml", HEAD + "matrix:\n  r: {file: rows.csv}\n"))
    assert manifest.matrix == {"r": [{"id": "a1", "prompt": "a fox"}, {"id": "a2", "prompt": "an owl"}]}
    assert manifest.data_lines[("matrix", "r")].positions == ((3, 1), (4, 1))


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no named pipes here")
def test_a_data_file_that_is_a_named_pipe_is_refused_unopened(tmp_path: Path) -> None:
    import threading

    fifo = tmp_path / "rows.csv"
    os.mkfifo(fifo)
    path = write(tmp_path / "m.yaml", HEAD + "matrix:\n  row: {file: rows.csv}\n")
    said: list[BaseException] = []

    def load_it() -> None:
        try:
            load(path)
        except BaseException as exc:  # noqa: BLE001 - handed to the test's thread
            said.append(exc)

    reader = threading.Thread(target=load_it, daemon=True)
    reader.start()
    reader.join(30)
    if reader.is_alive():  # the pipe was opened: writers let each opening go, so that the test cannot hang
        while reader.is_alive():
            try:
                os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
            except OSError:  # no reader has it open this moment
                pass
            reader.join(0.1)
        pytest.fail("the named pipe was opened, and its reader waited for a writer")
    assert len(said) == 1 and isinstance(said[0], ManifestError), said
    error = said[0]
    assert (error.file.name, error.line) == ("m.yaml", HEAD.count("\n") + 2)
    assert "data file 'rows.csv': is a named pipe, not a regular file" in error.message


def test_a_csv_row_of_one_field_is_said_in_the_singular(tmp_path: Path) -> None:
    write(tmp_path / "shots.csv", "id,prompt,quality\r\na1,a red fox,540p\r\n  \r\n")
    with pytest.raises(ManifestError) as exc:
        load(write(tmp_path / "m.yaml", HEAD + "matrix:\n  row: {file: shots.csv}\n"))
    assert exc.value.line == 3
    assert exc.value.message == "this row has 1 field but the header row has 3"


def test_a_csv_row_of_empty_cells_is_a_data_file_warning_of_the_manifest(tmp_path: Path) -> None:
    """Said as the other warnings of reading a data file are (`Manifest.data_warnings`), its plain form naming the
    row; not said beside the errors of a file refused for another row."""
    write(tmp_path / "st.csv", "style,notes\nclay,x\n,\n")
    manifest = load(write(tmp_path / "m.yaml", HEAD + "matrix:\n  r: {file: st.csv}\n"))
    assert [_in(tmp_path, w).split(": every cell")[0] for w in manifest.data_warnings] == ["st.csv:3:1: matrix.r[1]"]
    assert manifest.data_warnings[0].plain.startswith("matrix.r[1]: every cell of this row is empty")
    write(tmp_path / "st.csv", "style,notes\nclay,x\n,\nwax\n")
    with pytest.raises(ManifestError) as exc:
        load(tmp_path / "m.yaml")
    assert exc.value.line == 4 and not any("every cell" in w for w in getattr(exc.value, "warnings", ())), exc.value


@pytest.mark.parametrize(("rows", "column", "hint"), [
    ("1,a red fox, running\n", 12, '; a cell holding a comma must be quoted: "a red fox, running"'),
    ('"1",a fox, running, jumping\n', 10, '; a cell holding a comma must be quoted: "a fox, running, jumping"'),
    ("1,a,b\n", 1, '; a cell holding a comma must be quoted, as in "a red fox, running"'),
])
def test_a_csv_row_of_too_many_fields_points_at_the_comma_and_says_to_quote_the_cell(
        tmp_path: Path, rows: str, column: int, hint: str) -> None:
    """A prompt's comma left unquoted is the most common slip of a hand-edited CSV: the error is at that comma
    (a comma followed by a space, prose's), and says to quote the cell, as the header row would read it."""
    (tmp_path / "shots.csv").write_text("id,prompt\n" + rows + "2,an owl\n", encoding="utf-8")
    m = write(tmp_path / "m.yaml", "version: 1\nname: x\nmodel: pixverse-v5.6\nparams:\n  prompt: \"{{ s.prompt }}\"\n"
                                   "matrix:\n  s: {file: shots.csv}\n")
    with pytest.raises((ManifestError, ManifestErrors)) as exc:
        load(m)
    errors = exc.value.errors if isinstance(exc.value, ManifestErrors) else [exc.value]
    [err] = [e for e in errors if "fields but the header row has 2" in e.message]
    assert (err.file.name, err.line, err.column) == ("shots.csv", 2, column), err
    assert err.message.endswith(f"this row has {3 + (rows.count(', ') > 1)} fields but the header row has 2{hint}"), err
