"""Progress at one moment: `RunStatistics`, what live progress and `status` show, drawn by the executor
from its own counts or by another process from a snapshot of the state store."""

from __future__ import annotations

import bisect
import time
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, replace

from .records import POLLS_FAIL, POLLS_FAILED, JobRecord, Snapshot
from .state import FINAL, IN_FLIGHT

# Throughput (and the ETA drawn from it) counts the jobs that ended in this many seconds before now: recent
# enough to follow a rate limit or a slower provider, long enough to span a few waves of renders.
THROUGHPUT_WINDOW = 300.0

# An ETA is drawn from the pace once this many jobs have ended in the run: one end alone times the first
# render, not the pace at which jobs end.
ETA_AFTER = 2

# A pace is drawn once the run has had this many seconds: the jobs that end in its first moments were collected
# or settled at once (a video an earlier run sent, a job of unknown outcome), not rendered, and a few of them
# over milliseconds made thousands a minute of a run that took no time. Short enough for a first pace while
# the first renders of a fast provider end.
PACE_AFTER = 0.2


@dataclass(frozen=True, slots=True)
class RunStatistics:
    """Progress at one moment (what live progress and `status` show)."""

    run_id: int
    total: int
    counts: Mapping[str, int]
    cached: int
    spent_micros: int
    reserved_micros: int
    budget_micros: int | None
    elapsed: float
    eta: float | None
    per_minute: float | None     # jobs that ended per minute lately (THROUGHPUT_WINDOW); None before any did
    requests: int | None         # HTTP requests sent (None: not known, as in `status --watch`)
    stopping: str | None
    last_errors: tuple[str, ...]
    # Seconds until the provider is next asked about a job, while every job in flight waits for that (a poll
    # scheduled from the expected render time); None while something is under way, or where it is not known.
    next_check: float | None = None
    # Re-renders of done jobs (--force, retry) cancelled at the provider: each job put back as it was, done, its
    # earlier video kept (counted done, not cancelled).
    rerenders_cancelled: int = 0
    # Re-renders of done jobs (--force) whose render the provider failed or whose create it refused: each job put
    # back as it was, done, its earlier video kept (counted done, not failed).
    rerenders_failed: int = 0
    # renders of simulator placeholders made at another endpoint the provider failed or refused: failed (in `counts`)
    placeholders_failed: int = 0
    # Seconds every request still waits because the provider asked the run to (a 429's Retry-After), while that
    # pause is a long one (PAUSE_SHOWN); None otherwise.
    paused: float | None = None
    # The HTTP status of the answer that asked for that pause: 429 (a rate limit), or 502, 503, 504 with a
    # Retry-After (the provider unavailable for a while).
    paused_by: int = 429
    # Why the run waits, nothing else moving: another program holds state.db in a write transaction (said once
    # it has waited SQLite's busy timeout); None otherwise.
    held: str | None = None
    # What each of `last_errors` says, the jobs it names left out (the same message met by another job later is
    # the same error); empty where not known (the entries then stand for themselves).
    said: tuple[str, ...] = ()
    # `eta` is drawn from the expected render times of the jobs left alone (fewer than ETA_AFTER jobs have ended,
    # no pace yet): an estimate, shown as one ("eta ~1:20").
    eta_expected: bool = False
    # Bytes the videos being downloaded have come to so far in this run (their `.part` files, each at the most it
    # has held across its tries, an earlier run's bytes in it not counted); None while none is being downloaded.
    downloaded_bytes: int | None = None
    # Those of `last_errors` the user acts on now, not errors: what the signal the run received does and what
    # another would (then `gridrun cancel` for the jobs still queued). Shown whole, never cut to a line.
    notes: tuple[str, ...] = ()
    # Every figure of spending is a simulator's (its answers marked so): made-up, nothing paid; said with them
    simulated: bool = False


