"""The executor: submit, poll, download under the pay-once rule, on one anyio task group.

One task per job. A capacity limiter bounds jobs at the provider (queued or rendering there); a
shared pacer holds every request back while the provider asked us to wait (429 Retry-After). A
job that fails is a state recorded in the store, never an exception leaving the group.

Pay once: `Store.begin_submit` commits the attempt and its idempotency key before the create request;
an answer lost on the way back is reconciled through the provider's request log (`find_by_key`), by a
re-POST with the same key where the provider honours keys and still remembers this one (the attempt is younger
than `idempotency_window_seconds`), and otherwise left `unknown`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import logging
import os
import signal
import sys
import threading
import time
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import anyio
from anyio.abc import TaskGroup

from . import balance, images, resume, signals
from .bugs import exception_text
from .entry import hold, interrupt
from .errors import (
    ConnectError,
    DownloadError,
    ExpiredError,
    OutcomeUnknownError,
    ProviderError,
    RateLimitedError,
    RejectedError,
    RetryableError,
    ServerError,
    alike,
    alike_text,
)
from .jobs import (
    BILLED_FACTOR, KEY_IGNORED, Billing, billed_above, billed_above_note, billed_factors, counted_cost,
    key_ignored_note, not_json,
    queued_cancel_said,
    scaled, span_text, usd_text,
)
from .limits import files_ran_out, open_files_fix
from .live import LiveViews
from .options import GONE_AFTER, RunOptions, account_refused, error_code, failure_code, repeating_fix
from .outputs import (
    Kept, disk_full, files_beside, keep_file, keep_take, mute, poster_path, says_disk_full, sidecar_matches,
    sidecar_writer, superseded_dir, write_problem,
)
from .pacing import (
    MAX_PAUSE,
    Gate,
    Gates,
    IntentBatcher,
    ListPoller,
    ListUnavailable,
    Pacer,
    RenderTimes,
    backoff,
    sleep_out,
)
from .plan import Job, Plan, budget_micros, manifest_budget
from .providers import capabilities
from .providers.base import Provider, VideoStatus
from .providers.download import TOO_LARGE, WRITE_FAILED, size_differs_text, PartialDownload
from .providers.retry_after import MAX_SENSIBLE_WAIT, asked_wait
from .providers.transport import WEB_PAGE
from .records import DISK_FULL, POLLS_FAIL, POLLS_FAILED, local_time, run_exit
from .state import (
    ABANDONED_LOST_SUFFIX,
    ABANDONED_NEVER_KNOWN,
    BUSY_PATIENCE,
    CANCELLED_ELSEWHERE,
    CANCELLED_ON_REQUEST,
    FAILURE_RETRY,
    FINAL,
    GONE_AT_PROVIDER,
    IN_FLIGHT,
    NO_FRESH_URL,
    NO_REQUEST_LOG,
    UNKNOWN_NEXT,
    Following,
    JobState,
    Store,
    gone_at_provider,
    no_fresh_url,
    no_request_log,
)
from .stats import RunStatistics, Throughput, expected_end, said_of_jobs
from .sweeps import IMAGE_PARAMS

S = JobState
# Refusals of a create that every job of the run would meet (the key, the balance; the run's one model, unknown to
# the provider or disabled there): the first stops the run, and the jobs it kept from being sent stay planned.
# A create refused with HTTP 403 (the key may not create videos), 404 (no such endpoint: a wrong base URL) or 405/501
# (a path with no create: a base URL past the API's root) that is not the API's coded answer about the request (`_about_setup`) is one too, recoded (`_setup_refusal`) as
# KEY_FORBIDDEN or ENDPOINT_NOT_FOUND; so is an API call redirected (REDIRECTED: a base URL with the wrong scheme
# or host; REDIRECTED_AWAY: something on the way, a proxy or a login portal, sends it elsewhere); so is a create
# `provider: sim` would have sent to a server that is not gridrun's simulator (NOT_A_SIMULATOR, never sent).
FATAL_CODES = frozenset({"AUTHENTICATION_FAILED", "INSUFFICIENT_BALANCE", "MODEL_NOT_FOUND", "MODEL_DISABLED",
                         "KEY_FORBIDDEN", "ENDPOINT_NOT_FOUND", "REDIRECTED", "REDIRECTED_AWAY", "NOT_A_SIMULATOR"})
IN_FLIGHT_STATES = frozenset(s.value for s in IN_FLIGHT)
# What stopped a run (`RunResult.refused`) whose creates the provider answered 502, 503 or 504 with a Retry-After
# longer than the run waits (MAX_PAUSE), or all of a job's tries so: the service is down for a while (a
# maintenance), which every job would meet; the jobs not sent stay planned for a run once it is back.
PROVIDER_UNAVAILABLE = "PROVIDER_UNAVAILABLE"
# The statuses whose Retry-After is about the service, not the request: all creates wait it out together.
UNAVAILABLE_STATUSES = frozenset({502, 503, 504})
# Progress is reported this often while a run goes, whether or not a job changed state: its elapsed time moves,
# and plain or JSON lines (one every 5 s) go on during long renders, when no job changes for a minute.
HEARTBEAT = 0.5
# `on_progress` is called at most once in this many seconds as jobs move (the heartbeat and the run's end aside).
PROGRESS_EVERY = 0.1
# How often a run asks whether its caller set `stop` or `detach` (threading Events another thread sets): a stop
# is heeded within this, as a Ctrl-C is at once.
STOP_CHECK = 0.1
# Once a run is stopping (the first Ctrl-C or `stop`), it finishes the jobs in flight only while the
# provider answers: after this many seconds of requests that all failed with no answer at all (a connection refused,
# a timeout), counted from the stop or from the first of them, whichever is later, it leaves them in flight to the
# next run, as the second signal does. A provider down for a minute is gone for this run's purpose; a run under
# `timeout 300` would otherwise wait for it until killed, and lose the record of its end.
STOP_UNANSWERED = 60.0
# ... and finishes the videos being downloaded only while they come in: from STOP_UNANSWERED seconds after the stop
# (and after the latest download's first try began), at the first moment the downloads have got less than this many
# bytes each (1 MiB, 17 KiB a second) in the last STOP_UNANSWERED seconds, a host trickling them as much as one
# sending nothing, it leaves the jobs downloading to the next run, which fetches them at no new cost. A download
# slower than that all along is left STOP_UNANSWERED seconds after the stop (and a second, the check's pace).
STOP_STREAM_BYTES = 1024**2
# What a job's note ends with while its polls answer with a status gridrun does not know, as the run goes on; once
# it has ended, the note says when the last poll was (`_polls_over`), as for polls that fail (`records.POLLS_FAIL`).
STILL_POLLING = "; still polling"
# At a job's timeout, its status is asked once more for at most this many seconds before it is left running.
LAST_LOOK = 10.0
# A job left rendering at its timeout, holding its provider slot, is asked for no more often than this (its poll
# schedule, past its expected render time, would ask every fraction of a second): a GET each, at most as many
# as the run's concurrency, and its slot freed at most this long after its render ended.
LINGER_POLL = 5.0
# Requests are short: a dozen connections carry thousands of jobs. More cost CPU, not speed (httpcore
# checks every pooled connection on every request), and requests beyond them would queue in the pool.
HTTP_CONNECTIONS = 12
# Downloads stream for as long as the link takes, polls and creates are over in a moment: videos from the API's
# own host (its content route) are fetched at most this many at once, so that API_KEPT of the API's request slots
# are always there for the polls, creates and lookups, however slow the link. Such a download takes one of these
# slots, then one of the API's.
API_KEPT = 4
DOWNLOAD_CONNECTIONS = HTTP_CONNECTIONS - API_KEPT
# A download from another host (a CDN, the simulator's `/files/`) is no call of the API: it takes none of the API's
# slots, only one of these, as many as the API's own. The connection pool holds the API's and these
# (HTTP_CONNECTIONS + HOST_DOWNLOAD_CONNECTIONS), so that no request waits inside it.
HOST_DOWNLOAD_CONNECTIONS = HTTP_CONNECTIONS
# A job whose provider gives no status gridrun can read this long (a status word it does not know, or polls
# refused) is left as it is, still reserved: the run ends instead of polling it forever, and the next run
# asks again.
UNCLEAR_AFTER = 600.0
# A run whose polls fail for want of file descriptors of its own process (`ulimit -n` too low for its concurrency:
# the built-in simulator, in its process, cannot make a finished clip; no socket can be opened) for this long, none
# of them answered meanwhile, stops waiting for more to come free: what holds them is the run itself, which would
# otherwise poll on until UNCLEAR_AFTER. Its jobs in flight are left at the provider, and the next run, under a
# higher limit, collects them at no new cost.
FILES_OUT_AFTER = 15.0
# How a job's creates were held back as it waits to send the next (`_hold_back`), for its message
_REFUSING = "the provider was refusing creates (429)"
_UNREACHED = "its create could not reach the provider"
# (`_hold_back`) its last create was answered with an error and the provider's request log, read after it, has no
# video for it
_LOG_EMPTY = "its create was answered HTTP {status} and the provider's request log has no video for it"
# A pause the provider asks every request to wait (a 429's Retry-After) longer than this is shown in the progress.
PAUSE_SHOWN = 30.0
# What a job of unknown outcome says once the provider is found to keep no request log (`state.no_request_log`):
# found so in one run, which a later run asks again.
NO_REQUEST_LOG_NOTE = (f"the provider had {NO_REQUEST_LOG} when gridrun last asked, so gridrun could not check "
                       "whether it was made and paid for (the provider's dashboard or billing can); a run asks again "
                       "(no cost), or `gridrun retry --unknown` sends it again (may pay twice)")

# The request log is read back to this long before an attempt: the provider's clock, and the one that stamps its
# log, may be this far behind ours beyond what its answers' Date shows (the provider moves the bound back by that,
# and reads the whole log where no answer gives a Date: `LumenfallProvider._log_bound`).
LOG_SKEW = 600.0
# A create a provider that ignores keys has not logged this long past the request timeout was never taken.
LOG_SETTLE = 5.0
# How many times the end of a run an error or an interrupt ended is written, each try rolled back by a further
# Ctrl-C (`Executor._record_end`).
END_TRIES = 5
# A create whose answer was lost is sent again (same key, where the provider honours keys) at most this often.
MOST_RESENDS = 2
# A create sent again with its idempotency key, answered with a video made more than this many seconds after every
# earlier send of the key had ended, got a video of its own (`_made_by_this_send`): the provider ignored the key (or
# had forgotten it), and an earlier send may have made and billed another; or the earlier send never reached it (a
# reset before it was read) or reached it only after this one (a gateway that held it), which a provider that
# honours keys answers with this video. The request log tells them apart (`_check_key`), asked only then: this
# check spares the request to every resend answered with an older video, a replay.
# Only the provider's clocks are read of the video: its answer's Date against the video's
# created_at (how old the video was when it answered); this machine's own clock measures only the time from the
# end of the last earlier send (when its answer was lost) to this send, on the steady clock (time.monotonic), so
# within one process: a step of the wall clock (NTP, suspend and resume) moves neither. An earlier process's sends
# are not measured (a resend by `_reconcile`): when they ended is known only on the wall clock of then. A provider
# answers a create once its video exists, so the video of an earlier send that reached it is older than that end
# however slow the create was (one that takes 20 s to answer made its video before it answered), and a slow answer
# to this send only makes a replayed video look older. What the 3 s cover: Date and created_at are whole seconds
# (1 s), and another server (a gateway, an edge) may stamp Date than the one that stamps created_at, or finish a
# create just after a client that timed out gave up on it (2 s). A send made LOG_SETTLE (5 s) after a lost answer
# is checked; one made sooner (or a video answered more than 2 s after it was made, on a resend made within
# LOG_SETTLE) concludes nothing.
KEY_REPLAY_TOLERANCE = 3.0


# The codes a 403 or 404 to a create has when its body is no coded error of the API (an HTML page, a web server's
# plain 404, a framework's {"detail": "Not Found"}: gridrun's own for the status), or the API's own generic ones.
_UNCODED = frozenset({"FORBIDDEN", "NOT_FOUND", "HTTP_403", "HTTP_404", "HTTP_405", "HTTP_501"})
# The codes of a 405 or 501 to a create that say the method is not served there (no coded answer about the request).
_NO_METHOD = frozenset({"METHOD_NOT_ALLOWED", "NOT_IMPLEMENTED"})
# Words in a 403's code that name the key or its permission (Lumenfall's AUTHENTICATION_FAILED; PERMISSION_DENIED,
# invalid_api_key elsewhere).
_KEY_WORDS = ("AUTH", "API_KEY", "PERMISSION")


def _about_setup(exc: RejectedError) -> bool:
    """Whether a create's 403 or 404 refuses the key or the base URL, which every job would meet, rather than this
    request: its body is not the API's coded error (a wrong base URL reaches a web server, not the API), or, for a
    403, its code names the key or its permission. A coded answer about the request (Lumenfall's UPSTREAM_ERROR,
    whose status varies; INVALID_REQUEST; a content policy; the model's own 404 codes) is that job's refusal."""
    code = (exc.code or "").upper()
    if exc.status == 404:
        return code in _UNCODED or not code
    if exc.status == 403:
        return code in _UNCODED or not code or any(word in code for word in _KEY_WORDS)
    if exc.status in (405, 501):  # a path the server has, with no POST: a base URL pointing past the API's root
        return code in _UNCODED or not code or code in _NO_METHOD
    return False


def moved_along(was: Path, now: Path, path: Path) -> Path:
    """Where `path` is now, the folder that held the file `was` (now at `now`) having been moved or renamed: the
    same path under that folder's new place; `path` itself where it was not in the folder that moved."""
    old, new = list(was.parts), list(now.parts)
    while len(old) > 1 and len(new) > 1 and old[-1] == new[-1]:
        old.pop()
        new.pop()
    try:
        rest = path.relative_to(Path(*old))
    except ValueError:
        return path
    return Path(*new) / rest


def outputs_moved(was: Path, now: Path, outputs: Path) -> Path:
    """Where the output folder `outputs` is, the state file `was` having been found at `now` (its project folder
    moved while the run went on): `moved_along`, where that place is a folder; else `outputs` as it was. A folder
    moved into another of the same name (A/proj to B/proj) reads as its parent moved, which an output folder kept
    beside it (A/shared, not B/shared) did not."""
    there = moved_along(was, now, outputs)
    return there if there.is_dir() else outputs


@dataclass(frozen=True, slots=True)
class RunResult:
    """How a run ended."""

    run_id: int
    exit_code: int
    status: str                          # a RUN_STATUSES key: done | cancelled | incomplete | failed | refused | ...
    stats: RunStatistics
    outputs_dir: Path
    report: Path | None = None
    report_error: str | None = None      # why the report could not be written (the run's work stands)
    altered_kept: tuple[Path, ...] = ()  # done videos found altered in place: kept there before fetched again
    # done videos found missing or altered, put back from gridrun's own copy, nothing fetched (`resume.Restored`)
    restored: tuple[resume.Restored, ...] = ()
    refused: str | None = None           # the code (FATAL_CODES) of the account or model refusal that stopped the run
    unreached: int = 0                   # jobs left unsent because their create never reached the provider
    left_done: int = 0                   # done jobs a re-render (--force) did not send: left done, as they were
    # done jobs whose video a simulator made at another endpoint, left so unsent: a plain run re-renders them
    left_elsewhere: int = 0
    foreign_kept: tuple[Path, ...] = ()  # files no sidecar of gridrun's records where a job's video went: kept first
    # done jobs whose video the run could not copy to its new path (a changed output template): left where it was
    not_copied: int = 0
    unrecorded_kept: tuple[Path, ...] = ()  # takes of gridrun's this state has no record of, there: kept first too
    slots_held: int = 0                  # slots held by jobs left at their timeout, once they held every one: the run sent no more
    late: int = 0                        # jobs left at their timeout that finished while the run went on: downloaded
    paused_out: int = 0                  # jobs left unsent: their timeout passed while a 429's pause held the creates
    paused_unreached: int = 0            # of them, those whose creates could not reach the provider, not a 429's
    # of them, those whose creates were answered with an error the request log shows made nothing: each one's HTTP status
    paused_answered: tuple[int | None, ...] = ()
    followed: int = 0                    # jobs an earlier run sent that this one followed and saw billed: its spending
    cancelled_elsewhere: int = 0         # jobs left cancelled at the provider, not by `gridrun cancel`: unfinished
    # refused PROVIDER_UNAVAILABLE: until when (the wall clock) the provider's Retry-After said it is unavailable
    unavailable_until: float | None = None
    # whether the provider bills no video cancelled while queued (`ProviderCaps.queued_cancel_free`; None: unknown)
    queued_cancel_free: bool | None = None
    # jobs left at their timeout whose last poll was answered with a status gridrun does not know: (the job's
    # state, the status answered) each, counted apart from those still queued or rendering
    odd_status_left: tuple[tuple[str, str], ...] = ()
    warnings: list[str] = field(default_factory=list)  # what `gridrun run` warns of before it sends (`api.run`)
    # the state folder (or the project folder holding it) moved while the run went on (`Store.moved`); and then where
    # the outputs folder is now (`outputs_dir` where it was not in the folder that moved; None: not known)
    moved: bool = False
    outputs_now: Path | None = None
    state_now: Path | None = None         # and where the state file is now (None: not moved, or not known)
    # what the caller's `on_progress` raised, its traceback with it: the run went on without calling it again
    progress_error: BaseException | None = None


# The package's logger: what it is told (an `on_progress` that raised, with its traceback) goes to the host's
# logging, and to standard error where the host has set none up.
log = logging.getLogger("runner")


def run_budget(plan: Plan, options: RunOptions) -> int | None:
    """The run's budget in micro-USD (`--budget`, else the manifest's `run.budget_usd`); None for none."""
    given = options.budget_usd if options.budget_usd is not None else manifest_budget(plan.manifest)
    return budget_micros(given)


class Executor:
    """Runs one plan against one provider with one store (`runner.api.run` builds one and runs it)."""

    def __init__(
        self,
        plan: Plan,
        provider: Provider,
        store: Store,
        *,
        options: RunOptions = RunOptions(),
        on_progress: Callable[[RunStatistics], None] | None = None,
        on_report: Callable[[int, bool | None], Path | None] | None = None,
        on_output: Callable[[Sequence[Path]], None] | None = None,
        on_balance: Callable[[balance.BalanceCheck], None] | None = None,
        clock: Callable[[], float] = time.time,
        steady: Callable[[], float] = time.monotonic,
        argv: Sequence[str] = (),
        stop: threading.Event | None = None,
        detach: threading.Event | None = None,
    ) -> None:
        """`stop`, `detach`: set by another thread, they stop the run as the first and second Ctrl-C do. `clock`,
        the wall clock, stamps what the state records; `steady`, which no step of the wall clock moves (NTP, a clock
        set by hand, a machine resumed), times every wait: polls, the provider's pauses, the jobs' timeouts."""
        self.plan = plan
        self.provider = provider
        self.store = store
        self.opts = options
        self.on_progress = on_progress
        self.on_balance = on_balance
        self.clock = clock
        self.steady = steady
        self.argv = argv
        self.stop, self.detach = stop, detach
        run = dict(plan.manifest.run or {})
        self.concurrency = int(options.concurrency or run.get("concurrency") or 4)
        self.retries = int(options.retries if options.retries is not None else run.get("retries", 3))
        self.failure_retries = int(options.failure_retries if options.failure_retries is not None
                                   else run.get("failure_retries", 0))
        self.poll_interval = options.poll_interval or run.get("poll_interval")
        self.renders = RenderTimes(plan, provider.caps, poll_interval=self.poll_interval, clock=steady,
                                   provider=provider)
        self.timeout = options.timeout or run.get("timeout")
        self.budget_micros = run_budget(plan, options)
        self.pacer = Pacer(steady, gate=HTTP_CONNECTIONS)
        self._download_gate = Gate(DOWNLOAD_CONNECTIONS)  # the videos fetched at once from the API's own host
        self._host_download_gate = Gate(HOST_DOWNLOAD_CONNECTIONS)  # and from another host
        self._stopping: str | None = None
        # The cause the run stopped on where it is not its jobs' (a disk with no room left: `_full_disk`), recorded
        # with its end ({"cause": ..., "note": ...}) for `status --runs`, `status --json` and exports to say.
        self._stopped_by: dict[str, str] | None = None
        self._interrupted_at = 0.0  # when (`steady`) the run began stopping for an interrupt (`_interrupt`)
        self.detached = False
        self.started = clock()
        self.errors: deque[str] = deque(maxlen=5)
        self.progress_error: BaseException | None = None  # what `on_progress` raised (`_progress`)
        # A KeyboardInterrupt or SystemExit `on_progress` raised: the run ended at once, as a detach ends it, and it is
        # raised to the caller once the run's state is closed (`api.run`); the run's task group's scope, to end it.
        self.caller_raised: BaseException | None = None
        self._scope: anyio.CancelScope | None = None
        # Why the run stopped sending new jobs, when that is a problem to fix (the output folder full): shown first
        # among the last errors, however many jobs' errors come after it (`statistics`).
        self._stop_note: str | None = None
        self._interrupt_said: str | None = None  # what the run said as it was interrupted (`_interrupt`)
        # the signal that interrupted it and whether a terminal is there (`_signal_note`): its note, said again from
        # the jobs in flight as the display is drawn (`_interrupt_now`)
        self._interrupt_signal: tuple[int, bool] | None = None
        self._not_copied = 0  # done jobs whose video the run could not copy to its new path (`prepare`)
        self.cached = 0
        self.run_id = 0
        self.ids: dict[str, int] = {}
        self.jobs_by_id: dict[int, Job] = {}
        self.states: dict[int, str] = {}
        self.counts: dict[str, int] = {s.value: 0 for s in JobState}
        self.throughput = Throughput()
        # The span its pace is over, as the state records the run (its start, then its end, by the store's
        # monotonic clock: a step of the wall clock moves neither elapsed, pace nor ETA), where `status` draws it
        # from (the run's recorded duration): one figure for one run, live and in `status`.
        self._paced_from: float | None = None
        self._paced_until: float | None = None
        self._last_progress = float("-inf")  # (`steady`) the first call goes through
        # an entry of `errors` said of jobs (`_error`) -> its message and the keys of the jobs it names, first first
        self._said_of: dict[str, tuple[str, tuple[str, ...]]] = {}
        self._plan_order: dict[str, int] | None = None  # each job's place in the plan, by key (`_first_planned`)
        self._left_why: dict[int, str] = {}  # job id -> why it was left (`_left`), while it is
        self._rendering: dict[int, tuple[float, Job]] = {}  # job id -> (`steady` send, job), while it is followed
        self._checks: dict[int, float] = {}  # job id -> when (`steady`) its status is next asked, while it waits
        # job id -> [its download's `.part` file, the size it was last seen at], while the video is fetched: what
        # has come of it, read off the file when progress is drawn, not counted per chunk (`_fetched`)
        self._fetching: dict[int, list[Any]] = {}
        # job id -> whether its download's last try (or the one under way) is from the API's own host (`_at_api`),
        # from its first try until its download ends: which slots it holds or waits for (`_receiving`)
        self._download_at_api: dict[int, bool] = {}
        # job id -> [the most its download's `.part` file has held in this run, when (`steady`) its first try began,
        # the bytes of it the run found there (an earlier run's; 0 once the file was made anew), the most the file
        # has held beyond those], from its first try until its download ends (saved, failed or left): across its
        # tries, so a try that starts the file again from byte 0 brings no new bytes (`_grown`) nor takes any from
        # what has come so far (`_fetched`), and a try that begins is no sign of the video coming in
        # (`_stalled_since`)
        self._fetch_high: dict[int, list[Any]] = {}
        self._streamed_at: float | None = None  # when (`steady`) a download's file was last seen to grow
        # The bytes the downloads' files were seen to grow by in all, and (when `steady`, that count then) each time
        # they were seen to grow over the last STOP_UNANSWERED seconds, after the last time before them (the count
        # that far back): what a stopping run counts as the videos coming in (`_coming_in`)
        self._grown = 0
        self._grew: deque[tuple[float, int]] = deque([(float("-inf"), 0)])
        # The live report (on_report(run_id, final)) and posters (on_output(new videos)), in worker threads.
        self.live = LiveViews(
            store, report=None if on_report is None else lambda final: on_report(self.run_id, final),
            posters=on_output, report_every=options.report_every, errors=self.errors, clock=steady,
        )
        self.live.checks = self._recorded_checks
        self.live.folder = plan.outputs_dir
        self._reserved = 0
        # job id -> what is reserved for it (`_hold`): its estimate, or gridrun's own price of a job a capabilities
        # file of the manifest prices lower once such a job was billed at it (`_weight`)
        self._reserves: dict[int, int] = {}
        self._spent = 0
        # What completed renders were billed against their estimates, where above them: an earlier run's (clearly
        # above, `resume.Judged.billing`), then the highest this run sees; the budget counts the reserves at it.
        self._billing: Billing | None = None
        # jobs this run reserved and follows, whose reserve their end frees (spent instead, at what they cost):
        # job id -> its reserve; the jobs waiting for the budget (--allow-partial) wait for these
        self._freeable: dict[int, int] = {}
        self._budget_moved: anyio.Event | None = None  # set when one is freed, or the run's stop changes
        self._prepaid: set[int] = set()  # jobs only to download again: rendered and billed by an earlier run
        self._not_rerun = 0  # settled jobs this run was to send again whose create never reached the provider
        self._rerenders_cancelled = 0  # re-renders of done jobs cancelled at the provider: done as before
        self._cancelled_elsewhere: set[int] = set()  # jobs cancelled at the provider, not by `gridrun cancel`
        self._rerenders_failed = 0  # re-renders of done jobs failed or refused by the provider: done as before
        # renders of simulator placeholders made at another endpoint failed or refused by the provider: failed here
        self._placeholders_failed = 0
        self._reconciling = 0  # jobs an earlier process left submitting, not yet known to be at the provider or not
        self._ended_jobs: set[int] = set()  # jobs counted in the pace (`throughput`) as ended in this run
        self._sent: set[int] = set()  # jobs this run sent (a create): the only ones its pace counts
        self._followed: set[int] = set()  # jobs an earlier run sent whose charge this run saw: spent by it
        # jobs of unknown outcome an earlier run sent that this run found at the provider and follows: what they
        # cost is the sender's (`Store.book_to_sender`), neither reserved nor spent by this run; job id -> the
        # attempt found, whose sender records it once it is settled (`Store.settle_found`)
        self._found_unknown: dict[int, int] = {}
        self._senders: set[int] = set()  # of those, the ones not settled yet
        self._timed_out: set[int] = set()  # jobs left rendering at the provider at their timeout
        # of those, the ones whose last poll the provider answered with a status gridrun does not know: that status
        self._odd_status: dict[int, str] = {}
        # jobs left planned: their timeout passed as they waited to send their creates -> what held them: "429" (a
        # 429's pause), "unreached" (their creates could not reach the provider), or "answered" (their last create
        # answered with an error, the request log read after it having no video for them), with that HTTP status
        self._paused_out: dict[int, tuple[str, int | None]] = {}
        # job id -> when this run began to send its create: its timeout counts from then (unanswered creates too)
        self._began: dict[int, float] = {}
        # job id -> when (`steady`) this run committed its attempt, the state's `submitted_at`, until it is followed:
        # its polls are timed from it, which no step of the wall clock after it moves
        self._intended: dict[int, float] = {}
        # jobs shown submitting whose create has not left: neither this run nor an earlier process sent their attempt
        # (being recorded, or recorded and not yet sent), or every create of it sent was refused with a 429, never
        # reached the provider (its connection not opened), or was answered with an error that the provider's
        # request log, read after it, shows made nothing, as it waits to send the next. A stop leaves them planned,
        # not sent (`_void_never_sent`).
        self._not_left: set[int] = set()
        # of those, the ones whose creates were refused (429), could not reach the provider, or made nothing by the
        # log: how, for their note
        self._held_back: dict[int, str] = {}
        self._interrupted: anyio.Event | None = None  # set by the first Ctrl-C (or `stop`): cuts the waits to send
        # Of them, those still holding their provider slot (`_linger`), each with the scope that stops watching it.
        self._lingering: dict[int, anyio.CancelScope] = {}
        self._going = 0  # job tasks started and not ended (`_start`): the run waits for those not lingering
        self._all_sent = False  # the run's loop over the jobs to submit is over
        self._letting_go = False  # only jobs lingering are left: the run ends, leaving them in flight
        self._slot_waits: set[anyio.CancelScope] = set()  # waits for a provider slot (`_acquire`)
        # Owners of the slots taken for the jobs an earlier run left rendering, before any new job is sent
        # (`_take_slots`), not yet handed to their job's task (`_slot`).
        self._taken: set[str] = set()
        self._slots_held = 0  # the slots the jobs lingering held, once they held every one: the run sent nothing more
        self._late = 0  # jobs left at their timeout that finished at the provider while the run went on: downloaded
        self._held_by_budget = 0  # re-runs asked for (retry, --force) that the budget held back
        self._by_video: dict[str, int] = {}  # provider video id -> the job of this run it belongs to
        self._reconciled: anyio.Event | None = None  # set once every one of them is known
        self._resets: dict[int, str] = {}  # job id -> why: settled jobs to re-run, made plannable as each is sent
        # expired jobs a retry asks a fresh URL for first: sent again (paid) only if the provider gives none
        self._fetch_first: set[int] = set()
        self._elsewhere: frozenset[str] = frozenset()  # hashes of done jobs a simulator made at another endpoint
        # with --force --resume, the done jobs it renders again (`resume.Judged.force_only`); None: as `opts` says
        self._force_only: frozenset[str] | None = None
        self._reset_early: set[int] = set()  # ... of them, those made plannable already (failure retries)
        self._refused: str | None = None  # the code of the account or model refusal (FATAL_CODES), once met
        self._unavailable_until: float | None = None  # PROVIDER_UNAVAILABLE: until when (the wall clock), as said
        self._unreached = 0  # jobs left unsent because their create never reached the provider
        self._left_done: set[int] = set()  # done jobs to re-render that this run put back done, not sent
        # of those, the simulator's placeholders made at another endpoint: a plain run re-renders them, not --force
        self._left_elsewhere: set[int] = set()
        self._doubted = False  # a reported cost was doubted in this run (said once, in `errors`)
        self._above = False  # a render was billed above its estimate's upper factor (said once, in `errors`)
        self._lowered = False  # a render was billed at gridrun's own price, lowered by a file (said once, in `errors`)
        # the provider made two videos for one key (`_check_key`: a create sent again with it got a new video, and the
        # request log lists another): for the rest of the run no create is sent again on a key's account (which key
        # a job is sent with does not change)
        self._keys_ignored = False
        # a lookup found that the provider keeps no request log to find a create in (`_find`): none of this run's
        # can tell whether a lost create was made
        self._no_log = False
        self._unanswered: dict[str, str] = {}  # video -> why its last polls got no status (read by `_watch`)
        # since when (`steady`) every poll failed for want of this process's file descriptors (`_files_out`)
        self._files_out_since: float | None = None
        self._files_ran_out = False  # ... for FILES_OUT_AFTER: `_watch` then leaves the jobs in flight
        self._files_out_event: anyio.Event | None = None  # set then (`_files_out_said`)
        self._poll_told: set[tuple[str, str]] = set()  # (video, kind of failure) told among the errors: once each
        # a poll answered 404 told among the errors as the wait for it starts: the job and words it was told of, until
        # the lapses end with every video answered again (then dropped, and a later lapse told again)
        self._missing_said: tuple[Job, str] | None = None
        self._missing_now: set[int] = set()  # the jobs whose polls are answered 404 now (`_watch`)
        self._missing_lost = False  # a lapse ended with its video recorded `unknown`: the note held
        self._poll_noted: dict[str, str] = {}  # video -> the poll failure its job's error says, until answered
        # video -> its job, and when (`clock`) a poll of it last failed as `_poll_noted` says
        self._poll_noted_at: dict[str, tuple[int, float]] = {}
        self._poll_failed: dict[str, dict[str, str]] = {}  # video -> kind -> the poll failure said, until answered
        self._ended = False
        self._altered_kept: list[Path] = []  # done videos found altered, kept under .runs/superseded/
        self._restored: list[resume.Restored] = []  # done videos put back from a copy of gridrun's, nothing fetched
        self._foreign_kept: list[Path] = []  # files no sidecar records in a new video's place, kept there too
        self._unrecorded_kept: list[Path] = []  # takes of other states' in a new video's place, kept there too
        self._tries_after_failure: dict[int, int] = {}  # job id -> new attempts this run made after failures
        self._crash_at = _parse_crash_point(os.environ.get("GRIDRUN_CRASH_AT", ""))
        self._held: str | None = None  # why the run waits for state.db, while another program holds it
        store.on_busy = self._state_busy

    # -- bookkeeping -------------------------------------------------------------------------------
    def _crash_point(self, name: str) -> None:
        """Test hook: GRIDRUN_CRASH_AT=after-submit:3 kills this process (SIGKILL) the 3rd time it passes there."""
        if self._crash_at is None or self._crash_at[0] != name:
            return
        self._crash_at = (name, self._crash_at[1] - 1)
        if self._crash_at[1] <= 0:
            os.kill(os.getpid(), signal.SIGKILL)

    def _set_state(self, job_id: int, to: str, *, put_back: bool = False) -> None:
        """`job_id` is in state `to` now. `put_back`: as it was before this run (a re-run never sent), which ends
        nothing in this run."""
        old = self.states.get(job_id)
        if old is not None:
            self.counts[old] -= 1
            # states are str enums: their values match. A job ends once in a run's pace, however often it fails
            # and is sent again.
            if to == S.SUBMITTING.value:
                self._sent.add(job_id)
            # Only jobs this run sent: one an earlier run (or the run before a sleep) left rendering ends at once
            # when collected, which is no pace; counted, the ETA came out as the elapsed time, growing 1 s a second.
            if (to in FINAL and old not in FINAL and not put_back and job_id not in self._ended_jobs
                    and job_id in self._sent):
                self._ended_jobs.add(job_id)
                self.throughput.ended(self.store.monotonic())  # a step of the wall clock moves no pace
        if put_back and to == S.DONE.value:
            self._left_done.add(job_id)
        self.counts[to] += 1
        self.states[job_id] = to
        self.live.changes += 1

    @property
    def stopping(self) -> str | None:
        """Why the run sends no new jobs (budget, interrupt, fail-fast, fatal, write-failed, files-out); None while it
        does."""
        return self._stopping

    @stopping.setter
    def stopping(self, why: str | None) -> None:
        """Also recorded (event run-stopping), for `status` in another process: the run is stopping, and why."""
        if why and why != self._stopping and self.run_id:
            with contextlib.suppress(Exception):  # a view, like the report: never breaks the paid work
                self.store.event(self.run_id, None, "run-stopping", {"why": why})
                self.live.nudge()
        self._stopping = why
        self._budget_move()

    def _key_of(self, job_id: int) -> str:
        job = self.jobs_by_id.get(job_id)
        return job.key if job is not None else str(job_id)

    def _put_back(self, job_id: int, why: str) -> None:
        """A re-run (`why`: retry, --force, a failure retry) this run did not send: the job as it was."""
        row = self.store.job_row(job_id)
        self._set_state(job_id, row["state"], put_back=True)
        self._placeholder_left(job_id, why)
        self._cached_as_before(job_id, row)
        if self.stopping == "budget" and not resume.is_failure_retry(why):
            self._held_by_budget += 1  # asked for, and held back: the run stopped on its budget

    def _placeholder_left(self, job_id: int, why: str | None) -> None:
        """A job put back done as it was, whose re-render (`why`: its reset's reason) was of a placeholder a simulator
        made at another endpoint: still that placeholder, which a plain run re-renders (not a re-render --force
        sends), recorded for `status` to say so."""
        if why == resume.SIMULATOR_ELSEWHERE and job_id in self._left_done:
            self._left_done.discard(job_id)
            self._left_elsewhere.add(job_id)
            self.store.event(self.run_id, job_id, "placeholder-left", {"reason": why})

    def _cached_as_before(self, job_id: int, row: Any) -> None:
        """A job put back as it was before this run's re-run of it: done, its video is the earlier run's, which
        this run reuses (cached, as a plain run finds it), not one it made."""
        if row["state"] == S.DONE.value:
            self.store.mark_cached(self.run_id, job_id, row["done_run_id"])
            self.cached += 1

    async def _put_back_unsent(self) -> None:
        """The re-runs a stop (Ctrl-C, the budget, a detach) left unsent: each as it was."""
        for jid, why in list(self._resets.items()):
            del self._resets[jid]
            await self._unreset(jid, why)

    async def _unreset(self, job_id: int, why: str) -> None:
        """A re-run this run will not send (its reset already taken from `_resets`): the job as it was, its
        early reset (a failure retry's) undone in the store. A failure retry of a re-render of a done job
        leaves that job done as it was (`_retry_unsent`), not failed."""
        if job_id in self._reset_early:
            self._reset_early.discard(job_id)
            state = self.store.undo_reset(job_id)
            if state is not None and await self._retry_unsent(job_id, state) != state:
                self._error(self.jobs_by_id[job_id], "re-render failed, the earlier video kept: its failure retry "
                                                     f"not sent, the run stopped ({self._stop_reason()})")
        self._put_back(job_id, why)

    def _recorded_submitting(self, job_id: int) -> bool:
        """Whether the state holds the job submitting (its attempt recorded); False where it cannot be read."""
        import sqlite3

        try:
            return self.store.job_row(job_id)["state"] == S.SUBMITTING.value
        except (sqlite3.Error, OSError):
            return False

    async def _void_never_sent(self) -> None:
        """The jobs a detach cut before their creates left (`_not_left`), their attempts recorded: each attempt
        dropped and the job planned again, not sent, as a stop that lets them go on leaves them (`_post`). None of
        their creates left, so none can have been taken: the next run sends them, rather than looking them up."""
        for jid in sorted(self._not_left):
            self._not_left.discard(jid)
            held = self._held_back.pop(jid, None)
            if self.states.get(jid) == S.SUBMITTING.value and self._recorded_submitting(jid):
                why = "before its create left" if held is None else f"while {held}, nothing paid"
                await self._unsent(self.jobs_by_id[jid], jid, f"not sent: the run was interrupted {why}")

    def _stop_reason(self) -> str:
        """Why the run sends nothing more, for a message: its stop, the provider's refusal, or its end."""
        return self.stopping or self._refused or "it ended"

    async def _retry_unsent(self, jid: int, state: JobState) -> JobState:
        """The job's state once the store put it back (`state`) from a failure retry that never reached the
        provider: a failed re-render of a done job whose earlier video is whole is done as it was
        (`resume.retry_not_sent`), counted among the run's failed re-renders when this run saw it fail."""
        whole = state == S.FAILED and await earlier_whole(self.store, jid)
        now = resume.retry_not_sent(self.store, jid, state, run_id=self.run_id, whole=whole)
        if now != state and jid in self._ended_jobs:
            self._rerenders_failed += 1
        return now

    def _made(self) -> tuple[str | None, bool]:
        """Where a take this run saves was made: the endpoint it sends to (as `plan` shows it), and whether a
        simulator answered there (`SIMULATOR_HEADER`)."""
        return self.plan.endpoint[0] or None, bool(getattr(self.provider, "simulator", False))

    def _move(self, job_id: int, to: JobState, *, lazy: bool = False, **fields: Any) -> None:
        self.store.transition(job_id, to, lazy=lazy, **fields)
        if lazy:
            self.live.nudge()
        self._set_state(job_id, to.value)
        self._progress()

    def _last_errors(self) -> tuple[str, ...]:
        """The run's last errors, as many as `errors` keeps; why it stopped sending new jobs (`_stop_note`) first."""
        errors = list(self.errors)
        if self._ended and self._interrupt_said is not None:
            # what the run did as it was interrupted, and what a second signal would do to the jobs then in flight:
            # past once it has ended (what it left is said by the command's closing line), not an error it ended with
            errors = [e for e in errors if e != self._interrupt_said]
        if self._stop_note is None:
            return tuple(errors)
        return (self._stop_note, *errors[1 - (self.errors.maxlen or 1):])

    def _interrupt_now(self) -> None:
        """The note of the signal that interrupted the run (`_signal_note`), said of the jobs in flight now, not
        those in flight when it came: in its place among the last errors, told as the same note (plain lines say it
        once)."""
        if self._interrupt_signal is None or self._interrupt_said is None or self._ended:
            return
        now = self._signal_note(*self._interrupt_signal)
        if now == self._interrupt_said or self._interrupt_said not in self.errors:
            return
        self.errors[self.errors.index(self._interrupt_said)] = now
        self._said_of[now] = (self._said_of.pop(self._interrupt_said, (self._interrupt_said, ()))[0], ())
        self._interrupt_said = now

    def statistics(self) -> RunStatistics:
        counts = dict(self.counts)
        total = len(self.states)
        now = self.steady()
        elapsed, per_minute = self._pace()
        eta = self._eta(counts, now, elapsed, per_minute)
        self._interrupt_now()
        last_errors = self._last_errors()
        said = tuple(self._said_of.get(e, (e, ()))[0] for e in last_errors)
        if self._ended:  # no one polls any more: the failures are over, as said (`said` names them as before)
            last_errors = tuple(e.replace(POLLS_FAIL, POLLS_FAILED) for e in last_errors)
        return RunStatistics(
            run_id=self.run_id, total=total, counts=counts, cached=self.cached, spent_micros=self._spent,
            reserved_micros=self._reserved, budget_micros=self.budget_micros, elapsed=elapsed, eta=eta,
            per_minute=per_minute, requests=self.pacer.requests, stopping=self.stopping, last_errors=last_errors,
            next_check=self._next_check(counts, now), downloaded_bytes=self._fetched(),
            rerenders_cancelled=self._rerenders_cancelled, rerenders_failed=self._rerenders_failed,
            placeholders_failed=self._placeholders_failed, paused=self._paused(), paused_by=self.pacer.asked_by, held=self._held,
            said=said, notes=tuple(e for e in last_errors if e == self._interrupt_said),
            eta_expected=eta is not None and not self.throughput.paced,
            simulated=bool(getattr(self.provider, "simulator", False)),
        )

    def _eta(self, counts: Mapping[str, int], now: float, elapsed: float, per_minute: float | None) -> float | None:
        """Seconds until the jobs left end (`Throughput.eta`), `counts` the jobs by state, `now` on the steady
        clock; None once the run has ended."""
        if self._ended:
            return None
        remaining = len(self.states) - sum(counts[s.value] for s in FINAL)
        if self.stopping:
            remaining -= counts[S.PLANNED.value]  # stopped: no longer submitted; only the jobs in flight still end
        return self.throughput.eta(
            remaining, per_minute, now=self._paced_now(), elapsed=elapsed,
            ends_in=self._ends_in(now, 0 if self.stopping else counts[S.PLANNED.value], counts[S.SUBMITTING.value],
                                  counts[S.DOWNLOADING.value]))

    def _paused(self) -> float | None:
        """Seconds every request still waits as the provider asked (a 429's Retry-After), while the pause asked is
        past PAUSE_SHOWN: counted down to its end, not hidden once less than that is left."""
        wait = self.pacer.not_before - self.pacer.clock()
        return wait if wait > 0 and self.pacer.asked > PAUSE_SHOWN and not self._ended else None

    def _paced_now(self) -> float:
        """Now on the clock the pace is measured by, or the run's recorded end once it ended."""
        return self.store.monotonic() if self._paced_until is None else self._paced_until

    def _ends_in(self, now: float, unsent: int, sending: int = 0, fetching: int = 0) -> float | None:
        """Seconds until the jobs followed at the provider, each expected to end its expected render time after it
        was sent, the `sending` ones being created (a typical job's render time from now, each holding a slot), the
        `fetching` ones downloading (ending now, or nearly), and `unsent` more (a typical job's render time each,
        `concurrency` at once) are expected to have ended (`stats.expected_end`); None without any. The jobs still to
        be created start no sooner than a pause the provider asked for ends (`_paused`'s, a 503's or a 429's
        Retry-After): an ETA that left it out said a minute's wait was a second's."""
        if not self._rendering and unsent <= 0 and sending <= 0 and fetching <= 0:
            return None
        ends = self.renders.ends(self._rendering.values())
        render = self.renders.expected(self.plan.jobs[0]) if self.plan.jobs else 0.0
        wait = max(0.0, self.pacer.not_before - self.pacer.clock()) if unsent > 0 or sending > 0 else 0.0
        ends += [now + wait + render] * sending + [now] * fetching
        # reckoned from the pause's end, where no slot frees for an unsent job sooner
        left = expected_end(now + wait, ends, unsent, self.concurrency, render)
        return None if left is None else left + wait

    def _pace(self) -> tuple[float, float | None]:
        """(elapsed seconds, jobs ended per minute lately) over the run as the state records it: from its start
        to now, or to its recorded end once it ended, which is what `status` measures (`stats.pace`)."""
        now = self._paced_now()
        elapsed = 0.0 if self._paced_from is None else max(0.0, now - self._paced_from)  # not recorded yet: none
        return elapsed, self.throughput.per_minute(now, elapsed)

    def _next_check(self, counts: dict[str, int], now: float) -> float | None:
        """Seconds until a job's status is next asked, when every job in flight waits for its next poll (none
        is being sent, polled or downloaded): what the run waits for. None otherwise, or with less than a
        second to wait. The earliest poll is looked for only then, at most once per progress update."""
        if self._ended or not self._checks or len(self._checks) != sum(counts[s.value] for s in IN_FLIGHT):
            return None
        wait = min(self._checks.values()) - now
        return wait if wait >= 1.0 else None

    def _recorded_checks(self) -> tuple[float | None, float | None, float | None, list[float] | None]:
        """(next check, last answer, expected end) on the wall clock, as the run's heartbeat records them for
        `status` in another process (`Store.seen`): when the provider is next asked about a job while every job in
        flight waits for its poll (`_next_check`; None otherwise), when it last answered a request of the run (None:
        not yet), and, while too few jobs have ended for a pace, when the jobs left are expected to have ended by
        their render times: the run's own `eta ~…` (None otherwise); and the pause every request waits out as the
        provider asked, [when it ends, the HTTP status that asked], while the run's own progress shows it (`_paused`;
        None otherwise)."""
        now, wall = self.steady(), self.clock()
        wait = self._next_check(self.counts, now)
        self._fetched()
        answered = max((t for t in (self.pacer.answered_at, self._streamed_at) if t is not None), default=None)
        expected = None
        if not self.throughput.paced:
            elapsed, per_minute = self._pace()
            eta = self._eta(self.counts, now, elapsed, per_minute)
            expected = None if eta is None else wall + eta
        paused = self._paused()
        pause = None if paused is None else [wall + paused, self.pacer.asked_by]
        return (None if wait is None else wall + wait), (None if answered is None else wall - (now - answered)), \
            expected, pause

    def _fetched(self) -> int | None:
        """The bytes the videos being downloaded have come to so far in this run, read off their `.part` files (a
        `stat` each, as progress is drawn: no work per chunk), each at the most its file has held across its tries
        (a try that goes on from an earlier one's bytes counts them; one that starts the file again from byte 0
        takes nothing away; between two tries the bytes stay), the bytes an earlier run left in it not counted;
        None while none is. A file that grew since it was last seen is the provider answering: a download of
        minutes streams in, the run is not hung (`_streamed_at`, the heartbeat's last answer)."""
        if not self._fetching and not self._fetch_high:
            return None
        now = self.steady()
        for jid, seen in list(self._fetching.items()):  # [its .part, its size last seen, the bytes not this try's,
            # when this try began]
            try:
                size = os.stat(seen[0]).st_size
            except OSError:  # not made yet, or just renamed into place
                size = 0
            if size > seen[1]:
                self._streamed_at = now
            high = self._fetch_high.setdefault(jid, [seen[2], seen[3], seen[2], 0])
            if size > high[0]:  # new bytes of the video: those an earlier try had are not
                self._grown += size - high[0]
                high[0] = size
            if size < seen[2]:  # made anew: an earlier try's or a stopped run's bytes are gone from it
                seen[2] = 0
            if size < high[2]:  # ... and those the run found are
                high[2] = 0
            high[3] = max(high[3], size - high[2])
            seen[1] = size
        if self._grown > self._grew[-1][1]:
            self._grew.append((now, self._grown))
        self._grew_since(now - STOP_UNANSWERED)
        return sum(high[3] for high in self._fetch_high.values())

    def _grew_since(self, since: float) -> int:
        """The bytes the downloads' files have been seen to grow by since `since` (`steady`), at least: the count
        seen last at or before it is their base (`_grew` keeps no older)."""
        grew = self._grew
        while len(grew) > 1 and grew[1][0] <= since:
            grew.popleft()
        return self._grown - grew[0][1]

    def _coming_in(self, now: float) -> bool:
        """Whether the videos being downloaded came in over the last STOP_UNANSWERED seconds: their files grew by
        STOP_STREAM_BYTES a download or more, of every download that can be receiving (`_receiving`)."""
        self._fetched()
        return self._grew_since(now - STOP_UNANSWERED) >= STOP_STREAM_BYTES * self._receiving()

    def _receiving(self) -> int:
        """How many downloads can be receiving bytes at once (at least 1): every job downloading, between tries
        too (of the tries under way now, the count would fall as tries end and rise as they begin again), but of
        each kind no more than hold a download slot: DOWNLOAD_CONNECTIONS from the API's own host,
        HOST_DOWNLOAD_CONNECTIONS from another (a job whose first try has not begun counted among these); the
        others wait for one, and get no byte."""
        downloading = max(len(self._fetching), self.counts.get(S.DOWNLOADING.value, 0))
        at_api = sum(self._download_at_api.values())
        elsewhere = max(0, downloading - at_api)
        return max(1, min(DOWNLOAD_CONNECTIONS, at_api) + min(HOST_DOWNLOAD_CONNECTIONS, elsewhere))


    async def _heartbeat(self) -> None:
        """Report progress every HEARTBEAT seconds, until cancelled: a timer, not work per job."""
        while True:
            await anyio.sleep(HEARTBEAT)
            self._progress(force=True)

    def _progress(self, *, force: bool = False) -> None:
        if self.on_progress is None:
            return
        now = self.steady()
        if force or now - self._last_progress >= PROGRESS_EVERY:
            self._last_progress = now
            statistics = self.statistics()
            try:
                self.on_progress(statistics)
            except (KeyboardInterrupt, SystemExit) as exc:
                # The caller's Ctrl-C, or its exit, out of the callback: not let through the event loop (which would
                # print its shutdown's traceback and leave the run crashed), but the run ended as a detach ends it,
                # interrupted, the jobs in flight left for the next run; raised to the caller after (`api.run`).
                self.on_progress = None
                self.caller_raised = exc
                self.stopping = "interrupt"
                self.detached = True
                if self._scope is not None:
                    self._scope.cancel()
            # A view, like the report: it never breaks the paid work. The call is synchronous, so what it raises is
            # the callback's own, an `asyncio.CancelledError` too (a BaseException), never this task's cancellation.
            except BaseException as exc:
                # ... nor hides the caller's bug: kept with its traceback (`RunResult.progress_error`) and logged
                self.on_progress = None
                self.progress_error = exc
                self.errors.append(f"on_progress failed, not called again: {exception_text(exc)}")
                log.error("on_progress raised %s: %s; the run goes on without calling it again",
                          type(exc).__name__, exc, exc_info=exc)

    def _state_busy(self, waited: float, ended: bool) -> None:
        """A write of the run's state has waited `waited` seconds for another process's write transaction on
        state.db: said among the last errors, and shown at once, since nothing else in the run moves meanwhile.
        `ended`: the write got through, said in the past tense in the same place (the run was held up that long,
        which its pace and the jobs' times show), no longer asking to close a program that let go."""
        where = f"state.db ({self.store.path})"
        if ended:
            text = (f"{where} was held in a write transaction by another process, not gridrun: the run waited "
                    f"{waited:.0f} s for it, nothing else moving; it ended")
        else:
            text = (f"{where} is held in a write transaction by another process, not gridrun (a sqlite3 shell or a "
                    f"database browser, say): the run has waited {waited:.0f} s for it, nothing else moving, and "
                    f"stops after {BUSY_PATIENCE:.0f} s; close it")
        if self.errors and self.errors[-1].startswith(where):
            self.errors[-1] = text
        else:
            self.errors.append(text)
        self._held = None if ended else text
        self._progress(force=True)

    def _error(self, job: Job, message: str) -> None:
        """`message` about `job` among the run's last errors. A message among them already, met by another job, is
        told once, with a count (a provider out of reach fails every job alike, other errors between), moved last
        as the one met last; so is one that differs only by the URL each job's download named (`errors.alike`).
        `status --watch` groups a run's errors alike (`stats.last_errors`)."""
        met = alike(message)
        at = next((i for i, text in enumerate(self.errors)
                   if (said := self._said_of.get(text)) is not None and said[1] and alike(said[0]) == met), None)
        if at is not None:
            was = self.errors[at]
            said, keys = self._said_of.pop(was)
            keys = keys if job.key in keys else (*keys, job.key)  # jobs, not attempts: a failure retry failing alike is one
            message = alike_text([said, message])  # each download's URL left out where they differ
            text = said_of_jobs(self._first_planned(keys), len(keys), message) if len(keys) > 1 else was
            del self.errors[at]
        else:
            text, keys = said_of_jobs(job.key, 1, message), (job.key,)
        self.errors.append(text)
        self._said_of[text] = (message, keys)
        if len(self._said_of) > 4 * (self.errors.maxlen or 5):  # those no longer among the last errors
            for said in [t for t in self._said_of if t not in self.errors]:
                del self._said_of[said]

    def _first_planned(self, keys: Sequence[str]) -> str:
        """Of the jobs `keys`, the first in plan order: what a group of them is named after among the last errors,
        as `status` and the run's closing line name it, however they ended."""
        if self._plan_order is None:
            self._plan_order = {j.key: i for i, j in enumerate(self.plan.jobs)}
        order = self._plan_order
        return min(keys, key=lambda k: order.get(k, len(order)))

    def _unsay(self, job: Job, message: str) -> None:
        """`message` no longer true of `job` (a job left at its timeout that then finished): it is taken from the
        entry of the last errors that names it, and the entry dropped once it names no job."""
        for i, text in enumerate(self.errors):
            said, keys = self._said_of.get(text, ("", ()))
            if alike(said) != alike(message) or job.key not in keys:
                continue
            del self._said_of[text]
            keys = tuple(k for k in keys if k != job.key)
            n = len(keys)
            new = said_of_jobs(self._first_planned(keys), n, message) if n else None
            if new is None:
                del self.errors[i]
            else:
                self.errors[i] = new
                self._said_of[new] = (message, keys)
            self.live.nudge()
            return

    # -- budget ------------------------------------------------------------------------------------
    def _sending_stopped(self) -> bool:
        """Whether the run sends no new paid attempt. A run stopped by its budget with --allow-partial still sends
        those that fit it (the jobs and failure retries already waiting for the budget): it stops sending new
        jobs, not spending what is left."""
        return bool(self.stopping) and not (self.stopping == "budget" and self.opts.allow_partial)

    async def _reserve(self, job: Job) -> bool:
        """Whether the job's estimate is reserved against the budget, so that it may be sent. With --allow-partial,
        one that does not fit beside the reserves of the jobs in flight waits for them to settle (a failure at $0
        frees its reserve) and is checked again; the run stops for its budget once nothing in flight could free
        enough for it. The run says it is stopping for its budget (`status`, the progress line) from the first job
        that does not fit; those waiting, and jobs after them that fit, are still sent. spent + reserved never passes
        the budget. Once completed renders were seen billed above their estimates (this run's, or clearly so an
        earlier run's: `_billing`), the reserves count at the highest ratio seen: a job is sent only while what the
        jobs in flight and it are known to cost fits beside what was spent."""
        while True:
            if self._sending_stopped() or self._refused:
                return False
            cap = self.budget_micros
            weight = self._weight(job)
            if cap is None or self._spent + scaled(self._reserved + weight, self._billing) <= cap:
                break
            if self.stopping != "budget":
                self.stopping = "budget"  # once: each change wakes the jobs that wait
            freeable = sum(self._freeable.values())
            if not (self.opts.allow_partial and freeable
                    and self._spent + scaled(self._reserved - freeable + weight, self._billing) <= cap):
                return False
            if self._budget_moved is None:
                self._budget_moved = anyio.Event()
            await self._budget_moved.wait()
        self._freeable[self.ids[job.hash]] = self._hold(job)
        return True

    def _weight(self, job: Job) -> int:
        """What the budget reserves for `job`: its estimate; for a job a capabilities file of the manifest prices
        lower than gridrun's own data (`Plan.lowered`), once this run saw such a job billed at gridrun's price,
        that price where higher: its estimate (at a file's price near or at 0) says nothing of its bill."""
        own = self.plan.lowered.get(job.hash) if self._lowered else None
        return job.cost_micros if own is None else max(job.cost_micros, own)

    def _hold(self, job: Job) -> int:
        """Reserve `job`'s weight (`_weight`) against the budget; returns it."""
        jid, weight = self.ids[job.hash], self._weight(job)
        self._reserves[jid] = self._reserves.get(jid, 0) + weight
        self._reserved += weight
        return weight

    def _unhold(self, job: Job) -> None:
        """Free what `_hold` reserved for `job` (its estimate, where nothing is recorded)."""
        self._reserved = max(0, self._reserved - self._reserves.pop(self.ids[job.hash], job.cost_micros))

    def _lowered_seen(self) -> None:
        """A job a capabilities file prices lower was billed at gridrun's price: from now on such jobs weigh that
        price (`_weight`), those in flight too, their reserves raised to it."""
        self._lowered = True
        # what the next step and `status` say sending those not sent costs
        self.store.raise_estimates(self.plan.lowered, billed=True)
        hashes = {jid: h for h, jid in self.ids.items()}
        for jid, held in self._reserves.items():
            own = self.plan.lowered.get(hashes.get(jid, ""))
            if own is not None and own > held:
                self._reserved += own - held
                self._reserves[jid] = own
                if jid in self._freeable:
                    self._freeable[jid] = own

    def _budget_move(self, jid: int | None = None) -> None:
        """The job `jid`'s reserve can no longer be freed by this run (it settled, or its task ended), or the run's
        stop changed: the jobs waiting for the budget check again."""
        if jid is not None:
            self._freeable.pop(jid, None)
        if self._budget_moved is not None:
            self._budget_moved.set()
            self._budget_moved = None

    def _settle(self, job: Job, billed: int | None) -> None:
        """The job's estimate no longer reserved, and `billed` (None: nothing) spent: once what its render
        counts is known (its completion seen, a failure, a cancel), or once it is not sent after all."""
        if self.ids[job.hash] in self._prepaid:
            return  # neither reserved nor spent by this run
        if self.ids[job.hash] in self._senders:  # the sender's money, not this run's
            self._senders.discard(self.ids[job.hash])
            self._budget_move(self.ids[job.hash])
            return
        self._unhold(job)
        if billed:
            self._spent += billed
            if self.ids[job.hash] not in self._sent:
                self._followed.add(self.ids[job.hash])
        self._budget_move(self.ids[job.hash])

    def _billed(self, job: Job, jid: int, status: VideoStatus, *, completed: bool, tell: bool = False) -> int | None:
        """What the render of `status` counts against the budget (`counted_cost`): the provider's figure, or
        the estimate when that figure is implausible. `tell`: the first sight of this render's cost, where a
        doubted one is recorded on the job (event cost-doubted, both figures) and said once per run."""
        own = self.plan.lowered.get(job.hash)
        billed, doubted = counted(self.store, self.run_id, jid, job.cost_micros, status, completed=completed, tell=tell,
                                  own=own)
        if tell and not self._lowered and own is not None and not doubted and status.cost_micros is not None \
                and completed and status.cost_micros > BILLED_FACTOR * job.cost_micros:
            self._lowered_seen()
            m = self.plan.manifest
            where = capabilities.prices_from(m.provider, m.model, m.data.get("capabilities") or [], m.base_dir)
            where = where.removeprefix("capabilities file ")
            self._error(job, f"the provider billed {usd_text(status.cost_micros)} for a job estimated "
                             f"{usd_text(job.cost_micros)} at the prices of {where}, "
                             f"which gridrun's own data prices {usd_text(own)}: counted as billed, against the "
                             "budget; correct or remove that file's prices")
        weight = self._weight(job)  # a job priced lower by a file, once billed at gridrun's price: that price
        if completed and not doubted and billed and status.cost_micros is not None and weight > 0:
            seen = Billing(billed, weight)
            if seen.above(self._billing):
                self._billing = seen  # the budget counts the reserves at it from now on
                self._budget_move()
        if doubted and tell and not self._doubted and status.cost_micros is not None:
            self._doubted = True
            reported, estimate = status.cost_micros, job.cost_micros
            low, high = billed_factors(completed)
            self._error(job, f"the provider reported a cost of {usd_text(reported)}, not within {low:g}-{high:g}x "
                             f"the estimate of {usd_text(estimate)}: the estimate counts against the budget, for "
                             "this job and any other such (event cost-doubted); the reported figure is recorded")
        if tell and not self._above and status.cost_micros is not None \
                and billed_above(job.cost_micros, status.cost_micros, completed=completed):
            self._above = True
            m = self.plan.manifest
            where = capabilities.prices_from(m.provider, m.model, m.data.get("capabilities") or [], m.base_dir)
            self._error(job, billed_above_note(job.cost_micros, status.cost_micros, prices_from=where))
        return billed

    # -- the run -----------------------------------------------------------------------------------
    def judge(self) -> resume.Judged:
        """What the run does with each job, the budget checked (`resume.judge`); nothing recorded.

        :raises BudgetError, InFlightError: the run is refused.
        """
        return resume.judge(self.plan, self.store, self.opts, budget_micros=self.budget_micros,
                            failure_retries=self.failure_retries)

    async def check_balance(self, client: Any, judged: resume.Judged) -> None:
        """Before anything is sent, the account's balance against the jobs the run sends (`balance.check`: once,
        best effort), told to `on_balance`.

        :raises BalanceError: the balance is known and below their cost; nothing is recorded or sent.
        :raises EndpointError: a web page answered in the API's place; nothing is recorded or sent.
        """
        # the jobs of unknown outcome a retry --unknown sends again (a new create, unless a lookup finds them) too
        sends = [*judged.submit, *judged.resend]
        sent = balance.to_send(sends, judged.in_flight, budget_micros=self.budget_micros,
                               allow_partial=self.opts.allow_partial, billing=judged.billing)
        # the account pays the bills: a run without a budget weighs its jobs at the ratio the latest bills showed too
        billing = judged.billing if self.budget_micros is not None else resume.budget_billing(self.plan, self.store)
        found = await balance.check(self.provider, client, sent, billing=billing)
        if self.on_balance is not None:
            self.on_balance(found)
        if found.outcome == "short":
            raise balance.refusal(found, sends, judged.in_flight, billing)
        if found.outcome == "web_page":
            raise balance.not_the_api(found, self.provider)

    def prepare(self, judged: resume.Judged | None = None) -> tuple[list[Job], list[Job], list[Job]]:
        """Record the run and its jobs (`resume.prepare`, given `judged` or judging them itself: refused runs
        record nothing); (to submit, to reconcile, to attach)."""
        s = resume.prepare(self.plan, self.store, self.opts, budget_micros=self.budget_micros, argv=self.argv,
                           failure_retries=self.failure_retries, judged=judged)
        self.run_id, self.ids, self.cached = s.run_id, s.ids, s.cached
        self._paced_from = self.store.run_began
        self._prepaid, self._resets = s.prepaid, s.resets
        self._fetch_first = s.fetch_first
        self._elsewhere = s.elsewhere
        self._force_only = s.force_only
        self._altered_kept, self._foreign_kept = s.altered_kept, s.foreign_kept
        self._restored = s.restored
        self._unrecorded_kept = s.unrecorded_kept
        self.errors.extend(s.problems)
        self._not_copied = len(s.not_copied)
        if s.not_copied:
            # Done videos this run was to copy to their new paths (a changed output template) that the disk did not
            # take: left where they are, and the run fails as a download that cannot be saved does.
            self.stopping = "write-failed"
            if says_disk_full(s.not_copied_why or ""):
                self._full_disk(s.not_copied_why)
            n = len(s.not_copied)
            videos = (f"the videos of {n:,} done job{'s' if n != 1 else ''}, whole where they were, not copied to "
                      f"their new paths: {s.not_copied_why}")
            if s.submit or s.reconcile or s.attach:
                self._stop_note = (f"sent no new jobs: videos cannot be saved ({videos}); jobs in flight are "
                                   "followed, and fetched once there is room; the next run copies them")
            else:  # nothing to send or follow: the copies alone
                self._stop_note = f"{videos}; the next run with room copies them"
        elif s.unwritable is not None and not (s.submit or s.reconcile):  # nothing to send: a problem, no more
            self.errors.append(resume.copy_not_written(s.unwritable))
        elif s.unwritable is not None:
            # The output folder took not even the run's manifest copy (a full disk): every video rendered now
            # would be paid for and not saved. The jobs in flight are followed still, and fetched if they can be.
            self.stopping = "write-failed"
            if says_disk_full(s.unwritable):
                self._full_disk(s.unwritable)
            self._stop_note = (f"sent no new jobs: videos cannot be saved (manifest copy not written: "
                               f"{s.unwritable}); jobs in flight are followed, and fetched once there is room")
        if self.failure_retries:  # but for jobs re-run on request (retry, --force): their count begins again
            made = self.store.failure_retries_made(list(s.ids.values()))
            self._tries_after_failure = {jid: n for jid, n in made.items() if jid not in s.resets}
        self.jobs_by_id = s.jobs_by_id
        for jid, state in s.states.items():
            self._set_state(jid, state.value)
        return s.submit, s.reconcile, s.attach

    async def run(self) -> RunResult:
        # Made first: a missing key stops the run before anything is recorded or sent.
        client = self.provider.client(max_connections=HTTP_CONNECTIONS + HOST_DOWNLOAD_CONNECTIONS,
                                      timeout=self.opts.request_timeout)
        try:
            judged = self.judge()  # BudgetError: nothing recorded
            self._billing = judged.billing
            async with client:
                self.client = client
                await self.provider.prepare(client)
                await self.check_balance(client, judged)  # BalanceError: nothing recorded or sent
                submit, reconcile, attach = self.prepare(judged)
                self._limiter = anyio.CapacityLimiter(self.concurrency)
                self._interrupted = anyio.Event()  # made in the event loop (older anyio needs one)
                if self.stopping == "interrupt":
                    self._interrupted.set()
                self._intents = IntentBatcher(self.store, self.run_id, self._made)
                self._poller = None
                if self.provider.caps.has_list_endpoint and not self.poll_interval:
                    self._poller = ListPoller(
                        self.provider, client, self.pacer, interval=self.renders.list_interval,
                        before_poll=self.store.flush, on_error=self.errors.append, clock=self.steady,
                    )
                # The run's signal handling is put in place here, in this task, before any task of the group runs:
                # until it is, a signal raises KeyboardInterrupt (`entry.interrupt`), which asyncio lets out of the
                # event loop from whichever task it lands in; from this one it ends the run as interrupted.
                with self._signals_taken() as taken:
                    async with anyio.create_task_group() as tg:
                        self._scope = tg.cancel_scope
                        if self.caller_raised is not None:  # out of `on_progress` as the run began
                            tg.cancel_scope.cancel()
                        if taken is not None:
                            tg.start_soon(self._signals, taken, tg.cancel_scope)
                        if self.stop is not None or self.detach is not None:
                            tg.start_soon(self._heed, tg.cancel_scope)
                        tg.start_soon(self._unanswered_stop, tg.cancel_scope)
                        tg.start_soon(self.live.loop)
                        tg.start_soon(self._heartbeat)
                        tg.start_soon(self._intents.loop)
                        if self._poller is not None:
                            tg.start_soon(self._poller.loop)
                        async with anyio.create_task_group() as jobs:
                            self._take_slots(attach)
                            for job in attach:
                                self._start(jobs, self._attach_taken, job)
                            self._reconciling = len(reconcile)
                            self._reconciled = anyio.Event()  # made in the event loop (older anyio needs one)
                            for job in reconcile:
                                self._start(jobs, self._reconcile_job, job)
                            if reconcile and submit:
                                await self._reconciled.wait()
                            for job in submit:
                                if not await self._acquire(job.hash):
                                    break  # every slot held by jobs left at their timeout
                                self._heed_stop()
                                if self._sending_stopped() or self._refused:
                                    self._limiter.release_on_behalf_of(job.hash)
                                    break
                                self._start(jobs, self._submit_job, job)
                            self._all_sent = True
                            self._slots_check()
                        tg.cancel_scope.cancel()
                    self._scope = None
                    # After the task group, which a detach (the second Ctrl-C) cancels while jobs wait to be sent,
                    # the run's signal receiver stays open, read by no task: a Ctrl-C pressed again meanwhile is
                    # taken by it and goes no further (the run is ending anyway), so that it cuts neither the
                    # jobs put back nor the record of the run's end.
                    await self._put_back_unsent()
                    await self._void_never_sent()
                    ended = self._end()
                    if taken is not None:
                        hold()  # the command's handler, put back next, lets a signal go until it has said the end
        except BaseException as exc:
            # Whatever ends the run here (Ctrl-C without signal handling or before `_signals` takes over, a bug),
            # its record says it ended: a run left `running` would look alive to `status --watch` and the report's
            # reload. A run refused (`prepare`) is not recorded; one that failed in it recorded its end there.
            run_id = self.run_id or self.store.run_id  # the store's: recorded, but `prepare` had not returned
            if run_id:
                if not _interrupt(exc):
                    self._full_disk(self._full_disk_problem(exc))
                self._record_end(run_id, "interrupted" if _interrupt(exc) else "crashed")  # flushes first
                self._ended = True
                self._progress(force=True)  # the last call: the figures the run ended with
            raise  # the error that ended the run, not one its record met
        try:
            return self._finish(*ended)
        except BaseException as exc:  # Ctrl-C or SIGTERM as the run ends: its record says so (once: end_run)
            if not _interrupt(exc):
                self._full_disk(self._full_disk_problem(exc))
            self._record_end(self.run_id, "interrupted" if _interrupt(exc) else "crashed")
            raise

    def _full_disk(self, problem: str | None) -> None:
        """A disk the run writes had no room left (`problem`: which file, the system's words, what to do; None: it
        was not that): the cause its end records, the first met."""
        if problem is not None and self._stopped_by is None:
            self._stopped_by = {"cause": DISK_FULL, "note": (
                f"stopped on a full disk: {problem}, then `gridrun run` goes on from where it stopped (what was sent "
                "is fetched at no new cost, nothing is paid twice)")}

    def _full_disk_problem(self, exc: BaseException, *, writing: str | None = None) -> str | None:
        """What a full disk did, where `exc` (an error that ended the run, a group of them, or what they were
        raised from) is a write it refused: the state's (SQLite's "database or disk is full") or a file's (no space
        left, a quota reached; `writing`: the video it wrote, where the system's error names no file, as a write to
        an open file's does, or its `.part` file, named as the video as the job's error names it); None where none
        is."""
        import sqlite3

        from .state import remedy

        seen: set[int] = set()
        todo: list[BaseException | None] = [exc]
        while todo:
            e = todo.pop()
            if e is None or id(e) in seen:
                continue
            seen.add(id(e))
            if isinstance(e, sqlite3.Error) and getattr(e, "sqlite_errorcode", 0) & 0xFF == sqlite3.SQLITE_FULL:
                return f"the state store {self.store.path} could not be written ({e}); {remedy(e, folder=self.store.path.parent)}"
            if isinstance(e, OSError) and disk_full(e):
                if writing is not None and (not (e.filename or e.filename2) or e.filename == files_beside(writing)[0]):
                    e = OSError(e.errno, e.strerror, writing)
                return write_problem(e)
            if isinstance(e, BaseExceptionGroup):
                todo.extend(e.exceptions)
            todo.extend((e.__cause__, e.__context__))
        return None

    def _record_end(self, run_id: int, status: str) -> None:
        """Record the end of a run that an error or an interrupt ended, as far as the state lets it be written: a
        further Ctrl-C meanwhile (pressed again and again) rolls the write back and it is made again, a few times,
        so that the run is not left recorded as running (which `status` would show gone)."""
        for _ in range(END_TRIES):
            try:
                with contextlib.suppress(Exception):
                    self.store.end_run(run_id, status, stopped_by=self._stopped_by)
                return
            except KeyboardInterrupt:
                continue

    def _cancelled_outside(self) -> int:
        """The run's jobs left cancelled by a cancel `gridrun cancel` did not ask for (seen by this run, or recorded
        by an earlier one): not the user's decision, so the run did not finish them."""
        n = 0
        for jid, state in self.states.items():
            if state != S.CANCELLED.value:
                continue
            if jid in self._cancelled_elsewhere or (self.store.job_row(jid)["error"] or "") == CANCELLED_ELSEWHERE:
                n += 1
        return n

    def _end(self) -> tuple[str, bool]:
        """The run's outcome, recorded (end_run flushes the last deferred writes), and its last progress call:
        (its status, whether a Ctrl-C once it was recorded cost the rest, the report)."""
        self._ended = True  # what is left waits for the next run: no ETA
        stats = self.statistics()
        c = stats.counts
        flying = any(s in IN_FLIGHT_STATES for s in self.states.values())
        # Left unsent only because their timeout passed while a 429's pause held the creates: nothing failed.
        paused_out = self.stopping is None and all(
            jid in self._paused_out for jid, s in self.states.items() if s == S.PLANNED.value)
        if self.detached or self.stopping == "interrupt":
            status = "interrupted"
        elif self._refused and not any(c[s] for s in ("failed", "rejected", "unknown", "expired")) and (
                self._not_rerun or self._left_done or self._left_elsewhere or c["planned"] or flying):
            # Stopped by the provider's refusal of the account (a balance too low, a key refused) or of the model,
            # nothing failed: what it left is sent once that is fixed, not a failure to look for. So also when the
            # budget had begun stopping the run (--allow-partial sends the jobs that still fit): a larger budget
            # would not send what is left, fixing the refusal does.
            status = "refused"
        elif self.stopping == "budget" and (c["planned"] or self._held_by_budget):
            status = "budget"
        elif self._not_rerun or self._rerenders_failed or self._not_copied or self._cancelled_outside() or any(
                c[s] for s in ("failed", "rejected", "unknown", "expired")) or (
                c["planned"] and self.stopping != "timeout" and not paused_out):
            status = "failed"
        elif flying or c["planned"]:
            # Left at the provider only because their timeout passed, the run otherwise whole: incomplete, and
            # `gridrun run` collects them; so are the jobs left unsent because such jobs held every provider slot
            # (stopping "timeout"), which it sends. Left for another reason (no status it can read, a download that
            # could not be saved): failed.
            timed_out = self.stopping in (None, "budget", "timeout") and all(
                jid in self._timed_out for jid, s in self.states.items() if s in IN_FLIGHT_STATES)
            status = "incomplete" if timed_out else "failed"
        elif c["cancelled"]:
            status = "cancelled"  # the rest is done: the cancelled jobs were the user's decision
        else:
            status = "done"
        # Once the run's outcome is recorded, a Ctrl-C costs the last progress call or the report, not the outcome
        # (as during the final report, `LiveViews.final_report`); one before it is recorded ends the run interrupted.
        for jid, n in self._found_unknown.items():
            self.store.settle_found(jid, n)  # the runs that sent them record what they cost
        self._polls_over()
        interrupted = False
        try:
            self.store.end_run(self.run_id, status, stopped_by=self._stopped_by if status != "done" else None)
        except KeyboardInterrupt:
            if self.store.run(self.run_id).status == "running":
                raise
            interrupted = True
        if not interrupted:
            try:
                took = self.store.run(self.run_id).duration
                self._paced_until = (self.store.monotonic() if took is None or self._paced_from is None
                                     else self._paced_from + took)
                self._progress(force=True)  # the last call, whatever the throttle left out: the figures it ended with
            except KeyboardInterrupt:
                interrupted = True
            # a Ctrl-C out of `on_progress` then costs the report, as one pressed then does
            interrupted = interrupted or isinstance(self.caller_raised, KeyboardInterrupt)
        return status, interrupted

    def _finish(self, status: str, interrupted: bool) -> RunResult:
        """The run's result once its end is recorded (`_end`), with its final report unless a Ctrl-C cost it."""
        code = run_exit(status, over_budget=self.budget_micros is not None and self._spent > self.budget_micros)
        if interrupted:
            self.live.report_error = "report not written: interrupted"
            self.errors.append(self.live.report_error)
            self.live.final_report_lost()
            report = None
        else:
            report = self.live.final_report()
        moved, now = self.store.moved()
        # what held each job left planned at its timeout, as it waited to send its create
        paused = [why for jid, why in sorted(self._paused_out.items()) if self.states[jid] == S.PLANNED.value]
        return RunResult(self.run_id, code, status, self.statistics(), self.plan.outputs_dir, report,
                         self.live.report_error, tuple(self._altered_kept), restored=tuple(self._restored),
                         refused=self._refused,
                         unreached=self._unreached, left_done=len(self._left_done),
                         left_elsewhere=len(self._left_elsewhere),
                         foreign_kept=tuple(self._foreign_kept), unrecorded_kept=tuple(self._unrecorded_kept),
                         slots_held=self._slots_held, late=self._late, not_copied=self._not_copied,
                         paused_out=len(paused),
                         paused_unreached=sum(kind == "unreached" for kind, _ in paused),
                         paused_answered=tuple(status for kind, status in paused if kind == "answered"),
                         followed=len(self._followed), progress_error=self.progress_error,
                         cancelled_elsewhere=self._cancelled_outside(),
                         unavailable_until=self._unavailable_until,
                         queued_cancel_free=self.provider.caps.queued_cancel_free,
                         odd_status_left=tuple((self.states[jid], raw) for jid, raw in self._odd_status.items()
                                               if self.states[jid] in IN_FLIGHT_STATES),
                         moved=moved, outputs_now=None if now is None else outputs_moved(
                             self.store.real, now, self.plan.outputs_dir), state_now=now)

    @contextlib.contextmanager
    def _signals_taken(self) -> Iterator[_Signals | None]:
        """The run's handling of Ctrl-C, SIGTERM and SIGHUP (`handle_signals`), in place until the run's task group
        has ended; None without it. What the process had before (each signal's handler, the signal wakeup fd) is put
        back after the run."""
        if not self.opts.handle_signals:
            yield None
            return
        # Ctrl-C or SIGTERM a launcher set to be ignored (`trap '' INT`, a shell's background job) stays ignored, as
        # the command leaves it while it loads.
        wanted = [s for s in (signal.SIGINT, signal.SIGTERM) if signal.getsignal(s) is not signal.SIG_IGN]
        hangup = getattr(signal, "SIGHUP", None)
        # The terminal closed, an SSH session dropped: stop as on SIGTERM. Taken only where the hangup would kill
        # the process (the `gridrun` command's case); under nohup it stays ignored, and a program that runs gridrun
        # with a handler of its own (a reload of its settings) keeps it. The command's `entry.interrupt`, set as it
        # loads where the hangup would kill it, stands for the default.
        if hangup is not None and signal.getsignal(hangup) in (signal.SIG_DFL, interrupt):
            wanted.append(hangup)
        # Which of the output streams are the terminal, asked now: after a hangup the terminal answers nothing.
        taken = _Signals(hangup, [stream for stream in (sys.stdout, sys.stderr) if _is_tty(stream)])
        # The handlers before this run's (the `gridrun` command's, which end it as interrupted) are put back after
        # it, and the signal wakeup fd (`signals.taken`).
        try:
            with signals.taken(wanted) as taken.receiver:
                yield taken
        finally:
            _unmute_live(taken.muted)

    async def _signals(self, taken: _Signals, scope: anyio.CancelScope) -> None:
        """Ctrl-C, SIGTERM and SIGHUP (`_signals_taken`) stop the run. The first Ctrl-C (or a hangup sent while the
        terminal is still there) stops sending and finishes what is paid; the second signal detaches. A first
        SIGTERM (`timeout`, a CI runner's cancel, `docker stop`: a supervisor that kills the process a few seconds
        later) or a hangup with no terminal left (no one to press Ctrl-C again) detaches at once: the jobs in flight
        are left recorded for the next run to collect at no new cost, the run's end recorded before any kill."""
        async for signum in taken.receiver:
            if signum == taken.hangup and not taken.muted:
                # asked before muting: a closed terminal is no longer one (EIO), one sent SIGHUP by hand still is
                taken.left = any(_is_tty(stream) for stream in taken.ttys)
                taken.muted = _mute_terminal(taken.ttys)
            if self.stopping != "interrupt":
                terminal = taken.left if signum == taken.hangup else bool(taken.ttys) and not taken.muted
                self._interrupt(None, said=self._signal_note(signum, terminal))
                self._interrupt_signal = (signum, terminal)
                if _finishes(signum, terminal):
                    continue
            self._detach(scope)
            return

    def _signal_note(self, signum: int, terminal: bool) -> str:
        """What the first signal (`signum`) does now, named as received, and what a second one would do, where it
        finishes the jobs in flight (`_finishes`). `terminal`: a terminal is there to press Ctrl-C in."""
        # Shown submitting, but with no create out (`_not_left`): left planned, not sent, as the run's end says.
        unsent = sum(self.states.get(jid) == S.SUBMITTING.value for jid in self._not_left)
        flying = sum(self.counts[s.value] for s in IN_FLIGHT) - unsent
        name = "Ctrl-C" if signum == signal.SIGINT else signal.Signals(signum).name
        if not flying:
            return f"interrupted by {name}: no new submissions; nothing paid is in flight, the run ends"
        # Only those rendering or rendered are known paid: one queued at the provider is paid once it renders,
        # which finishing it waits for; cancelled before, it costs nothing where the provider bills no queued cancel
        # (`queued_cancel_free`), and may cost its price where it does not say. One whose create was sent and never
        # answered is no job the next run collects: it looks it up by key and sends it again if the provider has
        # none, which may cost its estimate (as the run's closing lines say).
        unanswered = self.counts[S.SUBMITTING.value] - unsent
        waiting = self.counts[S.SUBMITTED.value]
        known = flying - unanswered
        jobs = f"{flying:,} {'' if waiting or unanswered else 'paid '}job{'s' if flying != 1 else ''}"
        paid = known - waiting
        free = self.provider.caps.queued_cancel_free
        once = f", paid only once {'it renders' if waiting == 1 else 'they render'}" if free else ""
        waits = f"{f'{paid:,} rendering or rendered, paid; ' if paid else ''}{waiting:,} not yet seen rendering{once}"
        one = unanswered == 1
        lost = (f"{unanswered:,} sent whose answer never came (created or not, unknown): `gridrun run` looks "
                f"{'it' if one else 'them'} up by key and sends {'it' if one else 'them'} again if the provider has "
                f"none, which may cost {'its' if one else 'their'} estimate")
        if not _finishes(signum, terminal):
            # What was left, first: said before the rest (the live display shows the note whole, wrapped: `notes`).
            note = f"interrupted by {name}: left the {jobs} in flight to the next run"
            if known:
                them = "them" if known != 1 else "it"
                which = "" if not unanswered else f" the {known:,} answered" if known != 1 else " the one answered"
                note = f"{note}; `gridrun run` collects{which}{'' if which else f' {them}'} at no new cost"
                if waiting:
                    note = f"{note} ({waits}: `gridrun cancel` {queued_cancel_said(free, waiting == 1)})"
            return f"{note}; {lost}" if unanswered else note
        # What to do first: said before the rest.
        again = "Ctrl-C again" if signum == signal.SIGINT else f"{name} {'or Ctrl-C ' if terminal else ''}again"
        note = (f"{again} leaves the {jobs} in flight to the next run; interrupted by {name}: finishing "
                f"{'them' if flying != 1 else 'it'}, no new submissions")
        asides = []
        if waiting:
            asides.append(f"{waits}: {again}, then `gridrun cancel`, {queued_cancel_said(free, waiting == 1)}")
        elif paid and unanswered:
            asides.append(f"{paid:,} rendering or rendered, paid")
        if unanswered:
            asides.append(lost)
        return f"{note} ({'; '.join(asides)})" if asides else note

    def _interrupt(self, then: str | None, *, said: str | None = None) -> None:
        """The first Ctrl-C, or the caller's `stop`: no new submissions; what is paid for is finished, and the run
        ends interrupted. `then` says how to detach instead, where there is a way; `said`: the whole note, where
        the run says it itself (`_signal_note`)."""
        if self.stopping != "interrupt":
            self.stopping = "interrupt"
            self._interrupted_at = self.steady()
            if self._interrupted is not None:
                self._interrupted.set()
            if said is None:
                said = "interrupted: no new submissions; finishing what is paid for"
                said = f"{said} ({then})" if then else said
            self._interrupt_said = said
            self.errors.append(said)
            self._progress(force=True)

    async def _unanswered_stop(self, scope: anyio.CancelScope) -> None:
        """Once the run is stopping (`_interrupt`), end it as the second signal does when the provider has answered
        no request for STOP_UNANSWERED seconds since, every one of them failing with no answer at all: the jobs in
        flight are left at the provider for the next run, and the run says why. Every request the run waits on
        counts, each with its own tries and backoffs: polls, lookups of a key, creates, and downloads (a failed
        one with no answer, as a poll; the videos' files seen growing by STOP_STREAM_BYTES a download in the last
        STOP_UNANSWERED seconds are an answer, `_coming_in`), and downloads that stall mid-body, no byte coming (or
        a trickle) and no failure either (`_stalled_since`): the run leaves at the first moment, STOP_UNANSWERED
        seconds or more after the stop and the silence began, that they have not come in over the last
        STOP_UNANSWERED seconds."""
        assert self._interrupted is not None
        await self._interrupted.wait()
        while True:
            await anyio.sleep(min(1.0, STOP_UNANSWERED / 4))
            silent = self.pacer.unanswered_since
            flying = sum(self.counts[s.value] for s in IN_FLIGHT)
            if not flying:
                continue
            stalled = silent is None
            if stalled:
                silent = self._stalled_since(flying)
                if silent is None:
                    continue
            now = self.steady()
            # a download streaming in is the provider answering
            if now - max(silent, self._interrupted_at) < STOP_UNANSWERED or self._coming_in(now):
                continue
            self.errors.append(self._stalled_note(flying, now - self._interrupted_at, now) if stalled
                               else self._unanswered_note(flying))
            self._detach(scope)
            return

    def _stalled_since(self, flying: int) -> float | None:
        """While every one of the `flying` jobs in flight is being downloaded (none waits on a render or between
        tries), from when (`steady`) a stopping run may judge the videos not coming in (`_coming_in`): when the
        latest download's first try began (0.0 while none is under way); None otherwise. A download that stalls
        mid-body fails only after `download.STALL_SECONDS`, and one that trickles after `download.TRY_SECONDS`: a
        stopping run counts the bytes across tries, whatever tries come after (a try that ends on the read timeout
        and the next that begins at once, or that fetches the same first bytes again from a server that ignores
        ranges, are no progress)."""
        if self.counts.get(S.DOWNLOADING.value, 0) < flying:  # (between two tries a job is downloading still)
            return None
        self._fetched()
        return max((self._fetch_high[jid][1] for jid in self._fetching), default=0.0)

    def _stalled_note(self, flying: int, stopping: float, now: float) -> str:
        """Why a stopping run left its jobs downloading, `stopping` seconds after the stop (at `now`, `steady`):
        their videos came in under STOP_STREAM_BYTES a download over the last STOP_UNANSWERED s, what came said."""
        jobs = f"{flying:,} paid job{'s' if flying != 1 else ''}"
        got = self._grew_since(now - STOP_UNANSWERED)
        mib = f"{STOP_STREAM_BYTES // 1024**2} MiB"
        receiving = self._receiving()
        size = f"{got / 1e6:,.1f} MB" if got >= 100_000 else f"{got:,} byte{'s' if got != 1 else ''}"
        if not got:
            came = "got nothing"
        elif receiving == 1:
            came = f"got {size} (under {mib})"
        else:
            came = f"got {size} (under {mib} a download, of the {receiving} that can come in at once)"
        return (f"the videos' downloads {came} in the last {STOP_UNANSWERED:g} s, {stopping:.0f} s after the run "
                f"began stopping: left the {jobs} downloading to the next run, as a second signal does; `gridrun run` "
                "fetches them at no new cost")

    def _unanswered_note(self, flying: int) -> str:
        """Why a stopping run left its jobs in flight: the provider has not answered since its last answer."""
        answered = self.pacer.answered_at
        since = ("answered no request of this run" if answered is None else
                 f"not answered since {local_time(self.clock() - (self.steady() - answered))}")
        jobs = f"{flying:,} paid job{'s' if flying != 1 else ''}"
        return (f"the provider has {since} (every request failing for {STOP_UNANSWERED:g} s since the run began "
                f"stopping, with no answer): left the {jobs} in flight to the next run, as a second signal does; "
                "`gridrun run` collects them once the provider answers again")

    def _detach(self, scope: anyio.CancelScope) -> None:
        """The second Ctrl-C, a first SIGTERM (`_signals`), or the caller's `detach`: the run ends at once,
        interrupted; the jobs in flight are left at the provider, their ids kept, for the next run to collect."""
        self.stopping = "interrupt"
        self.detached = True
        scope.cancel()

    def _heed_stop(self) -> None:
        """The caller has set `stop` or `detach`: no new submissions from now on (`_heed` ends the run for
        `detach`)."""
        if any(asked is not None and asked.is_set() for asked in (self.stop, self.detach)):
            self._interrupt("set `detach` to leave the jobs in flight" if self.detach is not None else None)

    async def _heed(self, scope: anyio.CancelScope) -> None:
        """Stop the run when the caller (another thread) sets `stop`, detach it when it sets `detach`, as the first
        and second Ctrl-C do; asked every STOP_CHECK seconds until the run ends."""
        while True:
            if self.detach is not None and self.detach.is_set():
                self._detach(scope)
                return
            self._heed_stop()
            await anyio.sleep(STOP_CHECK)

    # -- one job -----------------------------------------------------------------------------------
    async def _submit_job(self, job: Job) -> None:
        """Submit and follow one job; it holds the provider slot `run()` acquired for it until it ends there."""
        jid = self.ids[job.hash]
        slot = _Slot(self._limiter, job.hash, self.concurrency)
        try:
            going = await self._reserve(job)
            if going and (self._sending_stopped() or self._refused):
                self._settle(job, None)
                going = False
            if not going:
                why = self._resets.pop(jid, None)
                if why is not None:  # a re-run never begun: the job stays as it was (done, failed), not planned
                    await self._unreset(jid, why)
                return
            reset = self._resets.pop(jid, None)
            if reset is not None:
                if jid in self._reset_early:
                    self._reset_early.discard(jid)
                else:
                    self.store.reset(jid, reset)
                self._crash_point("after-reset")
            # Reserved, so shown as submitting from now on (the reserve is what jobs in flight may cost), while
            # its attempt is committed with those of every job sent in the same moment.
            before = self.states[jid]
            self._set_state(jid, S.SUBMITTING.value)
            self._not_left.add(jid)
            try:
                key = await self._intents.reserve(jid)
                self._intended[jid] = self.steady()
            except BaseException:  # a detach, a state that cannot be written: the job was not sent
                if not self._recorded_submitting(jid):  # nor its attempt recorded: as it was
                    self._not_left.discard(jid)
                    self._settle(job, None)
                    self._set_state(jid, before, put_back=True)
                raise  # recorded before the detach took it: its attempt dropped once the run stops
            self._crash_point("before-submit")
            status = await self._post(job, jid, key)
            if status is None:
                return
            await self._follow(job, jid, status, slot)
        finally:
            slot.release()
            self._budget_move(jid)  # followed no more: whatever it still reserves, this run does not free

    def _read_images(self, job: Job) -> tuple[Mapping[str, Any], str | None]:
        """`job.params` with each local input image read, once, to be sent as read (`images.ReadImage`), and None;
        or, where a file no longer holds the bytes the plan hashed (written over since: a `git checkout`, a pull,
        an editor) or can no longer be read, why the job is not sent. Sent, new bytes would go under the job's
        hash: its video filed (state, sidecar, a later run's cache) as the request planned, which itself would be
        paid for again later. Such a job is left planned, for the next run's plan to take as it finds the file.
        """
        planned = self.plan.image_digests
        params = job.params
        for name in IMAGE_PARAMS:
            value = job.params.get(name)
            items = value if isinstance(value, list) else [value]
            if not any(isinstance(item, str) and item in planned for item in items):
                continue
            read: list[Any] = []
            for item in items:
                sha256 = planned.get(item) if isinstance(item, str) else None
                if sha256 is None:  # a URL, a data URI: sent as planned
                    read.append(item)
                    continue
                try:
                    found = images.read_as_planned(item, sha256)
                except images.NotRegular as exc:  # a named pipe put in its place: never read, which would wait
                    return job.params, f"{name}: the input image {item} cannot be read since the plan: it {exc.what}"
                except OSError as exc:  # gone since the plan (a checkout of a branch without it), unreadable
                    return job.params, f"{name}: the input image {item} cannot be read since the plan: " \
                                       f"{exc.strerror or exc}"
                if not isinstance(found, images.ReadImage):
                    return job.params, (f"{name}: the input image {item} changed since the plan (it holds other "
                                        f"bytes: SHA-256 {found[:12]}, not the {sha256[:12]} planned)")
                read.append(found)
            if params is job.params:
                params = dict(job.params)
            params[name] = read if isinstance(value, list) else read[0]
        return params, None

    async def _post(
        self, job: Job, jid: int, key: str, *, fresh: bool = True, asked: bool = False,
        resent: bool = False,
    ) -> VideoStatus | None:
        """Send the create request; reconcile an unknown outcome. None when the job did not get an id.

        `fresh`: no earlier process sent this attempt, so a create refused every time (429s alone) surely made
        nothing. A key that may have been received is sent again only inside the provider's dedup window
        (`_key_too_old`); past it the job is `unknown`, but for the first send when `asked` (retry --unknown).

        `resent`: a job an earlier process sent (not `fresh`), which this one sends again with the same key: on the
        key's account, so not once the provider made two videos for one key in this run (`_keys_ignored`).
        Whether its video is new is not asked (`_made_by_this_send`): when the earlier process's sends ended is
        known only by this machine's clock then, which may have been stepped since (suspend and resume, NTP)."""
        try:
            params, changed = self._read_images(job)
            if changed is not None:  # sent, it would be filed as the request the plan made of the file
                if not fresh:
                    return self._give_up(job, jid, f"cannot be sent again ({changed}), and an earlier send may have "
                                                   "reached the provider")
                await self._unsent(job, jid, f"not sent: {changed}; put the file back to send it as planned (as it "
                                             "is now, `gridrun plan` shows what a run sends)")
                return None
            body = self.provider.build_request(params, model=self.plan.model, idempotency_key=key)
            del params  # the images' bytes, now in the body
            unsendable = next(((n, why) for n, v in body.items() if (why := not_json(v)) is not None), None)
            if unsendable is not None:  # the body cannot be written as JSON: nothing of it can leave
                raise RejectedError(f"its request cannot be written as JSON: {unsendable[0]} {unsendable[1]}")
        except RejectedError as exc:  # an input the provider could never take (an input image changed since the plan)
            if not fresh:  # an earlier process sent this attempt: it may have been taken, and cannot be sent again
                return self._give_up(job, jid, f"cannot be sent again ({exc}), and an earlier send may have reached "
                                               "the provider")
            if self.store.job_row(jid)["reset_from"]:
                await self._unsent(job, jid, f"not sent: {exc}")  # a re-run of a settled job: left as it was
                return None
            self._settle(job, None)
            self._move(jid, S.REJECTED, error=f"not sent: {exc}")
            self._error(job, f"not sent: {exc}")
            return None
        tries = 0
        maybe_received = not fresh  # by a create whose answer was lost
        lost = not fresh  # a send of this attempt got no answer (an earlier process's, or a timeout, a reset)
        # Every send of the attempt that may have reached the provider was answered with an HTTP error status (a 5xx):
        # none can still be on its way, so a read of the request log after the last covers them all.
        heard = fresh
        # The next send goes on the key's account (an earlier one may have made the video, which the key is to
        # bring back), and when the last earlier send of this process that may have made one ended, on the steady
        # clock (`steady`, which no step of the wall clock moves): `_made_by_this_send`.
        on_key, since = resent, None
        # The 5xx that answered the last send, when the provider's request log read after it has no video for it
        told: ServerError | None = None
        # The job's timeout counts from here: a create that goes unanswered is not sent again past it.
        self._began[jid] = began = self.steady()
        deadline = None if not self.timeout else began + float(self.timeout)
        while True:
            # Cut short by the interrupt or the deadline, after which no create of the job is sent (a pause of
            # minutes that a 429 asked for would only be waited out to leave).
            await self.pacer.wait(until=deadline, stop=self._interrupted)
            sent = self.steady()
            halted = self._halted(deadline)
            stopped = halted or (f"the run stopped ({self._stop_reason()})" if self._refused else None)
            if stopped and told is not None:
                # Its last send was answered (a 5xx) and the provider's log, read after it, has no video for it:
                # nothing made, as when its tries run out (below). Not sent again after an interrupt, past the
                # deadline, nor once another job found the provider unavailable or the account refused.
                self._not_left.discard(jid)
                self._held_back.pop(jid, None)
                await self._unsent(job, jid, f"not sent again: {stopped}; its create was answered HTTP {told.status} "
                                             f"and the provider's request log has no video for it (nothing paid): "
                                             f"{told}")
                if halted and not self.stopping and self.states[jid] == S.PLANNED.value:
                    self._paused_out[jid] = ("answered", told.status)
                return None
            if halted and maybe_received:
                # A send of it may have been taken: no create is sent after an interrupt, nor past the deadline.
                # The job is left as recorded, its key kept, for the next run to look up (and settle) by its key.
                self._unanswered_left(job, jid, halted, timed_out=self.stopping != "interrupt")
                return None
            if halted and not tries:
                # Its first create waited out the deadline in a pause the provider asked every request to wait (a
                # 429 to another job's create): left by its timeout, nothing failed, as one whose own create met it.
                # A deadline gone for another reason (no such pause holding creates now) is not said to be a 429's.
                paused = not self.stopping and self.pacer.asked_by == 429 and self.pacer.not_before > self.steady()
                await self._unsent(job, jid, f"not sent: {halted}{f' while {_REFUSING},' if paused else ''} before "
                                             "its create left")
                if paused and self.states[jid] == S.PLANNED.value:
                    self._paused_out[jid] = ("429", None)
                return None
            if halted and not self.stopping:
                held = self._held_back.pop(jid, _REFUSING)
                await self._unsent(job, jid, f"not sent: {halted} while {held}")
                if self.states[jid] == S.PLANNED.value:  # left by its timeout, as a job still rendering is: incomplete
                    self._paused_out[jid] = ("unreached" if held == _UNREACHED else "429", None)
                return None
            if self.stopping and not maybe_received and tries:
                # stopped (Ctrl-C, the budget) while the provider would not take it, or could not be reached: it
                # made nothing
                held = self._held_back.pop(jid, _REFUSING)
                await self._unsent(job, jid, f"not sent: the run stopped ({self.stopping}) while {held}")
                return None
            if on_key and not self._honours_keys():
                # The provider made two videos for one key in this run: none is sent again on a key's account.
                return self._give_up(job, jid, "outcome unknown: not sent again with its idempotency key in this run, "
                                               "as the provider made two videos for another job's key")
            too_old = self._key_too_old(jid) if maybe_received else None
            if too_old is not None and not asked:
                return self._not_resent(job, jid, too_old)
            if too_old is not None:
                self._error(job, f"sent again as asked (retry --unknown), though {too_old}")
            asked = False  # what follows a lost answer to this send is gridrun's own doing
            told = None
            # From here on, its create goes out, an interrupt or not (the gate's wait sends it after all)
            self._not_left.discard(jid)
            self._held_back.pop(jid, None)
            try:
                try:
                    async with self.pacer.gate:
                        status = await self.provider.submit(self.client, body)
                except RejectedError as exc:
                    if self._honours_keys() and exc.status == 409 and lost:
                        # The provider knows this attempt's key already (in progress, or used): a send of it whose
                        # answer was lost may have made something. Found by the key, or the same key sent again,
                        # never a new attempt.
                        raise OutcomeUnknownError(f"the provider already knows this request's idempotency key ({exc})",
                                                  status=409, code=exc.code) from exc
                    if self._honours_keys() and exc.status == 409:
                        # No send of the key went unanswered: none can be on its way still. A conflict the provider
                        # answered, looked up in its log as a 5xx is, and given up planned (nothing paid) if the log
                        # keeps having no video for the key.
                        raise ServerError(f"{exc.message} (the idempotency key refused, though no send of it went "
                                          "unanswered)", status=409, code=exc.code) from exc
                    raise self._setup_refusal(exc) from exc
                except ServerError as exc:
                    if exc.status != 501 or not _about_setup(RejectedError(exc.message, status=501, code=exc.code)):
                        raise
                    # The server has no create there (Not Implemented): nothing was taken, as for a 404 or 405.
                    raise self._setup_refusal(RejectedError(exc.message, status=501, code=exc.code)) from exc
                self._crash_point("after-submit")
                self.pacer.ok()
            except RateLimitedError as exc:
                self.pacer.failed(exc, sent_at=sent)
                self._files_out_since = None  # answered: the process had descriptors
                waited = self.pacer.limited(exc.retry_after)
                if exc.retry_after is not None and exc.retry_after > PAUSE_SHOWN:
                    self._error(job, f"rate limited: the provider asks to wait {asked_wait(exc.retry_after)}; every "
                                     f"request waits {waited:,.0f} s")
                tries += 1
                if tries > self.retries + 5:
                    if maybe_received:
                        return self._give_up(job, jid, f"rate limited {tries} times: {exc}")
                    await self._unsent(job, jid, f"rate limited {tries} times, never accepted (nothing paid): {exc}")
                    return None
                self._hold_back(jid, maybe_received, _REFUSING)
                continue
            except ConnectError as exc:
                self.pacer.failed(exc, sent_at=sent)
                tries += 1
                if tries > self.retries:
                    if maybe_received:  # this send never left; an earlier one may have reached it
                        return self._give_up(job, jid, f"sent again, the create could not reach the provider ({exc}), "
                                                       "and an earlier send of it may have")
                    self._unreached += 1
                    await self._unsent(job, jid, f"never reached the provider: {exc}")
                    return None
                self._hold_back(jid, maybe_received, _UNREACHED)
                await self._nap(backoff(tries, getattr(exc, "retry_after", None)), deadline)
                continue
            except RejectedError as exc:
                self.pacer.failed(exc, sent_at=sent)
                if exc.code in FATAL_CODES:
                    self._refused = self._refused or exc.code
                    self.stopping = self.stopping or "fatal"
                if maybe_received:
                    # This send was refused; an earlier one of the attempt may have been taken (and billed): not
                    # `rejected` (nothing paid), which `retry` would pay for again.
                    return self._give_up(job, jid, f"sent again, the create was refused ({exc}), and an earlier send "
                                                   "of it may have reached the provider")
                if exc.code in FATAL_CODES:
                    # Refused for the account or the model, not for what it asks: nothing was made, and once the
                    # balance, the key or the model is fixed the same request is taken. Planned again, so that a
                    # plain run sends it.
                    await self._unsent(job, jid, f"not sent, nothing paid: {exc}")
                    return None
                self._settle(job, None)
                await self._end_badly(job, jid, S.REJECTED, error=str(exc))
                return None
            except (OutcomeUnknownError, RetryableError) as exc:
                self.pacer.failed(exc, sent_at=sent)  # unanswered: the stopping run's bound (`_unanswered_stop`)
                if exc.code == WEB_PAGE:
                    # A web page answered in the API's place (a web site at the base URL, a login portal on the
                    # way): every create would get it, and a key sent again would reach no API either. The job is
                    # left unknown (the page may have passed the create on), and no further create is sent.
                    self._refused = self._refused or WEB_PAGE
                    self.stopping = self.stopping or "fatal"
                    return self._give_up(job, jid, f"outcome unknown, not sent again: {exc}")
                # The create may have been received: find out before anything is sent again.
                ended = self.steady()
                maybe_received = True
                lost = lost or isinstance(exc, OutcomeUnknownError)
                heard = heard and isinstance(exc, ServerError)
                tries += 1
                # A 409 says the provider knows the key: an earlier send it answered with an error (a 5xx) may have
                # been taken all the same, its video not yet in a log slow to show it. Before the last miss would
                # plan the job again (sent later with a new key: paid twice), the log is read no sooner than
                # `_reconcile` believes one: the request timeout and LOG_SETTLE after the last send.
                conflict = exc.status == 409 and not isinstance(exc, OutcomeUnknownError)
                found, answered = await self._find(key, self.store.job_row(jid)["submitted_at"], last_sent=sent,
                                                   settle=conflict and tries > self.retries + 2, until=deadline)
                # A send whose answer was lost (a timeout, a reset) may still be on its way to the provider (a
                # gateway may hold it): the log's miss proves nothing made only once it can no longer arrive, the
                # request timeout and LOG_SETTLE after it (`_find` waits that long where keys are ignored).
                settled = not isinstance(exc, OutcomeUnknownError) or \
                    self.steady() - sent >= self.opts.request_timeout + LOG_SETTLE
                # A 502, 503 or 504 with a Retry-After: the provider unavailable for a while (a maintenance), which
                # every create meets. Waited out once by all of them (the pacer's pause, shown as a 429's is), not
                # job by job; longer than the run waits, or through all of a job's tries, it stops the run.
                down = exc.retry_after if isinstance(exc, ServerError) and exc.status in UNAVAILABLE_STATUSES \
                    and exc.retry_after is not None else None
                if found is not None:
                    status = found
                elif answered and settled:
                    on_key = False  # no earlier send made anything: the next one is a first
                    # Where the provider ignores keys, one read of a log that may be slow to show what the create
                    # made proves nothing yet: the job is then left with its key for the next run's lookup (a
                    # stop), not planned again (a new create, paid twice should the first have made it).
                    told = exc if isinstance(exc, ServerError) and self._honours_keys() else None
                    if down is not None and (down > MAX_PAUSE or tries > self.retries + 2):
                        until = self._provider_down(exc, down)
                        if tries <= self.retries + 2 and not self._honours_keys():
                            self._unanswered_left(job, jid, f"the provider is unavailable until {until}",
                                                  timed_out=False, answered=exc.status)
                            return None
                        await self._unsent(job, jid, f"not sent: the provider is unavailable until {until} (HTTP "
                                                     f"{exc.status}; its request log has no video for this attempt, "
                                                     f"nothing paid): {exc}")
                        return None
                    if tries > self.retries + 2:
                        # The log, read to its end after the last send, has no video for the key: as a later run's
                        # reconcile would find, nothing was made (the attempt is voided, as it would void it).
                        failed = "refused the key with HTTP 409" if exc.status == 409 else "failed"
                        await self._unsent(job, jid, f"the provider {failed} {tries} times and its request log has "
                                                     f"no video for this attempt (nothing paid): {exc}")
                        return None
                    if told is not None and heard:
                        # every send of the attempt answered, the log read after the last: none made
                        self._hold_back(jid, False, _LOG_EMPTY.format(status=told.status))
                    if down is not None:
                        self._pause_creates(job, exc, down)
                        continue
                    await self._nap(backoff(tries, getattr(exc, "retry_after", None)), deadline)
                    continue
                elif self._honours_keys():
                    # Sent again with the same key, which the provider answers with the video the first send made.
                    # Few times, and each LOG_SETTLE after the last send timed out, so that it has most likely
                    # landed: how a provider treats a key still being processed is not published, and one that
                    # ignored the key would bill each send.
                    if tries > min(self.retries + 1, MOST_RESENDS):
                        if exc.status == 409:
                            return self._give_up(job, jid, f"the provider answered HTTP 409 (a conflict over the key) to "
                                                           f"{tries} sends, and its request log could not tell whether "
                                                           f"the key made a video: {exc}")
                        # Answered (a status), only not with the API's answer: not "no answer".
                        said = "no answer" if exc.status is None else "no usable answer"
                        return self._give_up(job, jid, f"{said} after {tries} tries: {exc}")
                    if down is not None and down > MAX_PAUSE:
                        # no log to tell whether it was made: left as recorded, for the next run to look up by key
                        until = self._provider_down(exc, down)
                        self._unanswered_left(job, jid, f"the provider is unavailable until {until}",
                                              timed_out=False, answered=exc.status)
                        return None
                    wait = backoff(tries, getattr(exc, "retry_after", None))
                    if down is not None:
                        self._pause_creates(job, exc, down)
                        wait = 0.0  # the pause every create waits (`pacer.wait`), once
                    on_key, since = True, ended
                    await self._nap(max(wait, LOG_SETTLE) if isinstance(exc, OutcomeUnknownError) else wait, deadline)
                    continue
                else:
                    return self._give_up(job, jid, f"outcome unknown: {exc}")
            other = self._by_video.setdefault(status.id, jid)
            if other != jid:
                # The answer names a video another job has: not this job's render (a replay for another request).
                # Whether this create made one of its own is unknown.
                return self._give_up(job, jid, f"the provider answered with video {status.id}, which job "
                                               f"{self._key_of(other)} already has")
            # Committed by the next flush, which comes before any poll of it (DESIGN: id before poll).
            self._move(jid, S.SUBMITTED, lazy=True, provider_id=status.id, made=self._made())
            if on_key and since is not None and self._made_by_this_send(status, sent=sent, since=since):
                await self._check_key(job, jid, key, status, sent - since)
            return status

    def _hold_back(self, jid: int, maybe_received: bool, how: str) -> None:
        """A create of the job was refused with a 429, its connection never opened, or it was answered with an
        error (a 5xx, a 409 over a key no send of which went unanswered) and the provider's request log, read after
        it, has no video for its key (`how`): nothing of it was made. Where no earlier send of the attempt may have
        made one (`maybe_received`; of a 5xx, every earlier send answered too, none that could still be on its way,
        so the log covers each), the job, as it waits to send the next, is one whose create has not left
        (`_not_left`): a signal meanwhile plans it again, not sent, rather than leaving it to be looked up by its
        key. Where one may have, it stays as it is: that send may still make a video, which only its key finds."""
        if not maybe_received:
            self._not_left.add(jid)
            self._held_back[jid] = how

    def _honours_keys(self) -> bool:
        """Whether a create whose answer was lost may be sent again with its key, the provider answering with the
        video an earlier send made: as its capabilities say, until the provider made two videos for one key in this
        run (`_keys_ignored`). Which key a job is sent with follows the capabilities alone."""
        return self.provider.caps.honours_idempotency_keys and not self._keys_ignored

    @staticmethod
    def _made_by_this_send(status: VideoStatus, *, sent: float, since: float) -> bool:
        """Whether the video a create sent again with its key (at `sent`, the steady clock) was answered with was
        made by this send, not by an earlier one of the key (every one of which had ended by `since`): it was
        younger, at the provider's answer, than the time from `since` to this send, by more than
        KEY_REPLAY_TOLERANCE. False where the answer has no Date, or the video no created_at: nothing is known."""
        if status.answered_at is None or status.created_at is None:
            return False
        age = status.answered_at - status.created_at
        return (sent - since) - age > KEY_REPLAY_TOLERANCE

    async def _check_key(self, job: Job, jid: int, key: str, status: VideoStatus, after: float) -> None:
        """A create sent again with its key got a video made after the earlier send ended (`_made_by_this_send`;
        `after`: seconds from the end of the last earlier send to it). So does a provider that honours keys, where
        the earlier send never reached it (a reset before it was read: the most common lost answer) or reached it
        late (a gateway held it): only the request log can tell, by listing another video made under the key. Asked
        once; where it cannot tell (no log, an error), nothing is concluded. Where it lists another, the job keeps
        its own (it is paid), the other is recorded on the job (event key-ignored) and said, and for the rest of the
        run no create is sent again on a key's account."""
        after_time = self.store.job_row(jid)["submitted_at"]
        try:
            async with self.pacer.gate:
                made = await self.provider.videos_by_key(
                    self.client, key, created_after=None if after_time is None else after_time - LOG_SKEW)
        except (NotImplementedError, LookupError, ProviderError):
            return
        others = sorted(made - {status.id})
        if not others:
            return
        self._keys_ignored = True
        self.store.event(self.run_id, jid, KEY_IGNORED, {
            "provider_id": status.id, "others": others, "idempotency_key": key, "created_at": status.created_at,
            "answered_at": status.answered_at, "sent_after_s": round(after, 3)})
        self._error(job, key_ignored_note(self.provider.name))

    def _steady_of(self, stamp: float) -> float:
        """A time the state recorded (the store's wall clock) on the steady clock, as the wall clock now stands; at
        most now: a moment the wall clock now puts in the future was recorded while it was ahead (set back since),
        and is taken as now, so that no poll, lookup or timeout of the job waits for as long as the clock was off."""
        return min(self.steady(), stamp - self.store.clock() + self.steady())

    def _halted(self, deadline: float | None) -> str | None:
        """Why no create of the job may be sent now: the run was interrupted (the first Ctrl-C, `stop`), or the
        job's `deadline` (its timeout) passed; None while one may be."""
        if self.stopping == "interrupt":
            return "the run was interrupted"
        if deadline is not None and self.steady() >= deadline:
            return f"its timeout ({self.timeout:g} s) passed"
        return None

    async def _nap(self, seconds: float, deadline: float | None) -> None:
        """The pause before a create is sent again, cut short by an interrupt or the job's `deadline`, after which
        it is not sent."""
        if deadline is not None:
            seconds = min(seconds, deadline - self.steady())
        await sleep_out(self.steady, seconds, self._interrupted)

    def _pause_creates(self, job: Job, exc: ServerError, seconds: float) -> None:
        """The provider answered a create 502, 503 or 504 asking to wait `seconds` (Retry-After): unavailable for a
        while, which every create meets. Every request waits it out once, as for a 429 (`Pacer.limited`), shown in
        the progress when long (PAUSE_SHOWN)."""
        waited = self.pacer.limited(seconds, status=exc.status or 503)
        if seconds > PAUSE_SHOWN:
            self._error(job, f"provider unavailable (HTTP {exc.status}): it asks to wait {asked_wait(seconds)}; every "
                             f"request waits {waited:,.0f} s: {exc}")

    def _provider_down(self, exc: ServerError, seconds: float) -> str:
        """The provider is unavailable (a 502, 503 or 504) for `seconds` more (its Retry-After), longer than the run
        waits or through all of a job's tries: the run sends no more creates (PROVIDER_UNAVAILABLE), the jobs not
        sent left planned. Returns until when, as HH:MM (with the date past a day)."""
        until = self.clock() + seconds
        self._unavailable_until = max(self._unavailable_until or until, until)
        self._refused = self._refused or PROVIDER_UNAVAILABLE
        self.stopping = self.stopping or "fatal"
        return unavailable_until_text(self._unavailable_until, now=self.clock())

    def _unanswered_left(self, job: Job, jid: int, why: str, *, timed_out: bool, answered: int | None = None) -> None:
        """A job whose create may have been received (its answer lost) is not sent again (`why`: the run was
        interrupted, its timeout passed): left as recorded, its cost reserved, for the next run to settle by its
        key. `timed_out`: left at its deadline, as a job still rendering is (the run is `incomplete`). `answered`:
        the HTTP status that answered its last send (a 5xx), which may have made it all the same, the provider's
        request log unable to say."""
        if timed_out:
            self._timed_out.add(jid)
        if self.states[jid] == S.UNKNOWN.value:
            self._left(job, jid, f"not sent again: {why}; still unknown, as it was")
            return
        sent = ("with its create sent and never answered" if answered is None else
                f"with its create answered HTTP {answered}, which may have made it all the same, and no request log "
                "to say whether it did")
        self._left(job, jid, f"{why} {sent}: not sent again. The next run looks it "
                             "up by its key and, if the provider has no such job, sends it again with that key "
                             "(which may cost its estimate)")

    def _setup_refusal(self, exc: RejectedError) -> RejectedError:
        """A create's refusal, recoded where it refuses the key or the base URL rather than the request (every job
        would meet it: FATAL_CODES), with the URL and what to check; else `exc` itself (`_about_setup`)."""
        base = getattr(self.provider, "base_url", None) or "the provider's base URL"
        where = getattr(self.provider, "base_url_settings", lambda: None)()
        if exc.code == "REDIRECTED":
            return RejectedError(f"{exc.message}: set the base URL{f' ({where})' if where else ''} to where it points",
                                 status=exc.status, code=exc.code)
        if not _about_setup(exc):
            return exc
        if exc.status == 403:
            key = getattr(self.provider, "key_settings", lambda: getattr(self.provider, "key_env", None))()
            check = f": check {key} and its permissions" if key else ""
            return RejectedError(f"{exc.message} (creates at {base} are forbidden to this key{check})", status=403,
                                 code="KEY_FORBIDDEN")
        hint = "; Lumenfall's ends in /v1 or /openai/v1" if self.provider.name in ("lumenfall", "sim") else ""
        if str(base).rstrip("/").lower().endswith("/videos"):
            hint = f"; drop the trailing /videos{hint}"
        return RejectedError(f"{exc.message} (no create endpoint under {base}: check the base URL"
                             f"{f', {where}' if where else ''}{hint})", status=exc.status, code="ENDPOINT_NOT_FOUND")

    async def _unsent(self, job: Job, jid: int, why: str) -> None:
        """The create provably made nothing: the attempt is dropped and the job planned again, `why` its error
        (or, for a re-run of a settled job, put back as it was: its video is kept, nothing is paid later; for a
        failure retry of a re-render of a done job, done as it was, `_retry_unsent`)."""
        state = await self._retry_unsent(jid, self.store.void_attempt(jid, why))
        self._set_state(jid, state.value, put_back=state != S.PLANNED)
        if state != S.PLANNED:
            if state == S.DONE:  # a placeholder's re-render refused (a wrong base URL): a plain run sends it again
                self._placeholder_left(jid, self.store.last_reset_reason(jid))
            self._cached_as_before(jid, self.store.job_row(jid))
        self._settle(job, None)
        self._not_rerun += state != S.PLANNED
        self._error(job, why if state == S.PLANNED else f"{why}; left {state.value}, as it was before this run")

    async def _find(
        self, key: str, sent_at: float | None, *, last_sent: float | None = None, settle: bool = False,
        until: float | None = None, interruptible: bool = False,
    ) -> tuple[VideoStatus | None, bool]:
        """The job a create with `key` made, looked up in the provider's request log, and whether the log
        answered (False: it could not be asked, or could not tell, so None proves nothing). `sent_at`, when the
        attempt was recorded: the log is read back to it (less LOG_SKEW; the provider moves that back by as far as
        its clock is seen behind ours, so a miss holds whatever its clock says), or whole where the clock now puts
        it in the future.

        `last_sent`, when a create with the key was last sent, on the steady clock. A provider that ignores keys
        makes a second video for a second create, so a miss is proof only once that create can no longer be on its
        way (a gateway may queue it): the log is read no sooner than the request timeout after it, and a few seconds
        more (never longer from now, whatever the clock did); so it is for any provider with `settle` (a miss that
        would be believed). `interruptible`: the interrupt ends that wait, and a miss of the one lookup then made is
        not believed (False).

        After the interrupt or `until` (the job's deadline), a lookup is tried once, not again after a failure, and
        not at all where it would wait for a provider's pause (a 429): the log is not asked (False). A provider
        found to keep no log (`NotImplementedError`: none at the base URL, or one that records no keys) sets
        `_no_log` for the rest of the run."""
        early = False  # the interrupt cut that wait short: a miss proves nothing yet
        if last_sent is not None and (settle or not self._honours_keys()):
            full = self.opts.request_timeout + LOG_SETTLE
            wait = min(full, last_sent + full - self.steady())
            if wait > 0 and interruptible:
                await self._nap(wait, None)
                early = self._interrupted is not None and self._interrupted.is_set()
            elif wait > 0:
                await sleep_out(self.steady, wait)
        # A send the clock now puts in the future was recorded while it was ahead (set back since): when the create
        # left is not known, and a log read back only to that time would miss it, so the whole log is read.
        after = None if sent_at is None or sent_at > self.store.clock() else sent_at - LOG_SKEW
        for attempt in range(1, 4):
            if attempt > 1 and self._halted(until):
                break  # the interrupt, or the job's deadline: the lookup is made once, not tried again
            if not await self.pacer.wait(until=until, stop=self._interrupted):
                break
            sent = self.pacer.clock()  # a provider that hangs is silent from here (`_unanswered_stop`)
            try:
                async with self.pacer.gate:
                    found = await self.provider.find_by_key(self.client, key, created_after=after)
                self.pacer.ok()
                return found, found is not None or not early
            except NotImplementedError:
                self._no_log = True
                break
            except LookupError:
                break
            except RateLimitedError as exc:
                self.pacer.failed(exc, sent_at=sent)
                self.pacer.limited(exc.retry_after)
            except (RetryableError, OutcomeUnknownError) as exc:
                self.pacer.failed(exc, sent_at=sent)
                await anyio.sleep(backoff(attempt, getattr(exc, "retry_after", None)))
            except ProviderError as exc:
                self.pacer.failed(exc, sent_at=sent)
                break
        return None, False

    def _key_too_old(self, jid: int) -> str | None:
        """Why the key of the job's attempt may no longer be sent again: it was first sent (its attempt committed,
        as the state records) longer ago than the provider remembers keys, less the request timeout a send may
        take to land; or at a time the clock now puts in the future (set back since), so its age is not known.
        None while it may be sent again, or when the provider never forgets keys."""
        window = self.provider.caps.idempotency_window_seconds
        began = self.store.following(jid).attempt_started_at
        if window is None or began is None:
            return None
        age = self.clock() - began
        if age < 0:
            return (f"its idempotency key was first sent at a time this machine's clock now puts {-age:,.0f} s ahead "
                    "(the clock was set back), so whether the provider still remembers the key cannot be told")
        if age + self.opts.request_timeout < window:
            return None
        return (f"its idempotency key was first sent {age:,.0f} s ago, past the {window:,.0f} s the provider is taken "
                "to remember keys (idempotency_window_seconds), so it may have forgotten it and make and bill a "
                "second video")

    def _not_resent(self, job: Job, jid: int, why: str) -> None:
        """The job's create may have been received, and its key is too old to be sent again (`why`): `unknown`."""
        self._unknown(job, jid, f"not sent again: {why}; the first send may have been paid for. `gridrun retry "
                                "--unknown` sends it again with the same key (it pays twice if the provider has "
                                "forgotten the key)", reserved=True)
        self._error(job, f"not sent again: {why}")

    def _give_up(self, job: Job, jid: int, why: str) -> None:
        self._unknown(job, jid, f"{why}; it may have been paid for. {UNKNOWN_NEXT}", reserved=True)
        self._error(job, why)

    def _unknown(self, job: Job, jid: int, error: str, *, reserved: bool) -> None:
        """The job is `unknown`: it may have been paid for. Its cost stays reserved by the run that sent the
        attempt (as the store counts it): this run's held, an earlier run's let go (`reserved`: whether this
        run holds it now). Once a lookup has found the provider keeps no request log (`_no_log`), its error says
        so (`NO_REQUEST_LOG_NOTE`): a later run asks the log again."""
        if self._no_log and not no_request_log(S.UNKNOWN.value, error):
            error = f"{error}; {NO_REQUEST_LOG_NOTE}"
        earlier = (self.store.job_row(jid)["submitted_at"] or 0.0) < self.started
        if reserved and earlier:
            self._settle(job, None)
        elif not reserved and not earlier:
            self._hold(job)
        self._move(jid, S.UNKNOWN, error=error)

    async def _reconcile_job(self, job: Job) -> None:
        """A job left `submitting` by an earlier process (or `unknown`, with --unknown). New jobs are not sent
        until every such job is known to be at the provider (its cost reserved) or not: the budget counts
        the first before the second."""
        told = False

        def known() -> None:
            nonlocal told
            if not told:
                told = True
                self._reconciling -= 1
                if self._reconciling <= 0 and self._reconciled is not None:
                    self._reconciled.set()

        try:
            await self._reconcile(job, known)
        finally:
            known()

    async def _reconcile(self, job: Job, known: Callable[[], None]) -> None:
        """A job an earlier process left `submitting`, or `unknown`: looked up by its attempt's key in the
        provider's request log (free). Found, it is followed; proven never received, it is sent again (no
        earlier send made anything). Otherwise a `submitting` one is sent again with the same key where the
        provider honours keys and the key is inside its window (else it is `unknown`); an `unknown` one stays
        so, unless `retry --unknown` asks to send it again."""
        jid = self.ids[job.hash]
        row = self.store.following(jid)
        key = row.idempotency_key
        state = self.states[jid]
        if key is None:
            return
        # a send of it may be made (`retry --unknown` sends only the jobs it picks: `--key`, `--code`)
        retry = state == S.SUBMITTING.value or self.opts.retry_unknown and self.opts.picks(
            job.key, self.store.job_row(jid)["error"])
        lost = row.provider_id if state == S.UNKNOWN.value else None
        if lost:
            gone, status = await self._asked_again(job, lost)
            if gone:
                if retry:
                    # The provider took this attempt, then lost its video: following it, or sending its key again
                    # (which names that video), would only end `unknown` again. A new attempt, with a new key.
                    self.store.abandon_attempt(jid, f"lost by the provider: video {lost}{ABANDONED_LOST_SUFFIX}")
                    known()
                    await self._send_again(job, jid)
                return  # a plain run: there is nothing to find by its key
            if status is None:
                return  # no answer: as it was, asked again by the next run
            # The provider answers for the video again (its 404s were passing): followed and fetched, as any job
            # in flight, paying nothing new; what it costs is the sending run's.
            self._found(job, jid)
            known()
            await self._follow_found(job, jid, lost, status, key)
            return
        sent_at = row.submitted_at
        if retry:
            # While it is looked up (which may wait for the provider's log to settle), the job may well be paid
            # for: its cost shows as reserved. New jobs wait for the lookup, so the budget's check is not moved.
            self._hold(job)
            if sent_at is not None and not self._honours_keys():
                # when `_find` reads the log
                self._checks[jid] = self._steady_of(sent_at) + self.opts.request_timeout + LOG_SETTLE
            try:
                found, answered = await self._find(
                    key, sent_at, last_sent=None if sent_at is None else self._steady_of(sent_at), interruptible=True)
            finally:
                self._unhold(job)
                self._checks.pop(jid, None)
        else:
            # Only looked up (no wait): a miss proves the create never arrived only once its last send (before
            # the job became unknown, `attempt_ended_at`) can no longer be on its way.
            found, answered = await self._find(key, sent_at)
            ended = row.attempt_ended_at or 0.0
            if found is None and self.clock() - ended < self.opts.request_timeout + LOG_SETTLE:
                answered = False
        if found is not None:
            if state == S.UNKNOWN.value:
                self._found(job, jid)
            else:
                self._hold(job)
        known()
        if found is not None:
            await self._follow_found(job, jid, found.id, found, key)
            return
        if answered:
            # The provider's log has no job with this key: the create never reached it.
            now = self.store.void_attempt(jid, "not in the provider's request log: never reached it")
            if now != S.PLANNED:
                # the unsent re-run of a settled job (a --force run that died before its create left): as it was
                await self._after_void(job, jid, now)
                return
            await self._send_again(job, jid)
            return
        if not retry:
            error = self.store.job_row(jid)["error"]
            if self._no_log and not no_request_log(state, error):
                # unknown, as it was, and this run's lookup could not settle it: said on the job for what follows
                self.store.note(jid, f"{error}; {NO_REQUEST_LOG_NOTE}" if error else NO_REQUEST_LOG_NOTE)
                self.live.nudge()
            return  # unknown, as it was: `retry --unknown` sends it again
        if self.stopping == "interrupt" and not self.provider.caps.honours_idempotency_keys:
            # The interrupt came before the log could tell (its wait for the log to settle cut short): left as
            # recorded, for the next run's lookup, as a job sent again with its key is left (`_post`).
            return self._unanswered_left(job, jid, "the run was interrupted", timed_out=False)
        if self.provider.caps.honours_idempotency_keys:
            # Sent again with the same key: the provider answers with the video an earlier send made, at no
            # cost, or makes it now, once. Never with a new key, even once a create sent again with its key got a
            # video made after its earlier send ended in this run (`_keys_ignored`): a provider that ignores keys
            # bills a new key's send as much, and one that honours them bills it where the same key is free.
            # `_post` leaves the job unknown then.
            slot = await self._slot(job)
            if slot is None:
                return self._not_followed(job, jid)
            try:
                if not await self._reserve(job):
                    return
                status = await self._post(job, jid, key, fresh=False, asked=state == S.UNKNOWN.value, resent=True)
                if status is not None:
                    await self._follow(job, jid, status, slot)
            finally:
                slot.release()
                self._budget_move(jid)
            return
        if state == S.UNKNOWN.value:
            # retry --unknown with no log to ask: sent again, as asked; the attempt it settles may have been
            # billed, so it is kept (at no recorded cost), and nothing is put back
            self.store.abandon_attempt(jid, ABANDONED_NEVER_KNOWN)
            await self._send_again(job, jid)
            return
        # the note on a log the provider does not keep says what follows itself
        checked = (f"; {NO_REQUEST_LOG_NOTE}" if self._no_log
                   else f", and its request log could not be read to check. {UNKNOWN_NEXT}")
        self._unknown(job, jid, f"create request may have reached the provider{checked}", reserved=False)

    def _found(self, job: Job, jid: int) -> None:
        """A job of unknown outcome an earlier run sent, found at the provider: followed as the sending run's (its
        budget counted it, and its reserve held it while it was unknown), not reserved against this run's budget,
        which `plan` said it would not be, nor spent by it."""
        n = self.store.book_to_sender(jid)
        if n is None:  # no record of who pays (a state of no such column): counted as this run's
            self._hold(job)
            return
        self._found_unknown[jid] = n
        self._senders.add(jid)

    async def _after_void(self, job: Job, jid: int, state: JobState) -> None:
        """A job `void_attempt` put back as it was before a re-run that never reached the provider: this run
        treats it as it would have found it."""
        self._set_state(jid, state.value, put_back=True)
        unsent = state == S.FAILED and resume.is_failure_retry(self.store.last_reset_reason(jid))
        if unsent and resume.action(state, self.opts) != "reset":
            # A failure retry an earlier process decided and never sent: this run makes it, if it allows one more.
            self._tries_after_failure[jid] = self.store.failure_retries_made([jid]).get(jid, 0)
            if await self._failure_retry(job, jid, self.store.job_row(jid)["error"] or "a failed render"):
                return
        if unsent:  # not made: a failed re-render of a done job is done as it was, as the run finds a done job
            state = await self._retry_unsent(jid, state)
            self._set_state(jid, state.value, put_back=True)
        elsewhere = job.hash in self._elsewhere
        error = self.store.job_row(jid)["error"]
        gone = gone_at_provider(state.value, error)
        # --force --resume sends only the re-renders it planned: one put back here (its attempt never reached the
        # provider) is left done as it was, for the next --force --resume to send, as `plan` priced this run
        opts = self.opts
        if self._force_only is not None and job.hash not in self._force_only:
            opts = dataclasses.replace(opts, force=False, force_resume=False)
        what = resume.action(state, opts, elsewhere=elsewhere, gone=gone,
                             no_url=no_fresh_url(state.value, error))
        if what == "reset":
            self._tries_after_failure.pop(jid, None)  # sent again on request: its count begins again
            self.store.reset(jid, "retry" if state != S.DONE else resume.SIMULATOR_ELSEWHERE if elsewhere
                             else "--force" if self.opts.force else resume.SIMULATOR_ELSEWHERE)
            await self._send_again(job, jid)
        elif state == S.DONE:
            if resume.check_done(self.store, self.run_id, job, jid, self.store.job_row(jid),
                                 superseded=superseded_dir(self.plan.outputs_dir), kept=self._altered_kept,
                                 foreign=self._foreign_kept, unrecorded=self._unrecorded_kept,
                                 restored=self._restored):
                self.cached += 1
            else:  # fetched again, at no cost
                self._set_state(jid, S.DOWNLOADING.value)
                self._prepaid.add(jid)
                await self._attach_job(job)
        elif what == "fetch":  # expired, under retry: a fresh URL asked for first, as `resume.prepare` does
            self.store.transition(jid, S.DOWNLOADING, error="URL expired; asking for a fresh one")
            self._set_state(jid, S.DOWNLOADING.value)
            self._prepaid.add(jid)
            self._fetch_first.add(jid)
            await self._attach_job(job)
            await self._fetched_none(job, jid)

    async def _fetched_none(self, job: Job, jid: int) -> None:
        """An expired job a retry asked a fresh URL for first (`resume.Sorted.fetch_first`), once that ended: left
        expired because the provider answered with only the URL that expired (`no_fresh_url`) or no longer has the
        video, it is sent again, paid, as the retry asked; fetched, left downloading, or left expired with its fresh
        URLs failing or its GET unanswered (the next run asks again, at no cost), nothing more: the video is paid
        for. A stopped run leaves it expired."""
        if jid not in self._fetch_first:
            return
        self._fetch_first.discard(jid)
        if self.states.get(jid) != S.EXPIRED.value or self._sending_stopped() or self._refused:
            return
        error = self.store.job_row(jid)["error"]
        if not (no_fresh_url(S.EXPIRED.value, error) or gone_at_provider(S.EXPIRED.value, error)
                or "no longer knows" in str(error or "")):
            return
        self._tries_after_failure.pop(jid, None)  # sent again on request: its count begins again
        self._prepaid.discard(jid)  # a new render: reserved and spent by this run
        with self.store.batch():
            self._early_reset(jid, "retry")  # undone should the run not send it: expired as it was
        await self._send_again(job, jid)

    async def _send_again(self, job: Job, jid: int) -> None:
        """Submit a job its store has just made plannable (its attempt voided or abandoned)."""
        self._set_state(jid, S.PLANNED.value)
        if await self._acquire(job.hash):  # else every slot is held by jobs left at their timeout: left unsent
            await self._submit_job(job)

    def _lost(self, job: Job, jid: int, why: str, *, reserved: bool, detail: str = "", video: str = "") -> None:
        """The provider no longer has the job's video. One still rendering is `unknown` (it may have been paid
        for); a finished one being fetched again is `expired` (paid, its URL gone). The error says what that
        means first (`why`, the risk, what to do: what a card of the report has room for), then `detail`, and
        names the provider's `video` last (a long opaque id, which the details show whole)."""
        named = f" (video {video})" if video else ""
        if self.states[jid] == S.DOWNLOADING.value:
            self._move(jid, S.EXPIRED, error=f"{why}{': ' if detail else ''}{detail}; {GONE_AT_PROVIDER}{named}")
        elif detail:
            self._unknown(job, jid, f"{why}; it may have been paid for: {detail}. `gridrun retry --unknown` "
                                    f"re-submits (may pay twice){named}", reserved=reserved)
        else:
            self._unknown(job, jid, f"{why}; it may have been paid for. `gridrun retry --unknown` re-submits "
                                    f"(may pay twice){named}", reserved=reserved)

    async def _follow_found(self, job: Job, jid: int, pid: str, status: VideoStatus, key: str) -> None:
        """Follow to its end a job an earlier run left unsettled whose video `pid` the provider has (`status`),
        recorded first as found again."""
        self.store.event(self.run_id, jid, "reconciled", {"provider_id": pid, "idempotency_key": key})
        self._move(jid, S.SUBMITTED, provider_id=pid, made=self._made())
        slot = await self._slot(job)
        if slot is None:
            return self._not_followed(job, jid)
        try:
            await self._follow(job, jid, status, slot)
        finally:
            slot.release()

    async def _asked_again(self, job: Job, pid: str) -> tuple[bool, VideoStatus | None]:
        """(gone, status): whether the provider has lost video `pid` for good (forgotten, or no such video, HTTP
        404, once more), else what it says of it now (None: no answer)."""
        if self.provider.forgot(pid):
            return True, None
        try:
            return False, await self._get(job, pid)
        except RejectedError:  # only a 404 gets here
            return True, None

    async def _attach_job(self, job: Job) -> None:
        """A job an earlier process submitted: follow it, paying nothing new."""
        jid = self.ids[job.hash]
        row = self.store.job_row(jid)
        pid = row["provider_id"]
        if not pid:
            self._unknown(job, jid, "in flight without a provider id", reserved=False)
            return
        if self.provider.forgot(pid):
            self._lost(job, jid, "not in the built-in simulator's world", reserved=False, video=pid,
                       detail="its world file (.gridrun/sim-world.jsonl) was deleted or replaced since the run that "
                              "sent it")
            self._error(job, f"the built-in simulator's world has no video {pid}; it is gone")
            return
        sha = None
        if self.states[jid] == S.DOWNLOADING.value:  # saved before its record said so? Hashed off the event loop.
            sha = await anyio.to_thread.run_sync(sidecar_matches, job.output, job.hash, pid)
        if sha is not None:
            row = self.store.job_row(jid)  # its render's cost, recorded when completion was seen
            billed = row["cost_micros"] if row["cost_micros"] is not None else job.cost_micros  # as counted then
            self._move(jid, S.DONE, sha256=sha, cost_micros=billed, downloaded_at=self.clock(),
                       done_run_id=self.run_id, output_path=str(job.output), made=self._made())
            return
        if self.states[jid] == S.DOWNLOADING.value:
            await self._follow(job, jid, None)  # rendered and billed before this run: nothing to reserve
            return
        if self.store.booked_to_sender([job.hash]):
            # found of unknown outcome by a run that left it in flight: still the sending run's money
            self._found_unknown[jid] = row["attempts"]
            self._senders.add(jid)
        else:
            self._hold(job)
        slot = await self._slot(job)
        if slot is None:
            return self._not_followed(job, jid)
        try:
            await self._follow(job, jid, None, slot)
        finally:
            slot.release()

    async def _slot(self, job: Job) -> _Slot | None:
        """A provider slot for a job already sent (or maybe sent); None once every slot is held by jobs left at
        their timeout. The slot taken for it as the run began (`_take_slots`), if one was."""
        owner = job.hash + ":attach"
        if owner in self._taken:
            self._taken.discard(owner)
        elif not await self._acquire(owner):
            return None
        return _Slot(self._limiter, owner, self.concurrency)

    def _take_slots(self, attach: list[Job]) -> None:
        """The jobs an earlier run left rendering at the provider take their slots before any new job is sent:
        the provider has them already, so they count against the run's concurrency, above it if they are more (the
        limiter then grows for them, and shrinks back as each releases its slot: no new job is sent until the jobs
        in flight are fewer than the concurrency). A job only to download holds none."""
        for job in attach:
            if self.states[self.ids[job.hash]] == S.DOWNLOADING.value:
                continue
            owner = job.hash + ":attach"
            if self._limiter.available_tokens < 1:
                self._limiter.total_tokens += 1
            self._limiter.acquire_on_behalf_of_nowait(owner)
            self._taken.add(owner)

    async def _attach_taken(self, job: Job) -> None:
        """`_attach_job`, then the slot taken for the job as the run began given back if its task never took it
        (the video was saved already, or is gone)."""
        try:
            await self._attach_job(job)
        finally:
            owner = job.hash + ":attach"
            if owner in self._taken:
                self._taken.discard(owner)
                _Slot(self._limiter, owner, self.concurrency).release()
        await self._fetched_none(job, self.ids[job.hash])

    def _not_followed(self, job: Job, jid: int) -> None:
        """A job already at the provider (or maybe) that found every slot held by jobs left rendering at their
        timeout: left as it is for the next run, as they are."""
        self._timed_out.add(jid)
        self._left(job, jid, "not followed: every slot of the run's concurrency was held by jobs left at the "
                             "provider at their timeout; left as it is, for the next run")

    # -- provider slots ----------------------------------------------------------------------------
    # A job holds its slot while the provider renders it, also past its timeout: the run's concurrency is what the
    # provider account takes at once, and a job left at its deadline still renders there (and is paid). Such a job
    # is watched on (`_linger`), not waited for: when only such jobs are left, the run ends, leaving them in
    # flight; when they hold every slot, it sends nothing more.
    def _start(self, group: TaskGroup, work: Callable[[Job], Any], job: Job) -> None:
        """Start a job's task in `group`, counted (from now, not from when it first runs) among those going."""
        self._going += 1
        group.start_soon(self._task, work, job)

    async def _task(self, work: Callable[[Job], Any], job: Job) -> None:
        try:
            await work(job)
        finally:
            self._going -= 1
            self._slots_check()

    async def _acquire(self, owner: str) -> bool:
        """A provider slot for `owner`, once one is free; False, none taken, once every slot is held by jobs left
        rendering at their timeout (`_slots_check`)."""
        if self._slots_held:
            return False
        try:
            self._limiter.acquire_on_behalf_of_nowait(owner)  # a slot free and none waiting: no turn of the loop
            return True
        except anyio.WouldBlock:
            pass
        with anyio.CancelScope() as scope:
            self._slot_waits.add(scope)
            try:
                await self._limiter.acquire_on_behalf_of(owner)
            finally:
                self._slot_waits.discard(scope)
        return not scope.cancelled_caught  # cancelled while waiting, the limiter gave no token

    def _slots_check(self) -> None:
        """Once the jobs left at their timeout hold every slot, the run sends nothing more (stopping "timeout"):
        those waiting for a slot give up. Once only they are left (every job sent, every other task ended), they are
        watched no more: the run ends, leaving them in flight."""
        if self._letting_go:
            return
        lingering = len(self._lingering)
        if self._all_sent and self._going <= lingering:
            self._letting_go = True
            for scope in self._lingering.values():
                scope.cancel()
            return
        if lingering >= self.concurrency and not self._slots_held:
            # the slots they hold: the run's concurrency (jobs an earlier run left rendering may be more)
            self._slots_held = self.concurrency
            if not self.stopping:  # else the run had stopped sending already, for its own reason
                self._stop_note = (f"sent no new jobs: every slot of the run's concurrency ({self.concurrency:,}) is "
                                   "held by jobs left unfinished at the provider at their timeout, and the run has no "
                                   "more than that there at once; `gridrun run` sends the rest")
                self.stopping = "timeout"
            for scope in list(self._slot_waits):
                scope.cancel()

    async def _linger(self, job: Job, jid: int, pid: str, since: float) -> VideoStatus | None:
        """A job left rendering at its timeout, holding its slot: asked for on its own at its poll schedule, at most
        every LINGER_POLL seconds (in the list rounds it would hold back the anchor of the jobs sent after it, which
        would then list more pages), no longer waited for. Its status once the provider ended it while the run goes
        on (followed to its end from there as any job: a video paid anyway is downloaded); None once the run ends
        first (`_slots_check`)."""
        status: VideoStatus | None = None
        if self._letting_go:
            return None
        with anyio.CancelScope() as scope:
            self._lingering[jid] = scope
            # Not waited for: a job waiting for the budget (--allow-partial) no longer counts on its reserve freeing.
            self._budget_move(jid)
            try:
                self._slots_check()
                while status is None or not status.terminal:
                    wait = max(LINGER_POLL, self.renders.next_poll(job, since))
                    self._checks[jid] = self.steady() + wait
                    await anyio.sleep(wait)
                    del self._checks[jid]
                    with contextlib.suppress(RejectedError):  # 404: as unclear as at its timeout; asked again
                        status = await self._get(job, pid) or status
            finally:
                del self._lingering[jid]
                self._checks.pop(jid, None)
        if self._letting_go and (status is None or not status.terminal):
            # Let go as the run ends: one last look first (a render may have ended since the job was last asked
            # for, LINGER_POLL apart), so a finished video is downloaded now, not left for the next run.
            status = await self._last_look(job, pid) or status
        if status is None or not status.terminal:
            return None
        self._timed_out.discard(jid)
        self._odd_status.pop(jid, None)
        self._late += status.status == "completed"
        self.store.note(jid, None)  # no longer left
        if (why := self._left_why.pop(jid, None)) is not None:
            self._unsay(job, why)
        return status

    async def _follow(self, job: Job, jid: int, status: VideoStatus | None, slot: _Slot | None = None) -> None:
        """Poll until the provider finishes the job, free its provider slot, then download it."""
        row = self.store.following(jid)
        pid = status.id if status is not None else row.provider_id
        sent_at = row.submitted_at  # the write-ahead intent's time: no later than the create request
        submitted_at = sent_at or self.clock()
        # Its polls are timed from it on the steady clock: as this run saw it, or (an earlier run's) as the wall clock
        # now stands, a step of which from now on moves none of them.
        sent = self._intended.pop(jid, None)
        if sent is None and sent_at is not None:
            sent = self._steady_of(sent_at)
        since = self.steady() if sent is None else sent
        self._rendering[jid] = (since, job)
        try:
            status = await self._watch(job, jid, pid, status, since, sent)
        finally:
            self._rendering.pop(jid, None)
            if self._poller is not None:
                self._poller.forget(pid)
        if status is None and slot is not None and jid in self._timed_out:
            status = await self._linger(job, jid, pid, since)  # still rendering: its slot kept
        if status is None:
            return
        if slot is not None:
            slot.release()  # the provider is done with it: the next job may start while this one downloads
        if status.status == "completed":
            # When completion was seen: providers stamp whole seconds, too coarse for render times of seconds.
            seen = self.clock()
            # Seen late (the first poll waits for the estimate, an earlier run sent it): the provider's own stamps
            # bound the render, whole seconds each (+1 s covers that), so a first guess too long does not teach
            # itself, and the render time shown is not the poll schedule's.
            span = render_span(status, sent_at, seen)
            if sent_at is not None and sent_at >= self.started:
                # Sent by this process: a job an earlier one sent would count the time no run was going.
                self.renders.seen(seen - submitted_at if span is None else span, job)
            if self.states[jid] != S.DOWNLOADING.value:
                # rendered, so billed: what the provider says (when plausible), or the price table's figure
                billed = self._billed(job, jid, status, completed=True, tell=True)
                # Spent from now on, as the state counts it (and as the progress the move reports shows it): the
                # next job's budget check, which may come before the video is saved, reads what this one costs,
                # not its estimate. A download that fails, expires or is made again later changes nothing paid.
                self._settle(job, billed)
                self._move(jid, S.DOWNLOADING, lazy=True, completed_at=seen, url=status.url, render_span=span,
                           expires_at=status.expires_at, cost_micros=billed, cost_reported_micros=status.cost_micros)
                row = row._replace(completed_at=seen)
            await self._download(job, jid, status, row)
            return
        billed = self._billed(job, jid, status, completed=False, tell=status.status != "cancelled")
        self._settle(job, billed)
        if status.status == "cancelled":
            self._cancelled(job, jid, cost_micros=billed, cost_reported_micros=status.cost_micros)
            return
        message = status.failure
        if status.status == "failed" and account_refused(status.error_code):
            await self._account_failed(job, jid, message, cost_micros=billed, cost_reported_micros=status.cost_micros)
            return
        code = failure_code(status.error_code, message)  # the code field read as a code, a lone word too
        retry = self._failure_retry_due(jid, message, code=code)
        repeats = self._would_repeat(jid, message, code=code) if retry is None else None
        if repeats is not None:
            message = f"{message} ({repeats})"
        failed = {"error": message, "cost_micros": billed, "cost_reported_micros": status.cost_micros}
        if retry is None:
            await self._end_badly(job, jid, S.FAILED, **failed)
        else:
            # The failure and the decision to send the job again, in one commit: a process killed before the new
            # attempt is sent leaves it to the next run (resume.prepare), which makes it if the manifest allows.
            with self.store.batch():
                self._move(jid, S.FAILED, **failed)
                self._early_reset(jid, retry)
            self._error(job, message)
        self._crash_point("after-failure")
        if self.opts.fail_fast:
            self.stopping = self.stopping or "fail-fast"
            return
        if retry is not None:
            await self._send_again(job, jid)

    async def _account_failed(self, job: Job, jid: int, message: str, **costs: Any) -> None:
        """The provider failed the job's render for the account (its balance or quota spent: `account_refused`),
        as it refuses a create with HTTP 402: every job of the run would meet it. The run sends no more creates and
        spends no failure retry on it. Nothing was made, so the job is planned again (`Store.plan_again`), its
        failed attempt kept as it ended, for a plain `gridrun run` to send once the balance is topped up, with the
        jobs the refusal kept from being sent; but for a re-render of a done job whose earlier video is whole,
        which is done as it was (`_end_badly`)."""
        self._refused = self._refused or "INSUFFICIENT_BALANCE"
        self.stopping = self.stopping or "fatal"
        await self._end_badly(job, jid, S.FAILED, error=message, **costs)
        if self.states[jid] != S.FAILED.value:
            return
        why = (f"not made, the account refused: {message.rstrip('.')}; a plain run sends it again once the balance is "
               "topped up")
        self.store.plan_again(jid, why)
        self._set_state(jid, S.PLANNED.value, put_back=True)

    async def _end_badly(self, job: Job, jid: int, to: JobState, **fields: Any) -> None:
        """The provider failed the job's render, or refused its create (`to`, `fields` as `transition` takes them),
        and the run sends it no more: the job ends so. But for a re-render of a done job (--force) whose earlier
        video is still whole at its path (it is moved aside only once the new one arrives): that job is done as it
        was (`Store.rerender_failed`), its video the earlier run's, reused, so that no paid `retry` is needed;
        the failure is among the run's errors all the same."""
        error = str(fields.get("error") or "")
        state = await ended_badly(self.store, self.run_id, jid, to, **fields)
        # a simulator's placeholder made at another endpoint, sent here to be rendered (no --force): put back done
        # in the store as it was, so that a plain run renders it again, but no video of this provider's: this run
        # counts it as it ended here
        placeholder = state != to and self.store.rerun_reason(jid) == resume.SIMULATOR_ELSEWHERE
        self._set_state(jid, to.value if placeholder else state.value, put_back=state != to and not placeholder)
        if state != to:
            self._cached_as_before(jid, self.store.job_row(jid))
        if placeholder:
            self._placeholders_failed += 1
            error = (f"{to.value} at the provider, not rendered here (its only video a simulator's placeholder made "
                     f"at another endpoint, kept): {error}")
        elif state != to:
            self._rerenders_failed += 1
            error = f"re-render {to.value}, the earlier video kept: {error}"
        self._progress()
        self._error(job, error)

    def _cancelled(self, job: Job, jid: int, *, cost_micros: int | None, cost_reported_micros: int | None) -> None:
        """The provider cancelled the job's render: the job is cancelled, with what its render counts (`counted`)
        and what the provider reported, as `gridrun cancel` records them; or, for a re-render of a done job (--force,
        retry), done as it was (`Store.cancel_job`), its video the earlier run's, reused. A cancel `gridrun cancel`
        asked for (`Store.cancel_asked`) is the user's decision; any other (by hand at the provider, another
        program, the provider itself) is a job that did not finish: an error of the run, which ends failed."""
        asked = self.store.cancel_asked(jid)
        error = CANCELLED_ON_REQUEST if asked else CANCELLED_ELSEWHERE
        state = self.store.cancel_job(jid, error, run_id=self.run_id, cost_micros=cost_micros,
                                      cost_reported_micros=cost_reported_micros)
        if state == S.CANCELLED:
            self._set_state(jid, state.value)
            if not asked:
                self._cancelled_elsewhere.add(jid)
                self._error(job, f"{CANCELLED_ELSEWHERE}: no video made; `gridrun retry` sends it again (a new "
                                 "render, paid)")
            return
        self._set_state(jid, state.value, put_back=True)
        self._cached_as_before(jid, self.store.job_row(jid))
        self._rerenders_cancelled += 1

    def _failure_retry_due(self, jid: int, message: str, *, code: str | None = None) -> str | None:
        """After the failed render of `message`, the reason of a new paid attempt when the run makes one
        (run.failure_retries of them per job, counted across a killed run's resumes); None when it does not.
        `code`: the provider's code as its structured field gave it (`options.failure_code`), else read from
        `message`."""
        tries = self._tries_after_failure.get(jid, 0)
        if tries >= self.failure_retries or self._sending_stopped() or self._refused or self.opts.fail_fast:
            return None
        if repeating_fix(code or error_code(message)) is not None:
            return None  # the same request would fail alike: no paid attempt spent on it (`_would_repeat`)
        self._tries_after_failure[jid] = tries + 1
        return f"{FAILURE_RETRY} {tries + 1} of {self.failure_retries}, after: {message}"

    def _would_repeat(self, jid: int, message: str, *, code: str | None = None) -> str | None:
        """Why the failure retry the run allows after the failed render of `message` is not made, when that is
        because the provider's code says the same request fails alike when sent again (content moderation, an
        invalid request: `options.repeating_fix`), and what to change; None otherwise (no retry left or allowed,
        or the run stopping). `code`: as `_failure_retry_due` takes it."""
        tries = self._tries_after_failure.get(jid, 0)
        if tries >= self.failure_retries or self._sending_stopped() or self._refused or self.opts.fail_fast:
            return None
        code = code or error_code(message)
        fix = repeating_fix(code)
        if code is None or fix is None:
            return None
        return f"not sent again by run.failure_retries: {code} would repeat for the same request; {fix}"

    def _early_reset(self, jid: int, why: str) -> None:
        """Make the job plannable now, ahead of its new attempt (undone should the run not send it)."""
        self.store.reset(jid, why)
        self._resets[jid] = why
        self._reset_early.add(jid)

    async def _failure_retry(self, job: Job, jid: int, message: str) -> bool:
        """A failure retry an earlier process decided and never sent: made now, if this run allows one more;
        whether it was."""
        retry = self._failure_retry_due(jid, message)
        if retry is None:
            return False
        with self.store.batch():
            self._early_reset(jid, retry)
        await self._send_again(job, jid)
        return True

    async def _watch(
        self, job: Job, jid: int, pid: str, status: VideoStatus | None, since: float, sent: float | None
    ) -> VideoStatus | None:
        """The job's status once the provider has finished it; None when it is still going at the timeout. `sent`:
        when its create was sent, on the steady clock, where recorded; `since`, that, or else when it was first
        followed."""
        # Counted from when this run began to send the job's create (an earlier run's job: from now).
        began = self._began.pop(jid, None)
        deadline = None if not self.timeout else (self.steady() if began is None else began) + float(self.timeout)
        first = True
        by_list = self._poller is not None  # until the provider says it has no such video: then asked on its own
        missing_since: float | None = None
        unclear_since: float | None = None  # since when no answer gave a status gridrun knows
        unclear = ""
        heard = False  # whether a poll (or a list round) answered with its status: else it is its create's answer
        while status is None or not status.terminal:
            unclear_end = None if unclear_since is None else unclear_since + UNCLEAR_AFTER
            # the nearer of the two ends, and whether it is the unclear one
            gives_up = unclear_end is not None and (deadline is None or unclear_end < deadline)
            end = unclear_end if gives_up else deadline
            missing: RejectedError | None = None
            answered = True
            with anyio.move_on_after(None if end is None else end - self.steady()) as scope:
                try:
                    if by_list and status is not None:
                        assert self._poller is not None
                        due = since + self.renders.earliest_done(job)
                        self._checks[jid] = due  # then polled in every list round: in motion
                        status = await self._poller.next(pid, status, due=due, sent_at=sent,
                                                         expect=since + self.renders.expected(job))
                        heard = True
                    else:
                        if status is not None or not first:
                            wait = self.renders.next_poll(job, since)
                            wait = wait if missing_since is None else min(max(wait, GONE_AFTER / 30), GONE_AFTER / 6)
                            self._checks[jid] = self.steady() + wait
                            await self._until_poll(job, jid, since, wait)
                            del self._checks[jid]
                        if first:
                            self.store.flush()  # the provider's id is committed before the first poll
                        got = await self._get(job, pid)
                        answered, status = got is not None, got or status
                        heard = heard or answered
                except RejectedError as exc:  # HTTP 404: the provider has no such video
                    missing = exc
                except ListUnavailable:
                    by_list = False  # this once: asked on its own
                    continue
                finally:
                    self._checks.pop(jid, None)
            first = False
            if scope.cancelled_caught and gives_up:
                return self._left(job, jid, f"no status gridrun can read for {UNCLEAR_AFTER:g} s ({unclear}); left as "
                                            "it is, still reserved, and the next run asks again")
            if scope.cancelled_caught:
                # One look at the deadline: polls are scheduled from the expected render time, which may lie past
                # it, and a render may have ended since the last one.
                last = await self._last_look(job, pid)
                if last is not None and last.terminal:
                    status = last
                    continue
                if last is not None and last.status == "in_progress" and self.states[jid] == S.SUBMITTED.value:
                    self._move(jid, S.RUNNING, lazy=True)
                # Still rendering, so still to be paid: it stays reserved against the budget for this run.
                self._timed_out.add(jid)
                said = last or (status if heard else None)
                if said is not None and said.status == "unknown":
                    self._odd_status[jid] = said.raw_status
                return self._left(job, jid, self._timed_out_note(jid, said, own=began is not None))
            if missing is not None:
                by_list = False
                now = self.steady()
                missing_since = now if missing_since is None else missing_since
                self._missing_now.add(jid)
                if self._missing_said is None:
                    # said as the wait starts, not only once it is over: through it the run shows no other sign
                    said = (f"the provider answers 404 for its video {pid} ({missing}), and may for others: "
                            f"waiting up to {GONE_AFTER:g} s for each to see whether it knows them again; a video it "
                            "still does not know then is recorded `unknown`")
                    self._missing_said = (job, said)
                    self._error(job, said)
                if now - missing_since < GONE_AFTER:
                    continue
                self._missing_lost = True
                self._lost(job, jid, f"the provider has had no video {pid} for {now - missing_since:.0f} s ({missing})",
                           reserved=jid not in self._prepaid)
                self._error(job, f"the provider no longer knows video {pid} (HTTP 404)")
                return None
            # A lapse is over: back to the list, once the job's own poll was answered (the list wakes a watcher
            # only when its status changes, so one still rendering would not count as an answer there).
            missing_since, by_list = None, self._poller is not None and answered
            self._lapse_over(jid)
            refused = self._unanswered.pop(pid, None)
            if not answered and self._files_ran_out:
                return self._left(job, jid, f"polls failed for want of file descriptors: {open_files_fix('run')}; left "
                                            "at the provider, still reserved, and the next run collects it")
            if not answered or status is None or status.status == "unknown":
                if unclear_since is None:
                    unclear_since = self.steady()
                if answered and status is not None:
                    unclear = f"status {status.raw_status!r}"
                    self._poll_error(job, pid, f"status {status.raw_status!r}",
                                     f"provider reports an unknown status {status.raw_status!r}{STILL_POLLING}")
                else:
                    unclear = refused or "polls unanswered"
                continue
            unclear_since = None
            if status.status == "in_progress" and self.states[jid] == S.SUBMITTED.value:
                self._move(jid, S.RUNNING, lazy=True)
        self._polls_answered(job, pid)  # ended, seen by the list or by its own poll
        return status

    def _timed_out_note(self, jid: int, status: VideoStatus | None, *, own: bool) -> str:
        """Why a job still unfinished at its timeout is left: what the provider last said of it (`status`, a poll's
        answer: still in its queue, or rendering; None: none answered) and how long ago its create was sent. `own`: this run sent it, so its deadline counted from
        that create; a job an earlier run sent counts its deadline from when this run took it up, so its age since
        its create is said beside it (a job stuck in the provider's queue run after run shows as such)."""
        said = status.status if status is not None else None
        if status is not None and said == "unknown":
            # answered, with a status that is not one of the protocol's: said as it came, not as a poll unanswered
            before = " (seen rendering before)" if self.states[jid] == S.RUNNING.value else ""
            what, left = (f"at the provider, answering status {status.raw_status!r}, not one gridrun knows{before},",
                          "left there")
        elif said == "in_progress" or said != "queued" and self.states[jid] == S.RUNNING.value:
            what, left = "rendering at the provider", "left running"
        elif said == "queued":
            what, left = "queued at the provider, not yet rendering,", "left in its queue"
        else:  # no poll answered since its create's answer: not seen rendering
            what, left = "at the provider, not seen rendering (no poll of it answered),", "left there"
        timeout = f"{self.timeout:g} s"
        sent_at = self.store.following(jid).submitted_at
        if own or sent_at is None:
            when = f"{timeout} after its create" if own else f"after {timeout} in this run"
        else:
            when = f"{span_text(self.clock() - sent_at, tenths_under=10)} after its create ({timeout} of them in this run, its timeout)"
        return f"still {what} {when}; {left}, the next run re-attaches"

    async def _last_look(self, job: Job, pid: str) -> VideoStatus | None:
        """The job's status asked once more (at its timeout), within LAST_LOOK seconds; None without an answer."""
        with anyio.move_on_after(LAST_LOOK):
            try:
                return await self._get(job, pid)
            except RejectedError:  # 404: as unclear as before; the next run asks again
                return None
        return None

    def _left(self, job: Job, jid: int, why: str) -> None:
        """The job is left as it is at the provider for a later run (its state unchanged, still reserved)."""
        self.store.note(jid, why)
        self.live.nudge()
        self._left_why[jid] = why
        self._error(job, why)

    async def _until_poll(self, job: Job, jid: int, since: float, wait: float) -> None:
        """Wait `wait` seconds for the job's next poll, or less where the simulator's render time is learned
        meanwhile (`RenderTimes.told`) and the job's poll schedule, worked out again from it, comes sooner: a job
        whose first poll was scheduled from the model's render time is asked about as the simulator's suggests."""
        end = anyio.current_time() + wait
        while (left := end - anyio.current_time()) > 0:
            told = self.renders.told()
            with anyio.move_on_after(left):
                await told.wait()
            if not told.is_set():
                return
            sooner = self.renders.next_poll(job, since)
            if sooner < end - anyio.current_time():
                end = anyio.current_time() + sooner
                self._checks[jid] = self.steady() + sooner

    async def _get(self, job: Job, pid: str) -> VideoStatus | None:
        for attempt in range(1, self.retries + 10):
            await self.pacer.wait()
            sent = self.pacer.clock()  # a provider that hangs is silent from here, not from the timeout
            try:
                async with self.pacer.gate:
                    status = await self.provider.get(self.client, pid)
                self.pacer.ok()
                if status.status != "unknown":
                    if self._poll_noted.pop(pid, None) is not None:
                        self.store.note(self.ids[job.hash], None)
                    self._polls_answered(job, pid)
                self._files_out_since = None
                return status
            except RateLimitedError as exc:
                self.pacer.failed(exc, sent_at=sent)
                self._files_out_since = None  # answered: the process had descriptors
                waited = self.pacer.limited(exc.retry_after)
                if exc.retry_after is not None and exc.retry_after > PAUSE_SHOWN:
                    self._poll_error(job, pid, "429", f"rate limited: the provider asks to wait "
                                                      f"{asked_wait(exc.retry_after)}; every request waits {waited:,.0f} s")
            except RetryableError as exc:
                self.pacer.failed(exc, sent_at=sent)
                self._unanswered[pid] = f"polls failed: {exc}"
                self._poll_error(job, pid, f"{type(exc).__name__} {exc.status} {exc.code}",
                                 f"{POLLS_FAIL}{str(exc).replace(pid, '{id}')}")
                short = self._files_short(exc)
                if self._files_out(short):
                    return None  # `_watch` leaves the job
                wait = backoff(attempt, exc.retry_after)
                if short and self._files_out_since is not None and exc.retry_after is None:
                    # tried again as FILES_OUT_AFTER ends, not a backoff later; a wait the server asked for is kept
                    wait = min(wait, max(0.0, self._files_out_since + FILES_OUT_AFTER - self.steady()))
                with anyio.move_on_after(wait):
                    await self._files_out_said().wait()  # the wait cut short once the run stops for it
                if self._files_ran_out:
                    return None
            except RejectedError as exc:
                self.pacer.failed(exc, sent_at=sent)
                self._files_out_since = None  # answered: the process had descriptors
                if exc.status == 404:
                    raise  # no such video: `_watch` decides when to believe it
                if exc.code in FATAL_CODES:  # the key is refused: no new job could be followed either
                    self._refused = self._refused or exc.code
                    self.stopping = self.stopping or "fatal"
                self._unanswered[pid] = f"polls refused: {exc}"
                self._error(job, f"poll refused: {exc}")
                await anyio.sleep(backoff(attempt, None))
        return None

    def _files_short(self, exc: RetryableError) -> bool:
        """Whether the poll that failed with `exc` did for want of this process's file descriptors (its own socket
        not opened, or the built-in simulator in its process saying it could not serve it so). Only an unbroken
        stretch of such failures counts (`_files_out_since`, from its first): a poll that failed otherwise, one the
        provider answered (`_get`) or a list of videos it answered (`ListPoller.answered_at`) since the stretch
        began ends it, and such a failure then begins another."""
        if "too many open files" not in str(exc).lower() or not files_ran_out():
            self._files_out_since = None
            return False
        since = self._files_out_since
        listed = self._poller.answered_at if self._poller is not None else None
        if since is None or listed is not None and listed >= since:
            self._files_out_since = self.steady()
        return True

    def _files_out(self, short: bool) -> bool:
        """Whether the run has stopped for want of file descriptors (`_files_ran_out`), or stops now: `short`, the poll
        that failed did so (`_files_short`), as has every poll since the first of the stretch, FILES_OUT_AFTER
        seconds or more ago. The run then sends no new job and leaves those in flight."""
        since = self._files_out_since
        if not short or since is None or self.steady() - since < FILES_OUT_AFTER:
            return self._files_ran_out
        if not self._files_ran_out:
            self._files_ran_out = True
            self._files_out_said().set()
            said = (f"stopped: polls failed for want of file descriptors for {FILES_OUT_AFTER:g} s: {open_files_fix('run')}; "
                    "the jobs in flight are left at the provider, and the next run collects them at no new cost")
            if self.stopping:  # stopping already (Ctrl-C, the budget): as it was, this said beside it
                self.errors.append(said)
            else:
                self.stopping, self._stop_note = "files-out", said
        return True

    def _files_out_said(self) -> anyio.Event:
        """Set once the run stops for want of file descriptors (`_files_out`): the polls waiting to be tried again
        wait no longer."""
        if self._files_out_event is None:
            self._files_out_event = anyio.Event()
        return self._files_out_event

    def _polls_over(self) -> None:
        """As the run ends: the note of each job left in flight whose polls were failing says when the last one
        failed, not that it is "still polling" (no one is, once the run is over): the moment in full (date, time
        and offset from UTC), as the note is read later, maybe in another time zone."""
        for pid, message in self._poll_noted.items():
            jid, when = self._poll_noted_at[pid]
            if self.states.get(jid) not in IN_FLIGHT_STATES or self.store.job_row(jid)["error"] != message:
                continue  # settled, or its note since says something else (left at its timeout, say)
            at = local_time(when)
            if message.startswith(POLLS_FAIL):
                self.store.note(jid, f"last poll failed at {at}: {message.removeprefix(POLLS_FAIL)}")
            elif message.endswith(STILL_POLLING):
                self.store.note(jid, f"{message.removesuffix(STILL_POLLING)} (last poll at {at})")

    def _lapse_over(self, jid: int) -> None:
        """The job's video is answered again after polls answered 404 (or was never in such a lapse): once no video
        is, and none was recorded `unknown` for it, the note of the wait (`_missing_said`) no longer holds and is
        taken from the run's last errors; a later lapse is told again."""
        if jid not in self._missing_now:
            return
        self._missing_now.discard(jid)
        if self._missing_now or self._missing_lost or self._missing_said is None:
            return
        job, said = self._missing_said
        self._missing_said = None
        self._unsay(job, said)

    def _polls_answered(self, job: Job, pid: str) -> None:
        """A poll of the job was answered with a status gridrun knows (or the job's render ended): its poll
        failures no longer hold, and are taken from the run's last errors (`_unsay`); a later one is said again."""
        for kind, message in self._poll_failed.pop(pid, {}).items():
            self._poll_told.discard((pid, kind))
            self._unsay(job, message)

    def _poll_error(self, job: Job, pid: str, kind: str, message: str) -> None:
        """`message` among the run's last errors, once per job and `kind` of poll failure: a gateway down fails
        every poll of every job, which would otherwise push every other error out, one line per poll."""
        if (pid, kind) not in self._poll_told:
            self._poll_told.add((pid, kind))
            self._error(job, message)
            if kind != "429":  # a pause asked is the run's, not the job's: it stays said
                self._poll_failed.setdefault(pid, {})[kind] = message
        jid = self.ids[job.hash]
        self._poll_noted_at[pid] = (jid, self.clock())
        if self._poll_noted.get(pid) != message:  # for `status`, until a poll is answered again
            self._poll_noted[pid] = message
            self.store.note(jid, message)

    async def _download(self, job: Job, jid: int, status: VideoStatus, row: Following) -> None:
        """Fetch the finished video, tries and all (`_tries`); what a try cut short left (its `.part`, for the next
        try to ask only for the rest) is removed once they end, but by a stop (a second Ctrl-C): a
        `.part` recorded as of this take (`PartialDownload.record`) is then left for the next run to go on from,
        as one a killed run left is. One of another take or attempt the first try finds is removed (event
        `part-removed`)."""
        partial = PartialDownload({"job": job.hash, "provider_id": status.id, "attempt": row.attempt})
        try:
            await self._tries(job, jid, status, row, partial)
        except BaseException as exc:
            if _interrupt(exc) and partial.recorded is not None:
                partial.forget()  # its `.part` and record stay, for the next run
                partial.recorded = None
            raise
        finally:
            partial.discard()
            self._fetch_high.pop(jid, None)  # its bytes counted (`_grown`); a download again starts afresh
            self._download_at_api.pop(jid, None)

    async def _tries(self, job: Job, jid: int, status: VideoStatus, row: Following, partial: PartialDownload) -> None:
        url = status.url
        size_bytes = status.size_bytes  # the video's size as the provider announced it: a body of another is refused
        last = ""
        output = job.output
        # What the render counted when its completion was first seen (by an earlier run, for a video fetched again
        # at no cost): a later reading of the provider's figure does not rewrite what that run paid.
        billed = row.cost_micros if row.cost_micros is not None else self._billed(job, jid, status, completed=True)
        assert billed is not None  # a completed render counts at least its estimate
        # What `output` holds is kept under .runs/superseded/ just before the new video replaces it (both on
        # disk at every moment between): a re-run's earlier take of the job, or a file no sidecar of gridrun's
        # records (the user's own, or a take edited in place), or a take whose render this state has no record
        # of (another state's); and an image with no poster mark where its poster goes (the user's, or an
        # earlier version's poster), with the earlier take or alone.
        earlier = self.store.earlier_take(jid) if row.attempt > 1 else None
        kept: list[Path] = []
        foreign: list[Kept] = []
        keep: Callable[[str], None] | None = None
        if earlier is not None or os.path.lexists(output) or os.path.lexists(poster_path(output)):
            folder, was = superseded_dir(self.plan.outputs_dir) / job.hash[:16], earlier[1] if earlier else None
            known = resume.known_renders(self.store, output)  # here, not in the download's worker thread

            def keep_earlier(sha256: str) -> None:
                take = keep_take(output, was, folder) if was is not None else None
                if take is not None:
                    kept.append(take.path)
                    if take.poster is not None:
                        foreign.append(take.poster)
                elif (found := keep_file(output, folder, unless_recorded=True, poster=True, once=True,
                                         known=known, replaced_by=sha256)) is not None:
                    foreign.append(found)

            keep = keep_earlier
        attempt, limited = 0, 0
        # The URLs tried, and whether a fresh GET ever handed back one not tried that had not expired (`renewed`),
        # or answered with one past its `expires_at`, or tried already with no `expires_at` known (`stale`): a
        # provider that answers so does not renew its links. One tried already that its `expires_at` says is still
        # valid (`unchanged`) is no sign of that: providers hand back the same URL until it expires, and a 403 on
        # it is the file host's passing refusal. A GET with no answer (5xx, a timeout) says neither. In these the
        # next run asks again, at no cost.
        tried: set[str] = set()
        renewed = stale = unchanged = unanswered = False
        valid_until = 0.0  # the `expires_at` of the URL handed back unchanged
        while attempt < self.retries + 2:
            attempt += 1
            if url is None or attempt > 1 and last.startswith("expired"):
                try:
                    fresh = await self._get(job, status.id)
                except RejectedError as exc:  # 404: the video is gone, and its URL with it
                    last = f"expired: the provider no longer knows video {status.id} ({exc})"
                    break
                if fresh is not None and fresh.url:
                    url = fresh.url
                    size_bytes = fresh.size_bytes if fresh.size_bytes is not None else size_bytes
                    valid = fresh.expires_at is not None and fresh.expires_at > self.clock()
                    if url not in tried and (fresh.expires_at is None or valid):
                        renewed = True
                    elif valid:
                        unchanged = True
                        valid_until = fresh.expires_at or 0.0
                    else:
                        stale = True
                elif fresh is None:
                    unanswered = True
                if url is None:
                    last = last or "download failed: the provider gave no download URL"
                    break
            tried.add(url)
            # Output files at another host (a CDN, a storage bucket) are not API calls: a 429 pause or rate does not
            # hold them, nor do they take the API's request slots (only a download slot of their own:
            # HOST_DOWNLOAD_CONNECTIONS). Those the API serves itself (the OpenAI shape's `/videos/{id}/content`) are,
            # under its request limit: they wait their turn as every request of the run does, in at most
            # DOWNLOAD_CONNECTIONS of its slots.
            paced = self._at_api(url)
            self._download_at_api[jid] = paced
            if paced:
                await self.pacer.wait()
            sidecar = self._sidecar_writer(job, row, status, billed)
            sent = self.pacer.clock()  # a host that hangs is silent from here (`_unanswered_stop`)
            try:
                more: dict[str, Any] = {"before_replace": keep} if keep is not None else {}
                if size_bytes is not None:
                    more["size_bytes"] = size_bytes
                part = files_beside(os.fspath(output))[0]
                try:  # an earlier try's, or a stopped run's, `.part` is no sign of this one's bytes
                    since = os.stat(part).st_size
                except OSError:
                    since = 0
                self._fetching[jid] = [part, since, since, self.steady()]
                self._fetch_high.setdefault(jid, [since, self.steady(), since, 0])
                try:
                    gate = Gates(self._download_gate, self.pacer.gate) if paced else self._host_download_gate
                    got = await self.provider.download(self.client, url, output, on_saved=sidecar,
                                                       gate=gate, partial=partial, **more)
                finally:
                    self._fetching.pop(jid, None)
                    if partial.removed is not None:  # an earlier run's `.part` of another take or attempt, or changed
                        path, size, why = partial.removed
                        self.store.event(self.run_id, jid, "part-removed",
                                         {"path": path, "size": size, **({"why": why} if why else {})})
                        partial.removed = None
                    if partial.cut_back is not None:  # gone on from only up to its last checkpoint that holds
                        path, size, kept = partial.cut_back
                        self.store.event(self.run_id, jid, "part-cut-back", {"path": path, "size": size, "kept": kept})
                        partial.cut_back = None
                if paced:
                    self.pacer.ok()
                else:
                    self.pacer.heard()
            except ExpiredError as exc:
                self.pacer.failed(exc, sent_at=sent)
                last = f"expired: {exc}"
                # A fresh URL may take a moment to serve (a CDN still propagating a just-signed one).
                await anyio.sleep(backoff(attempt, None))
                continue
            except RateLimitedError as exc:
                # The provider's "later", not a failed download: the wait it asks for (else a backoff) before the
                # next try, and a try of the download's own is not used up, up to as many 429s as a create takes.
                # At the API's host the run's pacer holds every request for it (the next try waits in
                # `pacer.wait`); elsewhere only this job waits.
                self.pacer.failed(exc, sent_at=sent)
                limited += 1
                if limited > self.retries + 5:
                    last = (f"download rate limited {limited} times ({exc}); the video is paid for: the next "
                            "`gridrun run` fetches it, at no cost")
                    break
                attempt -= 1
                if paced:
                    self.pacer.limited(exc.retry_after)
                else:
                    await anyio.sleep(backoff(limited, exc.retry_after))
                continue
            except RejectedError as exc:
                # Another 4xx: a signed URL refused (storage services answer 400 to an expired signature), a
                # key refused. A fresh URL may do; if not, the job waits downloading for the next run.
                self.pacer.failed(exc, sent_at=sent)
                last, url = f"download refused: {exc}", None
                await anyio.sleep(backoff(attempt, None))
                continue
            except (DownloadError, RetryableError) as exc:
                # A download that hangs or cannot connect counts as the provider's silence, as a poll does: a
                # stopping run waits on it no longer than on its polls (`_unanswered_stop`).
                self.pacer.failed(exc, sent_at=sent)
                last = f"download failed: {exc}"
                if exc.code == WRITE_FAILED:
                    # The output folder's problem (full, read-only): the next run downloads it again once it is
                    # fixed. Sending more jobs would only pay for more videos that cannot be saved. A write refused
                    # names no file (only opening one does): the note names the one the download was writing.
                    self._full_disk(self._full_disk_problem(exc, writing=os.fspath(output)))
                    self._cannot_save(str(exc))
                    break
                if exc.code == TOO_LARGE:
                    break  # another try would stream as much again; the job waits downloading for the next run
                await anyio.sleep(backoff(attempt, getattr(exc, "retry_after", None)))
                continue
            self._crash_point("after-download")
            self._move(jid, S.DONE, lazy=True, sha256=got.sha256, cost_micros=billed, downloaded_at=self.clock(),
                       done_run_id=self.run_id, output_path=str(output), cost_reported_micros=status.cost_micros,
                       made=self._made())
            if kept and earlier is not None:
                self.store.event(self.run_id, jid, "superseded", {"path": str(kept[-1]), "sha256": earlier[1],
                                                                  "by_attempt": row.attempt})
            for found in foreign:
                self.store.event(self.run_id, jid, found.kind, {"path": str(found.path), "sha256": found.sha256})
                (self._unrecorded_kept if found.kind == "unrecorded-kept" else self._foreign_kept).append(found.path)
            self.live.saved(output)
            if got.size_announced is not None:
                self.store.event(self.run_id, jid, "size-differs", {"size_bytes": got.size_bytes,
                                                                   "size_announced": got.size_announced})
                self._error(job, size_differs_text(got))
            if got.sidecar_error is not None:
                # The video is saved and recorded; only its sidecar (a copy of the record) is missing, which the
                # next run writes. The disk that could not take it will not take the next videos either.
                self._error(job, f"video saved, its sidecar not: {got.sidecar_error}; the next run writes it")
                if says_disk_full(got.sidecar_error):
                    self._full_disk(got.sidecar_error)
                self._cannot_save(got.sidecar_error)
            return
        last = last or "download failed: no try fetched it; the next `gridrun run` fetches it, at no cost"
        if last.startswith("expired"):
            # Asked for a fresh URL and answered with the one that expired: said so (`state.no_fresh_url`), so that
            # the way to the video named is a new render. A 404 (the video gone) is for the next run's poll to believe
            # (`_watch`). A fresh URL that failed too, the same URL handed back before its expiry time, or a GET not
            # answered, is no sign the provider does not renew its links: the next run asks again, at no cost, and a
            # retry does not render it again.
            if stale and not renewed and "no longer knows" not in last:
                why = f"{last}; {NO_FRESH_URL} (paid, not re-submitted): `gridrun retry` renders it again, paid again"
            elif renewed:
                why = (f"{last}; the fresh URL the provider gave failed too (paid, not re-submitted): the next "
                       "`gridrun run` asks for another, at no cost")
            elif unchanged:
                why = self._refused_until(jid, url or "", valid_until, last)
            elif unanswered and "no longer knows" not in last:
                why = (f"{last}; the provider did not answer when asked for a fresh URL (paid, not re-submitted): "
                       "the next `gridrun run` asks again, at no cost")
            else:
                why = f"{last}; the provider gave no fresh URL (paid, not re-submitted)"
            self._move(jid, S.EXPIRED, error=why, cost_micros=billed, cost_reported_micros=status.cost_micros)
        else:
            self.store.transition(jid, S.DOWNLOADING, error=last)
            self._set_state(jid, S.DOWNLOADING.value)
        self._error(job, last)

    def _refused_until(self, jid: int, url: str, until: float, last: str) -> str:
        """The error of a job whose URL the file host refused while the provider, asked again, handed back the same
        URL, valid by its `expires_at` (`until`) still: until when it stays so, and what comes after. Refused in
        the run before too (event `url-refused`, the same URL), the next run's fetch is no longer promised: the
        file host may keep refusing it until it expires."""
        from .records import local_time
        from .state import SAME_URL_UNTIL

        mark = hashlib.sha256(url.encode("utf-8", "surrogatepass")).hexdigest()[:16]  # never a signed URL itself
        before = self.store.last_event(jid, "url-refused", before_run=self.run_id)
        again = before is not None and before.get("url") == mark
        self.store.event(self.run_id, jid, "url-refused", {"url": mark, "expires_at": until, "again": again})
        until_text = local_time(until)
        head = (f"{last}; {SAME_URL_UNTIL}{until_text} (paid, not re-submitted)")
        after = (f"after {until_text}, unless the provider hands over a fresh URL, `gridrun retry` renders it again "
                 "(paid again)")
        if again:
            return (f"{head}: refused again, as in the run before; the next `gridrun run` asks again, at no cost, "
                    f"but the file host may keep refusing it until then; {after}")
        return f"{head}: the next `gridrun run` asks again and fetches it, at no cost, if the file host serves it; {after}"

    def _at_api(self, url: str) -> bool:
        """`url` is one of the API's own routes (under the provider's base URL, as a video's content route is): a
        request under the API's request limit, like any call of the run. An output file elsewhere, even at the
        same host (the simulator's `/files/`), is not."""
        base = getattr(self.provider, "base_url", None)
        return isinstance(base, str) and bool(base) and url.startswith(base.rstrip("/") + "/")

    def _cannot_save(self, why: str) -> None:
        """The output folder took no file (`why`: full, read-only): the run stops sending new jobs, said once."""
        if not self.stopping:
            self.stopping = "write-failed"
            self._stop_note = (f"stopped sending new jobs: videos cannot be saved ({why}); jobs sent go on, and the "
                               "next run fetches what they render, at no cost")

    def _sidecar_writer(self, job: Job, row: Following, status: VideoStatus, billed: int) -> Callable[[str], None]:
        """What writes the video's JSON sidecar once the video is durable (in the download's worker thread)."""
        write = sidecar_writer(
            job, provider=self.plan.provider, model=self.plan.model, provider_id=status.id,
            idempotency_key=row.idempotency_key, attempt=row.attempt, billed_micros=billed,
            # The state's times, as results.* give them: when the completion was seen, not the provider's stamp
            # (whole seconds, so it may come before `submitted_at`); that for a state that recorded no time.
            reported_micros=status.cost_micros, submitted_at=row.submitted_at,
            completed_at=row.completed_at if row.completed_at is not None else status.completed_at,
            run_id=self.run_id, clock=self.clock,
        )
        if self._crash_at is None:
            return write

        def crashing(sha256: str) -> None:
            self._crash_point("before-sidecar")  # the video renamed into place, its sidecar not yet written
            write(sha256)

        return crashing


# --------------------------------------------------------------------------------------------------


def render_span(status: VideoStatus, sent_at: float | None, seen: float) -> float | None:
    """How long the completed render of `status` took, bounded by the provider's own stamps (whole seconds each,
    +1 s covers that) and by the time from sending it (`sent_at`) until its completion was `seen`; None when the
    provider stamps neither. A run and `gridrun cancel` record it on the job (`render_span`), so that a render
    seen late (an earlier run sent it, the first poll waits for the estimate) is not timed by when it was seen."""
    if status.created_at is None or status.completed_at is None:
        return None
    span = max(0.0, status.completed_at - status.created_at) + 1.0
    return span if sent_at is None else min(span, max(0.0, seen - sent_at))


def counted(store: Store, run_id: int | None, jid: int, estimate: int, status: VideoStatus, *, completed: bool,
            tell: bool, own: int | None = None) -> tuple[int | None, bool]:
    """What the render of `status` counts against the budget (`counted_cost`, `estimate` the job's), and whether
    the provider's figure was doubted. `tell`: the first sight of this render's cost, where a doubted one is
    recorded on the job (event cost-doubted, both figures). `own`: gridrun's own price of a job a capabilities
    file of the manifest prices lower (`Plan.lowered`). The run and `gridrun cancel` record this figure as the
    job's cost and the provider's, as reported, as its cost_reported_micros."""
    billed, doubted = counted_cost(estimate, status.cost_micros, completed=completed, own=own)
    if doubted and tell:
        store.event(run_id, jid, "cost-doubted", {"reported_micros": status.cost_micros, "estimate_micros": estimate})
    return billed, doubted


def unavailable_until_text(until: float, *, now: float) -> str:
    """`until` (the wall clock) as the time of day a provider unavailable is back, HH:MM, with the date when it is
    another day than `now`'s; "at least" where the provider asked for as long as a Retry-After is taken or more."""
    there, today = time.localtime(until), time.localtime(now)
    fmt = "%H:%M" if (there.tm_year, there.tm_yday) == (today.tm_year, today.tm_yday) else "%Y-%m-%d %H:%M"
    return ("at least " if until - now >= MAX_SENSIBLE_WAIT - 1 else "") + time.strftime(fmt, there)


async def ended_badly(store: Store, run_id: int | None, jid: int, to: JobState, **fields: Any) -> JobState:
    """The provider failed the job's render, or refused its create (`to`, `fields` as `Store.transition` takes
    them): the job ends so, but for a re-render of a done job (--force) whose earlier video is still whole at its
    path (it is moved aside only once the new one arrives), which is done as it was (`Store.rerender_failed`).
    Returns its state now. The run ends such jobs through this, `gridrun cancel` (a render it finds failed)
    through `end_badly`."""
    return end_badly(store, run_id, jid, to, whole=await earlier_whole(store, jid), **fields)


def end_badly(store: Store, run_id: int | None, jid: int, to: JobState, *, whole: bool, **fields: Any) -> JobState:
    """`ended_badly` once the earlier video was looked at (`whole`: a re-render of a done job whose earlier video
    is whole at its path), with no await: `gridrun cancel` writes it in the transaction that settles the runs that
    left the job in flight."""
    if whole:
        return store.rerender_failed(jid, to, run_id=run_id, **fields)
    store.transition(jid, to, **fields)
    return to


async def earlier_whole(store: Store, jid: int) -> bool:
    """`resume.earlier_whole`, the video hashed off the event loop (the store read on it, its connection's
    thread)."""
    earlier = store.rerendered(jid)
    return earlier is not None and await anyio.to_thread.run_sync(resume.whole, Path(earlier[0]), earlier[1])


class _Slot:
    """One token of the provider-concurrency limiter, released once. A limiter grown past the run's concurrency
    (`concurrency`) for the jobs an earlier run left rendering (`Executor._take_slots`) shrinks back by the token
    released, so no other job takes it while they are still as many as the concurrency or more."""

    __slots__ = ("concurrency", "held", "limiter", "owner")

    def __init__(self, limiter: anyio.CapacityLimiter, owner: str, concurrency: int) -> None:
        self.limiter, self.owner, self.held, self.concurrency = limiter, owner, True, concurrency

    def release(self) -> None:
        if self.held:
            self.held = False
            if self.limiter.total_tokens > self.concurrency:
                self.limiter.total_tokens -= 1
            self.limiter.release_on_behalf_of(self.owner)


def _parse_crash_point(text: str) -> tuple[str, int] | None:
    if not text:
        return None
    name, _, nth = text.partition(":")
    return name, int(nth or 1)


def _interrupt(exc: BaseException) -> bool:
    """`exc` (or every exception of its group) is a Ctrl-C or a cancellation."""
    if isinstance(exc, BaseExceptionGroup):
        return all(_interrupt(e) for e in exc.exceptions)
    return isinstance(exc, (KeyboardInterrupt, anyio.get_cancelled_exc_class()))


@dataclass
class _Signals:
    """The run's signal handling while it lasts (`Executor._signals_taken`): the receiver, the hangup signal where
    there is one, the output streams that were the terminal, and those muted after a hangup."""

    hangup: int | None
    ttys: list[Any]
    receiver: Any = None
    muted: list[tuple[Any, int]] = field(default_factory=list)
    left: bool = False  # a terminal was still there as the hangup came (sent by hand, not a closed terminal)


def _finishes(signum: int, terminal: bool) -> bool:
    """The first signal `signum` finishes the jobs in flight, where someone at a terminal (`terminal`) can send
    another to leave them: Ctrl-C, and a hangup sent while the terminal is still there. SIGTERM, and a hangup with
    no terminal left, detach at once (`Executor._signals`)."""
    return signum == signal.SIGINT or (signum == getattr(signal, "SIGHUP", None) and terminal)


def _mute_terminal(streams: Sequence[Any]) -> list[tuple[Any, int]]:
    """Send what is written to `streams` (the terminal, hung up) nowhere (`mute`): writing fails there. Each is
    returned with a copy of the descriptor it wrote to, for `_unmute_live`."""
    muted = []
    for stream in streams:
        with contextlib.suppress(OSError, ValueError):
            kept = os.dup(stream.fileno())
            try:
                mute(stream)
            except (OSError, ValueError):
                os.close(kept)
                continue
            muted.append((stream, kept))
    return muted


def _unmute_live(muted: Sequence[tuple[Any, int]]) -> None:
    """Put back, as the run ends, each stream `_mute_terminal` muted whose terminal is still there (a SIGHUP sent
    by hand, not a closed terminal): the program that ran gridrun writes to it again. A closed terminal's stay
    muted, to the end of the process (the `gridrun` command's summary goes nowhere)."""
    for stream, kept in muted:
        with contextlib.suppress(OSError, ValueError):
            if os.isatty(kept):  # a hung-up terminal is no longer one (EIO)
                stream.flush()  # what was written while muted goes where it was meant to: nowhere
                os.dup2(kept, stream.fileno())
        os.close(kept)


def _is_tty(stream: Any) -> bool:
    try:
        return stream is not None and stream.isatty()
    except (OSError, ValueError):
        return False
