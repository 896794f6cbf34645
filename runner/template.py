"""Templates: Jinja2 in a sandbox with StrictUndefined, compiled once, rendered per job.

A value that is exactly one `{{ expr }}` keeps the expression's type (`duration: "{{ d }}"` with d = 8
gives the integer 8); any other template renders to a string. Vars may reference each other in any
order; a cycle is an error that names it.

Text made only of literals and `{{ name }}` (the common case) is recognised without Jinja and rendered
by `str.format`; Jinja is imported the first time a template needs it.
"""

from __future__ import annotations

import contextvars
import difflib
import functools
import inspect
import itertools
import math
import operator
import re
import unicodedata
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Iterable, Iterator, Mapping, Sequence

from runner.bugs import exception_text
from runner.textforms import alike, escaped, unlike
from runner.yamlsource import LINE_BREAK

if TYPE_CHECKING:
    from jinja2 import nodes
    from jinja2.sandbox import ImmutableSandboxedEnvironment


# What one render may make, so that a slip (loops in loops, 'x' * 10**9) is an error, not a plan that hangs
# or fills memory: values handed out by range() in all, the length of a string or list made by * or +, or
# by ~, padding, joining, replacing and formatting (checked before the string is made), what the template
# writes in all (counted as it is written), and numbers made by **. Each string or list within MAX_MADE, many of
# them still fill memory (300 strings of 9,000,000 characters take 2.7 GB): the characters and items of every
# string and list that an operation, a filter, a call or a slice makes count, in all, against MAX_RENDER.
RANGE_BUDGET = 1_000_000
MAX_MADE = 10_000_000
MAX_RENDER = 50_000_000
MAX_BITS = 14_000  # ** and * make numbers of some 4,200 digits at most (Python writes up to 4,300 as text)


class _Render:
    """What one Jinja render has used and seen: the range() values it may still take, and whether it wrote a null
    (Python's 'None') into its text, as a filter that has no context of its own notes it."""

    __slots__ = ("left", "made", "null", "whole", "methods", "unread")

    def __init__(self) -> None:
        self.left = RANGE_BUDGET
        self.made = 0  # the characters and items of the strings and lists made so far (`_counted`)
        self.null = False
        self.whole: list[Any] | None = None  # the lists, tuples and dicts written whole into text
        # the dict methods read as `row.copy` where the dict has a key of that name: (the name, the dict)
        self.methods: list[tuple[str, dict[str, Any]]] | None = None
        # the texts `| float` or `| int` read as no number, making their default ('1,5', a decimal comma): (the
        # filter, the text)
        self.unread: list[tuple[str, str]] | None = None


_rendering: contextvars.ContextVar[_Render | None] = contextvars.ContextVar("rendering", default=None)


def _render_state() -> _Render:
    """The render under way; outside `Compiled.render` (Jinja's environment used by itself), a new one."""
    state = _rendering.get()
    if state is None:
        state = _Render()
        _rendering.set(state)
    return state


def _note_null() -> None:
    """A null is written into the render's text: Python writes it 'None' (noted for a warning, as it always was)."""
    _render_state().null = True


def _note_written(value: Any) -> None:
    """`value` (not a str) is written into the render's text as Python writes it: a null (or a list or dict holding
    one) is noted, and a list, tuple or dict written whole."""
    if value is None:
        _render_state().null = True
    elif isinstance(value, (list, tuple, dict)):
        state = _render_state()
        if state.whole is None:
            state.whole = [value]
        else:
            state.whole.append(value)
        if _holds_null(value):
            state.null = True


def _holds_null(value: Any) -> bool:
    """Whether `value` is a null or a list, tuple or dict holding one, however deep (written whole, 'None')."""
    if value is None:
        return True
    return isinstance(value, (list, tuple, dict)) and any(part is None for part in _parts(value))


class _Budget(Exception):
    """A render made more than a template may."""


_MADE_IN_ALL = (f"the template would make more than {MAX_RENDER:,} characters and list items in all, counting each "
                "string and list it makes (a long string or list made again and again, in a loop?); a template makes "
                f"at most {MAX_RENDER:,}")


def _counted(value: Any) -> Any:
    """`value`, made by the render: a string's characters, or a list's, tuple's or dict's items, counted against
    what one render makes in all (`MAX_RENDER`)."""
    if isinstance(value, (str, bytes, list, tuple, dict)) and value:
        state = _render_state()
        state.made += len(value)
        if state.made > MAX_RENDER:
            raise _Budget(_MADE_IN_ALL)
    return value


def _counting(f: Callable[..., Any]) -> Callable[..., Any]:
    """The filter `f`, with what it returns counted (`_counted`)."""

    @functools.wraps(f)
    def counted(*args: Any, **kwargs: Any) -> Any:
        return _counted(f(*args, **kwargs))

    return counted


def _short(number: int) -> str:
    text = str(number) if number.bit_length() < 200 else f"a number of {number.bit_length():,} bits"
    return text


def _made(length: int, what: str) -> None:
    if length > MAX_MADE:
        raise _Budget(f"{what} would make {length:,} characters; a template makes at most {MAX_MADE:,}")


def _width(width: Any, what: str, made: str = "a string") -> None:
    if isinstance(width, int) and width > MAX_MADE:
        raise _Budget(f"{what} of {width:,} would make {made} that long; a template makes at most {MAX_MADE:,}")


def _number(digits: str) -> int:
    if len(digits) > 1000:
        raise _Budget(f"a width or precision of {len(digits):,} digits; a template makes at most {MAX_MADE:,}")
    return int(digits)


# A str.format spec: [[fill]align][sign][z][#][0][width][grouping][.precision][type]
_FORMAT_SPEC = re.compile(r"(?:.?[<>=^])?[-+ ]?z?#?0?(?P<width>\d*)[_,]?(?:\.(?P<precision>\d+))?", re.DOTALL)
# A %-format conversion: %[(key)][flags][width][.precision][length]type
_PERCENT = re.compile(r"%(?P<key>\([^)]*\))?[-#0 +]*(?P<width>\*|\d+)?(?:\.(?P<precision>\*|\d*))?[hlL]?(?P<type>.?)",
                      re.DOTALL)


def _check_spec(spec: str) -> None:
    """Refuse a str.format spec whose width or precision would make a string longer than a template makes."""
    m = _FORMAT_SPEC.match(spec)
    if m:
        for part in ("width", "precision"):
            if m.group(part):
                _width(_number(m.group(part)), f"a format {part}")


def _check_percent(text: str | bytes, values: Any) -> None:
    """Refuse %-formatting whose widths or precisions (written, or taken from the values by *) would make a
    string longer than a template makes."""
    if isinstance(text, bytes):
        text = text.decode("latin-1")
    if "%" not in text:
        return
    values = values if isinstance(values, tuple) else (values,)
    i = 0
    for m in _PERCENT.finditer(text):
        if m.group("type") == "%" and not m.group("key"):
            continue
        for part in ("width", "precision"):
            n: Any = m.group(part)
            if n == "*":
                n = values[i] if i < len(values) else None
                i += 1
            elif n:
                n = _number(n)
            _width(n, f"a % format {part}")
        i += 1


def _joined(separator: str | bytes, items: list[Any]) -> None:
    """Refuse joining items (counted as text) with separator into more than a template makes. Markup (`| e`)
    escapes what it joins, so its items count as long as they are once escaped."""
    escapes = hasattr(separator, "__html__")
    total = len(separator) * max(len(items) - 1, 0)
    _made(total, f"joining {len(items):,} items with a separator of {len(separator):,}")
    for item in items:
        if not isinstance(item, (str, bytes)):
            _as_text(item)  # a list or dict too long as text is refused before its text is made
        if escapes:
            total += _escaped_length(item)
        else:
            total += len(item) if isinstance(item, (str, bytes)) else len(str(item))
        _made(total, f"joining {len(items):,} items")


def _markup_percent(text: str, values: Any) -> None:
    """Refuse `%` on markup (`| e` makes it) that would make more than a template makes: it HTML-escapes each value
    it writes (an `&` becomes five characters), counted as each conversion writes one."""
    total = len(text)
    positional = values if isinstance(values, tuple) else (values,)
    i = 0
    for m in _PERCENT.finditer(text):
        if m.group("type") == "%" and not m.group("key"):
            continue
        i += (m.group("width") == "*") + (m.group("precision") == "*")
        if m.group("key"):
            key = m.group("key")[1:-1]
            value = values[key] if isinstance(values, Mapping) and key in values else ""
        else:
            value = positional[i] if i < len(positional) else ""
            i += 1
        total += _escaped_length(value)
        _made(total, "% on markup (| e), which escapes what it writes,")


_WRITTEN = f"the template would write more than {MAX_MADE:,} characters (loops writing long strings?)"


# A var's value is rendered once and read by every job: an iterator would be read by the first and empty after.
_READ_ONCE = ("the template makes {what}, which is read once and then empty (a second job or a second use "
              "would get nothing); add | list, or | join(', ') for text")


# Likewise an object whose state every job would share: each job would see it as the jobs before it left it.
_SHARED = ("the template makes {what}, whose state every job would share (a job's request would depend on the jobs "
           "rendered before it, and change when the matrix does); pick a value by a matrix value instead "
           "({{{{ styles[seed % styles | length] }}}}), or make it in the template that uses it")


@functools.lru_cache(maxsize=1)
def _stateful() -> tuple[type, ...]:
    """Jinja's objects that change as they are used: cycler(), joiner() and namespace()."""
    from jinja2.utils import Cycler, Joiner, Namespace

    return Cycler, Joiner, Namespace


