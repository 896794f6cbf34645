from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from runner.errors import ManifestError, ManifestErrors, MatrixError
from runner.matrix import SINGLE, Combination, Expansion, expand, matrix_of_file


def dicts(expansion: Expansion) -> list[dict[str, Any]]:
    return [c.as_dict() for c in expansion.combinations]


def pairs(expansion: Expansion) -> list[list[tuple[str, Any]]]:
    return [list(c.values) for c in expansion.combinations]


def errors_of(exc: pytest.ExceptionInfo[BaseException]) -> list[ManifestError]:
    if isinstance(exc.value, ManifestErrors):
        return exc.value.errors
    assert isinstance(exc.value, ManifestError)
    return [exc.value]


# --- GitHub's documented examples ------------------------------------------------------------


def test_github_docs_include_example_gives_six_combinations_in_order() -> None:
    matrix = {
        "fruit": ["apple", "pear"],
        "animal": ["cat", "dog"],
        "include": [
            {"color": "green"},
            {"color": "pink", "animal": "cat"},
            {"fruit": "apple", "shape": "circle"},
            {"fruit": "banana"},
            {"fruit": "banana", "animal": "cat"},
        ],
    }
    result = expand(matrix)
    assert dicts(result) == [
        {"fruit": "apple", "animal": "cat", "color": "pink", "shape": "circle"},
        {"fruit": "apple", "animal": "dog", "color": "green", "shape": "circle"},
        {"fruit": "pear", "animal": "cat", "color": "pink"},
        {"fruit": "pear", "animal": "dog", "color": "green"},
        {"fruit": "banana"},
        {"fruit": "banana", "animal": "cat"},
    ]
    assert [list(c.as_dict()) for c in result.combinations][:2] == [
        ["fruit", "animal", "color", "shape"],
        ["fruit", "animal", "color", "shape"],
    ]
    assert [c.origin for c in result.combinations] == [
        "product",
        "product",
        "product",
        "product",
        "include 4",
        "include 5",
    ]
    assert result.combinations[0].sources == (
        ("fruit", "matrix"),
        ("animal", "matrix"),
        ("color", "include 2"),
        ("shape", "include 3"),
    )
    assert result.combinations[1].sources[2] == ("color", "include 1")
    assert result.excluded == ()


def test_github_docs_matrix_order_first_key_varies_slowest() -> None:
    result = expand({"version": [10, 12, 14], "os": ["ubuntu-latest", "windows-latest"]})
    assert dicts(result) == [
        {"version": 10, "os": "ubuntu-latest"},
        {"version": 10, "os": "windows-latest"},
        {"version": 12, "os": "ubuntu-latest"},
        {"version": 12, "os": "windows-latest"},
        {"version": 14, "os": "ubuntu-latest"},
        {"version": 14, "os": "windows-latest"},
    ]


def test_github_docs_exclude_example() -> None:
    matrix = {
        "os": ["macos-latest", "windows-latest"],
        "version": [12, 14, 16],
        "environment": ["staging", "production"],
        "exclude": [
            {"os": "macos-latest", "version": 12, "environment": "production"},
            {"os": "windows-latest", "version": 16},
        ],
    }
    result = expand(matrix)
    assert len(result.combinations) == 9
    assert {"os": "macos-latest", "version": 12, "environment": "production"} not in dicts(result)
    assert all(not (d["os"] == "windows-latest" and d["version"] == 16) for d in dicts(result))
    assert [(c.as_dict(), n) for c, n in result.excluded] == [
        ({"os": "macos-latest", "version": 12, "environment": "production"}, 1),
        ({"os": "windows-latest", "version": 16, "environment": "staging"}, 2),
        ({"os": "windows-latest", "version": 16, "environment": "production"}, 2),
    ]


def test_github_docs_include_only_matrix_is_an_explicit_list() -> None:
    matrix = {
        "include": [
            {"site": "production", "datacenter": "site-a"},
            {"site": "staging", "datacenter": "site-b"},
        ]
    }
    result = expand(matrix)
    assert pairs(result) == [
        [("site", "production"), ("datacenter", "site-a")],
        [("site", "staging"), ("datacenter", "site-b")],
    ]
    assert [c.origin for c in result.combinations] == ["include 1", "include 2"]


# --- include and exclude semantics (MatrixBuilder.cs), table-driven --------------------------

ARCH_OS = {"arch": ["x64", "x86"], "os": ["linux", "windows"]}