class Throughput:
    """Jobs ended per minute over the last `window` seconds, or since the start while the run is younger."""

    def __init__(self, window: float = THROUGHPUT_WINDOW) -> None:
        self.window = window
        self._ended: deque[float] = deque()
        self._before = 0  # jobs that ended before the window
        self._last: float | None = None  # when the last job ended

    def ended(self, at: float) -> None:
        self._ended.append(at)
        self._last = at if self._last is None else max(self._last, at)

    @property
    def paced(self) -> bool:
        """Whether enough jobs have ended (ETA_AFTER) for an ETA drawn from the pace, not from render times alone."""
        return len(self._ended) + self._before >= ETA_AFTER

    def per_minute(self, now: float, elapsed: float, *, whole: bool = False) -> float | None:
        """None until a job has ended and the run has had PACE_AFTER seconds; 0.0 when none ended lately. Over
        the time the run has really had: a floor would understate the first pace. `whole`: every job ended counts,
        none is out of the window (a run that took no longer than the window, its ends stamped by a wall clock
        that may have been stepped meanwhile)."""
        ended = self._ended
        while ended and not whole and ended[0] < now - self.window:
            ended.popleft()
            self._before += 1
        span = min(self.window, elapsed)
        if not ended and not self._before or elapsed < PACE_AFTER:
            return None
        return 60.0 * len(ended) / span

    def eta(self, remaining: int, per_minute: float | None, *, now: float | None = None,
            elapsed: float | None = None, ends_in: float | None = None) -> float | None:
        """Seconds until `remaining` jobs have ended; None with none remaining. While fewer than ETA_AFTER jobs
        have ended (too few to tell a pace): `ends_in` alone, the time the jobs in flight and those not sent yet
        are expected to take by their render times, an estimate (`paced` False); None without it, or once they are
        past it. A run of a few long renders has an ETA from its start, not only once two of them have ended.

        Given `now` and `elapsed` (the run's, at `now`): the pace the run had when its last job ended, counted down
        since, and at least `ends_in` (when the jobs in flight and those not sent yet are expected to have ended by
        their render times, `expected_end`): between two ends the ETA falls second by second, where the pace
        measured now, which falls while nothing ends, made it grow as much. Once both are past (the jobs are later
        than either says), or without them: the jobs left at `per_minute`, the pace now (None without one)."""
        if remaining <= 0:
            return None
        if not self.paced:
            return ends_in if ends_in is not None and ends_in > 0 else None
        best = ends_in
        last = self._last
        if now is not None and elapsed is not None and last is not None and last <= now:
            then = self.per_minute(last, elapsed - (now - last))
            if then:
                left = remaining / then * 60.0 - (now - last)
                best = left if best is None else max(best, left)
        if best is not None and best > 0:
            return best
        if not per_minute:
            return None
        return remaining / per_minute * 60.0


def expected_end(now: float, ends: list[float], unsent: int, slots: int, render: float) -> float | None:
    """Seconds from `now` until the jobs in flight, expected to end at `ends` (no sooner than now: one past its
    time may end any moment), and `unsent` more jobs of `render` seconds each have ended, `slots` rendering at
    once, each unsent job taking the first slot to free; None with none of either."""
    if not ends and unsent <= 0:
        return None
    ends = sorted(ends)
    past = bisect.bisect_left(ends, now)  # those due already may end any moment: now
    if past:
        ends[:past] = [now] * past
    last = ends[-1] if ends else now
    if unsent <= 0 or slots <= 0:
        return last - now
    free = sorted(([now] * max(0, slots - len(ends)) + ends)[:slots])
    waves, r = divmod(unsent - 1, len(free))
    last = max(last, free[r] + (waves + 1) * render, free[-1] + waves * render)
    return last - now


