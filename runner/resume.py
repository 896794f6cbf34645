"""What a run does with each job of its plan, given what the state holds, decided before anything is sent.

A job not in the state is submitted. A job found there is, by its state and the run's options:

    planned                          submit
    submitting (unknown with retry)  reconcile: find out whether its create reached the provider
    submitted, running, downloading  attach: follow it (a video downloading is already paid)
    done                             check: cached when its video is whole (its sidecar written again from
                                     the state when missing or garbled), else fetched again at no cost, a
                                     file altered in its place first kept under .runs/superseded/
                                     (re-run with --force)
    expired                          fetch: ask for a fresh URL (re-run with --force); one whose video the
                                     provider no longer has (`gone_at_provider`): leave. With retry, fetch
                                     first all the same, and send again (paid) only if the provider gives no
                                     fresh URL; one gone, or given no fresh URL when last asked
                                     (`no_fresh_url`): reset
    failed, rejected, cancelled      leave (re-run with retry or --force)
    unknown                          lookup: found by its key in the provider's request log (free), it is
                                     followed; proven never received, sent; else left (reconcile with
                                     retry --unknown, which may send it again)

Refused before the run is recorded (`judge`): jobs to send and to follow that pass the budget (`BudgetError`),
jobs the manifest's last run left in flight that this plan no longer has, and jobs in flight (or of unknown outcome)
sent to another endpoint than the plan's, which only a run there can collect (`InFlightError`); between `judge`
and `prepare` the executor weighs the account's balance against the jobs to send (`runner.balance`). Settled jobs to
re-run are made plannable one by one, as the executor sends each (`resets`): a run that stops before sending
one leaves it as it was. A run killed between the two leaves such a job planned, and the next run puts it
back as it was; but a failure retry (run.failure_retries) of a job the next run has and allows one more of
is that run's to send, unless its failure would repeat (`repeats`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import functools
import json
import math
import os
import shlex
import sqlite3
import stat
import sys
import time
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

from .datafiles import value_position
from .errors import BudgetError, GridrunError, InFlightError, StateError
from .jobs import Billing, fitting, param_strings, scaled, usd_text
from .limits import sticky_said
from .localpaths import not_recordable, within
from .manifest import Manifest, Warned
from .options import RunOptions, error_code, repeating_fix
from .outputs import (
    PART_RECORD_SUFFIX,
    atomic_copy,
    atomic_write,
    copy_output,
    files_beside,
    for_job,
    gridrun_sidecar,
    holds_take,
    keep_file,
    manifest_kept_path,
    names_another_job,
    own_temp,
    sidecar_path,
    sidecar_writer,
    superseded_dir,
    sync_folder,
    take_path,
    verified,
    write_problem,
)
from .plan import (
    ELSEWHERE,
    FORCED,
    IN_FLIGHT,
    Job,
    Plan,
    endpoint_named,
    endpoint_now,
    file_sha256,
    folder_error,
    made_elsewhere,
    outputs_dir_named,
    outputs_field,
    point_back,
    refuse_own_links,
    sent_anew,
    sent_elsewhere,
    sent_with_another_key,
    state_dir_of,
)
from .records import (
    PID_CLOCK_SLACK,
    SIMULATOR_ELSEWHERE,
    RunRecord,
    local_time,
    process_start,
    process_state,
)
from .state import (
    FAILURE_RETRY,
    JobState,
    Store,
    gone_at_provider,
    no_fresh_url,
    not_writable_said,
    outputs_writer,
    real_state_file,
)
from .terminal import typed

S = JobState

# The event a run records as it starts with the done jobs it is to render again (--force, a placeholder made
# elsewhere): `{"jobs": [job ids]}`. Each is reset only as it is sent; until then, its page says it is to be.
RERENDERS_QUEUED = "rerenders-queued"
# a job in flight sent with another API key, asked about with the key now as one of the same account (--same-account)
SAME_ACCOUNT = "same-account"
# Why a run sends a done job again whose video a simulator made at another endpoint (a reset's reason):
# `records.SIMULATOR_ELSEWHERE`, imported above.


@dataclass(slots=True)
class Sorted:
    """A recorded run's jobs, sorted by what it does with them."""

    run_id: int
    ids: dict[str, int]                  # job hash -> job id
    jobs_by_id: dict[int, Job]           # job id -> the plan's job
    states: dict[int, JobState]          # job id -> its state as the run begins
    submit: list[Job] = field(default_factory=list)
    reconcile: list[Job] = field(default_factory=list)
    attach: list[Job] = field(default_factory=list)
    prepaid: set[int] = field(default_factory=set)    # only to download: rendered and billed by an earlier run
    resets: dict[int, str] = field(default_factory=dict)  # settled jobs to re-run -> why ("retry", "--force")
    # expired jobs a retry asks a fresh URL for first, at no cost: sent again (paid) only if the provider gives none
    fetch_first: set[int] = field(default_factory=set)
    cached: int = 0
    altered_kept: list[Path] = field(default_factory=list)  # done videos altered in place, kept before fetched again
    restored: list[Restored] = field(default_factory=list)  # done videos missing or altered, put back from a copy
    foreign_kept: list[Path] = field(default_factory=list)  # files no sidecar records in a video's place, kept first
    unrecorded_kept: list[Path] = field(default_factory=list)  # takes of other states' in a video's place, kept first
    problems: list[str] = field(default_factory=list)  # files of the run's own it could not write (it goes on)
    unwritable: str | None = None  # why the output folder took no file (full, read-only): no new job is sent
    not_copied: list[int] = field(default_factory=list)  # done jobs whose video could not be copied to its new path
    not_copied_why: str | None = None  # why the first of them was not
    elsewhere: frozenset[str] = frozenset()  # hashes of the done jobs a simulator made at another endpoint (`Judged`)
    force_only: frozenset[str] | None = None  # the done jobs --force --resume renders again (`Judged`)


def action(state: JobState, opts: RunOptions, *, elsewhere: bool = False, gone: bool = False,
           no_url: bool = False) -> str:
    """What a run with `opts` does with a job found in `state` (see the module's table): submit, reset (then
    submit), reconcile, attach, check, fetch, or leave. `elsewhere`: its video, if done, a simulator made at
    another endpoint (`plan.made_elsewhere`), which the run renders again as --force does. `gone`: expired, its
    video no longer at the provider (`gone_at_provider`): no fresh URL to ask for, so only a retry sends it.
    `no_url`: expired, and the provider gave no fresh URL for it when last asked (`no_fresh_url`): a retry sends
    it again at once. Any other expired job a retry fetches first, as a plain run does: its video is paid for, and
    a fresh URL costs nothing; only when none is given does the run send it again (`Executor`)."""
    again = opts.retry_failed or opts.force
    if state == S.EXPIRED and opts.retry_failed and not opts.force and not (gone or no_url):
        return "fetch"
    if state == S.DONE:
        return "reset" if opts.force or elsewhere else "check"
    if state == S.PLANNED:
        return "submit"
    if state == S.SUBMITTING or state == S.UNKNOWN and opts.retry_unknown:
        return "reconcile"
    if state == S.UNKNOWN:
        return "lookup"  # by its key, in the provider's request log (free): found, it is followed
    if state in (S.SUBMITTED, S.RUNNING, S.DOWNLOADING):
        return "attach"
    if state == S.EXPIRED and not again:
        return "leave" if gone else "fetch"
    if state in (S.FAILED, S.REJECTED, S.EXPIRED, S.CANCELLED) and again:
        return "reset"
    return "leave"


def is_failure_retry(reason: str | None) -> bool:
    """A reset a run made on its own after a failed render (run.failure_retries)."""
    return bool(reason) and str(reason).startswith(FAILURE_RETRY)


def repeats(reason: str | None) -> bool:
    """A failure retry's `reason` names a failure the same request meets again when sent again (content
    moderation, an invalid request: `options.repeating_fix`), on which no run spends a paid attempt. An earlier
    gridrun decided such retries too: one it left unsent is not made."""
    return repeating_fix(error_code(reason)) is not None


@dataclass(frozen=True, slots=True)
class Judged:
    """What a run does with each job of its plan (`judge`), decided before it is recorded."""

    actions: dict[str, str]  # job hash -> `action`
    submit: list[Job]        # the jobs it sends: new ones, and settled ones re-run (retry, --force)
    in_flight: list[Job]     # those an earlier run sent and left unrendered, which it follows and pays for
    elsewhere: frozenset[str] = frozenset()  # hashes of the done jobs a simulator made at another endpoint
    # with --force --resume, the hashes of the done jobs the last --force run left unsent (`Store.force_unsent`),
    # the only ones it renders again; None: --force renders every job again, a plain run none
    force_only: frozenset[str] | None = None
    # what an earlier run's completed renders were billed against their estimates, where clearly above them
    # (`Billing.clear`): the budget counts the jobs at that ratio, from the check before the run starts on
    billing: Billing | None = None
    # with retry --unknown, the jobs of unknown outcome it sends again where a lookup by key does not find them (a
    # new paid create, which may pay twice): weighed as jobs to send by the budget and the balance, not as in flight
    resend: list[Job] = field(default_factory=list)
    # with --same-account, the jobs in flight sent with another API key that the run asks about with the key now
    # (`key_away`), each recorded by `prepare` as an event (`SAME_ACCOUNT`); None: none
    same_account: KeyAway | None = None


def judge(
    plan: Plan, store: Store, opts: RunOptions, *, budget_micros: int | None, failure_retries: int = 0,
) -> Judged:
    """Put back the resets a killed run left, decide what the run does with each job, and check what the last
    run left in flight and the budget. Records no run. `failure_retries`: the run's new attempts per job after a
    failed render.

    :raises BudgetError, InFlightError: the run is refused.
    """
    # Jobs reset by a run killed before it began their new attempts: back as they were (done, with their
    # videos), whether this plan has them or not, before this run judges them or writes over their files.
    # But for a failure retry of this plan's that this run allows too: that run's decision stands, and this
    # run sends it. One it does not send, of a failed re-render of a done job, leaves that job done as it was.
    pending = store.pending_resets()
    if pending:
        hashes = {j.hash for j in plan.jobs}
        made = store.failure_retries_made(pending)
        for jid in pending:
            reason = store.last_reset_reason(jid)
            if (failure_retries and not opts.fail_fast and store.job_row(jid)["hash"] in hashes
                    and is_failure_retry(reason) and made.get(jid, 0) <= failure_retries
                    and not repeats(reason)):
                continue  # this run's to send
            if store.undo_reset(jid) == S.FAILED:
                retry_not_sent(store, jid, S.FAILED)
    return decide(plan, store, opts, budget_micros=budget_micros)


def decide(plan: Plan, store: Store, opts: RunOptions, *, budget_micros: int | None) -> Judged:
    """What the run does with each job of a state with no reset left pending (`judge`, which puts those back
    first), what the last run left in flight and the budget checked; reads only.

    :raises BudgetError, InFlightError: the run is refused.
    """
    found = store.jobs_by_hash([j.hash for j in plan.jobs])
    states = {j.hash: JobState(found[j.hash]["state"]) if j.hash in found else S.PLANNED for j in plan.jobs}
    elsewhere = frozenset(h for h, at in store.simulator_takes(list(found)).items()
                          if made_elsewhere(at, plan.endpoint[0]))
    only = store.force_unsent(plan.manifest.name)[1] if opts.force and opts.force_resume else None
    plain = dataclasses.replace(opts, force=False, force_resume=False)
    # a retry given a selection (`retry --key/--code`): the jobs it does not pick are as a plain run has them
    keys = {j.hash: j.key for j in plan.jobs}
    unpicked = dataclasses.replace(opts, retry_failed=False, retry_unknown=False, only_keys=(), only_codes=())

    def picked(h: str) -> RunOptions:
        return opts if opts.picks(keys[h], found[h]["error"] if h in found else None) else unpicked

    # a done job whose input image was moved away since (`Plan.images_gone`) has nothing to be sent with: kept
    actions = {h: action(state, picked(h) if (only is None or h in only) and h not in plan.images_gone else plain,
                         elsewhere=h in elsewhere,
                         gone=h in found and gone_at_provider(found[h]["state"], found[h]["error"]),
                         no_url=h in found and no_fresh_url(found[h]["state"], found[h]["error"]))
               for h, state in states.items()}
    # In flight (or of unknown outcome) at a simulator at another endpoint: nothing paid, and that simulator may be
    # gone; its attempt is left behind and the job sent anew here, as a simulator's done take is rendered again.
    actions.update(dict.fromkeys(simulator_away(plan, store), "anew"))
    away = sent_away(plan, store, retry_unknown=opts.retry_unknown, actions=actions)
    keyed = key_away(plan, store, retry_unknown=opts.retry_unknown, actions=actions,
                     skip=away.hashes if away is not None else ())
    # Said to be of the same account as the key now (a key rotated, the old one revoked): asked about with this
    # key, a job the account does not know answered 404 like any other (unknown, never sent again but by
    # retry --unknown).
    same = keyed if opts.same_account else None
    if same is not None:
        keyed = None
    if not opts.leave_in_flight:
        check_left_behind(plan, store)
        if away is not None:
            raise InFlightError(away.message())
        if keyed is not None:
            raise InFlightError(keyed.message())
    else:  # left as they are, for a run against the endpoint (with the key) they were sent to
        if away is not None:
            actions.update(dict.fromkeys(away.hashes, "leave"))
        if keyed is not None:
            actions.update(dict.fromkeys(keyed.hashes, "leave"))
    submit = [j for j in plan.jobs if actions[j.hash] in ("submit", "reset", "anew")]
    # a job downloading was rendered, so billed, by the run that sent it
    in_flight = [j for j in plan.jobs if actions[j.hash] in ("reconcile", "attach") and states[j.hash] != S.DOWNLOADING]
    # found of unknown outcome by a run that left it in flight: what it costs is still the sending run's
    sender = store.booked_to_sender([j.hash for j in in_flight if actions[j.hash] == "attach"])
    in_flight = [j for j in in_flight if j.hash not in sender]
    # retry --unknown sends its jobs of unknown outcome again (a new create, paid) unless a lookup finds them: to
    # the budget and the balance they are jobs to send, not jobs in flight the run only follows
    resend = [j for j in in_flight if actions[j.hash] == "reconcile" and states[j.hash] == S.UNKNOWN]
    if resend:
        again = {j.hash for j in resend}
        in_flight = [j for j in in_flight if j.hash not in again]
    billing = budget_billing(plan, store) if budget_micros is not None else None
    check_budget(submit, in_flight, budget_micros=budget_micros, allow_partial=opts.allow_partial, billing=billing,
                 resend=resend)
    check_replaceable([j for j in submit if actions[j.hash] == "reset" and states[j.hash] == S.DONE])
    return Judged(actions, submit, in_flight, elsewhere, only, billing, resend, same)


