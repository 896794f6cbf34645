"""Templates: Jinja2 in a sandbox with StrictUndefined, compiled once, rendered per job.

A value that is exactly one `{{ expr }}` keeps the expression's type (`duration: "{{ d }}"` with d = 8
gives the integer 8); any other template renders to a string. Vars may reference each other in any
order; a cycle is an error that names it.

Text made only of literals and `{{ name }}` (the common case) is recognised without Jinja and rendered
by `str.format`; Jinja is imported the first time a template needs it.
"""

from __future__ import annotations

import contextvars
import functools
import math
import operator
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Mapping, Sequence

if TYPE_CHECKING:
    from jinja2 import nodes
    from jinja2.sandbox import ImmutableSandboxedEnvironment


# What one render may make, so that a slip (loops in loops, 'x' * 10**9) is an error, not a plan that hangs
# or fills memory: values handed out by range() in all, and the length of a string or list made by * or **.
RANGE_BUDGET = 1_000_000
MAX_MADE = 10_000_000
MAX_BITS = 14_000  # ** and * make numbers of some 4,200 digits at most (Python writes up to 4,300 as text)
_range_left: contextvars.ContextVar[int] = contextvars.ContextVar("range_left", default=RANGE_BUDGET)


class _Budget(Exception):
    """A render made more than a template may."""


def _short(number: int) -> str:
    text = str(number) if number.bit_length() < 200 else f"a number of {number.bit_length():,} bits"
    return text


@functools.lru_cache(maxsize=1)
def _env() -> ImmutableSandboxedEnvironment:
    import jinja2
    from jinja2.sandbox import ImmutableSandboxedEnvironment, safe_range

    class Env(ImmutableSandboxedEnvironment):
        intercepted_binops = frozenset({"*", "**", "+"})

        def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
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
            return super().call_binop(context, operator, left, right)

    def counted_range(*args: int) -> range:
        made = safe_range(*args)
        left = _range_left.get() - len(made)
        if left < 0:
            raise _Budget(f"range() would give more than {RANGE_BUDGET:,} values in one render (loops in loops?)")
        _range_left.set(left)
        return made

    env = Env(undefined=jinja2.StrictUndefined, autoescape=False, keep_trailing_newline=True)
    # A template renders the same every time, or each plan would see new jobs (and each run pay for them).
    del env.globals["lipsum"], env.filters["random"]
    env.globals["range"] = counted_range
    return env


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

_SINGLE = re.compile(r"^\s*\{\{(?P<expr>.*?)\}\}\s*$", re.S)
_MARKERS = ("{{", "{%", "{#")


class TemplateProblem(Exception):
    """A template that does not compile or render; the caller adds the location."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True, slots=True)
class Compiled:
    """A compiled value: a constant, a typed expression, a string template, or a list/mapping of them."""

    kind: str                      # "const" | "expr" | "text" | "concat" | "list" | "map"
    source: Any
    names: frozenset[str]
    _fn: Any = None
    _items: tuple[tuple[Any, Compiled], ...] = ()

    @property
    def renderer(self) -> Callable[[Mapping[str, Any]], Any]:
        """`render` itself, or for text made only of literals and names, a faster function that does the same."""
        return self._fn if self.kind == "concat" or type(self._fn) is _Name else self.render

    def render(self, context: Mapping[str, Any]) -> Any:
        """Evaluate with `context`. Raises TemplateProblem naming an undefined variable or the error."""
        if self.kind == "const":
            return self.source
        if self.kind == "concat" or type(self._fn) is _Name:
            return self._fn(context)
        import jinja2

        budget = _range_left.set(RANGE_BUDGET)
        try:
            if self.kind == "expr":
                value = self._fn(context)
                if isinstance(value, jinja2.Undefined):
                    value._fail_with_undefined_error()
                return value
            if self.kind == "text":
                return self._fn.render(context)
        except _Budget as exc:
            raise TemplateProblem(f"{exc} (in {self.source!r})") from None
        except jinja2.UndefinedError as exc:
            raise TemplateProblem(f"{exc.message} (in {self.source!r})") from exc
        except jinja2.TemplateError as exc:
            raise TemplateProblem(f"{exc} (in {self.source!r})") from exc
        except Exception as exc:  # anything a template does wrong (a filter's assertion, endless recursion)
            raise TemplateProblem(f"{type(exc).__name__}: {exc} (in {self.source!r})") from exc
        finally:
            _range_left.reset(budget)
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
            return Compiled("concat", value, frozenset(names), _concat(value, plain))
        import jinja2
        from jinja2 import meta

        ENV = _env()
        m = _SINGLE.match(value)
        try:
            if m and not any(x in m.group("expr") for x in _MARKERS[:2]) and "}}" not in m.group("expr"):
                expr = m.group("expr").strip()
                fn = ENV.compile_expression(expr, undefined_to_none=False)
                names = meta.find_undeclared_variables(ENV.parse("{{ " + expr + " }}"))
                return Compiled("expr", value, frozenset(names), _ExprCall(fn))
            ast = ENV.parse(value)
            names = meta.find_undeclared_variables(ast)
            parts = _simple_parts(ast)
            if parts is not None:
                return Compiled("concat", value, frozenset(names), _concat(value, parts))
            tpl = ENV.from_string(value)
            return Compiled("text", value, frozenset(names), tpl)
        except jinja2.TemplateSyntaxError as exc:
            raise TemplateProblem(f"template syntax error: {exc.message} (in {value!r})") from exc
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


def _concat(source: str, parts: Sequence[tuple[bool, str]]) -> Callable[[Mapping[str, Any]], str]:
    """Render text and bare names as Jinja would (`str()` of each value), without building a Jinja context."""
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
            return form(get(context))
        except KeyError as exc:
            raise TemplateProblem(f"'{exc.args[0]}' is undefined (in {source!r})") from None

    def many(context: Mapping[str, Any]) -> str:
        try:
            return form(*get(context))
        except KeyError as exc:
            raise TemplateProblem(f"'{exc.args[0]}' is undefined (in {source!r})") from None

    return one if len(names) == 1 else many


class _Name:
    """A value that is exactly `{{ name }}`: the variable itself, with its type."""

    __slots__ = ("name", "source")

    def __init__(self, name: str, source: str) -> None:
        self.name, self.source = name, source

    def __call__(self, context: Mapping[str, Any]) -> Any:
        try:
            return context[self.name]
        except KeyError:
            raise TemplateProblem(f"'{self.name}' is undefined (in {self.source!r})") from None


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