SEMANTICS = [
    pytest.param(
        {**ARCH_OS},
        [
            {"arch": "x64", "os": "linux"},
            {"arch": "x64", "os": "windows"},
            {"arch": "x86", "os": "linux"},
            {"arch": "x86", "os": "windows"},
        ],
        id="builder-example-1-cross-product",
    ),
    pytest.param(
        {**ARCH_OS, "exclude": [{"arch": "x86", "os": "linux"}]},
        [{"arch": "x64", "os": "linux"}, {"arch": "x64", "os": "windows"}, {"arch": "x86", "os": "windows"}],
        id="builder-example-2-exclude",
    ),
    pytest.param(
        {**ARCH_OS, "include": [{"arch": "x64", "os": "linux", "publish": True}]},
        [
            {"arch": "x64", "os": "linux", "publish": True},
            {"arch": "x64", "os": "windows"},
            {"arch": "x86", "os": "linux"},
            {"arch": "x86", "os": "windows"},
        ],
        id="builder-example-3-include-adds-a-value",
    ),
    pytest.param(
        {**ARCH_OS, "include": [{"arch": "x64"}, {"os": "macos"}]},
        [
            {"arch": "x64", "os": "linux"},
            {"arch": "x64", "os": "windows"},
            {"arch": "x86", "os": "linux"},
            {"arch": "x86", "os": "windows"},
            {"os": "macos"},
        ],
        id="builder-example-4-as-the-code-does-it",
    ),
    pytest.param(
        {**ARCH_OS, "include": [{"arch": "x64", "os": "macos"}]},
        [
            {"arch": "x64", "os": "linux"},
            {"arch": "x64", "os": "windows"},
            {"arch": "x86", "os": "linux"},
            {"arch": "x86", "os": "windows"},
            {"arch": "x64", "os": "macos"},
        ],
        id="builder-example-4-as-one-entry",
    ),
    pytest.param(
        {"arch": ["x64", "x86"], "config": ["release", "debug"], "include": [{"arch": "arm64", "config": "debug"}]},
        [
            {"arch": "x64", "config": "release"},
            {"arch": "x64", "config": "debug"},
            {"arch": "x86", "config": "release"},
            {"arch": "x86", "config": "debug"},
            {"arch": "arm64", "config": "debug"},
        ],
        id="unmatched-include-is-appended",
    ),
    pytest.param(
        {"fruit": ["apple"], "include": [{"fruit": "apple", "color": "red"}, {"fruit": "apple", "color": "green"}]},
        [{"fruit": "apple", "color": "green"}],
        id="later-include-overwrites-added-value",
    ),
    pytest.param(
        {"fruit": ["apple", "pear"], "include": [{"fruit": "pear", "fruit_color": "green"}, {"fruit_color": "red"}]},
        [{"fruit": "apple", "fruit_color": "red"}, {"fruit": "pear", "fruit_color": "red"}],
        id="added-values-never-block-a-match",
    ),
    pytest.param(
        {"fruit": ["apple", "pear"], "include": [{"fruit": "apple", "animal": "cat"}, {"fruit": "kiwi"}]},
        [{"fruit": "apple", "animal": "cat"}, {"fruit": "pear"}, {"fruit": "kiwi"}],
        id="original-value-is-never-overwritten",
    ),
    pytest.param(
        {"fruit": ["apple"], "include": [{"fruit": "banana"}, {"fruit": "banana", "color": "yellow"}]},
        [{"fruit": "apple"}, {"fruit": "banana"}, {"fruit": "banana", "color": "yellow"}],
        id="include-never-merges-into-an-include-created-combination",
    ),
    pytest.param(
        {"fruit": ["apple", "pear"], "exclude": [{"fruit": "apple"}], "include": [{"fruit": "apple", "color": "red"}]},
        [{"fruit": "pear"}, {"fruit": "apple", "color": "red"}],
        id="exclude-applies-before-include",
    ),
    pytest.param(
        {**ARCH_OS, "exclude": [{"os": "linux"}]},
        [{"arch": "x64", "os": "windows"}, {"arch": "x86", "os": "windows"}],
        id="exclude-is-a-partial-match",
    ),
    pytest.param(
        {**ARCH_OS, "exclude": [{"os": "macos"}]},
        [
            {"arch": "x64", "os": "linux"},
            {"arch": "x64", "os": "windows"},
            {"arch": "x86", "os": "linux"},
            {"arch": "x86", "os": "windows"},
        ],
        id="exclude-matching-nothing-removes-nothing",
    ),
    pytest.param(
        {"os": ["linux"], "exclude": [{"os": "linux"}], "include": [{"extra": 1}]},
        [{"extra": 1}],
        id="all-excluded-include-becomes-a-combination",
    ),
    pytest.param(
        {"os": ["linux", "windows"], "include": [{"os": "windows", "shell": "pwsh"}, {"shell": "bash"}]},
        [{"os": "linux", "shell": "bash"}, {"os": "windows", "shell": "bash"}],
        id="entry-without-axis-keys-matches-every-combination",
    ),
    pytest.param(
        {
            "node": [{"version": 14, "npm": 6}, {"version": 16, "npm": 8}],
            "exclude": [{"node": {"version": 14}}],
            "include": [{"node": {"version": 16}, "lts": True}],
        },
        [{"node": {"version": 16, "npm": 8}, "lts": True}],
        id="mapping-values-match-leaf-by-leaf",
    ),
    pytest.param(
        {"node": [{"version": 14}], "include": [{"node": {"version": 14, "npm": 6}, "x": 1}]},
        [{"node": {"version": 14}}, {"node": {"version": 14, "npm": 6}, "x": 1}],
        id="mapping-leaf-missing-in-value-does-not-match",
    ),
    pytest.param(
        {"flags": [["-O2", "-g"], ["-O0"]], "exclude": [{"flags": ["-O2"]}]},
        [{"flags": ["-O0"]}],
        id="list-values-match-element-by-element",
    ),
    pytest.param(
        {"os": ["linux"], "include": [{"os": "linux", "flags": ["-O2", "-g"]}]},
        [{"os": "linux", "flags": ["-O2", "-g"]}],
        id="list-under-an-added-key-is-a-value",
    ),
]


