from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import shlex
import shutil
import textwrap
import unicodedata
from pathlib import Path
from typing import Any

import hypothesis
import pytest
import yaml

from runner import api, localpaths
from runner.errors import CapabilityError, ManifestError, ManifestErrors, MatrixError, TemplateError
from runner.manifest import load
from runner.options import RunOptions
from runner.outputs import SIDECAR_FIELDS, files_beside, sidecar_path
from runner.plan import DEFAULT_MAX_JOBS, Plan, Stored, build, diff, job_hash, job_key, overwrites
from runner.plan import _WRITTEN_SLACK, _written
from runner.providers import capabilities, get_provider
from runner.report import poster_path
from runner.resume import action
from runner.state import JobState

HEAD = "version: 1\nname: fox\nmodel: pixverse-v5.6\n"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32 + b"\x00\x00\x00\x00IEND\xaeB`\x82"


def write(tmp_path: Path, body: str, name: str = "m.yaml", head: str = HEAD) -> Path:
    path = tmp_path / name
    path.write_text(head + textwrap.dedent(body), encoding="utf-8")
    return path


def plan_of(tmp_path: Path, body: str, name: str = "m.yaml", **kw: Any) -> Plan:
    return api.plan(write(tmp_path, body, name), **kw)


def errors_of(tmp_path: Path, body: str, **kw: Any) -> list[ManifestError]:
    with pytest.raises((ManifestError, ManifestErrors)) as exc:
        plan_of(tmp_path, body, **kw)
    if isinstance(exc.value, ManifestErrors):
        return exc.value.errors
    assert isinstance(exc.value, ManifestError)
    return [exc.value]


def one_error(tmp_path: Path, body: str, fragment: str, **kw: Any) -> ManifestError:
    found = [e for e in errors_of(tmp_path, body, **kw) if fragment in str(e)]
    assert found, f"no error mentions {fragment!r}"
    return found[0]


def keys(p: Plan) -> list[str]:
    return [j.key for j in p.jobs]


def by_key(p: Plan) -> dict[str, Any]:
    return {j.key: j for j in p.jobs}


# --- the GitHub docs example, through the whole plan -------------------------------------------

GITHUB_EXAMPLE = """\
params:
  prompt: "{{ key }}"
matrix:
  fruit: [apple, pear]
  animal: [cat, dog]
  include:
    - color: green
    - color: pink
      animal: cat
    - fruit: apple
      shape: circle
    - fruit: banana
    - fruit: banana
      animal: cat
"""


def test_github_docs_example_gives_six_jobs_in_order(tmp_path: Path) -> None:
    p = plan_of(tmp_path, GITHUB_EXAMPLE)
    assert keys(p) == [
        "fruit=apple,animal=cat,color=pink,shape=circle",
        "fruit=apple,animal=dog,color=green,shape=circle",
        "fruit=pear,animal=cat,color=pink",
        "fruit=pear,animal=dog,color=green",
        "fruit=banana",
        "fruit=banana,animal=cat",
    ]
    assert [j.origin for j in p.jobs] == ["product"] * 4 + ["include 4", "include 5"]
    assert p.axes == ("fruit", "animal", "color", "shape")
    assert p.varying == ("fruit", "animal", "color", "shape")
    assert [j.params["prompt"] for j in p.jobs] == keys(p)
    assert len({j.hash for j in p.jobs}) == 6


# --- keys --------------------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("sweep", "values", "repeat", "key"),
    [
        (None, (("style", "anime"), ("seed", 1)), 0, "style=anime,seed=1"),
        (None, (("style", "anime"), ("seed", 1)), 2, "style=anime,seed=1#2"),
        ("wide", (("style", "anime"),), 0, "wide/style=anime"),
        ("wide", (("style", "anime"),), 1, "wide/style=anime#1"),
        (None, (), 0, "job"),
        ("solo", (), 0, "solo/job"),
        (None, (("hd", True), ("cfg", 0.5), ("x", None)), 0, "hd=true,cfg=0.5,x=null"),
        (None, (("p", "a  long\nprompt"),), 0, "p=a long prompt"),
        (None, (("row", {"b": 1, "a": "x"}),), 0, 'row={"a":"x","b":1}'),
    ],
)
def test_job_key(sweep: str | None, values: tuple[tuple[str, Any], ...], repeat: int, key: str) -> None:
    assert job_key(sweep, values, repeat) == key


def test_a_long_value_is_shortened_in_the_key_with_a_digest() -> None:
    prompt = "a very long prompt about a red fox running through fresh snow at dawn"
    key = job_key(None, (("prompt", prompt),), 0)
    assert key.startswith("prompt=a very long prompt about a red ") and "…" in key
    assert key == job_key(None, (("prompt", prompt),), 0)
    assert key != job_key(None, (("prompt", prompt + "!"),), 0)


def test_keys_follow_declaration_order_with_repeat_suffix(tmp_path: Path) -> None:
    p = plan_of(tmp_path, """\
        params:
          prompt: "{{ style }}"
        matrix:
          style: [anime, clay]
          duration: [5]
        repeat: 2
        """)
    assert keys(p) == ["style=anime,duration=5", "style=anime,duration=5#1", "style=clay,duration=5", "style=clay,duration=5#1"]
    assert [j.repeat for j in p.jobs] == [0, 1, 0, 1]
    assert p.jobs[0].hash != p.jobs[1].hash


def test_repeat_with_a_fixed_seed_is_refused_as_one_video_paid_again_and_again(tmp_path: Path) -> None:
    err = one_error(tmp_path, "params:\n  prompt: a fox\n  seed: 7\nrepeat: 3\n", "the same request as an earlier take")
    assert err.field == "repeat" and "repeat: 3 sends take 1 the same request" in err.message
    assert "(seed 7): one video, paid for again" in err.message
    one_error(tmp_path, "params:\n  prompt: a fox\nmatrix:\n  seed: [7]\nrepeat: 2\n", "(seed 7)")
    # any two takes alike, not only a take like the first
    one_error(tmp_path, "params:\n  prompt: a fox\n  seed: \"{{ [5, 6, 6][repeat] }}\"\nrepeat: 3\n", "sends take 2")
    varied = plan_of(tmp_path, "params:\n  prompt: a fox\n  seed: \"{{ 1000 + repeat }}\"\nrepeat: 3\n")
    assert [j.params["seed"] for j in varied.jobs] == [1000, 1001, 1002]
    assert len(plan_of(tmp_path, "params:\n  prompt: a fox\nrepeat: 3\n").jobs) == 3  # takes of random seeds


def test_a_param_template_of_the_axis_that_replaces_it_is_refused(tmp_path: Path) -> None:
    """`prompt: "{{ prompt }}, 4k"` beside a prompt axis would send the bare axis value: the template is dead."""
    err = one_error(tmp_path, 'params:\n  prompt: "{{ prompt }}, 4k, cinematic"\nmatrix:\n  prompt: [a fox, a cat]\n',
                    "is a template of the matrix key 'prompt'")
    assert err.field == "params.prompt" and "prompt_text" in err.message
    # through a var too
    via = one_error(tmp_path, 'vars:\n  p2: "{{ prompt }}, 4k"\nparams:\n  prompt: "{{ p2 }}"\nmatrix:\n  prompt: [a fox]\n',
                    "is a template of the matrix key 'prompt'")
    assert via.field == "params.prompt"
    # `prompt: "{{ prompt }}"` is the axis value itself: nothing is lost
    assert plan_of(tmp_path, 'params:\n  prompt: "{{ prompt }}"\nmatrix:\n  prompt: [a cat]\n').jobs[0].params["prompt"] == "a cat"
    # an axis that replaces a template of other names is the usual override
    p = plan_of(tmp_path, 'vars:\n  s: x\nparams:\n  prompt: "{{ s }} fox"\nmatrix:\n  prompt: [a cat]\n')
    assert p.jobs[0].params["prompt"] == "a cat"


def test_sweeps_are_a_union_with_prefixed_keys_and_their_own_overrides(tmp_path: Path) -> None:
    p = plan_of(tmp_path, """\
        vars:
          subject: a fox
        params:
          prompt: "{{ subject }}, {{ style }} style"
          quality: 540p
        sweeps:
          - name: styles
            matrix:
              style: [anime, clay]
          - name: sharp
            vars:
              subject: a wolf
            params:
              quality: 720p
              duration: 8
            matrix:
              style: [anime]
            repeat: 2
            output: "sharp/{{ key }}.mp4"
        """)
    assert keys(p) == ["styles/style=anime", "styles/style=clay", "sharp/style=anime", "sharp/style=anime#1"]
    jobs = by_key(p)
    assert jobs["styles/style=anime"].params["quality"] == "540p"
    assert jobs["sharp/style=anime"].params["quality"] == "720p"
    assert jobs["sharp/style=anime"].params["duration"] == 8
    assert jobs["sharp/style=anime"].params["prompt"] == "a wolf, anime style"
    assert jobs["sharp/style=anime"].sweep == "sharp"
    assert jobs["sharp/style=anime"].origin == "sweep sharp: product"
    assert jobs["sharp/style=anime"].sources["quality"] == "sweeps[1].params.quality"
    assert jobs["styles/style=anime"].sources["quality"] == "params.quality"
    assert jobs["sharp/style=anime#1"].output == p.outputs_dir / "sharp" / "sharp" / "style=anime#1.mp4"
    assert jobs["styles/style=anime"].output == p.outputs_dir / "styles" / "style=anime.mp4"
    assert jobs["styles/style=anime"].hash != jobs["sharp/style=anime"].hash


def test_an_exclude_that_removes_nothing_is_a_warning_at_its_entry(tmp_path: Path) -> None:
    """A typo in an exclude value (`anme` for `anime`) would otherwise plan, and pay for, the jobs it was to remove."""
    p = plan_of(tmp_path, """\
        params:
          prompt: "a {{ style }} fox"
        matrix:
          style: [anime, clay]
          exclude:
            - style: anme
            - style: clay
        """)
    assert keys(p) == ["style=anime"]
    path = tmp_path / "m.yaml"
    assert p.warnings == (f"{path}:9:7: matrix.exclude[0]: removes no combination (no job has style=anme); "
                          "check its values",)
    assert [getattr(w, "plain", w) for w in p.warnings] == [
        "matrix.exclude[0]: removes no combination (no job has style=anme); check its values"]
    p = plan_of(tmp_path, """\
        params:
          prompt: "a {{ style }} fox"
        sweeps:
          - name: one
            matrix:
              style: [anime]
          - name: more
            matrix:
              style: [clay]
              seed: [1, 2]
              exclude:
                - seed: 1
                - seed: 3
        """)
    assert keys(p) == ["one/style=anime", "more/style=clay,seed=2"]
    assert p.warnings == (f"{path}:16:11: sweeps[1].matrix.exclude[1]: removes no combination (no job has seed=3); "
                          "check its values",)


def test_many_excludes_that_remove_nothing_are_told_five_at_their_lines_and_the_rest_at_once(tmp_path: Path) -> None:
    """A long exclude list of typos (a list generated with the wrong values) is not a warning per entry: the first
    five at their lines, the others counted in one warning at `exclude` that names the first of them."""
    entries = "\n".join(f"    - seed: {100 + i}" for i in range(20))
    p = plan_of(tmp_path, "params:\n  prompt: a fox\nmatrix:\n  seed: [1, 2]\n  exclude:\n" + entries + "\n")
    plain = [getattr(w, "plain", w) for w in p.warnings]
    assert plain[:5] == [f"matrix.exclude[{i}]: removes no combination (no job has seed={100 + i}); check its values"
                         for i in range(5)]
    assert plain[5:] == ["matrix.exclude: 15 more entries remove no combination (entries 5, 6, 7, 8, 9, 10, 11, 12, "
                         "13, 14, ...); check their values"]
    line = HEAD.count("\n") + 5  # `exclude:`
    assert str(p.warnings[5]).startswith(f"{tmp_path / 'm.yaml'}:{line}:3: matrix.exclude: 15 more"), p.warnings[5]


def test_a_matrix_value_repeated_is_a_duplicate_key_at_the_repeat(tmp_path: Path) -> None:
    err = one_error(tmp_path, """\
        params:
          prompt: a fox
        matrix:
          seed: [1, 2, 1]
        """, "two jobs have the same key")
    assert isinstance(err, MatrixError) and (err.line, err.column, err.field) == (7, 16, "matrix.seed[2]")
    assert err.message == ("two jobs have the same key: this value repeats matrix.seed[0], at line 7; make the "
                           "matrix entries differ, or use repeat (in job seed=1)")


def test_an_include_entry_repeated_is_a_duplicate_key_at_the_second_entry(tmp_path: Path) -> None:
    """It was reported at `matrix:`: in a long include list, no entry was named."""
    err = one_error(tmp_path, """\
        params:
          prompt: a fox {{ style }}
        matrix:
          style: [anime]
          include:
            - {style: clay, seed: 1}
            - style: comic
            - {style: clay, seed: 1}
        """, "same key")
    assert isinstance(err, MatrixError) and (err.line, err.column, err.field) == (11, 7, "matrix.include[2]")
    assert err.message == ("two jobs have the same key: this entry repeats matrix.include[0], at line 9; make the "
                           "include entries differ, or use repeat (in job style=clay,seed=1)")
    err = one_error(tmp_path, """\
        params:
          prompt: a fox
        sweeps:
          - name: one
            matrix:
              include: [{seed: 1}, {seed: 2}, {seed: 1}]
        """, "same key")
    assert (err.line, err.column, err.field) == (9, 39, "sweeps[0].matrix.include[2]")
    assert err.message.startswith("two jobs have the same key: this entry repeats sweeps[0].matrix.include[0], at "
                                  "line 9; ")


@pytest.mark.parametrize(("name", "text", "axis"), [
    ("p.txt", "x\ny\nz\ny\n", "p: {file: p.txt}"),
    ("rows.jsonl", '{"a": 1}\n{"a": 2}\n{"a": 3}\n{"a": 2}\n', "p: {file: rows.jsonl}"),
    ("p.csv", "a,b\n1,x\n2,y\n3,z\n2,y\n", "p: {file: p.csv}"),
])
def test_a_value_repeated_in_a_data_file_is_an_error_at_its_line(tmp_path: Path, name: str, text: str,
                                                                  axis: str) -> None:
    """It was reported at the manifest's `matrix:` line: in a file of thousands of prompts, no line was named."""
    (tmp_path / name).write_text(text, encoding="utf-8")
    body = f"params:\n  prompt: a fox\nmatrix:\n  q: [1, 2]\n  {axis}\noutput: '{{{{ hash }}}}.mp4'\n"
    err = one_error(tmp_path, body, "same key")
    header = name.endswith(".csv")
    assert (Path(err.file), err.line, err.field) == (tmp_path / name, 4 + header, "matrix.p[3]")
    assert err.message.startswith(f"two jobs have the same key: this value repeats matrix.p[1], at line {2 + header}; ")
    assert "; make the matrix entries differ, or use repeat (in 2 jobs, e.g. q=1,p=" in err.message


def test_values_a_key_does_not_tell_apart_are_named_with_why_at_their_line(tmp_path: Path) -> None:
    """The key keeps a value's words, not its spacing, and writes ',' and '=' as they are: jobs of different values
    can have one key. Said as such (not 'make the matrix entries differ'), at the value, in its data file."""
    (tmp_path / "p.txt").write_text("a cat on a mat\na cat  on a mat\n", encoding="utf-8")
    err = one_error(tmp_path, "params:\n  prompt: '{{ p }}'\nmatrix:\n  p: {file: p.txt}\noutput: '{{ hash }}.mp4'\n",
                    "same key")
    assert str(err) == (f"{tmp_path / 'p.txt'}:2:1: matrix.p[1]: two jobs have the same key 'p=a cat on a mat', from "
                        f"different values (p='a cat on a mat'; p='a cat  on a mat', the first from "
                        f"{tmp_path / 'p.txt'}:1), and a key names one job; a key keeps a value's words, not its "
                        "spacing: make the values differ in words, or remove one if they mean the same")
    assert isinstance(err, MatrixError)
    err = one_error(tmp_path, """\
        params:
          prompt: "{{ a }} {{ b }}"
        matrix:
          a: ['x,b=y', x]
          b: ['1', 'y,b=1']
        output: "{{ hash }}.mp4"
        """, "same key")
    assert (err.line, err.field) == (8, "matrix.b[1]")
    assert err.message == ("two jobs have the same key 'a=x,b=y,b=1', from different values (a='x,b=y', b='1'; "
                           "a='x', b='y,b=1'), and a key names one job; ',' and '=' inside a value read like the "
                           "separators between values (and '#' like a take's number): leave them out of the values")
    err = one_error(tmp_path, "params:\n  prompt: a fox\nmatrix:\n  duration: [5, '5']\n", "same key")
    assert (err.line, err.field) == (7, "matrix.duration[1]")
    assert "(duration=5; duration='5'), and a key names one job; a key writes a value's text, not its type" in err.message


# --- hashes ------------------------------------------------------------------------------------

PINNED = """\
provider: sim
params:
  prompt: "a red fox, {{ style }} style"
  duration: 5
matrix:
  style: [anime]
  seed: [7]
"""


def test_hash_formula_is_pinned(tmp_path: Path) -> None:
    job = plan_of(tmp_path, PINNED).jobs[0]
    canonical = (
        '{"model":"pixverse-v5.6","params":{"aspect_ratio":"16:9","duration":5,"generate_audio_switch":false,'
        '"n":1,"prompt":"a red fox, anime style","quality":"540p","seed":7,"style":"anime"},'
        '"provider":"sim","repeat":0}'
    )
    assert job.hash == hashlib.sha256(canonical.encode()).hexdigest()
    assert job.hash == "f542080dba3d47f01ae533f2408d38cef32b4de9e98bfeb033525bdfe4a947f2"
    assert job.hash == job_hash("sim", "pixverse-v5.6", job.params, 0)


REFERENCE_CASES = {
    "two free texts": """\
        vars:
          who: "a fox named \\"Ré\\" 🦊"
        params:
          prompt: "{{ who }}, {{ style }} style, take {{ repeat }}"
          negative_prompt: "{{ avoid }}"
          quality: 540p
          extra: {a: [1, 2.5, null]}
        matrix:
          style: [anime, clay]
          avoid: [blur, "\\u00e9\\t"]
          seed: [1, 2]
          include:
            - {style: comic, avoid: rain, generate_audio_switch: true, thinking_type: enabled}
        repeat: 2
        """,
    "no free text varies": """\
        params:
          prompt: a fox
          negative_prompt: blur
        matrix:
          quality: [360p, 540p]
          duration: [5, "8"]
        repeat: 2
        """,
    "free text from the matrix": """\
        params:
          prompt: unused
        matrix:
          prompt: ["a fox", "a \\"quoted\\" fox", "ünïcode 🦊"]
          negative_prompt: [null, blur]
        """,
    "typed expressions": """\
        params:
          prompt: "{{ 'x' * k }}"
          seed: "{{ k * 10 }}"
          steps: "{{ k }}"
          cfg: "{{ cfg }}"
        matrix:
          k: [1, 2, 3]
          cfg: {linspace: [0.5, 1.5, 3]}
        output: "{{ key }}.mp4"
        """,
}


@pytest.mark.parametrize("body", REFERENCE_CASES.values(), ids=REFERENCE_CASES)
def test_every_hash_matches_the_reference_formula(tmp_path: Path, body: str) -> None:
    p = plan_of(tmp_path, body)
    assert p.jobs
    for job in p.jobs:
        assert job.hash == job_hash(p.provider, p.model, job.params, job.repeat)


_TEXT = hypothesis.strategies.text(
    alphabet=hypothesis.strategies.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters="{}%#"),
    min_size=1, max_size=24,
).filter(lambda t: t.strip() != "")


@hypothesis.settings(max_examples=50, deadline=None, derandomize=True,
                     suppress_health_check=[hypothesis.HealthCheck.function_scoped_fixture])
@hypothesis.given(
    who=_TEXT,
    looks=hypothesis.strategies.lists(  # values a job key tells apart
        _TEXT, min_size=1, max_size=3, unique_by=lambda t: unicodedata.normalize("NFC", " ".join(t.split()))),
    seeds=hypothesis.strategies.lists(hypothesis.strategies.integers(0, 2**27), min_size=1, max_size=2, unique=True),
    extra=hypothesis.strategies.one_of(
        hypothesis.strategies.none(), hypothesis.strategies.booleans(), hypothesis.strategies.integers(-10**12, 10**12),
        hypothesis.strategies.floats(allow_nan=False, allow_infinity=False), _TEXT,
        hypothesis.strategies.lists(hypothesis.strategies.integers(-5, 5), max_size=3),
    ),
    repeat=hypothesis.strategies.integers(1, 2),
)
def test_the_hash_of_any_values_matches_the_reference_formula(
    tmp_path: Path, who: str, looks: list[str], seeds: list[int], extra: Any, repeat: int
) -> None:
    """A job's hash, built on the planner's fast path, is the reference formula's for any free text, number
    and structure: were they to differ, every job would look new and be paid for again."""
    import yaml

    body = yaml.safe_dump({
        "vars": {"who": who},
        "params": {"prompt": "{{ who }} in {{ look }}", "negative_prompt": "{{ look }}", "quality": "540p",
                   "seed": "{{ base * 10 + repeat }}", "extra": extra},
        "matrix": {"look": looks, "base": seeds},
        "repeat": repeat,
        "output": "{{ key }}-{{ hash }}.mp4",  # values that differ only in punctuation share a default name
    }, allow_unicode=True)
    p = plan_of(tmp_path, body)
    assert len(p.jobs) == len(looks) * len(seeds) * repeat
    for job in p.jobs:
        assert job.hash == job_hash(p.provider, p.model, job.params, job.repeat)


SAME_AS_BASE = [
    ("base", """\
        vars:
          subject: a red fox
        params:
          prompt: "{{ subject }}, {{ style }} style"
          quality: 540p
          duration: 5
        matrix:
          style: [anime]
          seed: [1]
        """),
    ("yaml formatting and comments", """\
        # a comment
        vars: {subject: "a red fox"}   # flow style
        params: {prompt: '{{ subject }}, {{ style }} style', quality: "540p", duration: 5}
        matrix:
          style:
            - anime
          seed: [1]
        """),
    ("var names", """\
        vars:
          animal: a red fox
        params:
          prompt: "{{ animal }}, {{ style }} style"
          quality: 540p
          duration: 5
        matrix:
          style: [anime]
          seed: [1]
        """),
    ("key order and defaults written out", """\
        matrix:
          seed: [1]
          style: [anime]
        params:
          aspect_ratio: "16:9"
          duration: 5
          quality: 540p
          prompt: "a red fox, {{ style }} style"
        vars:
          subject: unused
        """),
    ("throughput knobs and output", """\
        vars:
          subject: a red fox
        params:
          prompt: "{{ subject }}, {{ style }} style"
          quality: 540p
          duration: 5
        matrix:
          style: [anime]
          seed: [1]
        run:
          concurrency: 9
          retries: 7
          budget_usd: 1
        output: "videos/{{ key }}.mp4"
        """),
]


@pytest.mark.parametrize(("what", "body"), SAME_AS_BASE[1:], ids=[w for w, _ in SAME_AS_BASE[1:]])
def test_what_does_not_change_the_hash(tmp_path: Path, what: str, body: str) -> None:
    base = plan_of(tmp_path, SAME_AS_BASE[0][1], "base.yaml").jobs[0]
    other = plan_of(tmp_path, body, "other.yaml").jobs[0]
    assert other.hash == base.hash
    assert dict(other.params) == dict(base.params)


@pytest.mark.parametrize(
    ("what", "old", "new"),
    [
        ("seed", "seed: [1]", "seed: [2]"),
        ("prompt text", "a red fox", "a red  fox"),
        ("a parameter", "duration: 5", "duration: 8"),
        ("a parameter's type", "seed: [1]", "seed: [1.5]"),
    ],
)
def test_what_changes_the_hash(tmp_path: Path, what: str, old: str, new: str) -> None:
    body = textwrap.dedent(SAME_AS_BASE[0][1])
    assert old in body
    base = plan_of(tmp_path, body, "base.yaml").jobs[0]
    if what == "a parameter's type":
        with pytest.raises(CapabilityError, match="expected an integer, got 1.5"):
            plan_of(tmp_path, body.replace(old, new), "other.yaml")
        return
    other = plan_of(tmp_path, body.replace(old, new), "other.yaml").jobs[0]
    assert other.hash != base.hash


def test_repeat_index_changes_the_hash_and_provider_too(tmp_path: Path) -> None:
    p = plan_of(tmp_path, "params:\n  prompt: a fox\nrepeat: 3\n")
    assert len({j.hash for j in p.jobs}) == 3
    lumen = plan_of(tmp_path, "provider: lumenfall\nparams:\n  prompt: a fox\nrepeat: 3\n", "l.yaml")
    assert {j.hash for j in lumen.jobs}.isdisjoint({j.hash for j in p.jobs})


def test_quoted_and_unquoted_ratio_are_the_same_request(tmp_path: Path) -> None:
    unquoted = plan_of(tmp_path, "params:\n  prompt: a fox\n  aspect_ratio: 9:16\nmatrix:\n  seed: [1]\n", "a.yaml")
    quoted = plan_of(tmp_path, "params:\n  prompt: a fox\n  aspect_ratio: \"9:16\"\nmatrix:\n  seed: [1]\n", "b.yaml")
    in_matrix = plan_of(tmp_path, "params:\n  prompt: a fox\nmatrix:\n  aspect_ratio: [9:16]\n  seed: [1]\n", "c.yaml")
    assert unquoted.jobs[0].params["aspect_ratio"] == "9:16"
    assert unquoted.jobs[0].hash == quoted.jobs[0].hash == in_matrix.jobs[0].hash
    assert unquoted.jobs[0].size == (540, 960)


# --- parameters: defaults, types, sizes, costs -------------------------------------------------

def test_defaults_are_made_explicit_and_named_as_such(tmp_path: Path) -> None:
    job = plan_of(tmp_path, "params:\n  prompt: a fox\n").jobs[0]
    assert dict(job.params) == {
        "prompt": "a fox", "quality": "540p", "duration": 5, "aspect_ratio": "16:9", "n": 1,
        "generate_audio_switch": False,
    }
    assert job.sources["prompt"] == "params.prompt"
    assert job.sources["duration"] == "default (sim capability data)"
    assert job.key == "job" and job.origin == "single" and job.mode == "t2v"


def test_a_null_parameter_is_the_default_and_named_as_such(tmp_path: Path) -> None:
    """null leaves a parameter to the model's default (a sweep can unset a top-level one): the value is the
    default's, and so is its source; a null parameter with no default is not sent, and has no source."""
    p = plan_of(tmp_path, """\
        params:
          prompt: a fox
          duration: 8
          seed: null
        sweeps:
          - name: short
            params:
              duration: null
            matrix:
              aspect_ratio: ["1:1", null]
        """)
    jobs = by_key(p)
    job = jobs["short/aspect_ratio=1:1"]
    assert job.params["duration"] == 5 and "seed" not in job.params
    assert job.sources["duration"] == "default (sim capability data; null in sweeps[0].params.duration)"
    assert "seed" not in job.sources
    assert job.sources["aspect_ratio"] == "sweep short: matrix"
    job = jobs["short/aspect_ratio=null"]
    assert job.params["aspect_ratio"] == "16:9"
    assert job.sources["aspect_ratio"] == "default (sim capability data; null in sweep short: matrix)"


@pytest.mark.parametrize(
    ("d", "expected"),
    [("8", 8), ("10", 10), (8, 8), ("8.0", 8), ("8.5", None)],
)
def test_single_expression_keeps_its_type_then_is_coerced(tmp_path: Path, d: Any, expected: int | None) -> None:
    body = f"vars:\n  d: {json.dumps(d)}\nparams:\n  prompt: a fox\n  duration: \"{{{{ d }}}}\"\n"
    if expected is None:
        with pytest.raises(CapabilityError, match="expected an integer, got '8.5'"):
            plan_of(tmp_path, body)
        return
    job = plan_of(tmp_path, body).jobs[0]
    assert job.params["duration"] == expected and type(job.params["duration"]) is int
    assert job.sources["duration"] == "params.duration (template)"


def test_a_string_seven_for_duration_names_the_allowed_values(tmp_path: Path) -> None:
    err = one_error(tmp_path, 'vars:\n  d: "7"\nparams:\n  prompt: a fox\n  duration: "{{ d }}"\n', "duration")
    assert isinstance(err, CapabilityError)
    assert err.message == "7 is not one of 5, 8, 10 (pixverse-v5.6)"
    assert (err.line, err.field) == (8, "params.duration")


def test_an_expression_keeps_lists_and_numbers(tmp_path: Path) -> None:
    job = plan_of(tmp_path, """\
        vars:
          base: 40
        params:
          prompt: "{{ 'fox' ~ ' ' ~ style }}"
          seed: "{{ base + idx }}"
        matrix:
          style: [anime]
          idx: [2]
        """).jobs[0]
    assert job.params["seed"] == 42 and job.params["prompt"] == "fox anime"


@pytest.mark.parametrize(
    ("params", "size", "warning"),
    [
        ({"quality": "540p", "aspect_ratio": "16:9"}, (960, 540), None),
        ({"quality": "540p", "aspect_ratio": "9:16"}, (540, 960), None),
        ({"quality": "540p", "aspect_ratio": "1:1"}, (540, 540), None),
        ({"quality": "540p", "aspect_ratio": "4:3"}, (720, 540), None),
        ({"quality": "360p"}, (640, 360), None),
        ({"quality": "720p"}, (1280, 720), None),
        ({"quality": "1080p"}, (1920, 1080), None),
        # size in pixels, and resolution, set the scale: a quality beside them is sent too, and warned of
        ({"quality": "540p", "size": "1024x1024"}, (1024, 1024), "params.quality: '540p' is sent beside a size in pixels (WxH)"),
        ({"size": "1024x1024"}, (1024, 1024), None),
        ({"quality": "720p", "resolution": "1K"}, (1365, 768), "params.quality: '720p' is sent beside resolution, which sets the scale"),
        ({"quality": "720p", "size": "9:16", "aspect_ratio": "16:9"}, (720, 1280),
         "params.aspect_ratio: '16:9' is not used: size sets the shape, and wins over aspect_ratio"),
        ({"resolution": "1K"}, (1365, 768), None),
        ({"resolution": "1K", "aspect_ratio": "3:4"}, (887, 1182), None),
        ({"resolution": "1K", "aspect_ratio": "2:1"}, (1365, 768), "'2:1' is not supported by pixverse-v5.6; the nearest, '16:9', is used"),
        ({"size": "1366x768"}, (1365, 768), "'1366x768' is not supported by pixverse-v5.6; the nearest, '1365x768', is used"),
        ({"quality": "540p", "aspect_ratio": "21:9"}, (960, 540), "'21:9' is not supported by pixverse-v5.6; the nearest, '16:9', is used"),
        # size W:H is aspect_ratio (seed page): mapped to the nearest ratio likewise
        ({"quality": "540p", "size": "21:9"}, (960, 540), "'21:9' is not supported by pixverse-v5.6; the provider renders the nearest, '16:9'"),
        ({"resolution": "1K", "size": "2:3"}, (887, 1182), "'2:3' is not supported by pixverse-v5.6; the provider renders the nearest, '3:4'"),
        # any resolution tier is mapped to the nearest the model has
        ({"resolution": "4K"}, (1365, 768), "'4K' is not supported by pixverse-v5.6; the nearest, '1K', is used"),
        ({"resolution": "0.5k", "aspect_ratio": "1:1"}, (1024, 1024), "'0.5k' is not supported by pixverse-v5.6; the nearest, '1K', is used"),
    ],
)
def test_render_size(tmp_path: Path, params: dict[str, str], size: tuple[int, int], warning: str | None) -> None:
    lines = "".join(f"  {k}: {json.dumps(v)}\n" for k, v in params.items())
    p = plan_of(tmp_path, f"params:\n  prompt: a fox\n{lines}")
    assert p.jobs[0].size == size
    if warning:
        assert any(warning in w for w in p.warnings), p.warnings
    else:
        assert p.warnings == ()


@pytest.mark.parametrize(("field", "value", "expected"), [
    ("aspect_ratio", "inf:1", 'expected an aspect ratio like "16:9"'),      # was planned as 9:16, tall
    ("aspect_ratio", "1:inf", 'expected an aspect ratio like "16:9"'),      # was planned as 1:1
    ("aspect_ratio", "1e400:1", 'expected an aspect ratio like "16:9"'),
    ("aspect_ratio", "1e300:1e-300", 'expected an aspect ratio like "16:9"'),  # a quotient past the largest float
    ("size", "1:1e-320", 'expected a size like "1365x768" or a ratio like "16:9"'),
    ("size", "inf:1", 'expected a size like "1365x768" or a ratio like "16:9"'),
])
def test_an_infinite_ratio_is_refused_at_its_line(tmp_path: Path, field: str, value: str, expected: str) -> None:
    """A ratio is mapped to the nearest the model supports; one that is no finite number has none, and is refused
    at its field as `-5:-3` is, not mapped to whichever ratio the model lists first."""
    errors = errors_of(tmp_path, f"params:\n  prompt: a fox\n  {field}: {json.dumps(value)}\n")
    assert [(e.line, e.field) for e in errors] == [(6, f"params.{field}")], [str(e) for e in errors]
    assert f"{expected}, got '{value}'" in errors[0].message, errors[0].message


def test_a_very_wide_or_tall_finite_ratio_is_still_mapped_to_the_nearest(tmp_path: Path) -> None:
    wide = plan_of(tmp_path, 'params:\n  prompt: a fox\n  aspect_ratio: "100:1"\n')
    tall = plan_of(tmp_path, 'params:\n  prompt: a fox\n  aspect_ratio: "1e-300:1"\n')
    assert (wide.jobs[0].size, tall.jobs[0].size) == ((960, 540), (540, 960))


@pytest.mark.parametrize(
    ("params", "usd"),
    [
        ({"quality": "540p", "duration": 5}, 0.35),
        ({"quality": "360p", "duration": 5}, 0.35),
        ({"quality": "720p", "duration": 5}, 0.45),
        ({"quality": "1080p", "duration": 8}, 1.50),
        ({"quality": "720p", "duration": 10}, 0.99),
        ({"quality": "540p", "duration": 5, "generate_audio_switch": True}, 0.80),
        ({"quality": "1080p", "duration": 5, "generate_audio_switch": True}, 1.50),
        # the five sizes of the 1K tier hold about as many pixels: one price, 720p's, whatever their shape
        ({"size": "1024x1024", "duration": 5}, 0.45),
        ({"size": "1365x768", "duration": 5}, 0.45),
        ({"resolution": "1K", "aspect_ratio": "1:1", "duration": 10}, 0.99),
        ({"resolution": "1K", "aspect_ratio": "9:16", "duration": 10}, 0.99),
        ({"size": "1183x887", "duration": 5}, 0.45),
        ({"size": "16:9", "quality": "360p", "duration": 5}, 0.35),
        # a ratio sets only the shape: the render keeps the quality's scale, and its price
        ({"size": "1:1", "quality": "1080p", "duration": 5}, 0.75),
        ({"size": "1:1", "quality": "1080p", "duration": 8}, 1.50),
        ({"size": "1:1", "quality": "720p", "duration": 5}, 0.45),
        ({"size": "4:3", "quality": "720p", "duration": 8, "generate_audio_switch": True}, 1.80),
        ({"size": "9:16", "quality": "1080p", "duration": 5}, 0.75),
        ({"size": "1:1", "duration": 5}, 0.35),
    ],
)
def test_cost_per_job(tmp_path: Path, params: dict[str, Any], usd: float) -> None:
    lines = "".join(f"  {k}: {json.dumps(v)}\n" for k, v in params.items())
    job = plan_of(tmp_path, f"params:\n  prompt: a fox\n{lines}").jobs[0]
    assert job.cost_micros == round(usd * 1_000_000)


# providers.md section 6 (fal, PixVerse V5.6), by hand: 5 s 0.35 (360p/540p), 0.45 (720p), 0.75 (1080p); 8 s 2x,
# 10 s 2.2x, no 1080p at 10 s; audio +0.45 (<=720p) / +0.75 per 5 s, so two units at 8 s and at 10 s.
PRICES_BY_HAND = {
    # (quality, seconds): (without audio, with audio)
    ("540p", 5): (0.35, 0.35 + 0.45),         # 0.80
    ("540p", 8): (0.70, 0.70 + 2 * 0.45),     # 1.60
    ("540p", 10): (0.77, 0.77 + 2 * 0.45),    # 1.67, not (0.35 + 0.45) x 2.2 = 1.76
    ("720p", 5): (0.45, 0.45 + 0.45),         # 0.90
    ("720p", 8): (0.90, 0.90 + 2 * 0.45),     # 1.80
    ("720p", 10): (0.99, 0.99 + 2 * 0.45),    # 1.89, not 1.98
    ("1080p", 5): (0.75, 0.75 + 0.75),        # 1.50
    ("1080p", 8): (1.50, 1.50 + 2 * 0.75),    # 3.00
}


