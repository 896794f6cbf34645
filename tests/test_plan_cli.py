from __future__ import annotations

import io
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import hypothesis
import pytest
from hypothesis import strategies as st

from runner import api
from runner.cli import main

ROOT = Path(__file__).resolve().parent.parent
MANIFESTS = ROOT / "manifests"
PLAN_INVALID = Path(__file__).parent / "data" / "manifests" / "plan_invalid"
HEAD = "version: 1\nname: fox\nmodel: pixverse-v5.6\n"


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def write(path: Path, body: str, head: str = "") -> Path:
    path.write_text(head + textwrap.dedent(body), encoding="utf-8")
    return path


@pytest.fixture
def examples(tmp_path: Path) -> Path:
    """The shipped examples, copied without any state or outputs of earlier runs."""
    dest = tmp_path / "manifests"
    shutil.copytree(MANIFESTS, dest, ignore=shutil.ignore_patterns(".gridrun", "outputs"))
    return dest


# --- invalid manifests at the plan level -------------------------------------------------------

INVALID_CASES = [
    ("template_undefined.yaml", 5, ("params.prompt: 'styel' is undefined; did you mean 'style'? (in 'a fox, {{ styel }} "
                                    "style') (in 2 jobs, e.g. style=anime)")),
    ("template_syntax.yaml", 5, "params.prompt: template syntax error: unexpected end of template"),
    ("template_unsafe.yaml", 5, "access to attribute '__class__' of 'str' object is unsafe"),
    ("var_cycle.yaml", 5, "vars.subject: vars reference each other in a cycle: subject -> scene -> place -> subject"),
    ("var_undefined.yaml", 6, "vars.scene: 'subjcet' is undefined"),
    ("var_undefined_in_sweep.yaml", 12, "sweeps[1].vars.scene: 'moon' is undefined"),
    ("output_undefined.yaml", 8, ("output: 'sed' is undefined; did you mean 'seed'? (in '{{ sed }}.mp4') (in 2 jobs, "
                                  "e.g. seed=1)")),
    ("output_absolute.yaml", 8, "output: renders an absolute path; output is relative to the output folder (in 2 jobs, e.g. seed=1: '/tmp/fox-1.mp4')"),
    ("output_escapes.yaml", 8, "output: renders a path that leaves the output folder (in 2 jobs, e.g. seed=1: 'videos/../../fox-1.mp4')"),
    ("output_collision.yaml", 9, "output: jobs 'style=anime,seed=1' and 'style=anime,seed=2' would both write anime.mp4"),
    ("output_empty.yaml", 8, "output: renders an empty path"),
    ("quality_enum.yaml", 6, "params.quality: '4k' is not one of 360p, 540p, 720p, 1080p (pixverse-v5.6)"),
    ("duration_expression.yaml", 8, "params.duration: 7 is not one of 5, 8, 10 (pixverse-v5.6)"),
    ("duration_in_matrix.yaml", 7, "matrix.duration[1]: 6 is not one of 5, 8, 10 (pixverse-v5.6) (in job duration=6)"),
    ("seed_not_integer.yaml", 6, "params.seed: expected an integer, got 'lucky'"),
    ("seed_negative.yaml", 7, "matrix.seed[1]: -1 is below the minimum 0 (pixverse-v5.6) (in job seed=-1)"),
    ("n_too_many.yaml", 6, "params.n: 5 is above the maximum 4 (pixverse-v5.6)"),
    ("rule_1080p_10s.yaml", 7, "params.duration: 10 is too large: 1080p allows at most 8 s"),
    ("rule_1080p_10s_include.yaml", 11, "matrix.include[0].duration: 10 is too large: 1080p allows at most 8 s (in job quality=1080p,duration=10)"),
    ("rule_last_frame_alone.yaml", 6, "params.last_frame_image: last_frame_image needs input_reference"),
    ("unknown_model.yaml", 3, "model: unknown model 'pixverse-v9' for provider sim (known: pixverse-v5.6)"),
    ("unknown_provider.yaml", 3, "provider: unknown provider 'dreamworks' (known: lumenfall, sim)"),
    ("capabilities_missing.yaml", 4, "capabilities[0]: capability file"),
    ("image_missing.yaml", 6, "params.input_reference: input image 'assets/no-such-fox.png' not found"),
    ("image_missing_in_include.yaml", 11, "matrix.include[0].last_frame_image: input image 'assets/no-such-moon.png' not found"),
    ("cap_default.yaml", 6, "matrix: this manifest plans 1,010 jobs, above the cap of 1,000; check the matrix, or raise the cap with --max-jobs or run.max_jobs"),
    ("cap_run_max_jobs.yaml", 9, "run.max_jobs: this manifest plans 6 jobs, above the cap of 5"),
    ("all_excluded.yaml", 8, "matrix.exclude: every combination of the matrix is excluded (2 removed by exclude 1, 2)"),
    ("duplicate_job_key.yaml", 7,
     "matrix.seed[2]: two jobs have the same key: this value repeats matrix.seed[0], at line 7"),
    ("sim_knob_bad_value.yaml", 8, "sim.failure_rate: failure_rate must be between 0 and 1, got 1.5"),
    ("sim_knob_unknown.yaml", 7, "sim.render_tme: unknown knob 'render_tme'"),
    ("sim_knobs_several.yaml", 8, "sim.render_tme: unknown knob 'render_tme'; did you mean 'render_time'?"),
    ("sim_knobs_several.yaml", 9, "sim.failure_rate: failure_rate must be between 0 and 1, got 1.5"),
    ("aspect_ratio_number.yaml", 6, "params.aspect_ratio: expected an aspect ratio like \"16:9\", got 1.78"),
    ("audio_no.yaml", 6, "params.generate_audio_switch: expected true or false, got the text 'no' (text is taken as a boolean only when it is true or false)"),
    ("audio_on_off_in_matrix.yaml", 7, "matrix.generate_audio_switch[1]: expected true or false, got the text 'off' (text is taken as a boolean only when it is true or false) (in job generate_audio_switch=off)"),
    ("aspect_ratio_969.yaml", 6, "params.aspect_ratio: expected an aspect ratio like \"16:9\", got 969 (quote it: aspect_ratio: \"16:9\")"),
    ("surrogate_in_prompt.yaml", 5, "params.prompt: holds a lone surrogate (a \\ud800-\\udfff escape), which is not text"),
    ("thinking_off.yaml", 6, "params.thinking_type: 'off' is not one of disabled, enabled (pixverse-v5.6)"),
    ("prompt_not_text.yaml", 5, "params.prompt: expected a string, got [1]; it is a list, not text: join its items, "
                                "| join(', ') (in job seed=1)"),
    ("size_not_a_size.yaml", 6, "params.size: expected a size like \"1365x768\" or a ratio like \"16:9\", got 'big'"),
    ("sweep_param_error.yaml", 12, "sweeps[1].params.quality: '2160p' is not one of 360p, 540p, 720p, 1080p (pixverse-v5.6) (in job sharp/job)"),
    ("several_errors.yaml", 5, "params.prompt: 'styel' is undefined"),
    ("several_errors.yaml", 7, "params.duration: 10 is too large: 1080p allows at most 8 s (in 2 jobs, e.g. style=anime)"),
    ("several_errors.yaml", 10, "output: renders an absolute path"),
]


@pytest.mark.parametrize(("fixture", "line", "message"), INVALID_CASES, ids=[f"{c[0]}:{c[1]}" for c in INVALID_CASES])
def test_invalid_manifest_is_reported_with_file_and_line(
    capsys: pytest.CaptureFixture[str], fixture: str, line: int, message: str
) -> None:
    path = PLAN_INVALID / fixture
    code, out, err = run_cli(capsys, "validate", str(path))
    assert code == 2
    assert out == ""
    errors = [x for x in err.splitlines() if x.startswith("error: ")]
    assert errors, err
    assert all(x.startswith(f"error: {path}:") for x in errors), err
    assert any(x.startswith(f"error: {path}:{line}:") and message in x for x in errors), err
    assert "Traceback" not in err


def test_every_plan_invalid_fixture_is_in_the_table() -> None:
    assert {p.name for p in PLAN_INVALID.glob("*.yaml")} == {c[0] for c in INVALID_CASES}
    assert len({c[0] for c in INVALID_CASES}) >= 25


def test_several_errors_are_reported_together_and_counted(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_cli(capsys, "plan", str(PLAN_INVALID / "several_errors.yaml"))
    assert code == 2
    lines = err.splitlines()
    assert [x.split(":")[2] for x in lines if x.startswith("error: ")] == ["5", "7", "10"]
    assert lines[-1] == "3 errors; nothing was run"


def test_more_errors_than_are_listed_are_counted_all(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """Past the first 20, errors are counted, not listed; the count is every one, and the line saying so is no
    error of its own (no `error:` label, not in the JSON end event's errors)."""
    path = tmp_path / "big.yaml"
    path.write_text(HEAD + 'provider: sim\nparams:\n  prompt: "a fox {{ duration }}"\n'
                    "matrix:\n  duration: {range: [11, 40]}\n", encoding="utf-8")
    code, _, err = run_cli(capsys, "validate", str(path))
    assert code == 2
    lines = err.splitlines()
    assert len([x for x in lines if x.startswith("error: ")]) == 20
    assert lines[-2:] == ["... and 10 more errors, not listed", "30 errors; nothing was run"], lines[-3:]
    code, out, _ = run_cli(capsys, "run", str(path), "--json")
    end = json.loads(out.splitlines()[-1])
    assert code == 2 and len(end["errors"]) == 20 and end["errors_not_listed"] == 10, end
    assert not any("more errors" in e for e in end["errors"])


def test_validate_as_a_process_exits_2_with_the_error_on_stderr() -> None:
    gridrun = Path(sys.executable).parent / "gridrun"
    cmd = [str(gridrun)] if gridrun.exists() else [sys.executable, "-m", "runner.cli"]
    bad = subprocess.run([*cmd, "validate", "output_collision.yaml"], cwd=PLAN_INVALID, capture_output=True,
                         text=True, check=False, env={**os.environ, "COLUMNS": "300"})
    assert bad.returncode == 2
    assert bad.stdout == ""
    assert bad.stderr.startswith("error: output_collision.yaml:9:1: output: jobs 'style=anime,seed=1' and ")
    assert "Traceback" not in bad.stderr
    good = subprocess.run([*cmd, "validate", str(MANIFESTS / "quality-ab.yaml")], capture_output=True, text=True,
                          check=False)
    assert good.returncode == 0, good.stderr
    assert "valid — 8 jobs, $4.40 estimated" in good.stdout


def test_text_that_looks_like_an_emoji_code_is_printed_as_written(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # ":100:" in "m.yaml:100:3" and ":fire:" in a prompt are rich emoji codes: printed verbatim, not as emoji
    filler = "".join(f"# note {i}\n" for i in range(7, 100))
    m = write(tmp_path / "m.yaml", 'provider: sim\nparams:\n  prompt: "a fox :fire: at :smile:"\n' + filler +
              "  quality: 999p\n", head=HEAD)
    code, _, err = run_cli(capsys, "validate", str(m))
    assert code == 2
    assert f"{m}:100:3: params.quality: '999p' is not one of" in err
    ok = write(tmp_path / "ok.yaml", 'provider: sim\nparams:\n  prompt: "a fox :fire: at :smile:"\n', head=HEAD)
    code, out, _ = run_cli(capsys, "plan", str(ok), "--explain")
    assert code == 0
    assert "a fox :fire: at :smile:" in out


def test_a_format_width_of_gigabytes_is_refused_before_it_is_made(tmp_path: Path) -> None:
    """validate grew to 9.8 GB on this prompt; it is now an error at once, within a 1 GB address space."""
    import resource

    gridrun = Path(sys.executable).parent / "gridrun"
    cmd = [str(gridrun)] if gridrun.exists() else [sys.executable, "-m", "runner.cli"]
    write(tmp_path / "wide.yaml", head=HEAD, body="output: \"{{ key }}.mp4\"\n"
          "params:\n  prompt: \"{{ '{:>9999999999}'.format(1) }}\"\n")

    def small() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))

    done = subprocess.run([*cmd, "validate", "wide.yaml"], cwd=tmp_path, capture_output=True, text=True, check=False,
                          timeout=60, preexec_fn=small, env={**os.environ, "COLUMNS": "300"})
    assert done.returncode == 2
    assert done.stderr.startswith("error: wide.yaml:6:3: params.prompt: a format width of 9,999,999,999 would make "
                                  "a string that long; a template makes at most 10,000,000"), done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize(("body", "error"), [
    ("vars:\n  deep: " + "[" * 5000 + "]" * 5000 + "\n",
     ":5:107: vars.deep[0]…[0] (100 levels): nested more than 100 levels deep; a manifest needs a handful"),
    ("params:\n  prompt: |\n" + "    a fox running through fresh snow\n" * 30_000,
     (": the file is 1,110,062 bytes, and a manifest is at most 1,000,000: put long lists of values in a data file "
      "(matrix: {prompt: {file: prompts.txt}})")),
])
def test_a_manifest_too_deep_or_too_large_is_one_located_error(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                                               body: str, error: str) -> None:
    """Deep nesting ended in a RecursionError traceback, and 5 MB took 23 s to refuse."""
    path = write(tmp_path / "big.yaml", head=HEAD, body=body)
    code, out, err = run_cli(capsys, "validate", str(path))
    assert (code, out) == (2, "")
    assert err == f"error: {path}{error}\n"


def test_a_number_too_large_for_a_float_is_a_located_error(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """A budget of 400 nines was an OverflowError traceback."""
    path = write(tmp_path / "big.yaml", head=HEAD, body="params:\n  prompt: a fox\nrun:\n  budget_usd: " + "9" * 400 + "\n")
    code, out, err = run_cli(capsys, "validate", str(path))
    assert (code, out) == (2, "")
    assert err.startswith(f"error: {path}:7:3: run.budget_usd: expected a number from 0 to 1000000000, got 999"), err


@pytest.mark.parametrize(("prompt", "problem"), [
    ("{% for i in range(100000) %}{{ 'x' * 9999999 }}{% endfor %}",
     "the template would write more than 10,000,000 characters (loops writing long strings?)"),
    ("{{ big ~ big ~ big }}", "joining values with ~ would make 19,999,998 characters; a template makes at most 10,000,000"),
])
def test_a_template_writing_gigabytes_is_refused_as_it_writes(tmp_path: Path, prompt: str, problem: str) -> None:
    """A loop writing pieces each under the limit, or a ~ join, grew without bound; each is now an error at its
    place, within a 1 GB address space."""
    import resource

    gridrun = Path(sys.executable).parent / "gridrun"
    cmd = [str(gridrun)] if gridrun.exists() else [sys.executable, "-m", "runner.cli"]
    write(tmp_path / "long.yaml", head=HEAD, body="output: \"{{ key }}.mp4\"\nvars:\n  big: \"{{ 'x' * 9999999 }}\"\n"
          f"params:\n  prompt: \"{prompt}\"\n")

    def small() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))

    done = subprocess.run([*cmd, "validate", "long.yaml"], cwd=tmp_path, capture_output=True, text=True, check=False,
                          timeout=60, preexec_fn=small, env={**os.environ, "COLUMNS": "300"})
    assert done.returncode == 2
    assert done.stderr.startswith(f"error: long.yaml:8:3: params.prompt: {problem}"), done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize(("vars_", "prompt", "what"), [
    ("", "a red fox, {{ tags | map('upper') }}", "a generator object"),
    ("", "a red fox, {{ joiner() }}", "a Joiner object"),
    ("", "a red fox, {{ tags | map('lower') | trim }}", "a generator object"),  # made text by a filter itself
    ("", "a red fox, {{ tags | reverse | lower }}", "a list_reverseiterator object"),
])
def test_an_object_written_inside_a_prompt_is_refused_at_its_field(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                                                 vars_: str, prompt: str, what: str) -> None:
    """Its text held a memory address: a new request hash every process, so every run paid for the job again."""
    path = write(tmp_path / "m.yaml", head=HEAD, body=f"vars:\n  tags: [snow, dusk]\n{vars_}params:\n  prompt: \"{prompt}\"\n")
    line = 7 + bool(vars_)
    code, out, err = run_cli(capsys, "plan", str(path))
    assert (code, out) == (2, "")
    assert err.startswith(f"error: {path}:{line}:3: params.prompt: the template writes {what} into the text, which "
                          "is not a value"), err
    assert "add | join(', ') or | list" in err and "0x" not in err


