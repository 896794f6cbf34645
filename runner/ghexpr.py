"""GitHub's expression `==` as the matrix's include and exclude entries use it (actions/runner's
EvaluationResult.AbstractEqual): JavaScript's loose equality, strings compared without regard to case as
.NET's OrdinalIgnoreCase does, numbers written and read back as format G15, and the index operator.
"""

from __future__ import annotations

import bisect
import math
import re
from collections.abc import Iterable, Mapping
from typing import Any

_NUMBER_RE = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_HEX_RE = re.compile(r"0x[0-9a-fA-F]+")
_OCT_RE = re.compile(r"0o[0-7]+")
_INT32 = 2**31

_NULL, _BOOL, _NUMBER, _STRING, _ARRAY, _OBJECT = range(6)


def _kind(value: Any) -> int:
    if value is None:
        return _NULL
    if isinstance(value, bool):
        return _BOOL
    if isinstance(value, (int, float)):
        return _NUMBER
    if isinstance(value, str):
        return _STRING
    if isinstance(value, (list, tuple)):
        return _ARRAY
    return _OBJECT


def _float(value: int | float) -> float:
    try:
        return float(value)
    except OverflowError:
        return math.inf if value > 0 else -math.inf


def g15(value: int | float) -> float:
    """A number as GitHub writes it into a filter expression (format G15) and reads it back."""
    number = _float(value)
    if not math.isfinite(number):
        return number
    return float(f"{number:.15g}")


def _parse_number(text: str) -> float:
    """GitHub's ExpressionUtility.ParseNumber: a string as a number, NaN when it is not one."""
    text = text.strip()
    if not text:
        return 0.0
    if _NUMBER_RE.fullmatch(text):
        return float(text)
    if _HEX_RE.fullmatch(text) or _OCT_RE.fullmatch(text):
        number = int(text[2:], 16 if text[1] == "x" else 8)
        if number >= 2 * _INT32:
            return math.nan
        return float(number - 2 * _INT32 if number >= _INT32 else number)
    if text == "Infinity":
        return math.inf
    if text == "-Infinity":
        return -math.inf
    return math.nan


def _to_number(value: Any) -> float:
    kind = _kind(value)
    if kind == _NULL:
        return 0.0
    if kind == _BOOL:
        return 1.0 if value else 0.0
    if kind == _NUMBER:
        return _float(value)
    if kind == _STRING:
        return _parse_number(value)
    return math.nan


def _number_of(value: Any) -> float:
    """A null, boolean, number or string as `==` reads it when the other side is of another kind."""
    return _parse_number(value) if isinstance(value, str) else _to_number(value)


def equal(left: Any, right: Any) -> bool:
    """GitHub's `==` (EvaluationResult.AbstractEqual): JavaScript's loose equality, strings compared without case."""
    left_kind, right_kind = _kind(left), _kind(right)
    while left_kind != right_kind:
        if left_kind == _NUMBER and right_kind == _STRING:
            right, right_kind = _parse_number(right), _NUMBER
        elif left_kind == _STRING and right_kind == _NUMBER:
            left, left_kind = _parse_number(left), _NUMBER
        elif left_kind in (_BOOL, _NULL):
            left, left_kind = _to_number(left), _NUMBER
        elif right_kind in (_BOOL, _NULL):
            right, right_kind = _to_number(right), _NUMBER
        else:
            return False
    if left_kind == _NULL:
        return True
    if left_kind == _NUMBER:
        return _float(left) == _float(right)
    if left_kind == _STRING:
        return fold(left) == fold(right)
    if left_kind == _BOOL:
        return bool(left == right)
    return left is right


class EqualIndex:
    """The positions of a list of values, looked up by GitHub's `==`: an exclude list of thousands finds its
    values without comparing each entry with every value. `==` is not an equivalence (null == "" and null ==
    "0", but "" != "0"), so a value is filed under two keys: a string under its folded text, and every null,
    boolean, number and string under the number it reads as (none for NaN, which equals nothing). A string
    then finds the strings of its text and the non-strings of its number; any other scalar the values of its
    number. Lists and mappings equal no scalar, so they are not filed."""

    def __init__(self, values: Iterable[Any]) -> None:
        self._texts: dict[str, list[int]] = {}
        self._numbers: dict[float, list[int]] = {}  # null, booleans and numbers, by their number
        self._numeric_texts: dict[float, list[int]] = {}  # strings, by the number they read as
        for position, value in enumerate(values):
            kind = _kind(value)
            if kind == _STRING:
                self._texts.setdefault(fold(value), []).append(position)
                _file(self._numeric_texts, _parse_number(value), position)
            elif kind in (_NULL, _BOOL, _NUMBER):
                _file(self._numbers, _to_number(value), position)

    def find(self, literal: Any) -> list[int] | None:
        """The positions of the values `==` to `literal`; None for a list, mapping or other object, which the
        caller compares one by one."""
        kind = _kind(literal)
        if kind not in (_NULL, _BOOL, _NUMBER, _STRING):
            return None
        number = _number_of(literal)
        found = self._texts.get(fold(literal), []) if kind == _STRING else self._numeric_texts.get(number, [])
        return found + self._numbers.get(number, []) if not math.isnan(number) else list(found)


def _file(index: dict[float, list[int]], number: float, position: int) -> None:
    if not math.isnan(number):
        index.setdefault(number, []).append(position)


def find_in_range(values: range, literal: Any) -> range | None:
    """The positions of the integers of `values` that are `==` to `literal`, found by bisection (a range of
    ten million values is never listed); None for a list, mapping or other object, as EqualIndex.find. The
    integers compare as floats, which are in the range's order: past 2**53 several may equal one number."""
    if _kind(literal) not in (_NULL, _BOOL, _NUMBER, _STRING):
        return None
    number = _number_of(literal)
    if math.isnan(number):
        return range(0)
    ascending = values if values.step > 0 else values[::-1]
    low = bisect.bisect_left(ascending, number, key=_float)
    high = bisect.bisect_right(ascending, number, key=_float)
    if values.step > 0:
        return range(low, high)
    return range(len(values) - high, len(values) - low)


def fold(text: str) -> str:
    """Case folding as .NET's OrdinalIgnoreCase: each character's simple upper case."""
    if text.isascii():
        return text.upper()
    return "".join(upper if len(upper := char.upper()) == 1 else char for char in text)


def lookup(value: Any, path: tuple[Any, ...]) -> Any:
    """`value[path[0]][path[1]]...` with GitHub's index operator; null where a step finds nothing."""
    for step in path:
        value = _index(value, step)
    return value


def _index(container: Any, key: Any) -> Any:
    """GitHub's index operator: a mapping by key without case, a list by integer position, else null."""
    if isinstance(container, Mapping):
        name = key if isinstance(key, str) else str(key)
        if name in container:
            return container[name]
        folded = fold(name)
        for candidate, value in container.items():
            if isinstance(candidate, str) and fold(candidate) == folded:
                return value
        return None
    if isinstance(container, (list, tuple)):
        number = _parse_number(key) if isinstance(key, str) else float(key)
        if math.isnan(number) or number < 0 or number >= _INT32:
            return None
        position = math.floor(number)
        return container[position] if position < len(container) else None
    return None