def _made_once(value: Any) -> None:
    """Refuse, with _NotText, a value made once and read by every job (a var's) that is or holds an iterator (read
    once, then empty) or a stateful object (`_stateful`), looked for through lists, tuples and dicts (`_parts`)."""
    kinds = (Iterator, *_stateful())
    found = next((part for part in _parts(value) if isinstance(part, kinds)), None)
    if found is not None:
        where = "" if found is value else f"a {type(value).__name__} holding "
        what = f"{where}a {type(found).__name__} object"
        raise _NotText((_READ_ONCE if isinstance(found, Iterator) else _SHARED).format(what=what))


def _parts(value: Any) -> Iterator[Any]:
    """What `value` is made of, in the order it is written: itself, or, for a list, tuple or dict, the parts of each
    item (a dict's keys, then its values), however deep, each container once."""
    stack, seen = [value], set()
    while stack:
        item = stack.pop()
        if isinstance(item, (list, tuple, dict)):
            if id(item) not in seen:
                seen.add(id(item))
                stack.extend(reversed([*item.keys(), *item.values()] if isinstance(item, dict) else item))
            continue
        yield item


class _NotText(Exception):
    """A render wrote into its text an object that is not a value (a generator, a function, a range...).
    `called` is the name of a method, macro or function written uncalled, for `_call_it` to show the call."""

    def __init__(self, message: str, called: str | None = None, method: bool = False, column: bool = False) -> None:
        super().__init__(message)
        self.called, self.method, self.column = called, method, column


def _routine(item: Any) -> bool:
    """Whether `item` is a function, method, macro or type: a thing to call, not a value."""
    return inspect.isroutine(item) or isinstance(item, type) or type(item).__name__ == "Macro"


def _uncalled(item: Any) -> _NotText:
    """The problem of a method, macro or function written into a template's value uncalled (`{{ s.title }}` for
    `{{ s.title() }}`): its text would be Python's `<built-in method title of str object at 0x7f...>`, a memory
    address that changes every run. Says to call it, naming no address; `_call_it` adds the call as written."""
    name = getattr(item, "__name__", None) or getattr(item, "name", None)
    name = name if isinstance(name, str) and name.isidentifier() else None
    owner = getattr(item, "__self__", None)
    if isinstance(item, type):
        what = f"the type {name}" if name else "a type"
    elif type(item).__name__ == "Macro":
        what = f"the macro {name}" if name else "a macro"
    elif owner is not None and not inspect.ismodule(owner) and name:
        what = f"the method {name} of a {type(owner).__name__}"
    else:
        what = f"the function {name}" if name else "a function"
    # A row (a dict) with a column named like the method (`items`, `copy`): `r.copy` is the method, as Jinja has
    # always read it (a manifest testing `{% if r.copy %}` renders as it did), so the column is read by subscript.
    column = type(owner) is dict and name is not None and name in owner
    return _NotText(f"the template writes {what}, not its result: call it{' (`CALL`)' if name else ''}; its text "
                    "would be Python's name for it, often with a memory address that changes every run (a new "
                    "request, paid for again)", name, what.startswith("the method"), column)


def _call_it(exc: _NotText, source: Any) -> str:
    """The message of `exc`, with the call shown as the template `source` would write it: `{{ s.title() }}` (or the
    filter of that name, `{{ s | title }}`) for `s.title`, `{{ m() }}` for a macro `m`."""
    message = str(exc)
    if exc.called is None:
        return message
    text = source if isinstance(source, str) else ""
    name = re.escape(exc.called)
    m = re.search(r"((?<![\w.])[^\W\d][\w.]*?)\s*\.\s*" + name + r"(?![\w(]|\s*\()", text)
    if m is not None:
        call = f"{{{{ {m[1]}.{exc.called}() }}}}"
        if exc.called in _env().filters:
            call += f", or the filter: {{{{ {m[1]} | {exc.called} }}}}"
    else:
        call = f".{exc.called}()" if exc.method else f"{{{{ {exc.called}() }}}}"
    message = message.replace("`CALL`", call)
    if exc.column:
        owner = m[1] if m is not None else "row"
        message += (f"; to read its column {exc.called!r}, write {{{{ {owner}[{exc.called!r}] }}}} ({owner}.{exc.called} "
                    "is the method, under `if` too)")
    return message


# The booleans a Jinja render writes into its text (Python writes 'True' where the key and YAML say true) are noted
# in the dict of the template being rendered (`Compiled.noticed`), handed to the render under this name, which no
# template can read (it is not a name), for a warning once per template and value.
_NOTICED = "gridrun noticed"


def _written_value(context: Any, value: Any) -> Any:
    """Jinja's finalize: what `{{ ... }}` writes, checked by `_as_text`; a null (or a list or dict holding one) and a
    boolean noted."""
    kind = type(value)
    if kind is str:
        return value
    if value is None:
        _note_null()
        return value
    if kind is bool:
        noticed = context.get(_NOTICED)
        if noticed is not None and value not in noticed:
            noticed[value] = None
        return value
    _as_text(value)
    if kind is list or kind is dict or kind is tuple:
        _note_written(value)
    return value


_PLAIN = (str, int, float, type(None))  # bool is an int


def _text_length(item: Any) -> int:
    """About how long the text of `item` (a str, number, bool or None) is as an item of a list or dict, its
    separator included, never less: a string with its quotes (a character that is not printable is written
    escaped, in 4 or more)."""
    if isinstance(item, str):
        return len(item) + 4 if item.isprintable() else 4 * len(item) + 4
    if isinstance(item, int) and not isinstance(item, bool):
        return item.bit_length() * 3 // 10 + 3  # its digits, at least, without making them
    return 8


def _text_size(value: Any) -> int:
    """About how long the text of the list, tuple or dict `value` is (`_text_length` for each item), never less, or
    a length past what a template makes as soon as it is: a container is written each time it is held, so one
    held many times (`[row] * 1000`, each `row` the same list) counts each time, though it is measured once."""
    measured: dict[int, int] = {}
    under_way: set[int] = set()
    stack: list[tuple[Any, bool]] = [(value, False)]
    while stack:
        item, done = stack.pop()
        parts = [*item.keys(), *item.values()] if isinstance(item, dict) else item
        if done:
            total = 2
            for part in parts:
                if isinstance(part, (list, tuple, dict)):
                    total += measured.get(id(part), 8)
                else:
                    total += _text_length(part) if isinstance(part, _PLAIN) else 8
                if total > MAX_MADE:
                    return total
            measured[id(item)] = total
            under_way.discard(id(item))
            continue
        if id(item) in measured or id(item) in under_way:
            continue
        under_way.add(id(item))
        stack.append((item, True))
        stack.extend((part, False) for part in parts if isinstance(part, (list, tuple, dict)))
    return measured.get(id(value), 0)


def _not_too_long(value: Any) -> None:
    """Refuse a list or dict whose text (in a request, a report) would be longer than a template makes."""
    if isinstance(value, (list, tuple, dict)) and _text_size(value) > MAX_MADE:
        raise _Budget(f"the text of a {type(value).__name__} would be more than {MAX_MADE:,} characters; "
                      f"a template makes at most {MAX_MADE:,}")


def _as_text(value: Any) -> Any:
    """`value`, once checked to be what a template may write into text: strings, numbers, booleans and None, and lists,
    tuples and dicts of them (their text is the same every time). Raises _NotText for anything else, whose text is
    Python's `<generator object ... at 0x7f...>`: a slip (a `| join` forgotten) whose memory address would make a new
    request, and a new payment, every run. An Undefined raises the error it would raise as it is written."""
    if isinstance(value, _PLAIN):
        return value
    # counted before the text is made: 300 items of 9,000,000 would make 2.7 GB
    _not_too_long(value)
    for item in _parts(value):
        if isinstance(item, _PLAIN):
            continue
        if getattr(type(item), "_fail_with_undefined_error", None) is not None:  # jinja2.Undefined
            if item is value:
                return value  # Jinja raises its own error as it writes it
            item._fail_with_undefined_error()
        if _routine(item):
            raise _uncalled(item)
        raise _NotText(f"the template writes a {type(item).__name__} object into the text, which is not a value: "
                       "Python writes its type, often with a memory address that changes every run (a new request, "
                       "paid for again); add | join(', ') or | list")
    return value


def _text_of_input(f: Callable[..., Any]) -> Callable[..., Any]:
    """The filter `f`, with its input checked by `_as_text` first: filters such as `trim`, `upper`, `replace`, `e` or
    `pprint` make text of their input themselves, so what they return is a str that finalize passes, and
    `{{ tags | map('lower') | trim }}` wrote a generator's memory address (a new request, paid for again, every run)."""
    at = 1 if getattr(f, "jinja_pass_arg", None) is not None else 0  # after the context, eval context or environment

    writes = f.__name__ in _WRITES_NULL

    @functools.wraps(f)
    def checked(*args: Any, **kwargs: Any) -> Any:
        if len(args) > at:
            _as_text(args[at])
            if writes and type(args[at]) is not str:
                _note_written(args[at])
        return f(*args, **kwargs)

    return checked


# Jinja's filters (by their functions' names) that write their input as text: a null, or a list or dict holding one,
# would read 'None' ('NONE').
_WRITES_NULL = frozenset({
    "do_capitalize", "do_center", "do_forceescape", "do_indent", "do_lower", "do_mark_safe", "do_pprint",
    "do_replace", "do_striptags", "do_title", "do_trim", "do_truncate", "do_upper", "do_urlencode", "do_urlize",
    "do_wordwrap", "escape", "soft_str",
})


# Jinja's filters that read their input as the object it is (a sequence, a mapping, a number, or any value they pass
# on) rather than write it as text; every other filter gets `_text_of_input`. `join` checks the items it writes.
_READS_OBJECTS = frozenset({
    "abs", "attr", "batch", "count", "d", "default", "dictsort", "filesizeformat", "first", "float", "groupby", "int",
    "items", "join", "last", "length", "list", "map", "max", "min", "reject", "rejectattr", "reverse", "round",
    "select", "selectattr", "slice", "sort", "sum", "unique",
})


