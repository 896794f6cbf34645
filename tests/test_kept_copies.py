"""A project's own copies of its videos: a done video whose file is gone is put back from the very take gridrun
kept (SHA-256 checked), not fetched again by a link that may have expired; and a file of another job's left at a
job's path is not taken for that job's."""

from __future__ import annotations

import json
import os
import sqlite3
from contextlib import closing
from pathlib import Path

import pytest
from execkit import check_outputs, sha256, sim_provider, stats

from runner import api
from runner.executor import RunOptions

# One look on the built-in simulator with a fixed seed: a re-render of it (--force) has the same bytes.
MANIFEST = """\
version: 1
name: keep
provider: sim
model: pixverse-v5.6
params: {{prompt: "a fox, {{{{ look }}}} style", quality: 360p, duration: 5, seed: 1}}
matrix: {{look: [a]}}
output: "{{{{ look }}}}.mp4"
{extra}sim: {{render_time: 0.05, jitter: 0, url_ttl: 3600, refresh_urls: false}}
"""


def _manifest(tmp_path: Path, extra: str = "") -> Path:
    m = tmp_path / "keep.yaml"
    m.write_text(MANIFEST.format(extra=extra), encoding="utf-8")
    return m


def _run(m: Path, provider, **opts):
    return api.run(m, provider=provider, options=RunOptions(**opts), report=False)


def _remove(video: Path) -> None:
    """The video and the files beside it, as someone tidying a folder removes them."""
    for path in (video, video.with_suffix(".json"), video.with_suffix(".jpg")):
        path.unlink(missing_ok=True)


def _events(tmp_path: Path, kind: str) -> list[dict]:
    with closing(sqlite3.connect(tmp_path / ".gridrun" / "state.db")) as db:
        return [json.loads(d) for (d,) in db.execute("SELECT detail FROM events WHERE kind=? ORDER BY id", (kind,))]


@pytest.fixture
def no_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    from runner import executor

    monkeypatch.setattr(executor, "backoff", lambda attempt, retry_after: 0.0)


def test_a_missing_video_is_restored_from_the_take_a_force_kept_not_fetched_by_its_expired_link(
    tmp_path: Path, no_backoff: None,
) -> None:
    m = _manifest(tmp_path)
    prov = sim_provider(m)
    assert _run(m, prov).exit_code == 0
    assert _run(m, prov, force=True).exit_code == 0  # the same bytes again; the earlier take kept aside
    (job,) = api.status(m).jobs
    kept = _events(tmp_path, "superseded")
    assert [e["sha256"] for e in kept] == [job.sha256]
    video = Path(job.output_path)
    _remove(video)
    prov.app.state.sim.configure({"url_ttl": 0})  # months later: the provider's link has expired
    creates = stats(prov)["creates"]

    d = api.diff(m)
    shown = os.path.relpath(kept[0]["path"], tmp_path)
    assert d.reasons["look=a"] == f"cached: its file missing or altered, restored from {shown}"
    assert (d.cached, d.refetch, d.new) == (1, 0, 0)

    result = _run(m, prov)
    assert result.exit_code == 0 and result.stats.cached == 1
    (after,) = api.status(m).jobs
    assert after.state == "done" and after.sha256 == job.sha256 == sha256(video)
    assert stats(prov)["creates"] == creates and stats(prov)["downloads"] == 2  # nothing asked of the provider
    assert [e["from"] for e in _events(tmp_path, "video-restored")] == [kept[0]["path"]]
    check_outputs(m)
    assert api.diff(m, retry="retry").new == 0  # nothing left to pay for again


def test_a_missing_video_is_restored_from_the_earlier_output_folder(tmp_path: Path, no_backoff: None) -> None:
    """`outputs_dir:` changed: the run copied each video to the new folder and left the earlier one's as it was,
    the same take whatever the provider; a video removed from the new folder is put back from it."""
    m = _manifest(tmp_path)
    prov = sim_provider(m)
    assert _run(m, prov).exit_code == 0
    (first,) = api.status(m).jobs
    m.write_text(MANIFEST.format(extra="outputs_dir: renders\n"), encoding="utf-8")
    assert _run(m, prov).exit_code == 0
    (job,) = api.status(m).jobs
    video = Path(job.output_path)
    assert video == tmp_path / "renders" / "a.mp4" and Path(first.output_path).is_file()
    _remove(video)
    prov.app.state.sim.configure({"url_ttl": 0})

    d = api.diff(m)
    assert d.reasons["look=a"] == "cached: its file missing or altered, restored from outputs/keep/a.mp4"

    result = _run(m, prov)
    assert result.exit_code == 0 and result.stats.cached == 1
    (after,) = api.status(m).jobs
    assert after.state == "done" and sha256(video) == job.sha256
    assert stats(prov)["creates"] == 1 and stats(prov)["downloads"] == 1
    assert _events(tmp_path, "expired") == []
    check_outputs(m)