@pytest.mark.parametrize(("matrix", "expected"), SEMANTICS)
def test_include_exclude_semantics(matrix: dict[str, Any], expected: list[dict[str, Any]]) -> None:
    assert dicts(expand(matrix)) == expected


def test_unmatched_include_puts_axis_keys_first_like_github() -> None:
    result = expand({"fruit": ["apple"], "include": [{"color": "pink", "fruit": "banana"}]})
    assert list(result.combinations[1].values) == [("fruit", "banana"), ("color", "pink")]


def test_added_keys_keep_the_position_of_their_first_addition() -> None:
    result = expand({"a": [1], "include": [{"x": 1}, {"y": 2}, {"x": 3}]})
    assert list(result.combinations[0].values) == [("a", 1), ("x", 3), ("y", 2)]
    assert result.combinations[0].sources == (("a", "matrix"), ("x", "include 3"), ("y", "include 2"))


def test_all_excluded_matrix_expands_to_nothing() -> None:
    result = expand({"os": ["linux", "macos"], "exclude": [{"os": "linux"}, {"os": "macos"}]})
    assert result.combinations == ()
    assert [(c.as_dict(), n) for c, n in result.excluded] == [({"os": "linux"}, 1), ({"os": "macos"}, 2)]


def test_excluded_records_the_first_entry_that_matched() -> None:
    result = expand({"os": ["linux"], "exclude": [{"os": "LINUX"}, {"os": "linux"}]})
    assert result.excluded[0][1] == 1


def test_an_exclude_that_matches_no_combination_is_reported_with_the_values_no_combination_has() -> None:
    """GitHub removes nothing for it (no error), but a typo in an exclude value means jobs that were to go."""
    result = expand({"style": ["anime", "clay"], "seed": [1, 2], "exclude": [
        {"style": "anme"}, {"style": "clay", "seed": 2}, {"style": ["anime", "clya"], "seed": 7},
        {"style": "Anime"}, {"style": ["clya", "anme"], "seed": [8, 1]},
    ]})
    assert dicts(result) == [{"style": "clay", "seed": 1}]
    assert result.unmatched == ((0, "no job has style=anme"), (2, "no job has seed=7"),
                                (4, "no job has style=clya or anme"))
    zipped = expand({"zip": [{"prompt": ["fox", "owl"], "seed": [1, 2]}], "exclude": [{"prompt": "fox", "seed": 2}]})
    assert len(zipped.combinations) == 2
    assert zipped.unmatched == ((0, "no job has prompt=fox with seed=2"),)
    assert expand({"os": ["linux"], "exclude": [{"os": "linux"}]}).unmatched == ()


# --- value equality: GitHub expression `==` --------------------------------------------------

EQUALITY = [
    pytest.param(["linux", "Linux", "macos"], "LINUX", ["macos"], id="strings-ignore-case"),
    pytest.param(["straße"], "STRASSE", ["straße"], id="no-full-case-folding"),
    pytest.param([14, 16], "14", [16], id="numeric-string-equals-number"),
    pytest.param(["14", "16"], 14, ["16"], id="number-equals-numeric-string"),
    pytest.param(["14.0", " 14 ", "0x0e", "1.4e1", "14a"], 14, ["14a"], id="string-to-number-conversion"),
    pytest.param([1, 1.0, 2], 1.0, [2], id="int-equals-float"),
    pytest.param([True, False], 1, [False], id="true-equals-one"),
    pytest.param([True, False], "true", [True, False], id="true-is-not-the-string-true"),
    pytest.param([True, "1", "yes"], True, ["yes"], id="true-equals-string-one"),
    pytest.param([None, 0, "", "0", False, " ", "x"], None, ["x"], id="null-equals-zero-false-and-empty"),
    pytest.param([float("nan"), 1], float("nan"), [float("nan"), 1], id="nan-never-equal"),
    pytest.param([{"a": 1}, ["a"], "a"], "a", [{"a": 1}, ["a"]], id="collections-never-equal-a-scalar"),
    pytest.param([1234567890123456789, 5], 1234567890123456789, [5], id="a-number-of-19-digits-matches-itself"),
    pytest.param([1789012345678901234, 1789012345678905678, 42], 1789012345678905678, [1789012345678901234, 42],
                 id="not-a-neighbour-that-rounds-alike-to-15-digits"),
    pytest.param([0.1234567890123456, 1], 0.1234567890123456, [1], id="a-float-of-16-digits-matches-itself"),
    pytest.param([1234567890123450000, 5], 1234567890123451234, [5], id="else-entry-numbers-rounded-to-15-digits"),
    pytest.param([0.1 + 0.2, 0.3], 0.3, [0.1 + 0.2], id="float-noise-in-the-axis-value-counts"),
    pytest.param([0.3], 0.1 + 0.2, [], id="float-noise-in-the-entry-is-rounded-away"),
]


@pytest.mark.parametrize(("values", "entry", "kept"), EQUALITY)
def test_exclude_uses_github_equality(values: list[Any], entry: Any, kept: list[Any]) -> None:
    result = expand({"v": values, "exclude": [{"v": entry}]})
    got = [c.as_dict()["v"] for c in result.combinations]
    assert repr(got) == repr(kept)


