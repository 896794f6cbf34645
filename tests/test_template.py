from __future__ import annotations

import re
import subprocess
import sys

import hypothesis
import pytest
from hypothesis import strategies as st

from runner.template import (
    TemplateProblem,
    compile_value,
    dependents,
    null_written,
    var_order,
)


def test_single_expression_keeps_its_type() -> None:
    assert compile_value("{{ d }}").render({"d": 8}) == 8
    assert compile_value("  {{ d * 2 }} ").render({"d": 4}) == 8
    assert compile_value("{{ flag }}").render({"flag": False}) is False


def test_text_template_renders_a_string() -> None:
    c = compile_value("{{ subject }} in {{ style }} style")
    assert c.render({"subject": "a fox", "style": "clay"}) == "a fox in clay style"
    assert c.names == {"subject", "style"}


def test_two_expressions_make_a_string() -> None:
    assert compile_value("{{ a }}{{ b }}").render({"a": 1, "b": 2}) == "12"


def test_constants_are_not_templates() -> None:
    c = compile_value("plain text")
    assert c.kind == "const" and c.render({}) == "plain text"
    assert compile_value(5).render({}) == 5


def test_undefined_name_is_an_error_naming_it() -> None:
    with pytest.raises(TemplateProblem, match="'styel' is undefined"):
        compile_value("{{ styel }} style").render({"style": "x"})


def test_undefined_in_single_expression_is_an_error() -> None:
    with pytest.raises(TemplateProblem, match="undefined"):
        compile_value("{{ nope }}").render({})


def test_syntax_error_is_reported() -> None:
    with pytest.raises(TemplateProblem, match="syntax error"):
        compile_value("{{ unclosed ")


def test_sandbox_blocks_attribute_escapes() -> None:
    with pytest.raises(TemplateProblem, match="unsafe"):
        compile_value("{{ x.__class__.__mro__ }}").render({"x": 1})


def test_lists_and_mappings_compile_recursively() -> None:
    c = compile_value({"a": ["{{ x }}", "y"], "b": "{{ x }}!"})
    assert c.render({"x": 3}) == {"a": [3, "y"], "b": "3!"}


def test_var_order_follows_references_in_any_order() -> None:
    vs = {"scene": compile_value("{{ subject }} in snow"), "subject": compile_value("a {{ animal }}"),
          "animal": compile_value("fox")}
    order = var_order(vs)
    assert order.index("animal") < order.index("subject") < order.index("scene")


def test_var_cycle_is_reported_with_the_cycle() -> None:
    vs = {"a": compile_value("{{ b }}"), "b": compile_value("{{ c }}"), "c": compile_value("{{ a }}")}
    with pytest.raises(TemplateProblem, match="a -> b -> c -> a"):
        var_order(vs)


def test_self_reference_is_a_cycle() -> None:
    with pytest.raises(TemplateProblem, match="cycle"):
        var_order({"a": compile_value("{{ a }}x")})


def test_dependents_are_transitive() -> None:
    vs = {"scene": compile_value("{{ subject }} {{ style }}"), "subject": compile_value("fox"),
          "title": compile_value("{{ scene }}!")}
    assert dependents(vs, frozenset({"style"})) == {"scene", "title"}


# -- text read without Jinja ---------------------------------------------------------------------------

_PIECES = ["{{ a }}", "{{b}}", "{{ a}}", "{{\ta }}", "{", "}", "{{", "}}", " ", "x", "\n", "\r", "{%", "%}", "{#",
           "#}", "-", "{{ true }}", "{{- a }}", "{{ a -}}", "{{ range }}", "{{ a.b }}", "{{ _c }}", "ü", "%s", "{0}"]


@hypothesis.settings(max_examples=400, deadline=None)
@hypothesis.given(st.lists(st.sampled_from(_PIECES), max_size=7).map("".join),
                  st.sampled_from(["fox", 3, 2.5, None, True, [1, "x"], {"k": 1}, "{{ a }}"]))
@hypothesis.example("{{x}}", "fox")
@hypothesis.example("{{x}}{{ a }}", "fox")
def test_text_read_without_jinja_is_what_jinja_makes_of_it(text: str, value: object) -> None:
    import jinja2
    from jinja2 import meta

    from runner.template import _env, _plain_parts

    env = _env()
    context = {"a": value, "b": "b", "_c": 0}
    plain = _plain_parts(text)
    try:
        ast = env.parse(text)
    except jinja2.TemplateSyntaxError:
        assert plain is None
        return
    if plain is None:
        return
    compiled = compile_value(text)
    assert compiled.names == meta.find_undeclared_variables(ast)
    if compiled.names - context.keys():  # a name no job has (`{{x}}`): refused as Jinja's StrictUndefined is
        for render in (compiled.renderer, compiled.render):
            with pytest.raises(TemplateProblem, match="is undefined"):
                render(context)
        return
    if compiled.kind == "expr":
        expected = env.compile_expression(text.strip()[2:-2].strip(), undefined_to_none=False)(**context)
    else:
        expected = env.from_string(text).render(context)
    assert compiled.renderer(context) == compiled.render(context) == expected
    assert type(compiled.render(context)) is type(expected)
    # 'None' in the text is noted by both, of the name that held it
    wrote = compiled.kind != "expr" and value is None and "a" in compiled.names
    assert compiled.null_names() == ({"a": (3, [None] * 3)} if wrote else {})