@pytest.mark.parametrize(("quality", "seconds", "audio"),
                         [(q, d, a) for q, d in PRICES_BY_HAND for a in (False, True)])
def test_prices_match_the_table_by_hand_and_audio_is_billed_per_5_seconds(
    tmp_path: Path, quality: str, seconds: int, audio: bool
) -> None:
    body = f"params:\n  prompt: a fox\n  quality: {quality}\n  duration: {seconds}\n  generate_audio_switch: {audio}\n"
    job = plan_of(tmp_path, body.lower()).jobs[0]
    assert job.cost_micros == round(PRICES_BY_HAND[quality, seconds][audio] * 1_000_000)


def test_1080p_at_10_seconds_has_no_price_because_it_is_refused(tmp_path: Path) -> None:
    body = "params:\n  prompt: a fox\n  quality: 1080p\n  duration: 10\n  generate_audio_switch: true\n"
    assert "1080p allows at most 8 s" in one_error(tmp_path, body, "1080p").message


AUDIO_CAPS = """\
provider: sim
models:
  pixverse-v5.6:
    params:
      duration: {enum: [5, 8, 10, 12]}
    prices:
      duration_factor: {12: 2.6}
      audio_duration_factor: %s
"""


@pytest.mark.parametrize(("table", "where", "problem"), [
    ("{5: 1, 8: 2, 10: 2}", "m.yaml:4:1: capabilities", "prices.audio_duration_factor has no figure for duration 12"),
    ("{12: -3}", "caps.yaml:8:31: models.pixverse-v5.6.prices.audio_duration_factor.12", "expected a number >= 0, got -3"),
    ("[1, 2, 2, 3]", "caps.yaml:8:7: models.pixverse-v5.6.prices.audio_duration_factor", "expected a mapping, got a list"),
])
def test_a_bad_audio_duration_factor_is_a_located_error(tmp_path: Path, table: str, where: str, problem: str) -> None:
    """At its line in the capabilities file; a figure missing, which only the merged data shows, at the manifest's
    `capabilities:`."""
    (tmp_path / "caps.yaml").write_text(AUDIO_CAPS % table)
    with pytest.raises(ManifestError) as caught:
        plan_of(tmp_path, "capabilities: [caps.yaml]\nparams:\n  prompt: a fox\n")
    assert str(caught.value).startswith(f"{tmp_path}/{where}: ") and problem in caught.value.message


SUB_MICRO_CAPS = """\
provider: sim
models:
  pixverse-v5.6:
    prices:
      base_5s: {360p: 0.35, 540p: %s, 720p: 0.45, 1080p: 0.75}
      audio_5s: {360p: 0.45, 540p: %s, 720p: 0.45, 1080p: 0.75}
"""


@pytest.mark.parametrize(("base", "audio", "where", "value"), [
    ("0.0123456789", "0.45", "caps.yaml:5:29: models.pixverse-v5.6.prices.base_5s.540p", "0.0123456789"),
    ("0.35", "0.4500001", "caps.yaml:6:30: models.pixverse-v5.6.prices.audio_5s.540p", "0.4500001"),
    ("1e-7", "0.45", "caps.yaml:5:29: models.pixverse-v5.6.prices.base_5s.540p", "1e-07"),
])
def test_a_price_finer_than_a_micro_usd_is_refused_at_its_line(tmp_path: Path, base: str, audio: str, where: str,
                                                                value: str) -> None:
    """Costs are counted in whole micro-USD: a price of $0.0123456789 would be cut to $0.012345 on every job, and
    100,000 jobs planned 6.8 cents short of their cost (a budget "fitting" a run above it)."""
    (tmp_path / "caps.yaml").write_text(SUB_MICRO_CAPS % (base, audio))
    with pytest.raises(ManifestError) as caught:
        plan_of(tmp_path, "capabilities: [caps.yaml]\nparams:\n  prompt: a fox\n")
    assert str(caught.value).startswith(f"{tmp_path}/{where}: {value} ")
    assert "the finest step is $0.000001" in caught.value.message


def test_a_price_to_the_micro_usd_is_counted_as_written(tmp_path: Path) -> None:
    (tmp_path / "caps.yaml").write_text(SUB_MICRO_CAPS % ("0.012346", "0.450000"))
    body = "capabilities: [caps.yaml]\nparams:\n  prompt: a fox\n  generate_audio_switch: true\n"
    assert plan_of(tmp_path, body).jobs[0].cost_micros == 12_346 + 450_000


def test_built_in_price_data_finer_than_a_micro_usd_is_refused() -> None:
    spec = capabilities.load("sim").model("pixverse-v5.6").params
    prices = {"base_5s": {"360p": 0.35, "540p": 0.3500005, "720p": 0.45, "1080p": 0.75},
              "duration_factor": {5: 1, 8: 2, 10: 2.2}}
    with pytest.raises(capabilities.CapabilityDataError, match=r"prices\.base_5s\.540p: 0\.3500005 is finer .* "
                                                               r"the finest step is \$0\.000001"):
        capabilities._check_prices("sim/pixverse-v5.6", prices, spec)


def test_a_price_times_a_factor_finer_than_a_micro_usd_is_rounded_up(tmp_path: Path) -> None:
    """$0.000001 x 1.5 is 1.5 micro-USD: the job counts 2, never 1, so that a plan of many such jobs is never below
    what they cost."""
    (tmp_path / "caps.yaml").write_text((NEW_MODEL % "0.000001").replace("{5: 1.0}", "{5: 1.0, 8: 1.5}"))
    path = write(tmp_path, "capabilities: [caps.yaml]\nparams:\n  prompt: a fox\n  duration: 8\n",
                 head="version: 1\nname: fox\nmodel: new-model\n")
    assert api.plan(path).jobs[0].cost_micros == 2


def test_a_price_table_in_another_currency_than_usd_is_refused_at_its_line(tmp_path: Path) -> None:
    """gridrun budgets and shows prices in US dollars and converts none: a table in euros is refused where it says
    so, not priced as dollars."""
    (tmp_path / "caps.yaml").write_text("provider: lumenfall\nmodels:\n  pixverse-v5.6:\n    prices: {currency: EUR}\n")
    with pytest.raises(ManifestError) as caught:
        plan_of(tmp_path, "capabilities: [caps.yaml]\nparams:\n  prompt: a fox\n")
    assert str(caught.value).startswith(f"{tmp_path}/caps.yaml:4:14: models.pixverse-v5.6.prices.currency: ")
    assert "expected USD" in caught.value.message and "'EUR'" in caught.value.message
    (tmp_path / "caps.yaml").write_text("provider: lumenfall\nmodels:\n  pixverse-v5.6:\n    prices: {currency: USD}\n")
    assert plan_of(tmp_path, "capabilities: [caps.yaml]\nparams:\n  prompt: a fox\n").jobs[0].cost_micros == 350_000


def test_a_price_table_without_audio_duration_factor_scales_audio_by_duration_factor(tmp_path: Path) -> None:
    """A user's capabilities file of a new model, written before the audio factor existed, prices as it did."""
    (tmp_path / "caps.yaml").write_text((NEW_MODEL % "0.35").replace("{5: 1.0}", "{5: 1.0, 8: 1.5}")
                                        .replace("{360p: 0.4}", "{540p: 0.4}"))
    path = write(tmp_path, "capabilities: [caps.yaml]\nparams:\n  prompt: a fox\n  duration: 8\n"
                           "  generate_audio_switch: true\n", head="version: 1\nname: fox\nmodel: new-model\n")
    assert api.plan(path).jobs[0].cost_micros == round((0.35 + 0.4) * 1.5 * 1_000_000)


@pytest.mark.parametrize(("params", "usd"), [
    ({"quality": "540p", "duration": 5, "n": 2}, 0.70),
    ({"quality": "540p", "duration": 8, "n": 3, "generate_audio_switch": True}, 4.80),
])
def test_the_price_table_bills_n_videos(params: dict[str, Any], usd: float) -> None:
    from runner.providers import capabilities

    model = capabilities.load("lumenfall").model("pixverse-v5.6")
    assert model.cost_micros(params) == round(usd * 1_000_000)


def test_n_above_one_is_an_error_pointing_at_repeat(tmp_path: Path) -> None:
    """The provider bills n videos, and a job keeps one: the others would be paid for and lost."""
    err = one_error(tmp_path, "params:\n  prompt: a fox\n  n: 3\n", "n: 3")
    assert "would pay for 3 videos of which gridrun keeps one" in err.message and "repeat: N" in err.message
    assert err.field == "params.n"
    assert plan_of(tmp_path, "params:\n  prompt: a fox\n  n: 1\n").jobs[0].cost_micros == 350_000


def test_total_cost_is_the_exact_sum(tmp_path: Path) -> None:
    p = plan_of(tmp_path, """\
        params:
          prompt: a fox
        matrix:
          quality: [540p, 1080p]
          duration: [5, 8]
          seed: {range: [1, 3]}
        run:
          budget_usd: 12.5
        """)
    assert len(p.jobs) == 12
    assert p.total_micros == 3 * (350_000 + 700_000 + 750_000 + 1_500_000)
    assert p.total_usd == pytest.approx(9.90)
    assert p.budget_micros == 12_500_000


# --- seconds, Lumenfall's name for duration ----------------------------------------------------

@pytest.mark.parametrize("given", ["seconds: 8", "seconds: '8'", "duration: 8\n  seconds: 8", "duration: '8'\n  seconds: 8.0"])
def test_seconds_is_duration_one_request_one_hash_one_price(tmp_path: Path, given: str) -> None:
    """Planned at the default 5 s beside `seconds: 8` (and both sent, which the provider answers with a 400 or
    one of the two) before; now the job of `duration: 8`, cached for it."""
    plain = plan_of(tmp_path, "params:\n  prompt: a fox\n  duration: 8\n", name="plain.yaml").jobs[0]
    job = plan_of(tmp_path, f"params:\n  prompt: a fox\n  {given}\n").jobs[0]
    assert "seconds" not in job.params and job.params["duration"] == 8
    assert (job.hash, job.cost_micros, job.duration) == (plain.hash, 700_000, 8.0)
    request = get_provider("lumenfall").build_request(job.params, model="pixverse-v5.6", idempotency_key="k")
    assert request["duration"] == 8 and "seconds" not in request


def test_seconds_beside_a_different_duration_is_a_located_error(tmp_path: Path) -> None:
    err = one_error(tmp_path, "params:\n  prompt: a fox\n  duration: 5\n  seconds: 8\n", "contradicts")
    assert (err.line, err.column, err.field) == (7, 3, "params.seconds")
    assert "8 contradicts duration 5: seconds is another name for duration; give one of them" in err.message


@pytest.mark.parametrize(("body", "line", "fragment"), [
    ("params:\n  prompt: a fox\n  seconds: 7\n", 6, "7 is not one of 5, 8, 10"),
    ("params:\n  prompt: a fox\n  quality: 1080p\n  seconds: 10\n", 7, "10 is too large: 1080p allows at most 8 s"),
])
def test_seconds_is_checked_like_duration_and_the_error_names_seconds(
    tmp_path: Path, body: str, line: int, fragment: str
) -> None:
    err = one_error(tmp_path, body, fragment)
    assert (err.line, err.field) == (line, "params.seconds")


def test_a_seconds_axis_stays_for_templates_and_is_warned_of(tmp_path: Path) -> None:
    """A matrix key sets a request parameter of its own name only; an axis named seconds always was a template
    value, and its jobs keep their hash."""
    p = plan_of(tmp_path, "params:\n  prompt: a {{ seconds }} s fox\nmatrix:\n  seconds: [5, 8]\n")
    assert [(j.params["duration"], j.cost_micros, "seconds" in j.params) for j in p.jobs] == [(5, 350_000, False)] * 2
    assert p.jobs[1].hash == job_hash("sim", "pixverse-v5.6", {**p.jobs[0].params, "prompt": "a 8 s fox"}, 0)
    assert any(":7:3: matrix.seconds: 'seconds' is another name for the request parameter 'duration', but a matrix "
               "key sets a parameter of its own name only" in w for w in p.warnings), p.warnings
    templated = plan_of(tmp_path, "params:\n  prompt: a fox\n  seconds: '{{ s }}'\nmatrix:\n  s: [5, 8]\n")
    assert [j.params["duration"] for j in templated.jobs] == [5, 8] and not templated.warnings
    assert templated.jobs[1].sources["duration"] == "params.seconds (template), as seconds, an alias of duration"


@pytest.mark.parametrize(("body", "field"), [
    ("params:\n  prompt: a fox\n  seconds: 8\nmatrix:\n  seed: [1]\n  include:\n    - {seed: 4, seconds: 5}\n",
     "matrix.include[0].seconds"),
    ("params:\n  prompt: a fox\n  seconds: 8\nmatrix:\n  seconds: [5]\n", "matrix.seconds"),
    ("params:\n  prompt: a fox\n  seconds: 8\nmatrix:\n  zip:\n    - {seed: [1], seconds: [5]}\n",
     "matrix.zip[0].seconds"),
    (("params:\n  prompt: a fox\n  duration: 8\nsweeps:\n  - name: a\n    params: {seconds: 10}\n    matrix:\n"
      "      seed: [1]\n      include:\n        - {seconds: 8, seed: 3}\n"), "sweeps[0].matrix.include[0].seconds"),
])
def test_a_seconds_key_beside_params_seconds_is_warned_of_as_beside_duration(
    tmp_path: Path, body: str, field: str
) -> None:
    """The key says seconds=5 while the request, and the price, are params' 8 s: the axis is for templates whichever
    name params gives the parameter."""
    p = plan_of(tmp_path, body)
    assert all(j.params["duration"] in (8, 10) for j in p.jobs)
    assert any(f"{field}: 'seconds' is another name for the request parameter 'duration', but a matrix key sets a "
               "parameter of its own name only" in w for w in p.warnings), p.warnings


def test_an_axis_a_template_of_the_parameter_reads_is_not_warned_of(tmp_path: Path) -> None:
    for given in ("duration", "seconds"):
        p = plan_of(tmp_path, f"params:\n  prompt: a fox\n  {given}: '{{{{ seconds }}}}'\nmatrix:\n  seconds: [5, 8]\n")
        assert [j.params["duration"] for j in p.jobs] == [5, 8] and not p.warnings, p.warnings


def test_two_jobs_told_apart_by_a_seconds_axis_alone_say_it_is_a_template_value(tmp_path: Path) -> None:
    err = one_error(tmp_path, "params:\n  prompt: a fox\n  seconds: 8\nmatrix:\n  seconds: [5, 10]\n",
                    "change no request parameter")
    assert ("change no request parameter (the axis named 'seconds' is a template value: 'duration' is the "
            "parameter's matrix name)") in err.message, err.message


@pytest.mark.parametrize(("given", "source"), [
    ("seconds: 8", "params.seconds, as seconds, an alias of duration"),
    ("duration: 8\n  seconds: 8", "params.duration; also params.seconds, as seconds, an alias of duration"),
])
def test_explain_says_a_duration_came_from_seconds(tmp_path: Path, given: str, source: str) -> None:
    job = plan_of(tmp_path, f"params:\n  prompt: a fox\n  {given}\n").jobs[0]
    assert job.sources["duration"] == source and "seconds" not in job.sources


@pytest.mark.parametrize(("body", "field", "message"), [
    ("params:\n  prompt: a fox\n  duration: null\n  seconds: 8\n", "params.seconds", "8 contradicts duration null"),
    ("params:\n  prompt: a fox\n  duration: 8\n  seconds: null\n", "params.seconds", "null contradicts duration 8"),
    ("params:\n  prompt: a fox\n  duration: 8\nsweeps:\n  - name: a\n    params: {duration: null, seconds: 10}\n",
     "sweeps[0].params.seconds", "10 contradicts duration null"),
])
def test_a_null_and_a_value_under_the_two_names_in_one_place_are_refused(
    tmp_path: Path, body: str, field: str, message: str
) -> None:
    """Planned before as the value, silently, while one place further out the same null undoes it."""
    err = one_error(tmp_path, body, "contradicts")
    assert err.field == field and err.message.startswith(message + ": seconds is another name for duration"), err


@pytest.mark.parametrize(("top", "inner", "source"), [
    ("seconds: 8", "duration: null", "sweeps[1].params.duration"),
    ("duration: 8", "seconds: null", "sweeps[1].params.seconds"),
])
def test_a_sweeps_null_under_either_name_undoes_the_top_levels_duration(
    tmp_path: Path, top: str, inner: str, source: str
) -> None:
    """Planned (and paid) at the top level's 8 s before: the sweep's null was taken for "not given"."""
    p = plan_of(tmp_path, f"params:\n  prompt: a fox\n  {top}\nsweeps:\n  - name: long\n  - name: short\n"
                          f"    params:\n      prompt: a fox, short\n      {inner}\n")
    assert [(j.params["duration"], j.cost_micros) for j in p.jobs] == [(8, 700_000), (5, 350_000)]
    assert p.jobs[1].sources["duration"] == f"default (sim capability data; null in {source})"
    assert "seconds" not in p.jobs[1].sources


def test_an_includes_null_duration_undoes_the_top_levels_seconds(tmp_path: Path) -> None:
    p = plan_of(tmp_path, "params:\n  prompt: a fox {{ look }}\n  seconds: 8\nmatrix:\n  look: [a, b]\n"
                          "  include:\n    - {look: b, duration: null}\n")
    assert [(j.key, j.params["duration"], j.cost_micros) for j in p.jobs] == [
        ("look=a", 8, 700_000), ("look=b,duration=null", 5, 350_000)]
    assert p.jobs[1].sources["duration"] == "default (sim capability data; null in include 1)"


def test_a_duration_axis_or_sweep_replaces_the_top_levels_seconds_as_duration_would(tmp_path: Path) -> None:
    """Refused before ("5 contradicts duration 8"): the inner layer's value wins, as under the same name, and the
    job is the one written with duration alone."""
    axis = plan_of(tmp_path, "params:\n  prompt: a fox\n  seconds: 5\nmatrix:\n  duration: [5, 8]\n")
    plain = plan_of(tmp_path, "params:\n  prompt: a fox\nmatrix:\n  duration: [5, 8]\n", name="plain.yaml")
    assert [j.hash for j in axis.jobs] == [j.hash for j in plain.jobs]
    sweep = plan_of(tmp_path, "params:\n  prompt: a fox\n  duration: 5\nsweeps:\n  - name: s\n    params:\n"
                              "      seconds: 8\n", name="sweep.yaml")
    assert sweep.jobs[0].params["duration"] == 8
    assert sweep.jobs[0].sources["duration"] == "sweeps[0].params.seconds, as seconds, an alias of duration"


def test_seconds_and_duration_in_layers_that_agree_keep_their_jobs_hashes(tmp_path: Path) -> None:
    """What planned before the layers were resolved by name plans the same jobs (hashes kept)."""
    body = ("params:\n  prompt: a fox {{ look }}\n  seconds: 8\nsweeps:\n  - name: a\n    matrix:\n"
            "      look: [x, y]\n      include:\n        - {look: y, duration: 8}\n  - name: b\n    params:\n"
            "      duration: 8\n      prompt: a cat\n")
    p = plan_of(tmp_path, body)
    plain = plan_of(tmp_path, body.replace("seconds", "duration").replace(", duration: 8", "")
                    .replace("      duration: 8\n", ""), name="plain.yaml")
    assert [j.hash for j in p.jobs] == [j.hash for j in plain.jobs] and len(p.jobs) == 3


def test_a_capabilities_file_that_declares_seconds_keeps_it_a_parameter_of_its_own(tmp_path: Path) -> None:
    (tmp_path / "caps.yaml").write_text("provider: sim\nmodels:\n  pixverse-v5.6:\n    params:\n"
                                        "      seconds: {type: string}\n")
    job = plan_of(tmp_path, "capabilities: [caps.yaml]\nparams:\n  prompt: a fox\n  seconds: '8'\n").jobs[0]
    assert (job.params["seconds"], job.params["duration"]) == ("8", 5)


def test_aliases_that_are_not_a_list_of_names_are_a_capability_data_error(tmp_path: Path) -> None:
    (tmp_path / "caps.yaml").write_text("provider: sim\nmodels:\n  pixverse-v5.6:\n    params:\n"
                                        "      duration: {type: integer, aliases: seconds}\n")
    with pytest.raises(ManifestError) as caught:
        plan_of(tmp_path, "capabilities: [caps.yaml]\nparams:\n  prompt: a fox\n")
    assert str(caught.value) == (f"{tmp_path / 'caps.yaml'}:5:33: models.pixverse-v5.6.params.duration.aliases: "
                                 "expected a list of names, got a string 'seconds'")


# --- cross-field rules -------------------------------------------------------------------------

def test_1080p_at_10_seconds_points_at_the_duration(tmp_path: Path) -> None:
    err = one_error(tmp_path, "params:\n  prompt: a fox\n  quality: 1080p\n  duration: 10\n", "1080p allows at most 8 s")
    assert (err.line, err.column, err.field) == (7, 3, "params.duration")


@pytest.mark.parametrize(("scale", "warning"), [
    ("size: 1365x768", ("a size in pixels (WxH), which sets both shape and scale: the provider decides which of the "
                        "two it renders and bills, and the job is priced at the dearer tier (leave quality out, or "
                        "give size as a ratio W:H)")),
    ("resolution: 1K", ("resolution, which sets the scale: the provider decides which of the two it renders and "
                        "bills, and the job is priced at the dearer tier (leave quality out, or resolution)")),
])
def test_1080p_beside_a_size_or_resolution_is_sent_so_it_is_priced_and_its_8_seconds_limit_applies(
    tmp_path: Path, scale: str, warning: str
) -> None:
    """A quality is a passthrough, sent as written beside a size in pixels (or a resolution): the provider may
    render and bill it. The job is priced at the dearer tier, 1080p's, and 10 s at 1080p is refused."""
    err = one_error(tmp_path, f"params:\n  prompt: a fox\n  {scale}\n  quality: 1080p\n  duration: 10\n",
                    "1080p allows at most 8 s")
    assert (err.line, err.field) == (8, "params.duration")
    p = plan_of(tmp_path, f"params:\n  prompt: a fox\n  {scale}\n  quality: 1080p\n  duration: 8\n", "b.yaml")
    assert [(j.size, j.cost_micros, j.params["quality"]) for j in p.jobs] == [((1365, 768), 1_500_000, "1080p")]
    (shown,) = [getattr(w, "plain", w) for w in p.warnings]
    assert shown == f"params.quality: '1080p' is sent beside {warning}"


def test_a_size_in_pixels_is_priced_at_the_dearer_of_its_tier_and_the_quality_sent_beside_it(tmp_path: Path) -> None:
    """The default quality (540p) is sent beside a size too: a 1K size (720p's tier) is priced as 720p; a default
    dearer than the size's tier (a capabilities file's) is priced as that default."""
    p = plan_of(tmp_path, "params:\n  prompt: a fox\n  size: 1365x768\n")
    assert [(j.cost_micros, j.params["quality"]) for j in p.jobs] == [(450_000, "540p")] and p.warnings == ()
    (tmp_path / "caps.yaml").write_text(
        "provider: sim\nmodels:\n  pixverse-v5.6:\n    params:\n      quality: {type: string, enum: [360p, 540p, "
        "720p, 1080p], default: 1080p}\n")
    p = plan_of(tmp_path, "capabilities: [caps.yaml]\nparams:\n  prompt: a fox\n  size: 1365x768\n", "b.yaml")
    assert [(j.cost_micros, j.params["quality"]) for j in p.jobs] == [(750_000, "1080p")]
    # a resolution sent beside a size is priced as the dearer of the two sizes' tiers, with audio too
    p = plan_of(tmp_path, "params:\n  prompt: a fox\n  size: 1024x1024\n  resolution: 1K\n"
                          "  generate_audio_switch: true\n", "c.yaml")
    assert [j.cost_micros for j in p.jobs] == [900_000]


def test_1080p_from_the_matrix_points_at_the_include_that_set_it(tmp_path: Path) -> None:
    errors = errors_of(tmp_path, """\
        params:
          prompt: a fox
          duration: 10
        matrix:
          quality: [540p, 720p]
          include:
            - quality: 1080p
              duration: 10
        """)
    assert len(errors) == 1
    assert (errors[0].line, errors[0].field) == (11, "matrix.include[0].duration")
    assert "(in job quality=1080p,duration=10)" in errors[0].message


def test_quality_beside_a_size_in_pixels_is_warned_of_at_the_quality(tmp_path: Path) -> None:
    """The size and the quality are both sent, the provider deciding which it renders: said at each quality."""
    p = plan_of(tmp_path, """\
        params:
          prompt: a fox
        matrix:
          include:
            - {size: 1365x768, quality: 1080p}
            - {size: 1024x1024, quality: 360p}
            - {size: "16:9", quality: 360p}
        """)
    assert [(j.size, j.cost_micros) for j in p.jobs] == [((1365, 768), 750_000), ((1024, 1024), 450_000),
                                                          ((640, 360), 350_000)]
    message = ("is sent beside a size in pixels (WxH), which sets both shape and scale: the provider decides which "
               "of the two it renders and bills, and the job is priced at the dearer tier (leave quality out, or "
               "give size as a ratio W:H)")
    assert p.warnings == (f"{tmp_path / 'm.yaml'}:8:24: matrix.include[0].quality: '1080p' {message}",
                          f"{tmp_path / 'm.yaml'}:9:25: matrix.include[1].quality: '360p' {message}")
    # each value of a quality axis is sent, and may be rendered: no axis of one setting
    p = plan_of(tmp_path, "params:\n  prompt: a fox\n  size: 1365x768\nmatrix:\n  quality: [540p, 1080p]\n", "b.yaml")
    assert [getattr(w, "plain", w) for w in p.warnings] == [
        f"matrix.quality[0]: '540p' {message}", f"matrix.quality[1]: '1080p' {message}"]
    assert [j.cost_micros for j in p.jobs] == [450_000, 750_000]


def test_a_rule_that_warns_of_a_parameter_sent_beside_another_keeps_its_other_rules(tmp_path: Path) -> None:
    (tmp_path / "caps.yaml").write_text(
        "provider: sim\nmodels: {pixverse-v5.6: {rules: [{when_matches: {seed: '[0-9]'}, param: quality, "
        "warn: true, message: may be lost to a one-digit seed}, {when: {quality: 1080p}, param: duration, max: 8, "
        "message: 1080p allows at most 8 s}]}}\n")
    p = plan_of(tmp_path, "capabilities: [caps.yaml]\nparams:\n  prompt: a fox\n  seed: 3\n  quality: 720p\n")
    assert [getattr(w, "plain", w) for w in p.warnings] == ["params.quality: '720p' may be lost to a one-digit seed"]
    err = one_error(tmp_path, "capabilities: [caps.yaml]\nparams:\n  prompt: a fox\n  seed: 3\n  quality: 1080p\n"
                              "  duration: 10\n", "1080p allows at most 8 s")
    assert err.field == "params.duration"


def test_a_rule_of_an_unused_parameter_can_be_declared_for_any_model(tmp_path: Path) -> None:
    (tmp_path / "caps.yaml").write_text(
        "provider: sim\nmodels: {pixverse-v5.6: {rules: [{when_matches: {seed: '[0-9]'}, param: style, "
        "ignored: true, message: one-digit seeds have no style}]}}\n")
    body = "capabilities: [caps.yaml]\nparams:\n  prompt: a fox\n  style: anime\nmatrix:\n  seed: [3, 12]\n"
    p = plan_of(tmp_path, body)
    assert [getattr(w, "plain", w) for w in p.warnings] == ["params.style: 'anime' is not used: one-digit seeds have no style"]
    assert len(p.jobs) == 2


def test_a_rule_whose_pattern_is_no_regular_expression_is_a_capability_data_error(tmp_path: Path) -> None:
    (tmp_path / "caps.yaml").write_text(
        "provider: sim\nmodels: {pixverse-v5.6: {rules: [{when_matches: {seed: '[0-9'}, param: style, "
        "ignored: true, message: x}]}}\n")
    err = one_error(tmp_path, "capabilities: [caps.yaml]\nparams:\n  prompt: a fox\n", "regular expression")
    assert "sim/pixverse-v5.6: a rule's when_matches.seed: '[0-9' is not a regular expression" in err.message


def test_last_frame_image_needs_an_input_image(tmp_path: Path) -> None:
    errors = errors_of(tmp_path, "params:\n  prompt: a fox\n  last_frame_image: https://example.com/x.png\n")
    messages = [e.message for e in errors]
    assert "last_frame_image needs input_reference" in messages
    assert all(e.line == 6 for e in errors)


# --- local images ------------------------------------------------------------------------------

I2V = """\
params:
  prompt: the fox wakes up
  input_reference: img/fox.png
matrix:
  seed: [1, 2]
  include:
    - {seed: 3, last_frame_image: img/moon.png}
"""


def images(tmp_path: Path, fox: bytes = PNG, moon: bytes = PNG + b"moon") -> None:
    (tmp_path / "img").mkdir(exist_ok=True)
    (tmp_path / "img" / "fox.png").write_bytes(fox)
    (tmp_path / "img" / "moon.png").write_bytes(moon)


def test_local_images_are_made_absolute_and_hashed_once_by_content(tmp_path: Path) -> None:
    images(tmp_path)
    calls: list[Path] = []

    def digest(path: Path) -> str:
        calls.append(path)
        return hashlib.sha256(path.read_bytes()).hexdigest()

    m = load(write(tmp_path, I2V))
    caps = capabilities.load("sim")
    assert caps is not None
    p = build(m, caps, digest=digest)
    assert sorted(c.name for c in calls) == ["fox.png", "moon.png"]
    assert p.jobs[0].params["input_reference"] == [str((tmp_path / "img" / "fox.png").resolve())]
    assert p.jobs[2].params["last_frame_image"] == str((tmp_path / "img" / "moon.png").resolve())
    assert [j.mode for j in p.jobs] == ["i2v"] * 3
    hashed = {"input_reference": [{"file": "fox.png", "sha256": hashlib.sha256(PNG).hexdigest()}]}
    expected = job_hash("sim", "pixverse-v5.6", {**p.jobs[0].params, **hashed}, 0)
    assert p.jobs[0].hash == expected


def test_image_content_changes_the_hash_but_its_folder_does_not(tmp_path: Path) -> None:
    a, b, c = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    for d in (a, b, c):
        d.mkdir()
    images(a)
    images(b)
    images(c, fox=PNG + b"other")
    ha = [j.hash for j in plan_of(a, I2V).jobs]
    hb = [j.hash for j in plan_of(b, I2V).jobs]
    hc = [j.hash for j in plan_of(c, I2V).jobs]
    assert ha == hb
    assert set(ha).isdisjoint(hc)


def test_a_missing_image_is_an_error_naming_it(tmp_path: Path) -> None:
    err = one_error(tmp_path, "params:\n  prompt: a fox\n  input_reference: img/nope.png\n", "not found")
    assert "input image 'img/nope.png' not found" in err.message
    assert str(tmp_path / "img" / "nope.png") in err.message
    assert (err.line, err.field) == (6, "params.input_reference")
    (tmp_path / "img").mkdir()
    err = one_error(tmp_path, "params:\n  prompt: a fox\n  input_reference: img\n", "img")
    assert "input image 'img' is a folder, not an image file" in err.message, err.message


def test_an_output_that_names_a_folder_is_refused_and_one_without_an_extension_is_warned_of(tmp_path: Path) -> None:
    err = one_error(tmp_path, 'params:\n  prompt: a {{ look }} fox\nmatrix:\n  look: [red, blue]\noutput: "{{ look }}/"\n',
                    "folder")
    assert (err.field, err.line) == ("output", 8)
    assert err.message.startswith("renders a folder (it ends with '/'), not a file name"), err.message
    p = plan_of(tmp_path, 'params:\n  prompt: a {{ look }} fox\nmatrix:\n  look: [red, blue]\noutput: "{{ look }}/clip"\n',
                "b.yaml")
    assert p.warnings == (f"{tmp_path / 'b.yaml'}:8:1: output: renders file names without an extension (e.g. "
                          "'red/clip'): players and browsers may not open them; end it with .mp4",)
    assert not plan_of(tmp_path, 'params:\n  prompt: a {{ look }} fox\nmatrix:\n  look: [red]\n'
                                 'output: "{{ look }}/clip.mp4"\n', "c.yaml").warnings


@pytest.mark.parametrize(("name", "data", "tail"), [
    ("notes.yaml", b"prompt: x\n", "not an image gridrun can send"),
    ("fake.png", b"hello", "not an image gridrun can send"),
    ("empty.png", b"", "; it is empty"),
    ("car.png", b"BMW is a car, not a bitmap", "not an image gridrun can send"),
    ("t.svg", b"<svg xmlns='http://www.w3.org/2000/svg'/>", "not an image gridrun can send"),
])
def test_an_input_image_that_is_no_image_is_an_error_at_plan_time(tmp_path: Path, name: str, data: bytes, tail: str) -> None:
    """Caught when planned (nothing recorded or paid), not when the request is built in the middle of a run."""
    (tmp_path / name).write_bytes(data)
    err = one_error(tmp_path, f"params:\n  prompt: a fox\n  input_reference: {name}\n", "input image")
    assert f"input image {name!r} is not an image" in err.message and tail in err.message
    assert (err.line, err.field) == (6, "params.input_reference")


def test_a_missing_image_from_the_matrix_points_at_the_matrix(tmp_path: Path) -> None:
    images(tmp_path)
    err = one_error(tmp_path, """\
        params:
          prompt: a fox
        matrix:
          input_reference: [img/fox.png, img/gone.png]
        """, "img/gone.png")
    assert (err.line, err.field) == (7, "matrix.input_reference[1]")
    assert "in job input_reference=img/gone.png" in err.message


def test_remote_images_pass_as_they_are(tmp_path: Path) -> None:
    job = plan_of(tmp_path, "params:\n  prompt: a fox\n  input_reference: https://example.com/fox.png\n").jobs[0]
    assert job.params["input_reference"] == ["https://example.com/fox.png"]
    assert job.hash == job_hash("sim", "pixverse-v5.6", job.params, 0)


def _data_uri(mime: str, data: bytes) -> str:
    import base64
    return f"data:{mime};base64,{base64.b64encode(data).decode()}"


@pytest.mark.parametrize(("uri", "tail"), [
    (_data_uri("text/plain", b"hi"), "says it holds 'text/plain', not an image"),
    ("data:,hello", "not an image"),
    (_data_uri("image/png", b"\x00\x00\x00"), "its bytes are not an image gridrun can send"),
    (_data_uri("image/jpeg", PNG), "says 'image/jpeg' but its bytes are image/png"),
    ("data:image/png;base64,@@not base64@@", "not valid base64"),
    ("data:image/png;base64,", "it is empty"),
    ("data:image/png,rawbytes", "is not base64"),
])
def test_an_input_image_as_a_data_uri_is_checked_as_a_file_is(tmp_path: Path, uri: str, tail: str) -> None:
    """A data URI is sent as it is: what it holds is checked at plan time, as a local file's bytes are."""
    err = one_error(tmp_path, f"params:\n  prompt: a fox\n  input_reference: \"{uri}\"\n", "input image")
    assert tail in err.message, err.message
    assert (err.line, err.field) == (6, "params.input_reference")
    assert isinstance(err, CapabilityError)


def test_an_input_image_data_uri_of_an_image_passes_as_it_is(tmp_path: Path) -> None:
    for uri in (_data_uri("image/png", PNG), _data_uri("image/jpg", b"\xff\xd8\xff\xe0rest\xff\xd9"),
                _data_uri("image/avif", b"\0\0\0\x14ftypavif\0\0\0\0mif1"),
                _data_uri("image/heif", b"\0\0\0\x14ftypheic\0\0\0\0mif1")):
        job = plan_of(tmp_path, f"params:\n  prompt: a fox\n  input_reference: \"{uri}\"\n").jobs[0]
        assert job.params["input_reference"] == [uri]


def _pct(text: str) -> str:
    """`text` with '+', '/' and '=' percent-encoded, as a URL-encoding tool writes a data URI's payload."""
    return text.replace("+", "%2B").replace("/", "%2F").replace("=", "%3D")


_JPEG = b"\xff\xd8\xff\xe0rest/+?>\xff\xd9"  # its base64 holds '+' and '/'