def pace(snap: Snapshot, now: float | None = None) -> tuple[float, float | None, float | None]:
    """(elapsed seconds, jobs ended per minute lately, ETA seconds) of a run, for `status` in another process:
    the measure live progress takes (every job that ended in this run, failed ones too, once each). Until
    ETA_AFTER jobs have ended the ETA is the run's own estimate (`eta_expected`), from the expected render times of
    the jobs left as its heartbeat last recorded it (`Snapshot.expected_end_at`; None where past or not recorded);
    None once the run has ended; while it stops (its budget, Ctrl-C) it counts only the jobs in flight, the planned
    ones are not sent."""
    r = snap.run
    end = r.ended_at if r.ended_at is not None else (time.time() if now is None else now)
    gone = r.ended_at is None and r.process_gone()
    if gone:  # killed: its pace stops at the last thing it recorded (a job's move, or that it was alive)
        end = snap.last_record()
    throughput = Throughput()
    for at in snap.ended:
        throughput.ended(at)
    elapsed = r.wall_seconds(end)
    # A run that recorded how long it took, no longer than the window: its pace is every job it ended over that
    # time, as the run itself measured it, whatever steps of the wall clock did to the times its jobs ended at.
    whole = r.ended_at is not None and r.duration is not None and r.duration <= throughput.window
    per_minute = throughput.per_minute(end, elapsed, whole=whole)
    remaining = sum(n for state, n in snap.counts.items() if state not in FINAL
                    and not (snap.stopping and state == "planned"))
    if eta_expected(snap):
        left = None if snap.expected_end_at is None else snap.expected_end_at - end
        eta = left if remaining > 0 and left is not None and left > 0 else None
    else:
        eta = (throughput.eta(remaining, per_minute, now=end, elapsed=elapsed)
               if r.ended_at is None and not gone else None)
    return elapsed, per_minute, eta


def eta_expected(snap: Snapshot) -> bool:
    """Whether the ETA `pace` gives of a run is an estimate from the expected render times (`RunStatistics.
    eta_expected`): the run goes on and fewer than ETA_AFTER of its jobs have ended, too few for a pace."""
    return snap.run.ended_at is None and len(snap.ended) < ETA_AFTER and not snap.run.process_gone()


# How a run that recorded no reason for stopping (an older gridrun) ended, as the run's `stopping` said it.
_STOPPED_AS = {"budget": "budget", "interrupted": "interrupt"}

PROBLEMS = ("failed", "unknown", "expired", "rejected", "cancelled")  # what `status` lists, with why


def checks(snap: Snapshot, now: float | None = None) -> tuple[float | None, float | None]:
    """(seconds until the run next asks the provider about a job, seconds since the provider last answered one of
    its requests) of a run going on, for `status` in another process, from what the run's heartbeat last recorded
    (every few seconds: `Store.run_checks`). The first is None unless every job in flight waited for its poll then
    and the check is still a second or more away (as the run's own `next_check`); both are None once the run has
    ended or is gone, or where it recorded none (an older gridrun)."""
    r = snap.run
    if r.ended_at is not None or r.process_gone():
        return None, None
    now = time.time() if now is None else now
    wait = None if snap.next_check_at is None else snap.next_check_at - now
    since = None if snap.answered_at is None else max(0.0, now - snap.answered_at)
    return (wait if wait is not None and wait >= 1.0 else None), since


def pause_left(snap: Snapshot, now: float | None = None) -> float | None:
    """Seconds every request of a run going on still waits because the provider asked (`RunStatistics.paused`), from
    the pause its heartbeat last recorded (`Snapshot.paused_until`); None when none was, it is over, or the run has
    ended or is gone."""
    r = snap.run
    if snap.paused_until is None or r.ended_at is not None or r.process_gone():
        return None
    left = snap.paused_until - (time.time() if now is None else now)
    return left if left > 0 else None