def test_plain_text_and_single_names_need_no_jinja() -> None:
    code = (
        "import sys\n"
        "from runner.template import compile_value\n"
        "assert compile_value('take {{ seed }} of {{ style }}').render({'seed': 3, 'style': 'x'}) == 'take 3 of x'\n"
        "assert compile_value(' {{ seed }}\\n').render({'seed': 3}) == 3\n"
        "assert 'jinja2' not in sys.modules, 'jinja2 was imported'\n"
        "assert compile_value('{{ seed + 1 }}').render({'seed': 3}) == 4\n"
        "assert 'jinja2' in sys.modules\n"
    )
    done = subprocess.run([sys.executable, "-c", code], check=False, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_a_single_name_that_is_undefined_names_it() -> None:
    with pytest.raises(TemplateProblem, match=r"'seed' is undefined \(in '\{\{ seed \}\}'\)"):
        compile_value("{{ seed }}").render({})


@pytest.mark.parametrize("source", ["{{ [1, 2, 3] | random }}", "{{ lipsum(1) }}", "a {{ lipsum() }} b"])
def test_templates_that_would_render_differently_each_time_are_refused(source: str) -> None:
    """A job's hash comes from what its templates render: a random one would be a new job, paid again, each run."""
    with pytest.raises(TemplateProblem, match="random|lipsum"):
        compile_value(source).render({})


@pytest.mark.parametrize(("source", "name", "instead"), [
    ("a fox, {{ styles | random }} style", "the filter 'random'", "matrix axis"),          # refused as it compiles
    ("{% for s in styles %}{{ s | random }}{% endfor %}", "the filter 'random'", "matrix axis"),
    ("{{ styles | random if styles else 1 }}", "the filter 'random'", "matrix axis"),      # refused as it renders
    ("{{ lipsum(1) }}", "the function 'lipsum'", "write the text out"),
    ("a {{ lipsum(1) }} b", "the function 'lipsum'", "write the text out"),
    ("{{ lipsum }}", "the function 'lipsum'", "write the text out"),                       # read without Jinja
    ("a {{ lipsum }} b", "the function 'lipsum'", "write the text out"),
])
def test_a_filter_left_out_on_purpose_says_why_and_what_to_write_instead(source: str, name: str, instead: str) -> None:
    """Not Jinja's "No filter named 'random'", which reads as a typo or a missing plugin."""
    with pytest.raises(TemplateProblem) as exc:
        compile_value(source).render({"styles": ["anime", "clay"]})
    assert f"{name} is left out on purpose: a template must render the same each time" in exc.value.message
    assert instead in exc.value.message and "No filter named" not in exc.value.message
    assert "syntax error" not in exc.value.message


def test_the_way_a_refused_random_filter_suggests_renders_one_value_per_job() -> None:
    pick = compile_value("{{ styles[seed % styles | length] }}")
    assert [pick.render({"styles": ["anime", "clay"], "seed": s}) for s in (1, 2, 3)] == ["clay", "anime", "clay"]


def test_other_unknown_filters_and_names_keep_jinjas_message() -> None:
    with pytest.raises(TemplateProblem, match=r"template syntax error: No filter named 'randm'\."):
        compile_value("{{ styles | randm }}")
    with pytest.raises(TemplateProblem, match=r"^'random' is undefined"):
        compile_value("{{ random }}").render({})
    assert compile_value("a {{ lipsum }} b").render({"lipsum": "text"}) == "a text b"  # a var of that name


@pytest.mark.parametrize(("source", "error"), [
    ("{{ 1 | truncate(-5) }}", "AssertionError: expected length >= 3, got -5"),
    ("{% macro f(n) %}{{ f(n) }}{% endmacro %}{{ f(1) }}", "RecursionError: maximum recursion depth exceeded"),
])
def test_any_failure_while_rendering_is_a_template_problem(source: str, error: str) -> None:
    with pytest.raises(TemplateProblem, match=error):
        compile_value(source).render({})


def test_a_template_nested_too_deeply_is_a_template_problem() -> None:
    with pytest.raises(TemplateProblem, match="nested too deeply"):
        compile_value("{{ " + "(" * 1000 + "1" + ")" * 1000 + " }}")


@pytest.mark.parametrize(("source", "problem"), [
    ("{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}x",
     "range() would give more than 1,000,000 values in one render"),
    ("{{ 'x' * 1000000000 }}", "a str of 1 repeated 1,000,000,000 times would be 1,000,000,000 long"),
    ("{{ [1, 2] * 10000000 }}", "a list of 2 repeated 10,000,000 times"),
    ("{{ 10 ** 100000000 }}", "10 ** 100,000,000 would have some 332,192,809 bits"),
    ("{{ ((10 ** 1000) ** 1000) ** 1000 }}", "** 1,000 would have some 3,321,928 bits"),
    ("{{ 10 ** 5000 }}", "10 ** 5,000 would have some 16,609 bits"),
    ("{{ (10 ** 4000) * (10 ** 4000) }}", "would have some 26,576 bits; a template makes numbers of at most 14,000"),
    ("{% set a = 'x' * 9000000 %}{{ a + a }}", "joining 9,000,000 and 9,000,000 items"),
    # padding, formatting, joining and replacing are refused before the string is made
    ("{{ 'a' | center(20000000) }}", "center() to a width of 20,000,000 would make a string that long"),
    ("{{ 'a'.ljust(20000000) }}", "ljust() to a width of 20,000,000"),
    ("{{ 'a'.rjust(20000000, '-') }}", "rjust() to a width of 20,000,000"),
    ("{{ 'a'.zfill(20000000) }}", "zfill() to a width of 20,000,000"),
    ("{{ ('a' | safe).center(20000000) }}", "center() to a width of 20,000,000"),
    ("{{ '%20000000s' | format(1) }}", "a % format width of 20,000,000"),
    ("{{ '%*s' % (20000000, 1) }}", "a % format width of 20,000,000"),
    ("{{ '%(a)s %.20000000f' % {'a': 1} }}", "a % format precision of 20,000,000"),
    ("{{ '{:>20000000}'.format(1) }}", "a format width of 20,000,000"),
    ("{{ '{:>9999999999}'.format(1) }}", "a format width of 9,999,999,999"),
    ("{{ '{:{}}'.format(1, 20000000) }}", "a format width of 20,000,000"),
    ("{{ '{x:.20000000f}'.format_map({'x': 1.5}) }}", "a format precision of 20,000,000"),
    ("{{ 'a' | indent(20000000) }}", "indent() by a width of 20,000,000"),
    ("{{ 'a\nb\nc' | indent('x' * 5000000) }}", "indenting would make 15,000,005 characters"),
    ("{{ ('a b ' * 2000000) | wordwrap(1, wrapstring='<br>') }}", "wrapping would make"),
    ("{{ ('a' * 5000000) | replace('a', 'bbb') }}", "replacing 5,000,000 times by 3 characters"),
    ("{{ 'ab'.replace('', 'x' * 5000000) }}", "replacing 3 times by 5,000,000 characters"),
    ("{{ (['x' * 9000000] * 2) | join }}", "joining 2 items would make 18,000,000 characters"),
    ("{{ ','.join(['x' * 9000000] * 2) }}", "joining 2 items would make 18,000,001 characters"),
    ("{{ ('\t' * 100).expandtabs(1000000) }}", "expandtabs(1,000,000) would make 100,000,100 characters"),
    ("{{ ('a' * 1000).translate({97: 'b' * 100000}) }}", "translating 1,000 characters to up to 100,000 each"),
    ("{{ [1] | batch(20000000, 0) | list }}", "batch() filled to a size of 20,000,000 would make a list"),
    # ~ is refused as its values are made, and constant parts are not joined while compiling (1,000 x 10 MB here)
    ("{% set a = 'x' * 9000000 %}{{ a ~ a }}", "joining values with ~ would make 18,000,000 characters"),
    ("{{ " + " ~ ".join(["('x' | center(9999999))"] * 1000) + " }}", "joining values with ~ would make 19,999,998"),
    # what a template writes in all, however many pieces under the limit it is written in
    ("{% for i in range(100000) %}{{ 'x' * 9999999 }}{% endfor %}", "the template would write more than 10,000,000"),
    ("{% for i in range(999) %}{% for j in range(999) %}{{ 'x' * 9999 }}{% endfor %}{% endfor %}",
     "the template would write more than 10,000,000"),
    ("{% for c in 'x' * 9999999 %}{{ 'y' * 9999 }}{% endfor %}", "the template would write more than 10,000,000"),
    ("{{ 'x' | center(9999999) }}" * 1000, "the template would write more than 10,000,000"),
    ("{% set s %}{% for i in range(100000) %}{{ 'x' * 9999999 }}{% endfor %}{% endset %}{{ s | length }}",
     "the template would write more than 10,000,000"),
    ("{% macro m() %}{% for i in range(100000) %}{{ 'x' * 9999999 }}{% endfor %}{% endmacro %}{{ m() | length }}",
     "the template would write more than 10,000,000"),
    ("{% filter upper %}{% for i in range(100000) %}{{ 'x' * 9999999 }}{% endfor %}{% endfilter %}",
     "the template would write more than 10,000,000"),
])
def test_a_template_that_would_hang_or_fill_memory_is_an_error(source: str, problem: str) -> None:
    """validate used to hang (loops in loops) or allocate gigabytes; the limits are far above any prompt."""
    with pytest.raises(TemplateProblem, match=re.escape(problem)):
        compile_value(source).render({})


@pytest.mark.parametrize(("source", "problem"), [
    ("{{ ([[1] * 10000000] * 3) | sum(start=[]) | length }}", "sum() of 3 items would make one 30,000,000 long"),
    ("{{ ([(1,) * 6000000] * 2) | sum(start=()) | length }}", "sum() of 2 items would make one 12,000,000 long"),
    ("{{ ([{'n': [1] * 6000000}] * 2) | sum(attribute='n', start=[]) | length }}", "sum() of 2 items"),
    ("{{ ('<' * 9000000) | e | length }}", "escape() of 9,000,000 characters would make 36,000,000 characters"),
    ("{{ ('\"' * 3000000) | escape | length }}", "escape() of 3,000,000 characters would make 15,000,000"),
    ("{{ ('&' * 3000000) | forceescape | length }}", "forceescape() of 3,000,000 characters would make 15,000,000"),
    ("{{ ('%' * 9000000) | urlencode | length }}", "urlencode() would make 27,000,000 characters"),
    ("{{ {'k': '\u00e9' * 2000000} | urlencode | length }}", "urlencode() would make 12,000,003 characters"),
    ("{{ ('<' * 9000000) | tojson | length }}", "tojson() would make more than 10,000,000 characters"),
    ("{{ (['\U0001F98A' * 1000000] * 1) | tojson | length }}", "tojson() would make more than 10,000,000"),
    ("{{ [1, 2] | tojson(indent=9999999) | length }}", "tojson() would make more than 10,000,000"),
    ("{{ {'a': '<' * 9000000} | xmlattr | length }}", "xmlattr() would make 36,000,005 characters"),
])
def test_filters_that_make_a_longer_text_or_list_are_refused_before_they_make_it(source: str, problem: str) -> None:
    """sum() of lists and the escaping filters made what they were given several times over, unchecked: a short
    template filled memory (sum copying the list it makes at each step) rather than being told of the limit."""
    with pytest.raises(TemplateProblem, match=re.escape(problem) + ".*a template makes at most 10,000,000"):
        compile_value(source).render({})


def test_filters_that_make_a_longer_text_or_list_make_the_same_value_under_the_limit() -> None:
    assert compile_value("{{ [[1, 2], [3]] | sum(start=[0]) }}").render({}) == [0, 1, 2, 3]
    assert compile_value("{{ [(1, 2), (3,)] | sum(start=()) }}").render({}) == (1, 2, 3)
    assert compile_value("{{ [{'n': [1]}, {'n': [2]}] | sum(attribute='n', start=[]) }}").render({}) == [1, 2]
    assert compile_value("{{ [1, 2, 3] | sum }} {{ [[1]] | sum(start=[]) }}").render({}) == "6 [1]"
    assert compile_value("{{ ([[1] * 10] * 1000000) | sum(start=[]) | length }}").render({}) == 10_000_000
    assert compile_value("{{ 'a<b' | e }} {{ {'x': 'a b/\u00e9'} | urlencode }} {{ '\u00e9\U0001F98A<' | tojson }}"
                         "{{ {'a': '<'} | xmlattr }}").render({}) == \
        'a&lt;b x=a+b%2F%C3%A9 "\\u00e9\\ud83e\\udd8a\\u003c" a="&lt;"'
    assert compile_value("{{ ('<' * 2000000) | e | length }}").render({}) == 8_000_000
    assert compile_value("{{ ('<' * 1600000) | tojson | length }}").render({}) == 9_600_002


@pytest.mark.parametrize("source", [
    "x {{ (['a' * 9000000] * 2) | string | length }}",
    "x{{ (['a' * 9000000] * 2) | tojson | length }}",
    "x{{ (['a' * 9000000] * 2) | pprint | length }}",
    "x {{ ['a' * 9000000] * 2 }}",
    "x {{ {'k': 'a' * 9000000, 'l': 'a' * 9000000} | string | length }}",
    "{{ 'x' ~ (['a' * 9000000] * 2) }}",
    "{{ '{}'.format(['a' * 9000000] * 2) | length }}",
    "{{ ('%s' % ((['a' * 9000000] * 2),)) | length }}",
    "{{ [['a' * 9000000] * 2] | join | length }}",
    "{{ ['a' * 9000000] * 2 }}",  # a value of its own: in the request, written as text
    "{{ (['\x00' * 3000000] * 1) | string | length }}",  # written escaped, four characters each
    # one list held many times is written each time: 1,000 x 1,000 x 100 characters, though each * passes
    "x {{ ([['x' * 100] * 1000] * 1000) | string | length }}",
    "{{ ([['x' * 100] * 1000] * 1000) }}",
    "{{ [{'k': ['x' * 100] * 1000}] * 1000 }}",
])
def test_the_text_of_a_list_is_counted_before_it_is_made(source: str) -> None:
    """Each item and the list's length pass, but the text of it would not: 300 such items made 2.7 GB."""
    with pytest.raises(TemplateProblem, match="would be more than 10,000,000 characters"):
        compile_value(source).render({})


@pytest.mark.parametrize("source", [
    # each string and list within what one operation makes, their total not: 7 x 9 MB here (100,000 x 9 MB filled
    # the machine's memory)
    "a fox {{ (['x' * 9000000] * 7) | map('upper') | list | length }}",
    ("{% set s = 'x' * 9000000 %}{% set ns = namespace(a=[]) %}{% for i in range(7) %}{% set ns.a = ns.a + [s ~ i] %}"
     "{% endfor %}{{ ns.a | length }}"),
    ("{% set s = 'x' * 9000000 %}{% set ns = namespace(a=[]) %}{% for i in range(7) %}{% set ns.a = ns.a + [s[i:]] %}"
     "{% endfor %}{{ ns.a | length }}"),
    ("{% set s = 'x' * 9000000 %}{% set ns = namespace(a=[]) %}{% for i in range(7) %}"
     "{% set ns.a = ns.a + [s.upper()] %}{% endfor %}{{ ns.a | length }}"),
    ("{% set s = 'x' * 9000000 %}{% set ns = namespace(a=[]) %}{% for i in range(7) %}{% set b %}{{ s }}{{ i }}"
     "{% endset %}{% set ns.a = ns.a + [b] %}{% endfor %}{{ ns.a | length }}"),
    ("{% macro m(i) %}{{ 'x' * 9000000 }}{{ i }}{% endmacro %}{% set ns = namespace(a=[]) %}{% for i in range(7) %}"
     "{% set ns.a = ns.a + [m(i)] %}{% endfor %}{{ ns.a | length }}"),
    ("{% set ns = namespace(a=[]) %}{% for i in range(7) %}{% set ns.a = ns.a + ['x' * 9000000 + 'y'] %}{% endfor %}"
     "{{ ns.a | length }}"),
    ("{% set ns = namespace(a=[]) %}{% for i in range(7) %}{% set ns.a = ns.a + [('x' * 9000000) | replace('x', 'y')] %}"
     "{% endfor %}{{ ns.a | length }}"),
])
def test_what_a_render_makes_in_all_is_counted(source: str) -> None:
    """Each string or list within what one operation makes (10,000,000), many of them held at once filled memory
    (300 of 9 MB took 2.7 GB; 100,000 of them, until the machine ran out): what the operations, filters, calls,
    slices and blocks of one render make is counted in all, refused past 50,000,000."""
    with pytest.raises(TemplateProblem, match="the template would make more than 50,000,000 characters and list "
                                              "items in all"):
        compile_value(source).render({})


def test_what_a_render_makes_in_all_is_counted_per_render() -> None:
    made = compile_value("{% set ns = namespace(a=[]) %}{% for i in range(4) %}{% set ns.a = ns.a + ['x' * 9000000] %}"
                         "{% endfor %}{{ ns.a | map('length') | sum }}")
    assert made.render({}) == made.render({}) == "36000000"  # 36,000,000 each time, not 72,000,000 in all


def test_the_text_of_lists_under_the_limit_is_made() -> None:
    assert compile_value("{{ (['a' * 4000000] * 2) | string | length }}").render({}) == 8_000_008
    assert compile_value("{{ [1, 'b', none, 2.5, true] | tojson }}").render({}) == '[1, "b", null, 2.5, true]'
    assert compile_value("{{ range(1000) | list | length }}").render({}) == 1000


def test_the_range_budget_is_per_render_and_ordinary_templates_pass() -> None:
    loop = compile_value("{% for i in range(6) %}{% for j in range(100000) %}{% endfor %}{% endfor %}ok")
    assert loop.render({}) == "ok" and loop.render({}) == "ok"  # 600,000 each time, not 1,200,000 in all
    assert compile_value("{{ 'ab' * 3 }} {{ 2 ** 10 }} {{ range(3) | list }}").render({}) == "ababab 1024 [0, 1, 2]"
    assert compile_value("{{ 7 ** 1001 % 97 }} {{ 10 ** -3 }} {{ 'a' + 'b' }}").render({}) == f"{7 ** 1001 % 97} 0.001 ab"
    assert compile_value("{{ (2 ** 13000) % 7 }} {{ 1 ** 200000 }}").render({}) == f"{2 ** 13000 % 7} 1"


def test_a_template_that_writes_up_to_the_limit_renders() -> None:
    assert len(compile_value("{% for i in range(10) %}{{ 'x' * 1000000 }}{% endfor %}").render({})) == 10_000_000
    assert len(compile_value("{{ ('x' * 5000000) ~ ('y' * 4999999) ~ 1 }}").render({})) == 10_000_000
    assert len(compile_value("{% set s %}{{ 'x' * 9999999 }}{% endset %}{{ s }}!").render({})) == 10_000_000
    assert compile_value("{{ 'a' ~ 1 ~ [2] }}|{{ a ~ b }}").render({"a": "x", "b": 2.5}) == "a1[2]|x2.5"
    assert compile_value("{% autoescape true %}{{ '<' ~ x }}{% endautoescape %}").render({"x": "b"}) == "&lt;b"


def test_ordinary_padding_and_formatting_pass() -> None:
    assert compile_value("{{ '{:>6}|{:.2f}|{:,}|{x:03}'.format('a', 1.5, 10 ** 6, x=7) }}").render({}) == \
        "     a|1.50|1,000,000|007"
    assert compile_value("{{ '%5s|%-3d|%%|%.1f|%*d' % ('a', 1, 2.5, 3, 4) }}").render({}) == "    a|1  |%|2.5|  4"
    assert compile_value("{{ '%s and %(x)s' | format(x=1) }}").render({}) == "{'x': 1} and 1"
    assert compile_value("{{ 'a' | center(5) }}|{{ 'b'.ljust(3, '.') }}|{{ 'c'.zfill(3) }}").render({}) == "  a  |b..|00c"
    assert compile_value("{{ 'a\nb' | indent(2) }}|{{ 'a b c' | wordwrap(3, wrapstring='/') }}").render({}) == "a\n  b|a b/c"
    assert compile_value("{{ range(3) | join(',') }}|{{ '-'.join(range(3) | map('string')) }}").render({}) == "0,1,2|0-1-2"
    assert compile_value("{{ 'aa' | replace('a', 'bb') }}|{{ 'a\tb'.expandtabs(4) }}").render({}) == "bbbb|a   b"
    assert compile_value("{{ [{'k': 'x'}, {'k': 'y'}] | join('+', attribute='k') }}|{{ 7 % 3 }}").render({}) == "x+y|1"


@pytest.mark.parametrize(("source", "what"), [
    ("a {{ tags | map('upper') }}", "generator"),
    ("a {{ tags | select }}, {{ tags | batch(1) }}", "generator"),
    ("a {{ joiner() }}", "Joiner"),
    ("a {{ d.items() }}", "dict_items"),
    ("{% for t in tags %}{{ loop }}{% endfor %}", "LoopContext"),
    ("a {{ [tags | map('upper')] }}", "generator"),            # inside a list
    ("a {{ 'x' ~ tags | map('upper') }}", "generator"),         # written by ~, | string, %, format and join
    ("a {{ tags | map('upper') | string }}", "generator"),
    ("a {{ '%s' % (tags | map('upper'),) }}", "generator"),
    ("a {{ '%(x)s' | format(x=tags | map('upper')) }}", "generator"),
    ("a {{ '{}'.format(tags | map('upper')) }}", "generator"),
    ("a {{ [tags | map('upper')] | join }}", "generator"),
    ("a {{ up }}", "generator"),                                # a var's value, read without Jinja
    ("{{ up }} and {{ d }}", "generator"),
])
def test_an_object_written_into_text_is_refused(source: str, what: str) -> None:
    """Its text is Python's `<generator object ... at 0x7f...>`: the address made a new request, paid again, each run."""
    context = {"tags": ["snow", "dusk"], "d": {"k": 1}, "up": (t.upper() for t in "ab")}
    with pytest.raises(TemplateProblem) as exc:
        compile_value(source).render(context)
    assert exc.value.message.startswith(f"the template writes a {what} object into the text, which is not a value")
    assert "add | join(', ') or | list" in exc.value.message


@pytest.mark.parametrize("source", [
    "a {{ tags | map('lower') | trim }}", "{{ tags | map('lower') | trim }}", "a {{ tags | map('upper') | upper }}",
    "a {{ tags | map('upper') | lower }}", "a {{ tags | map('upper') | title }}", "a {{ tags | map('upper') | capitalize }}",
    "a {{ tags | map('upper') | replace('a', 'b') }}", "a {{ tags | map('upper') | center(80) }}",
    "a {{ tags | map('upper') | e }}", "a {{ tags | map('upper') | escape }}", "a {{ tags | map('upper') | pprint }}",
    "a {{ tags | map('upper') | wordcount }}", "a {{ tags | map('upper') | truncate(9) }}",
    "a {{ tags | map('upper') | indent(2) }}", "a {{ tags | map('upper') | wordwrap(5) }}",
    "a {{ tags | map('upper') | striptags }}", "a {{ tags | map('upper') | safe }}", "a {{ tags | map('upper') | urlize }}",
    "a {{ tags | map('upper') | format }}", "a {{ {'k': tags | map('upper')} | xmlattr }}",
    "a {{ tags | reverse | lower }}", "a {{ ''.join | upper }}", "a {{ joiner() | trim }}", "a {{ cycler(1) | title }}",
    "a {{ d.items() | upper }}", "a {{ [tags | select] | lower }}", "a {{ [tags] | map('map', 'upper') | map('trim') | join }}",
])
def test_an_object_made_text_by_a_filter_is_refused(source: str) -> None:
    """`| trim`, `| upper`... make text of their input themselves, so the str they return passed the check of what is
    written, with a memory address in it: a new request, paid for again, every run."""
    context = {"tags": ["snow", "dusk"], "d": {"k": 1}}
    with pytest.raises(TemplateProblem) as exc:
        compile_value(source).render(context)
    said = exc.value.message
    if "''.join" in source:  # a method not called: told to call it
        assert said.startswith("the template writes the method join of a str, not its result: call it (.join())")
    else:
        assert re.match(r"the template writes a \w+ object into the text, which is not a value", said), said
        assert "add | join(', ') or | list" in said
    assert "0x" not in said


def test_filters_given_values_or_reading_objects_work_as_before() -> None:
    """Text filters of strings, numbers and lists of them, and filters that read a generator or range as what it is."""
    context = {"tags": ["snow", "dusk"], "d": {"k": 1}}
    assert compile_value("{{ tags | upper }}|{{ 5 | center(3) }}|{{ d | pprint }}|{{ tags | map('trim') | join }}|"
                         "{{ range(3) | length }}|{{ tags | map('upper') | first }}|{{ tags | reverse | join }}|"
                         "{{ tags | map('upper') | list | lower }}|{{ range(3) | sum }}|{{ d.items() | list | e }}|"
                         "{{ tags | map('upper') | sort | join }}|{{ none | tojson }}").render(context) == \
        "['SNOW', 'DUSK']| 5 |{'k': 1}|snowdusk|3|SNOW|dusksnow|['snow', 'dusk']|3|[(&#39;k&#39;, 1)]|DUSKSNOW|null"


def test_every_filter_reading_objects_is_one_jinja_has() -> None:
    from runner.template import _READS_OBJECTS, _env

    assert _READS_OBJECTS <= set(_env().filters)


def test_values_and_lists_of_them_written_into_text_pass() -> None:
    context = {"tags": ["snow", "dusk"], "d": {"k": [1.5, None, True]}}
    assert compile_value("{{ tags }}|{{ d }}|{{ (1, 'a') }}|{{ tags | map('upper') | join(', ') }}").render(context) == \
        "['snow', 'dusk']|{'k': [1.5, None, True]}|(1, 'a')|SNOW, DUSK"
    assert compile_value("{{ d }} {{ tags }}").render(context) == "{'k': [1.5, None, True]} ['snow', 'dusk']"
    with pytest.raises(TemplateProblem, match=r"d has no key 'nope' \(keys: k\)"):  # an Undefined in a list: its own error
        compile_value("a {{ [d.nope] }}").render(context)


@pytest.mark.parametrize(("source", "what"), [
    ("{{ tags | map('upper') }}", "a generator object"),
    ("{{ [tags | map('upper')] }}", "a list holding a generator object"),
    ("{{ ([1], {'k': [tags | select]}) }}", "a tuple holding a generator object"),
    ("{{ {tags | select: 1} }}", "a dict holding a generator object"),  # a key
])
def test_a_whole_value_holding_a_generator_is_refused(source: str, what: str) -> None:
    """A var is made once for every job: a generator in it, however deep, is read by the first job, empty after."""
    with pytest.raises(TemplateProblem) as exc:
        compile_value(source).render({"tags": ["snow", "dusk"]})
    assert exc.value.message.startswith(f"the template makes {what}, which is read once and then empty")


def test_a_whole_value_of_lists_and_dicts_of_values_is_kept() -> None:
    value = compile_value("{{ [tags | map('upper') | list, {'k': (1, none)}, d.items() | list] }}").render(
        {"tags": ["snow", "dusk"], "d": {"a": 1}})
    assert value == [["SNOW", "DUSK"], {"k": (1, None)}, [("a", 1)]]


@pytest.mark.parametrize(("source", "what"), [
    ("{{ cycler('a', 'b', 'c') }}", "a Cycler object"),
    ("{{ joiner(', ') }}", "a Joiner object"),
    ("{{ namespace(n=0) }}", "a Namespace object"),
    ("{{ {'c': [cycler('a', 'b')]} }}", "a dict holding a Cycler object"),
])
def test_a_whole_value_with_state_the_jobs_would_share_is_refused(source: str, what: str) -> None:
    """A var is made once for every job: a cycler in it gave a, b, c, a to four jobs, so a job's request depended on
    how many rendered before it, and dropping one job made the others new jobs, paid for again."""
    with pytest.raises(TemplateProblem) as exc:
        compile_value(source).render({})
    assert exc.value.message.startswith(f"the template makes {what}, whose state every job would share")
    assert "{{ styles[seed % styles | length] }}" in exc.value.message


def test_stateful_objects_made_and_used_in_one_template_work_as_before() -> None:
    source = "{% set c = cycler('a', 'b') %}{% set j = joiner('+') %}{% set ns = namespace(n=0) %}" \
             "{% for t in tags %}{{ j() }}{{ c.next() }}{{ t }}{% set ns.n = ns.n + 1 %}{% endfor %} {{ ns.n }}"
    assert compile_value(source).render({"tags": ["x", "y", "z"]}) == "ax+by+az 3"


_WS_EXPRS = ("n", "s", "n + 1", "-n", "n - 1", "5", "-5", "'a-b'", "s ~ '-'", "n * -1", "flag", "(n)")
_WS_CONTEXT = {"n": 3, "s": "fox", "flag": False}


def _as_jinja_renders(text: str) -> str | None:
    """What jinja2 itself renders `text` to with `_WS_CONTEXT`; None where it refuses it, which gridrun then must
    too (a syntax error)."""
    import jinja2

    try:
        return jinja2.Environment().from_string(text).render(_WS_CONTEXT)
    except jinja2.TemplateSyntaxError:
        with pytest.raises(TemplateProblem, match="syntax error"):
            compile_value(text)
        return None


@hypothesis.settings(max_examples=400, deadline=None)
@hypothesis.given(
    expr=st.sampled_from(_WS_EXPRS),
    begin=st.sampled_from(["", "-", "+"]),
    end=st.sampled_from(["", "-", "+"]),
    inner=st.tuples(st.sampled_from(["", " ", "  ", "\n"]), st.sampled_from(["", " ", "\t", "\n"])),
    outer=st.tuples(st.sampled_from(["", " ", "\n "]), st.sampled_from(["", " ", " \n"])),
)
def test_whitespace_control_in_one_expression_renders_as_jinja_does(expr, begin, end, inner, outer) -> None:
    # White space outside the braces is kept by Jinja unless a marker strips it; a one-expression value
    # drops it (it keeps its type), so it is only put where Jinja strips it too.
    before = outer[0] if begin == "-" else ""
    after = outer[1] if end == "-" else ""
    text = f"{before}{{{{{begin}{inner[0]}{expr}{inner[1]}{end}}}}}{after}"
    expected = _as_jinja_renders(text)
    if expected is None:
        return
    value = compile_value(text).render(_WS_CONTEXT)
    assert str(value) == expected, text
    if begin or inner[0] or expr[0] not in "-+":  # `{{-n}}` is Jinja's `{{-` then `n`
        assert value == compile_value(f"{{{{ {expr} }}}}").render(_WS_CONTEXT), text  # and keeps its type


@hypothesis.settings(max_examples=300, deadline=None)
@hypothesis.given(
    expr=st.sampled_from((*_WS_EXPRS, "s.upper()", "[n][0]", "{'a': n}")),
    end=st.sampled_from(["", "-", "+"]),
    inner=st.sampled_from(["", " ", "\n"]),
    tail=st.sampled_from(["}", "} ", "}}", "\n}", " }", "-}"]),
)
def test_a_brace_after_one_expression_is_text_as_jinja_reads_it(expr, end, inner, tail) -> None:
    """`{{ x -}}}` was refused (the expression read as `x -}`) while Jinja renders `5}`."""
    text = f"{{{{ {expr}{inner}{end}}}}}{tail}"
    expected = _as_jinja_renders(text)
    if expected is not None:
        assert str(compile_value(text).render(_WS_CONTEXT)) == expected, text


def test_a_syntax_error_in_one_expression_is_at_the_expression_line() -> None:
    """The expression is read without its surrounding white space: its lines were counted from the `{{`."""
    for text in ("{{\n\n  1 + }}", "  {{-\n\n  1 + -}}", "\n{{ \n  \n 1 + }}", "{{ (1,\n  2 +) }}"):
        with pytest.raises(TemplateProblem) as err:
            compile_value(text)
        import jinja2

        with pytest.raises(jinja2.TemplateSyntaxError) as jinja:
            jinja2.Environment().parse(text)
        assert err.value.lineno == jinja.value.lineno, text


def test_whitespace_control_is_not_arithmetic() -> None:
    assert compile_value("{{- n }}").render({"n": 3}) == 3
    assert compile_value("{{ n -}}").render({"n": 3}) == 3
    assert compile_value("{{- s -}}").render({"s": "fox"}) == "fox"
    assert compile_value("{{+ n }}").render({"n": 3}) == 3
    assert compile_value("{{- -n -}}").render({"n": 3}) == -3
    assert compile_value("a {{- n -}} b").render({"n": 3}) == "a3b"


@pytest.mark.parametrize("source", ["{{ subjet }}", "a {{ subjet | upper }}", "{{ subjet }} and {{ subject }}"])
def test_an_undefined_name_gets_the_closest_name_in_scope(source: str) -> None:
    """A typo of a name (`subjet`) says which name in scope was most likely meant, whichever way it is rendered
    (a bare name, a Jinja template, text made of names)."""
    with pytest.raises(TemplateProblem, match=r"^'subjet' is undefined; did you mean 'subject'\? \(in "):
        compile_value(source).render({"subject": "a fox", "seed": 1})
    with pytest.raises(TemplateProblem, match=r"^'zzz' is undefined \(in "):  # nothing close: nothing suggested
        compile_value("{{ zzz }}").render({"subject": "a fox"})


@pytest.mark.parametrize("source", ["{{ shot.promt }}", "{{ shot['promt'] }}", "x {{ shot.promt | upper }}"])
def test_a_key_a_mapping_lacks_names_the_mapping_its_keys_and_the_closest(source: str) -> None:
    """Not Jinja's "'dict object' has no attribute 'promt'", which hides which mapping it was."""
    with pytest.raises(TemplateProblem) as exc:
        compile_value(source).render({"shot": {"id": "1", "prompt": "a fox"}})
    assert exc.value.message.startswith("shot has no key 'promt'; did you mean 'prompt'? (keys: id, prompt) (in ")
    assert exc.value.row_of is not None and exc.value.row_of("shots.csv").message.startswith(
        "shot (a row of shots.csv) has no column 'promt'; did you mean 'prompt'? (columns: id, prompt) (in ")


# -- nulls and booleans written into text ---------------------------------------------------------------

@pytest.mark.parametrize(("source", "name", "text"), [
    ("a fox, {{ mood }}", "mood", "a fox, None"),                          # read without Jinja
    ("{{ mood }} fox, {{ n }}", "mood", "None fox, 1"),
    ("a fox, {{ mood | default('serene') }}", "mood", "a fox, None"),      # default() fills in no null
    ("a fox{% if 1 %}, {{ mood }}{% endif %}", "mood", "a fox, None"),
    ("a fox, {{ 'at ' ~ mood }}", "mood", "a fox, at None"),
    ("a fox, {{ mood | upper }}", "mood", "a fox, NONE"),
    ("a fox, {{ mood | trim }}", "mood", "a fox, None"),
    ("a fox, {{ '{}'.format(mood) }}", "mood", "a fox, None"),
    ("a fox, {{ '%s' % mood }}", "mood", "a fox, None"),
    ("{{ '%s' % mood }}", "mood", "None"),                                  # one expression, made text
    ("a fox, {{ shot.mood }}", "shot.mood", "a fox, None"),                # a data file's empty cell
    ("a fox, {{ shot['mood'] }}", "shot.mood", "a fox, None"),
    ("a fox, {{ mood | e }}", "mood", "a fox, None"),
    ("a fox, {{ mood | escape }}", "mood", "a fox, None"),
    ("a fox, {{ mood | pprint }}", "mood", "a fox, None"),
    ("a fox, {{ [mood, 'b'] | join(',') }}", "mood", "a fox, None,b"),
    ("a fox, {{ [mood] }}", "mood", "a fox, [None]"),
    ("a fox, {{ {'k': mood} }}", "mood", "a fox, {'k': None}"),
    ("a fox, {{ tags | join(', ') }}", "tags (holding it)", "a fox, snow, None"),  # a list holding a null
    ("{{ tags | join(', ') }}", "tags (holding it)", "snow, None"),
    ("a fox, {{ tags }}", "tags (holding it)", "a fox, ['snow', None]"),
    ("a fox {{ tags | e }}", "tags (holding it)", "a fox [&#39;snow&#39;, None]"),
])
def test_a_null_written_into_text_is_noted_naming_it(source: str, name: str, text: str) -> None:
    """Python writes the word 'None' into the paid prompt (or the file name), where the key says null: the text
    stays what it always was (a job's hash with it), and the name is noted for a warning."""
    compiled = compile_value(source)
    for i, render in enumerate((compiled.renderer, compiled.render)):
        context = {"mood": None, "n": 1, "shot": {"id": "a", "mood": None}, "tags": ["snow", None], "key": f"k{i}"}
        assert render(context) == text
    assert compiled.null_names() == {name: (2, ["k0", "k1"])}


def test_the_warning_of_a_null_names_its_jobs_and_what_to_write() -> None:
    assert null_written("a red fox,\n{{ mood | default('serene') }}\n", "mood", "job mood=null") == (
        "'mood' is null, and the text reads 'None' for job mood=null: give it a value, or write a word of your own for "
        "it: {{ mood or 'serene' }}; default() fills in only a name that is not defined, not a null")
    assert null_written("{{ tags }}", "tags (holding it)", "jobs a; b (and 2 more)") == (
        "'tags' holds a null, and the text reads 'None' for jobs a; b (and 2 more): give it a value, or leave the null "
        "out: {{ tags | reject('none') | join(', ') }}")


def test_a_null_kept_as_a_value_or_not_written_is_not_refused() -> None:
    """A one-expression template keeps its value's type: `seed: "{{ s }}"` null is the model's default seed."""
    assert compile_value("{{ mood }}").render({"mood": None}) is None
    assert compile_value(" {{ mood | default('x') }}").render({"mood": None}) is None
    assert compile_value("a {{ mood or 'calm' }} fox{% if mood %}!{% endif %} {{ mood | tojson }}").render(
        {"mood": None}) == "a calm fox null"
    assert compile_value("{{ tags }}").render({"tags": [None]}) == [None]
    for source in ("{{ mood }}", "a {{ mood or 'calm' }} {{ mood | tojson }} {{ [mood] | tojson }}", "{{ [mood] }}",
                   "{{ mood | default('x') }}", "{% if mood %}{{ mood }}{% endif %}"):
        compiled = compile_value(source)
        compiled.render({"mood": None})
        assert compiled.null_names() == {}, source


def test_a_boolean_written_into_text_is_noted_with_its_name() -> None:
    for source in ("a fox {{ flag }}", "a fox{% if 1 %} {{ flag }}{% endif %}"):
        compiled = compile_value(source)
        assert compiled.render({"flag": True}) == "a fox True"
        assert compiled.renderer({"flag": False}) == "a fox False"
        assert compiled.booleans() == {True: "flag", False: "flag"}
    compiled = compile_value(["{{ flag }}", "{{ flag | lower }}", "x {{ n }}"])
    assert compiled.render({"flag": True, "n": 1}) == [True, "true", "x 1"]
    assert compiled.booleans() == {}


@pytest.mark.parametrize(("source", "tag", "line"), [
    ("a fox {% include 'x.txt' ignore missing %}", "include", 1),
    ("a fox\n{% import 'm.j2' as m %}{{ m.x() }}", "import", 2),
    ("a fox\n\n{% from 'm.j2' import x %}", "import", 3),
    ("{% extends 'base.j2' %}", "extends", 1),
])
def test_a_template_that_includes_a_file_is_refused_at_its_line(source: str, tag: str, line: int) -> None:
    """It failed as it rendered, with Jinja's 'TypeError: no loader for this environment specified'."""
    with pytest.raises(TemplateProblem) as exc:
        compile_value(source)
    assert exc.value.message.startswith(f"templates cannot include files ({{% {tag} %}}): write the text in the "
                                        "template, or put the shared part in a var (vars: {intro: ...}) and write "
                                        "{{ intro }} where it goes")
    assert exc.value.lineno == line


def test_a_list_written_whole_into_text_is_noted_with_its_name() -> None:
    """`{{ tags }}` writes "['snow', 'dusk']"; joining it or looping over it writes its values."""
    for source, whole in [("a {{ tags }}", {"tags"}), ("a {{ tags | e }}", {"tags"}), ("{{ 'a ' ~ tags }}", {"tags"}),
                          ("{% set t = tags %}a {{ t }}", {"tags"}), ("a {{ tags | join(', ') }}", set()),
                          ("{{ tags | join(', ') }}", set()), ("a {% for t in tags %}{{ t }}{% endfor %}", set()),
                          ("a {{ tags | length }}", set()), ("{{ tags }}", set())]:
        compiled = compile_value(source)
        compiled.renderer({"tags": ["snow", "dusk"]})
        assert compiled.written_whole() == whole, source


@pytest.mark.parametrize("source", ["{{ 1e999 }}", "fox {{ -1e999 }}", "{% if x > 1e999 %}a{% endif %}b"])
def test_a_number_too_large_to_be_one_is_a_clear_error(source: str) -> None:
    """It was "NameError: name 'inf' is not defined", Jinja's compiled constant."""
    with pytest.raises(TemplateProblem) as caught:
        compile_value(source).render({"x": 1})
    assert caught.value.message.startswith("a number in the template is too large to be one (it reads as infinity): "
                                           "write a number below 1e308"), caught.value.message
    assert "NameError" not in caught.value.message
    assert compile_value("{{ 1e300 * 10 }}").render({}) == 1e301


def test_a_decomposed_name_is_told_its_twin_and_its_closest_name() -> None:
    """A name written with a combining mark (`cafe\\u0301`, as macOS writes text) is a name as Jinja reads it: its
    error names the var that differs only in Unicode form, with escapes, or the closest name."""
    with pytest.raises(TemplateProblem) as exc:
        compile_value("a {{ cafe\u0301 }} at night").render({"caf\u00e9": "espresso"})
    assert "'caf\\u00e9' is defined" in exc.value.message and "Unicode form" in exc.value.message
    with pytest.raises(TemplateProblem) as exc:
        compile_value("a {{ tie\u0302\u0301ng }} word").render({"tieng": "x"})
    assert "did you mean 'tieng'?" in exc.value.message


@pytest.mark.parametrize("source", ["a {{ s.title }}", "{{ s.title }}"])
def test_an_uncalled_method_is_told_to_be_called_with_no_memory_address(source: str) -> None:
    """`{{ s.title }}` writes the method, not the text: the error shows the call (or the filter) and no address."""
    with pytest.raises(TemplateProblem) as exc:
        compile_value(source).render({"s": "fox"})
    said = exc.value.message
    assert "{{ s.title() }}" in said and "{{ s | title }}" in said, said
    assert "| join" not in said and not re.search(r"0x[0-9a-f]+", said), said


def test_an_uncalled_method_not_of_a_name_is_told_to_be_called() -> None:
    with pytest.raises(TemplateProblem) as exc:
        compile_value("a {{ ''.join }}").render({})
    assert exc.value.message.startswith("the template writes the method join of a str, not its result: call it "
                                        "(.join())"), exc.value.message


def test_an_uncalled_macro_is_told_to_be_called() -> None:
    with pytest.raises(TemplateProblem) as exc:
        compile_value("{% macro m() %}x{% endmacro %}a {{ m }}").render({})
    assert "call it ({{ m() }})" in exc.value.message and "| join" not in exc.value.message


@pytest.mark.parametrize("column", ["items", "values", "keys", "copy", "get"])
def test_a_rows_column_named_like_a_dict_method_is_the_method_as_ever_and_its_error_says_how_to_read_it(
        column: str) -> None:
    """`row.copy` is the dict's method, as Jinja has always read it: a manifest testing `{% if row.copy %}` renders
    as it did (and its jobs plan as done). Written as text, it is refused with the call and with how to read the
    column of that name, `row['copy']`."""
    row = {"id": "r1", "prompt": "a fox", column: ""}
    tested = compile_value(f"{{{{ row.prompt }}}}{{% if row.{column} %}}, with {column}{{% endif %}}"
                           f"{{{{ ', n=' ~ (row.{column} | length) if row.{column} is string else '' }}}}")
    assert tested.render({"row": row}) == f"a fox, with {column}"
    assert compile_value(f"{{{{ row[{column!r}] }}}}").render({"row": {column: "wide"}}) == "wide"
    for source in (f"a {{{{ row.{column} }}}}", f"{{{{ row.{column} }}}}"):
        with pytest.raises(TemplateProblem) as exc:
            compile_value(source).render({"row": row})
        assert f"to read its column {column!r}, write {{{{ row[{column!r}] }}}}" in exc.value.message, \
            exc.value.message
    with pytest.raises(TemplateProblem) as exc:  # a row without the column: only the call
        compile_value(f"a {{{{ row.{column} }}}}").render({"row": {"id": "r1"}})
    assert "not its result: call it" in exc.value.message and "its column" not in exc.value.message


@pytest.mark.parametrize("source", [
    "{{ ('%s%s%s%s' | e) % (('&' * 9000000,) * 4) }}",
    "{{ ('%(a)s%(a)s' | e) % {'a': '&' * 1200000} }}",
    "{{ ('{}{}{}{}' | e).format(*(['&' * 9000000] * 4)) }}",
    "{{ ('{a}{a}' | e).format_map({'a': '&' * 1200000}) }}",
    "{{ ('' | e).join(['&' * 2400000] * 4) }}",
    "{{ ('' | e) + ('&' * 9000000) }}",
    "{{ ('&' * 9000000) + ('' | e) }}",
])
def test_markup_made_by_escaping_counts_what_it_escapes_when_it_formats_joins_or_adds(source: str) -> None:
    """`| e` makes markup, whose %, format, join and + escape what they write (an `&` becomes five characters): each
    was counted by its length before escaping, so one short prompt made 180 million characters."""
    with pytest.raises(TemplateProblem) as exc:
        compile_value(source).render({})
    assert "a template makes at most 10,000,000" in exc.value.message, exc.value.message


def test_markup_formats_joins_and_adds_short_text_as_before() -> None:
    assert compile_value("{{ ('<%s>' | e) % 'a&b' }}").render({}) == "&lt;a&amp;b&gt;"
    assert compile_value("{{ ('{}-{x}' | e).format('<', x=2) }}").render({}) == "&lt;-2"
    assert compile_value("{{ ('x' | e) + '&' }}, {{ '&' + ('x' | e) }}").render({}) == "x&amp;, &amp;x"
    assert compile_value("{{ ('|' | e).join(['<', 'b']) }}").render({}) == "&lt;|b"


def test_a_reusing_renderer_gives_each_render_the_text_render_gives() -> None:
    """Text made once per combination of strings and integers is the text `render` makes; 1, '1', 1.0 and True
    read differently, and a boolean or null goes through `render`, which notes it for every job that writes it."""
    c = compile_value("{{ look }} light, take {{ take }}")
    again = c.reusing(most=2)
    contexts = [{"look": look, "take": take, "key": f"k{i}"}
                for i, (look, take) in enumerate((look, take) for look in ("dusk", 1, "1", 1.0, True, None, "dusk")
                                                 for take in (1, "1", 1))]
    for ctx in contexts:
        assert again(ctx) == compile_value("{{ look }} light, take {{ take }}").render(ctx)
    assert [again(ctx) for ctx in contexts[:3]] == ["dusk light, take 1"] * 3
    assert again({"look": True, "take": 1}) == "True light, take 1"
    assert c.booleans() == {True: "look"}
    assert c.null_names() == {"look": (3, ["k15", "k16", "k17"])}
    one = compile_value("a {{ look }} fox").reusing()
    assert [one({"look": v}) for v in (1, "1", 1.0, True, 1)] == ["a 1 fox", "a 1 fox", "a 1.0 fox", "a True fox", "a 1 fox"]
    with pytest.raises(TemplateProblem, match="'look' is undefined"):
        one({"lok": "dusk"})
    assert compile_value("{{ look | upper }}").reusing()({"look": "dusk"}) == "DUSK"
