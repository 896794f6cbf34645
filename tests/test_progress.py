from __future__ import annotations

import dataclasses
import io
import json
import os
import time
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from runner.jobs import usd_text
from runner.progress import Progress, _as_dict, fmt_next_check, fmt_rate, line
from runner.stats import RunStatistics, Throughput, run_statistics


def test_throughput_counts_jobs_since_the_start_then_over_the_window() -> None:
    t = Throughput(window=300.0)
    assert t.per_minute(now=10.0, elapsed=10.0) is None  # nothing ended yet
    for at in (20.0, 25.0, 30.0):
        t.ended(at)
    assert t.per_minute(now=30.0, elapsed=30.0) == pytest.approx(6.0)  # 3 in the first 30 s
    for i in range(60):
        t.ended(400.0 + i)
    # at 500 s the window (200-500 s) holds the 60 recent ones, not the first three
    assert t.per_minute(now=500.0, elapsed=500.0) == pytest.approx(60 * 60 / 300.0)
    assert t.per_minute(now=2000.0, elapsed=2000.0) == 0.0  # stalled: none lately, some before


def test_the_first_pace_is_over_the_time_the_run_has_had_and_its_eta_waits_for_a_second_end() -> None:
    """Two jobs ended in the run's first half second: 240 a minute, not the 120 a one-second floor made of it,
    which doubled the first ETA. One end alone gives a pace (the first render's) but no ETA."""
    t = Throughput(window=300.0)
    t.ended(0.2)
    assert t.per_minute(now=0.25, elapsed=0.25) == pytest.approx(240.0)
    assert t.eta(10, 240.0) is None
    t.ended(0.4)
    per_minute = t.per_minute(now=0.5, elapsed=0.5)
    assert per_minute == pytest.approx(240.0) and t.eta(10, per_minute) == pytest.approx(2.5)
    assert t.eta(0, per_minute) is None
    at_once = Throughput()
    at_once.ended(5.0)
    assert at_once.per_minute(now=5.0, elapsed=0.0) is None  # no time to measure a pace over


def test_before_two_ends_the_eta_is_the_time_the_jobs_left_are_expected_to_take() -> None:
    """No pace yet (none or one job ended): the ETA is the time the jobs in flight and those not sent yet are
    expected to take by their render times, an estimate; none where that is not known or already past. Once two
    have ended, the pace counts as before."""
    t = Throughput(window=3600.0)
    assert not t.paced
    assert t.eta(1, None, now=5.0, elapsed=5.0, ends_in=895.0) == pytest.approx(895.0)
    assert t.eta(1, None, now=5.0, elapsed=5.0) is None and t.eta(1, None, ends_in=0.0) is None
    assert t.eta(0, None, ends_in=895.0) is None
    t.ended(900.0)
    assert not t.paced and t.eta(2, 0.2, now=905.0, elapsed=905.0, ends_in=895.0) == pytest.approx(895.0)
    t.ended(1800.0)
    assert t.paced  # two ends: the pace as of the last end (2 in 1800 s), counted down, or longer if expected so
    assert t.eta(1, t.per_minute(1800.0, 1800.0), now=1800.0, elapsed=1800.0, ends_in=10.0) == pytest.approx(900.0)


def test_an_eta_from_expected_render_times_reads_as_an_estimate() -> None:
    assert "eta ~14:55" in line(stats(eta=895.0, eta_expected=True))
    assert "eta 14:55" in line(stats(eta=895.0))
    console = Console(file=io.StringIO(), width=120, record=True, force_terminal=True)
    console.print(Progress(console, total=100)._render(stats(eta=895.0, eta_expected=True)))
    assert "eta ~14:55" in console.export_text()


def test_a_run_of_one_long_render_shows_an_eta_while_it_renders(tmp_path: Path) -> None:
    """One job, a render the simulator takes 3 s for: no job ends before it, so no pace, but the run knows the
    render it expects: while it renders, its progress has an ETA, no longer than that render, marked as expected;
    the run's end has none."""
    from execkit import sim_provider, write_manifest

    from runner import api

    m = write_manifest(tmp_path, n_seeds=1, styles=("anime",), sim={"render_time": 3.0, "jitter": 0.0})
    seen: list[RunStatistics] = []
    result = api.run(m, provider=sim_provider(m), on_progress=seen.append, report=False)
    assert result.exit_code == 0 and result.stats.eta is None
    rendering = [s for s in seen if s.counts.get("submitted") or s.counts.get("running")]
    assert rendering, seen
    timed = [s for s in rendering if s.eta is not None]
    assert timed, [(s.elapsed, s.eta) for s in rendering]
    assert all(s.eta_expected and 0 < s.eta <= 3.0 for s in timed), [(s.elapsed, s.eta) for s in timed]
    event = json.loads(json.dumps(_as_dict(timed[0])))
    assert event["eta"] is not None and event["eta_expected"] is True


def test_the_eta_counts_down_between_two_ends_instead_of_growing_as_the_pace_measured_now_falls() -> None:
    """Two jobs ended by t=10 of a run, four left: the ETA at t=20 is below the one at t=15 (the pace as of the last
    end, counted down), where the pace measured at each moment (2 in 15 s, then 2 in 20 s) made it grow; once that
    countdown is past, the pace now is what is left to go by."""
    t = Throughput(window=300.0)
    t.ended(5.0)
    t.ended(10.0)

    def eta(now: float, ends_in: float | None = None) -> float | None:
        return t.eta(4, t.per_minute(now, now), now=now, elapsed=now, ends_in=ends_in)

    assert eta(15.0) == pytest.approx(15.0) and eta(20.0) == pytest.approx(10.0)  # 4 at 12 a minute from t=10
    assert eta(40.0) == pytest.approx(4 / (2 / 40))  # later than that pace said: the pace now
    # the four in flight expected to end at t=40 by their render times: that, counted down too
    assert eta(15.0, 40.0 - 15.0) == pytest.approx(25.0) and eta(20.0, 40.0 - 20.0) == pytest.approx(20.0)


def test_the_jobs_in_flight_and_unsent_are_expected_to_end_by_their_render_times_slots_taken_as_they_free() -> None:
    from runner.stats import expected_end

    # in flight to t=10 and t=20, three slots: five more of 10 s each fill the first slot to free, done by t=30
    assert expected_end(0.0, [10.0, 20.0], 5, 3, 10.0) == 30.0
    assert expected_end(0.0, [10.0, 20.0], 1, 3, 10.0) == 20.0  # one more, in the free slot: done by t=10
    assert expected_end(0.0, [], 4, 2, 10.0) == 20.0  # nothing in flight: two waves
    assert expected_end(50.0, [10.0], 0, 3, 10.0) == 0.0  # past its time: it may end any moment
    assert expected_end(50.0, [10.0], 2, 1, 10.0) == 20.0  # the slot frees now at the earliest
    assert expected_end(0.0, [], 0, 3, 10.0) is None


def stats(**over: object) -> RunStatistics:
    base: dict[str, object] = {
        "run_id": 1, "total": 100, "counts": {"done": 40, "running": 10, "planned": 50}, "cached": 0,
        "spent_micros": 14_000_000, "reserved_micros": 3_500_000, "budget_micros": 50_000_000, "elapsed": 125.0,
        "eta": 150.0, "per_minute": 16.0, "requests": 180, "stopping": None, "last_errors": ("job a: boom",),
    }
    return RunStatistics(**{**base, **over})  # type: ignore[arg-type]


def test_a_plain_line_has_counts_money_throughput_and_eta() -> None:
    text = line(stats())
    assert text.startswith("planned 50, running 10, done 40 | spent $14.00 + reserved $3.50 of $50.00")
    assert "16.0 jobs/min, 2:05 elapsed, eta 2:30" in text
    assert "— jobs/min" in line(stats(per_minute=None, eta=None))