def problems(snap: Snapshot) -> list[JobRecord]:
    """The jobs `status` lists with why: those that ended badly, and the others with an error recorded: in
    flight (a download that could not be saved, fetched again by the next run), planned again (a create
    that never reached the provider), or done as they were, whose re-render this run did not send: a placeholder
    a simulator made elsewhere (`placeholders_left`: a plain run sends it), or a --force re-render of this run
    (`force_unsent`: `--force --resume` sends it)."""
    left = set(snap.placeholders_left) | (set(snap.force_unsent) if snap.force_run == snap.run.id else set())
    bad = [j for j in snap.jobs if j.state in PROBLEMS or j.error and (
        j.state == "planned" or j.state in IN_FLIGHT or j.state == "done" and j.key in left)]
    polled = [i for i, j in enumerate(bad) if j.error and j.error.startswith(POLLS_FAIL)]
    if polled and (snap.run.ended_at is not None or snap.run.process_gone()):
        # a run over that could not say so itself (killed, crashed): its polls failed, and no one polls any more
        for i in polled:
            bad[i] = replace(bad[i], error=POLLS_FAILED + (bad[i].error or "").removeprefix(POLLS_FAIL))
    return bad


def said_of_jobs(first: str, n: int, message: str) -> str:
    """An entry of a run's last errors: `message`, met by `n` jobs, the first of them `first`."""
    return f"{first}: {message}" if n == 1 else f"{first} and {n - 1:,} more job{'s' if n > 2 else ''}: {message}"


def last_errors(bad: list[JobRecord], most: int = 5) -> tuple[str, ...]:
    """The last errors of the jobs `bad` (`problems`) as the run's own say them (`Executor._error`): one entry for
    the jobs of one error, errors that differ only by the URLs or video ids they name being one (`errors.alike`),
    with how many jobs met it, named after the first of them in plan order (as `status` and the run's closing line
    name a group); the last `most` of those, in the order each was last met, as the run's own list keeps them. The
    jobs are taken in the order they ended (`JobRecord.ended_at`), those of no recorded end after them in plan
    order: an error of a job in flight or planned again is the state's latest."""
    from .errors import alike, alike_text

    met = sorted(bad, key=lambda j: (j.ended_at is None, j.ended_at or 0.0))  # stable: plan order among equals
    groups: dict[str, list[JobRecord]] = {}
    for j in met:
        error = alike(j.error or "")
        jobs = groups.pop(error, [])  # moved last: met last
        jobs.append(j)
        groups[error] = jobs
    order = {id(j): i for i, j in enumerate(bad)}  # `bad` is in plan order
    return tuple(said_of_jobs(min(jobs, key=lambda j: order[id(j)]).key, len(jobs),
                              alike_text([j.error or "" for j in jobs]))
                 for jobs in list(groups.values())[-most:])


def run_statistics(snap: Snapshot, now: float | None = None) -> RunStatistics:
    """What live progress shows, from a snapshot read by another process (`gridrun status --watch`). The
    state keeps no request count (`requests` is None); the last errors are those of the jobs that ended
    badly, grouped as the run groups them (`last_errors`); `stopping` is why the run stopped sending new jobs, as
    the run's own `stopping` says (for a run recorded before it kept that, from how it ended: budget, or
    interrupt)."""
    r = snap.run
    elapsed, per_minute, eta = pace(snap, now)
    next_check, _ = checks(snap, now)
    paused = pause_left(snap, now)
    bad = problems(snap)
    ended = r.ended_at is not None
    return RunStatistics(
        run_id=r.id, total=len(snap.jobs), counts=dict(snap.counts),
        cached=sum(1 for j in snap.jobs if j.cached_from_run is not None),
        spent_micros=snap.spent_micros, reserved_micros=snap.reserved_micros, budget_micros=r.budget_micros,
        elapsed=elapsed, eta=eta, per_minute=per_minute, requests=None,
        stopping=snap.stopping or (_STOPPED_AS.get(r.status) if ended else None),
        last_errors=last_errors(bad),
        rerenders_cancelled=snap.rerenders_cancelled, rerenders_failed=len(snap.rerenders_failed),
        placeholders_failed=len(snap.placeholders_failed),
        next_check=next_check, eta_expected=eta is not None and eta_expected(snap),
        paused=paused, paused_by=snap.paused_by if paused is not None and snap.paused_by is not None else 429,
        simulated=bool(snap.endpoints) and all(simulated for _, simulated in snap.endpoints),
    )
