"""The steps `status` and a run's end propose after a run whose manifest file was edited since: built from what
a run of the manifest as it is now does, not from the state alone (the manifest as that run had it)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from execkit import in_flight, write_manifest

from runner import api
from runner.options import RunOptions
from runner.state import Store


def test_status_after_an_edit_that_drops_the_jobs_in_flight_gives_the_ways_on_a_run_gives_not_a_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from runner.cli import main

    m = write_manifest(tmp_path, n_seeds=1, styles=("anime", "clay"), run={"concurrency": 2},
                       sim={"render_time": 30, "jitter": 0.0})
    assert api.run(m, report=False, options=RunOptions(timeout=0.3)).status == "incomplete"
    assert in_flight(m) == 2
    monkeypatch.chdir(tmp_path)
    capsys.readouterr()
    assert main(["status", str(m)]) == 0
    assert "collects the 2 jobs left in flight" in " ".join(capsys.readouterr().out.split())
    m.write_text(m.read_text().replace("- anime\n  - clay\n", "- comic\n"))
    assert main(["status", str(m)]) == 0
    said = " ".join(capsys.readouterr().out.split())
    tail = said[said.index("next:"):]
    assert "collects the 2 jobs" not in tail, tail
    assert "`gridrun run` of the manifest as it is now refuses to start: 2 jobs of run 1" in tail, tail
    assert "run-1.yaml" in tail and "--leave-in-flight" in tail, tail
    assert main(["status", str(m), "--json"]) == 0  # the same step, planned as the manifest is now
    doc = json.loads(capsys.readouterr().out)
    assert " ".join(tail.removeprefix("next: ").split()) == " ".join(doc["next"].split()), (tail, doc["next"])
    # its ways on are a choice (the manifest put back by hand, or the jobs in flight left behind): no command to run
    assert doc["next_note"] is None and doc["next_commands"] == [], doc


def test_a_prompt_edited_while_the_run_goes_on_is_said_at_its_end_and_by_status_with_the_retry_advice(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from runner.cli import main

    m = write_manifest(tmp_path, n_seeds=2, styles=("anime",), run={"concurrency": 1, "retries": 0},
                       sim={"render_time": 0.05, "jitter": 0.0, "failure_rate": 1.0,
                            "failure_code": "INTERNAL_ERROR"})
    begin = Store.begin_submit

    def edited_as_sent(self: Store, *args: Any, **kw: Any) -> Any:
        m.write_text(m.read_text().replace("a fox", "a wolf"))  # another branch checked out as the run sends
        return begin(self, *args, **kw)

    monkeypatch.setattr(Store, "begin_submit", edited_as_sent)
    monkeypatch.chdir(tmp_path)
    capsys.readouterr()
    assert main(["run", str(m), "--no-report"]) == 1
    monkeypatch.setattr(Store, "begin_submit", begin)
    ran = " ".join(capsys.readouterr().err.split())
    assert "`gridrun retry` sends" in ran, ran
    assert ("warning: the manifest file was edited while the run went on: the manifest changed since run 1: 2 jobs "
            "differ from run 1") in ran, ran
    assert "a run or retry of it as it is now sends those jobs as they are now" in ran, ran
    assert main(["status", str(m)]) == 0
    said = " ".join(capsys.readouterr().out.split())
    assert "note: the manifest changed since run 1: 2 jobs differ from run 1" in said, said
    assert main(["status", str(m), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert f"next: {doc['next']} note: {doc['next_note']}" in said, (said, doc)
    assert doc["next_note"].startswith("the manifest changed since run 1: 2 jobs differ from run 1"), doc
    assert doc["next_commands"] == [f"gridrun retry {m}"], doc  # the manifest as given


def test_a_data_file_row_edited_under_a_job_in_flight_is_named_by_run_plan_and_status_as_what_to_put_back(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The manifest as run 1 had it, but a row of its CSV edited while that row's job renders: the refusal over the
    job in flight names the file, the row's line and its cell then and now, and says to put the file back (not
    the manifest, which is as it was: its copy put back refuses again); `status`'s next step is that refusal, not
    a collection a run would refuse; the file put back, a run collects both jobs."""
    from runner.cli import main
    from runner.errors import InFlightError

    monkeypatch.setenv("COLUMNS", "400")
    monkeypatch.chdir(tmp_path)
    rows = tmp_path / "rows.csv"
    rows.write_text("id,prompt\na,owl\nb,lark\n")
    m = tmp_path / "m.yaml"
    m.write_text("version: 1\nname: g\nprovider: sim\nmodel: pixverse-v5.6\n"
                 "params: {prompt: \"{{ shot.prompt }}\", quality: 360p, duration: 5}\n"
                 "matrix:\n  shot: {file: rows.csv}\noutput: \"{{ shot.id }}.mp4\"\n"
                 "sim: {render_time: 30, jitter: 0.0}\nrun: {concurrency: 2}\n")
    assert api.run(m, report=False, options=RunOptions(timeout=0.3)).status == "incomplete"
    assert in_flight(m) == 2
    rows.write_text("id,prompt\na,owl at night\nb,lark\n")
    said = ("The data file rows.csv has changed since run 1 (rows.csv:2: prompt 'owl' then, 'owl at night' now): put "
            "that file back (e.g. git checkout <ref> -- rows.csv) and run the manifest to collect it")
    with pytest.raises(InFlightError) as refused:
        api.run(m, report=False)
    message = " ".join(str(refused.value).split())
    assert said in message and "Put the manifest back" not in message, message
    assert "the manifest no longer has" not in message, message
    assert message.startswith("1 job of run 1 ($0.35) is in flight, and its row in the data file rows.csv changed "
                              'since that run (shot={"id":"a","prompt":"owl"}): 1 sent, not yet seen finished'), message
    capsys.readouterr()
    assert main(["status", str(m)]) == 0
    out = " ".join(capsys.readouterr().out.split())
    tail = out[out.index("next:"):]
    assert "collects the 2 jobs" not in tail, tail
    assert "`gridrun run` of the manifest as it is now refuses to start" in tail and said in tail, tail
    rows.write_text("id,prompt\na,owl\nb,lark\n")
    assert main(["status", str(m)]) == 0
    assert "collects the 2 jobs left in flight" in " ".join(capsys.readouterr().out.split())