def test_an_include_of_a_long_number_extends_the_job_of_that_number() -> None:
    result = expand({"post": [1789012345678901234, 1789012345678905678], "include": [
        {"post": 1789012345678901234, "quality": "1080p"}]})
    assert dicts(result) == [{"post": 1789012345678901234, "quality": "1080p"}, {"post": 1789012345678905678}]
    assert result.unmatched == ()


def test_entry_keys_match_axes_without_case() -> None:
    result = expand({"os": ["linux", "macos"], "exclude": [{"OS": "linux"}], "include": [{"Os": "macos", "x": 1}]})
    assert dicts(result) == [{"os": "macos", "x": 1}]


def test_added_keys_merge_without_case_and_keep_the_first_spelling() -> None:
    result = expand({"os": ["linux"], "include": [{"Color": "green"}, {"color": "pink"}]})
    assert list(result.combinations[0].values) == [("os", "linux"), ("Color", "pink")]


def test_unmatched_include_keeps_the_entry_spelling() -> None:
    result = expand({"os": ["linux"], "include": [{"OS": "bsd"}]})
    assert list(result.combinations[1].values) == [("OS", "bsd")]


def test_nested_keys_match_without_case() -> None:
    result = expand({"node": [{"Version": 14}, {"Version": 16}], "exclude": [{"node": {"version": 14}}]})
    assert dicts(result) == [{"node": {"Version": 16}}]


# --- rejections ------------------------------------------------------------------------------

REJECTIONS = [
    pytest.param({"os": []}, ("os",), "axis 'os' has no values", id="empty-axis"),
    pytest.param({"os": "linux"}, ("os",), "axis 'os' must be a list of values, got the string 'linux'", id="scalar-axis"),
    pytest.param({"os": {"a": 1}}, ("os",), "got a mapping with keys: a", id="mapping-axis"),
    pytest.param({}, (), "needs at least one axis", id="empty-matrix"),
    pytest.param({"exclude": [{"os": "linux"}]}, (), "needs at least one axis", id="only-exclude"),
    pytest.param({"include": []}, (), "needs at least one axis", id="empty-include-only"),
    pytest.param({"os": ["a"], "include": {"os": "b"}}, ("include",), "include must be a list of mappings", id="include-mapping"),
    pytest.param({"os": ["a"], "include": None}, ("include",), "include must be a list of mappings, got null", id="include-null"),
    pytest.param({"os": ["a"], "include": ["b"]}, ("include", 0), "each include entry must be a mapping", id="include-item-scalar"),
    pytest.param({"os": ["a"], "include": [{}]}, ("include", 0), "must set at least one key", id="include-item-empty"),
    pytest.param({"os": ["a"], "exclude": "a"}, ("exclude",), "exclude must be a list of mappings", id="exclude-scalar"),
    pytest.param({"os": ["a"], "exclude": [[1]]}, ("exclude", 0), "each exclude entry must be a mapping", id="exclude-item-list"),
    pytest.param({"os": ["a"], "exclude": [{}]}, ("exclude", 0), "empty exclude entry", id="exclude-item-empty"),
    pytest.param(
        {"os": ["a"], "exclude": [{"colour": "x"}]},
        ("exclude", 0, "colour"),
        "exclude key 'colour' does not match any axis of the matrix (axes: os)",
        id="exclude-unknown-key",
    ),
    pytest.param({"os": ["a"], "OS": ["b"]}, ("OS",), "'OS' and 'os' name the same axis", id="axes-differ-in-case"),
    pytest.param(
        {"os": ["a"], "include": [{"x": 1, "X": 2}]}, ("include", 0, "X"), "are the same key", id="entry-keys-differ-in-case"
    ),
    pytest.param([1, 2], (), "a matrix is a mapping", id="not-a-mapping"),
    pytest.param({1: [1]}, (1,), "matrix keys must be non-empty strings", id="non-string-key"),
]


@pytest.mark.parametrize(("matrix", "path", "message"), REJECTIONS)
def test_rejected_matrices(matrix: Any, path: tuple[Any, ...], message: str) -> None:
    seen: list[tuple[tuple[Any, ...], str]] = []

    def error(p: tuple[Any, ...], m: str) -> Exception:
        seen.append((p, m))
        return MatrixError(m, file="m.yaml", field=str(p))

    with pytest.raises((MatrixError, ManifestErrors)):
        expand(matrix, error=error)
    assert any(p == path and message in m for p, m in seen), seen


def test_default_error_is_a_matrix_error_with_a_field() -> None:
    with pytest.raises(MatrixError) as exc:
        expand({"os": ["a"], "include": [{"os": "b"}, "oops"]})
    assert exc.value.field == "include[1]"
    assert str(exc.value).startswith("<matrix>: include[1]: each include entry must be a mapping")


def test_several_problems_are_reported_together() -> None:
    with pytest.raises(ManifestErrors) as exc:
        expand({"a": [], "b": "x", "exclude": "nope"})
    assert [e.field for e in exc.value.errors] == ["a", "b", "exclude"]


