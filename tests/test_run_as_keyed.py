"""An earlier run's report and export describe its jobs with the sweep and matrix values they had in that run, not
the latest run's: a run without sweeps has no sweep axis, a job of a sweep renamed since keeps the sweep's name of
then, an axis removed since keeps its values."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import yaml

from runner import api
from runner.export import export_rows
from runner.jobs import job_key
from runner.records import JobRecord, as_keyed
from runner.state import Store


def _write(m: Path, **body: Any) -> None:
    doc = {"version": 1, "name": "k", "provider": "sim", "model": "pixverse-v5.6", **body,
           "sim": {"render_time": 0.05, "jitter": 0}}
    m.write_text(yaml.safe_dump(doc, sort_keys=False))


def _history(tmp_path: Path) -> Path:
    """Run 1: a plain matrix look x q; run 2: its 540p jobs as sweep `a`, axis q gone; run 3: `a` renamed `b`."""
    m = tmp_path / "k.yaml"
    _write(m, params={"prompt": "a fox, {{ look }} style", "quality": "{{ q }}", "duration": 5},
           matrix={"look": ["x", "y"], "q": ["540p", "720p"]}, output="{{ look }}-{{ q }}.mp4")
    assert api.run(m, report=False).exit_code == 0
    _write(m, params={"prompt": "a fox, {{ look }} style", "quality": "540p", "duration": 5},
           sweeps=[{"name": "a", "matrix": {"look": ["x", "y"]}}], output="{{ sweep }}/{{ look }}.mp4")
    assert api.run(m, report=False).exit_code == 0
    m.write_text(m.read_text().replace("name: a", "name: b"))
    assert api.run(m, report=False).exit_code == 0
    return m


def _rows(m: Path, run_id: int) -> list[dict[str, Any]]:
    with Store(m.parent / ".gridrun" / "state.db", readonly=True) as store:
        return export_rows(store.snapshot(run_id))


def _page(html: str) -> dict[str, Any]:
    found = re.search(r'<script type="application/json" id="gridrun-data">(.*?)</script>', html, re.DOTALL)
    assert found
    return json.loads(found.group(1))


def test_earlier_runs_keep_their_sweeps_and_values(tmp_path: Path) -> None:
    m = _history(tmp_path)
    first = _rows(m, 1)
    assert {r["key"]: (r["sweep"], r["values"]) for r in first} == {
        "look=x,q=540p": (None, {"look": "x", "q": "540p"}), "look=x,q=720p": (None, {"look": "x", "q": "720p"}),
        "look=y,q=540p": (None, {"look": "y", "q": "540p"}), "look=y,q=720p": (None, {"look": "y", "q": "720p"}),
    }
    assert {r["key"]: (r["sweep"], r["values"]) for r in _rows(m, 2)} == {
        "a/look=x": ("a", {"look": "x"}), "a/look=y": ("a", {"look": "y"})}
    assert {r["key"]: r["sweep"] for r in _rows(m, 3)} == {"b/look=x": "b", "b/look=y": "b"}
    csv = api.export(m, run_id=1, formats=("csv",))[0].read_text().splitlines()
    assert csv[0].startswith("key,sweep,hash,values.look,values.q,")
    assert csv[1].startswith('"look=x,q=540p",,') and ",x,540p," in csv[1]

    page = _page(api.report(m, run_id=1).read_text())
    assert [a["id"] for a in page["axes"]] == ["look", "q"]  # no sweep axis: run 1 had none
    assert {item.get("sweep") for item in page["items"]} == {None}
    page = _page(api.report(m, run_id=2).read_text())
    assert {item["key"]: item["sweep"] for item in page["items"]} == {"a/look=x": "a", "a/look=y": "a"}


def _job(key: str, sweep: str | None, values: dict[str, Any]) -> JobRecord:
    return JobRecord(id=1, key=key, sweep=sweep, hash="h", values=values, params={}, state="done", output_path="",
                     cost_estimate_micros=0, cost_micros=0, attempts=1, provider_id=None, error=None, sha256=None,
                     size=None, duration=None, created_at=0.0, submitted_at=None, completed_at=None, downloaded_at=None,
                     cached_from_run=None)


def test_values_read_back_from_the_run_key() -> None:
    now = {"look": "a, b=c", "seed": 1}
    key_now = job_key("cat", now.items(), 2)
    # the job's key in a run without sweeps, with an axis removed since and a value holding ',' and '='
    then = as_keyed(_job("look=a, b=c,seed=1,n=3#2", "cat", now), key_now, ("look", "seed", "n"), {"n": {"3": 3}})
    assert (then.sweep, dict(then.values)) == (None, {"look": "a, b=c", "seed": 1, "n": 3})
    renamed = as_keyed(_job("kitten/look=a, b=c,seed=1#2", "cat", now), key_now, ("look", "seed"))
    assert (renamed.sweep, renamed.values) == ("kitten", now)
    plain = as_keyed(_job("job", "cat", {}), job_key("cat", (), 0))
    assert (plain.sweep, dict(plain.values)) == (None, {})
    same = _job(key_now, "cat", now)
    assert as_keyed(same, key_now) is same


def test_a_key_that_reads_no_one_way_keeps_the_values_of_now() -> None:
    """A value holding `,seed=` is read as the job's value of now that writes it; a shortened one no value of the
    run names is not guessed, nor are two readings that keep as much of the values of now."""
    now = {"look": "a,seed=9"}
    then = as_keyed(_job("look=a,seed=9,seed=1", None, now), "s/look=a,seed=9", ("look", "seed"), {"seed": {"2": 2}})
    assert dict(then.values) == {"look": "a,seed=9", "seed": 1}
    long = "a very long look value that is more than forty characters long"
    short = job_key(None, [("look", long)], 0)
    kept = as_keyed(_job(f"{short},seed=1", None, {"seed": 1}), "s/seed=1", ("look", "seed"))
    assert (kept.sweep, kept.values) == (None, {"seed": 1})
    named = as_keyed(_job(f"{short},seed=1", None, {"seed": 1}), "s/seed=1", ("look", "seed"), {"look": {short[5:]: long}})
    assert dict(named.values) == {"look": long, "seed": 1}
