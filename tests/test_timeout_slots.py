"""Jobs left rendering at their `--timeout` keep their provider slots: a run never has more of its jobs rendering at
the provider than its concurrency, as the simulator counts them (`max_in_progress`)."""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest
from execkit import check_outputs, sim_provider, stats, write_manifest

from runner import api
from runner.executor import RunOptions


def run(manifest: Path, provider=None, **opts):
    provider = provider or sim_provider(manifest)
    result = api.run(manifest, provider=provider, options=RunOptions(**opts), report=False)
    return result, provider


@pytest.mark.parametrize("poll_interval", [None, 0.1], ids=["list", "one-by-one"])
def test_jobs_left_at_their_timeout_hold_their_slots_and_the_run_ends_with_the_rest_unsent(
    tmp_path: Path, poll_interval: float | None
) -> None:
    """Concurrency 2, renders far longer than the timeout: the 2 jobs left rendering hold both slots, so nothing
    more is sent (the provider would render them beside the 2, past what the account allows); the run does not
    wait for them either: it ends incomplete, the 4 others planned."""
    m = write_manifest(tmp_path, n_seeds=3, run={"concurrency": 2},
                       sim={"render_time": 30.0, "jitter": 0.0, "concurrency": 8})
    result, prov = run(m, timeout=0.3, poll_interval=poll_interval)
    s = stats(prov)
    assert s["max_in_progress"] == 2 and s["creates"] == 2, s
    c = result.stats.counts
    assert c["planned"] == 4 and c["submitted"] + c["running"] == 2, c
    assert result.status == "incomplete" and result.exit_code == 4
    assert result.slots_held == 2 and result.stats.stopping == "timeout"
    # the run's own concurrency is full, not the provider's (8 at once): said so
    assert result.stats.last_errors[0].startswith(
        "sent no new jobs: every slot of the run's concurrency (2) is held by jobs left unfinished at the provider at "
        "their timeout, and the run has no more than that there at once"), result.stats.last_errors
    assert api.status(m).run.status == "incomplete"


def test_a_job_left_at_its_timeout_that_ends_while_the_run_goes_on_frees_its_slot_and_is_downloaded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The first job renders past the timeout; the third job is held, before its create, until that render ended (so the run
    is still going then). The job left at its timeout is watched on, holding its slot: once the provider ended
    it, its video is downloaded (paid anyway), and the run ends done, every job sent once, never more than 2
    rendering; its end lines say so."""
    from runner import executor
    from runner.cli import main

    m = write_manifest(tmp_path, n_seeds=3, styles=("anime",), run={"concurrency": 2},
                       sim={"render_time": 1.0, "jitter": 0.0, "concurrency": 8})
    prov = sim_provider(m)
    sim = prov.app.state.sim
    submit = prov.submit
    creates = 0

    async def quick_after_first(client, body):
        status = await submit(client, body)
        sim.configure({"render_time": 0.05})  # the jobs after the first render within their timeout
        return status

    post = executor.Executor._post

    async def held_post(self, job, jid, key, **kw):
        # held before its create begins (a job's timeout counts from its create): the run is still going
        nonlocal creates
        creates += 1
        if creates == 3:
            while sim.stats()["completions"] < 2:  # the first job's long render and the second's have ended
                await anyio.sleep(0.05)
        return await post(self, job, jid, key, **kw)

    monkeypatch.setattr(prov, "submit", quick_after_first)
    monkeypatch.setattr(executor.Executor, "_post", held_post)
    monkeypatch.setattr(api, "_provider", lambda plan: prov)
    monkeypatch.setattr(executor, "LINGER_POLL", 0.2)  # asked for soon after its render ended
    assert main(["run", str(m), "--timeout", "0.4", "--no-report"]) == 0
    err = capsys.readouterr().err
    said = " ".join(err.split())
    s = stats(prov)
    assert s["creates"] == 3 and s["max_in_progress"] <= 2, s
    assert api.status(m).run.status == "done"
    assert len(check_outputs(m)) == 3 and [j.attempts for j in api.status(m).jobs] == [1, 1, 1]
    assert not api.status_json(api.status(m))["problems"]
    assert ("1 job left rendering at its timeout finished at the provider while the run went on: its video "
            "downloaded at no new cost (paid anyway)") in said, said
    lines = err.splitlines()
    last = max(i for i, x in enumerate(lines) if x.startswith("done 3 |"))  # said as it came; not what the run ended with
    assert "left running" not in "\n".join(lines[last:]), err  # downloaded: no longer among the run's last errors


def test_the_run_says_its_timeout_left_jobs_holding_every_slot_and_what_was_not_sent(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from runner.cli import main

    m = write_manifest(tmp_path, n_seeds=3, run={"concurrency": 2},
                       sim={"render_time": 30.0, "jitter": 0.0, "concurrency": 8})
    assert main(["run", str(m), "--timeout", "0.3", "--no-report"]) == 4
    said = " ".join(capsys.readouterr().err.split())
    assert ("incomplete: `--timeout` (0.3 s a job) left 2 jobs rendering at the provider holding every slot "
            "(run concurrency 2), so 4 jobs were not sent: `gridrun run` sends the 4 jobs not sent ($1.40) and "
            "collects the 2 jobs left in flight at no new cost (their $0.70 counts against its budget); `gridrun "
            "cancel` cancels the 2 jobs in flight "
            "there") in said, said
    assert "failed" not in said, said


def test_the_slots_held_end_line_counts_for_cancel_only_the_jobs_the_provider_answered(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The first create is never answered by its timeout: that job is left `submitting` (no provider id, so `gridrun
    cancel` cannot cancel it) beside the 2 jobs left rendering that hold both slots. The end line counts for
    `gridrun cancel` only the 2 jobs it can cancel, as the run's other incomplete end does."""
    from runner.cli import main

    m = write_manifest(tmp_path, n_seeds=2, styles=("anime", "clay"), run={"concurrency": 2},
                       sim={"render_time": 30.0, "jitter": 0.0, "concurrency": 8,
                            "script": [{"route": "create", "nth": 1, "fault": "held"}]})
    # a job's timeout of 1 s: each create is sent well within it, however loaded the machine (renders take 30 s)
    assert main(["run", str(m), "--timeout", "1", "--no-report"]) == 4
    said = " ".join(capsys.readouterr().err.split())
    states = sorted(j.state.replace("submitted", "running") for j in api.status(m).jobs)
    assert states == ["planned", "running", "running", "submitting"], states
    assert "so 1 job was not sent:" in said, said
    assert said.endswith("; `gridrun cancel` cancels the 2 jobs in flight there"), said