def budget_billing(plan: Plan, store: Store) -> Billing | None:
    """What the budget of a run of `plan` counts its jobs at before it starts: the highest ratio of bills to
    estimates among the completed renders of the latest run's jobs that the plan has, made at its endpoint
    (`Store.billing`: a simulator's made-up figures never count for a provider's plan), where it is clearly above
    1x (`Billing.clear`); None otherwise, and the estimates count as they are."""
    found = store.billing(plan.manifest.name, {j.hash: j.cost_micros for j in plan.jobs}, endpoint=plan.endpoint[0])
    return found if found is not None and found.clear() else None


def check_replaceable(again: Sequence[Job]) -> None:
    """Refuse a run whose done jobs to render again (`again`: --force, a changed request) have videos this user
    may not replace, another user's in a folder with the sticky bit (a team's drop folder, `chmod 1777`): each
    re-render would be paid for and then not saved. Before anything is recorded or sent.

    :raises StateError: one is.
    """
    held = [(job, said) for job in again if (said := sticky_said(job.output)) is not None]
    if not held:
        return
    job, said = held[0]
    more = f" (and {len(held) - 1:,} more)" if len(held) > 1 else ""
    raise StateError(f"job {job.key!r} is to be rendered again, but {job.output}: {said}{more}: the render would "
                     "be paid for and not saved. Nothing was recorded or sent: run gridrun as the videos' owner, or "
                     "give the manifest an output folder of your own (`outputs_dir:`)")


def prepare(
    plan: Plan, store: Store, opts: RunOptions, *, budget_micros: int | None, argv: Sequence[str] = (),
    failure_retries: int = 0, judged: Judged | None = None,
) -> Sorted:
    """Judge the jobs (`judge`, unless `judged` is its answer already), then record the run and its jobs and sort
    them. A run refused here records nothing and moves nothing.

    :raises BudgetError, InFlightError: the run is refused.
    """
    if judged is None:
        judged = judge(plan, store, opts, budget_micros=budget_micros, failure_retries=failure_retries)
    actions = judged.actions
    m = plan.manifest
    manifest_text = _manifest_text(m)
    # The output folder first: one that cannot be made (a file in the way, no permission) stops the run
    # before it is recorded.
    try:
        (plan.outputs_dir / ".runs").mkdir(parents=True, exist_ok=True)
    except OSError as exc:  # a place the plan could not rule out (/proc, a read-only mount as root)
        raise folder_error(m, plan.outputs_dir, exc) from None
    refuse_own_links(m, plan.outputs_dir)
    # Where the jobs saved their videos until now, before this run records where the plan puts them.
    was = store.output_paths([j.hash for j in plan.jobs])
    started = time.time()
    try:
        run_id = store.start_run(
            manifest_name=m.name, manifest_path=str(m.path), manifest_copy=manifest_text,
            outputs_dir=str(plan.outputs_dir), provider=plan.provider, model=plan.model,
            axes=plan.axes, budget_micros=budget_micros, argv=argv, jobs=[j.record(plan.image_digests) for j in plan.jobs],
            key_print=plan.key_print[0] if plan.key_print is not None else None,
        )
        if judged.same_account is not None:
            record_same_account(store, run_id, judged.same_account)
        out = _sort(plan, store, opts, run_id, manifest_text, actions, judged.elsewhere)
        out.elsewhere = judged.elsewhere
        out.force_only = judged.force_only
        _drop_stale_parts(plan, store, run_id, was, started)
        return out
    except BaseException as exc:
        # The run's record, once made (`store.run_id`; a Ctrl-C may land between its commit and the line after),
        # says how it ended.
        if store.run_id is not None:
            with contextlib.suppress(Exception):
                store.end_run(store.run_id, "interrupted" if isinstance(exc, KeyboardInterrupt) else "crashed")
        raise


def _sort(plan: Plan, store: Store, opts: RunOptions, run_id: int, manifest_text: str, actions: dict[str, str],
          elsewhere: frozenset[str] = frozenset()) -> Sorted:
    """The part of `prepare` after the run and its jobs are recorded: sort them by `actions`; `elsewhere`, the
    hashes of the done jobs whose take a simulator made at another endpoint (`Judged.elsewhere`)."""
    ids = store.job_ids
    out = Sorted(run_id=run_id, ids=ids, jobs_by_id={}, states={})
    try:
        kept = _write_manifest_copy(plan, run_id, manifest_text)
        if kept is not None:
            out.problems.append(f"{kept[0]} held another manifest's copy (another state's run {run_id} wrote this "
                                f"folder, or a state begun again): kept as {kept[1]}")
    except OSError as exc:  # a full disk: the state keeps the manifest too, and the jobs' work is still to do
        if exc.errno in _UNWRITABLE:  # nor would the videos be saved: the run sends none (`Executor.prepare`)
            out.unwritable = write_problem(exc, folder=plan.outputs_dir / ".runs")
        else:
            out.problems.append(copy_not_written(write_problem(exc, folder=plan.outputs_dir / ".runs")))
    _put_aside(plan, store)
    rows = store.jobs_by_hash([j.hash for j in plan.jobs])
    rerender: list[int] = []  # the done jobs the run is to render again (--force), each reset only as it is sent
    away_at = simulator_away(plan, store) if "anew" in actions.values() else {}
    left = Left(store, plan.manifest.name, before=run_id)
    for job in plan.jobs:
        jid = ids[job.hash]
        out.jobs_by_id[jid] = job
        row = rows[job.hash]
        state = JobState(row["state"])
        what = actions[job.hash]
        if what == "check":
            try:
                cached = check_done(store, run_id, job, jid, row, superseded=superseded_dir(plan.outputs_dir),
                                    kept=out.altered_kept, foreign=out.foreign_kept, unrecorded=out.unrecorded_kept,
                                    left=left, restored=out.restored)
            except OSError as exc:  # its video, whole where it was, not copied to its new path (a full disk)
                if exc.errno not in _UNWRITABLE:
                    raise
                # left done where it is, for a run with room to copy; the run sends nothing (`Executor.prepare`)
                why = write_problem(exc, folder=job.output.parent)
                out.unwritable = out.unwritable or why
                out.not_copied_why = out.not_copied_why or why
                out.not_copied.append(jid)
                store.event(run_id, jid, "not-copied", {"path": str(job.output), "why": why})
                out.states[jid] = state
                continue
            if cached:
                out.cached += 1
            else:
                state = S.DOWNLOADING
                out.prepaid.add(jid)
                out.attach.append(job)
        elif what == "fetch":
            # Paid, its URL gone: the provider may give a fresh one (retry sends it again only if it gives none).
            if opts.retry_failed and state == S.EXPIRED and opts.picks(job.key, row["error"]):
                out.fetch_first.add(jid)
            store.transition(jid, S.DOWNLOADING, error="URL expired; asking for a fresh one")
            state = S.DOWNLOADING
            out.prepaid.add(jid)
            out.attach.append(job)
        elif what == "reset":
            # a simulator's placeholder made at another endpoint is rendered as that, --force or not: its take is
            # no video of this provider's, which a failed render must not leave done
            out.resets[jid] = ("retry" if opts.retry_failed and state != S.DONE else SIMULATOR_ELSEWHERE
                               if state == S.DONE and job.hash in elsewhere else "--force" if opts.force
                               or state != S.DONE else SIMULATOR_ELSEWHERE)
            if state == S.DONE:
                rerender.append(jid)
            state = S.PLANNED
            out.submit.append(job)
        elif what == "submit":
            out.submit.append(job)
        elif what == "anew":
            store.leave_simulator_attempt(jid, sent_anew(away_at[job.hash]), run_id=run_id)
            state = S.PLANNED
            out.submit.append(job)
        elif what in ("reconcile", "lookup"):
            out.reconcile.append(job)
        elif what == "attach":
            if state == S.DOWNLOADING:
                out.prepaid.add(jid)  # rendered, so billed, by the run that sent it
            out.attach.append(job)
        out.states[jid] = state
    if rerender:  # what a page of the run says of them until they are sent, and of those a stop left unsent
        store.event(run_id, None, RERENDERS_QUEUED, {"jobs": rerender, "force": opts.force})
    return out


def _drop_stale_parts(plan: Plan, store: Store, run_id: int, was: Mapping[str, str], started: float) -> None:
    """Remove the `.part` file a stopped run's download left beside a job's former output path (`was`, by hash),
    and its record, where the plan now puts the job elsewhere: no download of gridrun's writes there any more, and a cut video of
    a gigabyte would stay for good, named nowhere. Only a regular file not written since this run began (no other
    process streams into it). Each removal is an event (`part-removed`, its path and size)."""
    for job in plan.jobs:
        old = was.get(job.hash)
        if not old or old == str(job.output):
            continue
        part = files_beside(old)[0]
        try:
            st = os.lstat(part)
        except OSError:
            continue
        if not stat.S_ISREG(st.st_mode) or st.st_mtime >= started:
            continue
        with contextlib.suppress(OSError):  # its record first (`PartialDownload.record`): none names a `.part` gone
            os.unlink(part + PART_RECORD_SUFFIX)
        try:
            os.unlink(part)
        except OSError:
            continue
        store.event(run_id, store.job_ids.get(job.hash), "part-removed", {"path": part, "size": st.st_size})


def retry_not_sent(
    store: Store, jid: int, state: JobState, *, run_id: int | None = None, whole: bool | None = None,
) -> JobState:
    """The job's state once its failure retry (run.failure_retries) never reached the provider and the store put it
    back (`state`: its reset undone, or its attempt voided; by this run, `run_id`, or one killed before it sent
    it): failed, a re-render of a done job (--force) whose earlier video is still whole at its path is done as it
    was (`Store.retry_unsent`), as the run that saw it fail leaves one not retried. `whole`: `earlier_whole`'s
    answer where the caller found it (a run hashes off its event loop), else found here."""
    if state != S.FAILED:
        return state
    if whole is None:
        whole = earlier_whole(store, jid)
    return store.retry_unsent(jid, run_id=run_id) if whole else state


def earlier_whole(store: Store, jid: int) -> bool:
    """The job's attempt re-renders a done job (--force) whose earlier video is whole at its path (`whole`)."""
    earlier = store.rerendered(jid)
    return earlier is not None and whole(Path(earlier[0]), earlier[1])


def whole(path: Path, sha256: str) -> bool:
    """The video is at `path` with the digest `sha256`; one that cannot be read (an OSError) is not whole."""
    try:
        return verified(path, sha256)
    except OSError:
        return False


