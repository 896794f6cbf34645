"""What the state store hands out: frozen records of runs and jobs, and snapshots of a run."""

from __future__ import annotations

import json
import os
import re
import socket
import sqlite3
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Mapping

from .jobs import (
    BILLED_FACTOR, BilledAbove, Billing, billed_above, counted_cost, format_value, job_key, key_ignored_note, usd_text,
)
from .limits import statvfs_near

__all__ = ["GONE_EXIT", "RUN_STATUSES", "EarlierTake", "JobRecord", "RunRecord", "RunSummary", "Snapshot", "job_record", "run_exit", "run_record"]


# How a run can end, and the exit code each gives (`gridrun run`, and `status --watch` once it saw the run end).
RUN_STATUSES = {
    "done": 0,          # every job done
    "cancelled": 0,     # every job done but those cancelled on request (`gridrun cancel`): the user's decision
    # nothing failed, but jobs still rendering at their timeout were left (and, where they held every provider slot,
    # the jobs still to send were not sent): `gridrun run` collects them (and sends those)
    "incomplete": 4,
    # some jobs failed, were rejected, are of unknown outcome, expired, or were cancelled at the provider not by
    # `gridrun cancel`; or the run stopped on an error
    "failed": 1,
    "budget": 3,        # stopped by the budget with jobs not sent
    "refused": 1,       # stopped: the provider refused the account (402 balance, 401 key) or model (404), none failed
    "interrupted": 130,  # Ctrl-C, SIGTERM, a hangup
    "crashed": 1,       # ended by an error it could not record otherwise (a later run also marks a killed run so)
    "recovered": 0,     # `gridrun recover`: sent nothing; recorded done the jobs whose videos the output folder held
}
# What `status --watch` exits with when the run's process is gone before it recorded its end (killed, crashed).
GONE_EXIT = 5


def billing_of(jobs: Iterable[JobRecord], estimates: Mapping[str, int] | None = None, *,
               run_id: int | None = None) -> Billing | None:
    """What the completed renders among `jobs` were billed against their estimates, those whose figures were
    reported and counted as billed (not doubted), whichever run paid them (`jobs.Billing`: the highest ratio,
    with the run that paid that job); None when there are none. `estimates`: job hash -> the estimate to weigh its
    bill against instead of the one it was sent with (the plan's now: a price table corrected since counts as
    corrected). A done take no run paid, which `gridrun recover` adopted counting the bill its sidecar records
    (`cost_micros` that figure), is weighed too, as billed by `run_id` (the run that recorded it)."""
    highest: Billing | None = None
    for j in jobs:
        if j.state in ("failed", "cancelled") or j.cost_reported_micros is None or j.cost_doubted:
            continue
        payer = j.paid_run
        if payer is None and j.state == "done" and j.cost_micros == j.cost_reported_micros:
            payer = run_id  # adopted by `gridrun recover`, its bill counted
        elif payer is None:
            continue
        estimate = (estimates or {}).get(j.hash) or j.cost_estimate_micros
        if estimate <= 0 or j.cost_reported_micros > BILLED_FACTOR * estimate:
            # above BILLED_FACTOR of its estimate, a bill counts only at gridrun's own price of a job a capabilities
            # file of the manifest prices lower (`counted_cost`): such jobs are weighed at that price instead
            # (`Plan.lowered`, `Store.raise_estimates`), not the others at this ratio
            continue
        seen = Billing(j.cost_reported_micros, estimate, payer)
        if highest is None or seen.above(highest):
            highest = seen
    return highest


def run_exit(status: str, *, over_budget: bool) -> int:
    """A run's exit code: its status's (RUN_STATUSES), but the budget's (3) for a run that would exit 0 having
    spent more than its budget (the provider billed the jobs sent above their estimates, or jobs an earlier run
    left in flight cost more than it): its jobs are done, the money went past the cap, and a script that reads
    0 as "as planned" is told otherwise. A run that ended otherwise keeps its own code, the more pressing one."""
    code = RUN_STATUSES.get(status, 1)
    return RUN_STATUSES["budget"] if code == 0 and over_budget else code


@dataclass(frozen=True, slots=True)
class EarlierTake:
    """The video of a done job that a re-render (--force, retry) is to replace, still at its path: the job's
    current take until the new one arrives (which moves it aside), or for good when the re-render is cancelled
    or fails."""

    output_path: str                 # absolute
    sha256: str
    cost_micros: int | None          # what it counted when it was made
    run: int | None                  # the run that made it (downloaded it)
    # False: on an earlier run's page, a take a later render replaced that nothing kept (`output_path`: where it was)
    kept: bool = True


# What a job's note says while its polls fail, as its run goes on (`executor`); once the run is over (ended, or its
# process gone), the failures are said as past: no one polls any more (`stats.problems`).
POLLS_FAIL = "polls fail, still polling: "
POLLS_FAILED = "polls failed: "


