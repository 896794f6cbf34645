"""A local input image is hashed by its content when the manifest is planned, and read again as its create is
sent: what is sent must be the bytes the job's hash names. A file written over in between (a `git checkout` of
another branch, a pull, an editor saving) is not sent under the old hash: its job is left unsent, nothing paid,
and the other jobs go on."""

from __future__ import annotations

import base64
import hashlib
import time
from pathlib import Path
from typing import Any

import pytest
from execkit import sim_provider, stats, write_manifest

from runner import api
from runner.options import RunOptions

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32 + b"\x00\x00\x00\x00IEND\xaeB`\x82"
FOX = PNG.replace(b"\x00" * 32, b"fox".ljust(32, b"\x00"))
MOON = PNG.replace(b"\x00" * 32, b"moon".ljust(32, b"\x00"))


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def manifest(tmp_path: Path, params: dict[str, Any], *, shots: int = 1) -> Path:
    return write_manifest(tmp_path, n_seeds=shots, styles=("anime",), sim={"render_time": 0.05, "jitter": 0.0},
                          run={"concurrency": 1},
                          extra={"params": {"prompt": "a fox {{ seed }}", "quality": "360p", "duration": 5, **params}})


def recording(prov: Any) -> list[dict[str, Any]]:
    """The bodies of the creates `prov` sends, as sent."""
    sent: list[dict[str, Any]] = []
    submit = prov.submit

    async def recorded(client: Any, body: dict[str, Any]) -> Any:
        sent.append(body)
        return await submit(client, body)

    prov.submit = recorded
    return sent


def images_sent(body: dict[str, Any]) -> dict[str, list[str]]:
    """Each image field of a create's body -> the SHA-256 of the bytes its data URIs carry."""
    def digest(uri: str) -> str:
        return sha(base64.b64decode(uri.partition(",")[2]))

    out = {}
    if "input_reference" in body:
        out["input_reference"] = [digest(item["image_url"]) for item in body["input_reference"]]
    if "last_frame_image" in body:
        out["last_frame_image"] = [digest(body["last_frame_image"])]
    return out


def test_an_image_written_over_after_the_plan_is_not_sent_under_the_planned_hash(tmp_path: Path) -> None:
    """Two jobs, each of its own image; fox.png is written over (another branch checked out) between the plan
    and the run: its job is not sent (no create), left planned with an error naming the field, the file and
    why; moon's job is sent as planned. The next run plans the new content as a new job and sends that."""
    (tmp_path / "fox.png").write_bytes(FOX)
    (tmp_path / "moon.png").write_bytes(MOON)
    m = manifest(tmp_path, {"input_reference": "{{ pic }}"})
    m.write_text(m.read_text().replace("matrix:\n", "matrix:\n  pic: [fox.png, moon.png]\n")
                 .replace("{{ style }}/seed-{{ seed }}.mp4", "{{ pic }}.mp4"))
    p = api.plan(m)
    assert len(p.jobs) == 2
    fox = next(j for j in p.jobs if "fox" in j.key)
    (tmp_path / "fox.png").write_bytes(MOON + b"branch")
    prov = sim_provider(m)
    sent = recording(prov)
    result = api.run(p, provider=prov, report=False)
    assert stats(prov)["creates"] == 1 and [images_sent(b) for b in sent] == [{"input_reference": [sha(MOON)]}]
    assert result.exit_code == 1 and result.stats.counts["done"] == 1 and result.stats.counts["planned"] == 1
    jobs = {j.key: j for j in api.status(m).jobs}
    left = jobs[fox.key]
    assert left.state == "planned" and left.provider_id is None, left
    path = str((tmp_path / "fox.png").resolve())
    assert left.error == (f"not sent: input_reference: the input image {path} changed since the plan (it holds "
                          f"other bytes: SHA-256 {sha(MOON + b'branch')[:12]}, not the {sha(FOX)[:12]} planned); "
                          "put the file back to send it as planned (as it is now, `gridrun plan` shows what a run "
                          "sends)"), left.error
    assert any(path in e and "changed since the plan" in e for e in result.stats.last_errors), result.stats.last_errors
    snap = api.status(m)
    moon = next(j for j in p.jobs if j is not fox)
    assert snap.spent_micros == moon.cost_micros and snap.reserved_micros == 0  # moon's render alone is paid
    again = api.run(m, provider=prov, report=False)
    assert again.exit_code == 0 and stats(prov)["creates"] == 2
    assert images_sent(sent[-1]) == {"input_reference": [sha(MOON + b"branch")]}