def check_done(store: Store, run_id: int, job: Job, jid: int, row: Any, *, superseded: Path, kept: list[Path],
               foreign: list[Path], unrecorded: list[Path], left: Left | None = None,
               restored: list[Restored] | None = None) -> bool:
    """A done job: True when its video is whole (cached; copied where this plan wants it), or when that very take
    is whole where the state knows an earlier run left or kept it (`kept_copy`: put back, event video-restored),
    else moved to downloading, to be fetched again at no cost. A file at its place that is not that video (edited or
    replaced by the user) is first kept under `superseded` (event altered-kept), its path added to `kept`:
    the download would replace it. So is a file that no sidecar of gridrun's records where the copy goes
    (event foreign-kept), its path added to `foreign`, and a take of gridrun's there whose render this state
    has no record of (event unrecorded-kept), its path added to `unrecorded`. `left`: where the manifest's
    previous run left its jobs' videos, where its own take of a job the plan puts elsewhere now is looked for.
    `restored`: where a video put back from its copy is added (`Restored`), so that the run says it was restored,
    not fetched."""
    own = own_take(store, job, jid, row, left=left)
    if own is not None:  # an earlier take of its own, whole: cached as it is (copied first from where its last
        take, at = own  # run left it, when this plan puts the job elsewhere now)
        if at != job.output:
            _copy_here(store, run_id, jid, job, at, superseded=superseded, foreign=foreign, unrecorded=unrecorded)
        store.take_back(run_id, jid, take, job.output)
        row = store.job_row(jid)
    elif (at := done_video(job, row)) is not None:
        if at != job.output:  # whole where its record names, not where this plan wants it: copied there
            _copy_here(store, run_id, jid, job, at, superseded=superseded, foreign=foreign, unrecorded=unrecorded)
            store.set_output(jid, job.output)
        elif Path(row["output_path"]) != job.output:  # found where this plan wants it (a moved project's)
            store.set_output(jid, job.output)
    else:
        altered = keep_file(job.output, superseded / job.hash[:16], unless_recorded=False, poster=False, once=False)
        if altered is not None:
            store.event(run_id, jid, "altered-kept", {"path": str(altered[0]), "sha256": altered[1],
                                                      "recorded_sha256": row["sha256"]})
            kept.append(altered[0])
        copy = kept_copy(store, job, jid, row, superseded=superseded)
        if copy is None or not restore(copy, job.output, job.hash, row["sha256"], job):
            why = "output file altered (kept under .runs/superseded/)" if altered else "output file missing"
            store.transition(jid, S.DOWNLOADING, error=f"{why}; fetching again", output_path=str(job.output))
            return False
        # the very take, whole where the state knows an earlier run left or kept it: put back, nothing fetched
        store.event(run_id, jid, "video-restored", {"from": str(copy), "path": str(job.output),
                                                    "sha256": row["sha256"]})
        if restored is not None:
            restored.append(Restored(job.output, copy, altered[0] if altered else None))
        if Path(row["output_path"]) != job.output:
            store.set_output(jid, job.output)
        row = store.job_row(jid)
    mend_sidecar(store, run_id, job, jid, row)
    store.mark_cached(run_id, jid, row["done_run_id"])
    return True


class Restored(NamedTuple):
    """A done video a run found missing or altered and put back from gridrun's own copy of it (`check_done`):
    nothing fetched."""

    path: Path                 # the video, put back
    source: Path               # the copy it was put back from
    altered: Path | None       # where the altered file found at its place was kept; None: the file was missing


def done_video(job: Job, row: Any) -> Path | None:
    """Where the video of a done job's record is whole (its recorded SHA-256): at the path the record names,
    else where the plan puts it (a project moved or copied since, its videos with it); None when at neither.
    What a run caches (`check_done`) and what plan calls cached. A file at the planned path that its sidecar
    says is this very take (a copied project's, or a sweep renamed back) is taken first: nothing to copy over it."""
    recorded = Path(row["output_path"])
    if recorded != job.output and holds_take(job.output, job.hash, row["sha256"]):
        return job.output
    if verified(recorded, row["sha256"]):
        return recorded
    if recorded != job.output and verified(job.output, row["sha256"]):
        return job.output
    return None


def kept_copy(store: Store, job: Job, jid: int, row: Any, *, superseded: Path) -> Path | None:
    """Where a done job whose video is neither at its recorded path nor at the plan's (deleted, edited) has that
    very take whole (its recorded SHA-256, the bytes read), for `check_done` to put back at no cost before
    asking the provider again (whose link may have expired long since): under `superseded` (the plan's output
    folder's `.runs/superseded/<hash16>/<sha16>/`, a take a re-render replaced, a copied project's own), where
    a later render recorded keeping it (event `superseded`), where the runs of the state left it (an earlier
    `outputs_dir:`, a renamed sweep's folder: `Store.copies_of`). None when no file there holds it."""
    sha = row["sha256"]
    if not sha:
        return None
    here = {str(job.output), str(row["output_path"])}
    places = [str(take_path(superseded / job.hash[:16], sha, job.output.name)), *store.copies_of(jid, sha)]
    for place in dict.fromkeys(places):
        if place not in here and whole(Path(place), sha):
            return Path(place)
    return None


def restore(src: Path, dest: Path, job_hash: str, sha256: str, job: Job | None = None) -> bool:
    """Put the done video at `src` back at `dest`, with its sidecar when that names this take of the job (else
    the run writes it from the state, `mend_sidecar`): only the bytes read, when they have the digest `sha256`
    (a file changed since it was checked is not copied). False, nothing written, when they have not or `src`
    cannot be read. `job`: the job it is put back for, whose key and values the sidecar then says (`for_job`: a
    take kept under the key it was made under)."""
    try:  # streamed: a video may weigh more than the memory there is
        if atomic_copy(src, dest, sha256=sha256) is None:
            return False
    except OSError as exc:
        if exc.filename == os.fspath(src):
            return False  # `src` could not be read
        raise
    doc = gridrun_sidecar(src)
    side = sidecar_path(dest)
    if doc is not None and doc["hash"] == job_hash and doc["sha256"] == sha256:
        try:
            data = sidecar_path(src).read_bytes()
            atomic_write(side, data if job is None else for_job(data, job))
        except OSError:  # written from the state instead
            with contextlib.suppress(OSError):
                side.unlink()
    return True


def _copy_here(store: Store, run_id: int, jid: int, job: Job, at: Path, *, superseded: Path, foreign: list[Path],
               unrecorded: list[Path]) -> None:
    """Copy the done job's video (and sidecar) at `at` to where the plan wants it, a file of no record of this
    state's in its way kept first (`check_done`)."""
    found = keep_file(job.output, superseded / job.hash[:16], unless_recorded=True, poster=True, once=True,
                      known=known_renders(store, job.output))
    if found is not None:
        store.event(run_id, jid, found.kind, {"path": str(found.path), "sha256": found.sha256})
        (unrecorded if found.kind == "unrecorded-kept" else foreign).append(found.path)
    copy_output(at, job.output, job)


class Left:
    """Where the manifest's previous run left its jobs' videos (`Store.paths_left_by`; `before`: the run starting,
    not that one), read from the state once, when first asked: only a done job with nothing of its own at its
    path asks."""

    def __init__(self, store: Store, manifest_name: str, *, before: int | None = None) -> None:
        self._store, self._name, self._before = store, manifest_name, before
        self._paths: dict[int, str] | None = None

    def __call__(self, jid: int) -> Path | None:
        if self._paths is None:
            self._paths = self._store.paths_left_by(self._name, before=self._before)
        path = self._paths.get(jid)
        return Path(path) if path else None


def own_take(store: Store, job: Job, jid: int, row: Any, *, left: Left | None = None,
             ) -> tuple[dict[str, Any], Path] | None:
    """An earlier take of the done job's own that is not the one its record names, and where it is: at `job.output`,
    else (nothing of the job's there) where the manifest's previous run left the job (`left`), when that is another
    path (its sweep renamed since: the same job under a new key). Whole, and this state's (`_take_at`): another
    manifest sharing the state re-rendered the same request (--force) in its own folder since, a take this manifest
    never asked to replace. None otherwise: the record's take is the job's."""
    doc = gridrun_sidecar(job.output)
    if doc is not None and doc["hash"] == job.hash:
        take = _take_at(store, job.output, jid, row, doc)
        return None if take is None else (take, job.output)
    was = left(jid) if left is not None else None
    if was is None or was == job.output:
        return None
    doc = gridrun_sidecar(was)
    take = _take_at(store, was, jid, row, doc) if doc is not None and doc["hash"] == job.hash else None
    return None if take is None else (take, was)


def _take_at(store: Store, video: Path, jid: int, row: Any, doc: Mapping[str, Any]) -> dict[str, Any] | None:
    """The take of the job at `video`, whose sidecar (`doc`) names it, when it is not the one its record names but
    an earlier one of this state's, whole (`Store.recorded_take`: a render a run of this state recorded, and the
    video has the SHA-256 recorded for that take); None otherwise."""
    if not doc.get("provider_id"):
        return None
    if doc["sha256"] == row["sha256"]:
        return None  # the video the record names (a sidecar of another take beside it is written again)
    take = store.recorded_take(jid, str(doc["provider_id"]), doc["sha256"])
    return take if take is not None and whole(video, doc["sha256"]) else None


def known_renders(store: Store, video: Path) -> frozenset[str]:
    """The renders (provider ids) this state recorded for the job that the sidecar of gridrun's beside `video`
    names, for `keep_file` to tell a take of this state's from another state's: one look-up, made only where a
    file is in a video's way; none when no such sidecar is there."""
    doc = gridrun_sidecar(video)
    return store.renders(doc["hash"]) if doc is not None else frozenset()


def mend_sidecar(store: Store, run_id: int, job: Job, jid: int, row: Any) -> bool:
    """Write again, from the state, the sidecar of a done job's verified video (at `job.output`) when it is
    missing, unreadable, or names another job, another file or another take of this job (its render, the
    provider's id: a re-render whose sidecar could not be written leaves the earlier take's beside a video whose
    bytes may be the same): the fields the download wrote (the cost the provider reported: None for a job done
    before the state kept it), nothing fetched. True when it was written."""
    doc = gridrun_sidecar(job.output)
    same = doc is not None and doc["hash"] == job.hash and doc["sha256"] == row["sha256"]
    if same and (not row["provider_id"] or doc["provider_id"] == row["provider_id"]):
        assert doc is not None
        if names_another_job(doc, job):  # renamed, its video where it was: the sidecar names the job as it is now
            side = sidecar_path(job.output)
            atomic_write(side, for_job(side.read_bytes(), job))
            store.event(run_id, jid, "sidecar-renamed", {"path": str(side), "from_key": doc["key"], "key": job.key})
        return False
    side = sidecar_path(job.output)
    was = ("missing" if not side.exists() else "another take's" if same else
           "another video's" if doc is not None else "unreadable")
    # The take that made the video, as its sidecar named it when it was downloaded: a failed or cancelled
    # re-render since (--force) is the job's latest attempt, not this video's.
    take = store.take_of(jid, row["provider_id"]) if row["provider_id"] else None
    if take is None:
        following = store.following(jid)
        take = (following.attempt, following.idempotency_key)
    made = store.run(row["done_run_id"] or run_id)
    sidecar_writer(
        job, provider=made.provider, model=made.model, provider_id=row["provider_id"] or "",
        idempotency_key=take[1], attempt=take[0],
        billed_micros=row["cost_micros"] if row["cost_micros"] is not None else job.cost_micros,
        reported_micros=row["cost_reported_micros"], submitted_at=row["submitted_at"], completed_at=row["completed_at"],
        run_id=row["done_run_id"] or run_id, clock=lambda: row["downloaded_at"],
    )(row["sha256"])
    sync_folder(str(side))
    store.event(run_id, jid, "sidecar-mended", {"path": str(side), "was": was})
    return True


def _put_aside(plan: Plan, store: Store) -> None:
    """Copy aside the video of a done job where a job of this plan is to write another (a changed prompt or
    output template), into `.runs/superseded/`, its record following it: no paid video is overwritten,
    and a return to the earlier manifest finds it cached. Copied before recorded, so that a crash
    between the two leaves the record naming a file that is still whole."""
    planned = {str(j.output): j.hash for j in plan.jobs}
    for row in store.done_at(list(planned)):
        src = Path(row["output_path"])
        if planned[str(src)] == row["hash"] or not verified(src, row["sha256"]):
            continue
        aside = superseded_dir(plan.outputs_dir) / row["hash"][:16] / src.name
        copy_output(src, aside)
        store.set_output(row["id"], aside)


def _manifest_text(m: Manifest) -> str:
    """The manifest as the plan had it, for the run's copy: the text `load` read (the file may have been edited
    since the plan was made, and a copy of the edit would not plan the jobs this run sends); the file as it is
    now for a manifest that was not loaded from one; "" when that cannot be read."""
    if m.text:
        return m.text
    try:
        return Path(m.path).read_text(encoding="utf-8")
    except OSError:
        return ""


def copy_not_written(why: str) -> str:
    """What a run says of its manifest copy not written (`why`): a problem, not a failure of the run."""
    return f"manifest copy not written (the state keeps it): {why}"


# The reasons a file could not be written in the output folder that no video would escape either.
_UNWRITABLE = (errno.ENOSPC, errno.EDQUOT, errno.EROFS)


def _write_manifest_copy(plan: Plan, run_id: int, text: str) -> tuple[Path, Path] | None:
    """Write the run's copy of its manifest, `.runs/run-N.yaml`. Run numbers are a state's own: a copy another
    text holds there (another state's run N writing this folder, a state deleted and begun again) is kept first,
    as a video a run replaces is, under `.runs/superseded/manifests/<its sha256[:16]>/`, never written over: (where it was,
    where it is kept) then, else None."""
    if not text:
        return None
    runs_dir = plan.outputs_dir / ".runs"
    runs_dir.mkdir(parents=True, exist_ok=True)
    path = runs_dir / f"run-{run_id}.yaml"
    data = text.encode()
    kept = None
    try:
        before = path.read_bytes()
    except FileNotFoundError:
        before = data
    if before != data:
        aside = manifest_kept_path(plan.outputs_dir, before, path.name)
        if not aside.is_file():
            aside.parent.mkdir(parents=True, exist_ok=True)
            atomic_write(aside, before)
        kept = (path, aside)
    atomic_write(path, data)
    return kept


# How long after the send of a job a run left `submitting`, which the manifest no longer has, `gridrun cancel` looks
# it up in the provider's request log: the longest --request-timeout a create may take, and the log's settling
# (`executor.LOG_SETTLE`).
CANCEL_LOOKS_UP_AFTER = 3600.0 + 5.0


def cancel_looks_up_at(sent_at: float | None) -> str:
    """When `gridrun cancel` looks up a job left `submitting` sent at `sent_at`, as words."""
    if sent_at is None:
        return "an hour after its send"
    return f"after {local_time(sent_at + CANCEL_LOOKS_UP_AFTER)}"


