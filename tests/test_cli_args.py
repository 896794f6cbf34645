"""How the command line reads its words, and what it says of those it cannot read."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from runner.cli import main


def refused(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    """Standard error of a command line refused as argparse refuses one (exit 2), nothing on standard output."""
    with pytest.raises(SystemExit) as exc:
        main(list(argv))
    captured = capsys.readouterr()
    assert exc.value.code == 2 and captured.out == "", captured
    return captured.err


@pytest.mark.parametrize(("argv", "said"), [
    (["run", "m.yaml", "--fo"], "gridrun run: error: unrecognized arguments: --fo; did you mean --force?"),
    (["run", "m.yaml", "--forc"], "gridrun run: error: unrecognized arguments: --forc; did you mean --force?"),
    (["retry", "m.yaml", "--unknow"],
     "gridrun retry: error: unrecognized arguments: --unknow; did you mean --unknown?"),
    (["retry", "m.yaml", "--u"], "gridrun retry: error: unrecognized arguments: --u; did you mean --unknown?"),
    (["plan", "m.yaml", "--expl"], "gridrun plan: error: unrecognized arguments: --expl; did you mean --explain?"),
])
def test_an_option_is_taken_only_as_written_whole(
    capsys: pytest.CaptureFixture[str], argv: list[str], said: str
) -> None:
    """`run M --fo` is refused, not run as `--force` (which pays again), and the option meant is named."""
    err = refused(capsys, *argv)
    assert err.rstrip().endswith(said), err


@pytest.mark.parametrize(("argv", "said"), [
    (["run", "m.yaml", "--budjet", "3"],
     "gridrun run: error: unrecognized arguments: --budjet 3; did you mean --budget?"),
    (["run", "m.yaml", "--budjet=3", "--jsn"],
     "unrecognized arguments: --budjet=3 --jsn; did you mean --budget for --budjet, --json for --jsn?"),
    (["rnu", "m.yaml"], ("gridrun: error: argument COMMAND: invalid choice: 'rnu'; did you mean 'run'? (choose from "
                         "'init', 'validate', 'matrix', 'plan', 'run', 'retry', 'recover', 'status', 'cancel', 'report', "
                         "'export', 'sim')")),
    (["run", "m.yaml", "-json"], "gridrun run: error: unrecognized arguments: -json; did you mean --json?"),
    (["plan", "m.yaml", "-budjet", "3"], "gridrun plan: error: unrecognized arguments: -budjet 3; did you mean --budget?"),
    (["run", "-json"], "required: manifest; unrecognized arguments: -json; did you mean --json?"),
    (["run", "m.yaml", "-x"], "gridrun run: error: unrecognized arguments: -x"),
    (["run", "m.yaml", "budget.yaml"], "gridrun run: error: unrecognized arguments: budget.yaml"),
    (["report", "m.yaml", "xrun"], "gridrun report: error: unrecognized arguments: xrun"),
    (["export", "m.yaml", "--format", "jsn"],
     "error: argument --format: invalid choice: 'jsn'; did you mean 'json'? (choose from 'jsonl', 'csv', 'json')"),
])
def test_a_mistyped_option_or_command_is_told_the_one_meant(
    capsys: pytest.CaptureFixture[str], argv: list[str], said: str
) -> None:
    err = refused(capsys, *argv)
    assert err.rstrip().endswith(said), err


_DRY_RUN = "; `gridrun plan m.yaml` is the dry run: it lists the jobs a run sends and what they cost, sending nothing"
_CONCURRENCY = "; did you mean --concurrency (the jobs at the provider at once)?"
_RESUME = ("gridrun: error: argument COMMAND: invalid choice: 'resume'; a plain `gridrun run m.yaml` resumes: it "
           "collects what earlier runs left in flight and sends only the jobs not done, paying for none twice")


@pytest.mark.parametrize(("argv", "said"), [
    (["run", "m.yaml", "--dry-run"], "gridrun run: error: unrecognized arguments: --dry-run" + _DRY_RUN),
    (["run", "m.yaml", "-n"], "gridrun run: error: unrecognized arguments: -n" + _DRY_RUN),
    (["run", "m.yaml", "-j"], "gridrun run: error: unrecognized arguments: -j" + _CONCURRENCY),
    (["run", "m.yaml", "-j", "3"], "gridrun run: error: unrecognized arguments: -j 3" + _CONCURRENCY.replace("cy", "cy 3")),
    (["retry", "m.yaml", "--jobs=3"], "unrecognized arguments: --jobs=3" + _CONCURRENCY.replace("cy", "cy 3")),
    (["run", "m.yaml", "-j4"], "gridrun run: error: unrecognized arguments: -j4" + _CONCURRENCY.replace("cy", "cy 4")),
    (["run", "-j=8", "m.yaml"], "gridrun run: error: unrecognized arguments: -j=8" + _CONCURRENCY.replace("cy", "cy 8")),
    (["run", "-jn", "m.yaml"], "gridrun run: error: unrecognized arguments: -jn" + _DRY_RUN),
    (["run", "-np", "m.yaml"], "gridrun run: error: unrecognized arguments: -np" + _DRY_RUN),
    (["run", "-j", "4"], "gridrun run: error: the following arguments are required: manifest; unrecognized "
                         "arguments: -j 4" + _CONCURRENCY.replace("cy", "cy 4")),
    (["run", "-j4"], "the following arguments are required: manifest; unrecognized arguments: -j4"
                     + _CONCURRENCY.replace("cy", "cy 4")),
    (["retry", "--jobs", "2"], "gridrun retry: error: the following arguments are required: manifest; unrecognized "
                               "arguments: --jobs 2" + _CONCURRENCY.replace("cy", "cy 2")),
    (["run", "-n"], "the following arguments are required: manifest; unrecognized arguments: -n"
                    + _DRY_RUN.replace("m.yaml", "M")),
    (["run", "m.yaml", "-json"], "gridrun run: error: unrecognized arguments: -json; did you mean --json?"),
    (["resume", "m.yaml"], _RESUME),
])
def test_another_batch_tools_option_or_command_is_told_what_gridrun_has_for_it(
    capsys: pytest.CaptureFixture[str], argv: list[str], said: str
) -> None:
    """Snakemake's `-n`/`--dry-run`, a video CLI's `--dry-run`, promptfoo's `-j` and `resume`: refused (nothing sent),
    and told gridrun's own: `plan`, `--concurrency`, a plain run."""
    err = refused(capsys, *argv)
    assert err.rstrip().endswith(said), err