def test_jobs_an_earlier_run_left_rendering_take_their_slots_before_a_new_job_is_sent(tmp_path: Path) -> None:
    """A run detached with 4 jobs rendering; the next, at concurrency 1, re-attaches them: they are at the provider
    already, so they hold the slots (4, past its concurrency), and the fifth job is sent only once they are fewer
    than 1: never 5 rendering at once."""
    import threading

    from execkit import in_flight, wait_for

    m = write_manifest(tmp_path, n_seeds=5, styles=("anime",), run={"concurrency": 4},
                       sim={"render_time": 3.0, "jitter": 0.0, "concurrency": 8})
    prov = sim_provider(m)
    detach = threading.Event()

    def detach_once_four_render() -> None:
        wait_for(lambda: in_flight(m) >= 4)
        detach.set()

    pressing = threading.Thread(target=detach_once_four_render, daemon=True)
    pressing.start()
    first = api.run(m, provider=prov, report=False, detach=detach)
    pressing.join()
    assert first.status == "interrupted" and stats(prov)["creates"] == 4, first.stats.counts
    second = api.run(m, provider=prov, report=False, options=RunOptions(concurrency=1))
    s = stats(prov)
    assert second.status == "done" and s["creates"] == 5 and s["duplicate_paid"] == 0, s
    assert s["max_in_progress"] == 4, s
    assert len(check_outputs(m)) == 5