@dataclass(frozen=True, slots=True)
class LeftBehind:
    """Jobs the manifest's last run sent that are in flight still and that a plan (the manifest changed) no
    longer has: no run of that plan would follow them, so their paid videos would be lost."""

    run_id: int
    keys: tuple[str, ...]
    states: tuple[str, ...]              # each job's state, in the order of `keys`
    cost_micros: int                     # their estimated cost
    copy: Path                           # the manifest as that run had it
    copy_there: bool = True              # False: removed, and it could not be written again from the state
    last_sent: float | None = None       # the latest send of those left `submitting`
    run_name: str = ""                   # the name that run had, when the manifest's `name:` changed since

    images: str = ""                     # the input images whose content differs from the run's (`images_said`)
    image_paths: tuple[str, ...] = ()    # those images, as the manifest's folder sees them
    rows: str = ""                       # the data-file rows the jobs were made of that changed (`rows_changed`)
    row_files: tuple[str, ...] = ()      # those data files, as the manifest's folder sees them
    rows_removed: bool = False           # every one of those rows was removed, none edited
    as_run_had_it: bool = False          # the manifest's text is that run's: its input images or rows changed

    def message(self) -> str:
        """What is in flight, and the two ways on: the manifest put back (or the input images whose content
        changed, when the manifest is as the run had it), or --leave-in-flight."""
        left, last = len(self.keys), self.run_id
        keys = ", ".join(self.keys[:3]) + (f" and {left - 3} more" if left > 3 else "")
        kinds = {
            "sent, not yet seen finished (`gridrun cancel` stops those still rendering)":
                (S.SUBMITTED.value, S.RUNNING.value),
            "rendered, to be downloaded": (S.DOWNLOADING.value,),
            "sent or about to be (their outcome is not known yet; `gridrun cancel` looks them up in the provider's "
            "request log now, at no cost, and cancels those it finds; a miss there is sure only "
            f"{cancel_looks_up_at(self.last_sent)})": (S.SUBMITTING.value,),
        }
        counts = [f"{n} {what}" for what, states in kinds.items() if (n := sum(s in states for s in self.states))]
        one = left == 1
        them, they = ("it", "it renders") if one else ("them", "they render")
        return (
            f"{left} {'job' if one else 'jobs'} of run {last} ({usd_text(self.cost_micros)}){self._as_named()} "
            f"{'is' if one else 'are'} in flight, and {self._gone(one, them)} ({keys}): {'; '.join(counts)}. "
            f"This run would not follow {them}. {self._put_back(them)}{self._resent()}; or "
            f"pass --leave-in-flight to run anyway (what {they} is then not downloaded)"
        )

    def _as_named(self) -> str:
        """The name the run had, of a manifest whose `name:` changed since: the run is of this file all the same."""
        return f", made from this manifest file when its name: was {self.run_name}," if self.run_name else ""

    def _gone(self, one: bool, them: str) -> str:
        """Why the plan lacks them: the manifest no longer has them, or, the manifest as the run had it, the input
        images they sent or the rows of its data files they were made of changed."""
        changed = []
        if self.images and self.as_run_had_it:
            n = len(self.image_paths)
            paths = ", ".join(self.image_paths[:3]) + (f" and {n - 3:,} more" if n > 3 else "")
            changed.append(f"the {'input image' if n == 1 else 'input images'} {paths}")
        if self.rows:
            files = " and ".join(self.row_files)
            rows = (f"{'its row' if one else 'their rows'} in the "
                    f"{'data file' if len(self.row_files) == 1 else 'data files'} {files}")
            if self.rows_removed:  # said apart from an image's change: a row is not changed, it is gone
                removed = f"{rows} {'was' if one else 'were'} removed since that run"
                return f"{changed[0]} changed and {removed}" if changed else removed
            changed.append(rows)
        if not changed:
            return f"the manifest no longer has {them}"
        return f"{' and '.join(changed)} changed since that run"

    def _resent(self) -> str:
        """What the run of the manifest put back does with the jobs left `submitting`: a paid send of those the
        request log does not have, said where there are any."""
        n = sum(s == S.SUBMITTING.value for s in self.states)
        if not n:
            return ""
        return (f" (that run looks the {'one' if n == 1 else n} sent or about to be up by "
                f"{'its' if n == 1 else 'their'} key too, but sends {'it' if n == 1 else 'those'} again at once "
                f"if not found: a new render, paid; `gridrun cancel` first costs nothing)")

    def _put_back(self, them: str) -> str:
        """What puts back what this run's plan lacks them (the jobs) for, and runs it to collect `them`."""
        copy = f"run {self.run_id}'s copy: {self.copy}{self._missing()}"
        if not self.images and not self.rows:
            named = f"its name: {self.run_name} too; " if self.run_name else ""
            return f"Put the manifest back as it was ({named}{copy}) and run it to collect {them}"
        what = []
        if self.images:
            what.append(f"The {'input image' if len(self.image_paths) == 1 else 'input images'} {self.images}")
        if self.rows:
            one = len(self.row_files) == 1
            what.append(f"{'the' if what else 'The'} {'data file' if one else 'data files'} "
                        f"{' and '.join(self.row_files)} {'has' if one else 'have'} changed since run {self.run_id} "
                        f"({self.rows})")
        paths = (*self.image_paths, *self.row_files)
        files = " ".join(typed(p) for p in paths)
        # the rows are told only of a manifest as the run had it: no copy of it to put back then
        manifest = "" if not self.images or self.as_run_had_it else (f", and the manifest as it was if it changed too "
                                                                     f"({copy}),")
        return (f"{'; '.join(what)}: put {'that file' if len(paths) == 1 else 'those files'} back "
                f"(e.g. git checkout <ref> -- {files}){manifest} and "
                f"run {'it' if manifest else 'the manifest'} to collect {them}")


    def _missing(self) -> str:
        return "" if self.copy_there else ", missing, and it could not be written again from the state"


def left_behind(plan: Plan, store: Store) -> LeftBehind | None:
    """The jobs the manifest's last run left in flight that `plan` no longer has; None when there are none.
    A run refuses to start over them (`check_left_behind`); `gridrun plan` says so beforehand."""
    last = _last_run_of(plan, store)
    if last is None:
        return None
    planned = {j.hash for j in plan.jobs}
    flying = (S.SUBMITTING.value, S.SUBMITTED.value, S.RUNNING.value, S.DOWNLOADING.value)
    left = [r for r in store.run_job_rows(last.id) if r["state"] in flying and r["hash"] not in planned]
    if not left:
        return None
    # written again when .runs/ was tidied by hand; a run under another name: in the folder that run wrote
    renamed = last.manifest_name != plan.manifest.name
    copy, there = store.manifest_copy_file(last.id, folder=None if renamed else plan.outputs_dir)
    by_key = {j.key: j for j in plan.jobs}
    changed: dict[str, tuple[str | None, str]] = {}
    for r in left:
        for path, then, now in changed_images(by_key.get(r["run_key"]), r["params"], r["request"],
                                              plan.image_digests):
            changed.setdefault(path, (then, now))
    shown = [shown_beside(path, plan.manifest.path) for path in changed]
    # the manifest as that run had it: what changed is the data files' rows its jobs were made of
    rows, row_files, removed = "", (), False
    same = bool(plan.manifest.text) and store.manifest_copy(last.id) == plan.manifest.text
    if plan.manifest.data_lines and same:
        rows, row_files, removed = rows_changed(plan.manifest, left, store.run_job_rows(last.id), last.id)
    return LeftBehind(
        images=images_said(changed, last.id, plan.manifest.path), image_paths=tuple(shown),
        rows=rows, row_files=row_files, rows_removed=removed, as_run_had_it=same,
        run_id=last.id, run_name=last.manifest_name if renamed else "", keys=tuple(r["key"] for r in left), states=tuple(r["state"] for r in left),
        cost_micros=sum(r["cost_estimate_micros"] for r in left), copy=copy, copy_there=there,
        last_sent=max((r["submitted_at"] for r in left if r["state"] == S.SUBMITTING.value and r["submitted_at"]),
                      default=None),
    )


def _last_run_of(plan: Plan, store: Store) -> RunRecord | None:
    """The manifest's last run, whose jobs in flight a run of `plan` would follow: its name's latest run, or the
    latest run made from this very file when that is a later one under the name the file had then (its `name:`
    edited since), and the latest run of that name (no run of another file took that name's jobs on since).
    Another manifest sharing the state is another file: its runs are never this one's."""
    last = store.latest_run(plan.manifest.name)
    mine = run_under_old_name(plan.manifest.path, plan.manifest.name, store)
    return mine if mine is not None and (last is None or last.id < mine.id) else last


def run_under_old_name(path: str | Path, name: str, store: Store) -> RunRecord | None:
    """The latest run made from the manifest file `path` when its `name:` was another than `name` (edited since),
    where it is also the latest run of that name (no run of another file took that name's jobs on since); None
    otherwise."""
    # a path that is not UTF-8 text is no run's: none recorded it
    mine = None if not_recordable(path) else store.latest_run_of_file(path)
    if mine is None or mine.manifest_name == name:
        return None
    latest = store.latest_run(mine.manifest_name)
    return mine if latest is not None and latest.id == mine.id else None


def rows_changed(manifest: Manifest, left: Sequence[Any], ran: Sequence[Any],
                 run_id: int) -> tuple[str, tuple[str, ...], bool]:
    """The data-file rows that the jobs `left` (state rows of jobs the plan no longer has) were made of and that
    the manifest's data files no longer hold (`ran`: the jobs of their run, `run_id`), in words ("rows.csv:2: prompt 'owl' then, 'owl at night' now"), and
    those files as the manifest's folder sees them, and whether every such row was removed; ("", (), False) for
    none. Each job's recorded values are its rows as they were; the row now is the one of the file's rows that no
    job of the run (`ran`) was made of sharing the most cells with it (a one-value line: the only such line), else
    the row is said to be removed, at the line it had (`_line_had`)."""
    lines = manifest.data_lines
    if not lines or not left:
        return "", (), False

    recorded: dict[str, set[str]] = {}
    for r in ran:
        try:
            vals = json.loads(r["vals"] or "{}")
        except ValueError:
            continue
        if isinstance(vals, dict):
            for name, value in vals.items():
                recorded.setdefault(name, set()).add(value_form(value))
    axes: dict[tuple[Any, ...], tuple[list[Any], list[str]]] = {}
    said: dict[str, None] = {}
    files: dict[str, None] = {}
    edited = False
    for r in left:
        try:
            vals = json.loads(r["vals"] or "{}")
        except ValueError:
            continue
        if not isinstance(vals, dict):
            continue
        for axis, where in lines.items():
            name = axis[-1]
            if name not in vals or (axis[0] == "matrix") != (r["sweep"] is None):
                continue
            if axis not in axes:
                values = axis_values(manifest, axis)
                axes[axis] = (values, [value_form(v) for v in values])
            values, normed = axes[axis]
            then = vals[name]
            if value_form(then) in normed:
                continue
            file = shown_beside(where.file, manifest.path)
            files[file] = None
            new = [i for i, n in enumerate(normed) if n not in recorded.get(name, ())]
            at = _row_now(then, [(i, values[i]) for i in new])
            if at is None:
                had = _line_had(value_form(then), _run_order(ran, axis), normed, where.positions)
                said[f"{file}{'' if had is None else f':{had}'}: run {run_id}'s row {_cell(then)} was removed"] = None
                continue
            edited = True
            found = value_position(lines, (*axis, at))
            line = f"{file}:{found[1][0]}" if found is not None else file
            said[f"{line}: {_row_diff(then, values[at])}"] = None
    listed = list(said)
    text = "; ".join(listed[:3]) + (f"; and {len(listed) - 3:,} more" if len(listed) > 3 else "")
    return text, tuple(files), bool(listed) and not edited


def _run_order(ran: Sequence[Any], axis: tuple[Any, ...]) -> list[str]:
    """The values of the data-file axis `axis` that the jobs of a run (`ran`, in plan order) were made of, in the
    order of the data file as the run read it (`value_form`): a matrix takes each axis's values in order."""
    name, order = axis[-1], {}
    for r in ran:
        if (axis[0] == "matrix") != (r["sweep"] is None):
            continue
        try:
            vals = json.loads(r["vals"] or "{}")
        except ValueError:
            continue
        if isinstance(vals, dict) and name in vals:
            order.setdefault(value_form(vals[name]), None)
    return list(order)


def _line_had(then: str, order: Sequence[str], now: Sequence[str], positions: Sequence[tuple[int, int]]) -> int | None:
    """The line of its data file that the row `then` (`value_form`), since removed, had: the rows before it in
    the run's order (`order`) counted from the file's first row now, each row still there (`now`, at `positions`)
    with the lines it spans now, each one not there with one line; None where `then` is not in `order`."""
    if not positions:
        return None
    at = {form: i for i, form in reversed(list(enumerate(now)))}
    line = positions[0][0]
    for form in order:
        if form == then:
            return line
        i = at.get(form)
        line += 1 if i is None or i + 1 == len(positions) else positions[i + 1][0] - positions[i][0]
    return None


def value_form(value: Any) -> str:
    """A data file's value (a row, a line) as one text to compare: its JSON, keys sorted."""
    return json.dumps(value, sort_keys=True, default=str)