def test_an_unchanged_image_is_sent_as_read_once_even_if_written_over_just_after(tmp_path: Path) -> None:
    """The bytes checked against the plan are the bytes sent: the file is read once as the create is made, not
    read again by the provider, so a write landing between the check and the send does not reach the request."""
    (tmp_path / "fox.png").write_bytes(FOX)
    m = manifest(tmp_path, {"input_reference": "fox.png"})
    p = api.plan(m)
    prov = sim_provider(m)
    sent = recording(prov)
    build = prov.build_request

    def written_over_meanwhile(params: Any, **kwargs: Any) -> dict[str, Any]:
        (tmp_path / "fox.png").write_bytes(MOON)
        return build(params, **kwargs)

    prov.build_request = written_over_meanwhile
    result = api.run(p, provider=prov, report=False)
    assert result.exit_code == 0 and stats(prov)["creates"] == 1
    assert images_sent(sent[0]) == {"input_reference": [sha(FOX)]}


@pytest.mark.parametrize("field", ["list", "last_frame_image"])
def test_each_image_of_a_request_is_checked(tmp_path: Path, field: str) -> None:
    """A list of images, one of them written over; or the last frame: not sent either."""
    (tmp_path / "fox.png").write_bytes(FOX)
    (tmp_path / "moon.png").write_bytes(MOON)
    params: dict[str, Any] = ({"input_reference": ["fox.png", "moon.png"]} if field == "list" else
                              {"input_reference": "fox.png", "last_frame_image": "moon.png"})
    m = manifest(tmp_path, params)
    p = api.plan(m)
    (tmp_path / "moon.png").write_bytes(FOX)
    prov = sim_provider(m)
    result = api.run(p, provider=prov, report=False)
    assert stats(prov)["creates"] == 0 and result.exit_code == 1 and result.stats.counts["planned"] == 1
    name = "input_reference" if field == "list" else "last_frame_image"
    error = api.status(m).jobs[0].error or ""
    assert error.startswith(f"not sent: {name}: the input image {(tmp_path / 'moon.png').resolve()} changed since "
                            "the plan"), error


def test_an_image_gone_after_the_plan_leaves_its_job_planned(tmp_path: Path) -> None:
    """A branch without the file checked out: the job is left unsent and planned (not rejected), so that once
    the file is back a plain run sends it, at the hash it was planned with."""
    (tmp_path / "fox.png").write_bytes(FOX)
    m = manifest(tmp_path, {"input_reference": "fox.png"})
    p = api.plan(m)
    (tmp_path / "fox.png").unlink()
    prov = sim_provider(m)
    result = api.run(p, provider=prov, report=False)
    assert stats(prov)["creates"] == 0 and result.exit_code == 1
    job = api.status(m).jobs[0]
    assert job.state == "planned" and "cannot be read since the plan" in (job.error or ""), job
    (tmp_path / "fox.png").write_bytes(FOX)
    again = api.run(m, provider=prov, report=False)
    assert again.exit_code == 0 and stats(prov)["creates"] == 1
    assert api.status(m).jobs[0].hash == p.jobs[0].hash


def test_a_forced_rerender_of_a_changed_image_is_not_sent_and_the_video_kept(tmp_path: Path) -> None:
    """`run --force` (as `retry`) of a done job re-plans nothing of its own: the plan made before the file was
    written over holds the old digest, so the re-render is not sent, and the job stays done with its video."""
    (tmp_path / "fox.png").write_bytes(FOX)
    m = manifest(tmp_path, {"input_reference": "fox.png"})
    prov = sim_provider(m)
    assert api.run(m, provider=prov, report=False).exit_code == 0
    before = api.status(m).jobs[0]
    p = api.plan(m)
    (tmp_path / "fox.png").write_bytes(MOON)
    forced = api.run(p, provider=prov, options=RunOptions(force=True), report=False)
    assert stats(prov)["creates"] == 1 and forced.exit_code == 1
    after = api.status(m).jobs[0]
    assert (after.state, after.sha256) == ("done", before.sha256), after
    assert any("changed since the plan" in e for e in forced.stats.last_errors), forced.stats.last_errors