@pytest.mark.parametrize(("kept", "first", "detail"), [
    ("a,owl\nc,wren\n", 'its row in the data file rows.csv was removed since that run (shot={"id":"b","prompt":"lark"})',
     'rows.csv:3: run 1\'s row {"id": "b", "prompt": "lark"} was removed'),
    ("b,lark\n", "their rows in the data file rows.csv were removed since that run",
     ('rows.csv:2: run 1\'s row {"id": "a", "prompt": "owl"} was removed; '
      'rows.csv:4: run 1\'s row {"id": "c", "prompt": "wren"} was removed')),
], ids=["one", "two"])
def test_a_data_file_row_removed_under_a_job_in_flight_is_said_removed_at_the_line_it_had(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, kept: str, first: str,
    detail: str
) -> None:
    """A row deleted from the CSV while its job renders is not an edited row: the refusal says it was removed,
    naming the file and the line the row had, and `status` gives that refusal as its next step."""
    from runner.cli import main
    from runner.errors import InFlightError

    monkeypatch.setenv("COLUMNS", "400")
    monkeypatch.chdir(tmp_path)
    rows = tmp_path / "rows.csv"
    rows.write_text("id,prompt\na,owl\nb,lark\nc,wren\n")
    m = tmp_path / "m.yaml"
    m.write_text("version: 1\nname: g\nprovider: sim\nmodel: pixverse-v5.6\n"
                 "params: {prompt: \"{{ shot.prompt }}\", quality: 360p, duration: 5}\n"
                 "matrix:\n  shot: {file: rows.csv}\noutput: \"{{ shot.id }}.mp4\"\n"
                 "sim: {render_time: 30, jitter: 0.0}\nrun: {concurrency: 3}\n")
    assert api.run(m, report=False, options=RunOptions(timeout=0.3)).status == "incomplete"
    assert in_flight(m) == 3
    rows.write_text("id,prompt\n" + kept)
    with pytest.raises(InFlightError) as refused:
        api.run(m, report=False)
    message = " ".join(str(refused.value).split())
    assert f"in flight, and {first}" in message and "changed since that run" not in message, message
    assert f"The data file rows.csv has changed since run 1 ({detail}): put that file back" in message, message
    capsys.readouterr()
    assert main(["status", str(m)]) == 0
    out = " ".join(capsys.readouterr().out.split())
    tail = out[out.index("next:"):]
    assert "`gridrun run` of the manifest as it is now refuses to start" in tail and detail in tail, tail


_PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32 + b"\x00\x00\x00\x00IEND\xaeB`\x82"


@pytest.mark.parametrize("named", ["in a data file's row", "in params"])
def test_an_input_image_edited_under_a_job_in_flight_makes_status_give_the_runs_refusal_not_a_collection(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, named: str
) -> None:
    """The manifest and its data file as run 1 had them, but the input image a job in flight sent written over:
    a run refuses to start over that job, and `status` (text and JSON) gives that refusal as the next step, not
    "`gridrun run` collects the job"; the image put back, the collection again."""
    from runner.cli import main
    from runner.errors import InFlightError

    monkeypatch.setenv("COLUMNS", "400")
    monkeypatch.chdir(tmp_path)
    image = tmp_path / "a.png"
    image.write_bytes(_PNG.replace(b"\x00" * 32, b"owl".ljust(32, b"\x00")))
    if named == "in params":
        params, matrix = 'prompt: an owl, input_reference: a.png', ""
    else:
        (tmp_path / "rows.csv").write_text("id,prompt,img\na,an owl,a.png\n")
        params, matrix = 'prompt: "{{ r.prompt }}", input_reference: "{{ r.img }}"', "matrix:\n  r: {file: rows.csv}\n"
    m = tmp_path / "m.yaml"
    m.write_text(f"version: 1\nname: g\nprovider: sim\nmodel: pixverse-v5.6\n"
                 f"params: {{{params}, quality: 360p, duration: 5}}\n{matrix}output: a.mp4\n"
                 "sim: {render_time: 30, jitter: 0.0}\n")
    assert api.run(m, report=False, options=RunOptions(timeout=0.3)).status == "incomplete"
    assert in_flight(m) == 1
    was = image.read_bytes()
    image.write_bytes(_PNG.replace(b"\x00" * 32, b"lark".ljust(32, b"\x00")))
    with pytest.raises(InFlightError) as refused:
        api.run(m, report=False)
    said = "The input image a.png: its content differs from run 1's"
    message = " ".join(str(refused.value).split())
    assert said in message and "the manifest no longer has" not in message, message
    assert message.startswith("1 job of run 1 ($0.35) is in flight, and the input image a.png changed since that "
                              "run ("), message
    # the manifest is as the run had it: the image alone is to put back
    assert "put that file back (e.g. git checkout <ref> -- a.png) and run the manifest to collect it" in message, \
        message
    capsys.readouterr()
    assert main(["status", str(m)]) == 0
    out = " ".join(capsys.readouterr().out.split())
    tail = out[out.index("next:"):]
    assert "collects the 1 job" not in tail, tail
    assert "`gridrun run` of the manifest as it is now refuses to start" in tail and said in tail, tail
    assert main(["status", str(m), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert said in doc["next"] and doc["next_commands"] == [], doc
    image.write_bytes(was)
    assert main(["status", str(m)]) == 0
    assert "collects the 1 job left in flight" in " ".join(capsys.readouterr().out.split())


@pytest.mark.timeout(120)
@pytest.mark.parametrize("change", ["the prompt edited", "the input image replaced"])
def test_status_of_a_killed_run_whose_manifest_changed_gives_the_runs_refusal_not_a_resume(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, change: str
) -> None:
    """A run killed with jobs in flight (its process gone, its end not recorded), then its prompt edited or the
    input image a job in flight sent replaced: a run refuses to start over those jobs, and `status` (text and JSON)
    gives that refusal as the next step, where it said "`gridrun run` resumes it"; the manifest and image as the run
    had them, it says so again."""
    import os
    import signal
    import subprocess
    import sys

    from runner.cli import main
    from runner.errors import InFlightError

    monkeypatch.setenv("COLUMNS", "400")
    monkeypatch.chdir(tmp_path)
    image = tmp_path / "a.png"
    was = _PNG.replace(b"\x00" * 32, b"owl".ljust(32, b"\x00"))
    image.write_bytes(was)
    m = write_manifest(tmp_path, n_seeds=2, styles=("anime",), run={"concurrency": 2},
                       sim={"render_time": 30, "jitter": 0.0, "concurrency": 2})
    text = m.read_text()
    m.write_text(text.replace("duration: 5", "duration: 5\n  input_reference: a.png"))
    assert "input_reference: a.png" in m.read_text()
    killed = subprocess.run([sys.executable, "-m", "runner.cli", "run", str(m), "--no-report"], cwd=tmp_path,
                            capture_output=True, text=True, timeout=60, check=False,
                            env={**os.environ, "GRIDRUN_CRASH_AT": "after-submit:1"})
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert api.status(m).counts["submitting"] == 2  # sent, not yet recorded as taken: in flight
    assert main(["status", str(m)]) == 0
    said = " ".join(capsys.readouterr().out.split())
    assert "`gridrun run` resumes it" in said, said
    as_run_had_it = m.read_text()
    if change == "the prompt edited":
        m.write_text(as_run_had_it.replace("a fox", "a wolf"))
    else:
        image.write_bytes(_PNG.replace(b"\x00" * 32, b"lark".ljust(32, b"\x00")))
    with pytest.raises(InFlightError) as refused:
        api.run(m, report=False)
    assert main(["status", str(m)]) == 0
    said = " ".join(capsys.readouterr().out.split())
    assert "is gone without recording its end" in said and "resumes it" not in said, said
    tail = said[said.index("next:"):]
    assert "`gridrun run` of the manifest as it is now refuses to start" in tail, tail
    assert " ".join(str(refused.value).split())[:60] in tail, (tail, str(refused.value))
    assert main(["status", str(m), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["process_gone"] is True and doc["next"] is not None, doc
    assert " ".join(tail.removeprefix("next: ").split()) == " ".join(doc["next"].split()), (tail, doc["next"])
    assert doc["next_commands"] == [] and doc["next_note"] is None, doc
    m.write_text(as_run_had_it)
    image.write_bytes(was)
    assert main(["status", str(m)]) == 0
    said = " ".join(capsys.readouterr().out.split())
    assert "`gridrun run` resumes it" in said and "refuses to start" not in said, said


def _creates(m: Path) -> int:
    """The creates the simulator built in was sent, as its world file records them."""
    return (m.parent / ".gridrun" / "sim-world.jsonl").read_text().count('"t":"create"')


def test_name_and_prompt_edited_over_jobs_in_flight_are_refused_as_a_prompt_edit_is_naming_the_old_names_copy(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Run 1 of t.yaml (name: t) leaves 2 jobs in flight; the file's `name:` and prompt are then edited. The new
    name has no run, but run 1 was made from this file: plan warns, run refuses before any create, and status
    shows run 1 with the refusal as its next step, naming run 1's copy in t's output folder; the name and
    prompt put back, a run collects the 2 with no new create. Another manifest sharing the state, whose jobs are
    not in flight of this file's runs, is not refused."""
    from runner.cli import main
    from runner.errors import InFlightError

    monkeypatch.setenv("COLUMNS", "400")
    monkeypatch.chdir(tmp_path)
    m = write_manifest(tmp_path, n_seeds=1, styles=("anime", "clay"), run={"concurrency": 2},
                       sim={"render_time": 2, "jitter": 0.0})
    assert api.run(m, report=False, options=RunOptions(timeout=0.3)).status == "incomplete"
    assert in_flight(m) == 2
    other = write_manifest(tmp_path, n_seeds=1, styles=("comic",), name="u", extra={"state_dir": ".gridrun"})
    assert api.run(other, report=False).status == "done"
    before = m.read_text()
    m.write_text(before.replace("name: t\n", "name: cats\n").replace("a fox", "a cat"))
    sent = _creates(m)
    copy = str(tmp_path / "outputs" / "t" / ".runs" / "run-1.yaml")

    capsys.readouterr()
    assert main(["plan", str(m)]) == 0
    said = " ".join(capsys.readouterr().err.split())
    assert "`gridrun run` would refuse to start: 2 jobs of run 1 ($0.70), made from this manifest file when its name: " \
           "was t, are in flight" in said, said
    assert f"its name: t too; run 1's copy: {copy}" in said, said
    with pytest.raises(InFlightError) as refused:
        api.run(m, report=False)
    assert "2 jobs of run 1 ($0.70)" in str(refused.value) and copy in str(refused.value), refused.value
    assert _creates(m) == sent
    assert main(["status", str(m)]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "t run 1" in out, out
    tail = out[out.index("next:"):]
    assert "`gridrun run` of the manifest as it is now refuses to start: 2 jobs of run 1" in tail and copy in tail, tail

    other.write_text(other.read_text().replace("name: u\n", "name: v\n"))  # its own rename: its run left none
    assert api.diff(api.load(other)).left_behind is None

    m.write_text(before)
    assert api.run(m, report=False).status == "done"
    assert _creates(m) == sent  # the 2 collected, none sent again


def test_a_prompt_edited_while_a_run_goes_on_that_ends_done_is_said_at_its_end_and_by_status(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A run that finishes every job of the manifest it read, its file edited as it sent: its end and `status`
    say the edit was not used, what a run of the file as it is now sends and what that costs; nothing to run next
    of the run itself."""
    from runner.cli import main

    m = write_manifest(tmp_path, n_seeds=2, styles=("anime",), run={"concurrency": 1})
    begin = Store.begin_submit

    def edited_as_sent(self: Store, *args: Any, **kw: Any) -> Any:
        m.write_text(m.read_text().replace("a fox", "a wolf"))
        return begin(self, *args, **kw)

    monkeypatch.setattr(Store, "begin_submit", edited_as_sent)
    monkeypatch.chdir(tmp_path)
    capsys.readouterr()
    assert main(["run", str(m), "--no-report"]) == 0
    monkeypatch.setattr(Store, "begin_submit", begin)
    ran = " ".join(capsys.readouterr().err.split())
    note = ("the manifest changed since run 1: 2 jobs differ from run 1 (params.prompt: \"a fox, anime style\" then, "
            "\"a wolf, anime style\" now")
    assert f"warning: the manifest file was edited while the run went on: {note}" in ran, ran
    assert "`gridrun run` sends them as they are now, $0.70" in ran, ran
    assert main(["status", str(m)]) == 0
    said = " ".join(capsys.readouterr().out.split())
    assert f"note: {note}" in said and "`gridrun run` sends them as they are now, $0.70" in said, said
    assert main(["status", str(m), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["next"] is None and doc["next_commands"] == [], doc
    assert doc["next_note"].startswith(note), doc
    m.write_text(m.read_text().replace("a wolf", "a fox"))  # as the run had it: nothing to note
    assert main(["status", str(m), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["next_note"] is None