def axis_values(manifest: Manifest, axis: tuple[Any, ...]) -> list[Any]:
    """The values the manifest holds now at `axis` (a data-file axis's path in `manifest.data`), [] where it holds
    none there."""
    node: Any = manifest.data
    for step in axis:
        try:
            node = node[step]
        except (KeyError, IndexError, TypeError):
            return []
    return node if isinstance(node, list) else []


def rows_gone(manifest: Manifest, values: Iterable[Mapping[str, Any]]) -> bool:
    """Whether a data-file value of one of `values` (jobs' matrix values, as the state recorded them) is no longer
    in the manifest's data file of its axis's name: a row edited since (`rows_changed` says how), read without a
    plan."""
    by_name: dict[str, set[str]] = {}
    for axis in manifest.data_lines:
        by_name.setdefault(axis[-1], set()).update(map(value_form, axis_values(manifest, axis)))
    return any(name in by_name and value_form(v) not in by_name[name] for made in values for name, v in made.items())


def images_changed(manifest: Manifest, job_ids: Collection[int]) -> bool:
    """Whether a local input image that one of the jobs `job_ids` (of the state of `manifest`) sent differs now
    from the digest its request recorded (`Job.record`): a run of the manifest refuses to start over such a job
    in flight (`left_behind`). Read without a plan: the requests of the state's jobs in flight that sent an image,
    then a look at each image they name (hashed again only where its size or time changed, `_digest`)."""
    if not job_ids:
        return False
    from .state import IN_FLIGHT

    flying = sorted(s.value for s in IN_FLIGHT)
    rows = RecordedImages(manifest)._rows(
        f"SELECT id, request FROM jobs WHERE state IN ({', '.join('?' * len(flying))}) "
        "AND request LIKE '%\"images\"%'", flying)
    for row in rows:
        if row["id"] not in job_ids:
            continue
        try:
            sent = json.loads(row["request"]).get("images")
        except (ValueError, AttributeError):
            continue
        if isinstance(sent, dict) and any(isinstance(then, str) and isinstance(path, str)
                                          and (now := _digest(path)) is not None and now != then
                                          for path, then in sent.items()):
            return True
    return False


def _row_now(then: Any, candidates: Sequence[tuple[int, Any]]) -> int | None:
    """Which of `candidates` (index, value: the data file's values no job of the run was made of) is the row
    `then` became: of rows, the one with the most cells as they were (one at least); of single values, the only
    one; None when none is."""
    if isinstance(then, dict):
        best, most = None, 0
        for i, row in candidates:
            if isinstance(row, dict):
                same = sum(1 for k, v in then.items() if k in row and row[k] == v)
                if same > most:
                    best, most = i, same
        return best
    return candidates[0][0] if len(candidates) == 1 else None


def _row_diff(then: Any, now: Any) -> str:
    """What differs between a data file's row (or value) as a run's job was made of it and as it is now: "prompt
    'owl' then, 'owl at night' now"."""
    if not (isinstance(then, dict) and isinstance(now, dict)):
        return f"{_cell(then)} then, {_cell(now)} now"
    cells = [f"{k} {_cell(then.get(k)) if k in then else 'none'} then, {_cell(now.get(k)) if k in now else 'none'} now"
             for k in dict.fromkeys([*then, *now]) if then.get(k, ...) != now.get(k, ...)]
    return "; ".join(cells[:3]) + (f"; and {len(cells) - 3} more cells" if len(cells) > 3 else "")


def _cell(value: Any) -> str:
    """A data file's value as a message quotes it, cut at 60 characters."""
    text = repr(value) if isinstance(value, str) else json.dumps(value, default=str, ensure_ascii=False)
    return text if len(text) <= 60 else text[:59] + "…"


def changed_images(job: Job | None, params: str, request: str,
                   digests: Mapping[str, str]) -> list[tuple[str, str | None, str]]:
    """The local input images of an earlier job (its parameters and request as the state holds them, JSON) whose
    content differs now (`digests`: the plan's, path -> SHA-256), each as (path, digest then, digest now): read
    from the digests the job's request recorded (`Job.record`). A job of an older gridrun recorded none: when its
    parameters are those of the plan's `job` of its key (which has another hash), the content of the images it
    sends is what differs, or the take, and they are told with no digest then (None). Call it for a job whose hash
    the plan no longer has."""
    try:
        images = json.loads(request or "{}").get("images")
    except (ValueError, AttributeError):
        images = None
    if isinstance(images, dict) and images:
        out: list[tuple[str, str | None, str]] = []
        for path, then in images.items():
            now = digests.get(path) or _digest(path)
            if now is not None and now != then:
                out.append((path, then, now))
        return out
    if job is None:
        return []
    try:
        same = json.loads(params) == json.loads(json.dumps(job.params, default=str))
    except (TypeError, ValueError):
        return []
    return [(path, None, digests[path]) for path in param_strings(job.params) if path in digests] if same else []


class RecordedImages:
    """What the state (`state_dir`) recorded of the local input images its done jobs sent (`Job.record`:
    `{"images": {path: sha256}}`), read once, only when an image of the plan is not found (`plan.ImageRecords`), from the state folder
    of `manifest`."""

    def __init__(self, manifest: Manifest) -> None:
        self.manifest = manifest
        self._digests: dict[str, str] | None = None
        # the same digests by each image's path inside the folder of the manifest whose run sent it: a project
        # moved or copied whole to another folder (its state with it) finds them at their place in it
        self._beside: dict[str, str] = {}

    def _rows(self, sql: str, args: Sequence[Any] = ()) -> list[Any]:
        try:
            db = state_dir_of(self.manifest, check=False) / "state.db"
            if not db.is_file():
                return []
            with Store(db, readonly=True) as store:
                return list(store.db.execute(sql, args))
        except (GridrunError, sqlite3.Error, OSError):  # unreadable, or of another version: nothing to go by
            return []

    def digest(self, path: str) -> str | None:
        """The SHA-256 the latest done job that sent the image at `path` recorded of it; None: none did."""
        if self._digests is None:
            self._digests = {}
            for row in self._rows("SELECT jobs.request, runs.manifest_path FROM jobs LEFT JOIN runs "
                                  "ON runs.id = jobs.done_run_id WHERE jobs.state = 'done' "
                                  "AND jobs.request LIKE '%\"images\"%' ORDER BY jobs.id"):
                try:
                    sent = json.loads(row["request"]).get("images")
                except (ValueError, AttributeError):
                    continue
                if isinstance(sent, dict):
                    sent = {k: v for k, v in sent.items() if isinstance(v, str)}
                    self._digests.update(sent)
                    folder = row["manifest_path"]
                    if isinstance(folder, str):
                        for k, v in sent.items():
                            if (inner := within(k, os.path.dirname(folder))) is not None:
                                self._beside[inner] = v
        found = self._digests.get(path)
        if found is None and self._beside and (inner := within(path, str(self.manifest.base_dir))) is not None:
            found = self._beside.get(inner)
        return found

    def done(self, hashes: Sequence[str]) -> set[str]:
        """Those of `hashes` whose job the state holds done."""
        found: set[str] = set()
        for at in range(0, len(hashes), 500):
            chunk = hashes[at:at + 500]
            rows = self._rows(f"SELECT hash FROM jobs WHERE state = 'done' AND hash IN ({','.join('?' * len(chunk))})",
                              chunk)
            found.update(row["hash"] for row in rows)
        return found


def _digest(path: str) -> str | None:
    """The SHA-256 of the file at `path` now (None: not there, or not readable): read once while its size and
    time of change stay (many jobs of a plan may send one image the plan no longer does)."""
    try:
        st = os.stat(path)
    except (OSError, ValueError):
        return None
    return _digest_of(path, st.st_size, st.st_mtime_ns, st.st_ino)


@functools.lru_cache(maxsize=64)
def _digest_of(path: str, size: int, mtime_ns: int, inode: int) -> str | None:
    try:
        return file_sha256(Path(path))  # a named pipe put in its place is not read
    except (OSError, ValueError):
        return None


def shown_beside(path: str | Path, manifest: Path) -> str:
    """`path` as the manifest's folder sees it (`assets/in.png`, `shots.csv`), else whole."""
    try:
        return Path(path).relative_to(manifest.parent).as_posix()
    except ValueError:
        return str(path)


def images_said(changed: Mapping[str, tuple[str | None, str]], run_id: int, manifest: Path) -> str:
    """`changed` (path -> its digests then and now, `changed_images`) in words: "assets/in.png: its content differs
    from run 1's (sha256 45355a23ce62 then, 2c6483eed4de now)"; "" for none."""
    said = []
    for path, (then, now) in list(changed.items())[:3]:
        digests = (f"sha256 {then[:12]} then, {now[:12]} now" if then is not None
                   else f"sha256 {now[:12]} now; run {run_id}'s was not recorded")
        said.append(f"{shown_beside(path, manifest)}: its content {'differs' if then else 'may differ'} from run "
                    f"{run_id}'s ({digests})")
    return "; ".join(said) + (f"; and {len(changed) - 3:,} more" if len(changed) > 3 else "")


# The stored states of the jobs a run asks the provider about, by their video's id or their create's key: those in
# flight, and those of unknown outcome.
FOLLOWED = (*IN_FLIGHT, S.UNKNOWN.value)


def _jobs_left(keys: Sequence[str], states: Sequence[str]) -> str:
    """"3 jobs (a, b, c; 2 in flight and 1 of unknown outcome)": the jobs a run would ask about that were sent
    elsewhere (another endpoint, another key), as a refusal names them."""
    left = len(keys)
    named = ", ".join(keys[:3]) + (f" and {left - 3} more" if left > 3 else "")
    flying = sum(s != S.UNKNOWN.value for s in states)
    kinds = [f"{flying} in flight" if flying else "", f"{left - flying} of unknown outcome" if left - flying else ""]
    return f"{left} {'job' if left == 1 else 'jobs'} ({named}; {' and '.join(k for k in kinds if k)})"


@dataclass(frozen=True, slots=True)
class SentAway:
    """Jobs an earlier run sent to another endpoint than the plan's (`plan.sent_elsewhere`), in flight there or of
    unknown outcome, that a run would ask the endpoint now about: it has no such video, nor their creates' keys in
    its request log, so a run would record paid renders `unknown` (or send one again) while the endpoint they were
    sent to renders and bills them."""

    plan: Plan
    hashes: tuple[str, ...]
    keys: tuple[str, ...]
    states: tuple[str, ...]              # each job's state, in the order of `keys`
    sent_to: tuple[str, ...]             # each job's endpoint, in the order of `keys`

    def message(self) -> str:
        """Where they were sent, where the endpoint now comes from, and the two ways on: the base URL pointed back
        there, or --leave-in-flight."""
        url, source = self.plan.endpoint
        one = len(self.keys) == 1
        where = list(dict.fromkeys(self.sent_to))
        ways = "; ".join(f"{point_back(self.plan.manifest, at)} to collect those sent to {endpoint_named(at)}"
                         for at in where) if len(where) > 1 else point_back(self.plan.manifest, where[0])
        them = "it" if one else "them"
        return (
            f"{_jobs_left(self.keys, self.states)} "
            f"{'was' if one else 'were'} sent to {', '.join(map(endpoint_named, where))}, not to the endpoint now, "
            f"{endpoint_now(url, source)}, which may not know {them}: a run here would ask it for {them} and record "
            f"{them} unknown, while the "
            f"endpoint {'it was' if one else 'they were'} sent to renders and bills {them}. Point the base URL back "
            f"there to collect {them} at no new cost ({ways}); or pass --leave-in-flight to run anyway, "
            f"{them} left as {'it is' if one else 'they are'} for a run there"
        )


def sent_away(plan: Plan, store: Store, *, retry_unknown: bool = False,
              actions: Mapping[str, str] | None = None) -> SentAway | None:
    """The jobs of `plan` an earlier run sent to another endpoint than the plan's that a run would ask the endpoint
    now about (of `actions`, `action`'s answers by hash where given: those it follows, finds out about or looks up;
    `retry_unknown`: retry --unknown, which sends its jobs of unknown outcome again here, as asked); None when there
    are none. Jobs sent before gridrun recorded where are taken as sent here."""
    asks = ("attach", "reconcile", "lookup")
    sent = store.sent_to([j.hash for j in plan.jobs], FOLLOWED)
    if not sent:
        return None
    for h in simulator_away(plan, store):  # sent anew here, nothing paid there (`decide`)
        sent.pop(h, None)
    rows = store.jobs_by_hash(list(sent))
    away = [(j, sent[j.hash]) for j in {j.hash: j for j in plan.jobs}.values()
            if j.hash in sent and sent_elsewhere(sent[j.hash], plan.endpoint[0])
            and (actions is None or actions.get(j.hash) in asks)
            and not (retry_unknown and rows[j.hash]["state"] == S.UNKNOWN.value)]
    if not away:
        return None
    return SentAway(plan, tuple(j.hash for j, _ in away), tuple(j.key for j, _ in away),
                    tuple(rows[j.hash]["state"] for j, _ in away), tuple(at for _, at in away))