def test_a_method_a_var_makes_uncalled_is_refused_at_the_var(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """`up: "{{ tags.copy }}"` is the method, not a list: refused where it is made, with the call to write."""
    path = write(tmp_path / "m.yaml", head=HEAD, body="vars:\n  tags: [snow, dusk]\n  up: \"{{ tags.copy }}\"\n"
                                                      "params:\n  prompt: \"a red fox, {{ up }}\"\n")
    code, out, err = run_cli(capsys, "plan", str(path))
    assert (code, out) == (2, "")
    assert err.startswith(f"error: {path}:6:3: vars.up: the template writes the method copy of a list, not its result: "
                          "call it ({{ tags.copy() }})"), err
    assert "0x" not in err


@pytest.mark.parametrize(("up", "use", "what"), [
    ("{{ tags | map('upper') }}", "up", "a generator object"),
    ("{{ [tags | map('upper')] }}", "up[0]", "a list holding a generator object"),
    ("{{ {'t': tags | map('upper')} }}", "up.t", "a dict holding a generator object"),
    ("{{ [1, {'t': (2, tags | select)}] }}", "up[1].t[1]", "a list holding a generator object"),
])
def test_a_var_that_makes_a_generator_is_refused_at_the_var(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                                            up: str, use: str, what: str) -> None:
    """It was made once for all jobs: the first read it, and the second job's prompt was "a grey fox, ", even when
    the generator was inside a list or dict."""
    path = write(tmp_path / "m.yaml", head=HEAD, body=f"vars:\n  tags: [snow, dusk]\n  up: \"{up}\"\n"
                 f"params:\n  prompt: \"a {{{{ s }}}} fox, {{{{ {use} | join(', ') }}}}\"\nmatrix:\n  s: [red, grey]\n")
    code, out, err = run_cli(capsys, "plan", str(path))
    assert (code, out) == (2, "")
    assert err.startswith(f"error: {path}:6:3: vars.up: the template makes {what}, which is read once and "
                          "then empty (a second job or a second use would get nothing); add | list"), err


def test_a_var_holding_a_cycler_is_refused_at_the_var(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """Every job shared it: the prompts were a, b, c, a, each depending on the jobs rendered before it."""
    path = write(tmp_path / "m.yaml", head=HEAD, body="vars:\n  c: \"{{ cycler('a', 'b', 'c') }}\"\n"
                 "params:\n  prompt: \"a fox {{ c.next() }} (seed {{ seed }})\"\nmatrix:\n  seed: [1, 2, 3, 4]\n")
    code, out, err = run_cli(capsys, "validate", str(path))
    assert (code, out) == (2, "")
    assert err.startswith(f"error: {path}:5:3: vars.c: the template makes a Cycler object, whose state every job "
                          "would share"), err


def test_a_list_or_dict_written_inside_a_prompt_is_its_text_every_time(capsys: pytest.CaptureFixture[str],
                                                                      tmp_path: Path) -> None:
    path = write(tmp_path / "m.yaml", head=HEAD, body="vars:\n  tags: [snow, dusk]\nparams:\n"
                 "  prompt: \"a fox, {{ tags }} {{ {'k': tags | map('upper') | list} }} {{ (1, none) }}\"\n")
    code, out, _ = run_cli(capsys, "plan", str(path), "--json")
    assert code == 0
    assert json.loads(out)["jobs"][0]["params"]["prompt"] == "a fox, ['snow', 'dusk'] {'k': ['SNOW', 'DUSK']} (1, None)"


@pytest.mark.parametrize(("knob", "error"), [
    ("cost_factor: .nan", "sim.cost_factor: cost_factor must be a finite number, got nan"),
    ("url_ttl: .inf", "sim.url_ttl: url_ttl must be a finite number, got inf"),
    ("idempotency_window: .nan",
     "sim.idempotency_window: idempotency_window must be a finite number of seconds > 0 or null, got nan"),
    ("concurrency: .inf", "sim.concurrency: concurrency must be a finite number, got inf"),
    ("script: [{fault: slow, delay: .nan}]", "sim.script[0]: script: delay must be a finite number ≥ 0 or null, got nan"),
])
def test_a_sim_knob_that_is_no_finite_number_is_refused_before_anything_is_sent(
        capsys: pytest.CaptureFixture[str], tmp_path: Path, knob: str, error: str) -> None:
    """NaN passed the knobs' `< 0` tests: the run sent a create, then died on the first reply, on every run."""
    m = write(tmp_path / "s.yaml", head=HEAD, body=f"provider: sim\nparams:\n  prompt: x\nsim: {{{knob}}}\n")
    code, out, err = run_cli(capsys, "validate", str(m))
    assert (code, out) == (2, "")
    column = 16 if knob.startswith("script") else 7  # a fault rule at its own place in the script
    assert err.startswith(f"error: {m}:7:{column}: {error}\n"), err
    assert main(["run", str(m), "--no-report"]) == 2
    assert not (tmp_path / ".gridrun" / "sim-world.jsonl").exists()


@pytest.mark.parametrize(("knob", "error"), [
    ("balance: 1e308", "sim.balance: balance must be at most 1,000,000,000 USD, got 1e+308"),
    ("cost_factor: 1e308", "sim.cost_factor: cost_factor must be at most 1,000,000, got 1e+308"),
    ("cancel_charge: 1e308", "sim.cancel_charge: cancel_charge must be between 0 and 1, got 1e+308"),
    ("render_time: 1e308", "sim.render_time: render_time must be at most 86,400 seconds (a day), got 1e+308"),
    ("seed: 1e308", "sim.seed: seed must be a whole number from -2**63 to 2**63 - 1, got a number of 309 digits"),
    ("error_statuses: []",
     "sim.error_statuses: error_statuses must be a list of HTTP statuses (100 to 599), got []"),
])
def test_a_sim_knob_of_a_huge_finite_figure_is_refused_before_anything_is_sent(
        capsys: pytest.CaptureFixture[str], tmp_path: Path, knob: str, error: str) -> None:
    """1e308 passed the finite checks: balance and cost_factor overflowed the sim's micro-dollars after the
    creates were sent, on every run; a render time of it made a run that never ended."""
    m = write(tmp_path / "s.yaml", head=HEAD, body=f"provider: sim\nparams:\n  prompt: x\nsim: {{{knob}}}\n")
    code, out, err = run_cli(capsys, "validate", str(m))
    assert (code, out) == (2, "")
    assert err.startswith(f"error: {m}:7:7: {error}\n"), err
    assert main(["run", str(m), "--no-report"]) == 2
    assert "Traceback" not in capsys.readouterr().err
    assert not (tmp_path / ".gridrun" / "sim-world.jsonl").exists()


def test_a_template_making_too_much_in_all_is_refused_at_its_field(capsys: pytest.CaptureFixture[str],
                                                                     tmp_path: Path) -> None:
    """Strings each within what one operation makes, too many in all for one render (100,000 x 9 MB planned to
    fill the machine's memory): refused at the field's line, before anything is sent."""
    m = write(tmp_path / "m.yaml", head=HEAD, body="provider: sim\noutput: x.mp4\nparams:\n"
              "  prompt: \"a fox {{ (['x' * 9000000] * 100000) | map('upper') | list | length }}\"\n")
    code, out, err = run_cli(capsys, "plan", str(m))
    assert (code, out) == (2, "")
    assert err.startswith(f"error: {m}:7:3: params.prompt: the template would make more than 50,000,000 characters "
                          "and list items in all"), err
    assert "Traceback" not in err
    assert main(["run", str(m), "--no-report"]) == 2
    assert not (tmp_path / ".gridrun" / "sim-world.jsonl").exists()


@pytest.mark.parametrize(("knob", "column", "error"), [
    ('failure_code: "X\\e]52;c;cm0gLXJmIH4K\\e\\\\\\e[2J"', 7,
     "sim.failure_code: failure_code must not hold a control or invisible character, got "
     "'X\\x1b]52;c;cm0gLXJmIH4K\\x1b\\\\\\x1b[2J'"),
    ('failure_code: "FLAGGED \\u202egnp.xof"', 7,
     "sim.failure_code: failure_code must not hold a control or invisible character, got 'FLAGGED \\u202egnp.xof'"),
    ('script: [{fault: job_failure, p: 1, code: "X\\e]0;PWNED\\a"}]', 16,
     "sim.script[0]: script: code must not hold a control or invisible character, got 'X\\x1b]0;PWNED\\x07'"),
])
def test_a_sim_failure_code_holding_a_control_character_is_refused_at_its_field(
        capsys: pytest.CaptureFixture[str], tmp_path: Path, knob: str, column: int, error: str) -> None:
    """The error code the simulator gives failed videos is shown by `run` and `status`: an ESC sequence in it (a
    clipboard write, a window title, a cleared screen) or a character reversing the line is refused where the
    manifest sets it, before anything is sent."""
    m = write(tmp_path / "s.yaml", head=HEAD, body=f"provider: sim\nparams:\n  prompt: x\nsim: {{{knob}}}\n")
    code, out, err = run_cli(capsys, "validate", str(m))
    assert (code, out) == (2, "")
    assert err.startswith(f"error: {m}:7:{column}: {error}\n"), err
    assert "\x1b" not in err and "\u202e" not in err
    assert main(["run", str(m), "--no-report"]) == 2
    assert not (tmp_path / ".gridrun" / "sim-world.jsonl").exists()


@pytest.mark.parametrize(("knobs", "column", "error"), [
    ("render_time: 40000, time_scale: 3", 27,
     ("sim.time_scale: render_time × time_scale, a render's mean time, must be at most 86,400 seconds (a day), got "
      "40000.0 × 3.0 = 120,000 seconds: lower one of them")),
    ("time_scale: 1000000", 7,  # over the default render_time, 2 s
     ("sim.time_scale: render_time × time_scale, a render's mean time, must be at most 86,400 seconds (a day), got "
      "2.0 × 1000000.0 = 2,000,000 seconds: lower one of them")),
    ("time_scale: 50000, jitter: 0, render_time: 2", 37,
     ("sim.render_time: render_time × time_scale, a render's mean time, must be at most 86,400 seconds (a day), got "
      "2.0 × 50000.0 = 100,000 seconds: lower one of them")),
])
def test_a_render_time_scaled_past_a_day_is_refused_at_the_later_of_its_two_knobs_before_anything_is_sent(
        capsys: pytest.CaptureFixture[str], tmp_path: Path, knobs: str, column: int, error: str) -> None:
    """render_time and time_scale each within their bounds multiplied into a render of up to 2.7 millennia: the
    run sent its creates and waited on them for ever."""
    m = write(tmp_path / "s.yaml", head=HEAD, body=f"provider: sim\nparams:\n  prompt: x\nsim: {{{knobs}}}\n")
    code, out, err = run_cli(capsys, "validate", str(m))
    assert (code, out) == (2, "")
    assert err.startswith(f"error: {m}:7:{column}: {error}\n"), err
    assert main(["run", str(m), "--no-report"]) == 2
    assert "Traceback" not in capsys.readouterr().err
    assert not (tmp_path / ".gridrun" / "sim-world.jsonl").exists()


def test_a_time_scale_past_what_the_default_render_time_allows_is_judged_with_the_manifests_render_time(
        capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """Each knob is checked alone over the defaults, where time_scale 1000000 makes a 2 s render last 23 days; with
    the manifest's render_time of 0.05 s it makes one of 14 hours, which is fine."""
    m = write(tmp_path / "s.yaml", head=HEAD,
              body="provider: sim\nparams:\n  prompt: x\nsim: {time_scale: 1000000, render_time: 0.05}\n")
    code, _, err = run_cli(capsys, "validate", str(m))
    assert (code, err) == (0, "")


# --- gridrun plan on the examples --------------------------------------------------------------

EXAMPLES = sorted(p.name for p in MANIFESTS.glob("*.yaml"))


@pytest.mark.parametrize("name", EXAMPLES)
def test_every_example_plans_cleanly(capsys: pytest.CaptureFixture[str], examples: Path, name: str) -> None:
    code, out, err = run_cli(capsys, "plan", str(examples / name))
    assert code == 0, err
    # the end frame is Lumenfall's passthrough to Replicate alone: said, and the plan made all the same
    passthrough = (f"warning: {examples / name}:15:36: matrix.include[0].last_frame_image: is honoured only when the "
                   "gateway routes the request to replicate; routed elsewhere, the video is rendered (and billed) "
                   "without it\n")
    assert err == (passthrough if name == "image-to-video.yaml" else "")
    lines = out.splitlines()
    assert " — sim / pixverse-v5.6 — " in lines[0] and lines[0].endswith(" jobs")
    assert any(x.startswith("total: ") for x in lines)
    table = 2 if lines[1].startswith("  ") and " key " not in lines[1] else 1  # after the description, if any
    assert " key " in lines[table] and " cost" in lines[table]


def test_demo_plan_lists_every_job_with_size_duration_and_cost(capsys: pytest.CaptureFixture[str], examples: Path) -> None:
    code, out, _ = run_cli(capsys, "plan", str(examples / "demo.yaml"))
    assert code == 0
    assert out.splitlines()[0] == "demo — sim / pixverse-v5.6 — 12 jobs"
    rows = [x for x in out.splitlines() if "style=" in x]
    assert len(rows) == 12
    assert "style=anime,seed=1" in rows[0] and "960x540" in rows[0] and "$0.35" in rows[0]
    assert "total: 12 × 960x540 5s at $0.35 = $4.20 → $4.20 for 12 jobs" in out
    assert "budget: $5.00 (fits: this run counts $4.20 against it, for all 12 jobs)" in out


def test_explain_shows_origins_exclusions_and_sources(capsys: pytest.CaptureFixture[str], examples: Path) -> None:
    code, out, _ = run_cli(capsys, "plan", str(examples / "zip-pairs.yaml"), "--explain")
    assert code == 0
    assert "excluded: 1 combination (--explain lists it)" in out
    assert "where each parameter came from" in out
    assert "    negative_prompt: params.negative_prompt (template)" in out
    assert "    style: matrix" in out
    assert "    duration: default (sim capability data)" in out
    assert "style=anime,subject=a cat on a windowsill,avoid=dogs  ← product" in out
    assert '    prompt = "a cat on a windowsill, anime style"   (params.prompt (template))' in out
    assert "    quality = 360p   (params.quality)" in out
    assert "removed by exclude" in out
    assert "    style=clay, subject=a rocket launch, avoid=clouds   ← exclude 1" in out

    code, out, _ = run_cli(capsys, "plan", str(examples / "image-to-video.yaml"), "--explain")
    assert "motion=gentle camera push-in  ← product" in out
    assert "motion=day turns to night,last_frame_image=assets/moon.png  ← include 1" in out
    assert "    last_frame_image: include 1" in out


def test_explain_names_sweeps(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = write(tmp_path / "s.yaml", head=HEAD, body="""\
        params:
          prompt: "a fox, {{ style }} style"
        sweeps:
          - name: styles
            matrix:
              style: [anime, clay]
              exclude:
                - style: clay
              include:
                - style: comic
          - name: hd
            vars:
              style: noir
            params:
              quality: 1080p
        """)
    code, out, _ = run_cli(capsys, "plan", str(path), "--explain")
    assert code == 0
    assert "styles/style=anime  ← sweep styles: product" in out
    assert "styles/style=comic  ← sweep styles: include 1" in out
    assert "hd/job  ← sweep hd: single" in out
    assert "    quality = 1080p   (sweeps[1].params.quality)" in out
    assert "    style = comic   (sweep styles: include 1)" in out
    assert "    sweep styles: style=clay   ← exclude 1" in out


def test_explain_and_json_name_the_default_of_a_null_parameter(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = write(tmp_path / "n.yaml", head=HEAD, body="""\
        params:
          prompt: "x"
          quality: 540p
          duration: null
        """)
    code, out, _ = run_cli(capsys, "plan", str(path), "--explain")
    assert code == 0
    assert "    duration = 5   (default (sim capability data; null in params.duration))" in out
    code, out, _ = run_cli(capsys, "plan", str(path), "--json")
    assert json.loads(out)["jobs"][0]["sources"]["duration"] == "default (sim capability data; null in params.duration)"


def test_a_large_plan_is_summarised(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = write(tmp_path / "big.yaml", head=HEAD, body="""\
        params:
          prompt: "a fox, take {{ take }}"
        matrix:
          take: {range: [1, 300]}
          seed: {range: [1, 5]}
        """)
    code, out, err = run_cli(capsys, "plan", str(path))
    assert code == 2 and "above the cap of 1,000" in err
    code, out, _ = run_cli(capsys, "plan", str(path), "--max-jobs", "1500", "--explain")
    assert code == 0
    assert out.splitlines()[0] == "fox — sim / pixverse-v5.6 — 1,500 jobs"
    assert "1,470 more jobs" in out and "1,470 jobs not listed; --all lists every one" in out
    assert "… 1,470 more jobs (--all explains every one)" in out
    assert "total: 1,500 × 960x540 5s at $0.35 = $525.00" in out
    assert len(out.splitlines()) < 500
    assert "take=300,seed=5" in out
    code, out, _ = run_cli(capsys, "plan", str(path), "--max-jobs", "1500", "--all")
    assert sum("take=" in x for x in out.splitlines()) == 1500


def test_plan_all_draws_its_rows_without_laying_out_each_cell(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    # rich lays out a table's cells one by one, each through a Padding (hundreds of microseconds each): the rows of
    # a plan listed whole are drawn as rich draws them, not through it, and the header alone goes through rich
    from rich.padding import Padding

    drawn = []
    draw = Padding.__rich_console__
    monkeypatch.setattr(Padding, "__rich_console__", lambda self, *a: drawn.append(self) or draw(self, *a))
    path = write(tmp_path / "m.yaml", head=HEAD, body="""\
        params:
          prompt: "a fox, take {{ take }}"
        matrix:
          take: {range: [1, 100]}
          seed: {range: [1, 3]}
        """)
    code, out, _ = run_cli(capsys, "plan", str(path), "--all")
    assert code == 0
    lines = out.splitlines()
    assert lines[1].split() == ["#", "┃", "key", "┃", "take", "┃", "seed", "┃", "size", "┃", "s", "┃", "cost"]
    assert lines[3].split() == ["1", "│", "take=1,seed=1", "│", "1", "│", "1", "│", "960x540", "│", "5", "│", "$0.35"]
    assert lines[302].split() == ["300", "│", "take=100,seed=3", "│", "100", "│", "3", "│", "960x540", "│", "5", "│",
                                  "$0.35"]
    assert len(drawn) < 20  # the header's 7 cells, not 300 rows of 7


_CHARS = ["a", "Z", "7", "-", "=", "…", "é", "e\u0301", "漢", "🦊", "$", "[b]"]
# a cell of words, as most are; or of anything, spaces and tabs at its ends too
_WORDS = st.lists(st.lists(st.sampled_from(_CHARS), min_size=1, max_size=8).map("".join), max_size=3).map(" ".join)
_ANY = st.lists(st.sampled_from([*_CHARS, " ", "\t"]), max_size=30).map("".join)


@hypothesis.settings(max_examples=50, deadline=None)
@hypothesis.given(status=st.booleans(), values=st.integers(0, 3), width=st.integers(10, 140),
                  colour=st.booleans(), ascii_only=st.booleans(), words=st.booleans(), data=st.data())
def test_the_plan_table_is_drawn_as_rich_draws_it(status: bool, values: int, width: int, colour: bool,
                                                  ascii_only: bool, words: bool, data: st.DataObject) -> None:
    # whichever way a table is drawn (rows joined as rich would, or rich itself when a cell wraps, folds, is cut
    # or has spaces at an end), its text and its styles are those of rich's Table of the same columns and rows
    from rich.console import Console

    from runner.cli import _PlanTable

    columns: list[tuple[str, dict[str, Any]]] = [
        ("#", {"justify": "right", "style": "dim", "no_wrap": True}), ("key", {"overflow": "fold"}),
        *[(["take", "v[b]", "[bold]漢字[/bold]"][n], {"no_wrap": True, "overflow": "ellipsis", "max_width": 24}) for n in range(values)],
        ("size", {"no_wrap": True}), ("s", {"justify": "right", "no_wrap": True}),
        ("cost", {"justify": "right", "no_wrap": True}), *([("status", {"overflow": "fold"})] if status else []),
    ]
    cell = _WORDS if words else st.one_of(_WORDS, _ANY)
    if ascii_only:
        cell = cell.map(lambda x: x.encode("ascii", "ignore").decode())
    rows = data.draw(st.lists(st.lists(cell, min_size=len(columns), max_size=len(columns)), max_size=6))

    class File(io.StringIO):
        encoding = "ascii" if ascii_only else "utf-8"

    def drawn(renderable: Any) -> str:
        file = File()
        console = Console(file=file, width=width, force_terminal=colour, color_system="standard" if colour else None,
                          highlight=False, soft_wrap=True, emoji=False)
        console.print(renderable)
        return file.getvalue()

    table = _PlanTable(columns, rows)
    assert drawn(table) == drawn(table.table(rows))


def test_warnings_go_to_stderr(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = write(tmp_path / "w.yaml", head=HEAD, body="params:\n  prompt: a fox\n  motion: 0.5\n")
    code, out, err = run_cli(capsys, "plan", str(path))
    assert code == 0
    assert f"warning: {path}:6:3: params.motion: unknown parameter for pixverse-v5.6; passed through unchecked" in err
    assert "unknown parameter" not in out
    # the plan's JSON keeps its format's `field: message`
    code, out, _ = run_cli(capsys, "plan", str(path), "--json")
    assert code == 0
    assert json.loads(out)["warnings"] == ["params.motion: unknown parameter for pixverse-v5.6; passed through unchecked"]


@pytest.mark.parametrize("command", ["validate", "plan"])
def test_model_or_idempotency_key_under_params_is_warned_of_at_its_line_as_not_sent(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, command: str
) -> None:
    """gridrun writes both into every request itself: a value under `params:` is never sent, yet it makes part of the
    job's hash, as it always has: warned of at its line (not "passed through unchecked"), saying that changing or
    removing it pays again; not refused, which would leave the user only that way out."""
    path = write(tmp_path / "w.yaml", head=HEAD, body="""\
        params:
          prompt: a {{ animal }}
          idempotency_key: abc
          model: other-model
        sweeps:
          - name: older
            matrix: {animal: [cat, dog]}
            params: {model: pixverse-v5.5}
          - name: same
            matrix: {animal: [owl]}
        """)
    code, out, err = run_cli(capsys, command, str(path))
    assert code == 0 and "passed through" not in err, err
    assert f"warning: {path}:6:3: params.idempotency_key: not sent: gridrun sets each job's idempotency key itself" in err
    assert f"warning: {path}:7:3: params.model: not sent: gridrun sends the manifest's `model:` (pixverse-v5.6)" in err
    assert f"warning: {path}:11:14: sweeps[0].params.model: " in err, err
    assert "changing or removing it makes the jobs new ones, paid for again" in err, err


# --- plan JSON ---------------------------------------------------------------------------------

TOP_FIELDS = ["format", "manifest", "name", "provider", "model", "outputs_dir", "axes", "varying", "total_jobs",
              "total_usd", "total_micros", "budget_usd", "warnings", "jobs", "excluded", "run_usd", "run_micros",
              "against_state", "left_in_flight", "sent_elsewhere", "sent_with_another_key", "billed_above", "endpoint",
              "failure_retries", "refused_again", "live_run", "warnings_at"]
JOB_FIELDS = ["key", "sweep", "repeat", "values", "hash", "params", "size", "duration", "mode", "cost_usd",
              "cost_micros", "output", "origin", "sources", "status", "made_by_simulator_at"]


def test_plan_json_gives_each_warning_with_its_place_as_run_json_does(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """`warnings` keeps format /1's `field: message`, in which a data file's warning (`matrix.p`) names no file
    and no line; `warnings_at` gives each, in the same order, as standard error and `run --json` say it."""
    (tmp_path / "p.txt").write_text("#cinematic a fox\nfox\n", encoding="utf-8")
    m = tmp_path / "m.yaml"
    m.write_text("version: 1\nname: e\nprovider: sim\nmodel: pixverse-v5.6\n"
                 'params: {prompt: "{{ p }}", quality: 360p, duration: 5, motion: x}\n'
                 'matrix:\n  p: {file: p.txt}\noutput: "{{ p }}.mp4"\n', encoding="utf-8")
    code, out, _ = run_cli(capsys, "plan", str(m), "--json")
    doc = json.loads(out)
    assert code == 0 and len(doc["warnings"]) == len(doc["warnings_at"]) == 2, doc["warnings"]
    assert doc["warnings"][0].startswith("matrix.p: '#cinematic a fox' is skipped as a comment"), doc["warnings"]
    assert doc["warnings_at"] == [f"{tmp_path / 'p.txt'}:1:1: {doc['warnings'][0]}",
                                  f"{m}:5:57: {doc['warnings'][1]}"], doc["warnings_at"]
    code, _, err = run_cli(capsys, "plan", str(m))
    assert code == 0 and [line.removeprefix("warning: ") for line in err.splitlines()
                          if line.startswith("warning: ")] == doc["warnings_at"], err


def test_plan_json_is_the_documented_format(capsys: pytest.CaptureFixture[str], examples: Path) -> None:
    code, out, _ = run_cli(capsys, "plan", str(examples / "zip-pairs.yaml"), "--json")
    assert code == 0
    doc = json.loads(out)
    assert list(doc) == TOP_FIELDS
    assert doc["format"] == "gridrun.plan/1"
    assert (doc["name"], doc["provider"], doc["model"]) == ("zip-pairs", "sim", "pixverse-v5.6")
    assert doc["total_jobs"] == len(doc["jobs"]) == 5
    assert doc["total_micros"] == 1_750_000 and doc["total_usd"] == 1.75
    assert doc["axes"] == ["style", "subject", "avoid"]
    job = doc["jobs"][0]
    assert list(job) == JOB_FIELDS
    assert job["key"] == "style=anime,subject=a cat on a windowsill,avoid=dogs"
    assert job["values"] == {"style": "anime", "subject": "a cat on a windowsill", "avoid": "dogs"}
    assert job["params"]["negative_prompt"] == "dogs"
    assert (job["size"], job["duration"], job["mode"], job["cost_micros"]) == ("640x360", 5.0, "t2v", 350_000)
    assert job["output"] == "anime/a-cat-on-a-windowsill.mp4"
    assert job["status"] == "new" and job["origin"] == "product"
    assert len(job["hash"]) == 64
    assert doc["excluded"] == [
        {"sweep": None, "values": {"style": "clay", "subject": "a rocket launch", "avoid": "clouds"}, "exclude": 1}]
    documented = (ROOT / "README.md").read_text(encoding="utf-8").split("## Plan JSON", 1)[1]
    for name in TOP_FIELDS + JOB_FIELDS:
        assert f"`{name}`" in documented, name


def test_plan_says_the_most_failure_retries_could_add(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Failure retries are paid attempts no job's price counts: with run.failure_retries (or plan's
    --failure-retries, as `run` takes it) plan says the most they could add, each job sent failing every time,
    in text and in `plan --json`; with none, no line and null."""
    monkeypatch.setenv("COLUMNS", "400")
    body = ("params:\n  prompt: \"a fox {{ a }}\"\n  quality: 360p\n  duration: 5\nmatrix:\n  a: [1, 2, 3]\n")
    m = write(tmp_path / "f.yaml", body + "run:\n  failure_retries: 2\n", HEAD)
    price = api.plan(m).jobs[0].cost_micros
    code, out, _ = run_cli(capsys, "plan", str(m))
    from runner.jobs import usd_text

    said = (f"failure retries: up to 2 per job (run.failure_retries), not in the figures above: at most "
            f"{usd_text(6 * price)} more, should each of the 3 jobs a run sends fail every time")
    assert code == 0 and said in " ".join(out.split()), out
    doc = json.loads(run_cli(capsys, "plan", str(m), "--json")[1])
    assert doc["failure_retries"] == {"per_job": 2, "from": "run.failure_retries", "jobs": 3,
                                      "most_usd": round(6 * price / 1e6, 6), "most_micros": 6 * price}
    doc = json.loads(run_cli(capsys, "plan", str(m), "--json", "--failure-retries", "1")[1])
    assert doc["failure_retries"]["per_job"] == 1 and doc["failure_retries"]["most_micros"] == 3 * price
    assert doc["failure_retries"]["from"] == "--failure-retries"
    plain = write(tmp_path / "g.yaml", body, HEAD)
    code, out, _ = run_cli(capsys, "plan", str(plain))
    assert code == 0 and "failure retries" not in out, out
    assert json.loads(run_cli(capsys, "plan", str(plain), "--json")[1])["failure_retries"] is None
    assert json.loads(run_cli(capsys, "plan", str(m), "--json", "--failure-retries", "0")[1])["failure_retries"] is None


def test_plan_json_is_stable(capsys: pytest.CaptureFixture[str], examples: Path) -> None:
    first = run_cli(capsys, "plan", str(examples / "demo.yaml"), "--json")[1]
    again = run_cli(capsys, "plan", str(examples / "demo.yaml"), "--json")[1]
    assert first == again
    assert [j["key"] for j in json.loads(first)["jobs"]][:2] == ["style=anime,seed=1", "style=anime,seed=2"]


def test_plan_json_of_an_invalid_manifest_prints_its_errors_only(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_cli(capsys, "plan", str(PLAN_INVALID / "quality_enum.yaml"), "--json")
    assert code == 2 and set(json.loads(out)) == {"format", "manifest", "exit_code", "errors"}
    assert "'4k' is not one of" in err


# --- gridrun matrix ----------------------------------------------------------------------------

def test_matrix_json_of_a_bare_github_matrix(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = write(tmp_path / "matrix.yaml", """\
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
        """)
    code, out, _ = run_cli(capsys, "matrix", str(path), "--json")
    assert code == 0
    assert json.loads(out) == [
        {"fruit": "apple", "animal": "cat", "color": "pink", "shape": "circle"},
        {"fruit": "apple", "animal": "dog", "color": "green", "shape": "circle"},
        {"fruit": "pear", "animal": "cat", "color": "pink"},
        {"fruit": "pear", "animal": "dog", "color": "green"},
        {"fruit": "banana"},
        {"fruit": "banana", "animal": "cat"},
    ]
    code, out, _ = run_cli(capsys, "matrix", str(path))
    assert out.splitlines()[0] == "fruit=apple, animal=cat, color=pink, shape=circle"
    assert out.splitlines()[-1] == "6 combinations"


def test_matrix_of_a_manifest_with_sweeps(capsys: pytest.CaptureFixture[str], examples: Path) -> None:
    code, out, _ = run_cli(capsys, "matrix", str(examples / "zip-pairs.yaml"), "--json")
    assert code == 0
    rows = json.loads(out)
    assert len(rows) == 5 and rows[0] == {"style": "anime", "subject": "a cat on a windowsill", "avoid": "dogs"}


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        ("os: []\n", 1, "axis 'os' has no values; give at least one (GitHub rejects an empty vector)"),
        ("os: [linux]\nexclude:\n  - {arch: arm}\n", 3, "exclude key 'arch' does not match any axis of the matrix (axes: os)"),
        ("os: linux\n", 1, "axis 'os' must be a list of values, got the string 'linux'; write [linux] for one value"),
        ("include: []\n", 1, "a matrix needs at least one axis"),
    ],
)
def test_a_matrix_github_rejects_exits_2_with_a_clear_message(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, text: str, line: int, message: str
) -> None:
    path = write(tmp_path / "matrix.yaml", text)
    code, out, err = run_cli(capsys, "matrix", str(path), "--json")
    assert code == 2
    # standard output holds the error object, as `plan --json`'s: a script reading it reads JSON still
    refused = json.loads(out)
    assert refused["file"] == str(path) and refused["exit_code"] == 2 and len(refused["errors"]) == 1, refused
    assert refused["errors"][0].startswith(f"{path}:{line}:") and message in refused["errors"][0], refused
    assert f"{path}:{line}:" in err and message in err
    assert "Traceback" not in err


def test_validate_warns_when_the_plan_is_above_the_budget(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    m = write(tmp_path / "b.yaml", "params:\n  prompt: a fox {{ a }}\nmatrix:\n  a: [1, 2, 3]\nrun:\n  budget_usd: 0.5\n", HEAD)
    code, out, err = run_cli(capsys, "validate", str(m))
    assert code == 0 and "valid — 3 jobs, $1.05 estimated" in out
    assert "run.budget_usd: the 3 jobs to send cost $1.05, above the budget of $0.50: `gridrun run` would refuse" in err


def test_validate_says_one_job_above_the_budget_in_the_singular(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    m = write(tmp_path / "b.yaml", "params:\n  prompt: a fox\nrun:\n  budget_usd: 0.1\n", HEAD)
    code, _, err = run_cli(capsys, "validate", str(m))
    assert code == 0 and "run.budget_usd: the 1 job to send costs $0.35, above the budget of $0.10" in err, err


def test_validate_counts_only_the_jobs_a_run_would_send_against_the_budget(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """After a first run, the jobs it finished cost nothing: one more job fits a budget the whole plan passes."""
    from runner import api

    m = write(tmp_path / "b.yaml", "params:\n  prompt: a fox {{ a }}\nmatrix:\n  a: [1, 2]\nrun:\n  budget_usd: 0.8\n"
              "sim: {render_time: 0.1}\n", HEAD)
    assert api.run(m, report=False).exit_code == 0
    m.write_text(m.read_text().replace("a: [1, 2]", "a: [1, 2, 3]"))
    code, _, err = run_cli(capsys, "validate", str(m))
    assert code == 0 and "budget" not in err


@pytest.mark.parametrize(("budget", "fits"), [("0.70", True), ("0.699999", False)], ids=["exactly", "a-micro-less"])
def test_plan_and_run_agree_on_a_budget_the_plan_costs_exactly(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], budget: str, fits: bool
) -> None:
    """A plan that costs exactly its budget fits it: `plan` says so and `run` spends it all; a micro-dollar less
    and `plan` says it exceeds and `run` refuses (exit 3), nothing sent."""
    from runner import api
    from runner.errors import NotRecordedError

    m = write(tmp_path / "b.yaml", f"params:\n  prompt: a fox {{{{ a }}}}\nmatrix:\n  a: [1, 2]\nrun:\n"
              f"  budget_usd: {budget}\nsim: {{render_time: 0.05}}\n", HEAD)
    code, out, _ = run_cli(capsys, "plan", str(m))
    assert code == 0 and (f"budget: ${budget} ({'fits' if fits else 'exceeds'}: this run counts $0.70 against it, "
                          "for all 2 jobs)\n") in out, out
    code, out, err = run_cli(capsys, "run", str(m), "--no-report")
    assert code == (0 if fits else 3), out + err
    if fits:
        assert [j.state for j in api.status(m).jobs] == ["done"] * 2
    else:
        with pytest.raises(NotRecordedError):  # nothing recorded, nothing sent
            api.status(m)


def test_plan_judges_the_budget_by_what_the_run_would_pay(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Jobs an earlier run finished cost this run nothing: the plan's budget line agrees with validate and run."""
    from runner import api

    m = write(tmp_path / "b.yaml", "params:\n  prompt: a fox {{ a }}\nmatrix:\n  a: [1, 2]\nrun:\n  budget_usd: 0.5\n"
              "sim: {render_time: 0.1}\n", HEAD)
    code, out, _ = run_cli(capsys, "plan", str(m))
    assert code == 0 and "budget: $0.50 (exceeds: this run counts $0.70 against it, for all 2 jobs)" in out
    doc = json.loads(run_cli(capsys, "plan", str(m), "--json")[1])
    assert (doc["total_micros"], doc["run_micros"], doc["run_usd"], doc["against_state"]) == (700_000, 700_000, 0.7, None)
    assert api.run(m, options={"budget_usd": 1}, report=False).exit_code == 0
    code, out, _ = run_cli(capsys, "plan", str(m))
    assert code == 0 and "exceeds" not in out
    assert "budget: $0.50 (fits: this run counts $0.00 against it, of $0.70 for all jobs)" in out
    assert "against state: 0 to submit ($0.00), 2 cached, 0 in flight, 0 settled" in out
    doc = json.loads(run_cli(capsys, "plan", str(m), "--json")[1])
    assert (doc["total_usd"], doc["budget_usd"], doc["run_micros"], doc["run_usd"]) == (0.7, 0.5, 0, 0)
    code, _, err = run_cli(capsys, "validate", str(m))
    assert code == 0 and "budget" not in err
    assert main(["run", str(m), "--no-report"]) == 0


def test_plan_counts_a_done_job_whose_file_is_missing_as_to_fetch_again(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Its video is downloaded again at no cost: not in flight, as its status and `gridrun status` say."""
    from runner import api

    m = write(tmp_path / "b.yaml", "params:\n  prompt: a fox {{ a }}\nmatrix:\n  a: [1, 2]\noutput: '{{ a }}.mp4'\n"
              "sim: {render_time: 0.1}\n", HEAD)
    assert api.run(m, report=False).exit_code == 0
    (tmp_path / "outputs" / "fox" / "1.mp4").unlink()
    code, out, _ = run_cli(capsys, "plan", str(m))
    assert code == 0 and "against state: 0 to submit ($0.00), 1 cached, 1 to fetch again ($0.00), 0 in flight, 0 settled" in out
    doc = json.loads(run_cli(capsys, "plan", str(m), "--json")[1])
    assert doc["against_state"] == {"to_submit": 0, "cached": 1, "to_fetch_again": 1, "in_flight": 0, "settled": 0,
                                    "retried": 0, "retried_cost_not_reported": 0,
                                    "fetched_first": {"jobs": 0, "usd": 0.0}, "settled_sent_by": {},
                                    "looked_up": 0, "unchecked": 0, "submitting": {"jobs": 0, "usd": 0.0},
                                    "made_by_simulator_elsewhere": 0, "sent_to_simulator_elsewhere": 0,
                                    "stale": [], "renamed": [],
                                    "changed": {"count": 0, "previous_run": 1, "changes": {}},
                                    "copies": {"videos": 0, "bytes": 0, "moved_aside": 0, "in_the_way": 0}}
    assert doc["run_micros"] == 0
    assert doc["jobs"][0]["status"] == "done, but its file is missing or altered: download again"
    assert api.status(m).counts["done"] == 2
    code, _, err = run_cli(capsys, "run", str(m), "--no-report")
    assert code == 0 and "1 to fetch again, 0 in flight" in err


def test_plan_and_run_warn_of_a_string_an_earlier_gridrun_read_otherwise(tmp_path: Path,
                                                                         capsys: pytest.CaptureFixture[str]) -> None:
    """An earlier gridrun folded the NEL to a space (YAML 1.1): the unchanged manifest's jobs are new, paid again.
    Told while the state's last run sent the old text: not with no state (nothing ran), nor once the new jobs ran."""
    text = ("vars:\n  scene: \"a fox running\x85through snow\"\nparams:\n  prompt: \"{{ scene }}\"\n"
            "sim: {render_time: 0.1}\n")
    m = write(tmp_path / "n.yaml", text, HEAD)
    said = (f"warning: {m}:5:3: vars.scene: holds a NEL (U+0085), which an earlier gridrun read as a line break (a "
            "space in a quoted string, the end of a plain one) and this one keeps as text")
    code, _, err = run_cli(capsys, "plan", str(m))
    assert code == 0 and "warning" not in err, err
    m.write_text(m.read_text(encoding="utf-8").replace("\x85", " "), encoding="utf-8")  # as read before
    code, _, err = run_cli(capsys, "run", str(m), "--no-report")
    assert code == 0, err
    m.write_text(m.read_text(encoding="utf-8").replace("running through", "running\x85through"), encoding="utf-8")
    code, out, err = run_cli(capsys, "plan", str(m))
    assert code == 0 and said in err and "1 to submit" in out, (out, err)
    code, _, err = run_cli(capsys, "validate", str(m))
    assert code == 0 and said in err, err
    doc = json.loads(run_cli(capsys, "plan", str(m), "--json")[1])
    assert [w.split(", which")[0] for w in doc["warnings"]] == ["vars.scene: holds a NEL (U+0085)"]
    assert doc["jobs"][0]["params"]["prompt"] == "a fox running\x85through snow"
    code, _, err = run_cli(capsys, "run", str(m), "--no-report")
    assert code == 0 and said in err, err
    for command in ("plan", "validate"):  # the new job is paid: nothing more is paid again for the NEL
        code, _, err = run_cli(capsys, command, str(m))
        assert code == 0 and "warning" not in err, (command, err)
    m.write_text(m.read_text(encoding="utf-8").replace("\x85", "\u2028"), encoding="utf-8")  # read the same before
    code, _, err = run_cli(capsys, "plan", str(m))
    assert code == 0 and "warning" not in err, err


def test_json_output_is_json_every_parser_reads(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """NaN and infinities (YAML's .nan, .inf) are not JSON: they are written as strings."""
    m = write(tmp_path / "n.yaml", "params:\n  prompt: a fox\nmatrix:\n  a: [.nan, .inf]\n", HEAD)
    code, out, _ = run_cli(capsys, "matrix", str(m), "--json")
    assert code == 0 and json.loads(out, parse_constant=lambda c: pytest.fail(f"{c} in JSON")) == [{"a": "nan"}, {"a": "inf"}]


def test_a_missing_required_parameter_is_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    m = write(tmp_path / "r.yaml", "params:\n  quality: 540p\n", HEAD)
    code, _, err = run_cli(capsys, "validate", str(m))
    assert code == 2 and "params: 'prompt' is required by pixverse-v5.6" in err


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    import runner

    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0 and capsys.readouterr().out.strip() == f"gridrun {runner.__version__}"


def test_an_unknown_http_stack_is_a_usage_error(monkeypatch: pytest.MonkeyPatch) -> None:
    from runner.errors import UsageError
    from runner.providers.transport import make_client

    monkeypatch.setenv("GRIDRUN_HTTP", "httpxx")
    with pytest.raises(UsageError, match="GRIDRUN_HTTP must be aiohttp \\(the default\\) or httpx, got 'httpxx'"):
        make_client("http://127.0.0.1:9/v1")


def test_plan_shows_the_description(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    m = write(tmp_path / "d.yaml", "description: Four [bold]styles[/bold]\nparams:\n  prompt: a fox\n", HEAD)
    code, out, _ = run_cli(capsys, "plan", str(m))
    assert code == 0 and "  Four [bold]styles[/bold]\n" in out


def test_status_given_a_file_for_the_state_folder_says_so(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    m = tmp_path / "m.yaml"
    m.write_text("version: 1\n")
    assert main(["status", "--state", str(m)]) == 2
    assert f"{m} is a file; the state is a folder" in capsys.readouterr().err


def _into_a_reader_that_stops(tmp_path: Path, manifest: str, *args: str, lines: int) -> int:
    """Run `gridrun ARGS M` with its output read for `lines` lines, then closed (`| head`); its exit code."""
    m = tmp_path / "m.yaml"
    m.write_text(manifest)
    root = Path(__file__).resolve().parents[1]
    proc = subprocess.Popen([sys.executable, "-m", "runner.cli", args[0], str(m), *args[1:]], stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, env={**os.environ, "PYTHONPATH": str(root)})
    assert proc.stdout is not None
    for _ in range(lines):
        assert proc.stdout.readline()
    proc.stdout.close()
    return proc.wait(timeout=120)


def test_plan_into_a_reader_that_stops_early_exits_0(tmp_path: Path) -> None:
    """`gridrun plan M --all | head -1`: the closed pipe ends the output, and is no error."""
    manifest = "version: 1\nname: big\nmodel: pixverse-v5.6\nparams: {prompt: 'a {{ a }}'}\nmatrix:\n  a: {range: [1, 800]}\n"
    assert _into_a_reader_that_stops(tmp_path, manifest, "plan", "--all", lines=1) == 0


def test_a_run_into_a_reader_that_stops_early_still_exits_with_its_own_code(tmp_path: Path) -> None:
    """`gridrun run M | true`: the run goes to its end, and every job failed, so exit 1."""
    manifest = ("version: 1\nname: f\nmodel: pixverse-v5.6\nparams: {prompt: 'a {{ s }}', quality: 360p}\n"
                "matrix: {s: [a, b]}\nsim: {render_time: 0.1, failure_rate: 1.0}\n")
    assert _into_a_reader_that_stops(tmp_path, manifest, "run", "--no-report", lines=0) == 1


def _set_demo_line(examples: Path, where: str, text: str) -> tuple[Path, int]:
    """The demo manifest with the value of its first `where:` line replaced by `text`, and that line's index."""
    m = examples / "demo.yaml"
    lines = m.read_text().splitlines()
    at = next(i for i, line in enumerate(lines) if line.strip().startswith(f"{where}:"))
    lines[at] = lines[at][: lines[at].index(":") + 1] + " " + text
    m.write_text("\n".join(lines) + "\n")
    return m, at


@pytest.mark.parametrize(("where", "text"), [
    ("prompt", '"x {{ 10 ** 5000 }}"'),
    ("subject", '"{{ 10 ** 5000 }}"'),                    # a var a prompt uses
    ("duration", '"{{ (10 ** 4000) * (10 ** 4000) }}"'),  # a number parameter
])
def test_a_template_making_a_huge_number_is_a_manifest_error_not_a_traceback(
    examples: Path, capsys: pytest.CaptureFixture[str], where: str, text: str
) -> None:
    m, at = _set_demo_line(examples, where, text)
    code, _, err = run_cli(capsys, "validate", str(m))
    assert code == 2 and "Traceback" not in err and f"demo.yaml:{at + 1}:" in err, err
    assert len(err) < 2000  # the number is not printed in full
    assert not (examples / ".gridrun").exists()


def test_a_run_that_cannot_reach_its_provider_says_why_and_what_to_run_next(
    examples: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    m = examples / "demo.yaml"
    m.write_text(m.read_text().replace("provider: sim", "provider: lumenfall"))
    monkeypatch.setenv("LUMENFALL_API_KEY", "lmnfl_test")
    monkeypatch.setenv("LUMENFALL_BASE_URL", "http://127.0.0.1:9/v1")  # nothing listens there
    code, _, err = run_cli(capsys, "run", str(m), "--no-report", "--retries", "0")
    assert code == 1
    assert "could not connect to 127.0.0.1:9 (Connection refused)" in err, err
    # every job met the same error: it is told once, with their number, under the run's last line (and, in a plain
    # log, once more at most: as the run met it)
    lines = err.splitlines()
    under = "\n".join(lines[max(i for i, line in enumerate(lines) if " | spent " in line) + 1:])
    assert under.count("could not connect") == 1 and " and 11 more jobs: never reached the provider" in under, err
    assert err.count("could not connect") <= 2, err
    assert err.splitlines()[-1] == (
        "the provider could not be reached for 12 jobs, left unsent: check its base URL and the network (the error "
        "above names the address), then: `gridrun run` sends the 12 jobs not sent ($4.20)"), err
    # `status` tells the jobs' one error once too, not once a job
    assert main(["status", str(m)]) == 0
    out = capsys.readouterr().out
    assert out.count("could not connect") == 1, out
    assert "planned style=anime,seed=1 and 11 more jobs: never reached the provider: POST /videos: could not" in out


@pytest.mark.parametrize("proxy", ["http://127.0.0.1:9", "socks5://127.0.0.1:9"])
def test_a_run_whose_proxy_cannot_be_used_names_the_proxy_in_what_to_check(
    examples: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, proxy: str
) -> None:
    """The requests go through the proxy the environment names (nothing listens there, or it is a socks proxy,
    which gridrun does not send through): the end line says to check the proxy, not only the base URL."""
    m = examples / "demo.yaml"
    m.write_text(m.read_text().replace("provider: sim", "provider: lumenfall"))
    monkeypatch.setenv("LUMENFALL_API_KEY", "lmnfl_test")
    monkeypatch.setenv("LUMENFALL_BASE_URL", "https://gateway.example/v1")
    for var in ("HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy", "NO_PROXY", "no_proxy", "https_proxy"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HTTPS_PROXY", proxy)
    code, _, err = run_cli(capsys, "run", str(m), "--no-report", "--retries", "0")
    assert code == 1, err
    last = " ".join(err.splitlines()[-1].split())
    scheme = proxy.split(":")[0]
    assert last.startswith("the provider could not be reached for 12 jobs, left unsent: check its base URL, the "
                           f"proxy {scheme}://127.0.0.1:9 (from HTTPS_PROXY) and the network"), err


@pytest.mark.parametrize(("where", "text"), [
    ("prompt", "{{ scene }}"),                  # read as a mapping
    ("prompt", "{{ scene }}, {{ style }} style"),  # a YAML syntax error after the mapping
    ("output", "{{ style }}.mp4"),
    ("style", "[anime, {{ x }} clay]"),         # in a flow list
])
def test_an_unquoted_template_gets_a_hint_to_quote_it(
    examples: Path, capsys: pytest.CaptureFixture[str], where: str, text: str
) -> None:
    m, at = _set_demo_line(examples, where, text)
    code, _, err = run_cli(capsys, "validate", str(m))
    assert code == 2 and f"demo.yaml:{at + 1}:" in err
    assert "a value that begins with a template must be quoted" in err, err


def test_no_quoting_hint_where_the_template_is_quoted(examples: Path, capsys: pytest.CaptureFixture[str]) -> None:
    m = examples / "demo.yaml"
    m.write_text(m.read_text() + "bogus: [1\n")
    code, _, err = run_cli(capsys, "validate", str(m))
    assert code == 2 and "invalid YAML" in err and "must be quoted" not in err


def test_no_quoting_hint_for_an_unclosed_list_before_a_quoted_template(
    examples: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`seed: [1, 2` fails on the next line, `output: "{{ style }}/seed-{{ seed }}.mp4"`: its template is quoted."""
    m, at = _set_demo_line(examples, "seed", "[1, 2")
    code, _, err = run_cli(capsys, "validate", str(m))
    assert code == 2 and f"demo.yaml:{at + 2}:" in err and "expected ',' or ']'" in err, err
    assert "must be quoted" not in err, err


def test_a_cap_given_by_the_flag_is_named_as_the_flags(examples: Path, capsys: pytest.CaptureFixture[str]) -> None:
    m = examples / "demo.yaml"
    m.write_text(m.read_text().replace("run:\n", "run:\n  max_jobs: 2000\n", 1))
    code, _, err = run_cli(capsys, "validate", str(m), "--max-jobs", "5")
    assert code == 2 and "above the cap of 5 (--max-jobs 5)" in err and "run.max_jobs:" not in err, err
    code, _, err = run_cli(capsys, "validate", str(m))
    assert code == 0, err


def test_matrix_of_a_manifest_missing_its_version_says_so(examples: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Not read as a bare matrix of axes named name, model, params...: one error, the missing version."""
    m = examples / "demo.yaml"
    m.write_text("\n".join(line for line in m.read_text().splitlines() if not line.startswith("version:")) + "\n")
    code, _, err = run_cli(capsys, "matrix", str(m))
    assert code == 2 and "version" in err and "axis" not in err, err


def test_a_refused_matrix_value_is_pointed_at_in_its_list(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """With thousands of values, the axis's line is no help: the error names the value's own line."""
    m = write(tmp_path / "m.yaml", head=HEAD, body="""\
        params:
          prompt: a fox
        matrix:
          seed: [1, 2]
          style:
            - anime
            - watercolor
            - clay
            - pastel
        """)
    code, _, err = run_cli(capsys, "validate", str(m))
    assert code == 2
    assert "m.yaml:10:7: matrix.style[1]: 'watercolor' is not one of" in err, err
    assert "m.yaml:12:7: matrix.style[3]: 'pastel' is not one of" in err, err


def test_a_bare_matrix_with_an_axis_named_matrix_is_still_a_bare_matrix(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path / "bare.yaml", head="", body="matrix: {range: [1, 3]}\nstyle: [a, b]\n")
    code, out, err = run_cli(capsys, "matrix", str(path))
    assert code == 0, err
    assert out.splitlines()[-1] == "6 combinations"


@pytest.mark.parametrize("as_json", [False, True])
def test_matrix_writes_each_combination_as_it_is_made(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                      as_json: bool) -> None:
    """An axis of ten million values took minutes and gigabytes: every row was made, kept, then printed. Each
    is now written before the next is made, so memory does not grow with the rows."""
    import io

    from runner import matrix

    made = [0]
    made_at_first_write: list[int] = []
    combination = matrix.Combination

    def counted(*args: Any, **kwargs: Any) -> Any:
        made[0] += 1
        return combination(*args, **kwargs)

    class Stdout(io.StringIO):
        def write(self, text: str) -> int:
            if text.strip("[") and not made_at_first_write:
                made_at_first_write.append(made[0])
            return super().write(text)

    path = write(tmp_path / "big.yaml", head="", body="a: {range: [1, 15000]}\nb: [x, y]\n")
    monkeypatch.setattr(matrix, "Combination", counted)
    stdout = Stdout()
    monkeypatch.setattr(sys, "stdout", stdout)
    assert main(["matrix", str(path), *(["--json"] if as_json else [])]) == 0
    assert made[0] == 30_000 and made_at_first_write[0] <= (10_000 if as_json else 1)  # JSON: in batches
    text = stdout.getvalue()
    if as_json:
        rows = json.loads(text)
        assert (len(rows), rows[0], rows[-1]) == (30_000, {"a": 1, "b": "x"}, {"a": 15000, "b": "y"})
    else:
        lines = text.splitlines()
        assert (lines[0], lines[-2], lines[-1]) == ("a=1, b=x", "a=15000, b=y", "30,000 combinations")


def test_matrix_into_a_reader_that_stops_ends_quietly(tmp_path: Path) -> None:
    gridrun = Path(sys.executable).parent / "gridrun"
    cmd = [str(gridrun)] if gridrun.exists() else [sys.executable, "-m", "runner.cli"]
    path = write(tmp_path / "matrix.yaml", "a: {range: [1, 200000]}\n")
    done = subprocess.run(f"{shlex.join(cmd)} matrix {shlex.quote(str(path))} | head -1", shell=True,
                          capture_output=True, text=True, check=False, timeout=60)
    assert done.stdout == "a=1\n"
    assert done.stderr == ""


def test_what_to_run_next_names_each_kind_of_unfinished_job_and_what_it_costs() -> None:
    from runner.cli import _next_steps

    assert _next_steps({"planned": 2, "submitted": 1}).text == (
        "`gridrun run` sends the 2 jobs not sent and collects the 1 job left in flight at no new cost")
    # expired: a plain run asks for fresh URLs (free), retry too, first, and renders them again (paid) only if none
    # is given: not "in flight"
    assert _next_steps({"expired": 3}).text == (
        "`gridrun run` asks again for the fresh URLs of 3 jobs whose URLs expired, at no cost; `gridrun retry` "
        "sends expired ones (a fresh URL asked for first, at no cost; a new render, paid, only if none is given) "
        "again")
    assert _next_steps({"expired": 1}).text == (
        "`gridrun run` asks again for the fresh URL of 1 job whose URL expired, at no cost; `gridrun retry` "
        "sends expired ones (a fresh URL asked for first, at no cost; a new render, paid, only if none is given) "
        "again")
    assert _next_steps({"expired": 3}).commands == ("gridrun run", "gridrun retry")
    # the retry that may pay twice is said, not given as a command to run: the dashboard is looked at first
    assert _next_steps({"failed": 1, "unknown": 1}) == (
        ("`gridrun retry` sends failed jobs again; `gridrun retry --unknown` sends again those of unknown outcome "
         "(may pay twice)"), ("gridrun retry",))
    assert _next_steps({"failed": 1, "rejected": 2, "expired": 1}).text.endswith(
        "`gridrun retry` sends failed jobs, rejected ones and expired ones (a fresh URL asked for first, at no cost; "
        "a new render, paid, only if none is given) again")


# A gateway without the balance endpoint (404): the run learns of the balance only from the create refused (402).
BALANCE = ("version: 1\nname: bal\nmodel: pixverse-v5.6\nparams:\n  prompt: \"a fox {{ take }}\"\n  quality: 360p\n"
           "matrix:\n  take: [1, 2, 3, 4, 5, 6]\nrun:\n  concurrency: 1\nsim:\n  render_time: 0.05\n  balance: 0.7\n"
           "  script: [{route: balance, p: 1, fault: not_found}]\n")


def test_a_run_the_provider_stops_on_its_account_says_to_fix_that_first(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Out of balance: `gridrun run` again would only be refused again; the end says the refusal once, with the
    fix a 402 takes, and the run ends `refused` (exit 1), not `failed`: no job failed. Once topped up, a plain
    `gridrun run` sends every job not made, the refused one too, and none twice."""
    from runner import api

    m = tmp_path / "m.yaml"
    m.write_text(BALANCE)
    assert main(["run", str(m), "--no-report"]) == 1
    end = capsys.readouterr().err.splitlines()[-1]
    assert end == ("stopped: the provider refused the account, its balance too low or its quota spent (HTTP 402, or a code saying so): top up the balance, "
                   "then: `gridrun run` sends the 4 jobs not sent ($1.40)"), end
    assert main(["status", str(m)]) == 0
    out = capsys.readouterr().out
    assert "bal run 1 (refused, " in out and "next: `gridrun run` sends the 4 jobs not sent" in out, out
    assert main(["status", str(m), "--runs"]) == 0
    assert " refused " in capsys.readouterr().out
    m.write_text(m.read_text().replace("balance: 0.7", "balance: 10"))
    assert main(["run", str(m), "--no-report"]) == 0
    assert all(j.state == "done" and j.attempts == 1 for j in api.status(m).jobs)


def test_a_run_whose_api_key_is_refused_says_to_set_a_valid_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A 401 takes another fix than a 402: a valid key, not a top-up."""
    m = tmp_path / "m.yaml"
    refusal = "script: [{route: create, nth: [3], fault: auth_failed}, "
    m.write_text(BALANCE.replace("balance: 0.7\n  script: [", refusal))
    assert main(["run", str(m), "--no-report"]) == 1
    end = capsys.readouterr().err.splitlines()[-1]
    assert end == ("stopped: the provider refused the API key (HTTP 401): set a valid API key, then: `gridrun run` "
                   "sends the 4 jobs not sent ($1.40)"), end


def test_a_run_whose_model_the_provider_does_not_know_says_to_check_the_model(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A model gridrun is told of (a capabilities file) but the provider does not know (a served simulator, which
    knows gridrun's own data only): the run stops at the first 404 MODEL_NOT_FOUND, naming the model and what to
    check."""
    from runner.sim.config import SimConfig
    from runner.sim.serve import running_server

    (tmp_path / "caps.yaml").write_text(
        "provider: sim\nmodels:\n  pixverse-v9:\n    params:\n      prompt: {type: string, required: true}\n"
        "      quality: {type: string, enum: [360p], default: 360p}\n"
        "    prices: {base_5s: {360p: 0.35}, duration_factor: {5: 1.0}}\n")
    m = tmp_path / "m.yaml"
    with running_server(SimConfig.from_dict({"render_time": 0.05, "jitter": 0.0})) as url:
        m.write_text(BALANCE.split("sim:\n", 1)[0].replace("model: pixverse-v5.6", "model: pixverse-v9\ncapabilities: "
                                                             f"[caps.yaml]\nbase_url: {url}"))
        assert main(["run", str(m), "--no-report"]) == 1
    end = capsys.readouterr().err.splitlines()[-1]
    assert end == ("stopped: the provider refused the model 'pixverse-v9', which it does not know (HTTP 404): check "
                   "the manifest's `model:` against the models the provider lists, then: `gridrun run` sends the 6 "
                   "jobs not sent ($2.10)"), end


def test_a_forced_run_stopped_by_the_balance_says_to_force_again_not_to_retry(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`--force` re-renders done jobs; those the refusal kept it from sending are left done, as they were. Nothing
    failed, so `gridrun retry` would send nothing: the next step is `--force` again."""
    m = tmp_path / "m.yaml"
    m.write_text(BALANCE.replace("balance: 0.7", "balance: 10"))
    assert main(["run", str(m), "--no-report"]) == 0
    m.write_text(BALANCE)  # two videos of $0.35 more
    (tmp_path / ".gridrun" / "sim-world.jsonl").unlink()  # a sim that starts again from its balance
    capsys.readouterr()
    assert main(["run", str(m), "--no-report", "--force"]) == 1
    end = capsys.readouterr().err.splitlines()[-1]
    assert end == ("stopped: the provider refused the account, its balance too low or its quota spent (HTTP 402, or a code saying so): top up the balance, "
                   "then: `gridrun run --force --resume` re-renders the 4 jobs this run left done as they were "
                   "($1.40), not those it re-rendered (`gridrun run --force` alone re-renders every job, those paid "
                   "again)"), end


GRID = "params:\n  prompt: a fox {{ a }}\nmatrix:\n  a: [1, 2]\nsim: {render_time: 0.1}\n"


def test_a_variant_copy_that_keeps_the_manifests_name_is_warned_of_by_plan_and_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Two files of one name share one history and one output folder: plan and run of the copy say so, naming the
    other file. A copy that reads the same is the same manifest, and is not warned of."""
    from runner import api

    m = write(tmp_path / "grid.yaml", GRID, HEAD)
    assert api.run(m, report=False).exit_code == 0
    same = tmp_path / "same.yaml"
    same.write_bytes(m.read_bytes())
    code, _, err = run_cli(capsys, "plan", str(same))
    assert code == 0 and "also the name" not in err
    v2 = tmp_path / "grid-v2.yaml"
    v2.write_text(m.read_text().replace("a fox", "a cat"))
    said = (f"'fox' is also the name of {m} (latest run 1): the two share one history and one output folder "
            f"({tmp_path.resolve() / 'outputs' / 'fox'}); give one its own `name:`")
    code, _, err = run_cli(capsys, "plan", str(v2))
    assert code == 0 and f"warning: {v2}:2:1: name: {said}\n" in err
    code, out, _ = run_cli(capsys, "plan", str(v2), "--json")
    assert code == 0 and json.loads(out)["warnings"] == [f"name: {said}"]
    code, _, err = run_cli(capsys, "run", str(v2), "--no-report")
    assert code == 0 and f"warning: {v2}:2:1: name: {said}\n" in err
    # the first file, planned again, is warned of the copy, whose run is now the latest of the name
    code, _, err = run_cli(capsys, "plan", str(m))
    assert code == 0 and f"'fox' is also the name of {v2} (latest run 2): the two share" in err


def test_a_manifest_moved_or_renamed_is_not_another_manifest_of_its_name(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from runner import api

    m = write(tmp_path / "grid.yaml", GRID, HEAD)
    assert api.run(m, report=False).exit_code == 0
    moved = m.rename(tmp_path / "fox.yaml")
    moved.write_text(moved.read_text().replace("a fox", "a cat"))  # edited since, as a renamed file may be
    code, _, err = run_cli(capsys, "plan", str(moved))
    assert code == 0 and err == ""
    code, _, err = run_cli(capsys, "run", str(moved), "--no-report")
    assert code == 0 and "also the name" not in err


def test_plan_of_a_moved_project_calls_its_videos_cached_as_the_run_finds_them(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The state records absolute paths: after the project moves, its videos are where the manifest now puts
    them, and the run caches them there, paying and fetching nothing; plan says so, not "download again"."""
    from runner import api

    (tmp_path / "proj").mkdir()
    m = write(tmp_path / "proj" / "grid.yaml", GRID, HEAD)
    assert api.run(m, report=False).exit_code == 0
    (tmp_path / "proj").rename(tmp_path / "moved")
    moved = tmp_path / "moved" / "grid.yaml"
    code, out, _ = run_cli(capsys, "plan", str(moved), "--json")
    assert code == 0
    against = json.loads(out)["against_state"]
    assert against["cached"] == 2 and against["to_fetch_again"] == 0, against
    code, out, _ = run_cli(capsys, "plan", str(moved))
    assert code == 0 and "download again" not in out and "missing or altered" not in out, out
    again = api.run(moved, report=False)
    assert again.exit_code == 0 and again.stats.cached == 2 and again.stats.spent_micros == 0


@pytest.mark.parametrize("mount_point", [False, True])
def test_an_output_folder_whose_disk_is_not_mounted_is_warned_of_by_plan_and_refused_by_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], mount_point: bool
) -> None:
    """Its disk unplugged, the output folder is not there (or is an empty mount point): a run would download
    every video again onto the system disk. plan warns, run and retry refuse before anything is recorded or
    sent, saying what to do; the folder made knowingly, the run fetches them again."""
    from runner import api

    disk = tmp_path / "disk"
    folder = disk if mount_point else disk / "videos"  # the output folder: the mount point itself, or in it
    m = write(tmp_path / "grid.yaml", GRID + f"outputs_dir: {folder}\n", HEAD)
    assert api.run(m, report=False).exit_code == 0
    disk.rename(tmp_path / "unplugged")
    disk.mkdir()  # the mount point, empty
    code, _, err = run_cli(capsys, "plan", str(m))
    # what a look at the folder finds: an empty mount point is there
    said = "is empty (its .runs/ gone too)" if mount_point else "is not there (nor its .runs/)"
    assert code == 0 and f"the output folder {folder} {said}" in err, err
    assert "`run` and `retry` refuse" in err
    runs = len(api.runs(m))
    for command in (["run"], ["retry"]):
        code, _, err = run_cli(capsys, *command, str(m), "--no-report")
        assert code != 0 and "its disk not mounted" in err and "Traceback" not in err, err
        assert f"mkdir -p {folder / '.runs'}" in err
    assert len(api.runs(m)) == runs and not (folder / ".runs").exists()  # nothing recorded, nothing made
    (folder / ".runs").mkdir(parents=True)
    again = api.run(m, report=False)
    assert again.exit_code == 0 and again.stats.spent_micros == 0 and again.stats.cached == 0


def test_an_output_folder_reached_through_a_link_to_a_disk_not_mounted_is_refused_by_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """outputs/<name> a link to a folder on a disk not mounted: followed, the link leads to a folder not there,
    which a run would make on the system disk and download every video into, hidden once the disk is back. plan
    warns and run refuses, naming the link and where it leads; nothing made at the link's target."""
    from runner import api

    m = write(tmp_path / "grid.yaml", GRID, HEAD)
    assert api.run(m, report=False).exit_code == 0
    named = tmp_path / "outputs" / "fox"
    named.rename(tmp_path / "moved-away")
    target = tmp_path / "disk" / "videos"
    named.symlink_to(target)
    code, _, err = run_cli(capsys, "plan", str(m))
    said = f"the output folder {named}, a link to {target}, which is not there (nor its .runs/)"
    assert code == 0 and said in " ".join(err.split()), err
    code, _, err = run_cli(capsys, "run", str(m), "--no-report")
    assert code != 0 and said in " ".join(err.split()) and "its disk not mounted" in err, err
    assert not (tmp_path / "disk").exists()


def test_a_project_copied_whole_is_not_warned_of_sharing_a_history_with_its_original(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A project copied whole, state and all: the copy's state records the original's file, which goes on
    being edited and run in its own state; the two share no history, so neither plan nor run of either warns.
    A variant beside the copy, of the same name, still is."""
    import shutil

    from runner import api

    (tmp_path / "proj").mkdir()
    m = write(tmp_path / "proj" / "grid.yaml", GRID, HEAD)
    assert api.run(m, report=False).exit_code == 0
    shutil.copytree(tmp_path / "proj", tmp_path / "copy")
    copy = tmp_path / "copy" / "grid.yaml"
    assert api.run(copy, report=False).exit_code == 0
    m.write_text(m.read_text().replace("a fox", "a cat"))  # the original, worked on since
    assert api.run(m, report=False).exit_code == 0
    for f in (copy, m):
        code, _, err = run_cli(capsys, "plan", str(f))
        assert code == 0 and "also the name" not in err, err
    code, _, err = run_cli(capsys, "run", str(copy), "--no-report")
    assert code == 0 and "also the name" not in err, err
    v2 = tmp_path / "copy" / "grid-v2.yaml"
    v2.write_text(copy.read_text().replace("a fox", "an owl"))
    code, _, err = run_cli(capsys, "plan", str(v2))
    assert code == 0 and f"'fox' is also the name of {copy} (latest run 3): the two share" in err, err


def test_a_manifest_moved_down_a_folder_away_from_its_state_is_warned_of_before_a_run_pays_again(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Moved into a subfolder, the manifest has no state beside it, but the one it left holds the runs of its
    name: plan and run say so, and how to go on with it; `state_dir: ..` finds every job cached. Once the
    manifest has a state of its own nothing is said."""
    from runner import api

    m = write(tmp_path / "grid.yaml", GRID, HEAD)
    assert api.run(m, report=False).exit_code == 0
    (tmp_path / "sub").mkdir()
    moved = m.rename(tmp_path / "sub" / "grid.yaml")
    state = tmp_path.resolve() / ".gridrun"
    said = (f"name: no state at {tmp_path.resolve() / 'sub' / '.gridrun'} yet, but {state} holds the runs of 'fox' "
            f"(latest run 1, from {m}), 2 of these 2 jobs done there: a run here starts a new state and sends and pays "
            f"for every job again; to go on with that one, set `state_dir: ../.gridrun` and `outputs_dir: "
            f"../outputs/fox` (where its videos are), or move {state} beside the manifest")
    code, _, err = run_cli(capsys, "plan", str(moved))
    assert code == 0 and f"warning: {moved}:2:1: {said}\n" in err, err
    code, out, _ = run_cli(capsys, "plan", str(moved), "--json")
    assert code == 0 and json.loads(out)["warnings"] == [said]
    kept = moved.read_text()
    moved.write_text(kept + "state_dir: ../.gridrun\n")
    code, out, err = run_cli(capsys, "plan", str(moved))
    assert code == 0 and "no state at" not in err and "2 cached" in out, (out, err)
    moved.write_text(kept)
    code, _, err = run_cli(capsys, "run", str(moved), "--no-report")
    assert code == 0 and f"warning: {moved}:2:1: {said}\n" in err, err
    code, _, err = run_cli(capsys, "plan", str(moved))
    assert code == 0 and "no state at" not in err, err


def test_the_one_job_of_a_manifest_moved_away_from_its_state_is_counted_in_the_singular(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from runner import api

    m = write(tmp_path / "one.yaml", "params:\n  prompt: a fox\nsim: {render_time: 0.1}\n", HEAD)
    assert api.run(m, report=False).exit_code == 0
    (tmp_path / "sub").mkdir()
    moved = m.rename(tmp_path / "sub" / "one.yaml")
    code, out, _ = run_cli(capsys, "plan", str(moved), "--json")
    said = [w for w in json.loads(out)["warnings"] if "no state at" in w]
    assert code == 0 and len(said) == 1 and "1 of this 1 job done there" in said[0], said


def test_a_run_locked_out_by_another_manifest_of_its_folder_is_told_why_and_of_state_dir(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from runner.state import Store

    grid = write(tmp_path / "grid.yaml", GRID, HEAD)
    slow = write(tmp_path / "slow.yaml", GRID, HEAD.replace("fox", "slow"))
    holder = Store(tmp_path / ".gridrun" / "state.db")  # grid's run, going on
    holder.acquire_lock(manifest=grid)
    holder.start_run(manifest_name="fox", manifest_path=str(grid), manifest_copy="", outputs_dir=str(tmp_path),
                     provider="sim", model="pixverse-v5.6", axes=[], budget_micros=None)
    try:
        code, _, err = run_cli(capsys, "run", str(slow), "--no-report")
        again = run_cli(capsys, "run", str(grid), "--no-report")  # grid itself, a second time: only to wait
    finally:
        holder.close()
    assert code == 1
    assert f"): run 1 of {grid}, which shares this state (one runner at a time)" in err
    assert "; or give this manifest a `state_dir:` of its own (it then reuses none of these videos)" in err
    assert again[0] == 1 and "): run 1 of this manifest; wait for it to finish" in again[2]


def test_plan_says_when_a_run_would_have_no_budget(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Without run.budget_usd a run has no cap: said where the cost is, for the simulator too, priced as the paid
    provider it mimics."""
    m = write(tmp_path / "b.yaml", "params:\n  prompt: a fox {{ a }}\nmatrix:\n  a: [1, 2]\n", HEAD)
    code, out, _ = run_cli(capsys, "plan", str(m))
    assert code == 0 and "→ $0.70 for 2 jobs\nbudget: none (no cap: set run.budget_usd or --budget)\n" in out
    m.write_text(m.read_text() + "run:\n  budget_usd: 1\n")
    code, out, _ = run_cli(capsys, "plan", str(m))
    assert code == 0 and "budget: $1.00 (fits: this run counts $0.70 against it" in out and "budget: none" not in out


def test_after_a_budget_stop_what_to_run_next_is_a_run_the_budget_lets_start(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """12 jobs at $0.35 with a budget of $2 a run: the 7 not sent ($2.45) pass it, so a plain `gridrun run`
    refuses. The run's end and `status` name the budget that lets it start, and `--allow-partial`."""
    monkeypatch.setenv("COLUMNS", "400")
    m = tmp_path / "m.yaml"
    m.write_text("version: 1\nname: b\nmodel: pixverse-v5.6\nparams:\n  prompt: \"a fox {{ take }}\"\n  quality: 360p\n"
                 "matrix:\n  take: {range: [1, 12]}\nrun:\n  concurrency: 1\n  budget_usd: 2\nsim:\n  render_time: 0.05\n")
    code, _, err = run_cli(capsys, "run", str(m), "--no-report", "--allow-partial")
    assert code == 3, err
    step = ("`gridrun run --budget 2.45` sends the 7 jobs not sent ($2.45): a plain `gridrun run` refuses, counting "
            "$2.45 against its budget, above the manifest's $2.00 (`--allow-partial` sends what that allows)")
    assert f"stopped by the budget: {step}" in " ".join(err.split()), err
    code, out, _ = run_cli(capsys, "status", str(m))
    assert f"next: {step}" in " ".join(out.split()), out
    assert run_cli(capsys, "run", str(m), "--no-report")[0] == 3  # refused, as the step says
    assert run_cli(capsys, "run", str(m), "--no-report", "--budget", "2.45")[0] == 0  # and that one starts


def test_after_a_budget_stop_under_a_lower_budget_flag_the_next_step_is_a_plain_run_the_manifest_lets_start(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A run stopped by a --budget lower than the manifest's: a plain `gridrun run` has the manifest's budget, which
    the jobs not sent fit, so that is the step named, not a --budget to raise."""
    monkeypatch.setenv("COLUMNS", "400")
    m = tmp_path / "m.yaml"
    m.write_text("version: 1\nname: b\nmodel: pixverse-v5.6\nparams:\n  prompt: \"a fox {{ take }}\"\n  quality: 360p\n"
                 "matrix:\n  take: {range: [1, 8]}\nrun:\n  concurrency: 1\n  budget_usd: 2.5\nsim:\n  render_time: 0.05\n")
    code, _, err = run_cli(capsys, "run", str(m), "--no-report", "--allow-partial", "--budget", "0.8")
    assert code == 3, err
    said = " ".join(err.split())
    assert "stopped by the budget: `gridrun run` sends the 6 jobs not sent ($2.10)" in said and "--budget" not in said
    code, out, _ = run_cli(capsys, "status", str(m))
    assert "next: `gridrun run` sends the 6 jobs not sent ($2.10)" in " ".join(out.split()), out
    assert run_cli(capsys, "run", str(m), "--no-report")[0] == 0  # and it starts


def test_a_forced_run_stopped_by_the_budget_names_the_resume_that_re_renders_only_what_it_left(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """`run --force --allow-partial` stopped by the budget after 2 of 6 re-renders: the 4 it did not send are left
    done, as they were, so a plain `gridrun run` sends nothing; `--force --resume` re-renders those 4 alone ($1.40,
    within the manifest's budget), where `--force` again would pay for the 2 made too. The run's end and `status`
    say that, not "run again to go on", and that run sends what they priced."""
    monkeypatch.setenv("COLUMNS", "400")
    m = tmp_path / "m.yaml"
    m.write_text("version: 1\nname: b\nmodel: pixverse-v5.6\nparams:\n  prompt: \"a fox {{ take }}\"\n  quality: 360p\n"
                 "matrix:\n  take: {range: [1, 6]}\nrun:\n  concurrency: 1\n  budget_usd: 2\nsim:\n  render_time: 0.05\n")
    assert run_cli(capsys, "run", str(m), "--no-report", "--budget", "3")[0] == 0
    code, _, err = run_cli(capsys, "run", str(m), "--no-report", "--force", "--budget", "0.7", "--allow-partial")
    assert code == 3, err
    step = ("`gridrun run --force --resume` re-renders the 4 jobs {} left done as they were ($1.40), not those it "
            "re-rendered (`gridrun run --force` alone re-renders every job, those paid again)")
    said = " ".join(err.split())
    assert f"stopped by the budget: {step.format('this run')}" in said and "run again to go on" not in said, err
    code, out, _ = run_cli(capsys, "status", str(m))
    assert code == 0 and "budget" in out and f"next: {step.format('run 2')}" in " ".join(out.split()), out
    code, out, _ = run_cli(capsys, "plan", str(m), "--force", "--resume")
    assert code == 0 and "against state with --force --resume: 4 to submit ($1.40), 2 cached" in out, out
    code, _, err = run_cli(capsys, "run", str(m), "--no-report", "--force")
    assert code == 3 and "6 jobs to submit would cost $2.10, above the budget of $2.00" in err  # as the step says
    code, _, err = run_cli(capsys, "run", str(m), "--no-report", "--force", "--resume")
    assert code == 0 and "done 6 | spent $1.40 " in err, err
    code, out, _ = run_cli(capsys, "status", str(m))
    assert code == 0 and "next:" not in out, out


def test_status_json_next_commands_are_the_steps_to_run_as_typed_not_the_forced_run_that_pays_again(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """`run --force` stopped by its budget after 2 of 6 re-renders: `status --json`'s `next_commands` holds the
    `--force --resume` that re-renders the 4 left, with the manifest as given (quoted for the shell) and the
    `--budget` it needs; not `--force` alone, which `next` names as what pays again for every job. Run as listed,
    the commands re-render those 4 alone, and nothing is left to run; with the manifest's file gone, the command
    that puts it back from the run's copy comes first."""
    monkeypatch.setenv("COLUMNS", "400")
    monkeypatch.chdir(tmp_path)
    name = "my grid #1.yaml"
    text = ("version: 1\nname: b\nmodel: pixverse-v5.6\nparams:\n  prompt: \"a fox {{ take }}\"\n  quality: 360p\n"
            "matrix:\n  take: {range: [1, 6]}\nrun:\n  concurrency: 1\n  budget_usd: 1\nsim:\n  render_time: 0.05\n")
    (tmp_path / name).write_text(text)
    assert run_cli(capsys, "run", name, "--no-report", "--budget", "3")[0] == 0
    assert run_cli(capsys, "run", name, "--no-report", "--force", "--budget", "0.7", "--allow-partial")[0] == 3
    step = "gridrun run 'my grid #1.yaml' --force --resume --budget 1.40"
    for given in ([name], []):  # the manifest given, or none: the latest run's file, as the current folder names it
        code, out, _ = run_cli(capsys, "status", *given, "--json")
        doc = json.loads(out)
        assert code == 0 and "--force` alone re-renders every job, those paid again" in doc["next"], doc["next"]
        assert doc["next_commands"] == [step], (given, doc)
    (tmp_path / name).unlink()  # its file gone: put back from the run's copy first
    code, out, _ = run_cli(capsys, "status", "--json")
    doc = json.loads(out)
    assert doc["next_commands"] == [f"cp outputs/b/.runs/run-2.yaml {shlex.quote(name)}", step], doc
    for command in doc["next_commands"]:
        if command.startswith("cp "):
            shutil.copyfile(*shlex.split(command)[1:])
            continue
        code, _, err = run_cli(capsys, *shlex.split(command)[1:])
        assert code == 0 and "done 6 | spent $1.40 " in err, err
    code, out, _ = run_cli(capsys, "status", name, "--json")
    assert code == 0 and json.loads(out)["next"] is None and json.loads(out)["next_commands"] == [], out


def test_a_retry_stopped_by_the_budget_names_the_retry_that_sends_the_jobs_left_not_a_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Three jobs failed; `retry --allow-partial` under a budget of $0.70 sends two again: the third is left failed,
    which a plain `gridrun run` never sends. The end names `gridrun retry`, with a --budget where the manifest's
    does not cover what it counts, and what the jobs left cost; and that retry sends it."""
    monkeypatch.setenv("COLUMNS", "400")
    m = tmp_path / "m.yaml"
    text = ("version: 1\nname: b\nmodel: pixverse-v5.6\nparams:\n  prompt: \"a fox {{ take }}\"\n  quality: 360p\n"
            "matrix:\n  take: {range: [1, 3]}\nrun:\n  concurrency: 3\n  budget_usd: BUDGET\nsim:\n  render_time: 0.05\n")
    m.write_text(text.replace("BUDGET", "0.3") + "  failure_rate: 1.0\n")
    assert run_cli(capsys, "run", str(m), "--no-report", "--budget", "2")[0] == 1
    m.write_text(text.replace("BUDGET", "0.3"))
    code, _, err = run_cli(capsys, "retry", str(m), "--no-report", "--budget", "0.7", "--allow-partial")
    assert code == 3, err
    said = " ".join(err.split())
    step = ("`gridrun retry --budget 0.35` sends the 1 job left again ($0.35): a plain `gridrun retry` refuses, "
            "counting $0.35 against its budget, above the manifest's $0.30")
    assert f"stopped by the budget: {step}" in said and "run again to go on" not in said, err
    assert run_cli(capsys, "run", str(m), "--no-report", "--budget", "5")[0] == 1  # a run sends nothing
    assert run_cli(capsys, "retry", str(m), "--no-report", "--budget", "0.35")[0] == 0  # the retry named does


def _world_creates(m: Path) -> int:
    """The creates the built-in simulator's world, kept in the state folder by the runs of `m`, was sent."""
    from runner.sim import SimConfig, create_app
    from runner.sim.world import World

    with World.open(m.parent / ".gridrun" / "sim-world.jsonl") as world:
        return int(create_app(SimConfig(), world=world).state.sim.stats()["creates"])


FORCE_GRID = ("params:\n  prompt: \"a fox {{ a }}\"\n  quality: 360p\nmatrix:\n  a: [1, 2, 3, 4]\nrun:\n"
              "  budget_usd: 2\nsim: {render_time: RENDER, jitter: 0}\n")


@pytest.mark.parametrize(("render", "before", "sent", "flying"), [
    # every job done, then a --force run stopped by its budget after one re-render: all 4 are sent again
    (0.05, [["run"], ["run", "--force", "--budget", "0.4", "--allow-partial"]], 4, 0),
    # one job done, three left rendering at their timeout: one re-render, the three followed, not sent again
    # (renders of 1 s: sent after the run's start, they are still rendering at its timeout 0.3 s after it)
    (1, [["run", "--budget", "0.4", "--allow-partial"], ["run", "--timeout", "0.3"]], 1, 3),
])
def test_plan_force_shows_what_run_force_sends_and_spends(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, render: float,
    before: list[list[str]], sent: int, flying: int,
) -> None:
    """`plan --force` counts the jobs a `run --force` sends (creates at the simulator) and what it counts against
    its budget (spent, with the jobs in flight it follows), offline."""
    monkeypatch.setenv("COLUMNS", "400")
    m = write(tmp_path / "f.yaml", FORCE_GRID.replace("RENDER", str(render)), HEAD)
    for argv in before:
        run_cli(capsys, *argv[:1], str(m), "--no-report", *argv[1:])
    created = _world_creates(m)
    code, out, _ = run_cli(capsys, "plan", str(m), "--force")
    assert code == 0
    priced = f" (${flying * 0.35:,.2f})" if flying else ""  # what the jobs in flight count against the budget
    assert (f"against state with --force: {sent} to submit (${sent * 0.35:,.2f}), 0 cached, {flying} in flight"
            f"{priced}, 0 settled") in out, out
    # every job counted: sent, or followed
    counted = (f"(${sent * 0.35:,.2f} to submit, ${flying * 0.35:,.2f} in flight), of $1.40 for all jobs" if flying
               else "for all 4 jobs")
    assert f"budget: $2.00 (fits: this run counts $1.40 against it{', ' if not flying else ' '}{counted})\n" in out, out
    doc = json.loads(run_cli(capsys, "plan", str(m), "--force", "--json")[1])
    assert (doc["against_state"]["to_submit"], doc["against_state"]["in_flight"]) == (sent, flying)
    assert _world_creates(m) == created  # the plan sent nothing
    assert run_cli(capsys, "run", str(m), "--no-report", "--force")[0] == 0
    assert _world_creates(m) - created == sent
    from runner import api

    assert api.status(m).spent_micros == doc["run_micros"] == 1_400_000


RETRY_GRID = ("params:\n  prompt: \"a fox {{ a }}\"\n  quality: 360p\nmatrix:\n  a: [1, 2, 3]\nrun:\n"
              "  budget_usd: 1.05\nsim: {render_time: 0.05, jitter: 0, failure_rate: RATE}\n")


def test_plan_retry_shows_what_retry_sends_and_spends_and_the_plan_names_the_settled_jobs_cost(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Three jobs failed: the plan names what `gridrun retry` sends of them and its cost; `plan --retry` counts
    the jobs `retry` sends (creates at the simulator) and what it counts against its budget, offline, and
    `--budget` below it says the retry would not fit, as `retry` then refuses."""
    monkeypatch.setenv("COLUMNS", "400")
    m = write(tmp_path / "f.yaml", RETRY_GRID.replace("RATE", "1.0"), HEAD)
    assert run_cli(capsys, "run", str(m), "--no-report")[0] == 1
    m.write_text(m.read_text().replace("failure_rate: 1.0", "failure_rate: 0.0"))
    code, out, _ = run_cli(capsys, "plan", str(m))
    assert code == 0 and ("against state: 0 to submit ($0.00), 0 cached, 0 in flight, 3 settled (failed): "
                          "`gridrun retry` sends them, $1.05\n") in out, out
    created = _world_creates(m)
    code, out, _ = run_cli(capsys, "plan", str(m), "--retry")
    assert code == 0 and "budget: $1.05 (fits: this run counts $1.05 against it, for all 3 jobs)\n" in out, out
    assert ("against state as `gridrun retry`: 3 to submit ($1.05) (3 of them settled, sent again: paid, never billed before), "
            "0 cached, 0 in flight, 0 settled\n") in out, out
    doc = json.loads(run_cli(capsys, "plan", str(m), "--retry", "--json")[1])
    assert (doc["against_state"]["to_submit"], doc["against_state"]["retried"], doc["run_micros"]) == (3, 3, 1_050_000)
    assert "budget: $0.70 (exceeds: this run counts $1.05" in run_cli(capsys, "plan", str(m), "--retry", "--budget",
                                                                        "0.70")[1]
    code, _, err = run_cli(capsys, "retry", str(m), "--no-report", "--budget", "0.70")
    assert code != 0 and "3 jobs to submit would cost $1.05, above the budget of $0.70" in " ".join(err.split()), err
    code, out, _ = run_cli(capsys, "plan", str(m), "--retry", "--unknown")
    assert code == 0 and "as `gridrun retry --unknown`: 0 to submit ($0.00)" in out, out
    assert _world_creates(m) == created  # the plans sent nothing
    assert run_cli(capsys, "retry", str(m), "--no-report")[0] == 0
    assert _world_creates(m) - created == 3
    from runner import api

    assert api.status(m).spent_micros == doc["run_micros"]


@pytest.mark.parametrize(("argv", "said"), [
    (["--unknown"], "plan --unknown previews `gridrun retry --unknown`: give it with --retry"),
    (["--retry", "--force"], "plan --retry and --force do not go together"),
])
def test_plan_retry_flags_that_do_not_go_together_are_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str], said: str
) -> None:
    m = write(tmp_path / "f.yaml", RETRY_GRID.replace("RATE", "0.0"), HEAD)
    code, _, err = run_cli(capsys, "plan", str(m), *argv)
    assert code == 2 and said in err, err


REORDER = ("params:\n  prompt: \"a fox, {{ style }} style\"\n  quality: 360p\nmatrix:\n  style: [anime, clay]\n"
           "  seed: [1, 2, 3]\noutput: \"{{ style }}/{{ seed }}.mp4\"\nsim: {render_time: 0.05}\n")


def test_matrix_keys_reordered_rename_the_jobs_they_do_not_drop_them(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A key names a job's matrix values in the manifest's order; its hash is the job. `seed` put before `style`
    gives the 6 done jobs new keys, and plan and run count them as renamed (cached), not as jobs no longer in the
    manifest; a value removed with them is the one job dropped."""
    monkeypatch.setenv("COLUMNS", "400")
    m = write(tmp_path / "r.yaml", REORDER, HEAD)
    assert run_cli(capsys, "run", str(m), "--no-report")[0] == 0
    m.write_text(m.read_text().replace("  style: [anime, clay]\n  seed: [1, 2, 3]\n",
                                       "  seed: [1, 2, 3]\n  style: [anime, clay]\n"))
    renamed = "6 renamed (the same jobs under new keys: style=anime,seed=1 is now seed=1,style=anime, and 5 more)"
    code, out, _ = run_cli(capsys, "plan", str(m))
    assert code == 0 and f"0 to submit ($0.00), 6 cached, 0 in flight, 0 settled, {renamed}\n" in out, out
    code, _, err = run_cli(capsys, "run", str(m), "--no-report")
    assert code == 0 and f"6 cached, 0 in flight, 0 settled, {renamed}, 0 no longer in the manifest" \
        in " ".join(err.split()), err
    m.write_text(m.read_text().replace("  seed: [1, 2, 3]\n  style: [anime, clay]\n",
                                       "  style: [anime, clay]\n  seed: [1, 2]\n"))
    code, out, _ = run_cli(capsys, "plan", str(m))
    assert code == 0 and ("4 cached, 0 in flight, 0 settled, 4 renamed (the same jobs under new keys: "
                          "seed=1,style=anime is now style=anime,seed=1, and 3 more), 2 no longer in the manifest") \
        in out, out


def test_a_sweep_renamed_says_its_done_videos_are_copied_to_the_new_paths_and_the_old_ones_left(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A sweep renamed gives its jobs new keys and paths: a run copies each done video there, at no cost but disk
    space, and leaves the file where it was (an earlier run's report shows it). `plan` and `run` say so, with the
    space the copies take; once copied, the next plan has nothing to copy."""
    monkeypatch.setenv("COLUMNS", "400")
    monkeypatch.chdir(tmp_path)
    body = ("params:\n  prompt: \"a fox, {{ style }} style\"\n  quality: 360p\nsweeps:\n  - name: draft\n"
            "    matrix:\n      style: [anime, clay]\n      seed: [1, 2]\nsim: {render_time: 0.05}\n")
    m = write(tmp_path / "s.yaml", body, HEAD)
    assert run_cli(capsys, "run", str(m), "--no-report")[0] == 0
    old = sorted((tmp_path / "outputs" / "fox" / "draft").glob("*.mp4"))
    assert len(old) == 4
    size = sum(v.stat().st_size for v in old)
    m.write_text(m.read_text().replace("name: draft", "name: final"))
    said = (f"copies: 4 done videos ({size / 1e6:,.1f} MB) to their new paths, at no cost, from outputs/fox/draft, "
            "whose files are left as they are (earlier runs' reports show them; gridrun deletes no video)")
    code, out, _ = run_cli(capsys, "plan", str(m))
    assert code == 0 and said in " ".join(out.split()), out
    code, _, err = run_cli(capsys, "run", str(m), "--no-report")
    assert code == 0 and said in " ".join(err.split()), err
    assert all(v.is_file() for v in old)
    assert sorted(v.read_bytes() for v in (tmp_path / "outputs" / "fox" / "final").glob("*.mp4")) == \
        sorted(v.read_bytes() for v in old)
    code, out, _ = run_cli(capsys, "plan", str(m))
    assert code == 0 and "copies:" not in out and "4 cached" in out, out


def test_the_folders_copies_come_from_past_the_first_three_are_counted_in_the_singular_for_one() -> None:
    from types import SimpleNamespace

    from runner.cli import _copied_note

    def note(*folders: str) -> str:
        return _copied_note([(f"/gone/{f}/1.mp4", f"/new/{f}/1.mp4") for f in folders], SimpleNamespace(jobs=[]))

    assert " and 1 more folder, whose files" in note("a", "b", "c", "d")
    assert " and 2 more folders, whose files" in note("a", "b", "c", "d", "e")
    assert " more folder" not in note("a", "b", "c")


def test_a_copied_videos_old_path_that_a_new_job_writes_is_said_moved_aside_not_left(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A row inserted in a shot list and the ids numbered again: `2.mp4` (bravo whale) is copied to `3.mp4`, and
    row 2 (a new prompt) renders at `2.mp4`, moving the old file aside into .runs/superseded/: `plan` and `run`
    say that, not that the file is left as it is."""
    monkeypatch.setenv("COLUMNS", "400")
    monkeypatch.chdir(tmp_path)
    (tmp_path / "rows.csv").write_text("id,prompt\n1,alpha fox\n2,bravo whale\n", encoding="utf-8")
    m = write(tmp_path / "r.yaml", 'params: {prompt: "{{ r.prompt }}", quality: 360p}\nmatrix: {r: {file: rows.csv}}\n'
              'output: "{{ r.id }}.mp4"\nsim: {render_time: 0.05}\n', HEAD)
    assert run_cli(capsys, "run", str(m), "--no-report")[0] == 0
    (tmp_path / "rows.csv").write_text("id,prompt\n1,alpha fox\n2,NEW golf cat\n3,bravo whale\n", encoding="utf-8")
    said = ("; its file is then moved aside into .runs/superseded/ when the video a job of the plan writes at its "
            "path arrives (gridrun deletes no video)")
    code, out, _ = run_cli(capsys, "plan", str(m))
    assert code == 0 and said in " ".join(out.split()) and "left as they are" not in out, out
    code, _, err = run_cli(capsys, "run", str(m), "--no-report")
    assert code == 0 and said in " ".join(err.split()), err
    assert len(list((tmp_path / "outputs" / "fox" / ".runs" / "superseded").glob("*/2.mp4"))) == 1


def test_the_advice_after_a_forced_run_left_one_job_done_speaks_of_it_as_one() -> None:
    """One re-render left done: "the 1 job this run left done as it was", not "as they were"."""
    from runner.cli import _redo_forced

    assert "the 1 job this run left done as it was ($0.35)" in _redo_forced(1, 350_000, 350_000, None).text
    assert "the 2 jobs this run left done as they were ($0.70)" in _redo_forced(2, 700_000, 700_000, None).text


def test_control_characters_from_a_manifest_are_shown_escaped(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """An ESC from a prompts file turned the terminal red (or retitled it, or wrote the clipboard), a CR wrote over
    the line and U+202E reversed it: each is written as Python writes it in a string, as a refused enum value was."""
    path = write(tmp_path / "m.yaml", head=HEAD,
                 body='params:\n  prompt: "{{ s }}"\nmatrix:\n  s: ["\\x1b[31mred", "x\\u202ey", "\\x9bz"]\n')
    code, out, _ = run_cli(capsys, "matrix", str(path))
    assert (code, out) == (0, "s=\\x1b[31mred\ns=x\\u202ey\ns=\\x9bz\n3 combinations\n")
    code, out, _ = run_cli(capsys, "plan", str(path), "--explain")
    assert code == 0 and "│ s=\\x1b[31mred │ \\x1b[31mred │" in out and "s=x\\u202ey  ← product" in out
    assert not any(c in out for c in "\x1b\u202e\x9b")
    bad = write(tmp_path / "n.yaml", head='version: 1\nname: "y\\x1b[31m"\nmodel: pixverse-v5.6\n', body="params:\n  prompt: x\n")
    code, _, err = run_cli(capsys, "plan", str(bad))
    assert code == 2 and err.endswith("got a string 'y\\x1b[31m': '\\x1b' (character 2) is not allowed\n") and "\x1b" not in err


def test_cancel_and_the_left_in_flight_notes_show_keys_control_characters_escaped(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Keys from a data file holding an ESC or a U+202E, in `cancel`'s lines and `status`'s notes of jobs left in
    flight, are written as `status`'s problems write them, not switching the terminal's colours or reversing it."""
    from runner import api
    from runner.cli import _left_keys

    raw, shown = "p=a \x1b[31mRED,tag=x\u202ey", "p=a \\x1b[31mRED,tag=x\\u202ey"
    assert _left_keys([(raw, 1, 350_000)]) == shown
    result = api.CancelResult(failed={raw: "BAD\x1b[5m"}, dropped=[raw], unresolved=[raw], errors={raw: "x\u202ey"},
                              copy=tmp_path / "o\x1b[31m" / "run-1.yaml", manifest=tmp_path / "m\x1b[31m.yaml")
    monkeypatch.setattr(api, "cancel", lambda manifest, **_: result)
    monkeypatch.chdir(tmp_path)
    code, out, err = run_cli(capsys, "cancel", str(tmp_path / "m.yaml"))
    assert code == 1
    assert "had it (o\\x1b[31m/run-1.yaml): copy it back to m\\x1b[31m.yaml and run that" in out, out
    assert f"{shown}: had failed already (BAD\\x1b[5m)" in out and f"no longer has ({shown})" in out
    assert f"({shown}) may be rendering" in err and f"error: {shown}: x\\u202ey" in err
    assert not any(c in out + err for c in "\x1b\u202e")


def test_the_manifest_copies_that_collect_jobs_left_in_flight_show_their_paths_control_characters_escaped(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The copy of the manifest that puts it back as a run had it is named by its path, which holds the manifest's
    name and folder, written as the keys beside it are: an ESC in a folder's name does not switch the colours."""
    from types import SimpleNamespace

    from runner.cli import _put_back

    monkeypatch.chdir(tmp_path)
    snap = SimpleNamespace(left_copies={1: str(tmp_path / "out\x1b[31m" / "a\u202eb.yaml")}, copies_missing=(),
                           run=SimpleNamespace(manifest_path=str(tmp_path / "m\x1b[31m.yaml")))
    said = _put_back(snap, [("k", 1, 350_000), ("j", 2, 350_000)], "collect")  # type: ignore[arg-type]
    assert said == ("put the manifest back as the run that sent them had it (out\\x1b[31m/a\\u202eb.yaml, run 2's): copy "
                    "each back to m\\x1b[31m.yaml in turn and run that to collect them"), said


def test_a_cancel_whose_state_cannot_be_written_names_the_keys_sent_with_control_characters_escaped(
    tmp_path: Path
) -> None:
    """The keys of the cancel requests sent whose outcome could not be recorded are written as `cancel`'s lines
    write them: an ESC or a U+202E from a data file does not act on the terminal the error is said on."""
    import sqlite3

    from runner.state import Store

    with Store(tmp_path / ".gridrun" / "state.db") as store:
        said = str(store.cancel_unwritable(sqlite3.OperationalError("database is locked"),
                                           sent=["p=a \x1b[31mRED", "tag=x\u202ey"]))
    assert "2 jobs (p=a \\x1b[31mRED, tag=x\\u202ey) stand at the provider" in said, said
    assert not any(c in said for c in "\x1b\u202e")


def test_visible_escapes_what_acts_on_a_terminal_and_keeps_the_rest() -> None:
    from runner.terminal import visible

    assert visible("a\tb c→ü 雪") == "a\tb c→ü 雪"
    assert visible("\x00\x07\x1b\n\r\x7f\x85\x9f\u202a\u202e\u2066\u2069") == \
        "\\x00\\x07\\x1b\\n\\r\\x7f\\x85\\x9f\\u202a\\u202e\\u2066\\u2069"


def test_visible_escapes_the_invisible_format_characters() -> None:
    """A byte order mark inside a joined data file, a zero-width space, a soft hyphen show nothing: written as
    Python writes them, two values one of them tells apart do not print alike."""
    from runner.terminal import visible

    assert visible("p=\ufeffa red fox") == "p=\\ufeffa red fox"
    assert visible("a\u200bb\u200e\u200f\u2060\u2061\u2064 soft\xadhyphen") == \
        "a\\u200bb\\u200e\\u200f\\u2060\\u2061\\u2064 soft\\xadhyphen"



@pytest.mark.parametrize(("argv", "usage", "extras"), [
    (["run", "m.yaml", "--bogus"], "usage: gridrun run [-h]", "--bogus"),
    (["status", "--bogus", "m.yaml"], "usage: gridrun status [-h]", "--bogus"),
    (["export", "m.yaml", "--bogus", "x"], "usage: gridrun export [-h]", "--bogus x"),
    (["--bogus"], "usage: gridrun [-h]", "--bogus"),
])
def test_an_unknown_option_shows_the_usage_of_the_command_it_follows(
    capsys: pytest.CaptureFixture[str], argv: list[str], usage: str, extras: str,
) -> None:
    """`gridrun run M --bogus` shows `run`'s usage, its options, as `--budget nan` does, not the top level's."""
    with pytest.raises(SystemExit) as exc:
        main(argv)
    err = capsys.readouterr().err
    assert exc.value.code == 2 and err.startswith(usage), err
    assert err.rstrip().endswith(f"error: unrecognized arguments: {extras}"), err


@pytest.mark.parametrize("argv", [["validate"], ["plan"], ["run"], ["status"], ["cancel"], ["report"],
                                  ["export", "--format", "csv"], ["retry"], ["matrix"]])
def test_a_manifest_named_with_a_leading_dash_is_told_how_to_write_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, argv: list[str],
) -> None:
    """`gridrun validate -m.yaml` reads the name as an option: the refusal names it and says `./-m.yaml`, not "the
    following arguments are required: manifest"."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "-m.yaml").write_text("params:\n  prompt: a fox\n")
    with pytest.raises(SystemExit) as exc:
        main([*argv, "-m.yaml"])
    err = capsys.readouterr().err
    assert exc.value.code == 2, err
    assert "-m.yaml is read as an option" in err and "./-m.yaml" in err and "-- -m.yaml" in err, err


@pytest.mark.parametrize("argv", [
    ["--json", "plan", "-x.yaml"], ["--json", "plan", "--", "-x.yaml"], ["plan", "-x.yaml", "--"],
    ["plan", "-x.yaml", "--max-jobs", "50"], ["plan", "--json", "-x.yaml", "--"], ["--max-jobs", "50", "plan", "-x.yaml"],
    ["--max-jobs=50", "validate", "-x.yaml", "--"],
], ids=lambda argv: " ".join(argv))
def test_the_command_a_dash_manifest_or_an_early_option_is_told_to_be_runs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, argv: list[str],
) -> None:
    """The command a refusal proposes, pasted, runs: the command's options after its name (those written before
    it moved there), one `--`, then the manifest; not another refusal."""
    monkeypatch.chdir(tmp_path)
    shutil.copy(Path(__file__).resolve().parent.parent / "manifests" / "demo.yaml", tmp_path / "-x.yaml")
    with pytest.raises(SystemExit) as exc:
        main(argv)
    err = " ".join(capsys.readouterr().err.split())
    assert exc.value.code == 2, err
    told = err.split("(or after --: ", 1)[1].rsplit(")", 1)[0] if "(or after --: " in err \
        else err.split("after the command: ", 1)[1]
    words = shlex.split(told)
    assert words[0] == "gridrun" and words.count("--") == 1 and words[-1] == "-x.yaml", told
    assert main(words[1:]) == 0, capsys.readouterr().err


def test_a_dash_manifest_refused_with_json_ends_the_json_lines(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit):
        main(["run", "-dash.yaml", "--json"])  # no such file: its suffix is enough
    end = json.loads(capsys.readouterr().out.splitlines()[-1])
    assert end["exit_code"] == 2 and "./-dash.yaml" in end["errors"][0], end


def test_run_force_counts_the_jobs_it_renders_again_apart_from_new_ones(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """`run --force` of a manifest whose 6 jobs are done, with one value added: the line before it pays says 6
    forced (paid again) and 2 new, not 8 new, as if nothing had been made yet."""
    monkeypatch.setenv("COLUMNS", "400")
    m = write(tmp_path / "r.yaml", REORDER, HEAD)
    assert run_cli(capsys, "run", str(m), "--no-report")[0] == 0
    m.write_text(m.read_text().replace("  seed: [1, 2, 3]\n", "  seed: [1, 2, 3, 4]\n"))
    code, _, err = run_cli(capsys, "run", str(m), "--no-report", "--force")
    assert code == 0
    assert "plan against state: 2 new, 6 forced (sent again: paid again), 0 cached," in " ".join(err.split()), err


def test_plan_writes_a_bidirectional_override_of_the_description_as_in_a_string(
    tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    m = write(tmp_path / "d.yaml", 'description: "evil \\u202eredro\\u202c desc\\nline two"\nparams:\n  prompt: a fox\n',
              HEAD)
    code, out, _ = run_cli(capsys, "plan", str(m))
    assert code == 0 and "  evil \\u202eredro\\u202c desc\n  line two\n" in out
    assert "\u202e" not in out


@pytest.mark.parametrize("name", ["demo.yaml", "zip-pairs.yaml", "quality-ab.yaml", "prompts-from-file.yaml",
                                  "image-to-video.yaml"])
@pytest.mark.parametrize("ascii_only", [False, True])
def test_plan_json_written_job_by_job_is_the_text_it_was_made_whole(
        capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, examples: Path, name: str,
        ascii_only: bool) -> None:
    """The same bytes as the document made whole and written at once (`dumps(..., indent=2)`), non-ASCII text as
    it is or as \\u escapes alike."""
    from runner import api, cli, terminal
    from runner.export import dumps

    monkeypatch.setattr(terminal, "writes_any", lambda stream: not ascii_only)
    path = examples / name
    plan = api.plan(path)
    doc = cli._plan_json(plan, api.diff(plan))
    whole = dumps({**doc, "jobs": list(iter(doc["jobs"]))}, ensure_ascii=ascii_only, indent=2) + "\n"
    code, out, _ = run_cli(capsys, "plan", str(path), "--json")
    assert code == 0 and out == whole
    assert json.loads(out)["total_jobs"] == len(plan.jobs) > 0


def test_plan_json_is_written_as_its_jobs_are_made(capsys: pytest.CaptureFixture[str],
                                                   monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """A plan of 100,000 jobs is not held as one string of 100 MB: its text is written before its last jobs
    are made, in pieces."""
    from runner import cli

    made: list[int] = []
    real = cli._json_safe
    monkeypatch.setattr(cli, "_json_safe", lambda job: (made.append(1), real(job))[1])
    writes: list[int] = []

    class Out(io.StringIO):
        def write(self, text: str) -> int:
            writes.append(len(made))
            return super().write(text)

    out = Out()
    monkeypatch.setattr(sys, "stdout", out)
    path = write(tmp_path / "m.yaml", HEAD + 'params: {prompt: "a fox {{ seed }}"}\nmatrix:\n  seed: {range: [1, 400]}\n')
    assert main(["plan", str(path), "--json"]) == 0
    assert len(made) == 400 and json.loads(out.getvalue())["total_jobs"] == 400
    assert len(writes) > 3 and writes[0] < 400


def test_the_total_line_groups_jobs_by_price_so_each_group_checks_by_hand(capsys: pytest.CaptureFixture[str],
                                                                          tmp_path: Path) -> None:
    """Audio on half of the jobs of one size and duration: two groups, each its count × its price = its subtotal
    (one group of $0.35 and $0.80 jobs could not be checked), each named by what sets its price apart."""
    path = write(tmp_path / "m.yaml", head=HEAD, body="""\
        params:
          prompt: "a fox, take {{ take }}"
        matrix:
          take: {range: [1, 3]}
          generate_audio_switch: [true, false]
        """)
    code, out, _ = run_cli(capsys, "plan", str(path))
    assert code == 0
    assert ("total: 3 × 960x540 5s with audio at $0.80 = $2.40; 3 × 960x540 5s without audio at $0.35 = $1.05 → "
            "$3.45 for 6 jobs" in " ".join(out.split())), out


def test_the_total_line_says_with_audio_of_every_group_whose_price_includes_it(capsys: pytest.CaptureFixture[str],
                                                                               tmp_path: Path) -> None:
    """Audio on every job: each group's price includes it ($1.50 of 1080p for 8 s, $1.50 of audio, 2 units of 5 s
    at $0.75), and the total says so, though no group of the same size and duration goes without it; a group of
    another quality with audio says it too, one without audio nothing."""
    path = write(tmp_path / "m.yaml", head=HEAD, body="""\
        params:
          prompt: "a fox, take {{ take }}"
          duration: 8
          generate_audio_switch: true
        matrix:
          take: [1, 2]
          quality: [1080p]
          include:
            - {take: 3, quality: 540p}
            - {take: 4, quality: 360p, generate_audio_switch: false}
        """)
    code, out, _ = run_cli(capsys, "plan", str(path))
    assert code == 0
    assert ("total: 2 × 1920x1080 8s with audio at $3.00 = $6.00; 1 × 960x540 8s with audio at $1.60 = $1.60; "
            "1 × 640x360 8s at $0.70 = $0.70 → $8.30 for 4 jobs" in " ".join(out.split())), out


def test_the_total_line_names_what_sets_groups_apart_among_parameters_that_vary_within_them(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """Groups of one size and duration at two prices are named by the one parameter constant in each and different
    between them (audio), not by those that vary within a group (the seed, a negative prompt an include sets); the
    groups of another duration are told apart the same way."""
    path = write(tmp_path / "m.yaml", head=HEAD, body="""\
        params:
          prompt: "a fox, take {{ take }}"
          seed: "{{ take }}"
          negative_prompt: "{{ neg }}"
        matrix:
          take: {range: [1, 3]}
          neg: [blur]
          generate_audio_switch: [true, false]
          duration: [5, 8]
          include:
            - {take: 9, generate_audio_switch: true, duration: 5, neg: haze}
        """)
    code, out, _ = run_cli(capsys, "plan", str(path))
    assert code == 0
    assert ("total: 4 × 960x540 5s with audio at $0.80 = $3.20; 3 × 960x540 8s with audio at $1.60 = $4.80; "
            "3 × 960x540 5s without audio at $0.35 = $1.05; 3 × 960x540 8s without audio at $0.70 = $2.10 → "
            "$11.15 for 13 jobs" in " ".join(out.split())), out


def test_the_total_line_names_the_value_of_a_group_that_the_other_group_of_its_size_mixes_among_others_not_at_all(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """A quality beside a size in pixels is priced at the dearer tier: 360p and 720p at the size's ($0.45), 1080p
    above it. The 1080p group is named by its quality, which the other group, mixing two qualities, has in none of
    its jobs; the mixed group has no one quality to be named by, nor a seed shared by both groups."""
    path = write(tmp_path / "m.yaml", head=HEAD, body="""\
        params:
          prompt: "a fox, take {{ take }}"
          seed: "{{ take }}"
          size: 1365x768
          duration: 5
        matrix:
          take: {range: [1, 2]}
          quality: [360p, 720p, 1080p]
        output: "{{ quality }}-{{ take }}.mp4"
        """)
    code, out, _ = run_cli(capsys, "plan", str(path))
    assert code == 0
    assert ("total: 4 × 1365x768 5s at $0.45 = $1.80; 2 × 1365x768 5s quality 1080p at $0.75 = $1.50 → $3.30 for 6 "
            "jobs" in " ".join(out.split())), out


def test_the_total_line_names_no_seed_of_a_group_that_the_other_group_of_its_size_mixes_among_others(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """Quality and seed zipped: the 1080p group (one job, seed 3) is named by its quality, which sets its price, not
    by its seed, which the other group holds several others of."""
    path = write(tmp_path / "m.yaml", head=HEAD, body="""\
        params:
          prompt: "a red fox"
          duration: 5
          size: 1365x768
        matrix:
          zip:
            - quality: [360p, 720p, 1080p]
              seed: [1, 2, 3]
        output: "{{ quality }}-{{ seed }}.mp4"
        """)
    code, out, _ = run_cli(capsys, "plan", str(path))
    assert code == 0
    assert ("total: 2 × 1365x768 5s at $0.45 = $0.90; 1 × 1365x768 5s quality 1080p at $0.75 = $0.75 → $1.65 for 3 "
            "jobs" in " ".join(out.split())), out


def test_a_group_of_the_total_line_alone_at_its_size_and_duration_names_only_its_audio(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """No other group of its size and duration to be set apart from: a group names nothing but the audio its price
    includes."""
    path = write(tmp_path / "m.yaml", head=HEAD, body="""\
        params:
          prompt: "a fox, take {{ take }}"
          generate_audio_switch: true
        matrix:
          take: {range: [1, 2]}
          quality: [540p, 720p]
        """)
    code, out, _ = run_cli(capsys, "plan", str(path))
    assert code == 0
    assert ("total: 2 × 960x540 5s with audio at $0.80 = $1.60; 2 × 1280x720 5s with audio at $0.90 = $1.80 → "
            "$3.40 for 4 jobs" in " ".join(out.split())), out


def test_a_matrix_axis_named_like_a_column_of_the_plan_table_gets_a_title_of_its_own(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A `size` axis beside the table's render size: two columns, never one title twice."""
    monkeypatch.setenv("COLUMNS", "200")
    path = write(tmp_path / "m.yaml", head=HEAD, body="""\
        params:
          prompt: "a fox"
        matrix:
          size: ["1365x768", "1024x1024"]
        """)
    code, out, _ = run_cli(capsys, "plan", str(path))
    assert code == 0
    header = next(line for line in out.splitlines() if "key" in line)
    titles = [t.strip() for t in header.split("┃")]
    assert titles == ["#", "key", "size (axis)", "size", "s", "cost"], titles


def test_the_budget_refusal_counts_jobs_with_thousands_separators(capsys: pytest.CaptureFixture[str],
                                                                  tmp_path: Path) -> None:
    path = write(tmp_path / "m.yaml", head=HEAD, body="""\
        params:
          prompt: "a fox, take {{ take }}"
        matrix:
          take: {range: [1, 1500]}
        run: {max_jobs: 2000, budget_usd: 1}
        """)
    code, _, err = run_cli(capsys, "run", str(path), "--no-report")
    assert code == 3
    assert "1,500 jobs to submit would cost $525.00, above the budget of $1.00" in " ".join(err.split()), err


def test_jobs_changed_back_to_what_an_earlier_run_made_are_counted_apart_and_said_what_differs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Run 1 at 360p, run 2 at 720p, then 360p again: the 4 jobs are cached (run 1 made them) and differ from
    run 2. The line reads as a partition of the 4 jobs, and those that differ are counted apart from it, with
    what differs and what it costs; --explain says it of each job."""
    monkeypatch.setenv("COLUMNS", "400")
    m = write(tmp_path / "m.yaml", "params:\n  prompt: a fox {{ seed }}\n  quality: 360p\nmatrix:\n  seed: [1, 2, 3, 4]\n"
              "sim: {render_time: 0.05, jitter: 0}\n", HEAD)
    assert run_cli(capsys, "run", str(m), "--no-report")[0] == 0
    m.write_text(m.read_text().replace("quality: 360p", "quality: 720p"))
    code, _, err = run_cli(capsys, "run", str(m), "--no-report")
    assert code == 0 and ("plan against state: 4 new, 0 cached, 0 in flight, 0 settled, 0 no longer in the manifest; "
                          "4 jobs differ from run 1 (params.quality: \"360p\" then, \"720p\" now): 4 to submit") \
        in " ".join(err.split()), err
    m.write_text(m.read_text().replace("quality: 720p", "quality: 360p"))
    code, out, _ = run_cli(capsys, "plan", str(m), "--explain")
    assert code == 0
    said = " ".join(out.split())
    assert ("against state: 0 to submit ($0.00), 4 cached, 0 in flight, 0 settled; 4 jobs differ from run 2 "
            "(params.quality: \"720p\" then, \"360p\" now): 4 cached (done before as they are now)") in said, said
    assert "4 changed" not in said, said
    assert out.count('differs from run 2: params.quality: "720p" then, "360p" now') == 4, out


def test_one_edit_of_a_prompt_template_is_said_as_one_field_in_every_job_not_as_other_changes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A word added to the prompt of a 4-job grid makes each job's prompt differ in its own words: the plan groups
    the jobs by the field that differs, with one job's words, not "3 other changes" (read as more parameters
    changed); a second field changed in one job only is a group of its own."""
    monkeypatch.setenv("COLUMNS", "400")
    m = write(tmp_path / "m.yaml", "params:\n  prompt: a fox {{ act }}\n  quality: 360p\nmatrix:\n"
              "  act: [running, sleeping, eating, jumping]\nsim: {render_time: 0.05, jitter: 0}\n", HEAD)
    assert run_cli(capsys, "run", str(m), "--no-report")[0] == 0
    m.write_text(m.read_text().replace("a fox", "a red fox"))
    code, out, _ = run_cli(capsys, "plan", str(m))
    said = " ".join(out.split())
    assert code == 0 and ('4 jobs differ from run 1 (params.prompt, in 4 jobs (e.g. "a fox running" then, '
                          '"a red fox running" now); --explain says each): 4 to submit') in said, said
    assert "other change" not in said, said
    m.write_text(m.read_text().replace("quality: 360p", "quality: \"{{ '540p' if act == 'eating' else '360p' }}\""))
    said = " ".join(run_cli(capsys, "plan", str(m))[1].split())
    assert ('4 jobs differ from run 1 (params.prompt, in 3 jobs (e.g. "a fox running" then, "a red fox running" now); '
            'params.prompt: "a fox eating" then, "a red fox eating" now; params.quality: "360p" then, "540p" now; '
            '--explain says each)') in said, said


def test_plan_json_says_what_the_text_plan_says_of_jobs_dropped_renamed_changed_and_copied(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`against_state` holds the facts the `against state:` and `copies:` lines give in words: the keys no longer
    in the manifest, those renamed, the jobs that differ with what differs, and the videos copied to new paths;
    the README's Plan JSON table names each of its keys."""
    m = write(tmp_path / "m.yaml", "params:\n  prompt: a fox {{ act }}\nmatrix:\n  act: [running, sleeping]\n"
              "output: '{{ act }}.mp4'\nsim: {render_time: 0.05, jitter: 0}\n", HEAD)
    assert run_cli(capsys, "run", str(m), "--no-report")[0] == 0
    m.write_text(m.read_text().replace("[running, sleeping]", "[running]").replace("{{ act }}\n", "{{ act }} fast\n", 1))
    state = json.loads(run_cli(capsys, "plan", str(m), "--json")[1])["against_state"]
    assert state["stale"] == ["act=sleeping"] and state["renamed"] == [], state
    assert state["changed"] == {"count": 1, "previous_run": 1, "changes": {
        "act=running": 'params.prompt: "a fox running" then, "a fox running fast" now'}}, state
    assert state["copies"] == {"videos": 0, "bytes": 0, "moved_aside": 0, "in_the_way": 0}, state
    m.write_text(m.read_text().replace(" fast", "").replace("act:", "pose:").replace("{{ act }}", "{{ pose }}")
                 .replace("'{{ pose }}.mp4'", "'x/{{ pose }}.mp4'"))
    code, out, _ = run_cli(capsys, "plan", str(m))
    said = " ".join(out.split())
    assert code == 0 and "1 renamed" in said and "copies: 1 done video" in said, said
    state = json.loads(run_cli(capsys, "plan", str(m), "--json")[1])["against_state"]
    size = (tmp_path / "outputs" / "fox" / "running.mp4").stat().st_size
    assert state["renamed"] == [["act=running", "pose=running"]] and state["stale"] == ["act=sleeping"], state
    assert state["changed"]["count"] == 0 and state["copies"] == {"videos": 1, "bytes": size, "moved_aside": 0, "in_the_way": 0}, state
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
    (row,) = re.findall(r"^\| `against_state` \|.*$", readme, flags=re.MULTILINE)
    assert all(f'"{key}"' in row for key in state), [key for key in state if f'"{key}"' not in row]


def test_a_copy_whose_new_path_holds_a_dropped_jobs_video_says_that_video_is_moved_aside(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """One job of two dropped and the other's output moved onto the dropped one's path: plan and run say the
    copy's new path holds a video of a job the plan no longer has, which the run moves aside into
    .runs/superseded/ (plan --json: `copies.in_the_way`), and the run does so."""
    m = write(tmp_path / "m.yaml", "params:\n  prompt: a fox {{ act }}\nmatrix:\n  act: [running, sleeping]\n"
              "output: '{{ act }}.mp4'\nsim: {render_time: 0.05, jitter: 0}\n", HEAD)
    assert run_cli(capsys, "run", str(m), "--no-report")[0] == 0
    out = tmp_path / "outputs" / "fox"
    dropped = (out / "sleeping.mp4").read_bytes()
    m.write_text(m.read_text().replace("[running, sleeping]", "[running]").replace("'{{ act }}.mp4'", "sleeping.mp4"))
    said = ("its new path holds the video of a job the plan no longer has, which is moved aside into "
            ".runs/superseded/ first")
    code, text, _ = run_cli(capsys, "plan", str(m))
    assert code == 0 and said in " ".join(text.split()), text
    copies = json.loads(run_cli(capsys, "plan", str(m), "--json")[1])["against_state"]["copies"]
    assert copies["videos"] == 1 and copies["in_the_way"] == 1, copies
    code, _, err = run_cli(capsys, "run", str(m), "--no-report")
    assert code == 0 and said in " ".join(err.split()), err
    assert [p.read_bytes() for p in (out / ".runs" / "superseded").glob("*/sleeping.mp4")] == [dropped]


def test_own_earlier_takes_made_by_several_runs_are_said_made_by_each_of_them(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Run 1 makes both videos, run 2 the second again (its prompt edited), then every prompt is edited and run 3
    fails both: the plan's warning of the jobs' own earlier takes, left at their paths, names both runs, as the
    sidecars say, not the first file's run alone."""
    m = write(tmp_path / "m.yaml", "params:\n  prompt: a fox {{ act }}\nmatrix:\n  act: [running, sleeping]\n"
              "output: '{{ act }}.mp4'\nsim: {render_time: 0.05, jitter: 0}\n", HEAD)
    assert run_cli(capsys, "run", str(m), "--no-report")[0] == 0
    m.write_text(m.read_text().replace("a fox {{ act }}", "\"a fox {{ act }}{{ ' fast' if act == 'sleeping' else '' }}\""))
    assert run_cli(capsys, "run", str(m), "--no-report")[0] == 0
    m.write_text(m.read_text().replace("a fox", "a red fox").replace("jitter: 0}", "jitter: 0, failure_rate: 1.0}")
                 + "run: {retries: 0}\n")
    assert run_cli(capsys, "run", str(m), "--no-report")[0] == 1  # each refused: the videos there stay the old takes
    code, _, err = run_cli(capsys, "plan", str(m))
    said = " ".join(err.split())
    assert code == 0 and "hold their jobs' own earlier takes, made by runs 1 and 2 for what" in said, said


def test_what_differs_from_the_last_run_names_the_provider_and_model_switched(tmp_path: Path) -> None:
    from types import SimpleNamespace

    from runner import api

    m = write(tmp_path / "m.yaml", "params:\n  prompt: a fox\n", HEAD)
    p = api.plan(m)
    key = p.jobs[0].key
    last = SimpleNamespace(provider="lumenfall", model="pixverse-v5.5")
    before = {key: json.dumps({**p.jobs[0].params, "prompt": "a cat"})}
    assert api._changes(p, last, before) == ({key: "provider: lumenfall then, sim now; model: pixverse-v5.5 then, "
                                                   "pixverse-v5.6 now; params.prompt: \"a cat\" then, \"a fox\" now"},
                                             {key: {"prompt": "a cat"}},
                                             {key: ("provider", "model", "params.prompt")})
    assert api._changes(p, SimpleNamespace(provider="sim", model="pixverse-v5.6"),
                        {key: json.dumps(p.jobs[0].params)})[0] == {key: "the same parameters; an input image's content, or the take, differs"}


def test_a_fault_rule_of_the_simulator_that_never_fires_is_refused_at_its_line(
        capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """A rule with neither `p` nor `nth` in `sim.script` was taken, injected nothing, and the run ended done:
    refused at the rule's own line, before anything is sent."""
    m = write(tmp_path / "s.yaml", head=HEAD, body="provider: sim\nparams:\n  prompt: x\nsim:\n  script:\n"
              "    - {route: create, fault: auth_failed, nth: [1]}\n    - {route: create, fault: auth_failed}\n")
    code, out, err = run_cli(capsys, "validate", str(m))
    assert (code, out) == (2, "")
    assert err == (f"error: {m}:10:7: sim.script[1]: script: the auth_failed rule needs p (a probability above 0) "
                   "or nth (the calls it hits): with neither it never fires\n"), err
    assert main(["run", str(m), "--no-report"]) == 2
    assert not (tmp_path / ".gridrun").exists()


def test_plan_json_of_an_invalid_manifest_writes_one_object_with_its_errors(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """It wrote nothing on standard output: a script reading the plan got an empty document."""
    code, out, err = run_cli(capsys, "plan", str(PLAN_INVALID / "several_errors.yaml"), "--json")
    assert code == 2
    doc = json.loads(out)
    assert doc == {"format": "gridrun.plan/1", "manifest": str(PLAN_INVALID / "several_errors.yaml"), "exit_code": 2,
                   "errors": [line[len("error: "):] for line in err.splitlines() if line.startswith("error: ")]}
    assert len(doc["errors"]) == 3
    path = tmp_path / "big.yaml"
    path.write_text(HEAD + 'provider: sim\nparams:\n  prompt: "a fox {{ duration }}"\n'
                    "matrix:\n  duration: {range: [11, 40]}\n", encoding="utf-8")
    code, out, _ = run_cli(capsys, "plan", str(path), "--json")
    doc = json.loads(out)
    assert code == 2 and len(doc["errors"]) == 20 and doc["errors_not_listed"] == 10, doc
    code, out, _ = run_cli(capsys, "plan", str(tmp_path / "nope.yaml"), "--json")
    assert code == 2 and json.loads(out)["errors"] == [f"{tmp_path / 'nope.yaml'}: no such file"]


def test_matrix_gives_the_matrix_warnings_validate_gives_and_counts_what_is_excluded(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """`gridrun matrix`, the command for checking combinations, said nothing of an exclude that removed none."""
    path = write(tmp_path / "m.yaml", """\
        provider: sim
        params: {prompt: "a fox {{ flag }} {{ m }} {{ look | default('') }}", quality: 360p}
        matrix:
          flag: [yes, no]
          m: [1, 2, 3]
          include:
            - {flag: yes, look: "{{ m }} special"}
          exclude:
            - {flag: "maybe"}
            - {m: 2}
        """, HEAD)
    _, _, validated = run_cli(capsys, "validate", str(path))
    matrix_warnings = [w for w in validated.splitlines() if w.startswith("warning: ") and ": matrix." in w]
    assert len(matrix_warnings) == 2, validated
    code, out, err = run_cli(capsys, "matrix", str(path))
    assert code == 0 and err.splitlines() == matrix_warnings
    assert err.startswith(f"warning: {path}:12:7: matrix.exclude[0]: removes no combination (no job has flag=maybe)")
    assert out.splitlines()[-1] == "4 combinations (2 excluded)"
    code, out, err = run_cli(capsys, "matrix", str(path), "--json")
    assert code == 0 and err.splitlines() == matrix_warnings and len(json.loads(out)) == 4
    # a bare matrix too, as a workflow's strategy.matrix
    bare = write(tmp_path / "bare.yaml", "os: [linux, mac]\nexclude:\n  - {os: windows}\n")
    code, out, err = run_cli(capsys, "matrix", str(bare))
    assert err == (f"warning: {bare}:3:5: exclude[0]: removes no combination (no job has os=windows); "
                   "check its values\n")
    assert out.splitlines()[-1] == "2 combinations"


def test_a_path_holding_a_control_character_is_printed_escaped(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A manifest in a folder whose name holds an ESC: the outputs:, report: and videos: lines, and report and
    export, show it as \\x1b rather than writing it to the terminal, as the plan's table shows a value."""
    folder = tmp_path / "a\x1b[31mb"
    folder.mkdir()
    write(folder / "m.yaml", "params: {prompt: a fox, quality: 360p}\nsim: {render_time: 0.01, jitter: 0}\n", HEAD)
    monkeypatch.chdir(tmp_path)
    code, out, _ = run_cli(capsys, "plan", "a\x1b[31mb/m.yaml")
    assert code == 0 and "outputs: a\\x1b[31mb/outputs/fox" in out and "\x1b" not in out
    code, out, _ = run_cli(capsys, "run", "a\x1b[31mb/m.yaml")
    assert code == 0 and "report: a\\x1b[31mb/outputs/fox/" in out and "videos: a\\x1b[31mb/outputs/fox/" in out
    assert "\x1b" not in out
    code, out, _ = run_cli(capsys, "report", "a\x1b[31mb/m.yaml")
    assert code == 0 and "report: a\\x1b[31mb/outputs/fox/" in out and "\x1b" not in out
    code, out, _ = run_cli(capsys, "export", "a\x1b[31mb/m.yaml")
    assert code == 0 and out.startswith("a\\x1b[31mb/outputs/fox/")
    assert "\x1b" not in out


def test_the_plan_tables_value_column_shows_a_cr_or_a_tab_escaped(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """The key folds a CR or a tab into a space, as it does any spacing (its format is fixed); the value's column
    shows the value sent, as --explain does."""
    (tmp_path / "p.txt").write_bytes(b"one\x1b[31mred\nt\rwo\na\tb\n")
    m = write(tmp_path / "m.yaml", 'params: {prompt: "x {{ p }}", quality: 360p}\nmatrix:\n  p: {file: p.txt}\n', HEAD)
    code, out, _ = run_cli(capsys, "plan", str(m))
    rows = [line.split("│") for line in out.splitlines() if line.count("│") >= 4]
    assert [(key.strip(), value.strip()) for _, key, value, *_ in rows] == [
        ("p=one\\x1b[31mred", "one\\x1b[31mred"), ("p=t wo", "t\\rwo"), ("p=a b", "a\\tb")]
    assert code == 0 and "\r" not in out and "\t" not in out


def test_matrix_rows_show_a_cr_or_a_tab_in_a_value_escaped(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """`matrix` shows each value as the plan table's value column does (the value sent, `t\\rwo`), not as the job
    key folds it (`t wo`); the row's names are as they were."""
    (tmp_path / "p.txt").write_bytes(b"one\x1b[31mred\nt\rwo\na\tb\nplain\n")
    m = write(tmp_path / "m.yaml", 'params: {prompt: "x {{ p }}", quality: 360p}\nmatrix:\n  p: {file: p.txt}\n', HEAD)
    code, out, _ = run_cli(capsys, "matrix", str(m))
    assert (code, out) == (0, "p=one\\x1b[31mred\np=t\\rwo\np=a\\tb\np=plain\n4 combinations\n")


def test_an_error_or_a_warning_naming_a_path_with_a_control_character_shows_it_escaped(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A manifest in a folder whose name holds an ESC or a CR: the errors and warnings naming it, and validate's
    line, show it as \\x1b and \\r, as the outputs: line does; --json writes it as JSON escapes it."""
    folder = tmp_path / "a\x1b[31mb\rc"
    folder.mkdir()
    write(folder / "m.yaml", "params: {prompt: a fox, quality: 360p, bogus: 1}\nsim: {render_time: 0.01, jitter: 0}\n",
          HEAD)
    monkeypatch.chdir(tmp_path)
    shown = "a\\x1b[31mb\\rc"
    for command in ("status", "report", "export"):
        code, _, err = run_cli(capsys, command, "a\x1b[31mb\rc/m.yaml")
        assert code == 2 and f"error: {tmp_path}/{shown}/.gridrun/state.db: no state yet" in err
        assert "\x1b" not in err and "\r" not in err
    code, _, err = run_cli(capsys, "status", "a\x1b[31mb\rc/gone.yaml")
    assert (code, err) == (2, f"error: {shown}/gone.yaml: no such file\n")
    code, out, err = run_cli(capsys, "validate", "a\x1b[31mb\rc/m.yaml")
    assert code == 0 and out.startswith(f"{tmp_path}/{shown}/m.yaml: valid")
    assert err.startswith(f"warning: {shown}/m.yaml:4:40: params.bogus: unknown parameter")
    code, out, err = run_cli(capsys, "plan", "a\x1b[31mb\rc/m.yaml", "--json")
    assert code == 0 and "\x1b" not in out + err and "\r" not in out + err and "\\u001b[31mb\\rc" in out
    assert json.loads(out)["outputs_dir"] == str(folder / "outputs" / "fox")
    assert run_cli(capsys, "run", "a\x1b[31mb\rc/m.yaml")[0] == 0
    for more in ([], ["--runs"]):
        code, out, _ = run_cli(capsys, "status", "a\x1b[31mb\rc/m.yaml", "--json", *more)
        assert code == 0 and "\x1b" not in out and "\r" not in out
    assert json.loads(out)[0]["manifest_path"] == str(folder / "m.yaml")
    code, _, err = run_cli(capsys, "status", "--state", "a\x1b[31mb\rc/none")
    assert code == 2 and err.startswith(f"error: {shown}/none/state.db: no state yet") and "\x1b" not in err


def test_explains_excluded_combinations_show_a_control_character_escaped(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """--explain's 'removed by exclude' lines show a value as `matrix` rows do: an ESC or a CR escaped."""
    (tmp_path / "p.txt").write_bytes(b"one\x1b[31mred\nt\rwo\nplain\n")
    m = write(tmp_path / "m.yaml", 'params: {prompt: "x {{ p }} {{ n }}", quality: 360p}\nmatrix:\n'
              '  p: {file: p.txt}\n  n: [1, 2]\n  exclude:\n    - {n: 2}\n', HEAD)
    code, out, _ = run_cli(capsys, "plan", str(m), "--explain")
    removed = out.split("removed by exclude\n")[1].splitlines()
    assert code == 0 and [line.split("   ←")[0].strip() for line in removed] == [
        "p=one\\x1b[31mred, n=2", "p=t\\rwo, n=2", "p=plain, n=2"]
    assert "\x1b" not in out and "\r" not in out


def test_the_next_step_after_videos_could_not_be_saved_shows_the_folder_escaped() -> None:
    """The output folder status and run name when videos could not be saved there: an ESC in its name escaped."""
    from runner.cli import _next_steps

    said = _next_steps({"planned": 1}, unsaved="/v/a\x1b[31mb/outputs/fox").text
    assert said.startswith("videos could not be saved in /v/a\\x1b[31mb/outputs/fox: free space") and "\x1b" not in said


def test_plan_and_status_say_a_plain_run_looks_up_jobs_of_unknown_outcome_in_the_request_log_first(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Two jobs of unknown outcome (every create held by a gateway, nothing in the request log yet): a plain run
    looks them up by their keys in the provider's request log at no cost, so the plan's settled note and status's
    "next:" name that first, and `retry --unknown` (which may pay twice) for those still not found; so does
    `plan --json`, which counts them. The plan sends nothing."""
    from execkit import quick_backoff, sim_provider, stats, write_manifest

    from runner import executor
    from runner.executor import RunOptions

    monkeypatch.setenv("COLUMNS", "400")
    monkeypatch.setattr(executor, "LOG_SETTLE", 0.05)
    quick_backoff(monkeypatch)
    m = write_manifest(tmp_path, n_seeds=2, styles=("anime",), run={"retries": 0},
                       sim={"render_time": 0.1, "jitter": 0.0,
                            "script": [{"route": "create", "p": 1.0, "fault": "held"}]})
    prov = sim_provider(m)
    assert api_run(m, prov).stats.counts["unknown"] == 2
    code, out, _ = run_cli(capsys, "plan", str(m))
    assert code == 0 and ("0 in flight, 2 settled (unknown): `gridrun run` looks them up in the provider's request "
                          "log (no cost) and collects what it finds; `gridrun retry --unknown` sends again those "
                          "still not found, $0.70 (may pay twice)\n") in out, out
    doc = json.loads(run_cli(capsys, "plan", str(m), "--json")[1])
    assert doc["against_state"]["looked_up"] == 2
    assert doc["against_state"]["settled_sent_by"] == {"retry --unknown": {"jobs": 2, "usd": 0.7}}
    assert all(j["status"].startswith("unknown: looked up by its key in the provider's request log")
               for j in doc["jobs"])
    code, out, _ = run_cli(capsys, "status", str(m))
    assert code == 0 and ("next: `gridrun run` looks up the 2 jobs of unknown outcome in the provider's request "
                          "log (no cost) and collects what it finds; `gridrun retry --unknown` sends again those "
                          "still not found (may pay twice)\n") in out, out
    assert stats(prov)["creates"] == 0
    # as said: the held creates land, and a plain run finds both in the log, paying nothing new
    prov.app.state.sim.configure({"script": []})
    assert prov.app.state.sim.release_held() >= 2
    again = api_run(m, prov, RunOptions(poll_interval=0.1))
    assert again.exit_code == 0 and again.stats.counts["done"] == 2, again.stats.counts
    assert stats(prov)["creates"] == 2 and stats(prov)["duplicate_paid"] == 0


def test_plan_and_status_keep_to_retry_unknown_for_jobs_a_run_does_not_look_up_by_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Jobs of unknown outcome whose videos the provider lost (an in-process simulator's world not kept): a run
    asks for those videos by their ids, not for their keys in the request log, so the plan, `plan --json` and
    status's "next:" point to `retry --unknown` alone, as before."""
    from execkit import sim_provider, write_manifest

    from runner.executor import RunOptions

    monkeypatch.setenv("COLUMNS", "400")
    m = write_manifest(tmp_path, n_seeds=2, styles=("anime",), sim={"render_time": 3.0, "jitter": 0.0})
    api_run(m, sim_provider(m), RunOptions(timeout=0.3))
    assert api_run(m, sim_provider(m)).stats.counts["unknown"] == 2  # a fresh world: both videos gone
    code, out, _ = run_cli(capsys, "plan", str(m))
    assert code == 0 and ("0 in flight, 2 settled (unknown): `gridrun retry --unknown` sends them, $0.70 (may pay "
                          "twice)\n") in out, out
    assert "request log" not in out
    doc = json.loads(run_cli(capsys, "plan", str(m), "--json")[1])
    assert doc["against_state"]["looked_up"] == 0
    assert all(j["status"].startswith("unknown: its video asked for again by its id") for j in doc["jobs"])
    code, out, _ = run_cli(capsys, "status", str(m))
    assert code == 0 and ("next: `gridrun retry --unknown` sends again those of unknown outcome (may pay twice)\n"
                          in out), out


def test_plan_of_jobs_left_submitting_says_a_run_looks_them_up_first_and_what_sending_them_again_costs_at_most(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    """A run killed with its creates committed, their answers never recorded (`submitting`): `plan` counts them in
    flight, and says, in text and in `--json`, how many there are, that a run looks each up by its key first, at no
    cost, and sends again only those not found, and the most that costs; each job's status says the same. The run
    then does so: the creates never left, the log shows none, and each is sent once."""
    import time

    from execkit import write_manifest

    from runner.providers import SIM_WORLD
    from runner.sim.config import SimConfig
    from runner.sim.engine import Sim
    from runner.sim.world import World

    def world_stats(m: Path) -> dict[str, Any]:
        return Sim(SimConfig(), clock=time.time, world=World.open(m.parent / ".gridrun" / SIM_WORLD)).stats()

    monkeypatch.setenv("COLUMNS", "400")
    m = write_manifest(tmp_path, n_seeds=2, styles=("anime",), run={"concurrency": 2},
                       sim={"render_time": 0.1, "jitter": 0.0})
    env = {**os.environ, "GRIDRUN_CRASH_AT": "before-submit:1", "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    killed = subprocess.run([sys.executable, "-m", "runner.cli", "run", str(m), "--no-report"], env=env,
                            capture_output=True, timeout=120, check=False, cwd=tmp_path)
    assert killed.returncode == -9, killed.stderr[-500:]
    left = [j for j in api.status(m).jobs if j.state == "submitting"]
    assert left, [j.state for j in api.status(m).jobs]
    n = len(left)
    most = sum(j.cost_estimate_micros for j in left)
    code, out, _ = run_cli(capsys, "plan", str(m))
    said = " ".join(out.split())
    assert code == 0, out
    assert (f"{n} of the jobs in flight {'was' if n == 1 else 'were'} left submitting (a create sent, the answer not "
            "recorded): `gridrun run` looks") in said, said
    assert "up by its key in the provider's request log first, at no cost" in said, said
    assert f"at most ${most / 1e6:.2f} paid for {'it' if n == 1 else 'them'}" in said, said
    doc = json.loads(run_cli(capsys, "plan", str(m), "--json")[1])
    assert doc["against_state"]["submitting"] == {"jobs": n, "usd": most / 1e6}, doc["against_state"]
    status = {j["key"]: j["status"] for j in doc["jobs"]}
    assert all(status[j.key].startswith("in flight (submitting: its create sent, the answer not recorded): looked up "
                                        "by its key in the provider's request log first, at no cost") for j in left), status
    assert api.run(m, report=False).exit_code == 0
    assert world_stats(m)["creates"] == 2 and world_stats(m)["duplicate_paid"] == 0


def api_run(m: Path, provider: Any, options: Any = None) -> Any:
    from runner import api
    from runner.executor import RunOptions

    return api.run(m, provider=provider, options=options or RunOptions(), report=False)


def _nfd(path: Path) -> None:
    import unicodedata

    path.write_text(unicodedata.normalize("NFD", path.read_text(encoding="utf-8")), encoding="utf-8")


def _a_cafe_run(tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> Path:
    """A manifest writing `café` and `année` composed (NFC), run once: its path."""
    monkeypatch.setenv("COLUMNS", "400")
    m = write(tmp_path / "m.yaml", """\
        params:
          prompt: "a fox in a caf\u00e9, {{ look }}"
          quality: 360p
        matrix:
          look: [clay, "ann\u00e9e"]
        output: "{{ look }}.mp4"
        sim: {render_time: 0.1, jitter: 0}
        """, HEAD)
    assert run_cli(capsys, "run", str(m), "--no-report")[0] == 0
    return m


def test_a_manifest_saved_again_decomposed_warns_that_its_jobs_would_be_paid_again(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`café` saved as `cafe` + U+0301 reads the same but is another request: the plan names the letter and what to
    do, and its "differs from run 1" line shows the two texts apart, not as the same characters twice."""
    m = _a_cafe_run(tmp_path, capsys, monkeypatch)
    code, out, err = run_cli(capsys, "plan", str(m))
    assert code == 0 and "Unicode form" not in err + out
    _nfd(m)
    code, out, err = run_cli(capsys, "plan", str(m))
    said = " ".join((out + err).split())
    assert code == 0
    assert ("2 jobs differ from run 1 only in Unicode form (a letter composed or not: \u00e9 U+00E9 then, e + U+0301 "
            "now); 1 of them is planned as new, its key of run 1 (look=ann\u00e9e) no longer in the manifest: they "
            "would be rendered and paid for again") in said, said
    assert "save the manifest (or the data file the text comes from) as it was" in said, said
    assert '(params.prompt: "a fox in a caf\\u00e9, clay" then, "a fox in a cafe\\u0301, clay" now)' in said, said


def test_a_manifest_saved_again_decomposed_under_force_is_not_advised_to_be_saved_back(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
) -> None:
    """With --force every job is rendered and paid for again whatever its Unicode form: the warning still says the
    jobs differ from run 1 only in form, but does not advise saving the manifest back, which would save nothing."""
    m = _a_cafe_run(tmp_path, capsys, monkeypatch)
    _nfd(m)
    code, out, err = run_cli(capsys, "plan", str(m), "--force")
    said = " ".join((out + err).split())
    assert code == 0
    assert "2 jobs differ from run 1 only in Unicode form" in said, said
    assert "save the manifest" not in said and "to have them as run 1 made them" not in said, said


def test_a_text_saved_decomposed_with_an_invisible_character_added_shows_both_apart(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`café` saved as `cafe` + U+0301 and a zero width space added: the "differs from run 1" line writes both texts
    with their characters beyond ASCII escaped, as for the form alone, not the letter raw in both."""
    monkeypatch.setenv("COLUMNS", "400")
    m = write(tmp_path / "m.yaml", """\
        params:
          prompt: "un caf\u00e9 {{ look }}"
          quality: 360p
        matrix:
          look: [clay]
        sim: {render_time: 0.1, jitter: 0}
        """, HEAD)
    assert run_cli(capsys, "run", str(m), "--no-report")[0] == 0
    m.write_text(m.read_text(encoding="utf-8").replace("un caf\u00e9", "un cafe\u0301\u200b"), encoding="utf-8")
    code, out, err = run_cli(capsys, "plan", str(m))
    said = " ".join((out + err).split())
    assert code == 0
    assert '(params.prompt: "un caf\\u00e9 clay" then, "un cafe\\u0301\\u200b clay" now)' in said, said


def test_a_data_file_saved_again_decomposed_warns_too(
    tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    """A prompts file re-saved NFD: the job's key is another (`new`, the earlier one "no longer in the manifest");
    the plan says why, in its JSON too."""
    data = tmp_path / "prompts.txt"
    data.write_text("a fox in a caf\u00e9\nan owl\n", encoding="utf-8")
    m = write(tmp_path / "t.yaml", """\
        params:
          prompt: "{{ look }}"
          quality: 360p
        matrix:
          look: {file: prompts.txt}
        output: "{{ hash }}.mp4"
        sim: {render_time: 0.1, jitter: 0}
        """, HEAD)
    assert run_cli(capsys, "run", str(m), "--no-report")[0] == 0
    _nfd(data)
    code, out, _ = run_cli(capsys, "plan", "--json", str(m))
    assert code == 0
    warned = [w for w in json.loads(out)["warnings"] if "Unicode form" in w]
    assert warned and "1 job differs from run 1 only in Unicode form" in warned[0], warned
    assert "\u00e9 U+00E9 then, e + U+0301 now" in warned[0], warned


def test_a_file_saved_back_in_the_form_of_an_earlier_run_warns_of_nothing_to_pay(
    tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    """Run 1 composed, run 2 decomposed (warned, paid again), then the file saved back composed: its jobs are
    cached, done in run 1, nothing is sent; no warning that they would be paid again, nor advice to save the file
    as run 2 had it."""
    import unicodedata

    m = write(tmp_path / "m.yaml", """\
        params:
          prompt: "{{ w }}"
          quality: 360p
        matrix:
          w: ["caf\u00e9", "cr\u00e8me br\u00fbl\u00e9e"]
        output: "{{ hash }}.mp4"
        sim: {render_time: 0.1, jitter: 0}
        """, HEAD)
    composed = m.read_text(encoding="utf-8")
    assert run_cli(capsys, "run", str(m), "--no-report")[0] == 0
    _nfd(m)
    code, out, err = run_cli(capsys, "run", str(m), "--no-report")
    assert code == 0 and "2 jobs differ from run 1 only in Unicode form" in " ".join((out + err).split())
    m.write_text(unicodedata.normalize("NFC", composed), encoding="utf-8")
    code, out, err = run_cli(capsys, "plan", str(m))
    assert code == 0 and "0 to submit" in out + err, out + err
    assert "Unicode form" not in out + err and "paid for again" not in out + err, out + err


@pytest.mark.parametrize("invisible", ["\ufeff", "\u200b"])
def test_a_job_that_differs_from_the_last_run_only_by_an_invisible_character_is_warned_of(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], invisible: str,
) -> None:
    """A byte order mark (two prompts files joined) or a zero width space taken out of a prompt: the text reads
    the same, but the request is another, paid for again; said, naming the character, of a job whose key is the
    same (the text in params) and of one whose key is another (the text a matrix value)."""
    data = tmp_path / "prompts.txt"
    data.write_text(f"an owl {invisible}at night\n", encoding="utf-8")
    m = write(tmp_path / "m.yaml", f"""\
        params:
          prompt: "a fox{invisible} and {{{{ look }}}}"
          quality: 360p
        matrix:
          look: {{file: prompts.txt}}
          seed: [1]
        output: "{{{{ hash }}}}.mp4"
        sim: {{render_time: 0.1, jitter: 0}}
        """, HEAD)
    assert run_cli(capsys, "run", str(m), "--no-report")[0] == 0
    name = f"U+{ord(invisible):04X}"
    data.write_text("an owl at night\n", encoding="utf-8")
    code, out, _ = run_cli(capsys, "plan", "--json", str(m))
    assert code == 0
    warned = [w for w in json.loads(out)["warnings"] if "paid for again" in w]
    assert warned and (f"1 job differs from run 1 only by an invisible {name}, from prompts.txt:1; it is planned as "
                       "new, its key of run 1") in warned[0], warned
    m.write_text(m.read_text(encoding="utf-8").replace(invisible, ""), encoding="utf-8")
    data.write_text(f"an owl {invisible}at night\n", encoding="utf-8")
    code, out, _ = run_cli(capsys, "plan", "--json", str(m))
    warned = [w for w in json.loads(out)["warnings"] if "paid for again" in w]
    assert code == 0 and warned and f"1 job differs from run 1 only by an invisible {name}" in warned[0], warned


LONG_LINE = "un caf\u00e9 au lait dans une rue de Montmartre au petit matin"


def _a_prompts_file_run(tmp_path: Path, capsys: pytest.CaptureFixture[str], lines: str) -> Path:
    """A manifest whose prompts are the lines of prompts.txt (`lines`), a matrix value each, run once: its path."""
    (tmp_path / "prompts.txt").write_text(lines, encoding="utf-8")
    m = write(tmp_path / "m.yaml", """\
        params:
          prompt: "{{ p }}"
          quality: 360p
        matrix:
          p: {file: prompts.txt}
        output: "{{ hash }}.mp4"
        sim: {render_time: 0.05, jitter: 0}
        """, HEAD)
    assert run_cli(capsys, "run", str(m), "--no-report")[0] == 0
    return m


def test_a_long_value_saved_again_decomposed_is_warned_of_as_a_short_one_is(
    tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    """A value over 40 characters is in its job's key by its first characters and a hash of its text as written,
    so its key is another in another Unicode form: the job is found by its request as it reads, and counted in the
    warning with the short one."""
    m = _a_prompts_file_run(tmp_path, capsys, f"un caf\u00e9\n{LONG_LINE}\n")
    _nfd(tmp_path / "prompts.txt")
    code, out, _ = run_cli(capsys, "plan", "--json", str(m))
    assert code == 0
    warned = [w for w in json.loads(out)["warnings"] if "Unicode form" in w]
    assert warned and "2 jobs differ from run 1 only in Unicode form" in warned[0], warned


@pytest.mark.parametrize("taken_out", [True, False])
def test_a_zero_width_space_taken_out_of_a_long_line_or_put_in_is_warned_of(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], taken_out: bool,
) -> None:
    """A U+200B taken out of (or put into) a 60-character line: its key is another, its request reads the same."""
    plain = LONG_LINE.replace("\u00e9", "e")
    hidden = plain.replace("rue ", "rue \u200b")
    then, now = (hidden, plain) if taken_out else (plain, hidden)
    m = _a_prompts_file_run(tmp_path, capsys, then + "\n")
    (tmp_path / "prompts.txt").write_text(now + "\n", encoding="utf-8")
    code, out, _ = run_cli(capsys, "plan", "--json", str(m))
    warned = [w for w in json.loads(out)["warnings"] if "paid for again" in w]
    assert code == 0 and warned and "1 job differs from run 1 only by an invisible U+200B" in warned[0], warned


def test_a_long_matrix_value_of_the_manifest_saved_decomposed_is_warned_of(
    tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    """The same for a long matrix value written in the manifest itself."""
    m = write(tmp_path / "m.yaml", f"""\
        params:
          prompt: "{{{{ p }}}}"
          quality: 360p
        matrix:
          p: ["{LONG_LINE}"]
        output: "{{{{ hash }}}}.mp4"
        sim: {{render_time: 0.05, jitter: 0}}
        """, HEAD)
    assert run_cli(capsys, "run", str(m), "--no-report")[0] == 0
    _nfd(m)
    code, out, _ = run_cli(capsys, "plan", "--json", str(m))
    warned = [w for w in json.loads(out)["warnings"] if "Unicode form" in w]
    assert code == 0 and warned and "1 job differs from run 1 only in Unicode form" in warned[0], warned


def test_a_hangul_syllable_saved_decomposed_is_named_by_its_jamo() -> None:
    """`한` decomposed is three jamo, none a combining mark: named whole, not as its first jamo (a letter that
    would read as another)."""
    import unicodedata

    from runner.plan import form_said

    said = form_said({"p": "\ud55c\uad6d"}, {"p": unicodedata.normalize("NFD", "\ud55c\uad6d")})
    assert said == "\ud55c U+D55C then, \u1112 U+1112 + U+1161 + U+11AB now", said
    assert form_said({"p": "a caf\u00e9"}, {"p": "a cafe\u0301"}) == "\u00e9 U+00E9 then, e + U+0301 now"


@pytest.mark.parametrize(("codec", "encoding", "where"), [
    ("utf-16", "UTF-16LE", "1:1"),     # a BOM: what Notepad's "Unicode" and Windows PowerShell's `>` write
    ("utf-16-le", "UTF-16LE", "1:2"),  # no BOM: a NUL after each ASCII letter
    ("utf-16-be", "UTF-16BE", "1:1"),  # no BOM: a NUL before each
])
def test_a_manifest_saved_as_utf16_is_named_so_with_how_to_convert_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], codec: str, encoding: str, where: str,
) -> None:
    """A manifest saved as UTF-16 is told as such, with the iconv line that converts it, as a data file is: not
    as a byte 0xff, nor as a control character U+0000 the editor does not show."""
    m = tmp_path / "u16.yaml"
    m.write_bytes((HEAD + "params:\n  prompt: a fox\n  quality: 360p\n").encode(codec))
    code, out, err = run_cli(capsys, "validate", str(m))
    said = " ".join(err.split())
    assert code == 2, (out, err)
    assert f"u16.yaml:{where}:" in said, said
    assert f"this looks like UTF-16 text: save the file as UTF-8 (iconv -f {encoding} -t UTF-8)" in said, said
    assert "U+0000" not in said, said


@pytest.mark.parametrize(("codec", "encoding", "where"), [
    ("utf-32", "UTF-32LE", "1:1"),     # a BOM, ff fe 00 00: what PowerShell's `Out-File -Encoding utf32` writes
    ("utf-32-le", "UTF-32LE", "1:2"),  # no BOM: three NULs after each ASCII letter
    ("utf-32-be", "UTF-32BE", "1:1"),  # no BOM: three NULs before each
])
def test_a_manifest_saved_as_utf32_is_named_so_with_the_iconv_line_that_converts_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], codec: str, encoding: str, where: str,
) -> None:
    """Its BOM starts as UTF-16LE's does: it was called UTF-16, and the `iconv -f UTF-16LE` line given made a file
    refused again; one without a BOM was a control character U+0000."""
    text = HEAD + "params:\n  prompt: a fox\n  quality: 360p\n"
    m = tmp_path / "u32.yaml"
    m.write_bytes(text.encode(codec))
    code, out, err = run_cli(capsys, "validate", str(m))
    said = " ".join(err.split())
    assert code == 2, (out, err)
    assert f"u32.yaml:{where}:" in said, said
    assert f"this looks like UTF-32 text: save the file as UTF-8 (iconv -f {encoding} -t UTF-8)" in said, said
    assert "UTF-16" not in said and "U+0000" not in said, said
    converted = tmp_path / "conv.yaml"  # as the iconv line named converts it (a BOM kept, which is read past)
    converted.write_bytes(m.read_bytes().decode(encoding).encode("utf-8"))
    assert run_cli(capsys, "validate", str(converted))[0] == 0


def _a_spaced_run(tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> Path:
    """A manifest whose prompt, a block scalar, has a space at the end of its first line and no final line break
    (as written by hand), run once: its path."""
    monkeypatch.setenv("COLUMNS", "400")
    m = tmp_path / "m.yaml"
    m.write_text(HEAD + "matrix:\n  look: [clay, anime]\noutput: \"{{ look }}.mp4\"\nsim: {render_time: 0.1, "
                 "jitter: 0}\nparams:\n  quality: 360p\n  prompt: |\n    a {{ look }} lighthouse \n    at dusk",
                 encoding="utf-8")
    assert run_cli(capsys, "run", str(m), "--no-report")[0] == 0
    return m


def test_whitespace_fixed_by_a_commit_hook_warns_that_the_jobs_would_be_paid_again_and_says_what_differs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
) -> None:
    """What pre-commit's end-of-file-fixer and trailing-whitespace do to a manifest (a final line break added, the
    space at a line's end taken out) changes a prompt that reads the same: the plan names both, says the jobs
    would be paid for again and to save the file as it was, in its JSON too; --explain shows the earlier text
    beside the text now."""
    m = _a_spaced_run(tmp_path, capsys, monkeypatch)
    code, out, err = run_cli(capsys, "plan", str(m))
    assert code == 0 and "white space" not in out + err, out + err
    m.write_text(m.read_text(encoding="utf-8").replace("lighthouse \n", "lighthouse\n") + "\n", encoding="utf-8")
    code, out, err = run_cli(capsys, "plan", str(m))
    said = " ".join((out + err).split())
    assert code == 0
    assert ("2 jobs differ from run 1 only in white space (params.prompt: a final line break added, trailing spaces "
            "removed (line 1 of the value)): they would be rendered and paid for again, for what reads the same; to have them as "
            "run 1 made them, save the manifest (or the data file the text comes from) as it was") in said, said
    code, out, _ = run_cli(capsys, "plan", "--json", str(m))
    assert code == 0
    assert [w for w in json.loads(out)["warnings"] if "only in white space" in w], out
    code, out, err = run_cli(capsys, "plan", "--explain", str(m))
    assert code == 0
    assert 'prompt = "a clay lighthouse\\nat dusk\\n"' in out, out
    assert 'was "a clay lighthouse \\nat dusk"   (in run 1)' in out, out


def test_spaces_inside_a_line_changed_by_a_template_edit_are_white_space_shown_around_where_they_differ(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`{{ subject }} {{ extra }} running` with an empty extra writes two spaces; tidied to `{{- extra }}`, one: every
    job is paid again. The plan warns that they differ only in white space, and --explain shows the texts where
    they first differ (a long prompt's whole text, and a space less in it, cannot be seen)."""
    monkeypatch.setenv("COLUMNS", "400")
    m = tmp_path / "m.yaml"
    body = (HEAD + "vars:\n  subject: a red fox\n  extra: ''\nmatrix:\n  look: [clay, anime]\noutput: \"{{ look }}.mp4\"\n"
            "sim: {render_time: 0.1, jitter: 0}\nparams:\n  quality: 360p\n"
            "  prompt: \"{{ subject }} {{ extra }} running in the snow at dawn, {{ look }} style\"\n")
    m.write_text(body, encoding="utf-8")
    assert run_cli(capsys, "run", str(m), "--no-report")[0] == 0
    m.write_text(body.replace("{{ extra }}", "{{- extra }}"), encoding="utf-8")
    code, out, err = run_cli(capsys, "plan", str(m))
    said = " ".join((out + err).split())
    assert code == 0 and ("2 jobs differ from run 1 only in white space (params.prompt: spaces inside line 1 "
                          "changed)") in said, said
    code, out, err = run_cli(capsys, "plan", "--explain", str(m))
    assert code == 0
    assert ('differs from run 1: params.prompt (spaces inside line 1 changed): "a red fox  running in the s…" then, '
            '"a red fox running in the s…" now') in out, out


@pytest.mark.parametrize(("then", "now", "how"), [
    ("short\u00a0one", "short one", "a no-break space U+00A0 then, a space now"),
    ("short one", "short\u202fone", "a space then, a narrow no-break space U+202F now"),
])
def test_a_no_break_space_turned_into_a_space_is_white_space_named_and_shown_escaped(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, then: str, now: str, how: str,
) -> None:
    """A no-break space a spreadsheet or a word processor wrote, a plain space after a re-export (or the other way
    round): the text reads the same, the request is another. The plan warns that the job differs only in white
    space, naming the space, and its "differs from run 1" line writes both texts escaped, not the same text
    twice."""
    monkeypatch.setenv("COLUMNS", "400")
    data = tmp_path / "prompts.txt"
    data.write_text(f"a fox in the snow\n{then}\n", encoding="utf-8")
    m = write(tmp_path / "m.yaml", """\
        params:
          prompt: "{{ p }}"
          quality: 360p
        matrix:
          p: {file: prompts.txt}
        output: "{{ hash }}.mp4"
        sim: {render_time: 0.05, jitter: 0}
        """, HEAD)
    assert run_cli(capsys, "run", str(m), "--no-report")[0] == 0
    data.write_text(f"a fox in the snow\n{now}\n", encoding="utf-8")
    code, out, err = run_cli(capsys, "plan", str(m))
    said = " ".join((out + err).split())
    assert code == 0
    assert re.search(re.escape(f"1 job differs from run 1 only in white space (params.prompt: {how}") +
                     r"(, from prompts\.txt:2)?\): it would be rendered", said), said
    escaped = [json.dumps(t) for t in (then, now)]
    assert f"(params.prompt: {escaped[0]} then, {escaped[1]} now)" in said, said


def test_a_no_break_space_turned_into_a_space_in_a_long_line_is_found_by_its_request(
    tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    """A line over 40 characters is in its job's key by a hash of its text as written: another key, the job found
    by its request line by line, and warned of."""
    line = "a long establishing shot of a harbour at dawn with boats"
    data = tmp_path / "prompts.txt"
    data.write_text(line.replace(" at ", " at\u00a0") + "\n", encoding="utf-8")
    m = write(tmp_path / "m.yaml", """\
        params:
          prompt: "{{ p }}"
          quality: 360p
        matrix:
          p: {file: prompts.txt}
        output: "{{ hash }}.mp4"
        sim: {render_time: 0.05, jitter: 0}
        """, HEAD)
    assert run_cli(capsys, "run", str(m), "--no-report")[0] == 0
    data.write_text(line + "\n", encoding="utf-8")
    code, out, _ = run_cli(capsys, "plan", "--json", str(m))
    warned = [w for w in json.loads(out)["warnings"] if "white space" in w]
    assert code == 0 and warned, out
    assert "1 job differs from run 1 only in white space (params.prompt: a no-break space U+00A0 then" in warned[0]


def _a_number_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    """A manifest sending a `number` parameter (of a capabilities file) written `5`, run once: its path."""
    (tmp_path / "caps.yaml").write_text(textwrap.dedent("""\
        provider: sim
        models:
          pixverse-v5.6:
            params:
              guidance: {type: number, modes: [t2v, i2v], description: cfg}
        """), encoding="utf-8")
    m = write(tmp_path / "m.yaml", """\
        capabilities: [caps.yaml]
        params: {prompt: a fox, quality: 360p, guidance: 5}
        output: "x.mp4"
        sim: {render_time: 0.05, jitter: 0}
        """, HEAD)
    assert run_cli(capsys, "run", str(m), "--no-report")[0] == 0
    return m


def test_a_number_moved_from_the_manifest_into_a_data_file_is_warned_of_as_the_same_value(
    tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    """`guidance: 5` run, then the 5 moved into a CSV column: a data file's cell is text, which a `number`
    parameter reads as 5.0, another request (and key): the plan says the job differs only in how the number is
    written, naming the parameter."""
    m = _a_number_run(tmp_path, capsys)
    (tmp_path / "g.csv").write_text("id,g\na,5\n", encoding="utf-8")
    m.write_text(m.read_text(encoding="utf-8").replace("guidance: 5}", 'guidance: "{{ row.g }}"}\nmatrix:\n'
                                                       "  row: {file: g.csv}"), encoding="utf-8")
    code, out, _ = run_cli(capsys, "plan", "--json", str(m))
    warned = [w for w in json.loads(out)["warnings"] if "number is written" in w]
    assert code == 0 and warned, out
    assert ("1 job differs from run 1 only in how a number is written (params.guidance: 5 then, 5.0 now): it would "
            "be rendered and paid for again") in warned[0], warned


@pytest.mark.parametrize("written", ["5.0", '"5"', "5e0"])
def test_a_number_written_otherwise_in_the_manifest_is_warned_of(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], written: str,
) -> None:
    """`guidance: 5` then `5.0` (or "5", 5e0): the same key, another hash; the plan says why."""
    m = _a_number_run(tmp_path, capsys)
    m.write_text(m.read_text(encoding="utf-8").replace("guidance: 5}", f"guidance: {written}}}"), encoding="utf-8")
    code, out, _ = run_cli(capsys, "plan", "--json", str(m))
    warned = [w for w in json.loads(out)["warnings"] if "number is written" in w]
    assert code == 0 and warned and "(params.guidance: 5 then, 5.0 now)" in warned[0], out
    m.write_text(m.read_text(encoding="utf-8").replace(f"guidance: {written}}}", "guidance: 6}"), encoding="utf-8")
    code, out, _ = run_cli(capsys, "plan", "--json", str(m))
    assert code == 0 and not [w for w in json.loads(out)["warnings"] if "number is written" in w], out


PNG_BYTES = b"\x89PNG\r\n\x1a\n" + b"fox".ljust(32, b"\x00") + b"\x00\x00\x00\x00IEND\xaeB`\x82"


@pytest.mark.parametrize(("axis", "now"), [(False, "Fox.png"), (False, "fox-dawn.png"), (True, "Fox.png")])
def test_an_input_image_renamed_is_warned_of_as_the_same_content(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], axis: bool, now: str,
) -> None:
    """An input image renamed (a case-only rename too) and its line with it: the provider gets the same bytes, yet
    the job's hash holds the image's name, so it is paid for again. The plan says so, with the names then and now
    and the digest, and to rename it back; the same when the name is a matrix value (another key)."""
    import hashlib

    (tmp_path / "imgs").mkdir()
    (tmp_path / "imgs" / "fox.png").write_bytes(PNG_BYTES)
    image = '"{{ pic }}"' if axis else "imgs/fox.png"
    m = write(tmp_path / "m.yaml", f"""\
        params:
          prompt: a fox at dawn
          quality: 360p
          input_reference: {image}
        matrix:
          seed: [1, 2]
        output: "{{{{ seed }}}}.mp4"
        sim: {{render_time: 0.05, jitter: 0}}
        """, HEAD)
    if axis:
        m.write_text(m.read_text(encoding="utf-8").replace("matrix:\n", "matrix:\n  pic: [imgs/fox.png]\n"),
                     encoding="utf-8")
    assert run_cli(capsys, "run", str(m), "--no-report")[0] == 0
    (tmp_path / "imgs" / "fox.png").rename(tmp_path / "imgs" / now)
    m.write_text(m.read_text(encoding="utf-8").replace("imgs/fox.png", f"imgs/{now}"), encoding="utf-8")
    code, out, _ = run_cli(capsys, "plan", "--json", str(m))
    warned = [w for w in json.loads(out)["warnings"] if "name of input image" in w]
    assert code == 0 and warned, out
    digest = hashlib.sha256(PNG_BYTES).hexdigest()[:12]
    assert (f"2 jobs differ from run 1 only in the name of input image imgs/{now} (imgs/fox.png then), the same "
            f"content (sha256 {digest}): the provider gets the same request, yet they would be rendered and paid "
            "for again; rename it back (and its line in the manifest) to have them as run 1 made them") in warned[0]


def test_an_input_image_renamed_with_other_content_is_no_rename(
    tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    """An image of other bytes under another name is another request: no warning that it is the same."""
    (tmp_path / "fox.png").write_bytes(PNG_BYTES)
    m = write(tmp_path / "m.yaml", """\
        params: {prompt: a fox, quality: 360p, input_reference: fox.png}
        output: "x.mp4"
        sim: {render_time: 0.05, jitter: 0}
        """, HEAD)
    assert run_cli(capsys, "run", str(m), "--no-report")[0] == 0
    (tmp_path / "owl.png").write_bytes(PNG_BYTES.replace(b"fox", b"owl"))
    m.write_text(m.read_text(encoding="utf-8").replace("fox.png", "owl.png"), encoding="utf-8")
    code, out, _ = run_cli(capsys, "plan", "--json", str(m))
    assert code == 0 and not [w for w in json.loads(out)["warnings"] if "name of input image" in w], out


CAPS_EXTRA = """\
provider: sim
models:
  pixverse-v5.6:
    params:
      motion_mode: {type: string, enum: [normal, fast], default: normal, modes: [t2v, i2v], description: Motion}
"""


def test_a_default_of_a_capabilities_file_in_the_environment_is_named_and_warned_of(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
) -> None:
    """GRIDRUN_CAPABILITIES naming a file that adds a parameter with a default (exported for another project):
    every job's request, hash and price change with nothing changed in the manifest. Its source names the file
    and the variable, and the plan warns that the jobs differ from run 1 only by that default, and how to plan as
    run 1 did."""
    (tmp_path / "caps-extra.yaml").write_text(CAPS_EXTRA, encoding="utf-8")
    m = write(tmp_path / "m.yaml", """\
        params: {prompt: a fox, quality: 360p}
        matrix: {seed: [1, 2]}
        output: "{{ seed }}.mp4"
        sim: {render_time: 0.05, jitter: 0}
        """, HEAD)
    assert run_cli(capsys, "run", str(m), "--no-report")[0] == 0
    monkeypatch.setenv("GRIDRUN_CAPABILITIES", str(tmp_path / "caps-extra.yaml"))
    code, out, _ = run_cli(capsys, "plan", "--json", str(m))
    assert code == 0
    plan = json.loads(out)
    caps = str(tmp_path / "caps-extra.yaml")
    assert plan["jobs"][0]["sources"]["motion_mode"] == f"default ({caps}, from GRIDRUN_CAPABILITIES)", plan["jobs"][0]
    assert plan["jobs"][0]["sources"]["duration"] == "default (sim capability data)", plan["jobs"][0]
    warned = [w for w in plan["warnings"] if "GRIDRUN_CAPABILITIES" in w]
    assert warned and warned[0].startswith(
        f'2 jobs differ from run 1 only by params.motion_mode (not set then, "normal" now), a default of {caps}, '
        "named in GRIDRUN_CAPABILITIES (not in the manifest): they would be rendered and paid for again; unset "
        "GRIDRUN_CAPABILITIES"), warned


def test_a_default_of_a_capabilities_file_in_the_environment_no_longer_set_is_warned_of(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The other way: run 1 made with GRIDRUN_CAPABILITIES naming a file that adds a parameter with a default, the
    plan made in a shell without it. The parameter the jobs were sent with is set by nothing now: the plan warns
    that they differ only by it, naming the variable and saying to set it back; set back, they are cached. A
    parameter the last run's manifest set, taken out of it, is a change of the manifest, not warned of so."""
    (tmp_path / "caps-extra.yaml").write_text(CAPS_EXTRA, encoding="utf-8")
    m = write(tmp_path / "m.yaml", """\
        params: {prompt: a fox, quality: 360p}
        matrix: {seed: [1, 2]}
        output: "{{ seed }}.mp4"
        sim: {render_time: 0.05, jitter: 0}
        """, HEAD)
    monkeypatch.setenv("GRIDRUN_CAPABILITIES", str(tmp_path / "caps-extra.yaml"))
    assert run_cli(capsys, "run", str(m), "--no-report")[0] == 0
    monkeypatch.delenv("GRIDRUN_CAPABILITIES")
    code, out, _ = run_cli(capsys, "plan", "--json", str(m))
    assert code == 0
    warned = [w for w in json.loads(out)["warnings"] if "GRIDRUN_CAPABILITIES" in w]
    assert warned and warned[0].startswith(
        '2 jobs differ from run 1 only by params.motion_mode ("normal" then, not set now), a parameter the manifest '
        "does not set, which run 1 sent (a capabilities file's default?): they would be rendered and paid for "
        "again; if GRIDRUN_CAPABILITIES named a capabilities file for run 1 (it is not set now), set "
        "GRIDRUN_CAPABILITIES back as it was then"), warned
    monkeypatch.setenv("GRIDRUN_CAPABILITIES", str(tmp_path / "caps-extra.yaml"))
    code, out, _ = run_cli(capsys, "plan", "--json", str(m))
    plan = json.loads(out)
    assert code == 0 and [j["status"] for j in plan["jobs"]] == ["cached: done in run 1"] * 2, plan["jobs"]
    assert not [w for w in plan["warnings"] if "GRIDRUN_CAPABILITIES" in w], plan["warnings"]

    # set in the manifest for run 2, then taken out of it: the manifest's own change
    m.write_text(m.read_text(encoding="utf-8").replace("quality: 360p}", "quality: 360p, motion_mode: fast}"),
                 encoding="utf-8")
    assert run_cli(capsys, "run", str(m), "--no-report")[0] == 0
    m.write_text(m.read_text(encoding="utf-8").replace(", motion_mode: fast}", "}"), encoding="utf-8")
    monkeypatch.delenv("GRIDRUN_CAPABILITIES")
    code, out, _ = run_cli(capsys, "plan", "--json", str(m))
    assert code == 0 and not [w for w in json.loads(out)["warnings"] if "GRIDRUN_CAPABILITIES" in w], out


def test_a_default_of_the_manifests_own_capabilities_file_is_named_and_not_warned_of(
    tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    """A capabilities file the manifest names is part of the manifest: its default's source names it, and a job
    it changes is a change of the manifest, not warned of as the environment's."""
    (tmp_path / "caps.yaml").write_text(CAPS_EXTRA, encoding="utf-8")
    m = write(tmp_path / "m.yaml", """\
        params: {prompt: a fox, quality: 360p}
        output: "x.mp4"
        sim: {render_time: 0.05, jitter: 0}
        """, HEAD)
    assert run_cli(capsys, "run", str(m), "--no-report")[0] == 0
    m.write_text(m.read_text(encoding="utf-8") + "capabilities: [caps.yaml]\n", encoding="utf-8")
    code, out, _ = run_cli(capsys, "plan", "--json", str(m))
    plan = json.loads(out)
    assert code == 0 and plan["jobs"][0]["sources"]["motion_mode"] == "default (caps.yaml)", plan["jobs"][0]
    assert not [w for w in plan["warnings"] if "GRIDRUN_CAPABILITIES" in w], plan["warnings"]


def test_a_long_text_that_differs_shows_where_it_first_differs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("COLUMNS", "400")
    m = tmp_path / "m.yaml"
    body = (HEAD + "output: \"x.mp4\"\nsim: {render_time: 0.1, jitter: 0}\nparams:\n  quality: 360p\n"
            "  prompt: a red fox running through the fresh snow at dawn, the camera low beside it\n")
    m.write_text(body, encoding="utf-8")
    assert run_cli(capsys, "run", str(m), "--no-report")[0] == 0
    m.write_text(body.replace("fresh snow", "deep snow"), encoding="utf-8")
    code, out, err = run_cli(capsys, "plan", "--explain", str(m))
    assert code == 0
    assert ('differs from run 1: params.prompt: "…ing through the fresh snow at dawn, t…" then, '
            '"…ing through the deep snow at dawn, t…" now') in out, out


def test_whitespace_changed_under_force_is_not_advised_to_be_saved_back(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
) -> None:
    """With --force every job is paid again whatever its white space: the warning says they differ only so, but
    does not advise saving the manifest back."""
    m = _a_spaced_run(tmp_path, capsys, monkeypatch)
    m.write_text(m.read_text(encoding="utf-8") + "\n", encoding="utf-8")
    code, out, err = run_cli(capsys, "plan", str(m), "--force")
    said = " ".join((out + err).split())
    assert code == 0 and "2 jobs differ from run 1 only in white space (params.prompt: a final line break added)" in said
    assert "as it was" not in said, said


def test_a_change_of_words_is_not_told_as_white_space(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A prompt whose words changed, its line ends too, is a change: no warning that it reads the same."""
    m = _a_spaced_run(tmp_path, capsys, monkeypatch)
    m.write_text(m.read_text(encoding="utf-8").replace("lighthouse \n", "tower\n") + "\n", encoding="utf-8")
    code, out, err = run_cli(capsys, "plan", str(m))
    assert code == 0 and "2 jobs differ from run 1" in out + err and "white space" not in out + err, out + err


def test_white_space_changed_in_several_rows_names_each_rows_own_change_and_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
) -> None:
    """One row's trailing space added, another's removed: each kind of change is said with its rows' lines in the
    data file, and a line within a value is said as the value's, not to be read as the file's."""
    monkeypatch.setenv("COLUMNS", "400")
    (tmp_path / "shots.csv").write_text("id,prompt\n1,a red fox\n2,an owl\n3,a cat \n", encoding="utf-8")
    m = write(tmp_path / "shots.yaml", """\
        params:
          prompt: "{{ shot.prompt }}"
          quality: 360p
        matrix:
          shot: {file: shots.csv}
        output: "{{ shot.id }}.mp4"
        sim: {render_time: 0.05, jitter: 0}
        """, HEAD)
    assert run_cli(capsys, "run", str(m), "--no-report")[0] == 0
    (tmp_path / "shots.csv").write_text("id,prompt\n1,a red fox\n2,an owl \n3,a cat\n", encoding="utf-8")
    code, out, _ = run_cli(capsys, "plan", "--json", str(m))
    assert code == 0
    [warned] = [w for w in json.loads(out)["warnings"] if "white space" in w]
    assert warned.startswith("matrix.shot: 2 jobs differ from run 1 only in white space (params.prompt: trailing "
                             "spaces added (line 1 of the value), from shots.csv:3; params.prompt: trailing spaces "
                             "removed (line 1 of the value), from shots.csv:4); 2 of them are planned as new"), warned


def test_a_data_file_row_saved_again_decomposed_is_warned_of_at_its_file_naming_the_row_and_the_earlier_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A CSV row's `café` saved as `cafe` + U+0301: the warning is at the field naming the data file, names the row
    and the earlier key no longer in the manifest, and says to save that file as it was."""
    monkeypatch.setenv("COLUMNS", "400")
    (tmp_path / "shots.csv").write_text("id,prompt\n1,a red fox\n2,a caf\u00e9 at night\n", encoding="utf-8")
    m = write(tmp_path / "shots.yaml", """\
        params:
          prompt: "{{ shot.prompt }}"
          quality: 360p
        matrix:
          shot: {file: shots.csv}
        output: "{{ shot.id }}.mp4"
        sim: {render_time: 0.05, jitter: 0}
        """, HEAD)
    assert run_cli(capsys, "run", str(m), "--no-report")[0] == 0
    (tmp_path / "shots.csv").write_text("id,prompt\n1,a red fox\n2,a cafe\u0301 at night\n", encoding="utf-8")
    code, out, _ = run_cli(capsys, "plan", "--json", str(m))
    assert code == 0
    [warned] = [w for w in json.loads(out)["warnings"] if "Unicode form" in w]
    assert warned.startswith("matrix.shot: 1 job differs from run 1 only in Unicode form (a letter composed or not: "
                             "\u00e9 U+00E9 then, e + U+0301 now, from shots.csv:3); it is planned as new, its key of "
                             "run 1 (shot="), warned
    assert warned.endswith("save shots.csv as it was, in that form"), warned


def test_a_csv_saved_again_with_crlf_line_ends_names_the_new_job_and_the_data_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A CSV whose quoted cell holds a line break, saved again with CRLF line ends (a spreadsheet, a checkout with
    core.autocrlf): the row's value holds the CR, so its job has another key (new, the earlier one "no longer in
    the manifest"). The plan says that it is the request of run 1's job but for line ends, with that job's key,
    at the line naming the data file, and to save that file as it was; --explain shows the earlier text."""
    monkeypatch.setenv("COLUMNS", "400")
    (tmp_path / "shots.csv").write_bytes(b'id,prompt\nlamp,"a brass lamp\nslowly turning"\nchair,a wooden chair\n')
    m = write(tmp_path / "shots.yaml", """\
        params:
          prompt: "{{ shot.prompt }}. Soft light."
          quality: 360p
        matrix:
          shot: {file: shots.csv}
        output: "{{ shot.id }}.mp4"
        sim: {render_time: 0.1, jitter: 0}
        """, HEAD)
    assert run_cli(capsys, "run", str(m), "--no-report")[0] == 0
    (tmp_path / "shots.csv").write_bytes(
        b'id,prompt\r\nlamp,"a brass lamp\r\nslowly turning"\r\nchair,a wooden chair\r\n')
    code, out, err = run_cli(capsys, "plan", "--json", str(m))
    assert code == 0
    warned = [w for w in json.loads(out)["warnings"] if "white space" in w]
    assert len(warned) == 1, out
    assert warned[0].startswith("matrix.shot: 1 job differs from run 1 only in white space "
                                "(params.prompt: CRLF line ends (LF line ends then), from shots.csv:2); it is planned "
                                "as new, its key "
                                "of run 1 (shot="), warned
    assert "no longer in the manifest" in warned[0] and "save shots.csv as it was" in warned[0], warned
    code, out, err = run_cli(capsys, "plan", "--explain", str(m))
    assert code == 0
    assert "shots.yaml:8:3: matrix.shot: 1 job differs from run 1 only in white space" in " ".join(err.split()), err
    assert 'was "a brass lamp\\nslowly turning. Soft light."   (in run 1)' in out, out


def test_explain_shows_an_earlier_value_cut_at_its_bound() -> None:
    """`plan --explain` shows a parameter's earlier value quoted, its line ends escaped, and a long one cut."""
    from runner.cli import EARLIER_SHOWN, _earlier_value

    assert _earlier_value("a b \nc") == 'was "a b \\nc"'
    assert _earlier_value(None) == "was not set"
    long = _earlier_value("x" * 1000)
    assert long.startswith('was "xxx') and long.endswith("…") and len(long) == len("was ") + EARLIER_SHOWN


def test_status_of_a_runs_copy_of_its_manifest_names_the_manifest_file_in_what_to_run_next(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """`status .runs/run-1.yaml` shows run 1, read from its copy; the copy itself is refused by `retry`, so the
    command it proposes names the run's manifest file, as `status` with no manifest given does."""
    from execkit import write_manifest

    monkeypatch.chdir(tmp_path)
    m = write_manifest(tmp_path, n_seeds=1, styles=("anime",), sim={"render_time": 0.05, "failure_rate": 1.0,
                                                                    "failure_code": "INTERNAL_ERROR"})
    assert run_cli(capsys, "run", str(m), "--no-report")[0] == 1
    copy = Path("outputs") / "t" / ".runs" / "run-1.yaml"
    assert copy.is_file()
    code, out, err = run_cli(capsys, "status", str(copy))
    said = " ".join(out.split())
    assert code == 0 and "next: `gridrun retry t.yaml` sends failed jobs again" in said, (out, err)
    assert run_cli(capsys, "status")[1].count("`gridrun retry t.yaml`") == 1
    code, out, err = run_cli(capsys, "status", str(m))
    assert code == 0 and "next: `gridrun retry` sends failed jobs again" in " ".join(out.split()), (out, err)


def test_a_truncated_plan_lists_the_jobs_it_pays_for_first(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """A long plan whose middle changed lists the changed jobs (which the run pays for) among its rows, the cached
    ones at either end filling what is left, and says what the rows not listed are; --all lists every row."""
    def sweeps(subject: str) -> str:
        return f"""\
            params:
              prompt: "{{{{ subject }}}}, take {{{{ take }}}}"
            sim: {{render_time: 0.01, jitter: 0, concurrency: 8}}
            run: {{concurrency: 8}}
            sweeps:
              - name: a
                vars: {{subject: a fox}}
                matrix: {{take: {{range: [1, 24]}}}}
              - name: b
                vars: {{subject: {subject}}}
                matrix: {{take: {{range: [25, 35]}}}}
              - name: c
                vars: {{subject: an owl}}
                matrix: {{take: {{range: [36, 60]}}}}
            """
    path = write(tmp_path / "long.yaml", head=HEAD + "provider: sim\n", body=sweeps("a cat"))
    assert api.run(path, report=False).exit_code == 0
    write(tmp_path / "long.yaml", head=HEAD + "provider: sim\n", body=sweeps("a tabby cat"))
    code, out, _ = run_cli(capsys, "plan", str(path))
    assert code == 0
    listed = re.findall(r"^\s*\d+ │ (\S+)", out, re.MULTILINE)
    assert [k for k in listed if k.startswith("b/")] == [f"b/take={n}" for n in range(25, 36)], out
    assert len(listed) == 30 and listed[0] == "a/take=1" and listed[18] == "a/take=19", listed
    assert "… │ 5 more jobs, cached" in out and "… │ 25 more jobs, cached" in out, out
    assert "30 jobs not listed; --all lists every one" in out
    code, out, _ = run_cli(capsys, "plan", str(path), "--all")
    assert len(re.findall(r"^\s*\d+ │ ", out, re.MULTILINE)) == 60 and "more jobs" not in out


def test_a_row_standing_for_rows_not_listed_says_how_many_are_not_cached() -> None:
    from types import SimpleNamespace

    from runner.cli import _gap_row

    jobs = [SimpleNamespace(key=f"k{n}") for n in range(5)]
    diff = SimpleNamespace(reasons={"k0": "cached: done in run 1", "k1": "changed since the last run",
                                    "k2": "cached: done in run 2", "k3": "new", "k4": "cached: done in run 1"})
    assert _gap_row(range(5), jobs, diff) == "5 more jobs, 2 of them not cached"
    assert _gap_row([0, 2], jobs, diff) == "2 more jobs, cached"
    assert _gap_row([3], jobs, diff) == "1 more job"
    assert _gap_row(range(5), jobs, None) == "5 more jobs"


@pytest.mark.parametrize("width", [20, 40, 60])
def test_a_narrow_terminal_gets_every_key_and_price_whole(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, width: int,
) -> None:
    """A terminal (or a split pane) narrower than `plan`'s table and `status --runs`'s needs: no key split
    mid-word, no price cut to "$0.…" nor a column dropped; the rows listed one a line where the table cannot fit."""
    from execkit import write_manifest

    monkeypatch.setenv("COLUMNS", str(width))
    monkeypatch.chdir(tmp_path)
    m = write_manifest(tmp_path, n_seeds=2, styles=("anime", "cyberpunk"), sim={"render_time": 0.1, "jitter": 0.0})
    assert run_cli(capsys, "run", str(m), "--no-report")[0] == 0
    code, out, _ = run_cli(capsys, "plan", str(m))
    assert code == 0 and "…" not in out, out
    for key in ("style=anime,seed=1", "style=anime,seed=2", "style=cyberpunk,seed=1", "style=cyberpunk,seed=2"):
        assert any(key in line.split() and "$0.35" in line.split() for line in out.splitlines()), out
    code, out, _ = run_cli(capsys, "status", str(m), "--runs")
    assert code == 0 and "…" not in out and "$1.40" in out.split() and "done" in out.split(), out
    row = next(line for line in out.splitlines() if line.strip().startswith("1 "))
    assert "--no-report" in out and "4/4" in row, out


def _aligned(lines: list[str], cells: list[list[str]]) -> None:
    """Each of `cells` (a line's fields, the header's first) starts on its line where the same field of the header
    line starts: the columns stay aligned, an empty field left blank."""
    starts, at = [], 0
    for header in cells[0]:
        at = lines[0].index(header, at)
        starts.append(at)
        at += len(header)
    for line, fields in zip(lines, cells, strict=True):
        for start, field in zip(starts, fields, strict=True):
            assert line[start:start + len(field)] == field, (lines, field)
            assert field or line[start:start + 1] in ("", " "), (lines, field)


@pytest.mark.parametrize("columns", ["20", "40"])
def test_a_table_too_wide_for_the_terminal_is_a_list_whose_fields_stay_aligned(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, columns: str,
) -> None:
    """On a narrow terminal a table is a list, one row a line: each field starts where its column's header does on
    every line, rows with empty cells too (left blank, not left out, which would shift the fields after them)."""
    from rich.table import Table

    from runner import cli

    monkeypatch.setenv("COLUMNS", columns)
    headers = ["run", "started", "status", "done", "spent", "started with"]
    rows = [["12", "2026-12-07 06:50", "done", "4/4", "$1.40", "run m.yaml"],
            ["3", "", "crashed", "", "$0.00", "–"],
            ["1", "2026-12-01 08:00", "", "0/4", "", "run m.yaml --budget 2"]]
    table = Table(box=None, show_edge=False, pad_edge=False)
    for header in headers:
        table.add_column(header, no_wrap=True)
    for row in rows:
        table.add_row(*row)
    cli._print_table(table)
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 4, lines  # the list: no row drawn over several lines by rich
    _aligned(lines, [headers, *rows])


@pytest.mark.parametrize("columns", ["20", "40"])
def test_plan_and_status_runs_on_a_narrow_terminal_keep_their_fields_aligned(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, columns: str,
) -> None:
    from execkit import write_manifest

    monkeypatch.setenv("COLUMNS", columns)
    m = write_manifest(tmp_path, n_seeds=2, styles=("anime", "cyberpunk"), sim={"render_time": 0.1, "jitter": 0.0})
    code, out, _ = run_cli(capsys, "plan", str(m))
    assert code == 0
    lines = [line for line in out.splitlines() if line.startswith(("#", "1 ", "2 ", "3 ", "4 "))]
    keys = ["style=anime,seed=1", "style=anime,seed=2", "style=cyberpunk,seed=1", "style=cyberpunk,seed=2"]
    _aligned(lines, [["#", "key", "size", "s", "cost"],
                     *([str(n), key, "640x360", "5", "$0.35"] for n, key in enumerate(keys, 1))])
    assert api.run(m, report=False).status == "done"
    assert api.run(m, report=False).status == "done"  # all cached: its `done` cell wider than the first run's
    capsys.readouterr()
    code, out, _ = run_cli(capsys, "status", str(m), "--runs")
    assert code == 0
    lines = out.splitlines()[1:]
    assert len(lines) == 3 and lines[0].startswith("run  started ("), out
    spent = lines[0].index("spent")
    assert [line[spent:spent + 5] for line in lines] == ["spent", "$0.00", "$1.40"], lines
    status = lines[0].index("status")
    assert [line[status:status + 6] for line in lines] == ["status", "done  ", "done  "], lines


def test_plan_warns_of_an_output_disk_with_less_room_than_its_videos_may_take(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The output folder's disk has less room than the videos a run writes may take: `plan` (text and --json:
    `warnings`, `warnings_at`) says so before the run meets a full disk part way, and still plans (exit 0). The room
    needed is counted generously before any take is there (`VIDEO_BYTES_PER_PIXEL_SECOND` by each video's pixels
    and seconds, with its poster and sidecar); after a run, at the rate of the largest of the plan's earlier takes,
    for the videos still to write alone (those cached take no more room)."""
    import importlib

    plan = importlib.import_module("runner.plan")  # `runner.plan` is the function
    per_pixel_second, poster, sidecar = plan.VIDEO_BYTES_PER_PIXEL_SECOND, plan.POSTER_BYTES_PER_PIXEL, plan.SIDECAR_BYTES
    body = "params:\n  prompt: 'a fox {{ s }}'\n  quality: 1080p\n  duration: 5\nmatrix:\n  s: [1, 2]\n"
    m = write(tmp_path / "d.yaml", body, HEAD)
    free = [10**13]
    real = shutil.disk_usage
    monkeypatch.setattr(shutil, "disk_usage", lambda path: real(path)._replace(free=free[0]))
    pixels = 1920 * 1080
    code, out, err = run_cli(capsys, "plan", str(m), "--json")
    assert code == 0 and not [w for w in json.loads(out)["warnings"] if "disk holding" in w], out

    free[0] = 20_000_000
    poster_pixels = 480 * 270  # posters are scaled to 480 px wide
    need = int(2 * (pixels * 5 * per_pixel_second + poster_pixels * poster + sidecar))
    said = (f"the 2 videos a run writes may take about {need / 1e6:,.1f} MB (at "
            f"{per_pixel_second * pixels / 1e6:,.1f} MB a second of 1920x1080 video, a generous figure: "
            f"no earlier take of its jobs to weigh), and the disk holding {tmp_path / 'outputs' / 'fox'} has 20.0 MB "
            "free: free space there, or give the manifest an output folder on a disk with room (`outputs_dir:`); a "
            "run that meets a full disk stops there, and `gridrun run` with room goes on from where it stopped (what "
            "was sent is fetched at no new cost)")
    code, out, err = run_cli(capsys, "plan", str(m), "--json")
    doc = json.loads(out)
    assert code == 0 and len(doc["jobs"]) == 2, err
    assert f"name: {said}" in doc["warnings"], doc["warnings"]
    assert f"{m}:2:1: name: {said}" in doc["warnings_at"], doc["warnings_at"]
    code, out, err = run_cli(capsys, "plan", str(m))
    assert code == 0 and said in " ".join(err.split()), err

    free[0] = 10**13
    assert main(["run", str(m)]) == 0
    capsys.readouterr()
    videos = sorted((tmp_path / "outputs" / "fox").glob("*.mp4"))
    assert len(videos) == 2
    rate = max(v.stat().st_size for v in videos) / (pixels * 5)
    free[0] = 1_100_000  # above the 1 MiB the state's disk needs to be used at all
    code, out, err = run_cli(capsys, "plan", str(m), "--json")  # every video cached: nothing more to write
    assert code == 0 and not [w for w in json.loads(out)["warnings"] if "disk holding" in w], out

    write(m, body.replace("[1, 2]", "[1, 2, 3, 4, 5, 6]"), HEAD)
    need = int(4 * (pixels * 5 * rate + poster_pixels * poster + sidecar))
    assert need < 1_000_000 and rate * pixels < 1_000_000  # the simulator's takes are small: said in KB
    free[0] = need - 1
    code, out, err = run_cli(capsys, "plan", str(m), "--json")
    assert code == 0, err
    [warned] = [w for w in json.loads(out)["warnings"] if "disk holding" in w]
    assert warned.startswith(f"name: the 4 videos a run writes may take about {need / 1e3:,.1f} KB (at "
                             f"{rate * pixels / 1e3:,.1f} KB a second of 1920x1080 video, as the largest of 2 earlier "
                             "takes of its jobs weighs), and the disk holding "), warned
    free[0] = need + 1  # room for them, posters and all: no warning
    code, out, err = run_cli(capsys, "plan", str(m), "--json")
    assert code == 0 and not [w for w in json.loads(out)["warnings"] if "disk holding" in w], out