def test_jobs_let_go_as_the_run_ends_get_a_last_look_and_a_finished_one_is_no_longer_said_left(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first job renders past its timeout and is left, holding its slot, asked for again only a minute later;
    the second is held before its create until that render ended, then renders at once. When only the job left
    is going, the run lets it go after one last look: its video, finished by then, is downloaded, the run ends
    done, and the last errors no longer say it was left running."""
    from runner import executor

    m = write_manifest(tmp_path, n_seeds=2, styles=("anime",), run={"concurrency": 2},
                       sim={"render_time": 1.0, "jitter": 0.0, "concurrency": 8})
    prov = sim_provider(m)
    sim = prov.app.state.sim
    post = executor.Executor._post
    creates = 0

    async def held_post(self, job, jid, key, **kw):
        nonlocal creates
        creates += 1
        if creates == 2:
            while sim.stats()["completions"] < 1:  # the first job's render has ended, unseen by the run
                await anyio.sleep(0.05)
            sim.configure({"render_time": 0.05})
        return await post(self, job, jid, key, **kw)

    monkeypatch.setattr(executor.Executor, "_post", held_post)
    monkeypatch.setattr(executor, "LINGER_POLL", 60.0)  # no poll of the job left before the run ends
    result, _ = run(m, prov, timeout=0.4, poll_interval=0.1)
    s = stats(prov)
    assert result.status == "done" and result.exit_code == 0, (result.status, result.stats.counts)
    assert s["creates"] == 2 and len(check_outputs(m)) == 2 and result.late == 1, s
    assert not any("left running" in e for e in result.stats.last_errors), result.stats.last_errors


def test_the_slots_held_end_line_counts_the_jobs_left_not_the_slots(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A run leaves 4 jobs rendering at its timeout; the next, at concurrency 1, re-attaches them (past its
    concurrency: they are at the provider) and leaves them again. Its end line counts the 4 jobs it left and names
    the run's concurrency, 1: the slot count is not the number of jobs left."""
    from runner.cli import main

    m = write_manifest(tmp_path, n_seeds=5, styles=("anime",), run={"concurrency": 4},
                       sim={"render_time": 60.0, "jitter": 0.0, "concurrency": 8})
    prov = sim_provider(m)
    monkeypatch.setattr(api, "_provider", lambda plan: prov)
    assert main(["run", str(m), "--timeout", "0.3", "--no-report"]) == 4
    capsys.readouterr()
    assert main(["run", str(m), "--timeout", "0.3", "--concurrency", "1", "--no-report"]) == 4
    said = " ".join(capsys.readouterr().err.split())
    assert stats(prov)["creates"] == 4
    assert ("left 4 jobs rendering at the provider holding every slot (run concurrency 1), so 1 job was not "
            "sent") in said, said
    assert sorted(j.state for j in api.status(m).jobs).count("planned") == 1


def test_a_job_left_at_its_timeout_that_cancel_finds_finished_is_no_longer_said_left_running(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The run leaves both jobs rendering at its timeout, noting why; their renders end before `gridrun cancel`,
    which records them rendered, to download. `status` no longer says they were left running: that is over."""
    from execkit import wait_for

    from runner.cli import main

    m = write_manifest(tmp_path, n_seeds=1, run={"concurrency": 2},
                       sim={"render_time": 1.0, "jitter": 0.0, "concurrency": 8})
    prov = sim_provider(m)
    monkeypatch.setattr(api, "_provider", lambda plan: prov)
    assert main(["run", str(m), "--timeout", "0.2", "--no-report"]) == 4
    assert all("left running" in (j.error or "") for j in api.status(m).jobs)
    wait_for(lambda: stats(prov)["completions"] == 2)
    result = api.cancel(m)
    assert len(result.finished) == 2 and not result.cancelled, result
    jobs = api.status(m).jobs
    assert [j.state for j in jobs] == ["downloading", "downloading"] and [j.error for j in jobs] == [None, None]
    capsys.readouterr()
    assert main(["status", str(m)]) == 0
    assert "left running" not in capsys.readouterr().out


def test_a_cancel_interrupted_after_its_first_request_says_what_a_cancel_again_does(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Ctrl-C lands just after the provider took a cancel request: the job is cancelled there, not yet recorded.
    The command says so, and `gridrun cancel` again records it (and cancels the other)."""
    from runner.cli import main

    m = write_manifest(tmp_path, n_seeds=1, run={"concurrency": 2},
                       sim={"render_time": 30.0, "jitter": 0.0, "concurrency": 8})
    prov = sim_provider(m)
    monkeypatch.setattr(api, "_provider", lambda plan: prov)
    assert main(["run", str(m), "--timeout", "0.2", "--no-report"]) == 4
    cancel = prov.cancel

    async def interrupted_after(client, pid):
        await cancel(client, pid)
        raise KeyboardInterrupt

    monkeypatch.setattr(prov, "cancel", interrupted_after)
    capsys.readouterr()
    assert main(["cancel", str(m)]) == 130
    said = " ".join(capsys.readouterr().err.split())
    # asyncio's loop ends at the task's KeyboardInterrupt; uvloop's at the end of that turn of the loop, in which the
    # other job's request may have gone too: the command counts those sent
    sent = stats(prov)["cancelled"]
    if sent == 1:
        assert ("interrupted: the 1 cancel request sent (recorded as asked before it was sent) has no outcome "
                f"recorded here: it may have stopped its job at the provider; `gridrun cancel {m}` again records what "
                "it did and cancels the rest") in said, said
    else:
        assert sent == 2, sent
        assert ("interrupted: the 2 cancel requests sent (each recorded as asked before it was sent) have no outcome "
                "recorded here: they may have stopped their jobs at the provider; "
                f"`gridrun cancel {m}` again records what they did and cancels the rest") in said, said
    assert api.status(m).counts.get("cancelled", 0) == 0
    monkeypatch.setattr(prov, "cancel", cancel)
    assert main(["cancel", str(m)]) == 0
    assert stats(prov)["cancelled"] == 2 and api.status(m).counts["cancelled"] == 2