def _as_texts(values: Any) -> None:
    """Check each of the values %-formatting writes (a tuple, a dict, or one value) with `_as_text`."""
    items = values.values() if isinstance(values, Mapping) else values if isinstance(values, tuple) else (values,)
    for item in items:
        _as_text(item)
        if type(item) is not str:
            _note_written(item)


def _written(pieces: Iterable[str]) -> str:
    """What a template (or a block, macro or filter block in it) writes, joined; refused once it passes what a
    template makes. Each piece is checked as it is made, but a loop can write many."""
    if isinstance(pieces, _Buffer):
        return _counted("".join(pieces))  # counted as it was filled
    out = []
    length = 0
    for piece in pieces:  # inline rather than a _Buffer: this is every render's join, and twice as fast
        length += len(piece)
        if length > MAX_MADE:
            raise _Budget(_WRITTEN)
        out.append(piece)
    return _counted("".join(out))


class _Buffer(list[str]):
    """What a block, macro or filter block writes, kept until it ends: refused once it passes what a template
    makes, as it is written."""

    __slots__ = ("length",)

    def __init__(self) -> None:
        super().__init__()
        self.length = 0

    def append(self, piece: str) -> None:
        self.length += len(piece)
        if self.length > MAX_MADE:
            raise _Budget(_WRITTEN)
        super().append(piece)

    def extend(self, pieces: Iterable[str]) -> None:
        for piece in pieces:
            self.append(piece)


class _Tilde:
    """The values of `a ~ b ~ c`, gathered one by one: each is counted as text before the next is made, so that
    a join longer than a template makes is refused before it, or the values for it, take the memory."""

    __slots__ = ("items", "length")

    def __init__(self) -> None:
        self.items: list[Any] = []
        self.length = 0

    def add(self, item: Any) -> _Tilde:
        _as_text(item)  # a list or dict too long as text is refused before its text is made
        if type(item) is not str:
            _note_written(item)
        size = len(item) if isinstance(item, str) else len(str(item))
        self.length += size
        if self.length > MAX_MADE:
            _made(self.length, "joining values with ~")
        state = _render_state()  # the join it makes, counted as it is gathered
        state.made += size
        if state.made > MAX_RENDER:
            raise _Budget(_MADE_IN_ALL)
        self.items.append(item)
        return self


def _replaced(text: str | bytes, old: Any, new: Any, count: Any) -> None:
    """Refuse a replace that would make a string longer than a template makes."""
    if not isinstance(new, type(text)) or not isinstance(old, type(text)) or len(new) <= len(old):
        return
    found = len(text) + 1 if not old else text.count(old)
    if isinstance(count, int) and count >= 0:
        found = min(found, count)
    _made(len(text) + found * (len(new) - len(old)), f"replacing {found:,} times by {len(new):,} characters")


def _escaped_length(value: Any, force: bool = False) -> int:
    """How long `value` is once HTML-escaped (`| e`, `| forceescape`): `&`, `'` and `"` become five characters,
    `<` and `>` four; markup already escaped is kept as it is, unless forced."""
    if not force and hasattr(value, "__html__"):
        return len(str(value))
    text = value if isinstance(value, str) else str(value)
    return (len(text) + 4 * (text.count("&") + text.count('"') + text.count("'"))
            + 3 * (text.count("<") + text.count(">")))


def _escaped(what: str, force: bool = False) -> Callable[[Any], None]:
    def check(value: Any) -> None:
        length = _escaped_length(value, force)
        if length > MAX_MADE:
            size = len(value) if isinstance(value, str) else len(str(value))
            _made(length, f"{what}() of {size:,} characters")
    return check


# What URL quoting keeps as it is (every other byte of the UTF-8 becomes %XX); '/' counted as quoted, as it is
# in a query string.
_URL_SAFE = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-~"


def _quoted_length(value: Any) -> int:
    """How long `value` is at most once URL-quoted (`| urlencode`), counted without making it."""
    data = value if isinstance(value, bytes) else (value if isinstance(value, str) else str(value)).encode(
        "utf-8", "surrogatepass")
    return len(data) + 2 * len(data.translate(None, _URL_SAFE))


def _urlencoded(value: Any) -> None:
    """Refuse a `| urlencode` that would make more than a template makes (a character can become twelve)."""
    if isinstance(value, str) or not isinstance(value, Iterable):
        length = _quoted_length(value)
    else:
        length = 0
        for pair in (value.items() if isinstance(value, Mapping) else value):
            if isinstance(pair, (tuple, list)) and len(pair) == 2:
                length += _quoted_length(pair[0]) + _quoted_length(pair[1]) + 2
            if length > MAX_MADE:
                break
    _made(length, "urlencode()")


_ASTRAL = re.compile("[\U00010000-\U0010ffff]")
_CONTROLS = dict.fromkeys(range(32))


def _json_string_length(text: str) -> int:
    """How long `text` is at most as JSON the way `| tojson` writes it: quoted, with `<`, `>`, `&` and `'` written
    as \\u escapes, and every character that is not ASCII too (a pair of them beyond the BMP)."""
    n = len(text)
    extra = 5 * (text.count("<") + text.count(">") + text.count("&") + text.count("'")) \
        + text.count('"') + text.count("\\") + 5 * (n - len(text.translate(_CONTROLS)))
    if not text.isascii():
        extra += 5 * (n - len(text.encode("ascii", "ignore"))) + 6 * sum(1 for _ in _ASTRAL.finditer(text))
    return n + 2 + extra


def _json_length(value: Any, indent: Any) -> None:
    """Refuse a `| tojson` whose text would be longer than a template makes, counted without making it: each
    string as JSON escapes it, each item with its separator and (with `indent`) its line break and indentation."""
    step = len(indent) if isinstance(indent, str) else indent if isinstance(indent, int) and indent > 0 else 0
    total = 0
    stack = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, (dict, list, tuple)):
            total += 2 + (len(item) + 1) * (3 + step * (depth + 1))
            parts = [*item.keys(), *item.values()] if isinstance(item, dict) else item
            stack.extend((part if not isinstance(item, dict) or isinstance(part, (str, list, tuple, dict))
                          else str(part), depth + 1) for part in parts)
        elif isinstance(item, str):
            total += _json_string_length(item)
        else:
            total += _text_length(item) if isinstance(item, _PLAIN) else 8
        if total > MAX_MADE:
            raise _Budget(f"tojson() would make more than {MAX_MADE:,} characters; a template makes at most "
                          f"{MAX_MADE:,}")


def _xmlattr_length(attributes: Any) -> None:
    """Refuse a `| xmlattr` whose text (each key and value HTML-escaped) would be longer than a template makes."""
    if not isinstance(attributes, Mapping):
        return
    length = 0
    for key, value in attributes.items():
        if value is not None and getattr(type(value), "_fail_with_undefined_error", None) is None:
            length += _escaped_length(key) + _escaped_length(value) + 4
        if length > MAX_MADE:
            break
    _made(length, "xmlattr()")


def _sized_method(method: Any) -> Callable[..., Any] | None:
    """For a str or bytes method that can make a long string from short arguments (padding, tabs, joining,
    replacing, translating), the method with the length it would make checked first; else None."""
    owner = getattr(method, "__self__", None)
    name = getattr(method, "__name__", "")
    if not isinstance(owner, (str, bytes)) or name not in _SIZED_METHODS:
        return None

    @functools.wraps(method)
    def checked(*args: Any, **kwargs: Any) -> Any:
        if name in ("center", "ljust", "rjust", "zfill") and args:
            _width(args[0], f"{name}() to a width")
        elif name == "expandtabs":
            size = args[0] if args else kwargs.get("tabsize", 8)
            if isinstance(size, int):
                _made(len(owner) + owner.count("\t" if isinstance(owner, str) else b"\t") * size,
                      f"expandtabs({size:,})")
        elif name == "join" and len(args) == 1:
            items = list(args[0])
            _joined(owner, items)
            args = (items,)
        elif name == "replace" and len(args) >= 2:
            _replaced(owner, args[0], args[1], args[2] if len(args) > 2 else kwargs.get("count", -1))
        elif name == "translate" and args and isinstance(args[0], Mapping):
            longest = max((len(v) for v in args[0].values() if isinstance(v, (str, bytes))), default=1)
            _made(len(owner) * longest, f"translating {len(owner):,} characters to up to {longest:,} each")
        return method(*args, **kwargs)

    checked.__self__ = owner  # type: ignore[attr-defined]  # a method still, as an error about it says
    return checked


_SIZED_METHODS = frozenset({"center", "ljust", "rjust", "zfill", "expandtabs", "join", "replace", "translate"})


# Jinja's own that would render differently each time, taken out of the sandbox (see `_env`), with what to write
# instead: a job is the request its templates render, so a new render is a new job, which each run pays for again.
_REMOVED = {
    "random": ("filter", ("list the values in a matrix axis, a job each (style: [anime, clay]), or pick one by a "
                          "matrix value: {{ styles[seed % styles | length] }}")),
    "lipsum": ("function", "write the text out"),
}
_NOT_THERE = re.compile(r"No filter named '(?P<filter>\w+)'(?: found)?\.|'(?P<name>\w+)' is undefined")