@pytest.mark.parametrize("uri", [
    _data_uri("image/png", PNG).rstrip("="),  # unpadded, as WHATWG's forgiving base64 (browsers) takes it
    _data_uri("image/jpeg", _JPEG + b"xyz").rstrip("="),  # its one '=' dropped
    _data_uri("image/x-png", PNG),  # the legacy PNG type some tools write
    _data_uri("IMAGE/X-PNG", PNG),
    _data_uri("image/pjpeg", _JPEG),
    _data_uri("image/jpg", _JPEG),
    "data:image/jpeg;base64," + _pct(_data_uri("image/jpeg", _JPEG).split(",", 1)[1]),  # RFC 2397 URL-encoding
    "data:image/png;base64," + _pct(_data_uri("image/png", PNG).split(",", 1)[1]).rstrip("%3D"),
])
def test_an_input_image_data_uri_spelt_as_decoders_take_it_passes_as_written(tmp_path: Path, uri: str) -> None:
    """Base64 without its trailing '=', %XX escapes, image/x-png and the like: an image all the same, sent
    (and hashed) as it is written."""
    job = plan_of(tmp_path, f"params:\n  prompt: a fox\n  input_reference: \"{uri}\"\n").jobs[0]
    assert job.params["input_reference"] == [uri]
    assert job.hash == job_hash("sim", "pixverse-v5.6", job.params, 0)


@pytest.mark.parametrize(("uri", "tail"), [
    (_data_uri("image/x-png", _JPEG), "says 'image/x-png' but its bytes are image/jpeg"),
    (_data_uri("image/png", PNG).rstrip("=") + "AAA", "not valid base64"),  # a length no base64 has
    (_data_uri("image/png", PNG) + "=", "not valid base64"),  # padding past a whole quantum
    ("data:image/png;base64," + _pct(_data_uri("image/png", PNG).split(",", 1)[1]) + "%25", "not valid base64"),
    ("data:image/jpeg;base64," + base64.urlsafe_b64encode(_JPEG).decode(), "not valid base64"),  # URL-safe
])
def test_an_input_image_data_uri_decoders_refuse_is_refused_still(tmp_path: Path, uri: str, tail: str) -> None:
    err = one_error(tmp_path, f"params:\n  prompt: a fox\n  input_reference: \"{uri}\"\n", "input image")
    assert tail in err.message, err.message


@pytest.mark.parametrize("uri", ["ftp://x/a.png", "file:///tmp/x.png", "s3://bucket/a.png"])
def test_an_input_image_url_of_another_scheme_says_which_are_taken(tmp_path: Path, uri: str) -> None:
    err = one_error(tmp_path, f"params:\n  prompt: a fox\n  input_reference: {uri}\n", "input image")
    assert "not found" not in err.message, err.message
    assert f"does not take {uri.split(':')[0]}: URLs; images are https URLs, data: URIs or local paths" in err.message
    assert (err.line, err.field) == (6, "params.input_reference")


def test_a_lone_surrogate_is_an_error_not_a_crash(tmp_path: Path) -> None:
    errors = errors_of(tmp_path, 'params:\n  prompt: "a fox \\ud83e"\nmatrix:\n  label: ["\\udd8a", b]\n')
    assert [(e.field, e.line) for e in errors] == [("params.prompt", 5), ("matrix.label", 7)]
    assert all("lone surrogate" in e.message for e in errors)


def test_a_surrogate_pair_escape_is_the_one_character_as_json_reads_it(tmp_path: Path) -> None:
    """`json.dump` writes a character beyond U+FFFF as a pair of escapes, and JSON is YAML: the pair is the one
    character, the job the one the character written itself makes; a half alone is refused still."""
    manifest = {"version": 1, "name": "fox", "model": "pixverse-v5.6",
                "params": {"prompt": "a fox \U0001F98A in the {{ label }}"}, "matrix": {"label": ["\U0001F98A", "b"]}}
    escaped = tmp_path / "escaped.yaml"
    escaped.write_text(json.dumps(manifest, indent=2), encoding="utf-8")
    assert "\\ud83e\\udd8a" in escaped.read_text(encoding="utf-8")
    written = tmp_path / "written.yaml"
    written.write_text(json.dumps(manifest, indent=2, ensure_ascii=False), encoding="utf-8")
    a, b = api.plan(escaped), api.plan(written)
    assert [j.params["prompt"] for j in a.jobs] == ["a fox \U0001F98A in the \U0001F98A", "a fox \U0001F98A in the b"]
    assert [(j.key, j.hash) for j in a.jobs] == [(j.key, j.hash) for j in b.jobs]
    errors = errors_of(tmp_path, 'params:\n  prompt: "a fox \\ud83e x \\udd8a"\n')
    assert [e.field for e in errors] == ["params.prompt"] and "lone surrogate" in errors[0].message


def test_a_row_or_a_list_given_as_a_prompt_is_cut_short_and_told_how_to_make_text(tmp_path: Path) -> None:
    """`prompt: "{{ shot }}"` where `{{ shot.prompt }}` was meant: the row is quoted short (a prompt of 20,000
    characters made an error as long), with the column to write; a list, with the join to write."""
    long = "a fox in the snow " * 1000
    (tmp_path / "shots.csv").write_text(f"id,prompt\n1,{long}\n", encoding="utf-8")
    errors = errors_of(tmp_path, 'vars:\n  tags: [snow, dusk]\nparams:\n  prompt: "{{ shot }}"\n'
                                 '  negative_prompt: "{{ tags }}"\nmatrix:\n  shot: {file: shots.csv}\n'
                                 'output: "{{ shot.id }}.mp4"\n')
    said = {e.field: e.message for e in errors}
    assert "write one of its columns, {{ shot.prompt }} (columns: id, prompt)" in said["params.prompt"]
    assert "…" in said["params.prompt"] and len(said["params.prompt"]) < 500, said["params.prompt"]
    assert "join it, {{ tags | join(', ') }}" in said["params.negative_prompt"]


@pytest.mark.parametrize(("name", "text", "write"), [
    ("sp.csv", "shot id,Prompt Text\n1,a fox\n", "{{ r['Prompt Text'] }} (columns: shot id, Prompt Text)"),
    ("sp.jsonl", '{"shot-id": 1, "prompt-text": "a fox"}\n', "{{ r['prompt-text'] }} (columns: shot-id, prompt-text)"),
    ("cp.csv", "copy,id\na fox,1\n", "{{ r['copy'] }} (columns: copy, id)"),
    ("ok.csv", "id,Main_Prompt\n1,a fox\n", "{{ r.Main_Prompt }} (columns: id, Main_Prompt)"),
])
def test_the_column_a_rows_error_says_to_write_is_one_jinja_reads_and_the_one_named_like_the_parameter(
        tmp_path: Path, name: str, text: str, write: str) -> None:
    """`{{ r.shot id }}` and `{{ r.prompt-text }}` are not the column (a syntax error, a subtraction), nor is
    `{{ r.copy }}` (the mapping's method): those are written in brackets. The column named like the parameter (in
    any case) is the one shown, not the first column of text, a CSV's id."""
    (tmp_path / name).write_text(text, encoding="utf-8")
    errors = errors_of(tmp_path, f'params:\n  prompt: "{{{{ r }}}}"\nmatrix:\n  r: {{file: {name}}}\n')
    said = {e.field: e.message for e in errors}
    assert f"r is a row, not text: write one of its columns, {write}" in said["params.prompt"], said


def test_a_rows_method_tested_where_a_column_has_its_name_is_warned_of_and_plans_as_before(tmp_path: Path) -> None:
    """`{% if r.copy %}` tests the row's method (always true), as Jinja has always read it, not the column 'copy':
    the jobs are as they were (a project that ran them plans the same), and the warning names the column to write."""
    (tmp_path / "cp.csv").write_text("id,copy\n1,yes\n2,\n", encoding="utf-8")
    p = plan_of(tmp_path, 'params:\n  prompt: "a fox {{ r.id }}{% if r.copy %}, with text{% endif %}"\n'
                          'matrix:\n  r: {file: cp.csv}\noutput: "{{ r.id }}.mp4"\n')
    assert [j.params["prompt"] for j in p.jobs] == ["a fox 1, with text", "a fox 2, with text"]
    said = [w for w in p.warnings if "params.prompt" in w and "method copy" in w]
    assert len(said) == 1, p.warnings
    assert "`r.copy` reads the method copy of the row, not its column 'copy'" in said[0], said
    assert "write r['copy']" in said[0], said
    fine = plan_of(tmp_path, 'params:\n  prompt: "a fox {{ r.id }}{% if r[\'copy\'] %}, with text{% endif %}"\n'
                             'matrix:\n  r: {file: cp.csv}\noutput: "{{ r.id }}.mp4"\n', "b.yaml")
    assert [j.params["prompt"] for j in fine.jobs] == ["a fox 1, with text", "a fox 2"]
    assert not [w for w in fine.warnings if "method" in w], fine.warnings
    # rows that differ only in 'copy': the same request twice, refused, the warning said with the error as its why
    (tmp_path / "dup.csv").write_text("prompt,copy\na fox,\na fox,yes\n", encoding="utf-8")
    with pytest.raises((ManifestError, ManifestErrors)) as exc:
        plan_of(tmp_path, 'params:\n  prompt: "{{ r.prompt }}{% if r.copy %}, a second take{% endif %}"\n'
                          'matrix:\n  r: {file: dup.csv}\n', "c.yaml")
    assert "exactly the same request as an earlier job" in str(exc.value)
    assert [w for w in exc.value.warnings if "`r.copy` reads the method copy of the row" in w], exc.value.warnings


def test_a_sep_line_read_as_a_header_gets_no_column_to_write(tmp_path: Path) -> None:
    """A ';' file with Excel's `sep=;` line has one column, `sep=;`, already warned of: `{{ r.sep=; }}` helps no one."""
    (tmp_path / "semi.csv").write_text("sep=;\nid;prompt\n1;a fox\n", encoding="utf-8")
    errors = errors_of(tmp_path, 'params:\n  prompt: "{{ r }}"\nmatrix:\n  r: {file: semi.csv}\n')
    said = {e.field: e.message for e in errors}
    assert "expected a string" in said["params.prompt"] and "write one of its" not in said["params.prompt"], said


# --- unknown parameters, outputs, the cap ------------------------------------------------------

def test_an_unknown_parameter_warns_and_passes_through(tmp_path: Path) -> None:
    p = plan_of(tmp_path, "params:\n  prompt: a fox\n  motion_strength: 0.7\n")
    assert p.jobs[0].params["motion_strength"] == 0.7
    # where it is, as an error would say it: file:line:column: field
    assert p.warnings == (f"{tmp_path / 'm.yaml'}:6:3: params.motion_strength: unknown parameter for pixverse-v5.6; "
                          "passed through unchecked",)
    without = plan_of(tmp_path, "params:\n  prompt: a fox\n", "b.yaml")
    assert p.jobs[0].hash != without.jobs[0].hash


def test_a_matrix_key_that_changes_no_request_is_an_error(tmp_path: Path) -> None:
    """Two keys for one request would share a job in the state: refused before anything is paid."""
    err = one_error(tmp_path, "params:\n  prompt: a fox\nmatrix:\n  label: [a, b, c]\n",
                    "2 jobs send exactly the same request as an earlier job (e.g. 'label=b' and 'label=a')")
    assert (err.field, err.line) == ("matrix", 6)
    err = one_error(tmp_path, "params:\n  prompt: a fox\nmatrix:\n  label: [a, b]\noutput: \"{{ label }}.mp4\"\n",
                    "use them in a template of params, or use repeat")
    ok = plan_of(tmp_path, "params:\n  prompt: a fox\nrepeat: 2\n", "r.yaml")
    assert len({j.hash for j in ok.jobs}) == 2


def test_output_paths(tmp_path: Path) -> None:
    p = plan_of(tmp_path, """\
        params:
          prompt: a fox
        matrix:
          style: [anime, 3d_animation]
          seed: [1]
        output: "{{ style }}/seed {{ seed }}-{{ hash }}.mp4"
        """)
    out = tmp_path / "outputs" / "fox"
    first = p.jobs[0]
    assert p.outputs_dir == out.resolve()
    assert first.output == out.resolve() / "anime" / f"seed_1-{first.hash[:12]}.mp4"
    assert first.output_str == str(first.output)
    assert first.record()["output_path"] == first.output_str


@pytest.mark.parametrize(
    ("output", "fragment"),
    [
        ("/abs/{{ key }}.mp4", "renders an absolute path; output is relative to the output folder (in 2 jobs, e.g. seed=1: '/abs/seed=1.mp4')"),
        ("~/{{ key }}.mp4", "renders an absolute path"),
        ("../{{ key }}.mp4", "renders a path that leaves the output folder (in 2 jobs, e.g. seed=1: '../seed=1.mp4')"),
        ("a/../../{{ key }}.mp4", "leaves the output folder"),
        ("{{ key }}/..", "renders a path that names no file"),
        ("{{ '' }}", "renders an empty path"),
        ("{{ nope }}.mp4", "'nope' is undefined (in '{{ nope }}.mp4') (in 2 jobs, e.g. seed=1)"),
    ],
)
def test_output_template_errors(tmp_path: Path, output: str, fragment: str) -> None:
    err = one_error(tmp_path, f"params:\n  prompt: a fox\nmatrix:\n  seed: [1, 2]\noutput: {json.dumps(output)}\n", fragment)
    assert (err.line, err.field) == (8, "output")


def test_two_jobs_writing_one_file_names_both_keys(tmp_path: Path) -> None:
    err = one_error(tmp_path, """\
        params:
          prompt: a fox
        matrix:
          style: [anime]
          seed: [1, 2]
        output: "{{ style }}.mp4"
        """, "would both write")
    assert "jobs 'style=anime,seed=1' and 'style=anime,seed=2' would both write anime.mp4" in err.message
    assert err.line == 9


@pytest.mark.parametrize(
    ("axis", "output", "fragment"),
    [
        ("[x]", "{{ a }}.json", "job 'a=x' would write x.json, which is also the name of its own sidecar"),
        ("[x]", "{{ a }}.jpg", "which is also the name of its own poster"),
        ("[mp4, mov]", "clip.{{ a }}", "would write clip.json (its sidecar), which job 'a=mp4' writes (its sidecar)"),
        ("[clip.mp4, clip.json/x.mp4]", "{{ a }}", "would write in the folder clip.json, which is the sidecar of job 'a=clip.mp4'"),
        ("[clip.mp4, clip.mp4.part]", "{{ a }}", "which job 'a=clip.mp4' writes (its download)"),
        ("[x, x/y]", "{{ a }}", "would write in the folder x, which is the video of job 'a=x'"),
        ("[x/y, x]", "{{ a }}", "would write x (its video), a folder job 'a=x/y' writes in"),
        ("[P, p]", "{{ a }}.mp4", "jobs 'a=P' and 'a=p' would write 'P.mp4' and 'p.mp4', one file where case"),
        ("[report, y]", "{{ a }}.html", "in the place of gridrun's own files"),
        ("[results, y]", "{{ a }}.csv", "in the place of gridrun's own files"),
        ("[.runs/x, y]", "{{ a }}.mp4", "in the place of gridrun's own files"),
        ("[results-run-1, y]", "{{ a }}.mp4", "would write results-run-1.mp4, in the place of gridrun's own files"),
        ("[report-run-12, y]", "{{ a }}.html", "in the place of gridrun's own files"),
        ("[Results-Run-3, y]", "{{ a }}.jsonl", "in the place of gridrun's own files"),
    ],
)
def test_outputs_that_would_overwrite_a_file_of_another_job_or_of_gridrun_are_refused(
    tmp_path: Path, axis: str, output: str, fragment: str
) -> None:
    """Each job writes its video, a sidecar and a poster beside it, and a `.part` file while downloading:
    none may be another's file or folder (case-folded, as on macOS and Windows), or the report's."""
    err = one_error(tmp_path, f"params:\n  prompt: x {{{{ a }}}}\nmatrix:\n  a: {axis}\noutput: {json.dumps(output)}\n",
                    fragment)
    assert err.field == "output"


def test_outputs_in_folders_named_like_other_outputs_stems_are_fine(tmp_path: Path) -> None:
    p = plan_of(tmp_path, "params:\n  prompt: x {{ a }}\nmatrix:\n  a: [x, x/y]\noutput: \"{{ a }}/clip.mp4\"\n")
    assert sorted(Path(j.output_str).relative_to(p.outputs_dir).as_posix() for j in p.jobs) == ["x/clip.mp4", "x/y/clip.mp4"]


def test_a_slash_of_a_data_value_where_the_template_writes_the_file_name_is_warned_of_naming_its_line(
        tmp_path: Path) -> None:
    """A prompt `1/2 speed` in `{{ prompt }}-1.mp4` makes a folder: warned of at output:, naming the job, its line of
    the data file and the way to keep the '/' in the name; one in a folder position (`{{ a }}/clip.mp4`) is not."""
    (tmp_path / "prompts.txt").write_text("a fox\na drone shot, 1/2 speed\n", encoding="utf-8")
    p = plan_of(tmp_path, 'params:\n  prompt: "{{ prompt }}"\nmatrix:\n  prompt: {file: prompts.txt}\n'
                          'output: "{{ prompt[:40] }}-1.mp4"\n')
    assert sorted(j.output.relative_to(p.outputs_dir).as_posix() for j in p.jobs) == [
        "a_drone_shot,_1/2_speed-1.mp4", "a_fox-1.mp4"]
    said = [str(w) for w in p.warnings if "makes folders of a value" in str(w)]
    assert said == [(f"{tmp_path / 'm.yaml'}:8:1: output: makes folders of a value: job 'prompt=a drone shot, 1/2 "
                     f"speed' (from {tmp_path / 'prompts.txt'}:2) writes 'a_drone_shot,_1/2_speed-1.mp4'; a '/' in a "
                     "value (of prompt) separates folders as the template's own does: to keep it in the file name, "
                     "write {{ prompt | replace('/', '-') }}")], p.warnings
    kept = plan_of(tmp_path, 'params:\n  prompt: "{{ prompt }}"\nmatrix:\n  prompt: {file: prompts.txt}\n'
                             'output: "{{ prompt | replace(\'/\', \'-\') }}.mp4"\n', "kept.yaml")
    assert "a_drone_shot,_1-2_speed.mp4" in [j.output.name for j in kept.jobs]
    assert not [w for w in kept.warnings if "makes folders" in str(w)]
    folders = plan_of(tmp_path, "params:\n  prompt: x {{ a }}\nmatrix:\n  a: [x, x/y]\noutput: \"{{ a }}/clip.mp4\"\n",
                      "folders.yaml")
    assert not [w for w in folders.warnings if "makes folders" in str(w)]


@pytest.mark.parametrize(("line", "message"), [
    ("/imagine an owl", "renders an absolute path"),
    ("../reel/owl", "renders a path that leaves the output folder"),
])
def test_an_output_a_data_value_makes_absolute_or_outside_names_the_data_file_line(
        tmp_path: Path, line: str, message: str) -> None:
    (tmp_path / "prompts.txt").write_text(f"a fox\n{line}\n", encoding="utf-8")
    err = one_error(tmp_path, 'params:\n  prompt: "{{ prompt }}"\nmatrix:\n  prompt: {file: prompts.txt}\n'
                              'output: "{{ prompt }}-1.mp4"\n', message)
    assert err.field == "output"
    assert f"from {tmp_path / 'prompts.txt'}:2)" in str(err) and "{{ prompt | replace('/', '-') }}" in str(err), str(err)


def test_job_count_cap(tmp_path: Path) -> None:
    body = "params:\n  prompt: a fox\nmatrix:\n  seed: {range: [1, 1001]}\n"
    err = one_error(tmp_path, body, "above the cap")
    assert DEFAULT_MAX_JOBS == 1000
    assert err.message.startswith("this manifest plans 1,001 jobs, above the cap of 1,000")
    assert (err.line, err.field) == (6, "matrix")
    assert len(plan_of(tmp_path, body, max_jobs=1001).jobs) == 1001
    raised = plan_of(tmp_path, body + "run:\n  max_jobs: 2000\n", "raised.yaml")
    assert len(raised.jobs) == 1001 and raised.max_jobs == 2000
    lowered = one_error(tmp_path, "params:\n  prompt: a fox\nrepeat: 3\nrun:\n  max_jobs: 2\n", "above the cap of 2")
    assert (lowered.line, lowered.field) == (8, "run.max_jobs")


def test_a_repeat_over_the_cap_is_refused_at_repeat(tmp_path: Path) -> None:
    """With no matrix, it was refused at `1:1: sweeps:`, a field the manifest does not have, saying to check the
    matrix."""
    err = one_error(tmp_path, "params:\n  prompt: a fox\nrepeat: 1001\n", "above the cap")
    assert (err.line, err.column, err.field) == (6, 1, "repeat")
    assert err.message == ("this manifest plans 1,001 jobs, above the cap of 1,000; check repeat, or raise the cap "
                           "with --max-jobs or run.max_jobs")
    err = one_error(tmp_path, "params:\n  prompt: a fox\nrepeat: 3\n", "above the cap", max_jobs=2)
    assert (err.line, err.field) == (6, "repeat") and "(--max-jobs 2); check repeat, or" in err.message
    err = one_error(tmp_path, "params:\n  prompt: a fox\nsweeps:\n  - name: a\nrepeat: 3\n", "above the cap",
                    max_jobs=2)
    assert (err.line, err.field) == (6, "sweeps") and "; check the matrix, or" in err.message


def test_a_matrix_over_the_cap_is_refused_without_being_expanded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """9 million combinations are counted (with their excludes and includes), never made."""
    from runner import matrix

    def never(*args: object) -> None:
        raise AssertionError("expanded")

    monkeypatch.setattr(matrix, "_build", never)
    monkeypatch.setattr(matrix, "_Index", never)  # nor are the excluded combinations listed
    body = ("params:\n  prompt: a {{ a }} {{ b }} {{ c }}\nmatrix:\n  a: {range: [1, 210]}\n  b: {range: [1, 210]}\n"
            "  c: {range: [1, 210]}\n  exclude:\n    - a: 1\n  include:\n    - a: 0\n")
    err = one_error(tmp_path, body, "above the cap")
    assert err.message.startswith(f"this manifest plans at least {210**3 - 210**2:,} jobs, above the cap of 1,000")


def test_no_output_goes_in_the_state_folder_or_over_the_manifest_or_a_foreign_json(tmp_path: Path) -> None:
    """What was paid for is recorded in the state folder: a video there could replace state.db."""
    err = one_error(tmp_path, "params:\n  prompt: a fox\noutputs_dir: .gridrun\noutput: state.db\n", "state folder")
    assert err.field == "output" and "state.db" in err.message
    err = one_error(tmp_path, "params:\n  prompt: a fox\noutputs_dir: .\noutput: m.yaml\n", "the manifest")
    assert err.field == "output"
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "prompts.json").write_text('["a fox"]')
    err = one_error(tmp_path, "params:\n  prompt: a fox\noutputs_dir: out\noutput: prompts.mp4\n", "sidecar")
    assert "prompts.json over a JSON file gridrun did not write" in err.message
    # a `hash` of its own does not make the user's JSON a sidecar: it has not the fields gridrun writes
    (tmp_path / "out" / "prompts.json").write_text('{"hash": "h", "key": "job", "sha256": "s", "mine": true}')
    err = one_error(tmp_path, "params:\n  prompt: a fox\noutputs_dir: out\noutput: prompts.mp4\n", "sidecar")
    assert "prompts.json over a JSON file gridrun did not write" in err.message
    # a sidecar of gridrun's may be written again; a video with none beside it is warned of
    (tmp_path / "out" / "prompts.json").write_text(json.dumps({**dict.fromkeys(SIDECAR_FIELDS, None), "hash": "h",
                                                               "key": "job", "sha256": "s"}))
    (tmp_path / "out" / "mine.mp4").write_bytes(b"mine")
    p = plan_of(tmp_path, "params:\n  prompt: a {{ x }}\nmatrix:\n  x: [fox, cat]\noutputs_dir: out\n"
                          "output: \"{{ 'prompts' if x == 'fox' else 'mine' }}.mp4\"\n")
    assert [w for w in overwrites(p, None) if "mine.mp4, with no sidecar beside it" in w], p.occupied


@pytest.mark.parametrize("state, ok, elsewhere, warned", [
    ("done", True, False, False),   # the take the state records there, its sidecar alone gone: written again
    ("done", False, False, True),   # altered: not the recorded take
    ("done", True, True, True),     # the recorded take is elsewhere: this file is another
    ("failed", False, False, True),
    (None, False, False, True),     # no such job in the state
])
def test_a_file_with_no_sidecar_is_warned_of_unless_it_is_the_done_jobs_recorded_video(
    tmp_path: Path, state: str | None, ok: bool, elsewhere: bool, warned: bool
) -> None:
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "fox.mp4").write_bytes(b"a video")
    p = plan_of(tmp_path, "params:\n  prompt: a fox\noutputs_dir: out\noutput: fox.mp4\n")
    job = p.jobs[0]
    stored = {} if state is None else {
        job.hash: Stored(state, 1, str(tmp_path / "else.mp4") if elsewhere else job.output_str, ok)}
    warnings = overwrites(p, diff(p, stored, {}))
    assert bool(warnings) == warned, warnings
    if warned:
        assert "fox.mp4, with no sidecar beside it" in warnings[0] and ".runs/superseded/" in warnings[0]



@pytest.mark.parametrize("state, ok, altered, elsewhere, warned", [
    ("done", True, False, False, False),   # the take the state records there
    ("done", False, True, False, True),    # edited in place, its sidecar beside it
    ("done", False, False, False, False),  # missing: nothing to write over
    ("done", False, True, True, False),    # the state's take is elsewhere: this file was not hashed
    (None, False, False, False, False),    # no such job in the state: not hashed either
])
def test_a_file_with_a_sidecar_is_warned_of_when_the_state_check_found_it_altered(
    tmp_path: Path, state: str | None, ok: bool, altered: bool, elsewhere: bool, warned: bool
) -> None:
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "fox.mp4").write_bytes(b"a video, edited")
    (tmp_path / "out" / "fox.json").write_text('{"hash": "h"}')
    p = plan_of(tmp_path, "params:\n  prompt: a fox\noutputs_dir: out\noutput: fox.mp4\n")
    job = p.jobs[0]
    stored = {} if state is None else {
        job.hash: Stored(state, 1, str(tmp_path / "else.mp4") if elsewhere else job.output_str, ok, altered)}
    warnings = overwrites(p, diff(p, stored, {}))
    assert len(warnings) == warned, warnings
    if warned:
        assert "fox.mp4, which no longer holds the video its sidecar records (edited or replaced in place): a " \
               "run keeps it under .runs/superseded/" in warnings[0]

def test_a_prompt_of_one_number_is_its_text_and_a_blank_prompt_is_refused(tmp_path: Path) -> None:
    p = plan_of(tmp_path, "params:\n  prompt: \"{{ year }}\"\n  seed: \"{{ year }}\"\nmatrix:\n  year: [1984, 2001]\n")
    assert [(j.params["prompt"], j.params["seed"]) for j in p.jobs] == [("1984", 1984), ("2001", 2001)]
    err = one_error(tmp_path, "params:\n  prompt: \"{{ subject }}\"\nmatrix:\n  subject: [fox, '  ']\n", "empty")
    assert err.field == "params.prompt" and "'prompt' is required by pixverse-v5.6, and is empty here" in err.message


def test_index_in_the_output_name_is_warned_of(tmp_path: Path) -> None:
    p = plan_of(tmp_path, "params:\n  prompt: a {{ x }}\nmatrix:\n  x: [fox, cat]\nvars:\n  n: \"{{ index }}\"\n"
                          "output: \"clip-{{ n }}.mp4\"\n")
    assert any(w.endswith(".yaml:10:1: output: uses index, the job's position in the plan, which moves when the "
                          "matrix changes: a later run would save videos under other jobs' names (use key or hash)")
               for w in p.warnings), p.warnings
    p = plan_of(tmp_path, "params:\n  prompt: a {{ x }} {{ index }}\nmatrix:\n  x: [fox, cat]\n", "b.yaml")
    assert not any("output: uses index" in w for w in p.warnings), p.warnings


def test_a_value_read_from_a_data_file_is_refused_at_its_line_there(tmp_path: Path) -> None:
    """The manifest's own errors come first, then each data file's in line order; a value is pointed at in
    its data file (line and column), a CSV row at the line it starts on, a value in a zip of a sweep too."""
    (tmp_path / "styles.txt").write_text("# styles\nanime\n\n   watercolor\nclay\n", encoding="utf-8")
    (tmp_path / "rows.csv").write_text('seed,note\n1,"two\nlines"\n-5,x\n', encoding="utf-8")
    (tmp_path / "q.txt").write_text("360p\n999p\n", encoding="utf-8")
    errors = errors_of(tmp_path, """\
        params:
          prompt: a fox
          quality: 777p
        sweeps:
          - name: a
            matrix:
              style: {file: styles.txt}
              seed: {file: rows.csv}
          - name: b
            matrix:
              zip:
                - quality: {file: q.txt}
                  duration: [5, 8]
        """)
    where = [(e.file.name, e.line, e.column, e.field) for e in errors]
    assert where == [  # the data files in the order of their first error
        ("m.yaml", 6, 3, "params.quality"),
        ("rows.csv", 2, 1, "sweeps[0].matrix.seed[0]"),
        ("rows.csv", 4, 1, "sweeps[0].matrix.seed[1]"),
        ("styles.txt", 4, 4, "sweeps[0].matrix.style[1]"),
        ("q.txt", 2, 1, "sweeps[1].matrix.zip[0].quality[1]"),
    ], where
    assert "'watercolor' is not one of" in errors[3].message
    assert str(errors[4]).startswith(f"{tmp_path / 'q.txt'}:2:1: sweeps[1].matrix.zip[0].quality[1]: '999p'")


def test_a_jsonl_file_skips_comment_lines_as_a_txt_file_does_keeping_each_rows_line(tmp_path: Path) -> None:
    """Blank lines and lines starting with '#' are skipped in a .jsonl file as in a .txt one (no JSON value starts
    with '#'); a row's line is still its line in the file."""
    (tmp_path / "shots.jsonl").write_text('# shots for the teaser\n{"id": "1", "prompt": "a red fox"}\n\n'
                                          '  # the owl\n{"id": "2", "prompt": "an owl", "quality": "4k"}\n',
                                          encoding="utf-8")
    body = ('params:\n  prompt: "{{ shot.prompt }}"\n  quality: "{{ shot.quality | default(\'540p\') }}"\n'
            "matrix:\n  shot: {file: shots.jsonl}\n")
    [err] = errors_of(tmp_path, body)
    assert "'4k' is not one of" in err.message and f"(from {tmp_path / 'shots.jsonl'}:5)" in err.message, err
    (tmp_path / "shots.jsonl").write_text('# shots for the teaser\n{"id": "1", "prompt": "a red fox"}\n\n'
                                          '{"id": "2", "prompt": "an owl"}\n', encoding="utf-8")
    assert [j.params["prompt"] for j in plan_of(tmp_path, body).jobs] == ["a red fox", "an owl"]


def test_a_value_a_template_makes_of_a_data_file_row_names_the_row(tmp_path: Path) -> None:
    """`quality: "{{ shot.quality }}"`: refused at the template, which made it, naming the row it was made of
    (directly, through a var, in a sweep, a row of each file it reads)."""
    (tmp_path / "shots.csv").write_text("id,prompt,quality\nfox,a red fox,540p\nbird,a bird,720x\nowl,,360p\n",
                                        encoding="utf-8")
    (tmp_path / "looks.jsonl").write_text('{"q": "540p"}\n\n{"q": "4k"}\n', encoding="utf-8")
    errors = errors_of(tmp_path, """\
        params:
          prompt: "{{ shot.prompt }}"
          quality: "{{ shot.quality }}"
          duration: "{{ 7 if shot.id == 'bird' else 5 }}"
        sweeps:
          - name: direct
            matrix:
              shot: {file: shots.csv}
          - name: by-var
            vars:
              q: "{{ look.q }}"
            params:
              quality: "{{ q }}"
              duration: 5
            matrix:
              shot: {file: shots.csv}
              look: {file: looks.jsonl}
              exclude:
                - shot: {id: owl, prompt: '', quality: 360p}
        """)
    shown = [(e.file.name, e.line, e.field, e.message.split(" (in ")[0].replace(f"{tmp_path}/", "")) for e in errors]
    assert shown == [
        ("m.yaml", 5, "params.prompt", "'prompt' is required by pixverse-v5.6, and is empty here (from shots.csv:4)"),
        ("m.yaml", 6, "params.quality",
         "'720x' is not one of 360p, 540p, 720p, 1080p (pixverse-v5.6) (from shots.csv:3)"),
        ("m.yaml", 7, "params.duration", "7 is not one of 5, 8, 10 (pixverse-v5.6) (from shots.csv:3)"),
        ("m.yaml", 16, "sweeps[1].params.quality",
         "'4k' is not one of 360p, 540p, 720p, 1080p (pixverse-v5.6) (from looks.jsonl:3)"),
    ], shown
    assert "(in 2 jobs, e.g. 'by-var/shot=" in errors[3].message  # a key holding a cut row: quoted


def test_a_value_a_template_makes_without_a_data_file_row_names_no_row(tmp_path: Path) -> None:
    (tmp_path / "ids.txt").write_text("fox\nbird\n", encoding="utf-8")
    err = one_error(tmp_path, """\
        vars:
          q: 720x
        params:
          prompt: "a {{ id }}"
          quality: "{{ q }}"
        matrix:
          id: {file: ids.txt}
        """, "720x")
    assert "from " not in err.message and "(in 2 jobs" in err.message, err.message


def test_located_errors_of_zips_includes_in_another_case_and_hash_outside_output(tmp_path: Path) -> None:
    err = one_error(tmp_path, "params:\n  prompt: a fox\nmatrix:\n  style: [anime]\n  zip:\n    - quality: [360p, 999p]\n"
                              "      duration: [5, 8]\n", "999p")
    assert (err.field, err.line, err.column) == ("matrix.zip[0].quality[1]", 9, 23)  # the value itself
    err = one_error(tmp_path, "params:\n  prompt: a fox\nmatrix:\n  style: [anime]\n  include:\n    - {Style: clay}\n",
                    "another case")
    assert err.field == "matrix.include[0].Style" and "the request parameter 'style' in another case" in err.message
    err = one_error(tmp_path, "vars:\n  name: \"x-{{ hash }}\"\nparams:\n  prompt: a fox\noutput: \"{{ name }}.mp4\"\n",
                    "only output can use it")
    assert err.field == "vars.name"
    (tmp_path / "pr.txt").write_text("a red fox!\na red fox?\n")
    err = one_error(tmp_path, "params:\n  prompt: \"{{ prompt }}\"\nmatrix:\n  prompt: {file: pr.txt}\n", "would both write")
    assert 'set output, e.g. "{{ key }}-{{ hash }}.mp4"' in err.message


def test_an_axis_named_like_a_parameter_and_used_in_a_template_gets_a_hint(tmp_path: Path) -> None:
    err = one_error(tmp_path, "params:\n  prompt: \"a fox, {{ style }} look\"\nmatrix:\n  style: [watercolor]\n",
                    "is not one of")
    assert "a matrix key named 'style' sets that request parameter" in err.message and "style_text" in err.message


def test_an_axis_named_n_used_in_a_template_is_said_to_clash_with_the_request_parameter_n(tmp_path: Path) -> None:
    """A matrix key sets the request parameter of its name: an axis `n` meant for a prompt's text sets the number
    of videos each request makes. Said once, for the axis, as a name to change, not as a job paying for N videos
    (nor as a value above the model's maximum) in each job; an axis `n` no template reads is the count it says."""
    body = "params:\n  prompt: \"a fox {{ n }}\"\nmatrix:\n  n: {range: [1, 8]}\n"
    [err] = errors_of(tmp_path, body)
    assert (err.field, err.line, err.column) == ("matrix.n", 7, 3), err
    assert err.message.startswith("a matrix key named 'n' sets the request parameter n, the number of videos one "
                                  "request makes, which gridrun keeps at 1: rename the axis (e.g. n_text, and "
                                  "{{ n_text }} in the templates)"), err.message
    assert "would pay for" not in err.message and "maximum" not in err.message and "in 7 jobs" in err.message, err
    renamed = plan_of(tmp_path, body.replace("n:", "n_text:").replace("{{ n }}", "{{ n_text }}"))
    assert [j.params["prompt"] for j in renamed.jobs][:2] == ["a fox 1", "a fox 2"]
    assert {j.params["n"] for j in renamed.jobs} == {1}
    err = one_error(tmp_path, "params:\n  prompt: a fox\nmatrix:\n  n: [1, 2]\n", "would pay for 2 videos")
    assert "repeat: N" in err.message and "rename" not in err.message


