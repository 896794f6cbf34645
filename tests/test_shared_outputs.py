"""Two manifests, each with a state of its own (`state_dir:`), that write one output folder: a run locks the folder
beside its state, so the second is refused before it sends anything; the folder records the state that wrote it
last, and `plan` and `run` of the other warn of it."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from runner import api
from runner.cli import main
from runner.errors import CopyNotWrittenError, ManifestError, NotRecordedError, StateError
from runner.sim.config import SimConfig
from runner.sim.serve import running_server
from runner.state import Store, outputs_writer

from execkit import check_outputs, sha256, write_manifest


def _two(tmp_path: Path, **kwargs: Any) -> tuple[Path, Path, Path]:
    """Manifests a and b, states sa/ and sb/, both writing shared/ (their prompts differ); and shared/."""
    made = []
    for name, animal in (("a", "fox"), ("b", "cat")):
        extra = {"outputs_dir": "shared", "state_dir": f"s{name}",
                 "params": {"prompt": f"a {animal}, {{{{ style }}}} style", "quality": "360p", "duration": 5}}
        made.append(write_manifest(tmp_path, name=name, extra=extra, **kwargs))
    return made[0], made[1], (tmp_path / "shared").resolve()


def _cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _line_of(manifest: Path, field: str) -> int:
    return next(n for n, line in enumerate(manifest.read_text().splitlines(), 1) if line.startswith(f"{field}:"))


def _shared_warning(by: Path, folder: Path, other: Path) -> str:
    """The warning `plan`/`run` of `by` gives of `other`'s state writing `folder`, as printed."""
    state = (other.parent / f"s{other.stem}").resolve()
    return (f"warning: {by}:{_line_of(by, 'outputs_dir')}:1: outputs_dir: {folder} is also written by the state in "
            f"{state} (manifest {other.resolve()}): the two replace each other's videos; give one of them its own "
            "outputs_dir\n")