@dataclass(frozen=True, slots=True)
class KeyAway:
    """Jobs an earlier run sent with another API key than the plan's (`Plan.key_print`), at the endpoint now, in
    flight or of unknown outcome, that a run would ask about: another key is most often another account, which has
    no such video nor their creates' keys, so a run would record paid renders `unknown` (and `retry --unknown` pay
    for them again) while the account they were sent with renders and bills them."""

    plan: Plan
    hashes: tuple[str, ...]
    keys: tuple[str, ...]
    states: tuple[str, ...]              # each job's state, in the order of `keys`
    sent_with: tuple[str, ...]           # the fingerprint of each job's key, in the order of `keys`

    def message(self) -> str:
        """Which key they were sent with (its fingerprint, never the key), which one is set now, and the two ways
        on: the key set back, or --leave-in-flight."""
        assert self.plan.key_print is not None
        now, var = self.plan.key_print
        one = len(self.keys) == 1
        prints = list(dict.fromkeys(self.sent_with))
        them = "it" if one else "them"
        back = (f"set {var} back to the key of fingerprint {prints[0]}" if len(prints) == 1 else
                f"set {var} back to each key in turn (fingerprints {', '.join(prints)})")
        return (
            f"{_jobs_left(self.keys, self.states)} "
            f"{'was' if one else 'were'} sent with another API key (fingerprint {', '.join(prints)}) than the one "
            f"{var} holds now (fingerprint {now}): another key is most often another account, which does not know "
            f"{them}: a run with this key would record {them} unknown, while the account {'it was' if one else 'they were'} "
            f"sent with renders and bills {them}. {back[0].upper()}{back[1:]} to collect {them} at no new cost; if "
            f"the key now is of the same account (a key rotated, the old one revoked), pass --same-account to collect "
            f"{them} with it; or pass --leave-in-flight to run anyway, {them} left as {'it is' if one else 'they are'} "
            f"for a run with that key"
        )


def record_same_account(store: Store, run_id: int | None, keyed: KeyAway) -> None:
    """Record, one event a job (`SAME_ACCOUNT`), that the jobs of `keyed` are asked about with the key now as one
    of the same account as the key they were sent with (--same-account): the fingerprints of both, never a key."""
    assert keyed.plan.key_print is not None
    ids = store.jobs_by_hash(list(keyed.hashes))
    for h, fp in zip(keyed.hashes, keyed.sent_with):
        store.event(run_id, ids[h]["id"] if h in ids else None, SAME_ACCOUNT,
                    {"sent_with": fp, "key_print": keyed.plan.key_print[0]})


def key_away(plan: Plan, store: Store, *, retry_unknown: bool = False, actions: Mapping[str, str] | None = None,
             skip: Collection[str] = ()) -> KeyAway | None:
    """The jobs of `plan` an earlier run sent with another API key than the plan's that a run would ask about (of
    `actions`, as `sent_away` takes them; `retry_unknown`: retry --unknown, which sends its jobs of unknown outcome
    again, as asked); None when there are none, or the plan sends no key. `skip`: jobs already refused for another
    endpoint (`sent_away`). Jobs of runs that recorded no key's fingerprint (before gridrun kept it) are taken as sent
    with this one."""
    if plan.key_print is None:
        return None
    asks = ("attach", "reconcile", "lookup")
    sent = store.sent_with(list(dict.fromkeys(j.hash for j in plan.jobs)), FOLLOWED)
    sent = {h: fp for h, fp in sent.items() if h not in skip and sent_with_another_key(fp, plan.key_print)}
    if not sent:
        return None
    rows = store.jobs_by_hash(list(sent))
    away = [j for j in {j.hash: j for j in plan.jobs}.values()
            if j.hash in sent and (actions is None or actions.get(j.hash) in asks)
            and not (retry_unknown and rows[j.hash]["state"] == S.UNKNOWN.value)]
    if not away:
        return None
    return KeyAway(plan, tuple(j.hash for j in away), tuple(j.key for j in away),
                   tuple(rows[j.hash]["state"] for j in away), tuple(sent[j.hash] for j in away))


def simulator_away(plan: Plan, store: Store) -> dict[str, str]:
    """The jobs of `plan` in flight or of unknown outcome whose latest create was sent to another endpoint than the
    plan's, where a simulator answered it (`Store.sent_to`, `simulator`), each with that endpoint: nothing was paid
    there, so a run here sends them anew rather than refusing to start over them. Jobs whose attempt a provider
    answered, or of no record whether a simulator did, are not among them: sending those again may pay twice."""
    sent = store.sent_to(list(dict.fromkeys(j.hash for j in plan.jobs)), FOLLOWED, simulator=True)
    return {h: at for h, at in sent.items() if sent_elsewhere(at, plan.endpoint[0])}


def check_left_behind(plan: Plan, store: Store) -> None:
    """Refuse to start when jobs the manifest's last run sent are in flight still and this plan (the
    manifest changed) no longer has them: no run would follow them, and their paid videos would be lost."""
    left = left_behind(plan, store)
    if left is not None:
        raise InFlightError(left.message())


def outputs_gone(plan: Plan, rows: Mapping[str, Any]) -> str | None:
    """What is wrong when the output folder, with its `.runs/` (which every run makes there first), is not there,
    while the state records done jobs of the plan (`rows`, by hash) whose videos were in it and none of those is
    there: its disk not mounted (a USB drive, a NAS share), the folder moved or removed. A run would download
    every video again into an empty folder, or an empty mount point on the system disk, and a provider that has
    deleted them sends `retry` to pay again for videos safe on the other disk. None otherwise: some of its videos,
    or its `.runs/`, there (files tidied by hand, a video removed, which a run fetches again); the folder
    recorded elsewhere (a moved project's). One look when `.runs/` is there, the usual case."""
    folder = plan.outputs_dir
    if os.path.lexists(folder / ".runs"):
        return None
    inside = (str(folder) + os.sep,)
    # The folder as the manifest names it, its links not followed: a link to a folder not there (a disk not
    # mounted) leads elsewhere than where the state recorded the videos, which were under the link.
    named = Path(os.path.abspath(outputs_dir_named(plan.manifest)))
    linked = named != folder and not folder.exists()
    if linked:
        inside += (str(named) + os.sep,)
    done = [r["output_path"] for r in rows.values()
            if r["state"] == S.DONE and r["output_path"] and str(r["output_path"]).startswith(inside)]
    if not done or any(os.path.lexists(path) for path in done):
        return None
    count = f"{len(done):,} done {'job' if len(done) == 1 else 'jobs'}"
    moved = moved_outputs(folder, plan.manifest.path.parent, done)
    if moved is not None and not linked:
        return (f"the output folder {folder} is not there (nor its .runs/), yet the state records {count}' videos in "
                f"it: {moved_outputs_said(moved, plan.manifest.path.parent, 'them')}, and a run finds them "
                f"there, paying nothing (making {folder} again would have every one downloaded again)")
    shown: Path | str = folder
    if linked:
        shown = f"{named}, a link to {folder},"
        state, why = "which is not there (nor its .runs/)", "its disk not mounted, the folder moved or removed?"
    elif not folder.is_dir():
        state, why = "is not there (nor its .runs/)", "its disk not mounted, the folder moved or removed?"
    elif not _holds_anything(folder):  # an empty mount point, or a folder emptied
        state, why = "is empty (its .runs/ gone too)", "its disk not mounted (an empty mount point), the folder emptied?"
    else:
        state, why = "holds none of them, nor its .runs/", "its disk not mounted, the folder emptied or replaced?"
    return (f"the output folder {shown} {state}, yet the state records {count}' videos in it: {why} A run "
            "would download every one again there. Mount that disk, or put the folder back; or, to download them "
            "again there knowingly (at no cost while the provider keeps them), make its .runs/: "
            f"mkdir -p {typed(folder / '.runs')}")


def moved_outputs_said(moved: Path, manifest_dir: Path, videos: str) -> str:
    """What says that the output folder a manifest names absolute is at `moved` now (`moved_outputs`), holding
    `videos` (how the caller names them), and the `outputs_dir:` relative to the manifest's folder that names it."""
    field = shlex.quote(os.path.relpath(moved, os.path.abspath(manifest_dir)))
    return (f"the project folder moved? {moved}, at the same place beside the manifest, holds {videos} with its "
            f".runs/. Name that folder relative to the manifest, `outputs_dir: {field}`")


def moved_outputs(folder: Path, manifest_dir: Path, videos: Sequence[str]) -> Path | None:
    """Where the output folder `folder` (absolute in the manifest, not there) is now, moved with the project folder
    holding it and the manifest, in `manifest_dir`: the folder under it named by the last names of `folder`'s path
    (`out`, then `proj/out`, ...) that holds a `.runs/` and, at their places in it, some of `videos` (paths in
    `folder`); None where none does."""
    here = Path(os.path.abspath(manifest_dir))
    for n in range(1, len(folder.parts) - 1):
        there = here / Path(*folder.parts[-n:])
        if there == folder or not os.path.isdir(there / ".runs"):
            continue
        if any(os.path.lexists(there / Path(v).relative_to(folder)) for v in videos[:100]):
            return there
    return None


def lock_outputs(p: Plan, store: Store, *, write: bool = True) -> None:
    """The output folder's lock, beside the runner lock `store` holds (`Store.lock_outputs`; `write`: its record
    written now, else once the run is recorded).

    :raises LockError: another run (of another state) writes into the folder.
    :raises ManifestError: the folder or its `.runs/` cannot be made.
    :raises StateError: the lock file cannot be made or written (no permission, a full disk): the file, why, that
        nothing was recorded or sent, and what to do before the command (`store`'s) is run again.
    """
    try:
        (p.outputs_dir / ".runs").mkdir(parents=True, exist_ok=True)
    except OSError as exc:  # a place the plan could not rule out (/proc, a read-only mount as root)
        raise folder_error(p.manifest, p.outputs_dir, exc) from None
    refuse_own_links(p.manifest, p.outputs_dir)  # made a link since the plan was made
    field = outputs_field(p.manifest)
    try:
        store.lock_outputs(p.outputs_dir, manifest=p.manifest.path, field=field, write=write)
    except OSError as exc:  # no permission, a full disk: not the manifest's to put right
        if exc.filename is None:  # a write of the file (its open names it)
            exc.filename = str(p.outputs_dir / ".runs" / "lock")
        raise StateError(f"the output folder {p.outputs_dir} cannot be written: " + write_problem(
            exc, then=f"`gridrun {store.then}` again", refused="nothing was recorded or sent")) from None


def check_files_writable(plan: Plan, *, then: str = "run", provider: Any = None) -> None:
    """Refuse a run (or a cancel: `then`, the command to run again) when files it writes, there already, cannot be
    opened to write by this user (a teammate's state file or lock, made under a umask that keeps the group out):
    before the state is opened or anything is sent, naming their owner and mode and the fix (`not_writable_said`),
    where the system would only say "Permission denied" of the first, or SQLite open the state read-only and fail
    at its first write. `provider`: the one the run uses (`files_written`).

    :raises StateError: one cannot be written.
    """
    said = not_writable_said(files_written(plan, then=then, provider=provider), then=f"`gridrun {then}` again")
    if said is not None:
        raise StateError(said)


def files_written(plan: Plan, *, then: str = "run", provider: Any = None) -> list[Path]:
    """The files a run (or a cancel: `then`) of `plan` writes where they may be there already: the runner lock, the
    state file and SQLite's files beside it, the output folder's `.runs/lock` (not a cancel's), and the in-process
    simulator's world, which it writes as it sends each job (one not writable fails every job the run sends).
    `provider`: the one the run uses, whose world file is that (none for a served simulator or a real provider);
    None, the one the manifest names (`api._provider`): the built-in simulator where it names `provider: sim` and no
    `base_url:`."""
    from .providers import SIM_WORLD

    db = real_state_file(plan.state_dir / "state.db")
    files = [db.with_name("lock"), db, db.with_name(f"{db.name}-wal"), db.with_name(f"{db.name}-shm")]
    if then != "cancel":
        files.append(plan.outputs_dir / ".runs" / "lock")
    if provider is not None:
        world = getattr(provider, "world", None)
        if world is not None:
            files.append(Path(world))
    elif plan.manifest.provider == "sim" and plan.manifest.base_url is None:
        files.append(db.with_name(SIM_WORLD))
    return files


def refused_ahead(plan: Plan, diff: Any, *, command: str = "run") -> list[Warned]:
    """What `gridrun plan` warns of that a run of `plan` (with the options `diff` was made with) refuses before it
    sends anything, as it warns of folders that cannot be written: files it writes that this user cannot
    (`check_files_writable`), and done videos it would render again that are another user's in a sticky folder
    (`check_replaceable`), whose renders would be paid for and not saved. `command`: the one the plan previews
    ("run", "run --force", "retry", "retry --unknown"), named in what it says."""
    m = plan.manifest
    warnings = []
    said = not_writable_said(files_written(plan), then=f"`gridrun {command}` again",
                             refused=f"`gridrun {command}` would refuse to start")
    if said is not None:
        warnings.append(m.warning((), said))
    if diff is not None:
        again = [j for j in plan.jobs if diff.reasons.get(j.key) in (FORCED, ELSEWHERE)]
        held = [(job, why) for job in again if (why := sticky_said(job.output)) is not None]
        if held:
            job, why = held[0]
            more = f" (and {len(held) - 1:,} more)" if len(held) > 1 else ""
            field = ("output",) if "output" in m.data else (outputs_field(m),)
            warnings.append(m.warning(field, (
                f"job {job.key!r} is to be rendered again, but {job.output}: {why}{more}: `gridrun {command}` would "
                "refuse to start, as the render would be paid for and not saved; run gridrun as the videos' owner, or give "
                "the manifest an output folder of your own (`outputs_dir:`)")))
    return warnings