def test_a_simulators_figures_are_said_simulated_on_each_line_and_its_json_keeps_them(tmp_path: Path) -> None:
    """A run on the simulator: each progress line's money is said simulated (made-up, nothing paid), on a plain
    line as on the live display; `--json` keeps its numbers as they are, with no key added."""
    from execkit import write_manifest

    from runner import api

    assert "of $50.00 (simulated) | " in line(stats(simulated=True)) and "simulated" not in line(stats())
    result = api.run(write_manifest(tmp_path, n_seeds=1, styles=("anime",)), report=False)
    assert result.exit_code == 0 and result.stats.simulated
    said = line(result.stats)
    assert result.stats.spent_micros > 0 and f"spent {usd_text(result.stats.spent_micros)} + " in said, said
    assert "(simulated) | " in said, said
    assert set(_as_dict(result.stats)) == set(_as_dict(stats())) and "simulated" not in _as_dict(result.stats)


@pytest.mark.parametrize(("seconds", "shown"), [
    (0.2, "1 s"), (5.0, "5 s"), (120.0, "120 s"), (120.2, "2 min 01 s"), (121.0, "2 min 01 s"),
    (179.0, "2 min 59 s"), (180.0, "3 min 00 s"), (3599.0, "59 min 59 s"), (3599.2, "1 h 00 min"),
    (3601.0, "1 h 01 min"), (7200.0, "2 h 00 min"), (7204.0, "2 h 01 min"), (7260.0, "2 h 01 min"),
    (86_400.0, "24 h 00 min"), (86_401.0, "over a day"), (1e308, "over a day"), (float("inf"), "over a day"),
    (float("nan"), "over a day"),
])
def test_the_next_check_reads_in_seconds_then_two_units_rounded_up_on_the_smaller_and_a_far_one_as_over_a_day(
    seconds: float, shown: str
) -> None:
    """A wait of 1e308 s (a simulator's render time) read as its 300 digits; infinity raised."""
    assert fmt_next_check(seconds) == f"next check in {shown}"
    assert line(stats(next_check=seconds)).endswith(f", next check in {shown}")


def test_json_lines_carry_the_throughput(capsys: pytest.CaptureFixture[str]) -> None:
    with Progress(Console(file=io.StringIO()), json_lines=True, total=100) as p:
        p.update(stats())
        p.final(stats(per_minute=12.345, eta=None))
    events = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert [e["event"] for e in events] == ["progress", "end"]
    assert events[0]["per_minute"] == 16.0 and events[0]["eta"] == 150.0
    assert events[1]["per_minute"] == 12.35 and events[1]["eta"] is None


def test_the_terminal_display_shows_throughput_and_the_last_errors() -> None:
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=120, color_system=None)
    with Progress(console, total=100) as p:
        p.update(stats(counts={"done": 38, "cancelled": 2, "running": 10, "planned": 50}))
    text = out.getvalue()
    assert "40/100" in text  # cancelled jobs have ended too
    assert "16.0 jobs/min" in text and "eta 2:30" in text and "job a: boom" in text


@pytest.mark.parametrize("width", [30, 50, 80, 120])
def test_the_terminal_display_fits_its_width_and_loses_no_figure(width: int) -> None:
    counts = {"planned": 1234, "submitting": 12, "submitted": 40, "running": 500, "downloading": 3, "done": 8211,
              "failed": 17, "unknown": 2, "expired": 1}
    error = "p0012/anime/seed-3: failed: content_moderation: the prompt was refused [" + "x" * 100 + "]"
    s = stats(total=10_000, counts=counts, spent_micros=1_234_560_000, reserved_micros=234_000_000,
              budget_micros=2_000_000_000, elapsed=3723.0, eta=1234.0, per_minute=1234.5, requests=123_456,
              last_errors=(error,))
    # The CLI's console does not wrap (soft_wrap): a line longer than the terminal would be wrapped by the
    # terminal itself, behind the live display's back, or cut off.
    console = Console(file=io.StringIO(), width=width, soft_wrap=True, record=True, color_system=None)
    console.print(Progress(console, total=10_000)._render(s))
    lines = console.export_text().splitlines()
    assert max(len(x) for x in lines) <= width
    text = "\n".join(lines)
    for figure in ("8,231/10,000", "planned 1,234", "submitting 12", "submitted 40", "running 500", "downloading 3",
                   "done 8,211", "failed 17", "unknown 2", "expired 1", "spent $1,234.56",
                   "reserved $234.00", "of $2,000.00", "1,234 jobs/min", "elapsed 1:02:03", "eta 20:34",
                   "requests 123,456"):
        assert figure in text
    assert lines[-1].startswith("• p0012/anime/seed-3: failed:") and lines[-1].endswith("…")


def test_the_last_errors_show_a_keys_and_a_messages_control_characters_escaped() -> None:
    """A key from a data file or a matrix (and a provider's message) holding an ESC switched reverse video on for
    the rest of the terminal, a U+202E reversed the line: written as `status` writes them, live and in plain lines."""
    error = "p=abc\u202edef,tag=t\x1b[7mINV and 5 more jobs: BAD\x1b[5mBLINK"
    shown = "p=abc\\u202edef,tag=t\\x1b[7mINV and 5 more jobs: BAD\\x1b[5mBLINK"
    live = io.StringIO()
    with Progress(Console(file=live, force_terminal=True, width=200, color_system=None), total=100) as p:
        p.update(stats(last_errors=(error,)))
    plain = io.StringIO()
    Progress(Console(file=plain, width=200), total=100).final(stats(last_errors=(error,)))
    for text in (live.getvalue(), plain.getvalue()):
        assert shown in text and not any(raw in text for raw in ("\u202e", "\x1b[7m", "\x1b[5m"))


def test_the_terminal_display_ends_on_the_final_figures() -> None:
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=120, color_system=None)
    with Progress(console, total=100) as p:
        p.update(stats(counts={"done": 99, "downloading": 1}))
        p.final(stats(counts={"done": 100}, eta=0.0))
    last = out.getvalue().rsplit("█", 1)[1]  # the last frame, from the end of its bar
    assert "100/100" in last and "done 100" in last and "downloading" not in last


def test_a_display_without_a_request_count_leaves_the_figure_out(capsys: pytest.CaptureFixture[str]) -> None:
    """`status --watch` reads the state, which keeps no request count: no 'requests' figure, the rest alike;
    its JSON lines say null."""
    console = Console(file=io.StringIO(), width=100, soft_wrap=True, record=True, color_system=None)
    console.print(Progress(console, total=100)._render(stats(requests=None)))
    text = console.export_text()
    assert "requests" not in text and "spent $14.00" in text and "eta 2:30" in text
    Progress(Console(file=io.StringIO()), json_lines=True).final(stats(requests=None))
    end = json.loads(capsys.readouterr().out)
    assert end["event"] == "end" and end["requests"] is None and end["counts"]["done"] == 40


def test_run_statistics_from_a_snapshot_another_process_reads(tmp_path: Path) -> None:
    """What `status --watch` shows comes from the state alone: counts, money, cached jobs, the jobs that
    ended badly as the last errors, and how the run ended when not `done`."""
    from runner.state import JobState, Store

    with closing(Store(tmp_path / "state.db")) as store:
        run = store.start_run(manifest_name="m", manifest_path="m.yaml", manifest_copy="", outputs_dir=str(tmp_path),
                              provider="sim", model="pixverse-v5.6", axes=["seed"], budget_micros=9_000_000)
        jobs = [{"hash": f"{i:064x}", "key": f"seed={i}", "sweep": None, "values": {"seed": i}, "params": {"prompt": "p"},
                 "output_path": str(tmp_path / f"{i}.mp4"), "cost_estimate_micros": 350_000, "width": 960,
                 "height": 540, "duration": 5} for i in range(3)]
        bad = store.add_jobs(run, jobs)[f"{1:064x}"]
        store.begin_submit(run, [bad])
        store.transition(bad, JobState.SUBMITTED, provider_id="v1")
        store.transition(bad, JobState.FAILED, error="content_moderation: refused")
        snap = store.snapshot(run)
    s = run_statistics(snap, now=snap.run.started_at + 60)
    assert s.run_id == run and s.total == 3 and s.counts["planned"] == 2 and s.counts["failed"] == 1
    assert s.last_errors == ("seed=1: content_moderation: refused",)
    assert s.requests is None and s.stopping is None and s.budget_micros == 9_000_000
    ended = dataclasses.replace(snap, run=dataclasses.replace(snap.run, ended_at=snap.run.started_at + 5,
                                                                status="budget"))
    assert run_statistics(ended).stopping == "budget" and run_statistics(ended).eta is None