def test_a_resumed_attempt_whose_image_changed_since_the_plan_is_not_sent_again(tmp_path: Path) -> None:
    """A run killed between a job's write-ahead attempt and its create leaves it `submitting`; the next run plans
    (the file as it was), then the file is written over before that attempt is sent again: not sent (its key
    may be known to the provider, so the job is told as unknown, never sent with other bytes)."""
    import os
    import sqlite3
    import subprocess
    import sys

    from runner.providers import SIM_WORLD
    from runner.sim import SimConfig
    from runner.sim.engine import Sim
    from runner.sim.world import World

    (tmp_path / "fox.png").write_bytes(FOX)
    m = manifest(tmp_path, {"input_reference": "fox.png"})
    env = {**os.environ, "GRIDRUN_CRASH_AT": "before-submit:1", "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    killed = subprocess.run([sys.executable, "-m", "runner.cli", "run", str(m), "--no-report"],
                            env=env, capture_output=True, timeout=120, check=False)
    assert killed.returncode == -9, killed.stderr[-500:]
    assert [j.state for j in api.status(m).jobs] == ["submitting"]
    with sqlite3.connect(tmp_path / ".gridrun" / "state.db") as db:  # sent long ago: no send still on its way
        db.execute("UPDATE jobs SET submitted_at = submitted_at - 7200 WHERE state = 'submitting'")
    db.close()
    p = api.plan(m)
    (tmp_path / "fox.png").write_bytes(MOON)
    result = api.run(p, report=False)
    world = Sim(SimConfig(), clock=time.time, world=World.open(tmp_path / ".gridrun" / SIM_WORLD)).stats()
    assert world["creates"] == 0 and result.exit_code == 1, result.stats.counts
    job = api.status(m).jobs[0]
    assert job.state != "done" and "changed since the plan" in (job.error or ""), job


def test_the_next_step_for_jobs_left_over_a_changed_image_is_to_put_it_back_not_a_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A run with the image as it is now sends other jobs (the file's new bytes), not the ones left unsent: the
    run's end and `status` do not say a run sends those; they say to put the file back, or that `gridrun plan`
    shows what a run sends."""
    from runner import images
    from runner.cli import main

    (tmp_path / "fox.png").write_bytes(FOX)
    (tmp_path / "moon.png").write_bytes(MOON)
    m = manifest(tmp_path, {"input_reference": "{{ pic }}"})
    m.write_text(m.read_text().replace("matrix:\n", "matrix:\n  pic: [fox.png, moon.png]\n")
                 .replace("{{ style }}/seed-{{ seed }}.mp4", "{{ pic }}.mp4"))
    read = images.read_as_planned

    def written_over_once_planned(path: str, sha256: str) -> Any:
        (tmp_path / "fox.png").write_bytes(MOON + b"branch")  # another branch checked out as the run sends
        return read(path, sha256)

    monkeypatch.setattr(images, "read_as_planned", written_over_once_planned)
    monkeypatch.chdir(tmp_path)
    capsys.readouterr()
    assert main(["run", str(m), "--no-report"]) == 1
    ran = capsys.readouterr()
    monkeypatch.setattr(images, "read_as_planned", read)
    assert [j.state for j in api.status(m).jobs].count("planned") == 1
    main(["status", str(m)])
    status = capsys.readouterr().out
    for said in (ran.out + ran.err, status):
        tail = said[said.index("next" if said is status else "some jobs did not finish"):]
        assert "put fox.png back as planned to send the 1 job not sent over it" in tail, tail
        assert "`gridrun plan` shows what a run sends" in tail, tail
        assert "sends the 1 job not sent" not in tail, tail


def test_the_step_for_jobs_left_over_two_changed_images_reads_as_they_are_now() -> None:
    """Two files named: the object pronoun is "them", the subject one "they" ("as they are now")."""
    from types import SimpleNamespace

    from runner.cli import _images_moved_step

    job = SimpleNamespace(cost_estimate_micros=350_000)
    one = _images_moved_step({"i3.png": [job]})
    two = _images_moved_step({"i2.png": [job], "i3.png": [job]})
    assert "not sent over it ($0.35); as it is now," in one, one
    assert "not sent over them ($0.70); as they are now," in two, two