@dataclass(frozen=True, slots=True)
class JobRecord:
    """One job of a run, as stored."""

    id: int
    key: str
    sweep: str | None
    hash: str
    values: Mapping[str, Any]        # the matrix values that made this job (what varies)
    params: Mapping[str, Any]        # the resolved request parameters
    state: str
    output_path: str                 # absolute; an earlier run's done job: where its video is now (`replaced`)
    cost_estimate_micros: int
    cost_micros: int | None          # what its render counts against the budget (`counted_cost`), once known
    attempts: int
    provider_id: str | None
    error: str | None
    sha256: str | None
    size: tuple[int, int] | None     # render width, height
    duration: float | None
    created_at: float
    submitted_at: float | None
    completed_at: float | None       # completion seen at the provider
    downloaded_at: float | None
    cached_from_run: int | None      # the run whose output this job reuses
    billed_run: int | None = None    # the run that saw the current attempt billed, else the one that sent it
    sent_run: int | None = None      # the run that sent the current attempt (None: none sent, or not known)
    cost_reported_micros: int | None = None  # the provider's figure as reported (None: none, or done before kept)
    render_span: float | None = None  # how long its render took, bounded by the provider's stamps (None: unknown)
    replaced: bool = False           # done in an earlier run whose video a later render replaced and nothing kept:
                                     # `output_path` holds another video, and no file is this run's
    missing: bool = False            # of `replaced`: no file at all is at `output_path` (deleted, not edited)
    # of `replaced`: a later render of the job (another manifest's, sharing the state) is its take now, which a run
    # does not fetch this one back for; else the file at `output_path` was edited or replaced since
    later_take: bool = False
    # of an earlier run's done job whose `output_path` names where its video is now (set aside under .runs/, kept
    # by a later render): the path the run wrote it to, where a later run's job of another key may have written
    # its own; None where `output_path` is that path
    written_path: str | None = None
    # a job re-rendered (planned again or in flight) whose earlier video is still at its path: that take
    earlier: EarlierTake | None = None
    # failed in this run at the provider, whose only take is a simulator's placeholder made at another endpoint,
    # still at `output_path`: no video of this provider's, so no row names that file as the job's output
    placeholder: bool = False
    # of its current attempt (for a done job, the one that made its video): the provider of the run that sent it, the
    # endpoint it was sent to ("in process": the simulator built in), and whether a simulator answered there (its
    # render a placeholder, nothing paid); None where not known (never sent, or sent before gridrun kept where)
    sent_by: str | None = None
    endpoint: str | None = None
    simulated: bool | None = None
    # of a job that ended badly (failed, rejected, unknown, expired, cancelled): when it reached that state, its
    # event's time; None otherwise, or where the state keeps no such event
    ended_at: float | None = None

    @property
    def counted_micros(self) -> int | None:
        """What the job's current attempt counted against the budget (`cost_micros`); None while nothing was
        paid for it: never sent, in flight, or ended without a charge (a failed render reported at $0, whose
        `cost_micros` is 0)."""
        if self.state != "done" and not self.cost_micros:
            return None
        return self.cost_micros

    @property
    def paid_run(self) -> int | None:
        """The run whose spending counts what the job's current attempt cost: for a job cached from an earlier
        run, that run (or the one before it that paid). None while nothing was paid for it (`counted_micros`)."""
        if self.state != "done" and self.counted_micros is None:
            return None
        return self.billed_run if self.billed_run is not None else self.cached_from_run

    @property
    def cost_doubted(self) -> bool:
        """Whether the provider's figure for the current attempt was outside the plausible range of the
        estimate (`counted_cost`), so that the estimate counts instead of it: a failed or cancelled render's figure
        is judged as one that made no video, as the run and `gridrun cancel` judged it."""
        if self.cost_reported_micros is None:
            return False
        completed = self.state not in ("failed", "cancelled")
        # a figure the run counted as it was reported was not doubted: one within the factors of gridrun's own
        # price of a job a capabilities file of the manifest priced lower (`counted_cost`'s `own`)
        return counted_cost(self.cost_estimate_micros, self.cost_reported_micros, completed=completed)[1] \
            and self.cost_micros != self.cost_reported_micros

    @property
    def billed_above(self) -> bool:
        """Whether the provider's figure for the current attempt, counted as billed, is above the upper factor of
        COST_FACTORS of the estimate (`jobs.billed_above`): the price table most likely prices it too low."""
        completed = self.state not in ("failed", "cancelled")
        return billed_above(self.cost_estimate_micros, self.cost_reported_micros, completed=completed)

    @property
    def render_seconds(self) -> float | None:
        """How long the render took: bounded by the provider's stamps where they were known (`render_span`), else
        from sending it until its completion was seen (which counts the poll schedule)."""
        if self.render_span is not None:
            return self.render_span
        if self.submitted_at is None or self.completed_at is None:
            return None
        return max(0.0, self.completed_at - self.submitted_at)

    @property
    def cost_usd(self) -> float:
        micros = self.cost_micros if self.cost_micros is not None else self.cost_estimate_micros
        return micros / 1_000_000


# What a run that stopped because a disk it writes (its videos', its state's) had no room left records as the cause
# it stopped on (`RunRecord.stopped_by`; `status --json` and exports: `stopped_by`).
DISK_FULL = "disk-full"


@dataclass(frozen=True, slots=True)
class RunRecord:
    """One `gridrun run` (or plan recorded for one)."""

    id: int
    manifest_name: str
    manifest_path: str
    outputs_dir: str
    provider: str
    model: str
    axes: tuple[str, ...]            # matrix keys in declaration order
    started_at: float
    ended_at: float | None
    status: str                      # running, or how it ended (a RUN_STATUSES key)
    budget_micros: int | None
    pid: int | None
    host: str | None = None
    seen_at: float | None = None     # when the run last showed it was alive (None: not yet, or an older gridrun)
    argv: tuple[str, ...] = ()       # the command line that started it ("run", the manifest, flags); () from Python
    # Seconds from its start to its recorded end by a clock a step of the wall clock does not move (None: not
    # recorded, as for a run a later one marked crashed, or one an older gridrun ended)
    duration: float | None = None
    # Whether the runner lock of the state folder it was read from is free now (None: not read from one): a run
    # holds it while it runs, so a run recorded as running whose lock is free is gone, whatever host and pid it
    # recorded.
    lock_free: Callable[[], bool] | None = field(default=None, compare=False, repr=False)
    # The process (pid, host) the runner lock's file names while a runner holds that lock now; None where none does,
    # that cannot be told, or the file names none (the callable None: not read from a state folder).
    lock_holder: Callable[[], tuple[int, str] | None] | None = field(default=None, compare=False, repr=False)
    # The state folder it was read from (None: not known), whose disk `gone_note` looks at.
    state_folder: str | None = field(default=None, compare=False, repr=False)
    # The cause it stopped on, recorded as it ended, where it was not its jobs' (DISK_FULL); None: none recorded.
    # Its `status` stays as every gridrun reads it (`crashed`, `failed`, ...); `stopped_note` says what happened
    # and what to do.
    stopped_by: str | None = None
    stopped_note: str | None = None

    def wall_seconds(self, end: float) -> float:
        """How long the run took, or has had up to `end` (a time by the state's clock): the duration it recorded
        once it ended, which a step of the wall clock meanwhile does not change, else `end` less its start."""
        if self.ended_at is not None and self.duration is not None:
            return self.duration
        return max(0.0, end - self.started_at)

    def process_gone(self) -> bool:
        """The run is recorded as running by a process that no longer exists: it was killed or crashed before
        it could record its end (the next `gridrun run` marks it `crashed`). Told by the runner lock of its state
        folder, free (no run holds it, on any host sharing the folder); else, on this machine, by its pid: no
        process has it, or the one that now has it started after the run did (Linux: /proc), unless it holds the
        lock: /proc tells a process's start by the wall clock as it stands now, so a step of that clock forward since
        the run began makes the run's own process look started after it. A run recorded on another host (a hostname
        changed since, a container) whose lock is held, or where locks cannot be had, cannot be told gone."""
        if self.ended_at is not None or self.status != "running" or not self.pid:
            return False
        here = self.host == socket.gethostname()
        if here and self.pid == os.getpid():
            return False  # this very process
        gone = self._pid_gone() if here else None
        if gone == "dead":
            return True
        if gone == "later":
            return self.lock_holder is None or self.lock_holder() != (self.pid, self.host)
        return self.lock_free is not None and self.lock_free()

    def _pid_gone(self) -> str | None:
        """Whether the run's pid names no process of this machine now, or a dead one ("dead"), or one that started
        after the run did, by the clock as it stands now ("later"); None otherwise."""
        assert self.pid is not None
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return "dead"
        except OSError:  # alive, owned by someone else
            pass
        fields = _stat_fields(self.pid)
        if fields is not None and fields[0] in (b"Z", b"X"):  # dead, its parent has not reaped it yet
            return "dead"
        started = _started(fields)
        return "later" if started is not None and started > self.started_at + PID_CLOCK_SLACK else None

    @property
    def shown_status(self) -> str:
        """The status `status` shows: as recorded, but `gone` for a run recorded as running whose process is
        gone (killed or crashed before it could record its end)."""
        return "gone" if self.process_gone() else self.status

    def stop_cause(self, *, resumes: bool = True) -> tuple[str | None, str | None]:
        """The cause it stopped on, not its jobs', and what to do (`stopped_by`, `stopped_note`), as recorded; for a
        run gone without recording its end (a full state disk stops a run and keeps it from recording that too) with
        a disk of its all but full now, DISK_FULL inferred, its note (`gone_note`) saying "likely" (`resumes` False:
        a run of the manifest as it is now would refuse to resume it, so the note proposes no `gridrun run`);
        (None, None) where none is known."""
        if self.stopped_by is not None or not self.process_gone():
            return self.stopped_by, self.stopped_note
        if _full_disks((self.state_folder, self.outputs_dir)):
            return DISK_FULL, self.gone_note(resumes=resumes)
        return None, None

    def gone_note(self, *, left: bool = True, unknown: int = 0, resumes: bool = True) -> str:
        """What `status` says of a run whose process is gone: where the disk holding its state folder or its output
        folder is full now, that as the likely cause (the run stopped as it could not write, and could not record
        that either), with what to do. `left`: the run's jobs are not all settled (`gridrun cancel` may have settled
        every one since): else nothing is left to resume, and no `gridrun run` is proposed; `unknown`, of its jobs
        settled, those of unknown outcome (a cancel that found the provider no longer had them), which may have
        been paid for, and which `gridrun retry --unknown` sends again. `resumes`: a run of the manifest as it is now
        resumes it; False where it would refuse (the step `status` gives after it), so no `gridrun run` is proposed."""
        if not left and unknown:
            jobs = f"{unknown:,} job{'s' if unknown != 1 else ''}"
            it, them = ("it", "it") if unknown == 1 else ("they", "them")
            return (f"its process (pid {self.pid}) is gone without recording its end; no job of it is in flight "
                    f"since, but {jobs} of it {'is' if unknown == 1 else 'are'} of unknown outcome (the provider no "
                    f"longer had {them}; {it} may have been paid for, and {'stays' if unknown == 1 else 'stay'} "
                    f"reserved): `gridrun retry --unknown` sends {them} again (may pay twice)")
        if not left:
            return (f"its process (pid {self.pid}) is gone without recording its end; every job of it has settled "
                    "since (cancelled, done or failed), so nothing is left to resume")
        full = _full_disks((self.state_folder, self.outputs_dir))
        if full:
            return (f"its process (pid {self.pid}) is gone without recording its end; {full}: likely what stopped it "
                    "(a run stops when it cannot write its state or its videos); free space there"
                    + (", then `gridrun run` resumes it" if resumes else ""))
        # Not said to be killed: a run whose state's disk filled stops on its own, and cannot record that either.
        return (f"its process (pid {self.pid}) is gone without recording its end (killed, crashed, or stopped by a "
                "state it could not write, which it said as it stopped)" + ("; `gridrun run` resumes it" if resumes
                                                                             else ""))