@pytest.mark.parametrize("argv", [["run", "-j", "4", "m.yaml"], ["retry", "--jobs", "4", "m.yaml"],
                                  ["run", "--budget", "3", "-j", "4", "m.yaml", "--bogus"]])
def test_the_number_after_another_tools_jobs_option_is_its_not_the_manifest(
    capsys: pytest.CaptureFixture[str], argv: list[str]
) -> None:
    """`run -j 4 M`: `4` is not read as the manifest (M then called unrecognized); refused, with the flag to write."""
    err = refused(capsys, *argv).rstrip()
    option = argv[argv.index("4") - 1]
    unknown = f"{option} 4 --bogus" if "--bogus" in argv else f"{option} 4"
    assert err.endswith(f"error: unrecognized arguments: {unknown}" + _CONCURRENCY.replace("cy", "cy 4")), err
    assert "m.yaml" not in err.splitlines()[-1], err


@pytest.mark.parametrize(("argv", "said"), [
    (["run", "-budjet", "3", "m.yaml"], "gridrun run: error: unrecognized arguments: -budjet 3; did you mean --budget?"),
    (["run", "--budjet", "3", "m.yaml"], "gridrun run: error: unrecognized arguments: --budjet 3; did you mean --budget?"),
    (["plan", "-budjet", "3", "m.yaml", "-jsn"],
     "unrecognized arguments: -budjet 3 -jsn; did you mean --budget for -budjet, --json for -jsn?"),
    (["status", "--runs", "-lst", "3", "m.yaml"], "gridrun status: error: unrecognized arguments: -lst 3; did you mean --last?"),
    (["run", "-budjet", "m.yaml"], "gridrun run: error: unrecognized arguments: -budjet; did you mean --budget?"),
    (["run", "-budjet", "3"], ("gridrun run: error: the following arguments are required: manifest; unrecognized "
                               "arguments: -budjet 3; did you mean --budget?")),
])
def test_the_value_after_a_misspelt_option_is_its_not_the_manifest(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, argv: list[str], said: str
) -> None:
    """`run -budjet 3 M`: `3` is the value of the option meant (`--budget 3`), not a manifest named `3` (M then called
    unrecognized); refused, with the option meant, no file named `3` looked for."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "3").write_text("not: [a manifest\n")
    err = refused(capsys, *argv).rstrip()
    assert err.endswith(said), err
    assert "m.yaml" not in err.splitlines()[-1], err


@pytest.mark.parametrize(("argv", "said"), [
    (["plan", "--budjet", "m.json"], "gridrun plan: error: unrecognized arguments: --budjet; did you mean --budget?"),
    (["run", "--budjet", "m.json"], "gridrun run: error: unrecognized arguments: --budjet; did you mean --budget?"),
    (["plan", "-budjet", "manifest"], "gridrun plan: error: unrecognized arguments: -budjet; did you mean --budget?"),
    (["plan", "--budjet", "3"], ("gridrun plan: error: the following arguments are required: manifest; unrecognized "
                                 "arguments: --budjet 3; did you mean --budget?")),
    (["export", "--rnu", "2"], ("gridrun export: error: the following arguments are required: manifest; "
                                "unrecognized arguments: --rnu 2; did you mean --run?")),
    (["plan", "--concurrency", "4", "m.json"], ("gridrun plan: error: unrecognized arguments: --concurrency 4; "
                                                "--concurrency is an option of `gridrun run` and `gridrun retry`")),
    (["plan", "--poll-interval", "2", "m.json", "--explain"],
     ("gridrun plan: error: unrecognized arguments: --poll-interval 2; --poll-interval is an option of "
      "`gridrun run` and `gridrun retry`")),
    (["validate", "m.json", "--budget=3"], ("gridrun validate: error: unrecognized arguments: --budget=3; --budget is "
                                           "an option of `gridrun plan`, `gridrun run` and `gridrun retry`")),
    (["plan", "-j", "4", "m.json"], ("gridrun plan: error: unrecognized arguments: -j 4; the jobs at the provider at "
                                     "once are `gridrun run`'s --concurrency")),
])
def test_a_manifest_of_any_name_after_an_unknown_option_is_the_manifest(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, argv: list[str], said: str
) -> None:
    """A manifest not named .yaml or .yml (`m.json`, `manifest`) after a misspelt option is the manifest, not the
    option's value, where it is there and no other is given; an option another command takes with a value
    (`plan --concurrency 4 M`) takes the word after it, and is said to be that command's. Every command tells the
    option meant, with a manifest or without."""
    monkeypatch.chdir(tmp_path)
    for name in ("m.json", "manifest"):
        (tmp_path / name).write_text("version: 1\n")
    err = refused(capsys, *argv).rstrip()
    assert err.endswith(said), err


def test_an_unknown_option_in_json_names_the_manifest_given(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`plan --concurrency 4 --json M`, `plan --budjet M.json --json`: the error object names M, not the value."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "m.json").write_text("version: 1\n")
    for argv, said in ((["plan", "--concurrency", "4", "--json", "m.json"], "--concurrency is an option of "),
                       (["plan", "--budjet", "m.json", "--json"], "did you mean --budget?")):
        with pytest.raises(SystemExit) as exc:
            main(argv)
        out = capsys.readouterr().out
        doc = json.loads(out)
        assert exc.value.code == 2 and doc["manifest"] == str(tmp_path / "m.json"), out
        [error] = doc["errors"]
        assert said in error and "required" not in error, error


@pytest.mark.parametrize("argv", [["run"], ["retry"], ["run", "--bogus"], ["run", "--budget", "3"]])
def test_a_run_without_its_manifest_is_refused_as_argparse_refuses_it(
    capsys: pytest.CaptureFixture[str], argv: list[str]
) -> None:
    err = refused(capsys, *argv).rstrip()
    assert err.endswith(f"gridrun {argv[0]}: error: the following arguments are required: manifest"), err


def test_an_option_written_whole_with_its_value_after_an_equals_sign_still_reads() -> None:
    from runner.cli import _parser

    args = _parser(with_sim=False).parse_args(["run", "m.yaml", "--budget=3", "--force"])
    assert (args.budget, args.force) == (3.0, True)


@pytest.mark.parametrize(("argv", "said"), [
    (["--json", "plan", "m.yaml"], "gridrun plan: error: --json goes after the command: gridrun plan m.yaml --json"),
    (["--force", "run", "m.yaml"], "gridrun run: error: --force goes after the command: gridrun run m.yaml --force"),
    (["--json", "status", "m.yaml", "--watch"],
     "gridrun status: error: --json goes after the command: gridrun status m.yaml --watch --json"),
    (["--force", "--budget=3", "run", "my m.yaml"],
     "gridrun run: error: --force --budget=3 go after the command: gridrun run 'my m.yaml' --force --budget=3"),
])
def test_a_commands_option_written_before_it_is_told_to_go_after_it(
    capsys: pytest.CaptureFixture[str], argv: list[str], said: str
) -> None:
    """Not "unrecognized arguments: --json" under a usage that lists `[--json]`: the place is what is wrong."""
    err = refused(capsys, *argv)
    command = next(w for w in argv if not w.startswith("-"))
    assert err.startswith(f"usage: gridrun {command} [-h]"), err
    assert err.rstrip().endswith(said), err


@pytest.mark.parametrize(("argv", "said"), [
    (["--state", "x", "status", "m.yaml"],
     "gridrun status: error: --state x goes after the command: gridrun status m.yaml --state x"),
    (["--budget", "3", "run", "m.yaml"],
     "gridrun run: error: --budget 3 goes after the command: gridrun run m.yaml --budget 3"),
    (["--json", "--every", "1", "status", "m.yaml", "--watch"],
     "gridrun status: error: --json --every 1 go after the command: gridrun status m.yaml --watch --json --every 1"),
    (["--compare", "1", "2", "report", "m.yaml"],
     "gridrun report: error: --compare 1 2 goes after the command: gridrun report m.yaml --compare 1 2"),
])
def test_a_commands_option_written_before_it_with_its_value_after_a_space_is_told_to_go_after_it(
    capsys: pytest.CaptureFixture[str], argv: list[str], said: str
) -> None:
    """Not "invalid choice: 'x'", the value taken for the command's name: the place is what is wrong, as for
    `--budget=3` before the command."""
    err = refused(capsys, *argv)
    command = next(w for w in argv if w in ("status", "run", "report"))
    assert err.startswith(f"usage: gridrun {command} [-h]"), err
    assert err.rstrip().endswith(said), err


def test_an_unknown_option_before_the_command_is_still_unrecognized(capsys: pytest.CaptureFixture[str]) -> None:
    err = refused(capsys, "--bogus", "plan", "m.yaml")
    assert err.rstrip().endswith("gridrun plan: error: unrecognized arguments: --bogus"), err


@pytest.mark.parametrize(("argv", "usage", "said"), [
    ([], "usage: gridrun [-h] [--version] COMMAND ...",
     ("gridrun: error: name a command: init, validate, matrix, plan, run, retry, recover, status, cancel, report, "
      "export, sim")),
    (["sim"], "usage: gridrun sim [-h] COMMAND ...", "gridrun sim: error: name a command: serve"),
])
def test_a_command_line_that_names_no_command_is_a_usage_error_of_the_command_reached(
    capsys: pytest.CaptureFixture[str], argv: list[str], usage: str, said: str
) -> None:
    """`gridrun sim` shows `sim`'s usage, not the top level's help, and like plain `gridrun`, on standard error
    (exit 2): an error, not help asked for."""
    err = refused(capsys, *argv)
    assert err.startswith(usage) and err.rstrip().endswith(said), err


def helped(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    """`gridrun ARGV --help`, its words joined by single spaces (as wide as the terminal is, it wraps)."""
    with pytest.raises(SystemExit) as exc:
        main([*argv, "--help"])
    assert exc.value.code == 0
    return " ".join(capsys.readouterr().out.split())


def test_report_help_says_compare_writes_in_the_output_folder_the_manifest_names_now(
    capsys: pytest.CaptureFixture[str]
) -> None:
    """Not "run A's", which it is not once `outputs_dir` changed between the two runs (README says so too)."""
    said = helped(capsys, "report")
    assert "compare-RUN_A-RUN_B.html in the output folder the manifest names now" in said, said
    assert "run A's output folder" not in said, said


@pytest.mark.parametrize("command", ["run", "retry"])
def test_leave_in_flight_help_covers_jobs_sent_to_another_endpoint(
    capsys: pytest.CaptureFixture[str], command: str
) -> None:
    """The refusal of jobs in flight at another endpoint points at --leave-in-flight: its help says it covers them."""
    said = helped(capsys, command)
    option = said[said.index("--leave-in-flight run"):]
    assert "sent to another endpoint than the one now (left as they are, for a run there)" in option[:400], option


def test_plan_budget_previews_run_budget(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """`plan` says to set run.budget_usd or --budget where there is none, and takes `--budget` as `run` does:
    its budget line is measured against it, as `plan --force` previews `run --force`."""
    monkeypatch.setenv("COLUMNS", "200")
    m = tmp_path / "m.yaml"
    m.write_text("version: 1\nname: fox\nmodel: pixverse-v5.6\nparams: {prompt: a fox}\nmatrix: {seed: [1, 2]}\n",
                 encoding="utf-8")
    assert main(["plan", str(m)]) == 0
    assert "budget: none (no cap: set run.budget_usd or --budget)" in capsys.readouterr().out
    assert main(["plan", str(m), "--budget", "0.5"]) == 0
    assert "budget: $0.50 (exceeds: this run counts" in capsys.readouterr().out
    assert main(["plan", str(m), "--budget", "100"]) == 0
    assert "budget: $100.00 (fits: this run counts" in capsys.readouterr().out
    m.write_text(m.read_text(encoding="utf-8") + "run: {budget_usd: 100}\n", encoding="utf-8")
    assert main(["plan", str(m), "--budget=0.5", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["budget_usd"] == 0.5


def test_budget_text_is_read_as_the_manifest_reads_it_its_digits_as_written(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """`--budget` takes a number in ASCII decimal digits, as the manifest's `run.budget_usd` does (`4_20` is no
    $420 there, nor digits of another script), counted digit for digit as written and rounded down to the
    micro-dollar: 4.1999999999999999 is below $4.20, though its float is 4.2. The manifest's number the same."""
    monkeypatch.setenv("COLUMNS", "200")
    m = tmp_path / "m.yaml"
    m.write_text("version: 1\nname: fox\nmodel: pixverse-v5.6\nparams: {prompt: a fox}\n"
                 "matrix: {seed: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]}\n", encoding="utf-8")  # 12 x $0.35
    for text in ("4_20", "\u0664.\u0662\u0660", "0x10", "inf"):
        assert "a number in decimal digits" in refused(capsys, "plan", str(m), "--budget", text)
    for text, said in (("4.1999999999999999", "budget: $4.199999 (exceeds"), ("4.20", "budget: $4.20 (fits"),
                       ("4.1999995", "budget: $4.199999 (exceeds")):
        assert main(["plan", str(m), "--budget", text]) == 0
        assert said in capsys.readouterr().out, text
    for text, said in (("4.1999999999999999", "budget: $4.199999 (exceeds"),
                       ("4.1999999999999999  # a cap", "budget: $4.199999 (exceeds"), ("4.2", "budget: $4.20 (fits")):
        m.write_text(m.read_text(encoding="utf-8").split("run:")[0] + f"run:\n  budget_usd: {text}\n", encoding="utf-8")
        assert main(["plan", str(m)]) == 0
        assert said in capsys.readouterr().out, text
    m.write_text(m.read_text(encoding="utf-8").split("run:")[0] + "run: {budget_usd: 4.1999999999999999}\n",
                 encoding="utf-8")
    assert main(["plan", str(m)]) == 0
    assert "budget: $4.199999 (exceeds" in capsys.readouterr().out