def _explained(message: str) -> str:
    """Jinja's `message`; for a filter or function of `_REMOVED`, that it is left out on purpose, why, and what to
    write instead (rather than Jinja's "No filter named 'random'", which reads as a typo)."""
    m = _NOT_THERE.fullmatch(message)
    if m is None:
        return message
    kind, name = ("filter", m["filter"]) if m["filter"] else ("function", m["name"])
    if _REMOVED.get(name, ("", ""))[0] != kind:
        return message
    return (f"the {kind} '{name}' is left out on purpose: a template must render the same each time, as a job is "
            f"the request it renders (a new render would be a new job, paid for again); {_REMOVED[name][1]}")


@functools.lru_cache(maxsize=1)
def _env() -> ImmutableSandboxedEnvironment:
    import jinja2
    from jinja2 import meta, nodes
    from jinja2.compiler import CodeGenerator, Frame
    from jinja2.filters import make_attrgetter
    from jinja2.sandbox import (ImmutableSandboxedEnvironment, SandboxedEscapeFormatter, SandboxedFormatter,
                                safe_range)

    class Checked:
        def format_field(self, value: Any, format_spec: str) -> Any:
            _check_spec(format_spec)
            _as_text(value)
            if type(value) is not str:
                _note_written(value)
            return super().format_field(value, format_spec)  # type: ignore[misc]

    class Formatter(Checked, SandboxedFormatter):
        pass

    class EscapeFormatter(Checked, SandboxedEscapeFormatter):
        """Markup's format (`| e` makes markup): it HTML-escapes each field it writes (an `&` becomes five
        characters), so what it makes is counted as it goes, each field as long as it is once escaped."""

        def vformat(self, format_string: str, args: Any, kwargs: Any) -> str:
            self.made = len(format_string)
            return super().vformat(format_string, args, kwargs)  # type: ignore[no-any-return]

        def format_field(self, value: Any, format_spec: str) -> Any:
            self.made = getattr(self, "made", 0) + _escaped_length(value)
            _made(self.made, "format() on markup (| e), which escapes what it writes,")
            return super().format_field(value, format_spec)

    class Generator(CodeGenerator):
        """Jinja's code generator, with `~` and what blocks write checked, and nothing made at compile time but
        the template's own text: Jinja would otherwise fold constant parts while compiling, unchecked (1,000 times
        `{{ 'x' | center(9999999) }}` made 10 GB before the first render)."""

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.optimizer = None  # no constant folding; a render makes the same values, checked

        def buffer(self, frame: Frame) -> None:
            frame.buffer = self.temporary_identifier()
            self.writeline(f"{frame.buffer} = environment.buffer()")

        def _output_child_to_const(self, node: nodes.Expr, frame: Frame, finalize: Any) -> str:
            if not isinstance(node, nodes.TemplateData):
                raise nodes.Impossible()
            return super()._output_child_to_const(node, frame, finalize)

        def visit_Concat(self, node: nodes.Concat, frame: Frame) -> None:
            if frame.eval_ctx.volatile:
                join = "(markup_join if context.eval_ctx.volatile else str_join)"  # as Jinja writes it
            else:
                join = "markup_join" if frame.eval_ctx.autoescape else "str_join"
            self.write(f"{join}(environment.tilde()")
            for arg in node.nodes:
                self.write(".add(")
                self.visit(arg, frame)
                self.write(")")
            self.write(".items)")

        def visit_Getitem(self, node: nodes.Getitem, frame: Frame) -> None:
            """Jinja's; a slice, which Jinja writes as Python's own (not through the environment's getitem), with
            the string or list it makes counted (`_counted`): `s[1:]` copies `s`."""
            if not isinstance(node.arg, nodes.Slice):
                return super().visit_Getitem(node, frame)
            self.write("environment.sliced(")
            super().visit_Getitem(node, frame)
            self.write(")")
            return None

    class Tracker(meta.TrackingCodeGenerator, Generator):
        """What `meta.find_undeclared_variables` compiles with, folding nothing either."""

    class Env(ImmutableSandboxedEnvironment):
        intercepted_binops = frozenset({"*", "**", "+", "%"})
        code_generator_class = Generator
        tracker = Tracker
        concat = staticmethod(_written)
        tilde = _Tilde
        sliced = staticmethod(_counted)
        buffer = _Buffer

        def getattr(self, obj: Any, attribute: str) -> Any:
            """Jinja's: `row.copy` is the dict's method even where the row has a column 'copy' (as a template has
            always read it); such a read is noted, for the warning that the column is read as `row['copy']`."""
            value = super().getattr(obj, attribute)
            if type(obj) is dict and callable(value) and attribute in obj:
                state = _render_state()
                if state.methods is None:
                    state.methods = []
                state.methods.append((attribute, obj))
            return value

        def wrap_str_format(self, value: Any) -> Callable[..., str] | None:
            """str.format and format_map as Jinja sandboxes them, with each field's width and precision checked
            first; other str methods that can make long strings, checked likewise."""
            wrapped = super().wrap_str_format(value)
            if wrapped is None:
                return _sized_method(value)
            s = value.__self__
            from markupsafe import Markup

            formatter = EscapeFormatter(self, escape=s.escape) if isinstance(s, Markup) else Formatter(self)
            is_format_map = value.__name__ == "format_map"

            def checked(*args: Any, **kwargs: Any) -> str:
                if is_format_map:
                    if kwargs or len(args) != 1:
                        return wrapped(*args, **kwargs)  # the TypeError format_map gives
                    args, kwargs = (), args[0]
                return type(s)(formatter.vformat(s, args, kwargs))

            return functools.update_wrapper(checked, value)

        def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
            if operator == "%" and isinstance(left, (str, bytes)):
                _check_percent(left, right)
                _as_texts(right)
                if hasattr(left, "__html__"):
                    _markup_percent(left, right)
            if operator == "+" and isinstance(left, str) and isinstance(right, str) \
                    and (hasattr(left, "__html__") or hasattr(right, "__html__")):  # markup escapes the other
                _made(_escaped_length(left) + _escaped_length(right), "+ on markup (| e), which escapes what it adds,")
            ints = all(isinstance(v, int) and not isinstance(v, bool) for v in (left, right))
            if operator == "**" and ints and right > 0 and abs(left) > 1 and right * math.log2(abs(left)) > MAX_BITS:
                raise _Budget(f"{_short(left)} ** {right:,} would have some {int(right * math.log2(abs(left))):,} "
                              f"bits; a template makes numbers of at most {MAX_BITS:,}")
            if operator == "*" and ints and left.bit_length() + right.bit_length() > MAX_BITS + 1:
                raise _Budget(f"{_short(left)} * {_short(right)} would have some {left.bit_length() + right.bit_length():,} "
                              f"bits; a template makes numbers of at most {MAX_BITS:,}")
            if operator == "*":
                seq, n = (left, right) if isinstance(left, (str, list, tuple)) else (right, left)
                if isinstance(seq, (str, list, tuple)) and isinstance(n, int) and len(seq) * n > MAX_MADE:
                    raise _Budget(f"a {type(seq).__name__} of {len(seq):,} repeated {n:,} times would be "
                                  f"{len(seq) * n:,} long; a template makes at most {MAX_MADE:,}")
            if operator == "+" and isinstance(left, (str, list, tuple)) and isinstance(right, (str, list, tuple)) \
                    and len(left) + len(right) > MAX_MADE:
                raise _Budget(f"joining {len(left):,} and {len(right):,} items would be more than a template makes "
                              f"({MAX_MADE:,})")
            return _counted(super().call_binop(context, operator, left, right))

        def call(self, context: Any, obj: Any, /, *args: Any, **kwargs: Any) -> Any:
            """A call (a method, a function), with the string or list it returns counted (`_counted`)."""
            return _counted(super().call(context, obj, *args, **kwargs))

    def counted_range(*args: int) -> range:
        made = safe_range(*args)
        state = _render_state()
        left = state.left - len(made)
        if left < 0:
            raise _Budget(f"range() would give more than {RANGE_BUDGET:,} values in one render (loops in loops?)")
        state.left = left
        return made

    env = Env(undefined=jinja2.StrictUndefined, autoescape=False, keep_trailing_newline=True,
              finalize=jinja2.pass_context(_written_value))
    # A template renders the same every time, or each plan would see new jobs (and each run pay for them).
    for name, (kind, _) in _REMOVED.items():
        del (env.globals if kind == "function" else env.filters)[name]
    counted_range.__name__ = counted_range.__qualname__ = "range"  # as a template writes it
    env.globals["range"] = counted_range

    def guard(name: str, check: Callable[[dict[str, Any]], None]) -> None:
        """The filter `name`, with `check` given its arguments by name first (it may replace an iterable by
        the list it reads, which is then what the filter gets)."""
        f = env.filters[name]
        signature = inspect.signature(f)

        @functools.wraps(f)
        def checked(*args: Any, **kwargs: Any) -> Any:
            bound = signature.bind(*args, **kwargs)
            bound.apply_defaults()
            check(bound.arguments)
            return f(*bound.args, **bound.kwargs)

        env.filters[name] = checked

    def join(a: dict[str, Any]) -> None:
        a["value"] = items = list(a["value"])
        if a["attribute"] is not None:
            get = make_attrgetter(a["eval_ctx"].environment, a["attribute"])
            items = [get(item) for item in items]
        for item in items:
            _as_text(item)
            if _holds_null(item):
                _note_null()
        _joined(str(a["d"]), items)

    def indent(a: dict[str, Any]) -> None:
        width, text = a["width"], str(a["s"])
        _width(width, "indent() by a width")
        _made(len(text) + (text.count("\n") + 1) * (len(width) if isinstance(width, str) else max(width, 0)),
              "indenting")

    def wordwrap(a: dict[str, Any]) -> None:
        text, wrap = str(a["s"]), a["wrapstring"]
        lines = len(text.split()) + len(text) // max(a["width"], 1) + text.count("\n") + 1 \
            if isinstance(a["width"], int) else 0
        _made(len(text) + lines * len(env.newline_sequence if wrap is None else str(wrap)), "wrapping")

    guard("center", lambda a: _width(a["width"], "center() to a width"))
    guard("format", lambda a: (_check_percent(str(a["value"]), a["kwargs"] or a["args"]),
                               _as_texts(a["kwargs"] or a["args"])))
    guard("indent", indent)
    guard("join", join)
    guard("replace", lambda a: _replaced(str(a["s"]), str(a["old"]), str(a["new"]), a["count"]))
    guard("wordwrap", wordwrap)

    def summed(a: dict[str, Any]) -> None:
        """sum() of lists or tuples joins them, each step copying all before it: the total is checked first, and
        lists (or tuples) with a start of their kind are joined once, the same value made without the copies."""
        items = list(a["iterable"])
        if a["attribute"] is not None:
            get = make_attrgetter(a["environment"], a["attribute"])
            items = [get(item) for item in items]
            a["attribute"] = None
        a["iterable"] = items
        start = a["start"]
        sized = [v for v in (start, *items) if isinstance(v, (str, list, tuple))]
        if not sized:
            return
        total = sum(len(v) for v in sized)
        if total > MAX_MADE:
            raise _Budget(f"sum() of {len(items):,} items would make one {total:,} long; a template makes at most "
                          f"{MAX_MADE:,}")
        kind = type(start)
        if kind in (list, tuple) and all(type(v) is kind for v in items):
            a["start"] = kind(itertools.chain(start, *items))
            a["iterable"] = []

    guard("sum", summed)

    def checked_input(name: str, check: Callable[..., None]) -> None:
        """The filter `name`, with `check` given its input (and the rest of its arguments) first."""
        f = env.filters[name]
        at = 1 if getattr(f, "jinja_pass_arg", None) is not None else 0

        @functools.wraps(f)
        def checked(*args: Any, **kwargs: Any) -> Any:
            if len(args) > at:
                check(*args[at:], **kwargs)
            return f(*args, **kwargs)

        env.filters[name] = checked

    def noted_number(name: str) -> None:
        """The filter `name` (`float`, `int`), which makes its default of a text it cannot read as a number
        ("1,5" from a sheet that writes a decimal comma is 0.0): the same, the text noted when the template gave
        no default of its own, for a warning (an error would change what existing manifests render)."""
        f = env.filters[name]
        made = f("")  # its default: 0.0, 0

        @functools.wraps(f)
        def checked(value: Any, *args: Any, **kwargs: Any) -> Any:
            if args or "default" in kwargs or type(value) is not str or not value.strip():
                return f(value, *args, **kwargs)
            out = f(value, default=_UNREAD, **kwargs)
            if out is not _UNREAD:
                return out
            state = _render_state()
            if state.unread is None:
                state.unread = [(name, value)]
            else:  # every one: the template keeps a few to name and counts the others (`_record_unread`)
                state.unread.append((name, value))
            return made

        env.filters[name] = checked

    noted_number("float")
    noted_number("int")
    for name in ("e", "escape"):
        checked_input(name, _escaped("escape"))
    checked_input("forceescape", _escaped("forceescape", force=True))
    checked_input("urlencode", _urlencoded)
    checked_input("tojson", lambda value, indent=None: _json_length(value, indent))
    checked_input("xmlattr", lambda d, autospace=True: _xmlattr_length(d))
    guard("batch", lambda a: _width(a["linecount"] if a["fill_with"] is not None else 0, "batch() filled to a size",
                                         "a list"))
    for name, f in list(env.filters.items()):
        if name not in _READS_OBJECTS:
            f = _text_of_input(f)
        env.filters[name] = _counting(f)
    return env