def _free_bytes(folder: str) -> int | None:
    """The bytes free to this user on the disk holding `folder` (or the nearest folder above it that is there);
    None where not known (no `os.statvfs`, as on Windows)."""
    st = statvfs_near(folder)
    return None if st is None else st.f_bavail * st.f_frsize


# Free space below which a disk is taken for full: SQLite says "disk I/O error", not "database or disk is full",
# when it cannot grow the write-ahead log's index (state.db-shm, 32 KiB at a time) or map it.
NEARLY_FULL = 1024 * 1024


def _full_disks(folders: Sequence[str | None]) -> str:
    """What is said of those of `folders` on a disk all but full (less than NEARLY_FULL free, where SQLite can no
    longer grow its files): "the disk holding F has N bytes free", each disk once; "" where none is."""
    said: list[str] = []
    seen: set[int] = set()
    for folder in folders:
        if not folder:
            continue
        free = _free_bytes(folder)
        if free is None or free >= NEARLY_FULL:
            continue
        try:
            disk = os.stat(folder).st_dev
        except OSError:
            disk = -1 - len(said)
        if disk not in seen:
            seen.add(disk)
            said.append(f"the disk holding {folder} has {free:,} bytes free")
    return " and ".join(said)


# The start of a process is known to the second (the boot time's resolution), and the wall clock may be
# stepped meanwhile: a process that started this much after a run did is surely not the run's.
PID_CLOCK_SLACK = 5.0
LOCAL_TIME = "%Y-%m-%d %H:%M:%S"


def local_time(t: float, *, offset: bool = True) -> str:
    """The moment `t` (seconds since the epoch) as this machine's wall clock shows it, with its offset from UTC
    (`2026-11-01 01:30:03 -0400`): without it, an hour of a DST fall-back, or a state read in another time zone,
    reads as another moment."""
    return time.strftime(f"{LOCAL_TIME} %z" if offset else LOCAL_TIME, time.localtime(t))


def utc_offset(t: float) -> str:
    """This machine's offset from UTC at the moment `t` (`-0400`)."""
    return time.strftime("%z", time.localtime(t))


def _stat_fields(pid: int) -> list[bytes] | None:
    """The fields of /proc/<pid>/stat after the command name (the state first), or None where there are none."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return f.read().rsplit(b")", 1)[1].split()
    except (OSError, IndexError):
        return None


def _started(fields: list[bytes] | None) -> float | None:
    """When the process of these stat fields started (seconds since the epoch), or None."""
    if fields is None:
        return None
    try:
        with open("/proc/stat", "rb") as f:
            boot = next(int(line.split()[1]) for line in f if line.startswith(b"btime "))
        return boot + int(fields[19]) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError, StopIteration):
        return None


def process_state(pid: int) -> str | None:
    """Process `pid`'s state letter (R, S, Z for a zombie, ...), where /proc tells; None elsewhere."""
    fields = _stat_fields(pid)
    return fields[0].decode("ascii", "replace") if fields else None


def process_start(pid: int) -> float | None:
    """When process `pid` started (seconds since the epoch), where /proc tells; None elsewhere."""
    return _started(_stat_fields(pid))


# Where a done job's video came from for a run (`Store._origins_sql`, the one answer every place that tells it
# reads): found cached from an earlier run; made by the run (an attempt it saw billed); left untouched where the run
# could not copy it to its new path (a full disk); made earlier, kept (a re-render here cancelled or failed put the
# job back as it was, or the run fetched it again after it was edited or deleted).
CACHED, MADE, NOT_COPIED, EARLIER = "cached", "made", "not-copied", "earlier"
ORIGINS = (CACHED, MADE, NOT_COPIED, EARLIER)