@pytest.mark.parametrize("command", ["run", "retry"])
def test_run_help_states_the_default_of_each_knob(capsys: pytest.CaptureFixture[str], command: str) -> None:
    """Without `--timeout`, does a run wait for ever? How many jobs go at once without run.concurrency? Said in
    `--help`, as `--failure-retries` and `--max-jobs` say theirs."""
    said = helped(capsys, command)
    for default in ("jobs at the provider at once (default: run.concurrency, else 4)",
                    "retries of a request on transient errors (default: run.retries, else 3)",
                    "(default: run.failure_retries, else 0)",
                    "stop waiting, never the job (an unanswered create is not sent again past it; --request-timeout bounds each "
                    "request; default: run.timeout, else none: wait for each job to end)",
                    "seconds one HTTP request may take (at least 1; default: 30)"):
        assert default in said, (default, said)


def test_tables_written_to_a_file_or_a_pipe_keep_each_row_on_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """`status --runs | grep` and `plan > plan.txt`: an output that is no terminal is drawn as wide as the rows,
    not at 80 columns, where a long command line or a long key wrapped over several lines."""
    monkeypatch.delenv("COLUMNS", raising=False)
    m = tmp_path / "m.yaml"
    m.write_text("version: 1\nname: fox\nmodel: pixverse-v5.6\nparams: {prompt: 'a fox, {{ look }}', quality: 360p}\n"
                 "matrix: {look: [a-look-of-length-one, a-look-of-length-two], seed: [1, 2]}\n"
                 "sim: {render_time: 0.05, jitter: 0.0}\n", encoding="utf-8")
    words = ["--no-report", "--concurrency", "4", "--budget", "10", "--request-timeout", "20", "--fail-fast"]
    assert main(["run", str(m), *words]) == 0
    capsys.readouterr()
    assert main(["status", str(m), "--runs"]) == 0
    rows = capsys.readouterr().out.splitlines()
    assert rows[-1].rstrip().endswith(f"run {' '.join(words)}") and len(rows) == 3, rows
    assert main(["plan", str(m)]) == 0
    listed = [line for line in capsys.readouterr().out.splitlines() if "│" in line]
    assert len(listed) == 4, listed  # one line a job, the look column shown beside the key
    assert "│ look=a-look-of-length-two,seed=2 │ a-look-of-length-two │ 2 " in listed[-1], listed