def test_an_unread_file_axis_is_an_error() -> None:
    with pytest.raises(MatrixError, match="read when a manifest is loaded"):
        expand({"prompt": {"file": "prompts.txt"}})


# --- extension: lists inside include and exclude ---------------------------------------------


def test_list_in_exclude_expands_to_the_product_of_its_lists() -> None:
    matrix = {
        "style": ["anime", "clay", "comic"],
        "seed": [1, 2, 3],
        "exclude": [{"style": ["clay", "comic"], "seed": [2, 3]}],
    }
    result = expand(matrix)
    assert [(c.as_dict()["style"], c.as_dict()["seed"]) for c in result.combinations] == [
        ("anime", 1),
        ("anime", 2),
        ("anime", 3),
        ("clay", 1),
        ("comic", 1),
    ]
    assert [n for _, n in result.excluded] == [1, 1, 1, 1]


def test_list_in_include_expands_into_one_entry_per_value_in_order() -> None:
    matrix = {
        "style": ["anime", "clay"],
        "seed": [1],
        "include": [{"style": ["clay", "comic", "noir"], "quality": "1080p"}],
    }
    result = expand(matrix)
    assert dicts(result) == [
        {"style": "anime", "seed": 1},
        {"style": "clay", "seed": 1, "quality": "1080p"},
        {"style": "comic", "quality": "1080p"},
        {"style": "noir", "quality": "1080p"},
    ]
    assert [c.origin for c in result.combinations] == ["product", "product", "include 1", "include 1"]


def test_list_in_include_expands_as_a_product_first_key_slowest() -> None:
    result = expand({"a": [0], "b": [0], "include": [{"a": [1, 2], "b": [3, 4]}]})
    assert dicts(result)[1:] == [{"a": 1, "b": 3}, {"a": 1, "b": 4}, {"a": 2, "b": 3}, {"a": 2, "b": 4}]


def test_list_under_an_axis_of_lists_keeps_github_meaning() -> None:
    result = expand({"flags": [["a", "b"], ["c"]], "include": [{"flags": ["c"], "x": 1}]})
    assert dicts(result) == [{"flags": ["a", "b"]}, {"flags": ["c"], "x": 1}]


@pytest.mark.parametrize(("entry", "path", "what"), [
    pytest.param({"include": [{"os": [], "quality": "1080p"}]}, ("include", 0, "os"), "an empty list", id="include"),
    pytest.param({"exclude": [{"os": [], "arch": "arm"}]}, ("exclude", 0, "os"), "an empty list", id="exclude"),
    pytest.param({"include": [{"os": {}, "x": 1}]}, ("include", 0, "os"), "an empty mapping", id="mapping"),
    pytest.param({"exclude": [{"os": ["linux", []]}]}, ("exclude", 0, "os", 1), "an empty list", id="in-a-list"),
    pytest.param({"include": [{"os": {"name": []}, "x": 1}]}, ("include", 0, "os"), "a mapping with no value in it",
                 id="nested"),
])
def test_an_empty_list_or_mapping_under_an_axis_key_is_refused_at_it(entry: dict[str, Any], path: tuple[Any, ...],
                                                                    what: str) -> None:
    """It names no value, so it would test nothing of the axis: an include would then extend every job (each paid at
    its values), an exclude would remove by its other keys alone."""
    found: list[tuple[tuple[Any, ...], str]] = []

    def error(at: tuple[Any, ...], message: str) -> Exception:
        found.append((at, message))
        return MatrixError(message, file="<matrix>")

    with pytest.raises(MatrixError):
        expand({"os": ["linux", "macos"], "arch": ["x86", "arm"], **entry}, error=error)
    assert found == [(path, f"{what} matches no value of axis 'os' (read as no condition, it would match every job); "
                            "give the values this entry is for (os: [linux, macos]), or leave the key out "
                            + ("for an entry that extends every job" if path[0] == "include"
                               else "to exclude by the other keys"))]


# --- extension: zip --------------------------------------------------------------------------


def test_zip_group_is_one_axis_at_its_declaration_position() -> None:
    matrix = {
        "style": ["anime", "clay"],
        "zip": [{"prompt": ["fox", "owl", "cat"], "seed": [1, 2, 3]}],
        "quality": ["540p"],
    }
    result = expand(matrix)
    assert len(result.combinations) == 6
    assert list(result.combinations[0].values) == [
        ("style", "anime"),
        ("prompt", "fox"),
        ("seed", 1),
        ("quality", "540p"),
    ]
    assert [(d["style"], d["prompt"], d["seed"]) for d in dicts(result)] == [
        ("anime", "fox", 1),
        ("anime", "owl", 2),
        ("anime", "cat", 3),
        ("clay", "fox", 1),
        ("clay", "owl", 2),
        ("clay", "cat", 3),
    ]
    assert result.combinations[0].sources == (
        ("style", "matrix"),
        ("prompt", "zip 1"),
        ("seed", "zip 1"),
        ("quality", "matrix"),
    )


def test_several_zip_groups_are_several_axes() -> None:
    result = expand({"zip": [{"a": [1, 2], "b": [3, 4]}, {"c": ["x", "y"]}]})
    assert dicts(result) == [
        {"a": 1, "b": 3, "c": "x"},
        {"a": 1, "b": 3, "c": "y"},
        {"a": 2, "b": 4, "c": "x"},
        {"a": 2, "b": 4, "c": "y"},
    ]
    assert result.combinations[0].sources[2] == ("c", "zip 2")