@dataclass(frozen=True, slots=True)
class Failures:
    """The failed (or refused) attempts of a job that ended failed or rejected, in figures (`Snapshot.failures`):
    what `status` says in words of one refused alike every time."""

    code: str | None   # the provider's code in its last error (`options.error_code`); None: none found
    attempts: int      # its attempts that ended failed or rejected
    same_code: bool    # every attempt of it ended with that same code


@dataclass(frozen=True, slots=True)
class EarlierBilled:
    """A billed attempt of a job other than its current one (`Snapshot.earlier_billed`)."""

    run: int | None    # the run its charge counts for (the one that saw it billed)
    micros: int        # what it was billed, as counted
    state: str         # how it ended: failed, cancelled, expired
    # sent after the job's current take: a re-render (--force, retry) cut short or failed, the job left as it was,
    # its video kept; else an attempt before that take, which was sent again
    rerender: bool = False


@dataclass(frozen=True, slots=True)
class Snapshot:
    """A run and its jobs, read at one moment."""

    run: RunRecord
    jobs: tuple[JobRecord, ...]
    counts: Mapping[str, int]
    spent_micros: int                # by this run's attempts
    reserved_micros: int
    taken_at: float = field(default_factory=time.time)
    # Of a run going on, as its heartbeat last recorded them (`Store.run_checks`, every few seconds), wall clock: when
    # it next asks the provider about a job, while every job in flight waits for its poll (None: not so), and when
    # the provider last answered one of its requests (None: not yet); both None once it ended, or from an older gridrun
    next_check_at: float | None = None
    answered_at: float | None = None
    # Of a run going on whose jobs have not yet ended enough to tell a pace (`stats.ETA_AFTER`), as its heartbeat last
    # recorded it, wall clock: when the jobs in flight and those not sent yet are expected to have ended by their
    # render times (the run's own `eta ~…`, `RunStatistics.eta_expected`); None otherwise, or from an older gridrun
    expected_end_at: float | None = None
    # Of a run going on, as its heartbeat last recorded it, wall clock: when the pause every request waits out because
    # the provider asked (`RunStatistics.paused`) ends, and the HTTP status that asked for it (429; a 502, 503 or 504);
    # None both while there is none worth saying, once the run ended, or from an older gridrun
    paused_until: float | None = None
    paused_by: int | None = None
    manifest_spent_micros: int = 0     # by every run of the manifest (a resumed run follows earlier runs' jobs)
    manifest_reserved_micros: int = 0
    manifest_latest_run: int | None = None  # the manifest's latest run when taken: the two figures above are as of it
    # run id -> its manifest's name, for the runs of other manifests (sharing the state) that paid for or made jobs
    # of this run: a page names them "run 10 of grid", not as runs of its own manifest
    other_runs: Mapping[int, str] = field(default_factory=dict)
    stopping: str | None = None        # why the run stopped sending new jobs, as it recorded it (None: it did not)
    ended: tuple[float, ...] = ()      # when each job that ended in this run first did (what its pace counts)
    rerenders_cancelled: int = 0       # done jobs whose re-render this run sent or saw was cancelled: done as before
    rerenders_cancelled_keys: tuple[str, ...] = ()  # their keys, in plan order
    # (key, error) of the done jobs whose re-render this run sent or saw failed or refused: done as before
    rerenders_failed: tuple[tuple[str, str], ...] = ()
    # job id -> where its video, once done, came from for this run (`ORIGINS`, `Store._origins_sql`): the one answer
    # the counts below, `made_earlier` and `made_here` read
    origins: Mapping[int, str] = field(default_factory=dict)
    # keys of the done jobs marked cached (cached_from_run) whose re-render this run sent or saw cancelled or failed,
    # put back as they were (of `origins`, made earlier): their videos made earlier, which the run did not find
    # cached (`status --runs` says so)
    made_earlier: tuple[str, ...] = ()
    # of the done jobs, as `status --runs` counts them (`RunSummary`): those the run found cached, and those whose
    # video an earlier run made (fetched again after it was edited or deleted, or kept when a re-render here was
    # cancelled or failed); the run's report header says the same
    found_cached: int = 0
    made_earlier_count: int = 0
    # keys of the done jobs the run was to render again (--force; event `rerenders-queued`) and has not: their video
    # an earlier run's, as it was (of `origins`, made earlier, not in `made_earlier`). While the run goes on, to be
    # re-rendered; once it stopped, not re-rendered: it stopped before sending them (counted in
    # `made_earlier_count`, which `status --runs` shows)
    rerenders_unsent: tuple[str, ...] = ()
    # keys of the run's done jobs that the manifest's latest --force run (`force_run`) was to render again and that no
    # attempt has been made for since (`Store.force_unsent`): what `gridrun run --force --resume` re-renders. Read by
    # `status` (`api.status`) of an ended run alone; empty elsewhere
    force_unsent: tuple[str, ...] = ()
    force_run: int | None = None
    # (key, the run that sent it, its estimate) of jobs earlier runs of the manifest sent, rendering still, that this
    # run does not have (left by --leave-in-flight): the manifest's reserve counts them, `gridrun cancel` stops them
    left_rendering: tuple[tuple[str, int, int], ...] = ()
    # (key, the run that sent it, what it counted) of jobs earlier runs of the manifest sent, rendered and paid but not
    # downloaded, that this run does not have: the manifest put back as that run had it downloads them
    left_rendered: tuple[tuple[str, int, int], ...] = ()
    # (key, the run that sent it, its estimate) of jobs of unknown outcome earlier runs of the manifest sent, not
    # settled: the manifest's reserve counts them (they may have been paid), this run's does not; `gridrun retry
    # --unknown` settles them
    left_unknown: tuple[tuple[str, int, int], ...] = ()
    # (key, the run that sent it, its estimate) of attempts of unknown outcome runs of the manifest sent that `gridrun
    # retry --unknown` sent again (their videos lost by the provider, or no request log to look them up in): settled
    # as failed, in no spent and no reserve, yet the provider may have billed them
    possibly_billed: tuple[tuple[str, int, int], ...] = ()
    # of those estimates, what attempts a simulator answered make up: made-up figures, nothing paid
    possibly_billed_simulated_micros: int = 0
    # key -> (attempts, code, state) of the jobs that ended failed or rejected after more than one attempt, each of
    # which ended with the same provider's code (`Store._repeated`): the same request refused alike every time
    repeated: Mapping[str, tuple[int, str, str]] = field(default_factory=dict)
    # key -> the failed attempts, in figures, of each job that ended failed or rejected (`Store._failures`)
    failures: Mapping[str, Failures] = field(default_factory=dict)
    # key -> the billed attempts of each job, other than its current one, that left it no video (`Store._earlier_billed`):
    # a render failed with a charge that a failure retry or a retry sent again, spent though no figure of the current
    # attempt has it
    earlier_billed: Mapping[str, tuple[EarlierBilled, ...]] = field(default_factory=dict)
    left_copies: Mapping[int, str] = field(default_factory=dict)  # run id -> its manifest copy, for the three above
    copies_missing: tuple[int, ...] = ()  # of those runs, the ones whose copy is not there (removed by hand)
    # the folders of the manifests of the runs of this manifest's name (the project moved, or copied whole with its
    # state, to another folder since), this run's first: a job's local input image, held by its absolute path, is
    # shown by its place in the folder of the manifest that sent it
    manifest_folders: tuple[str, ...] = ()
    # done jobs a simulator made at another endpoint whose re-render this run did not send (its stop): left as they
    # were, which a plain `gridrun run` re-renders: their keys
    placeholders_left: tuple[str, ...] = ()
    # (key, error) of the done jobs whose only take is a placeholder a simulator made at another endpoint and whose
    # render here (plan's "render again", not --force) the provider failed or refused: failed in this run (so in
    # `jobs` and `counts`), the placeholder kept at its path, which a plain `gridrun run` renders again
    placeholders_failed: tuple[tuple[str, str], ...] = ()
    # where the run sent its creates, each once ("in process": the simulator built in), and whether a simulator
    # answered there (its renders placeholders, its figures made up: nothing paid)
    endpoints: tuple[tuple[str, bool], ...] = ()
    # of `spent_micros` and `manifest_spent_micros`, what simulators billed: nothing paid at a provider
    spent_simulated_micros: int = 0
    manifest_spent_simulated_micros: int = 0
    # of the run's jobs in flight or of unknown outcome, those sent to another endpoint than the manifest's now
    # (`plan.sent_elsewhere`): key -> that endpoint; a run there collects them, a run here refuses over them. Read
    # only by `runner.status` of a manifest (empty otherwise)
    sent_elsewhere: Mapping[str, str] = field(default_factory=dict)
    endpoint: tuple[str, str] = ("", "")  # with `sent_elsewhere`: the manifest's endpoint now, and where it comes from
    # with `sent_elsewhere`: each of those endpoints -> how to point the manifest's base URL back there, in words
    point_back: Mapping[str, str] = field(default_factory=dict)
    # of the run's jobs in flight or of unknown outcome, those a simulator at another endpoint than the manifest's
    # now answered (`plan.simulator_left`): key -> that endpoint; nothing was paid there, and a run here sends them
    # anew. Read only by `runner.status` of a manifest (empty otherwise)
    sent_anew: Mapping[str, str] = field(default_factory=dict)
    # of the run's jobs in flight or of unknown outcome sent at the endpoint now, those sent with another API key than
    # the one set now (`plan.sent_with_another_key`): key -> that key's fingerprint; a run with that key (or, the key
    # now being of the same account, `run --same-account`) collects them, a plain run refuses over them. Read only
    # by `runner.status` of a manifest (empty otherwise)
    sent_with_key: Mapping[str, str] = field(default_factory=dict)
    key_var: str = ""  # with `sent_with_key`: the variable that holds the API key
    # For a run not ended: when another process first wrote in the state since the run started (a `gridrun cancel`,
    # which takes the runner lock only once no run holds it, so once the run's process is gone): what is recorded
    # from then on, under the run's id or of its jobs, is not the run's own. None: nothing did.
    others_since: float | None = None
    # What `runner.status` warns of, as `gridrun status` does: the manifest file given did not load, and the state's
    # copy of it, as its latest run had it, was read instead (`api.status_manifest`).
    warnings: list[str] = field(default_factory=list)
    # Where the prices of the run's jobs come from (`capabilities.prices_from`), read only when a job the run paid
    # was billed above its estimate (`billed_above_note`); "" otherwise.
    prices_from: str = ""
    # How many of the run's jobs had a create, sent again with its idempotency key, answered with a video made after
    # the earlier send ended (event key-ignored): an earlier send may have made and billed another
    # (`keys_ignored_note`)
    keys_ignored: int = 0

    def last_record(self) -> float:
        """When the run's own process last recorded anything (a job's move, an event, that it was alive): the end
        of a run whose process died (`ended` counts only what it recorded; `others_since`)."""
        r, until = self.run, self.others_since if self.others_since is not None else float("inf")
        return max([r.started_at, *(t for j in self.jobs for t in (j.submitted_at, j.completed_at, j.downloaded_at)
                                    if t is not None and r.started_at <= t < until), *self.ended, r.seen_at or 0.0])

    def made_here(self, job: JobRecord) -> bool:
        """Whether the job's current attempt is this run's: for a done job, whether the run made its video (of
        `origins`: not found cached, nor made earlier and kept or fetched again, nor left where the run could not
        copy it); for another, whether the run saw it billed, else sent it, as `paid_in_run` counts it. A job with
        no attempt recorded is the run's unless it was cached."""
        if job.state == "done" and job.id in self.origins:
            return self.origins[job.id] == MADE
        return job.billed_run == self.run.id if job.billed_run is not None else job.cached_from_run is None

    def billed_above_note(self) -> str | None:
        """What the run's end, `status`, the report and the export say of the jobs this run paid that the
        provider billed above the upper factor of COST_FACTORS of their estimates (counted as billed); None when
        there are none."""
        above = self.billed_above()
        return None if above is None else above.note

    def keys_ignored_note(self) -> str | None:
        """What the run's end, `status`, the report and the export say of a run in which the provider made two videos
        for one idempotency key (`jobs.key_ignored_note`); None when it did not."""
        return key_ignored_note(self.run.provider, jobs=self.keys_ignored) if self.keys_ignored else None

    def billed_above(self) -> BilledAbove | None:
        """The jobs this run paid that the provider billed above the upper factor of COST_FACTORS of their
        estimates, counted as billed (`jobs.BilledAbove`); None when there are none."""
        above = [(j.cost_estimate_micros, j.cost_reported_micros) for j in self.jobs
                 if j.billed_above and j.paid_run == self.run.id and j.cost_reported_micros is not None]
        return BilledAbove.of(self.run.id, above, self.prices_from)

    def billing(self) -> Billing | None:
        """What the completed renders of the run's jobs were billed against their estimates, whichever run paid
        them (`billing_of`): what the next run's budget counts its jobs at when it is clearly above 1x
        (`Billing.clear`), as `Store.billing` finds it."""
        return billing_of(self.jobs, run_id=self.run.id)

    def sent_to_note(self) -> str | None:
        """Where the run sent its creates, by which provider, and which of those places were simulators (nothing
        paid there), for `status` and the report; for a run that sent none but followed jobs an earlier run sent,
        where those were sent, when a simulator billed any of its spending; and whenever simulators billed some of
        it, that part is made-up figures. None for a run that sent nothing and spent nothing at a simulator (all
        cached), or one that sent its creates before gridrun kept where."""
        ends, sent = self.endpoints, True
        if not ends:
            if not self.spent_simulated_micros:
                return None
            paid = [j for j in self.jobs if j.paid_run == self.run.id]
            if not paid or any(j.sent_run in (None, self.run.id) for j in paid):
                return None  # its own creates, sent before gridrun kept where
            followed: dict[str, bool] = {}
            for j in paid:
                if j.endpoint is not None:
                    followed[j.endpoint] = followed.get(j.endpoint, False) or bool(j.simulated)
            ends, sent = tuple(followed.items()), False
        free = all(simulated for _, simulated in ends) and self.spent_simulated_micros >= self.spent_micros
        if free and self.spent_micros:
            simulated = " (simulated: what it spent is made-up figures, nothing paid)"
        elif self.spent_simulated_micros:
            simulated = (f" (simulated: {usd_text(min(self.spent_simulated_micros, self.spent_micros))} of what it "
                         "spent is made-up figures, nothing paid)")
        else:
            simulated = ""
        # "nothing paid" said once: by the place, or, where the line ends saying it, there alone
        unpaid = ": a simulator" if free and self.spent_micros else ": a simulator, nothing paid"
        places = [("the simulator built in (in process)" if at == "in process" else at)
                  + (unpaid if simulated and at != "in process" else "")
                  for at, simulated in ends]
        at = "; ".join(places)
        where = (f"sent to {at}" if sent
                 else f"sent nothing, followed jobs an earlier run sent{f' to {at}' if at else ''}")
        return f"{self.run.provider} / {self.run.model}, {where}{simulated}"

    def provider_note(self) -> str:
        """The run's provider and model, for `status` where `sent_to_note` has nothing to say of where it sent:
        ", sent nothing" after them for a run that sent no create and spent nothing (every job cached, say)."""
        idle = not self.spent_micros and not any(j.sent_run == self.run.id for j in self.jobs)
        return f"{self.run.provider} / {self.run.model}{', sent nothing' if idle else ''}"

    def simulated_note(self) -> str | None:
        """Of what every run of the manifest spent, the part simulators billed (made-up figures, nothing paid) and
        the rest, billed by providers; None when no simulator billed any of it."""
        simulated = self.manifest_spent_simulated_micros
        if not simulated:
            return None
        real = max(0, self.manifest_spent_micros - simulated)
        return f"of that, {usd_text(real)} at providers and {usd_text(simulated)} simulated (nothing paid)"

    def possibly_billed_note(self, shown: Callable[[str], str] = str) -> str | None:
        """The attempts of unknown outcome `retry --unknown` sent again (`possibly_billed`), as `status` and the
        report's header say them after what every run spent: in no figure of spent or reserved, yet the provider
        may have billed them; `shown` writes a key as the reader sees it. None when there are none."""
        left = self.possibly_billed
        if not left:
            return None
        runs = ", ".join(map(str, sorted({run for _, run, _ in left})))
        were = "its earlier attempt" if len(left) == 1 else "their earlier attempts"
        jobs = f"{len(left):,} job{'' if len(left) == 1 else 's'}"
        keys = ", ".join(shown(key) for key, _, _ in left[:3]) + (f" and {len(left) - 3:,} more" if len(left) > 3 else "")
        total = sum(m for _, _, m in left)
        if self.possibly_billed_simulated(all_of=True):
            return (f"all runs: {usd_text(total)} more may have been billed by a simulator for {jobs} of unknown "
                    f"outcome run {runs} sent ({keys}), which `gridrun retry --unknown` sent again: {were}, counted "
                    "in no figure above, simulated (made-up figures, nothing paid)")
        simulated = self.possibly_billed_simulated_micros
        part = (f"; of that, {usd_text(simulated)} simulated (made-up figures, nothing paid)" if simulated else "")
        return (f"all runs: {usd_text(total)} more may have been billed for {jobs} of "
                f"unknown outcome run {runs} sent ({keys}), which `gridrun retry --unknown` sent again: "
                f"{were}, counted in no figure above, may have been paid (the provider's dashboard or billing "
                f"tells){part}")

    def possibly_billed_simulated(self, *, all_of: bool = False) -> bool:
        """A simulator answered some (`all_of`: every one) of the attempts `possibly_billed` counts."""
        if not self.possibly_billed or not self.possibly_billed_simulated_micros:
            return False
        return not all_of or self.possibly_billed_simulated_micros >= sum(m for _, _, m in self.possibly_billed)

    def followed_note(self) -> str | None:
        """What `status` and the run's report say of the part of its spending that is jobs an earlier run sent:
        left in flight there (its process stopped, killed, or stopped by a state it could not write; a timeout;
        a second Ctrl-C) and billed while this run followed them, which a run's spending counts as its budget does;
        the run that sent each paid create is named. None when there are none."""
        sent: dict[int, list[int]] = {}
        for j in self.jobs:
            if (j.paid_run == self.run.id and j.sent_run is not None and j.sent_run != self.run.id
                    and j.cached_from_run is None and j.counted_micros):
                sent.setdefault(j.sent_run, []).append(j.counted_micros)
        if not sent:
            return None
        # a run of another manifest sharing the state is named with it, as the report's pages name it
        parts = [f"{usd_text(sum(costs))} for {len(costs):,} job{'' if len(costs) == 1 else 's'} run {run}"
                 f"{f' of {self.other_runs[run]}' if run in self.other_runs else ''} sent"
                 for run, costs in sorted(sent.items())]
        one = sum(len(costs) for costs in sent.values()) == 1
        return (f"of it, {', '.join(parts)}, left in flight there and billed while this run followed "
                f"{'it' if one else 'them'} (a run's spending counts what it follows, as its budget does)")

    def over_budget_note(self) -> str | None:
        """What the run's end, `status` and the report say of a run that spent more than its budget; None when
        it did not, or has none. Every job is sent only while what the run spent, what its jobs in flight may
        cost (their estimates, at the highest ratio of bills to estimates seen once renders were billed above
        them: `jobs.Billing`) and the job's fit the budget; a provider billing the jobs already sent above what
        they were counted at, or jobs an earlier run left in flight costing more than this run's budget, can
        still take the spending past it."""
        budget = self.run.budget_micros
        if budget is None or self.spent_micros <= budget:
            return None
        simulated = min(self.spent_simulated_micros, self.spent_micros)
        said = (" (simulated: made-up figures, nothing paid)" if simulated >= self.spent_micros else
                f" (of it, {usd_text(simulated)} simulated: made-up figures, nothing paid)" if simulated else "")
        text = (f"passed its budget: spent {usd_text(self.spent_micros)}{said} of {usd_text(budget)}, "
                f"{usd_text(self.spent_micros - budget)} over")
        above = [(j.counted_micros or 0) - j.cost_estimate_micros for j in self.jobs
                 if j.paid_run == self.run.id and (j.counted_micros or 0) > j.cost_estimate_micros]
        if not above:
            return f"{text}: the jobs in flight when it started cost more than it"
        one = len(above) == 1
        jobs = f"{len(above):,} job{'' if one else 's'}"
        return (f"{text}: the provider billed {jobs} already sent {usd_text(sum(above))} above "
                f"{'its estimate' if one else 'their estimates'} (each was sent within the budget, counted at its "
                "estimate, or at the bills above the estimates seen by then, until its cost was known)")


