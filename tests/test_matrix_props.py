from __future__ import annotations

import itertools
import math
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from runner.matrix import expand, prepare

AXIS_NAMES = ["a", "b", "c", "d"]
VALUES = st.one_of(st.integers(min_value=0, max_value=4), st.sampled_from(["x", "y", "z"]))


@st.composite
def axes(draw: st.DrawFn) -> dict[str, list[Any]]:
    names = draw(st.lists(st.sampled_from(AXIS_NAMES), min_size=1, max_size=4, unique=True))
    return {name: draw(st.lists(VALUES, min_size=1, max_size=4)) for name in names}


@st.composite
def matrix_with_excludes(draw: st.DrawFn) -> tuple[dict[str, list[Any]], list[dict[str, Any]]]:
    base = draw(axes())
    return base, draw(st.lists(entry(list(base)), max_size=4))


@st.composite
def entry(draw: st.DrawFn, names: list[str]) -> dict[str, Any]:
    keys = draw(st.lists(st.sampled_from(names), min_size=1, max_size=min(3, len(names)), unique=True))
    return {k: draw(VALUES) for k in keys}


def product(base: dict[str, list[Any]]) -> list[dict[str, Any]]:
    return [dict(zip(base, values)) for values in itertools.product(*base.values())]


def matches(combination: dict[str, Any], entry: dict[str, Any]) -> bool:
    return all(combination[k] == v for k, v in entry.items())


@settings(max_examples=120, deadline=None)
@given(axes())
def test_product_size_is_the_product_of_axis_lengths(base: dict[str, list[Any]]) -> None:
    result = expand(base)
    assert len(result.combinations) == math.prod(len(v) for v in base.values())
    assert [c.as_dict() for c in result.combinations] == product(base)
    assert all(c.origin == "product" for c in result.combinations)


@settings(max_examples=120, deadline=None)
@given(matrix_with_excludes())
def test_exclude_only_keeps_a_subsequence_of_the_product(case: tuple[dict[str, list[Any]], list[dict[str, Any]]]) -> None:
    base, excludes = case
    result = expand({**base, "exclude": excludes})
    kept = [c.as_dict() for c in result.combinations]
    removed = [c.as_dict() for c, _ in result.excluded]
    full = product(base)
    iterator = iter(full)
    assert all(any(item == candidate for candidate in iterator) for item in kept)
    assert len(kept) + len(removed) == len(full)


@settings(max_examples=120, deadline=None)
@given(matrix_with_excludes())
def test_exclude_removes_exactly_the_matching_combinations(case: tuple[dict[str, list[Any]], list[dict[str, Any]]]) -> None:
    base, excludes = case
    result = expand({**base, "exclude": excludes})
    for combination in result.combinations:
        assert not any(matches(combination.as_dict(), e) for e in excludes)
    for combination, number in result.excluded:
        values = combination.as_dict()
        assert matches(values, excludes[number - 1])
        assert not any(matches(values, e) for e in excludes[: number - 1])
    expected = [c for c in product(base) if not any(matches(c, e) for e in excludes)]
    assert [c.as_dict() for c in result.combinations] == expected


@st.composite
def matrix_with_unmatched_includes(draw: st.DrawFn) -> tuple[dict[str, list[Any]], list[dict[str, Any]]]:
    base = draw(axes())
    names = list(base)
    entries = []
    for i in range(draw(st.integers(min_value=1, max_value=4))):
        new_key = draw(st.sampled_from(names))
        others = draw(st.lists(st.sampled_from(names), unique=True, max_size=len(names)))
        entry: dict[str, Any] = {k: draw(VALUES) for k in others if k != new_key}
        entry[new_key] = f"new{i}"
        for extra in draw(st.lists(st.sampled_from(["e1", "e2"]), unique=True, max_size=2)):
            entry[extra] = draw(VALUES)
        entries.append(entry)
    return base, entries


@settings(max_examples=120, deadline=None)
@given(matrix_with_unmatched_includes())
def test_includes_that_match_nothing_are_appended_once_each_in_order(
    case: tuple[dict[str, list[Any]], list[dict[str, Any]]],
) -> None:
    base, includes = case
    result = expand({**base, "include": includes})
    full = product(base)
    assert [c.as_dict() for c in result.combinations[: len(full)]] == full
    appended = result.combinations[len(full) :]
    assert [c.as_dict() for c in appended] == includes
    assert [c.origin for c in appended] == [f"include {i + 1}" for i in range(len(includes))]
    for combination, entry in zip(appended, includes):
        axis_first = [k for k in entry if k in base] + [k for k in entry if k not in base]
        assert [k for k, _ in combination.values] == axis_first


@st.composite
def any_matrix(draw: st.DrawFn) -> dict[str, Any]:
    base, excludes = draw(matrix_with_excludes())
    includes = draw(st.lists(entry(list(base) + ["e1", "e2"]), max_size=4))
    return {**base, "exclude": excludes, "include": includes}


@settings(max_examples=120, deadline=None)
@given(any_matrix())
def test_every_combination_has_every_axis_unless_an_include_made_it(matrix: dict[str, Any]) -> None:
    names = [k for k in matrix if k not in ("include", "exclude")]
    for combination in expand(matrix).combinations:
        keys = [k for k, _ in combination.values]
        if combination.origin == "product":
            assert keys[: len(names)] == names
        else:
            assert combination.origin.startswith("include ")