def _holds_anything(folder: Path) -> bool:
    try:
        with os.scandir(folder) as entries:
            return next(entries, None) is not None
    except OSError:
        return True  # cannot be read: not said to be empty


def check_outputs_there(plan: Plan, store: Store) -> None:
    """Refuse a run whose output folder is gone (`outputs_gone`), before it makes the folder's `.runs/`, records
    anything or sends anything. The state read only when `.runs/` is not there.

    :raises StateError: it is.
    """
    if os.path.lexists(plan.outputs_dir / ".runs"):
        return
    problem = outputs_gone(plan, store.jobs_by_hash([j.hash for j in plan.jobs]))
    if problem is not None:
        raise StateError(problem)


def name_shared(plan: Plan, store: Store) -> list[str]:
    """Warnings, at the manifest's `name`, of other manifest files whose runs the state holds under the same
    name (a copy made for a variant, its name kept): the two then share one history, and maybe one output
    folder where each run puts the other's videos aside. A file that is gone (the manifest moved or renamed) or
    that reads the same as this one is no other manifest."""
    m = plan.manifest
    try:
        mine = Path(m.path).read_bytes()
    except OSError:
        return []
    others = []
    for path, run_id, outputs_dir in store.manifest_files(m.name):
        try:
            if os.path.samefile(path, m.path) or Path(path).read_bytes() == mine or _copied_from(plan, Path(path)):
                continue
        except OSError:  # gone, or not readable: nothing to compare
            continue
        others.append((path, run_id, outputs_dir))
    if not others:
        return []
    path, run_id, outputs_dir = others[0]
    more = f" and {len(others) - 1} more" if len(others) > 1 else ""
    shared = Path(outputs_dir) == plan.outputs_dir
    folder = f" and one output folder ({plan.outputs_dir})" if shared else ""
    # what sharing does (the latest run of both in `status`, `report` and `export`) the README says
    return [m.warning(("name",), f"{m.name!r} is also the name of {path}{more} (latest run {run_id}): the two share "
                                 f"one history{folder}; give one its own `name:`")]


def _copied_from(plan: Plan, other: Path) -> bool:
    """Whether the manifest file `other`, which the state records runs of, is a file of the project this one was
    copied from whole, state and all: beside it (or where this manifest has its state, from its folder) is a state
    file of its own, not this one: its runs since went on there, so the two share no history. Only looked at,
    never opened: reading another project's state would leave SQLite's files in its folder."""
    state = plan.state_dir
    places = {other.parent / ".gridrun",
              Path(os.path.normpath(other.parent / os.path.relpath(state, plan.manifest.path.parent)))}
    for was in places:
        try:
            if (was / "state.db").is_file() and not os.path.samefile(was, state):
                return True
        except OSError:  # not readable: taken as no state of its own
            continue
    return False


def folder_shared(plan: Plan, store: Store) -> list[str]:
    """A warning, at the manifest's field naming its output folder, of manifests of other names in this state
    whose latest run wrote into the same folder: the runs, `report` and `export` of each then replace the other's
    report.html and results.*, and each run puts aside the other's videos in its way. A manifest file that is
    gone (moved or renamed) is no other writer, nor the manifest's own file, its `name:` changed since (its runs
    under the old name stay that name's); another file of the same name, `name_shared` warns of."""
    m = plan.manifest
    others = [(path, name, run_id) for name, path, run_id in store.folder_writers(plan.outputs_dir, besides=m.name)
              if os.path.isfile(path) and not _same_file(path, m.path)]
    if not others:
        return []
    path, name, run_id = others[0]
    more = f" and {len(others) - 1} more" if len(others) > 1 else ""
    return [m.warning((outputs_field(m),), f"{plan.outputs_dir} is also the output folder of {path} (name {name!r}, "
                                           f"latest run {run_id}){more}, which shares this state: each one's run, "
                                           "`gridrun report` and `gridrun export` replace the other's report.html and "
                                           "results.*, and put aside its videos in their way; give one of them its "
                                           "own outputs_dir")]


def _same_file(path: str | Path, other: str | Path) -> bool:
    """Whether the two paths name one file; one that cannot be looked at is not the same."""
    try:
        return os.path.samefile(path, other)
    except OSError:
        return False


# How many folders up from a manifest's a `.gridrun/` of its runs is looked for, outside a git work tree (inside
# one, up to its root).
STATE_ABOVE_LEVELS = 3


def _folders_above(base: Path) -> list[Path]:
    """Where a state the manifest in the folder `base` left may be: the folders above it, up to the root of the
    git work tree holding it (outside one, `STATE_ABOVE_LEVELS` of them); in a linked worktree (`git worktree
    add`), then the same folder in the repository's main worktree, and those above it up to that one's root."""
    from .gittrack import MOST_LEVELS, git_dir, work_tree

    root = work_tree(base)
    ups = [*base.parents][: (MOST_LEVELS if root is not None else STATE_ABOVE_LEVELS)]
    if root is not None:
        ups = [up for up in ups if up == root or root in up.parents]
    if root is None or not (root / ".git").is_file():
        return ups
    where = git_dir(root)
    try:
        common = where / (where / "commondir").read_text(encoding="utf-8").strip() if where else None
    except OSError:
        common = None
    if common is None or Path(os.path.normpath(common)).name != ".git":
        return ups
    main = Path(os.path.normpath(common)).parent
    mirror = main / base.relative_to(root)
    return [*ups, mirror, *(up for up in mirror.parents if up == main or main in up.parents)]


def state_above(plan: Plan) -> list[str]:
    """A warning, at the field naming the manifest's state folder, when that state does not exist yet but the
    `.gridrun/state.db` of a folder above the manifest's (`_folders_above`: up to the git work tree's root, and in
    a linked worktree the main worktree's) has runs of its `name:`: a manifest moved to another folder away from
    its state (`git mv`), or checked out beside it (`git worktree add`), would start a new one and pay for every
    job again. It says how many of the plan's jobs are done there, and the `state_dir:` and `outputs_dir:` that go
    on with it. Not said of a state none of whose done jobs is the plan's, whose latest run's manifest file is
    still where it was and is another: another manifest that merely shares the name. A few `stat`s, and a
    read-only look at such a state only when there is one."""
    if (plan.state_dir / "state.db").exists():
        return []
    m = plan.manifest
    for up in _folders_above(m.base_dir):
        other = up / ".gridrun"
        if up == m.base_dir or other == plan.state_dir or not (other / "state.db").is_file():
            continue
        try:
            with Store(other / "state.db", readonly=True) as store:
                last = store.latest_run(m.name)
                rows = store.jobs_by_hash([j.hash for j in plan.jobs]) if last is not None else {}
        except (StateError, sqlite3.Error, OSError):  # not readable: nothing to tell
            continue
        if last is None:
            continue
        done = sum(1 for r in rows.values() if r["state"] == JobState.DONE.value)
        if not done and _another_file(Path(last.manifest_path), m.path):
            continue  # another manifest of that name, still where it ran, none of whose videos this one shares
        rel = os.path.relpath(other, m.base_dir)
        lines = f"`state_dir: {rel}`"
        if last.outputs_dir and Path(last.outputs_dir) != plan.outputs_dir:
            lines += f" and `outputs_dir: {os.path.relpath(last.outputs_dir, m.base_dir)}` (where its videos are)"
        field = "state_dir" if m.data.get("state_dir") else "name"
        return [m.warning((field,), f"no state at {plan.state_dir} yet, but {other} holds the runs of {m.name!r} "
                                    f"(latest run {last.id}, from {last.manifest_path}), {done:,} of "
                                    f"{_these_jobs(len(plan.jobs))} done there: a run here starts a new state and sends "
                                    f"and pays for every job again; to go on with that one, set {lines}, or move "
                                    f"{other} beside the manifest")]
    return []


def _these_jobs(n: int) -> str:
    """The `n` jobs of a plan, as a count of them done or in flight elsewhere names them: "these 2 jobs"."""
    return "this 1 job" if n == 1 else f"these {n:,} jobs"


@dataclass(frozen=True, slots=True)
class LinkedState:
    """The state beside the file a manifest reached through a link leads to (`linked_state`)."""

    target: Path      # the manifest file the link leads to
    state_dir: Path   # the state folder the manifest names, beside that file
    run_id: int       # its latest run of the manifest's name
    done: int         # how many of the plan's jobs are done there
    sent: int = 0     # how many are sent and not done there: in flight, of unknown outcome, or expired (all paid)

    def said(self, plan: Plan, *, refused: bool = False) -> str:
        """What is wrong, and what to do: run the file itself (which collects the jobs in flight there), or share
        that state; or start one knowingly. `refused`: said by a run that refuses, which recorded and sent nothing."""
        m = plan.manifest
        of = f" of {_these_jobs(len(plan.jobs))}"
        counts = [f"{self.done:,}{of} done there"] if self.done else []
        if self.sent:
            counts.append(f"{self.sent:,}{'' if self.done else of} in flight there (sent, or of unknown outcome: "
                          f"paid for; `gridrun run {typed(self.target)}` collects them)")
        # a run there would start a new state and pay for every job again: it refuses, and says so
        outcome = ("a run through the link would start a new state and send and pay for every job again; nothing "
                   "was recorded or sent" if refused else "`gridrun run` through the link refuses to start (it "
                   "would start a new state there and send and pay for every job again)")
        return (f"{m.path} is a link to {self.target}: there is no state beside the link ({plan.state_dir}) yet, but "
                f"{self.state_dir}, beside the file it links to, holds the runs of {m.name!r} (latest run "
                f"{self.run_id}), {', '.join(counts)}: {outcome}. "
                f"Run {self.target} itself, or set "
                f"`state_dir: {self.state_dir}` (an absolute path, the file's and the link's alike) to go on with "
                f"that state; to start a new state beside the link knowingly, make its folder: "
                f"mkdir {typed(plan.state_dir)}")


def state_beside_target(plan: Plan) -> tuple[Path, Path] | None:
    """For a manifest reached through a link to its file: (the file the link leads to, the state folder the manifest
    names from that file's folder), where that is another folder than the plan's and holds a state file; None
    otherwise (no link, the same state, none there, or paths that cannot be resolved)."""
    m = plan.manifest
    if not os.path.islink(m.path):
        return None
    try:
        target = Path(os.path.realpath(m.path))
        raw = m.data.get("state_dir")
        there = Path(os.path.realpath(target.parent / str(raw) if raw else target.parent / ".gridrun"))
        if there == Path(os.path.realpath(plan.state_dir)) or not (there / "state.db").is_file():
            return None
    except (OSError, ValueError):
        return None
    return target, there


# The states of a job sent to the provider (or maybe sent) and not done: paid for, or maybe, as much as a done one.
_SENT_NOT_DONE = frozenset(s.value for s in (JobState.SUBMITTING, JobState.SUBMITTED, JobState.RUNNING,
                                              JobState.DOWNLOADING, JobState.UNKNOWN, JobState.EXPIRED))


def linked_state(plan: Plan) -> LinkedState | None:
    """When the manifest was reached through a link to its file (a teammate's folder of links, a dotfile manager,
    a per-user workspace) and the state it names from the link's folder is not there, the state it names from the
    folder of the file the link leads to, when that holds jobs of the plan done, or sent and not done (in flight,
    of unknown outcome, expired: paid for all the same): the state the manifest's runs have used, which the link
    leaves behind. (A link to the manifest's folder is followed where the state folder is
    resolved: it splits nothing.) A few `stat`s, and a read-only look at the other state only when there is one."""
    m = plan.manifest
    if (plan.state_dir / "state.db").exists():
        return None
    found = state_beside_target(plan)
    if found is None:
        return None
    target, there = found
    try:
        with Store(there / "state.db", readonly=True) as store:
            last = store.latest_run(m.name)
            rows = store.jobs_by_hash([j.hash for j in plan.jobs]) if last is not None else {}
    except (StateError, sqlite3.Error, OSError, ValueError):  # not readable: nothing to tell
        return None
    done = sum(1 for r in rows.values() if r["state"] == JobState.DONE.value)
    sent = sum(1 for r in rows.values() if r["state"] in _SENT_NOT_DONE)
    if last is None or not (done or sent):
        return None
    return LinkedState(target, there, last.id, done, sent)


def state_linked(plan: Plan) -> list[str]:
    """A warning, at the field naming the manifest's state folder, of the state a link to the manifest's file
    leaves behind (`linked_state`)."""
    found = linked_state(plan)
    if found is None:
        return []
    m = plan.manifest
    return [m.warning(("state_dir" if m.data.get("state_dir") else "name",), found.said(plan))]


def check_state_linked(plan: Plan) -> None:
    """Refuse a run through a link to the manifest's file that would start a new state beside the link while the
    one beside the file holds jobs of the plan done or in flight (`linked_state`), before anything is recorded or
    sent: it would pay for every one of them again. A state folder made beside the link (its folder there, even empty)
    is one chosen knowingly.

    :raises StateError: it would.
    """
    if os.path.lexists(plan.state_dir):
        return
    found = linked_state(plan)
    if found is not None:
        raise StateError(found.said(plan, refused=True))


def _another_file(recorded: Path, manifest: Path) -> bool:
    """The manifest file a run recorded is there still and is not `manifest`: not moved (`git mv`) to it."""
    try:
        return recorded.is_file() and not os.path.samefile(recorded, manifest)
    except OSError:
        return False