@dataclass(frozen=True, slots=True)
class RunSummary:
    """A run and its figures as its snapshot counts them (an earlier run's as it left them): one line of a
    manifest's runs (`gridrun status --runs`)."""

    run: RunRecord
    jobs: int
    done: int
    cached: int                      # of the done ones, those it found made by an earlier run (nothing paid for them)
    spent_micros: int
    reserved_micros: int
    made: int = 0                    # of the done ones, those whose video this run made (rendered, or saw billed)
    not_copied: int = 0              # of the done ones, those whose video this run could not copy to its new path
    # where it sent its creates, each once, and whether a simulator answered there (`Snapshot.endpoints`)
    endpoints: tuple[tuple[str, bool], ...] = ()
    spent_simulated_micros: int = 0  # of `spent_micros`, what simulators billed: made-up figures, nothing paid
    # an attempt it sent was done only after it ended: a later run collected it (a job of unknown outcome found)
    done_since_end: bool = False

    @property
    def over_budget_micros(self) -> int:
        """What the run spent past its budget (its exit code 3 where it would have been 0); 0 within it, or with
        none."""
        budget = self.run.budget_micros
        return 0 if budget is None else max(0, self.spent_micros - budget)

    @property
    def all_done_since(self) -> bool:
        """The run ended `failed` and every one of its jobs is done now, some of them since it ended: a later run
        collected what it left (a job of unknown outcome found at the provider). Its status stays the one it ended
        with; a run whose jobs were all done as it ended failed (its re-renders failed, the earlier videos kept) is
        not one."""
        return self.run.status == "failed" and self.done_since_end and self.jobs > 0 and self.done == self.jobs

    @property
    def made_earlier(self) -> int:
        """Of the done jobs not cached, those whose video an earlier run made: fetched again by this run (deleted
        by hand), or kept when this run's re-render of it was cancelled or failed. Not those whose video this
        run could not copy to its new path (a full disk): it left them untouched."""
        return max(0, self.done - self.cached - self.made - self.not_copied)