@pytest.mark.parametrize("axis", ["{file: negatives.txt}", "[dogs, clouds, rain]"])
def test_an_axis_named_n_of_a_data_file_or_a_list_is_refused_once_at_the_axis(tmp_path: Path, axis: str) -> None:
    """`n` is a natural name for a column of negative prompts: refused once, at the axis, not at each value (a
    data file's each line, as if its values were wrong)."""
    (tmp_path / "negatives.txt").write_text("".join(f"blurry, watermark {i}\n" for i in range(200)), encoding="utf-8")
    [err] = errors_of(tmp_path, f"params:\n  prompt: a fox\n  negative_prompt: \"{{{{ n }}}}\"\nmatrix:\n  n: {axis}\n")
    assert (err.field, err.line, err.column, str(err.file)) == ("matrix.n", 8, 3, str(tmp_path / "m.yaml")), err
    assert err.message.startswith("a matrix key named 'n' sets the request parameter n"), err.message
    assert f"in {200 if 'file' in axis else 3} jobs" in err.message, err.message


@pytest.mark.parametrize(("axis", "said"), [("seed", "is above the maximum"), ("aspect_ratio", "expected an aspect"),
                                            ("quality", "is not one of")])
def test_an_axis_named_like_a_parameter_and_used_in_a_template_gets_the_hint_whatever_its_value_breaks(
    tmp_path: Path, axis: str, said: str
) -> None:
    """A value out of the parameter's range or not of its kind, as one not of its choices: the hint to rename the
    axis follows what is wrong with the value."""
    values = {"seed": "[5, 99999999999]", "aspect_ratio": "[1]", "quality": "[high]"}[axis]
    err = one_error(tmp_path, f"params:\n  prompt: \"a fox {{{{ {axis} }}}}\"\nmatrix:\n  {axis}: {values}\n", said)
    assert f"; a matrix key named '{axis}' sets that request parameter: to use its values only in templates, " \
           f"rename the axis (e.g. {axis}_text)" in err.message, err.message