@settings(max_examples=120, deadline=None)
@given(any_matrix())
def test_includes_never_change_original_values(matrix: dict[str, Any]) -> None:
    base = {k: v for k, v in matrix.items() if k not in ("include", "exclude")}
    result = expand(matrix)
    survivors = [c for c in product(base) if not any(matches(c, e) for e in matrix["exclude"])]
    from_product = [c for c in result.combinations if c.origin == "product"]
    assert [dict(list(c.values)[: len(base)]) for c in from_product] == survivors


@settings(max_examples=60, deadline=None)
@given(any_matrix())
def test_expansion_is_deterministic(matrix: dict[str, Any]) -> None:
    assert expand(matrix) == expand(matrix)


@settings(max_examples=200, deadline=None)
@given(any_matrix())
def test_the_count_before_expanding_is_the_number_expanded(matrix: dict[str, Any]) -> None:
    prepared = prepare(matrix)
    assert prepared.count() == len(prepared.expand().combinations) == len(expand(matrix).combinations)
    assert prepared.at_least <= prepared.count()


# --- exclude and include values looked up by index, against comparing with every value ----------------

TRICKY_TEXT = ["", " ", "0", "-0", "0.0", " 1 ", "1", "1.0", "1e0", "2", "0x10", "0o7", "16", "Infinity", "-Infinity",
               "NaN", "abc", "ABC", "aBc", "true", "null", "ß", "ẞ", "ı", "I", "i", "İ", "ǅ", "ǆ"]
SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-3, max_value=17), st.integers(),
    st.sampled_from([0.0, -0.0, 1.0, 0.5, 16.0, 2.0**53, 2.0**53 + 2, math.inf, -math.inf, math.nan, 1e300]),
    st.sampled_from([2**53 + 1, 2**53, 10**400, -(10**400)]), st.floats(), st.sampled_from(TRICKY_TEXT), st.text(max_size=3),
)
CELLS = st.one_of(SCALARS, st.lists(SCALARS, max_size=2), st.dictionaries(st.sampled_from(["k", "K"]), SCALARS, max_size=2))


def linear(column: Any, value: Any) -> frozenset[int]:
    """The rows whose value matches, compared one by one as GitHub's `==` does."""
    from runner.ghexpr import equal, lookup
    from runner.matrix import _leaves

    leaves = list(_leaves(value, ()))
    return frozenset(i for i, cell in enumerate(column) if all(equal(lookup(cell, p), lit) for p, lit in leaves))


@settings(max_examples=400, deadline=None)
@given(st.lists(CELLS, min_size=1, max_size=12), st.lists(st.one_of(SCALARS, CELLS), min_size=1, max_size=6))
def test_values_looked_up_by_index_are_those_equal_one_by_one(column: list[Any], literals: list[Any]) -> None:
    from runner.matrix import _allowed, _make_axis

    axis = _make_axis(("a",), (tuple(column),), "matrix")
    for literal in literals:
        found = _allowed(axis, 0, literal)
        assert found == linear(column, literal) if found is not None else literal in ([], {}), literal


@settings(max_examples=300, deadline=None)
@given(st.integers(min_value=-(2**60), max_value=2**60), st.integers(min_value=0, max_value=40),
       st.integers(min_value=-5, max_value=5).filter(bool), st.lists(st.one_of(SCALARS, st.integers()), max_size=6),
       st.data())
def test_range_values_looked_up_by_bisection_are_those_equal_one_by_one(
    start: int, count: int, step: int, literals: list[Any], data: st.DataObject,
) -> None:
    from runner.matrix import _allowed, _make_axis

    values = range(start, start + step * count, step)
    if values:
        literals += [data.draw(st.sampled_from(values)), str(values[-1]), float(values[0])]
    axis = _make_axis(("a",), (values,), "range")
    for literal in literals:
        assert _allowed(axis, 0, literal) == linear(list(values), literal), literal


@settings(max_examples=120, deadline=None)
@given(any_matrix())
def test_an_axis_walked_instead_of_copied_gives_the_same_combinations(matrix: dict[str, Any]) -> None:
    from unittest import mock

    from runner import matrix as module

    copied = expand(matrix)
    with mock.patch.object(module, "WALKED", 0):
        walked = expand(matrix)
        streamed = list(prepare(matrix).combinations())
    assert walked == copied
    assert streamed == list(copied.combinations)


@settings(max_examples=200, deadline=None)
@given(st.floats(allow_nan=False, allow_infinity=False), st.floats(allow_nan=False, allow_infinity=False),
       st.integers(min_value=2, max_value=30))
def test_linspace_values_are_those_listed_at_once(start: float, stop: float, count: int) -> None:
    from runner.matrix import _round10

    span = stop - start
    if math.isfinite(span):
        listed = [_round10(start + span * i / (count - 1)) for i in range(count)]
    else:
        listed = [_round10(start * (1 - i / (count - 1)) + stop * (i / (count - 1))) for i in range(count)]
    listed[0], listed[-1] = _round10(start), _round10(stop)
    values = [c.as_dict()["x"] for c in expand({"x": {"linspace": [start, stop, count]}}).combinations]
    assert values == listed