class Runs(list[RunSummary]):
    """A manifest's runs, newest first (`runner.runs`), with what `gridrun status --runs` warns of: `warnings`, the
    manifest file given did not load, and the state's copy of it, as its latest run had it, was read instead."""

    def __init__(self, found: Iterable[RunSummary] = (), warnings: Iterable[str] = ()) -> None:
        super().__init__(found)
        self.warnings = list(warnings)


def rerenders_cancelled_note(n: int) -> str:
    """One line for the re-renders of done jobs (--force, retry) cancelled at the provider: each job is done as
    before, its earlier video kept, and needs no paid `retry`. The run's end, `status`, `cancel` and the run's report
    say it."""
    one = n == 1
    return (f"{n:,} re-render{'' if one else 's'} of done jobs (--force, retry) cancelled at the provider: "
            f"the earlier video{'' if one else 's'} kept, {'its job' if one else 'the jobs'} done as before")


def rerenders_failed_note(n: int) -> str:
    """One line for the re-renders of done jobs (--force) the provider failed or refused: each job is done as
    before, its earlier video kept, and needs no paid `retry`; `run --force` tries again. The run's end, `status`
    and the run's report say it."""
    one = n == 1
    return (f"{n:,} re-render{'' if one else 's'} of done jobs (--force) failed: the earlier video{'' if one else 's'} "
            f"kept, {'its job' if one else 'the jobs'} done as before (`gridrun run --force` tries again, paying again)")