@pytest.mark.timeout(120)
def test_a_second_state_writing_the_same_output_folder_is_refused_while_the_first_runs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """b is refused before it sends anything (the simulator counts a's creates only), names the run holding the
    folder and what to do, records no run; a's videos are whole, each as its sidecar says. a runs in a process
    of its own, which holds the folder; b, refused at once, in this one."""
    with running_server(SimConfig(render_time=2.0, jitter=0.0, concurrency=6), process=True) as url:
        a, b, shared = _two(tmp_path, n_seeds=3, run={"concurrency": 6}, base_url=url, sim={})
        first = subprocess.Popen([sys.executable, "-m", "runner.cli", "run", str(a), "--no-report"], cwd=tmp_path,
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            deadline = time.monotonic() + 60
            while not _in_flight(a):
                assert first.poll() is None and time.monotonic() < deadline, "a never had a job in flight"
                time.sleep(0.05)
            second = _cli(capsys, "run", str(b), "--no-report")
            overlapped = first.poll() is None
            _, err = first.communicate(timeout=60)
        finally:
            if first.poll() is None:
                first.kill()
                first.communicate()
        assert first.returncode == 0, err
        assert second[0] == 1, second[2]
        assert overlapped, "a ended before b was refused: the test proves nothing"
        said = " ".join(second[2].split())
        assert (f"error: {shared}: another gridrun run writes into this output folder (pid {first.pid} on ") in said
        assert (f", the state in {(tmp_path / 'sa').resolve()}, manifest {a.resolve()}); the two would replace each "
                "other's videos: wait for it to finish, or give this manifest its own `outputs_dir:`") in said
        assert "Traceback" not in second[2]
        stats = httpx.get(url.rsplit("/v1", 1)[0] + "/_sim/stats").json()
    assert stats["creates"] == 6 and stats["duplicate_paid"] == 0, stats  # a's six jobs, b none
    assert len(check_outputs(a)) == 6
    with pytest.raises(NotRecordedError):
        api.runs(b)
    assert len(list(shared.glob("*/*.mp4"))) == 6 and not list(shared.glob("*/*.part"))


def _in_flight(m: Path) -> bool:
    try:
        c = api.status(m).counts
    except StateError:  # no state, or no run recorded yet
        return False
    return bool(c["submitted"] + c["running"])


def test_plan_and_run_warn_of_another_state_writing_the_output_folder_while_it_exists(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Run after run, each of two such manifests is warned of the other's state, at its outputs_dir. A cancel,
    which writes nothing into the folder, does not wait for the folder's lock; a run does. A state since removed
    is taken over silently."""
    a, b, shared = _two(tmp_path, sim={"render_time": 0.05, "jitter": 0.0})
    assert api.run(a, report=False).exit_code == 0
    code, _, err = _cli(capsys, "plan", str(a))
    assert code == 0 and "also written" not in err  # its own state
    code, _, err = _cli(capsys, "plan", str(b))
    assert code == 0 and _shared_warning(b, shared, a) in err
    code, out, _ = _cli(capsys, "plan", str(b), "--json")
    assert code == 0 and [w for w in json.loads(out)["warnings"] if "also written" in w] == \
        [_shared_warning(b, shared, a).split(": ", 2)[2].rstrip("\n")]
    code, _, err = _cli(capsys, "run", str(b), "--no-report")
    assert code == 0 and _shared_warning(b, shared, a) in err
    assert outputs_writer(shared)["state_dir"] == str((tmp_path / "sb").resolve())
    code, _, err = _cli(capsys, "plan", str(a))
    assert code == 0 and _shared_warning(a, shared, b) in err

    holder = Store(tmp_path / "sa" / "state.db")  # a run of a, going on
    holder.acquire_lock(manifest=a)
    holder.lock_outputs(shared, manifest=a, field="outputs_dir")
    try:
        code, _, err = _cli(capsys, "run", str(b), "--no-report")
        assert code == 1 and f"{shared}: another gridrun run writes into this output folder" in err
        code, out, err = _cli(capsys, "cancel", str(b))
        assert code == 0 and "nothing in flight to cancel" in out, err
        code, out, err = _cli(capsys, "status", str(b))
        assert code == 0, err
    finally:
        holder.close()
    assert [r.run.id for r in api.runs(b)] == [1]  # the refused run recorded nothing

    shutil.rmtree(tmp_path / "sa")
    code, _, err = _cli(capsys, "plan", str(b))
    assert code == 0 and "also written" not in err
    code, _, err = _cli(capsys, "run", str(b), "--no-report")
    assert code == 0 and "also written" not in err
    assert outputs_writer(shared) is not None and outputs_writer(shared)["manifest"] == str(b.resolve())


def test_plan_and_run_warn_of_a_manifest_of_another_name_in_the_same_state_writing_the_output_folder(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Two manifests of one folder (one state), of other names, with one `outputs_dir:`: each one's run, report and
    export would replace the other's report.html and results.*; `plan` and `run` of each warn of the other, named,
    at its outputs_dir, while the other's manifest file exists. A manifest alone there is warned of nothing."""
    made = []
    for name, animal in (("a", "fox"), ("b", "cat")):
        extra = {"outputs_dir": "shared",
                 "params": {"prompt": f"a {animal}, {{{{ style }}}} style", "quality": "360p", "duration": 5}}
        made.append(write_manifest(tmp_path, name=name, extra=extra, sim={"render_time": 0.05, "jitter": 0.0}))
    a, b = made
    shared = (tmp_path / "shared").resolve()

    def said(by: Path, other: Path, run: int) -> str:
        return (f"warning: {by}:{_line_of(by, 'outputs_dir')}:1: outputs_dir: {shared} is also the output folder of "
                f"{other} (name {other.stem!r}, latest run {run}), which shares this state: each one's run, "
                "`gridrun report` and `gridrun export` replace the other's report.html and results.*, and put aside "
                "its videos in their way; give one of them its own outputs_dir")

    assert api.run(a, report=False).exit_code == 0
    code, _, err = _cli(capsys, "plan", str(a))
    assert code == 0 and "warning" not in err, err
    code, _, err = _cli(capsys, "plan", str(b))
    assert code == 0 and said(b, a, 1) in " ".join(err.split()), err
    code, out, _ = _cli(capsys, "plan", str(b), "--json")
    assert code == 0 and [w for w in json.loads(out)["warnings"] if "also the output folder" in w] == \
        [said(b, a, 1).split(": ", 2)[2]]
    code, _, err = _cli(capsys, "run", str(b), "--no-report")
    assert code == 0 and said(b, a, 1) in " ".join(err.split()), err
    code, _, err = _cli(capsys, "run", str(a), "--no-report")
    assert code == 0 and said(a, b, 2) in " ".join(err.split()), err
    b.unlink()  # a manifest gone writes nothing more
    code, _, err = _cli(capsys, "plan", str(a))
    assert code == 0 and "warning" not in err, err


def test_a_manifest_whose_name_changed_in_place_is_not_warned_of_its_own_file_as_another_writer(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A manifest with `outputs_dir:` run once, then its `name:` changed in its own file: the runs under the old name
    are of that very file, no other manifest writing its folder; neither plan nor run warns of it, before the run
    under the new name or after."""
    extra = {"outputs_dir": "shared"}
    m = write_manifest(tmp_path, name="m1", n_seeds=1, extra=extra, sim={"render_time": 0.05, "jitter": 0.0})
    assert api.run(m, report=False).exit_code == 0
    m.write_text(m.read_text().replace("name: m1\n", "name: m1-v2\n"))
    assert api.load(m).name == "m1-v2"
    code, out, err = _cli(capsys, "plan", str(m), "--json")
    assert code == 0 and json.loads(out)["warnings"] == [], (out, err)
    code, _, err = _cli(capsys, "run", str(m), "--no-report")
    assert code == 0 and "warning" not in err, err
    code, _, err = _cli(capsys, "plan", str(m))
    assert code == 0 and "warning" not in err, err


def test_a_project_copied_whole_is_not_warned_of_the_originals_state(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A project copied with its state and output folder (`cp -r`) brings the folder's record of its writer, the
    original's state, which is there still but writes the original's folder, never the copy's: neither plan nor
    run of the copy warns that the two replace each other's videos, and the copy's run takes the record over,
    its videos cached, at no cost."""
    orig = tmp_path / "orig"
    orig.mkdir()
    m = write_manifest(orig, n_seeds=2, sim={"render_time": 0.05, "jitter": 0.0})
    assert api.run(m, report=False).exit_code == 0
    shutil.copytree(orig, tmp_path / "copy")
    copy = tmp_path / "copy" / m.name
    assert outputs_writer(tmp_path / "copy" / "outputs" / "t")["state_dir"] == str((orig / ".gridrun").resolve())
    code, _, err = _cli(capsys, "plan", str(copy))
    assert code == 0 and "also written" not in err, err
    code, _, err = _cli(capsys, "run", str(copy), "--no-report")
    assert code == 0 and "also written" not in err, err
    assert (api.runs(copy)[0].cached, api.status(copy).spent_micros) == (4, 0)
    assert outputs_writer(tmp_path / "copy" / "outputs" / "t")["state_dir"] == str((copy.parent / ".gridrun").resolve())
    code, _, err = _cli(capsys, "plan", str(m))  # nor the original of the copy's, which writes its own folder
    assert code == 0 and "warning" not in err, err


def test_a_project_copied_whole_has_its_videos_cached_in_place_with_nothing_copied(tmp_path: Path) -> None:
    """The copy's videos are the very takes its state records (their sidecars say so): plan counts none to copy
    from the original, and the run leaves each file as it is (its modification time unchanged) and records the
    copy's own path; the original's videos stay where they are."""
    orig = tmp_path / "orig"
    orig.mkdir()
    m = write_manifest(orig, n_seeds=2, sim={"render_time": 0.05, "jitter": 0.0})
    assert api.run(m, report=False).exit_code == 0
    shutil.copytree(orig, tmp_path / "copy")
    copy = tmp_path / "copy" / m.name
    videos = sorted((tmp_path / "copy" / "outputs" / "t").rglob("*.mp4"))
    assert len(videos) == 4
    times = {v: v.stat().st_mtime_ns for v in videos}
    assert api.diff(api.plan(copy)).copied == ()
    assert api.run(copy, report=False).exit_code == 0
    assert {v: v.stat().st_mtime_ns for v in videos} == times
    assert {j.output_path for j in api.status(copy).jobs} == {str(v) for v in videos}
    assert len(check_outputs(copy)) == len(check_outputs(m)) == 4


def test_one_manifest_runs_runs_again_retries_and_cancels_as_before(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A manifest alone in its output folder: each command goes through in one process, one after the other (the
    folder's lock goes with the state's), with no warning of the folder; the folder names its state."""
    m = write_manifest(tmp_path, n_seeds=2, sim={"render_time": 0.05, "jitter": 0.0})
    outputs = (tmp_path / "outputs" / "t").resolve()
    code, _, err = _cli(capsys, "run", str(m), "--no-report")
    assert code == 0, err
    for argv in (("run", str(m), "--no-report"), ("retry", str(m), "--no-report"), ("cancel", str(m)),
                 ("plan", str(m)), ("run", str(m), "--no-report")):
        code, out, err = _cli(capsys, *argv)
        assert code == 0, (argv, err)
        assert "warning" not in err and "lock" not in err, (argv, err)
        assert argv[0] != "cancel" or "nothing in flight to cancel" in out, out
    assert [r.run.id for r in api.runs(m)] == [4, 3, 2, 1]  # run, run, retry, run: cancel and plan record none
    assert api.runs(m)[0].cached == 4
    assert len(check_outputs(m)) == 4
    writer = outputs_writer(outputs)
    assert writer is not None
    assert (writer["state_dir"], writer["manifest"]) == (str((tmp_path / ".gridrun").resolve()), str(m.resolve()))


def test_a_video_another_states_run_wrote_where_a_job_of_this_state_goes_is_kept_first(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """a and b, one job alike (same prompt), each with a state, write one folder: b's run finds a's paid video
    whole as its sidecar records it, a render b's state never made, and keeps it with its sidecar under
    .runs/superseded/ (event unrecorded-kept, said by the run) before b's video takes its place; b's --force run
    keeps its own take as an earlier take, and nothing as another state's."""
    made = []
    for name, seed in (("a", 1), ("b", 2)):  # no seed sent: each simulator draws its own picture, as renders differ
        extra = {"outputs_dir": "shared", "state_dir": f"s{name}", "matrix": {"style": ["anime"]},
                 "output": "{{ style }}.mp4"}
        made.append(write_manifest(tmp_path, name=name, extra=extra, sim={"render_time": 0.05, "jitter": 0.0,
                                                                          "seed": seed}))
    a, b = made
    assert api.run(a, report=False).exit_code == 0
    [ja] = api.status(a).jobs
    video = Path(ja.output_path)
    theirs, their_side = video.read_bytes(), video.with_suffix(".json").read_bytes()
    code, _, err = _cli(capsys, "run", str(b), "--no-report")
    assert code == 0, err
    [jb] = api.status(b).jobs
    assert jb.hash == ja.hash and jb.provider_id != ja.provider_id and jb.sha256 != ja.sha256
    kept = video.parent / ".runs" / "superseded" / ja.hash[:16] / ja.sha256[:16] / video.name
    assert sha256(kept) == ja.sha256 and kept.read_bytes() == theirs
    assert kept.with_suffix(".json").read_bytes() == their_side
    assert sha256(video) == jb.sha256  # b's video in its place
    check_outputs(b)
    with Store(tmp_path / "sb" / "state.db", readonly=True) as store:
        events = [(k, json.loads(d)) for k, d in store.db.execute(
            "SELECT kind, detail FROM events WHERE kind LIKE '%-kept'")]
    assert events == [("unrecorded-kept", {"path": str(kept), "sha256": ja.sha256})]
    said = " ".join(err.split())
    assert ("1 video of gridrun's that this state did not render (another state's run wrote it: another state_dir, a "
            "copied project, a state begun again) was where a job's video went: kept in ") in said, said
    assert f"/.runs/superseded/{ja.hash[:16]}/{ja.sha256[:16]}/anime.mp4 before this run's took its place" in said
    again = api.run(b, options={"force": True}, report=False)  # b's own take now: kept as an earlier take only
    assert again.exit_code == 0 and again.foreign_kept == again.unrecorded_kept == ()
    assert {p.name for p in (video.parent / ".runs" / "superseded" / ja.hash[:16]).iterdir()} == \
        {ja.sha256[:16], jb.sha256[:16]}


def test_another_states_manifest_copy_of_the_same_run_number_is_kept_not_written_over(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """a and b, each with a state, write one folder: b's run 1 finds a's `.runs/run-1.yaml` (run numbers are each
    state's own) and keeps it under .runs/superseded/manifests/ before writing its own, and says so; a's copy is
    never lost. A copy that already holds the run's own text is left as it is."""
    a, b, shared = _two(tmp_path, n_seeds=1, styles=("anime",), sim={"render_time": 0.05, "jitter": 0.0})
    assert api.run(a, report=False).exit_code == 0
    copy = shared / ".runs" / "run-1.yaml"
    theirs = copy.read_bytes()
    assert theirs == a.read_bytes()
    code, _, err = _cli(capsys, "run", str(b), "--no-report")
    assert code == 0, err
    assert copy.read_bytes() == b.read_bytes()
    kept = list((shared / ".runs" / "superseded" / "manifests").glob("*/run-1.yaml"))
    assert [p.read_bytes() for p in kept] == [theirs], kept
    assert f"{copy} held another manifest's copy" in " ".join(err.split()).replace("\n", ""), err
    assert api.run(b, options={"force": True}, report=False).exit_code == 0  # run 2: nothing to keep
    assert len(list((shared / ".runs" / "superseded" / "manifests").glob("*/*"))) == 1


def test_the_manifest_copy_of_a_run_whose_copy_another_state_replaced_is_its_own_kept_aside(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """After b's run 1 wrote shared/.runs/run-1.yaml (a's copy kept aside), `status a --manifest-copy 1` names
    a's copy where it was kept, never b's text (put back, b's jobs would be sent as new paid jobs of a's state);
    one removed from there too is named missing, its text given (b's state writes the folder), or written again
    there once a's state writes the folder again; b's is left as it is."""
    a, b, shared = _two(tmp_path, n_seeds=1, styles=("anime",), sim={"render_time": 0.05, "jitter": 0.0})
    assert api.run(a, report=False).exit_code == 0
    assert api.run(b, report=False).exit_code == 0
    copy = shared / ".runs" / "run-1.yaml"
    assert copy.read_bytes() == b.read_bytes()
    [kept] = list((shared / ".runs" / "superseded" / "manifests").glob("*/run-1.yaml"))
    assert kept.read_bytes() == a.read_bytes()
    code, out, err = _cli(capsys, "status", str(a), "--manifest-copy", "1")
    assert code == 0, err
    named = Path(" ".join(out.split()).split("manifest copy: ", 1)[1])
    assert (Path.cwd() / named).resolve() == kept.resolve(), out
    assert api.manifest_copy_file(a, 1).resolve() == kept.resolve()
    assert api.manifest_copy_file(b, 1).resolve() == copy.resolve()  # b's own copy is where it was written
    kept.unlink()
    with Store(tmp_path / "sa" / "state.db", readonly=True) as store:
        path, there = store.manifest_copy_file(1, folder=shared, write=False)
    assert (path, there) == (kept, False)  # where a's copy goes, not b's file
    with pytest.raises(CopyNotWrittenError) as caught:  # b's state writes the folder now: a's text is given
        api.manifest_copy_file(a, 1)
    assert str(caught.value).startswith(f"{kept}: run 1's manifest copy is missing") and \
        caught.value.text == a.read_text()
    assert copy.read_bytes() == b.read_bytes()
    assert api.run(a, report=False).exit_code == 0  # a's state writes the folder again: its copy is written back
    assert api.manifest_copy_file(a, 1) == kept and kept.read_bytes() == a.read_bytes()
    assert copy.read_bytes() == b.read_bytes()


def test_plan_run_and_retry_of_a_runs_copy_of_its_manifest_refuse_with_the_command_that_copies_it_back(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The manifest file removed, its run's copy (`.runs/run-1.yaml`, which messages name) given to plan, run and
    retry: read where it is, its state and outputs would be new ones inside `.runs/`, every job paid again. Each is
    refused (exit 2) before anything is made there, naming the copy and the `cp` that puts it back beside the project;
    once copied back, it runs against the project's state, every job cached. `cancel`, `status`, `report` and `export` read the copy as the
    manifest of its run."""
    monkeypatch.chdir(tmp_path)
    m = write_manifest(tmp_path, n_seeds=2, sim={"render_time": 0.05, "jitter": 0.0})
    assert api.run(m, report=False).exit_code == 0
    runs = tmp_path / "outputs" / "t" / ".runs"
    before = sorted(p.name for p in runs.iterdir())
    m.unlink()
    copy = "outputs/t/.runs/run-1.yaml"
    fix = "copy it back beside the project and use that: cp outputs/t/.runs/run-1.yaml t.yaml, then gridrun run t.yaml"
    for argv in (("plan", copy), ("plan", copy, "--json"), ("run", copy, "--no-report"), ("run", copy, "--json"),
                 ("retry", copy, "--no-report"), ("validate", copy)):
        code, out, err = _cli(capsys, *argv)
        said = " ".join((err + out).split())
        assert code == 2, (argv, code, out, err)
        assert f"{copy}: run 1's copy of its manifest, in the output folder of the state in " \
               f"{(tmp_path / '.gridrun').resolve()}" in said and fix in said, (argv, said)
    with pytest.raises(ManifestError, match="copy it back"):
        api.run(runs / "run-1.yaml")
    with pytest.raises(ManifestError, match="copy it back"):
        api.plan(api.load(runs / "run-1.yaml"))
    assert sorted(p.name for p in runs.iterdir()) == before  # no state, no output folder made in .runs/
    assert not (runs / ".gridrun").exists() and not (runs / "outputs").exists()
    code, out, err = _cli(capsys, "cancel", copy)  # read as the manifest of run 1, in the project's state
    assert code == 0 and "nothing in flight to cancel" in out, (out, err)
    # status, report and export read it so too: run 1 of the project's state, nothing made in .runs/
    code, out, err = _cli(capsys, "status", copy)
    assert code == 0 and "t run 1 (done" in out and "done 4" in out, (out, err)
    code, out, err = _cli(capsys, "report", copy)
    assert code == 0 and (tmp_path / "outputs" / "t" / "report.html").is_file(), (out, err)
    code, out, err = _cli(capsys, "export", copy, "--format", "csv")
    assert code == 0 and (tmp_path / "outputs" / "t" / "results.csv").is_file(), (out, err)
    assert api.status(runs / "run-1.yaml").run.id == 1
    assert not (runs / ".gridrun").exists() and not (runs / "outputs").exists()
    shutil.copy(runs / "run-1.yaml", m)
    code, out, err = _cli(capsys, "run", "t.yaml", "--no-report")
    assert code == 0, err
    assert api.runs(m)[0].cached == 4 and api.status(m).spent_micros == 0
    code, out, err = _cli(capsys, "plan", copy)  # the manifest back, the same text: that file is the one to use
    assert code == 2 and "t.yaml reads the same: use that (gridrun run t.yaml)" in " ".join(err.split()), err


def test_this_state_reached_by_another_path_is_no_other_writer(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A folder seen at two paths (one disk mounted at two places; here a link standing for the second mount): the
    output folder's record names the state by the path of the one who ran it, and `plan` from the other path,
    the same state file, warns of no other state; a state of its own at another path still is one."""
    project = tmp_path / "project"
    project.mkdir()
    m = write_manifest(project, n_seeds=1, styles=("anime",), sim={"render_time": 0.05, "jitter": 0.0})
    assert api.run(m, report=False).exit_code == 0
    folder = (project / "outputs" / "t").resolve()
    mount = tmp_path / "mount"
    mount.symlink_to(project, target_is_directory=True)
    lock = folder / ".runs" / "lock"
    record = json.loads(lock.read_text())
    record["state_dir"] = str(mount / ".gridrun")  # as a run from the other mount wrote it
    lock.write_text(json.dumps(record))
    code, out, _ = _cli(capsys, "plan", str(m), "--json")
    assert code == 0 and not [w for w in json.loads(out)["warnings"] if "also written" in w], out

    shutil.copytree(project / ".gridrun", tmp_path / "copy")  # another state, of the same id
    record["state_dir"] = str(tmp_path / "copy")
    lock.write_text(json.dumps(record))
    with Store(tmp_path / "copy" / "state.db") as store:
        assert store.wrote_into(folder)
    code, out, _ = _cli(capsys, "plan", str(m), "--json")
    assert code == 0 and [w for w in json.loads(out)["warnings"] if "also written" in w], out