# What `float` and `int` are given as their default to tell a text they read as no number (`_env`).
_UNREAD = object()


def __getattr__(name: str) -> Any:
    if name == "ENV":
        return _env()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


# `{{ name }}` with nothing but spaces inside; names Jinja reads as something else go to Jinja.
_PLAIN_NAME = re.compile(r"\{\{[ \t]*([A-Za-z_][A-Za-z0-9_]*)[ \t]*\}\}")
_NOT_PLAIN = frozenset({
    "true", "false", "none", "True", "False", "None", "and", "or", "not", "in", "is", "if", "else",
    "range", "dict", "cycler", "joiner", "namespace",
})

# One `{{ expression }}` and nothing else but white space. Jinja's whitespace control is not part of the
# expression: a `-` or `+` right after `{{` and a `-` right before `}}` only strip the white space outside the
# braces (which a one-expression value drops anyway), exactly as Jinja's lexer reads them.
_SINGLE = re.compile(r"^\s*\{\{[-+]?(?P<expr>.*?)-?\}\}\s*$", re.DOTALL)
_MARKERS = ("{{", "{%", "{#")


class TemplateProblem(Exception):
    """A template that does not compile or render; the caller adds the location. `lineno` is the template's own
    line (from 1) where it fails, when known, for the caller to find in the file."""

    def __init__(self, message: str, lineno: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.lineno = lineno
        # A mapping's missing key (`shot.promt`): the problem said again for a mapping that is a row of the data
        # file named (`row_of(file)`), whose keys are its columns; None for any other problem.
        self.row_of: Callable[[str], TemplateProblem] | None = None
        self.mapping: str | None = None  # that mapping's name in the template
        # The template's text, and where in it the failing name is read (None: not known), for the caller to find
        # that spot in the file.
        self.source: str | None = None
        self.spot: int | None = None


def _close(name: str, names: Iterable[Any]) -> str:
    """'; did you mean 'x'?' for the one of `names` closest to `name`, or ''."""
    found = difflib.get_close_matches(name, [n for n in names if isinstance(n, str)], n=1)
    return f"; did you mean '{found[0].replace(chr(9), chr(92) + 't')}'?" if found else ""  # a tab said, as `_listed`


def _twin(name: str, names: Iterable[Any]) -> str | None:
    """The one of `names` that reads as `name` but is other text (`caf\\u00e9` for `cafe\\u0301`: a letter
    composed or not, or an invisible character in one), which a "did you mean" would show as the same name."""
    if name.isascii() and all(isinstance(n, str) and n.isascii() for n in names):
        return None
    read = alike(name)
    return next((n for n in names if isinstance(n, str) and n != name and alike(n) == read), None)


def _alike_said(name: str, twin: str) -> str:
    return f"the same but for {unlike(twin, name)}: write them alike"


def _listed(names: Iterable[Any], most: int = 12) -> str:
    shown = [str(n).replace("\t", "\\t") for n in names if isinstance(n, str)]  # a tab is said, not shown as spacing
    return ", ".join(shown[:most]) + (", ..." if len(shown) > most else "")


_NO_ATTRIBUTE = re.compile(r"'dict object' has no attribute '(?P<key>[^']*)'")


def _undefined_problem(message: str, source: str, context: Mapping[str, Any], lineno: int | None) -> TemplateProblem:
    """Jinja's UndefinedError `message` of the template `source` rendered with `context`: a name not defined
    gets the closest name in scope, a mapping's key not there (`'dict object' has no attribute`) names the
    mapping, its keys and the closest of them."""
    named = _UNDEFINED_NAME.fullmatch(message)
    if named is not None and _a_name(named[1]):
        said = _explained(message)
        if said == message:
            twin = _twin(named[1], context)
            if twin is not None:
                said = (f"'{escaped(named[1])}' is undefined; '{escaped(twin)}' is defined, "
                        f"{_alike_said(named[1], twin)}")
            else:
                said += _close(named[1], context)
        return _problem(said, source, lineno=lineno, name=named[1])
    missing = _NO_ATTRIBUTE.fullmatch(message)
    if missing is not None:
        key = missing["key"]
        pattern = r"([A-Za-z_][A-Za-z0-9_]*)\s*(?:\.\s*" + re.escape(key) + r"(?![A-Za-z0-9_])|\[\s*['\"]" + \
            re.escape(key) + r"['\"]\s*\])"
        for m in re.finditer(pattern, source):
            holder = context.get(m[1])
            if isinstance(holder, Mapping) and key not in holder:
                var, keys = m[1], list(holder)

                def said(file: str | None, var: str = var, keys: list[Any] = keys) -> TemplateProblem:
                    what, kind = (f"{var} (a row of {file})", "column") if file else (var, "key")
                    twin = _twin(key, keys)
                    if twin is not None:
                        holder = "the file" if file else var
                        return _problem(f"{what} has no {kind} '{escaped(key)}'; {holder} has '{escaped(twin)}', "
                                        f"{_alike_said(key, twin)}", source, lineno=lineno, name=var)
                    return _problem(f"{what} has no {kind} '{key}'{_close(key, keys)} ({kind}s: {_listed(keys)})",
                                    source, lineno=lineno, name=var)

                problem = said(None)
                problem.row_of, problem.mapping = said, var
                return problem
    return _problem(_explained(message), source, lineno=lineno)


# A template longer than this is quoted as the part around where it fails: a 100 KB prompt made a 100 KB error.
EXCERPT = 160


def _problem(message: str, source: str, *, lineno: int | None = None, name: str | None = None) -> TemplateProblem:
    """`message` about the template `source`, quoting it (or, when long, the part around the failing line and
    name), with the template's line: `lineno` as Jinja gives it, else the line of the first tag reading `name`."""
    lines = LINE_BREAK.split(source)
    spot = None
    if name is not None:
        if lineno is None:  # the line of the one read that can fail, if there is one
            spot = _only_read(source, name, None)
            lineno = None if spot is None else len(LINE_BREAK.findall(source, 0, spot)) + 1
        elif 1 <= lineno <= len(lines):
            spot = _only_read(source, name, lineno)
    if lineno is not None and not 1 <= lineno <= len(lines):
        lineno = None
    if len(source) <= EXCERPT:
        return _located(TemplateProblem(f"{message} (in {source!r})", lineno), source, spot)
    text, where = source, ""
    at = spot
    if lineno is not None and len(lines) > 1:
        text, where = lines[lineno - 1], f"line {lineno} of the template: "
        spot = _spot_of_name(text, name) if name is not None else None
    if spot is None:
        found = [i for i in (text.find("{{"), text.find("{%")) if i >= 0]
        spot = min(found) if found else 0
    start = max(0, min(spot - EXCERPT // 3, len(text) - EXCERPT))
    end = min(len(text), start + EXCERPT)
    cut = ("..." if start else "") + repr(text[start:end]) + ("..." if end < len(text) else "")
    return _located(TemplateProblem(f"{message} (in {where}{cut})", lineno), source, at)


def _located(problem: TemplateProblem, source: str, spot: int | None) -> TemplateProblem:
    problem.source, problem.spot = source, spot
    return problem


def _spot_of_name(source: str, name: str) -> int | None:
    """Where `name` is first read inside a `{{ }}` or `{% %}` tag of `source`, or None."""
    word = re.compile(r"(?<![A-Za-z0-9_])" + re.escape(name) + r"(?![A-Za-z0-9_])")
    for tag in re.finditer(r"\{\{.*?\}\}|\{%.*?%\}", source, re.DOTALL):
        m = word.search(source, tag.start() + 2, tag.end() - 2)
        if m is not None:
            return m.start()
    return None


# A read of a name that cannot fail for its being undefined: tested (`x is defined`) or given a default (`x | d(1)`).
_GUARDED = re.compile(r"\s*(?:is\s+(?:not\s+)?(?:defined|undefined)|\|\s*(?:default|d)(?![A-Za-z0-9_]))")


def _only_read(source: str, name: str, lineno: int | None) -> int | None:
    """Where `name` is read inside a tag of `source` (on its line `lineno`, when given) other than where it is
    guarded (`_GUARDED`), when that is the one such read; None when there are more (which of them failed is not
    known: an exact spot would point at one that may be fine) or none."""
    word = re.compile(r"(?<![A-Za-z0-9_])" + re.escape(name) + r"(?![A-Za-z0-9_])")
    found = []
    for tag in re.finditer(r"\{\{.*?\}\}|\{%.*?%\}", source, re.DOTALL):
        for m in word.finditer(source, tag.start() + 2, tag.end() - 2):
            if lineno is not None and len(LINE_BREAK.findall(source, 0, m.start())) + 1 != lineno:
                continue
            if not _GUARDED.match(source, m.end(), tag.end() - 2):
                found.append(m.start())
    return found[0] if len(found) == 1 else None


def _template_line(exc: BaseException) -> int | None:
    """The template line Jinja's rewritten traceback names for an error raised while rendering, or None."""
    lineno, tb = None, exc.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == "<template>":
            lineno = tb.tb_lineno
        tb = tb.tb_next
    return lineno


# Jinja's "'name' is undefined": a name of any script, its combining marks too (`cafe\u0301`, as macOS writes
# text), which Python's \w does not match though Jinja reads them as part of a name; checked by `_a_name`.
_UNDEFINED_NAME = re.compile(r"'([^'\s]+)' is undefined")


def _a_name(text: str) -> bool:
    """Whether `text` reads as a name (once its letters are composed, as Python and Jinja compare them)."""
    return unicodedata.normalize("NFKC", text).isidentifier()


@dataclass(frozen=True, slots=True)
class Compiled:
    """A compiled value: a constant, a typed expression, a string template, or a list/mapping of them."""

    kind: str                      # "const" | "expr" | "text" | "concat" | "list" | "map"
    source: Any
    names: frozenset[str]
    _fn: Any = None
    _items: tuple[tuple[Any, Compiled], ...] = ()
    # The booleans its renders wrote into text (Python writes 'True'), each with the name that held it, if known.
    noticed: dict[bool, str | None] = field(default_factory=dict, compare=False, hash=False)
    # The nulls its renders wrote into text (Python writes 'None'), by the name that held each (None if not known):
    # [how many renders, the first jobs' keys (None for a render outside a job, a var's made once)].
    nulls: dict[str | None, list[Any]] = field(default_factory=dict, compare=False, hash=False)
    # The names whose list, tuple or dict its renders wrote whole into text (`{{ tags }}` is "['snow', 'dusk']").
    whole: set[str] = field(default_factory=set, compare=False, hash=False)
    # The methods its renders read as a row's attribute where the row has a column of that name (`r.copy`, not
    # `r['copy']`): each as written (`r.copy`, or `.copy` when the row's name is not known).
    methods: set[str] = field(default_factory=set, compare=False, hash=False)
    # The texts its renders gave `| float` or `| int` that they read as no number, making 0.0 or 0 ('1,5', a decimal
    # comma): (the filter, the text) -> the name that held it (None if not known), the first job's key.
    unread: dict[tuple[str, str], tuple[str | None, Any]] = field(default_factory=dict, compare=False, hash=False)
    # Those texts past the first `_UNREAD_NAMED` (`unread` names them): the text -> the filters that read it, and
    # for the first few, the name that held it and the first job's key (else None, None).
    unread_more: dict[str, tuple[set[str], str | None, Any]] = field(default_factory=dict, compare=False, hash=False)

    def booleans(self) -> dict[bool, str | None]:
        """The booleans this template (or a template in its list or mapping) wrote into text, as `noticed`."""
        found = dict(self.noticed)
        for _, c in self._items:
            for value, name in c.booleans().items():
                found.setdefault(value, name)
        return found

    def null_names(self) -> dict[str | None, tuple[int, list[str | None]]]:
        """The names whose null this template (or a template in its list or mapping) wrote into text, as 'None':
        each with how many renders did, and the keys of the first jobs (None: a render of no job)."""
        found = {name: (count, list(keys)) for name, (count, keys) in self.nulls.items()}
        for _, c in self._items:
            for name, (count, keys) in c.null_names().items():
                had = found.get(name)
                found[name] = (count, keys) if had is None else (had[0] + count, (had[1] + keys)[:_NULL_JOBS])
        return found

    def unread_numbers(self) -> dict[tuple[str, str], tuple[str | None, Any]]:
        """The texts this template (or a template in its list or mapping) gave `| float` or `| int` that they made
        their default of, as `unread`."""
        found = dict(self.unread)
        for _, c in self._items:
            for said, held in c.unread_numbers().items():
                found.setdefault(said, held)
        return found

    def unread_numbers_more(self) -> dict[str, tuple[set[str], str | None, Any]]:
        """The texts past those `unread_numbers` names that this template (or a template in its list or mapping)
        gave `| float` or `| int` and that they made their default of, as `unread_more`."""
        found = {text: (set(made_by), name, key) for text, (made_by, name, key) in self.unread_more.items()}
        for _, c in self._items:
            for text, (made_by, name, key) in c.unread_numbers_more().items():
                had = found.setdefault(text, (set(), name, key))
                had[0].update(made_by)
        return found

    def written_whole(self) -> set[str]:
        """The names whose list (tuple, dict) this template, or one in its list or mapping, wrote whole into text."""
        return self.whole.union(*(c.written_whole() for _, c in self._items))

    def methods_read(self) -> set[str]:
        """The row methods this template, or one in its list or mapping, read where a column has their name."""
        return self.methods.union(*(c.methods_read() for _, c in self._items))

    @property
    def renderer(self) -> Callable[[Mapping[str, Any]], Any]:
        """`render` itself, or for text made only of literals and names, a faster function that does the same."""
        return self._fn if self.kind == "concat" or type(self._fn) is _Name else self.render

    def reusing(self, most: int = 4096) -> Callable[[Mapping[str, Any]], Any]:
        """`renderer`, which for text made only of literals and names makes the text of each combination of the
        values it reads once, while they are strings and integers: the jobs of a matrix that share the values a
        template reads (those of some of its axes) share its text. Each call gives a renderer of its own, holding at
        most `most` texts."""
        reusing = getattr(self._fn, "reusing", None) if self.kind == "concat" else None
        return self.renderer if reusing is None else reusing(most)

    def render(self, context: Mapping[str, Any]) -> Any:
        """Evaluate with `context`. Raises TemplateProblem naming an undefined variable or the error."""
        if self.kind == "const":
            return self.source
        if self.kind == "concat" or type(self._fn) is _Name:
            return self._fn(context)
        import jinja2

        state = _Render()
        budget = _rendering.set(state)
        try:
            if self.kind == "expr":
                value = self._fn(context)
                if isinstance(value, jinja2.Undefined):
                    value._fail_with_undefined_error()
                if _routine(value):
                    raise _uncalled(value)  # `{{ s.title }}`: the method, not the text it makes
                _made_once(value)
                _not_too_long(value)
                if isinstance(value, str):  # `{{ tags | join(', ') }}`: text, made with 'None'
                    if state.null:
                        _record_null(self.nulls, _holder(self, context, None), context)
                    if state.whole is not None:
                        _record_whole(self, context, state.whole)
                if state.methods is not None:
                    _record_methods(self, context, state.methods)
                if state.unread is not None:
                    _record_unread(self, context, state.unread)
                return value
            if self.kind == "text":
                noticed = self.noticed
                known = len(noticed)
                text = self._fn.render(context, **{_NOTICED: noticed})
                if len(noticed) > known:
                    for value, name in noticed.items():
                        if name is None:
                            noticed[value] = _holder(self, context, value)
                if state.null:
                    _record_null(self.nulls, _holder(self, context, None), context)
                if state.whole is not None:
                    _record_whole(self, context, state.whole)
                if state.methods is not None:
                    _record_methods(self, context, state.methods)
                if state.unread is not None:
                    _record_unread(self, context, state.unread)
                return text
        except (_Budget, _NotText) as exc:
            said = _call_it(exc, self.source) if isinstance(exc, _NotText) else str(exc)
            raise _problem(said, self.source, lineno=_template_line(exc)) from None
        except jinja2.UndefinedError as exc:
            raise _undefined_problem(str(exc.message), self.source, context, _template_line(exc)) from exc
        except jinja2.TemplateError as exc:
            raise _problem(_explained(str(exc)), self.source, lineno=_template_line(exc)) from exc
        except Exception as exc:  # anything a template does wrong (a filter's assertion, endless recursion)
            raise _problem(exception_text(exc), self.source, lineno=_template_line(exc)) from exc
        finally:
            _rendering.reset(budget)
        if self.kind == "list":
            return [c.render(context) for _, c in self._items]
        return {k: c.render(context) for k, c in self._items}


def is_template(value: Any) -> bool:
    return isinstance(value, str) and any(m in value for m in _MARKERS)


def compile_value(value: Any) -> Compiled:
    """Compile a manifest value once. Raises TemplateProblem on a syntax error."""
    if isinstance(value, str):
        if not is_template(value):
            return Compiled("const", value, frozenset())
        plain = _plain_parts(value)
        if plain is not None:
            names = [p for lit, p in plain if not lit]
            if len(names) == 1 and all(not p.strip() for lit, p in plain if lit):
                return Compiled("expr", value, frozenset(names), _Name(names[0], value))
            noticed: dict[bool, str | None] = {}
            nulls: dict[str | None, list[Any]] = {}
            whole: set[str] = set()
            return Compiled("concat", value, frozenset(names), _concat(value, plain, noticed, nulls, whole),
                            noticed=noticed, nulls=nulls, whole=whole)
        import jinja2

        ENV = _env()
        m = _SINGLE.match(value)
        if m and m.group("expr").rstrip().endswith("}") and _closes_early(value):
            m = None
        try:
            if m and not any(x in m.group("expr") for x in _MARKERS[:2]) and "}}" not in m.group("expr"):
                expr = m.group("expr").strip()
                parsed = ENV.parse("{{ " + expr + " }}")
                _finite_numbers(parsed, value)
                fn = ENV.compile_expression(expr, undefined_to_none=False)
                names = _undeclared(parsed)
                return Compiled("expr", value, frozenset(names), _ExprCall(fn))
            ast = ENV.parse(value)
            _reads_no_file(ast, value)
            _finite_numbers(ast, value)
            names = _undeclared(ast)
            parts = _simple_parts(ast)
            if parts is not None:
                noticed = {}
                nulls = {}
                whole = set()
                return Compiled("concat", value, frozenset(names), _concat(value, parts, noticed, nulls, whole),
                                noticed=noticed, nulls=nulls, whole=whole)
            tpl = ENV.from_string(value)
            return Compiled("text", value, frozenset(names), tpl)
        except jinja2.TemplateSyntaxError as exc:
            message = _explained(str(exc.message))
            if message == exc.message:
                message = f"template syntax error: {message}"
            lineno = exc.lineno
            if m and lineno is not None and exc.source is not None and exc.source != value:  # the expression's
                raw = m.group("expr")                                                    # line, in the value
                lineno += len(LINE_BREAK.findall(value, 0, m.start("expr") + len(raw) - len(raw.lstrip())))
            raise _problem(message, value, lineno=lineno) from exc
        except RecursionError as exc:  # Jinja's parser recurses once per nested bracket
            raise TemplateProblem(f"template nested too deeply to read (in {value[:80]!r}...)") from exc
    if isinstance(value, list):
        items = tuple((i, compile_value(v)) for i, v in enumerate(value))
        if all(c.kind == "const" for _, c in items):
            return Compiled("const", value, frozenset())
        return Compiled("list", value, frozenset().union(*(c.names for _, c in items)), None, items)
    if isinstance(value, dict):
        items = tuple((k, compile_value(v)) for k, v in value.items())
        if all(c.kind == "const" for _, c in items):
            return Compiled("const", value, frozenset())
        return Compiled("map", value, frozenset().union(*(c.names for _, c in items)), None, items)
    return Compiled("const", value, frozenset())


def _reads_no_file(ast: nodes.Template, source: str) -> None:
    """Refuse a template that would read another: `{% include %}`, `{% import %}` and `{% extends %}` have no files
    to read here (Jinja's error is "no loader for this environment specified")."""
    from jinja2 import nodes

    found = next(ast.find_all((nodes.Include, nodes.Import, nodes.FromImport, nodes.Extends)), None)
    if found is not None:
        tag = {nodes.Include: "include", nodes.Extends: "extends"}.get(type(found), "import")
        raise _problem(f"templates cannot include files ({{% {tag} %}}): write the text in the template, or put the "
                       "shared part in a var (vars: {intro: ...}) and write {{ intro }} where it goes",
                       source, lineno=found.lineno)


def _finite_numbers(ast: nodes.Template, source: str) -> None:
    """Refuse a number too large to be one (`1e999`, infinity), which Jinja would compile to a name Python does
    not have ("NameError: name 'inf' is not defined")."""
    import math

    from jinja2 import nodes

    for const in ast.find_all(nodes.Const):
        if isinstance(const.value, float) and not math.isfinite(const.value):
            raise _problem("a number in the template is too large to be one (it reads as infinity): write a number "
                           "below 1e308", source, lineno=const.lineno)


def _closes_early(value: str) -> bool:
    """Whether Jinja ends the value's `{{` at a `}}` (or `-}}`) before its last one, the rest being text:
    `{{ x -}}}` and `{{ x.y }}}` render `5}`. One that Jinja cannot read is left to the caller to report."""
    import jinja2

    try:
        tokens = list(_env().lex(value))
    except jinja2.TemplateSyntaxError:
        return False
    ends = [i for i, (_, kind, _) in enumerate(tokens) if kind == "variable_end"]
    return bool(ends) and any(kind != "data" or text.strip() for _, kind, text in tokens[ends[0] + 1:])


def _undeclared(ast: nodes.Template) -> set[str]:
    """The names a parsed template reads from its context (`jinja2.meta.find_undeclared_variables`, compiled by
    this module's code generator, so that finding them makes nothing)."""
    ENV = _env()
    tracker = ENV.tracker(ENV)  # type: ignore[attr-defined]
    tracker.visit(ast)
    return set(tracker.undeclared_identifiers)


def _plain_parts(text: str) -> list[tuple[bool, str]] | None:
    """(is_literal, text or name) parts of text made only of literals and `{{ name }}`, read without Jinja;
    None for anything else (Jinja then decides), including what Jinja would read differently: `{%`,
    `{#`, a `{` or `{{` touching a `{{ name }}`, and carriage returns (Jinja normalises newlines)."""
    if "{%" in text or "{#" in text or "\r" in text:
        return None
    parts: list[tuple[bool, str]] = []
    pos = 0
    for m in _PLAIN_NAME.finditer(text):
        literal = text[pos:m.start()]
        if "{{" in literal or literal.endswith("{") or m.group(1) in _NOT_PLAIN:
            return None
        if literal:
            parts.append((True, literal))
        parts.append((False, m.group(1)))
        pos = m.end()
    if not parts or "{{" in text[pos:]:
        return None
    if pos < len(text):
        parts.append((True, text[pos:]))
    return parts


def _simple_parts(ast: nodes.Template) -> list[tuple[bool, str]] | None:
    """(is_literal, text or name) parts of a template made only of text and `{{ name }}`; else None."""
    from jinja2 import nodes

    ENV = _env()
    if len(ast.body) != 1 or not isinstance(ast.body[0], nodes.Output):
        return None if ast.body else []
    parts: list[tuple[bool, str]] = []
    for node in ast.body[0].nodes:
        if isinstance(node, nodes.TemplateData):
            parts.append((True, node.data))
        elif isinstance(node, nodes.Name) and node.ctx == "load" and node.name not in ENV.globals:
            parts.append((False, node.name))
        else:
            return None
    return parts


def _concat(source: str, parts: Sequence[tuple[bool, str]], noticed: dict[bool, str | None],
            nulls: dict[str | None, list[Any]], whole: set[str]) -> Callable[[Mapping[str, Any]], str]:
    """Render text and bare names as Jinja would (`str()` of each value), without building a Jinja context; a
    null noted in `nulls` as Jinja's renders note it, a boolean in `noticed`."""
    names = [p for lit, p in parts if not lit]
    if not names:
        text = "".join(p for _, p in parts)
        return lambda context: text
    slots = iter(range(len(names)))
    fmt = "".join(p.replace("{", "{{").replace("}", "}}") if lit else f"{{{next(slots)}!s}}" for lit, p in parts)
    get = operator.itemgetter(*names)
    form = fmt.format

    def one(context: Mapping[str, Any]) -> str:
        try:
            value = get(context)
        except KeyError as exc:
            raise _undefined(exc.args[0], source, context) from None
        if type(value) is not str and type(value) is not int:
            _checked_text(source, names, (value,), noticed, nulls, whole, context)
        return form(value)

    def many(context: Mapping[str, Any]) -> str:
        try:
            values = get(context)
        except KeyError as exc:
            raise _undefined(exc.args[0], source, context) from None
        for value in values:
            if type(value) is not str and type(value) is not int:
                _checked_text(source, names, values, noticed, nulls, whole, context)
                break
        return form(*values)

    render = one if len(names) == 1 else many
    render.reusing = functools.partial(_reusing, render, get, form, len(names) == 1)  # type: ignore[attr-defined]
    return render


def _reusing(render: Callable[[Mapping[str, Any]], str], get: Callable[[Mapping[str, Any]], Any],
             form: Callable[..., str], single: bool, most: int) -> Callable[[Mapping[str, Any]], str]:
    """`render` (of `_concat`), which makes the text of each combination of the values it reads once while they
    are strings and integers, whose text is theirs alone (`str` of a value of another type, a boolean or a null,
    is made by `render`, which notes it); at most `most` texts held, all forgotten past that."""
    texts: dict[Any, str] = {}

    def one(context: Mapping[str, Any]) -> str:
        try:
            value = get(context)
        except KeyError:
            return render(context)
        if type(value) is not str and type(value) is not int:
            return render(context)
        text = texts.get(value)
        if text is None:
            if len(texts) >= most:
                texts.clear()
            text = texts[value] = form(value)
        return text

    def many(context: Mapping[str, Any]) -> str:
        try:
            values = get(context)
        except KeyError:
            return render(context)
        for value in values:
            if type(value) is not str and type(value) is not int:
                return render(context)
        text = texts.get(values)
        if text is None:
            if len(texts) >= most:
                texts.clear()
            text = texts[values] = form(*values)
        return text

    return one if single else many


def _checked_text(source: str, names: Sequence[str], values: Sequence[Any], noticed: dict[bool, str | None],
                  nulls: dict[str | None, list[Any]], whole: set[str], context: Mapping[str, Any]) -> None:
    """`_as_text` of each of the `values` of `names` the template `source` writes; each name whose value is a null (or
    a list or dict holding one) noted in `nulls` once, a boolean in `noticed`, a list or dict in `whole`. Raises
    TemplateProblem."""
    noted: set[str] = set()
    for name, value in zip(names, values, strict=True):
        if type(value) is str or type(value) is int:
            continue
        if type(value) is bool:
            noticed.setdefault(value, name)
            continue
        if value is not None:
            try:
                _as_text(value)
            except (_Budget, _NotText) as exc:
                raise _problem(str(exc), source) from None
            if isinstance(value, (list, tuple, dict)):
                whole.add(name)
        if name not in noted and _holds_null(value):
            noted.add(name)
            _record_null(nulls, name, context)


# How many jobs a warning of a null written into text names.
_NULL_JOBS = 3


def _record_whole(c: Compiled, context: Mapping[str, Any], values: Sequence[Any]) -> None:
    """Note in `c.whole` the names template `c` reads whose value is one of the lists or dicts a render of it wrote
    whole into text (`values`)."""
    for n in c.names:
        value = context.get(n)
        if isinstance(value, (list, tuple, dict)) and any(value is v for v in values):
            c.whole.add(n)


def _record_methods(c: Compiled, context: Mapping[str, Any], read: Sequence[tuple[str, dict[str, Any]]]) -> None:
    """Note in `c.methods` the row methods a render of `c` read where the row has a column of their name."""
    for attribute, row in read:
        holder = next((n for n in sorted(c.names) if context.get(n) is row), None)
        c.methods.add(f"{holder or ''}.{attribute}")


def method_for_column(read: str) -> str:
    """The warning of a row's method read (`r.copy`, as `Compiled.methods` holds it) where the row has a column of
    that name: the method is what the template tests or passes on (under `if` always true), not the column."""
    holder, _, attribute = read.rpartition(".")
    owner = holder or "row"
    return (f"`{owner}.{attribute}` reads the method {attribute} of the row, not its column {attribute!r} (under "
            f"`if` it is always true); to read the column, write {owner}[{attribute!r}]")


# After a name in `Compiled.nulls`: its value is a list or dict that holds the null.
_HELD = " (holding it)"


def _record_null(nulls: dict[str | None, list[Any]], name: str | None, context: Mapping[str, Any]) -> None:
    """Note in `nulls` that a render of the job in `context` wrote the null of `name` into its text."""
    if name is not None and context.get(name) is not None:
        name += _HELD
    seen = nulls.get(name)
    if seen is None:
        nulls[name] = [1, [context.get("key")]]
        return
    seen[0] += 1
    if len(seen[1]) < _NULL_JOBS:
        seen[1].append(context.get("key"))


# How many texts `| float` or `| int` read as no number a template's warnings name, each on its own; those past it
# are counted in one more warning.
_UNREAD_NAMED = 3


def _record_unread(c: Compiled, context: Mapping[str, Any], unread: list[tuple[str, str]]) -> None:
    """Note in `c.unread` the texts a render of the job in `context` gave `| float` or `| int` that they read as no
    number, each once per template, with the name that held it and the job's key: the first `_UNREAD_NAMED` texts
    (under each filter that read them); the others in `c.unread_more`, the first few with their name and key."""
    for said in unread:
        if said in c.unread:
            continue
        made_by, text = said
        if text in c.unread_more:
            c.unread_more[text][0].add(made_by)
        elif len({t for _, t in c.unread}) < _UNREAD_NAMED or any(t == text for _, t in c.unread):
            c.unread[said] = (_holder(c, context, text), context.get("key"))
        elif len(c.unread_more) < _UNREAD_NAMED:
            c.unread_more[text] = ({made_by}, _holder(c, context, text), context.get("key"))
        else:
            c.unread_more[text] = ({made_by}, None, None)


def _holder(c: Compiled, context: Mapping[str, Any], value: Any) -> str | None:
    """The name among those template `c` reads whose value in `context` is `value` (a null or a boolean), the first
    the template reads; else the `name.key` of a mapping it reads (a data file's row) holding it there; else None."""
    names = [n for n in c.names if n in context and context[n] is value]
    if not names:
        for n in c.names:
            mapping = context.get(n)
            if isinstance(mapping, Mapping):
                for k, v in mapping.items():
                    if v is value and isinstance(k, str) and re.search(
                            re.escape(n) + r"\s*(?:\.\s*" + re.escape(k) + r"(?![A-Za-z0-9_])|\[\s*['\"]" + re.escape(k)
                            + r"['\"]\s*\])", c.source):
                        names.append(f"{n}.{k}")
    if not names and value is None:  # a list or dict holding the null, written whole or joined
        names = [n for n in c.names if n in context and isinstance(context[n], (list, tuple, dict))
                 and _holds_null(context[n])]
    if not names:
        return None
    source = c.source if isinstance(c.source, str) else ""
    spots = {n: _spot_of_name(source, n.split(".")[0]) for n in names}
    return min(names, key=lambda n: (spots[n] is None, spots[n] or 0, n))


def null_written(source: Any, name: str | None, jobs: str) -> str:
    """The warning of a template (`source`) that writes the null (YAML `~`, JSON null) of `name` (None: not known)
    into its text, where Python writes the word 'None' (in a paid prompt, a file name), for `jobs` ("job a=1")."""
    text = source if isinstance(source, str) else ""
    held = name is not None and name.endswith(_HELD)
    if held:
        name = name[:-len(_HELD)]
    what = f"'{name}' holds a null" if held else f"'{name}' is null" if name else "a value is null"
    default = re.search(re.escape(name) + r"\s*\|\s*(?:default|d)\(\s*(['\"])(.*?)\1", text) if name else None
    fallback = repr(default[2]) if default else "'serene'"
    note = "; default() fills in only a name that is not defined, not a null" if default else ""
    fix = (f"give it a value, or write a word of your own for it: {{{{ {name} or {fallback} }}}}{note}"
           if name and not held else
           f"give it a value, or leave the null out: {{{{ {name} | reject('none') | join(', ') }}}}" if name else
           "give it a value, or write a word of your own for it: {{ mood or 'serene' }}")
    return f"{what}, and the text reads 'None' for {jobs}: {fix}"


def _undefined(name: str, source: str, context: Mapping[str, Any] = {}) -> TemplateProblem:
    """`name` is not defined where the template `source` reads it (as Jinja would say it), with the closest of
    the names in `context`, those in scope."""
    return _undefined_problem(f"'{name}' is undefined", source, context, None)


class _Name:
    """A value that is exactly `{{ name }}`: the variable itself, with its type."""

    __slots__ = ("name", "source")

    def __init__(self, name: str, source: str) -> None:
        self.name, self.source = name, source

    def __call__(self, context: Mapping[str, Any]) -> Any:
        try:
            return context[self.name]
        except KeyError:
            raise _undefined(self.name, self.source, context) from None


class _ExprCall:
    __slots__ = ("fn",)

    def __init__(self, fn: Callable[..., Any]) -> None:
        self.fn = fn

    def __call__(self, context: Mapping[str, Any]) -> Any:
        return self.fn(**context)


def var_order(vars_: Mapping[str, Compiled]) -> list[str]:
    """Vars in an order where each comes after the vars it uses. Raises TemplateProblem naming a cycle."""
    order: list[str] = []
    state: dict[str, int] = {}

    def visit(name: str, stack: list[str]) -> None:
        mark = state.get(name, 0)
        if mark == 2:
            return
        if mark == 1:
            cycle = stack[stack.index(name):]
            raise TemplateProblem("vars reference each other in a cycle: " + " -> ".join(cycle))
        state[name] = 1
        for dep in sorted(vars_[name].names):
            if dep in vars_ and dep != name:
                visit(dep, stack + [dep])
            elif dep == name:
                raise TemplateProblem(f"vars reference each other in a cycle: {name} -> {name}")
        state[name] = 2
        order.append(name)

    for name in vars_:
        visit(name, [name])
    return order


def dependents(vars_: Mapping[str, Compiled], names: Sequence[str] | frozenset[str]) -> set[str]:
    """Vars whose value depends, directly or through other vars, on any of `names`."""
    out: set[str] = set()
    changed = True
    roots = set(names)
    while changed:
        changed = False
        for var, c in vars_.items():
            if var not in out and (c.names & roots or c.names & out):
                out.add(var)
                changed = True
    return out