# Why a done job is sent again with no --force: its video is a placeholder a simulator made at another endpoint than
# the one now (the reason of its `reset` event, as `plan` says it)
SIMULATOR_ELSEWHERE = "made by a simulator at another endpoint"


def placeholders_failed_note(n: int) -> str:
    """One line for the jobs whose only take was a simulator's placeholder made at another endpoint and whose
    render the provider failed or refused: failed, not done, their placeholders kept; a plain run renders them
    again (as `plan` prices them). The run's end, `status` and the run's report say it."""
    one = n == 1
    return (f"{n:,} job{'' if one else 's'} failed at the provider: {'its' if one else 'their'} only "
            f"video{' is a placeholder' if one else 's are placeholders'} a simulator made at another endpoint, not "
            f"rendered here (kept at {'its path' if one else 'their paths'}: no video of this provider's yet); "
            f"`gridrun run` renders {'it' if one else 'them'} again (paid)")


def run_record(row: sqlite3.Row, *, lock_free: Callable[[], bool] | None = None,
               lock_holder: Callable[[], tuple[int, str] | None] | None = None, state_folder: str | None = None,
               stopped: Mapping[str, str] | None = None) -> RunRecord:
    """The run of `row`, read from the state folder `state_folder` whose runner lock `lock_free` tells free and
    `lock_holder` tells the holder of; `stopped`: the cause it recorded it stopped on, where it did
    (`Store.end_run`)."""
    keys = row.keys()  # a state of an older schema has no seen_at
    return RunRecord(
        id=row["id"],
        manifest_name=row["manifest_name"],
        manifest_path=row["manifest_path"],
        outputs_dir=row["outputs_dir"],
        provider=row["provider"],
        model=row["model"],
        axes=tuple(json.loads(row["axes"] or "[]")),
        started_at=row["started_at"],
        ended_at=row["ended_at"],
        status=row["status"],
        budget_micros=row["budget_micros"],
        pid=row["pid"],
        host=row["host"],
        seen_at=row["seen_at"] if "seen_at" in keys else None,
        duration=row["duration"] if "duration" in keys else None,
        argv=tuple(str(a) for a in _list(row["argv"])),
        lock_free=lock_free,
        lock_holder=lock_holder,
        state_folder=state_folder,
        stopped_by=None if stopped is None else stopped.get("cause"),
        stopped_note=None if stopped is None else stopped.get("note"),
    )


def _list(text: str | None) -> list[Any]:
    """A JSON list kept in a column, or [] (none kept, or not a list)."""
    try:
        value = json.loads(text) if text else []
    except ValueError:
        return []
    return value if isinstance(value, list) else []


# The columns `job_record` reads, each with its column of another name where the query names it so (a run's key),
# and those a query may leave out.
_RECORD_COLUMNS = (
    "id", "hash", "sweep", "vals", "params", "state", "output_path", "cost_estimate_micros", "cost_micros", "attempts",
    "provider_id", "error", "sha256", "width", "height", "duration", "created_at", "submitted_at", "completed_at",
    "downloaded_at",
)
_RECORD_OPTIONAL = (
    "cached_from_run", "billed_run", "sent_run", "cost_reported_micros", "render_span", "sent_by", "made_at",
    "made_by_simulator",
)
_record_columns: dict[tuple[str, ...], tuple[dict[str, int], int, dict[str, int | None]]] = {}