def test_run_json_writes_only_json_lines_on_stdout(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The end event names the report and the videos folder; no plain line follows it."""
    from execkit import write_manifest

    from runner.cli import main

    monkeypatch.chdir(tmp_path)
    m = write_manifest(tmp_path, n_seeds=1, styles=("anime",))
    assert main(["run", str(m), "--json"]) == 0
    events = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    end = events[-1]
    assert end["event"] == "end" and end["counts"]["done"] == 1
    assert (end["report"], end["videos"]) == ("outputs/t/report.html", "outputs/t/")
    assert (end["status"], end["exit_code"]) == ("done", 0)  # a reader needs no guess from `stopping`
    assert (tmp_path / end["report"]).is_file()


def test_run_json_refused_before_it_starts_still_ends_with_an_end_event(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A script reading `run --json` for its `end` event gets one when the run is refused before it begins: by
    the budget (status `budget`, exit 3), an invalid manifest (no status, exit 2) or another runner's lock (status
    `locked`, exit 1), each with the errors standard error gives; nothing was sent or paid."""
    from execkit import write_manifest

    from runner.cli import main
    from runner.state import Store

    monkeypatch.chdir(tmp_path)
    m = write_manifest(tmp_path, n_seeds=2, styles=("anime",))

    def end_of(*argv: str) -> tuple[int, dict[str, object], str]:
        code = main(["run", *argv, "--json", "--no-report"])
        out, err = capsys.readouterr()
        events = [json.loads(x) for x in out.splitlines()]
        assert len(events) == 1 and events[0]["event"] == "end", out
        return code, events[0], err

    code, end, err = end_of(str(m), "--budget", "0.1")
    assert (code, end["status"], end["exit_code"]) == (3, "budget", 3)
    refusal = ("2 jobs to submit would cost $0.70, above the budget of $0.10; raise run.budget_usd or --budget, "
               "or pass --allow-partial to run up to the budget")
    assert end["errors"] == [refusal]
    assert f"error: {end['errors'][0]}" in " ".join(err.split())  # the same words on standard error

    bad = tmp_path / "bad.yaml"
    bad.write_text(m.read_text().replace("model: pixverse-v5.6", "model: nope"))
    code, end, _ = end_of(str(bad))
    assert (code, end["status"], end["exit_code"]) == (2, None, 2)
    assert [e.split(": model: ")[0] for e in end["errors"]] == [f"{bad}:4:1"]  # type: ignore[union-attr]

    holder = Store(tmp_path / ".gridrun" / "state.db")  # another runner of the state, going on
    holder.acquire_lock(manifest=m)
    try:
        code, end, _ = end_of(str(m))
    finally:
        holder.close()
    assert (code, end["status"], end["exit_code"]) == (1, "locked", 1)  # told apart from jobs that failed
    assert ": another run of this manifest (pid " in end["errors"][0], end  # type: ignore[index]


def test_run_json_into_a_reader_that_stops_keeps_the_runs_exit_code(tmp_path: Path) -> None:
    """`gridrun run --json | head -1`: the run goes on to its end and exits 1 for its failed job, not 0."""
    import subprocess
    import sys

    from execkit import write_manifest

    m = write_manifest(tmp_path, n_seeds=2, styles=("anime",), sim={"render_time": 0.3, "failure_rate": 1.0})
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    proc = subprocess.Popen([sys.executable, "-m", "runner.cli", "run", str(m), "--json", "--no-report"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, cwd=tmp_path)
    assert proc.stdout is not None and proc.stderr is not None
    json.loads(proc.stdout.readline())
    proc.stdout.close()
    with proc.stderr:
        err = proc.stderr.read().decode()
    assert proc.wait(timeout=60) == 1, err
    assert "Traceback" not in err and "some jobs did not finish" in err, err


def test_status_pace_counts_every_job_that_ended_in_the_run_as_live_progress_does(tmp_path: Path) -> None:
    """`status` and the watch measure the pace as the run does (jobs ended, failed ones too, once each, not
    those an earlier run ended), and `stopping` means what the run's own says: a run that ended with failures
    has none, its outcome is its status."""
    from runner.state import JobState, Store

    import time

    t = [time.time() - 1000]  # the second run starts now: its process (this one) is alive
    with closing(Store(tmp_path / "state.db", clock=lambda: t[0])) as store:
        def job(i: int) -> dict[str, object]:
            return {"hash": f"{i + 1:x}" * 64, "key": f"seed={i}", "sweep": None, "values": {"seed": i},
                    "params": {"prompt": "p"}, "output_path": str(tmp_path / f"{i}.mp4"),
                    "cost_estimate_micros": 350_000, "width": 960, "height": 540, "duration": 5}

        def fail(run: int, jid: int) -> None:
            store.begin_submit(run, [jid])
            store.transition(jid, JobState.SUBMITTED, provider_id=f"v{jid}")
            store.transition(jid, JobState.FAILED, error="boom")

        first = store.start_run(manifest_name="m", manifest_path="m.yaml", manifest_copy="", outputs_dir=str(tmp_path),
                                provider="sim", model="pixverse-v5.6", axes=["seed"], budget_micros=None)
        ids = store.add_jobs(first, [job(i) for i in range(4)])
        fail(first, ids["1" * 64])  # ended in the earlier run: not this one's pace
        store.end_run(first, "failed")
        t[0] = start = time.time()
        run = store.start_run(manifest_name="m", manifest_path="m.yaml", manifest_copy="", outputs_dir=str(tmp_path),
                              provider="sim", model="pixverse-v5.6", axes=["seed"], budget_micros=None)
        store.add_jobs(run, [job(i) for i in range(4)])
        t[0] = start + 10
        fail(run, ids["2" * 64])
        fail(run, ids["3" * 64])
        snap = store.snapshot(run)
        s = run_statistics(snap, now=start + 60)
        assert s.per_minute == pytest.approx(2.0) and s.eta == pytest.approx(30.0)  # 1 planned left, 2 jobs/min
        t[0] = start + 60
        store.end_run(run, "failed")
        ended = run_statistics(store.snapshot(run))
    assert ended.stopping is None and ended.eta is None and ended.per_minute == pytest.approx(2.0)


def test_an_eta_under_a_second_reads_0_01_not_0_00() -> None:
    """Jobs still render: the ETA is rounded up, in the plain line and the display alike."""
    s = stats(eta=0.6)
    assert "eta 0:01" in line(s)
    console = Console(file=io.StringIO(), width=100, record=True, color_system=None)
    console.print(Progress(console, total=100)._render(s))
    assert "eta 0:01" in console.export_text()
    assert "eta 2:30" in line(stats(eta=150.0)) and "eta 2:31" in line(stats(eta=150.2))


def test_status_draws_the_first_pace_and_eta_as_the_run_does(tmp_path: Path) -> None:
    """`status` draws the pace from the state with the run's own measure: over the time the run has had, the
    ETA once two of its jobs have ended."""
    import time

    from runner.state import JobState, Store

    t = [time.time()]  # the run starts now: its process (this one) is alive
    with closing(Store(tmp_path / "state.db", clock=lambda: t[0])) as store:
        start = t[0]
        run = store.start_run(manifest_name="m", manifest_path="m.yaml", manifest_copy="", outputs_dir=str(tmp_path),
                              provider="sim", model="pixverse-v5.6", axes=["seed"], budget_micros=None)
        ids = list(store.add_jobs(run, [
            {"hash": f"{i:024x}" + "0" * 40, "key": f"seed={i}", "sweep": None, "values": {"seed": i},
             "params": {"prompt": "p"}, "output_path": str(tmp_path / f"{i}.mp4"), "cost_estimate_micros": 350_000,
             "width": 960, "height": 540, "duration": 5} for i in range(4)]).values())
        for n, jid in enumerate(ids[:2]):
            t[0] = start + 0.2 * (n + 1)
            store.begin_submit(run, [jid])
            store.transition(jid, JobState.SUBMITTED, provider_id=f"v{jid}")
            store.transition(jid, JobState.FAILED, error="boom")
            if n == 0:
                first = run_statistics(store.snapshot(run), now=start + 0.25)
        second = run_statistics(store.snapshot(run), now=start + 0.5)
    assert first.per_minute == pytest.approx(240.0) and first.eta is None
    # 2 planned left, at the pace when the second ended (2 in 0.4 s), counted down since
    assert second.per_minute == pytest.approx(240.0) and second.eta == pytest.approx(0.3)


def test_a_runs_live_pace_is_over_the_time_it_has_had_and_its_eta_waits_for_a_second_end(tmp_path: Path) -> None:
    """Every update a run shows draws its pace from the jobs ended over the time it has had, in its first
    second too, and shows an ETA from it only once two jobs have ended (before, one from render times alone)."""
    from execkit import sim_provider, write_manifest

    from runner import api
    from runner.state import FINAL

    m = write_manifest(tmp_path, n_seeds=30, styles=("anime",), sim={"render_time": 0.05, "jitter": 0.0})
    seen: list[RunStatistics] = []
    result = api.run(m, provider=sim_provider(m), on_progress=seen.append, report=False)
    assert result.exit_code == 0
    paced = [s for s in seen if s.per_minute is not None]
    assert paced, [(s.elapsed, s.per_minute) for s in seen]
    for s in seen:
        ended = sum(n for state, n in s.counts.items() if state in FINAL)
        # a pace from the first job ended, however soon (a first second's too: no wait for a span of time)
        assert (s.per_minute is not None) == (ended >= 1), (s.elapsed, s.per_minute, ended)
        if s.per_minute is not None:
            assert s.per_minute == pytest.approx(60.0 * ended / s.elapsed), (s.elapsed, s.per_minute, ended)
        if ended >= 2 and ended < s.total:  # a pace: an ETA from it
            assert s.eta is not None and not s.eta_expected, (ended, s.eta)
        elif ended < 2 and s.eta is not None:  # before: only the render times expected of the jobs left
            assert s.eta_expected, (ended, s.eta)
        else:
            assert s.eta is None, (ended, s.eta)


def test_a_run_shows_the_pace_and_time_it_took_that_status_shows_of_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The run's last figures (its end line and `end` event) and `status`, plain and --json, draw one pace over
    one span: the run as the state records it, from its start to its end, not from when its process began
    planning to after it wrote its report."""
    from execkit import sim_provider, write_manifest

    from runner import api
    from runner.cli import main

    m = write_manifest(tmp_path, n_seeds=4, styles=("anime",), sim={"render_time": 0.3, "jitter": 0.0})
    result = api.run(m, provider=sim_provider(m))
    assert result.exit_code == 0 and result.stats.per_minute is not None
    shown = run_statistics(api.status(m))
    assert (round(shown.elapsed, 3), round(shown.per_minute or 0, 2)) == (
        round(result.stats.elapsed, 3), round(result.stats.per_minute, 2))
    capsys.readouterr()
    assert main(["status", str(m), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert (doc["elapsed"], doc["per_minute"]) == (round(result.stats.elapsed, 3), round(result.stats.per_minute, 2))
    assert main(["status", str(m)]) == 0
    assert f", {fmt_rate(result.stats.per_minute)}" in capsys.readouterr().out


@pytest.mark.parametrize("rate", [16.04, 99.94, 100.7, 1_234.4])
def test_status_writes_the_pace_as_the_runs_last_line_does(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, rate: float
) -> None:
    """One figure in the live display's last line, the plain lines and `gridrun status`, below 100 jobs/min as
    above it."""
    import re

    from execkit import sim_provider, write_manifest

    from runner import api, cli

    m = write_manifest(tmp_path, n_seeds=1, styles=("anime",), sim={"render_time": 0.1, "jitter": 0.0})
    assert api.run(m, provider=sim_provider(m), report=False).exit_code == 0
    monkeypatch.setattr("runner.stats.pace", lambda snap: (7.0, rate, None))  # as `status` imports it
    capsys.readouterr()
    assert cli.main(["status", str(m)]) == 0
    shown = re.findall(r"([\d,.]+) jobs/min", capsys.readouterr().out)
    drawn = re.findall(r"([\d,.]+) jobs/min", line(stats(per_minute=rate)))
    assert shown == drawn and len(drawn) == 1, (shown, drawn)


def test_a_run_that_only_settles_jobs_at_once_shows_no_pace_live_or_in_status(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Two jobs left rendering, then the simulator's world deleted: the next run finds both unknown within
    milliseconds. It has no pace to show (its end line and `status` say `—`, not thousands a minute), as a run
    that ended nothing has none."""
    from execkit import write_manifest

    from runner import api
    from runner.cli import main
    from runner.executor import RunOptions

    m = write_manifest(tmp_path, n_seeds=2, styles=("anime",), sim={"render_time": 30, "jitter": 0.0})
    assert api.run(m, report=False, options=RunOptions(timeout=0.3)).status == "incomplete"
    (tmp_path / ".gridrun" / "sim-world.jsonl").unlink()
    result = api.run(m, report=False)
    # however long the run took (a loaded machine makes it more than the fifth of a second no pace is drawn in)
    assert result.stats.counts["unknown"] == 2, result.stats
    assert result.stats.per_minute is None and run_statistics(api.status(m)).per_minute is None
    assert "— jobs/min" in line(result.stats)
    capsys.readouterr()
    main(["status", str(m), "--json"])
    assert json.loads(capsys.readouterr().out)["per_minute"] is None
    main(["status", str(m)])
    out = capsys.readouterr().out
    assert "taken" in out and "jobs/min" not in out, out


@pytest.mark.parametrize("as_json", [False, True], ids=["plain", "json"])
def test_a_run_whose_jobs_render_long_reports_every_5_s_while_nothing_changes(tmp_path: Path, as_json: bool) -> None:
    """Output that is not a terminal gets a line (a JSON object with --json) every 5 s while a job renders for
    12 s and no job changes state, and says what the run waits for: the first poll, scheduled from the expected
    render time. The gaps are read from the run's own elapsed figures, with 2 s to spare."""
    import itertools
    import re
    import subprocess
    import sys

    from execkit import write_manifest

    m = write_manifest(tmp_path, n_seeds=1, styles=("anime",), sim={"render_time": 12.0, "jitter": 0.0})
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    proc = subprocess.run([sys.executable, "-m", "runner.cli", "run", str(m), "--no-report", *(["--json"] * as_json)],
                          check=False, capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120)
    assert proc.returncode == 0, proc.stderr
    if as_json:
        events = [e for e in map(json.loads, proc.stdout.splitlines()) if e["event"] != "balance"]  # before the run
        elapsed = [e["elapsed"] for e in events]
        waiting = [e for e in events if e.get("next_check") is not None]
    else:
        times = [re.search(r"(\d+):(\d\d) elapsed, ", x) for x in proc.stderr.splitlines()]
        elapsed = [int(t[1]) * 60 + int(t[2]) for t in times if t is not None]
        waiting = [x for x in proc.stderr.splitlines() if re.search(r", next check in \d+ s", x)]
    duration = elapsed[-1]
    assert duration >= 11, elapsed
    assert len(elapsed) >= duration / 5 - 1, elapsed
    assert max(b - a for a, b in itertools.pairwise(elapsed)) <= 7, elapsed
    assert waiting, proc.stdout if as_json else proc.stderr


def test_the_reserve_a_run_shows_is_what_its_jobs_in_flight_may_cost(tmp_path: Path) -> None:
    """A job is reserved the moment it is decided to send it, before its attempt is committed and its create
    sent: from then on it counts as submitting, so no update shows money reserved for jobs still planned. Once
    its render is seen done (downloading), its cost is spent, no longer reserved, as the state counts it."""
    from execkit import sim_provider, write_manifest

    from runner import api
    from runner.state import IN_FLIGHT, JobState

    m = write_manifest(tmp_path, n_seeds=6, styles=("anime", "clay"), run={"concurrency": 6},
                       sim={"render_time": 0.3, "concurrency": 6})
    cost = api.plan(m).jobs[0].cost_micros
    seen: list[RunStatistics] = []
    result = api.run(m, provider=sim_provider(m), on_progress=seen.append, report=False)
    assert result.exit_code == 0 and seen
    rendering = IN_FLIGHT - {JobState.DOWNLOADING}
    shown = [(s.reserved_micros // cost, sum(s.counts[state.value] for state in rendering), dict(s.counts))
             for s in seen]
    assert all(reserved == in_flight for reserved, in_flight, _ in shown), shown


@pytest.mark.parametrize(("micros", "text"), [
    (0, "$0.00"), (350_000, "$0.35"), (2_200_000, "$2.20"), (10_000, "$0.01"), (2_625_000, "$2.625"),
    (1_575_000, "$1.575"), (1, "$0.000001"), (1_234_567_890_000, "$1,234,567.89"), (-425_000, "-$0.425"),
])
def test_money_is_shown_in_cents_with_every_further_digit_it_has_never_rounded(micros: int, text: str) -> None:
    """A float's rounding showed 2,625,000 micro-dollars as $2.62 and 1,575,000 as $1.57 (half to even, and
    binary fractions): a figure over a budget could read as within it."""
    assert usd_text(micros) == text


def test_status_watch_json_refused_before_it_starts_ends_with_an_end_event(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A script reading `status --watch --json` for its `end` event gets one when the watch is refused before it
    starts, as from a refused run: no manifest given and no state folder here, an invalid manifest (exit 2) or a
    state it cannot read (exit 1), its status null and its errors those standard error gives; without --json,
    nothing on standard output."""
    from execkit import write_manifest

    from runner.cli import main

    monkeypatch.chdir(tmp_path)
    m = write_manifest(tmp_path, n_seeds=2, styles=("anime",))
    bad = tmp_path / "bad.yaml"
    bad.write_text(m.read_text().replace("model: pixverse-v5.6\n", ""))

    def end_of(*argv: str) -> tuple[int, dict[str, object]]:
        code = main(["status", *argv, "--watch", "--every", "0.2"])
        out, err = capsys.readouterr()
        assert out == "" and "error: " in err, (out, err)
        code_json = main(["status", *argv, "--watch", "--every", "0.2", "--json"])
        out, err = capsys.readouterr()
        events = [json.loads(x) for x in out.splitlines()]
        assert len(events) == 1 and events[0]["event"] == "end", out
        assert code_json == code == events[0]["exit_code"] and events[0]["status"] is None, events
        errors = events[0]["errors"]
        assert isinstance(errors, list) and len(errors) == 1 and f"error: {errors[0]}" in " ".join(err.split())
        return code, events[0]

    code, end = end_of()
    assert code == 2 and end["errors"] == ["no manifest given and no .gridrun/ state folder here; name the manifest"]
    code, end = end_of(str(bad))
    assert code == 2 and end["errors"][0].startswith(f"{bad}:1:1: missing required field 'model'"), end  # type: ignore[index]
    (tmp_path / ".gridrun").mkdir()
    (tmp_path / ".gridrun" / "state.db").write_text("not a database")
    code, end = end_of(str(m))
    assert code == 1 and "state.db: not a gridrun state file" in str(end["errors"]), end


@pytest.mark.parametrize("argv", [
    ["run", "m.yaml", "--json", "--budget", "nan"],
    ["retry", "m.yaml", "--json", "--bogus"],
    ["status", "m.yaml", "--watch", "--json", "--every", "x"],
    ["status", "m.yaml", "--watch", "--json", "--every", "0.01"],
    ["status", "m.yaml", "--watch", "--json", "--runs"],
])
def test_a_command_line_refused_by_argparse_still_ends_json_lines_with_an_end_event(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    """`run`/`retry --json` and `status --watch --json` given a command line argparse refuses end their lines
    with the `end` event a refused run writes (status null, exit 2, the usage error standard error gives), where
    they wrote nothing; argparse's usage and exit 2 stay. Without --json, nothing on standard output."""
    from runner.cli import main

    with pytest.raises(SystemExit) as plain:
        main([a for a in argv if a != "--json"])
    out, err = capsys.readouterr()
    assert plain.value.code == 2 and out == "" and "error: " in err, (out, err)

    with pytest.raises(SystemExit) as exited:
        main(argv)
    out, err = capsys.readouterr()
    events = [json.loads(x) for x in out.splitlines()]
    assert len(events) == 1, out
    assert exited.value.code == 2 and err.startswith("usage: gridrun"), err
    errors = events[0].pop("errors")
    assert events[0] == {"event": "end", "status": None, "exit_code": 2}
    assert len(errors) == 1 and f": error: {errors[0]}\n" in err, (errors, err)


def test_a_refused_command_line_without_json_lines_writes_no_end_event(capsys: pytest.CaptureFixture[str]) -> None:
    """`status --json` without --watch prints one JSON document, not lines: a usage error prints its error object
    in the document's place, no `end` event; and past `--` a `--json` is no option: a usage error writes nothing on
    standard output there."""
    from runner.cli import main

    with pytest.raises(SystemExit):
        main(["status", "m.yaml", "--json", "--every", "x"])
    doc = json.loads(capsys.readouterr().out)
    assert doc == {"run": None, "manifest": None, "status": None, "exit_code": 2,
                   "errors": ["argument --every: a number of seconds is needed, got 'x'"]}, doc
    with pytest.raises(SystemExit):
        main(["run", "--budget", "nan", "--", "--json"])
    assert capsys.readouterr().out == ""


def test_plain_output_of_a_run_an_error_ended_says_its_last_errors_but_not_after_ctrl_c() -> None:
    """A run that gave up (a state held past its patience) says its last errors, as a run's end does; one the
    user stopped with Ctrl-C does not repeat what its lines just said."""
    for status, shown in (("failed", True), ("interrupted", False)):
        console = Console(file=io.StringIO(), width=200, color_system=None)
        progress = Progress(console)
        progress._stats = stats(last_errors=("state.db is held",))
        progress.failed(status=status, exit_code=1, errors=["x"])
        assert ("• state.db is held" in console.file.getvalue()) is shown, (status, console.file.getvalue())



# A run whose wall clock is stepped by argv[1] seconds (an NTP step) once it has recorded its start: `time.time`
# is patched before gridrun loads, as a step reaches every reader of it. The embedded simulator keeps the real
# clock: a provider's clock does not jump with ours (a step back would hold its renders for that long).
_STEPPED_RUN = """
import sys, time, types
real, step, stepped = time.time, float(sys.argv.pop(1)), []
time.time = lambda: real() + (step if stepped else 0.0)
import runner.sim.app
from runner.state import Store
runner.sim.app.time = types.ModuleType("time")
runner.sim.app.time.__dict__.update({**vars(time), "time": real})
start_run = Store.start_run
def started(self, *args, **kwargs):
    run = start_run(self, *args, **kwargs)
    stepped.append(True)
    return run
Store.start_run = started
from runner.entry import entry
sys.argv[0] = "gridrun"
sys.exit(entry())
"""


@pytest.mark.parametrize("step", [3600.0, -3600.0])
def test_a_step_of_the_wall_clock_mid_run_moves_neither_its_elapsed_time_nor_its_pace(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], step: float
) -> None:
    """An NTP step once the run has started (an hour forward, or back) is not time the run took: its progress
    lines (elapsed, pace), `status`'s "taken" and the export's wall time count the run's own time, not the step,
    which showed "1:00:00 elapsed" forward, and "0:00 elapsed" at no pace back."""
    import re
    import subprocess
    import sys

    from execkit import write_manifest

    from runner import api
    from runner.cli import main
    from runner.export import summary

    m = write_manifest(tmp_path, n_seeds=4, styles=("anime",), sim={"render_time": 0.3, "jitter": 0.0})
    done = subprocess.run([sys.executable, "-c", _STEPPED_RUN, str(step), "run", str(m), "--no-report"],
                          cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])},
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    last = [ln for ln in done.stderr.splitlines() if " elapsed" in ln][-1]
    assert re.search(r"[\d.,]+ jobs/min, \d+:\d\d elapsed", last), last  # a pace, and no hour taken
    snap = api.status(m)
    assert snap.run.ended_at is not None and abs(snap.run.ended_at - snap.run.started_at - step) < 600  # stepped
    shown = run_statistics(snap)
    assert 0.0 < shown.elapsed < 600 and summary(snap)["run"]["wall_seconds"] == round(shown.elapsed, 3)
    capsys.readouterr()
    assert main(["status", str(m)]) == 0
    taken = re.search(r"(\S+) taken", capsys.readouterr().out)
    assert taken is not None and taken.group(1).count(":") == 1, taken  # minutes and seconds, no hour


def test_plain_lines_say_each_new_last_error_once_as_it_comes() -> None:
    """A log (CI) says why a run is stuck as soon as the run knows it, not only at an end that may never come: each
    new last error on a line of its own, once; the same error met by more jobs since, or by another job later, is
    not said again; the state held by another program is said once, as before."""
    console = Console(file=io.StringIO(), width=300, color_system=None)
    refused = "polls fail, still polling: could not connect (Connection refused)"
    files = "polls fail, still polling: HTTP 500: too many open files: raise `ulimit -n`"
    held = "state.db is held by another process: the run has waited 10 s"
    steps = [((), ()),
             ((f"i=1: {refused}",), (refused,)),
             ((f"i=1 and 3 more jobs: {refused}",), (refused,)),
             ((f"i=1 and 3 more jobs: {refused}", f"i=9: {files}", f"i=7: {refused}"), (refused, files, refused)),
             ((f"i=1 and 3 more jobs: {refused}", held), (refused, held))]
    with Progress(console, every=3600) as p:  # one progress line, the first: the errors come between lines
        for errors, said in steps:
            p.update(stats(last_errors=errors, said=said, held=held if held in errors else None))
    lines = console.file.getvalue().splitlines()
    assert len(lines) == 4, lines
    assert lines[1:] == [f"  • i=1: {refused}", f"  • i=9: {files}", f"  • {held}"], lines


def test_a_plain_log_says_why_polls_fail_while_the_run_goes_on(tmp_path: Path) -> None:
    """A run whose first polls fail, then are answered, says so on its plain lines as it happens, once; its end,
    every job done, no longer lists it."""
    import subprocess
    import sys

    from execkit import write_manifest

    m = write_manifest(tmp_path, n_seeds=1, styles=("anime",), run={"poll_interval": 0.1},
                       sim={"render_time": 0.2, "jitter": 0.0,
                            "script": [{"route": "get", "nth": [1, 2], "fault": "server_error", "status": 502}]})
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    proc = subprocess.run([sys.executable, "-m", "runner.cli", "run", str(m), "--no-report"], check=False,
                          capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stderr.splitlines()
    told = [i for i, x in enumerate(lines) if x.startswith("  • style=anime,seed=1: polls fail, still polling: HTTP 502")]
    last = max(i for i, x in enumerate(lines) if x.startswith("done 1 |"))
    assert len(told) == 1 and told[0] < last, proc.stderr
    assert not lines[last + 1:] or "polls fail" not in "\n".join(lines[last + 1:]), proc.stderr


def test_a_run_with_nothing_to_do_says_its_plain_line_once() -> None:
    """A run whose jobs were all done before: its first line and its last are the same, said once; a last line that
    differs from the one before is said."""
    console = Console(file=io.StringIO(), width=300, color_system=None)
    done = stats(counts={"done": 100}, last_errors=(), eta=None)
    with Progress(console) as p:
        p.update(done)
        p.final(done)
    assert console.file.getvalue().splitlines() == [line(done)]
    console = Console(file=io.StringIO(), width=300, color_system=None)
    with Progress(console) as p:
        p.update(stats(last_errors=()))
        p.final(done)
    assert console.file.getvalue().splitlines() == [line(stats(last_errors=())), line(done)]


@pytest.mark.parametrize("end", ["final", "failed"])
def test_a_plain_log_ends_with_the_errors_the_run_ended_with_each_once(end: str) -> None:
    """The tail of a log (`tail -20` in CI) says why the run ended as it did: under its last line, the last errors
    it ended with, said as they came or not, each once; a run an error stopped (`failed`) ends the same way."""
    console = Console(file=io.StringIO(), width=300, color_system=None)
    told, late = "i=1: download failed: HTTP 200, TRUNCATED", "i=2: polls fail, still polling: HTTP 502"
    with Progress(console, every=3600) as p:
        p.update(stats(last_errors=(told,), said=(told,)))
        ended = stats(last_errors=(told, late, told), said=(told, late, told))
        if end == "final":
            p.final(ended)
        else:
            p._stats = ended
            p.failed(status="crashed", exit_code=1, errors=["boom"])
    lines = console.file.getvalue().splitlines()
    assert lines.count(f"  • {told}") == 2, lines  # as it came, then under the end
    assert lines[-2:] == [f"  • {told}", f"  • {late}"], lines


def test_the_first_plain_line_is_shown_on_a_machine_up_for_less_than_the_pace(monkeypatch: Any) -> None:
    """The monotonic clock counts from the machine's boot: a run on a machine (a CI runner, a container's host)
    up for less than the pace between two lines still shows its first line at once."""
    console = Console(file=io.StringIO(), width=300, color_system=None)
    monkeypatch.setattr(time, "monotonic", lambda: 2.0)
    with Progress(console, every=5.0) as p:
        p.update(stats())
    assert console.file.getvalue().count("\n") == 1, console.file.getvalue()


@pytest.mark.parametrize(("seconds", "tenths_under", "said"), [
    (4.24, 10, "4.2 s"), (9.96, 10, "10 s"), (38.4, 10, "38 s"), (59.4, 10, "59 s"), (59.6, 10, "1 min 00 s"),
    (725, 10, "12 min 05 s"), (10_920, 10, "3 h 02 min"), (-1.0, 10, "0.0 s"),
    (38.44, 60, "38.4 s"), (59.94, 60, "59.9 s"), (59.96, 60, "1 min 00 s"), (61, 60, "1 min 01 s"),
])
def test_a_span_is_said_in_tenths_under_its_threshold_then_minutes_and_hours(
    seconds: float, tenths_under: float, said: str,
) -> None:
    """A job's age in a note (tenths under 10 s) and a run's figures in the report (under a minute) read alike
    past those: never "60.0 s" nor "59.96 s" shown as a minute's worth of tenths."""
    from runner.jobs import span_text

    assert span_text(seconds, tenths_under=tenths_under) == said


def test_a_download_under_way_shows_its_bytes_and_counts_them_as_the_provider_answering(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A paid video streams in for minutes: its progress says how much has come (`downloaded_bytes`, "downloading 1
    (… MB so far)"), and the bytes arriving count as the provider answering: the heartbeat's last answer (what
    `gridrun status` says, "last answer … ago") is when the file last grew, not the poll before the download."""
    import anyio
    from execkit import sim_provider, write_manifest

    from runner import api
    from runner.executor import Executor

    m = write_manifest(tmp_path, n_seeds=1, styles=("anime",), sim={"render_time": 0.1, "jitter": 0.0})
    prov = sim_provider(m)
    real_download = prov.download
    half = 1_500_000
    seen: list[tuple[RunStatistics, float | None]] = []
    written: list[float] = []
    real_statistics = Executor.statistics

    def statistics(self: Executor) -> RunStatistics:
        s = real_statistics(self)
        if getattr(s, "downloaded_bytes", None) and len(seen) < 3:  # and the last answer, as the heartbeat records it
            seen.append((s, self._recorded_checks()[1]))
        return s

    async def download(client: Any, url: str, dest: Path, **kwargs: Any) -> Any:
        await anyio.sleep(0.3)  # the poll that saw the render done: some time before the first bytes
        part = Path(f"{dest}.part")
        part.parent.mkdir(parents=True, exist_ok=True)
        part.write_bytes(b"\0" * half)  # half the body come, the rest held back
        written.append(time.time())
        for _ in range(200):
            if len(seen) >= 3:
                break
            await anyio.sleep(0.05)
        part.unlink()
        return await real_download(client, url, dest, **kwargs)

    monkeypatch.setattr(Executor, "statistics", statistics)
    prov.download = download
    result = api.run(m, provider=prov, on_progress=lambda s: None, report=False)
    assert result.exit_code == 0 and result.stats.downloaded_bytes is None
    assert seen, "no progress while the download was under way"
    s, recorded = seen[0]
    assert s.downloaded_bytes == half and s.counts.get("downloading") == 1, s
    assert "downloading 1 (1.5 MB so far)" in line(s)
    assert _as_dict(s)["downloaded_bytes"] == half
    # the bytes' arrival, not the poll 0.3 s before them (a hundredth of a second allowed for the two clocks' reads)
    assert recorded is not None and recorded >= written[0] - 0.01, (recorded, written)


def test_a_stale_part_a_stopped_run_left_is_not_counted_as_bytes_come(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A killed run left half a video in its `.part`: until this run's download writes to it, nothing has come
    (`downloaded_bytes` 0, not the dead run's bytes); then what this run's download added; and a `.part` made anew
    counts whole once it holds more than that."""
    import anyio
    from execkit import sim_provider, write_manifest

    from runner import api
    from runner.executor import Executor

    m = write_manifest(tmp_path, n_seeds=1, styles=("anime",), sim={"render_time": 0.1, "jitter": 0.0})
    prov = sim_provider(m)
    real_download = prov.download
    stale = 1_000_000
    part = tmp_path / "outputs" / "t" / "anime" / "seed-1.mp4.part"
    part.parent.mkdir(parents=True)
    part.write_bytes(b"\1" * stale)
    seen: list[int | None] = []
    real_statistics = Executor.statistics

    def statistics(self: Executor) -> RunStatistics:
        s = real_statistics(self)
        if s.counts.get("downloading"):
            seen.append(s.downloaded_bytes)
        return s

    async def wait_for(n: int) -> None:
        for _ in range(200):
            if len(seen) >= n:
                return
            await anyio.sleep(0.05)

    async def download(client: Any, url: str, dest: Path, **kwargs: Any) -> Any:
        await wait_for(1)
        marks = [len(seen)]
        with part.open("ab") as f:
            f.write(b"\0" * 250_000)  # this run's first bytes, after the dead run's
        await wait_for(marks[0] + 1)
        marks.append(len(seen))
        part.write_bytes(b"\0" * 400_000)  # made anew: its bytes all this try's
        await wait_for(marks[1] + 1)
        marks.append(len(seen))
        part.unlink()
        states.append(marks)
        return await real_download(client, url, dest, **kwargs)

    states: list[list[int]] = []
    monkeypatch.setattr(Executor, "statistics", statistics)
    prov.download = download
    result = api.run(m, provider=prov, on_progress=lambda s: None, report=False)
    assert result.exit_code == 0 and states, seen
    first, appended, anew = states[0]
    assert set(seen[:first]) <= {None, 0}, seen  # the dead run's million bytes are not this run's
    assert seen[first] == 250_000 and seen[appended] == 400_000, (seen, states)


def test_what_a_download_has_come_to_counts_its_file_across_tries_in_every_view(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A try cut short after 1.5 MB, and the next going on from there: what has come is what the file holds,
    1.7 MB once the second try added 0.2 MB, not the second try's bytes alone, in the plain line, the live display
    and the JSON event alike; as the second try begins it stays 1.5 MB, and once the video is saved there is no
    figure."""
    import anyio
    from execkit import quick_backoff, sim_provider, write_manifest

    from runner import api
    from runner.errors import DownloadError
    from runner.executor import Executor

    quick_backoff(monkeypatch)
    m = write_manifest(tmp_path, n_seeds=1, styles=("anime",), sim={"render_time": 0.1, "jitter": 0.0})
    prov = sim_provider(m)
    real_download = prov.download
    seen: list[RunStatistics] = []
    tries: list[int] = []
    real_statistics = Executor.statistics

    def statistics(self: Executor) -> RunStatistics:
        s = real_statistics(self)
        if s.counts.get("downloading"):
            seen.append(s)
        return s

    async def wait_for(n: int) -> None:
        for _ in range(400):
            if len(seen) >= n:
                return
            await anyio.sleep(0.02)

    async def download(client: Any, url: str, dest: Path, **kwargs: Any) -> Any:
        part = Path(f"{dest}.part")
        part.parent.mkdir(parents=True, exist_ok=True)
        tries.append(len(seen))
        if len(tries) == 1:
            part.write_bytes(b"\0" * 1_500_000)
            await wait_for(len(seen) + 2)
            raise DownloadError("cut short: the connection closed after 1,500,000 bytes")
        await wait_for(len(seen) + 1)
        tries.append(len(seen))
        part.write_bytes(b"\0" * 1_700_000)  # the second try goes on from the first's 1.5 MB: 0.2 MB more
        tries.append(len(seen))
        await wait_for(len(seen) + 2)
        tries.append(len(seen))
        part.unlink()
        return await real_download(client, url, dest, **kwargs)

    monkeypatch.setattr(Executor, "statistics", statistics)
    prov.download = download
    result = api.run(m, provider=prov, on_progress=lambda s: None, report=False)
    assert result.exit_code == 0 and result.stats.downloaded_bytes is None, result.stats.last_errors
    _, second, begun, _, ended = tries
    assert {x.downloaded_bytes for x in seen[second:begun]} == {1_500_000}, [x.downloaded_bytes for x in seen]
    s = seen[ended - 1]
    assert s.downloaded_bytes == 1_700_000, [x.downloaded_bytes for x in seen]
    assert "downloading 1 (1.7 MB so far)" in line(s)
    assert _as_dict(s)["downloaded_bytes"] == 1_700_000
    console = Console(file=io.StringIO(), width=120, soft_wrap=True, record=True, color_system=None)
    console.print(Progress(console, total=1)._render(s))
    assert "downloading 1 (1.7 MB so far)" in console.export_text()


def test_a_runs_count_of_a_download_is_dropped_once_it_ends_saved_or_failed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Of two videos, one saved and one whose every try fails (left downloading for the next run): once each
    download has ended, the run keeps nothing of it (the bytes it counted as come aside): a run of many thousands of
    videos holds no more than those being fetched."""
    from execkit import quick_backoff, sim_provider, write_manifest

    from runner import api
    from runner.errors import DownloadError
    from runner.executor import Executor, RunOptions

    quick_backoff(monkeypatch)
    m = write_manifest(tmp_path, n_seeds=2, styles=("anime",), sim={"render_time": 0.1, "jitter": 0.0})
    prov = sim_provider(m)
    real_download = prov.download
    executors: list[Executor] = []
    real_statistics = Executor.statistics

    def statistics(self: Executor) -> RunStatistics:
        if not executors:
            executors.append(self)
        return real_statistics(self)

    async def download(client: Any, url: str, dest: Path, **kwargs: Any) -> Any:
        part = Path(f"{dest}.part")
        part.parent.mkdir(parents=True, exist_ok=True)
        if dest.name.startswith("seed-2"):
            part.write_bytes(b"\0" * 1000)
            raise DownloadError("cut short: the connection closed after 1,000 bytes")
        return await real_download(client, url, dest, **kwargs)

    monkeypatch.setattr(Executor, "statistics", statistics)
    prov.download = download
    result = api.run(m, provider=prov, options=RunOptions(retries=1), on_progress=lambda s: None, report=False)
    assert sorted(j.state for j in api.status(m).jobs) == ["done", "downloading"], result.stats.last_errors
    (ex,) = executors
    assert ex._fetch_high == {} and ex._fetching == {}, ex._fetch_high
    assert result.stats.downloaded_bytes is None


def test_before_any_job_ended_the_eta_counts_the_jobs_being_sent_as_holding_their_slots() -> None:
    """Two jobs being created on two slots, two more planned, 1 s renders: the planned ones wait for the slots the
    two being sent hold, two waves, about 2 s; counting the slots free said half that. Jobs only being sent or
    fetched still have an ETA."""
    from types import SimpleNamespace

    from runner.executor import Executor

    class Renders:
        def expected(self, job: Any) -> float:
            return 1.0

        def ends(self, sent: Any) -> list[float]:
            return [since + 1.0 for since, _ in sent]

    from runner.pacing import Pacer

    ex = Executor.__new__(Executor)
    ex._rendering, ex.renders, ex.concurrency = {}, Renders(), 2
    ex.plan = SimpleNamespace(jobs=[object()])
    ex.pacer = Pacer(lambda: 100.0)  # no pause asked
    assert ex._ends_in(100.0, 2, 2) == 2.0
    assert ex._ends_in(100.0, 0, 2) == 1.0
    assert ex._ends_in(100.0, 0, 0, 1) == 0.0
    assert ex._ends_in(100.0, 0) is None


def test_the_note_of_a_signal_is_shown_whole_on_an_80_column_terminal() -> None:
    """What the first Ctrl-C did and what to do next (the free way out for the jobs still queued comes last) is
    wrapped on the live display, not cut at the screen's width as the errors of a run going on are."""
    note = ("Ctrl-C again leaves the 6 jobs in flight to the next run; interrupted by Ctrl-C: finishing them, no new "
            "submissions (6 not yet seen rendering, paid only once they render: Ctrl-C again, then `gridrun "
            "cancel`, stops those still queued at no charge)")
    held = "waiting for .gridrun/state.db: another program holds it (a long write); the run goes on once it lets go"
    error = "style=anime,seed=1 and 5 more jobs: INTERNAL_ERROR: " + "the provider failed the render " * 4
    console = Console(file=io.StringIO(), width=80, record=True, force_terminal=True, color_system=None)
    with Progress(console, total=6) as p:
        p.update(stats(total=6, counts={"submitted": 6}, stopping="interrupt", last_errors=(held, error, note),
                       notes=(note,), held=held))
    frame = console.export_text().rsplit(" 0/6", 1)[1]  # the last frame, from the end of its bar
    assert all(len(row) <= 80 for row in frame.splitlines()), frame
    said = " ".join(frame.split())
    assert " ".join(note.split()) in said and held in said, frame


def test_a_run_stopped_marks_what_it_said_as_it_stopped_as_a_note(tmp_path: Path) -> None:
    """The note a run gives as it is interrupted (its `stop`, a signal) is among its last errors and marked a note
    (`RunStatistics.notes`), which the live display shows whole."""
    import threading

    from execkit import sim_provider, write_manifest

    from runner import api

    m = write_manifest(tmp_path, n_seeds=2, styles=("anime",), sim={"render_time": 1.0, "jitter": 0.0})
    stop = threading.Event()
    seen: list[RunStatistics] = []

    def progress(s: RunStatistics) -> None:
        seen.append(s)
        if s.counts.get("submitted") or s.counts.get("running"):
            stop.set()

    result = api.run(m, provider=sim_provider(m), on_progress=progress, stop=stop, report=False)
    assert result.exit_code == 130
    noted = [s for s in seen if s.notes]
    assert noted, [s.last_errors for s in seen]
    assert all(set(s.notes) <= set(s.last_errors) for s in noted)
    assert any("interrupted" in n and "no new submissions" in n for s in noted for n in s.notes), noted[-1]


def test_the_errors_a_run_ended_with_are_shown_whole_on_a_terminal() -> None:
    """While the live display redraws, a long error is cut to a line; its last frame, once the run has ended, gives
    each error whole, wrapped at the terminal's width, as the plain lines under a log's last line do."""
    error = ("style=clay,seed=3 and 6 more jobs: CONTENT_POLICY_VIOLATION: The prompt or the generated video was "
             "flagged by content moderation.")
    console = Console(file=io.StringIO(), width=60, record=True, force_terminal=True, color_system=None)
    with Progress(console, total=12) as p:
        p.update(stats(total=12, counts={"running": 7, "done": 5}, last_errors=(error,)))
        p.final(stats(total=12, counts={"failed": 7, "done": 5}, eta=None, last_errors=(error,)))
    frame = console.export_text().rsplit("12/12", 1)[1]  # the last frame, from the end of its bar
    assert all(len(row) <= 60 for row in frame.splitlines()), frame
    assert error in " ".join(frame.split()), frame


def test_a_signals_note_is_shown_at_once_however_soon_after_the_last_update(capsys: pytest.CaptureFixture[str]) -> None:
    """A SIGTERM's note comes just before the run leaves its jobs and ends, whose end does not list it: the update
    that first has it is drawn at once, not held back by the pace of updates, on JSON lines as on the live display."""
    note = "interrupted by SIGTERM: left the 4 paid jobs in flight to the next run; `gridrun run` collects them"
    with Progress(Console(file=io.StringIO()), json_lines=True, total=100, every=60.0) as p:
        p.update(stats())
        p.update(stats(requests=181))  # within the pace: not drawn
        p.update(stats(last_errors=("job a: boom", note), notes=(note,)))
        p.update(stats(last_errors=("job a: boom", note), notes=(note,), requests=182))  # the same note: not drawn
    events = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert [e["event"] for e in events] == ["progress", "progress"], events
    assert events[1]["last_errors"] == ["job a: boom", note] and events[1]["requests"] == 180
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=120, color_system=None)
    with Progress(console, total=100, every=60.0) as p:
        p.update(stats())
        p.update(stats(last_errors=(note,), notes=(note,)))
        assert "interrupted by SIGTERM" in out.getvalue()


@pytest.mark.parametrize("width", [30, 70, 120])
def test_an_ascii_terminal_s_display_fits_its_width_with_letters_written_as_escapes(width: int) -> None:
    """On a terminal whose output is ASCII (the C locale), `\u00e9` is written `\\xe9`, four cells, and "\u2026"
    "...": an error line is laid out on the text as written, no line of the frame longer than the terminal (a line
    the terminal wraps leaves a stale frame behind on every redraw)."""
    from runner.terminal import fit

    error = "job look=" + "\u00e9" * 30 + ": failed: the render failed [" + "\u00e9" * 40 + "]"
    s = stats(total=10, counts={"done": 2, "failed": 2, "running": 2, "planned": 4}, last_errors=(error, "job b: boom"),
              stopping="waiting for " + "\u00e9" * 40)
    stream = io.TextIOWrapper(io.BytesIO(), encoding="ascii", newline="\n")
    fit(stream)
    console = Console(file=stream, width=width, soft_wrap=True, color_system=None)
    console.print(Progress(console, total=10)._render(s))
    stream.flush()
    lines = stream.buffer.getvalue().decode("ascii").splitlines()
    assert max(len(x) for x in lines) <= width, lines
    errors = [x for x in lines if x.startswith("* ")]
    assert errors[0].startswith("* job look=\\xe9") and errors[0].endswith("..."), lines
    assert errors[1] == "* job b: boom", lines
    assert any(x.startswith("stopping: waiting for \\xe9") for x in lines), lines
