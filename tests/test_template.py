from __future__ import annotations

import pytest

from runner.template import TemplateProblem, compile_value, dependents, var_order


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