def test_a_copy_whose_bytes_are_not_the_take_is_never_restored(tmp_path: Path) -> None:
    """The earlier folder's copy was edited, its sidecar (naming the take) written after it: its bytes decide,
    and the video is fetched again (its link still good), the edited copy left as it is."""
    m = _manifest(tmp_path)
    prov = sim_provider(m)
    assert _run(m, prov).exit_code == 0
    (first,) = api.status(m).jobs
    m.write_text(MANIFEST.format(extra="outputs_dir: renders\n"), encoding="utf-8")
    assert _run(m, prov).exit_code == 0
    old = Path(first.output_path)
    edited = old.read_bytes() + b"an edit"
    old.write_bytes(edited)
    side = old.with_suffix(".json")
    side.write_text(side.read_text())  # newer than the video: read alone, it would vouch for it
    (job,) = api.status(m).jobs
    _remove(Path(job.output_path))

    assert api.diff(m).reasons["look=a"] == "done, but its file is missing or altered: download again"
    result = _run(m, prov)
    assert result.exit_code == 0
    assert sha256(Path(job.output_path)) == job.sha256 and old.read_bytes() == edited
    assert stats(prov)["downloads"] == 2 and _events(tmp_path, "video-restored") == []
    check_outputs(m)


SWEEPS = """\
version: 1
name: sw
provider: sim
model: pixverse-v5.6
params: {{quality: 360p, duration: 5}}
sweeps:
{sweeps}sim: {{render_time: 0.05, jitter: 0}}
"""
GREY = "  - name: {name}\n    params: {{prompt: \"a grey cat, {{{{ look }}}} style\"}}\n    matrix: {{look: [oil]}}\n"
BLACK = "  - name: a\n    params: {prompt: \"a black cat, {{ look }} style\"}\n    matrix: {look: [oil]}\n"


def test_a_sweep_name_used_again_is_warned_of_and_a_failed_job_names_no_other_requests_video(tmp_path: Path) -> None:
    """Sweep `a` renamed `b` leaves its videos in `a/`; a new sweep `a` (another prompt) writes its jobs there:
    `plan` says whose video each path holds and that the job's own replaces it, and a job of the new sweep that
    failed has no `output_path` in the export naming the grey cat left there."""
    from runner.export import export_rows
    from runner.plan import warnings_of

    m = tmp_path / "sw.yaml"
    m.write_text(SWEEPS.format(sweeps=GREY.format(name="a")), encoding="utf-8")
    prov = sim_provider(m)
    assert _run(m, prov).exit_code == 0
    (grey,) = api.status(m).jobs
    m.write_text(SWEEPS.format(sweeps=GREY.format(name="b")), encoding="utf-8")
    assert _run(m, prov).exit_code == 0
    left = Path(grey.output_path)
    assert left.is_file() and json.loads(left.with_suffix(".json").read_text())["key"] == "a/look=oil"

    m.write_text(SWEEPS.format(sweeps=BLACK + GREY.format(name="b")), encoding="utf-8")
    p = api.plan(m)
    black = next(j for j in p.jobs if j.key == "a/look=oil")
    assert black.output == left and black.hash != grey.hash
    said = [w for w in warnings_of(p, api.diff(m)) if str(left) in w]
    assert len(said) == 1 and "another job's video (made by run 1 as a/look=oil, its sidecar says)" in said[0], said
    assert "replaces it once downloaded" in said[0]

    prov.app.state.sim.configure({"failure_rate": 1.0})
    assert _run(m, prov).exit_code != 0
    rows = {r["key"]: r for r in export_rows(api.status(m))}
    assert rows["a/look=oil"]["state"] == "failed" and rows["a/look=oil"]["output_path"] is None
    assert rows["b/look=oil"]["state"] == "done" and rows["b/look=oil"]["output_path"] == "b/look=oil.mp4"
    assert json.loads(left.with_suffix(".json").read_text())["hash"] == grey.hash  # the grey cat, still there


