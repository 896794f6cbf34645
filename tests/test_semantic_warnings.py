"""Manifests that are valid but mean other than they seem: each is warned of once, at the line of the value."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Any

import pytest

from runner import api
from runner.cli import main
from runner.errors import ManifestError
from runner.plan import Plan

HEAD = "version: 1\nname: fox\nmodel: pixverse-v5.6\n"


def plan_of(tmp_path: Path, body: str, **kw: Any) -> Plan:
    path = tmp_path / "m.yaml"
    path.write_text(HEAD + textwrap.dedent(body), encoding="utf-8")
    return api.plan(path, **kw)


def said(p: Plan) -> list[str]:
    """The warnings as `file:line:column: field: message`, the file left out."""
    return [w.split("m.yaml:", 1)[1] for w in p.warnings]


def about(p: Plan, fragment: str) -> list[str]:
    return [w for w in said(p) if fragment in w]


# --- a matrix key named like a manifest field --------------------------------------------------

FIELD_KEY = ("'model' is a manifest field, not a request parameter: a matrix key cannot change it (it is a template "
             "value only); a run of another model is another manifest")


def test_an_include_key_named_like_a_manifest_field_is_warned_of_at_its_line(tmp_path: Path) -> None:
    """`model: sora-2` in an include reads as a job of another model (the plan's table shows it in a column), but the
    job is made, and paid, with the manifest's model: warned of at each entry's key, once however many jobs."""
    p = plan_of(tmp_path, """\
        params: {prompt: "a fox", quality: 360p}
        matrix:
          style: [anime, clay]
          seed: {range: [1, 50]}
          include:
            - {style: clay, model: sora-2}
            - {style: comic, model: sora-2}
        """)
    assert {j.params.get("model") for j in p.jobs} == {None}
    assert about(p, "manifest field") == [f"9:21: matrix.include[0].model: {FIELD_KEY}",
                                          f"10:22: matrix.include[1].model: {FIELD_KEY}"]
    # a capabilities file may declare `timeout` a parameter of its own: the key then sets it, and is not warned of
    (tmp_path / "caps.yaml").write_text(
        "provider: sim\nmodels:\n  pixverse-v5.6:\n    params:\n"
        "      timeout: {type: integer, modes: [t2v, i2v], description: a parameter named like a run field}\n")
    p = plan_of(tmp_path, """\
        capabilities: [caps.yaml]
        params: {prompt: "a fox", quality: 360p}
        matrix:
          timeout: [10, 20]
          include:
            - {timeout: 10, model: sora-2}
        """)
    assert [j.params["timeout"] for j in p.jobs] == [10, 20]
    assert about(p, "not a request parameter") == [f"9:21: matrix.include[0].model: {FIELD_KEY}"]


@pytest.mark.parametrize(("key", "value", "field", "advice"), [
    ("provider", "fal", "a manifest field", "a run of another provider is another manifest"),
    ("output", "special.mp4", "a manifest field", ("to name files by it, write it under another name in output "
                                                  "(output: \"{{ out_name }}.mp4\")")),
    ("outputs_dir", "elsewhere", "a manifest field", "one manifest writes to one outputs_dir"),
    ("budget_usd", "1", "a run: field", "run.budget_usd holds for the whole run"),
    ("concurrency", "1", "a run: field", "run.concurrency holds for the whole run"),
    ("timeout", "60", "a run: field", "run.timeout holds for the whole run"),
    ("base_url", "http://127.0.0.1:1", "a manifest field", "a run at another base_url is another manifest"),
])
def test_a_matrix_axis_named_like_a_manifest_or_run_field_is_warned_of_even_when_a_template_reads_it(
    tmp_path: Path, key: str, value: str, field: str, advice: str,
) -> None:
    p = plan_of(tmp_path, f"""\
        params: {{prompt: "a fox {{{{ {key} }}}}", quality: 360p}}
        matrix:
          {key}: ["{value}"]
        """)
    assert about(p, "not a request parameter") == [
        (f"6:3: matrix.{key}: '{key}' is {field}, not a request parameter: a matrix key cannot change it (it is a "
         f"template value only); {advice}")]


@pytest.mark.parametrize("key", ["name", "description", "version"])
def test_an_axis_named_name_description_or_version_is_an_axis_of_its_own(tmp_path: Path, key: str) -> None:
    """A name (of a character, say), a description or a version of each job is a common axis, which no one takes
    for the manifest's own field: not warned of."""
    p = plan_of(tmp_path, f"""\
        params: {{prompt: "a fox {{{{ {key} }}}}", quality: 360p}}
        matrix:
          {key}: [alice, bob]
        """)
    assert about(p, "not a request parameter") == []


def test_the_field_warning_shows_in_validate_plan_json_and_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "m.yaml"
    path.write_text(HEAD + "params: {prompt: a fox, quality: 360p}\nmatrix:\n  style: [anime]\n  include:\n"
                    "    - {style: anime, model: sora-2}\nsim: {render_time: 0}\n", encoding="utf-8")
    where = f"warning: {path}:8:22: matrix.include[0].model: {FIELD_KEY}"
    assert main(["validate", str(path)]) == 0
    assert where in capsys.readouterr().err
    assert main(["plan", str(path)]) == 0
    assert where in capsys.readouterr().err
    assert main(["plan", str(path), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["warnings"] == [f"matrix.include[0].model: {FIELD_KEY}"]
    assert main(["run", str(path), "--no-report"]) == 0
    assert where in capsys.readouterr().err


# --- key and index in a request parameter -----------------------------------------------------

@pytest.mark.parametrize(("params", "where", "what"), [
    ('prompt: "a fox | {{ key }}"', "5:3: params.prompt", "key (the job's matrix values, in the matrix's order)"),
    ('seed: "{{ 100 + index }}"', "7:3: params.seed", "index (the job's position in the plan)"),
])
def test_key_or_index_in_a_request_parameter_is_warned_of_once_at_the_parameter(
    tmp_path: Path, params: str, where: str, what: str,
) -> None:
    """Adding an axis of one value, or reordering two, changes every key and index: a parameter that writes one makes
    every job a new request, each rendered and paid for again, as `index` in `output` names other jobs' files."""
    body = "params:\n  prompt: a fox\n  quality: 360p\nmatrix:\n  look: {range: [1, 100]}\n"
    body = body.replace("  prompt: a fox\n", f"  {params}\n") if params.startswith("prompt") \
        else body.replace("  quality: 360p\n", f"  quality: 360p\n  {params}\n")
    p = plan_of(tmp_path, body)
    assert about(p, "changes whenever the matrix changes") == [
        (f"{where}: uses {what}, which changes whenever the matrix changes (an axis added, removed or reordered): "
         "every job is then a new request, a new paid render; use the matrix values themselves")]


def test_key_through_a_var_in_a_request_parameter_is_warned_of_and_key_in_output_is_not(tmp_path: Path) -> None:
    p = plan_of(tmp_path, """\
        vars: {tag: "{{ key | upper }}"}
        params: {prompt: "a fox {{ tag }}", quality: 360p}
        matrix: {look: [a, b]}
        """)
    assert [w.split(": uses")[0] for w in about(p, "changes whenever")] == ["5:10: params.prompt"]
    p = plan_of(tmp_path, 'params: {prompt: "a fox {{ look }}", quality: 360p}\nmatrix: {look: [a, b]}\n'
                          'output: "{{ key }}.mp4"\n')
    assert not about(p, "changes whenever"), p.warnings


# --- a list under an include key that is no axis -----------------------------------------------

def test_a_list_under_an_include_key_that_is_no_axis_is_warned_of_at_its_line(tmp_path: Path) -> None:
    """`style: [anime, comic]` expands (style is an axis), `light: [dusk, dawn]` does not: two jobs, not four, each
    paying for a prompt that holds the list's Python text."""
    p = plan_of(tmp_path, """\
        params:
          prompt: "a fox, {{ style }}, {{ light | default('noon') }}"
          quality: 360p
        matrix:
          style: [anime, clay]
          include:
            - {style: [anime, comic], light: [dusk, dawn]}
        """)
    assert [j.params["prompt"] for j in p.jobs] == ["a fox, anime, ['dusk', 'dawn']", "a fox, clay, noon",
                                                     "a fox, comic, ['dusk', 'dawn']"]
    assert about(p, "no axis") == [
        ("10:31: matrix.include[0].light: 'light' is no axis, so this list is kept as one value, and a template "
         "writes it whole: the text gets ['dusk', 'dawn'], as Python writes a list; only an axis's key expands, into "
         "an entry per value; for a job per value, make light an axis, or write an include entry per value; for the "
         "values as text, write {{ light | join(', ') }}")]
    # a list under an axis's key (a zip's too) expands, and a list is the value of a parameter that takes one
    (tmp_path / "a.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 32 + b"\x00\x00\x00\x00IEND\xaeB`\x82")
    p = plan_of(tmp_path, """\
        params: {prompt: "a fox {{ look }} {{ sky }} {{ tags | default('') }}", quality: 360p}
        matrix:
          zip:
            - {sky: [dusk, dawn], seed: [1, 2]}
          look: [a, b]
          include:
            - {look: [a, c], sky: [dusk], input_reference: [a.png], tags: [x]}
        """)
    assert [w.split(":", 2)[2].split(":")[0] for w in about(p, "no axis")] == [" matrix.include[0].tags"]


def test_a_list_under_an_include_key_that_templates_join_loop_over_or_do_not_read_is_not_warned_of(
    tmp_path: Path,
) -> None:
    """`tags: [snow, dusk]` read with `| join(', ')` is meant as a list: the prompt says "snow, dusk"."""
    p = plan_of(tmp_path, """\
        params:
          prompt: "a fox, {{ style }} style, {{ tags | join(', ') }}{% for t in more %} {{ t }}{% endfor %}"
          quality: 360p
        matrix:
          style: [anime, clay]
          include:
            - {style: anime, tags: [snow, dusk], more: [a, b], unread: [c, d]}
            - {style: clay, tags: [sand], more: [e]}
        """)
    assert [j.params["prompt"] for j in p.jobs] == ["a fox, anime style, snow, dusk a b", "a fox, clay style, sand e"]
    assert not about(p, "no axis"), p.warnings
    # written whole through a var, alone or within text, it is warned of
    for line in ("{{ tags | default([]) }}", "with {{ tags | default('') }}"):
        p = plan_of(tmp_path, f"""\
            vars: {{line: "{line}"}}
            params: {{prompt: "a fox, {{{{ style }}}} style, {{{{ line }}}}", quality: 360p}}
            matrix:
              style: [anime, clay]
              include:
                - {{style: anime, tags: [snow, dusk]}}
            """)
        assert [w.split(": ")[1] for w in about(p, "no axis")] == ["matrix.include[0].tags"], line


# --- include and exclude values that read like an axis value they do not equal ----------------

SLIP = """\
params: {prompt: "a fox {{ flag }} {{ look | default('any') }}", quality: 360p}
matrix:
  flag: [true, false]
  look: [a, b]
"""


@pytest.mark.parametrize(("exclude", "extended"), [("", 2), ("  exclude:\n    - {flag: true, look: b}\n", 1)])
def test_an_include_value_that_reads_like_an_axis_value_it_does_not_equal_is_named_with_the_jobs_it_was_for(
    tmp_path: Path, exclude: str, extended: int,
) -> None:
    """`flag: "true"` is a string, and GitHub's == does not equate it with the boolean true: the entry meant to set
    720p on the flag=true jobs adds a fifth job instead, though its key reads `flag=true` as theirs do."""
    p = plan_of(tmp_path, SLIP + exclude + "  include:\n    - {flag: \"true\", quality: 720p}\n")
    assert [j.key for j in p.jobs][-1] == "flag=true,quality=720p"
    line = 9 + exclude.count("\n")
    assert about(p, "reads alike") == [
        (f"{line}:8: matrix.include[0].flag: flag 'true' (a string) matches no combination: flag's true (a boolean) "
         "reads alike but is not equal to it under GitHub's ==, so this entry adds a job of its own instead of "
         f"extending the {extended} with flag true; write it unquoted")]
    # an entry that would miss with the axis's value too, or that matches (1 == true), reads alike in nothing
    p = plan_of(tmp_path, SLIP + exclude + "  include:\n    - {flag: \"true\", look: c, quality: 720p}\n"
                                           "    - {flag: 1, look: a, quality: 720p}\n    - {flag: \"true\"}\n")
    assert [w.split(":")[2] for w in about(p, "reads alike")] == [" matrix.include[2].flag"]
    assert [j.params["quality"] for j in p.jobs][:2] == ["720p", "360p"]


def test_an_unquoted_include_value_beside_quoted_axis_values_says_to_quote_it(tmp_path: Path) -> None:
    p = plan_of(tmp_path, SLIP.replace("[true, false]", '["true", "false"]')
                + "  include:\n    - {flag: false, quality: 720p}\n")
    assert len(p.jobs) == 5
    assert about(p, "reads alike") == [
        ("9:8: matrix.include[0].flag: flag false (a boolean) matches no combination: flag's 'false' (a string) "
         "reads alike but is not equal to it under GitHub's ==, so this entry adds a job of its own instead of "
         "extending the 2 with flag false; quote it, as the axis does")]


def test_an_exclude_value_that_reads_like_an_axis_value_it_does_not_equal_says_why_it_removes_nothing(
    tmp_path: Path,
) -> None:
    """Said before as "no job has flag=true", beside a plan listing flag=true jobs."""
    p = plan_of(tmp_path, SLIP + "  exclude:\n    - {flag: \"true\"}\n    - {look: \"B\"}\n    - {look: c}\n")
    assert len(p.jobs) == 2
    assert about(p, "removes no combination") == [
        ("9:7: matrix.exclude[0]: removes no combination (no job has flag 'true' (a string): flag's true (a "
         "boolean) reads alike but is not equal to it under GitHub's ==; write it unquoted); check its values"),
        "11:7: matrix.exclude[2]: removes no combination (no job has look=c); check its values"]


def test_an_include_value_that_differs_from_an_axis_value_by_spacing_is_named_with_the_jobs_it_was_for(
    tmp_path: Path,
) -> None:
    """"noir " is other text than "noir", though a job key writes both `look=noir`: the entry meant to raise the noir
    job to 1080p adds a job of its own, paid for, and leaves that job at 360p."""
    p = plan_of(tmp_path, SLIP.replace("[a, b]", "[watercolor, noir]")
                + '  include:\n    - {flag: true, look: "noir ", quality: 1080p}\n')
    assert len(p.jobs) == 5
    assert about(p, "reads alike") == [
        ("9:20: matrix.include[0].look: look 'noir ' (a string) matches no combination: look's 'noir' reads alike but "
         "is other text (spacing), not equal to it under GitHub's ==, so this entry adds a job of its own instead of "
         "extending the 1 with look noir; write it as the axis does")]


@pytest.mark.parametrize(("axis", "entry", "told"), [
    pytest.param('"caf\\u00e9 noir"', '"cafe\\u0301 noir"',
                 "look 'cafe\\u0301 noir' (a string): look's 'caf\\u00e9 noir' reads alike but is other text (Unicode "
                 "form (a letter composed or not))", id="unicode-form"),
    pytest.param('"a\\u200bb"', "ab", "look 'ab' (a string): look's 'a\\u200bb' reads alike but is other text (an "
                 "invisible U+200B)", id="invisible-character"),
    pytest.param('"x  y"', "X y", "look 'X y' (a string): look's 'x  y' reads alike but is other text (spacing)",
                 id="spacing-and-case"),
])
def test_an_exclude_value_that_differs_from_an_axis_value_only_in_how_it_is_written_says_so_with_escapes(
    tmp_path: Path, axis: str, entry: str, told: str,
) -> None:
    """Said before as "no job has look=café noir", beside a plan listing a job of look=café noir."""
    p = plan_of(tmp_path, SLIP.replace("[a, b]", f"[{axis}, b]") + f"  exclude:\n    - {{look: {entry}}}\n")
    assert len(p.jobs) == 4
    assert about(p, "removes no combination") == [
        (f"9:7: matrix.exclude[0]: removes no combination (no job has {told}, not equal to it under GitHub's ==; "
        "write it as the axis does); check its values")]


@pytest.mark.parametrize(("axis", "entry", "said"), [
    pytest.param(".inf", "inf", "look 'inf' (a string): look's inf (a number) reads alike but is not equal to it "
                 "under GitHub's ==; write it .inf, as YAML writes infinity (inf unquoted is a string)", id="inf"),
    pytest.param("-.inf", '"-inf"', "look '-inf' (a string): look's -inf (a number) reads alike but is not equal to "
                 "it under GitHub's ==; write it -.inf, as YAML writes infinity (inf unquoted is a string)",
                 id="minus-inf"),
    pytest.param(".nan", ".nan", "look nan (a number): look's nan (a number) reads alike, but NaN is equal to no "
                 "value under GitHub's ==, not even NaN; no entry matches it: name its jobs by another key", id="nan"),
    pytest.param('"inf"', ".inf", "look inf (a number): look's 'inf' (a string) reads alike but is not equal to it "
                 "under GitHub's ==; quote it, as the axis does", id="inf-against-a-string"),
])
def test_an_exclude_of_infinity_or_nan_is_told_the_fix_that_matches(tmp_path: Path, axis: str, entry: str,
                                                                    said: str) -> None:
    p = plan_of(tmp_path, SLIP.replace("[a, b]", f"[{axis}, b]") + f"  exclude:\n    - {{look: {entry}}}\n")
    assert about(p, "removes no combination") == [
        f"9:7: matrix.exclude[0]: removes no combination (no job has {said}); check its values"]


def test_a_list_under_an_axis_that_holds_lists_is_one_value_and_says_so_when_it_matches_nothing(
    tmp_path: Path,
) -> None:
    """[rain, fog] would raise rain and fog to 1080p under an axis of no lists; beside [snow, dusk] it is one value:
    the entry adds a job of its own, paid for, and the exclude removes nothing."""
    p = plan_of(tmp_path, """\
        params: {prompt: "a fox in {{ weather if weather is string else weather | join(' and ') }}", quality: 360p}
        matrix:
          weather: [[snow, dusk], rain, fog]
          include:
            - {weather: [rain, fog], quality: 1080p}
            - {weather: [hail], quality: 720p}
          exclude:
            - {weather: [fog, rain]}
        """)
    assert len(p.jobs) == 5
    why = ("weather holds lists, so a list under its key is one value, the whole list, not an entry per value as under "
           "an axis of no lists; write an {} entry per value")
    assert [w for w in about(p, "holds lists")] == [
        ("11:7: matrix.exclude[0]: removes no combination (no job has weather=['fog', 'rain']: "
         + why.format("exclude") + "); check its values"),
        ("8:8: matrix.include[0].weather: matches no combination, so this entry adds a job of its own: "
         "weather=['rain', 'fog']: " + why.format("include"))]


# --- vars named like a request parameter or a matrix key ----------------------------------------

def test_a_var_named_like_a_request_parameter_says_what_the_request_has_instead(tmp_path: Path) -> None:
    """Shared settings moved into `vars:` set nothing: the request is 540p, 5 s, seed 3."""
    p = plan_of(tmp_path, """\
        vars:
          quality: 1080p
          duration: 8
          seed: 7
        params:
          prompt: "a fox, {{ look }}"
          seed: 3
        matrix:
          look: [a, b]
        """)
    assert {(j.params["quality"], j.params["duration"], j.params["seed"]) for j in p.jobs} == {("540p", 5, 3)}
    assert about(p, "a var does not set") == [
        ("5:3: vars.quality: a var does not set the request's quality (params: or a matrix key named quality do): "
         "the request has quality '540p' (the model's default), whatever this var holds"),
        ("6:3: vars.duration: a var does not set the request's duration (params: or a matrix key named duration do): "
         "the request has duration 5 (the model's default), whatever this var holds"),
        ("7:3: vars.seed: a var does not set the request's seed (params: or a matrix key named seed do): the "
         "request has seed 3 (from params.seed), whatever this var holds")]
    # a var the parameter's own template reads sets it
    p = plan_of(tmp_path, 'vars: {quality: 720p}\nparams: {prompt: "a fox", quality: "{{ quality }}"}\n')
    assert p.jobs[0].params["quality"] == "720p"
    assert not about(p, "a var does not set"), p.warnings


def test_a_var_named_like_a_boolean_parameter_tells_its_value_as_the_manifest_writes_it(tmp_path: Path) -> None:
    p = plan_of(tmp_path, 'vars: {audio: true}\nparams: {prompt: "a fox", quality: 540p}\n')
    [warning] = about(p, "a var does not set")
    assert "the request has generate_audio_switch false (the model's default)" in warning, warning


def test_a_var_named_like_a_parameter_by_another_name_case_or_provider_is_warned_of_as_its_own_name(
    tmp_path: Path,
) -> None:
    """`seconds` (Lumenfall's name for duration), `Quality` and `negative` (another provider's) were not warned of,
    though `duration` was: the request was sent at the default, silently."""
    p = plan_of(tmp_path, """\
        vars:
          seconds: 8
          Quality: 720p
          negative: blur
        params:
          prompt: "a fox"
        """)
    assert about(p, "a var does not set") == [
        ("5:3: vars.seconds: a var does not set the request's duration ('seconds' is another name for it; params: or "
         "a matrix key named duration do): the request has duration 5 (the model's default), whatever this var holds"),
        ("6:3: vars.Quality: a var does not set the request's quality ('Quality' is its name in another case; params: "
         "or a matrix key named quality do): the request has quality '540p' (the model's default), whatever this var "
         "holds"),
        ("7:3: vars.negative: a var does not set the request's negative_prompt ('negative' is another provider's name "
         "for it; params: or a matrix key named negative_prompt do): the request has no negative_prompt, whatever "
         "this var holds")]
    read = plan_of(tmp_path, 'vars: {seconds: 8}\nparams: {prompt: "a fox", seconds: "{{ seconds }}"}\n')
    assert read.jobs[0].params["duration"] == 8 and not about(read, "a var does not set"), read.warnings


def test_a_var_named_like_a_request_parameter_that_a_template_reads_is_not_warned_of(tmp_path: Path) -> None:
    """`{{ style }} painting` in a prompt is text, the commonest way to write one."""
    p = plan_of(tmp_path, """\
        vars:
          style: watercolor
          subject: a red fox
        params:
          prompt: "{{ subject }}, {{ style }} painting, {{ mood }}"
          quality: 360p
        matrix:
          mood: [calm, stormy]
        """)
    assert p.jobs[0].params["prompt"] == "a red fox, watercolor painting, calm"
    assert not about(p, "a var does not set"), p.warnings


def test_a_var_read_by_a_parameter_template_of_one_sweep_is_not_warned_of(tmp_path: Path) -> None:
    """The sweep whose seed template reads the var sends it, though another sweep sets no seed."""
    p = plan_of(tmp_path, """\
        vars:
          seed: 7
        params:
          prompt: "a fox"
          quality: 360p
        sweeps:
          - name: free
            params: {}
          - name: fixed
            params: {seed: "{{ seed }}"}
        """)
    assert [j.params.get("seed") for j in p.jobs] == [None, 7]
    assert not about(p, "a var does not set"), p.warnings


def test_a_var_named_like_a_matrix_key_of_every_job_is_warned_of_and_one_a_few_jobs_lack_is_not(tmp_path: Path) -> None:
    p = plan_of(tmp_path, """\
        vars: {look: from-vars, light: noon}
        params: {prompt: "a fox, {{ look }}, {{ light }}", quality: 360p}
        matrix:
          look: [a, b]
          include:
            - {look: a, light: dusk}
        """)
    assert [j.params["prompt"] for j in p.jobs] == ["a fox, a, dusk", "a fox, b, noon"]
    assert about(p, "never used") == [
        "4:8: vars.look: the matrix key 'look' is in every job, and the matrix value wins: this var is never used"]


def test_a_top_level_var_shadowed_in_one_sweep_only_is_not_warned_of(tmp_path: Path) -> None:
    p = plan_of(tmp_path, """\
        vars: {look: from-vars}
        params: {prompt: "a fox, {{ look }}", quality: 360p}
        sweeps:
          - name: one
            matrix: {look: [a, b]}
          - name: two
            matrix: {seed: [1]}
          - name: three
            vars: {look: own}
            matrix: {look: [c]}
        """)
    assert [j.params["prompt"] for j in p.jobs] == ["a fox, a", "a fox, b", "a fox, from-vars", "a fox, c"]
    assert [w.split(":")[2] for w in about(p, "never used")] == [" sweeps[2].vars.look"]


# --- an axis whose every value the model does not use -------------------------------------------

def test_an_axis_of_values_the_model_does_not_use_is_one_setting_paid_for_each_value(tmp_path: Path) -> None:
    """A size sets the shape: the aspect_ratio axis makes two paid renders of one setting."""
    p = plan_of(tmp_path, 'params: {prompt: "a fox", size: 1365x768}\nmatrix:\n  aspect_ratio: ["16:9", "1:1"]\n'
                          "output: \"{{ aspect_ratio | replace(':', '-') }}.mp4\"\n")
    assert len(p.jobs) == 2 and p.jobs[0].hash != p.jobs[1].hash  # hashes are of the request, as before
    assert about(p, "every value") == [
        ("6:3: matrix.aspect_ratio: every value of aspect_ratio is not used (as warned at each): the 2 jobs differ "
         "only in what pixverse-v5.6 ignores: 2 paid renders of one setting; leave aspect_ratio out, or vary a "
         "parameter the model uses")]
    assert len(about(p, "is not used: size sets the shape")) == 2


def test_an_axis_of_values_the_model_does_not_use_that_a_template_writes_into_the_prompt_is_no_one_setting(
    tmp_path: Path,
) -> None:
    """"a fox, 16:9" and "a fox, 1:1" are two renders, not two paid renders of one setting."""
    out = "output: \"{{ aspect_ratio | replace(':', '-') }}.mp4\"\n"
    p = plan_of(tmp_path, 'params: {prompt: "a fox, {{ aspect_ratio }}", size: 1024x1024}\n'
                          'matrix:\n  aspect_ratio: ["16:9", "1:1"]\n' + out)
    assert [j.params["prompt"] for j in p.jobs] == ["a fox, 16:9", "a fox, 1:1"]
    assert len(about(p, "is not used: size sets the shape")) == 2  # each value is still warned of
    assert not about(p, "every value"), p.warnings
    p = plan_of(tmp_path, 'vars: {line: "a fox, {{ aspect_ratio }}"}\nparams: {prompt: "{{ line }}!", size: 1024x1024}\n'
                          'matrix:\n  aspect_ratio: ["16:9", "1:1"]\n' + out)
    assert not about(p, "every value"), p.warnings


def test_an_aspect_ratio_under_a_given_size_is_not_used_and_is_warned_of_per_value_and_as_a_whole(
    tmp_path: Path,
) -> None:
    """size "wins over aspect_ratio": both jobs render 720x1280, with no warning before."""
    p = plan_of(tmp_path, """\
        params: {prompt: "a fox {{ look }}", size: "9:16", quality: 720p}
        matrix:
          aspect_ratio: ["16:9", "1:1"]
          look: [a, b]
        output: "{{ look }}-{{ aspect_ratio | replace(':', 'x') }}.mp4"
        """)
    assert {j.size for j in p.jobs} == {(720, 1280)}
    assert about(p, "aspect_ratio") == [
        ("6:18: matrix.aspect_ratio[0]: '16:9' is not used: size sets the shape, and wins over aspect_ratio (leave "
         "aspect_ratio out, or size)"),
        ("6:26: matrix.aspect_ratio[1]: '1:1' is not used: size sets the shape, and wins over aspect_ratio (leave "
         "aspect_ratio out, or size)"),
        ("6:3: matrix.aspect_ratio: every value of aspect_ratio is not used (as warned at each): jobs that differ "
         "only in aspect_ratio differ only in what pixverse-v5.6 ignores: 2 paid renders of one setting; leave "
         "aspect_ratio out, or vary a parameter the model uses")]
    # an aspect ratio without a size sets the shape: one value the model uses makes the axis worth its jobs
    p = plan_of(tmp_path, 'params: {prompt: "a fox"}\nmatrix:\n  aspect_ratio: ["16:9", "1:1"]\n  include:\n'
                          '    - {aspect_ratio: "1:1", size: 1024x1024}\n'
                          "output: \"{{ key | replace(':', '-') }}.mp4\"\n")
    assert [w.split(":")[2] for w in about(p, "not used")] == [" matrix.aspect_ratio[1]"]


# --- sweep in a manifest without sweeps ------------------------------------------------------------------------

NO_SWEEPS = "this manifest has no sweeps, and sweep is the name of the job's sweep under `sweeps:`"


def test_sweep_read_in_a_manifest_without_sweeps_is_warned_of_at_each_template(tmp_path: Path) -> None:
    """It rendered as empty text, silently: a prompt 'fox in  light', an output '-a.mp4'."""
    p = plan_of(tmp_path, """\
        vars:
          where: "{{ sweep }} set"
        params:
          prompt: "fox in {{ sweep }} light, {{ where }}"
        matrix:
          look: [a]
        output: "{{ sweep }}-{{ look }}.mp4"
        """)
    assert about(p, "reads sweep") == [f"5:3: vars.where: reads sweep, which is empty here: {NO_SWEEPS}",
                                       f"7:3: params.prompt: reads sweep, which is empty here: {NO_SWEEPS}",
                                       f"10:1: output: reads sweep, which is empty here: {NO_SWEEPS}"]
    with_sweeps = plan_of(tmp_path, 'params: {prompt: "fox {{ sweep }}"}\nsweeps: [{name: a}]\n')
    assert not about(with_sweeps, "reads sweep"), with_sweeps.warnings


def test_an_output_error_names_sweep_empty_in_a_manifest_without_sweeps(tmp_path: Path) -> None:
    """The error blamed an absolute path the manifest does not write."""
    with pytest.raises(ManifestError) as caught:
        plan_of(tmp_path, 'params: {prompt: "fox {{ look }}"}\nmatrix: {look: [a]}\noutput: "{{ sweep }}/{{ look }}.mp4"\n')
    assert (caught.value.line, caught.value.field) == (6, "output")
    assert caught.value.message == ("renders an absolute path; output is relative to the output folder; sweep, which "
                                    f"it reads, is empty: {NO_SWEEPS} ('/a.mp4')")