def test_zip_keys_work_in_include_and_exclude() -> None:
    matrix = {
        "zip": [{"prompt": ["fox", "owl"], "seed": [1, 2]}],
        "exclude": [{"seed": 2}],
        "include": [{"prompt": "fox", "quality": "1080p"}, {"prompt": "owl", "seed": 9}],
    }
    assert dicts(expand(matrix)) == [
        {"prompt": "fox", "seed": 1, "quality": "1080p"},
        {"prompt": "owl", "seed": 9},
    ]


def test_zip_accepts_range_and_linspace() -> None:
    result = expand({"zip": [{"seed": {"range": [1, 3]}, "cfg": {"linspace": [1, 2, 3]}}]})
    assert dicts(result) == [{"seed": 1, "cfg": 1.0}, {"seed": 2, "cfg": 1.5}, {"seed": 3, "cfg": 2.0}]


def test_zip_lists_of_different_lengths_are_an_error_naming_keys_and_lengths() -> None:
    with pytest.raises(MatrixError) as exc:
        expand({"zip": [{"prompt": ["a", "b", "c"], "seed": [1, 2]}]})
    assert exc.value.field == "zip[0]"
    assert "prompt has 3, seed has 2" in exc.value.message


@pytest.mark.parametrize(
    ("matrix", "message"),
    [
        pytest.param({"zip": {"a": [1]}}, "zip takes a list of groups", id="not-a-list"),
        pytest.param({"zip": []}, "zip takes a list of groups", id="empty"),
        pytest.param({"zip": [[1, 2]]}, "zip group 1 must be a non-empty mapping", id="group-not-mapping"),
        pytest.param({"zip": [{"a": []}]}, "axis 'a' has no values", id="empty-list"),
        pytest.param({"a": [1], "zip": [{"a": [1]}]}, "'a' is an axis already", id="clashes-with-axis"),
        pytest.param({"a": [1], "zip": [{"A": [1]}]}, "'A' and 'a' name the same axis", id="clashes-with-axis-by-case"),
        pytest.param({"zip": [{"include": [1]}]}, "'include' cannot name an axis", id="reserved-name"),
    ],
)
def test_zip_rejections(matrix: dict[str, Any], message: str) -> None:
    with pytest.raises((MatrixError, ManifestErrors), match=message):
        expand(matrix)


# --- extension: range and linspace -----------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "values"),
    [
        pytest.param([1, 3], [1, 2, 3], id="inclusive"),
        pytest.param([1, 9, 2], [1, 3, 5, 7, 9], id="a1111-style-step"),
        pytest.param([1, 10, 4], [1, 5, 9], id="stop-not-on-step"),
        pytest.param([5, 1, -2], [5, 3, 1], id="negative-step"),
        pytest.param([-2, 2, 2], [-2, 0, 2], id="negative-start"),
        pytest.param([7, 7], [7], id="single"),
    ],
)
def test_range_is_inclusive(spec: list[int], values: list[int]) -> None:
    result = expand({"seed": {"range": spec}})
    assert [c.as_dict()["seed"] for c in result.combinations] == values
    assert result.combinations[0].sources == (("seed", "range"),)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        pytest.param([1, 5, 0], "cannot be 0", id="zero-step"),
        pytest.param([5, 1], "is empty; to count down, give a negative step: [5, 1, -1]", id="empty"),
        pytest.param([1, 5, -1], "is empty", id="empty-negative"),
        pytest.param([1], "range takes [start, stop]", id="too-short"),
        pytest.param([1, 2, 3, 4], "range takes [start, stop]", id="too-long"),
        pytest.param([1, 2.5], "of integers", id="float"),
        pytest.param([True, 3], "of integers", id="bool"),
        pytest.param("1-9", "range takes", id="string"),
        pytest.param([0, 2**63 - 1], "range has 9,223,372,036,854,775,808 values; the limit is", id="past-ssize_t"),
        pytest.param([1, 10**20, 7], "range has 14,285,714,285,714,285,715 values", id="huge-with-step"),
    ],
)
def test_range_rejections(spec: Any, message: str) -> None:
    with pytest.raises(MatrixError) as exc:
        expand({"seed": {"range": spec}})
    assert message in exc.value.message
    assert exc.value.field.startswith("seed.range")


@pytest.mark.parametrize(
    ("spec", "values"),
    [
        pytest.param([0, 1, 5], [0.0, 0.25, 0.5, 0.75, 1.0], id="quarters"),
        pytest.param([0, 1, 4], [0.0, 0.3333333333, 0.6666666667, 1.0], id="rounded-to-10-digits"),
        pytest.param([1, 0, 3], [1.0, 0.5, 0.0], id="descending"),
        pytest.param([0.1, 0.7, 7], [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7], id="no-float-noise"),
        pytest.param([-1, 1, 3], [-1.0, 0.0, 1.0], id="through-zero"),
        pytest.param([-1e308, 1e308, 3], [-1e308, 0.0, 1e308], id="span-past-the-largest-float"),
    ],
)
def test_linspace(spec: list[Any], values: list[float]) -> None:
    result = expand({"cfg": {"linspace": spec}})
    assert [c.as_dict()["cfg"] for c in result.combinations] == values
    assert result.combinations[0].sources == (("cfg", "linspace"),)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        pytest.param([0, 1, 1], "count of at least 2", id="count-1"),
        pytest.param([0, 1], "linspace takes [start, stop, count]", id="short"),
        pytest.param([0, 1, 2.0], "linspace takes", id="float-count"),
        pytest.param(["a", 1, 3], "linspace takes", id="string"),
        pytest.param([0, float("inf"), 3], "linspace takes", id="infinite"),
    ],
)
def test_linspace_rejections(spec: Any, message: str) -> None:
    with pytest.raises(MatrixError, match=message.replace("[", r"\[")):
        expand({"cfg": {"linspace": spec}})