def _columns_of(keys: tuple[str, ...]) -> tuple[dict[str, int], int, dict[str, int | None]]:
    """Where each column `job_record` reads sits in a row of a query whose columns are `keys`, as `row[name]`
    finds it (the first of that name, the case of its letters aside), worked out once per query shape:
    a name looked up in a row compares it with each column's name in turn, and a record reads some thirty."""
    found = _record_columns.get(keys)
    if found is None:
        at: dict[str, int] = {}
        for i, name in enumerate(keys):
            at.setdefault(name.lower(), i)
        missing = [name for name in _RECORD_COLUMNS if name not in at]
        if missing:
            raise IndexError(f"No item with that key: {missing[0]}")
        key = at["run_key"] if "run_key" in at else at.get("key")
        if key is None:
            raise IndexError("No item with that key: key")
        found = ({name: at[name] for name in _RECORD_COLUMNS}, key, {name: at.get(name) for name in _RECORD_OPTIONAL})
        if len(_record_columns) < 64:
            _record_columns[keys] = found
    return found


def job_record(row: sqlite3.Row) -> JobRecord:
    at, key, maybe = _columns_of(tuple(row.keys()))
    v = tuple(row)

    def opt(name: str) -> Any:
        i = maybe[name]
        return None if i is None else v[i]

    made_at = opt("made_at")
    return JobRecord(
        id=v[at["id"]],
        key=v[key],
        sweep=v[at["sweep"]],
        hash=v[at["hash"]],
        values=json.loads(v[at["vals"]]),
        params=json.loads(v[at["params"]]),
        state=v[at["state"]],
        output_path=v[at["output_path"]],
        cost_estimate_micros=v[at["cost_estimate_micros"]],
        cost_micros=v[at["cost_micros"]],
        attempts=v[at["attempts"]],
        provider_id=v[at["provider_id"]],
        error=v[at["error"]],
        sha256=v[at["sha256"]],
        size=(v[at["width"]], v[at["height"]]) if v[at["width"]] else None,
        duration=v[at["duration"]],
        created_at=v[at["created_at"]],
        submitted_at=v[at["submitted_at"]],
        completed_at=v[at["completed_at"]],
        downloaded_at=v[at["downloaded_at"]],
        cached_from_run=opt("cached_from_run"),
        billed_run=opt("billed_run"),
        sent_run=opt("sent_run"),
        cost_reported_micros=opt("cost_reported_micros"),
        render_span=opt("render_span"),
        sent_by=opt("sent_by"),
        endpoint=made_at,
        simulated=None if made_at is None else bool(opt("made_by_simulator")),
    )




_SWEEP_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")  # the manifest schema's `name` (a sweep's)
_SHORTENED = re.compile(r".{32}…[0-9a-f]{6}", re.DOTALL)  # a value over 40 characters as a key writes it


def as_keyed(job: JobRecord, key_now: str, axes: Sequence[str] = (),
             typed: Mapping[str, Mapping[str, Any]] | None = None) -> JobRecord:
    """`job`, whose `key` is its key in an earlier run and whose sweep and values are the latest run's (`key_now`:
    the key they make), with the sweep and values it had in that run, read back from that key: a run without
    sweeps has none, a job of sweep `cat` renamed `kitten` since was of `cat`, an axis removed since still has
    its value. A key is not a list that can be split (a value may hold `,name=`; one over 40 characters is
    shortened): the values are a reading of the run's matrix keys (`axes`, and the job's own now) that gives back
    that key exactly (`job_key`), the one that keeps most of the job's values now; each value is the job's own now,
    or one of `typed` (axis -> its text in a key -> a value of another job of the run), of that text, or a number
    of an axis whose values are numbers, or the text. A key read no such way keeps the values of now."""
    if job.key == key_now:
        return job
    bare = job_key(job.sweep, job.values.items(), 0)
    suffix = key_now[len(bare):] if key_now.startswith(bare) else ""
    body = job.key[:-len(suffix)] if suffix and job.key.endswith(suffix) else job.key
    head, sep, rest = body.partition("/")
    sweep = head if sep and _SWEEP_NAME.fullmatch(head) else None
    if sweep is not None:
        body = rest
    if job_key(None, job.values.items(), 0) == body:
        return replace(job, sweep=sweep)
    readings = _readings(body, [*dict.fromkeys([*axes, *job.values])], job.values, typed or {})
    if not readings:
        return replace(job, sweep=sweep)
    kept = [sum(1 for k, v in r.items() if k in job.values and job.values[k] == v) for r in readings]
    best = [r for r, n in zip(readings, kept) if n == max(kept)]
    return replace(job, sweep=sweep, values=best[0]) if len(best) == 1 else replace(job, sweep=sweep)


def _readings(body: str, names: Sequence[str], now: Mapping[str, Any],
              typed: Mapping[str, Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The ways `body`, a key without its sweep and take, reads as values of `names` that write it back (at most a
    few: a key that reads many ways keeps the values of now)."""
    found: list[dict[str, Any]] = []

    def value(name: str, text: str) -> Any:
        if name in now and format_value(now[name]) == text:
            return now[name]
        if text in typed.get(name, {}):
            return typed[name][text]
        known = list(typed.get(name, {}).values())
        if known and all(type(v) in (int, float) for v in known):
            for kind in (int, float):
                try:
                    number = kind(text)
                except ValueError:
                    continue
                if format_value(number) == text:
                    return number
        return text if format_value(text) == text and not _SHORTENED.fullmatch(text) else _UNREAD

    def walk(at: int, chosen: dict[str, Any]) -> None:
        if len(found) > 8:
            return
        if at == len(body):
            found.append(dict(chosen))
            return
        for name in names:
            if name in chosen or not body.startswith(f"{name}=", at):
                continue
            start = at + len(name) + 1
            for end in [e for e in range(start, len(body)) if body[e] == ","] + [len(body)]:
                got = value(name, body[start:end])
                if got is _UNREAD:
                    continue
                chosen[name] = got
                walk(end + 1 if end < len(body) else end, chosen)
                del chosen[name]

    if body == "job":
        return [{}]
    walk(0, {})
    return [r for r in found if job_key(None, r.items(), 0) == body]


_UNREAD = object()  # a text that no value of the axis writes in a key (one shortened there)


def typed_values(jobs: Iterable[JobRecord]) -> dict[str, dict[str, Any]]:
    """Each axis's values among `jobs`, by their text in a key (`as_keyed`)."""
    out: dict[str, dict[str, Any]] = {}
    for job in jobs:
        for name, value in job.values.items():
            out.setdefault(name, {}).setdefault(format_value(value), value)
    return out