def test_a_failed_jobs_own_earlier_take_keeps_its_output_path(tmp_path: Path) -> None:
    """A job whose re-render failed keeps its own video, named by its row: only another request's is left out."""
    from runner.export import export_rows

    m = _manifest(tmp_path)
    prov = sim_provider(m)
    assert _run(m, prov).exit_code == 0
    prov.app.state.sim.configure({"failure_rate": 1.0})
    _run(m, prov, force=True)
    (row,) = export_rows(api.status(m))
    assert row["state"] == "done" and row["output_path"] == "a.mp4"


def test_the_runs_end_says_an_altered_or_missing_video_was_restored_from_its_copy_not_fetched(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A done video edited in place, whose very take gridrun kept (a --force's earlier take): kept aside, and put
    back from that copy with nothing asked of the provider; the run's end says so, not that it was fetched again,
    and a missing one put back so gets its line too. `--json`'s end names the videos restored."""
    from runner.cli import main

    monkeypatch.chdir(tmp_path)
    m = _manifest(tmp_path)
    assert main(["run", "--no-report", m.name]) == 0
    assert main(["run", "--no-report", "--force", m.name]) == 0  # the same bytes again; the earlier take kept aside
    (job,) = api.status(m).jobs
    video = Path(job.output_path)
    with video.open("ab") as f:
        f.write(b"x")  # edited in place
    capsys.readouterr()
    assert main(["run", "--no-report", "--json", m.name]) == 0
    got = capsys.readouterr()
    end = json.loads(got.out.splitlines()[-1])
    assert end["requests"] == 0 and len(end["altered_kept"]) == 1, end
    assert end["restored"] == [os.path.relpath(video, tmp_path)], end
    err = " ".join(got.err.split())
    assert "1 video differed from what was downloaded: kept in " in err, err
    assert "restored from gridrun's own copy (outputs/keep/.runs/superseded/" in err and "nothing fetched" in err, err
    assert "fetching it again" not in err, err
    assert sha256(video) == job.sha256

    _remove(video)  # and now missing
    assert main(["run", "--no-report", m.name]) == 0
    err = " ".join(capsys.readouterr().err.split())
    assert (f"1 video missing ({os.path.relpath(video, tmp_path)}): restored from gridrun's own copy "
            "(outputs/keep/.runs/superseded/") in err and "nothing fetched" in err, err
    assert sha256(video) == job.sha256


def test_a_sidecar_copied_for_a_renamed_job_says_its_key_and_values(tmp_path: Path, no_backoff: None) -> None:
    """A row inserted in a shot list and the ids numbered again: each video is copied to its job's new file, and
    the sidecar beside it names that job (its key and values, as a script mapping videos to rows reads them), the
    key it was made under kept as `made_as_key`; the render's own fields are the video's as they were."""
    rows = tmp_path / "rows.csv"
    rows.write_text("id,prompt\n1,alpha fox\n2,bravo whale\n", encoding="utf-8")
    m = tmp_path / "renum.yaml"
    m.write_text('version: 1\nname: renum\nprovider: sim\nmodel: pixverse-v5.6\n'
                 'params: {prompt: "{{ r.prompt }}", quality: 360p, duration: 5, seed: 1}\n'
                 'matrix: {r: {file: rows.csv}}\noutput: "{{ r.id }}.mp4"\n'
                 'sim: {render_time: 0.05, jitter: 0}\n', encoding="utf-8")
    prov = sim_provider(m)
    assert _run(m, prov).exit_code == 0
    folder = tmp_path / "outputs" / "renum"
    made = json.loads((folder / "2.json").read_text(encoding="utf-8"))
    rows.write_text("id,prompt\n1,alpha fox\n2,NEW golf cat\n3,bravo whale\n", encoding="utf-8")
    assert _run(m, prov).exit_code == 0
    copied = json.loads((folder / "3.json").read_text(encoding="utf-8"))
    assert copied["key"] == 'r={"id":"3","prompt":"bravo whale"}'
    assert copied["values"] == {"r": {"id": "3", "prompt": "bravo whale"}}
    assert copied["made_as_key"] == made["key"] == 'r={"id":"2","prompt":"bravo whale"}'
    assert {k: v for k, v in copied.items() if k not in ("key", "values", "made_as_key")} == \
        {k: v for k, v in made.items() if k not in ("key", "values")}  # hash, sha256, provider_id, ... as made
    assert sha256(folder / "3.mp4") == copied["sha256"]
    new = json.loads((folder / "2.json").read_text(encoding="utf-8"))
    assert new["key"] == 'r={"id":"2","prompt":"NEW golf cat"}' and "made_as_key" not in new
    creates = stats(prov)["creates"]
    result = _run(m, prov)  # the copy is taken as the job's own: nothing sent, nothing kept aside or mended
    assert result.exit_code == 0 and result.stats.cached == 3 and stats(prov)["creates"] == creates
    assert _events(tmp_path, "sidecar-mended") == [] and _events(tmp_path, "unrecorded-kept") == []
    assert json.loads((folder / "3.json").read_text(encoding="utf-8")) == copied
    check_outputs(m)


def test_a_sidecar_not_gridruns_or_already_the_jobs_is_copied_as_it_is() -> None:
    from types import SimpleNamespace

    from runner.outputs import SIDECAR_FIELDS, for_job

    job = SimpleNamespace(key='r={"id":"3"}', sweep=None, values=(("r", {"id": "3"}),))
    theirs = {**dict.fromkeys(SIDECAR_FIELDS), "key": job.key, "hash": "h", "sha256": "s", "values": {"r": {}}}
    already = (json.dumps(theirs) + "\n").encode()
    assert for_job(already, job) == already  # type: ignore[arg-type]
    mine = b'{"hash": "h", "key": "k", "note": "a file of the user\'s"}\n'
    assert for_job(mine, job) == mine  # type: ignore[arg-type]
    other = json.loads(for_job(already.replace(b'r={\\"id\\":\\"3\\"}', b"r=2"), job))  # type: ignore[arg-type]
    assert (other["key"], other["made_as_key"], other["values"]) == (job.key, "r=2", {"r": {"id": "3"}})


def test_a_sidecar_of_a_job_renamed_in_place_names_it_as_it_is_now(tmp_path: Path, no_backoff: None) -> None:
    """An axis renamed while the output path renders the same: the run that finds the done job renamed writes its
    sidecar again with the key and values as they are now, `made_as_key` the key it was made under; renamed back,
    in place, the sidecar names that key again with no `made_as_key`."""
    text = ('version: 1\nname: rn\nprovider: sim\nmodel: pixverse-v5.6\n'
            'params: {prompt: "a fox, {{ look }}", quality: 360p, duration: 5, seed: 1}\n'
            'matrix: {look: [day, dusk]}\noutput: "{{ look }}.mp4"\nsim: {render_time: 0.05, jitter: 0}\n')
    m = tmp_path / "rn.yaml"
    m.write_text(text, encoding="utf-8")
    prov = sim_provider(m)
    assert _run(m, prov).exit_code == 0
    folder = tmp_path / "outputs" / "rn"
    made = json.loads((folder / "day.json").read_text(encoding="utf-8"))
    assert made["key"] == "look=day"
    m.write_text(text.replace("look", "mood"), encoding="utf-8")
    result = _run(m, prov)
    assert result.exit_code == 0 and result.stats.cached == 2
    now = json.loads((folder / "day.json").read_text(encoding="utf-8"))
    assert (now["key"], now["values"], now["made_as_key"]) == ("mood=day", {"mood": "day"}, "look=day")
    assert {k: v for k, v in now.items() if k not in ("key", "values", "made_as_key")} == \
        {k: v for k, v in made.items() if k not in ("key", "values")}
    renamed = _events(tmp_path, "sidecar-renamed")  # the rewrite is on record, one event per sidecar written again
    assert sorted((e["from_key"], e["key"]) for e in renamed) == [("look=day", "mood=day"), ("look=dusk", "mood=dusk")]
    assert all(e["path"].endswith(("day.json", "dusk.json")) for e in renamed), renamed
    assert _run(m, prov).exit_code == 0 and len(_events(tmp_path, "sidecar-renamed")) == 2  # once only
    m.write_text(text.replace("look", "mood").replace('"{{ mood }}.mp4"', '"{{ mood }}/v.mp4"'), encoding="utf-8")
    assert _run(m, prov).exit_code == 0
    copied = json.loads((folder / "day" / "v.json").read_text(encoding="utf-8"))
    assert (copied["key"], copied["made_as_key"]) == ("mood=day", "look=day")
    m.write_text(text.replace('"{{ look }}.mp4"', '"{{ look }}/v.mp4"'), encoding="utf-8")
    assert _run(m, prov).exit_code == 0
    back = json.loads((folder / "day" / "v.json").read_text(encoding="utf-8"))
    assert (back["key"], back["values"]) == ("look=day", {"look": "day"}) and "made_as_key" not in back, back
    assert back == {**made, "key": "look=day"}
    check_outputs(m)