def test_range_values_match_include_entries() -> None:
    result = expand({"seed": {"range": [1, 3]}, "include": [{"seed": "2", "note": "numeric string"}]})
    assert dicts(result)[1] == {"seed": 2, "note": "numeric string"}


def test_huge_matrix_is_refused_before_it_is_built() -> None:
    with pytest.raises(MatrixError, match="combinations"):
        expand({"a": {"range": [1, 10000]}, "b": {"range": [1, 10000]}})


# --- shape and speed -------------------------------------------------------------------------


def test_combination_is_frozen_and_ordered() -> None:
    combination = expand({"b": [1], "a": [2]}).combinations[0]
    assert isinstance(combination, Combination)
    assert list(combination.as_dict()) == ["b", "a"]
    with pytest.raises(AttributeError):
        combination.origin = "x"  # type: ignore[misc]


def test_single_is_one_empty_combination() -> None:
    assert SINGLE.combinations == (Combination((), "product", ()),)


def test_expanding_100000_combinations_keeps_and_excludes_each_once() -> None:
    matrix: dict[str, Any] = {
        "a": {"range": [1, 100]},
        "b": [f"v{i}" for i in range(100)],
        "c": {"linspace": [0, 1, 10]},
        "exclude": [{"a": 1, "c": 0.0}],
        "include": [{"b": "v5", "extra": True}, {"note": "all"}],
    }
    result = expand(matrix)  # its speed: bench/plan_bench.py
    assert len(result.combinations) + len(result.excluded) == 100_000
    assert len(result.excluded) == 100


# --- matrix_of_file --------------------------------------------------------------------------


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_matrix_of_file_reads_a_bare_github_matrix(tmp_path: Path) -> None:
    path = write(
        tmp_path / "m.yaml",
        "node-version: [14, 16]\nos: [ubuntu-latest]\ninclude:\n  - node-version: 16\n    npm: 8\n",
    )
    [(name, result)] = matrix_of_file(path)
    assert name is None
    assert dicts(result) == [
        {"node-version": 14, "os": "ubuntu-latest"},
        {"node-version": 16, "os": "ubuntu-latest", "npm": 8},
    ]


def test_matrix_of_file_accepts_a_version_axis_in_a_bare_matrix(tmp_path: Path) -> None:
    path = write(tmp_path / "m.yaml", "version: [10, 12]\n")
    [(_, result)] = matrix_of_file(path)
    assert dicts(result) == [{"version": 10}, {"version": 12}]


def test_matrix_of_file_reports_line_of_a_bad_bare_matrix(tmp_path: Path) -> None:
    path = write(tmp_path / "m.yaml", "os: [linux]\nexclude:\n  - os: linux\n    colour: red\n")
    with pytest.raises(MatrixError) as exc:
        matrix_of_file(path)
    assert (exc.value.line, exc.value.column) == (4, 5)
    assert exc.value.field == "exclude[0].colour"
    assert exc.value.file == path


def test_matrix_of_file_reads_file_values_beside_a_bare_matrix(tmp_path: Path) -> None:
    write(tmp_path / "p.txt", "a fox\n# comment\n\nan owl\n")
    path = write(tmp_path / "m.yaml", "prompt: {file: p.txt}\n")
    [(_, result)] = matrix_of_file(path)
    assert dicts(result) == [{"prompt": "a fox"}, {"prompt": "an owl"}]


def test_matrix_of_file_reads_a_manifest_matrix_copied_out_alone(tmp_path: Path) -> None:
    """A file holding only a manifest's `matrix:` (its axes copied out of one, or to be pasted into one) is that
    matrix, not a manifest missing its version, name and model; its errors and warnings are at its lines."""
    write(tmp_path / "p.txt", "a fox\nan owl\n")
    path = write(tmp_path / "m.yaml", "matrix:\n  style: [anime, clay]\n  prompt: {file: p.txt}\n"
                                      "  exclude:\n    - {style: clay, prompt: an owl}\n")
    [(name, result)] = matrix_of_file(path)
    assert name is None
    assert dicts(result) == [{"style": "anime", "prompt": "a fox"}, {"style": "anime", "prompt": "an owl"},
                             {"style": "clay", "prompt": "a fox"}]
    from runner.matrix import checked_of_file

    write(path, "matrix:\n  style: [anime]\n  exclude:\n    - {style: comic}\n")
    [_], warnings = checked_of_file(path)
    said = f"{path}:4:7: matrix.exclude[0]: removes no combination (no job has style=comic); check its values"
    assert warnings == [said]
    write(path, "matrix:\n  style: [anime]\n  exclude:\n    - os: linux\n")
    with pytest.raises(MatrixError) as exc:
        matrix_of_file(path)
    assert (exc.value.line, exc.value.column, exc.value.field) == (4, 7, "matrix.exclude[0].os")