COMMANDS = [["init"], ["validate"], ["matrix"], ["plan"], ["run"], ["retry"], ["recover"], ["status"], ["cancel"],
            ["report"], ["export"], ["sim"], ["sim", "serve"]]


def help_text(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    """`gridrun ARGV --help` as it prints it, its lines as they are."""
    with pytest.raises(SystemExit) as exc:
        main([*argv, "--help"])
    captured = capsys.readouterr()
    assert exc.value.code == 0 and captured.err == "", captured
    return captured.out


@pytest.mark.parametrize("command", COMMANDS, ids=[" ".join(c) for c in COMMANDS])
def test_each_commands_help_says_what_it_does_and_shows_an_example(
    capsys: pytest.CaptureFixture[str], command: list[str]
) -> None:
    """Not straight from the usage to the options: the command's line from `gridrun --help` as its description,
    more on what it reads and writes, and examples to copy."""
    text = help_text(capsys, *command)
    lines = text.splitlines()
    description = lines[lines.index("") + 1 : lines.index("", lines.index("") + 1)]
    assert description and description[0][:1].isupper() and len(" ".join(description)) > 80, text
    assert "examples:" in lines, text
    examples = lines[lines.index("examples:") + 1 :]
    assert examples and all(e.startswith("  ") for e in examples), text
    assert any(f"gridrun {' '.join(command)}" in e for e in examples), text


def test_the_commands_list_says_the_first_steps_and_the_exit_codes(capsys: pytest.CaptureFixture[str]) -> None:
    text = help_text(capsys)
    steps = text[text.index("first steps:") :]
    for command in ("init", "validate demo.yaml", "plan demo.yaml", "run demo.yaml"):
        assert f"\n  gridrun {command} " in steps, text
    codes = text[text.index("exit codes:") :]
    assert [line.split()[0] for line in codes.splitlines()[1:] if line[2:3].strip()] == \
        ["0", "1", "2", "3", "4", "5", "130"], codes
    assert "`gridrun COMMAND --help` describes a command" in " ".join(text.split())
    assert "2 an invalid manifest or command line; the provider's API key unset or pasted with more than the key" \
        in " ".join(codes.split())


@pytest.mark.parametrize(("argv", "said"), [
    (["help"], ("gridrun: error: 'help' is no command: `gridrun --help` lists the commands, and `gridrun COMMAND "
                "--help` describes one (`gridrun run --help`)")),
    (["help", "run"], "gridrun: error: 'help' is no command: `gridrun run --help` describes run"),
    (["help", "sim", "serve"], "gridrun: error: 'help' is no command: `gridrun sim serve --help` describes sim serve"),
    (["help", "me"], "gridrun: error: 'help' is no command: `gridrun --help` lists the commands"),
])
def test_help_as_a_command_is_told_the_help_option_to_use(
    capsys: pytest.CaptureFixture[str], argv: list[str], said: str
) -> None:
    err = " ".join(refused(capsys, *argv).split())
    assert said in err, err


@pytest.mark.parametrize("argv", [["--help"], ["--version"], ["plan", "--help"]], ids=" ".join)
@pytest.mark.parametrize("stdout", ["full", "closed"])
def test_help_and_version_that_cannot_be_written_exit_1_naming_the_stream(argv: list[str], stdout: str) -> None:
    """`gridrun --help >/dev/full` (or with standard output closed): the text is lost, so the command says which
    stream it could not write and exits 1, as every command does, not 0 with nothing said, nor the interpreter's
    own complaint as it exits (120)."""
    import os
    import subprocess
    import sys

    command = [sys.executable, "-m", "runner.cli", *argv]
    if stdout == "full":
        with open("/dev/full", "w") as full:
            done = subprocess.run(command, stdout=full, stderr=subprocess.PIPE, text=True, timeout=60, check=False)
    else:
        done = subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, timeout=60,
                              check=False, preexec_fn=lambda: os.close(1))
    assert done.returncode == 1, done.stderr
    assert "error: standard output could not be written" in done.stderr, done.stderr
    assert "Exception ignored" not in done.stderr and "Traceback" not in done.stderr, done.stderr


def test_help_read_by_a_reader_that_goes_exits_0() -> None:
    """`gridrun --help | head -1`: the reader took what it wanted; nothing to say, exit 0."""
    import subprocess
    import sys

    done = subprocess.run(f"{sys.executable} -m runner.cli --help | head -1; exit ${{PIPESTATUS[0]}}",
                          shell=True, executable="/bin/bash", capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0 and done.stdout.startswith("usage: gridrun"), done.stdout + done.stderr
    assert done.stderr == "", done.stderr


def test_cancel_help_says_void_unsent_puts_back_any_job_left_sending_the_log_does_not_list(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`--void-unsent` acts on every job a stopped run left sending that the request log does not list an hour after
    its send, as the README and `runner.cancel` say, whether the manifest still has it or not."""
    from runner import api
    from runner.cli import main

    monkeypatch.setenv("COLUMNS", "200")
    with pytest.raises(SystemExit):
        main(["cancel", "--help"])
    said = " ".join(capsys.readouterr().out.split())
    assert ("--void-unsent put back as not sent the jobs a stopped run left sending that the provider's request log "
            "does not list an hour after their send, whether the manifest still has them or not") in said, said
    assert "which the manifest no longer has" not in " ".join((api.cancel.__doc__ or "").split())