def state_tracked(plan: Plan) -> list[str]:
    """A warning, at the field naming the manifest's state folder, when git tracks its state file (committed, or
    added): every clone of the repository then holds a copy of the state, with its id, part of each idempotency
    key it sends, and a `--force` in one clone sends the very keys another sent, gets its take back without a new
    render and records as paid a render nobody paid for. Looked at only inside a git work tree (`gittrack`), and
    never a reason to stop."""
    from .gittrack import tracked, untrack_command
    from .terminal import typed

    db = plan.state_dir / "state.db"
    try:
        if not db.is_file() or not tracked(db):
            return []
    except OSError:
        return []
    m = plan.manifest
    field = "state_dir" if m.data.get("state_dir") else "name"
    return [m.warning((field,), f"git tracks the state file {db}: every clone of the repository holds this state "
                                "and its id, part of every idempotency key it sends, so a `--force` in one clone "
                                "sends the very keys another sent, gets that one's take back without a new render "
                                "and records as paid a render nobody paid for; stop committing it: "
                                f"`{untrack_command(plan.state_dir, typed, folder=True)}` (the state itself stays)")]


def outputs_shared(plan: Plan) -> list[str]:
    """A warning, at the manifest's field naming its output folder, when the folder records (`outputs_writer`)
    that a run of another state wrote into it last, and that state is there still and its runs wrote this
    folder: two states writing one folder replace each other's videos, run after run. This state at another path
    (one disk mounted at two places, seen by two machines or a container) is not another. A state since removed is
    no other writer, nor one whose runs wrote another folder (the record came with a copy of the project, and
    the original's state writes the original's folder): the next run takes its place in the record."""
    writer = outputs_writer(plan.outputs_dir)
    if writer is None:
        return []
    other = Path(writer["state_dir"])
    if other == plan.state_dir or not (other / "state.db").is_file() or not _writes_into(other, plan.outputs_dir):
        return []
    if _same_file(other / "state.db", plan.state_dir / "state.db"):
        return []  # this very state, reached by another path (a disk mounted at two places, a link)
    m = plan.manifest
    elsewhere = in_other_state(m.path, plan.state_dir, plan.outputs_dir)
    if elsewhere is not None:
        return [m.warning((outputs_field(m),), elsewhere.warning())]
    return [m.warning((outputs_field(m),), f"{plan.outputs_dir} is also written by the state in {other} (manifest "
                                           f"{writer['manifest']}): the two replace each other's videos; give one "
                                           "of them its own outputs_dir")]


@dataclass(frozen=True)
class OtherState:
    """Jobs of a manifest file in flight (or of unknown outcome) in another state than the one it names now: its
    `state_dir:` set or changed since a run of it sent them, which the output folder's lock still records."""

    state_dir: Path        # the state folder that sent them
    run_id: int            # the latest run of the manifest file there
    keys: list[str]        # the jobs in flight or of unknown outcome, newest run first
    manifest: Path         # the manifest file
    # of `keys`, those a run of the manifest in the state it names now would send again: that state has no record
    # of them (the others it has done or ended already, and sends none of them)
    sent_again: tuple[str, ...] | None = None  # None: all of them

    def place(self) -> str:
        """Where they are, and how to reach them."""
        from .terminal import typed

        n = len(self.keys)
        shown = ", ".join(self.keys[:3]) + (", ..." if n > 3 else "")
        m, other = typed(str(self.manifest)), typed(str(self.state_dir))
        return (f"the output folder's lock names the state in {self.state_dir}, where run {self.run_id} of this "
                f"manifest file left {n:,} job{'' if n == 1 else 's'} in flight or of unknown outcome ({shown}), "
                f"rendering and billed at the provider; `gridrun status {m} --state {other}` follows "
                f"{'it' if n == 1 else 'them'}, `gridrun cancel {m} --state {other}` cancels "
                f"{'it' if n == 1 else 'them'}, or put `state_dir:` back as it was (the state in {self.state_dir}) "
                f"and `gridrun run` collects {'it' if n == 1 else 'them'} at no new cost")

    def _done_here(self) -> str:
        """What a run of the manifest in the state it names now would do with them: send again those that state
        has no record of, paid a second time, and follow none of them."""
        n = len(self.keys)
        again = self.keys if self.sent_again is None else [k for k in self.keys if k in self.sent_again]
        them = "it" if n == 1 else "them"
        if len(again) == n:
            return f"would send {them} again, paid a second time"
        if not again:
            return (f"would send none of {them} again, {'it is' if n == 1 else 'they are'} already done or ended in "
                    f"the state it names now, but would not follow {them}")
        shown = ", ".join(again[:3]) + (", ..." if len(again) > 3 else "")
        return (f"would send {len(again):,} of them again ({shown}), paid a second time, the other "
                f"{n - len(again):,} being already done or ended in the state it names now, and would follow "
                "none of them")

    def message(self) -> str:
        """Why a run of the manifest in the state it names now is refused: it would send those jobs that state has
        no record of again, paid, and would not follow any of them."""
        n = len(self.keys)
        return (f"{n:,} job{'' if n == 1 else 's'} of this manifest {'is' if n == 1 else 'are'} paid for and in "
                f"flight in another state than the one it names now ({self.state_dir}, its `state_dir:` changed "
                f"since): a run here {self._done_here()}. "
                f"{self.place()[0].upper()}{self.place()[1:]}; or pass --leave-in-flight to run here anyway (what "
                f"{'it renders' if n == 1 else 'they render'} there is then not downloaded)")

    def warning(self) -> str:
        """What `plan` and `status` warn of them: a run of the manifest would refuse to start (`message`)."""
        return self.message().replace("a run here would", "`gridrun run` would refuse to start: it would", 1)


def in_other_state(manifest: Path, state_dir: Path, outputs_dir: Path) -> OtherState | None:
    """The jobs of the manifest file `manifest` in flight or of unknown outcome in the state the lock of its output
    folder `outputs_dir` names (`outputs_writer`), when that is another state than `state_dir` and a run of this
    very file wrote the folder last: a `state_dir:` set or changed since, which leaves them where only a command
    given that state reaches them. None otherwise, or when that state cannot be read."""
    writer = outputs_writer(outputs_dir)
    if writer is None:
        return None
    other = Path(writer["state_dir"])
    if other == state_dir or not (other / "state.db").is_file() or _same_file(other / "state.db",
                                                                            state_dir / "state.db"):
        return None
    if Path(writer["manifest"]) != Path(os.path.abspath(manifest)) and not _same_file(writer["manifest"], manifest):
        return None
    try:
        with Store(other / "state.db", readonly=True) as store:
            run = store.latest_run_of_file(Path(writer["manifest"]))
            if run is None:
                return None
            rows = store.in_flight_rows(run.manifest_name, FOLLOWED)
        recorded: set[str] = set()
        if rows and (state_dir / "state.db").is_file():
            with Store(state_dir / "state.db", readonly=True) as here:
                # the state named now, a copy of that one (moved to another disk), follows them itself: not left
                followed = {(r["key"], r["provider_id"]) for r in here.in_flight_rows(run.manifest_name, FOLLOWED)}
                rows = [r for r in rows if (r["key"], r["provider_id"]) not in followed]
                # done or ended in the state named now (a run of it there since): a run there sends them no more
                if rows:
                    recorded = {h for h, r in here.jobs_by_hash([r["hash"] for r in rows]).items()
                                if r["state"] != S.PLANNED.value}
    except (StateError, sqlite3.Error, OSError):
        return None
    if not rows:
        return None
    return OtherState(state_dir=other, run_id=run.id, keys=[r["key"] for r in rows], manifest=Path(manifest),
                      sent_again=tuple(r["key"] for r in rows if r["hash"] not in recorded))


def check_other_state(plan: Plan) -> None:
    """Refuse to start when jobs of this manifest file are in flight in the state its output folder's lock names,
    another than the one it names now (`in_other_state`): the run would send them again, paid twice."""
    other = in_other_state(plan.manifest.path, plan.state_dir, plan.outputs_dir)
    if other is not None:
        raise InFlightError(other.message())


def _writes_into(state_dir: Path, folder: Path) -> bool:
    """Whether the runs of the state in `state_dir` were recorded writing into the output folder `folder`; a
    state that cannot be read is taken at the folder's word that it does."""
    try:
        with Store(state_dir / "state.db", readonly=True) as store:
            return store.wrote_into(folder)
    except (StateError, sqlite3.Error):  # damaged, of a newer gridrun, held: warn as the record says
        return True


def check_budget(
    submit: Sequence[Job], in_flight: Sequence[Job] = (), *, budget_micros: int | None, allow_partial: bool = False,
    billing: Billing | None = None, resend: Sequence[Job] = (),
) -> None:
    """Refuse to start when the jobs to submit, with those an earlier run left in flight (this run follows
    and pays for them), pass the budget; unless `allow_partial`, which stops submitting at it. After an earlier
    run's renders were billed clearly above their estimates (`billing`), the estimates count at that ratio.
    `resend`: the jobs of unknown outcome `retry --unknown` sends again, jobs to send as those to submit are."""
    sends = [*submit, *resend]
    estimated = sum(j.cost_micros for j in sends) + sum(j.cost_micros for j in in_flight)
    need = scaled(estimated, billing)
    if budget_micros is not None and need > budget_micros and not allow_partial:
        fit = len(fitting(sends, in_flight, budget_micros, billing))  # as --allow-partial sends them
        figures = {"cost_micros": need, "budget_micros": budget_micros, "jobs": len(sends),
                   "in_flight": len(in_flight), "jobs_fit": fit}
        # the jobs' estimates, and what they cost billed as the earlier run's were
        above = billing is not None and need != estimated
        cost = (f"{usd_text(need)} (estimated at {usd_text(estimated)}, counted at {billing.said()})"
                if billing is not None and above else usd_text(need))
        fix = (f"the price table prices these renders too low: correct it (a capabilities file's prices), or raise "
               f"run.budget_usd or --budget (`--budget {math.ceil(need / 10_000) / 100:.2f}`)" if above
               else "raise run.budget_usd or --budget")
        if not sends:
            # nothing new to send: the run would only follow the jobs in flight, whose renders count until they end
            n = len(in_flight)
            jobs, them, they, end = (f"{n:,} jobs", "them", "they are", "their renders end") if n != 1 else (
                "1 job", "it", "it is", "its render ends")
            raise BudgetError(
                f"nothing new to submit, but the {jobs} an earlier run left in flight would cost {cost}, "
                f"above the budget of {usd_text(budget_micros)}: already sent, {they} counted against the budget "
                f"of the run that collects {them} until {end}; `gridrun run --budget "
                f"{math.ceil(need / 10_000) / 100:.2f}` (or --allow-partial, which sends nothing new) collects "
                f"{them}, `gridrun cancel` cancels {them} at the provider", **figures,
            )
        parts = [f"{len(submit):,} job{'s' if len(submit) != 1 else ''} to submit"] if submit or not resend else []
        if resend:
            parts.append(f"{len(resend):,} job{'s' if len(resend) != 1 else ''} of unknown outcome to send again "
                         "(may pay twice)")
        if in_flight:
            parts.append(f"{len(in_flight):,} in flight")
        jobs = " and ".join(parts) if len(parts) < 3 else f"{parts[0]}, {parts[1]} and {parts[2]}"
        raise BudgetError(
            f"{jobs} would cost {cost}, above the budget of "
            f"{usd_text(budget_micros)}; {fix}, or pass --allow-partial "
            "to run up to the budget", **figures,
        )


# How old (seconds) a temporary file of gridrun's whose writer is gone must be to be removed: a writer on another
# machine (a shared folder) is not seen by its process id, and its files are younger than this as it writes them.
STALE_TEMP_AGE = 60.0


def remove_stale_temps(paths: Iterable[str | Path], folders: Iterable[str | Path] = ()) -> list[str]:
    """Remove the temporary files of gridrun's (`own_temp`) among `paths`, and in `folders` (listed once each),
    whose writer is gone: a write killed before its rename (a kill -9, a power cut) leaves one, whole or in part,
    under a name no later write takes (the process and thread ids in it). Only where the process its name gives
    is not running here, nor this one, and the file is not modified for STALE_TEMP_AGE; any other file is left
    as it is. Returns those removed; one that cannot be is left (a read-only folder)."""
    found = [os.fspath(p) for p in paths]
    for folder in folders:
        try:
            with os.scandir(folder) as entries:
                found.extend(e.path for e in entries if own_temp(e.name) is not None)
        except OSError:
            continue
    removed = []
    now = time.time()
    for path in dict.fromkeys(found):
        pid = own_temp(os.path.basename(path))
        if pid is None or pid == os.getpid():
            continue
        try:
            st = os.lstat(path)
            if (not stat.S_ISREG(st.st_mode) or now - st.st_mtime < STALE_TEMP_AGE
                    or _running(pid, since=st.st_mtime)):
                continue
            os.unlink(path)
        except OSError:
            continue
        removed.append(path)
    return removed


def _running(pid: int, *, since: float) -> bool:
    """A process of id `pid` that may have written a file last modified at `since` runs on this machine (or may:
    where it cannot be told, as on Windows). Not one dead but not yet reaped, nor one started after that time (the
    id reused)."""
    if pid <= 0 or sys.platform == "win32":  # there os.kill ends the process
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's
        pass
    except (OSError, OverflowError, ValueError):
        return True
    if process_state(pid) in ("Z", "X"):
        return False
    started = process_start(pid)
    return started is None or started <= since + PID_CLOCK_SLACK