@pytest.mark.parametrize(("text", "listed"), [
    ("matrix: {range: [1, 3]}\n", [{"matrix": 1}, {"matrix": 2}, {"matrix": 3}]),
    ("matrix: {linspace: [0, 1, 2]}\n", [{"matrix": 0.0}, {"matrix": 1.0}]),
])
def test_a_bare_matrix_of_one_axis_named_matrix_is_that_axis(tmp_path: Path, text: str, listed: list[Any]) -> None:
    """`matrix:` holding a range, linspace or file is one axis of that name, as before a file of a manifest's
    `matrix:` alone was read as its axes."""
    [(_, result)] = matrix_of_file(write(tmp_path / "m.yaml", text))
    assert dicts(result) == listed


def test_matrix_of_file_uses_a_manifest_matrix(tmp_path: Path) -> None:
    path = write(
        tmp_path / "fox.yaml",
        "version: 1\nname: fox\nmodel: m\nmatrix:\n  style: [anime, clay]\n  seed: {range: [1, 2]}\n",
    )
    [(name, result)] = matrix_of_file(path)
    assert name is None
    assert len(result.combinations) == 4


def test_matrix_of_file_gives_each_sweep(tmp_path: Path) -> None:
    path = write(
        tmp_path / "s.yaml",
        "version: 1\nname: s\nmodel: m\nsweeps:\n  - name: a\n    matrix: {x: [1, 2]}\n  - name: b\n",
    )
    out = matrix_of_file(path)
    assert [(n, len(e.combinations)) for n, e in out] == [("a", 2), ("b", 1)]
    assert out[1][1] == SINGLE


def test_matrix_of_file_manifest_without_matrix_is_one_job(tmp_path: Path) -> None:
    path = write(tmp_path / "one.yaml", "version: 1\nname: one\nmodel: m\n")
    assert matrix_of_file(path) == [(None, SINGLE)]


def test_matrix_of_file_points_into_the_manifest(tmp_path: Path) -> None:
    path = write(
        tmp_path / "s.yaml",
        "version: 1\nname: s\nmodel: m\nsweeps:\n  - name: a\n    matrix:\n      x: [1]\n      exclude:\n        - y: 1\n",
    )
    with pytest.raises(MatrixError) as exc:
        matrix_of_file(path)
    assert exc.value.line == 9
    assert exc.value.field == "sweeps[0].matrix.exclude[0].y"


def test_matrix_of_file_missing_file_is_a_clean_error(tmp_path: Path) -> None:
    with pytest.raises(ManifestError, match="no such file"):
        matrix_of_file(tmp_path / "nope.yaml")


def test_each_exclude_value_is_looked_up_not_compared_with_every_value(monkeypatch: pytest.MonkeyPatch) -> None:
    """4,000 exclude entries against a 1,000-value axis made 4,000,000 comparisons (seconds; 20,000 entries did
    not finish in a minute). Scalars are now found in an index of each axis, GitHub's `==` kept."""
    from runner import matrix

    compared = [0]
    equal = matrix.equal

    def counted(left: Any, right: Any) -> bool:
        compared[0] += 1
        return equal(left, right)

    monkeypatch.setattr(matrix, "equal", counted)
    names = [f"n{i}" for i in range(1000)]
    excludes = ([{"name": f"N{i}"} for i in range(0, 1000, 2)] + [{"take": str(i)} for i in range(1, 1000, 2)]
                + [{"name": f"gone{i}"} for i in range(500)] + [{"take": 5000 + i} for i in range(500)])
    result = matrix.prepare({"name": names, "take": {"range": [1, 1000]}, "exclude": excludes})
    assert compared[0] == 0
    assert result.count() == 500 * 500
    first = next(result.combinations())
    assert first.as_dict() == {"name": "n1", "take": 2}


def test_a_range_or_linspace_of_a_million_values_is_not_kept_in_memory() -> None:
    """`gridrun matrix` on a range of ten million values took 2.2 GB: each value was kept twice, as a row and as
    a (key, value) pair. A range or linspace is now computed as it is read, and the product walks it."""
    import tracemalloc

    from runner.matrix import prepare

    tracemalloc.start()
    try:
        ranged = prepare({"a": {"range": [1, 1_000_000]}, "c": ["x", "y"]})
        spaced = prepare({"c": ["x", "y"], "b": {"linspace": [0, 1, 1_000_001]}})
        head = [next(combinations).as_dict() for combinations in (ranged.combinations(), spaced.combinations())
                for _ in range(3)]
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert head == [{"a": 1, "c": "x"}, {"a": 1, "c": "y"}, {"a": 2, "c": "x"},
                    {"c": "x", "b": 0.0}, {"c": "x", "b": 1e-06}, {"c": "x", "b": 2e-06}]
    assert peak < 5_000_000
    assert ranged.count() == 2_000_000 and spaced.count() == 2_000_002