def test_a_huge_range_over_the_cap_is_refused_before_its_values_are_made(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A typo such as [1, 5000000] for [1, 5]: refused where it is written, without making five million values."""
    from runner import matrix

    made: list[int] = []
    make_axis = matrix._make_axis

    def counting_axis(keys: Any, columns: Any, source: str) -> Any:
        made.extend(len(values) for values in columns)
        return make_axis(keys, columns, source)

    monkeypatch.setattr(matrix, "_make_axis", counting_axis)
    body = "params:\n  prompt: a fox {{ seed }}\nmatrix:\n  seed: {range: [1, 5000000]}\n"
    err = one_error(tmp_path, body, "range has 5,000,000 values")
    assert "the plan would have at least 5,000,000 jobs, above the cap of 1,000" in err.message
    assert err.field == "matrix.seed.range" and err.line == 7
    assert max(made, default=0) < 1_000_000
    # excludes could remove values: counted with them, and one raised cap lets it through to the plan's count
    # (a range refused early from 1,000 values on, and a cap of 2,000, prove it as 100,000 would without planning
    # 100,000 jobs)
    monkeypatch.setattr(matrix, "EARLY_REFUSAL", 1_000)
    body = "params:\n  prompt: a fox {{ seed }}\nmatrix:\n  seed: {range: [1, 2005]}\n  exclude:\n" + "".join(
        f"    - seed: {i}\n" for i in range(1, 6))
    assert len(plan_of(tmp_path, body, "ex.yaml", max_jobs=2_000).jobs) == 2_000


# --- templates ---------------------------------------------------------------------------------

def test_var_cycle_names_the_cycle_and_its_line(tmp_path: Path) -> None:
    err = one_error(tmp_path, """\
        vars:
          title: "{{ scene }}!"
          subject: "a fox near {{ scene }}"
          scene: "{{ subject }} at dusk"
        params:
          prompt: "{{ title }}"
        """, "cycle")
    assert isinstance(err, TemplateError)
    assert err.message == "vars reference each other in a cycle: scene -> subject -> scene"
    assert (err.line, err.field) == (7, "vars.scene")


def test_vars_reference_vars_in_any_order_and_matrix_values(tmp_path: Path) -> None:
    p = plan_of(tmp_path, """\
        vars:
          scene: "{{ subject }} in {{ place }}"
          subject: "a {{ colour }} fox"
          colour: red
        params:
          prompt: "{{ scene }}, {{ style }}"
        matrix:
          style: [anime]
          place: [snow, sand]
        """)
    assert [j.params["prompt"] for j in p.jobs] == ["a red fox in snow, anime", "a red fox in sand, anime"]


def test_builtin_names_are_available_to_templates(tmp_path: Path) -> None:
    p = plan_of(tmp_path, """\
        params:
          prompt: "{{ key }} | {{ index }} | {{ repeat }} | {{ sweep }}"
        sweeps:
          - name: a
            matrix:
              seed: [1, 2]
        repeat: 2
        """)
    assert [j.params["prompt"] for j in p.jobs] == [
        "a/seed=1 | 0 | 0 | a", "a/seed=1#1 | 1 | 1 | a", "a/seed=2 | 2 | 0 | a", "a/seed=2#1 | 3 | 1 | a"]


def test_an_undefined_name_names_the_template_and_the_job(tmp_path: Path) -> None:
    err = one_error(tmp_path, """\
        params:
          prompt: "a fox, {{ styel }} style"
        matrix:
          style: [anime, clay]
        """, "styel")
    assert isinstance(err, TemplateError)
    assert err.message == ("'styel' is undefined; did you mean 'style'? (in 'a fox, {{ styel }} style') (in 2 jobs, "
                           "e.g. style=anime)")
    assert (err.line, err.field) == (5, "params.prompt")


def test_a_name_defined_only_for_some_jobs_names_one_of_them(tmp_path: Path) -> None:
    err = one_error(tmp_path, GITHUB_EXAMPLE.replace('"{{ key }}"', '"{{ fruit }} and {{ animal }}"'), "animal")
    assert err.message.endswith("(in job fruit=banana)")


def test_several_errors_are_reported_at_once_in_line_order(tmp_path: Path) -> None:
    errors = errors_of(tmp_path, """\
        params:
          prompt: "a fox, {{ styel }} style"
          quality: 1080p
          duration: 10
        matrix:
          style: [anime, clay]
        output: "/videos/{{ style }}.mp4"
        """)
    assert [(e.line, e.field) for e in errors] == [(5, "params.prompt"), (7, "params.duration"), (10, "output")]


# --- the matrix at plan level ------------------------------------------------------------------

def test_an_all_excluded_matrix_is_an_error(tmp_path: Path) -> None:
    # GitHub runs one job with an empty matrix; for paid renders that is never what was meant.
    err = one_error(tmp_path, """\
        params:
          prompt: "{{ style }}"
        matrix:
          style: [anime, clay]
          seed: [1]
          exclude:
            - style: anime
            - style: clay
        """, "every combination of the matrix is excluded")
    assert isinstance(err, MatrixError)
    assert "(2 removed by exclude 1, 2)" in err.message
    assert (err.line, err.field) == (9, "matrix.exclude")


def test_an_all_excluded_matrix_with_an_include_runs_the_include(tmp_path: Path) -> None:
    p = plan_of(tmp_path, """\
        params:
          prompt: "{{ style }}"
        matrix:
          style: [anime]
          exclude:
            - style: anime
          include:
            - style: clay
        """)
    assert keys(p) == ["style=clay"]
    assert [(c.as_dict(), n) for _, c, n in p.excluded] == [({"style": "anime"}, 1)]


def test_excluded_combinations_are_kept_with_their_exclude_number(tmp_path: Path) -> None:
    p = plan_of(tmp_path, """\
        params:
          prompt: "{{ style }}"
        sweeps:
          - name: s
            matrix:
              style: [anime, clay]
              seed: [1, 2]
              exclude:
                - {style: clay, seed: 2}
                - {style: anime, seed: 1}
        """)
    assert keys(p) == ["s/style=anime,seed=2", "s/style=clay,seed=1"]
    assert [(s, c.as_dict(), n) for s, c, n in p.excluded] == [
        ("s", {"style": "anime", "seed": 1}, 2), ("s", {"style": "clay", "seed": 2}, 1)]


def test_matrix_values_that_name_parameters_set_them_with_their_source(tmp_path: Path) -> None:
    p = plan_of(tmp_path, """\
        params:
          prompt: "{{ style }}"
          quality: 540p
        matrix:
          quality: [720p]
          style: [anime]
          include:
            - {style: anime, duration: 8}
        """)
    job = p.jobs[0]
    assert job.params["quality"] == "720p" and job.params["duration"] == 8
    assert job.sources["quality"] == "matrix"
    assert job.sources["duration"] == "include 1"
    assert job.sources["style"] == "matrix"


# --- diff against the state store --------------------------------------------------------------

def stored(state: str, run: int | None = None, ok: bool = False) -> Stored:
    return Stored(state, run, "/x.mp4" if ok else None, ok)


def test_diff_as_retry_sends_the_settled_jobs_retry_sends_and_names_them_otherwise(tmp_path: Path) -> None:
    """`retry` sends failed, rejected, expired (its video gone or not) and cancelled jobs again; `retry --unknown`
    those of unknown outcome instead: each command's diff sends those, and a plain diff names, for each settled
    job, the command that sends it again. A done or running job is neither's."""
    p = plan_of(tmp_path, "params:\n  prompt: a fox\nmatrix:\n  seed: {range: [1, 7]}\n")
    h, k = [j.hash for j in p.jobs], [j.key for j in p.jobs]
    store = {h[0]: stored("failed"), h[1]: stored("rejected"), h[2]: Stored("expired", None, None, False, gone=True),
             h[3]: stored("cancelled"), h[4]: stored("unknown"), h[5]: stored("done", 1, ok=True),
             h[6]: stored("running")}
    from runner.api import _sent_again_by as by

    plain = diff(p, store, {}, sent_again_by=by)
    assert plain.retried_by == {k[0]: "retry", k[1]: "retry", k[2]: "retry", k[3]: "retry", k[4]: "retry --unknown"}
    assert (plain.new, plain.settled, plain.to_send(p.jobs)) == (0, 5, [])
    again = diff(p, store, {}, retry="retry", sent_again_by=by)
    assert [j.key for j in again.to_send(p.jobs)] == k[:4] and (again.new, again.retried, again.settled) == (4, 4, 1)
    assert again.retried_by == {k[4]: "retry --unknown"}
    unknown = diff(p, store, {}, retry="retry --unknown", sent_again_by=by)
    assert [j.key for j in unknown.to_send(p.jobs)] == [k[4]] and (unknown.retried, unknown.settled) == (1, 4)


def test_diff_keeps_the_videos_of_jobs_cached_where_they_are_and_of_settled_ones_left_alone(tmp_path: Path) -> None:
    """`Diff.kept`: the jobs whose video a run does not write, as the room it needs is weighed: cached where they
    are and the settled ones it leaves; not those restored from gridrun's copy, fetched again, followed or sent."""
    p = plan_of(tmp_path, "params:\n  prompt: a fox\nmatrix:\n  seed: {range: [1, 8]}\n")
    h, k = [j.hash for j in p.jobs], [j.key for j in p.jobs]
    store = {h[0]: stored("done", 1, ok=True), h[1]: Stored("done", 1, None, False, restore_from="/copy.mp4"),
             h[2]: stored("done", 1), h[3]: stored("failed"), h[4]: Stored("expired", None, None, False, gone=True),
             h[5]: stored("expired"), h[6]: stored("running")}
    assert diff(p, store, {}).kept == {k[0], k[3], k[4]}


def test_diff_reasons(tmp_path: Path) -> None:
    p = plan_of(tmp_path, "params:\n  prompt: a fox\nmatrix:\n  seed: {range: [1, 10]}\n")
    h = [j.hash for j in p.jobs]
    k = [j.key for j in p.jobs]
    store = {
        h[1]: stored("done", 3, ok=True),
        h[2]: stored("done", 3, ok=False),
        h[3]: stored("running"),
        h[4]: stored("failed"),
        h[5]: stored("planned"),
        h[8]: stored("expired"),
        h[9]: stored("unknown"),
    }
    previous = {k[6]: "0" * 64, "seed=99": "f" * 64, k[1]: h[1]}
    d = diff(p, store, previous)
    assert d.reasons == {
        k[0]: "new",
        k[1]: "cached: done in run 3",
        k[2]: "done, but its file is missing or altered: download again",
        k[3]: "in flight (running): attach, pay nothing new",
        k[4]: "failed: left alone (gridrun retry re-runs it)",
        k[5]: "new",
        k[6]: "changed since the last run",
        k[7]: "new",
        k[8]: "expired: a fresh URL is asked for, at no cost (gridrun retry renders it again, paid, only if the "
              "provider gives none)",
        k[9]: "unknown: looked up by its key in the provider's request log, at no cost, and sent if the log shows "
              "it never arrived (gridrun retry --unknown sends it again)",
    }
    assert (d.new, d.cached, d.refetch, d.in_flight, d.settled) == (4, 1, 2, 1, 2)
    assert d.following == (k[3],)
    assert d.changed == (k[6],)
    assert d.stale == ("seed=99",)
    forced = diff(p, store, previous, force=True)
    assert {key: reason for key, reason in forced.reasons.items() if reason != "forced"} == {
        k[3]: "in flight (running): attach, pay nothing new", k[9]: d.reasons[k[9]]}
    assert (forced.new, forced.in_flight, forced.settled, forced.unknown) == (8, 1, 1, 1)


def test_diff_counts_a_job_of_the_last_run_under_a_new_key_as_renamed_not_gone(tmp_path: Path) -> None:
    p = plan_of(tmp_path, "params:\n  prompt: a fox {{ look }}\nmatrix:\n  look: [a, b]\n")
    previous = {"old-a": p.jobs[0].hash, "old-b": "f" * 64}
    d = diff(p, {p.jobs[0].hash: stored("done", 1, ok=True)}, previous)
    assert d.renamed == (("old-a", "look=a"),) and d.stale == ("old-b",) and d.cached == 1 and d.new == 1


@pytest.mark.parametrize("state", [s.value for s in JobState])
def test_diff_with_force_sends_what_a_forced_run_sends(tmp_path: Path, state: str) -> None:
    """`plan --force` counts as sent the jobs `run --force` submits or resets, and no other."""
    p = plan_of(tmp_path, "params:\n  prompt: a fox\n")
    forced = diff(p, {p.jobs[0].hash: stored(state, 1, ok=True)}, {}, force=True)
    sends = action(JobState(state), RunOptions(force=True)) in ("submit", "reset")
    assert (forced.reasons[p.jobs[0].key] == "forced") == sends and forced.new == int(sends)


def test_diff_through_the_api_reads_nothing_when_nothing_ran(tmp_path: Path) -> None:
    p = plan_of(tmp_path, "params:\n  prompt: a fox\n")
    assert p.state_dir == (tmp_path / ".gridrun").resolve()
    assert api.diff(p) is None


# --- plain templates, rendered without Jinja ---------------------------------------------------

@pytest.mark.parametrize(
    "text",
    ["x {{ a }} y", "{{ a }}{{ b }}", "{a} {{ a }} }{", "{% raw %}{{ a }}{% endraw %} {{ b }}",
     "%s {0} {{ b }} %%", "{# note #}{{ a }}", "ü {{ b }} 🦊\n"],
)
@pytest.mark.parametrize("value", ["fox", 3, 2.5, None, True, [1, "x"], {"k": 1}, "{{ a }}"])
def test_plain_templates_render_as_jinja_does(text: str, value: Any) -> None:
    from runner.template import ENV, compile_value

    compiled = compile_value(text)
    ctx = {"a": value, "b": "b"}
    assert compiled.renderer(ctx) == compiled.render(ctx) == ENV.from_string(text).render(ctx)
    # Python's 'None' in the text: noted the same both ways
    assert compiled.null_names() == ({"a": (2, [None, None])} if value is None and "a" in compiled.names else {})


def test_a_plain_template_names_an_undefined_variable() -> None:
    from runner.template import TemplateProblem, compile_value

    compiled = compile_value("{{ a }} and {{ b }}")
    assert compiled.kind == "concat"
    with pytest.raises(TemplateProblem, match=r"'b' is undefined \(in '\{\{ a \}\} and \{\{ b \}\}'\)"):
        compiled.renderer({"a": 1})


def test_jobs_are_immutable_and_record_what_the_store_takes(tmp_path: Path) -> None:
    p = plan_of(tmp_path, PINNED)
    job = p.jobs[0]
    with pytest.raises(AttributeError):
        job.key = "other"  # type: ignore[misc]
    assert job.record() == {
        "hash": job.hash, "key": "style=anime,seed=7", "sweep": None, "values": {"style": "anime", "seed": 7},
        "params": dict(job.params), "output_path": job.output_str, "cost_estimate_micros": 350_000,
        "width": 960, "height": 540, "duration": 5.0,
    }
    assert job.cost_usd == 0.35 and job.output.name == "style=anime,seed=7.mp4"


@hypothesis.given(hypothesis.strategies.one_of(
    hypothesis.strategies.text(), hypothesis.strategies.integers(), hypothesis.strategies.booleans(),
    hypothesis.strategies.none(), hypothesis.strategies.floats(allow_nan=True, allow_infinity=True),
    hypothesis.strategies.lists(hypothesis.strategies.text(max_size=3), max_size=3),
))
def test_canonical_text_is_json_dumps_text(value: object) -> None:
    import json

    from runner.jobs import canonical
    assert canonical(value) == json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


@pytest.mark.parametrize(("body", "field"), [
    ("vars:\n  index: '007'\nparams:\n  prompt: shot {{ index }}\n", "vars.index"),
    ("params:\n  prompt: shot {{ key }}\nmatrix:\n  key: [a, b]\n", "matrix.key"),
    ("params:\n  prompt: x {{ a }}\nmatrix:\n  a: [1]\n  include:\n    - {a: 2, hash: 3}\n", "matrix.include[0].hash"),
])
def test_a_var_or_matrix_key_named_like_a_name_gridrun_sets_is_an_error(tmp_path: Path, body: str, field: str) -> None:
    """`index`, `key`, `hash`, `repeat` and `sweep` are set for every job: a user's would be overwritten."""
    err = one_error(tmp_path, body, "is set by gridrun for every job")
    assert err.field == field


def test_the_text_true_or_false_is_a_boolean_parameters_value_with_the_hash_of_the_boolean(tmp_path: Path) -> None:
    """A CSV cell is text: refused before with "expected true or false, got 'true'"."""
    (tmp_path / "au.csv").write_text("id,prompt,audio\n1,a fox,true\n2,a cat,FALSE\n3,a owl, True \n")
    p = plan_of(tmp_path, "params:\n  prompt: '{{ shot.prompt }}'\n  generate_audio_switch: '{{ shot.audio }}'\n"
                          "matrix:\n  shot: {file: au.csv}\noutput: '{{ shot.id }}.mp4'\n")
    written = [plan_of(tmp_path, f"params:\n  prompt: {prompt}\n  generate_audio_switch: {audio}\n", name=f"{i}.yaml")
               for i, (prompt, audio) in enumerate([("a fox", "true"), ("a cat", "false"), ("a owl", "true")])]
    assert [j.params["generate_audio_switch"] for j in p.jobs] == [True, False, True]
    assert [j.hash for j in p.jobs] == [w.jobs[0].hash for w in written]
    assert [j.cost_micros for j in p.jobs] == [w.jobs[0].cost_micros for w in written]
    quoted = plan_of(tmp_path, "params:\n  prompt: a fox\n  generate_audio_switch: 'true'\n", name="q.yaml")
    assert quoted.jobs[0].hash == written[0].jobs[0].hash


@pytest.mark.parametrize(("value", "field", "message"), [
    ("generate_audio_switch: 'yes'", "params.generate_audio_switch",
     "expected true or false, got the text 'yes' (text is taken as a boolean only when it is true or false)"),
    ("duration: true", "params.duration", "expected an integer, got true"),
])
def test_a_wrong_value_of_a_boolean_or_integer_parameter_is_told_as_the_manifest_writes_it(
    tmp_path: Path, value: str, field: str, message: str
) -> None:
    err = one_error(tmp_path, f"params:\n  prompt: a fox\n  {value}\n", "expected")
    assert (err.field, err.message) == (field, message)


@pytest.mark.parametrize(("body", "field", "fragment"), [
    ("vars:\n  true: golden hour\nparams:\n  prompt: a fox at {{ true }}\n", "vars.true", "`true` as the value true"),
    ("vars:\n  None: x\nparams:\n  prompt: fox {{ None }}\n", "vars.None", "`None` as the value none"),
    ("params:\n  prompt: a fox, {{ none }} light\nmatrix:\n  none: [warm, cold]\n", "matrix.none",
     "`none` as the value none"),
    ("params:\n  prompt: a fox, {{ none }} light\nmatrix:\n  none: [warm]\n", "matrix.none", "`none` as the value"),
    ("params:\n  prompt: x {{ a }} {{ False }}\nmatrix:\n  a: [1]\n  include:\n    - {a: 2, False: 3}\n",
     "matrix.include[0].False", "`False` as the value false"),
])
def test_a_var_or_matrix_key_that_jinja_reads_as_its_own_is_an_error(
    tmp_path: Path, body: str, field: str, fragment: str
) -> None:
    """Planned before with 'True' or 'None' in the prompt where the var was meant."""
    err = one_error(tmp_path, body, fragment)
    assert err.field == field and err.message.endswith("not this var; rename it"), err.message


def test_self_loop_varargs_and_kwargs_as_vars_or_matrix_keys_read_as_written(tmp_path: Path) -> None:
    """Outside a for or a macro a template reads these as the var: a manifest naming one plans as it always did."""
    p = plan_of(tmp_path, "vars:\n  self: S\n  loop: L\n  varargs: V\n  kwargs: K\nparams:\n"
                          "  prompt: 'a {{ self }} {{ loop }} {{ varargs }} {{ kwargs }}'\n")
    assert p.jobs[0].params["prompt"] == "a S L V K"
    p = plan_of(tmp_path, "params:\n  prompt: '{{ a }} {{ self }}'\nmatrix:\n  zip:\n    - a: [x, y]\n"
                          "      self: [p, q]\n")
    assert [j.params["prompt"] for j in p.jobs] == ["x p", "y q"]
    p = plan_of(tmp_path, "params:\n  prompt: a fox {% if 1 %}{{ loop }}{% endif %}\nmatrix:\n  loop: [fast]\n"
                          "  include:\n    - {loop: slow, kwargs: z}\n")
    assert [j.params["prompt"] for j in p.jobs] == ["a fox fast", "a fox slow"]


def test_names_jinja_knows_that_read_the_var_where_one_is_given_stay_usable(tmp_path: Path) -> None:
    p = plan_of(tmp_path, "vars:\n  caller: b\n  range: c\n  null: d\nparams:\n"
                          "  prompt: fox {{ caller }} {{ range }} {{ null }}{% if 1 %}.{% endif %}\n")
    assert p.jobs[0].params["prompt"] == "fox b c d."


@pytest.mark.parametrize(("caps", "fragment"), [
    ("models: {}\n", "caps.yaml: names no provider (`provider: sim`)"),
    ("provider: lumenfal\n", "caps.yaml: is for provider 'lumenfal', not 'sim'"),
])
def test_a_capability_file_for_no_provider_or_another_is_an_error_on_the_manifests_capabilities(
    tmp_path: Path, caps: str, fragment: str
) -> None:
    (tmp_path / "caps.yaml").write_text(caps)
    err = one_error(tmp_path, "capabilities: [caps.yaml]\nparams:\n  prompt: a fox\n", fragment)
    assert err.field == "capabilities"


@pytest.mark.parametrize(("caps", "where", "message"), [
    ("provider: sim\nmodels: [\n", ":3:1", "invalid YAML: while parsing a flow node"),
    ("[1, 2]\n", ":1:1", "expected a mapping, got a list"),
    ("provider: sim\nmodels: {pixverse-v5.6: {params: {x: {type: blob}}}}\n", ":2:39: models.pixverse-v5.6.params.x.type",
     ("expected one of 'string', 'integer', 'number', 'boolean', 'ratio', 'size', 'tier', 'image', 'image_list', "
      "got a string 'blob'")),
    ("provider: sim\nmodels: {pixverse-v5.6: {params: 3}}\n", ":2:26: models.pixverse-v5.6.params",
     "expected a mapping, got 3"),
    # each an intended effect that was lost without a word: a string read as true, a misspelled field ignored
    ("provider: sim\nhonours_idempotency_keys: no\n", ":2:1: honours_idempotency_keys",
     "expected true or false, got a string 'no'"),
    ("provider: sim\nhas_list_endpoint: 'false'\n", ":2:1: has_list_endpoint", "expected true or false, got a string 'false'"),
    ("provider: sim\nhonors_idempotency_keys: false\n", ":2:1: honors_idempotency_keys",
     "unknown field 'honors_idempotency_keys'; did you mean 'honours_idempotency_keys'?"),
    ("provider: sim\nmodels:\n  pixverse-v5.6:\n    render_second: 30\n", ":4:5: models.pixverse-v5.6.render_second",
     "unknown field 'render_second'; did you mean 'render_seconds'?"),
    ("provider: sim\nmodels: {pixverse-v5.6: {prices: {base_5: {540p: 1}}}}\n", ":2:35: models.pixverse-v5.6.prices.base_5",
     "unknown field 'base_5'; did you mean 'base_5s'?"),
    ("provider: sim\nmodels: {pixverse-v5.6: {params: {seed: {maximun: 3}}}}\n",
     ":2:42: models.pixverse-v5.6.params.seed.maximun", "unknown field 'maximun'; did you mean 'maximum'?"),
    ("provider: sim\nmodels: {pixverse-v5.6: {rules: [{param: seed, maxx: 5, message: m}]}}\n",
     ":2:48: models.pixverse-v5.6.rules[0].maxx", "unknown field 'maxx'; did you mean 'max'?"),
    ("provider: sim\nmodels: {pixverse-v5.6: {params: {seed: {required: 'yes'}}}}\n",
     ":2:42: models.pixverse-v5.6.params.seed.required", "expected true or false, got a string 'yes'"),
])
def test_a_broken_capability_file_is_an_error_at_its_line(tmp_path: Path, caps: str, where: str, message: str) -> None:
    """Named by the file, line and field at fault, as a manifest's own errors are, not by the manifest's
    `capabilities:` (which cannot tell two files apart)."""
    (tmp_path / "caps.yaml").write_text(caps)
    with pytest.raises(ManifestError) as caught:
        plan_of(tmp_path, "capabilities: [caps.yaml]\nparams:\n  prompt: a fox\n")
    assert str(caught.value).startswith(f"{tmp_path / 'caps.yaml'}{where}: {message}"), str(caught.value)


def test_the_built_in_capability_data_has_the_shape_a_users_file_is_checked_against() -> None:
    for path in sorted(capabilities.DATA_DIR.glob("*.yaml")):
        assert capabilities._read_user(path) == capabilities._read(path)


def test_capability_files_are_read_with_yaml_1_2_rules(tmp_path: Path) -> None:
    """Unquoted 16:9 is the string "16:9" (YAML 1.1 made it the number 969)."""
    (tmp_path / "caps.yaml").write_text(
        "provider: sim\nmodels: {pixverse-v5.6: {params: {aspect_ratio: {type: string, enum: [16:9, 9:16]}}}}\n")
    p = plan_of(tmp_path, "capabilities: [caps.yaml]\nparams:\n  prompt: a fox\n  aspect_ratio: '9:16'\n")
    assert p.jobs[0].params["aspect_ratio"] == "9:16"


def test_output_names_keep_letters_of_any_script(tmp_path: Path) -> None:
    p = plan_of(tmp_path, "params:\n  prompt: '{{ p }}'\nmatrix:\n  p: [雪の中の狐, 海辺の猫, 'ein Fuchs im Schnee!']\n")
    names = sorted(Path(j.output_str).name for j in p.jobs)
    assert names == ["p=ein_Fuchs_im_Schnee_.mp4", "p=海辺の猫.mp4", "p=雪の中の狐.mp4"]


def test_a_misspelled_parameter_is_refused_with_the_name_it_is_close_to(tmp_path: Path) -> None:
    """Sent as written, the provider would ignore it and render (and bill) its default: refused, where the
    parameter it is close to is not set. Beside that one, or far from any, it is passed through with a warning."""
    err = one_error(tmp_path, "params:\n  prompt: a fox\n  qualty: 1080p\n", "qualty")
    assert str(err) == (f"{tmp_path / 'm.yaml'}:6:3: params.qualty: unknown parameter for pixverse-v5.6; did you "
                        "mean 'quality'? (a parameter gridrun does not know yet can be declared in a capabilities "
                        "file, `capabilities:`)")
    p = plan_of(tmp_path, "params:\n  prompt: a fox\n  quality: 720p\n  qualty: 720p\n", "b.yaml")
    assert p.warnings == (f"{tmp_path / 'b.yaml'}:7:3: params.qualty: unknown parameter for pixverse-v5.6 (did "
                          "you mean 'quality'?); passed through unchecked",)
    p = plan_of(tmp_path, "params:\n  prompt: a fox\n  camera_motion: pan\n", "c.yaml")
    assert p.warnings == (f"{tmp_path / 'c.yaml'}:6:3: params.camera_motion: unknown parameter for pixverse-v5.6; "
                          "passed through unchecked",)


def test_another_providers_name_for_a_parameter_is_refused_pointing_to_gridrun_s(tmp_path: Path) -> None:
    """fal's `image_url`, Replicate's `image`: sent as written, Lumenfall passes them through, the render is a
    text-to-video clip without the image, and it is billed. Refused at the line, naming the parameter to use."""
    err = one_error(tmp_path, "params:\n  prompt: a fox\n  image_url: https://example.com/fox.png\n", "image_url")
    assert (err.line, err.field) == (6, "params.image_url")
    assert "did you mean 'input_reference'?" in err.message, err.message
    for name, own in [("image", "input_reference"), ("first_frame", "input_reference"),
                      ("end_image", "last_frame_image"), ("audio", "generate_audio_switch")]:
        err = one_error(tmp_path, f"params:\n  prompt: a fox\n  {name}: x\n", name, name=f"{name}.yaml")
        assert f"did you mean '{own}'?" in err.message, (name, err.message)
    # declared in a capabilities file, the name is a parameter of its own and passes
    (tmp_path / "caps.yaml").write_text("provider: sim\nmodels:\n  pixverse-v5.6:\n    params:\n"
                                        "      image: {type: string}\n")
    p = plan_of(tmp_path, "capabilities: [caps.yaml]\nparams:\n  prompt: a fox\n  image: x\n", "d.yaml")
    assert p.jobs[0].params["image"] == "x" and p.warnings == ()


def test_another_providers_name_for_a_parameter_as_a_matrix_include_or_zip_key_is_refused_at_its_line(
        tmp_path: Path) -> None:
    """A key sets a request parameter of its own name only: `image_url` on an axis, in an include row or a zip
    would make text-to-video jobs, billed, without the image. Refused at the key, as under `params:`; a key a
    template reads is the template's, and passes."""
    err = one_error(tmp_path, "params:\n  prompt: a fox\nmatrix:\n  image_url: [https://example.com/fox.png]\n"
                              "  style: [anime, clay]\n", "image_url")
    assert (err.line, err.field) == (7, "matrix.image_url") and isinstance(err, MatrixError), err
    assert "did you mean 'input_reference'?" in err.message, err.message
    err = one_error(tmp_path, "params:\n  prompt: a fox\nmatrix:\n  style: [anime, clay]\n  include:\n"
                              "    - {style: anime, image_url: https://example.com/fox.png, generate_audio: true}\n",
                    "generate_audio", name="i.yaml")
    assert (err.line, err.field) == (9, "matrix.include[0].generate_audio"), err
    assert "did you mean 'generate_audio_switch'?" in err.message, err.message
    assert {e.field for e in errors_of(tmp_path, "params:\n  prompt: a fox\nmatrix:\n  style: [anime, clay]\n"
                                                 "  include:\n    - {style: anime, image_url: https://example.com/"
                                                 "fox.png, generate_audio: true}\n")} >= {
        "matrix.include[0].image_url", "matrix.include[0].generate_audio"}
    err = one_error(tmp_path, "params:\n  prompt: a fox\nmatrix:\n  zip:\n    - {style: [anime], image: [a.png]}\n",
                    "image", name="z.yaml")
    assert "did you mean 'input_reference'?" in err.message and err.field.startswith("matrix.zip"), err
    p = plan_of(tmp_path, "params:\n  prompt: a fox\n  input_reference: \"{{ image_url }}\"\nmatrix:\n"
                          "  image_url: [https://example.com/fox.png]\n", "t.yaml")
    assert p.jobs[0].params["input_reference"] == ["https://example.com/fox.png"], p.jobs[0].params
    # a file name spelling every value sends none of them: still refused
    for i, output in enumerate(["'{{ key }}.mp4'", "'{{ image_url | truncate(8) }}-{{ style }}.mp4'"]):
        err = one_error(tmp_path, "params:\n  prompt: a fox\nmatrix:\n  image_url: [https://example.com/fox.png]\n"
                                  f"  style: [anime, clay]\noutput: {output}\n", "image_url", name=f"o{i}.yaml")
        assert err.field == "matrix.image_url" and "did you mean 'input_reference'?" in err.message, err


def test_a_height_given_as_resolution_points_to_quality(tmp_path: Path) -> None:
    """fal and Replicate call the render height `resolution` ("720p"); here that is `quality`."""
    err = one_error(tmp_path, "params:\n  prompt: a fox\n  resolution: 720p\n", "resolution")
    assert (err.line, err.field) == (6, "params.resolution")
    assert err.message.endswith("got '720p'; for a height like 720p use 'quality: 720p'"), err.message


@pytest.mark.parametrize("name, value", [("n", 5), ("n", 8), ("n", 10), ("quality", 5)])
def test_a_refused_number_another_parameter_lists_gets_no_pointer_to_it(tmp_path: Path, name: str, value: Any) -> None:
    """`n: 5` (five videos) is not a duration: a bare number could be meant for many parameters, so a refused one
    is not pointed to the parameter that happens to list it (a string like 720p still is, to quality)."""
    err = one_error(tmp_path, f"params:\n  prompt: a fox\n  {name}: {value}\n", name)
    assert " use '" not in err.message and "duration" not in err.message, err.message


def test_a_local_file_or_data_uri_under_an_unknown_parameter_is_refused(tmp_path: Path) -> None:
    """A parameter gridrun does not know is sent as written: the provider would get a path on this machine (or a
    data URI where no image is taken) and render, and bill, without it. Other unknown values pass with a warning,
    as Lumenfall passes unknown fields to the model."""
    (tmp_path / "assets").mkdir()
    (tmp_path / "assets" / "fox.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    err = one_error(tmp_path, "params:\n  prompt: a fox\n  mask: assets/fox.png\n", "mask")
    assert (err.line, err.field) == (6, "params.mask")
    assert "'assets/fox.png' is a local file" in err.message and "input_reference" in err.message, err.message
    err = one_error(tmp_path, "params:\n  prompt: a fox\n  mask: 'data:image/png;base64,iVBORw0KGgo='\n", "mask",
                    name="b.yaml")
    assert "data: URI" in err.message and "input_reference" in err.message, err.message
    err = one_error(tmp_path, "params:\n  prompt: a fox\n  masks: [https://example.com/a.png, assets/fox.png]\n",
                    "masks", name="c.yaml")
    assert "'assets/fox.png' is a local file" in err.message, err.message
    p = plan_of(tmp_path, "params:\n  prompt: a fox\n  mask: assets/missing.png\n", "d.yaml")
    assert p.jobs[0].params["mask"] == "assets/missing.png"
    assert len(p.warnings) == 1 and "passed through unchecked" in p.warnings[0]


def test_a_file_url_home_path_or_file_in_a_mapping_under_an_unknown_parameter_is_refused(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The neighbours of a local path under a parameter gridrun does not know are files on this machine too, which
    the provider cannot read: a file: URL, a ~/ path, a path inside a mapping or a nested list. A path to an image
    or video that is not there (mistyped) is warned of as such, not only as an unknown parameter."""
    (tmp_path / "assets").mkdir()
    fox = tmp_path / "assets" / "fox.png"
    fox.write_bytes(b"\x89PNG\r\n\x1a\n")
    monkeypatch.setenv("HOME", str(tmp_path / "assets"))
    for i, value in enumerate([f"file://{fox}", "file:///nowhere/fox.png", f"file:{fox}", "~/fox.png", "{url: assets/fox.png}",
                               "[[assets/fox.png]]", "{frames: [{image: ./assets/fox.png}]}"]):
        err = one_error(tmp_path, f"params:\n  prompt: a fox\n  mask: {value}\n", "mask", name=f"m{i}.yaml")
        assert err.field == "params.mask" and "input_reference" in err.message, (value, err.message)
        assert "a local file" in err.message or "file: URL" in err.message, (value, err.message)
    p = plan_of(tmp_path, "params:\n  prompt: a fox\n  mask: assets/mask.png\n", "typo.yaml")
    assert p.jobs[0].params["mask"] == "assets/mask.png"
    assert len(p.warnings) == 1 and "looks like a path to a file on this machine" in p.warnings[0], p.warnings
    p = plan_of(tmp_path, "params:\n  prompt: a fox\n  mask: soft edges\n", "words.yaml")
    assert len(p.warnings) == 1 and "looks like a path" not in p.warnings[0], p.warnings


def test_a_yaml_merge_key_merges_and_keys_written_out_win(tmp_path: Path) -> None:
    """`<<: *common`, as configuration files use it, instead of a literal "<<" parameter."""
    p = plan_of(tmp_path, """\
        vars:
          common: &common {quality: 720p, duration: 8}
          more: &more {duration: 10, aspect_ratio: '9:16'}
        params:
          <<: [*common, *more]
          prompt: a fox
          duration: 5
        """)
    params = p.jobs[0].params
    assert "<<" not in params and p.warnings == ()
    assert (params["quality"], params["duration"], params["aspect_ratio"]) == ("720p", 5, "9:16")


def test_a_merge_key_of_anything_but_mappings_is_an_error(tmp_path: Path) -> None:
    err = one_error(tmp_path, "params:\n  <<: [1]\n  prompt: a fox\n", "a merge key (<<) takes a mapping")
    assert err.field == "params.<<"


def test_a_merge_key_written_twice_is_a_repeated_key(tmp_path: Path) -> None:
    """The second `<<` was silently outweighed by the first (seed 1 sent, though seed 9 was written last)."""
    body = "vars:\n  a: &a {quality: 720p, seed: 1}\nparams:\n  <<: *a\n  <<: {seed: 9}\n  prompt: hi\n"
    err = one_error(tmp_path, body, "key '<<' is repeated in this mapping")
    assert err.field == "params.<<" and "<<: [*first, *second]" in str(err)
    assert (err.line, err.column) == (HEAD.count("\n") + 5, 3)


def test_a_template_in_a_matrix_value_is_warned_of_where_it_is_written(tmp_path: Path) -> None:
    """Matrix and include values are sent as written: an include that "overrides the prompt" with a template
    paid for a video of the template's text, with no word."""
    p = plan_of(tmp_path, """\
        params: {prompt: "fox {{ style }}", quality: 360p}
        matrix:
          style: [anime, clay]
          include:
            - {style: clay, prompt: "{{ style }} special"}
            - {style: comic, negative_prompt: "no {{ style }}"}
          exclude:
            - {style: "{{ nothing }}"}
        """)
    path = tmp_path / "m.yaml"
    assert p.jobs[1].params["prompt"] == "{{ style }} special"  # sent as written: that is what is warned of
    told = [w for w in p.warnings if "matrix values are not templates" in w]
    assert [w.split(": holds")[0] for w in told] == [f"{path}:8:21: matrix.include[0].prompt",
                                                       f"{path}:9:22: matrix.include[1].negative_prompt"]
    assert "put the template in params" in told[0]


def test_braces_that_open_no_template_are_not_warned_of(tmp_path: Path) -> None:
    p = plan_of(tmp_path, """\
        params: {prompt: "{{ p }}", quality: 360p}
        matrix: {p: ["a {cat}", "a {{ dog }}", "b }} { {x}", "{% if x %}bird"]}
        """)
    (told,) = [w for w in p.warnings if "not templates" in w]
    assert told.startswith(f"{tmp_path / 'm.yaml'}:5:25: matrix.p[1]: holds a template ('a {{{{ dog }}}}')")
    assert told.endswith("so do 1 more of this axis's values")


def test_a_template_in_a_data_file_value_is_sent_as_written_without_a_warning(tmp_path: Path) -> None:
    """A data file's text is taken as written, braces included (a sign reading {{hello}}): the warning fired on
    every plan and run, could not be silenced, and its advice (put the template in params) did not apply."""
    (tmp_path / "p.txt").write_text("a sign reading {{hello}}\n{% raw %}\n", encoding="utf-8")
    (tmp_path / "shots.csv").write_text("prompt,id\nx {{ y }},1\n", encoding="utf-8")
    (tmp_path / "z.jsonl").write_text('{"a": "{{ b }}"}\n', encoding="utf-8")
    p = plan_of(tmp_path, """\
        params: {prompt: "{{ p }} {{ shot.prompt }} {{ z.a }}", quality: 360p}
        matrix:
          p: {file: p.txt}
          shot: {file: shots.csv}
          zip:
            - {z: {file: z.jsonl}, w: ["{{ w }}"]}
        """)
    assert p.jobs[0].params["prompt"] == "a sign reading {{hello}} x {{ y }} {{ b }}"
    told = [w.split(": holds")[0] for w in p.warnings if "not templates" in w]
    assert told == [f"{tmp_path / 'm.yaml'}:9:32: matrix.zip[0].w[0]"]  # written in the manifest: warned of
    p = plan_of(tmp_path, """\
        params: {prompt: "{{ q }} {{ r }}", quality: 360p}
        sweeps:
          - name: s
            matrix: {q: {file: p.txt}, r: ["{{ r }}"]}
        """)
    told = [w.split(": holds")[0] for w in p.warnings if "not templates" in w]
    assert told == [f"{tmp_path / 'm.yaml'}:7:36: sweeps[0].matrix.r[0]"]


def test_a_template_error_in_a_literal_block_is_at_the_file_line_of_the_failing_template_line(tmp_path: Path) -> None:
    """It was at the parameter's key, whatever line of a long block the template failed on."""
    body = "vars:\n  x: 1\nparams:\n  quality: 360p\n  prompt: |\n    line one\n    line {{ x }}\n    line {{ nope }}\n"
    err = one_error(tmp_path, body, "'nope' is undefined")
    assert (err.line, err.column, err.field) == (11, 13, "params.prompt")  # at the failing name
    body = "params:\n  quality: 360p\n  prompt: |  # a comment\n    one\n\n      two {{ 3 ) }}\n"
    err = one_error(tmp_path, body, "unexpected ')'")
    assert (err.line, err.column, err.field) == (9, 5, "params.prompt")
    body = "params:\n  quality: 360p\n  prompt: |\n    one\n    {% if x %}\n    two\n"
    err = one_error(tmp_path, body, "Unexpected end of template")
    assert err.line == 8
    body = "vars:\n  v: |\n    a\n    {{ b.c.d() }}\nparams:\n  quality: 360p\n  prompt: '{{ v }}'\n"
    err = one_error(tmp_path, body, "undefined")
    assert (err.line, err.field) == (7, "vars.v")
    # a quoted value's lines are not the file's: the error stays at its key
    body = "params:\n  quality: 360p\n  prompt: \"one\n    two {{ nope }}\"\n"
    assert one_error(tmp_path, body, "'nope' is undefined").line == 6


@pytest.mark.parametrize("style", [">", ">-", ">+", "|-"])
def test_a_template_error_in_a_folded_block_is_at_the_file_line_and_column_of_the_failing_name(
        tmp_path: Path, style: str) -> None:
    """A folded block (`>`, the way to write a long prompt sent as one line) is written on the file's lines as much as a
    literal one: an error in it was at the parameter's key, whatever line the failing name was on."""
    body = (f"vars:\n  style: anime\nparams:\n  quality: 360p\n  prompt: {style}\n    A red fox runs through snow,\n"
            "    {{ style }} style, soft rim light,\n    {% if style == 'anime' %}cel shading,{% endif %}\n\n"
            "    shallow depth of field, {{ lens_mm }}mm lens,\n      film grain\n")
    err = one_error(tmp_path, body, "'lens_mm' is undefined")
    assert (err.line, err.column, err.field) == (13, 32, "params.prompt"), str(err)
    err = one_error(tmp_path, body.replace("{{ style }} style", "{{ styel }} style"), "'styel' is undefined")
    assert (err.line, err.column) == (10, 8), str(err)
    err = one_error(tmp_path, body.replace("film grain", "film {{ grain }}").replace("{{ lens_mm }}", "50"), "'grain' is undefined")
    assert (err.line, err.column) == (14, 15), str(err)


def test_a_template_error_in_a_literal_block_with_a_tag_or_anchor_on_the_key_line_is_at_its_line(tmp_path: Path) -> None:
    """A block's start is at its tag or anchor: with the `|` on the next line the error was one line too early."""
    for props in ("!!str", "&anc", "&anc !!str  # a comment", "!!str\n\n   "):
        body = f"params:\n  quality: 360p\n  prompt: {props}\n    |\n    one\n      {{{{ nope }}}}\n"
        err = one_error(tmp_path, body, "'nope' is undefined")
        assert (err.line, err.column) == (9 + props.count("\n"), 10), props
        crlf = one_error(tmp_path, body.replace("\n", "\r\n"), "'nope' is undefined")
        assert (crlf.line, crlf.column) == (err.line, err.column), props
    body = "params:\n  quality: 360p\n  prompt: !!str |\n    one\n    {{ nope }}\n"
    assert one_error(tmp_path, body, "'nope' is undefined").line == 8
    # one expression whose text starts on a later line than its `{{`: at that line
    body = "params:\n  quality: 360p\n  prompt: |\n    {{\n\n      1 + }}\n"
    assert one_error(tmp_path, body, "syntax error").line == 9


def test_a_template_error_in_a_long_template_quotes_the_part_around_it(tmp_path: Path) -> None:
    """A 100 KB prompt with one undefined name gave a 100 KB error line."""
    err = one_error(tmp_path, 'params:\n  quality: 360p\n  prompt: "' + "word " * 20_000 + '{{ nope }} end"\n',
                    "'nope' is undefined")
    assert len(str(err)) < 400 and "word word {{ nope }} end')" in str(err)
    lines = "".join(f"    line {i} of the prompt, with more words to make it long\n" for i in range(40))
    err = one_error(tmp_path, f"params:\n  quality: 360p\n  prompt: |\n{lines}    and {{{{ nope }}}} here\n{lines}",
                    "'nope' is undefined")
    assert err.line == 7 + 40 and err.message == "'nope' is undefined (in line 41 of the template: 'and {{ nope }} here')"


def test_a_duplicate_matrix_value_written_as_an_alias_is_refused_at_the_alias(tmp_path: Path) -> None:
    body = 'params: {prompt: "x {{ s }}", quality: 360p}\nmatrix:\n  s:\n    - &x a\n    - b\n    - *x\n'
    err = one_error(tmp_path, body, "same key")
    assert (err.line, err.column, err.field) == (9, 7, "matrix.s[2]") and "repeats matrix.s[0], at line 7" in str(err)


def test_output_names_keep_combining_marks_and_compare_as_case_insensitive_file_systems_do(tmp_path: Path) -> None:
    """Vowel signs and accents stay (हिन्दी, not ह_न_द_); ß and ss are two names, as on macOS and Windows,
    while é composed and é decomposed are one."""
    p = plan_of(tmp_path, "params:\n  prompt: '{{ s }}'\nmatrix:\n  s: [हिन्दी, किताब, कुताब, Straße, Strasse]\n")
    assert sorted(Path(j.output_str).name for j in p.jobs) == sorted(
        ["s=हिन्दी.mp4", "s=किताब.mp4", "s=कुताब.mp4", "s=Straße.mp4", "s=Strasse.mp4"])
    one_error(tmp_path, "params:\n  prompt: '{{ s }}'\nmatrix:\n  s: [\"caf\\u00e9\", \"cafe\\u0301\"]\n",
              "but for Unicode form")


def test_an_output_folder_named_like_the_report_is_refused(tmp_path: Path) -> None:
    one_error(tmp_path, "params:\n  prompt: x {{ s }}\nmatrix:\n  s: [a, b]\noutput: 'report.html/{{ s }}.mp4'\n",
              "in the place of gridrun's own files")


def test_a_capability_file_for_the_provider_a_provider_extends_applies(tmp_path: Path) -> None:
    """sim extends lumenfall: a file of lumenfall's data applies to a sim manifest, as it did before files had
    to name their provider."""
    (tmp_path / "caps.yaml").write_text(
        "provider: lumenfall\nmodels: {pixverse-v5.6: {params: {motion: {type: string, enum: [low, high]}}}}\n")
    p = plan_of(tmp_path, "capabilities: [caps.yaml]\nparams:\n  prompt: a fox\n  motion: high\n")
    assert p.jobs[0].params["motion"] == "high" and p.warnings == ()


def test_the_capabilities_a_built_in_data_file_shows_are_written_as_a_manifest_takes_them(tmp_path: Path) -> None:
    """A data file's comments show how a manifest names a file of the same shape: that line, as shown, plans."""
    shown = [snippet for data in sorted(capabilities.DATA_DIR.glob("*.yaml"))
             for snippet in re.findall(r"`(capabilities: [^`]+)`", data.read_text(encoding="utf-8"))]
    assert shown
    for snippet in shown:
        names = yaml.safe_load(snippet)["capabilities"]
        for name in [names] if isinstance(names, str) else names:
            (tmp_path / name).write_text("provider: sim\n")
        assert plan_of(tmp_path, f"{snippet}\nparams:\n  prompt: a fox\n").jobs


def test_capability_data_that_fails_only_when_jobs_are_priced_is_a_located_error(tmp_path: Path) -> None:
    (tmp_path / "caps.yaml").write_text("provider: sim\nmodels:\n  new-model:\n    params:\n      prompt: {type: string}\n")
    m = write(tmp_path, "capabilities: [caps.yaml]\nparams:\n  prompt: a fox\n", head="version: 1\nname: fox\nmodel: new-model\n")
    with pytest.raises(ManifestError, match="sim/new-model: prices.base_5s: expected a mapping of figures") as exc:
        api.plan(m)
    assert exc.value.field == "capabilities"


@pytest.mark.parametrize(("prices", "where", "problem"), [
    ("{base_5s: {360p: -1, 540p: 0.35, 720p: 0.45, 1080p: 0.75}}",
     "caps.yaml:4:24: models.pixverse-v5.6.prices.base_5s.360p", "expected a number >= 0, got -1"),
    ("{base_5s: {540p: abc}}", "caps.yaml:4:24: models.pixverse-v5.6.prices.base_5s.540p",
     "expected a number >= 0, got a string 'abc'"),
    ("{}\n    params: {duration: {type: integer, enum: [5, 7]}}", "m.yaml:4:1: capabilities",
     "prices.duration_factor has no figure for duration 7"),
])
def test_a_price_table_that_would_price_jobs_wrong_is_an_error(tmp_path: Path, prices: str, where: str,
                                                               problem: str) -> None:
    """A negative price let a run spend against a budget of $0; a word for a price was a traceback."""
    (tmp_path / "caps.yaml").write_text(f"provider: sim\nmodels:\n  pixverse-v5.6:\n    prices: {prices}\n")
    m = write(tmp_path, "capabilities: [caps.yaml]\nparams:\n  prompt: a fox\n")
    with pytest.raises(ManifestError) as exc:
        api.plan(m)
    assert str(exc.value).startswith(f"{tmp_path}/{where}: ") and problem in exc.value.message, str(exc.value)


def test_two_sweeps_that_share_a_request_are_told_so_at_the_second_sweep(tmp_path: Path) -> None:
    """Each sweep varies one parameter around a shared baseline: the baseline request is in both."""
    err = one_error(tmp_path, """\
        params:
          prompt: a fox
          quality: 540p
          duration: 5
        sweeps:
          - name: q
            matrix:
              quality: [540p, 720p]
          - name: d
            matrix:
              duration: [5, 8]
        """, "exactly the same request as a job of another sweep (e.g. 'd/duration=5' and 'q/quality=540p')")
    assert err.field == "sweeps[1].matrix" and "leave it out of one of the sweeps" in err.message


def test_two_sweeps_whose_names_differ_only_in_case_are_told_at_the_second_sweeps_name(tmp_path: Path) -> None:
    """The error was put at `output` 1:1, a field the manifest does not write, asking to change "the values"."""
    err = one_error(tmp_path, "params:\n  prompt: a fox\nsweeps:\n  - name: a\n  - name: A\n", "another case")
    assert (err.line, err.field) == (8, "sweeps[1].name")
    assert err.message == ("sweep 'A' is sweep 'a' in another case, and their jobs' files (named by their keys, which "
                           "begin with the sweep's name) would be one where case is not told apart (macOS, Windows); "
                           "rename the sweep (in job A/job)")
    written = one_error(tmp_path, "params:\n  prompt: a fox\nsweeps:\n  - name: a\n  - name: A\n"
                                  "output: '{{ sweep }}.mp4'\n", "one file where case")
    assert written.field == "output"  # an output the manifest writes is what to change


def test_a_clash_within_a_sweep_whose_name_has_a_case_twin_is_not_blamed_on_the_names(tmp_path: Path) -> None:
    """Renaming either sweep would leave it: 'a/look=x y' and 'a/look=x_y' write one file whatever the names."""
    err = one_error(tmp_path, "params:\n  prompt: a fox {{ look }}\nsweeps:\n  - {name: A, matrix: {look: [z]}}\n"
                              "  - {name: a, matrix: {look: ['x y', x_y]}}\n", "would both write")
    assert err.field == "output" and "another case" not in err.message, err.message
    assert "jobs 'a/look=x y' and 'a/look=x_y' would both write a/look=x_y.mp4" in err.message, err.message


def test_an_output_named_like_its_own_sidecar_but_for_case_is_refused(tmp_path: Path) -> None:
    """x.JSON and its sidecar x.json are one file where case is not told apart (macOS, Windows)."""
    one_error(tmp_path, "params:\n  prompt: x\noutput: clip.JSON\n", "which is also the name of its own sidecar")


def test_output_names_longer_than_file_systems_take_are_errors(tmp_path: Path) -> None:
    """Caught when planned: otherwise the job is paid for and its video can never be saved."""
    err = one_error(tmp_path, "params:\n  prompt: hi {{ s }}\nmatrix:\n  s: [a]\noutput: \"{{ s * 300 }}.mp4\"\n", "bytes")
    assert "would write its video as aaaa" in err.message and "a name of 304 bytes" in err.message
    assert err.field == "output"
    # 250 bytes is the most: the download's .part file adds 5
    edge = one_error(tmp_path, "params:\n  prompt: hi {{ s }}\nmatrix:\n  s: [a]\noutput: \"{{ s * 250 }}.mp4\"\n", "bytes")
    assert "its download as" in edge.message and "259 bytes" in edge.message
    assert len(plan_of(tmp_path, "params:\n  prompt: hi {{ s }}\nmatrix:\n  s: [a]\noutput: \"{{ s * 246 }}.mp4\"\n").jobs) == 1


@pytest.mark.parametrize("field", ["outputs_dir", "state_dir"])
@pytest.mark.parametrize(("value", "said"), [
    ("~/gr-out", "starts with ~, which is not the home folder here"),
    ("~", "starts with ~"),
    ("~root/gr-out", "starts with ~root, which is not root's home folder here"),
    ("~root", "starts with ~root, which is not root's home folder here"),
    ("$HOME/gr-out", "holds $HOME, a variable"),
    ("${PROJECT}/out", "holds ${PROJECT}, a variable"),
    ("C:\\\\Users\\\\me\\\\out", "is a Windows path"),
    ("\\\\\\\\server\\\\share", "is a Windows path"),
    ("renders/{{ name }}", "holds {{, but"),
    ("out/{% if x %}a{% endif %}", "holds {%, but"),
])
def test_a_folder_written_as_a_shell_would_read_it_is_refused_at_its_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, field: str, value: str, said: str
) -> None:
    """Taken as written, each would be a folder literally named so beside the manifest (./~/gr-out, ./~root), which
    the plan then prints as if it were the home folder's."""
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("PROJECT", raising=False)
    err = one_error(tmp_path, f'params:\n  prompt: a fox\n{field}: "{value}"\n', said)
    assert err.field == field and err.line == 6
    written = value.replace("\\\\", "\\")
    assert err.message.startswith(f"'{written}' ")  # quoted as written, a backslash once
    assert not any(p.name.startswith(("~", "$")) or "\\" in p.name for p in tmp_path.iterdir())
    if value.startswith(("~/", "$HOME")):
        assert f"({tmp_path / 'home' / 'gr-out'})" in err.message  # the path to write
    if value.startswith("~root"):  # another user's home folder, as a shell reads ~root
        assert f"({os.path.expanduser(value)})" in err.message
    if not value.startswith(("C:", "\\")):  # a folder named so, made first, is taken as written
        assert f"mkdir -p {shlex.quote(str(tmp_path / written))}" in err.message
        (tmp_path / written).mkdir(parents=True)
        assert plan_of(tmp_path, f'params:\n  prompt: a fox\n{field}: "{value}"\n').jobs
    # a $ or ~ inside a name, not a variable or a home folder, is a name like any other
    assert plan_of(tmp_path, f'params:\n  prompt: a fox\n{field}: "out/a~b/$5"\n').jobs


@pytest.mark.parametrize("field", ["outputs_dir", "state_dir"])
@pytest.mark.parametrize(("value", "char"), [("C:\\vids", "\\x0b (a vertical tab)"), ("out\\ex", "\\x1b (an ESC)"),
                                             ("a\\tb", "\\t (a tab)")])
def test_a_folder_yaml_read_a_backslash_of_as_an_escape_is_refused_at_its_line(
    tmp_path: Path, field: str, value: str, char: str
) -> None:
    """In double quotes YAML reads `\\v` as a vertical tab, `\\e` as an ESC: a Windows path or a backslash in a
    name would otherwise be made as a folder whose name holds a control character."""
    err = one_error(tmp_path, f'params:\n  prompt: a fox\n{field}: "{value}"\n', "a control character")
    assert err.field == field and err.line == 6
    assert f"holds {char}, a control character" in err.message
    assert f'YAML read a backslash of "{value}" as an escape' in err.message and "single quotes" in err.message
    assert "\x0b" not in str(err) and "\x1b" not in str(err) and "\t" not in str(err)  # shown escaped
    assert [p.name for p in tmp_path.iterdir()] == ["m.yaml"]
    # in single quotes a backslash is itself: C:\vids is the Windows path it is
    if value.startswith("C:"):
        one_error(tmp_path, f"params:\n  prompt: a fox\n{field}: '{value}'\n", "is a Windows path")


@pytest.mark.parametrize("field", ["outputs_dir", "state_dir"])
def test_a_control_character_in_a_folder_is_refused_even_where_yaml_did_not_make_it(tmp_path: Path, field: str) -> None:
    """A block scalar keeps its line break: a folder named `out` and a line break is no folder anyone means."""
    err = one_error(tmp_path, f"params:\n  prompt: a fox\n{field}: |\n  out\n", "a control character")
    assert err.field == field and "'out\\n' holds \\n (a line break)" in err.message
    assert "YAML read" not in err.message and "write the value without it" in err.message
    (tmp_path / "out\x1b").mkdir()  # refused even where a folder so named is there
    one_error(tmp_path, f'params:\n  prompt: a fox\n{field}: "out\\e"\n', "\\x1b (an ESC)")


@pytest.mark.parametrize("where", ["output: ", "sweeps:\n  - name: s\n    output: "])
def test_a_file_name_template_yaml_read_a_backslash_of_as_an_escape_is_refused_at_its_line(
    tmp_path: Path, where: str
) -> None:
    """`"out\\ex/{{ key }}.mp4"` is out, an ESC and x: refused where it is written, before any job is planned."""
    err = one_error(tmp_path, f'params:\n  prompt: a fox\n{where}"out\\ex/{{{{ key }}}}.mp4"\n', "a control character")
    assert err.field == ("output" if where == "output: " else "sweeps[0].output")
    assert "'out\\x1bx/{{ key }}.mp4' holds \\x1b (an ESC)" in err.message
    assert 'YAML read a backslash of "out\\ex/{{ key }}.mp4" as an escape' in err.message
    # a template spread over lines, its line breaks between tags, is taken as before
    spread = plan_of(tmp_path, "params:\n  prompt: a fox\noutput: |\n  {% if true %}\n  a-{{ key }}.mp4{% endif %}\n")
    assert [j.output.name for j in spread.jobs] == ["a-job.mp4"]


@pytest.mark.parametrize("field", ["outputs_dir", "state_dir"])
@pytest.mark.parametrize("value", ["Q4 $Budget renders", "~drafts", "out\\\\videos", "$NOT_SET_HERE/x", "a\\\\$b"])
def test_a_folder_name_a_shell_would_not_read_otherwise_is_taken_as_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, field: str, value: str
) -> None:
    """A `$` not followed by a variable set here, a `~` not alone nor before /, a backslash outside a Windows
    path: each is a character of a name."""
    monkeypatch.delenv("Budget", raising=False)
    monkeypatch.delenv("NOT_SET_HERE", raising=False)
    monkeypatch.delenv("b", raising=False)
    assert plan_of(tmp_path, f'params:\n  prompt: a fox\n{field}: "{value}"\n').jobs


def test_a_project_run_in_a_folder_named_like_a_variable_is_still_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A folder named `$PROJECT/out` that is there is taken as written; and the commands that make no folder
    (status, runs) read a project whose runs are recorded whatever its folders' text."""
    monkeypatch.setenv("PROJECT", "elsewhere")
    path = write(tmp_path, 'params:\n  prompt: a fox\noutputs_dir: "$PROJECT/out"\nsim: {render_time: 0.01}\n')
    (tmp_path / "$PROJECT" / "out").mkdir(parents=True)
    assert api.run(path).status == "done"
    (tmp_path / "$PROJECT" / "out").rename(tmp_path / "gone")
    (tmp_path / "$PROJECT").rmdir()
    with pytest.raises(ManifestError, match="holds \\$PROJECT, a variable"):
        api.plan(path)
    assert api.status(path).counts["done"] == 1
    assert api.runs(path)


def _folder_of_length(root: Path, length: int) -> Path:
    """A folder under `root` whose absolute path is `length` bytes, made of names of at most 200."""
    rest = length - len(str(root))
    parts: list[str] = []
    while rest > 201:
        parts.append("d" * 200)
        rest -= 201
    parts.append("d" * (rest - 1))
    folder = root.joinpath(*parts)
    assert len(str(folder)) == length
    return folder


def test_a_state_file_path_longer_than_sqlite_opens_is_refused_when_planned(tmp_path: Path) -> None:
    """SQLite opens no database whose path, with "-journal" added, is 512 bytes or more: such a state file
    passed `plan` and failed in `run` ("unable to open database file"). Now refused at the line that names it,
    or at the manifest when its state folder is the default one beside it; 504 bytes opens and runs."""
    root = tmp_path.resolve()
    deep = _folder_of_length(root, 505 - len("/state.db"))
    err = one_error(tmp_path, f'params:\n  prompt: a fox\nstate_dir: "{deep}"\n', "more than SQLite opens")
    assert err.field == "state_dir" and err.line == 6
    assert "would be a path of 505 bytes" in err.message and "choose a shorter state_dir" in err.message
    assert not deep.exists()
    fits = _folder_of_length(root / "b", 504 - len("/state.db"))
    fine = write(tmp_path, f'params:\n  prompt: a fox\nstate_dir: "{fits}"\nsim: {{render_time: 0.01}}\n', "fits.yaml")
    assert api.run(fine, report=False).exit_code == 0 and (fits / "state.db").is_file()
    beside = _folder_of_length(root / "c", 505 - len("/.gridrun/state.db"))
    beside.mkdir(parents=True)
    with pytest.raises(ManifestError, match="move the project to a shorter path") as caught:
        api.plan(write(beside, "params:\n  prompt: a fox\n"))
    assert caught.value.field in ("", None) and "the state folder (.gridrun)" in caught.value.message


def test_folders_that_cannot_be_made_are_errors_naming_their_field(tmp_path: Path) -> None:
    (tmp_path / "afile").write_text("")
    out = one_error(tmp_path, "params:\n  prompt: a fox\noutputs_dir: afile/sub\n", "not a folder")
    assert out.field == "outputs_dir" and f"{tmp_path / 'afile'} is a file" in out.message
    assert out.message.startswith("the output folder: ")  # the field is named once, by the location
    state = one_error(tmp_path, "params:\n  prompt: a fox\nstate_dir: afile\n", "not a folder")
    assert state.field == "state_dir"
    long_name = write(tmp_path, "params:\n  prompt: a fox\n", "long.yaml", head=HEAD.replace("name: ", "name: " + "n" * 256 + "x", 1))
    with pytest.raises(ManifestError, match=r"the output folder .* 260 bytes: more than file systems take") as caught:
        api.plan(long_name)
    assert caught.value.field == "name"


def test_a_job_writing_into_the_state_folder_or_over_the_manifest_in_another_case_is_refused(tmp_path: Path) -> None:
    """On a case-insensitive disk (macOS, Windows) `.GRIDRUN/state.db` is the state's own file and `M.YAML` the
    manifest: the video would replace what was paid for, or the manifest."""
    state = one_error(tmp_path, 'params:\n  prompt: "{{ s }}"\nmatrix:\n  s: [".GRIDRUN"]\noutputs_dir: "."\n'
                                'output: "{{ s }}/state.db"\n', "state folder")
    assert "would write" in state.message and "which holds what was paid for" in state.message
    assert state.field == "output"
    mine = one_error(tmp_path, 'params:\n  prompt: a fox\noutputs_dir: "."\noutput: "M.YAML"\n', "the manifest")
    assert f"would write {tmp_path / 'M.YAML'}, in the manifest" in mine.message and mine.field == "output"
    shelf = one_error(tmp_path, 'params:\n  prompt: a fox\noutputs_dir: ".Gridrun"\noutput: "state.db"\n', "state folder")
    assert shelf.field == "output"


def test_names_that_differ_only_in_the_dots_or_spaces_that_end_them_are_two_files(tmp_path: Path) -> None:
    """Linux and macOS, where gridrun runs, keep `v1.` and `v1` apart: prompts with and without a final period
    are a natural axis."""
    p = plan_of(tmp_path, 'params:\n  prompt: "{{ s }}"\nmatrix:\n  s: ["A red fox.", "A red fox"]\n'
                          'output: "{{ s }}/take.mp4"\n')
    assert sorted(j.output.parent.name for j in p.jobs) == ["A_red_fox", "A_red_fox."]
    assert len(plan_of(tmp_path, 'params:\n  prompt: "a fox, {{ s }}"\nmatrix:\n  s: ["v1", "v1.."]\n'
                                 'output: "{{ s }}"\n', "b.yaml").jobs) == 2
    # the state folder's guard likewise: `.gridrun.` is not the state folder
    assert plan_of(tmp_path, 'params:\n  prompt: a fox\noutputs_dir: "."\noutput: ".gridrun./state.db"\n',
                   "c.yaml").jobs


def test_values_that_differ_only_in_case_or_unicode_form_are_told_so(tmp_path: Path) -> None:
    form = one_error(tmp_path, 'params:\n  prompt: "{{ s }}"\nmatrix:\n  s: ["caf\\u00e9", "cafe\\u0301"]\n', "Unicode form")
    assert ("this value repeats matrix.s[0] (line 7) but for Unicode form (a letter composed or not) "
            "('caf\\u00e9', then 'cafe\\u0301'): it would be rendered and paid twice") in form.message
    case = one_error(tmp_path, 'params:\n  prompt: "{{ s }}"\nmatrix:\n  s: [Fox, fox]\n', "one file")
    assert "would write 's=Fox.mp4' and 's=fox.mp4', one file where case is not told apart" in case.message


def test_a_path_too_long_or_a_file_where_a_folder_must_be_is_a_plan_error(tmp_path: Path) -> None:
    """Both used to be found only after the job was paid for: its video could then never be saved."""
    long = one_error(tmp_path, "params:\n  prompt: a fox\noutput: \"{{ ('a' * 200 ~ '/') * 21 }}x.mp4\"\n", "path of")
    assert "more than file systems open" in long.message and long.field == "output"
    (tmp_path / "outputs" / "fox").mkdir(parents=True)
    (tmp_path / "outputs" / "fox" / "anime").write_bytes(b"a video of an earlier manifest")
    err = one_error(tmp_path, "params:\n  prompt: a fox\nmatrix:\n  style: [anime]\noutput: \"{{ style }}/clip.mp4\"\n",
                    "not a folder")
    assert f"would write anime/clip.mp4, but {tmp_path / 'outputs' / 'fox' / 'anime'} is a file" in err.message
    (tmp_path / "outputs" / "fox" / "anime").unlink()
    (tmp_path / "outputs" / "fox" / "anime").symlink_to("nowhere")
    broken = one_error(tmp_path, "params:\n  prompt: a fox\nmatrix:\n  style: [anime]\noutput: \"{{ style }}/clip.mp4\"\n",
                       "broken link")
    assert "is a file (or a broken link), not a folder" in broken.message
    (tmp_path / "outputs" / "fox" / "anime.mp4").mkdir()
    folder = one_error(tmp_path, "params:\n  prompt: a fox\nmatrix:\n  style: [anime]\noutput: \"{{ style }}.mp4\"\n",
                       "which is a folder")
    assert folder.field == "output"


@pytest.mark.parametrize("name", ["anime.json", "anime.jpg", "anime.mp4.part"])
@pytest.mark.parametrize("video", [False, True])
def test_a_folder_where_a_job_writes_beside_its_video_is_a_plan_error(tmp_path: Path, name: str, video: bool) -> None:
    """A folder at the sidecar's path was found only after the job was paid for; the run then stopped sending,
    and did so again on every later run."""
    out = tmp_path / "outputs" / "fox"
    (out / name).mkdir(parents=True)
    if video:
        (out / "anime.mp4").write_bytes(b"a video of an earlier run")
    err = one_error(tmp_path, "params:\n  prompt: a fox\nmatrix:\n  style: [anime]\noutput: \"{{ style }}.mp4\"\n",
                    "which is a folder")
    assert err.message == (f"job 'style=anime' would write {(out / name).resolve()}, which is a folder; move it, "
                           "or change output")
    assert err.field == "output"


@pytest.mark.parametrize("what", ["download", "sidecar", "poster"])
def test_the_files_plan_checks_beside_a_video_are_the_ones_gridrun_writes_there(tmp_path: Path, what: str) -> None:
    """Plan refuses a folder at the very name the download streams into, the sidecar writer and the report's
    poster maker write, for a video whose folder and name hold dots: checks made at other names would let the
    job be paid for and its files never written."""
    out = (tmp_path / "outputs" / "fox").resolve()
    video = out / "v1.0" / "anime.take.mp4"
    at = {"download": Path(f"{video}.part"), "sidecar": sidecar_path(video), "poster": poster_path(video)}[what]
    assert at.parent == video.parent and at.name in {"anime.take.mp4.part", "anime.take.json", "anime.take.jpg"}
    at.mkdir(parents=True)
    err = one_error(tmp_path, "params:\n  prompt: a fox\nmatrix:\n  style: [anime]\n"
                              "output: \"v1.0/{{ style }}.take.mp4\"\n", "which is a folder")
    assert err.message == f"job 'style=anime' would write {at}, which is a folder; move it, or change output"


def test_a_path_that_fits_only_without_its_temporary_files_is_refused(tmp_path: Path) -> None:
    """The sidecar is written through a temporary file with the process and thread ids in its name: a path
    that leaves no room for them was paid for and its sidecar never written."""
    out = len(os.fsencode(str((tmp_path / "outputs" / "fox").resolve())))
    depth = (4070 - out - 1 - 100) // 201
    last = 4070 - out - 1 - 201 * depth - 1 - len("bbbbbbbbbb.mp4")  # the video's path: 4,070 bytes, .part 4,075
    assert 0 < last <= 200
    body = (f"params:\n  prompt: a fox\noutput: \"{{{{ ('a' * 200 ~ '/') * {depth} }}}}{{{{ 'c' * {last} }}}}/"
            "bbbbbbbbbb.mp4\"\n")
    err = one_error(tmp_path, body, "path of")
    assert "with the download's and the sidecar's temporary names" in err.message


def test_a_path_with_no_room_to_keep_the_replaced_video_aside_is_refused_before_it_is_paid_for(tmp_path: Path) -> None:
    """A re-render (run --force) keeps the earlier take in .runs/superseded/<16>/<16>/<name>, 52 bytes deeper
    than the output folder: a video path that leaves room only for its download would be paid for again and its
    new take never saved."""
    name = "n" * 100 + ".mp4"
    room = 4030 - len(os.fsencode(str(tmp_path.resolve()))) - 1 - len(name) - 1  # the video path: 4,030 bytes
    parts = ["d" * 200] * (room // 201) + ["e" * (room % 201 - 1)]
    body = f"params:\n  prompt: a fox\noutputs_dir: {'/'.join(parts)}\noutput: {name}\n"
    err = one_error(tmp_path, body, "path of")
    assert "kept in .runs/superseded/" in err.message and "shorten output or outputs_dir" in err.message
    assert err.field == "output" and "job " in err.message
    # the same video path in a shallower output folder, its name longer by the same bytes, is planned
    short = "/".join(parts)[:-60]
    assert len(plan_of(tmp_path, f"params:\n  prompt: a fox\noutputs_dir: {short}\noutput: {'n' * 160}.mp4\n").jobs) == 1


def test_the_limits_of_paths_and_names_are_the_output_folders_file_systems(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """macOS opens no path of 1,024 bytes, eCryptfs takes no name past 143 bytes: a job planned by Linux's ext4
    limits there would be paid for and its video never saved."""
    asked: list[str] = []

    def pathconf(path: str, name: str) -> int:
        asked.append(path)
        return {"PC_PATH_MAX": 1024, "PC_NAME_MAX": 143}[name]

    monkeypatch.setattr(os, "pathconf", pathconf)
    name = one_error(tmp_path, f"params:\n  prompt: a fox\noutput: {'n' * 145}.mp4\n", "a name of")
    assert "more than file systems take (143)" in name.message and name.field == "output"
    deep = one_error(tmp_path, f"params:\n  prompt: a fox\noutput: {('d' * 100 + '/') * 10}x.mp4\n", "path of")
    assert "more than file systems open (1,023)" in deep.message and deep.field == "output"
    assert str(tmp_path) in asked  # the output folder is not made yet: its nearest folder that is there is asked
    assert len(plan_of(tmp_path, f"params:\n  prompt: a fox\noutput: {'n' * 130}.mp4\n").jobs) == 1


def test_the_limits_are_the_usual_ones_where_the_system_does_not_tell(monkeypatch: pytest.MonkeyPatch) -> None:
    def pathconf(path: str, name: str) -> int:
        raise OSError(22, "Invalid argument")

    monkeypatch.setattr(os, "pathconf", pathconf)
    assert localpaths.limits("/nowhere/at/all") == (4096, 255)
    monkeypatch.setattr(localpaths.sys, "platform", "darwin")
    assert localpaths.limits("/nowhere/at/all") == (1024, 255)


_NAME = hypothesis.strategies.text(  # a file name as output renders one: letters, marks, digits and ._=,+@#%-
    alphabet=hypothesis.strategies.characters(whitelist_categories=("L", "M", "N"), whitelist_characters="._=,+@#%-"),
    min_size=1, max_size=200)


@hypothesis.settings(max_examples=300, deadline=None, derandomize=True)
@hypothesis.given(folders=hypothesis.strategies.lists(_NAME, max_size=3), name=_NAME)
def test_the_paths_a_download_writes_are_longer_than_its_video_by_at_most_the_slack_plan_allows(
    folders: list[str], name: str
) -> None:
    """Plan measures a job's written paths only when its video's could leave too little room for them: a
    temporary name longer than that bound allows would let a path too long to open be paid for."""
    video = os.path.join("/out", *folders, name)
    longest = max(len(os.fsencode(path)) for path in _written(files_beside(video)))
    assert longest <= len(os.fsencode(video)) + _WRITTEN_SLACK
    assert len(os.fsencode(video)) <= 4 * len(video)


def test_jobs_in_a_folder_not_made_yet_are_checked_with_no_system_call_each(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Nothing can be at a video's path, nor beside it, in a folder that is not there: planning 100,000 jobs of
    a new manifest looked for each of their files all the same."""
    real_stat = os.stat
    looked: list[str] = []

    def stat(path: Any, *args: Any, **kw: Any) -> os.stat_result:
        looked.append(os.fspath(path))
        return real_stat(path, *args, **kw)

    monkeypatch.setattr(os, "stat", stat)
    p = plan_of(tmp_path, "params:\n  prompt: a fox\nmatrix:\n  seed: {range: [1, 30]}\n"
                          "output: \"new/{{ seed }}.mp4\"\n")
    assert len(p.jobs) == 30
    assert not [path for path in looked if path.endswith((".mp4", ".json"))]


def test_only_the_manifests_model_needs_a_whole_price_table(tmp_path: Path) -> None:
    (tmp_path / "caps.yaml").write_text("provider: sim\nmodels:\n  other-model: {params: {prompt: {type: string}}}\n")
    p = plan_of(tmp_path, "capabilities: [caps.yaml]\nparams:\n  prompt: a fox\n")
    assert p.jobs[0].cost_micros == 350_000


NEW_MODEL = """\
provider: sim
models:
  new-model:
    params:
      prompt: {type: string, required: true}
      quality: {type: string, enum: [540p], default: 540p}
      duration: {type: integer, minimum: 1, maximum: 10, default: 5}
      generate_audio_switch: {type: boolean, default: false}
    prices:
      base_5s: {540p: %s}
      duration_factor: {5: 1.0}
      audio_5s: {360p: 0.4}
"""


@pytest.mark.parametrize(("price", "params", "field", "problem"), [
    ("9" * 400, "", "models.new-model.prices.base_5s.540p", "expected a number >= 0"),
    ("0.35", "  duration: 7\n", "capabilities", "prices.duration_factor has no figure for 7"),
    ("0.35", "  generate_audio_switch: true\n", "capabilities", "prices.audio_5s has no figure for '540p'"),
    ("1e300", "", "models.new-model.prices", "the table prices a job at $1e+300, above $1,000,000 a job"),
    ("500000.01", "  n: 2\n", "models.new-model.prices", "the table prices a job at $1,000,000.02, above $1,000,000"),
])
def test_price_figures_a_job_lacks_are_located_errors(tmp_path: Path, price: str, params: str, field: str,
                                                      problem: str) -> None:
    (tmp_path / "caps.yaml").write_text(NEW_MODEL % price)
    path = write(tmp_path, f"capabilities: [caps.yaml]\nparams:\n  prompt: a fox\n{params}",
                 head="version: 1\nname: fox\nmodel: new-model\n")
    with pytest.raises(ManifestError) as caught:
        api.plan(path)
    assert problem in caught.value.message and caught.value.field == field


@pytest.mark.parametrize("seconds", [".nan", ".inf", "0", "soon"])
def test_a_render_time_prior_that_is_no_number_of_seconds_is_a_located_error(tmp_path: Path, seconds: str) -> None:
    """NaN or infinity would schedule the first polls of a real provider's jobs at no time at all."""
    (tmp_path / "caps.yaml").write_text(f"provider: sim\nmodels:\n  pixverse-v5.6:\n    render_seconds: {seconds}\n")
    expected = "expected a number of seconds > 0 or null"
    with pytest.raises(ManifestError, match=expected) as exc:
        api.plan(write(tmp_path, "capabilities: [caps.yaml]\nparams:\n  prompt: a fox\n"))
    assert (exc.value.file, exc.value.line, exc.value.field) == (tmp_path / "caps.yaml", 4,
                                                                 "models.pixverse-v5.6.render_seconds")


def test_a_bad_capability_file_from_the_environment_is_an_error_at_its_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two files in GRIDRUN_CAPABILITIES: the one at fault is named, with its line."""
    from runner.errors import UsageError

    (tmp_path / "ok.yaml").write_text("provider: sim\n")
    (tmp_path / "env-caps.yaml").write_text("provider: sim\nmodels:\n  pixverse-v5.6:\n    prices: {base_5s: {540p: -1}}\n")
    monkeypatch.setenv("GRIDRUN_CAPABILITIES", f"{tmp_path / 'ok.yaml'}:{tmp_path / 'env-caps.yaml'}")
    with pytest.raises(ManifestError) as caught:
        plan_of(tmp_path, "params:\n  prompt: a fox\n")
    assert str(caught.value) == (f"{tmp_path / 'env-caps.yaml'}:4:24: models.pixverse-v5.6.prices.base_5s.540p: "
                                 "expected a number >= 0, got -1")
    (tmp_path / "env-caps.yaml").write_text("provider: sim\nmodels:\n  new-model: {}\n")  # only the merged data shows
    with pytest.raises(UsageError, match=r"GRIDRUN_CAPABILITIES: sim/new-model: prices"):
        api.plan(write(tmp_path, "params:\n  prompt: a fox\n", head="version: 1\nname: fox\nmodel: new-model\n"))


_SELF = ({"caps.yaml": "provider: sim\nextends: sim\n"}, "caps.yaml:2:1", "provider 'sim' extends itself")
_BACK = ({"caps.yaml": "provider: lumenfall\n# sim extends lumenfall\nextends: sim\n"}, "caps.yaml:3:1",
         "provider 'lumenfall' extends 'sim', which extends it back")
_UNKNOWN = ({"caps.yaml": "provider: sim\nextends: nosuch\n"}, "caps.yaml:2:1",
            "provider 'sim' extends unknown provider 'nosuch' (known: lumenfall, sim)")
_THROUGH = ({"a.yaml": "provider: lumenfall\nextends: mine\n", "caps.yaml": "provider: mine\nextends: sim\n"},
            "caps.yaml:2:1", "provider 'mine' extends 'sim', which leads back to it: mine -> sim -> lumenfall -> mine")


@pytest.mark.parametrize(("given", "files", "where", "message"), [
    *(("manifest", *case) for case in (_SELF, _BACK, _UNKNOWN)),
    *(("environment", *case) for case in (_SELF, _BACK, _UNKNOWN, _THROUGH)),  # a manifest's files are for sim's
])
def test_extends_that_make_a_cycle_or_name_no_provider_are_an_error_at_their_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, files: dict[str, str], where: str, message: str, given: str
) -> None:
    """A user file's `extends` replaces the built-in one: leading back to a provider it came from, it made every
    command fail with a RecursionError traceback."""
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    paths = [str(tmp_path / name) for name in files]
    if given == "environment":
        monkeypatch.setenv("GRIDRUN_CAPABILITIES", os.pathsep.join(paths))
        body = "params:\n  prompt: a fox\n"
    else:
        body = f"capabilities: [{', '.join(files)}]\nparams:\n  prompt: a fox\n"
    with pytest.raises(ManifestError) as caught:
        plan_of(tmp_path, body)
    assert str(caught.value) == f"{tmp_path / where}: extends: {message}"


def test_a_bitmap_is_told_by_its_header_and_avif_by_its_name(tmp_path: Path) -> None:
    bmp = b"BM" + (70).to_bytes(4, "little") + b"\0" * 8 + (40).to_bytes(4, "little") + b"\0" * 40
    (tmp_path / "a.bmp").write_bytes(bmp)
    (tmp_path / "b.avif").write_bytes(b"\0\0\0\x20ftypavif" + b"\0" * 20)
    for name in ("a.bmp", "b.avif"):
        assert plan_of(tmp_path, f"params:\n  prompt: a fox\n  input_reference: {name}\n").jobs


def test_a_folder_behind_a_link_loop_is_a_located_error(tmp_path: Path) -> None:
    (tmp_path / "loop").symlink_to("loop")
    err = one_error(tmp_path, "params:\n  prompt: a fox\noutputs_dir: loop/sub\n", "cannot be used as a folder")
    assert err.field == "outputs_dir"
    state = one_error(tmp_path, "params:\n  prompt: a fox\nstate_dir: loop\n", "cannot be used as a folder")
    assert state.field == "state_dir"


@pytest.mark.parametrize(("body", "field"), [
    ('params:\n  prompt: a fox\n  input_reference: "fox\\0.png"\n', "params.input_reference"),
    ('params:\n  prompt: a fox\noutputs_dir: "o\\0ut"\n', "outputs_dir"),
    ('params:\n  prompt: a fox\nstate_dir: "s\\0t"\n', "state_dir"),
    ('capabilities: ["c\\0.yaml"]\nparams:\n  prompt: a fox\n', "capabilities[0]"),
    ('matrix:\n  p:\n    file: "p\\0.txt"\nparams:\n  prompt: "{{ matrix.p }}"\n', "matrix.p.file"),
])
def test_a_nul_byte_in_a_path_is_a_located_error(tmp_path: Path, body: str, field: str) -> None:
    """YAML's "\\0" puts a NUL byte in a path, which Python refuses to pass to the system (ValueError)."""
    err = one_error(tmp_path, body, "NUL byte")
    assert err.field == field and err.line > 3
    assert "\0" not in str(err)  # shown as \\0, not as a byte the terminal hides


@pytest.mark.parametrize(("body", "field"), [
    ("params:\n  prompt: a fox\n  input_reference: loop\n", "params.input_reference"),
    ("capabilities: [loop]\nparams:\n  prompt: a fox\n", "capabilities[0]"),
])
def test_an_image_or_capability_file_behind_a_link_loop_is_a_located_error(
    tmp_path: Path, body: str, field: str
) -> None:
    (tmp_path / "loop").symlink_to("loop")
    assert one_error(tmp_path, body, "cannot be used").field == field


LONG_NAME = "a" * 300
LONG_PATH = "a/" * 2100 + "x"  # each part short, the whole past PATH_MAX (4096)


@pytest.mark.parametrize(("body", "field"), [
    (f"params:\n  prompt: a fox\n  input_reference: {LONG_NAME}.png\n", "params.input_reference"),
    (f"params:\n  prompt: a fox\n  input_reference: {LONG_PATH}.png\n", "params.input_reference"),
    (f"capabilities: [{LONG_NAME}.yaml]\nparams:\n  prompt: a fox\n", "capabilities[0]"),
    (f"params:\n  prompt: a fox\noutputs_dir: {LONG_PATH}\n", "outputs_dir"),
    (f"params:\n  prompt: a fox\nstate_dir: {LONG_PATH}\n", "state_dir"),
])
def test_a_path_too_long_for_the_file_system_is_a_located_error(tmp_path: Path, body: str, field: str) -> None:
    err = one_error(tmp_path, body, "too long for the file system")
    assert err.field == field
    assert len(err.message) < 600  # the path shown with its middle left out


@pytest.mark.parametrize("name", ["a" * 300, "../data/sim", "\\ud800", "lumen\\udc80fall"])
def test_a_provider_name_is_checked_before_it_names_any_file(tmp_path: Path, name: str) -> None:
    """Only the built-in providers' names make a path into gridrun's data folder: one too long for a file
    name, or leading out of the folder, is an unknown provider like any other; so is one holding a lone
    surrogate (a `\\ud800` escape), which no environment variable's name (its base URL's) can hold."""
    head = f'version: 1\nname: fox\nprovider: "{name}"\nmodel: pixverse-v5.6\n'
    path = write(tmp_path, "params:\n  prompt: a fox\n", head=head)
    with pytest.raises(ManifestError, match="unknown provider") as caught:
        api.plan(path)
    assert caught.value.field == "provider" and caught.value.line == 3


def test_a_manifest_whose_file_name_is_not_utf8_is_refused_before_a_run_records_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A run records the manifest's path as text (SQLite takes only UTF-8): a name of other bytes is refused when
    planned, shown with a replacement character, not a traceback from the run's first write."""
    from runner.cli import main

    try:
        path = write(tmp_path, "params:\n  prompt: a fox\n", name=os.fsdecode(b"d\xffx.yaml"))
    except (OSError, UnicodeError):
        pytest.skip("this file system takes only UTF-8 names")
    with pytest.raises(ManifestError, match=r"not UTF-8 text \(byte 0xff\)") as caught:
        api.plan(path)
    assert "\udcff" not in str(caught.value) and "d\ufffdx.yaml" in str(caught.value)
    assert main(["run", str(path), "--no-report"]) == 2
    err = capsys.readouterr().err
    assert "byte 0xff" in err and "Traceback" not in err, err
    assert not (tmp_path / ".gridrun" / "state.db").exists()


def test_cancel_of_a_manifest_path_and_status_of_a_state_folder_not_utf8_say_so_beside_a_state(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Beside a state that ran, `cancel` of a name that is not UTF-8 (missing, or a file) gives plan's error, and
    `status --state` of a copied state folder so named reads it: no traceback from SQLite's UTF-8 text."""
    from runner.cli import main

    good = write(tmp_path, "params:\n  prompt: a fox\n")
    try:
        odd = write(tmp_path, "params:\n  prompt: a fox\n", name=os.fsdecode(b"d\xffx.yaml"))
        folder = tmp_path / os.fsdecode(b"st\xff")
        folder.mkdir()
    except (OSError, UnicodeError):
        pytest.skip("this file system takes only UTF-8 names")
    assert main(["run", str(good), "--no-report"]) == 0
    capsys.readouterr()
    missing = tmp_path / os.fsdecode(b"m.yaml\xff")
    assert main(["cancel", str(missing)]) == 2
    err = capsys.readouterr().err
    assert "no such file" in err and "Traceback" not in err, err
    assert main(["cancel", str(odd)]) == 2
    err = capsys.readouterr().err
    assert "byte 0xff" in err and "Traceback" not in err, err
    for name in os.listdir(tmp_path / ".gridrun"):
        if not name.startswith("state.db-"):
            shutil.copy(tmp_path / ".gridrun" / name, folder / name)
    for args in (["status", "--state", str(folder)], ["status", "--state", str(folder), "--runs"],
                 ["status", str(good), "--state", str(folder)]):
        assert main(args) == 0, args
        out, err = capsys.readouterr()
        assert "Traceback" not in err and "done" in out, (args, out, err)


def test_an_output_or_state_folder_whose_name_is_not_utf8_is_a_located_error(tmp_path: Path) -> None:
    try:
        (tmp_path / os.fsdecode(b"f\xfe")).mkdir()
    except (OSError, UnicodeError):
        pytest.skip("this file system takes only UTF-8 names")
    (tmp_path / "link").symlink_to(os.fsdecode(b"f\xfe"))
    assert one_error(tmp_path, "params:\n  prompt: a fox\noutputs_dir: link/out\n", "byte 0xfe").field == "outputs_dir"
    assert one_error(tmp_path, "params:\n  prompt: a fox\nstate_dir: link/st\n", "byte 0xfe").field == "state_dir"


def test_a_budget_too_large_to_count_is_a_located_error(tmp_path: Path) -> None:
    err = one_error(tmp_path, "params:\n  prompt: a fox\nrun:\n  budget_usd: 1.0e303\n", "budget_usd")
    assert "from 0 to 1000000000" in err.message


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs Linux's /proc")
def test_an_output_folder_the_system_will_not_make_stops_the_run_at_its_field(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """/proc takes no folders, though it is writable to root: found when the run makes the folder, before
    anything is recorded or sent, and told like any manifest error (exit 2)."""
    from runner.cli import main

    m = write(tmp_path, "params:\n  prompt: a fox\noutputs_dir: /proc/gridrun-outputs\n")
    assert main(["run", str(m)]) == 2
    err = capsys.readouterr().err
    assert f"{m}:" in err and "outputs_dir: the output folder /proc/gridrun-outputs cannot be made" in err, err
    assert "Traceback" not in err
    with pytest.raises(Exception, match="no run"):
        api.status(m)


def test_a_valid_manifest_on_a_read_only_file_system_is_valid_and_its_run_refused_before_anything_is_sent(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A read-only checkout or mount: whether a folder can be written is the machine's, not the manifest's, so
    `validate` and `plan` say the manifest is valid and warn; `run` and `retry` refuse before the state is made."""
    from runner.cli import main

    m = write(tmp_path, "params:\n  prompt: a fox\n")
    real = os.access
    monkeypatch.setattr(os, "access", lambda path, mode, **kw: not mode & os.W_OK and real(path, mode, **kw))
    for command in ("validate", "plan"):
        assert main([command, str(m)]) == 0, command
        err = " ".join(capsys.readouterr().err.split())
        assert f"warning: {m}:2:1: name: the output folder (outputs/<name>): {tmp_path / 'outputs' / 'fox'} " \
               f"cannot be made: {tmp_path} is not writable: `gridrun run` would refuse it" in err, err
        assert f"the state folder (.gridrun): {tmp_path / '.gridrun'} cannot be made" in err, err
    for previewed in ("retry", "retry --unknown"):  # plan --retry names the command it previews, which refuses it
        assert main(["plan", str(m), "--retry", *previewed.split()[1:]]) == 0, previewed
        err = " ".join(capsys.readouterr().err.split())
        assert f"is not writable: `gridrun {previewed}` would refuse it" in err and "gridrun run`" not in err, err
    for command in ("run", "retry"):
        # one error naming every folder it cannot write, exit 1 as for a state that cannot be written (the
        # manifest is valid), and none of the plan's warnings that `gridrun run` would refuse it
        assert main([command, str(m)]) == 1, command
        err = " ".join(capsys.readouterr().err.split())
        assert f"error: {m}:2:1: name: the output folder (outputs/<name>)" in err and "not writable" in err, err
        assert f"{m}:1:1: the state folder (.gridrun): {tmp_path / '.gridrun'} cannot be made" in err, err
        assert err.count("error:") == 1 and "warning" not in err and "would refuse" not in err, err
        assert f"then `gridrun {command}` again" in err, err
        assert "Traceback" not in err
    assert not (tmp_path / ".gridrun").exists() and not (tmp_path / "outputs").exists()


def test_a_manifest_in_a_read_only_folder_is_told_state_dir_and_outputs_dir_let_it_run_from_there(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """On a read-only checkout or mount, making the folder writable is not the user's to do: the error and the
    warnings say the manifest's own fields that put its state and outputs elsewhere."""
    from runner.cli import main

    m = write(tmp_path, "params:\n  prompt: a fox\n")
    real = os.access
    monkeypatch.setattr(os, "access", lambda path, mode, **kw: not mode & os.W_OK and real(path, mode, **kw))
    assert main(["plan", str(m)]) == 0
    err = " ".join(capsys.readouterr().err.split())
    assert ("`gridrun run` would refuse it; set outputs_dir: in the manifest to a folder that can be written (an "
            "absolute path works), or run a copy of the manifest's folder that can be written") in err, err
    assert "would refuse it; set state_dir: in the manifest to a folder that can be written" in err, err
    assert main(["run", str(m)]) == 1
    err = " ".join(capsys.readouterr().err.split())
    assert ("is not writable: nothing was recorded or sent (a read-only checkout or mount?): make them writable, or "
            "set outputs_dir: and state_dir: in the manifest to folders that can be written (an absolute path "
            "works), or run a copy of the manifest's folder that can be written, then `gridrun run` again") in err, err

    # an outputs_dir of its own that cannot be written: that field alone, and no copy of the folder, which would
    # name the same outputs_dir
    ro = tmp_path / "ro"
    ro.mkdir()
    m = write(tmp_path, f"params:\n  prompt: a fox\noutputs_dir: {ro}\n")
    monkeypatch.setattr(os, "access", lambda path, mode, **kw: (Path(path) != ro or not mode & os.W_OK)
                        and real(path, mode, **kw))
    assert main(["run", str(m)]) == 1
    err = " ".join(capsys.readouterr().err.split())
    assert (f"outputs_dir: the output folder: {ro} is not writable: nothing was recorded or sent (a read-only "
            "checkout or mount?): make it writable, or set outputs_dir: in the manifest to a folder that can be "
            "written (an absolute path works), then `gridrun run` again") in err, err


def test_an_unwritable_runs_folder_stops_the_run_at_its_field_before_it_is_recorded(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The output folder's .runs/ not writable (made immutable, say): refused like an unwritable output folder,
    naming .runs/, not met as a temporary file's error by a run left crashed."""
    import os

    from runner.cli import main

    m = write(tmp_path, "params:\n  prompt: a fox\noutputs_dir: out\n")
    (tmp_path / "out" / ".runs").mkdir(parents=True)
    real = os.access
    monkeypatch.setattr(os, "access", lambda path, mode, **kw: not str(path).endswith(".runs") and real(path, mode, **kw))
    assert main(["run", str(m)]) == 1
    err = " ".join(capsys.readouterr().err.split())
    assert f"{m}:" in err and "outputs_dir: the output folder's .runs/ (each run's manifest copy, the videos runs " \
                             f"replaced): {tmp_path / 'out' / '.runs'} is not writable" in err, err
    with pytest.raises(Exception, match="no run|no state"):
        api.status(m)


def test_an_input_image_at_a_plain_http_url_is_refused_where_it_is_named(tmp_path: Path) -> None:
    """The provider takes https URLs and data URIs: caught when planned, not by a paid run's rejection."""
    err = one_error(tmp_path, "params:\n  prompt: a fox\n  input_reference: http://example.com/fox.png\n", "plain http URL")
    assert err.field == "params.input_reference" and err.line == 6
    assert len(plan_of(tmp_path, "params:\n  prompt: a fox\n  input_reference: https://example.com/fox.png\n").jobs) == 1


def test_a_backslash_in_a_value_is_a_character_of_the_name_not_a_folder(tmp_path: Path) -> None:
    p = plan_of(tmp_path, "params:\n  prompt: \"{{ mood }}\"\nmatrix:\n  mood: ['rain\\\\snow', 'a\\\\..\\\\b']\n")
    names = [j.output.relative_to(p.outputs_dir).as_posix() for j in p.jobs]
    assert names == ["mood=rain_snow.mp4", "mood=a_.._b.mp4"], names


def test_a_size_ratio_the_model_lacks_is_sent_as_written_so_jobs_keep_their_hash(tmp_path: Path) -> None:
    """The provider renders the nearest ratio itself; rewriting the request would give jobs that ran before a
    new hash, and the next run would pay for them again."""
    job = plan_of(tmp_path, 'params:\n  prompt: a fox\n  quality: 540p\n  size: "21:9"\n').jobs[0]
    assert job.params["size"] == "21:9" and job.size == (960, 540)


@pytest.mark.parametrize(("usd", "micros"), [
    (4.1999995, 4_199_999), (4.2, 4_200_000), (0.57, 570_000), (0.29, 290_000), (1e-7, 0), ("2.5", 2_500_000),
    (0, 0), (10**9, 10**15), (None, None),
])
def test_a_budget_is_rounded_down_to_the_micro_dollar(usd: object, micros: int | None) -> None:
    """A cap is never raised: rounded to the nearest, $4.1999995 was $4.20, and 12 jobs of $4.20 "fit" and ran."""
    from runner.plan import budget_micros

    assert budget_micros(usd) == micros


def test_a_plan_costing_a_fraction_of_a_micro_dollar_more_than_its_budget_does_not_fit(tmp_path: Path) -> None:
    p = plan_of(tmp_path, "params:\n  prompt: a fox\nrun:\n  budget_usd: 0.3499995\n")
    assert (p.total_micros, p.budget_micros) == (350_000, 349_999)


def test_a_job_whose_key_holds_a_cut_value_is_named_by_its_key_quoted(tmp_path: Path) -> None:
    """A CSV row is a value of its key cut after 32 characters (`{"id":"2","prompt":"a fox runnin…` and six digits
    of its hash): the error names it in quotes, which end it, not as a message cut off mid-value."""
    (tmp_path / "shots.csv").write_text("id,prompt,quality\n1,a fox,540p\n2,a fox running in the snow at dawn,720x\n")
    err = one_error(tmp_path, 'params:\n  prompt: "{{ shot.prompt }}"\n  quality: "{{ shot.quality }}"\n'
                              "matrix:\n  shot: {file: shots.csv}\n", "720x")
    key = '{"id":"2","prompt":"a fox running in the snow at dawn","quality":"720x"}'
    cut = f"shot={key[:32]}…{hashlib.sha256(key.encode()).hexdigest()[:6]}"
    assert err.message.endswith(f"shots.csv:3) (in job {cut!r})"), err.message
    assert err.message.endswith("')")


def test_an_include_key_spelled_like_a_request_parameter_that_no_template_uses_is_warned_of_at_its_line(
    tmp_path: Path,
) -> None:
    """An include may add keys for templates only; `qualty: 720p` that no template reads is most likely
    `quality` mistyped (the job would be sent at the default quality): warned of at its line, with the
    parameter meant. The same key read by a template, or unlike any parameter, is not."""
    p = plan_of(tmp_path, "params:\n  prompt: a fox\nmatrix:\n  seed: [1, 2]\n  include:\n    - seed: 1\n"
                          "      qualty: 720p\n")
    assert any(w.endswith(":10:7: matrix.include[0].qualty: sets no request parameter and no template uses it; "
                          "did you mean 'quality'?") for w in p.warnings), p.warnings
    used = plan_of(tmp_path, "params:\n  prompt: a fox\nmatrix:\n  seed: [1, 2]\n  include:\n    - seed: 1\n"
                             "      qualty: 720p\noutput: '{{ seed }}-{{ qualty | default(\"x\") }}.mp4'\n")
    assert not any("qualty" in w for w in used.warnings), used.warnings
    other = plan_of(tmp_path, "params:\n  prompt: a fox\nmatrix:\n  seed: [1, 2]\n  include:\n    - seed: 1\n"
                              "      mood: calm\n")
    assert not any("did you mean" in w for w in other.warnings), other.warnings


@pytest.mark.parametrize("where", ["output: '{{ key }}.mp4'\n", "params:\n  prompt: 'a fox {{ look }} {{ key }}'\n",
                                   "vars:\n  name: '{{ key | upper }}'\noutput: '{{ name }}.mp4'\n"])
def test_an_include_key_that_key_writes_into_a_template_is_not_warned_of(tmp_path: Path, where: str) -> None:
    """{{ key }} spells every matrix value, an include's keys too: `styles` is read by the template that
    writes key (the file name, the prompt), so it is not warned of as unused, 'style' mistyped."""
    body = ("params:\n  prompt: 'a fox {{ look }}'\n  quality: 540p\n"
            "matrix:\n  look: [calm, wild]\n  include:\n    - {look: wild, styles: stormy}\n")
    if where.startswith("params:"):
        body = body.replace("params:\n  prompt: 'a fox {{ look }}'\n", where)
    else:
        body += where
    p = plan_of(tmp_path, body)
    assert not any("styles" in w for w in p.warnings), p.warnings
    said = " ".join(str(j.output) for j in p.jobs) + " ".join(j.params["prompt"] for j in p.jobs)
    assert "styles=stormy" in said.casefold(), said


def test_a_column_a_data_files_row_lacks_is_named_as_such_with_the_closest_column(tmp_path: Path) -> None:
    """`shot.promt` of a row of shots.csv: the row and its file named, its columns listed, the one meant
    suggested, at the template's line."""
    (tmp_path / "shots.csv").write_text("id,prompt\n1,a fox\n2,a cat\n")
    err = one_error(tmp_path, """\
        params:
          prompt: "{{ shot.promt }}"
        matrix:
          shot: {file: shots.csv}
        output: "{{ shot.id }}.mp4"
        """, "promt")
    assert err.message.startswith(f"shot (a row of {tmp_path / 'shots.csv'}) has no column 'promt'; did you mean 'prompt'? (columns: "
                                  "id, prompt) (in '{{ shot.promt }}')"), err.message
    assert (err.line, err.field) == (5, "params.prompt")


def test_a_capability_file_that_is_a_folder_or_missing_is_said_so_at_its_item_or_with_where_its_name_came_from(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A manifest's capabilities entry that is a folder is "a directory", not "not found", at its list item; a
    file GRIDRUN_CAPABILITIES names that cannot be read says the variable named it (no manifest shows it)."""
    (tmp_path / "capdir").mkdir()
    (tmp_path / "x.yaml").write_text("provider: sim\n")
    err = one_error(tmp_path, "params:\n  prompt: a fox\ncapabilities: [x.yaml, capdir]\n", "capdir")
    assert err.message == f"capability file {tmp_path / 'capdir'} is a directory, not a file", err.message
    assert (err.field, err.line, err.column) == ("capabilities[1]", 6, 24), (err.field, err.line, err.column)
    monkeypatch.setenv("GRIDRUN_CAPABILITIES", str(tmp_path / "nope.yaml"))
    with pytest.raises(ManifestError) as caught:
        plan_of(tmp_path, "params:\n  prompt: a fox\n")
    assert str(caught.value) == f"{tmp_path / 'nope.yaml'}: no such file (named by GRIDRUN_CAPABILITIES)"


def test_a_capability_file_that_is_a_named_pipe_or_a_device_is_said_so_not_not_found_nor_a_manifest(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A FIFO or a device named in `capabilities:` was "not found" (it is there), and named by GRIDRUN_CAPABILITIES
    it was refused as a manifest, with advice to save "it" to m.yaml. Neither is opened (a FIFO would wait)."""
    if not hasattr(os, "mkfifo"):
        pytest.skip("no named pipes here")
    os.mkfifo(tmp_path / "caps.yaml")
    for name, kind in (("caps.yaml", "a named pipe"), (os.devnull, "a character device")):
        (tmp_path / "x.yaml").write_text("provider: sim\n")
        err = one_error(tmp_path, f"params:\n  prompt: a fox\ncapabilities: [x.yaml, {name}]\n", name)
        path = Path(os.path.realpath(tmp_path / name))
        assert err.message == (f"capability file {path}: is {kind}, not a regular file: a pipe or a device, such as "
                               "standard input (/dev/stdin), cannot be read as a capabilities file, which is read "
                               "from a file saved whole; write its text to a file and name that file instead"
                               ), err.message
        assert (err.field, err.line) == ("capabilities[1]", 6), (err.field, err.line)
        monkeypatch.setenv("GRIDRUN_CAPABILITIES", str(tmp_path / name))
        with pytest.raises(ManifestError) as caught:
            plan_of(tmp_path, "params:\n  prompt: a fox\n")
        said = str(caught.value)
        assert f"is {kind}, not a regular file" in said and "(named by GRIDRUN_CAPABILITIES)" in said, said
        assert "not found" not in said and "a manifest" not in said and "(m.yaml)" not in said, said
        monkeypatch.delenv("GRIDRUN_CAPABILITIES")


def test_the_readme_quotes_a_named_pipe_capabilities_file_refused_as_it_is_said(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """At a `capabilities:` item, with the path made absolute; named by GRIDRUN_CAPABILITIES, as the variable names
    it, the variable said after."""
    if not hasattr(os, "mkfifo"):
        pytest.skip("no named pipes here")
    readme = " ".join((Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8").split())
    os.mkfifo(tmp_path / "caps.yaml")
    err = one_error(tmp_path, "params:\n  prompt: a fox\ncapabilities: [caps.yaml]\n", "caps.yaml")
    said = err.message.replace(os.path.realpath(tmp_path), "/home/me/grid")
    assert said.startswith("capability file /home/me/grid/caps.yaml: is a named pipe, not a regular file: "), said
    assert f"(`{said.partition(': a pipe')[0]}: ...`)" in readme
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("GRIDRUN_CAPABILITIES", "caps.yaml")
    with pytest.raises(ManifestError) as caught:
        plan_of(tmp_path, "params:\n  prompt: a fox\n")
    said = str(caught.value)
    assert said.startswith("caps.yaml: is a named pipe, not a regular file: ") and said.endswith(
        " (named by GRIDRUN_CAPABILITIES)"), said
    assert f"(`{said.partition(': a pipe')[0]}: ... (named by GRIDRUN_CAPABILITIES)`)" in readme


@pytest.mark.parametrize("where", ["manifest", "environment"])
def test_standard_input_piped_in_as_a_capabilities_file_is_said_to_be_a_pipe_to_write_to_a_file(
    tmp_path: Path, where: str
) -> None:
    """`capabilities: [/dev/stdin]` (or GRIDRUN_CAPABILITIES=/dev/stdin) with the file piped in: /dev/stdin resolves
    to a pipe's name that is no path, and was "not found"; it is said to be a pipe, which cannot be read as a
    capabilities file, and to write it to a file, at the field's line. Nothing waits on the pipe."""
    import subprocess
    import sys

    caps = "provider: sim\nmodels:\n  pixverse-v5.6:\n    rules: []\n"
    listed = "capabilities: [/dev/stdin]\n" if where == "manifest" else ""
    (tmp_path / "m.yaml").write_text(HEAD + f"params:\n  prompt: a fox\n{listed}", encoding="utf-8")
    env = {**os.environ, "COLUMNS": "400"}
    if where == "environment":
        env["GRIDRUN_CAPABILITIES"] = "/dev/stdin"
    done = subprocess.run([sys.executable, "-m", "runner.cli", "plan", "m.yaml"], input=caps, capture_output=True,
                          text=True, cwd=tmp_path, env=env, timeout=120, check=False)
    said = " ".join(done.stderr.split())
    assert done.returncode == 2 and "Traceback" not in said, said
    assert "not found" not in said and "pipe:[" not in said, said
    assert ("is a pipe, not a regular file: a pipe or a device, such as standard input (/dev/stdin), cannot be read "
            "as a capabilities file, which is read from a file saved whole; write its text to a file and name that "
            "file instead") in said, said
    if where == "manifest":
        assert said.startswith("error: m.yaml:6:16: capabilities[0]: capability file /dev/stdin: is a pipe"), said
    else:
        assert said.startswith("error: /dev/stdin: is a pipe") and "(named by GRIDRUN_CAPABILITIES)" in said, said


def test_a_huge_linspace_value_out_of_range_is_written_as_the_job_key_writes_it() -> None:
    """Not the 300 digits of 5e+307 made an integer: the short form its job key uses."""
    from runner.providers.capabilities import ParamSpec, _coerce

    spec = ParamSpec(name="seed", type="integer", minimum=0, maximum=2147483647)
    assert _coerce(spec, 5e307, "m")[1] == "5e+307 is above the maximum 2147483647 (m)"
    assert _coerce(spec, -5e307, "m")[1] == "-5e+307 is below the minimum 0 (m)"
    assert _coerce(spec, 2147483648, "m")[1] == "2147483648 is above the maximum 2147483647 (m)"


@pytest.mark.parametrize(("body", "where", "said"), [
    ("params:\n  prompt: a fox\nmatrix:\n  seed: [" + "9" * 309 + "]\n", "matrix.seed[0]", "1e+309"),
    ("params:\n  prompt: a fox\n  seed: \"{{ 2 ** 2000 }}\"\n", "params.seed", "1.14813e+602"),
    ("params:\n  prompt: a fox\n  seed: \"{{ -(2 ** 14000) }}\"\n", "params.seed", "-2.6299e+4214"),
])
def test_a_whole_number_past_the_float_range_out_of_range_is_an_error_at_its_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], body: str, where: str, said: str
) -> None:
    """A whole number too big for a float (309 digits, a template's 2 ** 2000) out of a parameter's range is
    written short, as a smaller one is: a located error, exit 2, not an OverflowError's traceback."""
    from runner.cli import main

    [err] = errors_of(tmp_path, body)
    assert err.field == where and err.message.startswith(f"{said} is "), (err.field, err.message)
    for command in ("validate", "plan"):
        assert main([command, str(tmp_path / "m.yaml")]) == 2
        out = capsys.readouterr().err
        assert f"{where}: {said} is " in out and "Traceback" not in out, out


@pytest.mark.parametrize("where", ["env", "manifest"])
def test_a_price_table_that_prices_a_job_absurdly_is_an_error_at_its_prices_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, where: str
) -> None:
    """$1e30 a job, from GRIDRUN_CAPABILITIES or a manifest's capabilities: the file and line of those prices,
    not the variable's name alone (or the manifest's `capabilities:`)."""
    caps = tmp_path / "cap1.yaml"
    caps.write_text("provider: sim\nmodels:\n  pixverse-v5.6:\n    prices:\n      base_5s: {540p: 1e30}\n")
    body = "params:\n  prompt: a fox\n  quality: 540p\n"
    if where == "env":
        monkeypatch.setenv("GRIDRUN_CAPABILITIES", str(caps))
    else:
        body += "capabilities: [cap1.yaml]\n"
    with pytest.raises(ManifestError) as caught:
        plan_of(tmp_path, body)
    assert str(caught.value) == (f"{caps}:4:5: models.pixverse-v5.6.prices: the table prices a job at $1e+30, above "
                                 "$1,000,000 a job; check its figures")


def test_a_null_written_into_a_prompt_or_output_is_warned_of_naming_its_jobs(tmp_path: Path) -> None:
    """YAML `~` is sent as the word 'None' in the prompt, and names the video None.mp4, as gridrun always sent it: a
    job sent so is still the same job (its hash), and its video can be collected; a warning says what to write."""
    body = """\
        params:
          quality: 360p
          prompt: |
            a red fox,
            {{ mood | default('serene') }} {{ [look] | join }}
        matrix:
          mood: [calm, ~]
          look: [~, a, b, c, d]
        output: "v-{{ mood }}-{{ line }}-{{ key }}.mp4"
        vars:
          extra: ~
          unread: "a fox {{ extra }}"
          line: "x{{ extra }}"
        """
    p = plan_of(tmp_path, body)
    jobs = by_key(p)
    assert jobs["mood=null,look=a"].params["prompt"] == "a red fox,\nNone a\n"
    assert jobs["mood=null,look=a"].hash == "cdb9479d4534cc4d7e80008c4908c094b5d86345e3a50c5bff21a1366a56fdbf"
    assert jobs["mood=null,look=a"].output_str.endswith("/v-None-xNone-mood=null,look=a.mp4")
    path = tmp_path / "m.yaml"
    nulls = [w for w in p.warnings if "'None'" in w]
    assert nulls == [  # a var nothing sent reads (unread) is not warned of
        (f"{path}:16:3: vars.line: 'extra' is null, and the text reads 'None' for jobs mood=calm,look=null (and 9 more): "
         "give it a value, or write a word of your own for it: {{ extra or 'serene' }}"),
        (f"{path}:6:3: params.prompt: 'look' is null, and the text reads 'None' for job mood=calm,look=null: give it a "
         "value, or write a word of your own for it: {{ look or 'serene' }}"),
        (f"{path}:6:3: params.prompt: 'mood' is null, and the text reads 'None' for jobs mood=null,look=null; "
         "mood=null,look=a; mood=null,look=b (and 2 more): give it a value, or write a word of your own for it: "
         "{{ mood or 'serene' }}; default() fills in only a name that is not defined, not a null"),
        (f"{path}:12:1: output: 'mood' is null, and the text reads 'None' for jobs mood=null,look=null; "
         "mood=null,look=a; mood=null,look=b (and 2 more): give it a value, or write a word of your own for it: "
         "{{ mood or 'serene' }}")], nulls
    # a one-expression parameter keeps the null: the model's default
    p = plan_of(tmp_path, "params:\n  quality: 360p\n  prompt: a fox\n  seed: '{{ s }}'\nmatrix:\n  s: [1, ~]\n")
    assert [j.params.get("seed") for j in p.jobs] == [1, None] and not p.warnings
    # a template reading some of the axes (its text made once for the jobs that share them) names each job too
    p = plan_of(tmp_path, "params:\n  quality: 360p\n  prompt: 'a {{ look }} fox, take {{ take }}'\nmatrix:\n"
                          "  look: [~, true, dusk]\n  take: [1, 2]\n  seed: [1, 2, 3]\n")
    assert [j.params["prompt"] for j in p.jobs][::3] == [f"a {look} fox, take {take}" for look in ("None", "True", "dusk")
                                                        for take in (1, 2)]
    said = ("params.prompt: 'look' is null, and the text reads 'None' for jobs look=null,take=1,seed=1; "
            "look=null,take=1,seed=2; look=null,take=1,seed=3 (and 3 more): give it a value, or write a word of your "
            "own for it: {{ look or 'serene' }}")
    assert [w.split(": ", 1)[1] for w in p.warnings if "'None'" in w] == [said]


def test_a_boolean_written_into_text_is_warned_of_once_per_template_and_value(tmp_path: Path) -> None:
    p = plan_of(tmp_path, """\
        params:
          quality: 360p
          prompt: "a fox, {{ flag }}"
          negative_prompt: "{{ flag | lower }} {{ take }}"
        matrix:
          flag: [true, false]
          take: [a, b]
        output: "{{ key }}.mp4"
        """)
    assert [j.params["prompt"] for j in p.jobs] == ["a fox, True"] * 2 + ["a fox, False"] * 2
    path = tmp_path / "m.yaml"
    assert [w for w in p.warnings if "boolean" in w or "is true" in w or "is false" in w] == [
        f"{path}:6:3: params.prompt: 'flag' is {said}, which the template writes as '{said.title()}', as Python writes "
        f"it (YAML, JSON and job keys write {said}); write {{{{ flag | lower }}}} for '{said}', or words of your own: "
        "{{ 'with sound' if flag else 'silent' }}" for said in ("true", "false")]


def test_a_decimal_comma_read_as_no_number_by_float_or_int_is_warned_of_naming_the_row(tmp_path: Path) -> None:
    """A sheet exported where the decimal separator is a comma writes "1,5": `| float` makes it 0.0 and `| int`
    makes "5,0" 0, which the prompt would say. The render stays as it was (a warning, not an error: the requests,
    and so the jobs, are those of before), and each value is warned of once at its template, naming the row; a
    number, an empty cell and a default of the template's own are not."""
    (tmp_path / "rows.csv").write_text('id,strength,secs\na,"1,5","5,0"\nb,0.5,8\nc,,8\n', encoding="utf-8")
    p = plan_of(tmp_path, """\
        params:
          quality: 360p
          prompt: "a fox, strength {{ r.strength | float }} ({{ (r.strength | float) * 2 }}), {{ r.secs | int }} beats"
          negative_prompt: "{{ r.strength | float(1.0) }} {{ r.secs | int(default=3) }}"
        matrix:
          r: {file: rows.csv}
        output: "{{ r.id }}.mp4"
        """)
    assert [j.params["prompt"] for j in p.jobs] == ["a fox, strength 0.0 (0.0), 0 beats",
                                                     "a fox, strength 0.5 (1.0), 8 beats",
                                                     "a fox, strength 0.0 (0.0), 8 beats"]
    assert [j.params["negative_prompt"] for j in p.jobs] == ["1.0 3", "0.5 8", "1.0 8"]
    said = [w for w in p.warnings if "not a number" in w]
    path, rows = tmp_path / "m.yaml", tmp_path / "rows.csv"
    assert said == [
        (f"{path}:6:3: params.prompt: 'r.strength' is '1,5', not a number to `| float`, which makes it 0.0 (from "
         f"{rows}:2): a decimal comma? write 1.5 in the file, or {{{{ ... | replace(',', '.') | float }}}}"),
        (f"{path}:6:3: params.prompt: 'r.secs' is '5,0', not a number to `| int`, which makes it 0 (from "
         f"{rows}:2): a decimal comma? write 5.0 in the file, or {{{{ ... | replace(',', '.') | int }}}}"),
    ], p.warnings


def test_int_of_a_decimal_comma_with_a_fraction_is_told_as_no_whole_number(tmp_path: Path) -> None:
    """`| int` of "1,5": the decimal-comma fix, `replace(',', '.') | int`, would send 1 without a word (int of 1.5),
    so it is not advised: the value is said to be no whole number, with `| float` for a fraction. A whole number
    written with a decimal comma ("5,0", "-2,00") keeps the fix, which sends it as it reads."""
    (tmp_path / "rows.csv").write_text('id,n\na,"1,5"\nb,"-2,75"\nc,"-2,00"\n', encoding="utf-8")
    body = """\
        params:
          quality: 360p
          prompt: "a fox {{ r.id }}, {{ r.n | int }} birds"
        matrix:
          r: {file: rows.csv}
        output: "{{ r.id }}.mp4"
        """
    p = plan_of(tmp_path, body)
    rows = tmp_path / "rows.csv"
    said = [w.split(": ", 2)[2] for w in p.warnings if "not a number" in w]
    assert said == [
        (f"'r.n' is '1,5', not a number to `| int`, which makes it 0 (from {rows}:2): a decimal comma? then it is "
         "1.5, not a whole number, which {{ ... | replace(',', '.') | int }} would cut to 1 without a word: write the "
         "whole number meant in the file, or {{ ... | replace(',', '.') | float }} where a fraction is meant"),
        (f"'r.n' is '-2,75', not a number to `| int`, which makes it 0 (from {rows}:3): a decimal comma? then it is "
         "-2.75, not a whole number, which {{ ... | replace(',', '.') | int }} would cut to -2 without a word: write "
         "the whole number meant in the file, or {{ ... | replace(',', '.') | float }} where a fraction is meant"),
        (f"'r.n' is '-2,00', not a number to `| int`, which makes it 0 (from {rows}:4): a decimal comma? write -2.00 "
         "in the file, or {{ ... | replace(',', '.') | int }}"),
    ], p.warnings
    cut = plan_of(tmp_path, body.replace("r.n | int", "r.n | replace(',', '.') | int"), "b.yaml")
    assert [j.params["prompt"] for j in cut.jobs] == ["a fox a, 1 birds", "a fox b, -2 birds", "a fox c, -2 birds"]


def test_a_thousands_separator_read_as_no_number_is_warned_of_as_one_first(tmp_path: Path) -> None:
    """`1,000` from an en-US sheet: the decimal-comma fix alone would send 1 for it, so the warning names the
    thousands separator first (and the decimal comma only for `| float` of one comma), and its fix sends 1000."""
    (tmp_path / "rows.csv").write_text('id,n\nb,"1,000"\nc,"1,000,000"\nd," 2,500.5"\n', encoding="utf-8")
    body = """\
        params:
          quality: 360p
          prompt: "a fox, {{ r.n | int }} birds"
          negative_prompt: "{{ r.id }} {{ r.n | float }}"
        matrix:
          r: {file: rows.csv}
        output: "{{ r.id }}.mp4"
        """
    p = plan_of(tmp_path, body)
    rows = tmp_path / "rows.csv"
    said = [w.split(": ", 2)[2] for w in p.warnings if "not a number" in w]  # prompt's, then negative_prompt's
    assert said == [
        (f"'r.n' is '1,000', not a number to `| int`, which makes it 0 (from {rows}:2): a thousands separator? "
         "write 1000 in the file, or {{ ... | replace(',', '') | int }}"),
        (f"'r.n' is '1,000,000', not a number to `| int`, which makes it 0 (from {rows}:3): a thousands "
         "separator? write 1000000 in the file, or {{ ... | replace(',', '') | int }}"),
        (f"'r.n' is ' 2,500.5', not a number to `| int`, which makes it 0 (from {rows}:4): a thousands "
         "separator? then it is 2500.5, not a whole number, which {{ ... | replace(',', '') | int }} would cut to "
         "2500 without a word: write the whole number meant in the file, or {{ ... | replace(',', '') | float }} "
         "where a fraction is meant"),
        (f"'r.n' is '1,000', not a number to `| float`, which makes it 0.0 (from {rows}:2): a thousands separator? "
         "write 1000 in the file, or {{ ... | replace(',', '') | float }}; or a decimal comma? write 1.000 in the "
         "file, or {{ ... | replace(',', '.') | float }}"),
        (f"'r.n' is '1,000,000', not a number to `| float`, which makes it 0.0 (from {rows}:3): a thousands "
         "separator? write 1000000 in the file, or {{ ... | replace(',', '') | float }}"),
        (f"'r.n' is ' 2,500.5', not a number to `| float`, which makes it 0.0 (from {rows}:4): a thousands "
         "separator? write 2500.5 in the file, or {{ ... | replace(',', '') | float }}"),
    ], p.warnings
    fixed = plan_of(tmp_path, body.replace("r.n | int", "r.n | replace(',', '') | int"), "b.yaml")
    assert [j.params["prompt"] for j in fixed.jobs] == ["a fox, 1000 birds", "a fox, 1000000 birds",
                                                         "a fox, 2500 birds"]


def test_values_read_as_no_number_past_three_are_counted_with_their_rows(tmp_path: Path) -> None:
    """Every value `| float` or `| int` makes 0.0 or 0 of is told: the first three each in its own warning (under
    every filter that read it, so two filters in one template do not use up the three sooner), the others in one
    more, counted, with their rows, so that a user who fixes the rows named does not take the file for clean."""
    (tmp_path / "rows.csv").write_text('id,s\na,"1,5"\nb,"2,5"\nc,"3,5"\nd,"4,5"\ne,"5,5"\n', encoding="utf-8")
    body = """\
        params:
          quality: 360p
          prompt: "a fox {{ r.id }} {{ r.s | float }}"
        matrix:
          r: {file: rows.csv}
        output: "{{ r.id }}.mp4"
        """
    p = plan_of(tmp_path, body)
    rows = tmp_path / "rows.csv"
    assert [j.params["prompt"] for j in p.jobs] == [f"a fox {i} 0.0" for i in "abcde"]
    said = [w.split(": ", 2)[2] for w in p.warnings if "not a number" in w]
    assert [w.partition(", not")[0] for w in said[:3]] == ["'r.s' is '1,5'", "'r.s' is '2,5'", "'r.s' is '3,5'"]
    assert said[3:] == [(f"and 2 more texts not a number to `| float`, which makes them 0.0 (from {rows}:5, "
                         f"{rows}:6): the warnings above say how to fix them")], p.warnings

    # two filters of one value: each value named under both, the fourth counted under both
    (tmp_path / "rows.csv").write_text('id,s\na,"1,5"\nb,"1,000"\nc,"2,500.5"\nd,"7,5"\n', encoding="utf-8")
    p = plan_of(tmp_path, body.replace("{{ r.s | float }}", "{{ r.s | float }} {{ r.s | int }}"), "b.yaml")
    said = [w.split(": ", 2)[2] for w in p.warnings if "not a number" in w]
    assert [w.partition(", which")[0] for w in said[:6]] == [
        f"'r.s' is {text!r}, not a number to `| {f}`" for text in ("1,5", "1,000", "2,500.5") for f in ("float", "int")]
    assert said[6:] == [(f"and 1 more text not a number to `| float` and `| int`, which makes it 0.0 or 0 (from "
                         f"{rows}:5): the warnings above say how to fix them")], p.warnings


def test_an_output_name_empty_before_its_extension_is_refused_naming_the_job(tmp_path: Path) -> None:
    """An empty value wrote the hidden video `.mp4`, beside `.mp4.jpg` and `.mp4.json`."""
    body = """\
        params:
          quality: 360p
          prompt: "a fox, {{ look }}"
        matrix:
          look: [a, "", " "]
        output: "{{ shot }}/{{ look }}.mp4"
        vars: {shot: s}
        """
    errors = errors_of(tmp_path, body.replace('""', '".hid"'))
    assert [(e.line, e.field) for e in errors] == [(9, "output")]
    assert str(errors[0]).endswith("output: renders a file name with nothing before its extension (or starting with '.'), "
                                   "a hidden file that `ls` lists only with -a: give the value a text, or write a fixed "
                                   "part before it (e.g. 'v-{{ look }}.mp4') (in job look=.hid: 's/.hid.mp4')")
    body = body.replace('"{{ shot }}/{{ look }}.mp4"', '"{{ look }}.mp4"').replace(', " "', "")
    assert "(in job look=: '.mp4')" in str(one_error(tmp_path, body, "nothing before its extension"))
    assert [j.output.name for j in plan_of(tmp_path, body.replace('"{{ look }}.mp4"', '"v-{{ look }}.mp4"')).jobs] \
        == ["v-a.mp4", "v-.mp4"]


def test_two_long_values_shortened_alike_in_their_keys_are_told_so(tmp_path: Path) -> None:
    """Their keys' 6 hex digits clash: the error blamed spacing, for values that differ in words."""
    (tmp_path / "prompts.txt").write_text("A cinematic shot of a red fox in fresh snow at dusk, take 120\n"
                                          "A cinematic shot of a red fox in fresh snow at dusk, take 2906\n")
    err = one_error(tmp_path, """\
        params: {prompt: "{{ p }}", quality: 360p}
        matrix:
          p: {file: prompts.txt}
        """, "the same key")
    assert (str(err.file), err.line, err.field) == (str(tmp_path / "prompts.txt"), 2, "matrix.p[1]")
    assert "spacing" not in err.message
    assert err.message.endswith(
        "a key names one job; a key writes a value of over 40 characters as its first 32, '…' and 6 hex digits of its "
        "hash, and these two are shortened alike (they differ after their 32nd character, and their digits clash, as "
        "they may in a file of thousands of values that open alike): give each value a short name the key keeps: rows "
        "of a CSV or JSONL file with an id column (a key writes a row's columns in name order, `id` before `prompt`; "
        "the prompt then {{ shot.prompt }}), or an axis of short names whose texts a var picks")
    # long values that differ in spacing only are still told so
    err = one_error(tmp_path, f"params: {{prompt: '{{{{ p }}}}', quality: 360p}}\nmatrix:\n  p: ['{'x' * 50}', "
                              f"'  {'x' * 50}']\n", "the same key")
    assert "not its spacing" in err.message and "shortened alike" not in err.message


# -- a request is JSON: what no JSON carries is refused at its line ------------------------------------------------


@pytest.mark.parametrize("written, said", [
    (".nan", "is NaN (not a number)"),
    (".inf", "is infinity"),
    ("-.inf", "is -infinity"),
    ("{strength: [1, .nan]}", "is NaN (not a number) (at strength[1])"),
])
def test_a_nan_or_infinity_in_a_parameter_passed_through_is_refused_at_its_line(tmp_path, written, said):
    err = one_error(tmp_path, f"params:\n  prompt: fox\n  motion_strength: {written}\n", said)
    assert (err.line, err.field) == (6, "params.motion_strength")
    assert "JSON has no such number" in str(err)


def test_an_infinity_from_a_matrix_axis_through_a_template_is_refused_in_its_job(tmp_path):
    err = one_error(tmp_path, 'params:\n  prompt: fox\n  motion: "{{ m }}"\nmatrix:\n  m: [.inf, 1]\n', "is infinity")
    assert (err.line, err.field) == (6, "params.motion") and "m=inf" in str(err)


@pytest.mark.parametrize("template, kind", [
    ("{{ range(3) }}", "a range object"),
    ("{{ cfg.keys() }}", "a dict_keys object"),
])
def test_an_object_from_a_one_expression_template_is_refused_not_hashed_as_its_text(tmp_path, template, kind):
    body = f'vars:\n  cfg: {{a: 1, b: x}}\nparams:\n  prompt: fox\n  motion: "{template}"\n'
    err = one_error(tmp_path, body, kind)
    assert (err.line, err.field) == (8, "params.motion")
    assert "| list" in str(err)


def test_a_method_from_a_one_expression_template_is_told_to_be_called(tmp_path):
    body = 'vars:\n  cfg: {a: 1, b: x}\nparams:\n  prompt: fox\n  motion: "{{ cfg.get }}"\n'
    err = one_error(tmp_path, body, "the method get of a dict, not its result: call it ({{ cfg.get() }})")
    assert (err.line, err.field) == (8, "params.motion") and "0x" not in str(err)


def test_a_mapping_with_a_key_not_text_is_refused_not_a_crash(tmp_path):
    err = one_error(tmp_path, "params:\n  prompt: fox\n  motion: \"{{ {1: 'a', 'b': 2} }}\"\n", "has the key 1")
    assert (err.line, err.field) == (6, "params.motion") and "quote it ('1')" in str(err)


def test_json_values_of_a_parameter_passed_through_keep_their_hash(tmp_path):
    # a tuple is sent as the list it holds: the same request, hashed as before
    listed = plan_of(tmp_path, "params:\n  prompt: fox\n  motion: [[a, 1], [b, 2.5]]\n  m: {k: [true, null]}\n",
                     "a.yaml").jobs[0]
    made = plan_of(tmp_path, "params:\n  prompt: fox\n  motion: \"{{ {'b': 2.5, 'a': 1} | dictsort }}\"\n"
                             "  m: \"{{ {'k': [true, none]} }}\"\n", "b.yaml").jobs[0]
    assert listed.hash == made.hash
    assert listed.hash == job_hash("sim", "pixverse-v5.6", listed.params, 0)


# --- inputs at the provider's limits ---------------------------------------------------------------------------

@pytest.mark.parametrize("prompt", ["\\u200b", "\\ufeff", "\\u2060\\u00ad", " \\u200b\\u200b ", "\\u200d", "\\U000e0041",
                                    "\\u3164", "\\u2800 \\u2800", "\\u115f\\u1160", "\\uffa0"])
def test_a_prompt_of_invisible_characters_alone_is_refused_as_empty(tmp_path: Path, prompt: str) -> None:
    """A zero width space (or a byte order mark, a word joiner, a soft hyphen) shows nothing: the render of such
    a prompt would be paid for as a blank one's would."""
    err = one_error(tmp_path, f'params:\n  prompt: "{prompt}"\n', "empty")
    assert (err.line, err.field) == (5, "params.prompt")
    assert "'prompt' is required by pixverse-v5.6, and is empty here" in err.message


def test_a_prompt_from_a_file_or_cell_of_invisible_characters_is_refused_at_its_job(tmp_path: Path) -> None:
    (tmp_path / "p.txt").write_text("a red fox\n\u200b\n", encoding="utf-8")
    err = one_error(tmp_path, "params:\n  prompt: \"{{ p }}\"\nmatrix:\n  p: {file: p.txt}\n", "empty")
    assert err.field == "params.prompt" and "is empty here" in err.message
    assert "(in job p=\u200b)" in err.message, err.message
    (tmp_path / "shots.csv").write_text("id,prompt\nfox,a fox\nzw,\ufeff\u2060\n", encoding="utf-8")
    err = one_error(tmp_path, "params:\n  prompt: \"{{ shot.prompt }}\"\nmatrix:\n  shot: {file: shots.csv}\n",
                    "empty", name="c.yaml")
    assert "is empty here (from" in err.message and "shots.csv:3)" in err.message, err.message
    (tmp_path / "rows.jsonl").write_text('{"prompt": "\\u200b"}\n', encoding="utf-8")
    err = one_error(tmp_path, "params:\n  prompt: \"{{ row.prompt }}\"\nmatrix:\n  row: {file: rows.jsonl}\n",
                    "empty", name="j.yaml")
    assert "is empty here (from" in err.message and "rows.jsonl:1)" in err.message, err.message


def test_a_prompt_with_a_drawn_character_among_invisible_ones_plans() -> None:
    from runner.textforms import blank

    assert blank("\u200b \ufeff\t\u3000")
    assert not blank("\u200bfox\u200b")
    assert not blank("\u0600")  # the Arabic number sign is drawn
    assert not blank("\u3164\ud55c")  # a Hangul filler beside a syllable that shows
    assert not blank("\u2801")  # a Braille pattern of one dot
    assert not blank("\U0001f3f4\U000e0067\U000e0062\U000e0065\U000e006e\U000e0067\U000e007f")  # England's flag


def test_a_prompt_longer_than_the_provider_takes_is_refused_at_its_job(tmp_path: Path) -> None:
    """The API takes at most 32,000 characters of prompt: a longer one is refused at plan time, its job named,
    before its siblings are paid for; jobs of prompts within the limit plan, the check shared by them or not."""
    long = "a green fox " * 2667  # 32,004 characters
    (tmp_path / "p.txt").write_text(f"a red fox\n{long}\na blue fox\n{'x' * 32000}\n", encoding="utf-8")
    errors = errors_of(tmp_path, "params:\n  prompt: \"{{ text }}\"\nmatrix:\n  text: {file: p.txt}\n")
    assert len(errors) == 1, errors
    [err] = errors
    assert err.field == "params.prompt"
    assert "is 32,003 characters long; pixverse-v5.6 takes at most 32,000" in err.message, err.message  # its line
    assert "(in job 'text=a green fox a green fox a green …" in err.message, err.message
    (tmp_path / "q.txt").write_text(f"{long}\na red fox\n", encoding="utf-8")
    errors = errors_of(tmp_path, "params:\n  prompt: \"{{ text }}\"\nmatrix:\n  text: {file: q.txt}\n")
    assert len(errors) == 1 and "32,003 characters long" in errors[0].message  # the first job's check is its own
    err = one_error(tmp_path, f"params:\n  prompt: {'y' * 32001}\n", "characters long", name="c.yaml")
    assert (err.line, err.field) == (5, "params.prompt")
    p = plan_of(tmp_path, "params:\n  prompt: \"{{ text }}\"\nmatrix:\n  text: [a fox, '" + "x" * 32000 + "']\n",
                name="d.yaml")
    assert len(p.jobs) == 2


def test_a_prompt_limit_is_capability_data(tmp_path: Path) -> None:
    (tmp_path / "caps.yaml").write_text("provider: sim\nmodels:\n  pixverse-v5.6:\n    params:\n      prompt:\n"
                                        "        {type: string, required: true, max_length: 10}\n")
    err = one_error(tmp_path, "capabilities: [caps.yaml]\nparams:\n  prompt: a fox at dusk\n", "characters long")
    assert "is 13 characters long; pixverse-v5.6 takes at most 10" in err.message
    (tmp_path / "bad.yaml").write_text("provider: sim\nmodels:\n  pixverse-v5.6:\n    params:\n      prompt:\n"
                                       "        {type: string, max_length: 0}\n")
    with pytest.raises((ManifestError, ManifestErrors)) as caught:
        plan_of(tmp_path, "capabilities: [bad.yaml]\nparams:\n  prompt: a fox\n", name="b.yaml")
    assert "max_length" in str(caught.value)


def _sparse(path: Path, size: int, head: bytes, tail: bytes) -> Path:
    """A file of `size` bytes, `head` and `tail` at its ends, the rest a hole (no disk, nothing to write)."""
    with open(path, "wb") as f:
        f.write(head)
        f.seek(size - len(tail))
        f.write(tail)
    return path


_IEND = b"\x00\x00\x00\x00IEND\xaeB`\x82"


def test_an_input_image_larger_than_the_provider_takes_is_refused_by_its_size_alone(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """PixVerse takes images of at most 20 MB (providers.md section 5): a larger one is refused at plan time,
    told by its size, not read (the digest would read it whole)."""
    _sparse(tmp_path / "big.png", 20_000_001, PNG, _IEND)
    _sparse(tmp_path / "ok.png", 20_000_000, PNG, _IEND)
    read: list[str] = []
    real = builtins_open = open

    def spying_open(file: Any, mode: str = "r", *args: Any, **kw: Any) -> Any:
        handle = builtins_open(file, mode, *args, **kw)
        if str(file).endswith("big.png"):
            read.append(str(file))
            handle_read = handle.read

            def limited(n: int = -1) -> bytes:
                assert 0 <= n <= 65536, n
                return handle_read(n)
            handle.read = limited
        return handle

    monkeypatch.setattr("builtins.open", spying_open)
    errors = errors_of(tmp_path, "params:\n  prompt: a fox\nmatrix:\n  input_reference: [ok.png, big.png]\n")
    monkeypatch.setattr("builtins.open", real)
    assert read, "big.png was not looked at"
    [err] = errors
    assert err.field == "matrix.input_reference[1]"
    assert ("input image 'big.png' is 20 MB (20,000,001 bytes), more than the 20 MB (20,000,000 bytes) "
            "pixverse-v5.6 takes") in err.message, err.message
    assert "(in job input_reference=big.png)" in err.message, err.message
    err = one_error(tmp_path, "params:\n  prompt: a fox\n  input_reference: ok.png\n  last_frame_image: big.png\n",
                    "big.png", name="b.yaml")
    assert (err.line, err.field) == (7, "params.last_frame_image")


def test_a_cut_short_or_mislabelled_input_image_is_refused(tmp_path: Path) -> None:
    """A PNG without its IEND chunk, a JPEG without its end-of-image marker (a copy that stopped early), a text file
    named .heic: the provider would fail the render, or refuse it; each is refused at plan time at its field."""
    whole_png = PNG[:8] + b"\x00" * 100 + _IEND
    (tmp_path / "trunc.png").write_bytes(whole_png[:60])
    (tmp_path / "trunc.jpg").write_bytes(b"\xff\xd8\xff\xe0" + b"\x00\x10JFIF" + b"\x12\xff\x00\x34" * 30)
    _sparse(tmp_path / "long.png", 300_000, PNG[:8], b"\x00" * 12)
    (tmp_path / "fake.heic").write_text("hello, not an image")
    (tmp_path / "fake.avif").write_bytes(b"\0\0\0\x18ftypisom\0\0\0\0isomiso2")  # an MP4, not an image
    (tmp_path / "fake.tif").write_text("not a tiff either")
    for name, fragment in [("trunc.png", "is cut short: a PNG ends with an IEND chunk, and this one has none"),
                           ("trunc.jpg", "is cut short: a JPEG ends with an end-of-image marker (FF D9)"),
                           ("long.png", "is cut short"),
                           ("fake.heic", "is not an image gridrun can send"),
                           ("fake.avif", "is not an image gridrun can send"),
                           ("fake.tif", "is not an image gridrun can send")]:
        err = one_error(tmp_path, f"params:\n  prompt: a fox\n  input_reference: {name}\n", name,
                        name=f"{name}.yaml")
        assert (err.line, err.field) == (6, "params.input_reference"), (name, err)
        assert fragment in err.message, (name, err.message)
    uri = _data_uri("image/png", whole_png[:60])
    err = one_error(tmp_path, f"params:\n  prompt: a fox\n  input_reference: \"{uri}\"\n", "cut short", name="u.yaml")
    assert err.field == "params.input_reference"


def test_a_whole_image_with_data_after_its_end_or_of_a_kind_told_by_its_bytes_plans(tmp_path: Path) -> None:
    """Data after a JPEG's end (a phone's motion photo appends a video) or a PNG's IEND is no sign of a cut; HEIC,
    AVIF and TIFF are told by their bytes, whatever the file's name."""
    video = b"".join(hashlib.sha256(b"%d" % i).digest() for i in range(3200))  # 100 KB after it, past the tail read
    (tmp_path / "motion.jpg").write_bytes(b"\xff\xd8\xff\xe0" + b"\x12" * 1000 + b"\xff\xd9" + video)
    (tmp_path / "trailer.png").write_bytes(PNG + _IEND + b"some tool's trailer")
    (tmp_path / "photo.heic").write_bytes(b"\0\0\0\x18ftypheic\0\0\0\0mif1heic" + b"\0" * 40)
    (tmp_path / "still.avif").write_bytes(b"\0\0\0\x1cftypavif\0\0\0\0avifmif1miaf" + b"\0" * 40)
    (tmp_path / "scan.tif").write_bytes(b"MM\x00*" + b"\0" * 40)
    (tmp_path / "scan.dat").write_bytes(b"II*\x00" + b"\0" * 40)
    p = plan_of(tmp_path, "params:\n  prompt: a fox\nmatrix:\n  input_reference: [motion.jpg, trailer.png, photo.heic, "
                          "still.avif, scan.tif, scan.dat]\n")
    assert len(p.jobs) == 6


def test_an_input_image_that_is_a_named_pipe_says_so_and_is_never_opened(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "fifo.png")
    err = one_error(tmp_path, "params:\n  prompt: a fox\n  input_reference: fifo.png\n", "fifo.png")
    assert (err.line, err.field) == (6, "params.input_reference")
    assert "input image 'fifo.png' is a named pipe, not a regular file holding an image" in err.message, err.message
    assert "not found" not in err.message


def test_the_last_frame_is_warned_of_as_a_passthrough_of_one_route(tmp_path: Path) -> None:
    """The seed page lists last_frame_image as passed through only when Lumenfall routes the request to Replicate:
    elsewhere the clip is rendered, and billed, without its end frame. A warning at its field, never a refusal."""
    shutil.copytree(Path(__file__).parent.parent / "manifests", tmp_path / "manifests",
                    ignore=shutil.ignore_patterns(".gridrun", "outputs"))
    p = api.plan(tmp_path / "manifests" / "image-to-video.yaml")
    assert len(p.jobs) == 3
    path = tmp_path / "manifests" / "image-to-video.yaml"
    warned = (f"{path}:15:36: matrix.include[0].last_frame_image: is honoured only when the gateway routes the "
              "request to replicate; routed elsewhere, the video is rendered (and billed) without it")
    assert [w for w in p.warnings if "last_frame_image" in w] == [warned], p.warnings


def test_a_run_setting_or_manifest_field_written_under_params_is_told_where_it_goes(tmp_path: Path) -> None:
    """`budget_usd: 2` under `params:` caps nothing and goes to the provider in every request: the warning names
    where it belongs (run.budget_usd; outputs_dir at the top level), not only "unknown parameter"."""
    p = plan_of(tmp_path, "params:\n  prompt: a fox\n  budget_usd: 2\n  concurrency: 3\n  outputs_dir: out\n")
    assert p.jobs[0].params["budget_usd"] == 2  # passed through, as any unknown parameter is
    unused = "; here it is sent in every request, and the run does not use it"
    m = tmp_path / "m.yaml"
    assert list(p.warnings) == [
        f"{m}:6:3: params.budget_usd: a run setting, not a request parameter: it goes under run: (run.budget_usd){unused}",
        f"{m}:7:3: params.concurrency: a run setting, not a request parameter: it goes under run: (run.concurrency){unused}",
        f"{m}:8:3: params.outputs_dir: a manifest field, not a request parameter: it goes at the top level (outputs_dir:){unused}",
    ], p.warnings


TYPO = """\
vars:
  mood: stormy
params:
  prompt: "a fox, {{ look }}, {{ moood | default('calm') }} mood{% if lighting is defined %}, {{ lighting }}{% endif %}"
matrix:
  look: [day, dusk]
  include:
    - {look: dusk, lightning: golden}
"""


def test_a_name_a_template_reads_that_nothing_defines_spelled_close_to_one_that_is_defined_is_warned_of(
    tmp_path: Path,
) -> None:
    """Under `| default(...)` or `is defined` a misspelt name is no error: the value the manifest gives was left out
    of every paid request without a word. Warned of at the template, and at the var or include key no template
    reads."""
    p = plan_of(tmp_path, TYPO)
    assert [j.params["prompt"] for j in p.jobs] == ["a fox, day, calm mood", "a fox, dusk, calm mood"]  # as before
    assert any(w.endswith(":7:3: params.prompt: reads 'moood', which no var or matrix key of any sweep defines: a "
                          "default (| default, is defined) or a branch that does without it is taken in every job; "
                          "did you mean 'mood'? (vars.mood is read by no template)") for w in p.warnings), p.warnings
    assert any(w.endswith(":7:3: params.prompt: reads 'lighting', which no var or matrix key of any sweep defines: "
                          "a default (| default, is defined) or a branch that does without it is taken in every job; "
                          "did you mean 'lightning'?") for w in p.warnings), p.warnings
    assert any(w.endswith(":11:20: matrix.include[0].lightning: no template reads 'lightning'; params.prompt reads "
                          "'lighting', spelled close to it: did you mean 'lighting'?") for w in p.warnings), p.warnings
    assert any(w.endswith(":5:3: vars.mood: no template reads 'mood'; params.prompt reads 'moood', spelled close to "
                          "it: this var or that name is likely mistyped") for w in p.warnings), p.warnings
    # in a branch no job takes, too
    dead = plan_of(tmp_path, "vars:\n  style: watercolor\nparams:\n  prompt: \"a fox, {{ look }}{% if look == 'night' %}"
                             ", {{ styel }}{% endif %}\"\nmatrix:\n  look: [day, dusk, nigth]\n")
    assert any("reads 'styel', which no var or matrix key" in w and "did you mean 'style'?" in w
               for w in dead.warnings), dead.warnings


@pytest.mark.parametrize("style", ["|", ">"])
def test_a_misspelt_name_in_a_block_template_is_warned_of_at_its_own_line(tmp_path: Path, style: str) -> None:
    """A prompt written as a block scalar over many lines: the warning is at the line and column where the
    misspelt name is read (as a template's errors are), not at the parameter's key; a word of the text that is the
    name is not taken for the read."""
    p = plan_of(tmp_path, (
        "vars:\n  mood: calm\nparams:\n"
        f"  prompt: {style}\n"
        "    a fox, {{ look }}, in a moood\n"
        "    of its own,\n"
        "      {{ moood | default('calm') }} mood\n"
        "matrix:\n  look: [day, dusk]\n"))
    said = [w for w in p.warnings if "reads 'moood', which" in w]
    assert len(said) == 1 and said[0].split(": params.prompt: ")[0].endswith(":10:10"), p.warnings


def test_an_optional_key_some_include_entry_defines_is_not_warned_of(tmp_path: Path) -> None:
    """A name some jobs define (an include's key) and others do without (`| default`, `is defined`) is what those
    guards are for; nor is a var or key unlike any name read warned of."""
    p = plan_of(tmp_path, "vars:\n  unused: x\nparams:\n  prompt: \"a fox, {{ look }}{% if light is defined %}, "
                          "{{ light }}{% endif %}\"\n  negative_prompt: \"{{ avoid | default('blurry') }}{{ extra_words | default('') }}\"\n"
                          "matrix:\n  look: [day, dusk]\n  include:\n    - {look: dusk, light: golden}\n"
                          "    - {look: day, avoid: rain}\n")
    assert len(p.jobs) == 2
    assert not any("spelled close" in w or "which no var or matrix key" in w for w in p.warnings), p.warnings


def test_an_unused_var_or_include_key_beside_a_defined_name_of_like_spelling_is_not_warned_of(tmp_path: Path) -> None:
    """An older prompt kept beside the one in use (`prompt_v1`, `prompt_v2`), or an include key beside a matrix
    key (`seeds`, `seed`), is no misspelling: the name the template reads is defined, and it reads what it meant
    to."""
    versions = plan_of(tmp_path, 'vars:\n  prompt_v1: "a fox in snow, {{ style }}"\n  prompt_v2: "a red fox, {{ style }} '
                                 'style"\nparams:\n  prompt: "{{ prompt_v2 }}"\nmatrix:\n  style: [anime, clay]\n')
    shots = plan_of(tmp_path, 'vars:\n  shot_1: a fox\n  shot_2: a whale\nparams:\n  prompt: "{{ shot_1 }}, {{ look }}"\n'
                              'matrix:\n  look: [day, dusk]\n')
    seeds = plan_of(tmp_path, 'params:\n  prompt: "a fox {{ seed }}"\nmatrix:\n  seed: [1, 2]\n  include:\n'
                              '    - {seed: 1, seeds: 3}\n')
    for p in (versions, shots, seeds):
        assert len(p.jobs) == 2
        assert not any("spelled close" in w or "did you mean" in w for w in p.warnings), p.warnings


SWEEP_VAR = """\
vars:
  v: "{{ only_a }} light"
sweeps:
  - name: a
    params: {prompt: "a fox, {{ v }}"}
    matrix: {only_a: [dusk, dawn]}
  - name: b
    params: {prompt: "a fox, {{ look }}"}
    matrix: {look: [x, y]}
"""


def test_a_top_level_var_is_rendered_only_for_the_sweeps_whose_templates_read_it(tmp_path: Path) -> None:
    """A var meant for one sweep, made of a matrix key only that sweep has, failed every other sweep, which never
    reads it; one a sweep reads and cannot render is an error naming that sweep."""
    p = plan_of(tmp_path, SWEEP_VAR)
    assert [j.params["prompt"] for j in p.jobs] == ["a fox, dusk light", "a fox, dawn light", "a fox, x", "a fox, y"]
    # through another var too
    through = plan_of(tmp_path, SWEEP_VAR.replace('    params: {prompt: "a fox, {{ v }}"}',
                                                  '    vars: {w: "{{ v }}!"}\n    params: {prompt: "a fox, {{ w }}"}'))
    assert [j.params["prompt"] for j in through.jobs][:2] == ["a fox, dusk light!", "a fox, dawn light!"]
    err = one_error(tmp_path, SWEEP_VAR.replace('"a fox, {{ look }}"', '"a fox, {{ look }}, {{ v }}"'),
                    "'only_a' is undefined")
    assert err.line == 5 and err.field == "vars.v", err
    assert "(for sweep b, whose templates read it)" in err.message, err.message
    # a sweep's own var, and a var no template reads, are checked as before
    own = SWEEP_VAR.replace('    params: {prompt: "a fox, {{ look }}"}',
                            '    vars: {v: "{{ nope }}"}\n    params: {prompt: "a fox, {{ look }}"}')
    assert one_error(tmp_path, own, "'nope' is undefined").field == "sweeps[1].vars.v"
    assert one_error(tmp_path, "vars:\n  v: \"{{ nothing }}\"\nparams:\n  prompt: a fox\n",
                     "'nothing' is undefined").line == 5


def test_an_error_in_a_top_level_var_names_a_sweep_only_when_that_sweep_reads_it(tmp_path: Path) -> None:
    """A var no template reads is checked in every sweep; its error names no sweep, since none uses it. A sweep
    that does not compile may read any top-level var: the other sweeps do not render one for it, and the plan
    stops at that sweep's own error only."""
    unread = errors_of(tmp_path, SWEEP_VAR.replace("{{ v }}", ""))
    assert [(e.field, e.message) for e in unread] == [("vars.v", "'only_a' is undefined (in '{{ only_a }} light')")]
    broken = errors_of(tmp_path, SWEEP_VAR.replace("{{ v }}", "{{ v }} {{ oops ) }}"))
    assert [e.field for e in broken] == ["sweeps[0].params.prompt"], broken
    assert "template syntax error" in broken[0].message


def test_a_var_rendered_in_every_sweep_gets_the_top_level_vars_it_reads(tmp_path: Path) -> None:
    """A var no template reads (a draft kept beside the prompt in use), or a sweep's own, is rendered in every
    sweep as before, with the top-level vars it is made of, though only another sweep's templates read those."""
    shared = """\
vars:
  subject: a red fox
sweeps:
  - name: a
    params: {prompt: "{{ subject }}, {{ look }}"}
    matrix: {look: [day, dusk]}
  - name: b
    params: {prompt: "a whale, {{ look }}"}
    matrix: {look: [x, y]}
"""
    own = plan_of(tmp_path, shared.replace('  - name: b\n', '  - name: b\n    vars: {draft: "{{ subject }} at night"}\n'))
    unread = plan_of(tmp_path, shared.replace("  subject: a red fox\n",
                                              '  subject: a red fox\n  old_prompt: "{{ subject }} in the snow"\n'))
    for p in (own, unread):
        assert [j.params["prompt"] for j in p.jobs] == ["a red fox, day", "a red fox, dusk", "a whale, x", "a whale, y"]
    # still checked: a name it reads that this sweep lacks is an error
    assert one_error(tmp_path, shared.replace('  - name: b\n', '  - name: b\n    vars: {draft: "{{ subject }}, {{ nope }}"}\n'),
                     "'nope' is undefined").field == "sweeps[1].vars.draft"


def test_a_column_a_data_file_row_lacks_names_the_row(tmp_path: Path) -> None:
    """In a file of thousands of rows, the one without the column is found by its line; the rows that lack it
    are one error, as before, its first row's line said."""
    rows = [f'{{"id": "r{i}", "prompt": "shot {i}", "q": "540p"}}' for i in range(1, 6)]
    rows[3] = '{"id": "r4", "prompt": "shot 4"}'
    (tmp_path / "rows.jsonl").write_text("\n".join(rows) + "\n", encoding="utf-8")
    err = one_error(tmp_path, """\
        params:
          prompt: "{{ r.prompt }}"
          quality: "{{ r.q }}"
        matrix:
          r: {file: rows.jsonl}
        output: "{{ r.id }}.mp4"
        """, "has no column 'q'")
    assert err.field == "params.quality"
    assert err.message.endswith(f"(in job r={{\"id\":\"r4\",\"prompt\":\"shot 4\"}}: from {tmp_path}/rows.jsonl:4)")


def test_two_rows_writing_one_output_are_named_by_their_lines(tmp_path: Path) -> None:
    (tmp_path / "rows.csv").write_text("id,prompt\n1,alpha\n2,bravo\n2,charlie\n", encoding="utf-8")
    err = one_error(tmp_path, """\
        params:
          prompt: "{{ r.prompt }}"
        matrix:
          r: {file: rows.csv}
        output: "{{ r.id }}.mp4"
        """, "would both write 2.mp4")
    assert f"(from {tmp_path}/rows.csv:3 and {tmp_path}/rows.csv:4)" in err.message


def test_two_rows_sending_one_request_are_named_by_their_lines(tmp_path: Path) -> None:
    (tmp_path / "rows.csv").write_text("id,prompt\n1,alpha\n2,bravo\n3,bravo\n", encoding="utf-8")
    err = one_error(tmp_path, """\
        params:
          prompt: "{{ r.prompt }}"
        matrix:
          r: {file: rows.csv}
        output: "{{ r.id }}.mp4"
        """, "exactly the same request")
    assert f"(from {tmp_path}/rows.csv:4 and {tmp_path}/rows.csv:3)" in err.message


def test_a_key_clash_of_two_rows_names_the_first_rows_line(tmp_path: Path) -> None:
    """Two long prompts shortened alike in their keys (their hash digits clash, as they may in a file of thousands
    of rows that open alike): the error is at the second row, and names the first's line, as the values it shows
    are cut alike."""
    from runner.jobs import format_value

    opening = "a cinematic slow shot of a red fox in deep snow number "
    seen: dict[str, int] = {}
    n = 0
    while (shown := format_value({"prompt": f"{opening}{n}"})) not in seen:
        seen[shown] = n
        n += 1
    (tmp_path / "rows.csv").write_text(f"prompt\n{opening}{seen[shown]}\n{opening}{n}\n", encoding="utf-8")
    err = one_error(tmp_path, """\
        params:
          prompt: "{{ r.prompt }}"
        matrix:
          r: {file: rows.csv}
        output: "{{ r.prompt[-6:] }}.mp4"
        """, "two jobs have the same key")
    assert (err.file.name, err.line) == ("rows.csv", 3)
    assert f"the first from {tmp_path}/rows.csv:2)" in err.message


def test_a_data_files_warnings_are_the_plans_and_go_with_its_errors(tmp_path: Path) -> None:
    (tmp_path / "p.txt").write_text("#cinematic a fox\na whale\n", encoding="utf-8")
    p = plan_of(tmp_path, """\
        params:
          prompt: "{{ p }}"
        matrix:
          p: {file: p.txt}
        """)
    assert [w for w in p.warnings if "p.txt:1:1: matrix.p: '#cinematic a fox' is skipped as a comment" in w]
    (tmp_path / "rows.csv").write_text("id\tprompt\nr1\ta fox\n", encoding="utf-8")
    with pytest.raises((ManifestError, ManifestErrors)) as exc:
        plan_of(tmp_path, """\
            params:
              prompt: "{{ r.prompt }}"
            matrix:
              r: {file: rows.csv}
            """)
    said = str(exc.value)
    assert "did you mean 'id\\tprompt'? (columns: id\\tprompt)" in said and "\t" not in said  # said, not spacing
    assert [w for w in exc.value.warnings if "rows.csv:1:1: matrix.r: the header row is one column 'id\\tprompt': "
            "this file seems separated by tabs" in w]
def test_a_csv_row_of_empty_cells_is_warned_of_at_its_line_and_still_makes_a_job(tmp_path: Path) -> None:
    """`,,` rows, which a spreadsheet writes past its data: a job each, as before (a project that ran one plans the
    same), with a warning at the first naming the others."""
    (tmp_path / "st.csv").write_text("style,notes\nclay,x\n,\n , \n", encoding="utf-8")
    p = plan_of(tmp_path, """\
        params: {prompt: "a fox, {{ r.style }}"}
        matrix:
          r: {file: st.csv}
        output: "{{ hash }}.mp4"
        """)
    assert [j.params["prompt"] for j in p.jobs] == ["a fox, clay", "a fox, ", "a fox,  "]
    said = [w.replace(f"{tmp_path}/", "") for w in p.warnings if "every cell of this row is empty" in w]
    assert len(said) == 1, p.warnings
    assert said[0].startswith("st.csv:3:1: matrix.r[1]: every cell of this row is empty"), said
    assert "delete the row; so is 1 more row, at line 4" in said[0]


def test_a_csv_row_that_repeats_the_header_row_is_refused_at_its_line(tmp_path: Path) -> None:
    """Two exports joined with `cat` (no byte order mark to tell it): the second header row would be a paid job
    sending the column names as its prompt. Spacing around a name, as in the header, is no difference."""
    body = """\
        params: {prompt: "{{ shot.prompt }}"}
        matrix:
          shot: {file: shots.csv}
        output: "{{ shot.id }}.mp4"
        """
    (tmp_path / "shots.csv").write_text("id,prompt\ns01,fox at dawn\nid, prompt \r\ns02,owl at dusk\n",
                                        encoding="utf-8")
    errors = errors_of(tmp_path, body)
    assert [str(e).replace(f"{tmp_path}/", "") for e in errors] == [
        "shots.csv:3:1: matrix.shot[1]: this row repeats the header row (two files joined?): delete it"]
    (tmp_path / "shots.csv").write_text("id,prompt\ns01,fox at dawn\nid,prompt of a fox\n", encoding="utf-8")
    assert [j.params["prompt"] for j in plan_of(tmp_path, body).jobs] == ["fox at dawn", "prompt of a fox"]


def test_a_csv_whose_header_row_ends_in_unnamed_empty_columns_plans_as_without_them(tmp_path: Path) -> None:
    """A spreadsheet's export writes its empty columns past the data as trailing commas: read as not there (the
    same jobs, keys and hashes as the file without them); a value in such a column is refused at its row."""
    body = """\
        params: {prompt: "a fox, {{ r.style }} {{ r.notes }}"}
        matrix:
          r: {file: st.csv}
        """
    (tmp_path / "st.csv").write_text("style,notes\nclay,x\nwood,y\n", encoding="utf-8")
    plain = plan_of(tmp_path, body)
    (tmp_path / "st.csv").write_text("style,notes,,\r\nclay,x,,\r\nwood,y\r\n", encoding="utf-8")
    padded = plan_of(tmp_path, body)
    assert [(j.key, j.hash, j.params) for j in padded.jobs] == [(j.key, j.hash, j.params) for j in plain.jobs]
    (tmp_path / "st.csv").write_text("style,notes,,\nclay,x,\nwood,y,,\n", encoding="utf-8")  # some commas kept
    padded = plan_of(tmp_path, body)
    assert [(j.key, j.hash, j.params) for j in padded.jobs] == [(j.key, j.hash, j.params) for j in plain.jobs]
    assert len(padded.jobs) == 2
    (tmp_path / "st.csv").write_text("style,notes,,\nclay,x,,\nwood,y,, late\n", encoding="utf-8")
    with pytest.raises((ManifestError, ManifestErrors)) as exc:
        plan_of(tmp_path, body)
    assert "st.csv:3:1" in str(exc.value), str(exc.value)
    assert "a value in column 4, which has no name in the header row" in str(exc.value), str(exc.value)
    (tmp_path / "st.csv").write_text("style,,notes\nclay,,x\n", encoding="utf-8")
    with pytest.raises((ManifestError, ManifestErrors)) as exc:
        plan_of(tmp_path, body)
    assert "column 2 of the header row has no name" in str(exc.value), str(exc.value)


def test_an_error_a_row_of_empty_cells_makes_names_the_row_as_empty(tmp_path: Path) -> None:
    (tmp_path / "shots.csv").write_text("id,prompt,quality\r\na1,a red fox,540p\r\n,,\r\n", encoding="utf-8")
    with pytest.raises((ManifestError, ManifestErrors)) as exc:
        plan_of(tmp_path, """\
            params: {prompt: "{{ shot.prompt }} in snow", quality: "{{ shot.quality }}"}
            matrix:
              shot: {file: shots.csv}
            """)
    errors = exc.value.errors if isinstance(exc.value, ManifestErrors) else [exc.value]
    assert f"(from {tmp_path}/shots.csv:3, a row whose cells are all empty)" in errors[0].message, errors[0]
    assert any(str(w).startswith(f"{tmp_path}/shots.csv:3:1: matrix.shot[1]: every cell of this row is empty")
               for w in exc.value.warnings), exc.value.warnings


def test_an_error_a_template_makes_of_a_row_names_the_row_and_tells_cut_keys_apart(tmp_path: Path) -> None:
    """A template's error of one row's values (an index past a list, a division by zero, a JSONL row's missing
    nested key, an all-empty row's), not only of a column the row lacks, names that row's line; two keys cut short
    that read alike are told apart by their rows."""
    caption = "a red fox running through fresh snow at"
    (tmp_path / "shots.csv").write_text(f"caption,id,speed,tags\n{caption} dawn,s01,2,snow;dawn\n"
                                        f"{caption} dusk,s02,2,snow\n{caption} noon,s03,0,snow;noon\n",
                                        encoding="utf-8")
    with pytest.raises(ManifestErrors) as exc:
        plan_of(tmp_path, """\
            params: {prompt: "{{ shot.caption }}, {{ shot.tags.split(';')[1] }}, {{ 24 // (shot.speed | int) }} fps"}
            matrix:
              shot: {file: shots.csv}
            output: "{{ shot.id }}.mp4"
            """)
    index, zero = (e.message for e in exc.value.errors)
    assert "list object has no element 1" in index, index
    assert f"(in the job from {tmp_path}/shots.csv:3, key 'shot={{\"caption\":\"a red fox running th…" in index, index
    assert "ZeroDivisionError" in zero and f"(in the job from {tmp_path}/shots.csv:4, key " in zero, zero
    (tmp_path / "rows.jsonl").write_text('{"id":"a","meta":{"tags":"x"}}\n{"id":"b","meta":{}}\n', encoding="utf-8")
    with pytest.raises(ManifestError) as one:
        plan_of(tmp_path, """\
            params: {prompt: "fox {{ shot.meta.tags.upper() }}"}
            matrix:
              shot: {file: rows.jsonl}
            output: "{{ shot.id }}.mp4"
            """)
    assert "has no attribute 'tags'" in one.value.message, one.value
    assert one.value.message.endswith(f": from {tmp_path}/rows.jsonl:2)"), one.value
    (tmp_path / "e.csv").write_text("id,prompt,n\na,fox,1\n,,\n", encoding="utf-8")
    with pytest.raises(ManifestErrors) as exc:
        plan_of(tmp_path, """\
            params: {prompt: "{{ shot.prompt }} {{ 100 // (shot.n | int) }}"}
            matrix:
              shot: {file: e.csv}
            output: "{{ shot.id }}.mp4"
            """)
    said = f"from {tmp_path}/e.csv:3, a row whose cells are all empty)"
    assert all(e.message.endswith(said) for e in exc.value.errors), exc.value


def test_a_data_file_value_that_is_a_spreadsheet_formula_error_sent_is_warned_of_at_its_row(tmp_path: Path) -> None:
    (tmp_path / "rows.csv").write_text("id,prompt,notes\nr1,a red fox,#N/A\nr2,#REF!,\nr3,#N/A,\nr4,#VALUE!,x\n",
                                       encoding="utf-8")
    (tmp_path / "looks.txt").write_text("clay\nLoading...\n", encoding="utf-8")
    p = plan_of(tmp_path, """\
        params: {prompt: "{{ r.prompt }}, {{ look }}"}
        matrix:
          r: {file: rows.csv}
          look: {file: looks.txt}
        """)
    assert len(p.jobs) == 8  # planned as before
    said = sorted(w.replace(f"{tmp_path}/", "").split(": its cell")[0].split(": the value")[0]
                  for w in p.warnings if "formula error" in w)
    # r1's notes cell is sent by no job: not warned of
    assert said == ["looks.txt:2:1: matrix.look[1]", "rows.csv:3:1: matrix.r[1]", "rows.csv:4:1: matrix.r[2]",
                    "rows.csv:5:1: matrix.r[3]"], p.warnings
    ref = next(w for w in p.warnings if w.startswith(f"{tmp_path}/rows.csv:3:1"))
    assert "its cell in column 'prompt' is '#REF!', a spreadsheet's formula error" in ref


def test_a_template_error_is_never_at_a_guarded_read_of_the_failing_name(tmp_path: Path) -> None:
    """A name read where it cannot fail (`nope is defined`, `nope | default(1)`) and again where it does: the exact
    spot was the first read, the guarded one. It is now the one read that can fail, or, when it is read so more
    than once, the line (a folded block, one line to Jinja: its start) with no column of a read."""
    body = ("params:\n  quality: 360p\n  prompt: >\n    a fox {% if nope is defined %}{{ nope }}{% endif %},\n"
            "    in snow, {{ nope }} and more\n")
    err = one_error(tmp_path, body, "'nope' is undefined")
    start = err.line
    assert err.column == 5, str(err)  # the block's start: which of the two reads failed is not known
    body = "params:\n  quality: 360p\n  prompt: |\n    a {{ nope | default(1) }} {{ nope }}\n"
    err = one_error(tmp_path, body, "'nope' is undefined")
    assert (err.line, err.column) == (start, 34), str(err)
    body = "params:\n  quality: 360p\n  prompt: >\n    a {{ nope | d('x') }},\n    {% if nope is not defined %}b{% endif %} {{ nope }}\n"
    err = one_error(tmp_path, body, "'nope' is undefined")
    assert (err.line, err.column) == (start + 1, 49), str(err)
    body = "params:\n  quality: 360p\n  prompt: |\n    one\n    a {% if nope is defined %}{{ nope }}{% endif %} {{ nope }}\n"
    err = one_error(tmp_path, body, "'nope' is undefined")
    assert (err.line, err.column) == (start + 1, 5), str(err)


def test_output_claims_fold_each_folder_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The folders of the videos are folded (for case-insensitive file systems) once each, not once per job:
    a plan of 100,000 jobs in a few folders spent most of its time folding the same folders again."""
    from runner import sweeps

    folded: list[str] = []
    real = sweeps.fold

    def counted(path: str) -> str:
        folded.append(path)
        return real(path)

    monkeypatch.setattr(sweeps, "fold", counted)
    p = plan_of(tmp_path, """\
        params:
          prompt: "{{ style }} fox {{ idx }}"
        matrix:
          style: [anime, clay]
          idx: {range: [1, 50]}
        output: "{{ style }}/sub/{{ idx }}.mp4"
        """)
    assert len(p.jobs) == 100
    assert p.jobs[0].output_str.endswith(os.path.join("anime", "sub", "1.mp4"))
    # two folders of two levels each; the ASCII file names need no Unicode folding
    assert sorted(folded) == sorted(["anime", "anime/sub", "clay", "clay/sub", "anime", "clay"])


def test_output_claims_in_a_claimed_folder() -> None:
    """A folder some job's files sit in stays one: a later job's video of its name is refused, and the jobs in
    it after that are claimed as before; a video's name taken as a folder is refused whichever comes first."""
    from runner.sweeps import OutputClaims

    claims = OutputClaims()
    assert claims.claim("d/x.mp4", "a") is None
    assert claims.claim("D", "b") == "job 'b' would write D (its video), a folder job 'a' writes in"
    assert claims.claim("d/y.mp4", "c") is None
    assert claims.claim("d/Y.MP4", "e") == ("jobs 'c' and 'e' would write 'd/y.mp4' and 'd/Y.MP4', one file where "
                                            "case is not told apart (macOS, Windows); make the values differ in "
                                            "more than case")
    assert claims.claim("v.mp4", "f") is None
    assert claims.claim("V.MP4/z.mp4", "g") == "job 'g' would write in the folder V.MP4, which is the video of job 'f'"
    assert claims.claim("d/Y.mp4.part", "h") == ("job 'h' would write d/Y.mp4.part (its video), which job 'c' "
                                                 "writes (its download)")
    assert claims.claim("report.html/x.mp4", "i") == ("job 'i' would write report.html/x.mp4, in the place of "
                                                      "gridrun's own files (report, results, .runs)")
    assert claims.claim("results.mp4", "j") == ("job 'j' would write results.mp4, in the place of gridrun's own "
                                                "files (report, results, .runs)")
    assert claims.claim("x.JSON", "k") == ("job 'k' would write x.JSON, which is also the name of its own sidecar; "
                                           "use a video name (e.g. \"{{ key }}.mp4\")")


def test_output_claims_of_a_job_in_a_settled_folder() -> None:
    """A job in a folder claimed before has all its files claimed, as any job's: each is refused to a later job,
    named as what it is, and so is a name of the job's own files taken twice, and a folder of the video's name."""
    from runner.sweeps import OutputClaims

    claims = OutputClaims()
    assert claims.claim("d/a.mp4", "a") is None
    assert claims.claim("d/b.mp4", "b") is None  # in d, claimed by job a
    assert claims.videos["d/b.mp4"] == "d/b.mp4"
    assert claims.taken("d/b.mp4") == ("b", "video")
    assert claims.claim("d/b.x", "c") == "job 'c' would write d/b.json (its sidecar), which job 'b' writes (its sidecar)"
    assert claims.taken("d/b.jpg") == ("b", "poster") and claims.taken("d/b.mp4.part") == ("b", "download")
    assert claims.claim("d/b.mp4.PART", "f") == ("job 'f' would write d/b.mp4.PART (its video), which job 'b' "
                                                 "writes (its download)")
    assert claims.claim("d/c.mp4", "g") is None
    assert claims.claim("d/c.mp4", "h") == (
        "jobs 'g' and 'h' would both write d/c.mp4; put the keys that vary into output (e.g. \"{{ key }}.mp4\")")
    assert claims.claim("d/B.MP4", "i") == ("jobs 'b' and 'i' would write 'd/b.mp4' and 'd/B.MP4', one file where "
                                            "case is not told apart (macOS, Windows); make the values differ in "
                                            "more than case")
    assert claims.claim("d/x.json", "j") == ("job 'j' would write d/x.json, which is also the name of its own "
                                             "sidecar; use a video name (e.g. \"{{ key }}.mp4\")")
    assert claims.claim("d/b.mp4/z.mp4", "k") == "job 'k' would write in the folder d/b.mp4, which is the video of job 'b'"
    assert claims.claim("d/e", "l") is None  # no extension: still its sidecar d/e.json, its poster d/e.jpg
    assert claims.claim("d/E.z", "m") == "job 'm' would write d/E.json (its sidecar), which job 'l' writes (its sidecar)"


def test_output_claims_of_names_ending_as_the_files_beside_a_video() -> None:
    """A video or folder whose name ends as a download, sidecar or poster does (`.part`, `.json`, `.jpg`), and a
    name whose fold changes its end (a final sigma), take those files' places as any file would: each later job
    writing one of them is refused, named by what it is."""
    from runner.sweeps import OutputClaims

    claims = OutputClaims()
    assert claims.claim("d/a.mp4", "a") is None
    assert claims.claim("d/x.part", "p") is None
    assert claims.claim("d/x", "q") == "job 'q' would write d/x.json (its sidecar), which job 'p' writes (its sidecar)"
    assert claims.claim("d/y.mp4", "r") is None
    assert claims.claim("d/y.mp4.part", "s") == ("job 's' would write d/y.mp4.part (its video), which job 'r' writes "
                                                 "(its download)")
    assert claims.claim("d/f.jpg/v.mp4", "x") is None
    assert claims.claim("d/f", "z") == "job 'z' would write d/f.jpg (its poster), a folder job 'x' writes in"
    assert claims.claim("d/g.mp4", "g1") is None
    assert claims.claim("d/G.mp4", "g2") == ("jobs 'g1' and 'g2' would write 'd/g.mp4' and 'd/G.mp4', one file where "
                                             "case is not told apart (macOS, Windows); make the values differ in "
                                             "more than case")
    claims = OutputClaims()
    assert claims.claim("a/b.mp4", "a") is None
    assert claims.claim("a/c.mp4", "b") is None
    assert claims.claim("a/b.mp4.part/x.mp4", "c") == ("job 'c' would write in the folder a/b.mp4.part, which is the "
                                                       "download of job 'a'")
    assert claims.claim("a/c.json/x.mp4", "d") == "job 'd' would write in the folder a/c.json, which is the sidecar of job 'b'"
    assert claims.claim("a/r.mp4.part", "g") is None
    assert claims.claim("a/r.mp4", "h") == ("job 'h' would write a/r.mp4.part (its download), which job 'g' writes "
                                            "(its video)")
    claims = OutputClaims()
    assert claims.claim("ΣΑΣ", "a") is None  # its video folds to σας, its .part file to σασ.part
    assert claims.claim("ΣΑΣ.part", "d") == "job 'd' would write ΣΑΣ.part (its video), which job 'a' writes (its download)"
    assert claims.claim("σας.part", "e") is None
    assert claims.taken("σασ.json") == ("a", "sidecar") and claims.taken("σας") == ("a", "video")


def test_output_claims_fold_other_scripts_as_before() -> None:
    """Names beyond ASCII fold in one Unicode form and a simple lower case, the Greek final sigma as str.lower
    writes it (before '/', not before '.'); the name lengths are in UTF-8 bytes, `.part` included."""
    from runner.sweeps import OutputClaims

    claims = OutputClaims()
    assert claims.claim("ΣΑΣ/x.mp4", "a") is None
    assert claims.claim("σας/y.mp4", "b") is None  # the folder folds to σας too: no clash, one folder
    assert claims.claim("σασ/x.mp4", "c") is None   # σασ is another folder
    assert claims.claim("ΣΑΣ.mp4", "d") is None
    assert claims.claim("σας.mp4", "e") is None     # before '.', ΣΑΣ folds to σασ
    assert claims.claim("σασ.mp4", "e") == ("jobs 'd' and 'e' would write 'ΣΑΣ.mp4' and 'σασ.mp4', one file where "
                                            "case is not told apart (macOS, Windows); make the values differ in "
                                            "more than case")
    assert claims.claim("cafe\u0301/v.mp4", "f") is None
    assert claims.claim("CAFÉ/v.mp4", "g") == ("jobs 'f' and 'g' would write 'cafe\u0301/v.mp4' and 'CAFÉ/v.mp4', "
                                               "one file where case is not told apart (macOS, Windows); make the "
                                               "values differ in more than case")
    short = OutputClaims(name_max=16)
    assert short.claim("𝒜𝒜𝒜.mp4", "h") == ("job 'h' would write its sidecar as 𝒜𝒜𝒜.json, a name of 17 bytes: "
                                          "more than file systems take (16); shorten output, e.g. with "
                                          "{{ value | truncate(60) }} or {{ hash }}")
    assert short.claim("𝒜𝒜.m", "i") is None  # 12 bytes with .json, 13 with .part
    assert short.claim("ab.mp4", "j") is None


def test_files_beside_split_as_splitext() -> None:
    """The names beside a video take its extension as os.path.splitext does, leading dots and all."""
    import itertools

    for size in range(7):
        for chars in itertools.product("a./", repeat=size):
            video = "".join(chars)
            stem = os.path.splitext(video)[0]
            assert files_beside(video) == (video + ".part", stem + ".json", stem + ".jpg"), video


def test_planning_leaves_objects_the_calling_program_froze_frozen():
    # A server may freeze what it holds before forking (copy-on-write pages stay shared); planning within it
    # must not hand those objects back to the collector.
    import gc

    repo = Path(__file__).resolve().parent.parent
    held = [object() for _ in range(100)]
    gc.freeze()
    try:
        frozen = gc.get_freeze_count()
        plan = api.plan(load(repo / "manifests" / "demo.yaml"))
        assert plan.jobs
        assert gc.get_freeze_count() >= frozen
    finally:
        gc.unfreeze()
    del held


def test_a_capabilities_file_says_whether_a_queued_cancel_is_billed(tmp_path: Path) -> None:
    """`queued_cancel_free`: true, false or null (the provider does not say); anything else is refused at its line."""
    (tmp_path / "caps.yaml").write_text("provider: lumenfall\nqueued_cancel_free: true\n")
    assert capabilities.load("lumenfall", extra=(tmp_path / "caps.yaml",)).queued_cancel_free is True
    (tmp_path / "bad.yaml").write_text("provider: sim\nqueued_cancel_free: sometimes\n")
    with pytest.raises(ManifestError) as caught:
        plan_of(tmp_path, "capabilities: [bad.yaml]\nparams:\n  prompt: a fox\n")
    assert str(caught.value) == (f"{tmp_path / 'bad.yaml'}:2:1: queued_cancel_free: expected true, false or null, "
                                 "got a string 'sometimes'")


@pytest.mark.parametrize(("body", "said"), [
    ("params:\n  prompt: a fox\nrun:\n  timeout: 10m\n",
     "run.timeout: expected a number of seconds > 0, got a string '10m'; the unit is seconds: write 600 for 10m"),
    ("params:\n  prompt: a fox\nrun:\n  poll_interval: 2s\n",
     ("run.poll_interval: expected a number of seconds > 0 and <= 3600, got a string '2s'; the unit is seconds: "
      "write 2 for 2s")),
    ("params:\n  prompt: a fox\n  duration: 5s\n",
     "params.duration: expected an integer, got '5s'; the unit is seconds: write 5 for 5s"),
    ("params:\n  prompt: a fox\nsim:\n  render_time: 1.5 min\n",
     "sim.render_time: render_time must be a number, got '1.5 min'; the unit is seconds: write 90 for 1.5 min"),
    ("params:\n  prompt: a fox\nrun:\n  timeout: 300h\n",
     "run.timeout: expected a number of seconds > 0, got a string '300h'; the unit is seconds: write 1080000 for 300h"),
])
def test_a_time_written_with_its_unit_is_told_the_unit_is_seconds(tmp_path: Path, body: str, said: str) -> None:
    field = said.split(":", 1)[0]
    assert said in str(one_error(tmp_path, body, field))


def test_a_time_flag_written_with_its_unit_is_told_the_unit_is_seconds(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from runner.cli import main

    m = write(tmp_path, "params:\n  prompt: a fox\n")
    for flag, value, said in (("--timeout", "10m", "write 600 for 10m"), ("--poll-interval", "1h", "write 3600 for 1h"),
                              ("--timeout", "1.2345678h", "write 4444.44408 for 1.2345678h")):
        with pytest.raises(SystemExit) as exc:
            main(["run", str(m), flag, value])
        assert exc.value.code == 2
        err = capsys.readouterr().err
        assert f"argument {flag}: a number of seconds is needed, got '{value}'; the unit is seconds: {said}" in err, err
    assert not (tmp_path / ".gridrun").exists()
